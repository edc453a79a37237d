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
        &json!({
            "site_id": site.id,
            "sessions_started": v.sessions_started,
            "sessions_client_completed": v.sessions_client_completed,
            "sessions_server_verified": v.sessions_server_verified,
            "failed_client_completion": v.failed_client_completion,
            "failed_server_verification": v.failed_server_verification,
            "rate_limit_rejections": v.rate_limit_rejections,
            "challenge_blocked": v.challenge_blocked,
            "webhook_delivered": d.webhook.delivered,
            "webhook_failed": d.webhook.failed,
            "email_delivered": d.email.delivered,
            "email_failed": d.email.failed,
        }),
    ))
}
