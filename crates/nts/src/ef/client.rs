//! The client side of the NTS extension fields, for tests, the benchmark and
//! the fleet check: build an authenticated request, open a reply.

use super::{EF_HEADER_LEN, HEADER_LEN, field_type, split_authenticator};
use crate::aead::{self, NONCE_LEN, SessionKey, TAG_LEN};

fn push_ef(out: &mut Vec<u8>, kind: u16, body: &[u8]) {
    out.extend_from_slice(&kind.to_be_bytes());
    let len = u16::try_from(EF_HEADER_LEN + body.len()).expect("an extension field under 64 KiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
}

/// An NTS request: `header` (48 bytes) then Unique Identifier, Cookie,
/// `placeholders` Cookie Placeholders and an Authenticator under `c2s`.
pub fn build_request(
    header: &[u8; HEADER_LEN],
    unique_id: &[u8],
    cookie: &[u8],
    placeholders: usize,
    c2s: &SessionKey,
    nonce: &[u8; NONCE_LEN],
) -> Vec<u8> {
    let mut out = header.to_vec();
    push_ef(&mut out, field_type::UNIQUE_IDENTIFIER, unique_id);
    push_ef(&mut out, field_type::COOKIE, cookie);
    for _ in 0..placeholders {
        push_ef(
            &mut out,
            field_type::COOKIE_PLACEHOLDER,
            &vec![0; cookie.len()],
        );
    }
    let auth_offset = out.len();
    let mut body = Vec::new();
    body.extend_from_slice(&u16::try_from(NONCE_LEN).expect("16").to_be_bytes());
    body.extend_from_slice(&u16::try_from(TAG_LEN).expect("16").to_be_bytes());
    body.extend_from_slice(nonce);
    let tag = aead::seal(c2s, &out[..auth_offset], nonce, &mut []);
    body.extend_from_slice(&tag);
    push_ef(&mut out, field_type::AUTHENTICATOR, &body);
    out
}

/// Checks a reply's Unique Identifier and authenticator under `s2c` and
/// returns the cookies it carries.
pub fn open_reply(
    reply: &[u8],
    unique_id: &[u8],
    s2c: &SessionKey,
) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut pos = HEADER_LEN;
    let mut echoed = false;
    while reply.len() - pos >= EF_HEADER_LEN {
        let kind = u16::from_be_bytes([reply[pos], reply[pos + 1]]);
        let len = usize::from(u16::from_be_bytes([reply[pos + 2], reply[pos + 3]]));
        if len < EF_HEADER_LEN || pos + len > reply.len() {
            return Err("bad extension field");
        }
        let body = &reply[pos + EF_HEADER_LEN..pos + len];
        match kind {
            field_type::UNIQUE_IDENTIFIER => echoed = body == unique_id,
            field_type::AUTHENTICATOR => {
                if !echoed {
                    return Err("Unique Identifier missing or different");
                }
                let (nonce, ciphertext) =
                    split_authenticator(body).map_err(|_| "bad authenticator")?;
                let mut tag = [0u8; TAG_LEN];
                tag.copy_from_slice(&ciphertext[..TAG_LEN]);
                let mut plaintext = ciphertext[TAG_LEN..].to_vec();
                aead::open(s2c, &reply[..pos], nonce, &mut plaintext, &tag)
                    .map_err(|_| "authenticator does not verify")?;
                let mut cookies = Vec::new();
                let mut at = 0;
                while plaintext.len() - at >= EF_HEADER_LEN {
                    let kind = u16::from_be_bytes([plaintext[at], plaintext[at + 1]]);
                    let len =
                        usize::from(u16::from_be_bytes([plaintext[at + 2], plaintext[at + 3]]));
                    if len < EF_HEADER_LEN || at + len > plaintext.len() {
                        return Err("bad encrypted field");
                    }
                    if kind == field_type::COOKIE {
                        cookies.push(plaintext[at + EF_HEADER_LEN..at + len].to_vec());
                    }
                    at += len;
                }
                return Ok(cookies);
            }
            _ => {}
        }
        pos += len;
    }
    Err("no authenticator")
}
