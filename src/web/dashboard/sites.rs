//! Site pages: the list, create, the site page (endpoints, snippets, Test delivery), edit,
//! rotate the secret, delete. Another account's site is a 404 in every route.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{CsrfForm, Nav, PageError, blocking, internal, render, see_other, sentence};
use crate::captcha::cap::ChallengeParams;
use crate::delivery::{Deliveries, Destination, Outcome, Report};
use crate::egress::resolve::EgressError;
use crate::egress::webhook_url::WebhookUrl;
use crate::sites::{self, RotationGrace, Site, SiteError, SiteInput};
use crate::web::WebState;
use crate::web::extract::{SignedIn, SignedInForm, checkbox};

struct SiteRow {
    id: String,
    name: String,
    key: String,
    enabled: bool,
    webhook: String,
    delivered: u64,
    failed: u64,
}

#[derive(Template)]
#[template(path = "dashboard/sites.html")]
struct SitesPage {
    nav: Nav,
    rows: Vec<SiteRow>,
    deleted: bool,
}

/// The values of the site form, as typed, with at most one error placed next to its field.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
pub struct FormValues {
    name: String,
    webhook_url: String,
    email_to: String,
    #[serde(deserialize_with = "checkbox")]
    enabled: bool,
    #[serde(deserialize_with = "checkbox")]
    key_disabled: bool,
    redirect_url: String,
    allowed_origins: String,
    challenge_count: String,
    difficulty: String,
    verifier: String,
    verifier_secret: String,
    verifier_url: String,
    verifier_sitekey: String,
    #[serde(skip)]
    has_verifier_secret: bool,
    #[serde(skip)]
    relay: bool,
    #[serde(skip)]
    error: Option<String>,
    #[serde(skip)]
    field: &'static str,
    #[serde(skip)]
    message: String,
}

/// The site form as posted, to create a site or to edit one.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct SiteForm {
    /// The session's CSRF token.
    pub csrf: String,
    /// The site's fields.
    #[serde(flatten)]
    pub values: FormValues,
}

/// The rotate confirmation: `confirm=yes` and the grace period of the old secret.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RotateForm {
    /// The session's CSRF token.
    pub csrf: String,
    /// `yes` when confirmed.
    pub confirm: Option<String>,
    /// `none`, `1h` or `24h`; none when absent.
    pub grace: Option<String>,
}

/// The delete confirmation: `confirm=yes`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeleteForm {
    /// The session's CSRF token.
    pub csrf: String,
    /// `yes` when confirmed.
    pub confirm: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard/site_form.html")]
struct SiteFormPage {
    nav: Nav,
    heading: String,
    action: String,
    button: &'static str,
    cancel: String,
    estimate: Estimate,
    form: FormValues,
}

/// The expected solve time of the form's challenges × difficulty, and what the page's script
/// needs to follow the fields as they are typed.
struct Estimate {
    text: String,
    slow: bool,
    laptop_hps: u64,
    phone_hps: u64,
    slow_ms: u64,
    max_count: u16,
    max_difficulty: u8,
}

impl Estimate {
    fn of(form: &FormValues) -> Estimate {
        use crate::captcha::cap::{MAX_CHALLENGE_COUNT, MAX_DIFFICULTY};
        use crate::captcha::solve_time::{self, SolveTime};
        let params = form
            .challenge_count
            .trim()
            .parse::<u16>()
            .ok()
            .zip(form.difficulty.trim().parse::<u8>().ok())
            .and_then(|(count, difficulty)| ChallengeParams::new(count, difficulty));
        let time = params.map(SolveTime::of);
        Estimate {
            text: time.map_or_else(
                || {
                    format!(
                        "Expected solve time: enter challenges 1–{MAX_CHALLENGE_COUNT} and difficulty 1–{MAX_DIFFICULTY}."
                    )
                },
                SolveTime::sentence,
            ),
            slow: time.is_some_and(SolveTime::is_slow),
            laptop_hps: solve_time::LAPTOP_HASHES_PER_SEC,
            phone_hps: solve_time::PHONE_HASHES_PER_SEC,
            slow_ms: solve_time::SLOW_MS,
            max_count: MAX_CHALLENGE_COUNT,
            max_difficulty: MAX_DIFFICULTY,
        }
    }
}

