//! NTS on the NTP path: authenticated replies with fresh cookies, NAKs for
//! refused cookies and authenticators, and the ordinary policy (rate limits,
//! interleaved mode) applied to NTS clients too.

use super::*;
use crate::packet::{HEADER_LEN, Header, mode};
use arc_swap::ArcSwap;
use skytime_nts::ef::client::{build_request, open_reply};
use skytime_nts::{COOKIE_LEN, CookieKey, CookieKeys, SessionKey, SessionKeys};

const T0: i64 = 1_750_000_000_000_000_000;
const UID: [u8; 32] = [0x42; 32];

fn synced() -> SystemState {
    SystemState {
        synchronised: true,
        stratum: 1,
        reference_id: *b"GPS\0",
        as_of: UnixNanos(T0),
        reference_time: UnixNanos(T0 - 500_000_000),
        ..SystemState::unsynchronised()
    }
}

fn ring(id: u32) -> SharedCookieKeys {
    Arc::new(ArcSwap::from_pointee(
        CookieKeys::new(vec![CookieKey {
            id,
            created_unix_s: 0,
            material: SessionKey::from_bytes([id.to_le_bytes()[0]; 32]),
        }])
        .expect("keys"),
    ))
}

fn session() -> SessionKeys {
    SessionKeys {
        c2s: SessionKey::from_bytes([0xc2; 32]),
        s2c: SessionKey::from_bytes([0x2c; 32]),
    }
}

fn nts_server(config: ServerConfig, keys: &SharedCookieKeys) -> Server {
    Server::new(&config, Arc::new(KeyStore::default()), -24).with_nts(keys.clone())
}

fn header(transmit: u64, origin: u64, receive: u64) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    Header {
        version: 4,
        mode: mode::CLIENT,
        poll: 6,
        origin_ts: NtpTimestamp(origin),
        receive_ts: NtpTimestamp(receive),
        transmit_ts: NtpTimestamp(transmit),
        ..Header::default()
    }
    .write(&mut out);
    out
}

fn nts_request(keys: &SharedCookieKeys, header: &[u8; HEADER_LEN], placeholders: usize) -> Vec<u8> {
    let mut cookie = [0u8; COOKIE_LEN];
    keys.load().seal(&session(), &[7; 16], &mut cookie);
    build_request(
        header,
        &UID,
        &cookie,
        placeholders,
        &session().c2s,
        &[9; 16],
    )
}

/// Handles and finishes one request; the action and the bytes sent.
fn exchange(s: &mut Server, req: &[u8], rx_ns: i64) -> (ServerAction, Vec<u8>) {
    let mut out = [0u8; 1024];
    let action = s.handle(
        req,
        "10.0.0.5".parse().expect("ip"),
        UnixNanos(rx_ns),
        MonoNanos(rx_ns),
        &synced(),
        &mut out,
    );
    match action {
        ServerAction::Reply(reply) => {
            s.finish(&reply, &mut out, UnixNanos(rx_ns + 3_000));
            s.record_transmit(&reply, UnixNanos(rx_ns + 5_000));
            (action, out[..reply.len].to_vec())
        }
        ServerAction::Drop(_) => (action, Vec::new()),
    }
}

fn outcome(action: ServerAction) -> Outcome {
    match action {
        ServerAction::Reply(r) => r.outcome,
        ServerAction::Drop(o) => o,
    }
}

#[test]
fn an_nts_request_gets_an_authenticated_reply_with_fresh_cookies() {
    let keys = ring(1);
    let mut s = nts_server(ServerConfig::default(), &keys);
    let req = nts_request(&keys, &header(0xabcd, 0, 0), 2);
    let (action, sent) = exchange(&mut s, &req, T0);
    assert_eq!(outcome(action), Outcome::NtsAuthenticated);
    assert_eq!(
        sent.len(),
        req.len(),
        "as long as the request, never longer"
    );
    let cookies = open_reply(&sent, &UID, &session().s2c).expect("authentic under S2C");
    assert_eq!(cookies.len(), 3, "the spent cookie plus two placeholders");
    for cookie in &cookies {
        assert_eq!(keys.load().open(cookie), Ok(session()));
    }
    let h = Header::parse(&sent).expect("header");
    assert_eq!(
        (h.mode, h.stratum, h.origin_ts),
        (mode::SERVER, 1, NtpTimestamp(0xabcd))
    );
    assert_eq!(
        h.transmit_ts,
        NtpTimestamp::from_unix(UnixNanos(T0 + 3_000)),
        "stamped before sealing"
    );
    // The transmit timestamp is authenticated: changing it breaks the reply.
    let mut tampered = sent.clone();
    tampered[47] ^= 1;
    assert!(open_reply(&tampered, &UID, &session().s2c).is_err());
}

