//! Server CPU per valid reply in two independent load shapes, for the NTP
//! server at 1 and 2 workers against the bare reflector at the same thread
//! count, and the transmit-stamp gap basic-mode clients feel (their kernel
//! receive stamp minus the reply's T3) beside chronyd's, at a light load and
//! near saturation. Servers alternate within every round so the shared
//! machine's noise spreads over all of them; medians over rounds are printed.

use crate::compare::{Server, start_chronyd, start_library, start_reflector};
use crate::compare::{set_port_base, start_skytimed};
use crate::hist::Histogram;
use crate::load::{Clients, LoadResult, LoadSpec, Pacing};
use crate::nts_udp::process_cpu_ns;
use anyhow::{Result, bail};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Knobs of one cost run; every run is bounded in count and time.
#[derive(Clone, Debug)]
pub struct CostArgs {
    /// Thread counts to compare (server workers = reflector threads).
    pub workers: Vec<usize>,
    /// skytimed, measured beside the library server when given.
    pub skytimed: Option<PathBuf>,
    /// chronyd, for the transmit-stamp gap (always `-x`).
    pub chronyd: Option<PathBuf>,
    /// Offered rate of both CPU shapes.
    pub rate_per_s: u64,
    /// Rate of the near-saturation gap run.
    pub heavy_rate_per_s: u64,
    /// Length of each run.
    pub run: Duration,
    /// Rounds over all servers.
    pub rounds: usize,
    /// First of the loopback ports the servers use (one each).
    pub port_base: u16,
}

/// A load shape: who sends, and how.
struct Shape {
    name: &'static str,
    sources: usize,
    /// Second octet of the 127.n.x.y source addresses.
    net: u8,
    pacing: Pacing,
}

/// The burst shape of `compare` and the independent one of issue 11.
const SHAPES: [Shape; 2] = [
    Shape {
        name: "burst: 64 src, 16/sendmmsg",
        sources: 64,
        net: 1,
        pacing: Pacing::Batched,
    },
    Shape {
        name: "steady: 256 src, 1/send",
        sources: 256,
        net: 4,
        pacing: Pacing::Steady,
    },
];

/// Rate of the light-load gap run.
const LIGHT_RATE: u64 = 10_000;

/// One server's measurements in one round.
#[derive(Default, Clone)]
struct Sample {
    /// CPU µs per valid reply, per shape.
    cpu_us: [Option<f64>; 2],
    /// Sent rate and valid-reply fraction, per shape.
    sent_rate: [f64; 2],
    valid_pct: [f64; 2],
    /// Voluntary context switches (wake-ups) per 100 replies, per shape.
    wakeups_per_100: [Option<f64>; 2],
    gap_light: Histogram,
    gap_heavy: Histogram,
}

/// The server's voluntary context switches, all threads together.
fn wakeups(pid: u32) -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(text) = std::fs::read_to_string(task.ok()?.path().join("status")) else {
            continue; // a thread that just exited
        };
        total += text
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse::<u64>().ok())?;
    }
    Some(total)
}

fn run_load(clients: &Clients, rate: u64, run: Duration, pacing: Pacing) -> LoadResult {
    std::thread::sleep(Duration::from_millis(200));
    clients.run(&LoadSpec {
        rate_per_s: rate,
        duration: run,
        drain: Duration::from_millis(300),
        pacing,
    })
}

