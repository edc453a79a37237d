//! CORS for the public endpoints: a site's allowed origins, or any origin when it sets none
//! (SPEC §2, §3). Requests without `Origin` are not cross-origin browser requests and pass.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

use crate::sites::Site;
use crate::web::error::Refusal;

/// The CORS decision for one request.
#[derive(Debug, Clone)]
pub enum Cors {
    /// No `Origin` header: nothing to add.
    NoOrigin,
    /// Allowed: answer with this `Access-Control-Allow-Origin` value.
    Allow(HeaderValue),
}

/// Decides CORS for a request to `site`; an origin the site does not allow is an error.
pub fn check(site: &Site, req: &HttpRequest) -> Result<Cors, Refusal> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(Cors::NoOrigin);
    };
    if site.settings.allowed_origins.is_empty() {
        return Ok(Cors::Allow(HeaderValue::from_static("*")));
    }
    match origin.to_str() {
        Ok(o) if site.allows_origin(o) => Ok(Cors::Allow(origin.clone())),
        _ => Err(Refusal::OriginNotAllowed),
    }
}

/// Like [`check`] for the Cap endpoints, where the forwarder's own origin is always allowed: the
/// test forms it serves solve their challenges there (a same-origin request needs no header).
pub fn check_or_own(site: &Site, req: &HttpRequest, public_url: &str) -> Result<Cors, Refusal> {
    check(site, req).or_else(|e| {
        if from_own_origin(req, public_url) {
            Ok(Cors::NoOrigin)
        } else {
            Err(e)
        }
    })
}

/// Whether the request's `Origin` is the forwarder's own: the scheme, host and port that begin
/// `public_url` (compared without parsing it, as this runs on every challenge).
pub fn from_own_origin(req: &HttpRequest, public_url: &str) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return false;
    };
    public_url
        .strip_prefix(origin)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The origin to echo on an error answer, so a browser widget can read the error message.
pub fn echo(req: &HttpRequest) -> Cors {
    match req.headers().get(header::ORIGIN) {
        Some(origin) => Cors::Allow(origin.clone()),
        None => Cors::NoOrigin,
    }
}

/// Adds the CORS headers to a response under construction.
pub fn apply(builder: &mut HttpResponseBuilder, cors: &Cors) {
    builder.insert_header((header::VARY, "Origin"));
    if let Cors::Allow(value) = cors {
        builder.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, value.clone()));
    }
}

/// The answer to a preflight (`OPTIONS`) for an allowed origin.
pub fn preflight(cors: &Cors) -> HttpResponse {
    let mut builder = HttpResponse::NoContent();
    apply(&mut builder, cors);
    builder
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type, Accept"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
        .finish()
}

/// Answers a preflight for the site with this key, or the error to answer in the endpoint's own
/// shape: an unknown site carries the request's origin (so a browser can read it), a refused
/// origin carries none.
pub fn preflight_for(
    site: Option<&Site>,
    req: &HttpRequest,
) -> Result<HttpResponse, (Refusal, Cors)> {
    let Some(site) = site else {
        return Err((Refusal::UnknownSite, echo(req)));
    };
    check(site, req)
        .map(|allowed| preflight(&allowed))
        .map_err(|e| (e, Cors::NoOrigin))
}
