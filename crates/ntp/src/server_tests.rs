//! Policy tests: every decision of [`Server::handle`] with explicit timestamps.

use super::*;
use crate::keys::{Key, MacAlgorithm};
use crate::packet::{HEADER_LEN, Header, NtpTimestamp, mode};
use proptest::prelude::*;

pub(super) const T0: i64 = 1_750_000_000_000_000_000;

/// A locked stratum-1 state; shared with the other server test modules.
pub(super) fn synced() -> SystemState {
    SystemState {
        synchronised: true,
        leap: LeapChange::None,
        stratum: 1,
        reference_id: *b"GPS\0",
        root_delay_ns: 0.0,
        root_dispersion_ns: 1_000.0,
        dispersion_rate_ns_per_s: 15.0,
        as_of: UnixNanos(T0),
        reference_time: UnixNanos(T0 - 500_000_000),
    }
}

fn keys() -> Arc<KeyStore> {
    Arc::new(
        KeyStore::from_keys(vec![
            Key::new(1, MacAlgorithm::Sha1, b"sha1-secret").expect("key"),
            Key::new(2, MacAlgorithm::Aes128Cmac, &[7u8; 16]).expect("key"),
            Key::new(3, MacAlgorithm::Md5, b"md5-secret").expect("key"),
        ])
        .expect("store"),
    )
}

fn server_with(config: ServerConfig) -> Server {
    Server::new(&config, keys(), -24)
}

fn server() -> Server {
    server_with(ServerConfig::default())
}

fn request(version: u8, transmit: u64) -> Vec<u8> {
    let h = Header {
        version,
        mode: mode::CLIENT,
        poll: 6,
        transmit_ts: NtpTimestamp(transmit),
        ..Header::default()
    };
    let mut p = vec![0u8; HEADER_LEN];
    h.write(&mut p);
    p
}

fn sign(mut p: Vec<u8>, key_id: u32) -> Vec<u8> {
    let store = keys();
    let key = store.get(key_id).expect("test key");
    let mut d = [0u8; MAX_DIGEST_LEN];
    let n = key.compute(&p, &mut d);
    p.extend_from_slice(&key_id.to_be_bytes());
    p.extend_from_slice(&d[..n]);
    p
}

const LAN: &str = "192.168.1.20";
const WAN: &str = "203.0.113.9";

