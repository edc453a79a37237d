//! The account, its troop, and its sites (reference §4, §5, §9.1, §9.2): `me/account`,
//! `troops`, and `sites` list, create, read, update, delete and rotate-secret. A troop is the
//! account (one each); a site is found by its internal id among the caller's account's sites, and
//! a site-bound token sees only its own.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::{ApiCaller, ApiError, Fields, Given, blocking, read_object, schema};
use crate::sites::{self, RotationGrace, Site, SiteError};
use crate::store::accounts::AccountRow;
use crate::web::WebState;

/// The tier every site and troop reports (any non-null string satisfies the provider).
pub const TIER: &str = "self-hosted";

/// The account's id as the API names it.
pub fn account_id_of(account: &AccountRow) -> String {
    format!("acct_{}", account.id)
}

/// The caller's account.
pub async fn account_of(state: &WebState, caller: &ApiCaller) -> Result<AccountRow, ApiError> {
    let id = caller.account_id;
    blocking(state, move |s| {
        s.store.accounts().by_id(id)?.ok_or(ApiError::InvalidToken)
    })
    .await
}

/// The troop object of an account (reference §4).
fn troop(account: &AccountRow) -> Value {
    json!({
        "id": account.troop_id,
        "name": account.email,
        "account_id": account_id_of(account),
        "kind": "personal",
        "tier": TIER,
        "created_at": account.created_at,
        "can_manage": true,
        "owner_email": account.email,
    })
}

/// The site object (reference §5): the seven fields the provider reads. The secret and the
/// destinations are never part of it.
pub fn site_object(site: &Site, account: &AccountRow) -> schema::Site {
    schema::Site {
        id: site.id.clone(),
        key: site.key.as_str().to_owned(),
        name: site.settings.name.clone(),
        troop_id: account.troop_id.clone(),
        tier: TIER.to_owned(),
        disabled: site.settings.disabled,
        created_at: site.created_at,
    }
}

/// One of the caller's sites by its internal id: 404 for an unknown id, another account's site,
/// or a site a site-bound token is not bound to.
pub async fn visible_site(
    state: &WebState,
    caller: &ApiCaller,
    site_id: String,
) -> Result<Site, ApiError> {
    if !caller.may_see(&site_id) {
        return Err(ApiError::NotFound);
    }
    let account = caller.account_id;
    blocking(state, move |s| {
        sites::site_for_account(&s.store, account, &site_id)
            .map_err(site_error)?
            .ok_or(ApiError::NotFound)
    })
    .await
}

/// The API's answer to a refused site change (nothing was changed).
pub fn site_error(e: SiteError) -> ApiError {
    let code = match &e {
        SiteError::InvalidName => "invalid-name",
        SiteError::InvalidWebhook(_) => "invalid-webhook-url",
        SiteError::InvalidRedirect => "invalid-redirect-url",
        SiteError::InvalidVerifier
        | SiteError::MissingVerifierSecret
        | SiteError::InvalidVerifierUrl(_) => "invalid-verifier",
        SiteError::InvalidOrigin(_) => "invalid-origin",
        SiteError::TooManyOrigins => "too-many-origins",
        SiteError::InvalidChallengeCount | SiteError::InvalidDifficulty => "invalid-setting",
        SiteError::InvalidEmailTo(_) => "invalid-email",
        SiteError::TooManyEmailTo => "too-many-recipients",
        SiteError::NoDestination => "no-destination",
        SiteError::NoRelay => "email-not-configured",
        SiteError::Account(_) | SiteError::Store(_) => return ApiError::internal(e),
    };
    ApiError::unprocessable(code, e.to_string())
}

/// A name as the API takes it: the site's name rules, and no blanks around it (a trimmed name
/// would not echo what was sent).
fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim() != name {
        return Err(ApiError::unprocessable(
            "invalid-name",
            "the site name must not start or end with blanks",
        ));
    }
    Ok(())
}

/// Runs a change of the caller's site through the site directory (in force at once, SPEC §9)
/// and answers the site as it is afterwards.
pub async fn change_site(
    state: &WebState,
    caller: &ApiCaller,
    site_id: String,
    input: sites::SiteInput,
) -> Result<Site, ApiError> {
    let (account, now) = (caller.account_id, state.clock.now_ms());
    blocking(state, move |s| {
        let changed = s
            .sites
            .change(&s.store, |store| {
                sites::update_site(store, account, &site_id, &input, now)
            })
            .map_err(site_error)?;
        if !changed {
            return Err(ApiError::NotFound);
        }
        sites::site_for_account(&s.store, account, &site_id)
            .map_err(site_error)?
            .ok_or(ApiError::NotFound)
    })
    .await
}

