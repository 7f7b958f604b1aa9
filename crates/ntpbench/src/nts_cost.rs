//! What NTS costs, measured in one process on one core and printed (never
//! asserted): CPU µs per NTS reply beside a plain reply of the same server
//! policy in the same run, and NTS-KE handshakes per second of server CPU.

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use skytime_ntp::packet::{HEADER_LEN, Header, NtpTimestamp, mode};
use skytime_ntp::{KeyStore, Server, ServerAction, ServerConfig, SystemState};
use skytime_nts::ef::client::build_request;
use skytime_nts::ke_server::{self, COOKIES_PER_SESSION};
use skytime_nts::record::{self, record_type};
use skytime_nts::tls::CertStore;
use skytime_nts::{COOKIE_LEN, CookieKey, CookieKeys, SessionKey, SessionKeys};
use skytime_timebase::{LeapChange, MonoNanos, UnixNanos};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// CPU time of this thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

fn state(t0: i64) -> SystemState {
    SystemState {
        synchronised: true,
        leap: LeapChange::None,
        stratum: 1,
        reference_id: *b"GPS\0",
        root_delay_ns: 0.0,
        root_dispersion_ns: 1e3,
        dispersion_rate_ns_per_s: 10.0,
        as_of: UnixNanos(t0),
        reference_time: UnixNanos(t0),
    }
}

/// Runs the per-reply comparison and the handshake rate, and prints both.
pub fn run(requests: u64, handshakes: u32) -> Result<()> {
    let (plain_us, nts_us) = per_reply(requests)?;
    println!(
        "NTP reply CPU (policy + crypto, one core, same run): plain {plain_us:.3} µs, NTS {nts_us:.3} µs ({:.2}x)",
        nts_us / plain_us
    );
    let rate = handshakes_per_second(handshakes)?;
    println!(
        "NTS-KE: {rate:.0} handshakes/s of server CPU on one core (TLS 1.3, ECDSA P-256, 8 cookies each)"
    );
    Ok(())
}

fn per_reply(requests: u64) -> Result<(f64, f64)> {
    let keys = Arc::new(ArcSwap::from_pointee(
        CookieKeys::new(vec![
            CookieKey::generate(0).map_err(|e| anyhow::anyhow!("random: {e}"))?,
        ])
        .context("keys")?,
    ));
    let mut config = ServerConfig::default();
    config.ratelimit.enabled = false;
    let mut server =
        Server::new(&config, Arc::new(KeyStore::default()), -24).with_nts(keys.clone());
    let mut header = [0u8; HEADER_LEN];
    Header {
        version: 4,
        mode: mode::CLIENT,
        transmit_ts: NtpTimestamp(0x1234),
        ..Header::default()
    }
    .write(&mut header);
    let session = SessionKeys {
        c2s: SessionKey::from_bytes([1; 32]),
        s2c: SessionKey::from_bytes([2; 32]),
    };
    let mut cookie = [0u8; COOKIE_LEN];
    keys.load().seal(&session, &[3; 16], &mut cookie);
    // chrony's steady state: one cookie, no placeholder.
    let nts = build_request(&header, &[4; 32], &cookie, 0, &session.c2s, &[5; 16]);
    let plain = header.to_vec();
    let t0 = 1_750_000_000_000_000_000i64;
    let st = state(t0);
    let src: IpAddr = "192.168.1.2".parse().context("addr")?;
    let mut out = [0u8; 1024];
    let mut spent = [Duration::ZERO; 2];
    let block = (requests / 20).max(1);
    let mut i = 0i64;
    // Alternate blocks so frequency scaling and noise hit both alike.
    for round in 0..20 {
        for k in 0..2 {
            let kind = (k + round) % 2;
            let req = if kind == 0 { &plain } else { &nts };
            let start = thread_cpu();
            for _ in 0..block {
                i += 1;
                let rx = UnixNanos(t0 + i * 1_000);
                if let ServerAction::Reply(r) =
                    server.handle(req, src, rx, MonoNanos(i * 1_000), &st, &mut out)
                {
                    server.finish(&r, &mut out, UnixNanos(rx.0 + 500));
                    server.record_transmit(&r, UnixNanos(rx.0 + 900));
                }
            }
            spent[kind] += thread_cpu() - start;
        }
    }
    let per = |d: Duration| d.as_secs_f64() * 1e6 / (20 * block) as f64;
    Ok((per(spent[0]), per(spent[1])))
}

