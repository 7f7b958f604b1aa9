//! What is raised now, and what one evaluation changed.

use super::AlertKind;
use serde::Serialize;
use skytime_timebase::{MonoNanos, NANOS_PER_SEC};

/// One alert that is active now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActiveAlert {
    /// Which.
    pub kind: AlertKind,
    /// When it was raised (monotonic).
    pub since: MonoNanos,
    /// What is wrong, with the numbers, as of the last evaluation.
    pub message: String,
}

/// The set of active alerts, in [`AlertKind::ALL`] order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ActiveAlerts {
    /// The alerts.
    pub alerts: Vec<ActiveAlert>,
}

impl ActiveAlerts {
    /// Whether `kind` is active.
    pub fn is_active(&self, kind: AlertKind) -> bool {
        self.get(kind).is_some()
    }

    /// The active alert of this kind, if any.
    pub fn get(&self, kind: AlertKind) -> Option<&ActiveAlert> {
        self.alerts.iter().find(|a| a.kind == kind)
    }
}

/// An alert raised or cleared by one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// Entered.
    Raised {
        /// Which.
        kind: AlertKind,
        /// Why.
        message: String,
    },
    /// Left.
    Cleared {
        /// Which.
        kind: AlertKind,
        /// How long it was active, ns.
        active_for_ns: i64,
        /// What it said last.
        last_message: String,
    },
}

impl Transition {
    /// The alert concerned.
    pub fn kind(&self) -> AlertKind {
        match self {
            Transition::Raised { kind, .. } | Transition::Cleared { kind, .. } => *kind,
        }
    }

    /// Logs the transition once: raised at warn, cleared at info.
    pub fn log(&self) {
        match self {
            Transition::Raised { kind, message } => {
                tracing::warn!(
                    alert = kind.name(),
                    severity = kind.severity().as_str(),
                    "alert raised: {message}"
                );
            }
            Transition::Cleared {
                kind,
                active_for_ns,
                ..
            } => {
                tracing::info!(
                    alert = kind.name(),
                    active_for_s = format!("{:.1}", *active_for_ns as f64 / NANOS_PER_SEC as f64),
                    "alert cleared"
                );
            }
        }
    }
}