/// `GET …/me/account`.
#[utoipa::path(get, operation_id = "sites_me", path = "/v1/management/me/account", tag = "account", responses((status = 200, body = crate::web::api::schema::AccountAnswer), (status = 401, body = crate::web::api::schema::ErrorBody)))]
pub async fn me(state: web::Data<WebState>, caller: ApiCaller) -> Result<HttpResponse, ApiError> {
    let account = account_of(&state, &caller).await?;
    Ok(super::json(
        StatusCode::OK,
        &json!({"account": {
            "id": account_id_of(&account),
            "email": account.email,
            "created_at": account.created_at,
        }}),
    ))
}

/// `GET …/troops`: the caller's one troop.
#[utoipa::path(get, operation_id = "sites_troops", path = "/v1/management/troops", tag = "account", responses((status = 200, body = crate::web::api::schema::TroopList), (status = 401, body = crate::web::api::schema::ErrorBody)))]
pub async fn troops(
    state: web::Data<WebState>,
    caller: ApiCaller,
) -> Result<HttpResponse, ApiError> {
    let account = account_of(&state, &caller).await?;
    Ok(super::json(
        StatusCode::OK,
        &json!({"troops": [troop(&account)]}),
    ))
}

/// `GET …/troops/{troop_id}`: the caller's troop, or 404.
#[utoipa::path(get, operation_id = "sites_troop_by_id", path = "/v1/management/troops/{troop_id}", tag = "account", params(("troop_id" = String, Path, description = "troop_…")), responses((status = 200, body = crate::web::api::schema::TroopAnswer), (status = 404, body = crate::web::api::schema::ErrorBody)))]
pub async fn troop_by_id(
    state: web::Data<WebState>,
    caller: ApiCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let account = account_of(&state, &caller).await?;
    if *path != account.troop_id {
        return Err(ApiError::NotFound);
    }
    Ok(super::json(
        StatusCode::OK,
        &json!({"troop": troop(&account)}),
    ))
}

/// `GET …/sites`: every site the caller may read, each row with all seven fields.
#[utoipa::path(get, operation_id = "sites_list", path = "/v1/management/sites", tag = "sites", responses((status = 200, body = crate::web::api::schema::SiteList), (status = 401, body = crate::web::api::schema::ErrorBody)))]
pub async fn list(state: web::Data<WebState>, caller: ApiCaller) -> Result<HttpResponse, ApiError> {
    let account = account_of(&state, &caller).await?;
    let id = caller.account_id;
    let all: Vec<Site> = blocking(&state, move |s| {
        sites::sites_of_account(&s.store, id).map_err(site_error)
    })
    .await?;
    let rows: Vec<schema::Site> = all
        .iter()
        .filter(|site| caller.may_see(&site.id))
        .map(|site| site_object(site, &account))
        .collect();
    Ok(super::json(StatusCode::OK, &json!({ "sites": rows })))
}

/// `POST …/sites` with `{"name", "troop_id"}` (`troop_id` absent: the caller's troop; other keys
/// ignored): 201 `{"site", "secret"}`. The site has no destination yet, so forwarding is off; its
/// key is on.
#[utoipa::path(post, operation_id = "sites_create", path = "/v1/management/sites", tag = "sites", request_body = crate::web::api::schema::CreateSite, responses((status = 201, body = crate::web::api::schema::CreatedSite), (status = 400, body = crate::web::api::schema::ErrorBody), (status = 403, body = crate::web::api::schema::ErrorBody), (status = 404, body = crate::web::api::schema::ErrorBody), (status = 422, body = crate::web::api::schema::ErrorBody)))]
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
    let troop_id = fields.string("troop_id")?;
    check_name(&name)?;
    let account = account_of(&state, &caller).await?;
    if let Given::Value(troop_id) = &troop_id
        && *troop_id != account.troop_id
    {
        return Err(ApiError::NotFound);
    }
    let (id, now) = (account.id, state.clock.now_ms());
    let (site, secret) = blocking(&state, move |s| {
        let created = s
            .sites
            .change(&s.store, |store| {
                sites::create_api_site_for(store, id, &name, now)
            })
            .map_err(site_error)?;
        let site = sites::site_for_account(&s.store, id, &created.site_id)
            .map_err(site_error)?
            .ok_or_else(|| ApiError::internal("a site just created is missing"))?;
        Ok((site, created.secret))
    })
    .await?;
    Ok(super::json(
        StatusCode::CREATED,
        &json!({"site": site_object(&site, &account), "secret": secret}),
    ))
}

