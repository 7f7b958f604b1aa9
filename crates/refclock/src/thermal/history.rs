//! A day of the oscillator's free-running phase beside the temperature it
//! ran at, one entry every [`STRIDE`] pulses: what the model learns from
//! (block frequencies) and what its honesty is checked against (the wander
//! left after compensation, recomputed with the current coefficients over
//! the whole day, so that a ramp seen while the model was still learning
//! counts as well explained once the model explains it, and a heater the
//! sensor never saw stays unexplained).

use super::model::{Block, TempcoModel};
use super::walk::{WalkEstimate, rwfm_overlapping_edf};
use crate::wander::LAGS;
use std::collections::VecDeque;

/// Pulses between entries.
pub const STRIDE: i64 = 16;
/// Learning block length, pulses (a multiple of [`STRIDE`]).
pub const BLOCK: i64 = 64;
/// The slope term's difference span, pulses (a multiple of [`STRIDE`]):
/// the causal slope the residual phase and a holdover's prediction use.
pub const SLOPE_SPAN: i64 = 32;
/// The windows (pulses, a multiple of [`STRIDE`]) whose mean temperatures,
/// one just before a learning block and one just after it, give the
/// block's slope: centred on the block (the causal slope is 16 s late) and
/// 1.5× as far apart, so with under half its noise variance. The slope is
/// a regressor, and noise in a regressor pulls its coefficient towards
/// zero (errors in variables); the walk of `f0` makes it worse, since it
/// leaves mostly the blocks' differences to learn from. With the causal
/// slope, a sensor of 0.1 K noise learned its ~50 s lag as 25-33 s and
/// holdovers through a cooling ramp ended 9-13 µs short on average (40
/// seeds); wider windows smooth the slope itself and overshoot (64: 53 s).
pub const LEARN_SLOPE_WINDOW: i64 = 32;
/// Entries kept: a day.
#[expect(
    clippy::cast_possible_truncation,
    reason = "86 400 / 16 = 5 400 fits any usize"
)]
const KEPT: usize = (86_400 / STRIDE) as usize;
/// Half-life of the residual wander held, pulses (as the plain wander's).
const HALF_LIFE: f64 = 86_400.0;

/// What the residual phase says about the oscillator once temperature is
/// set aside.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResidualStats {
    /// Worst |second difference| per horizon, ns, decayed by age.
    pub worst: Vec<(i64, f64)>,
    /// The random walk the residual phase shows, with its dof.
    pub walk: Option<WalkEstimate>,
}

/// One entry.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Entry {
    /// Pulse number.
    pub idx: i64,
    /// Free-running phase, ns.
    pub psi_ns: f64,
    /// Integral of the smoothed temperature (minus the reference), K·s.
    pub theta_ks: f64,
    /// Integral of its square, K²·s.
    pub theta2_k2s: f64,
    /// Whether the sensor was healthy at this entry and since the previous one.
    pub healthy: bool,
}

/// The history.
#[derive(Clone, Debug, Default)]
pub struct ThermalHistory {
    /// `slots[i]` holds pulse `(base + i)·STRIDE`, if it was seen.
    slots: VecDeque<Option<Entry>>,
    base: i64,
}

impl ThermalHistory {
    /// Forgets the phase (after a phase jump or relabel: pulse numbers restart).
    pub fn clear(&mut self) {
        self.slots.clear();
    }

    /// Records `e` (only pulses whose number is a multiple of [`STRIDE`]).
    pub fn push(&mut self, e: Entry) {
        if e.idx.rem_euclid(STRIDE) != 0
            || !e.psi_ns.is_finite()
            || !e.theta_ks.is_finite()
            || !e.theta2_k2s.is_finite()
        {
            return;
        }
        let slot = e.idx / STRIDE;
        if self.slots.is_empty() || slot < self.base {
            self.slots.clear();
            self.base = slot;
        }
        // Never negative here (`slot >= base`); a distance too large for
        // usize is as far off as one past two days.
        let mut i = usize::try_from(slot - self.base).unwrap_or(usize::MAX);
        if i > KEPT * 2 {
            self.slots.clear();
            self.base = slot;
            i = 0;
        }
        while self.slots.len() <= i {
            self.slots.push_back(None);
        }
        self.slots[i] = Some(e);
        while self.slots.len() > KEPT {
            self.slots.pop_front();
            self.base += 1;
        }
    }

