//! The scenario runner: the real receiver parser and the real discipline,
//! driven by a simulated sky, PPS line and oscillator in simulated time.
//!
//! Everything happens in one thread in event order: PPS edges (timestamped by
//! reading the simulated clock at the true instant the kernel would), NMEA
//! bytes (stamped with their arrival on the simulated clock, sentence by
//! sentence at 9600 baud), the idle flush that closes each burst, and a tick
//! once per second at which the disciplined clock is compared with true time.
//! The discipline learns nothing the real box would not know: not the PPS
//! latency, not the NMEA delay, not the oscillator.

use crate::nmea_out::{FixInfo, nmea_burst};
use crate::oscillator::{Oscillator, OscillatorParams};
use crate::receiver_timing::TimingReceiver;
use crate::scenario::{LeapEvent, Scenario};
use crate::sim_clock::SimClock;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, Exp, StandardNormal, StandardUniform};
use serde::Serialize;
use skytime_gnss::ubx::messages::{encode_tim_svin, encode_tim_tp};
use skytime_gnss::{Epoch, EpochAssembler, ParserConfig};
use skytime_pps::PpsEdge;
use skytime_refclock::thermal::persist::ThermalRecord;
use skytime_refclock::{Refclock, RefclockConfig, SensorReading, Status, SyncState};
use skytime_timebase::{LeapChange, NANOS_PER_SEC, TimeSource, UtcSecond};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;

/// Serial line speed of the simulated receiver.
pub const BAUD: u32 = 9600;
/// Nanoseconds one byte takes on the line (start + 8 data + stop bits).
const BYTE_NS: i64 = 10 * NANOS_PER_SEC / BAUD as i64;
/// When the per-second tick and measurement happen, ns into each true second.
const MEASURE_AT_NS: i64 = NANOS_PER_SEC / 2;
/// How long after an edge user space reads it (for `PpsEdge::received`).
const PPS_WAKEUP_NS: i64 = 50_000;
/// |error| under which the clock counts as locked, for `lock_time_s`.
const LOCK_THRESHOLD_NS: f64 = 1_000.0;
/// Seconds the error must stay under the threshold for `lock_time_s`.
const LOCK_HOLD_S: u64 = 60;
/// When the temperature sensor is read, ns into each true second.
const SENSOR_AT_NS: i64 = NANOS_PER_SEC / 4;
/// Leap announcements start this long before the leap.
const LEAP_ANNOUNCE_S: i64 = 12 * 3600;

/// The summary the issue asks for: one JSON object per scenario.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: String,
    /// RMS of (disciplined clock − true time) after warm-up, ns.
    pub rms_offset_ns: f64,
    /// Largest |clock − true time| after warm-up, ns.
    pub max_abs_offset_ns: f64,
    /// First second from which |error| stays under 1 µs for 60 s.
    pub lock_time_s: Option<u64>,
    /// First second at which the box would serve as synchronised.
    pub sync_time_s: Option<u64>,
    /// Seconds served as synchronised while |error| exceeded the advertised root dispersion.
    pub served_bad_s: u64,
    /// Largest |error| while in holdover, ns (None: never in holdover).
    pub holdover_max_abs_offset_ns: Option<f64>,
    /// Clock steps.
    pub steps: u64,
}

/// What else happened in a run, for diagnosis (not part of the issue's JSON).
#[derive(Clone, Debug, Serialize)]
pub struct RunDetails {
    /// Pulses delivered to the refclock (including spurious ones).
    pub edges_sent: u64,
    /// Spurious pulses among them.
    pub spurious_sent: u64,
    /// NMEA bursts written (and flushed by the serial shell).
    pub bursts_sent: u64,
    /// UBX-TIM-TP messages written (duplicates counted, dropped ones not).
    pub tim_tp_sent: u64,
    /// Epochs the real parser produced from them.
    pub epochs_parsed: u64,
    /// Seconds spent in each state (acquiring, locked, holdover, unsynchronised).
    pub seconds_in_state: [u64; 4],
    /// Seconds served as synchronised.
    pub served_s: u64,
    /// The first second served as synchronised with |error| beyond the bound.
    pub first_served_bad_s: Option<u64>,
    /// Epochs the parser labelled 23:59:60.
    pub leap_second_epochs: u64,
    /// Epochs that carried a leap announcement.
    pub leap_announced_epochs: u64,
    /// Leap seconds the simulated kernel applied (−1 per insert, +1 per delete).
    pub kernel_leap_steps_s: i64,
    /// Changes of the clock's leap flag: (second of the run, flag, UTC label then).
    pub leap_flag_changes: Vec<(f64, LeapChange, String)>,
    /// The refclock's status at the end (None if the scenario could not start).
    pub final_status: Option<Status>,
    /// What the box would have kept beside its drift file at the end.
    #[serde(skip)]
    pub thermal_record: Option<ThermalRecord>,
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct ScenarioRun {
    /// The issue's summary.
    pub report: ScenarioReport,
    /// Diagnostics.
    pub details: RunDetails,
}

impl ScenarioRun {
    /// Human-readable diagnostics (what was sent, what the parser and refclock
    /// made of it, where the state machine spent its time), one item per line.
    pub fn diagnostics(&self) -> Vec<String> {
        let d = &self.details;
        let mut lines = vec![
            format!(
                "sent: {} pulses ({} spurious), {} NMEA bursts; parsed {} epochs ({} labelled 23:59:60, {} announcing a leap)",
                d.edges_sent,
                d.spurious_sent,
                d.bursts_sent,
                d.epochs_parsed,
                d.leap_second_epochs,
                d.leap_announced_epochs
            ),
            format!(
                "seconds acquiring {}, locked {}, holdover {}, unsynchronised {}; served as synchronised {} (first bad second: {}); kernel leap steps {} s",
                d.seconds_in_state[0],
                d.seconds_in_state[1],
                d.seconds_in_state[2],
                d.seconds_in_state[3],
                d.served_s,
                d.first_served_bad_s
                    .map_or("none".to_string(), |s| s.to_string()),
                d.kernel_leap_steps_s
            ),
        ];
        if !d.leap_flag_changes.is_empty() {
            let changes: Vec<String> = d
                .leap_flag_changes
                .iter()
                .map(|(t, flag, label)| format!("{flag:?} at {t:.1} s ({label})"))
                .collect();
            lines.push(format!("clock leap flag: {}", changes.join(", ")));
        }
        if let Some(q) = d.final_status.as_ref().and_then(|st| st.qerr.as_ref()) {
            lines.push(format!(
                "qErr correction {}: {} TIM-TP sent, {} received; {} edges corrected, skipped {} (no message), {} (invalid), {} (uncertain)",
                if q.enabled { "on" } else { "off" },
                d.tim_tp_sent,
                q.messages,
                q.applied,
                q.skipped_no_message,
                q.skipped_invalid,
                q.skipped_uncertain
            ));
        }
        if let Some(st) = &d.final_status {
            lines.push(format!(
                "final: {} ({}), stratum {}, root dispersion {:.0} ns (+{:.3} ns/s), frequency {:.4} ppm fast, jitter {:.0} ns",
                st.state.as_str(),
                st.state_reason,
                st.stratum,
                st.root_dispersion_ns,
                st.dispersion_rate_ns_per_s,
                // chrony's sign: positive = the oscillator runs fast.
                -st.frequency_ppm,
                st.jitter_ns
            ));
            let rejected: Vec<String> = st
                .rejections
                .iter()
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(reason, n)| format!("{n} {}", reason.explain()))
                .collect();
            if !rejected.is_empty() {
                lines.push(format!("rejected: {}", rejected.join("; ")));
            }
        }
        lines
    }
}

