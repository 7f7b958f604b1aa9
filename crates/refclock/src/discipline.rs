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

use crate::config::{RefclockConfig, ReferenceIdChoice};
use crate::drift::DriftRecord;
use crate::filter::{FilterBank, Kalman, NoiseLearner, NoiseParams};
use crate::leapfile::{LeapTable, end_of_month_unix_s};
use crate::pairing::{DelayLearner, Pairing};
use crate::pulse_jitter::PulseJitter;
use crate::qerr_correction::QerrCorrection;
use crate::status::{
    HoldoverStatus, LabelDisagreement, LeapSource, LeapSourceDisagreement, NmeaStatus, NoiseStatus,
    PpsStatus, ReferenceId, RejectReason, RejectionEvent, Rejections, Status, SyncState,
};
use crate::thermal::persist::ThermalRecord;
use crate::thermal::{SensorReading, ThermalCompensator, ThermalStatus};
use crate::wander::WanderTracker;
use skytime_core::{Clock, Epoch, PpsEdge, ReceiverReport, SyncReport};
use skytime_timebase::{Arrival, LeapChange, MonoNanos, UnixNanos, UtcSecond};
use std::collections::VecDeque;
use tracing::{info, warn};

/// How far (in variance) the pulses' own jitter estimate must exceed the
/// learned measurement noise before it replaces it: 16, i.e. 4× in σ. The
/// estimate comes from 32 pulses and wanders by tens of percent; taking the
/// larger of the two at every pulse inflated the noise and cost accuracy
/// (s11: +19 % RMS, s15: +35 % holdover error), and 4 in variance still cost
/// s15 its holdover. A jitter the gate hides is orders of magnitude above the
/// learned noise (the VM's ~100 µs against 300 ns), far past this ratio.
const PULSE_JITTER_OVERRIDE_RATIO: f64 = 16.0;

const NS: f64 = 1e9;
const NS_I: i64 = 1_000_000_000;
/// NTP's largest dispersion (16 s), advertised when nothing is known.
const MAX_DISPERSION_NS: f64 = 16e9;
/// Recent edges kept for pairing with epochs that arrive up to ~1 s later.
const EDGES_KEPT: usize = 8;
/// Consecutive outliers that, when they agree with each other, mean the
/// phase really jumped rather than a few pulses being bad.
const OUTLIER_STREAK_RESET: u32 = 4;
/// Consecutive pulses that must agree with each other but not with the
/// current train before the train is abandoned for them.
const TRAIN_SWITCH: u32 = 3;
/// Second differences of the pulses' phase the noise learner needs before
/// the interval check narrows to the learned noise; until then it keeps the
/// tolerance it has before any filter runs.
const NOISE_LEARNED_SAMPLES: f64 = 8.0;
/// Pairings that must agree before the whole seconds of the clock are known.
const CONSENSUS_PAIRINGS: usize = 3;
/// Consecutive epochs announcing a leap before it is believed.
const LEAP_ANNOUNCE_EPOCHS: u32 = 3;
/// Consecutive epochs without the announcement before it is withdrawn.
const LEAP_WITHDRAW_EPOCHS: u32 = 10;
/// Seconds around a leap (before, after) whose pulses stay out of the filter.
const LEAP_WINDOW_S: (i64, i64) = (3, 3);
/// Consecutive epochs, all off by the same ±1 s from a month's end on, after
/// which an unannounced leap second is believed.
const UNANNOUNCED_LEAP_EPOCHS: u32 = 3;
/// How late after the midnight the first disagreeing label may be (missed or
/// unpaired epochs) for the disagreement to count as a leap second.
const UNANNOUNCED_LEAP_SLACK_S: i64 = 2;
/// Largest initial frequency uncertainty assumed without a drift file, ppb.
const FREQ_PRIOR_PPB: f64 = 50_000.0;
/// Smallest frequency uncertainty taken from a drift file (temperature
/// changes across a restart), ppb.
const DRIFT_SKEW_FLOOR_PPB: f64 = 1_000.0;

/// A pulse that passed the interval check, kept for pairing.
#[derive(Copy, Clone, Debug)]
struct EdgeRec {
    /// Raw stamp on the clock's current frame (shifted by our own steps), ns.
    stamp: i64,
    /// When it was received (monotonic).
    mono: MonoNanos,
    /// Pulse number: consecutive seconds have consecutive numbers.
    idx: i64,
    /// The discipline's applied phase correction when it was received, ns
    /// (the frequency may change many times before the next pulse, as in a
    /// temperature-compensated holdover).
    applied: f64,
    /// The Unix second the clock assigned to it (POSIX, so 23:59:60 and
    /// 23:59:59 share one), once the labels are established.
    label: Option<i64>,
    /// Whether this one was checked against a previous pulse.
    confirmed: bool,
}

/// The receiver's labels and the clock disagreeing by whole seconds.
#[derive(Copy, Clone, Debug)]
struct Dispute {
    /// Receiver's second minus the clock's.
    offset_s: i64,
    /// When the first disagreeing epoch arrived (monotonic).
    since: MonoNanos,
    /// Consecutive epochs with this offset.
    epochs: u32,
    /// Set when it began, from agreement, at a month's end midnight by
    /// exactly one second: the leap second (and its midnight) it looks like.
    leap: Option<(LeapChange, i64)>,
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

    edges: VecDeque<EdgeRec>,
    last_raw: Option<EdgeRec>,
    train_mismatch: u32,

    delay: DelayLearner,
    consensus_obs: VecDeque<(f64, i64)>,
    consensus_ns: Option<f64>,
    disagreement: Option<Dispute>,
    /// Set while serving is suspended because the labels disagree beyond the
    /// grace: the state to return to when they agree again.
    label_hold: Option<SyncState>,
    last_epoch_valid: bool,
    last_valid_epoch: Option<MonoNanos>,

    kf: Option<Kalman>,
    bank: Option<FilterBank>,
    /// A filter run with the largest oscillator noise the data allow: its
    /// uncertainty is what the advertised error bound is built from.
    guard: Option<Kalman>,
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
    /// |innovation| of the pulses being rejected as outliers right now: until
    /// resolved, nobody knows whether the pulses or the clock moved, so the
    /// advertised bound covers it.
    doubt_ns: f64,
    rms_sq: f64,
    rms_n: f64,

    applied_ns: f64,
    u_ppb: f64,
    u_set_at: Option<MonoNanos>,
    phase_term_until: Option<MonoNanos>,
    start_freq_ppb: f64,
    start_skew_ppb: f64,
    step_allowed: bool,
    steps: u32,
    last_step: Option<(MonoNanos, i64)>,

    leap_table: Option<LeapTable>,
    /// TAI−UTC last given to the clock.
    tai_set_s: Option<i32>,
    rx_leap: LeapChange,
    rx_leap_count: u32,
    rx_leap_absent: u32,
    rx_leap_ignore_until_s: i64,
    pending_leap: (LeapChange, Option<i64>, Option<LeapSource>),
    leap_sources_disagree: Option<LeapSourceDisagreement>,
    armed: LeapChange,
    last_leap_end_s: Option<i64>,
    last_leap_window_edge: Option<MonoNanos>,
    leap_checked_s: i64,

