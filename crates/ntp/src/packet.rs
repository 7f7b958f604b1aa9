//! NTP wire format (RFC 5905 §7.3): the 48-byte header, 64-bit timestamps,
//! and the framing of extension fields (RFC 7822) and the legacy MAC (RFC 5905 §7.3, RFC 8573).
//!
//! Everything here is pure and allocation-free: it reads from and writes into
//! caller-owned buffers, so the server can run it per packet.

use skytime_timebase::{NANOS_PER_SEC, UnixNanos};

/// Length of the fixed NTP header every request and reply starts with.
pub const HEADER_LEN: usize = 48;
/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub const NTP_UNIX_OFFSET_S: i64 = 2_208_988_800;
/// Shortest legacy MAC: a key id and a 16-byte digest (MD5, AES-CMAC).
pub const MIN_MAC_LEN: usize = 4 + 16;
/// Longest legacy MAC in an NTPv4 packet: a key id and a 20-byte digest (SHA1,
/// or a longer hash truncated to 20 bytes as chrony does).
pub const MAX_MAC_LEN: usize = 4 + 20;
/// A crypto-NAK is a MAC of only a zero key id (RFC 5905 §7.4).
pub const CRYPTO_NAK_LEN: usize = 4;
/// Shortest extension field (RFC 7822 §3).
pub const MIN_EXTENSION_LEN: usize = 16;

/// NTP modes this server cares about.
pub mod mode {
    /// Symmetric active (peer): what w32time sends to a manually configured
    /// peer; answered statelessly in symmetric passive mode.
    pub const SYMMETRIC_ACTIVE: u8 = 1;
    /// Symmetric passive: the stateless answer to symmetric active.
    pub const SYMMETRIC_PASSIVE: u8 = 2;
    /// A client request.
    pub const CLIENT: u8 = 3;
    /// A server reply.
    pub const SERVER: u8 = 4;
    /// Broadcast.
    pub const BROADCAST: u8 = 5;
    /// ntpq control messages: never answered (amplification and information leak).
    pub const CONTROL: u8 = 6;
    /// ntpdc private messages: never answered (the monlist amplifier).
    pub const PRIVATE: u8 = 7;
}

/// An NTP 64-bit timestamp (32.32 fixed point seconds since 1900, modulo the era).
///
/// Kept as the raw wire value because the interleaved mode matches timestamps
/// bit for bit, and conversions must not lose that identity.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// The zero timestamp, which NTP uses for "not set".
    pub const ZERO: NtpTimestamp = NtpTimestamp(0);

    /// The wire form of a realtime instant (era folded away, nanoseconds rounded).
    pub fn from_unix(t: UnixNanos) -> Self {
        let secs = t.secs().wrapping_add(NTP_UNIX_OFFSET_S).cast_unsigned();
        let frac = ((u64::from(t.subsec_nanos()) << 32) + (NANOS_PER_SEC as u64 / 2))
            / NANOS_PER_SEC as u64;
        NtpTimestamp((secs << 32).wrapping_add(frac))
    }

    /// The realtime instant this timestamp denotes in the era closest to `pivot`
    /// (the ±68-year window RFC 5905 §6 prescribes).
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "NTP seconds are the Unix seconds modulo 2^32, two's complement (the era is dropped on purpose)"
    )]
    pub fn to_unix_near(self, pivot: UnixNanos) -> UnixNanos {
        let pivot_secs = pivot.secs().wrapping_add(NTP_UNIX_OFFSET_S) as u32;
        let delta_s = self.seconds().wrapping_sub(pivot_secs).cast_signed();
        let secs = pivot.secs() + i64::from(delta_s);
        let nanos = ((self.0 & 0xffff_ffff) * NANOS_PER_SEC as u64 + (1 << 31)) >> 32;
        UnixNanos(secs * NANOS_PER_SEC + nanos.cast_signed())
    }

    /// Whole seconds within the era.
    pub fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// True for the "not set" value.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    fn read(buf: &[u8]) -> Self {
        let mut b = [0u8; 8];
        b.copy_from_slice(&buf[..8]);
        NtpTimestamp(u64::from_be_bytes(b))
    }
}

