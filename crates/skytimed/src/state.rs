//! What the running daemon knows, shared read-only with the operator surfaces
//! (control socket, metrics, status page). Written by the discipline thread.

use arc_swap::ArcSwap;
use serde::Serialize;
use skytime_refclock::Status;
use skytime_timebase::UnixNanos;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// One second of history, for the status page's plot.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct HistoryPoint {
    /// When (disciplined clock).
    pub at: UnixNanos,
    /// Offset estimate, ns.
    pub offset_ns: f64,
    /// Jitter estimate, ns.
    pub jitter_ns: f64,
    /// Root dispersion, ns.
    pub root_dispersion_ns: f64,
    /// Temperature sensor reading in use, °C (None: no sensor, or faulty).
    pub temperature_c: Option<f64>,
    /// Whether the box was in holdover.
    pub holdover: bool,
}

/// How many seconds of history are kept: one hour.
pub const HISTORY_SECONDS: usize = 3600;

/// Addresses the daemon serves, logged at start-up and shown by `skytimectl`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Endpoints {
    /// NTP addresses.
    pub ntp: Vec<SocketAddr>,
    /// Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
    /// Status page.
    pub web: Option<SocketAddr>,
    /// Control socket.
    pub control_socket: Option<PathBuf>,
}

/// The daemon's shared state.
pub struct DaemonState {
    /// The latest refclock snapshot.
    pub status: ArcSwap<Status>,
    /// The last hour, one point per second.
    pub history: Mutex<VecDeque<HistoryPoint>>,
    /// Where everything is served.
    pub endpoints: OnceLock<Endpoints>,
    /// The NTP server (counters, busiest clients), once started.
    pub ntp: OnceLock<Arc<skytime_ntp::ServerHandle>>,
    /// Serial reader counters (sentences, checksum errors, reopens).
    pub gnss: OnceLock<Arc<skytime_gnss::GnssCounters>>,
    /// NTS counters and certificate, when NTS is on.
    pub nts: OnceLock<Arc<crate::nts::NtsStatus>>,
    /// Kernel PPS counters, when on real hardware.
    pub pps: OnceLock<Arc<skytime_pps::PpsCounters>>,
    /// True under `--simulate`.
    pub simulated: bool,
    /// When the daemon started (disciplined clock at the time).
    pub started: UnixNanos,
    /// The built-in alerts active now (see [`crate::alerts`]); written once a
    /// second by the surfaces' alert task.
    pub alerts: ArcSwap<crate::alerts::ActiveAlerts>,
}

impl DaemonState {
    /// Fresh state around the refclock's first snapshot.
    pub fn new(initial: Status, simulated: bool, started: UnixNanos) -> Self {
        Self {
            status: ArcSwap::from_pointee(initial),
            history: Mutex::new(VecDeque::with_capacity(HISTORY_SECONDS)),
            endpoints: OnceLock::new(),
            ntp: OnceLock::new(),
            gnss: OnceLock::new(),
            pps: OnceLock::new(),
            nts: OnceLock::new(),
            simulated,
            started,
            alerts: ArcSwap::from_pointee(crate::alerts::ActiveAlerts::default()),
        }
    }

    /// Appends a history point, dropping the oldest beyond an hour.
    pub fn record(&self, point: HistoryPoint) {
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        if h.len() == HISTORY_SECONDS {
            h.pop_front();
        }
        h.push_back(point);
    }

    /// A copy of the history, oldest first.
    pub fn history(&self) -> Vec<HistoryPoint> {
        self.history
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect()
    }
}
