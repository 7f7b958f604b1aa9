//! chrony's NTS server key file (`ntskeys` in its `ntsdumpdir`), read so a
//! skytime box can follow a chrony server's keys: a mixed fleet in which
//! either accepts the other's cookies. chrony's cookie layout for
//! AES-SIV-CMAC-256 is the one [`crate::cookie`] uses.
//!
//! Format (chrony 4.3 writes `NKS0`; later versions `NKS1`, and read both):
//! ```text
//! NKS0                      NKS1
//! <algorithm> <key age s>   <key age s>
//! <ID> <key hex>            <ID> <key hex> <algorithm>     (4 lines)
//! ```
//! Four keys, oldest first; each ID's two low bits are its slot, and the last
//! key is the *future* one, so the one before it seals new cookies, exactly
//! as [`CookieKeys::current`] picks. Only algorithm 15 (AES-SIV-CMAC-256) is
//! read: chrony 4.4+ built with AES-128-GCM-SIV seals cookies with that
//! (algorithm 30), which this server does not implement.

use crate::aead::SessionKey;
use crate::cookie::{CookieKey, CookieKeys};
use crate::keyfile::{KeyfileError, decode_key};
use std::path::Path;

/// chrony's AEAD id for AES-SIV-CMAC-256 (RFC 8915 §5.1).
const AES_SIV_CMAC_256: u32 = 15;
/// Keys in a chrony key file (`MAX_SERVER_KEYS`).
const CHRONY_KEYS: usize = 4;

/// Whether `text` is a chrony key file rather than skytime's own format.
pub fn is_chrony_format(text: &str) -> bool {
    text.starts_with("NKS0\n") || text.starts_with("NKS1\n")
}

