//! Temperature-compensated holdover: a sensor reading (sans-IO: the daemon
//! reads the file, the simulator its model), a temperature coefficient
//! learned while locked, and, in holdover, the frequency predicted from the
//! temperature now, with an error bound that grows with the uncertainty of
//! that prediction and with whatever the model has failed to explain lately.
//!
//! Nothing here is trusted by default: no sensor, a faulty one, or a
//! coefficient not yet learned leaves holdover exactly as it was without a
//! sensor.

mod history;
mod model;
pub mod persist;
mod sensor;
pub mod walk;

pub use history::{BLOCK, Entry, STRIDE, ThermalHistory};
pub use model::{Block, TempcoModel};
pub use sensor::{SensorHealth, SensorMonitor, SensorReading};
pub use walk::WalkEstimate;

use crate::status::Nanos;
use crate::wander::{coast_bound_ns, held_points};
use serde::Serialize;
use skytime_timebase::MonoNanos;
use std::collections::VecDeque;
use tracing::info;

/// Blocks whose learned random walk is remembered (three hours).
const Q_RECENT_BLOCKS: usize = 170;
/// The least random walk the model assumes, ppb²/s.
const Q_CALM_FLOOR: f64 = 0.01;

/// What the operators see of the temperature model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThermalStatus {
    /// Sensor health.
    pub sensor: SensorHealth,
    /// Last reading in use, °C.
    pub reading_c: Option<f64>,
    /// Learned coefficient, ppm/K.
    pub coefficient_ppm_per_k: f64,
    /// One-sigma uncertainty of the learned coefficient, ppm/K.
    pub coefficient_sigma_ppm_per_k: f64,
    /// Learned quadratic term, ppm/K² (None while the data do not support one).
    pub quadratic_ppm_per_k2: Option<f64>,
    /// Its one-sigma uncertainty, ppm/K².
    pub quadratic_sigma_ppm_per_k2: Option<f64>,
    /// Temperatures the model was learned over, °C (beyond them, with a
    /// margin, holdover counts the extrapolation as uncertain).
    pub learned_range_c: Option<(f64, f64)>,
    /// Learned lag of the sensor behind the crystal (lag term over
    /// coefficient; a fit, so either sign).
    #[serde(rename = "lag_s", serialize_with = "crate::status::opt_as_secs")]
    pub lag: Option<Nanos>,
    /// Whether holdover uses the model.
    pub trusted: bool,
    /// Blocks (64 s each) learned from.
    pub blocks: u64,
    /// Sensor faults since start.
    pub faults: u64,
    /// Frequency correction from temperature in force now, ppm (holdover only).
    pub compensation_ppm: Option<f64>,
}

/// The temperature state at the last pulse, which holdover predicts from.
#[derive(Copy, Clone, Debug)]
struct Anchor {
    temp_k: f64,
    slope_k_per_s: f64,
}

/// One holdover's compensation.
#[derive(Copy, Clone, Debug)]
pub struct Coast {
    anchor: Anchor,
    /// Frequency change applied now, ppb.
    pub delta_ppb: f64,
    /// Its one-sigma uncertainty from the coefficients, ppb.
    sigma_ppb: f64,
    /// Integral of `delta_ppb` up to `at`, ns.
    comp_ns: f64,
    /// Integral of `sigma_ppb` up to `at`, ns.
    sigma_ns: f64,
    at: MonoNanos,
    /// The sensor failed during this holdover: the compensation is frozen
    /// and the bound falls back to the one without a sensor.
    pub faulted: bool,
}

impl Coast {
    /// Phase added by the compensation up to `now`, ns.
    pub fn comp_ns(&self, now: MonoNanos) -> f64 {
        self.comp_ns + self.delta_ppb * self.since(now)
    }

    /// Integrated one-sigma uncertainty of the compensation up to `now`, ns.
    pub fn sigma_ns(&self, now: MonoNanos) -> f64 {
        self.sigma_ns
            + if self.faulted {
                0.0
            } else {
                self.sigma_ppb * self.since(now)
            }
    }

    fn since(&self, now: MonoNanos) -> f64 {
        (now.nanos_since(self.at) as f64 / 1e9).max(0.0)
    }
}

