//! The `[ntp]` section of `skytime.toml`.

use crate::access::{Subnet, default_allow, default_rate_limit_exempt};
use crate::clients::RateLimit;
use crate::keys::KeyStore;
use serde::Deserialize;
use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

/// What a denied client gets.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyAction {
    /// A kiss-o'-death `DENY`, so a misconfigured client stops asking.
    #[default]
    Kod,
    /// Silence: nothing is revealed to the sender.
    Ignore,
}

/// What a request with an unknown key or a bad MAC gets.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthFailureAction {
    /// The RFC 5905 crypto-NAK: a reply whose MAC is a zero key id alone.
    #[default]
    CryptoNak,
    /// No answer, as chrony does.
    Ignore,
}

/// Per-client rate limiting, chrony's algorithm sized for a LAN appliance:
/// it stops a flood from one address, but lets a busy NAT address (hundreds
/// of clients polling every 64 s, bursts of `iburst` after a power cut) and a
/// person querying the box from itself through. chrony limits nothing unless
/// told (`ratelimit` alone means interval 3, burst 8, leak 2: a public-pool
/// setting); ntpd limits only `restrict ... limited` clients (average 8 s).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    /// Off only for benchmarks or a trusted network.
    pub enabled: bool,
    /// log2 of the mean seconds allowed between requests of one client
    /// (chrony's `interval`; 3 = one per 8 s, -3 = eight per second). From -4 to 12.
    #[serde(alias = "interval")]
    pub interval_log2_s: i8,
    /// Requests a quiet client may send back to back (chrony's `burst`). 1 to 255.
    pub burst: u32,
    /// Over the limit, one request in 2^leak gets a KoD `RATE`, the rest are
    /// dropped, so a spoofed flood gets little back (chrony's `leak`). 0 to 4.
    pub leak: u8,
    /// Addresses never limited (still counted). Default: 127.0.0.1 and ::1.
    pub exempt: Vec<Subnet>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            // Eight requests a second on average: ~500 chrony clients behind
            // one NAT address at a 64 s poll, thousands of Windows clients.
            interval_log2_s: -3,
            // 60 clients behind one address starting together with `iburst` (4 each).
            burst: 255,
            leak: 2,
            exempt: default_rate_limit_exempt(),
        }
    }
}

impl RateLimitConfig {
    /// The limit as the client table applies it, or `None` when disabled.
    pub fn compiled(&self) -> Option<RateLimit> {
        if !self.enabled {
            return None;
        }
        let exp = i32::from(self.interval_log2_s.clamp(-30, 30));
        #[expect(
            clippy::cast_possible_truncation,
            reason = "at most 1e9 * 2^30 ns, well inside i64"
        )]
        let interval_ns = (1e9 * 2f64.powi(exp)).round() as i64;
        Some(RateLimit {
            interval_ns: interval_ns.max(1),
            burst: self.burst.max(1),
            leak: self.leak.min(16),
        })
    }
}

/// The `[ntp]` section: where to listen, whom to answer, how hard to work.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Addresses to answer on. Default `0.0.0.0:123` and `[::]:123`.
    pub listen: Vec<SocketAddr>,
    /// Subnets (or single addresses) that may be answered; the most specific
    /// allow/deny rule wins. Default: private, link-local and loopback ranges.
    pub allow: Vec<Subnet>,
    /// Subnets that may not, even inside an allowed one.
    pub deny: Vec<Subnet>,
    /// `kod` (kiss-o'-death DENY) or `ignore`.
    pub deny_action: DenyAction,
    /// Per-client rate limit.
    pub ratelimit: RateLimitConfig,
    /// chrony-format keyfile for symmetric-key authentication (`ID TYPE HEX:...`).
    pub keyfile: Option<PathBuf>,
    /// `crypto_nak` or `ignore` for requests with a bad MAC or unknown key.
    pub auth_failure_action: AuthFailureAction,
    /// Worker threads, each with its own SO_REUSEPORT socket per address; 0 = one per core.
    pub workers: usize,
    /// Client-table slots per worker (bounded memory for rate limiting and `clients`).
    pub client_table_entries: usize,
    /// Saved timestamp pairs per worker for interleaved mode.
    pub interleaved_table_entries: usize,
    /// Datagrams read and sent per system call (recvmmsg/sendmmsg), 1 to 64.
    pub batch_size: usize,
    /// Ask the kernel for transmit timestamps so interleaved clients get the
    /// true send time (off: interleaved replies carry the time after `sendmmsg`).
    pub kernel_tx_timestamps: bool,
    /// Nice level of the worker threads (0 to 19): above 0, a flood yields the
    /// CPU to the PPS and discipline threads even where they cannot get
    /// real-time priority.
    pub worker_nice: i32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec![
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, 123)),
                SocketAddr::from((Ipv6Addr::UNSPECIFIED, 123)),
            ],
            allow: default_allow(),
            deny: Vec::new(),
            deny_action: DenyAction::Kod,
            ratelimit: RateLimitConfig::default(),
            keyfile: None,
            auth_failure_action: AuthFailureAction::CryptoNak,
            workers: 0,
            client_table_entries: 16_384,
            interleaved_table_entries: 16_384,
            batch_size: 32,
            kernel_tx_timestamps: true,
            worker_nice: 0,
        }
    }
}

