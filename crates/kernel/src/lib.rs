//! The kernel clock on a real box: `clock_adjtime(CLOCK_REALTIME)`, the one
//! [`Clock`] that steers the host (the refclock core sees only the trait).
//!
//! Frequency goes through ADJ_FREQUENCY (scaled ppm, 16-bit fraction), the one
//! start-up step through ADJ_SETOFFSET, leap seconds through STA_INS/STA_DEL,
//! and the discipline's quality through ADJ_MAXERROR/ADJ_ESTERROR and
//! STA_UNSYNC, so `adjtimex`/`ntp_gettime` readers see the truth. The kernel
//! PLL/FLL are never enabled: the discipline is ours. Tests only ever make
//! read-only (modes = 0) calls through [`KernelClock::read`].

use skytime_core::{Clock, ClockError, SyncReport};
use skytime_timebase::{HostClock, LeapChange, MonoNanos, TimeSource, UnixNanos};

/// The kernel's frequency unit: ppm with a 16-bit binary fraction.
const SCALED_PPM_PER_PPM: f64 = 65_536.0;
/// The kernel refuses (clamps) frequencies beyond ±500 ppm.
const KERNEL_MAX_PPM: f64 = 500.0;
/// maxerror/esterror are microseconds; the kernel caps maxerror at 16 s.
const KERNEL_MAX_ERROR_US: f64 = 16_000_000.0;

/// A read-only snapshot of the kernel's time-keeping state.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct KernelState {
    /// Frequency correction in force, ppb.
    pub frequency_ppb: f64,
    /// The raw `status` word (STA_* bits).
    pub status: i32,
    /// Maximum error the kernel advertises, µs.
    pub max_error_us: i64,
    /// Estimated error the kernel advertises, µs.
    pub est_error_us: i64,
    /// TAI−UTC the kernel was told, seconds.
    pub tai_s: i32,
    /// Return value of the call: TIME_OK, TIME_INS, TIME_DEL, TIME_OOP,
    /// TIME_WAIT or TIME_ERROR.
    pub clock_state: i32,
}

impl KernelState {
    /// Whether the kernel considers the clock unsynchronised.
    pub fn unsynchronised(&self) -> bool {
        self.status & libc::STA_UNSYNC != 0
    }
    /// The leap flag armed in the kernel.
    pub fn leap(&self) -> LeapChange {
        if self.status & libc::STA_INS != 0 {
            LeapChange::Insert
        } else if self.status & libc::STA_DEL != 0 {
            LeapChange::Delete
        } else {
            LeapChange::None
        }
    }
}

/// CLOCK_REALTIME, steered through `clock_adjtime`. Needs CAP_SYS_TIME for
/// anything but [`KernelClock::read`].
#[derive(Debug, Default)]
pub struct KernelClock {
    host: HostClock,
}

fn zeroed_timex() -> libc::timex {
    // SAFETY: timex is a plain C struct of integers (and padding); all-zero is
    // a valid value, and modes = 0 makes it a read-only request.
    unsafe { std::mem::zeroed() }
}

fn adjtime(tx: &mut libc::timex) -> Result<i32, ClockError> {
    // SAFETY: tx is a valid, exclusively borrowed timex for the duration of the call.
    let rc = unsafe { libc::clock_adjtime(libc::CLOCK_REALTIME, tx) };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        return Err(match err.raw_os_error() {
            Some(libc::EPERM) => ClockError::PermissionDenied(format!(
                "clock_adjtime: {err} (run with CAP_SYS_TIME, e.g. AmbientCapabilities=CAP_SYS_TIME)"
            )),
            _ => ClockError::Failed(format!("clock_adjtime: {err}")),
        });
    }
    Ok(rc)
}

impl KernelClock {
    /// A handle on the kernel clock; touches nothing until steered.
    pub fn new() -> Self {
        Self { host: HostClock }
    }

    /// Reads the kernel state without changing it (modes = 0).
    #[allow(
        clippy::useless_conversion,
        reason = "c_long is 32 bits on armhf: the conversions are not useless there"
    )]
    pub fn read(&self) -> Result<KernelState, ClockError> {
        let mut tx = zeroed_timex();
        let rc = adjtime(&mut tx)?;
        Ok(KernelState {
            frequency_ppb: tx.freq as f64 / SCALED_PPM_PER_PPM * 1000.0,
            status: tx.status,
            max_error_us: i64::from(tx.maxerror),
            est_error_us: i64::from(tx.esterror),
            tai_s: tx.tai,
            clock_state: rc,
        })
    }

    /// Rewrites the status word, keeping the bits we do not own, and never
    /// leaving the kernel's own PLL/FLL enabled to fight the discipline.
    fn update_status(
        &self,
        set: i32,
        clear: i32,
        extra: impl FnOnce(&mut libc::timex),
    ) -> Result<(), ClockError> {
        let current = self.read()?;
        let mut tx = zeroed_timex();
        tx.modes = libc::ADJ_STATUS;
        tx.status = (current.status & !clear & !(libc::STA_PLL | libc::STA_FLL)) | set;
        extra(&mut tx);
        adjtime(&mut tx).map(|_| ())
    }
}

