//! Behaviour of the whole discipline in the small simulated world of
//! [`crate::testsim`]: pairing, rejection, every state transition, leaps, drift.

use crate::Clock;
use crate::testsim::{Obs, World, error_stats, served_bad, test_config};
use crate::{DriftRecord, RefclockConfig, ReferenceId, SyncState};
use skytime_timebase::{Arrival, LeapChange, TimeSource, UnixNanos};

fn state_at(obs: &[Obs], t: i64) -> SyncState {
    obs[t as usize].status.state
}

fn first(obs: &[Obs], from: i64, state: SyncState) -> Option<i64> {
    obs.iter()
        .find(|o| o.t_s >= from && o.status.state == state)
        .map(|o| o.t_s)
}

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
fn every_nmea_delay_from_0_to_950_ms_labels_the_right_second() {
    for delay in (0..=950).step_by(50) {
        let w = World {
            nmea_delay_ms: delay as f64,
            nmea_jitter_ms: 20.0,
            initial_offset_ns: -0.7e9 + delay as f64 * 1e5,
            seed: delay as u64,
            ..World::default()
        };
        let (obs, rc) = w.run(&test_config(), 90);
        let st = rc.status();
        let last = obs.last().map(|o| o.error_ns).unwrap_or(f64::NAN);
        assert_eq!(
            st.state,
            SyncState::Locked,
            "delay {delay} ms: {}",
            st.state_reason
        );
        assert!(
            last.abs() < 1000.0,
            "delay {delay} ms: final error {last} ns"
        );
        assert_eq!(st.rejections.mislabelled_seconds, 0, "delay {delay} ms");
        assert!(served_bad(&obs).is_empty(), "delay {delay} ms");
        let learned = st.nmea.delay_learned_ms.unwrap_or(-1.0);
        assert!(
            (learned - delay as f64).abs() < 25.0,
            "delay {delay} ms learned as {learned}"
        );
    }
}

#[test]
fn a_glitch_of_one_or_two_sentences_is_served_through() {
    let w = World {
        wrong_second: vec![(200, 201, 1), (300, 302, -1)],
        ..World::default()
    };
    let (obs, rc) = w.run(&test_config(), 400);
    let st = rc.status();
    assert_eq!(st.rejections.mislabelled_seconds, 3);
    assert_eq!(st.rejections.whole_second_disagreements, 0);
    for o in &obs[150..] {
        assert_eq!(o.status.state, SyncState::Locked, "at {}", o.t_s);
        assert!(o.status.serves_synchronised(), "at {}", o.t_s);
    }
    assert!(
        obs[300]
            .status
            .label_disagreement
            .is_some_and(|d| d.offset_s == -1 && !d.serving_suspended)
    );
    let (_, max) = error_stats(&obs, 150);
    assert!(max < 100.0, "max error {max} ns");
    assert_eq!(rc.clock().steps().len(), 1);
    assert!(st.label_disagreement.is_none());
}

#[test]
fn a_longer_disagreement_stops_serving_then_resumes_without_a_step() {
    let w = World {
        wrong_second: vec![(200, 206, 1)],
        ..World::default()
    };
    let (obs, rc) = w.run(&test_config(), 400);
    let st = rc.status();
    // Within the grace (the first label arrives 350 ms into second 200).
    assert!(obs[200].status.serves_synchronised() && obs[201].status.serves_synchronised());
    // Beyond it: LI=3 / stratum 16, saying why, while the labels stay wrong.
    for o in &obs[203..206] {
        assert!(!o.status.serves_synchronised(), "served at {}", o.t_s);
        assert_eq!(o.status.stratum, 16);
        assert_eq!(o.status.state, SyncState::Unsynchronised);
        assert!(
            o.status.state_reason.contains("disagree"),
            "{}",
            o.status.state_reason
        );
        assert!(
            o.status
                .label_disagreement
                .is_some_and(|d| d.offset_s == 1 && d.serving_suspended)
        );
    }
    // The labels agree again: serving resumes, no step, no re-acquisition.
    for o in &obs[207..] {
        assert_eq!(o.status.state, SyncState::Locked, "at {}", o.t_s);
        assert!(o.status.serves_synchronised());
    }
    assert!(
        obs[207].status.state_reason.contains("agree"),
        "{}",
        obs[207].status.state_reason
    );
    assert_eq!(first(&obs, 150, SyncState::Acquiring), None);
    assert_eq!(st.rejections.mislabelled_seconds, 6);
    assert_eq!(st.rejections.whole_second_disagreements, 0);
    assert_eq!(rc.clock().steps().len(), 1);
    let (_, max) = error_stats(&obs, 150);
    assert!(max < 100.0, "max error {max} ns");
    assert!(served_bad(&obs).is_empty());
}

