//! `POST /f/{site_key}` (SPEC §3): the checks in the spec's order, one synchronous delivery, and
//! an answer that tells the visitor the truth — HTML for plain forms, JSON for `fetch()` users.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde_json::json;

use crate::captcha::VerifyError;
use crate::captcha::remote::{self, Verdict};
use crate::captcha::token::Claims;
use crate::delivery::{Kind, Outcome};
use crate::sites::{ALL_TOKEN_FIELDS, Site, VerifierKind};
use crate::submission::{body, envelope};
use crate::web::error::PublicError;
use crate::web::{AppState, VerifierClient, body_deadline, cors};

#[derive(Template)]
#[template(path = "public/thanks.html")]
struct ThanksPage;

#[derive(Template)]
#[template(path = "public/error.html")]
struct ErrorPage {
    status: u16,
    code: &'static str,
    message: &'static str,
}

#[derive(Template)]
#[template(path = "public/preview.html")]
struct PreviewPage {
    name: String,
    site_key: String,
    action: String,
    api_host: String,
    enabled: bool,
}

/// `GET /f/{site_key}`: a small live test form for the site, through the real pipeline.
pub async fn preview(state: web::Data<AppState>, path: web::Path<String>) -> HttpResponse {
    let Some(site) = state.sites.find(&path).await else {
        return error_response(PublicError::UnknownSite, false, &cors::Cors::NoOrigin);
    };
    let page = PreviewPage {
        name: site.settings.name.clone(),
        site_key: site.key.as_str().to_owned(),
        action: state.settings.forwarder_url(site.key.as_str()),
        api_host: state.settings.public_url.clone(),
        enabled: site.settings.enabled,
    };
    match page.render() {
        Ok(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::CONTENT_SECURITY_POLICY, crate::web::CSP_PREVIEW))
            .body(html),
        Err(_) => error_response(PublicError::Internal, false, &cors::Cors::NoOrigin),
    }
}

/// True when the visitor should get JSON: the body was JSON, or `Accept` rates
/// `application/json` above `text/html`.
pub fn wants_json(req: &HttpRequest) -> bool {
    let header_str = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .unwrap_or("")
    };
    let content_type = header_str(header::CONTENT_TYPE).to_ascii_lowercase();
    if content_type.trim_start().starts_with("application/json") {
        return true;
    }
    prefers_json(header_str(header::ACCEPT))
}

/// Whether an `Accept` header rates JSON strictly above HTML.
pub fn prefers_json(accept: &str) -> bool {
    let (mut json_q, mut html_q) = (0.0_f32, 0.0_f32);
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/json" => json_q = json_q.max(q),
            "text/html" => html_q = html_q.max(q),
            "*/*" => {
                json_q = json_q.max(q * 0.99);
                html_q = html_q.max(q * 0.99);
            }
            "application/*" => json_q = json_q.max(q * 0.995),
            "text/*" => html_q = html_q.max(q * 0.995),
            _ => {}
        }
    }
    json_q > html_q
}

/// Answers a form endpoint error: JSON `{ok, error, message}` or the HTML error page.
pub fn error_response(err: PublicError, json: bool, cors: &cors::Cors) -> HttpResponse {
    let mut builder = HttpResponse::build(err.status());
    cors::apply(&mut builder, cors);
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    if let PublicError::RateLimited(seconds) = err {
        builder.insert_header((header::RETRY_AFTER, seconds.to_string()));
    }
    if json {
        return builder.json(json!({"ok": false, "error": err.code(), "message": err.message()}));
    }
    let page = ErrorPage {
        status: err.status().as_u16(),
        code: err.code(),
        message: err.message(),
    };
    match page.render() {
        Ok(html) => builder.content_type("text/html; charset=utf-8").body(html),
        Err(_) => builder
            .content_type("text/plain; charset=utf-8")
            .body(err.message()),
    }
}

/// The origin of a request: `Origin` first, the origin of `Referer` as the fallback, `None` when
/// both are absent (SPEC §3).
fn request_origin(req: &HttpRequest) -> Option<String> {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        return Some(origin.to_str().unwrap_or("null").to_owned());
    }
    let referer = req.headers().get(header::REFERER)?.to_str().ok()?;
    Some(
        url::Url::parse(referer)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| "null".into()),
    )
}

