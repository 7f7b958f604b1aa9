//! Pulse-per-second capture.
//!
//! The discipline sees PPS only through [`PpsSource`], so the kernel driver
//! (`/dev/ppsN`, RFC 2783) and the simulator's pulse generator are
//! interchangeable, and everything above this crate is tested without hardware.

mod source;

pub use source::{PpsEdge, PpsEdgeKind, PpsError, PpsSource};
