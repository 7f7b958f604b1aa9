//! The control socket: a Unix stream socket answering one JSON line per
//! request line (see [`crate::ctl::protocol`]). Read-only, bounded request
//! size, idle and write timeouts, a cap on concurrent clients.
//!
//! The socket is created mode 0660 and given to `[control] group` when that
//! group exists (root:skytime on the appliance). A stale socket left by a
//! crash is replaced; a live daemon's socket is never stolen: it is connected
//! to first, and if something answers, start-up fails.

use crate::ctl::protocol::{
    DEFAULT_CLIENT_LIMIT, MAX_CLIENT_LIMIT, MAX_REQUEST_BYTES, PROTOCOL_VERSION, Pong, Request,
    Response,
};
use crate::ctl::report::ReportContext;
use anyhow::{Context, Result, bail};
use serde::Serialize;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Semaphore, watch};

/// Most clients served at once; more are told the daemon is busy.
pub const MAX_CONCURRENT_CLIENTS: usize = 16;
/// A connection that sends no complete request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// A response that cannot be written within this long closes the connection.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The bound socket file, removed on drop only if it is still the one bound
/// here (a successor daemon's socket is left alone).
#[derive(Debug)]
pub struct SocketFile {
    path: PathBuf,
    identity: (u64, u64),
}

impl SocketFile {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.identity
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the control socket at `path`: replaces a stale one, refuses a live
/// one or anything that is not a socket, then sets mode 0660 and `group`.
pub fn bind(
    path: &Path,
    group: Option<&str>,
) -> Result<(std::os::unix::net::UnixListener, SocketFile)> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the control socket's directory {}",
                dir.display()
            )
        })?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => bail!(
            "control socket {} exists and is not a socket; refusing to replace it (remove it or set [control] socket)",
            path.display()
        ),
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => bail!(
                "control socket {} is in use: another skytimed answers on it (stop it, or give this one another --state-dir or [control] socket)",
                path.display()
            ),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path).with_context(|| {
                    format!("cannot remove the stale control socket {}", path.display())
                })?;
                tracing::info!(path = %path.display(), "removed a stale control socket left by an earlier run");
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "control socket {} exists and cannot be checked",
                        path.display()
                    )
                });
            }
        },
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", path.display())),
    }
    let listener = std::os::unix::net::UnixListener::bind(path)
        .with_context(|| format!("cannot create the control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot set mode 0660 on {}", path.display()))?;
    if let Some(name) = group {
        match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => {
                if let Err(e) = nix::unistd::chown(path, None, Some(g.gid)) {
                    tracing::warn!(
                        path = %path.display(), group = name, error = %e,
                        "cannot give the control socket to its group; only the daemon's user can use skytimectl"
                    );
                }
            }
            Ok(None) => tracing::warn!(
                path = %path.display(), group = name,
                "control group does not exist; only the daemon's user and group can use skytimectl"
            ),
            Err(e) => tracing::warn!(group = name, error = %e, "cannot look up the control group"),
        }
    }
    let meta = std::fs::symlink_metadata(path)
        .with_context(|| format!("cannot inspect {}", path.display()))?;
    listener
        .set_nonblocking(true)
        .context("cannot make the control socket non-blocking")?;
    Ok((
        listener,
        SocketFile {
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
        },
    ))
}

