//! The label arbiter: which UTC second the clock's pulses are, and what to
//! do when the receiver's labels disagree with the clock by whole seconds.
//!
//! Owns the consensus that first establishes the seconds, the dispute in
//! progress, the state to return to when serving was suspended for one, and
//! whether the receiver has a fix. Decides; the orchestrator acts.

use super::{ns_from_ms, ns_from_s};
use crate::leapfile::end_of_month_unix_s;
use crate::status::SyncState;
use skytime_timebase::{LeapChange, MonoNanos, UtcSecond};
use std::collections::VecDeque;
use tracing::warn;

const SECONDS_PER_DAY: i64 = 86_400;
/// Pairings that must agree before the whole seconds of the clock are known.
const CONSENSUS_PAIRINGS: usize = 3;
/// How far consecutive pairings' offsets may differ per pulse between them
/// and still agree, ns: the receiver's output jitters by milliseconds, the
/// whole seconds it establishes are 500 times that apart.
const CONSENSUS_TOLERANCE_PER_PULSE_NS: f64 = 2e6;
/// Consecutive epochs, all off by the same ±1 s from a month's end on, after
/// which an unannounced leap second is believed.
pub(super) const UNANNOUNCED_LEAP_EPOCHS: u32 = 3;
/// How late after the midnight the first disagreeing label may be (missed or
/// unpaired epochs) for the disagreement to count as a leap second.
const UNANNOUNCED_LEAP_SLACK_S: i64 = 2;

/// The receiver's labels and the clock disagreeing by whole seconds.
#[derive(Copy, Clone, Debug)]
pub(super) struct Dispute {
    /// Receiver's second minus the clock's.
    pub offset_s: i64,
    /// When the first disagreeing epoch arrived (monotonic).
    pub since: MonoNanos,
    /// Consecutive epochs with this offset.
    pub epochs: u32,
    /// Set when it began, from agreement, at a month's end midnight by
    /// exactly one second: the leap second (and its midnight) it looks like.
    pub leap: Option<(LeapChange, i64)>,
}

/// The seconds' consensus, the dispute and the receiver's fix.
#[derive(Debug, Default)]
pub(super) struct LabelArbiter {
    consensus_obs: VecDeque<(f64, i64)>,
    consensus_ns: Option<f64>,
    dispute: Option<Dispute>,
    /// Set while serving is suspended because the labels disagree beyond the
    /// grace: the state to return to when they agree again.
    hold: Option<SyncState>,
    last_epoch_valid: bool,
    last_valid_epoch: Option<MonoNanos>,
}

/// The midnight and kind of leap second that a disagreement starting now
/// (receiver `said`, clock `assigned`) would be, if it is exactly one
/// second, starts at the end of a month, and no leap was `expected` there.
/// An insert makes the receiver one second behind a clock that did not
/// repeat 23:59:59; a delete, one second ahead.
pub(super) fn unannounced_leap(
    said: i64,
    assigned: i64,
    expected: impl Fn(i64) -> bool,
) -> Option<(LeapChange, i64)> {
    let change = match said - assigned {
        -1 => LeapChange::Insert,
        1 => LeapChange::Delete,
        _ => return None,
    };
    let first_new_second = said.max(assigned);
    let midnight = (0..=UNANNOUNCED_LEAP_SLACK_S)
        .map(|back| first_new_second - back)
        .find(|&m| m.rem_euclid(SECONDS_PER_DAY) == 0 && end_of_month_unix_s(m - 1) == Some(m))?;
    (!expected(midnight)).then_some((change, midnight))
}

impl LabelArbiter {
    /// The whole seconds are not known yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// One epoch's fix, received at `mono`.
    pub fn on_fix(&mut self, valid: bool, mono: MonoNanos) {
        self.last_epoch_valid = valid;
        if valid {
            self.last_valid_epoch = Some(mono);
        }
    }

    /// Whether the receiver had a fix, recently enough, at `mono`.
    pub fn fix_ok(&self, mono: MonoNanos, timeout_ms: u64) -> bool {
        self.last_epoch_valid
            && self
                .last_valid_epoch
                .is_some_and(|t| mono.nanos_since(t) <= ns_from_ms(timeout_ms))
    }

    /// Why there is no fix (when [`LabelArbiter::fix_ok`] says so).
    pub fn no_fix_reason(&self, timeout_ms: u64) -> String {
        if self.last_valid_epoch.is_none() {
            "no valid receiver epoch yet".to_string()
        } else if !self.last_epoch_valid {
            "receiver reports no fix".to_string()
        } else {
            format!("no receiver output for over {timeout_ms} ms")
        }
    }

