//! The per-client table: request counts for `skytimectl clients` and the
//! chrony-like rate limit, in a fixed-size set-associative table.
//!
//! The table never grows: a flood from spoofed sources only evicts the least
//! recently seen entry of one small set, so memory is bounded by configuration
//! and a legitimate client that is evicted just starts again with a full burst.
//! Set selection uses a keyed hash seeded per table, so an attacker cannot aim
//! addresses at the set a victim lives in.

use crate::access::canonical;
use skytime_timebase::MonoNanos;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv6Addr};

/// Entries per set; eviction picks the least recently seen of these.
const WAYS: usize = 4;

/// The rate limit in the units the table uses.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Mean interval between answered requests allowed to one client.
    pub interval_ns: i64,
    /// Requests a client may send back to back after being quiet.
    pub burst: u32,
    /// Over the limit, one request in 2^leak gets a KoD RATE, the rest are dropped.
    pub leak: u8,
}

/// The table's decision for one request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit (or no limit configured).
    Allow,
    /// Over the limit.
    Limited,
}

/// What `skytimectl clients` shows about one client.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ClientSummary {
    /// Source address (IPv4-mapped addresses shown as IPv4).
    pub addr: IpAddr,
    /// Requests seen since the client entered the table.
    pub requests: u64,
    /// How many of them were over the rate limit.
    pub limited: u64,
    /// How many were answered with NTS authentication (this client uses NTS).
    pub nts: u64,
    /// When the last request arrived, on the monotonic clock.
    pub last_seen: MonoNanos,
}

#[derive(Copy, Clone, Default)]
struct Slot {
    addr: u128,
    requests: u64,
    limited: u64,
    nts: u64,
    /// GCRA theoretical arrival time: the request is allowed while
    /// `tat <= now + (burst - 1) * interval`.
    tat_ns: i64,
    last_seen_ns: i64,
}

/// Fixed-size client table; one per worker, so no locking.
pub struct ClientTable {
    slots: Box<[Slot]>,
    set_mask: usize,
    /// Random per table: the key of [`ClientTable::set_of`].
    keys: [u64; 2],
}

impl ClientTable {
    /// A table of at least `entries` slots (rounded up to a power of two, at least one set).
    pub fn new(entries: usize) -> ClientTable {
        let sets = (entries.max(WAYS) / WAYS).next_power_of_two();
        ClientTable {
            slots: vec![Slot::default(); sets * WAYS].into_boxed_slice(),
            set_mask: sets - 1,
            keys: [random_u64(1), random_u64(2)],
        }
    }

    /// First slot of the set `key` lives in: the address's halves, each
    /// XORed with a random key, through MurmurHash3's 64-bit finaliser (full
    /// avalanche, so neighbouring addresses land in unrelated sets). A dozen
    /// instructions a packet where SipHash took about 170; without the keys
    /// an attacker still cannot tell which addresses share a set.
    fn set_of(&self, key: u128) -> usize {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the two 64-bit halves of the address, taken apart on purpose"
        )]
        let (hi, lo) = ((key >> 64) as u64, key as u64);
        let mixed = fmix64(lo ^ self.keys[0] ^ fmix64(hi ^ self.keys[1]));
        #[expect(
            clippy::cast_possible_truncation,
            reason = "a hash: only its low bits, under set_mask, pick the set"
        )]
        let set = mixed as usize & self.set_mask;
        set * WAYS
    }

    /// Slots in the table (its memory bound).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Counts a request from `addr` and applies `limit`.
    pub fn record(&mut self, addr: IpAddr, now: MonoNanos, limit: Option<&RateLimit>) -> Verdict {
        let key = addr_key(addr);
        let set = self.set_of(key);
        let ways = &mut self.slots[set..set + WAYS];
        let idx = match ways.iter().position(|s| s.requests > 0 && s.addr == key) {
            Some(i) => i,
            None => {
                let victim = ways
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, s)| {
                        if s.requests == 0 {
                            i64::MIN
                        } else {
                            s.last_seen_ns
                        }
                    })
                    .map_or(0, |(i, _)| i);
                ways[victim] = Slot {
                    addr: key,
                    requests: 0,
                    limited: 0,
                    nts: 0,
                    tat_ns: now.0,
                    last_seen_ns: now.0,
                };
                victim
            }
        };
        let slot = &mut ways[idx];
        slot.requests += 1;
        slot.last_seen_ns = now.0;
        let Some(limit) = limit else {
            return Verdict::Allow;
        };
        let tolerance = i64::from(limit.burst.saturating_sub(1)).saturating_mul(limit.interval_ns);
        if slot.tat_ns <= now.0.saturating_add(tolerance) {
            slot.tat_ns = slot.tat_ns.max(now.0).saturating_add(limit.interval_ns);
            Verdict::Allow
        } else {
            slot.limited += 1;
            Verdict::Limited
        }
    }

    /// Counts an NTS-authenticated request of a client [`ClientTable::record`]
    /// just saw, so operators can tell which clients use NTS.
    pub fn mark_nts(&mut self, addr: IpAddr) {
        let key = addr_key(addr);
        let set = self.set_of(key);
        if let Some(slot) = self.slots[set..set + WAYS]
            .iter_mut()
            .find(|s| s.requests > 0 && s.addr == key)
        {
            slot.nts += 1;
        }
    }

    /// Writes the busiest clients (most requests first) into `out`, returning how many.
    pub fn busiest(&self, out: &mut [ClientSummary]) -> usize {
        let mut n = 0;
        for s in self.slots.iter().filter(|s| s.requests > 0) {
            if n < out.len() {
                out[n] = summary(s);
                n += 1;
            } else if let Some(last) = out.last() {
                if s.requests <= last.requests {
                    continue;
                }
                out[n - 1] = summary(s);
            } else {
                return 0;
            }
            // Keep `out[..n]` sorted by requests, descending (insertion step).
            let mut i = n - 1;
            while i > 0 && out[i].requests > out[i - 1].requests {
                out.swap(i, i - 1);
                i -= 1;
            }
        }
        n
    }
}

