//! Challenge tokens: no string opens without the key, a challenge built from the input opens
//! for its own site only, and changing any one character makes it refuse to open.
#![no_main]

use caputchin_forwarder::captcha::cap::ChallengeParams;
use caputchin_forwarder::captcha::challenge::{self, Challenge};
use caputchin_forwarder::keys::ServerKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = ServerKey::from_bytes(b"fuzzing-key-fuzzing-key-fuzzing-key!");
    let text = String::from_utf8_lossy(data);
    assert_eq!(
        challenge::open(&key, "cpt_pub_fuzz", &text),
        None,
        "forged challenge"
    );

    let mut raw = [0u8; 29];
    for (slot, byte) in raw.iter_mut().zip(data) {
        *slot = *byte;
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&raw[13..29]);
    let issued = Challenge {
        id,
        expires_at: i64::from_be_bytes(raw[0..8].try_into().unwrap_or_default()),
        params: ChallengeParams {
            count: u16::from_be_bytes([raw[8], raw[9]]),
            size: raw[10],
            difficulty: raw[11],
        },
    };
    let site_key = String::from_utf8_lossy(data.get(29..).unwrap_or_default()).into_owned();
    let token = challenge::issue(&key, &site_key, &issued);
    assert_eq!(challenge::open(&key, &site_key, &token), Some(issued));
    let other_site = format!("{site_key}x");
    assert_eq!(challenge::open(&key, &other_site, &token), None);
    let mut bytes = token.into_bytes();
    let at = usize::from(raw[12]) % bytes.len();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(bytes).unwrap_or_default();
    assert_eq!(challenge::open(&key, &site_key, &changed), None);
});
