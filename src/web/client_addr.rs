//! The client address (SPEC §9): the TCP peer, or — only when the peer is a trusted reverse
//! proxy — the address its `Forwarded` (RFC 7239) or `X-Forwarded-For` header names. Every
//! feature keyed by a client address (the form rate limit, the login throttle) asks this module.
//! The address is never logged, stored or forwarded.

use std::net::{IpAddr, SocketAddr};

use actix_web::HttpRequest;
use actix_web::http::header::{HeaderMap, HeaderName};
use ipnet::IpNet;

/// The client address of a request, or `None` when the transport has no peer address (a Unix
/// socket, a test request).
pub fn of_request(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    Some(client_addr(peer, req.headers(), trusted))
}

/// The address a client is counted under by the rate limits and the login throttle: an IPv4
/// address as it is, an IPv6 address by its /64 (one subscriber's usual allocation, so that
/// rotating through it does not buy fresh budgets).
pub fn bucket(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

/// The [`bucket`] of a request's client address.
pub fn bucket_of_request(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    of_request(req, trusted).map(bucket)
}

/// Decides the client address: from a peer outside `trusted` both headers are ignored; otherwise
/// `Forwarded` is read when present, else `X-Forwarded-For`, right to left, skipping trusted
/// addresses. The first untrusted address is the client; when every address is trusted, the
/// leftmost one. An entry that does not parse or is obfuscated (`unknown`, `_hidden`), reached
/// before the client is found, means the peer is used; a bad `Forwarded` does not fall back to
/// `X-Forwarded-For`. Entries left of the client are the visitor's own words and are not read.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded = HeaderName::from_static("forwarded");
    let entries = if headers.contains_key(&forwarded) {
        match joined(headers, &forwarded).and_then(|v| forwarded_nodes(&v)) {
            Some(nodes) => nodes,
            None => return peer,
        }
    } else {
        let xff = HeaderName::from_static("x-forwarded-for");
        match joined(headers, &xff) {
            Some(v) => v.split(',').map(|e| parse_xff_entry(e.trim())).collect(),
            None => return peer,
        }
    };
    let mut leftmost = None;
    for entry in entries.iter().rev() {
        match entry {
            Some(ip) if is_trusted(ip) => leftmost = Some(*ip),
            Some(ip) => return *ip,
            None => return peer,
        }
    }
    leftmost.unwrap_or(peer)
}

/// Every value of a header, joined with commas in the order they came (RFC 9110 §5.3); `None`
/// when there is none or a value is not visible ASCII.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut all = Vec::new();
    for value in headers.get_all(name) {
        all.push(value.to_str().ok()?);
    }
    (!all.is_empty()).then(|| all.join(","))
}

/// The `for=` node of each `Forwarded` element, left to right: `Some(ip)` for an address,
/// `None` for an obfuscated, unknown or missing one. `None` overall when the header does not
/// parse.
fn forwarded_nodes(value: &str) -> Option<Vec<Option<IpAddr>>> {
    let mut nodes = Vec::new();
    for element in split_outside_quotes(value, ',')? {
        let element = element.trim();
        if element.is_empty() {
            continue;
        }
        let mut node = None;
        for pair in split_outside_quotes(element, ';')? {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (name, raw) = pair.split_once('=')?;
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(is_tchar) {
                return None;
            }
            let value = unquote(raw.trim())?;
            if name.eq_ignore_ascii_case("for") {
                node = Some(parse_node(&value));
            }
        }
        nodes.push(node.flatten());
    }
    (!nodes.is_empty()).then_some(nodes)
}

/// Splits on `sep` outside quoted strings; `None` for an unterminated quote.
fn split_outside_quotes(value: &str, sep: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&value[start..i]);
            start = i + 1;
        }
    }
    if quoted {
        return None;
    }
    parts.push(&value[start..]);
    Some(parts)
}

