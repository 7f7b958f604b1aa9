//! How far this oscillator's frequency has wandered, over horizons τ from
//! 64 s to 1024 s, at worst, in the recent past (held with a one-day
//! half-life): the largest second difference of the free-running phase,
//! |ψ(t) − 2ψ(t−τ) + ψ(t−2τ)| = τ·|Δf̄|, the phase a frequency change like
//! the largest one seen would cost over τ. For a frequency ramp that
//! completes within τ this is exactly what coasting through it from its
//! start costs; for a longer one, twice that.
//!
//! The noise learner's statistics forget within a few of their longest lags,
//! and model the oscillator as a random walk: a temperature ramp the box went
//! through an hour ago is gone from them, yet the same ramp can come back
//! during tonight's antenna outage. The holdover bound therefore never claims
//! less than this (see `Refclock::error_bound`).

use crate::phase_history::PhaseHistory;

/// Horizons (seconds) at which the wander is measured.
pub const LAGS: [i64; 5] = [64, 128, 256, 512, 1024];
/// Pulses kept: two of the longest horizon, and one more.
const HISTORY: usize = 2 * 1024 + 1;
/// Half-life of the worst wander held, seconds of pulses.
const HALF_LIFE_S: f64 = 86_400.0;
/// Standard deviations of the three phase readings' white noise taken off
/// each held value: that much of it is the readings, not the oscillator.
const NOISE_SIGMAS: f64 = 5.0;

/// The worst frequency wander seen, per horizon.
#[derive(Clone, Debug)]
pub struct WanderTracker {
    /// Free-running phase of accepted pulses.
    history: PhaseHistory,
    /// Largest |second difference| held per horizon, ns, decaying.
    worst_ns: [f64; LAGS.len()],
    /// Pulse number at which each was last decayed.
    worst_idx: [Option<i64>; LAGS.len()],
}

impl Default for WanderTracker {
    fn default() -> Self {
        Self {
            history: PhaseHistory::new(HISTORY),
            worst_ns: [0.0; LAGS.len()],
            worst_idx: [None; LAGS.len()],
        }
    }
}

impl WanderTracker {
    /// Forgets the phase history (after a phase jump or relabel); keeps the
    /// worst wander, which describes the oscillator.
    pub fn clear_history(&mut self) {
        self.history.clear();
    }

    /// Adds the free-running phase `psi_ns` of the pulse numbered `idx`
    /// (consecutive pulses, consecutive numbers).
    pub fn add(&mut self, idx: i64, psi_ns: f64) {
        if !psi_ns.is_finite() {
            return;
        }
        self.history.insert(idx, psi_ns);
        let decay_per_s = 0.5f64.powf(1.0 / HALF_LIFE_S);
        for (k, &tau) in LAGS.iter().enumerate() {
            let Some(d) = self.history.second_difference(idx, tau) else {
                continue;
            };
            let d = d.abs();
            let held = match self.worst_idx[k] {
                Some(at) => self.worst_ns[k] * decay_per_s.powf((idx - at).max(0) as f64),
                // Nothing measured yet, or a value restored from before a restart.
                None => self.worst_ns[k],
            };
            self.worst_ns[k] = held.max(d);
            self.worst_idx[k] = Some(idx);
        }
    }

    /// The worst wander (ns) at each horizon (s) measured so far, less the
    /// reading noise of measurement variance `r_ns2`, never decreasing with
    /// the horizon.
    pub fn worst(&self, r_ns2: f64) -> Vec<(i64, f64)> {
        let raw: Vec<(i64, f64)> = LAGS
            .iter()
            .zip(self.worst_ns.iter().zip(self.worst_idx.iter()))
            .filter(|(_, (w, at))| at.is_some() || **w > 0.0)
            .map(|(&tau, (&w, _))| (tau, w))
            .collect();
        held_points(&raw, r_ns2)
    }

    /// The raw worst second differences held per horizon (ns): what a
    /// restart keeps (see [`WanderTracker::restore`]).
    pub fn snapshot(&self) -> [Option<f64>; LAGS.len()] {
        std::array::from_fn(|k| {
            (self.worst_idx[k].is_some() || self.worst_ns[k] > 0.0).then_some(self.worst_ns[k])
        })
    }

    /// Seeds the held worst wander from a snapshot taken before a restart;
    /// it decays from the first pulse on.
    pub fn restore(&mut self, snapshot: &[Option<f64>; LAGS.len()]) {
        for (k, v) in snapshot.iter().enumerate() {
            if let Some(v) = v.filter(|v| v.is_finite() && *v >= 0.0) {
                self.worst_ns[k] = self.worst_ns[k].max(v);
                self.worst_idx[k] = None;
            }
        }
    }

    /// The phase error (ns) that coasting for `t_s` seconds must be assumed
    /// able to reach from the wander seen (see [`coast_bound_ns`]).
    pub fn bound_ns(&self, t_s: f64, r_ns2: f64) -> f64 {
        coast_bound_ns(&self.worst(r_ns2), t_s)
    }
}

