//! `EgressPolicy`: which IP addresses the forwarder may connect to (SPEC §5).
//!
//! This module owns the blocked-range tables, the NAT64 rule, the operator's exemption list
//! (`CAPUTCHIN_EGRESS_ALLOW`) and the extraction of IP-literal hosts from parsed URLs. It is pure:
//! resolving names and pinning the vetted addresses belong to the resolver, which asks this module
//! about every address it gets.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use url::Host;

/// The IPv4 ranges of SPEC §5 (the callback rules plus the special-purpose registry), each with
/// the name shown to operators. Narrower ranges come before the ranges that contain them, so the
/// most specific name is reported. `new_assert` runs at compile time here: a bad prefix length is a
/// build error, never a panic at run time.
const BLOCKED_V4: [(Ipv4Net, &str); 15] = [
    (v4(0, 0, 0, 0, 8), "0.0.0.0/8 (this network)"),
    (v4(10, 0, 0, 0, 8), "10.0.0.0/8 (private)"),
    (
        v4(100, 64, 0, 0, 10),
        "100.64.0.0/10 (shared address space)",
    ),
    (v4(127, 0, 0, 0, 8), "127.0.0.0/8 (loopback)"),
    (v4(169, 254, 0, 0, 16), "169.254.0.0/16 (link-local)"),
    (v4(172, 16, 0, 0, 12), "172.16.0.0/12 (private)"),
    (
        v4(192, 0, 0, 0, 24),
        "192.0.0.0/24 (IETF protocol assignments)",
    ),
    (v4(192, 0, 2, 0, 24), "192.0.2.0/24 (documentation)"),
    (v4(192, 168, 0, 0, 16), "192.168.0.0/16 (private)"),
    (v4(198, 18, 0, 0, 15), "198.18.0.0/15 (benchmarking)"),
    (v4(198, 51, 100, 0, 24), "198.51.100.0/24 (documentation)"),
    (v4(203, 0, 113, 0, 24), "203.0.113.0/24 (documentation)"),
    (v4(224, 0, 0, 0, 4), "224.0.0.0/4 (multicast)"),
    (
        v4(255, 255, 255, 255, 32),
        "255.255.255.255/32 (limited broadcast)",
    ),
    (v4(240, 0, 0, 0, 4), "240.0.0.0/4 (reserved)"),
];

/// The IPv6 ranges of SPEC §5, each with the name shown to operators; narrower ranges first.
/// `::/8` also covers IPv4-mapped (`::ffff:0:0/96`) addresses, which stay blocked on purpose: they
/// are never unwrapped to IPv4 and judged again.
const BLOCKED_V6: [(Ipv6Net, &str); 12] = [
    // RFC 8215 local-use NAT64 is never judged by its embedded address (SPEC §5 names only the
    // well-known prefix), and it sits inside ::/8, so it must come first to get its own name.
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "64:ff9b:1::/48 (local-use NAT64)",
    ),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 8),
        "::/8 (unspecified, loopback, IPv4-mapped and -compatible)",
    ),
    (
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        "100::/64 (discard-only)",
    ),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "2001::/23 (IETF protocol assignments, Teredo included)",
    ),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        "2001:db8::/32 (documentation)",
    ),
    (v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), "2002::/16 (6to4)"),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        "3fff::/20 (documentation)",
    ),
    (
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        "5f00::/16 (segment routing)",
    ),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "fc00::/7 (unique local)",
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        "fe80::/10 (link-local)",
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "fec0::/10 (site-local)",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "ff00::/8 (multicast)"),
];

/// The well-known NAT64 prefix (RFC 6052). SPEC §5 judges its addresses by the IPv4 address in the
/// last 32 bits, ahead of the `::/8` entry that would otherwise block the whole prefix.
const NAT64_WELL_KNOWN: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(s: [u16; 8], len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(
        Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        len,
    )
}

/// The egress rules of SPEC §5: the blocked ranges, minus the networks the operator exempted.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allow: Vec<IpNet>,
}

