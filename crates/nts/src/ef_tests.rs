use super::client::{build_request, open_reply};
use super::*;
use crate::aead::{KEY_LEN, SessionKey};
use crate::cookie::{CookieKey, SessionKeys};
use proptest::prelude::*;

fn keys(id: u32) -> CookieKeys {
    CookieKeys::new(vec![CookieKey {
        id,
        created_unix_s: 0,
        material: SessionKey::from_bytes([id.to_le_bytes()[0]; KEY_LEN]),
    }])
    .expect("keys")
}

fn session() -> SessionKeys {
    SessionKeys {
        c2s: SessionKey::from_bytes([0xc2; KEY_LEN]),
        s2c: SessionKey::from_bytes([0x2c; KEY_LEN]),
    }
}

fn cookie_for(keys: &CookieKeys) -> [u8; COOKIE_LEN] {
    let mut cookie = [0u8; COOKIE_LEN];
    keys.seal(&session(), &[0x55; NONCE_LEN], &mut cookie);
    cookie
}

fn header() -> [u8; 48] {
    let mut h = [0u8; 48];
    h[0] = 0x23;
    h[40..48].copy_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
    h
}

fn request(keys: &CookieKeys, placeholders: usize) -> Vec<u8> {
    build_request(
        &header(),
        &[0xab; 32],
        &cookie_for(keys),
        placeholders,
        &session().c2s,
        &[9; NONCE_LEN],
    )
}

/// Runs the server side; the reply, or why there is none.
fn serve(packet: &[u8], keys: &CookieKeys) -> Result<Vec<u8>, NtsError> {
    let fields = find_fields(packet)?.expect("NTS request");
    let auth = authenticate(packet, &fields, keys)?;
    let mut out = [0u8; 2048];
    out[..48].copy_from_slice(&packet[..48]);
    let mut counter = 0u8;
    let pending = write_reply_fields(
        &mut out,
        packet.len(),
        fields.unique_id,
        &auth,
        keys,
        || {
            counter += 1;
            [counter; NONCE_LEN]
        },
    )
    .expect("fits");
    seal_reply(&mut out, &pending, &auth.session.s2c);
    Ok(out[..pending.len].to_vec())
}

#[test]
fn a_request_earns_an_authentic_reply_with_one_cookie_per_slot() {
    let keys = keys(1);
    for placeholders in [0, 1, 3, 7, 9] {
        let packet = request(&keys, placeholders);
        let reply = serve(&packet, &keys).expect("served");
        assert_eq!(
            reply.len(),
            packet.len(),
            "no amplification, padded like chrony"
        );
        let cookies = open_reply(&reply, &[0xab; 32], &session().s2c).expect("authentic");
        assert_eq!(cookies.len(), (1 + placeholders).min(MAX_COOKIES));
        for cookie in &cookies {
            assert_eq!(
                keys.open(cookie),
                Ok(session()),
                "fresh cookies carry the same keys"
            );
            assert_ne!(cookie[..], cookie_for(&keys)[..], "and are fresh");
        }
    }
}

#[test]
fn plain_packets_and_other_extension_fields_are_not_nts() {
    let mut packet = header().to_vec();
    assert_eq!(find_fields(&packet), Ok(None));
    packet.extend_from_slice(&[0x20, 0x00, 0x00, 0x10]);
    packet.extend_from_slice(&[0; 12]);
    assert_eq!(find_fields(&packet), Ok(None));
}

#[test]
fn forged_replayed_or_foreign_requests_are_refused() {
    let keys = keys(1);
    let packet = request(&keys, 1);
    // Any authenticated byte changed (the transmit timestamp of a replay
    // with a new time, the UID, the cookie's key, the tag): refused.
    for (offset, expected) in [
        (45, NtsError::Unauthentic),
        (60, NtsError::Unauthentic),
        (packet.len() - 5, NtsError::Unauthentic),
    ] {
        let mut forged = packet.clone();
        forged[offset] ^= 1;
        assert_eq!(serve(&forged, &keys), Err(expected), "offset {offset}");
    }
    // A cookie from a key this server never had, or rotated out: NAK.
    assert_eq!(
        serve(&packet, &self::keys(2)),
        Err(NtsError::Cookie(CookieError::UnknownKey))
    );
    let mut bad_cookie = packet.clone();
    bad_cookie[48 + 36 + 4 + 30] ^= 1;
    assert_eq!(
        serve(&bad_cookie, &keys),
        Err(NtsError::Cookie(CookieError::Forged))
    );
    assert!(serve(&bad_cookie, &keys).expect_err("nak").earns_nak());
}