/// The sensor, the model, its history and the compensation in holdover.
#[derive(Clone, Debug)]
pub struct ThermalCompensator {
    monitor: SensorMonitor,
    model: TempcoModel,
    trust_sigma_ppb_per_k: f64,
    /// Reference temperature the model is centred on, °C.
    t_ref_c: Option<f64>,
    /// Integral of (smoothed − reference), K·s, up to `theta_at`.
    theta_ks: f64,
    /// Integral of its square, K²·s, up to `theta_at`.
    theta2_k2s: f64,
    theta_at: Option<MonoNanos>,
    /// Smoothed temperature (minus reference) over the last slope span.
    recent: VecDeque<(MonoNanos, f64)>,
    fault_since_entry: bool,
    /// Sums of ψ, Θ and Θ₂ over the pulses since the last entry, and their
    /// count: each entry holds the mean over its [`STRIDE`] pulses, which
    /// takes the pulses' white noise down fourfold.
    stride_sum: (f64, f64, f64, i64),
    stride_end: Option<i64>,
    /// The noise learner's random walk at the last blocks, ppb²/s.
    q_recent: VecDeque<f64>,
    history: ThermalHistory,
    residual: Vec<(i64, f64)>,
    /// The oscillator's random walk with temperature set aside, over the
    /// history held.
    residual_walk: Option<WalkEstimate>,
    /// Residual wander restored from before a restart, decaying from `restored_at`.
    restored: Vec<(i64, f64)>,
    /// The random walk estimate restored from before a restart.
    restored_walk: Option<WalkEstimate>,
    restored_at: Option<i64>,
    last_idx: i64,
    anchor: Option<Anchor>,
    coast: Option<Coast>,
    was_trusted: bool,
}

impl ThermalCompensator {
    /// A compensator for a sensor read every `interval_s` seconds, trusting
    /// a coefficient known to `trust_sigma_ppb_per_k` (one sigma).
    pub fn new(interval_s: f64, trust_sigma_ppb_per_k: f64) -> Self {
        Self {
            monitor: SensorMonitor::new(interval_s),
            model: TempcoModel::new(),
            trust_sigma_ppb_per_k,
            t_ref_c: None,
            theta_ks: 0.0,
            theta2_k2s: 0.0,
            theta_at: None,
            recent: VecDeque::new(),
            fault_since_entry: true,
            stride_sum: (0.0, 0.0, 0.0, 0),
            stride_end: None,
            q_recent: VecDeque::new(),
            history: ThermalHistory::default(),
            residual: Vec::new(),
            residual_walk: None,
            restored: Vec::new(),
            restored_walk: None,
            restored_at: None,
            last_idx: 0,
            anchor: None,
            coast: None,
            was_trusted: false,
        }
    }

    /// The learned model.
    pub fn model(&self) -> &TempcoModel {
        &self.model
    }

    /// The oscillator's random walk with temperature set aside, ppb²/s: the
    /// calm quarter of what the noise learner measured over the last hours
    /// (it measures a temperature ramp as a random walk too). What the model
    /// learns with.
    pub fn calm_random_walk(&self) -> Option<f64> {
        let mut sorted: Vec<f64> = self.q_recent.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        sorted.get(sorted.len() / 4).map(|q| q.max(Q_CALM_FLOOR))
    }

    /// The random walk (ppb²/s) of the phase left unexplained by the model,
    /// with its dof, over the history held: what a compensated holdover
    /// predicts with. None until enough has been seen.
    ///
    /// The estimate restored from before a restart is kept (and written
    /// again) but not pooled in: a day of mostly steady temperature shows
    /// the oscillator's own walk, not the model's misfit during a ramp, so
    /// pooling it narrowed the bound below the error of a holdover through
    /// a ramp (the bench's warm sweep served wrong time on
    /// rc-holdover-ramp while the lag term was learned low). With the lag
    /// learned from a centred slope (see [`history::LEARN_SLOPE_WINDOW`]) a
    /// 6 h warm sweep pooled served none, but its closest holdover came
    /// within 1.0× of its bound: the run's own estimate, which holds its
    /// ramps, stays the one used.
    pub fn residual_random_walk(&self) -> Option<WalkEstimate> {
        self.residual_walk.map(|w| WalkEstimate {
            q_ppb2_per_s: w.q_ppb2_per_s.max(Q_CALM_FLOOR),
            ..w
        })
    }

    /// What is persisted of the walk: this run's estimate pooled with the
    /// restored one, which weighs less as it ages (one-day half-life).
    fn persisted_walk(&self) -> Option<WalkEstimate> {
        let restored = self
            .restored_walk
            .and_then(|w| w.weighted(self.restored_decay()));
        WalkEstimate::pooled(self.residual_walk, restored)
    }

