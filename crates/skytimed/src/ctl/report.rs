//! Builds the protocol's reports from the daemon's shared state. Every
//! surface (control socket, status page, metrics) goes through here, so they
//! all show the same numbers; each call reads snapshots only and never waits
//! on the discipline.

use crate::ctl::protocol::*;
use crate::human::fix_mode_name;
use crate::state::{DaemonState, HistoryPoint};
use skytime_gnss::FixMode;
use skytime_ntp::{ClientSummary, Outcome};
use skytime_refclock::{Nanos, Status};
use skytime_timebase::{LeapChange, MonoNanos, NANOS_PER_SEC, UnixNanos};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// How far back `skytimectl clients` averages request rates.
pub const CLIENT_RATE_WINDOW_S: i64 = 60;

/// How many clients the rate tracker follows each second.
const TRACKED_CLIENTS: usize = 256;

/// What the reports need besides [`DaemonState`].
pub struct ReportContext {
    /// The daemon's shared state.
    pub daemon: Arc<DaemonState>,
    /// When the surfaces started (monotonic), for uptime and "never seen".
    pub started: MonoNanos,
    /// The receiver's serial device.
    pub gnss_device: String,
    /// The PPS device ("simulated" under `--simulate`).
    pub pps_device: String,
    /// Per-client request rates.
    pub client_rates: ClientRates,
    /// The history as of the last tick: web requests read this copy, so
    /// however many there are, the discipline's history lock is taken by the
    /// surfaces only once a second.
    history: arc_swap::ArcSwap<Vec<HistoryPoint>>,
    /// The SD image's hat detection report, read at each status request.
    detection_report: Option<std::path::PathBuf>,
}

/// Now on the monotonic clock every time source of the daemon uses (the
/// kernel's CLOCK_MONOTONIC, which the simulated hat reads too).
pub fn now_mono() -> MonoNanos {
    use skytime_timebase::TimeSource;
    skytime_timebase::HostClock.monotonic()
}

fn secs(ns: i64) -> f64 {
    ns as f64 / NANOS_PER_SEC as f64
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339(t: UnixNanos) -> String {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| format!("{}ns", t.0))
}

/// The receiver's identity; "unknown" (not omitted) until it has said, and an
/// empty firmware (a TXT line naming only the chip) also reads "unknown".
fn receiver_identity(
    info: Option<skytime_gnss::configure::ReceiverInfo>,
) -> ReceiverIdentityReport {
    let Some(info) = info else {
        return ReceiverIdentityReport::default();
    };
    let known = |s: String| {
        if s.is_empty() {
            "unknown".to_owned()
        } else {
            s
        }
    };
    ReceiverIdentityReport {
        identified: true,
        family: known(info.family),
        firmware: known(info.firmware),
    }
}

/// The PHC source's mapping, when the PPS comes from a PHC.
fn phc_report(daemon: &DaemonState) -> Option<PhcReport> {
    let p = daemon.pps.get()?.phc.snapshot()?;
    Some(PhcReport {
        device: p.device,
        mapping_method: p.method.name().to_string(),
        mapping_uncertainty_ns: p.mapping_uncertainty_ns,
        fast_ppb: p.fast_ppb,
        extts_events: p.events,
        other_edge_dropped: p.other_edge_dropped,
    })
}

/// NTS counters and certificate, when NTS is on. Certificate expiry is
/// judged by the host's clock, as TLS peers judge it.
fn nts_report(daemon: &DaemonState) -> Option<NtsReport> {
    let nts = daemon.nts.get()?;
    let (requests, naks) = daemon.ntp.get().map_or((0, 0), |n| {
        let stats = n.stats();
        (
            stats.outcome(Outcome::NtsAuthenticated),
            stats.outcome(Outcome::NtsNak),
        )
    });
    let cert = nts.certificate();
    let now_s = crate::nts::certificate_now_s();
    let ke = &nts.ke;
    Some(NtsReport {
        ke_listen: nts.ke_addrs.iter().map(|a| a.to_string()).collect(),
        ke_sessions: ke.sessions.load(Ordering::Relaxed),
        ke_error_responses: ke.error_responses.load(Ordering::Relaxed),
        ke_failed_handshakes: ke.failed_handshakes.load(Ordering::Relaxed),
        ke_timeouts: ke.timeouts.load(Ordering::Relaxed),
        ke_refused_busy: ke.refused_busy.load(Ordering::Relaxed),
        requests,
        naks,
        certificate_subject: cert.subject.clone(),
        certificate_expires: rfc3339(UnixNanos::from_secs_nanos(cert.not_after_unix_s, 0)),
        certificate_days_left: cert.days_left(now_s),
        cookie_key_file: nts.cookie_key_file.display().to_string(),
    })
}

