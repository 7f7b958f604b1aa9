//! UBX messages we read: acknowledgements, the receiver's version, each
//! pulse's time and quantisation error, and survey-in progress. Each decoder
//! takes a checked [`Frame`]'s payload and returns `None` for a wrong length or
//! an unknown version; each has an encoder too, for the simulated receiver.

use super::{
    CLASS_ACK, CLASS_MON, CLASS_NAV, CLASS_TIM, Frame, ID_ACK_ACK, ID_ACK_NAK, ID_MON_VER,
    ID_NAV_SVIN, ID_TIM_SVIN, ID_TIM_TP, encode,
};
/// The decoded timing reports are `skytime-core` types, so the refclock takes
/// them without linking this crate.
pub use skytime_core::receiver::{SurveyIn, TimeBase, TimePulseReport};

/// A message this crate understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// ACK-ACK or ACK-NAK for one configuration message.
    Ack(Ack),
    /// MON-VER.
    Version(ReceiverVersion),
    /// TIM-TP.
    TimePulse(TimePulseReport),
    /// TIM-SVIN or NAV-SVIN.
    SurveyIn(SurveyIn),
}

/// Decodes a checked frame, if it is one of ours and well formed.
pub fn decode(frame: &Frame<'_>) -> Option<Message> {
    match (frame.class, frame.id) {
        (CLASS_ACK, ID_ACK_ACK | ID_ACK_NAK) => decode_ack(frame).map(Message::Ack),
        (CLASS_MON, ID_MON_VER) => decode_mon_ver(frame.payload).map(Message::Version),
        (CLASS_TIM, ID_TIM_TP) => decode_tim_tp(frame.payload).map(Message::TimePulse),
        (CLASS_TIM, ID_TIM_SVIN) => decode_tim_svin(frame.payload).map(Message::SurveyIn),
        (CLASS_NAV, ID_NAV_SVIN) => decode_nav_svin(frame.payload).map(Message::SurveyIn),
        _ => None,
    }
}

/// The receiver's answer to one configuration message.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// ACK-ACK (true) or ACK-NAK (false).
    pub accepted: bool,
    /// Class of the message answered.
    pub class: u8,
    /// Id of the message answered.
    pub id: u8,
}

/// ACK-ACK (0x05 0x01) / ACK-NAK (0x05 0x00), 2 bytes: clsID U1 @0, msgID U1 @1.
pub fn decode_ack(frame: &Frame<'_>) -> Option<Ack> {
    let [class, id] = frame.payload else {
        return None;
    };
    Some(Ack {
        accepted: frame.id == ID_ACK_ACK,
        class: *class,
        id: *id,
    })
}

/// An ACK-ACK or ACK-NAK frame answering `class`/`id`.
pub fn encode_ack(accepted: bool, class: u8, id: u8) -> Vec<u8> {
    let ack_id = if accepted { ID_ACK_ACK } else { ID_ACK_NAK };
    encode(CLASS_ACK, ack_id, &[class, id])
}

/// What a u-blox receiver says it is (MON-VER), for the status page and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverVersion {
    /// swVersion, e.g. `ROM CORE 3.01 (107888)`.
    pub software: String,
    /// hwVersion, e.g. `00080000` (u-blox 8 / M8).
    pub hardware: String,
    /// The extension strings, e.g. `FWVER=TIM 1.10`, `PROTVER=15.00`, `MOD=LEA-M8T-0`.
    pub extensions: Vec<String>,
}

impl ReceiverVersion {
    fn extension(&self, key: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find_map(|e| e.strip_prefix(key)?.strip_prefix('='))
    }

    /// The module (`MOD=`), else the hardware generation.
    pub fn family(&self) -> String {
        match self.extension("MOD") {
            Some(m) => format!("u-blox {m}"),
            None => format!("u-blox (hardware {})", self.hardware),
        }
    }

    /// The firmware (`FWVER=`), else the software version.
    pub fn firmware(&self) -> &str {
        self.extension("FWVER").unwrap_or(&self.software)
    }

    /// The protocol version (`PROTVER=`), when the receiver states it.
    pub fn protocol(&self) -> Option<&str> {
        self.extension("PROTVER")
    }

