//! The status snapshot: everything the rest of the box learns about the clock.

use serde::{Serialize, Serializer};
use skytime_core::{FixMode, SatelliteInfo};
use skytime_timebase::{Arrival, LeapChange, MonoNanos, UnixNanos, UtcSecond};
use std::time::Duration;

/// A signed span of time in nanoseconds, with fractions: what an estimate
/// (a learned delay, an offset) is, where the sign and the sub-nanosecond part
/// matter and [`Duration`] carries neither.
#[derive(Copy, Clone, Debug, Default, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Nanos(pub f64);

impl Nanos {
    /// From milliseconds.
    pub fn from_ms(ms: f64) -> Self {
        Nanos(ms * 1e6)
    }

    /// In nanoseconds.
    pub fn ns(self) -> f64 {
        self.0
    }

    /// In milliseconds, as operators read receiver delays.
    pub fn ms(self) -> f64 {
        self.0 / 1e6
    }

    /// From seconds.
    pub fn from_secs(s: f64) -> Self {
        Nanos(s * 1e9)
    }

    /// In seconds.
    pub fn secs(self) -> f64 {
        self.0 / 1e9
    }
}

/// The time from `earlier` to `later` on the monotonic clock (zero if
/// `later` is not after it).
pub(crate) fn elapsed(earlier: MonoNanos, later: MonoNanos) -> Duration {
    Duration::from_nanos(u64::try_from(later.nanos_since(earlier)).unwrap_or(0))
}

/// Writes a [`Duration`] as fractional seconds: the JSON keeps the `_s`
/// fields it always had.
fn as_secs_f64<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Writes a [`Duration`] as whole seconds (for spans configured in seconds).
fn as_whole_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

/// Writes a span as seconds: the JSON keeps its `_s` fields.
pub(crate) fn opt_as_secs<S: Serializer>(d: &Option<Nanos>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.secs()),
        None => s.serialize_none(),
    }
}

/// Writes a delay as milliseconds: the JSON keeps its `_ms` fields.
fn opt_as_ms<S: Serializer>(d: &Option<Nanos>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.ms()),
        None => s.serialize_none(),
    }
}

/// Where the discipline stands. Only `Locked`, and `Holdover` while its error
/// bound is under the configured limit, serve time as synchronised.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// No trustworthy reference yet, or re-acquiring after a fault.
    #[default]
    Acquiring,
    /// PPS and labels agree and the filter has converged.
    Locked,
    /// The reference is gone; coasting on the learned frequency, with an
    /// error bound that grows at the rate learned from this oscillator.
    Holdover,
    /// The error bound passed the holdover limit, or there never was lock.
    Unsynchronised,
}

impl SyncState {
    /// Lower-case name, as logs, metrics and `skytimectl` print it.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Acquiring => "acquiring",
            SyncState::Locked => "locked",
            SyncState::Holdover => "holdover",
            SyncState::Unsynchronised => "unsynchronised",
        }
    }
}

/// The 4-character reference identifier a stratum-1 server advertises.
/// Serialised as its text ("GPS"), as operators read it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ReferenceId(pub [u8; 4]);

impl Serialize for ReferenceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_text())
    }
}

impl ReferenceId {
    /// "GPS": the receiver's time, refined by PPS.
    pub const GPS: ReferenceId = ReferenceId(*b"GPS\0");
    /// "PPS": the pulse, labelled by the receiver.
    pub const PPS: ReferenceId = ReferenceId(*b"PPS\0");
    /// "LOCL": serving from the local-stratum fallback.
    pub const LOCAL: ReferenceId = ReferenceId(*b"LOCL");

    /// The id as text, without trailing NULs (e.g. "GPS").
    pub fn as_text(&self) -> String {
        self.0
            .iter()
            .take_while(|b| **b != 0)
            .map(|&b| b as char)
            .collect()
    }
}

/// Where a pending leap second was learned.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeapSource {
    /// The receiver's announcement (NMEA).
    Receiver,
    /// tzdata's leap-seconds.list.
    LeapFile,
}

