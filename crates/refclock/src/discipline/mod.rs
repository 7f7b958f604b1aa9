//! The reference clock core: pairing, filtering, steering and the state machine.
//!
//! Data flow for one pulse: the edge must sit a whole number of seconds after
//! the previous good ones (else: spurious); it gets the UTC second the clock
//! predicts for it, which the receiver's labels have established and keep
//! confirming; its offset updates the Kalman filter unless it is an outlier;
//! and the clock is steered by frequency only (estimated frequency error plus
//! a one-second phase correction, as chrony does). Each NMEA epoch is paired
//! with the edge it labels through the learned delay; a label that disagrees
//! with the clock by whole seconds is ignored for a short grace, after which
//! nothing is served as synchronised (either side may be wrong) until the
//! labels agree again or, the disagreement persisting, the receiver is
//! believed and the clock re-acquired. A one-second change at a month's end
//! is a leap second nobody announced, and is followed within seconds.
//!
//! [`Refclock`] is the orchestrator: each concern is a sub-machine that owns
//! its state ([`pulse_train`], [`label_arbiter`], [`leap_keeper`],
//! [`steering`], [`error_bound`]); the Kalman bank, the noise learners and
//! the sync state stay here and in [`filtering`]. See
//! docs/architecture-discipline.md for who owns what.

mod epochs;
mod error_bound;
mod filtering;
mod label_arbiter;
mod leap_keeper;
mod pulse_train;
mod snapshot;
mod steering;

use crate::config::RefclockConfig;
use crate::drift::DriftRecord;
use crate::filter::{FilterBank, Kalman, NoiseLearner};
use crate::leapfile::LeapTable;
use crate::pairing::DelayLearner;
use crate::pulse_jitter::PulseJitter;
use crate::qerr_correction::QerrCorrection;
use crate::status::{NmeaStatus, PpsStatus, RejectReason, RejectionEvent, Rejections, SyncState};
use crate::thermal::persist::ThermalRecord;
use crate::thermal::{SensorReading, ThermalCompensator};
use crate::wander::WanderTracker;
use error_bound::ErrorBound;
use label_arbiter::LabelArbiter;
use leap_keeper::LeapKeeper;
use pulse_train::{Expectation, PulseTrain, Verdict};
use skytime_core::Clock;
use skytime_core::{PpsEdge, ReceiverReport};
use skytime_timebase::{Arrival, MonoNanos};
use steering::Steering;
use tracing::{info, warn};

const NS: f64 = 1e9;
const NS_I: i64 = 1_000_000_000;
/// Consecutive outliers that, when they agree with each other, mean the
/// phase really jumped rather than a few pulses being bad.
const OUTLIER_STREAK_RESET: u32 = 4;
/// Second differences of the pulses' phase the noise learner needs before
/// the interval check narrows to the learned noise; until then it keeps the
/// tolerance it has before any filter runs.
const NOISE_LEARNED_SAMPLES: f64 = 8.0;
/// Reach registers hold eight seconds, as NTP's do.
const REACH_BITS: i64 = 8;

/// `s` seconds of a configured interval in ns, saturating (no configured
/// interval comes near 292 years).
fn ns_from_s(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(NS_I)
}

/// `ms` milliseconds of a configured interval in ns, saturating.
fn ns_from_ms(ms: u64) -> i64 {
    i64::try_from(ms)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000)
}

/// Seconds from `earlier` to `later` (negative if `later` is earlier).
fn secs_between(earlier: MonoNanos, later: MonoNanos) -> f64 {
    later.nanos_since(earlier) as f64 / NS
}

/// The last pulse that updated the filter.
#[derive(Copy, Clone, Debug)]
struct Sample {
    mono: MonoNanos,
    idx: i64,
    label: i64,
    applied_ns: f64,
}

/// The reference clock, generic over the clock it steers.
pub struct Refclock<C: Clock> {
    cfg: RefclockConfig,
    clock: C,

    state: SyncState,
    state_since: MonoNanos,
    state_reason: String,
    ever_locked: bool,

