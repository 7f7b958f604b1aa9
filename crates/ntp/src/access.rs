//! Who may be answered: allow and deny lists of IPv4/IPv6 subnets, where the
//! most specific matching rule wins (as in chrony), and deny wins a tie.

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A subnet in a config file: `10.0.0.0/8`, `fe80::/10`, or a bare address
/// meaning that host alone.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Subnet(pub IpNet);

impl FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Subnet(net.trunc()));
        }
        s.parse::<IpAddr>()
            .map(|a| Subnet(IpNet::from(a)))
            .map_err(|_| {
                format!("`{s}` is not a subnet (e.g. 192.168.0.0/16, fe80::/10) or address")
            })
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Subnet {
    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Subnet {
        Subnet(IpNet::V4(ipnet::Ipv4Net::new_assert(
            Ipv4Addr::new(a, b, c, d),
            prefix,
        )))
    }
    const fn v6(addr: Ipv6Addr, prefix: u8) -> Subnet {
        Subnet(IpNet::V6(ipnet::Ipv6Net::new_assert(addr, prefix)))
    }
}

/// The default allow list: private, link-local and loopback ranges, as the
/// internal-server configurations in the field use.
pub fn default_allow() -> Vec<Subnet> {
    vec![
        Subnet::v4(10, 0, 0, 0, 8),
        Subnet::v4(172, 16, 0, 0, 12),
        Subnet::v4(192, 168, 0, 0, 16),
        Subnet::v4(169, 254, 0, 0, 16),
        Subnet::v4(127, 0, 0, 0, 8),
        Subnet::v6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
        Subnet::v6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
        Subnet::v6(Ipv6Addr::LOCALHOST, 128),
    ]
}

/// The default rate-limit exemption: the box's own addresses (127.0.0.1 and
/// ::1), so a person checking the box from itself is never refused. Other
/// loopback addresses stay limited, as any client.
pub fn default_rate_limit_exempt() -> Vec<Subnet> {
    vec![
        Subnet::v4(127, 0, 0, 1, 32),
        Subnet::v6(Ipv6Addr::LOCALHOST, 128),
    ]
}

/// One subnet as a mask and a network, for a check of a few instructions.
#[derive(Copy, Clone, Debug)]
struct Rule<T> {
    net: T,
    mask: T,
    prefix: u8,
}

/// Subnets compiled for the per-packet check: per family, the network and
/// its mask, so a lookup is an AND and a compare per rule (the generic
/// `IpNet::contains` cost several hundred instructions a packet over the
/// default list).
#[derive(Clone, Debug, Default)]
pub struct SubnetSet {
    v4: Vec<Rule<u32>>,
    v6: Vec<Rule<u128>>,
}

impl SubnetSet {
    /// The set of `nets`.
    pub fn new(nets: &[Subnet]) -> SubnetSet {
        let mut set = SubnetSet::default();
        for n in nets {
            match n.0 {
                IpNet::V4(v4) => {
                    let prefix = v4.prefix_len();
                    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                    set.v4.push(Rule {
                        net: u32::from(v4.addr()) & mask,
                        mask,
                        prefix,
                    });
                }
                IpNet::V6(v6) => {
                    let prefix = v6.prefix_len();
                    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                    set.v6.push(Rule {
                        net: u128::from(v6.addr()) & mask,
                        mask,
                        prefix,
                    });
                }
            }
        }
        set
    }

    /// The longest prefix among the subnets that hold `addr` (IPv4-mapped
    /// IPv6 taken as IPv4, so it matches IPv4 subnets only), if any does.
    pub fn longest_match(&self, addr: IpAddr) -> Option<u8> {
        match canonical(addr) {
            IpAddr::V4(a) => longest(&self.v4, u32::from(a)),
            IpAddr::V6(a) => longest(&self.v6, u128::from(a)),
        }
    }

    /// Whether any subnet holds `addr`.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.longest_match(addr).is_some()
    }
}

fn longest<T>(rules: &[Rule<T>], addr: T) -> Option<u8>
where
    T: Copy + PartialEq + std::ops::BitAnd<Output = T>,
{
    rules
        .iter()
        .filter(|r| addr & r.mask == r.net)
        .map(|r| r.prefix)
        .max()
}

/// The compiled access rules, checked per packet without allocation.
#[derive(Clone, Debug, Default)]
pub struct AccessList {
    allow: SubnetSet,
    deny: SubnetSet,
}

impl AccessList {
    /// Rules from the configured lists.
    pub fn new(allow: &[Subnet], deny: &[Subnet]) -> AccessList {
        AccessList {
            allow: SubnetSet::new(allow),
            deny: SubnetSet::new(deny),
        }
    }

