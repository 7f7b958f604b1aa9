//! The real-time simulated hat behind `skytimed --simulate`.
//!
//! Three parts, each standing in for one piece of a Pi with a GPS hat:
//! - [`SimulatedClock`]: the clock being disciplined. It reads the host clock and
//!   adds the error of a simulated oscillator (plus whatever the discipline
//!   steered), so the whole pipeline runs for real while the host clock is never
//!   touched. The host clock is taken as true time.
//! - [`SimulatedPps`]: a [`PpsSource`] whose edges fall on the true second, stamped
//!   by the simulated clock as a kernel interrupt would stamp them.
//! - an NMEA writer thread that puts one burst per second into a pseudo-terminal
//!   at the pace of a 9600-baud line, so the GNSS reader opens `/dev/pts/N`
//!   exactly as it would open `/dev/ttyAMA0`.
//! - with a u-blox-like `[receiver]` (a `timing_clock_hz` sawtooth, `tim_tp`):
//!   the sawtooth on each edge and, after each burst, the UBX-TIM-TP with the
//!   next edge's qErr (see [`crate::hat_receiver`]), after the u-blox start-up
//!   banner that names the receiver.
//!
//! The hat is shaped by the same scenario format as simulated-time runs
//! (`[clock]`, `[pps]`, `[nmea]`, `[receiver]`; times in the windows count
//! from hat start).

use crate::hat_receiver::{HatTiming, TimTpWriter};
use crate::nmea_out::{FixInfo, nmea_burst, ublox_startup_banner};
use crate::oscillator::{Oscillator, OscillatorParams};
use crate::scenario::Scenario;
use crate::segment_cell::{ErrorSegment, SegmentCell};
use crate::sim_clock::SimClock;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::openpty;
use nix::sys::termios;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, Normal};
use skytime_pps::{PpsEdge, PpsError, PpsSource};
use skytime_refclock::{Clock, ClockError, SyncReport};
use skytime_timebase::{
    HostClock, LeapChange, MonoNanos, NANOS_PER_SEC, TimeSource, UnixNanos, UtcSecond,
};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The hat `skytimed --simulate` uses when no scenario is given: a Pi with an
/// MTK3339-style hat whose clock booted a third of a second wrong.
pub const DEFAULT_REALTIME_SCENARIO: &str = r#"
name = "realtime-default"
duration_s = 3456000
warmup_s = 0
seed = 7
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
"#;

/// Line rate of the simulated receiver: 9600 baud, 8N1, so 960 bytes per second.
const BAUD: u32 = 9600;

/// Nanoseconds as a whole number (the fraction dropped, as `as` does).
#[expect(
    clippy::cast_possible_truncation,
    reason = "the hat's latencies, jitters and delays are under a second, far inside i64 ns"
)]
fn whole_ns(ns: f64) -> i64 {
    ns as i64
}

