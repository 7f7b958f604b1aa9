//! The whole appliance on the simulated hat, queried by the real chrony and
//! ntpdig clients: the foundation's promises, end to end.

use skytime_e2e::{
    Daemon, TempDir, binary, chrony_oneshot, free_udp_port, ntpdig, raw_query, run_with_timeout,
};
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long the foundation promises it takes to serve stratum 1.
const SYNC_DEADLINE: Duration = Duration::from_secs(30);

/// Polls until the server answers stratum 1 (its uptime then), or fails
/// after the promised deadline.
fn wait_for_stratum_one(daemon: &mut Daemon) -> Duration {
    daemon
        .wait_for_stratum_one(SYNC_DEADLINE)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn never_answers_as_synchronised_before_lock_and_is_stratum_one_after() {
    let daemon = Daemon::simulate(&[]).expect("start skytimed --simulate");
    let server = SocketAddr::from(([127, 0, 0, 1], daemon.port));
    // Query from the first moment: the socket may not be bound for a few ms.
    let mut before_lock = 0;
    let mut first_answer_at = None;
    let deadline = Instant::now() + SYNC_DEADLINE;
    loop {
        let locked = daemon
            .log_lines()
            .iter()
            .any(|l| l.contains("to=\"locked\""));
        match raw_query(server, Duration::from_millis(200)).expect("query") {
            Some(reply) if !locked => {
                first_answer_at.get_or_insert(daemon.uptime());
                before_lock += 1;
                assert_eq!(reply.mode, 4);
                assert_eq!(reply.version, 4);
                assert_eq!(
                    (reply.leap_indicator, reply.stratum),
                    (3, 16),
                    "answered as synchronised before lock (after {:?})",
                    daemon.uptime()
                );
            }
            Some(reply) if reply.stratum == 1 => {
                assert_eq!(
                    reply.leap_indicator, 0,
                    "locked, no leap pending: LI must be 0"
                );
                break;
            }
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "never locked:\n{}",
            daemon.log_lines().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let first = first_answer_at.expect("the server answered before lock");
    assert!(
        first < Duration::from_secs(1),
        "first answer only after {first:?}"
    );
    assert!(before_lock >= 5, "only {before_lock} answers before lock");
}

#[test]
fn real_chrony_and_ntpdig_get_stratum_one_gps_no_leap_within_a_millisecond() {
    let mut daemon = Daemon::simulate(&[]).expect("start skytimed --simulate");
    let synced_after = wait_for_stratum_one(&mut daemon);
    eprintln!("stratum 1 after {synced_after:?}");

    // ntpdig: several queries; the median keeps this box's scheduling noise
    // (two cores, tests running beside it) out of a verdict about the server.
    let mut offsets: Vec<f64> = (0..5)
        .map(|_| {
            let r = ntpdig("127.0.0.1", daemon.port).expect("ntpdig");
            assert_eq!(r.stratum, 1, "{:?}", r.json);
            assert_eq!(r.leap, "no-leap", "{:?}", r.json);
            r.offset_s
        })
        .collect();
    offsets.sort_by(f64::total_cmp);
    let median = offsets[offsets.len() / 2];
    eprintln!("ntpdig offsets {offsets:?}");
    assert!(median.abs() < 1e-3, "ntpdig median offset {median} s");

    let chrony = chrony_oneshot(daemon.port).expect("chronyd -Q");
    eprintln!("{}", chrony.output.trim());
    assert_eq!(chrony.stratum, 1, "{chrony:?}");
    assert_eq!(chrony.leap, "N", "{chrony:?}");
    assert_eq!(chrony.refid_hex, "47505300", "refid GPS: {chrony:?}");
    assert!(chrony.clock_wrong_by_s.abs() < 1e-3, "{chrony:?}");
    assert!(
        chrony.root_dispersion_s > 0.0 && chrony.root_dispersion_s < 1e-3,
        "{chrony:?}"
    );
}

#[test]
fn serves_ipv6_and_several_listen_addresses() {
    if !std::fs::read_to_string("/proc/net/if_inet6")
        .is_ok_and(|t| t.contains("00000000000000000000000000000001"))
    {
        eprintln!("no IPv6 loopback on this machine; nothing to test");
        return;
    }
    let port = free_udp_port();
    let dir = TempDir::new("ipv6");
    let args: Vec<String> = [
        "--simulate",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--listen",
        &format!("[::1]:{port}"),
        "--state-dir",
        &dir.path().display().to_string(),
        "--metrics-listen",
        "off",
        "--web-listen",
        "off",
    ]
    .map(String::from)
    .to_vec();
    let mut daemon = Daemon::spawn(&args, port, dir).expect("start");
    wait_for_stratum_one(&mut daemon);
    let v6 = ntpdig("::1", port).expect("ntpdig over IPv6");
    assert_eq!(v6.stratum, 1, "{:?}", v6.json);
    assert!(v6.offset_s.abs() < 1e-3, "{:?}", v6.json);
    let log = daemon.log_lines().join("\n");
    assert!(
        log.contains(&format!("[::1]:{port}")),
        "every served address is logged:\n{log}"
    );
}

/// Requests in the flood below, sent in bursts of [`FLOOD_BURST`]: a burst's
/// replies fit a default socket receive buffer, so a reply can only be missing
/// because the server did not send it.
const FLOOD_REQUESTS: u64 = 500;
const FLOOD_BURST: u64 = 50;

#[test]
fn logs_state_changes_once_and_never_per_packet() {
    let mut daemon = Daemon::simulate(&[]).expect("start");
    wait_for_stratum_one(&mut daemon);
    let before = daemon.log_lines().len();
    let server = SocketAddr::from(([127, 0, 0, 1], daemon.port));
    // 127.0.0.1: the box's own address, exempt from rate limiting, so every
    // request is owed a reply.
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut answered = std::collections::BTreeSet::new();
    let mut buf = [0u8; 1024];
    for burst in 0..FLOOD_REQUESTS / FLOOD_BURST {
        let ids = burst * FLOOD_BURST..(burst + 1) * FLOOD_BURST;
        for id in ids.clone() {
            let mut req = [0u8; 48];
            req[0] = 0x23; // LI 0, version 4, mode 3 (client)
            req[40..48].copy_from_slice(&id.to_be_bytes());
            sock.send_to(&req, server).expect("send");
        }
        while !ids.clone().all(|id| answered.contains(&id)) {
            let (n, from) = sock.recv_from(&mut buf).unwrap_or_else(|e| {
                panic!(
                    "{} of {FLOOD_REQUESTS} requests answered, then silence: {e}",
                    answered.len()
                )
            });
            assert_eq!(from, server);
            assert!(n >= 48, "short reply of {n} bytes");
            assert_eq!(buf[0] & 7, 4, "mode {} reply", buf[0] & 7);
            assert_eq!(buf[1], 1, "stratum {} reply", buf[1]);
            let mut origin = [0u8; 8];
            origin.copy_from_slice(&buf[24..32]);
            let id = u64::from_be_bytes(origin);
            assert!(
                ids.contains(&id) && answered.insert(id),
                "reply echoes {id}, which is not an unanswered request of this burst"
            );
        }
    }
    assert_eq!(
        answered.len() as u64,
        FLOOD_REQUESTS,
        "every request answered once"
    );
    std::thread::sleep(Duration::from_secs(2));
    let lines = daemon.log_lines();
    let added = lines.len() - before;
    assert!(
        added < 10,
        "{added} log lines for {FLOOD_REQUESTS} packets:\n{}",
        lines[before..].join("\n")
    );
    let locks = lines.iter().filter(|l| l.contains("to=\"locked\"")).count();
    assert_eq!(locks, 1, "one line per state change:\n{}", lines.join("\n"));
}

#[test]
fn sigterm_stops_cleanly_and_keeps_the_learned_frequency() {
    let mut daemon = Daemon::simulate(&[]).expect("start");
    wait_for_stratum_one(&mut daemon);
    std::thread::sleep(Duration::from_secs(3));
    let drift = daemon.dir.path().join("drift");
    let dir = daemon.dir.path().to_path_buf();
    let status = daemon.terminate().expect("terminate");
    assert!(status.success(), "exit status {status}");
    let text = std::fs::read_to_string(&drift)
        .unwrap_or_else(|e| panic!("no drift file in {}: {e}", dir.display()));
    let frequency_ppm: f64 = text
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("unreadable drift file: {text:?}"));
    // The built-in hat's oscillator runs 12 ppm fast; the learned correction cancels it.
    assert!(
        (frequency_ppm + 12.0).abs() < 0.5,
        "learned {frequency_ppm} ppm, expected about -12"
    );
}

/// Runs skytimed to completion (it should fail fast) and returns (status, stderr).
fn run_failing(args: &[&str]) -> (std::process::ExitStatus, String) {
    let out = run_with_timeout(
        Command::new(binary("skytimed")).args(args),
        Duration::from_secs(20),
    )
    .expect("skytimed ran");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_one_clear_line(stderr: &str, must_contain: &[&str]) {
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(
        errors.len(),
        1,
        "exactly one error line expected:\n{stderr}"
    );
    for needle in must_contain {
        assert!(
            errors[0].contains(needle),
            "{needle:?} missing from {:?}",
            errors[0]
        );
    }
}

#[test]
fn a_port_already_in_use_is_one_clear_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = TempDir::new("inuse");
    let (status, stderr) = run_failing(&[
        "--simulate",
        "--listen",
        &addr,
        "--state-dir",
        &dir.path().display().to_string(),
        "--metrics-listen",
        "off",
        "--web-listen",
        "off",
    ]);
    assert!(!status.success());
    assert_one_clear_line(&stderr, &[&addr, "in use"]);
}

/// A pseudo-terminal whose slave path can stand in for a receiver's serial port.
struct Pty {
    master: i32,
    slave: i32,
    path: String,
}

impl Pty {
    fn open() -> Pty {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two fds into the provided ints; the name, termios
        // and winsize pointers may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty");
        // SAFETY: slave is an open terminal fd; ttyname returns a static C string or null.
        let name = unsafe { libc::ttyname(slave) };
        assert!(!name.is_null());
        // SAFETY: non-null NUL-terminated string from ttyname.
        let path = unsafe { std::ffi::CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned();
        Pty {
            master,
            slave,
            path,
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        // SAFETY: closing fds this struct opened and owns.
        unsafe {
            libc::close(self.master);
            libc::close(self.slave);
        }
    }
}

fn write_config(dir: &TempDir, serial: &str, pps: &str) -> String {
    let port = free_udp_port();
    let path = dir.path().join("skytime.toml");
    std::fs::write(
        &path,
        format!(
            "[gnss]\ndevice = \"{serial}\"\n[pps]\ndevice = \"{pps}\"\n[ntp]\nlisten = [\"127.0.0.1:{port}\"]\n\
             [refclock]\ndrift_file = \"{}/drift\"\n[control]\nsocket = \"{}/ctl.sock\"\n[metrics]\nenabled = false\n[web]\nenabled = false\n",
            dir.path().display(),
            dir.path().display()
        ),
    )
    .expect("write config");
    path.display().to_string()
}

#[test]
fn a_missing_serial_device_is_one_clear_error() {
    let dir = TempDir::new("noserial");
    let config = write_config(&dir, "/dev/ttyNOSUCH7", "/dev/pps0");
    let (status, stderr) = run_failing(&["--config", &config]);
    assert!(!status.success());
    assert_one_clear_line(&stderr, &["/dev/ttyNOSUCH7"]);
}

#[test]
fn a_missing_pps_device_is_one_clear_error_that_names_the_fix() {
    let pty = Pty::open();
    let dir = TempDir::new("nopps");
    let config = write_config(&dir, &pty.path, "/dev/ppsNOSUCH");
    let (status, stderr) = run_failing(&["--config", &config]);
    assert!(!status.success());
    assert_one_clear_line(&stderr, &["/dev/ppsNOSUCH", "pps-gpio"]);
}

#[test]
fn a_phc_source_on_a_node_that_is_no_phc_is_refused_by_check_config_and_the_daemon() {
    let pty = Pty::open();
    let dir = TempDir::new("notphc");
    let config = write_config(&dir, &pty.path, "/dev/pps0");
    let text = std::fs::read_to_string(&config)
        .expect("read config")
        .replace(
            "[pps]\n",
            "[pps]\nsource = \"phc\"\nphc_device = \"/dev/null\"\nphc_channel = 0\n",
        );
    std::fs::write(&config, text).expect("write config");
    let out = run_with_timeout(
        Command::new(binary("skytimed")).args(["--check-config", &config]),
        Duration::from_secs(10),
    )
    .expect("check-config ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pps.phc_device") && stderr.contains("not a PTP hardware clock"),
        "{stderr}"
    );
    let (status, stderr) = run_failing(&["--config", &config]);
    assert!(!status.success());
    assert_one_clear_line(&stderr, &["/dev/null", "PTP_CLOCK_GETCAPS"]);
}

#[test]
fn a_config_with_a_typo_names_the_key_and_line_and_the_daemon_refuses_it() {
    let dir = TempDir::new("typo");
    let path = dir.path().join("skytime.toml");
    std::fs::write(
        &path,
        "# a Pi with a hat\n[gnss]\ndevice = \"/dev/serial0\"\nbuad = 9600\n\n[ntp]\nlisten = [\"0.0.0.0:123\"]\nalow = [\"10.0.0.0/8\"]\n",
    )
    .expect("write");
    let file = path.display().to_string();
    let out = run_with_timeout(
        Command::new(binary("skytimed")).args(["--check-config", &file]),
        Duration::from_secs(10),
    )
    .expect("check-config ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{file}:4: gnss.buad: unknown key (did you mean `gnss.baud`?)"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{file}:8: ntp.alow: unknown key (did you mean `ntp.allow`?)"
        )),
        "{stderr}"
    );

    let (status, stderr) = run_failing(&["--config", &file]);
    assert!(!status.success());
    assert!(
        stderr.contains("gnss.buad") && stderr.contains("ntp.alow"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_example_configs_pass_check_config() {
    let root = skytime_e2e::workspace_root();
    let mut files = vec![
        root.join("config/skytime.toml"),
        root.join("packaging/skytime.toml"),
    ];
    for entry in walk(&root.join("hardware")) {
        if entry.extension().is_some_and(|e| e == "toml") {
            files.push(entry);
        }
    }
    assert!(files.len() >= 2, "no example configs found: {files:?}");
    for file in files {
        let out = run_with_timeout(
            Command::new(binary("skytimed"))
                .arg("--check-config")
                .arg(&file),
            Duration::from_secs(10),
        )
        .expect("check-config ran");
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
