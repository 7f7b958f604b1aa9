//! Pulse-per-second capture.
//!
//! The discipline sees PPS only through [`PpsSource`], so the kernel driver
//! (`/dev/ppsN`, RFC 2783), a PTP hardware clock's timestamped input
//! (`/dev/ptpN`) and the simulator's pulse generator are interchangeable, and everything above this crate is tested without hardware.

mod config;
pub mod ioctl;
mod kernel;
mod open;
mod phc;
pub mod phc_edges;
pub mod phc_ioctl;
pub mod phc_map;
mod phc_status;
mod source;
mod thread;
mod tracker;

pub use config::{PpsConfig, PpsSourceKind};
pub use kernel::KernelPps;
pub use open::{open_configured, reopen_configured};
pub use phc::{OffsetMethod, PhcPps, probe_phc};
pub use phc_status::{PhcCounters, PhcSnapshot};
pub use source::{PpsEdge, PpsEdgeKind, PpsError, PpsSource};
pub use thread::{PpsEvent, PpsThread, PpsThreadOptions};
pub use tracker::{Capture, EdgeTracker, PpsCounters, PpsCountersSnapshot};