    pps: PpsStatus,
    pps_zeros_shifted: i64,
    nmea: NmeaStatus,
    nmea_zeros_shifted: i64,
    rejections: Rejections,
    last_rejection: Option<RejectionEvent>,
    last_report_s: i64,
    last_now: Option<Arrival>,
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
        let (start_freq_ppb, start_skew_ppb) = match drift {
            Some(d) => (
                d.frequency_ppm * 1000.0,
                (d.skew_ppm * 1000.0).max(DRIFT_SKEW_FLOOR_PPB),
            ),
            None => (clock.frequency_ppb(), FREQ_PRIOR_PPB),
        };
        if drift.is_some()
            && let Err(e) = clock.set_frequency_ppb(start_freq_ppb)
        {
            warn!(error = %e, "could not apply the drift file's frequency");
        }
        let mut rc = Self {
            cfg: config.clone(),
            clock,
            state: SyncState::Acquiring,
            state_since: now,
            state_reason: "waiting for PPS and receiver labels".into(),
            ever_locked: false,
            edges: VecDeque::with_capacity(EDGES_KEPT),
            last_raw: None,
            train_mismatch: 0,
            delay: DelayLearner::default(),
            consensus_obs: VecDeque::new(),
            consensus_ns: None,
            disagreement: None,
            label_hold: None,
            last_epoch_valid: false,
            last_valid_epoch: None,
            kf: None,
            bank: None,
            guard: None,
            last_sample: None,
            noise: NoiseLearner::new(config.clock_precision_ns * config.clock_precision_ns),
            pulse_jitter: PulseJitter::new(),
            wander: WanderTracker::default(),
            thermal: ThermalCompensator::new(
                config.temperature_interval_ms as f64 / 1e3,
                config.temperature_trust_ppm_per_k * 1e3,
            ),
            qerr: QerrCorrection::new(config.qerr_correction),
            consecutive_good: 0,
            outlier_streak: 0,
            outlier_last_z: None,
            doubt_ns: 0.0,
            rms_sq: 0.0,
            rms_n: 0.0,
            applied_ns: 0.0,
            u_ppb: start_freq_ppb,
            u_set_at: Some(now),
            phase_term_until: None,
            start_freq_ppb,
            start_skew_ppb,
            step_allowed: true,
            steps: 0,
            last_step: None,
            leap_table,
            tai_set_s: None,
            rx_leap: LeapChange::None,
            rx_leap_count: 0,
            rx_leap_absent: 0,
            rx_leap_ignore_until_s: i64::MIN,
            pending_leap: (LeapChange::None, None, None),
            leap_sources_disagree: None,
            armed: LeapChange::None,
            last_leap_end_s: None,
            last_leap_window_edge: None,
            leap_checked_s: i64::MIN,
            pps: PpsStatus::default(),
            pps_zeros_shifted: 0,
            nmea: NmeaStatus::default(),
            nmea_zeros_shifted: 0,
            rejections: Rejections::default(),
            last_rejection: None,
            last_report_s: i64::MIN,
            last_now: None,
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
        if let (ReceiverReport::TimePulse { arrival, .. }, Some(table)) = (report, &self.leap_table)
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

    /// Phase correction (ns) applied by the discipline up to `mono`: the
    /// integral of every frequency correction, plus steps.
    fn applied_at(&self, mono: MonoNanos) -> f64 {
        match self.u_set_at {
            Some(at) => self.applied_ns + self.u_ppb * (mono.nanos_since(at).max(0) as f64 / NS),
            None => self.applied_ns,
        }
    }

    fn set_frequency(&mut self, ppb: f64, mono: MonoNanos) {
        let limit = self.cfg.max_frequency_ppm * 1000.0;
        let ppb = if ppb.is_finite() {
            ppb.clamp(-limit, limit)
        } else {
            self.u_ppb
        };
        self.applied_ns = self.applied_at(mono);
        self.u_set_at = Some(mono);
        self.u_ppb = ppb;
        if let Err(e) = self.clock.set_frequency_ppb(ppb) {
            warn!(error = %e, "setting the clock frequency failed");
        }
    }

    /// Frequency correction that cancels the estimated oscillator error.
    fn free_frequency(&self) -> f64 {
        match &self.kf {
            Some(k) => -k.f,
            None => self.start_freq_ppb,
        }
    }

    fn step_clock(&mut self, offset_ns: i64, mono: MonoNanos) -> bool {
        match self.clock.step(offset_ns) {
            Ok(()) => {
                self.applied_ns += offset_ns as f64;
                for e in self.edges.iter_mut() {
                    e.stamp += offset_ns;
                    e.applied += offset_ns as f64;
                    e.label = None;
                }
                if let Some(r) = self.last_raw.as_mut() {
                    r.stamp += offset_ns;
                    r.applied += offset_ns as f64;
                }
                if let Some(c) = self.consensus_ns.as_mut() {
                    *c += offset_ns as f64;
                }
                self.steps += 1;
                self.last_step = Some((mono, offset_ns));
                info!(step_ns = offset_ns, "clock stepped at start-up");
                true
            }
            Err(e) => {
                warn!(error = %e, step_ns = offset_ns, "clock step failed; slewing instead");
                false
            }
        }
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
        let mut stamp = edge.timestamp.0;
        if let Some((at, s)) = self.last_step
            && mono < at
        {
            stamp += s;
        }
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
            _ => self.consensus_ns,
        };
        rec.label = predicted.map(|o| ((stamp_c as f64 - o) / NS).round() as i64);
        self.push_edge(rec);

        let Some(label) = rec.label else {
            return self.reject(RejectReason::UnlabelledEdge, mono, || {
                "receiver labels not yet consistent".into()
            });
        };
        if !self.fix_ok(mono) {
            let why = if self.last_valid_epoch.is_none() {
                "no valid receiver epoch yet".to_string()
            } else if !self.last_epoch_valid {
                "receiver reports no fix".to_string()
            } else {
                format!(
                    "no receiver output for over {} ms",
                    self.cfg.nmea_timeout_ms
                )
            };
            return self.reject(RejectReason::EdgeWithoutFix, mono, || why);
        }
        if let Some(l) = self.leap_window_end()
            && (l - LEAP_WINDOW_S.0..l + LEAP_WINDOW_S.1).contains(&label)
        {
            self.last_leap_window_edge = Some(mono);
            return self.reject(RejectReason::LeapWindowEdge, mono, || {
                format!("pulse labelled {label}, leap at {l}")
            });
        }
        // The receiver's quantisation error of this very pulse, when certain.
        let q_err_ns = self.qerr.correction_ns(mono, label);
        let z = (stamp_c - label * NS_I) as f64 + q_err_ns;
        self.measure(z, rec, label);
    }

