//! The phase/frequency Kalman filter and the online learning of its noise.
//!
//! State: `x`, the disciplined clock's offset (ns), and `f`, the free-running
//! oscillator's frequency error (ppb = ns/s). The discipline's own frequency
//! corrections are known inputs, so the filter sees the oscillator as it is.
//!
//! Noise is learned from the data, not configured: the free-running phase
//! ψ (measured offset minus every correction we applied) is reconstructed for
//! each pulse, and the variance of its second differences at lags τ = 1..128 s
//! is fitted to `6R + 2·q_wfm·τ + (2/3)·q_rw·τ³` (white phase noise R of the
//! pulse stamps, white frequency noise, frequency random walk). Exact edges
//! give R ≈ 0 and a near-deadbeat filter; a Pi's 1-2 µs interrupt jitter gives
//! a smoothing one; a warming oscillator raises q_rw and the filter follows.

use crate::phase_history::PhaseHistory;

/// Lags (seconds) at which second differences are measured.
const LAGS: [i64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
/// Free-running phase history kept, samples (covers 2 × the largest lag).
const HISTORY: usize = 4096;
/// The upper bound is the variance that would leave the measured one at the
/// lower 2.3 % point of its chi-square distribution (z = -2).
const UPPER_Z: f64 = 2.0;
/// Frequency random walk assumed (ppb²/s) while no lag has data: a poor
/// crystal (≈ 3 ppb/√s), so that early holdover is honest.
const UNKNOWN_Q_RW: f64 = 10.0;
/// Pseudo-samples the prior is worth at each lag.
const PRIOR_WEIGHT: f64 = 0.5;
/// Longest averaging window, in samples of each lag.
const WINDOW: f64 = 600.0;

/// Noise intensities of the clock model.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct NoiseParams {
    /// White phase noise of the measurements, ns².
    pub r: f64,
    /// White frequency noise (phase random walk), ns²/s.
    pub q_wfm: f64,
    /// Frequency random walk, ppb²/s (= ns²/s³).
    pub q_rw: f64,
}

impl NoiseParams {
    /// Modest assumptions, used until data says otherwise: 300 ns of jitter,
    /// a frequency wander of 1 ppb/√s.
    pub const PRIOR: NoiseParams = NoiseParams {
        r: 300.0 * 300.0,
        q_wfm: 1.0,
        q_rw: 1.0,
    };

    /// The variance of a lag-τ second difference this model predicts.
    fn second_difference_variance(&self, tau: f64) -> f64 {
        6.0 * self.r + 2.0 * self.q_wfm * tau + (2.0 / 3.0) * self.q_rw * tau * tau * tau
    }
}

/// Learns [`NoiseParams`] from the free-running phase.
#[derive(Clone, Debug)]
pub struct NoiseLearner {
    history: PhaseHistory,
    var: [f64; LAGS.len()],
    count: [f64; LAGS.len()],
    floor_r: f64,
    fitted: NoiseParams,
}

impl NoiseLearner {
    /// An empty learner; `floor_r` is the smallest measurement variance
    /// believed (the clock's reading precision squared).
    pub fn new(floor_r: f64) -> Self {
        let mut var = [0.0; LAGS.len()];
        for (v, &tau) in var.iter_mut().zip(LAGS.iter()) {
            *v = NoiseParams::PRIOR.second_difference_variance(tau as f64);
        }
        Self {
            history: PhaseHistory::new(HISTORY),
            var,
            count: [0.0; LAGS.len()],
            floor_r: floor_r.max(1e-6),
            fitted: NoiseParams::PRIOR,
        }
    }

    /// Forgets the phase history (after a phase jump or relabel); keeps what
    /// was learned about the noise.
    pub fn clear_history(&mut self) {
        self.history.clear();
    }

    /// Adds the free-running phase ψ (ns) of the pulse numbered `idx`
    /// (consecutive pulses are consecutive numbers) and refits.
    pub fn add(&mut self, idx: i64, psi_ns: f64) {
        self.history.insert(idx, psi_ns);
        let mut changed = false;
        for (k, &tau) in LAGS.iter().enumerate() {
            let Some(d) = self.history.second_difference(idx, tau) else {
                continue;
            };
            self.count[k] += 1.0;
            let w = 1.0 / (self.count[k] + PRIOR_WEIGHT).min(WINDOW);
            self.var[k] += w * (d * d - self.var[k]);
            changed = true;
        }
        if changed {
            self.fitted = self.fit();
        }
    }

