//! The one simulated disciplined clock: a free-running oscillator plus the
//! frequency correction and steps the discipline applies, with the kernel's
//! clamping and leap-second behaviour (TIME_WAIT included, see [`leap`]). It
//! implements [`Clock`], so the real discipline steers it exactly as it steers
//! `clock_adjtime`. The simulator, the simulated hat and the refclock's unit
//! tests all run on it; only the oscillator behind it differs.

mod leap;

pub use leap::KernelLeapState;

use crate::{Clock, ClockError, SyncReport};
use leap::LeapMachine;
use skytime_timebase::{LeapChange, MonoNanos, NANOS_PER_SEC, TimeSource, UnixNanos};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};

/// The kernel's frequency range (ADJ_FREQUENCY is clamped to ±500 ppm).
pub const MAX_FREQUENCY_PPB: f64 = 500_000.0;

/// What runs the clock when nobody steers it: the simulator's temperature- and
/// ageing-driven oscillator, or a [`SteadyOscillator`] in unit tests.
pub trait FreeRunning: Send + Debug {
    /// Runs the oscillator to `true_s` seconds since the clock's start.
    fn advance_to_s(&mut self, true_s: f64);
    /// Phase the oscillator has gained since the start, ns.
    fn phase_gain_ns(&self) -> f64;
    /// Its frequency error now, ppb.
    fn freq_error_ppb(&self) -> f64;
}

/// An oscillator whose frequency error holds until it is set: the unit tests'
/// stand-in, with a random walk applied from outside when they want one.
#[derive(Copy, Clone, Debug, Default)]
pub struct SteadyOscillator {
    freq_ppb: f64,
    phase_ns: f64,
    at_s: f64,
}

impl SteadyOscillator {
    /// An oscillator `freq_ppb` fast (positive: the clock gains).
    pub fn new(freq_ppb: f64) -> Self {
        Self {
            freq_ppb,
            ..Self::default()
        }
    }

    /// Changes the frequency error; the new value counts from the last
    /// advance on, as a step of frequency between two samples.
    pub fn set_freq_ppb(&mut self, freq_ppb: f64) {
        self.freq_ppb = freq_ppb;
    }
}

impl FreeRunning for SteadyOscillator {
    fn advance_to_s(&mut self, true_s: f64) {
        if true_s > self.at_s {
            self.phase_ns += self.freq_ppb * (true_s - self.at_s);
            self.at_s = true_s;
        }
    }
    fn phase_gain_ns(&self) -> f64 {
        self.phase_ns
    }
    fn freq_error_ppb(&self) -> f64 {
        self.freq_ppb
    }
}

#[derive(Debug)]
struct State<O> {
    osc: O,
    /// POSIX time of true time 0, ns.
    start_unix_ns: i64,
    /// True time since start, ns.
    true_ns: i64,
    /// Local minus true time at start, plus every disturbance since, ns.
    offset_ns: f64,
    /// Correction currently applied, ppb.
    corr_ppb: f64,
    /// Integral of the correction up to `true_ns`, ns.
    corr_integral_ns: f64,
    /// Every step the discipline made, ns.
    steps_ns: Vec<i64>,
    /// Sum of `steps_ns`.
    steps_sum_ns: i64,
    /// The kernel's leap steps so far (−1 s per insert, +1 s per delete), ns.
    leap_ns: i64,
    leap: LeapMachine,
    /// TAI−UTC as last set; the kernel moves it at each leap.
    tai_s: Option<i32>,
    /// Monotonic clock origin (an arbitrary uptime).
    mono_origin_ns: i64,
    reports: u64,
    last_report: SyncReport,
    /// Every change of the requested leap flag: (true time ns, flag).
    leap_requests: Vec<(i64, LeapChange)>,
}

impl<O: FreeRunning> State<O> {
    /// The whole-nanosecond part of the reading: start, true time, steps and
    /// the kernel's leap steps. Kept apart from [`State::frac_ns`] because an
    /// f64 holding a Unix time in ns resolves only 256 ns.
    fn int_ns(&self) -> i64 {
        self.start_unix_ns + self.true_ns + self.steps_sum_ns + self.leap_ns
    }

    /// The continuous part of the reading: offset plus the phase the
    /// oscillator and the correction have accumulated, ns.
    fn frac_ns(&self) -> f64 {
        self.offset_ns + self.osc.phase_gain_ns() + self.corr_integral_ns
    }

    /// The reading, to the nanosecond.
    #[expect(
        clippy::cast_possible_truncation,
        reason = "a simulated clock's error is seconds at most, far inside i64 ns"
    )]
    fn unix_ns(&self) -> i64 {
        self.int_ns() + self.frac_ns().round() as i64
    }
}

/// The simulated disciplined clock. Cloning shares it: the world advances true
/// time through one handle while the refclock steers another.
#[derive(Clone, Debug)]
pub struct SimClock<O> {
    state: Arc<Mutex<State<O>>>,
}

