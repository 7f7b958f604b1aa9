//! The Kalman bank and the noise it is run with: a labelled pulse's offset
//! in, the filter updated (or the pulse rejected as an outlier, or the
//! filter restarted after a real phase jump), the clock steered, lock judged.

use super::error_bound::{Bound, BoundInputs, GuardNoise};
use super::pulse_train::EdgeRec;
use super::{OUTLIER_STREAK_RESET, Refclock, Sample, secs_between};
use crate::filter::{FilterBank, Kalman, NoiseParams};
use crate::status::{RejectReason, SyncState};
use skytime_core::Clock;
use skytime_timebase::MonoNanos;
use tracing::{info, warn};

/// How far (in variance) the pulses' own jitter estimate must exceed the
/// learned measurement noise before it replaces it: 16, i.e. 4× in σ. The
/// estimate comes from 32 pulses and wanders by tens of percent; taking the
/// larger of the two at every pulse inflated the noise and cost accuracy
/// (s11: +19 % RMS, s15: +35 % holdover error), and 4 in variance still cost
/// s15 its holdover. A jitter the gate hides is orders of magnitude above the
/// learned noise (the VM's ~100 µs against 300 ns), far past this ratio.
const PULSE_JITTER_OVERRIDE_RATIO: f64 = 16.0;
/// A pulse is an outlier only beyond this many times the clock's precision,
/// however tight the gate: below it, the gate would be measuring the clock's
/// own reading granularity.
const OUTLIER_PRECISION_FLOOR: f64 = 4.0;
/// How close consecutive outliers must be to each other to count as one
/// moved phase: a quarter of how far they are from the prediction…
const JUMP_AGREEMENT_FRACTION: f64 = 0.25;
/// …plus this many standard deviations of the measurement noise.
const JUMP_AGREEMENT_SIGMAS: f64 = 8.0;
/// The offset is removed over this long (s): until the next pulse, as
/// chrony does.
const PHASE_CORRECTION_S: f64 = 1.0;
/// Pulses the running RMS offset averages over, at most.
const RMS_WINDOW: f64 = 64.0;

impl<C: Clock> Refclock<C> {
    pub(super) fn reset_filter(&mut self, why: &str, mono: MonoNanos) {
        self.kf = None;
        self.bank = None;
        self.bound.clear();
        self.last_sample = None;
        self.labels.forget_consensus();
        self.noise.clear_history();
        self.wander.clear_history();
        self.thermal.clear_history();
        self.thermal.end_coast(mono);
        self.consecutive_good = 0;
        self.outlier_streak = 0;
        let held = self.labels.resume().is_some();
        if matches!(self.state, SyncState::Locked) || held {
            self.set_state(SyncState::Acquiring, why.to_string(), mono);
        }
    }

