//! Remote verifiers (SPEC §8): a site may name a siteverify-style service instead of the
//! built-in issuer. One call per submission, over a client of its own (separate from webhook
//! egress), to a URL vetted by the same egress policy, bounded in time; any doubt fails closed.

mod caputchin;
mod hcaptcha;
mod recaptcha;
mod turnstile;

use std::time::Duration;

use actix_web::web::Bytes;
use futures_util::StreamExt as _;
use serde_json::Value;

use crate::egress::resolve::Egress;
use crate::egress::webhook_url::WebhookUrl;
use crate::sites::VerifierKind;

/// Largest verifier answer read.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// What one verification needs.
#[derive(Debug, Clone)]
pub struct Check<'a> {
    /// The site's secret at the provider.
    pub secret: &'a str,
    /// The token the widget posted.
    pub token: &'a str,
    /// hCaptcha's site key, when configured.
    pub sitekey: Option<&'a str>,
    /// A key that makes a retried request safe (Turnstile), unique per submission.
    pub idempotency_key: &'a str,
}

/// The verifier's answer, mapped onto the forwarder's codes.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Accepted; the hostname the provider saw (Turnstile) and Caputchin's game fields.
    Accepted {
        /// The hostname the token was solved on, when the provider says.
        hostname: Option<String>,
        /// Caputchin's `platform.game_id`.
        game_id: Option<String>,
        /// Caputchin's `platform.score`.
        score: Option<serde_json::Number>,
        /// Caputchin's `platform.duration_ms`.
        duration_ms: Option<u64>,
    },
    /// The provider says the token is missing (400 `missing-token`).
    Missing,
    /// The provider rejects the token (403 `invalid-token`).
    Invalid,
    /// Expired or already used (403 `timeout-or-duplicate`).
    TimeoutOrDuplicate,
    /// Issued for another site (403 `site-mismatch`).
    SiteMismatch,
    /// Unreachable, slow, non-2xx, malformed, or misconfigured: fail closed (503
    /// `verifier-unavailable`). The text is for the log.
    Unavailable(String),
}

/// One provider's request shape and answer shape.
trait Provider: Sync {
    /// The request body and its content type.
    fn request(&self, check: &Check<'_>) -> (&'static str, Vec<u8>);
    /// Interprets a 2xx JSON answer.
    fn verdict(&self, answer: &Value) -> Verdict;
}

fn provider(kind: VerifierKind) -> Option<&'static dyn Provider> {
    match kind {
        VerifierKind::Builtin => None,
        VerifierKind::Caputchin => Some(&caputchin::Caputchin),
        VerifierKind::Turnstile => Some(&turnstile::Turnstile),
        VerifierKind::Hcaptcha => Some(&hcaptcha::Hcaptcha),
        VerifierKind::Recaptcha => Some(&recaptcha::Recaptcha),
    }
}

/// A form-encoded body.
fn form_body(pairs: &[(&str, &str)]) -> (&'static str, Vec<u8>) {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        form.append_pair(k, v);
    }
    (
        "application/x-www-form-urlencoded",
        form.finish().into_bytes(),
    )
}

