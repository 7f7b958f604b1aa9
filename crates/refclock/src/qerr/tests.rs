//! The pairing with messages missing, duplicated, late, invalid and in GNSS
//! time; and a property test: whatever the fate of each message, a correction
//! is always the one of the edge's own pulse.

use super::*;
use proptest::prelude::*;
use skytime_core::receiver::TimeBase;

/// 2026-01-01T00:00:00Z.
const START_UNIX_S: i64 = 1_767_225_600;
const S: i64 = 1_000_000_000;

/// The TIM-TP a receiver sends for the pulse that starts UTC second `unix_s`.
fn report_for(unix_s: i64, q_err_ps: i32) -> TimePulseReport {
    let t = unix_s - GPS_EPOCH_UNIX_S;
    TimePulseReport {
        tow_ms: u32::try_from(t.rem_euclid(WEEK_S) * 1000).expect("fits"),
        tow_sub_ms: 0,
        q_err_ps,
        week: u16::try_from(t.div_euclid(WEEK_S)).expect("fits"),
        time_base: TimeBase::Utc,
        utc_available: true,
        raim: 2,
        q_err_valid: true,
        time_ref_gnss: 0,
        utc_standard: 3,
    }
}

/// Edge k is stamped at k seconds on the local clock and labelled START + k.
fn edge_ns(k: i64) -> i64 {
    k * S + 123_456
}

#[test]
fn each_message_pairs_with_the_next_edge() {
    let mut q = QerrPairing::new();
    for k in 1..=5 {
        q.on_tim_tp(
            &report_for(START_UNIX_S + k, 1000 * i32::try_from(k).unwrap()),
            edge_ns(k) - 600_000_000,
        );
        assert_eq!(
            q.on_edge(edge_ns(k), START_UNIX_S + k),
            QerrDecision::Apply {
                q_err_ps: 1000 * i32::try_from(k).unwrap()
            }
        );
    }
    assert_eq!(q.counters().applied, 5);
}

#[test]
fn a_missing_message_gives_no_correction_and_the_next_pairs_again() {
    let mut q = QerrPairing::new();
    q.on_tim_tp(
        &report_for(START_UNIX_S + 1, -3000),
        edge_ns(1) - 500_000_000,
    );
    assert!(matches!(
        q.on_edge(edge_ns(1), START_UNIX_S + 1),
        QerrDecision::Apply { .. }
    ));
    assert_eq!(
        q.on_edge(edge_ns(2), START_UNIX_S + 2),
        QerrDecision::Skip(SkipReason::NoMessage)
    );
    q.on_tim_tp(
        &report_for(START_UNIX_S + 3, 7000),
        edge_ns(3) - 500_000_000,
    );
    assert_eq!(
        q.on_edge(edge_ns(3), START_UNIX_S + 3),
        QerrDecision::Apply { q_err_ps: 7000 }
    );
}

#[test]
fn a_duplicate_is_the_same_pulse_and_the_last_one_wins() {
    let mut q = QerrPairing::new();
    q.on_tim_tp(
        &report_for(START_UNIX_S + 1, 5000),
        edge_ns(1) - 900_000_000,
    );
    q.on_tim_tp(
        &report_for(START_UNIX_S + 1, 5200),
        edge_ns(1) - 100_000_000,
    );
    assert_eq!(
        q.on_edge(edge_ns(1), START_UNIX_S + 1),
        QerrDecision::Apply { q_err_ps: 5200 }
    );
    assert_eq!(
        q.on_edge(edge_ns(2), START_UNIX_S + 2),
        QerrDecision::Skip(SkipReason::NoMessage)
    );
}

#[test]
fn a_late_message_is_never_applied_to_the_following_edge() {
    let mut q = QerrPairing::new();
    // The message for pulse 1 arrives after edge 1, just before edge 2.
    assert_eq!(
        q.on_edge(edge_ns(1), START_UNIX_S + 1),
        QerrDecision::Skip(SkipReason::NoMessage)
    );
    q.on_tim_tp(
        &report_for(START_UNIX_S + 1, 9999),
        edge_ns(1) + 950_000_000,
    );
    assert_eq!(
        q.on_edge(edge_ns(2), START_UNIX_S + 2),
        QerrDecision::Skip(SkipReason::NoMessage)
    );
    // Message 2 arrived late and message 3 on time: edge 3 gets its own.
    q.on_tim_tp(
        &report_for(START_UNIX_S + 2, 2222),
        edge_ns(2) + 100_000_000,
    );
    q.on_tim_tp(
        &report_for(START_UNIX_S + 3, 3333),
        edge_ns(2) + 400_000_000,
    );
    assert_eq!(
        q.on_edge(edge_ns(3), START_UNIX_S + 3),
        QerrDecision::Apply { q_err_ps: 3333 }
    );
}

#[test]
fn an_invalid_qerr_is_skipped() {
    let mut q = QerrPairing::new();
    let mut r = report_for(START_UNIX_S + 1, 4000);
    r.q_err_valid = false;
    q.on_tim_tp(&r, edge_ns(1) - S / 2);
    assert_eq!(
        q.on_edge(edge_ns(1), START_UNIX_S + 1),
        QerrDecision::Skip(SkipReason::QerrInvalid)
    );
    assert_eq!(q.counters().invalid, 1);
}

