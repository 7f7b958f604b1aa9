//! Every byte string through the codec and the whole server policy: no panic,
//! no reply larger than the request, every reply a well-formed mode-4 header
//! (mode 2 to a symmetric-active request).
#![no_main]

use libfuzzer_sys::fuzz_target;
use skytime_ntp::keys::{Key, KeyStore, MacAlgorithm};
use skytime_ntp::packet::{Header, parse_framing};
use skytime_ntp::{MIN_OUT_LEN, Server, ServerAction, ServerConfig, SystemState};
use skytime_timebase::{LeapChange, MonoNanos, UnixNanos};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

const T0: i64 = 1_750_000_000_000_000_000;

fn keys() -> Arc<KeyStore> {
    static KEYS: OnceLock<Arc<KeyStore>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let keys = [
            Key::new(1, MacAlgorithm::Md5, b"fuzz-md5"),
            Key::new(2, MacAlgorithm::Sha1, b"fuzz-sha1"),
            Key::new(3, MacAlgorithm::Aes128Cmac, &[3u8; 16]),
        ];
        Arc::new(KeyStore::from_keys(keys.into_iter().flatten().collect()).unwrap_or_default())
    })
    .clone()
}

fuzz_target!(|data: &[u8]| {
    let _ = Header::parse(data);
    let _ = parse_framing(data);

    let mut config = ServerConfig::default();
    config.ratelimit.enabled = data.first().is_some_and(|b| b & 1 == 1);
    // Small tables: a fresh server per input keeps runs reproducible and fast.
    config.client_table_entries = 64;
    config.interleaved_table_entries = 64;
    let mut server = Server::new(&config, keys(), -24);
    let state = SystemState {
        synchronised: data.len() % 3 != 0,
        leap: LeapChange::Insert,
        stratum: 1,
        reference_id: *b"GPS\0",
        root_delay_ns: 0.0,
        root_dispersion_ns: 1e3,
        dispersion_rate_ns_per_s: 10.0,
        as_of: UnixNanos(T0),
        reference_time: UnixNanos(T0),
    };
    let source: IpAddr = if data.len() % 2 == 0 {
        "192.168.0.1".parse()
    } else {
        "fe80::1".parse()
    }
    .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let mut out = [0u8; MIN_OUT_LEN];
    // Twice, so the second request can hit the interleaved path.
    for i in 0..2 {
        let rx = UnixNanos(T0 + i * 1_000_000);
        if let ServerAction::Reply(reply) =
            server.handle(data, source, rx, MonoNanos(i), &state, &mut out)
        {
            assert!(reply.len <= data.len(), "reply larger than request");
            server.finish(&reply, &mut out, UnixNanos(rx.0 + 1_000));
            server.record_transmit(&reply, UnixNanos(rx.0 + 2_000));
            let h = Header::parse(&out).expect("reply header");
            // A client (mode 3) gets a server reply (4); a symmetric-active
            // peer such as w32time (mode 1) a stateless passive one (2).
            let request_mode = data.first().map(|b| b & 7);
            let expected_mode = if request_mode == Some(1) { 2 } else { 4 };
            assert_eq!(h.mode, expected_mode);
            assert!((1..=4).contains(&h.version));
        }
    }
});
