//! The receiver's labels: pairing at every delay, disagreements by whole seconds,
//! and leap seconds nobody announced.

use super::*;

#[test]
fn every_nmea_delay_from_0_to_950_ms_labels_the_right_second() {
    for delay in (0..=950u32).step_by(50) {
        let w = World {
            nmea_delay_ms: f64::from(delay),
            nmea_jitter_ms: 20.0,
            initial_offset_ns: -0.7e9 + f64::from(delay) * 1e5,
            seed: u64::from(delay),
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
            (learned - f64::from(delay)).abs() < 25.0,
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
    assert!(!at(&obs, reacq).status.serves_synchronised());
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
    let utc_s: i32 = if insert { -1 } else { 1 };
    let utc = f64::from(utc_s) * 1e9;
    // The first second labelled differently: 23:59:60 for an insert, the
    // true 23:59:59 (labelled 00:00:00) for a delete.
    let m = if insert { 600usize } else { 599 };
    assert!(obs[..m].iter().all(|o| o.status.leap == LeapChange::None));
    // Followed within a few seconds: one step, the filter kept (no re-acquiring).
    assert_eq!(rc.clock().steps().len(), 2, "{:?}", rc.clock().steps());
    assert_eq!(rc.clock().steps()[1], i64::from(utc_s) * 1_000_000_000);
    assert_eq!(st.rejections.whole_second_disagreements, 0);
    assert_eq!(first(&obs, 100, SyncState::Acquiring), None);
    let on_utc = obs[m..]
        .iter()
        .find(|o| (o.error_ns - utc).abs() < 1000.0)
        .map(|o| usize::try_from(o.t_s).expect("a second after the start"))
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
