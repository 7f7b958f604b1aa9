//! Losing the reference: invalid fixes, outages, holdover and its bound, phase jumps.

use super::*;

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
    let s = &at(&obs, unsync).status;
    assert_eq!(s.stratum, 16);
    assert!(!s.serves_synchronised());
    // Root dispersion grew at a learned rate while serving.
    let d0 = at(&obs, hold + 5).status.root_dispersion_ns;
    let d1 = at(&obs, hold + 50).status.root_dispersion_ns;
    assert!(d1 > d0 && at(&obs, hold + 5).status.dispersion_rate_ns_per_s > 0.0);
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
    let s = &at(&obs, unsync + 1).status;
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
