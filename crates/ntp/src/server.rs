//! The sans-IO server policy: (request bytes, source, receive timestamp, system
//! state) in, a [`ServerAction`] out, with the reply written into a caller-owned
//! buffer. No allocation, no lock, no clock read: the shell passes every time in.

use crate::access::{AccessList, SubnetSet};
use crate::clients::{ClientTable, RateLimit, Verdict};
use crate::config::{AuthFailureAction, DenyAction, ServerConfig};
use crate::interleave::TimestampMap;
use crate::keys::{KeyStore, MAX_DIGEST_LEN};
use crate::nts::{NtsCheck, NtsSeal, NtsServerState};
use crate::packet::{
    CRYPTO_NAK_LEN, HEADER_LEN, Header, NtpShort, NtpTimestamp, mode, parse_framing, patch_transmit,
};
use skytime_nts::SharedCookieKeys;
use skytime_timebase::{LeapChange, MonoNanos, UnixNanos};
use std::net::IpAddr;
use std::sync::Arc;

/// What the discipline says, mapped by the daemon from `refclock::Status` once
/// per update; the only input from which LI, stratum and dispersion are served.
#[derive(Clone, Debug, PartialEq)]
pub struct SystemState {
    /// False serves LI=3 and stratum 16, whatever else is set.
    pub synchronised: bool,
    /// Leap second pending at the end of the day (LI 1 or 2).
    pub leap: LeapChange,
    /// Stratum to serve while synchronised (1 for GPS/PPS).
    pub stratum: u8,
    /// `GPS\0`, `PPS\0`, `LOCL`...
    pub reference_id: [u8; 4],
    /// Round-trip delay to the reference (0 for a stratum-1 refclock).
    pub root_delay_ns: f64,
    /// Error bound at `as_of`.
    pub root_dispersion_ns: f64,
    /// How fast the error bound grows after `as_of`.
    pub dispersion_rate_ns_per_s: f64,
    /// When `root_dispersion_ns` held, on the served clock.
    pub as_of: UnixNanos,
    /// When the clock was last updated from the reference.
    pub reference_time: UnixNanos,
}

impl SystemState {
    /// The state before the discipline has said anything: unsynchronised.
    pub fn unsynchronised() -> SystemState {
        SystemState {
            synchronised: false,
            leap: LeapChange::None,
            stratum: 16,
            reference_id: *b"INIT",
            root_delay_ns: 0.0,
            root_dispersion_ns: 0.0,
            dispersion_rate_ns_per_s: 0.0,
            as_of: UnixNanos(0),
            reference_time: UnixNanos(0),
        }
    }

    /// Whether replies may claim synchronisation: the flag, and a stratum that
    /// means something (a synchronised stratum 0 or 16 is a bug upstream, and
    /// is served as unsynchronised rather than trusted).
    pub fn serves_synchronised(&self) -> bool {
        self.synchronised && (1..16).contains(&self.stratum)
    }

    /// Root dispersion grown to `now`.
    pub fn root_dispersion_at(&self, now: UnixNanos) -> f64 {
        let age_s = (now.nanos_since(self.as_of) as f64 / 1e9).max(0.0);
        self.root_dispersion_ns + self.dispersion_rate_ns_per_s.max(0.0) * age_s
    }
}

impl Default for SystemState {
    fn default() -> Self {
        SystemState::unsynchronised()
    }
}

