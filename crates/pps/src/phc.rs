//! A PTP hardware clock's external-timestamp input behind [`PpsSource`].
//!
//! The NIC (or PHY) latches its own counter on the pulse edge, so the
//! timestamp carries no interrupt latency. It is in PHC time, though: each
//! edge is mapped to CLOCK_REALTIME through [`PhcMapping`], fed by an offset
//! sample taken right after the event is read, and the mapping's error bound
//! travels with the edge as [`PpsEdge::uncertainty_ns`].

use crate::config::PpsConfig;
use crate::kernel::open_error;
use crate::phc_edges::{EdgeSelector, EdgeVerdict};
use crate::phc_ioctl::{self as ioctl, EXTTS_EVENT_BYTES, ExttsEvent, clock_time_ns};
use crate::phc_map::{MappingError, OffsetSample, PhcMapping};
use crate::source::{PpsEdge, PpsEdgeKind, PpsError, PpsSource};
use crate::tracker::PpsCounters;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use skytime_timebase::{HostClock, TimeSource, UnixNanos};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Offset samples kept for the rate fit (one per pulse: a 16 s baseline).
const MAPPING_SAMPLES: usize = 16;
/// What a PHC's rate may differ from the system clock's before two samples
/// measure it: a crystal's tolerance plus the kernel's own adjustment range.
const MAX_RATE_PPM: u32 = 1000;
/// PHC reads per PTP_SYS_OFFSET(_EXTENDED) call; the narrowest window wins.
const OFFSET_READS: u32 = 9;

const HINT_NOT_A_PHC: &str = "not a PTP hardware clock; point [pps] phc_device at /dev/ptpN \
(`ls /sys/class/ptp/*/clock_name` names them; `ethtool -T eth0` shows a NIC's PHC index)";

/// How the PHC is compared with the system clock, best first.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OffsetMethod {
    /// PTP_SYS_OFFSET_PRECISE: a hardware cross-timestamp (zero window).
    Precise,
    /// PTP_SYS_OFFSET_EXTENDED: system reads bracketing each PHC read in the driver.
    Extended,
    /// PTP_SYS_OFFSET: interleaved reads, the window includes the ioctl path.
    Plain,
}

impl OffsetMethod {
    /// The name status, metrics and the docs use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Precise => "precise",
            Self::Extended => "extended",
            Self::Plain => "plain",
        }
    }
}

/// A PHC external-timestamp channel opened for one edge kind.
#[derive(Debug)]
pub struct PhcPps {
    file: File,
    path: String,
    channel: u32,
    edge: PpsEdgeKind,
    method: OffsetMethod,
    mapping: PhcMapping,
    selector: EdgeSelector,
    sequence: u32,
    last_accepted_phc_ns: Option<i64>,
    counters: Arc<PpsCounters>,
}

