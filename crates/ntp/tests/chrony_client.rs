//! The server in-process on loopback, queried by the real chrony client (basic,
//! interleaved, with a shared key) and by hand-made hostile datagrams.
//!
//! Needs `chronyd`/`chronyc` (the README's test command installs them). The
//! chrony clients run with `-x`/`-Q`, so they never touch the host clock.

use arc_swap::ArcSwap;
use skytime_e2e::{
    CHRONYC, CHRONYD, ChronyClient, TempDir, chrony_oneshot, ntpdata_field as field, require_tool,
};
use skytime_ntp::packet::{HEADER_LEN, Header, NtpTimestamp, mode};
use skytime_ntp::{IoCounter, NtpServer, Outcome, ServerConfig, ServerHandle, SystemState};
use skytime_timebase::{HostClock, LeapChange, TimeSource};
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn require_chrony() {
    require_tool(CHRONYD);
    require_tool(CHRONYC);
}

fn synced_state() -> SystemState {
    let now = HostClock.realtime();
    SystemState {
        synchronised: true,
        leap: LeapChange::None,
        stratum: 1,
        reference_id: *b"GPS\0",
        root_delay_ns: 0.0,
        root_dispersion_ns: 2_000.0,
        dispersion_rate_ns_per_s: 10.0,
        as_of: now,
        reference_time: now,
    }
}

fn config(tweak: impl FnOnce(&mut ServerConfig)) -> ServerConfig {
    let mut c = ServerConfig {
        listen: vec!["127.0.0.1:0".parse().expect("addr")],
        workers: 2,
        ..ServerConfig::default()
    };
    // Test clients poll every second or faster.
    c.ratelimit.enabled = false;
    tweak(&mut c);
    c
}

fn start(config: &ServerConfig, state: SystemState) -> (ServerHandle, SocketAddr) {
    let state = Arc::new(ArcSwap::from_pointee(state));
    let server = NtpServer::bind(config, Arc::new(HostClock), state).expect("bind");
    let addr = server.local_addrs()[0];
    (server.spawn().expect("spawn"), addr)
}

#[test]
fn chrony_oneshot_client_gets_stratum_1_time() {
    require_chrony();
    let (handle, addr) = start(&config(|_| {}), synced_state());
    let report = chrony_oneshot(addr.port()).expect("chronyd -Q");
    let offset_s = report.clock_wrong_by_s;
    assert!(
        offset_s.abs() < 1e-3,
        "offset {offset_s} s:\n{}",
        report.output
    );
    let stats = handle.stats();
    assert!(stats.outcome(Outcome::Served) >= 1);
    assert_eq!(
        stats.io(IoCounter::NoKernelRxTimestamp),
        0,
        "SO_TIMESTAMPNS missing"
    );
    handle.shutdown();
}

#[test]
fn chrony_xleave_client_runs_interleaved_with_kernel_tx_timestamps() {
    require_chrony();
    let (handle, addr) = start(&config(|_| {}), synced_state());
    let client = ChronyClient::start(
        "ntp-xleave",
        &format!(
            "server 127.0.0.1 port {} minpoll -3 maxpoll -3 xleave",
            addr.port()
        ),
        None,
    )
    .expect("start chronyd -x");
    let data = client.wait_for(Duration::from_secs(20), |d| {
        field(d, "Interleaved") == Some("Yes")
            && field(d, "Total RX").is_some_and(|v| v != "0" && v != "1" && v != "2")
    });
    assert_eq!(field(&data, "Interleaved"), Some("Yes"), "ntpdata:\n{data}");
    assert_eq!(field(&data, "Stratum"), Some("1"), "ntpdata:\n{data}");
    assert_eq!(
        field(&data, "Reference ID").map(|v| v.contains("GPS")),
        Some(true),
        "{data}"
    );
    let stats = handle.stats();
    assert!(
        stats.outcome(Outcome::ServedInterleaved) >= 1,
        "{:?}",
        stats.snapshot()
    );
    assert!(
        stats.io(IoCounter::KernelTxTimestamps) >= 1,
        "{:?}",
        stats.snapshot()
    );
    handle.shutdown();
}

const KEYS: &str = "10 AES128 HEX:6E1C1D8B2C0A8E3F4A5B6C7D8E9F0A1B\n11 SHA1 HEX:00112233445566778899AABBCCDDEEFF00112233\n";

