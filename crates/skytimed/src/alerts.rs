//! The box's built-in alerts: raised on entry, cleared on exit, each logged
//! once each way and exposed in `skytimectl status`, `/metrics`
//! (`skytime_alert_active{alert=...}`) and the status page.
//!
//! Every alert is decided in one place, [`evaluate`]: a pure function from the
//! refclock's [`Status`], a few counters and the previous alert set to the new
//! set and its transitions. The daemon runs it about once a second
//! ([`AlertTask`]); tests run it on hand-made snapshots.

use serde::{Deserialize, Serialize};
use skytime_gnss::FixMode;
use skytime_refclock::{Status, SyncState};
use skytime_timebase::{LeapChange, MonoNanos, NANOS_PER_SEC};

/// Fraction of an offset threshold the offset must fall below before its
/// alert clears, so an estimate hovering at the threshold does not flap.
pub const OFFSET_CLEAR_FRACTION: f64 = 0.8;

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
    pub const ALL: [AlertKind; 10] = [
        AlertKind::Unsynchronised,
        AlertKind::PpsLost,
        AlertKind::OffsetCritical,
        AlertKind::NmeaLost,
        AlertKind::FixLost,
        AlertKind::Holdover,
        AlertKind::FewSatellites,
        AlertKind::OffsetWarning,
        AlertKind::NtsCertificateExpiring,
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

/// One alert that is active now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActiveAlert {
    /// Which.
    pub kind: AlertKind,
    /// When it was raised (monotonic).
    pub since: MonoNanos,
    /// What is wrong, with the numbers, as of the last evaluation.
    pub message: String,
}

/// The set of active alerts, in [`AlertKind::ALL`] order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ActiveAlerts {
    /// The alerts.
    pub alerts: Vec<ActiveAlert>,
}

impl ActiveAlerts {
    /// Whether `kind` is active.
    pub fn is_active(&self, kind: AlertKind) -> bool {
        self.get(kind).is_some()
    }

    /// The active alert of this kind, if any.
    pub fn get(&self, kind: AlertKind) -> Option<&ActiveAlert> {
        self.alerts.iter().find(|a| a.kind == kind)
    }
}

/// An alert raised or cleared by one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    /// Entered.
    Raised {
        /// Which.
        kind: AlertKind,
        /// Why.
        message: String,
    },
    /// Left.
    Cleared {
        /// Which.
        kind: AlertKind,
        /// How long it was active, ns.
        active_for_ns: i64,
        /// What it said last.
        last_message: String,
    },
}

impl Transition {
    /// The alert concerned.
    pub fn kind(&self) -> AlertKind {
        match self {
            Transition::Raised { kind, .. } | Transition::Cleared { kind, .. } => *kind,
        }
    }

    /// Logs the transition once: raised at warn, cleared at info.
    pub fn log(&self) {
        match self {
            Transition::Raised { kind, message } => {
                tracing::warn!(
                    alert = kind.name(),
                    severity = kind.severity().as_str(),
                    "alert raised: {message}"
                );
            }
            Transition::Cleared {
                kind,
                active_for_ns,
                ..
            } => {
                tracing::info!(
                    alert = kind.name(),
                    active_for_s = format!("{:.1}", *active_for_ns as f64 / NANOS_PER_SEC as f64),
                    "alert cleared"
                );
            }
        }
    }
}

/// What [`evaluate`] sees besides the status snapshot.
#[derive(Copy, Clone, Debug)]
pub struct AlertInputs<'a> {
    /// The latest refclock snapshot.
    pub status: &'a Status,
    /// Now, on the monotonic clock the snapshot's ages are measured on.
    pub now: MonoNanos,
    /// When the daemon started (monotonic): a source never heard from is
    /// "lost" once this long ago exceeds its threshold.
    pub started: MonoNanos,
    /// Whether the serial device is open (`None` when unknown).
    pub serial_connected: Option<bool>,
    /// Days until the NTS certificate expires (`None`: NTS off).
    pub nts_certificate_days_left: Option<i64>,
}

/// The outcome of one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The alerts active now.
    pub active: ActiveAlerts,
    /// What changed since `previous`, in [`AlertKind::ALL`] order.
    pub transitions: Vec<Transition>,
}

