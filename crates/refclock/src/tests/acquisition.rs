//! Acquisition and steady tracking: locking, pulse jitter, spurious edges, drift-file
//! starts, what the clock is told, and a clock that refuses a frequency.

use super::*;

#[test]
fn chrony_anchor_like_world_locks_fast_and_tracks_to_nanoseconds() {
    let w = World::default();
    let (obs, rc) = w.run(&test_config(), 900);
    let lock = first(&obs, 0, SyncState::Locked);
    let (rms, max) = error_stats(&obs, 300);
    eprintln!(
        "lock at {lock:?}, rms {rms:.1} ns, max {max:.1} ns, steps {:?}",
        rc.clock().steps()
    );
    let st = rc.status();
    assert!(lock.is_some_and(|t| t <= 20), "lock at {lock:?}");
    assert!(rms < 60.0 && max < 300.0, "rms {rms} max {max}");
    assert!(
        served_bad(&obs).is_empty(),
        "served bad at {:?}",
        served_bad(&obs)
    );
    assert_eq!(rc.clock().steps().len(), 1);
    assert_eq!(st.pps.reach, 0o377);
    assert_eq!(st.nmea.reach, 0o377);
    assert_eq!(st.stratum, 1);
    assert_eq!(st.reference_id, ReferenceId::GPS);
    let delay = st.nmea.delay_median_ms.unwrap_or(0.0);
    assert!((delay - 350.0).abs() < 15.0, "median delay {delay}");
    // Serialises for the control socket.
    let json = serde_json::to_string(&st).unwrap_or_default();
    assert!(json.contains("\"reference_id\":\"GPS\""), "{json}");
}

/// A pulse with 150 µs of jitter (QEMU's UART under TCG; a PPS on a
/// USB-serial DCD line) is 500 times the noise prior. Found in the VM test:
/// the noise learner hears only pulses inside the gate, the gate is drawn
/// from what it heard, so it kept a jitter of nanoseconds, rejected half the
/// pulses and advertised a root dispersion of 10 µs for a clock 200 µs off.
#[test]
fn a_pulse_with_150_us_of_jitter_is_learned_and_the_bound_stays_honest() {
    let w = World {
        pps_jitter_ns: 150_000.0,
        osc_ppb: 25_000.0,
        initial_offset_ns: 0.4e9,
        ..World::default()
    };
    let (obs, rc) = w.run(&test_config(), 600);
    let st = rc.status();
    let lock = first(&obs, 0, SyncState::Locked);
    let (rms, max) = error_stats(&obs, 300);
    eprintln!(
        "lock at {lock:?}, rms {rms:.0} ns, max {max:.0} ns, jitter {:.0} ns, {} of {} pulses used",
        st.jitter_ns, st.pps.edges_used, st.pps.edges_seen
    );
    assert!(st.jitter_ns > 75_000.0, "jitter {} ns", st.jitter_ns);
    assert!(
        st.pps.edges_used * 10 >= st.pps.edges_seen * 9,
        "{} of {} pulses used",
        st.pps.edges_used,
        st.pps.edges_seen
    );
    let overclaimed: Vec<i64> = obs
        .iter()
        .filter(|o| {
            o.status.serves_synchronised() && o.error_ns.abs() > o.status.root_dispersion_ns
        })
        .map(|o| o.t_s)
        .collect();
    assert!(
        overclaimed.is_empty(),
        "error beyond the advertised bound at {overclaimed:?}"
    );
    assert!(
        served_bad(&obs).is_empty(),
        "served bad at {:?}",
        served_bad(&obs)
    );
}

