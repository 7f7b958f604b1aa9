//! The per-packet policy path allocates nothing: a counting global allocator
//! watches `Server::handle` + `finish` + `record_transmit` over every kind of
//! request (basic, interleaved, authenticated, bad MAC, denied, rate-limited,
//! malformed).

use skytime_ntp::keys::{Key, KeyStore, MAX_DIGEST_LEN, MacAlgorithm};
use skytime_ntp::packet::{HEADER_LEN, Header, NtpTimestamp, mode};
use skytime_ntp::{MIN_OUT_LEN, Server, ServerAction, ServerConfig, SystemState};
use skytime_timebase::{LeapChange, MonoNanos, UnixNanos};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Only this test's thread is watched; the test harness's own threads may allocate.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn request(transmit: u64, origin: u64, receive: u64) -> Vec<u8> {
    let mut p = vec![0u8; HEADER_LEN];
    Header {
        version: 4,
        mode: mode::CLIENT,
        origin_ts: NtpTimestamp(origin),
        receive_ts: NtpTimestamp(receive),
        transmit_ts: NtpTimestamp(transmit),
        ..Header::default()
    }
    .write(&mut p);
    p
}

#[test]
fn the_policy_allocates_nothing_per_packet() {
    let keys = Arc::new(
        KeyStore::from_keys(vec![
            Key::new(1, MacAlgorithm::Aes128Cmac, &[1u8; 16]).expect("key"),
            Key::new(2, MacAlgorithm::Sha1, b"sha1").expect("key"),
            Key::new(3, MacAlgorithm::Sha512, b"sha512").expect("key"),
        ])
        .expect("store"),
    );
    let mut config = ServerConfig::default();
    config.ratelimit.burst = 4;
    let mut server = Server::new(&config, keys.clone(), -24);
    let t0 = 1_750_000_000_000_000_000i64;
    let state = SystemState {
        synchronised: true,
        leap: LeapChange::None,
        stratum: 1,
        reference_id: *b"GPS\0",
        root_delay_ns: 0.0,
        root_dispersion_ns: 1e3,
        dispersion_rate_ns_per_s: 10.0,
        as_of: UnixNanos(t0),
        reference_time: UnixNanos(t0),
    };
    // Requests prepared before counting starts.
    let mut signed = Vec::new();
    for id in [1u32, 2, 3] {
        let mut p = request(7, 0, 0);
        let mut d = [0u8; MAX_DIGEST_LEN];
        let n = keys.get(id).expect("key").compute(&p, &mut d);
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&d[..n]);
        signed.push(p);
    }
    let mut bad_mac = signed[0].clone();
    bad_mac[60] ^= 1;
    let plain = request(9, 0, 0);
    let garbage = vec![0xffu8; 200];
    let lan: IpAddr = "192.168.7.7".parse().expect("addr");
    let wan: IpAddr = "198.51.100.1".parse().expect("addr");
    let mut out = [0u8; MIN_OUT_LEN];
    let mut interleaved = request(1, 0, 0);
    let mut counts = [0u64; 3];

    COUNTING.with(|c| c.set(true));
    for i in 0..20_000i64 {
        let rx = UnixNanos(t0 + i * 1_000);
        let src = if i % 50 == 0 {
            wan
        } else {
            IpAddr::from([192, 168, low_byte(i % 7), low_byte(i % 251)])
        };
        let req: &[u8] = match i % 8 {
            0 => &plain,
            1 => &signed[0],
            2 => &signed[1],
            3 => &signed[2],
            4 => &bad_mac,
            5 => &garbage,
            6 => &interleaved,
            _ => &plain,
        };
        // One chatty client to exercise the rate limit too.
        let src = if i % 8 == 7 { lan } else { src };
        match server.handle(req, src, rx, MonoNanos(i * 1_000), &state, &mut out) {
            ServerAction::Reply(r) => {
                server.finish(&r, &mut out, UnixNanos(rx.0 + 500));
                server.record_transmit(&r, UnixNanos(rx.0 + 900));
                if i % 8 == 6 {
                    // Next time, ask as an interleaved client would.
                    let h = Header::parse(&out).expect("reply");
                    Header {
                        version: 4,
                        mode: mode::CLIENT,
                        origin_ts: h.receive_ts,
                        receive_ts: NtpTimestamp(i.cast_unsigned() + 11),
                        transmit_ts: NtpTimestamp(i.cast_unsigned() + 12),
                        ..Header::default()
                    }
                    .write(&mut interleaved);
                }
                counts[0] += 1;
            }
            ServerAction::Drop(_) => counts[1] += 1,
        }
        counts[2] += 1;
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(
        ALLOCATIONS.load(Ordering::Relaxed),
        0,
        "allocations on the per-packet path"
    );
    assert!(counts[0] > 9_000 && counts[1] > 1_000, "{counts:?}");
}