/// NTP short format (16.16 fixed point seconds), used for root delay and dispersion.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct NtpShort(pub u32);

impl NtpShort {
    /// Nanoseconds to 16.16 seconds, rounded up (an error bound must never shrink
    /// in transit) and saturated at the format's ~18 hours.
    pub fn from_nanos_ceil(ns: f64) -> Self {
        if !ns.is_finite() {
            return NtpShort(if ns > 0.0 { u32::MAX } else { 0 });
        }
        if ns <= 0.0 {
            return NtpShort(0);
        }
        let units = (ns * 65_536.0 / NANOS_PER_SEC as f64).ceil();
        NtpShort(if units >= f64::from(u32::MAX) {
            u32::MAX
        } else {
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a whole number in 1..u32::MAX (checked above)"
            )]
            let units = units as u32;
            units
        })
    }

    /// The value in nanoseconds.
    pub fn to_nanos(self) -> f64 {
        f64::from(self.0) * NANOS_PER_SEC as f64 / 65_536.0
    }
}

/// The fixed 48-byte NTP header, decoded.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// Leap indicator: 0 none, 1 insert, 2 delete, 3 unsynchronised.
    pub leap: u8,
    /// Protocol version, 1 to 4 for anything answered.
    pub version: u8,
    /// Association mode (3 client, 4 server, ...).
    pub mode: u8,
    /// Stratum; 0 in a reply is a kiss-o'-death.
    pub stratum: u8,
    /// log2 of the poll interval in seconds.
    pub poll: i8,
    /// log2 of the clock precision in seconds.
    pub precision: i8,
    /// Round-trip delay to the reference.
    pub root_delay: NtpShort,
    /// Error bound relative to the reference.
    pub root_dispersion: NtpShort,
    /// Reference id, or the kiss code of a kiss-o'-death.
    pub reference_id: [u8; 4],
    /// When the server's clock was last set.
    pub reference_ts: NtpTimestamp,
    /// T1 as echoed by the server (or, in a request, the client's view of it).
    pub origin_ts: NtpTimestamp,
    /// T2: when the server received the request.
    pub receive_ts: NtpTimestamp,
    /// T3: when the server sent the reply (or the client its request).
    pub transmit_ts: NtpTimestamp,
}

/// Byte offset of the transmit timestamp, patched in last before a send.
pub const TRANSMIT_TS_OFFSET: usize = 40;

impl Header {
    /// Decodes the first 48 bytes; `None` if the buffer is shorter.
    pub fn parse(buf: &[u8]) -> Option<Header> {
        if buf.len() < HEADER_LEN {
            return None;
        }
        let mut reference_id = [0u8; 4];
        reference_id.copy_from_slice(&buf[12..16]);
        Some(Header {
            leap: buf[0] >> 6,
            version: (buf[0] >> 3) & 0x7,
            mode: buf[0] & 0x7,
            stratum: buf[1],
            poll: buf[2].cast_signed(),
            precision: buf[3].cast_signed(),
            root_delay: NtpShort(u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]])),
            root_dispersion: NtpShort(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]])),
            reference_id,
            reference_ts: NtpTimestamp::read(&buf[16..]),
            origin_ts: NtpTimestamp::read(&buf[24..]),
            receive_ts: NtpTimestamp::read(&buf[32..]),
            transmit_ts: NtpTimestamp::read(&buf[40..]),
        })
    }

    /// Encodes into the first 48 bytes of `out`, which must be at least that long.
    pub fn write(&self, out: &mut [u8]) {
        out[0] = ((self.leap & 0x3) << 6) | ((self.version & 0x7) << 3) | (self.mode & 0x7);
        out[1] = self.stratum;
        out[2] = self.poll.cast_unsigned();
        out[3] = self.precision.cast_unsigned();
        out[4..8].copy_from_slice(&self.root_delay.0.to_be_bytes());
        out[8..12].copy_from_slice(&self.root_dispersion.0.to_be_bytes());
        out[12..16].copy_from_slice(&self.reference_id);
        out[16..24].copy_from_slice(&self.reference_ts.0.to_be_bytes());
        out[24..32].copy_from_slice(&self.origin_ts.0.to_be_bytes());
        out[32..40].copy_from_slice(&self.receive_ts.0.to_be_bytes());
        out[40..48].copy_from_slice(&self.transmit_ts.0.to_be_bytes());
    }
}

