//! `ntpbench`: the NTP load generator, the bare UDP reflector and the driver
//! that compares skytimed, chronyd and the reflector in one run on loopback.
//! `scripts/bench-ntp.sh` builds it and runs `ntpbench compare`.

// timespec fields are 32-bit on 32-bit Pi OS images: the `as i64` casts are
// not redundant there.
#![allow(
    clippy::unnecessary_cast,
    reason = "timespec fields are 32-bit on 32-bit Pi OS images, so the casts are needed there"
)]

mod compare;
mod cost;
mod flood;
mod hist;
mod load;
mod nts_cost;
mod nts_session;
mod nts_udp;
mod reflector;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use clap::{Parser, Subcommand};
use skytime_ntp::{NtpServer, ServerConfig, SystemState};
use skytime_timebase::{HostClock, LeapChange, TimeSource};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "ntpbench",
    about = "NTP server load generator and comparison (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compare the reflector, the skytime-ntp library server, chronyd -x and skytimed.
    Compare {
        /// Worker counts for the multi-threaded servers, e.g. 1,2,4,8.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        workers: Vec<usize>,
        /// skytimed binary (omit to skip it).
        #[arg(long)]
        skytimed: Option<PathBuf>,
        /// chronyd binary (omit to skip it).
        #[arg(long)]
        chronyd: Option<PathBuf>,
        /// Client sockets, each from its own 127.1.x.y address.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Length of each max-rate trial.
        #[arg(long, default_value_t = 1000)]
        trial_ms: u64,
        /// Fixed rate of the CPU-per-reply run.
        #[arg(long, default_value_t = 100_000)]
        cpu_rate: u64,
        /// Length of the CPU-per-reply run.
        #[arg(long, default_value_t = 3000)]
        cpu_ms: u64,
        /// First rate of the max-rate search.
        #[arg(long, default_value_t = 50_000)]
        start_rate: u64,
        /// Highest rate the search tries.
        #[arg(long, default_value_t = 1_000_000)]
        max_rate: u64,
        /// Rounds over all servers (best max rate, median CPU are summarised).
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
    /// Server CPU per valid reply at 1 and 2 workers against the reflector at
    /// the same thread count, in a burst and a steady 256-source shape, and
    /// the transmit-stamp gap (client RX stamp - T3) beside chronyd's.
    Cost {
        /// Thread counts (server workers = reflector threads).
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        workers: Vec<usize>,
        /// skytimed binary (omit to measure the library server only).
        #[arg(long)]
        skytimed: Option<PathBuf>,
        /// chronyd binary, run with -x (omit to skip it).
        #[arg(long)]
        chronyd: Option<PathBuf>,
        /// Offered rate of both CPU shapes.
        #[arg(long, default_value_t = 100_000)]
        rate: u64,
        /// Rate of the near-saturation gap run.
        #[arg(long, default_value_t = 60_000)]
        heavy_rate: u64,
        /// Length of each run.
        #[arg(long, default_value_t = 2000)]
        run_ms: u64,
        /// Rounds over all servers (medians are printed).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// First loopback UDP port for the servers, one each (0: any free port).
        #[arg(long, default_value_t = 0)]
        port_base: u16,
    },
    /// Served-clock error of skytimed --simulate, unloaded and while flooded.
    FloodCheck {
        /// skytimed binary.
        #[arg(long)]
        skytimed: PathBuf,
        /// NTP worker threads in skytimed.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Nice level of skytimed's NTP workers (`[ntp] worker_nice`).
        #[arg(long, default_value_t = 0)]
        worker_nice: i32,
        /// Flood rate, requests per second.
        #[arg(long, default_value_t = 150_000)]
        rate: u64,
        /// Length of each run (unloaded, flooded), seconds.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Flood client sockets.
        #[arg(long, default_value_t = 64)]
        clients: usize,
    },
    /// Offer a fixed load to one server and print what came back.
    Load {
        /// Server address (loopback only).
        #[arg(long)]
        server: SocketAddr,
        /// Requests per second.
        #[arg(long, default_value_t = 10_000)]
        rate: u64,
        /// Duration in milliseconds (at most 60 s).
        #[arg(long, default_value_t = 2000)]
        duration_ms: u64,
        /// Client sockets.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Second octet of the clients' 127.n.x.y source addresses.
        #[arg(long, default_value_t = 1)]
        net: u8,
        /// One request per system call, each from the next client (as
        /// independent clients send), instead of bursts of 16 from one.
        #[arg(long)]
        steady: bool,
    },
    /// CPU per NTS reply beside a plain one (same run), and NTS-KE
    /// handshakes per second, in process on one core.
    NtsCost {
        /// Requests of each kind.
        #[arg(long, default_value_t = 200_000)]
        requests: u64,
        /// NTS-KE handshakes.
        #[arg(long, default_value_t = 300)]
        handshakes: u32,
    },
    /// Server CPU per NTS reply beside a plain one over UDP (same server,
    /// same rate, alternating runs), at a fixed rate and at a 256-source load.
    NtsUdp {
        /// Rate of the fixed-load shape (64 sources); 100k/s where the load
        /// generator and one server core can reach it.
        #[arg(long, default_value_t = 50_000)]
        rate: u64,
        /// Rate of the 256-source shape.
        #[arg(long, default_value_t = 25_600)]
        steady_rate: u64,
        /// Length of each run.
        #[arg(long, default_value_t = 3000)]
        run_ms: u64,
        /// Plain/NTS run pairs per shape.
        #[arg(long, default_value_t = 2)]
        rounds: usize,
        /// Server port on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Bare recvmmsg/sendmmsg UDP reflector (runs until killed).
    Reflector {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long, default_value_t = 1)]
        workers: usize,
    },
    /// The skytime-ntp library server on the host clock, always synchronised (runs until killed).
    Serve {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Serve NTS too, with the cookie keys of this key file.
        #[arg(long)]
        nts_key_file: Option<PathBuf>,
    },
}

