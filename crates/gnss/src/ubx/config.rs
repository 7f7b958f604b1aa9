//! UBX configuration messages we send, each built whole (sync to checksum).
//!
//! Layouts are the u-blox M8 receiver description and protocol specification's
//! (UBX-13003221, protocol 15–23.01), which u-blox F9T firmware still accepts;
//! every builder is checked byte for byte in the tests below, against frames
//! published by other drivers where one exists. Everything is written to the
//! receiver's RAM only: a power cycle, or [`cfg_cfg_reload`], restores the
//! receiver's own saved configuration.

use super::{
    CLASS_CFG, CLASS_NMEA, CLASS_TIM, ID_CFG_CFG, ID_CFG_MSG, ID_CFG_PRT, ID_CFG_TMODE3,
    ID_CFG_TP5, encode,
};

/// CFG-PRT port id of the first UART (the one a hat or USB bridge wires up).
pub const PORT_UART1: u8 = 1;
/// Protocol mask bit: UBX.
pub const PROTO_UBX: u16 = 0x0001;
/// Protocol mask bit: NMEA.
pub const PROTO_NMEA: u16 = 0x0002;
/// CFG-PRT UART mode for 8 data bits, no parity, 1 stop bit: charLen = 0b11
/// (bits 6–7), parity = 0b100 "none" (bits 9–11), and bit 4, which u-blox
/// asks to be set for compatibility.
pub const MODE_8N1: u32 = 0x0000_08D0;

/// NMEA sentence ids within [`CLASS_NMEA`] for CFG-MSG.
pub mod nmea_id {
    /// GGA.
    pub const GGA: u8 = 0x00;
    /// GLL.
    pub const GLL: u8 = 0x01;
    /// GSA.
    pub const GSA: u8 = 0x02;
    /// GSV.
    pub const GSV: u8 = 0x03;
    /// RMC.
    pub const RMC: u8 = 0x04;
    /// VTG.
    pub const VTG: u8 = 0x05;
    /// ZDA.
    pub const ZDA: u8 = 0x08;
}

/// CFG-PRT (0x06 0x00), 20 bytes, for a UART: portID U1 @0, reserved U1 @1,
/// txReady X2 @2, mode X4 @4, baudRate U4 @8, inProtoMask X2 @12,
/// outProtoMask X2 @14, flags X2 @16, reserved U2 @18.
pub fn cfg_prt_uart(port: u8, baud: u32, in_protocols: u16, out_protocols: u16) -> Vec<u8> {
    let mut p = [0u8; 20];
    p[0] = port;
    p[4..8].copy_from_slice(&MODE_8N1.to_le_bytes());
    p[8..12].copy_from_slice(&baud.to_le_bytes());
    p[12..14].copy_from_slice(&in_protocols.to_le_bytes());
    p[14..16].copy_from_slice(&out_protocols.to_le_bytes());
    encode(CLASS_CFG, ID_CFG_PRT, &p)
}

/// CFG-MSG (0x06 0x01), 3-byte form: msgClass U1 @0, msgID U1 @1, rate U1 @2
/// (per navigation solution, on the port the command arrives on; 0 = off).
pub fn cfg_msg(class: u8, id: u8, rate: u8) -> Vec<u8> {
    encode(CLASS_CFG, ID_CFG_MSG, &[class, id, rate])
}

/// CFG-MSG for a standard NMEA sentence.
pub fn cfg_msg_nmea(sentence_id: u8, rate: u8) -> Vec<u8> {
    cfg_msg(CLASS_NMEA, sentence_id, rate)
}

/// CFG-CFG (0x06 0x09), 12-byte form: clearMask X4 @0, saveMask X4 @4,
/// loadMask X4 @8, all sections (0xFFFF) loaded: RAM reverts to the saved
/// configuration, undoing everything sent since. Without deviceMask the
/// receiver loads from all its permanent stores.
pub fn cfg_cfg_reload() -> Vec<u8> {
    let mut p = [0u8; 12];
    p[8..12].copy_from_slice(&0x0000_FFFFu32.to_le_bytes());
    encode(CLASS_CFG, ID_CFG_CFG, &p)
}

