//! What a newcomer meets in the first ten minutes, end to end: two
//! `skytimed --simulate` side by side with no flags, the JSON API as
//! docs/api.md documents it, and the default rate limit letting a person who
//! checks the box from itself through.
//!
//! The acceptance outputs are printed with `eprintln!`; run with
//! `cargo test --release -p skytime-e2e --test first_run -- --nocapture`.

use serde_json::Value;
use skytime_e2e::{
    Daemon, TempDir, binary, chrony_oneshot_from, ntpdig_from, run_with_timeout, workspace_root,
};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long the README promises lock takes, with room for a loaded machine.
const LOCK_DEADLINE: Duration = Duration::from_secs(60);

/// The value after `key=` in a daemon log line.
fn log_value<'a>(line: &'a str, key: &str) -> &'a str {
    line.split(&format!("{key}="))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

/// A plain HTTP/1.1 GET; returns the body.
fn http_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap_or_else(|e| panic!("timeout: {e}"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap_or_else(|e| panic!("send: {e}"));
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .unwrap_or_else(|e| panic!("read: {e}"));
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP body in {response}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_string()
}

/// Runs skytimectl with `XDG_RUNTIME_DIR` set; returns (success, stdout, stderr).
fn ctl_in(runtime_dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = run_with_timeout(
        Command::new(binary("skytimectl"))
            .args(args)
            .env("XDG_RUNTIME_DIR", runtime_dir),
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("skytimectl {args:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `skytimed --simulate` and nothing else, as a user types it, with the
/// per-user runtime directory pointed at `runtime_dir`. Returns the daemon
/// (its NTP port read back from the log) and its instance number.
fn plain_simulate(runtime_dir: &Path) -> (Daemon, u32) {
    let mut daemon = Daemon::spawn_with_env(
        &["--simulate".to_string()],
        &[("XDG_RUNTIME_DIR", runtime_dir)],
        0,
        TempDir::new("unused"),
    )
    .unwrap_or_else(|e| panic!("start: {e}"));
    let line = daemon
        .wait_for_log("simulated instance", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    let instance: u32 = log_value(&line, "instance")
        .parse()
        .unwrap_or_else(|e| panic!("instance number in {line}: {e}"));
    let line = daemon
        .wait_for_log("serving NTP", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    let addr: SocketAddr = log_value(&line, "addr")
        .parse()
        .unwrap_or_else(|e| panic!("address in {line}: {e}"));
    daemon.port = addr.port();
    (daemon, instance)
}

#[test]
fn two_simulated_boxes_of_one_user_need_no_flags() {
    let runtime = TempDir::new("xdg");
    let (mut first, n1) = plain_simulate(runtime.path());
    let (mut second, n2) = plain_simulate(runtime.path());
    assert_ne!(n1, n2, "two daemons took one instance");
    assert_ne!(first.port, second.port, "two daemons took one NTP port");
    for daemon in [&mut first, &mut second] {
        daemon
            .wait_for_stratum_one(LOCK_DEADLINE)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    for n in [n1, n2] {
        let (ok, text, err) = ctl_in(runtime.path(), &["--instance", &n.to_string(), "status"]);
        assert!(ok, "skytimectl --instance {n} status: {err}");
        for label in ["State", "Serving"] {
            let line = text
                .lines()
                .find(|l| l.starts_with(label))
                .unwrap_or_else(|| panic!("no {label} line in\n{text}"));
            eprintln!("instance {n}: {line}");
        }
        assert!(text.starts_with("State           : locked"), "{text}");
    }
    // Without a choice, skytimectl names what it found.
    let (ok, _, err) = ctl_in(runtime.path(), &["status"]);
    assert!(!ok, "skytimectl guessed between two daemons");
    for n in [n1, n2] {
        assert!(err.contains(&format!("--instance {n}")), "{err}");
    }
    eprintln!("skytimectl status (no choice): {}", err.trim());
    // Ctrl-C stops each cleanly and frees its instance.
    for daemon in [&mut first, &mut second] {
        let status = daemon
            .stop_with(libc::SIGINT)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(status.success(), "exit status {status}");
    }
    let (ok, _, err) = ctl_in(runtime.path(), &["status"]);
    assert!(!ok && err.contains("no skytimed is running"), "{err}");
}

/// Tables of docs/api.md under the heading that contains `heading`: the
/// documented field paths and which of them are maps.
fn documented_fields(doc: &str, heading: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let section = doc
        .split("\n## ")
        .find(|s| s.lines().next().is_some_and(|h| h.contains(heading)))
        .unwrap_or_else(|| panic!("docs/api.md has no section {heading}"));
    let mut fields = BTreeSet::new();
    let mut maps = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let path = cells[1].trim_matches('`').to_string();
        if cells[2].starts_with("map") {
            maps.insert(path.clone());
        }
        fields.insert(path);
    }
    (fields, maps)
}

/// Every field path in `value` (`a.b`, `list[].c`), not descending into
/// `maps`; `containers` gets every object path that was present ("" = root).
fn field_paths(
    value: &Value,
    prefix: &str,
    maps: &BTreeSet<String>,
    paths: &mut BTreeSet<String>,
    containers: &mut BTreeSet<String>,
) {
    match value {
        Value::Object(fields) => {
            containers.insert(prefix.trim_end_matches('.').to_string());
            for (key, v) in fields {
                let path = format!("{prefix}{key}");
                paths.insert(path.clone());
                if maps.contains(&path) {
                    continue;
                }
                match v {
                    Value::Object(_) => {
                        field_paths(v, &format!("{path}."), maps, paths, containers)
                    }
                    Value::Array(items) => {
                        for item in items.iter().filter(|i| i.is_object()) {
                            field_paths(item, &format!("{path}[]."), maps, paths, containers);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => panic!("not an object at {prefix}: {value}"),
    }
}

/// Checks a real answer against the documented fields, both ways.
fn check_documented(what: &str, real: &Value, fields: &BTreeSet<String>, maps: &BTreeSet<String>) {
    let mut paths = BTreeSet::new();
    let mut containers = BTreeSet::new();
    field_paths(real, "", maps, &mut paths, &mut containers);
    let undocumented: Vec<&String> = paths.difference(fields).collect();
    assert!(
        undocumented.is_empty(),
        "{what} sends fields docs/api.md does not list: {undocumented:?}"
    );
    let missing: Vec<&String> = fields
        .iter()
        .filter(|f| {
            let parent = f.rsplit_once('.').map_or("", |(p, _)| p);
            containers.contains(parent) && !paths.contains(*f)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/api.md lists fields {what} does not send: {missing:?}"
    );
    eprintln!("{what}: {} documented fields present", paths.len());
}

#[test]
fn the_json_api_is_as_documented() {
    let doc = std::fs::read_to_string(workspace_root().join("docs/api.md"))
        .unwrap_or_else(|e| panic!("docs/api.md: {e}"));
    let mut daemon = Daemon::simulate(&[]).unwrap_or_else(|e| panic!("start: {e}"));
    daemon
        .wait_for_stratum_one(LOCK_DEADLINE)
        .unwrap_or_else(|e| panic!("{e}"));
    let line = daemon
        .wait_for_log("serving the status page", Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"));
    let web = log_value(&line, "url")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();

    let (fields, maps) = documented_fields(&doc, "/api/status");
    assert!(fields.len() > 50, "{fields:?}");
    let parse = |text: &str| -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    let api = parse(&http_get(&web, "/api/status"));
    check_documented("/api/status", &api, &fields, &maps);
    let socket = daemon.dir.path().join("skytimed.sock");
    let out = run_with_timeout(
        Command::new(binary("skytimectl")).args([
            "--socket",
            socket.to_str().unwrap_or_default(),
            "status",
            "--json",
        ]),
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.status.success(), "{out:?}");
    let cli = parse(&String::from_utf8_lossy(&out.stdout));
    check_documented("skytimectl status --json", &cli, &fields, &maps);

    let (fields, maps) = documented_fields(&doc, "/api/history");
    let history = parse(&http_get(&web, "/api/history"));
    check_documented("/api/history", &history, &fields, &maps);
    assert!(
        history["t"].as_array().is_some_and(|t| !t.is_empty()),
        "{history}"
    );
}

#[test]
fn checking_the_box_from_itself_is_never_refused() {
    // The default configuration, as shipped.
    let mut daemon = Daemon::simulate(&[]).unwrap_or_else(|e| panic!("start: {e}"));
    daemon
        .wait_for_stratum_one(LOCK_DEADLINE)
        .unwrap_or_else(|e| panic!("{e}"));
    let port = daemon.port;
    // The person on the box (127.0.0.1, never limited) and a LAN host
    // (127.0.0.99 stands for one: limited like any client) each run 40
    // ntpdig queries (4 requests each) within 20 s, then chrony.
    let started = Instant::now();
    let workers: Vec<_> = ["127.0.0.1", "127.0.0.99"]
        .into_iter()
        .map(|source| {
            std::thread::spawn(move || {
                let t0 = Instant::now();
                for i in 0..40u32 {
                    let due = Duration::from_millis(500) * i;
                    if let Some(wait) = due.checked_sub(t0.elapsed()) {
                        std::thread::sleep(wait);
                    }
                    let report = ntpdig_from("127.0.0.1", port, source)
                        .unwrap_or_else(|e| panic!("ntpdig {i} from {source}: {e}"));
                    assert_eq!(
                        report.stratum, 1,
                        "ntpdig {i} from {source}: {:?}",
                        report.json
                    );
                }
                let chrony = chrony_oneshot_from(port, source)
                    .unwrap_or_else(|e| panic!("chrony from {source} after 40 ntpdig: {e}"));
                assert_eq!(chrony.stratum, 1, "{}", chrony.output);
                (source, t0.elapsed(), chrony.clock_wrong_by_s)
            })
        })
        .collect();
    for worker in workers {
        let (source, took, wrong_by) = worker.join().unwrap_or_else(|_| panic!("worker panicked"));
        eprintln!(
            "from {source}: 40 ntpdig answered, then chrony answered (clock wrong by {wrong_by} s), {:.1} s",
            took.as_secs_f64()
        );
    }
    let socket = daemon.dir.path().join("skytimed.sock");
    let out = run_with_timeout(
        Command::new(binary("skytimectl")).args([
            "--socket",
            socket.to_str().unwrap_or_default(),
            "status",
            "--json",
        ]),
        Duration::from_secs(10),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let limited = status["ntp"]["requests"]["rate_limited"].as_u64();
    eprintln!(
        "requests by outcome after {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        status["ntp"]["requests"]
    );
    assert_eq!(limited, Some(0), "{}", status["ntp"]);
}
