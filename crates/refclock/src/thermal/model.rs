//! The oscillator's frequency as a function of temperature, learned online:
//! a four-state Kalman filter on `[f0, k, c, q]` for
//! `f = f0 + k·T + c·g + q·T²`, where `T` is the smoothed sensor reading
//! minus the reference and `g` its recent slope (the lag term: a sensor that
//! trails the crystal by τ seconds reads `T_crystal − τ·Ṫ`, so `c ≈ k·τ`).
//!
//! Observations are block averages of the free-running frequency measured by
//! the pulses; `f0` walks with the oscillator's learned random walk, the
//! coefficients with a little process noise so that a coefficient that
//! changes (a different airflow, an aged crystal) is followed. A coefficient
//! whose uncertainty is still large is not trusted: holdover then runs as if
//! there were no sensor.
//!
//! The quadratic term is used only when the data support it: the
//! temperature has spanned [`Q2_MIN_SPAN_K`] and the term is
//! [`Q2_SIGNIFICANCE`] sigmas from zero (for one added parameter the Wald
//! test is the F-test of the residuals with and without it; the threshold
//! allows for residuals that are not independent). Until then the
//! model is the linear one: the same filter conditioned on `q = 0`.
//! Beyond the temperatures it was learned over the model is extrapolating:
//! see [`TempcoModel::delta`].

/// Prior one-sigma of the temperature coefficient, ppb/K (1 ppm/K: worse
/// than any crystal that anyone ships).
const K_PRIOR_PPB_PER_K: f64 = 1_000.0;
/// Prior one-sigma of the lag term, ppb per (K/s): a lag of up to ~300 s at
/// the prior coefficient.
const C_PRIOR: f64 = 300_000.0;
/// Prior one-sigma of the quadratic term, ppb/K² (a tuning-fork crystal's
/// −34 ppb/K² three times over).
const Q2_PRIOR_PPB_PER_K2: f64 = 100.0;
/// Prior one-sigma of `f0`, ppb (set from the first block anyway).
const F0_PRIOR_PPB: f64 = 10_000.0;
/// Process noise of the coefficients, per second: (1 ppb/K)² per hour and
/// the same lag τ for `c`. None for `q`: a curvature belongs to the crystal's
/// cut, and a static `q` keeps the linear view (conditioned on `q = 0`)
/// exactly what a filter without the term learns; a relearn re-opens it.
const Q_K_PER_S: f64 = 1.0 / 3600.0;
const Q_C_PER_S: f64 = 100.0 * 100.0 / 3600.0;
/// A block whose innovation exceeds this many sigmas is a surprise; this
/// many in a row means the coefficients changed: their uncertainty is
/// re-opened.
const SURPRISE_SIGMAS: f64 = 5.0;
const SURPRISES_TO_RELEARN: u32 = 3;
/// Temperature span (K) the blocks must have covered before a quadratic
/// term can be told from a linear one.
pub const Q2_MIN_SPAN_K: f64 = 3.0;
/// Sigmas from zero the quadratic term must be before it is used. Not 3:
/// the blocks' residuals are not independent (the lag term's misfit at a
/// ramp's ends repeats from block to block), so the nominal Wald z
/// overstates; a linear crystal through one 4 K ramp showed −9 ± 2.2 ppb/K²
/// (rc-holdover-ramp-late), and using it there quadrupled the holdover error.
pub const Q2_SIGNIFICANCE: f64 = 5.0;
/// How far (K) beyond the learned range the model is still taken at its
/// word; past it, see [`TempcoModel::delta`].
pub const RANGE_MARGIN_K: f64 = 0.5;
/// One-sigma curvature (ppb/K²) assumed where the model was never learned:
/// a tuning-fork crystal's −34 ppb/K² is three of them, an AT-cut's cubic
/// 30 K from its inflection about one and a half.
const EXTRAPOLATION_CURVATURE_PPB_PER_K2: f64 = 12.0;

/// The state's dimension.
const N: usize = 4;

/// One block of learning data.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Block {
    /// Mean free-running frequency over the block, ppb.
    pub freq_ppb: f64,
    /// Its measurement variance, ppb².
    pub freq_var_ppb2: f64,
    /// Mean smoothed temperature over the block minus the reference, K.
    pub temp_k: f64,
    /// Mean of the square of that over the block, K².
    pub temp2_k2: f64,
    /// Mean slope term over the block, K/s.
    pub slope_k_per_s: f64,
    /// Block length, s.
    pub len_s: f64,
    /// Frequency random walk to allow for `f0` over the block, ppb²/s.
    pub q_rw_ppb2_per_s: f64,
}

