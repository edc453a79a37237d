//! The JSON form body: never panics, accepted bodies respect the limits, and a body is accepted
//! (with limits out of reach) exactly when serde_json reads it as an object of strings.
#![no_main]

use caputchin_forwarder::submission::body::BodyError;
use fuzz_support::check_body;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let parsed = check_body("application/json", data);
    let flat = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(object)) => object.values().all(Value::is_string),
        _ => false,
    };
    match parsed {
        Ok(_) => assert!(flat, "accepted a body that is not a flat object of strings"),
        Err(BodyError::Malformed) => assert!(!flat, "refused a flat object of strings"),
        Err(other) => panic!("a JSON body failed with {other:?}"),
    }
});
