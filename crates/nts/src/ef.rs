//! NTS extension fields of NTPv4 (RFC 8915 §5), sans-IO and allocation-free:
//! find and check the Unique Identifier, Cookie, Cookie Placeholder and
//! Authenticator fields of a request; write the reply's fields in two steps
//! (cookies before the transmit timestamp is known, the authenticator after).

use crate::aead::{self, NONCE_LEN, SessionKey, TAG_LEN};
use crate::cookie::{COOKIE_LEN, CookieError, CookieKeys, SessionKeys};

/// Extension field types (RFC 8915 §7.5).
pub mod field_type {
    /// Echoed by the server so the client can match replies.
    pub const UNIQUE_IDENTIFIER: u16 = 0x0104;
    /// A cookie from NTS-KE or a previous reply.
    pub const COOKIE: u16 = 0x0204;
    /// Asks for one more cookie; as long as a cookie, so replies do not amplify.
    pub const COOKIE_PLACEHOLDER: u16 = 0x0304;
    /// Nonce and AEAD ciphertext over everything before it.
    pub const AUTHENTICATOR: u16 = 0x0404;
}

/// Bytes of an NTP header, after which extension fields begin.
const HEADER_LEN: usize = 48;
const EF_HEADER_LEN: usize = 4;
/// RFC 8915 §5.3: a Unique Identifier has at least 32 bytes.
const MIN_UNIQUE_ID_LEN: usize = 32;
/// The most cookies one reply carries (RFC 8915 §4.1.6 suggests eight).
pub const MAX_COOKIES: usize = 8;
/// The longest encrypted part of a request this server decrypts (a packet
/// read from the socket is at most 1 KiB anyway).
const MAX_CIPHERTEXT_LEN: usize = 1024;
/// Bytes a reply's authenticator adds besides its cookies: field header,
/// nonce/ciphertext lengths, nonce, tag.
const AUTH_OVERHEAD: usize = EF_HEADER_LEN + 4 + NONCE_LEN + TAG_LEN;
/// Bytes one cookie takes inside the reply's ciphertext.
const COOKIE_EF_LEN: usize = EF_HEADER_LEN + COOKIE_LEN;

/// Why a request that carries NTS fields is not an NTS request we can serve.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NtsError {
    /// Fields missing, repeated, misplaced or of bad length: dropped silently
    /// (RFC 8915 §5.7), since there is no key to answer with.
    #[error("malformed NTS extension fields: {0}")]
    Malformed(&'static str),
    /// The cookie cannot be opened: answered with a NAK so the client
    /// returns to NTS-KE.
    #[error("{0}")]
    Cookie(CookieError),
    /// The authenticator does not verify under the cookie's C2S key
    /// (forged, replayed under another cookie, or damaged): NAK.
    #[error("authenticator does not verify")]
    Unauthentic,
}

impl NtsError {
    /// Whether this failure is answered with an NTS NAK (kiss code NTSN).
    pub fn earns_nak(&self) -> bool {
        !matches!(self, NtsError::Malformed(_))
    }
}

/// Where the NTS fields of a request are.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NtsFields<'a> {
    /// Body of the Unique Identifier field, echoed in the reply.
    pub unique_id: &'a [u8],
    /// Body of the one Cookie field.
    pub cookie: &'a [u8],
    /// Cookie Placeholders outside the encrypted part.
    pub placeholders: usize,
    /// Offset of the Authenticator field: it authenticates `..auth_offset`.
    pub auth_offset: usize,
    nonce: &'a [u8],
    ciphertext: &'a [u8],
}