/// Writes a transmit timestamp into an encoded packet, the last thing before the MAC.
pub fn patch_transmit(out: &mut [u8], ts: NtpTimestamp) {
    out[TRANSMIT_TS_OFFSET..TRANSMIT_TS_OFFSET + 8].copy_from_slice(&ts.0.to_be_bytes());
}

/// Why bytes that start like NTP are not a packet this server will process.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Shorter than the 48-byte header.
    #[error("shorter than the NTP header")]
    TooShort,
    /// An extension field with a bad length, or one running past the end.
    #[error("malformed extension field")]
    BadExtensionField,
    /// Trailing bytes that are neither a MAC nor valid extension fields.
    #[error("trailing bytes are neither a MAC nor extension fields")]
    BadTrailer,
}

/// The legacy symmetric-key MAC at the end of a packet.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MacField<'a> {
    /// Key id, the first four bytes of the MAC.
    pub key_id: u32,
    /// The digest after the key id (empty for a crypto-NAK).
    pub digest: &'a [u8],
    /// Offset of the key id: the MAC covers bytes `..offset`.
    pub offset: usize,
}

/// How the bytes after the header are laid out.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Framing<'a> {
    /// The MAC, if the packet carries one.
    pub mac: Option<MacField<'a>>,
    /// Number of (well-formed, unrecognised) extension fields before the MAC.
    pub extension_fields: usize,
}

