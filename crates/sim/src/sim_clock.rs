//! A disciplined clock in simulated time: the free-running [`Oscillator`] plus
//! the frequency correction and steps the discipline applies, with the
//! kernel's leap-second behaviour. It implements the refclock's [`Clock`], so
//! the real discipline steers it exactly as it steers `clock_adjtime`.

use crate::oscillator::Oscillator;
use skytime_refclock::{Clock, ClockError, SyncReport};
use skytime_timebase::{LeapChange, MonoNanos, NANOS_PER_SEC, TimeSource, UnixNanos};
use std::sync::{Arc, Mutex, MutexGuard};

/// The kernel's frequency range (ADJ_FREQUENCY is clamped to ±500 ppm).
pub const MAX_FREQUENCY_PPB: f64 = 500_000.0;

/// Where the kernel's leap-second state machine stands (`time_state`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
enum KernelLeap {
    /// TIME_OK: nothing armed.
    #[default]
    Ok,
    /// TIME_INS / TIME_DEL: acts at the next UTC midnight of the clock's reading.
    Armed(LeapChange),
    /// TIME_WAIT: done; stays until the flag is cleared, so a leap happens once.
    Done,
}

#[derive(Debug)]
struct State {
    osc: Oscillator,
    /// POSIX time of true time 0, ns.
    start_unix_ns: i64,
    /// True time since start, ns.
    true_ns: i64,
    /// Local minus true time at start, ns.
    initial_offset_ns: f64,
    /// Correction currently applied, ppb.
    corr_ppb: f64,
    /// Integral of the correction up to `true_ns`, ns.
    corr_integral_ns: f64,
    /// Sum of all steps, ns.
    steps_ns: i64,
    /// Number of steps.
    steps: u64,
    /// The kernel's leap steps so far (−1 s per insert, +1 s per delete), ns.
    leap_ns: i64,
    leap: KernelLeap,
    /// Monotonic clock origin (an arbitrary uptime).
    mono_origin_ns: i64,
    last_report: SyncReport,
    /// Every change of the requested leap flag: (true time ns, flag).
    leap_requests: Vec<(i64, LeapChange)>,
    requested_leap: LeapChange,
}

impl State {
    /// The whole-nanosecond part of the reading: start, true time, steps and
    /// the kernel's leap steps. Kept apart from [`State::frac_ns`] because an
    /// f64 holding a Unix time in ns resolves only 256 ns.
    fn int_ns(&self) -> i64 {
        self.start_unix_ns + self.true_ns + self.steps_ns + self.leap_ns
    }

    /// The continuous part of the reading: initial offset plus the phase the
    /// oscillator and the correction have accumulated, ns.
    fn frac_ns(&self) -> f64 {
        self.initial_offset_ns + self.osc.phase_gain_ns() + self.corr_integral_ns
    }

    /// The reading, to the nanosecond.
    fn unix_ns(&self) -> i64 {
        self.int_ns() + self.frac_ns().round() as i64
    }

    /// Applies an armed leap if the reading crossed its trigger between `before_ns` and now.
    fn apply_leap(&mut self, before_ns: i64) {
        let KernelLeap::Armed(change) = self.leap else {
            return;
        };
        let day = 86_400 * NANOS_PER_SEC;
        // Insert: when the clock reaches 00:00:00 it is set back to 23:59:59.
        // Delete: when it reaches 23:59:59 it is set forward to 00:00:00.
        let (trigger_offset, step) = match change {
            LeapChange::Insert => (0, -NANOS_PER_SEC),
            LeapChange::Delete => (-NANOS_PER_SEC, NANOS_PER_SEC),
            LeapChange::None => return,
        };
        let next_trigger =
            (before_ns - trigger_offset).div_euclid(day) * day + day + trigger_offset;
        if self.unix_ns() >= next_trigger {
            self.leap_ns += step;
            self.leap = KernelLeap::Done;
        }
    }
}

/// The simulated disciplined clock. Cloning shares it: the runner advances
/// true time through one handle while the refclock steers another.
#[derive(Clone, Debug)]
pub struct SimClock {
    state: Arc<Mutex<State>>,
}