#[test]
fn never_serves_before_lock() {
    let (obs, _) = World::default().run(&test_config(), 60);
    let lock = first(&obs, 0, SyncState::Locked).unwrap_or(i64::MAX);
    for o in obs.iter().filter(|o| o.t_s < lock) {
        assert!(
            !o.status.serves_synchronised(),
            "served at {} before lock at {lock}",
            o.t_s
        );
        assert_eq!(o.status.stratum, 16);
    }
}
#[test]
fn spurious_edges_are_rejected_and_do_not_disturb_the_clock() {
    let spurious: Vec<f64> = (0..60)
        .map(|i| 100.0 + f64::from(i) * 7.31 + 0.123 * f64::from(i % 7))
        .collect();
    let w = World {
        spurious: spurious.clone(),
        ..World::default()
    };
    let (obs, rc) = w.run(&test_config(), 600);
    let st = rc.status();
    assert!(
        st.rejections.spurious_edges >= 55,
        "spurious rejected: {:?}",
        st.rejections
    );
    let (_, max) = error_stats(&obs, 100);
    assert!(max < 100.0, "max error {max}");
    assert!(
        obs[100..]
            .iter()
            .all(|o| o.status.state == SyncState::Locked)
    );
}

#[test]
fn a_spurious_first_edge_does_not_stop_acquisition() {
    let w = World {
        spurious: vec![-0.3],
        ..World::default()
    };
    let (obs, _) = w.run(&test_config(), 60);
    assert!(first(&obs, 0, SyncState::Locked).is_some_and(|t| t < 25));
}
#[test]
fn drift_file_start_locks_sooner_and_is_written_back() {
    let w = World {
        pps_jitter_ns: 1000.0,
        walk_ppb: 0.2,
        ..World::default()
    };
    let cold = w.run(&test_config(), 400);
    let drift = DriftRecord {
        frequency_ppm: -10.0,
        skew_ppm: 0.01,
    };
    let warm = w.run_with(&test_config(), Some(drift), 400, |_, _| {});
    let lock = |o: &[Obs]| first(o, 0, SyncState::Locked).unwrap_or(i64::MAX);
    assert!(
        lock(&warm.0) <= lock(&cold.0),
        "warm {} cold {}",
        lock(&warm.0),
        lock(&cold.0)
    );
    let rec = cold.1.drift_record().expect("a drift record once locked");
    assert!((rec.frequency_ppm + 10.0).abs() < 0.05, "{rec:?}");
    assert!(rec.skew_ppm < 0.05);
    assert!(served_bad(&warm.0).is_empty() && served_bad(&cold.0).is_empty());
}

/// Found in the VM: after `systemctl restart` (clock right to microseconds,
/// drift file to 1 ppm) a pulse with ~100 µs of jitter was taken as spurious
/// and the train "moved", because the interval check narrowed to the noise
/// learner's prior before it had heard a pulse; the warm start locked long
/// after a cold one (86 s against 28 s there, 40 s against 22 s here).
#[test]
fn drift_file_start_with_a_jittery_pulse_keeps_the_train_and_locks_as_soon_as_cold() {
    let cfg = RefclockConfig {
        lock_max_error_ns: 2_000_000.0,
        holdover_max_root_dispersion_us: 5000.0,
        ..test_config()
    };
    let cold_world = World {
        pps_jitter_ns: 118_000.0,
        pps_latency_ns: 300_000.0,
        initial_offset_ns: 0.4e9,
        osc_ppb: -3_500.0,
        walk_ppb: 0.2,
        nmea_delay_ms: 150.0,
        nmea_jitter_ms: 2.0,
        ..World::default()
    };
    let lock = |o: &[Obs]| first(o, 0, SyncState::Locked).unwrap_or(i64::MAX);
    let (cold, cold_rc) = cold_world.run(&cfg, 120);
    let drift = cold_rc.drift_record();
    assert!(drift.is_some());
    for seed in 1..4 {
        // Restarted with the clock where the discipline left it.
        let warm_world = World {
            initial_offset_ns: -300_000.0,
            seed,
            ..cold_world.clone()
        };
        let (warm, warm_rc) = warm_world.run_with(&cfg, drift, 120, |_, _| {});
        assert_eq!(warm_rc.status().rejections.spurious_edges, 0, "seed {seed}");
        assert!(
            lock(&warm) <= lock(&cold) + 3,
            "seed {seed}: warm {} cold {}",
            lock(&warm),
            lock(&cold)
        );
        assert!(served_bad(&warm).is_empty());
    }
}

