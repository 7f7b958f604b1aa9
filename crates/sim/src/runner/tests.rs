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
    assert_eq!(bytes[0].0, end - line_ns(total) + line_ns(first_len));
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
    assert_ne!(
        a.rms_offset_ns.to_bits(),
        run_scenario(&s).rms_offset_ns.to_bits()
    );
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
    assert!(
        (r.max_abs_offset_ns - 30_000.0).abs() < 1e-9,
        "{}",
        r.max_abs_offset_ns
    );
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