#[test]
fn gps_time_base_needs_gps_minus_utc() {
    let mut gps = report_for(START_UNIX_S + 1 + 18, 1500);
    gps.time_base = TimeBase::Gnss;
    let mut q = QerrPairing::new();
    q.on_tim_tp(&gps, edge_ns(1) - S / 2);
    assert_eq!(
        q.on_edge(edge_ns(1), START_UNIX_S + 1),
        QerrDecision::Skip(SkipReason::UnknownTimeBase)
    );
    q.set_gps_minus_utc_s(Some(18));
    q.on_tim_tp(&gps, edge_ns(1) - S / 2);
    assert_eq!(
        q.on_edge(edge_ns(1), START_UNIX_S + 1),
        QerrDecision::Apply { q_err_ps: 1500 }
    );
    // A wrong GPS−UTC names another second: no correction rather than a wrong one.
    q.set_gps_minus_utc_s(Some(17));
    let mut gps2 = report_for(START_UNIX_S + 2 + 18, 1600);
    gps2.time_base = TimeBase::Gnss;
    q.on_tim_tp(&gps2, edge_ns(2) - S / 2);
    assert_eq!(
        q.on_edge(edge_ns(2), START_UNIX_S + 2),
        QerrDecision::Skip(SkipReason::NoMessage)
    );
    let mut beidou = gps;
    beidou.time_ref_gnss = 2;
    q.on_tim_tp(&beidou, edge_ns(3) - S / 2);
    assert_eq!(
        q.on_edge(edge_ns(3), START_UNIX_S + 3),
        QerrDecision::Skip(SkipReason::UnknownTimeBase)
    );
}

#[test]
fn a_pulse_off_the_second_is_skipped() {
    let mut q = QerrPairing::new();
    let mut r = report_for(START_UNIX_S + 1, 100);
    r.tow_ms += 500;
    q.on_tim_tp(&r, edge_ns(1) - S / 2);
    assert_eq!(
        q.on_edge(edge_ns(1), START_UNIX_S + 1),
        QerrDecision::Skip(SkipReason::OffGrid)
    );
}

#[test]
fn pairs_across_the_week_boundary() {
    // Sunday 00:00:00 GPS week start in UTC terms.
    let t = GPS_EPOCH_UNIX_S + 2400 * WEEK_S;
    let mut q = QerrPairing::new();
    for (k, s) in [(1, t - 1), (2, t), (3, t + 1)] {
        q.on_tim_tp(
            &report_for(s, i32::try_from(k).unwrap()),
            edge_ns(k) - S / 2,
        );
        assert_eq!(
            q.on_edge(edge_ns(k), s),
            QerrDecision::Apply {
                q_err_ps: i32::try_from(k).unwrap()
            }
        );
    }
}

/// What happens to one pulse's message.
#[derive(Copy, Clone, Debug)]
enum Fate {
    OnTime,
    Dropped,
    Duplicated,
    /// Arrives this many ms after its own edge.
    Late(i64),
    Invalid,
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        6 => Just(Fate::OnTime),
        2 => Just(Fate::Dropped),
        2 => Just(Fate::Duplicated),
        2 => (1i64..2500).prop_map(Fate::Late),
        1 => Just(Fate::Invalid),
    ]
}

proptest! {
    /// Never a wrong correction; always one when the pulse's message came in time.
    #[test]
    fn a_correction_is_always_the_edges_own(
        fates in prop::collection::vec(fate(), 1..120),
        q_errs in prop::collection::vec(-10_400i32..=10_400, 120),
        lead_ms in prop::collection::vec(1i64..990, 120),
        missing_edges in prop::collection::vec(any::<bool>(), 120),
    ) {
        // Events on one clock: (time, is_edge, pulse index).
        let mut events: Vec<(i64, u8, usize)> = Vec::new();
        for (k, f) in fates.iter().enumerate() {
            let edge = edge_ns(i64::try_from(k).unwrap() + 1);
            let before = edge - lead_ms[k] * 1_000_000;
            match f {
                Fate::OnTime | Fate::Invalid => events.push((before, 0, k)),
                Fate::Dropped => {}
                Fate::Duplicated => {
                    events.push((before, 0, k));
                    events.push((before + 1, 0, k));
                }
                Fate::Late(ms) => events.push((edge + ms * 1_000_000, 0, k)),
            }
            // Some pulses are lost on the way (no edge), their messages still come.
            if !missing_edges[k] || k % 7 != 3 {
                events.push((edge, 1, k));
            }
        }
        events.sort();
        let mut q = QerrPairing::new();
        for (t, kind, k) in events {
            let label = START_UNIX_S + i64::try_from(k).unwrap() + 1;
            if kind == 0 {
                let mut r = report_for(label, q_errs[k]);
                r.q_err_valid = !matches!(fates[k], Fate::Invalid);
                q.on_tim_tp(&r, t);
                continue;
            }
            let decision = q.on_edge(t, label);
            if let QerrDecision::Apply { q_err_ps } = decision {
                prop_assert_eq!(q_err_ps, q_errs[k], "pulse {} got another pulse's qErr", k);
            }
            if matches!(fates[k], Fate::OnTime | Fate::Duplicated) {
                prop_assert_eq!(decision, QerrDecision::Apply { q_err_ps: q_errs[k] });
            } else {
                prop_assert!(matches!(decision, QerrDecision::Skip(_)), "{:?} for {:?}", decision, fates[k]);
            }
        }
    }
}
