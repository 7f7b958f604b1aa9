//! The contract every pulse source fulfils.

use serde::{Deserialize, Serialize};
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

/// One captured pulse (defined in `skytime-core`, so the refclock can take
/// it without linking this crate).
pub use skytime_core::PpsEdge;

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