#[test]
fn malformed_nts_requests_are_dropped_not_nakked() {
    let keys = keys(1);
    let uid = [0xab; 32];
    let cookie = cookie_for(&keys);
    let c2s = session().c2s;
    let short_uid = build_request(&header(), &[1; 16], &cookie, 0, &c2s, &[9; NONCE_LEN]);
    let mut no_auth = request(&keys, 0);
    no_auth.truncate(48 + 36 + 104);
    let mut auth_not_last = request(&keys, 0);
    auth_not_last.extend_from_slice(&[0x20, 0, 0, 16]);
    auth_not_last.extend_from_slice(&[0; 12]);
    let mut two_cookies = header().to_vec();
    for (kind, body) in [
        (field_type::UNIQUE_IDENTIFIER, &uid[..]),
        (field_type::COOKIE, &cookie[..]),
        (field_type::COOKIE, &cookie[..]),
    ] {
        two_cookies.extend_from_slice(&kind.to_be_bytes());
        two_cookies.extend_from_slice(&u16::try_from(4 + body.len()).unwrap().to_be_bytes());
        two_cookies.extend_from_slice(body);
    }
    let mut bad_placeholder = header().to_vec();
    for (kind, body) in [
        (field_type::UNIQUE_IDENTIFIER, &uid[..]),
        (field_type::COOKIE, &cookie[..]),
        (field_type::COOKIE_PLACEHOLDER, &[0u8; 20][..]),
    ] {
        bad_placeholder.extend_from_slice(&kind.to_be_bytes());
        bad_placeholder.extend_from_slice(&u16::try_from(4 + body.len()).unwrap().to_be_bytes());
        bad_placeholder.extend_from_slice(body);
    }
    bad_placeholder.extend_from_slice(&request(&keys, 0)[48 + 36 + 104..]);
    for (packet, what) in [
        (short_uid, "short uid"),
        (no_auth, "no authenticator"),
        (auth_not_last, "authenticator not last"),
        (two_cookies, "two cookies"),
        (bad_placeholder, "placeholder length"),
    ] {
        let error = find_fields(&packet).expect_err(what);
        assert!(!error.earns_nak(), "{what}: {error}");
    }
}

#[test]
fn a_reply_never_outgrows_a_request_that_asks_for_too_many_cookies() {
    // A request that asks for more cookies than fit in its own length (the
    // placeholders hidden in a tiny body are refused for length; here only
    // the buffer is small).
    let keys = keys(1);
    let packet = request(&keys, 3);
    let fields = find_fields(&packet).expect("ok").expect("nts");
    let auth = authenticate(&packet, &fields, &keys).expect("authentic");
    let mut out = [0u8; 300];
    let pending = write_reply_fields(
        &mut out,
        packet.len(),
        fields.unique_id,
        &auth,
        &keys,
        || [1; NONCE_LEN],
    )
    .expect("fits");
    assert!(pending.len <= 300);
    seal_reply(&mut out, &pending, &auth.session.s2c);
    let cookies = open_reply(&out[..pending.len], &[0xab; 32], &session().s2c).expect("authentic");
    assert_eq!(
        cookies.len(),
        (300 - 48 - 36 - AUTH_OVERHEAD) / COOKIE_EF_LEN
    );
}

proptest! {
    #[test]
    fn any_trailer_is_classified_without_panic(tail in proptest::collection::vec(any::<u8>(), 0..900)) {
        let keys = keys(1);
        let mut packet = header().to_vec();
        packet.extend_from_slice(&tail);
        if let Ok(Some(fields)) = find_fields(&packet) {
            prop_assert!(authenticate(&packet, &fields, &keys).is_err());
        }
    }

    #[test]
    fn any_single_bit_flip_of_a_valid_request_is_refused(bit in 0usize..(48 + 36 + 104 + 104 + 40) * 8) {
        let keys = keys(1);
        let mut packet = request(&keys, 1);
        let byte = bit / 8;
        prop_assume!(byte < packet.len());
        packet[byte] ^= 1 << (bit % 8);
        let outcome = find_fields(&packet).and_then(|f| match f {
            Some(f) => authenticate(&packet, &f, &keys).map(|_| ()),
            None => Err(NtsError::Malformed("not nts")),
        });
        // Flips inside placeholder bodies are the one exception: ignored.
        let placeholder = 48 + 36 + 104 + 4..48 + 36 + 104 + 104;
        prop_assert!(outcome.is_err() || placeholder.contains(&byte), "byte {} accepted", byte);
    }
}
