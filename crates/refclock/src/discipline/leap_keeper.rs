//! The leap keeper: what the receiver announces, what the leap-seconds file
//! says, which one is followed, and the clock's leap flag and TAI offset.
//!
//! Owns every piece of leap state; touches the clock only through
//! `set_leap` and `set_tai_offset_s`.

use crate::leapfile::{LeapTable, end_of_month_unix_s};
use crate::status::{LeapSource, LeapSourceDisagreement};
use skytime_core::Clock;
use skytime_timebase::{LeapChange, MonoNanos, UnixNanos, UtcSecond};
use tracing::{info, warn};

const NS_I: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;
/// Consecutive epochs announcing a leap before it is believed.
const LEAP_ANNOUNCE_EPOCHS: u32 = 3;
/// Consecutive epochs without the announcement before it is withdrawn.
const LEAP_WITHDRAW_EPOCHS: u32 = 10;
/// Seconds around a leap (before, after) whose pulses stay out of the filter.
const LEAP_WINDOW_S: (i64, i64) = (3, 3);

/// The leap second expected: its kind, its midnight and who said so.
pub(super) type PendingLeap = (LeapChange, Option<i64>, Option<LeapSource>);

/// Leap-second state and the clock's flag.
#[derive(Debug)]
pub(super) struct LeapKeeper {
    table: Option<LeapTable>,
    /// TAI−UTC last given to the clock.
    tai_set_s: Option<i32>,
    rx_leap: LeapChange,
    rx_leap_count: u32,
    rx_leap_absent: u32,
    rx_leap_ignore_until_s: i64,
    pending: PendingLeap,
    sources_disagree: Option<LeapSourceDisagreement>,
    armed: LeapChange,
    last_leap_end_s: Option<i64>,
    last_window_edge: Option<MonoNanos>,
    checked_s: i64,
    /// Whether the file's expiry has been logged (so it is said once).
    file_expiry_logged: bool,
}

impl LeapKeeper {
    /// A keeper with the leap-seconds file's table, if one was read.
    pub fn new(table: Option<LeapTable>) -> Self {
        Self {
            table,
            tai_set_s: None,
            rx_leap: LeapChange::None,
            rx_leap_count: 0,
            rx_leap_absent: 0,
            rx_leap_ignore_until_s: i64::MIN,
            pending: (LeapChange::None, None, None),
            sources_disagree: None,
            armed: LeapChange::None,
            last_leap_end_s: None,
            last_window_edge: None,
            checked_s: i64::MIN,
            file_expiry_logged: false,
        }
    }

    /// The leap-seconds table, if one was read.
    pub fn table(&self) -> Option<&LeapTable> {
        self.table.as_ref()
    }

    /// When the leap-seconds file stops being trusted (None: no file read).
    /// Past it, leap seconds come only from the receiver and TAI−UTC is no
    /// longer given to the clock, so the operator must be told.
    pub fn file_expires(&self) -> Option<UnixNanos> {
        self.table
            .as_ref()
            .map(|t| UnixNanos(t.expires_unix_s * NS_I))
    }

    /// The leap second expected (kind, midnight, source).
    pub fn pending(&self) -> PendingLeap {
        self.pending
    }

    /// The flag the clock holds.
    pub fn armed(&self) -> LeapChange {
        self.armed
    }

    /// The receiver and the file disagreeing about the coming midnight.
    pub fn sources_disagree(&self) -> Option<LeapSourceDisagreement> {
        self.sources_disagree
    }

    /// One valid epoch's announcement, for the receiver's Unix second `utc_s`.
    pub fn track_receiver(&mut self, leap: LeapChange, utc_s: i64) {
        if leap == LeapChange::None {
            self.rx_leap_absent += 1;
            if self.rx_leap_absent >= LEAP_WITHDRAW_EPOCHS {
                self.rx_leap = LeapChange::None;
                self.rx_leap_count = 0;
            }
            return;
        }
        self.rx_leap_absent = 0;
        if utc_s < self.rx_leap_ignore_until_s {
            return;
        }
        if leap == self.rx_leap {
            self.rx_leap_count = self.rx_leap_count.saturating_add(1);
        } else {
            self.rx_leap = leap;
            self.rx_leap_count = 1;
        }
    }

    /// The midnight whose pulses are kept out of the filter: the pending
    /// leap's, else the last one's.
    fn window_end(&self) -> Option<i64> {
        match self.pending {
            (c, Some(end), _) if c != LeapChange::None => Some(end),
            _ => self.last_leap_end_s,
        }
    }

    /// The leap midnight whose window the second `label` falls in, if any.
    pub fn window_containing(&self, label: i64) -> Option<i64> {
        self.window_end()
            .filter(|l| (l - LEAP_WINDOW_S.0..l + LEAP_WINDOW_S.1).contains(&label))
    }

    /// A pulse was kept out of the filter at `mono`: it still shows the
    /// reference is there.
    pub fn note_window_edge(&mut self, mono: MonoNanos) {
        self.last_window_edge = Some(mono);
    }

    /// When a pulse was last kept out of the filter for a leap.
    pub fn last_window_edge(&self) -> Option<MonoNanos> {
        self.last_window_edge
    }

