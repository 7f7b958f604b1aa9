//! What any honest holdover bound can reach, whatever the model: a Monte
//! Carlo of the part of a holdover's error that nothing seen before the
//! outage predicts, against a bound that is a multiple of its σ.
//!
//! The scenario benchmark judges a bound by two figures that pull against
//! each other: its tightness (the median of bound ÷ the holdover's largest
//! |error|) and its honesty (no second served outside it). With the error
//! Gaussian and σ known exactly, a multiplier `k` fixes both, so the pairs
//! printed here are the frontier: no estimator gets a smaller median at the
//! same chance of a wrong second. With σ estimated (ν degrees of freedom)
//! the frontier is worse.

use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{ChiSquared, Distribution, StandardNormal};

/// How the unpredictable error grows through a holdover.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ErrorShape {
    /// The oscillator's frequency random walk during the outage, integrated
    /// into phase from zero (σ grows as t^1.5).
    RandomWalk,
    /// A frequency error fixed at the outage's start (σ grows as t): the
    /// error's peak is its end.
    FrequencyError,
}

/// One simulated holdover, in units of its own σ at the end.
#[derive(Copy, Clone, Debug)]
struct Path {
    /// σ as estimated ÷ σ as it is (1 when σ is known).
    sigma_scale: f64,
    /// The largest |error| ÷ σ at the end.
    peak_over_sigma_end: f64,
    /// The largest |error(t)| ÷ σ(t) over the last 90 % of the holdover (in
    /// the first tenth a box's fixed allowances dominate its bound).
    worst_z: f64,
}

/// The holdovers of one case, ready to be judged at any multiplier.
#[derive(Clone, Debug)]
pub struct Frontier {
    paths: Vec<Path>,
}

/// A bound of `multiplier` × the estimated σ, judged over the holdovers.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct FrontierPoint {
    /// Multiplier on the estimated σ.
    pub multiplier: f64,
    /// Median of bound at the end ÷ the holdover's largest |error|.
    pub median_ratio: f64,
    /// Share of holdovers with at least one second outside the bound.
    pub p_wrong_second: f64,
}

impl Frontier {
    /// `holdovers` outages of `steps` steps each, of `shape`, with σ known
    /// (`dof` None) or estimated from a χ² with `dof` degrees of freedom.
    pub fn simulate(
        holdovers: usize,
        steps: usize,
        shape: ErrorShape,
        dof: Option<f64>,
        seed: u64,
    ) -> Self {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let chi = dof.and_then(|d| ChiSquared::new(d).ok().map(|c| (c, d)));
        let sigma = sigma_profile(steps, shape);
        let first_judged = steps / 10;
        let paths = (0..holdovers)
            .map(|_| {
                let (mut freq, mut phase, mut peak, mut worst) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
                let fixed: f64 = StandardNormal.sample(&mut rng);
                for (i, &s) in sigma.iter().enumerate().skip(1) {
                    phase += match shape {
                        ErrorShape::RandomWalk => freq,
                        ErrorShape::FrequencyError => fixed,
                    };
                    let step: f64 = StandardNormal.sample(&mut rng);
                    freq += step;
                    peak = peak.max(phase.abs());
                    if i >= first_judged.max(1) && s > 0.0 {
                        worst = worst.max(phase.abs() / s);
                    }
                }
                let sigma_scale = chi.map_or(1.0, |(c, d)| (c.sample(&mut rng) / d).sqrt());
                Path {
                    sigma_scale,
                    peak_over_sigma_end: peak / sigma[steps],
                    worst_z: worst,
                }
            })
            .collect();
        Self { paths }
    }

    /// The bound at `multiplier` × the estimated σ.
    pub fn at(&self, multiplier: f64) -> FrontierPoint {
        let ratios: Vec<f64> = self
            .paths
            .iter()
            .map(|p| multiplier * p.sigma_scale / p.peak_over_sigma_end)
            .collect();
        let wrong = self
            .paths
            .iter()
            .filter(|p| p.worst_z > multiplier * p.sigma_scale)
            .count();
        FrontierPoint {
            multiplier,
            median_ratio: crate::holdover_digest::median(&ratios),
            p_wrong_second: wrong as f64 / self.paths.len().max(1) as f64,
        }
    }

