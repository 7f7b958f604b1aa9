//! The u-blox plan in CFG-VALSET, for receivers without the legacy CFG
//! messages (M10) or configured that way: the same settings as the legacy
//! plan, as key/value pairs in one transaction, so the receiver applies all of
//! them or none (a NAK to any message of it, or the reload the configurator
//! sends on a refusal, cancels it). Written to RAM only, as the legacy plan:
//! CFG-CFG reload, or a power cycle, brings back the saved configuration.

use super::plan::{Step, UbxSettings};
use crate::ubx::config::{TimingMode, coarse_and_hp};
use crate::ubx::valset::{Item, LAYER_RAM, Transaction, encode_valset, key};

/// The configuration steps: ports, message set, time pulse, timing mode.
pub(super) fn steps(settings: &UbxSettings, timing_mode: bool) -> Vec<Step> {
    let mut groups: Vec<(&'static str, Vec<Item>)> = vec![
        ("UBX and NMEA on UART1", ports()),
        (
            "message set",
            messages(
                matches!(settings.timing_mode, Some(TimingMode::SurveyIn { .. })) && timing_mode,
            ),
        ),
        ("1 PPS on UTC", time_pulse(settings)),
    ];
    if let (Some(mode), true) = (settings.timing_mode, timing_mode) {
        groups.push(("timing mode", timing(&mode)));
    }
    let last = groups.len() - 1;
    groups
        .into_iter()
        .enumerate()
        .map(|(i, (what, items))| {
            let transaction = match i {
                0 => Transaction::Start,
                i if i == last => Transaction::Apply,
                _ => Transaction::Ongoing,
            };
            Step::ubx(what, encode_valset(LAYER_RAM, transaction, &items))
        })
        .collect()
}

/// The speed change: CFG-UART1-BAUDRATE on its own, outside any transaction.
pub(super) fn baud_command(to: u32) -> Vec<u8> {
    encode_valset(LAYER_RAM, Transaction::None, &[key::UART1_BAUDRATE.set(to)])
}

fn ports() -> Vec<Item> {
    vec![
        key::UART1INPROT_UBX.set(true),
        key::UART1INPROT_NMEA.set(true),
        key::UART1OUTPROT_UBX.set(true),
        key::UART1OUTPROT_NMEA.set(true),
    ]
}

/// The time sentences and TIM-TP/NAV-TIMELS on, the noise off (all applied
/// together, so the order does not matter here).
fn messages(survey_in: bool) -> Vec<Item> {
    let mut items = vec![
        key::MSGOUT_RMC_UART1.set(1),
        key::MSGOUT_ZDA_UART1.set(1),
        key::MSGOUT_GGA_UART1.set(1),
        key::MSGOUT_GSA_UART1.set(1),
        key::MSGOUT_GSV_UART1.set(1),
        key::MSGOUT_TIM_TP_UART1.set(1),
        key::MSGOUT_NAV_TIMELS_UART1.set(1),
        key::MSGOUT_GLL_UART1.set(0),
        key::MSGOUT_VTG_UART1.set(0),
    ];
    if survey_in {
        items.push(key::MSGOUT_TIM_SVIN_UART1.set(1));
    }
    items
}

/// As the legacy CFG-TP5: 1 Hz, rising edge on the UTC second, and no pulse
/// before GNSS lock (length 0 unlocked).
fn time_pulse(settings: &UbxSettings) -> Vec<Item> {
    vec![
        key::TP_TP1_ENA.set(true),
        key::TP_PULSE_DEF.set(0),
        key::TP_PULSE_LENGTH_DEF.set(1),
        key::TP_PERIOD_TP1.set(1_000_000),
        key::TP_PERIOD_LOCK_TP1.set(1_000_000),
        key::TP_LEN_TP1.set(0),
        key::TP_LEN_LOCK_TP1.set(settings.pulse_width_us),
        key::TP_SYNC_GNSS_TP1.set(true),
        key::TP_USE_LOCKED_TP1.set(true),
        key::TP_ALIGN_TO_TOW_TP1.set(true),
        key::TP_POL_TP1.set(true),
        key::TP_TIMEGRID_TP1.set(0),
        key::TP_ANT_CABLEDELAY.set(settings.antenna_cable_delay_ns),
    ]
}