#[derive(Debug)]
enum Event {
    /// A PPS edge; the kernel stamps it now.
    Edge { sequence: u32, spurious: bool },
    /// Bytes whose last byte arrives now.
    Bytes(Vec<u8>),
    /// The line has been quiet for the idle gap: the serial shell flushes.
    Flush,
    /// Once per second: tick the refclock, then measure.
    Measure { second: u64 },
    /// The temperature sensor is read.
    Temperature,
}

/// Events ordered by true time, then by insertion order.
struct Queue {
    heap: BinaryHeap<Reverse<(i64, u64)>>,
    events: std::collections::HashMap<u64, Event>,
    next_id: u64,
}

impl Queue {
    fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            events: std::collections::HashMap::new(),
            next_id: 0,
        }
    }
    fn push(&mut self, at_ns: i64, event: Event) {
        self.heap.push(Reverse((at_ns, self.next_id)));
        self.events.insert(self.next_id, event);
        self.next_id += 1;
    }
    fn pop_before(&mut self, limit_ns: i64) -> Option<(i64, Event)> {
        let Reverse((at, id)) = *self.heap.peek()?;
        if at >= limit_ns {
            return None;
        }
        self.heap.pop();
        self.events.remove(&id).map(|e| (at, e))
    }
}

/// Independent random streams, so that changing one noise source's settings
/// leaves the others' draws alone.
fn rng(seed: u64, stream: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The refclock settings a simulation runs with: the defaults, minus
/// anything that would read this host's files.
pub fn simulation_refclock_config() -> RefclockConfig {
    RefclockConfig {
        drift_file: None,
        leap_seconds_file: None,
        ..RefclockConfig::default()
    }
}

/// The refclock settings a scenario runs with by default: the simulation's,
/// with the temperature sensor on when the scenario's `[sensor]` is enabled.
pub fn scenario_refclock_config(scenario: &Scenario) -> RefclockConfig {
    RefclockConfig {
        temperature_sensor: scenario
            .sensor
            .enabled
            .then(|| std::path::PathBuf::from("simulated-sensor")),
        temperature_interval_ms: scenario.sensor.interval_s * 1000,
        ..simulation_refclock_config()
    }
}

/// Runs a scenario and returns the issue's summary.
pub fn run_scenario(scenario: &Scenario) -> ScenarioReport {
    let mut sink = std::io::sink();
    // Writing to io::sink cannot fail.
    run_scenario_traced(scenario, &mut sink, false)
        .map_or_else(|_| invalid_scenario_report(scenario), |r| r.report)
}

fn invalid_scenario_report(scenario: &Scenario) -> ScenarioReport {
    ScenarioReport {
        name: scenario.name.clone(),
        rms_offset_ns: f64::NAN,
        max_abs_offset_ns: f64::NAN,
        lock_time_s: None,
        sync_time_s: None,
        served_bad_s: 0,
        holdover_max_abs_offset_ns: None,
        steps: 0,
    }
}

/// The header of the per-second trace.
pub const TRACE_HEADER: &str = "t_s,utc,error_ns,state,serving,root_dispersion_ns,status_offset_ns,frequency_fast_ppm,natural_freq_ppb,temperature_k,pps_sent,nmea_sent,sensor_c,sensor_health,coefficient_ppm_per_k,coefficient_sigma_ppm_per_k";

/// One per-second comparison of the disciplined clock with true time.
#[derive(Copy, Clone, Debug, PartialEq)]
struct Measurement {
    /// Seconds since the start of the run.
    second: u64,
    /// Disciplined clock minus true time, ns.
    err_ns: f64,
    /// Whether the box serves as synchronised now.
    serving: bool,
    /// The root dispersion it advertises now, ns.
    bound_ns: f64,
    /// State machine position now.
    state: SyncState,
}

/// The issue's statistics, accumulated one [`Measurement`] at a time.
#[derive(Debug, Default)]
struct Stats {
    warmup_s: u64,
    sum_sq: f64,
    n: u64,
    max_abs: f64,
    lock_time: Option<u64>,
    streak_start: Option<u64>,
    sync_time: Option<u64>,
    served_bad: u64,
    first_served_bad: Option<u64>,
    served: u64,
    holdover_max: Option<f64>,
    seconds_in_state: [u64; 4],
}

impl Stats {
    fn new(warmup_s: u64) -> Self {
        Self {
            warmup_s,
            ..Self::default()
        }
    }

    fn record(&mut self, m: &Measurement) {
        let abs = m.err_ns.abs();
        if m.serving {
            self.served += 1;
            self.sync_time.get_or_insert(m.second);
            // NaN counts as bad: an error bound that is not a number is no bound.
            if m.err_ns.is_nan() || m.bound_ns.is_nan() || abs > m.bound_ns {
                self.served_bad += 1;
                self.first_served_bad.get_or_insert(m.second);
            }
        }
        let state_idx = match m.state {
            SyncState::Acquiring => 0,
            SyncState::Locked => 1,
            SyncState::Holdover => 2,
            SyncState::Unsynchronised => 3,
        };
        self.seconds_in_state[state_idx] += 1;
        if m.state == SyncState::Holdover {
            let h = self.holdover_max.get_or_insert(0.0);
            *h = h.max(abs);
        }
        if abs < LOCK_THRESHOLD_NS {
            let start = *self.streak_start.get_or_insert(m.second);
            if self.lock_time.is_none() && m.second + 1 - start >= LOCK_HOLD_S {
                self.lock_time = Some(start);
            }
        } else {
            self.streak_start = None;
        }
        if m.second >= self.warmup_s {
            self.sum_sq += m.err_ns * m.err_ns;
            self.n += 1;
            self.max_abs = self.max_abs.max(abs);
        }
    }

    fn report(&self, name: &str, steps: u64) -> ScenarioReport {
        let round1 = |v: f64| (v * 10.0).round() / 10.0;
        ScenarioReport {
            name: name.to_string(),
            rms_offset_ns: round1(if self.n > 0 {
                (self.sum_sq / self.n as f64).sqrt()
            } else {
                f64::NAN
            }),
            max_abs_offset_ns: round1(self.max_abs),
            lock_time_s: self.lock_time,
            sync_time_s: self.sync_time,
            served_bad_s: self.served_bad,
            holdover_max_abs_offset_ns: self.holdover_max.map(round1),
            steps,
        }
    }
}

/// One simulation in progress: the world (labels, noise streams, event
/// queue) and the real code under test (parser and refclock).
struct Sim<'a> {
    s: &'a Scenario,
    leap: Option<LeapEvent>,
    /// `labels[k]`: the UTC second that true second k is, leap seconds included.
    labels: Vec<UtcSecond>,
    clock: SimClock,
    refclock: Refclock<SimClock>,
    assembler: EpochAssembler,
    idle_gap_ns: i64,
    pps_rng: Xoshiro256PlusPlus,
    nmea_rng: Xoshiro256PlusPlus,
    spurious_rng: Xoshiro256PlusPlus,
    spurious_gap: Option<Exp<f64>>,
    next_spurious_ns: i64,
    queue: Queue,
    sequence: u32,
    burst_end_prev_ns: i64,
    epochs: Vec<Epoch>,
    details: RunDetails,
    stats: Stats,
    pps_this_s: u32,
    chunks_this_s: u32,
    sensor: Option<SensorSim>,
    /// The receiver's time pulse: its quantisation and TIM-TP.
    timing: TimingReceiver,
    /// Drop, duplicate and delay draws for TIM-TP.
    tim_tp_rng: Xoshiro256PlusPlus,
    /// A TIM-TP held back to go out after the pulse it describes.
    late_tim_tp: Vec<u8>,
}