impl PhcPps {
    /// Opens `config.phc_device`, checks the channel and pin against the
    /// clock's capabilities, routes the pin, enables the channel for the
    /// configured edge and takes a first offset sample.
    pub fn open(config: &PpsConfig) -> Result<Self, PpsError> {
        let path = config.phc_device.display().to_string();
        let file = File::options()
            .read(true)
            .write(true)
            .open(&config.phc_device)
            .map_err(|e| open_error(&path, e))?;
        let fd = file.as_raw_fd();

        // SAFETY: an all-zero ptp_clock_caps (plain integers) is valid.
        let mut caps: libc::ptp_clock_caps = unsafe { std::mem::zeroed() };
        // SAFETY: fd is open and ours; GETCAPS writes one ptp_clock_caps into `caps`.
        unsafe { ioctl::get_caps(fd, &mut caps) }
            .map_err(|e| not_phc_or_io(&path, "PTP_CLOCK_GETCAPS", e))?;
        check_caps(&path, &caps, config)?;

        if caps.n_pins > 0 {
            let pin = config.phc_pin.unwrap_or(config.phc_channel);
            // SAFETY: an all-zero ptp_pin_desc (integers and a char array) is valid.
            let mut desc: libc::ptp_pin_desc = unsafe { std::mem::zeroed() };
            desc.index = pin;
            desc.func = libc::PTP_PF_EXTTS;
            desc.chan = config.phc_channel;
            // SAFETY: PIN_SETFUNC reads a ptp_pin_desc from the valid `desc`.
            unsafe { ioctl::pin_setfunc(fd, &desc) }.map_err(|e| match e {
                Errno::EPERM | Errno::EACCES => PpsError::PermissionDenied {
                    path: path.clone(),
                    hint: "PTP_PIN_SETFUNC needs write access to the PHC: install systemd/90-skytime.rules (group skytime on /dev/ptp*)".into(),
                },
                Errno::EBUSY => PpsError::Unsupported {
                    path: path.clone(),
                    what: format!("pin {pin} is in use by another function or program (ptp4l/ts2phc?); free it or choose another [pps] phc_pin"),
                },
                other => PpsError::Unsupported {
                    path: path.clone(),
                    what: format!("PTP_PIN_SETFUNC pin {pin} → EXTTS channel {} failed ({other})", config.phc_channel),
                },
            })?;
        }

        enable_extts(&file, &path, config.phc_channel, config.edge)?;
        let method = choose_method(&file, caps.cross_timestamping != 0);
        tracing::info!(device = %path, channel = config.phc_channel, edge = edge_name(config.edge), method = ?method, "PHC external timestamps enabled");

        let mut pps = Self {
            file,
            path,
            channel: config.phc_channel,
            edge: config.edge,
            method,
            mapping: PhcMapping::new(MAPPING_SAMPLES, MAX_RATE_PPM),
            selector: EdgeSelector::new(config.edge),
            sequence: 0,
            last_accepted_phc_ns: None,
            counters: Arc::new(PpsCounters::default()),
        };
        pps.counters.phc.set_opened(&pps.path, method);
        pps.take_offset_sample()?;
        Ok(pps)
    }

    /// The loss and timeout counters, shared with metrics.
    pub fn counters(&self) -> Arc<PpsCounters> {
        Arc::clone(&self.counters)
    }

    /// Counts into `counters` from now on (a reopened device continuing the
    /// counts status and metrics already show), with this opening's method.
    #[must_use]
    pub fn counting_into(mut self, counters: Arc<PpsCounters>) -> Self {
        self.counters = counters;
        self.counters.phc.set_opened(&self.path, self.method);
        self
    }

    /// The comparison method in use.
    pub fn offset_method(&self) -> OffsetMethod {
        self.method
    }

    /// Compares the PHC with CLOCK_REALTIME once and feeds the mapping.
    fn take_offset_sample(&mut self) -> Result<(), PpsError> {
        let sample =
            read_offset(&self.file, self.method).map_err(|e| self.io_error("PTP_SYS_OFFSET", e))?;
        let Some(sample) = sample else {
            tracing::warn!(device = %self.path, "PHC offset read gave no usable window (system clock stepped?)");
            return Ok(());
        };
        if let Err(MappingError::Discontinuity { jump_ns, bound_ns }) = self.mapping.add(sample) {
            tracing::warn!(device = %self.path, jump_ns, bound_ns, "PHC-to-system mapping restarted (a clock was stepped)");
        }
        Ok(())
    }

    fn io_error(&self, which: &str, e: Errno) -> PpsError {
        match e {
            Errno::ENODEV | Errno::ENXIO | Errno::EIO => PpsError::Disconnected {
                path: self.path.clone(),
                reason: format!("{which}: {e} (device removed or its driver unloaded)"),
            },
            other => not_phc_or_io(&self.path, which, other),
        }
    }

