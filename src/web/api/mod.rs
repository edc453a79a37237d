//! The management API (SPEC §12, `reference/caputchin-management-api.md`): Caputchin's wire under
//! `/v1/management/` and `/api/v1/management/`. Every request names its caller with a bearer
//! token ([`ApiCaller`], checked before anything else); bodies are read by [`read_object`]; the
//! handlers call the same library functions as the CLI and the dashboard.

pub mod error;
pub mod hosted;
pub mod schema;
pub mod settings;
pub mod sites;
pub mod stats;
pub mod tokens;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;
use futures_util::future::LocalBoxFuture;
use serde_json::{Map, Value};

pub use error::ApiError;

use crate::access_tokens::{self, AuthError, Caller};
use crate::web::WebState;

/// Largest request body (reference §9.9).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The caller of a management request, named by its `Authorization: Bearer` token: the token
/// is valid, live and within its rate limit. Its use is recorded (at most once a minute).
#[derive(Debug, Clone)]
pub struct ApiCaller(pub Caller);

impl std::ops::Deref for ApiCaller {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl ApiCaller {
    /// Refuses a read token (403 `insufficient-scope`).
    pub fn require_write(&self) -> Result<(), ApiError> {
        if self.may_write() {
            Ok(())
        } else {
            Err(ApiError::InsufficientScope(
                "this token may only read: create a write token",
            ))
        }
    }

    /// Refuses a read token or a site-bound one (403 `insufficient-scope`).
    pub fn require_unrestricted_write(&self) -> Result<(), ApiError> {
        self.require_write()?;
        if self.site_id.is_some() {
            return Err(ApiError::InsufficientScope(
                "this token is bound to one site: use a token of the whole account",
            ));
        }
        Ok(())
    }
}

/// The token of an `Authorization` header value: `Bearer <token>`, the scheme in any case.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_matches(' '))
}

impl FromRequest for ApiCaller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<ApiCaller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<WebState>>().cloned();
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().map(|v| bearer(v).map(str::to_owned)));
        Box::pin(async move {
            let state = state.ok_or(ApiError::Internal)?;
            let token = match header {
                None => return Err(ApiError::MissingToken),
                Some(Ok(Some(token))) => token,
                Some(_) => return Err(ApiError::InvalidToken),
            };
            // Shapes that cannot be a token cost no lookup.
            if !access_tokens::looks_like_token(&token) {
                return Err(ApiError::InvalidToken);
            }
            let now = state.clock.now_ms();
            let store = state.store.clone();
            let caller = tokio::task::spawn_blocking(move || {
                access_tokens::authenticate(&store, &token, now)
            })
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| match e {
                AuthError::Invalid => ApiError::InvalidToken,
                AuthError::Store(e) => ApiError::internal(e),
            })?;
            state
                .rate_limits
                .api
                .check(
                    &caller.token_id,
                    std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                    now,
                )
                .map_err(ApiError::RateLimited)?;
            let (store, token_id) = (state.store.clone(), caller.token_id.clone());
            actix_web::rt::spawn(async move {
                if let Err(e) = store
                    .access_tokens()
                    .touch(token_id, now, access_tokens::TOUCH_EVERY_MS)
                    .await
                {
                    tracing::warn!(error = %e, "could not record an access token's use");
                }
            });
            Ok(ApiCaller(caller))
        })
    }
}

/// Reads a request body as a JSON object: `Ok(None)` when there is none (an empty body counts as
/// none whatever its content type, as the legacy scripts send one with every request). A body
/// must be unlabelled or `application/json`, at most [`MAX_BODY_BYTES`], and one JSON object.
pub async fn read_object(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::MalformedJson("the body could not be read".into()))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::BodyTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    if body.is_empty() {
        return Ok(None);
    }
    let json_labelled = match req.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json")),
    };
    if !json_labelled {
        return Err(ApiError::UnsupportedContentType);
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(ApiError::MalformedJson(
            "the top-level value is not an object".into(),
        )),
        Err(e) => Err(ApiError::MalformedJson(e.to_string())),
    }
}

/// Typed reads of a request object's fields: a wrong type is 400 `invalid-field`, a missing
/// required field 400 `missing-field`.
pub struct Fields<'a>(pub &'a Map<String, Value>);

/// A field that may be absent, null or a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Given<T> {
    /// The key is not in the body.
    Absent,
    /// The key holds `null`.
    Null,
    /// The key holds a value.
    Value(T),
}

impl<T> Given<T> {
    /// The value, if one was given.
    pub fn value(self) -> Option<T> {
        match self {
            Given::Value(v) => Some(v),
            Given::Absent | Given::Null => None,
        }
    }
}

