//! What NTS costs a server over UDP: the skytime-ntp library server (one
//! worker, NTS on, cookie keys from a key file) takes plain and NTS requests
//! in alternating runs at the same rate in the same process, and this prints
//! the server's CPU per plain reply beside its CPU per NTS reply that
//! authenticated, and their ratio. Printed, never asserted.

use crate::compare::{Scratch, Server, spawn};
use crate::load::{Clients, LoadResult, LoadSpec, Pacing};
use crate::nts_session::NtsSession;
use anyhow::{Context, Result};
use skytime_nts::{KeyRole, Keyring, RotationPolicy};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One offered load: how many client sources, at what total rate.
#[derive(Clone, Debug)]
pub struct Shape {
    /// Label in the table.
    pub name: String,
    /// Client sockets, each from its own 127.12.x.y address.
    pub sources: usize,
    /// Requests per second, all sources together.
    pub rate_per_s: u64,
}

/// Knobs of the run; every run is bounded in count and time.
#[derive(Clone, Debug)]
pub struct NtsUdpArgs {
    /// Loads to measure.
    pub shapes: Vec<Shape>,
    /// Length of each run.
    pub run: Duration,
    /// Plain/NTS run pairs per shape (in alternating order).
    pub rounds: usize,
    /// Server port on 127.0.0.1 (0: any free port).
    pub port: u16,
}

/// CPU time of every thread of a process, ns (scheduler accounting, finer
/// than the clock ticks of /proc/PID/stat).
pub(crate) fn process_cpu_ns(pid: u32) -> Result<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).context("list threads")? {
        let path = task?.path().join("schedstat");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // a thread that just exited
        };
        total += text
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("malformed {}", path.display()))?;
    }
    Ok(total)
}

#[derive(Default)]
struct Tally {
    cpu_ns: u64,
    sent: u64,
    replies: u64,
    elapsed: Duration,
}

impl Tally {
    fn add(&mut self, cpu_ns: u64, r: &LoadResult, counted: u64) {
        self.cpu_ns += cpu_ns;
        self.sent += r.sent;
        self.replies += counted;
        self.elapsed += r.elapsed;
    }
    fn cpu_us_per_reply(&self) -> f64 {
        self.cpu_ns as f64 / 1000.0 / self.replies.max(1) as f64
    }
    fn sent_rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    fn counted_pct(&self) -> f64 {
        100.0 * self.replies as f64 / self.sent.max(1) as f64
    }
}

fn start_server(key_file: &std::path::Path, port: u16, dir: Scratch) -> Result<Server> {
    let port = if port == 0 {
        crate::compare::free_port()?
    } else {
        port
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let log = dir.path("log");
    let mut cmd = Command::new(std::env::current_exe().context("locate ntpbench")?);
    cmd.args(["serve", "--listen", &addr.to_string(), "--workers", "1"])
        .arg("--nts-key-file")
        .arg(key_file);
    spawn(
        "skytime-ntp library server (NTS)",
        1,
        &mut cmd,
        addr,
        dir,
        &log,
    )
}

fn wait_until_up(server: &mut Server, clients: &Clients) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !clients.probe(Duration::from_millis(300)) {
        if let Ok(Some(status)) = server.child.try_wait() {
            anyhow::bail!("server exited at start-up ({status})");
        }
        anyhow::ensure!(Instant::now() < deadline, "server never answered");
    }
    Ok(())
}

/// Runs every shape and prints the table.
pub fn run(args: &NtsUdpArgs) -> Result<()> {
    let dir = Scratch::new("nts-udp")?;
    let key_file = dir.path("cookie-keys");
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let keyring = Keyring::open(&key_file, KeyRole::Writer, RotationPolicy::default(), now_s)
        .context("cookie key file")?;
    let session = Arc::new(NtsSession::new(&keyring.shared().load())?);
    let mut server = start_server(&key_file, args.port, dir)?;
    let pid = server.child.id();
    let mut lines = Vec::new();
    for shape in &args.shapes {
        let plain = Clients::open_from(server.addr, shape.sources, 12)?;
        let nts = Clients::open_from(server.addr, shape.sources, 12)?.with_nts(session.clone());
        wait_until_up(&mut server, &plain)?;
        let (mut plain_tally, mut nts_tally) = (Tally::default(), Tally::default());
        for round in 0..args.rounds.max(1) {
            for k in 0..2 {
                let use_nts = (k + round) % 2 == 1;
                let clients = if use_nts { &nts } else { &plain };
                std::thread::sleep(Duration::from_millis(200));
                let before = process_cpu_ns(pid)?;
                let r = clients.run(&LoadSpec {
                    rate_per_s: shape.rate_per_s,
                    duration: args.run,
                    drain: Duration::from_millis(300),
                    pacing: Pacing::Batched,
                });
                let cpu = process_cpu_ns(pid)?.saturating_sub(before);
                let (tally, counted) = if use_nts {
                    (&mut nts_tally, r.nts_authentic)
                } else {
                    (&mut plain_tally, r.received - r.kods)
                };
                tally.add(cpu, &r, counted);
                eprintln!(
                    "    {} {}: sent {:.0}/s, {} replies, {} counted, {:.2} us CPU each",
                    shape.name,
                    if use_nts { "NTS  " } else { "plain" },
                    r.sent_rate(),
                    r.received,
                    counted,
                    cpu as f64 / 1000.0 / counted.max(1) as f64
                );
            }
        }
        lines.push(format!(
            "{:<26} {:>8} | {:>9.0} {:>7.2} {:>9.2} | {:>9.0} {:>7.2} {:>9.2} | {:>6.2}x",
            shape.name,
            shape.rate_per_s,
            plain_tally.sent_rate(),
            plain_tally.counted_pct(),
            plain_tally.cpu_us_per_reply(),
            nts_tally.sent_rate(),
            nts_tally.counted_pct(),
            nts_tally.cpu_us_per_reply(),
            nts_tally.cpu_us_per_reply() / plain_tally.cpu_us_per_reply()
        ));
    }
    println!();
    println!(
        "NTS vs plain over UDP: skytime-ntp library server, 1 worker, one process; {} alternating run pairs of {} ms per shape",
        args.rounds.max(1),
        args.run.as_millis()
    );
    println!(
        "{:<26} {:>8} | {:^27} | {:^27} | {:>7}",
        "", "", "plain", "NTS (1 cookie, no placeholder)", ""
    );
    println!(
        "{:<26} {:>8} | {:>9} {:>7} {:>9} | {:>9} {:>7} {:>9} | {:>7}",
        "shape", "rate/s", "sent/s", "ok %", "CPU us", "sent/s", "auth %", "CPU us", "NTS/plain"
    );
    for line in lines {
        println!("{line}");
    }
    println!(
        "(CPU us = server CPU (all threads, /proc/PID/task/*/schedstat) per reply; plain counts every non-KoD reply, NTS only replies whose authenticator verified; goal NTS/plain <= 1.6x)"
    );
    Ok(())
}
