//! hCaptcha: form-encoded `secret`, `response`, and `sitekey` when configured.

use serde_json::Value;

use super::{Check, Provider, Verdict, form_body, standard_verdict};

pub(super) struct Hcaptcha;

impl Provider for Hcaptcha {
    fn request(&self, check: &Check<'_>) -> (&'static str, Vec<u8>) {
        match check.sitekey {
            Some(sitekey) => form_body(&[
                ("secret", check.secret),
                ("response", check.token),
                ("sitekey", sitekey),
            ]),
            None => form_body(&[("secret", check.secret), ("response", check.token)]),
        }
    }

    fn verdict(&self, answer: &Value) -> Verdict {
        standard_verdict(answer)
    }
}