    /// How much of what was restored still counts (one-day half-life).
    fn restored_decay(&self) -> f64 {
        self.restored_at.map_or(1.0, |at| {
            0.5f64.powf((self.last_idx - at).max(0) as f64 / 86_400.0)
        })
    }

    /// Whether holdover may use the model.
    pub fn trusted(&self) -> bool {
        self.model.trusted(self.trust_sigma_ppb_per_k)
    }

    /// The holdover in progress, if compensated.
    pub fn coast(&self) -> Option<&Coast> {
        self.coast.as_ref()
    }

    fn healthy(&self) -> bool {
        self.monitor.health() == SensorHealth::Ok
    }

    /// Smoothed temperature minus the reference, K.
    fn temp_k(&self) -> Option<f64> {
        Some(self.monitor.smoothed_c()? - self.t_ref_c?)
    }

    /// Advances the temperature integral to `now` on the current reading.
    fn integrate_to(&mut self, now: MonoNanos) {
        let temp = self.temp_k();
        if let (Some(at), Some(t)) = (self.theta_at, temp) {
            let dt = (now.nanos_since(at) as f64 / 1e9).max(0.0);
            self.theta_ks += t * dt;
            self.theta2_k2s += t * t * dt;
        }
        if temp.is_none() {
            self.fault_since_entry = true;
        }
        if self.theta_at.is_none_or(|at| now > at) {
            self.theta_at = Some(now);
        }
        if let Some(t) = temp {
            self.recent.push_back((now, t));
            let span = history::SLOPE_SPAN * 1_000_000_000;
            while self
                .recent
                .get(1)
                .is_some_and(|&(at, _)| now.nanos_since(at) >= span)
            {
                self.recent.pop_front();
            }
        }
    }

    /// The slope term now: the smoothed temperature's change over the slope
    /// span, K/s (as the model learns it).
    fn slope_k_per_s(&self) -> Option<f64> {
        let &(first_at, first) = self.recent.front()?;
        let &(last_at, last) = self.recent.back()?;
        let span_s = last_at.nanos_since(first_at) as f64 / 1e9;
        (span_s >= 0.5 * history::SLOPE_SPAN as f64).then(|| (last - first) / span_s)
    }

    /// One sensor reading.
    pub fn on_reading(&mut self, at: MonoNanos, reading: &SensorReading) {
        self.integrate_to(at);
        if self.monitor.on_reading(at, reading).is_some() && self.t_ref_c.is_none() {
            self.t_ref_c = self.monitor.smoothed_c();
        }
        if !self.healthy() {
            self.fault_since_entry = true;
            self.recent.clear();
        }
    }

    /// Time passing (missing readings; the compensation in holdover).
    pub fn on_tick(&mut self, now: MonoNanos) {
        self.monitor.on_tick(now);
        self.integrate_to(now);
    }