fn timing(mode: &TimingMode) -> Vec<Item> {
    match mode {
        TimingMode::Disabled => vec![key::TMODE_MODE.set(0)],
        TimingMode::SurveyIn {
            min_duration_s,
            accuracy_limit_tenth_mm,
        } => vec![
            key::TMODE_MODE.set(1),
            key::TMODE_SVIN_MIN_DUR.set(*min_duration_s),
            key::TMODE_SVIN_ACC_LIMIT.set(*accuracy_limit_tenth_mm),
        ],
        TimingMode::Fixed(pos) => {
            let (lat, lat_hp) = coarse_and_hp(pos.lat_nanodeg);
            let (lon, lon_hp) = coarse_and_hp(pos.lon_nanodeg);
            let (height, height_hp) = coarse_and_hp(pos.height_tenth_mm);
            vec![
                key::TMODE_MODE.set(2),
                key::TMODE_POS_TYPE.set(1),
                key::TMODE_LAT.set(lat),
                key::TMODE_LON.set(lon),
                key::TMODE_HEIGHT.set(height),
                key::TMODE_LAT_HP.set(lat_hp),
                key::TMODE_LON_HP.set(lon_hp),
                key::TMODE_HEIGHT_HP.set(height_hp),
                key::TMODE_FIXED_POS_ACC.set(pos.accuracy_tenth_mm),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::{Plan, UbxMessages};
    use super::*;
    use crate::ubx::config::FixedPosition;
    use crate::ubx::{Frame, valset::decode_valset};

    fn settings(timing_mode: Option<TimingMode>) -> UbxSettings {
        UbxSettings {
            interface: super::super::UbxConfigInterface::Valset,
            pulse_width_us: 100_000,
            antenna_cable_delay_ns: 56,
            timing_mode,
            baud: Some(115_200),
            current_baud: 9600,
        }
    }

    /// The payload after the 4-byte header, as (key id, value bytes), and the header.
    fn pairs(frame: &[u8]) -> ([u8; 4], Vec<(u32, Vec<u8>)>) {
        let (f, used) = Frame::parse(frame).expect("a whole frame");
        assert_eq!(used, frame.len());
        assert_eq!((f.class, f.id), (0x06, 0x8A), "CFG-VALSET");
        let header = [f.payload[0], f.payload[1], f.payload[2], f.payload[3]];
        // Walk the payload by hand, sizes from the key's bits 28..30.
        let mut out = Vec::new();
        let mut at = 4;
        while at < f.payload.len() {
            let id = u32::from_le_bytes(f.payload[at..at + 4].try_into().expect("4 bytes"));
            let len = match id >> 28 {
                1 | 2 => 1,
                3 => 2,
                4 => 4,
                other => panic!("size code {other}"),
            };
            out.push((id, f.payload[at + 4..at + 4 + len].to_vec()));
            at += 4 + len;
        }
        assert_eq!(at, f.payload.len());
        assert_eq!(
            decode_valset(f.payload).expect("decodes").items.len(),
            out.len()
        );
        (header, out)
    }

    fn le32(v: u32) -> Vec<u8> {
        v.to_le_bytes().to_vec()
    }

    #[test]
    fn survey_in_plan_is_one_transaction_with_every_key_at_the_specified_id_and_size() {
        let plan = Plan::ublox(
            &settings(Some(TimingMode::SurveyIn {
                min_duration_s: 3600,
                accuracy_limit_tenth_mm: 20_000,
            })),
            UbxMessages::Valset { timing_mode: true },
        );
        let whats: Vec<&str> = plan.steps.iter().map(|s| s.what).collect();
        assert_eq!(
            whats,
            [
                "UBX and NMEA on UART1",
                "message set",
                "1 PPS on UTC",
                "timing mode"
            ]
        );
        let decoded: Vec<_> = plan.steps.iter().map(|s| pairs(&s.bytes)).collect();
        // version 1, RAM only, transaction start / ongoing / ongoing / apply.
        let headers: Vec<[u8; 4]> = decoded.iter().map(|(h, _)| *h).collect();
        assert_eq!(
            headers,
            [[1, 1, 1, 0], [1, 1, 2, 0], [1, 1, 2, 0], [1, 1, 3, 0]]
        );
        assert_eq!(
            decoded[0].1,
            [
                (0x1073_0001, vec![1]),
                (0x1073_0002, vec![1]),
                (0x1074_0001, vec![1]),
                (0x1074_0002, vec![1]),
            ]
        );
        assert_eq!(
            decoded[1].1,
            [
                (0x2091_00AC, vec![1]), // RMC
                (0x2091_00D9, vec![1]), // ZDA
                (0x2091_00BB, vec![1]), // GGA
                (0x2091_00C0, vec![1]), // GSA
                (0x2091_00C5, vec![1]), // GSV
                (0x2091_017E, vec![1]), // TIM-TP
                (0x2091_0061, vec![1]), // NAV-TIMELS
                (0x2091_00CA, vec![0]), // GLL off
                (0x2091_00B1, vec![0]), // VTG off
                (0x2091_0098, vec![1]), // TIM-SVIN
            ]
        );
        assert_eq!(
            decoded[2].1,
            [
                (0x1005_0007, vec![1]),         // TP1 enabled
                (0x2005_0023, vec![0]),         // period, not frequency
                (0x2005_0030, vec![1]),         // length, not ratio
                (0x4005_0002, le32(1_000_000)), // 1 s before lock
                (0x4005_0003, le32(1_000_000)), // 1 s locked
                (0x4005_0004, le32(0)),         // no pulse before lock
                (0x4005_0005, le32(100_000)),   // 100 ms locked
                (0x1005_0008, vec![1]),         // sync to GNSS
                (0x1005_0009, vec![1]),         // locked values once locked
                (0x1005_000A, vec![1]),         // aligned to the second
                (0x1005_000B, vec![1]),         // rising edge
                (0x2005_000C, vec![0]),         // UTC grid
                (0x3005_0001, vec![56, 0]),     // cable delay, I2 ns
            ]
        );
        assert_eq!(
            decoded[3].1,
            [
                (0x2003_0001, vec![1]),
                (0x4003_0010, le32(3600)),
                (0x4003_0011, le32(20_000)),
            ]
        );
        let baud = plan.baud.expect("speed change");
        let (header, items) = pairs(&baud.command);
        assert_eq!(
            header,
            [0, 1, 0, 0],
            "version 0, RAM, outside the transaction"
        );
        assert_eq!(items, [(0x4052_0001, le32(115_200))]);
        assert_eq!(
            plan.reload.expect("reload").bytes,
            crate::ubx::config::cfg_cfg_reload()
        );
    }

    #[test]
    fn fixed_position_keys_split_coarse_and_high_precision() {
        let plan = Plan::ublox(
            &settings(Some(TimingMode::Fixed(FixedPosition {
                lat_nanodeg: 47_123_456_789,
                lon_nanodeg: -122_987_654_321,
                height_tenth_mm: 1_234_567,
                accuracy_tenth_mm: 250,
            }))),
            UbxMessages::Valset { timing_mode: true },
        );
        let (_, items) = pairs(&plan.steps[3].bytes);
        assert_eq!(
            items,
            [
                (0x2003_0001, vec![2]),
                (0x2003_0002, vec![1]), // LLH
                (0x4003_0009, 471_234_567i32.to_le_bytes().to_vec()),
                (0x4003_000A, (-1_229_876_543i32).to_le_bytes().to_vec()),
                (0x4003_000B, 12_345i32.to_le_bytes().to_vec()),
                (0x2003_000C, vec![89]),
                (0x2003_000D, (-21i8).to_le_bytes().to_vec()),
                (0x2003_000E, vec![67]),
                (0x4003_000F, le32(250)),
            ]
        );
    }

    #[test]
    fn without_timing_mode_keys_the_time_pulse_applies_the_transaction() {
        let plan = Plan::ublox(
            &settings(Some(TimingMode::SurveyIn {
                min_duration_s: 60,
                accuracy_limit_tenth_mm: 50_000,
            })),
            UbxMessages::Valset { timing_mode: false },
        );
        assert_eq!(plan.steps.len(), 3);
        let (header, items) = pairs(&plan.steps[2].bytes);
        assert_eq!(header[2], 3, "the last message applies");
        assert!(items.iter().all(|(id, _)| (id >> 16) & 0xFF != 0x03));
        let (_, messages) = pairs(&plan.steps[1].bytes);
        assert!(
            messages.iter().all(|(id, _)| *id != 0x2091_0098),
            "no TIM-SVIN without survey-in"
        );
        let none = Plan::ublox(&settings(None), UbxMessages::Valset { timing_mode: true });
        assert_eq!(none.steps.len(), 3);
    }
}