struct SiteView {
    id: String,
    name: String,
    key: String,
    enabled: bool,
    webhook: String,
    email_to: Vec<String>,
    origins: Vec<String>,
    redirect: String,
    challenges: u16,
    difficulty: u8,
    solve_time: String,
    verifier: &'static str,
    previous_secret_until: Option<String>,
}

struct TestView {
    destination: &'static str,
    delivered: bool,
    outcome: &'static str,
    http_status: Option<u16>,
    smtp_code: Option<u16>,
    smtp_reply: Option<String>,
    latency_ms: u64,
    detail: String,
    resolved: String,
    body: Option<String>,
}

struct WebhookCheck {
    ok: bool,
    summary: String,
}

#[derive(Template)]
#[template(path = "dashboard/site.html")]
struct SitePage {
    nav: Nav,
    site: SiteView,
    forwarder_url: String,
    cap_endpoint: String,
    snippet_widget: String,
    snippet_cap: String,
    snippet_caputchin: String,
    public_url: String,
    notice: Option<String>,
    webhook_check: Option<WebhookCheck>,
    tests: Vec<TestView>,
    tests_ok: bool,
}

#[derive(Template)]
#[template(path = "dashboard/secret.html")]
struct SecretPage {
    nav: Nav,
    heading: &'static str,
    name: String,
    site_id: String,
    secret: String,
    previous_until: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard/rotate.html")]
struct RotatePage {
    nav: Nav,
    name: String,
    site_id: String,
}

#[derive(Template)]
#[template(path = "dashboard/created.html")]
struct CreatedPage {
    nav: Nav,
    site: SiteView,
    forwarder_url: String,
    snippet_widget: String,
    webhook_check: Option<WebhookCheck>,
    secret: String,
}

#[derive(Template)]
#[template(path = "dashboard/delete.html")]
struct DeletePage {
    nav: Nav,
    name: String,
    site_id: String,
}

/// The HTML a site owner pastes for our widget (SPEC §2; the widget is served at `/widget.js`).
/// Inline attributes only, so that it looks like a form in a page with no stylesheet.
pub fn snippet_widget(public_url: &str, forwarder_url: &str, site_key: &str) -> String {
    format!(
        r#"<form action="{forwarder_url}" method="POST" style="display:grid;gap:.75rem;max-width:28rem">
  <label style="display:grid;gap:.25rem">Email <input type="email" name="email" autocomplete="email" required></label>
  <label style="display:grid;gap:.25rem">Message <textarea name="message" rows="5" required></textarea></label>
  <caputchin-widget sitekey="{site_key}" api-host="{public_url}" trigger="form-submit"></caputchin-widget>
  <noscript>This form needs JavaScript for its spam check.</noscript>
  <button type="submit" style="justify-self:start">Send</button>
</form>
<script src="{public_url}/widget.js" async></script>"#
    )
}

/// The HTML for the unmodified `@cap.js/widget`, hosted from the owner's own origin
/// (CAP-PROTOCOL §6).
pub fn snippet_cap(forwarder_url: &str, cap_endpoint: &str) -> String {
    format!(
        r#"<script>window.CAP_CUSTOM_WASM_URL = "/cap/cap_wasm_bg.wasm";</script>
<script src="/cap/cap.min.js"></script>
<form action="{forwarder_url}" method="POST" style="display:grid;gap:.75rem;max-width:28rem">
  <label style="display:grid;gap:.25rem">Email <input type="email" name="email" autocomplete="email" required></label>
  <label style="display:grid;gap:.25rem">Message <textarea name="message" rows="5" required></textarea></label>
  <cap-widget data-cap-api-endpoint="{cap_endpoint}"
              data-cap-hidden-field-name="caputchin-token"></cap-widget>
  <button type="submit" style="justify-self:start">Send</button>
</form>"#
    )
}

/// The HTML for Caputchin's own widget, `@caputchin/widget` 3.x, built with its verify host set
/// to this forwarder and hosted from the owner's own origin (SPEC §13): the widget reads the
/// forwarder's URL from its build, so the element needs no `api-host`.
pub fn snippet_caputchin(forwarder_url: &str, site_key: &str) -> String {
    format!(
        r#"<script src="/caputchin/widget.js"></script>
<form action="{forwarder_url}" method="POST" style="display:grid;gap:.75rem;max-width:28rem">
  <label style="display:grid;gap:.25rem">Email <input type="email" name="email" autocomplete="email" required></label>
  <label style="display:grid;gap:.25rem">Message <textarea name="message" rows="5" required></textarea></label>
  <caputchin-widget sitekey="{site_key}" trigger="form-submit"></caputchin-widget>
  <button type="submit" style="justify-self:start">Send</button>
</form>"#
    )
}

/// The webhook as lists and pages show it: masked (it is a secret), or "none".
fn webhook_shown(site: &Site) -> String {
    site.settings
        .webhook_url
        .as_ref()
        .map_or_else(|| "none".to_owned(), WebhookUrl::masked)
}

fn view(site: &Site, now_ms: i64) -> SiteView {
    SiteView {
        id: site.id.clone(),
        name: site.settings.name.clone(),
        key: site.key.as_str().to_owned(),
        enabled: site.settings.enabled,
        webhook: webhook_shown(site),
        email_to: site
            .settings
            .email_to
            .iter()
            .map(ToString::to_string)
            .collect(),
        origins: site.settings.allowed_origins.clone(),
        redirect: site
            .settings
            .redirect_url
            .as_ref()
            .map(|u| u.to_string())
            .unwrap_or_default(),
        challenges: site.settings.challenge.count,
        difficulty: site.settings.challenge.difficulty,
        solve_time: crate::captcha::solve_time::SolveTime::of(site.settings.challenge).sentence(),
        verifier: site.settings.verifier.as_str(),
        previous_secret_until: site
            .previous_secret_until(now_ms)
            .map(crate::time::utc_datetime),
    }
}

fn site_page(state: &WebState, account: &SignedIn, site: &Site) -> SitePage {
    let key = site.key.as_str();
    let forwarder_url = state.settings.forwarder_url(key);
    let cap_endpoint = state.settings.cap_endpoint(key);
    SitePage {
        nav: account.nav("sites"),
        site: view(site, state.clock.now_ms()),
        snippet_widget: snippet_widget(&state.settings.public_url, &forwarder_url, key),
        snippet_cap: snippet_cap(&forwarder_url, &cap_endpoint),
        snippet_caputchin: snippet_caputchin(&forwarder_url, key),
        public_url: state.settings.public_url.clone(),
        forwarder_url,
        cap_endpoint,
        notice: None,
        webhook_check: None,
        tests: Vec::new(),
        tests_ok: false,
    }
}

/// One of the account's sites; refused as not found for unknown ids and other accounts' sites.
async fn own_site(state: &WebState, account: &SignedIn, site_id: &str) -> Result<Site, PageError> {
    let (account_id, site_id) = (account.id, site_id.to_owned());
    match blocking(state, move |s| {
        sites::site_for_account(&s.store, account_id, &site_id)
    })
    .await
    {
        Some(Some(site)) => Ok(site),
        Some(None) => Err(PageError::NotFound(account.nav("sites"))),
        None => Err(PageError::Internal(account.nav("sites"))),
    }
}

/// `GET /dashboard`: the account's sites with today's counts (`?deleted=1` after a deletion).
pub async fn list(
    state: web::Data<WebState>,
    req: HttpRequest,
    account: SignedIn,
) -> Result<HttpResponse, PageError> {
    let (account_id, now) = (account.id, state.clock.now_ms());
    let loaded = blocking(&state, move |s| -> Result<_, SiteError> {
        let listed = sites::sites_of_account(&s.store, account_id)?;
        let counts = crate::stats::today_counts(&s.store, account_id, now)?;
        Ok((listed, counts))
    })
    .await;
    let Some((listed, counts)) = loaded else {
        return Err(PageError::Internal(account.nav("sites")));
    };
    let rows = listed
        .iter()
        .map(|site| {
            let (delivered, failed) = counts.get(&site.id).copied().unwrap_or((0, 0));
            SiteRow {
                id: site.id.clone(),
                name: site.settings.name.clone(),
                key: site.key.as_str().to_owned(),
                enabled: site.settings.enabled,
                webhook: webhook_shown(site),
                delivered,
                failed,
            }
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &SitesPage {
            nav: account.nav("sites"),
            rows,
            deleted: req.query_string() == "deleted=1",
        },
    ))
}

fn defaults(relay: bool) -> FormValues {
    let params = ChallengeParams::default();
    FormValues {
        enabled: true,
        relay,
        verifier: "builtin".into(),
        challenge_count: params.count.to_string(),
        difficulty: params.difficulty.to_string(),
        ..FormValues::default()
    }
}

fn values_of(site: &Site, relay: bool) -> FormValues {
    let s = &site.settings;
    FormValues {
        name: s.name.clone(),
        webhook_url: s
            .webhook_url
            .as_ref()
            .map(|u| u.expose().to_owned())
            .unwrap_or_default(),
        email_to: s
            .email_to
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        relay,
        enabled: s.enabled,
        key_disabled: s.disabled,
        redirect_url: s
            .redirect_url
            .as_ref()
            .map(|u| u.to_string())
            .unwrap_or_default(),
        allowed_origins: s.allowed_origins.join("\n"),
        challenge_count: s.challenge.count.to_string(),
        difficulty: s.challenge.difficulty.to_string(),
        verifier: s.verifier.as_str().to_owned(),
        verifier_url: s
            .verifier_url
            .as_ref()
            .map(|u| u.expose().to_owned())
            .unwrap_or_default(),
        verifier_sitekey: s.verifier_sitekey.clone().unwrap_or_default(),
        has_verifier_secret: site.verifier_secret.is_some(),
        ..FormValues::default()
    }
}

/// Turns form values into a site input; a number that does not parse is reported on its field.
fn input_from(
    values: &FormValues,
    sealer: &crate::keys::Sealer,
) -> Result<SiteInput, (&'static str, String)> {
    let number = |field: &'static str, raw: &str| -> Result<Option<u64>, (&'static str, String)> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        raw.parse::<u64>()
            .map(Some)
            .map_err(|_| (field, "Enter a whole number.".to_owned()))
    };
    let count = number("challenge_count", &values.challenge_count)?;
    let difficulty = number("difficulty", &values.difficulty)?;
    Ok(SiteInput {
        name: values.name.clone(),
        webhook_url: values.webhook_url.clone(),
        email_to: vec![values.email_to.clone()],
        redirect_url: Some(values.redirect_url.clone()),
        allowed_origins: values.allowed_origins.lines().map(str::to_owned).collect(),
        // Out-of-range numbers become values the validator refuses with its own message.
        challenge_count: count.map(|c| u16::try_from(c).unwrap_or(u16::MAX)),
        difficulty: difficulty.map(|d| u8::try_from(d).unwrap_or(u8::MAX)),
        enabled: values.enabled,
        verifier: Some(values.verifier.clone()),
        // The secret is sealed at once; an empty field keeps the stored one.
        verifier_secret: Some(values.verifier_secret.trim())
            .filter(|s| !s.is_empty())
            .map(|s| sealer.seal(s)),
        verifier_url: Some(values.verifier_url.clone()),
        verifier_sitekey: Some(values.verifier_sitekey.clone()),
        disabled: values.key_disabled,
        ..SiteInput::default()
    })
}

