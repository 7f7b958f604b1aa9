//! Pulse-per-second capture.
//!
//! The discipline sees PPS only through [`PpsSource`], so the kernel driver
//! (`/dev/ppsN`, RFC 2783) and the simulator's pulse generator are
//! interchangeable, and everything above this crate is tested without hardware.

mod config;
pub mod ioctl;
mod kernel;
pub mod phc_edges;
pub mod phc_map;
mod source;
mod thread;
mod tracker;

pub use config::PpsConfig;
pub use kernel::KernelPps;
pub use source::{PpsEdge, PpsEdgeKind, PpsError, PpsSource};
pub use thread::{PpsEvent, PpsThread, PpsThreadOptions};
pub use tracker::{Capture, EdgeTracker, PpsCounters, PpsCountersSnapshot};