    /// Whether `addr` may be served: the most specific matching rule wins,
    /// deny a tie. IPv4-mapped IPv6 sources are judged as the IPv4 address
    /// they carry, so a dual-stack socket cannot bypass IPv4 rules.
    pub fn allows(&self, addr: IpAddr) -> bool {
        match self.allow.longest_match(addr) {
            None => false,
            Some(allow) => self
                .deny
                .longest_match(addr)
                .is_none_or(|deny| allow > deny),
        }
    }
}

/// Folds IPv4-mapped IPv6 addresses to IPv4.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }
    fn nets(list: &[&str]) -> Vec<Subnet> {
        list.iter()
            .map(|s| s.parse().expect("test subnet"))
            .collect()
    }

    #[test]
    fn default_allows_private_link_local_and_loopback_only() {
        let acl = AccessList::new(&default_allow(), &[]);
        for ok in [
            "10.1.2.3",
            "172.31.255.1",
            "192.168.1.1",
            "169.254.0.5",
            "127.0.0.1",
            "::1",
            "fe80::1",
            "fd00::7",
            "::ffff:192.168.0.9",
        ] {
            assert!(acl.allows(ip(ok)), "{ok}");
        }
        for no in [
            "8.8.8.8",
            "172.32.0.1",
            "2001:db8::1",
            "::ffff:8.8.8.8",
            "100.64.0.1",
        ] {
            assert!(!acl.allows(ip(no)), "{no}");
        }
    }

    #[test]
    fn most_specific_rule_wins_and_deny_wins_ties() {
        let acl = AccessList::new(
            &nets(&["10.0.0.0/8", "10.1.2.3"]),
            &nets(&["10.1.0.0/16", "10.9.9.9/32"]),
        );
        assert!(acl.allows(ip("10.2.0.1")));
        assert!(!acl.allows(ip("10.1.0.1")));
        assert!(acl.allows(ip("10.1.2.3")));
        assert!(!acl.allows(ip("10.9.9.9")));
        let tie = AccessList::new(&nets(&["10.0.0.0/8"]), &nets(&["10.0.0.0/8"]));
        assert!(!tie.allows(ip("10.0.0.1")));
    }

    /// The compiled check against ipnet's own `contains`, over many lists and
    /// addresses (IPv4, IPv6 and IPv4-mapped), all prefix lengths included.
    #[test]
    fn compiled_sets_agree_with_ipnet() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        // A number below `n`, from a xorshift sequence.
        let mut below = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % u64::try_from(n).expect("small")).expect("below n")
        };
        let base = [
            "10.0.0.0",
            "10.1.2.3",
            "127.0.0.1",
            "192.168.7.1",
            "0.0.0.0",
            "fd00::1",
            "fe80::9",
            "::1",
            "2001:db8::5",
            "::",
        ];
        for _ in 0..200 {
            let mut list = Vec::new();
            for _ in 0..below(6) {
                let a = ip(base[below(base.len())]);
                let max = if a.is_ipv4() { 33 } else { 129 };
                let prefix = u8::try_from(below(max)).expect("below 129");
                list.push(Subnet(IpNet::new(a, prefix).expect("valid prefix").trunc()));
            }
            let set = SubnetSet::new(&list);
            for _ in 0..50 {
                let mut a = ip(base[below(base.len())]);
                // Flip a random low bit, sometimes, and map some IPv4 to IPv6.
                a = match a {
                    IpAddr::V4(v4) => {
                        let flip = u32::try_from(below(2)).expect("0 or 1");
                        let v = u32::from(v4) ^ (flip << below(32));
                        let v4 = Ipv4Addr::from(v);
                        if below(4) == 0 {
                            IpAddr::V6(v4.to_ipv6_mapped())
                        } else {
                            IpAddr::V4(v4)
                        }
                    }
                    IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(
                        u128::from(v6) ^ (u128::from(below(2) == 1) << below(128)),
                    )),
                };
                let folded = canonical(a);
                let want = list
                    .iter()
                    .filter(|n| n.0.contains(&folded))
                    .map(|n| n.0.prefix_len())
                    .max();
                assert_eq!(set.longest_match(a), want, "{a} in {list:?}");
            }
        }
    }

    #[test]
    fn subnet_parsing() {
        assert_eq!(
            "10.1.2.3/8".parse::<Subnet>().map(|s| s.to_string()),
            Ok("10.0.0.0/8".into())
        );
        assert_eq!(
            "::1".parse::<Subnet>().map(|s| s.to_string()),
            Ok("::1/128".into())
        );
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        assert!("banana".parse::<Subnet>().is_err());
    }
}
