//! Challenge tokens: the `token` a Cap challenge response carries. It is MAC-signed and holds
//! everything redeem needs (expiry, the challenge shape, a random id), so issuing a challenge
//! writes nothing (SPEC §2). It is ASCII (base64url) because the widget seeds its PRNG with it.
//!
//! Two versions: a Cap token (version 1) is bound to its site by the MAC, and the redeem URL
//! names the site; a token for Caputchin's widget (version 2, SPEC §13) also carries the site
//! key itself, because `verify/pass` names no site.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::cap::ChallengeParams;
use crate::keys::{self, ServerKey};

const VERSION: u8 = 1;
const PAYLOAD_BYTES: usize = 1 + 8 + 2 + 1 + 1 + 16;
const TAG_BYTES: usize = 16;
const TOKEN_BYTES: usize = PAYLOAD_BYTES + TAG_BYTES;
/// Length of an encoded challenge token in characters.
pub const TOKEN_CHARS: usize = (TOKEN_BYTES * 4).div_ceil(3);
/// Domain separation: a challenge MAC can never be mistaken for a verification-token MAC.
const DOMAIN: &[u8] = b"caputchin-challenge-v1\0";
/// The version of a token that carries its site key.
const VERSION_NAMED: u8 = 2;
/// Its own domain: a token of one version never opens as the other.
const DOMAIN_NAMED: &[u8] = b"caputchin-challenge-v2\0";
/// Longest site key a named token carries.
pub const MAX_NAMED_SITE_BYTES: usize = 64;

/// What a valid challenge token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    /// Random id; the spent-challenge record is keyed by it.
    pub id: [u8; 16],
    /// When the challenge stops being redeemable, epoch ms.
    pub expires_at: i64,
    /// The challenge's shape, fixed when it was issued.
    pub params: ChallengeParams,
}

/// Writes the fixed part of a payload: version, expiry, shape and id.
fn write_payload(raw: &mut [u8], version: u8, challenge: &Challenge) {
    raw[0] = version;
    raw[1..9].copy_from_slice(&challenge.expires_at.to_be_bytes());
    raw[9..11].copy_from_slice(&challenge.params.count.to_be_bytes());
    raw[11] = challenge.params.size;
    raw[12] = challenge.params.difficulty;
    raw[13..29].copy_from_slice(&challenge.id);
}

/// Reads the fixed part of a payload (after its version byte was checked).
fn read_payload(payload: &[u8]) -> Option<Challenge> {
    let expires_at = i64::from_be_bytes(payload.get(1..9)?.try_into().ok()?);
    let count = u16::from_be_bytes(payload.get(9..11)?.try_into().ok()?);
    let params = ChallengeParams {
        count,
        size: *payload.get(11)?,
        difficulty: *payload.get(12)?,
    };
    let id: [u8; 16] = payload.get(13..29)?.try_into().ok()?;
    Some(Challenge {
        id,
        expires_at,
        params,
    })
}

/// Signs a new challenge for `site_key`.
pub fn issue(key: &ServerKey, site_key: &str, challenge: &Challenge) -> String {
    let mut raw = [0u8; TOKEN_BYTES];
    write_payload(&mut raw, VERSION, challenge);
    let tag = keys::sign(
        key,
        &[DOMAIN, site_key.as_bytes(), b"\0", &raw[..PAYLOAD_BYTES]],
    );
    raw[PAYLOAD_BYTES..].copy_from_slice(&tag[..TAG_BYTES]);
    URL_SAFE_NO_PAD.encode(raw)
}

/// Opens a challenge token issued for `site_key`; `None` when it is malformed, was signed for
/// another site, or was not signed by this server. Expiry is the caller's to check.
pub fn open(key: &ServerKey, site_key: &str, token: &str) -> Option<Challenge> {
    if token.len() != TOKEN_CHARS {
        return None;
    }
    let mut raw = [0u8; TOKEN_BYTES];
    let n = URL_SAFE_NO_PAD.decode_slice(token, &mut raw).ok()?;
    if n != TOKEN_BYTES || raw[0] != VERSION {
        return None;
    }
    let (payload, tag) = raw.split_at(PAYLOAD_BYTES);
    if !keys::verify(key, &[DOMAIN, site_key.as_bytes(), b"\0", payload], tag) {
        return None;
    }
    read_payload(payload)
}

/// A site key a named token can carry: 1 to [`MAX_NAMED_SITE_BYTES`] printable ASCII bytes.
fn nameable(site_key: &[u8]) -> bool {
    (1..=MAX_NAMED_SITE_BYTES).contains(&site_key.len())
        && site_key.iter().all(u8::is_ascii_graphic)
}

