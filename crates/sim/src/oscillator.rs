//! The free-running local oscillator: its natural frequency error over true time.
//!
//! A crystal's error has three parts here: a constant offset, a random walk
//! (one Gaussian frequency step per elapsed second) and a temperature term
//! (linear in kelvin, with an optional quadratic term, with ramped
//! temperature changes). The oscillator also
//! integrates its error exactly, so a clock built on it knows how far it has
//! drifted at any instant, not just at whole seconds.

use crate::scenario::{ClockSection, CoefficientChange, LoadHeat, TemperatureChange};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, StandardNormal};

/// What shapes the oscillator's error, taken from a scenario's `[clock]`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OscillatorParams {
    /// Natural frequency error at the start, ppm (positive: runs fast).
    pub initial_freq_ppm: f64,
    /// Standard deviation of the frequency step taken each second, ppm.
    pub freq_random_walk_ppm: f64,
    /// Frequency change per kelvin, ppm/K.
    pub temperature_coeff_ppm_per_k: f64,
    /// Frequency change per kelvin² (of the change from the start), ppm/K².
    pub temperature_quadratic_ppm_per_k2: f64,
    /// Temperature changes, each a linear ramp.
    pub temperature: Vec<TemperatureChange>,
    /// Temperature changes the crystal feels but a sensor does not see.
    pub hidden_heat: Vec<TemperatureChange>,
    /// Heating by load (both the crystal and a sensor feel it).
    pub load_heat: Vec<LoadHeat>,
    /// The coefficient from a given time on, ppm/K.
    pub coefficient_changes: Vec<CoefficientChange>,
}

impl From<&ClockSection> for OscillatorParams {
    fn from(c: &ClockSection) -> Self {
        Self {
            initial_freq_ppm: c.initial_freq_ppm,
            freq_random_walk_ppm: c.freq_random_walk_ppm,
            temperature_coeff_ppm_per_k: c.temperature_coeff_ppm_per_k,
            temperature_quadratic_ppm_per_k2: c.temperature_quadratic_ppm_per_k2,
            temperature: c.temperature.clone(),
            hidden_heat: c.hidden_heat.clone(),
            load_heat: c.load_heat.clone(),
            coefficient_changes: c.coefficient_changes.clone(),
        }
    }
}

/// The free-running oscillator's frequency error over *true* time, and its
/// integral (the phase it has gained since the start).
#[derive(Clone, Debug)]
pub struct Oscillator {
    initial_ppb: f64,
    walk_sigma_ppb: f64,
    temp_coeff_ppb_per_k: f64,
    quadratic_ppb_per_k2: f64,
    temperature: Vec<TemperatureChange>,
    hidden_heat: Vec<TemperatureChange>,
    load_heat: Vec<LoadHeat>,
    /// (from s, ppb/K), sorted, starting with (0, the initial coefficient).
    coefficients: Vec<(f64, f64)>,
    rng: Xoshiro256PlusPlus,
    /// True time reached, seconds since start.
    t_s: f64,
    /// Random-walk part of the frequency error, ppb.
    walk_ppb: f64,
    /// Integral of the random-walk part up to `t_s`, ns.
    walk_integral_ns: f64,
    /// When the next random-walk step is taken.
    next_step_s: f64,
    /// Integral of the squared temperature change up to `t_s`, K²·s.
    temp2_integral: f64,
}

/// Temperature change (K) of one ramp at `t`.
fn ramp_kelvin(c: &TemperatureChange, t: f64) -> f64 {
    if t <= c.at_s {
        0.0
    } else if c.ramp_s <= 0.0 || t >= c.at_s + c.ramp_s {
        c.kelvin_step
    } else {
        c.kelvin_step * (t - c.at_s) / c.ramp_s
    }
}

/// Temperature rise (K) of one load period at `t`: first-order heating
/// towards `kelvin` while on, cooling back after.
fn load_kelvin(l: &LoadHeat, t: f64) -> f64 {
    let tau = l.time_constant_s.max(1e-9);
    if t <= l.from_s {
        0.0
    } else if t <= l.to_s {
        l.kelvin * (1.0 - (-(t - l.from_s) / tau).exp())
    } else {
        load_kelvin(l, l.to_s) * (-(t - l.to_s) / tau).exp()
    }
}

/// Integral of one load period's rise from 0 to `t`, K·s.
fn load_integral(l: &LoadHeat, t: f64) -> f64 {
    let tau = l.time_constant_s.max(1e-9);
    if t <= l.from_s {
        0.0
    } else if t <= l.to_s {
        let s = t - l.from_s;
        l.kelvin * (s - tau * (1.0 - (-s / tau).exp()))
    } else {
        let peak = load_kelvin(l, l.to_s);
        load_integral(l, l.to_s) + peak * tau * (1.0 - (-(t - l.to_s) / tau).exp())
    }
}

