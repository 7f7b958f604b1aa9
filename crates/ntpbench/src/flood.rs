//! Does a flood cost the discipline anything? Under `skytimed --simulate` the
//! served clock is the host clock plus the simulated oscillator's error left
//! after discipline, so the offset an NTP client on this host measures *is* the
//! discipline's error (plus loopback noise). This samples that offset with a
//! minimum-delay filter, first unloaded, then while the load generator floods
//! the same server, and prints both.

use crate::compare::{Server, start_skytimed};
use crate::load::{Clients, LoadSpec, Pacing};
use anyhow::{Context, Result, bail};
use skytime_netio::{self as netio, RxBatch, Wait};
use skytime_ntp::NtpTimestamp;
use skytime_timebase::{HostClock, TimeSource};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One NTP exchange's offset and delay, ns.
#[derive(Copy, Clone, Debug)]
struct Sample {
    offset_ns: f64,
    delay_ns: f64,
    stratum: u8,
}

struct Sampler {
    sock: Socket,
}

impl Sampler {
    fn new(target: SocketAddr) -> Result<Sampler> {
        let sock = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        let local: SocketAddr = "127.2.0.1:0".parse().context("sampler address")?;
        sock.bind(&local.into())?;
        sock.connect(&target.into())?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        netio::enable_rx_timestamps(sock.as_fd()).context("SO_TIMESTAMPNS")?;
        Ok(Sampler { sock })
    }