/// Splits what follows the header into extension fields and a MAC the way
/// RFC 7822 §7.5 and chrony do: a remainder of MAC length is the MAC, anything
/// else must be a well-formed extension field. Versions before 4 have no
/// extension fields.
pub fn parse_framing(buf: &[u8]) -> Result<Framing<'_>, Malformed> {
    if buf.len() < HEADER_LEN {
        return Err(Malformed::TooShort);
    }
    let version = (buf[0] >> 3) & 0x7;
    let mut pos = HEADER_LEN;
    let mut extension_fields = 0;
    loop {
        let remainder = buf.len() - pos;
        if remainder == 0 {
            return Ok(Framing {
                mac: None,
                extension_fields,
            });
        }
        if remainder.is_multiple_of(4) && (MIN_MAC_LEN..=MAX_MAC_LEN).contains(&remainder)
            || remainder == CRYPTO_NAK_LEN
        {
            let key_id = u32::from_be_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]);
            return Ok(Framing {
                mac: Some(MacField {
                    key_id,
                    digest: &buf[pos + 4..],
                    offset: pos,
                }),
                extension_fields,
            });
        }
        if version != 4 {
            return Err(Malformed::BadTrailer);
        }
        if remainder < MIN_EXTENSION_LEN {
            return Err(Malformed::BadExtensionField);
        }
        let field_len = usize::from(u16::from_be_bytes([buf[pos + 2], buf[pos + 3]]));
        if field_len < MIN_EXTENSION_LEN || !field_len.is_multiple_of(4) || field_len > remainder {
            return Err(Malformed::BadExtensionField);
        }
        pos += field_len;
        extension_fields += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trips_within_half_a_nanosecond() {
        let t = UnixNanos::from_secs_nanos(1_700_000_000, 123_456_789);
        let ntp = NtpTimestamp::from_unix(t);
        assert_eq!(i64::from(ntp.seconds()), 1_700_000_000 + NTP_UNIX_OFFSET_S);
        assert_eq!(ntp.to_unix_near(t), t);
    }

    #[test]
    fn era_boundary_resolves_near_pivot() {
        // 2036-02-07T06:28:16Z is the first second of NTP era 1.
        let t = UnixNanos::from_secs_nanos(2_085_978_496, 5);
        let ntp = NtpTimestamp::from_unix(t);
        assert_eq!(ntp.seconds(), 0);
        assert_eq!(
            ntp.to_unix_near(UnixNanos::from_secs_nanos(2_085_978_490, 0)),
            t
        );
    }

    #[test]
    fn short_format_rounds_up_and_saturates() {
        assert_eq!(NtpShort::from_nanos_ceil(0.0).0, 0);
        assert_eq!(NtpShort::from_nanos_ceil(1.0).0, 1);
        assert_eq!(NtpShort::from_nanos_ceil(1e9).0, 65_536);
        assert_eq!(NtpShort::from_nanos_ceil(1e18).0, u32::MAX);
        assert_eq!(NtpShort::from_nanos_ceil(f64::NAN).0, 0);
        assert_eq!(NtpShort::from_nanos_ceil(-5.0).0, 0);
    }

    #[test]
    fn header_round_trips() {
        let h = Header {
            leap: 1,
            version: 4,
            mode: 3,
            stratum: 2,
            poll: -3,
            precision: -24,
            root_delay: NtpShort(7),
            root_dispersion: NtpShort(9),
            reference_id: *b"GPS\0",
            reference_ts: NtpTimestamp(1),
            origin_ts: NtpTimestamp(2),
            receive_ts: NtpTimestamp(3),
            transmit_ts: NtpTimestamp(u64::MAX),
        };
        let mut buf = [0u8; HEADER_LEN];
        h.write(&mut buf);
        assert_eq!(Header::parse(&buf), Some(h));
        assert_eq!(Header::parse(&buf[..47]), None);
    }

    fn packet(version: u8, trailer: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; HEADER_LEN];
        p[0] = (version << 3) | 3;
        p.extend_from_slice(trailer);
        p
    }

    #[test]
    fn framing_finds_macs_and_extension_fields() {
        assert_eq!(parse_framing(&packet(4, &[])).map(|f| f.mac), Ok(None));
        let mut mac = vec![0, 0, 0, 7];
        mac.extend_from_slice(&[0xaa; 16]);
        let p = packet(4, &mac);
        let f = parse_framing(&p).expect("valid");
        let m = f.mac.expect("mac");
        assert_eq!((m.key_id, m.digest.len(), m.offset), (7, 16, 48));

        let mut ef = vec![0x01, 0x04, 0x00, 0x10];
        ef.extend_from_slice(&[0u8; 12]);
        let mut both = ef.clone();
        both.extend_from_slice(&mac);
        let p = packet(4, &both);
        let f = parse_framing(&p).expect("valid");
        assert_eq!(f.extension_fields, 1);
        assert_eq!(f.mac.map(|m| m.offset), Some(64));
        // NTPv3 cannot carry extension fields.
        assert_eq!(parse_framing(&packet(3, &ef)), Err(Malformed::BadTrailer));
    }

    #[test]
    fn framing_rejects_garbage_trailers() {
        assert_eq!(parse_framing(&[0u8; 47]), Err(Malformed::TooShort));
        assert_eq!(
            parse_framing(&packet(4, &[1, 2, 3])),
            Err(Malformed::BadExtensionField)
        );
        // Length field smaller than the minimum, and one running past the end.
        let mut ef = vec![0, 1, 0, 8];
        ef.extend_from_slice(&[0u8; 28]);
        assert_eq!(
            parse_framing(&packet(4, &ef)),
            Err(Malformed::BadExtensionField)
        );
        let mut ef = vec![0, 1, 0, 64];
        ef.extend_from_slice(&[0u8; 28]);
        assert_eq!(
            parse_framing(&packet(4, &ef)),
            Err(Malformed::BadExtensionField)
        );
        assert_eq!(
            parse_framing(&packet(4, &[0u8; 1000])),
            Err(Malformed::BadExtensionField)
        );
    }

    proptest::proptest! {
        #[test]
        fn framing_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse_framing(&bytes);
            let _ = Header::parse(&bytes);
        }

        #[test]
        fn timestamps_round_trip(secs in 0i64..4_000_000_000, nanos in 0u32..1_000_000_000) {
            let t = UnixNanos::from_secs_nanos(secs, nanos);
            let back = NtpTimestamp::from_unix(t).to_unix_near(t);
            proptest::prop_assert!((back.0 - t.0).abs() <= 1, "{t:?} -> {back:?}");
        }
    }
}
