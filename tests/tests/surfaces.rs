//! The operator surfaces of a running `skytimed --simulate`, end to end:
//! `skytimectl status/sources/clients` over the control socket, a `/metrics`
//! scrape checked against `skytimectl status --json`, alerts raised and
//! cleared by a simulated PPS/NMEA/fix outage, the control socket's ownership
//! rules, and the status page rendered by headless Debian Chromium (with a
//! screenshot kept in `artifacts/status-page.png`).
//!
//! The acceptance outputs are printed with `eprintln!`; run with
//! `cargo test -p skytime-e2e --test surfaces -- --nocapture` to see them.

use skytime_e2e::{
    Daemon, TempDir, binary, free_udp_port, next_client_address, run_with_timeout, workspace_root,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the foundation promises it takes to lock.
const LOCK_DEADLINE: Duration = Duration::from_secs(40);

/// Every metric the monitoring rules and the operations brief promise.
const PROMISED_METRICS: &[&str] = &[
    "skytime_state",
    "skytime_synchronised",
    "skytime_stratum",
    "skytime_offset_seconds",
    "skytime_rms_offset_seconds",
    "skytime_frequency_fast_ppm",
    "skytime_jitter_seconds",
    "skytime_root_dispersion_seconds",
    "skytime_leap_pending",
    "skytime_satellites_used",
    "skytime_satellites_visible",
    "skytime_fix_mode",
    "skytime_pps_pulses_total",
    "skytime_pps_missed_total",
    "skytime_nmea_sentences_total",
    "skytime_nmea_checksum_errors_total",
    "skytime_nmea_delay_seconds",
    "skytime_ntp_requests_total",
    "skytime_alert_active",
    "skytime_last_pps_age_seconds",
    "skytime_last_nmea_age_seconds",
    "skytime_holdover_seconds",
];

const ALERTS: &[&str] = &[
    "pps_lost",
    "nmea_lost",
    "fix_lost",
    "holdover",
    "unsynchronised",
    "few_satellites",
    "leap_pending",
    "offset_warning",
    "offset_critical",
];

fn socket_of(daemon: &Daemon) -> PathBuf {
    daemon.dir.path().join("skytimed.sock")
}

/// The address a `serving ...` start-up line names (`url=http://ADDR/...`).
fn served_address(daemon: &mut Daemon, what: &str) -> String {
    let line = daemon
        .wait_for_log(what, Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    let url = line
        .split("url=http://")
        .nth(1)
        .unwrap_or_else(|| panic!("no url in {line}"));
    url.split('/').next().unwrap_or_default().to_string()
}

/// Runs skytimectl with these arguments; panics with its output on failure.
fn ctl(args: &[&str]) -> String {
    let out = run_with_timeout(
        Command::new(binary("skytimectl")).args(args),
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("skytimectl {args:?}: {e}"));
    assert!(
        out.status.success(),
        "skytimectl {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ctl_json(socket: &Path, args: &[&str]) -> serde_json::Value {
    ctl_json_text(socket, args).1
}

/// `skytimectl --socket SOCKET ARGS --json`: its text as printed, and parsed.
fn ctl_json_text(socket: &Path, args: &[&str]) -> (String, serde_json::Value) {
    let mut all = vec!["--socket", socket.to_str().unwrap_or_default()];
    all.extend_from_slice(args);
    all.push("--json");
    let text = ctl(&all);
    let value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("skytimectl {args:?} --json printed no JSON ({e}):\n{text}"));
    (text, value)
}

fn wait_for_lock(daemon: &mut Daemon) {
    daemon
        .wait_for_log("to=\"locked\"", LOCK_DEADLINE)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Waits until both reach registers read 377.
fn wait_for_full_reach(socket: &Path) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sources = ctl_json(socket, &["sources"]);
        let reach: Vec<String> = sources["sources"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s["reach_octal"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        if reach == ["377", "377"] {
            return sources;
        }
        assert!(
            Instant::now() < deadline,
            "reach never reached 377/377: {sources:#}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A plain HTTP/1.1 GET on loopback: (status line and headers, body).
fn http_get(addr: &str, path: &str) -> (String, String) {
    let sock: SocketAddr = addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}"));
    let mut s = TcpStream::connect_timeout(&sock, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut text = String::new();
    s.read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("read {addr}{path}: {e}"));
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP header end: {text}"));
    (head.to_string(), body.to_string())
}

/// `name{labels}` → value, for every sample line of an exposition.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let value: f64 = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|e| panic!("bad value in {line:?}: {e}")),
        };
        out.insert(series.to_string(), value);
    }
    out
}

/// Asserts a series holds `expected` (flags, counts and whole numbers here,
/// so the tolerance only absorbs the text round trip).
fn assert_metric(m: &BTreeMap<String, f64>, series: &str, expected: f64) {
    let v = metric(m, series);
    assert!(
        (v - expected).abs() < 1e-9,
        "{series} = {v}, expected {expected}"
    );
}

fn metric(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("no series {series} in the scrape"))
}

/// Sends `n` NTP client requests from one fresh loopback address (within the
/// rate limit's burst) and waits for each answer; returns that address's count.
fn query_from_one_client(port: u16, n: u64) -> u64 {
    query_from(&next_client_address(), port, n);
    n
}

/// Sends `n` NTP client requests from loopback address `addr` and waits for
/// each answer.
fn query_from(addr: &str, port: u16, n: u64) {
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let sock = UdpSocket::bind(format!("{addr}:0")).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    sock.set_read_timeout(Some(Duration::from_secs(2))).ok();
    for i in 0..n {
        let mut req = [0u8; 48];
        req[0] = (4 << 3) | 3;
        req[40..48].copy_from_slice(&(0x5eed_0000u64 + i).to_be_bytes());
        sock.send_to(&req, server)
            .unwrap_or_else(|e| panic!("send: {e}"));
        let mut buf = [0u8; 512];
        let got = sock.recv_from(&mut buf).map(|(len, _)| len).unwrap_or(0);
        assert!(got >= 48, "no answer to request {i} from {addr}");
    }
}

#[test]
fn status_sources_and_metrics_of_a_locked_box_agree() {
    let mut daemon = Daemon::simulate(&[]).expect("start skytimed --simulate");
    let metrics_addr = served_address(&mut daemon, "serving Prometheus metrics");
    daemon
        .wait_for_log("control socket ready", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    let socket = socket_of(&daemon);
    let socket_arg = socket.to_str().unwrap_or_default().to_string();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(mode, 0o660, "control socket mode {mode:o}");

    wait_for_lock(&mut daemon);
    let sources = wait_for_full_reach(&socket);
    // A few NTP requests, so "requests by outcome" has something to count.
    let served = query_from_one_client(daemon.port, 3);

    let text = ctl(&["--socket", &socket_arg, "status"]);
    eprintln!("$ skytimectl status\n{text}");
    for needle in [
        "State           : locked since ",
        "Reference ID    : 47505300 (GPS)",
        "Stratum         : 1\n",
        "Leap status     : Normal",
        "reach 377",
        "Fix             : 3D, 7 satellites used, 8 visible",
        "NMEA delay      : ",
        "Requests        : ",
        "Alerts          : ",
    ] {
        assert!(
            text.contains(needle),
            "no {needle:?} in skytimectl status:\n{text}"
        );
    }

    let (json_text, status) = ctl_json_text(&socket, &["status"]);
    eprintln!("$ skytimectl status --json\n{json_text}");
    assert_eq!(status["state"], "locked");
    assert_eq!(status["synchronised"], true);
    assert_eq!(status["stratum"], 1);
    assert_eq!(status["reference_id"], "GPS");
    assert_eq!(status["simulated"], true);
    assert_eq!(status["leap"]["status"], "normal");
    assert_eq!(status["nmea"]["fix_mode"], "3D");
    assert_eq!(status["nmea"]["sats_used"], 7);
    assert_eq!(status["nmea"]["sats_visible"], 8);
    let delay = status["nmea"]["delay_ms"]
        .as_f64()
        .expect("NMEA delay measured");
    // The default simulated hat ends its burst 480 ms (± 15 ms) after the pulse.
    assert!((400.0..560.0).contains(&delay), "NMEA delay {delay} ms");
    assert!(
        status["pps"]["last_seen_age_s"].as_f64().unwrap_or(99.0) < 2.0,
        "{status:#}"
    );
    assert!(
        status["nmea"]["last_seen_age_s"].as_f64().unwrap_or(99.0) < 2.0,
        "{status:#}"
    );
    assert!(
        status["offset_ns"]
            .as_f64()
            .is_some_and(|o| o.abs() < 100_000.0),
        "{status:#}"
    );
    assert!(
        status["ntp"]["requests"]["served"].as_u64().unwrap_or(0) >= served,
        "{:#}",
        status["ntp"]
    );
    assert!(
        status["endpoints"]["control_socket"].as_str() == Some(socket_arg.as_str()),
        "{:#}",
        status["endpoints"]
    );

    let sources_text = ctl(&["--socket", &socket_arg, "sources"]);
    eprintln!("$ skytimectl sources\n{sources_text}");
    assert!(
        sources_text
            .lines()
            .any(|l| l.starts_with("#* PPS") && l.contains(" 377 ")),
        "{sources_text}"
    );
    assert!(
        sources_text
            .lines()
            .any(|l| l.starts_with("#+ NMEA") && l.contains(" 377 ")),
        "{sources_text}"
    );
    assert_eq!(sources["sources"][0]["reach"], 255);

    // The scrape: every promised metric, values consistent with the JSON
    // taken just before (gauges that barely move compared, counters only grow).
    let (head, body) = http_get(&metrics_addr, "/metrics");
    eprintln!("$ curl http://{metrics_addr}/metrics\n{body}");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "not OpenMetrics text");
    let m = parse_metrics(&body);
    for name in PROMISED_METRICS {
        assert!(
            m.keys()
                .any(|k| k == name || k.starts_with(&format!("{name}{{"))),
            "{name} missing from /metrics"
        );
    }
    for alert in ALERTS {
        let series = format!("skytime_alert_active{{alert=\"{alert}\"}}");
        let v = metric(&m, &series);
        let in_status = status["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["name"] == *alert));
        // Offset alerts may move between the two reads; the rest cannot here.
        if !alert.starts_with("offset") {
            assert_eq!(
                v > 0.5,
                in_status,
                "{series} = {v} but status --json says active={in_status}"
            );
        }
    }
    for outcome in [
        "served",
        "rate_limited",
        "denied",
        "malformed",
        "authenticated",
        "auth_failed",
    ] {
        metric(
            &m,
            &format!("skytime_ntp_requests_total{{outcome=\"{outcome}\"}}"),
        );
    }
    assert!(
        metric(&m, "skytime_ntp_requests_total{outcome=\"served\"}")
            >= status["ntp"]["requests"]["served"]
                .as_f64()
                .unwrap_or(f64::MAX)
    );
    assert_metric(&m, "skytime_state{state=\"locked\"}", 1.0);
    assert_metric(&m, "skytime_state{state=\"acquiring\"}", 0.0);
    assert_metric(&m, "skytime_synchronised", 1.0);
    assert_metric(&m, "skytime_stratum", 1.0);
    for (series, field) in [
        ("skytime_satellites_used", "sats_used"),
        ("skytime_satellites_visible", "sats_visible"),
    ] {
        let in_status = status["nmea"][field].as_f64().unwrap_or(f64::NAN);
        assert_metric(&m, series, in_status);
    }
    assert_metric(&m, "skytime_fix_mode", 3.0);
    assert_metric(&m, "skytime_leap_pending{kind=\"insert\"}", 0.0);
    assert_metric(&m, "skytime_holdover_seconds", 0.0);
    // One sign everywhere: the built-in hat's oscillator runs 12 ppm fast.
    let freq = status["frequency_fast_ppm"].as_f64().unwrap_or(f64::NAN);
    assert!((freq - 12.0).abs() < 0.5, "frequency {freq} ppm fast");
    assert!(
        (metric(&m, "skytime_frequency_fast_ppm") - freq).abs() < 0.5,
        "frequency {freq}"
    );
    let delay_s = metric(&m, "skytime_nmea_delay_seconds");
    assert!(
        (delay_s * 1e3 - delay).abs() < 30.0,
        "delay {delay_s} s vs {delay} ms"
    );
    assert!(
        metric(&m, "skytime_pps_pulses_total")
            >= status["pps"]["pulses_seen"].as_f64().unwrap_or(f64::MAX)
    );
    assert!(
        metric(&m, "skytime_nmea_sentences_total")
            >= status["nmea"]["sentences"].as_f64().unwrap_or(f64::MAX)
    );
    assert!(metric(&m, "skytime_last_pps_age_seconds") < 2.0);
    assert!(metric(&m, "skytime_last_nmea_age_seconds") < 2.0);
    assert!(metric(&m, "skytime_root_dispersion_seconds") > 0.0);

    // Figures, printed (not asserted): what a scrape and a control request
    // cost on this machine, over one kept-open control connection.
    let mut scrape_ms = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let (_, body) = http_get(&metrics_addr, "/metrics");
        scrape_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(body.ends_with("# EOF\n"));
    }
    let mut conn =
        std::os::unix::net::UnixStream::connect(&socket).unwrap_or_else(|e| panic!("{e}"));
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut reader = std::io::BufReader::new(conn.try_clone().unwrap_or_else(|e| panic!("{e}")));
    let mut ctl_ms = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        conn.write_all(b"{\"command\":\"status\"}\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut line = String::new();
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or_else(|e| panic!("{e}"));
        ctl_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(line.starts_with("{\"ok\":true"), "{line}");
    }
    for (what, v) in [
        ("/metrics scrape", &mut scrape_ms),
        ("control socket status request", &mut ctl_ms),
    ] {
        v.sort_by(f64::total_cmp);
        eprintln!(
            "{what}: median {:.2} ms, max {:.2} ms over {} requests",
            v[v.len() / 2],
            v[v.len() - 1],
            v.len()
        );
    }
}

#[test]
fn clients_lists_the_busiest_with_their_counts() {
    let mut daemon = Daemon::simulate(&[]).expect("start skytimed --simulate");
    daemon
        .wait_for_log("control socket ready", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    // Two clients on their own loopback addresses: one asks 6 times, one twice
    // (within the rate limit's burst of 8).
    let busy = next_client_address();
    let quiet = next_client_address();
    for (addr, n) in [(&busy, 6), (&quiet, 2)] {
        query_from(addr, daemon.port, n);
    }
    let socket = socket_of(&daemon);
    // Workers publish their busiest clients once a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let clients = loop {
        let c = ctl_json(&socket, &["clients"]);
        let seen = c["clients"].as_array().map_or(0, |a| a.len());
        if seen >= 2 {
            break c;
        }
        assert!(Instant::now() < deadline, "clients never listed: {c:#}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let text = ctl(&["--socket", socket.to_str().unwrap_or_default(), "clients"]);
    eprintln!("$ skytimectl clients\n{text}\n$ skytimectl clients --json\n{clients:#}");
    let list = clients["clients"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        list[0]["address"],
        busy.as_str(),
        "busiest first: {clients:#}"
    );
    assert_eq!(list[0]["requests"], 6);
    assert_eq!(list[0]["limited"], 0);
    assert!(
        list[0]["last_seen_age_s"]
            .as_f64()
            .is_some_and(|a| a < 10.0)
    );
    assert!(
        list.iter()
            .any(|c| c["address"] == quiet.as_str() && c["requests"] == 2),
        "{clients:#}"
    );
    assert!(
        text.lines()
            .nth(2)
            .is_some_and(|l| l.starts_with(&busy) && l.contains(" 6 ")),
        "{text}"
    );
    let one = ctl_json(&socket, &["clients", "-n", "1"]);
    assert_eq!(one["clients"].as_array().map_or(0, |a| a.len()), 1);
}

/// The scenario of the alerts test: the default hat, then a PPS outage, an
/// NMEA outage and a period without fix (seconds from hat start).
const OUTAGE_SCENARIO: &str = r#"
name = "surfaces-outages"
duration_s = 86400
seed = 11
start_utc = "2026-01-01T00:00:00Z"

[clock]
initial_offset_s = 0.35
initial_freq_ppm = 12.0
freq_random_walk_ppm = 0.0005

[pps]
jitter_ns = 500
outages = [{ from_s = 45.0, to_s = 57.0 }]

[nmea]
delay_ms = 480
jitter_ms = 15
outages = [{ from_s = 65.0, to_s = 75.0 }]
invalid_fix = [{ from_s = 83.0, to_s = 93.0 }]
"#;

fn count(lines: &[String], needles: &[&str]) -> usize {
    lines
        .iter()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

#[test]
fn alerts_are_raised_and_cleared_once_each_by_outages() {
    let dir = TempDir::new("scenario");
    let scenario = dir.path().join("outages.toml");
    std::fs::write(&scenario, OUTAGE_SCENARIO).unwrap_or_else(|e| panic!("{e}"));
    let mut daemon = Daemon::simulate(&["--scenario", scenario.to_str().unwrap_or_default()])
        .expect("start skytimed --simulate");
    let metrics_addr = served_address(&mut daemon, "serving Prometheus metrics");
    let socket = socket_of(&daemon);
    wait_for_lock(&mut daemon);
    let minute = Duration::from_secs(60);

    // PPS outage from 45 s (after the lock promised within 30 s): pps_lost
    // and holdover, in status and metrics.
    daemon
        .wait_for_log("alert=\"pps_lost\"", minute)
        .unwrap_or_else(|e| panic!("{e}"));
    let status = ctl_json(&socket, &["status"]);
    let active: Vec<&str> = status["alerts"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(active.contains(&"pps_lost"), "{active:?}");
    eprintln!(
        "$ skytimectl status (PPS outage)\n{}",
        ctl(&["--socket", socket.to_str().unwrap_or_default(), "status"])
    );
    let m = parse_metrics(&http_get(&metrics_addr, "/metrics").1);
    assert_metric(&m, "skytime_alert_active{alert=\"pps_lost\"}", 1.0);
    assert!(metric(&m, "skytime_last_pps_age_seconds") >= 3.0);

    for (alert, wait) in [
        ("pps_lost", minute),
        ("holdover", minute),
        ("nmea_lost", minute),
        ("fix_lost", minute),
        ("few_satellites", minute),
    ] {
        daemon
            .wait_for_log(&format!("alert cleared alert=\"{alert}\""), wait)
            .unwrap_or_else(|e| panic!("{alert} never cleared: {e}"));
    }
    let lines = daemon.log_lines();
    let alert_lines: Vec<&String> = lines.iter().filter(|l| l.contains("alert=")).collect();
    eprintln!(
        "alert log lines:\n{}",
        alert_lines
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    for alert in ["pps_lost", "nmea_lost", "fix_lost", "few_satellites"] {
        let tag = format!("alert=\"{alert}\"");
        assert_eq!(
            count(&lines, &["alert raised", &tag]),
            1,
            "{alert} raised more or less than once"
        );
        assert_eq!(
            count(&lines, &["alert cleared", &tag]),
            1,
            "{alert} cleared more or less than once"
        );
    }
    // Each raise has a matching clear, whatever else happened (e.g. holdover
    // entered again while the receiver was silent).
    for alert in ALERTS {
        let tag = format!("alert=\"{alert}\"");
        let raised = count(&lines, &["alert raised", &tag]);
        let cleared = count(&lines, &["alert cleared", &tag]);
        assert!(
            raised == cleared || raised == cleared + 1,
            "{alert}: {raised} raised, {cleared} cleared"
        );
    }
    let m = parse_metrics(&http_get(&metrics_addr, "/metrics").1);
    for alert in ["pps_lost", "nmea_lost", "fix_lost", "few_satellites"] {
        assert_metric(
            &m,
            &format!("skytime_alert_active{{alert=\"{alert}\"}}"),
            0.0,
        );
    }
}

/// A `skytimed` started by hand (for options `Daemon` does not set), killed
/// by its PID on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_file(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_port_in_use_ends_start_up_with_one_line_and_no_socket_left() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = taken
        .local_addr()
        .unwrap_or_else(|e| panic!("{e}"))
        .to_string();
    let state = TempDir::new("busy-port");
    let port = free_udp_port();
    let out = run_with_timeout(
        Command::new(binary("skytimed")).args([
            "--simulate",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--state-dir",
            state.path().to_str().unwrap_or_default(),
            "--metrics-listen",
            &addr,
            "--web-listen",
            "127.0.0.1:0",
        ]),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("skytimed: error: cannot listen on ")
            && last.contains(&addr)
            && last.contains("metrics"),
        "{err}"
    );
    assert!(
        !state.path().join("skytimed.sock").exists(),
        "control socket left behind"
    );
}

#[test]
fn skytimectl_finds_a_simulated_daemon_without_options() {
    // A private XDG_RUNTIME_DIR gives this daemon and skytimectl the same
    // default socket without touching a developer's own simulated box.
    let runtime = TempDir::new("xdg");
    let port = free_udp_port();
    let child = Command::new(binary("skytimed"))
        .args([
            "--simulate",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            "off",
            "--web-listen",
            "off",
        ])
        .env("XDG_RUNTIME_DIR", runtime.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn skytimed: {e}"));
    let _guard = Guard(child);
    wait_for_file(
        &runtime.path().join("skytime-sim/skytimed.sock"),
        Duration::from_secs(20),
    );
    let out = run_with_timeout(
        Command::new(binary("skytimectl"))
            .args(["status", "--json"])
            .env("XDG_RUNTIME_DIR", runtime.path()),
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status["simulated"], true);
    assert_eq!(status["endpoints"]["ntp"][0], format!("127.0.0.1:{port}"));

    // Without a daemon, the error names every socket tried.
    let empty = TempDir::new("xdg-empty");
    let out = run_with_timeout(
        Command::new(binary("skytimectl"))
            .arg("status")
            .env("XDG_RUNTIME_DIR", empty.path()),
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("/run/skytime/skytimed.sock")
            && err.contains("skytime-sim/skytimed.sock")
            && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn a_live_control_socket_is_never_stolen_and_a_stale_one_is_replaced() {
    let state = TempDir::new("shared-state");
    let args = |port: u16| -> Vec<String> {
        [
            "--simulate",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--state-dir",
            state.path().to_str().unwrap_or_default(),
            "--metrics-listen",
            "127.0.0.1:0",
            "--web-listen",
            "127.0.0.1:0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let socket = state.path().join("skytimed.sock");
    let port_a = free_udp_port();
    let mut first = Daemon::spawn(&args(port_a), port_a, TempDir::new("a")).expect("first daemon");
    first
        .wait_for_log("control socket ready", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));

    let port_b = free_udp_port();
    let mut second =
        Daemon::spawn(&args(port_b), port_b, TempDir::new("b")).expect("second daemon");
    let deadline = Instant::now() + Duration::from_secs(20);
    while second.is_running() {
        assert!(
            Instant::now() < deadline,
            "second daemon kept running on a live socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The state directory's lock refuses it before it reaches the socket. Its
    // one line may still be on its way through the log reader.
    let deadline = Instant::now() + Duration::from_secs(5);
    let log = loop {
        let log = second.log_lines().join("\n");
        if log.contains("in use by another running skytimed") || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(log.contains("in use by another running skytimed"), "{log}");
    assert!(first.is_running(), "the first daemon must be untouched");
    let status = ctl_json(&socket, &["status"]);
    assert_eq!(
        status["endpoints"]["ntp"][0],
        format!("127.0.0.1:{port_a}"),
        "socket taken over"
    );

    // SIGKILL leaves the socket file behind; the next daemon replaces it.
    drop(first);
    assert!(socket.exists(), "a killed daemon cannot remove its socket");
    let port_c = free_udp_port();
    let mut third = Daemon::spawn(&args(port_c), port_c, TempDir::new("c")).expect("third daemon");
    third
        .wait_for_log("removed a stale control socket", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    third
        .wait_for_log("control socket ready", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    let status = ctl_json(&socket, &["status"]);
    assert_eq!(status["endpoints"]["ntp"][0], format!("127.0.0.1:{port_c}"));
    // A clean stop removes it.
    third.terminate().unwrap_or_else(|e| panic!("{e}"));
    assert!(!socket.exists(), "socket left after SIGTERM");
}

/// Headless Debian Chromium, with a fresh profile and nothing that phones home.
fn chromium(profile: &Path, extra: &[&str], url: &str) -> std::process::Output {
    const CHROMIUM: &str = "/usr/bin/chromium";
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run the README's test command, which installs chromium"
    );
    let mut cmd = Command::new(CHROMIUM);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        // Let the page's fetches and first render finish before the dump.
        "--virtual-time-budget=10000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(extra)
    .arg(url);
    run_with_timeout(&mut cmd, Duration::from_secs(90)).unwrap_or_else(|e| panic!("chromium: {e}"))
}

#[test]
fn the_status_page_renders_state_alerts_plot_and_sky_in_chromium() {
    let mut daemon = Daemon::simulate(&[]).expect("start skytimed --simulate");
    let web = served_address(&mut daemon, "serving the status page");
    wait_for_lock(&mut daemon);
    // Some history for the plot, and full reach.
    wait_for_full_reach(&socket_of(&daemon));
    let url = format!("http://{web}/");

    // A minute of history, so the plot (and the screenshot) shows a trace.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (head, body) = http_get(&web, "/api/history");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let history: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        let points = history["t"].as_array().map_or(0, |a| a.len());
        for column in ["offset_ns", "jitter_ns", "root_dispersion_ns"] {
            assert_eq!(
                history[column].as_array().map_or(0, |a| a.len()),
                points,
                "{column}"
            );
        }
        if points >= 60 {
            break;
        }
        assert!(Instant::now() < deadline, "only {points} history points");
        std::thread::sleep(Duration::from_secs(1));
    }
    let (head, _) = http_get(&web, "/");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-security-policy: default-src 'none'"),
        "{head}"
    );

    let profile = TempDir::new("chromium");
    let out = chromium(profile.path(), &["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-rendered=\"1\""),
        "the page's JavaScript did not render (status {}):\n{dom}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dom.contains("<div id=\"state\" class=\"state state-locked\">locked</div>"),
        "{dom}"
    );
    // Alerts: either the list of raised ones or the explicit "none".
    let alerts = dom
        .split("<ul id=\"alerts\">")
        .nth(1)
        .and_then(|s| s.split("</ul>").next())
        .unwrap_or("");
    assert!(alerts.contains("<li"), "alerts list not rendered: {alerts}");
    assert!(
        alerts.contains("No active alerts") || alerts.contains("data-alert="),
        "{alerts}"
    );
    // The plot: an offset path through the history, and axes.
    let plotted: usize = dom
        .split("class=\"offset\" data-points=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no offset path in the plot:\n{dom}"));
    assert!(plotted >= 60, "{plotted} points plotted");
    assert!(dom.contains("class=\"jitter\""), "no jitter band");
    assert!(dom.contains(">now</text>"), "no time axis");
    // The sky: one row per satellite the status reports, used or not.
    let sky = ctl_json(&socket_of(&daemon), &["status"])["nmea"]["satellites"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let used = sky.iter().filter(|s| s["used"] == true).count();
    assert!(
        used > 0,
        "the simulated receiver uses no satellite: {sky:?}"
    );
    assert_eq!(dom.matches("<tr class=\"sat used\"").count(), used, "{dom}");
    assert_eq!(
        dom.matches("<tr class=\"sat unused\"").count(),
        sky.len() - used,
        "{dom}"
    );
    // NMEA delay and reach.
    assert!(
        dom.contains("<dt>NMEA delay</dt><dd>4"),
        "NMEA delay not shown:\n{dom}"
    );
    // The default hat (MediaTek-style) never names itself: shown as unknown, not left out.
    assert!(
        dom.contains("<dt>Receiver</dt><dd>unknown (not identified yet)</dd>"),
        "receiver not shown:\n{dom}"
    );
    assert!(
        dom.contains("<span class=\"reach\" id=\"pps-reach\">377 "),
        "PPS reach not shown"
    );
    assert!(
        dom.contains("<span class=\"reach\" id=\"nmea-reach\">377 "),
        "NMEA reach not shown"
    );

    let artifacts = workspace_root().join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap_or_else(|e| panic!("{e}"));
    let png = artifacts.join("status-page.png");
    let _ = std::fs::remove_file(&png);
    let shot_profile = TempDir::new("chromium-shot");
    let out = chromium(
        shot_profile.path(),
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,1400",
        ],
        &url,
    );
    let bytes = std::fs::read(&png).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {} ({e}): {}",
            png.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        bytes.len() > 20_000,
        "screenshot of {} bytes: blank page?",
        bytes.len()
    );
    eprintln!(
        "status page screenshot: {} ({} bytes)",
        png.display(),
        bytes.len()
    );
}
