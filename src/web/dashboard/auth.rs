//! Accounts in the dashboard: log in and out, sign-up (when open), the one-time setup link, the
//! session cookie, CSRF tokens and login throttling.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use super::{Nav, blocking, csrf_failed, internal, render, see_other, sentence};
use crate::accounts::{self, AccountError};
use crate::captcha::keys;
use crate::config::Signup;
use crate::store;
use crate::web::AppState;

/// The session cookie.
pub const SESSION_COOKIE: &str = "cf_session";
/// The pre-login cookie that anchors the login and setup forms' CSRF token.
pub const PRE_COOKIE: &str = "cf_pre";
/// How long a session lasts.
pub const SESSION_LIFETIME_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Failed logins allowed per account per window.
pub const MAX_FAILURES_PER_ACCOUNT: usize = 5;
/// Failed logins allowed per client IP per window.
pub const MAX_FAILURES_PER_IP: usize = 20;
/// The throttling window.
pub const THROTTLE_WINDOW_MS: i64 = 15 * 60 * 1000;

/// The signed-in account of a request.
#[derive(Debug, Clone)]
pub struct CurrentAccount {
    /// Account id.
    pub id: i64,
    /// Email.
    pub email: String,
    /// The CSRF token bound to this session.
    pub csrf: String,
    session_hash: [u8; 32],
}

impl CurrentAccount {
    /// The navigation bar for this account, with `section` highlighted.
    pub fn nav(&self, section: &'static str) -> Nav {
        Nav {
            email: Some(self.email.clone()),
            csrf: self.csrf.clone(),
            section,
        }
    }

    /// True when the form's `csrf` field is this session's token (constant-time).
    pub fn csrf_ok(&self, form: &HashMap<String, String>) -> bool {
        form.get("csrf")
            .is_some_and(|given| bool::from(given.as_bytes().ct_eq(self.csrf.as_bytes())))
    }
}

fn derive_csrf(state: &AppState, purpose: &[u8], anchor: &str) -> String {
    let tag = keys::sign(
        state.issuer.key(),
        &[b"dashboard-csrf\0", purpose, b"\0", anchor.as_bytes()],
    );
    crate::ids::to_hex(&tag[..16])
}

fn session_hash(cookie_value: &str) -> [u8; 32] {
    Sha256::digest(cookie_value.as_bytes()).into()
}

fn secure_cookies(state: &AppState) -> bool {
    state.settings.public_url.starts_with("https://")
}

fn cookie<'a>(state: &AppState, name: &'a str, value: String, max_age_ms: i64) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(if name == PRE_COOKIE {
            SameSite::Strict
        } else {
            SameSite::Lax
        })
        .secure(secure_cookies(state))
        .max_age(CookieDuration::milliseconds(max_age_ms))
        .finish()
}

/// The signed-in account, if the request carries a live session.
pub async fn current(state: &AppState, req: &HttpRequest) -> Option<CurrentAccount> {
    let value = req.cookie(SESSION_COOKIE)?.value().to_owned();
    if value.len() != 64 {
        return None;
    }
    let hash = session_hash(&value);
    let now = state.clock.now_ms();
    let (id, email) = blocking(state, move |s| {
        s.store.read(|c| store::sessions::account_of(c, &hash, now))
    })
    .await??;
    Some(CurrentAccount {
        id,
        email,
        csrf: derive_csrf(state, b"session", &value),
        session_hash: hash,
    })
}

/// Per-account and per-IP failed-login counters, in memory.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, Vec<i64>>>,
}

impl LoginThrottle {
    fn keys(email: &str, ip: Option<IpAddr>) -> (String, Option<String>) {
        (
            format!("account:{}", email.trim().to_lowercase()),
            ip.map(|ip| format!("ip:{ip}")),
        )
    }

