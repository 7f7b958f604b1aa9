//! The types the reference-clock data flow passes along, with no I/O.
//!
//! The GNSS reader produces [`Epoch`]s and [`ReceiverReport`]s, the PPS
//! capture produces [`PpsEdge`]s, and the discipline steers a [`Clock`]. The
//! I/O crates (`skytime-gnss`, `skytime-pps`, `skytime-kernel`) fill and
//! implement them; the refclock core consumes them. Keeping them here lets the
//! refclock link none of serialport, nmea, nix or libc to name three types.
//! [`SimClock`] is the one simulated [`Clock`] (kernel leap behaviour
//! included) that the simulator, the simulated hat and the unit tests share.

#![forbid(unsafe_code)]

mod clock;
mod pps;
pub mod receiver;
pub mod sim_clock;

pub use clock::{Clock, ClockError, SyncReport};
pub use pps::PpsEdge;
pub use receiver::{Epoch, FixMode, ReceiverInfo, ReceiverReport, SatelliteInfo};
pub use sim_clock::{FreeRunning, KernelLeapState, SimClock, SteadyOscillator};
