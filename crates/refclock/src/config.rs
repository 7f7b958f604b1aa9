//! The `[refclock]` section of `skytime.toml`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which 4-character reference id to advertise while serving from the reference.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReferenceIdChoice {
    /// "GPS": the receiver's time, refined by PPS (the usual choice).
    #[default]
    #[serde(rename = "GPS")]
    Gps,
    /// "PPS": the pulse, labelled by the receiver.
    #[serde(rename = "PPS")]
    Pps,
}

/// Settings of the discipline. Every field has a default that suits a Pi with a
/// GPS hat, so an empty `[refclock]` section is a working configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RefclockConfig {
    /// Reference id to serve: "GPS" or "PPS".
    pub reference_id: ReferenceIdChoice,
    /// At start-up, step the clock when |offset| exceeds this; smaller offsets
    /// are slewed. Steps never happen once the clock has been served.
    pub step_threshold_ms: f64,
    /// The largest root dispersion (error bound) at which holdover still
    /// serves stratum 1; beyond it the box is unsynchronised.
    pub holdover_max_root_dispersion_us: f64,
    /// chrony's `local stratum N`: the stratum served once holdover has run
    /// out (refid LOCL). None: serve LI=3 / stratum 16 instead.
    pub local_stratum: Option<u8>,
    /// Where the learned frequency is kept across restarts (None: not kept).
    pub drift_file: Option<PathBuf>,
    /// tzdata's leap-seconds.list, a second source of leap announcements.
    pub leap_seconds_file: Option<PathBuf>,
    /// Known constant delay from the true edge to the kernel timestamp (the
    /// interrupt latency), subtracted from every PPS stamp.
    pub pps_latency_ns: i64,
    /// Systematic error of the PPS stamps that no measurement can reveal
    /// (uncompensated latency, cable, receiver bias); added to the root
    /// dispersion so that the advertised bound stays honest.
    pub pps_systematic_uncertainty_ns: f64,
    /// Resolution of the clock readings, added to the error bound.
    pub clock_precision_ns: f64,
    /// How many standard deviations of the filter's uncertainty the error
    /// bound covers.
    pub error_bound_sigmas: f64,
    /// Multiplier on the learned oscillator noise while in holdover, to stay
    /// honest when the oscillator wanders more than it did while locked.
    pub holdover_noise_safety_factor: f64,
    /// Without an accepted pulse for this long, the reference counts as lost.
    pub pps_timeout_ms: u64,
    /// Without a valid receiver epoch for this long, pulses are not trusted
    /// (nothing confirms the receiver still has a fix and the right second).
    pub nmea_timeout_ms: u64,
    /// A whole-second disagreement between the receiver and the clock that
    /// persists this long is accepted as real: the clock is re-acquired.
    /// Shorter ones are rejected as mislabelled seconds.
    pub label_confirm_s: u64,
    /// How long a whole-second disagreement may last while the box keeps
    /// serving as synchronised (one glitching sentence costs nothing). Beyond
    /// it the box serves LI=3 / stratum 16 until the labels agree again (no
    /// step) or the disagreement is confirmed after `label_confirm_s`.
    pub label_disagreement_grace_s: u64,
    /// Filter-estimated error (|offset| plus the configured sigmas) under
    /// which the discipline declares lock and starts serving.
    pub lock_max_error_ns: f64,
    /// Consecutive accepted pulses needed before lock.
    pub lock_min_samples: u32,
    /// Innovations beyond this many standard deviations are outliers.
    pub outlier_sigmas: f64,
    /// The most frequency correction ever applied, ppm (the kernel's limit is 500).
    pub max_frequency_ppm: f64,
    /// A temperature sensor file (sysfs or hwmon, one number), for
    /// temperature-compensated holdover. None: no sensor (the default).
    pub temperature_sensor: Option<PathBuf>,
    /// Degrees Celsius per unit the sensor file reports (millidegrees: 0.001).
    pub temperature_scale: f64,
    /// How often the sensor is read, ms.
    pub temperature_interval_ms: u64,
    /// The learned temperature coefficient is used in holdover once its
    /// one-sigma uncertainty is below this, ppm/K.
    pub temperature_trust_ppm_per_k: f64,
    /// Correct each PPS edge by the quantisation error (qErr) a u-blox timing
    /// receiver reports for it in UBX-TIM-TP, when the pairing is certain.
    /// Off: the messages are still counted, no edge is corrected.
    pub qerr_correction: bool,
    /// The normal coverage (in standard deviations) of a
    /// temperature-compensated holdover's bound, which a Student-t factor
    /// widens for the estimated random walk. 4: at 3, one holdover in 200
    /// (rc-holdover-ramp-late, seed 74) served wrong seconds, as the frontier
    /// of `scripts/bench-frontier.sh` predicts for a bound that tight.
    pub temperature_bound_sigmas: f64,
}

