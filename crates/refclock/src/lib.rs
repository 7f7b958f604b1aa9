//! The reference clock: pairs each PPS edge with the UTC second the receiver
//! labels, filters, steers a [`Clock`], and publishes a [`Status`] snapshot that
//! the NTP server, the control socket, metrics and the status page all read.
//!
//! Sans-IO: the core takes edges, epochs and ticks with explicit timestamps and
//! acts only through the [`Clock`] trait, so a simulated oscillator and the
//! kernel (`clock_adjtime`) run the same code.

mod clock;
mod status;

pub use clock::{Clock, ClockError, SyncReport};
pub use status::{ReferenceId, Status, SyncState};