    /// The interval check against the current pulse train. Returns the
    /// record of an edge that belongs to it.
    fn check_interval(&mut self, stamp: i64, mono: MonoNanos) -> Option<EdgeRec> {
        let raw = EdgeRec {
            stamp,
            mono,
            idx: 0,
            applied: self.applied_at(mono),
            label: None,
            confirmed: false,
        };
        let prev_raw = self.last_raw.replace(raw);
        let Some(last) = self.edges.back().copied() else {
            return Some(raw);
        };
        let fits =
            |from: &EdgeRec, tol_per_s: f64, base_tol: f64, expected_extra: f64| -> Option<i64> {
                let n = (mono.nanos_since(from.mono) as f64 / NS).round() as i64;
                if n < 1 {
                    return None;
                }
                let err = (stamp - from.stamp) as f64 - n as f64 * NS - expected_extra * n as f64;
                // Whole seconds are the labels' business (a leap second steps the
                // clock by one); only the fraction says whether this is a pulse.
                let frac = err - (err / NS).round() * NS;
                (frac.abs() <= base_tol + tol_per_s * n as f64).then_some(n)
            };
        // A drift-file start knows the frequency to 1 ppm, but nothing yet of
        // the pulses' noise: narrowing to the learner's prior then would call
        // a jittery pulse (100 µs in a VM) spurious and move the train.
        let noise_learned = self
            .noise
            .lag_variances()
            .first()
            .is_some_and(|&(_, _, n)| n >= NOISE_LEARNED_SAMPLES);
        let (extra, tol_per_s, base_tol) = match (&self.kf, &self.last_sample) {
            (Some(k), Some(_)) if noise_learned => {
                let r = self.noise_params().r;
                let drift = (raw.applied - last.applied).abs();
                (
                    k.f - 0.0,
                    6.0 * k.pff.sqrt() + 2_000.0,
                    100_000.0 + 8.0 * (2.0 * r).sqrt() + drift,
                )
            }
            _ => (0.0, 1_100_000.0, 100_000.0),
        };
        // Expected extra from our own steering over the interval.
        let steering = raw.applied - last.applied;
        let n_steer = (mono.nanos_since(last.mono) as f64 / NS).round().max(1.0);
        if let Some(n) = fits(&last, tol_per_s, base_tol, extra + steering / n_steer) {
            self.train_mismatch = 0;
            if let Some(b) = self.edges.back_mut() {
                b.confirmed = true;
            }
            if n > 1 {
                self.pps.pulses_missed += (n - 1) as u64;
                for _ in 1..n {
                    self.shift_pps_reach(false);
                }
            }
            self.pps_zeros_shifted = 0;
            return Some(EdgeRec {
                idx: last.idx + n,
                confirmed: true,
                ..raw
            });
        }
        // Not part of the train. Is it part of a new one (the train was
        // started by a spurious edge, or the phase really moved)?
        if let Some(p) = prev_raw
            && fits(&p, 1_100_000.0, 100_000.0, 0.0).is_some()
        {
            self.train_mismatch += 1;
            if !last.confirmed || self.train_mismatch >= TRAIN_SWITCH {
                self.train_mismatch = 0;
                self.edges.clear();
                self.pulse_jitter.restart_numbering();
                warn_train_switch(stamp);
                if self.kf.is_some() {
                    self.reset_filter("the pulse train moved", mono);
                }
                return Some(raw);
            }
        }
        self.reject(RejectReason::SpuriousEdge, mono, || {
            format!(
                "edge {:.3} ms off the pulse train",
                ((stamp - last.stamp).rem_euclid(NS_I)) as f64 / 1e6
            )
        });
        None
    }

    fn push_edge(&mut self, rec: EdgeRec) {
        if self.edges.len() == EDGES_KEPT {
            self.edges.pop_front();
        }
        self.edges.push_back(rec);
    }

    fn fix_ok(&self, mono: MonoNanos) -> bool {
        self.last_epoch_valid
            && self
                .last_valid_epoch
                .is_some_and(|t| mono.nanos_since(t) <= self.cfg.nmea_timeout_ms as i64 * 1_000_000)
    }

    fn leap_window_end(&self) -> Option<i64> {
        match self.pending_leap {
            (c, Some(end), _) if c != LeapChange::None => Some(end),
            _ => self.last_leap_end_s,
        }
    }

    fn reset_filter(&mut self, why: &str, mono: MonoNanos) {
        self.kf = None;
        self.bank = None;
        self.guard = None;
        self.last_sample = None;
        self.consensus_ns = None;
        self.consensus_obs.clear();
        self.noise.clear_history();
        self.wander.clear_history();
        self.thermal.clear_history();
        self.thermal.end_coast(mono);
        self.consecutive_good = 0;
        self.outlier_streak = 0;
        self.doubt_ns = 0.0;
        let held = self.label_hold.take().is_some();
        if matches!(self.state, SyncState::Locked) || held {
            self.set_state(SyncState::Acquiring, why.to_string(), mono);
        }
    }

    /// One labelled offset measurement `z` (ns) from pulse `rec`.
    fn measure(&mut self, z: f64, rec: EdgeRec, label: i64) {
        let mono = rec.mono;
        self.absorb_thermal_coast(mono);
        self.pulse_jitter.add(rec.idx, z - rec.applied);
        let q = self.noise_params();
        let (Some(mut bank), Some(last)) = (self.bank.take(), self.last_sample) else {
            return self.start_filter(z, rec, label, q);
        };
        let dt = (rec.idx - last.idx) as f64;
        let applied = self.applied_at(mono);
        let preds = bank.predicted(dt, applied - last.applied_ns, &q);
        let mut pred = preds[bank.best_index()];
        let inn = pred.innovation(z, q.r);
        let gate = self.cfg.outlier_sigmas * inn.variance.sqrt();
        if inn.residual_ns.abs() > gate.max(self.cfg.clock_precision_ns * 4.0) {
            self.outlier_streak += 1;
            let consistent = self
                .outlier_last_z
                .is_some_and(|p| (z - p).abs() < 0.25 * inn.residual_ns.abs() + 8.0 * q.r.sqrt());
            self.outlier_last_z = Some(z);
            if self.outlier_streak >= OUTLIER_STREAK_RESET && consistent {
                // The phase moved for real: start again from here.
                let jump = inn.residual_ns;
                warn!(jump_ns = jump, "phase jump; re-acquiring");
                pred.x = z;
                pred.pxx = q.r + jump * jump;
                pred.pff += (jump / dt.max(1.0)).powi(2);
                bank.reset_to(pred);
                self.bank = Some(bank);
                self.guard = Some(Kalman {
                    d: 0.0,
                    pxd: 0.0,
                    pfd: 0.0,
                    pdd: 0.0,
                    q_drift: 0.0,
                    ..pred
                });
                self.kf = Some(pred);
                self.noise.clear_history();
                self.wander.clear_history();
                self.thermal.clear_history();
                self.last_sample = Some(Sample {
                    mono,
                    idx: rec.idx,
                    label,
                    applied_ns: applied,
                });
                self.outlier_streak = 0;
                self.consecutive_good = 0;
                let held = self.label_hold.take().is_some();
                if matches!(self.state, SyncState::Locked | SyncState::Holdover) || held {
                    self.set_state(
                        SyncState::Acquiring,
                        format!("phase jump of {jump:.0} ns"),
                        mono,
                    );
                }
                self.steer(mono);
                return;
            }
            self.bank = Some(bank);
            self.doubt_ns = self.doubt_ns.max(inn.residual_ns.abs());
            return self.reject(RejectReason::OutlierEdge, mono, || {
                format!(
                    "offset {:.0} ns from prediction, gate {:.0} ns",
                    inn.residual_ns, gate
                )
            });
        }
        self.outlier_streak = 0;
        self.outlier_last_z = None;
        self.doubt_ns = 0.0;
        bank.update(preds, z, q.r);
        self.kf = Some(bank.best());
        self.bank = Some(bank);
        if let Some(g) = self.guard {
            let gq = self.guard_noise();
            let mut gp = g.predicted(dt, applied - last.applied_ns, &gq, 1.0);
            gp.update(z, q.r);
            self.guard = Some(gp);
        }
        self.accept(z, rec, label, applied);
    }