fn line<T: Serialize>(response: &Response<T>) -> String {
    let mut text = serde_json::to_string(response)
        .unwrap_or_else(|e| format!(r#"{{"ok":false,"error":"cannot encode the response: {e}"}}"#));
    text.push('\n');
    text
}

/// The response line to one request line (without its newline).
pub fn answer(ctx: &ReportContext, request: &[u8]) -> String {
    let request: Request = match serde_json::from_slice(request) {
        Ok(r) => r,
        Err(e) => {
            return line(&Response::<()>::error(format!(
                "bad request ({e}); send one JSON object per line, e.g. {{\"command\":\"status\"}} (commands: ping, status, sources, clients)"
            )));
        }
    };
    match request {
        Request::Ping {} => line(&Response::ok(Pong {
            protocol: PROTOCOL_VERSION,
            version: env!("CARGO_PKG_VERSION").to_string(),
        })),
        Request::Status {} => line(&Response::ok(ctx.status())),
        Request::Sources {} => line(&Response::ok(ctx.sources())),
        Request::Clients { limit } => {
            let limit = limit.unwrap_or(DEFAULT_CLIENT_LIMIT).min(MAX_CLIENT_LIMIT);
            line(&Response::ok(ctx.clients(limit)))
        }
    }
}

/// Serves connections until `shutdown` turns true.
pub async fn serve(
    listener: tokio::net::UnixListener,
    ctx: Arc<ReportContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_CLIENTS));
    let mut accept_errors = 0u32;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                accept_errors = 0;
                stream
            }
            Err(e) => {
                accept_errors += 1;
                if accept_errors == 1 {
                    tracing::warn!(error = %e, "control socket: accept failed");
                }
                // Out of descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(permit) => {
                let ctx = Arc::clone(&ctx);
                tokio::spawn(async move {
                    connection(stream, &ctx).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let mut stream = stream;
                    let busy = line(&Response::<()>::error(format!(
                        "busy: {MAX_CONCURRENT_CLIENTS} control clients connected; try again"
                    )));
                    let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(busy.as_bytes()))
                        .await;
                });
            }
        }
    }
}

/// One client: request lines in, response lines out, until it hangs up,
/// idles, sends an over-long line, or stops reading.
async fn connection(stream: tokio::net::UnixStream, ctx: &ReportContext) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        let limit = (MAX_REQUEST_BYTES + 1) as u64;
        let read = tokio::time::timeout(
            IDLE_TIMEOUT,
            (&mut reader).take(limit).read_until(b'\n', &mut buf),
        )
        .await;
        let n = match read {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "control client read failed");
                return;
            }
            Err(_) => {
                let _ = write_line(&mut write, &line(&Response::<()>::error("idle timeout"))).await;
                return;
            }
        };
        if n == 0 {
            return;
        }
        // Without a newline: over-long (refused), or the end of the stream
        // (answered, then the connection ends).
        let complete = buf.last() == Some(&b'\n');
        if !complete && buf.len() > MAX_REQUEST_BYTES {
            let msg = format!("request longer than {MAX_REQUEST_BYTES} bytes");
            let _ = write_line(&mut write, &line(&Response::<()>::error(msg))).await;
            return;
        }
        let request = trim_line(&buf);
        if !request.is_empty() {
            let response = answer(ctx, request);
            if !write_line(&mut write, &response).await {
                return;
            }
        }
        if !complete {
            return;
        }
    }
}

fn trim_line(buf: &[u8]) -> &[u8] {
    let mut end = buf.len();
    while end > 0 && matches!(buf[end - 1], b'\n' | b'\r' | b' ' | b'\t') {
        end -= 1;
    }
    &buf[..end]
}