    /// The protocol version as (major, minor): `PROTVER=34.10`, or the
    /// older `PROTVER 14.00` form. Decides legacy CFG against CFG-VALSET.
    pub fn protocol_version(&self) -> Option<(u16, u16)> {
        let text = self.protocol().or_else(|| {
            self.extensions
                .iter()
                .find_map(|e| e.strip_prefix("PROTVER "))
        })?;
        let (major, minor) = text.trim().split_once('.').unwrap_or((text.trim(), "0"));
        Some((major.parse().ok()?, minor.parse().ok()?))
    }

    /// Whether this is an M10-class receiver (hardware generation `000A0000`,
    /// or an M10 module): VALSET only, and no timing mode.
    pub fn is_m10(&self) -> bool {
        self.hardware.eq_ignore_ascii_case("000A0000")
            || self.extension("MOD").is_some_and(|m| m.contains("M10"))
    }
}

/// A zero-terminated (or full-width) ASCII field; `None` if not printable text.
fn c_string(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let text = &bytes[..end];
    text.iter()
        .all(|b| b.is_ascii_graphic() || *b == b' ')
        .then(|| String::from_utf8_lossy(text).trim().to_owned())
}

/// MON-VER (0x0A 0x04), 40 + 30·N bytes: swVersion CH×30 @0, hwVersion
/// CH×10 @30, then N extensions CH×30.
pub fn decode_mon_ver(payload: &[u8]) -> Option<ReceiverVersion> {
    if payload.len() < 40 || !(payload.len() - 40).is_multiple_of(30) {
        return None;
    }
    let software = c_string(&payload[..30])?;
    let hardware = c_string(&payload[30..40])?;
    let extensions = payload[40..]
        .chunks(30)
        .map(c_string)
        .collect::<Option<Vec<_>>>()?
        .into_iter()
        .filter(|e| !e.is_empty())
        .collect();
    Some(ReceiverVersion {
        software,
        hardware,
        extensions,
    })
}

/// A MON-VER frame (strings longer than their field are cut).
pub fn encode_mon_ver(version: &ReceiverVersion) -> Vec<u8> {
    let field = |s: &str, width: usize| {
        let mut f = vec![0u8; width];
        let n = s.len().min(width - 1);
        f[..n].copy_from_slice(&s.as_bytes()[..n]);
        f
    };
    let mut p = field(&version.software, 30);
    p.extend(field(&version.hardware, 10));
    for e in &version.extensions {
        p.extend(field(e, 30));
    }
    encode(CLASS_MON, ID_MON_VER, &p)
}

/// TIM-TP (0x0D 0x01), 16 bytes: towMS U4 @0, towSubMS U4 @4 (2^-32 ms),
/// qErr I4 @8 (ps), week U2 @12, flags X1 @14 (bit 0 timeBase UTC, bit 1 utc
/// available, bits 2–3 raim, bit 4 qErrInvalid), refInfo X1 @15.
pub fn decode_tim_tp(payload: &[u8]) -> Option<TimePulseReport> {
    let p: &[u8; 16] = payload.try_into().ok()?;
    let u32_at = |i: usize| u32::from_le_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
    let flags = p[14];
    Some(TimePulseReport {
        tow_ms: u32_at(0),
        tow_sub_ms: u32_at(4),
        q_err_ps: i32::from_le_bytes([p[8], p[9], p[10], p[11]]),
        week: u16::from_le_bytes([p[12], p[13]]),
        time_base: if flags & 0x01 != 0 {
            TimeBase::Utc
        } else {
            TimeBase::Gnss
        },
        utc_available: flags & 0x02 != 0,
        raim: (flags >> 2) & 0x03,
        q_err_valid: flags & 0x10 == 0,
        time_ref_gnss: p[15] & 0x0F,
        utc_standard: p[15] >> 4,
    })
}

/// A TIM-TP frame.
pub fn encode_tim_tp(r: &TimePulseReport) -> Vec<u8> {
    let mut p = [0u8; 16];
    p[0..4].copy_from_slice(&r.tow_ms.to_le_bytes());
    p[4..8].copy_from_slice(&r.tow_sub_ms.to_le_bytes());
    p[8..12].copy_from_slice(&r.q_err_ps.to_le_bytes());
    p[12..14].copy_from_slice(&r.week.to_le_bytes());
    p[14] = u8::from(r.time_base == TimeBase::Utc)
        | u8::from(r.utc_available) << 1
        | (r.raim & 0x03) << 2
        | u8::from(!r.q_err_valid) << 4;
    p[15] = (r.time_ref_gnss & 0x0F) | r.utc_standard << 4;
    encode(CLASS_TIM, ID_TIM_TP, &p)
}