    /// Seconds to wait when either counter is full; `None` when a login may be attempted.
    pub fn blocked_for(&self, email: &str, ip: Option<IpAddr>, now_ms: i64) -> Option<i64> {
        let (account, ip) = Self::keys(email, ip);
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for (key, limit) in [
            (Some(account), MAX_FAILURES_PER_ACCOUNT),
            (ip, MAX_FAILURES_PER_IP),
        ] {
            let Some(key) = key else { continue };
            if let Some(times) = map.get_mut(&key) {
                times.retain(|t| now_ms - t < THROTTLE_WINDOW_MS);
                if times.len() >= limit {
                    let until = times[times.len() - limit] + THROTTLE_WINDOW_MS;
                    wait = Some(wait.unwrap_or(0).max((until - now_ms + 999) / 1000));
                }
            }
        }
        wait
    }

    /// Records a failed login.
    pub fn failed(&self, email: &str, ip: Option<IpAddr>, now_ms: i64) {
        let (account, ip) = Self::keys(email, ip);
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Bound memory: drop stale entries when the map grows.
        if map.len() > 10_000 {
            map.retain(|_, times| times.iter().any(|t| now_ms - t < THROTTLE_WINDOW_MS));
        }
        map.entry(account).or_default().push(now_ms);
        if let Some(ip) = ip {
            map.entry(ip).or_default().push(now_ms);
        }
    }

    /// Clears an account's failures after a successful login.
    pub fn succeeded(&self, email: &str) {
        let (account, _) = Self::keys(email, None);
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&account);
    }
}

#[derive(Template)]
#[template(path = "dashboard/login.html")]
struct LoginPage {
    nav: Nav,
    heading: &'static str,
    action: &'static str,
    button: &'static str,
    creating: bool,
    email: String,
    error: Option<String>,
    notice: Option<String>,
    signup_link: bool,
    setup_token: Option<String>,
}

/// The pre-login CSRF anchor: the request's `cf_pre` cookie or a fresh one to set.
fn pre_anchor(req: &HttpRequest) -> (String, bool) {
    match req.cookie(PRE_COOKIE) {
        Some(c) if c.value().len() == 32 => (c.value().to_owned(), false),
        _ => (crate::ids::random_id::<16>(""), true),
    }
}

fn pre_csrf_ok(state: &AppState, req: &HttpRequest, form: &HashMap<String, String>) -> bool {
    let Some(anchor) = req.cookie(PRE_COOKIE) else {
        return false;
    };
    let expected = derive_csrf(state, b"pre", anchor.value());
    form.get("csrf")
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
}

/// Renders a login-style page, setting the pre-login cookie when needed.
fn public_form(
    state: &AppState,
    req: &HttpRequest,
    status: StatusCode,
    mut page: LoginPage,
) -> HttpResponse {
    let (anchor, fresh) = pre_anchor(req);
    page.nav.csrf = derive_csrf(state, b"pre", &anchor);
    let mut response = render(status, &page);
    if fresh {
        let _ = response.add_cookie(&cookie(state, PRE_COOKIE, anchor, 60 * 60 * 1000));
    }
    response
}

fn login_page_with(state: &AppState, error: Option<String>, email: String) -> LoginPage {
    let notice = state.setup_token.lock().ok().and_then(|t| {
        t.as_ref().map(|_| {
            "No account exists yet: open the one-time setup link printed in the server's log."
                .to_owned()
        })
    });
    LoginPage {
        nav: Nav::default(),
        heading: "Log in",
        action: "/login",
        button: "Log in",
        creating: false,
        email,
        error,
        notice,
        signup_link: state.settings.signup == Signup::Open,
        setup_token: None,
    }
}

/// `GET /`.
pub async fn home(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    match current(&state, &req).await {
        Some(_) => see_other("/dashboard"),
        None => see_other("/login"),
    }
}

/// `GET /login`.
pub async fn login_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if current(&state, &req).await.is_some() {
        return see_other("/dashboard");
    }
    let page = login_page_with(&state, None, String::new());
    public_form(&state, &req, StatusCode::OK, page)
}