fn measure(server: &mut Server, args: &CostArgs) -> Result<Sample> {
    let pid = server.child.id();
    let mut sample = Sample::default();
    for (i, shape) in SHAPES.iter().enumerate() {
        let clients = Clients::open_from(server.addr, shape.sources, shape.net)?;
        wait_until_up(server, &clients)?;
        let (cpu0, wake0) = (process_cpu_ns(pid)?, wakeups(pid));
        let r = run_load(&clients, args.rate_per_s, args.run, shape.pacing);
        let (cpu1, wake1) = (process_cpu_ns(pid)?, wakeups(pid));
        let valid = r.received.saturating_sub(r.kods);
        if valid > 0 {
            sample.cpu_us[i] = Some(cpu1.saturating_sub(cpu0) as f64 / 1000.0 / valid as f64);
            sample.wakeups_per_100[i] = wake0
                .zip(wake1)
                .map(|(a, b)| b.saturating_sub(a) as f64 * 100.0 / valid as f64);
        }
        sample.sent_rate[i] = r.sent_rate();
        sample.valid_pct[i] = valid as f64 * 100.0 / r.sent.max(1) as f64;
        eprintln!(
            "    {}: sent {:.0}/s, {:.2} % valid, {:.2} us CPU per valid reply",
            shape.name,
            r.sent_rate(),
            sample.valid_pct[i],
            sample.cpu_us[i].unwrap_or(f64::NAN)
        );
    }
    let clients = Clients::open_from(server.addr, 64, 5)?;
    sample.gap_light = run_load(&clients, LIGHT_RATE, args.run, Pacing::Steady).rx_minus_t3_ns;
    let heavy = run_load(&clients, args.heavy_rate_per_s, args.run, Pacing::Batched);
    eprintln!(
        "    gap runs: heavy {}/s sent {:.0}/s, loss {:.2} %",
        args.heavy_rate_per_s,
        heavy.sent_rate(),
        heavy.loss() * 100.0
    );
    sample.gap_heavy = heavy.rx_minus_t3_ns;
    Ok(sample)
}

fn wait_until_up(server: &mut Server, clients: &Clients) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !clients.probe(Duration::from_millis(300)) {
        if let Ok(Some(status)) = server.child.try_wait() {
            bail!("server exited at start-up ({status})");
        }
        if Instant::now() > deadline {
            bail!("server never answered");
        }
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Runs every server for `args.rounds` rounds and prints the tables.
pub fn run(args: &CostArgs) -> Result<()> {
    if args.workers.is_empty() {
        bail!("--workers needs at least one count");
    }
    set_port_base(args.port_base);
    type Start = Box<dyn Fn() -> Result<Server>>;
    let mut plan: Vec<(String, usize, Start)> = Vec::new();
    for &w in &args.workers {
        plan.push(("reflector".into(), w, Box::new(move || start_reflector(w))));
        plan.push((
            "skytime-ntp library".into(),
            w,
            Box::new(move || start_library(w)),
        ));
        if let Some(s) = args.skytimed.clone() {
            plan.push((
                "skytimed --simulate".into(),
                w,
                Box::new(move || start_skytimed(&s, w, 0)),
            ));
        }
    }
    if let Some(c) = args.chronyd.clone() {
        plan.push(("chronyd -x".into(), 1, Box::new(move || start_chronyd(&c))));
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); plan.len()];
    for round in 1..=args.rounds.max(1) {
        eprintln!("### round {round} of {}", args.rounds.max(1));
        for (k, (name, w, start)) in plan.iter().enumerate() {
            eprintln!("== {name} ({w} threads)");
            let sample = start().and_then(|mut server| measure(&mut server, args));
            match sample {
                Ok(s) => samples[k].push(s),
                Err(e) => eprintln!("    {name}: {e:#}"),
            }
        }
    }
    print_cost(args, &plan, &samples);
    print_gap(args, &plan, &samples);
    Ok(())
}

