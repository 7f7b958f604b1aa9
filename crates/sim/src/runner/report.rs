//! What a run reports: the summary, the diagnostics, and the
//! statistics accumulated one measurement per simulated second.

use super::*;

/// The summary the issue asks for: one JSON object per scenario.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenarioReport {
    /// Scenario name.
    pub name: String,
    /// RMS of (disciplined clock − true time) after warm-up, ns.
    pub rms_offset_ns: f64,
    /// Largest |clock − true time| after warm-up, ns.
    pub max_abs_offset_ns: f64,
    /// First second from which |error| stays under 1 µs for 60 s.
    pub lock_time_s: Option<u64>,
    /// First second at which the box would serve as synchronised.
    pub sync_time_s: Option<u64>,
    /// Seconds served as synchronised while |error| exceeded the advertised root dispersion.
    pub served_bad_s: u64,
    /// Largest |error| while in holdover, ns (None: never in holdover).
    pub holdover_max_abs_offset_ns: Option<f64>,
    /// Clock steps.
    pub steps: u64,
}

/// What else happened in a run, for diagnosis (not part of the JSON).
#[derive(Clone, Debug, Serialize)]
pub struct RunDetails {
    /// Pulses delivered to the refclock (including spurious ones).
    pub edges_sent: u64,
    /// Spurious pulses among them.
    pub spurious_sent: u64,
    /// NMEA bursts written (and flushed by the serial shell).
    pub bursts_sent: u64,
    /// UBX-TIM-TP messages written (duplicates counted, dropped ones not).
    pub tim_tp_sent: u64,
    /// Epochs the real parser produced from them.
    pub epochs_parsed: u64,
    /// Seconds spent in each state (acquiring, locked, holdover, unsynchronised).
    pub seconds_in_state: [u64; 4],
    /// Seconds served as synchronised.
    pub served_s: u64,
    /// The first second served as synchronised with |error| beyond the bound.
    pub first_served_bad_s: Option<u64>,
    /// Epochs the parser labelled 23:59:60.
    pub leap_second_epochs: u64,
    /// Epochs that carried a leap announcement.
    pub leap_announced_epochs: u64,
    /// Leap seconds the simulated kernel applied (−1 per insert, +1 per delete).
    pub kernel_leap_steps_s: i64,
    /// Changes of the clock's leap flag: (second of the run, flag, UTC label then).
    pub leap_flag_changes: Vec<(f64, LeapChange, String)>,
    /// The refclock's status at the end (None if the scenario could not start).
    pub final_status: Option<Status>,
    /// What the box would have kept beside its drift file at the end.
    #[serde(skip)]
    pub thermal_record: Option<ThermalRecord>,
}

/// A finished run.
#[derive(Clone, Debug)]
pub struct ScenarioRun {
    /// The summary.
    pub report: ScenarioReport,
    /// Diagnostics.
    pub details: RunDetails,
}

impl ScenarioRun {
    /// Human-readable diagnostics (what was sent, what the parser and refclock
    /// made of it, where the state machine spent its time), one item per line.
    pub fn diagnostics(&self) -> Vec<String> {
        let d = &self.details;
        let mut lines = vec![
            format!(
                "sent: {} pulses ({} spurious), {} NMEA bursts; parsed {} epochs ({} labelled 23:59:60, {} announcing a leap)",
                d.edges_sent,
                d.spurious_sent,
                d.bursts_sent,
                d.epochs_parsed,
                d.leap_second_epochs,
                d.leap_announced_epochs
            ),
            format!(
                "seconds acquiring {}, locked {}, holdover {}, unsynchronised {}; served as synchronised {} (first bad second: {}); kernel leap steps {} s",
                d.seconds_in_state[0],
                d.seconds_in_state[1],
                d.seconds_in_state[2],
                d.seconds_in_state[3],
                d.served_s,
                d.first_served_bad_s
                    .map_or("none".to_string(), |s| s.to_string()),
                d.kernel_leap_steps_s
            ),
        ];
        if !d.leap_flag_changes.is_empty() {
            let changes: Vec<String> = d
                .leap_flag_changes
                .iter()
                .map(|(t, flag, label)| format!("{flag:?} at {t:.1} s ({label})"))
                .collect();
            lines.push(format!("clock leap flag: {}", changes.join(", ")));
        }
        if let Some(q) = d.final_status.as_ref().and_then(|st| st.qerr.as_ref()) {
            lines.push(format!(
                "qErr correction {}: {} TIM-TP sent, {} received; {} edges corrected, skipped {} (no message), {} (invalid), {} (uncertain)",
                if q.enabled { "on" } else { "off" },
                d.tim_tp_sent,
                q.messages,
                q.applied,
                q.skipped_no_message,
                q.skipped_invalid,
                q.skipped_uncertain
            ));
        }
        if let Some(st) = &d.final_status {
            lines.push(format!(
                "final: {} ({}), stratum {}, root dispersion {:.0} ns (+{:.3} ns/s), frequency {:.4} ppm fast, jitter {:.0} ns",
                st.state.as_str(),
                st.state_reason,
                st.stratum,
                st.root_dispersion_ns,
                st.dispersion_rate_ns_per_s,
                // chrony's sign: positive = the oscillator runs fast.
                -st.frequency_ppm,
                st.jitter_ns
            ));
            let rejected: Vec<String> = st
                .rejections
                .iter()
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(reason, n)| format!("{n} {}", reason.explain()))
                .collect();
            if !rejected.is_empty() {
                lines.push(format!("rejected: {}", rejected.join("; ")));
            }
        }
        lines
    }
}

