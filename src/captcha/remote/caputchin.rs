//! Caputchin's `/v1/siteverify`: JSON `{secret, response}`; `platform` fills the game fields.

use serde_json::{Value, json};

use super::{Check, Provider, Verdict, standard_verdict};

pub(super) struct Caputchin;

impl Provider for Caputchin {
    fn request(&self, check: &Check<'_>) -> (&'static str, Vec<u8>) {
        let body = json!({"secret": check.secret, "response": check.token});
        ("application/json", body.to_string().into_bytes())
    }

    fn verdict(&self, answer: &Value) -> Verdict {
        match standard_verdict(answer) {
            Verdict::Accepted { hostname, .. } => {
                let platform = answer.get("platform");
                let field = |name: &str| platform.and_then(|p| p.get(name));
                Verdict::Accepted {
                    hostname,
                    game_id: field("game_id")
                        .and_then(Value::as_str)
                        .filter(|g| g.len() <= crate::captcha::token::MAX_GAME_ID_BYTES)
                        .map(str::to_owned),
                    score: field("score").and_then(|s| s.as_number().cloned()),
                    duration_ms: field("duration_ms").and_then(Value::as_u64),
                }
            }
            other => other,
        }
    }
}