/// The learned coefficients and their covariance.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct TempcoModel {
    /// `[f0 (ppb), k (ppb/K), c (ppb·s/K), q (ppb/K²)]`.
    pub x: [f64; N],
    /// Covariance of `x`.
    pub p: [[f64; N]; N],
    /// Blocks learned from.
    pub blocks: u64,
    /// The lowest and highest block temperature learned from (minus the
    /// reference), K.
    pub range_k: Option<(f64, f64)>,
    surprises: u32,
}

impl Default for TempcoModel {
    fn default() -> Self {
        Self::new()
    }
}

impl TempcoModel {
    /// Nothing learned: the priors.
    pub fn new() -> Self {
        let mut p = [[0.0; N]; N];
        p[0][0] = F0_PRIOR_PPB * F0_PRIOR_PPB;
        p[1][1] = K_PRIOR_PPB_PER_K * K_PRIOR_PPB_PER_K;
        p[2][2] = C_PRIOR * C_PRIOR;
        p[3][3] = Q2_PRIOR_PPB_PER_K2 * Q2_PRIOR_PPB_PER_K2;
        Self {
            x: [0.0; N],
            p,
            blocks: 0,
            range_k: None,
            surprises: 0,
        }
    }

    /// A model restored from a file: coefficients kept, `f0` re-opened (the
    /// oscillator may have aged, and the main filter re-measures it anyway).
    pub fn restored(m: &TempcoModel) -> Option<Self> {
        let finite =
            m.x.iter()
                .chain(m.p.iter().flatten())
                .all(|v| v.is_finite());
        let psd = (0..N).all(|i| m.p[i][i] > 0.0);
        let range_ok = m
            .range_k
            .is_none_or(|(lo, hi)| lo.is_finite() && hi.is_finite() && lo <= hi);
        if !finite || !psd || !range_ok {
            return None;
        }
        let mut m = Self { surprises: 0, ..*m };
        m.p[0][0] += F0_PRIOR_PPB * F0_PRIOR_PPB;
        Some(m)
    }

    /// Whether the quadratic term is in use: the temperature has spanned
    /// enough and the term is significant.
    pub fn quadratic_supported(&self) -> bool {
        let span = self.range_k.map_or(0.0, |(lo, hi)| hi - lo);
        let (q, sq) = (self.x[3], self.p[3][3].max(0.0).sqrt());
        self.blocks >= 8 && span >= Q2_MIN_SPAN_K && q.abs() >= Q2_SIGNIFICANCE * sq
    }

    /// The model in use: the full one if the quadratic term is supported,
    /// else the linear one (conditioned on `q = 0`, which is what a filter
    /// without the term would have learned).
    pub fn effective(&self) -> ([f64; N], [[f64; N]; N]) {
        if self.quadratic_supported() {
            return (self.x, self.p);
        }
        let pqq = self.p[3][3].max(1e-12);
        let cross = self.p[3];
        let mut x = self.x;
        let mut p = self.p;
        for ((xi, row), ci) in x.iter_mut().zip(p.iter_mut()).zip(cross) {
            *xi -= ci / pqq * self.x[3];
            for (v, cj) in row.iter_mut().zip(cross) {
                *v -= ci * cj / pqq;
            }
            row[3] = 0.0;
        }
        x[3] = 0.0;
        p[3] = [0.0; N];
        (x, p)
    }

    /// Temperature coefficient, ppb/K, and its one-sigma uncertainty (at the
    /// reference temperature).
    pub fn coefficient(&self) -> (f64, f64) {
        let (x, p) = self.effective();
        (x[1], p[1][1].max(0.0).sqrt())
    }

    /// Lag term, ppb per (K/s), and its one-sigma uncertainty.
    pub fn lag_term(&self) -> (f64, f64) {
        let (x, p) = self.effective();
        (x[2], p[2][2].max(0.0).sqrt())
    }

    /// Quadratic term, ppb/K², and its one-sigma uncertainty, if in use.
    pub fn quadratic(&self) -> Option<(f64, f64)> {
        self.quadratic_supported()
            .then(|| (self.x[3], self.p[3][3].max(0.0).sqrt()))
    }

    /// Whether the coefficient is known to `max_sigma_ppb_per_k`.
    pub fn trusted(&self, max_sigma_ppb_per_k: f64) -> bool {
        self.blocks >= 8 && self.coefficient().1 <= max_sigma_ppb_per_k
    }