/// Seconds since `earlier` (or since start-up when never seen).
fn age_s(now: MonoNanos, at: Option<MonoNanos>, started: MonoNanos) -> (f64, bool) {
    match at {
        Some(t) => (now.nanos_since(t) as f64 / NANOS_PER_SEC as f64, true),
        None => (
            now.nanos_since(started) as f64 / NANOS_PER_SEC as f64,
            false,
        ),
    }
}

/// A condition's verdict this second: on (with why), off, or not decidable
/// (the data it depends on is stale), in which case the alert keeps its state.
enum Verdict {
    On(String),
    Off,
    Unknown,
}

/// Formats nanoseconds with a unit an operator reads at a glance.
pub fn human_ns(ns: f64) -> String {
    let a = ns.abs();
    if a >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if a >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if a >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Decides every alert from a snapshot and the previous set. Pure: the same
/// inputs give the same result, and nothing is logged (see [`Transition::log`]).
pub fn evaluate(
    inputs: &AlertInputs<'_>,
    config: &AlertConfig,
    previous: &ActiveAlerts,
) -> Evaluation {
    let s = inputs.status;
    let (pps_age, pps_ever) = age_s(inputs.now, s.pps.last_edge_received, inputs.started);
    let (nmea_age, nmea_ever) = age_s(
        inputs.now,
        s.nmea.last_epoch_at.map(|a| a.monotonic),
        inputs.started,
    );
    let pps_lost = pps_age * 1000.0 > config.pps_lost_after_ms as f64;
    let serial_gone = inputs.serial_connected == Some(false);
    let nmea_lost = serial_gone || nmea_age * 1000.0 > config.nmea_lost_after_ms as f64;
    let nmea_fresh = nmea_ever && !nmea_lost;

    let verdict = |kind: AlertKind| -> Verdict {
        match kind {
            AlertKind::PpsLost => {
                if !pps_lost {
                    Verdict::Off
                } else if pps_ever {
                    Verdict::On(format!("no PPS edge for {pps_age:.0} s"))
                } else {
                    Verdict::On(format!("no PPS edge since start-up ({pps_age:.0} s)"))
                }
            }
            AlertKind::NmeaLost => {
                if serial_gone {
                    Verdict::On("the receiver's serial device is not open".to_string())
                } else if !nmea_lost {
                    Verdict::Off
                } else if nmea_ever {
                    Verdict::On(format!("no receiver output for {nmea_age:.0} s"))
                } else {
                    Verdict::On(format!(
                        "no receiver output since start-up ({nmea_age:.0} s)"
                    ))
                }
            }
            AlertKind::FixLost => {
                if !nmea_fresh {
                    Verdict::Unknown
                } else if s.nmea.fix_valid && s.nmea.fix_mode != FixMode::NoFix {
                    Verdict::Off
                } else {
                    Verdict::On(format!(
                        "the receiver reports no valid fix (fix mode {})",
                        fix_mode_name(s.nmea.fix_mode)
                    ))
                }
            }
            AlertKind::Holdover => match &s.holdover {
                Some(h) if s.state == SyncState::Holdover => Verdict::On(format!(
                    "in holdover for {:.0} s; error bound {} of {}",
                    h.elapsed_s,
                    human_ns(h.bound_ns),
                    human_ns(h.limit_ns)
                )),
                _ if s.state == SyncState::Holdover => Verdict::On("in holdover".to_string()),
                _ => Verdict::Off,
            },
            AlertKind::Unsynchronised => {
                if !s.serves_synchronised() {
                    Verdict::On(format!(
                        "state {} ({}); serving LI=3, stratum 16",
                        s.state.as_str(),
                        s.state_reason
                    ))
                } else if s.state == SyncState::Unsynchronised {
                    Verdict::On(format!(
                        "holdover ran out; serving the free-running local clock at stratum {} ({})",
                        s.stratum, s.state_reason
                    ))
                } else {
                    Verdict::Off
                }
            }
            AlertKind::FewSatellites => match s.nmea.sats_used {
                _ if !nmea_fresh => Verdict::Unknown,
                None => Verdict::Unknown,
                Some(used) if used < config.min_satellites => Verdict::On(format!(
                    "{used} satellites used (minimum {}), {} visible",
                    config.min_satellites,
                    s.nmea
                        .sats_visible
                        .map_or("?".to_string(), |v| v.to_string())
                )),
                Some(_) => Verdict::Off,
            },
            AlertKind::NtsCertificateExpiring => match inputs.nts_certificate_days_left {
                None => Verdict::Off,
                Some(days) if days < 0 => Verdict::On(format!(
                    "the NTS certificate expired {} day(s) ago: NTS clients cannot start new sessions",
                    -days
                )),
                Some(days) if days < i64::from(config.nts_certificate_warn_days) => {
                    Verdict::On(format!(
                        "the NTS certificate expires in {days} day(s); renew it (reloaded on SIGHUP or when the file changes)"
                    ))
                }
                Some(_) => Verdict::Off,
            },
            AlertKind::LeapPending => match s.leap {
                LeapChange::None => Verdict::Off,
                change => Verdict::On(format!(
                    "leap second ({}) pending{}{}",
                    match change {
                        LeapChange::Delete => "delete",
                        _ => "insert",
                    },
                    s.leap_at
                        .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0))
                        .map(|t| format!(" before {}", t.format("%Y-%m-%dT%H:%M:%SZ")))
                        .unwrap_or_default(),
                    match s.leap_source {
                        Some(skytime_refclock::LeapSource::Receiver) =>
                            ", announced by the receiver",
                        Some(skytime_refclock::LeapSource::LeapFile) =>
                            ", from the leap-seconds file",
                        None => "",
                    }
                )),
            },
            AlertKind::OffsetWarning | AlertKind::OffsetCritical => {
                let threshold = if kind == AlertKind::OffsetWarning {
                    config.offset_warning_ns
                } else {
                    config.offset_critical_ns
                };
                if s.state != SyncState::Locked || !s.offset_ns.is_finite() {
                    // Not measured now (acquiring) or frozen (holdover): keep.
                    return Verdict::Unknown;
                }
                let was = previous.is_active(kind);
                let limit = if was {
                    threshold * OFFSET_CLEAR_FRACTION
                } else {
                    threshold
                };
                if s.offset_ns.abs() > limit {
                    Verdict::On(format!(
                        "offset {}{} over the {} threshold",
                        if s.offset_ns >= 0.0 { "+" } else { "-" },
                        human_ns(s.offset_ns.abs()),
                        human_ns(threshold)
                    ))
                } else {
                    Verdict::Off
                }
            }
        }
    };

    let mut active = ActiveAlerts::default();
    let mut transitions = Vec::new();
    for kind in AlertKind::ALL {
        let before = previous.get(kind);
        match (verdict(kind), before) {
            (Verdict::On(message), Some(b)) => active.alerts.push(ActiveAlert {
                kind,
                since: b.since,
                message,
            }),
            (Verdict::On(message), None) => {
                transitions.push(Transition::Raised {
                    kind,
                    message: message.clone(),
                });
                active.alerts.push(ActiveAlert {
                    kind,
                    since: inputs.now,
                    message,
                });
            }
            (Verdict::Off, Some(b)) => transitions.push(Transition::Cleared {
                kind,
                active_for_ns: inputs.now.nanos_since(b.since),
                last_message: b.message.clone(),
            }),
            (Verdict::Off, None) | (Verdict::Unknown, None) => {}
            (Verdict::Unknown, Some(b)) => active.alerts.push(b.clone()),
        }
    }
    Evaluation {
        active,
        transitions,
    }
}

