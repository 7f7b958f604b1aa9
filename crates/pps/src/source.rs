//! The contract every pulse source fulfils.

use serde::{Deserialize, Serialize};
use skytime_timebase::{MonoNanos, UnixNanos};
use std::time::Duration;

/// Which transition of the PPS line marks the second. Receivers differ (most
/// hats assert on the rising edge); getting it wrong costs the pulse width.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PpsEdgeKind {
    /// The kernel's "assert" capture (usually the rising edge).
    #[default]
    Assert,
    /// The kernel's "clear" capture (usually the falling edge).
    Clear,
}

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

/// Errors from a pulse source. Each names what the operator can do about it.
#[derive(Debug, thiserror::Error)]
pub enum PpsError {
    /// The device node does not exist.
    #[error("PPS device {path} not found: {hint}")]
    NotFound {
        /// Device path.
        path: String,
        /// What to check (overlay, module, udev rule).
        hint: String,
    },
    /// Opening or using the device was refused.
    #[error("permission denied on PPS device {path}: {hint}")]
    PermissionDenied {
        /// Device path.
        path: String,
        /// Which group or udev rule grants access.
        hint: String,
    },
    /// The device cannot do what skytime needs (e.g. no CANWAIT, no such edge).
    #[error("PPS device {path} lacks a required capability: {what}")]
    Unsupported {
        /// Device path.
        path: String,
        /// The missing capability.
        what: String,
    },
    /// The source went away (device removed, simulator stopped).
    #[error("PPS source {path} disconnected: {reason}")]
    Disconnected {
        /// Device path or simulator name.
        path: String,
        /// Underlying reason.
        reason: String,
    },
    /// Any other I/O failure.
    #[error("PPS device {path}: {source}")]
    Io {
        /// Device path.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// A source of PPS edges, read on a dedicated thread.
pub trait PpsSource: Send {
    /// Waits up to `timeout` for the next edge; `Ok(None)` on timeout.
    fn fetch(&mut self, timeout: Duration) -> Result<Option<PpsEdge>, PpsError>;
    /// Human-readable name for logs and status, e.g. `/dev/pps0 (assert)`.
    fn describe(&self) -> String;
}

/// A boxed source is a source, so the daemon can choose kernel or PHC at run time.
impl<T: PpsSource + ?Sized> PpsSource for Box<T> {
    fn fetch(&mut self, timeout: Duration) -> Result<Option<PpsEdge>, PpsError> {
        (**self).fetch(timeout)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}