/// Finds the NTS fields of a request. `Ok(None)`: no NTS field at all (a
/// plain request). The packet's framing must already have been checked.
pub fn find_fields(packet: &[u8]) -> Result<Option<NtsFields<'_>>, NtsError> {
    let mut unique_id = None;
    let mut cookie = None;
    let mut placeholders = 0;
    let mut auth = None;
    let mut any_nts = false;
    let mut pos = HEADER_LEN;
    while packet.len() - pos >= EF_HEADER_LEN {
        let kind = u16::from_be_bytes([packet[pos], packet[pos + 1]]);
        let len = usize::from(u16::from_be_bytes([packet[pos + 2], packet[pos + 3]]));
        if len < EF_HEADER_LEN || pos + len > packet.len() {
            // A MAC or junk: only an error if NTS fields came before it.
            break;
        }
        let body = &packet[pos + EF_HEADER_LEN..pos + len];
        match kind {
            field_type::UNIQUE_IDENTIFIER if unique_id.replace(body).is_some() => {
                return Err(NtsError::Malformed("two Unique Identifiers"));
            }
            field_type::COOKIE if cookie.replace(body).is_some() => {
                return Err(NtsError::Malformed("two Cookies"));
            }
            field_type::COOKIE_PLACEHOLDER => placeholders += 1,
            field_type::AUTHENTICATOR => {
                if pos + len != packet.len() {
                    return Err(NtsError::Malformed("Authenticator is not the last field"));
                }
                auth = Some((pos, body));
            }
            _ => {}
        }
        any_nts |= matches!(
            kind,
            field_type::UNIQUE_IDENTIFIER
                | field_type::COOKIE
                | field_type::COOKIE_PLACEHOLDER
                | field_type::AUTHENTICATOR
        );
        pos += len;
    }
    if !any_nts {
        return Ok(None);
    }
    let unique_id = unique_id.ok_or(NtsError::Malformed("no Unique Identifier"))?;
    if unique_id.len() < MIN_UNIQUE_ID_LEN {
        return Err(NtsError::Malformed(
            "Unique Identifier shorter than 32 bytes",
        ));
    }
    let cookie = cookie.ok_or(NtsError::Malformed("no Cookie"))?;
    let (auth_offset, auth_body) = auth.ok_or(NtsError::Malformed("no Authenticator"))?;
    let (nonce, ciphertext) = split_authenticator(auth_body)?;
    let fields = NtsFields {
        unique_id,
        cookie,
        placeholders,
        auth_offset,
        nonce,
        ciphertext,
    };
    // Placeholders must match the cookie's length (RFC 8915 §5.5).
    let mut pos = HEADER_LEN;
    while pos < auth_offset {
        let kind = u16::from_be_bytes([packet[pos], packet[pos + 1]]);
        let len = usize::from(u16::from_be_bytes([packet[pos + 2], packet[pos + 3]]));
        if kind == field_type::COOKIE_PLACEHOLDER && len - EF_HEADER_LEN != cookie.len() {
            return Err(NtsError::Malformed("placeholder and cookie lengths differ"));
        }
        pos += len;
    }
    Ok(Some(fields))
}

fn split_authenticator(body: &[u8]) -> Result<(&[u8], &[u8]), NtsError> {
    let bad = NtsError::Malformed("Authenticator lengths do not fit");
    if body.len() < 4 {
        return Err(bad);
    }
    let nonce_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let ciphertext_len = usize::from(u16::from_be_bytes([body[2], body[3]]));
    let nonce_end = 4 + nonce_len.next_multiple_of(4);
    let ciphertext_end = nonce_end + ciphertext_len.next_multiple_of(4);
    if nonce_len < NONCE_LEN || ciphertext_len < TAG_LEN || ciphertext_end > body.len() {
        return Err(bad);
    }
    if ciphertext_len > MAX_CIPHERTEXT_LEN {
        return Err(NtsError::Malformed("Authenticator ciphertext too long"));
    }
    Ok((
        &body[4..4 + nonce_len],
        &body[nonce_end..nonce_end + ciphertext_len],
    ))
}

/// A request whose cookie opened and whose authenticator verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    /// The client's session keys, from its cookie.
    pub session: SessionKeys,
    /// Cookies the reply should carry: the spent one plus each placeholder,
    /// encrypted or not, at most [`MAX_COOKIES`].
    pub cookies_wanted: usize,
}

/// Opens the cookie and verifies the authenticator of `packet`, whose fields
/// [`find_fields`] found.
pub fn authenticate(
    packet: &[u8],
    fields: &NtsFields<'_>,
    keys: &CookieKeys,
) -> Result<Authenticated, NtsError> {
    let session = keys.open(fields.cookie).map_err(NtsError::Cookie)?;
    let mut buf = [0u8; MAX_CIPHERTEXT_LEN];
    let (tag, encrypted) = fields.ciphertext.split_at(TAG_LEN);
    let plaintext = &mut buf[..encrypted.len()];
    plaintext.copy_from_slice(encrypted);
    let mut tag_bytes = [0u8; TAG_LEN];
    tag_bytes.copy_from_slice(tag);
    aead::open(
        &session.c2s,
        &packet[..fields.auth_offset],
        fields.nonce,
        plaintext,
        &tag_bytes,
    )
    .map_err(|_| NtsError::Unauthentic)?;
    let mut cookies_wanted = 1 + fields.placeholders;
    // Encrypted fields: only placeholders matter to a server.
    let mut pos = 0;
    while plaintext.len() - pos >= EF_HEADER_LEN {
        let kind = u16::from_be_bytes([plaintext[pos], plaintext[pos + 1]]);
        let len = usize::from(u16::from_be_bytes([plaintext[pos + 2], plaintext[pos + 3]]));
        if len < EF_HEADER_LEN || pos + len > plaintext.len() {
            return Err(NtsError::Malformed("bad encrypted extension field"));
        }
        if kind == field_type::COOKIE_PLACEHOLDER {
            if len - EF_HEADER_LEN != fields.cookie.len() {
                return Err(NtsError::Malformed("placeholder and cookie lengths differ"));
            }
            cookies_wanted += 1;
        }
        pos += len;
    }
    Ok(Authenticated {
        session,
        cookies_wanted: cookies_wanted.min(MAX_COOKIES),
    })
}

