//! Edge selection and loss accounting, separated from the device so that it is
//! tested without hardware.
//!
//! A PPS_FETCH wakes on any captured event and returns the latest assert *and*
//! clear captures. The tracker keeps only the selected edge, notices when its
//! sequence number did not move (the other edge woke us), and counts pulses
//! that never reached user space.

use crate::source::{PpsEdge, PpsEdgeKind};
use serde::Serialize;
use skytime_timebase::{MonoNanos, NANOS_PER_SEC, UnixNanos};
use std::sync::atomic::{AtomicU64, Ordering};

/// What one PPS_FETCH returned, reduced to the two captures.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Capture {
    /// Assert capture sequence number.
    pub assert_sequence: u32,
    /// Assert capture time (host CLOCK_REALTIME).
    pub assert_time: UnixNanos,
    /// Clear capture sequence number.
    pub clear_sequence: u32,
    /// Clear capture time (host CLOCK_REALTIME).
    pub clear_time: UnixNanos,
}

/// Counters a metrics endpoint reads while the PPS thread writes them.
/// Relaxed atomics: each is an independent monotone count.
#[derive(Debug, Default)]
pub struct PpsCounters {
    /// Edges of the selected kind delivered to the discipline.
    pub edges: AtomicU64,
    /// Pulses that should have arrived but did not: skipped sequence numbers,
    /// or whole seconds of silence between two delivered edges.
    pub missed_pulses: AtomicU64,
    /// Times the sequence number jumped by more than one (the reader fell behind).
    pub sequence_gaps: AtomicU64,
    /// Fetches that timed out with no edge.
    pub timeouts: AtomicU64,
    /// Fetches that failed with an error.
    pub errors: AtomicU64,
    /// A PHC source's mapping and event counts (empty for kernel PPS).
    pub phc: crate::phc_status::PhcCounters,
}

/// A point-in-time copy of [`PpsCounters`], for status and metrics output.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PpsCountersSnapshot {
    /// See [`PpsCounters::edges`].
    pub edges: u64,
    /// See [`PpsCounters::missed_pulses`].
    pub missed_pulses: u64,
    /// See [`PpsCounters::sequence_gaps`].
    pub sequence_gaps: u64,
    /// See [`PpsCounters::timeouts`].
    pub timeouts: u64,
    /// See [`PpsCounters::errors`].
    pub errors: u64,
}

