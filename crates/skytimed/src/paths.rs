//! Where things live, so `skytimed` and `skytimectl` agree without options.

use std::path::{Path, PathBuf};

/// The packaged daemon's control socket (systemd `RuntimeDirectory=skytime`).
pub const SYSTEM_CONTROL_SOCKET: &str = "/run/skytime/skytimed.sock";

/// The control socket inside a state directory.
pub fn control_socket_in(state_dir: &Path) -> PathBuf {
    state_dir.join("skytimed.sock")
}
