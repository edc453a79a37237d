//! A site's Cap configuration and security settings in Caputchin's shapes (reference §6, §9.4,
//! §9.5). The challenge shape and the allowed origins map onto the site's settings; Caputchin's
//! settings without a counterpart read their neutral values, and a change of one to anything
//! else is refused (422 `unsupported-setting`) rather than ignored, which would leave Terraform
//! with a diff forever.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};

use super::sites::{change_site, visible_site};
use super::{ApiCaller, ApiError, Fields, Given, read_object};
use crate::captcha::cap::{MAX_CHALLENGE_COUNT, MAX_DIFFICULTY};
use crate::sites::{self, MAX_ORIGINS, Site};
use crate::web::WebState;

/// Caputchin's Cap settings with no counterpart here, and the values they read.
fn neutral_cap_settings() -> [(&'static str, Value); 6] {
    [
        ("instrumentation", json!(false)),
        ("obfuscation_level", json!(1)),
        ("block_automated_browsers", json!(false)),
        ("block_non_browser_ua", Value::Null),
        ("required_headers", Value::Null),
        ("ratelimit_max", Value::Null),
    ]
}

/// Caputchin's security settings, none of which has a counterpart here, and their neutral values.
fn neutral_security_settings() -> [(&'static str, Value); 8] {
    [
        ("require_game", json!(false)),
        ("preview_mode", Value::Null),
        ("reuse", Value::Null),
        ("reuse_window_ms", Value::Null),
        ("reuse_persist", Value::Null),
        ("proxy_gate", json!(false)),
        ("proxy_ttl_seconds", Value::Null),
        ("proxy_fail_mode", Value::Null),
    ]
}

/// Refuses a body that sets a setting without a counterpart to anything but its neutral value.
fn refuse_unsupported(
    body: &Map<String, Value>,
    neutral: &[(&'static str, Value)],
) -> Result<(), ApiError> {
    for (key, value) in neutral {
        if let Some(given) = body.get(*key)
            && given != value
        {
            return Err(ApiError::unprocessable(
                "unsupported-setting",
                format!(
                    "{key} has no counterpart on a self-hosted forwarder: only {value} is accepted"
                ),
            ));
        }
    }
    Ok(())
}

/// The `cap-config` answer.
fn cap_config(site: &Site) -> Value {
    let mut config = Map::new();
    config.insert(
        "difficulty".into(),
        json!(site.settings.challenge.difficulty),
    );
    config.insert(
        "challenge_count".into(),
        json!(site.settings.challenge.count),
    );
    config.insert("cors_origins".into(), json!(site.allowed_origins_echo()));
    for (key, value) in neutral_cap_settings() {
        config.insert(key.into(), value);
    }
    json!({"site_id": site.id, "config": config})
}

/// `GET …/sites/{id}/cap-config`.
#[utoipa::path(get, operation_id = "settings_read_cap_config", path = "/v1/management/sites/{site_id}/cap-config", tag = "settings", params(("site_id" = String, Path, description = "The site's internal id, site_…")), responses((status = 200, body = crate::web::api::schema::CapConfigAnswer), (status = 404, body = crate::web::api::schema::ErrorBody)))]
pub async fn read_cap_config(
    state: web::Data<WebState>,
    caller: ApiCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let site = visible_site(&state, &caller, path.into_inner()).await?;
    Ok(super::json(StatusCode::OK, &cap_config(&site)))
}

/// An integer setting within `1..=max`, else 422 `invalid-setting`.
fn in_range(key: &str, value: i64, max: i64) -> Result<i64, ApiError> {
    if (1..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::unprocessable(
            "invalid-setting",
            format!("{key} must be between 1 and {max}"),
        ))
    }
}

/// `PATCH …/sites/{id}/cap-config` with the changed fields: `difficulty` (1–8),
/// `challenge_count` (1–500), `cors_origins` (a list of `scheme://host[:port]`, or `null`/`[]`
/// for any origin). Answers like the `GET`.
#[utoipa::path(patch, operation_id = "settings_update_cap_config", path = "/v1/management/sites/{site_id}/cap-config", tag = "settings", params(("site_id" = String, Path, description = "The site's internal id, site_…")), request_body = crate::web::api::schema::CapConfig, responses((status = 200, body = crate::web::api::schema::CapConfigAnswer), (status = 400, body = crate::web::api::schema::ErrorBody), (status = 403, body = crate::web::api::schema::ErrorBody), (status = 404, body = crate::web::api::schema::ErrorBody), (status = 422, body = crate::web::api::schema::ErrorBody)))]
pub async fn update_cap_config(
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
    let difficulty = fields.integer("difficulty")?;
    let count = fields.integer("challenge_count")?;
    let origins = fields.strings("cors_origins")?;
    // Wrong types are reported as such before the values are judged.
    fields.bool("instrumentation")?;
    fields.integer("obfuscation_level")?;
    fields.bool("block_automated_browsers")?;
    fields.bool("block_non_browser_ua")?;
    fields.strings("required_headers")?;
    fields.integer("ratelimit_max")?;
    refuse_unsupported(&body, &neutral_cap_settings())?;
    let mut input = site.to_input();
    match difficulty {
        Given::Value(d) => {
            let d = in_range("difficulty", d, i64::from(MAX_DIFFICULTY))?;
            input.difficulty = u8::try_from(d).ok();
        }
        Given::Null => {
            return Err(ApiError::InvalidField(
                "difficulty must be an integer".into(),
            ));
        }
        Given::Absent => {}
    }
    match count {
        Given::Value(c) => {
            let c = in_range("challenge_count", c, i64::from(MAX_CHALLENGE_COUNT))?;
            input.challenge_count = u16::try_from(c).ok();
        }
        Given::Null => {
            return Err(ApiError::InvalidField(
                "challenge_count must be an integer".into(),
            ));
        }
        Given::Absent => {}
    }
    match origins {
        Given::Value(list) if !list.is_empty() => {
            if list.len() > MAX_ORIGINS {
                return Err(super::sites::site_error(sites::SiteError::TooManyOrigins));
            }
            for origin in &list {
                // Each entry is one origin, spelled without blanks, so that it echoes as sent.
                if origin.trim() != origin
                    || origin.contains(',')
                    || sites::normalize_origin(origin).is_none()
                {
                    return Err(super::sites::site_error(sites::SiteError::InvalidOrigin(
                        origin.clone(),
                    )));
                }
            }
            input.allowed_origins = list.clone();
            input.as_sent.allowed_origins = Some(list);
        }
        Given::Value(_) | Given::Null => input.allowed_origins = Vec::new(),
        Given::Absent => {}
    }
    input.validate().map_err(super::sites::site_error)?;
    let changed = change_site(&state, &caller, site.id.clone(), input).await?;
    Ok(super::json(StatusCode::OK, &cap_config(&changed)))
}

/// The `security-settings` answer: the neutral values.
fn security_settings(site: &Site) -> Value {
    let settings: Map<String, Value> = neutral_security_settings()
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
    json!({"site_id": site.id, "settings": settings})
}

/// `GET …/sites/{id}/security-settings`.
#[utoipa::path(get, operation_id = "settings_read_security", path = "/v1/management/sites/{site_id}/security-settings", tag = "settings", params(("site_id" = String, Path, description = "The site's internal id, site_…")), responses((status = 200, body = crate::web::api::schema::SecuritySettingsAnswer), (status = 404, body = crate::web::api::schema::ErrorBody)))]
pub async fn read_security(
    state: web::Data<WebState>,
    caller: ApiCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let site = visible_site(&state, &caller, path.into_inner()).await?;
    Ok(super::json(StatusCode::OK, &security_settings(&site)))
}

/// `PATCH …/sites/{id}/security-settings`: only the neutral values are accepted (nothing here
/// has games, preview mode, clearance reuse or a proxy gate).
#[utoipa::path(patch, operation_id = "settings_update_security", path = "/v1/management/sites/{site_id}/security-settings", tag = "settings", params(("site_id" = String, Path, description = "The site's internal id, site_…")), request_body = crate::web::api::schema::SecuritySettings, responses((status = 200, body = crate::web::api::schema::SecuritySettingsAnswer), (status = 403, body = crate::web::api::schema::ErrorBody), (status = 404, body = crate::web::api::schema::ErrorBody), (status = 422, body = crate::web::api::schema::ErrorBody)))]
pub async fn update_security(
    state: web::Data<WebState>,
    caller: ApiCaller,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_write()?;
    let site = visible_site(&state, &caller, path.into_inner()).await?;
    let body = read_object(&req, payload).await?.unwrap_or_default();
    refuse_unsupported(&body, &neutral_security_settings())?;
    Ok(super::json(StatusCode::OK, &security_settings(&site)))
}

/// Our extension: a site's full settings (SPEC §12). Secrets are write-only: the verifier
/// secret is only said to be set; the webhook URL is shown as hosted verification shows it.
fn full_settings(site: &Site) -> Value {
    let s = &site.settings;
    json!({
        "site_id": site.id,
        "key": site.key.as_str(),
        "name": s.name,
        "disabled": s.disabled,
        "forwarding_enabled": s.enabled,
        "webhook_url": site.webhook_url_echo(),
        "email_to": site.email_to_echo(),
        "redirect_url": s.redirect_url.as_ref().map(|u| u.to_string()),
        "allowed_origins": site.allowed_origins_echo(),
        "challenge_count": s.challenge.count,
        "difficulty": s.challenge.difficulty,
        "verifier": s.verifier.as_str(),
        "verifier_url": s.verifier_url.as_ref().map(|u| u.expose().to_owned()),
        "verifier_sitekey": s.verifier_sitekey,
        "verifier_secret_set": site.verifier_secret.is_some(),
    })
}

/// `GET …/sites/{id}/settings`.
#[utoipa::path(get, operation_id = "settings_read_full", path = "/v1/management/sites/{site_id}/settings", tag = "extensions", params(("site_id" = String, Path, description = "The site's internal id, site_…")), responses((status = 200, body = crate::web::api::schema::FullSettings), (status = 404, body = crate::web::api::schema::ErrorBody)))]
pub async fn read_full(
    state: web::Data<WebState>,
    caller: ApiCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let site = visible_site(&state, &caller, path.into_inner()).await?;
    Ok(super::json(StatusCode::OK, &full_settings(&site)))
}

/// A string field that `null` or `""` clears.
fn clearable(given: Given<String>) -> Option<Option<String>> {
    match given {
        Given::Absent => None,
        Given::Null => Some(None),
        Given::Value(v) if v.is_empty() => Some(None),
        Given::Value(v) => Some(Some(v)),
    }
}

/// `PATCH …/sites/{id}/settings` with the changed fields: `redirect_url`, `allowed_origins`,
/// `challenge_count`, `difficulty`, `verifier`, `verifier_secret` (write-only), `verifier_url`,
/// `verifier_sitekey` (destinations and the two switches have their own routes). The site's
/// rules apply as in the dashboard; a refused change changes nothing.
#[utoipa::path(patch, operation_id = "settings_update_full", path = "/v1/management/sites/{site_id}/settings", tag = "extensions", params(("site_id" = String, Path, description = "The site's internal id, site_…")), request_body = crate::web::api::schema::FullSettingsPatch, responses((status = 200, body = crate::web::api::schema::FullSettings), (status = 400, body = crate::web::api::schema::ErrorBody), (status = 403, body = crate::web::api::schema::ErrorBody), (status = 404, body = crate::web::api::schema::ErrorBody), (status = 422, body = crate::web::api::schema::ErrorBody)))]
pub async fn update_full(
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
    let mut input = site.to_input();
    if let Some(redirect) = clearable(fields.string("redirect_url")?) {
        input.redirect_url = redirect;
    }
    match fields.strings("allowed_origins")? {
        Given::Value(list) => {
            input.as_sent.allowed_origins = Some(list.clone());
            input.allowed_origins = list;
        }
        Given::Null => input.allowed_origins = Vec::new(),
        Given::Absent => {}
    }
    if let Given::Value(c) = fields.integer("challenge_count")? {
        let c = in_range("challenge_count", c, i64::from(MAX_CHALLENGE_COUNT))?;
        input.challenge_count = u16::try_from(c).ok();
    }
    if let Given::Value(d) = fields.integer("difficulty")? {
        let d = in_range("difficulty", d, i64::from(MAX_DIFFICULTY))?;
        input.difficulty = u8::try_from(d).ok();
    }
    if let Given::Value(verifier) = fields.string("verifier")? {
        input.verifier = Some(verifier);
    }
    if let Some(url) = clearable(fields.string("verifier_url")?) {
        input.verifier_url = url;
    }
    if let Some(sitekey) = clearable(fields.string("verifier_sitekey")?) {
        input.verifier_sitekey = sitekey;
    }
    if let Given::Value(secret) = fields.string("verifier_secret")?
        && !secret.trim().is_empty()
    {
        input.verifier_secret = Some(state.keys.sealer().seal(secret.trim()));
    }
    input.validate().map_err(super::sites::site_error)?;
    let changed = change_site(&state, &caller, site.id.clone(), input).await?;
    Ok(super::json(StatusCode::OK, &full_settings(&changed)))
}