fn src(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

struct Exchange {
    action: ServerAction,
    out: [u8; MIN_OUT_LEN],
}

impl Exchange {
    fn reply(&self) -> Reply {
        match self.action {
            ServerAction::Reply(r) => r,
            ServerAction::Drop(o) => panic!("expected a reply, got drop {o:?}"),
        }
    }
    fn header(&self) -> Header {
        Header::parse(&self.out).expect("header")
    }
}

fn ask(s: &mut Server, req: &[u8], from: &str, rx_ns: i64, state: &SystemState) -> Exchange {
    let mut out = [0u8; MIN_OUT_LEN];
    let action = s.handle(
        req,
        src(from),
        UnixNanos(rx_ns),
        MonoNanos(rx_ns),
        state,
        &mut out,
    );
    Exchange { action, out }
}

#[test]
fn basic_reply_carries_every_field() {
    let mut s = server();
    let req = request(4, 0xdead_beef_0000_0001);
    let rx = T0 + 2_000_000_000;
    let mut ex = ask(&mut s, &req, LAN, rx, &synced());
    let r = ex.reply();
    assert_eq!((r.len, r.outcome), (HEADER_LEN, Outcome::Served));
    let tx = s.finish(&r, &mut ex.out, UnixNanos(rx + 3_000));
    let h = ex.header();
    assert_eq!(
        (h.leap, h.version, h.mode, h.stratum, h.poll, h.precision),
        (0, 4, 4, 1, 6, -24)
    );
    assert_eq!(&h.reference_id, b"GPS\0");
    assert_eq!(h.root_delay.0, 0);
    // 1000 ns + 15 ns/s * 2 s = 1030 ns, rounded up to 16.16 units.
    assert_eq!(h.root_dispersion, NtpShort::from_nanos_ceil(1_030.0));
    assert_eq!(h.origin_ts, NtpTimestamp(0xdead_beef_0000_0001));
    assert_eq!(h.receive_ts, NtpTimestamp::from_unix(UnixNanos(rx)));
    assert_eq!(h.transmit_ts, tx);
    assert_eq!(
        h.transmit_ts,
        NtpTimestamp::from_unix(UnixNanos(rx + 3_000))
    );
    assert_eq!(
        h.reference_ts,
        NtpTimestamp::from_unix(UnixNanos(T0 - 500_000_000))
    );
}

#[test]
fn every_version_from_1_to_4_is_answered_in_kind() {
    let mut s = server();
    for v in 1..=4 {
        let ex = ask(&mut s, &request(v, 1), LAN, T0, &synced());
        assert_eq!(ex.reply().outcome, Outcome::Served);
        assert_eq!(ex.header().version, v);
    }
}

#[test]
fn ntpv1_requests_without_a_mode_are_client_requests() {
    let mut s = server();
    let mut p = request(1, 5);
    p[0] &= !7;
    let ex = ask(&mut s, &p, LAN, T0, &synced());
    assert_eq!(ex.reply().outcome, Outcome::Served);
    assert_eq!((ex.header().version, ex.header().mode), (1, 4));
    // Mode 0 is only that in version 1.
    let mut p = request(4, 5);
    p[0] &= !7;
    assert_eq!(
        ask(&mut s, &p, LAN, T0, &synced()).action,
        ServerAction::Drop(Outcome::DroppedMode)
    );
}

#[test]
fn unsynchronised_and_leap_states_are_served_honestly() {
    let mut s = server();
    let mut st = synced();
    st.leap = LeapChange::Insert;
    assert_eq!(ask(&mut s, &request(4, 1), LAN, T0, &st).header().leap, 1);
    st.leap = LeapChange::Delete;
    assert_eq!(ask(&mut s, &request(4, 1), LAN, T0, &st).header().leap, 2);
    st.synchronised = false;
    let h = ask(&mut s, &request(4, 1), LAN, T0, &st).header();
    assert_eq!((h.leap, h.stratum), (3, 16));
    // A "synchronised" state with a nonsense stratum is not trusted.
    let mut bogus = synced();
    bogus.stratum = 0;
    let h = ask(&mut s, &request(4, 1), LAN, T0, &bogus).header();
    assert_eq!((h.leap, h.stratum), (3, 16));
    let h = ask(
        &mut s,
        &request(4, 1),
        LAN,
        T0,
        &SystemState::unsynchronised(),
    )
    .header();
    assert_eq!((h.leap, h.stratum), (3, 16));
}

#[test]
fn hostile_packets_are_dropped_and_counted() {
    let mut s = server();
    let st = synced();
    let drop = |s: &mut Server, p: &[u8]| match ask(s, p, LAN, T0, &st).action {
        ServerAction::Drop(o) => o,
        ServerAction::Reply(r) => panic!("replied to hostile packet: {r:?}"),
    };
    assert_eq!(drop(&mut s, &[]), Outcome::Malformed);
    assert_eq!(drop(&mut s, &request(4, 1)[..47]), Outcome::Malformed);
    assert_eq!(drop(&mut s, &request(0, 1)), Outcome::BadVersion);
    assert_eq!(drop(&mut s, &request(5, 1)), Outcome::BadVersion);
    assert_eq!(drop(&mut s, &request(7, 1)), Outcome::BadVersion);
    for m in [0, 2, 4, 5, 6, 7] {
        let mut p = request(4, 1);
        p[0] = (p[0] & !7) | m;
        assert_eq!(drop(&mut s, &p), Outcome::DroppedMode, "mode {m}");
    }
    // Long garbage after the header, and a garbage extension field.
    let mut long = request(4, 1);
    long.extend_from_slice(&[0x55; 900]);
    assert_eq!(drop(&mut s, &long), Outcome::Malformed);
    let mut ef = request(4, 1);
    ef.extend_from_slice(&[0x01, 0x02, 0xff, 0xf0]);
    ef.extend_from_slice(&[0u8; 28]);
    assert_eq!(drop(&mut s, &ef), Outcome::Malformed);
    // A request carrying a crypto-NAK makes no sense.
    let mut nak = request(4, 1);
    nak.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(drop(&mut s, &nak), Outcome::Malformed);
}

#[test]
fn valid_extension_fields_are_skipped_and_never_echoed() {
    let mut s = server();
    let mut p = request(4, 1);
    p.extend_from_slice(&[0x01, 0x04, 0x00, 0x20]);
    p.extend_from_slice(&[0xab; 28]);
    let ex = ask(&mut s, &p, LAN, T0, &synced());
    assert_eq!(ex.reply().len, HEADER_LEN);
}

#[test]
fn denied_clients_get_deny_kod_or_silence() {
    let mut s = server();
    let req = request(4, 0x1111);
    let ex = ask(&mut s, &req, WAN, T0, &synced());
    let r = ex.reply();
    assert_eq!(
        (r.outcome, r.len, r.rx_key),
        (Outcome::DeniedKod, HEADER_LEN, None)
    );
    let h = ex.header();
    assert_eq!((h.leap, h.stratum, &h.reference_id), (3, 0, b"DENY"));
    assert_eq!(h.origin_ts, NtpTimestamp(0x1111));
    assert_eq!(
        (h.receive_ts, h.transmit_ts),
        (NtpTimestamp::ZERO, NtpTimestamp::ZERO)
    );

    let mut quiet = server_with(ServerConfig {
        deny_action: DenyAction::Ignore,
        ..ServerConfig::default()
    });
    assert_eq!(
        ask(&mut quiet, &req, WAN, T0, &synced()).action,
        ServerAction::Drop(Outcome::DeniedIgnored)
    );
}

#[test]
fn rate_limit_sends_rate_kod_with_leak_and_drops_the_rest() {
    let mut config = ServerConfig::default();
    config.ratelimit.interval_log2_s = 3;
    config.ratelimit.burst = 4;
    config.ratelimit.leak = 2;
    let mut s = server_with(config);
    let st = synced();
    let mut served = 0;
    let mut kods = 0;
    let mut dropped = 0;
    for i in 0..404 {
        let ex = ask(&mut s, &request(4, i + 1), LAN, T0, &st);
        match ex.action {
            ServerAction::Reply(r) if r.outcome == Outcome::Served => served += 1,
            ServerAction::Reply(r) => {
                assert_eq!(r.outcome, Outcome::RateLimitedKod);
                assert_eq!(&ex.header().reference_id, b"RATE");
                assert_eq!(ex.header().stratum, 0);
                kods += 1;
            }
            ServerAction::Drop(o) => {
                assert_eq!(o, Outcome::RateLimitedDropped);
                dropped += 1;
            }
        }
    }
    assert_eq!(served, 4);
    // One in four over-limit requests gets a KoD (random, so a loose band).
    assert!((50..=150).contains(&kods), "kods {kods}");
    assert_eq!(kods + dropped, 400);
    // Another client is unaffected.
    assert_eq!(
        ask(&mut s, &request(4, 9), "192.168.1.21", T0, &st)
            .reply()
            .outcome,
        Outcome::Served
    );
}

#[test]
fn the_box_itself_is_never_rate_limited_but_other_loopback_clients_are() {
    let mut config = ServerConfig::default();
    config.ratelimit.interval_log2_s = 3;
    config.ratelimit.burst = 2;
    config.ratelimit.leak = 0;
    let mut s = server_with(config);
    let st = synced();
    for source in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
        for i in 0..50 {
            assert_eq!(
                ask(&mut s, &request(4, i + 1), source, T0, &st)
                    .reply()
                    .outcome,
                Outcome::Served,
                "request {i} from {source}"
            );
        }
    }
    let outcomes: Vec<Outcome> = (0..3)
        .map(|i| {
            ask(&mut s, &request(4, i + 1), "127.0.0.2", T0, &st)
                .reply()
                .outcome
        })
        .collect();
    assert_eq!(
        outcomes,
        [Outcome::Served, Outcome::Served, Outcome::RateLimitedKod]
    );
}

