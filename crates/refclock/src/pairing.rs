//! Which PPS edge does a burst of NMEA label?
//!
//! The receiver finishes writing the sentences for second S some delay after
//! the edge that starts S: 0 to ~950 ms depending on the receiver (an MTK3339
//! hat ≈ 500 ms). Nothing is configured: the phase of each burst's end relative
//! to the preceding edge is collected, its circular mean gives the delay
//! (unwrapped into [-25 ms, 975 ms), since a burst cannot end before the edge it
//! labels), and each burst is then paired with the edge nearest to its arrival
//! minus that delay. Jitter of up to ±400 ms around the learned delay, including
//! across the wrap point, pairs correctly.

use std::collections::VecDeque;

const NS_PER_S: f64 = 1e9;
/// Bursts needed before the delay is trusted.
const MIN_LEARN: usize = 4;
/// Bursts kept for the circular mean while learning.
const LEARN_WINDOW: usize = 16;
/// Paired delays kept for the median / p95 and for following slow changes.
const DELAY_WINDOW: usize = 128;
/// The circular concentration (mean resultant length) needed: about 100 ms spread.
const MIN_CONCENTRATION: f64 = 0.8;
/// A learned delay at or beyond this (ns) is taken as a small negative one.
const WRAP_AT_NS: f64 = 975e6;
/// An epoch further than this from every edge (after removing the delay) is unpaired.
const MAX_PAIRING_ERROR_NS: f64 = 400e6;

/// Learns the NMEA delay and pairs bursts with edges.
#[derive(Clone, Debug, Default)]
pub struct DelayLearner {
    learning: VecDeque<f64>,
    delays: VecDeque<f64>,
    learned_ns: Option<f64>,
}

/// How an epoch relates to the edges seen.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Pairing {
    /// Still learning the delay.
    Learning,
    /// Paired with the edge at this position in the slice given; the measured delay (ns).
    Paired {
        /// Index into the candidate edge stamps.
        edge: usize,
        /// Burst end minus edge, ns.
        delay_ns: f64,
    },
    /// No edge fits (a missed pulse, or timing far off what was learned).
    Unpaired {
        /// Distance to the nearest edge after removing the learned delay, ns.
        nearest_ns: Option<f64>,
    },
}

impl DelayLearner {
    /// The learned delay, ns.
    pub fn learned_ns(&self) -> Option<f64> {
        self.learned_ns
    }