fn loopback_only(addr: SocketAddr) -> Result<()> {
    anyhow::ensure!(
        addr.ip().is_loopback(),
        "{addr} is not a loopback address: load goes to loopback only"
    );
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Cmd::Compare {
            workers,
            skytimed,
            chronyd,
            clients,
            trial_ms,
            cpu_rate,
            cpu_ms,
            start_rate,
            max_rate,
            rounds,
        } => compare::compare(&compare::CompareArgs {
            workers,
            skytimed,
            chronyd,
            clients: clients.clamp(1, 60_000),
            trial: Duration::from_millis(trial_ms.clamp(100, 10_000)),
            cpu_rate,
            cpu_run: Duration::from_millis(cpu_ms.clamp(100, 30_000)),
            start_rate,
            max_rate,
            rounds: rounds.clamp(1, 10),
        }),
        Cmd::Cost {
            workers,
            skytimed,
            chronyd,
            rate,
            heavy_rate,
            run_ms,
            rounds,
            port_base,
        } => cost::run(&cost::CostArgs {
            workers,
            skytimed,
            chronyd,
            rate_per_s: rate.clamp(1, 1_000_000),
            heavy_rate_per_s: heavy_rate.clamp(1, 1_000_000),
            run: Duration::from_millis(run_ms.clamp(100, 30_000)),
            rounds: rounds.clamp(1, 20),
            port_base,
        }),
        Cmd::FloodCheck {
            skytimed,
            workers,
            worker_nice,
            rate,
            seconds,
            clients,
        } => flood::flood_check(
            &skytimed,
            workers,
            worker_nice,
            rate,
            seconds,
            clients.clamp(1, 60_000),
        ),
        Cmd::Load {
            server,
            rate,
            duration_ms,
            clients,
            net,
            steady,
        } => {
            loopback_only(server)?;
            let c = load::Clients::open_from(server, clients.clamp(1, 60_000), net)?;
            let r = c.run(&load::LoadSpec {
                rate_per_s: rate,
                duration: Duration::from_millis(duration_ms.min(60_000)),
                drain: Duration::from_millis(300),
                pacing: if steady {
                    load::Pacing::Steady
                } else {
                    load::Pacing::Batched
                },
            });
            let q = |h: &hist::Histogram, p| h.quantile(p).map_or(f64::NAN, |v| v as f64 / 1000.0);
            println!(
                "sent {} ({:.0}/s, {} refused), received {}, loss {:.3} %, kod {}, unsync {}, response p50 {:.1} us p99 {:.1} us, T3-T2 p50 {:.1} us p99 {:.1} us",
                r.sent,
                r.sent_rate(),
                r.send_failures,
                r.received,
                r.loss() * 100.0,
                r.kods,
                r.unsynchronised,
                q(&r.response_ns, 0.5),
                q(&r.response_ns, 0.99),
                q(&r.t3_minus_t2_ns, 0.5),
                q(&r.t3_minus_t2_ns, 0.99),
            );
            Ok(())
        }
        Cmd::NtsCost {
            requests,
            handshakes,
        } => nts_cost::run(requests.min(10_000_000), handshakes.min(100_000)),
        Cmd::NtsUdp {
            rate,
            steady_rate,
            run_ms,
            rounds,
            port,
        } => nts_udp::run(&nts_udp::NtsUdpArgs {
            shapes: vec![
                nts_udp::Shape {
                    name: "fixed, 64 sources".into(),
                    sources: 64,
                    rate_per_s: rate.clamp(1, 1_000_000),
                },
                nts_udp::Shape {
                    name: "steady, 256 sources".into(),
                    sources: 256,
                    rate_per_s: steady_rate.clamp(1, 1_000_000),
                },
            ],
            run: Duration::from_millis(run_ms.clamp(100, 30_000)),
            rounds: rounds.clamp(1, 10),
            port,
        }),
        Cmd::Reflector { listen, workers } => {
            loopback_only(listen)?;
            reflector::run(listen, workers)
        }
        Cmd::Serve {
            listen,
            workers,
            nts_key_file,
        } => {
            loopback_only(listen)?;
            let mut config = ServerConfig {
                listen: vec![listen],
                workers,
                ..ServerConfig::default()
            };
            config.ratelimit.enabled = false;
            let now = HostClock.realtime();
            let state = SystemState {
                synchronised: true,
                leap: LeapChange::None,
                stratum: 1,
                reference_id: *b"GPS\0",
                root_delay_ns: 0.0,
                root_dispersion_ns: 1_000.0,
                dispersion_rate_ns_per_s: 0.0,
                as_of: now,
                reference_time: now,
            };
            let mut server = NtpServer::bind(
                &config,
                Arc::new(HostClock),
                Arc::new(ArcSwap::from_pointee(state)),
            )
            .context("bind")?;
            if let Some(path) = nts_key_file {
                let keys = skytime_nts::keyfile::load(&path).context("NTS cookie key file")?;
                server = server.with_nts(Arc::new(ArcSwap::from_pointee(keys)));
            }
            let _handle = server.spawn().context("spawn")?;
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
    }
}
