//! The RFC 2783 ioctls, with request numbers computed for the target.
//!
//! Linux declares them with a *pointer* type (`_IOWR('p', 0xa4, struct
//! pps_fdata *)`), so the size field of the request number is the pointer
//! width: 8 on arm64/x86_64, 4 on armhf. `pps-time` 0.2 hard-codes the 64-bit
//! numbers (`PPS_FETCH = 0xc00870a4`), which the kernel rejects with ENOTTY on
//! 32-bit Raspberry Pi OS. We keep the crate's struct layouts (bindgen of
//! `linux/pps.h`, with `__s64` seconds on every architecture) and issue the
//! ioctls ourselves through `nix` with numbers derived from the pointer width.

use pps_time::pps::{pps_fdata, pps_kparams};
use std::mem::size_of;

/// The ioctl request type nix uses on this target (c_ulong on glibc).
pub type RequestCode = nix::sys::ioctl::ioctl_num_type;

/// `_IOR('p', 0xa1, struct pps_kparams *)`: read the capture parameters.
pub const PPS_GETPARAMS: RequestCode =
    nix::request_code_read!(b'p', 0xa1, size_of::<*mut pps_kparams>());
/// `_IOW('p', 0xa2, struct pps_kparams *)`: set the capture parameters (CAP_SYS_TIME).
pub const PPS_SETPARAMS: RequestCode =
    nix::request_code_write!(b'p', 0xa2, size_of::<*mut pps_kparams>());
/// `_IOR('p', 0xa3, int *)`: read the capability bits.
pub const PPS_GETCAP: RequestCode =
    nix::request_code_read!(b'p', 0xa3, size_of::<*mut libc::c_int>());
/// `_IOWR('p', 0xa4, struct pps_fdata *)`: wait for (with a timeout) and fetch the latest capture.
pub const PPS_FETCH: RequestCode =
    nix::request_code_readwrite!(b'p', 0xa4, size_of::<*mut pps_fdata>());

nix::ioctl_read_bad!(
    /// PPS_GETPARAMS.
    get_params,
    PPS_GETPARAMS,
    pps_kparams
);
nix::ioctl_write_ptr_bad!(
    /// PPS_SETPARAMS.
    set_params,
    PPS_SETPARAMS,
    pps_kparams
);
nix::ioctl_read_bad!(
    /// PPS_GETCAP.
    get_cap,
    PPS_GETCAP,
    libc::c_int
);
nix::ioctl_readwrite_bad!(
    /// PPS_FETCH.
    fetch,
    PPS_FETCH,
    pps_fdata
);

#[cfg(test)]
mod tests {
    use super::*;

    /// `_IOC(dir, type, nr, size)` as `include/uapi/asm-generic/ioctl.h` defines
    /// it for arm, arm64, x86 and riscv: nr 8 bits, type 8, size 14, dir 2
    /// (write = 1, read = 2). Written out here, independently of nix.
    fn asm_generic_ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
        assert!(size < (1 << 14), "size field is 14 bits");
        (dir << 30) | (u32::try_from(size).unwrap() << 16) | (u32::from(ty) << 8) | u32::from(nr)
    }
    const IOC_WRITE: u32 = 1;
    const IOC_READ: u32 = 2;

    /// The numbers `pps-time` 0.2.3 hard-codes (src/lib.rs), correct only for 64-bit pointers.
    const PPS_TIME_CRATE: [(u64, &str); 4] = [
        (0x8008_70a1, "PPS_GETPARAMS"),
        (0x4008_70a2, "PPS_SETPARAMS"),
        (0x8008_70a3, "PPS_GETCAP"),
        (0xc008_70a4, "PPS_FETCH"),
    ];

    #[test]
    fn encoding_depends_on_pointer_width_as_the_kernel_says() {
        // The published values for both ABIs, from the kernel headers as built
        // on arm64 (8-byte pointers) and armhf (4-byte pointers).
        assert_eq!(
            asm_generic_ioc(IOC_READ | IOC_WRITE, b'p', 0xa4, 8),
            0xc008_70a4
        );
        assert_eq!(
            asm_generic_ioc(IOC_READ | IOC_WRITE, b'p', 0xa4, 4),
            0xc004_70a4
        );
        assert_eq!(asm_generic_ioc(IOC_READ, b'p', 0xa1, 4), 0x8004_70a1);
        assert_eq!(asm_generic_ioc(IOC_WRITE, b'p', 0xa2, 4), 0x4004_70a2);
        assert_eq!(asm_generic_ioc(IOC_READ, b'p', 0xa3, 4), 0x8004_70a3);
    }

    #[cfg(any(
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "riscv32",
        target_arch = "riscv64"
    ))]
    #[test]
    #[allow(
        clippy::unnecessary_cast,
        reason = "the request type is c_ulong (u64 here, u32 on armhf) or c_int on musl"
    )]
    fn request_numbers_match_the_kernel_for_this_targets_pointer_width() {
        let ptr = size_of::<usize>();
        let ours = [
            (
                PPS_GETPARAMS as u64,
                asm_generic_ioc(IOC_READ, b'p', 0xa1, ptr),
            ),
            (
                PPS_SETPARAMS as u64,
                asm_generic_ioc(IOC_WRITE, b'p', 0xa2, ptr),
            ),
            (
                PPS_GETCAP as u64,
                asm_generic_ioc(IOC_READ, b'p', 0xa3, ptr),
            ),
            (
                PPS_FETCH as u64,
                asm_generic_ioc(IOC_READ | IOC_WRITE, b'p', 0xa4, ptr),
            ),
        ];
        for ((got, want), (crate_value, name)) in ours.into_iter().zip(PPS_TIME_CRATE) {
            assert_eq!(
                got,
                u64::from(want),
                "{name} on a {ptr}-byte-pointer target"
            );
            // Document where pps-time is right and where we had to bypass it.
            assert_eq!(
                got == crate_value,
                ptr == 8,
                "{name}: pps-time agrees only on 64-bit"
            );
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn struct_layouts_match_linux_pps_h() {
        // pps_ktime is {__s64 sec; __s32 nsec; __u32 flags} on every ABI; the
        // 8-byte alignment of __s64 holds on arm EABI, arm64 and x86_64 (i386
        // packs to 4, which is the kernel's compat layout there).
        let s64_align = align_of::<i64>();
        let ktime = 16;
        let kinfo: usize = 8 + 2 * ktime + 4;
        let kinfo = kinfo.div_ceil(s64_align) * s64_align;
        assert_eq!(size_of::<pps_time::pps::pps_ktime>(), ktime);
        assert_eq!(size_of::<pps_time::pps::pps_kinfo>(), kinfo);
        assert_eq!(size_of::<pps_fdata>(), kinfo + ktime);
        assert_eq!(size_of::<pps_kparams>(), 8 + 2 * ktime);
    }
}
