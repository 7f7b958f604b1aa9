//! Snapshots shared by the crate's unit tests.

use skytime_gnss::{FixMode, SatelliteInfo};
use skytime_refclock::{
    Nanos, NmeaStatus, NoiseStatus, PpsStatus, ReferenceId, Rejections, Status, SyncState,
};
use skytime_timebase::{Arrival, LeapChange, MonoNanos, NANOS_PER_SEC, UnixNanos};

const S: i64 = NANOS_PER_SEC;

/// A healthy locked box at monotonic t = 100 s: PPS and NMEA fresh, 3-D fix, 7 satellites.
pub(crate) fn locked_status() -> Status {
    Status {
        as_of: UnixNanos(1_767_225_700 * S),
        as_of_mono: MonoNanos(100 * S),
        state: SyncState::Locked,
        state_reason: "PPS and labels agree".into(),
        state_since: MonoNanos(20 * S),
        stratum: 1,
        reference_id: ReferenceId::GPS,
        leap: LeapChange::None,
        leap_at: None,
        leap_source: None,
        leap_armed: LeapChange::None,
        leap_sources_disagree: None,
        leap_file_expires: None,
        reference_time: Some(UnixNanos(1_767_225_700 * S)),
        root_dispersion_ns: 12_000.0,
        dispersion_rate_ns_per_s: 15.0,
        offset_ns: 20.0,
        offset_sigma_ns: 50.0,
        rms_offset_ns: 80.0,
        frequency_ppm: 12.0,
        residual_frequency_ppm: 0.001,
        skew_ppm: 0.002,
        jitter_ns: 500.0,
        noise: NoiseStatus::default(),
        holdover: None,
        holdover_limit_ns: 1e6,
        pps: PpsStatus {
            last_edge: Some(UnixNanos(1_767_225_700 * S)),
            last_edge_received: Some(MonoNanos(100 * S - S / 2)),
            reach: 0o377,
            edges_seen: 80,
            edges_used: 78,
            pulses_missed: 0,
            last_edge_uncertainty_ns: 0,
        },
        nmea: NmeaStatus {
            last_label: None,
            last_epoch_at: Some(Arrival {
                monotonic: MonoNanos(100 * S - S / 10),
                realtime: UnixNanos(1_767_225_700 * S),
            }),
            reach: 0o377,
            fix_valid: true,
            fix_mode: FixMode::Fix3D,
            sats_used: Some(7),
            sats_visible: Some(8),
            satellites: vec![SatelliteInfo {
                prn: 5,
                snr_dbhz: Some(40),
                used: true,
            }],
            epochs_seen: 80,
            epochs_paired: 78,
            delay_learned: Some(Nanos::from_ms(480.0)),
            delay_median: Some(Nanos::from_ms(480.0)),
            delay_p95: Some(Nanos::from_ms(500.0)),
        },
        rejections: Rejections::default(),
        last_rejection: None,
        label_disagreement: None,
        steps: 1,
        thermal: None,
        qerr: None,
    }
}