    /// The second-difference variances at each lag and their sample counts.
    pub fn lag_variances(&self) -> Vec<(i64, f64, f64)> {
        LAGS.iter()
            .zip(self.var.iter().zip(self.count.iter()))
            .map(|(&t, (&v, &n))| (t, v, n))
            .collect()
    }

    /// The largest frequency random walk (ppb²/s) that the data do not rule
    /// out: each lag's variance raised by its sampling error, minus what
    /// white phase noise explains, over τ³; the tightest lag wins. This is
    /// what holdover must assume: a fit from a few long lags can come out
    /// near zero by chance (or call it white frequency noise).
    pub fn q_rw_upper(&self) -> f64 {
        let fit = self.fitted;
        let mut best = f64::INFINITY;
        for ((&tau, &v), &n) in LAGS.iter().zip(self.var.iter()).zip(self.count.iter()) {
            // Degrees of freedom of overlapping second differences, conservatively.
            let dof = n / (2.0 * tau as f64);
            // Wilson–Hilferty: the chi-square quantile as a cube of a normal one.
            let h = 2.0 / (9.0 * dof);
            let base = 1.0 - h - UPPER_Z * h.sqrt();
            if dof < 1.0 || base <= 0.05 {
                continue;
            }
            let tau = tau as f64;
            let upper = v / (base * base * base);
            let q = (upper - 6.0 * fit.r) / ((2.0 / 3.0) * tau * tau * tau);
            best = best.min(q.max(0.0));
        }
        if best.is_finite() {
            best.max(fit.q_rw)
        } else {
            UNKNOWN_Q_RW.max(fit.q_rw)
        }
    }

    /// The current noise estimate.
    pub fn params(&self) -> NoiseParams {
        self.fitted
    }

    /// Weighted non-negative least squares of the lag variances onto the three
    /// noise types, by trying every subset of them (there are only seven).
    fn fit(&self) -> NoiseParams {
        let basis = |tau: f64| [6.0, 2.0 * tau, (2.0 / 3.0) * tau * tau * tau];
        // Relative-error weights: each lag's estimate is worth about
        // count/τ independent samples, and its error scales with its size.
        let rows: Vec<([f64; 3], f64, f64)> = LAGS
            .iter()
            .zip(self.var.iter().zip(self.count.iter()))
            .map(|(&tau, (&v, &n))| {
                let eff = ((n + PRIOR_WEIGHT) / tau as f64).max(0.5);
                let v = v.max(1e-9);
                (basis(tau as f64), v, eff / (v * v))
            })
            .collect();
        let mut best: Option<(f64, [f64; 3])> = None;
        for mask in 1u8..8 {
            let idx: Vec<usize> = (0..3).filter(|i| mask & (1 << i) != 0).collect();
            let n = idx.len();
            let mut a = [[0.0f64; 4]; 3];
            for (g, v, w) in &rows {
                for (r, &i) in idx.iter().enumerate() {
                    for (c, &j) in idx.iter().enumerate() {
                        a[r][c] += w * g[i] * g[j];
                    }
                    a[r][3] += w * g[i] * v;
                }
            }
            let Some(sol) = solve(&mut a, n) else {
                continue;
            };
            if sol.iter().take(n).any(|&s| s < 0.0 || !s.is_finite()) {
                continue;
            }
            let mut coef = [0.0; 3];
            for (r, &i) in idx.iter().enumerate() {
                coef[i] = sol[r];
            }
            let cost: f64 = rows
                .iter()
                .map(|(g, v, w)| {
                    let m = g[0] * coef[0] + g[1] * coef[1] + g[2] * coef[2];
                    w * (v - m) * (v - m)
                })
                .sum();
            if best.is_none_or(|(c, _)| cost < c) {
                best = Some((cost, coef));
            }
        }
        let coef =
            best.map(|b| b.1)
                .unwrap_or([NoiseParams::PRIOR.r, 0.0, NoiseParams::PRIOR.q_rw]);
        NoiseParams {
            r: coef[0].max(self.floor_r),
            q_wfm: coef[1],
            q_rw: coef[2].max(1e-6),
        }
    }
}

/// Gaussian elimination with partial pivoting on the top-left n×n block of
/// `a`, whose right-hand side is column 3.
fn solve(a: &mut [[f64; 4]; 3], n: usize) -> Option<[f64; 3]> {
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, piv);
        for row in 0..n {
            if row != col {
                let f = a[row][col] / a[col][col];
                for k in (col..n).chain(std::iter::once(3)) {
                    a[row][k] -= f * a[col][k];
                }
            }
        }
    }
    let mut out = [0.0; 3];
    for i in 0..n {
        out[i] = a[i][3] / a[i][i];
    }
    Some(out)
}

