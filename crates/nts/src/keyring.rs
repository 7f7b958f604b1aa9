//! The live set of cookie keys: rotated on a schedule by the one writer,
//! re-read by fleet readers when the shared file changes, and published to
//! the NTP workers through an `ArcSwap` (one lock-free load per batch).

use crate::cookie::{CookieKey, CookieKeys};
use crate::keyfile::{self, KeyfileError};
use arc_swap::ArcSwap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The keys every NTP worker and the NTS-KE server read.
pub type SharedCookieKeys = Arc<ArcSwap<CookieKeys>>;

/// How often a new key starts sealing cookies, and how long old ones open them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RotationPolicy {
    /// A new key after this long.
    pub rotate_every: Duration,
    /// Keys held in all (the current one included): a cookie stays valid for
    /// about `rotate_every * keep`.
    pub keep: usize,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        // A day per key, a week of validity: a client that polls even once a
        // day never has to return to NTS-KE.
        RotationPolicy {
            rotate_every: Duration::from_secs(86_400),
            keep: 7,
        }
    }
}

impl RotationPolicy {
    /// The ring after rotation at `now_unix_s`, or `None` if nothing is due.
    pub fn rotate(
        &self,
        keys: &CookieKeys,
        now_unix_s: u64,
    ) -> Result<Option<CookieKeys>, getrandom::Error> {
        // The newest key's age: it was published as the future key then.
        let newest = keys.keys().last().map_or(0, |k| k.created_unix_s);
        let age_s = now_unix_s.saturating_sub(newest);
        if age_s < self.rotate_every.as_secs() {
            return Ok(None);
        }
        let mut next = keys.keys().to_vec();
        // Never reuse an id still in the ring.
        let mut fresh = CookieKey::generate(now_unix_s)?;
        while next.iter().any(|k| k.id == fresh.id) {
            fresh = CookieKey::generate(now_unix_s)?;
        }
        next.push(fresh);
        let excess = next.len().saturating_sub(self.keep.max(1));
        next.drain(..excess);
        Ok(CookieKeys::new(next))
    }
}

/// Whether this box rotates the key file or follows another box's.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum KeyRole {
    /// Creates, rotates and saves the file (a lone box, or a fleet's writer).
    Writer,
    /// Reads the file another box writes (shared storage or copied), and
    /// reloads it when it changes.
    Reader,
}

/// The key file, its role, and the keys it publishes.
pub struct Keyring {
    path: PathBuf,
    role: KeyRole,
    policy: RotationPolicy,
    shared: SharedCookieKeys,
    seen_modified: Option<SystemTime>,
}

/// What a [`Keyring::tick`] did, for a log line per change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyringChange {
    /// The writer made a new current key (id) and saved the file.
    Rotated(u32),
    /// A reader loaded a changed file; the current key's id.
    Reloaded(u32),
}

