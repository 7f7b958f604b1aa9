//! The oscillator's frequency random walk with temperature set aside, as an
//! estimate with its degrees of freedom (a sufficient statistic: estimates
//! pool across restarts), and the Student-t predictive interval it gives.
//!
//! The walk is estimated from the residual phase, so its σ is not known but
//! estimated with ν degrees of freedom. The honest interval for a prediction
//! whose variance scales with that σ² is the point estimate times a
//! Student-t quantile at the wanted coverage: wider than the normal one
//! when ν is small, the same when ν is large, and never an upper bound on σ
//! multiplied by a normal quantile (two margins stacked).

/// The least degrees of freedom an estimate needs before it is used (below
/// this the t-quantile expansion is no longer accurate).
pub const MIN_DOF: f64 = 4.0;

/// A random walk estimate, ppb²/s, with its degrees of freedom.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct WalkEstimate {
    /// Point estimate of the random walk, ppb²/s.
    pub q_ppb2_per_s: f64,
    /// Equivalent degrees of freedom of the estimate (χ² with ν dof).
    pub dof: f64,
}

impl WalkEstimate {
    /// An estimate, if it is a usable one (finite, non-negative, enough dof).
    pub fn new(q_ppb2_per_s: f64, dof: f64) -> Option<Self> {
        (q_ppb2_per_s.is_finite() && q_ppb2_per_s >= 0.0 && dof.is_finite() && dof >= MIN_DOF)
            .then_some(Self { q_ppb2_per_s, dof })
    }

    /// Two independent estimates of the same random walk pooled: the
    /// dof-weighted mean, with the dof added (as pooled variances are).
    pub fn pooled(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        match (a, b) {
            (Some(a), Some(b)) => {
                let dof = a.dof + b.dof;
                Some(Self {
                    q_ppb2_per_s: (a.q_ppb2_per_s * a.dof + b.q_ppb2_per_s * b.dof) / dof,
                    dof,
                })
            }
            (a, b) => a.or(b),
        }
    }

    /// The same estimate counted as `weight` (0..=1) of its dof: old data
    /// weighs less (the oscillator may have changed since).
    pub fn weighted(self, weight: f64) -> Option<Self> {
        Self::new(self.q_ppb2_per_s, self.dof * weight.clamp(0.0, 1.0))
    }

    /// The estimate as it weighs in a variance of which its walk is only
    /// `share` (0..=1), the rest known from many more samples: the
    /// Welch–Satterthwaite dof ν ÷ share², so that the Student-t factor
    /// widens only for what is uncertain (all known: the normal quantile).
    pub fn as_share(self, share: f64) -> Self {
        let share = share.clamp(0.0, 1.0);
        Self {
            dof: if share > 0.0 {
                self.dof / (share * share)
            } else {
                f64::INFINITY
            },
            ..self
        }
    }

    /// Standard deviations of the estimated σ that cover what `sigmas`
    /// standard deviations of a known σ would: the Student-t quantile with
    /// this estimate's dof at the normal coverage of `sigmas`.
    pub fn predictive_sigmas(&self, sigmas: f64) -> f64 {
        t_quantile_at_normal(sigmas, self.dof)
    }
}

/// The Student-t quantile with `dof` degrees of freedom at the probability
/// where the standard normal has its quantile `z`, by the Cornish-Fisher
/// expansion (Abramowitz & Stegun 26.7.5): within 1 % of the exact value
/// for z ≤ 3 and ν ≥ 4, exact as ν grows. Below [`MIN_DOF`] the expansion is
/// evaluated at [`MIN_DOF`] and scaled up by the ratio, erring wide.
pub fn t_quantile_at_normal(z: f64, dof: f64) -> f64 {
    let n = dof.max(MIN_DOF);
    let z2 = z * z;
    let g1 = (z2 + 1.0) * z / 4.0;
    let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
    let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
    let g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92_160.0;
    let t = z + g1 / n + g2 / (n * n) + g3 / (n * n * n) + g4 / (n * n * n * n);
    if dof < MIN_DOF {
        t * MIN_DOF / dof.max(1.0)
    } else {
        t
    }
}

/// Equivalent degrees of freedom of the overlapping Allan variance of a
/// random-walk-FM series of `n` phase points at averaging factor `m`
/// (NIST SP 1065, table 5): about `n / m` when `m ≪ n`.
pub fn rwfm_overlapping_edf(n: f64, m: f64) -> f64 {
    if n <= 3.0 || m <= 0.0 {
        return 0.0;
    }
    let n1 = n - 1.0;
    (n - 2.0) / m * (n1 * n1 - 3.0 * m * n1 + 4.0 * m * m) / ((n - 3.0) * (n - 3.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_t_quantile_matches_reference_values() {
        // Exact values by numerical integration of the t density.
        for (z, dof, exact) in [
            (2.0, 4.0, 2.869),
            (2.0, 10.0, 2.284),
            (3.0, 4.0, 6.620),
            (3.0, 6.0, 4.904),
            (3.0, 10.0, 3.957),
            (3.0, 20.0, 3.422),
            (3.0, 50.0, 3.157),
        ] {
            let t = t_quantile_at_normal(z, dof);
            assert!(
                (t - exact).abs() < 0.01 * exact,
                "z {z} ν {dof}: {t} vs {exact}"
            );
        }
        assert!((t_quantile_at_normal(3.0, 1e9) - 3.0).abs() < 1e-6);
        assert!(t_quantile_at_normal(3.0, 2.0) > t_quantile_at_normal(3.0, 4.0));
    }

    #[test]
    fn pooling_adds_dof_and_averages_by_them() {
        let a = WalkEstimate::new(1.0, 10.0);
        let b = WalkEstimate::new(4.0, 30.0);
        let p = WalkEstimate::pooled(a, b).expect("pooled");
        assert!((p.dof - 40.0).abs() < 1e-12);
        assert!((p.q_ppb2_per_s - 3.25).abs() < 1e-12);
        assert_eq!(WalkEstimate::pooled(a, None), a);
        assert!(WalkEstimate::new(1.0, 3.0).is_none(), "too few dof");
        assert!(WalkEstimate::new(f64::NAN, 30.0).is_none());
        assert!(
            a.and_then(|a| a.weighted(0.1)).is_none(),
            "aged below MIN_DOF"
        );
    }

    #[test]
    fn a_share_of_the_variance_counts_its_dof_by_welch_satterthwaite() {
        let w = WalkEstimate::new(1.0, 10.0).expect("estimate");
        assert_eq!(w.as_share(1.0), w);
        assert!((w.as_share(0.5).dof - 40.0).abs() < 1e-9);
        let known = w.as_share(0.0);
        assert!((known.predictive_sigmas(4.0) - 4.0).abs() < 1e-9);
        assert!(w.as_share(0.5).predictive_sigmas(4.0) < w.predictive_sigmas(4.0));
    }

    #[test]
    fn the_rwfm_edf_is_about_one_per_horizon() {
        let edf = rwfm_overlapping_edf(1000.0, 10.0);
        assert!((90.0..100.0).contains(&edf), "{edf}");
        assert!((rwfm_overlapping_edf(21.0, 10.0) - 1.0).abs() < 0.2);
        assert!(rwfm_overlapping_edf(3.0, 1.0).abs() < 1e-12);
    }
}
