//! Behaviour of the whole discipline in the small simulated world of
//! [`crate::testsim`]: pairing, rejection, every state transition, leaps, drift.

use crate::SyncState;
use crate::testsim::{World, error_stats, served_bad, test_config};

#[test]
fn chrony_anchor_like_world_locks_fast_and_tracks_to_nanoseconds() {
    let w = World::default();
    let (obs, rc) = w.run(&test_config(), 900);
    let lock = obs
        .iter()
        .find(|o| o.status.state == SyncState::Locked)
        .map(|o| o.t_s);
    let (rms, max) = error_stats(&obs, 300);
    eprintln!(
        "lock at {lock:?}, rms {rms:.1} ns, max {max:.1} ns, steps {:?}",
        rc.clock().steps()
    );
    let st = rc.status();
    eprintln!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
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
}
