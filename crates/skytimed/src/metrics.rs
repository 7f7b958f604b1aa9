//! The Prometheus endpoint: `skytime_`-prefixed metrics encoded by
//! `prometheus-client` (OpenMetrics text) from the same [`StatusReport`] that
//! `skytimectl status --json` prints, so a scrape and the CLI never disagree.
//!
//! The names are the ones `monitoring/skytime-alerts.yml` uses; a unit test
//! checks every metric the rules name is exported.

use crate::alerts::AlertKind;
use crate::ctl::protocol::StatusReport;
use crate::ctl::report::{OUTCOME_GROUPS, ReportContext};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// The content type of the OpenMetrics text format `prometheus-client` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The discipline states, each a series of `skytime_state{state}`.
const STATES: [&str; 4] = ["acquiring", "locked", "holdover", "unsynchronised"];

/// Reads a fresh report at every scrape and encodes it.
#[derive(Clone)]
pub struct StatusCollector {
    ctx: Arc<ReportContext>,
}

impl std::fmt::Debug for StatusCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusCollector")
    }
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(v);
    let m = e.encode_descriptor(name, help, None, g.metric_type())?;
    g.encode(m)
}

/// `name{label=value} v` for each (value, v).
fn gauge_family(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    series: &[(&str, f64)],
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (value, v) in series {
        let labels = [(label, *value)];
        ConstGauge::new(*v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A counter; `name` without `_total`, which the encoder appends.
fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v);
    let m = e.encode_descriptor(name, help, None, c.metric_type())?;
    c.encode(m)
}

fn counter_family(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    series: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, v) in series {
        let labels = [(label, *value)];
        ConstCounter::new(*v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

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

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_report(&self.ctx.status(), &mut encoder)
    }
}

/// The registry served at `/metrics`.
pub fn registry(ctx: Arc<ReportContext>) -> Registry {
    let mut registry = Registry::with_prefix("skytime");
    registry.register_collector(Box::new(StatusCollector { ctx }));
    registry
}

/// One scrape's text.
pub fn scrape(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::with_capacity(8192);
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::DaemonState;
    use skytime_timebase::{MonoNanos, UnixNanos};

    fn scrape_sample() -> String {
        let ctx = Arc::new(ReportContext::new(
            Arc::new(DaemonState::new(
                crate::alerts::sample_locked_status(),
                true,
                UnixNanos(0),
            )),
            MonoNanos(0),
            "/dev/ttyAMA0".into(),
            "/dev/pps0".into(),
        ));
        scrape(&registry(ctx)).unwrap_or_else(|e| panic!("encode: {e}"))
    }

    #[test]
    fn qerr_counts_and_survey_in_are_exported_when_reported() {
        assert!(
            !scrape_sample().contains("skytime_qerr"),
            "no TIM-TP, no series"
        );
        let mut status = crate::alerts::sample_locked_status();
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
        let ctx = Arc::new(ReportContext::new(
            Arc::new(DaemonState::new(status, true, UnixNanos(0))),
            MonoNanos(0),
            "/dev/ttyAMA0".into(),
            "/dev/pps0".into(),
        ));
        let text = scrape(&registry(ctx)).unwrap_or_else(|e| panic!("encode: {e}"));
        for line in [
            "skytime_qerr_correction_enabled 1.0",
            "skytime_qerr_messages_total 10",
            "skytime_qerr_applied_total 7",
            "skytime_qerr_skipped_total{reason=\"no_message\"} 2",
            "skytime_qerr_skipped_total{reason=\"invalid\"} 1",
            "skytime_survey_in_active 1.0",
            "skytime_survey_in_accuracy_meters 3.5",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn every_metric_the_alert_rules_use_is_exported() {
        let text = scrape_sample();
        let rules = include_str!("../../../monitoring/skytime-alerts.yml");
        let mut used: Vec<&str> = rules
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("skytime_") && !w.starts_with("skytime_builtin"))
            .collect();
        used.sort_unstable();
        used.dedup();
        assert!(used.len() >= 15, "{used:?}");
        for name in used {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{'])),
                "{name} is used by monitoring/skytime-alerts.yml but not exported:\n{text}"
            );
        }
    }

    /// Every PromQL query string of a Grafana dashboard (`expr`, and the
    /// variables' `definition`).
    fn dashboard_queries(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("expr" | "definition", serde_json::Value::String(q)) => {
                            out.push(q.clone())
                        }
                        _ => dashboard_queries(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for v in items {
                    dashboard_queries(v, out);
                }
            }
            _ => {}
        }
    }

    /// The metric names a query uses: identifiers left once label matchers,
    /// grouping clauses, ranges, strings, variables and PromQL's own words
    /// are taken out.
    fn metric_names(query: &str) -> Vec<String> {
        const PROMQL: &[&str] = &[
            "sum",
            "min",
            "max",
            "avg",
            "count",
            "rate",
            "irate",
            "increase",
            "abs",
            "by",
            "without",
            "on",
            "ignoring",
            "and",
            "or",
            "unless",
            "label_values",
            "instance",
            "clamp_min",
            "clamp_max",
            "delta",
            "deriv",
            "max_over_time",
            "min_over_time",
            "avg_over_time",
            "topk",
            "bottomk",
            "time",
        ];
        let mut cleaned = String::new();
        let mut depth_brace = 0;
        let mut depth_bracket = 0;
        let mut in_string = false;
        for c in query.chars() {
            match c {
                '"' => in_string = !in_string,
                _ if in_string => {}
                '{' => depth_brace += 1,
                '}' => depth_brace -= 1,
                '[' => depth_bracket += 1,
                ']' => depth_bracket -= 1,
                _ if depth_brace > 0 || depth_bracket > 0 => {}
                _ => cleaned.push(c),
            }
        }
        // Grouping labels: `by (a, b)` / `without (a)`.
        for word in ["by", "without", "on", "ignoring"] {
            while let Some(at) = cleaned.find(&format!("{word} (")) {
                let end = cleaned[at..]
                    .find(')')
                    .map_or(cleaned.len(), |e| at + e + 1);
                cleaned.replace_range(at..end, " ");
            }
        }
        let mut names = Vec::new();
        for word in cleaned.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$')) {
            let first = word.chars().next().unwrap_or(' ');
            if word.is_empty() || first.is_ascii_digit() || first == '$' {
                continue;
            }
            if !PROMQL.contains(&word) {
                names.push(word.to_string());
            }
        }
        names
    }

    #[test]
    fn every_metric_the_grafana_dashboard_queries_is_exported() {
        let text = scrape_sample();
        let dashboard: serde_json::Value = serde_json::from_str(include_str!(
            "../../../monitoring/grafana/skytime-dashboard.json"
        ))
        .unwrap_or_else(|e| panic!("dashboard is not JSON: {e}"));
        for key in ["title", "uid", "panels", "schemaVersion", "__inputs"] {
            assert!(dashboard.get(key).is_some(), "dashboard has no {key}");
        }
        let mut queries = Vec::new();
        dashboard_queries(&dashboard, &mut queries);
        assert!(queries.len() >= 10, "{queries:?}");
        let mut used = std::collections::BTreeSet::new();
        for query in &queries {
            let names = metric_names(query);
            assert!(!names.is_empty(), "no metric in {query}");
            for name in names {
                assert!(
                    text.lines()
                        .any(|l| l.starts_with(&name) && l[name.len()..].starts_with([' ', '{'])),
                    "{name} (in `{query}`) is not exported by skytimed:\n{text}"
                );
                used.insert(name);
            }
        }
        // What the dashboard promises to show.
        for promised in [
            "skytime_state",
            "skytime_offset_seconds",
            "skytime_root_dispersion_seconds",
            "skytime_frequency_fast_ppm",
            "skytime_pps_reach",
            "skytime_nmea_reach",
            "skytime_satellites_used",
            "skytime_ntp_requests_total",
            "skytime_alert_active",
        ] {
            assert!(
                used.contains(promised),
                "no panel shows {promised}: {used:?}"
            );
        }
    }

    #[test]
    fn metric_names_are_found_in_queries() {
        assert_eq!(
            metric_names(
                r#"sum by (instance, outcome) (rate(skytime_ntp_requests_total{instance=~"$instance"}[$__rate_interval]))"#
            ),
            ["skytime_ntp_requests_total"]
        );
        assert_eq!(
            metric_names(r#"-skytime_root_dispersion_seconds{a="b"} == 1 or up"#),
            ["skytime_root_dispersion_seconds", "up"]
        );
    }

    #[test]
    fn values_follow_the_snapshot() {
        let text = scrape_sample();
        for line in [
            "skytime_state{state=\"locked\"} 1.0",
            "skytime_state{state=\"holdover\"} 0.0",
            "skytime_synchronised 1.0",
            "skytime_stratum 1.0",
            "skytime_offset_seconds 2e-8",
            "skytime_satellites_used 7.0",
            "skytime_fix_mode 3.0",
            "skytime_pps_pulses_total 80",
            "skytime_pps_reach 255.0",
            "skytime_nmea_delay_seconds 0.48",
            "skytime_ntp_requests_total{outcome=\"rate_limited\"} 0",
            "skytime_alert_active{alert=\"pps_lost\"} 0.0",
            "skytime_leap_pending{kind=\"insert\"} 0.0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