/// The Kalman filter: offset, frequency and (when `q_drift` > 0) frequency
/// drift. With `q_drift` = 0 the drift stays at zero and it is the classic
/// two-state clock filter.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Kalman {
    /// Offset of the disciplined clock at the last update, ns.
    pub x: f64,
    /// Free-running frequency error of the oscillator, ppb.
    pub f: f64,
    /// Frequency drift (a warming or cooling crystal), ppb/s.
    pub d: f64,
    /// Variance of the offset estimate, ns².
    pub pxx: f64,
    /// Covariance of offset and frequency.
    pub pxf: f64,
    /// Variance of the frequency estimate, ppb².
    pub pff: f64,
    /// Covariance of offset and drift.
    pub pxd: f64,
    /// Covariance of frequency and drift.
    pub pfd: f64,
    /// Variance of the drift estimate, (ppb/s)².
    pub pdd: f64,
    /// Random-walk intensity of the drift, ppb²/s³ (0: no drift state).
    pub q_drift: f64,
}

/// What one measurement did to the filter.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Innovation {
    /// Measurement minus prediction, ns.
    pub residual_ns: f64,
    /// Its predicted variance, ns².
    pub variance: f64,
}

impl Kalman {
    /// A filter that starts at offset `x` (ns) and frequency error `f` (ppb).
    pub fn new(x: f64, pxx: f64, f: f64, pff: f64) -> Self {
        Self {
            x,
            f,
            d: 0.0,
            pxx,
            pxf: 0.0,
            pff,
            pxd: 0.0,
            pfd: 0.0,
            pdd: 0.0,
            q_drift: 0.0,
        }
    }

    /// The same filter, with a drift state of random-walk intensity `q_drift`.
    pub fn with_drift(mut self, q_drift: f64) -> Self {
        self.q_drift = q_drift.max(0.0);
        self
    }

    fn matrix(&self) -> [[f64; 3]; 3] {
        [
            [self.pxx, self.pxf, self.pxd],
            [self.pxf, self.pff, self.pfd],
            [self.pxd, self.pfd, self.pdd],
        ]
    }

    fn set_matrix(&mut self, p: [[f64; 3]; 3]) {
        // Symmetrise and keep the diagonal positive against rounding.
        self.pxx = p[0][0].max(1e-12);
        self.pff = p[1][1].max(1e-12);
        self.pdd = if self.q_drift > 0.0 {
            p[2][2].max(0.0)
        } else {
            0.0
        };
        let lim = (self.pxx * self.pff).sqrt() * 0.999_999;
        self.pxf = (0.5 * (p[0][1] + p[1][0])).clamp(-lim, lim);
        if self.q_drift > 0.0 {
            let lim_xd = (self.pxx * self.pdd).sqrt() * 0.999_999;
            let lim_fd = (self.pff * self.pdd).sqrt() * 0.999_999;
            self.pxd = (0.5 * (p[0][2] + p[2][0])).clamp(-lim_xd, lim_xd);
            self.pfd = (0.5 * (p[1][2] + p[2][1])).clamp(-lim_fd, lim_fd);
        } else {
            self.pxd = 0.0;
            self.pfd = 0.0;
        }
    }

    /// The state `dt` seconds on, given that the discipline added
    /// `applied_ns` of phase correction meanwhile, under noise `q`
    /// (scaled by `q_scale`). Does not change the filter.
    pub fn predicted(&self, dt: f64, applied_ns: f64, q: &NoiseParams, q_scale: f64) -> Kalman {
        let t = dt.max(0.0);
        let (t2, t3) = (t * t, t * t * t);
        let qw = q.q_wfm * q_scale;
        let qr = q.q_rw * q_scale;
        let qd = self.q_drift;
        let f = [[1.0, t, t2 / 2.0], [0.0, 1.0, t], [0.0, 0.0, 1.0]];
        let p = self.matrix();
        let mut fp = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                fp[i][j] = (0..3).map(|k| f[i][k] * p[k][j]).sum();
            }
        }
        let mut out = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                out[i][j] = (0..3).map(|k| fp[i][k] * f[j][k]).sum();
            }
        }
        // White FM, random-walk FM, and random-walk drift.
        out[0][0] += qw * t + qr * t3 / 3.0 + qd * t2 * t3 / 20.0;
        out[0][1] += qr * t2 / 2.0 + qd * t2 * t2 / 8.0;
        out[1][0] += qr * t2 / 2.0 + qd * t2 * t2 / 8.0;
        out[1][1] += qr * t + qd * t3 / 3.0;
        out[0][2] += qd * t3 / 6.0;
        out[2][0] += qd * t3 / 6.0;
        out[1][2] += qd * t2 / 2.0;
        out[2][1] += qd * t2 / 2.0;
        out[2][2] += qd * t;
        let mut k = Kalman {
            x: self.x + self.f * t + self.d * t2 / 2.0 + applied_ns,
            f: self.f + self.d * t,
            ..*self
        };
        k.set_matrix(out);
        k
    }

    /// The innovation a measurement `z` would give against this (predicted) state.
    pub fn innovation(&self, z: f64, r: f64) -> Innovation {
        Innovation {
            residual_ns: z - self.x,
            variance: self.pxx + r,
        }
    }

    /// Updates this (predicted) state with measurement `z` of variance `r`.
    pub fn update(&mut self, z: f64, r: f64) -> Innovation {
        let inn = self.innovation(z, r);
        let s = inn.variance.max(1e-12);
        let p = self.matrix();
        let gain = [p[0][0] / s, p[1][0] / s, p[2][0] / s];
        self.x += gain[0] * inn.residual_ns;
        self.f += gain[1] * inn.residual_ns;
        if self.q_drift > 0.0 {
            self.d += gain[2] * inn.residual_ns;
        }
        let mut out = p;
        for i in 0..3 {
            for j in 0..3 {
                out[i][j] = p[i][j] - gain[i] * p[0][j];
            }
        }
        self.set_matrix(out);
        inn
    }
}