/// A monotonic instant of the snapshot, on the disciplined realtime clock.
fn mono_to_realtime(status: &Status, t: MonoNanos) -> UnixNanos {
    status.as_of.add_nanos(t.nanos_since(status.as_of_mono))
}

fn leap_name(l: LeapChange) -> &'static str {
    match l {
        LeapChange::None => "none",
        LeapChange::Insert => "insert",
        LeapChange::Delete => "delete",
    }
}

fn source_name(source: skytime_refclock::LeapSource) -> &'static str {
    match source {
        skytime_refclock::LeapSource::Receiver => "receiver",
        skytime_refclock::LeapSource::LeapFile => "leap_file",
    }
}

/// gpsd's mode number, as `skytime_fix_mode` exports it.
pub fn fix_mode_code(mode: FixMode) -> u8 {
    match mode {
        FixMode::Unknown => 0,
        FixMode::NoFix => 1,
        FixMode::Fix2D => 2,
        FixMode::Fix3D => 3,
    }
}

/// The group of `skytime_ntp_requests_total{outcome}` a server outcome counts in.
pub fn outcome_group(o: Outcome) -> &'static str {
    match o {
        Outcome::Served | Outcome::ServedInterleaved | Outcome::ServedSymmetric => "served",
        Outcome::Authenticated | Outcome::NtsAuthenticated => "authenticated",
        Outcome::CryptoNak | Outcome::AuthFailedIgnored | Outcome::NtsNak => "auth_failed",
        Outcome::DeniedKod | Outcome::DeniedIgnored => "denied",
        Outcome::RateLimitedKod | Outcome::RateLimitedDropped => "rate_limited",
        Outcome::Malformed | Outcome::BadVersion | Outcome::DroppedMode => "malformed",
    }
}

/// The groups of [`outcome_group`], each always present in reports and metrics.
pub const OUTCOME_GROUPS: [&str; 6] = [
    "served",
    "rate_limited",
    "denied",
    "malformed",
    "authenticated",
    "auth_failed",
];

impl ReportContext {
    /// A context over `daemon`; "never seen" and uptime count from `started`.
    pub fn new(
        daemon: Arc<DaemonState>,
        started: MonoNanos,
        gnss_device: String,
        pps_device: String,
    ) -> Self {
        Self {
            daemon,
            started,
            gnss_device,
            pps_device,
            client_rates: ClientRates::default(),
            history: arc_swap::ArcSwap::from_pointee(Vec::new()),
            detection_report: None,
        }
    }

    /// Shows the hat detection report in `path` (when it exists) in status.
    pub fn with_detection_report(mut self, path: std::path::PathBuf) -> Self {
        self.detection_report = Some(path);
        self
    }

    /// Once a second: copies the daemon's history for the web API.
    pub fn refresh_history(&self) {
        self.history.store(Arc::new(self.daemon.history()));
    }

    /// The history as of the last [`ReportContext::refresh_history`].
    pub fn history(&self) -> Arc<Vec<HistoryPoint>> {
        self.history.load_full()
    }

