//! The pulse train: which edges sit a whole number of seconds after the
//! previous good ones, and the recent ones kept for pairing with epochs.
//!
//! Owns the kept edges, the last raw edge and the count of edges that agree
//! with each other but not with the train. Knows nothing of filters or labels
//! beyond what it is told: how wide to look, and the steering in force.

use skytime_timebase::MonoNanos;
use std::collections::VecDeque;

const NS: f64 = 1e9;
/// Recent edges kept for pairing with epochs that arrive up to ~1 s later.
const EDGES_KEPT: usize = 8;
/// Consecutive pulses that must agree with each other but not with the
/// current train before the train is abandoned for them.
const TRAIN_SWITCH: u32 = 3;
/// Fraction-of-a-second tolerance before anything is learned, ns: a pulse
/// source's own latency jitter (a USB-serial DCD line) stays well inside it.
const BASE_TOLERANCE_NS: f64 = 100_000.0;
/// Tolerance per second of interval before the frequency is known, ns/s:
/// the largest oscillator error allowed (1,000 ppm) and 10 % margin.
const UNLEARNED_TOLERANCE_PER_S_NS: f64 = 1_100_000.0;
/// Standard deviations of the frequency estimate allowed per second.
const FREQUENCY_SIGMAS: f64 = 6.0;
/// Tolerance per second kept however well the frequency is known, ns/s.
const FREQUENCY_FLOOR_PER_S_NS: f64 = 2_000.0;
/// Standard deviations of a pulse-to-pulse difference (√2 σ of one pulse).
const NOISE_SIGMAS: f64 = 8.0;

/// A pulse that passed the interval check, kept for pairing.
#[derive(Copy, Clone, Debug)]
pub(super) struct EdgeRec {
    /// Raw stamp on the clock's current frame (shifted by our own steps), ns.
    pub stamp: i64,
    /// When it was received (monotonic).
    pub mono: MonoNanos,
    /// Pulse number: consecutive seconds have consecutive numbers.
    pub idx: i64,
    /// The discipline's applied phase correction when it was received, ns
    /// (the frequency may change many times before the next pulse, as in a
    /// temperature-compensated holdover).
    pub applied: f64,
    /// The Unix second the clock assigned to it (POSIX, so 23:59:60 and
    /// 23:59:59 share one), once the labels are established.
    pub label: Option<i64>,
    /// Whether this one was checked against a previous pulse.
    pub confirmed: bool,
}

/// How tightly a new edge must fit the train: wide until the filter has
/// learned the frequency and the pulses' noise, then from what it learned.
#[derive(Copy, Clone, Debug)]
pub(super) enum Expectation {
    /// Nothing learned yet: the oscillator may be anywhere in its range.
    Unlearned,
    /// The filter's frequency error (ppb), its standard deviation (ppb) and
    /// the pulses' measurement variance (ns²).
    Learned {
        /// Estimated oscillator frequency error, ppb.
        freq_ppb: f64,
        /// Its standard deviation, ppb.
        freq_sigma_ppb: f64,
        /// Measurement noise variance of one pulse, ns².
        noise_var_ns2: f64,
    },
}

/// What the train made of an edge.
#[derive(Copy, Clone, Debug)]
pub(super) enum Verdict {
    /// The first edge, or one after a gap the train cannot bridge: a start.
    First(EdgeRec),
    /// Part of the train, `missed` pulses after the last one.
    Fits {
        /// The edge, numbered and confirmed.
        rec: EdgeRec,
        /// Pulses missing between the last kept edge and this one.
        missed: u64,
    },
    /// The train was abandoned for the pulses this one agrees with.
    NewTrain(EdgeRec),
    /// Off the train: `off_ns` after the last kept edge's phase.
    Spurious {
        /// Where in the second it fell, relative to the train, ns.
        off_ns: i64,
    },
}

/// The pulse train and the edges kept for pairing.
#[derive(Debug, Default)]
pub(super) struct PulseTrain {
    edges: VecDeque<EdgeRec>,
    last_raw: Option<EdgeRec>,
    mismatch: u32,
}

/// Whole seconds from `from` to `to`, rounded.
fn whole_seconds(from: MonoNanos, to: MonoNanos) -> f64 {
    (to.nanos_since(from) as f64 / NS).round()
}

impl PulseTrain {
    /// An empty train.
    pub fn new() -> Self {
        Self {
            edges: VecDeque::with_capacity(EDGES_KEPT),
            ..Self::default()
        }
    }

