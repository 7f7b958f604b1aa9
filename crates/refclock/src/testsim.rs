//! A tiny simulated world for the unit tests: an oscillator-driven clock that
//! the discipline steers, a PPS line and a receiver, in simulated time. (The
//! full simulator, with scenario files, is `crates/sim`.)
#![allow(
    dead_code,
    reason = "each test module uses part of the world; an unused helper in one build is expected"
)]

use crate::{Refclock, RefclockConfig, Status};
use chrono::Timelike;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use skytime_core::{
    Clock, ClockError, Epoch, FixMode, FreeRunning, KernelLeapState, PpsEdge,
    SimClock as CoreSimClock, SteadyOscillator, SyncReport,
};
use skytime_timebase::{Arrival, LeapChange, MonoNanos, TimeSource, UnixNanos, UtcSecond};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The unit tests' clock: `skytime-core`'s simulated clock (the one the
/// simulator and the simulated hat use, kernel leap behaviour included) on a
/// steady oscillator, addressed in absolute true time. Clones share one clock.
#[derive(Clone, Debug)]
pub struct SimClock {
    inner: CoreSimClock<SteadyOscillator>,
    /// True Unix time of the clock's start, ns.
    start_ns: i64,
    /// Set to make every frequency change fail (no CAP_SYS_TIME, say).
    refuse_frequency: Arc<AtomicBool>,
}

impl SimClock {
    pub fn new(true_ns: i64, offset_ns: f64, osc_ppb: f64) -> Self {
        SimClock {
            inner: CoreSimClock::new(
                SteadyOscillator::new(osc_ppb),
                UnixNanos(true_ns),
                offset_ns,
            ),
            start_ns: true_ns,
            refuse_frequency: Arc::default(),
        }
    }
    /// Runs true time forward to `true_ns` (Unix ns), applying frequency and
    /// the kernel's leap-second behaviour.
    pub fn advance_to(&self, true_ns: i64) {
        self.inner.advance_to(true_ns - self.start_ns);
    }
    /// Something outside the discipline moves the clock (another program,
    /// a glitch): a real phase jump.
    pub fn disturb(&self, offset_ns: f64) {
        self.inner.disturb(offset_ns);
    }
    /// Local minus true, ns.
    pub fn error_ns(&self) -> f64 {
        self.inner.error_ns(UnixNanos(self.true_ns()))
    }
    /// True time, ns since the Unix epoch.
    pub fn true_ns(&self) -> i64 {
        self.start_ns + self.inner.true_ns()
    }
    pub fn set_osc_ppb(&self, ppb: f64) {
        self.inner.with_oscillator(|o| o.set_freq_ppb(ppb));
    }
    /// From now on every frequency change fails, as the kernel's would
    /// without the capability.
    pub fn refuse_frequency(&self) {
        self.refuse_frequency.store(true, Ordering::Relaxed);
    }
    pub fn osc_ppb(&self) -> f64 {
        self.inner.with_oscillator(|o| o.freq_error_ppb())
    }
    pub fn steps(&self) -> Vec<i64> {
        self.inner.step_offsets_ns()
    }
    /// The leap flag as the discipline left it (the kernel keeps it set
    /// through TIME_WAIT until the discipline clears it).
    pub fn leap(&self) -> LeapChange {
        self.inner.leap_flag()
    }
    pub fn leap_state(&self) -> KernelLeapState {
        self.inner.leap_state()
    }
    pub fn tai_s(&self) -> Option<i32> {
        self.inner.tai_offset_s()
    }
    pub fn last_report(&self) -> (u64, SyncReport) {
        (self.inner.report_count(), self.inner.last_report())
    }
}

impl TimeSource for SimClock {
    fn realtime(&self) -> UnixNanos {
        self.inner.realtime()
    }
    fn monotonic(&self) -> MonoNanos {
        self.inner.monotonic()
    }
}

impl Clock for SimClock {
    fn set_frequency_ppb(&self, ppb: f64) -> Result<MonoNanos, ClockError> {
        if self.refuse_frequency.load(Ordering::Relaxed) {
            return Err(ClockError::PermissionDenied("frequency refused".into()));
        }
        self.inner.set_frequency_ppb(ppb)
    }
    fn frequency_ppb(&self) -> f64 {
        self.inner.frequency_ppb()
    }
    fn step(&self, offset_ns: i64) -> Result<MonoNanos, ClockError> {
        self.inner.step(offset_ns)
    }
    fn set_leap(&self, leap: LeapChange) -> Result<(), ClockError> {
        self.inner.set_leap(leap)
    }
    fn set_tai_offset_s(&self, tai_minus_utc_s: i32) -> Result<(), ClockError> {
        self.inner.set_tai_offset_s(tai_minus_utc_s)
    }
    fn report_sync(&self, report: SyncReport) -> Result<(), ClockError> {
        self.inner.report_sync(report)
    }
}

/// What the simulated hat does, second by second.
#[derive(Clone, Debug)]
pub struct World {
    pub seed: u64,
    pub start_unix_s: i64,
    pub initial_offset_ns: f64,
    pub osc_ppb: f64,
    pub walk_ppb: f64,
    pub pps_jitter_ns: f64,
    pub pps_latency_ns: f64,
    pub nmea_delay_ms: f64,
    pub nmea_jitter_ms: f64,
    /// (from_s, to_s): no pulses.
    pub pps_outages: Vec<(i64, i64)>,
    /// (from_s, to_s): no epochs.
    pub nmea_outages: Vec<(i64, i64)>,
    /// (from_s, to_s): epochs say "no fix".
    pub invalid_fix: Vec<(i64, i64)>,
    /// (from_s, to_s, offset_s): epochs label the wrong second.
    pub wrong_second: Vec<(i64, i64, i64)>,
    /// Extra pulses at these times (s since start, fractional).
    pub spurious: Vec<f64>,
    /// Unix second of the midnight after an inserted leap second.
    pub leap_insert_at: Option<i64>,
    /// Unix second of the midnight after a deleted leap second (23:59:59
    /// skipped).
    pub leap_delete_at: Option<i64>,
    /// How long before the leap the receiver announces it, s.
    pub leap_announce_s: i64,
    /// (from_s, extra_ns): the PPS latency changes for good (a phase jump).
    pub latency_steps: Vec<(i64, f64)>,
    /// (at_s, offset_ns): the clock itself jumps (0.25 s into that second).
    pub clock_jumps: Vec<(i64, f64)>,
    pub tick_ms: i64,
    /// What each edge declares as its own timestamp uncertainty (a PHC
    /// source's mapping bound), ns.
    pub edge_uncertainty_ns: u32,
}

impl Default for World {
    fn default() -> Self {
        World {
            seed: 1,
            start_unix_s: 1_772_323_200, // 2026-03-01T00:00:00Z
            initial_offset_ns: 0.1e9,
            osc_ppb: 10_000.0,
            walk_ppb: 1.0,
            pps_jitter_ns: 0.0,
            pps_latency_ns: 0.0,
            nmea_delay_ms: 350.0,
            nmea_jitter_ms: 50.0,
            pps_outages: vec![],
            nmea_outages: vec![],
            invalid_fix: vec![],
            wrong_second: vec![],
            spurious: vec![],
            leap_insert_at: None,
            leap_delete_at: None,
            leap_announce_s: 6 * 3600,
            latency_steps: vec![],
            clock_jumps: vec![],
            tick_ms: 1000,
            edge_uncertainty_ns: 0,
        }
    }
}

/// One observation per simulated second, taken mid-second.
#[derive(Clone, Debug)]
pub struct Obs {
    pub t_s: i64,
    pub error_ns: f64,
    pub status: Status,
}

enum Ev {
    Jump(f64),
    Edge(u32),
    Epoch { second: i64 },
    Tick,
    Observe(i64),
}

/// Nanoseconds as a whole number (the fraction dropped, as `as` does).
#[expect(
    clippy::cast_possible_truncation,
    reason = "the test world's delays and times are hours at most, far inside i64 ns"
)]
fn whole_ns(ns: f64) -> i64 {
    ns as i64
}