    /// Whether a leap at `midnight` was expected (pending or just passed).
    pub fn expected_at(&self, midnight: i64) -> bool {
        matches!(self.pending, (c, Some(at), _) if c != LeapChange::None && at == midnight)
            || self.last_leap_end_s == Some(midnight)
    }

    /// Once per second of `now_s`: the leap to expect and the clock's flag.
    pub fn update<C: Clock>(&mut self, clock: &C, now_s: i64) {
        if now_s == self.checked_s {
            return;
        }
        self.checked_s = now_s;
        self.note_file_expiry(now_s);
        let Some(end) = end_of_month_unix_s(now_s) else {
            return;
        };
        // The leap second itself and the second after it: the leap stands as
        // announced, LI keeps saying it, and the kernel's flag stays set. The
        // kernel clock reads 23:59:59 twice, and may read 00:00:00 for a moment
        // before its tick inserts the second; a receiver that stops announcing
        // now has seen the leap begin, not withdrawn it.
        if let (c, Some(at), _) = self.pending
            && c != LeapChange::None
            && (at - 1..=at).contains(&now_s)
        {
            return;
        }
        // A leap just happened (the clock is past the second after the
        // midnight it was for).
        if let (c, Some(at), _) = self.pending
            && c != LeapChange::None
            && now_s > at
        {
            info!(leap = ?c, "leap second passed");
            self.last_leap_end_s = Some(at);
            self.rx_leap_ignore_until_s = at + SECONDS_PER_DAY;
            self.rx_leap = LeapChange::None;
            self.rx_leap_count = 0;
            self.pending = (LeapChange::None, None, None);
            if self.armed != LeapChange::None {
                self.armed = LeapChange::None;
                if let Err(e) = clock.set_leap(LeapChange::None) {
                    warn!(error = %e, "could not clear the leap flag");
                }
            }
        }
        let receiver = (self.rx_leap != LeapChange::None
            && self.rx_leap_count >= LEAP_ANNOUNCE_EPOCHS
            && now_s >= self.rx_leap_ignore_until_s)
            .then_some(self.rx_leap);
        // What an unexpired file says about this month's end, leap or not.
        let file_view = self
            .table
            .as_ref()
            .and_then(|t| t.leap_at_end_of_month(now_s));
        let file = file_view.filter(|(c, _)| *c != LeapChange::None);
        self.update_tai_offset(clock, now_s);
        self.compare_sources(receiver, file_view.map(|(c, _)| c), end);
        let pending = match (receiver, file) {
            (Some(c), _) => (c, Some(end), Some(LeapSource::Receiver)),
            (None, Some((c, at))) => (c, Some(at), Some(LeapSource::LeapFile)),
            (None, None) => (LeapChange::None, None, None),
        };
        if pending.0 != self.pending.0 {
            info!(leap = ?pending.0, source = ?pending.2, "leap second status changed");
        }
        self.pending = pending;
        // Armed only on the last day of the month, and kept armed through its
        // final second (the kernel acts at midnight, then clears the flag).
        let last_day = pending
            .1
            .is_some_and(|at| now_s >= at - SECONDS_PER_DAY && now_s < at);
        let want = if last_day {
            pending.0
        } else {
            LeapChange::None
        };
        if want != self.armed {
            match clock.set_leap(want) {
                Ok(()) => {
                    info!(leap = ?want, "leap flag set on the clock");
                    self.armed = want;
                }
                Err(e) => warn!(error = %e, "could not set the leap flag"),
            }
        }
    }

    /// Says once, at warn, that the leap-seconds file has expired (an expired
    /// file is ignored, which would otherwise happen without a word).
    fn note_file_expiry(&mut self, now_s: i64) {
        let Some(table) = self.table.as_ref() else {
            return;
        };
        let expired = table.is_expired(now_s);
        if expired && !self.file_expiry_logged {
            let expired_at = UtcSecond::from_unix_secs(table.expires_unix_s)
                .map(|u| u.to_string())
                .unwrap_or_else(|| table.expires_unix_s.to_string());
            warn!(
                %expired_at,
                "leap-seconds file has expired and is ignored: leap seconds now come only from the \
                 receiver and the clock's TAI offset is no longer kept; update tzdata"
            );
        }
        self.file_expiry_logged = expired;
    }

    /// Gives the clock TAI−UTC from an unexpired leap-seconds file, once and
    /// again whenever the table's value changes (after the kernel's own +1
    /// at an inserted leap, setting the same value again is harmless).
    fn update_tai_offset<C: Clock>(&mut self, clock: &C, now_s: i64) {
        let Some(table) = self.table.as_ref().filter(|t| !t.is_expired(now_s)) else {
            return;
        };
        let tai = table.tai_minus_utc_s(now_s);
        if self.tai_set_s == Some(tai) {
            return;
        }
        // Tried once per value: a refusal is logged, not repeated every second.
        self.tai_set_s = Some(tai);
        match clock.set_tai_offset_s(tai) {
            Ok(()) => info!(tai_minus_utc_s = tai, "TAI offset set on the clock"),
            Err(e) => warn!(error = %e, tai_minus_utc_s = tai, "could not set the TAI offset"),
        }
    }

