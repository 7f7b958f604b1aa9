//! qErr pairing: which UBX-TIM-TP describes which PPS edge.
//!
//! A u-blox receiver can only start its pulse on a tick of its own clock
//! (48 MHz on M8T, so up to ±10.4 ns off; ~±4 ns on F9T), and it reports that
//! quantisation error for each pulse in TIM-TP, sent *before* the pulse it
//! describes. Adding the error to the edge's stamp removes the sawtooth — but
//! only if the message belongs to that edge: a message for the neighbouring
//! pulse adds up to 20 ns of error instead of removing 10.
//!
//! So a correction needs both content and timing to agree: TIM-TP carries the
//! time of week of its pulse and the edge the UTC second it was labelled with,
//! and they must name the same second (after the exact offset of the message's
//! time base); and the message must have arrived after the previous edge (the
//! receiver sends it once the previous pulse is out), so a message left over
//! from an earlier second can never be taken, even with a wrong GPS−UTC. A
//! missing message gives no correction; a duplicated one is the same pulse
//! (u-blox: the last TIM-TP before a pulse is the most accurate, so the latest
//! wins); a late one names an older second and is never applied to a newer
//! edge. Sans-IO: message arrivals and edges come in with stamps on one clock,
//! decisions go out.

use skytime_core::receiver::{TimeBase, TimePulseReport};
use std::collections::VecDeque;

/// Unix time of the GPS epoch, 1980-01-06 00:00:00 UTC.
const GPS_EPOCH_UNIX_S: i64 = 315_964_800;
/// Seconds in a GNSS week.
const WEEK_S: i64 = 604_800;
/// Messages kept: a few seconds' worth is enough for any delay a receiver has.
const MAX_PENDING: usize = 8;
/// A message older than this at an edge can only describe an earlier pulse.
const MAX_MESSAGE_AGE_NS: i64 = 1_100_000_000;

/// Why an edge gets no correction.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// No TIM-TP for this edge's second has arrived (missing or late).
    NoMessage,
    /// The receiver marked its qErr invalid.
    QerrInvalid,
    /// The message's time base is GNSS time and GPS−UTC is not known, or it is
    /// a GNSS whose offset from UTC this module does not know (GLONASS, BeiDou).
    UnknownTimeBase,
    /// The pulse is not on a whole second (a time pulse other than 1 PPS).
    OffGrid,
}

/// The verdict for one edge.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum QerrDecision {
    /// Add `q_err_ps` to the edge's stamp: the ideal pulse is `q_err_ps` after
    /// the real one (u-blox's sign: a time-interval counter started by a
    /// reference and stopped by the receiver's pulse reads smoother with qErr
    /// added, as A. Wallin measured on an F9T).
    Apply {
        /// The correction, ps.
        q_err_ps: i32,
    },
    /// No correction for this edge.
    Skip(SkipReason),
}

impl QerrDecision {
    /// The correction in ns to add to the edge stamp (0 when skipped).
    pub fn correction_ns(&self) -> f64 {
        match self {
            QerrDecision::Apply { q_err_ps } => f64::from(*q_err_ps) / 1000.0,
            QerrDecision::Skip(_) => 0.0,
        }
    }
}

/// Counts for status and metrics: how often the correction was applied, and why not.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct QerrCounters {
    /// TIM-TP messages received.
    pub messages: u64,
    /// Edges corrected.
    pub applied: u64,
    /// Edges without a message for their second.
    pub no_message: u64,
    /// Edges whose message had qErrInvalid.
    pub invalid: u64,
    /// Edges whose message's time base could not be tied to UTC, or off the second.
    pub uncertain: u64,
}

#[derive(Copy, Clone, Debug)]
struct Pending {
    arrival_ns: i64,
    /// GNSS week and second of week in UTC terms.
    utc_week: i64,
    utc_tow_s: i64,
    report: TimePulseReport,
    reason: Option<SkipReason>,
}

/// Pairs TIM-TP messages with PPS edges.
#[derive(Clone, Debug, Default)]
pub struct QerrPairing {
    pending: VecDeque<Pending>,
    gps_minus_utc_s: Option<i32>,
    last_edge_ns: Option<i64>,
    counters: QerrCounters,
}