/// Multipliers on the learned process noise, one filter each.
pub const Q_SCALES: [f64; 7] = [0.1, 1.0, 10.0, 100.0, 1000.0, 1.0, 1.0];
/// Drift random-walk intensity of each filter, ppb²/s³: the last two follow a
/// crystal warming up or cooling down (a frequency ramp) without lag.
pub const Q_DRIFTS: [f64; 7] = [0.0, 0.0, 0.0, 0.0, 0.0, 1e-3, 3e-2];
/// Samples over which the filters' likelihoods are compared.
const SCORE_WINDOW: f64 = 15.0;
/// How much more likely (log-likelihood over the window) another filter must
/// be before it takes over from the one with the learned noise: switching on
/// noise alone would add noise.
const SWITCH_EVIDENCE: f64 = 4.0;
/// The filter with the learned noise, unscaled.
const NOMINAL: usize = 1;

/// A bank of filters that differ only in how much the oscillator is allowed
/// to wander (the learned noise times [`Q_SCALES`]); the one whose recent
/// innovations are most likely steers. The noise learner needs hundreds of
/// seconds to notice a warming oscillator; the bank notices in tens.
#[derive(Clone, Debug)]
pub struct FilterBank {
    filters: [Kalman; Q_SCALES.len()],
    scores: [f64; Q_SCALES.len()],
    samples: f64,
    best: usize,
}

impl FilterBank {
    /// Every filter starting from `k`; the unscaled one leads until the data speak.
    pub fn new(k: Kalman) -> Self {
        Self {
            filters: std::array::from_fn(|i| k.with_drift(Q_DRIFTS[i])),
            scores: [0.0; Q_SCALES.len()],
            samples: 0.0,
            best: NOMINAL,
        }
    }

    /// The filter in charge.
    pub fn best(&self) -> Kalman {
        self.filters[self.best]
    }

    /// The noise multiplier of the filter in charge.
    pub fn best_scale(&self) -> f64 {
        Q_SCALES[self.best]
    }

    /// Which filter is in charge (an index into [`Q_SCALES`] / [`Q_DRIFTS`]).
    pub fn best_index(&self) -> usize {
        self.best
    }

    /// Every filter's prediction `dt` seconds on (see [`Kalman::predicted`]).
    pub fn predicted(&self, dt: f64, applied_ns: f64, q: &NoiseParams) -> [Kalman; Q_SCALES.len()] {
        std::array::from_fn(|i| self.filters[i].predicted(dt, applied_ns, q, Q_SCALES[i]))
    }

    /// Updates every prediction with `z` and re-elects the filter in charge.
    pub fn update(&mut self, mut preds: [Kalman; Q_SCALES.len()], z: f64, r: f64) {
        self.samples = (self.samples + 1.0).min(SCORE_WINDOW);
        let alpha = 1.0 / self.samples;
        for (i, p) in preds.iter_mut().enumerate() {
            let inn = p.update(z, r);
            let s = inn.variance.max(1e-12);
            let nll = s.ln() + inn.residual_ns * inn.residual_ns / s;
            self.scores[i] += alpha * (nll - self.scores[i]);
        }
        self.filters = preds;
        let best = (0..Q_SCALES.len())
            .min_by(|&a, &b| self.scores[a].total_cmp(&self.scores[b]))
            .unwrap_or(NOMINAL);
        // Scores are mean negative log-likelihoods (×2) over the window.
        let evidence = (self.scores[NOMINAL] - self.scores[best]) * self.samples / 2.0;
        self.best = if evidence > SWITCH_EVIDENCE {
            best
        } else {
            NOMINAL
        };
    }

