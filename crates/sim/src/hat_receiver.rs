//! The simulated hat's u-blox-like timing receiver, live: one quantisation
//! sawtooth shared by the PPS (each edge leaves on the receiver's tick nearest
//! the true second) and the serial writer (each second's UBX-TIM-TP, sent
//! before the pulse it describes, carries that pulse's qErr), so the daemon
//! pairs and corrects exactly as on a real M8T. Shaped by the scenario's
//! `[receiver]`, with the same drop / duplicate / late faults as the
//! simulated-time runner.

use crate::receiver_timing::{PulseTiming, TimingReceiver};
use crate::scenario::ReceiverSection;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand_distr::{Distribution, StandardUniform};
use skytime_gnss::ubx::messages::encode_tim_tp;
use skytime_timebase::UtcSecond;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Seconds of pulse timing kept for a late reader.
const KEPT_S: usize = 8;
/// A reader this far ahead (a suspended process) restarts the sawtooth there
/// rather than drawing every second in between.
const MAX_CATCH_UP_S: i64 = 3600;

/// Each true second's pulse, drawn once, in order, whoever asks first.
struct Schedule {
    receiver: TimingReceiver,
    next_secs: Option<i64>,
    known: VecDeque<(i64, PulseTiming)>,
}

impl Schedule {
    fn timing(&mut self, secs: i64) -> Option<PulseTiming> {
        let next = match self.next_secs {
            Some(n) if secs - n <= MAX_CATCH_UP_S => n,
            _ => secs,
        };
        let mut next = next;
        while next <= secs {
            let t = self.receiver.advance();
            self.known.push_back((next, t));
            if self.known.len() > KEPT_S {
                self.known.pop_front();
            }
            next += 1;
        }
        self.next_secs = Some(next);
        self.known.iter().find(|(s, _)| *s == secs).map(|(_, t)| *t)
    }
}

/// The receiver's pulse timing, shared by the hat's PPS and its serial writer.
#[derive(Clone)]
pub struct HatTiming {
    schedule: Arc<Mutex<Schedule>>,
}

impl HatTiming {
    /// The receiver of `[receiver]`; `None` when it makes no sawtooth and sends
    /// no TIM-TP (the default hat: a MediaTek-style receiver).
    pub fn of(cfg: &ReceiverSection, seed: u64) -> Option<Self> {
        if cfg.timing_clock_hz <= 0.0 && !cfg.tim_tp {
            return None;
        }
        let rng = Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5154_4552);
        Some(HatTiming {
            schedule: Arc::new(Mutex::new(Schedule {
                receiver: TimingReceiver::new(cfg, rng),
                next_secs: None,
                known: VecDeque::new(),
            })),
        })
    }

    /// The pulse of true (Unix) second `secs`: how far from it it leaves and
    /// the qErr the receiver reports. `None` for a second long gone.
    pub fn pulse(&self, secs: i64) -> Option<PulseTiming> {
        self.schedule
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .timing(secs)
    }
}

/// What the receiver adds to each second's serial output: TIM-TP for the
/// next pulse, with the scenario's faults.
pub struct TimTpWriter {
    timing: HatTiming,
    cfg: ReceiverSection,
    rng: Xoshiro256PlusPlus,
    late: Vec<u8>,
}

impl TimTpWriter {
    /// A writer for `timing`, when the scenario's receiver sends TIM-TP.
    pub fn of(timing: &HatTiming, cfg: &ReceiverSection, seed: u64) -> Option<Self> {
        cfg.tim_tp.then(|| TimTpWriter {
            timing: timing.clone(),
            cfg: cfg.clone(),
            rng: Xoshiro256PlusPlus::seed_from_u64(seed ^ 0x5449_4D54),
            late: Vec::new(),
        })
    }

