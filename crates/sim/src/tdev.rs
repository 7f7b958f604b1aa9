//! Time deviation (TDEV, ITU-T G.810) of a phase-error series sampled once
//! per second: how much the clock's error wanders at each averaging time τ,
//! after removing its offset and frequency. The scenario benchmark prints it
//! to show at which τ a change helps.

/// The averaging times the benchmark prints, s.
pub const BENCH_TAUS_S: [usize; 8] = [1, 2, 4, 8, 16, 32, 64, 100];

/// TDEV at τ = `n` samples of `phase_ns` (one per second), ns; None when the
/// series is too short (fewer than 3n + 1 samples) or `n` is 0.
pub fn tdev_ns(phase_ns: &[f64], n: usize) -> Option<f64> {
    let len = phase_ns.len();
    if n == 0 || len < 3 * n + 1 {
        return None;
    }
    let terms = len - 3 * n + 1;
    // Second differences x[i+2n] − 2x[i+n] + x[i], and a running sum of n of them.
    let second_diff = |i: usize| phase_ns[i + 2 * n] - 2.0 * phase_ns[i + n] + phase_ns[i];
    let mut window: f64 = (0..n).map(second_diff).sum();
    let mut sum_sq = window * window;
    for j in 1..terms {
        window += second_diff(j + n - 1) - second_diff(j - 1);
        sum_sq += window * window;
    }
    let n_f = n as f64;
    Some((sum_sq / (6.0 * n_f * n_f * terms as f64)).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn offset_and_frequency_are_not_wander() {
        let ramp: Vec<f64> = (0..1000).map(|i| 50.0 + 3.5 * f64::from(i)).collect();
        for n in BENCH_TAUS_S {
            let t = tdev_ns(&ramp, n).expect("long enough");
            assert!(t < 1e-6, "τ = {n}: {t}");
        }
    }

    #[test]
    fn white_phase_noise_falls_as_one_over_root_tau() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let x: Vec<f64> = (0..200_000)
            .map(|_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                10.0 * z
            })
            .collect();
        for n in [1usize, 4, 16, 64] {
            let t = tdev_ns(&x, n).expect("long enough");
            let want = 10.0 / (n as f64).sqrt();
            assert!((t / want - 1.0).abs() < 0.1, "τ = {n}: {t} vs {want}");
        }
    }

    #[test]
    fn too_short_a_series_has_no_tdev() {
        assert_eq!(tdev_ns(&[0.0; 9], 3), None);
        assert!(tdev_ns(&[0.0; 10], 3).is_some());
        assert_eq!(tdev_ns(&[0.0; 10], 0), None);
    }
}