impl QerrPairing {
    /// A pairing that knows no GPS−UTC yet (UTC-based TIM-TP pairs regardless).
    pub fn new() -> Self {
        Self::default()
    }

    /// GPS−UTC in seconds (18 since 2017), from the receiver or the leap table:
    /// needed only when the receiver reports TIM-TP in GNSS time.
    pub fn set_gps_minus_utc_s(&mut self, seconds: Option<i32>) {
        self.gps_minus_utc_s = seconds;
    }

    /// Counts so far.
    pub fn counters(&self) -> QerrCounters {
        self.counters
    }

    /// A TIM-TP arrived at `arrival_ns` (the clock edges are stamped on).
    pub fn on_tim_tp(&mut self, report: &TimePulseReport, arrival_ns: i64) {
        self.counters.messages += 1;
        let mut reason = None;
        if !report.tow_ms.is_multiple_of(1000) || report.tow_sub_ms != 0 {
            reason = Some(SkipReason::OffGrid);
        }
        // Seconds from UTC to the message's scale at this date.
        let scale_minus_utc_s = match report.time_base {
            TimeBase::Utc => Some(0),
            // GPS (0) and Galileo (3) system times are kept aligned to each other.
            TimeBase::Gnss if matches!(report.time_ref_gnss, 0 | 3) => {
                self.gps_minus_utc_s.map(i64::from)
            }
            TimeBase::Gnss => None,
        };
        let (utc_week, utc_tow_s) = match scale_minus_utc_s {
            Some(offset) => {
                let t = i64::from(report.week) * WEEK_S + i64::from(report.tow_s()) - offset;
                (t.div_euclid(WEEK_S), t.rem_euclid(WEEK_S))
            }
            None => {
                reason = reason.or(Some(SkipReason::UnknownTimeBase));
                (i64::MIN, i64::MIN)
            }
        };
        if self.pending.len() == MAX_PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back(Pending {
            arrival_ns,
            utc_week,
            utc_tow_s,
            report: *report,
            reason,
        });
    }

    /// An edge stamped `edge_ns`, labelled with the UTC second `label_unix_s`
    /// (the second that begins at the edge): its correction, if certain.
    pub fn on_edge(&mut self, edge_ns: i64, label_unix_s: i64) -> QerrDecision {
        let since_epoch = label_unix_s - GPS_EPOCH_UNIX_S;
        let (week, tow_s) = (
            since_epoch.div_euclid(WEEK_S),
            since_epoch.rem_euclid(WEEK_S),
        );
        // Only messages sent since the previous pulse can describe this one.
        let window_start_ns = self
            .last_edge_ns
            .filter(|&last| last < edge_ns)
            .map_or(edge_ns - MAX_MESSAGE_AGE_NS, |last| {
                last.max(edge_ns - MAX_MESSAGE_AGE_NS)
            });
        self.last_edge_ns = Some(edge_ns);
        self.pending.retain(|p| p.arrival_ns > window_start_ns);
        // The latest message naming this second (duplicates: the last is best).
        let found = self
            .pending
            .iter()
            .rposition(|p| p.utc_week == week && p.utc_tow_s == tow_s);
        let decision = match found.map(|i| self.pending[i]) {
            Some(p) => match p.reason {
                Some(reason) => QerrDecision::Skip(reason),
                None if !p.report.q_err_valid => QerrDecision::Skip(SkipReason::QerrInvalid),
                None => QerrDecision::Apply {
                    q_err_ps: p.report.q_err_ps,
                },
            },
            None => {
                // A message we cannot tie to UTC may still be this edge's: say why it was skipped.
                match self.pending.iter().rev().find_map(|p| p.reason) {
                    Some(reason) => QerrDecision::Skip(reason),
                    None => QerrDecision::Skip(SkipReason::NoMessage),
                }
            }
        };
        // Everything up to the one used is done with.
        if let Some(i) = found {
            self.pending.drain(..=i);
        }
        match decision {
            QerrDecision::Apply { .. } => self.counters.applied += 1,
            QerrDecision::Skip(SkipReason::NoMessage) => self.counters.no_message += 1,
            QerrDecision::Skip(SkipReason::QerrInvalid) => self.counters.invalid += 1,
            QerrDecision::Skip(_) => self.counters.uncertain += 1,
        }
        decision
    }
}

#[cfg(test)]
mod tests;