/// TIM-SVIN (0x0D 0x04), 28 bytes: dur U4 @0 (s), meanX/Y/Z I4 @4/8/12 (cm),
/// meanV U4 @16 (variance, mm²), obs U4 @20, valid U1 @24, active U1 @25,
/// reserved U1×2 @26.
pub fn decode_tim_svin(payload: &[u8]) -> Option<SurveyIn> {
    let p: &[u8; 28] = payload.try_into().ok()?;
    let u32_at = |i: usize| u32::from_le_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
    Some(SurveyIn {
        duration_s: u32_at(0),
        observations: u32_at(20),
        accuracy_mm: u32_at(16).isqrt(),
        valid: p[24] == 1,
        active: p[25] == 1,
    })
}

/// NAV-SVIN (0x01 0x3B), version 0, 40 bytes: version U1 @0, reserved U1×3
/// @1, iTOW U4 @4, dur U4 @8 (s), meanX/Y/Z I4 @12/16/20 (cm), meanX/Y/ZHP
/// I1 @24/25/26, reserved U1 @27, meanAcc U4 @28 (0.1 mm), obs U4 @32,
/// valid U1 @36, active U1 @37, reserved U1×2 @38.
pub fn decode_nav_svin(payload: &[u8]) -> Option<SurveyIn> {
    let p: &[u8; 40] = payload.try_into().ok()?;
    if p[0] != 0 {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]);
    Some(SurveyIn {
        duration_s: u32_at(8),
        observations: u32_at(32),
        accuracy_mm: u32_at(28) / 10,
        valid: p[36] == 1,
        active: p[37] == 1,
    })
}

