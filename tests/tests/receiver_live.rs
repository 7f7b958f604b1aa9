//! A u-blox timing receiver on the live simulated hat, end to end: the hat
//! puts an M8T-like quantisation sawtooth on its PPS and writes each pulse's
//! UBX-TIM-TP (with the matching qErr) between its NMEA bursts on the pty,
//! after the u-blox start-up banner. The running `skytimed --simulate`
//! reads them through the real serial reader, pairs each TIM-TP with its
//! edge and corrects it; `skytimectl status` (human and --json) and
//! `/metrics` show the corrections applied and the receiver identified.
//!
//! Run with `cargo test -p skytime-e2e --test receiver_live -- --nocapture`
//! to see the status it reads.

use skytime_e2e::{Daemon, TempDir, binary, run_with_timeout};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The default hat's clock and line, with an M8T-class receiver: 48 MHz
/// tick (±10.4 ns sawtooth), TIM-TP every second.
const M8T_HAT: &str = r#"
name = "live-m8t"
duration_s = 3456000
warmup_s = 0
seed = 13
start_utc = "2026-01-01T00:00:00Z"

[clock]
initial_offset_s = 0.35
initial_freq_ppm = 12.0
freq_random_walk_ppm = 0.0005

[pps]
jitter_ns = 500
latency_ns = 0

[nmea]
delay_ms = 480
jitter_ms = 15

[receiver]
timing_clock_hz = 48e6
clock_offset_ppb = 125.2
clock_random_walk_ppb = 0.01
tim_tp = true
q_err_noise_ps = 200
"#;

fn ctl(socket: &Path, args: &[&str]) -> String {
    let mut all = vec!["--socket", socket.to_str().unwrap_or_default()];
    all.extend_from_slice(args);
    let out = run_with_timeout(
        Command::new(binary("skytimectl")).args(&all),
        Duration::from_secs(20),
    )
    .unwrap_or_else(|e| panic!("skytimectl {args:?}: {e}"));
    assert!(
        out.status.success(),
        "skytimectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn status_json(socket: &Path) -> serde_json::Value {
    let text = ctl(socket, &["status", "--json"]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("no JSON ({e}):\n{text}"))
}

fn metrics(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap_or_else(|e| panic!("{e}"));
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("send: {e}"));
    let mut text = String::new();
    s.read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("read: {e}"));
    text
}

#[test]
fn the_live_hat_sends_tim_tp_and_the_daemon_applies_its_qerr() {
    let dir = TempDir::new("receiver-live");
    let scenario = dir.path().join("m8t.toml");
    std::fs::write(&scenario, M8T_HAT).unwrap_or_else(|e| panic!("{e}"));
    let mut daemon = Daemon::simulate(&["--scenario", scenario.to_str().unwrap_or_default()])
        .expect("start skytimed --simulate");
    let line = daemon
        .wait_for_log("serving Prometheus metrics", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    let metrics_addr = line
        .split("url=http://")
        .nth(1)
        .and_then(|u| u.split('/').next())
        .unwrap_or_else(|| panic!("no url in {line}"))
        .to_string();
    daemon
        .wait_for_log("to=\"locked\"", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let socket = daemon.dir.path().join("skytimed.sock");

    // Corrections accumulate once the pairing has seen a few seconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let s = status_json(&socket);
        if s["qerr"]["applied"].as_u64().unwrap_or(0) >= 5 {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no qErr corrections applied on the live hat: {:#}",
            s["qerr"]
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("qerr: {:#}", status["qerr"]);
    eprintln!("receiver: {:#}", status["receiver"]);
    let q = &status["qerr"];
    assert_eq!(q["enabled"], true);
    let messages = q["messages"].as_u64().unwrap_or(0);
    let applied = q["applied"].as_u64().unwrap_or(0);
    assert!(messages >= applied && applied >= 5, "{q:#}");
    let last = q["last_correction_ns"].as_f64().expect("a correction");
    assert!(
        last.abs() <= 10.5,
        "a 48 MHz sawtooth is within ±10.4 ns: {last}"
    );
    assert_eq!(
        q["skipped_invalid"], 0,
        "the hat never marks qErr invalid: {q:#}"
    );

    // The start-up banner named the receiver.
    assert_eq!(status["receiver"]["identified"], true, "{status:#}");
    assert_eq!(status["receiver"]["family"], "u-blox M8030");
    assert_eq!(status["receiver"]["firmware"], "TIM 1.10");
    let human = ctl(&socket, &["status"]);
    eprintln!("{human}");
    assert!(
        human.contains("Receiver        : u-blox M8030, firmware TIM 1.10"),
        "{human}"
    );
    assert!(human.contains("qErr            : on,"), "{human}");

    let m = metrics(&metrics_addr);
    assert!(
        m.contains("skytime_receiver_info{family=\"u-blox M8030\",firmware=\"TIM 1.10\"} 1"),
        "{m}"
    );
    let applied_metric = m
        .lines()
        .find_map(|l| l.strip_prefix("skytime_qerr_applied_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no skytime_qerr_applied_total in {m}"));
    assert!(applied_metric >= 5.0, "{applied_metric}");
}
