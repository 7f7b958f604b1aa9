use super::*;

const MIDNIGHT_S: i64 = 1_483_228_800; // 2017-01-01T00:00:00Z, after 2016-12-31T23:59:60Z

fn clock(ppb: f64, offset_ns: f64, start_s: i64) -> SimClock<SteadyOscillator> {
    SimClock::new(
        SteadyOscillator::new(ppb),
        UnixNanos(start_s * NANOS_PER_SEC),
        offset_ns,
    )
}

#[test]
fn free_running_error_integrates_and_correction_cancels_it() {
    let c = clock(10_000.0, 1000.0, 1_700_000_000);
    c.advance_to(100 * NANOS_PER_SEC);
    let err = c.error_ns(UnixNanos(1_700_000_100 * NANOS_PER_SEC));
    assert!((err - (1000.0 + 1_000_000.0)).abs() < 1e-3, "{err}");
    c.set_frequency_ppb(-10_000.0).expect("set");
    c.advance_to(200 * NANOS_PER_SEC);
    let err2 = c.error_ns(UnixNanos(1_700_000_200 * NANOS_PER_SEC));
    assert!(
        (err2 - err).abs() < 1e-3,
        "correction holds: {err} -> {err2}"
    );
    c.step(-1_001_000).expect("step");
    let err3 = c.error_ns(UnixNanos(1_700_000_200 * NANOS_PER_SEC));
    assert!(err3.abs() < 1e-3);
    assert_eq!(c.step_offsets_ns(), vec![-1_001_000]);
    c.disturb(250.0);
    let err4 = c.error_ns(UnixNanos(1_700_000_200 * NANOS_PER_SEC));
    assert!((err4 - 250.0).abs() < 1e-3, "{err4}");
    assert_eq!(c.steps(), 1, "a disturbance is not a step");
}

#[test]
fn monotonic_ignores_steps_but_follows_frequency() {
    let c = clock(0.0, 0.0, 1_700_000_000);
    let m0 = c.monotonic();
    c.set_frequency_ppb(1000.0).expect("set");
    c.advance_to(10 * NANOS_PER_SEC);
    c.step(5 * NANOS_PER_SEC).expect("step");
    assert_eq!(c.monotonic().nanos_since(m0), 10 * NANOS_PER_SEC + 10_000);
}

#[test]
fn frequency_is_clamped_like_the_kernel() {
    let c = clock(0.0, 0.0, 0);
    c.set_frequency_ppb(1e9).expect("set");
    assert!((c.frequency_ppb() - MAX_FREQUENCY_PPB).abs() < 1e-9);
    assert!(c.set_frequency_ppb(f64::NAN).is_err());
}

#[test]
fn armed_insert_repeats_235959_once_then_waits_for_the_flag() {
    let c = clock(0.0, 0.0, MIDNIGHT_S - 10);
    c.set_tai_offset_s(36).expect("tai");
    c.set_leap(LeapChange::Insert).expect("arm");
    assert_eq!(c.leap_state(), KernelLeapState::Insert);
    c.advance_to(9 * NANOS_PER_SEC + 500_000_000);
    assert_eq!(c.realtime().secs(), MIDNIGHT_S - 1);
    c.advance_to(10 * NANOS_PER_SEC + 500_000_000); // true 23:59:60.5 reads 23:59:59.5
    assert_eq!(
        c.realtime(),
        UnixNanos((MIDNIGHT_S - 1) * NANOS_PER_SEC + 500_000_000)
    );
    assert_eq!(c.leap_state(), KernelLeapState::Oop);
    assert_eq!(c.tai_offset_s(), Some(37), "the kernel moves TAI−UTC");
    c.advance_to(11 * NANOS_PER_SEC + 500_000_000);
    assert_eq!(c.realtime().secs(), MIDNIGHT_S);
    assert_eq!(c.leap_state(), KernelLeapState::Wait);
    // Still flagged (TIME_WAIT): no second leap the next midnight.
    c.advance_to((86_400 + 20) * NANOS_PER_SEC);
    assert_eq!(c.leap_steps_s(), -1);
    assert_eq!(c.leap_state(), KernelLeapState::Wait);
    assert_eq!(c.leap_flag(), LeapChange::Insert);
    c.set_leap(LeapChange::None).expect("clear");
    assert_eq!(c.leap_state(), KernelLeapState::Ok);
    assert_eq!(
        c.leap_requests(),
        vec![
            (0, LeapChange::Insert),
            ((86_400 + 20) * NANOS_PER_SEC, LeapChange::None)
        ]
    );
}

#[test]
fn armed_delete_skips_235959() {
    let c = clock(0.0, 0.0, MIDNIGHT_S - 10);
    c.set_tai_offset_s(37).expect("tai");
    c.set_leap(LeapChange::Delete).expect("arm");
    c.advance_to(8 * NANOS_PER_SEC + 500_000_000); // 23:59:58.5
    assert_eq!(c.realtime().secs(), MIDNIGHT_S - 2);
    c.advance_to(9 * NANOS_PER_SEC + 500_000_000); // would be 23:59:59.5
    assert_eq!(c.realtime().secs(), MIDNIGHT_S);
    assert_eq!(c.leap_steps_s(), 1);
    assert_eq!(c.leap_state(), KernelLeapState::Wait);
    assert_eq!(c.tai_offset_s(), Some(36));
}

#[test]
fn disarming_before_midnight_prevents_the_leap() {
    let c = clock(0.0, 0.0, MIDNIGHT_S - 10);
    c.set_leap(LeapChange::Insert).expect("arm");
    c.set_leap(LeapChange::None).expect("disarm");
    c.advance_to(20 * NANOS_PER_SEC);
    assert_eq!(c.leap_steps_s(), 0);
    assert_eq!(c.leap_state(), KernelLeapState::Ok);
}

#[test]
fn a_steady_oscillator_changed_midway_integrates_each_piece() {
    let c = clock(1000.0, 0.0, 0);
    c.advance_to(10 * NANOS_PER_SEC);
    c.with_oscillator(|o| o.set_freq_ppb(-500.0));
    c.advance_to(20 * NANOS_PER_SEC);
    let err = c.error_ns(UnixNanos(20 * NANOS_PER_SEC));
    assert!((err - 5_000.0).abs() < 1e-6, "{err}");
    assert!((c.rate_ppb() + 500.0).abs() < 1e-9);
    c.report_sync(SyncReport {
        synchronised: true,
        ..SyncReport::default()
    })
    .expect("report");
    assert_eq!(c.report_count(), 1);
    assert!(c.last_report().synchronised);
}