/// CFG-TP5 flag bits (X4 at payload offset 28).
pub mod tp5_flag {
    /// The pulse is output.
    pub const ACTIVE: u32 = 1 << 0;
    /// Synchronise to GNSS time once it is known (else free-running).
    pub const LOCK_GNSS_FREQ: u32 = 1 << 1;
    /// Use the *Lock values once locked to GNSS, the others before.
    pub const LOCKED_OTHER_SET: u32 = 1 << 2;
    /// freqPeriod fields are frequencies (Hz) rather than periods (µs).
    pub const IS_FREQ: u32 = 1 << 3;
    /// pulseLenRatio fields are lengths (µs) rather than duty ratios (2^-32).
    pub const IS_LENGTH: u32 = 1 << 4;
    /// Align the pulse to the top of a second of the time grid.
    pub const ALIGN_TO_TOW: u32 = 1 << 5;
    /// Rising edge at the top of the second.
    pub const POLARITY_RISING: u32 = 1 << 6;
    // gridUtcGnss, bits 7..10: 0 = UTC, 1 = GPS, 2 = GLONASS, 3 = BeiDou, 4 = Galileo.
}

/// A CFG-TP5 (0x06 0x31) message, version 1, 32 bytes: tpIdx U1 @0,
/// version U1 @1, reserved U1×2 @2, antCableDelay I2 @4 (ns), rfGroupDelay
/// I2 @6 (ns, read-only: sent as 0), freqPeriod U4 @8, freqPeriodLock U4 @12,
/// pulseLenRatio U4 @16, pulseLenRatioLock U4 @20, userConfigDelay I4 @24 (ns),
/// flags X4 @28.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TimePulse {
    /// 0: TIMEPULSE, 1: TIMEPULSE2.
    pub tp_index: u8,
    /// Antenna cable delay the receiver compensates, ns.
    pub antenna_cable_delay_ns: i16,
    /// Period (µs) or frequency (Hz) before GNSS lock.
    pub freq_period: u32,
    /// Period (µs) or frequency (Hz) once locked.
    pub freq_period_lock: u32,
    /// Pulse length (µs) or duty ratio (2^-32) before lock.
    pub pulse_len_ratio: u32,
    /// Pulse length (µs) or duty ratio (2^-32) once locked.
    pub pulse_len_ratio_lock: u32,
    /// A further delay the user wants, ns.
    pub user_config_delay_ns: i32,
    /// [`tp5_flag`] bits.
    pub flags: u32,
}

impl TimePulse {
    /// The pulse a time server wants: 1 Hz, rising edge on the UTC second,
    /// `pulse_width_us` long, and *no pulse at all* before GNSS lock, so an
    /// edge from a free-running receiver can never be taken for UTC.
    pub fn one_pps_utc(pulse_width_us: u32, antenna_cable_delay_ns: i16) -> Self {
        TimePulse {
            tp_index: 0,
            antenna_cable_delay_ns,
            freq_period: 1_000_000,
            freq_period_lock: 1_000_000,
            pulse_len_ratio: 0,
            pulse_len_ratio_lock: pulse_width_us,
            user_config_delay_ns: 0,
            flags: tp5_flag::ACTIVE
                | tp5_flag::LOCK_GNSS_FREQ
                | tp5_flag::LOCKED_OTHER_SET
                | tp5_flag::IS_LENGTH
                | tp5_flag::ALIGN_TO_TOW
                | tp5_flag::POLARITY_RISING,
        }
    }

