//! Symmetric keys for NTP authentication (RFC 5905 §7.3 legacy MAC, RFC 8573
//! AES-CMAC), read from a keyfile in chrony's format so the same file serves
//! skytime and every chrony client that points at it.
//!
//! Key material never leaves this module in readable form: [`Key`]'s `Debug`
//! prints only the id and algorithm, and no error message quotes a key.

use aes::{Aes128, Aes256};
use cmac::{Cmac, Mac as _, digest::KeyInit};
use md5::Md5;
use sha1::{Digest as _, Sha1};
use sha2::{Sha256, Sha512};
use std::fmt;
use std::path::Path;
use subtle::ConstantTimeEq;

/// Longest digest NTPv4 carries: longer hashes are truncated to this, as chrony does.
pub const MAX_DIGEST_LEN: usize = 20;

/// MAC algorithms a key can use, named as in chrony's keyfile.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MacAlgorithm {
    /// MD5(key || packet): legacy, but what most deployed keyfiles still hold.
    Md5,
    /// SHA1(key || packet): the minimum alongside AES-CMAC.
    Sha1,
    /// SHA256(key || packet), truncated to 20 bytes.
    Sha256,
    /// SHA512(key || packet), truncated to 20 bytes.
    Sha512,
    /// AES-128-CMAC (RFC 8573), the recommended algorithm.
    Aes128Cmac,
    /// AES-256-CMAC, as chrony's AES256.
    Aes256Cmac,
}

impl MacAlgorithm {
    /// Parses chrony's type name (case-insensitive).
    pub fn from_chrony_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "MD5" => MacAlgorithm::Md5,
            "SHA1" => MacAlgorithm::Sha1,
            "SHA256" => MacAlgorithm::Sha256,
            "SHA512" => MacAlgorithm::Sha512,
            "AES128" => MacAlgorithm::Aes128Cmac,
            "AES256" => MacAlgorithm::Aes256Cmac,
            _ => return None,
        })
    }

    /// Digest length on the wire, after truncation.
    pub fn digest_len(self) -> usize {
        match self {
            MacAlgorithm::Md5 | MacAlgorithm::Aes128Cmac | MacAlgorithm::Aes256Cmac => 16,
            MacAlgorithm::Sha1 | MacAlgorithm::Sha256 | MacAlgorithm::Sha512 => 20,
        }
    }
}

#[derive(Clone)]
enum Material {
    Hash(MacAlgorithm, Vec<u8>),
    Aes128(Box<Cmac<Aes128>>),
    Aes256(Box<Cmac<Aes256>>),
}

/// One key: its id, algorithm and (redacted) material, ready to compute MACs
/// without allocating.
#[derive(Clone)]
pub struct Key {
    id: u32,
    algorithm: MacAlgorithm,
    material: Material,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("material", &"<redacted>")
            .finish()
    }
}

impl Key {
    /// Builds a key from raw material; fails (without quoting the material) if
    /// the length does not fit the algorithm.
    pub fn new(id: u32, algorithm: MacAlgorithm, material: &[u8]) -> Result<Key, String> {
        if id == 0 {
            return Err("key id 0 is reserved for the crypto-NAK".into());
        }
        if material.is_empty() {
            return Err(format!("key {id} is empty"));
        }
        let material = match algorithm {
            MacAlgorithm::Aes128Cmac => {
                Material::Aes128(Box::new(Cmac::<Aes128>::new_from_slice(material).map_err(
                    |_| format!("key {id}: AES128 needs 16 bytes, got {}", material.len()),
                )?))
            }
            MacAlgorithm::Aes256Cmac => {
                Material::Aes256(Box::new(Cmac::<Aes256>::new_from_slice(material).map_err(
                    |_| format!("key {id}: AES256 needs 32 bytes, got {}", material.len()),
                )?))
            }
            other => Material::Hash(other, material.to_vec()),
        };
        Ok(Key {
            id,
            algorithm,
            material,
        })
    }

    /// The key id carried in the MAC.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The algorithm this key is used with.
    pub fn algorithm(&self) -> MacAlgorithm {
        self.algorithm
    }

