//! Steering: the commands given to the clock and what they did.
//!
//! Owns the model of the phase the discipline has applied (the integral of
//! every frequency correction the clock accepted, plus its steps), the
//! one-second phase term, and the start-up frequency. The model changes only
//! when the clock accepts a command, from the instant it says it took effect.

use crate::drift::DriftRecord;
use skytime_core::Clock;
use skytime_timebase::MonoNanos;
use tracing::{info, warn};

const NS: f64 = 1e9;
/// Largest initial frequency uncertainty assumed without a drift file, ppb.
const FREQ_PRIOR_PPB: f64 = 50_000.0;
/// Smallest frequency uncertainty taken from a drift file (temperature
/// changes across a restart), ppb.
const DRIFT_SKEW_FLOOR_PPB: f64 = 1_000.0;
/// How long the phase term of a correction lasts: the offset is removed
/// over the second until the next pulse, as chrony does.
const PHASE_TERM_NS: i64 = 1_000_000_000;

/// The clock commands and the applied-phase model.
#[derive(Debug)]
pub(super) struct Steering {
    /// Phase applied up to `set_at`, ns.
    applied_ns: f64,
    /// The frequency correction the clock accepted last, ppb.
    freq_ppb: f64,
    /// When the clock accepted it (monotonic).
    set_at: MonoNanos,
    /// Until when the last correction carries a phase term.
    phase_term_until: Option<MonoNanos>,
    /// The correction in force before the filter ran (drift file or clock), ppb.
    start_freq_ppb: f64,
    /// Its uncertainty, ppb.
    start_skew_ppb: f64,
    /// Whether the next filter start may step the clock.
    step_allowed: bool,
    /// Steps taken since start.
    steps: u32,
    /// The last step: when it took effect and by how much, ns.
    last_step: Option<(MonoNanos, i64)>,
    /// Whether the clock is refusing frequency changes (logged once).
    refusing: bool,
}

impl Steering {
    /// Steering from the drift file's frequency if there is one (given to
    /// the clock now), else from whatever the clock has.
    pub fn new<C: Clock>(clock: &C, drift: Option<DriftRecord>, now: MonoNanos) -> Self {
        let (mut start_freq_ppb, start_skew_ppb) = match drift {
            Some(d) => (
                d.frequency_ppm * 1000.0,
                (d.skew_ppm * 1000.0).max(DRIFT_SKEW_FLOOR_PPB),
            ),
            None => (clock.frequency_ppb(), FREQ_PRIOR_PPB),
        };
        if drift.is_some()
            && let Err(e) = clock.set_frequency_ppb(start_freq_ppb)
        {
            warn!(error = %e, "could not apply the drift file's frequency");
            start_freq_ppb = clock.frequency_ppb();
        }
        Self {
            applied_ns: 0.0,
            freq_ppb: start_freq_ppb,
            set_at: now,
            phase_term_until: None,
            start_freq_ppb,
            start_skew_ppb,
            step_allowed: true,
            steps: 0,
            last_step: None,
            refusing: false,
        }
    }

    /// Phase correction (ns) applied by the discipline up to `mono`: the
    /// integral of every frequency correction, plus steps.
    pub fn applied_at(&self, mono: MonoNanos) -> f64 {
        self.applied_ns + self.freq_ppb * (mono.nanos_since(self.set_at).max(0) as f64 / NS)
    }

    /// The frequency correction in force, ppb.
    pub fn frequency_ppb(&self) -> f64 {
        self.freq_ppb
    }

    /// The correction in force before the filter ran, ppb.
    pub fn start_frequency_ppb(&self) -> f64 {
        self.start_freq_ppb
    }

    /// The start-up frequency's uncertainty, ppb.
    pub fn start_skew_ppb(&self) -> f64 {
        self.start_skew_ppb
    }