#[test]
fn a_disagreement_blocks_even_the_local_stratum_fallback() {
    let cfg = RefclockConfig {
        local_stratum: Some(10),
        ..test_config()
    };
    let w = World {
        wrong_second: vec![(200, 206, -2)],
        ..World::default()
    };
    let (obs, _) = w.run(&cfg, 220);
    for o in &obs[203..206] {
        assert_eq!(o.status.stratum, 16, "at {}", o.t_s);
    }
    assert_eq!(obs[210].status.stratum, 1);
}

#[test]
fn a_persistent_whole_second_disagreement_is_deliberately_followed() {
    let w = World {
        wrong_second: vec![(200, 10_000, 1)],
        ..World::default()
    };
    let cfg = test_config();
    let (obs, rc) = w.run(&cfg, 400);
    let st = rc.status();
    // Suspect: not served past the grace, not yet believed...
    assert_eq!(state_at(&obs, 215), SyncState::Unsynchronised);
    assert!(!obs[215].status.serves_synchronised());
    assert!(
        obs[215]
            .status
            .label_disagreement
            .is_some_and(|d| d.offset_s == 1
                && d.serving_suspended
                && d.unannounced_leap.is_none())
    );
    let served_wrong = obs[200..]
        .iter()
        .filter(|o| o.status.serves_synchronised() && (o.error_ns - 1e9).abs() > 1e6)
        .count();
    assert!(
        served_wrong <= 3,
        "served the disputed second for {served_wrong} s"
    );
    // ...then believed: re-acquired (not served meanwhile) on its second.
    let reacq = first(&obs, 200, SyncState::Acquiring).unwrap_or(0);
    assert!((228..=235).contains(&reacq), "re-acquired at {reacq}");
    assert!(!obs[reacq as usize].status.serves_synchronised());
    assert_eq!(st.rejections.whole_second_disagreements, 1);
    assert_eq!(rc.clock().steps().len(), 2);
    assert_eq!(st.state, SyncState::Locked);
    let last = obs.last().map(|o| o.error_ns).unwrap_or(0.0);
    assert!(
        (last - 1e9).abs() < 1000.0,
        "clock should now be on the receiver's second: {last}"
    );
}

/// A leap second at `at` that nobody announces (no announcement from the
/// receiver, no leap-seconds file): the receiver is right, the clock is not.
fn unannounced_leap(insert: bool) {
    let at = 1_483_228_800; // 2017-01-01T00:00:00Z
    let w = World {
        start_unix_s: at - 600,
        leap_insert_at: insert.then_some(at),
        leap_delete_at: (!insert).then_some(at),
        leap_announce_s: 0,
        tick_ms: 100,
        ..World::default()
    };
    let (obs, rc) = w.run(&test_config(), 900);
    let st = rc.status();
    // On the uniform true scale, UTC is one second behind after an insert
    // and one second ahead after a delete.
    let utc = if insert { -1e9 } else { 1e9 };
    // The first second labelled differently: 23:59:60 for an insert, the
    // true 23:59:59 (labelled 00:00:00) for a delete.
    let m = if insert { 600usize } else { 599 };
    assert!(obs[..m].iter().all(|o| o.status.leap == LeapChange::None));
    // Followed within a few seconds: one step, the filter kept (no re-acquiring).
    assert_eq!(rc.clock().steps().len(), 2, "{:?}", rc.clock().steps());
    assert_eq!(rc.clock().steps()[1], utc as i64);
    assert_eq!(st.rejections.whole_second_disagreements, 0);
    assert_eq!(first(&obs, 100, SyncState::Acquiring), None);
    let on_utc = obs[m..]
        .iter()
        .find(|o| (o.error_ns - utc).abs() < 1000.0)
        .map(|o| o.t_s as usize)
        .unwrap_or(usize::MAX);
    let served_old_second = obs[m..on_utc]
        .iter()
        .filter(|o| o.status.serves_synchronised())
        .count();
    eprintln!(
        "unannounced {}: on UTC at leap + {} s, the pre-leap second served for {served_old_second} s",
        if insert { "insert" } else { "delete" },
        on_utc - m
    );
    assert!(on_utc <= m + 4, "on UTC again at {on_utc}");
    assert!(served_old_second <= 3, "{served_old_second}");
    for o in &obs[on_utc..] {
        assert!(
            (o.error_ns - utc).abs() < 100.0,
            "at {}: {}",
            o.t_s,
            o.error_ns
        );
        assert_eq!(o.status.state, SyncState::Locked, "at {}", o.t_s);
        assert!(o.error_ns.abs() - 1e9 <= o.status.root_dispersion_ns);
    }
    assert!(
        obs[on_utc].status.state_reason.contains("unannounced leap"),
        "{}",
        obs[on_utc].status.state_reason
    );
    assert!(st.label_disagreement.is_none());
}