    /// The whole CFG-TP5 frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = [0u8; 32];
        p[0] = self.tp_index;
        p[1] = 1; // message version
        p[4..6].copy_from_slice(&self.antenna_cable_delay_ns.to_le_bytes());
        p[8..12].copy_from_slice(&self.freq_period.to_le_bytes());
        p[12..16].copy_from_slice(&self.freq_period_lock.to_le_bytes());
        p[16..20].copy_from_slice(&self.pulse_len_ratio.to_le_bytes());
        p[20..24].copy_from_slice(&self.pulse_len_ratio_lock.to_le_bytes());
        p[24..28].copy_from_slice(&self.user_config_delay_ns.to_le_bytes());
        p[28..32].copy_from_slice(&self.flags.to_le_bytes());
        encode(CLASS_CFG, ID_CFG_TP5, &p)
    }
}

/// A position fixed by the operator, as CFG-TMODE3 takes it in LLA form.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FixedPosition {
    /// Latitude, 1e-9 degrees.
    pub lat_nanodeg: i64,
    /// Longitude, 1e-9 degrees.
    pub lon_nanodeg: i64,
    /// Height above the WGS84 ellipsoid, 0.1 mm.
    pub height_tenth_mm: i64,
    /// 3-D accuracy of that position, 0.1 mm.
    pub accuracy_tenth_mm: u32,
}

/// How a timing receiver finds its antenna's position.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TimingMode {
    /// Navigation as usual (a position every second).
    Disabled,
    /// Average positions until both limits are met, then hold the mean.
    SurveyIn {
        /// Shortest survey, s.
        min_duration_s: u32,
        /// Required 3-D accuracy of the mean, 0.1 mm.
        accuracy_limit_tenth_mm: u32,
    },
    /// A known position: time from a single satellite.
    Fixed(FixedPosition),
}

/// Splits a fine value into CFG-TMODE3's coarse I4 and high-precision I1 parts
/// (`coarse * 100 + hp`, both with the value's sign, |hp| ≤ 99).
pub(crate) fn coarse_and_hp(fine: i64) -> (i32, i8) {
    let coarse = i32::try_from(fine / 100).unwrap_or(if fine < 0 { i32::MIN } else { i32::MAX });
    let hp = i8::try_from(fine % 100).unwrap_or(0);
    (coarse, hp)
}

impl TimingMode {
    /// CFG-TMODE3 (0x06 0x71), version 0, 40 bytes: version U1 @0, reserved
    /// U1 @1, flags X2 @2 (mode in bits 0–7: 0 disabled, 1 survey-in, 2 fixed;
    /// bit 8 lla), ecefXOrLat I4 @4 (cm or 1e-7°), ecefYOrLon I4 @8,
    /// ecefZOrAlt I4 @12 (cm), ecefXOrLatHP I1 @16 (0.1 mm or 1e-9°),
    /// ecefYOrLonHP I1 @17, ecefZOrAltHP I1 @18 (0.1 mm), reserved U1 @19,
    /// fixedPosAcc U4 @20 (0.1 mm), svinMinDur U4 @24 (s), svinAccLimit U4 @28
    /// (0.1 mm), reserved U1×8 @32.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = [0u8; 40];
        let flags: u16 = match self {
            TimingMode::Disabled => 0,
            TimingMode::SurveyIn {
                min_duration_s,
                accuracy_limit_tenth_mm,
            } => {
                p[24..28].copy_from_slice(&min_duration_s.to_le_bytes());
                p[28..32].copy_from_slice(&accuracy_limit_tenth_mm.to_le_bytes());
                1
            }
            TimingMode::Fixed(pos) => {
                let (lat, lat_hp) = coarse_and_hp(pos.lat_nanodeg);
                let (lon, lon_hp) = coarse_and_hp(pos.lon_nanodeg);
                let (alt, alt_hp) = coarse_and_hp(pos.height_tenth_mm);
                p[4..8].copy_from_slice(&lat.to_le_bytes());
                p[8..12].copy_from_slice(&lon.to_le_bytes());
                p[12..16].copy_from_slice(&alt.to_le_bytes());
                p[16] = lat_hp.to_le_bytes()[0];
                p[17] = lon_hp.to_le_bytes()[0];
                p[18] = alt_hp.to_le_bytes()[0];
                p[20..24].copy_from_slice(&pos.accuracy_tenth_mm.to_le_bytes());
                2 | 0x0100
            }
        };
        p[2..4].copy_from_slice(&flags.to_le_bytes());
        encode(CLASS_CFG, ID_CFG_TMODE3, &p)
    }
}

