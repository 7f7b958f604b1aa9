//! NTPv4 (RFC 5905) for a stratum-1 server.
//!
//! A packet codec ([`packet`]), a sans-IO server policy ([`Server`]) that turns
//! (request bytes, source address, receive timestamp, [`SystemState`]) into a
//! [`ServerAction`], and a thin UDP shell ([`NtpServer`]) with one
//! `SO_REUSEPORT` socket per worker, `recvmmsg`/`sendmmsg` batches and kernel
//! timestamps. Access lists, a bounded per-client rate limit, symmetric-key
//! authentication (chrony keyfiles, AES-CMAC, SHA1, MD5), NTS (RFC 8915, the
//! extension fields through `skytime-nts`), chrony's interleaved mode and
//! stateless answers to symmetric-active peers (w32time) are all in the policy.
//!
//! Tests: unit and property tests next to the code; `tests/chrony_client.rs`
//! runs the server in-process against real `chronyd -x`/`-Q` clients (basic,
//! xleave, shared keys) and hostile datagrams; `tests/no_alloc.rs` proves the
//! per-packet path allocates nothing. Fuzzing (nightly):
//! `cd crates/ntp/fuzz && cargo +nightly fuzz run codec -- -max_total_time=60`.
//! Benchmark against chronyd and a bare reflector: `scripts/bench-ntp.sh`.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod access;
pub mod clients;
mod config;
pub mod interleave;
pub mod keys;
mod nts;
pub mod packet;
pub mod precision;
mod server;
mod stats;
mod udp;

pub use access::{AccessList, Subnet};
pub use clients::{ClientSummary, ClientTable, RateLimit, Verdict};
pub use config::{AuthFailureAction, DenyAction, RateLimitConfig, ServerConfig};
pub use keys::{Key, KeyStore, KeyfileError, MacAlgorithm};
pub use packet::{Header, NtpShort, NtpTimestamp};
pub use server::{MIN_OUT_LEN, Outcome, Reply, Server, ServerAction, SystemState};
pub use stats::{IoCounter, ServerStats};
pub use udp::{NtpServer, ServerHandle};

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum NtpError {
    /// The address is taken, not local, or not permitted (port 123 needs privilege).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that failed.
        addr: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A socket could not be created or configured.
    #[error("socket for {addr}: {option}: {source}")]
    Socket {
        /// The listen address being set up.
        addr: SocketAddr,
        /// The call or option that failed.
        option: &'static str,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// `[ntp]` failed validation.
    #[error("invalid [ntp] configuration: {0}")]
    Config(String),
    /// The keyfile could not be read or parsed (no key material is quoted).
    #[error("keyfile {}: {message}", path.display())]
    Keyfile {
        /// The configured keyfile.
        path: PathBuf,
        /// Every problem, with line numbers.
        message: String,
    },
    /// A worker thread could not be started.
    #[error("cannot start an NTP worker thread: {0}")]
    Spawn(std::io::Error),
}