#[test]
fn no_drift_record_before_lock() {
    let (_, rc) = World::default().run(&test_config(), 3);
    assert!(rc.drift_record().is_none());
}

#[test]
fn the_clock_is_told_whether_it_is_synchronised() {
    let (_, rc) = World::default().run(&test_config(), 60);
    let (n, report) = rc.clock().last_report();
    assert!(n >= 50, "reported {n} times");
    assert!(report.synchronised);
    assert!(
        report.max_error_ns > report.est_error_ns && report.max_error_ns < 20_000.0,
        "{report:?}"
    );
}

#[test]
fn pi_jitter_is_smoothed_and_the_bound_covers_a_latency_bias() {
    let w = World {
        pps_jitter_ns: 1500.0,
        pps_latency_ns: 3000.0,
        walk_ppb: 0.5,
        initial_offset_ns: -0.7e9,
        osc_ppb: -23_000.0,
        nmea_delay_ms: 480.0,
        nmea_jitter_ms: 20.0,
        ..World::default()
    };
    let (obs, rc) = w.run(&test_config(), 1500);
    let v: Vec<f64> = obs[300..].iter().map(|o| o.error_ns + 3000.0).collect();
    let sd = (v.iter().map(|e| e * e).sum::<f64>() / v.len() as f64).sqrt();
    eprintln!(
        "error about the latency bias: {sd:.0} ns rms; jitter learned {:.0}",
        rc.status().jitter_ns
    );
    assert!(sd < 500.0, "rms about the bias {sd} for 1500 ns jitter");
    assert!(served_bad(&obs).is_empty());
    let j = rc.status().jitter_ns;
    assert!((1000.0..2200.0).contains(&j), "learned jitter {j}");
}
/// A PHC source declares how far its mapped edge may be off; the advertised
/// bound must grow by that much, while the measurement itself is unchanged.
#[test]
fn an_edges_declared_uncertainty_is_added_to_the_advertised_bound() {
    let plain = World::default();
    let declared = World {
        edge_uncertainty_ns: 50_000,
        ..World::default()
    };
    let (obs_plain, rc_plain) = plain.run(&test_config(), 400);
    let (obs_declared, rc_declared) = declared.run(&test_config(), 400);
    let (a, b) = (rc_plain.status(), rc_declared.status());
    assert_eq!(a.state, SyncState::Locked);
    assert_eq!(b.state, SyncState::Locked);
    assert_eq!(b.pps.last_edge_uncertainty_ns, 50_000);
    let grown = b.root_dispersion_ns - a.root_dispersion_ns;
    assert!(
        (grown - 50_000.0).abs() < 1.0,
        "bound {} vs {} ns",
        b.root_dispersion_ns,
        a.root_dispersion_ns
    );
    assert!(served_bad(&obs_plain).is_empty() && served_bad(&obs_declared).is_empty());
}

/// Found in issue 11: a frequency the clock refused (no CAP_SYS_TIME, a
/// kernel range check) still moved the discipline's model of the frequency
/// and of the phase it applied, so the model and the clock parted ways.
#[test]
fn a_refused_frequency_change_leaves_the_model_with_the_clocks_frequency() {
    let w = World::default();
    let mut refused_at_ppb = None;
    let (obs, rc) = w.run_with(&test_config(), None, 400, |o, rc| {
        if o.t_s == 200 {
            rc.clock().refuse_frequency();
            refused_at_ppb = Some(rc.clock().frequency_ppb());
        }
    });
    let held = refused_at_ppb.expect("ran past 200 s");
    assert!((rc.clock().frequency_ppb() - held).abs() < 1e-9);
    for o in obs.iter().filter(|o| o.t_s > 200) {
        let model_ppb = o.status.frequency_ppm * 1000.0;
        assert!(
            (model_ppb - held).abs() < 1e-6,
            "at {} s the model says {model_ppb} ppb, the clock runs at {held} ppb",
            o.t_s
        );
    }
}
