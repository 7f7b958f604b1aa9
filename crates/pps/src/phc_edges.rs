//! Picks the second-marking edge out of a PHC's external timestamps, sans-IO.
//!
//! Some PHCs (the i210 among them) stamp both edges of the pulse whatever
//! `PTP_RISING_EDGE` asked for, so the event stream alternates between the
//! wanted edge and the other one, a pulse width apart. The event record does
//! not say which is which, so [`EdgeSelector`] tells them apart by cadence
//! (the wanted edge recurs every second) and by polarity: GNSS pulses are
//! high for less than half a second, so the rising (assert) edge is the one
//! followed by the short gap.

use crate::source::PpsEdgeKind;

const SECOND_NS: i64 = 1_000_000_000;
/// How far an edge may stray from the one-second cadence: a fixed part for
/// the receiver and the PHC's resolution, plus the PHC's rate error per second.
const CADENCE_FIXED_NS: i64 = 2_000_000;
const CADENCE_PER_SECOND_NS: i64 = 500_000;

/// What happened to one event.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EdgeVerdict {
    /// The wanted edge: pass it on.
    Accept,
    /// The other edge of a pulse (the PHC stamps both); dropped.
    OtherEdge,
    /// Not yet known whether this is the wanted edge; kept as the reference.
    Provisional,
    /// Not on the cadence of the previous edges (pulses lost for long, or the
    /// PHC was set); the selector starts over from this event.
    Restart,
    /// Earlier than or equal to the previous event: a replay; dropped.
    Stale,
}

/// Follows the one-second cadence of the wanted edge in PHC time.
#[derive(Clone, Debug)]
pub struct EdgeSelector {
    wanted: PpsEdgeKind,
    /// The last event taken as the wanted edge (provisionally or accepted).
    reference_ns: Option<i64>,
    /// Whether the reference is known to be the wanted edge.
    confirmed: bool,
    /// An other-edge event since the reference, its delay after the reference.
    other_after_ns: Option<i64>,
    /// Whether this PHC has been seen stamping both edges; then an edge is
    /// passed on only once its polarity is known.
    stamps_both: bool,
}

impl EdgeSelector {
    /// A selector for the configured edge (`assert` = rising).
    pub fn new(wanted: PpsEdgeKind) -> Self {
        Self {
            wanted,
            reference_ns: None,
            confirmed: false,
            other_after_ns: None,
            stamps_both: false,
        }
    }

    /// Classifies the next event (PHC time, ns).
    pub fn offer(&mut self, phc_ns: i64) -> EdgeVerdict {
        let Some(reference) = self.reference_ns else {
            return self.restart(phc_ns, EdgeVerdict::Provisional);
        };
        let d = phc_ns - reference;
        if d <= 0 {
            return EdgeVerdict::Stale;
        }
        let seconds = (d + SECOND_NS / 2) / SECOND_NS;
        let residual = d - seconds * SECOND_NS;
        if seconds >= 1 && residual.abs() <= CADENCE_FIXED_NS + seconds * CADENCE_PER_SECOND_NS {
            // On cadence. With the other edge in between, its delay told us
            // the polarity; without, a PHC never seen stamping both edges
            // stamps the one requested.
            let right = match self.other_after_ns {
                None => !self.stamps_both,
                Some(delay) => self.reference_is_wanted(delay),
            };
            self.reference_ns = Some(phc_ns);
            self.other_after_ns = None;
            self.confirmed = right || self.confirmed;
            return if right || self.confirmed {
                EdgeVerdict::Accept
            } else {
                EdgeVerdict::Provisional
            };
        }
        if d < SECOND_NS {
            self.stamps_both = true;
            // The other edge of this pulse, or the wanted one after a
            // reference that was the other edge.
            if self.reference_is_wanted(d) {
                self.other_after_ns = Some(d);
                self.confirmed = true;
                EdgeVerdict::OtherEdge
            } else {
                self.reference_ns = Some(phc_ns);
                self.other_after_ns = None;
                self.confirmed = true;
                EdgeVerdict::Accept
            }
        } else {
            self.restart(phc_ns, EdgeVerdict::Restart)
        }
    }

    /// Whether the reference is the wanted edge, given that the other edge
    /// followed it after `delay_ns`: a rising edge is followed by the falling
    /// one after the (short) pulse width, a falling one by the next rising
    /// edge after the rest of the second.
    fn reference_is_wanted(&self, delay_ns: i64) -> bool {
        let reference_is_rising = delay_ns < SECOND_NS / 2;
        match self.wanted {
            PpsEdgeKind::Assert => reference_is_rising,
            PpsEdgeKind::Clear => !reference_is_rising,
        }
    }