    /// The full status report, as of the latest snapshot.
    pub fn status(&self) -> StatusReport {
        let now = now_mono();
        let daemon = &self.daemon;
        let s = daemon.status.load();
        let alerts = daemon.alerts.load();
        let age = |t: MonoNanos| secs(now.nanos_since(t)).max(0.0);
        let gnss = daemon.gnss.get();
        let kernel = daemon.pps.get().map(|c| c.snapshot());
        let ntp = daemon.ntp.get();

        let mut requests: BTreeMap<String, u64> =
            OUTCOME_GROUPS.iter().map(|g| (g.to_string(), 0)).collect();
        let mut counters = BTreeMap::new();
        if let Some(ntp) = ntp {
            let stats = ntp.stats();
            for o in Outcome::ALL {
                let n = stats.outcome(*o);
                *requests.entry(outcome_group(*o).to_string()).or_default() += n;
            }
            counters.extend(
                stats
                    .snapshot()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v)),
            );
        }

        let endpoints = daemon
            .endpoints
            .get()
            .map(|e| EndpointsReport {
                ntp: e.ntp.iter().map(|a| a.to_string()).collect(),
                metrics: e.metrics.map(|a| format!("http://{a}/metrics")),
                web: e.web.map(|a| format!("http://{a}/")),
                control_socket: e.control_socket.as_ref().map(|p| p.display().to_string()),
            })
            .unwrap_or_default();

        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_string(),
            simulated: daemon.simulated,
            as_of: rfc3339(s.as_of),
            as_of_unix_ns: s.as_of.0,
            snapshot_age_s: age(s.as_of_mono),
            uptime_s: age(self.started),
            state: s.state.as_str().to_string(),
            state_reason: s.state_reason.clone(),
            state_since: rfc3339(mono_to_realtime(&s, s.state_since)),
            state_for_s: age(s.state_since),
            synchronised: s.serves_synchronised(),
            stratum: s.stratum,
            reference_id: s.reference_id.as_text(),
            reference_time: s.reference_time.map(rfc3339),
            reference_age_s: s
                .reference_time
                .map(|t| secs(s.as_of.nanos_since(t)) + age(s.as_of_mono)),
            offset_ns: s.offset_ns,
            offset_sigma_ns: s.offset_sigma_ns,
            rms_offset_ns: s.rms_offset_ns,
            // The refclock reports the correction; operators read the error.
            frequency_fast_ppm: -s.frequency_ppm,
            residual_frequency_ppm: s.residual_frequency_ppm,
            skew_ppm: s.skew_ppm,
            jitter_ns: s.jitter_ns,
            root_delay_ns: 0.0,
            root_dispersion_ns: s.root_dispersion_ns,
            dispersion_rate_ns_per_s: s.dispersion_rate_ns_per_s,
            leap: LeapReport {
                status: match s.leap {
                    LeapChange::None => "normal",
                    other => leap_name(other),
                }
                .to_string(),
                at: s.leap_at.map(rfc3339),
                source: s.leap_source.map(|src| source_name(src).to_string()),
                armed: leap_name(s.leap_armed).to_string(),
                sources_disagree: s.leap_sources_disagree.map(|d| LeapDisputeReport {
                    receiver: leap_name(d.receiver).to_string(),
                    leap_file: leap_name(d.leap_file).to_string(),
                    at: rfc3339(d.at),
                    following: source_name(d.following).to_string(),
                }),
                file_expires: s.leap_file_expires.map(rfc3339),
                file_expired: s.leap_file_expired_at().is_some(),
            },
            holdover: s.holdover.map(|h| HoldoverReport {
                elapsed_s: h.elapsed.as_secs_f64(),
                bound_ns: h.bound_ns,
                limit_ns: h.limit_ns,
            }),
            holdover_limit_ns: s.holdover_limit_ns,
            temperature: s.thermal.as_ref().map(|t| TemperatureReport {
                sensor: t.sensor.as_str().to_string(),
                reading_c: t.reading_c,
                coefficient_ppm_per_k: t.coefficient_ppm_per_k,
                coefficient_sigma_ppm_per_k: t.coefficient_sigma_ppm_per_k,
                quadratic_ppm_per_k2: t.quadratic_ppm_per_k2,
                quadratic_sigma_ppm_per_k2: t.quadratic_sigma_ppm_per_k2,
                lag_s: t.lag.map(Nanos::secs),
                trusted: t.trusted,
                faults: t.faults,
                compensation_ppm: t.compensation_ppm,
            }),
            qerr: s.qerr.as_ref().map(|q| QerrReport {
                enabled: q.enabled,
                messages: q.messages,
                applied: q.applied,
                skipped_no_message: q.skipped_no_message,
                skipped_invalid: q.skipped_invalid,
                skipped_uncertain: q.skipped_uncertain,
                last_correction_ns: q.last_correction_ns,
                survey_in: q.survey_in.map(|v| SurveyInReport {
                    active: v.active,
                    valid: v.valid,
                    duration_s: v.duration_s,
                    observations: v.observations,
                    accuracy_m: v.accuracy_m,
                }),
            }),
            receiver: receiver_identity(gnss.map(|g| g.receiver()).unwrap_or_default()),
            steps: s.steps,
            pps: PpsReport {
                device: self.pps_device.clone(),
                last_seen_age_s: s.pps.last_edge_received.map(age),
                last_edge: s.pps.last_edge.map(rfc3339),
                reach: s.pps.reach,
                pulses_seen: kernel.map_or(s.pps.edges_seen, |k| k.edges),
                pulses_missed: kernel.map_or(s.pps.pulses_missed, |k| k.missed_pulses),
                edges_used: s.pps.edges_used,
                kernel: kernel.map(|k| KernelPpsReport {
                    edges: k.edges,
                    missed_pulses: k.missed_pulses,
                    sequence_gaps: k.sequence_gaps,
                    timeouts: k.timeouts,
                    errors: k.errors,
                }),
                phc: phc_report(daemon),
            },
            nmea: NmeaReport {
                device: self.gnss_device.clone(),
                connected: gnss.map(|g| g.connected.load(Ordering::Relaxed)),
                baud: gnss
                    .map(|g| g.baud.load(Ordering::Relaxed))
                    .filter(|b| *b != 0),
                last_seen_age_s: s.nmea.last_epoch_at.map(|a| age(a.monotonic)),
                last_label: s.nmea.last_label.map(|l| l.to_string()),
                reach: s.nmea.reach,
                fix_valid: s.nmea.fix_valid,
                fix_mode: fix_mode_name(s.nmea.fix_mode).to_string(),
                fix_mode_code: fix_mode_code(s.nmea.fix_mode),
                sats_used: s.nmea.sats_used,
                sats_visible: s.nmea.sats_visible,
                satellites: s
                    .nmea
                    .satellites
                    .iter()
                    .map(|sat| SatelliteReport {
                        prn: sat.prn,
                        snr_dbhz: sat.snr_dbhz,
                        used: sat.used,
                    })
                    .collect(),
                delay_ms: s.nmea.delay_median.or(s.nmea.delay_learned).map(Nanos::ms),
                delay_learned_ms: s.nmea.delay_learned.map(Nanos::ms),
                delay_median_ms: s.nmea.delay_median.map(Nanos::ms),
                delay_p95_ms: s.nmea.delay_p95.map(Nanos::ms),
                epochs_seen: s.nmea.epochs_seen,
                epochs_paired: s.nmea.epochs_paired,
                sentences: gnss.map_or(0, |g| g.sentences.load(Ordering::Relaxed)),
                checksum_errors: gnss.map_or(0, |g| g.checksum_errors.load(Ordering::Relaxed)),
                garbage_bytes: gnss.map_or(0, |g| g.garbage_bytes.load(Ordering::Relaxed)),
                reopens: gnss.map_or(0, |g| g.reopens.load(Ordering::Relaxed)),
            },
            ntp: NtpReport {
                requests_per_second: ntp.map_or(0.0, |n| n.requests_per_second()),
                requests,
                counters,
            },
            alerts: alerts
                .alerts
                .iter()
                .map(|a| AlertReport {
                    name: a.kind.name().to_string(),
                    severity: a.kind.severity().as_str().to_string(),
                    since: rfc3339(mono_to_realtime(&s, a.since)),
                    active_for_s: age(a.since),
                    message: a.message.clone(),
                })
                .collect(),
            rejections: s
                .rejections
                .iter()
                .into_iter()
                .map(|(reason, n)| (reason_name(reason), n))
                .collect(),
            last_rejection: s.last_rejection.as_ref().map(|r| RejectionReport {
                reason: reason_name(r.reason),
                explanation: r.reason.explain().to_string(),
                age_s: age(r.at),
                detail: r.detail.clone(),
            }),
            label_disagreement: s.label_disagreement.map(|d| LabelDisagreementReport {
                offset_s: d.offset_s,
                duration_s: d.duration.as_secs_f64(),
                confirm_after_s: d.confirm_after.as_secs(),
                grace_s: d.grace.as_secs(),
                serving_suspended: d.serving_suspended,
                unannounced_leap: d.unannounced_leap.map(|l| leap_name(l).to_string()),
            }),
            endpoints,
            nts: nts_report(daemon),
            hardware_detection: self
                .detection_report
                .as_deref()
                .and_then(crate::ctl::detection::read_detection_report),
        }
    }

    /// PPS and NMEA as chrony shows refclocks.
    pub fn sources(&self) -> SourcesReport {
        sources_from(&self.status())
    }

    /// The busiest clients, at most `limit`.
    pub fn clients(&self, limit: usize) -> ClientsReport {
        let now = now_mono();
        let ntp = self.daemon.ntp.get();
        let current = ntp.map(|n| n.busiest_clients(limit)).unwrap_or_default();
        let rates = self.client_rates.rates(now, &current);
        ClientsReport {
            requests_per_second: ntp.map_or(0.0, |n| n.requests_per_second()),
            rate_window_s: CLIENT_RATE_WINDOW_S as f64,
            clients: current
                .iter()
                .zip(rates)
                .map(|(c, rate)| ClientReport {
                    address: c.addr.to_string(),
                    requests: c.requests,
                    limited: c.limited,
                    nts: c.nts,
                    rate_per_s: rate,
                    last_seen_age_s: secs(now.nanos_since(c.last_seen)).max(0.0),
                })
                .collect(),
        }
    }

    /// Once a second: remembers the busiest clients for their rates.
    pub fn sample_clients(&self) {
        if let Some(ntp) = self.daemon.ntp.get() {
            self.client_rates
                .sample(now_mono(), ntp.busiest_clients(TRACKED_CLIENTS));
        }
    }
}

