//! One NTS client session for the load generator: session keys and a cookie
//! sealed in process under the server's own cookie keys (what NTS-KE would
//! have handed out), used to build authenticated requests and to check that
//! replies authenticate.

use skytime_nts::aead::SivKey;
use skytime_nts::ef::client::open_reply;
use skytime_nts::ef::field_type;
use skytime_nts::{COOKIE_LEN, CookieKeys, SessionKey, SessionKeys};

/// Room for one request: header, Unique Identifier, Cookie, Authenticator.
pub const MAX_REQUEST_LEN: usize = 256;

/// A client's NTS state, shared read-only by the sender and the receiver.
pub struct NtsSession {
    unique_id: [u8; 32],
    cookie: [u8; COOKIE_LEN],
    keys: SessionKeys,
    /// The C2S key expanded once: the sender seals every request with it.
    c2s: SivKey,
    nonce_prefix: [u8; 8],
}

#[expect(
    clippy::cast_possible_truncation,
    reason = "fields of a request of at most MAX_REQUEST_LEN bytes"
)]
fn put_field_header(out: &mut [u8], at: usize, kind: u16, len: usize) -> usize {
    out[at..at + 2].copy_from_slice(&kind.to_be_bytes());
    out[at + 2..at + 4].copy_from_slice(&(len as u16).to_be_bytes());
    at + 4
}

impl NtsSession {
    /// Fresh session keys and a cookie sealed under `server_keys`.
    pub fn new(server_keys: &CookieKeys) -> anyhow::Result<NtsSession> {
        let random = || SessionKey::random().map_err(|e| anyhow::anyhow!("random: {e}"));
        let keys = SessionKeys {
            c2s: random()?,
            s2c: random()?,
        };
        let unique_id = *random()?.bytes();
        let seed = *random()?.bytes();
        let mut cookie_nonce = [0u8; 16];
        cookie_nonce.copy_from_slice(&seed[..16]);
        let mut cookie = [0u8; COOKIE_LEN];
        server_keys.seal(&keys, &cookie_nonce, &mut cookie);
        let mut nonce_prefix = [0u8; 8];
        nonce_prefix.copy_from_slice(&seed[16..24]);
        Ok(NtsSession {
            unique_id,
            cookie,
            c2s: SivKey::new(&keys.c2s),
            keys,
            nonce_prefix,
        })
    }

    /// Writes an authenticated request (chrony's steady state: one cookie, no
    /// placeholder) with `header` into `out`; its length. `counter` makes the
    /// authenticator's nonce unique. Written in place (RFC 8915 §5.7
    /// layout, as `skytime_nts::ef::client::build_request` builds it), so the
    /// generator can offer as many NTS requests per second as plain ones.
    pub fn write_request(&self, header: &[u8; 48], counter: u64, out: &mut [u8]) -> usize {
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&self.nonce_prefix);
        nonce[8..].copy_from_slice(&counter.to_be_bytes());
        out[..48].copy_from_slice(header);
        let mut at = put_field_header(out, 48, field_type::UNIQUE_IDENTIFIER, 4 + 32);
        out[at..at + 32].copy_from_slice(&self.unique_id);
        at = put_field_header(out, at + 32, field_type::COOKIE, 4 + COOKIE_LEN);
        out[at..at + COOKIE_LEN].copy_from_slice(&self.cookie);
        let auth_offset = at + COOKIE_LEN;
        let tag = self.c2s.seal(&out[..auth_offset], &nonce, &mut []);
        at = put_field_header(out, auth_offset, field_type::AUTHENTICATOR, 4 + 4 + 16 + 16);
        out[at..at + 2].copy_from_slice(&16u16.to_be_bytes());
        out[at + 2..at + 4].copy_from_slice(&16u16.to_be_bytes());
        out[at + 4..at + 20].copy_from_slice(&nonce);
        out[at + 20..at + 36].copy_from_slice(&tag);
        at + 36
    }

    /// Whether `reply` echoes our Unique Identifier and authenticates under
    /// the S2C key.
    pub fn reply_is_authentic(&self, reply: &[u8]) -> bool {
        open_reply(reply, &self.unique_id, &self.keys.s2c).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skytime_nts::CookieKey;
    use skytime_nts::ef::client::build_request;

    #[test]
    fn requests_written_in_place_are_the_ones_the_client_builder_makes() {
        let keys = CookieKeys::new(vec![CookieKey::generate(0).expect("random")]).expect("keys");
        let session = NtsSession::new(&keys).expect("random");
        let header = [0x23; 48];
        let mut out = [0u8; MAX_REQUEST_LEN];
        let len = session.write_request(&header, 7, &mut out);
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&session.nonce_prefix);
        nonce[8..].copy_from_slice(&7u64.to_be_bytes());
        let expected = build_request(
            &header,
            &session.unique_id,
            &session.cookie,
            0,
            &session.keys.c2s,
            &nonce,
        );
        assert_eq!(&out[..len], &expected[..]);
        assert_eq!(keys.open(&session.cookie), Ok(session.keys.clone()));
    }
}
