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

    /// Every semantic problem, as (key, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = Vec::new();
        let mut bad = |k: &str, m: String| p.push((k.to_string(), m));
        if self.name.trim().is_empty() {
            bad("name", "must not be empty".into());
        }
        if self.duration_s == 0 {
            bad("duration_s", "must be at least 1".into());
        }
        if self.duration_s > 40 * 86_400 {
            bad(
                "duration_s",
                "longer than 40 days; split the scenario".into(),
            );
        }
        if self.warmup_s >= self.duration_s {
            bad(
                "warmup_s",
                format!("must be less than duration_s ({})", self.duration_s),
            );
        }
        match parse_utc(&self.start_utc) {
            None => bad(
                "start_utc",
                format!("`{}` is not an RFC 3339 instant", self.start_utc),
            ),
            Some(t) if t.nanosecond() != 0 => bad(
                "start_utc",
                "must be a whole second (the simulated receiver labels whole seconds)".into(),
            ),
            Some(_) => {}
        }
        let finite_nonneg = |v: f64| v.is_finite() && v >= 0.0;
        let c = &self.clock;
        for (k, v) in [
            ("clock.initial_offset_s", c.initial_offset_s),
            ("clock.initial_freq_ppm", c.initial_freq_ppm),
            (
                "clock.temperature_coeff_ppm_per_k",
                c.temperature_coeff_ppm_per_k,
            ),
        ] {
            if !v.is_finite() {
                bad(k, "must be a finite number".into());
            }
        }
        if c.initial_offset_s.abs() > 1.0e6 {
            bad("clock.initial_offset_s", "beyond ±1e6 s".into());
        }
        if c.initial_freq_ppm.abs() > 500.0 {
            bad(
                "clock.initial_freq_ppm",
                "beyond ±500 ppm (the kernel's range)".into(),
            );
        }
        if !finite_nonneg(c.freq_random_walk_ppm) {
            bad("clock.freq_random_walk_ppm", "must be ≥ 0".into());
        }
        for (key, list) in [
            ("clock.temperature", &c.temperature),
            ("clock.hidden_heat", &c.hidden_heat),
        ] {
            for (i, t) in list.iter().enumerate() {
                if !finite_nonneg(t.at_s) || !finite_nonneg(t.ramp_s) || !t.kelvin_step.is_finite()
                {
                    bad(
                        &format!("{key}[{i}]"),
                        "at_s and ramp_s must be ≥ 0, kelvin_step finite".into(),
                    );
                }
            }
        }
        for (i, l) in c.load_heat.iter().enumerate() {
            let ok = finite_nonneg(l.from_s)
                && l.to_s.is_finite()
                && l.to_s > l.from_s
                && l.kelvin.is_finite()
                && l.time_constant_s.is_finite()
                && l.time_constant_s > 0.0;
            if !ok {
                bad(
                    &format!("clock.load_heat[{i}]"),
                    "needs 0 ≤ from_s < to_s, finite kelvin, time_constant_s > 0".into(),
                );
            }
        }
        for (i, k) in c.coefficient_changes.iter().enumerate() {
            if !finite_nonneg(k.at_s) || !k.ppm_per_k.is_finite() || k.ppm_per_k.abs() > 10.0 {
                bad(
                    &format!("clock.coefficient_changes[{i}]"),
                    "needs at_s ≥ 0 and |ppm_per_k| ≤ 10".into(),
                );
            }
        }
        let sn = &self.sensor;
        if !(sn.base_c.is_finite() && (-40.0..=100.0).contains(&sn.base_c)) {
            bad("sensor.base_c", "must be between -40 and 100 °C".into());
        }
        for (k, v) in [
            ("sensor.noise_k", sn.noise_k),
            ("sensor.quantisation_k", sn.quantisation_k),
            ("sensor.lag_s", sn.lag_s),
        ] {
            if !finite_nonneg(v) {
                bad(k, "must be ≥ 0".into());
            }
        }
        if !(1..=600).contains(&sn.interval_s) {
            bad("sensor.interval_s", "must be 1..=600".into());
        }
        for (i, j) in sn.jump.iter().enumerate() {
            if !(finite_nonneg(j.from_s)
                && j.to_s.is_finite()
                && j.to_s > j.from_s
                && j.offset_k.is_finite())
            {
                bad(
                    &format!("sensor.jump[{i}]"),
                    "needs 0 ≤ from_s < to_s and a finite offset_k".into(),
                );
            }
        }
        if !finite_nonneg(self.pps.jitter_ns) {
            bad("pps.jitter_ns", "must be ≥ 0".into());
        }
        if !self.pps.latency_ns.is_finite() || self.pps.latency_ns.abs() >= 1.0e8 {
            bad("pps.latency_ns", "must be finite and under 0.1 s".into());
        }
        if !finite_nonneg(self.pps.spurious_per_hour) || self.pps.spurious_per_hour > 36_000.0 {
            bad(
                "pps.spurious_per_hour",
                "must be between 0 and 36000".into(),
            );
        }
        let n = &self.nmea;
        if !(0.0..1000.0).contains(&n.delay_ms) {
            bad(
                "nmea.delay_ms",
                "must be in 0..1000 (the burst ends inside the second it labels)".into(),
            );
        }
        if !finite_nonneg(n.jitter_ms) || n.jitter_ms > 500.0 {
            bad("nmea.jitter_ms", "must be between 0 and 500".into());
        }
        let windows = [
            ("pps.outages", &self.pps.outages),
            ("nmea.outages", &n.outages),
            ("nmea.invalid_fix", &n.invalid_fix),
            ("sensor.freeze", &self.sensor.freeze),
            ("sensor.garbage", &self.sensor.garbage),
            ("sensor.missing", &self.sensor.missing),
        ];
        for (key, list) in windows {
            for (i, w) in list.iter().enumerate() {
                if !(w.from_s.is_finite()
                    && w.to_s.is_finite()
                    && w.from_s >= 0.0
                    && w.to_s > w.from_s)
                {
                    bad(&format!("{key}[{i}]"), "needs 0 ≤ from_s < to_s".into());
                }
            }
        }
        for (i, w) in n.wrong_second.iter().enumerate() {
            if !(w.from_s.is_finite() && w.to_s.is_finite() && w.from_s >= 0.0 && w.to_s > w.from_s)
            {
                bad(
                    &format!("nmea.wrong_second[{i}]"),
                    "needs 0 ≤ from_s < to_s".into(),
                );
            }
            if w.offset_s == 0 {
                bad(
                    &format!("nmea.wrong_second[{i}].offset_s"),
                    "0 is not a wrong second".into(),
                );
            }
        }
        let r = &self.receiver;
        if !finite_nonneg(r.timing_clock_hz)
            || (r.timing_clock_hz > 0.0 && !(1e6..=1e10).contains(&r.timing_clock_hz))
        {
            bad(
                "receiver.timing_clock_hz",
                "must be 0 (exact pulse) or between 1e6 and 1e10".into(),
            );
        }
        if !r.clock_offset_ppb.is_finite() || r.clock_offset_ppb.abs() > 100_000.0 {
            bad(
                "receiver.clock_offset_ppb",
                "must be finite and within ±100000".into(),
            );
        }
        for (key, v) in [
            ("receiver.clock_random_walk_ppb", r.clock_random_walk_ppb),
            ("receiver.q_err_noise_ps", r.q_err_noise_ps),
        ] {
            if !finite_nonneg(v) {
                bad(key, "must be ≥ 0".into());
            }
        }
        for (key, v) in [
            (
                "receiver.tim_tp_drop_probability",
                r.tim_tp_drop_probability,
            ),
            (
                "receiver.tim_tp_duplicate_probability",
                r.tim_tp_duplicate_probability,
            ),
            (
                "receiver.tim_tp_late_probability",
                r.tim_tp_late_probability,
            ),
        ] {
            if !(0.0..=1.0).contains(&v) {
                bad(key, "must be between 0 and 1".into());
            }
        }
        if r.survey_in_min_s > 0
            && !(r.survey_in_accuracy_m.is_finite() && r.survey_in_accuracy_m > 0.0)
        {
            bad(
                "receiver.survey_in_accuracy_m",
                "must be > 0 when survey_in_min_s is set".into(),
            );
        }
        match (&self.leap.insert_at_utc, &self.leap.delete_at_utc) {
            (Some(_), Some(_)) => bad(
                "leap",
                "give insert_at_utc or delete_at_utc, not both".into(),
            ),
            (Some(v), None) => {
                if let Err(m) = parse_leap(v, LeapChange::Insert) {
                    bad("leap.insert_at_utc", m);
                }
            }
            (None, Some(v)) => {
                if let Err(m) = parse_leap(v, LeapChange::Delete) {
                    bad("leap.delete_at_utc", m);
                }
            }
            (None, None) => {}
        }
        if let (Some(ev), Some(start)) = (self.leap_event(), self.start_unix_nanos()) {
            if ev.midnight_unix_secs() * NANOS_PER_SEC <= start.0 {
                bad("leap", "the leap second is before start_utc".into());
            }
        }
        p
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