/// The form field a validation error belongs to.
fn field_of(error: &SiteError) -> &'static str {
    match error {
        SiteError::InvalidName => "name",
        SiteError::InvalidWebhook(_) | SiteError::NoDestination => "webhook_url",
        SiteError::InvalidEmailTo(_) | SiteError::TooManyEmailTo | SiteError::NoRelay => "email_to",
        SiteError::InvalidRedirect => "redirect_url",
        SiteError::InvalidOrigin(_) | SiteError::TooManyOrigins => "allowed_origins",
        SiteError::InvalidChallengeCount => "challenge_count",
        SiteError::InvalidDifficulty => "difficulty",
        SiteError::InvalidVerifier => "verifier",
        SiteError::MissingVerifierSecret => "verifier_secret",
        SiteError::InvalidVerifierUrl(_) => "verifier_url",
        SiteError::Account(_) | SiteError::Store(_) => "",
    }
}

/// The new-site form with these values.
fn new_site_page(account: &SignedIn, form: FormValues) -> SiteFormPage {
    SiteFormPage {
        nav: account.nav("sites"),
        heading: "New site".into(),
        action: "/sites".into(),
        button: "Create site",
        cancel: "/dashboard".into(),
        estimate: Estimate::of(&form),
        form,
    }
}

/// The edit form of `site` with these values.
fn edit_site_page(account: &SignedIn, site: &Site, form: FormValues) -> SiteFormPage {
    SiteFormPage {
        nav: account.nav("sites"),
        heading: format!("Edit {}", site.settings.name),
        action: format!("/sites/{}/edit", site.id),
        button: "Save changes",
        cancel: format!("/sites/{}", site.id),
        estimate: Estimate::of(&form),
        form,
    }
}