/// The receiver's leap announcement and leap-seconds.list disagreeing about
/// the coming midnight: one of them is wrong, and the operator should know
/// which one the box follows before the midnight decides.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeapSourceDisagreement {
    /// What the receiver announces (never `None`: a receiver that says
    /// nothing may simply not be able to announce).
    pub receiver: LeapChange,
    /// What the (unexpired) leap-seconds file says about the same midnight
    /// (`None`: no leap second there).
    pub leap_file: LeapChange,
    /// The midnight in question (the end of this UTC month).
    pub at: UnixNanos,
    /// The source the box follows.
    pub following: LeapSource,
}

/// Why an edge or an epoch was not used. Each has a counter in
/// [`Rejections`] and an explanation from [`RejectReason::explain`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// A pulse whose interval from the previous pulses is far from whole seconds.
    SpuriousEdge,
    /// A pulse far outside what the filter predicts (beyond the outlier gate).
    OutlierEdge,
    /// A pulse before the receiver's labels have fixed which second it is.
    UnlabelledEdge,
    /// A pulse while the receiver reports no valid fix, or has said nothing recently.
    EdgeWithoutFix,
    /// A pulse around a leap second, kept out of the filter.
    LeapWindowEdge,
    /// Receiver output that says the fix is invalid.
    InvalidFix,
    /// Receiver output that could not be matched with a pulse.
    UnpairedEpoch,
    /// Receiver output labelling a pulse with another second than the clock
    /// does (briefly: the label is ignored).
    MislabelledSecond,
    /// A whole-second disagreement that persisted and was accepted: the
    /// clock was re-acquired on the receiver's second.
    WholeSecondDisagreement,
}

impl RejectReason {
    /// One line for the operator: what happened and what it means.
    pub fn explain(self) -> &'static str {
        match self {
            RejectReason::SpuriousEdge => {
                "PPS edge not a whole number of seconds after the previous ones (noise on the PPS line?)"
            }
            RejectReason::OutlierEdge => {
                "PPS edge far from the filter's prediction (interrupt delay or glitch)"
            }
            RejectReason::UnlabelledEdge => {
                "PPS edge before the receiver's labels fixed which second it marks"
            }
            RejectReason::EdgeWithoutFix => {
                "PPS edge while the receiver has no valid fix (or sent nothing recently)"
            }
            RejectReason::LeapWindowEdge => {
                "PPS edge next to a leap second, kept out of the filter"
            }
            RejectReason::InvalidFix => "receiver output says the fix is invalid",
            RejectReason::UnpairedEpoch => {
                "receiver output with no PPS edge to label (missed pulse, or odd timing)"
            }
            RejectReason::MislabelledSecond => {
                "receiver labelled a pulse with another second than the clock keeps; label ignored"
            }
            RejectReason::WholeSecondDisagreement => {
                "receiver disagreed by whole seconds for too long; clock re-acquired on its second"
            }
        }
    }
}

/// Counters of everything not used, one per [`RejectReason`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rejections {
    /// See [`RejectReason::SpuriousEdge`].
    pub spurious_edges: u64,
    /// See [`RejectReason::OutlierEdge`].
    pub outlier_edges: u64,
    /// See [`RejectReason::UnlabelledEdge`].
    pub unlabelled_edges: u64,
    /// See [`RejectReason::EdgeWithoutFix`].
    pub edges_without_fix: u64,
    /// See [`RejectReason::LeapWindowEdge`].
    pub leap_window_edges: u64,
    /// See [`RejectReason::InvalidFix`].
    pub invalid_fix_epochs: u64,
    /// See [`RejectReason::UnpairedEpoch`].
    pub unpaired_epochs: u64,
    /// See [`RejectReason::MislabelledSecond`].
    pub mislabelled_seconds: u64,
    /// See [`RejectReason::WholeSecondDisagreement`].
    pub whole_second_disagreements: u64,
}

impl Rejections {
    /// Adds one to the counter of `reason`.
    pub fn count(&mut self, reason: RejectReason) {
        let c = match reason {
            RejectReason::SpuriousEdge => &mut self.spurious_edges,
            RejectReason::OutlierEdge => &mut self.outlier_edges,
            RejectReason::UnlabelledEdge => &mut self.unlabelled_edges,
            RejectReason::EdgeWithoutFix => &mut self.edges_without_fix,
            RejectReason::LeapWindowEdge => &mut self.leap_window_edges,
            RejectReason::InvalidFix => &mut self.invalid_fix_epochs,
            RejectReason::UnpairedEpoch => &mut self.unpaired_epochs,
            RejectReason::MislabelledSecond => &mut self.mislabelled_seconds,
            RejectReason::WholeSecondDisagreement => &mut self.whole_second_disagreements,
        };
        *c += 1;
    }

