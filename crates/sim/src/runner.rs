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

mod report;
mod world;

use report::{Measurement, Stats};
pub use report::{RunDetails, ScenarioReport, ScenarioRun};
use world::Sim;

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

/// True time at the start of second `k` of a run, ns (saturating: no run is
/// that long).
fn second_start_ns(k: u64) -> i64 {
    i64::try_from(k).map_or(i64::MAX, |k| k.saturating_mul(NANOS_PER_SEC))
}

/// How long `bytes` bytes take on the serial line, ns.
fn line_ns(bytes: usize) -> i64 {
    i64::try_from(bytes).map_or(i64::MAX, |n| n.saturating_mul(BYTE_NS))
}

/// Drops the fraction (saturating), as `as` does.
#[expect(
    clippy::cast_possible_truncation,
    reason = "the simulator's times and durations, bounded by the validated scenario, are far inside i64"
)]
fn truncate_to_i64(v: f64) -> i64 {
    v as i64
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

/// Runs a scenario and returns the summary.
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
    /// The discipline's settings (`[refclock]`).
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
            second_start_ns(k) + MEASURE_AT_NS,
            Event::Measure { second: k },
        );
        sim.run_until(second_start_ns(k + 1), out, trace)?;
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
mod tests;