fn in_any(v: &[(i64, i64)], s: i64) -> bool {
    v.iter().any(|&(a, b)| s >= a && s < b)
}

/// The label a receiver gives to the true Unix second `s` (inserting
/// 23:59:60 before `leap_at`, or skipping 23:59:59 before `delete_at`).
/// True seconds run on uniformly; with an insert, true second `at` is
/// 23:59:60 and every later one is labelled one Unix second less; with a
/// delete, true second `at - 1` is labelled `at` and every later one a second more.
fn label_for(s: i64, leap_at: Option<i64>, delete_at: Option<i64>) -> Option<UtcSecond> {
    if let Some(at) = delete_at
        && s >= at - 1
    {
        return UtcSecond::from_unix_secs(s + 1);
    }
    match leap_at {
        Some(at) if s == at => {
            let dt = chrono::DateTime::from_timestamp(s - 1, 0)?.naive_utc();
            let (hour, minute) = (
                u8::try_from(dt.hour()).ok()?,
                u8::try_from(dt.minute()).ok()?,
            );
            UtcSecond::new(dt.date(), hour, minute, 60)
        }
        Some(at) if s > at => UtcSecond::from_unix_secs(s - 1),
        _ => UtcSecond::from_unix_secs(s),
    }
}

impl World {
    /// Runs `duration_s` seconds, calling `each` after every observation.
    pub fn run_with(
        &self,
        config: &RefclockConfig,
        drift: Option<crate::DriftRecord>,
        duration_s: i64,
        mut each: impl FnMut(&Obs, &mut Refclock<SimClock>),
    ) -> (Vec<Obs>, Refclock<SimClock>) {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let start = self.start_unix_s * 1_000_000_000;
        let clock = SimClock::new(start - 500_000_000, self.initial_offset_ns, self.osc_ppb);
        let mut rc = Refclock::new(config, clock.clone(), drift);
        let pps_j = Normal::new(0.0, self.pps_jitter_ns.max(1e-9)).expect("normal");
        let nmea_j = Normal::new(0.0, self.nmea_jitter_ms.max(1e-9) * 1e6).expect("normal");
        let walk = Normal::new(0.0, self.walk_ppb.max(1e-12)).expect("normal");
        let mut events: Vec<(i64, Ev)> = Vec::new();
        let mut seq = 0u32;
        for k in 0..duration_s {
            // True time of the leap-inserted second sequence: with an inserted
            // second, true Unix-like time has one more second than labels.
            let t = start + k * 1_000_000_000;
            if !in_any(&self.pps_outages, k) {
                seq += 1;
                let extra: f64 = self
                    .latency_steps
                    .iter()
                    .filter(|l| k >= l.0)
                    .map(|l| l.1)
                    .sum();
                let d = whole_ns((self.pps_latency_ns + extra + pps_j.sample(&mut rng)).max(0.0));
                events.push((t + d, Ev::Edge(seq)));
            }
            if !in_any(&self.nmea_outages, k) {
                let d = whole_ns((self.nmea_delay_ms * 1e6 + nmea_j.sample(&mut rng)).max(0.0));
                events.push((t + d, Ev::Epoch { second: k }));
            }
            let tick = self.tick_ms.max(1) * 1_000_000;
            let mut x = 0;
            while x < 1_000_000_000 {
                events.push((t + x + 1, Ev::Tick));
                x += tick;
            }
            events.push((t + 500_000_000, Ev::Observe(k)));
        }
        for &(at, off) in &self.clock_jumps {
            events.push((start + at * 1_000_000_000 + 250_000_000, Ev::Jump(off)));
        }
        for &s in &self.spurious {
            events.push((start + whole_ns(s * 1e9), Ev::Edge(0)));
        }
        events.sort_by_key(|e| e.0);
        let mut obs = Vec::new();
        let mut last_walk_s = 0i64;
        for (t, ev) in events {
            let k_now = (t - start).div_euclid(1_000_000_000);
            while last_walk_s < k_now {
                clock.set_osc_ppb(clock.osc_ppb() + walk.sample(&mut rng));
                last_walk_s += 1;
            }
            clock.advance_to(t);
            match ev {
                Ev::Jump(off) => clock.disturb(off),
                Ev::Edge(s) => {
                    let edge = PpsEdge {
                        sequence: s,
                        timestamp: clock.realtime(),
                        received: clock.monotonic(),
                        uncertainty_ns: self.edge_uncertainty_ns,
                    };
                    rc.on_pps(&edge);
                }
                Ev::Epoch { second } => {
                    // True Unix second of the edge this epoch labels. With a
                    // leap inserted, true seconds after it are labelled one less.
                    let true_s = self.start_unix_s + second;
                    let wrong = self
                        .wrong_second
                        .iter()
                        .find(|w| second >= w.0 && second < w.1)
                        .map(|w| w.2)
                        .unwrap_or(0);
                    let Some(utc) =
                        label_for(true_s + wrong, self.leap_insert_at, self.leap_delete_at)
                    else {
                        continue;
                    };
                    let announced =
                        |at: i64, until: i64| true_s < until && true_s >= at - self.leap_announce_s;
                    let leap = match (self.leap_insert_at, self.leap_delete_at) {
                        (Some(at), _) if announced(at, at) => LeapChange::Insert,
                        (_, Some(at)) if announced(at, at - 1) => LeapChange::Delete,
                        _ => LeapChange::None,
                    };
                    let a = clock.arrival();
                    let first = Arrival {
                        monotonic: a.monotonic.add_nanos(-60_000_000),
                        realtime: a.realtime.add_nanos(-60_000_000),
                    };
                    let valid = !in_any(&self.invalid_fix, second);
                    let epoch = Epoch {
                        utc,
                        millis: 0,
                        valid,
                        fix_mode: if valid {
                            FixMode::Fix3D
                        } else {
                            FixMode::NoFix
                        },
                        sats_used: Some(if valid { 9 } else { 0 }),
                        sats_visible: Some(12),
                        hdop: Some(0.9),
                        leap,
                        talker: "GP".into(),
                        sentences: vec!["RMC".into(), "GGA".into()],
                        satellites: vec![],
                        first_byte: first,
                        last_byte: a,
                    };
                    rc.on_epoch(&epoch);
                }
                Ev::Tick => rc.on_tick(clock.arrival()),
                Ev::Observe(k) => {
                    let o = Obs {
                        t_s: k,
                        error_ns: clock.error_ns(),
                        status: rc.status(),
                    };
                    each(&o, &mut rc);
                    obs.push(o);
                }
            }
        }
        (obs, rc)
    }

    pub fn run(&self, config: &RefclockConfig, duration_s: i64) -> (Vec<Obs>, Refclock<SimClock>) {
        self.run_with(config, None, duration_s, |_, _| {})
    }
}

/// Seconds served as synchronised with |error| beyond the advertised bound.
pub fn served_bad(obs: &[Obs]) -> Vec<i64> {
    obs.iter()
        .filter(|o| {
            o.status.serves_synchronised() && o.error_ns.abs() > o.status.root_dispersion_ns
        })
        .map(|o| o.t_s)
        .collect()
}

/// RMS and max |error| over observations from `from_s` on.
pub fn error_stats(obs: &[Obs], from_s: i64) -> (f64, f64) {
    let v: Vec<f64> = obs
        .iter()
        .filter(|o| o.t_s >= from_s)
        .map(|o| o.error_ns)
        .collect();
    let rms = (v.iter().map(|e| e * e).sum::<f64>() / v.len().max(1) as f64).sqrt();
    let max = v.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    (rms, max)
}

/// The config the unit tests run with: defaults without the host's files.
pub fn test_config() -> RefclockConfig {
    RefclockConfig {
        drift_file: None,
        leap_seconds_file: None,
        ..RefclockConfig::default()
    }
}
