//! One second of receiver output: paired with the pulse it labels, and its
//! label weighed against the clock's (the arbiter decides, this acts).

use super::label_arbiter::{Dispute, UNANNOUNCED_LEAP_EPOCHS};
use super::{NS_I, Refclock, ns_from_s, secs_between};
use crate::pairing::Pairing;
use crate::status::{RejectReason, SyncState};
use skytime_core::Clock;
use skytime_core::Epoch;
use skytime_timebase::{LeapChange, MonoNanos, UtcSecond};
use tracing::{info, warn};

impl<C: Clock> Refclock<C> {
    /// One second of receiver output.
    pub fn on_epoch(&mut self, epoch: &Epoch) {
        let mono = epoch.last_byte.monotonic;
        self.nmea.epochs_seen += 1;
        self.nmea.last_label = Some(epoch.utc);
        self.nmea.last_epoch_at = Some(epoch.last_byte);
        self.nmea.fix_valid = epoch.valid;
        self.nmea.fix_mode = epoch.fix_mode;
        self.nmea.sats_used = epoch.sats_used;
        self.nmea.sats_visible = epoch.sats_visible;
        self.nmea.satellites.clone_from(&epoch.satellites);
        self.labels.on_fix(epoch.valid, mono);
        self.shift_nmea_reach(epoch.valid);
        if !epoch.valid {
            return self.reject(RejectReason::InvalidFix, mono, || {
                format!("epoch {} without a valid fix", epoch.utc)
            });
        }
        self.leap.track_receiver(epoch.leap, epoch.utc.unix_secs());

        let arrival = self
            .steering
            .on_current_frame(epoch.last_byte.realtime.0, mono);
        let pairing = self.delay.pair(arrival, &self.train.stamps());
        self.nmea.delay_learned_ms = self.delay.learned_ns().map(|d| d / 1e6);
        if let Some((med, p95)) = self.delay.distribution_ns() {
            self.nmea.delay_median_ms = Some(med / 1e6);
            self.nmea.delay_p95_ms = Some(p95 / 1e6);
        }
        let edge = match pairing {
            Pairing::Learning => return,
            Pairing::Unpaired { nearest_ns } => {
                return self.reject(RejectReason::UnpairedEpoch, mono, || match nearest_ns {
                    Some(d) => format!(
                        "epoch {}: nearest pulse {:.0} ms from where expected",
                        epoch.utc,
                        d / 1e6
                    ),
                    None => format!("epoch {}: no pulse seen", epoch.utc),
                });
            }
            Pairing::Paired { edge, .. } => match self.train.get(edge) {
                Some(e) => e,
                None => return,
            },
        };
        self.nmea.epochs_paired += 1;
        let said = epoch.utc.unix_secs();
        let stamp_c = edge.stamp - self.cfg.pps_latency_ns;

        let Some(assigned) = edge.label else {
            // The labels establish the clock's whole seconds.
            if self.kf.is_none() {
                self.labels
                    .build_consensus((stamp_c - said * NS_I) as f64, edge.idx);
            }
            return;
        };
        if self.leap.window_containing(assigned).is_some() {
            return;
        }
        let diff = said - assigned;
        if diff == 0 {
            if let Some(d) = self.labels.agree() {
                self.labels_agree_again(d, mono);
            }
            return;
        }
        let leap = &self.leap;
        let dispute = self
            .labels
            .disagree(said, assigned, &epoch.utc, mono, |m| leap.expected_at(m));
        self.reject(RejectReason::MislabelledSecond, mono, || {
            format!(
                "receiver says {}, clock says {assigned} (+{diff} s)",
                epoch.utc
            )
        });
        if let Some((change, midnight)) = dispute.leap
            && dispute.epochs >= UNANNOUNCED_LEAP_EPOCHS
        {
            return self.follow_unannounced_leap(dispute, change, midnight, mono);
        }
        if mono.nanos_since(dispute.since) >= ns_from_s(self.cfg.label_confirm_s) {
            warn!(
                offset_s = diff,
                lasted_s = self.cfg.label_confirm_s,
                "receiver has disagreed by whole seconds for too long; re-acquiring on its second"
            );
            let lasted = self.cfg.label_confirm_s;
            self.reject(RejectReason::WholeSecondDisagreement, mono, || {
                format!("receiver {diff:+} s for {lasted} s; clock re-acquired")
            });
            self.labels.settle();
            self.reset_filter("receiver disagrees by whole seconds", mono);
            self.set_state(
                SyncState::Acquiring,
                format!("re-acquiring after a {diff:+} s label change"),
                mono,
            );
            self.labels.believe((stamp_c - said * NS_I) as f64);
            self.train.forget_labels();
            self.steering.allow_step(true);
            return;
        }
        self.check_label_dispute(mono);
    }

