//! The simulated receiver's time pulse as a u-blox timing receiver makes it:
//! the pulse can only start on a tick of the receiver's own clock (48 MHz on
//! an M8T: ticks 20.8 ns apart), so it leaves on the tick nearest the true
//! second, up to half a tick off. The receiver knows by how much and says so
//! in UBX-TIM-TP before the pulse: qErr = true − emitted, in ps. The tick
//! grid slides against the true seconds at the receiver clock's frequency
//! error, which draws the sawtooth. Survey-in progress (TIM-SVIN) too.

use crate::scenario::ReceiverSection;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, StandardNormal};
use skytime_gnss::ubx::messages::{SurveyIn, TimeBase, TimePulseReport};
use skytime_timebase::UtcSecond;

/// Unix time of the GPS epoch, 1980-01-06 00:00:00 UTC.
const GPS_EPOCH_UNIX_S: i64 = 315_964_800;
/// Seconds in a GNSS week.
const WEEK_S: i64 = 604_800;
/// Accuracy of a one-second position average at the start of a survey-in, mm.
const SURVEY_FIRST_ACCURACY_MM: f64 = 30_000.0;

/// One pulse: how far from the true second it leaves, and what TIM-TP says.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct PulseTiming {
    /// Emitted minus true, ns (the quantisation error made).
    pub emitted_offset_ns: f64,
    /// What the receiver reports: true − emitted (plus its own small error), ps.
    pub q_err_ps: i32,
}

/// The receiver's clock ticks, seen against true seconds.
pub struct TimingReceiver {
    cfg: ReceiverSection,
    /// Tick period, ns (0: no quantisation).
    tick_ns: f64,
    /// Where the first tick at or after the current true second lies, ns after it.
    phase_ns: f64,
    /// The receiver clock's frequency error now, ppb.
    freq_ppb: f64,
    rng: Xoshiro256PlusPlus,
    current: PulseTiming,
}

impl TimingReceiver {
    /// The receiver of `[receiver]`, with its own random stream.
    pub fn new(cfg: &ReceiverSection, mut rng: Xoshiro256PlusPlus) -> Self {
        let tick_ns = if cfg.timing_clock_hz > 0.0 {
            1e9 / cfg.timing_clock_hz
        } else {
            0.0
        };
        let start: f64 = StandardNormal.sample(&mut rng);
        let mut r = Self {
            cfg: cfg.clone(),
            tick_ns,
            phase_ns: tick_ns * (0.5 + 0.25 * start.clamp(-2.0, 2.0)),
            freq_ppb: cfg.clock_offset_ppb,
            rng,
            current: PulseTiming {
                emitted_offset_ns: 0.0,
                q_err_ps: 0,
            },
        };
        r.current = r.quantise();
        r
    }