#[test]
fn default_limit_lets_a_busy_nat_through_and_stops_a_flood() {
    let mut s = server_with(ServerConfig::default());
    let st = synced();
    // 100 clients behind one address, booting within a minute of each
    // other: each sends iburst's 4 requests 2 s apart, then one every 64 s.
    let mut arrivals: Vec<i64> = Vec::new();
    for client in 0..100i64 {
        let start = client * 600_000_000;
        arrivals.extend((0..4).map(|k| start + k * 2_000_000_000));
        arrivals.extend((1..20).map(|k| start + 6_000_000_000 + k * 64_000_000_000));
    }
    arrivals.sort_unstable();
    let mut limited = 0;
    for (i, at) in arrivals.iter().enumerate() {
        let ex = ask(
            &mut s,
            &request(4, u64::try_from(i).expect("non-negative") + 1),
            LAN,
            T0 + at,
            &st,
        );
        if !matches!(ex.action, ServerAction::Reply(r) if r.outcome == Outcome::Served) {
            limited += 1;
        }
    }
    assert_eq!(limited, 0, "of {} NAT requests", arrivals.len());
    // A flood from one address: 10 000 requests in one second.
    let mut served = 0;
    for i in 0..10_000i64 {
        let at = T0 + 10_000_000_000_000 + i * 100_000;
        let ex = ask(
            &mut s,
            &request(4, u64::try_from(i).expect("non-negative") + 1),
            "192.168.1.99",
            at,
            &st,
        );
        if matches!(ex.action, ServerAction::Reply(r) if r.outcome == Outcome::Served) {
            served += 1;
        }
    }
    assert!(served <= 255 + 8 + 1, "flood answered {served} times");
}