    fn start_filter(&mut self, mut z: f64, rec: EdgeRec, label: i64, q: NoiseParams) {
        let mono = rec.mono;
        if self.step_allowed && z.abs() > self.cfg.step_threshold_ms * 1e6 {
            let step = -z.round() as i64;
            if self.step_clock(step, mono) {
                z += step as f64;
            }
        }
        self.step_allowed = false;
        let applied = self.applied_at(mono);
        let k = Kalman::new(
            z,
            q.r.max(z * z),
            -self.u_ppb_free_guess(),
            self.start_skew_ppb * self.start_skew_ppb,
        );
        self.kf = Some(k);
        self.bank = Some(FilterBank::new(k));
        self.guard = Some(k);
        self.accept(z, rec, label, applied);
    }

    /// The learned noise, with the measurement noise raised to what the
    /// recent pulses show, gated or not, once that is far above it (a jitter
    /// the gate keeps the learner from hearing).
    fn noise_params(&self) -> NoiseParams {
        let mut q = self.noise.params();
        if let Some(r) = self.pulse_jitter.variance_ns2()
            && r > PULSE_JITTER_OVERRIDE_RATIO * q.r
        {
            q.r = r;
        }
        q
    }

    /// How much noisier than learned the best filter of the bank finds the
    /// pulses (never below 1): the guard assumes at least that.
    fn bank_noise_scale(&self) -> f64 {
        self.bank
            .as_ref()
            .map(|b| b.best_scale())
            .unwrap_or(1.0)
            .max(1.0)
    }

    /// The noise the guard filter assumes: the learned noise times the safety
    /// factor, and never less random walk than the data allow.
    fn guard_noise(&self) -> NoiseParams {
        let q = self.noise_params();
        let scale = self.cfg.holdover_noise_safety_factor;
        let best_scale = self.bank_noise_scale();
        NoiseParams {
            r: q.r,
            q_wfm: q.q_wfm * scale * best_scale,
            q_rw: (q.q_rw * scale * best_scale).max(self.noise.q_rw_upper()),
        }
    }

    /// The noise a temperature-compensated holdover is predicted with: the
    /// largest random walk `q_rw_upper` (ppb²/s) that the phase left
    /// unexplained by the temperature model allows. The safety factor guards the plain noise
    /// model against temperature it cannot see; here temperature is modelled,
    /// its uncertainty and unexplained wander are bounded apart, and the
    /// random walk is already an upper bound.
    fn guard_noise_with(&self, q_rw_upper: f64) -> NoiseParams {
        let q = self.noise.params();
        let scale = self.cfg.holdover_noise_safety_factor;
        let best_scale = self.bank_noise_scale();
        NoiseParams {
            r: q.r,
            q_wfm: q.q_wfm * scale * best_scale,
            q_rw: q_rw_upper * best_scale,
        }
    }

    /// The oscillator's frequency error implied by the correction in force
    /// before the filter ran (the drift file's, or whatever the clock had).
    fn u_ppb_free_guess(&self) -> f64 {
        self.start_freq_ppb
    }

    fn accept(&mut self, z: f64, rec: EdgeRec, label: i64, applied: f64) {
        let mono = rec.mono;
        self.noise.add(rec.idx, z - applied);
        self.wander.add(rec.idx, z - applied);
        let q = self.noise.params();
        self.thermal
            .on_pulse(rec.idx, mono, z - applied, q.r, q.q_rw);
        self.last_sample = Some(Sample {
            mono,
            idx: rec.idx,
            label,
            applied_ns: applied,
        });
        self.pps.edges_used += 1;
        self.shift_pps_reach(true);
        self.consecutive_good += 1;
        if let Some(k) = &self.kf {
            self.rms_n = (self.rms_n + 1.0).min(64.0);
            self.rms_sq += (k.x * k.x - self.rms_sq) / self.rms_n;
        }
        self.steer(mono);
        self.evaluate_lock(mono);
    }

    /// Frequency correction: cancel the estimated oscillator error and remove
    /// the estimated offset over the next second.
    fn steer(&mut self, mono: MonoNanos) {
        let Some(k) = self.kf else { return };
        // Over the next second the frequency moves by the drift: aim at its middle.
        let ppb = -(k.f + 0.5 * k.d) - k.x / 1.0;
        self.set_frequency(ppb, mono);
        self.phase_term_until = Some(mono.add_nanos(NS_I));
    }

    fn evaluate_lock(&mut self, mono: MonoNanos) {
        let Some(k) = &self.kf else { return };
        if self.disagreement.is_some() || self.label_hold.is_some() {
            return;
        }
        let err = k.x.abs() + self.cfg.error_bound_sigmas * k.pxx.sqrt();
        let ready =
            self.consecutive_good >= self.cfg.lock_min_samples && err <= self.cfg.lock_max_error_ns;
        match self.state {
            SyncState::Locked => {}
            SyncState::Unsynchronised => {
                self.set_state(
                    SyncState::Acquiring,
                    "reference back; converging".into(),
                    mono,
                );
                if ready {
                    self.set_state(
                        SyncState::Locked,
                        format!("converged: error ≤ {err:.0} ns"),
                        mono,
                    );
                }
            }
            SyncState::Acquiring | SyncState::Holdover => {
                if ready {
                    self.set_state(
                        SyncState::Locked,
                        format!("converged: error ≤ {err:.0} ns"),
                        mono,
                    );
                }
            }
        }
    }

    // ------------------------------------------------------------------- epochs