    /// How far (K) `temp_k` is beyond the learned range and its margin
    /// (0 inside; all of it when no range is known).
    pub fn beyond_range_k(&self, temp_k: f64) -> f64 {
        match self.range_k {
            Some((lo, hi)) => ((lo - RANGE_MARGIN_K) - temp_k)
                .max(temp_k - (hi + RANGE_MARGIN_K))
                .max(0.0),
            None => 0.0,
        }
    }

    /// The predicted frequency change (ppb) and its one-sigma uncertainty
    /// from the coefficients alone, from temperature `from_k` to `to_k`
    /// (minus the reference) with a slope change `dg_k_per_s`. Beyond the
    /// learned range (and its margin) the model is extrapolating: the part
    /// of the change out there is predicted as before but counted wholly
    /// uncertain (one sigma is the change itself, at the slope the model
    /// has at the range's edge), and a curvature the range could not show
    /// is allowed for (one sigma of [`EXTRAPOLATION_CURVATURE_PPB_PER_K2`]
    /// bending away from the range's centre), so that a coefficient that
    /// bends or turns over where it was never seen still lies inside the
    /// bound.
    pub fn delta(&self, from_k: f64, to_k: f64, dg_k_per_s: f64) -> (f64, f64) {
        let (x, p) = self.effective();
        let h = [
            0.0,
            to_k - from_k,
            dg_k_per_s,
            to_k * to_k - from_k * from_k,
        ];
        let mean: f64 = (1..N).map(|i| x[i] * h[i]).sum();
        let sigma = quad(&p, &h).max(0.0).sqrt();
        let out = self.beyond_range_k(to_k);
        let extrapolation = match self.range_k {
            Some((lo, hi)) if out > 0.0 => {
                let edge = if to_k > hi { hi } else { lo };
                let (centre, half) = (0.5 * (lo + hi), 0.5 * (hi - lo) + RANGE_MARGIN_K);
                let d = (to_k - centre).abs();
                (x[1] + 2.0 * x[3] * edge).abs() * out
                    + EXTRAPOLATION_CURVATURE_PPB_PER_K2 * (d * d - half * half).max(0.0)
            }
            _ => 0.0,
        };
        (mean, sigma + extrapolation)
    }

    /// Learns from one block; returns the innovation in sigmas.
    pub fn observe(&mut self, b: &Block) -> Option<f64> {
        let values = [
            b.freq_ppb,
            b.freq_var_ppb2,
            b.temp_k,
            b.temp2_k2,
            b.slope_k_per_s,
            b.len_s,
            b.q_rw_ppb2_per_s,
        ];
        if values.iter().any(|v| !v.is_finite()) || b.len_s <= 0.0 || b.freq_var_ppb2 <= 0.0 {
            return None;
        }
        if self.blocks == 0 {
            self.x[0] = b.freq_ppb;
            self.p[0][0] = b.freq_var_ppb2 + F0_PRIOR_PPB;
        }
        self.p[0][0] += b.q_rw_ppb2_per_s.max(0.0) * b.len_s;
        self.p[1][1] += Q_K_PER_S * b.len_s;
        self.p[2][2] += Q_C_PER_S * b.len_s;
        let h = [1.0, b.temp_k, b.slope_k_per_s, b.temp2_k2];
        let predicted: f64 = (0..N).map(|i| h[i] * self.x[i]).sum();
        let residual = b.freq_ppb - predicted;
        let s = quad(&self.p, &h) + b.freq_var_ppb2;
        let z = residual / s.sqrt();
        let ph: [f64; N] = std::array::from_fn(|i| (0..N).map(|j| self.p[i][j] * h[j]).sum());
        let gain: [f64; N] = std::array::from_fn(|i| ph[i] / s);
        for (x, g) in self.x.iter_mut().zip(gain) {
            *x += g * residual;
        }
        // Joseph-free form is fine at this size; keep it symmetric.
        let mut p = self.p;
        for (i, row) in p.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v -= gain[i] * ph[j];
            }
        }
        let lower = p;
        for (i, row) in p.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = 0.5 * (lower[i][j] + lower[j][i]);
            }
        }
        for (i, row) in p.iter_mut().enumerate() {
            row[i] = row[i].max(1e-12);
        }
        self.p = p;
        self.blocks += 1;
        self.range_k = Some(match self.range_k {
            Some((lo, hi)) => (lo.min(b.temp_k), hi.max(b.temp_k)),
            None => (b.temp_k, b.temp_k),
        });
        if z.abs() > SURPRISE_SIGMAS {
            self.surprises += 1;
            if self.surprises >= SURPRISES_TO_RELEARN {
                self.relearn();
            }
        } else {
            self.surprises = 0;
        }
        Some(z)
    }

    /// The coefficients stopped explaining the data: open their uncertainty
    /// again so the next blocks re-learn them (and nothing trusts them until
    /// then).
    pub fn relearn(&mut self) {
        let (k, c, q) = (self.x[1], self.x[2], self.x[3]);
        self.p[1][1] += k * k + 100.0 * 100.0;
        self.p[2][2] += c * c + C_PRIOR * C_PRIOR / 100.0;
        self.p[3][3] += q * q + Q2_PRIOR_PPB_PER_K2 * Q2_PRIOR_PPB_PER_K2 / 100.0;
        self.p[0][0] += F0_PRIOR_PPB;
        self.surprises = 0;
        self.blocks = self.blocks.min(4);
    }
}