#[test]
fn authenticated_requests_get_macd_replies_for_each_algorithm() {
    let mut s = server();
    for key_id in [1u32, 2, 3] {
        let req = sign(request(4, 42), key_id);
        let mut ex = ask(&mut s, &req, LAN, T0, &synced());
        let r = ex.reply();
        assert_eq!(r.outcome, Outcome::Authenticated);
        assert_eq!(r.len, req.len(), "reply the same size as the request");
        s.finish(&r, &mut ex.out, UnixNanos(T0 + 1_000));
        let reply = &ex.out[..r.len];
        let key = keys().get(key_id).cloned().expect("key");
        let mac = parse_framing(reply).expect("framing").mac.expect("mac");
        assert_eq!(mac.key_id, key_id);
        assert!(key.verify(&reply[..mac.offset], mac.digest), "key {key_id}");
    }
}

#[test]
fn bad_macs_get_crypto_nak_or_silence() {
    let mut s = server();
    let mut req = sign(request(4, 42), 1);
    let last = req.len() - 1;
    req[last] ^= 0x80;
    let ex = ask(&mut s, &req, LAN, T0, &synced());
    let r = ex.reply();
    assert_eq!((r.outcome, r.len), (Outcome::CryptoNak, HEADER_LEN + 4));
    assert_eq!(&ex.out[HEADER_LEN..HEADER_LEN + 4], &[0, 0, 0, 0]);
    // Unknown key id.
    let mut unknown = request(4, 42);
    unknown.extend_from_slice(&99u32.to_be_bytes());
    unknown.extend_from_slice(&[0u8; 20]);
    assert_eq!(
        ask(&mut s, &unknown, LAN, T0, &synced()).reply().outcome,
        Outcome::CryptoNak
    );
    // Right key id, wrong digest length (an MD5-sized MAC for a SHA1 key).
    let mut short = request(4, 42);
    short.extend_from_slice(&1u32.to_be_bytes());
    short.extend_from_slice(&[0u8; 16]);
    assert_eq!(
        ask(&mut s, &short, LAN, T0, &synced()).reply().outcome,
        Outcome::CryptoNak
    );

    let mut quiet = server_with(ServerConfig {
        auth_failure_action: AuthFailureAction::Ignore,
        ..ServerConfig::default()
    });
    assert_eq!(
        ask(&mut quiet, &req, LAN, T0, &synced()).action,
        ServerAction::Drop(Outcome::AuthFailedIgnored)
    );
}