/// The file in a scenario directory that holds targets, not a scenario.
pub const TARGETS_FILE: &str = "targets.toml";

/// Every scenario file (`*.toml` except [`TARGETS_FILE`]) in `dir`, loaded and
/// in natural order (s2 before s10), for benchmarks and batch runs.
pub fn project_scenarios(dir: &Path) -> Result<Vec<(std::path::PathBuf, Scenario)>, ScenarioError> {
    let read_err = |source| ScenarioError::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        let is_toml = path.extension().is_some_and(|e| e == "toml");
        let is_targets = path.file_name().is_some_and(|n| n == TARGETS_FILE);
        if is_toml && !is_targets {
            paths.push(path);
        }
    }
    // By stem: with the extension, "x-late.toml" would sort before "x.toml".
    paths.sort_by_key(|p| {
        natural_key(
            &p.file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
    });
    paths
        .into_iter()
        .map(|p| Scenario::load(&p).map(|s| (p, s)))
        .collect()
}

/// Splits a name into text and number runs so that "s10" sorts after "s2".
fn natural_key(name: &str) -> Vec<(String, u64)> {
    let mut key = Vec::new();
    let mut text = String::new();
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            let mut n = u64::from(c as u8 - b'0');
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                n = n.saturating_mul(10).saturating_add(u64::from(d));
                chars.next();
            }
            key.push((std::mem::take(&mut text), n));
        } else {
            text.push(c);
        }
    }
    key.push((text, 0));
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
name = "full"
duration_s = 100
warmup_s = 10
seed = 7
start_utc = "2016-12-31T23:00:00Z"
[clock]
initial_offset_s = 0.1
initial_freq_ppm = 10.0
freq_random_walk_ppm = 0.001
temperature_coeff_ppm_per_k = 0.1
temperature = [ { at_s = 10, kelvin_step = 4.0, ramp_s = 900 } ]
[pps]
jitter_ns = 5
latency_ns = 3
outages = [ { from_s = 1, to_s = 2 } ]
spurious_per_hour = 2
[nmea]
delay_ms = 350
jitter_ms = 50
outages = [ { from_s = 1, to_s = 2 } ]
wrong_second = [ { from_s = 3, to_s = 4, offset_s = 1 } ]
[receiver]
timing_clock_hz = 48e6
clock_offset_ppb = 150.3
clock_random_walk_ppb = 0.05
tim_tp = true
q_err_noise_ps = 100
tim_tp_drop_probability = 0.1
tim_tp_duplicate_probability = 0.1
tim_tp_late_probability = 0.1
survey_in_min_s = 300
survey_in_accuracy_m = 2.0
[leap]
insert_at_utc = "2016-12-31T23:59:60Z"
"#;

    #[test]
    fn every_key_of_the_issue_is_accepted() {
        let s = Scenario::parse(FULL, "full").expect("full scenario parses");
        assert_eq!(s.clock.temperature[0].ramp_s, 900.0);
        assert_eq!(s.nmea.wrong_second[0].offset_s, 1);
        let leap = s.leap_event().expect("leap resolved");
        assert_eq!(leap.change, LeapChange::Insert);
        assert_eq!(
            leap.day,
            NaiveDate::from_ymd_opt(2016, 12, 31).expect("date")
        );
        assert_eq!(leap.midnight_unix_secs(), 1_483_228_800);
    }

    #[test]
    fn unknown_keys_are_errors_at_every_level() {
        for (from, to) in [
            ("seed = 7", "sede = 7"),
            ("jitter_ns = 5", "jiter_ns = 5"),
            ("ramp_s = 900", "ramp = 900"),
            ("offset_s = 1", "offset = 1"),
            ("[leap]", "[leap]\nwhen = 1"),
            ("tim_tp = true", "timtp = true"),
        ] {
            let text = FULL.replacen(from, to, 1);
            let err = Scenario::parse(&text, "typo").expect_err(to);
            assert!(err.to_string().contains("unknown field"), "{to}: {err}");
        }
    }

    #[test]
    fn leap_forms_resolve_to_the_same_day_and_bad_ones_are_named() {
        for v in ["2016-12-31", "2017-01-01T00:00:00Z", "2016-12-31T23:59:60Z"] {
            let e = parse_leap(v, LeapChange::Insert).expect(v);
            assert_eq!(e.day.to_string(), "2016-12-31");
        }
        assert!(parse_leap("2016-12-31T23:59:59Z", LeapChange::Delete).is_ok());
        assert!(parse_leap("2016-12-31T23:59:59Z", LeapChange::Insert).is_err());
        assert!(parse_leap("2016-12-30", LeapChange::Insert).is_err());
        let text = FULL.replace("2016-12-31T23:59:60Z", "2016-12-15T12:00:00Z");
        let err = Scenario::parse(&text, "x").expect_err("bad leap");
        assert!(err.to_string().contains("leap.insert_at_utc"), "{err}");
    }

    #[test]
    fn semantic_problems_name_their_keys() {
        let text = FULL
            .replace("warmup_s = 10", "warmup_s = 100")
            .replace("delay_ms = 350", "delay_ms = 1200")
            .replace("offset_s = 1", "offset_s = 0")
            .replace("23:00:00Z", "23:00:00.5Z")
            .replace("timing_clock_hz = 48e6", "timing_clock_hz = 5")
            .replace(
                "tim_tp_late_probability = 0.1",
                "tim_tp_late_probability = 2",
            );
        let err = Scenario::parse(&text, "x").expect_err("invalid");
        let msg = err.to_string();
        for key in [
            "warmup_s",
            "nmea.delay_ms",
            "nmea.wrong_second[0].offset_s",
            "start_utc",
            "receiver.timing_clock_hz",
            "receiver.tim_tp_late_probability",
        ] {
            assert!(msg.contains(key), "{key} missing from {msg}");
        }
    }

    #[test]
    fn project_scenarios_all_load_in_natural_order() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        let all = project_scenarios(&dir).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = all.iter().map(|(_, s)| s.name.as_str()).collect();
        assert!(names.len() >= 2, "{names:?}");
        for required in ["s0-chrony-anchor", "s1-pi-gps-hat"] {
            assert!(
                names.contains(&required),
                "{required} missing from {names:?}"
            );
        }
        let mut sorted = names.clone();
        sorted.sort_by_key(|n| natural_key(n));
        assert_eq!(names, sorted);
        assert!(natural_key("s2-x") < natural_key("s10-x"));
    }
}
