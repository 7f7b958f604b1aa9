//! The control protocol: what `skytimectl` asks over the Unix socket and what
//! the daemon answers, one JSON object per line each way.
//!
//! The reports here are the daemon's machine form: `skytimectl --json` prints
//! them, the status page's `/api/status` serves the same [`StatusReport`], and
//! `/metrics` is encoded from it, so the three never disagree.
//!
//! Scripts may speak it directly (one request per line, several per
//! connection; lines over 4096 bytes are refused; an idle connection is
//! closed after 30 s):
//!
//! ```text
//! $ printf '{"command":"status"}\n' | socat - UNIX-CONNECT:/run/skytime/skytimed.sock
//! {"ok":true,"data":{"version":"0.1.0","state":"locked",...}}
//! $ printf '{"command":"clients","limit":5}\n{"command":"nonsense"}\n' | socat - UNIX-CONNECT:...
//! {"ok":true,"data":{"requests_per_second":2.0,"rate_window_s":60.0,"clients":[...]}}
//! {"ok":false,"error":"bad request (unknown variant `nonsense`, ...)"}
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of this protocol, answered by `ping`; bumped on incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest request line the daemon reads; longer ones are refused.
pub const MAX_REQUEST_BYTES: usize = 4096;

/// Most clients `skytimectl clients` lists by default.
pub const DEFAULT_CLIENT_LIMIT: usize = 20;

/// Most clients one request may ask for.
pub const MAX_CLIENT_LIMIT: usize = 256;

/// One request line, e.g. `{"command":"status"}`. Every command is read-only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Protocol version and daemon version.
    Ping {},
    /// The `chronyc tracking` of this box: [`StatusReport`].
    Status {},
    /// PPS and NMEA with their reach registers: [`SourcesReport`].
    Sources {},
    /// The busiest NTP clients: [`ClientsReport`].
    Clients {
        /// How many (default [`DEFAULT_CLIENT_LIMIT`], at most [`MAX_CLIENT_LIMIT`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
}

/// One response line: `{"ok":true,"data":{...}}` or `{"ok":false,"error":"..."}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response<T> {
    /// Whether the request was understood and answered.
    pub ok: bool,
    /// The answer, when `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
    /// Why not, when not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl<T> Response<T> {
    /// A successful answer.
    pub fn ok(data: T) -> Self {
        Self {
            ok: true,
            data: Some(data),
            error: None,
        }
    }
    /// A refusal with its reason.
    pub fn error(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            data: None,
            error: Some(message.into()),
        }
    }
}

/// The answer to `ping`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    /// [`PROTOCOL_VERSION`] of the daemon.
    pub protocol: u32,
    /// skytimed's version.
    pub version: String,
}