    /// One pulse accepted by the filter: its free-running phase `psi_ns`,
    /// the pulses' white phase noise `r_ns2` and the oscillator's learned
    /// random walk `q_rw`. Learns every [`BLOCK`] pulses.
    pub fn on_pulse(&mut self, idx: i64, mono: MonoNanos, psi_ns: f64, r_ns2: f64, q_rw: f64) {
        self.integrate_to(mono);
        self.last_idx = idx;
        self.restored_at.get_or_insert(idx);
        self.anchor = match (self.temp_k(), self.slope_k_per_s()) {
            (Some(temp_k), Some(slope_k_per_s)) => Some(Anchor {
                temp_k,
                slope_k_per_s,
            }),
            _ => None,
        };
        // The entry this pulse counts towards: the next multiple of STRIDE.
        let end = (idx + STRIDE - 1).div_euclid(STRIDE) * STRIDE;
        if self.stride_end != Some(end) {
            // A new stride (or pulse numbers restarted): start the sums again.
            self.stride_sum = (0.0, 0.0, 0.0, 0);
            self.stride_end = Some(end);
        }
        self.stride_sum.0 += psi_ns;
        self.stride_sum.1 += self.theta_ks;
        self.stride_sum.2 += self.theta2_k2s;
        self.stride_sum.3 += 1;
        if idx.rem_euclid(STRIDE) != 0 {
            return;
        }
        let (sum_psi, sum_theta, sum_theta2, n) = self.stride_sum;
        self.stride_end = None;
        let healthy = !self.fault_since_entry && self.healthy() && n == STRIDE;
        self.history.push(Entry {
            idx,
            psi_ns: sum_psi / n.max(1) as f64,
            theta_ks: sum_theta / n.max(1) as f64,
            theta2_k2s: sum_theta2 / n.max(1) as f64,
            healthy,
        });
        self.fault_since_entry = !self.healthy();
        if idx.rem_euclid(BLOCK) != 0 {
            return;
        }
        // Entries are means of STRIDE pulses: their white noise is smaller.
        let r_mean = r_ns2 / STRIDE as f64;
        // The noise learner calls a temperature ramp a random walk; the model
        // must not, or f0 would explain every ramp away. Its f0 walks with the
        // random walk of the calm quarter of the last hours.
        if q_rw.is_finite() {
            if self.q_recent.len() == Q_RECENT_BLOCKS {
                self.q_recent.pop_front();
            }
            self.q_recent.push_back(q_rw.max(0.0));
        }
        let q_calm = self.calm_random_walk().unwrap_or(q_rw).max(Q_CALM_FLOOR);
        if let Some(block) = self.history.block(idx, r_mean, q_calm) {
            self.model.observe(&block);
            let stats = self.history.residual_stats(&self.model, idx, r_mean);
            self.residual = held_points(&stats.worst, r_mean);
            self.residual_walk = stats.walk;
        }
        let trusted = self.trusted();
        if trusted != self.was_trusted {
            let (k, sk) = self.model.coefficient();
            info!(
                coefficient_ppb_per_k = k,
                sigma_ppb_per_k = sk,
                trusted,
                "temperature coefficient {}",
                if trusted {
                    "learned: holdover uses it"
                } else {
                    "no longer trusted: holdover ignores the sensor"
                }
            );
            self.was_trusted = trusted;
        }
    }

    /// Forgets the phase history (a phase jump or relabel restarts pulse
    /// numbers); the model stays.
    pub fn clear_history(&mut self) {
        self.history.clear();
        self.residual.clear();
        self.residual_walk = None;
    }

    /// Called each tick while coasting: the frequency change (ppb) the
    /// temperature asks for since the last pulse, or None when holdover
    /// must run without a sensor (none, faulty at the loss, not trusted).
    pub fn coast_step(&mut self, now: MonoNanos) -> Option<f64> {
        self.on_tick(now);
        let healthy = self.healthy();
        let slope = self.slope_k_per_s();
        match self.coast.as_mut() {
            Some(c) => {
                c.comp_ns = c.comp_ns(now);
                c.sigma_ns = c.sigma_ns(now);
                c.at = now;
                if c.faulted {
                    return Some(c.delta_ppb);
                }
                let temp = self
                    .monitor
                    .smoothed_c()
                    .zip(self.t_ref_c)
                    .map(|(s, r)| s - r);
                match (healthy, temp, slope) {
                    (true, Some(t), Some(g)) => {
                        let (d, s) =
                            self.model
                                .delta(c.anchor.temp_k, t, g - c.anchor.slope_k_per_s);
                        c.delta_ppb = d;
                        c.sigma_ppb = s;
                    }
                    _ => {
                        c.faulted = true;
                        info!(
                            compensation_ppb = c.delta_ppb,
                            "temperature sensor lost during holdover: compensation frozen, bound without the sensor"
                        );
                    }
                }
                Some(c.delta_ppb)
            }
            None => {
                if !self.trusted() || !healthy {
                    return None;
                }
                let anchor = self.anchor?;
                self.coast = Some(Coast {
                    anchor,
                    delta_ppb: 0.0,
                    sigma_ppb: 0.0,
                    comp_ns: 0.0,
                    sigma_ns: 0.0,
                    at: now,
                    faulted: false,
                });
                self.coast_step(now)
            }
        }
    }

    /// The reference is back: the holdover's compensation ends. Returns it
    /// (frequency change now, ppb; phase added, ns at `now`) so the filter
    /// can take it in.
    pub fn end_coast(&mut self, now: MonoNanos) -> Option<(f64, f64)> {
        let c = self.coast.take()?;
        Some((c.delta_ppb, c.comp_ns(now)))
    }

    /// The phase error (ns) that the unexplained wander could reach over
    /// `t_s` seconds of coasting, with white phase noise `r_ns2` taken off.
    pub fn residual_bound_ns(&self, t_s: f64) -> f64 {
        let decay = self.restored_decay();
        let mut pts = self.residual.clone();
        for &(tau, w) in &self.restored {
            match pts.iter_mut().find(|p| p.0 == tau) {
                Some(p) => p.1 = p.1.max(w * decay),
                None => pts.push((tau, w * decay)),
            }
        }
        pts.sort_by_key(|p| p.0);
        let mut running = 0.0f64;
        for p in pts.iter_mut() {
            running = running.max(p.1);
            p.1 = running;
        }
        coast_bound_ns(&pts, t_s)
    }

