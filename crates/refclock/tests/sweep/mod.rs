//! The holdover sweep: the scenarios where the box coasts on its oscillator,
//! each run with many seeds through the full simulator, so that an honest
//! error bound is shown to be honest by more than one draw of the noise, and
//! how loose it is can be measured. Shared by the `holdover_sweep` example
//! (prints the table) and the `sim_scenarios` test (asserts the honesty).
#![allow(
    dead_code,
    reason = "shared by a test and an example, each using part of it (so not `expect`)"
)]

#[allow(
    unused_imports,
    reason = "the example prints medians; the test does not"
)]
pub use skytime_sim::holdover_digest::median;
use skytime_sim::holdover_digest::{HoldoverDigest, digest_trace};
use skytime_sim::{Scenario, run_scenario_with_config, scenario_refclock_config};
use std::path::{Path, PathBuf};

/// Scenarios whose holdover (or rejection of pulses) the sweep covers.
pub const SCENARIOS: [&str; 18] = [
    "s1-pi-gps-hat",
    "s6-outage-holdover",
    "s7-long-holdover",
    "s11-invalid-fix",
    "s12-pps-lost",
    "s13-nmea-lost",
    "s15-hostile-mix",
    "rc-holdover-ramp",
    "rc-holdover-ramp-late",
    "rc-bad-receiver",
    "rc-leap-delete",
    "rc-leap-insert",
    "rc-receiver-right",
    "rc-thermal-sensor-faults",
    "rc-thermal-sign-flip",
    "rc-thermal-hidden-heater",
    "rc-thermal-ntp-load",
    "rc-thermal-out-of-range",
];

/// Seeds each scenario is run with (its file's own seed is replaced).
pub fn seeds(n: u64) -> impl Iterator<Item = u64> {
    1..=n
}

/// The project's `scenarios/` directory.
pub fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

/// What one run says about the holdover bound: its seed, the seconds served
/// wrong, and the digest of its trace that the scenario benchmark reads too.
#[derive(Clone, Debug, Default)]
pub struct SeedResult {
    pub seed: u64,
    /// Seconds served as synchronised with |error| beyond the bound.
    pub served_bad_s: u64,
    pub digest: HoldoverDigest,
}

/// Runs `name` (a scenario of the project, or a path ending in `.toml`)
/// with `seed` and digests its per-second trace.
pub fn run(name: &str, seed: u64) -> Result<SeedResult, String> {
    run_with(name, seed, None)
}

/// Whether the scenario `name` reads a temperature sensor.
pub fn has_sensor(name: &str) -> bool {
    Scenario::load(&scenario_path(name)).is_ok_and(|s| s.sensor.enabled)
}

fn scenario_path(name: &str) -> PathBuf {
    if name.ends_with(".toml") {
        PathBuf::from(name)
    } else {
        scenario_dir().join(format!("{name}.toml"))
    }
}

/// As [`run`], with the temperature sensor forced on or off (None: as the
/// scenario says).
pub fn run_with(name: &str, seed: u64, sensor: Option<bool>) -> Result<SeedResult, String> {
    run_at(name, seed, sensor, None)
}

/// [`run_with`], with the compensated holdover's bound at
/// `temperature_sigmas` instead of the default (to weigh that setting).
pub fn run_at(
    name: &str,
    seed: u64,
    sensor: Option<bool>,
    temperature_sigmas: Option<f64>,
) -> Result<SeedResult, String> {
    let path = scenario_path(name);
    let mut scenario = Scenario::load(&path).map_err(|e| e.to_string())?;
    scenario.seed = seed;
    if let Some(on) = sensor {
        scenario.sensor.enabled = on;
    }
    let mut config = scenario_refclock_config(&scenario);
    if let Some(k) = temperature_sigmas {
        config.temperature_bound_sigmas = k;
    }
    if let Some((key, msg)) = config.validate().into_iter().next() {
        return Err(format!("[refclock] {key}: {msg}"));
    }
    let mut trace = Vec::new();
    let run = run_scenario_with_config(&scenario, &config, None, &mut trace, true)
        .map_err(|e| e.to_string())?;
    Ok(SeedResult {
        seed,
        served_bad_s: run.report.served_bad_s,
        digest: digest_trace(&String::from_utf8_lossy(&trace)),
    })
}