#[test]
fn an_unannounced_leap_insert_at_month_end_is_followed_within_seconds() {
    unannounced_leap(true);
}

#[test]
fn an_unannounced_leap_delete_at_month_end_is_followed_within_seconds() {
    unannounced_leap(false);
}

#[test]
fn a_one_second_change_in_mid_month_is_not_taken_for_a_leap() {
    let w = World {
        wrong_second: vec![(200, 10_000, -1)],
        tick_ms: 100,
        ..World::default()
    };
    let (obs, rc) = w.run(&test_config(), 240);
    assert!(
        obs[205]
            .status
            .label_disagreement
            .is_some_and(|d| d.unannounced_leap.is_none())
    );
    assert_eq!(rc.clock().steps().len(), 2);
    assert_eq!(
        first(&obs, 200, SyncState::Acquiring).map(|t| t >= 228),
        Some(true)
    );
}

#[test]
fn spurious_edges_are_rejected_and_do_not_disturb_the_clock() {
    let spurious: Vec<f64> = (0..60)
        .map(|i| 100.0 + i as f64 * 7.31 + 0.123 * (i % 7) as f64)
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
fn invalid_fix_rejects_pulses_holds_over_and_relocks() {
    let w = World {
        invalid_fix: vec![(200, 260)],
        ..World::default()
    };
    let (obs, rc) = w.run(&test_config(), 400);
    let st = rc.status();
    assert!(
        st.rejections.invalid_fix_epochs >= 59,
        "{:?}",
        st.rejections
    );
    assert!(st.rejections.edges_without_fix >= 58, "{:?}", st.rejections);
    assert_eq!(state_at(&obs, 199), SyncState::Locked);
    assert_eq!(state_at(&obs, 205), SyncState::Holdover);
    assert!(
        obs[205].status.serves_synchronised(),
        "short holdover still serves"
    );
    assert!(obs[205].status.holdover.is_some());
    let back = first(&obs, 260, SyncState::Locked).unwrap_or(i64::MAX);
    assert!(back < 275, "relocked at {back}");
    assert!(served_bad(&obs).is_empty());
}

fn outage_world() -> World {
    World {
        pps_outages: vec![(200, 700)],
        nmea_outages: vec![(200, 700)],
        walk_ppb: 2.0,
        pps_jitter_ns: 500.0,
        ..World::default()
    }
}

#[test]
fn holdover_runs_out_into_unsynchronised_then_reacquires() {
    let cfg = RefclockConfig {
        holdover_max_root_dispersion_us: 60.0,
        ..test_config()
    };
    let (obs, _) = outage_world().run(&cfg, 800);
    assert_eq!(state_at(&obs, 199), SyncState::Locked);
    let hold = first(&obs, 199, SyncState::Holdover).unwrap_or(0);
    assert!((201..=204).contains(&hold), "holdover at {hold}");
    let unsync = first(&obs, hold, SyncState::Unsynchronised).unwrap_or(i64::MAX);
    assert!(unsync < 700, "never ran out of holdover");
    let s = &obs[unsync as usize].status;
    assert_eq!(s.stratum, 16);
    assert!(!s.serves_synchronised());
    // Root dispersion grew at a learned rate while serving.
    let d0 = obs[(hold + 5) as usize].status.root_dispersion_ns;
    let d1 = obs[(hold + 50) as usize].status.root_dispersion_ns;
    assert!(d1 > d0 && obs[(hold + 5) as usize].status.dispersion_rate_ns_per_s > 0.0);
    // The reference returns: acquiring, then locked.
    let reacq = first(&obs, 700, SyncState::Acquiring).unwrap_or(i64::MAX);
    let relock = first(&obs, 700, SyncState::Locked).unwrap_or(i64::MAX);
    assert!(
        reacq <= relock && relock < 760,
        "reacquired {reacq} relocked {relock}"
    );
    assert!(
        served_bad(&obs).is_empty(),
        "served bad: {:?}",
        served_bad(&obs)
    );
}

#[test]
fn local_stratum_fallback_serves_locl_after_holdover() {
    let cfg = RefclockConfig {
        holdover_max_root_dispersion_us: 60.0,
        local_stratum: Some(10),
        ..test_config()
    };
    let (obs, _) = outage_world().run(&cfg, 690);
    let unsync = first(&obs, 200, SyncState::Unsynchronised).unwrap_or(0);
    assert!(unsync > 0);
    let s = &obs[unsync as usize + 1].status;
    assert_eq!((s.stratum, s.reference_id), (10, ReferenceId::LOCAL));
    // Before any lock, the fallback is never served.
    let (early, _) = outage_world().run(&cfg, 5);
    assert!(early.iter().all(|o| o.status.stratum == 16));
}

#[test]
fn holdover_bound_stays_honest_with_a_wandering_oscillator() {
    for seed in 1..=4 {
        let w = World {
            seed,
            pps_outages: vec![(600, 2400)],
            nmea_outages: vec![(600, 2400)],
            walk_ppb: 0.5,
            pps_jitter_ns: 1000.0,
            ..World::default()
        };
        let (obs, _) = w.run(&test_config(), 2500);
        assert!(
            served_bad(&obs).is_empty(),
            "seed {seed}: served bad {:?}",
            served_bad(&obs)
        );
    }
}

#[test]
fn a_real_phase_jump_reacquires_instead_of_rejecting_forever() {
    let w = World {
        clock_jumps: vec![(200, 50_000.0)],
        ..World::default()
    };
    let (obs, rc) = w.run(&test_config(), 300);
    let st = rc.status();
    assert!(st.rejections.outlier_edges >= 3, "{:?}", st.rejections);
    let reacq = first(&obs, 200, SyncState::Acquiring).unwrap_or(0);
    assert!((203..=206).contains(&reacq), "re-acquired at {reacq}");
    assert_eq!(st.state, SyncState::Locked);
    let (_, max) = error_stats(&obs, 230);
    assert!(max < 100.0, "back on time: {max}");
    // While the pulses disagreed with the clock, the bound covered the doubt;
    // only the half second between the jump and the next pulse, when nothing
    // could know, was served wrong.
    assert_eq!(served_bad(&obs), vec![200]);
}

#[test]
fn a_pps_latency_change_is_followed_and_the_doubt_advertised() {
    // Unobservable: the pulses move 50 µs late for good. The discipline must
    // follow the pulses (nothing else says what is right) and widen its bound
    // while they disagree with the clock.
    let w = World {
        latency_steps: vec![(200, 50_000.0)],
        ..World::default()
    };
    let (obs, _) = w.run(&test_config(), 300);
    for o in &obs[200..204] {
        assert!(
            o.status.root_dispersion_ns > 50_000.0 || !o.status.serves_synchronised(),
            "{}",
            o.t_s
        );
    }
    let last = obs.last().map(|o| o.error_ns).unwrap_or(0.0);
    assert!(
        (last + 50_000.0).abs() < 500.0,
        "following the moved pulses: {last}"
    );
}

#[test]
fn leap_second_insert_is_armed_on_the_last_day_and_kept_out_of_the_filter() {
    let at = 1_483_228_800; // 2017-01-01T00:00:00Z, after 2016-12-31T23:59:60Z
    let w = World {
        start_unix_s: at - 3600,
        leap_insert_at: Some(at),
        // Ticks every 100 ms, as the daemon does: one lands in the final second.
        tick_ms: 100,
        ..World::default()
    };
    let (obs, rc) = w.run(&test_config(), 4000);
    let before = &obs[3500].status;
    assert_eq!(before.leap, LeapChange::Insert);
    assert_eq!(before.leap_armed, LeapChange::Insert);
    assert!(before.leap_at.is_some_and(|t| t.secs() == at));
    let st = rc.status();
    assert_eq!(
        st.leap,
        LeapChange::None,
        "leap still pending after it passed"
    );
    assert_eq!(st.leap_armed, LeapChange::None);
    assert!(st.rejections.leap_window_edges >= 4, "{:?}", st.rejections);
    assert_eq!(st.rejections.whole_second_disagreements, 0);
    assert_eq!(rc.clock().steps().len(), 1, "only the start-up step");
    // Locked throughout, and on UTC (one second behind the uniform true scale).
    assert!(
        obs[100..]
            .iter()
            .all(|o| o.status.state == SyncState::Locked)
    );
    for o in &obs[3700..] {
        assert!(
            (o.error_ns + 1e9).abs() < 100.0,
            "at {}: {}",
            o.t_s,
            o.error_ns
        );
    }
    assert!(
        obs[3590..3610]
            .iter()
            .all(|o| o.error_ns.abs() < 100.0 || (o.error_ns + 1e9).abs() < 100.0)
    );
}

#[test]
fn leap_is_announced_and_armed_through_the_leap_second_itself() {
    // ntpd's rule: LI=1 until the inserted second is over. A kernel clock
    // reads 23:59:59 twice, and can read 00:00:00 for a moment before its tick
    // inserts the second: such a reading must neither end the leap nor clear
    // the kernel's flag (the kernel would then not insert it at all).
    let at = 1_483_228_800; // 2017-01-01T00:00:00Z, after 2016-12-31T23:59:60Z
    let w = World {
        start_unix_s: at - 600,
        leap_insert_at: Some(at),
        tick_ms: 100,
        ..World::default()
    };
    let mut checked = Vec::new();
    let (obs, rc) = w.run_with(&test_config(), None, 620, |o, rc| {
        let true_s = w.start_unix_s + o.t_s;
        if true_s == at - 1 {
            let early = Arrival {
                monotonic: rc.clock().arrival().monotonic,
                realtime: UnixNanos(at * 1_000_000_000 + 1_000),
            };
            rc.on_tick(early);
            assert_eq!(rc.clock().leap(), LeapChange::Insert, "flag cleared early");
        }
        // 23:59:58, 23:59:59, 23:59:60 and 00:00:00 (true seconds).
        if (at - 2..=at + 1).contains(&true_s) {
            assert_eq!(o.status.leap, LeapChange::Insert, "LI at true {true_s}");
            checked.push(true_s);
        }
    });
    assert_eq!(checked, (at - 2..=at + 1).collect::<Vec<_>>());
    assert_eq!(rc.status().leap, LeapChange::None, "still pending after");
    assert_eq!(rc.clock().leap(), LeapChange::None, "flag left set after");
    // The kernel did insert it: the clock is on UTC, one second behind the
    // uniform true scale.
    let last = obs.last().map(|o| o.error_ns).unwrap_or(0.0);
    assert!((last + 1e9).abs() < 1_000.0, "{last}");
}

#[test]
fn leap_is_not_armed_before_the_last_day() {
    // Announced on the 30th of December: pending (LI) but not armed.
    let at = 1_483_228_800;
    let w = World {
        start_unix_s: at - 86_400 - 3 * 3600,
        leap_insert_at: Some(at),
        leap_announce_s: 2 * 86_400,
        ..World::default()
    };
    let mut seen_pending = false;
    let (_, rc) = w.run_with(&test_config(), None, 3 * 3600 - 60, |o, _| {
        if o.status.leap == LeapChange::Insert {
            seen_pending = true;
            assert_eq!(
                o.status.leap_armed,
                LeapChange::None,
                "armed a day early at {}",
                o.t_s
            );
        }
    });
    assert!(seen_pending);
    assert_eq!(rc.clock().leap(), LeapChange::None);
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

#[test]
fn leap_seconds_file_announces_what_a_silent_receiver_does_not() {
    let at = 1_483_228_800; // the 2016-12-31 insert, in tzdata's file
    let cfg = RefclockConfig {
        leap_seconds_file: Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/leap-seconds.list"),
        ),
        ..test_config()
    };
    let w = World {
        start_unix_s: at - 1800,
        leap_insert_at: Some(at),
        leap_announce_s: 0,
        tick_ms: 100,
        ..World::default()
    };
    let mut tai_before = None;
    let (obs, rc) = w.run_with(&cfg, None, 2400, |o, rc| {
        if o.t_s == 1700 {
            tai_before = rc.clock().tai_s();
        }
    });
    // The clock's TAI offset comes from the file, and moves at the leap.
    assert_eq!(tai_before, Some(36));
    assert_eq!(rc.clock().tai_s(), Some(37));
    let before = &obs[1700].status;
    assert_eq!(before.leap, LeapChange::Insert);
    assert_eq!(before.leap_source, Some(crate::LeapSource::LeapFile));
    assert_eq!(before.leap_armed, LeapChange::Insert);
    let st = rc.status();
    assert_eq!(st.rejections.whole_second_disagreements, 0);
    assert!(
        obs[100..]
            .iter()
            .all(|o| o.status.state == SyncState::Locked)
    );
    // The world's true scale runs on uniformly: after the leap, UTC is one second behind it.
    assert!(
        served_bad(&obs[..1800]).is_empty(),
        "{:?}",
        served_bad(&obs[..1800])
    );
    assert!(
        obs[1805..]
            .iter()
            .all(|o| (o.error_ns + 1e9).abs() < 1000.0)
    );
}

/// Runs `f` with a subscriber that records every log line at info and above.
fn with_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    use std::sync::{Arc, Mutex};
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink(Arc::new(Mutex::new(Vec::new())));
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text =
        String::from_utf8_lossy(&sink.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    (out, text)
}

#[test]
fn receiver_and_leap_file_disagreeing_is_logged_once_at_warn_and_shown() {
    let cfg = RefclockConfig {
        leap_seconds_file: Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/leap-seconds.list"),
        ),
        ..test_config()
    };
    // (the world, what the receiver announces, what the file says)
    let insert_2016 = 1_483_228_800; // in the file
    let end_2025 = 1_767_225_600; // not in the file (which expires mid-2026)
    let cases = [
        (
            World {
                start_unix_s: end_2025 - 1800,
                leap_insert_at: Some(end_2025),
                tick_ms: 100,
                ..World::default()
            },
            LeapChange::Insert,
            LeapChange::None,
            end_2025,
        ),
        (
            World {
                start_unix_s: insert_2016 - 1800,
                leap_delete_at: Some(insert_2016),
                tick_ms: 100,
                ..World::default()
            },
            LeapChange::Delete,
            LeapChange::Insert,
            insert_2016,
        ),
    ];
    for (w, receiver, file, at) in cases {
        let ((obs, rc), logs) = with_logs(|| w.run(&cfg, 2400));
        let before = &obs[1700].status;
        let d = before
            .leap_sources_disagree
            .unwrap_or_else(|| panic!("{receiver:?} vs {file:?} not shown"));
        assert_eq!(
            (d.receiver, d.leap_file, d.at.secs(), d.following),
            (receiver, file, at, crate::LeapSource::Receiver)
        );
        assert_eq!(before.leap, receiver);
        assert_eq!(before.leap_source, Some(crate::LeapSource::Receiver));
        let warned: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("leap-seconds.list disagree"))
            .collect();
        assert_eq!(warned.len(), 1, "{logs}");
        let line = warned[0];
        eprintln!("{line}");
        assert!(line.contains(" WARN "), "{line}");
        assert!(line.contains(&format!("receiver={receiver:?}")), "{line}");
        assert!(
            line.contains(&format!("leap_seconds_file={file:?}")),
            "{line}"
        );
        // Once the midnight has passed, nothing is left to disagree about.
        assert_eq!(rc.status().leap_sources_disagree, None);
    }
}

#[test]
fn agreeing_or_silent_leap_sources_are_no_disagreement() {
    let cfg = RefclockConfig {
        leap_seconds_file: Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/leap-seconds.list"),
        ),
        ..test_config()
    };
    let at = 1_483_228_800;
    for announce_s in [6 * 3600, 0] {
        let w = World {
            start_unix_s: at - 1800,
            leap_insert_at: Some(at),
            leap_announce_s: announce_s,
            tick_ms: 100,
            ..World::default()
        };
        let ((obs, _), logs) = with_logs(|| w.run(&cfg, 1790));
        assert!(obs.iter().all(|o| o.status.leap_sources_disagree.is_none()));
        assert_eq!(obs[1700].status.leap, LeapChange::Insert);
        assert!(!logs.contains("disagree about"), "{logs}");
    }
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