    /// Notes (once, at warn) when the receiver announces something for the
    /// midnight `end` that an unexpired leap-seconds file contradicts. The
    /// receiver is followed, as before; a receiver that announces nothing is
    /// no contradiction (many cannot announce at all).
    fn compare_sources(
        &mut self,
        receiver: Option<LeapChange>,
        file: Option<LeapChange>,
        end: i64,
    ) {
        let now = match (receiver, file) {
            (Some(r), Some(f)) if r != f => Some(LeapSourceDisagreement {
                receiver: r,
                leap_file: f,
                at: UnixNanos(end * NS_I),
                following: LeapSource::Receiver,
            }),
            _ => None,
        };
        if now == self.sources_disagree {
            return;
        }
        let midnight = || {
            UtcSecond::from_unix_secs(end)
                .map(|u| u.to_string())
                .unwrap_or_else(|| end.to_string())
        };
        match now {
            Some(d) => warn!(
                receiver = ?d.receiver,
                leap_seconds_file = ?d.leap_file,
                midnight = %midnight(),
                following = "receiver",
                "the receiver's leap announcement and leap-seconds.list disagree about the coming midnight; following the receiver"
            ),
            None => {
                info!("the receiver's leap announcement and leap-seconds.list no longer disagree")
            }
        }
        self.sources_disagree = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testsim::SimClock;

    /// 2026-03-31T00:00:00Z: the last day of March.
    const LAST_DAY: i64 = 1_774_915_200;
    /// 2026-04-01T00:00:00Z.
    const MIDNIGHT: i64 = LAST_DAY + SECONDS_PER_DAY;

    fn announce(k: &mut LeapKeeper, epochs: u32, at_s: i64) {
        for i in 0..epochs {
            k.track_receiver(LeapChange::Insert, at_s + i64::from(i));
        }
    }

    #[test]
    fn an_announcement_is_believed_after_three_epochs_and_armed_on_the_last_day() {
        let clock = SimClock::new(0, 0.0, 0.0);
        let mut k = LeapKeeper::new(None);
        let before = LAST_DAY - 3_600;
        announce(&mut k, 2, before);
        k.update(&clock, before);
        assert_eq!(k.pending().0, LeapChange::None);
        announce(&mut k, 1, before + 2);
        k.update(&clock, before + 3);
        assert_eq!(
            k.pending(),
            (
                LeapChange::Insert,
                Some(MIDNIGHT),
                Some(LeapSource::Receiver)
            )
        );
        assert_eq!(
            (k.armed(), clock.leap()),
            (LeapChange::None, LeapChange::None)
        );
        k.update(&clock, LAST_DAY);
        assert_eq!(
            (k.armed(), clock.leap()),
            (LeapChange::Insert, LeapChange::Insert)
        );
        assert!(k.expected_at(MIDNIGHT));
        assert_eq!(k.window_containing(MIDNIGHT - 1), Some(MIDNIGHT));
        assert_eq!(k.window_containing(MIDNIGHT - 10), None);
    }

    #[test]
    fn the_leap_stands_through_its_second_then_passes_and_disarms() {
        let clock = SimClock::new(0, 0.0, 0.0);
        let mut k = LeapKeeper::new(None);
        announce(&mut k, 3, LAST_DAY);
        k.update(&clock, LAST_DAY + 10);
        // The receiver stops announcing during the leap second itself.
        for s in 0..LEAP_WITHDRAW_EPOCHS {
            k.track_receiver(LeapChange::None, MIDNIGHT - 1 + i64::from(s));
        }
        k.update(&clock, MIDNIGHT);
        assert_eq!(k.pending().0, LeapChange::Insert);
        k.update(&clock, MIDNIGHT + 1);
        assert_eq!(k.pending().0, LeapChange::None);
        assert_eq!(k.armed(), LeapChange::None);
        assert!(k.expected_at(MIDNIGHT), "the passed leap is still expected");
        // A late announcement of the same leap is ignored for a day.
        announce(&mut k, 5, MIDNIGHT + 5);
        k.update(&clock, MIDNIGHT + 10);
        assert_eq!(k.pending().0, LeapChange::None);
    }

    #[test]
    fn a_withdrawn_announcement_is_forgotten_after_ten_quiet_epochs() {
        let clock = SimClock::new(0, 0.0, 0.0);
        let mut k = LeapKeeper::new(None);
        announce(&mut k, 3, LAST_DAY);
        for s in 0..LEAP_WITHDRAW_EPOCHS - 1 {
            k.track_receiver(LeapChange::None, LAST_DAY + 3 + i64::from(s));
        }
        k.update(&clock, LAST_DAY + 20);
        assert_eq!(k.pending().0, LeapChange::Insert);
        k.track_receiver(LeapChange::None, LAST_DAY + 21);
        k.update(&clock, LAST_DAY + 22);
        assert_eq!(k.pending().0, LeapChange::None);
        assert_eq!(clock.leap(), LeapChange::None);
    }
}
