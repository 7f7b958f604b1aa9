//! The kernel's leap-second state machine (`time_state` in
//! `kernel/time/ntp.c`, what `adjtimex(2)` returns), as the simulated clock
//! keeps it.
//!
//! The discipline arms a leap by setting STA_INS or STA_DEL. Armed, the kernel
//! inserts 23:59:60 by stepping back one second when the clock reaches
//! midnight (TIME_OOP for that second), or deletes 23:59:59 by stepping forward
//! when it reaches 23:59:59. Afterwards it reports TIME_WAIT for as long as the
//! flag stays set, so one armed flag makes one leap however long it is left.

use skytime_timebase::{LeapChange, NANOS_PER_SEC};

const DAY_NS: i64 = 86_400 * NANOS_PER_SEC;

/// Where the kernel's leap handling stands (the value `adjtimex` returns).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum KernelLeapState {
    /// TIME_OK: nothing armed.
    #[default]
    Ok,
    /// TIME_INS: an insert is armed for the next midnight.
    Insert,
    /// TIME_DEL: a delete is armed for the next 23:59:59.
    Delete,
    /// TIME_OOP: the inserted second is in progress.
    Oop,
    /// TIME_WAIT: the leap is done; stays until the flag is cleared.
    Wait,
}

/// The flag the discipline set and the state the kernel is in.
#[derive(Copy, Clone, Debug, Default)]
pub(crate) struct LeapMachine {
    flag: LeapChange,
    state: KernelLeapState,
    /// While TIME_OOP: the reading (after the step back) at which the inserted
    /// second ends, ns.
    oop_end_ns: i64,
}

impl LeapMachine {
    /// The STA_INS/STA_DEL flag as last set.
    pub(crate) fn flag(&self) -> LeapChange {
        self.flag
    }

    /// The kernel's state.
    pub(crate) fn state(&self) -> KernelLeapState {
        self.state
    }

    /// Sets or clears the flag (ADJ_STATUS). An armed state follows the flag;
    /// a leap in progress or done is not armed again by it.
    pub(crate) fn set_flag(&mut self, flag: LeapChange) {
        self.flag = flag;
        self.state = match (self.state, flag) {
            (KernelLeapState::Oop, _) => KernelLeapState::Oop,
            (KernelLeapState::Wait, LeapChange::None) => KernelLeapState::Ok,
            (KernelLeapState::Wait, _) => KernelLeapState::Wait,
            (_, LeapChange::None) => KernelLeapState::Ok,
            (_, LeapChange::Insert) => KernelLeapState::Insert,
            (_, LeapChange::Delete) => KernelLeapState::Delete,
        };
    }

    /// The reading went from `before_ns` to `after_ns` (Unix ns, before any
    /// leap step). Returns the step the kernel makes, ns: −1 s for an insert,
    /// +1 s for a delete, 0 for none.
    pub(crate) fn advance(&mut self, before_ns: i64, after_ns: i64) -> i64 {
        // Insert: when the clock reaches 00:00:00 it is set back to 23:59:59.
        // Delete: when it reaches 23:59:59 it is set forward to 00:00:00.
        let (trigger_offset, step) = match self.state {
            KernelLeapState::Insert => (0, -NANOS_PER_SEC),
            KernelLeapState::Delete => (-NANOS_PER_SEC, NANOS_PER_SEC),
            KernelLeapState::Oop => {
                if after_ns >= self.oop_end_ns {
                    self.state = KernelLeapState::Wait;
                }
                return self.settle();
            }
            KernelLeapState::Ok | KernelLeapState::Wait => return self.settle(),
        };
        let next_trigger =
            (before_ns - trigger_offset).div_euclid(DAY_NS) * DAY_NS + DAY_NS + trigger_offset;
        if after_ns < next_trigger {
            return 0;
        }
        if step < 0 && after_ns + step < next_trigger {
            self.state = KernelLeapState::Oop;
            self.oop_end_ns = next_trigger;
        } else {
            self.state = KernelLeapState::Wait;
            self.settle();
        }
        step
    }

