//! The comparison run: starts each server on loopback (the reflector, the
//! skytime-ntp library server, `chronyd -x`, `skytimed --simulate`), finds the
//! highest rate each answers with under 1 % loss, measures response times and
//! the server's CPU per reply at a fixed rate, and prints one table.

use crate::load::{Clients, LoadResult, LoadSpec, Pacing};
use anyhow::{Context, Result, bail};
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Knobs of one comparison run; every run is bounded in count and time.
#[derive(Clone, Debug)]
pub struct CompareArgs {
    /// Worker-thread counts to try for the multi-threaded servers.
    pub workers: Vec<usize>,
    /// Path to skytimed, if it is to be measured.
    pub skytimed: Option<PathBuf>,
    /// Path to chronyd, if it is to be measured.
    pub chronyd: Option<PathBuf>,
    /// Client sockets (distinct 127.1.x.y sources).
    pub clients: usize,
    /// Length of one max-rate trial.
    pub trial: Duration,
    /// Fixed rate of the CPU run.
    pub cpu_rate: u64,
    /// Length of the CPU run.
    pub cpu_run: Duration,
    /// First rate tried by the max-rate search.
    pub start_rate: u64,
    /// Highest rate the search will try.
    pub max_rate: u64,
    /// Times the whole set of servers is measured (interleaved, to spread
    /// the shared machine's noise over all of them).
    pub rounds: usize,
}

