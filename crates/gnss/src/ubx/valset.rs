//! UBX-CFG-VALSET: the key/value configuration interface of u-blox generation 9
//! and later (protocol 27+), the only one M10-class receivers (protocol 34+)
//! still have: they refuse CFG-PRT, CFG-MSG, CFG-TP5 and CFG-TMODE3.
//!
//! Layout (u-blox F9 / M10 interface descriptions, UBX-CFG-VALSET 0x06 0x8A):
//! version U1 @0 (0: no transaction, 1: with one), layers X1 @1 (bit 0 RAM,
//! bit 1 BBR, bit 2 flash), transaction U1 @2 (version 1 only: 0 none,
//! 1 (re)start, 2 ongoing, 3 apply and end; reserved in version 0),
//! reserved U1 @3, then up to 64 pairs of a U4 key id and its value, little
//! endian. A key's bits 28–30 give its value's size: 1 a bit (one byte),
//! 2 one byte, 3 two, 4 four, 5 eight. In a transaction nothing is applied
//! until the message that applies it, and a NAK to any message of it, or any
//! other CFG message in between, cancels it whole.

use super::{CLASS_CFG, encode};
use std::marker::PhantomData;

/// CFG-VALSET id.
pub const ID_CFG_VALSET: u8 = 0x8A;
/// CFG-VALGET id.
pub const ID_CFG_VALGET: u8 = 0x8B;
/// Most key/value pairs one VALSET may carry.
pub const MAX_ITEMS: usize = 64;

/// Layer bit: the running configuration (lost at power-off).
pub const LAYER_RAM: u8 = 0x01;
/// Layer bit: battery-backed RAM.
pub const LAYER_BBR: u8 = 0x02;
/// Layer bit: flash.
pub const LAYER_FLASH: u8 = 0x04;

/// Where a message stands in a transaction (version 1's `transaction` byte).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Transaction {
    /// No transaction: applied at once (sent as version 0).
    None,
    /// Starts (or restarts) a transaction.
    Start,
    /// Adds to the transaction in progress.
    Ongoing,
    /// Adds to it, then applies everything and ends it.
    Apply,
}

impl Transaction {
    fn version_and_action(self) -> (u8, u8) {
        match self {
            Transaction::None => (0, 0),
            Transaction::Start => (1, 1),
            Transaction::Ongoing => (1, 2),
            Transaction::Apply => (1, 3),
        }
    }
}

/// The storage size a key's bits 28–30 announce, in bytes (a one-bit value
/// takes a byte); `None` for a size code the specification does not define.
pub fn value_len(key_id: u32) -> Option<usize> {
    match (key_id >> 28) & 0x7 {
        1 | 2 => Some(1),
        3 => Some(2),
        4 => Some(4),
        5 => Some(8),
        _ => None,
    }
}

/// A value type a key can hold, with the size code its key id carries.
pub trait KeyValue: Copy {
    /// The size code (bits 28–30 of the key id) of keys of this type.
    const SIZE_CODE: u32;
    /// The value, little endian, in the key's storage size.
    fn to_le(self) -> Vec<u8>;
}

impl KeyValue for bool {
    const SIZE_CODE: u32 = 1;
    fn to_le(self) -> Vec<u8> {
        vec![u8::from(self)]
    }
}
impl KeyValue for u8 {
    const SIZE_CODE: u32 = 2;
    fn to_le(self) -> Vec<u8> {
        vec![self]
    }
}
impl KeyValue for i8 {
    const SIZE_CODE: u32 = 2;
    fn to_le(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}
impl KeyValue for i16 {
    const SIZE_CODE: u32 = 3;
    fn to_le(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}
impl KeyValue for u32 {
    const SIZE_CODE: u32 = 4;
    fn to_le(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}
impl KeyValue for i32 {
    const SIZE_CODE: u32 = 4;
    fn to_le(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}

/// A configuration key with the type of its value, so a value of the wrong
/// size cannot be paired with it.
#[derive(Debug)]
pub struct Key<T> {
    /// The key id.
    pub id: u32,
    /// The name in the interface description, for logs and tests.
    pub name: &'static str,
    value: PhantomData<T>,
}

impl<T> Clone for Key<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Key<T> {}

impl<T: KeyValue> Key<T> {
    const fn new(name: &'static str, id: u32) -> Self {
        Key {
            id,
            name,
            value: PhantomData,
        }
    }

