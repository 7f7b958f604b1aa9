//! A robust estimate of the pulses' own jitter, from every labelled pulse that
//! reaches the filter, the ones its gate rejects included.
//!
//! The noise learner hears only pulses that passed the gate, and the gate is
//! drawn from what the learner has heard. A PPS whose jitter is far above the
//! prior (300 ns) — an interrupt through an emulated UART or a USB-serial DCD
//! line: hundreds of µs — is then rejected pulse after pulse, re-acquired as a
//! "phase jump", and never learned: the discipline never locks. The median
//! absolute deviation of the free-running phase's lag-1 second differences over
//! the last pulses ignores a few glitches but not jitter that every pulse has;
//! the filter uses the larger of the two estimates.

use crate::phase_history::PhaseHistory;
use std::collections::VecDeque;

/// Second differences kept: half a minute of pulses.
const WINDOW: usize = 32;
/// Second differences needed before the estimate counts.
const MIN_SAMPLES: usize = 8;
/// σ of a normal distribution per unit of median absolute deviation.
const MAD_TO_SIGMA: f64 = 1.4826;

/// Tracks the pulses' phase noise from their second differences.
#[derive(Clone, Debug)]
pub(crate) struct PulseJitter {
    history: PhaseHistory,
    second_differences: VecDeque<f64>,
}

impl PulseJitter {
    /// An empty tracker.
    pub(crate) fn new() -> Self {
        Self {
            history: PhaseHistory::new(4),
            second_differences: VecDeque::with_capacity(WINDOW),
        }
    }

    /// Forgets the phase history when pulse numbering restarts (a new pulse
    /// train); keeps what was learned about the jitter.
    pub(crate) fn restart_numbering(&mut self) {
        self.history.clear();
    }

    /// Adds the free-running phase ψ (ns) of the pulse numbered `idx`.
    pub(crate) fn add(&mut self, idx: i64, psi_ns: f64) {
        self.history.insert(idx, psi_ns);
        if let Some(d) = self.history.second_difference(idx, 1) {
            if self.second_differences.len() == WINDOW {
                self.second_differences.pop_front();
            }
            self.second_differences.push_back(d);
        }
    }

    /// The white phase noise variance (ns²) the recent pulses show, once there
    /// are enough of them: σ² of the second differences over 6 (each holds
    /// three pulses' noise, weighted 1, −2, 1).
    pub(crate) fn variance_ns2(&self) -> Option<f64> {
        if self.second_differences.len() < MIN_SAMPLES {
            return None;
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2]
            } else {
                0.5 * (v[n / 2 - 1] + v[n / 2])
            }
        };
        let mut d: Vec<f64> = self.second_differences.iter().copied().collect();
        let centre = median(&mut d);
        let mut dev: Vec<f64> = d.iter().map(|x| (x - centre).abs()).collect();
        let sigma = MAD_TO_SIGMA * median(&mut dev);
        Some(sigma * sigma / 6.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, Normal};

    fn fed(jitter_ns: f64, freq_ppb: f64, glitch_every: usize, n: i64) -> PulseJitter {
        let mut rng = StdRng::seed_from_u64(9);
        let noise = Normal::new(0.0, jitter_ns).expect("valid sigma");
        let mut pj = PulseJitter::new();
        for i in 0..n {
            let mut psi = freq_ppb * i as f64 + noise.sample(&mut rng);
            if glitch_every > 0 && usize::try_from(i).unwrap().is_multiple_of(glitch_every) {
                psi += 5e6;
            }
            pj.add(i, psi);
        }
        pj
    }

    #[test]
    fn measures_large_jitter_whatever_the_frequency_error() {
        let pj = fed(200_000.0, 25_000.0, 0, 200);
        let sigma = pj.variance_ns2().expect("enough pulses").sqrt();
        assert!((140_000.0..280_000.0).contains(&sigma), "σ {sigma} ns");
    }

    #[test]
    fn a_glitch_now_and_then_does_not_raise_it() {
        let pj = fed(1_000.0, 0.0, 20, 200);
        let sigma = pj.variance_ns2().expect("enough pulses").sqrt();
        assert!(
            sigma < 2_000.0,
            "σ {sigma} ns from 1 µs jitter and rare 5 ms glitches"
        );
    }

    #[test]
    fn says_nothing_before_enough_pulses_or_across_a_renumbering() {
        let mut pj = fed(1_000.0, 0.0, 0, 9);
        assert!(pj.variance_ns2().is_none());
        pj.restart_numbering();
        pj.add(0, 0.0);
        pj.add(1, 0.0);
        assert!(
            pj.variance_ns2().is_none(),
            "no difference spans the restart"
        );
    }
}
