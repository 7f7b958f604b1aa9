//! The discipline's hook for the receiver's timing reports: TIM-TP qErr goes
//! to [`QerrPairing`], and each labelled edge asks here how much to add to
//! its stamp before the filter sees it (0 when the pairing is not certain or
//! the correction is switched off in `[refclock] qerr_correction`).
//! Survey-in progress is kept for the status. Sans-IO: reports come in with
//! their arrival, edges with their receipt, both on the monotonic clock.

use crate::qerr::{QerrCounters, QerrDecision, QerrPairing, SkipReason};
use serde::Serialize;
use skytime_core::ReceiverReport;
use skytime_core::receiver::SurveyIn;
use skytime_timebase::MonoNanos;
use tracing::info;

/// What status, `skytimectl status` and /metrics show about the qErr correction.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QerrStatus {
    /// Whether `[refclock] qerr_correction` is on.
    pub enabled: bool,
    /// TIM-TP messages received.
    pub messages: u64,
    /// Edges corrected.
    pub applied: u64,
    /// Edges left uncorrected: no message for their second (missing or late).
    pub skipped_no_message: u64,
    /// Edges left uncorrected: the receiver marked qErr invalid.
    pub skipped_invalid: u64,
    /// Edges left uncorrected: the message could not be tied to UTC, or not a 1 PPS pulse.
    pub skipped_uncertain: u64,
    /// The last correction applied, ns (added to the edge's stamp).
    pub last_correction_ns: Option<f64>,
    /// The receiver's survey-in, once it has reported one (TIM-SVIN or NAV-SVIN).
    pub survey_in: Option<SurveyInStatus>,
}

/// Survey-in progress as the receiver reports it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SurveyInStatus {
    /// The survey is still running.
    pub active: bool,
    /// The survey met its limits: the receiver holds its position fixed.
    pub valid: bool,
    /// Time surveyed so far, s.
    pub duration_s: u32,
    /// Positions averaged.
    pub observations: u32,
    /// Accuracy of the mean position, m.
    pub accuracy_m: f64,
}

impl From<SurveyIn> for SurveyInStatus {
    fn from(s: SurveyIn) -> Self {
        Self {
            active: s.active,
            valid: s.valid,
            duration_s: s.duration_s,
            observations: s.observations,
            accuracy_m: f64::from(s.accuracy_mm) / 1000.0,
        }
    }
}

/// Whether the edges are being corrected, for one log line per change.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Mode {
    Applying,
    Skipping(SkipReason),
}

/// The qErr correction of PPS edges from the receiver's TIM-TP.
#[derive(Debug)]
pub(crate) struct QerrCorrection {
    enabled: bool,
    pairing: QerrPairing,
    last_correction_ns: Option<f64>,
    survey: Option<SurveyIn>,
    mode: Option<Mode>,
}

