//! Simulated instances: several `skytimed --simulate` of one user side by
//! side, each with its own ports and state directory, without any flag.
//!
//! Instance N (1 to [`MAX_INSTANCES`]) serves NTP on 127.0.0.1:12300+N-1, its
//! status page on 12380+N-1 and metrics on 12390+N-1, and keeps its drift file
//! and control socket in its own directory. A daemon holds an exclusive
//! `flock` on `DIR/lock` for as long as it runs, so a state directory is never
//! shared by two running daemons; the kernel drops the lock when the process
//! ends, however it ends, so a crash leaves nothing to clean up.

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

/// How many simulated instances one user may run at once (the port blocks
/// 12300-12309, 12380-12389 and 12390-12399 stay apart).
pub const MAX_INSTANCES: u32 = 10;

/// NTP port of simulated instance 1.
pub const FIRST_NTP_PORT: u16 = 12300;
/// Status page port of simulated instance 1.
pub const FIRST_WEB_PORT: u16 = 12380;
/// Prometheus port of simulated instance 1.
pub const FIRST_METRICS_PORT: u16 = 12390;

/// Name of the lock file inside a state directory.
pub const LOCK_FILE: &str = "lock";

/// Where simulated instance `number` lives: its directory and default ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceLayout {
    /// 1 to [`MAX_INSTANCES`].
    pub number: u32,
    /// Drift file, control socket and lock file.
    pub state_dir: PathBuf,
    /// NTP on loopback.
    pub ntp: SocketAddr,
    /// Status page on loopback.
    pub web: SocketAddr,
    /// Prometheus endpoint on loopback.
    pub metrics: SocketAddr,
}

/// The per-user directory that holds every simulated instance's state:
/// `$XDG_RUNTIME_DIR`, or the temp directory with the user id in the names.
fn runtime_base() -> (PathBuf, String) {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => (PathBuf::from(dir), "skytime-sim".to_string()),
        _ => (
            std::env::temp_dir(),
            format!("skytime-sim-{}", nix::unistd::getuid()),
        ),
    }
}

impl InstanceLayout {
    /// The layout of instance `number` (1-based); `None` past [`MAX_INSTANCES`].
    pub fn of(number: u32) -> Option<InstanceLayout> {
        if !(1..=MAX_INSTANCES).contains(&number) {
            return None;
        }
        let step = u16::try_from(number - 1).ok()?;
        let (base, name) = runtime_base();
        // Instance 1 keeps the directory every earlier release used.
        let state_dir = if number == 1 {
            base.join(name)
        } else {
            base.join(format!("{name}-{number}"))
        };
        let loopback = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        Some(InstanceLayout {
            number,
            state_dir,
            ntp: loopback(FIRST_NTP_PORT + step),
            web: loopback(FIRST_WEB_PORT + step),
            metrics: loopback(FIRST_METRICS_PORT + step),
        })
    }

    /// Every instance's layout, 1 first.
    pub fn all() -> impl Iterator<Item = InstanceLayout> {
        (1..=MAX_INSTANCES).filter_map(InstanceLayout::of)
    }

    /// The control socket of this instance.
    pub fn control_socket(&self) -> PathBuf {
        crate::paths::control_socket_in(&self.state_dir)
    }

    /// Which of this instance's ports something else holds now, as readable text.
    fn ports_in_use(&self) -> Vec<String> {
        let mut busy = Vec::new();
        if UdpSocket::bind(self.ntp).is_err() {
            busy.push(format!("NTP {}", self.ntp));
        }
        for (what, addr) in [("status page", self.web), ("metrics", self.metrics)] {
            if TcpListener::bind(addr).is_err() {
                busy.push(format!("{what} {addr}"));
            }
        }
        busy
    }
}

/// A state directory this process holds exclusively until it drops this.
#[derive(Debug)]
pub struct StateDirLock {
    _lock: Flock<File>,
    dir: PathBuf,
}