/// The fix mode as operators read it.
pub fn fix_mode_name(mode: FixMode) -> &'static str {
    match mode {
        FixMode::Unknown => "unknown",
        FixMode::NoFix => "no fix",
        FixMode::Fix2D => "2D",
        FixMode::Fix3D => "3D",
    }
}

/// Runs [`evaluate`] against the daemon's latest snapshot, keeps the result
/// in [`crate::state::DaemonState::alerts`], and logs each transition once.
pub struct AlertTask {
    config: AlertConfig,
    started: MonoNanos,
}

impl AlertTask {
    /// A task with these thresholds; "never seen" counts from `started`.
    pub fn new(config: AlertConfig, started: MonoNanos) -> Self {
        Self { config, started }
    }

    /// One evaluation at `now`: stores the new set and logs what changed.
    pub fn step(&self, daemon: &crate::state::DaemonState, now: MonoNanos) -> Vec<Transition> {
        let status = daemon.status.load();
        let serial_connected = daemon
            .gnss
            .get()
            .map(|c| c.connected.load(std::sync::atomic::Ordering::Relaxed));
        let previous = daemon.alerts.load();
        let now_unix_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let nts_certificate_days_left = daemon
            .nts
            .get()
            .map(|n| n.certificate().days_left(now_unix_s));
        let eval = evaluate(
            &AlertInputs {
                status: &status,
                now,
                started: self.started,
                serial_connected,
                nts_certificate_days_left,
            },
            &self.config,
            &previous,
        );
        for t in &eval.transitions {
            t.log();
        }
        daemon.alerts.store(std::sync::Arc::new(eval.active));
        eval.transitions
    }
}

