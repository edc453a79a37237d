//! Google reCAPTCHA: form-encoded `secret` and `response`.

use serde_json::Value;

use super::{Check, Provider, Verdict, form_body, standard_verdict};

pub(super) struct Recaptcha;

impl Provider for Recaptcha {
    fn request(&self, check: &Check<'_>) -> (&'static str, Vec<u8>) {
        form_body(&[("secret", check.secret), ("response", check.token)])
    }

    fn verdict(&self, answer: &Value) -> Verdict {
        standard_verdict(answer)
    }
}