/// A server process started for measurement, killed (by its PID) when dropped.
pub(crate) struct Server {
    name: String,
    workers: usize,
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    /// skytimed's state directory (its control socket lives there).
    pub(crate) state_dir: Option<PathBuf>,
    _dir: Scratch,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new(tag: &str) -> Result<Scratch> {
        let dir =
            std::env::temp_dir().join(format!("skytime-ntpbench-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(Scratch(dir))
    }
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Next port `free_port` hands out when a base is set (0: any free port).
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// Makes servers listen on `base`, `base + 1`, ... (0: any free port).
pub(crate) fn set_port_base(base: u16) {
    NEXT_PORT.store(base, Ordering::Relaxed);
}

/// A loopback UDP port for the next server: from the base set by
/// [`set_port_base`], or any free one.
pub(crate) fn free_port() -> Result<u16> {
    let next = NEXT_PORT.load(Ordering::Relaxed);
    if next != 0 {
        NEXT_PORT.store(
            next.checked_add(1).context("port range exhausted")?,
            Ordering::Relaxed,
        );
        return Ok(next);
    }
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) fn spawn(
    name: &str,
    workers: usize,
    cmd: &mut Command,
    addr: SocketAddr,
    dir: Scratch,
    log: &Path,
) -> Result<Server> {
    let log_file = fs::File::create(log)?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("start {name}"))?;
    Ok(Server {
        name: name.to_string(),
        workers,
        child,
        addr,
        state_dir: None,
        _dir: dir,
    })
}

fn self_exe() -> Result<PathBuf> {
    std::env::current_exe().context("locate ntpbench itself")
}

/// This binary's own `subcommand` (`reflector` or `serve`) as a server.
fn start_self(subcommand: &str, tag: &str, name: &str, workers: usize) -> Result<Server> {
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = Scratch::new(&format!("{tag}{workers}"))?;
    let log = dir.path("log");
    let mut cmd = Command::new(self_exe()?);
    cmd.args([
        subcommand,
        "--listen",
        &addr.to_string(),
        "--workers",
        &workers.to_string(),
    ]);
    spawn(name, workers, &mut cmd, addr, dir, &log)
}

pub(crate) fn start_reflector(workers: usize) -> Result<Server> {
    start_self(
        "reflector",
        "reflector",
        "reflector (recvmmsg/sendmmsg)",
        workers,
    )
}

pub(crate) fn start_library(workers: usize) -> Result<Server> {
    start_self("serve", "lib", "skytime-ntp library server", workers)
}

pub(crate) fn start_chronyd(chronyd: &Path) -> Result<Server> {
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = Scratch::new("chronyd")?;
    let conf = dir.path("chrony.conf");
    fs::write(
        &conf,
        format!(
            "port {port}\nbindaddress 127.0.0.1\ncmdport 0\nlocal stratum 1\nallow 127.0.0.0/8\npidfile {}\n",
            dir.path("chronyd.pid").display()
        ),
    )?;
    let log = dir.path("log");
    let mut cmd = Command::new(chronyd);
    cmd.args(["-x", "-u", "root", "-d", "-f"]).arg(&conf);
    spawn("chronyd -x", 1, &mut cmd, addr, dir, &log)
}

pub(crate) fn start_skytimed(skytimed: &Path, workers: usize, worker_nice: i32) -> Result<Server> {
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = Scratch::new(&format!("skytimed{workers}"))?;
    let conf = dir.path("skytime.toml");
    // Rate limiting off: the load comes from 64 clients at up to thousands of
    // requests per second each, which a real deployment would (rightly) limit.
    fs::write(
        &conf,
        format!(
            "[ntp]\nworkers = {workers}\nworker_nice = {worker_nice}\n\n[ntp.ratelimit]\nenabled = false\n"
        ),
    )?;
    let log = dir.path("log");
    let state = dir.path("state");
    fs::create_dir_all(&state)?;
    let mut cmd = Command::new(skytimed);
    cmd.arg("--simulate")
        .arg("--config")
        .arg(&conf)
        .args(["--listen", &addr.to_string()])
        .arg("--state-dir")
        .arg(&state)
        .args(["--metrics-listen", "off", "--web-listen", "off"]);
    let mut server = spawn("skytimed --simulate", workers, &mut cmd, addr, dir, &log)?;
    server.state_dir = Some(state);
    Ok(server)
}

/// utime + stime of a whole process (all threads), in seconds.
pub fn process_cpu_s(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After "pid (comm)", field 3 (state) is index 0: utime is field 14, stime 15.
    let utime: u64 = fields
        .get(11)
        .and_then(|v| v.parse().ok())
        .context("utime")?;
    let stime: u64 = fields
        .get(12)
        .and_then(|v| v.parse().ok())
        .context("stime")?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((utime + stime) as f64 / ticks)
}

/// What the table shows for one server.
#[derive(Clone)]
pub struct Row {
    name: String,
    workers: usize,
    max_rate: Option<u64>,
    generator_limited: bool,
    light_run: Option<LoadResult>,
    cpu_run: Option<LoadResult>,
    cpu_us_per_reply: Option<f64>,
    idle_cpu_ms_per_s: Option<f64>,
    note: String,
}

fn trial(clients: &Clients, rate: u64, args: &CompareArgs) -> LoadResult {
    let r = clients.run(&LoadSpec {
        rate_per_s: rate,
        duration: args.trial,
        drain: Duration::from_millis(300),
        pacing: Pacing::Batched,
    });
    eprintln!(
        "    {rate:>7}/s: sent {:>9.0}/s, loss {:>6.2} %, p99 {:>7.1} us",
        r.sent_rate(),
        r.loss() * 100.0,
        r.response_ns.quantile(0.99).unwrap_or(0) as f64 / 1000.0
    );
    r
}

fn measure(server: &mut Server, args: &CompareArgs) -> Row {
    let mut row = Row {
        name: server.name.clone(),
        workers: server.workers,
        max_rate: None,
        generator_limited: false,
        light_run: None,
        cpu_run: None,
        cpu_us_per_reply: None,
        idle_cpu_ms_per_s: None,
        note: String::new(),
    };
    eprintln!(
        "== {} (workers {}) on {}",
        server.name, server.workers, server.addr
    );
    let clients = match Clients::open(server.addr, args.clients) {
        Ok(c) => c,
        Err(e) => {
            row.note = format!("no clients: {e:#}");
            return row;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            row.note = format!("exited at start-up ({status})");
            return row;
        }
        if clients.probe(Duration::from_millis(300)) {
            break;
        }
        if Instant::now() > deadline {
            row.note = "never answered".into();
            return row;
        }
    }
    std::thread::sleep(Duration::from_millis(500));

    // Highest rate with < 1 % loss: grow by 25 % until a trial fails, then bisect.
    let mut good: Option<u64> = None;
    let mut bad: Option<u64> = None;
    let mut rate = args.start_rate;
    for _ in 0..16 {
        let r = trial(&clients, rate, args);
        let offered_ok = r.sent_rate() >= 0.97 * rate as f64;
        if r.loss() < 0.01 && offered_ok {
            good = Some(rate);
        } else {
            if r.loss() < 0.01 && !offered_ok {
                row.generator_limited = true;
            }
            bad = Some(rate);
        }
        std::thread::sleep(Duration::from_millis(200));
        rate = match (good, bad) {
            (Some(g), None) if g >= args.max_rate => break,
            (Some(g), None) => (g + g / 4).min(args.max_rate),
            (None, Some(b)) if b <= 1000 => break,
            (None, Some(b)) => b / 2,
            (Some(g), Some(b)) if b - g <= (b / 40).max(1000) => break,
            (Some(g), Some(b)) => (g + b) / 2,
            (None, None) => break,
        };
    }
    row.max_rate = good;

    // Latency at a light load, where queueing does not hide the server's own time.
    std::thread::sleep(Duration::from_millis(300));
    row.light_run = Some(clients.run(&LoadSpec {
        rate_per_s: LIGHT_RATE,
        duration: Duration::from_secs(1),
        drain: Duration::from_millis(300),
        pacing: Pacing::Batched,
    }));

    // Idle cost, then CPU per reply at the fixed rate.
    let pid = server.child.id();
    if let (Ok(a), _) = (
        process_cpu_s(pid),
        std::thread::sleep(Duration::from_secs(1)),
    ) {
        if let Ok(b) = process_cpu_s(pid) {
            row.idle_cpu_ms_per_s = Some((b - a) * 1000.0);
        }
    }
    let before = process_cpu_s(pid);
    let r = clients.run(&LoadSpec {
        rate_per_s: args.cpu_rate,
        duration: args.cpu_run,
        drain: Duration::from_millis(300),
        pacing: Pacing::Batched,
    });
    let after = process_cpu_s(pid);
    if let (Ok(a), Ok(b)) = (before, after)
        && r.received > 0
    {
        row.cpu_us_per_reply = Some((b - a) * 1e6 / r.received as f64);
    }
    eprintln!(
        "    CPU run {}/s: sent {:.0}/s, loss {:.2} %, {:.2} us CPU per reply",
        args.cpu_rate,
        r.sent_rate(),
        r.loss() * 100.0,
        row.cpu_us_per_reply.unwrap_or(f64::NAN)
    );
    row.cpu_run = Some(r);
    row
}

/// Rate of the light-load latency run.
const LIGHT_RATE: u64 = 10_000;

fn us(ns: Option<u64>) -> String {
    ns.map_or("-".into(), |v| format!("{:.1}", v as f64 / 1000.0))
}

/// Runs every server and prints the table to stdout.
pub fn compare(args: &CompareArgs) -> Result<()> {
    if args.workers.is_empty() {
        bail!("--workers needs at least one count");
    }
    let mut plan: Vec<Box<dyn Fn() -> Result<Server>>> = Vec::new();
    for &w in &args.workers {
        plan.push(Box::new(move || start_reflector(w)));
    }
    if let Some(c) = args.chronyd.clone() {
        plan.push(Box::new(move || start_chronyd(&c)));
    }
    for &w in &args.workers {
        plan.push(Box::new(move || start_library(w)));
    }
    if let Some(s) = args.skytimed.clone() {
        for &w in &args.workers {
            let s = s.clone();
            plan.push(Box::new(move || start_skytimed(&s, w, 0)));
        }
    }
    let mut rounds: Vec<Vec<Row>> = Vec::new();
    for round in 1..=args.rounds.max(1) {
        eprintln!("### round {round} of {}", args.rounds.max(1));
        let mut rows = Vec::new();
        for start in &plan {
            match start() {
                Ok(mut server) => rows.push(measure(&mut server, args)),
                Err(e) => eprintln!("cannot start a server: {e:#}"),
            }
        }
        print_table(args, &rows, &format!("round {round}"));
        rounds.push(rows);
    }
    if rounds.len() > 1 {
        let combined = combine(&rounds);
        print_table(
            args,
            &combined,
            &format!(
                "all {} rounds: best max rate; the round with the median CPU per reply for the rest",
                rounds.len()
            ),
        );
    }
    Ok(())
}

/// Per server: the best max rate of all rounds (the shared machine's noise
/// only ever lowers it), and the rest from the round with the median CPU.
fn combine(rounds: &[Vec<Row>]) -> Vec<Row> {
    let mut out = Vec::new();
    for first in &rounds[0] {
        let mut same: Vec<&Row> = rounds
            .iter()
            .filter_map(|rows| {
                rows.iter()
                    .find(|r| r.name == first.name && r.workers == first.workers)
            })
            .collect();
        same.sort_by(|a, b| {
            let key = |r: &Row| r.cpu_us_per_reply.unwrap_or(f64::INFINITY);
            key(a).total_cmp(&key(b))
        });
        let mut row = same[same.len() / 2].clone();
        let best = same
            .iter()
            .filter(|r| r.max_rate.is_some())
            .max_by_key(|r| r.max_rate);
        if let Some(b) = best {
            row.max_rate = b.max_rate;
            row.generator_limited = b.generator_limited;
        }
        out.push(row);
    }
    out
}

fn print_table(args: &CompareArgs, rows: &[Row], label: &str) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "NTP server comparison on loopback ({label}): {} client sources (127.1.x.y), {} CPU cores, trials of {} ms, CPU run at {}/s for {} ms",
        args.clients,
        cores,
        args.trial.as_millis(),
        args.cpu_rate,
        args.cpu_run.as_millis()
    );
    println!(
        "{:<30} {:>3} {:>13} | {:^35} | {:^43} | {:>6}",
        "",
        "",
        "",
        format!("light load {}k/s", LIGHT_RATE / 1000),
        format!("fixed load {}k/s", args.cpu_rate / 1000),
        ""
    );
    println!(
        "{:<30} {:>3} {:>13} | {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8} {:>7} | {:>6}",
        "server",
        "wrk",
        "max rate <1%",
        "resp p50",
        "resp p99",
        "T3-T2 50",
        "T3-T2 99",
        "resp p50",
        "resp p99",
        "T3-T2 50",
        "T3-T2 99",
        "CPU us",
        "idle"
    );
    for r in rows {
        let light = r.light_run.as_ref();
        let run = r.cpu_run.as_ref();
        let max = match (r.max_rate, r.generator_limited) {
            (Some(m), true) => format!(">={m}*"),
            (Some(m), false) => m.to_string(),
            (None, _) => "-".into(),
        };
        let q = |x: Option<&LoadResult>, t3: bool, p: f64| {
            us(x.and_then(|x| {
                if t3 {
                    &x.t3_minus_t2_ns
                } else {
                    &x.response_ns
                }
                .quantile(p)
            }))
        };
        println!(
            "{:<30} {:>3} {:>13} | {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} {:>8} {:>7} | {:>6} {}",
            r.name,
            r.workers,
            max,
            q(light, false, 0.5),
            q(light, false, 0.99),
            q(light, true, 0.5),
            q(light, true, 0.99),
            q(run, false, 0.5),
            q(run, false, 0.99),
            q(run, true, 0.5),
            q(run, true, 0.99),
            r.cpu_us_per_reply.map_or("-".into(), |v| format!("{v:.2}")),
            r.idle_cpu_ms_per_s
                .map_or("-".into(), |v| format!("{v:.0}")),
            r.note
        );
    }
    println!(
        "(times in microseconds; CPU us = server CPU (utime+stime, /proc/PID/stat) per reply during the fixed-load run; idle = server CPU ms/s before it; * = the load generator could not offer more)"
    );
    let mut load = [0f64; 3];
    // SAFETY: getloadavg writes at most 3 doubles into the array.
    if unsafe { libc::getloadavg(load.as_mut_ptr(), 3) } == 3 {
        println!(
            "load average at the end: {:.2} {:.2} {:.2}",
            load[0], load[1], load[2]
        );
    }

