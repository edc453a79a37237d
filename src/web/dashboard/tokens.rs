//! `/tokens`: the account's personal access tokens for the management API (SPEC §12): create
//! one (shown once), list them with their last use, revoke one. The same `access_tokens`
//! functions as the CLI and the API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::access_tokens::{self, Scope, TokenInfo, TokenInput};
use crate::sites;
use crate::web::WebState;
use crate::web::dashboard::{Nav, PageError, blocking, render, see_other};
use crate::web::extract::{SignedIn, SignedInForm};

/// One listed token.
struct TokenRow {
    id: String,
    name: String,
    prefix: String,
    scope: &'static str,
    site: String,
    created: String,
    last_used: String,
    expires: String,
    expired: bool,
}

/// A site the create form offers to bind a token to.
struct SiteChoice {
    id: String,
    name: String,
}

#[derive(Template)]
#[template(path = "dashboard/tokens.html")]
struct TokensPage {
    nav: Nav,
    rows: Vec<TokenRow>,
    sites: Vec<SiteChoice>,
    /// The token just created, shown this once: (name, value).
    created: Option<(String, String)>,
    revoked: bool,
    error: Option<String>,
    api_base: String,
}

/// The create form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CreateForm {
    csrf: String,
    name: String,
    scope: String,
    site: String,
    expires_days: String,
}

/// `?revoked=1` after a revocation.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListQuery {
    revoked: Option<String>,
}

fn when(ms: Option<i64>) -> String {
    ms.map_or_else(|| "never".to_owned(), crate::time::utc_datetime)
}

/// The page with the account's tokens and sites, and what the last action left to say.
async fn page(
    state: &WebState,
    account: &SignedIn,
    created: Option<(String, String)>,
    revoked: bool,
    error: Option<String>,
) -> Result<TokensPage, PageError> {
    let (id, now) = (account.id, state.clock.now_ms());
    let (tokens, own_sites) = blocking(state, move |s| {
        let tokens = access_tokens::list_tokens(&s.store, id).map_err(|e| e.to_string())?;
        let own = sites::sites_of_account(&s.store, id).map_err(|e| e.to_string())?;
        Ok::<_, String>((tokens, own))
    })
    .await
    .ok_or_else(|| PageError::Internal(account.nav("tokens")))?;
    let name_of = |site_id: &str| {
        own_sites
            .iter()
            .find(|s| s.id == site_id)
            .map_or_else(|| site_id.to_owned(), |s| s.settings.name.clone())
    };
    let rows = tokens
        .iter()
        .map(|t: &TokenInfo| TokenRow {
            id: t.id.clone(),
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            scope: t.scope.as_str(),
            site: t
                .site_id
                .as_deref()
                .map_or_else(|| "all sites".to_owned(), name_of),
            created: crate::time::utc_datetime(t.created_at),
            last_used: when(t.last_used_at),
            expires: when(t.expires_at),
            expired: t.expired(now),
        })
        .collect();
    Ok(TokensPage {
        nav: account.nav("tokens"),
        rows,
        sites: own_sites
            .iter()
            .map(|s| SiteChoice {
                id: s.id.clone(),
                name: s.settings.name.clone(),
            })
            .collect(),
        created,
        revoked,
        error,
        api_base: format!("{}/v1/management", state.settings.public_url),
    })
}

/// `GET /tokens`.
pub async fn list(
    state: web::Data<WebState>,
    account: SignedIn,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let revoked = query.revoked.is_some();
    let page = page(&state, &account, None, revoked, None).await?;
    Ok(render(StatusCode::OK, &page))
}

/// `POST /tokens`: creates a token and shows it once.
pub async fn create(
    state: web::Data<WebState>,
    SignedInForm(account, form): SignedInForm<CreateForm>,
) -> Result<HttpResponse, PageError> {
    account.check_csrf(&form.csrf, "tokens")?;
    let refuse = |message: &str| message.to_owned();
    let scope = Scope::parse(&form.scope).ok_or_else(|| refuse("Choose read or write."));
    let expires_days = match form.expires_days.trim() {
        "" => Ok(None),
        raw => raw
            .parse::<u32>()
            .map(Some)
            .map_err(|_| refuse("Enter the expiry as a whole number of days, or leave it empty.")),
    };
    let site_id = Some(form.site.trim().to_owned()).filter(|s| !s.is_empty());
    let (id, now) = (account.id, state.clock.now_ms());
    let outcome = match (scope, expires_days) {
        (Ok(scope), Ok(expires_days)) => {
            let input = TokenInput {
                name: form.name.clone(),
                scope,
                site_id,
                expires_days,
                ..TokenInput::default()
            };
            blocking(&state, move |s| {
                if let Some(site) = &input.site_id
                    && sites::site_for_account(&s.store, id, site)
                        .map_err(|e| e.to_string())?
                        .is_none()
                {
                    return Ok(Err("Choose one of your sites.".to_owned()));
                }
                Ok::<_, String>(
                    match access_tokens::create_token(&s.store, id, &input, now) {
                        Ok(created) => Ok(created),
                        Err(access_tokens::TokenError::Store(e)) => return Err(e.to_string()),
                        Err(e) => Err(format!("{e}.")),
                    },
                )
            })
            .await
            .ok_or_else(|| PageError::Internal(account.nav("tokens")))?
        }
        (Err(message), _) | (_, Err(message)) => Err(message),
    };
    match outcome {
        Ok(created) => {
            tracing::info!(token_id = %created.info.id, "access token created");
            let shown = Some((created.info.name.clone(), created.value));
            let page = page(&state, &account, shown, false, None).await?;
            Ok(render(StatusCode::OK, &page))
        }
        Err(message) => {
            let page = page(&state, &account, None, false, Some(message)).await?;
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}

/// The revoke form: only its CSRF token.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RevokeForm {
    csrf: String,
}

/// `POST /tokens/{id}/revoke`: revoked at once; another account's or an unknown token is 404.
pub async fn revoke(
    state: web::Data<WebState>,
    path: web::Path<String>,
    SignedInForm(account, form): SignedInForm<RevokeForm>,
) -> Result<HttpResponse, PageError> {
    account.check_csrf(&form.csrf, "tokens")?;
    let (id, now, token_id) = (account.id, state.clock.now_ms(), path.into_inner());
    let revoked = blocking(&state, move |s| {
        access_tokens::revoke_token(&s.store, id, &token_id, now)
    })
    .await
    .ok_or_else(|| PageError::Internal(account.nav("tokens")))?;
    if revoked {
        Ok(see_other("/tokens?revoked=1"))
    } else {
        Err(PageError::NotFound(account.nav("tokens")))
    }
}
