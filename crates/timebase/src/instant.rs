//! Instants on the two clocks skytime reads: realtime (what is disciplined and
//! served) and monotonic (what measures intervals across steps).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// One second in nanoseconds.
pub const NANOS_PER_SEC: i64 = 1_000_000_000;

/// An instant on a realtime clock, in nanoseconds since 1970-01-01T00:00:00 UTC
/// with POSIX leap-second semantics (a leap second repeats 23:59:59).
///
/// Which realtime clock it was read from (the kernel's, or a simulated disciplined
/// clock) is up to the [`crate::TimeSource`] that produced it. i64 nanoseconds
/// reach the year 2262, beyond any hardware this will run on.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixNanos(pub i64);

/// An instant on a monotonic clock (CLOCK_MONOTONIC or a simulated one), in
/// nanoseconds from an arbitrary origin. Immune to clock steps, so it measures
/// intervals such as "how long since the last pulse".
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct MonoNanos(pub i64);

macro_rules! instant_ops {
    ($t:ident) => {
        impl $t {
            /// Builds an instant from whole seconds and nanoseconds.
            pub const fn from_secs_nanos(secs: i64, nanos: u32) -> Self {
                Self(secs * NANOS_PER_SEC + nanos as i64)
            }
            /// Whole seconds, rounded towards negative infinity.
            pub const fn secs(self) -> i64 {
                self.0.div_euclid(NANOS_PER_SEC)
            }
            /// Nanoseconds within the second, always in 0..1e9.
            #[expect(
                clippy::cast_possible_truncation,
                reason = "rem_euclid by 1e9 is in 0..1e9, which fits u32 (try_from is not const)"
            )]
            pub const fn subsec_nanos(self) -> u32 {
                self.0.rem_euclid(NANOS_PER_SEC) as u32
            }
            /// Signed nanoseconds from `earlier` to `self`.
            pub const fn nanos_since(self, earlier: Self) -> i64 {
                self.0 - earlier.0
            }
            /// Adds a signed number of nanoseconds, saturating at the ends of the range.
            pub const fn add_nanos(self, nanos: i64) -> Self {
                Self(self.0.saturating_add(nanos))
            }
        }
        impl Add<Duration> for $t {
            type Output = $t;
            fn add(self, rhs: Duration) -> $t {
                self.add_nanos(i64::try_from(rhs.as_nanos()).unwrap_or(i64::MAX))
            }
        }
        impl Sub<Duration> for $t {
            type Output = $t;
            fn sub(self, rhs: Duration) -> $t {
                self.add_nanos(-i64::try_from(rhs.as_nanos()).unwrap_or(i64::MAX))
            }
        }
    };
}
instant_ops!(UnixNanos);
instant_ops!(MonoNanos);

impl fmt::Display for UnixNanos {
    /// ISO-8601 UTC with nanoseconds, for logs and status output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match chrono::DateTime::from_timestamp(self.secs(), self.subsec_nanos()) {
            Some(dt) => write!(f, "{}", dt.format("%Y-%m-%dT%H:%M:%S%.9fZ")),
            None => write!(f, "{}ns", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_instants_split_into_floor_seconds_and_positive_nanos() {
        let t = UnixNanos(-1);
        assert_eq!(t.secs(), -1);
        assert_eq!(t.subsec_nanos(), 999_999_999);
        assert_eq!(UnixNanos::from_secs_nanos(t.secs(), t.subsec_nanos()), t);
    }

    #[test]
    fn display_is_iso8601_utc() {
        let t = UnixNanos::from_secs_nanos(1_420_000_039, 5);
        assert_eq!(t.to_string(), "2014-12-31T04:27:19.000000005Z");
    }
}
