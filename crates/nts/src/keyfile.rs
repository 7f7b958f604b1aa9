//! The cookie key file: the server keys that seal cookies, persisted so a
//! restart invalidates no cookie, and shared so a fleet accepts each other's.
//!
//! Text, one key a line, oldest first:
//! `<id, 8 hex digits> <created, Unix seconds> <key, 64 hex digits>`; `#`
//! starts a comment. Written atomically (temporary file, fsync, rename) with
//! mode 0600, as it holds secrets.

use crate::aead::{KEY_LEN, SessionKey};
use crate::cookie::{CookieKey, CookieKeys};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const HEADER: &str = "# skytime NTS cookie keys, v1: id created_unix_s key (oldest first). Secret: keep mode 0600.\n";

/// Why the key file could not be read or written (no key material is quoted).
#[derive(Debug, thiserror::Error)]
pub enum KeyfileError {
    /// The file could not be opened, read, written or renamed.
    #[error("cookie key file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A line is not `id created key`.
    #[error("cookie key file {}: line {line}: {problem}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The file holds no key.
    #[error("cookie key file {} holds no key", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file can be read by others than its owner.
    #[error("cookie key file {} has mode {mode:o}; it must not be readable by group or others (chmod 600)", path.display())]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A writer was given chrony's key file: chronyd writes it, and would
    /// not read skytime's format back.
    #[error("cookie key file {} is chrony's (ntsdumpdir); chronyd rotates it: set cookie_key_role = \"reader\"", path.display())]
    WrittenByChrony {
        /// The file.
        path: PathBuf,
    },
    /// The system's random source failed.
    #[error("no randomness for a new cookie key: {0}")]
    Random(getrandom::Error),
}

/// Parses key file text; `path` only names the file in errors.
/// A chrony `ntskeys` file (see [`crate::chrony_keyfile`]) is read too.
pub fn parse(text: &str, path: &Path) -> Result<CookieKeys, KeyfileError> {
    if crate::chrony_keyfile::is_chrony_format(text) {
        return crate::chrony_keyfile::parse(text, path);
    }
    let mut keys = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let syntax = |problem| KeyfileError::Syntax {
            path: path.to_owned(),
            line: index + 1,
            problem,
        };
        let mut words = line.split_whitespace();
        let (Some(id), Some(created), Some(key), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(syntax("expected three fields: id created_unix_s key"));
        };
        let id = u32::from_str_radix(id, 16)
            .ok()
            .filter(|_| id.len() == 8)
            .ok_or_else(|| syntax("id is not 8 hex digits"))?;
        let created_unix_s = created
            .parse::<u64>()
            .map_err(|_| syntax("created is not Unix seconds"))?;
        let material = decode_key(key).ok_or_else(|| syntax("key is not 64 hex digits"))?;
        if keys.iter().any(|k: &CookieKey| k.id == id) {
            return Err(syntax("duplicate key id"));
        }
        keys.push(CookieKey {
            id,
            created_unix_s,
            material: SessionKey::from_bytes(material),
        });
    }
    CookieKeys::new(keys).ok_or_else(|| KeyfileError::Empty {
        path: path.to_owned(),
    })
}

/// The file text for `keys`.
pub fn render(keys: &CookieKeys) -> String {
    let mut text = String::from(HEADER);
    for key in keys.keys() {
        let hex: String = key
            .material
            .bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        text.push_str(&format!("{:08x} {} {hex}\n", key.id, key.created_unix_s));
    }
    text
}

/// One key's hex, as both our key file and chrony's write it.
pub(crate) fn decode_key(hex: &str) -> Option<[u8; KEY_LEN]> {
    if hex.len() != 2 * KEY_LEN || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Reads the key file, refusing one that others can read.
pub fn load(path: &Path) -> Result<CookieKeys, KeyfileError> {
    let io = |source| KeyfileError::Io {
        path: path.to_owned(),
        source,
    };
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyfileError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    parse(&text, path)
}

/// Writes the key file atomically with mode 0600: readers see the old file or
/// the new one, never half of one.
pub fn save(path: &Path, keys: &CookieKeys) -> Result<(), KeyfileError> {
    let io = |source| KeyfileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(render(keys).as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32, created: u64) -> CookieKey {
        CookieKey {
            id,
            created_unix_s: created,
            material: SessionKey::from_bytes([id.to_le_bytes()[0]; KEY_LEN]),
        }
    }

    #[test]
    fn saved_keys_load_back_with_mode_0600() {
        let dir = std::env::temp_dir().join(format!("skytime-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("keys");
        let keys = CookieKeys::new(vec![key(2, 20), key(1, 10)]).expect("keys");
        save(&path, &keys).expect("saves");
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load(&path).expect("loads"), keys);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            load(&path),
            Err(KeyfileError::TooOpen { mode: 0o644, .. })
        ));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn bad_lines_are_named_without_quoting_key_material() {
        let path = Path::new("k");
        let good = format!("0000000a 5 {}", "ab".repeat(32));
        assert!(parse(&good, path).is_ok());
        for (text, needle) in [
            (format!("0000000a 5 {}", "ab".repeat(31)), "64 hex"),
            (format!("a 5 {}", "ab".repeat(32)), "8 hex"),
            (format!("0000000a x {}", "ab".repeat(32)), "Unix seconds"),
            (
                format!("0000000a 5 {} extra", "ab".repeat(32)),
                "three fields",
            ),
            (format!("{good}\n{good}"), "duplicate"),
            (format!("0000000a 5 {}", "zz".repeat(32)), "64 hex"),
        ] {
            let message = parse(&text, path).expect_err(&text).to_string();
            assert!(message.contains(needle), "{message}");
            assert!(!message.contains("abab"), "{message}");
        }
        assert!(matches!(
            parse("# nothing\n", path),
            Err(KeyfileError::Empty { .. })
        ));
    }
}