/// Parses a chrony key file; `path` only names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<CookieKeys, KeyfileError> {
    let syntax = |line: usize, problem| KeyfileError::Syntax {
        path: path.to_owned(),
        line,
        problem,
    };
    let mut lines = text.lines();
    let old_format = match lines.next() {
        Some("NKS0") => true,
        Some("NKS1") => false,
        _ => return Err(syntax(1, "not a chrony key file (NKS0 or NKS1)")),
    };
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let mut algorithm = None;
    match (old_format, header.as_slice()) {
        (true, [alg, age]) if age.parse::<f64>().is_ok() => {
            algorithm = Some(alg.parse::<u32>().map_err(|_| syntax(2, "bad algorithm"))?);
        }
        (false, [age]) if age.parse::<f64>().is_ok() => {}
        _ => return Err(syntax(2, "expected the key age line")),
    }
    let mut keys = Vec::with_capacity(CHRONY_KEYS);
    for (index, line) in lines.enumerate() {
        let number = index + 3;
        let words: Vec<&str> = line.split_whitespace().collect();
        let (id, hex, alg) = match (old_format, words.as_slice()) {
            (true, [id, hex]) => (*id, *hex, algorithm),
            (false, [id, hex, alg]) => (*id, *hex, alg.parse::<u32>().ok()),
            _ => return Err(syntax(number, "expected: ID key [algorithm]")),
        };
        if alg != Some(AES_SIV_CMAC_256) {
            return Err(syntax(
                number,
                "only algorithm 15 (AES-SIV-CMAC-256) keys are supported",
            ));
        }
        let id = u32::from_str_radix(id, 16)
            .ok()
            .filter(|_| id.len() == 8)
            .ok_or_else(|| syntax(number, "ID is not 8 hex digits"))?;
        let material = decode_key(hex).ok_or_else(|| syntax(number, "key is not 64 hex digits"))?;
        if let Some(previous) = keys.last().map(|k: &CookieKey| k.id)
            && id.wrapping_sub(previous) % u32::try_from(CHRONY_KEYS).expect("4 slots fit u32") != 1
        {
            return Err(syntax(number, "key IDs are not in chrony's slot order"));
        }
        keys.push(CookieKey {
            id,
            // Only the order matters to a reader: oldest first.
            created_unix_s: index as u64,
            material: SessionKey::from_bytes(material),
        });
    }
    if keys.len() != CHRONY_KEYS {
        return Err(syntax(3, "a chrony key file holds exactly 4 keys"));
    }
    CookieKeys::new(keys).ok_or_else(|| KeyfileError::Empty {
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aead::{KEY_LEN, NONCE_LEN};
    use crate::cookie::{COOKIE_LEN, SessionKeys};

    /// The shape chronyd 4.3 wrote in a test run (keys replaced).
    fn chrony_43_file() -> String {
        let mut text = String::from("NKS0\n15 4.0\n");
        for (id, fill) in [
            ("9086BEC1", "11"),
            ("61E64FCA", "22"),
            ("9F12D9EF", "33"),
            ("258475CC", "44"),
        ] {
            text.push_str(&format!("{id} {}\n", fill.repeat(KEY_LEN)));
        }
        text
    }

    #[test]
    fn a_chrony_43_file_yields_its_four_keys_with_the_one_before_the_future_key_current() {
        let text = chrony_43_file();
        assert!(is_chrony_format(&text));
        let keys = parse(&text, Path::new("ntskeys")).expect("parses");
        let ids: Vec<u32> = keys.keys().iter().map(|k| k.id).collect();
        assert_eq!(ids, [0x9086BEC1, 0x61E64FCA, 0x9F12D9EF, 0x258475CC]);
        assert_eq!(keys.current().id, 0x9F12D9EF);
        assert_eq!(keys.current().material.bytes(), &[0x33; KEY_LEN]);
        // The same in NKS1 form.
        let nks1 = text
            .replacen("NKS0\n15 4.0\n", "NKS1\n4.0\n", 1)
            .lines()
            .skip(2)
            .map(|l| format!("{l} 15\n"))
            .fold("NKS1\n4.0\n".to_string(), |acc, l| acc + &l);
        assert_eq!(parse(&nks1, Path::new("ntskeys")).expect("parses"), keys);
        let mut cookie = [0u8; COOKIE_LEN];
        let session = SessionKeys {
            c2s: SessionKey::from_bytes([1; KEY_LEN]),
            s2c: SessionKey::from_bytes([2; KEY_LEN]),
        };
        keys.seal(&session, &[5; NONCE_LEN], &mut cookie);
        assert_eq!(&cookie[..4], &0x9F12D9EFu32.to_be_bytes());
    }

    #[test]
    fn a_reader_follows_a_chrony_key_file_and_a_writer_refuses_it() {
        use crate::keyring::{KeyRole, Keyring, RotationPolicy};
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("skytime-chrony-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("ntskeys");
        std::fs::write(&path, chrony_43_file()).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let policy = RotationPolicy::default();
        let reader = Keyring::open(&path, KeyRole::Reader, policy, 0).expect("reads");
        assert_eq!(reader.shared().load().current().id, 0x9F12D9EF);
        assert!(matches!(
            Keyring::open(&path, KeyRole::Writer, policy, 0),
            Err(KeyfileError::WrittenByChrony { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            chrony_43_file(),
            "left as chrony wrote it"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn other_algorithms_short_files_and_shuffled_slots_are_refused() {
        let text = chrony_43_file();
        let path = Path::new("ntskeys");
        let gcm = text.replacen("\n15 4.0\n", "\n30 4.0\n", 1);
        assert!(matches!(
            parse(&gcm, path),
            Err(KeyfileError::Syntax { line: 3, .. })
        ));
        let three: String = text.lines().take(5).map(|l| format!("{l}\n")).collect();
        assert!(parse(&three, path).is_err());
        let swapped = text.replace("61E64FCA", "61E64FCB");
        assert!(parse(&swapped, path).is_err());
        assert!(parse("NKS2\n4.0\n", path).is_err());
        assert!(parse("NKS0\n", path).is_err());
        let short_key = text.replace(&"22".repeat(KEY_LEN), "2222");
        assert!(parse(&short_key, path).is_err());
    }
}