    let find = |prefix: &str, w: usize| {
        rows.iter()
            .find(|r| r.name.starts_with(prefix) && r.workers == w)
    };
    let chrony = rows.iter().find(|r| r.name.starts_with("chronyd"));
    for &w in &args.workers {
        let Some(refl) = find("reflector", w) else {
            continue;
        };
        for server in ["skytimed", "skytime-ntp"] {
            let Some(s) = find(server, w) else { continue };
            if let (Some(sc), Some(rc)) = (s.cpu_us_per_reply, refl.cpu_us_per_reply) {
                println!(
                    "{server} ({w} worker): CPU per reply {:.2} us = {:.2}x the reflector's {:.2} us (target <= 1.10x)",
                    sc,
                    sc / rc,
                    rc
                );
            }
            if let Some(c) = chrony {
                if let (Some(sc), Some(cc)) = (s.cpu_us_per_reply, c.cpu_us_per_reply) {
                    println!(
                        "{server} ({w} worker): CPU per reply {:.2}x chronyd's {:.2} us",
                        sc / cc,
                        cc
                    );
                }
                if let (Some(sm), Some(cm)) = (s.max_rate, c.max_rate) {
                    println!(
                        "{server} ({w} worker): max rate {sm}/s vs chronyd {cm}/s = {:.2}x (target >= 1.00x)",
                        sm as f64 / cm as f64
                    );
                }
            }
            if let Some(p99) = s
                .light_run
                .as_ref()
                .and_then(|x| x.t3_minus_t2_ns.quantile(0.99))
            {
                println!(
                    "{server} ({w} worker): p99 T3-T2 {:.1} us at {LIGHT_RATE}/s (target <= 10 us)",
                    p99 as f64 / 1000.0
                );
            }
        }
    }
}
