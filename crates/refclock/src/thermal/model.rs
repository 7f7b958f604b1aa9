//! The oscillator's frequency as a function of temperature, learned online:
//! a three-state Kalman filter on `[f0, k, c]` for
//! `f = f0 + k·(T − T_ref) + c·g`, where `T` is the smoothed sensor reading
//! and `g` its recent slope (the lag term: a sensor that trails the crystal
//! by τ seconds reads `T_crystal − τ·Ṫ`, so `c ≈ k·τ`).
//!
//! Observations are block averages of the free-running frequency measured by
//! the pulses; `f0` walks with the oscillator's learned random walk, `k` and
//! `c` with a little process noise so that a coefficient that changes (a
//! different airflow, an aged crystal) is followed. A coefficient whose
//! uncertainty is still large is not trusted: holdover then runs as if there
//! were no sensor.

/// Prior one-sigma of the temperature coefficient, ppb/K (1 ppm/K: worse
/// than any crystal that anyone ships).
const K_PRIOR_PPB_PER_K: f64 = 1_000.0;
/// Prior one-sigma of the lag term, ppb per (K/s): a lag of up to ~300 s at
/// the prior coefficient.
const C_PRIOR: f64 = 300_000.0;
/// Prior one-sigma of `f0`, ppb (set from the first block anyway).
const F0_PRIOR_PPB: f64 = 10_000.0;
/// Process noise of the coefficients, per second: (1 ppb/K)² per hour, and
/// the same lag τ for `c`.
const Q_K_PER_S: f64 = 1.0 / 3600.0;
const Q_C_PER_S: f64 = 100.0 * 100.0 / 3600.0;
/// A block whose innovation exceeds this many sigmas is a surprise; this
/// many in a row means the coefficients changed: their uncertainty is
/// re-opened.
const SURPRISE_SIGMAS: f64 = 5.0;
const SURPRISES_TO_RELEARN: u32 = 3;

/// One block of learning data.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Block {
    /// Mean free-running frequency over the block, ppb.
    pub freq_ppb: f64,
    /// Its measurement variance, ppb².
    pub freq_var_ppb2: f64,
    /// Mean smoothed temperature over the block minus the reference, K.
    pub temp_k: f64,
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
    /// `[f0 (ppb), k (ppb/K), c (ppb·s/K)]`.
    pub x: [f64; 3],
    /// Covariance of `x`.
    pub p: [[f64; 3]; 3],
    /// Blocks learned from.
    pub blocks: u64,
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
        let mut p = [[0.0; 3]; 3];
        p[0][0] = F0_PRIOR_PPB * F0_PRIOR_PPB;
        p[1][1] = K_PRIOR_PPB_PER_K * K_PRIOR_PPB_PER_K;
        p[2][2] = C_PRIOR * C_PRIOR;
        Self {
            x: [0.0; 3],
            p,
            blocks: 0,
            surprises: 0,
        }
    }

    /// A model restored from a file: coefficients kept, `f0` re-opened (the
    /// oscillator may have aged, and the main filter re-measures it anyway).
    pub fn restored(x: [f64; 3], p: [[f64; 3]; 3], blocks: u64) -> Option<Self> {
        let finite = x.iter().chain(p.iter().flatten()).all(|v| v.is_finite());
        let psd = (0..3).all(|i| p[i][i] > 0.0);
        if !finite || !psd {
            return None;
        }
        let mut m = Self {
            x,
            p,
            blocks,
            surprises: 0,
        };
        m.p[0][0] += F0_PRIOR_PPB * F0_PRIOR_PPB;
        Some(m)
    }

    /// Temperature coefficient, ppb/K, and its one-sigma uncertainty.
    pub fn coefficient(&self) -> (f64, f64) {
        (self.x[1], self.p[1][1].max(0.0).sqrt())
    }

    /// Lag term, ppb per (K/s), and its one-sigma uncertainty.
    pub fn lag_term(&self) -> (f64, f64) {
        (self.x[2], self.p[2][2].max(0.0).sqrt())
    }

    /// Whether the coefficient is known to `max_sigma_ppb_per_k`.
    pub fn trusted(&self, max_sigma_ppb_per_k: f64) -> bool {
        self.blocks >= 8 && self.coefficient().1 <= max_sigma_ppb_per_k
    }

    /// The predicted frequency change (ppb) and its one-sigma uncertainty
    /// from the coefficients alone, for a temperature change `dt_k` and a
    /// slope change `dg_k_per_s` since the last measured frequency.
    pub fn delta(&self, dt_k: f64, dg_k_per_s: f64) -> (f64, f64) {
        let h = [0.0, dt_k, dg_k_per_s];
        let mean = self.x[1] * dt_k + self.x[2] * dg_k_per_s;
        (mean, quad(&self.p, &h).max(0.0).sqrt())
    }

    /// Learns from one block; returns the innovation in sigmas.
    pub fn observe(&mut self, b: &Block) -> Option<f64> {
        let values = [
            b.freq_ppb,
            b.freq_var_ppb2,
            b.temp_k,
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
        let h = [1.0, b.temp_k, b.slope_k_per_s];
        let predicted: f64 = (0..3).map(|i| h[i] * self.x[i]).sum();
        let residual = b.freq_ppb - predicted;
        let s = quad(&self.p, &h) + b.freq_var_ppb2;
        let z = residual / s.sqrt();
        let ph: [f64; 3] = std::array::from_fn(|i| (0..3).map(|j| self.p[i][j] * h[j]).sum());
        let gain: [f64; 3] = std::array::from_fn(|i| ph[i] / s);
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
        for (i, j) in [(1, 0), (2, 0), (2, 1)] {
            let m = 0.5 * (p[i][j] + p[j][i]);
            p[i][j] = m;
            p[j][i] = m;
        }
        for (i, row) in p.iter_mut().enumerate() {
            row[i] = row[i].max(1e-12);
        }
        self.p = p;
        self.blocks += 1;
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
        let (k, _) = self.coefficient();
        let (c, _) = self.lag_term();
        self.p[1][1] += k * k + 100.0 * 100.0;
        self.p[2][2] += c * c + C_PRIOR * C_PRIOR / 100.0;
        self.p[0][0] += F0_PRIOR_PPB;
        self.surprises = 0;
        self.blocks = self.blocks.min(4);
    }
}

/// hᵀ P h.
fn quad(p: &[[f64; 3]; 3], h: &[f64; 3]) -> f64 {
    (0..3)
        .map(|i| (0..3).map(|j| h[i] * p[i][j] * h[j]).sum::<f64>())
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
        let (dm, ds) = m.delta(4.0, 0.0);
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
            slope_k_per_s: 0.0,
            len_s: 64.0,
            q_rw_ppb2_per_s: 0.0,
        };
        assert_eq!(m.observe(&b), None);
        assert_eq!(m.blocks, 0);
        assert!(TempcoModel::restored([0.0, f64::INFINITY, 0.0], m.p, 3).is_none());
    }
}