    /// Forgets the learned delay (e.g. after the receiver was replaced).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Median and 95th percentile of recent paired delays, ns.
    pub fn distribution_ns(&self) -> Option<(f64, f64)> {
        if self.delays.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = self.delays.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "q is 0.5 or 0.95, so the rounded index is in 0..len"
        )]
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Some((at(0.5), at(0.95)))
    }

    /// Pairs a burst that ended at `arrival_ns` with one of `edges_ns` (edge
    /// stamps on the same clock, any order). Learns from it either way.
    pub fn pair(&mut self, arrival_ns: i64, edges_ns: &[i64]) -> Pairing {
        let Some(learned) = self.learned_ns else {
            // Phase of the burst after the latest edge before it.
            if let Some(prev) = edges_ns.iter().filter(|&&e| e <= arrival_ns).max() {
                let phase = (arrival_ns - prev) as f64 % NS_PER_S;
                self.learning.push_back(phase);
                if self.learning.len() > LEARN_WINDOW {
                    self.learning.pop_front();
                }
                self.try_learn();
            }
            if self.learned_ns.is_none() {
                return Pairing::Learning;
            }
            return self.pair(arrival_ns, edges_ns);
        };
        let target = arrival_ns as f64 - learned;
        let nearest = edges_ns.iter().enumerate().min_by(|a, b| {
            (*a.1 as f64 - target)
                .abs()
                .total_cmp(&(*b.1 as f64 - target).abs())
        });
        match nearest {
            Some((i, &e)) if (e as f64 - target).abs() <= MAX_PAIRING_ERROR_NS => {
                let delay = (arrival_ns - e) as f64;
                self.delays.push_back(delay);
                if self.delays.len() > DELAY_WINDOW {
                    self.delays.pop_front();
                }
                // Follow slow changes of the receiver's timing (robustly).
                if self.delays.len() >= 8 {
                    let recent: Vec<f64> = self.delays.iter().rev().take(32).copied().collect();
                    let mut s = recent.clone();
                    s.sort_by(f64::total_cmp);
                    self.learned_ns = Some(s[s.len() / 2]);
                }
                Pairing::Paired {
                    edge: i,
                    delay_ns: delay,
                }
            }
            other => Pairing::Unpaired {
                nearest_ns: other.map(|(_, &e)| e as f64 - target),
            },
        }
    }

    fn try_learn(&mut self) {
        if self.learning.len() < MIN_LEARN {
            return;
        }
        let (mut c, mut s) = (0.0, 0.0);
        for p in &self.learning {
            let a = p / NS_PER_S * std::f64::consts::TAU;
            c += a.cos();
            s += a.sin();
        }
        let n = self.learning.len() as f64;
        let concentration = (c * c + s * s).sqrt() / n;
        if concentration < MIN_CONCENTRATION {
            return;
        }
        let mut mean =
            s.atan2(c).rem_euclid(std::f64::consts::TAU) / std::f64::consts::TAU * NS_PER_S;
        if mean >= WRAP_AT_NS {
            mean -= NS_PER_S;
        }
        self.learned_ns = Some(mean);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, Normal};

    /// Edges every second (with a clock `phase_ns` into its second), bursts
    /// `delay_ms` ± `jitter_ms` after each; returns how many bursts paired with
    /// the right edge, wrongly, or not at all.
    fn run(delay_ms: f64, jitter_ms: f64, phase_ns: i64, seed: u64) -> (usize, usize, usize) {
        let mut rng = StdRng::seed_from_u64(seed);
        let jitter = Normal::new(0.0, jitter_ms.max(1e-9) * 1e6).expect("normal");
        let mut learner = DelayLearner::default();
        let mut edges: VecDeque<i64> = VecDeque::new();
        let (mut right, mut wrong, mut none) = (0, 0, 0);
        let base = 1_000_000_000_000i64 + phase_ns;
        // Events in time order: edges at base + k s, bursts at edge + delay.
        let mut bursts: Vec<(i64, i64)> = Vec::new(); // (arrival, true edge)
        for k in 0..200i64 {
            let e = base + k * 1_000_000_000;
            #[expect(
                clippy::cast_possible_truncation,
                reason = "a delay under a second plus a few sigma of jitter, in ns"
            )]
            let d = (delay_ms * 1e6 + jitter.sample(&mut rng)).max(0.0) as i64;
            bursts.push((e + d, e));
        }
        bursts.sort();
        let mut next_edge = 0i64;
        for (arrival, truth) in bursts {
            while base + next_edge * 1_000_000_000 <= arrival {
                edges.push_back(base + next_edge * 1_000_000_000);
                if edges.len() > 6 {
                    edges.pop_front();
                }
                next_edge += 1;
            }
            let slice: Vec<i64> = edges.iter().copied().collect();
            match learner.pair(arrival, &slice) {
                Pairing::Learning => {}
                Pairing::Paired { edge, .. } if slice[edge] == truth => right += 1,
                Pairing::Paired { .. } => wrong += 1,
                Pairing::Unpaired { .. } => none += 1,
            }
        }
        (right, wrong, none)
    }

    #[test]
    fn every_delay_from_0_to_950_ms_pairs_with_the_right_edge() {
        for delay in (0..=950).step_by(50) {
            for (jitter, phase) in [(0.0, 0), (20.0, 123_456_789), (50.0, 987_000_000)] {
                let (right, wrong, none) = run(
                    f64::from(delay),
                    jitter,
                    phase,
                    u64::try_from(delay).unwrap(),
                );
                assert_eq!(
                    wrong, 0,
                    "delay {delay} ms jitter {jitter} ms: {wrong} mispaired"
                );
                assert!(
                    none <= 1,
                    "delay {delay} ms jitter {jitter} ms: {none} unpaired"
                );
                assert!(
                    right >= 190,
                    "delay {delay} ms jitter {jitter}: only {right} paired"
                );
            }
        }
    }

    #[test]
    fn learned_delay_and_distribution_match_the_receiver() {
        let mut learner = DelayLearner::default();
        let mut edges = Vec::new();
        for k in 0..100i64 {
            let e = k * 1_000_000_000 + 300_000_000;
            edges.push(e);
            let from = edges.len().saturating_sub(4);
            let _ = learner.pair(e + 480_000_000 + (k % 5) * 1_000_000, &edges[from..]);
        }
        let learned = learner.learned_ns().expect("learned");
        assert!((learned - 482e6).abs() < 3e6, "learned {learned}");
        let (med, p95) = learner.distribution_ns().expect("distribution");
        assert!((med - 482e6).abs() < 0.5, "median {med} ns");
        assert!((p95 - 484e6).abs() < 0.5, "p95 {p95} ns");
    }

    #[test]
    fn scattered_bursts_are_not_learned_from() {
        let mut learner = DelayLearner::default();
        let edges: Vec<i64> = (0..10).map(|k| k * 1_000_000_000).collect();
        for (i, ph) in [100, 400, 700, 900, 250, 550, 850, 50].iter().enumerate() {
            let p = learner.pair(
                i64::try_from(i).unwrap() * 1_000_000_000 + ph * 1_000_000,
                &edges,
            );
            assert_eq!(p, Pairing::Learning);
        }
    }

    #[test]
    fn a_missing_edge_leaves_the_burst_unpaired() {
        let mut learner = DelayLearner::default();
        let mut edges = Vec::new();
        for k in 0..10i64 {
            edges.push(k * 1_000_000_000);
            let _ = learner.pair(k * 1_000_000_000 + 500_000_000, &edges);
        }
        // Edge 10 missing: the burst for it sees only edges up to 9.
        let p = learner.pair(10_500_000_000, &edges);
        assert!(matches!(p, Pairing::Unpaired { .. }), "{p:?}");
    }
}