/// The whole state of the box, as of one refclock snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// skytimed's version.
    pub version: String,
    /// Whether this is a `--simulate` box (simulated hat and clock).
    pub simulated: bool,
    /// When the snapshot was taken, on the disciplined clock (RFC 3339).
    pub as_of: String,
    /// The same, in ns since the Unix epoch.
    pub as_of_unix_ns: i64,
    /// How old the snapshot was when this report was made, s (the discipline
    /// publishes several times a second; a large value means it is stuck).
    pub snapshot_age_s: f64,
    /// Seconds since the daemon started.
    pub uptime_s: f64,
    /// acquiring, locked, holdover or unsynchronised.
    pub state: String,
    /// Why the state machine is where it is.
    pub state_reason: String,
    /// When the state was entered (RFC 3339, disciplined clock).
    pub state_since: String,
    /// How long ago that was, s.
    pub state_for_s: f64,
    /// Whether clients are served synchronised time (LI != 3, stratum < 16).
    pub synchronised: bool,
    /// Stratum served.
    pub stratum: u8,
    /// Reference id served ("GPS", "PPS", "LOCL").
    pub reference_id: String,
    /// Last update of the clock from the reference (RFC 3339).
    pub reference_time: Option<String>,
    /// How long ago that was, s.
    pub reference_age_s: Option<f64>,
    /// Last filtered offset, clock minus reference, ns.
    pub offset_ns: f64,
    /// One-sigma uncertainty of the offset, ns.
    pub offset_sigma_ns: f64,
    /// Long-term RMS offset, ns.
    pub rms_offset_ns: f64,
    /// How fast the clock would run without the discipline, ppm: positive =
    /// fast, as chrony's `Frequency : N ppm fast` (the correction applied is
    /// its negative).
    pub frequency_fast_ppm: f64,
    /// Remaining frequency error of the disciplined clock, ppm (positive: still fast).
    pub residual_frequency_ppm: f64,
    /// One-sigma uncertainty of the frequency, ppm.
    pub skew_ppm: f64,
    /// Learned measurement jitter of the pulses, ns.
    pub jitter_ns: f64,
    /// Root delay served, ns (a stratum-1 reference clock has none).
    pub root_delay_ns: f64,
    /// Root dispersion (error bound) served, ns.
    pub root_dispersion_ns: f64,
    /// How fast the error bound grows, ns/s.
    pub dispersion_rate_ns_per_s: f64,
    /// Leap second status.
    pub leap: LeapReport,
    /// Set while in holdover.
    pub holdover: Option<HoldoverReport>,
    /// The configured holdover limit on the root dispersion, ns.
    pub holdover_limit_ns: f64,
    /// The temperature sensor and the learned coefficient (None: no sensor).
    #[serde(default)]
    pub temperature: Option<TemperatureReport>,
    /// The receiver's qErr (sawtooth) correction and survey-in (None: the
    /// receiver sends neither TIM-TP nor survey-in reports).
    #[serde(default)]
    pub qerr: Option<QerrReport>,
    /// What the GNSS receiver said it is ("unknown" until it has).
    #[serde(default)]
    pub receiver: ReceiverIdentityReport,
    /// Clock steps made (start-up and re-acquisitions).
    pub steps: u32,
    /// The pulse source.
    pub pps: PpsReport,
    /// The receiver.
    pub nmea: NmeaReport,
    /// The NTP server.
    pub ntp: NtpReport,
    /// Active alerts, most urgent first.
    pub alerts: Vec<AlertReport>,
    /// Inputs not used, by reason.
    pub rejections: BTreeMap<String, u64>,
    /// The latest rejection.
    pub last_rejection: Option<RejectionReport>,
    /// A whole-second disagreement between receiver and clock in progress.
    pub label_disagreement: Option<LabelDisagreementReport>,
    /// Where the daemon serves.
    pub endpoints: EndpointsReport,
    /// NTS, when a certificate is configured.
    #[serde(default)]
    pub nts: Option<NtsReport>,
    /// What the SD image's hat detection found or tried; `None` off the image.
    #[serde(default)]
    pub hardware_detection: Option<HardwareDetectionReport>,
}

/// The SD image's hat detection: a box with no receiver found says what it
/// tried, so its owner can fix the wiring or the config without a shell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HardwareDetectionReport {
    /// The file detection wrote (`[control] detection_report`).
    pub file: String,
    /// What it concluded and what the box does about it.
    pub outcome: String,
    /// Each attempt in order: the EEPROM, each port and rate, each PPS pin.
    pub tried: Vec<String>,
}