/// Integral of one ramp's temperature change from 0 to `t`, K·s.
fn ramp_integral(c: &TemperatureChange, t: f64) -> f64 {
    if t <= c.at_s {
        0.0
    } else if c.ramp_s <= 0.0 {
        c.kelvin_step * (t - c.at_s)
    } else if t <= c.at_s + c.ramp_s {
        c.kelvin_step * (t - c.at_s).powi(2) / (2.0 * c.ramp_s)
    } else {
        c.kelvin_step * (c.ramp_s / 2.0 + (t - c.at_s - c.ramp_s))
    }
}

impl Oscillator {
    /// An oscillator at true time 0; `seed` fixes its random walk.
    pub fn new(params: &OscillatorParams, seed: u64) -> Self {
        let mut coefficients = vec![(0.0, params.temperature_coeff_ppm_per_k * 1000.0)];
        let mut changes = params.coefficient_changes.clone();
        changes.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        coefficients.extend(
            changes
                .iter()
                .map(|c| (c.at_s.max(0.0), c.ppm_per_k * 1000.0)),
        );
        Self {
            initial_ppb: params.initial_freq_ppm * 1000.0,
            walk_sigma_ppb: params.freq_random_walk_ppm * 1000.0,
            temp_coeff_ppb_per_k: params.temperature_coeff_ppm_per_k * 1000.0,
            quadratic_ppb_per_k2: params.temperature_quadratic_ppm_per_k2 * 1000.0,
            temperature: params.temperature.clone(),
            hidden_heat: params.hidden_heat.clone(),
            load_heat: params.load_heat.clone(),
            coefficients,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x05C1_11A7_0000_0001),
            t_s: 0.0,
            walk_ppb: 0.0,
            walk_integral_ns: 0.0,
            next_step_s: 1.0,
            temp2_integral: 0.0,
        }
    }

    /// Adds the integral of the squared temperature from `t_s` to `to`: by
    /// Simpson's rule on the pieces between the ramps' corners (exact on a
    /// linear piece; a load's smooth curve over a second at most is within
    /// a nanosecond).
    fn integrate_temp2(&mut self, to: f64) {
        if self.quadratic_ppb_per_k2 == 0.0 {
            return;
        }
        let a = self.t_s;
        let mut cuts: Vec<f64> = self
            .temperature
            .iter()
            .chain(self.hidden_heat.iter())
            .flat_map(|c| [c.at_s, c.at_s + c.ramp_s.max(0.0)])
            .chain(self.load_heat.iter().flat_map(|l| [l.from_s, l.to_s]))
            .filter(|&t| t > a && t < to)
            .collect();
        cuts.push(to);
        cuts.sort_by(f64::total_cmp);
        // Each piece is evaluated inside, away from a step at its ends.
        let sq = |t: f64| self.temperature_at(t).powi(2);
        let mut from = a;
        let mut sum = 0.0;
        for &end in &cuts {
            let h = end - from;
            if h > 0.0 {
                let (x0, x1) = (from + 1e-9 * h, end - 1e-9 * h);
                sum += h * (sq(x0) + 4.0 * sq(0.5 * (from + end)) + sq(x1)) / 6.0;
            }
            from = end;
        }
        self.temp2_integral += sum;
    }

    /// Advance to true time `t_s` seconds since start (random-walk steps once per
    /// elapsed second, temperature ramps). Going backwards is ignored.
    pub fn advance_to(&mut self, t_s: f64) {
        if t_s.is_nan() || t_s <= self.t_s {
            return;
        }
        while self.next_step_s <= t_s {
            self.walk_integral_ns += self.walk_ppb * (self.next_step_s - self.t_s);
            self.integrate_temp2(self.next_step_s);
            self.t_s = self.next_step_s;
            if self.walk_sigma_ppb > 0.0 {
                let z: f64 = StandardNormal.sample(&mut self.rng);
                self.walk_ppb += self.walk_sigma_ppb * z;
            }
            self.next_step_s += 1.0;
        }
        self.walk_integral_ns += self.walk_ppb * (t_s - self.t_s);
        self.integrate_temp2(t_s);
        self.t_s = t_s;
    }

    /// True time reached by [`Oscillator::advance_to`], seconds since start.
    pub fn time_s(&self) -> f64 {
        self.t_s
    }

    /// The crystal's temperature now, kelvin above the starting temperature.
    pub fn temperature_delta_k(&self) -> f64 {
        self.temperature_at(self.t_s)
    }

    fn temperature_at(&self, t: f64) -> f64 {
        // + 0.0 turns the empty sum's -0.0 into 0.0 for printing.
        self.sensed_temperature_at(t)
            + self
                .hidden_heat
                .iter()
                .map(|c| ramp_kelvin(c, t))
                .sum::<f64>()
            + 0.0
    }

    /// What a sensor in the box would read now (before its own lag and
    /// noise), kelvin above the start: everything but the hidden heat.
    pub fn sensed_temperature_delta_k(&self) -> f64 {
        self.sensed_temperature_at(self.t_s)
    }

    fn sensed_temperature_at(&self, t: f64) -> f64 {
        self.temperature
            .iter()
            .map(|c| ramp_kelvin(c, t))
            .sum::<f64>()
            + self
                .load_heat
                .iter()
                .map(|l| load_kelvin(l, t))
                .sum::<f64>()
            + 0.0
    }

    /// Integral of the crystal's temperature change from 0 to `t`, K·s.
    fn temperature_integral(&self, t: f64) -> f64 {
        self.temperature
            .iter()
            .chain(self.hidden_heat.iter())
            .map(|c| ramp_integral(c, t))
            .sum::<f64>()
            + self
                .load_heat
                .iter()
                .map(|l| load_integral(l, t))
                .sum::<f64>()
    }

    /// The temperature coefficient in force at `t`, ppb/K.
    fn coefficient_at(&self, t: f64) -> f64 {
        self.coefficients
            .iter()
            .rev()
            .find(|(from, _)| t >= *from)
            .map_or(self.temp_coeff_ppb_per_k, |c| c.1)
    }

    /// The natural frequency error now, parts per billion (positive: runs fast).
    pub fn freq_error_ppb(&self) -> f64 {
        self.initial_ppb
            + self.walk_ppb
            + self.coefficient_at(self.t_s) * self.temperature_delta_k()
            + self.quadratic_ppb_per_k2 * self.temperature_delta_k().powi(2)
    }

    /// Phase the free-running oscillator has gained since true time 0, ns: the
    /// exact integral of [`Oscillator::freq_error_ppb`] (ppb × s = ns).
    pub fn phase_gain_ns(&self) -> f64 {
        // The coefficient is piecewise constant: integrate piece by piece.
        let mut temp_ns = 0.0;
        for (i, &(from, k)) in self.coefficients.iter().enumerate() {
            if from >= self.t_s {
                break;
            }
            let to = self
                .coefficients
                .get(i + 1)
                .map_or(self.t_s, |n| n.0.min(self.t_s));
            temp_ns += k * (self.temperature_integral(to) - self.temperature_integral(from));
        }
        self.initial_ppb * self.t_s
            + self.walk_integral_ns
            + temp_ns
            + self.quadratic_ppb_per_k2 * self.temp2_integral
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(walk: f64) -> OscillatorParams {
        OscillatorParams {
            initial_freq_ppm: 10.0,
            freq_random_walk_ppm: walk,
            temperature_coeff_ppm_per_k: 0.1,
            temperature: vec![TemperatureChange {
                at_s: 100.0,
                kelvin_step: 4.0,
                ramp_s: 200.0,
            }],
            ..Default::default()
        }
    }

    /// Everything at once: a hidden heater, load heating, a coefficient
    /// changing sign.
    fn hostile(walk: f64) -> OscillatorParams {
        OscillatorParams {
            hidden_heat: vec![TemperatureChange {
                at_s: 50.0,
                kelvin_step: -2.0,
                ramp_s: 0.0,
            }],
            load_heat: vec![LoadHeat {
                from_s: 120.0,
                to_s: 250.0,
                kelvin: 3.0,
                time_constant_s: 40.0,
            }],
            coefficient_changes: vec![CoefficientChange {
                at_s: 220.0,
                ppm_per_k: -0.2,
            }],
            ..params(walk)
        }
    }

    #[test]
    fn hidden_heat_load_and_coefficient_changes_shape_the_frequency() {
        let mut o = Oscillator::new(&hostile(0.0), 1);
        o.advance_to(200.0);
        let load = 3.0 * (1.0 - (-80.0f64 / 40.0).exp());
        let crystal = 2.0 - 2.0 + load; // ramp halfway, hidden step, load
        assert!((o.temperature_delta_k() - crystal).abs() < 1e-9);
        assert!((o.sensed_temperature_delta_k() - (2.0 + load)).abs() < 1e-9);
        let walk = o.freq_error_ppb() - 10_000.0 - 100.0 * crystal;
        o.advance_to(230.0);
        let f = o.freq_error_ppb();
        let expect = 10_000.0 - 200.0 * o.temperature_delta_k() + walk;
        assert!(
            (f - expect).abs() < 1e-6,
            "{f} vs {expect}: the sign flipped"
        );
    }

    /// The phase gained over `seconds`, integrating the frequency of a fresh
    /// oscillator numerically at a 1 ms midpoint step.
    fn numeric_phase_ns(p: &OscillatorParams, seed: u64, seconds: f64) -> f64 {
        let mut fine = Oscillator::new(p, seed);
        let dt = 0.001;
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "test spans are positive and a few thousand seconds"
        )]
        let steps = (seconds / dt).round() as u64;
        let mut sum_ns = 0.0;
        for k in 0..steps {
            fine.advance_to((k as f64 + 0.5) * dt);
            sum_ns += fine.freq_error_ppb() * dt;
        }
        sum_ns
    }

    #[test]
    fn the_phase_integral_stays_exact_with_everything_on() {
        let mut o = Oscillator::new(&hostile(0.01), 9);
        let sum_ns = numeric_phase_ns(&hostile(0.01), 9, 400.0);
        o.advance_to(400.0);
        let err = (o.phase_gain_ns() - sum_ns).abs();
        assert!(
            err < 1e-2,
            "closed form {} vs numeric {sum_ns}",
            o.phase_gain_ns()
        );
    }

    #[test]
    fn a_quadratic_term_bends_the_frequency_and_its_phase_is_integrated() {
        let curved = OscillatorParams {
            temperature_quadratic_ppm_per_k2: -0.02,
            ..hostile(0.01)
        };
        let mut o = Oscillator::new(&curved, 4);
        o.advance_to(1000.0);
        // 4 K up, 2 K of hidden cooling, the load gone: 2 K, −20 ppb/K² · 4 K².
        let straight = Oscillator::new(&hostile(0.01), 4);
        let mut s = straight;
        s.advance_to(1000.0);
        let t = o.temperature_delta_k();
        assert!((o.freq_error_ppb() - s.freq_error_ppb() + 20.0 * t * t).abs() < 1e-6);
        let sum_ns = numeric_phase_ns(&curved, 4, 400.0);
        let mut o = Oscillator::new(&curved, 4);
        o.advance_to(400.0);
        assert!(
            (o.phase_gain_ns() - sum_ns).abs() < 1e-2,
            "integral {} vs numeric {sum_ns}",
            o.phase_gain_ns()
        );
    }

    #[test]
    fn temperature_ramp_changes_frequency_linearly() {
        let mut o = Oscillator::new(&params(0.0), 1);
        o.advance_to(50.0);
        assert!((o.freq_error_ppb() - 10_000.0).abs() < 1e-9);
        o.advance_to(200.0); // halfway up the ramp: +2 K × 100 ppb/K
        assert!((o.freq_error_ppb() - 10_200.0).abs() < 1e-9);
        o.advance_to(1000.0);
        assert!((o.freq_error_ppb() - 10_400.0).abs() < 1e-9);
    }

    #[test]
    fn phase_is_the_integral_of_frequency() {
        // Numerically integrate freq_error_ppb at a fine step and compare with
        // the closed form, on a walk that moves.
        let mut o = Oscillator::new(&params(0.01), 9);
        let sum_ns = numeric_phase_ns(&params(0.01), 9, 400.0);
        o.advance_to(400.0);
        let err = (o.phase_gain_ns() - sum_ns).abs();
        assert!(
            err < 1e-3,
            "closed form {} vs numeric {sum_ns}",
            o.phase_gain_ns()
        );
    }

    #[test]
    fn random_walk_steps_once_per_second_with_the_given_sigma() {
        let p = OscillatorParams {
            freq_random_walk_ppm: 0.001,
            ..Default::default()
        };
        let mut o = Oscillator::new(&p, 3);
        let mut prev = o.freq_error_ppb();
        let mut sq = 0.0;
        let n = 20_000;
        for k in 1..=n {
            o.advance_to(f64::from(k) - 0.5);
            assert_eq!(
                o.freq_error_ppb().to_bits(),
                prev.to_bits(),
                "no step inside a second"
            );
            o.advance_to(f64::from(k));
            let step = o.freq_error_ppb() - prev;
            sq += step * step;
            prev = o.freq_error_ppb();
        }
        let sigma = (sq / f64::from(n)).sqrt();
        assert!((sigma - 1.0).abs() < 0.03, "sigma {sigma} ppb, want 1");
    }

    #[test]
    fn same_seed_same_walk_different_seed_different_walk() {
        let run = |seed| {
            let mut o = Oscillator::new(&params(0.01), seed);
            o.advance_to(1000.0);
            o.freq_error_ppb()
        };
        assert_eq!(run(5).to_bits(), run(5).to_bits());
        assert_ne!(run(5).to_bits(), run(6).to_bits());
    }
}