    /// Believes the receiver about a leap second nobody announced: the clock
    /// takes the step the kernel would have taken at midnight. UTC moved, not
    /// the clock's phase, so the filter keeps running.
    fn follow_unannounced_leap(
        &mut self,
        d: Dispute,
        change: LeapChange,
        midnight: i64,
        mono: MonoNanos,
    ) {
        let step = d.offset_s * NS_I;
        let mono = match self.steering.step_for_leap(&self.clock, step, mono) {
            Ok(at) => at,
            Err(e) => {
                warn!(error = %e, "could not step the clock for an unannounced leap second; waiting for the receiver to be confirmed");
                self.labels.drop_leap_claim();
                return self.check_label_dispute(mono);
            }
        };
        self.train.leap_stepped(d.offset_s);
        self.labels.settle();
        let when = UtcSecond::from_unix_secs(midnight)
            .map(|u| u.to_string())
            .unwrap_or_else(|| midnight.to_string());
        warn!(
            leap = ?change,
            midnight = %when,
            step_ns = step,
            after_epochs = d.epochs,
            "unannounced leap second: neither the receiver nor leap-seconds.list announced it; the clock now follows the receiver"
        );
        let reason = format!("followed an unannounced leap second ({change:?}) at {when}");
        match self.labels.resume() {
            Some(previous) => self.set_state(previous, reason, mono),
            None => self.state_reason = reason,
        }
    }

    /// The labels agree with the clock again: the disagreement was the
    /// receiver's, and serving resumes without a step.
    fn labels_agree_again(&mut self, d: Dispute, mono: MonoNanos) {
        let lasted = secs_between(d.since, mono);
        match self.labels.resume() {
            Some(previous) => {
                let to = if self.kf.is_some() {
                    previous
                } else {
                    SyncState::Acquiring
                };
                self.set_state(
                    to,
                    format!(
                        "receiver labels agree with the clock again after {lasted:.0} s at {:+} s; no step",
                        d.offset_s
                    ),
                    mono,
                );
            }
            None => info!(
                offset_s = d.offset_s,
                lasted_s = lasted,
                "receiver labels agree with the clock again"
            ),
        }
    }

    /// Whether a whole-second disagreement forbids serving at `mono`.
    pub(super) fn label_dispute_blocks(&self, mono: MonoNanos) -> bool {
        self.labels
            .blocks(mono, self.cfg.label_disagreement_grace_s)
    }

    /// Suspends serving once a disagreement outlasts the grace.
    pub(super) fn check_label_dispute(&mut self, mono: MonoNanos) {
        let Some(d) =
            self.labels
                .suspend_if_due(mono, self.cfg.label_disagreement_grace_s, self.state)
        else {
            return;
        };
        let reason = format!(
            "receiver labels disagree with the clock by {:+} s for over {} s: not serving until they agree again (no step) or the receiver is believed after {} s",
            d.offset_s, self.cfg.label_disagreement_grace_s, self.cfg.label_confirm_s
        );
        match self.state {
            SyncState::Locked | SyncState::Holdover => {
                self.set_state(SyncState::Unsynchronised, reason, mono)
            }
            // Not serving from the reference anyway; say why it is stuck.
            SyncState::Acquiring | SyncState::Unsynchronised => self.state_reason = reason,
        }
    }
}
