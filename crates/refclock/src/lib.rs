//! The reference clock: pairs each PPS edge with the UTC second the receiver
//! labels, filters, steers a [`Clock`], and publishes a [`Status`] snapshot that
//! the NTP server, the control socket, metrics and the status page all read.
//!
//! Sans-IO: the core takes edges, epochs and ticks with explicit timestamps and
//! acts only through the [`Clock`] trait, so a simulated oscillator and the
//! kernel (`clock_adjtime`) run the same code.

mod config;
mod discipline;
pub mod drift;
pub mod filter;
pub mod leapfile;
pub mod pairing;
mod phase_history;
mod pulse_jitter;
pub mod qerr;
mod qerr_correction;
mod status;
pub mod thermal;
mod wander;

pub use config::{RefclockConfig, ReferenceIdChoice};
pub use discipline::Refclock;
pub use drift::{DriftError, DriftRecord};
pub use qerr_correction::{QerrStatus, SurveyInStatus};
/// The clock seam lives in `skytime-core`; re-exported so callers keep their paths.
pub use skytime_core::{Clock, ClockError, SyncReport};
pub use status::{
    HoldoverStatus, LabelDisagreement, LeapSource, LeapSourceDisagreement, NmeaStatus, NoiseStatus,
    PpsStatus, ReferenceId, RejectReason, RejectionEvent, Rejections, Status, SyncState,
};
pub use thermal::{SensorHealth, SensorReading, ThermalStatus};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testsim;