    /// Every filter's frequency moved by `delta_ppb` (a change predicted from
    /// outside the pulses, such as temperature during a holdover).
    pub fn shift_frequency(&mut self, delta_ppb: f64) {
        for k in self.filters.iter_mut() {
            k.f += delta_ppb;
        }
    }

    /// Every filter to `k` (after a phase jump), keeping the scores.
    pub fn reset_to(&mut self, k: Kalman) {
        let k = Kalman {
            d: 0.0,
            pxd: 0.0,
            pfd: 0.0,
            pdd: 0.0,
            ..k
        };
        self.filters = std::array::from_fn(|i| k.with_drift(Q_DRIFTS[i]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, Normal};

    /// A learner fed `n` seconds of free-running phase with white PM
    /// `sigma_pm` (ns) and random-walk FM `sigma_rw` (ppb per √s).
    fn learner(sigma_pm: f64, sigma_rw: f64, n: usize, seed: u64) -> NoiseLearner {
        let mut rng = StdRng::seed_from_u64(seed);
        let pm = Normal::new(0.0, sigma_pm.max(1e-12)).expect("normal");
        let rw = Normal::new(0.0, sigma_rw.max(1e-12)).expect("normal");
        let mut learner = NoiseLearner::new(1.0);
        let (mut x, mut f) = (0.0, 5000.0);
        for i in 0..n {
            learner.add(i64::try_from(i).unwrap(), x + pm.sample(&mut rng));
            x += f;
            f += rw.sample(&mut rng);
        }
        learner
    }

    #[test]
    fn the_random_walk_upper_bound_covers_the_truth_even_from_little_data() {
        for seed in 0..20 {
            for n in [300, 600, 2000, 6000] {
                let l = learner(1000.0, 0.5, n, seed);
                let up = l.q_rw_upper();
                assert!(
                    up >= 0.25,
                    "seed {seed} n {n}: upper {up} below the true 0.25 (fit {:?})",
                    l.params()
                );
                if n == 6000 {
                    assert!(
                        up < 5.0,
                        "seed {seed}: upper {up} uselessly loose after {n} s"
                    );
                }
            }
        }
    }

    /// What [`learner`] learns with seed 7.
    fn learn(sigma_pm: f64, sigma_rw: f64, n: usize) -> NoiseParams {
        learner(sigma_pm, sigma_rw, n, 7).params()
    }

    #[test]
    fn learns_white_phase_noise_of_a_pi_interrupt() {
        let p = learn(1000.0, 0.5, 4000);
        let sigma = p.r.sqrt();
        assert!(
            (700.0..1300.0).contains(&sigma),
            "jitter learned as {sigma} ns, want ~1000"
        );
        assert!(
            p.q_rw < 20.0,
            "random walk {} ppb²/s for a true 0.25",
            p.q_rw
        );
    }

    #[test]
    fn learns_random_walk_when_edges_are_exact() {
        let p = learn(0.0, 1.0, 4000);
        assert!(p.r.sqrt() < 5.0, "jitter {} ns on exact edges", p.r.sqrt());
        assert!(
            (0.3..3.0).contains(&p.q_rw),
            "random walk {} ppb²/s, want ~1",
            p.q_rw
        );
    }

    #[test]
    fn kalman_tracks_a_line_exactly_and_gets_confident() {
        let q = NoiseParams {
            r: 1.0,
            q_wfm: 0.0,
            q_rw: 0.01,
        };
        let mut k = Kalman::new(0.0, 1e6, 0.0, 1e8);
        for i in 1..50 {
            k = k.predicted(1.0, 0.0, &q, 1.0);
            k.update(100.0 + 2000.0 * f64::from(i), q.r);
        }
        assert!((k.f - 2000.0).abs() < 0.5, "f {}", k.f);
        assert!(k.pxx.sqrt() < 2.0 && k.pff.sqrt() < 1.0, "{k:?}");
        // Prediction uncertainty grows with the horizon.
        let p10 = k.predicted(10.0, 0.0, &q, 1.0).pxx;
        let p1000 = k.predicted(1000.0, 0.0, &q, 1.0).pxx;
        assert!(p1000 > 100.0 * p10, "{p10} {p1000}");
    }
}
