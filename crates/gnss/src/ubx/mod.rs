//! u-blox UBX: the binary protocol that configures a u-blox receiver and reports
//! what NMEA cannot (the next leap second, each pulse's quantisation error,
//! survey-in progress).
//!
//! A frame is `B5 62`, class, id, a little-endian U2 payload length, the
//! payload, and the 8-bit Fletcher checksum (CK_A, CK_B) over class to payload
//! end (u-blox M8 protocol specification, UBX-13003221, §32.2–32.4). Layouts of
//! each message are in [`config`] (what we send) and [`messages`] (what we read),
//! with the specification's offsets in their docs.

pub mod config;
pub mod messages;
mod timels;
pub mod valset;

pub use crate::framer::ubx_checksum;
pub use timels::{CLASS_NAV, ID_TIMELS, LeapReport, TIMELS_LEN, decode_timels, encode_timels};

/// The two sync characters that open every frame.
pub const SYNC: [u8; 2] = [0xB5, 0x62];
/// Sync, class, id and length: the bytes before the payload.
pub const HEADER_LEN: usize = 6;
/// Largest payload accepted, as in the live framer: anything bigger is line
/// noise with a plausible sync.
pub const MAX_PAYLOAD: usize = crate::framer::MAX_BINARY_PAYLOAD;

/// UBX class of acknowledgements.
pub const CLASS_ACK: u8 = 0x05;
/// UBX class of configuration messages.
pub const CLASS_CFG: u8 = 0x06;
/// UBX class of monitoring messages.
pub const CLASS_MON: u8 = 0x0A;
/// UBX class of timing messages.
pub const CLASS_TIM: u8 = 0x0D;
/// Class u-blox gives the standard NMEA sentences in CFG-MSG.
pub const CLASS_NMEA: u8 = 0xF0;

/// ACK-NAK / ACK-ACK ids.
pub const ID_ACK_NAK: u8 = 0x00;
/// ACK-ACK id.
pub const ID_ACK_ACK: u8 = 0x01;
/// CFG-PRT id (port and baud rate).
pub const ID_CFG_PRT: u8 = 0x00;
/// CFG-MSG id (message rates).
pub const ID_CFG_MSG: u8 = 0x01;
/// CFG-CFG id (save, clear, load the permanent configuration).
pub const ID_CFG_CFG: u8 = 0x09;
/// CFG-TP5 id (time pulse).
pub const ID_CFG_TP5: u8 = 0x31;
/// CFG-TMODE3 id (survey-in / fixed position).
pub const ID_CFG_TMODE3: u8 = 0x71;
/// MON-VER id (software, hardware, extensions).
pub const ID_MON_VER: u8 = 0x04;
/// TIM-TP id (the next pulse's time and quantisation error).
pub const ID_TIM_TP: u8 = 0x01;
/// TIM-SVIN id (timing receivers' survey-in status).
pub const ID_TIM_SVIN: u8 = 0x04;
/// NAV-SVIN id (high-precision receivers' survey-in status).
pub const ID_NAV_SVIN: u8 = 0x3B;

/// Why bytes are not one well-formed UBX frame.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Fewer bytes than the header and the announced payload need.
    #[error("UBX frame truncated: {needed} bytes needed, {got} present")]
    Truncated {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The first two bytes are not `B5 62`.
    #[error("no UBX sync characters")]
    NoSync,
    /// The announced payload is longer than [`MAX_PAYLOAD`].
    #[error("UBX payload length {0} is implausible")]
    TooLong(usize),
    /// The Fletcher checksum does not match.
    #[error("UBX checksum mismatch")]
    Checksum,
}

