//! `skytimectl`'s side of the control socket: find the daemon, send one
//! request line, read one response line.

use crate::ctl::protocol::{Request, Response};
use anyhow::{Context, Result, anyhow, bail};
use serde::de::DeserializeOwned;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `skytimectl` waits for the daemon to answer.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest response accepted (a status report is a few kB).
const MAX_RESPONSE_BYTES: u64 = 4 << 20;

/// A connection to a daemon's control socket.
pub struct Connection {
    stream: BufReader<UnixStream>,
    /// Which socket it is.
    pub path: PathBuf,
}

fn hint(path: &Path, e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::PermissionDenied => format!(
            "{}: permission denied (the socket is root:skytime 0660: run as a member of group skytime, e.g. `sudo usermod -aG skytime $USER` and log in again, or use sudo)",
            path.display()
        ),
        ErrorKind::NotFound => {
            format!("{}: no such socket (skytimed not running?)", path.display())
        }
        ErrorKind::ConnectionRefused => format!(
            "{}: connection refused (stale socket: skytimed not running)",
            path.display()
        ),
        _ => format!("{}: {e}", path.display()),
    }
}

impl Connection {
    /// Connects to the daemon's control socket at `path`.
    pub fn open(path: &Path) -> Result<Connection> {
        let stream = UnixStream::connect(path)
            .map_err(|e| anyhow!("cannot reach skytimed's control socket: {}", hint(path, &e)))?;
        stream
            .set_read_timeout(Some(RESPONSE_TIMEOUT))
            .context("cannot set a read timeout")?;
        stream
            .set_write_timeout(Some(RESPONSE_TIMEOUT))
            .context("cannot set a write timeout")?;
        Ok(Connection {
            stream: BufReader::new(stream),
            path: path.to_path_buf(),
        })
    }

    /// Sends `request` and returns the daemon's answer, or its refusal as an error.
    pub fn request<T: DeserializeOwned>(&mut self, request: &Request) -> Result<T> {
        let mut line = serde_json::to_string(request).context("cannot encode the request")?;
        line.push('\n');
        self.stream
            .get_mut()
            .write_all(line.as_bytes())
            .with_context(|| format!("cannot send to {}", self.path.display()))?;
        let mut reply = String::new();
        let n = (&mut self.stream)
            .take(MAX_RESPONSE_BYTES)
            .read_line(&mut reply)
            .map_err(|e| match e.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => anyhow!(
                    "skytimed did not answer on {} within {:?}",
                    self.path.display(),
                    RESPONSE_TIMEOUT
                ),
                _ => anyhow!("cannot read from {}: {e}", self.path.display()),
            })?;
        if n == 0 {
            bail!("skytimed closed {} without answering", self.path.display());
        }
        let response: Response<T> = serde_json::from_str(&reply).with_context(|| {
            format!(
                "unexpected answer from {} (a different skytimed version?)",
                self.path.display()
            )
        })?;
        match (response.ok, response.data) {
            (true, Some(data)) => Ok(data),
            _ => bail!(
                "skytimed refused: {}",
                response
                    .error
                    .unwrap_or_else(|| "no reason given".to_string())
            ),
        }
    }
}
