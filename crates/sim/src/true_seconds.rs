//! Which UTC second a receiver labels at each true second, on a host whose
//! clock (plus a fixed offset) is taken as true time and never leaps.
//!
//! The VM test's feeder (`skytime-vm-feeder`) uses this to label its NMEA and
//! to announce a leap second: with a leap inserted at the end of `leap_day`,
//! true Unix second `L - 1` is 23:59:59, `L` is 23:59:60, and every later one is
//! labelled one second earlier than its Unix count (POSIX repeats a second).

use chrono::NaiveDate;
use skytime_timebase::{LeapChange, UtcSecond};

/// The label of the true second starting at `true_unix_secs`, and what the
/// receiver announces with it, given an optional inserted leap second at the
/// end of `leap_day`. `None` only outside chrono's date range.
pub fn label_true_second(
    true_unix_secs: i64,
    leap_day: Option<NaiveDate>,
) -> Option<(UtcSecond, LeapChange)> {
    let Some(day) = leap_day else {
        return Some((UtcSecond::from_unix_secs(true_unix_secs)?, LeapChange::None));
    };
    let leap_unix = day.succ_opt()?.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
    let label = match true_unix_secs.cmp(&leap_unix) {
        std::cmp::Ordering::Less => UtcSecond::from_unix_secs(true_unix_secs)?,
        std::cmp::Ordering::Equal => UtcSecond::new(day, 23, 59, 60)?,
        std::cmp::Ordering::Greater => UtcSecond::from_unix_secs(true_unix_secs - 1)?,
    };
    let announce = if label.date() == day {
        LeapChange::Insert
    } else {
        LeapChange::None
    };
    Some((label, announce))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, s))
            .map(|t| t.and_utc().timestamp())
            .expect("valid date")
    }

    #[test]
    fn without_a_leap_labels_are_the_unix_seconds() {
        let t = unix(2026, 3, 1, 12, 0, 5);
        let (label, leap) = label_true_second(t, None).expect("in range");
        assert_eq!(label, UtcSecond::from_unix_secs(t).expect("in range"));
        assert_eq!(leap, LeapChange::None);
    }

    #[test]
    fn an_inserted_leap_second_is_labelled_23_59_60_and_later_seconds_shift() {
        let day = NaiveDate::from_ymd_opt(2016, 12, 31);
        let midnight = unix(2017, 1, 1, 0, 0, 0);
        let labels: Vec<_> = (midnight - 2..=midnight + 1)
            .map(|t| label_true_second(t, day).expect("in range"))
            .collect();
        let hms: Vec<_> = labels.iter().map(|(l, _)| l.hms()).collect();
        assert_eq!(
            hms,
            vec![(23, 59, 58), (23, 59, 59), (23, 59, 60), (0, 0, 0)]
        );
        assert!(labels[2].0.is_leap_second());
        assert_eq!(labels[2].1, LeapChange::Insert);
        assert_eq!(labels[3].1, LeapChange::None);
        assert_eq!(
            labels[3].0.date(),
            NaiveDate::from_ymd_opt(2017, 1, 1).expect("valid")
        );
    }
}