    /// One labelled offset measurement `z` (ns) from pulse `rec`.
    pub(super) fn measure(&mut self, z: f64, rec: EdgeRec, label: i64) {
        let mono = rec.mono;
        self.absorb_thermal_coast(mono);
        self.pulse_jitter.add(rec.idx, z - rec.applied);
        let q = self.noise_params();
        let (Some(mut bank), Some(last)) = (self.bank.take(), self.last_sample) else {
            return self.start_filter(z, rec, label, q);
        };
        let dt = (rec.idx - last.idx) as f64;
        let applied = self.applied_at(mono);
        let preds = bank.predicted(dt, applied - last.applied_ns, &q);
        let mut pred = preds[bank.best_index()];
        let inn = pred.innovation(z, q.r);
        let gate = self.cfg.outlier_sigmas * inn.variance.sqrt();
        if inn.residual_ns.abs() > gate.max(self.cfg.clock_precision_ns * OUTLIER_PRECISION_FLOOR) {
            self.outlier_streak += 1;
            let consistent = self.outlier_last_z.is_some_and(|p| {
                (z - p).abs()
                    < JUMP_AGREEMENT_FRACTION * inn.residual_ns.abs()
                        + JUMP_AGREEMENT_SIGMAS * q.r.sqrt()
            });
            self.outlier_last_z = Some(z);
            if self.outlier_streak >= OUTLIER_STREAK_RESET && consistent {
                // The phase moved for real: start again from here.
                let jump = inn.residual_ns;
                warn!(jump_ns = jump, "phase jump; re-acquiring");
                pred.x = z;
                pred.pxx = q.r + jump * jump;
                pred.pff += (jump / dt.max(1.0)).powi(2);
                bank.reset_to(pred);
                self.bank = Some(bank);
                self.bound.restart_after_jump(pred);
                self.kf = Some(pred);
                self.noise.clear_history();
                self.wander.clear_history();
                self.thermal.clear_history();
                self.last_sample = Some(Sample {
                    mono,
                    idx: rec.idx,
                    label,
                    applied_ns: applied,
                });
                self.outlier_streak = 0;
                self.consecutive_good = 0;
                let held = self.labels.resume().is_some();
                if matches!(self.state, SyncState::Locked | SyncState::Holdover) || held {
                    self.set_state(
                        SyncState::Acquiring,
                        format!("phase jump of {jump:.0} ns"),
                        mono,
                    );
                }
                self.steer(mono);
                return;
            }
            self.bank = Some(bank);
            self.bound.doubt(inn.residual_ns);
            return self.reject(RejectReason::OutlierEdge, mono, || {
                format!(
                    "offset {:.0} ns from prediction, gate {:.0} ns",
                    inn.residual_ns, gate
                )
            });
        }
        self.outlier_streak = 0;
        self.outlier_last_z = None;
        self.bound.resolve_doubt();
        bank.update(preds, z, q.r);
        self.kf = Some(bank.best());
        self.bank = Some(bank);
        let gq = self.guard_noise().guard();
        self.bound
            .update(dt, applied - last.applied_ns, &gq, z, q.r);
        self.accept(z, rec, label, applied);
    }