    /// One second of receiver output.
    pub fn on_epoch(&mut self, epoch: &Epoch) {
        let mono = epoch.last_byte.monotonic;
        self.nmea.epochs_seen += 1;
        self.nmea.last_label = Some(epoch.utc);
        self.nmea.last_epoch_at = Some(epoch.last_byte);
        self.nmea.fix_valid = epoch.valid;
        self.nmea.fix_mode = epoch.fix_mode;
        self.nmea.sats_used = epoch.sats_used;
        self.nmea.sats_visible = epoch.sats_visible;
        self.nmea.satellites.clone_from(&epoch.satellites);
        self.last_epoch_valid = epoch.valid;
        self.shift_nmea_reach(epoch.valid);
        if !epoch.valid {
            return self.reject(RejectReason::InvalidFix, mono, || {
                format!("epoch {} without a valid fix", epoch.utc)
            });
        }
        self.last_valid_epoch = Some(mono);
        self.track_receiver_leap(epoch);

        let mut arrival = epoch.last_byte.realtime.0;
        if let Some((at, s)) = self.last_step
            && mono < at
        {
            arrival += s;
        }
        let stamps: Vec<i64> = self.edges.iter().map(|e| e.stamp).collect();
        let pairing = self.delay.pair(arrival, &stamps);
        self.nmea.delay_learned_ms = self.delay.learned_ns().map(|d| d / 1e6);
        if let Some((med, p95)) = self.delay.distribution_ns() {
            self.nmea.delay_median_ms = Some(med / 1e6);
            self.nmea.delay_p95_ms = Some(p95 / 1e6);
        }
        let edge = match pairing {
            Pairing::Learning => return,
            Pairing::Unpaired { nearest_ns } => {
                return self.reject(RejectReason::UnpairedEpoch, mono, || match nearest_ns {
                    Some(d) => format!(
                        "epoch {}: nearest pulse {:.0} ms from where expected",
                        epoch.utc,
                        d / 1e6
                    ),
                    None => format!("epoch {}: no pulse seen", epoch.utc),
                });
            }
            Pairing::Paired { edge, .. } => self.edges[edge],
        };
        self.nmea.epochs_paired += 1;
        let said = epoch.utc.unix_secs();
        let stamp_c = edge.stamp - self.cfg.pps_latency_ns;

        let Some(assigned) = edge.label else {
            // The labels establish the clock's whole seconds.
            if self.kf.is_none() {
                self.build_consensus((stamp_c - said * NS_I) as f64, edge.idx);
            }
            return;
        };
        if let Some(l) = self.leap_window_end()
            && (l - LEAP_WINDOW_S.0..l + LEAP_WINDOW_S.1).contains(&assigned)
        {
            return;
        }
        let diff = said - assigned;
        if diff == 0 {
            if let Some(d) = self.disagreement.take() {
                self.labels_agree_again(d, mono);
            }
            return;
        }
        let dispute = match self.disagreement {
            Some(d) if d.offset_s == diff => Dispute {
                epochs: d.epochs.saturating_add(1),
                ..d
            },
            previous => {
                let leap = if previous.is_none() {
                    self.unannounced_leap(said, assigned)
                } else {
                    None
                };
                match leap {
                    Some((change, _)) => warn!(
                        offset_s = diff,
                        label = %epoch.utc,
                        leap = ?change,
                        "receiver labels changed by one second at the end of a month: an unannounced leap second?"
                    ),
                    None if previous.is_none() => warn!(
                        offset_s = diff,
                        label = %epoch.utc,
                        "receiver labels a pulse with another second than the clock"
                    ),
                    None => {}
                }
                Dispute {
                    offset_s: diff,
                    since: mono,
                    epochs: 1,
                    leap,
                }
            }
        };
        self.disagreement = Some(dispute);
        self.reject(RejectReason::MislabelledSecond, mono, || {
            format!(
                "receiver says {}, clock says {assigned} (+{diff} s)",
                epoch.utc
            )
        });
        if let Some((change, midnight)) = dispute.leap
            && dispute.epochs >= UNANNOUNCED_LEAP_EPOCHS
        {
            return self.follow_unannounced_leap(dispute, change, midnight, mono);
        }
        if mono.nanos_since(dispute.since) >= self.cfg.label_confirm_s as i64 * NS_I {
            warn!(
                offset_s = diff,
                lasted_s = self.cfg.label_confirm_s,
                "receiver has disagreed by whole seconds for too long; re-acquiring on its second"
            );
            let lasted = self.cfg.label_confirm_s;
            self.reject(RejectReason::WholeSecondDisagreement, mono, || {
                format!("receiver {diff:+} s for {lasted} s; clock re-acquired")
            });
            self.disagreement = None;
            self.reset_filter("receiver disagrees by whole seconds", mono);
            self.set_state(
                SyncState::Acquiring,
                format!("re-acquiring after a {diff:+} s label change"),
                mono,
            );
            self.consensus_ns = Some((stamp_c - said * NS_I) as f64);
            for e in self.edges.iter_mut() {
                e.label = None;
            }
            self.step_allowed = true;
            return;
        }
        self.check_label_dispute(mono);
    }

    /// The midnight and kind of leap second that a disagreement starting now
    /// (receiver `said`, clock `assigned`) would be, if it is exactly one
    /// second, starts at the end of a month, and no leap was expected there.
    /// An insert makes the receiver one second behind a clock that did not
    /// repeat 23:59:59; a delete, one second ahead.
    fn unannounced_leap(&self, said: i64, assigned: i64) -> Option<(LeapChange, i64)> {
        let change = match said - assigned {
            -1 => LeapChange::Insert,
            1 => LeapChange::Delete,
            _ => return None,
        };
        let first_new_second = said.max(assigned);
        let midnight = (0..=UNANNOUNCED_LEAP_SLACK_S)
            .map(|back| first_new_second - back)
            .find(|&m| m.rem_euclid(86_400) == 0 && end_of_month_unix_s(m - 1) == Some(m))?;
        let expected = matches!(self.pending_leap, (c, Some(at), _) if c != LeapChange::None && at == midnight)
            || self.last_leap_end_s == Some(midnight);
        (!expected).then_some((change, midnight))
    }

    /// Believes the receiver about a leap second nobody announced: the clock
    /// takes the step the kernel would have taken at midnight. UTC moved, not
    /// the clock's phase, so the filter keeps running.
    fn follow_unannounced_leap(
        &mut self,
        d: Dispute,
        change: LeapChange,
        midnight: i64,
        mono: MonoNanos,
    ) {
        let step = d.offset_s * NS_I;
        if let Err(e) = self.clock.step(step) {
            warn!(error = %e, "could not step the clock for an unannounced leap second; waiting for the receiver to be confirmed");
            if let Some(dispute) = self.disagreement.as_mut() {
                dispute.leap = None;
            }
            return self.check_label_dispute(mono);
        }
        for e in self.edges.iter_mut() {
            e.stamp += step;
            e.label = e.label.map(|l| l + d.offset_s);
        }
        if let Some(r) = self.last_raw.as_mut() {
            r.stamp += step;
        }
        self.steps += 1;
        self.last_step = Some((mono, step));
        self.disagreement = None;
        let when = UtcSecond::from_unix_secs(midnight)
            .map(|u| u.to_string())
            .unwrap_or_else(|| midnight.to_string());
        warn!(
            leap = ?change,
            midnight = %when,
            step_ns = step,
            after_epochs = d.epochs,
            "unannounced leap second: neither the receiver nor leap-seconds.list announced it; the clock now follows the receiver"
        );
        let reason = format!("followed an unannounced leap second ({change:?}) at {when}");
        match self.label_hold.take() {
            Some(previous) => self.set_state(previous, reason, mono),
            None => self.state_reason = reason,
        }
    }

    /// The labels agree with the clock again: the disagreement was the
    /// receiver's, and serving resumes without a step.
    fn labels_agree_again(&mut self, d: Dispute, mono: MonoNanos) {
        let lasted = mono.nanos_since(d.since) as f64 / NS;
        match self.label_hold.take() {
            Some(previous) => {
                let to = if self.kf.is_some() {
                    previous
                } else {
                    SyncState::Acquiring
                };
                self.set_state(
                    to,
                    format!(
                        "receiver labels agree with the clock again after {lasted:.0} s at {:+} s; no step",
                        d.offset_s
                    ),
                    mono,
                );
            }
            None => info!(
                offset_s = d.offset_s,
                lasted_s = lasted,
                "receiver labels agree with the clock again"
            ),
        }
    }

    /// Whether a whole-second disagreement forbids serving at `mono`: it has
    /// outlasted the grace, or serving was already suspended for one.
    fn label_dispute_blocks(&self, mono: MonoNanos) -> bool {
        self.label_hold.is_some()
            || self.disagreement.is_some_and(|d| {
                mono.nanos_since(d.since) > self.cfg.label_disagreement_grace_s as i64 * NS_I
            })
    }