    /// The largest multiplier whose median ratio is at most `median_ratio`.
    pub fn at_median(&self, median_ratio: f64) -> FrontierPoint {
        let per_unit: Vec<f64> = self
            .paths
            .iter()
            .map(|p| p.sigma_scale / p.peak_over_sigma_end)
            .collect();
        self.at(median_ratio / crate::holdover_digest::median(&per_unit))
    }

    /// The smallest multiplier that lets at most `p_wrong` of the holdovers
    /// serve a wrong second.
    pub fn at_p_wrong(&self, p_wrong: f64) -> FrontierPoint {
        let mut need: Vec<f64> = self
            .paths
            .iter()
            .map(|p| p.worst_z / p.sigma_scale)
            .collect();
        need.sort_by(f64::total_cmp);
        let budget = p_wrong * need.len() as f64;
        let allowed = (0..need.len())
            .take_while(|&a| a as f64 <= budget)
            .count()
            .saturating_sub(1);
        let idx = need.len().saturating_sub(allowed + 1);
        self.at(need.get(idx).copied().unwrap_or(f64::INFINITY))
    }
}

/// σ of the error after each step (index 0: the outage's start), for unit
/// steps of white frequency noise (random walk) or a unit frequency error.
fn sigma_profile(steps: usize, shape: ErrorShape) -> Vec<f64> {
    let (mut var_freq, mut var_phase, mut cov) = (0.0f64, 0.0f64, 0.0f64);
    let mut out = Vec::with_capacity(steps + 1);
    out.push(0.0);
    for i in 1..=steps {
        match shape {
            ErrorShape::RandomWalk => {
                var_phase += 2.0 * cov + var_freq;
                cov += var_freq;
                var_freq += 1.0;
                out.push(var_phase.sqrt());
            }
            ErrorShape::FrequencyError => out.push(i as f64),
        }
    }
    out
}

/// The chance that a sweep of `holdovers` independent ones serves at least
/// one wrong second, each doing so with `p_wrong`.
pub fn p_any_in_sweep(p_wrong: f64, holdovers: u32) -> f64 {
    1.0 - (1.0 - p_wrong.clamp(0.0, 1.0)).powi(i32::try_from(holdovers).unwrap_or(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_frequency_error_matches_the_normal_distribution() {
        let f = Frontier::simulate(20_000, 20, ErrorShape::FrequencyError, None, 1);
        // |z| > 2 has probability 4.55 %; the median of 2 / |z| is 2 / 0.6745.
        let p = f.at(2.0);
        assert!((p.p_wrong_second - 0.0455).abs() < 0.006, "{p:?}");
        assert!((p.median_ratio - 2.0 / 0.6745).abs() < 0.1, "{p:?}");
    }

    #[test]
    fn a_random_walk_is_crossed_more_often_than_its_end_and_estimation_costs() {
        let known = Frontier::simulate(4_000, 200, ErrorShape::RandomWalk, None, 2);
        let estimated = Frontier::simulate(4_000, 200, ErrorShape::RandomWalk, Some(10.0), 2);
        let end_only = Frontier::simulate(4_000, 200, ErrorShape::FrequencyError, None, 2);
        let (k, e, f) = (known.at(2.5), estimated.at(2.5), end_only.at(2.5));
        assert!(k.p_wrong_second > f.p_wrong_second, "{k:?} {f:?}");
        assert!(e.p_wrong_second > k.p_wrong_second, "{e:?} {k:?}");
        // A wider bound is crossed less often and is looser.
        let wide = known.at(3.5);
        assert!(wide.p_wrong_second < k.p_wrong_second && wide.median_ratio > k.median_ratio);
    }

    #[test]
    fn the_inverse_lookups_land_on_what_they_were_asked() {
        let f = Frontier::simulate(4_000, 100, ErrorShape::RandomWalk, None, 3);
        assert!((f.at_median(5.0).median_ratio - 5.0).abs() < 1e-9);
        let p = f.at_p_wrong(0.01);
        assert!(p.p_wrong_second <= 0.01, "{p:?}");
        assert!(f.at(p.multiplier * 0.98).p_wrong_second > 0.0);
        assert!((p_any_in_sweep(0.01, 100) - 0.634).abs() < 1e-3);
    }
}