/// Starts a fresh session for `account_id` (a new id at every login, so a planted cookie is
/// useless) and ends the one the request carried.
async fn start_session(state: &AppState, req: &HttpRequest, account_id: i64) -> HttpResponse {
    let value = crate::ids::random_id::<32>("");
    let hash = session_hash(&value);
    let old = req.cookie(SESSION_COOKIE).map(|c| session_hash(c.value()));
    let now = state.clock.now_ms();
    let created = blocking(state, move |s| {
        s.store.write(|c| -> Result<(), store::StoreError> {
            if let Some(old) = old {
                store::sessions::delete(c, &old)?;
            }
            store::sessions::purge_expired(c, now)?;
            store::sessions::insert(c, &hash, account_id, now, now + SESSION_LIFETIME_MS)
        })
    })
    .await;
    if created.is_none() {
        return internal(Nav::default());
    }
    let mut response = see_other("/dashboard");
    let _ = response.add_cookie(&cookie(state, SESSION_COOKIE, value, SESSION_LIFETIME_MS));
    response
}

/// `POST /login`.
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if !pre_csrf_ok(&state, &req, &form) {
        return csrf_failed(Nav::default());
    }
    let email = form
        .get("email")
        .map(|e| e.trim().to_owned())
        .unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let ip = crate::web::client_addr::of_request(&req, &state.settings.trusted_proxies);
    let now = state.clock.now_ms();
    if let Some(wait) = state.login_throttle.blocked_for(&email, ip, now) {
        let minutes = (wait + 59) / 60;
        let page = login_page_with(
            &state,
            Some(format!(
                "Too many failed attempts. Try again in {minutes} minute(s)."
            )),
            email,
        );
        return public_form(&state, &req, StatusCode::TOO_MANY_REQUESTS, page);
    }
    let lookup_email = email.clone();
    let verified = blocking(&state, move |s| -> Result<Option<i64>, AccountError> {
        let found = s
            .store
            .read(|c| store::accounts::password_hash(c, &lookup_email))?;
        Ok(match found {
            Some((id, phc)) => accounts::verify_password(&password, &phc).then_some(id),
            None => {
                // Spend the same time as a real check, so timing does not reveal accounts.
                accounts::burn_verification(&password);
                None
            }
        })
    })
    .await;
    match verified {
        Some(Some(account_id)) => {
            state.login_throttle.succeeded(&email);
            tracing::info!(account_id, "login");
            start_session(&state, &req, account_id).await
        }
        Some(None) => {
            state.login_throttle.failed(&email, ip, now);
            tracing::info!("failed login");
            let page = login_page_with(&state, Some("Wrong email or password.".into()), email);
            public_form(&state, &req, StatusCode::UNAUTHORIZED, page)
        }
        None => internal(Nav::default()),
    }
}

/// `POST /logout`: ends the session on the server and clears the cookie.
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let Some(account) = current(&state, &req).await else {
        return see_other("/login");
    };
    if !account.csrf_ok(&form) {
        return csrf_failed(account.nav(""));
    }
    let hash = account.session_hash;
    if blocking(&state, move |s| {
        s.store.write(|c| store::sessions::delete(c, &hash))
    })
    .await
    .is_none()
    {
        return internal(account.nav(""));
    }
    let mut response = see_other("/login");
    let _ = response.add_cookie(&cookie(&state, SESSION_COOKIE, String::new(), 0));
    response
}

fn signup_page_with(error: Option<String>, email: String) -> LoginPage {
    LoginPage {
        nav: Nav::default(),
        heading: "Create an account",
        action: "/signup",
        button: "Create account",
        creating: true,
        email,
        error,
        notice: None,
        signup_link: false,
        setup_token: None,
    }
}

/// `GET /signup` (only when sign-up is open).
pub async fn signup_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if state.settings.signup != Signup::Open {
        return super::not_found(Nav::default());
    }
    public_form(
        &state,
        &req,
        StatusCode::OK,
        signup_page_with(None, String::new()),
    )
}