    fn at(&self, idx: i64) -> Option<&Entry> {
        if idx.rem_euclid(STRIDE) != 0 {
            return None;
        }
        // Before the oldest entry kept: not held.
        let i = usize::try_from(idx / STRIDE - self.base).ok()?;
        self.slots.get(i)?.as_ref()
    }

    /// Whether every entry from `from` to `to` (pulses) is held and healthy.
    fn healthy_span(&self, from: i64, to: i64) -> bool {
        (from / STRIDE..=to / STRIDE).all(|s| self.at(s * STRIDE).is_some_and(|e| e.healthy))
    }

    /// The learning block whose data end at pulse `idx` (a multiple of
    /// [`BLOCK`]): the block itself ends [`LEARN_SLOPE_WINDOW`] pulses
    /// earlier, so that its slope is centred on it. Measurement variance
    /// from the pulses' white phase noise `r_ns2`.
    pub fn block(&self, idx: i64, r_ns2: f64, q_rw: f64) -> Option<Block> {
        let w = LEARN_SLOPE_WINDOW;
        if idx.rem_euclid(BLOCK) != 0 || !self.healthy_span(idx - BLOCK - 2 * w, idx) {
            return None;
        }
        let e = |i: i64| self.at(i).copied();
        let (end, start) = (e(idx - w)?, e(idx - w - BLOCK)?);
        let (after, before) = (e(idx)?, e(idx - BLOCK - 2 * w)?);
        let b = BLOCK as f64;
        let wf = w as f64;
        // Mean temperature over the window after the block, less that over
        // the window before it, over the distance between their centres.
        let mean_after = (after.theta_ks - end.theta_ks) / wf;
        let mean_before = (start.theta_ks - before.theta_ks) / wf;
        Some(Block {
            freq_ppb: (end.psi_ns - start.psi_ns) / b,
            freq_var_ppb2: 2.0 * r_ns2.max(1.0) / (b * b),
            temp_k: (end.theta_ks - start.theta_ks) / b,
            temp2_k2: (end.theta2_k2s - start.theta2_k2s) / b,
            slope_k_per_s: (mean_after - mean_before) / (b + wf),
            len_s: b,
            q_rw_ppb2_per_s: q_rw,
        })
    }

    /// The residual phase of entry `e` under `model`: the free-running phase
    /// less what the coefficients say temperature did to it.
    fn residual(&self, e: &Entry, model: &TempcoModel) -> Option<f64> {
        let before = self.at(e.idx - SLOPE_SPAN)?;
        let g_integral = (e.theta_ks - before.theta_ks) / SLOPE_SPAN as f64;
        let (x, _) = model.effective();
        Some(e.psi_ns - x[1] * e.theta_ks - x[2] * g_integral - x[3] * e.theta2_k2s)
    }

    /// The worst |second difference| of the residual phase per horizon of
    /// [`LAGS`], each decayed by its age (one-day half-life) from pulse
    /// `now_idx`; horizons with no data are left out.
    pub fn residual_worst(&self, model: &TempcoModel, now_idx: i64) -> Vec<(i64, f64)> {
        self.residual_stats(model, now_idx, 0.0).worst
    }