fn reason_name(r: skytime_refclock::RejectReason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{r:?}"))
}

/// chrony's `sources` view of a status report.
pub fn sources_from(s: &StatusReport) -> SourcesReport {
    let locked = s.state == "locked";
    let pps_selection = if s.pps.reach == 0 {
        "?"
    } else if locked {
        "*"
    } else {
        "-"
    };
    let nmea_fresh = s.nmea.reach != 0 && s.nmea.fix_valid;
    let nmea_selection = if !nmea_fresh {
        "?"
    } else if locked {
        "+"
    } else {
        "-"
    };
    let pps_note = match (s.state.as_str(), s.pps.reach) {
        (_, 0) if s.pps.last_seen_age_s.is_none() => "no pulse yet".to_string(),
        (_, 0) => "no pulse used in the last 8 s".to_string(),
        ("locked", _) => "disciplining the clock".to_string(),
        ("holdover", _) => "pulses back; re-checking before use".to_string(),
        (state, _) => format!("{state}: {}", s.state_reason),
    };
    let nmea_note = if s.nmea.connected == Some(false) {
        "serial device not open".to_string()
    } else if s.nmea.last_seen_age_s.is_none() {
        "no output yet".to_string()
    } else if !s.nmea.fix_valid {
        format!("no valid fix ({})", s.nmea.fix_mode)
    } else {
        format!(
            "labels the pulses; {} fix, {} of {} satellites",
            s.nmea.fix_mode,
            s.nmea.sats_used.map_or("?".into(), |n| n.to_string()),
            s.nmea.sats_visible.map_or("?".into(), |n| n.to_string())
        )
    };
    SourcesReport {
        state: s.state.clone(),
        sources: vec![
            SourceReport {
                name: "PPS".into(),
                device: s.pps.device.clone(),
                selection: pps_selection.into(),
                reach: s.pps.reach,
                reach_octal: format!("{:o}", s.pps.reach),
                last_sample_age_s: s.pps.last_seen_age_s,
                offset_ns: (s.pps.edges_used > 0).then_some(s.offset_ns),
                error_ns: (s.pps.edges_used > 0).then_some(s.offset_sigma_ns),
                jitter_ns: (s.pps.edges_used > 0).then_some(s.jitter_ns),
                samples_seen: s.pps.pulses_seen,
                samples_used: s.pps.edges_used,
                note: pps_note,
            },
            SourceReport {
                name: "NMEA".into(),
                device: s.nmea.device.clone(),
                selection: nmea_selection.into(),
                reach: s.nmea.reach,
                reach_octal: format!("{:o}", s.nmea.reach),
                last_sample_age_s: s.nmea.last_seen_age_s,
                offset_ns: s.nmea.delay_ms.map(|ms| ms * 1e6),
                error_ns: match (s.nmea.delay_p95_ms, s.nmea.delay_median_ms) {
                    (Some(p95), Some(median)) => Some((p95 - median).max(0.0) * 1e6),
                    _ => None,
                },
                jitter_ns: None,
                samples_seen: s.nmea.epochs_seen,
                samples_used: s.nmea.epochs_paired,
                note: nmea_note,
            },
        ],
    }
}