impl EgressPolicy {
    /// Builds the policy with the operator's exempted networks (`CAPUTCHIN_EGRESS_ALLOW`); an empty
    /// list blocks every range of SPEC §5.
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// Decides whether the forwarder may connect to `ip`.
    ///
    /// An address inside an exempted network passes. A NAT64 address (`64:ff9b::/96`) is judged by
    /// the IPv4 address it embeds, which also passes if it lies inside an exempted network. Any
    /// other address is refused if it lies in a blocked range, and the refusal names that range.
    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        if self.is_allowed(ip) {
            return Ok(());
        }
        match ip {
            IpAddr::V4(v4) => match blocked_v4_range(v4) {
                Some(range) => Err(Blocked {
                    addr: ip,
                    range,
                    nat64_for: None,
                }),
                None => Ok(()),
            },
            IpAddr::V6(v6) if NAT64_WELL_KNOWN.contains(&v6) => {
                let embedded = nat64_embedded(v6);
                if self.is_allowed(IpAddr::V4(embedded)) {
                    return Ok(());
                }
                match blocked_v4_range(embedded) {
                    Some(range) => Err(Blocked {
                        addr: ip,
                        range,
                        nat64_for: Some(embedded),
                    }),
                    None => Ok(()),
                }
            }
            IpAddr::V6(v6) => match blocked_v6_range(v6) {
                Some(range) => Err(Blocked {
                    addr: ip,
                    range,
                    nat64_for: None,
                }),
                None => Ok(()),
            },
        }
    }

    fn is_allowed(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(&ip))
    }
}

fn blocked_v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    BLOCKED_V4
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, name)| *name)
}

fn blocked_v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    BLOCKED_V6
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, name)| *name)
}

fn nat64_embedded(ip: Ipv6Addr) -> Ipv4Addr {
    let [.., a, b, c, d] = ip.octets();
    Ipv4Addr::new(a, b, c, d)
}

/// Why an address was refused: the address and the blocked range it lies in. Its `Display` reads
/// `10.1.2.3 is in 10.0.0.0/8 (private)`, for the dashboard and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    addr: IpAddr,
    range: &'static str,
    nat64_for: Option<Ipv4Addr>,
}

impl Blocked {
    /// The refused address, exactly as it was checked.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The blocked range that refused it, with its purpose, e.g. `127.0.0.0/8 (loopback)`.
    pub fn range(&self) -> &'static str {
        self.range
    }

    /// For a NAT64 address, the embedded IPv4 address that lies in [`Blocked::range`].
    pub fn nat64_for(&self) -> Option<Ipv4Addr> {
        self.nat64_for
    }

    /// What to do when the blocked receiver is the operator's own, next to the forwarder, for the
    /// messages that report it (Test delivery, the destination check): the setting, with the
    /// narrowest exemption that would let this address through. Empty for addresses no receiver
    /// should be exempted for: link-local (cloud metadata lives there), multicast, broadcast,
    /// unspecified.
    pub fn allow_hint(&self) -> String {
        let never = match self.addr {
            IpAddr::V4(v4) => {
                v4.is_link_local() || v4.is_multicast() || v4.is_broadcast() || v4.is_unspecified()
            }
            IpAddr::V6(v6) => {
                v6.is_unicast_link_local() || v6.is_multicast() || v6.is_unspecified()
            }
        };
        if never {
            return String::new();
        }
        let network = match self.addr {
            IpAddr::V4(v4) => format!("{v4}/32"),
            IpAddr::V6(v6) => format!("{v6}/128"),
        };
        format!(
            "If this receiver runs next to the forwarder on a private network, the operator can \
             exempt it with CAPUTCHIN_EGRESS_ALLOW (for this address: \
             CAPUTCHIN_EGRESS_ALLOW={network}; 127.0.0.0/8 covers receivers on the same machine)."
        )
    }
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.nat64_for {
            Some(v4) => write!(f, "{} (NAT64 for {v4}) is in {}", self.addr, self.range),
            None => write!(f, "{} is in {}", self.addr, self.range),
        }
    }
}

impl std::error::Error for Blocked {}