/// The simulated temperature sensor: the box's temperature through a
/// first-order lag, plus noise and quantisation, and the scenario's faults.
struct SensorSim {
    rng: Xoshiro256PlusPlus,
    lagged_k: f64,
    last_s: f64,
    last_c: Option<f64>,
}

impl<'a> Sim<'a> {
    fn new(s: &'a Scenario, settings: &SimSettings) -> Option<Self> {
        let config = &settings.refclock;
        let start_unix = s.start_unix_nanos()?;
        let first = UtcSecond::from_unix_secs(start_unix.secs())?;
        let leap = s.leap_event();
        let leap_on = |label: &UtcSecond| match leap {
            Some(ev) if ev.day == label.date() => ev.change,
            _ => LeapChange::None,
        };
        let mut labels = Vec::with_capacity(s.duration_s as usize + 2);
        labels.push(first);
        for k in 1..(s.duration_s as usize + 2) {
            let prev = labels[k - 1];
            labels.push(prev.next(leap_on(&prev)));
        }

        let osc = Oscillator::new(&OscillatorParams::from(&s.clock), s.seed);
        let clock = SimClock::new(
            osc,
            start_unix,
            s.clock.initial_offset_s * NANOS_PER_SEC as f64,
        );
        let refclock = Refclock::new(config, clock.clone(), None);
        let sensor = config.temperature_sensor.is_some().then(|| SensorSim {
            rng: rng(s.seed, 4),
            lagged_k: 0.0,
            last_s: 0.0,
            last_c: None,
        });
        let parser_config = &settings.gnss;
        // Scenario dates may predate the build (a 2016 leap second): unless
        // the configuration names one, put the GPS week-rollover pivot just
        // before the start, as a replay does.
        let pivot = parser_config.rollover_pivot.unwrap_or_else(|| {
            first
                .date()
                .checked_sub_days(chrono::Days::new(30))
                .unwrap_or(first.date())
        });
        let assembler = EpochAssembler::with_pivot(parser_config, pivot);

        let mut spurious_rng = rng(s.seed, 3);
        let rate_per_s = s.pps.spurious_per_hour / 3600.0;
        let spurious_gap = if rate_per_s > 0.0 {
            Exp::new(rate_per_s).ok()
        } else {
            None
        };
        let next_spurious_ns = match &spurious_gap {
            Some(exp) => (exp.sample(&mut spurious_rng) * NANOS_PER_SEC as f64) as i64,
            None => i64::MAX,
        };
        let details = empty_details();
        Some(Self {
            s,
            leap,
            labels,
            clock,
            refclock,
            assembler,
            idle_gap_ns: i64::from(parser_config.idle_gap_ms) * 1_000_000,
            pps_rng: rng(s.seed, 1),
            nmea_rng: rng(s.seed, 2),
            spurious_rng,
            spurious_gap,
            next_spurious_ns,
            queue: Queue::new(),
            sequence: 0,
            burst_end_prev_ns: i64::MIN,
            epochs: Vec::new(),
            details,
            stats: Stats::new(s.warmup_s),
            pps_this_s: 0,
            chunks_this_s: 0,
            sensor,
            timing: TimingReceiver::new(&s.receiver, rng(s.seed, 5)),
            tim_tp_rng: rng(s.seed, 6),
            late_tim_tp: Vec::new(),
        })
    }

