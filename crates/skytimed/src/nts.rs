//! NTS in the daemon: the cookie key file, the certificate (reloaded on
//! SIGHUP and when its files change) and the NTS-KE listeners, bound before
//! the daemon reports ready and run on its tokio runtime.

use anyhow::{Context, Result};
use skytime_nts::ke_server::{self, KeLimits, KeStats};
use skytime_nts::keyring::{Keyring, KeyringChange};
use skytime_nts::tls::{CertStore, CertificateInfo};
use skytime_nts::{NtsConfig, SharedCookieKeys};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The cookie key file of a packaged daemon (systemd `StateDirectory=skytime`).
pub const DEFAULT_COOKIE_KEY_FILE: &str = "/var/lib/skytime/nts-cookie-keys";

/// The cookie key file inside a state directory (`--state-dir`, `--simulate`).
pub fn cookie_key_file_in(state_dir: &Path) -> PathBuf {
    state_dir.join("nts-cookie-keys")
}
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often the key file and certificate files are looked at.
const POLL: Duration = Duration::from_secs(5);

/// What the operator surfaces read about NTS.
pub struct NtsStatus {
    /// NTS-KE counters.
    pub ke: Arc<KeStats>,
    /// The served certificate.
    pub certs: Arc<CertStore>,
    /// Bound NTS-KE addresses.
    pub ke_addrs: Vec<SocketAddr>,
    /// The cookie key file in use.
    pub cookie_key_file: PathBuf,
}

impl NtsStatus {
    /// The served certificate's subject and expiry.
    pub fn certificate(&self) -> Arc<CertificateInfo> {
        self.certs.info()
    }
}

/// NTS, loaded and bound but not yet serving.
pub struct NtsSetup {
    keyring: Keyring,
    certs: Arc<CertStore>,
    listeners: Vec<std::net::TcpListener>,
    limits: KeLimits,
    /// For the surfaces.
    pub status: Arc<NtsStatus>,
}

fn unix_now_s() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Now, in whole seconds since the Unix epoch, signed as certificate ages
/// count them (0 before 1970; saturated past `i64::MAX`).
pub(crate) fn certificate_now_s() -> i64 {
    i64::try_from(unix_now_s()).unwrap_or(i64::MAX)
}

impl NtsSetup {
    /// Loads the certificate and cookie keys and binds NTS-KE; `None` when
    /// NTS is off. `ntp_port` is advertised to clients when not 123.
    pub fn prepare(config: &NtsConfig, ntp_port: Option<u16>) -> Result<Option<NtsSetup>> {
        let (Some(cert), Some(key)) = (&config.certificate, &config.private_key) else {
            return Ok(None);
        };
        let certs = CertStore::open(cert, key).context("NTS certificate")?;
        let cookie_key_file = config
            .cookie_key_file
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_COOKIE_KEY_FILE));
        let keyring = Keyring::open(
            &cookie_key_file,
            config.role(),
            config.rotation(),
            unix_now_s(),
        )
        .context("NTS cookie keys")?;
        let addrs = config.ke_addresses().map_err(anyhow::Error::msg)?;
        let mut listeners = Vec::new();
        let mut ke_addrs = Vec::new();
        for addr in addrs {
            let listener = std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on {addr} for NTS-KE"))?;
            listener
                .set_nonblocking(true)
                .context("cannot make the NTS-KE listener non-blocking")?;
            ke_addrs.push(listener.local_addr().unwrap_or(addr));
            listeners.push(listener);
        }
        let info = certs.info();
        tracing::info!(
            subject = %info.subject,
            days_left = info.days_left(certificate_now_s()),
            cookie_keys = %cookie_key_file.display(),
            role = ?config.role(),
            "NTS ready"
        );
        let status = Arc::new(NtsStatus {
            ke: Arc::new(KeStats::default()),
            certs: certs.clone(),
            ke_addrs,
            cookie_key_file,
        });
        Ok(Some(NtsSetup {
            keyring,
            certs,
            listeners,
            limits: KeLimits {
                max_connections: config.ke_max_connections,
                timeout: Duration::from_millis(config.ke_timeout_ms),
                ntp_port: ntp_port.filter(|&p| p != 123),
            },
            status,
        }))
    }

    /// The cookie keys, for the NTP workers.
    pub fn cookie_keys(&self) -> SharedCookieKeys {
        self.keyring.shared()
    }

    /// Starts the NTS-KE listeners and the key/certificate upkeep.
    pub fn start(self, runtime: &tokio::runtime::Runtime) -> Result<()> {
        let _guard = runtime.enter();
        let keys = self.keyring.shared();
        for listener in self.listeners {
            let listener = tokio::net::TcpListener::from_std(listener)
                .context("cannot register the NTS-KE listener")?;
            runtime.spawn(ke_server::serve(
                listener,
                self.certs.clone(),
                keys.clone(),
                self.limits.clone(),
                self.status.ke.clone(),
            ));
        }
        for addr in &self.status.ke_addrs {
            tracing::info!(%addr, "serving NTS-KE");
        }
        runtime.spawn(upkeep(self.keyring, self.certs));
        Ok(())
    }
}

/// Rotates or reloads cookie keys, and reloads the certificate when its files
/// change or on SIGHUP. One log line per change.
async fn upkeep(mut keyring: Keyring, certs: Arc<CertStore>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).ok();
    let mut poll = tokio::time::interval(POLL);
    loop {
        let forced = tokio::select! {
            _ = poll.tick() => false,
            _ = async {
                match hangup.as_mut() {
                    Some(h) => { h.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => true,
        };
        match keyring.tick(unix_now_s()) {
            Ok(Some(KeyringChange::Rotated(id))) => {
                tracing::info!(key_id = %format!("{id:08x}"), "NTS cookie key rotated")
            }
            Ok(Some(KeyringChange::Reloaded(id))) => {
                tracing::info!(key_id = %format!("{id:08x}"), "NTS cookie keys reloaded from the shared file")
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "NTS cookie keys unchanged"),
        }
        let reloaded = if forced {
            certs.reload().map(Some)
        } else {
            certs.reload_if_changed()
        };
        match reloaded {
            Ok(Some(info)) => tracing::info!(
                subject = %info.subject,
                days_left = info.days_left(certificate_now_s()),
                trigger = if forced { "SIGHUP" } else { "file change" },
                "NTS certificate reloaded"
            ),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "NTS certificate not reloaded; still serving the previous one")
            }
        }
    }
}