    /// The residual phase's worst second differences (see
    /// [`ThermalHistory::residual_worst`]) and the frequency random walk
    /// (ppb²/s, with its dof) their mean squares show once the entries'
    /// white noise `r_mean_ns2` is taken off: the oscillator's own wander
    /// with temperature set aside, as far as the model explains it.
    pub fn residual_stats(
        &self,
        model: &TempcoModel,
        now_idx: i64,
        r_mean_ns2: f64,
    ) -> ResidualStats {
        let mut worst = [None::<f64>; LAGS.len()];
        let mut sum_sq = [0.0f64; LAGS.len()];
        let mut count = [0usize; LAGS.len()];
        let n = self.slots.len();
        // Residuals by slot, None where unusable.
        let rho: Vec<Option<f64>> = (0..n)
            .map(|i| {
                let e = self.slots[i].as_ref()?;
                let span_ok = self.healthy_span(e.idx - SLOPE_SPAN, e.idx);
                if span_ok {
                    self.residual(e, model)
                } else {
                    None
                }
            })
            .collect();
        for (k, &tau) in LAGS.iter().enumerate() {
            let Ok(step) = usize::try_from(tau / STRIDE) else {
                continue;
            };
            for i in 2 * step..n {
                let (Some(a), Some(b), Some(c)) = (rho[i], rho[i - step], rho[i - 2 * step]) else {
                    continue;
                };
                // `i` < `KEPT`: it always fits; were it not to, age 0 holds
                // the difference at full weight.
                let age = i64::try_from(i)
                    .map_or(0, |i| (now_idx - (self.base + i) * STRIDE).max(0))
                    as f64;
                let raw = a - 2.0 * b + c;
                sum_sq[k] += raw * raw;
                count[k] += 1;
                let d = raw.abs() * 0.5f64.powf(age / HALF_LIFE);
                worst[k] = Some(worst[k].map_or(d, |w| w.max(d)));
            }
        }
        // The horizon whose estimate has the most degrees of freedom once
        // the entries' white noise is taken off: its point estimate and dof.
        let mut walk: Option<WalkEstimate> = None;
        for (k, &tau) in LAGS.iter().enumerate() {
            if count[k] == 0 {
                continue;
            }
            let m = tau as f64 / STRIDE as f64;
            let edf = rwfm_overlapping_edf(count[k] as f64 + 2.0 * m, m);
            let v = sum_sq[k] / count[k] as f64;
            let white = 6.0 * r_mean_ns2;
            if v <= white {
                continue;
            }
            // Subtracting the white part leaves the walk's share of the
            // variance: its relative spread grows by v / (v − white).
            let share = (v - white) / v;
            let tau = tau as f64;
            let q = (v - white) / ((2.0 / 3.0) * tau * tau * tau);
            if let Some(e) = WalkEstimate::new(q, edf * share * share)
                && walk.is_none_or(|w| e.dof > w.dof)
            {
                walk = Some(e);
            }
        }
        ResidualStats {
            worst: LAGS
                .iter()
                .zip(worst)
                .filter_map(|(&t, w)| w.map(|w| (t, w)))
                .collect(),
            walk,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A day-long history of a crystal at `k` ppb/K through temperature
    /// `temp(t)` (K), plus an unseen frequency disturbance `hidden(t)` (ppb).
    fn history(
        n: i64,
        k: f64,
        temp: impl Fn(f64) -> f64,
        hidden: impl Fn(f64) -> f64,
    ) -> ThermalHistory {
        let mut h = ThermalHistory::default();
        let (mut psi, mut theta) = (0.0, 0.0);
        for i in 0..n {
            let t = i as f64;
            if i % STRIDE == 0 {
                h.push(Entry {
                    idx: i,
                    psi_ns: psi,
                    theta_ks: theta,
                    theta2_k2s: 0.0,
                    healthy: true,
                });
            }
            psi += 1000.0 + k * temp(t) + hidden(t);
            theta += temp(t);
        }
        h
    }

    fn ramp(t: f64) -> f64 {
        (4.0 * (t - 1000.0) / 900.0).clamp(0.0, 4.0)
    }

    #[test]
    fn blocks_measure_frequency_and_temperature() {
        let h = history(4000, 100.0, ramp, |_| 0.0);
        let b = h.block(1408, 1.0e6, 0.25).expect("block");
        // Mid-ramp: mean temperature over 1344..1408, frequency 1000 + 100·T.
        assert!((b.freq_ppb - (1000.0 + 100.0 * b.temp_k)).abs() < 1e-6);
        assert!((b.slope_k_per_s - 4.0 / 900.0).abs() < 1e-6);
        assert!(
            h.block(1400, 1.0, 0.0).is_none(),
            "blocks end on block boundaries"
        );
    }

    #[test]
    fn the_residual_wander_is_small_when_the_model_explains_the_ramp() {
        let h = history(8000, 100.0, ramp, |_| 0.0);
        let mut explained = TempcoModel::new();
        explained.x[1] = 100.0;
        let mut ignorant = TempcoModel::new();
        ignorant.x[1] = 0.0;
        let good = h.residual_worst(&explained, 8000);
        let bad = h.residual_worst(&ignorant, 8000);
        let max = |v: &[(i64, f64)]| v.iter().fold(0.0f64, |m, p| m.max(p.1));
        assert!(max(&good) < 1.0, "{good:?}");
        assert!(max(&bad) > 50_000.0, "{bad:?}");
    }

    #[test]
    fn a_heater_the_sensor_does_not_see_stays_in_the_residual() {
        let heater = |t: f64| {
            if (3000.0..4000.0).contains(&t) {
                300.0
            } else {
                0.0
            }
        };
        let h = history(8000, 100.0, ramp, heater);
        let mut explained = TempcoModel::new();
        explained.x[1] = 100.0;
        let worst = h.residual_worst(&explained, 8000);
        assert!(worst.iter().any(|p| p.1 > 100_000.0), "{worst:?}");
    }

    /// A history of `n` pulses of a crystal at 100 ppb/K through the ramp,
    /// with a frequency random walk of 0.25 ppb²/s and white phase noise of
    /// `r_ns2` on each entry.
    fn walking(n: i64, seed: u64, r_ns2: f64) -> ThermalHistory {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let step = Normal::new(0.0, 0.5).expect("normal");
        let white = Normal::new(0.0, r_ns2.sqrt()).expect("normal");
        let mut h = ThermalHistory::default();
        let (mut psi, mut theta, mut walk) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let t = i as f64;
            if i % STRIDE == 0 {
                h.push(Entry {
                    idx: i,
                    psi_ns: psi + white.sample(&mut rng),
                    theta_ks: theta,
                    theta2_k2s: 0.0,
                    healthy: true,
                });
            }
            psi += 1000.0 + 100.0 * ramp(t) + walk;
            theta += ramp(t);
            walk += step.sample(&mut rng);
        }
        h
    }

    #[test]
    fn the_residual_random_walk_is_estimated_and_ignores_an_explained_ramp() {
        let h = walking(20_000, 5, 0.0);
        let mut explained = TempcoModel::new();
        explained.x[1] = 100.0;
        let w = h
            .residual_stats(&explained, 20_000, 0.0)
            .walk
            .expect("estimate");
        // True random walk: 0.25 ppb²/s.
        assert!((0.1..0.5).contains(&w.q_ppb2_per_s), "{w:?}");
        assert!(w.dof > 30.0, "{w:?}");
        let ignorant = TempcoModel::new();
        let bad = h
            .residual_stats(&ignorant, 20_000, 0.0)
            .walk
            .expect("estimate");
        assert!(
            bad.q_ppb2_per_s > w.q_ppb2_per_s,
            "an unexplained ramp raises it: {bad:?} vs {w:?}"
        );
    }

    #[test]
    fn the_walk_estimate_claims_no_more_dof_than_it_has() {
        // Over many independent hour-long histories (white phase noise as a
        // Pi's pulses leave in a 16-pulse mean), the estimates scatter as a
        // chi-square with the dof they claim, or less: claiming more would
        // make the Student-t interval too narrow.
        let r = 60_000.0;
        let mut explained = TempcoModel::new();
        explained.x[1] = 100.0;
        let est: Vec<_> = (0..300)
            .filter_map(|seed| {
                walking(4_000, 100 + seed, r)
                    .residual_stats(&explained, 4_000, r)
                    .walk
            })
            .collect();
        assert!(est.len() > 250, "{} estimates", est.len());
        let n = est.len() as f64;
        let mean = est.iter().map(|e| e.q_ppb2_per_s).sum::<f64>() / n;
        let var = est
            .iter()
            .map(|e| (e.q_ppb2_per_s - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        let claimed = est.iter().map(|e| 2.0 * 0.25 * 0.25 / e.dof).sum::<f64>() / n;
        assert!((mean - 0.25).abs() < 0.05, "mean {mean}");
        assert!(var < 1.3 * claimed, "scatter {var} vs claimed {claimed}");
    }

    #[test]
    fn unhealthy_spans_are_not_learned_from() {
        let mut h = history(2000, 100.0, ramp, |_| 0.0);
        h.push(Entry {
            idx: 1408 - STRIDE,
            psi_ns: 0.0,
            theta_ks: 0.0,
            theta2_k2s: 0.0,
            healthy: false,
        });
        assert!(h.block(1408, 1.0, 0.0).is_none());
        // The first block whose data (slope windows included) start after it.
        let clear = 1408 - STRIDE + BLOCK + 2 * LEARN_SLOPE_WINDOW;
        let next = (clear / BLOCK + 1) * BLOCK;
        assert!(h.block(next - BLOCK, 1.0, 0.0).is_none());
        assert!(h.block(next, 1.0, 0.0).is_some());
    }
}
