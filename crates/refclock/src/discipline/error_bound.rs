//! The error bound: how far the served time may be from UTC (the root
//! dispersion), locked or in holdover.
//!
//! Owns the guard filter (run with the largest oscillator noise the data
//! allow, so that its uncertainty is an honest bound) and the doubt left by
//! pulses being rejected right now. Everything else it is given.

use crate::filter::{Kalman, NoiseParams};
use crate::thermal::{Coast, ThermalCompensator, WalkEstimate};
use crate::wander::WanderTracker;
use skytime_timebase::MonoNanos;

/// NTP's largest dispersion (16 s), advertised when nothing is known.
pub(super) const MAX_DISPERSION_NS: f64 = 16e9;

/// The bound at one instant.
#[derive(Copy, Clone, Debug)]
pub(super) struct Bound {
    /// Largest error the clock may have, ns.
    pub bound_ns: f64,
    /// How fast that grows, ns/s.
    pub rate_ns_per_s: f64,
    /// The one-sigma error, ns.
    pub sigma_ns: f64,
}

impl Bound {
    /// Nothing known: the largest dispersion NTP can say.
    const UNKNOWN: Bound = Bound {
        bound_ns: MAX_DISPERSION_NS,
        rate_ns_per_s: 0.0,
        sigma_ns: MAX_DISPERSION_NS,
    };
}

/// The noise the guard assumes, from the learned noise.
#[derive(Copy, Clone, Debug)]
pub(super) struct GuardNoise {
    /// The learned noise, measurement noise raised to the pulses' jitter.
    pub learned: NoiseParams,
    /// The learner's own noise, without that override.
    pub plain: NoiseParams,
    /// The largest random walk the data allow, ppb²/s.
    pub q_rw_upper: f64,
    /// How much noisier than learned the bank's best filter finds the pulses (≥ 1).
    pub bank_scale: f64,
    /// The configured holdover safety factor.
    pub safety_factor: f64,
}

impl GuardNoise {
    /// The noise the guard filter assumes: the learned noise times the safety
    /// factor, and never less random walk than the data allow.
    pub fn guard(&self) -> NoiseParams {
        let q = self.learned;
        let scale = self.safety_factor;
        let best_scale = self.bank_scale;
        NoiseParams {
            r: q.r,
            q_wfm: q.q_wfm * scale * best_scale,
            q_rw: (q.q_rw * scale * best_scale).max(self.q_rw_upper),
        }
    }

    /// The noise a temperature-compensated holdover is predicted with: the
    /// random walk `q_rw` (ppb²/s) of the phase left unexplained by the
    /// temperature model, a point estimate whose dof the interval accounts
    /// for (see [`compensated_growth`]). The safety factor guards the plain
    /// noise model against temperature it cannot see; here temperature is
    /// modelled, and its uncertainty and unexplained wander are bounded apart.
    pub fn compensated(&self, q_rw: f64) -> NoiseParams {
        let q = self.plain;
        let scale = self.safety_factor;
        let best_scale = self.bank_scale;
        NoiseParams {
            r: q.r,
            q_wfm: q.q_wfm * scale * best_scale,
            q_rw: q_rw * best_scale,
        }
    }
}

/// What the bound is computed from at one instant.
pub(super) struct BoundInputs<'a> {
    /// The instant.
    pub mono: MonoNanos,
    /// Seconds since the last pulse that updated the filter (≥ 0).
    pub since_sample_s: f64,
    /// Phase the discipline applied since that pulse, ns.
    pub applied_since_sample_ns: f64,
    /// The frequency correction that cancels the estimated error, ppb.
    pub free_frequency_ppb: f64,
    /// The filter in charge.
    pub kf: Option<&'a Kalman>,
    /// The noise the guard assumes.
    pub noise: GuardNoise,
    /// Allowances independent of the oscillator (systematics, precision,
    /// the edge's own uncertainty), ns.
    pub fixed_ns: f64,
    /// Standard deviations in the plain bound.
    pub sigmas: f64,
    /// Standard deviations in a temperature-compensated bound.
    pub temperature_sigmas: f64,
    /// The temperature compensation.
    pub thermal: &'a ThermalCompensator,
    /// The worst frequency wander seen lately.
    pub wander: &'a WanderTracker,
}

/// The guard filter and the doubt.
#[derive(Debug, Default)]
pub(super) struct ErrorBound {
    guard: Option<Kalman>,
    /// |innovation| of the pulses being rejected as outliers right now: until
    /// resolved, nobody knows whether the pulses or the clock moved, so the
    /// advertised bound covers it.
    doubt_ns: f64,
}

impl ErrorBound {
    /// Nothing known yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The filter starts (or restarts) from `k`.
    pub fn start(&mut self, k: Kalman) {
        self.guard = Some(k);
    }

    /// The filter was reset to `k` after a phase jump: the guard takes its
    /// phase and frequency, without a drift term.
    pub fn restart_after_jump(&mut self, k: Kalman) {
        self.guard = Some(Kalman {
            d: 0.0,
            pxd: 0.0,
            pfd: 0.0,
            pdd: 0.0,
            q_drift: 0.0,
            ..k
        });
    }