fn with_error(mut values: FormValues, field: &'static str, message: String) -> FormValues {
    values.error = Some("Please correct the field marked below.".into());
    values.field = field;
    values.message = message;
    values
}

/// `GET /sites/new`.
pub async fn new_form(state: web::Data<WebState>, account: SignedIn) -> HttpResponse {
    let relay = state.deliverer.mailer().is_some();
    render(StatusCode::OK, &new_site_page(&account, defaults(relay)))
}

/// Checks the form's values and runs `save`; a validation error re-renders the form with 422.
async fn save_form<R: Send + 'static>(
    state: &WebState,
    account: &SignedIn,
    mut values: FormValues,
    page: impl Fn(FormValues) -> SiteFormPage,
    save: impl FnOnce(&WebState, SiteInput) -> Result<R, SiteError> + Send + 'static,
) -> Result<R, HttpResponse> {
    // A typed secret is never echoed back into the page.
    let input = input_from(&values, state.keys.sealer());
    let relay = state.deliverer.mailer().is_some();
    values.relay = relay;
    values.verifier_secret.clear();
    let input = match input {
        Ok(input) => input,
        Err((field, message)) => {
            return Err(render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page(with_error(values, field, message)),
            ));
        }
    };
    let checked = input
        .validate()
        .and_then(|settings| sites::check_email_relay(&settings, relay));
    if let Err(e) = checked {
        let (field, message) = (field_of(&e), sentence(&e.to_string()));
        return Err(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(with_error(values, field, message)),
        ));
    }
    let result = tokio::task::spawn_blocking({
        let state = state.clone();
        move || save(&state, input)
    })
    .await;
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e @ SiteError::MissingVerifierSecret)) => Err(render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &page(with_error(values, field_of(&e), sentence(&e.to_string()))),
        )),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "saving a site failed");
            Err(internal(account.nav("sites")))
        }
        Err(_) => Err(internal(account.nav("sites"))),
    }
}