impl ServerConfig {
    /// Every semantic problem as (key relative to `[ntp]`, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        let mut err = |k: &str, m: String| errs.push((k.to_string(), m));
        if self.listen.is_empty() {
            err("listen", "at least one address is needed".into());
        }
        let mut seen = HashSet::new();
        for a in &self.listen {
            if !seen.insert(a) {
                err("listen", format!("{a} is listed twice"));
            }
        }
        if self.allow.is_empty() {
            err("allow", "empty: no client would ever be answered".into());
        }
        let r = &self.ratelimit;
        if !(-4..=12).contains(&r.interval_log2_s) {
            err(
                "ratelimit.interval_log2_s",
                format!("{} is outside -4..=12", r.interval_log2_s),
            );
        }
        if !(1..=255).contains(&r.burst) {
            err("ratelimit.burst", format!("{} is outside 1..=255", r.burst));
        }
        if r.leak > 4 {
            err("ratelimit.leak", format!("{} is outside 0..=4", r.leak));
        }
        if self.workers > 256 {
            err("workers", format!("{} is more than 256", self.workers));
        }
        if !(16..=1 << 24).contains(&self.client_table_entries) {
            err(
                "client_table_entries",
                format!("{} is outside 16..=16777216", self.client_table_entries),
            );
        }
        if !(16..=1 << 24).contains(&self.interleaved_table_entries) {
            err(
                "interleaved_table_entries",
                format!(
                    "{} is outside 16..=16777216",
                    self.interleaved_table_entries
                ),
            );
        }
        if !(1..=64).contains(&self.batch_size) {
            err(
                "batch_size",
                format!("{} is outside 1..=64", self.batch_size),
            );
        }
        if !(0..=19).contains(&self.worker_nice) {
            err(
                "worker_nice",
                format!("{} is outside 0..=19", self.worker_nice),
            );
        }
        if let Some(path) = &self.keyfile
            && let Err(problems) = KeyStore::load(path)
        {
            for p in problems {
                err("keyfile", format!("{}: {p}", path.display()));
            }
        }
        errs
    }

    /// Worker threads to start: the configured count, or one per core.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_defaults_that_validate() {
        let c: ServerConfig = toml::from_str("").expect("empty section");
        assert_eq!(c, ServerConfig::default());
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.listen.len(), 2);
    }

    #[test]
    fn parses_every_key() {
        let c: ServerConfig = toml::from_str(
            r#"
            listen = ["127.0.0.1:12300", "[::1]:12300"]
            allow = ["10.0.0.0/8", "192.0.2.7"]
            deny = ["10.9.0.0/16"]
            deny_action = "ignore"
            auth_failure_action = "ignore"
            keyfile = "/nonexistent/keys"
            workers = 2
            batch_size = 8
            kernel_tx_timestamps = false
            [ratelimit]
            interval = 1
            burst = 16
            leak = 3
            "#,
        )
        .expect("valid section");
        assert_eq!(c.deny_action, DenyAction::Ignore);
        assert_eq!(c.ratelimit.interval_log2_s, 1);
        assert_eq!(
            c.ratelimit.compiled().map(|r| r.interval_ns),
            Some(2_000_000_000)
        );
        assert_eq!(c.allow[1].to_string(), "192.0.2.7/32");
        let errs = c.validate();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, "keyfile");
    }

    #[test]
    fn validate_names_each_bad_key() {
        let mut c = ServerConfig {
            listen: vec![],
            allow: vec![],
            workers: 1000,
            batch_size: 0,
            ..ServerConfig::default()
        };
        c.ratelimit.burst = 0;
        c.ratelimit.leak = 9;
        c.ratelimit.interval_log2_s = 20;
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        for k in [
            "listen",
            "allow",
            "workers",
            "batch_size",
            "ratelimit.burst",
            "ratelimit.leak",
            "ratelimit.interval_log2_s",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
        }
        assert!(toml::from_str::<ServerConfig>("deny_action = \"maybe\"").is_err());
        assert!(toml::from_str::<ServerConfig>("allow = [\"10.0.0.0/40\"]").is_err());
    }
}