    /// Forgets the guard (the filter was reset) and any doubt.
    pub fn clear(&mut self) {
        self.guard = None;
        self.doubt_ns = 0.0;
    }

    /// One accepted measurement `z` (ns, variance `r`), `dt` s after the
    /// previous one with `applied_ns` of steering between.
    pub fn update(&mut self, dt: f64, applied_ns: f64, q: &NoiseParams, z: f64, r: f64) {
        if let Some(g) = self.guard {
            let mut gp = g.predicted(dt, applied_ns, q, 1.0);
            gp.update(z, r);
            self.guard = Some(gp);
        }
    }

    /// The oscillator's frequency was moved by `delta_ppb` (temperature
    /// compensation handed over).
    pub fn shift_frequency(&mut self, delta_ppb: f64) {
        if let Some(g) = self.guard.as_mut() {
            g.f += delta_ppb;
        }
    }

    /// A pulse was rejected `residual_ns` from the prediction.
    pub fn doubt(&mut self, residual_ns: f64) {
        self.doubt_ns = self.doubt_ns.max(residual_ns.abs());
    }

    /// A pulse was accepted: the doubt is resolved.
    pub fn resolve_doubt(&mut self) {
        self.doubt_ns = 0.0;
    }

    /// Error bound, its growth rate and the one-sigma error: the guard's
    /// prediction with the learned noise (inflated by the holdover safety
    /// factor) or, if more, what a repeat of the worst frequency wander seen
    /// lately would cost over the time since the last pulse; |offset| and the
    /// systematic allowances. A temperature-compensated holdover gets a
    /// prediction interval instead (see [`compensated_growth`]).
    pub fn at(&self, inputs: Option<&BoundInputs<'_>>) -> Bound {
        let (Some(guard), Some(i)) = (&self.guard, inputs) else {
            return Bound::UNKNOWN;
        };
        let mono = i.mono;
        let dt = i.since_sample_s;
        let coast = i.thermal.coast().copied();
        let comp = coast.map_or(0.0, |c| c.comp_ns(mono));
        let applied = i.applied_since_sample_ns + comp;
        let fixed = i.fixed_ns;
        // A temperature-compensated holdover whose unexplained random walk
        // is known: the filter in charge, whose frequency the holdover runs
        // on, predicts with that random walk (the oscillator's own, not the
        // temperature's), and the bound is a prediction interval.
        let tight = match (coast, i.thermal.residual_random_walk(), i.kf) {
            (Some(c), Some(walk), Some(kf)) if !c.faulted => Some((c, walk, kf)),
            _ => None,
        };
        if let Some((c, walk, kf)) = tight {
            let q = i.noise.compensated(walk.q_ppb2_per_s);
            let p0 = kf.predicted(dt, applied, &q, 1.0);
            let p1 = kf.predicted(dt + 1.0, applied + i.free_frequency_ppb, &q, 1.0);
            // The state's variance with the walk left out: what is known
            // better than the walk's estimate.
            let q_known = i.noise.compensated(0.0);
            let known0 = kf.predicted(dt, applied, &q_known, 1.0).pxx;
            let known1 = kf
                .predicted(dt + 1.0, applied + i.free_frequency_ppb, &q_known, 1.0)
                .pxx;
            let growth = |p: &Kalman, t: f64, known: f64| {
                compensated_growth(i, p, known, &c, &walk, t, fixed)
            };
            let b0 = p0.x.abs() + growth(&p0, dt, known0) + self.doubt_ns;
            let b1 = p1.x.abs() + growth(&p1, dt + 1.0, known1) + self.doubt_ns;
            return Bound {
                bound_ns: b0.min(MAX_DISPERSION_NS),
                rate_ns_per_s: (b1 - b0).max(0.0),
                sigma_ns: p0.pxx.sqrt(),
            };
        }
        let q = i.noise.guard();
        let p0 = guard.predicted(dt, applied, &q, 1.0);
        let p1 = guard.predicted(dt + 1.0, applied + i.free_frequency_ppb, &q, 1.0);
        let n = i.sigmas;
        // The noise model's bound, or what a repeat of the worst frequency
        // wander seen lately would cost (a temperature ramp that the noise
        // model has already forgotten), whichever is more.
        let r = i.noise.learned.r;
        // A sensor lost during the holdover brings the plain wander back,
        // beside the compensation's uncertainty so far.
        let growth = |p: &Kalman, t: f64| match coast {
            Some(c) if !c.faulted => {
                (n * p.pxx.sqrt()).max(i.thermal.residual_bound_ns(t)) + n * c.sigma_ns(mono)
            }
            Some(c) => {
                (n * p.pxx.sqrt())
                    .max(i.wander.bound_ns(t, r))
                    .max(i.thermal.residual_bound_ns(t))
                    + n * c.sigma_ns(mono)
            }
            None => (n * p.pxx.sqrt()).max(i.wander.bound_ns(t, r)),
        };
        let b0 = p0.x.abs() + growth(&p0, dt) + fixed + self.doubt_ns;
        let b1 = p1.x.abs() + growth(&p1, dt + 1.0) + fixed + self.doubt_ns;
        Bound {
            bound_ns: b0.min(MAX_DISPERSION_NS),
            rate_ns_per_s: (b1 - b0).max(0.0),
            sigma_ns: p0.pxx.sqrt(),
        }
    }
}