fn print_cost(args: &CostArgs, plan: &[(String, usize, impl Sized)], samples: &[Vec<Sample>]) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "CPU per valid reply (all threads' run time, /proc/PID/task/*/schedstat), offered {}/s for {} ms; median of {} rounds; {} cores shared with other work: noisy",
        args.rate_per_s,
        args.run.as_millis(),
        args.rounds,
        cores
    );
    println!(
        "{:<26} | {:^48} | {:^48}",
        "", SHAPES[0].name, SHAPES[1].name
    );
    println!(
        "{:<22} {:>3} | {:>9} {:>7} {:>8} {:>7} {:>6} | {:>9} {:>7} {:>8} {:>7} {:>6}",
        "server",
        "thr",
        "sent/s",
        "valid%",
        "CPU us",
        "vs refl",
        "wk/100",
        "sent/s",
        "valid%",
        "CPU us",
        "vs refl",
        "wk/100"
    );
    let med_cpu =
        |k: usize, i: usize| median(samples[k].iter().filter_map(|s| s.cpu_us[i]).collect());
    for (k, (name, w, _)) in plan.iter().enumerate() {
        if name.starts_with("chronyd") && samples[k].is_empty() {
            continue;
        }
        let refl = plan
            .iter()
            .position(|(n, rw, _)| n == "reflector" && rw == w);
        let mut cols = String::new();
        for i in 0..SHAPES.len() {
            let cpu = med_cpu(k, i);
            let ratio = refl
                .and_then(|r| med_cpu(r, i))
                .zip(cpu)
                .map(|(r, c)| c / r);
            let sent = median(samples[k].iter().map(|s| s.sent_rate[i]).collect());
            let valid = median(samples[k].iter().map(|s| s.valid_pct[i]).collect());
            let wake = median(
                samples[k]
                    .iter()
                    .filter_map(|s| s.wakeups_per_100[i])
                    .collect(),
            );
            let f = |v: Option<f64>, p: usize| v.map_or("-".into(), |v| format!("{v:.p$}"));
            cols.push_str(&format!(
                " | {:>9} {:>7} {:>8} {:>7} {:>6}",
                f(sent, 0),
                f(valid, 2),
                f(cpu, 2),
                ratio.map_or("-".into(), |r| format!("{r:.2}x")),
                f(wake, 1)
            ));
        }
        println!("{name:<22} {w:>3}{cols}");
    }
    println!(
        "(vs refl = CPU per valid reply / the reflector's at the same thread count, goal <= 1.10x; wk/100 = voluntary context switches (wake-ups) per 100 replies, all threads)"
    );
}

fn print_gap(args: &CostArgs, plan: &[(String, usize, impl Sized)], samples: &[Vec<Sample>]) {
    println!();
    println!(
        "Transmit-stamp gap: client kernel RX stamp - reply T3 (loopback, one host clock), all rounds pooled; light {}/s steady, heavy {}/s burst",
        LIGHT_RATE, args.heavy_rate_per_s
    );
    println!(
        "{:<22} {:>3} | {:>9} {:>9} | {:>9} {:>9}",
        "server", "thr", "light p50", "light p99", "heavy p50", "heavy p99"
    );
    let us = |h: &Histogram, q: f64| {
        h.quantile(q)
            .map_or("-".into(), |v| format!("{:.1}", v as f64 / 1000.0))
    };
    for (k, (name, w, _)) in plan.iter().enumerate() {
        if name == "reflector" || samples[k].is_empty() {
            continue; // the reflector writes no T3
        }
        if name.starts_with("skytimed") {
            // Its T3 is read from the simulated clock, offset from the host
            // clock that stamps the client's receive: the difference is that
            // offset, not the gap (the library server runs the same worker).
            println!(
                "{name:<22} {w:>3} | {:>19} | {:>19}",
                "n/a (simulated clock)", "n/a"
            );
            continue;
        }
        let (mut light, mut heavy) = (Histogram::default(), Histogram::default());
        for s in &samples[k] {
            light.merge(&s.gap_light);
            heavy.merge(&s.gap_heavy);
        }
        println!(
            "{name:<22} {w:>3} | {:>9} {:>9} | {:>9} {:>9}",
            us(&light, 0.5),
            us(&light, 0.99),
            us(&heavy, 0.5),
            us(&heavy, 0.99)
        );
    }
    println!(
        "(microseconds; goal: p99 no worse than chronyd's; the library server runs skytimed's worker on the host clock)"
    );
}
