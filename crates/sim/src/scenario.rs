//! Scenario files: one TOML file describes the sky, the receiver, the PPS line
//! and the oscillator for one simulated run.
//!
//! These files are test fixtures, not daemon configuration, so an unknown key is
//! a hard error (a typo must not silently turn a failure-mode scenario into a
//! benign one).

use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use serde::{Deserialize, Serialize};
use skytime_timebase::{LeapChange, NANOS_PER_SEC, UnixNanos};
use std::path::Path;

/// Why a scenario could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// File path.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The TOML is malformed, a key is unknown, or a value has the wrong type.
    #[error("scenario {path}: {message}")]
    Parse {
        /// File path (or `<string>`).
        path: String,
        /// The TOML parser's message, with line and column.
        message: String,
    },
    /// The values parse but make no sense together.
    #[error("scenario {path}: {}", .problems.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// File path (or `<string>`).
        path: String,
        /// (key, message) for every problem found.
        problems: Vec<(String, String)>,
    },
}

/// A window of simulated time, in seconds since the start of the run.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// First second of the window (inclusive).
    pub from_s: f64,
    /// End of the window (exclusive).
    pub to_s: f64,
}

impl Window {
    /// Whether true time `t_s` lies inside the window.
    pub fn contains(&self, t_s: f64) -> bool {
        t_s >= self.from_s && t_s < self.to_s
    }
}

/// A period during which the receiver labels its output with the wrong second.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrongSecond {
    /// Start of the period, seconds since the start of the run.
    pub from_s: f64,
    /// End of the period (exclusive).
    pub to_s: f64,
    /// Seconds added to the true label (e.g. 1 or -1).
    pub offset_s: i64,
}

/// A change of ambient temperature, applied as a linear ramp.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemperatureChange {
    /// When the ramp starts, seconds since the start of the run.
    pub at_s: f64,
    /// Total temperature change, kelvin.
    pub kelvin_step: f64,
    /// Ramp duration in seconds (0: an instant step).
    #[serde(default)]
    pub ramp_s: f64,
}

/// Heating by load (an NTP flood warming the SoC): first-order towards
/// `kelvin` with `time_constant_s` while on, cooling back after.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadHeat {
    /// When the load starts, seconds since the start of the run.
    pub from_s: f64,
    /// When it stops.
    pub to_s: f64,
    /// Temperature rise it would settle at, kelvin.
    pub kelvin: f64,
    /// Thermal time constant, seconds.
    pub time_constant_s: f64,
}

/// The temperature coefficient changing (a different airflow, a crystal
/// past its turnover point).
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoefficientChange {
    /// From when, seconds since the start of the run.
    pub at_s: f64,
    /// The coefficient from then on, ppm/K.
    pub ppm_per_k: f64,
}

/// A sensor reading offset by `offset_k` during a window (a jump).
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorJump {
    /// Start, seconds since the start of the run.
    pub from_s: f64,
    /// End (exclusive).
    pub to_s: f64,
    /// Added to the reading, kelvin.
    pub offset_k: f64,
}

/// `[sensor]`: the box's temperature sensor, as the discipline would read it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorSection {
    /// Whether the discipline gets readings at all.
    pub enabled: bool,
    /// Reading at the start, °C.
    pub base_c: f64,
    /// Gaussian noise of each reading, kelvin.
    pub noise_k: f64,
    /// Resolution of the readings, kelvin (0: exact).
    pub quantisation_k: f64,
    /// First-order thermal lag of the sensor behind the box, seconds.
    pub lag_s: f64,
    /// Seconds between readings (whole seconds).
    pub interval_s: u64,
    /// Windows in which the sensor repeats its last value.
    pub freeze: Vec<Window>,
    /// Windows in which it reads offset.
    pub jump: Vec<SensorJump>,
    /// Windows in which it returns garbage.
    pub garbage: Vec<Window>,
    /// Windows in which it cannot be read at all (no reading delivered).
    pub missing: Vec<Window>,
}

impl Default for SensorSection {
    fn default() -> Self {
        Self {
            enabled: false,
            base_c: 45.0,
            noise_k: 0.1,
            quantisation_k: 0.001,
            lag_s: 30.0,
            interval_s: 1,
            freeze: Vec::new(),
            jump: Vec::new(),
            garbage: Vec::new(),
            missing: Vec::new(),
        }
    }
}

