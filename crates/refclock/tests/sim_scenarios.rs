//! The discipline against the full simulator (`crates/sim`: the real NMEA
//! parser, a simulated oscillator, PPS line and receiver), for failure modes
//! whose scenario would not belong in `scenarios/` because some wrong time
//! cannot be avoided in them.

use skytime_sim::{Scenario, run_scenario};

/// A receiver fresh from a cold start labels its first 9 s one second late:
/// the box locks on that second (nothing can tell it otherwise) and serves
/// it, until the receiver corrects itself. From then on the receiver is right
/// and the clock is not: only the grace (2 s) may be served, not the 30 s it
/// takes to believe the receiver.
#[test]
fn a_receiver_that_corrects_itself_right_after_lock_costs_only_the_grace() {
    let text = r#"
name = "receiver-right-after-lock"
duration_s = 600
warmup_s = 60
seed = 21
start_utc = "2026-04-30T23:00:00Z"
[clock]
initial_offset_s = 0.3
initial_freq_ppm = 6.0
freq_random_walk_ppm = 0.0005
[pps]
jitter_ns = 200
[nmea]
delay_ms = 300
jitter_ms = 20
wrong_second = [ { from_s = 0, to_s = 9, offset_s = 1 } ]
"#;
    let scenario = Scenario::parse(text, "inline").unwrap_or_else(|e| panic!("{e}"));
    let report = run_scenario(&scenario);
    eprintln!("{report:?}");
    assert!(
        report.sync_time_s.is_some_and(|t| t <= 10),
        "the scenario is meant to lock before the receiver corrects itself: {report:?}"
    );
    assert!(
        report.served_bad_s <= 3,
        "served the disputed second for {} s",
        report.served_bad_s
    );
    assert_eq!(report.steps, 2, "start-up step and the relabel");
    assert!(report.max_abs_offset_ns < 1_000.0, "{report:?}");
}

mod sweep;

/// Draws beyond the sweep's seeds that once found the bound wanting:
/// rc-holdover-ramp-late's seed 74 served 258 s wrong when a compensated
/// holdover's bound covered 3 sigmas (one holdover in 200 seeds).
const SEEDS_THAT_FOUND_IT_WANTING: [(&str, u64); 1] = [("rc-holdover-ramp-late", 74)];

/// Honesty by more than one draw of the noise: every holdover-relevant
/// scenario, with 20 seeds (and the draws above), never serves a second as
/// synchronised with the error beyond the advertised bound. (`cargo run
/// --release -p skytime-refclock --example holdover_sweep` prints how loose
/// the bound is.)
#[test]
fn the_holdover_bound_is_honest_on_every_seed() {
    let mut bad = Vec::new();
    let runs = sweep::SCENARIOS
        .iter()
        .flat_map(|&name| sweep::seeds(20).map(move |seed| (name, seed)))
        .chain(SEEDS_THAT_FOUND_IT_WANTING);
    for (name, seed) in runs {
        let r = sweep::run(name, seed).unwrap_or_else(|e| panic!("{name}: {e}"));
        if r.served_bad_s > 0 {
            bad.push(format!(
                "{name} seed {seed}: {} s served wrong, coasting bound/error down to {:.2} at {} s",
                r.served_bad_s, r.digest.coast_min_ratio, r.digest.coast_min_at_s
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