/// Signs a new challenge that carries `site_key` itself (version 2); `None` for a site key it
/// cannot carry.
pub fn issue_named(key: &ServerKey, site_key: &str, challenge: &Challenge) -> Option<String> {
    if !nameable(site_key.as_bytes()) {
        return None;
    }
    let payload_len = PAYLOAD_BYTES + site_key.len();
    let mut raw = vec![0u8; payload_len + TAG_BYTES];
    write_payload(&mut raw, VERSION_NAMED, challenge);
    raw[PAYLOAD_BYTES..payload_len].copy_from_slice(site_key.as_bytes());
    let tag = keys::sign(key, &[DOMAIN_NAMED, &raw[..payload_len]]);
    raw[payload_len..].copy_from_slice(&tag[..TAG_BYTES]);
    Some(URL_SAFE_NO_PAD.encode(raw))
}

/// Opens a token made by [`issue_named`]: the site key it carries and the challenge; `None` when
/// it is malformed, of the other version, or was not signed by this server. Expiry is the
/// caller's to check.
pub fn open_named(key: &ServerKey, token: &str) -> Option<(String, Challenge)> {
    let longest = ((PAYLOAD_BYTES + MAX_NAMED_SITE_BYTES + TAG_BYTES) * 4).div_ceil(3);
    if token.len() <= TOKEN_CHARS || token.len() > longest {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
    if raw.len() <= TOKEN_BYTES || raw.first() != Some(&VERSION_NAMED) {
        return None;
    }
    let (payload, tag) = raw.split_at(raw.len() - TAG_BYTES);
    if !keys::verify(key, &[DOMAIN_NAMED, payload], tag) {
        return None;
    }
    let site_key = payload.get(PAYLOAD_BYTES..)?;
    if !nameable(site_key) {
        return None;
    }
    let site_key = std::str::from_utf8(site_key).ok()?.to_owned();
    Some((site_key, read_payload(payload)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Challenge {
        Challenge {
            id: [9; 16],
            expires_at: 1_700_000_000_000,
            params: ChallengeParams {
                count: 50,
                size: 32,
                difficulty: 4,
            },
        }
    }

    #[test]
    fn round_trips_and_is_ascii() {
        let key = ServerKey::from_bytes(&[1; 32]);
        let token = issue(&key, "cpt_pub_a", &sample());
        assert_eq!(token.len(), TOKEN_CHARS);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(open(&key, "cpt_pub_a", &token), Some(sample()));
    }

    #[test]
    fn another_site_another_key_or_any_changed_character_is_refused() {
        let key = ServerKey::from_bytes(&[1; 32]);
        let token = issue(&key, "cpt_pub_a", &sample());
        assert_eq!(open(&key, "cpt_pub_b", &token), None);
        assert_eq!(
            open(&ServerKey::from_bytes(&[2; 32]), "cpt_pub_a", &token),
            None
        );
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            if changed != token {
                assert_eq!(open(&key, "cpt_pub_a", &changed), None, "position {i}");
            }
        }
        assert_eq!(open(&key, "cpt_pub_a", ""), None);
        assert_eq!(open(&key, "cpt_pub_a", &token[1..]), None);
    }

    const SITE: &str = "cpt_pub_0123456789abcdef01234567";

    #[test]
    fn a_named_token_round_trips_with_its_site_and_is_ascii() {
        let key = ServerKey::from_bytes(&[1; 32]);
        let token = issue_named(&key, SITE, &sample()).unwrap();
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(open_named(&key, &token), Some((SITE.to_owned(), sample())));
    }

    #[test]
    fn a_named_token_opens_only_as_itself_under_its_key_and_unchanged() {
        let key = ServerKey::from_bytes(&[1; 32]);
        let named = issue_named(&key, SITE, &sample()).unwrap();
        let cap = issue(&key, SITE, &sample());
        // Neither version opens as the other.
        assert_eq!(open(&key, SITE, &named), None);
        assert_eq!(open_named(&key, &cap), None);
        assert_eq!(open_named(&ServerKey::from_bytes(&[2; 32]), &named), None);
        for i in 0..named.len() {
            let mut bytes = named.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            if changed != named {
                assert_eq!(open_named(&key, &changed), None, "position {i}");
            }
        }
        assert_eq!(open_named(&key, &named[..named.len() - 1]), None);
        assert_eq!(open_named(&key, ""), None);
    }

    #[test]
    fn site_keys_a_named_token_cannot_carry_are_refused() {
        let key = ServerKey::from_bytes(&[1; 32]);
        assert_eq!(issue_named(&key, "", &sample()), None);
        assert_eq!(issue_named(&key, "cpt pub", &sample()), None);
        assert_eq!(issue_named(&key, &"k".repeat(65), &sample()), None);
        let longest = issue_named(&key, &"k".repeat(64), &sample()).unwrap();
        assert_eq!(open_named(&key, &longest).unwrap().0, "k".repeat(64));
    }
}
