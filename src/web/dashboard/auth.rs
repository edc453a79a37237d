//! Accounts in the dashboard: log in and out, sign-up (when open), the one-time setup link, the
//! session cookie, CSRF tokens and login throttling.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use super::{
    CsrfForm, Nav, PageError, blocking, csrf_failed, internal, render, see_other, sentence,
};
use crate::accounts::{self, AccountError};
use crate::config::Signup;
use crate::web::extract::{DashboardForm, SignedIn, SignedInForm};
use crate::web::{WebState, client_addr};

/// The session cookie.
pub const SESSION_COOKIE: &str = "cf_session";
/// The pre-login cookie that anchors the login and setup forms' CSRF token.
pub const PRE_COOKIE: &str = "cf_pre";
/// The session cookie's name behind https: `__Host-` cookies must be Secure, for `/` and for this
/// host alone, so a sibling subdomain cannot plant one (login CSRF, session fixation).
pub const HOST_SESSION_COOKIE: &str = "__Host-cf_session";
/// The pre-login cookie's name behind https.
pub const HOST_PRE_COOKIE: &str = "__Host-cf_pre";
/// The known-device cookie: set at each login, it lets its browser past the per-account cap of the
/// login throttle.
pub const DEVICE_COOKIE: &str = "cf_device";
/// The known-device cookie's name behind https.
pub const HOST_DEVICE_COOKIE: &str = "__Host-cf_device";
/// How long a session lasts.
pub const SESSION_LIFETIME_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Failed logins allowed per account and client address per window.
pub const MAX_FAILURES_PER_ADDRESS: usize = 5;
/// Failed logins per account per window (from any address) after which only addresses without
/// failures of their own may try.
pub const MAX_FAILURES_PER_ACCOUNT: usize = 5;
/// Failed logins per account per window after which only such addresses from a browser that has
/// logged in to the account before may try.
pub const ACCOUNT_FAILURE_CAP: usize = 25;
/// How long a browser stays known to an account after a login.
pub const KNOWN_DEVICE_LIFETIME_MS: i64 = 365 * 24 * 60 * 60 * 1000;
/// Failed logins allowed per client IP per window.
pub const MAX_FAILURES_PER_IP: usize = 20;
/// The throttling window.
pub const THROTTLE_WINDOW_MS: i64 = 15 * 60 * 1000;

/// The login and sign-up forms.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct CredentialsForm {
    /// The pre-login CSRF token.
    pub csrf: String,
    /// The email, as typed.
    pub email: String,
    /// The password.
    pub password: String,
}

/// The setup form: the login form's fields and the setup link's token.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct SetupForm {
    /// The pre-login CSRF token.
    pub csrf: String,
    /// The one-time setup token.
    pub token: Option<String>,
    /// The email, as typed.
    pub email: String,
    /// The password.
    pub password: String,
}

/// A CSRF token for `purpose` (`session` or `pre`), bound to `anchor` (the cookie it belongs to).
pub(crate) fn derive_csrf(state: &WebState, purpose: &[u8], anchor: &str) -> String {
    let tag = state.keys.csrf().sign(&[purpose, b"\0", anchor.as_bytes()]);
    crate::ids::to_hex(&tag[..16])
}

/// The hash of a session id (the session cookie's value), under which the session is stored.
pub(crate) fn session_hash(cookie_value: &str) -> [u8; 32] {
    Sha256::digest(cookie_value.as_bytes()).into()
}

fn secure_cookies(state: &WebState) -> bool {
    state.settings.public_url.starts_with("https://")
}

/// A cookie's name for this deployment: its `__Host-` name behind https, its plain one otherwise.
fn cookie_name(state: &WebState, plain: &'static str, host: &'static str) -> &'static str {
    if secure_cookies(state) { host } else { plain }
}

/// The session cookie's name for this deployment.
pub(crate) fn session_cookie(state: &WebState) -> &'static str {
    cookie_name(state, SESSION_COOKIE, HOST_SESSION_COOKIE)
}

