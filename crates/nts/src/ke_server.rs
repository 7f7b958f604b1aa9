//! The NTS-KE listener (RFC 8915 §4): TLS 1.3 over TCP, one request and one
//! response per connection. Bounded so a slow or hostile client cannot pin
//! the box: at most `max_connections` at once (more are closed at accept),
//! each with a deadline for the whole exchange and a cap on request bytes.

use crate::aead::{KEY_LEN, NONCE_LEN, SessionKey};
use crate::cookie::{COOKIE_LEN, SessionKeys};
use crate::keyring::SharedCookieKeys;
use crate::record::{self, AEAD_AES_SIV_CMAC_256, KeError, MAX_REQUEST_LEN, PROTOCOL_NTPV4};
use crate::tls::{ALPN_NTSKE, CertStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// The exporter label of RFC 8915 §5.1.
const EXPORTER_LABEL: &[u8] = b"EXPORTER-network-time-security";
/// Cookies handed out per session (RFC 8915 §4.1.6: eight lets a client
/// miss seven replies before it needs NTS-KE again).
pub const COOKIES_PER_SESSION: usize = 8;

/// Limits and what the response advertises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeLimits {
    /// Connections served at once; more are closed at accept.
    pub max_connections: usize,
    /// Deadline for the handshake, request and response together.
    pub timeout: Duration,
    /// NTP port to advertise when it is not 123.
    pub ntp_port: Option<u16>,
}

impl Default for KeLimits {
    fn default() -> Self {
        KeLimits {
            max_connections: 64,
            timeout: Duration::from_secs(5),
            ntp_port: None,
        }
    }
}

/// Counters for status and /metrics.
#[derive(Debug, Default)]
pub struct KeStats {
    /// Sessions that got keys and cookies.
    pub sessions: AtomicU64,
    /// Requests answered with an Error record.
    pub error_responses: AtomicU64,
    /// TLS handshakes that failed (wrong version, no ALPN match, garbage).
    pub failed_handshakes: AtomicU64,
    /// Connections closed at the deadline (slowloris, stalled clients).
    pub timeouts: AtomicU64,
    /// Connections closed at accept because `max_connections` were busy.
    pub refused_busy: AtomicU64,
}

/// How one connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    Session,
    ErrorSent(KeError),
    HandshakeFailed,
    WrongAlpn,
    Dropped,
}

/// Serves NTS-KE on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    certs: Arc<CertStore>,
    keys: SharedCookieKeys,
    limits: KeLimits,
    stats: Arc<KeStats>,
) {
    let acceptor = TlsAcceptor::from(certs.server_config());
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let limits = Arc::new(limits);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and the like: back off rather than spin.
                tracing::warn!(error = %e, "NTS-KE accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            stats.refused_busy.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let acceptor = acceptor.clone();
        let keys = keys.clone();
        let limits = limits.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let ending =
                tokio::time::timeout(limits.timeout, exchange(stream, &acceptor, &keys, &limits))
                    .await;
            let counter = match &ending {
                Ok(Ending::Session) => &stats.sessions,
                Ok(Ending::ErrorSent(_)) => &stats.error_responses,
                Ok(Ending::HandshakeFailed | Ending::WrongAlpn) => &stats.failed_handshakes,
                Ok(Ending::Dropped) => return,
                Err(_) => &stats.timeouts,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, ?ending, "NTS-KE connection closed");
        });
    }
}

