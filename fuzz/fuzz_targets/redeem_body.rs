//! The Cap redeem body: never panics, and an accepted body has at most 500 solutions and a
//! game id that is non-empty, at most 128 bytes and free of control characters.
#![no_main]

use caputchin_forwarder::captcha::cap::MAX_CHALLENGE_COUNT;
use caputchin_forwarder::captcha::token::MAX_GAME_ID_BYTES;
use caputchin_forwarder::web::cap::parse_redeem_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(request) = parse_redeem_body(data) else {
        return;
    };
    assert!(request.solutions.len() <= usize::from(MAX_CHALLENGE_COUNT));
    if let Some(game_id) = &request.game_id {
        assert!(!game_id.is_empty() && game_id.len() <= MAX_GAME_ID_BYTES);
        assert!(!game_id.chars().any(char::is_control));
    }
    assert!(serde_json::from_slice::<serde_json::Value>(data).is_ok_and(|v| v.is_object()));
});
