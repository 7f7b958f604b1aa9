//! `[alerts]` in skytimed.toml: the thresholds, with their checks.

use serde::Deserialize;

/// `[alerts]`: thresholds of the built-in alerts.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct AlertConfig {
    /// |offset| above which `offset_warning` is raised while locked, ns.
    pub offset_warning_ns: f64,
    /// |offset| above which `offset_critical` is raised while locked, ns.
    pub offset_critical_ns: f64,
    /// `few_satellites` is raised while fewer satellites than this are used.
    pub min_satellites: u8,
    /// `pps_lost` is raised after this long without a PPS edge, ms.
    pub pps_lost_after_ms: u64,
    /// `nmea_lost` is raised after this long without receiver output, ms.
    pub nmea_lost_after_ms: u64,
    /// `nts_certificate_expiring` is raised this many days before expiry.
    pub nts_certificate_warn_days: u32,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            offset_warning_ns: 1_000.0,
            offset_critical_ns: 10_000.0,
            min_satellites: 4,
            pps_lost_after_ms: 3_000,
            nmea_lost_after_ms: 5_000,
            nts_certificate_warn_days: 14,
        }
    }
}

impl AlertConfig {
    /// Every semantic problem, as (key within `[alerts]`, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (key, v) in [
            ("offset_warning_ns", self.offset_warning_ns),
            ("offset_critical_ns", self.offset_critical_ns),
        ] {
            if !(v.is_finite() && v > 0.0) {
                out.push((
                    key.to_string(),
                    format!("must be a positive number of ns, not {v}"),
                ));
            }
        }
        if self.offset_critical_ns < self.offset_warning_ns {
            out.push((
                "offset_critical_ns".to_string(),
                format!(
                    "{} is below offset_warning_ns ({}); the critical threshold must be the larger",
                    self.offset_critical_ns, self.offset_warning_ns
                ),
            ));
        }
        if self.min_satellites > 32 {
            out.push((
                "min_satellites".to_string(),
                format!(
                    "{} is more than a receiver reports (at most 32)",
                    self.min_satellites
                ),
            ));
        }
        if !(1..=365).contains(&self.nts_certificate_warn_days) {
            out.push((
                "nts_certificate_warn_days".to_string(),
                format!("{} is outside 1..=365", self.nts_certificate_warn_days),
            ));
        }
        for (key, v) in [
            ("pps_lost_after_ms", self.pps_lost_after_ms),
            ("nmea_lost_after_ms", self.nmea_lost_after_ms),
        ] {
            if !(1_100..=3_600_000).contains(&v) {
                out.push((
                    key.to_string(),
                    format!(
                        "{v} is outside 1100..=3600000 (more than one second, at most an hour)"
                    ),
                ));
            }
        }
        out
    }
}
