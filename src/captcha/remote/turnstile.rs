//! Cloudflare Turnstile: form-encoded `secret`, `response` and an `idempotency_key`, so that a
//! transport retry cannot be refused as a duplicate; the answer's `hostname` is checked by the
//! caller against the site's allowed origins.

use serde_json::Value;

use super::{Check, Provider, Verdict, form_body, standard_verdict};

pub(super) struct Turnstile;

impl Provider for Turnstile {
    fn request(&self, check: &Check<'_>) -> (&'static str, Vec<u8>) {
        form_body(&[
            ("secret", check.secret),
            ("response", check.token),
            ("idempotency_key", check.idempotency_key),
        ])
    }

    fn verdict(&self, answer: &Value) -> Verdict {
        standard_verdict(answer)
    }
}
