//! A site's statistics in Caputchin's shape (reference §6, §9.7): lifetime totals of the
//! verification counts, and the real-delivery tiles per destination as extra keys.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde_json::json;

use super::sites::visible_site;
use super::{ApiCaller, ApiError, blocking};
use crate::stats::{self, Range, Scope};
use crate::web::WebState;

/// `GET …/sites/{id}/stats`: every counter an integer lifetime total.
#[utoipa::path(get, operation_id = "stats_site", path = "/v1/management/sites/{site_id}/stats", tag = "sites", params(("site_id" = String, Path, description = "The site's internal id, site_…")), responses((status = 200, body = crate::web::api::schema::SiteStats), (status = 404, body = crate::web::api::schema::ErrorBody)))]
pub async fn site(
    state: web::Data<WebState>,
    caller: ApiCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let site = visible_site(&state, &caller, path.into_inner()).await?;
    let now = state.clock.now_ms();
    let id = site.id.clone();
    let totals = blocking(&state, move |s| {
        stats::query(&s.store, Scope::Site(&id), Range::All, now).map_err(ApiError::internal)
    })
    .await?;
    let v = totals.verification;
    let d = &totals.destinations;
    Ok(super::json(
        StatusCode::OK,
        &json!(super::schema::SiteStats {
            site_id: site.id,
            sessions_started: v.sessions_started,
            sessions_client_completed: v.sessions_client_completed,
            sessions_server_verified: v.sessions_server_verified,
            failed_client_completion: v.failed_client_completion,
            failed_server_verification: v.failed_server_verification,
            rate_limit_rejections: v.rate_limit_rejections,
            challenge_blocked: v.challenge_blocked,
            webhook_delivered: d.webhook.delivered,
            webhook_failed: d.webhook.failed,
            email_delivered: d.email.delivered,
            email_failed: d.email.failed,
        }),
    ))
}

/// `?range=` of the delivery statistics: `today`, `yesterday`, `7d` (default), `28d`, `all`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct RangeQuery {
    range: Option<String>,
}

/// The statistics of §6 for one of the caller's sites over a range.
async fn site_stats(
    state: &WebState,
    caller: &ApiCaller,
    site_id: String,
    range: Option<&str>,
) -> Result<(String, stats::Stats), ApiError> {
    let range = match range {
        None => Range::Days7,
        Some(raw) => Range::parse(raw).ok_or_else(|| {
            ApiError::InvalidField("range must be today, yesterday, 7d, 28d or all".into())
        })?,
    };
    let site = visible_site(state, caller, site_id).await?;
    let now = state.clock.now_ms();
    let id = site.id.clone();
    let answer = blocking(state, move |s| {
        stats::query(&s.store, Scope::Site(&id), range, now).map_err(ApiError::internal)
    })
    .await?;
    Ok((site.id, answer))
}

/// Our extension: `GET …/sites/{id}/delivery-stats?range=7d`: the dashboard's statistics of
/// SPEC §6 (tiles per destination, failures by category, latency, the series), without the
/// latest deliveries.
#[utoipa::path(get, operation_id = "stats_deliveries_range", path = "/v1/management/sites/{site_id}/delivery-stats", tag = "extensions", params(("site_id" = String, Path, description = "The site's internal id"), ("range" = Option<String>, Query, description = "today, yesterday, 7d (default), 28d or all")), responses((status = 200, description = "SPEC §6 statistics of the range", body = Object), (status = 400, body = crate::web::api::schema::ErrorBody), (status = 404, body = crate::web::api::schema::ErrorBody)))]
pub async fn deliveries_range(
    state: web::Data<WebState>,
    caller: ApiCaller,
    path: web::Path<String>,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (site_id, mut answer) =
        site_stats(&state, &caller, path.into_inner(), query.range.as_deref()).await?;
    answer.recent.clear();
    let mut body = serde_json::to_value(&answer).map_err(ApiError::internal)?;
    if let Some(map) = body.as_object_mut() {
        map.remove("recent");
        map.insert("site_id".into(), json!(site_id));
    }
    Ok(super::json(StatusCode::OK, &body))
}

/// Our extension: `GET …/sites/{id}/deliveries`: the latest deliveries (time, destination, test
/// or real, outcome, HTTP status, latency), never form contents.
#[utoipa::path(get, operation_id = "stats_latest", path = "/v1/management/sites/{site_id}/deliveries", tag = "extensions", params(("site_id" = String, Path, description = "The site's internal id, site_…")), responses((status = 200, body = crate::web::api::schema::LatestDeliveries), (status = 404, body = crate::web::api::schema::ErrorBody)))]
pub async fn latest(
    state: web::Data<WebState>,
    caller: ApiCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (site_id, answer) = site_stats(&state, &caller, path.into_inner(), Some("all")).await?;
    let rows: Vec<serde_json::Value> = answer
        .recent
        .iter()
        .map(|d| {
            json!({
                "at": d.at_ms,
                "destination": d.destination.as_str(),
                "test": d.is_test,
                "outcome": d.outcome.as_str(),
                "http_status": d.http_status,
                "latency_ms": d.latency_ms,
            })
        })
        .collect();
    Ok(super::json(
        StatusCode::OK,
        &json!({"site_id": site_id, "deliveries": rows}),
    ))
}
