//! One captured pulse, as every pulse source delivers it.

use serde::{Deserialize, Serialize};
use skytime_timebase::{MonoNanos, UnixNanos};

/// One captured pulse.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PpsEdge {
    /// The kernel's capture sequence number for this edge kind; a jump of more
    /// than one means pulses were missed.
    pub sequence: u32,
    /// When the edge happened, read from the disciplined realtime clock at
    /// interrupt time. This is the measurement everything rests on.
    pub timestamp: UnixNanos,
    /// When user space received it (monotonic), for ageing and liveness.
    pub received: MonoNanos,
    /// Worst-case error of `timestamp` added on the way to system time, ns:
    /// 0 for the kernel source (stamped on CLOCK_REALTIME directly), the
    /// PHC-to-system mapping's bound for a PHC source. The refclock adds it to
    /// the error bound it advertises.
    #[serde(default)]
    pub uncertainty_ns: u32,
}