    /// Turns one event into an edge, if it is the wanted edge on our channel.
    fn on_event(&mut self, event: ExttsEvent) -> Option<PpsEdge> {
        if event.channel != self.channel {
            return None;
        }
        let phc = &self.counters.phc;
        phc.events.fetch_add(1, Ordering::Relaxed);
        match self.selector.offer(event.phc_ns) {
            EdgeVerdict::Accept => {}
            EdgeVerdict::Restart => {
                tracing::info!(device = %self.path, "PHC pulse cadence lost; re-acquiring the edge");
                return None;
            }
            EdgeVerdict::OtherEdge => {
                phc.other_edge_dropped.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            EdgeVerdict::Provisional | EdgeVerdict::Stale => return None,
        }
        let mapped = self.mapping.map(event.phc_ns).ok()?;
        phc.set_mapping_uncertainty_ns(mapped.uncertainty_ns);
        // The mapping's rate is the system clock's against the PHC; status
        // says how fast the PHC runs (to first order, its negative).
        if let Some(system_vs_phc_ppb) = self.mapping.rate_ppb() {
            phc.set_fast_ppb(-system_vs_phc_ppb);
        }
        let step = self.last_accepted_phc_ns.map_or(1, |last| {
            ((event.phc_ns - last + 500_000_000) / 1_000_000_000).max(1)
        });
        if let Ok(missed) = u64::try_from(step - 1)
            && missed > 0
        {
            self.counters
                .missed_pulses
                .fetch_add(missed, Ordering::Relaxed);
            self.counters.sequence_gaps.fetch_add(1, Ordering::Relaxed);
        }
        self.last_accepted_phc_ns = Some(event.phc_ns);
        self.sequence = self
            .sequence
            .wrapping_add(u32::try_from(step).unwrap_or(u32::MAX));
        self.counters.edges.fetch_add(1, Ordering::Relaxed);
        Some(PpsEdge {
            sequence: self.sequence,
            timestamp: UnixNanos(mapped.sys_ns),
            received: HostClock.monotonic(),
            uncertainty_ns: u32::try_from(mapped.uncertainty_ns).unwrap_or(u32::MAX),
        })
    }
}

fn edge_name(edge: PpsEdgeKind) -> &'static str {
    match edge {
        PpsEdgeKind::Assert => "rising",
        PpsEdgeKind::Clear => "falling",
    }
}

/// The channel and pin must exist on this clock.
fn check_caps(path: &str, caps: &libc::ptp_clock_caps, config: &PpsConfig) -> Result<(), PpsError> {
    let channels = u32::try_from(caps.n_ext_ts).unwrap_or(0);
    if config.phc_channel >= channels {
        return Err(PpsError::Unsupported {
            path: path.to_string(),
            what: format!(
                "external-timestamp channel {} ([pps] phc_channel): this PHC has {channels} channel(s)",
                config.phc_channel
            ),
        });
    }
    let pins = u32::try_from(caps.n_pins).unwrap_or(0);
    if let Some(pin) = config.phc_pin
        && pin >= pins
    {
        return Err(PpsError::Unsupported {
            path: path.to_string(),
            what: format!("pin {pin} ([pps] phc_pin): this PHC has {pins} programmable pin(s)"),
        });
    }
    Ok(())
}

/// PTP_EXTTS_REQUEST2 with strict flags; without them where the driver
/// refuses strict checking (before 5.7, or flags it does not know); the old
/// request where the kernel predates the "2" ioctls.
fn enable_extts(file: &File, path: &str, channel: u32, edge: PpsEdgeKind) -> Result<(), PpsError> {
    let edge_flag = match edge {
        PpsEdgeKind::Assert => ioctl::PTP_RISING_EDGE,
        PpsEdgeKind::Clear => ioctl::PTP_FALLING_EDGE,
    };
    let request = |flags: libc::c_uint, v2: bool| -> Result<(), Errno> {
        // SAFETY: an all-zero ptp_extts_request (plain integers) is valid.
        let mut req: libc::ptp_extts_request = unsafe { std::mem::zeroed() };
        req.index = channel;
        req.flags = flags;
        // SAFETY: the request ioctls read one ptp_extts_request from the valid `req`.
        unsafe {
            if v2 {
                ioctl::extts_request2(file.as_raw_fd(), &req)
            } else {
                ioctl::extts_request(file.as_raw_fd(), &req)
            }
        }
        .map(drop)
    };
    let enable = ioctl::PTP_ENABLE_FEATURE | edge_flag;
    let result = request(enable | ioctl::PTP_STRICT_FLAGS, true)
        .or_else(|e| match e {
            Errno::EOPNOTSUPP | Errno::EINVAL => {
                tracing::info!(device = %path, "PHC driver refuses strict edge flags; enabling without them (it may stamp both edges, which are then told apart)");
                request(enable, true)
            }
            other => Err(other),
        })
        .or_else(|e| match e {
            Errno::ENOTTY => request(enable, false),
            other => Err(other),
        });
    result.map_err(|e| match e {
        Errno::EPERM | Errno::EACCES => PpsError::PermissionDenied {
            path: path.to_string(),
            hint: "enabling external timestamps needs write access to the PHC: install systemd/90-skytime.rules (group skytime on /dev/ptp*)".into(),
        },
        Errno::EBUSY => PpsError::Unsupported {
            path: path.to_string(),
            what: format!("external-timestamp channel {channel} is busy (ts2phc or another reader has it)"),
        },
        other => PpsError::Unsupported {
            path: path.to_string(),
            what: format!("PTP_EXTTS_REQUEST channel {channel} {} edge failed ({other})", edge_name(edge)),
        },
    })
}

