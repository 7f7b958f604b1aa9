//! The one thing the discipline may touch.

use skytime_timebase::{LeapChange, MonoNanos, TimeSource};

/// Errors from steering a clock.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    /// The kernel refused (usually: no CAP_SYS_TIME).
    #[error("clock adjustment refused: {0}")]
    PermissionDenied(String),
    /// Any other failure of the underlying call.
    #[error("clock adjustment failed: {0}")]
    Failed(String),
}

/// What the discipline tells the clock about its own quality, so that other
/// programs reading the kernel clock (adjtimex, ntp_gettime) see the truth.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct SyncReport {
    /// Whether the clock is synchronised (clears STA_UNSYNC on the kernel).
    pub synchronised: bool,
    /// Estimated error, in nanoseconds (kernel esterror).
    pub est_error_ns: f64,
    /// Maximum error bound, in nanoseconds (kernel maxerror).
    pub max_error_ns: f64,
}

/// A clock that the discipline steers: the kernel clock on a Pi, the
/// simulated oscillator in `crates/sim`. Methods take `&self` because the clock
/// is shared: the NTP server reads it while the discipline steers it.
pub trait Clock: TimeSource {
    /// Sets the frequency correction in parts per billion (positive: run faster).
    /// The discipline slews phase by adjusting this; it never uses the kernel PLL.
    /// Returns the monotonic instant the new frequency took effect (as
    /// ntpd-rs's `NtpClock` does), so that the discipline's model of the phase
    /// it applied changes only once, and from when, the clock accepted it.
    fn set_frequency_ppb(&self, ppb: f64) -> Result<MonoNanos, ClockError>;
    /// The frequency correction currently applied, in parts per billion.
    fn frequency_ppb(&self) -> f64;
    /// Steps the clock by `offset_ns` (positive: forward). Used only at start-up
    /// when the offset is beyond the configured step threshold, and to follow
    /// an unannounced leap second. Returns the monotonic instant it took effect.
    fn step(&self, offset_ns: i64) -> Result<MonoNanos, ClockError>;
    /// Arms (or disarms) the insert/delete flag for the coming midnight.
    fn set_leap(&self, leap: LeapChange) -> Result<(), ClockError>;
    /// Publishes the discipline's view of the clock's quality.
    fn report_sync(&self, report: SyncReport) -> Result<(), ClockError>;
    /// Tells the clock TAI−UTC, so that its TAI reading (the kernel's
    /// CLOCK_TAI) is right; the kernel itself adds one at an inserted leap.
    /// Clocks that keep no TAI offset (the simulators) have nothing to set.
    fn set_tai_offset_s(&self, _tai_minus_utc_s: i32) -> Result<(), ClockError> {
        Ok(())
    }
}
