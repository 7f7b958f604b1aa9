//! Windows domain controllers: w32time polls a manually configured peer in
//! symmetric active mode (1). The answer is a stateless mode-2 reply with the
//! fields a client gets, under the same access list and rate limit.

use super::*;
use crate::packet::{HEADER_LEN, Header, NtpShort, NtpTimestamp, mode};

use super::tests::{T0, synced};

/// What w32time on a PDC emulator sends to `NtpServer=box,0x8` (symmetric
/// active): NTPv3, its own (unsynchronised) stratum and clock fields, a poll
/// of 2^10 s, and origin/receive from its previous exchange.
fn w32time_request(transmit: u64) -> Vec<u8> {
    let mut p = vec![0u8; HEADER_LEN];
    Header {
        leap: 3,
        version: 3,
        mode: mode::SYMMETRIC_ACTIVE,
        stratum: 0,
        poll: 10,
        precision: -23,
        root_delay: NtpShort(0x0000_4000),
        root_dispersion: NtpShort(0x0001_0000),
        reference_id: *b"LOCL",
        reference_ts: NtpTimestamp(0xe000_0000_0000_0000),
        origin_ts: NtpTimestamp(0xe100_0000_1234_5678),
        receive_ts: NtpTimestamp(0xe100_0000_9abc_def0),
        transmit_ts: NtpTimestamp(transmit),
    }
    .write(&mut p);
    p
}

fn ask(s: &mut Server, req: &[u8], from: &str, rx_ns: i64) -> (ServerAction, [u8; MIN_OUT_LEN]) {
    let mut out = [0u8; MIN_OUT_LEN];
    let source = from.parse().expect("address");
    let action = s.handle(
        req,
        source,
        UnixNanos(rx_ns),
        MonoNanos(rx_ns),
        &synced(),
        &mut out,
    );
    if let ServerAction::Reply(r) = action {
        s.finish(&r, &mut out, UnixNanos(rx_ns + 4_000));
    }
    (action, out)
}

#[test]
fn a_w32time_symmetric_active_poll_gets_a_mode_2_reply_field_by_field() {
    let mut s = Server::new(&ServerConfig::default(), Arc::new(KeyStore::default()), -24);
    let req = w32time_request(0xe100_0010_0000_0001);
    let (action, out) = ask(&mut s, &req, "192.168.1.10", T0);
    let ServerAction::Reply(reply) = action else {
        panic!("{action:?}")
    };
    assert_eq!(reply.outcome, Outcome::ServedSymmetric);
    assert_eq!(reply.len, HEADER_LEN);
    assert!(!reply.wants_kernel_tx, "no interleaved mode for peers");
    let h = Header::parse(&out).expect("reply");
    // What a client would get, field by field, but mode 2 and NTPv3 back.
    assert_eq!(h.leap, 0);
    assert_eq!(h.version, 3);
    assert_eq!(h.mode, mode::SYMMETRIC_PASSIVE);
    assert_eq!(h.stratum, 1);
    assert_eq!(h.poll, 10);
    assert_eq!(h.precision, -24);
    assert_eq!(h.root_delay, NtpShort(0));
    assert_eq!(h.root_dispersion, NtpShort::from_nanos_ceil(1_000.0));
    assert_eq!(h.reference_id, *b"GPS\0");
    assert_eq!(
        h.reference_ts,
        NtpTimestamp::from_unix(UnixNanos(T0 - 500_000_000))
    );
    assert_eq!(
        h.origin_ts,
        NtpTimestamp(0xe100_0010_0000_0001),
        "origin = the peer's transmit"
    );
    assert_eq!(h.receive_ts, NtpTimestamp::from_unix(UnixNanos(T0)));
    assert_eq!(
        h.transmit_ts,
        NtpTimestamp::from_unix(UnixNanos(T0 + 4_000))
    );
    // The same request as a client gets the same fields in mode 4.
    let mut client = req.clone();
    client[0] = (3 << 6) | (3 << 3) | mode::CLIENT;
    let (_, client_out) = ask(&mut s, &client, "192.168.1.11", T0);
    let c = Header::parse(&client_out).expect("reply");
    assert_eq!(
        (c.mode, c.stratum, c.reference_id, c.root_dispersion),
        (mode::SERVER, h.stratum, h.reference_id, h.root_dispersion)
    );
}

#[test]
fn symmetric_peers_meet_the_same_deny_list_and_rate_limit_as_clients() {
    let mut config = ServerConfig::default();
    config.ratelimit.interval_log2_s = 3;
    config.ratelimit.burst = 2;
    config.ratelimit.leak = 0;
    let mut s = Server::new(&config, Arc::new(KeyStore::default()), -24);
    let (action, out) = ask(&mut s, &w32time_request(1), "203.0.113.7", T0);
    let ServerAction::Reply(r) = action else {
        panic!("{action:?}")
    };
    assert_eq!(r.outcome, Outcome::DeniedKod);
    let h = Header::parse(&out).expect("kod");
    assert_eq!(
        (h.mode, h.stratum, &h.reference_id),
        (mode::SYMMETRIC_PASSIVE, 0, b"DENY")
    );
    let outcomes: Vec<Outcome> = (0..4)
        .map(
            |i| match ask(&mut s, &w32time_request(10 + i), "192.168.1.10", T0).0 {
                ServerAction::Reply(r) => r.outcome,
                ServerAction::Drop(o) => o,
            },
        )
        .collect();
    assert_eq!(
        outcomes,
        [
            Outcome::ServedSymmetric,
            Outcome::ServedSymmetric,
            Outcome::RateLimitedKod,
            Outcome::RateLimitedKod
        ]
    );
}

#[test]
fn no_association_is_created_for_a_peer() {
    // Stateless: a thousand peers cost what a thousand clients cost (one
    // bounded rate-limit slot each), and a peer's reply never depends on an
    // earlier exchange (no interleaved or symmetric state is kept for it).
    let mut s = Server::new(&ServerConfig::default(), Arc::new(KeyStore::default()), -24);
    let first = ask(&mut s, &w32time_request(5), "192.168.1.10", T0).1;
    for i in 0..1000u32 {
        let peer = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 0xff, i & 0xff);
        ask(&mut s, &w32time_request(u64::from(i)), &peer, T0 + 1_000);
    }
    let again = ask(&mut s, &w32time_request(5), "192.168.1.10", T0).1;
    assert_eq!(
        first[..32],
        again[..32],
        "same request, same answer: nothing remembered"
    );
}