/// PRECISE where the driver cross-timestamps, else EXTENDED if it answers,
/// else plain. Each is tried once here, so a driver that advertises but fails
/// one falls to the next.
fn choose_method(file: &File, cross_timestamping: bool) -> OffsetMethod {
    let candidates: &[OffsetMethod] = if cross_timestamping {
        &[OffsetMethod::Precise, OffsetMethod::Extended]
    } else {
        &[OffsetMethod::Extended]
    };
    candidates
        .iter()
        .copied()
        .find(|m| matches!(read_offset(file, *m), Ok(Some(_))))
        .unwrap_or(OffsetMethod::Plain)
}

/// One offset measurement by `method`; `Ok(None)` when no window was usable.
fn read_offset(file: &File, method: OffsetMethod) -> Result<Option<OffsetSample>, Errno> {
    let fd = file.as_raw_fd();
    let ns = |t: &libc::ptp_clock_time| clock_time_ns(t.sec, t.nsec);
    match method {
        OffsetMethod::Precise => {
            // SAFETY: an all-zero ptp_sys_offset_precise (plain integers) is valid.
            let mut p: libc::ptp_sys_offset_precise = unsafe { std::mem::zeroed() };
            // SAFETY: the ioctl writes one ptp_sys_offset_precise into the valid `p`.
            unsafe { ioctl::sys_offset_precise(fd, &mut p) }?;
            Ok(Some(OffsetSample::from_precise(
                ns(&p.device),
                ns(&p.sys_realtime),
            )))
        }
        OffsetMethod::Extended => {
            // SAFETY: an all-zero ptp_sys_offset_extended (integers; clockid 0 = CLOCK_REALTIME) is valid.
            let mut x: libc::ptp_sys_offset_extended = unsafe { std::mem::zeroed() };
            x.n_samples = OFFSET_READS;
            // SAFETY: the ioctl reads n_samples and writes the triples into the valid `x`.
            unsafe { ioctl::sys_offset_extended(fd, &mut x) }?;
            let triples: Vec<(i64, i64, i64)> =
                x.ts.iter()
                    .take(OFFSET_READS as usize)
                    .map(|t| (ns(&t[0]), ns(&t[1]), ns(&t[2])))
                    .collect();
            Ok(OffsetSample::from_extended(&triples))
        }
        OffsetMethod::Plain => {
            // SAFETY: an all-zero ptp_sys_offset (plain integers) is valid.
            let mut x: libc::ptp_sys_offset = unsafe { std::mem::zeroed() };
            x.n_samples = OFFSET_READS;
            // SAFETY: the ioctl reads n_samples and writes 2n+1 times into the valid `x`.
            unsafe { ioctl::sys_offset(fd, &mut x) }?;
            let ts: Vec<i64> =
                x.ts.iter()
                    .take(2 * OFFSET_READS as usize + 1)
                    .map(ns)
                    .collect();
            Ok(OffsetSample::from_interleaved(&ts))
        }
    }
}

/// ENOTTY/EINVAL from a PTP ioctl: the node is not a PHC.
fn not_phc_or_io(path: &str, which: &str, e: Errno) -> PpsError {
    match e {
        Errno::ENOTTY | Errno::EINVAL | Errno::ENOSYS => PpsError::Unsupported {
            path: path.to_string(),
            what: format!("{which} failed ({e}): {HINT_NOT_A_PHC}"),
        },
        other => PpsError::Io {
            path: path.to_string(),
            source: io::Error::from(other),
        },
    }
}

/// Whether `path` is a PTP hardware clock (answers PTP_CLOCK_GETCAPS), for
/// `--check-config`. `Err` carries the reason it is not, or why it could not be asked.
pub fn probe_phc(path: &std::path::Path) -> Result<(), PpsError> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|e| open_error(&shown, e))?;
    // SAFETY: an all-zero ptp_clock_caps (plain integers) is valid.
    let mut caps: libc::ptp_clock_caps = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open and ours; GETCAPS writes one ptp_clock_caps into `caps`.
    unsafe { ioctl::get_caps(file.as_raw_fd(), &mut caps) }
        .map_err(|e| not_phc_or_io(&shown, "PTP_CLOCK_GETCAPS", e))?;
    if caps.n_ext_ts < 1 {
        return Err(PpsError::Unsupported {
            path: shown,
            what: "this PHC has no external-timestamp channel".into(),
        });
    }
    Ok(())
}