    /// Reads the simulated sensor at true time `t_s` and hands the reading
    /// to the refclock (or nothing, while the scenario says it is missing).
    fn read_sensor(&mut self, t_s: f64) {
        let cfg = &self.s.sensor;
        let box_k = self
            .clock
            .with_oscillator(|o| o.sensed_temperature_delta_k());
        let Some(sn) = self.sensor.as_mut() else {
            return;
        };
        let noise: f64 = StandardNormal.sample(&mut sn.rng);
        let dt = (t_s - sn.last_s).max(0.0);
        sn.last_s = t_s;
        sn.lagged_k += if cfg.lag_s > 0.0 {
            (box_k - sn.lagged_k) * (1.0 - (-dt / cfg.lag_s).exp())
        } else {
            box_k - sn.lagged_k
        };
        if cfg.missing.iter().any(|w| w.contains(t_s)) {
            return;
        }
        let reading = if cfg.garbage.iter().any(|w| w.contains(t_s)) {
            // Alternate the kinds of garbage a driver can return.
            match (t_s as i64).rem_euclid(3) {
                0 => SensorReading::Unreadable("simulated: not a number".into()),
                1 => SensorReading::Celsius(-273.0),
                _ => SensorReading::Celsius(f64::NAN),
            }
        } else if let (true, Some(v)) = (cfg.freeze.iter().any(|w| w.contains(t_s)), sn.last_c) {
            SensorReading::Celsius(v)
        } else {
            let jump: f64 = cfg
                .jump
                .iter()
                .filter(|j| t_s >= j.from_s && t_s < j.to_s)
                .map(|j| j.offset_k)
                .sum();
            let mut v = cfg.base_c + sn.lagged_k + cfg.noise_k * noise + jump;
            if cfg.quantisation_k > 0.0 {
                v = (v / cfg.quantisation_k).round() * cfg.quantisation_k;
            }
            sn.last_c = Some(v);
            SensorReading::Celsius(v)
        };
        self.refclock
            .on_temperature(self.clock.monotonic(), &reading);
    }

    /// Queues everything that happens because of true second `k`: its pulse,
    /// line noise, and the receiver's burst that labels it.
    fn schedule_second(&mut self, k: u64) {
        let s = self.s;
        let t0 = k as i64 * NANOS_PER_SEC;
        let tk = k as f64;
        if self.sensor.is_some() && k.is_multiple_of(s.sensor.interval_s.max(1)) {
            self.queue.push(t0 + SENSOR_AT_NS, Event::Temperature);
        }
        // Draw every random number whether or not it is used, so that an
        // outage does not shift the noise of the seconds after it.
        let pps_z: f64 = StandardNormal.sample(&mut self.pps_rng);
        let nmea_z: f64 = StandardNormal.sample(&mut self.nmea_rng);
        // This second's pulse leaves on the receiver's tick nearest the true second.
        let pulse = self.timing.advance();
        let mut uniform = || -> f64 { StandardUniform.sample(&mut self.tim_tp_rng) };
        let (drop_u, duplicate_u, late_u) = (uniform(), uniform(), uniform());

        if !s.pps.outages.iter().any(|w| w.contains(tk)) {
            let at = t0
                + (pulse.emitted_offset_ns + s.pps.latency_ns + s.pps.jitter_ns * pps_z).round()
                    as i64;
            self.sequence = self.sequence.wrapping_add(1);
            let sequence = self.sequence;
            self.queue.push(
                at,
                Event::Edge {
                    sequence,
                    spurious: false,
                },
            );
        }
        if let Some(exp) = self.spurious_gap {
            while self.next_spurious_ns < t0 + NANOS_PER_SEC {
                self.sequence = self.sequence.wrapping_add(1);
                let sequence = self.sequence;
                let at = self.next_spurious_ns.max(t0) + s.pps.latency_ns.round() as i64;
                self.queue.push(
                    at,
                    Event::Edge {
                        sequence,
                        spurious: true,
                    },
                );
                let gap_s: f64 = exp.sample(&mut self.spurious_rng);
                self.next_spurious_ns += ((gap_s * NANOS_PER_SEC as f64) as i64).max(1);
            }
        }

        if s.nmea.outages.iter().any(|w| w.contains(tk)) {
            return;
        }
        let true_label = self.labels[k as usize];
        let shift_s = s
            .nmea
            .wrong_second
            .iter()
            .find(|w| tk >= w.from_s && tk < w.to_s)
            .map_or(0, |w| w.offset_s);
        // Rebuilt only when shifted: POSIX seconds cannot say 23:59:60.
        let shifted = |label: UtcSecond| match shift_s {
            0 => label,
            _ => UtcSecond::from_unix_secs(label.unix_secs() + shift_s).unwrap_or(label),
        };
        let shown = shifted(true_label);
        let fix = if s.nmea.invalid_fix.iter().any(|w| w.contains(tk)) {
            FixInfo::none()
        } else {
            FixInfo::good()
        };
        let announce = match self.leap {
            Some(ev) => {
                let to_go = ev.midnight_unix_secs() - true_label.unix_secs();
                let before = to_go > 0 && to_go <= LEAP_ANNOUNCE_S;
                if before || (to_go == 1 && true_label.is_leap_second()) {
                    ev.change
                } else {
                    LeapChange::None
                }
            }
            None => LeapChange::None,
        };
        let mut bytes = nmea_burst(shown, &fix, announce);
        // What a timing receiver adds after its NMEA: last second's late
        // TIM-TP, this second's TIM-TP for the next pulse, survey-in progress.
        bytes.append(&mut self.late_tim_tp);
        if s.receiver.tim_tp {
            let next_label = shifted(self.labels[k as usize + 1]);
            let frame = encode_tim_tp(&TimingReceiver::tim_tp(next_label, self.timing.upcoming()));
            let r = &s.receiver;
            if drop_u >= r.tim_tp_drop_probability {
                let copies = if duplicate_u < r.tim_tp_duplicate_probability {
                    2
                } else {
                    1
                };
                let out = if late_u < r.tim_tp_late_probability {
                    &mut self.late_tim_tp
                } else {
                    &mut bytes
                };
                for _ in 0..copies {
                    out.extend_from_slice(&frame);
                }
            }
        }
        if let Some(progress) = self.timing.survey_in(k) {
            bytes.extend_from_slice(&encode_tim_svin(&progress));
        }
        let delay_ms = (s.nmea.delay_ms + s.nmea.jitter_ms * nmea_z).clamp(0.0, 999.0);
        let duration_ns = bytes.len() as i64 * BYTE_NS;
        let mut end = t0 + (delay_ms * 1e6).round() as i64;
        if end - duration_ns < self.burst_end_prev_ns {
            // The line is still busy with the previous burst: this one goes out after it.
            end = self.burst_end_prev_ns + duration_ns;
        }
        self.burst_end_prev_ns = end;
        let mut at = end - duration_ns;
        for chunk in split_chunks(&bytes) {
            at += chunk.len() as i64 * BYTE_NS;
            self.queue.push(at, Event::Bytes(chunk.to_vec()));
        }
        self.queue
            .push(end + self.idle_gap_ns + 1_000_000, Event::Flush);
    }