/// hᵀ P h.
fn quad(p: &[[f64; N]; N], h: &[f64; N]) -> f64 {
    (0..N)
        .map(|i| (0..N).map(|j| h[i] * p[i][j] * h[j]).sum::<f64>())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, Normal};

    /// Blocks of a crystal with coefficient `k` (ppb/K) and lag term `c`,
    /// with temperature `temp(i)` and slope `slope(i)` per block.
    fn feed(
        m: &mut TempcoModel,
        n: usize,
        k: f64,
        c: f64,
        temp: impl Fn(usize) -> f64,
        slope: impl Fn(usize) -> f64,
        seed: u64,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let noise = Normal::new(0.0, 20.0).expect("normal");
        for i in 0..n {
            let f = 5_000.0 + k * temp(i) + c * slope(i) + noise.sample(&mut rng);
            m.observe(&Block {
                freq_ppb: f,
                freq_var_ppb2: 400.0,
                temp_k: temp(i),
                temp2_k2: temp(i) * temp(i),
                slope_k_per_s: slope(i),
                len_s: 64.0,
                q_rw_ppb2_per_s: 0.25,
            });
        }
    }

    fn triangle(i: usize) -> f64 {
        let p = i % 40;
        if p < 20 {
            p as f64 * 0.2
        } else {
            (40 - p) as f64 * 0.2
        }
    }
    fn triangle_slope(i: usize) -> f64 {
        if i % 40 < 20 { 0.2 / 64.0 } else { -0.2 / 64.0 }
    }

    #[test]
    fn learns_the_coefficient_and_lag_from_a_ramp_and_then_trusts_it() {
        let mut m = TempcoModel::new();
        assert!(!m.trusted(10.0), "nothing learned is not trusted");
        feed(&mut m, 120, 100.0, 5_000.0, triangle, triangle_slope, 1);
        let (k, sk) = m.coefficient();
        assert!((k - 100.0).abs() < 4.0 * sk + 1.0, "k {k} ± {sk}");
        assert!(sk < 10.0, "sigma {sk}");
        assert!(m.trusted(10.0));
        let (dm, ds) = m.delta(0.0, 4.0, 0.0);
        assert!((dm - 400.0).abs() < 5.0 * ds, "{dm} ± {ds}");
    }

    #[test]
    fn a_constant_temperature_teaches_nothing_about_the_coefficient() {
        let mut m = TempcoModel::new();
        feed(&mut m, 200, 100.0, 0.0, |_| 0.0, |_| 0.0, 2);
        assert!(!m.trusted(10.0));
        assert!(m.coefficient().1 > 500.0);
    }

    #[test]
    fn a_coefficient_that_changes_sign_is_relearned_not_trusted_meanwhile() {
        let mut m = TempcoModel::new();
        feed(&mut m, 120, 100.0, 0.0, triangle, triangle_slope, 3);
        assert!(m.trusted(10.0));
        let mut distrusted = false;
        let mut rng = StdRng::seed_from_u64(4);
        let noise = Normal::new(0.0, 20.0).expect("normal");
        for i in 0..200 {
            let t = triangle(i);
            m.observe(&Block {
                freq_ppb: 5_000.0 - 100.0 * t + noise.sample(&mut rng),
                freq_var_ppb2: 400.0,
                temp_k: t,
                temp2_k2: t * t,
                slope_k_per_s: triangle_slope(i),
                len_s: 64.0,
                q_rw_ppb2_per_s: 0.25,
            });
            distrusted |= !m.trusted(10.0);
        }
        assert!(distrusted, "the flip must be noticed");
        let (k, sk) = m.coefficient();
        assert!((k + 100.0).abs() < 5.0 * sk + 2.0, "relearned k {k} ± {sk}");
    }

    #[test]
    fn garbage_blocks_are_refused() {
        let mut m = TempcoModel::new();
        let b = Block {
            freq_ppb: f64::NAN,
            freq_var_ppb2: 1.0,
            temp_k: 0.0,
            temp2_k2: 0.0,
            slope_k_per_s: 0.0,
            len_s: 64.0,
            q_rw_ppb2_per_s: 0.0,
        };
        assert_eq!(m.observe(&b), None);
        assert_eq!(m.blocks, 0);
        let mut broken = m;
        broken.x[1] = f64::INFINITY;
        assert!(TempcoModel::restored(&broken).is_none());
        let mut backwards = m;
        backwards.range_k = Some((2.0, 1.0));
        assert!(TempcoModel::restored(&backwards).is_none());
    }

    /// A crystal `f = 5000 + k·T + q·T²` through `temp(i)`, white noise 20 ppb.
    fn feed_quadratic(m: &mut TempcoModel, n: usize, k: f64, q: f64, amp: f64, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let noise = Normal::new(0.0, 20.0).expect("normal");
        for i in 0..n {
            let t = triangle(i) * amp / 4.0;
            m.observe(&Block {
                freq_ppb: 5_000.0 + k * t + q * t * t + noise.sample(&mut rng),
                freq_var_ppb2: 400.0,
                temp_k: t,
                temp2_k2: t * t,
                slope_k_per_s: triangle_slope(i) * amp / 4.0,
                len_s: 64.0,
                q_rw_ppb2_per_s: 0.25,
            });
        }
    }

    #[test]
    fn a_quadratic_term_is_used_only_when_the_data_support_it() {
        // A curved crystal over 8 K: learned, with its uncertainty.
        let mut curved = TempcoModel::new();
        feed_quadratic(&mut curved, 200, 100.0, -20.0, 8.0, 11);
        let (q, sq) = curved.quadratic().expect("supported");
        assert!((q + 20.0).abs() < 4.0 * sq + 0.5, "q {q} ± {sq}");
        let (dm, ds) = curved.delta(2.0, 6.0, 0.0);
        let truth = 100.0 * 4.0 - 20.0 * (36.0 - 4.0);
        assert!(
            (dm - truth).abs() < 4.0 * ds + 1.0,
            "{dm} ± {ds} vs {truth}"
        );
        // A straight one over the same span: the term is not significant.
        for seed in 12..17 {
            let mut straight = TempcoModel::new();
            feed_quadratic(&mut straight, 200, 100.0, 0.0, 8.0, seed);
            assert!(straight.quadratic().is_none(), "seed {seed}");
            assert!(straight.trusted(10.0));
        }
        // The same curvature over 2 K: too little span to tell.
        let mut narrow = TempcoModel::new();
        feed_quadratic(&mut narrow, 200, 100.0, -20.0, 2.0, 18);
        assert!(narrow.quadratic().is_none());
    }

    #[test]
    fn beyond_the_learned_range_the_prediction_grows_uncertain() {
        let mut m = TempcoModel::new();
        feed(&mut m, 120, 100.0, 0.0, triangle, triangle_slope, 21);
        let (lo, hi) = m.range_k.expect("range");
        assert!(lo < 0.5 && hi > 3.5, "{lo}..{hi}");
        let (_, inside) = m.delta(1.0, 3.0, 0.0);
        assert!(inside < 20.0, "{inside}");
        assert!(m.beyond_range_k(hi + RANGE_MARGIN_K).abs() < 1e-12);
        // 4 K past the edge: one sigma covers the whole extrapolated change,
        // so a coefficient that turns over out there stays inside 3 sigma.
        let to = hi + RANGE_MARGIN_K + 4.0;
        let (mean, sigma) = m.delta(1.0, to, 0.0);
        assert!(
            (mean - 100.0 * (to - 1.0)).abs() < 10.0 * (to - 1.0),
            "{mean}"
        );
        assert!(sigma >= 0.95 * 100.0 * 4.0, "{sigma}");
        let flipped_truth = 100.0 * (hi + RANGE_MARGIN_K - 1.0) - 100.0 * 4.0;
        assert!((mean - flipped_truth).abs() < 3.0 * sigma);
        // Below the range too.
        assert!(m.delta(1.0, lo - RANGE_MARGIN_K - 2.0, 0.0).1 >= 190.0);
    }
}