fn handshakes_per_second(handshakes: u32) -> Result<f64> {
    let dir = std::env::temp_dir().join(format!("ntpbench-nts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("temp dir")?;
    let key = rcgen::KeyPair::generate().context("key")?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .and_then(|p| p.self_signed(&key))
        .context("certificate")?;
    let (cert_file, key_file) = (dir.join("c.pem"), dir.join("k.pem"));
    std::fs::write(&cert_file, cert.pem()).context("write")?;
    std::fs::write(&key_file, key.serialize_pem()).context("write")?;
    let store = CertStore::open(&cert_file, &key_file);
    let _ = std::fs::remove_dir_all(&dir);
    let server_config = store.context("load certificate")?.server_config();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).context("root")?;
    let mut client_config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .context("TLS 1.3")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    client_config.alpn_protocols = vec![b"ntske/1".to_vec()];
    let client_config = Arc::new(client_config);
    let cookie_keys = CookieKeys::new(vec![
        CookieKey::generate(0).map_err(|e| anyhow::anyhow!("random: {e}"))?,
    ])
    .context("keys")?;
    let mut request = Vec::new();
    record::write_record(&mut request, true, record_type::NEXT_PROTOCOL, &[0, 0]);
    record::write_record(&mut request, true, record_type::AEAD_ALGORITHM, &[0, 15]);
    record::write_record(&mut request, true, record_type::END_OF_MESSAGE, &[]);
    let name = rustls::pki_types::ServerName::try_from("localhost").context("name")?;
    let mut server_time = Duration::ZERO;
    for _ in 0..handshakes {
        let mut client = rustls::ClientConnection::new(client_config.clone(), name.clone())?;
        let t = Instant::now();
        let mut server = rustls::ServerConnection::new(server_config.clone())?;
        server_time += t.elapsed();
        client.writer().write_all(&request)?;
        let mut response = Vec::new();
        let mut served = false;
        for _ in 0..10 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire)?;
            }
            let t = Instant::now();
            server.read_tls(&mut wire.as_slice())?;
            server.process_new_packets()?;
            let mut got = Vec::new();
            let _ = server.reader().read_to_end(&mut got);
            if !served && record::decode_request(&got).ok().flatten().is_some() {
                let keys = ke_server::server_session_keys(&server).context("exporter")?;
                let mut cookies = Vec::with_capacity(COOKIES_PER_SESSION);
                for n in 0..COOKIES_PER_SESSION {
                    let mut c = [0u8; COOKIE_LEN];
                    cookie_keys.seal(&keys, &[n.to_le_bytes()[0]; 16], &mut c);
                    cookies.push(c);
                }
                let req = record::decode_request(&got)
                    .ok()
                    .flatten()
                    .context("request")?;
                let body = record::success_response(&req, cookies.iter().map(|c| &c[..]), None);
                server.writer().write_all(&body)?;
                served = true;
            }
            let mut back = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut back)?;
            }
            server_time += t.elapsed();
            client.read_tls(&mut back.as_slice())?;
            client.process_new_packets()?;
            let _ = client.reader().read_to_end(&mut response);
            if record::split_records(&response).is_some() {
                break;
            }
        }
        anyhow::ensure!(
            record::split_records(&response).is_some(),
            "no NTS-KE response"
        );
    }
    Ok(f64::from(handshakes) / server_time.as_secs_f64())
}
