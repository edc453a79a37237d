//! `POST /v1/siteverify` (aliases `/siteverify`, `/api/v1/siteverify`) for site owners with a
//! backend (SPEC §2): JSON or form-encoded `{secret, response}`, always answered with HTTP 200.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::captcha::token::Claims;
use crate::store::deliveries::Verification;
use crate::web::cors::Cors;
use crate::web::error::{Refusal, Refused, Shape};
use crate::web::{SMALL_BODY_LIMIT, WebState, body_deadline};

/// The `{secret, response}` pair, each absent when missing or empty.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct VerifyRequest {
    /// The site secret.
    pub secret: Option<String>,
    /// The token to verify.
    pub response: Option<String>,
}

/// Parses a siteverify body by its content type; `None` when it is malformed.
pub fn parse_body(content_type: &str, body: &[u8]) -> Option<VerifyRequest> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    if media == "application/json" || media.ends_with("+json") {
        let value: Value = serde_json::from_slice(body).ok()?;
        let object = value.as_object()?;
        let field = |name: &str| -> Option<Option<String>> {
            match object.get(name) {
                None | Some(Value::Null) => Some(None),
                Some(Value::String(s)) => Some(non_empty(s.clone())),
                Some(_) => None,
            }
        };
        Some(VerifyRequest {
            secret: field("secret")?,
            response: field("response")?,
        })
    } else if media == "application/x-www-form-urlencoded" || (media.is_empty() && body.is_empty())
    {
        let text = std::str::from_utf8(body).ok()?;
        let mut request = VerifyRequest::default();
        for (name, value) in url::form_urlencoded::parse(text.as_bytes()) {
            match name.as_ref() {
                "secret" => request.secret = non_empty(value.into_owned()),
                "response" => request.response = non_empty(value.into_owned()),
                _ => {}
            }
        }
        Some(request)
    } else {
        None
    }
}

/// The siteverify handler.
pub async fn siteverify(
    state: web::Data<WebState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, Refused> {
    let result = verify(&state, &req, payload).await;
    if let Ok(claims) = &result {
        // A verification that succeeds does not count against the budget: a busy site's
        // backend, one address, is never slowed by its own visitors.
        state
            .rate_limits
            .siteverify
            .refund_request(&state, &req, &claims.site_key);
    }
    state.metrics.siteverify(match &result {
        Ok(_) => "success",
        Err(refusal) => refusal.code(),
    });
    match result {
        Ok(claims) => Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({
                "success": true,
                "error-codes": [],
                "platform": {
                    "game_id": claims.game_id,
                    "score": claims.score,
                    "duration_ms": claims.duration_ms,
                },
            }))),
        Err(refusal) => Err(Refused::new(refusal, Shape::Siteverify, Cors::NoOrigin)),
    }
}

/// The key under which calls with a missing or unknown secret share one budget per address.
const UNKNOWN_SITE: &str = "-";

async fn verify(
    state: &WebState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Claims, Refusal> {
    let body = match payload.to_bytes_limited(SMALL_BODY_LIMIT).await {
        Ok(Ok(body)) => body,
        Ok(Err(e)) if body_deadline::is_timeout(&e) => return Err(Refusal::RequestTimeout),
        _ => return Err(Refusal::BadRequest),
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let request = parse_body(content_type, &body).ok_or(Refusal::BadRequest)?;
    let site = match &request.secret {
        Some(secret) => {
            state
                .sites
                .find_by_secret(secret, state.clock.now_ms())
                .await
        }
        None => None,
    };
    let budget_key = site.as_ref().map_or(UNKNOWN_SITE, |site| site.key.as_str());
    state
        .rate_limits
        .siteverify
        .check_request(state, req, budget_key)
        .map_err(Refusal::RateLimited)?;
    if request.secret.is_none() {
        return Err(Refusal::MissingInputSecret);
    }
    let site = site.ok_or(Refusal::InvalidInputSecret)?;
    if site.settings.disabled {
        return Err(Refusal::SiteDisabled);
    }
    let response = request.response.ok_or(Refusal::MissingInputResponse)?;
    let verdict = state
        .issuer
        .consume(site.key.as_str(), &response)
        .await
        .map_err(|e| e.refusal(Refusal::InvalidInputResponse));
    // Counted for the site whose secret this is (SPEC §12's statistics); a failure of ours is
    // not a refused token.
    let event = match &verdict {
        Ok(_) => Some(Verification::TokenAccepted),
        Err(Refusal::Internal) => None,
        Err(_) => Some(Verification::TokenRefused),
    };
    if let Some(event) = event {
        state
            .store
            .count_verification(&site.id, state.clock.now_ms(), event);
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_form_bodies_parse_and_empty_values_count_as_missing() {
        let json = parse_body("application/json", br#"{"secret":"s","response":""}"#).unwrap();
        assert_eq!(json.secret.as_deref(), Some("s"));
        assert_eq!(json.response, None);
        let form = parse_body(
            "application/x-www-form-urlencoded; charset=utf-8",
            b"secret=a%2Bb&response=t.x",
        )
        .unwrap();
        assert_eq!(form.secret.as_deref(), Some("a+b"));
        assert_eq!(form.response.as_deref(), Some("t.x"));
        assert_eq!(parse_body("", b""), Some(VerifyRequest::default()));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        assert!(parse_body("application/json", b"{").is_none());
        assert!(parse_body("application/json", br#"{"secret":1}"#).is_none());
        assert!(parse_body("application/json", b"[]").is_none());
        assert!(parse_body("text/plain", b"secret=x").is_none());
        assert!(parse_body("application/x-www-form-urlencoded", &[0xff, 0xfe]).is_none());
    }
}