    /// Every counter with its reason, for tables and metrics labels.
    pub fn iter(&self) -> [(RejectReason, u64); 9] {
        [
            (RejectReason::SpuriousEdge, self.spurious_edges),
            (RejectReason::OutlierEdge, self.outlier_edges),
            (RejectReason::UnlabelledEdge, self.unlabelled_edges),
            (RejectReason::EdgeWithoutFix, self.edges_without_fix),
            (RejectReason::LeapWindowEdge, self.leap_window_edges),
            (RejectReason::InvalidFix, self.invalid_fix_epochs),
            (RejectReason::UnpairedEpoch, self.unpaired_epochs),
            (RejectReason::MislabelledSecond, self.mislabelled_seconds),
            (
                RejectReason::WholeSecondDisagreement,
                self.whole_second_disagreements,
            ),
        ]
    }
}

/// The most recent rejection, so the operator sees *why*, not just how many.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RejectionEvent {
    /// What kind.
    pub reason: RejectReason,
    /// When (monotonic).
    pub at: MonoNanos,
    /// Specifics (sizes, labels).
    pub detail: String,
}

/// The PPS source as the discipline sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PpsStatus {
    /// Timestamp of the last edge seen (any edge), on the disciplined clock.
    pub last_edge: Option<UnixNanos>,
    /// When the last edge was received (monotonic), for "seen N s ago".
    pub last_edge_received: Option<MonoNanos>,
    /// chrony-style reach: one bit per second, 1 if a pulse was used (0o377: all used).
    pub reach: u8,
    /// Every edge handed to the discipline.
    pub edges_seen: u64,
    /// Edges that updated the filter.
    pub edges_used: u64,
    /// Seconds without an edge between edges that were seen (missed pulses).
    pub pulses_missed: u64,
    /// The last edge's own timestamp uncertainty (a PHC source's mapping
    /// bound; 0 for kernel PPS), ns, folded into the advertised error bound.
    pub last_edge_uncertainty_ns: u32,
}

/// The receiver as the discipline sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NmeaStatus {
    /// Label of the last epoch.
    pub last_label: Option<UtcSecond>,
    /// When the last epoch's burst ended.
    pub last_epoch_at: Option<Arrival>,
    /// chrony-style reach: one bit per second, 1 if a valid epoch arrived.
    pub reach: u8,
    /// Whether the last epoch had a valid fix.
    pub fix_valid: bool,
    /// Fix dimension of the last epoch.
    pub fix_mode: FixMode,
    /// Satellites used in the last fix.
    pub sats_used: Option<u8>,
    /// Satellites in view at the last epoch.
    pub sats_visible: Option<u8>,
    /// The sky at the last epoch.
    pub satellites: Vec<SatelliteInfo>,
    /// Epochs handed to the discipline.
    pub epochs_seen: u64,
    /// Epochs matched with the pulse they label.
    pub epochs_paired: u64,
    /// The learned delay from a pulse to the end of the burst labelling it
    /// (may be slightly negative: a receiver that labels ahead of the pulse).
    #[serde(rename = "delay_learned_ms", serialize_with = "opt_as_ms")]
    pub delay_learned: Option<Nanos>,
    /// Median of recent measured delays.
    #[serde(rename = "delay_median_ms", serialize_with = "opt_as_ms")]
    pub delay_median: Option<Nanos>,
    /// 95th percentile of recent measured delays.
    #[serde(rename = "delay_p95_ms", serialize_with = "opt_as_ms")]
    pub delay_p95: Option<Nanos>,
}

