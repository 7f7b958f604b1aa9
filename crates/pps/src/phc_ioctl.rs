//! The PTP hardware clock ioctls of `linux/ptp_clock.h` that the PHC source
//! uses. Structs and request numbers come from `libc`; the flag bits, which
//! `libc` does not carry, are written out here from the same header.

use libc::{ptp_clock_caps, ptp_extts_request, ptp_pin_desc, ptp_sys_offset};
use libc::{ptp_sys_offset_extended, ptp_sys_offset_precise};

/// `PTP_ENABLE_FEATURE`: turn the external-timestamp channel on.
pub const PTP_ENABLE_FEATURE: libc::c_uint = 1 << 0;
/// `PTP_RISING_EDGE`: stamp the rising edge.
pub const PTP_RISING_EDGE: libc::c_uint = 1 << 1;
/// `PTP_FALLING_EDGE`: stamp the falling edge.
pub const PTP_FALLING_EDGE: libc::c_uint = 1 << 2;
/// `PTP_STRICT_FLAGS`: the driver must honour the edge flags or refuse (5.7+).
pub const PTP_STRICT_FLAGS: libc::c_uint = 1 << 3;
/// Size of one `struct ptp_extts_event` as read(2) returns it.
pub const EXTTS_EVENT_BYTES: usize = 32;

nix::ioctl_read_bad!(
    /// PTP_CLOCK_GETCAPS: what the clock can do (channels, pins, cross-timestamping).
    get_caps,
    libc::PTP_CLOCK_GETCAPS,
    ptp_clock_caps
);
nix::ioctl_write_ptr_bad!(
    /// PTP_PIN_SETFUNC: route a pin to a function and channel.
    pin_setfunc,
    libc::PTP_PIN_SETFUNC,
    ptp_pin_desc
);
nix::ioctl_write_ptr_bad!(
    /// PTP_EXTTS_REQUEST2: enable or disable an external-timestamp channel (flags checked).
    extts_request2,
    libc::PTP_EXTTS_REQUEST2,
    ptp_extts_request
);
nix::ioctl_write_ptr_bad!(
    /// PTP_EXTTS_REQUEST: the pre-4.20 request, for kernels without the "2" variant.
    extts_request,
    libc::PTP_EXTTS_REQUEST,
    ptp_extts_request
);
nix::ioctl_readwrite_bad!(
    /// PTP_SYS_OFFSET_PRECISE: a hardware cross-timestamp of PHC and system clock.
    sys_offset_precise,
    libc::PTP_SYS_OFFSET_PRECISE,
    ptp_sys_offset_precise
);
nix::ioctl_readwrite_bad!(
    /// PTP_SYS_OFFSET_EXTENDED: (system, PHC, system) triples bracketing each PHC read.
    sys_offset_extended,
    libc::PTP_SYS_OFFSET_EXTENDED,
    ptp_sys_offset_extended
);
// Declared _IOW in the header, yet the kernel writes the samples back.
nix::ioctl_readwrite_bad!(
    /// PTP_SYS_OFFSET: interleaved system and PHC reads.
    sys_offset,
    libc::PTP_SYS_OFFSET,
    ptp_sys_offset
);

/// One `struct ptp_extts_event` decoded from the bytes read(2) returned:
/// `{ struct ptp_clock_time t {s64 sec; u32 nsec; u32 reserved}; u32 index; u32 flags; u32 rsv[2] }`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ExttsEvent {
    /// The channel that fired.
    pub channel: u32,
    /// PHC time of the edge, ns.
    pub phc_ns: i64,
}

impl ExttsEvent {
    /// Decodes one record (native endianness, as the kernel wrote it).
    pub fn decode(record: &[u8; EXTTS_EVENT_BYTES]) -> Self {
        let sec = i64::from_ne_bytes(record[0..8].try_into().unwrap_or([0; 8]));
        let nsec = u32::from_ne_bytes(record[8..12].try_into().unwrap_or([0; 4]));
        let channel = u32::from_ne_bytes(record[16..20].try_into().unwrap_or([0; 4]));
        Self {
            channel,
            phc_ns: clock_time_ns(sec, nsec),
        }
    }
}

/// A `ptp_clock_time` as ns, saturating far outside any real clock's range.
pub fn clock_time_ns(sec: i64, nsec: u32) -> i64 {
    sec.saturating_mul(1_000_000_000)
        .saturating_add(i64::from(nsec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn layouts_match_linux_ptp_clock_h() {
        assert_eq!(size_of::<libc::ptp_extts_event>(), EXTTS_EVENT_BYTES);
        assert_eq!(size_of::<libc::ptp_clock_time>(), 16);
        assert_eq!(size_of::<ptp_clock_caps>(), 80);
        assert_eq!(size_of::<ptp_pin_desc>(), 96);
        assert_eq!(size_of::<ptp_extts_request>(), 16);
        assert_eq!(size_of::<ptp_sys_offset_precise>(), 64);
        assert_eq!(size_of::<ptp_sys_offset_extended>(), 16 + 25 * 3 * 16);
        assert_eq!(size_of::<ptp_sys_offset>(), 16 + 51 * 16);
    }

    #[cfg(any(target_arch = "aarch64", target_arch = "x86_64", target_arch = "arm"))]
    #[test]
    #[allow(
        clippy::unnecessary_cast,
        reason = "the request type is c_ulong (u64 here, u32 on armhf) or c_int on musl"
    )]
    fn request_numbers_match_the_kernel_headers() {
        // _IOC(dir, '=', nr, size), from <linux/ptp_clock.h> as gcc computes it.
        let ioc = |dir: u64, nr: u64, size: u64| (dir << 30) | (size << 16) | (0x3d << 8) | nr;
        assert_eq!(libc::PTP_CLOCK_GETCAPS as u64, ioc(2, 1, 80));
        assert_eq!(libc::PTP_EXTTS_REQUEST as u64, ioc(1, 2, 16));
        assert_eq!(libc::PTP_SYS_OFFSET as u64, ioc(1, 5, 832));
        assert_eq!(libc::PTP_PIN_SETFUNC as u64, ioc(1, 7, 96));
        assert_eq!(libc::PTP_SYS_OFFSET_PRECISE as u64, ioc(3, 8, 64));
        assert_eq!(libc::PTP_SYS_OFFSET_EXTENDED as u64, ioc(3, 9, 1216));
        assert_eq!(libc::PTP_EXTTS_REQUEST2 as u64, ioc(1, 11, 16));
    }

    #[test]
    fn an_event_record_decodes() {
        let mut rec = [0u8; EXTTS_EVENT_BYTES];
        rec[0..8].copy_from_slice(&1_700_000_000i64.to_ne_bytes());
        rec[8..12].copy_from_slice(&123_456_789u32.to_ne_bytes());
        rec[16..20].copy_from_slice(&2u32.to_ne_bytes());
        assert_eq!(
            ExttsEvent::decode(&rec),
            ExttsEvent {
                channel: 2,
                phc_ns: 1_700_000_000_123_456_789
            }
        );
    }
}
