//! tzdata's `leap-seconds.list` (the IERS/NIST format): the table of leap
//! seconds, the file's expiry, and its SHA-1 integrity check.
//!
//! Times in the file are NTP seconds (since 1900). A line `T N` says that from
//! T on, TAI−UTC is N seconds; a change from N−1 to N means a second was
//! inserted at the end of the UTC day before T (N+1 to N: deleted).

use sha1::{Digest, Sha1};
use skytime_timebase::LeapChange;
use std::path::{Path, PathBuf};

/// Seconds from the NTP era (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_S: i64 = 2_208_988_800;

/// One scheduled leap second.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LeapEvent {
    /// The Unix second (a UTC midnight) at which the change has happened: the
    /// leap second is the one just before it.
    pub at_unix_s: i64,
    /// Insert (TAI−UTC grows) or delete.
    pub change: LeapChange,
    /// TAI−UTC from `at_unix_s` on, seconds.
    pub tai_minus_utc_s: i32,
}

/// A parsed, checked leap-second table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeapTable {
    /// Every change, in time order (the first entry of the file is the 1972
    /// origin, not a leap, and is not listed here).
    pub events: Vec<LeapEvent>,
    /// TAI−UTC at the start of the table (10 s in 1972).
    pub initial_tai_minus_utc_s: i32,
    /// After this Unix second the table says nothing about future leaps.
    pub expires_unix_s: i64,
    /// When the file was last updated, if it says (`#$`).
    pub updated_unix_s: Option<i64>,
}

/// Why a leap-seconds file was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum LeapFileError {
    /// Reading the file failed.
    #[error("leap-seconds file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A line could not be understood.
    #[error("leap-seconds file line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file has no `#@` expiry line, so it cannot be trusted for the future.
    #[error("leap-seconds file has no expiry (#@) line")]
    NoExpiry,
    /// The `#h` hash does not match the contents: the file is corrupt or edited.
    #[error("leap-seconds file hash mismatch: file says {expected}, contents give {actual}")]
    HashMismatch {
        /// Hash in the file.
        expected: String,
        /// Hash of the contents.
        actual: String,
    },
    /// There is no `#h` line to check.
    #[error("leap-seconds file has no hash (#h) line")]
    NoHash,
}

fn digits(s: &str) -> impl Iterator<Item = u8> + '_ {
    s.bytes().filter(u8::is_ascii_digit)
}

impl LeapTable {
    /// Reads and checks a file.
    pub fn load(path: &Path) -> Result<LeapTable, LeapFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| LeapFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses and checks the text of a file (hash included).
    pub fn parse(text: &str) -> Result<LeapTable, LeapFileError> {
        let mut hasher = Sha1::new();
        let mut entries: Vec<(i64, i32)> = Vec::new();
        let mut expires = None;
        let mut updated = None;
        let mut hash_line = None;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let malformed = |reason: String| LeapFileError::Malformed {
                line: line_no,
                reason,
            };
            let line = raw.trim_end();
            let number = |rest: &str| -> Result<i64, LeapFileError> {
                rest.trim()
                    .parse::<i64>()
                    .map_err(|_| malformed(format!("{:?} is not a number", rest.trim())))
            };
            if let Some(rest) = line.strip_prefix("#$") {
                hasher.update(digits(rest).collect::<Vec<u8>>());
                updated = Some(number(rest)? - NTP_UNIX_OFFSET_S);
            } else if let Some(rest) = line.strip_prefix("#@") {
                hasher.update(digits(rest).collect::<Vec<u8>>());
                expires = Some(number(rest)? - NTP_UNIX_OFFSET_S);
            } else if let Some(rest) = line.strip_prefix("#h") {
                hash_line = Some(rest.to_string());
            } else if line.starts_with('#') || line.trim().is_empty() {
                continue;
            } else {
                let data = line.split('#').next().unwrap_or("");
                hasher.update(digits(data).collect::<Vec<u8>>());
                let mut f = data.split_whitespace();
                let (Some(t), Some(n)) = (f.next(), f.next()) else {
                    return Err(malformed(format!(
                        "expected `NTP-time TAI-UTC`, got {line:?}"
                    )));
                };
                let t: i64 = t
                    .parse()
                    .map_err(|_| malformed(format!("time {t:?} is not a number")))?;
                let n: i32 = n
                    .parse()
                    .map_err(|_| malformed(format!("offset {n:?} is not a number")))?;
                if let Some(&(pt, pn)) = entries.last() {
                    if t <= pt {
                        return Err(malformed("times are not increasing".into()));
                    }
                    if (n - pn).abs() != 1 {
                        return Err(malformed(format!("TAI-UTC jumps from {pn} to {n}")));
                    }
                }
                if (t - NTP_UNIX_OFFSET_S).rem_euclid(86_400) != 0 {
                    return Err(malformed(format!("{t} is not a UTC midnight")));
                }
                entries.push((t - NTP_UNIX_OFFSET_S, n));
            }
        }
        let expected = hash_line.ok_or(LeapFileError::NoHash)?;
        let expected: String = expected
            .split_whitespace()
            .map(|g| format!("{:0>8}", g.to_ascii_lowercase()))
            .collect();
        let actual: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if expected != actual {
            return Err(LeapFileError::HashMismatch { expected, actual });
        }
        let expires_unix_s = expires.ok_or(LeapFileError::NoExpiry)?;
        let Some(&(_, initial)) = entries.first() else {
            return Err(LeapFileError::Malformed {
                line: 0,
                reason: "no leap table entries".into(),
            });
        };
        let events = entries
            .windows(2)
            .map(|w| LeapEvent {
                at_unix_s: w[1].0,
                change: if w[1].1 > w[0].1 {
                    LeapChange::Insert
                } else {
                    LeapChange::Delete
                },
                tai_minus_utc_s: w[1].1,
            })
            .collect();
        Ok(LeapTable {
            events,
            initial_tai_minus_utc_s: initial,
            expires_unix_s,
            updated_unix_s: updated,
        })
    }

    /// Whether the table still speaks for `now_unix_s`.
    pub fn is_expired(&self, now_unix_s: i64) -> bool {
        now_unix_s >= self.expires_unix_s
    }

    /// The leap second (if any) at the end of the UTC month containing
    /// `now_unix_s`, with the midnight it completes at. `None` when the table
    /// has expired, since it then cannot rule one out.
    pub fn leap_at_end_of_month(&self, now_unix_s: i64) -> Option<(LeapChange, i64)> {
        if self.is_expired(now_unix_s) {
            return None;
        }
        let end = end_of_month_unix_s(now_unix_s)?;
        Some(
            self.events
                .iter()
                .find(|e| e.at_unix_s == end)
                .map(|e| (e.change, end))
                .unwrap_or((LeapChange::None, end)),
        )
    }

    /// TAI−UTC at `unix_s`, as far as the table knows.
    pub fn tai_minus_utc_s(&self, unix_s: i64) -> i32 {
        self.events
            .iter()
            .rev()
            .find(|e| e.at_unix_s <= unix_s)
            .map(|e| e.tai_minus_utc_s)
            .unwrap_or(self.initial_tai_minus_utc_s)
    }
}

