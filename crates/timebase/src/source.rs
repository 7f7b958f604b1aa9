//! The seam between pure code and a clock.

use crate::{MonoNanos, UnixNanos};

/// Reads "now" from the clock that skytime disciplines and serves.
///
/// On a Pi this is the kernel (CLOCK_REALTIME / CLOCK_MONOTONIC). Under
/// `--simulate` it is the host clock plus a simulated oscillator's error, so the
/// whole pipeline runs without ever touching the host clock. Kernel timestamps
/// (SO_TIMESTAMPNS on a received packet, the time the serial driver saw a byte)
/// are always host realtime, so a source maps them onto its own timescale with
/// [`TimeSource::from_host_realtime`].
pub trait TimeSource: Send + Sync {
    /// The disciplined realtime clock, now.
    fn realtime(&self) -> UnixNanos;
    /// A monotonic clock for measuring intervals, now.
    fn monotonic(&self) -> MonoNanos;
    /// Maps a host CLOCK_REALTIME reading (e.g. a kernel packet timestamp) onto
    /// this source's realtime. Identity for the kernel clock.
    #[expect(
        clippy::wrong_self_convention,
        reason = "converts *into* this source's timescale, which needs the source"
    )]
    fn from_host_realtime(&self, host: UnixNanos) -> UnixNanos {
        host
    }
    /// Both clocks read back to back, for stamping an arrival.
    fn arrival(&self) -> Arrival {
        Arrival {
            monotonic: self.monotonic(),
            realtime: self.realtime(),
        }
    }
}

/// When something (a byte, a sentence, a packet) was seen, on both clocks.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Arrival {
    /// Monotonic time of arrival: intervals, ages, timeouts.
    pub monotonic: MonoNanos,
    /// Realtime of arrival on the disciplined clock: pairing with PPS stamps.
    pub realtime: UnixNanos,
}

/// The host's own kernel clocks, read only. Never steered through this type.
#[cfg(feature = "host")]
#[derive(Copy, Clone, Debug, Default)]
pub struct HostClock;

#[cfg(feature = "host")]
impl HostClock {
    fn read(clock: libc::clockid_t) -> i64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid, writable timespec and the clock ids used here
        // always exist on Linux, so clock_gettime cannot fail or write elsewhere.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        #[allow(
            clippy::unnecessary_cast,
            reason = "time_t and c_long are 32 bits on armhf, so these casts are not no-ops everywhere"
        )]
        let (secs, nanos) = (ts.tv_sec as i64, ts.tv_nsec as i64);
        secs * crate::NANOS_PER_SEC + nanos
    }
}

#[cfg(feature = "host")]
impl TimeSource for HostClock {
    fn realtime(&self) -> UnixNanos {
        UnixNanos(Self::read(libc::CLOCK_REALTIME))
    }
    fn monotonic(&self) -> MonoNanos {
        MonoNanos(Self::read(libc::CLOCK_MONOTONIC))
    }
}

#[cfg(all(test, feature = "host"))]
mod tests {
    use super::*;

    #[test]
    fn host_clock_reads_are_plausible_and_monotonic_advances() {
        let c = HostClock;
        let a = c.arrival();
        assert!(a.realtime.secs() > 1_700_000_000, "realtime {}", a.realtime);
        let b = c.monotonic();
        assert!(b >= a.monotonic);
        assert_eq!(c.from_host_realtime(a.realtime), a.realtime);
    }
}
