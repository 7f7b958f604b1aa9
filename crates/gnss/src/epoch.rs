//! What one second of receiver output amounts to.

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