    /// Asks the clock for `ppb` (clamped to ±`limit_ppb`; a non-finite
    /// request keeps the current one), decided at `mono`. The model moves
    /// only if the clock accepts, from when it took effect.
    pub fn set_frequency<C: Clock>(
        &mut self,
        clock: &C,
        ppb: f64,
        mono: MonoNanos,
        limit_ppb: f64,
    ) {
        let ppb = if ppb.is_finite() {
            ppb.clamp(-limit_ppb, limit_ppb)
        } else {
            self.freq_ppb
        };
        match clock.set_frequency_ppb(ppb) {
            // Never before the event that asked: a simulated clock may
            // report an instant behind the event's own stamp.
            Ok(effective) => {
                let from = effective.max(mono);
                self.applied_ns = self.applied_at(from);
                self.set_at = from;
                self.freq_ppb = ppb;
                if self.refusing {
                    self.refusing = false;
                    info!(
                        frequency_ppb = ppb,
                        "the clock accepts frequency changes again"
                    );
                }
            }
            Err(e) if !self.refusing => {
                self.refusing = true;
                warn!(error = %e, "setting the clock frequency failed; the model keeps the clock's frequency");
            }
            Err(_) => {}
        }
    }

    /// Starts the one-second phase term of a correction decided at `mono`.
    pub fn start_phase_term(&mut self, mono: MonoNanos) {
        self.phase_term_until = Some(mono.add_nanos(PHASE_TERM_NS));
    }

    /// Whether the phase term ran out by `mono` (then it is over).
    pub fn phase_term_ended(&mut self, mono: MonoNanos) -> bool {
        match self.phase_term_until {
            Some(until) if mono >= until => {
                self.phase_term_until = None;
                true
            }
            _ => false,
        }
    }

    /// Whether a correction's phase term is still running.
    pub fn phase_term_running(&self) -> bool {
        self.phase_term_until.is_some()
    }

    /// Whether the next filter start may step the clock.
    pub fn step_allowed(&self) -> bool {
        self.step_allowed
    }

    /// Allows (or forbids) a step at the next filter start.
    pub fn allow_step(&mut self, allowed: bool) {
        self.step_allowed = allowed;
    }

    /// Steps the clock by `offset_ns` at start-up, decided at `mono`; the
    /// step becomes part of the applied phase. False if the clock refused.
    pub fn step_at_start<C: Clock>(&mut self, clock: &C, offset_ns: i64, mono: MonoNanos) -> bool {
        match clock.step(offset_ns) {
            Ok(effective) => {
                self.applied_ns += offset_ns as f64;
                self.record_step(effective.max(mono), offset_ns);
                info!(step_ns = offset_ns, "clock stepped at start-up");
                true
            }
            Err(e) => {
                warn!(error = %e, step_ns = offset_ns, "clock step failed; slewing instead");
                false
            }
        }
    }

    /// Steps the clock by whole seconds for a leap second, decided at
    /// `mono`: UTC moved, not the phase, so the applied phase stays.
    /// Returns when it took effect, or the clock's refusal.
    pub fn step_for_leap<C: Clock>(
        &mut self,
        clock: &C,
        offset_ns: i64,
        mono: MonoNanos,
    ) -> Result<MonoNanos, skytime_core::ClockError> {
        let at = clock.step(offset_ns)?.max(mono);
        self.record_step(at, offset_ns);
        Ok(at)
    }

    fn record_step(&mut self, at: MonoNanos, offset_ns: i64) {
        self.steps += 1;
        self.last_step = Some((at, offset_ns));
    }

    /// `stamp` (ns) received at `mono` on the clock's current frame: one
    /// stamped before the last step took effect moves with it.
    pub fn on_current_frame(&self, stamp: i64, mono: MonoNanos) -> i64 {
        match self.last_step {
            Some((at, s)) if mono < at => stamp + s,
            _ => stamp,
        }
    }