    /// The clock's offset from the labels (ns) once they agree, before any
    /// filter runs.
    pub fn consensus_ns(&self) -> Option<f64> {
        self.consensus_ns
    }

    /// One pairing of pulse `idx` with its label: `offset_ns` is the pulse's
    /// stamp minus the labelled second.
    pub fn build_consensus(&mut self, offset_ns: f64, idx: i64) {
        if let Some(&(prev, prev_idx)) = self.consensus_obs.back() {
            let tol = CONSENSUS_TOLERANCE_PER_PULSE_NS * (idx - prev_idx).abs().max(1) as f64;
            if (offset_ns - prev).abs() > tol {
                self.consensus_obs.clear();
            }
        }
        self.consensus_obs.push_back((offset_ns, idx));
        if self.consensus_obs.len() >= CONSENSUS_PAIRINGS {
            self.consensus_ns = Some(offset_ns);
            self.consensus_obs.clear();
        }
    }

    /// The receiver is believed: the clock is `offset_ns` from its labels.
    pub fn believe(&mut self, offset_ns: f64) {
        self.consensus_ns = Some(offset_ns);
    }

    /// The clock was stepped by `offset_ns`: the consensus moves with it.
    pub fn stepped(&mut self, offset_ns: i64) {
        if let Some(c) = self.consensus_ns.as_mut() {
            *c += offset_ns as f64;
        }
    }

    /// The filter starts again: the seconds must be established afresh.
    pub fn forget_consensus(&mut self) {
        self.consensus_ns = None;
        self.consensus_obs.clear();
    }

    /// The dispute in progress.
    pub fn dispute(&self) -> Option<Dispute> {
        self.dispute
    }

    /// Whether the labels are in dispute or serving is suspended for one:
    /// no lock is declared meanwhile.
    pub fn unsettled(&self) -> bool {
        self.dispute.is_some() || self.hold.is_some()
    }

    /// The labels agree with the clock: the dispute that ended, if any.
    pub fn agree(&mut self) -> Option<Dispute> {
        self.dispute.take()
    }

    /// The receiver said `said` (`label`) of a pulse the clock calls
    /// `assigned`, at `mono`: the dispute as it stands now. `leap_expected`
    /// says whether a leap was expected at a midnight.
    pub fn disagree(
        &mut self,
        said: i64,
        assigned: i64,
        label: &UtcSecond,
        mono: MonoNanos,
        leap_expected: impl Fn(i64) -> bool,
    ) -> Dispute {
        let diff = said - assigned;
        let dispute = match self.dispute {
            Some(d) if d.offset_s == diff => Dispute {
                epochs: d.epochs.saturating_add(1),
                ..d
            },
            previous => {
                let leap = if previous.is_none() {
                    unannounced_leap(said, assigned, leap_expected)
                } else {
                    None
                };
                match leap {
                    Some((change, _)) => warn!(
                        offset_s = diff,
                        label = %label,
                        leap = ?change,
                        "receiver labels changed by one second at the end of a month: an unannounced leap second?"
                    ),
                    None if previous.is_none() => warn!(
                        offset_s = diff,
                        label = %label,
                        "receiver labels a pulse with another second than the clock"
                    ),
                    None => {}
                }
                Dispute {
                    offset_s: diff,
                    since: mono,
                    epochs: 1,
                    leap,
                }
            }
        };
        self.dispute = Some(dispute);
        dispute
    }

    /// The dispute is over (the receiver was believed or followed).
    pub fn settle(&mut self) {
        self.dispute = None;
    }

    /// The unannounced leap the dispute looked like could not be followed.
    pub fn drop_leap_claim(&mut self) {
        if let Some(d) = self.dispute.as_mut() {
            d.leap = None;
        }
    }

    /// Whether a whole-second disagreement forbids serving at `mono`: it has
    /// outlasted the grace, or serving was already suspended for one.
    pub fn blocks(&self, mono: MonoNanos, grace_s: u64) -> bool {
        self.hold.is_some()
            || self
                .dispute
                .is_some_and(|d| mono.nanos_since(d.since) > ns_from_s(grace_s))
    }

    /// Suspends serving once a disagreement outlasts the grace, remembering
    /// `state` to return to: the dispute, when serving was suspended now.
    pub fn suspend_if_due(
        &mut self,
        mono: MonoNanos,
        grace_s: u64,
        state: SyncState,
    ) -> Option<Dispute> {
        let d = self.dispute?;
        if self.hold.is_some() || !self.blocks(mono, grace_s) {
            return None;
        }
        self.hold = Some(state);
        Some(d)
    }

