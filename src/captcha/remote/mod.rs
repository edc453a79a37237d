//! Remote verifiers (SPEC §8): a site may name a siteverify-style service instead of the
//! built-in issuer. One call per submission, over a client of its own (separate from webhook
//! egress), to a URL vetted by the same egress policy, bounded in time; any doubt fails closed.

mod caputchin;
mod hcaptcha;
mod recaptcha;
mod turnstile;

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use serde_json::Value;

use super::VerifierKind;
use super::token::Claims;
use crate::egress::resolve::Egress;
use crate::egress::webhook_url::WebhookUrl;
use crate::keys::Sealer;
use crate::refusal::Refusal;

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

/// A site's remote verifier, as a submission to it needs it (SPEC §8).
#[derive(Debug, Clone)]
pub struct SiteVerifier<'a> {
    /// Which provider.
    pub kind: VerifierKind,
    /// The site's internal id (for the log).
    pub site_id: &'a str,
    /// The site's public key, carried into the claims.
    pub site_key: &'a str,
    /// The site's secret at the provider, sealed under the server key.
    pub sealed_secret: Option<&'a [u8]>,
    /// The provider's siteverify URL.
    pub url: Option<WebhookUrl>,
    /// hCaptcha's site key, when configured.
    pub sitekey: Option<&'a str>,
    /// The site's allowed origins: a provider that names the token's hostname must name one.
    pub allowed_origins: &'a [String],
}

/// What asking a remote verifier takes besides the site: the verifier client, the egress gate,
/// the sealer of verifier secrets and the timeout.
#[derive(Clone, Copy)]
pub struct Remote<'a> {
    /// The verifier client of this worker.
    pub client: &'a awc::Client,
    /// The egress gate the verifier's URL is vetted by.
    pub egress: &'a Egress,
    /// Opens the site's sealed secret.
    pub sealer: &'a Sealer,
    /// The whole call's bound.
    pub timeout: Duration,
}

/// Asks the site's remote verifier about `token` and returns the claims a built-in token would
/// carry: any doubt fails closed as `verifier-unavailable`, a Turnstile hostname outside a
/// restricted site's origins is `invalid-token`.
pub async fn verify_for_site(
    remote: Remote<'_>,
    site: &SiteVerifier<'_>,
    token: &str,
    now_ms: i64,
) -> Result<Claims, Refusal> {
    let unavailable = |why: &str| {
        tracing::warn!(site_id = %site.site_id, verifier = site.kind.as_str(), reason = why, "verifier unavailable");
        Refusal::VerifierUnavailable
    };
    let secret = site
        .sealed_secret
        .and_then(|sealed| remote.sealer.open(sealed))
        .ok_or_else(|| unavailable("the verifier secret cannot be opened"))?;
    let url = site
        .url
        .as_ref()
        .ok_or_else(|| unavailable("no verifier URL"))?;
    let mut claims = Claims::new(site.site_key, now_ms);
    claims.expires_at = now_ms;
    let idempotency_key = crate::ids::uuid_v4();
    let check = Check {
        secret: &secret,
        token,
        sitekey: site.sitekey,
        idempotency_key: &idempotency_key,
    };
    match verify(
        remote.client,
        remote.egress,
        site.kind,
        url,
        &check,
        remote.timeout,
    )
    .await
    {
        Verdict::Accepted {
            hostname,
            game_id,
            score,
            duration_ms,
        } => {
            // Turnstile says where the token was solved; a restricted site checks it.
            if let Some(host) = hostname.filter(|_| !site.allowed_origins.is_empty()) {
                let matches = site.allowed_origins.iter().any(|origin| {
                    url::Url::parse(origin)
                        .ok()
                        .and_then(|u| u.host_str().map(|h| h.eq_ignore_ascii_case(&host)))
                        .unwrap_or(false)
                });
                if !matches {
                    return Err(Refusal::InvalidToken);
                }
            }
            claims.game_id = game_id;
            claims.score = score;
            claims.duration_ms = duration_ms;
            Ok(claims)
        }
        Verdict::Missing => Err(Refusal::MissingToken),
        Verdict::Invalid => Err(Refusal::InvalidToken),
        Verdict::TimeoutOrDuplicate => Err(Refusal::TimeoutOrDuplicate),
        Verdict::SiteMismatch => Err(Refusal::SiteMismatch),
        Verdict::Unavailable(why) => Err(unavailable(&why)),
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
        .insert_header(("user-agent", crate::egress::USER_AGENT))
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
