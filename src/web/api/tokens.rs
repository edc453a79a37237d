//! `…/tokens` (reference §7, §9.8): list, create and revoke the caller's account's personal
//! access tokens. Only a write token bound to no site may use them.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::{ApiCaller, ApiError, Fields, Given, blocking, read_object};
use crate::access_tokens::{self, Kind, Scope, TokenError, TokenInfo, TokenInput};
use crate::web::WebState;

/// A token as listed (Caputchin's fields, then ours).
fn listed(t: &TokenInfo) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "type": t.kind.as_str(),
        "prefix": t.prefix,
        "last_used_at": t.last_used_at,
        "created_at": t.created_at,
        "scope": t.scope.as_str(),
        "site_id": t.site_id,
        "expires_at": t.expires_at,
    })
}

/// `GET …/tokens`: `{"tokens": [...]}`, revoked ones left out.
#[utoipa::path(get, operation_id = "tokens_list", path = "/v1/management/tokens", tag = "tokens", responses((status = 200, body = crate::web::api::schema::TokenList), (status = 403, body = crate::web::api::schema::ErrorBody)))]
pub async fn list(state: web::Data<WebState>, caller: ApiCaller) -> Result<HttpResponse, ApiError> {
    caller.require_unrestricted_write()?;
    let account = caller.account_id;
    let tokens = blocking(&state, move |s| {
        access_tokens::list_tokens(&s.store, account).map_err(token_error)
    })
    .await?;
    let rows: Vec<Value> = tokens.iter().map(listed).collect();
    Ok(super::json(StatusCode::OK, &json!({ "tokens": rows })))
}

/// `POST …/tokens` with `{"name", "type"}` (and our `scope`, `site_id`, `expires_days`): 201
/// `{"token": {…, "value"}}`, the value shown this once.
#[utoipa::path(post, operation_id = "tokens_create", path = "/v1/management/tokens", tag = "tokens", request_body = crate::web::api::schema::CreateToken, responses((status = 201, body = crate::web::api::schema::CreatedTokenAnswer), (status = 400, body = crate::web::api::schema::ErrorBody), (status = 403, body = crate::web::api::schema::ErrorBody), (status = 422, body = crate::web::api::schema::ErrorBody)))]
pub async fn create(
    state: web::Data<WebState>,
    caller: ApiCaller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_unrestricted_write()?;
    let body = read_object(&req, payload).await?.unwrap_or_default();
    let fields = Fields(&body);
    let name = fields.required_string("name")?;
    let kind = match fields.string("type")? {
        Given::Value(raw) => Kind::parse(&raw)
            .ok_or_else(|| ApiError::InvalidField("type must be troop or account".into()))?,
        Given::Absent | Given::Null => Kind::Troop,
    };
    let scope = match fields.string("scope")? {
        Given::Value(raw) => Scope::parse(&raw)
            .ok_or_else(|| ApiError::InvalidField("scope must be read or write".into()))?,
        Given::Absent | Given::Null => Scope::Write,
    };
    let site_id = fields.string("site_id")?.value();
    let expires_days = match fields.integer("expires_days")?.value() {
        None => None,
        Some(days) => Some(u32::try_from(days).map_err(|_| {
            ApiError::unprocessable("invalid-expiry", "expires_days is out of range")
        })?),
    };
    let account = caller.account_id;
    let now = state.clock.now_ms();
    let created = blocking(&state, move |s| {
        if let Some(site_id) = &site_id
            && crate::sites::site_for_account(&s.store, account, site_id)
                .map_err(ApiError::internal)?
                .is_none()
        {
            return Err(ApiError::NotFound);
        }
        let input = TokenInput {
            name,
            scope,
            site_id,
            expires_days,
            kind,
        };
        access_tokens::create_token(&s.store, account, &input, now).map_err(token_error)
    })
    .await?;
    let mut token = listed(&created.info);
    if let Some(map) = token.as_object_mut() {
        map.remove("last_used_at");
        map.insert("value".into(), Value::String(created.value));
    }
    Ok(super::json(StatusCode::CREATED, &json!({ "token": token })))
}

/// `DELETE …/tokens/{token_id}`: revoked at once, 204; another account's or an unknown one 404.
#[utoipa::path(delete, operation_id = "tokens_revoke", path = "/v1/management/tokens/{token_id}", tag = "tokens", params(("token_id" = String, Path, description = "tok_…")), responses((status = 204, description = "Revoked"), (status = 403, body = crate::web::api::schema::ErrorBody), (status = 404, body = crate::web::api::schema::ErrorBody)))]
pub async fn revoke(
    state: web::Data<WebState>,
    caller: ApiCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_unrestricted_write()?;
    let (account, token_id, now) = (caller.account_id, path.into_inner(), state.clock.now_ms());
    let revoked = blocking(&state, move |s| {
        access_tokens::revoke_token(&s.store, account, &token_id, now).map_err(token_error)
    })
    .await?;
    if revoked {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}

/// The API's answer to a refused token operation.
fn token_error(e: TokenError) -> ApiError {
    match e {
        TokenError::InvalidName => ApiError::unprocessable("invalid-name", e.to_string()),
        TokenError::InvalidExpiry => ApiError::unprocessable("invalid-expiry", e.to_string()),
        TokenError::Store(e) => ApiError::internal(e),
    }
}