/// Why the hat could not start.
#[derive(Debug, thiserror::Error)]
pub enum HatError {
    /// Creating or configuring the pseudo-terminal failed.
    #[error("cannot create the simulated serial line (pty): {0}")]
    Pty(#[from] nix::Error),
    /// Spawning a thread failed.
    #[error("cannot start a simulator thread: {0}")]
    Thread(#[from] std::io::Error),
    /// The scenario shaping the hat is invalid.
    #[error("invalid simulated hat scenario: {0}")]
    Scenario(String),
}

struct ClockShared {
    /// The error now, as a line; replaced whole on every change, so readers
    /// (the NTP hot path among them) never lock.
    segment: SegmentCell,
    /// The exact model: the simulator's clock (the one `skytime-core` clock,
    /// kernel leap behaviour included), with the host clock as true time;
    /// only writers touch it.
    model: SimClock,
    /// Host realtime at the model's true time zero.
    origin: UnixNanos,
    /// Held by every writer from running the model to publishing, so a
    /// segment is never computed from one moment and stored after a later one.
    writer: Mutex<()>,
}

/// The disciplined clock of the simulated hat: host clock plus simulated error.
/// Cheap to clone; every clone is the same clock.
#[derive(Clone)]
pub struct SimulatedClock {
    shared: Arc<ClockShared>,
}

impl SimulatedClock {
    /// A clock whose error starts at `initial_offset_ns` and then follows the
    /// oscillator; time zero of the oscillator is now.
    pub fn new(params: &OscillatorParams, initial_offset_ns: f64, seed: u64) -> Self {
        let origin = HostClock.realtime();
        let model = SimClock::new(Oscillator::new(params, seed), origin, initial_offset_ns);
        let segment = ErrorSegment {
            since: origin,
            error_ns: model.error_ns(origin),
            rate_ppb: model.rate_ppb(),
        };
        Self {
            shared: Arc::new(ClockShared {
                segment: SegmentCell::new(segment),
                model,
                origin,
                writer: Mutex::new(()),
            }),
        }
    }

    /// Runs the model to now, applies `command` to it and publishes the
    /// result, all under the writer lock.
    fn write<R>(&self, command: impl FnOnce(&SimClock) -> R) -> R {
        // A panic while holding the lock leaves the model consistent enough to
        // keep simulating; never let it take the daemon down.
        let _writer = self.shared.writer.lock().unwrap_or_else(|p| p.into_inner());
        let leaps_before = self.shared.model.leap_steps_s();
        self.republish();
        let result = command(&self.shared.model);
        self.republish();
        let leaps = self.shared.model.leap_steps_s();
        if leaps != leaps_before {
            let name = if leaps < leaps_before {
                "inserted"
            } else {
                "deleted"
            };
            tracing::info!(leap = name, "simulated clock applied the armed leap second");
        }
        result
    }

    /// Runs the model to host time now and publishes its error and rate there.
    /// Only under the writer lock.
    fn republish(&self) {
        let host = HostClock.realtime();
        let model = &self.shared.model;
        model.advance_to(host.nanos_since(self.shared.origin));
        // The error at the model's own true time: the same as at `host`
        // unless the host clock stepped back, which the model never follows.
        let model_true = self.shared.origin.add_nanos(model.true_ns());
        self.shared.segment.store(ErrorSegment {
            since: host,
            error_ns: model.error_ns(model_true),
            rate_ppb: model.rate_ppb(),
        });
    }

    /// Moves the model forward to now: random-walk steps, temperature, and an
    /// armed leap second when the clock reaches its moment (as the kernel does).
    pub fn advance(&self) {
        self.write(|_| ());
    }

    /// The simulated clock's true error now (clock minus host), in ns: what a
    /// perfect external observer would measure. For logs and tests only.
    pub fn true_error_ns(&self) -> f64 {
        self.shared.segment.load().error_at(HostClock.realtime())
    }

    /// How many times the discipline stepped this clock.
    pub fn step_count(&self) -> u64 {
        self.shared.model.steps()
    }

    /// The last quality report the discipline published.
    pub fn last_sync_report(&self) -> SyncReport {
        self.shared.model.last_report()
    }
}

impl TimeSource for SimulatedClock {
    fn realtime(&self) -> UnixNanos {
        self.from_host_realtime(HostClock.realtime())
    }
    fn monotonic(&self) -> MonoNanos {
        HostClock.monotonic()
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the simulated error is seconds at most, far inside i64 ns"
    )]
    fn from_host_realtime(&self, host: UnixNanos) -> UnixNanos {
        let error = self.shared.segment.load().error_at(host);
        host.add_nanos(error.round() as i64)
    }
}

/// Each command first runs the model to now, so it takes effect from this
/// moment, and then republishes.
impl Clock for SimulatedClock {
    fn set_frequency_ppb(&self, ppb: f64) -> Result<MonoNanos, ClockError> {
        self.write(|model| model.set_frequency_ppb(ppb))?;
        Ok(HostClock.monotonic())
    }
    fn frequency_ppb(&self) -> f64 {
        self.shared.model.frequency_ppb()
    }
    fn step(&self, offset_ns: i64) -> Result<MonoNanos, ClockError> {
        self.write(|model| model.step(offset_ns))?;
        Ok(HostClock.monotonic())
    }
    fn set_leap(&self, leap: LeapChange) -> Result<(), ClockError> {
        self.write(|model| model.set_leap(leap))
    }
    fn report_sync(&self, report: SyncReport) -> Result<(), ClockError> {
        self.shared.model.report_sync(report)
    }
    fn set_tai_offset_s(&self, tai_minus_utc_s: i32) -> Result<(), ClockError> {
        self.shared.model.set_tai_offset_s(tai_minus_utc_s)
    }
}

/// How the hat's PPS and NMEA behave, from the scenario.
#[derive(Clone, Debug)]
struct LineProfile {
    pps_jitter_ns: f64,
    pps_latency_ns: f64,
    nmea_delay_ms: f64,
    nmea_jitter_ms: f64,
    scenario: Scenario,
}

/// Edges on every true second, stamped by the simulated clock.
pub struct SimulatedPps {
    clock: SimulatedClock,
    profile: LineProfile,
    /// The receiver's sawtooth, when it has one.
    timing: Option<HatTiming>,
    rng: Xoshiro256PlusPlus,
    origin_secs: i64,
    next_edge_secs: i64,
    sequence: u32,
    stop: Arc<AtomicBool>,
}

impl SimulatedPps {
    fn edge_stamp(&mut self, edge_secs: i64) -> UnixNanos {
        let jitter = if self.profile.pps_jitter_ns > 0.0 {
            Normal::new(0.0, self.profile.pps_jitter_ns)
                .map(|n| n.sample(&mut self.rng))
                .unwrap_or(0.0)
        } else {
            0.0
        };
        let sawtooth_ns = self
            .timing
            .as_ref()
            .and_then(|t| t.pulse(edge_secs))
            .map_or(0.0, |p| p.emitted_offset_ns);
        let host = UnixNanos(edge_secs * NANOS_PER_SEC).add_nanos(whole_ns(
            (self.profile.pps_latency_ns + jitter + sawtooth_ns).round(),
        ));
        self.clock.from_host_realtime(host)
    }