fn summary(s: &Slot) -> ClientSummary {
    let v6 = Ipv6Addr::from(s.addr);
    ClientSummary {
        addr: canonical(IpAddr::V6(v6)),
        requests: s.requests,
        limited: s.limited,
        nts: s.nts,
        last_seen: MonoNanos(s.last_seen_ns),
    }
}

/// MurmurHash3's 64-bit finaliser: a bijection in which every input bit
/// flips every output bit with probability about one half.
fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// A random word from the standard library's per-process hash keys.
fn random_u64(salt: u64) -> u64 {
    RandomState::new().hash_one(salt)
}

fn addr_key(addr: IpAddr) -> u128 {
    match canonical(addr) {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: i64 = 1_000_000_000;

    fn ip(i: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn burst_then_one_per_interval() {
        let mut t = ClientTable::new(64);
        let limit = RateLimit {
            interval_ns: 8 * SEC,
            burst: 4,
            leak: 2,
        };
        let a = ip(1);
        let verdicts: Vec<Verdict> = (0..6)
            .map(|_| t.record(a, MonoNanos(0), Some(&limit)))
            .collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Allow).count(), 4);
        assert_eq!(verdicts[4], Verdict::Limited);
        // One interval later, exactly one more is allowed.
        assert_eq!(
            t.record(a, MonoNanos(8 * SEC), Some(&limit)),
            Verdict::Allow
        );
        assert_eq!(
            t.record(a, MonoNanos(8 * SEC), Some(&limit)),
            Verdict::Limited
        );
        // A well-behaved client polling at the interval is never limited.
        let b = ip(2);
        for i in 0..100 {
            assert_eq!(
                t.record(b, MonoNanos(i * 8 * SEC), Some(&limit)),
                Verdict::Allow
            );
        }
        // Other clients are unaffected by a's excess.
        assert_eq!(t.record(ip(3), MonoNanos(0), Some(&limit)), Verdict::Allow);
    }

    /// Neighbouring addresses (one subnet, and IPv6 hosts of one /64) spread
    /// over the sets about as randomly as balls into bins, and two tables
    /// (two keys) place them differently.
    #[test]
    fn the_keyed_hash_spreads_neighbours_and_differs_per_table() {
        let (a, b) = (ClientTable::new(4096), ClientTable::new(4096));
        let sets = 4096 / WAYS;
        let addrs: Vec<IpAddr> = (0..4096u32)
            .map(|i| IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)))
            .chain((0..4096u128).map(|i| IpAddr::V6(Ipv6Addr::from((0x2001_0db8u128 << 96) + i))))
            .collect();
        for family in addrs.chunks(4096) {
            let mut load = vec![0u32; sets];
            for &addr in family {
                load[a.set_of(addr_key(addr)) / WAYS] += 1;
            }
            // 4096 into 1024 bins: mean 4, a fair hash's maximum is about 12.
            let max = load.iter().copied().max().unwrap_or(0);
            let empty = load.iter().filter(|&&n| n == 0).count();
            assert!(max <= 16, "a set holds {max} of {}", family.len());
            assert!(empty < sets / 10, "{empty} of {sets} sets empty");
        }
        let same = addrs
            .iter()
            .filter(|&&x| a.set_of(addr_key(x)) == b.set_of(addr_key(x)))
            .count();
        assert!(
            same < addrs.len() / 50,
            "{same} of {} in the same set",
            addrs.len()
        );
    }

    #[test]
    fn spoofed_flood_never_grows_the_table() {
        let mut t = ClientTable::new(1000);
        let cap = t.capacity();
        for i in 0..200_000 {
            t.record(ip(i), MonoNanos(i64::from(i)), None);
        }
        assert_eq!(t.capacity(), cap);
        assert_eq!(t.slots.iter().filter(|s| s.requests > 0).count(), cap);
    }

    #[test]
    fn busiest_is_sorted_and_bounded() {
        // Sets are 4-way under a random hash: with 256 entries, 5 of these 21
        // clients shared a set about once in a hundred runs and one was
        // evicted; 4096 entries make that about 1 in 50,000.
        let mut t = ClientTable::new(4096);
        for i in 1..=20u32 {
            for _ in 0..i {
                t.record(ip(i), MonoNanos(1), None);
            }
        }
        let v6: IpAddr = "2001:db8::1".parse().expect("addr");
        t.record(v6, MonoNanos(2), None);
        let mut out = [ClientSummary {
            addr: ip(0),
            requests: 0,
            limited: 0,
            nts: 0,
            last_seen: MonoNanos(0),
        }; 5];
        let n = t.busiest(&mut out);
        assert_eq!(n, 5);
        let reqs: Vec<u64> = out.iter().map(|c| c.requests).collect();
        assert_eq!(reqs, vec![20, 19, 18, 17, 16]);
        assert_eq!(out[0].addr, ip(20));
        let mut all = [out[0]; 64];
        let n = t.busiest(&mut all);
        assert_eq!(n, 21);
        assert!(all[..n].iter().any(|c| c.addr == v6));
    }
}
