//! Helpers shared by the fuzz targets: running the body parser, the invariants every accepted
//! body must satisfy, and the independent SPEC §5 reference the IP policy is checked against.

use std::net::Ipv4Addr;

use actix_web::web::Bytes;
use caputchin_forwarder::submission::body::{self, BodyError, Limits, Parsed};
use futures_util::FutureExt;

/// The token fields the form endpoint strips for the built-in issuer and one remote verifier.
pub const TOKEN_FIELDS: &[&str] = &["caputchin-token", "cf-turnstile-response"];

/// Limits nothing small enough to fuzz can reach.
pub const GENEROUS: Limits = Limits {
    max_fields: 1 << 20,
    max_name_bytes: 1 << 20,
};

/// Limits the fuzzer reaches easily.
pub const TIGHT: Limits = Limits {
    max_fields: 3,
    max_name_bytes: 5,
};

/// Runs the body parser, which must finish on its first poll: every byte is already in memory,
/// and a parser that waited would hang the request forever.
pub fn parse_now(content_type: &str, body: &[u8], limits: &Limits) -> Result<Parsed, BodyError> {
    body::parse(
        Some(content_type),
        Bytes::copy_from_slice(body),
        TOKEN_FIELDS,
        limits,
    )
    .now_or_never()
    .unwrap_or_else(|| panic!("the body parser waited on a body that is fully in memory"))
}

/// Parses with both limit sets and checks the invariants of every accepted body.
pub fn check_body(content_type: &str, body: &[u8]) -> Result<Parsed, BodyError> {
    let tight = parse_now(content_type, body, &TIGHT);
    if let Ok(parsed) = &tight {
        assert_within(parsed, &TIGHT);
    }
    let generous = parse_now(content_type, body, &GENEROUS);
    if let Ok(parsed) = &generous {
        assert_within(parsed, &GENEROUS);
    }
    // Limits are the last check, so tighter limits can only turn success into a limit error.
    match (&generous, &tight) {
        (Ok(_), Ok(_) | Err(BodyError::TooManyFields | BodyError::NameTooLong)) => {}
        (Err(a), Err(b)) if a == b => {}
        (a, b) => panic!("generous limits gave {a:?} but tight limits gave {b:?}"),
    }
    generous
}

/// The limits hold, no token field is kept, and a returned token is not empty.
pub fn assert_within(parsed: &Parsed, limits: &Limits) {
    assert!(parsed.fields.len() <= limits.max_fields, "too many fields");
    for (name, _) in parsed.fields.iter() {
        assert!(name.len() <= limits.max_name_bytes, "name too long");
        assert!(!TOKEN_FIELDS.contains(&name), "token field kept");
    }
    assert!(parsed.token.as_ref().is_none_or(|token| !token.is_empty()));
}

/// The IPv4 ranges SPEC §5 blocks (`reference/callback-ssrf-rules.txt` plus SPEC's own list).
pub const SPEC_V4: &[(u32, u32)] = &[
    (0x7f00_0000, 8),  // 127.0.0.0/8
    (0x0a00_0000, 8),  // 10.0.0.0/8
    (0xac10_0000, 12), // 172.16.0.0/12
    (0xc0a8_0000, 16), // 192.168.0.0/16
    (0xa9fe_0000, 16), // 169.254.0.0/16
    (0x0000_0000, 8),  // 0.0.0.0/8
    (0x6440_0000, 10), // 100.64.0.0/10
    (0xc000_0000, 24), // 192.0.0.0/24
    (0xc000_0200, 24), // 192.0.2.0/24
    (0xc612_0000, 15), // 198.18.0.0/15
    (0xc633_6400, 24), // 198.51.100.0/24
    (0xcb00_7100, 24), // 203.0.113.0/24
    (0xe000_0000, 4),  // 224.0.0.0/4
    (0xf000_0000, 4),  // 240.0.0.0/4
    (0xffff_ffff, 32), // 255.255.255.255/32
];

/// Whether SPEC §5 blocks this IPv4 address, by plain integer masks.
pub fn spec_blocks_v4(ip: Ipv4Addr) -> bool {
    let ip = u32::from(ip);
    SPEC_V4.iter().any(|&(base, len)| {
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        ip & mask == base
    })
}
