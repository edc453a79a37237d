//! The siteverify body: never panics and never hands back an empty secret or response. The
//! input's first line is the content type, the rest the body.
#![no_main]

use caputchin_forwarder::web::siteverify::parse_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let content_type = String::from_utf8_lossy(&data[..end]);
    let body = data.get(end + 1..).unwrap_or_default();
    if let Some(request) = parse_body(&content_type, body) {
        assert!(request.secret.as_deref() != Some(""));
        assert!(request.response.as_deref() != Some(""));
    }
});
