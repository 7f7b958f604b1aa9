//! Cookies (RFC 8915 §6): the session keys a client got from NTS-KE, sealed
//! under a server key so the server keeps no per-client state.
//!
//! Layout: key id (u32, big endian) ‖ nonce (16) ‖ AES-SIV-CMAC-256 of
//! (C2S key ‖ S2C key) with empty associated data: 100 bytes, byte for byte
//! the layout chrony's NTS server uses, so a shared key could open either's
//! cookies. Encryption and decryption allocate nothing.

use crate::aead::{KEY_LEN, NONCE_LEN, SessionKey, SivKey, TAG_LEN};

/// Bytes of one cookie.
pub const COOKIE_LEN: usize = 4 + NONCE_LEN + TAG_LEN + 2 * KEY_LEN;

/// The two keys a client and server share after NTS-KE (RFC 8915 §5.1).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// Client-to-server: authenticates requests.
    pub c2s: SessionKey,
    /// Server-to-client: authenticates replies and seals fresh cookies.
    pub s2c: SessionKey,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(..)")
    }
}

/// One server key that seals cookies; cookies name it by `id`.
#[derive(Clone, PartialEq, Eq)]
pub struct CookieKey {
    /// Names the key inside every cookie it sealed.
    pub id: u32,
    /// When the key was made, Unix seconds (drives rotation and expiry).
    pub created_unix_s: u64,
    /// The AES-SIV-CMAC-256 key.
    pub material: SessionKey,
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CookieKey({:08x}, created {})",
            self.id, self.created_unix_s
        )
    }
}

impl CookieKey {
    /// A fresh random key; the id is random too, so keys made by different
    /// writers (or after a lost key file) do not collide by accident.
    pub fn generate(created_unix_s: u64) -> Result<CookieKey, getrandom::Error> {
        let mut id = [0u8; 4];
        getrandom::fill(&mut id)?;
        Ok(CookieKey {
            id: u32::from_be_bytes(id),
            created_unix_s,
            material: SessionKey::random()?,
        })
    }
}

/// Why a cookie was not accepted; every case earns the client an NTS NAK.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    /// Not the length this server's cookies have.
    #[error("cookie of the wrong length")]
    WrongLength,
    /// Sealed by a key this server does not hold (rotated out, or foreign).
    #[error("cookie from an unknown or expired key")]
    UnknownKey,
    /// The key is known but the cookie does not decrypt: forged or damaged.
    #[error("cookie does not authenticate")]
    Forged,
}

/// The keys a server accepts cookies from. The newest is a *future* key: held
/// (so fleet readers have it a whole rotation before it is used) but not yet
/// sealing; the one before it seals new cookies (chrony does the same).
/// Each key's AES schedules are expanded once, here, not per cookie.
#[derive(Clone)]
pub struct CookieKeys {
    /// Oldest first; never empty.
    keys: Vec<CookieKey>,
    /// `keys[i]` expanded, same order.
    expanded: Vec<SivKey>,
}

impl PartialEq for CookieKeys {
    fn eq(&self, other: &Self) -> bool {
        // The expanded keys follow from the keys.
        self.keys == other.keys
    }
}

impl Eq for CookieKeys {}

