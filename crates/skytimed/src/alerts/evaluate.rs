//! The one place every alert is decided: a pure function of the snapshot,
//! a few counters and the previous set.

use super::{ActiveAlert, ActiveAlerts, AlertConfig, AlertKind, Transition};
use crate::human::{fix_mode_name, human_ns};
use skytime_gnss::FixMode;
use skytime_refclock::{Status, SyncState};
use skytime_timebase::{LeapChange, MonoNanos, NANOS_PER_SEC};

/// Fraction of an offset threshold the offset must fall below before its
/// alert clears, so an estimate hovering at the threshold does not flap.
pub const OFFSET_CLEAR_FRACTION: f64 = 0.8;

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
                    h.elapsed.as_secs_f64(),
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
            AlertKind::LeapFileExpired => match s.leap_file_expired_at() {
                Some(expires) => Verdict::On(format!(
                    "the leap-seconds file expired {}: it is ignored, leap seconds come only from \
                     the receiver and the kernel's TAI offset is no longer kept; update tzdata",
                    chrono::DateTime::from_timestamp(expires.secs(), 0)
                        .map(|t| t.format("%Y-%m-%d").to_string())
                        .unwrap_or_else(|| "?".to_string())
                )),
                None => Verdict::Off,
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
