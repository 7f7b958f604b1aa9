//! What the discipline tells the world: the stratum and reference to serve,
//! the [`Status`] snapshot, the drift record, and the clock's own sync report.

use super::{NS_I, Refclock};
use crate::config::ReferenceIdChoice;
use crate::drift::DriftRecord;
use crate::status::elapsed;
use crate::status::{
    HoldoverStatus, LabelDisagreement, NoiseStatus, ReferenceId, Status, SyncState,
};
use crate::thermal::ThermalStatus;
use skytime_core::{Clock, SyncReport};
use skytime_timebase::{MonoNanos, UnixNanos};
use std::time::Duration;

/// The stratum that says "not synchronised".
const UNSYNCHRONISED_STRATUM: u8 = 16;

impl<C: Clock> Refclock<C> {
    /// (stratum, reference id) to serve now.
    fn serving(&self, mono: MonoNanos) -> (u8, ReferenceId) {
        let reference = match self.cfg.reference_id {
            ReferenceIdChoice::Gps => ReferenceId::GPS,
            ReferenceIdChoice::Pps => ReferenceId::PPS,
        };
        let within_limit =
            || self.error_bound(mono).bound_ns <= self.cfg.holdover_max_root_dispersion_us * 1000.0;
        // Which second it is is in dispute: not even the local fallback is
        // served, since the clock may be whole seconds off.
        if self.label_dispute_blocks(mono) {
            return (UNSYNCHRONISED_STRATUM, reference);
        }
        let fallback = match self.cfg.local_stratum {
            Some(s) if self.ever_locked => (s, ReferenceId::LOCAL),
            _ => (UNSYNCHRONISED_STRATUM, reference),
        };
        match self.state {
            SyncState::Locked => (1, reference),
            SyncState::Holdover if within_limit() => (1, reference),
            SyncState::Holdover | SyncState::Unsynchronised => fallback,
            SyncState::Acquiring => (UNSYNCHRONISED_STRATUM, reference),
        }
    }

    /// A snapshot for the NTP server and the operator surfaces.
    pub fn status(&self) -> Status {
        let now = self.clock.arrival();
        let mono = now.monotonic;
        let b = self.error_bound(mono);
        let (bound, rate, sigma) = (b.bound_ns, b.rate_ns_per_s, b.sigma_ns);
        let (stratum, reference_id) = self.serving(mono);
        let q = self.noise_params();
        let kf = self.kf;
        let pending_leap = self.leap.pending();
        let u_ppb = self.steering.frequency_ppb();
        let holdover = (self.state == SyncState::Holdover).then(|| HoldoverStatus {
            elapsed: self
                .last_sample
                .map(|s| elapsed(s.mono, mono))
                .unwrap_or_default(),
            bound_ns: bound,
            limit_ns: self.cfg.holdover_max_root_dispersion_us * 1000.0,
        });
        Status {
            as_of: now.realtime,
            as_of_mono: mono,
            state: self.state,
            state_reason: self.state_reason.clone(),
            state_since: self.state_since,
            stratum,
            reference_id,
            leap: pending_leap.0,
            leap_at: pending_leap.1.map(|s| UnixNanos(s * NS_I)),
            leap_source: pending_leap.2,
            leap_armed: self.leap.armed(),
            leap_sources_disagree: self.leap.sources_disagree(),
            leap_file_expires: self.leap.file_expires(),
            reference_time: self.last_sample.map(|s| UnixNanos(s.label * NS_I)),
            root_dispersion_ns: bound,
            dispersion_rate_ns_per_s: rate,
            offset_ns: kf.map(|k| k.x).unwrap_or(0.0),
            offset_sigma_ns: sigma,
            rms_offset_ns: self.rms_sq.sqrt(),
            frequency_ppm: u_ppb / 1000.0,
            residual_frequency_ppm: kf.map(|k| (k.f + u_ppb) / 1000.0).unwrap_or(0.0),
            skew_ppm: kf
                .map(|k| k.pff.sqrt() / 1000.0)
                .unwrap_or(self.steering.start_skew_ppb() / 1000.0),
            jitter_ns: q.r.sqrt(),
            noise: NoiseStatus {
                measurement_ns: q.r.sqrt(),
                white_fm_ns_per_sqrt_s: q.q_wfm.sqrt(),
                random_walk_ppb_per_sqrt_s: q.q_rw.sqrt(),
            },
            holdover,
            holdover_limit_ns: self.cfg.holdover_max_root_dispersion_us * 1000.0,
            pps: self.pps.clone(),
            nmea: self.nmea.clone(),
            rejections: self.rejections,
            last_rejection: self.last_rejection.clone(),
            label_disagreement: self.labels.dispute().map(|d| LabelDisagreement {
                offset_s: d.offset_s,
                duration: elapsed(d.since, mono),
                confirm_after: Duration::from_secs(self.cfg.label_confirm_s),
                grace: Duration::from_secs(self.cfg.label_disagreement_grace_s),
                serving_suspended: self.label_dispute_blocks(mono),
                unannounced_leap: d.leap.map(|(c, _)| c),
            }),
            steps: self.steering.steps(),
            thermal: self.thermal_status(),
            qerr: self.qerr.status(),
        }
    }

    fn thermal_status(&self) -> Option<ThermalStatus> {
        let st = self.thermal.status();
        (self.cfg.temperature_sensor.is_some()
            || st.sensor != crate::thermal::SensorHealth::Absent
            || st.blocks > 0)
            .then_some(st)
    }

    /// What the daemon should persist to the drift file: the learned
    /// frequency, once the filter has converged at least once.
    pub fn drift_record(&self) -> Option<DriftRecord> {
        let k = self.kf.as_ref()?;
        if !self.ever_locked {
            return None;
        }
        Some(DriftRecord {
            frequency_ppm: -k.f / 1000.0,
            skew_ppm: k.pff.sqrt() / 1000.0,
        })
    }
    pub(super) fn report_to_clock(&mut self, mono: MonoNanos, sec: i64) {
        if sec == self.last_report_s && sec != i64::MIN {
            return;
        }
        self.last_report_s = sec;
        let b = self.error_bound(mono);
        let report = SyncReport {
            synchronised: self.serving(mono).0 < UNSYNCHRONISED_STRATUM
                && self.state != SyncState::Unsynchronised,
            est_error_ns: b.sigma_ns,
            max_error_ns: b.bound_ns,
        };
        if let Err(e) = self.clock.report_sync(report) {
            tracing::debug!(error = %e, "could not report sync state to the clock");
        }
    }
}
