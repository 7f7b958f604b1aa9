//! The box's built-in alerts: raised on entry, cleared on exit, each logged
//! once each way and exposed in `skytimectl status`, `/metrics`
//! (`skytime_alert_active{alert=...}`) and the status page.
//!
//! Every alert is decided in one place, [`evaluate`]: a pure function from the
//! refclock's [`Status`], a few counters and the previous alert set to the new
//! set and its transitions. The daemon runs it about once a second
//! ([`AlertTask`]); tests run it on hand-made snapshots.

mod active;
mod config;
mod evaluate;
mod kind;
mod task;
#[cfg(test)]
mod tests;

pub use active::{ActiveAlert, ActiveAlerts, Transition};
pub use config::AlertConfig;
pub use evaluate::{AlertInputs, Evaluation, OFFSET_CLEAR_FRACTION, evaluate};
pub use kind::{AlertKind, Severity};
pub use task::AlertTask;
