//! One [`StatusReport`] as metrics: the names `monitoring/` uses, in SI units
//! (seconds), whatever unit the report carries.

use super::series::{counter, counter_family, gauge, gauge_family};
use crate::alerts::AlertKind;
use crate::ctl::protocol::StatusReport;
use crate::ctl::report::OUTCOME_GROUPS;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

/// The discipline states, each a series of `skytime_state{state}`.
const STATES: [&str; 4] = ["acquiring", "locked", "holdover", "unsynchronised"];

/// Encodes one report (public for tests that check names and values).
pub fn encode_report(r: &StatusReport, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let b = |x: bool| if x { 1.0 } else { 0.0 };
    let states: Vec<(&str, f64)> = STATES.iter().map(|s| (*s, b(r.state == *s))).collect();
    gauge_family(
        e,
        "state",
        "Discipline state: 1 for the current one.",
        "state",
        &states,
    )?;
    gauge(
        e,
        "synchronised",
        "1 while clients are served synchronised time (LI != 3, stratum < 16).",
        b(r.synchronised),
    )?;
    gauge(
        e,
        "stratum",
        "Stratum served (16: unsynchronised).",
        f64::from(r.stratum),
    )?;
    gauge(
        e,
        "offset_seconds",
        "Last filtered offset of the clock from the reference (clock minus reference), seconds.",
        r.offset_ns / 1e9,
    )?;
    gauge(
        e,
        "offset_sigma_seconds",
        "One-sigma uncertainty of the offset estimate, seconds.",
        r.offset_sigma_ns / 1e9,
    )?;
    gauge(
        e,
        "rms_offset_seconds",
        "Long-term RMS of the filtered offset, seconds.",
        r.rms_offset_ns / 1e9,
    )?;
    gauge(
        e,
        "frequency_fast_ppm",
        "How fast the clock would run without correction, ppm; positive = fast (chrony's \"ppm fast\"), the correction applied is the negative.",
        r.frequency_fast_ppm,
    )?;
    gauge(
        e,
        "residual_frequency_ppm",
        "Estimated remaining frequency error of the disciplined clock, ppm; positive = still fast.",
        r.residual_frequency_ppm,
    )?;
    gauge(
        e,
        "skew_ppm",
        "One-sigma uncertainty of the frequency estimate, ppm.",
        r.skew_ppm,
    )?;
    gauge(
        e,
        "jitter_seconds",
        "Learned measurement jitter of the PPS stamps, seconds.",
        r.jitter_ns / 1e9,
    )?;
    gauge(
        e,
        "root_dispersion_seconds",
        "Root dispersion served (the error bound), seconds.",
        r.root_dispersion_ns / 1e9,
    )?;
    let leap = [
        ("insert", b(r.leap.status == "insert")),
        ("delete", b(r.leap.status == "delete")),
    ];
    gauge_family(
        e,
        "leap_pending",
        "1 while a leap second of this kind is announced.",
        "kind",
        &leap,
    )?;
    gauge(
        e,
        "holdover_seconds",
        "Seconds in holdover (0 when not in holdover).",
        r.holdover.as_ref().map_or(0.0, |h| h.elapsed_s),
    )?;
    if let Some(t) = &r.temperature {
        if let Some(c) = t.reading_c {
            gauge(
                e,
                "temperature_celsius",
                "Temperature sensor reading in use, °C.",
                c,
            )?;
        }
        gauge(
            e,
            "temperature_sensor_ok",
            "1 while the temperature sensor's readings are in use (0: absent or faulty).",
            b(t.sensor == "ok"),
        )?;
        gauge(
            e,
            "temperature_coefficient_ppm_per_kelvin",
            "Learned frequency change of the oscillator per kelvin, ppm/K.",
            t.coefficient_ppm_per_k,
        )?;
        gauge(
            e,
            "temperature_coefficient_sigma_ppm_per_kelvin",
            "One-sigma uncertainty of the learned coefficient, ppm/K.",
            t.coefficient_sigma_ppm_per_k,
        )?;
        if let (Some(q), Some(s)) = (t.quadratic_ppm_per_k2, t.quadratic_sigma_ppm_per_k2) {
            gauge(
                e,
                "temperature_quadratic_ppm_per_kelvin_squared",
                "Learned quadratic term of the frequency in temperature, ppm/K² (only once the data support one).",
                q,
            )?;
            gauge(
                e,
                "temperature_quadratic_sigma_ppm_per_kelvin_squared",
                "One-sigma uncertainty of the learned quadratic term, ppm/K².",
                s,
            )?;
        }
        gauge(
            e,
            "temperature_model_trusted",
            "1 when holdover predicts the frequency from temperature.",
            b(t.trusted),
        )?;
        gauge(
            e,
            "temperature_compensation_ppm",
            "Frequency correction from temperature in force (0 outside holdover), ppm.",
            t.compensation_ppm.unwrap_or(0.0),
        )?;
        counter(
            e,
            "temperature_sensor_faults",
            "Temperature sensor faults (freeze, jump, garbage, missing) since start.",
            t.faults,
        )?;
    }
    receiver_info(r, e)?;
    if let Some(q) = &r.qerr {
        gauge(
            e,
            "qerr_correction_enabled",
            "1 when PPS edges are corrected by the receiver's TIM-TP qErr.",
            b(q.enabled),
        )?;
        counter(
            e,
            "qerr_messages",
            "UBX-TIM-TP messages received.",
            q.messages,
        )?;
        counter(
            e,
            "qerr_applied",
            "PPS edges corrected by their TIM-TP qErr.",
            q.applied,
        )?;
        counter_family(
            e,
            "qerr_skipped",
            "PPS edges left uncorrected, by reason.",
            "reason",
            &[
                ("no_message", q.skipped_no_message),
                ("invalid", q.skipped_invalid),
                ("uncertain", q.skipped_uncertain),
            ],
        )?;
        if let Some(v) = &q.survey_in {
            gauge(
                e,
                "survey_in_active",
                "1 while the receiver's survey-in runs.",
                b(v.active),
            )?;
            gauge(
                e,
                "survey_in_valid",
                "1 once survey-in has finished and the position is held.",
                b(v.valid),
            )?;
            gauge(
                e,
                "survey_in_accuracy_meters",
                "Accuracy of the surveyed mean position, m.",
                v.accuracy_m,
            )?;
        }
    }
    counter(
        e,
        "clock_steps",
        "Clock steps made (start-up and re-acquisitions).",
        u64::from(r.steps),
    )?;

    gauge(
        e,
        "satellites_used",
        "Satellites used in the fix.",
        r.nmea.sats_used.map_or(0.0, f64::from),
    )?;
    gauge(
        e,
        "satellites_visible",
        "Satellites in view.",
        r.nmea.sats_visible.map_or(0.0, f64::from),
    )?;
    gauge(
        e,
        "fix_mode",
        "Receiver fix mode as gpsd numbers it: 0 unknown, 1 no fix, 2 2-D, 3 3-D.",
        f64::from(r.nmea.fix_mode_code),
    )?;

    counter(e, "pps_pulses", "PPS pulses seen.", r.pps.pulses_seen)?;
    counter(
        e,
        "pps_missed",
        "PPS pulses that should have arrived and did not.",
        r.pps.pulses_missed,
    )?;
    counter(
        e,
        "pps_used",
        "PPS edges that updated the filter.",
        r.pps.edges_used,
    )?;
    gauge(
        e,
        "pps_reach",
        "chrony-style PPS reach register (255 = octal 377).",
        f64::from(r.pps.reach),
    )?;
    gauge(
        e,
        "last_pps_age_seconds",
        "Seconds since the last PPS edge (since start-up when none yet).",
        r.pps.last_seen_age_s.unwrap_or(r.uptime_s),
    )?;
    if let Some(phc) = &r.pps.phc {
        encode_phc(phc, e)?;
    }

    counter(
        e,
        "nmea_sentences",
        "NMEA sentences accepted.",
        r.nmea.sentences,
    )?;
    counter(
        e,
        "nmea_checksum_errors",
        "NMEA sentences dropped for a bad checksum.",
        r.nmea.checksum_errors,
    )?;
    counter(
        e,
        "nmea_epochs",
        "Receiver epochs (one second of output) handed to the discipline.",
        r.nmea.epochs_seen,
    )?;
    counter(
        e,
        "serial_reopens",
        "Times the receiver's serial device was reopened.",
        r.nmea.reopens,
    )?;
    gauge(
        e,
        "nmea_reach",
        "chrony-style NMEA reach register (255 = octal 377).",
        f64::from(r.nmea.reach),
    )?;
    gauge(
        e,
        "nmea_delay_seconds",
        "Measured delay from the pulse to the end of the burst labelling it (median), seconds.",
        r.nmea.delay_ms.map_or(f64::NAN, |ms| ms / 1e3),
    )?;
    gauge(
        e,
        "nmea_delay_p95_seconds",
        "95th percentile of that delay, seconds.",
        r.nmea.delay_p95_ms.map_or(f64::NAN, |ms| ms / 1e3),
    )?;
    gauge(
        e,
        "last_nmea_age_seconds",
        "Seconds since the receiver's last epoch (since start-up when none yet).",
        r.nmea.last_seen_age_s.unwrap_or(r.uptime_s),
    )?;

    let requests: Vec<(&str, u64)> = OUTCOME_GROUPS
        .iter()
        .map(|g| (*g, r.ntp.requests.get(*g).copied().unwrap_or(0)))
        .collect();
    counter_family(
        e,
        "ntp_requests",
        "NTP requests by outcome.",
        "outcome",
        &requests,
    )?;

    if let Some(nts) = &r.nts {
        counter(
            e,
            "nts_ke_sessions",
            "NTS-KE sessions that handed out keys and cookies.",
            nts.ke_sessions,
        )?;
        counter_family(
            e,
            "nts_ke_refused",
            "NTS-KE connections that got no keys, by reason.",
            "reason",
            &[
                ("error_record", nts.ke_error_responses),
                ("handshake", nts.ke_failed_handshakes),
                ("timeout", nts.ke_timeouts),
                ("busy", nts.ke_refused_busy),
            ],
        )?;
        counter(
            e,
            "nts_requests",
            "NTP requests answered with NTS authentication and fresh cookies.",
            nts.requests,
        )?;
        counter(
            e,
            "nts_naks",
            "NTS NAKs sent (cookie or authenticator refused).",
            nts.naks,
        )?;
        gauge(
            e,
            "nts_certificate_days_left",
            "Whole days until the NTS certificate expires (negative once expired).",
            nts.certificate_days_left as f64,
        )?;
    }

    let rejections: Vec<(&str, u64)> = r.rejections.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    counter_family(
        e,
        "rejections",
        "Pulses and receiver epochs not used, by reason.",
        "reason",
        &rejections,
    )?;

    let alerts: Vec<(&str, f64)> = AlertKind::ALL
        .iter()
        .map(|k| (k.name(), b(r.alerts.iter().any(|a| a.name == k.name()))))
        .collect();
    gauge_family(
        e,
        "alert_active",
        "1 while the built-in alert is raised.",
        "alert",
        &alerts,
    )?;
    gauge(
        e,
        "snapshot_age_seconds",
        "Age of the discipline's latest snapshot (large: the discipline thread is stuck).",
        r.snapshot_age_s,
    )?;
    let mut info =
        e.encode_descriptor("build_info", "skytimed's version.", None, MetricType::Gauge)?;
    let labels = [
        ("version", r.version.as_str()),
        ("simulated", if r.simulated { "true" } else { "false" }),
    ];
    ConstGauge::new(1.0).encode(info.encode_family(&labels)?)?;
    Ok(())
}