/// One checked UBX frame, borrowing its payload.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Message class.
    pub class: u8,
    /// Message id within the class.
    pub id: u8,
    /// Payload, without header or checksum.
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Reads the frame at the start of `bytes`; returns it and the bytes it used.
    pub fn parse(bytes: &'a [u8]) -> Result<(Frame<'a>, usize), FrameError> {
        if bytes.len() < HEADER_LEN {
            if bytes.iter().zip(SYNC).any(|(&b, s)| b != s) {
                return Err(FrameError::NoSync);
            }
            return Err(FrameError::Truncated {
                needed: HEADER_LEN + 2,
                got: bytes.len(),
            });
        }
        if bytes[..2] != SYNC {
            return Err(FrameError::NoSync);
        }
        let len = usize::from(u16::from_le_bytes([bytes[4], bytes[5]]));
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLong(len));
        }
        let total = HEADER_LEN + len + 2;
        if bytes.len() < total {
            return Err(FrameError::Truncated {
                needed: total,
                got: bytes.len(),
            });
        }
        let (a, b) = ubx_checksum(&bytes[2..HEADER_LEN + len]);
        if bytes[total - 2] != a || bytes[total - 1] != b {
            return Err(FrameError::Checksum);
        }
        let frame = Frame {
            class: bytes[2],
            id: bytes[3],
            payload: &bytes[HEADER_LEN..HEADER_LEN + len],
        };
        Ok((frame, total))
    }
}

/// Every good frame in a byte stream, skipping noise, NMEA and bad frames
/// (each skipped region resumes at the next byte after a failed sync). For
/// replies read back during configuration and for tests; the live reader's
/// framer also separates NMEA.
pub fn frames(bytes: &[u8]) -> Vec<Frame<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 1 < bytes.len() {
        if bytes[at..at + 2] != SYNC {
            at += 1;
            continue;
        }
        match Frame::parse(&bytes[at..]) {
            Ok((frame, used)) => {
                out.push(frame);
                at += used;
            }
            Err(_) => at += 1,
        }
    }
    out
}

/// Builds a whole frame: sync, class, id, length, payload, checksum.
pub fn encode(class: u8, id: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len() + 2);
    frame.extend_from_slice(&SYNC);
    frame.extend_from_slice(&[class, id]);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&payload[..usize::from(len)]);
    let (a, b) = ubx_checksum(&frame[2..]);
    frame.extend_from_slice(&[a, b]);
    frame
}

/// A poll request: the message's class and id with an empty payload; the
/// receiver answers with the message itself.
pub fn poll(class: u8, id: u8) -> Vec<u8> {
    encode(class, id, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mon_ver_poll_matches_the_published_frame() {
        // The MON-VER poll as u-center and drivers send it.
        assert_eq!(
            poll(CLASS_MON, ID_MON_VER),
            [0xB5, 0x62, 0x0A, 0x04, 0x00, 0x00, 0x0E, 0x34]
        );
    }

    #[test]
    fn parse_round_trips_and_rejects_damage() {
        let f = encode(CLASS_TIM, ID_TIM_TP, &[1, 2, 3]);
        let (frame, used) = Frame::parse(&f).expect("good frame");
        assert_eq!(
            (frame.class, frame.id, frame.payload),
            (0x0D, 0x01, &[1u8, 2, 3][..])
        );
        assert_eq!(used, f.len());
        let mut bad = f.clone();
        bad[7] ^= 1;
        assert_eq!(Frame::parse(&bad), Err(FrameError::Checksum));
        assert!(matches!(
            Frame::parse(&f[..f.len() - 1]),
            Err(FrameError::Truncated { .. })
        ));
        assert_eq!(Frame::parse(b"$GPRMC"), Err(FrameError::NoSync));
        assert_eq!(
            Frame::parse(&[0xB5, 0x62, 1, 2, 0xFF, 0xFF]),
            Err(FrameError::TooLong(65535))
        );
    }

    #[test]
    fn frames_are_found_among_noise_and_nmea() {
        let mut stream = b"$GPZDA,1*00\r\n\xB5".to_vec();
        stream.extend(encode(CLASS_ACK, ID_ACK_ACK, &[0x06, 0x31]));
        stream.extend([0xB5, 0x62, 0x05, 0x01, 0x02, 0x00, 0, 0, 0, 0]);
        stream.extend(encode(CLASS_ACK, ID_ACK_NAK, &[0x06, 0x71]));
        let found = frames(&stream);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].payload, [0x06, 0x31]);
        assert_eq!(found[1].id, ID_ACK_NAK);
    }
}