/// `POST /sites`: creates a site and shows its secret once.
pub async fn create(
    state: web::Data<WebState>,
    SignedInForm(account, form): SignedInForm<SiteForm>,
) -> Result<HttpResponse, PageError> {
    account.check_csrf(&form.csrf, "sites")?;
    let (account_id, now) = (account.id, state.clock.now_ms());
    let page = |values| new_site_page(&account, values);
    let created = save_form(&state, &account, form.values, page, move |s, input| {
        let created = s.sites.change(&s.store, |store| {
            sites::create_site_for(store, account_id, &input, now)
        })?;
        let site = sites::site_for_account(&s.store, account_id, &created.site_id)?;
        Ok(site.map(|site| (site, created.secret)))
    })
    .await;
    let (site, secret) = match created {
        Ok(Some(created)) => created,
        Ok(None) => return Err(PageError::Internal(account.nav("sites"))),
        Err(form_page) => return Ok(form_page),
    };
    // The same destination check as an edit: a blocked webhook is named at once.
    let check = check_webhook(&state, site.settings.webhook_url.as_ref()).await;
    let key = site.key.as_str();
    let forwarder_url = state.settings.forwarder_url(key);
    Ok(render(
        StatusCode::OK,
        &CreatedPage {
            nav: account.nav("sites"),
            snippet_widget: snippet_widget(&state.settings.public_url, &forwarder_url, key),
            forwarder_url,
            site: view(&site, state.clock.now_ms()),
            webhook_check: check,
            secret,
        },
    ))
}

/// `GET /sites/{id}`.
pub async fn show(
    state: web::Data<WebState>,
    account: SignedIn,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let site = own_site(&state, &account, &path).await?;
    Ok(render(StatusCode::OK, &site_page(&state, &account, &site)))
}