    /// Computes the (truncated) digest of `data` into `out`, returning its length.
    pub fn compute(&self, data: &[u8], out: &mut [u8; MAX_DIGEST_LEN]) -> usize {
        let len = self.algorithm.digest_len();
        match &self.material {
            Material::Hash(MacAlgorithm::Md5, k) => {
                let d = Md5::new().chain_update(k).chain_update(data).finalize();
                out[..len].copy_from_slice(&d[..len]);
            }
            Material::Hash(MacAlgorithm::Sha1, k) => {
                let d = Sha1::new().chain_update(k).chain_update(data).finalize();
                out[..len].copy_from_slice(&d[..len]);
            }
            Material::Hash(MacAlgorithm::Sha256, k) => {
                let d = Sha256::new().chain_update(k).chain_update(data).finalize();
                out[..len].copy_from_slice(&d[..len]);
            }
            Material::Hash(_, k) => {
                let d = Sha512::new().chain_update(k).chain_update(data).finalize();
                out[..len].copy_from_slice(&d[..len]);
            }
            Material::Aes128(mac) => {
                let mut m = (**mac).clone();
                m.update(data);
                out[..len].copy_from_slice(&m.finalize().into_bytes()[..len]);
            }
            Material::Aes256(mac) => {
                let mut m = (**mac).clone();
                m.update(data);
                out[..len].copy_from_slice(&m.finalize().into_bytes()[..len]);
            }
        }
        len
    }

    /// Checks a received digest in constant time.
    pub fn verify(&self, data: &[u8], digest: &[u8]) -> bool {
        let mut buf = [0u8; MAX_DIGEST_LEN];
        let len = self.compute(data, &mut buf);
        digest.len() == len && bool::from(buf[..len].ct_eq(digest))
    }
}

/// Every key the server knows, looked up by id without allocation.
#[derive(Clone, Debug, Default)]
pub struct KeyStore {
    keys: Vec<Key>,
}