    fn restart(&mut self, phc_ns: i64, verdict: EdgeVerdict) -> EdgeVerdict {
        self.reference_ns = Some(phc_ns);
        self.confirmed = false;
        self.other_after_ns = None;
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: i64 = 1_000_000;

    /// Both edges of pulses `width` long starting at `first_rise`, `n` seconds.
    fn both_edges(first_rise: i64, width: i64, n: i64) -> Vec<(i64, bool)> {
        (0..n)
            .flat_map(|s| {
                let rise = first_rise + s * SECOND_NS;
                [(rise, true), (rise + width, false)]
            })
            .collect()
    }

    fn accepted(sel: &mut EdgeSelector, events: &[(i64, bool)]) -> Vec<(i64, bool)> {
        events
            .iter()
            .filter(|(t, _)| sel.offer(*t) == EdgeVerdict::Accept)
            .copied()
            .collect()
    }

    #[test]
    fn a_single_edge_phc_passes_every_pulse_after_the_first() {
        let mut sel = EdgeSelector::new(PpsEdgeKind::Assert);
        assert_eq!(sel.offer(5 * SECOND_NS), EdgeVerdict::Provisional);
        assert_eq!(sel.offer(6 * SECOND_NS + 3_000), EdgeVerdict::Accept);
        // Two pulses lost: still on cadence.
        assert_eq!(sel.offer(9 * SECOND_NS), EdgeVerdict::Accept);
        assert_eq!(sel.offer(9 * SECOND_NS), EdgeVerdict::Stale);
    }

    #[test]
    fn both_edges_keep_only_the_rising_one_for_assert() {
        for start_on_fall in [false, true] {
            let mut events = both_edges(SECOND_NS + 17, 100 * MS, 6);
            if start_on_fall {
                events.remove(0);
            }
            let mut sel = EdgeSelector::new(PpsEdgeKind::Assert);
            let got = accepted(&mut sel, &events);
            assert!(got.iter().all(|(_, rising)| *rising), "{got:?}");
            assert!(got.len() >= 4, "{got:?}");
        }
    }

    #[test]
    fn both_edges_keep_only_the_falling_one_for_clear() {
        let events = both_edges(SECOND_NS, 200 * MS, 6);
        let mut sel = EdgeSelector::new(PpsEdgeKind::Clear);
        let got = accepted(&mut sel, &events);
        assert!(got.iter().all(|(_, rising)| !rising), "{got:?}");
        assert!(got.len() >= 4, "{got:?}");
    }

    #[test]
    fn a_long_gap_off_cadence_restarts() {
        let mut sel = EdgeSelector::new(PpsEdgeKind::Assert);
        sel.offer(0);
        assert_eq!(sel.offer(SECOND_NS), EdgeVerdict::Accept);
        assert_eq!(sel.offer(3 * SECOND_NS + 400 * MS), EdgeVerdict::Restart);
        assert_eq!(sel.offer(4 * SECOND_NS + 400 * MS), EdgeVerdict::Accept);
    }

    proptest! {
        /// Whatever the pulse width (5–450 ms), phase, PHC rate (±200 ppm)
        /// and events lost after the first three, only wanted edges are ever
        /// accepted. (With both edges stamped and the first event's partner
        /// lost, the polarity is undecidable; the selector trusts the driver.)
        #[test]
        fn only_the_wanted_edge_is_ever_accepted(
            width_ms in 5i64..450,
            phase in 0i64..SECOND_NS,
            ppm in -200i64..=200,
            wanted_rising: bool,
            dropped in proptest::collection::vec(any::<bool>(), 40),
        ) {
            let wanted = if wanted_rising { PpsEdgeKind::Assert } else { PpsEdgeKind::Clear };
            let scale = |t: i64| t + t / 1_000_000 * ppm;
            let events: Vec<(i64, bool)> = both_edges(phase, width_ms * MS, 20)
                .into_iter()
                .enumerate()
                .filter(|(i, _)| *i < 3 || !dropped[*i])
                .map(|(_, (t, r))| (scale(t), r))
                .collect();
            let mut sel = EdgeSelector::new(wanted);
            let mut accepted = 0;
            for (t, rising) in events {
                if sel.offer(t) == EdgeVerdict::Accept {
                    prop_assert_eq!(rising, wanted_rising, "accepted the other edge at {}", t);
                    accepted += 1;
                }
            }
            let kept = dropped.iter().skip(3).filter(|d| !**d).count();
            prop_assert!(kept < 20 || accepted > 0, "nothing accepted from a steady stream");
        }
    }
}