/// The pre-login cookie's name for this deployment.
fn pre_cookie(state: &WebState) -> &'static str {
    cookie_name(state, PRE_COOKIE, HOST_PRE_COOKIE)
}

/// The known-device cookie's name for this deployment.
fn device_cookie(state: &WebState) -> &'static str {
    cookie_name(state, DEVICE_COOKIE, HOST_DEVICE_COOKIE)
}

/// A cookie for `/` with no `Domain` (as `__Host-` requires), HttpOnly, Secure behind https.
fn cookie(state: &WebState, name: &'static str, value: String, max_age_ms: i64) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(if name == pre_cookie(state) {
            SameSite::Strict
        } else {
            SameSite::Lax
        })
        .secure(secure_cookies(state))
        .max_age(CookieDuration::milliseconds(max_age_ms))
        .finish()
}

/// Failed logins, in memory, under three keys (README, "Security"):
///
/// - per (account, client address): at most [`MAX_FAILURES_PER_ADDRESS`] in the window, after which
///   that address may not try that account, correct password included;
/// - per client address: at most [`MAX_FAILURES_PER_IP`] over all accounts;
/// - per account, against guessing spread over many addresses: once it has
///   [`MAX_FAILURES_PER_ACCOUNT`] failures in the window, only an address with no failure of its
///   own in the window may try (one guess per fresh address), and once it has
///   [`ACCOUNT_FAILURE_CAP`], only such an address from a browser that has logged in to the account
///   before (its known-device cookie). The owner is never locked out by someone else's guesses
///   from their own browser.
///
/// Client addresses are counted by [`client_addr::bucket`] (IPv6 by /64). An attempt is counted as
/// a failure *before* the password is hashed ([`LoginThrottle::reserve`]) and taken back only when
/// it succeeds, so parallel guesses consume one attempt each.
#[derive(Default)]
pub struct LoginThrottle {
    state: Mutex<ThrottleState>,
}

#[derive(Default)]
struct ThrottleState {
    /// Failure times per key, oldest first, none older than the window after a look.
    failures: HashMap<String, Vec<i64>>,
    /// The map is swept of stale keys when it grows past this size (then set to twice the live
    /// size), so sweeping costs O(1) per attempt on average.
    sweep_at: usize,
}

/// Keys with no failure in the window are swept once the map holds at least this many.
const SWEEP_FLOOR: usize = 10_000;

/// A reserved login attempt: counted as a failure until [`LoginThrottle::succeeded`] takes it back.
#[derive(Debug)]
pub struct LoginAttempt {
    keys: Vec<String>,
    at_ms: i64,
}

/// The three keys of an attempt. An email no account can have (longer than an address may be)
/// shares one key, so keys stay small.
fn throttle_keys(email: &str, ip: Option<IpAddr>) -> (String, String, Option<String>) {
    let email = email.trim();
    let account = if email.len() <= 254 {
        email.to_lowercase()
    } else {
        "-".to_owned()
    };
    match ip {
        Some(ip) => (
            format!("account:{account}"),
            format!("pair:{ip}|{account}"),
            Some(format!("ip:{ip}")),
        ),
        // No address (not over TCP): the strict bound falls on the account itself.
        None => (
            format!("account:{account}"),
            format!("pair:-|{account}"),
            None,
        ),
    }
}

/// A key's failures in the window, newest first, at most [`ACCOUNT_FAILURE_CAP`] of them (the
/// largest limit, so every comparison with a limit stays exact).
struct Window {
    newest_first: Vec<i64>,
}

impl Window {
    fn of(map: &mut HashMap<String, Vec<i64>>, key: &str, now_ms: i64) -> Window {
        let newest_first = map.get_mut(key).map_or_else(Vec::new, |times| {
            let stale = times.partition_point(|&t| now_ms - t >= THROTTLE_WINDOW_MS);
            times.drain(..stale);
            times
                .iter()
                .rev()
                .take(ACCOUNT_FAILURE_CAP)
                .copied()
                .collect()
        });
        Window { newest_first }
    }

