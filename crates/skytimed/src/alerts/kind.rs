//! The alerts themselves: names, order and severities.

use serde::{Deserialize, Serialize};

/// Every alert the box raises by itself. The names are the `alert` label of
/// `skytime_alert_active` and are used by `monitoring/skytime-alerts.yml`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// No PPS edge for longer than `pps_lost_after_ms`.
    PpsLost,
    /// No receiver output for longer than `nmea_lost_after_ms`, or the serial device is gone.
    NmeaLost,
    /// The receiver talks but reports no valid fix.
    FixLost,
    /// The discipline coasts on its learned frequency.
    Holdover,
    /// The box does not serve synchronised time (LI=3, stratum 16), or serves its free-running local clock.
    Unsynchronised,
    /// Fewer satellites used than `min_satellites`.
    FewSatellites,
    /// A leap second is announced for the end of this UTC day/month.
    LeapPending,
    /// |offset| over `offset_warning_ns` while locked.
    OffsetWarning,
    /// |offset| over `offset_critical_ns` while locked.
    OffsetCritical,
    /// The NTS certificate expires within `nts_certificate_warn_days` (or has).
    NtsCertificateExpiring,
    /// The leap-seconds file has expired and is ignored: leap seconds then
    /// come only from the receiver, and many receivers never announce them.
    LeapFileExpired,
}

/// How urgent an alert is; matches the severities of the shipped Prometheus rules.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For information (a scheduled leap second).
    Info,
    /// Needs attention soon.
    Warning,
    /// Clients are or will shortly be affected.
    Critical,
}

impl Severity {
    /// Lower-case name, as the Prometheus rules' `severity` label spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl AlertKind {
    /// Every alert, in the order they are shown.
    pub const ALL: [AlertKind; 11] = [
        AlertKind::Unsynchronised,
        AlertKind::PpsLost,
        AlertKind::OffsetCritical,
        AlertKind::NmeaLost,
        AlertKind::FixLost,
        AlertKind::Holdover,
        AlertKind::FewSatellites,
        AlertKind::OffsetWarning,
        AlertKind::NtsCertificateExpiring,
        AlertKind::LeapFileExpired,
        AlertKind::LeapPending,
    ];

    /// The stable snake_case name (metrics label, JSON, logs).
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::PpsLost => "pps_lost",
            AlertKind::NmeaLost => "nmea_lost",
            AlertKind::FixLost => "fix_lost",
            AlertKind::Holdover => "holdover",
            AlertKind::Unsynchronised => "unsynchronised",
            AlertKind::FewSatellites => "few_satellites",
            AlertKind::LeapPending => "leap_pending",
            AlertKind::OffsetWarning => "offset_warning",
            AlertKind::OffsetCritical => "offset_critical",
            AlertKind::NtsCertificateExpiring => "nts_certificate_expiring",
            AlertKind::LeapFileExpired => "leap_file_expired",
        }
    }

    /// The severity the shipped Prometheus rules give it.
    pub fn severity(self) -> Severity {
        match self {
            AlertKind::Unsynchronised | AlertKind::PpsLost | AlertKind::OffsetCritical => {
                Severity::Critical
            }
            AlertKind::LeapPending => Severity::Info,
            _ => Severity::Warning,
        }
    }
}
