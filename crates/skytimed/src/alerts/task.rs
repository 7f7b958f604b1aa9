//! The daemon's side: evaluates about once a second and logs transitions.

use super::{AlertConfig, AlertInputs, Transition, evaluate};
use skytime_timebase::MonoNanos;

/// Runs [`evaluate`] against the daemon's latest snapshot, keeps the result
/// in [`crate::state::DaemonState::alerts`], and logs each transition once.
pub struct AlertTask {
    config: AlertConfig,
    started: MonoNanos,
}

impl AlertTask {
    /// A task with these thresholds; "never seen" counts from `started`.
    pub fn new(config: AlertConfig, started: MonoNanos) -> Self {
        Self { config, started }
    }

    /// One evaluation at `now`: stores the new set and logs what changed.
    pub fn step(&self, daemon: &crate::state::DaemonState, now: MonoNanos) -> Vec<Transition> {
        let status = daemon.status.load();
        let serial_connected = daemon
            .gnss
            .get()
            .map(|c| c.connected.load(std::sync::atomic::Ordering::Relaxed));
        let previous = daemon.alerts.load();
        let now_unix_s = crate::nts::certificate_now_s();
        let nts_certificate_days_left = daemon
            .nts
            .get()
            .map(|n| n.certificate().days_left(now_unix_s));
        let eval = evaluate(
            &AlertInputs {
                status: &status,
                now,
                started: self.started,
                serial_connected,
                nts_certificate_days_left,
            },
            &self.config,
            &previous,
        );
        for t in &eval.transitions {
            t.log();
        }
        daemon.alerts.store(std::sync::Arc::new(eval.active));
        eval.transitions
    }
}