/// CFG-MSG enabling TIM-TP (0x0D 0x01) once per second: the quantisation error
/// of each pulse.
pub fn enable_tim_tp() -> Vec<u8> {
    cfg_msg(CLASS_TIM, super::ID_TIM_TP, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cfg_prt_matches_frames_published_by_other_drivers() {
        // 115200 baud, in UBX+NMEA+RTCM, out UBX+NMEA (widely used, e.g. NEO-6M drivers).
        assert_eq!(
            cfg_prt_uart(PORT_UART1, 115_200, 0x0007, PROTO_UBX | PROTO_NMEA),
            [
                0xB5, 0x62, 0x06, 0x00, 0x14, 0x00, 0x01, 0x00, 0x00, 0x00, 0xD0, 0x08, 0x00, 0x00,
                0x00, 0xC2, 0x01, 0x00, 0x07, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x7E
            ]
        );
        // 38400 and 115200 with UBX+NMEA both ways.
        let both = PROTO_UBX | PROTO_NMEA;
        assert_eq!(
            cfg_prt_uart(PORT_UART1, 38_400, both, both)[26..],
            [0x8F, 0x70]
        );
        let f = cfg_prt_uart(PORT_UART1, 115_200, both, both);
        assert_eq!(f[26..], [0xBC, 0x5E]);
        assert_eq!(f[6 + 8..6 + 12], 115_200u32.to_le_bytes());
    }

    #[test]
    fn cfg_msg_matches_published_frames() {
        assert_eq!(
            cfg_msg_nmea(nmea_id::RMC, 0),
            [
                0xB5, 0x62, 0x06, 0x01, 0x03, 0x00, 0xF0, 0x04, 0x00, 0xFE, 0x17
            ]
        );
        assert_eq!(
            cfg_msg_nmea(nmea_id::VTG, 0),
            [
                0xB5, 0x62, 0x06, 0x01, 0x03, 0x00, 0xF0, 0x05, 0x00, 0xFF, 0x19
            ]
        );
        let f = enable_tim_tp();
        assert_eq!(
            f[..9],
            [0xB5, 0x62, 0x06, 0x01, 0x03, 0x00, 0x0D, 0x01, 0x01]
        );
    }

    #[test]
    fn cfg_tp5_matches_published_frames() {
        // A 24 MHz reference clock (flags 0x6F: active, lock, locked-other-set,
        // isFreq, alignToTow, rising), published by an SI5351 driver.
        let mhz24 = TimePulse {
            tp_index: 0,
            antenna_cable_delay_ns: 0,
            freq_period: 24_000_000,
            freq_period_lock: 24_000_000,
            pulse_len_ratio: 0x8000_0000,
            pulse_len_ratio_lock: 0x8000_0000,
            user_config_delay_ns: 0,
            flags: 0x6F,
        };
        assert_eq!(
            mhz24.encode(),
            [
                0xB5, 0x62, 0x06, 0x31, 0x20, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x36, 0x6E, 0x01, 0x00, 0x36, 0x6E, 0x01, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00,
                0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x6F, 0x00, 0x00, 0x00, 0x11, 0xD8
            ]
        );
        // 1 Hz unlocked / 10 MHz locked with a 50 ns cable delay.
        let ten_mhz = TimePulse {
            antenna_cable_delay_ns: 50,
            freq_period: 1,
            freq_period_lock: 10_000_000,
            ..mhz24
        };
        assert_eq!(
            ten_mhz.encode(),
            [
                0xB5, 0x62, 0x06, 0x31, 0x20, 0x00, 0x00, 0x01, 0x00, 0x00, 0x32, 0x00, 0x00, 0x00,
                0x01, 0x00, 0x00, 0x00, 0x80, 0x96, 0x98, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00,
                0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x6F, 0x00, 0x00, 0x00, 0xA8, 0x08
            ]
        );
    }

    #[test]
    fn one_pps_utc_fields_sit_at_the_specified_offsets() {
        let f = TimePulse::one_pps_utc(100_000, -25).encode();
        let p = &f[6..38];
        assert_eq!(f[..6], [0xB5, 0x62, 0x06, 0x31, 32, 0]);
        assert_eq!((p[0], p[1]), (0, 1));
        assert_eq!(p[4..6], (-25i16).to_le_bytes());
        assert_eq!(p[6..8], [0, 0], "rfGroupDelay is read-only");
        assert_eq!(
            p[8..12],
            1_000_000u32.to_le_bytes(),
            "1 s period before lock"
        );
        assert_eq!(p[12..16], 1_000_000u32.to_le_bytes(), "1 s period locked");
        assert_eq!(p[16..20], [0, 0, 0, 0], "no pulse before GNSS lock");
        assert_eq!(p[20..24], 100_000u32.to_le_bytes(), "100 ms pulse locked");
        assert_eq!(p[28..32], 0x77u32.to_le_bytes(), "grid bits 7..10 = 0: UTC");
        let (a, b) = super::super::ubx_checksum(&f[2..38]);
        assert_eq!(f[38..], [a, b]);
    }

    #[test]
    fn cfg_tmode3_survey_in_and_fixed_layouts() {
        let f = TimingMode::SurveyIn {
            min_duration_s: 3600,
            accuracy_limit_tenth_mm: 20_000,
        }
        .encode();
        assert_eq!(f[..6], [0xB5, 0x62, 0x06, 0x71, 40, 0]);
        let p = &f[6..46];
        assert_eq!(p[0..4], [0, 0, 1, 0], "version 0, mode 1 survey-in, ECEF");
        assert_eq!(p[4..24], [0u8; 20]);
        assert_eq!(p[24..28], 3600u32.to_le_bytes());
        assert_eq!(p[28..32], 20_000u32.to_le_bytes());
        assert_eq!(p[32..40], [0u8; 8]);

        // 47.123456789° N, -122.987654321° E, 123.4567 m, 2.5 cm.
        let f = TimingMode::Fixed(FixedPosition {
            lat_nanodeg: 47_123_456_789,
            lon_nanodeg: -122_987_654_321,
            height_tenth_mm: 1_234_567,
            accuracy_tenth_mm: 250,
        })
        .encode();
        let p = &f[6..46];
        assert_eq!(p[2..4], [2, 1], "mode 2 fixed, lla bit 8");
        assert_eq!(p[4..8], 471_234_567i32.to_le_bytes());
        assert_eq!(p[8..12], (-1_229_876_543i32).to_le_bytes());
        assert_eq!(p[12..16], 12_345i32.to_le_bytes(), "cm");
        assert_eq!(p[16..19], [89, (-21i8).to_le_bytes()[0], 67]);
        assert_eq!(p[19], 0);
        assert_eq!(p[20..24], 250u32.to_le_bytes());
        assert_eq!(p[24..32], [0u8; 8], "survey-in fields unused");

        let f = TimingMode::Disabled.encode();
        assert_eq!(f[6 + 2..6 + 4], [0, 0]);
    }

    #[test]
    fn cfg_cfg_reload_loads_every_section() {
        let f = cfg_cfg_reload();
        assert_eq!(f[..6], [0xB5, 0x62, 0x06, 0x09, 12, 0]);
        assert_eq!(f[6..18], [0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0]);
    }
}