/// Raw worst second differences per horizon, less the reading noise of
/// measurement variance `r_ns2`, made non-decreasing with the horizon.
pub(crate) fn held_points(raw: &[(i64, f64)], r_ns2: f64) -> Vec<(i64, f64)> {
    let noise = NOISE_SIGMAS * (6.0 * r_ns2.max(0.0)).sqrt();
    let mut running = 0.0f64;
    raw.iter()
        .map(|&(tau, w)| {
            running = running.max(w - noise);
            (tau, running)
        })
        .collect()
}

/// The phase error (ns) that coasting for `t_s` seconds must be assumed able
/// to reach from held wander points: interpolated between horizons
/// (log-log), and beyond the longest one measured growing as a frequency
/// ramp would (∝ t²). Zero when nothing is known (the noise model then
/// carries the bound alone).
pub(crate) fn coast_bound_ns(pts: &[(i64, f64)], t_s: f64) -> f64 {
    let Some(&(first_tau, first_w)) = pts.first() else {
        return 0.0;
    };
    if t_s <= 0.0 || !t_s.is_finite() {
        return 0.0;
    }
    let (last_tau, last_w) = pts[pts.len() - 1];
    let ramp = |w: f64, tau: i64| w * (t_s / tau as f64).powi(2);
    if t_s <= first_tau as f64 {
        return ramp(first_w, first_tau);
    }
    for pair in pts.windows(2) {
        let ((t0, w0), (t1, w1)) = (pair[0], pair[1]);
        if t_s <= t1 as f64 {
            if w0 <= 0.0 {
                // Linear from nothing: no log of zero.
                return w1 * (t_s - t0 as f64) / (t1 - t0) as f64;
            }
            let a = (t_s / t0 as f64).ln() / (t1 as f64 / t0 as f64).ln();
            return w0 * (w1 / w0).powf(a);
        }
    }
    ramp(last_w, last_tau)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Free-running phase of an oscillator whose frequency ramps at
    /// `ramp_ppb_per_s` from `from` to `to` (pulse numbers), read exactly.
    fn feed(w: &mut WanderTracker, n: i64, from: i64, to: i64, ramp: f64) {
        let (mut psi, mut f) = (0.0, 1000.0);
        for i in 0..n {
            w.add(i, psi);
            let df = if (from..to).contains(&i) { ramp } else { 0.0 };
            psi += f + df / 2.0;
            f += df;
        }
    }

    #[test]
    fn a_steady_oscillator_costs_nothing_to_coast() {
        let mut w = WanderTracker::default();
        feed(&mut w, 3000, 0, 0, 0.0);
        assert!(w.bound_ns(1200.0, 0.0) < 1e-3);
    }

    #[test]
    fn a_ramp_seen_hours_ago_is_remembered_and_fades_over_days() {
        let mut w = WanderTracker::default();
        // 0.44 ppb/s for 900 s (400 ppb in all), then 3 h of calm: the
        // phase history itself no longer holds it.
        feed(&mut w, 1900 + 3 * 3600, 1000, 1900, 0.44);
        // Coasting from the start of such a ramp costs 396 ppb × (t − 450 s)
        // once it is over: 297 µs after 1200 s.
        let b = w.bound_ns(1200.0, 0.0);
        assert!(b > 297_000.0 * 0.9, "bound {b}");
        assert!(b < 2_000_000.0, "bound {b}");
        let mut aged = WanderTracker::default();
        feed(&mut aged, 1900 + 3 * 86_400, 1000, 1900, 0.44);
        let a = aged.bound_ns(1200.0, 0.0);
        assert!(a < b / 6.0, "after three days {a}, after three hours {b}");
    }

    #[test]
    fn the_worst_wander_survives_a_restart() {
        let mut w = WanderTracker::default();
        feed(&mut w, 3000, 1000, 1900, 0.44);
        let before = w.bound_ns(1200.0, 0.0);
        let mut restarted = WanderTracker::default();
        restarted.restore(&w.snapshot());
        // Bit for bit: the restored state is the persisted one.
        assert_eq!(restarted.bound_ns(1200.0, 0.0).to_bits(), before.to_bits());
        // Pulses after the restart decay it as usual, never drop it.
        feed(&mut restarted, 100, 0, 0, 0.0);
        assert!(restarted.bound_ns(1200.0, 0.0) > 0.99 * before);
    }

    #[test]
    fn reading_noise_is_not_taken_for_wander() {
        let mut w = WanderTracker::default();
        let mut x: u64 = 12345;
        for i in 0..5000 {
            // Uniform ±1 µs readings (σ ≈ 577 ns), no wander at all.
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let noise = ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2000.0;
            w.add(i, 1000.0 * i as f64 + noise);
        }
        let explained = w.bound_ns(1200.0, 577.0 * 577.0);
        assert!(
            explained.abs() < 1e-9,
            "{explained} ns of wander from noise alone"
        );
        assert!(w.bound_ns(1200.0, 0.0) > 0.0);
    }
}