    fn in_outage(&self, edge_secs: i64) -> bool {
        let t = (edge_secs - self.origin_secs) as f64;
        self.profile
            .scenario
            .pps
            .outages
            .iter()
            .any(|w| w.contains(t))
    }
}

impl PpsSource for SimulatedPps {
    fn fetch(&mut self, timeout: Duration) -> Result<Option<PpsEdge>, PpsError> {
        let deadline = HostClock.monotonic() + timeout;
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Err(PpsError::Disconnected {
                    path: self.describe(),
                    reason: "simulated hat stopped".into(),
                });
            }
            let now = HostClock.realtime();
            let edge_host = UnixNanos(self.next_edge_secs * NANOS_PER_SEC);
            if edge_host <= now {
                // Like the kernel, only the newest capture is kept: if the reader
                // fell behind, skip to the latest edge and let the sequence show it.
                let latest = now.secs();
                let missed = u32::try_from(latest - self.next_edge_secs).unwrap_or(u32::MAX);
                self.sequence = self.sequence.wrapping_add(missed);
                self.next_edge_secs = latest + 1;
                if self.in_outage(latest) {
                    continue;
                }
                self.sequence = self.sequence.wrapping_add(1);
                let timestamp = self.edge_stamp(latest);
                return Ok(Some(PpsEdge {
                    sequence: self.sequence,
                    timestamp,
                    received: HostClock.monotonic(),
                    uncertainty_ns: 0,
                }));
            }
            let remaining = deadline.nanos_since(HostClock.monotonic());
            if remaining <= 0 {
                return Ok(None);
            }
            let until_edge = edge_host.nanos_since(now);
            let nap_ns = u64::try_from(until_edge.min(remaining)).unwrap_or(0);
            std::thread::sleep(Duration::from_nanos(nap_ns));
        }
    }

    fn describe(&self) -> String {
        "simulated PPS (assert)".to_string()
    }
}

/// A running simulated hat: the pty the GNSS reader opens, the clock, and the
/// threads behind them. Stops its threads when dropped.
pub struct SimulatedHat {
    tty_path: PathBuf,
    clock: SimulatedClock,
    profile: LineProfile,
    timing: Option<HatTiming>,
    stop: Arc<AtomicBool>,
    overruns: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
    origin_secs: i64,
    /// Held open so the line stays up while the reader closes and reopens it.
    _slave: OwnedFd,
}