    /// This key set to `value`.
    pub fn set(self, value: T) -> Item {
        Item {
            key_id: self.id,
            value: value.to_le(),
        }
    }

    /// Whether the id's size bits match the value type (checked for every key in the tests).
    pub fn size_matches(&self) -> bool {
        (self.id >> 28) & 0x7 == T::SIZE_CODE
    }
}

/// One key and its value, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The key id.
    pub key_id: u32,
    /// The value, little endian, in the key's size.
    pub value: Vec<u8>,
}

/// The key ids skytime sets (u-blox F9 HPG/TIM and M10 SPG interface descriptions).
pub mod key {
    use super::Key;

    /// CFG-UART1-BAUDRATE, U4, Bd.
    pub const UART1_BAUDRATE: Key<u32> = Key::new("CFG-UART1-BAUDRATE", 0x4052_0001);
    /// CFG-UART1INPROT-UBX, L.
    pub const UART1INPROT_UBX: Key<bool> = Key::new("CFG-UART1INPROT-UBX", 0x1073_0001);
    /// CFG-UART1INPROT-NMEA, L.
    pub const UART1INPROT_NMEA: Key<bool> = Key::new("CFG-UART1INPROT-NMEA", 0x1073_0002);
    /// CFG-UART1OUTPROT-UBX, L.
    pub const UART1OUTPROT_UBX: Key<bool> = Key::new("CFG-UART1OUTPROT-UBX", 0x1074_0001);
    /// CFG-UART1OUTPROT-NMEA, L.
    pub const UART1OUTPROT_NMEA: Key<bool> = Key::new("CFG-UART1OUTPROT-NMEA", 0x1074_0002);

    /// CFG-MSGOUT-NMEA_ID_GGA_UART1, U1 (per navigation solution).
    pub const MSGOUT_GGA_UART1: Key<u8> = Key::new("CFG-MSGOUT-NMEA_ID_GGA_UART1", 0x2091_00BB);
    /// CFG-MSGOUT-NMEA_ID_GLL_UART1, U1.
    pub const MSGOUT_GLL_UART1: Key<u8> = Key::new("CFG-MSGOUT-NMEA_ID_GLL_UART1", 0x2091_00CA);
    /// CFG-MSGOUT-NMEA_ID_GSA_UART1, U1.
    pub const MSGOUT_GSA_UART1: Key<u8> = Key::new("CFG-MSGOUT-NMEA_ID_GSA_UART1", 0x2091_00C0);
    /// CFG-MSGOUT-NMEA_ID_GSV_UART1, U1.
    pub const MSGOUT_GSV_UART1: Key<u8> = Key::new("CFG-MSGOUT-NMEA_ID_GSV_UART1", 0x2091_00C5);
    /// CFG-MSGOUT-NMEA_ID_RMC_UART1, U1.
    pub const MSGOUT_RMC_UART1: Key<u8> = Key::new("CFG-MSGOUT-NMEA_ID_RMC_UART1", 0x2091_00AC);
    /// CFG-MSGOUT-NMEA_ID_VTG_UART1, U1.
    pub const MSGOUT_VTG_UART1: Key<u8> = Key::new("CFG-MSGOUT-NMEA_ID_VTG_UART1", 0x2091_00B1);
    /// CFG-MSGOUT-NMEA_ID_ZDA_UART1, U1.
    pub const MSGOUT_ZDA_UART1: Key<u8> = Key::new("CFG-MSGOUT-NMEA_ID_ZDA_UART1", 0x2091_00D9);
    /// CFG-MSGOUT-UBX_TIM_TP_UART1, U1.
    pub const MSGOUT_TIM_TP_UART1: Key<u8> = Key::new("CFG-MSGOUT-UBX_TIM_TP_UART1", 0x2091_017E);
    /// CFG-MSGOUT-UBX_NAV_TIMELS_UART1, U1.
    pub const MSGOUT_NAV_TIMELS_UART1: Key<u8> =
        Key::new("CFG-MSGOUT-UBX_NAV_TIMELS_UART1", 0x2091_0061);
    /// CFG-MSGOUT-UBX_TIM_SVIN_UART1, U1 (timing receivers).
    pub const MSGOUT_TIM_SVIN_UART1: Key<u8> =
        Key::new("CFG-MSGOUT-UBX_TIM_SVIN_UART1", 0x2091_0098);

