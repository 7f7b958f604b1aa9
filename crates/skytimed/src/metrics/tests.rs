//! The scrape follows the snapshot.

use super::*;
use crate::state::DaemonState;
use skytime_timebase::{MonoNanos, UnixNanos};
use std::sync::atomic::Ordering;

/// The value of the series `series` (name and labels exactly as written, e.g.
/// `skytime_state{state="locked"}`), parsed as a number: the test reads the
/// values, not how `prometheus-client` happens to print a float (`1.0`,
/// `2e-8`, `0.48`).
fn value(text: &str, series: &str) -> f64 {
    let found: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(s, _)| *s == series)
        .map(|(_, v)| {
            v.parse::<f64>()
                .unwrap_or_else(|e| panic!("{series}: value {v:?} is not a number: {e}"))
        })
        .collect();
    match found.as_slice() {
        [v] => *v,
        _ => panic!("{} samples of {series} in\n{text}", found.len()),
    }
}

/// Whether `actual` is `expected`, to a relative 1e-12: exact for the counts
/// and flags, and for the unit conversions (ns to s, ms to s).
fn assert_value(text: &str, series: &str, expected: f64) {
    let actual = value(text, series);
    assert!(
        (actual - expected).abs() <= expected.abs() * 1e-12,
        "{series} = {actual}, expected {expected}"
    );
}

/// A scrape of the healthy locked box of [`crate::fixtures::locked_status`].
pub(super) fn scrape_sample() -> String {
    scrape_daemon(
        Arc::new(DaemonState::new(
            crate::fixtures::locked_status(),
            true,
            UnixNanos(0),
        )),
        "/dev/pps0",
    )
}

/// `/metrics` of `daemon`, its receiver on /dev/ttyAMA0 and its PPS on `pps_device`.
fn scrape_daemon(daemon: Arc<DaemonState>, pps_device: &str) -> String {
    let ctx = Arc::new(ReportContext::new(
        daemon,
        MonoNanos(0),
        "/dev/ttyAMA0".into(),
        pps_device.into(),
    ));
    scrape(&registry(ctx)).unwrap_or_else(|e| panic!("encode: {e}"))
}

#[test]
fn qerr_counts_and_survey_in_are_exported_when_reported() {
    assert!(
        !scrape_sample().contains("skytime_qerr"),
        "no TIM-TP, no series"
    );
    let mut status = crate::fixtures::locked_status();
    status.qerr = Some(skytime_refclock::QerrStatus {
        enabled: true,
        messages: 10,
        applied: 7,
        skipped_no_message: 2,
        skipped_invalid: 1,
        skipped_uncertain: 0,
        last_correction_ns: Some(3.0),
        survey_in: Some(skytime_refclock::SurveyInStatus {
            active: true,
            valid: false,
            duration_s: 60,
            observations: 60,
            accuracy_m: 3.5,
        }),
    });
    let text = scrape_daemon(
        Arc::new(DaemonState::new(status, true, UnixNanos(0))),
        "/dev/pps0",
    );
    for (series, expected) in [
        ("skytime_qerr_correction_enabled", 1.0),
        ("skytime_qerr_messages_total", 10.0),
        ("skytime_qerr_applied_total", 7.0),
        ("skytime_qerr_skipped_total{reason=\"no_message\"}", 2.0),
        ("skytime_qerr_skipped_total{reason=\"invalid\"}", 1.0),
        ("skytime_qerr_skipped_total{reason=\"uncertain\"}", 0.0),
        ("skytime_survey_in_active", 1.0),
        ("skytime_survey_in_valid", 0.0),
        ("skytime_survey_in_accuracy_meters", 3.5),
    ] {
        assert_value(&text, series, expected);
    }
}

#[test]
fn receiver_info_is_unknown_until_the_reader_identifies_the_receiver() {
    assert_value(
        &scrape_sample(),
        "skytime_receiver_info{family=\"unknown\",firmware=\"unknown\"}",
        1.0,
    );
    let daemon = Arc::new(DaemonState::new(
        crate::fixtures::locked_status(),
        false,
        UnixNanos(0),
    ));
    let counters = Arc::new(skytime_gnss::GnssCounters::default());
    *counters
        .receiver
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) =
        Some(skytime_gnss::configure::ReceiverInfo {
            family: "u-blox MAX-M10S".into(),
            firmware: "SPG 5.10".into(),
        });
    let _ = daemon.gnss.set(counters);
    let text = scrape_daemon(daemon, "/dev/pps0");
    assert_value(
        &text,
        "skytime_receiver_info{family=\"u-blox MAX-M10S\",firmware=\"SPG 5.10\"}",
        1.0,
    );
    assert_eq!(
        text.matches("skytime_receiver_info{").count(),
        1,
        "one series"
    );
}

#[test]
fn a_phc_source_exports_its_mapping() {
    assert!(
        !scrape_sample().contains("skytime_phc"),
        "kernel PPS, no PHC series"
    );
    let daemon = Arc::new(DaemonState::new(
        crate::fixtures::locked_status(),
        false,
        UnixNanos(0),
    ));
    let counters = Arc::new(skytime_pps::PpsCounters::default());
    counters
        .phc
        .set_opened("/dev/ptp1", skytime_pps::OffsetMethod::Extended);
    counters.phc.set_mapping_uncertainty_ns(1500);
    counters.phc.events.fetch_add(42, Ordering::Relaxed);
    counters
        .phc
        .other_edge_dropped
        .fetch_add(20, Ordering::Relaxed);
    let _ = daemon.pps.set(counters);
    let text = scrape_daemon(daemon, "/dev/ptp1 channel 0 (PHC)");
    for (series, expected) in [
        ("skytime_phc_mapping_method{method=\"extended\"}", 1.0),
        ("skytime_phc_mapping_method{method=\"precise\"}", 0.0),
        ("skytime_phc_mapping_method{method=\"plain\"}", 0.0),
        ("skytime_phc_mapping_uncertainty_seconds", 1.5e-6),
        ("skytime_phc_extts_events_total", 42.0),
        ("skytime_phc_other_edge_dropped_total", 20.0),
    ] {
        assert_value(&text, series, expected);
    }
}

#[test]
fn values_follow_the_snapshot() {
    let text = scrape_sample();
    let status = crate::fixtures::locked_status();
    for (series, expected) in [
        ("skytime_state{state=\"locked\"}", 1.0),
        ("skytime_state{state=\"holdover\"}", 0.0),
        ("skytime_synchronised", 1.0),
        ("skytime_stratum", f64::from(status.stratum)),
        ("skytime_offset_seconds", status.offset_ns / 1e9),
        (
            "skytime_root_dispersion_seconds",
            status.root_dispersion_ns / 1e9,
        ),
        (
            "skytime_satellites_used",
            status.nmea.sats_used.map_or(0.0, f64::from),
        ),
        ("skytime_fix_mode", 3.0),
        ("skytime_pps_pulses_total", status.pps.edges_seen as f64),
        ("skytime_pps_reach", f64::from(status.pps.reach)),
        ("skytime_nmea_delay_seconds", 0.48),
        ("skytime_ntp_requests_total{outcome=\"rate_limited\"}", 0.0),
        ("skytime_alert_active{alert=\"pps_lost\"}", 0.0),
        ("skytime_leap_pending{kind=\"insert\"}", 0.0),
    ] {
        assert_value(&text, series, expected);
    }
    assert!(text.ends_with("# EOF\n"));
}