/// `[clock]`: the free-running local oscillator and where the clock starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClockSection {
    /// Local clock minus true time at the start, seconds.
    pub initial_offset_s: f64,
    /// Natural frequency error at the start, ppm (positive: runs fast).
    pub initial_freq_ppm: f64,
    /// Standard deviation of the frequency step taken each second, ppm.
    pub freq_random_walk_ppm: f64,
    /// Frequency change per kelvin of temperature change, ppm/K.
    pub temperature_coeff_ppm_per_k: f64,
    /// Quadratic term: frequency change per kelvin² of temperature change
    /// (from the start), ppm/K² (a crystal that bends away from linear).
    pub temperature_quadratic_ppm_per_k2: f64,
    /// Temperature changes over the run.
    pub temperature: Vec<TemperatureChange>,
    /// Temperature changes the crystal feels but the sensor does not see
    /// (a heater beside the crystal, away from the sensor).
    pub hidden_heat: Vec<TemperatureChange>,
    /// Heating by load, felt by both.
    pub load_heat: Vec<LoadHeat>,
    /// The coefficient changing during the run.
    pub coefficient_changes: Vec<CoefficientChange>,
}

/// `[pps]`: the pulse line and the kernel's timestamping of it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpsSection {
    /// Gaussian standard deviation of the timestamp noise, ns.
    pub jitter_ns: f64,
    /// Constant delay from the true edge to its timestamp, ns (unknown to the box).
    pub latency_ns: f64,
    /// Periods without pulses.
    pub outages: Vec<Window>,
    /// Mean rate of extra edges at random instants (noise on the line), per hour.
    pub spurious_per_hour: f64,
}

/// `[receiver]`: the receiver's time pulse as a timing receiver (u-blox
/// M8T/F9T) makes it: cut from its own clock's ticks (the sawtooth), with
/// UBX-TIM-TP reporting each pulse's quantisation error before it, and
/// survey-in progress. Empty: an exact pulse and NMEA only.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReceiverSection {
    /// Frequency of the clock the pulse is cut from, Hz (48e6 on an M8T,
    /// ±10.4 ns; 0: the pulse leaves exactly on the second).
    pub timing_clock_hz: f64,
    /// That clock's frequency error, ppb: how fast its ticks slide against
    /// the true seconds, which sets the sawtooth's shape.
    pub clock_offset_ppb: f64,
    /// Standard deviation of that clock's frequency step each second, ppb.
    pub clock_random_walk_ppb: f64,
    /// Send UBX-TIM-TP (the next pulse's time and qErr) after each second's
    /// NMEA, before the pulse it describes, as u-blox parts do.
    pub tim_tp: bool,
    /// Gaussian error of the reported qErr against the real one, ps.
    pub q_err_noise_ps: f64,
    /// Probability that a second's TIM-TP is not sent.
    pub tim_tp_drop_probability: f64,
    /// Probability that it is sent twice.
    pub tim_tp_duplicate_probability: f64,
    /// Probability that it is sent late: after the pulse it describes, with
    /// the next second's output.
    pub tim_tp_late_probability: f64,
    /// Survey-in: send TIM-SVIN each second, finishing once this many
    /// seconds have passed and `survey_in_accuracy_m` is reached (0: no survey-in).
    pub survey_in_min_s: u64,
    /// The accuracy survey-in must reach, m.
    pub survey_in_accuracy_m: f64,
}

/// `[nmea]`: the receiver's serial output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NmeaSection {
    /// When the last byte of a second's burst arrives, ms after the start of
    /// the second it labels.
    pub delay_ms: f64,
    /// Gaussian standard deviation of that delay, ms (the result is kept inside
    /// the labelled second).
    pub jitter_ms: f64,
    /// Periods without any output (cable or receiver gone).
    pub outages: Vec<Window>,
    /// Periods in which the receiver labels the wrong second.
    pub wrong_second: Vec<WrongSecond>,
    /// Periods in which the receiver keeps talking but reports no valid fix
    /// (status V, quality 0) while the PPS keeps pulsing. skytime extension.
    pub invalid_fix: Vec<Window>,
}

impl Default for NmeaSection {
    fn default() -> Self {
        Self {
            delay_ms: 300.0,
            jitter_ms: 0.0,
            outages: Vec::new(),
            wrong_second: Vec::new(),
            invalid_fix: Vec::new(),
        }
    }
}

/// `[leap]`: one leap second, announced by the receiver in the preceding hours.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeapSection {
    /// The moment of an inserted second: `YYYY-MM-DDT23:59:60Z`, the midnight
    /// after it, or just the date whose end gets it.
    pub insert_at_utc: Option<String>,
    /// The moment of a deleted second: `YYYY-MM-DDT23:59:59Z`, the midnight
    /// after it, or just the date whose end loses it.
    pub delete_at_utc: Option<String>,
}