/// NTS: the NTS-KE listener, authenticated requests, and the certificate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NtsReport {
    /// NTS-KE addresses.
    pub ke_listen: Vec<String>,
    /// NTS-KE sessions that handed out keys and cookies.
    pub ke_sessions: u64,
    /// NTS-KE requests refused with an Error record.
    pub ke_error_responses: u64,
    /// TLS handshakes that failed (wrong version, ALPN, garbage).
    pub ke_failed_handshakes: u64,
    /// NTS-KE connections cut at the deadline.
    pub ke_timeouts: u64,
    /// NTS-KE connections closed at accept, all slots busy.
    pub ke_refused_busy: u64,
    /// NTP requests answered with NTS authentication and fresh cookies.
    pub requests: u64,
    /// NTS NAKs sent (cookie or authenticator refused).
    pub naks: u64,
    /// The served certificate's subject.
    pub certificate_subject: String,
    /// Its expiry (RFC 3339).
    pub certificate_expires: String,
    /// Whole days until then (negative once expired).
    pub certificate_days_left: i64,
    /// The cookie key file.
    pub cookie_key_file: String,
}

/// Leap second status.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeapReport {
    /// "normal", "insert" or "delete" (the LI served).
    pub status: String,
    /// When the pending leap completes (RFC 3339).
    pub at: Option<String>,
    /// "receiver" or "leap_file".
    pub source: Option<String>,
    /// What the clock's kernel flag is armed for tonight ("none", "insert", "delete").
    pub armed: String,
    /// Set while the receiver and leap-seconds.list disagree about the coming
    /// midnight: one of them is wrong, and the operator should check which.
    #[serde(default)]
    pub sources_disagree: Option<LeapDisputeReport>,
    /// When the leap-seconds file expires (RFC 3339); null when none was read.
    #[serde(default)]
    pub file_expires: Option<String>,
    /// The file has expired and is ignored: leap seconds come only from the
    /// receiver until tzdata is updated.
    #[serde(default)]
    pub file_expired: bool,
}

/// The receiver and leap-seconds.list disagreeing about a leap second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeapDisputeReport {
    /// What the receiver announces ("insert", "delete").
    pub receiver: String,
    /// What the leap-seconds file says ("none", "insert", "delete").
    pub leap_file: String,
    /// The midnight in question (RFC 3339).
    pub at: String,
    /// The source followed: "receiver" or "leap_file".
    pub following: String,
}

/// Temperature-compensated holdover.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemperatureReport {
    /// "ok", "absent", "frozen", "jumped", "garbage" or "missing".
    pub sensor: String,
    /// Reading in use, °C.
    pub reading_c: Option<f64>,
    /// Learned coefficient, ppm/K.
    pub coefficient_ppm_per_k: f64,
    /// One-sigma uncertainty of that coefficient, ppm/K.
    pub coefficient_sigma_ppm_per_k: f64,
    /// Learned quadratic term, ppm/K² (None while the data do not support one).
    #[serde(default)]
    pub quadratic_ppm_per_k2: Option<f64>,
    /// Its one-sigma uncertainty, ppm/K².
    #[serde(default)]
    pub quadratic_sigma_ppm_per_k2: Option<f64>,
    /// Learned lag of the sensor behind the oscillator, s.
    pub lag_s: Option<f64>,
    /// Whether holdover uses the coefficient.
    pub trusted: bool,
    /// Sensor faults since start.
    pub faults: u64,
    /// Frequency correction from temperature in force (holdover only), ppm.
    pub compensation_ppm: Option<f64>,
}

/// The receiver's family and firmware, from UBX-MON-VER, `$PMTK705` or its
/// start-up TXT: which part and firmware an operator is looking at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceiverIdentityReport {
    /// Whether the receiver has said what it is yet.
    pub identified: bool,
    /// Maker and module or chip, e.g. "u-blox LEA-M8T-0"; "unknown" until identified.
    pub family: String,
    /// Firmware version, e.g. "TIM 1.10"; "unknown" until identified.
    pub firmware: String,
}

impl Default for ReceiverIdentityReport {
    fn default() -> Self {
        ReceiverIdentityReport {
            identified: false,
            family: "unknown".to_owned(),
            firmware: "unknown".to_owned(),
        }
    }
}