impl PpsSource for PhcPps {
    fn fetch(&mut self, timeout: Duration) -> Result<Option<PpsEdge>, PpsError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.counters.timeouts.fetch_add(1, Ordering::Relaxed);
                return Ok(None);
            }
            let wait = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, wait) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    return Err(self.io_error("poll", e));
                }
            }
            let revents = fds[0].revents().unwrap_or(PollFlags::empty());
            if revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                return Err(PpsError::Disconnected {
                    path: self.path.clone(),
                    reason: format!(
                        "poll reported {revents:?} (device removed or its driver unloaded)"
                    ),
                });
            }
            let mut buf = [0u8; EXTTS_EVENT_BYTES * 8];
            let n = match self.file.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    let errno = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
                    return Err(self.io_error("read", errno));
                }
            };
            // The event is at most a poll wake-up old: sample now, and the
            // mapping interpolates from the previous second's sample.
            self.take_offset_sample()?;
            let mut found = None;
            for chunk in buf[..n].chunks_exact(EXTTS_EVENT_BYTES) {
                let record: &[u8; EXTTS_EVENT_BYTES] =
                    chunk.try_into().unwrap_or(&[0; EXTTS_EVENT_BYTES]);
                if let Some(edge) = self.on_event(ExttsEvent::decode(record)) {
                    found = Some(edge);
                }
            }
            if let Some(edge) = found {
                return Ok(Some(edge));
            }
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} channel {} ({}, PHC)",
            self.path,
            self.channel,
            edge_name(self.edge)
        )
    }
}

impl Drop for PhcPps {
    fn drop(&mut self) {
        // SAFETY: an all-zero ptp_extts_request (plain integers) is valid.
        let mut req: libc::ptp_extts_request = unsafe { std::mem::zeroed() };
        req.index = self.channel;
        // SAFETY: disables our channel (flags 0); reads the valid `req`. Best
        // effort: the device may already be gone.
        let _ = unsafe { ioctl::extts_request(self.file.as_raw_fd(), &req) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PpsSourceKind;
    use std::path::PathBuf;

    fn config(path: &str) -> PpsConfig {
        PpsConfig {
            source: PpsSourceKind::Phc,
            phc_device: PathBuf::from(path),
            ..Default::default()
        }
    }

    #[test]
    fn a_missing_phc_is_not_found() {
        let err = PhcPps::open(&config("/dev/ptp-skytime-test-missing")).expect_err("missing");
        assert!(matches!(err, PpsError::NotFound { .. }), "{err}");
    }

    #[test]
    fn a_non_phc_node_is_refused_with_a_clear_message() {
        let err = PhcPps::open(&config("/dev/null")).expect_err("not a PHC");
        let msg = err.to_string();
        assert!(matches!(err, PpsError::Unsupported { .. }), "{msg}");
        assert!(
            msg.contains("PTP_CLOCK_GETCAPS") && msg.contains("not a PTP hardware clock"),
            "{msg}"
        );
        assert!(probe_phc(std::path::Path::new("/dev/null")).is_err());
    }

    #[test]
    fn channel_and_pin_are_checked_against_the_caps() {
        // SAFETY: an all-zero ptp_clock_caps (plain integers) is valid.
        let mut caps: libc::ptp_clock_caps = unsafe { std::mem::zeroed() };
        caps.n_ext_ts = 2;
        caps.n_pins = 4;
        let mut c = config("/dev/ptp0");
        c.phc_channel = 1;
        c.phc_pin = Some(3);
        assert!(check_caps("p", &caps, &c).is_ok());
        c.phc_channel = 2;
        let err = check_caps("p", &caps, &c).expect_err("no channel 2");
        assert!(err.to_string().contains("2 channel(s)"), "{err}");
        c.phc_channel = 0;
        c.phc_pin = Some(4);
        let err = check_caps("p", &caps, &c).expect_err("no pin 4");
        assert!(err.to_string().contains("phc_pin"), "{err}");
    }
}