#[test]
fn chrony_client_with_shared_keys_is_authenticated() {
    require_chrony();
    let dir = TempDir::new("ntp-server-keys");
    let keyfile = dir.path().join("server.keys");
    fs::write(&keyfile, KEYS).expect("keyfile");
    let (handle, addr) = start(
        &config(|c| c.keyfile = Some(keyfile.clone())),
        synced_state(),
    );
    for key in [10, 11] {
        let client = ChronyClient::start(
            &format!("ntp-key{key}"),
            &format!(
                "server 127.0.0.1 port {} minpoll -3 maxpoll -3 key {key}",
                addr.port()
            ),
            Some(KEYS),
        )
        .expect("start chronyd -x");
        let data = client.wait_for(Duration::from_secs(15), |d| {
            field(d, "Authenticated") == Some("Yes")
        });
        assert_eq!(
            field(&data, "Authenticated"),
            Some("Yes"),
            "key {key}, ntpdata:\n{data}"
        );
    }
    assert!(handle.stats().outcome(Outcome::Authenticated) >= 2);

    // A client holding a different secret under the same id gets crypto-NAKs.
    let wrong = "10 AES128 HEX:00000000000000000000000000000000\n";
    let client = ChronyClient::start(
        "ntp-wrongkey",
        &format!(
            "server 127.0.0.1 port {} minpoll -3 maxpoll -3 key 10",
            addr.port()
        ),
        Some(wrong),
    )
    .expect("start chronyd -x");
    let start = Instant::now();
    while handle.stats().outcome(Outcome::CryptoNak) == 0
        && start.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(handle.stats().outcome(Outcome::CryptoNak) >= 1);
    assert_ne!(field(&client.ntpdata(), "Authenticated"), Some("Yes"));
    handle.shutdown();
}

fn exchange(sock: &UdpSocket, server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
    sock.send_to(packet, server).expect("send");
    let mut buf = [0u8; 2048];
    match sock.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

fn client_request(version: u8) -> Vec<u8> {
    let mut p = vec![0u8; HEADER_LEN];
    Header {
        version,
        mode: mode::CLIENT,
        transmit_ts: NtpTimestamp(0x0123_4567_89ab_cdef),
        ..Header::default()
    }
    .write(&mut p);
    p
}

#[test]
fn hostile_datagrams_get_no_answer_and_the_server_keeps_serving() {
    let (handle, addr) = start(&config(|_| {}), synced_state());
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut hostile: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x23; 10],
        client_request(4)[..47].to_vec(),
        client_request(0),
        client_request(7),
        vec![0u8; 4000],
    ];
    for m in [2u8, 4, 5, 6, 7] {
        let mut p = client_request(4);
        p[0] = (p[0] & !7) | m;
        hostile.push(p);
    }
    let mut garbage_ef = client_request(4);
    garbage_ef.extend_from_slice(&[
        0xde, 0xad, 0x00, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ]);
    hostile.push(garbage_ef);
    for p in &hostile {
        assert_eq!(
            exchange(&sock, addr, p),
            None,
            "answered {} bytes: {:02x?}",
            p.len(),
            &p[..p.len().min(8)]
        );
    }
    let stats = handle.stats();
    let dropped = stats.outcome(Outcome::Malformed)
        + stats.outcome(Outcome::BadVersion)
        + stats.outcome(Outcome::DroppedMode);
    assert_eq!(
        usize::try_from(dropped).expect("count"),
        hostile.len(),
        "{:?}",
        stats.snapshot()
    );

    // Still serving, with a receive timestamp from the kernel close to now.
    let before = HostClock.realtime();
    let reply = exchange(&sock, addr, &client_request(3)).expect("reply");
    let after = HostClock.realtime();
    assert_eq!(reply.len(), HEADER_LEN);
    let h = Header::parse(&reply).expect("header");
    assert_eq!(
        (h.version, h.mode, h.stratum, h.leap),
        (3, mode::SERVER, 1, 0)
    );
    assert_eq!(h.origin_ts, NtpTimestamp(0x0123_4567_89ab_cdef));
    let t2 = h.receive_ts.to_unix_near(before);
    let t3 = h.transmit_ts.to_unix_near(before);
    assert!(
        before <= t2 && t2 <= t3 && t3 <= after,
        "{before} {t2} {t3} {after}"
    );
    handle.shutdown();
}