/// `GET /sites/{id}/edit`.
pub async fn edit_form(
    state: web::Data<WebState>,
    account: SignedIn,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let site = own_site(&state, &account, &path).await?;
    let relay = state.deliverer.mailer().is_some();
    let page = edit_site_page(&account, &site, values_of(&site, relay));
    Ok(render(StatusCode::OK, &page))
}

/// What a webhook host resolves to now and whether delivery would be blocked (the same policy
/// code as delivery, SPEC §5); `None` for a site without a webhook.
async fn check_webhook(state: &WebState, url: Option<&WebhookUrl>) -> Option<WebhookCheck> {
    let url = url?;
    Some(match state.deliverer.egress().vet(url.url()).await {
        Ok(vetted) => {
            let addrs: Vec<String> = vetted.addrs.iter().map(|a| a.ip().to_string()).collect();
            WebhookCheck {
                ok: true,
                summary: format!(
                    "{} resolves to {}: delivery is allowed.",
                    url.url().host_str().unwrap_or_default(),
                    addrs.join(", ")
                ),
            }
        }
        Err(EgressError::Blocked { blocked, resolved }) => {
            let addrs: Vec<String> = resolved.iter().map(ToString::to_string).collect();
            WebhookCheck {
                ok: false,
                summary: format!(
                    "{} resolves to {}: delivery would be blocked ({blocked}). {}",
                    url.url().host_str().unwrap_or_default(),
                    addrs.join(", "),
                    blocked.allow_hint()
                ),
            }
        }
        Err(e @ EgressError::Dns { .. }) => WebhookCheck {
            ok: false,
            summary: format!("{e}: delivery would fail until the name resolves."),
        },
    })
}

/// `POST /sites/{id}/edit`: saves and shows the site page with the webhook check.
pub async fn update(
    state: web::Data<WebState>,
    path: web::Path<String>,
    SignedInForm(account, form): SignedInForm<SiteForm>,
) -> Result<HttpResponse, PageError> {
    let site = own_site(&state, &account, &path).await?;
    account.check_csrf(&form.csrf, "sites")?;
    let (account_id, now, site_id) = (account.id, state.clock.now_ms(), site.id.clone());
    let page = |values| edit_site_page(&account, &site, values);
    let saved = save_form(&state, &account, form.values, page, move |s, input| {
        let changed = s.sites.change(&s.store, |store| {
            sites::update_site(store, account_id, &site_id, &input, now)
        })?;
        let site = sites::site_for_account(&s.store, account_id, &site_id)?;
        Ok(changed.then_some(site).flatten())
    })
    .await;
    let site = match saved {
        Ok(Some(site)) => site,
        Ok(None) => return Err(PageError::NotFound(account.nav("sites"))),
        Err(form_page) => return Ok(form_page),
    };
    let mut page = site_page(&state, &account, &site);
    page.notice = Some("Saved.".into());
    page.webhook_check = check_webhook(&state, site.settings.webhook_url.as_ref()).await;
    Ok(render(StatusCode::OK, &page))
}

fn test_view(destination: Destination, report: &Report) -> TestView {
    TestView {
        destination: destination.as_str(),
        delivered: report.outcome == Outcome::Delivered,
        outcome: report.outcome.as_str(),
        http_status: report.http_status,
        smtp_code: report.smtp_code,
        smtp_reply: report.smtp_reply.clone().filter(|r| !r.is_empty()),
        latency_ms: report.latency_ms,
        detail: sentence(&report.detail),
        resolved: report
            .resolved
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        body: report.response_body.clone().filter(|b| !b.is_empty()),
    }
}

/// `POST /sites/{id}/test`: Test delivery, the same function as `site test`.
pub async fn test(
    state: web::Data<WebState>,
    client: web::Data<awc::Client>,
    path: web::Path<String>,
    SignedInForm(account, form): SignedInForm<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let site = own_site(&state, &account, &path).await?;
    account.check_csrf(&form.csrf, "sites")?;
    let deliveries: Deliveries = crate::test_delivery::run(&state, &client, &site).await;
    let mut page = site_page(&state, &account, &site);
    page.tests = deliveries
        .iter()
        .map(|(destination, report)| test_view(*destination, report))
        .collect();
    page.tests_ok = page.tests.iter().all(|t| t.delivered);
    Ok(render(StatusCode::OK, &page))
}