impl SimClock {
    /// A clock at true time 0 reading `start_unix + initial_offset_ns`, driven by `osc`.
    pub fn new(osc: Oscillator, start_unix: UnixNanos, initial_offset_ns: f64) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                osc,
                start_unix_ns: start_unix.0,
                true_ns: 0,
                initial_offset_ns,
                corr_ppb: 0.0,
                corr_integral_ns: 0.0,
                steps_ns: 0,
                steps: 0,
                leap_ns: 0,
                leap: KernelLeap::Ok,
                mono_origin_ns: 1_000 * NANOS_PER_SEC,
                last_report: SyncReport::default(),
                leap_requests: Vec::new(),
                requested_leap: LeapChange::None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock can only come from a bug in this
        // module; the state is still consistent (plain numbers), so go on.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves true time forward to `true_ns` since start (never backwards),
    /// integrating the oscillator and the applied correction, and letting an
    /// armed leap second act when the reading crosses midnight.
    pub fn advance_to(&self, true_ns: i64) {
        let mut s = self.lock();
        if true_ns <= s.true_ns {
            return;
        }
        let before = s.unix_ns();
        let dt_s = (true_ns - s.true_ns) as f64 / NANOS_PER_SEC as f64;
        s.corr_integral_ns += s.corr_ppb * dt_s;
        s.true_ns = true_ns;
        s.osc.advance_to(true_ns as f64 / NANOS_PER_SEC as f64);
        s.apply_leap(before);
    }

    /// True time since start, ns.
    pub fn true_ns(&self) -> i64 {
        self.lock().true_ns
    }

    /// The clock's reading now minus `true_unix`, ns, with sub-nanosecond resolution.
    pub fn error_ns(&self, true_unix: UnixNanos) -> f64 {
        let s = self.lock();
        (s.int_ns() - true_unix.0) as f64 + s.frac_ns()
    }

    /// The oscillator's natural frequency error now, ppb.
    pub fn natural_freq_ppb(&self) -> f64 {
        self.lock().osc.freq_error_ppb()
    }

    /// The oscillator's temperature now, kelvin above the start.
    pub fn temperature_delta_k(&self) -> f64 {
        self.lock().osc.temperature_delta_k()
    }

    /// What a sensor in the box feels now (no hidden heat), kelvin above the start.
    pub fn sensed_temperature_delta_k(&self) -> f64 {
        self.lock().osc.sensed_temperature_delta_k()
    }

    /// How many times the discipline stepped the clock.
    pub fn steps(&self) -> u64 {
        self.lock().steps
    }

    /// Net leap-second steps the kernel model applied, in seconds (−1 per insert).
    pub fn leap_steps_s(&self) -> i64 {
        self.lock().leap_ns / NANOS_PER_SEC
    }

    /// Every change of the leap flag the discipline asked for, as (true time
    /// since start in ns, flag): shows when it armed and disarmed.
    pub fn leap_requests(&self) -> Vec<(i64, LeapChange)> {
        self.lock().leap_requests.clone()
    }

    /// The last quality report the discipline published.
    pub fn last_report(&self) -> SyncReport {
        self.lock().last_report
    }
}

impl TimeSource for SimClock {
    fn realtime(&self) -> UnixNanos {
        UnixNanos(self.lock().unix_ns())
    }

    fn monotonic(&self) -> MonoNanos {
        // CLOCK_MONOTONIC runs at the disciplined rate but ignores steps and leaps.
        let s = self.lock();
        let continuous = s.osc.phase_gain_ns() + s.corr_integral_ns;
        MonoNanos(s.mono_origin_ns + s.true_ns + continuous.round() as i64)
    }
}

impl Clock for SimClock {
    fn set_frequency_ppb(&self, ppb: f64) -> Result<MonoNanos, ClockError> {
        if !ppb.is_finite() {
            return Err(ClockError::Failed(format!(
                "frequency {ppb} ppb is not a number"
            )));
        }
        self.lock().corr_ppb = ppb.clamp(-MAX_FREQUENCY_PPB, MAX_FREQUENCY_PPB);
        Ok(self.monotonic())
    }

    fn frequency_ppb(&self) -> f64 {
        self.lock().corr_ppb
    }

    fn step(&self, offset_ns: i64) -> Result<MonoNanos, ClockError> {
        {
            let mut s = self.lock();
            s.steps_ns += offset_ns;
            s.steps += 1;
        }
        Ok(self.monotonic())
    }

    fn set_leap(&self, leap: LeapChange) -> Result<(), ClockError> {
        let mut s = self.lock();
        if leap != s.requested_leap {
            let at = s.true_ns;
            s.leap_requests.push((at, leap));
            s.requested_leap = leap;
        }
        s.leap = match (s.leap, leap) {
            (KernelLeap::Done, LeapChange::None) => KernelLeap::Ok,
            (KernelLeap::Done, _) => KernelLeap::Done,
            (_, LeapChange::None) => KernelLeap::Ok,
            (_, change) => KernelLeap::Armed(change),
        };
        Ok(())
    }

