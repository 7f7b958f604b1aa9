//! Every byte string as an NTP request with NTS extension fields: no panic,
//! no forged input authenticates, and a mutated copy of a valid request
//! (fuzzer bytes XORed in) never yields a reply longer than the request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skytime_nts::ef::{self, client};
use skytime_nts::{CookieKey, CookieKeys, SessionKey, SessionKeys};
use std::sync::OnceLock;

fn keys() -> &'static CookieKeys {
    static KEYS: OnceLock<CookieKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        CookieKeys::new(vec![CookieKey { id: 7, created_unix_s: 0, material: SessionKey::from_bytes([7; 32]) }])
            .expect("one key")
    })
}

fn session() -> SessionKeys {
    SessionKeys { c2s: SessionKey::from_bytes([1; 32]), s2c: SessionKey::from_bytes([2; 32]) }
}

fn valid_request() -> Vec<u8> {
    let mut cookie = [0u8; skytime_nts::COOKIE_LEN];
    keys().seal(&session(), &[3; 16], &mut cookie);
    let mut header = [0u8; 48];
    header[0] = 0x23;
    client::build_request(&header, &[4; 32], &cookie, 2, &session().c2s, &[5; 16])
}

fn serve(packet: &[u8]) {
    if packet.len() < 48 {
        return;
    }
    let Ok(Some(fields)) = ef::find_fields(packet) else { return };
    let Ok(auth) = ef::authenticate(packet, &fields, keys()) else { return };
    let mut out = [0u8; 1024];
    if let Some(pending) = ef::write_reply_fields(&mut out, packet.len(), fields.unique_id, &auth, keys(), || [9; 16]) {
        assert!(pending.len <= packet.len());
        ef::seal_reply(&mut out, &pending, &auth.session.s2c);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut raw = vec![0u8; 48];
    raw.extend_from_slice(data);
    serve(&raw);
    let mut mutated = valid_request();
    // Only the bytes that land inside the request change it: flips past its
    // end are dropped by the zip below.
    let unchanged = data.iter().take(mutated.len()).all(|&b| b == 0);
    for (byte, flip) in mutated.iter_mut().zip(data) {
        *byte ^= flip;
    }
    serve(&mutated);
    if !unchanged {
        // Changing any authenticated byte must break authentication (bytes
        // inside placeholder bodies are not authenticated-relevant content
        // but are still covered by the AD; so all changes break it).
        let fields = ef::find_fields(&mutated);
        if let Ok(Some(fields)) = fields {
            assert!(ef::authenticate(&mutated, &fields, keys()).is_err());
        }
    }
});
