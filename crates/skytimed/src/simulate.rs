//! `skytimed simulate --scenario FILE [--config FILE]`: runs one scenario in
//! simulated time against the real parser and discipline (`skytime_sim` does
//! the work) and prints the JSON summary as the last line of stdout.
//! With a configuration, its `[refclock]` runs the discipline (files it would
//! read or write on this host left out) and its `[gnss]` the receiver parser;
//! its temperature sensor, configured or not, decides whether the scenario's
//! `[sensor]` is read, and its `qerr_correction` whether a timing receiver's
//! TIM-TP corrects the pulses.

use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;

/// Exit status when the run finished but served a wrong time as synchronised
/// (`served_bad_s` > 0), so scripts and CI notice without parsing the JSON.
pub const EXIT_SERVED_BAD: u8 = 3;

/// Runs one scenario in simulated time and prints its JSON summary last;
/// diagnostics go to stderr.
pub fn run(scenario: &Path, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let loaded = skytime_sim::Scenario::load(scenario)?;
    let settings = match config {
        Some(path) => {
            let c = crate::config::Config::load(path)?;
            skytime_sim::SimSettings {
                refclock: skytime_refclock::RefclockConfig {
                    drift_file: None,
                    leap_seconds_file: None,
                    ..c.refclock
                },
                gnss: c.gnss.parser(),
            }
        }
        None => skytime_sim::SimSettings {
            refclock: skytime_sim::scenario_refclock_config(&loaded),
            ..skytime_sim::SimSettings::default()
        },
    };
    let refclock = &settings.refclock;
    eprintln!(
        "temperature sensor: {}",
        if refclock.temperature_sensor.is_some() {
            "on (the scenario's [sensor] profile)"
        } else {
            "off"
        }
    );
    if loaded.receiver.tim_tp {
        eprintln!(
            "qErr correction: {}",
            if refclock.qerr_correction {
                "on (each pulse corrected by its TIM-TP)"
            } else {
                "off ([refclock] qerr_correction = false)"
            }
        );
    }
    let started = std::time::Instant::now();
    let run = skytime_sim::run_scenario_with_settings(
        &loaded,
        &settings,
        None,
        &mut std::io::sink(),
        false,
    )
    .context("simulation")?;
    eprintln!(
        "{}: {} s simulated in {:.3} s of wall time",
        loaded.name,
        loaded.duration_s,
        started.elapsed().as_secs_f64()
    );
    for line in run.diagnostics() {
        eprintln!("  {line}");
    }
    println!("{}", serde_json::to_string(&run.report)?);
    Ok(if run.report.served_bad_s > 0 {
        ExitCode::from(EXIT_SERVED_BAD)
    } else {
        ExitCode::SUCCESS
    })
}