/// The receiver and the clock disagreeing by whole seconds right now.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct LabelDisagreement {
    /// Receiver's second minus the clock's, for the pulses in dispute.
    pub offset_s: i64,
    /// How long it has lasted.
    #[serde(rename = "duration_s", serialize_with = "as_secs_f64")]
    pub duration: Duration,
    /// How long it may last before the receiver is believed.
    #[serde(rename = "confirm_after_s", serialize_with = "as_whole_secs")]
    pub confirm_after: Duration,
    /// How long it may last while the box keeps serving as synchronised.
    #[serde(rename = "grace_s", serialize_with = "as_whole_secs")]
    pub grace: Duration,
    /// Whether it has outlasted the grace: the box serves LI=3 / stratum 16
    /// until the labels agree again or the receiver is believed.
    pub serving_suspended: bool,
    /// Set when it began at the end of a month by exactly one second: a leap
    /// second nobody announced, followed after a few consistent seconds.
    pub unannounced_leap: Option<LeapChange>,
}

/// Holdover in progress.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct HoldoverStatus {
    /// Time since the last usable pulse.
    #[serde(rename = "elapsed_s", serialize_with = "as_secs_f64")]
    pub elapsed: Duration,
    /// The current error bound (equals the root dispersion), ns.
    pub bound_ns: f64,
    /// The configured limit on that bound, ns.
    pub limit_ns: f64,
}

/// What the filter has learned about this reference and this oscillator.
#[derive(Copy, Clone, Debug, Default, PartialEq, Serialize)]
pub struct NoiseStatus {
    /// Standard deviation of the pulse timestamps (white phase noise), ns.
    pub measurement_ns: f64,
    /// White frequency noise, ns per √s.
    pub white_fm_ns_per_sqrt_s: f64,
    /// Frequency random walk, ppb per √s.
    pub random_walk_ppb_per_sqrt_s: f64,
}

/// A consistent snapshot of the discipline, published once per update.
///
/// The NTP server derives every field it sends from this, so "never serve as
/// synchronised when not" is decided in one place: [`Status::serves_synchronised`].
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// When this snapshot was taken, on the disciplined clock.
    pub as_of: UnixNanos,
    /// When this snapshot was taken, on the monotonic clock.
    pub as_of_mono: MonoNanos,
    /// State machine position.
    pub state: SyncState,
    /// Why the state machine is where it is, in words.
    pub state_reason: String,
    /// Since when (monotonic).
    pub state_since: MonoNanos,
    /// Stratum to serve: 1 when synchronised, the local fallback's, or 16.
    pub stratum: u8,
    /// Reference id to serve.
    pub reference_id: ReferenceId,
    /// Leap second pending at the end of this UTC month (for LI).
    pub leap: LeapChange,
    /// When the pending leap completes (the UTC midnight after it).
    pub leap_at: Option<UnixNanos>,
    /// Who announced the pending leap.
    pub leap_source: Option<LeapSource>,
    /// Whether the clock's insert/delete flag is armed for tonight.
    pub leap_armed: LeapChange,
    /// Set while the receiver and leap-seconds.list disagree about the
    /// coming midnight.
    pub leap_sources_disagree: Option<LeapSourceDisagreement>,
    /// When the leap-seconds file read at start expires (None: no file).
    /// An expired file is ignored, which the operator needs to see.
    pub leap_file_expires: Option<UnixNanos>,
    /// Last time the clock was updated from the reference.
    pub reference_time: Option<UnixNanos>,
    /// Root dispersion (error bound) at `as_of`, in nanoseconds.
    pub root_dispersion_ns: f64,
    /// How fast the error bound grows after `as_of`, in ns per second.
    pub dispersion_rate_ns_per_s: f64,
    /// Last filtered offset (clock minus reference), in nanoseconds.
    pub offset_ns: f64,
    /// One-sigma uncertainty of the offset estimate, ns.
    pub offset_sigma_ns: f64,
    /// Long-term RMS of the filtered offset, ns (chrony's "RMS offset").
    pub rms_offset_ns: f64,
    /// Frequency correction applied, in ppm.
    pub frequency_ppm: f64,
    /// Estimated remaining frequency error of the disciplined clock, ppm.
    pub residual_frequency_ppm: f64,
    /// One-sigma uncertainty of the frequency estimate, ppm.
    pub skew_ppm: f64,
    /// Measurement jitter of the pulses (learned), ns.
    pub jitter_ns: f64,
    /// The learned noise model.
    pub noise: NoiseStatus,
    /// Set while in holdover.
    pub holdover: Option<HoldoverStatus>,
    /// The configured holdover limit on the root dispersion, ns.
    pub holdover_limit_ns: f64,
    /// The pulse source.
    pub pps: PpsStatus,
    /// The receiver.
    pub nmea: NmeaStatus,
    /// Everything not used, by reason.
    pub rejections: Rejections,
    /// The latest rejection, with details.
    pub last_rejection: Option<RejectionEvent>,
    /// A whole-second disagreement in progress.
    pub label_disagreement: Option<LabelDisagreement>,
    /// Clock steps made (start-up and re-acquisitions).
    pub steps: u32,
    /// The temperature sensor and the learned coefficient (None: no sensor
    /// configured and none ever read).
    pub thermal: Option<crate::thermal::ThermalStatus>,
    /// The qErr correction and survey-in (None: the receiver sends neither).
    pub qerr: Option<crate::qerr_correction::QerrStatus>,
}