/// A token or a quoted string (RFC 7230 §3.2.6), unquoted.
fn unquote(raw: &str) -> Option<String> {
    if let Some(inner) = raw.strip_prefix('"') {
        let inner = inner.strip_suffix('"')?;
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?),
                '"' => return None,
                c => out.push(c),
            }
        }
        Some(out)
    } else if !raw.is_empty() && raw.bytes().all(is_tchar) {
        Some(raw.to_owned())
    } else {
        None
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A `Forwarded` node (RFC 7239 §6): `IPv4[:port]`, `"[IPv6]"[:port]`, `unknown` or an
/// obfuscated `_name`; only an address is `Some`. The port may be obfuscated too.
fn parse_node(node: &str) -> Option<IpAddr> {
    let host = if let Some(rest) = node.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(valid_port)) {
            return None;
        }
        IpAddr::V6(v6.parse().ok()?)
    } else {
        let (v4, port) = match node.split_once(':') {
            Some((v4, port)) => (v4, Some(port)),
            None => (node, None),
        };
        if !port.is_none_or(valid_port) {
            return None;
        }
        IpAddr::V4(v4.parse().ok()?)
    };
    Some(host.to_canonical())
}

/// A port number or an obfuscated port (`_` followed by letters, digits, `.`, `_`, `-`).
fn valid_port(port: &str) -> bool {
    port.parse::<u16>().is_ok()
        || port.strip_prefix('_').is_some_and(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
}

/// An `X-Forwarded-For` entry: an address, with or without a port (`[IPv6]:port` for IPv6).
fn parse_xff_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    entry
        .parse::<SocketAddr>()
        .ok()
        .map(|addr| addr.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_client_address_follows_spec_section_9_for_every_case_in_the_table() {
        let trusted: Vec<IpNet> = ["10.0.0.0/8", "2001:db8:ffff::/48", "127.0.0.1/32"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        let proxy = "10.0.0.1";
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            // (peer, headers, expected client, what the case shows)
            ("198.51.100.7", &[], "198.51.100.7", "no headers"),
            (
                "198.51.100.7",
                &[("x-forwarded-for", "203.0.113.9")],
                "198.51.100.7",
                "untrusted peer: XFF ignored",
            ),
            (
                "198.51.100.7",
                &[("forwarded", "for=203.0.113.9")],
                "198.51.100.7",
                "untrusted peer: Forwarded ignored",
            ),
            (proxy, &[], proxy, "trusted peer without headers"),
            (
                proxy,
                &[("x-forwarded-for", "203.0.113.9")],
                "203.0.113.9",
                "one hop",
            ),
            (
                proxy,
                &[("x-forwarded-for", "203.0.113.9, 10.1.1.1")],
                "203.0.113.9",
                "two trusted hops skipped",
            ),
            (
                proxy,
                &[("x-forwarded-for", "6.6.6.6, 203.0.113.9")],
                "203.0.113.9",
                "spoofed left-most entry",
            ),
            (
                proxy,
                &[("x-forwarded-for", "garbage, 203.0.113.9")],
                "203.0.113.9",
                "garbage left of the client is not read",
            ),
            (
                proxy,
                &[("x-forwarded-for", "203.0.113.9, garbage")],
                proxy,
                "garbage before the client: peer",
            ),
            (
                proxy,
                &[("x-forwarded-for", "10.2.2.2, 10.3.3.3")],
                "10.2.2.2",
                "all trusted: leftmost",
            ),
            (
                proxy,
                &[("x-forwarded-for", "203.0.113.9:5678")],
                "203.0.113.9",
                "IPv4 with a port",
            ),
            (
                proxy,
                &[("x-forwarded-for", "[2001:db8::7]:443")],
                "2001:db8::7",
                "IPv6 with a port",
            ),
            (
                proxy,
                &[("x-forwarded-for", "2001:db8::7")],
                "2001:db8::7",
                "bare IPv6",
            ),
            (
                proxy,
                &[("x-forwarded-for", "::ffff:203.0.113.9")],
                "203.0.113.9",
                "IPv4-mapped IPv6",
            ),
            (
                proxy,
                &[("x-forwarded-for", "unknown")],
                proxy,
                "XFF unknown: peer",
            ),
            (proxy, &[("x-forwarded-for", "")], proxy, "empty XFF: peer"),
            (
                proxy,
                &[
                    ("x-forwarded-for", "6.6.6.6"),
                    ("x-forwarded-for", "203.0.113.9"),
                ],
                "203.0.113.9",
                "several XFF headers join in order",
            ),
            (
                proxy,
                &[("forwarded", "for=203.0.113.9")],
                "203.0.113.9",
                "Forwarded token",
            ),
            (
                proxy,
                &[("forwarded", "for=\"203.0.113.9:4711\"")],
                "203.0.113.9",
                "quoted IPv4 with port",
            ),
            (
                proxy,
                &[("forwarded", "for=\"[2001:db8:cafe::17]:4711\"")],
                "2001:db8:cafe::17",
                "IPv6 in brackets with a port",
            ),
            (
                proxy,
                &[(
                    "forwarded",
                    "For=\"[2001:db8:cafe::17]\";proto=https;by=10.0.0.1",
                )],
                "2001:db8:cafe::17",
                "case-insensitive name, other pairs",
            ),
            (
                proxy,
                &[("forwarded", "for=198.51.100.1, for=203.0.113.9;proto=https")],
                "203.0.113.9",
                "two elements, right to left",
            ),
            (
                proxy,
                &[("forwarded", "for=203.0.113.9, for=10.4.4.4")],
                "203.0.113.9",
                "trusted hop skipped",
            ),
            (
                proxy,
                &[("forwarded", "for=\"[2001:db8:ffff::1]\", for=10.4.4.4")],
                "2001:db8:ffff::1",
                "all trusted: leftmost",
            ),
            (
                proxy,
                &[("forwarded", "for=_hidden")],
                proxy,
                "obfuscated: peer",
            ),
            (
                proxy,
                &[("forwarded", "for=unknown")],
                proxy,
                "unknown: peer",
            ),
            (
                proxy,
                &[("forwarded", "for=203.0.113.9, for=_hidden")],
                proxy,
                "obfuscated deciding entry: peer",
            ),
            (
                proxy,
                &[("forwarded", "for=_hidden, for=203.0.113.9")],
                "203.0.113.9",
                "obfuscated left of the client",
            ),
            (
                proxy,
                &[("forwarded", "for=\"203.0.113.9:_p1\"")],
                "203.0.113.9",
                "obfuscated port",
            ),
            (
                proxy,
                &[("forwarded", "proto=https")],
                proxy,
                "element without for: peer",
            ),
            (
                proxy,
                &[("forwarded", "for=\"203.0.113.9")],
                proxy,
                "unterminated quote: peer",
            ),
            (
                proxy,
                &[("forwarded", "for=[2001:db8::1]")],
                proxy,
                "unquoted brackets do not parse: peer",
            ),
            (
                proxy,
                &[("forwarded", "for")],
                proxy,
                "pair without value: peer",
            ),
            (
                proxy,
                &[("forwarded", "garbage"), ("x-forwarded-for", "203.0.113.9")],
                proxy,
                "bad Forwarded does not fall back to XFF",
            ),
            (
                proxy,
                &[
                    ("forwarded", "for=198.51.100.2"),
                    ("x-forwarded-for", "203.0.113.9"),
                ],
                "198.51.100.2",
                "Forwarded wins over XFF",
            ),
            (
                proxy,
                &[
                    ("forwarded", "for=6.6.6.6"),
                    ("forwarded", "for=203.0.113.9"),
                ],
                "203.0.113.9",
                "several Forwarded headers join in order",
            ),
            (
                proxy,
                &[("forwarded", "for=\"1.2.3.4, 5.6.7.8\"")],
                proxy,
                "comma inside quotes is one bad node",
            ),
            (
                "::ffff:10.0.0.1",
                &[("x-forwarded-for", "203.0.113.9")],
                "203.0.113.9",
                "IPv4-mapped trusted peer",
            ),
            (
                "2001:db8:ffff::9",
                &[("forwarded", "for=\"[2001:db8::5]\"")],
                "2001:db8::5",
                "IPv6 trusted peer",
            ),
        ];
        for (peer, pairs, expected, what) in cases {
            let got = client_addr(peer.parse().unwrap(), &headers(pairs), &trusted);
            assert_eq!(got, expected.parse::<IpAddr>().unwrap(), "{what}");
        }
    }

    #[test]
    fn no_trusted_networks_means_the_peer_always() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=1.2.3.4"),
        ]);
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(client_addr(peer, &h, &[]), peer);
    }

    #[test]
    fn a_huge_header_of_trusted_hops_is_walked_without_failing() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let chain = vec!["10.9.9.9"; 2000].join(", ");
        let h = headers(&[("x-forwarded-for", &format!("203.0.113.1, {chain}"))]);
        let got = client_addr("10.0.0.1".parse().unwrap(), &h, &trusted);
        assert_eq!(got, "203.0.113.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_ipv4_ones_by_address() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(
            bucket(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(bucket(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(bucket(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(bucket(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }
}