macro_rules! outcomes {
    ($($(#[$doc:meta])* $v:ident => $name:literal,)*) => {
        /// What happened to one request; each has a counter in [`crate::ServerStats`].
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        pub enum Outcome { $($(#[$doc])* $v,)* }
        impl Outcome {
            /// Every outcome, in counter order.
            pub const ALL: &'static [Outcome] = &[$(Outcome::$v,)*];
            /// Stable snake_case name, for metrics labels.
            pub fn name(self) -> &'static str {
                match self { $(Outcome::$v => $name,)* }
            }
        }
    };
}

outcomes! {
    /// Answered in basic mode, unauthenticated.
    Served => "served",
    /// Answered in interleaved mode, unauthenticated.
    ServedInterleaved => "served_interleaved",
    /// A symmetric-active request (w32time's default for a manual peer)
    /// answered statelessly in symmetric passive mode, as chrony does.
    ServedSymmetric => "served_symmetric",
    /// Answered with a valid MAC (basic or interleaved).
    Authenticated => "authenticated",
    /// An NTS request (valid cookie and authenticator) answered with fresh
    /// cookies (basic or interleaved).
    NtsAuthenticated => "nts",
    /// An NTS cookie or authenticator refused: answered with an NTS NAK so
    /// the client returns to NTS-KE.
    NtsNak => "nts_nak",
    /// Bad MAC or unknown key: answered with a crypto-NAK.
    CryptoNak => "crypto_nak",
    /// Bad MAC or unknown key: dropped (`auth_failure_action = "ignore"`).
    AuthFailedIgnored => "auth_failed_ignored",
    /// Not in the allow list: answered with KoD DENY.
    DeniedKod => "denied_kod",
    /// Not in the allow list: dropped.
    DeniedIgnored => "denied_ignored",
    /// Over the rate limit: answered with KoD RATE (one in 2^leak).
    RateLimitedKod => "rate_limited_kod",
    /// Over the rate limit: dropped.
    RateLimitedDropped => "rate_limited_dropped",
    /// Too short, truncated, or with a broken trailer: dropped.
    Malformed => "malformed",
    /// Version 0 or 5 to 7: dropped.
    BadVersion => "bad_version",
    /// Any mode but client (3) and symmetric active (1), including control (6)
    /// and private (7): dropped.
    DroppedMode => "dropped_mode",
}

/// The policy's decision for one request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ServerAction {
    /// Send a reply: call [`Server::finish`] right before the send.
    Reply(Reply),
    /// Send nothing; the outcome says why.
    Drop(Outcome),
}

/// A reply written into the output buffer, waiting for its transmit timestamp.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Bytes of the buffer to send (never more than the request).
    pub len: usize,
    /// What this reply is, for the counters.
    pub outcome: Outcome,
    /// The receive timestamp served, under which the transmit time is saved
    /// for interleaved mode; `None` for replies that carry no time (KoD).
    pub rx_key: Option<NtpTimestamp>,
    /// The client looks like it runs interleaved mode, so the precise kernel
    /// transmit timestamp of this reply is worth asking for.
    pub wants_kernel_tx: bool,
    stamp_transmit: bool,
    mac_key: Option<u32>,
    nts: Option<NtsSeal>,
}

/// The server policy of one worker: its own client table and timestamp map,
/// shared read-only keys and rules.
pub struct Server {
    access: AccessList,
    keys: Arc<KeyStore>,
    limit: Option<RateLimit>,
    /// Sources the limit never applies to (the box itself, by default).
    limit_exempt: SubnetSet,
    deny_action: DenyAction,
    auth_failure: AuthFailureAction,
    clients: ClientTable,
    timestamps: TimestampMap,
    precision: i8,
    rng: u64,
    last_rx_key: NtpTimestamp,
    nts: Option<NtsServerState>,
}

/// Smallest output buffer [`Server::handle`] accepts: a header and the longest MAC.
pub const MIN_OUT_LEN: usize = HEADER_LEN + 4 + MAX_DIGEST_LEN;

impl Server {
    /// A policy for one worker. `precision` is log2 seconds of the served clock.
    pub fn new(config: &ServerConfig, keys: Arc<KeyStore>, precision: i8) -> Server {
        Server {
            access: AccessList::new(&config.allow, &config.deny),
            keys,
            limit: config.ratelimit.compiled(),
            limit_exempt: SubnetSet::new(&config.ratelimit.exempt),
            deny_action: config.deny_action,
            auth_failure: config.auth_failure_action,
            clients: ClientTable::new(config.client_table_entries),
            timestamps: TimestampMap::new(config.interleaved_table_entries),
            precision,
            rng: seed(),
            last_rx_key: NtpTimestamp::ZERO,
            nts: None,
        }
    }

    /// Serves NTS requests whose cookies these keys sealed.
    pub fn with_nts(mut self, cookie_keys: SharedCookieKeys) -> Server {
        self.nts = Some(NtsServerState::new(cookie_keys));
        self
    }

    /// The client table, for the busiest-clients snapshot.
    pub fn clients(&self) -> &ClientTable {
        &self.clients
    }

    /// Decides what to do with one request and writes any reply into `out`
    /// (at least [`MIN_OUT_LEN`] bytes). `rx` is the kernel receive time mapped
    /// onto the served clock, `now` the monotonic time for rate limiting.
    pub fn handle(
        &mut self,
        request: &[u8],
        source: IpAddr,
        rx: UnixNanos,
        now: MonoNanos,
        state: &SystemState,
        out: &mut [u8],
    ) -> ServerAction {
        let Some(req) = Header::parse(request) else {
            return ServerAction::Drop(Outcome::Malformed);
        };
        if !(1..=4).contains(&req.version) {
            return ServerAction::Drop(Outcome::BadVersion);
        }
        // NTPv1 had no mode field: its requests carry 0 there (as ntpd and
        // chrony, take them as client requests).
        let v1_request = req.version == 1 && req.mode == 0;
        // A symmetric-active peer gets the same answer a client would, in
        // mode 2, with no association: no state beyond what a client leaves.
        let symmetric = req.mode == mode::SYMMETRIC_ACTIVE;
        if req.mode != mode::CLIENT && !v1_request && !symmetric {
            return ServerAction::Drop(Outcome::DroppedMode);
        }
        let Ok(framing) = parse_framing(request) else {
            return ServerAction::Drop(Outcome::Malformed);
        };
        if out.len() < MIN_OUT_LEN {
            return ServerAction::Drop(Outcome::Malformed);
        }
        if !self.access.allows(source) {
            return match self.deny_action {
                DenyAction::Kod => self.kiss(&req, *b"DENY", Outcome::DeniedKod, out),
                DenyAction::Ignore => ServerAction::Drop(Outcome::DeniedIgnored),
            };
        }
        let limit = self
            .limit
            .as_ref()
            .filter(|_| !self.limit_exempt.contains(source));
        if self.clients.record(source, now, limit) == Verdict::Limited {
            let leak = self.limit.map_or(0, |l| l.leak);
            let mask = (1u64 << leak) - 1;
            return if self.next_random() & mask == 0 {
                self.kiss(&req, *b"RATE", Outcome::RateLimitedKod, out)
            } else {
                ServerAction::Drop(Outcome::RateLimitedDropped)
            };
        }

        // NTS first: its fields are extension fields, never a legacy MAC.
        let mut nts_request = None;
        if let Some(nts) = self.nts.as_ref().filter(|_| !symmetric) {
            match nts.check(request) {
                NtsCheck::Plain => {}
                NtsCheck::Authentic { auth, unique_id } => {
                    self.clients.mark_nts(source);
                    nts_request = Some((auth, unique_id));
                }
                NtsCheck::Nak { unique_id } => return self.nts_nak(&req, unique_id, out),
                NtsCheck::Malformed => return ServerAction::Drop(Outcome::Malformed),
            }
        }

        // Authentication: a valid MAC earns a MAC'd reply with the same key.
        let mut mac_key = None;
        let mut outcome = if nts_request.is_some() {
            Outcome::NtsAuthenticated
        } else {
            Outcome::Served
        };
        if let Some(mac) = framing.mac.filter(|_| nts_request.is_none()) {
            if mac.digest.is_empty() {
                // A crypto-NAK is something a server sends, never a request.
                return ServerAction::Drop(Outcome::Malformed);
            }
            let valid = self
                .keys
                .get(mac.key_id)
                .is_some_and(|k| k.verify(&request[..mac.offset], mac.digest));
            if valid {
                mac_key = Some(mac.key_id);
                outcome = Outcome::Authenticated;
            } else if self.auth_failure == AuthFailureAction::Ignore {
                return ServerAction::Drop(Outcome::AuthFailedIgnored);
            } else {
                outcome = Outcome::CryptoNak;
            }
        }

        // A receive timestamp doubles as the key of the interleaved map, so it
        // must not repeat one still saved (a burst inside one clock tick).
        let mut rx_key = NtpTimestamp::from_unix(rx);
        let behind = self.last_rx_key.0.wrapping_sub(rx_key.0);
        if behind < 1 << 32 {
            // Same or earlier than the last one served, within a second: a burst
            // inside one clock tick. Stay strictly increasing.
            rx_key = NtpTimestamp(self.last_rx_key.0.wrapping_add(1));
        }
        for _ in 0..8 {
            if !self.timestamps.contains(rx_key) {
                break;
            }
            rx_key = NtpTimestamp(rx_key.0.wrapping_add(1));
        }
        self.last_rx_key = rx_key;

        // A symmetric peer's origin and receive fields are always set; its
        // interleaved mode is not served.
        let looks_interleaved =
            !symmetric && !req.origin_ts.is_zero() && req.receive_ts != req.transmit_ts;
        let saved_tx = if looks_interleaved {
            self.timestamps.get(req.origin_ts)
        } else {
            None
        };
        let (origin_ts, transmit_ts) = match saved_tx {
            Some(tx) => (req.receive_ts, tx),
            None => (req.transmit_ts, NtpTimestamp::ZERO),
        };
        if saved_tx.is_some() && outcome == Outcome::Served {
            outcome = Outcome::ServedInterleaved;
        }
        if symmetric && outcome == Outcome::Served {
            outcome = Outcome::ServedSymmetric;
        }

        let synced = state.serves_synchronised();
        let header = Header {
            leap: if synced { leap_bits(state.leap) } else { 3 },
            version: req.version,
            mode: reply_mode(req.mode),
            stratum: if synced { state.stratum } else { 16 },
            poll: req.poll,
            precision: self.precision,
            root_delay: NtpShort::from_nanos_ceil(state.root_delay_ns),
            root_dispersion: NtpShort::from_nanos_ceil(state.root_dispersion_at(rx)),
            reference_id: state.reference_id,
            reference_ts: if state.reference_time.0 == 0 {
                NtpTimestamp::ZERO
            } else {
                NtpTimestamp::from_unix(state.reference_time)
            },
            origin_ts,
            receive_ts: rx_key,
            transmit_ts,
        };
        header.write(out);
        let mut nts = None;
        if let (Some((auth, unique_id)), Some(state)) = (&nts_request, &mut self.nts) {
            match state.write_reply(out, request.len(), unique_id, auth) {
                Some(seal) => nts = Some(seal),
                None => return ServerAction::Drop(Outcome::Malformed),
            }
        }
        let len = match (outcome, mac_key.and_then(|id| self.keys.get(id))) {
            _ if nts.is_some() => nts.map_or(HEADER_LEN, |n| n.len()),
            (Outcome::CryptoNak, _) => {
                out[HEADER_LEN..HEADER_LEN + CRYPTO_NAK_LEN].fill(0);
                HEADER_LEN + CRYPTO_NAK_LEN
            }
            (_, Some(key)) => HEADER_LEN + 4 + key.algorithm().digest_len(),
            _ => HEADER_LEN,
        };
        ServerAction::Reply(Reply {
            len,
            outcome,
            rx_key: Some(rx_key),
            wants_kernel_tx: looks_interleaved,
            stamp_transmit: saved_tx.is_none(),
            mac_key,
            nts,
        })
    }

    /// Stamps the transmit timestamp (basic mode) and appends the MAC: the last
    /// step before the send, so `transmit` should be read just before it.
    /// Returns the transmit timestamp the reply carries.
    pub fn finish(&self, reply: &Reply, out: &mut [u8], transmit: UnixNanos) -> NtpTimestamp {
        let mut tx = NtpTimestamp::from_unix(transmit);
        if reply.stamp_transmit && reply.rx_key.is_some() {
            if Some(tx) == reply.rx_key {
                // T3 == T2 would make the reply look like an interleaved one.
                tx = NtpTimestamp(tx.0.wrapping_add(1));
            }
            patch_transmit(out, tx);
        }
        if let Some(nts) = &reply.nts {
            nts.seal(out);
        }
        if let Some(key) = reply.mac_key.and_then(|id| self.keys.get(id)) {
            let mut digest = [0u8; MAX_DIGEST_LEN];
            let n = key.compute(&out[..HEADER_LEN], &mut digest);
            out[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&key.id().to_be_bytes());
            out[HEADER_LEN + 4..HEADER_LEN + 4 + n].copy_from_slice(&digest[..n]);
        }
        tx
    }

    /// Saves when a reply actually left (the user-space time after the send,
    /// refined later by [`Server::refine_transmit`] with the kernel's).
    pub fn record_transmit(&mut self, reply: &Reply, sent: UnixNanos) {
        if let Some(rx) = reply.rx_key {
            self.timestamps.insert(rx, NtpTimestamp::from_unix(sent));
        }
    }

    /// Replaces the saved transmit time of the reply with receive timestamp
    /// `rx` by the kernel's transmit timestamp, if the entry is still there.
    pub fn refine_transmit(&mut self, rx: NtpTimestamp, sent: UnixNanos) -> bool {
        self.timestamps.refine(rx, NtpTimestamp::from_unix(sent))
    }

    fn kiss(
        &mut self,
        req: &Header,
        code: [u8; 4],
        outcome: Outcome,
        out: &mut [u8],
    ) -> ServerAction {
        // RFC 5905 §7.4: stratum 0 and the kiss code; the origin timestamp lets
        // the client match it, and no time is revealed.
        let header = Header {
            leap: 3,
            version: req.version,
            mode: reply_mode(req.mode),
            stratum: 0,
            poll: req.poll,
            precision: self.precision,
            reference_id: code,
            origin_ts: req.transmit_ts,
            ..Header::default()
        };
        header.write(out);
        ServerAction::Reply(Reply {
            len: HEADER_LEN,
            outcome,
            rx_key: None,
            wants_kernel_tx: false,
            stamp_transmit: false,
            mac_key: None,
            nts: None,
        })
    }

    /// RFC 8915 §5.7: a KoD with kiss code NTSN and the request's Unique
    /// Identifier, unauthenticated (the server has no usable key).
    fn nts_nak(&mut self, req: &Header, unique_id: &[u8], out: &mut [u8]) -> ServerAction {
        let ServerAction::Reply(mut reply) = self.kiss(req, *b"NTSN", Outcome::NtsNak, out) else {
            return ServerAction::Drop(Outcome::Malformed);
        };
        match crate::nts::write_nak_fields(out, HEADER_LEN, unique_id) {
            Some(len) => {
                reply.len = len;
                ServerAction::Reply(reply)
            }
            None => ServerAction::Drop(Outcome::Malformed),
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: enough to spread KoDs, and cheap per packet.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// Mode 2 answers mode 1; everything else answered is a client request.
fn reply_mode(request_mode: u8) -> u8 {
    if request_mode == mode::SYMMETRIC_ACTIVE {
        mode::SYMMETRIC_PASSIVE
    } else {
        mode::SERVER
    }
}

fn leap_bits(leap: LeapChange) -> u8 {
    match leap {
        LeapChange::None => 0,
        LeapChange::Insert => 1,
        LeapChange::Delete => 2,
    }
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(0x5eed_u64) | 1
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "server_nts_tests.rs"]
mod nts_tests;

#[cfg(test)]
#[path = "server_symmetric_tests.rs"]
mod symmetric_tests;
