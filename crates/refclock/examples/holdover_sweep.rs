//! Runs the holdover-relevant scenarios with many seeds through the full
//! simulator and prints, per scenario, the seconds served wrong (must be 0 on
//! every seed) and how loose the holdover bound is: its ratio to the true
//! holdover error over the longest holdover (its largest bound over its
//! largest error; median and max over seeds), the tightest ratio seen (must stay above 1), and how long holdover
//! was served. A scenario with a temperature sensor gets a second row, the
//! same seeds without the sensor. `SWEEP_TEMPERATURE_SIGMAS=K` runs the
//! compensated bound at K sigmas instead of the default, to weigh that
//! setting's tightness against its honesty (`scripts/bench-frontier.sh`
//! prints the same trade for any bound).
//!
//! `cargo run --release -p skytime-refclock --example holdover_sweep [-- SEEDS [NAME_SUBSTRING | FILE.toml]]`

#[path = "../tests/sweep/mod.rs"]
mod sweep;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let filter = args.next().unwrap_or_default();
    let verbose = std::env::var_os("SWEEP_VERBOSE").is_some();
    let sigmas = match std::env::var("SWEEP_TEMPERATURE_SIGMAS") {
        Err(_) => None,
        Ok(v) => match v.parse::<f64>() {
            Ok(k) => Some(k),
            Err(_) => {
                eprintln!("SWEEP_TEMPERATURE_SIGMAS must be a number, not `{v}`");
                return ExitCode::from(2);
            }
        },
    };
    println!(
        "{:<22} {:>5} {:>6} {:>7} {:>8} {:>10} {:>11} {:>9} {:>9} {:>9} {:>9}",
        "scenario",
        "seeds",
        "bad_s",
        "hold_s",
        "served_s",
        "max_err_us",
        "peak_bnd_us",
        "ratio_med",
        "ratio_max",
        "coast_min",
        "return_min"
    );
    let mut total_bad = 0;
    let names: Vec<&str> = if filter.ends_with(".toml") {
        vec![filter.as_str()]
    } else {
        sweep::SCENARIOS
            .iter()
            .copied()
            .filter(|s| s.contains(&filter))
            .collect()
    };
    let runs: Vec<(&str, Option<bool>)> = names
        .iter()
        .flat_map(|&name| {
            let mut v = vec![(name, None)];
            if sweep::has_sensor(name) {
                v.push((name, Some(false)));
            }
            v
        })
        .collect();
    for (name, sensor) in runs {
        let mut results = Vec::new();
        for seed in sweep::seeds(n) {
            match sweep::run_at(name, seed, sensor, sigmas) {
                Ok(r) => results.push(r),
                Err(e) => {
                    eprintln!("{name} seed {seed}: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        if verbose {
            for r in &results {
                eprintln!(
                    "  {name} seed {}: bad {} held {} served {} max_err {:.1} us peak {:.1} us ratio {:.1} coast min {:.2} at {} s, return min {:.2}",
                    r.seed,
                    r.served_bad_s,
                    r.digest.holdover_s,
                    r.digest.holdover_served_s,
                    r.digest.holdover_max_err_ns / 1e3,
                    r.digest.peak_bound_ns / 1e3,
                    r.digest.peak_ratio,
                    r.digest.coast_min_ratio,
                    r.digest.coast_min_at_s,
                    r.digest.return_min_ratio
                );
            }
        }
        let bad: u64 = results.iter().map(|r| r.served_bad_s).sum();
        total_bad += bad;
        let bad_seeds: Vec<u64> = results
            .iter()
            .filter(|r| r.served_bad_s > 0)
            .map(|r| r.seed)
            .collect();
        let col = |f: fn(&sweep::SeedResult) -> f64| -> Vec<f64> {
            results.iter().map(f).filter(|x| x.is_finite()).collect()
        };
        let max = |v: Vec<f64>| v.into_iter().fold(f64::NAN, f64::max);
        let min = |v: Vec<f64>| v.into_iter().fold(f64::NAN, f64::min);
        println!(
            "{:<22} {:>5} {:>6} {:>7.0} {:>8.0} {:>10.1} {:>11.1} {:>9.1} {:>9.1} {:>9.2} {:>9.2}{}",
            if sensor == Some(false) {
                "  (no sensor)".to_string()
            } else {
                name.to_string()
            },
            results.len(),
            bad,
            sweep::median(&col(|r| r.digest.holdover_s as f64)),
            sweep::median(&col(|r| r.digest.holdover_served_s as f64)),
            max(col(|r| r.digest.holdover_max_err_ns)) / 1e3,
            sweep::median(&col(|r| r.digest.peak_bound_ns)) / 1e3,
            sweep::median(&col(|r| r.digest.peak_ratio)),
            max(col(|r| r.digest.peak_ratio)),
            min(col(|r| r.digest.coast_min_ratio)),
            min(col(|r| r.digest.return_min_ratio)),
            if bad_seeds.is_empty() {
                String::new()
            } else {
                format!("  served wrong with seeds {bad_seeds:?}")
            }
        );
    }
    if total_bad > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