#[test]
fn the_nts_path_allocates_nothing_per_packet() {
    use skytime_nts::ef::client::build_request;
    use skytime_nts::{COOKIE_LEN, CookieKey, CookieKeys, SessionKey, SessionKeys};
    let ring = |id: u32| {
        CookieKeys::new(vec![CookieKey {
            id,
            created_unix_s: 0,
            material: SessionKey::from_bytes([id.to_le_bytes()[0]; 32]),
        }])
        .expect("keys")
    };
    let cookie_keys = Arc::new(arc_swap::ArcSwap::from_pointee(ring(1)));
    let mut config = ServerConfig::default();
    config.ratelimit.enabled = false;
    let mut server =
        Server::new(&config, Arc::new(KeyStore::default()), -24).with_nts(cookie_keys.clone());
    let session = SessionKeys {
        c2s: SessionKey::from_bytes([3; 32]),
        s2c: SessionKey::from_bytes([4; 32]),
    };
    let header: [u8; HEADER_LEN] = request(5, 0, 0).try_into().expect("48 bytes");
    let mut requests = Vec::new();
    for (keys, placeholders) in [(ring(1), 0), (ring(1), 7), (ring(2), 0)] {
        let mut cookie = [0u8; COOKIE_LEN];
        keys.seal(&session, &[1; 16], &mut cookie);
        requests.push(build_request(
            &header,
            &[9; 32],
            &cookie,
            placeholders,
            &session.c2s,
            &[2; 16],
        ));
    }
    let mut forged = requests[0].clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    requests.push(forged);
    let t0 = 1_750_000_000_000_000_000i64;
    let state = SystemState {
        synchronised: true,
        stratum: 1,
        reference_id: *b"GPS\0",
        as_of: UnixNanos(t0),
        reference_time: UnixNanos(t0),
        ..SystemState::unsynchronised()
    };
    let src: IpAddr = "192.168.7.8".parse().expect("addr");
    let mut out = [0u8; 1024];
    let mut replies = 0u64;
    let mut run = |server: &mut Server, i: i64, replies: &mut u64| {
        let req = &requests[usize::try_from(i).expect("non-negative") % requests.len()];
        let rx = UnixNanos(t0 + i * 1_000);
        if let ServerAction::Reply(r) =
            server.handle(req, src, rx, MonoNanos(i * 1_000), &state, &mut out)
        {
            server.finish(&r, &mut out, UnixNanos(rx.0 + 500));
            server.record_transmit(&r, UnixNanos(rx.0 + 900));
            *replies += 1;
        }
    };
    // Warm-up outside the count: arc-swap's per-thread debt slot and the
    // first nonce-pool refill are one-time costs.
    run(&mut server, 0, &mut replies);
    COUNTING.with(|c| c.set(true));
    for i in 1..4_000i64 {
        run(&mut server, i, &mut replies);
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(
        ALLOCATIONS.load(Ordering::Relaxed),
        0,
        "allocations on the NTS path"
    );
    assert_eq!(replies, 4_000, "every request answered (replies or NAKs)");
}

/// The low byte of a small non-negative remainder.
fn low_byte(v: i64) -> u8 {
    u8::try_from(v).expect("a remainder below 256")
}