/// How far a temperature-compensated holdover may have strayed after
/// `t_s` s, |predicted offset| aside: the Student-t predictive interval at
/// the coverage of `temperature_sigmas` normal sigmas around its σ (state,
/// random walk and the coefficients' uncertainty, independent, so in
/// quadrature), with the Welch–Satterthwaite dof of the random walk `walk`
/// as its share of that variance (`known_pxx`: the state's variance without
/// the walk, known from the many pulses before the outage), never less
/// than the unexplained wander of the last day would
/// cost (the guard against a model contradicted by what it missed: a heater
/// it cannot see), and the fixed allowances (independent of the oscillator)
/// in quadrature.
fn compensated_growth(
    i: &BoundInputs<'_>,
    p: &Kalman,
    known_pxx: f64,
    c: &Coast,
    walk: &WalkEstimate,
    t_s: f64,
    fixed_ns: f64,
) -> f64 {
    let total = p.pxx + c.sigma_ns(i.mono).powi(2);
    let walk_share = if total > 0.0 {
        (p.pxx - known_pxx).max(0.0) / total
    } else {
        1.0
    };
    let k = walk
        .as_share(walk_share)
        .predictive_sigmas(i.temperature_sigmas);
    let sigma = total.sqrt();
    let random = (k * sigma).max(i.thermal.residual_bound_ns(t_s));
    (random * random + fixed_ns * fixed_ns).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise() -> GuardNoise {
        let q = NoiseParams {
            r: 100.0,
            q_wfm: 1.0,
            q_rw: 1e-4,
        };
        GuardNoise {
            learned: q,
            plain: q,
            q_rw_upper: 0.0,
            bank_scale: 1.0,
            safety_factor: 4.0,
        }
    }

    fn bound_after(eb: &ErrorBound, since_s: f64) -> Bound {
        let thermal = ThermalCompensator::new(60.0, 1_000.0);
        let wander = WanderTracker::default();
        let inputs = BoundInputs {
            mono: MonoNanos(0),
            since_sample_s: since_s,
            applied_since_sample_ns: 0.0,
            free_frequency_ppb: 0.0,
            kf: None,
            noise: noise(),
            fixed_ns: 50.0,
            sigmas: 3.0,
            temperature_sigmas: 3.0,
            thermal: &thermal,
            wander: &wander,
        };
        eb.at(Some(&inputs))
    }

    fn started() -> ErrorBound {
        let mut eb = ErrorBound::new();
        eb.start(Kalman::new(0.0, 100.0, 0.0, 1.0));
        eb
    }

    #[test]
    fn nothing_known_is_the_largest_dispersion() {
        let eb = ErrorBound::new();
        let b = bound_after(&eb, 1.0);
        assert!((b.bound_ns - MAX_DISPERSION_NS).abs() < 1.0);
        assert!(started().at(None).bound_ns >= MAX_DISPERSION_NS);
    }

    #[test]
    fn the_bound_covers_the_fixed_allowances_and_grows_in_holdover() {
        let eb = started();
        let now = bound_after(&eb, 0.0);
        let later = bound_after(&eb, 3_600.0);
        assert!(now.bound_ns > 50.0, "{now:?}");
        assert!(later.bound_ns > now.bound_ns, "{now:?} {later:?}");
        assert!(later.rate_ns_per_s > 0.0);
        assert!(later.sigma_ns > now.sigma_ns);
    }

    #[test]
    fn rejected_pulses_add_their_doubt_until_one_is_accepted() {
        let mut eb = started();
        let plain = bound_after(&eb, 1.0).bound_ns;
        eb.doubt(-5_000.0);
        eb.doubt(2_000.0);
        let doubted = bound_after(&eb, 1.0).bound_ns;
        assert!(
            (doubted - plain - 5_000.0).abs() < 1e-6,
            "{plain} {doubted}"
        );
        eb.resolve_doubt();
        assert!((bound_after(&eb, 1.0).bound_ns - plain).abs() < 1e-9);
        eb.clear();
        assert!(bound_after(&eb, 1.0).bound_ns >= MAX_DISPERSION_NS);
    }

    #[test]
    fn the_guard_assumes_the_safety_factor_and_the_data_allowed_walk() {
        let mut n = noise();
        assert!((n.guard().q_wfm - 4.0).abs() < 1e-12);
        n.q_rw_upper = 1.0;
        assert!((n.guard().q_rw - 1.0).abs() < 1e-12);
        assert!((n.compensated(0.5).q_rw - 0.5).abs() < 1e-12);
    }
}
