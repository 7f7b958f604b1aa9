//! The human form of `skytimectl status`, `sources` and `clients`: aligned
//! `Label : value` lines and tables in the manner of `chronyc tracking` and
//! `chronyc sources`, so chrony operators read them without a manual.

use crate::ctl::protocol::{ClientsReport, EndpointsReport, SourcesReport, StatusReport};
use crate::human::human_ns;
use std::fmt::Write;

/// "4.2s", "5m12s", "3h04m", "2d05h": chrony's compact ages.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "rounds an age already checked finite and non-negative; past u64::MAX it saturates"
)]
pub fn human_age(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "-".to_string();
    }
    let whole = s.round() as u64;
    if s < 10.0 {
        format!("{s:.1}s")
    } else if whole < 120 {
        format!("{whole}s")
    } else if whole < 7200 {
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else if whole < 172_800 {
        format!("{}h{:02}m", whole / 3600, (whole % 3600) / 60)
    } else {
        format!("{}d{:02}h", whole / 86_400, (whole % 86_400) / 3600)
    }
}

fn seconds(ns: f64) -> String {
    format!("{:.9} seconds", ns / 1e9)
}

fn signed_seconds(ns: f64) -> String {
    format!("{:+.9} seconds", ns / 1e9)
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("?".to_string(), |v| v.to_string())
}