    /// CFG-TP-PULSE_DEF, E1: 0 period, 1 frequency.
    pub const TP_PULSE_DEF: Key<u8> = Key::new("CFG-TP-PULSE_DEF", 0x2005_0023);
    /// CFG-TP-PULSE_LENGTH_DEF, E1: 0 ratio, 1 length.
    pub const TP_PULSE_LENGTH_DEF: Key<u8> = Key::new("CFG-TP-PULSE_LENGTH_DEF", 0x2005_0030);
    /// CFG-TP-ANT_CABLEDELAY, I2, ns.
    pub const TP_ANT_CABLEDELAY: Key<i16> = Key::new("CFG-TP-ANT_CABLEDELAY", 0x3005_0001);
    /// CFG-TP-PERIOD_TP1, U4, µs (before GNSS lock).
    pub const TP_PERIOD_TP1: Key<u32> = Key::new("CFG-TP-PERIOD_TP1", 0x4005_0002);
    /// CFG-TP-PERIOD_LOCK_TP1, U4, µs (once locked).
    pub const TP_PERIOD_LOCK_TP1: Key<u32> = Key::new("CFG-TP-PERIOD_LOCK_TP1", 0x4005_0003);
    /// CFG-TP-LEN_TP1, U4, µs (before GNSS lock).
    pub const TP_LEN_TP1: Key<u32> = Key::new("CFG-TP-LEN_TP1", 0x4005_0004);
    /// CFG-TP-LEN_LOCK_TP1, U4, µs (once locked).
    pub const TP_LEN_LOCK_TP1: Key<u32> = Key::new("CFG-TP-LEN_LOCK_TP1", 0x4005_0005);
    /// CFG-TP-TP1_ENA, L.
    pub const TP_TP1_ENA: Key<bool> = Key::new("CFG-TP-TP1_ENA", 0x1005_0007);
    /// CFG-TP-SYNC_GNSS_TP1, L.
    pub const TP_SYNC_GNSS_TP1: Key<bool> = Key::new("CFG-TP-SYNC_GNSS_TP1", 0x1005_0008);
    /// CFG-TP-USE_LOCKED_TP1, L.
    pub const TP_USE_LOCKED_TP1: Key<bool> = Key::new("CFG-TP-USE_LOCKED_TP1", 0x1005_0009);
    /// CFG-TP-ALIGN_TO_TOW_TP1, L.
    pub const TP_ALIGN_TO_TOW_TP1: Key<bool> = Key::new("CFG-TP-ALIGN_TO_TOW_TP1", 0x1005_000A);
    /// CFG-TP-POL_TP1, L: 1 rising edge at the top of the second.
    pub const TP_POL_TP1: Key<bool> = Key::new("CFG-TP-POL_TP1", 0x1005_000B);
    /// CFG-TP-TIMEGRID_TP1, E1: 0 UTC, 1 GPS, 2 GLONASS, 3 BeiDou, 4 Galileo.
    pub const TP_TIMEGRID_TP1: Key<u8> = Key::new("CFG-TP-TIMEGRID_TP1", 0x2005_000C);