impl Keyring {
    /// Opens the key file. A writer creates it when missing and rotates it if
    /// a key is due; a reader needs it to exist.
    pub fn open(
        path: &Path,
        role: KeyRole,
        policy: RotationPolicy,
        now_unix_s: u64,
    ) -> Result<Keyring, KeyfileError> {
        if role == KeyRole::Writer
            && std::fs::read_to_string(path)
                .is_ok_and(|text| crate::chrony_keyfile::is_chrony_format(&text))
        {
            return Err(KeyfileError::WrittenByChrony {
                path: path.to_owned(),
            });
        }
        let keys = match (keyfile::load(path), role) {
            (Ok(keys), KeyRole::Writer) => match policy
                .rotate(&keys, now_unix_s)
                .map_err(KeyfileError::Random)?
            {
                Some(rotated) => {
                    keyfile::save(path, &rotated)?;
                    rotated
                }
                None => keys,
            },
            (Ok(keys), KeyRole::Reader) => keys,
            (Err(KeyfileError::Io { source, .. }), KeyRole::Writer)
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                // The current key and the future one.
                let first = CookieKey::generate(now_unix_s).map_err(KeyfileError::Random)?;
                let mut future = CookieKey::generate(now_unix_s).map_err(KeyfileError::Random)?;
                while future.id == first.id {
                    future = CookieKey::generate(now_unix_s).map_err(KeyfileError::Random)?;
                }
                future.created_unix_s = now_unix_s.saturating_add(1);
                let keys = CookieKeys::new(vec![first, future]).ok_or(KeyfileError::Empty {
                    path: path.to_owned(),
                })?;
                keyfile::save(path, &keys)?;
                keys
            }
            (Err(e), _) => return Err(e),
        };
        Ok(Keyring {
            path: path.to_owned(),
            role,
            policy,
            shared: Arc::new(ArcSwap::from_pointee(keys)),
            seen_modified: modified(path),
        })
    }

    /// The keys, shared with the NTP workers and the NTS-KE server.
    pub fn shared(&self) -> SharedCookieKeys {
        self.shared.clone()
    }

    /// Runs the schedule: call every few seconds to a minute. A writer rotates
    /// when due; a reader reloads a file whose modification time changed.
    /// On error the old keys stay in service.
    pub fn tick(&mut self, now_unix_s: u64) -> Result<Option<KeyringChange>, KeyfileError> {
        match self.role {
            KeyRole::Writer => {
                let current = self.shared.load();
                let Some(rotated) = self
                    .policy
                    .rotate(&current, now_unix_s)
                    .map_err(KeyfileError::Random)?
                else {
                    return Ok(None);
                };
                keyfile::save(&self.path, &rotated)?;
                let id = rotated.current().id;
                self.shared.store(Arc::new(rotated));
                self.seen_modified = modified(&self.path);
                Ok(Some(KeyringChange::Rotated(id)))
            }
            KeyRole::Reader => {
                let now_modified = modified(&self.path);
                if now_modified == self.seen_modified {
                    return Ok(None);
                }
                let keys = keyfile::load(&self.path)?;
                self.seen_modified = now_modified;
                if **self.shared.load() == keys {
                    return Ok(None);
                }
                let id = keys.current().id;
                self.shared.store(Arc::new(keys));
                Ok(Some(KeyringChange::Reloaded(id)))
            }
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aead::{NONCE_LEN, SessionKey};
    use crate::cookie::{COOKIE_LEN, SessionKeys};

    fn temp_path(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("skytime-keyring-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join("cookie-keys")
    }

    fn sealed(keys: &CookieKeys) -> [u8; COOKIE_LEN] {
        let session = SessionKeys {
            c2s: SessionKey::from_bytes([1; 32]),
            s2c: SessionKey::from_bytes([2; 32]),
        };
        let mut cookie = [0u8; COOKIE_LEN];
        keys.seal(&session, &[3; NONCE_LEN], &mut cookie);
        cookie
    }

    #[test]
    fn rotation_keeps_old_keys_for_a_while_then_drops_them() {
        let policy = RotationPolicy {
            rotate_every: Duration::from_secs(100),
            keep: 3,
        };
        let start =
            CookieKeys::new(vec![CookieKey::generate(1000).expect("random")]).expect("keys");
        let cookie = sealed(&start);
        assert_eq!(policy.rotate(&start, 1099).expect("random"), None);
        let second = policy.rotate(&start, 1100).expect("random").expect("due");
        let third = policy.rotate(&second, 1200).expect("random").expect("due");
        assert!(
            third.open(&cookie).is_ok(),
            "a two-rotation-old cookie still opens"
        );
        let fourth = policy.rotate(&third, 1300).expect("random").expect("due");
        assert_eq!(fourth.keys().len(), 3);
        assert!(
            fourth.open(&cookie).is_err(),
            "a cookie from a dropped key is refused"
        );
    }

    #[test]
    fn a_restarted_writer_keeps_its_keys_and_a_reader_follows_the_writer() {
        let path = temp_path("fleet");
        let policy = RotationPolicy {
            rotate_every: Duration::from_secs(100),
            keep: 3,
        };
        let mut writer = Keyring::open(&path, KeyRole::Writer, policy, 1000).expect("creates");
        let cookie = sealed(&writer.shared().load());
        let restarted = Keyring::open(&path, KeyRole::Writer, policy, 1050).expect("loads");
        assert!(restarted.shared().load().open(&cookie).is_ok());
        let mut reader = Keyring::open(&path, KeyRole::Reader, policy, 1050).expect("loads");
        assert!(reader.shared().load().open(&cookie).is_ok());
        // The writer rotates; the reader picks the new key up (mtime may not
        // tick within the same second on every filesystem: force it).
        // A reader already holds the key the writer starts sealing with: it
        // was the future key.
        let next_current = writer.shared().load().keys().last().map(|k| k.id);
        let before_reload = reader.shared().load_full();
        let change = writer.tick(1101).expect("rotates");
        let Some(KeyringChange::Rotated(id)) = change else {
            panic!("{change:?}")
        };
        assert_eq!(Some(id), next_current);
        assert!(before_reload.open(&sealed(&writer.shared().load())).is_ok());
        reader.seen_modified = None;
        assert_eq!(
            reader.tick(1102).expect("reloads"),
            Some(KeyringChange::Reloaded(id))
        );
        let new_cookie = sealed(&writer.shared().load());
        assert!(reader.shared().load().open(&new_cookie).is_ok());
        assert!(reader.shared().load().open(&cookie).is_ok());
        // A reader never writes, and needs the file.
        assert!(
            Keyring::open(&path.with_extension("missing"), KeyRole::Reader, policy, 0).is_err()
        );
        std::fs::remove_dir_all(path.parent().expect("dir")).expect("cleanup");
    }
}