    /// A snapshot for the operators.
    pub fn status(&self) -> ThermalStatus {
        let (k, sk) = self.model.coefficient();
        let (c, _) = self.model.lag_term();
        ThermalStatus {
            sensor: self.monitor.health(),
            reading_c: self.monitor.reading_c(),
            coefficient_ppm_per_k: k / 1000.0,
            coefficient_sigma_ppm_per_k: sk / 1000.0,
            quadratic_ppm_per_k2: self.model.quadratic().map(|(q, _)| q / 1000.0),
            quadratic_sigma_ppm_per_k2: self.model.quadratic().map(|(_, s)| s / 1000.0),
            learned_range_c: self
                .model
                .range_k
                .zip(self.t_ref_c)
                .map(|((lo, hi), t)| (lo + t, hi + t)),
            lag: (self.trusted() && k.abs() > 1.0).then(|| Nanos::from_secs(c / k)),
            trusted: self.trusted(),
            blocks: self.model.blocks,
            faults: self.monitor.faults,
            compensation_ppm: self.coast.map(|c| c.delta_ppb / 1000.0),
        }
    }

    /// What survives a restart (see [`persist`]).
    pub fn record(&self) -> persist::ThermalRecord {
        persist::ThermalRecord {
            model: self.t_ref_c.map(|t| (t, self.model)),
            residual_wander: if self.residual.is_empty() {
                self.restored.clone()
            } else {
                self.residual.clone()
            },
            wander: Vec::new(),
            residual_walk: self.persisted_walk(),
        }
    }