    /// The interval check of an edge stamped `stamp` (ns, clock frame),
    /// received at `mono` with `applied` ns of steering in force.
    pub fn check(
        &mut self,
        stamp: i64,
        mono: MonoNanos,
        applied: f64,
        expect: Expectation,
    ) -> Verdict {
        let raw = EdgeRec {
            stamp,
            mono,
            idx: 0,
            applied,
            label: None,
            confirmed: false,
        };
        let prev_raw = self.last_raw.replace(raw);
        let Some(last) = self.edges.back().copied() else {
            return Verdict::First(raw);
        };
        #[expect(
            clippy::cast_possible_truncation,
            reason = "whole seconds between two pulses, rounded, fit i64"
        )]
        let fits =
            |from: &EdgeRec, tol_per_s: f64, base_tol: f64, expected_extra: f64| -> Option<i64> {
                let n = whole_seconds(from.mono, mono) as i64;
                if n < 1 {
                    return None;
                }
                let err = (stamp - from.stamp) as f64 - n as f64 * NS - expected_extra * n as f64;
                // Whole seconds are the labels' business (a leap second steps the
                // clock by one); only the fraction says whether this is a pulse.
                let frac = err - (err / NS).round() * NS;
                (frac.abs() <= base_tol + tol_per_s * n as f64).then_some(n)
            };
        let (extra, tol_per_s, base_tol) = match expect {
            Expectation::Learned {
                freq_ppb,
                freq_sigma_ppb,
                noise_var_ns2,
            } => {
                let drift = (raw.applied - last.applied).abs();
                (
                    freq_ppb,
                    FREQUENCY_SIGMAS * freq_sigma_ppb + FREQUENCY_FLOOR_PER_S_NS,
                    BASE_TOLERANCE_NS + NOISE_SIGMAS * (2.0 * noise_var_ns2).sqrt() + drift,
                )
            }
            Expectation::Unlearned => (0.0, UNLEARNED_TOLERANCE_PER_S_NS, BASE_TOLERANCE_NS),
        };
        // Expected extra from our own steering over the interval.
        let steering = raw.applied - last.applied;
        let n_steer = whole_seconds(last.mono, mono).max(1.0);
        if let Some(n) = fits(&last, tol_per_s, base_tol, extra + steering / n_steer) {
            self.mismatch = 0;
            if let Some(b) = self.edges.back_mut() {
                b.confirmed = true;
            }
            return Verdict::Fits {
                rec: EdgeRec {
                    idx: last.idx + n,
                    confirmed: true,
                    ..raw
                },
                missed: u64::try_from(n - 1).unwrap_or(0),
            };
        }
        // Not part of the train. Is it part of a new one (the train was
        // started by a spurious edge, or the phase really moved)?
        if let Some(p) = prev_raw
            && fits(&p, UNLEARNED_TOLERANCE_PER_S_NS, BASE_TOLERANCE_NS, 0.0).is_some()
        {
            self.mismatch += 1;
            if !last.confirmed || self.mismatch >= TRAIN_SWITCH {
                self.mismatch = 0;
                self.edges.clear();
                return Verdict::NewTrain(raw);
            }
        }
        Verdict::Spurious {
            off_ns: (stamp - last.stamp).rem_euclid(1_000_000_000),
        }
    }

    /// Keeps `rec` for pairing, dropping the oldest beyond what is kept.
    pub fn push(&mut self, rec: EdgeRec) {
        if self.edges.len() == EDGES_KEPT {
            self.edges.pop_front();
        }
        self.edges.push_back(rec);
    }

    /// The kept edge at `i` (oldest first), as the pairing numbered them.
    pub fn get(&self, i: usize) -> Option<EdgeRec> {
        self.edges.get(i).copied()
    }

    /// The stamps of the kept edges, oldest first, for the pairing.
    pub fn stamps(&self) -> Vec<i64> {
        self.edges.iter().map(|e| e.stamp).collect()
    }

    /// When the newest kept edge was received.
    pub fn last_received(&self) -> Option<MonoNanos> {
        self.edges.back().map(|e| e.mono)
    }

    /// The clock was stepped by `offset_ns` at start-up: the kept edges move
    /// with it and lose their labels (the seconds are established afresh).
    pub fn stepped(&mut self, offset_ns: i64) {
        for e in &mut self.edges {
            e.stamp += offset_ns;
            e.applied += offset_ns as f64;
            e.label = None;
        }
        if let Some(r) = self.last_raw.as_mut() {
            r.stamp += offset_ns;
            r.applied += offset_ns as f64;
        }
    }

    /// The clock followed a leap second by `offset_s`: the kept edges move
    /// with it and their labels with them; the phase model is untouched.
    pub fn leap_stepped(&mut self, offset_s: i64) {
        let step = offset_s * 1_000_000_000;
        for e in &mut self.edges {
            e.stamp += step;
            e.label = e.label.map(|l| l + offset_s);
        }
        if let Some(r) = self.last_raw.as_mut() {
            r.stamp += step;
        }
    }

    /// Forgets every kept edge's label (the receiver is believed afresh).
    pub fn forget_labels(&mut self) {
        for e in &mut self.edges {
            e.label = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn at(s: i64) -> MonoNanos {
        MonoNanos(s * S)
    }

    fn feed(t: &mut PulseTrain, stamp: i64, mono: MonoNanos) -> Verdict {
        let v = t.check(stamp, mono, 0.0, Expectation::Unlearned);
        match v {
            Verdict::First(r) | Verdict::NewTrain(r) | Verdict::Fits { rec: r, .. } => t.push(r),
            Verdict::Spurious { .. } => {}
        }
        v
    }

    #[test]
    fn consecutive_pulses_are_numbered_and_a_gap_counts_the_missed() {
        let mut t = PulseTrain::new();
        assert!(matches!(feed(&mut t, 5 * S, at(5)), Verdict::First(_)));
        let Verdict::Fits { rec, missed } = feed(&mut t, 6 * S + 300, at(6)) else {
            panic!("a pulse one second on fits");
        };
        assert_eq!((rec.idx, missed), (1, 0));
        let Verdict::Fits { rec, missed } = feed(&mut t, 9 * S + 500, at(9)) else {
            panic!("a pulse three seconds on fits");
        };
        assert_eq!((rec.idx, missed), (4, 2));
        assert!(t.get(0).is_some_and(|e| e.confirmed));
    }

    #[test]
    fn an_edge_mid_second_is_spurious_and_leaves_the_train() {
        let mut t = PulseTrain::new();
        feed(&mut t, 5 * S, at(5));
        feed(&mut t, 6 * S, at(6));
        let v = feed(&mut t, 6 * S + S / 2, at(6).add_nanos(S / 2));
        assert!(
            matches!(v, Verdict::Spurious { off_ns } if off_ns == S / 2),
            "{v:?}"
        );
        assert!(matches!(feed(&mut t, 7 * S, at(7)), Verdict::Fits { .. }));
    }

    #[test]
    fn a_moved_phase_is_followed_after_three_agreeing_pulses() {
        let mut t = PulseTrain::new();
        for s in 1..=3 {
            feed(&mut t, s * S, at(s));
        }
        let moved = S / 4;
        let verdicts: Vec<_> = (4..=7)
            .map(|s| feed(&mut t, s * S + moved, at(s)))
            .collect();
        assert!(matches!(verdicts[0], Verdict::Spurious { .. }));
        assert!(matches!(verdicts[1], Verdict::Spurious { .. }));
        assert!(matches!(verdicts[2], Verdict::Spurious { .. }));
        assert!(matches!(verdicts[3], Verdict::NewTrain(_)), "{verdicts:?}");
    }

    #[test]
    fn a_learned_frequency_narrows_the_check() {
        let mut t = PulseTrain::new();
        let tight = Expectation::Learned {
            freq_ppb: 0.0,
            freq_sigma_ppb: 1.0,
            noise_var_ns2: 100.0,
        };
        for s in 1..=2 {
            match t.check(s * S, at(s), 0.0, tight) {
                Verdict::First(r) | Verdict::Fits { rec: r, .. } => t.push(r),
                v => panic!("{v:?}"),
            }
        }
        // 200 µs off: inside the unlearned tolerance, outside the learned one.
        let v = t.check(3 * S + 200_000, at(3), 0.0, tight);
        assert!(matches!(v, Verdict::Spurious { .. }), "{v:?}");
        let v = t.check(3 * S + 200_000, at(3), 0.0, Expectation::Unlearned);
        assert!(matches!(v, Verdict::Fits { .. }), "{v:?}");
    }

    #[test]
    fn steps_move_the_kept_edges_and_their_labels() {
        let mut t = PulseTrain::new();
        t.push(EdgeRec {
            stamp: S,
            mono: at(1),
            idx: 0,
            applied: 0.0,
            label: Some(1),
            confirmed: true,
        });
        t.leap_stepped(-1);
        assert_eq!(t.get(0).map(|e| (e.stamp, e.label)), Some((0, Some(0))));
        t.stepped(500);
        assert_eq!(
            t.get(0).map(|e| (e.stamp, e.label, e.applied)),
            Some((500, None, 500.0))
        );
        assert_eq!(t.stamps(), vec![500]);
        assert_eq!(t.last_received(), Some(at(1)));
    }
}