    /// Ends a suspension: the state it interrupted, if serving was suspended.
    pub fn resume(&mut self) -> Option<SyncState> {
        self.hold.take()
    }

    /// Whether serving is suspended for a dispute.
    pub fn suspended(&self) -> bool {
        self.hold.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    /// 2026-04-01T00:00:00Z, the end of March.
    const MIDNIGHT: i64 = 1_775_001_600;

    fn label(s: i64) -> UtcSecond {
        UtcSecond::from_unix_secs(s).expect("a valid second")
    }

    #[test]
    fn three_agreeing_pairings_establish_the_seconds() {
        let mut a = LabelArbiter::new();
        a.build_consensus(100e6, 1);
        a.build_consensus(101e6, 2);
        assert_eq!(a.consensus_ns(), None);
        // One that jumps by 100 ms starts the count again.
        a.build_consensus(201e6, 3);
        a.build_consensus(201e6, 4);
        assert_eq!(a.consensus_ns(), None);
        a.build_consensus(202e6, 5);
        assert_eq!(a.consensus_ns(), Some(202e6));
        a.stepped(-202_000_000);
        assert_eq!(a.consensus_ns(), Some(0.0));
        a.forget_consensus();
        assert_eq!(a.consensus_ns(), None);
    }

    #[test]
    fn a_dispute_counts_epochs_blocks_after_the_grace_and_suspends_once() {
        let mut a = LabelArbiter::new();
        let t0 = MonoNanos(1_000 * S);
        let d = a.disagree(1_000 + 2, 1_000, &label(1_002), t0, |_| false);
        assert_eq!((d.offset_s, d.epochs, d.leap), (2, 1, None));
        let d = a.disagree(1_001 + 2, 1_001, &label(1_003), t0.add_nanos(S), |_| false);
        assert_eq!(d.epochs, 2);
        assert!(a.unsettled());
        assert!(!a.blocks(t0.add_nanos(10 * S), 10));
        assert!(a.blocks(t0.add_nanos(10 * S + 1), 10));
        assert!(
            a.suspend_if_due(t0.add_nanos(5 * S), 10, SyncState::Locked)
                .is_none()
        );
        let due = a.suspend_if_due(t0.add_nanos(11 * S), 10, SyncState::Locked);
        assert!(due.is_some_and(|d| d.offset_s == 2));
        assert!(
            a.suspend_if_due(t0.add_nanos(12 * S), 10, SyncState::Locked)
                .is_none()
        );
        assert!(a.agree().is_some());
        assert_eq!(a.resume(), Some(SyncState::Locked));
        assert!(!a.unsettled());
    }

    #[test]
    fn a_one_second_change_at_a_months_end_looks_like_a_leap_unless_expected() {
        // Insert: the receiver repeats a second, one behind the clock.
        assert_eq!(
            unannounced_leap(MIDNIGHT, MIDNIGHT + 1, |_| false),
            Some((LeapChange::Insert, MIDNIGHT))
        );
        assert_eq!(
            unannounced_leap(MIDNIGHT + 1, MIDNIGHT, |_| false),
            Some((LeapChange::Delete, MIDNIGHT))
        );
        assert_eq!(
            unannounced_leap(MIDNIGHT, MIDNIGHT + 1, |m| m == MIDNIGHT),
            None
        );
        // Too late after the midnight, mid-month, or more than a second.
        assert_eq!(
            unannounced_leap(MIDNIGHT + 3, MIDNIGHT + 4, |_| false),
            None
        );
        assert_eq!(
            unannounced_leap(MIDNIGHT - 86_400 * 10, MIDNIGHT - 86_400 * 10 + 1, |_| {
                false
            }),
            None
        );
        assert_eq!(unannounced_leap(MIDNIGHT, MIDNIGHT + 2, |_| false), None);
    }

    #[test]
    fn a_stale_or_invalid_fix_is_no_fix() {
        let mut a = LabelArbiter::new();
        let t0 = MonoNanos(0);
        assert!(!a.fix_ok(t0, 10_000));
        assert_eq!(a.no_fix_reason(10_000), "no valid receiver epoch yet");
        a.on_fix(true, t0);
        assert!(a.fix_ok(t0.add_nanos(10 * S), 10_000));
        assert!(!a.fix_ok(t0.add_nanos(10 * S + 1), 10_000));
        a.on_fix(false, t0.add_nanos(S));
        assert!(!a.fix_ok(t0.add_nanos(S), 10_000));
        assert_eq!(a.no_fix_reason(10_000), "receiver reports no fix");
    }
}