    fn quantise(&mut self) -> PulseTiming {
        // Draw whether used or not, so settings do not shift other draws.
        let noise: f64 = StandardNormal.sample(&mut self.rng);
        if self.tick_ns <= 0.0 {
            return PulseTiming {
                emitted_offset_ns: 0.0,
                q_err_ps: 0,
            };
        }
        // The nearest tick: the one after (phase) or the one before (phase − tick).
        let emitted = if self.phase_ns <= self.tick_ns / 2.0 {
            self.phase_ns
        } else {
            self.phase_ns - self.tick_ns
        };
        let q_err_ps = (-emitted * 1000.0 + self.cfg.q_err_noise_ps * noise).round();
        #[expect(
            clippy::cast_possible_truncation,
            reason = "clamped to i32's range first; a whole number after round()"
        )]
        let q_err_ps = q_err_ps.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32;
        PulseTiming {
            emitted_offset_ns: emitted,
            q_err_ps,
        }
    }

    /// The pulse of the current second, and moves on to the next one, whose
    /// timing [`Self::upcoming`] then gives (the receiver knows it a second ahead).
    pub fn advance(&mut self) -> PulseTiming {
        let this = self.current;
        let walk: f64 = StandardNormal.sample(&mut self.rng);
        self.freq_ppb += self.cfg.clock_random_walk_ppb * walk;
        if self.tick_ns > 0.0 {
            // A clock fast by y ppb ticks y ns early per second: the grid slides back.
            self.phase_ns = (self.phase_ns - self.freq_ppb).rem_euclid(self.tick_ns);
        }
        self.current = self.quantise();
        this
    }

    /// The next pulse (the one [`Self::advance`] returns next).
    pub fn upcoming(&self) -> PulseTiming {
        self.current
    }

    /// TIM-TP for the pulse labelled `label` (UTC time base, as configured on
    /// the appliance), with qErr from `timing`.
    pub fn tim_tp(label: UtcSecond, timing: PulseTiming) -> TimePulseReport {
        let since = label.unix_secs() - GPS_EPOCH_UNIX_S;
        TimePulseReport {
            tow_ms: u32::try_from(since.rem_euclid(WEEK_S) * 1000).unwrap_or(0),
            tow_sub_ms: 0,
            q_err_ps: timing.q_err_ps,
            week: u16::try_from(since.div_euclid(WEEK_S)).unwrap_or(u16::MAX),
            time_base: TimeBase::Utc,
            utc_available: true,
            raim: 2,
            q_err_valid: true,
            time_ref_gnss: 0,
            utc_standard: 0,
        }
    }

    /// Survey-in progress after `elapsed_s` seconds of it: the mean position's
    /// accuracy falls as 1/√t; the survey ends once it has run its minimum
    /// time and reached its accuracy. None when the scenario has no survey-in.
    pub fn survey_in(&self, elapsed_s: u64) -> Option<SurveyIn> {
        if self.cfg.survey_in_min_s == 0 {
            return None;
        }
        let accuracy_mm = SURVEY_FIRST_ACCURACY_MM / ((elapsed_s + 1) as f64).sqrt();
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "positive and at most SURVEY_FIRST_ACCURACY_MM, which fits u32"
        )]
        let accuracy_mm_u32 = accuracy_mm.round() as u32;
        let done = elapsed_s >= self.cfg.survey_in_min_s
            && accuracy_mm <= self.cfg.survey_in_accuracy_m * 1000.0;
        Some(SurveyIn {
            duration_s: u32::try_from(elapsed_s).unwrap_or(u32::MAX),
            observations: u32::try_from(elapsed_s).unwrap_or(u32::MAX),
            accuracy_mm: accuracy_mm_u32,
            valid: done,
            active: !done,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn receiver(hz: f64, offset_ppb: f64) -> TimingReceiver {
        let cfg = ReceiverSection {
            timing_clock_hz: hz,
            clock_offset_ppb: offset_ppb,
            ..ReceiverSection::default()
        };
        TimingReceiver::new(&cfg, Xoshiro256PlusPlus::seed_from_u64(9))
    }

    #[test]
    fn an_m8t_pulse_is_within_half_a_48_mhz_tick_and_q_err_undoes_it() {
        let mut r = receiver(48e6, 150.3);
        let half_tick = 1e9 / 48e6 / 2.0;
        let mut seen_early = false;
        let mut seen_late = false;
        for _ in 0..500 {
            let p = r.advance();
            assert!(p.emitted_offset_ns.abs() <= half_tick + 1e-9, "{p:?}");
            // qErr = true − emitted, to the ps.
            assert!((p.emitted_offset_ns * 1000.0 + f64::from(p.q_err_ps)).abs() <= 0.5);
            seen_early |= p.emitted_offset_ns < -half_tick / 2.0;
            seen_late |= p.emitted_offset_ns > half_tick / 2.0;
        }
        assert!(seen_early && seen_late, "the sawtooth spans the tick");
    }

    #[test]
    fn the_tick_grid_slides_by_the_clock_error_each_second() {
        let mut r = receiver(48e6, 2.0);
        let a = r.advance().emitted_offset_ns;
        let b = r.advance().emitted_offset_ns;
        let tick = 1e9 / 48e6;
        let step = (b - a).rem_euclid(tick);
        assert!((step - (tick - 2.0)).abs() < 1e-6, "{a} → {b}");
    }

    #[test]
    fn upcoming_is_what_advance_returns_next() {
        let mut r = receiver(48e6, 5.0);
        r.advance();
        let told = r.upcoming();
        assert_eq!(r.advance(), told);
    }

    #[test]
    fn without_a_timing_clock_the_pulse_is_exact() {
        let mut r = receiver(0.0, 100.0);
        let emitted = r.advance().emitted_offset_ns;
        assert!(emitted.abs() < 1e-9, "emitted {emitted} ns off the second");
    }

    #[test]
    fn survey_in_ends_when_time_and_accuracy_are_both_met() {
        let cfg = ReceiverSection {
            survey_in_min_s: 100,
            survey_in_accuracy_m: 2.0,
            ..ReceiverSection::default()
        };
        let r = TimingReceiver::new(&cfg, Xoshiro256PlusPlus::seed_from_u64(1));
        assert!(r.survey_in(50).is_some_and(|s| s.active && !s.valid));
        // 30 m / √t reaches 2 m after 225 s.
        assert!(r.survey_in(150).is_some_and(|s| s.active));
        assert!(r.survey_in(300).is_some_and(|s| s.valid && !s.active));
        assert!(receiver(48e6, 0.0).survey_in(10).is_none());
    }
}