/// The verdict of a `{success, error-codes}` answer shared by Turnstile, hCaptcha, reCAPTCHA
/// and Caputchin. Secret and request problems are the operator's, not the visitor's: they fail
/// closed as unavailable.
fn standard_verdict(answer: &Value) -> Verdict {
    let Some(success) = answer.get("success").and_then(Value::as_bool) else {
        return Verdict::Unavailable("answer without a boolean `success`".into());
    };
    if success {
        return Verdict::Accepted {
            hostname: answer
                .get("hostname")
                .and_then(Value::as_str)
                .map(str::to_owned),
            game_id: None,
            score: None,
            duration_ms: None,
        };
    }
    let codes: Vec<&str> = answer
        .get("error-codes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let has = |needle: &str| codes.iter().any(|c| c.contains(needle));
    if has("secret")
        || has("bad-request")
        || has("internal-error")
        || has("invalid-keys")
        || has("sitekey-secret-mismatch")
    {
        Verdict::Unavailable(format!(
            "verifier refused the request: {}",
            codes.join(", ")
        ))
    } else if has("timeout-or-duplicate") || has("already-seen") || has("expired") {
        Verdict::TimeoutOrDuplicate
    } else if has("missing-input-response") {
        Verdict::Missing
    } else if has("site-mismatch") {
        Verdict::SiteMismatch
    } else {
        Verdict::Invalid
    }
}

/// Calls the site's verifier once. Never panics; every failure to get a clear answer within
/// `timeout` is [`Verdict::Unavailable`].
pub async fn verify(
    client: &awc::Client,
    egress: &Egress,
    kind: VerifierKind,
    url: &WebhookUrl,
    check: &Check<'_>,
    timeout: Duration,
) -> Verdict {
    let Some(provider) = provider(kind) else {
        return Verdict::Unavailable("the built-in issuer is not a remote verifier".into());
    };
    match tokio::time::timeout(timeout, call(client, egress, provider, url, check)).await {
        Ok(verdict) => verdict,
        Err(_) => Verdict::Unavailable(format!("no answer within {} ms", timeout.as_millis())),
    }
}

async fn call(
    client: &awc::Client,
    egress: &Egress,
    provider: &dyn Provider,
    url: &WebhookUrl,
    check: &Check<'_>,
) -> Verdict {
    let vetted = match egress.vet(url.url()).await {
        Ok(vetted) => vetted,
        Err(e) => return Verdict::Unavailable(e.to_string()),
    };
    let Some(addr) = vetted.addrs.first().copied() else {
        return Verdict::Unavailable("no vetted address".into());
    };
    let (content_type, body) = provider.request(check);
    let sent = client
        .post(url.expose())
        .address(addr)
        .no_decompress()
        .insert_header(("content-type", content_type))
        .insert_header(("accept", "application/json"))
        .insert_header(("user-agent", crate::delivery::USER_AGENT))
        .send_body(Bytes::from(body))
        .await;
    let mut response = match sent {
        Ok(response) => response,
        Err(e) => return Verdict::Unavailable(format!("request failed: {e}")),
    };
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Verdict::Unavailable(format!("verifier answered HTTP {status}"));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.next().await {
        match chunk {
            Ok(chunk) if bytes.len() + chunk.len() <= MAX_ANSWER_BYTES => {
                bytes.extend_from_slice(&chunk);
            }
            Ok(_) => return Verdict::Unavailable("verifier answer too large".into()),
            Err(e) => return Verdict::Unavailable(format!("reading the answer failed: {e}")),
        }
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(answer) => provider.verdict(&answer),
        Err(_) => Verdict::Unavailable("verifier answer is not JSON".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn standard_answers_map_onto_the_forwarders_codes() {
        let v = |answer: Value| standard_verdict(&answer);
        assert!(matches!(
            v(json!({"success": true})),
            Verdict::Accepted { .. }
        ));
        assert_eq!(
            v(json!({"success": false, "error-codes": ["missing-input-response"]})),
            Verdict::Missing
        );
        assert_eq!(
            v(json!({"success": false, "error-codes": ["invalid-input-response"]})),
            Verdict::Invalid
        );
        assert_eq!(
            v(json!({"success": false, "error-codes": ["timeout-or-duplicate"]})),
            Verdict::TimeoutOrDuplicate
        );
        assert_eq!(
            v(json!({"success": false, "error-codes": ["invalid-or-already-seen-response"]})),
            Verdict::TimeoutOrDuplicate
        );
        assert_eq!(v(json!({"success": false})), Verdict::Invalid);
        for code in [
            "invalid-input-secret",
            "missing-input-secret",
            "bad-request",
            "internal-error",
        ] {
            assert!(
                matches!(
                    v(json!({"success": false, "error-codes": [code]})),
                    Verdict::Unavailable(_)
                ),
                "{code}"
            );
        }
        assert!(matches!(v(json!({"ok": true})), Verdict::Unavailable(_)));
        assert!(matches!(
            v(json!({"success": "true"})),
            Verdict::Unavailable(_)
        ));
    }
}
