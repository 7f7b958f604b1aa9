//! The temperature sensor's health and its smoothed reading.
//!
//! A sensor can fail in ways that look like weather: it freezes (a driver
//! that returns its last value forever), jumps (a different zone, a loose
//! probe), reads garbage (unparsable, out of range) or stops answering. Each
//! is detected here and turned into a fault, logged once when it starts and
//! once when it clears; while faulted, nothing downstream uses the readings.

use skytime_timebase::MonoNanos;
use tracing::{info, warn};

/// Readings outside this range (°C) are garbage, not weather.
const PLAUSIBLE_C: (f64, f64) = (-55.0, 150.0);
/// A change faster than this (K/s) plus [`JUMP_FLOOR_K`] is a jump.
const MAX_RATE_K_PER_S: f64 = 0.1;
const JUMP_FLOOR_K: f64 = 2.0;
/// Time constant of the smoothing, s.
pub const SMOOTHING_S: f64 = 20.0;
/// Consecutive plausible, mutually consistent readings that clear a
/// garbage or jump fault.
const RECOVER_READINGS: u32 = 10;
/// Chance of a healthy sensor repeating its value this many times in a row
/// that a freeze is declared at.
const FREEZE_FALSE_ALARM: f64 = 1e-6;
/// Never declare a freeze on fewer identical readings than this, nor wait
/// for more than [`FREEZE_MAX_S`] of them.
const FREEZE_MIN_READINGS: u32 = 5;
const FREEZE_MAX_S: f64 = 600.0;

/// One reading handed to the refclock core.
#[derive(Clone, Debug, PartialEq)]
pub enum SensorReading {
    /// Degrees Celsius (after the configured scale).
    Celsius(f64),
    /// The sensor could not be read or its text was not a number.
    Unreadable(String),
}

/// What is wrong with the sensor, if anything.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorHealth {
    /// No reading yet (or no sensor configured).
    Absent,
    /// Readings are in use.
    Ok,
    /// The value has not changed for longer than this sensor ever holds still.
    Frozen,
    /// The reading jumped faster than any weather.
    Jumped,
    /// Unreadable or implausible readings.
    Garbage,
    /// No reading for several intervals.
    Missing,
}

impl SensorHealth {
    /// Lower-case name, for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            SensorHealth::Absent => "absent",
            SensorHealth::Ok => "ok",
            SensorHealth::Frozen => "frozen",
            SensorHealth::Jumped => "jumped",
            SensorHealth::Garbage => "garbage",
            SensorHealth::Missing => "missing",
        }
    }
}

/// Health and smoothing of one sensor.
#[derive(Clone, Debug)]
pub struct SensorMonitor {
    interval_s: f64,
    health: SensorHealth,
    /// Last reading used (°C) and when.
    last: Option<(MonoNanos, f64)>,
    /// Last reading received at all, good or bad.
    last_any: Option<MonoNanos>,
    /// Smoothed reading (°C) and when it was last advanced.
    smoothed: Option<(MonoNanos, f64)>,
    /// The raw value repeated, and how many times in a row.
    same_value: Option<f64>,
    same_count: u32,
    /// Fraction of healthy readings equal to the previous one.
    p_same: f64,
    /// Readings consistent with each other since a fault began.
    recovering: u32,
    recover_last: Option<(MonoNanos, f64)>,
    /// Faults seen since start, for the operators.
    pub faults: u64,
}

impl SensorMonitor {
    /// A monitor for a sensor read every `interval_s` seconds.
    pub fn new(interval_s: f64) -> Self {
        Self {
            interval_s: interval_s.max(0.1),
            health: SensorHealth::Absent,
            last: None,
            last_any: None,
            smoothed: None,
            same_value: None,
            same_count: 0,
            p_same: 1.0,
            recovering: 0,
            recover_last: None,
            faults: 0,
        }
    }

    /// Current health.
    pub fn health(&self) -> SensorHealth {
        self.health
    }

    /// The last reading in use, °C.
    pub fn reading_c(&self) -> Option<f64> {
        self.last.map(|(_, v)| v)
    }

    /// The smoothed reading, °C, while healthy.
    pub fn smoothed_c(&self) -> Option<f64> {
        (self.health == SensorHealth::Ok)
            .then_some(self.smoothed.map(|(_, v)| v))
            .flatten()
    }