impl QerrCorrection {
    /// `enabled`: `[refclock] qerr_correction`.
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            pairing: QerrPairing::new(),
            last_correction_ns: None,
            survey: None,
            mode: None,
        }
    }

    /// GPS−UTC, s (for receivers that report TIM-TP in GPS time).
    pub(crate) fn set_gps_minus_utc_s(&mut self, seconds: Option<i32>) {
        self.pairing.set_gps_minus_utc_s(seconds);
    }

    /// A report from the receiver, besides its epochs.
    pub(crate) fn on_report(&mut self, report: &ReceiverReport) {
        match report {
            ReceiverReport::TimePulse { report, arrival } => {
                self.pairing.on_tim_tp(report, arrival.monotonic.0);
            }
            ReceiverReport::SurveyIn(s) => {
                let was = self.survey.map(|o| (o.active, o.valid));
                if was != Some((s.active, s.valid)) {
                    info!(
                        active = s.active,
                        valid = s.valid,
                        duration_s = s.duration_s,
                        accuracy_m = f64::from(s.accuracy_mm) / 1000.0,
                        "receiver survey-in"
                    );
                }
                self.survey = Some(*s);
            }
            ReceiverReport::Identified(_) => {}
        }
    }

    /// The correction, ns, to add to the stamp of the edge received at
    /// `received` and labelled `label_unix_s` (the UTC second it starts):
    /// qErr is the ideal pulse minus the real one. 0 when no TIM-TP was ever
    /// seen (a receiver without it), when switched off, or when not certain.
    pub(crate) fn correction_ns(&mut self, received: MonoNanos, label_unix_s: i64) -> f64 {
        if !self.enabled || self.pairing.counters().messages == 0 {
            return 0.0;
        }
        let decision = self.pairing.on_edge(received.0, label_unix_s);
        let mode = match decision {
            QerrDecision::Apply { .. } => Mode::Applying,
            QerrDecision::Skip(reason) => Mode::Skipping(reason),
        };
        if self.mode != Some(mode) {
            match mode {
                Mode::Applying => info!("qErr correction: applying TIM-TP to PPS edges"),
                Mode::Skipping(reason) => {
                    info!(reason = ?reason, label_unix_s, "qErr correction: edge left uncorrected")
                }
            }
            self.mode = Some(mode);
        }
        let correction = decision.correction_ns();
        if matches!(decision, QerrDecision::Apply { .. }) {
            self.last_correction_ns = Some(correction);
        }
        correction
    }

    /// For the status snapshot: None until the receiver has sent TIM-TP or survey-in.
    pub(crate) fn status(&self) -> Option<QerrStatus> {
        let c: QerrCounters = self.pairing.counters();
        if c.messages == 0 && self.survey.is_none() {
            return None;
        }
        Some(QerrStatus {
            enabled: self.enabled,
            messages: c.messages,
            applied: c.applied,
            skipped_no_message: c.no_message,
            skipped_invalid: c.invalid,
            skipped_uncertain: c.uncertain,
            last_correction_ns: self.last_correction_ns,
            survey_in: self.survey.map(SurveyInStatus::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skytime_core::receiver::{TimeBase, TimePulseReport};
    use skytime_timebase::{Arrival, UnixNanos};

    const GPS_EPOCH_UNIX_S: i64 = 315_964_800;
    const LABEL: i64 = 1_772_323_200; // 2026-03-01T00:00:00Z

    #[track_caller]
    fn assert_ns(got_ns: f64, want_ns: f64) {
        assert!(
            (got_ns - want_ns).abs() < 1e-9,
            "{got_ns} ns, want {want_ns} ns"
        );
    }

    fn tim_tp(label_unix_s: i64, q_err_ps: i32, arrival_ns: i64) -> ReceiverReport {
        let since = label_unix_s - GPS_EPOCH_UNIX_S;
        ReceiverReport::TimePulse {
            report: TimePulseReport {
                tow_ms: u32::try_from(since.rem_euclid(604_800) * 1000).expect("tow"),
                tow_sub_ms: 0,
                q_err_ps,
                week: u16::try_from(since.div_euclid(604_800)).expect("week"),
                time_base: TimeBase::Utc,
                utc_available: true,
                raim: 0,
                q_err_valid: true,
                time_ref_gnss: 0,
                utc_standard: 0,
            },
            arrival: Arrival {
                monotonic: MonoNanos(arrival_ns),
                realtime: UnixNanos(arrival_ns),
            },
        }
    }

    #[test]
    fn a_paired_message_corrects_its_edge_and_is_counted() {
        let mut q = QerrCorrection::new(true);
        q.on_report(&tim_tp(LABEL, -7_250, 500_000_000));
        assert_ns(q.correction_ns(MonoNanos(1_000_000_000), LABEL), -7.25);
        // The next edge has no message of its own.
        assert_ns(q.correction_ns(MonoNanos(2_000_000_000), LABEL + 1), 0.0);
        let st = q.status().expect("status after TIM-TP");
        assert_eq!((st.messages, st.applied, st.skipped_no_message), (1, 1, 1));
        assert_eq!(st.last_correction_ns, Some(-7.25));
    }

    #[test]
    fn switched_off_it_corrects_nothing_but_still_counts_messages() {
        let mut q = QerrCorrection::new(false);
        q.on_report(&tim_tp(LABEL, 9_000, 500_000_000));
        assert_ns(q.correction_ns(MonoNanos(1_000_000_000), LABEL), 0.0);
        let st = q.status().expect("status");
        assert!(!st.enabled);
        assert_eq!((st.messages, st.applied), (1, 0));
    }

    #[test]
    fn without_any_timing_report_there_is_no_status_and_no_correction() {
        let mut q = QerrCorrection::new(true);
        assert_ns(q.correction_ns(MonoNanos(1_000_000_000), LABEL), 0.0);
        assert!(q.status().is_none());
    }

    #[test]
    fn survey_in_progress_is_kept_in_metres() {
        let mut q = QerrCorrection::new(true);
        q.on_report(&ReceiverReport::SurveyIn(SurveyIn {
            duration_s: 120,
            observations: 118,
            accuracy_mm: 2_500,
            valid: false,
            active: true,
        }));
        let s = q.status().and_then(|s| s.survey_in).expect("survey");
        assert_eq!((s.duration_s, s.accuracy_m, s.active), (120, 2.5, true));
    }
}