/// `GET …/sites/{id}`.
#[utoipa::path(get, operation_id = "sites_read", path = "/v1/management/sites/{site_id}", tag = "sites", params(("site_id" = String, Path, description = "The site's internal id, site_…")), responses((status = 200, body = crate::web::api::schema::SiteAnswer), (status = 404, body = crate::web::api::schema::ErrorBody)))]
pub async fn read(
    state: web::Data<WebState>,
    caller: ApiCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let site = visible_site(&state, &caller, path.into_inner()).await?;
    let account = account_of(&state, &caller).await?;
    Ok(super::json(
        StatusCode::OK,
        &json!({"site": site_object(&site, &account)}),
    ))
}

/// `PATCH …/sites/{id}` with the changed fields, `name` and/or `disabled`: `{"site"}`.
#[utoipa::path(patch, operation_id = "sites_update", path = "/v1/management/sites/{site_id}", tag = "sites", params(("site_id" = String, Path, description = "The site's internal id, site_…")), request_body = crate::web::api::schema::PatchSite, responses((status = 200, body = crate::web::api::schema::SiteAnswer), (status = 400, body = crate::web::api::schema::ErrorBody), (status = 403, body = crate::web::api::schema::ErrorBody), (status = 404, body = crate::web::api::schema::ErrorBody), (status = 422, body = crate::web::api::schema::ErrorBody)))]
pub async fn update(
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
    match fields.string("name")? {
        Given::Value(name) => {
            check_name(&name)?;
            input.name = name;
        }
        Given::Null => return Err(ApiError::InvalidField("name must be a string".into())),
        Given::Absent => {}
    }
    match fields.bool("disabled")? {
        Given::Value(disabled) => input.disabled = disabled,
        Given::Null => {
            return Err(ApiError::InvalidField(
                "disabled must be true or false".into(),
            ));
        }
        Given::Absent => {}
    }
    let changed = change_site(&state, &caller, site.id.clone(), input).await?;
    let account = account_of(&state, &caller).await?;
    Ok(super::json(
        StatusCode::OK,
        &json!({"site": site_object(&changed, &account)}),
    ))
}

/// `DELETE …/sites/{id}`: 204; the key is `unknown-site` at once (SPEC §9).
#[utoipa::path(delete, operation_id = "sites_delete", path = "/v1/management/sites/{site_id}", tag = "sites", params(("site_id" = String, Path, description = "The site's internal id, site_…")), responses((status = 204, description = "Deleted"), (status = 403, body = crate::web::api::schema::ErrorBody), (status = 404, body = crate::web::api::schema::ErrorBody)))]
pub async fn delete(
    state: web::Data<WebState>,
    caller: ApiCaller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require_write()?;
    let site = visible_site(&state, &caller, path.into_inner()).await?;
    let account = caller.account_id;
    let deleted = blocking(&state, move |s| {
        s.sites
            .change(&s.store, |store| {
                sites::delete_site(store, account, &site.id)
            })
            .map_err(site_error)
    })
    .await?;
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}

/// `POST …/sites/{id}/rotate-secret` (body `{}` or none): `{"secret"}`; the old secret fails
/// siteverify at once.
#[utoipa::path(post, operation_id = "sites_rotate", path = "/v1/management/sites/{site_id}/rotate-secret", tag = "sites", params(("site_id" = String, Path, description = "The site's internal id, site_…")), responses((status = 200, body = crate::web::api::schema::SecretAnswer), (status = 403, body = crate::web::api::schema::ErrorBody), (status = 404, body = crate::web::api::schema::ErrorBody)))]
pub async fn rotate(
    state: web::Data<WebState>,
    caller: ApiCaller,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require_write()?;
    let site = visible_site(&state, &caller, path.into_inner()).await?;
    read_object(&req, payload).await?;
    let (account, now) = (caller.account_id, state.clock.now_ms());
    let secret = blocking(&state, move |s| {
        s.sites
            .change(&s.store, |store| {
                sites::rotate_secret(store, account, &site.id, RotationGrace::None, now)
            })
            .map_err(site_error)?
            .ok_or(ApiError::NotFound)
    })
    .await?;
    Ok(super::json(StatusCode::OK, &json!({ "secret": secret })))
}