async fn write_line(write: &mut tokio::net::unix::OwnedWriteHalf, text: &str) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, write.write_all(text.as_bytes())).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::DaemonState;
    use skytime_timebase::{MonoNanos, UnixNanos};
    use std::io::{BufRead, Write};

    fn context() -> Arc<ReportContext> {
        let daemon = Arc::new(DaemonState::new(
            crate::fixtures::locked_status(),
            true,
            UnixNanos(0),
        ));
        Arc::new(ReportContext::new(
            daemon,
            MonoNanos(0),
            "/dev/ttyAMA0".into(),
            "/dev/pps0".into(),
        ))
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("skytimed-ctl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn answers_each_command_and_explains_bad_requests() {
        let ctx = context();
        let status: serde_json::Value =
            serde_json::from_str(&answer(&ctx, br#"{"command":"status"}"#)).unwrap_or_default();
        assert_eq!(status["ok"], true);
        assert_eq!(status["data"]["state"], "locked");
        assert_eq!(status["data"]["pps"]["reach"], 255);
        let sources: serde_json::Value =
            serde_json::from_str(&answer(&ctx, br#"{"command":"sources"}"#)).unwrap_or_default();
        assert_eq!(sources["data"]["sources"][0]["reach_octal"], "377");
        let clients: serde_json::Value =
            serde_json::from_str(&answer(&ctx, br#"{"command":"clients","limit":100000}"#))
                .unwrap_or_default();
        assert_eq!(clients["ok"], true);
        for bad in [&b"status"[..], br#"{"command":"settime"}"#, b"\xff\xfe"] {
            let r: serde_json::Value = serde_json::from_str(&answer(&ctx, bad)).unwrap_or_default();
            assert_eq!(r["ok"], false, "{r}");
            assert!(
                r["error"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("bad request"),
                "{r}"
            );
        }
    }

    #[test]
    fn serves_lines_limits_size_replaces_stale_sockets_and_never_steals_a_live_one() {
        let dir = scratch("serve");
        let path = dir.join("skytimed.sock");
        // A stale socket: bound, then its listener dropped without removing the file.
        drop(std::os::unix::net::UnixListener::bind({
            std::fs::create_dir_all(&dir).ok();
            &path
        }));
        assert!(path.exists());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let (listener, file) =
            bind(&path, None).unwrap_or_else(|e| panic!("bind over a stale socket: {e:#}"));
        let mode = std::fs::metadata(&path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0);
        assert_eq!(mode, 0o660);
        let (stop_tx, stop_rx) = watch::channel(false);
        let ctx = context();
        let server = {
            let _guard = runtime.enter();
            let listener =
                tokio::net::UnixListener::from_std(listener).unwrap_or_else(|e| panic!("{e}"));
            runtime.spawn(serve(listener, ctx, stop_rx))
        };
        let thread = std::thread::spawn(move || runtime.block_on(server));

        // A second daemon must not take the live socket over.
        let err = bind(&path, None)
            .map(|_| ())
            .expect_err("live socket stolen");
        assert!(
            format!("{err:#}").contains("another skytimed answers"),
            "{err:#}"
        );

        // Two requests on one connection, answered in order.
        let mut s =
            std::os::unix::net::UnixStream::connect(&path).unwrap_or_else(|e| panic!("{e}"));
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        s.write_all(b"{\"command\":\"ping\"}\n{\"command\":\"status\"}\n")
            .ok();
        let mut r = std::io::BufReader::new(s.try_clone().unwrap_or_else(|e| panic!("{e}")));
        let mut first = String::new();
        r.read_line(&mut first).ok();
        assert!(first.contains("\"protocol\":1"), "{first}");
        let mut second = String::new();
        r.read_line(&mut second).ok();
        assert!(second.contains("\"state\":\"locked\""), "{second}");

        // An over-long line is refused and the connection closed.
        let mut s2 =
            std::os::unix::net::UnixStream::connect(&path).unwrap_or_else(|e| panic!("{e}"));
        s2.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let _ = s2.write_all(&vec![b'x'; MAX_REQUEST_BYTES + 100]);
        let mut reply = String::new();
        std::io::BufReader::new(s2).read_line(&mut reply).ok();
        assert!(reply.contains("longer than 4096 bytes"), "{reply}");

        // Shutdown, then the socket file goes with its owner.
        let _ = stop_tx.send(true);
        let _ = thread.join();
        drop(file);
        assert!(!path.exists(), "socket file left behind");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_to_replace_a_file_that_is_not_a_socket() {
        let dir = scratch("notsock");
        std::fs::create_dir_all(&dir).ok();
        let path = dir.join("skytimed.sock");
        std::fs::write(&path, b"precious").ok();
        let err = bind(&path, None)
            .map(|_| ())
            .expect_err("replaced a regular file");
        assert!(format!("{err:#}").contains("is not a socket"), "{err:#}");
        assert_eq!(std::fs::read(&path).unwrap_or_default(), b"precious");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_group_leaves_a_working_socket() {
        let dir = scratch("group");
        let path = dir.join("s.sock");
        let (_l, file) =
            bind(&path, Some("skytime-no-such-group-xyz")).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(file.path().exists());
        drop(file);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