/// A reply's NTS fields, written but not yet sealed: what
/// [`seal_reply`] needs once the transmit timestamp is in place.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PendingSeal {
    auth_offset: usize,
    plaintext_len: usize,
    /// Total reply length.
    pub len: usize,
}

/// Writes the Unique Identifier echo and an authenticator holding fresh
/// cookies (plaintext for now) after the 48-byte header in `out`. The reply
/// is never longer than `request_len` (no amplification): it carries as many
/// cookies as fit, and pads up to the request's length like chrony does.
/// `nonces` supplies the cookie nonces and then the authenticator's.
pub fn write_reply_fields(
    out: &mut [u8],
    request_len: usize,
    unique_id: &[u8],
    auth: &Authenticated,
    keys: &CookieKeys,
    mut nonces: impl FnMut() -> [u8; NONCE_LEN],
) -> Option<PendingSeal> {
    let limit = request_len.min(out.len());
    let uid_end = HEADER_LEN + EF_HEADER_LEN + unique_id.len();
    if uid_end + AUTH_OVERHEAD > limit || !unique_id.len().is_multiple_of(4) {
        return None;
    }
    write_ef_header(
        out,
        HEADER_LEN,
        field_type::UNIQUE_IDENTIFIER,
        EF_HEADER_LEN + unique_id.len(),
    )?;
    out[HEADER_LEN + EF_HEADER_LEN..uid_end].copy_from_slice(unique_id);
    let room = (limit - uid_end - AUTH_OVERHEAD) / COOKIE_EF_LEN;
    let cookies = auth.cookies_wanted.min(room);
    let plaintext_len = cookies * COOKIE_EF_LEN;
    let auth_offset = uid_end;
    let auth_len = (limit - auth_offset) & !3;
    write_ef_header(out, auth_offset, field_type::AUTHENTICATOR, auth_len)?;
    let body = auth_offset + EF_HEADER_LEN;
    out[body..body + 2].copy_from_slice(&u16::try_from(NONCE_LEN).ok()?.to_be_bytes());
    let ciphertext_len = u16::try_from(TAG_LEN + plaintext_len).ok()?;
    out[body + 2..body + 4].copy_from_slice(&ciphertext_len.to_be_bytes());
    let plaintext_start = body + 4 + NONCE_LEN + TAG_LEN;
    for i in 0..cookies {
        let at = plaintext_start + i * COOKIE_EF_LEN;
        write_ef_header(out, at, field_type::COOKIE, COOKIE_EF_LEN)?;
        let mut cookie = [0u8; COOKIE_LEN];
        keys.seal(&auth.session, &nonces(), &mut cookie);
        out[at + EF_HEADER_LEN..at + COOKIE_EF_LEN].copy_from_slice(&cookie);
    }
    let nonce = nonces();
    out[body + 4..body + 4 + NONCE_LEN].copy_from_slice(&nonce);
    let end = auth_offset + auth_len;
    out[plaintext_start + plaintext_len..end].fill(0);
    Some(PendingSeal {
        auth_offset,
        plaintext_len,
        len: end,
    })
}

/// Encrypts the reply's cookies under the S2C key, authenticating every byte
/// before the authenticator: the last step before the send.
pub fn seal_reply(out: &mut [u8], pending: &PendingSeal, s2c: &SessionKey) {
    let body = pending.auth_offset + EF_HEADER_LEN;
    let (associated, rest) = out.split_at_mut(pending.auth_offset);
    let rest = &mut rest[EF_HEADER_LEN..];
    let (nonce_and_tag, plaintext) = rest[4..].split_at_mut(NONCE_LEN + TAG_LEN);
    let (nonce, tag_out) = nonce_and_tag.split_at_mut(NONCE_LEN);
    let tag = aead::seal(
        s2c,
        associated,
        nonce,
        &mut plaintext[..pending.plaintext_len],
    );
    tag_out.copy_from_slice(&tag);
    debug_assert!(body + 4 + NONCE_LEN + TAG_LEN + pending.plaintext_len <= pending.len);
}

/// `None` when `len` does not fit the field's 16 bits (never for a UDP-sized reply).
fn write_ef_header(out: &mut [u8], at: usize, kind: u16, len: usize) -> Option<()> {
    out[at..at + 2].copy_from_slice(&kind.to_be_bytes());
    out[at + 2..at + 4].copy_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
    Some(())
}

#[cfg(any(test, feature = "client"))]
pub mod client;

#[cfg(test)]
#[path = "ef_tests.rs"]
mod tests;
