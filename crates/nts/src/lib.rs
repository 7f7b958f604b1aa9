//! Network Time Security (RFC 8915) for a LAN time server.
//!
//! Sans-IO cores: the NTS-KE record codec ([`record`]), cookies and the
//! rotating server keys that seal them ([`cookie`], [`keyring`], persisted by
//! [`keyfile`]), and the NTS extension fields of NTP ([`ef`]), which the NTP
//! server calls per packet without allocating. With the default `ke-server`
//! feature, the thin shells: certificate loading and live reload ([`tls`]) and
//! the TLS 1.3 NTS-KE listener ([`ke_server`]).
//!
//! Tests: unit and property tests next to the code, `tests/ke_server.rs` for
//! the listener against good and hostile clients; fuzzing (nightly):
//! `cd crates/nts/fuzz && cargo fuzz run ke_records` / `ntp_fields`.

#![warn(missing_docs)]

pub mod aead;
pub mod chrony_keyfile;
pub mod config;
pub mod cookie;
pub mod ef;
#[cfg(feature = "ke-server")]
pub mod ke_server;
pub mod keyfile;
pub mod keyring;
pub mod record;
#[cfg(feature = "ke-server")]
pub mod tls;

pub use aead::SessionKey;
pub use config::{DEFAULT_KE_PORT, NtsConfig};
pub use cookie::{COOKIE_LEN, CookieError, CookieKey, CookieKeys, SessionKeys};
pub use keyring::{KeyRole, Keyring, RotationPolicy, SharedCookieKeys};