/// `skytimectl status`.
pub fn status(r: &StatusReport) -> String {
    let mut out = String::new();
    let mut row = |label: &str, value: String| {
        let _ = writeln!(out, "{label:<16}: {value}");
    };
    row(
        "State",
        format!(
            "{} since {} ({} ago){}",
            r.state,
            r.state_since,
            human_age(r.state_for_s),
            if r.simulated { " [simulated hat]" } else { "" }
        ),
    );
    row("Reason", r.state_reason.clone());
    if let Some(serving) = serving(&r.endpoints) {
        row("Serving", serving);
    }
    let refid_hex: String = {
        let mut b = [0u8; 4];
        for (i, c) in r.reference_id.bytes().take(4).enumerate() {
            b[i] = c;
        }
        b.iter().map(|x| format!("{x:02X}")).collect()
    };
    row("Reference ID", format!("{refid_hex} ({})", r.reference_id));
    row(
        "Stratum",
        format!(
            "{}{}",
            r.stratum,
            if r.synchronised {
                ""
            } else {
                " (unsynchronised: clients get LI=3)"
            }
        ),
    );
    row(
        "Ref time (UTC)",
        match (&r.reference_time, r.reference_age_s) {
            (Some(t), Some(age)) => format!("{t} ({} ago)", human_age(age)),
            (Some(t), None) => t.clone(),
            _ => "never".to_string(),
        },
    );
    row(
        "System time",
        format!(
            "{} {} of {}",
            seconds(r.offset_ns.abs()),
            if r.offset_ns >= 0.0 { "fast" } else { "slow" },
            if r.reference_id.is_empty() {
                "the reference"
            } else {
                r.reference_id.as_str()
            }
        ),
    );
    row(
        "Last offset",
        format!(
            "{} (+/- {})",
            signed_seconds(r.offset_ns),
            human_ns(r.offset_sigma_ns)
        ),
    );
    row("RMS offset", seconds(r.rms_offset_ns));
    row(
        "Frequency",
        format!(
            "{:.3} ppm {}",
            r.frequency_fast_ppm.abs(),
            if r.frequency_fast_ppm >= 0.0 {
                "fast"
            } else {
                "slow"
            }
        ),
    );
    row(
        "Residual freq",
        format!("{:+.3} ppm", r.residual_frequency_ppm),
    );
    row("Skew", format!("{:.3} ppm", r.skew_ppm));
    row("Jitter", seconds(r.jitter_ns));
    row("Root delay", seconds(r.root_delay_ns));
    row(
        "Root dispersion",
        format!(
            "{} (grows {}/s)",
            seconds(r.root_dispersion_ns),
            human_ns(r.dispersion_rate_ns_per_s)
        ),
    );
    let leap = match r.leap.status.as_str() {
        "normal" => "Normal".to_string(),
        "insert" => "Insert second".to_string(),
        "delete" => "Delete second".to_string(),
        other => other.to_string(),
    };
    row(
        "Leap status",
        format!(
            "{leap}{}{}",
            r.leap
                .at
                .as_ref()
                .map(|t| format!(" before {t}"))
                .unwrap_or_default(),
            r.leap
                .source
                .as_ref()
                .map(|s| format!(" (from the {})", s.replace('_', " ")))
                .unwrap_or_default()
        ),
    );
    if let Some(h) = &r.holdover {
        row(
            "Holdover",
            format!(
                "{} so far, error bound {} of {}",
                human_age(h.elapsed_s),
                human_ns(h.bound_ns),
                human_ns(h.limit_ns)
            ),
        );
    }
    if let Some(t) = &r.temperature {
        row(
            "Temperature",
            format!(
                "{}, coefficient {:+.4} ± {:.4} ppm/K{} ({}), sensor {}{}",
                t.reading_c
                    .map_or("no reading".to_string(), |c| format!("{c:.2} °C")),
                t.coefficient_ppm_per_k,
                t.coefficient_sigma_ppm_per_k,
                t.quadratic_ppm_per_k2
                    .zip(t.quadratic_sigma_ppm_per_k2)
                    .map(|(q, s)| format!(", quadratic {q:+.5} ± {s:.5} ppm/K²"))
                    .unwrap_or_default(),
                if t.trusted {
                    "used in holdover"
                } else {
                    "not yet trusted"
                },
                t.sensor,
                t.compensation_ppm
                    .map(|c| format!(", compensating {c:+.4} ppm"))
                    .unwrap_or_default()
            ),
        );
    }
    if let Some(q) = &r.qerr {
        let skipped = q.skipped_no_message + q.skipped_invalid + q.skipped_uncertain;
        row(
            "qErr",
            format!(
                "{}, {} TIM-TP, {} edges corrected, {} not ({} no message, {} invalid, {} uncertain){}",
                if q.enabled { "on" } else { "off" },
                q.messages,
                q.applied,
                skipped,
                q.skipped_no_message,
                q.skipped_invalid,
                q.skipped_uncertain,
                q.last_correction_ns
                    .map(|c| format!(", last {c:+.3} ns"))
                    .unwrap_or_default()
            ),
        );
        if let Some(v) = &q.survey_in {
            row(
                "Survey-in",
                format!(
                    "{}, {} s, {} positions, accuracy {:.2} m",
                    if v.valid {
                        "done (position held)"
                    } else if v.active {
                        "in progress"
                    } else {
                        "stopped"
                    },
                    v.duration_s,
                    v.observations,
                    v.accuracy_m
                ),
            );
        }
    }
    row(
        "PPS",
        format!(
            "{}, reach {:o}, {} seen, {} used, {} missed ({})",
            r.pps
                .last_seen_age_s
                .map_or("no pulse yet".to_string(), |a| format!(
                    "last pulse {} ago",
                    human_age(a)
                )),
            r.pps.reach,
            r.pps.pulses_seen,
            r.pps.edges_used,
            r.pps.pulses_missed,
            r.pps.device
        ),
    );
    if let Some(phc) = &r.pps.phc {
        row("PHC mapping", phc_mapping(phc));
    }
    row(
        "NMEA",
        format!(
            "{}, reach {:o}, {} sentences, {} checksum errors ({}{})",
            r.nmea
                .last_seen_age_s
                .map_or("no output yet".to_string(), |a| format!(
                    "last epoch {} ago",
                    human_age(a)
                )),
            r.nmea.reach,
            r.nmea.sentences,
            r.nmea.checksum_errors,
            r.nmea.device,
            r.nmea
                .baud
                .map(|b| format!(" at {b} baud"))
                .unwrap_or_default()
        ),
    );
    row(
        "Receiver",
        if r.receiver.identified {
            format!("{}, firmware {}", r.receiver.family, r.receiver.firmware)
        } else {
            "unknown (not identified yet)".to_string()
        },
    );
    row(
        "NMEA delay",
        match (
            r.nmea.delay_median_ms,
            r.nmea.delay_p95_ms,
            r.nmea.delay_learned_ms,
        ) {
            (Some(m), Some(p), _) => format!("{m:.1} ms after the pulse (p95 {p:.1} ms)"),
            (_, _, Some(l)) => format!("{l:.1} ms after the pulse (learned)"),
            _ => "not measured yet".to_string(),
        },
    );
    row(
        "Fix",
        format!(
            "{}{}, {} satellites used, {} visible",
            r.nmea.fix_mode,
            if r.nmea.fix_valid { "" } else { " (not valid)" },
            opt(r.nmea.sats_used),
            opt(r.nmea.sats_visible)
        ),
    );
    let req = |k: &str| r.ntp.requests.get(k).copied().unwrap_or(0);
    row(
        "Requests",
        format!(
            "{:.1}/s; served {}, authenticated {}, rate-limited {}, denied {}, malformed {}, auth failed {}",
            r.ntp.requests_per_second,
            req("served"),
            req("authenticated"),
            req("rate_limited"),
            req("denied"),
            req("malformed"),
            req("auth_failed")
        ),
    );
    if let Some(nts) = &r.nts {
        row(
            "NTS",
            format!(
                "{} requests, {} NAKs; NTS-KE {} sessions, {} refused, on {}",
                nts.requests,
                nts.naks,
                nts.ke_sessions,
                nts.ke_error_responses
                    + nts.ke_failed_handshakes
                    + nts.ke_timeouts
                    + nts.ke_refused_busy,
                nts.ke_listen.join(", ")
            ),
        );
        row(
            "NTS certificate",
            format!(
                "{}, expires {} ({} days)",
                nts.certificate_subject, nts.certificate_expires, nts.certificate_days_left
            ),
        );
    }
    if let Some(h) = &r.hardware_detection {
        row("Hat detection", h.outcome.clone());
        for attempt in &h.tried {
            row("  tried", attempt.clone());
        }
    }
    if let Some(d) = &r.label_disagreement {
        let serving = if d.serving_suspended {
            "not serving as synchronised".to_string()
        } else {
            format!("still served for up to {} s", d.grace_s)
        };
        let leap = d
            .unannounced_leap
            .as_ref()
            .map(|l| format!("; looks like an unannounced leap {l}"))
            .unwrap_or_default();
        row(
            "Label dispute",
            format!(
                "receiver says {:+} s for {:.0} s ({serving}; believed after {} s{leap})",
                d.offset_s, d.duration_s, d.confirm_after_s
            ),
        );
    }
    if let Some(d) = &r.leap.sources_disagree {
        row(
            "Leap dispute",
            format!(
                "receiver says {}, leap-seconds.list says {} for {}; following the {}",
                d.receiver,
                d.leap_file,
                d.at,
                d.following.replace('_', " ")
            ),
        );
    }
    if r.leap.file_expired {
        row(
            "Leap file",
            format!(
                "leap-seconds.list EXPIRED {}: ignored, leap seconds only from the receiver; update tzdata",
                r.leap.file_expires.as_deref().unwrap_or("?")
            ),
        );
    }
    if let Some(rej) = &r.last_rejection {
        row(
            "Last rejection",
            format!(
                "{} ago: {} ({})",
                human_age(rej.age_s),
                rej.explanation,
                rej.detail
            ),
        );
    }
    if r.snapshot_age_s > 5.0 {
        row(
            "WARNING",
            format!(
                "the discipline's last snapshot is {} old: the discipline thread may be stuck",
                human_age(r.snapshot_age_s)
            ),
        );
    }
    if r.alerts.is_empty() {
        row("Alerts", "none".to_string());
    } else {
        for (i, a) in r.alerts.iter().enumerate() {
            row(
                if i == 0 { "Alerts" } else { "" },
                format!(
                    "{} {} ({} ago): {}",
                    a.severity.to_uppercase(),
                    a.name,
                    human_age(a.active_for_s),
                    a.message
                ),
            );
        }
    }
    out
}

