//! Verification tokens: no string decodes without the key, claims built from the input round
//! trip, and changing any one byte of a real token makes it invalid.
#![no_main]

use caputchin_forwarder::keys::ServerKey;
use caputchin_forwarder::captcha::token::{self, Claims};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = ServerKey::from_bytes(b"fuzzing-key-fuzzing-key-fuzzing-key!");
    let text = String::from_utf8_lossy(data);
    assert!(token::decode(&key, &text).is_err(), "forged token accepted");

    let (left, right) = data.split_at(data.len() / 2);
    let number = data
        .iter()
        .fold(0u64, |n, &b| n.rotate_left(8) ^ u64::from(b));
    let mut game_id = String::from_utf8_lossy(right).into_owned();
    while game_id.len() > token::MAX_GAME_ID_BYTES {
        game_id.pop();
    }
    // Integer scores only: float scores may come back one ULP off (see tests/properties.rs).
    let claims = Claims {
        session_id: String::from_utf8_lossy(left).into_owned(),
        game_id: Some(game_id),
        score: Some((number as i64).into()),
        duration_ms: Some(number),
        ..Claims::new(&text, number as i64)
    };
    let Some(encoded) = token::encode(&key, &claims) else {
        return;
    };
    assert_eq!(token::decode(&key, &encoded).as_ref(), Ok(&claims));
    let mut bytes = encoded.into_bytes();
    let at = usize::try_from(number).unwrap_or(0) % bytes.len();
    bytes[at] = if bytes[at] == b'A' { b'.' } else { b'A' };
    let changed = String::from_utf8(bytes).unwrap_or_default();
    assert!(
        token::decode(&key, &changed).is_err(),
        "changed token accepted"
    );
});