/// The qErr correction of PPS edges from UBX-TIM-TP, and survey-in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QerrReport {
    /// Whether `[refclock] qerr_correction` is on.
    pub enabled: bool,
    /// TIM-TP messages received.
    pub messages: u64,
    /// Edges corrected.
    pub applied: u64,
    /// Edges left uncorrected: no message for their second (missing or late).
    pub skipped_no_message: u64,
    /// Edges left uncorrected: the receiver marked qErr invalid.
    pub skipped_invalid: u64,
    /// Edges left uncorrected: message not tied to UTC, or not a 1 PPS pulse.
    pub skipped_uncertain: u64,
    /// The last correction applied, ns.
    pub last_correction_ns: Option<f64>,
    /// Survey-in progress, once the receiver reports one.
    pub survey_in: Option<SurveyInReport>,
}

/// A timing receiver's survey-in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurveyInReport {
    /// Still surveying.
    pub active: bool,
    /// Finished: the position is held fixed.
    pub valid: bool,
    /// Time surveyed, s.
    pub duration_s: u32,
    /// Positions averaged.
    pub observations: u32,
    /// Accuracy of the mean position, m.
    pub accuracy_m: f64,
}

/// Holdover in progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HoldoverReport {
    /// Seconds since the last usable pulse.
    pub elapsed_s: f64,
    /// The current error bound, ns.
    pub bound_ns: f64,
    /// The limit on that bound, ns.
    pub limit_ns: f64,
}

/// The pulse source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PpsReport {
    /// Device ("simulated" under `--simulate`).
    pub device: String,
    /// Seconds since the last edge was received.
    pub last_seen_age_s: Option<f64>,
    /// Timestamp of the last edge (RFC 3339, disciplined clock).
    pub last_edge: Option<String>,
    /// chrony-style reach register (0o377: the last 8 pulses all used).
    pub reach: u8,
    /// Pulses seen (kernel counter on hardware, edges handed to the discipline
    /// under simulation): `skytime_pps_pulses_total`.
    pub pulses_seen: u64,
    /// Pulses that should have come and did not: `skytime_pps_missed_total`.
    pub pulses_missed: u64,
    /// Edges that updated the filter.
    pub edges_used: u64,
    /// Kernel PPS reader counters, on hardware.
    pub kernel: Option<KernelPpsReport>,
    /// The PHC's mapping to system time, when `[pps] source = "phc"`.
    #[serde(default)]
    pub phc: Option<PhcReport>,
}

/// A PHC source's mapping to system time: what bounds the pulse's accuracy
/// besides the receiver (hardware with `[pps] source = "phc"` only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhcReport {
    /// The PHC device (`/dev/ptpN`).
    pub device: String,
    /// How PHC time is compared with the system clock: "precise" (hardware cross-timestamp), "extended" or "plain".
    pub mapping_method: String,
    /// The mapping's error bound at the last edge, ns (part of the advertised bound): `skytime_phc_mapping_uncertainty_seconds`.
    pub mapping_uncertainty_ns: Option<u64>,
    /// How fast the PHC runs against the system clock, ppb (positive: faster), as measured by the mapping.
    pub fast_ppb: Option<f64>,
    /// External-timestamp events read on the channel: `skytime_phc_extts_events_total`.
    pub extts_events: u64,
    /// Events dropped as the pulse's other edge (PHCs that stamp both): `skytime_phc_other_edge_dropped_total`.
    pub other_edge_dropped: u64,
}

/// The kernel PPS reader's own counters (hardware only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelPpsReport {
    /// Edges of the selected kind delivered.
    pub edges: u64,
    /// Pulses missed (sequence gaps or whole seconds of silence).
    pub missed_pulses: u64,
    /// Times the sequence number jumped by more than one.
    pub sequence_gaps: u64,
    /// Fetches that timed out.
    pub timeouts: u64,
    /// Fetches that failed.
    pub errors: u64,
}