    /// Seconds until fewer than `limit` failures remain, when `limit` or more do: the limit-th
    /// newest is the last of those that must leave.
    fn full(&self, limit: usize, now_ms: i64) -> Option<i64> {
        let until = *self.newest_first.get(limit.checked_sub(1)?)? + THROTTLE_WINDOW_MS;
        Some((until - now_ms + 999) / 1000)
    }

    /// Seconds until no failure remains, when any does.
    fn clean_in(&self, now_ms: i64) -> Option<i64> {
        let last = *self.newest_first.first()?;
        Some((last + THROTTLE_WINDOW_MS - now_ms + 999) / 1000)
    }
}

impl LoginThrottle {
    /// Reserves one login attempt for `email` from `ip`; `Err(seconds)` to wait when a bound is
    /// reached. `known_device` is true when the browser carries this account's known-device
    /// cookie. The reservation counts as a failure from now on.
    pub fn reserve(
        &self,
        email: &str,
        ip: Option<IpAddr>,
        known_device: bool,
        now_ms: i64,
    ) -> Result<LoginAttempt, i64> {
        let (account, pair, ip) = throttle_keys(email, ip.map(client_addr::bucket));
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.failures.len() >= state.sweep_at.max(SWEEP_FLOOR) {
            state.failures.retain(|_, times| {
                times
                    .last()
                    .is_some_and(|t| now_ms - t < THROTTLE_WINDOW_MS)
            });
            state.sweep_at = state.failures.len() * 2;
        }
        let map = &mut state.failures;
        let ip_window = ip.as_deref().map(|key| Window::of(map, key, now_ms));
        let pair_window = Window::of(map, &pair, now_ms);
        let account_window = Window::of(map, &account, now_ms);
        let strict = [
            ip_window
                .as_ref()
                .and_then(|w| w.full(MAX_FAILURES_PER_IP, now_ms)),
            pair_window.full(MAX_FAILURES_PER_ADDRESS, now_ms),
        ];
        let mut wait = strict.into_iter().flatten().max();
        if wait.is_none()
            && let Some(account_wait) = account_window.full(MAX_FAILURES_PER_ACCOUNT, now_ms)
        {
            let capped = account_window.full(ACCOUNT_FAILURE_CAP, now_ms);
            // Without an address, the pair key (the account alone) stands for it.
            let own = ip_window.as_ref().unwrap_or(&pair_window);
            if let Some(clean_in) = own.clean_in(now_ms) {
                // An address with failures of its own waits until it is clean again.
                wait = Some(account_wait.min(clean_in));
            } else if let Some(cap_wait) = capped.filter(|_| !known_device) {
                wait = Some(cap_wait);
            }
        }
        if let Some(wait) = wait {
            return Err(wait.max(1));
        }
        let keys: Vec<String> = [Some(account), Some(pair), ip]
            .into_iter()
            .flatten()
            .collect();
        for key in &keys {
            let times = map.entry(key.clone()).or_default();
            // Kept oldest first, even when attempts of one instant arrive out of order.
            let at = times.partition_point(|&t| t <= now_ms);
            times.insert(at, now_ms);
        }
        Ok(LoginAttempt {
            keys,
            at_ms: now_ms,
        })
    }

    /// Takes back a reserved attempt whose password was right, and forgives that address its
    /// earlier failures for the account (failures counted against the account as a whole and
    /// against the address stay until they leave the window).
    pub fn succeeded(&self, attempt: LoginAttempt) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for key in &attempt.keys {
            if key.starts_with("pair:") {
                state.failures.remove(key);
            } else if let Some(times) = state.failures.get_mut(key)
                && let Some(at) = times.iter().position(|&t| t == attempt.at_ms)
            {
                times.remove(at);
            }
        }
    }
}

