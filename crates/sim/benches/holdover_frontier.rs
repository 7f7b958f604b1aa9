//! The frontier between a holdover bound's tightness and its honesty (see
//! `skytime_sim::bound_frontier`): per case, the median of bound ÷ largest
//! |error| and the share of holdovers that serve a wrong second, at a few
//! multipliers of σ; then the multiplier whose median is 5 and what it
//! costs, and the multiplier a clean sweep needs and its median. Printed, not
//! asserted.
//!
//! `SKYTIME_FRONTIER_HOLDOVERS` (default 100000) sets the holdovers per case.

use skytime_sim::bound_frontier::{ErrorShape, Frontier, FrontierPoint, p_any_in_sweep};
use std::time::Instant;

/// Seconds in the benchmark's holdovers (the scenarios' outages are 1200 s),
/// taken in steps of this many seconds.
const HOLDOVER_STEPS: usize = 300;

/// Holdovers in a sweep of the scenario benchmark with the sensor: 8
/// scenarios, 20 seeds each.
const SWEEP_HOLDOVERS: u32 = 160;

/// A wrong second in at most this share of holdovers keeps a 160-holdover
/// sweep clean 19 times in 20.
const CLEAN_SWEEP_P_WRONG: f64 = 0.0003;

fn main() {
    let holdovers: usize = std::env::var("SKYTIME_FRONTIER_HOLDOVERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let started = Instant::now();
    println!(
        "== holdover bound frontier ({holdovers} holdovers per case, {HOLDOVER_STEPS} steps each)"
    );
    println!(
        "   bound = k x estimated sigma; ratio = bound at the end / largest |error|; wrong = share of holdovers with a second outside the bound"
    );
    let cases = [
        ("random walk, sigma known", ErrorShape::RandomWalk, None),
        (
            "random walk, sigma from 40 dof",
            ErrorShape::RandomWalk,
            Some(40.0),
        ),
        (
            "random walk, sigma from 20 dof",
            ErrorShape::RandomWalk,
            Some(20.0),
        ),
        (
            "random walk, sigma from 10 dof",
            ErrorShape::RandomWalk,
            Some(10.0),
        ),
        (
            "frequency error, sigma known",
            ErrorShape::FrequencyError,
            None,
        ),
        (
            "frequency error, sigma from 20 dof",
            ErrorShape::FrequencyError,
            Some(20.0),
        ),
    ];
    for (seed, (name, shape, dof)) in (1u64..).zip(cases) {
        let f = Frontier::simulate(holdovers, HOLDOVER_STEPS, shape, dof, seed);
        println!("-- {name}");
        for k in [3.0, 3.42, 4.0, 4.5] {
            println!("   {}", line("k", &f.at(k)));
        }
        println!("   {}", line("median 5 needs", &f.at_median(5.0)));
        println!(
            "   {}",
            line("a clean sweep needs", &f.at_p_wrong(CLEAN_SWEEP_P_WRONG))
        );
    }
    println!("== {:.1} s wall", started.elapsed().as_secs_f64());
}

fn line(label: &str, p: &FrontierPoint) -> String {
    format!(
        "{label} {:.2}: median ratio {:.2}, wrong {:.3} %, a {SWEEP_HOLDOVERS}-holdover sweep serves a wrong second with probability {:.0} %",
        p.multiplier,
        p.median_ratio,
        100.0 * p.p_wrong_second,
        100.0 * p_any_in_sweep(p.p_wrong_second, SWEEP_HOLDOVERS)
    )
}
