//! Hosted verification (reference §6, §9.3, §9.6): a site's destinations and its forwarding
//! switch, read, saved as a whole (`PUT`), and tried with a Test delivery to each destination.
//! The webhook URL is a secret: only these answers show it, to a token that may read the site.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::sites::{change_site, site_error, visible_site};
use super::{ApiCaller, ApiError, Fields, Given, read_object, schema};
use crate::delivery::Outcome;
use crate::egress::webhook_url::WebhookUrl;
use crate::sites::{self, Site};
use crate::web::WebState;

/// The hosted-verification object of a site: the values as they were sent while they still name
/// the stored ones.
fn hosted_object(site: &Site) -> Value {
    json!(schema::HostedVerification {
        site_id: site.id.clone(),
        enabled: site.settings.enabled,
        webhook_url: site.webhook_url_echo(),
        email_to: site.email_to_echo(),
        created_at: site.hosted_created_at,
        updated_at: site.hosted_updated_at,
    })
}

/// `GET …/hosted-verification/{id}`: 200 for every visible site, configured or not.
#[utoipa::path(get, operation_id = "hosted_read", path = "/v1/management/hosted-verification/{site_id}", tag = "hosted verification", params(("site_id" = String, Path, description = "The site's internal id, site_…")), responses((status = 200, body = crate::web::api::schema::HostedVerification), (status = 404, body = crate::web::api::schema::ErrorBody)))]
pub async fn read(
    state: web::Data<WebState>,
    caller: ApiCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let site = visible_site(&state, &caller, path.into_inner()).await?;
    Ok(super::json(StatusCode::OK, &hosted_object(&site)))
}

/// The webhook URL of a `PUT`: SPEC §5's save rules, and no blanks around it (the answer
/// echoes it as sent).
fn check_webhook(raw: &str) -> Result<(), ApiError> {
    if raw.trim() != raw {
        return Err(ApiError::unprocessable(
            "invalid-webhook-url",
            "the webhook URL must not start or end with blanks",
        ));
    }
    WebhookUrl::parse(raw)
        .map(drop)
        .map_err(|e| ApiError::unprocessable("invalid-webhook-url", e.to_string()))
}

/// The addresses of a `PUT`: one string of one to five addresses separated by commas.
fn check_email_to(raw: &str) -> Result<(), ApiError> {
    if raw.trim().is_empty() || raw.contains(['\r', '\n']) {
        return Err(ApiError::unprocessable(
            "invalid-email",
            "email_to must be one address, or up to five separated by commas",
        ));
    }
    sites::parse_email_to(&[raw.to_owned()])
        .map(drop)
        .map_err(site_error)
}

/// `PUT …/hosted-verification/{id}` with `{"email_to", "enabled", "webhook_url"}`: `enabled` is
/// required; a destination given as `null` (or `""`) is removed, one left out stays as it is.
/// Every rule is checked before anything changes.
#[utoipa::path(put, operation_id = "hosted_write", path = "/v1/management/hosted-verification/{site_id}", tag = "hosted verification", params(("site_id" = String, Path, description = "The site's internal id, site_…")), request_body = crate::web::api::schema::HostedVerificationPut, responses((status = 200, body = crate::web::api::schema::HostedVerification), (status = 400, body = crate::web::api::schema::ErrorBody), (status = 403, body = crate::web::api::schema::ErrorBody), (status = 404, body = crate::web::api::schema::ErrorBody), (status = 422, body = crate::web::api::schema::ErrorBody)))]
pub async fn write(
    state: web::Data<WebState>,
    caller: ApiCaller,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_write()?;
    let site = visible_site(&state, &caller, path.into_inner()).await?;
    let body = read_object(&req, payload).await?.unwrap_or_default();
    let fields = Fields(&body);
    let enabled = match fields.bool("enabled")? {
        Given::Value(enabled) => enabled,
        Given::Null | Given::Absent => {
            return Err(ApiError::MissingField("enabled is required".into()));
        }
    };
    let webhook = fields.string("webhook_url")?;
    let email_to = fields.string("email_to")?;
    let mut input = site.to_input();
    input.enabled = enabled;
    match webhook {
        Given::Value(raw) if !raw.is_empty() => {
            check_webhook(&raw)?;
            input.webhook_url = raw.clone();
            input.as_sent.webhook_url = Some(raw);
        }
        Given::Value(_) | Given::Null => input.webhook_url = String::new(),
        Given::Absent => {}
    }
    match email_to {
        Given::Value(raw) => {
            check_email_to(&raw)?;
            input.email_to = vec![raw.clone()];
            input.as_sent.email_to = Some(raw);
        }
        Given::Null => input.email_to = Vec::new(),
        Given::Absent => {}
    }
    let settings = input.validate().map_err(site_error)?;
    sites::check_email_relay(&settings, state.settings.mail.is_some()).map_err(site_error)?;
    input.hosted_saved_at = Some(state.clock.now_ms());
    let changed = change_site(&state, &caller, site.id.clone(), input).await?;
    Ok(super::json(StatusCode::OK, &hosted_object(&changed)))
}

/// `POST …/hosted-verification/{id}/test` (body empty or `{}`): SPEC §6's Test delivery to each
/// configured destination, whether or not forwarding is on, with each one's result.
#[utoipa::path(post, operation_id = "hosted_test", path = "/v1/management/hosted-verification/{site_id}/test", tag = "hosted verification", params(("site_id" = String, Path, description = "The site's internal id, site_…")), responses((status = 200, body = crate::web::api::schema::TestAnswer), (status = 403, body = crate::web::api::schema::ErrorBody), (status = 404, body = crate::web::api::schema::ErrorBody), (status = 422, body = crate::web::api::schema::ErrorBody)))]
pub async fn test(
    state: web::Data<WebState>,
    caller: ApiCaller,
    path: web::Path<String>,
    client: web::Data<awc::Client>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_write()?;
    let site = visible_site(&state, &caller, path.into_inner()).await?;
    read_object(&req, payload).await?;
    if site.settings.webhook_url.is_none() && site.settings.email_to.is_empty() {
        return Err(ApiError::unprocessable(
            "no-destination",
            "the site has no webhook URL and no email address to test",
        ));
    }
    let deliveries = crate::test_delivery::run(&state.services, &client, &site).await;
    let destinations: Vec<Value> = deliveries
        .iter()
        .map(|(destination, report)| {
            json!({
                "destination": destination.as_str(),
                "ok": report.outcome == Outcome::Delivered,
                "outcome": report.outcome.as_str(),
                "http_status": report.http_status,
                "smtp_code": report.smtp_code,
                "latency_ms": report.latency_ms,
                "detail": (!report.detail.is_empty()).then_some(&report.detail),
            })
        })
        .collect();
    Ok(super::json(
        StatusCode::OK,
        &json!({"site_id": site.id, "destinations": destinations}),
    ))
}
