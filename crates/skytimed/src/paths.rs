//! Where things live, so `skytimed` and `skytimectl` agree without options.

use std::path::PathBuf;

/// The packaged daemon's control socket (systemd `RuntimeDirectory=skytime`).
pub const SYSTEM_CONTROL_SOCKET: &str = "/run/skytime/skytimed.sock";

/// State directory of a `--simulate` daemon: per user, so a developer's
/// simulated box never collides with a real one or another user's.
pub fn simulate_state_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("skytime-sim"),
        _ => std::env::temp_dir().join(format!("skytime-sim-{}", nix::unistd::getuid())),
    }
}

/// The control socket inside a state directory.
pub fn control_socket_in(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("skytimed.sock")
}

/// Sockets `skytimectl` tries, in order, when not told which: the system
/// daemon's, then this user's simulated one.
pub fn default_control_sockets() -> Vec<PathBuf> {
    vec![
        PathBuf::from(SYSTEM_CONTROL_SOCKET),
        control_socket_in(&simulate_state_dir()),
    ]
}
