//! The NTS-KE listener against well-behaved and hostile clients on loopback:
//! a full session whose cookies carry the keys the client derived, wrong
//! ALPN, TLS 1.2, bad records, a slowloris, and a certificate swap.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use skytime_nts::ke_server::{self, KeLimits, KeStats};
use skytime_nts::record::{self, record_type};
use skytime_nts::tls::{self, CertStore, TlsError};
use skytime_nts::{CookieKey, CookieKeys, SharedCookieKeys};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Pki {
    dir: PathBuf,
    ca_der: CertificateDer<'static>,
    ca_key: KeyPair,
    ca_params: CertificateParams,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("skytime-nts-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca_key = KeyPair::generate().expect("key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        Pki {
            dir,
            ca_der: ca.der().clone(),
            ca_key,
            ca_params,
        }
    }

    /// Writes a server certificate and key for `localhost`; returns their paths.
    fn issue(&self, stem: &str) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("key");
        let params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("signs");
        let cert_path = self.dir.join(format!("{stem}.crt"));
        let key_path = self.dir.join(format!("{stem}.key"));
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }

    fn client_config(&self, alpn: &[&[u8]], tls12_only: bool) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        Arc::new(config)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Server {
    addr: std::net::SocketAddr,
    stats: Arc<KeStats>,
    keys: SharedCookieKeys,
    certs: Arc<CertStore>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start(cert: &Path, key: &Path, limits: KeLimits) -> Server {
    let certs = CertStore::open(cert, key).expect("loads");
    let keys: SharedCookieKeys = Arc::new(arc_swap::ArcSwap::from_pointee(
        CookieKeys::new(vec![CookieKey::generate(0).expect("random")]).expect("keys"),
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stats = Arc::new(KeStats::default());
    let task = tokio::spawn(ke_server::serve(
        listener,
        certs.clone(),
        keys.clone(),
        limits,
        stats.clone(),
    ));
    Server {
        addr,
        stats,
        keys,
        certs,
        task,
    }
}

fn request() -> Vec<u8> {
    let mut out = Vec::new();
    record::write_record(&mut out, true, record_type::NEXT_PROTOCOL, &[0, 0]);
    record::write_record(&mut out, true, record_type::AEAD_ALGORITHM, &[0, 15]);
    record::write_record(&mut out, true, record_type::END_OF_MESSAGE, &[]);
    out
}

type Client = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(server: &Server, config: Arc<rustls::ClientConfig>) -> std::io::Result<Client> {
    let tcp = TcpStream::connect(server.addr).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
}

async fn exchange(client: &mut Client, request: &[u8]) -> Vec<u8> {
    client.write_all(request).await.expect("write");
    let mut response = Vec::new();
    let _ = client.read_to_end(&mut response).await;
    response
}

#[tokio::test]
async fn a_session_hands_out_eight_cookies_sealing_the_exported_keys() {
    let pki = Pki::new("session");
    let (cert, key) = pki.issue("server");
    let server = start(
        &cert,
        &key,
        KeLimits {
            ntp_port: Some(11123),
            ..KeLimits::default()
        },
    )
    .await;
    let mut client = connect(&server, pki.client_config(&[b"ntske/1"], false))
        .await
        .expect("handshake");
    let expected = ke_server::client_session_keys(client.get_ref().1).expect("exporter");
    let response = exchange(&mut client, &request()).await;
    let records = record::split_records(&response).expect("complete response");
    let cookies: Vec<_> = records
        .iter()
        .filter(|r| r.kind == record_type::NEW_COOKIE)
        .collect();
    assert_eq!(cookies.len(), 8);
    for cookie in cookies {
        assert_eq!(server.keys.load().open(cookie.body), Ok(expected.clone()));
    }
    let port = records
        .iter()
        .find(|r| r.kind == record_type::NTPV4_PORT)
        .expect("port");
    assert_eq!(port.body, 11123u16.to_be_bytes());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.stats.sessions.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn wrong_alpn_and_tls12_fail_the_handshake() {
    let pki = Pki::new("handshake");
    let (cert, key) = pki.issue("server");
    let server = start(&cert, &key, KeLimits::default()).await;
    assert!(
        connect(&server, pki.client_config(&[b"http/1.1"], false))
            .await
            .is_err(),
        "wrong ALPN"
    );
    assert!(
        connect(&server, pki.client_config(&[b"ntske/1"], true))
            .await
            .is_err(),
        "TLS 1.2"
    );
    // No ALPN at all: the handshake may pass, but no record is answered.
    if let Ok(mut client) = connect(&server, pki.client_config(&[], false)).await {
        assert!(exchange(&mut client, &request()).await.is_empty());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.stats.failed_handshakes.load(Ordering::Relaxed), 3);
    assert_eq!(server.stats.sessions.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn bad_requests_get_an_error_record_and_truncated_ones_nothing() {
    let pki = Pki::new("records");
    let (cert, key) = pki.issue("server");
    let server = start(&cert, &key, KeLimits::default()).await;
    let config = pki.client_config(&[b"ntske/1"], false);
    let mut unknown = Vec::new();
    record::write_record(&mut unknown, true, record_type::NEXT_PROTOCOL, &[0, 0]);
    record::write_record(&mut unknown, true, 0x0777, &[1, 2]);
    record::write_record(&mut unknown, true, record_type::END_OF_MESSAGE, &[]);
    let mut oversized = Vec::new();
    record::write_record(&mut oversized, false, 0x0778, &[0; 4000]);
    for (bytes, code) in [(unknown, 0u16), (oversized, 1u16)] {
        let mut client = connect(&server, config.clone()).await.expect("handshake");
        let response = exchange(&mut client, &bytes).await;
        let records = record::split_records(&response).expect("complete");
        assert_eq!(records[0].kind, record_type::ERROR);
        assert_eq!(records[0].body, code.to_be_bytes());
    }
    let mut client = connect(&server, config.clone()).await.expect("handshake");
    client.write_all(&request()[..5]).await.expect("write");
    client.shutdown().await.expect("half-close");
    let mut response = Vec::new();
    let _ = client.read_to_end(&mut response).await;
    assert!(response.is_empty(), "a truncated request gets no answer");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.stats.error_responses.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_slowloris_is_cut_off_and_the_box_keeps_serving() {
    let pki = Pki::new("slowloris");
    let (cert, key) = pki.issue("server");
    let limits = KeLimits {
        max_connections: 4,
        timeout: Duration::from_millis(400),
        ntp_port: None,
    };
    let server = start(&cert, &key, limits).await;
    // Four connections that never speak hold every slot...
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    // ...so a fifth is closed at once rather than queued without bound...
    assert!(
        connect(&server, pki.client_config(&[b"ntske/1"], false))
            .await
            .is_err()
    );
    assert!(server.stats.refused_busy.load(Ordering::Relaxed) >= 1);
    // ...and once the deadline frees them, service resumes.
    tokio::time::sleep(Duration::from_millis(600)).await;
    for stream in &mut idle {
        let mut byte = [0u8; 1];
        assert_eq!(
            stream.read(&mut byte).await.unwrap_or(0),
            0,
            "closed by the server"
        );
    }
    assert_eq!(server.stats.timeouts.load(Ordering::Relaxed), 4);
    let mut client = connect(&server, pki.client_config(&[b"ntske/1"], false))
        .await
        .expect("handshake");
    assert!(record::split_records(&exchange(&mut client, &request()).await).is_some());
}

#[tokio::test]
async fn a_swapped_certificate_serves_the_next_handshake_and_a_bad_one_is_refused() {
    let pki = Pki::new("reload");
    let (cert, key) = pki.issue("server");
    let server = start(&cert, &key, KeLimits::default()).await;
    let config = pki.client_config(&[b"ntske/1"], false);
    let held = connect(&server, config.clone()).await.expect("handshake");
    let first = held.get_ref().1.peer_certificates().expect("cert")[0].clone();
    let (new_cert, new_key) = pki.issue("renewed");
    assert_eq!(server.certs.reload_if_changed().expect("unchanged"), None);
    std::fs::copy(&new_cert, &cert).expect("swap cert");
    std::fs::copy(&new_key, &key).expect("swap key");
    // What the daemon's 5 s poll does: the changed files are picked up.
    assert!(server.certs.reload_if_changed().expect("reloads").is_some());
    let mut fresh = connect(&server, config.clone()).await.expect("handshake");
    assert_ne!(
        fresh.get_ref().1.peer_certificates().expect("cert")[0],
        first
    );
    assert!(record::split_records(&exchange(&mut fresh, &request()).await).is_some());
    // The connection opened before the swap still completes.
    let mut held = held;
    assert!(record::split_records(&exchange(&mut held, &request()).await).is_some());
    // A key that does not fit the certificate is refused, the old pair kept.
    let (_, stray_key) = pki.issue("stray");
    assert!(matches!(
        tls::load(&cert, &stray_key),
        Err(TlsError::Mismatch { .. })
    ));
    std::fs::copy(&stray_key, &key).expect("break key");
    assert!(server.certs.reload().is_err());
    let mut after = connect(&server, config)
        .await
        .expect("old pair still served");
    assert!(record::split_records(&exchange(&mut after, &request()).await).is_some());
    assert!(server.certs.info().days_left(0) > 365);
}