/// Creates an account from a form's email and password; the error is a sentence for the form.
async fn create_from_form(
    state: &AppState,
    form: &HashMap<String, String>,
) -> Result<i64, Option<String>> {
    let email = form
        .get("email")
        .map(|e| e.trim().to_owned())
        .unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let now = state.clock.now_ms();
    let created = blocking(state, move |s| {
        Ok::<_, std::convert::Infallible>(accounts::create_account(
            &s.store, &email, &password, now,
        ))
    })
    .await;
    match created {
        Some(Ok(account_id)) => {
            tracing::info!(account_id, "account created from the dashboard");
            Ok(account_id)
        }
        Some(Err(AccountError::Store(_))) | None => Err(None),
        Some(Err(e)) => Err(Some(sentence(&e.to_string()))),
    }
}

/// `POST /signup`.
pub async fn signup(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if state.settings.signup != Signup::Open {
        return super::not_found(Nav::default());
    }
    if !pre_csrf_ok(&state, &req, &form) {
        return csrf_failed(Nav::default());
    }
    match create_from_form(&state, &form).await {
        Ok(account_id) => start_session(&state, &req, account_id).await,
        Err(Some(error)) => {
            let email = form.get("email").cloned().unwrap_or_default();
            let page = signup_page_with(Some(error), email);
            public_form(&state, &req, StatusCode::UNPROCESSABLE_ENTITY, page)
        }
        Err(None) => internal(Nav::default()),
    }
}

fn setup_token_matches(state: &AppState, given: Option<&String>) -> bool {
    let guard = state.setup_token.lock().unwrap_or_else(|p| p.into_inner());
    match (guard.as_ref(), given) {
        (Some(expected), Some(given)) => bool::from(expected.as_bytes().ct_eq(given.as_bytes())),
        _ => false,
    }
}

fn setup_page_with(error: Option<String>, email: String) -> LoginPage {
    LoginPage {
        nav: Nav::default(),
        heading: "Create the first account",
        action: "/setup",
        button: "Create account",
        creating: true,
        email,
        error,
        notice: None,
        signup_link: false,
        setup_token: None,
    }
}

/// `GET /setup?token=…`: the one-time setup link, valid while no account exists.
pub async fn setup_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if !setup_token_matches(&state, query.get("token")) {
        return super::not_found(Nav::default());
    }
    let mut page = setup_page_with(None, String::new());
    page.setup_token = query.get("token").cloned();
    public_form(&state, &req, StatusCode::OK, page)
}

/// `POST /setup`: creates the first account and spends the setup token.
pub async fn setup(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    if !setup_token_matches(&state, form.get("token")) {
        return super::not_found(Nav::default());
    }
    if !pre_csrf_ok(&state, &req, &form) {
        return csrf_failed(Nav::default());
    }
    // Spend the token before creating the account, so two racing posts cannot both succeed;
    // give it back if the form had a mistake.
    let token = form.get("token").cloned();
    {
        let mut guard = state.setup_token.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() || *guard != token {
            return super::not_found(Nav::default());
        }
        *guard = None;
    }
    match create_from_form(&state, &form).await {
        Ok(account_id) => start_session(&state, &req, account_id).await,
        Err(error) => {
            *state.setup_token.lock().unwrap_or_else(|p| p.into_inner()) = token.clone();
            let Some(error) = error else {
                return internal(Nav::default());
            };
            let mut page =
                setup_page_with(Some(error), form.get("email").cloned().unwrap_or_default());
            page.setup_token = token;
            public_form(&state, &req, StatusCode::UNPROCESSABLE_ENTITY, page)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_counts_per_account_and_per_ip_within_the_window() {
        let throttle = LoginThrottle::default();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        for _ in 0..MAX_FAILURES_PER_ACCOUNT {
            assert!(throttle.blocked_for("A@x.test", Some(ip), 0).is_none());
            throttle.failed("a@x.test", Some(ip), 0);
        }
        assert!(throttle.blocked_for("a@x.test", None, 1).is_some());
        assert!(throttle.blocked_for("b@x.test", None, 1).is_none());
        assert!(
            throttle
                .blocked_for("a@x.test", None, THROTTLE_WINDOW_MS)
                .is_none()
        );
        for i in 0..MAX_FAILURES_PER_IP {
            throttle.failed(&format!("u{i}@x.test"), Some(ip), 10);
        }
        assert!(throttle.blocked_for("new@x.test", Some(ip), 11).is_some());
    }
}