/// The PHC source's mapping on one line: "extended ±840 ns, PHC +25001.2 ppb
/// fast, 412 events, 0 other-edge dropped (/dev/ptp0)".
fn phc_mapping(p: &crate::ctl::protocol::PhcReport) -> String {
    format!(
        "{} {}, {}, {} events, {} other-edge dropped ({})",
        p.mapping_method,
        p.mapping_uncertainty_ns
            .map_or("(no edge mapped yet)".to_string(), |u| format!("±{u} ns")),
        p.fast_ppb
            .map_or("rate not measured yet".to_string(), |r| format!(
                "PHC {r:+.1} ppb fast"
            )),
        p.extts_events,
        p.other_edge_dropped,
        p.device
    )
}

/// Where the daemon serves: NTP addresses, page and metrics URLs.
fn serving(e: &EndpointsReport) -> Option<String> {
    let mut parts: Vec<String> = e.ntp.iter().map(|a| format!("NTP {a}")).collect();
    if let Some(web) = &e.web {
        parts.push(format!("page {web}"));
    }
    if let Some(metrics) = &e.metrics {
        parts.push(format!("metrics {metrics}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// `skytimectl sources`, after `chronyc sources`.
pub fn sources(r: &SourcesReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "MS Name   Device               Reach LastRx Last sample"
    );
    let _ = writeln!(out, "{}", "=".repeat(79));
    for s in &r.sources {
        let sample = match (s.name.as_str(), s.offset_ns) {
            ("NMEA", Some(delay)) => format!(
                "delay {}{}",
                human_ns(delay),
                // The report carries p95 minus median; show p95 itself, as `status` does.
                s.error_ns
                    .map(|e| format!(", p95 {}", human_ns(delay + e)))
                    .unwrap_or_default()
            ),
            (_, Some(offset)) => format!(
                "{}{} +/- {}{}",
                if offset >= 0.0 { "+" } else { "-" },
                human_ns(offset.abs()),
                s.error_ns.map_or("?".to_string(), human_ns),
                s.jitter_ns
                    .map(|j| format!(", jitter {}", human_ns(j)))
                    .unwrap_or_default()
            ),
            (_, None) => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "#{} {:<6} {:<20} {:>5} {:>6} {}",
            s.selection,
            s.name,
            truncate(&s.device, 20),
            s.reach_octal,
            s.last_sample_age_s.map_or("-".to_string(), human_age),
            sample
        );
    }
    let _ = writeln!(out);
    for s in &r.sources {
        let _ = writeln!(
            out,
            "{}: {}; {} of {} samples used",
            s.name, s.note, s.samples_used, s.samples_seen
        );
    }
    let _ = writeln!(out, "State: {}", r.state);
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let tail: String = s
            .chars()
            .rev()
            .take(n - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}

/// `skytimectl clients`, busiest first.
pub fn clients(r: &ClientsReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<39} {:>10} {:>9} {:>9} {:>7} {:>4}",
        "Address", "Requests", "KoD/drop", "Rate/s", "Last", "NTS"
    );
    let _ = writeln!(out, "{}", "=".repeat(83));
    for c in &r.clients {
        let _ = writeln!(
            out,
            "{:<39} {:>10} {:>9} {:>9.2} {:>7} {:>4}",
            c.address,
            c.requests,
            c.limited,
            c.rate_per_s,
            human_age(c.last_seen_age_s),
            if c.nts > 0 { "yes" } else { "-" }
        );
    }
    if r.clients.is_empty() {
        let _ = writeln!(out, "(no client has sent a request)");
    }
    let _ = writeln!(
        out,
        "\n{} client(s) shown; {:.1} requests/s in total; rates over the last {:.0} s",
        r.clients.len(),
        r.requests_per_second,
        r.rate_window_s
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::protocol::{QerrReport, SurveyInReport};
    use crate::ctl::report::{ReportContext, sources_from};
    use crate::state::DaemonState;
    use skytime_timebase::{MonoNanos, UnixNanos};
    use std::sync::Arc;

    fn report() -> StatusReport {
        let ctx = ReportContext::new(
            Arc::new(DaemonState::new(
                crate::fixtures::locked_status(),
                false,
                UnixNanos(0),
            )),
            MonoNanos(0),
            "/dev/ttyAMA0".into(),
            "/dev/pps0".into(),
        );
        ctx.status()
    }

    #[test]
    fn status_lines_are_aligned_and_complete() {
        let text = status(&report());
        for label in [
            "State",
            "Reference ID",
            "Stratum",
            "Ref time (UTC)",
            "System time",
            "Last offset",
            "RMS offset",
            "Frequency",
            "Residual freq",
            "Skew",
            "Root dispersion",
            "Leap status",
            "PPS",
            "NMEA",
            "NMEA delay",
            "Fix",
            "Requests",
            "Alerts",
        ] {
            let prefix = format!("{label:<16}: ");
            assert!(
                text.lines().any(|l| l.starts_with(&prefix)),
                "no {label:?} line in\n{text}"
            );
        }
        assert!(text.contains("Reference ID    : 47505300 (GPS)"), "{text}");
        assert!(
            text.contains("Last offset     : +0.000000020 seconds"),
            "{text}"
        );
        assert!(text.contains("reach 377"), "{text}");
        assert!(
            text.contains("480.0 ms after the pulse (p95 500.0 ms)"),
            "{text}"
        );
        assert!(text.contains("3D, 7 satellites used, 8 visible"), "{text}");
        assert!(text.contains("Leap status     : Normal"), "{text}");
    }

    #[test]
    fn a_phc_source_shows_its_mapping() {
        assert!(!status(&report()).contains("PHC"), "kernel PPS, no line");
        let daemon = Arc::new(DaemonState::new(
            crate::fixtures::locked_status(),
            false,
            UnixNanos(0),
        ));
        let counters = Arc::new(skytime_pps::PpsCounters::default());
        counters
            .phc
            .set_opened("/dev/ptp0", skytime_pps::OffsetMethod::Extended);
        let _ = daemon.pps.set(Arc::clone(&counters));
        let ctx = ReportContext::new(
            daemon,
            MonoNanos(0),
            "/dev/ttyAMA0".into(),
            "/dev/ptp0 channel 0 (PHC)".into(),
        );
        let text = status(&ctx.status());
        assert!(
            text.contains("PHC mapping     : extended (no edge mapped yet), rate not measured yet, 0 events, 0 other-edge dropped (/dev/ptp0)"),
            "{text}"
        );
        counters.phc.set_mapping_uncertainty_ns(840);
        counters.phc.set_fast_ppb(25_001.24);
        counters
            .phc
            .events
            .fetch_add(412, std::sync::atomic::Ordering::Relaxed);
        let r = ctx.status();
        let phc = r.pps.phc.as_ref().expect("pps.phc");
        assert_eq!(
            (phc.device.as_str(), phc.mapping_method.as_str()),
            ("/dev/ptp0", "extended")
        );
        assert_eq!(phc.mapping_uncertainty_ns, Some(840));
        let text = status(&r);
        assert!(
            text.contains("PHC mapping     : extended ±840 ns, PHC +25001.2 ppb fast, 412 events, 0 other-edge dropped (/dev/ptp0)"),
            "{text}"
        );
    }

    #[test]
    fn qerr_and_survey_in_are_shown_once_the_receiver_reports_them() {
        assert!(!status(&report()).contains("qErr"), "no TIM-TP, no line");
        let mut r = report();
        r.qerr = Some(QerrReport {
            enabled: true,
            messages: 100,
            applied: 90,
            skipped_no_message: 8,
            skipped_invalid: 1,
            skipped_uncertain: 1,
            last_correction_ns: Some(-4.25),
            survey_in: Some(SurveyInReport {
                active: false,
                valid: true,
                duration_s: 600,
                observations: 598,
                accuracy_m: 1.2,
            }),
        });
        let text = status(&r);
        assert!(
            text.contains(
                "qErr            : on, 100 TIM-TP, 90 edges corrected, 10 not (8 no message, 1 invalid, 1 uncertain), last -4.250 ns"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "Survey-in       : done (position held), 600 s, 598 positions, accuracy 1.20 m"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_receiver_is_unknown_until_identified_then_named() {
        let r = report();
        assert!(!r.receiver.identified);
        assert_eq!(
            (r.receiver.family.as_str(), r.receiver.firmware.as_str()),
            ("unknown", "unknown")
        );
        assert!(
            status(&r).contains("Receiver        : unknown (not identified yet)"),
            "{}",
            status(&r)
        );
        let mut r = report();
        r.receiver = crate::ctl::protocol::ReceiverIdentityReport {
            identified: true,
            family: "u-blox LEA-M8T-0".into(),
            firmware: "TIM 1.10".into(),
        };
        let text = status(&r);
        assert!(
            text.contains("Receiver        : u-blox LEA-M8T-0, firmware TIM 1.10"),
            "{text}"
        );
    }

    #[test]
    fn an_unknown_hat_says_what_detection_tried() {
        let mut r = report();
        assert!(!status(&r).contains("Hat detection"));
        r.hardware_detection = Some(crate::ctl::detection::parse_detection_report(
            "/var/lib/skytime-image/hat-detection.txt".into(),
            "no GNSS receiver found.\ntried: EEPROM: none\ntried: /dev/ttyAMA0 at 9600: no NMEA\n",
        ));
        let text = status(&r);
        assert!(
            text.contains("Hat detection   : no GNSS receiver found."),
            "{text}"
        );
        let tried: Vec<&str> = text.lines().filter(|l| l.starts_with("  tried")).collect();
        assert_eq!(
            tried,
            [
                "  tried         : EEPROM: none",
                "  tried         : /dev/ttyAMA0 at 9600: no NMEA"
            ],
            "{text}"
        );
    }

    #[test]
    fn sources_show_octal_reach_and_selection() {
        let text = sources(&sources_from(&report()));
        let pps = text
            .lines()
            .find(|l| l.starts_with("#* PPS"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(pps.contains(" 377 "), "{pps}");
        let nmea = text
            .lines()
            .find(|l| l.starts_with("#+ NMEA"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(nmea.contains("delay 480.000 ms, p95 500.000 ms"), "{nmea}");
    }

    #[test]
    fn ages_read_like_chrony() {
        assert_eq!(human_age(0.42), "0.4s");
        assert_eq!(human_age(42.0), "42s");
        assert_eq!(human_age(312.0), "5m12s");
        assert_eq!(human_age(3.0 * 3600.0 + 240.0), "3h04m");
        assert_eq!(human_age(2.0 * 86_400.0 + 5.0 * 3600.0), "2d05h");
    }
}
