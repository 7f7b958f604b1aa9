//! u-blox UBX-NAV-TIMELS: the leap-second announcement NMEA has no sentence for.
//!
//! Frame: `B5 62 01 26 18 00`, 24 payload bytes, then the Fletcher checksum
//! (CK_A, CK_B) over class, id, length and payload. Payload (u-blox M8 protocol
//! 15+, little-endian):
//!
//! | offset | type | field |
//! |---|---|---|
//! | 0 | U4 | iTOW, ms |
//! | 4 | U1 | version (0) |
//! | 5 | U1×3 | reserved |
//! | 8 | U1 | srcOfCurrLs |
//! | 9 | I1 | currLs (GPS−UTC, s) |
//! | 10 | U1 | srcOfLsChange |
//! | 11 | I1 | lsChange: +1 insert, −1 delete, 0 none |
//! | 12 | I4 | timeToLsEvent, s (>0: in the future) |
//! | 16 | U2 | dateOfLsGpsWn |
//! | 18 | U2 | dateOfLsGpsDn |
//! | 20 | U1×3 | reserved |
//! | 23 | X1 | valid: bit0 validCurrLs, bit1 validTimeToLsEvent |

use crate::framer::ubx_checksum;
use skytime_timebase::LeapChange;

/// UBX class of navigation messages.
pub const CLASS_NAV: u8 = 0x01;
/// UBX id of NAV-TIMELS.
pub const ID_TIMELS: u8 = 0x26;
/// NAV-TIMELS payload length.
pub const TIMELS_LEN: usize = 24;

/// A decoded NAV-TIMELS: what the receiver knows about the next leap second.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LeapReport {
    /// GPS−UTC now, in seconds, when the receiver knows it.
    pub current_leap_s: Option<i8>,
    /// The announced change.
    pub change: LeapChange,
    /// Seconds from this report to the event (negative: it is past).
    pub time_to_event_s: i32,
}

/// Decodes a NAV-TIMELS payload. `None` for another version, a bad length, or
/// a report without a valid time-to-event (then nothing is known about the next leap).
pub fn decode_timels(payload: &[u8]) -> Option<LeapReport> {
    if payload.len() != TIMELS_LEN || payload[4] != 0 {
        return None;
    }
    let valid = payload[23];
    if valid & 0b10 == 0 {
        return None;
    }
    let change = match payload[11].cast_signed() {
        1 => LeapChange::Insert,
        -1 => LeapChange::Delete,
        0 => LeapChange::None,
        _ => return None,
    };
    let time_to_event_s = i32::from_le_bytes([payload[12], payload[13], payload[14], payload[15]]);
    Some(LeapReport {
        current_leap_s: (valid & 0b01 != 0).then_some(payload[9].cast_signed()),
        change,
        time_to_event_s,
    })
}

/// Builds a whole NAV-TIMELS frame (sync to checksum), as a u-blox receiver
/// sends it: for the simulated receiver and for tests.
pub fn encode_timels(current_leap_s: i8, change: LeapChange, time_to_event_s: i32) -> Vec<u8> {
    let mut payload = [0u8; TIMELS_LEN];
    payload[8] = 2; // srcOfCurrLs: GPS
    payload[9] = current_leap_s.cast_unsigned();
    payload[10] = 2; // srcOfLsChange: GPS
    payload[11] = match change {
        LeapChange::Insert => 1u8,
        LeapChange::Delete => (-1i8).cast_unsigned(),
        LeapChange::None => 0,
    };
    payload[12..16].copy_from_slice(&time_to_event_s.to_le_bytes());
    payload[23] = 0b11;
    let len = u8::try_from(TIMELS_LEN).expect("NAV-TIMELS is 24 bytes");
    let mut frame = vec![0xB5, 0x62, CLASS_NAV, ID_TIMELS, len, 0];
    frame.extend_from_slice(&payload);
    let (a, b) = ubx_checksum(&frame[2..]);
    frame.extend_from_slice(&[a, b]);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let f = encode_timels(18, LeapChange::Insert, 3600);
        assert_eq!(f.len(), 6 + TIMELS_LEN + 2);
        let r = decode_timels(&f[6..6 + TIMELS_LEN]).expect("valid");
        assert_eq!(
            r,
            LeapReport {
                current_leap_s: Some(18),
                change: LeapChange::Insert,
                time_to_event_s: 3600
            }
        );
        let f = encode_timels(18, LeapChange::Delete, -5);
        assert_eq!(
            decode_timels(&f[6..30]).map(|r| r.change),
            Some(LeapChange::Delete)
        );
    }

    #[test]
    fn invalid_reports_are_ignored() {
        let mut f = encode_timels(18, LeapChange::Insert, 10);
        f[6 + 23] = 0b01;
        assert_eq!(decode_timels(&f[6..30]), None);
        assert_eq!(decode_timels(&f[6..29]), None);
    }
}