impl<O: FreeRunning> SimClock<O> {
    /// A clock at true time 0 reading `start_unix + initial_offset_ns`, driven by `osc`.
    pub fn new(osc: O, start_unix: UnixNanos, initial_offset_ns: f64) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                osc,
                start_unix_ns: start_unix.0,
                true_ns: 0,
                offset_ns: initial_offset_ns,
                corr_ppb: 0.0,
                corr_integral_ns: 0.0,
                steps_ns: Vec::new(),
                steps_sum_ns: 0,
                leap_ns: 0,
                leap: LeapMachine::default(),
                tai_s: None,
                mono_origin_ns: 1_000 * NANOS_PER_SEC,
                reports: 0,
                last_report: SyncReport::default(),
                leap_requests: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<O>> {
        // A panic while holding the lock can only come from a bug in this
        // module; the state is still consistent (plain numbers), so go on.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves true time forward to `true_ns` since start (never backwards),
    /// integrating the oscillator and the applied correction, and letting an
    /// armed leap second act when the reading crosses its moment.
    pub fn advance_to(&self, true_ns: i64) {
        let mut s = self.lock();
        if true_ns <= s.true_ns {
            return;
        }
        let before = s.unix_ns();
        let dt_s = (true_ns - s.true_ns) as f64 / NANOS_PER_SEC as f64;
        s.corr_integral_ns += s.corr_ppb * dt_s;
        s.true_ns = true_ns;
        s.osc.advance_to_s(true_ns as f64 / NANOS_PER_SEC as f64);
        let after = s.unix_ns();
        let step = s.leap.advance(before, after);
        if step != 0 {
            s.leap_ns += step;
            // The kernel moves TAI−UTC with the leap (insert: one more).
            s.tai_s = s.tai_s.map(|t| if step < 0 { t + 1 } else { t - 1 });
        }
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

    /// How fast the clock runs now against true time, ppb: the oscillator's
    /// error plus the correction.
    pub fn rate_ppb(&self) -> f64 {
        let s = self.lock();
        s.osc.freq_error_ppb() + s.corr_ppb
    }

    /// Something outside the discipline moves the clock (another program, a
    /// glitch): a real phase jump, not counted as a step.
    pub fn disturb(&self, offset_ns: f64) {
        self.lock().offset_ns += offset_ns;
    }

    /// Reads or changes the oscillator (its temperature, a frequency walk).
    pub fn with_oscillator<R>(&self, f: impl FnOnce(&mut O) -> R) -> R {
        f(&mut self.lock().osc)
    }

    /// How many times the discipline stepped the clock.
    pub fn steps(&self) -> u64 {
        self.lock().steps_ns.len() as u64
    }

    /// Every step the discipline made, ns, in order.
    pub fn step_offsets_ns(&self) -> Vec<i64> {
        self.lock().steps_ns.clone()
    }

    /// Net leap-second steps the kernel model applied, in seconds (−1 per insert).
    pub fn leap_steps_s(&self) -> i64 {
        self.lock().leap_ns / NANOS_PER_SEC
    }

    /// The leap flag (STA_INS/STA_DEL) as the discipline last set it.
    pub fn leap_flag(&self) -> LeapChange {
        self.lock().leap.flag()
    }

    /// The kernel's leap state (TIME_OK … TIME_WAIT).
    pub fn leap_state(&self) -> KernelLeapState {
        self.lock().leap.state()
    }

    /// Every change of the leap flag the discipline asked for, as (true time
    /// since start in ns, flag): shows when it armed and disarmed.
    pub fn leap_requests(&self) -> Vec<(i64, LeapChange)> {
        self.lock().leap_requests.clone()
    }

    /// TAI−UTC as the discipline set it and the leaps since moved it.
    pub fn tai_offset_s(&self) -> Option<i32> {
        self.lock().tai_s
    }

    /// The last quality report the discipline published.
    pub fn last_report(&self) -> SyncReport {
        self.lock().last_report
    }

    /// How many quality reports the discipline published.
    pub fn report_count(&self) -> u64 {
        self.lock().reports
    }
}

impl<O: FreeRunning> TimeSource for SimClock<O> {
    fn realtime(&self) -> UnixNanos {
        UnixNanos(self.lock().unix_ns())
    }

    #[expect(
        clippy::cast_possible_truncation,
        reason = "the phase gained is seconds at most, far inside i64 ns"
    )]
    fn monotonic(&self) -> MonoNanos {
        // CLOCK_MONOTONIC runs at the disciplined rate but ignores steps and leaps.
        let s = self.lock();
        let continuous = s.osc.phase_gain_ns() + s.corr_integral_ns;
        MonoNanos(s.mono_origin_ns + s.true_ns + continuous.round() as i64)
    }
}

impl<O: FreeRunning> Clock for SimClock<O> {
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
            s.steps_sum_ns += offset_ns;
            s.steps_ns.push(offset_ns);
        }
        Ok(self.monotonic())
    }

    fn set_leap(&self, leap: LeapChange) -> Result<(), ClockError> {
        let mut s = self.lock();
        if leap != s.leap.flag() {
            let at = s.true_ns;
            s.leap_requests.push((at, leap));
        }
        s.leap.set_flag(leap);
        Ok(())
    }

    fn report_sync(&self, report: SyncReport) -> Result<(), ClockError> {
        let mut s = self.lock();
        s.reports += 1;
        s.last_report = report;
        Ok(())
    }

    fn set_tai_offset_s(&self, tai_minus_utc_s: i32) -> Result<(), ClockError> {
        self.lock().tai_s = Some(tai_minus_utc_s);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