    fn report_sync(&self, report: SyncReport) -> Result<(), ClockError> {
        self.lock().last_report = report;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oscillator::OscillatorParams;

    fn clock(ppm: f64, offset_ns: f64, start_s: i64) -> SimClock {
        let osc = Oscillator::new(
            &OscillatorParams {
                initial_freq_ppm: ppm,
                ..Default::default()
            },
            1,
        );
        SimClock::new(osc, UnixNanos(start_s * NANOS_PER_SEC), offset_ns)
    }

    #[test]
    fn free_running_error_integrates_and_correction_cancels_it() {
        let c = clock(10.0, 1000.0, 1_700_000_000);
        c.advance_to(100 * NANOS_PER_SEC);
        let err = c.error_ns(UnixNanos(1_700_000_100 * NANOS_PER_SEC));
        assert!((err - (1000.0 + 1_000_000.0)).abs() < 1e-3, "{err}");
        c.set_frequency_ppb(-10_000.0).expect("set");
        c.advance_to(200 * NANOS_PER_SEC);
        let err2 = c.error_ns(UnixNanos(1_700_000_200 * NANOS_PER_SEC));
        assert!(
            (err2 - err).abs() < 1e-3,
            "correction should hold the error: {err} -> {err2}"
        );
        c.step(-1_001_000).expect("step");
        let err3 = c.error_ns(UnixNanos(1_700_000_200 * NANOS_PER_SEC));
        assert!(err3.abs() < 1e-3);
        assert_eq!(c.steps(), 1);
    }

    #[test]
    fn monotonic_ignores_steps_but_follows_frequency() {
        let c = clock(0.0, 0.0, 1_700_000_000);
        let m0 = c.monotonic();
        c.set_frequency_ppb(1000.0).expect("set");
        c.advance_to(10 * NANOS_PER_SEC);
        c.step(5 * NANOS_PER_SEC).expect("step");
        assert_eq!(c.monotonic().nanos_since(m0), 10 * NANOS_PER_SEC + 10_000);
    }

    #[test]
    fn frequency_is_clamped_like_the_kernel() {
        let c = clock(0.0, 0.0, 0);
        c.set_frequency_ppb(1e9).expect("set");
        assert_eq!(c.frequency_ppb(), MAX_FREQUENCY_PPB);
        assert!(c.set_frequency_ppb(f64::NAN).is_err());
    }

    #[test]
    fn armed_insert_steps_back_once_at_midnight() {
        let midnight = 1_483_228_800; // 2017-01-01T00:00:00Z
        let c = clock(0.0, 0.0, midnight - 10);
        c.set_leap(LeapChange::Insert).expect("arm");
        c.advance_to(9 * NANOS_PER_SEC + 500_000_000);
        assert_eq!(c.realtime().secs(), midnight - 1);
        c.advance_to(10 * NANOS_PER_SEC + 500_000_000); // true 23:59:60.5 reads 23:59:59.5
        assert_eq!(
            c.realtime(),
            UnixNanos((midnight - 1) * NANOS_PER_SEC + 500_000_000)
        );
        c.advance_to(11 * NANOS_PER_SEC + 500_000_000);
        assert_eq!(c.realtime().secs(), midnight);
        // Still armed (TIME_WAIT): no second leap the next midnight.
        c.advance_to((86_400 + 20) * NANOS_PER_SEC);
        assert_eq!(c.leap_steps_s(), -1);
    }

    #[test]
    fn armed_delete_skips_235959() {
        let midnight = 1_483_228_800;
        let c = clock(0.0, 0.0, midnight - 10);
        c.set_leap(LeapChange::Delete).expect("arm");
        c.advance_to(8 * NANOS_PER_SEC + 500_000_000); // 23:59:58.5
        assert_eq!(c.realtime().secs(), midnight - 2);
        c.advance_to(9 * NANOS_PER_SEC + 500_000_000); // would be 23:59:59.5
        assert_eq!(c.realtime().secs(), midnight);
        assert_eq!(c.leap_steps_s(), 1);
    }

    #[test]
    fn disarming_before_midnight_prevents_the_leap() {
        let midnight = 1_483_228_800;
        let c = clock(0.0, 0.0, midnight - 10);
        c.set_leap(LeapChange::Insert).expect("arm");
        c.set_leap(LeapChange::None).expect("disarm");
        c.advance_to(20 * NANOS_PER_SEC);
        assert_eq!(c.leap_steps_s(), 0);
    }
}