    /// TIME_WAIT ends once the flag is cleared.
    fn settle(&mut self) -> i64 {
        if self.state == KernelLeapState::Wait && self.flag == LeapChange::None {
            self.state = KernelLeapState::Ok;
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIDNIGHT_NS: i64 = 1_483_228_800 * NANOS_PER_SEC; // 2017-01-01T00:00:00Z

    #[test]
    fn insert_goes_through_oop_and_waits_until_the_flag_is_cleared() {
        let mut m = LeapMachine::default();
        m.set_flag(LeapChange::Insert);
        assert_eq!(m.state(), KernelLeapState::Insert);
        assert_eq!(m.advance(MIDNIGHT_NS - 2_000, MIDNIGHT_NS - 1_000), 0);
        assert_eq!(
            m.advance(MIDNIGHT_NS - 1_000, MIDNIGHT_NS + 100),
            -NANOS_PER_SEC
        );
        assert_eq!(m.state(), KernelLeapState::Oop, "23:59:60 in progress");
        let during = MIDNIGHT_NS + 100 - NANOS_PER_SEC;
        assert_eq!(m.advance(during, MIDNIGHT_NS - 1), 0);
        assert_eq!(m.state(), KernelLeapState::Oop);
        assert_eq!(m.advance(MIDNIGHT_NS - 1, MIDNIGHT_NS), 0);
        assert_eq!(m.state(), KernelLeapState::Wait);
        // Still flagged: a day later nothing happens, the state stays WAIT.
        assert_eq!(m.advance(MIDNIGHT_NS, MIDNIGHT_NS + DAY_NS + 1), 0);
        assert_eq!(m.state(), KernelLeapState::Wait);
        m.set_flag(LeapChange::Insert);
        assert_eq!(
            m.state(),
            KernelLeapState::Wait,
            "re-setting does not re-arm"
        );
        m.set_flag(LeapChange::None);
        assert_eq!(m.state(), KernelLeapState::Ok);
        assert_eq!(m.flag(), LeapChange::None);
    }

    #[test]
    fn delete_skips_235959_and_waits() {
        let mut m = LeapMachine::default();
        m.set_flag(LeapChange::Delete);
        let at = MIDNIGHT_NS - NANOS_PER_SEC; // 23:59:59
        assert_eq!(m.advance(at - 10, at - 1), 0);
        assert_eq!(m.advance(at - 1, at + 5), NANOS_PER_SEC);
        assert_eq!(m.state(), KernelLeapState::Wait);
        assert_eq!(
            m.flag(),
            LeapChange::Delete,
            "the flag is the discipline's to clear"
        );
        m.set_flag(LeapChange::None);
        assert_eq!(m.state(), KernelLeapState::Ok);
    }

    #[test]
    fn clearing_or_changing_the_flag_before_midnight_disarms() {
        let mut m = LeapMachine::default();
        m.set_flag(LeapChange::Insert);
        m.set_flag(LeapChange::None);
        assert_eq!(m.advance(MIDNIGHT_NS - 1, MIDNIGHT_NS + 1), 0);
        assert_eq!(m.state(), KernelLeapState::Ok);
        m.set_flag(LeapChange::Insert);
        m.set_flag(LeapChange::Delete);
        assert_eq!(m.state(), KernelLeapState::Delete);
        assert_eq!(
            m.advance(MIDNIGHT_NS + DAY_NS - 1, MIDNIGHT_NS + DAY_NS + 1),
            0,
            "a delete does not act at midnight"
        );
    }

    #[test]
    fn flag_cleared_during_the_inserted_second_ends_in_ok() {
        let mut m = LeapMachine::default();
        m.set_flag(LeapChange::Insert);
        assert_eq!(m.advance(MIDNIGHT_NS - 1, MIDNIGHT_NS + 1), -NANOS_PER_SEC);
        m.set_flag(LeapChange::None);
        assert_eq!(
            m.state(),
            KernelLeapState::Oop,
            "the second runs its course"
        );
        assert_eq!(m.advance(MIDNIGHT_NS - 1, MIDNIGHT_NS + 1), 0);
        assert_eq!(m.state(), KernelLeapState::Ok);
    }
}
