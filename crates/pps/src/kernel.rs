//! The RFC 2783 kernel driver: `/dev/ppsN` behind [`PpsSource`].

use crate::config::PpsConfig;
use crate::ioctl;
use crate::source::{PpsEdge, PpsEdgeKind, PpsError, PpsSource};
use crate::tracker::{Capture, EdgeTracker, PpsCounters};
use pps_time::pps::{
    PPS_API_VERS, PPS_CANWAIT, PPS_CAPTUREASSERT, PPS_CAPTURECLEAR, PPS_TSFMT_TSPEC, pps_fdata,
    pps_kparams, pps_ktime,
};
use skytime_timebase::{HostClock, NANOS_PER_SEC, TimeSource, UnixNanos};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to do when the node is missing.
const HINT_NOT_FOUND: &str = "no such PPS device. On a Raspberry Pi add `dtoverlay=pps-gpio,gpiopin=18` \
(the hat's PPS pin) to /boot/firmware/config.txt and reboot; `ls /dev/pps*` lists PPS devices, and \
`sudo ppstest /dev/pps0` (package pps-tools) shows its pulses. Set [pps] device to the right node.";

/// What to do when access is refused.
const HINT_PERMISSION: &str = "install systemd/90-skytime.rules as /lib/udev/rules.d/90-skytime.rules \
(it gives group skytime read/write on every PPS device) and run `sudo udevadm trigger`, and make sure \
skytimed runs as user skytime (or add your user to group skytime: `sudo usermod -aG skytime $USER`, \
then log in again)";

/// Why a device refuses to capture our edge, and what to do.
const HINT_CLEAR_EDGE: &str = "this source does not capture the clear edge; pps-gpio does only with \
`dtoverlay=pps-gpio,gpiopin=18,capture_clear`, or set [pps] edge = \"assert\"";

fn ktime_to_unix(t: &pps_ktime) -> UnixNanos {
    UnixNanos(
        t.sec
            .saturating_mul(NANOS_PER_SEC)
            .saturating_add(i64::from(t.nsec)),
    )
}

/// Maps an error from opening the node to the operator's fix.
pub(crate) fn open_error(path: &str, err: io::Error) -> PpsError {
    match err.kind() {
        io::ErrorKind::NotFound => PpsError::NotFound {
            path: path.to_string(),
            hint: HINT_NOT_FOUND.to_string(),
        },
        io::ErrorKind::PermissionDenied => PpsError::PermissionDenied {
            path: path.to_string(),
            hint: HINT_PERMISSION.to_string(),
        },
        _ => PpsError::Io {
            path: path.to_string(),
            source: err,
        },
    }
}

/// Checks the capability bits for what skytime needs; the error names the missing one.
pub(crate) fn check_caps(path: &str, caps: u32, edge: PpsEdgeKind) -> Result<(), PpsError> {
    if caps & PPS_CANWAIT == 0 {
        return Err(PpsError::Unsupported {
            path: path.to_string(),
            what: "PPS_CANWAIT (blocking fetch); this kernel source can only be polled, use a pps-gpio or pps-ldisc source".into(),
        });
    }
    if caps & PPS_TSFMT_TSPEC == 0 {
        return Err(PpsError::Unsupported {
            path: path.to_string(),
            what: "PPS_TSFMT_TSPEC (timespec timestamps)".into(),
        });
    }
    let (bit, what) = match edge {
        PpsEdgeKind::Assert => (
            PPS_CAPTUREASSERT,
            "PPS_CAPTUREASSERT (assert edge capture)".to_string(),
        ),
        PpsEdgeKind::Clear => (
            PPS_CAPTURECLEAR,
            format!("PPS_CAPTURECLEAR: {HINT_CLEAR_EDGE}"),
        ),
    };
    if caps & bit == 0 {
        return Err(PpsError::Unsupported {
            path: path.to_string(),
            what,
        });
    }
    Ok(())
}

/// A kernel PPS device opened for one edge kind.
///
/// Each [`PpsSource::fetch`] blocks in PPS_FETCH for at most its timeout, so
/// the dedicated PPS thread (see [`crate::PpsThread`]) wakes regularly to
/// notice shutdown, and a silent line shows as timeouts, not as a hang.
#[derive(Debug)]
pub struct KernelPps {
    file: File,
    path: String,
    edge: PpsEdgeKind,
    tracker: EdgeTracker,
    counters: Arc<PpsCounters>,
}