/// `OPTIONS /f/{site_key}`: CORS preflight.
pub async fn preflight(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    cors::preflight_for(state.sites.find(&path).await.as_deref(), &req)
        .unwrap_or_else(|(err, cors)| error_response(err, true, &cors))
}

/// `POST /f/{site_key}`.
pub async fn submit(
    state: web::Data<AppState>,
    client: web::Data<awc::Client>,
    verifier_client: web::Data<VerifierClient>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let json = wants_json(&req);
    let echo = cors::echo(&req);
    let Some(site) = state.sites.find(&path).await else {
        state.metrics.submission(PublicError::UnknownSite.code());
        return error_response(PublicError::UnknownSite, json, &echo);
    };
    // A refused origin is not echoed: the browser then keeps the answer from that page's script.
    let allowed = cors::check(&site, &req).unwrap_or(cors::Cors::NoOrigin);
    let accepted = accept(&state, &client, &verifier_client.0, &site, &req, payload).await;
    state.metrics.submission(match &accepted {
        Ok(_) => "delivered",
        Err(err) => err.code(),
    });
    match accepted {
        Ok(session_id) => {
            if json {
                let mut builder = HttpResponse::Ok();
                cors::apply(&mut builder, &allowed);
                return builder.json(json!({"ok": true, "session_id": session_id}));
            }
            if let Some(redirect) = &site.settings.redirect_url {
                let mut builder = HttpResponse::SeeOther();
                cors::apply(&mut builder, &allowed);
                return builder
                    .insert_header((header::LOCATION, redirect.as_str()))
                    .finish();
            }
            let mut builder = HttpResponse::Ok();
            cors::apply(&mut builder, &allowed);
            match ThanksPage.render() {
                Ok(html) => builder.content_type("text/html; charset=utf-8").body(html),
                Err(_) => builder.body("Thank you. Your message was sent."),
            }
        }
        Err(err) => {
            // Failed deliveries are counted as deliveries; rejections are submissions that
            // never reached one.
            if !matches!(err, PublicError::Internal | PublicError::DeliveryFailed) {
                let reason = err.code();
                let now = state.clock.now_ms();
                crate::stats::record_rejection(&state.store, &site.id, now, reason);
            }
            error_response(err, json, &allowed)
        }
    }
}

