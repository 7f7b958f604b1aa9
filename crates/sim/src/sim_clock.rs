//! The simulator's disciplined clock: `skytime-core`'s one [`CoreSimClock`]
//! (frequency correction, steps, the kernel's clamping and leap seconds with
//! TIME_WAIT) run by this crate's [`Oscillator`], so the real discipline steers
//! it exactly as it steers `clock_adjtime`.

use crate::oscillator::Oscillator;
pub use skytime_core::sim_clock::MAX_FREQUENCY_PPB;
use skytime_core::{FreeRunning, SimClock as CoreSimClock};

/// The simulated disciplined clock on the scenario's oscillator. Cloning
/// shares it: the runner advances true time through one handle while the
/// refclock steers another.
pub type SimClock = CoreSimClock<Oscillator>;

impl FreeRunning for Oscillator {
    fn advance_to_s(&mut self, true_s: f64) {
        self.advance_to(true_s);
    }
    fn phase_gain_ns(&self) -> f64 {
        Oscillator::phase_gain_ns(self)
    }
    fn freq_error_ppb(&self) -> f64 {
        Oscillator::freq_error_ppb(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oscillator::OscillatorParams;
    use skytime_core::{Clock, KernelLeapState};
    use skytime_timebase::{LeapChange, NANOS_PER_SEC, TimeSource, UnixNanos};

    fn clock(ppm: f64, offset_ns: f64, start_s: i64) -> SimClock {
        let osc = Oscillator::new(
            &OscillatorParams {
                initial_freq_ppm: ppm,
                ..Default::default()
            },
            1,
        );
        SimClock::new(osc, UnixNanos(start_s * NANOS_PER_SEC), offset_ns)
    }

    #[test]
    fn the_oscillator_drives_the_error_and_the_correction_cancels_it() {
        let c = clock(10.0, 1000.0, 1_700_000_000);
        c.advance_to(100 * NANOS_PER_SEC);
        let err = c.error_ns(UnixNanos(1_700_000_100 * NANOS_PER_SEC));
        assert!((err - (1000.0 + 1_000_000.0)).abs() < 1e-3, "{err}");
        assert!((c.with_oscillator(|o| o.freq_error_ppb()) - 10_000.0).abs() < 1e-9);
        c.set_frequency_ppb(-10_000.0).expect("set");
        c.advance_to(200 * NANOS_PER_SEC);
        let err2 = c.error_ns(UnixNanos(1_700_000_200 * NANOS_PER_SEC));
        assert!(
            (err2 - err).abs() < 1e-3,
            "correction should hold the error: {err} -> {err2}"
        );
        assert!(c.rate_ppb().abs() < 1e-9);
    }

    #[test]
    fn a_leap_on_the_scenario_oscillator_acts_once() {
        let midnight = 1_483_228_800; // 2017-01-01T00:00:00Z
        let c = clock(1.0, 0.0, midnight - 10);
        c.set_leap(LeapChange::Insert).expect("arm");
        c.advance_to(10 * NANOS_PER_SEC + 500_000_000);
        assert_eq!(c.realtime().secs(), midnight - 1, "23:59:60 reads 23:59:59");
        c.advance_to((86_400 + 20) * NANOS_PER_SEC);
        assert_eq!(c.leap_steps_s(), -1);
        assert_eq!(c.leap_state(), KernelLeapState::Wait);
    }
}
