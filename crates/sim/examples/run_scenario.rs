//! Runs one scenario in simulated time and prints the JSON summary as
//! the last line of stdout; diagnostics go to stderr.
//!
//! `cargo run --release -p skytime-sim --example run_scenario -- scenarios/FILE.toml [--trace FILE.csv]`

use skytime_sim::{Scenario, run_scenario_traced};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut scenario: Option<PathBuf> = None;
    let mut trace: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--trace" => match args.next() {
                Some(p) => trace = Some(PathBuf::from(p)),
                None => return usage("--trace needs a file name"),
            },
            "-h" | "--help" => return usage(""),
            _ if scenario.is_none() => scenario = Some(PathBuf::from(a)),
            _ => return usage(&format!("unexpected argument `{a}`")),
        }
    }
    let Some(path) = scenario else {
        return usage("missing scenario file");
    };
    let scenario = match Scenario::load(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let started = std::time::Instant::now();
    let result = match &trace {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => {
                let mut w = std::io::BufWriter::new(f);
                run_scenario_traced(&scenario, &mut w, true).and_then(|r| w.flush().map(|()| r))
            }
            Err(e) => {
                eprintln!("error: cannot create trace {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        None => run_scenario_traced(&scenario, &mut std::io::sink(), false),
    };
    let run = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: writing the trace failed: {e}");
            return ExitCode::from(2);
        }
    };
    let wall_s = started.elapsed().as_secs_f64();
    eprintln!(
        "{}: {} s simulated in {wall_s:.3} s of wall time",
        scenario.name, scenario.duration_s
    );
    for line in run.diagnostics() {
        eprintln!("  {line}");
    }
    if let Some(p) = &trace {
        eprintln!("  trace: {}", p.display());
    }
    match serde_json::to_string(&run.report) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    if !problem.is_empty() {
        eprintln!("error: {problem}");
    }
    eprintln!("usage: run_scenario SCENARIO.toml [--trace FILE.csv]");
    ExitCode::from(2)
}