    /// CFG-TMODE-MODE, E1: 0 disabled, 1 survey-in, 2 fixed.
    pub const TMODE_MODE: Key<u8> = Key::new("CFG-TMODE-MODE", 0x2003_0001);
    /// CFG-TMODE-POS_TYPE, E1: 0 ECEF, 1 LLH.
    pub const TMODE_POS_TYPE: Key<u8> = Key::new("CFG-TMODE-POS_TYPE", 0x2003_0002);
    /// CFG-TMODE-LAT, I4, 1e-7°.
    pub const TMODE_LAT: Key<i32> = Key::new("CFG-TMODE-LAT", 0x4003_0009);
    /// CFG-TMODE-LON, I4, 1e-7°.
    pub const TMODE_LON: Key<i32> = Key::new("CFG-TMODE-LON", 0x4003_000A);
    /// CFG-TMODE-HEIGHT, I4, cm.
    pub const TMODE_HEIGHT: Key<i32> = Key::new("CFG-TMODE-HEIGHT", 0x4003_000B);
    /// CFG-TMODE-LAT_HP, I1, 1e-9°.
    pub const TMODE_LAT_HP: Key<i8> = Key::new("CFG-TMODE-LAT_HP", 0x2003_000C);
    /// CFG-TMODE-LON_HP, I1, 1e-9°.
    pub const TMODE_LON_HP: Key<i8> = Key::new("CFG-TMODE-LON_HP", 0x2003_000D);
    /// CFG-TMODE-HEIGHT_HP, I1, 0.1 mm.
    pub const TMODE_HEIGHT_HP: Key<i8> = Key::new("CFG-TMODE-HEIGHT_HP", 0x2003_000E);
    /// CFG-TMODE-FIXED_POS_ACC, U4, 0.1 mm.
    pub const TMODE_FIXED_POS_ACC: Key<u32> = Key::new("CFG-TMODE-FIXED_POS_ACC", 0x4003_000F);
    /// CFG-TMODE-SVIN_MIN_DUR, U4, s.
    pub const TMODE_SVIN_MIN_DUR: Key<u32> = Key::new("CFG-TMODE-SVIN_MIN_DUR", 0x4003_0010);
    /// CFG-TMODE-SVIN_ACC_LIMIT, U4, 0.1 mm.
    pub const TMODE_SVIN_ACC_LIMIT: Key<u32> = Key::new("CFG-TMODE-SVIN_ACC_LIMIT", 0x4003_0011);
}

/// A whole CFG-VALSET frame writing `items` to `layers`; at most
/// [`MAX_ITEMS`] are taken (the plans send far fewer).
pub fn encode_valset(layers: u8, transaction: Transaction, items: &[Item]) -> Vec<u8> {
    let (version, action) = transaction.version_and_action();
    let mut p = vec![version, layers, action, 0];
    for item in items.iter().take(MAX_ITEMS) {
        p.extend_from_slice(&item.key_id.to_le_bytes());
        p.extend_from_slice(&item.value);
    }
    encode(CLASS_CFG, ID_CFG_VALSET, &p)
}

/// A CFG-VALSET read back (by the simulated receiver, and the fuzz target).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Valset {
    /// The layers bit mask.
    pub layers: u8,
    /// Where the message stands in a transaction.
    pub transaction: Transaction,
    /// The keys and their values.
    pub items: Vec<Item>,
}

/// Why a VALSET payload does not follow the layout.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValsetError {
    /// Shorter than the 4-byte header.
    #[error("CFG-VALSET shorter than its header")]
    Short,
    /// A version other than 0 or 1, or a transaction action above 3.
    #[error("CFG-VALSET version {version} / transaction {action} unknown")]
    Version {
        /// The version byte.
        version: u8,
        /// The transaction byte.
        action: u8,
    },
    /// A key with an undefined size code.
    #[error("CFG-VALSET key {0:#010x} has no defined size")]
    KeySize(u32),
    /// A key or value cut off by the end of the payload.
    #[error("CFG-VALSET item cut off")]
    Truncated,
    /// More than [`MAX_ITEMS`] pairs.
    #[error("CFG-VALSET carries more than 64 items")]
    TooMany,
}

/// Reads a CFG-VALSET payload.
pub fn decode_valset(payload: &[u8]) -> Result<Valset, ValsetError> {
    let [version, layers, action, _reserved, rest @ ..] = payload else {
        return Err(ValsetError::Short);
    };
    let transaction = match (version, action) {
        (0, _) => Transaction::None,
        (1, 0) => Transaction::None,
        (1, 1) => Transaction::Start,
        (1, 2) => Transaction::Ongoing,
        (1, 3) => Transaction::Apply,
        _ => {
            return Err(ValsetError::Version {
                version: *version,
                action: *action,
            });
        }
    };
    let mut items = Vec::new();
    let mut at = rest;
    while !at.is_empty() {
        if items.len() == MAX_ITEMS {
            return Err(ValsetError::TooMany);
        }
        let [a, b, c, d, after_key @ ..] = at else {
            return Err(ValsetError::Truncated);
        };
        let key_id = u32::from_le_bytes([*a, *b, *c, *d]);
        let len = value_len(key_id).ok_or(ValsetError::KeySize(key_id))?;
        if after_key.len() < len {
            return Err(ValsetError::Truncated);
        }
        let (value, next) = after_key.split_at(len);
        items.push(Item {
            key_id,
            value: value.to_vec(),
        });
        at = next;
    }
    Ok(Valset {
        layers: *layers,
        transaction,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key skytime sends, with its value type's size code.
    fn all_keys() -> Vec<(u32, &'static str, bool)> {
        use key::*;
        let mut v = Vec::new();
        macro_rules! add {
            ($($k:ident),*) => { $( v.push(($k.id, $k.name, $k.size_matches())); )* };
        }
        add!(
            UART1_BAUDRATE,
            UART1INPROT_UBX,
            UART1INPROT_NMEA,
            UART1OUTPROT_UBX,
            UART1OUTPROT_NMEA,
            MSGOUT_GGA_UART1,
            MSGOUT_GLL_UART1,
            MSGOUT_GSA_UART1,
            MSGOUT_GSV_UART1,
            MSGOUT_RMC_UART1,
            MSGOUT_VTG_UART1,
            MSGOUT_ZDA_UART1,
            MSGOUT_TIM_TP_UART1,
            MSGOUT_NAV_TIMELS_UART1,
            MSGOUT_TIM_SVIN_UART1,
            TP_PULSE_DEF,
            TP_PULSE_LENGTH_DEF,
            TP_ANT_CABLEDELAY,
            TP_PERIOD_TP1,
            TP_PERIOD_LOCK_TP1,
            TP_LEN_TP1,
            TP_LEN_LOCK_TP1,
            TP_TP1_ENA,
            TP_SYNC_GNSS_TP1,
            TP_USE_LOCKED_TP1,
            TP_ALIGN_TO_TOW_TP1,
            TP_POL_TP1,
            TP_TIMEGRID_TP1,
            TMODE_MODE,
            TMODE_POS_TYPE,
            TMODE_LAT,
            TMODE_LON,
            TMODE_HEIGHT,
            TMODE_LAT_HP,
            TMODE_LON_HP,
            TMODE_HEIGHT_HP,
            TMODE_FIXED_POS_ACC,
            TMODE_SVIN_MIN_DUR,
            TMODE_SVIN_ACC_LIMIT
        );
        v
    }

    #[test]
    fn every_key_id_announces_the_size_of_its_value_type() {
        for (id, name, matches) in all_keys() {
            assert!(
                matches,
                "{name} ({id:#010x}): size bits do not match its type"
            );
        }
        // Group ids from the interface description: UART1 0x52, UART1INPROT
        // 0x73, UART1OUTPROT 0x74, MSGOUT 0x91, TP 0x05, TMODE 0x03.
        for (id, name, _) in all_keys() {
            let group = (id >> 16) & 0xFF;
            let want = match name.split('-').nth(1).unwrap_or("") {
                "UART1" => 0x52,
                "UART1INPROT" => 0x73,
                "UART1OUTPROT" => 0x74,
                "MSGOUT" => 0x91,
                "TP" => 0x05,
                "TMODE" => 0x03,
                other => panic!("unknown group {other}"),
            };
            assert_eq!(group, want, "{name}");
        }
    }

    #[test]
    fn value_sizes_follow_the_size_bits() {
        assert_eq!(value_len(0x1005_0007), Some(1), "one bit, stored in a byte");
        assert_eq!(value_len(0x2005_000C), Some(1));
        assert_eq!(value_len(0x3005_0001), Some(2));
        assert_eq!(value_len(0x4052_0001), Some(4));
        assert_eq!(value_len(0x5005_002A), Some(8));
        assert_eq!(value_len(0x0005_0001), None);
        assert_eq!(value_len(0x6005_0001), None);
    }

    #[test]
    fn a_transactionless_valset_is_version_0_with_keys_and_values_little_endian() {
        let f = encode_valset(
            LAYER_RAM,
            Transaction::None,
            &[
                key::UART1_BAUDRATE.set(115_200),
                key::TP_ANT_CABLEDELAY.set(-25),
                key::TP_POL_TP1.set(true),
                key::MSGOUT_RMC_UART1.set(1),
            ],
        );
        let mut want = vec![0xB5, 0x62, 0x06, 0x8A, 28, 0, 0x00, 0x01, 0x00, 0x00];
        want.extend([0x01, 0x00, 0x52, 0x40, 0x00, 0xC2, 0x01, 0x00]);
        want.extend([0x01, 0x00, 0x05, 0x30, 0xE7, 0xFF]);
        want.extend([0x0B, 0x00, 0x05, 0x10, 0x01]);
        want.extend([0xAC, 0x00, 0x91, 0x20, 0x01]);
        let (a, b) = super::super::ubx_checksum(&want[2..]);
        want.extend([a, b]);
        assert_eq!(f, want);
    }

    #[test]
    fn transactions_are_version_1_with_their_action() {
        for (t, action) in [
            (Transaction::Start, 1),
            (Transaction::Ongoing, 2),
            (Transaction::Apply, 3),
        ] {
            let f = encode_valset(LAYER_RAM | LAYER_BBR, t, &[key::TMODE_MODE.set(1)]);
            assert_eq!(f[6..10], [1, 0x03, action, 0]);
            assert_eq!(f[10..15], [0x01, 0x00, 0x03, 0x20, 0x01]);
        }
    }

    #[test]
    fn decode_reads_back_what_encode_wrote_and_rejects_damage() {
        let items = vec![
            key::TMODE_LAT.set(-471_234_567),
            key::TMODE_LAT_HP.set(-89),
            key::TP_TP1_ENA.set(true),
        ];
        let f = encode_valset(LAYER_RAM, Transaction::Apply, &items);
        let (frame, _) = super::super::Frame::parse(&f).expect("frame");
        let v = decode_valset(frame.payload).expect("decodes");
        assert_eq!(
            v,
            Valset {
                layers: LAYER_RAM,
                transaction: Transaction::Apply,
                items
            }
        );
        assert_eq!(decode_valset(&[0, 1, 0]), Err(ValsetError::Short));
        assert_eq!(
            decode_valset(&[2, 1, 0, 0]),
            Err(ValsetError::Version {
                version: 2,
                action: 0
            })
        );
        assert_eq!(
            decode_valset(&[0, 1, 0, 0, 1, 0, 0x52, 0x40, 0]),
            Err(ValsetError::Truncated)
        );
        assert_eq!(
            decode_valset(&[0, 1, 0, 0, 1, 0, 0x52, 0x70, 0]),
            Err(ValsetError::KeySize(0x7052_0001))
        );
    }
}
