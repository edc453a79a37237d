//! Verification tokens (SPEC §2): `base64url(JSON payload) "." base64url(HMAC-SHA256(server key,
//! payload part))`, at most 2 KiB. What redeem hands the widget and the form posts back.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::keys::{self, ServerKey};

/// Longest token accepted or produced, in bytes.
pub const MAX_TOKEN_BYTES: usize = 2048;
/// How long a token lives: 10 minutes (SPEC §2).
pub const TOKEN_LIFETIME_MS: i64 = 10 * 60 * 1000;
/// Longest client-claimed `game_id`, in bytes.
pub const MAX_GAME_ID_BYTES: usize = 128;
const VERSION: u8 = 1;

/// What a token says. The game fields are client-claimed metadata, never a trust signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Payload format version (1).
    pub v: u8,
    /// The verification session id (the envelope's `session_id`).
    pub session_id: String,
    /// The public key of the site the token was issued for.
    pub site_key: String,
    /// Issued at, epoch ms.
    pub issued_at: i64,
    /// Expires at, epoch ms.
    pub expires_at: i64,
    /// The game played, if any.
    pub game_id: Option<String>,
    /// The game score, if any.
    pub score: Option<serde_json::Number>,
    /// Time spent in the game, if any.
    pub duration_ms: Option<u64>,
}

impl Claims {
    /// Claims for a new session on `site_key`, issued at `now_ms`, without game metadata.
    pub fn new(site_key: &str, now_ms: i64) -> Claims {
        Claims {
            v: VERSION,
            session_id: crate::ids::random_id::<16>("ses_"),
            site_key: site_key.to_owned(),
            issued_at: now_ms,
            expires_at: now_ms.saturating_add(TOKEN_LIFETIME_MS),
            game_id: None,
            score: None,
            duration_ms: None,
        }
    }
}

/// Why a token string is not a token of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Too long, not two base64url parts, or not our JSON.
    #[error("malformed token")]
    Malformed,
    /// The MAC does not match.
    #[error("token signature mismatch")]
    BadSignature,
}

/// Signs claims into a token. `None` if the result would exceed 2 KiB.
pub fn encode(key: &ServerKey, claims: &Claims) -> Option<String> {
    let json = serde_json::to_vec(claims).ok()?;
    let mut token = URL_SAFE_NO_PAD.encode(json);
    let tag = keys::sign(key, &[token.as_bytes()]);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut token);
    (token.len() <= MAX_TOKEN_BYTES).then_some(token)
}

/// Checks a token's shape and MAC (constant-time) and returns its claims. Expiry and single use
/// are the caller's to check.
pub fn decode(key: &ServerKey, token: &str) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let mut tag_bytes = [0u8; 32];
    match URL_SAFE_NO_PAD.decode_slice(tag, &mut tag_bytes) {
        Ok(32) => {}
        _ => return Err(TokenError::Malformed),
    }
    if !keys::verify(key, &[payload.as_bytes()], &tag_bytes) {
        return Err(TokenError::BadSignature);
    }
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if claims.v != VERSION {
        return Err(TokenError::Malformed);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ServerKey {
        ServerKey::from_bytes(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let mut claims = Claims::new("cpt_pub_x", 1_000);
        claims.game_id = Some("caputchin/games/leaf-memory".into());
        claims.score = Some(847.into());
        claims.duration_ms = Some(4200);
        let token = encode(&key(), &claims).unwrap();
        assert!(token.len() <= MAX_TOKEN_BYTES);
        assert_eq!(decode(&key(), &token).unwrap(), claims);
        assert_eq!(claims.expires_at - claims.issued_at, 600_000);
    }

    #[test]
    fn any_changed_byte_is_rejected() {
        let token = encode(&key(), &Claims::new("cpt_pub_x", 1_000)).unwrap();
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] ^= 0x01;
            let Ok(changed) = String::from_utf8(bytes) else {
                continue;
            };
            assert!(decode(&key(), &changed).is_err(), "position {i}");
        }
    }

    #[test]
    fn other_keys_and_malformed_strings_are_rejected() {
        let token = encode(&key(), &Claims::new("cpt_pub_x", 1_000)).unwrap();
        let other = ServerKey::from_bytes(&[0u8; 32]);
        assert_eq!(decode(&other, &token), Err(TokenError::BadSignature));
        for bad in ["", ".", "abc", "abc.def", &"a".repeat(3000)] {
            assert!(decode(&key(), bad).is_err());
        }
        // A correctly signed payload that is not our JSON.
        let payload = URL_SAFE_NO_PAD.encode(b"{\"v\":1}");
        let tag = URL_SAFE_NO_PAD.encode(keys::sign(&key(), &[payload.as_bytes()]));
        assert_eq!(
            decode(&key(), &format!("{payload}.{tag}")),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn oversized_claims_are_not_encoded() {
        let mut claims = Claims::new("cpt_pub_x", 1_000);
        claims.game_id = Some("g".repeat(2000));
        assert!(encode(&key(), &claims).is_none());
    }
}