    fn start_filter(&mut self, mut z: f64, rec: EdgeRec, label: i64, q: NoiseParams) {
        let mono = rec.mono;
        if self.steering.step_allowed() && z.abs() > self.cfg.step_threshold_ms * 1e6 {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "an offset beyond the step threshold but from labelled seconds, far inside i64 ns"
            )]
            let step = -z.round() as i64;
            if self.step_clock(step, mono) {
                z += step as f64;
            }
        }
        self.steering.allow_step(false);
        let applied = self.applied_at(mono);
        let skew = self.steering.start_skew_ppb();
        let k = Kalman::new(
            z,
            q.r.max(z * z),
            -self.steering.start_frequency_ppb(),
            skew * skew,
        );
        self.kf = Some(k);
        self.bank = Some(FilterBank::new(k));
        self.bound.start(k);
        self.accept(z, rec, label, applied);
    }

    /// The learned noise, with the measurement noise raised to what the
    /// recent pulses show, gated or not, once that is far above it (a jitter
    /// the gate keeps the learner from hearing).
    pub(super) fn noise_params(&self) -> NoiseParams {
        let mut q = self.noise.params();
        if let Some(r) = self.pulse_jitter.variance_ns2()
            && r > PULSE_JITTER_OVERRIDE_RATIO * q.r
        {
            q.r = r;
        }
        q
    }

    /// The noise the guard filter and the bound assume.
    fn guard_noise(&self) -> GuardNoise {
        GuardNoise {
            learned: self.noise_params(),
            plain: self.noise.params(),
            q_rw_upper: self.noise.q_rw_upper(),
            // How much noisier than learned the best filter of the bank
            // finds the pulses (never below 1): the guard assumes at least that.
            bank_scale: self
                .bank
                .as_ref()
                .map(|b| b.best_scale())
                .unwrap_or(1.0)
                .max(1.0),
            safety_factor: self.cfg.holdover_noise_safety_factor,
        }
    }

    /// The error bound at `mono` (see [`super::error_bound`]).
    pub(super) fn error_bound(&self, mono: MonoNanos) -> Bound {
        let inputs = self.last_sample.map(|s| BoundInputs {
            mono,
            since_sample_s: secs_between(s.mono, mono).max(0.0),
            applied_since_sample_ns: self.applied_at(mono) - s.applied_ns,
            free_frequency_ppb: self.free_frequency(),
            kf: self.kf.as_ref(),
            noise: self.guard_noise(),
            fixed_ns: self.cfg.pps_systematic_uncertainty_ns
                + self.cfg.clock_precision_ns
                + f64::from(self.pps.last_edge_uncertainty_ns),
            sigmas: self.cfg.error_bound_sigmas,
            temperature_sigmas: self.cfg.temperature_bound_sigmas,
            thermal: &self.thermal,
            wander: &self.wander,
        });
        self.bound.at(inputs.as_ref())
    }

    fn accept(&mut self, z: f64, rec: EdgeRec, label: i64, applied: f64) {
        let mono = rec.mono;
        self.noise.add(rec.idx, z - applied);
        self.wander.add(rec.idx, z - applied);
        let q = self.noise.params();
        self.thermal
            .on_pulse(rec.idx, mono, z - applied, q.r, q.q_rw);
        self.last_sample = Some(Sample {
            mono,
            idx: rec.idx,
            label,
            applied_ns: applied,
        });
        self.pps.edges_used += 1;
        self.shift_pps_reach(true);
        self.consecutive_good += 1;
        if let Some(k) = &self.kf {
            self.rms_n = (self.rms_n + 1.0).min(RMS_WINDOW);
            self.rms_sq += (k.x * k.x - self.rms_sq) / self.rms_n;
        }
        self.steer(mono);
        self.evaluate_lock(mono);
    }

    /// Frequency correction: cancel the estimated oscillator error and remove
    /// the estimated offset over the next second.
    fn steer(&mut self, mono: MonoNanos) {
        let Some(k) = self.kf else { return };
        // Over the next second the frequency moves by the drift: aim at its middle.
        let ppb = -(k.f + 0.5 * k.d) - k.x / PHASE_CORRECTION_S;
        self.set_frequency(ppb, mono);
        self.steering.start_phase_term(mono);
    }

    fn evaluate_lock(&mut self, mono: MonoNanos) {
        let Some(k) = &self.kf else { return };
        if self.labels.unsettled() {
            return;
        }
        let err = k.x.abs() + self.cfg.error_bound_sigmas * k.pxx.sqrt();
        let ready =
            self.consecutive_good >= self.cfg.lock_min_samples && err <= self.cfg.lock_max_error_ns;
        match self.state {
            SyncState::Locked => {}
            SyncState::Unsynchronised => {
                self.set_state(
                    SyncState::Acquiring,
                    "reference back; converging".into(),
                    mono,
                );
                if ready {
                    self.set_state(
                        SyncState::Locked,
                        format!("converged: error ≤ {err:.0} ns"),
                        mono,
                    );
                }
            }
            SyncState::Acquiring | SyncState::Holdover => {
                if ready {
                    self.set_state(
                        SyncState::Locked,
                        format!("converged: error ≤ {err:.0} ns"),
                        mono,
                    );
                }
            }
        }
    }

    /// The reference is back: the frequency change and phase that the
    /// temperature compensation put in become the filters' own, so that the
    /// first pulses are predicted where the model put the clock.
    fn absorb_thermal_coast(&mut self, mono: MonoNanos) {
        let Some((delta_ppb, comp_ns)) = self.thermal.end_coast(mono) else {
            return;
        };
        info!(
            compensation_ppb = delta_ppb,
            phase_us = comp_ns / 1e3,
            "reference back: temperature compensation handed to the filter"
        );
        if let Some(b) = self.bank.as_mut() {
            b.shift_frequency(delta_ppb);
        }
        if let Some(k) = self.kf.as_mut() {
            k.f += delta_ppb;
        }
        self.bound.shift_frequency(delta_ppb);
        if let Some(s) = self.last_sample.as_mut() {
            s.applied_ns -= comp_ns;
        }
    }
}