impl TimeSource for KernelClock {
    fn realtime(&self) -> UnixNanos {
        self.host.realtime()
    }
    fn monotonic(&self) -> MonoNanos {
        self.host.monotonic()
    }
}

/// The ADJ_FREQUENCY value for a correction in ppb, clamped to the kernel's range.
#[expect(
    clippy::cast_possible_truncation,
    reason = "clamped to ±500 ppm first: at most ±32,768,000, well inside i64"
)]
pub fn scaled_ppm(ppb: f64) -> i64 {
    let ppm = (ppb / 1000.0).clamp(-KERNEL_MAX_PPM, KERNEL_MAX_PPM);
    (ppm * SCALED_PPM_PER_PPM).round() as i64
}

/// The ADJ_SETOFFSET|ADJ_NANO timeval for a step: whole seconds rounded down,
/// nanoseconds always in 0..1e9 (the kernel rejects anything else).
pub fn step_timeval(offset_ns: i64) -> (i64, i64) {
    (
        offset_ns.div_euclid(1_000_000_000),
        offset_ns.rem_euclid(1_000_000_000),
    )
}

impl Clock for KernelClock {
    fn set_frequency_ppb(&self, ppb: f64) -> Result<MonoNanos, ClockError> {
        if !ppb.is_finite() {
            return Err(ClockError::Failed(format!(
                "refusing non-finite frequency {ppb}"
            )));
        }
        let mut tx = zeroed_timex();
        tx.modes = libc::ADJ_FREQUENCY;
        tx.freq = scaled_ppm(ppb) as _;
        adjtime(&mut tx).map(|_| self.host.monotonic())
    }

    fn frequency_ppb(&self) -> f64 {
        self.read().map(|s| s.frequency_ppb).unwrap_or(0.0)
    }

    fn step(&self, offset_ns: i64) -> Result<MonoNanos, ClockError> {
        let (sec, nsec) = step_timeval(offset_ns);
        let mut tx = zeroed_timex();
        tx.modes = libc::ADJ_SETOFFSET | libc::ADJ_NANO;
        tx.time.tv_sec = sec as _;
        tx.time.tv_usec = nsec as _;
        adjtime(&mut tx).map(|_| self.host.monotonic())
    }

    fn set_leap(&self, leap: LeapChange) -> Result<(), ClockError> {
        let set = match leap {
            LeapChange::None => 0,
            LeapChange::Insert => libc::STA_INS,
            LeapChange::Delete => libc::STA_DEL,
        };
        self.update_status(set, libc::STA_INS | libc::STA_DEL, |_| {})
    }

    fn set_tai_offset_s(&self, tai_minus_utc_s: i32) -> Result<(), ClockError> {
        let mut tx = zeroed_timex();
        tx.modes = libc::ADJ_TAI;
        tx.constant = tai_minus_utc_s.into();
        adjtime(&mut tx).map(|_| ())
    }

    fn report_sync(&self, report: SyncReport) -> Result<(), ClockError> {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "clamped to 0..=16e6 µs (or that bound itself) before the cast"
        )]
        let to_us = |ns: f64| {
            if ns.is_finite() {
                (ns / 1000.0).clamp(0.0, KERNEL_MAX_ERROR_US).ceil() as i64
            } else {
                KERNEL_MAX_ERROR_US as i64
            }
        };
        let (set, clear) = if report.synchronised {
            (0, libc::STA_UNSYNC)
        } else {
            (libc::STA_UNSYNC, 0)
        };
        self.update_status(set, clear, |tx| {
            tx.modes |= libc::ADJ_MAXERROR | libc::ADJ_ESTERROR;
            tx.maxerror = to_us(report.max_error_ns) as _;
            tx.esterror = to_us(report.est_error_ns) as _;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_call_returns_plausible_state() {
        // modes = 0: allowed without privileges and changes nothing.
        let k = KernelClock::new();
        let s = k
            .read()
            .expect("read-only clock_adjtime works unprivileged");
        assert!(s.frequency_ppb.abs() <= 500_000.0, "{s:?}");
        assert!((0..=5).contains(&s.clock_state), "{s:?}");
        let again = k.read().expect("read again");
        assert_eq!(again.status & libc::STA_NANO, s.status & libc::STA_NANO);
        assert!(k.realtime().secs() > 1_700_000_000);
    }

    #[test]
    fn frequency_is_scaled_ppm_with_16_bit_fraction_and_clamped() {
        assert_eq!(scaled_ppm(1000.0), 65_536);
        assert_eq!(scaled_ppm(-12_500.0), -819_200);
        assert_eq!(scaled_ppm(1.0), 66); // 0.001 ppm * 65536 = 65.5 -> 66
        assert_eq!(scaled_ppm(9e9), 500 * 65_536);
        assert_eq!(scaled_ppm(-9e9), -500 * 65_536);
    }

    #[test]
    fn step_timeval_keeps_nanos_positive() {
        assert_eq!(step_timeval(1_500_000_000), (1, 500_000_000));
        assert_eq!(step_timeval(-1), (-1, 999_999_999));
        assert_eq!(step_timeval(-700_000_000), (-1, 300_000_000));
        assert_eq!(step_timeval(0), (0, 0));
    }
}