impl SimulatedHat {
    /// Starts the hat shaped by `scenario` (its `[clock]`, `[pps]` and `[nmea]`).
    pub fn start(scenario: &Scenario) -> Result<Self, HatError> {
        let problems = scenario.validate();
        if let Some((key, message)) = problems.first() {
            return Err(HatError::Scenario(format!("{key}: {message}")));
        }
        let profile = LineProfile {
            pps_jitter_ns: scenario.pps.jitter_ns,
            pps_latency_ns: scenario.pps.latency_ns,
            nmea_delay_ms: scenario.nmea.delay_ms,
            nmea_jitter_ms: scenario.nmea.jitter_ms,
            scenario: scenario.clone(),
        };
        let clock = SimulatedClock::new(
            &OscillatorParams::from(&scenario.clock),
            scenario.clock.initial_offset_s * NANOS_PER_SEC as f64,
            scenario.seed,
        );

        let pty = openpty(None, None)?;
        // Raw from the start: bytes queued before the reader opens the line must
        // arrive as the receiver sent them (no CR/NL translation, no echo).
        let mut attrs = termios::tcgetattr(&pty.slave)?;
        termios::cfmakeraw(&mut attrs);
        termios::tcsetattr(&pty.slave, termios::SetArg::TCSANOW, &attrs)?;
        let tty_path = nix::unistd::ttyname(&pty.slave)?;
        let flags = OFlag::from_bits_truncate(fcntl(&pty.master, FcntlArg::F_GETFL)?);
        fcntl(&pty.master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;

        let stop = Arc::new(AtomicBool::new(false));
        let overruns = Arc::new(AtomicU64::new(0));
        let origin_secs = HostClock.realtime().secs();
        let mut threads = Vec::new();

        let ticker_clock = clock.clone();
        let ticker_stop = Arc::clone(&stop);
        threads.push(
            std::thread::Builder::new()
                .name("sim-oscillator".into())
                .spawn(move || {
                    while !ticker_stop.load(Ordering::Relaxed) {
                        ticker_clock.advance();
                        std::thread::sleep(Duration::from_millis(200));
                    }
                })?,
        );

        let timing = HatTiming::of(&scenario.receiver, scenario.seed);
        let tim_tp = timing
            .as_ref()
            .and_then(|t| TimTpWriter::of(t, &scenario.receiver, scenario.seed));
        let writer = NmeaWriter {
            master: std::fs::File::from(pty.master),
            banner: tim_tp.as_ref().map(|_| ublox_startup_banner()),
            tim_tp,
            profile: profile.clone(),
            rng: Xoshiro256PlusPlus::seed_from_u64(scenario.seed ^ 0x4E4D_4541),
            origin_secs,
            stop: Arc::clone(&stop),
            overruns: Arc::clone(&overruns),
        };
        threads.push(
            std::thread::Builder::new()
                .name("sim-receiver".into())
                .spawn(move || writer.run())?,
        );

        Ok(Self {
            tty_path,
            clock,
            profile,
            timing,
            stop,
            overruns,
            threads,
            origin_secs,
            _slave: pty.slave,
        })
    }

    /// The serial device to open: the pty's slave side, e.g. `/dev/pts/3`.
    pub fn tty_path(&self) -> &Path {
        &self.tty_path
    }

    /// The clock the discipline steers and everything else reads.
    pub fn clock(&self) -> SimulatedClock {
        self.clock.clone()
    }

    /// A PPS source on this hat's line. Take one per reader thread.
    pub fn pps(&self) -> SimulatedPps {
        SimulatedPps {
            clock: self.clock.clone(),
            profile: self.profile.clone(),
            timing: self.timing.clone(),
            rng: Xoshiro256PlusPlus::seed_from_u64(self.profile.scenario.seed ^ 0x5050_5300),
            origin_secs: self.origin_secs,
            next_edge_secs: HostClock.realtime().secs() + 1,
            sequence: 0,
            stop: Arc::clone(&self.stop),
        }
    }

    /// Bytes the simulated receiver dropped because nobody read the line.
    pub fn overruns(&self) -> u64 {
        self.overruns.load(Ordering::Relaxed)
    }
}

impl Drop for SimulatedHat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Writes one burst per second into the pty, paced like a 9600-baud UART.
struct NmeaWriter {
    master: std::fs::File,
    /// Sent once, before the first burst (a u-blox receiver's start-up TXT).
    banner: Option<Vec<u8>>,
    /// TIM-TP after each burst, when the receiver is u-blox-like.
    tim_tp: Option<TimTpWriter>,
    profile: LineProfile,
    rng: Xoshiro256PlusPlus,
    origin_secs: i64,
    stop: Arc<AtomicBool>,
    overruns: Arc<AtomicU64>,
}

impl NmeaWriter {
    fn run(mut self) {
        let mut label_secs = HostClock.realtime().secs() + 1;
        while !self.stop.load(Ordering::Relaxed) {
            let t = (label_secs - self.origin_secs) as f64;
            let nmea = &self.profile.scenario.nmea;
            let silent = nmea.outages.iter().any(|w| w.contains(t));
            let shift = nmea
                .wrong_second
                .iter()
                .find(|w| w.from_s <= t && t < w.to_s)
                .map_or(0, |w| w.offset_s);
            let fix = if nmea.invalid_fix.iter().any(|w| w.contains(t)) {
                FixInfo::none()
            } else {
                FixInfo::good()
            };
            let label = UtcSecond::from_unix_secs(label_secs + shift);
            if let (false, Some(label)) = (silent, label) {
                let mut burst = self.banner.take().unwrap_or_default();
                burst.extend(nmea_burst(label, &fix, LeapChange::None));
                if let (Some(w), Some(next)) = (
                    self.tim_tp.as_mut(),
                    UtcSecond::from_unix_secs(label_secs + 1 + shift),
                ) {
                    burst.extend(w.after_burst(next, label_secs + 1));
                }
                let jitter_ms = if self.profile.nmea_jitter_ms > 0.0 {
                    Normal::new(0.0, self.profile.nmea_jitter_ms)
                        .map(|n| n.sample(&mut self.rng))
                        .unwrap_or(0.0)
                } else {
                    0.0
                };
                let end_ns = label_secs * NANOS_PER_SEC
                    + whole_ns((self.profile.nmea_delay_ms + jitter_ms).clamp(0.0, 990.0) * 1e6);
                self.write_paced(&burst, UnixNanos(end_ns));
            }
            label_secs += 1;
            // Never fall behind by more than a second (a suspended process, a slow CI box).
            label_secs = label_secs.max(HostClock.realtime().secs());
        }
    }