/// The known-device cookie's value for an account: a MAC of its email under the server key, so
/// only this server can mint it and it names one account.
fn device_mark(state: &WebState, email: &str) -> String {
    let tag = state
        .keys
        .device()
        .sign(&[email.trim().to_lowercase().as_bytes()]);
    crate::ids::to_hex(&tag[..16])
}

/// True when the request carries the known-device cookie of the account with this email.
fn is_known_device(state: &WebState, req: &HttpRequest, email: &str) -> bool {
    req.cookie(device_cookie(state)).is_some_and(|c| {
        bool::from(
            c.value()
                .as_bytes()
                .ct_eq(device_mark(state, email).as_bytes()),
        )
    })
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
fn pre_anchor(state: &WebState, req: &HttpRequest) -> (String, bool) {
    match req.cookie(pre_cookie(state)) {
        Some(c) if c.value().len() == 32 => (c.value().to_owned(), false),
        _ => (crate::ids::random_id::<16>(""), true),
    }
}

/// True when `given` (a form's `csrf` field) is the token of the request's pre-login cookie.
fn pre_csrf_ok(state: &WebState, req: &HttpRequest, given: &str) -> bool {
    let Some(anchor) = req.cookie(pre_cookie(state)) else {
        return false;
    };
    let expected = derive_csrf(state, b"pre", anchor.value());
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// Renders a login-style page, setting the pre-login cookie when needed.
fn public_form(
    state: &WebState,
    req: &HttpRequest,
    status: StatusCode,
    mut page: LoginPage,
) -> HttpResponse {
    let (anchor, fresh) = pre_anchor(state, req);
    page.nav.csrf = derive_csrf(state, b"pre", &anchor);
    let mut response = render(status, &page);
    if fresh {
        let _ = response.add_cookie(&cookie(state, pre_cookie(state), anchor, 60 * 60 * 1000));
    }
    response
}

/// The setup token while it is still good: it is dropped for good as soon as any account exists,
/// whichever route or process made it (SPEC §6).
async fn live_setup_token(state: &WebState) -> Option<String> {
    let token = state
        .setup_token
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()?;
    // A failed read refuses the link this time without spending it.
    let count = blocking(state, |s| accounts::count(&s.store)).await?;
    if count > 0 {
        *state.setup_token.lock().unwrap_or_else(|p| p.into_inner()) = None;
        return None;
    }
    Some(token)
}

async fn login_page_with(state: &WebState, error: Option<String>, email: String) -> LoginPage {
    let notice = live_setup_token(state).await.map(|_| {
        "No account exists yet: open the one-time setup link printed in the server's log."
            .to_owned()
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
pub async fn home(account: Option<SignedIn>) -> HttpResponse {
    match account {
        Some(_) => see_other("/dashboard"),
        None => see_other("/login"),
    }
}

/// `GET /login`.
pub async fn login_page(
    state: web::Data<WebState>,
    req: HttpRequest,
    account: Option<SignedIn>,
) -> HttpResponse {
    if account.is_some() {
        return see_other("/dashboard");
    }
    let page = login_page_with(&state, None, String::new()).await;
    public_form(&state, &req, StatusCode::OK, page)
}

/// Starts a fresh session for `account_id` (a new id at every login, so a planted cookie is
/// useless) and ends the one the request carried.
async fn start_session(state: &WebState, req: &HttpRequest, account_id: i64) -> HttpResponse {
    let value = crate::ids::random_id::<32>("");
    let hash = session_hash(&value);
    let old = req
        .cookie(session_cookie(state))
        .map(|c| session_hash(c.value()));
    let now = state.clock.now_ms();
    let created = blocking(state, move |s| {
        let expires = now + SESSION_LIFETIME_MS;
        accounts::create_session(&s.store, &hash, account_id, old.as_ref(), now, expires)
    })
    .await;
    if created.is_none() {
        return internal(Nav::default());
    }
    let mut response = see_other("/dashboard");
    let _ = response.add_cookie(&cookie(
        state,
        session_cookie(state),
        value,
        SESSION_LIFETIME_MS,
    ));
    response
}

/// `POST /login`.
pub async fn login(
    state: web::Data<WebState>,
    req: HttpRequest,
    DashboardForm(form): DashboardForm<CredentialsForm>,
) -> HttpResponse {
    if !pre_csrf_ok(&state, &req, &form.csrf) {
        return csrf_failed(Nav::default());
    }
    let email = form.email.trim().to_owned();
    let password = form.password;
    let ip = crate::web::client_addr::of_request(&req, &state.settings.trusted_proxies);
    let now = state.clock.now_ms();
    let known_device = is_known_device(&state, &req, &email);
    let attempt = match state.login_throttle.reserve(&email, ip, known_device, now) {
        Ok(attempt) => attempt,
        Err(wait) => {
            state.metrics.login("throttled");
            let minutes = (wait + 59) / 60;
            let page = login_page_with(
                &state,
                Some(format!(
                    "Too many failed attempts. Try again in {minutes} minute(s)."
                )),
                email,
            )
            .await;
            let mut response = public_form(&state, &req, StatusCode::TOO_MANY_REQUESTS, page);
            if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
    };
    let lookup_email = email.clone();
    let verified = blocking(&state, move |s| {
        accounts::check_login(&s.store, &lookup_email, &password)
    })
    .await;
    match verified {
        Some(Some(account_id)) => {
            state.metrics.login("success");
            state.login_throttle.succeeded(attempt);
            tracing::info!(account_id, "login");
            let mut response = start_session(&state, &req, account_id).await;
            if response.status() == StatusCode::SEE_OTHER {
                let mark = device_mark(&state, &email);
                let device = cookie(
                    &state,
                    device_cookie(&state),
                    mark,
                    KNOWN_DEVICE_LIFETIME_MS,
                );
                let _ = response.add_cookie(&device);
            }
            response
        }
        Some(None) => {
            state.metrics.login("failure");
            tracing::info!("failed login");
            let page =
                login_page_with(&state, Some("Wrong email or password.".into()), email).await;
            public_form(&state, &req, StatusCode::UNAUTHORIZED, page)
        }
        // The task failed: the reservation stays a failure (fail closed).
        None => internal(Nav::default()),
    }
}

/// `POST /logout`: ends the session on the server and clears the cookie.
pub async fn logout(
    state: web::Data<WebState>,
    SignedInForm(account, form): SignedInForm<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    account.check_csrf(&form.csrf, "")?;
    let hash = *account.session_hash();
    if blocking(&state, move |s| accounts::end_session(&s.store, &hash))
        .await
        .is_none()
    {
        return Err(PageError::Internal(account.nav("")));
    }
    let mut response = see_other("/login");
    let _ = response.add_cookie(&cookie(&state, session_cookie(&state), String::new(), 0));
    Ok(response)
}

fn signup_page_with(error: Option<String>, email: String) -> LoginPage {
    creating_page("Create an account", "/signup", error, email)
}

/// The page of a form that creates an account (signup, setup): `heading`, posting to `action`.
fn creating_page(
    heading: &'static str,
    action: &'static str,
    error: Option<String>,
    email: String,
) -> LoginPage {
    LoginPage {
        nav: Nav::default(),
        heading,
        action,
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
pub async fn signup_page(state: web::Data<WebState>, req: HttpRequest) -> HttpResponse {
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

/// Why an account form did not create an account.
enum CreateError {
    /// The form had a mistake: this sentence says which.
    Form(String),
    /// The setup form came after the first account was made.
    NotFirst,
    /// The database or a task failed.
    Internal,
}

/// Creates an account from a form's email and password (only the first account when `first`).
async fn create_from_form(
    state: &WebState,
    email: &str,
    password: &str,
    first: bool,
) -> Result<i64, CreateError> {
    let (email, password) = (email.trim().to_owned(), password.to_owned());
    let now = state.clock.now_ms();
    let created = blocking(state, move |s| {
        Ok::<_, std::convert::Infallible>(if first {
            accounts::create_first_account(&s.store, &email, &password, now)
        } else {
            accounts::create_account(&s.store, &email, &password, now)
        })
    })
    .await;
    match created {
        Some(Ok(account_id)) => {
            tracing::info!(account_id, "account created from the dashboard");
            Ok(account_id)
        }
        Some(Err(AccountError::NotFirst)) => Err(CreateError::NotFirst),
        Some(Err(AccountError::Store(_))) | None => Err(CreateError::Internal),
        Some(Err(e)) => Err(CreateError::Form(sentence(&e.to_string()))),
    }
}

/// `POST /signup`.
pub async fn signup(
    state: web::Data<WebState>,
    req: HttpRequest,
    DashboardForm(form): DashboardForm<CredentialsForm>,
) -> HttpResponse {
    if state.settings.signup != Signup::Open {
        return super::not_found(Nav::default());
    }
    if !pre_csrf_ok(&state, &req, &form.csrf) {
        return csrf_failed(Nav::default());
    }
    match create_from_form(&state, &form.email, &form.password, false).await {
        Ok(account_id) => start_session(&state, &req, account_id).await,
        Err(CreateError::Form(error)) => {
            let page = signup_page_with(Some(error), form.email);
            public_form(&state, &req, StatusCode::UNPROCESSABLE_ENTITY, page)
        }
        Err(CreateError::NotFirst | CreateError::Internal) => internal(Nav::default()),
    }
}

async fn setup_token_matches(state: &WebState, given: Option<&str>) -> bool {
    match (live_setup_token(state).await, given) {
        (Some(expected), Some(given)) => bool::from(expected.as_bytes().ct_eq(given.as_bytes())),
        _ => false,
    }
}

fn setup_page_with(error: Option<String>, email: String) -> LoginPage {
    creating_page("Create the first account", "/setup", error, email)
}

/// `GET /setup?token=…`: the one-time setup link, valid while no account exists.
pub async fn setup_page(
    state: web::Data<WebState>,
    req: HttpRequest,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    if !setup_token_matches(&state, query.get("token").map(String::as_str)).await {
        return super::not_found(Nav::default());
    }
    let mut page = setup_page_with(None, String::new());
    page.setup_token = query.get("token").cloned();
    public_form(&state, &req, StatusCode::OK, page)
}

/// `POST /setup`: creates the first account and spends the setup token.
pub async fn setup(
    state: web::Data<WebState>,
    req: HttpRequest,
    DashboardForm(form): DashboardForm<SetupForm>,
) -> HttpResponse {
    if !setup_token_matches(&state, form.token.as_deref()).await {
        return super::not_found(Nav::default());
    }
    if !pre_csrf_ok(&state, &req, &form.csrf) {
        return csrf_failed(Nav::default());
    }
    // Spend the token before creating the account, so two racing posts cannot both succeed;
    // give it back if the form had a mistake.
    let token = form.token;
    {
        let mut guard = state.setup_token.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() || *guard != token {
            return super::not_found(Nav::default());
        }
        *guard = None;
    }
    match create_from_form(&state, &form.email, &form.password, true).await {
        Ok(account_id) => start_session(&state, &req, account_id).await,
        // Another route or process made an account first: the token stays spent.
        Err(CreateError::NotFirst) => super::not_found(Nav::default()),
        Err(CreateError::Internal) => {
            *state.setup_token.lock().unwrap_or_else(|p| p.into_inner()) = token;
            internal(Nav::default())
        }
        Err(CreateError::Form(error)) => {
            *state.setup_token.lock().unwrap_or_else(|p| p.into_inner()) = token.clone();
            let mut page = setup_page_with(Some(error), form.email);
            page.setup_token = token;
            public_form(&state, &req, StatusCode::UNPROCESSABLE_ENTITY, page)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_attempts_each_consume_one_and_a_clean_address_still_gets_through() {
        let throttle = LoginThrottle::default();
        let guesser: IpAddr = "192.0.2.9".parse().unwrap();
        let owner: IpAddr = "198.51.100.7".parse().unwrap();
        // Reserved and not yet answered: each reservation counts at once.
        let held: Vec<_> = (0..MAX_FAILURES_PER_ADDRESS)
            .map(|_| {
                throttle
                    .reserve("A@x.test", Some(guesser), false, 0)
                    .unwrap()
            })
            .collect();
        assert_eq!(held.len(), MAX_FAILURES_PER_ADDRESS);
        let wait = throttle
            .reserve("a@x.test", Some(guesser), false, 1)
            .unwrap_err();
        assert_eq!(wait, THROTTLE_WINDOW_MS / 1000);
        // The account has its failures, but the owner's address has none: one try, and a right
        // password takes it back.
        let attempt = throttle.reserve("a@x.test", Some(owner), false, 2).unwrap();
        throttle.succeeded(attempt);
        let attempt = throttle.reserve("a@x.test", Some(owner), false, 3).unwrap();
        throttle.succeeded(attempt);
        // A wrong guess from a fresh address leaves that address with a failure: its second try
        // on the attacked account waits.
        let fresh: IpAddr = "203.0.113.1".parse().unwrap();
        drop(throttle.reserve("a@x.test", Some(fresh), false, 4).unwrap());
        assert!(throttle.reserve("a@x.test", Some(fresh), false, 5).is_err());
        // Other accounts are untouched; the window ends every bound.
        assert!(throttle.reserve("b@x.test", Some(owner), false, 6).is_ok());
        assert!(
            throttle
                .reserve("a@x.test", Some(guesser), false, THROTTLE_WINDOW_MS)
                .is_ok()
        );
    }

    #[test]
    fn the_per_address_bound_covers_every_account() {
        let throttle = LoginThrottle::default();
        let ip: IpAddr = "192.0.2.10".parse().unwrap();
        for i in 0..MAX_FAILURES_PER_IP {
            assert!(
                throttle
                    .reserve(&format!("u{i}@x.test"), Some(ip), false, 10)
                    .is_ok()
            );
        }
        assert!(throttle.reserve("new@x.test", Some(ip), false, 11).is_err());
        assert!(throttle.reserve("new@x.test", None, false, 11).is_ok());
    }

    #[test]
    fn past_the_account_cap_only_a_known_device_from_a_clean_address_may_try() {
        let throttle = LoginThrottle::default();
        // Guesses spread over fresh addresses, one each, up to the cap.
        for i in 0..ACCOUNT_FAILURE_CAP {
            let ip: IpAddr = format!("10.0.{}.{}", i / 250, i % 250 + 1).parse().unwrap();
            assert!(
                throttle.reserve("a@x.test", Some(ip), false, 0).is_ok(),
                "{i}"
            );
        }
        let clean: IpAddr = "198.51.100.20".parse().unwrap();
        assert!(throttle.reserve("a@x.test", Some(clean), false, 1).is_err());
        let attempt = throttle.reserve("a@x.test", Some(clean), true, 1).unwrap();
        throttle.succeeded(attempt);
        // Another account is not affected.
        assert!(throttle.reserve("b@x.test", Some(clean), false, 2).is_ok());
    }

    #[test]
    fn ipv6_guesses_count_for_their_64() {
        let throttle = LoginThrottle::default();
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            let ip: IpAddr = format!("2001:db8:5:6::{:x}", i + 1).parse().unwrap();
            assert!(throttle.reserve("a@x.test", Some(ip), false, 0).is_ok());
        }
        let same_64: IpAddr = "2001:db8:5:6:ffff::1".parse().unwrap();
        assert!(
            throttle
                .reserve("a@x.test", Some(same_64), false, 1)
                .is_err()
        );
    }
}