/// `skytime_receiver_info{family,firmware} 1`: the receiver's identity as an
/// info-style series ("unknown" until identified), to join on in dashboards.
fn receiver_info(r: &StatusReport, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(
        "receiver_info",
        "The GNSS receiver's family and firmware (MON-VER, PMTK705 or TXT); \"unknown\" until identified. Always 1.",
        None,
        MetricType::Gauge,
    )?;
    let labels = [
        ("family", r.receiver.family.as_str()),
        ("firmware", r.receiver.firmware.as_str()),
    ];
    ConstGauge::new(1.0).encode(m.encode_family(&labels)?)
}

/// A PHC source's mapping: its method as a label, its bound and counts.
fn encode_phc(
    p: &crate::ctl::protocol::PhcReport,
    e: &mut DescriptorEncoder,
) -> Result<(), std::fmt::Error> {
    gauge_family(
        e,
        "phc_mapping_method",
        "How PHC time is compared with the system clock: 1 for the method in use (precise, extended, plain).",
        "method",
        &["precise", "extended", "plain"]
            .map(|m| (m, if p.mapping_method == m { 1.0 } else { 0.0 })),
    )?;
    if let Some(ns) = p.mapping_uncertainty_ns {
        gauge(
            e,
            "phc_mapping_uncertainty_seconds",
            "Error bound of the PHC-to-system mapping at the last edge, seconds.",
            f64::from(u32::try_from(ns).unwrap_or(u32::MAX)) / 1e9,
        )?;
    }
    counter(
        e,
        "phc_extts_events",
        "PHC external-timestamp events read on the configured channel.",
        p.extts_events,
    )?;
    counter(
        e,
        "phc_other_edge_dropped",
        "PHC events dropped as the pulse's other edge.",
        p.other_edge_dropped,
    )
}