    fn set_health(&mut self, h: SensorHealth, detail: &str) {
        if h == self.health {
            return;
        }
        match h {
            SensorHealth::Ok => {
                info!(
                    from = self.health.as_str(),
                    "temperature sensor readings in use"
                )
            }
            SensorHealth::Absent => {}
            _ => {
                self.faults += 1;
                warn!(
                    fault = h.as_str(),
                    detail,
                    "temperature sensor fault: holdover falls back to the bound without a sensor"
                );
            }
        }
        self.health = h;
        if h != SensorHealth::Ok {
            self.recovering = 0;
            self.recover_last = None;
        }
    }

    /// Seconds of identical readings after which the sensor counts as frozen.
    fn freeze_readings(&self) -> u32 {
        let n = if self.p_same >= 1.0 {
            f64::INFINITY
        } else {
            FREEZE_FALSE_ALARM.ln() / self.p_same.max(1e-9).ln()
        };
        let max = (FREEZE_MAX_S / self.interval_s).ceil();
        let min = f64::from(FREEZE_MIN_READINGS);
        let count = n.clamp(min, max.max(min));
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "clamped to at least FREEZE_MIN_READINGS; a float-to-int cast saturates at u32::MAX"
        )]
        let count = count as u32;
        count
    }

    /// One reading at `at`. Returns the value in use (°C) when healthy.
    pub fn on_reading(&mut self, at: MonoNanos, reading: &SensorReading) -> Option<f64> {
        self.last_any = Some(at);
        let v = match reading {
            SensorReading::Celsius(v)
                if v.is_finite() && (PLAUSIBLE_C.0..=PLAUSIBLE_C.1).contains(v) =>
            {
                *v
            }
            SensorReading::Celsius(v) => {
                self.set_health(
                    SensorHealth::Garbage,
                    &format!("{v} °C is not a plausible temperature"),
                );
                return None;
            }
            SensorReading::Unreadable(why) => {
                self.set_health(SensorHealth::Garbage, why);
                return None;
            }
        };
        // Freeze: the very same value for longer than this sensor ever held still.
        if self.same_value == Some(v) {
            self.same_count += 1;
        } else {
            self.same_value = Some(v);
            self.same_count = 1;
        }
        let frozen = self.same_count > self.freeze_readings();
        match self.health {
            SensorHealth::Ok
            | SensorHealth::Absent
            | SensorHealth::Missing
            | SensorHealth::Frozen => {
                if let Some((t, prev)) = self.last
                    && self.health != SensorHealth::Absent
                {
                    let dt = (at.nanos_since(t) as f64 / 1e9).max(0.0);
                    if (v - prev).abs() > JUMP_FLOOR_K + MAX_RATE_K_PER_S * dt {
                        self.set_health(
                            SensorHealth::Jumped,
                            &format!("{prev:.3} °C to {v:.3} °C in {dt:.0} s"),
                        );
                        self.recover_last = Some((at, v));
                        return None;
                    }
                }
                if frozen {
                    self.set_health(
                        SensorHealth::Frozen,
                        &format!("{v} °C repeated {} times", self.same_count),
                    );
                    return None;
                }
                if let Some((_, prev)) = self.last {
                    #[expect(
                        clippy::float_cmp,
                        reason = "a frozen sensor repeats the identical reading, bit for bit"
                    )]
                    let same = if prev == v { 1.0 } else { 0.0 };
                    self.p_same += (same - self.p_same) / 100.0;
                }
                self.set_health(SensorHealth::Ok, "");
                self.accept(at, v);
                Some(v)
            }
            SensorHealth::Jumped | SensorHealth::Garbage => {
                let consistent = self.recover_last.is_none_or(|(t, prev)| {
                    let dt = (at.nanos_since(t) as f64 / 1e9).max(0.0);
                    (v - prev).abs() <= JUMP_FLOOR_K + MAX_RATE_K_PER_S * dt
                });
                self.recovering = if consistent { self.recovering + 1 } else { 1 };
                self.recover_last = Some((at, v));
                if self.recovering >= RECOVER_READINGS && !frozen {
                    // A new level: smoothing starts again from it.
                    self.smoothed = None;
                    self.set_health(SensorHealth::Ok, "");
                    self.accept(at, v);
                    return Some(v);
                }
                None
            }
        }
    }

    fn accept(&mut self, at: MonoNanos, v: f64) {
        self.last = Some((at, v));
        self.smoothed = Some(match self.smoothed {
            Some((t, s)) => {
                let dt = (at.nanos_since(t) as f64 / 1e9).max(0.0);
                let a = 1.0 - (-dt / SMOOTHING_S).exp();
                (at, s + a * (v - s))
            }
            None => (at, v),
        });
    }

    /// Time passing: a sensor silent for several intervals is missing.
    pub fn on_tick(&mut self, now: MonoNanos) {
        let Some(last) = self.last_any else { return };
        let silent_s = now.nanos_since(last) as f64 / 1e9;
        if silent_s > (5.0 * self.interval_s).max(10.0) && self.health != SensorHealth::Absent {
            self.set_health(
                SensorHealth::Missing,
                &format!("no reading for {silent_s:.0} s"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[expect(
        clippy::cast_possible_truncation,
        reason = "test times are thousands of seconds, far inside i64 nanoseconds"
    )]
    fn at(s: f64) -> MonoNanos {
        MonoNanos((s * 1e9) as i64)
    }

    /// A healthy noisy sensor for `n` readings from second `from`.
    fn healthy(m: &mut SensorMonitor, from: usize, n: usize) {
        for i in from..from + n {
            let v = 40.0 + 0.05 * ((i * 7919) % 13) as f64;
            m.on_reading(at(i as f64), &SensorReading::Celsius(v));
        }
    }

    #[test]
    fn a_noisy_sensor_is_healthy_and_smoothed() {
        let mut m = SensorMonitor::new(1.0);
        assert_eq!(m.health(), SensorHealth::Absent);
        healthy(&mut m, 0, 300);
        assert_eq!(m.health(), SensorHealth::Ok);
        let s = m.smoothed_c().expect("smoothed");
        assert!((s - 40.3).abs() < 0.3, "{s}");
    }

    #[test]
    fn garbage_is_a_fault_that_clears_after_consistent_readings() {
        let mut m = SensorMonitor::new(1.0);
        healthy(&mut m, 0, 100);
        assert_eq!(
            m.on_reading(at(100.0), &SensorReading::Unreadable("EIO".into())),
            None
        );
        assert_eq!(m.health(), SensorHealth::Garbage);
        assert_eq!(
            m.on_reading(at(101.0), &SensorReading::Celsius(f64::NAN)),
            None
        );
        assert_eq!(
            m.on_reading(at(102.0), &SensorReading::Celsius(4000.0)),
            None
        );
        assert_eq!(m.health(), SensorHealth::Garbage);
        assert_eq!(m.smoothed_c(), None, "nothing used while faulted");
        healthy(&mut m, 103, 12);
        assert_eq!(m.health(), SensorHealth::Ok);
        assert_eq!(m.faults, 1, "one fault, logged once");
    }

    #[test]
    fn a_jump_is_a_fault() {
        let mut m = SensorMonitor::new(1.0);
        healthy(&mut m, 0, 100);
        assert_eq!(m.on_reading(at(100.0), &SensorReading::Celsius(48.0)), None);
        assert_eq!(m.health(), SensorHealth::Jumped);
        // The new level, held: accepted after a while, smoothing restarted.
        for i in 101..115 {
            m.on_reading(
                at(f64::from(i)),
                &SensorReading::Celsius(48.0 + 0.01 * f64::from(i % 3)),
            );
        }
        assert_eq!(m.health(), SensorHealth::Ok);
        assert!(m.smoothed_c().is_some_and(|s| (s - 48.0).abs() < 0.1));
    }

    #[test]
    fn a_frozen_noisy_sensor_is_caught_within_seconds() {
        let mut m = SensorMonitor::new(1.0);
        healthy(&mut m, 0, 600);
        for i in 600..640 {
            m.on_reading(at(f64::from(i)), &SensorReading::Celsius(40.123));
        }
        assert_eq!(m.health(), SensorHealth::Frozen);
        healthy(&mut m, 640, 3);
        assert_eq!(m.health(), SensorHealth::Ok);
    }

    #[test]
    fn a_coarse_sensor_that_often_repeats_is_not_called_frozen_quickly() {
        let mut m = SensorMonitor::new(1.0);
        for i in 0..600 {
            let v = if (i / 20) % 2 == 0 { 40.0 } else { 40.5 };
            m.on_reading(at(f64::from(i)), &SensorReading::Celsius(v));
        }
        assert_eq!(m.health(), SensorHealth::Ok);
    }

    #[test]
    fn a_silent_sensor_is_missing() {
        let mut m = SensorMonitor::new(2.0);
        healthy(&mut m, 0, 10);
        m.on_tick(at(15.0));
        assert_eq!(m.health(), SensorHealth::Ok);
        m.on_tick(at(30.0));
        assert_eq!(m.health(), SensorHealth::Missing);
        healthy(&mut m, 31, 1);
        assert_eq!(m.health(), SensorHealth::Ok);
    }
}
