//! Announced leap seconds: arming, the window kept out of the filter, the
//! leap-seconds file and its disagreements with the receiver.

use super::*;

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

#[test]
fn an_expired_leap_file_is_said_once_at_warn_and_shown() {
    let cfg = RefclockConfig {
        leap_seconds_file: Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/leap-seconds.list"),
        ),
        ..test_config()
    };
    let expires_s = 3_991_593_600 - 2_208_988_800; // the file's #@ line, as Unix seconds
    let w = World {
        start_unix_s: expires_s - 120,
        tick_ms: 100,
        ..World::default()
    };
    let ((obs, _), logs) = with_logs(|| w.run(&cfg, 300));
    let warned: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("leap-seconds file has expired"))
        .collect();
    assert_eq!(warned.len(), 1, "{logs}");
    assert!(warned[0].contains(" WARN "), "{}", warned[0]);
    assert!(warned[0].contains("2026-06-28"), "{}", warned[0]);
    for o in &obs {
        assert_eq!(
            o.status.leap_file_expires.map(|e| e.secs()),
            Some(expires_s)
        );
    }
    // Before the expiry the file is trusted and nothing is said.
    let early = World {
        start_unix_s: expires_s - 1_000,
        tick_ms: 100,
        ..World::default()
    };
    let (_, logs) = with_logs(|| early.run(&cfg, 300));
    assert!(!logs.contains("leap-seconds file has expired"), "{logs}");
}