/// One per-second comparison of the disciplined clock with true time.
#[derive(Copy, Clone, Debug, PartialEq)]
pub(super) struct Measurement {
    /// Seconds since the start of the run.
    pub(super) second: u64,
    /// Disciplined clock minus true time, ns.
    pub(super) err_ns: f64,
    /// Whether the box serves as synchronised now.
    pub(super) serving: bool,
    /// The root dispersion it advertises now, ns.
    pub(super) bound_ns: f64,
    /// State machine position now.
    pub(super) state: SyncState,
}

/// The statistics, accumulated one [`Measurement`] at a time.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) warmup_s: u64,
    pub(super) sum_sq: f64,
    pub(super) n: u64,
    pub(super) max_abs: f64,
    pub(super) lock_time: Option<u64>,
    pub(super) streak_start: Option<u64>,
    pub(super) sync_time: Option<u64>,
    pub(super) served_bad: u64,
    pub(super) first_served_bad: Option<u64>,
    pub(super) served: u64,
    pub(super) holdover_max: Option<f64>,
    pub(super) seconds_in_state: [u64; 4],
}

impl Stats {
    pub(super) fn new(warmup_s: u64) -> Self {
        Self {
            warmup_s,
            ..Self::default()
        }
    }

    pub(super) fn record(&mut self, m: &Measurement) {
        let abs = m.err_ns.abs();
        if m.serving {
            self.served += 1;
            self.sync_time.get_or_insert(m.second);
            // NaN counts as bad: an error bound that is not a number is no bound.
            if m.err_ns.is_nan() || m.bound_ns.is_nan() || abs > m.bound_ns {
                self.served_bad += 1;
                self.first_served_bad.get_or_insert(m.second);
            }
        }
        let state_idx = match m.state {
            SyncState::Acquiring => 0,
            SyncState::Locked => 1,
            SyncState::Holdover => 2,
            SyncState::Unsynchronised => 3,
        };
        self.seconds_in_state[state_idx] += 1;
        if m.state == SyncState::Holdover {
            let h = self.holdover_max.get_or_insert(0.0);
            *h = h.max(abs);
        }
        if abs < LOCK_THRESHOLD_NS {
            let start = *self.streak_start.get_or_insert(m.second);
            if self.lock_time.is_none() && m.second + 1 - start >= LOCK_HOLD_S {
                self.lock_time = Some(start);
            }
        } else {
            self.streak_start = None;
        }
        if m.second >= self.warmup_s {
            self.sum_sq += m.err_ns * m.err_ns;
            self.n += 1;
            self.max_abs = self.max_abs.max(abs);
        }
    }

    pub(super) fn report(&self, name: &str, steps: u64) -> ScenarioReport {
        let round1 = |v: f64| (v * 10.0).round() / 10.0;
        ScenarioReport {
            name: name.to_string(),
            rms_offset_ns: round1(if self.n > 0 {
                (self.sum_sq / self.n as f64).sqrt()
            } else {
                f64::NAN
            }),
            max_abs_offset_ns: round1(self.max_abs),
            lock_time_s: self.lock_time,
            sync_time_s: self.sync_time,
            served_bad_s: self.served_bad,
            holdover_max_abs_offset_ns: self.holdover_max.map(round1),
            steps,
        }
    }
}
