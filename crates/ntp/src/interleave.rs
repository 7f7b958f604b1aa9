//! Saved (receive → transmit) timestamp pairs for the interleaved mode
//! (draft-ietf-ntp-interleaved-modes, chrony's `xleave`).
//!
//! A client in interleaved mode echoes our previous receive timestamp in its
//! origin field; we look up the precise (kernel) transmit timestamp of the reply
//! we sent then and serve it. The map is direct-mapped and fixed in size: a new
//! pair overwrites whatever shared its slot, so a flood only makes some clients
//! fall back to basic mode for one exchange, never grows memory.

use crate::packet::NtpTimestamp;

#[derive(Copy, Clone, Default)]
struct Entry {
    rx: NtpTimestamp,
    tx: NtpTimestamp,
}

/// Fixed-size map from served receive timestamps to actual transmit timestamps.
pub struct TimestampMap {
    entries: Box<[Entry]>,
    shift: u32,
}

impl TimestampMap {
    /// A map with at least `entries` slots (rounded up to a power of two).
    pub fn new(entries: usize) -> TimestampMap {
        let size = entries.max(2).next_power_of_two();
        TimestampMap {
            entries: vec![Entry::default(); size].into_boxed_slice(),
            shift: 64 - size.trailing_zeros(),
        }
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "shifted right by 64 - log2(slots): the value is below the slot count"
    )]
    fn slot(&self, rx: NtpTimestamp) -> usize {
        // Fibonacci hashing: the low bits of timestamps are noisy, the high bits
        // are not; the multiply mixes both into the top bits.
        (rx.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// Whether `rx` is a receive timestamp we served and still remember.
    pub fn contains(&self, rx: NtpTimestamp) -> bool {
        !rx.is_zero() && self.entries[self.slot(rx)].rx == rx
    }

    /// The transmit timestamp saved for a reply whose receive timestamp was `rx`.
    pub fn get(&self, rx: NtpTimestamp) -> Option<NtpTimestamp> {
        let e = &self.entries[self.slot(rx)];
        (!rx.is_zero() && e.rx == rx && !e.tx.is_zero()).then_some(e.tx)
    }

    /// Saves (or refines, when a kernel timestamp arrives) the transmit time of
    /// the reply that carried receive timestamp `rx`.
    pub fn insert(&mut self, rx: NtpTimestamp, tx: NtpTimestamp) {
        let i = self.slot(rx);
        self.entries[i] = Entry { rx, tx };
    }

    /// Refines an entry only if it is still the one for `rx` (a kernel TX
    /// timestamp arriving after a flood has overwritten the slot is dropped).
    pub fn refine(&mut self, rx: NtpTimestamp, tx: NtpTimestamp) -> bool {
        let i = self.slot(rx);
        if self.entries[i].rx == rx {
            self.entries[i].tx = tx;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_refine_and_overwrite() {
        let mut m = TimestampMap::new(1024);
        let rx = NtpTimestamp(0x1234_5678_9abc_def0);
        assert_eq!(m.get(rx), None);
        m.insert(rx, NtpTimestamp(5));
        assert_eq!(m.get(rx), Some(NtpTimestamp(5)));
        assert!(m.refine(rx, NtpTimestamp(6)));
        assert_eq!(m.get(rx), Some(NtpTimestamp(6)));
        assert_eq!(m.get(NtpTimestamp::ZERO), None);
        // Flood it; memory stays the same and lookups stay exact.
        for i in 1..100_000u64 {
            m.insert(NtpTimestamp(i << 20), NtpTimestamp(i));
        }
        assert_eq!(m.entries.len(), 1024);
        assert_eq!(
            m.get(NtpTimestamp(99_999 << 20)),
            Some(NtpTimestamp(99_999))
        );
        if m.get(rx).is_none() {
            assert!(!m.refine(rx, NtpTimestamp(7)));
        }
    }
}