    /// Steps taken since start.
    pub fn steps(&self) -> u32 {
        self.steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testsim::SimClock;

    const S: i64 = 1_000_000_000;

    fn clock() -> (SimClock, MonoNanos) {
        let c = SimClock::new(1_000 * S, 0.0, 0.0);
        let now = skytime_timebase::TimeSource::monotonic(&c);
        (c, now)
    }

    #[test]
    fn the_applied_phase_integrates_every_accepted_frequency() {
        let (c, t0) = clock();
        let mut st = Steering::new(&c, None, t0);
        st.set_frequency(&c, 1_000.0, t0, 500_000.0);
        assert!((st.applied_at(t0.add_nanos(2 * S)) - 2_000.0).abs() < 1e-9);
        st.set_frequency(&c, -500.0, t0.add_nanos(2 * S), 500_000.0);
        assert!((st.applied_at(t0.add_nanos(4 * S)) - 1_000.0).abs() < 1e-9);
        assert!((c.frequency_ppb() + 500.0).abs() < 1e-12);
    }

    #[test]
    fn a_refused_frequency_leaves_the_model_where_the_clock_is() {
        let (c, t0) = clock();
        let mut st = Steering::new(&c, None, t0);
        st.set_frequency(&c, 1_000.0, t0, 500_000.0);
        c.refuse_frequency();
        st.set_frequency(&c, 9_000.0, t0.add_nanos(S), 500_000.0);
        assert!((st.frequency_ppb() - 1_000.0).abs() < 1e-12);
        assert!((st.applied_at(t0.add_nanos(3 * S)) - 3_000.0).abs() < 1e-9);
    }

    #[test]
    fn requests_are_clamped_and_a_non_finite_one_keeps_the_frequency() {
        let (c, t0) = clock();
        let mut st = Steering::new(&c, None, t0);
        st.set_frequency(&c, 1e9, t0, 500_000.0);
        assert!((st.frequency_ppb() - 500_000.0).abs() < 1e-9);
        st.set_frequency(&c, f64::NAN, t0, 500_000.0);
        assert!((st.frequency_ppb() - 500_000.0).abs() < 1e-9);
    }

    #[test]
    fn a_drift_file_sets_the_start_frequency_with_a_floor_on_its_skew() {
        let (c, t0) = clock();
        let drift = DriftRecord {
            frequency_ppm: -12.5,
            skew_ppm: 0.01,
        };
        let st = Steering::new(&c, Some(drift), t0);
        assert!((st.start_frequency_ppb() + 12_500.0).abs() < 1e-9);
        assert!((c.frequency_ppb() + 12_500.0).abs() < 1e-9);
        assert!((st.start_skew_ppb() - DRIFT_SKEW_FLOOR_PPB).abs() < 1e-9);
    }

    #[test]
    fn a_refused_drift_frequency_starts_from_the_clocks_own() {
        let (c, t0) = clock();
        c.refuse_frequency();
        let drift = DriftRecord {
            frequency_ppm: -12.5,
            skew_ppm: 0.5,
        };
        let st = Steering::new(&c, Some(drift), t0);
        assert!(st.start_frequency_ppb().abs() < 1e-12);
        assert!(st.frequency_ppb().abs() < 1e-12);
    }

    #[test]
    fn steps_count_and_move_earlier_stamps_to_the_new_frame() {
        let (c, t0) = clock();
        let mut st = Steering::new(&c, None, t0);
        let later = t0.add_nanos(S);
        assert!(st.step_at_start(&c, -5_000, later));
        assert!((st.applied_at(later) + 5_000.0).abs() < 1e-9);
        assert_eq!(st.on_current_frame(100, t0), 100 - 5_000);
        assert_eq!(st.on_current_frame(100, later), 100);
        assert!(st.step_for_leap(&c, -S, later).is_ok());
        assert!((st.applied_at(later) + 5_000.0).abs() < 1e-9);
        assert_eq!(st.steps(), 2);
        assert_eq!(c.steps(), vec![-5_000, -S]);
    }

    #[test]
    fn the_phase_term_lasts_one_second() {
        let (c, t0) = clock();
        let mut st = Steering::new(&c, None, t0);
        st.start_phase_term(t0);
        assert!(st.phase_term_running());
        assert!(!st.phase_term_ended(t0.add_nanos(S - 1)));
        assert!(st.phase_term_ended(t0.add_nanos(S)));
        assert!(!st.phase_term_running());
    }
}
