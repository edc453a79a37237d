//! The egress IP policy: every IPv4 address is judged as the SPEC §5 reference says, in its
//! dotted, integer, hex and octal URL spellings alike; its IPv4-mapped form is always blocked
//! and its NAT64 form is judged as it is. Any text as a URL host never panics.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use caputchin_forwarder::egress::policy::{EgressPolicy, literal_host};
use fuzz_support::spec_blocks_v4;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let policy = EgressPolicy::default();
    if let Some(&[a, b, c, d]) = data.first_chunk::<4>() {
        let v4 = Ipv4Addr::new(a, b, c, d);
        let blocked = policy.check(IpAddr::V4(v4)).is_err();
        assert_eq!(blocked, spec_blocks_v4(v4), "{v4}");
        assert!(
            policy.check(IpAddr::V6(v4.to_ipv6_mapped())).is_err(),
            "{v4} mapped"
        );
        let nat64 = Ipv6Addr::from((0x0064_ff9b_u128 << 96) | u128::from(u32::from(v4)));
        assert_eq!(policy.check(IpAddr::V6(nat64)).is_err(), blocked, "{nat64}");
        let n = u32::from(v4);
        for raw in [
            format!("http://{n}/"),
            format!("http://0x{n:x}/"),
            format!("http://0{n:o}/"),
        ] {
            let url = url::Url::parse(&raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            let literal = url.host().as_ref().and_then(literal_host);
            assert_eq!(literal, Some(IpAddr::V4(v4)), "{raw}");
        }
    }
    if let Some(octets) = data.first_chunk::<16>() {
        let v6 = Ipv6Addr::from(*octets);
        let verdict = policy.check(IpAddr::V6(v6));
        if let Some(v4) = v6.to_ipv4_mapped() {
            assert!(verdict.is_err(), "{v6} is IPv4-mapped for {v4}");
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(url) = url::Url::parse(&format!("http://{text}/")) {
        if let Some(ip) = url.host().as_ref().and_then(literal_host) {
            let _ = policy.check(ip);
        }
    }
    let _ = literal_host(&url::Host::Domain(&text));
});
