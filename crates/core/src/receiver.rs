//! What a receiver says: one [`Epoch`] per second of output, and the reports
//! it sends besides (u-blox TIM-TP and survey-in, its identity). The GNSS
//! reader fills them from the serial line; the simulator builds them directly.

use serde::Serialize;
use skytime_timebase::{Arrival, LeapChange, UtcSecond};

/// Position fix dimension, as NMEA GSA reports it (gpsd's `mode`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FixMode {
    /// Mode unknown: no GSA seen this second.
    #[default]
    Unknown,
    /// No fix (gpsd mode 1).
    NoFix,
    /// 2-D fix (gpsd mode 2).
    Fix2D,
    /// 3-D fix (gpsd mode 3).
    Fix3D,
}

/// One satellite from GSV/GSA, for the status page's sky table.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SatelliteInfo {
    /// PRN / satellite id as the receiver numbers it.
    pub prn: u16,
    /// Carrier-to-noise ratio in dB-Hz, if reported.
    pub snr_dbhz: Option<u8>,
    /// Whether the receiver used it in the fix (listed in GSA).
    pub used: bool,
}

/// Every sentence of one second gathered into one record: the label the
/// discipline pairs with a PPS edge, and whether it may be trusted.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Epoch {
    /// The UTC second this output labels (may be 23:59:60).
    pub utc: UtcSecond,
    /// Fraction of the second the fix is for, in ms (0 for 1 Hz receivers).
    pub millis: u16,
    /// True only with a real fix: RMC status A and/or GGA quality > 0, and no
    /// sentence of the second saying otherwise.
    pub valid: bool,
    /// Fix dimension from GSA.
    pub fix_mode: FixMode,
    /// Satellites used in the fix (GGA/GNS/GSA).
    pub sats_used: Option<u8>,
    /// Satellites in view (GSV, summed over constellations).
    pub sats_visible: Option<u8>,
    /// Horizontal dilution of precision.
    pub hdop: Option<f32>,
    /// A leap second the receiver announced for the end of this day/month.
    pub leap: LeapChange,
    /// Talker of the time-bearing sentence (GP, GN, ...).
    pub talker: String,
    /// Sentence types seen this second, in order (e.g. `["RMC","GGA","GSA"]`).
    pub sentences: Vec<String>,
    /// Satellites in view this second.
    pub satellites: Vec<SatelliteInfo>,
    /// When the first byte of this second's output arrived.
    pub first_byte: Arrival,
    /// When the last byte of this second's output arrived (end of the burst).
    pub last_byte: Arrival,
}

/// One report, in arrival order with the epochs.
#[derive(Clone, Debug, PartialEq)]
pub enum ReceiverReport {
    /// TIM-TP: the next pulse's time and quantisation error.
    TimePulse {
        /// The message.
        report: TimePulseReport,
        /// When its last byte arrived.
        arrival: Arrival,
    },
    /// TIM-SVIN or NAV-SVIN.
    SurveyIn(SurveyIn),
    /// The receiver's family or firmware became known or changed.
    Identified(ReceiverInfo),
}

/// What the receiver says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverInfo {
    /// Maker and module or chip, e.g. `u-blox LEA-M8T-0`, `MediaTek MT3333`.
    pub family: String,
    /// Firmware version, e.g. `TIM 1.10`.
    pub firmware: String,
}

/// Which time scale TIM-TP's time of week is in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TimeBase {
    /// The GNSS's own time (GPS time for timeRefGnss 0).
    Gnss,
    /// UTC.
    Utc,
}

/// TIM-TP: the time of the *next* pulse, sent before it, with the
/// quantisation error (qErr) the receiver will make on it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TimePulseReport {
    /// Time of week of the pulse, ms.
    pub tow_ms: u32,
    /// Sub-millisecond part of it, ms · 2^-32.
    pub tow_sub_ms: u32,
    /// Quantisation error of the pulse, ps: the ideal pulse minus the real
    /// one (add it to the edge's stamp; A. Wallin's F9T measurement).
    pub q_err_ps: i32,
    /// Week number of the time base.
    pub week: u16,
    /// Scale of tow_ms and week.
    pub time_base: TimeBase,
    /// The receiver knows the UTC offset.
    pub utc_available: bool,
    /// RAIM: 0 unavailable, 1 not active, 2 active.
    pub raim: u8,
    /// qErr is meaningful (flag qErrInvalid clear).
    pub q_err_valid: bool,
    /// refInfo bits 0–3: the GNSS of the time reference (0 GPS, 1 GLONASS, 2 BeiDou, 3 Galileo).
    pub time_ref_gnss: u8,
    /// refInfo bits 4–7: the UTC standard.
    pub utc_standard: u8,
}

impl TimePulseReport {
    /// qErr if the receiver vouches for it.
    pub fn q_err_ps(&self) -> Option<i32> {
        self.q_err_valid.then_some(self.q_err_ps)
    }

    /// The pulse's time of week, ns, rounded down.
    pub fn tow_ns(&self) -> u64 {
        u64::from(self.tow_ms) * 1_000_000 + ((u64::from(self.tow_sub_ms) * 1_000_000) >> 32)
    }

    /// The pulse's whole second of the week (what a pairing checks).
    pub fn tow_s(&self) -> u32 {
        self.tow_ms / 1000
    }
}

/// Survey-in progress, from either message that reports it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SurveyIn {
    /// Time surveyed so far, s.
    pub duration_s: u32,
    /// Positions averaged.
    pub observations: u32,
    /// Accuracy of the mean position, mm.
    pub accuracy_mm: u32,
    /// The survey met its limits; the position is held.
    pub valid: bool,
    /// The survey is still running.
    pub active: bool,
}