#[cfg(test)]
/// For tests across the crate: a healthy locked box at monotonic t = 100 s: PPS and NMEA fresh, 3-D fix, 7 satellites.
pub(crate) fn sample_locked_status() -> Status {
    use skytime_gnss::SatelliteInfo;
    use skytime_refclock::{NmeaStatus, NoiseStatus, PpsStatus, ReferenceId, Rejections};
    use skytime_timebase::{Arrival, UnixNanos};
    const S: i64 = NANOS_PER_SEC;
    Status {
        as_of: UnixNanos(1_767_225_700 * S),
        as_of_mono: MonoNanos(100 * S),
        state: SyncState::Locked,
        state_reason: "PPS and labels agree".into(),
        state_since: MonoNanos(20 * S),
        stratum: 1,
        reference_id: ReferenceId::GPS,
        leap: LeapChange::None,
        leap_at: None,
        leap_source: None,
        leap_armed: LeapChange::None,
        leap_sources_disagree: None,
        reference_time: Some(UnixNanos(1_767_225_700 * S)),
        root_dispersion_ns: 12_000.0,
        dispersion_rate_ns_per_s: 15.0,
        offset_ns: 20.0,
        offset_sigma_ns: 50.0,
        rms_offset_ns: 80.0,
        frequency_ppm: 12.0,
        residual_frequency_ppm: 0.001,
        skew_ppm: 0.002,
        jitter_ns: 500.0,
        noise: NoiseStatus::default(),
        holdover: None,
        holdover_limit_ns: 1e6,
        pps: PpsStatus {
            last_edge: Some(UnixNanos(1_767_225_700 * S)),
            last_edge_received: Some(MonoNanos(100 * S - S / 2)),
            reach: 0o377,
            edges_seen: 80,
            edges_used: 78,
            pulses_missed: 0,
            last_edge_uncertainty_ns: 0,
        },
        nmea: NmeaStatus {
            last_label: None,
            last_epoch_at: Some(Arrival {
                monotonic: MonoNanos(100 * S - S / 10),
                realtime: UnixNanos(1_767_225_700 * S),
            }),
            reach: 0o377,
            fix_valid: true,
            fix_mode: FixMode::Fix3D,
            sats_used: Some(7),
            sats_visible: Some(8),
            satellites: vec![SatelliteInfo {
                prn: 5,
                snr_dbhz: Some(40),
                used: true,
            }],
            epochs_seen: 80,
            epochs_paired: 78,
            delay_learned_ms: Some(480.0),
            delay_median_ms: Some(480.0),
            delay_p95_ms: Some(500.0),
        },
        rejections: Rejections::default(),
        last_rejection: None,
        label_disagreement: None,
        steps: 1,
        thermal: None,
        qerr: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skytime_refclock::{HoldoverStatus, ReferenceId};
    use skytime_timebase::{Arrival, UnixNanos};

    const S: i64 = NANOS_PER_SEC;

    fn locked() -> Status {
        sample_locked_status()
    }

    fn eval_at(status: &Status, now_s: f64, previous: &ActiveAlerts) -> Evaluation {
        evaluate(
            &AlertInputs {
                status,
                now: MonoNanos((now_s * S as f64) as i64),
                started: MonoNanos(0),
                serial_connected: Some(true),
                nts_certificate_days_left: None,
            },
            &AlertConfig::default(),
            previous,
        )
    }

    #[test]
    fn an_nts_certificate_near_or_past_expiry_raises_an_alert() {
        let s = locked();
        let at = |days: Option<i64>| {
            evaluate(
                &AlertInputs {
                    status: &s,
                    now: MonoNanos(100 * S),
                    started: MonoNanos(0),
                    serial_connected: Some(true),
                    nts_certificate_days_left: days,
                },
                &AlertConfig::default(),
                &ActiveAlerts::default(),
            )
            .active
        };
        assert!(!at(None).is_active(AlertKind::NtsCertificateExpiring));
        assert!(!at(Some(30)).is_active(AlertKind::NtsCertificateExpiring));
        let soon = at(Some(13));
        let alert = soon.get(AlertKind::NtsCertificateExpiring).expect("raised");
        assert!(alert.message.contains("13 day"), "{}", alert.message);
        assert!(
            at(Some(-2))
                .get(AlertKind::NtsCertificateExpiring)
                .expect("raised")
                .message
                .contains("expired")
        );
    }

    fn names(a: &ActiveAlerts) -> Vec<&'static str> {
        a.alerts.iter().map(|a| a.kind.name()).collect()
    }

    /// Raises `kind` with `bad`, checks it is raised once, kept, then cleared
    /// once by `good`, and that nothing else moved.
    fn raise_and_clear(
        kind: AlertKind,
        bad: &Status,
        bad_at_s: f64,
        good: &Status,
        good_at_s: f64,
    ) {
        let calm = eval_at(&locked(), 100.0, &ActiveAlerts::default());
        assert!(
            calm.active.alerts.is_empty(),
            "healthy box has alerts: {:?}",
            calm.active
        );
        let raised = eval_at(bad, bad_at_s, &calm.active);
        assert!(
            raised.active.is_active(kind),
            "{kind:?} not raised: {:?}",
            raised.active
        );
        assert!(
            raised
                .transitions
                .iter()
                .any(|t| matches!(t, Transition::Raised { kind: k, .. } if *k == kind)),
            "{:?}",
            raised.transitions
        );
        let again = eval_at(bad, bad_at_s + 1.0, &raised.active);
        assert!(again.active.is_active(kind));
        assert!(
            again.transitions.iter().all(|t| t.kind() != kind),
            "raised twice: {:?}",
            again.transitions
        );
        assert_eq!(
            again.active.get(kind).map(|a| a.since),
            raised.active.get(kind).map(|a| a.since),
            "the raise time must be kept"
        );
        let cleared = eval_at(good, good_at_s, &again.active);
        assert!(
            !cleared.active.is_active(kind),
            "{kind:?} not cleared: {:?}",
            cleared.active
        );
        let cleared_transition = cleared.transitions.iter().find(|t| t.kind() == kind);
        match cleared_transition {
            Some(Transition::Cleared { active_for_ns, .. }) => {
                assert_eq!(
                    *active_for_ns,
                    ((good_at_s - bad_at_s) * S as f64) as i64,
                    "active duration"
                )
            }
            other => panic!("expected a clear of {kind:?}, got {other:?}"),
        }
        let quiet = eval_at(good, good_at_s + 1.0, &cleared.active);
        assert!(
            quiet.transitions.iter().all(|t| t.kind() != kind),
            "cleared twice"
        );
    }

    #[test]
    fn a_healthy_locked_box_has_no_alert() {
        let e = eval_at(&locked(), 100.0, &ActiveAlerts::default());
        assert_eq!(names(&e.active), Vec::<&str>::new());
        assert!(e.transitions.is_empty());
    }

    #[test]
    fn pps_lost_after_the_threshold_and_cleared_by_a_new_edge() {
        let s = locked();
        // The last edge was at 99.5 s: 2.9 s later is still within the 3 s threshold.
        let still_ok = eval_at(&s, 102.4, &ActiveAlerts::default());
        assert!(!still_ok.active.is_active(AlertKind::PpsLost));
        let mut fresh = locked();
        fresh.pps.last_edge_received = Some(MonoNanos(110 * S));
        raise_and_clear(AlertKind::PpsLost, &s, 103.0, &fresh, 110.2);
        let e = eval_at(&s, 103.0, &ActiveAlerts::default());
        let msg = &e.active.get(AlertKind::PpsLost).expect("raised").message;
        assert!(msg.contains("no PPS edge for 4 s"), "{msg}");
    }

    #[test]
    fn pps_never_seen_counts_from_start_up() {
        let mut s = locked();
        s.pps.last_edge_received = None;
        assert!(
            !eval_at(&s, 2.0, &ActiveAlerts::default())
                .active
                .is_active(AlertKind::PpsLost)
        );
        let e = eval_at(&s, 4.0, &ActiveAlerts::default());
        let msg = &e.active.get(AlertKind::PpsLost).expect("raised").message;
        assert!(msg.contains("since start-up"), "{msg}");
    }

    #[test]
    fn nmea_lost_on_silence_or_a_closed_device() {
        let s = locked();
        let mut fresh = locked();
        fresh.nmea.last_epoch_at = Some(Arrival {
            monotonic: MonoNanos(120 * S),
            realtime: UnixNanos(0),
        });
        raise_and_clear(AlertKind::NmeaLost, &s, 106.0, &fresh, 120.5);
        let closed = evaluate(
            &AlertInputs {
                status: &s,
                now: MonoNanos(100 * S),
                started: MonoNanos(0),
                serial_connected: Some(false),
                nts_certificate_days_left: None,
            },
            &AlertConfig::default(),
            &ActiveAlerts::default(),
        );
        assert!(closed.active.is_active(AlertKind::NmeaLost));
    }

    #[test]
    fn fix_lost_while_the_receiver_reports_no_fix_and_kept_while_it_is_silent() {
        let mut bad = locked();
        bad.nmea.fix_valid = false;
        bad.nmea.fix_mode = FixMode::NoFix;
        raise_and_clear(AlertKind::FixLost, &bad, 100.0, &locked(), 100.5);
        // Receiver silent: the fix is unknown, so the alert is neither raised nor cleared.
        let raised = eval_at(&bad, 100.0, &ActiveAlerts::default());
        let silent = eval_at(&locked(), 200.0, &raised.active);
        assert!(
            silent.active.is_active(AlertKind::FixLost),
            "{:?}",
            silent.active
        );
        assert!(silent.active.is_active(AlertKind::NmeaLost));
        assert!(
            !eval_at(&bad, 200.0, &ActiveAlerts::default())
                .active
                .is_active(AlertKind::FixLost)
        );
    }

    #[test]
    fn holdover_while_coasting() {
        let mut bad = locked();
        bad.state = SyncState::Holdover;
        bad.holdover = Some(HoldoverStatus {
            elapsed_s: 12.0,
            bound_ns: 40_000.0,
            limit_ns: 1e6,
        });
        raise_and_clear(AlertKind::Holdover, &bad, 100.0, &locked(), 100.0);
        let e = eval_at(&bad, 100.0, &ActiveAlerts::default());
        assert!(
            !e.active.is_active(AlertKind::Unsynchronised),
            "holdover still serves stratum 1"
        );
        let msg = &e.active.get(AlertKind::Holdover).expect("raised").message;
        assert!(
            msg.contains("12 s") && msg.contains("40.00 µs") && msg.contains("1.000 ms"),
            "{msg}"
        );
    }

    #[test]
    fn unsynchronised_when_serving_stratum_16_or_the_local_clock() {
        let mut bad = locked();
        bad.state = SyncState::Acquiring;
        bad.stratum = 16;
        raise_and_clear(AlertKind::Unsynchronised, &bad, 100.0, &locked(), 100.0);
        let mut local = locked();
        local.state = SyncState::Unsynchronised;
        local.stratum = 10;
        local.reference_id = ReferenceId::LOCAL;
        let e = eval_at(&local, 100.0, &ActiveAlerts::default());
        let msg = &e
            .active
            .get(AlertKind::Unsynchronised)
            .expect("raised")
            .message;
        assert!(msg.contains("stratum 10"), "{msg}");
    }

    #[test]
    fn few_satellites_below_the_minimum() {
        let mut bad = locked();
        bad.nmea.sats_used = Some(3);
        raise_and_clear(AlertKind::FewSatellites, &bad, 100.0, &locked(), 100.0);
        let mut four = locked();
        four.nmea.sats_used = Some(4);
        assert!(
            !eval_at(&four, 100.0, &ActiveAlerts::default())
                .active
                .is_active(AlertKind::FewSatellites)
        );
        let e = eval_at(&bad, 100.0, &ActiveAlerts::default());
        assert_eq!(
            e.active
                .get(AlertKind::FewSatellites)
                .map(|a| a.message.as_str()),
            Some("3 satellites used (minimum 4), 8 visible")
        );
    }

    #[test]
    fn leap_pending_while_announced() {
        let mut bad = locked();
        bad.leap = LeapChange::Insert;
        bad.leap_at = Some(UnixNanos(1_782_864_000 * S));
        bad.leap_source = Some(skytime_refclock::LeapSource::Receiver);
        raise_and_clear(AlertKind::LeapPending, &bad, 100.0, &locked(), 100.0);
        let e = eval_at(&bad, 100.0, &ActiveAlerts::default());
        let msg = &e
            .active
            .get(AlertKind::LeapPending)
            .expect("raised")
            .message;
        assert_eq!(
            msg,
            "leap second (insert) pending before 2026-07-01T00:00:00Z, announced by the receiver"
        );
    }

    #[test]
    fn offset_warning_and_critical_with_hysteresis() {
        let mut warn = locked();
        warn.offset_ns = -1_500.0;
        let mut fine = locked();
        fine.offset_ns = 700.0;
        raise_and_clear(AlertKind::OffsetWarning, &warn, 100.0, &fine, 100.0);
        let e = eval_at(&warn, 100.0, &ActiveAlerts::default());
        assert!(!e.active.is_active(AlertKind::OffsetCritical));
        // Between 80 % and 100 % of the threshold: an active alert stays.
        let mut hover = locked();
        hover.offset_ns = 900.0;
        assert!(
            eval_at(&hover, 101.0, &e.active)
                .active
                .is_active(AlertKind::OffsetWarning)
        );
        assert!(
            !eval_at(&hover, 101.0, &ActiveAlerts::default())
                .active
                .is_active(AlertKind::OffsetWarning)
        );

        let mut crit = locked();
        crit.offset_ns = 25_000.0;
        raise_and_clear(AlertKind::OffsetCritical, &crit, 100.0, &fine, 100.0);
        let both = eval_at(&crit, 100.0, &ActiveAlerts::default());
        assert_eq!(
            names(&both.active),
            vec!["offset_critical", "offset_warning"]
        );
        assert_eq!(
            both.active
                .get(AlertKind::OffsetCritical)
                .map(|a| a.message.as_str()),
            Some("offset +25.00 µs over the 10.00 µs threshold")
        );
    }

    #[test]
    fn offset_is_not_judged_while_acquiring() {
        let mut acquiring = locked();
        acquiring.state = SyncState::Acquiring;
        acquiring.stratum = 16;
        acquiring.offset_ns = 3.5e8;
        let e = eval_at(&acquiring, 100.0, &ActiveAlerts::default());
        assert!(!e.active.is_active(AlertKind::OffsetWarning));
        assert!(!e.active.is_active(AlertKind::OffsetCritical));
    }

    #[test]
    fn every_alert_has_a_distinct_name_and_a_unit_test_above() {
        let mut names: Vec<&str> = AlertKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 10);
        // The names the shipped Prometheus rules use.
        let rules = include_str!("../../../monitoring/skytime-alerts.yml");
        for kind in AlertKind::ALL {
            assert!(
                rules.contains(&format!(
                    "skytime_alert_active{{alert=\"{}\"}}",
                    kind.name()
                )),
                "{} missing from monitoring/skytime-alerts.yml",
                kind.name()
            );
        }
    }

    #[test]
    fn config_validation_names_every_bad_key() {
        assert!(AlertConfig::default().validate().is_empty());
        let bad = AlertConfig {
            offset_warning_ns: -1.0,
            offset_critical_ns: f64::NAN,
            min_satellites: 40,
            pps_lost_after_ms: 10,
            nmea_lost_after_ms: 0,
            nts_certificate_warn_days: 400,
        };
        let keys: Vec<String> = bad.validate().into_iter().map(|(k, _)| k).collect();
        for k in [
            "offset_warning_ns",
            "offset_critical_ns",
            "min_satellites",
            "pps_lost_after_ms",
            "nmea_lost_after_ms",
            "nts_certificate_warn_days",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} not reported: {keys:?}");
        }
        let swapped = AlertConfig {
            offset_warning_ns: 5000.0,
            offset_critical_ns: 1000.0,
            ..AlertConfig::default()
        };
        assert_eq!(swapped.validate().len(), 1);
    }
}