/// A leap second resolved from `[leap]`: which kind, at the end of which UTC day.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LeapEvent {
    /// Insert or delete (never `None`).
    pub change: LeapChange,
    /// The UTC day whose last minute has 61 (or 59) seconds.
    pub day: NaiveDate,
}

impl LeapEvent {
    /// POSIX seconds of the midnight that ends `day`, where the kernel acts.
    pub fn midnight_unix_secs(&self) -> i64 {
        let next = self.day.succ_opt().unwrap_or(self.day);
        next.and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp())
    }
}

/// One scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name printed in the JSON summary.
    pub name: String,
    /// Simulated duration, seconds.
    pub duration_s: u64,
    /// Seconds excluded from the offset statistics (start-up transient).
    #[serde(default)]
    pub warmup_s: u64,
    /// Seed of every random process in the run; same seed, same run.
    #[serde(default)]
    pub seed: u64,
    /// True UTC at the start of the run (RFC 3339).
    #[serde(default = "default_start_utc")]
    pub start_utc: String,
    /// The local oscillator.
    #[serde(default)]
    pub clock: ClockSection,
    /// The pulse line.
    #[serde(default)]
    pub pps: PpsSection,
    /// The receiver's serial output.
    #[serde(default)]
    pub nmea: NmeaSection,
    /// The receiver's time pulse and timing messages (u-blox timing parts).
    #[serde(default)]
    pub receiver: ReceiverSection,
    /// An optional leap second.
    #[serde(default)]
    pub leap: LeapSection,
    /// The temperature sensor.
    #[serde(default)]
    pub sensor: SensorSection,
}

fn default_start_utc() -> String {
    "2026-01-01T00:00:00Z".to_string()
}

/// Parses an RFC 3339 instant that may name 23:59:60 (chrono's leap representation).
fn parse_utc(value: &str) -> Option<DateTime<chrono::Utc>> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn parse_leap(value: &str, change: LeapChange) -> Result<LeapEvent, String> {
    if let Ok(day) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return check_leap_day(LeapEvent { change, day });
    }
    let t = parse_utc(value).ok_or_else(|| {
        format!("`{value}` is neither a date (YYYY-MM-DD) nor an RFC 3339 UTC instant")
    })?;
    let (h, m, s, leap_sec) = (
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() >= 1_000_000_000,
    );
    let day = match (h, m, s, leap_sec, change) {
        (0, 0, 0, false, _) => t.date_naive().pred_opt().unwrap_or(t.date_naive()),
        (23, 59, 59, true, LeapChange::Insert) => t.date_naive(),
        (23, 59, 59, false, LeapChange::Delete) => t.date_naive(),
        _ => {
            return Err(format!(
                "`{value}` is not where a leap second happens: use the date, the midnight after it, or {}",
                if change == LeapChange::Insert {
                    "23:59:60"
                } else {
                    "23:59:59"
                }
            ));
        }
    };
    check_leap_day(LeapEvent { change, day })
}

fn check_leap_day(event: LeapEvent) -> Result<LeapEvent, String> {
    let last_of_month = event
        .day
        .succ_opt()
        .is_some_and(|d| d.month() != event.day.month());
    if last_of_month {
        Ok(event)
    } else {
        Err(format!(
            "{} is not the last day of a month; leap seconds happen only there",
            event.day
        ))
    }
}

impl Scenario {
    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses and validates scenario text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let problems = scenario.validate();
        if problems.is_empty() {
            Ok(scenario)
        } else {
            Err(ScenarioError::Invalid {
                path: origin.to_string(),
                problems,
            })
        }
    }

    /// True UTC at the start of the run as a POSIX instant.
    pub fn start_unix_nanos(&self) -> Option<UnixNanos> {
        let t = parse_utc(&self.start_utc)?;
        let nanos = i64::from(t.nanosecond() % 1_000_000_000);
        Some(UnixNanos(t.timestamp() * NANOS_PER_SEC + nanos))
    }

    /// The leap second of `[leap]`, resolved (`None` when there is none or it is invalid).
    pub fn leap_event(&self) -> Option<LeapEvent> {
        match (&self.leap.insert_at_utc, &self.leap.delete_at_utc) {
            (Some(v), None) => parse_leap(v, LeapChange::Insert).ok(),
            (None, Some(v)) => parse_leap(v, LeapChange::Delete).ok(),
            _ => None,
        }
    }
}

mod directory;
mod validate;

pub use directory::{TARGETS_FILE, project_scenarios};

#[cfg(test)]
mod tests;