    /// Writes `bytes` so that the last one leaves at `end`, one byte per 1/960 s.
    fn write_paced(&mut self, bytes: &[u8], end: UnixNanos) {
        let byte_ns = 10 * NANOS_PER_SEC / i64::from(BAUD);
        let line_ns =
            |bytes: usize| i64::try_from(bytes).map_or(i64::MAX, |n| n.saturating_mul(byte_ns));
        let start = end.add_nanos(-line_ns(bytes.len()));
        const CHUNK: usize = 8;
        for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let due = start.add_nanos(line_ns(i * CHUNK + chunk.len()));
            let wait = due.nanos_since(HostClock.realtime());
            if wait > 0 {
                std::thread::sleep(Duration::from_nanos(u64::try_from(wait).unwrap_or(0)));
            }
            match self.master.write(chunk) {
                Ok(n) if n == chunk.len() => {}
                Ok(n) => {
                    self.overruns
                        .fetch_add((chunk.len() - n) as u64, Ordering::Relaxed);
                }
                Err(_) => {
                    // Buffer full (nobody reading) or line hung up: a real UART drops bytes too.
                    self.overruns
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn default_scenario() -> Scenario {
        Scenario::parse(DEFAULT_REALTIME_SCENARIO, "default").expect("built-in scenario parses")
    }

    #[test]
    fn simulated_clock_follows_steers_and_steps_without_touching_the_host() {
        let params = OscillatorParams {
            initial_freq_ppm: 10.0,
            ..Default::default()
        };
        let clock = SimulatedClock::new(&params, 250e6, 1);
        let e0 = clock.true_error_ns();
        assert!((e0 - 250e6).abs() < 1e6, "starts 250 ms off: {e0}");
        clock.step(-250_000_000).expect("step");
        assert!(clock.true_error_ns().abs() < 1e6);
        assert_eq!(clock.step_count(), 1);
        // Cancel the 10 ppm and watch the error stop growing.
        clock.set_frequency_ppb(-10_000.0).expect("steer");
        let a = clock.true_error_ns();
        std::thread::sleep(Duration::from_millis(200));
        clock.advance();
        let b = clock.true_error_ns();
        assert!((b - a).abs() < 50.0, "error drifted {} ns in 200 ms", b - a);
        let host = HostClock.realtime();
        let read = clock.from_host_realtime(host);
        assert!((read.nanos_since(host) as f64 - clock.true_error_ns()).abs() < 1e5);
    }

    #[test]
    fn pps_edges_fall_on_true_seconds_stamped_by_the_simulated_clock() {
        let hat = SimulatedHat::start(&default_scenario()).expect("hat starts");
        let mut pps = hat.pps();
        let edge = pps
            .fetch(Duration::from_millis(2500))
            .expect("fetch")
            .expect("an edge within 2.5 s");
        let error = hat.clock().true_error_ns();
        let fractional =
            edge.timestamp
                .nanos_since(UnixNanos(edge.timestamp.secs() * NANOS_PER_SEC)) as f64;
        // The stamp is the true second plus the clock's error (0.35 s at start), within jitter.
        let expected = error.rem_euclid(1e9);
        assert!(
            (fractional - expected).abs() < 1e5,
            "stamp {fractional} vs error {expected}"
        );
        assert!(
            pps.fetch(Duration::from_millis(1))
                .expect("fetch")
                .is_none(),
            "no edge within 1 ms of the last"
        );
    }

    #[test]
    fn the_pty_carries_checksummed_nmea_at_line_pace() {
        let hat = SimulatedHat::start(&default_scenario()).expect("hat starts");
        let mut tty = std::fs::File::open(hat.tty_path()).expect("open pty slave");
        let start = std::time::Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while start.elapsed() < Duration::from_millis(2600)
            && !got.windows(6).any(|w| w == b"$GPZDA")
        {
            if let Ok(n) = tty.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        let text = String::from_utf8_lossy(&got);
        assert!(text.contains("$GPRMC,"), "{text}");
        // At 9600 baud a ~350-byte burst takes about a third of a second.
        assert_eq!(hat.overruns(), 0);
    }

    #[test]
    fn a_ublox_hat_writes_its_banner_and_tim_tp_after_the_nmea() {
        let text = format!(
            "{DEFAULT_REALTIME_SCENARIO}\n[receiver]\ntiming_clock_hz = 48e6\nclock_offset_ppb = 125.2\ntim_tp = true\n"
        );
        let scenario = Scenario::parse(&text, "m8t").expect("scenario parses");
        let hat = SimulatedHat::start(&scenario).expect("hat starts");
        let mut tty = std::fs::File::open(hat.tty_path()).expect("open pty slave");
        let start = std::time::Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while start.elapsed() < Duration::from_millis(2600)
            && skytime_gnss::ubx::frames(&got).is_empty()
        {
            if let Ok(n) = tty.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.contains("$GPTXT,01,01,02,HW UBX-M8030 00080000*"),
            "{text}"
        );
        let frames = skytime_gnss::ubx::frames(&got);
        assert_eq!(frames.len(), 1, "one TIM-TP per second");
        let Some(skytime_gnss::ubx::messages::Message::TimePulse(tp)) =
            skytime_gnss::ubx::messages::decode(&frames[0])
        else {
            panic!("a TIM-TP");
        };
        assert!(tp.q_err_valid && tp.q_err_ps.abs() <= 10_500, "{tp:?}");
        let zda = text.find("$GPZDA").expect("ZDA before the TIM-TP");
        assert!(got.windows(2).position(|w| w == [0xB5, 0x62]) > Some(zda));
    }
}