impl KernelPps {
    /// Opens `config.device`, checks its capabilities and makes sure the
    /// selected edge is captured (setting the mode needs CAP_SYS_TIME, which
    /// skytimed.service grants; it is skipped when the mode is already right).
    pub fn open(config: &PpsConfig) -> Result<Self, PpsError> {
        let path = config.device.display().to_string();
        let file = File::options()
            .read(true)
            .write(true)
            .open(&config.device)
            .or_else(|e| match e.kind() {
                // Read-only suffices for everything but SETPARAMS.
                io::ErrorKind::PermissionDenied => File::open(&config.device),
                _ => Err(e),
            })
            .map_err(|e| open_error(&path, e))?;
        let fd = file.as_raw_fd();

        let mut caps: libc::c_int = 0;
        // SAFETY: fd is an open descriptor we own; PPS_GETCAP writes one c_int
        // into the valid, writable `caps`.
        unsafe { ioctl::get_cap(fd, &mut caps) }
            .map_err(|e| not_pps_or_io(&path, "PPS_GETCAP", e))?;
        check_caps(&path, caps.cast_unsigned(), config.edge)?;

        let mut params = pps_kparams::default();
        // SAFETY: PPS_GETPARAMS writes a pps_kparams into the valid `params`.
        unsafe { ioctl::get_params(fd, &mut params) }
            .map_err(|e| not_pps_or_io(&path, "PPS_GETPARAMS", e))?;
        // pps.h's flags are unsigned; the kparams fields are c_int bit masks.
        let want = match config.edge {
            PpsEdgeKind::Assert => PPS_CAPTUREASSERT,
            PpsEdgeKind::Clear => PPS_CAPTURECLEAR,
        }
        .cast_signed();
        if params.mode & want == 0 {
            params.api_version = PPS_API_VERS.cast_signed();
            params.mode |= want | PPS_TSFMT_TSPEC.cast_signed();
            // SAFETY: PPS_SETPARAMS reads a pps_kparams from the valid `params`.
            unsafe { ioctl::set_params(fd, &params) }.map_err(|e| match e {
                nix::errno::Errno::EPERM | nix::errno::Errno::EACCES => PpsError::PermissionDenied {
                    path: path.clone(),
                    hint: format!(
                        "enabling {} capture (PPS_SETPARAMS) needs CAP_SYS_TIME: run skytimed from \
                         skytimed.service (AmbientCapabilities=CAP_SYS_TIME) or as root",
                        edge_name(config.edge)
                    ),
                },
                other => not_pps_or_io(&path, "PPS_SETPARAMS", other),
            })?;
            tracing::info!(device = %path, edge = edge_name(config.edge), "enabled PPS edge capture");
        }

        let mut pps = Self {
            file,
            path,
            edge: config.edge,
            tracker: EdgeTracker::new(config.edge),
            counters: Arc::new(PpsCounters::default()),
        };
        // The kernel's latest capture predates us: baseline, not a new edge.
        let zero = pps_ktime {
            sec: 0,
            nsec: 0,
            flags: 0,
        };
        let now = pps.fetch_raw(zero).map_err(|e| pps.fetch_error(e))?;
        if let Some(capture) = now {
            pps.tracker.prime(&capture);
        }
        Ok(pps)
    }

    /// The loss and timeout counters, shared with metrics.
    pub fn counters(&self) -> Arc<PpsCounters> {
        Arc::clone(&self.counters)
    }

    /// Counts into `counters` from now on (a reopened device continuing the
    /// counts status and metrics already show).
    #[must_use]
    pub fn counting_into(mut self, counters: Arc<PpsCounters>) -> Self {
        self.counters = counters;
        self
    }

    /// One PPS_FETCH; `Ok(None)` on the kernel's ETIMEDOUT.
    fn fetch_raw(&self, timeout: pps_ktime) -> Result<Option<Capture>, nix::errno::Errno> {
        let mut data = pps_fdata {
            info: Default::default(),
            timeout,
        };
        loop {
            // SAFETY: PPS_FETCH reads the timeout from and writes the captures
            // into `data`, a valid pps_fdata that outlives the call.
            match unsafe { ioctl::fetch(self.file.as_raw_fd(), &mut data) } {
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::ETIMEDOUT) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Ok(Some(Capture {
            assert_sequence: data.info.assert_sequence,
            assert_time: ktime_to_unix(&data.info.assert_tu),
            clear_sequence: data.info.clear_sequence,
            clear_time: ktime_to_unix(&data.info.clear_tu),
        }))
    }

    fn fetch_error(&self, e: nix::errno::Errno) -> PpsError {
        match e {
            nix::errno::Errno::ENODEV | nix::errno::Errno::ENXIO | nix::errno::Errno::EIO => {
                PpsError::Disconnected {
                    path: self.path.clone(),
                    reason: format!("{e} (device removed or its driver unloaded)"),
                }
            }
            other => not_pps_or_io(&self.path, "PPS_FETCH", other),
        }
    }
}

fn edge_name(edge: PpsEdgeKind) -> &'static str {
    match edge {
        PpsEdgeKind::Assert => "assert",
        PpsEdgeKind::Clear => "clear",
    }
}

