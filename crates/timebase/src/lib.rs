//! Time types shared by every skytime crate.
//!
//! Every instant carries the clock it was read from in its type, so a monotonic
//! arrival time can never be subtracted from a realtime PPS stamp by accident, and
//! every interval carries its unit in its name. The [`TimeSource`] trait is the one
//! seam between the pure cores and a clock: the kernel's on a Pi, a simulated
//! oscillator in tests and in `skytimed --simulate`.

mod instant;
mod source;
mod utc;

pub use instant::{MonoNanos, NANOS_PER_SEC, UnixNanos};
#[cfg(feature = "host")]
pub use source::HostClock;
pub use source::{Arrival, TimeSource};
pub use utc::{LeapChange, UtcSecond};
