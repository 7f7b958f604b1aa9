//! The status snapshot: everything the rest of the box learns about the clock.

use serde::Serialize;
use skytime_core::{FixMode, SatelliteInfo};
use skytime_timebase::{Arrival, LeapChange, MonoNanos, UnixNanos, UtcSecond};

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
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
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
    /// The learned delay from a pulse to the end of the burst labelling it, ms.
    pub delay_learned_ms: Option<f64>,
    /// Median of recent measured delays, ms.
    pub delay_median_ms: Option<f64>,
    /// 95th percentile of recent measured delays, ms.
    pub delay_p95_ms: Option<f64>,
}

/// The receiver and the clock disagreeing by whole seconds right now.
#[derive(Copy, Clone, Debug, PartialEq, Serialize)]
pub struct LabelDisagreement {
    /// Receiver's second minus the clock's, for the pulses in dispute.
    pub offset_s: i64,
    /// How long it has lasted.
    pub duration_s: f64,
    /// How long it may last before the receiver is believed.
    pub confirm_after_s: u64,
    /// How long it may last while the box keeps serving as synchronised.
    pub grace_s: u64,
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
    /// Seconds since the last usable pulse.
    pub elapsed_s: f64,
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
}