#[test]
fn denied_source_gets_deny_kod_and_unsynchronised_state_is_flagged() {
    let (handle, addr) = start(
        &config(|c| c.allow = vec!["10.0.0.0/8".parse().expect("subnet")]),
        synced_state(),
    );
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let reply = exchange(&sock, addr, &client_request(4)).expect("kod");
    let h = Header::parse(&reply).expect("header");
    assert_eq!((h.stratum, &h.reference_id, h.leap), (0, b"DENY", 3));
    handle.shutdown();

    let (handle, addr) = start(&config(|_| {}), SystemState::unsynchronised());
    let reply = exchange(&sock, addr, &client_request(4)).expect("reply");
    let h = Header::parse(&reply).expect("header");
    assert_eq!((h.stratum, h.leap), (16, 3));
    handle.shutdown();
}

#[test]
fn port_in_use_fails_at_bind_naming_the_address() {
    let holder = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let taken = holder.local_addr().expect("addr");
    let c = config(|c| c.listen = vec![taken]);
    let state = Arc::new(ArcSwap::from_pointee(synced_state()));
    let err = NtpServer::bind(&c, Arc::new(HostClock), state)
        .err()
        .expect("must fail");
    let text = err.to_string();
    assert!(text.contains(&taken.to_string()), "{text}");
    assert!(text.to_lowercase().contains("in use"), "{text}");
}

#[test]
fn ipv6_loopback_is_served() {
    let (handle, addr) = start(
        &config(|c| c.listen = vec!["[::1]:0".parse().expect("addr")]),
        synced_state(),
    );
    let sock = UdpSocket::bind("[::1]:0").expect("bind v6");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let reply = exchange(&sock, addr, &client_request(4)).expect("reply over IPv6");
    assert_eq!(Header::parse(&reply).map(|h| h.stratum), Some(1));
    handle.shutdown();
}

#[test]
fn wildcard_listener_replies_from_the_address_asked() {
    // Bound to 0.0.0.0, the reply must come from the destination the client
    // used (IP_PKTINFO), here 127.0.0.2 rather than the routing default.
    let (handle, addr) = start(
        &config(|c| c.listen = vec!["0.0.0.0:0".parse().expect("addr")]),
        synced_state(),
    );
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let target: SocketAddr = format!("127.0.0.2:{}", addr.port()).parse().expect("addr");
    sock.send_to(&client_request(4), target).expect("send");
    let mut buf = [0u8; 256];
    let (n, from) = sock.recv_from(&mut buf).expect("reply");
    assert_eq!(n, HEADER_LEN);
    assert_eq!(from, target);
    handle.shutdown();
}

/// One exchange from `sock`, returning the reply header and the kernel receive
/// time of the reply (T4).
fn timed_exchange(
    sock: &UdpSocket,
    server: SocketAddr,
    packet: &[u8],
) -> (Header, skytime_timebase::UnixNanos) {
    use std::os::fd::AsFd;
    sock.send_to(packet, server).expect("send");
    let mut rx = skytime_netio::RxBatch::new(1, 256);
    rx.recv(sock.as_fd(), skytime_netio::Wait::Blocking)
        .expect("no reply");
    let reply = rx.get(0).expect("one datagram");
    assert!(reply.payload.len() >= 48, "short reply");
    (
        Header::parse(reply.payload).expect("reply header"),
        reply.rx_time.expect("SO_TIMESTAMPNS on the reply"),
    )
}

#[test]
fn interleaved_replies_carry_the_kernel_transmit_time_of_the_previous_reply() {
    interleaved_exchange_on("127.0.0.1:0");
}

#[test]
fn interleaved_replies_on_a_wildcard_listener_combine_pktinfo_and_tx_timestamps() {
    interleaved_exchange_on("0.0.0.0:0");
}