/// ENOTTY from a PPS ioctl means the node is not a PPS device (or, on a
/// 32-bit system with a wrong request number, the ioctl was not recognised);
/// ENOSYS is how qemu-user reports an ioctl it does not know.
fn not_pps_or_io(path: &str, which: &str, e: nix::errno::Errno) -> PpsError {
    match e {
        nix::errno::Errno::ENOTTY | nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS => {
            PpsError::Unsupported {
                path: path.to_string(),
                what: format!(
                    "{which} failed ({e}): not an RFC 2783 PPS device; point [pps] device at /dev/ppsN"
                ),
            }
        }
        other => PpsError::Io {
            path: path.to_string(),
            source: io::Error::from(other),
        },
    }
}

impl PpsSource for KernelPps {
    fn fetch(&mut self, timeout: Duration) -> Result<Option<PpsEdge>, PpsError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.counters
                    .timeouts
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(None);
            }
            let t = pps_ktime {
                sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                nsec: i32::try_from(left.subsec_nanos()).expect("sub-second nanos < 1e9"),
                flags: 0,
            };
            let capture = match self.fetch_raw(t) {
                Ok(Some(c)) => c,
                Ok(None) => {
                    self.counters
                        .timeouts
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Ok(None);
                }
                Err(e) => {
                    self.counters
                        .errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Err(self.fetch_error(e));
                }
            };
            let received = HostClock.monotonic();
            if let Some(edge) = self.tracker.observe(&capture, received, &self.counters) {
                return Ok(Some(edge));
            }
        }
    }

    fn describe(&self) -> String {
        format!("{} ({})", self.path, edge_name(self.edge))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn config(path: &str, edge: PpsEdgeKind) -> PpsConfig {
        PpsConfig {
            device: PathBuf::from(path),
            edge,
            ..Default::default()
        }
    }

    #[test]
    fn missing_device_names_the_overlay() {
        let err = KernelPps::open(&config(
            "/dev/pps-skytime-test-missing",
            PpsEdgeKind::Assert,
        ))
        .expect_err("no such device");
        let msg = err.to_string();
        assert!(matches!(err, PpsError::NotFound { .. }), "{msg}");
        assert!(msg.contains("dtoverlay=pps-gpio"), "{msg}");
    }

    #[test]
    fn permission_denied_names_the_udev_rule_and_group() {
        let err = open_error(
            "/dev/pps0",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        let msg = err.to_string();
        assert!(
            msg.contains("90-skytime.rules") && msg.contains("group skytime"),
            "{msg}"
        );
    }

    #[test]
    fn a_non_pps_node_is_refused_with_a_clear_message() {
        // /dev/null exists and opens for anyone, but answers ENOTTY to PPS ioctls.
        let err = KernelPps::open(&config("/dev/null", PpsEdgeKind::Assert)).expect_err("not PPS");
        let msg = err.to_string();
        assert!(matches!(err, PpsError::Unsupported { .. }), "{msg}");
        assert!(
            msg.contains("PPS_GETCAP") && msg.contains("not an RFC 2783 PPS device"),
            "{msg}"
        );
    }

    #[test]
    fn capabilities_are_checked_per_edge() {
        let gpio = PPS_CAPTUREASSERT | PPS_OFFSETASSERT_BIT | PPS_CANWAIT | PPS_TSFMT_TSPEC;
        assert!(check_caps("p", gpio, PpsEdgeKind::Assert).is_ok());
        let err = check_caps("p", gpio, PpsEdgeKind::Clear).expect_err("no clear capture");
        assert!(err.to_string().contains("capture_clear"), "{err}");
        let err = check_caps("p", gpio & !PPS_CANWAIT, PpsEdgeKind::Assert).expect_err("no wait");
        assert!(err.to_string().contains("PPS_CANWAIT"), "{err}");
        assert!(check_caps("p", gpio | PPS_CAPTURECLEAR, PpsEdgeKind::Clear).is_ok());
    }
    const PPS_OFFSETASSERT_BIT: u32 = pps_time::pps::PPS_OFFSETASSERT;

    #[test]
    fn kernel_time_converts_to_unix_nanos() {
        let t = pps_ktime {
            sec: 1_700_000_000,
            nsec: 123_456_789,
            flags: 0,
        };
        assert_eq!(
            ktime_to_unix(&t),
            UnixNanos::from_secs_nanos(1_700_000_000, 123_456_789)
        );
    }
}