/// Request rates per client, from a minute of once-a-second samples of the
/// server's busiest-client list.
#[derive(Default)]
pub struct ClientRates {
    samples: Mutex<VecDeque<(MonoNanos, Vec<ClientSummary>)>>,
}

impl ClientRates {
    /// Records the list as of `now`, forgetting samples older than the window.
    pub fn sample(&self, now: MonoNanos, clients: Vec<ClientSummary>) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.push_back((now, clients));
        while samples
            .front()
            .is_some_and(|(t, _)| now.nanos_since(*t) > CLIENT_RATE_WINDOW_S * NANOS_PER_SEC)
        {
            samples.pop_front();
        }
    }

    /// Requests per second of each of `current` over the window: the growth
    /// of its count since the oldest sample (a client absent from it counts
    /// from zero; one whose count went down re-entered the table and counts
    /// from its new entry).
    pub fn rates(&self, now: MonoNanos, current: &[ClientSummary]) -> Vec<f64> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let Some((oldest_t, oldest)) = samples.front() else {
            return vec![0.0; current.len()];
        };
        let span = secs(now.nanos_since(*oldest_t)).max(1.0);
        current
            .iter()
            .map(|c| {
                let before = oldest
                    .iter()
                    .find(|o| o.addr == c.addr)
                    .map_or(0, |o| o.requests);
                let grown = if c.requests >= before {
                    c.requests - before
                } else {
                    c.requests
                };
                grown as f64 / span
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn client(addr: &str, requests: u64) -> ClientSummary {
        ClientSummary {
            addr: addr.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            requests,
            limited: 0,
            nts: 0,
            last_seen: MonoNanos(0),
        }
    }

    #[test]
    fn client_rates_over_the_window() {
        let r = ClientRates::default();
        let t = |s: i64| MonoNanos(s * NANOS_PER_SEC);
        assert_eq!(r.rates(t(0), &[client("10.0.0.1", 5)]), vec![0.0]);
        r.sample(t(0), vec![client("10.0.0.1", 10)]);
        for s in 1..=100 {
            r.sample(t(s), vec![client("10.0.0.1", 10 + 2 * s.unsigned_abs())]);
        }
        // The window keeps 60 s: 10.0.0.1 grew by 2/s; a new client counts from 0.
        let rates = r.rates(t(100), &[client("10.0.0.1", 210), client("10.0.0.2", 30)]);
        assert!((rates[0] - 2.0).abs() < 1e-9, "{rates:?}");
        assert!((rates[1] - 0.5).abs() < 1e-9, "{rates:?}");
        // A client whose count fell re-entered the table: its new count is its growth.
        let rates = r.rates(t(100), &[client("10.0.0.1", 6)]);
        assert!((rates[0] - 0.1).abs() < 1e-9, "{rates:?}");
    }

    #[test]
    fn every_outcome_has_a_group_the_alert_rules_know() {
        let rules = include_str!("../../../../monitoring/skytime-alerts.yml");
        for o in Outcome::ALL {
            let g = outcome_group(*o);
            assert!(OUTCOME_GROUPS.contains(&g), "{g}");
        }
        for g in [
            "denied",
            "rate_limited",
            "auth_failed",
            "served",
            "authenticated",
        ] {
            assert!(rules.contains(g), "{g} not used by the rules");
        }
    }

    #[test]
    fn rfc3339_has_milliseconds() {
        assert_eq!(
            rfc3339(UnixNanos(1_767_225_600_123_456_789)),
            "2026-01-01T00:00:00.123Z"
        );
    }
}