    fn deliver_epochs(&mut self) {
        for e in self.epochs.drain(..) {
            self.details.epochs_parsed += 1;
            self.details.leap_second_epochs += u64::from(e.utc.is_leap_second());
            self.details.leap_announced_epochs += u64::from(e.leap != LeapChange::None);
            self.refclock.on_epoch(&e);
        }
    }

    /// Processes every queued event before true time `limit_ns`.
    fn run_until(
        &mut self,
        limit_ns: i64,
        out: &mut dyn Write,
        trace: bool,
    ) -> std::io::Result<()> {
        while let Some((at, event)) = self.queue.pop_before(limit_ns) {
            self.clock.advance_to(at);
            match event {
                Event::Edge { sequence, spurious } => {
                    self.pps_this_s += 1;
                    self.details.edges_sent += 1;
                    self.details.spurious_sent += u64::from(spurious);
                    let edge = PpsEdge {
                        sequence,
                        timestamp: self.clock.realtime(),
                        received: self.clock.monotonic().add_nanos(PPS_WAKEUP_NS),
                        uncertainty_ns: 0,
                    };
                    self.refclock.on_pps(&edge);
                }
                Event::Bytes(bytes) => {
                    self.chunks_this_s += 1;
                    self.details.tim_tp_sent += u64::from(is_tim_tp(&bytes));
                    self.assembler
                        .push(&bytes, self.clock.arrival(), &mut self.epochs);
                    self.deliver_epochs();
                    for report in self.assembler.take_reports() {
                        self.refclock.on_receiver_report(&report);
                    }
                }
                Event::Flush => {
                    self.details.bursts_sent += 1;
                    self.assembler
                        .flush_idle(self.clock.arrival(), &mut self.epochs);
                    self.deliver_epochs();
                }
                Event::Measure { second } => self.measure(second, out, trace)?,
                Event::Temperature => self.read_sensor(at as f64 / NANOS_PER_SEC as f64),
            }
        }
        Ok(())
    }

    /// Ticks the refclock and compares the disciplined clock with true time.
    fn measure(&mut self, second: u64, out: &mut dyn Write, trace: bool) -> std::io::Result<()> {
        let now = self.clock.arrival();
        self.refclock.on_tick(now);
        let status = self.refclock.status();
        let true_now = self.labels[second as usize]
            .unix_nanos()
            .add_nanos(MEASURE_AT_NS);
        let err = self.clock.error_ns(true_now);
        let serving = status.serves_synchronised();
        // The bound a client would compute from what is served now.
        let elapsed_s = (now.realtime.nanos_since(status.as_of) as f64 / 1e9).max(0.0);
        let bound = status.root_dispersion_ns + status.dispersion_rate_ns_per_s * elapsed_s;
        self.stats.record(&Measurement {
            second,
            err_ns: err,
            serving,
            bound_ns: bound,
            state: status.state,
        });
        if trace {
            let (sensor_c, health, coeff, sigma) = match &status.thermal {
                Some(t) => (
                    t.reading_c.map_or(String::new(), |c| format!("{c:.3}")),
                    t.sensor.as_str(),
                    format!("{:.5}", t.coefficient_ppm_per_k),
                    format!("{:.5}", t.coefficient_sigma_ppm_per_k),
                ),
                None => (String::new(), "", String::new(), String::new()),
            };
            writeln!(
                out,
                "{second},{},{err:.1},{},{},{bound:.1},{:.1},{:.6},{:.3},{:.3},{},{},{sensor_c},{health},{coeff},{sigma}",
                self.labels[second as usize],
                status.state.as_str(),
                u8::from(serving),
                status.offset_ns,
                -status.frequency_ppm,
                self.clock.with_oscillator(|o| o.freq_error_ppb()),
                self.clock.with_oscillator(|o| o.temperature_delta_k()),
                self.pps_this_s,
                self.chunks_this_s,
            )?;
        }
        self.pps_this_s = 0;
        self.chunks_this_s = 0;
        Ok(())
    }

    fn finish(mut self) -> ScenarioRun {
        self.details.kernel_leap_steps_s = self.clock.leap_steps_s();
        self.details.leap_flag_changes = self
            .clock
            .leap_requests()
            .into_iter()
            .map(|(ns, flag)| {
                let k = (ns / NANOS_PER_SEC) as usize;
                let label = self.labels.get(k).map_or(String::new(), |l| l.to_string());
                (ns as f64 / 1e9, flag, label)
            })
            .collect();
        self.details.final_status = Some(self.refclock.status());
        self.details.thermal_record = Some(self.refclock.thermal_record());
        let st = &self.stats;
        self.details.served_s = st.served;
        self.details.first_served_bad_s = st.first_served_bad;
        self.details.seconds_in_state = st.seconds_in_state;
        let report = st.report(&self.s.name, self.clock.steps());
        ScenarioRun {
            report,
            details: self.details,
        }
    }
}