impl std::fmt::Debug for CookieKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieKeys")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl CookieKeys {
    /// A ring from keys in any order; `None` if there are none.
    pub fn new(mut keys: Vec<CookieKey>) -> Option<CookieKeys> {
        if keys.is_empty() {
            return None;
        }
        keys.sort_by_key(|k| k.created_unix_s);
        let expanded = keys.iter().map(|k| SivKey::new(&k.material)).collect();
        Some(CookieKeys { keys, expanded })
    }

    /// The keys, oldest first.
    pub fn keys(&self) -> &[CookieKey] {
        &self.keys
    }

    /// The key that seals new cookies: the second newest (the newest is the
    /// future key), or the only one.
    pub fn current(&self) -> &CookieKey {
        // `new` refuses an empty ring.
        &self.keys[self.current_index()]
    }

    fn current_index(&self) -> usize {
        self.keys.len().saturating_sub(2)
    }

    /// Seals `session` into `out` under the current key with a fresh nonce.
    pub fn seal(&self, session: &SessionKeys, nonce: &[u8; NONCE_LEN], out: &mut [u8; COOKIE_LEN]) {
        let index = self.current_index();
        let key = &self.keys[index];
        let (id, rest) = out.split_at_mut(4);
        id.copy_from_slice(&key.id.to_be_bytes());
        let (nonce_out, rest) = rest.split_at_mut(NONCE_LEN);
        nonce_out.copy_from_slice(nonce);
        let (tag_out, body) = rest.split_at_mut(TAG_LEN);
        body[..KEY_LEN].copy_from_slice(session.c2s.bytes());
        body[KEY_LEN..].copy_from_slice(session.s2c.bytes());
        let tag = self.expanded[index].seal(&[], nonce, body);
        tag_out.copy_from_slice(&tag);
    }

    /// Opens a cookie a client sent back.
    pub fn open(&self, cookie: &[u8]) -> Result<SessionKeys, CookieError> {
        if cookie.len() != COOKIE_LEN {
            return Err(CookieError::WrongLength);
        }
        let id = u32::from_be_bytes([cookie[0], cookie[1], cookie[2], cookie[3]]);
        let index = self
            .keys
            .iter()
            .position(|k| k.id == id)
            .ok_or(CookieError::UnknownKey)?;
        let nonce = &cookie[4..4 + NONCE_LEN];
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&cookie[4 + NONCE_LEN..4 + NONCE_LEN + TAG_LEN]);
        let mut body = [0u8; 2 * KEY_LEN];
        body.copy_from_slice(&cookie[4 + NONCE_LEN + TAG_LEN..]);
        self.expanded[index]
            .open(&[], nonce, &mut body, &tag)
            .map_err(|_| CookieError::Forged)?;
        let mut c2s = [0u8; KEY_LEN];
        let mut s2c = [0u8; KEY_LEN];
        c2s.copy_from_slice(&body[..KEY_LEN]);
        s2c.copy_from_slice(&body[KEY_LEN..]);
        Ok(SessionKeys {
            c2s: SessionKey::from_bytes(c2s),
            s2c: SessionKey::from_bytes(s2c),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(seed: u8) -> SessionKeys {
        SessionKeys {
            c2s: SessionKey::from_bytes([seed; KEY_LEN]),
            s2c: SessionKey::from_bytes([seed.wrapping_add(1); KEY_LEN]),
        }
    }

    fn ring(ids: &[u32]) -> CookieKeys {
        let keys = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| CookieKey {
                id,
                created_unix_s: i as u64,
                material: SessionKey::from_bytes([id.to_le_bytes()[0]; KEY_LEN]),
            })
            .collect();
        CookieKeys::new(keys).expect("non-empty")
    }

    #[test]
    fn a_sealed_cookie_opens_to_the_same_keys_under_any_held_key() {
        let old = ring(&[6, 7]);
        let rotated = ring(&[6, 7, 8]);
        let mut cookie = [0u8; COOKIE_LEN];
        old.seal(&session(3), &[9; NONCE_LEN], &mut cookie);
        assert_eq!(&cookie[..4], &6u32.to_be_bytes(), "7 is the future key");
        assert_eq!(rotated.open(&cookie), Ok(session(3)));
        rotated.seal(&session(5), &[1; NONCE_LEN], &mut cookie);
        assert_eq!(&cookie[..4], &7u32.to_be_bytes());
        assert_eq!(rotated.open(&cookie), Ok(session(5)));
        assert_eq!(
            old.open(&cookie),
            Ok(session(5)),
            "the old ring held the future key"
        );
        assert_eq!(ring(&[6]).open(&cookie), Err(CookieError::UnknownKey));
    }

    #[test]
    fn damaged_short_or_foreign_cookies_are_refused() {
        let keys = ring(&[1]);
        let mut cookie = [0u8; COOKIE_LEN];
        keys.seal(&session(3), &[9; NONCE_LEN], &mut cookie);
        for i in 0..COOKIE_LEN {
            let mut bad = cookie;
            bad[i] ^= 0x40;
            let expected = if i < 4 {
                CookieError::UnknownKey
            } else {
                CookieError::Forged
            };
            assert_eq!(keys.open(&bad), Err(expected), "byte {i}");
        }
        assert_eq!(keys.open(&cookie[1..]), Err(CookieError::WrongLength));
        // Same id, different material: a cookie from another fleet.
        let impostor = CookieKeys::new(vec![CookieKey {
            id: 1,
            created_unix_s: 0,
            material: SessionKey::from_bytes([0xee; KEY_LEN]),
        }])
        .expect("non-empty");
        assert_eq!(impostor.open(&cookie), Err(CookieError::Forged));
    }

    #[test]
    fn cookies_differ_by_nonce_and_hide_the_keys() {
        let keys = ring(&[1]);
        let (mut a, mut b) = ([0u8; COOKIE_LEN], [0u8; COOKIE_LEN]);
        keys.seal(&session(3), &[1; NONCE_LEN], &mut a);
        keys.seal(&session(3), &[2; NONCE_LEN], &mut b);
        assert_ne!(a[20..], b[20..]);
        assert!(!a.windows(KEY_LEN).any(|w| w == [3; KEY_LEN]));
    }
}