fn interleaved_exchange_on(listen: &str) {
    // One worker, so the interleaved client and an untagged basic client share
    // a socket: the kernel's OPT_ID numbering must still map each TX timestamp
    // to the right reply.
    let listen: SocketAddr = listen.parse().expect("listen address");
    let (handle, bound) = start(
        &config(|c| {
            c.workers = 1;
            c.listen = vec![listen];
        }),
        synced_state(),
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], bound.port()));
    let xleave = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let basic = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for s in [&xleave, &basic] {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        skytime_netio::enable_rx_timestamps(std::os::fd::AsFd::as_fd(s)).expect("SO_TIMESTAMPNS");
    }
    let near = HostClock.realtime();
    // First exchange in basic form (origin zero), as chrony starts.
    let (mut prev, mut prev_t4) = timed_exchange(&xleave, addr, &client_request(4));
    let mut interleaved = 0;
    for i in 0..20u64 {
        // Untagged traffic on the same socket in between.
        let _ = timed_exchange(&basic, addr, &client_request(4));
        let mut req = vec![0u8; HEADER_LEN];
        Header {
            version: 4,
            mode: mode::CLIENT,
            origin_ts: prev.receive_ts,
            receive_ts: NtpTimestamp::from_unix(prev_t4),
            transmit_ts: NtpTimestamp(0x7777_0000 + i),
            ..Header::default()
        }
        .write(&mut req);
        let (reply, t4) = timed_exchange(&xleave, addr, &req);
        if reply.origin_ts == NtpTimestamp::from_unix(prev_t4) {
            interleaved += 1;
            // T3 now is when the previous reply left: after the server received
            // that request and, once that reply was itself sent with a kernel
            // TX timestamp request (all but the first, basic-form one), no
            // later than we received it; the user-space fallback, read after
            // sendmmsg returns, would be later than our kernel receive time.
            let t3 = reply.transmit_ts.to_unix_near(near);
            let t2_prev = prev.receive_ts.to_unix_near(near);
            assert!(t2_prev < t3, "T2 {t2_prev} < T3 {t3} violated at {i}");
            if i > 0 {
                assert!(t3 <= prev_t4, "T3 {t3} <= T4 {prev_t4} violated at {i}");
            }
        }
        prev = reply;
        prev_t4 = t4;
    }
    assert!(
        interleaved >= 19,
        "only {interleaved} of 20 replies were interleaved"
    );
    assert!(
        handle.stats().io(IoCounter::KernelTxTimestamps) >= 19,
        "{:?}",
        handle.stats().snapshot()
    );
    handle.shutdown();
}

#[test]
fn ipv6_wildcard_listener_replies_from_the_address_asked() {
    let (handle, addr) = start(
        &config(|c| c.listen = vec!["[::]:0".parse().expect("addr")]),
        synced_state(),
    );
    let sock = UdpSocket::bind("[::1]:0").expect("bind v6");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let target: SocketAddr = format!("[::1]:{}", addr.port()).parse().expect("addr");
    sock.send_to(&client_request(4), target).expect("send");
    let mut buf = [0u8; 256];
    let (n, from) = sock.recv_from(&mut buf).expect("reply");
    assert_eq!((n, from), (HEADER_LEN, target));
    handle.shutdown();
}

#[test]
fn busiest_clients_and_request_rate_are_published() {
    let (handle, addr) = start(&config(|c| c.workers = 1), synced_state());
    let sock = UdpSocket::bind("127.0.0.9:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    for _ in 0..7 {
        assert!(exchange(&sock, addr, &client_request(4)).is_some());
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut busiest = Vec::new();
    while Instant::now() < deadline {
        busiest = handle.busiest_clients(5);
        if !busiest.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let me = busiest
        .iter()
        .find(|c| c.addr == "127.0.0.9".parse::<std::net::IpAddr>().expect("ip"));
    assert_eq!(me.map(|c| c.requests), Some(7), "{busiest:?}");
    assert_eq!(handle.stats().io(IoCounter::Received), 7);
    handle.shutdown();
}

#[test]
fn one_client_on_many_source_ports_meets_one_rate_limit_across_workers() {
    // Four workers, chrony's `ratelimit` settings (burst 8): a client that uses a new
    // source port for every request (as ntpdig does) must still be one client.
    let (handle, addr) = start(
        &config(|c| {
            c.workers = 4;
            c.ratelimit.enabled = true;
            c.ratelimit.interval_log2_s = 3;
            c.ratelimit.burst = 8;
            c.ratelimit.leak = 0; // every limited request gets a KoD, so each is visible
        }),
        synced_state(),
    );
    let mut served = 0;
    let mut kod = 0;
    for _ in 0..40 {
        let sock = UdpSocket::bind("127.0.0.77:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        let reply = exchange(&sock, addr, &client_request(4)).expect("a reply or a KoD");
        let header = Header::parse(&reply).expect("parse reply");
        if header.stratum == 0 {
            kod += 1;
        } else {
            served += 1;
        }
    }
    assert_eq!(
        served, 8,
        "burst of 8 across 4 workers, then KoD RATE ({kod} KoDs)"
    );
    let busiest = handle.busiest_clients(10);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut me = Vec::new();
    while Instant::now() < deadline {
        me = handle
            .busiest_clients(10)
            .into_iter()
            .filter(|c| c.addr == "127.0.0.77".parse::<std::net::IpAddr>().expect("ip"))
            .collect();
        if me.first().is_some_and(|c| c.requests == 40) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(me.len(), 1, "one row per client: {busiest:?}");
    assert_eq!(me[0].requests, 40, "{me:?}");
    handle.shutdown();
}