/// The receiver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NmeaReport {
    /// Serial device.
    pub device: String,
    /// Whether the device is open now.
    pub connected: Option<bool>,
    /// Baud rate the line is locked at.
    pub baud: Option<u32>,
    /// Seconds since the last epoch (one second's burst) ended.
    pub last_seen_age_s: Option<f64>,
    /// Label of the last epoch (ISO 8601, may be 23:59:60).
    pub last_label: Option<String>,
    /// chrony-style reach register (0o377: the last 8 seconds all had a valid epoch).
    pub reach: u8,
    /// Whether the last epoch had a valid fix.
    pub fix_valid: bool,
    /// "unknown", "no fix", "2D" or "3D".
    pub fix_mode: String,
    /// gpsd's mode number: 0 unknown, 1 no fix, 2 2-D, 3 3-D (`skytime_fix_mode`).
    pub fix_mode_code: u8,
    /// Satellites used in the fix.
    pub sats_used: Option<u8>,
    /// Satellites in view.
    pub sats_visible: Option<u8>,
    /// The sky at the last epoch.
    pub satellites: Vec<SatelliteReport>,
    /// Measured delay from the pulse to the end of the burst labelling it
    /// (median of recent, else the learned value), ms: `skytime_nmea_delay_seconds`.
    pub delay_ms: Option<f64>,
    /// Learned delay, ms.
    pub delay_learned_ms: Option<f64>,
    /// Median of recent measured delays, ms.
    pub delay_median_ms: Option<f64>,
    /// 95th percentile of recent measured delays, ms.
    pub delay_p95_ms: Option<f64>,
    /// Epochs handed to the discipline.
    pub epochs_seen: u64,
    /// Epochs matched with their pulse.
    pub epochs_paired: u64,
    /// Sentences accepted: `skytime_nmea_sentences_total`.
    pub sentences: u64,
    /// Sentences dropped for a bad checksum: `skytime_nmea_checksum_errors_total`.
    pub checksum_errors: u64,
    /// Bytes that were no sentence.
    pub garbage_bytes: u64,
    /// Times the device was reopened.
    pub reopens: u64,
}

/// One satellite.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SatelliteReport {
    /// PRN as the receiver numbers it.
    pub prn: u16,
    /// Carrier-to-noise ratio, dB-Hz.
    pub snr_dbhz: Option<u8>,
    /// Used in the fix.
    pub used: bool,
}

/// The NTP server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NtpReport {
    /// Requests received per second over the last full second.
    pub requests_per_second: f64,
    /// Requests by outcome, grouped as `skytime_ntp_requests_total{outcome}`:
    /// served, authenticated, rate_limited, denied, malformed, auth_failed.
    pub requests: BTreeMap<String, u64>,
    /// Every counter of the server by its own fine-grained name.
    pub counters: BTreeMap<String, u64>,
}

/// One active alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertReport {
    /// The `alert` label (pps_lost, ...).
    pub name: String,
    /// info, warning or critical.
    pub severity: String,
    /// When it was raised (RFC 3339).
    pub since: String,
    /// How long it has been active, s.
    pub active_for_s: f64,
    /// What is wrong.
    pub message: String,
}

/// The latest rejected input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RejectionReport {
    /// The reason's name.
    pub reason: String,
    /// What it means.
    pub explanation: String,
    /// How long ago, s.
    pub age_s: f64,
    /// Specifics.
    pub detail: String,
}

/// Receiver and clock disagreeing by whole seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelDisagreementReport {
    /// Receiver minus clock, s.
    pub offset_s: i64,
    /// For how long, s.
    pub duration_s: f64,
    /// When the receiver will be believed, s.
    pub confirm_after_s: u64,
    /// How long it is served through before the box stops claiming sync, s.
    #[serde(default)]
    pub grace_s: u64,
    /// Whether the box has stopped serving as synchronised because of it.
    #[serde(default)]
    pub serving_suspended: bool,
    /// "insert" or "delete" when it looks like a leap second nobody announced.
    #[serde(default)]
    pub unannounced_leap: Option<String>,
}

