//! One NTS client session for the load generator: session keys and a cookie
//! sealed in process under the server's own cookie keys (what NTS-KE would
//! have handed out), used to build authenticated requests and to check that
//! replies authenticate.

use skytime_nts::ef::client::{build_request, open_reply};
use skytime_nts::{COOKIE_LEN, CookieKeys, SessionKey, SessionKeys};

/// Room for one request: header, Unique Identifier, Cookie, Authenticator.
pub const MAX_REQUEST_LEN: usize = 256;

/// A client's NTS state, shared read-only by the sender and the receiver.
pub struct NtsSession {
    unique_id: [u8; 32],
    cookie: [u8; COOKIE_LEN],
    keys: SessionKeys,
    nonce_prefix: [u8; 8],
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
            keys,
            nonce_prefix,
        })
    }

    /// Writes an authenticated request (chrony's steady state: one cookie, no
    /// placeholder) with `header` into `out`; its length. `counter` makes the
    /// authenticator's nonce unique.
    pub fn write_request(&self, header: &[u8; 48], counter: u64, out: &mut [u8]) -> usize {
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&self.nonce_prefix);
        nonce[8..].copy_from_slice(&counter.to_be_bytes());
        let request = build_request(
            header,
            &self.unique_id,
            &self.cookie,
            0,
            &self.keys.c2s,
            &nonce,
        );
        let len = request.len().min(out.len());
        out[..len].copy_from_slice(&request[..len]);
        len
    }

    /// Whether `reply` echoes our Unique Identifier and authenticates under
    /// the S2C key.
    pub fn reply_is_authentic(&self, reply: &[u8]) -> bool {
        open_reply(reply, &self.unique_id, &self.keys.s2c).is_ok()
    }
}