impl Fields<'_> {
    fn wrong(key: &str, what: &str) -> ApiError {
        ApiError::InvalidField(format!("{key} must be {what}"))
    }

    /// A string field, absent or null allowed.
    pub fn string(&self, key: &str) -> Result<Given<String>, ApiError> {
        match self.0.get(key) {
            None => Ok(Given::Absent),
            Some(Value::Null) => Ok(Given::Null),
            Some(Value::String(s)) => Ok(Given::Value(s.clone())),
            Some(_) => Err(Fields::wrong(key, "a string")),
        }
    }

    /// A required string field.
    pub fn required_string(&self, key: &str) -> Result<String, ApiError> {
        self.string(key)?
            .value()
            .ok_or_else(|| ApiError::MissingField(format!("{key} is required")))
    }

    /// A boolean field, absent or null allowed.
    pub fn bool(&self, key: &str) -> Result<Given<bool>, ApiError> {
        match self.0.get(key) {
            None => Ok(Given::Absent),
            Some(Value::Null) => Ok(Given::Null),
            Some(Value::Bool(b)) => Ok(Given::Value(*b)),
            Some(_) => Err(Fields::wrong(key, "true or false")),
        }
    }

    /// An integer field (an integer literal), absent or null allowed.
    pub fn integer(&self, key: &str) -> Result<Given<i64>, ApiError> {
        match self.0.get(key) {
            None => Ok(Given::Absent),
            Some(Value::Null) => Ok(Given::Null),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Given::Value)
                .ok_or_else(|| Fields::wrong(key, "an integer")),
            Some(_) => Err(Fields::wrong(key, "an integer")),
        }
    }

    /// A list of strings, absent or null allowed.
    pub fn strings(&self, key: &str) -> Result<Given<Vec<String>>, ApiError> {
        match self.0.get(key) {
            None => Ok(Given::Absent),
            Some(Value::Null) => Ok(Given::Null),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(Given::Value)
                .ok_or_else(|| Fields::wrong(key, "a list of strings")),
            Some(_) => Err(Fields::wrong(key, "a list of strings")),
        }
    }
}

/// Runs blocking library work off the async workers; a failed task is a server failure.
pub async fn blocking<R, F>(state: &WebState, f: F) -> Result<R, ApiError>
where
    F: FnOnce(&WebState) -> Result<R, ApiError> + Send + 'static,
    R: Send + 'static,
{
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state))
        .await
        .map_err(ApiError::internal)?
}

/// A JSON answer with this status; management answers are never cached.
pub fn json(status: actix_web::http::StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

/// `GET …/openapi.json`: the OpenAPI 3.1 document of these routes, generated from the handlers'
/// annotations and the types of [`schema`]; served without a token (it holds no data).
#[utoipa::path(
    get,
    path = "/v1/management/openapi.json",
    tag = "discovery",
    security(()),
    responses((status = 200, description = "This document"))
)]
pub async fn openapi() -> HttpResponse {
    use utoipa::OpenApi as _;
    static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        schema::ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|_| "{}".to_owned())
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(DOCUMENT.as_str())
}

/// 405 for a known path asked with another method (after the token is checked).
async fn method_not_allowed(_caller: ApiCaller) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// 501 for Caputchin routes without a counterpart here (reference §8): a 404 would make
/// Terraform forget a resource.
async fn not_supported(_caller: ApiCaller) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotSupported)
}

/// The routes under one prefix.
fn management(cfg: &mut web::ServiceConfig) {
    let not_allowed = || web::to(method_not_allowed);
    // A query string that does not parse is bad input like any other: a JSON 400.
    cfg.app_data(web::QueryConfig::default().error_handler(|e, _| {
        ApiError::InvalidField(format!("the query string does not parse: {e}")).into()
    }))
    .service(
        web::resource("/openapi.json")
            .route(web::get().to(openapi))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/me/account")
            .route(web::get().to(sites::me))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/troops")
            .route(web::get().to(sites::troops))
            .default_service(web::to(not_supported)),
    )
    .service(
        web::resource("/troops/{troop_id}")
            .route(web::get().to(sites::troop_by_id))
            .default_service(web::to(not_supported)),
    )
    .service(
        web::resource("/sites")
            .route(web::get().to(sites::list))
            .route(web::post().to(sites::create))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/sites/{site_id}")
            .route(web::get().to(sites::read))
            .route(web::patch().to(sites::update))
            .route(web::delete().to(sites::delete))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/sites/{site_id}/rotate-secret")
            .route(web::post().to(sites::rotate))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/sites/{site_id}/stats")
            .route(web::get().to(stats::site))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/sites/{site_id}/settings")
            .route(web::get().to(settings::read_full))
            .route(web::patch().to(settings::update_full))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/sites/{site_id}/delivery-stats")
            .route(web::get().to(stats::deliveries_range))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/sites/{site_id}/deliveries")
            .route(web::get().to(stats::latest))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/sites/{site_id}/cap-config")
            .route(web::get().to(settings::read_cap_config))
            .route(web::patch().to(settings::update_cap_config))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/sites/{site_id}/security-settings")
            .route(web::get().to(settings::read_security))
            .route(web::patch().to(settings::update_security))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/hosted-verification/{site_id}")
            .route(web::get().to(hosted::read))
            .route(web::put().to(hosted::write))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/hosted-verification/{site_id}/test")
            .route(web::post().to(hosted::test))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/tokens")
            .route(web::get().to(tokens::list))
            .route(web::post().to(tokens::create))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/tokens/{token_id}")
            .route(web::delete().to(tokens::revoke))
            .default_service(not_allowed()),
    )
    .default_service(web::to(not_supported));
}

/// Registers the management API under both prefixes (reference §1).
pub fn routes(cfg: &mut web::ServiceConfig) {
    for prefix in ["/v1/management", "/api/v1/management"] {
        cfg.service(web::scope(prefix).configure(management));
    }
}