#[test]
fn interleaved_exchange_serves_the_previous_transmit_time() {
    // The draft-ietf-ntp-interleaved-modes exchange, as a chrony xleave client runs it.
    let mut s = server();
    let st = synced();
    // Request 1: basic form (origin zero).
    let rx1 = T0 + 1_000_000;
    let mut ex1 = ask(&mut s, &request(4, 0xaaaa), LAN, rx1, &st);
    let r1 = ex1.reply();
    assert!(!r1.wants_kernel_tx);
    s.finish(&r1, &mut ex1.out, UnixNanos(rx1 + 2_000));
    s.record_transmit(&r1, UnixNanos(rx1 + 5_000));
    // The kernel's transmit timestamp arrives and refines the saved one.
    let t2_1 = ex1.header().receive_ts;
    assert!(s.refine_transmit(t2_1, UnixNanos(rx1 + 4_321)));

    // Request 2: origin = our previous receive timestamp, receive = the client's T4.
    let mut req2 = request(4, 0xbbbb);
    let mut h = Header::parse(&req2).expect("header");
    h.origin_ts = t2_1;
    h.receive_ts = NtpTimestamp(0xcccc);
    h.write(&mut req2);
    let rx2 = T0 + 1_000_000_000;
    let mut ex2 = ask(&mut s, &req2, LAN, rx2, &st);
    let r2 = ex2.reply();
    assert_eq!(r2.outcome, Outcome::ServedInterleaved);
    assert!(r2.wants_kernel_tx);
    s.finish(&r2, &mut ex2.out, UnixNanos(rx2 + 2_000));
    let h2 = ex2.header();
    assert_eq!(
        h2.origin_ts,
        NtpTimestamp(0xcccc),
        "origin = the client's receive timestamp"
    );
    assert_eq!(h2.receive_ts, NtpTimestamp::from_unix(UnixNanos(rx2)));
    assert_eq!(
        h2.transmit_ts,
        NtpTimestamp::from_unix(UnixNanos(rx1 + 4_321)),
        "T3 of reply 1"
    );

    // A request whose origin we never served falls back to basic mode.
    let mut stray = req2.clone();
    let mut h = Header::parse(&stray).expect("header");
    h.origin_ts = NtpTimestamp(12345);
    h.write(&mut stray);
    let ex = ask(&mut s, &stray, LAN, rx2 + 5, &st);
    assert_eq!(ex.reply().outcome, Outcome::Served);
    assert_eq!(ex.header().origin_ts, NtpTimestamp(0xbbbb));
}

#[test]
fn receive_timestamps_never_repeat_while_saved() {
    let mut config = ServerConfig::default();
    config.ratelimit.enabled = false;
    let mut s = server_with(config);
    let st = synced();
    let mut seen = std::collections::HashSet::new();
    for i in 0..50 {
        let ex = ask(&mut s, &request(4, i + 1), LAN, T0, &st);
        let r = ex.reply();
        s.record_transmit(&r, UnixNanos(T0 + 10));
        assert!(seen.insert(ex.header().receive_ts), "duplicate T2 at {i}");
    }
}

#[test]
fn transmit_never_equals_receive() {
    let mut s = server();
    let mut ex = ask(&mut s, &request(4, 7), LAN, T0, &synced());
    let r = ex.reply();
    let tx = s.finish(&r, &mut ex.out, UnixNanos(T0));
    assert_ne!(tx, ex.header().receive_ts);
}

#[test]
fn small_output_buffer_is_refused_not_overrun() {
    let mut s = server();
    let mut out = [0u8; 10];
    let a = s.handle(
        &request(4, 1),
        src(LAN),
        UnixNanos(T0),
        MonoNanos(0),
        &synced(),
        &mut out,
    );
    assert_eq!(a, ServerAction::Drop(Outcome::Malformed));
}

proptest! {
    #[test]
    fn never_panics_and_never_replies_larger_than_the_request(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        first in any::<u8>(),
        v6 in any::<bool>(),
    ) {
        let mut s = server();
        let mut p = bytes;
        if !p.is_empty() { p[0] = first; }
        let from = if v6 { "fe80::1" } else { LAN };
        let mut out = [0u8; MIN_OUT_LEN];
        let a = s.handle(&p, src(from), UnixNanos(T0), MonoNanos(0), &synced(), &mut out);
        if let ServerAction::Reply(r) = a {
            prop_assert!(r.len <= p.len());
            s.finish(&r, &mut out, UnixNanos(T0 + 1));
            let h = Header::parse(&out).expect("reply header");
            // A symmetric-active (w32time) request gets a stateless mode-2
            // reply; a client request a mode-4 one.
            let expected = if p[0] & 0x07 == mode::SYMMETRIC_ACTIVE {
                mode::SYMMETRIC_PASSIVE
            } else {
                mode::SERVER
            };
            prop_assert_eq!(h.mode, expected);
            prop_assert!((1..=4).contains(&h.version));
        }
    }
}