impl PpsCounters {
    /// Reads every counter.
    pub fn snapshot(&self) -> PpsCountersSnapshot {
        PpsCountersSnapshot {
            edges: self.edges.load(Ordering::Relaxed),
            missed_pulses: self.missed_pulses.load(Ordering::Relaxed),
            sequence_gaps: self.sequence_gaps.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

/// Selects one edge kind from successive captures and accounts for losses.
#[derive(Debug)]
pub struct EdgeTracker {
    kind: PpsEdgeKind,
    last: Option<(u32, UnixNanos)>,
}

impl EdgeTracker {
    /// A tracker for `kind` that has seen nothing yet.
    pub fn new(kind: PpsEdgeKind) -> Self {
        Self { kind, last: None }
    }

    /// Sets the baseline from a capture taken before waiting (the latest event
    /// the kernel already holds is old news, not a new edge).
    pub fn prime(&mut self, capture: &Capture) {
        let (seq, time) = self.pick(capture);
        if time != UnixNanos(0) || seq != 0 {
            self.last = Some((seq, time));
        }
    }

    fn pick(&self, c: &Capture) -> (u32, UnixNanos) {
        match self.kind {
            PpsEdgeKind::Assert => (c.assert_sequence, c.assert_time),
            PpsEdgeKind::Clear => (c.clear_sequence, c.clear_time),
        }
    }

    /// The new edge in `capture`, if the selected kind moved; updates `counters`.
    pub fn observe(
        &mut self,
        capture: &Capture,
        received: MonoNanos,
        counters: &PpsCounters,
    ) -> Option<PpsEdge> {
        let (seq, time) = self.pick(capture);
        if let Some((last_seq, last_time)) = self.last {
            if seq == last_seq {
                return None; // woken by the other edge kind
            }
            let jump = u64::from(seq.wrapping_sub(last_seq));
            if jump > 1 {
                counters.sequence_gaps.fetch_add(1, Ordering::Relaxed);
            }
            // Whole seconds between the two delivered edges, rounded: a silent
            // line (antenna cut, receiver stopped) skips no sequence numbers.
            let interval_ns = time.nanos_since(last_time);
            let seconds = if interval_ns > 0 {
                u64::try_from((interval_ns + NANOS_PER_SEC / 2) / NANOS_PER_SEC).unwrap_or(0)
            } else {
                0
            };
            let missed = jump.saturating_sub(1).max(seconds.saturating_sub(1));
            // A jump of more than a day of pulses is a reset of the source, not a loss.
            if missed > 0 && missed < 86_400 {
                counters.missed_pulses.fetch_add(missed, Ordering::Relaxed);
            }
        }
        self.last = Some((seq, time));
        counters.edges.fetch_add(1, Ordering::Relaxed);
        Some(PpsEdge {
            sequence: seq,
            timestamp: time,
            received,
            uncertainty_ns: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(aseq: u32, asec: i64, cseq: u32, csec: i64) -> Capture {
        Capture {
            assert_sequence: aseq,
            assert_time: UnixNanos::from_secs_nanos(asec, 100),
            clear_sequence: cseq,
            clear_time: UnixNanos::from_secs_nanos(csec, 100_000_100),
        }
    }

    #[test]
    fn selects_the_configured_edge_and_ignores_wakeups_by_the_other() {
        let counters = PpsCounters::default();
        let mut t = EdgeTracker::new(PpsEdgeKind::Clear);
        t.prime(&cap(10, 100, 10, 100));
        // Assert moved, clear did not: nothing for us.
        assert!(
            t.observe(&cap(11, 101, 10, 100), MonoNanos(1), &counters)
                .is_none()
        );
        let e = t
            .observe(&cap(11, 101, 11, 101), MonoNanos(2), &counters)
            .expect("clear edge");
        assert_eq!(e.sequence, 11);
        assert_eq!(e.timestamp, UnixNanos::from_secs_nanos(101, 100_000_100));
        assert_eq!(counters.snapshot().edges, 1);
        assert_eq!(counters.snapshot().missed_pulses, 0);
    }

    #[test]
    fn counts_sequence_gaps_and_silent_seconds() {
        let counters = PpsCounters::default();
        let mut t = EdgeTracker::new(PpsEdgeKind::Assert);
        t.observe(&cap(1, 100, 0, 0), MonoNanos(0), &counters);
        t.observe(&cap(2, 101, 0, 0), MonoNanos(0), &counters);
        // Reader fell behind: sequences 3 and 4 were captured but never fetched.
        t.observe(&cap(5, 104, 0, 0), MonoNanos(0), &counters);
        // The line went silent for 9 s: no sequence skipped, 9 pulses missing.
        t.observe(&cap(6, 114, 0, 0), MonoNanos(0), &counters);
        let s = counters.snapshot();
        assert_eq!(s.edges, 4);
        assert_eq!(s.sequence_gaps, 1);
        assert_eq!(s.missed_pulses, 2 + 9);
    }

    #[test]
    fn sequence_wraps_without_a_false_gap() {
        let counters = PpsCounters::default();
        let mut t = EdgeTracker::new(PpsEdgeKind::Assert);
        t.observe(&cap(u32::MAX, 100, 0, 0), MonoNanos(0), &counters);
        t.observe(&cap(0, 101, 0, 0), MonoNanos(0), &counters);
        assert_eq!(counters.snapshot().sequence_gaps, 0);
        assert_eq!(counters.snapshot().missed_pulses, 0);
    }

    #[test]
    fn a_spurious_edge_is_delivered_not_counted_as_loss() {
        // Rejecting it is the refclock's job; the driver must not hide it.
        let counters = PpsCounters::default();
        let mut t = EdgeTracker::new(PpsEdgeKind::Assert);
        t.observe(&cap(1, 100, 0, 0), MonoNanos(0), &counters);
        let mut c = cap(2, 100, 0, 0);
        c.assert_time = UnixNanos::from_secs_nanos(100, 300_000_000);
        assert!(t.observe(&c, MonoNanos(0), &counters).is_some());
        assert_eq!(counters.snapshot().missed_pulses, 0);
    }
}