/// The Unix second of the midnight that ends the UTC month containing `unix_s`.
pub fn end_of_month_unix_s(unix_s: i64) -> Option<i64> {
    use chrono::Datelike;
    let d = chrono::DateTime::from_timestamp(unix_s, 0)?.date_naive();
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    Some(
        chrono::NaiveDate::from_ymd_opt(y, m, 1)?
            .and_hms_opt(0, 0, 0)?
            .and_utc()
            .timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TZDATA: &str = include_str!("../tests/data/leap-seconds.list");

    #[test]
    fn tzdata_file_parses_and_its_hash_checks() {
        let t = LeapTable::parse(TZDATA).expect("real file parses");
        assert_eq!(t.initial_tai_minus_utc_s, 10);
        assert_eq!(t.events.len(), 27);
        let last = t.events.last().expect("events");
        // 2017-01-01T00:00:00Z: the 2016-12-31 23:59:60 insert.
        assert_eq!(last.at_unix_s, 1_483_228_800);
        assert_eq!(last.change, LeapChange::Insert);
        assert_eq!(last.tai_minus_utc_s, 37);
        assert_eq!(t.tai_minus_utc_s(1_483_228_799), 36);
        assert_eq!(t.tai_minus_utc_s(1_483_228_800), 37);
        assert!(t.expires_unix_s > 1_700_000_000);
        // December 2016 ends with an insert; November 2016 with nothing.
        assert_eq!(
            t.leap_at_end_of_month(1_483_100_000),
            Some((LeapChange::Insert, 1_483_228_800))
        );
        assert_eq!(
            t.leap_at_end_of_month(1_480_000_000).map(|x| x.0),
            Some(LeapChange::None)
        );
        assert_eq!(t.leap_at_end_of_month(t.expires_unix_s + 1), None);
    }

    #[test]
    fn an_edited_table_fails_the_hash() {
        // A later expiry date, as someone "extending" a stale file would write.
        let edited = TZDATA.replacen("#@\t3991593600", "#@\t3999999999", 1);
        assert_ne!(edited, TZDATA, "test must actually edit the table");
        assert!(matches!(
            LeapTable::parse(&edited),
            Err(LeapFileError::HashMismatch { .. })
        ));
    }

    #[test]
    fn missing_hash_and_garbage_are_rejected() {
        let no_hash: String = TZDATA
            .lines()
            .filter(|l| !l.starts_with("#h"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(matches!(
            LeapTable::parse(&no_hash),
            Err(LeapFileError::NoHash)
        ));
        assert!(matches!(
            LeapTable::parse("2272060800 ten\n#h 0\n"),
            Err(LeapFileError::Malformed { line: 1, .. })
        ));
    }

    #[test]
    fn end_of_month_handles_december() {
        // 2016-12-15 -> 2017-01-01.
        assert_eq!(end_of_month_unix_s(1_481_760_000), Some(1_483_228_800));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,400}") {
            let _ = LeapTable::parse(&s);
        }
    }
}