    /// Starts from what was kept before a restart.
    pub fn restore(&mut self, r: &persist::ThermalRecord) {
        if let Some((t_ref_c, m)) = &r.model
            && let Some(m) = TempcoModel::restored(m)
        {
            self.model = m;
            self.t_ref_c = Some(*t_ref_c);
            self.was_trusted = self.trusted();
        }
        self.restored = r.residual_wander.clone();
        self.restored_walk = r.residual_walk;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[expect(
        clippy::cast_possible_truncation,
        reason = "test times are thousands of seconds, far inside i64 nanoseconds"
    )]
    fn at(s: f64) -> MonoNanos {
        MonoNanos((s * 1e9) as i64)
    }

    /// Sensor noise of about ±0.06 K that does not hold still.
    fn jitter(i: i64) -> f64 {
        let x = (i.wrapping_mul(i).wrapping_mul(7919) + i * 31).rem_euclid(13);
        0.01 * (x as f64 - 6.0) + 0.001 * (i % 2) as f64
    }

    /// A crystal at 100 ppb/K through a 4 K warm-up ramp, read exactly by a
    /// sensor and by pulses, for `n` seconds.
    fn learned(n: i64) -> ThermalCompensator {
        let mut c = ThermalCompensator::new(1.0, 10.0);
        let temp = |t: f64| 40.0 + (4.0 * (t - 1000.0) / 900.0).clamp(0.0, 4.0);
        let mut psi = 0.0;
        for i in 0..n {
            let t = i as f64;
            let noise = jitter(i);
            c.on_reading(at(t), &SensorReading::Celsius(temp(t) + noise));
            c.on_pulse(i, at(t + 0.1), psi, 1.0e4, 0.25);
            psi += -18_000.0 + 100.0 * (temp(t) - 40.0);
        }
        c
    }

    #[test]
    fn a_noisy_lagging_sensor_learns_its_lag_without_bias() {
        // A crystal at 100 ppb/K warmed and cooled by 4 K, with the
        // oscillator's random walk allowed for in `f0`, read by a sensor
        // 30 s behind it (first order) with 0.1 K of noise; the smoothing
        // adds its own 19.5 s. The slope is a regressor, so its noise pulls
        // the lag term towards zero: a causal 32 s slope learned 25-33 s.
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};
        let temp = |t: f64| {
            40.0 + (4.0 * (t - 1000.0) / 900.0).clamp(0.0, 4.0)
                - (4.0 * (t - 3300.0) / 900.0).clamp(0.0, 4.0)
        };
        let alpha = 1.0 - (-1.0f64 / 30.0).exp();
        for seed in 1..=3 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let noise = Normal::new(0.0, 0.1).expect("normal");
            let mut c = ThermalCompensator::new(1.0, 10.0);
            let (mut psi, mut sensed) = (0.0, 40.0);
            for i in 0..5000 {
                let t = i as f64;
                sensed += (temp(t) - sensed) * alpha;
                let reading = sensed + noise.sample(&mut rng);
                c.on_reading(at(t), &SensorReading::Celsius(reading));
                c.on_pulse(i, at(t + 0.1), psi, 1.0e4, 0.25);
                psi += -18_000.0 + 100.0 * (temp(t) - 40.0);
            }
            let (k, _) = c.model().coefficient();
            let (lag, sigma) = c.model().lag_term();
            let lag_s = lag / k;
            // The sensor's 30 s and the smoothing's 19.5 s.
            assert!(
                (42.0..60.0).contains(&lag_s),
                "seed {seed}: lag {lag_s:.1} s (±{:.1})",
                sigma / k
            );
        }
    }

    #[test]
    fn a_learned_coefficient_compensates_a_holdover() {
        let mut c = learned(3000);
        assert!(c.trusted(), "{:?}", c.model().coefficient());
        let (k, _) = c.model().coefficient();
        assert!((k - 100.0).abs() < 5.0, "{k}");
        // Holdover: the box cools by 2 K.
        for i in 3000..3400 {
            let t = i as f64;
            let noise = jitter(i);
            let temp = 44.0 - 2.0 * ((t - 3000.0) / 100.0).clamp(0.0, 1.0) + noise;
            c.on_reading(at(t), &SensorReading::Celsius(temp));
            let d = c.coast_step(at(t + 0.5)).expect("compensating");
            if i == 3399 {
                assert!((d + 200.0).abs() < 20.0, "{d} ppb for -2 K");
            }
        }
        let coast = *c.coast().expect("coast");
        assert!(!coast.faulted);
        assert!(
            coast.sigma_ns(at(3400.0)) > 0.0,
            "the bound grows with the model's uncertainty"
        );
        let (_, comp) = c.end_coast(at(3400.0)).expect("ended");
        assert!(comp < -40_000.0, "{comp} ns put in for the cooling");
        assert!(c.coast().is_none());
    }

    #[test]
    fn a_sensor_failing_in_holdover_freezes_the_compensation_and_says_so() {
        let mut c = learned(3000);
        for i in 3000..3100 {
            let noise = jitter(i);
            c.on_reading(at(i as f64), &SensorReading::Celsius(43.0 + noise));
            c.coast_step(at(i as f64 + 0.5));
        }
        let before = c.coast().expect("coast").delta_ppb;
        c.on_reading(at(3100.0), &SensorReading::Unreadable("EIO".into()));
        let d = c.coast_step(at(3100.5));
        assert_eq!(d, Some(before), "frozen at the last good value");
        assert!(c.coast().expect("coast").faulted);
        // Readings back: still frozen for the rest of this holdover.
        for i in 3101..3200 {
            let noise = jitter(i);
            c.on_reading(at(i as f64), &SensorReading::Celsius(43.0 + noise));
            assert_eq!(c.coast_step(at(i as f64 + 0.5)), Some(before));
        }
    }

    #[test]
    fn no_compensation_without_a_trusted_model_or_with_a_faulty_sensor() {
        let mut c = learned(600);
        assert!(!c.trusted(), "no ramp seen yet");
        c.on_reading(at(600.0), &SensorReading::Celsius(40.0));
        assert_eq!(c.coast_step(at(600.5)), None);
        let mut c = learned(3000);
        c.on_reading(at(3000.0), &SensorReading::Celsius(4000.0));
        assert_eq!(c.coast_step(at(3000.5)), None, "garbage at the loss");
    }

    #[test]
    fn the_model_and_the_unexplained_wander_survive_a_restart() {
        let c = learned(3000);
        let record = c.record();
        let mut restarted = ThermalCompensator::new(1.0, 10.0);
        restarted.restore(&record);
        assert!(restarted.trusted());
        assert!(
            restarted
                .model()
                .coefficient()
                .0
                .total_cmp(&c.model().coefficient().0)
                .is_eq()
        );
        assert!(
            restarted
                .residual_bound_ns(1200.0)
                .total_cmp(&c.residual_bound_ns(1200.0))
                .is_eq(),
            "the same wander bound, to the bit"
        );
    }
}
