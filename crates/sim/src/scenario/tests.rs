use super::directory::natural_key;
use super::*;

const FULL: &str = r#"
name = "full"
duration_s = 100
warmup_s = 10
seed = 7
start_utc = "2016-12-31T23:00:00Z"
[clock]
initial_offset_s = 0.1
initial_freq_ppm = 10.0
freq_random_walk_ppm = 0.001
temperature_coeff_ppm_per_k = 0.1
temperature = [ { at_s = 10, kelvin_step = 4.0, ramp_s = 900 } ]
[pps]
jitter_ns = 5
latency_ns = 3
outages = [ { from_s = 1, to_s = 2 } ]
spurious_per_hour = 2
[nmea]
delay_ms = 350
jitter_ms = 50
outages = [ { from_s = 1, to_s = 2 } ]
wrong_second = [ { from_s = 3, to_s = 4, offset_s = 1 } ]
[receiver]
timing_clock_hz = 48e6
clock_offset_ppb = 150.3
clock_random_walk_ppb = 0.05
tim_tp = true
q_err_noise_ps = 100
tim_tp_drop_probability = 0.1
tim_tp_duplicate_probability = 0.1
tim_tp_late_probability = 0.1
survey_in_min_s = 300
survey_in_accuracy_m = 2.0
[leap]
insert_at_utc = "2016-12-31T23:59:60Z"
"#;

#[test]
fn every_key_of_the_issue_is_accepted() {
    let s = Scenario::parse(FULL, "full").expect("full scenario parses");
    assert!((s.clock.temperature[0].ramp_s - 900.0).abs() < 1e-9);
    assert_eq!(s.nmea.wrong_second[0].offset_s, 1);
    let leap = s.leap_event().expect("leap resolved");
    assert_eq!(leap.change, LeapChange::Insert);
    assert_eq!(
        leap.day,
        NaiveDate::from_ymd_opt(2016, 12, 31).expect("date")
    );
    assert_eq!(leap.midnight_unix_secs(), 1_483_228_800);
}

#[test]
fn unknown_keys_are_errors_at_every_level() {
    for (from, to) in [
        ("seed = 7", "sede = 7"),
        ("jitter_ns = 5", "jiter_ns = 5"),
        ("ramp_s = 900", "ramp = 900"),
        ("offset_s = 1", "offset = 1"),
        ("[leap]", "[leap]\nwhen = 1"),
        ("tim_tp = true", "timtp = true"),
    ] {
        let text = FULL.replacen(from, to, 1);
        let err = Scenario::parse(&text, "typo").expect_err(to);
        assert!(err.to_string().contains("unknown field"), "{to}: {err}");
    }
}

#[test]
fn leap_forms_resolve_to_the_same_day_and_bad_ones_are_named() {
    for v in ["2016-12-31", "2017-01-01T00:00:00Z", "2016-12-31T23:59:60Z"] {
        let e = parse_leap(v, LeapChange::Insert).expect(v);
        assert_eq!(e.day.to_string(), "2016-12-31");
    }
    assert!(parse_leap("2016-12-31T23:59:59Z", LeapChange::Delete).is_ok());
    assert!(parse_leap("2016-12-31T23:59:59Z", LeapChange::Insert).is_err());
    assert!(parse_leap("2016-12-30", LeapChange::Insert).is_err());
    let text = FULL.replace("2016-12-31T23:59:60Z", "2016-12-15T12:00:00Z");
    let err = Scenario::parse(&text, "x").expect_err("bad leap");
    assert!(err.to_string().contains("leap.insert_at_utc"), "{err}");
}

#[test]
fn semantic_problems_name_their_keys() {
    let text = FULL
        .replace("warmup_s = 10", "warmup_s = 100")
        .replace("delay_ms = 350", "delay_ms = 1200")
        .replace("offset_s = 1", "offset_s = 0")
        .replace("23:00:00Z", "23:00:00.5Z")
        .replace("timing_clock_hz = 48e6", "timing_clock_hz = 5")
        .replace(
            "tim_tp_late_probability = 0.1",
            "tim_tp_late_probability = 2",
        );
    let err = Scenario::parse(&text, "x").expect_err("invalid");
    let msg = err.to_string();
    for key in [
        "warmup_s",
        "nmea.delay_ms",
        "nmea.wrong_second[0].offset_s",
        "start_utc",
        "receiver.timing_clock_hz",
        "receiver.tim_tp_late_probability",
    ] {
        assert!(msg.contains(key), "{key} missing from {msg}");
    }
}

#[test]
fn project_scenarios_all_load_in_natural_order() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let all = project_scenarios(&dir).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = all.iter().map(|(_, s)| s.name.as_str()).collect();
    assert!(names.len() >= 2, "{names:?}");
    for required in ["s0-chrony-anchor", "s1-pi-gps-hat"] {
        assert!(
            names.contains(&required),
            "{required} missing from {names:?}"
        );
    }
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| natural_key(n));
    assert_eq!(names, sorted);
    assert!(natural_key("s2-x") < natural_key("s10-x"));
}
