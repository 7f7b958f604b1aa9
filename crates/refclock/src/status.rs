//! The status snapshot: everything the rest of the box learns about the clock.

use serde::Serialize;
use skytime_timebase::{LeapChange, MonoNanos, UnixNanos};

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

/// The 4-character reference identifier a stratum-1 server advertises.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReferenceId(pub [u8; 4]);

impl ReferenceId {
    /// "GPS": the receiver's time, refined by PPS.
    pub const GPS: ReferenceId = ReferenceId(*b"GPS\0");
    /// "PPS": the pulse, labelled by the receiver.
    pub const PPS: ReferenceId = ReferenceId(*b"PPS\0");
    /// "LOCL": serving from the local-stratum fallback.
    pub const LOCAL: ReferenceId = ReferenceId(*b"LOCL");
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
    /// Stratum to serve: 1 when synchronised, the local fallback's, or 16.
    pub stratum: u8,
    /// Reference id to serve.
    pub reference_id: ReferenceId,
    /// Leap second pending at the end of this UTC day (for LI).
    pub leap: LeapChange,
    /// Last time the clock was updated from the reference.
    pub reference_time: Option<UnixNanos>,
    /// Root dispersion (error bound) at `as_of`, in nanoseconds.
    pub root_dispersion_ns: f64,
    /// How fast the error bound grows after `as_of`, in ns per second.
    pub dispersion_rate_ns_per_s: f64,
    /// Last filtered offset (clock minus reference), in nanoseconds.
    pub offset_ns: f64,
    /// Frequency correction applied, in ppm.
    pub frequency_ppm: f64,
}

impl Status {
    /// Whether the time is served as synchronised (LI != 3, stratum < 16).
    pub fn serves_synchronised(&self) -> bool {
        self.stratum < 16
    }
}
