//! NTS (RFC 8915) on the NTP path: the per-worker state and the glue between
//! the server policy and `skytime_nts::ef`. Per packet: one `ArcSwap` load of
//! the cookie keys, AES-SIV on stack buffers, nonces from a refilled pool;
//! nothing allocates.

use skytime_nts::aead::{NONCE_LEN, NonceSource};
use skytime_nts::ef::{self, Authenticated, MAX_COOKIES, NtsError, PendingSeal};
use skytime_nts::{SessionKey, SharedCookieKeys};

/// What the NTS fields of a request say.
pub(crate) enum NtsCheck<'a> {
    /// No NTS field: an ordinary request.
    Plain,
    /// Cookie opened, authenticator verified.
    Authentic {
        auth: Authenticated,
        unique_id: &'a [u8],
    },
    /// Cookie or authenticator refused: answer with an NTS NAK echoing this.
    Nak { unique_id: &'a [u8] },
    /// Broken NTS fields: drop.
    Malformed,
}

/// An NTS reply waiting for its transmit timestamp before it is sealed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct NtsSeal {
    pending: PendingSeal,
    s2c: SessionKey,
}

/// A worker's NTS state: the shared cookie keys and its own nonce pool.
pub(crate) struct NtsServerState {
    keys: SharedCookieKeys,
    nonces: NonceSource,
}

impl NtsServerState {
    pub(crate) fn new(keys: SharedCookieKeys) -> NtsServerState {
        NtsServerState {
            keys,
            nonces: NonceSource::new(),
        }
    }

    pub(crate) fn check<'a>(&self, request: &'a [u8]) -> NtsCheck<'a> {
        let fields = match ef::find_fields(request) {
            Ok(None) => return NtsCheck::Plain,
            Ok(Some(fields)) => fields,
            Err(_) => return NtsCheck::Malformed,
        };
        match ef::authenticate(request, &fields, &self.keys.load()) {
            Ok(auth) => NtsCheck::Authentic {
                auth,
                unique_id: fields.unique_id,
            },
            Err(e) if e.earns_nak() => NtsCheck::Nak {
                unique_id: fields.unique_id,
            },
            Err(NtsError::Malformed(_) | NtsError::Cookie(_) | NtsError::Unauthentic) => {
                NtsCheck::Malformed
            }
        }
    }

    /// Writes the reply's NTS fields after the header already in `out`;
    /// `None` if they do not fit or no randomness is to be had.
    pub(crate) fn write_reply(
        &mut self,
        out: &mut [u8],
        request_len: usize,
        unique_id: &[u8],
        auth: &Authenticated,
    ) -> Option<NtsSeal> {
        let mut nonces = [[0u8; NONCE_LEN]; MAX_COOKIES + 1];
        for nonce in nonces.iter_mut().take(auth.cookies_wanted + 1) {
            *nonce = self.nonces.next_nonce()?;
        }
        let mut drawn = nonces.iter();
        let pending =
            ef::write_reply_fields(out, request_len, unique_id, auth, &self.keys.load(), || {
                drawn.next().copied().unwrap_or_default()
            })?;
        Some(NtsSeal {
            pending,
            s2c: auth.session.s2c,
        })
    }
}

impl NtsSeal {
    /// Bytes of the whole reply.
    pub(crate) fn len(&self) -> usize {
        self.pending.len
    }

    /// Encrypts and authenticates: call after the transmit timestamp is set.
    pub(crate) fn seal(&self, out: &mut [u8]) {
        ef::seal_reply(out, &self.pending, &self.s2c);
    }
}

/// Appends the Unique Identifier to a NAK already in `out`; its new length.
pub(crate) fn write_nak_fields(
    out: &mut [u8],
    header_len: usize,
    unique_id: &[u8],
) -> Option<usize> {
    let end = header_len + 4 + unique_id.len();
    let field_len = u16::try_from(4 + unique_id.len()).ok()?;
    if end > out.len() {
        return None;
    }
    out[header_len..header_len + 2]
        .copy_from_slice(&ef::field_type::UNIQUE_IDENTIFIER.to_be_bytes());
    out[header_len + 2..header_len + 4].copy_from_slice(&field_len.to_be_bytes());
    out[header_len + 4..end].copy_from_slice(unique_id);
    Some(end)
}