    /// The bytes to send after the burst labelling `label`: last second's
    /// late message, then TIM-TP for the pulse at `next_true_secs`, labelled
    /// `next_label` (dropped, doubled or held back as the scenario says).
    pub fn after_burst(&mut self, next_label: UtcSecond, next_true_secs: i64) -> Vec<u8> {
        let mut uniform = || -> f64 { StandardUniform.sample(&mut self.rng) };
        let (drop_u, duplicate_u, late_u) = (uniform(), uniform(), uniform());
        let mut out = std::mem::take(&mut self.late);
        let Some(pulse) = self.timing.pulse(next_true_secs) else {
            return out;
        };
        if drop_u < self.cfg.tim_tp_drop_probability {
            return out;
        }
        let frame = encode_tim_tp(&TimingReceiver::tim_tp(next_label, pulse));
        let copies = if duplicate_u < self.cfg.tim_tp_duplicate_probability {
            2
        } else {
            1
        };
        let dest = if late_u < self.cfg.tim_tp_late_probability {
            &mut self.late
        } else {
            &mut out
        };
        for _ in 0..copies {
            dest.extend_from_slice(&frame);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skytime_gnss::ubx::{self, messages};

    fn m8t() -> ReceiverSection {
        ReceiverSection {
            timing_clock_hz: 48e6,
            clock_offset_ppb: 125.2,
            tim_tp: true,
            ..ReceiverSection::default()
        }
    }

    #[test]
    fn the_pulse_and_its_tim_tp_share_one_sawtooth_whoever_asks_first() {
        let timing = HatTiming::of(&m8t(), 1).expect("a timing receiver");
        let mut writer = TimTpWriter::of(&timing, &m8t(), 1).expect("sends TIM-TP");
        let t0 = 1_780_000_000;
        let mut offsets = Vec::new();
        for k in 0..20 {
            let secs = t0 + k;
            // The writer describes the next pulse before the PPS reaches it.
            let label = UtcSecond::from_unix_secs(secs + 1).expect("label");
            let bytes = writer.after_burst(label, secs + 1);
            let frames = ubx::frames(&bytes);
            assert_eq!(frames.len(), 1);
            let Some(messages::Message::TimePulse(tp)) = messages::decode(&frames[0]) else {
                panic!("TIM-TP");
            };
            let pulse = timing.pulse(secs + 1).expect("still known");
            assert_eq!(tp.q_err_ps, pulse.q_err_ps);
            // qErr = true − emitted, within the reported noise (none here).
            assert!((f64::from(tp.q_err_ps) / 1000.0 + pulse.emitted_offset_ns).abs() < 0.001);
            assert!(pulse.emitted_offset_ns.abs() <= 10.42, "{pulse:?}");
            offsets.push(pulse.emitted_offset_ns);
        }
        let spread = offsets.iter().copied().fold(f64::MIN, f64::max)
            - offsets.iter().copied().fold(f64::MAX, f64::min);
        assert!(spread > 1.0, "a sawtooth, not a constant: {offsets:?}");
        assert!(timing.pulse(t0 - 100).is_none(), "long gone");
    }

    #[test]
    fn a_navigation_receiver_has_no_timing_and_no_tim_tp() {
        assert!(HatTiming::of(&ReceiverSection::default(), 1).is_none());
        let no_tp = ReceiverSection {
            tim_tp: false,
            ..m8t()
        };
        let timing = HatTiming::of(&no_tp, 1).expect("a sawtooth on the pulse");
        assert!(TimTpWriter::of(&timing, &no_tp, 1).is_none());
    }

    #[test]
    fn dropped_duplicated_and_late_messages_as_configured() {
        let faulty = ReceiverSection {
            tim_tp_drop_probability: 0.2,
            tim_tp_duplicate_probability: 0.2,
            tim_tp_late_probability: 0.2,
            ..m8t()
        };
        let timing = HatTiming::of(&faulty, 3).expect("timing");
        let mut writer = TimTpWriter::of(&timing, &faulty, 3).expect("writer");
        let counts: Vec<usize> = (0..500)
            .map(|k| {
                let secs = 1_780_000_000 + k;
                let label = UtcSecond::from_unix_secs(secs + 1).expect("label");
                ubx::frames(&writer.after_burst(label, secs + 1)).len()
            })
            .collect();
        assert!(counts.contains(&0) && counts.contains(&2) && counts.contains(&3));
        let total: usize = counts.iter().sum();
        assert!((300..700).contains(&total), "{total}");
    }
}