/// Where the daemon serves.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointsReport {
    /// NTP addresses.
    pub ntp: Vec<String>,
    /// Prometheus endpoint URL.
    pub metrics: Option<String>,
    /// Status page URL.
    pub web: Option<String>,
    /// Control socket.
    pub control_socket: Option<String>,
}

/// `skytimectl sources`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourcesReport {
    /// State of the discipline, for context.
    pub state: String,
    /// PPS, then NMEA.
    pub sources: Vec<SourceReport>,
}

/// One reference source, as chrony's `sources` shows a refclock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceReport {
    /// "PPS" or "NMEA".
    pub name: String,
    /// Device.
    pub device: String,
    /// chrony's state column: `*` the clock is synchronised to it, `+` it
    /// labels the pulses in use, `-` usable but not in use, `?` unusable.
    pub selection: String,
    /// chrony-style reach register.
    pub reach: u8,
    /// The same in octal, as chrony prints it ("377").
    pub reach_octal: String,
    /// Seconds since the last sample.
    pub last_sample_age_s: Option<f64>,
    /// PPS: filtered offset, ns. NMEA: measured delay after the pulse (median), ns.
    pub offset_ns: Option<f64>,
    /// PPS: one-sigma error of the offset, ns. NMEA: p95 minus median delay, ns.
    pub error_ns: Option<f64>,
    /// PPS: learned pulse jitter, ns.
    pub jitter_ns: Option<f64>,
    /// Samples seen.
    pub samples_seen: u64,
    /// Samples used (PPS: edges in the filter; NMEA: epochs paired with a pulse).
    pub samples_used: u64,
    /// One line on what the source is doing.
    pub note: String,
}

/// `skytimectl clients`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientsReport {
    /// Requests received per second, all clients.
    pub requests_per_second: f64,
    /// The window rates are averaged over, s.
    pub rate_window_s: f64,
    /// Busiest first.
    pub clients: Vec<ClientReport>,
}

/// One NTP client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientReport {
    /// Source address.
    pub address: String,
    /// Requests since it entered the server's client table.
    pub requests: u64,
    /// How many were over the rate limit (KoD RATE or dropped).
    pub limited: u64,
    /// How many were NTS-authenticated (0: the client does not use NTS).
    #[serde(default)]
    pub nts: u64,
    /// Requests per second over the rate window.
    pub rate_per_s: f64,
    /// Seconds since its last request.
    pub last_seen_age_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_from_the_documented_lines() {
        let cases = [
            (r#"{"command":"status"}"#, Request::Status {}),
            (r#"{"command":"sources"}"#, Request::Sources {}),
            (r#"{"command":"ping"}"#, Request::Ping {}),
            (r#"{"command":"clients"}"#, Request::Clients { limit: None }),
            (
                r#"{"command":"clients","limit":5}"#,
                Request::Clients { limit: Some(5) },
            ),
        ];
        for (line, want) in cases {
            let got: Request = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(got, want);
            let back = serde_json::to_string(&got).unwrap_or_default();
            assert_eq!(back, line, "round trip");
            assert_eq!(serde_json::from_str::<Request>(&back).ok(), Some(want));
        }
        for bad in [
            r#"{"command":"settime"}"#,
            r#"{"command":"status","x":1}"#,
            r#"{"command":"clients","limt":5}"#,
            r#"{"cmd":"status"}"#,
            "status",
        ] {
            assert!(
                serde_json::from_str::<Request>(bad).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn responses_carry_data_or_an_error() {
        let ok = serde_json::to_string(&Response::ok(Pong {
            protocol: 1,
            version: "x".into(),
        }))
        .unwrap_or_default();
        assert_eq!(ok, r#"{"ok":true,"data":{"protocol":1,"version":"x"}}"#);
        let err = serde_json::to_string(&Response::<Pong>::error("no")).unwrap_or_default();
        assert_eq!(err, r#"{"ok":false,"error":"no"}"#);
    }
}
