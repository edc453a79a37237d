//! The `platform.sessionId` of Caputchin's widget (SPEC §13, CAPUTCHIN-WIDGET-PROTOCOL §5–§6):
//! a tag over the challenge token under its own purpose key. `verify/start` hands it out beside
//! the token and `verify/pass` checks the pair, so a session costs no storage, like the
//! challenge itself (SPEC §2).

use crate::keys::Purpose;

/// Bytes of the tag a session id carries (128 bits).
const SESSION_TAG_BYTES: usize = 16;

/// The session id of a challenge token: 32 lowercase hex digits.
pub fn session_id(key: &Purpose, challenge_token: &str) -> String {
    let tag = key.sign(&[challenge_token.as_bytes()]);
    crate::ids::to_hex(&tag[..SESSION_TAG_BYTES])
}

/// True when `session_id` is the session id of `challenge_token` (compared in constant time).
pub fn is_session_of(key: &Purpose, challenge_token: &str, session_id: &str) -> bool {
    if session_id.len() != SESSION_TAG_BYTES * 2 {
        return false;
    }
    match crate::ids::from_hex(session_id) {
        Some(tag) => key.verify(&[challenge_token.as_bytes()], &tag),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Keys, ServerKey};

    #[test]
    fn a_session_id_matches_only_its_own_token_under_its_own_key() {
        let keys = Keys::derive(ServerKey::from_bytes(&[7; 32]));
        let key = keys.widget_session();
        let id = session_id(key, "token-a");
        assert_eq!(id.len(), 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(is_session_of(key, "token-a", &id));
        assert!(!is_session_of(key, "token-b", &id));
        assert!(!is_session_of(keys.test_form(), "token-a", &id));
        let other = Keys::derive(ServerKey::from_bytes(&[8; 32]));
        assert!(!is_session_of(other.widget_session(), "token-a", &id));
        assert!(!is_session_of(key, "token-a", &id[..30]));
        assert!(!is_session_of(key, "token-a", ""));
        assert!(!is_session_of(key, "token-a", &"zz".repeat(16)));
    }
}
