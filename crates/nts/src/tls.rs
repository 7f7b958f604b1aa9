//! The NTS-KE server's certificate: loaded from PEM files, checked against its
//! key, and swapped live (SIGHUP or a file change) without dropping a
//! connection. TLS 1.3 only and ALPN `ntske/1`, as RFC 8915 §3 requires.

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// The ALPN protocol id of NTS-KE.
pub const ALPN_NTSKE: &[u8] = b"ntske/1";

/// Why a certificate and key pair cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file is missing, unreadable or holds nothing usable.
    #[error("{what} {}: {problem}", path.display())]
    File {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// The private key is not the certificate's, or of a kind rustls cannot use.
    #[error("private key {} does not fit certificate {}: {problem}", key.display(), cert.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        problem: String,
    },
    /// The certificate's validity could not be read.
    #[error("certificate {}: {problem}", path.display())]
    Unparsable {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
}

/// What operators need to know about the served certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The end-entity certificate's subject, for logs and the status page.
    pub subject: String,
    /// Its notAfter, Unix seconds.
    pub not_after_unix_s: i64,
}

impl CertificateInfo {
    /// Whole days until expiry at `now_unix_s` (negative once expired).
    pub fn days_left(&self, now_unix_s: i64) -> i64 {
        (self.not_after_unix_s - now_unix_s).div_euclid(86_400)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads the certificate chain and key, and checks that they belong together
/// (what `--check-config` runs).
pub fn load(cert: &Path, key: &Path) -> Result<(Arc<CertifiedKey>, CertificateInfo), TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| TlsError::File {
            what: "certificate",
            path: cert.to_owned(),
            problem: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::File {
            what: "certificate",
            path: cert.to_owned(),
            problem: "no CERTIFICATE block".into(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::File {
        what: "private key",
        path: key.to_owned(),
        problem: e.to_string(),
    })?;
    let mismatch = |problem: String| TlsError::Mismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        problem,
    };
    let signing = provider()
        .key_provider
        .load_private_key(private)
        .map_err(|e| mismatch(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| mismatch(e.to_string()))?;
    let info = certificate_info(&certified.cert[0]).map_err(|problem| TlsError::Unparsable {
        path: cert.to_owned(),
        problem,
    })?;
    Ok((Arc::new(certified), info))
}

fn certificate_info(der: &CertificateDer<'_>) -> Result<CertificateInfo, String> {
    let (_, parsed) =
        x509_parser::parse_x509_certificate(der.as_ref()).map_err(|e| e.to_string())?;
    Ok(CertificateInfo {
        subject: parsed.subject().to_string(),
        not_after_unix_s: parsed.validity().not_after.timestamp(),
    })
}

/// The certificate being served, swappable while connections run.
#[derive(Debug)]
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    served: ArcSwap<CertifiedKey>,
    info: ArcSwap<CertificateInfo>,
    seen_modified: std::sync::Mutex<(Option<SystemTime>, Option<SystemTime>)>,
}

impl CertStore {
    /// Loads the pair; fails if it cannot be served.
    pub fn open(cert: &Path, key: &Path) -> Result<Arc<CertStore>, TlsError> {
        let seen = (modified(cert), modified(key));
        let (certified, info) = load(cert, key)?;
        Ok(Arc::new(CertStore {
            cert_path: cert.to_owned(),
            key_path: key.to_owned(),
            served: ArcSwap::new(certified),
            info: ArcSwap::from_pointee(info),
            seen_modified: std::sync::Mutex::new(seen),
        }))
    }

    /// The served certificate's subject and expiry.
    pub fn info(&self) -> Arc<CertificateInfo> {
        self.info.load_full()
    }

    /// Loads the files again and serves the new pair from the next handshake
    /// on; on error the old pair stays in service.
    pub fn reload(&self) -> Result<Arc<CertificateInfo>, TlsError> {
        let seen = (modified(&self.cert_path), modified(&self.key_path));
        let (certified, info) = load(&self.cert_path, &self.key_path)?;
        self.served.store(certified);
        self.info.store(Arc::new(info));
        if let Ok(mut s) = self.seen_modified.lock() {
            *s = seen;
        }
        Ok(self.info())
    }

    /// Reloads if either file's modification time changed since the last
    /// load; `Ok(None)` when nothing changed.
    pub fn reload_if_changed(&self) -> Result<Option<Arc<CertificateInfo>>, TlsError> {
        let now = (modified(&self.cert_path), modified(&self.key_path));
        let changed = self.seen_modified.lock().map(|s| *s != now).unwrap_or(true);
        if !changed {
            return Ok(None);
        }
        match self.reload() {
            Ok(info) => Ok(Some(info)),
            Err(e) => {
                // Remember the broken state so the error is reported once,
                // not every poll; a later fix changes the mtime again.
                if let Ok(mut s) = self.seen_modified.lock() {
                    *s = now;
                }
                Err(e)
            }
        }
    }

    /// A rustls configuration that serves this store's current certificate.
    pub fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("the ring provider supports TLS 1.3")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.clone())));
        config.alpn_protocols = vec![ALPN_NTSKE.to_vec()];
        // NTS-KE is one exchange per connection: no resumption tickets.
        config.send_tls13_tickets = 0;
        Arc::new(config)
    }
}

#[derive(Debug)]
struct Resolver(Arc<CertStore>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.served.load_full())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