/// Runs a scenario; with `trace`, writes one CSV line per simulated second
/// (see [`TRACE_HEADER`]) to `out`. Fails only when writing the trace fails.
pub fn run_scenario_traced(
    scenario: &Scenario,
    out: &mut dyn Write,
    trace: bool,
) -> std::io::Result<ScenarioRun> {
    run_scenario_with_config(
        scenario,
        &scenario_refclock_config(scenario),
        None,
        out,
        trace,
    )
}

/// What a simulated run takes from a configuration file: its `[refclock]`
/// (a temperature sensor, if any, reads the scenario's `[sensor]` profile)
/// and its `[gnss]` parser settings. (`[pps]` names only a device and an
/// edge, which a simulated hat has no use for.)
#[derive(Clone, Debug, Default)]
pub struct SimSettings {
    pub refclock: RefclockConfig,
    /// The receiver parser's settings (`[gnss]`); a rollover pivot left
    /// unset is put just before the scenario's start.
    pub gnss: ParserConfig,
}

/// Runs a scenario with the given refclock settings and the default parser
/// (see [`run_scenario_with_settings`]).
pub fn run_scenario_with_config(
    scenario: &Scenario,
    config: &RefclockConfig,
    restored: Option<&ThermalRecord>,
    out: &mut dyn Write,
    trace: bool,
) -> std::io::Result<ScenarioRun> {
    let settings = SimSettings {
        refclock: config.clone(),
        gnss: ParserConfig::default(),
    };
    run_scenario_with_settings(scenario, &settings, restored, out, trace)
}

/// Runs a scenario with the settings of a configuration file, starting
/// from a thermal record kept by an earlier run if given (a restart);
/// otherwise as [`run_scenario_traced`].
pub fn run_scenario_with_settings(
    scenario: &Scenario,
    settings: &SimSettings,
    restored: Option<&ThermalRecord>,
    out: &mut dyn Write,
    trace: bool,
) -> std::io::Result<ScenarioRun> {
    let Some(mut sim) = Sim::new(scenario, settings) else {
        // Only a Scenario built in code, without validation, gets here.
        return Ok(ScenarioRun {
            report: invalid_scenario_report(scenario),
            details: empty_details(),
        });
    };
    if let Some(r) = restored {
        sim.refclock.restore_thermal(r);
    }
    if trace {
        writeln!(out, "{TRACE_HEADER}")?;
    }
    // A burst that ends early in its second starts in the previous one, so
    // second k+1 is scheduled before the events of second k are processed.
    sim.schedule_second(0);
    for k in 0..scenario.duration_s {
        sim.schedule_second(k + 1);
        sim.queue.push(
            k as i64 * NANOS_PER_SEC + MEASURE_AT_NS,
            Event::Measure { second: k },
        );
        sim.run_until((k as i64 + 1) * NANOS_PER_SEC, out, trace)?;
    }
    Ok(sim.finish())
}

fn empty_details() -> RunDetails {
    RunDetails {
        edges_sent: 0,
        spurious_sent: 0,
        bursts_sent: 0,
        tim_tp_sent: 0,
        epochs_parsed: 0,
        seconds_in_state: [0; 4],
        served_s: 0,
        first_served_bad_s: None,
        leap_second_epochs: 0,
        leap_announced_epochs: 0,
        kernel_leap_steps_s: 0,
        leap_flag_changes: Vec::new(),
        final_status: None,
        thermal_record: None,
    }
}

/// Whether a chunk is a UBX-TIM-TP frame.
fn is_tim_tp(chunk: &[u8]) -> bool {
    chunk.len() >= 4
        && chunk[..2] == [0xB5, 0x62]
        && chunk[2] == skytime_gnss::ubx::CLASS_TIM
        && chunk[3] == skytime_gnss::ubx::ID_TIM_TP
}

