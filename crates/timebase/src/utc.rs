//! UTC seconds as a receiver labels them, including the leap second 23:59:60.

use crate::{NANOS_PER_SEC, UnixNanos};
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A leap second announced for the end of the current UTC day (or month, as
/// receivers announce it), as the kernel and NTP's LI field understand it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeapChange {
    /// No leap second pending.
    #[default]
    None,
    /// 23:59:60 will be inserted.
    Insert,
    /// 23:59:59 will be skipped.
    Delete,
}

/// One labelled UTC second: the second that a receiver says a PPS edge starts.
///
/// Civil fields are kept rather than a Unix count because 23:59:60 has no Unix
/// count of its own: POSIX (and the Linux kernel, after an armed insert) repeats
/// 23:59:59 for it. [`UtcSecond::unix_nanos`] gives that repeated value and
/// [`UtcSecond::is_leap_second`] tells the two apart.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcSecond {
    date: NaiveDate,
    hour: u8,
    minute: u8,
    second: u8,
}

impl UtcSecond {
    /// A validated label. `second` may be 60 only at 23:59 (the only place a
    /// leap second can be); anything else out of range is `None`.
    pub fn new(date: NaiveDate, hour: u8, minute: u8, second: u8) -> Option<Self> {
        let leap_ok = second == 60 && hour == 23 && minute == 59;
        if hour > 23 || minute > 59 || (second > 59 && !leap_ok) {
            return None;
        }
        Some(Self {
            date,
            hour,
            minute,
            second,
        })
    }

    /// The label of the Unix second containing `t` (never a leap second).
    pub fn from_unix_secs(secs: i64) -> Option<Self> {
        let dt = chrono::DateTime::from_timestamp(secs, 0)?.naive_utc();
        Self::new(
            dt.date(),
            u8::try_from(dt.hour()).ok()?,
            u8::try_from(dt.minute()).ok()?,
            u8::try_from(dt.second()).ok()?,
        )
    }

    /// Calendar date of the label.
    pub fn date(&self) -> NaiveDate {
        self.date
    }
    /// Hour, minute and second (second may be 60).
    pub fn hms(&self) -> (u8, u8, u8) {
        (self.hour, self.minute, self.second)
    }
    /// True for 23:59:60.
    pub fn is_leap_second(&self) -> bool {
        self.second == 60
    }

    /// POSIX seconds of this label; 23:59:60 maps to 23:59:59, as the kernel's
    /// clock reads during an inserted second.
    pub fn unix_secs(&self) -> i64 {
        let sec = u32::from(self.second.min(59));
        let t = NaiveDateTime::new(
            self.date,
            chrono::NaiveTime::from_hms_opt(u32::from(self.hour), u32::from(self.minute), sec)
                .unwrap_or_default(),
        );
        t.and_utc().timestamp()
    }

    /// The start of this second on a POSIX realtime clock.
    pub fn unix_nanos(&self) -> UnixNanos {
        UnixNanos(self.unix_secs() * NANOS_PER_SEC)
    }

    /// The following label. After 23:59:59 it is 23:59:60 only when `leap` says
    /// an insert is due today; with a delete pending, 23:59:58 is followed by 00:00:00.
    pub fn next(&self, leap: LeapChange) -> Self {
        let end_of_day = self.hour == 23 && self.minute == 59;
        match (end_of_day, self.second, leap) {
            (true, 59, LeapChange::Insert) => Self {
                second: 60,
                ..*self
            },
            (true, 58, LeapChange::Delete) | (true, 60, _) => {
                let date = self.date.succ_opt().unwrap_or(self.date);
                Self {
                    date,
                    hour: 0,
                    minute: 0,
                    second: 0,
                }
            }
            _ => Self::from_unix_secs(self.unix_secs() + 1).unwrap_or(*self),
        }
    }

    /// True on the last day of a month, the only days receivers and
    /// leap-seconds.list schedule leap seconds (in practice June and December).
    pub fn is_last_day_of_month(&self) -> bool {
        self.date
            .succ_opt()
            .is_some_and(|d| d.month() != self.date.month())
    }
}

impl fmt::Display for UtcSecond {
    /// ISO-8601, so 23:59:60 prints as itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}T{:02}:{:02}:{:02}Z",
            self.date.format("%Y-%m-%d"),
            self.hour,
            self.minute,
            self.second
        )
    }
}

impl Serialize for UtcSecond {
    /// As its ISO-8601 form, the way status output and `nmea decode` print it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    #[test]
    fn leap_second_maps_to_repeated_235959() {
        let leap = UtcSecond::new(d(2016, 12, 31), 23, 59, 60).expect("valid leap label");
        let before = UtcSecond::new(d(2016, 12, 31), 23, 59, 59).expect("valid");
        assert!(leap.is_leap_second());
        assert_eq!(leap.unix_secs(), before.unix_secs());
        assert_eq!(leap.to_string(), "2016-12-31T23:59:60Z");
        assert_eq!(before.next(LeapChange::Insert), leap);
        assert_eq!(
            leap.next(LeapChange::None).to_string(),
            "2017-01-01T00:00:00Z"
        );
    }

    #[test]
    fn second_60_is_only_valid_at_2359() {
        assert!(UtcSecond::new(d(2016, 12, 31), 12, 0, 60).is_none());
        assert!(UtcSecond::new(d(2016, 12, 31), 23, 58, 60).is_none());
        assert!(UtcSecond::new(d(2016, 12, 31), 24, 0, 0).is_none());
    }

    #[test]
    fn delete_skips_235959() {
        let s = UtcSecond::new(d(2030, 6, 30), 23, 59, 58).expect("valid");
        assert_eq!(
            s.next(LeapChange::Delete).to_string(),
            "2030-07-01T00:00:00Z"
        );
        assert!(s.is_last_day_of_month());
    }

    proptest::proptest! {
        #[test]
        fn unix_round_trip(secs in 0i64..8_000_000_000) {
            let s = UtcSecond::from_unix_secs(secs).expect("in range");
            proptest::prop_assert_eq!(s.unix_secs(), secs);
            proptest::prop_assert_eq!(s.next(LeapChange::None).unix_secs(), secs + 1);
        }
    }
}
