//! The dashboard (SPEC §6): server-rendered pages for accounts, sites, Test delivery and
//! statistics, with the statistics chart drawn as SVG ([`chart`]). Works without JavaScript.
//! Every handler calls the same library functions as the CLI; every state-changing form carries a
//! CSRF token that is checked on POST. Handlers take the signed-in account and their typed forms
//! from `crate::web::extract`, and answer what they do not carry out with a [`PageError`] page.

pub mod auth;
pub mod chart;
pub mod sites;
pub mod stats;
pub mod tokens;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;

use crate::web::WebState;

/// What the layout's navigation bar needs.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    /// The signed-in account's email; `None` on public pages.
    pub email: Option<String>,
    /// The CSRF token for the page's forms.
    pub csrf: String,
    /// The highlighted section: `sites`, `stats` or `tokens`.
    pub section: &'static str,
}

/// A form with nothing but its CSRF token (Log out, Test delivery).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct CsrfForm {
    /// The session's CSRF token.
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "dashboard/error.html")]
struct ErrorPage {
    nav: Nav,
    title: String,
    message: String,
}

/// Registers the dashboard routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(auth::home))
        .route("/login", web::get().to(auth::login_page))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/signup", web::get().to(auth::signup_page))
        .route("/signup", web::post().to(auth::signup))
        .route("/setup", web::get().to(auth::setup_page))
        .route("/setup", web::post().to(auth::setup))
        .route("/dashboard", web::get().to(sites::list))
        .route("/sites/new", web::get().to(sites::new_form))
        .route("/sites", web::post().to(sites::create))
        .route("/sites/{id}", web::get().to(sites::show))
        .route("/sites/{id}/edit", web::get().to(sites::edit_form))
        .route("/sites/{id}/edit", web::post().to(sites::update))
        .route("/sites/{id}/test", web::post().to(sites::test))
        .route("/sites/{id}/try", web::get().to(sites::test_form))
        .route("/sites/{id}/rotate", web::get().to(sites::rotate_confirm))
        .route("/sites/{id}/rotate", web::post().to(sites::rotate))
        .route("/sites/{id}/delete", web::get().to(sites::delete_confirm))
        .route("/sites/{id}/delete", web::post().to(sites::delete))
        .route("/sites/{id}/stats", web::get().to(stats::site))
        .route("/stats", web::get().to(stats::account))
        .route("/tokens", web::get().to(tokens::list))
        .route("/tokens", web::post().to(tokens::create))
        .route("/tokens/{id}/revoke", web::post().to(tokens::revoke));
}

/// Renders a template as an HTML response with `status`.
pub fn render(status: StatusCode, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(html),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Internal error")
        }
    }
}

/// An error page in the dashboard's layout.
pub fn error_page(status: StatusCode, nav: Nav, title: &str, message: &str) -> HttpResponse {
    render(
        status,
        &ErrorPage {
            nav,
            title: title.to_owned(),
            message: message.to_owned(),
        },
    )
}

/// The 404 every route answers for unknown sites and other accounts' sites alike.
pub fn not_found(nav: Nav) -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        nav,
        "Not found",
        "There is no such page or site in your account.",
    )
}

/// The answer when a form's CSRF token is missing or wrong: nothing was changed.
pub fn csrf_failed(nav: Nav) -> HttpResponse {
    error_page(
        StatusCode::FORBIDDEN,
        nav,
        "Form expired",
        "This form was not accepted because its security token is missing or wrong, so nothing was changed. Go back, reload the page and try again.",
    )
}

/// The answer to a dashboard request that is not carried out, as a handler's error: each variant
/// is answered with the same page (or redirect) wherever it arises.
#[derive(Debug)]
pub enum PageError {
    /// No live session: a redirect to the login page.
    NotSignedIn,
    /// The form's CSRF token is missing or wrong: [`csrf_failed`].
    Csrf(Nav),
    /// No such site in the account (or another account's): [`not_found`].
    NotFound(Nav),
    /// The database or a task failed: [`internal`].
    Internal(Nav),
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PageError::NotSignedIn => "not signed in",
            PageError::Csrf(_) => "CSRF token missing or wrong",
            PageError::NotFound(_) => "no such site in the account",
            PageError::Internal(_) => "the operation failed",
        })
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::NotSignedIn => StatusCode::SEE_OTHER,
            PageError::Csrf(_) => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::NotSignedIn => see_other("/login"),
            PageError::Csrf(nav) => csrf_failed(nav.clone()),
            PageError::NotFound(nav) => not_found(nav.clone()),
            PageError::Internal(nav) => internal(nav.clone()),
        }
    }
}

/// A 303 redirect.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}

/// Runs blocking library code (database, argon2) on the blocking pool; a failure is logged and
/// becomes `None`.
pub async fn blocking<R, E, F>(state: &WebState, f: F) -> Option<R>
where
    F: FnOnce(&WebState) -> Result<R, E> + Send + 'static,
    R: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let state = state.clone();
    match tokio::task::spawn_blocking(move || f(&state)).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "dashboard operation failed");
            None
        }
        Err(e) => {
            tracing::error!(error = %e, "dashboard task failed");
            None
        }
    }
}

/// The generic failure page.
pub fn internal(nav: Nav) -> HttpResponse {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        nav,
        "Something went wrong",
        "The operation could not be completed. Please try again.",
    )
}

/// A message as a sentence for a page: first letter upper-case, a full stop at the end.
pub fn sentence(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => {
            let mut out: String = first.to_uppercase().chain(chars).collect();
            if !out.ends_with('.') {
                out.push('.');
            }
            out
        }
        None => String::new(),
    }
}