/// `GET /sites/{id}/try`: the site's test form, which works whatever origins the site allows and
/// counts as a test (`crate::web::preview`).
pub async fn test_form(
    state: web::Data<WebState>,
    account: SignedIn,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let site = own_site(&state, &account, &path).await?;
    Ok(crate::web::preview::page(&state, &site, true))
}

/// A confirmation step of one of the account's sites: `page` gets the navigation, the site's name
/// and its id.
async fn confirm_page<T: Template>(
    state: &WebState,
    account: &SignedIn,
    site_id: &str,
    page: impl FnOnce(Nav, String, String) -> T,
) -> Result<HttpResponse, PageError> {
    let site = own_site(state, account, site_id).await?;
    Ok(render(
        StatusCode::OK,
        &page(account.nav("sites"), site.settings.name, site.id),
    ))
}

/// `GET /sites/{id}/rotate`: the confirmation step, with the grace period to choose.
pub async fn rotate_confirm(
    state: web::Data<WebState>,
    account: SignedIn,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    confirm_page(&state, &account, &path, |nav, name, site_id| RotatePage {
        nav,
        name,
        site_id,
    })
    .await
}

/// `POST /sites/{id}/rotate` with `confirm=yes` and `grace` (`none`, `1h`, `24h`): a new secret,
/// shown once.
pub async fn rotate(
    state: web::Data<WebState>,
    path: web::Path<String>,
    SignedInForm(account, form): SignedInForm<RotateForm>,
) -> Result<HttpResponse, PageError> {
    let site = own_site(&state, &account, &path).await?;
    account.check_csrf(&form.csrf, "sites")?;
    let grace = form
        .grace
        .as_deref()
        .map_or(Some(RotationGrace::None), RotationGrace::parse);
    let (Some("yes"), Some(grace)) = (form.confirm.as_deref(), grace) else {
        return Ok(see_other(&format!("/sites/{}/rotate", site.id)));
    };
    let (account_id, now, site_id) = (account.id, state.clock.now_ms(), site.id.clone());
    let rotated = blocking(&state, move |s| {
        s.sites.change(&s.store, |store| {
            sites::rotate_secret(store, account_id, &site_id, grace, now)
        })
    })
    .await;
    match rotated {
        Some(Some(secret)) => {
            tracing::info!(site_id = %site.id, grace = grace.as_str(), "secret rotated");
            Ok(render(
                StatusCode::OK,
                &SecretPage {
                    nav: account.nav("sites"),
                    heading: "New secret",
                    name: site.settings.name.clone(),
                    site_id: site.id.clone(),
                    secret,
                    previous_until: grace
                        .millis()
                        .map(|ms| crate::time::utc_datetime(now.saturating_add(ms))),
                },
            ))
        }
        Some(None) => Err(PageError::NotFound(account.nav("sites"))),
        None => Err(PageError::Internal(account.nav("sites"))),
    }
}

/// `GET /sites/{id}/delete`: the confirmation step.
pub async fn delete_confirm(
    state: web::Data<WebState>,
    account: SignedIn,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    confirm_page(&state, &account, &path, |nav, name, site_id| DeletePage {
        nav,
        name,
        site_id,
    })
    .await
}

/// `POST /sites/{id}/delete` with `confirm=yes`.
pub async fn delete(
    state: web::Data<WebState>,
    path: web::Path<String>,
    SignedInForm(account, form): SignedInForm<DeleteForm>,
) -> Result<HttpResponse, PageError> {
    let site = own_site(&state, &account, &path).await?;
    account.check_csrf(&form.csrf, "sites")?;
    if form.confirm.as_deref() != Some("yes") {
        return Ok(see_other(&format!("/sites/{}/delete", site.id)));
    }
    let (account_id, site_id) = (account.id, site.id.clone());
    let deleted = blocking(&state, move |s| {
        s.sites.change(&s.store, |store| {
            sites::delete_site(store, account_id, &site_id)
        })
    })
    .await;
    match deleted {
        Some(true) => {
            tracing::info!(site_id = %site.id, "site deleted");
            Ok(see_other("/dashboard?deleted=1"))
        }
        Some(false) => Err(PageError::NotFound(account.nav("sites"))),
        None => Err(PageError::Internal(account.nav("sites"))),
    }
}