    /// Suspends serving once a disagreement outlasts the grace.
    fn check_label_dispute(&mut self, mono: MonoNanos) {
        let Some(d) = self.disagreement else { return };
        if self.label_hold.is_some() || !self.label_dispute_blocks(mono) {
            return;
        }
        self.label_hold = Some(self.state);
        let reason = format!(
            "receiver labels disagree with the clock by {:+} s for over {} s: not serving until they agree again (no step) or the receiver is believed after {} s",
            d.offset_s, self.cfg.label_disagreement_grace_s, self.cfg.label_confirm_s
        );
        match self.state {
            SyncState::Locked | SyncState::Holdover => {
                self.set_state(SyncState::Unsynchronised, reason, mono)
            }
            // Not serving from the reference anyway; say why it is stuck.
            SyncState::Acquiring | SyncState::Unsynchronised => self.state_reason = reason,
        }
    }

    fn build_consensus(&mut self, offset_ns: f64, idx: i64) {
        if let Some(&(prev, prev_idx)) = self.consensus_obs.back() {
            let tol = 2e6 * (idx - prev_idx).abs().max(1) as f64;
            if (offset_ns - prev).abs() > tol {
                self.consensus_obs.clear();
            }
        }
        self.consensus_obs.push_back((offset_ns, idx));
        if self.consensus_obs.len() >= CONSENSUS_PAIRINGS {
            self.consensus_ns = Some(offset_ns);
            self.consensus_obs.clear();
        }
    }

    fn track_receiver_leap(&mut self, epoch: &Epoch) {
        if epoch.leap == LeapChange::None {
            self.rx_leap_absent += 1;
            if self.rx_leap_absent >= LEAP_WITHDRAW_EPOCHS {
                self.rx_leap = LeapChange::None;
                self.rx_leap_count = 0;
            }
            return;
        }
        self.rx_leap_absent = 0;
        if epoch.utc.unix_secs() < self.rx_leap_ignore_until_s {
            return;
        }
        if epoch.leap == self.rx_leap {
            self.rx_leap_count = self.rx_leap_count.saturating_add(1);
        } else {
            self.rx_leap = epoch.leap;
            self.rx_leap_count = 1;
        }
    }

    // -------------------------------------------------------------------- ticks

    /// Called at least once per second: timeouts, holdover, leap arming, reach.
    pub fn on_tick(&mut self, now: Arrival) {
        self.last_now = Some(now);
        let mono = now.monotonic;
        // The one-second phase correction is over: keep only the frequency.
        if let Some(until) = self.phase_term_until
            && mono >= until
        {
            self.phase_term_until = None;
            let f = self.free_frequency();
            self.set_frequency(f, mono);
        }
        self.age_reach(mono);
        self.update_leap(now);
        self.check_label_dispute(mono);
        self.run_timeouts(mono);
        self.thermal_tick(mono);
        self.report_to_clock(mono, now.realtime.secs());
    }

    /// Whether the clock is coasting on its oscillator after having been
    /// locked (holdover, or past its limit), with no step or dispute pending.
    fn coasting(&self) -> bool {
        self.kf.is_some()
            && self.label_hold.is_none()
            && self.phase_term_until.is_none()
            && matches!(self.state, SyncState::Holdover | SyncState::Unsynchronised)
    }

    /// In holdover, steers by the frequency the temperature predicts.
    fn thermal_tick(&mut self, mono: MonoNanos) {
        if !self.coasting() {
            return self.thermal.on_tick(mono);
        }
        if let Some(delta) = self.thermal.coast_step(mono) {
            let ppb = self.free_frequency() - delta;
            if (ppb - self.u_ppb).abs() > 1e-3 {
                self.set_frequency(ppb, mono);
            }
        }
    }

    /// The reference is back: the frequency change and phase that the
    /// temperature compensation put in become the filters' own, so that the
    /// first pulses are predicted where the model put the clock.
    fn absorb_thermal_coast(&mut self, mono: MonoNanos) {
        let Some((delta_ppb, comp_ns)) = self.thermal.end_coast(mono) else {
            return;
        };
        info!(
            compensation_ppb = delta_ppb,
            phase_us = comp_ns / 1e3,
            "reference back: temperature compensation handed to the filter"
        );
        if let Some(b) = self.bank.as_mut() {
            b.shift_frequency(delta_ppb);
        }
        for k in [self.kf.as_mut(), self.guard.as_mut()]
            .into_iter()
            .flatten()
        {
            k.f += delta_ppb;
        }
        if let Some(s) = self.last_sample.as_mut() {
            s.applied_ns -= comp_ns;
        }
    }