    /// The interval check and the edges kept for pairing.
    train: PulseTrain,
    delay: DelayLearner,
    /// Which second each pulse is, and disputes about it.
    labels: LabelArbiter,
    /// Leap announcements, the leap-seconds file and the clock's flag.
    leap: LeapKeeper,
    /// Clock commands and the phase they applied.
    steering: Steering,
    /// The guard filter and the doubt behind the advertised bound.
    bound: ErrorBound,

    kf: Option<Kalman>,
    bank: Option<FilterBank>,
    last_sample: Option<Sample>,
    noise: NoiseLearner,
    /// The pulses' jitter from every labelled pulse, gated or not: a floor
    /// under the learner's measurement noise (see `pulse_jitter`).
    pulse_jitter: PulseJitter,
    /// The worst frequency wander seen lately (a day's memory): the holdover
    /// bound never claims less than a repeat of it would cost.
    wander: WanderTracker,
    /// The temperature sensor, the coefficient learned from it, and the
    /// compensation of a holdover in progress.
    thermal: ThermalCompensator,
    /// The receiver's qErr for each edge (TIM-TP), applied before the filter.
    qerr: QerrCorrection,
    consecutive_good: u32,
    outlier_streak: u32,
    outlier_last_z: Option<f64>,
    rms_sq: f64,
    rms_n: f64,

    pps: PpsStatus,
    pps_zeros_shifted: i64,
    nmea: NmeaStatus,
    nmea_zeros_shifted: i64,
    rejections: Rejections,
    last_rejection: Option<RejectionEvent>,
    last_report_s: i64,
}

impl<C: Clock> Refclock<C> {
    /// A discipline for `clock`, starting from the drift file's frequency if
    /// there is one. Reads the leap-seconds file named in `config` (a missing
    /// or bad file is logged and ignored: the receiver's announcements remain).
    pub fn new(config: &RefclockConfig, clock: C, drift: Option<DriftRecord>) -> Self {
        let now = clock.monotonic();
        let leap_table = config.leap_seconds_file.as_ref().and_then(|p| match LeapTable::load(p) {
            Ok(t) => Some(t),
            Err(e) => {
                warn!(error = %e, "leap-seconds file not used; relying on the receiver's leap announcements");
                None
            }
        });
        let steering = Steering::new(&clock, drift, now);
        let temperature_interval_s = config.temperature_interval_ms as f64 / 1e3;
        let mut rc = Self {
            cfg: config.clone(),
            clock,
            state: SyncState::Acquiring,
            state_since: now,
            state_reason: "waiting for PPS and receiver labels".into(),
            ever_locked: false,
            train: PulseTrain::new(),
            delay: DelayLearner::default(),
            labels: LabelArbiter::new(),
            leap: LeapKeeper::new(leap_table),
            steering,
            bound: ErrorBound::new(),
            kf: None,
            bank: None,
            last_sample: None,
            noise: NoiseLearner::new(config.clock_precision_ns * config.clock_precision_ns),
            pulse_jitter: PulseJitter::new(),
            wander: WanderTracker::default(),
            thermal: ThermalCompensator::new(
                temperature_interval_s,
                config.temperature_trust_ppm_per_k * 1e3,
            ),
            qerr: QerrCorrection::new(config.qerr_correction),
            consecutive_good: 0,
            outlier_streak: 0,
            outlier_last_z: None,
            rms_sq: 0.0,
            rms_n: 0.0,
            pps: PpsStatus::default(),
            pps_zeros_shifted: 0,
            nmea: NmeaStatus::default(),
            nmea_zeros_shifted: 0,
            rejections: Rejections::default(),
            last_rejection: None,
            last_report_s: i64::MIN,
        };
        info!(state = "acquiring", "refclock started");
        rc.report_to_clock(now, i64::MIN);
        rc
    }

    /// The steered clock (the NTP server reads time through it).
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// What the noise learner has measured (lag s, variance ns², samples),
    /// for diagnostics.
    pub fn noise_lag_variances(&self) -> Vec<(i64, f64, f64)> {
        self.noise.lag_variances()
    }

    /// The configuration in force.
    pub fn config(&self) -> &RefclockConfig {
        &self.cfg
    }

