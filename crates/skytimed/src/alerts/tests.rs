//! The alerts decided on hand-made snapshots.

use super::*;
use crate::fixtures;
use skytime_gnss::FixMode;
use skytime_refclock::{HoldoverStatus, ReferenceId, Status, SyncState};
use skytime_timebase::{Arrival, LeapChange, MonoNanos, NANOS_PER_SEC, UnixNanos};

const S: i64 = NANOS_PER_SEC;

fn locked() -> Status {
    fixtures::locked_status()
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "test instants are a few hundred seconds: exact in ns"
)]
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
#[expect(
    clippy::cast_possible_truncation,
    reason = "test instants are a few hundred seconds: exact in ns"
)]
fn raise_and_clear(kind: AlertKind, bad: &Status, bad_at_s: f64, good: &Status, good_at_s: f64) {
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
        elapsed: std::time::Duration::from_secs(12),
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
    assert_eq!(names.len(), AlertKind::ALL.len());
    // The names the shipped Prometheus rules use.
    let rules = include_str!("../../../../monitoring/skytime-alerts.yml");
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

#[test]
fn an_expired_leap_seconds_file_raises_an_alert() {
    let mut s = locked();
    assert!(
        !eval_at(&s, 100.0, &ActiveAlerts::default())
            .active
            .is_active(AlertKind::LeapFileExpired),
        "no file read: nothing to say"
    );
    s.leap_file_expires = Some(UnixNanos(s.as_of.0 + 86_400 * S));
    assert!(
        !eval_at(&s, 100.0, &ActiveAlerts::default())
            .active
            .is_active(AlertKind::LeapFileExpired)
    );
    s.leap_file_expires = Some(UnixNanos(1_782_604_800 * S)); // 2026-06-28
    s.as_of = UnixNanos(1_782_604_800 * S + 1);
    let e = eval_at(&s, 100.0, &ActiveAlerts::default());
    let alert = e.active.get(AlertKind::LeapFileExpired).expect("raised");
    assert!(alert.message.contains("2026-06-28"), "{}", alert.message);
    assert_eq!(AlertKind::LeapFileExpired.severity(), Severity::Warning);
}