/// A TIM-SVIN frame (mean position left at 0).
pub fn encode_tim_svin(s: &SurveyIn) -> Vec<u8> {
    let mut p = [0u8; 28];
    p[0..4].copy_from_slice(&s.duration_s.to_le_bytes());
    p[16..20].copy_from_slice(&(s.accuracy_mm.saturating_mul(s.accuracy_mm)).to_le_bytes());
    p[20..24].copy_from_slice(&s.observations.to_le_bytes());
    p[24] = u8::from(s.valid);
    p[25] = u8::from(s.active);
    encode(CLASS_TIM, ID_TIM_SVIN, &p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: &[u8]) -> Frame<'_> {
        Frame::parse(bytes).expect("well-formed test frame").0
    }

    #[test]
    fn ack_and_nak() {
        // ACK-ACK for CFG-PRT, as receivers send it.
        let f = encode_ack(true, 0x06, 0x00);
        assert_eq!(
            f,
            [0xB5, 0x62, 0x05, 0x01, 0x02, 0x00, 0x06, 0x00, 0x0E, 0x37]
        );
        assert_eq!(
            decode(&frame(&f)),
            Some(Message::Ack(Ack {
                accepted: true,
                class: 6,
                id: 0x00
            }))
        );
        let f = encode_ack(false, 0x06, 0x71);
        assert_eq!(f[2..8], [0x05, 0x00, 0x02, 0x00, 0x06, 0x71]);
        assert!(matches!(
            decode(&frame(&f)),
            Some(Message::Ack(Ack {
                accepted: false,
                ..
            }))
        ));
        assert_eq!(
            decode_ack(&Frame {
                class: 5,
                id: 1,
                payload: &[6]
            }),
            None
        );
    }

    #[test]
    fn tim_tp_fields_at_their_offsets() {
        // towMS 345600000 (Thursday 00:00), towSubMS 2^31 (0.5 ms), qErr -4321 ps,
        // week 2345, flags: UTC base, UTC available, RAIM active; refInfo GPS, USNO (3).
        let mut p = [0u8; 16];
        p[0..4].copy_from_slice(&345_600_000u32.to_le_bytes());
        p[4..8].copy_from_slice(&0x8000_0000u32.to_le_bytes());
        p[8..12].copy_from_slice(&(-4321i32).to_le_bytes());
        p[12..14].copy_from_slice(&2345u16.to_le_bytes());
        p[14] = 0b0000_1011;
        p[15] = 0x30;
        let r = decode_tim_tp(&p).expect("16 bytes");
        assert_eq!(r.tow_ms, 345_600_000);
        assert_eq!(r.tow_ns(), 345_600_000_500_000);
        assert_eq!(r.tow_s(), 345_600);
        assert_eq!(r.q_err_ps(), Some(-4321));
        assert_eq!(
            (r.week, r.time_base, r.utc_available, r.raim),
            (2345, TimeBase::Utc, true, 2)
        );
        assert_eq!((r.time_ref_gnss, r.utc_standard), (0, 3));
        assert_eq!(encode_tim_tp(&r)[6..22], p);

        p[14] |= 0x10;
        let r = decode_tim_tp(&p).expect("16 bytes");
        assert!(!r.q_err_valid);
        assert_eq!(r.q_err_ps(), None, "qErrInvalid withholds the correction");
        assert_eq!(decode_tim_tp(&p[..15]), None);
    }

    #[test]
    fn mon_ver_of_an_m8t() {
        let v = ReceiverVersion {
            software: "ROM CORE 3.01 (107888)".into(),
            hardware: "00080000".into(),
            extensions: vec![
                "FWVER=TIM 1.10".into(),
                "PROTVER=22.00".into(),
                "MOD=LEA-M8T-0".into(),
            ],
        };
        let f = encode_mon_ver(&v);
        assert_eq!(f.len(), 6 + 40 + 90 + 2);
        assert_eq!(&f[6..28], b"ROM CORE 3.01 (107888)");
        assert_eq!(f[6 + 22..6 + 30], [0u8; 8]);
        assert_eq!(&f[36..44], b"00080000");
        assert_eq!(&f[46..60], b"FWVER=TIM 1.10");
        let Some(Message::Version(d)) = decode(&frame(&f)) else {
            panic!("MON-VER decodes");
        };
        assert_eq!(d, v);
        assert_eq!(d.family(), "u-blox LEA-M8T-0");
        assert_eq!(d.firmware(), "TIM 1.10");
        assert_eq!(d.protocol(), Some("22.00"));
        assert_eq!(d.protocol_version(), Some((22, 0)));
        assert!(!d.is_m10());
        assert_eq!(decode_mon_ver(&[b'A'; 41]), None, "length not 40 + 30n");
        let mut bad = [0u8; 40];
        bad[0] = 0xFF;
        assert_eq!(decode_mon_ver(&bad), None, "not text");
    }

    #[test]
    fn protocol_versions_and_m10_from_mon_ver() {
        let v = |hw: &str, ext: &[&str]| ReceiverVersion {
            software: "ROM SPG 5.10 (7b202e)".into(),
            hardware: hw.into(),
            extensions: ext.iter().map(|e| (*e).to_owned()).collect(),
        };
        let m10 = v(
            "000A0000",
            &["FWVER=SPG 5.10", "PROTVER=34.10", "MOD=MAX-M10S"],
        );
        assert_eq!(m10.protocol_version(), Some((34, 10)));
        assert!(m10.is_m10());
        assert!(v("00190000", &["MOD=NEO-M10S"]).is_m10(), "by module name");
        let old = v("00070000", &["PROTVER 14.00"]);
        assert_eq!(old.protocol_version(), Some((14, 0)), "u-blox 7's form");
        assert_eq!(
            v("00190000", &["PROTVER=27"]).protocol_version(),
            Some((27, 0))
        );
        assert_eq!(v("00190000", &["PROTVER=x.1"]).protocol_version(), None);
        assert_eq!(v("00190000", &[]).protocol_version(), None);
    }

    #[test]
    fn survey_in_from_tim_svin_and_nav_svin() {
        let s = SurveyIn {
            duration_s: 600,
            observations: 598,
            accuracy_mm: 1500,
            valid: false,
            active: true,
        };
        let f = encode_tim_svin(&s);
        assert_eq!(f[2..6], [0x0D, 0x04, 28, 0]);
        assert_eq!(f[6 + 16..6 + 20], 2_250_000u32.to_le_bytes(), "meanV, mm²");
        assert_eq!(decode(&frame(&f)), Some(Message::SurveyIn(s)));

        let mut p = [0u8; 40];
        p[8..12].copy_from_slice(&86_400u32.to_le_bytes());
        p[28..32].copy_from_slice(&12_345u32.to_le_bytes());
        p[32..36].copy_from_slice(&86_000u32.to_le_bytes());
        p[36] = 1;
        assert_eq!(
            decode_nav_svin(&p),
            Some(SurveyIn {
                duration_s: 86_400,
                observations: 86_000,
                accuracy_mm: 1234,
                valid: true,
                active: false
            })
        );
        p[0] = 1;
        assert_eq!(decode_nav_svin(&p), None, "unknown version");
    }
}