#[test]
fn refused_cookies_and_forged_authenticators_get_an_ntsn_nak() {
    let keys = ring(1);
    let mut s = nts_server(ServerConfig::default(), &keys);
    let old_key_request = nts_request(&ring(9), &header(1, 0, 0), 0);
    let mut forged = nts_request(&keys, &header(2, 0, 0), 0);
    let last = forged.len() - 1;
    forged[last] ^= 0x80;
    let mut replayed = nts_request(&keys, &header(3, 0, 0), 0);
    replayed[40..48].copy_from_slice(&99u64.to_be_bytes()); // new transmit, old authenticator
    for req in [old_key_request, forged, replayed] {
        let (action, sent) = exchange(&mut s, &req, T0);
        assert_eq!(outcome(action), Outcome::NtsNak);
        let h = Header::parse(&sent).expect("header");
        assert_eq!((h.stratum, &h.reference_id, h.leap), (0, b"NTSN", 3));
        assert_eq!(sent.len(), HEADER_LEN + 4 + UID.len());
        assert_eq!(
            &sent[HEADER_LEN + 4..],
            &UID,
            "the Unique Identifier is echoed"
        );
        assert!(
            open_reply(&sent, &UID, &session().s2c).is_err(),
            "a NAK carries no authenticator"
        );
    }
    // Broken NTS fields are dropped, not answered.
    let mut truncated = nts_request(&keys, &header(4, 0, 0), 0);
    truncated.truncate(HEADER_LEN + 36 + 50);
    truncated.truncate(truncated.len() / 4 * 4);
    assert_eq!(
        outcome(exchange(&mut s, &truncated, T0).0),
        Outcome::Malformed
    );
}

#[test]
fn without_nts_configured_nts_fields_are_ignored_and_never_authenticated() {
    let keys = ring(1);
    let mut s = Server::new(&ServerConfig::default(), Arc::new(KeyStore::default()), -24);
    let req = nts_request(&keys, &header(5, 0, 0), 0);
    let (action, sent) = exchange(&mut s, &req, T0);
    assert_eq!(outcome(action), Outcome::Served);
    assert_eq!(sent.len(), HEADER_LEN);
}

#[test]
fn rate_limits_apply_to_nts_clients_before_any_crypto() {
    let keys = ring(1);
    let mut config = ServerConfig::default();
    config.ratelimit.interval_log2_s = 3;
    config.ratelimit.burst = 4;
    let mut s = nts_server(config, &keys);
    let outcomes: Vec<_> = (0..20)
        .map(|i| outcome(exchange(&mut s, &nts_request(&keys, &header(i + 1, 0, 0), 0), T0).0))
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Outcome::NtsAuthenticated)
            .count(),
        4
    );
    assert!(
        outcomes[4..]
            .iter()
            .all(|o| matches!(o, Outcome::RateLimitedKod | Outcome::RateLimitedDropped))
    );
}

#[test]
fn nts_clients_can_run_interleaved_mode() {
    let keys = ring(1);
    let mut s = nts_server(ServerConfig::default(), &keys);
    let rx1 = T0 + 1_000_000;
    let (_, first) = exchange(&mut s, &nts_request(&keys, &header(0xaaaa, 0, 0), 0), rx1);
    let t2 = Header::parse(&first).expect("header").receive_ts;
    let rx2 = T0 + 1_000_000_000;
    let (action, second) = exchange(
        &mut s,
        &nts_request(&keys, &header(0xbbbb, t2.0, 0xcccc), 0),
        rx2,
    );
    assert_eq!(outcome(action), Outcome::NtsAuthenticated);
    let h = Header::parse(&second).expect("header");
    assert_eq!(h.origin_ts, NtpTimestamp(0xcccc));
    assert_eq!(
        h.transmit_ts,
        NtpTimestamp::from_unix(UnixNanos(rx1 + 5_000)),
        "T3 of reply 1"
    );
    assert!(open_reply(&second, &UID, &session().s2c).is_ok());
}

#[test]
fn two_servers_sharing_cookie_keys_accept_each_others_cookies() {
    // The fleet property at the policy level: what one box's reply hands out,
    // the other box opens (the daemon-level test shares a key file).
    let keys = ring(3);
    let mut a = nts_server(ServerConfig::default(), &keys);
    let mut b = nts_server(ServerConfig::default(), &ring(3));
    let (_, from_a) = exchange(&mut a, &nts_request(&keys, &header(1, 0, 0), 0), T0);
    let cookie = open_reply(&from_a, &UID, &session().s2c)
        .expect("authentic")
        .remove(0);
    let req = build_request(&header(2, 0, 0), &UID, &cookie, 0, &session().c2s, &[1; 16]);
    let (action, from_b) = exchange(&mut b, &req, T0);
    assert_eq!(outcome(action), Outcome::NtsAuthenticated);
    assert!(open_reply(&from_b, &UID, &session().s2c).is_ok());
}

#[test]
fn the_client_table_tells_nts_clients_apart() {
    let keys = ring(1);
    let mut s = nts_server(ServerConfig::default(), &keys);
    exchange(&mut s, &nts_request(&keys, &header(1, 0, 0), 0), T0);
    let mut plain = [0u8; HEADER_LEN];
    plain.copy_from_slice(&header(2, 0, 0));
    let mut out = [0u8; 1024];
    s.handle(
        &plain,
        "10.0.0.6".parse().expect("ip"),
        UnixNanos(T0),
        MonoNanos(T0),
        &synced(),
        &mut out,
    );
    let mut busiest = [crate::ClientSummary {
        addr: "0.0.0.0".parse().expect("ip"),
        requests: 0,
        limited: 0,
        nts: 0,
        last_seen: MonoNanos(0),
    }; 4];
    let n = s.clients().busiest(&mut busiest);
    let nts_of = |ip: &str| {
        busiest[..n]
            .iter()
            .find(|c| c.addr.to_string() == ip)
            .map(|c| c.nts)
    };
    assert_eq!(nts_of("10.0.0.5"), Some(1));
    assert_eq!(nts_of("10.0.0.6"), Some(0));
}