/// A keyfile problem, with its 1-based line; never quotes key material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct KeyfileError {
    /// Line of the keyfile (0 when the file could not be read at all).
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl KeyStore {
    /// A store from keys built elsewhere (tests, tools).
    pub fn from_keys(mut keys: Vec<Key>) -> Result<KeyStore, String> {
        keys.sort_by_key(|k| k.id);
        if let Some(w) = keys.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(format!("key {} is defined twice", w[0].id));
        }
        Ok(KeyStore { keys })
    }

    /// Reads a chrony keyfile.
    pub fn load(path: &Path) -> Result<KeyStore, Vec<KeyfileError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![KeyfileError {
                line: 0,
                message: format!("cannot read {}: {e}", path.display()),
            }]
        })?;
        Self::parse(&text)
    }

    /// Parses chrony's keyfile format: `ID [TYPE] KEY` per line, KEY being
    /// `HEX:...`, `ASCII:...` or bare ASCII, TYPE defaulting to MD5; `#` comments.
    pub fn parse(text: &str) -> Result<KeyStore, Vec<KeyfileError>> {
        let mut keys: Vec<Key> = Vec::new();
        let mut errors = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            match parse_key_line(content) {
                Ok(key) if keys.iter().any(|k| k.id == key.id) => errors.push(KeyfileError {
                    line,
                    message: format!("key {} is defined twice", key.id),
                }),
                Ok(key) => keys.push(key),
                Err(message) => errors.push(KeyfileError { line, message }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        keys.sort_by_key(|k| k.id);
        Ok(KeyStore { keys })
    }

    /// The key with this id.
    pub fn get(&self, id: u32) -> Option<&Key> {
        self.keys
            .binary_search_by_key(&id, |k| k.id)
            .ok()
            .map(|i| &self.keys[i])
    }

    /// How many keys are loaded (for the start-up log line; ids only).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True without keys, when authenticated requests all get a crypto-NAK.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn parse_key_line(content: &str) -> Result<Key, String> {
    let fields: Vec<&str> = content.split_whitespace().collect();
    let (id_text, type_text, key_text) = match fields.as_slice() {
        [id, key] => (*id, "MD5", *key),
        [id, ty, key] => (*id, *ty, *key),
        _ => return Err("expected `ID [TYPE] KEY`".into()),
    };
    let id: u32 = id_text
        .parse()
        .map_err(|_| format!("key id `{id_text}` is not a number from 1 to 4294967295"))?;
    let algorithm = MacAlgorithm::from_chrony_name(type_text).ok_or_else(|| {
        format!(
            "key {id}: unsupported type `{type_text}` (MD5, SHA1, SHA256, SHA512, AES128, AES256)"
        )
    })?;
    let material = if let Some(hex) = key_text.strip_prefix("HEX:") {
        decode_hex(hex).ok_or_else(|| format!("key {id}: HEX: value is not valid hex"))?
    } else if let Some(ascii) = key_text.strip_prefix("ASCII:") {
        ascii.as_bytes().to_vec()
    } else {
        key_text.as_bytes().to_vec()
    };
    Key::new(id, algorithm, &material)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chrony_keyfile_forms() {
        let store = KeyStore::parse(
            "# comment\n\
             1 MD5 HEX:0102030405060708090A0B0C0D0E0F10\n\
             2 SHA1 ASCII:secret-two   # trailing comment\n\
             3 plaintext\n\
             10 AES128 HEX:2b7e151628aed2a6abf7158809cf4f3c\n\
             11 aes256 HEX:603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4\n\
             12 SHA256 HEX:00ff\n",
        )
        .expect("valid keyfile");
        assert_eq!(store.len(), 6);
        assert_eq!(store.get(3).map(|k| k.algorithm()), Some(MacAlgorithm::Md5));
        assert_eq!(
            store.get(11).map(|k| k.algorithm()),
            Some(MacAlgorithm::Aes256Cmac)
        );
        assert!(store.get(4).is_none());
    }

    #[test]
    fn errors_name_the_line_and_never_the_key() {
        let errs = KeyStore::parse(
            "1 AES128 HEX:00112233\n2 FOO HEX:00\nx SHA1 ASCII:topsecret\n4 SHA1 HEX:zz\n5 SHA1 ASCII:a\n5 MD5 ASCII:b\n",
        )
        .expect_err("broken keyfile");
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 6]);
        for e in &errs {
            assert!(!e.to_string().contains("topsecret"), "{e}");
            assert!(!e.to_string().contains("00112233"), "{e}");
        }
        let k = Key::new(1, MacAlgorithm::Sha1, b"hunter2").expect("valid");
        assert!(!format!("{k:?}").contains("hunter2"));
    }

    #[test]
    fn aes_cmac_matches_rfc4493_vector() {
        // RFC 4493 example 2: AES-128 CMAC of the 16-byte message.
        let key = decode_hex("2b7e151628aed2a6abf7158809cf4f3c").expect("hex");
        let msg = decode_hex("6bc1bee22e409f96e93d7e117393172a").expect("hex");
        let k = Key::new(1, MacAlgorithm::Aes128Cmac, &key).expect("key");
        let mut out = [0u8; MAX_DIGEST_LEN];
        let len = k.compute(&msg, &mut out);
        assert_eq!(
            out[..len],
            decode_hex("070a16b46b4d4144f79bdd9dd04a287c").expect("hex")[..]
        );
        assert!(k.verify(&msg, &out[..len]));
        out[0] ^= 1;
        assert!(!k.verify(&msg, &out[..len]));
        assert!(!k.verify(&msg, &out[..len - 1]));
    }

    #[test]
    fn keyed_hashes_prefix_the_key() {
        let k = Key::new(1, MacAlgorithm::Md5, b"key").expect("key");
        let mut out = [0u8; MAX_DIGEST_LEN];
        let len = k.compute(b"data", &mut out);
        let expected = Md5::digest(b"keydata");
        assert_eq!(out[..len], expected[..]);
        let k = Key::new(2, MacAlgorithm::Sha512, b"key").expect("key");
        assert_eq!(k.compute(b"data", &mut out), 20);
        assert_eq!(out[..20], Sha512::digest(b"keydata")[..20]);
    }
}
