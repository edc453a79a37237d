//! HTTP handlers, thin: they parse the request, call the library, and shape the answer.

pub mod api;
pub mod body_deadline;
pub mod cap;
pub mod client_addr;
pub mod cors;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod form;
pub mod preview;
pub mod rate_limit;
pub mod siteverify;
pub mod verify;

use std::sync::Arc;

use actix_web::{HttpResponse, web};

use crate::services::Services;

/// The Content-Security-Policy of every page but the preview form: scripts and styles from this
/// origin only, no inline scripts, no framing, forms post only here.
pub const CSP_STRICT: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'; object-src 'none'";

/// The preview form's policy: the widget solves in `blob:` workers and styles its shadow root,
/// and the form may be redirected to the site's own thank-you URL.
pub const CSP_PREVIEW: &str = "default-src 'self'; script-src 'self'; worker-src 'self' blob:; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Largest body accepted by Cap redeem and siteverify.
pub const SMALL_BODY_LIMIT: usize = 16 * 1024;

/// The outbound HTTP client for remote verifiers: one per worker, its own pool, separate from
/// the webhook client.
pub struct VerifierClient(pub awc::Client);

/// Everything a handler may use: the shared [`Services`] and the parts only the HTTP surface has.
/// Cheap to clone. It dereferences to its services, so a handler writes `state.store`.
#[derive(Clone)]
pub struct WebState {
    /// The services every surface shares.
    pub services: Services,
    /// The public endpoints' per-address, per-site rate limits.
    pub rate_limits: Arc<rate_limit::RateLimits>,
    /// Failed dashboard logins per account and per IP.
    pub login_throttle: Arc<dashboard::auth::LoginThrottle>,
    /// The one-time setup token, present while no account exists (kept only in memory).
    pub setup_token: Arc<std::sync::Mutex<Option<String>>>,
}

impl WebState {
    /// The web state around `services`, with the setup token of a first start.
    pub fn new(services: Services, setup_token: Option<String>) -> WebState {
        WebState {
            rate_limits: Arc::new(rate_limit::RateLimits::new(&services.settings)),
            login_throttle: Arc::default(),
            setup_token: Arc::new(std::sync::Mutex::new(setup_token)),
            services,
        }
    }
}

impl std::ops::Deref for WebState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

/// Registers every route.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // The public endpoints first: the router tries routes in order, and these carry the load.
    cfg.route("/healthz", web::get().to(healthz))
        .service(
            web::scope("/v1/cap/{site_key}")
                .route("/challenge", web::post().to(cap::challenge))
                .route(
                    "/challenge",
                    web::method(actix_web::http::Method::OPTIONS).to(cap::preflight),
                )
                .route("/redeem", web::post().to(cap::redeem))
                .route(
                    "/redeem",
                    web::method(actix_web::http::Method::OPTIONS).to(cap::preflight),
                ),
        )
        .service(
            web::scope("/v1/verify")
                .route("/start", web::post().to(verify::start))
                .route(
                    "/start",
                    web::method(actix_web::http::Method::OPTIONS).to(verify::preflight),
                )
                .route("/pass", web::post().to(verify::pass))
                .route(
                    "/pass",
                    web::method(actix_web::http::Method::OPTIONS).to(verify::preflight),
                ),
        )
        .route("/v1/widget/bootstrap", web::get().to(verify::bootstrap))
        .route("/f/{site_key}", web::post().to(form::submit))
        .route("/f/{site_key}", web::get().to(form::preview))
        .route("/widget.js", web::get().to(widget_js))
        .route(
            "/f/{site_key}",
            web::method(actix_web::http::Method::OPTIONS).to(form::preflight),
        )
        .route("/static/{file}", web::get().to(static_file))
        .route("/v1/siteverify", web::post().to(siteverify::siteverify))
        .route("/siteverify", web::post().to(siteverify::siteverify))
        .route("/api/v1/siteverify", web::post().to(siteverify::siteverify));
    api::routes(cfg);
    dashboard::routes(cfg);
}

/// `GET /healthz`: 200 when the database answers.
async fn healthz(state: web::Data<WebState>) -> HttpResponse {
    let ok = state.store.answers().await;
    if ok {
        HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
    } else {
        HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "database-unavailable"}))
    }
}

/// Files under `static/`, embedded in the binary.
const STATIC_FILES: &[(&str, &str, &str)] = &[
    (
        "public.css",
        "text/css; charset=utf-8",
        include_str!("../../static/public.css"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../static/app.css"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/dashboard.js"),
    ),
];

/// `GET /static/{file}`.
async fn static_file(path: web::Path<String>) -> HttpResponse {
    match STATIC_FILES
        .iter()
        .find(|(name, _, _)| *name == path.as_str())
    {
        Some((_, content_type, body)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header(("Cache-Control", "public, max-age=3600"))
            .body(*body),
        None => HttpResponse::NotFound().finish(),
    }
}

/// Our `<caputchin-widget>` (SPEC §2), embedded in the binary.
const WIDGET_JS: &str = include_str!("../../static/widget.js");

/// `GET /widget.js`: cacheable for a week and revalidated by ETag.
async fn widget_js(req: actix_web::HttpRequest) -> HttpResponse {
    static ETAG: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(WIDGET_JS.as_bytes());
        format!("\"{}\"", crate::ids::to_hex(&digest[..12]))
    });
    let fresh = req
        .headers()
        .get("If-None-Match")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == ETAG.as_str()));
    let mut builder = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    builder
        .insert_header(("ETag", ETAG.as_str()))
        .insert_header(("Cache-Control", "public, max-age=604800"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .content_type("text/javascript; charset=utf-8");
    if fresh {
        builder.finish()
    } else {
        builder.body(WIDGET_JS)
    }
}

/// `GET /metrics` on the metrics listener: OpenMetrics text when the scraper asks for it, the
/// Prometheus text format otherwise.
pub async fn metrics(
    req: actix_web::HttpRequest,
    metrics: web::Data<crate::metrics::Metrics>,
) -> HttpResponse {
    let openmetrics = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    match metrics.encode(openmetrics) {
        Ok(body) => HttpResponse::Ok()
            .content_type(if openmetrics {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            } else {
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE
            })
            .insert_header(("Cache-Control", "no-store"))
            .body(body),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

/// The answer for unknown paths.
pub async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(serde_json::json!({"error": "not-found"}))
}