/// Splits a burst into what a serial read returns: each NMEA sentence (up to
/// and including its line feed) and each binary UBX frame on its own.
fn split_chunks(bytes: &[u8]) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = if rest.len() >= 6 && rest[0] == 0xB5 && rest[1] == 0x62 {
            let payload = usize::from(u16::from_le_bytes([rest[4], rest[5]]));
            (6 + payload + 2).min(rest.len())
        } else {
            rest.iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1)
        };
        let (chunk, tail) = rest.split_at(len);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(extra: &str) -> Scenario {
        let text = format!(
            "name = \"t\"\nduration_s = 60\nwarmup_s = 10\nseed = 1\nstart_utc = \"2026-03-01T00:00:00Z\"\n{extra}"
        );
        Scenario::parse(&text, "test").unwrap_or_else(|e| panic!("{e}"))
    }

    /// A configuration's `[gnss]` reaches the simulated receiver's parser:
    /// a rollover pivot years after the scenario moves its dates 1024 weeks
    /// on (what a live box with that setting would believe).
    #[test]
    fn the_gnss_settings_reach_the_parser() {
        let s = scenario("");
        let run = |gnss: ParserConfig| {
            let settings = SimSettings {
                refclock: simulation_refclock_config(),
                gnss,
            };
            run_scenario_with_settings(&s, &settings, None, &mut std::io::sink(), false)
                .expect("runs")
                .report
        };
        let plain = run(ParserConfig::default());
        let pivoted = run(ParserConfig {
            rollover_pivot: chrono::NaiveDate::from_ymd_opt(2030, 1, 1),
            ..ParserConfig::default()
        });
        assert!(plain.max_abs_offset_ns < 1e6, "{plain:?}");
        let weeks_1024_ns = 1024.0 * 7.0 * 86_400.0 * 1e9;
        assert!(
            (pivoted.max_abs_offset_ns - weeks_1024_ns).abs() < 1e9,
            "{pivoted:?}"
        );
    }

    /// The scenario's world with the simulation's default settings.
    fn default_sim(s: &Scenario) -> Sim<'_> {
        let settings = SimSettings {
            refclock: simulation_refclock_config(),
            ..SimSettings::default()
        };
        Sim::new(s, &settings).expect("sim")
    }

    fn drain(sim: &mut Sim<'_>) -> Vec<(i64, Event)> {
        let mut v = Vec::new();
        while let Some(e) = sim.queue.pop_before(i64::MAX) {
            v.push(e);
        }
        v
    }

    #[test]
    fn chunks_split_sentences_and_ubx_frames() {
        let bytes = nmea_burst(
            UtcSecond::from_unix_secs(1_483_228_000).expect("label"),
            &FixInfo::good(),
            LeapChange::Insert,
        );
        let chunks = split_chunks(&bytes);
        assert_eq!(chunks[0].len(), 32);
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), bytes.len());
        assert!(
            chunks[1..]
                .iter()
                .all(|c| c.starts_with(b"$") && c.ends_with(b"\r\n"))
        );
    }

    #[test]
    fn pulse_and_burst_happen_when_the_scenario_says() {
        let s = scenario("[pps]\nlatency_ns = 3000\n[nmea]\ndelay_ms = 400\n");
        let mut sim = default_sim(&s);
        sim.schedule_second(5);
        let events = drain(&mut sim);
        let t5 = 5 * NANOS_PER_SEC;
        let (edge_at, _) = events
            .iter()
            .find(|(_, e)| matches!(e, Event::Edge { .. }))
            .expect("edge");
        assert_eq!(*edge_at, t5 + 3000);
        let bytes: Vec<&(i64, Event)> = events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Bytes(_)))
            .collect();
        let total: usize = bytes
            .iter()
            .map(|(_, e)| match e {
                Event::Bytes(b) => b.len(),
                _ => 0,
            })
            .sum();
        let end = t5 + 400_000_000;
        assert_eq!(
            bytes.last().expect("bytes").0,
            end,
            "burst ends delay_ms into its second"
        );
        let first_len = match &bytes[0].1 {
            Event::Bytes(b) => b.len(),
            _ => 0,
        };
        // 9600 baud, 10 bits a byte: the first chunk's last byte arrives after its own bytes.
        assert_eq!(
            bytes[0].0,
            end - total as i64 * BYTE_NS + first_len as i64 * BYTE_NS
        );
        let (flush_at, _) = events
            .iter()
            .find(|(_, e)| matches!(e, Event::Flush))
            .expect("flush");
        assert_eq!(*flush_at, end + sim.idle_gap_ns + 1_000_000);
    }

    #[test]
    fn a_burst_never_overlaps_the_previous_one() {
        // 900 ms late then (jitter) early: the line is serial, so the second burst waits.
        let s = scenario("[nmea]\ndelay_ms = 990\n");
        let mut sim = default_sim(&s);
        sim.schedule_second(0);
        let prev_end = sim.burst_end_prev_ns;
        let s2 = scenario("[nmea]\ndelay_ms = 0\n");
        sim.s = &s2;
        sim.schedule_second(1);
        let events = drain(&mut sim);
        let first_of_second = events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Bytes(_)))
            .map(|(t, _)| *t)
            .find(|t| *t > prev_end)
            .expect("second burst");
        assert!(first_of_second > prev_end);
        assert!(
            sim.burst_end_prev_ns > NANOS_PER_SEC,
            "pushed past its nominal end"
        );
    }

    #[test]
    fn every_burst_is_parsed_for_any_delay_from_0_to_950_ms() {
        for delay in (0..=950).step_by(50) {
            let s = scenario(&format!("[nmea]\ndelay_ms = {delay}\njitter_ms = 10\n"));
            let run = run_scenario_traced(&s, &mut std::io::sink(), false).expect("run");
            let d = &run.details;
            assert_eq!(d.edges_sent, 60, "delay {delay}");
            // The burst of the last second may still be in flight at the end.
            assert!(
                d.bursts_sent >= 59,
                "delay {delay}: {} bursts",
                d.bursts_sent
            );
            assert_eq!(
                d.epochs_parsed, d.bursts_sent,
                "delay {delay}: parser lost epochs"
            );
        }
    }

    #[test]
    fn outages_silence_pulses_and_bursts() {
        let s = scenario(
            "[pps]\noutages = [{ from_s = 10, to_s = 20 }]\n[nmea]\noutages = [{ from_s = 30, to_s = 45 }]\n",
        );
        let d = run_scenario_traced(&s, &mut std::io::sink(), false)
            .expect("run")
            .details;
        assert_eq!(d.edges_sent, 50);
        assert!((44..=45).contains(&d.bursts_sent), "{}", d.bursts_sent);
    }

    #[test]
    fn spurious_edges_arrive_at_the_configured_rate() {
        let mut s = scenario("");
        s.duration_s = 2000;
        s.pps.spurious_per_hour = 3600.0;
        let d = run_scenario_traced(&s, &mut std::io::sink(), false)
            .expect("run")
            .details;
        // Poisson, mean 2000: ±5 sigma.
        assert!(
            (1775..=2225).contains(&d.spurious_sent),
            "{}",
            d.spurious_sent
        );
        assert_eq!(d.edges_sent, 2000 + d.spurious_sent);
    }

    #[test]
    fn leap_second_is_labelled_and_announced_by_the_receiver() {
        let text = "name = \"leap\"\nduration_s = 240\nseed = 1\nstart_utc = \"2016-12-31T23:57:00Z\"\n\
                    [leap]\ninsert_at_utc = \"2016-12-31\"\n";
        let s = Scenario::parse(text, "leap").expect("scenario");
        let d = run_scenario_traced(&s, &mut std::io::sink(), false)
            .expect("run")
            .details;
        assert_eq!(d.leap_second_epochs, 1, "exactly one 23:59:60");
        // Announced from the start until the leap second itself (181 bursts).
        assert!(
            (175..=181).contains(&d.leap_announced_epochs),
            "{}",
            d.leap_announced_epochs
        );
    }

    /// An M8T-like receiver on hardware-timestamped PPS, with TIM-TP.
    fn sawtooth(extra: &str) -> Scenario {
        let mut s = scenario(&format!(
            "[clock]\ninitial_offset_s = 0.0002\nfreq_random_walk_ppm = 0.00001\n\
             [pps]\njitter_ns = 1\n[nmea]\ndelay_ms = 350\n\
             [receiver]\ntiming_clock_hz = 48e6\nclock_offset_ppb = 125.2\n\
             clock_random_walk_ppb = 0.01\ntim_tp = true\n{extra}"
        ));
        s.duration_s = 1500;
        s.warmup_s = 300;
        s
    }

    fn run_with_qerr(s: &Scenario, on: bool) -> ScenarioRun {
        let config = RefclockConfig {
            qerr_correction: on,
            ..simulation_refclock_config()
        };
        run_scenario_with_config(s, &config, None, &mut std::io::sink(), false).expect("run")
    }

    #[test]
    fn the_qerr_correction_removes_the_sawtooth_and_a_wrong_sign_would_double_it() {
        let s = sawtooth("");
        let on = run_with_qerr(&s, true);
        let off = run_with_qerr(&s, false);
        // With the sign reversed each edge would be off by twice its quantisation
        // error, worse than no correction at all.
        assert!(
            on.report.rms_offset_ns < 0.25 * off.report.rms_offset_ns,
            "on {} ns, off {} ns",
            on.report.rms_offset_ns,
            off.report.rms_offset_ns
        );
        let q = on
            .details
            .final_status
            .as_ref()
            .and_then(|st| st.qerr.clone())
            .expect("qErr status");
        assert!(q.enabled);
        assert_eq!(q.messages, on.details.tim_tp_sent);
        assert!(q.applied >= 1490, "{q:?}");
        let q_off = off
            .details
            .final_status
            .and_then(|st| st.qerr)
            .expect("status");
        assert_eq!((q_off.enabled, q_off.applied), (false, 0));
    }

    #[test]
    fn dropped_duplicated_and_late_tim_tp_are_skipped_and_nothing_bad_is_served() {
        let s = sawtooth(
            "tim_tp_drop_probability = 0.2\ntim_tp_duplicate_probability = 0.2\n\
             tim_tp_late_probability = 0.2\nsurvey_in_min_s = 100\nsurvey_in_accuracy_m = 2.0\n",
        );
        let run = run_with_qerr(&s, true);
        assert_eq!(run.report.served_bad_s, 0);
        let q = run
            .details
            .final_status
            .and_then(|st| st.qerr)
            .expect("qErr status");
        // About 36 % of the edges have no message in time (dropped or late).
        let edges = q.applied + q.skipped_no_message;
        let missing = q.skipped_no_message as f64 / edges as f64;
        assert!((0.28..0.44).contains(&missing), "{q:?}");
        assert_eq!(q.skipped_invalid + q.skipped_uncertain, 0, "{q:?}");
        let survey = q.survey_in.expect("survey-in reported");
        assert!(survey.valid && !survey.active, "{survey:?}");
    }

    #[test]
    fn runs_are_reproducible_and_seeds_matter() {
        let mut s = scenario(
            "[clock]\ninitial_offset_s = 0.01\nfreq_random_walk_ppm = 0.01\n[pps]\njitter_ns = 500\n",
        );
        s.duration_s = 200;
        let a = run_scenario(&s);
        assert_eq!(a, run_scenario(&s));
        s.seed = 2;
        assert_ne!(a.rms_offset_ns, run_scenario(&s).rms_offset_ns);
    }

    fn m(second: u64, err_ns: f64, serving: bool, bound_ns: f64, state: SyncState) -> Measurement {
        Measurement {
            second,
            err_ns,
            serving,
            bound_ns,
            state,
        }
    }

    #[test]
    fn statistics_follow_the_issue_definitions() {
        let mut st = Stats::new(10);
        for k in 0..10 {
            // Warm-up: big errors, not served, excluded from RMS/max.
            st.record(&m(k, 1e6, false, 1e9, SyncState::Acquiring));
        }
        for k in 10..100 {
            let err = if k == 50 { 2_000.0 } else { 100.0 };
            st.record(&m(k, err, true, 10_000.0, SyncState::Locked));
        }
        // Served with an error beyond the advertised bound: bad.
        st.record(&m(100, -20_000.0, true, 10_000.0, SyncState::Holdover));
        // Beyond the bound but not served: fine.
        st.record(&m(
            101,
            30_000.0,
            false,
            10_000.0,
            SyncState::Unsynchronised,
        ));
        let r = st.report("x", 1);
        assert_eq!(r.sync_time_s, Some(10));
        // Under 1 µs for 40 s (10..49), broken at 50, then 49 s (51..99): never 60 s.
        assert_eq!(r.lock_time_s, None);
        assert_eq!(r.served_bad_s, 1);
        assert_eq!(r.max_abs_offset_ns, 30_000.0);
        assert_eq!(r.holdover_max_abs_offset_ns, Some(20_000.0));
        let n = 92.0;
        let want = ((88.0 * 100.0f64.powi(2)
            + 2_000.0f64.powi(2)
            + 20_000.0f64.powi(2)
            + 30_000.0f64.powi(2))
            / n)
            .sqrt();
        assert!(
            (r.rms_offset_ns - want).abs() < 0.1,
            "{} vs {want}",
            r.rms_offset_ns
        );
        assert_eq!(st.seconds_in_state, [10, 90, 1, 1]);
    }

    #[test]
    fn lock_time_is_the_start_of_the_first_60_s_under_1_us() {
        let mut st = Stats::new(0);
        for k in 0..200 {
            let err = if k < 5 || k == 30 { 5_000.0 } else { 10.0 };
            st.record(&m(k, err, false, 0.0, SyncState::Acquiring));
        }
        assert_eq!(st.report("x", 0).lock_time_s, Some(31));
    }

    #[test]
    fn a_nan_bound_while_serving_is_bad() {
        let mut st = Stats::new(0);
        st.record(&m(0, 1.0, true, f64::NAN, SyncState::Locked));
        assert_eq!(st.served_bad, 1);
    }
}
