//! Temperature-compensated holdover against the full simulator: the model
//! learned while locked cuts the holdover error of a ramp it cannot observe,
//! and survives a restart.

use skytime_sim::{Scenario, run_scenario_traced, run_scenario_with_config};
use std::path::Path;

fn project_scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scenarios")
        .join(format!("{name}.toml"));
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// rc-holdover-ramp: 4 K of cooling during a 20-minute outage. With the
/// sensor the holdover error must be a small fraction of what it is without.
#[test]
fn the_sensor_cuts_the_holdover_error_of_a_temperature_ramp() {
    let with = project_scenario("rc-holdover-ramp");
    assert!(with.sensor.enabled, "the project scenario reads its sensor");
    let mut without = with.clone();
    without.sensor.enabled = false;
    let run = |s: &Scenario| {
        run_scenario_traced(s, &mut std::io::sink(), false)
            .unwrap_or_else(|e| panic!("{e}"))
            .report
    };
    let (a, b) = (run(&with), run(&without));
    eprintln!("with: {a:?}\nwithout: {b:?}");
    let (ea, eb) = (
        a.holdover_max_abs_offset_ns.expect("holdover"),
        b.holdover_max_abs_offset_ns.expect("holdover"),
    );
    assert!(ea < 0.25 * eb, "with the sensor {ea} ns, without {eb} ns");
    assert_eq!(a.served_bad_s, 0);
    assert_eq!(b.served_bad_s, 0);
}

/// The box learns its coefficient during a warm-up, is restarted, and loses
/// its antenna two minutes later while the room cools by 4 K: the model kept
/// beside the drift file compensates from the first holdover on.
#[test]
fn a_restarted_box_that_loses_its_antenna_at_once_still_has_its_model() {
    let first = project_scenario("rc-holdover-ramp");
    let mut learn = first.clone();
    learn.duration_s = 3000;
    learn.pps.outages.clear();
    learn.nmea.outages.clear();
    let config = skytime_sim::scenario_refclock_config(&learn);
    let learned = run_scenario_with_config(&learn, &config, None, &mut std::io::sink(), false)
        .unwrap_or_else(|e| panic!("{e}"));
    let record = learned.details.thermal_record.expect("record");
    let (_, model) = record.model.expect("a model was learned");
    assert!(model.coefficient().1 < 10.0, "{:?}", model.coefficient());

    // After the restart: the box is at the warm end of the ramp (the sensor
    // reads what it read before the restart), and cools during an outage
    // that starts two minutes in.
    let restart_text = format!(
        r#"
name = "restarted"
duration_s = 1500
warmup_s = 60
seed = 41
start_utc = "2026-07-01T14:00:00Z"
[clock]
initial_offset_s = 0.0005
initial_freq_ppm = {freq}
freq_random_walk_ppm = 0.0005
temperature_coeff_ppm_per_k = 0.1
temperature = [ {{ at_s = 300, kelvin_step = -4.0, ramp_s = 900 }} ]
[pps]
jitter_ns = 1000
latency_ns = 3000
outages = [ {{ from_s = 120, to_s = 1320 }} ]
[nmea]
delay_ms = 480
jitter_ms = 20
outages = [ {{ from_s = 120, to_s = 1320 }} ]
[sensor]
enabled = true
base_c = {base}
noise_k = 0.1
lag_s = 30
"#,
        freq = first.clock.initial_freq_ppm + 0.4,
        base = first.sensor.base_c + 4.0,
    );
    let restart = Scenario::parse(&restart_text, "restart").unwrap_or_else(|e| panic!("{e}"));
    let config = skytime_sim::scenario_refclock_config(&restart);
    let run = |record| {
        run_scenario_with_config(&restart, &config, record, &mut std::io::sink(), false)
            .unwrap_or_else(|e| panic!("{e}"))
            .report
    };
    let kept = run(Some(&record));
    let forgotten = run(None);
    eprintln!("kept: {kept:?}\nforgotten: {forgotten:?}");
    // Over the whole outage (holdover, and beyond its limit): the clock's error.
    let (ek, ef) = (kept.max_abs_offset_ns, forgotten.max_abs_offset_ns);
    assert!(ek < 0.25 * ef, "kept model {ek} ns, none {ef} ns");
    assert_eq!(kept.served_bad_s, 0);
    assert_eq!(forgotten.served_bad_s, 0);
}

/// The compensated holdover's bound is a prediction interval of
/// `temperature_bound_sigmas`: fewer sigmas, a tighter bound, still honest
/// on the ramp. A heater the sensor cannot see never makes it dishonest,
/// whatever the sigmas (the unexplained wander of the last day, or the
/// model's distrust, holds the bound up): even at one sigma nothing is
/// served wrong.
#[test]
fn the_compensated_bound_follows_its_sigmas_and_the_wander_guard_holds_it_up() {
    use skytime_sim::holdover_digest::digest_trace;
    let peak = |name: &str, sigmas: f64| {
        let s = project_scenario(name);
        let config = skytime_refclock::RefclockConfig {
            temperature_bound_sigmas: sigmas,
            ..skytime_sim::scenario_refclock_config(&s)
        };
        let mut trace = Vec::new();
        let run = run_scenario_with_config(&s, &config, None, &mut trace, true)
            .unwrap_or_else(|e| panic!("{e}"));
        let d = digest_trace(&String::from_utf8_lossy(&trace));
        eprintln!(
            "{name} at {sigmas} sigmas: {d:?}, served_bad_s {}",
            run.report.served_bad_s
        );
        (d.peak_bound_ns, run.report.served_bad_s)
    };
    let (tight, bad_tight) = peak("rc-holdover-ramp", 3.0);
    let (wide, bad_wide) = peak("rc-holdover-ramp", 5.0);
    assert!(
        tight < 0.8 * wide,
        "3 sigmas {tight} ns, 5 sigmas {wide} ns"
    );
    assert_eq!((bad_tight, bad_wide), (0, 0));
    let (_, bad_heater) = peak("rc-thermal-hidden-heater", 1.0);
    assert_eq!(bad_heater, 0, "the hidden heater served wrong at one sigma");
}
