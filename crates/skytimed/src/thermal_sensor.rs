//! The temperature sensor's thin shell: a thread that reads one sysfs or
//! hwmon file (`[refclock] temperature_sensor`, e.g. the Pi's
//! `/sys/class/thermal/thermal_zone0/temp`, millidegrees) every
//! `temperature_interval_ms` and hands each reading to the discipline. What a
//! reading means, and whether the sensor can be trusted, is the refclock
//! core's business (`skytime_refclock::thermal`): this only reads and parses.

use crate::discipline::{Input, InputSender};
use skytime_refclock::SensorReading;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest text a sensor file may hold; anything longer is not a reading.
const MAX_TEXT: usize = 64;

/// Parses a sensor file's text (one number, optional whitespace) into °C
/// with `scale` (°C per unit). Anything else is an unreadable reading, with
/// the reason, never a panic.
pub fn parse_reading(text: &str, scale: f64) -> SensorReading {
    let t = text.trim();
    if t.is_empty() {
        return SensorReading::Unreadable("empty sensor file".into());
    }
    if t.len() > MAX_TEXT {
        return SensorReading::Unreadable(format!("{} bytes is not a reading", t.len()));
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => SensorReading::Celsius(v * scale),
        _ => SensorReading::Unreadable(format!("{t:?} is not a number")),
    }
}

/// Reads the sensor once.
pub fn read_once(path: &Path, scale: f64) -> SensorReading {
    match std::fs::read(path) {
        Ok(bytes) => match std::str::from_utf8(&bytes) {
            Ok(text) => parse_reading(text, scale),
            Err(_) => SensorReading::Unreadable("sensor file is not text".into()),
        },
        Err(e) => SensorReading::Unreadable(format!("{}: {e}", path.display())),
    }
}

/// Starts the reader thread; it stops when `stop` is set or the discipline
/// has gone away.
pub fn spawn(
    path: PathBuf,
    scale: f64,
    interval: Duration,
    inputs: InputSender,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("temperature".into())
        .spawn(move || {
            tracing::info!(path = %path.display(), interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX), "reading the temperature sensor");
            while !stop.load(Ordering::Relaxed) {
                if !inputs.send(Input::Temperature(read_once(&path, scale))) {
                    break;
                }
                // Sleep in short steps so that stopping is prompt.
                let mut slept = Duration::ZERO;
                while slept < interval && !stop.load(Ordering::Relaxed) {
                    let step = (interval - slept).min(Duration::from_millis(100));
                    std::thread::sleep(step);
                    slept += step;
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_pi_thermal_zone_reads_millidegrees() {
        assert_eq!(
            parse_reading("48312\n", 0.001),
            SensorReading::Celsius(48.312)
        );
        assert_eq!(parse_reading(" 45.5 ", 1.0), SensorReading::Celsius(45.5));
    }

    #[test]
    fn garbage_is_unreadable_with_a_reason() {
        for text in ["", "\n", "abc", "NaN", "inf", "12 13", &"9".repeat(100)] {
            match parse_reading(text, 0.001) {
                SensorReading::Unreadable(why) => assert!(!why.is_empty()),
                other => panic!("{text:?} read as {other:?}"),
            }
        }
    }

    #[test]
    fn a_missing_file_is_unreadable_not_an_error() {
        let r = read_once(Path::new("/nonexistent/skytime/temp"), 0.001);
        assert!(matches!(r, SensorReading::Unreadable(_)), "{r:?}");
    }

    proptest! {
        #[test]
        fn any_text_parses_without_panicking(text in ".{0,80}") {
            let _ = parse_reading(&text, 0.001);
        }

        #[test]
        fn any_integer_reads_scaled(v in -100_000i64..200_000) {
            prop_assert_eq!(parse_reading(&v.to_string(), 0.001), SensorReading::Celsius(v as f64 * 0.001));
        }
    }
}
