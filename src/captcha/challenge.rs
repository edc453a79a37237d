//! Challenge tokens: the `token` a Cap challenge response carries. It is MAC-signed and holds
//! everything redeem needs (expiry, the challenge shape, a random id), so issuing a challenge
//! writes nothing (SPEC §2). It is ASCII (base64url) because the widget seeds its PRNG with it.

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

/// Signs a new challenge for `site_key`.
pub fn issue(key: &ServerKey, site_key: &str, challenge: &Challenge) -> String {
    let mut raw = [0u8; TOKEN_BYTES];
    raw[0] = VERSION;
    raw[1..9].copy_from_slice(&challenge.expires_at.to_be_bytes());
    raw[9..11].copy_from_slice(&challenge.params.count.to_be_bytes());
    raw[11] = challenge.params.size;
    raw[12] = challenge.params.difficulty;
    raw[13..29].copy_from_slice(&challenge.id);
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
    let expires_at = i64::from_be_bytes(payload[1..9].try_into().ok()?);
    let count = u16::from_be_bytes(payload[9..11].try_into().ok()?);
    let params = ChallengeParams {
        count,
        size: payload[11],
        difficulty: payload[12],
    };
    let id: [u8; 16] = payload[13..29].try_into().ok()?;
    Some(Challenge {
        id,
        expires_at,
        params,
    })
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
}