/// The IP address an IP-literal host stands for, or `None` for a name that must be resolved.
///
/// The WHATWG parser has already turned every IPv4 spelling of a special (http/https) URL —
/// decimal, octal, hex, short, percent-encoded, full-width, trailing dot — into `Host::Ipv4`,
/// and bracketed IPv6 (including `[::ffff:127.0.0.1]`) into `Host::Ipv6`; it rejects zone ids
/// (`[fe80::1%25eth0]`) and bracketed IPv4 outright. A `Host::Domain` that is itself a plain IP
/// literal (as in the opaque host of a non-special scheme) is still returned as that address, so
/// a connector that skips its resolver for literals never skips the check (SPEC §5).
pub fn literal_host(host: &Host<&str>) -> Option<IpAddr> {
    match host {
        Host::Ipv4(v4) => Some(IpAddr::V4(*v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(*v6)),
        Host::Domain(name) => {
            let bare = name
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .unwrap_or(name);
            bare.parse().ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_way_out_names_the_narrowest_exemption_but_never_for_metadata_or_multicast() {
        let policy = EgressPolicy::new(Vec::new());
        let hint = |ip: &str| {
            policy
                .check(ip.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
                .map_or_else(|b| b.allow_hint(), |()| "allowed".into())
        };
        assert!(hint("10.1.2.3").contains("CAPUTCHIN_EGRESS_ALLOW=10.1.2.3/32"));
        assert!(hint("fd00::7").contains("CAPUTCHIN_EGRESS_ALLOW=fd00::7/128"));
        for never in [
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "fe80::1",
            "ff02::1",
        ] {
            assert_eq!(hint(never), "", "{never}");
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn strict() -> EgressPolicy {
        EgressPolicy::new(Vec::new())
    }

    #[test]
    fn the_range_tables_hold_every_range_of_the_spec() {
        assert_eq!(BLOCKED_V4.len(), 15);
        assert_eq!(BLOCKED_V6.len(), 12);
    }

    #[test]
    fn every_range_name_starts_with_its_own_network_and_has_no_host_bits() {
        for (net, name) in BLOCKED_V4 {
            assert_eq!(net, net.trunc(), "{name}");
            assert!(name.starts_with(&format!("{net} (")), "{name} vs {net}");
        }
        for (net, name) in BLOCKED_V6 {
            assert_eq!(net, net.trunc(), "{name}");
            assert!(name.starts_with(&format!("{net} (")), "{name} vs {net}");
        }
        assert_eq!(NAT64_WELL_KNOWN.to_string(), "64:ff9b::/96");
    }

    /// `(address, Some(range it is blocked by) | None for allowed)`.
    const TABLE: &[(&str, Option<&str>)] = &[
        // 0.0.0.0/8
        ("0.0.0.0", Some("0.0.0.0/8")),
        ("0.1.2.3", Some("0.0.0.0/8")),
        ("0.255.255.255", Some("0.0.0.0/8")),
        ("1.0.0.0", None),
        // 10.0.0.0/8
        ("9.255.255.255", None),
        ("10.0.0.0", Some("10.0.0.0/8")),
        ("10.1.2.3", Some("10.0.0.0/8")),
        ("10.255.255.255", Some("10.0.0.0/8")),
        ("11.0.0.0", None),
        // 100.64.0.0/10
        ("100.63.255.255", None),
        ("100.64.0.0", Some("100.64.0.0/10")),
        ("100.100.100.100", Some("100.64.0.0/10")),
        ("100.127.255.255", Some("100.64.0.0/10")),
        ("100.128.0.0", None),
        // 127.0.0.0/8
        ("126.255.255.255", None),
        ("127.0.0.0", Some("127.0.0.0/8")),
        ("127.0.0.1", Some("127.0.0.0/8")),
        ("127.255.255.255", Some("127.0.0.0/8")),
        ("128.0.0.0", None),
        // 169.254.0.0/16
        ("169.253.255.255", None),
        ("169.254.0.0", Some("169.254.0.0/16")),
        ("169.254.169.254", Some("169.254.0.0/16")),
        ("169.254.255.255", Some("169.254.0.0/16")),
        ("169.255.0.0", None),
        // 172.16.0.0/12
        ("172.15.255.255", None),
        ("172.16.0.0", Some("172.16.0.0/12")),
        ("172.20.1.1", Some("172.16.0.0/12")),
        ("172.31.255.255", Some("172.16.0.0/12")),
        ("172.32.0.0", None),
        // 192.0.0.0/24 and 192.0.2.0/24
        ("191.255.255.255", None),
        ("192.0.0.0", Some("192.0.0.0/24")),
        ("192.0.0.170", Some("192.0.0.0/24")),
        ("192.0.0.255", Some("192.0.0.0/24")),
        ("192.0.1.0", None),
        ("192.0.1.255", None),
        ("192.0.2.0", Some("192.0.2.0/24")),
        ("192.0.2.123", Some("192.0.2.0/24")),
        ("192.0.2.255", Some("192.0.2.0/24")),
        ("192.0.3.0", None),
        // 192.168.0.0/16
        ("192.167.255.255", None),
        ("192.168.0.0", Some("192.168.0.0/16")),
        ("192.168.1.1", Some("192.168.0.0/16")),
        ("192.168.255.255", Some("192.168.0.0/16")),
        ("192.169.0.0", None),
        // 198.18.0.0/15
        ("198.17.255.255", None),
        ("198.18.0.0", Some("198.18.0.0/15")),
        ("198.19.0.1", Some("198.18.0.0/15")),
        ("198.19.255.255", Some("198.18.0.0/15")),
        ("198.20.0.0", None),
        // 198.51.100.0/24
        ("198.51.99.255", None),
        ("198.51.100.0", Some("198.51.100.0/24")),
        ("198.51.100.77", Some("198.51.100.0/24")),
        ("198.51.100.255", Some("198.51.100.0/24")),
        ("198.51.101.0", None),
        // 203.0.113.0/24
        ("203.0.112.255", None),
        ("203.0.113.0", Some("203.0.113.0/24")),
        ("203.0.113.9", Some("203.0.113.0/24")),
        ("203.0.113.255", Some("203.0.113.0/24")),
        ("203.0.114.0", None),
        // 224.0.0.0/4, 240.0.0.0/4, 255.255.255.255
        ("223.255.255.255", None),
        ("224.0.0.0", Some("224.0.0.0/4")),
        ("232.1.2.3", Some("224.0.0.0/4")),
        ("239.255.255.255", Some("224.0.0.0/4")),
        ("240.0.0.0", Some("240.0.0.0/4")),
        ("248.1.2.3", Some("240.0.0.0/4")),
        ("255.255.255.254", Some("240.0.0.0/4")),
        ("255.255.255.255", Some("255.255.255.255/32")),
        // Public IPv4
        ("1.1.1.1", None),
        ("8.8.8.8", None),
        ("93.184.215.14", None),
        // ::/8
        ("::", Some("::/8")),
        ("::1", Some("::/8")),
        ("::7f00:1", Some("::/8")),
        ("::ffff:8.8.8.8", Some("::/8")),
        ("::ffff:127.0.0.1", Some("::/8")),
        ("ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("::/8")),
        // NAT64: well-known prefix judged by the embedded IPv4, local-use blocked outright
        ("64:ff9b::", Some("0.0.0.0/8")),
        ("64:ff9b::a00:1", Some("10.0.0.0/8")),
        ("64:ff9b::127.0.0.1", Some("127.0.0.0/8")),
        ("64:ff9b::169.254.169.254", Some("169.254.0.0/16")),
        ("64:ff9b::ffff:ffff", Some("255.255.255.255/32")),
        ("64:ff9b::808:808", None),
        ("64:ff9b::1.1.1.1", None),
        ("64:ff9b::1:0:0:808:808", Some("::/8")),
        ("64:ff9b:1::", Some("64:ff9b:1::/48")),
        ("64:ff9b:1::808:808", Some("64:ff9b:1::/48")),
        ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", Some("64:ff9b:1::/48")),
        // 100::/64
        ("100::", Some("100::/64")),
        ("100::1234", Some("100::/64")),
        ("100::ffff:ffff:ffff:ffff", Some("100::/64")),
        ("100:0:0:1::", None),
        // 2001::/23 (Teredo 2001::/32 included) and 2001:db8::/32
        ("2001::", Some("2001::/23")),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some("2001::/23")),
        ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", Some("2001::/23")),
        ("2001:200::1", None),
        ("2001:db8::", Some("2001:db8::/32")),
        ("2001:db8:85a3::8a2e:370:7334", Some("2001:db8::/32")),
        (
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            Some("2001:db8::/32"),
        ),
        ("2001:db9::", None),
        // 2002::/16
        ("2002::", Some("2002::/16")),
        ("2002:c000:204::1", Some("2002::/16")),
        ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("2002::/16")),
        // 3fff::/20
        ("3fff::", Some("3fff::/20")),
        ("3fff:abc::1", Some("3fff::/20")),
        ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", Some("3fff::/20")),
        ("3fff:1000::", None),
        // 5f00::/16
        ("5f00::", Some("5f00::/16")),
        ("5f00:1234::1", Some("5f00::/16")),
        ("5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("5f00::/16")),
        // fc00::/7
        ("fc00::", Some("fc00::/7")),
        ("fd12:3456:789a::1", Some("fc00::/7")),
        ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("fc00::/7")),
        // fe80::/10 and fec0::/10
        ("fe80::", Some("fe80::/10")),
        ("fe80::1", Some("fe80::/10")),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("fe80::/10")),
        ("fec0::", Some("fec0::/10")),
        ("fec0::1", Some("fec0::/10")),
        ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("fec0::/10")),
        // ff00::/8
        ("ff00::", Some("ff00::/8")),
        ("ff02::1", Some("ff00::/8")),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("ff00::/8")),
        // Public IPv6
        ("2606:4700:4700::1111", None),
        ("2001:4860:4860::8888", None),
        ("2a00:1450:4001::1", None),
    ];

    #[test]
    fn every_address_in_the_table_is_judged_by_the_range_it_lies_in() {
        assert!(TABLE.len() >= 70, "only {} rows", TABLE.len());
        let policy = strict();
        for (addr, expected) in TABLE {
            match (policy.check(ip(addr)), expected) {
                (Ok(()), None) => {}
                (Err(blocked), Some(cidr)) => {
                    assert_eq!(blocked.addr(), ip(addr));
                    assert!(
                        blocked.range().starts_with(&format!("{cidr} (")),
                        "{addr}: blocked by {} instead of {cidr}",
                        blocked.range()
                    );
                }
                (got, want) => panic!("{addr}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn blocked_display_names_the_address_and_the_range() {
        let blocked = strict().check(ip("10.1.2.3")).unwrap_err();
        assert_eq!(blocked.to_string(), "10.1.2.3 is in 10.0.0.0/8 (private)");
        assert_eq!(blocked.nat64_for(), None);

        let nat64 = strict().check(ip("64:ff9b::a00:1")).unwrap_err();
        assert_eq!(nat64.nat64_for(), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(
            nat64.to_string(),
            "64:ff9b::a00:1 (NAT64 for 10.0.0.1) is in 10.0.0.0/8 (private)"
        );
    }

    #[test]
    fn every_literal_spelling_that_url_parses_is_judged_as_the_address_it_means() {
        let cases = [
            ("http://2130706433/", "127.0.0.1"),
            ("http://0177.0.0.1/", "127.0.0.1"),
            ("http://017700000001/", "127.0.0.1"),
            ("http://0x7f.1/", "127.0.0.1"),
            ("http://0X7F.0x0.0x0.0x1/", "127.0.0.1"),
            ("http://0x7f000001/", "127.0.0.1"),
            ("http://127.1/", "127.0.0.1"),
            ("http://127.0.1/", "127.0.0.1"),
            ("http://127.0.0.1./", "127.0.0.1"),
            ("http://127.0.0.1%2e/", "127.0.0.1"),
            ("http://%31%32%37.0.0.1/", "127.0.0.1"),
            ("http://\u{ff11}\u{ff12}\u{ff17}.0.0.1/", "127.0.0.1"),
            ("http://127\u{3002}0\u{3002}0\u{3002}1/", "127.0.0.1"),
            ("http://0/", "0.0.0.0"),
            ("http://167772161/", "10.0.0.1"),
            ("http://0xa9.0xfe.0xa9.0xfe/", "169.254.169.254"),
            ("http://0xffffffff/", "255.255.255.255"),
            ("https://[::1]:8443/", "::1"),
            ("http://[0:0:0:0:0:0:0:1]/", "::1"),
            ("http://[::ffff:127.0.0.1]/", "::ffff:127.0.0.1"),
            ("http://[::ffff:7f00:1]/", "::ffff:127.0.0.1"),
            ("http://[0:0:0:0:0:ffff:7f00:1]/", "::ffff:127.0.0.1"),
            ("http://[::127.0.0.1]/", "::7f00:1"),
            ("http://[64:ff9b::10.0.0.1]/", "64:ff9b::a00:1"),
            ("http://[FE80::1]/", "fe80::1"),
        ];
        let policy = strict();
        for (raw, meant) in cases {
            let url = url::Url::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            let host = url.host().unwrap_or_else(|| panic!("{raw}: no host"));
            let literal = literal_host(&host);
            assert_eq!(literal, Some(ip(meant)), "{raw}");
            let verdict = literal.map(|addr| policy.check(addr));
            assert!(
                matches!(verdict, Some(Err(blocked)) if blocked.addr() == ip(meant)),
                "{raw}: {verdict:?}"
            );
        }

        let public = url::Url::parse("http://134744072/").unwrap();
        let host = public.host().unwrap();
        assert_eq!(literal_host(&host), Some(ip("8.8.8.8")));
        assert_eq!(policy.check(ip("8.8.8.8")), Ok(()));
    }

    #[test]
    fn zone_ids_and_bracketed_ipv4_do_not_parse_as_urls() {
        for raw in [
            "http://[fe80::1%25eth0]/",
            "http://[fe80::1%eth0]/",
            "http://[fe80::1%251]/",
            "http://[::1%25]/",
            "http://[127.0.0.1]/",
            "http://[::1]./",
            "http://4294967296/",
            "http://1.2.3.4.5/",
        ] {
            assert!(url::Url::parse(raw).is_err(), "{raw} parsed");
        }
    }

    #[test]
    fn names_are_not_literals_but_an_ip_shaped_opaque_host_is() {
        for raw in [
            "http://localhost/",
            "http://localhost./",
            "http://example.com/",
            "http://127.0.0.1.nip.io/",
            "http://127.0.0.1../",
        ] {
            let url = url::Url::parse(raw).unwrap();
            assert_eq!(literal_host(&url.host().unwrap()), None, "{raw}");
        }
        let opaque = url::Url::parse("foo://127.0.0.1/").unwrap();
        assert_eq!(opaque.host(), Some(Host::Domain("127.0.0.1")));
        assert_eq!(literal_host(&opaque.host().unwrap()), Some(ip("127.0.0.1")));
        assert_eq!(literal_host(&Host::Domain("[::1]")), Some(ip("::1")));
        assert_eq!(literal_host(&Host::Domain("fe80::1%eth0")), None);
    }

    #[test]
    fn an_allowed_network_exempts_its_addresses_and_nothing_else() {
        let policy = EgressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert_eq!(policy.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("127.255.255.255")), Ok(()));
        let blocked = policy.check(ip("10.0.0.1")).unwrap_err();
        assert_eq!(blocked.addr(), ip("10.0.0.1"));
        assert_eq!(blocked.range(), "10.0.0.0/8 (private)");
        assert_eq!(blocked.to_string(), "10.0.0.1 is in 10.0.0.0/8 (private)");
        assert!(policy.check(ip("::1")).is_err());
    }

    #[test]
    fn an_allowed_network_exempts_nat64_addresses_that_embed_it() {
        let policy = EgressPolicy::new(vec!["10.0.0.0/24".parse().unwrap()]);
        assert_eq!(policy.check(ip("64:ff9b::10.0.0.5")), Ok(()));
        assert_eq!(policy.check(ip("10.0.0.5")), Ok(()));
        let outside = policy.check(ip("64:ff9b::10.0.1.5")).unwrap_err();
        assert_eq!(outside.range(), "10.0.0.0/8 (private)");
        assert_eq!(outside.nat64_for(), Some(Ipv4Addr::new(10, 0, 1, 5)));
        assert!(policy.check(ip("64:ff9b:1::10.0.0.5")).is_err());
    }

    #[test]
    fn ipv4_mapped_addresses_stay_blocked_even_when_their_ipv4_is_allowed() {
        let policy = EgressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        let blocked = policy.check(ip("::ffff:127.0.0.1")).unwrap_err();
        assert!(blocked.range().starts_with("::/8 ("));
        assert!(strict().check(ip("::ffff:1.1.1.1")).is_err());
    }

    #[test]
    fn an_allowed_ipv6_network_exempts_ipv6_addresses() {
        let policy = EgressPolicy::new(vec!["fd00::/8".parse().unwrap()]);
        assert_eq!(policy.check(ip("fd00::1")), Ok(()));
        assert!(policy.check(ip("fc00::1")).is_err());
        assert!(policy.check(ip("127.0.0.1")).is_err());
    }
}
