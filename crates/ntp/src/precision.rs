//! The precision field: log2 seconds of the smallest step the served clock
//! shows, measured as ntpd and chrony do, by reading it back to back.

use skytime_timebase::TimeSource;

/// log2 (seconds) of the smallest positive difference between consecutive
/// reads of `clock`, rounded up, within NTP's sensible range (-30 ..= 0).
pub fn measure(clock: &dyn TimeSource) -> i8 {
    let mut smallest = i64::MAX;
    let mut prev = clock.realtime();
    for _ in 0..1000 {
        let now = clock.realtime();
        let step = now.nanos_since(prev);
        if step > 0 {
            smallest = smallest.min(step);
        }
        prev = now;
    }
    from_step_ns(smallest)
}

/// The precision exponent for a clock step of `step_ns` nanoseconds.
#[expect(
    clippy::cast_possible_truncation,
    reason = "clamped to -30..=0 before the cast"
)]
pub fn from_step_ns(step_ns: i64) -> i8 {
    if step_ns <= 0 || step_ns == i64::MAX {
        // Never saw the clock move: claim no better than a millisecond-ish clock.
        return -10;
    }
    let exp = (step_ns as f64 / 1e9).log2().ceil();
    exp.clamp(-30.0, 0.0) as i8
}

#[cfg(test)]
mod tests {
    use super::*;
    use skytime_timebase::HostClock;

    #[test]
    fn exponents_round_up() {
        assert_eq!(from_step_ns(1), -29);
        assert_eq!(from_step_ns(30), -24);
        assert_eq!(from_step_ns(1_000), -19);
        assert_eq!(from_step_ns(1_000_000_000), 0);
        assert_eq!(from_step_ns(5_000_000_000), 0);
        assert_eq!(from_step_ns(0), -10);
    }

    #[test]
    fn host_clock_is_better_than_a_microsecond() {
        let p = measure(&HostClock);
        assert!((-30..=-10).contains(&p), "precision {p}");
    }
}
