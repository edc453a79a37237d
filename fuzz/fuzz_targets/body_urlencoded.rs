//! The urlencoded form body: never panics, accepted bodies respect the limits, and (with limits
//! out of reach) the result is what an independent decoder of SPEC §3's rules makes of it.
#![no_main]

use caputchin_forwarder::submission::body::BodyError;
use fuzz_support::{TOKEN_FIELDS, check_body};
use libfuzzer_sys::fuzz_target;

/// Decodes one name or value: `+` is a space, `%` needs two hex digits, the result is UTF-8.
fn decode(encoded: &[u8]) -> Option<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < encoded.len() {
        match encoded[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(encoded.get(i + 1..i + 3)?).ok()?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The ordered, joined fields and the first non-empty token, or `None` for a malformed body.
fn reference(data: &[u8]) -> Option<(Vec<(String, String)>, Option<String>)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut token = None;
    for pair in data.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        let (name, value) = (decode(name)?, decode(value)?);
        if TOKEN_FIELDS.contains(&name.as_str()) {
            if token.is_none() && !value.is_empty() {
                token = Some(value);
            }
        } else if let Some((_, joined)) = fields.iter_mut().find(|(n, _)| *n == name) {
            joined.push_str(", ");
            joined.push_str(&value);
        } else {
            fields.push((name, value));
        }
    }
    Some((fields, token))
}

fuzz_target!(|data: &[u8]| {
    let got = check_body("application/x-www-form-urlencoded", data).map(|parsed| {
        let fields = parsed
            .fields
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect::<Vec<_>>();
        (fields, parsed.token)
    });
    assert_eq!(got, reference(data).ok_or(BodyError::Malformed));
});
