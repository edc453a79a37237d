//! `POST /f/{site_key}` (SPEC §3): the checks in the spec's order, one synchronous delivery, and
//! an answer that tells the visitor the truth — HTML for plain forms, JSON for `fetch()` users.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::FutureExt as _;
use serde_json::json;

use crate::sites::Site;
use crate::submission::{self, Clients, Incoming, RawBody};
use crate::web::error::{Refusal, Refused, Shape};
use crate::web::{VerifierClient, WebState, body_deadline, cors, preview};

#[derive(Template)]
#[template(path = "public/thanks.html")]
struct ThanksPage {
    /// A test form's submission: the site page to go back to.
    test_of: Option<String>,
    /// The page the visitor came from, when its origin is allowed.
    back: Option<String>,
}

/// `GET /f/{site_key}`: a small live test form for the site, through the real pipeline.
pub async fn preview(
    state: web::Data<WebState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Refused> {
    match state.sites.find(&path).await {
        Some(site) => Ok(preview::page(&state, &site, false)),
        None => Err(Refused::new(
            Refusal::UnknownSite,
            Shape::Form { json: false },
            cors::Cors::NoOrigin,
        )),
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
) -> Result<HttpResponse, Refused> {
    cors::preflight_for(state.sites.find(&path).await.as_deref(), &req)
        .map_err(|(refusal, cors)| Refused::new(refusal, Shape::Form { json: true }, cors))
}

/// `POST /f/{site_key}`: the request becomes an [`Incoming`], [`submission::accept`] decides, and
/// the answer tells the visitor the truth in the shape they asked for.
pub async fn submit(
    state: web::Data<WebState>,
    client: web::Data<awc::Client>,
    verifier_client: web::Data<VerifierClient>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, Refused> {
    let shape = Shape::Form {
        json: wants_json(&req),
    };
    let Some(site) = state.sites.find(&path).await else {
        state.metrics.submission(Refusal::UnknownSite.code());
        return Err(Refused::new(Refusal::UnknownSite, shape, cors::echo(&req)));
    };
    // A refused origin is not echoed: the browser then keeps the answer from that page's script.
    let allowed = cors::check(&site, &req).unwrap_or(cors::Cors::NoOrigin);
    let test = match preview::test_post(&state, &req, &site) {
        preview::TestPost::No => false,
        preview::TestPost::Yes => true,
        // An old test form page: not a real post, not a rejection; the owner is told what to do.
        preview::TestPost::Expired => {
            return Err(Refused::new(Refusal::InvalidToken, shape, allowed).saying(
                "This test form has expired. Open it again from the site's page in the dashboard and send again.",
            ));
        }
    };
    let incoming = Incoming {
        origin: request_origin(&req),
        test,
        admit: Box::new(|| {
            state
                .rate_limits
                .form
                .check_request(&state, &req, site.key.as_str())
        }),
        body: read_body(&state, &req, payload).boxed_local(),
    };
    let clients = Clients {
        webhook: &client,
        verifier: &verifier_client.0,
    };
    let accepted = match submission::accept(&state, clients, &site, incoming).await {
        Ok(accepted) => accepted,
        Err(Refusal::OriginNotAllowed) => {
            let message = origin_refused(&site, request_origin(&req).as_deref());
            return Err(Refused::new(Refusal::OriginNotAllowed, shape, allowed).saying(message));
        }
        Err(refusal) => return Err(Refused::new(refusal, shape, allowed)),
    };
    let mut builder = HttpResponse::Ok();
    if shape == (Shape::Form { json: true }) {
        cors::apply(&mut builder, &allowed);
        return Ok(builder.json(json!({"ok": true, "session_id": accepted.session_id})));
    }
    if let Some(redirect) = site.settings.redirect_url.as_ref().filter(|_| !test) {
        let mut builder = HttpResponse::SeeOther();
        cors::apply(&mut builder, &allowed);
        return Ok(builder
            .insert_header((header::LOCATION, redirect.as_str()))
            .finish());
    }
    let page = ThanksPage {
        test_of: test.then(|| format!("/sites/{}", site.id)),
        back: if test { None } else { came_from(&req, &site) },
    };
    cors::apply(&mut builder, &allowed);
    Ok(match page.render() {
        Ok(html) => builder.content_type("text/html; charset=utf-8").body(html),
        Err(_) => builder.body("Thank you. Your message was sent."),
    })
}

/// Reads the body within `CAPUTCHIN_MAX_BODY_BYTES` and the body deadline.
async fn read_body(
    state: &WebState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<RawBody, Refusal> {
    let bytes = match payload
        .to_bytes_limited(state.settings.max_body_bytes)
        .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if body_deadline::is_timeout(&e) => return Err(Refusal::RequestTimeout),
        Ok(Err(_)) => return Err(Refusal::MalformedBody),
        Err(_) => return Err(Refusal::PayloadTooLarge),
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(RawBody {
        content_type,
        bytes,
    })
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