/// Runs SPEC §3's checks in order and delivers; returns the session id on success.
async fn accept(
    state: &AppState,
    client: &awc::Client,
    verifier_client: &awc::Client,
    site: &Site,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<String, PublicError> {
    if !site.settings.enabled {
        return Err(PublicError::ForwardingDisabled);
    }
    // No Origin and no Referer: not a cross-site browser post, allowed (SPEC §3).
    if !request_origin(req).is_none_or(|origin| site.allows_origin(&origin)) {
        return Err(PublicError::OriginNotAllowed);
    }
    state
        .rate_limits
        .form
        .check_request(state, req, site.key.as_str())
        .map_err(PublicError::RateLimited)?;
    let bytes = match payload
        .to_bytes_limited(state.settings.max_body_bytes)
        .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if body_deadline::is_timeout(&e) => return Err(PublicError::RequestTimeout),
        Ok(Err(_)) => return Err(PublicError::MalformedBody),
        Err(_) => return Err(PublicError::PayloadTooLarge),
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let limits = body::Limits {
        max_fields: state.settings.max_fields,
        max_name_bytes: crate::config::MAX_FIELD_NAME_BYTES,
    };
    // The token comes from the fields this site's verifier posts; every verifier's token field
    // is stripped before the envelope is built (SPEC §3, §8).
    let verifier = site.settings.verifier;
    let mut parsed = body::parse(content_type, bytes, verifier.token_fields(), &limits)
        .await
        .map_err(|e| PublicError::from(&e))?;
    parsed
        .fields
        .retain(|name| !ALL_TOKEN_FIELDS.contains(&name));
    let token = parsed.token.ok_or(PublicError::MissingToken)?;
    let claims = match verifier {
        VerifierKind::Builtin => state
            .issuer
            .consume(site.key.as_str(), &token)
            .await
            .map_err(|e| match e {
                VerifyError::Invalid => PublicError::InvalidToken,
                VerifyError::TimeoutOrDuplicate => PublicError::TimeoutOrDuplicate,
                VerifyError::SiteMismatch => PublicError::SiteMismatch,
                VerifyError::Store(e) => {
                    tracing::error!(error = %e, "could not record a consumed token");
                    PublicError::Internal
                }
            })?,
        remote_kind => verify_remotely(state, verifier_client, site, remote_kind, &token).await?,
    };
    let verified_at = state.clock.now_ms();
    let body = envelope::real(&claims, verified_at, &parsed.fields);
    let report = state
        .deliverer
        .deliver(client, &site.settings.webhook_url, body, Kind::Real)
        .await;
    let finished = state.clock.now_ms();
    crate::stats::record_delivery_later(&state.store, &site.id, finished, Kind::Real, &report);
    state.metrics.delivery(Kind::Real, &report);
    tracing::info!(
        site_id = %site.id,
        outcome = report.outcome.as_str(),
        http_status = report.http_status,
        latency_ms = report.latency_ms,
        "delivery"
    );
    if report.outcome == Outcome::Delivered {
        Ok(claims.session_id)
    } else {
        Err(PublicError::DeliveryFailed)
    }
}

/// Asks the site's remote verifier about a token (SPEC §8); any doubt fails closed.
async fn verify_remotely(
    state: &AppState,
    client: &awc::Client,
    site: &Site,
    kind: VerifierKind,
    token: &str,
) -> Result<Claims, PublicError> {
    let unavailable = |why: &str| {
        tracing::warn!(site_id = %site.id, verifier = kind.as_str(), reason = why, "verifier unavailable");
        PublicError::VerifierUnavailable
    };
    let sealer = crate::captcha::keys::Sealer::new(state.issuer.key());
    let secret = site
        .verifier_secret
        .as_deref()
        .and_then(|sealed| sealer.open(sealed))
        .ok_or_else(|| unavailable("the verifier secret cannot be opened"))?;
    let url = site
        .settings
        .verify_url()
        .ok_or_else(|| unavailable("no verifier URL"))?;
    let now = state.clock.now_ms();
    let mut claims = Claims::new(site.key.as_str(), now);
    claims.expires_at = now;
    let idempotency_key = crate::ids::uuid_v4();
    let check = remote::Check {
        secret: &secret,
        token,
        sitekey: site.settings.verifier_sitekey.as_deref(),
        idempotency_key: &idempotency_key,
    };
    let verdict = remote::verify(
        client,
        state.deliverer.egress(),
        kind,
        &url,
        &check,
        state.settings.delivery_timeout,
    )
    .await;
    match verdict {
        Verdict::Accepted {
            hostname,
            game_id,
            score,
            duration_ms,
        } => {
            // Turnstile says where the token was solved; a restricted site checks it.
            let allowed = &site.settings.allowed_origins;
            if let Some(host) = hostname.filter(|_| !allowed.is_empty()) {
                let matches = allowed.iter().any(|origin| {
                    url::Url::parse(origin)
                        .ok()
                        .and_then(|u| u.host_str().map(|h| h.eq_ignore_ascii_case(&host)))
                        .unwrap_or(false)
                });
                if !matches {
                    return Err(PublicError::InvalidToken);
                }
            }
            claims.game_id = game_id;
            claims.score = score;
            claims.duration_ms = duration_ms;
            Ok(claims)
        }
        Verdict::Missing => Err(PublicError::MissingToken),
        Verdict::Invalid => Err(PublicError::InvalidToken),
        Verdict::TimeoutOrDuplicate => Err(PublicError::TimeoutOrDuplicate),
        Verdict::SiteMismatch => Err(PublicError::SiteMismatch),
        Verdict::Unavailable(why) => Err(unavailable(&why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_are_weighed() {
        assert!(prefers_json("application/json"));
        assert!(prefers_json("application/json, text/plain, */*"));
        assert!(prefers_json("text/html;q=0.5, application/json"));
        assert!(!prefers_json(""));
        assert!(!prefers_json("*/*"));
        assert!(!prefers_json(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!prefers_json("application/json;q=0.5, text/html"));
    }
}