impl StateDirLock {
    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Why a state directory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another running skytimed holds it.
    #[error("state directory {} is in use by another running skytimed", dir.display())]
    InUse {
        /// The directory.
        dir: PathBuf,
    },
    /// It cannot be created or its lock file cannot be opened.
    #[error("cannot use state directory {}: {source}", dir.display())]
    Io {
        /// The directory.
        dir: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// Creates `dir` if needed and takes its lock without waiting.
pub fn lock_state_dir(dir: &Path) -> Result<StateDirLock, LockError> {
    let io = |source| LockError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .map_err(io)?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(StateDirLock {
            _lock: lock,
            dir: dir.to_path_buf(),
        }),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(LockError::InUse {
            dir: dir.to_path_buf(),
        }),
        Err((_, errno)) => Err(io(std::io::Error::from(errno))),
    }
}

/// A simulated instance this process now owns.
#[derive(Debug)]
pub struct ClaimedInstance {
    /// Its directory and ports.
    pub layout: InstanceLayout,
    /// Held while the daemon runs.
    pub lock: StateDirLock,
}

/// Takes simulated instance `wanted`, or the first free one: its state
/// directory unlocked and its ports free. `check_ports` is false when the
/// command line gives every port itself.
pub fn claim(wanted: Option<u32>, check_ports: bool) -> Result<ClaimedInstance> {
    let candidates: Vec<InstanceLayout> = match wanted {
        Some(n) => vec![InstanceLayout::of(n).with_context(|| {
            format!("instance {n} does not exist: choose 1 to {MAX_INSTANCES}")
        })?],
        None => InstanceLayout::all().collect(),
    };
    let mut skipped = Vec::new();
    for layout in candidates {
        let lock = match lock_state_dir(&layout.state_dir) {
            Ok(lock) => lock,
            Err(LockError::InUse { .. }) => {
                skipped.push(format!("instance {} is running", layout.number));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let busy = if check_ports {
            layout.ports_in_use()
        } else {
            Vec::new()
        };
        if busy.is_empty() {
            return Ok(ClaimedInstance { layout, lock });
        }
        skipped.push(format!(
            "instance {}: {} in use by another program",
            layout.number,
            busy.join(", ")
        ));
    }
    match wanted {
        Some(n) => bail!(
            "cannot start simulated instance {n}: {} (leave out --instance to take the next free one)",
            skipped.join("; ")
        ),
        None => bail!(
            "no free simulated instance ({}); stop one, or give --state-dir, --listen, --web-listen and --metrics-listen",
            skipped.join("; ")
        ),
    }
}

/// The simulated instances whose control socket answers now, with it.
pub fn running() -> Vec<(InstanceLayout, PathBuf)> {
    InstanceLayout::all()
        .filter_map(|layout| {
            let socket = layout.control_socket();
            std::os::unix::net::UnixStream::connect(&socket)
                .ok()
                .map(|_| (layout, socket))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ports_never_overlap() {
        let mut seen = std::collections::BTreeSet::new();
        for layout in InstanceLayout::all() {
            for port in [layout.ntp.port(), layout.web.port(), layout.metrics.port()] {
                assert!(seen.insert(port), "port {port} used twice");
            }
        }
        assert_eq!(seen.len(), 3 * MAX_INSTANCES as usize);
        let first = InstanceLayout::of(1).expect("instance 1");
        assert_eq!(first.ntp.to_string(), "127.0.0.1:12300");
        assert_eq!(first.web.to_string(), "127.0.0.1:12380");
        assert_eq!(first.metrics.to_string(), "127.0.0.1:12390");
        assert!(InstanceLayout::of(0).is_none());
        assert!(InstanceLayout::of(MAX_INSTANCES + 1).is_none());
    }

    #[test]
    fn instances_have_distinct_state_dirs() {
        let dirs: std::collections::BTreeSet<PathBuf> =
            InstanceLayout::all().map(|l| l.state_dir).collect();
        assert_eq!(dirs.len(), MAX_INSTANCES as usize);
    }

    #[test]
    fn a_locked_state_dir_is_refused_until_released() {
        let dir = std::env::temp_dir().join(format!("skytime-lock-test-{}", std::process::id()));
        let first = lock_state_dir(&dir).expect("first lock");
        assert_eq!(first.dir(), dir.as_path());
        match lock_state_dir(&dir) {
            Err(LockError::InUse { dir: d }) => assert_eq!(d, dir),
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        let again = lock_state_dir(&dir).expect("free again after drop");
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