    fn sample(&self) -> Option<Sample> {
        let mut req = [0u8; 48];
        req[0] = (4 << 3) | 3;
        let t1 = HostClock.realtime();
        req[40..48].copy_from_slice(&t1.0.cast_unsigned().to_be_bytes());
        self.sock.send(&req).ok()?;
        let deadline = Instant::now() + Duration::from_millis(200);
        let mut rx = RxBatch::new(1, 128);
        while Instant::now() < deadline {
            // Blocking read bounded by SO_RCVTIMEO.
            rx.recv(self.sock.as_fd(), Wait::Blocking).ok()?;
            let reply = rx.get(0)?;
            let buf = reply.payload;
            if buf.len() < 48 {
                return None;
            }
            let word = |o: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&buf[o..o + 8]);
                u64::from_be_bytes(w)
            };
            if word(24) != t1.0.cast_unsigned() {
                continue; // a stale reply
            }
            let t4 = reply.rx_time.unwrap_or_else(|| HostClock.realtime()).0;
            let t2 = NtpTimestamp(word(32)).to_unix_near(t1).0;
            let t3 = NtpTimestamp(word(40)).to_unix_near(t1).0;
            let t1 = t1.0;
            return Some(Sample {
                offset_ns: ((t2 - t1) as f64 + (t3 - t4) as f64) / 2.0,
                delay_ns: ((t4 - t1) - (t3 - t2)) as f64,
                stratum: buf[1],
            });
        }
        None
    }

    /// Min-delay-filtered offsets, one per `window`, for `duration`.
    fn run(&self, duration: Duration, window: Duration) -> (Vec<f64>, usize, usize) {
        let start = Instant::now();
        let mut filtered = Vec::new();
        let (mut sent, mut lost) = (0, 0);
        while start.elapsed() < duration {
            let w_start = Instant::now();
            let mut best: Option<Sample> = None;
            while w_start.elapsed() < window {
                sent += 1;
                match self.sample() {
                    Some(s) if s.stratum == 1 => {
                        if best.is_none_or(|b| s.delay_ns < b.delay_ns) {
                            best = Some(s);
                        }
                    }
                    Some(_) => {}
                    None => lost += 1,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(b) = best {
                filtered.push(b.offset_ns);
            }
        }
        (filtered, sent, lost)
    }
}

/// The discipline's own last filtered offset, from `skytimectl status --json`.
fn discipline_offset_ns(skytimectl: &Path, socket: &Path) -> Option<f64> {
    let out = std::process::Command::new(skytimectl)
        .arg("--socket")
        .arg(socket)
        .args(["status", "--json"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rest = text.split("\"offset_ns\":").nth(1)?;
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().ok()
}

/// Polls the discipline's offset once a second until `stop` is set.
fn poll_discipline(
    skytimectl: PathBuf,
    socket: PathBuf,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<f64>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if let Some(x) = discipline_offset_ns(&skytimectl, &socket) {
                v.push(x);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        v
    })
}

/// One run of the sampler, with the discipline's own offset polled meanwhile.
struct Phase {
    /// Min-delay-filtered served-clock offsets, one per window, ns.
    served: Vec<f64>,
    /// Sampler requests sent.
    sent: usize,
    /// Of which unanswered.
    lost: usize,
    /// The discipline's filtered offsets, once a second, ns.
    discipline: Vec<f64>,
}

impl Phase {
    /// Samples for `run` while a thread polls `skytimectl status` on `socket`.
    fn measure(
        sampler: &Sampler,
        run: Duration,
        window: Duration,
        skytimectl: &Path,
        socket: &Path,
    ) -> Phase {
        let stop = Arc::new(AtomicBool::new(false));
        let poller = poll_discipline(skytimectl.to_path_buf(), socket.to_path_buf(), stop.clone());
        let (served, sent, lost) = sampler.run(run, window);
        stop.store(true, Ordering::Relaxed);
        let discipline = poller.join().unwrap_or_default();
        Phase {
            served,
            sent,
            lost,
            discipline,
        }
    }
}

fn summary(v: &[f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let rms = (v.iter().map(|x| x * x).sum::<f64>() / n).sqrt();
    let max = v.iter().fold(0f64, |m, x| m.max(x.abs()));
    (mean, rms, max)
}

/// Runs the check and prints the comparison.
pub fn flood_check(
    skytimed: &Path,
    workers: usize,
    worker_nice: i32,
    rate: u64,
    seconds: u64,
    clients: usize,
) -> Result<()> {
    let mut server: Server = start_skytimed(skytimed, workers, worker_nice)?;
    let target = server.addr;
    let sampler = Sampler::new(target)?;
    eprintln!("waiting for skytimed --simulate on {target} to serve stratum 1...");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            bail!("skytimed exited: {status}");
        }
        if sampler.sample().is_some_and(|s| s.stratum == 1) {
            break;
        }
        if Instant::now() > deadline {
            bail!("skytimed never served stratum 1");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Let the discipline settle past lock-in before the reference run.
    std::thread::sleep(Duration::from_secs(5));
    let run = Duration::from_secs(seconds.clamp(2, 120));
    let window = Duration::from_secs(1);
    let skytimectl = skytimed.with_file_name("skytimectl");
    let socket = server
        .state_dir
        .clone()
        .unwrap_or_default()
        .join("skytimed.sock");
    let measure = || Phase::measure(&sampler, run, window, &skytimectl, &socket);
    eprintln!("unloaded run, {} s...", run.as_secs());
    let quiet = measure();

    eprintln!(
        "flooded run at {rate}/s from {clients} clients, {} s...",
        run.as_secs()
    );
    let flood_clients = Clients::open(target, clients)?;
    let flood = std::thread::spawn(move || {
        flood_clients.run(&LoadSpec {
            rate_per_s: rate,
            duration: run + Duration::from_millis(500),
            drain: Duration::from_millis(200),
            pacing: Pacing::Batched,
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    let loud = measure();
    let load = flood
        .join()
        .map_err(|_| anyhow::anyhow!("flood thread panicked"))?;

    // Unloaded again: the discipline keeps converging after lock, so the
    // flooded run is judged against the runs on both sides of it.
    std::thread::sleep(Duration::from_secs(1));
    eprintln!("unloaded again, {} s...", run.as_secs());
    let after = measure();
    drop(server);

    println!();
    println!(
        "served-clock error of skytimed --simulate (NTP offset vs host clock, min-delay of each 1 s window), ns:"
    );
    println!(
        "{:<10} {:>8} {:>12} {:>12} {:>12} {:>16}",
        "run", "windows", "mean", "rms", "max |x|", "sampler loss"
    );
    let row = |name: &str, p: &Phase| {
        let (m, r, x) = summary(&p.served);
        println!(
            "{name:<10} {:>8} {m:>12.0} {r:>12.0} {x:>12.0} {:>10}/{:<5}",
            p.served.len(),
            p.lost,
            p.sent
        );
        r
    };
    let q1 = row("unloaded", &quiet);
    let l = row("flooded", &loud);
    let q2 = row("unloaded", &after);
    println!(
        "flood: offered {rate}/s, sent {:.0}/s, answered {:.1} %; served-clock rms flooded / unloaded (mean of both) = {:.2}",
        load.sent_rate(),
        (1.0 - load.loss()) * 100.0,
        l / ((q1 + q2) / 2.0)
    );
    println!("the discipline's own filtered offset (skytimectl status, once a second), ns:");
    println!(
        "{:<10} {:>8} {:>12} {:>12} {:>12}",
        "run", "samples", "mean", "rms", "max |x|"
    );
    let drow = |name: &str, v: &[f64]| {
        let (m, r, x) = summary(v);
        println!("{name:<10} {:>8} {m:>12.1} {r:>12.1} {x:>12.1}", v.len());
        r
    };
    let d1 = drow("unloaded", &quiet.discipline);
    let dl = drow("flooded", &loud.discipline);
    let d2 = drow("unloaded", &after.discipline);
    println!(
        "discipline rms offset flooded / unloaded (mean of both) = {:.2}; / the later unloaded run = {:.2}",
        dl / ((d1 + d2) / 2.0),
        dl / d2
    );
    println!(
        "(the discipline still converges after lock, so the fair reference for the flooded phase is the \
         same phase of a run with `--rate 1`: same seed, same seconds after lock)"
    );
    Ok(())
}
