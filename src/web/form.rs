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
use crate::web::{VerifierClient, WebState, body_deadline, cors, preview};

#[derive(Template)]
#[template(path = "public/thanks.html")]
struct ThanksPage {
    /// A test form's submission: the site page to go back to.
    test_of: Option<String>,
    /// The page the visitor came from, when its origin is allowed.
    back: Option<String>,
}

#[derive(Template)]
#[template(path = "public/error.html")]
struct ErrorPage<'a> {
    status: u16,
    code: &'static str,
    message: &'a str,
}

/// `GET /f/{site_key}`: a small live test form for the site, through the real pipeline.
pub async fn preview(state: web::Data<WebState>, path: web::Path<String>) -> HttpResponse {
    match state.sites.find(&path).await {
        Some(site) => preview::page(&state, &site, false),
        None => error_response(PublicError::UnknownSite, false, &cors::Cors::NoOrigin),
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
    error_response_with(err, err.message(), json, cors)
}

/// Like [`error_response`], with a message that says more than the code's own.
fn error_response_with(
    err: PublicError,
    message: &str,
    json: bool,
    cors: &cors::Cors,
) -> HttpResponse {
    let mut builder = HttpResponse::build(err.status());
    cors::apply(&mut builder, cors);
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    if let PublicError::RateLimited(seconds) = err {
        builder.insert_header((header::RETRY_AFTER, seconds.to_string()));
    }
    if json {
        return builder.json(json!({"ok": false, "error": err.code(), "message": message}));
    }
    let page = ErrorPage {
        status: err.status().as_u16(),
        code: err.code(),
        message,
    };
    match page.render() {
        Ok(html) => builder.content_type("text/html; charset=utf-8").body(html),
        Err(_) => builder
            .content_type("text/plain; charset=utf-8")
            .body(message.to_owned()),
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
    state: web::Data<WebState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    cors::preflight_for(state.sites.find(&path).await.as_deref(), &req)
        .unwrap_or_else(|(err, cors)| error_response(err, true, &cors))
}

/// `POST /f/{site_key}`.
pub async fn submit(
    state: web::Data<WebState>,
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
    let test = match preview::test_post(&state, &req, &site) {
        preview::TestPost::No => false,
        preview::TestPost::Yes => true,
        // An old test form page: not a real post, not a rejection; the owner is told what to do.
        preview::TestPost::Expired => {
            return error_response_with(
                PublicError::InvalidToken,
                "This test form has expired. Open it again from the site's page in the dashboard and send again.",
                json,
                &allowed,
            );
        }
    };
    let accepted = accept(
        &state,
        &client,
        &verifier_client.0,
        &site,
        &req,
        payload,
        test,
    )
    .await;
    // The test form's posts are tests: kept out of the submission counts and the rejections.
    if !test {
        state.metrics.submission(match &accepted {
            Ok(_) => "delivered",
            Err(err) => err.code(),
        });
    }
    match accepted {
        Ok(session_id) => {
            if json {
                let mut builder = HttpResponse::Ok();
                cors::apply(&mut builder, &allowed);
                return builder.json(json!({"ok": true, "session_id": session_id}));
            }
            let redirect = site.settings.redirect_url.as_ref().filter(|_| !test);
            if let Some(redirect) = redirect {
                let mut builder = HttpResponse::SeeOther();
                cors::apply(&mut builder, &allowed);
                return builder
                    .insert_header((header::LOCATION, redirect.as_str()))
                    .finish();
            }
            let page = ThanksPage {
                test_of: test.then(|| format!("/sites/{}", site.id)),
                back: if test { None } else { came_from(&req, &site) },
            };
            let mut builder = HttpResponse::Ok();
            cors::apply(&mut builder, &allowed);
            match page.render() {
                Ok(html) => builder.content_type("text/html; charset=utf-8").body(html),
                Err(_) => builder.body("Thank you. Your message was sent."),
            }
        }
        Err(err) => {
            // Failed deliveries are counted as deliveries; rejections are submissions that
            // never reached one.
            if !test && !matches!(err, PublicError::Internal | PublicError::DeliveryFailed) {
                let reason = err.code();
                let now = state.clock.now_ms();
                crate::stats::record_rejection(&state.store, &site.id, now, reason);
            }
            if err == PublicError::OriginNotAllowed {
                let message = origin_refused(&site, request_origin(&req).as_deref());
                return error_response_with(err, &message, json, &allowed);
            }
            error_response(err, json, &allowed)
        }
    }
}

/// The refusal of an origin, naming the origin seen and how many the site allows, so that
/// `localhost` against `127.0.0.1` or a missing `www.` is plain to see.
fn origin_refused(site: &Site, origin: Option<&str>) -> String {
    let count = site.settings.allowed_origins.len();
    let plural = if count == 1 { "" } else { "s" };
    format!(
        "This site does not accept submissions from {}: it allows {count} other origin{plural}. \
         The site owner can add this one under Allowed origins.",
        origin.unwrap_or("this page")
    )
}

/// The page a visitor posted from, for the thank-you page's way back: the `Referer`, when it is
/// an http(s) URL whose origin the site allows.
fn came_from(req: &HttpRequest, site: &Site) -> Option<String> {
    let referer = req.headers().get(header::REFERER)?.to_str().ok()?;
    let url = url::Url::parse(referer).ok()?;
    let allowed = matches!(url.scheme(), "http" | "https")
        && site.allows_origin(&url.origin().ascii_serialization());
    allowed.then(|| url.to_string())
}

/// Runs SPEC §3's checks in order and delivers; returns the session id on success.
async fn accept(
    state: &WebState,
    client: &awc::Client,
    verifier_client: &awc::Client,
    site: &Site,
    req: &HttpRequest,
    payload: web::Payload,
    test: bool,
) -> Result<String, PublicError> {
    // The test form works like Test delivery: whether or not forwarding is on, from the
    // forwarder's own origin.
    if !test && !site.settings.enabled {
        return Err(PublicError::ForwardingDisabled);
    }
    // No Origin and no Referer: not a cross-site browser post, allowed (SPEC §3).
    if !test && !request_origin(req).is_none_or(|origin| site.allows_origin(&origin)) {
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
    // The test form's widget is ours, so its token is the built-in one.
    let verifier = if test {
        VerifierKind::Builtin
    } else {
        site.settings.verifier
    };
    let mut parsed = body::parse(content_type, bytes, verifier.token_fields(), &limits)
        .await
        .map_err(|e| PublicError::from(&e))?;
    parsed
        .fields
        .retain(|name| !ALL_TOKEN_FIELDS.contains(&name));
    let token = parsed.token.ok_or(PublicError::MissingToken)?;
    let mut claims = match verifier {
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
    let kind = if test {
        // A test's session id says so, as Test delivery's does (the webhook contract).
        claims.session_id = crate::ids::random_id::<16>("test_");
        Kind::Test
    } else {
        Kind::Real
    };
    let body = envelope::real(&claims, verified_at, &parsed.fields, test);
    let report = state
        .deliverer
        .deliver(client, &site.settings.webhook_url, body, kind)
        .await;
    let finished = state.clock.now_ms();
    crate::stats::record_delivery_later(&state.store, &site.id, finished, kind, &report);
    state.metrics.delivery(kind, &report);
    tracing::info!(
        site_id = %site.id,
        outcome = report.outcome.as_str(),
        http_status = report.http_status,
        latency_ms = report.latency_ms,
        test,
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
    state: &WebState,
    client: &awc::Client,
    site: &Site,
    kind: VerifierKind,
    token: &str,
) -> Result<Claims, PublicError> {
    let unavailable = |why: &str| {
        tracing::warn!(site_id = %site.id, verifier = kind.as_str(), reason = why, "verifier unavailable");
        PublicError::VerifierUnavailable
    };
    let secret = site
        .verifier_secret
        .as_deref()
        .and_then(|sealed| state.keys.sealer().open(sealed))
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