async fn exchange(
    stream: tokio::net::TcpStream,
    acceptor: &TlsAcceptor,
    keys: &SharedCookieKeys,
    limits: &KeLimits,
) -> Ending {
    let _ = stream.set_nodelay(true);
    let Ok(mut tls) = acceptor.accept(stream).await else {
        return Ending::HandshakeFailed;
    };
    if tls.get_ref().1.alpn_protocol() != Some(ALPN_NTSKE) {
        // A client that offered no ALPN at all (one that offered others was
        // refused in the handshake).
        let _ = tls.shutdown().await;
        return Ending::WrongAlpn;
    }
    let mut request = Vec::with_capacity(256);
    let mut chunk = [0u8; 256];
    let decoded = loop {
        match record::decode_request(&request) {
            Ok(Some(req)) => break Ok(req),
            Err(e) => break Err(e),
            Ok(None) => {}
        }
        let room = (MAX_REQUEST_LEN - request.len()).min(chunk.len());
        match tls.read(&mut chunk[..room]).await {
            Ok(0) => break Err(KeError::Truncated),
            Ok(n) => request.extend_from_slice(&chunk[..n]),
            Err(_) => return Ending::Dropped,
        }
    };
    let response = match decoded {
        Ok(req) if req.negotiated() => match session_keys(tls.get_ref().1) {
            Some(session) => {
                let cookies = seal_cookies(keys, &session);
                let response =
                    record::success_response(&req, cookies.iter().map(|c| &c[..]), limits.ntp_port);
                let _ = tls.write_all(&response).await;
                let _ = tls.shutdown().await;
                return Ending::Session;
            }
            None => record::error_response(record::ErrorCode::InternalServerError),
        },
        Ok(req) => record::success_response(&req, std::iter::empty(), None),
        Err(KeError::Truncated) => return Ending::Dropped,
        Err(e) => {
            let response = record::error_response(e.code());
            let _ = tls.write_all(&response).await;
            let _ = tls.shutdown().await;
            return Ending::ErrorSent(e);
        }
    };
    let _ = tls.write_all(&response).await;
    let _ = tls.shutdown().await;
    Ending::Session
}

/// The C2S and S2C keys both ends derive from the TLS session (RFC 8915 §5.1).
pub fn server_session_keys(conn: &rustls::ServerConnection) -> Option<SessionKeys> {
    session_keys(conn)
}

fn session_keys(conn: &rustls::ServerConnection) -> Option<SessionKeys> {
    Some(SessionKeys {
        c2s: SessionKey::from_bytes(export(conn, 0)?),
        s2c: SessionKey::from_bytes(export(conn, 1)?),
    })
}

fn export(conn: &rustls::ServerConnection, direction: u8) -> Option<[u8; KEY_LEN]> {
    let protocol = PROTOCOL_NTPV4.to_be_bytes();
    let aead = AEAD_AES_SIV_CMAC_256.to_be_bytes();
    let context = [protocol[0], protocol[1], aead[0], aead[1], direction];
    conn.export_keying_material([0u8; KEY_LEN], EXPORTER_LABEL, Some(&context))
        .ok()
}

fn seal_cookies(keys: &SharedCookieKeys, session: &SessionKeys) -> Vec<[u8; COOKIE_LEN]> {
    let ring = keys.load();
    (0..COOKIES_PER_SESSION)
        .filter_map(|_| {
            let mut nonce = [0u8; NONCE_LEN];
            getrandom::fill(&mut nonce).ok()?;
            let mut cookie = [0u8; COOKIE_LEN];
            ring.seal(session, &nonce, &mut cookie);
            Some(cookie)
        })
        .collect()
}

/// Client-side key derivation, for tests and the benchmark: the keys a
/// client computes from its end of the same TLS session.
pub fn client_session_keys(conn: &rustls::ClientConnection) -> Option<SessionKeys> {
    let protocol = PROTOCOL_NTPV4.to_be_bytes();
    let aead = AEAD_AES_SIV_CMAC_256.to_be_bytes();
    let export = |direction: u8| {
        let context = [protocol[0], protocol[1], aead[0], aead[1], direction];
        conn.export_keying_material([0u8; KEY_LEN], EXPORTER_LABEL, Some(&context))
            .ok()
            .map(SessionKey::from_bytes)
    };
    Some(SessionKeys {
        c2s: export(0)?,
        s2c: export(1)?,
    })
}