    /// One temperature reading taken at `at` (monotonic): learned from while
    /// locked, compensated with in holdover. Faulty readings are the
    /// compensator's to detect; they never reach the clock.
    pub fn on_temperature(&mut self, at: MonoNanos, reading: &SensorReading) {
        self.thermal.on_reading(at, reading);
    }

    /// A receiver report besides the epochs: TIM-TP (qErr of the next
    /// pulse) and survey-in progress, stamped with their arrival.
    pub fn on_receiver_report(&mut self, report: &ReceiverReport) {
        if let (ReceiverReport::TimePulse { arrival, .. }, Some(table)) =
            (report, self.leap.table())
        {
            // GPS time runs TAI − 19 s: a receiver reporting TIM-TP in GPS time pairs too.
            let tai_minus_utc_s = table.tai_minus_utc_s(arrival.realtime.secs());
            self.qerr
                .set_gps_minus_utc_s((tai_minus_utc_s > 19).then_some(tai_minus_utc_s - 19));
        }
        self.qerr.on_report(report);
    }

    /// What the daemon should persist beside the drift file: the temperature
    /// model and the wander statistics.
    pub fn thermal_record(&self) -> ThermalRecord {
        ThermalRecord {
            wander: self.wander.snapshot().to_vec(),
            ..self.thermal.record()
        }
    }

    /// Starts from a thermal record kept before a restart.
    pub fn restore_thermal(&mut self, record: &ThermalRecord) {
        self.thermal.restore(record);
        if let Ok(w) = <[Option<f64>; crate::wander::LAGS.len()]>::try_from(record.wander.clone()) {
            self.wander.restore(&w);
        }
    }

    // ---------------------------------------------------------------- steering

    /// Phase correction (ns) applied by the discipline up to `mono`.
    fn applied_at(&self, mono: MonoNanos) -> f64 {
        self.steering.applied_at(mono)
    }

    fn set_frequency(&mut self, ppb: f64, mono: MonoNanos) {
        let limit = self.cfg.max_frequency_ppm * 1000.0;
        self.steering.set_frequency(&self.clock, ppb, mono, limit);
    }

    /// Frequency correction that cancels the estimated oscillator error.
    fn free_frequency(&self) -> f64 {
        match &self.kf {
            Some(k) => -k.f,
            None => self.steering.start_frequency_ppb(),
        }
    }

    /// Steps the clock at start-up; everything kept on the clock's frame
    /// moves with it. False if the clock refused.
    fn step_clock(&mut self, offset_ns: i64, mono: MonoNanos) -> bool {
        if !self.steering.step_at_start(&self.clock, offset_ns, mono) {
            return false;
        }
        self.train.stepped(offset_ns);
        self.labels.stepped(offset_ns);
        true
    }

    // -------------------------------------------------------------- state machine

    fn set_state(&mut self, state: SyncState, reason: String, mono: MonoNanos) {
        if state == self.state {
            self.state_reason = reason;
            return;
        }
        match state {
            SyncState::Locked | SyncState::Acquiring => {
                info!(from = self.state.as_str(), to = state.as_str(), reason = %reason, "refclock state change")
            }
            SyncState::Holdover | SyncState::Unsynchronised => {
                warn!(from = self.state.as_str(), to = state.as_str(), reason = %reason, "refclock state change")
            }
        }
        if state == SyncState::Locked {
            self.ever_locked = true;
        }
        self.state = state;
        self.state_reason = reason;
        self.state_since = mono;
    }

    fn reject(&mut self, reason: RejectReason, at: MonoNanos, detail: impl FnOnce() -> String) {
        self.rejections.count(reason);
        self.last_rejection = Some(RejectionEvent {
            reason,
            at,
            detail: detail(),
        });
    }

    // ------------------------------------------------------------------- pulses