impl Status {
    /// Whether the time is served as synchronised (LI != 3, stratum < 16).
    pub fn serves_synchronised(&self) -> bool {
        self.stratum < 16
    }

    /// The leap-seconds file's expiry, once it has passed at this snapshot
    /// (the same rule as `LeapTable::is_expired`): one judgement for the
    /// status report and the alert.
    pub fn leap_file_expired_at(&self) -> Option<UnixNanos> {
        self.leap_file_expires.filter(|e| self.as_of.0 >= e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed fields keep the JSON names and units they had as bare
    /// numbers: seconds in `_s`, milliseconds in `_ms`.
    #[test]
    fn typed_spans_serialise_under_their_old_names_and_units() {
        let holdover = HoldoverStatus {
            elapsed: Duration::from_millis(12_500),
            bound_ns: 40_000.0,
            limit_ns: 1e6,
        };
        let json = serde_json::to_value(holdover).unwrap_or_default();
        assert_eq!(json["elapsed_s"], 12.5, "{json}");

        let dispute = LabelDisagreement {
            offset_s: -1,
            duration: Duration::from_millis(2_250),
            confirm_after: Duration::from_secs(10),
            grace: Duration::from_secs(2),
            serving_suspended: true,
            unannounced_leap: None,
        };
        let json = serde_json::to_value(dispute).unwrap_or_default();
        assert_eq!(json["duration_s"], 2.25, "{json}");
        assert_eq!(json["confirm_after_s"], 10, "{json}");
        assert_eq!(json["grace_s"], 2, "{json}");

        let nmea = NmeaStatus {
            delay_learned: Some(Nanos(-1.5e6)),
            delay_median: Some(Nanos::from_ms(480.0)),
            delay_p95: None,
            ..NmeaStatus::default()
        };
        let json = serde_json::to_value(&nmea).unwrap_or_default();
        assert_eq!(json["delay_learned_ms"], -1.5, "{json}");
        assert_eq!(json["delay_median_ms"], 480.0, "{json}");
        assert!(json["delay_p95_ms"].is_null(), "{json}");
        assert!(json.get("delay_learned").is_none(), "{json}");

        let thermal = crate::thermal::ThermalStatus {
            sensor: crate::thermal::SensorHealth::Absent,
            reading_c: None,
            coefficient_ppm_per_k: 0.0,
            coefficient_sigma_ppm_per_k: 0.0,
            quadratic_ppm_per_k2: None,
            quadratic_sigma_ppm_per_k2: None,
            learned_range_c: None,
            lag: Some(Nanos::from_secs(-30.5)),
            trusted: false,
            blocks: 0,
            faults: 0,
            compensation_ppm: None,
        };
        let json = serde_json::to_value(&thermal).unwrap_or_default();
        assert_eq!(json["lag_s"], -30.5, "{json}");
    }

    #[test]
    fn elapsed_is_zero_when_the_clock_did_not_advance() {
        let t = MonoNanos(5_000_000_000);
        assert_eq!(
            elapsed(t, MonoNanos(7_500_000_000)),
            Duration::from_millis(2_500)
        );
        assert_eq!(elapsed(t, MonoNanos(4_000_000_000)), Duration::ZERO);
    }
}