impl Default for RefclockConfig {
    fn default() -> Self {
        Self {
            reference_id: ReferenceIdChoice::Gps,
            step_threshold_ms: 1.0,
            holdover_max_root_dispersion_us: 1000.0,
            local_stratum: None,
            drift_file: Some(PathBuf::from("/var/lib/skytime/drift")),
            leap_seconds_file: Some(PathBuf::from("/usr/share/zoneinfo/leap-seconds.list")),
            pps_latency_ns: 0,
            pps_systematic_uncertainty_ns: 10_000.0,
            clock_precision_ns: 1.0,
            error_bound_sigmas: 5.0,
            holdover_noise_safety_factor: 4.0,
            pps_timeout_ms: 2_500,
            nmea_timeout_ms: 10_000,
            label_confirm_s: 30,
            label_disagreement_grace_s: 2,
            lock_max_error_ns: 10_000.0,
            lock_min_samples: 5,
            outlier_sigmas: 6.0,
            max_frequency_ppm: 500.0,
            temperature_sensor: None,
            temperature_scale: 0.001,
            temperature_interval_ms: 2_000,
            temperature_trust_ppm_per_k: 0.01,
            qerr_correction: true,
            temperature_bound_sigmas: 4.0,
        }
    }
}

impl RefclockConfig {
    /// Every semantic problem, as (key within `[refclock]`, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        let mut bad = |key: &str, msg: String| errs.push((key.to_string(), msg));
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.step_threshold_ms) {
            bad(
                "step_threshold_ms",
                format!(
                    "must be a positive number of milliseconds, not {}",
                    self.step_threshold_ms
                ),
            );
        }
        if !positive(self.holdover_max_root_dispersion_us) {
            bad(
                "holdover_max_root_dispersion_us",
                format!(
                    "must be positive, not {}",
                    self.holdover_max_root_dispersion_us
                ),
            );
        }
        if let Some(s) = self.local_stratum
            && !(1..=15).contains(&s)
        {
            bad("local_stratum", format!("must be 1..=15, not {s}"));
        }
        for (key, path) in [
            ("drift_file", &self.drift_file),
            ("leap_seconds_file", &self.leap_seconds_file),
        ] {
            if let Some(p) = path
                && (p.as_os_str().is_empty() || p.is_dir())
            {
                bad(key, format!("{} is not a file path", p.display()));
            }
        }
        if self.pps_latency_ns.unsigned_abs() > 100_000_000 {
            bad(
                "pps_latency_ns",
                format!(
                    "{} ns is beyond any real interrupt latency (limit 100 ms)",
                    self.pps_latency_ns
                ),
            );
        }
        for (key, v) in [
            (
                "pps_systematic_uncertainty_ns",
                self.pps_systematic_uncertainty_ns,
            ),
            ("clock_precision_ns", self.clock_precision_ns),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bad(key, format!("must be zero or positive, not {v}"));
            }
        }
        if !(self.error_bound_sigmas.is_finite() && self.error_bound_sigmas >= 1.0) {
            bad(
                "error_bound_sigmas",
                format!("must be at least 1, not {}", self.error_bound_sigmas),
            );
        }
        if !(self.holdover_noise_safety_factor.is_finite()
            && self.holdover_noise_safety_factor >= 1.0)
        {
            bad(
                "holdover_noise_safety_factor",
                format!(
                    "must be at least 1, not {}",
                    self.holdover_noise_safety_factor
                ),
            );
        }
        if self.pps_timeout_ms < 1_100 {
            bad(
                "pps_timeout_ms",
                format!(
                    "must be at least 1100 (one pulse interval), not {}",
                    self.pps_timeout_ms
                ),
            );
        }
        if self.nmea_timeout_ms < 1_100 {
            bad(
                "nmea_timeout_ms",
                format!("must be at least 1100, not {}", self.nmea_timeout_ms),
            );
        }
        if self.label_confirm_s < 3 {
            bad(
                "label_confirm_s",
                format!("must be at least 3 s, not {}", self.label_confirm_s),
            );
        }
        if self.label_disagreement_grace_s >= self.label_confirm_s {
            bad(
                "label_disagreement_grace_s",
                format!(
                    "must be less than label_confirm_s ({} s), not {}",
                    self.label_confirm_s, self.label_disagreement_grace_s
                ),
            );
        }
        if !positive(self.lock_max_error_ns) {
            bad(
                "lock_max_error_ns",
                format!("must be positive, not {}", self.lock_max_error_ns),
            );
        }
        if self.lock_min_samples < 2 {
            bad(
                "lock_min_samples",
                format!("must be at least 2, not {}", self.lock_min_samples),
            );
        }
        if !(self.outlier_sigmas.is_finite() && self.outlier_sigmas >= 3.0) {
            bad(
                "outlier_sigmas",
                format!("must be at least 3, not {}", self.outlier_sigmas),
            );
        }
        if !(self.max_frequency_ppm.is_finite()
            && self.max_frequency_ppm > 0.0
            && self.max_frequency_ppm <= 500.0)
        {
            bad(
                "max_frequency_ppm",
                format!(
                    "must be in (0, 500] (the kernel's limit), not {}",
                    self.max_frequency_ppm
                ),
            );
        }
        if let Some(p) = &self.temperature_sensor
            && (p.as_os_str().is_empty() || p.is_dir())
        {
            bad(
                "temperature_sensor",
                format!("{} is not a file path", p.display()),
            );
        }
        if !(self.temperature_scale.is_finite() && self.temperature_scale != 0.0) {
            bad(
                "temperature_scale",
                format!(
                    "must be a non-zero number (0.001 for millidegrees), not {}",
                    self.temperature_scale
                ),
            );
        }
        if !(100..=600_000).contains(&self.temperature_interval_ms) {
            bad(
                "temperature_interval_ms",
                format!(
                    "must be from 100 ms to 10 minutes, not {}",
                    self.temperature_interval_ms
                ),
            );
        }
        if !(self.temperature_trust_ppm_per_k.is_finite() && self.temperature_trust_ppm_per_k > 0.0)
        {
            bad(
                "temperature_trust_ppm_per_k",
                format!("must be positive, not {}", self.temperature_trust_ppm_per_k),
            );
        }
        if !(self.temperature_bound_sigmas.is_finite() && self.temperature_bound_sigmas >= 1.0) {
            bad(
                "temperature_bound_sigmas",
                format!("must be at least 1, not {}", self.temperature_bound_sigmas),
            );
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_is_the_default_and_valid() {
        let c: RefclockConfig = toml::from_str("").expect("empty section parses");
        assert_eq!(c, RefclockConfig::default());
        assert!(c.validate().is_empty(), "{:?}", c.validate());
    }

    #[test]
    fn every_bad_value_is_reported_with_its_key() {
        let c: RefclockConfig = toml::from_str(
            r#"
            reference_id = "PPS"
            step_threshold_ms = -1
            local_stratum = 16
            pps_timeout_ms = 500
            max_frequency_ppm = 900
            outlier_sigmas = 1
            temperature_scale = 0
            temperature_interval_ms = 5
            temperature_trust_ppm_per_k = -1
            temperature_bound_sigmas = 0.5
            "#,
        )
        .expect("parses");
        assert_eq!(c.reference_id, ReferenceIdChoice::Pps);
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        for k in [
            "step_threshold_ms",
            "local_stratum",
            "pps_timeout_ms",
            "max_frequency_ppm",
            "outlier_sigmas",
            "temperature_scale",
            "temperature_interval_ms",
            "temperature_trust_ppm_per_k",
            "temperature_bound_sigmas",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} not reported in {keys:?}");
        }
    }

    #[test]
    fn unknown_reference_id_is_a_parse_error() {
        assert!(toml::from_str::<RefclockConfig>("reference_id = \"GLONASS\"").is_err());
    }
}