    fn run_timeouts(&mut self, mono: MonoNanos) {
        // Pulses kept out of the filter around a leap second still show the
        // reference is there.
        let alive = match (self.last_sample.map(|s| s.mono), self.last_leap_window_edge) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let since_sample = alive.map(|t| mono.nanos_since(t));
        let lost = since_sample.is_none_or(|d| d > self.cfg.pps_timeout_ms as i64 * 1_000_000);
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
                let (bound, _, _) = self.error_bound(mono);
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

    fn report_to_clock(&mut self, mono: MonoNanos, sec: i64) {
        if sec == self.last_report_s && sec != i64::MIN {
            return;
        }
        self.last_report_s = sec;
        let (bound, _, sigma) = self.error_bound(mono);
        let report = SyncReport {
            synchronised: self.serving(mono).0 < 16 && self.state != SyncState::Unsynchronised,
            est_error_ns: sigma,
            max_error_ns: bound,
        };
        if let Err(e) = self.clock.report_sync(report) {
            tracing::debug!(error = %e, "could not report sync state to the clock");
        }
    }

    fn shift_pps_reach(&mut self, bit: bool) {
        self.pps.reach = (self.pps.reach << 1) | bit as u8;
    }

    fn shift_nmea_reach(&mut self, bit: bool) {
        self.nmea.reach = (self.nmea.reach << 1) | bit as u8;
        self.nmea_zeros_shifted = 0;
    }

    /// Seconds without pulses or epochs shift zeros into the reach registers.
    fn age_reach(&mut self, mono: MonoNanos) {
        if let Some(last) = self.edges.back().map(|e| e.mono) {
            let silent = (mono.nanos_since(last) as f64 / NS - 0.5).floor() as i64;
            while self.pps_zeros_shifted < silent.min(8) {
                self.pps.reach <<= 1;
                self.pps_zeros_shifted += 1;
            }
        }
        if let Some(last) = self.nmea.last_epoch_at.map(|a| a.monotonic) {
            let silent = (mono.nanos_since(last) as f64 / NS - 0.5).floor() as i64;
            while self.nmea_zeros_shifted < silent.min(8) {
                self.nmea.reach <<= 1;
                self.nmea_zeros_shifted += 1;
            }
        }
    }

    // -------------------------------------------------------------------- leaps

    fn update_leap(&mut self, now: Arrival) {
        let now_s = now.realtime.secs();
        if now_s == self.leap_checked_s || self.kf.is_none() {
            return;
        }
        self.leap_checked_s = now_s;
        let Some(end) = end_of_month_unix_s(now_s) else {
            return;
        };
        // The leap second itself and the second after it: the leap stands as
        // announced, LI keeps saying it, and the kernel's flag stays set. The
        // kernel clock reads 23:59:59 twice, and may read 00:00:00 for a moment
        // before its tick inserts the second; a receiver that stops announcing
        // now has seen the leap begin, not withdrawn it.
        if let (c, Some(at), _) = self.pending_leap
            && c != LeapChange::None
            && (at - 1..=at).contains(&now_s)
        {
            return;
        }
        // A leap just happened (the clock is past the second after the
        // midnight it was for).
        if let (c, Some(at), _) = self.pending_leap
            && c != LeapChange::None
            && now_s > at
        {
            info!(leap = ?c, "leap second passed");
            self.last_leap_end_s = Some(at);
            self.rx_leap_ignore_until_s = at + 86_400;
            self.rx_leap = LeapChange::None;
            self.rx_leap_count = 0;
            self.pending_leap = (LeapChange::None, None, None);
            if self.armed != LeapChange::None {
                self.armed = LeapChange::None;
                if let Err(e) = self.clock.set_leap(LeapChange::None) {
                    warn!(error = %e, "could not clear the leap flag");
                }
            }
        }
        let receiver = (self.rx_leap != LeapChange::None
            && self.rx_leap_count >= LEAP_ANNOUNCE_EPOCHS
            && now_s >= self.rx_leap_ignore_until_s)
            .then_some(self.rx_leap);
        // What an unexpired file says about this month's end, leap or not.
        let file_view = self
            .leap_table
            .as_ref()
            .and_then(|t| t.leap_at_end_of_month(now_s));
        let file = file_view.filter(|(c, _)| *c != LeapChange::None);
        self.update_tai_offset(now_s);
        self.compare_leap_sources(receiver, file_view.map(|(c, _)| c), end);
        let pending = match (receiver, file) {
            (Some(c), _) => (c, Some(end), Some(LeapSource::Receiver)),
            (None, Some((c, at))) => (c, Some(at), Some(LeapSource::LeapFile)),
            (None, None) => (LeapChange::None, None, None),
        };
        if pending.0 != self.pending_leap.0 {
            info!(leap = ?pending.0, source = ?pending.2, "leap second status changed");
        }
        self.pending_leap = pending;
        // Armed only on the last day of the month, and kept armed through its
        // final second (the kernel acts at midnight, then clears the flag).
        let last_day = pending
            .1
            .is_some_and(|at| now_s >= at - 86_400 && now_s < at);
        let want = if last_day {
            pending.0
        } else {
            LeapChange::None
        };
        if want != self.armed {
            match self.clock.set_leap(want) {
                Ok(()) => {
                    info!(leap = ?want, "leap flag set on the clock");
                    self.armed = want;
                }
                Err(e) => warn!(error = %e, "could not set the leap flag"),
            }
        }
    }

    /// Gives the clock TAI−UTC from an unexpired leap-seconds file, once and
    /// again whenever the table's value changes (after the kernel's own +1
    /// at an inserted leap, setting the same value again is harmless).
    fn update_tai_offset(&mut self, now_s: i64) {
        let Some(table) = self.leap_table.as_ref().filter(|t| !t.is_expired(now_s)) else {
            return;
        };
        let tai = table.tai_minus_utc_s(now_s);
        if self.tai_set_s == Some(tai) {
            return;
        }
        // Tried once per value: a refusal is logged, not repeated every second.
        self.tai_set_s = Some(tai);
        match self.clock.set_tai_offset_s(tai) {
            Ok(()) => info!(tai_minus_utc_s = tai, "TAI offset set on the clock"),
            Err(e) => warn!(error = %e, tai_minus_utc_s = tai, "could not set the TAI offset"),
        }
    }

    /// Notes (once, at warn) when the receiver announces something for the
    /// midnight `end` that an unexpired leap-seconds file contradicts. The
    /// receiver is followed, as before; a receiver that announces nothing is
    /// no contradiction (many cannot announce at all).
    fn compare_leap_sources(
        &mut self,
        receiver: Option<LeapChange>,
        file: Option<LeapChange>,
        end: i64,
    ) {
        let now = match (receiver, file) {
            (Some(r), Some(f)) if r != f => Some(LeapSourceDisagreement {
                receiver: r,
                leap_file: f,
                at: UnixNanos(end * NS_I),
                following: LeapSource::Receiver,
            }),
            _ => None,
        };
        if now == self.leap_sources_disagree {
            return;
        }
        let midnight = || {
            UtcSecond::from_unix_secs(end)
                .map(|u| u.to_string())
                .unwrap_or_else(|| end.to_string())
        };
        match now {
            Some(d) => warn!(
                receiver = ?d.receiver,
                leap_seconds_file = ?d.leap_file,
                midnight = %midnight(),
                following = "receiver",
                "the receiver's leap announcement and leap-seconds.list disagree about the coming midnight; following the receiver"
            ),
            None => {
                info!("the receiver's leap announcement and leap-seconds.list no longer disagree")
            }
        }
        self.leap_sources_disagree = now;
    }

    // ------------------------------------------------------------------- status

    /// Error bound (ns), its growth rate (ns/s) and the one-sigma error (ns)
    /// at `mono`: the filter's prediction with the learned noise (inflated
    /// by the holdover safety factor) or, if more, what a repeat of the worst
    /// frequency wander seen lately would cost over the time since the last
    /// pulse; |offset| and the systematic allowances. A temperature-compensated
    /// holdover gets a prediction interval instead (see
    /// [`Refclock::compensated_growth`]).
    fn error_bound(&self, mono: MonoNanos) -> (f64, f64, f64) {
        let (Some(guard), Some(s)) = (&self.guard, &self.last_sample) else {
            return (MAX_DISPERSION_NS, 0.0, MAX_DISPERSION_NS);
        };
        let dt = (mono.nanos_since(s.mono) as f64 / NS).max(0.0);
        let coast = self.thermal.coast().copied();
        let comp = coast.map_or(0.0, |c| c.comp_ns(mono));
        let applied = self.applied_at(mono) - s.applied_ns + comp;
        let fixed = self.cfg.pps_systematic_uncertainty_ns
            + self.cfg.clock_precision_ns
            + f64::from(self.pps.last_edge_uncertainty_ns);
        // A temperature-compensated holdover whose unexplained random walk
        // is known: the filter in charge, whose frequency the holdover runs
        // on, predicts with that random walk (the oscillator's own, not the
        // temperature's), and the bound is a prediction interval.
        let tight = match (coast, self.thermal.residual_random_walk_upper(), &self.kf) {
            (Some(c), Some(q_rw), Some(kf)) if !c.faulted => Some((c, q_rw, kf)),
            _ => None,
        };
        if let Some((c, q_rw, kf)) = tight {
            let q = self.guard_noise_with(q_rw);
            let p0 = kf.predicted(dt, applied, &q, 1.0);
            let p1 = kf.predicted(dt + 1.0, applied + self.free_frequency(), &q, 1.0);
            let b0 = p0.x.abs() + self.compensated_growth(&p0, &c, dt, mono, fixed) + self.doubt_ns;
            let b1 = p1.x.abs()
                + self.compensated_growth(&p1, &c, dt + 1.0, mono, fixed)
                + self.doubt_ns;
            return (b0.min(MAX_DISPERSION_NS), (b1 - b0).max(0.0), p0.pxx.sqrt());
        }
        let q = self.guard_noise();
        let p0 = guard.predicted(dt, applied, &q, 1.0);
        let p1 = guard.predicted(dt + 1.0, applied + self.free_frequency(), &q, 1.0);
        let n = self.cfg.error_bound_sigmas;
        // The noise model's bound, or what a repeat of the worst frequency
        // wander seen lately would cost (a temperature ramp that the noise
        // model has already forgotten), whichever is more.
        let r = self.noise_params().r;
        // A sensor lost during the holdover brings the plain wander back,
        // beside the compensation's uncertainty so far.
        let growth = |p: &Kalman, t: f64| match coast {
            Some(c) if !c.faulted => {
                (n * p.pxx.sqrt()).max(self.thermal.residual_bound_ns(t)) + n * c.sigma_ns(mono)
            }
            Some(c) => {
                (n * p.pxx.sqrt())
                    .max(self.wander.bound_ns(t, r))
                    .max(self.thermal.residual_bound_ns(t))
                    + n * c.sigma_ns(mono)
            }
            None => (n * p.pxx.sqrt()).max(self.wander.bound_ns(t, r)),
        };
        let b0 = p0.x.abs() + growth(&p0, dt) + fixed + self.doubt_ns;
        let b1 = p1.x.abs() + growth(&p1, dt + 1.0) + fixed + self.doubt_ns;
        (b0.min(MAX_DISPERSION_NS), (b1 - b0).max(0.0), p0.pxx.sqrt())
    }

    /// How far a temperature-compensated holdover may have strayed after
    /// `t_s` s, |predicted offset| aside: `temperature_bound_sigmas` of the
    /// prediction (state, upper-bounded random walk and the coefficients'
    /// uncertainty, independent, so in quadrature), never less than the
    /// unexplained wander of the last day would cost (the guard against a
    /// model contradicted by what it missed: a heater it cannot see), and
    /// the fixed allowances (independent of the oscillator) in quadrature.
    fn compensated_growth(
        &self,
        p: &Kalman,
        c: &crate::thermal::Coast,
        t_s: f64,
        mono: MonoNanos,
        fixed_ns: f64,
    ) -> f64 {
        let k = self.cfg.temperature_bound_sigmas;
        let sigma = (p.pxx + c.sigma_ns(mono).powi(2)).sqrt();
        let random = (k * sigma).max(self.thermal.residual_bound_ns(t_s));
        (random * random + fixed_ns * fixed_ns).sqrt()
    }

    /// (stratum, reference id) to serve now.
    fn serving(&self, mono: MonoNanos) -> (u8, ReferenceId) {
        let reference = match self.cfg.reference_id {
            ReferenceIdChoice::Gps => ReferenceId::GPS,
            ReferenceIdChoice::Pps => ReferenceId::PPS,
        };
        let within_limit =
            || self.error_bound(mono).0 <= self.cfg.holdover_max_root_dispersion_us * 1000.0;
        // Which second it is is in dispute: not even the local fallback is
        // served, since the clock may be whole seconds off.
        if self.label_dispute_blocks(mono) {
            return (16, reference);
        }
        let fallback = match self.cfg.local_stratum {
            Some(s) if self.ever_locked => (s, ReferenceId::LOCAL),
            _ => (16, reference),
        };
        match self.state {
            SyncState::Locked => (1, reference),
            SyncState::Holdover if within_limit() => (1, reference),
            SyncState::Holdover | SyncState::Unsynchronised => fallback,
            SyncState::Acquiring => (16, reference),
        }
    }

    /// A snapshot for the NTP server and the operator surfaces.
    pub fn status(&self) -> Status {
        let now = self.clock.arrival();
        let mono = now.monotonic;
        let (bound, rate, sigma) = self.error_bound(mono);
        let (stratum, reference_id) = self.serving(mono);
        let q = self.noise_params();
        let kf = self.kf;
        let holdover = (self.state == SyncState::Holdover).then(|| HoldoverStatus {
            elapsed_s: self
                .last_sample
                .map(|s| mono.nanos_since(s.mono) as f64 / NS)
                .unwrap_or(0.0),
            bound_ns: bound,
            limit_ns: self.cfg.holdover_max_root_dispersion_us * 1000.0,
        });
        Status {
            as_of: now.realtime,
            as_of_mono: mono,
            state: self.state,
            state_reason: self.state_reason.clone(),
            state_since: self.state_since,
            stratum,
            reference_id,
            leap: self.pending_leap.0,
            leap_at: self.pending_leap.1.map(|s| UnixNanos(s * NS_I)),
            leap_source: self.pending_leap.2,
            leap_armed: self.armed,
            leap_sources_disagree: self.leap_sources_disagree,
            reference_time: self.last_sample.map(|s| UnixNanos(s.label * NS_I)),
            root_dispersion_ns: bound,
            dispersion_rate_ns_per_s: rate,
            offset_ns: kf.map(|k| k.x).unwrap_or(0.0),
            offset_sigma_ns: sigma,
            rms_offset_ns: self.rms_sq.sqrt(),
            frequency_ppm: self.u_ppb / 1000.0,
            residual_frequency_ppm: kf.map(|k| (k.f + self.u_ppb) / 1000.0).unwrap_or(0.0),
            skew_ppm: kf
                .map(|k| k.pff.sqrt() / 1000.0)
                .unwrap_or(self.start_skew_ppb / 1000.0),
            jitter_ns: q.r.sqrt(),
            noise: NoiseStatus {
                measurement_ns: q.r.sqrt(),
                white_fm_ns_per_sqrt_s: q.q_wfm.sqrt(),
                random_walk_ppb_per_sqrt_s: q.q_rw.sqrt(),
            },
            holdover,
            holdover_limit_ns: self.cfg.holdover_max_root_dispersion_us * 1000.0,
            pps: self.pps.clone(),
            nmea: self.nmea.clone(),
            rejections: self.rejections,
            last_rejection: self.last_rejection.clone(),
            label_disagreement: self.disagreement.map(|d| LabelDisagreement {
                offset_s: d.offset_s,
                duration_s: mono.nanos_since(d.since) as f64 / NS,
                confirm_after_s: self.cfg.label_confirm_s,
                grace_s: self.cfg.label_disagreement_grace_s,
                serving_suspended: self.label_dispute_blocks(mono),
                unannounced_leap: d.leap.map(|(c, _)| c),
            }),
            steps: self.steps,
            thermal: self.thermal_status(),
            qerr: self.qerr.status(),
        }
    }

    fn thermal_status(&self) -> Option<ThermalStatus> {
        let st = self.thermal.status();
        (self.cfg.temperature_sensor.is_some()
            || st.sensor != crate::thermal::SensorHealth::Absent
            || st.blocks > 0)
            .then_some(st)
    }

    /// What the daemon should persist to the drift file: the learned
    /// frequency, once the filter has converged at least once.
    pub fn drift_record(&self) -> Option<DriftRecord> {
        let k = self.kf.as_ref()?;
        if !self.ever_locked {
            return None;
        }
        Some(DriftRecord {
            frequency_ppm: -k.f / 1000.0,
            skew_ppm: k.pff.sqrt() / 1000.0,
        })
    }
}

fn warn_train_switch(stamp: i64) {
    warn!(
        phase_ms = stamp.rem_euclid(NS_I) as f64 / 1e6,
        "PPS pulses moved to a new phase; following them"
    );
}