    /// One captured pulse.
    pub fn on_pps(&mut self, edge: &PpsEdge) {
        self.pps.edges_seen += 1;
        self.pps.last_edge = Some(edge.timestamp);
        self.pps.last_edge_received = Some(edge.received);
        self.pps.last_edge_uncertainty_ns = edge.uncertainty_ns;
        let mono = edge.received;
        let stamp = self.steering.on_current_frame(edge.timestamp.0, mono);
        let Some(mut rec) = self.check_interval(stamp, mono) else {
            return;
        };

        // Which second is this? The filter's prediction (or, before it runs,
        // the labels' consensus) is far better than ±0.5 s, so rounding is safe.
        let stamp_c = stamp - self.cfg.pps_latency_ns;
        let predicted = match (&self.kf, &self.last_sample) {
            (Some(k), Some(s)) => Some(
                k.predicted(
                    (rec.idx - s.idx) as f64,
                    self.applied_at(mono) - s.applied_ns,
                    &self.noise_params(),
                    1.0,
                )
                .x,
            ),
            _ => self.labels.consensus_ns(),
        };
        #[expect(
            clippy::cast_possible_truncation,
            reason = "a Unix second, rounded, fits i64"
        )]
        let label = predicted.map(|o| ((stamp_c as f64 - o) / NS).round() as i64);
        rec.label = label;
        self.train.push(rec);

        let Some(label) = label else {
            return self.reject(RejectReason::UnlabelledEdge, mono, || {
                "receiver labels not yet consistent".into()
            });
        };
        if !self.labels.fix_ok(mono, self.cfg.nmea_timeout_ms) {
            let why = self.labels.no_fix_reason(self.cfg.nmea_timeout_ms);
            return self.reject(RejectReason::EdgeWithoutFix, mono, || why);
        }
        if let Some(l) = self.leap.window_containing(label) {
            self.leap.note_window_edge(mono);
            return self.reject(RejectReason::LeapWindowEdge, mono, || {
                format!("pulse labelled {label}, leap at {l}")
            });
        }
        // The receiver's quantisation error of this very pulse, when certain.
        let q_err_ns = self.qerr.correction_ns(mono, label);
        let z = (stamp_c - label * NS_I) as f64 + q_err_ns;
        self.measure(z, rec, label);
    }

    /// The interval check against the current pulse train: the record of an
    /// edge that belongs to it (or starts a new one).
    fn check_interval(&mut self, stamp: i64, mono: MonoNanos) -> Option<pulse_train::EdgeRec> {
        // A drift-file start knows the frequency to 1 ppm, but nothing yet of
        // the pulses' noise: narrowing to the learner's prior then would call
        // a jittery pulse (100 µs in a VM) spurious and move the train.
        let noise_learned = self
            .noise
            .lag_variances()
            .first()
            .is_some_and(|&(_, _, n)| n >= NOISE_LEARNED_SAMPLES);
        let expect = match (&self.kf, &self.last_sample) {
            (Some(k), Some(_)) if noise_learned => Expectation::Learned {
                freq_ppb: k.f,
                freq_sigma_ppb: k.pff.sqrt(),
                noise_var_ns2: self.noise_params().r,
            },
            _ => Expectation::Unlearned,
        };
        let applied = self.applied_at(mono);
        match self.train.check(stamp, mono, applied, expect) {
            Verdict::First(rec) => Some(rec),
            Verdict::Fits { rec, missed } => {
                self.pps.pulses_missed += missed;
                for _ in 0..missed {
                    self.shift_pps_reach(false);
                }
                self.pps_zeros_shifted = 0;
                Some(rec)
            }
            Verdict::NewTrain(rec) => {
                self.pulse_jitter.restart_numbering();
                warn!(
                    phase_ms = stamp.rem_euclid(NS_I) as f64 / 1e6,
                    "PPS pulses moved to a new phase; following them"
                );
                if self.kf.is_some() {
                    self.reset_filter("the pulse train moved", mono);
                }
                Some(rec)
            }
            Verdict::Spurious { off_ns } => {
                self.reject(RejectReason::SpuriousEdge, mono, || {
                    format!("edge {:.3} ms off the pulse train", off_ns as f64 / 1e6)
                });
                None
            }
        }
    }

    // -------------------------------------------------------------------- ticks

    /// Called at least once per second: timeouts, holdover, leap arming, reach.
    pub fn on_tick(&mut self, now: Arrival) {
        let mono = now.monotonic;
        // The one-second phase correction is over: keep only the frequency.
        if self.steering.phase_term_ended(mono) {
            let f = self.free_frequency();
            self.set_frequency(f, mono);
        }
        self.age_reach(mono);
        if self.kf.is_some() {
            self.leap.update(&self.clock, now.realtime.secs());
        }
        self.check_label_dispute(mono);
        self.run_timeouts(mono);
        self.thermal_tick(mono);
        self.report_to_clock(mono, now.realtime.secs());
    }

    /// Whether the clock is coasting on its oscillator after having been
    /// locked (holdover, or past its limit), with no step or dispute pending.
    fn coasting(&self) -> bool {
        self.kf.is_some()
            && !self.labels.suspended()
            && !self.steering.phase_term_running()
            && matches!(self.state, SyncState::Holdover | SyncState::Unsynchronised)
    }

    /// In holdover, steers by the frequency the temperature predicts.
    fn thermal_tick(&mut self, mono: MonoNanos) {
        if !self.coasting() {
            return self.thermal.on_tick(mono);
        }
        if let Some(delta) = self.thermal.coast_step(mono) {
            let ppb = self.free_frequency() - delta;
            if (ppb - self.steering.frequency_ppb()).abs() > 1e-3 {
                self.set_frequency(ppb, mono);
            }
        }
    }

    fn run_timeouts(&mut self, mono: MonoNanos) {
        // Pulses kept out of the filter around a leap second still show the
        // reference is there.
        let alive = match (
            self.last_sample.map(|s| s.mono),
            self.leap.last_window_edge(),
        ) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let since_sample = alive.map(|t| mono.nanos_since(t));
        let lost = since_sample.is_none_or(|d| d > ns_from_ms(self.cfg.pps_timeout_ms));
        if lost {
            self.consecutive_good = 0;
        }
        match self.state {
            SyncState::Locked if lost => {
                let why = match &self.last_rejection {
                    Some(r) if since_sample.is_some_and(|d| mono.nanos_since(r.at) < d) => {
                        r.reason.explain()
                    }
                    _ => "no PPS pulse",
                };
                self.set_state(
                    SyncState::Holdover,
                    format!("no usable pulse for {} ms: {why}", self.cfg.pps_timeout_ms),
                    mono,
                );
            }
            SyncState::Holdover => {
                let bound = self.error_bound(mono).bound_ns;
                let limit = self.cfg.holdover_max_root_dispersion_us * 1000.0;
                if bound > limit {
                    self.set_state(
                        SyncState::Unsynchronised,
                        format!(
                            "holdover error bound {:.0} µs passed the {:.0} µs limit",
                            bound / 1e3,
                            limit / 1e3
                        ),
                        mono,
                    );
                }
            }
            _ => {}
        }
    }

    fn shift_pps_reach(&mut self, bit: bool) {
        self.pps.reach = (self.pps.reach << 1) | u8::from(bit);
    }

    fn shift_nmea_reach(&mut self, bit: bool) {
        self.nmea.reach = (self.nmea.reach << 1) | u8::from(bit);
        self.nmea_zeros_shifted = 0;
    }

    /// Seconds without pulses or epochs shift zeros into the reach registers.
    fn age_reach(&mut self, mono: MonoNanos) {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "seconds of silence, floored, fit i64"
        )]
        let silent_s = |last: MonoNanos| (secs_between(last, mono) - 0.5).floor() as i64;
        if let Some(last) = self.train.last_received() {
            let silent = silent_s(last);
            while self.pps_zeros_shifted < silent.min(REACH_BITS) {
                self.pps.reach <<= 1;
                self.pps_zeros_shifted += 1;
            }
        }
        if let Some(last) = self.nmea.last_epoch_at.map(|a| a.monotonic) {
            let silent = silent_s(last);
            while self.nmea_zeros_shifted < silent.min(REACH_BITS) {
                self.nmea.reach <<= 1;
                self.nmea_zeros_shifted += 1;
            }
        }
    }
}
