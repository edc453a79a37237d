//! The management API's bodies as types, and the OpenAPI 3.1 document generated from them and
//! from the handlers' `#[utoipa::path]` annotations (`GET /v1/management/openapi.json`, served
//! without a token: it holds no data). Keys a Caputchin client reads are written out even when
//! `null` (reference §2).

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// An error: `{"error": "<code>", "message": "<text>"}` (reference §9.9).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The code, e.g. `not-found`, `insufficient-scope`, `invalid-webhook-url`.
    pub error: String,
    /// What was wrong, for a person.
    pub message: String,
}

/// The caller's account.
#[derive(Serialize, ToSchema)]
pub struct Account {
    /// `acct_…`.
    pub id: String,
    /// Its login email.
    pub email: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
}

/// `{"account"}`.
#[derive(Serialize, ToSchema)]
pub struct AccountAnswer {
    /// The account.
    pub account: Account,
}

/// The account's one troop (reference §4, §9.1).
#[derive(Serialize, ToSchema)]
pub struct Troop {
    /// `troop_…`.
    pub id: String,
    /// The account's email.
    pub name: String,
    /// `acct_…`.
    pub account_id: String,
    /// Always `personal`.
    pub kind: String,
    /// Always `self-hosted`.
    pub tier: String,
    /// The account's creation time, epoch ms.
    pub created_at: i64,
    /// Always true.
    pub can_manage: bool,
    /// The account's email.
    pub owner_email: Option<String>,
}

/// `{"troops": [troop]}`.
#[derive(Serialize, ToSchema)]
pub struct TroopList {
    /// The caller's troop.
    pub troops: Vec<Troop>,
}

/// `{"troop"}`.
#[derive(Serialize, ToSchema)]
pub struct TroopAnswer {
    /// The troop.
    pub troop: Troop,
}

/// A site (reference §5): never its secret or destinations.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Site {
    /// Internal id, `site_…` (every path takes it).
    pub id: String,
    /// Public key, `cpt_pub_…`.
    pub key: String,
    /// Display name, as sent.
    pub name: String,
    /// The account's troop.
    pub troop_id: String,
    /// Always `self-hosted`.
    pub tier: String,
    /// True when the key is switched off (challenges, posts and siteverify refused).
    pub disabled: bool,
    /// Creation time, epoch ms.
    pub created_at: i64,
}

/// `{"site"}`.
#[derive(Serialize, ToSchema)]
pub struct SiteAnswer {
    /// The site.
    pub site: Site,
}

/// `{"sites": [site]}`.
#[derive(Serialize, ToSchema)]
pub struct SiteList {
    /// The sites the caller may read.
    pub sites: Vec<Site>,
}

/// The body of `POST …/sites`.
#[derive(Serialize, ToSchema)]
pub struct CreateSite {
    /// Display name (1–100 characters, no blanks around it).
    pub name: String,
    /// The caller's troop; absent for the caller's own.
    pub troop_id: Option<String>,
}

/// The answer of `POST …/sites`.
#[derive(Serialize, ToSchema)]
pub struct CreatedSite {
    /// The new site.
    pub site: Site,
    /// Its secret, `cpt_sec_…`, shown only here.
    pub secret: String,
}

/// The body of `PATCH …/sites/{site_id}`: the changed fields.
#[derive(Serialize, ToSchema)]
pub struct PatchSite {
    /// A new name.
    pub name: Option<String>,
    /// Switch the key off or on.
    pub disabled: Option<bool>,
}

/// `{"secret"}`.
#[derive(Serialize, ToSchema)]
pub struct SecretAnswer {
    /// The new secret, shown only here.
    pub secret: String,
}

/// Hosted verification: forwarding and destinations (reference §6, §9.3).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HostedVerification {
    /// The site's id.
    pub site_id: String,
    /// Forwarding on or off.
    pub enabled: bool,
    /// The webhook URL, as sent; `null` for none.
    pub webhook_url: Option<String>,
    /// One to five addresses separated by commas, as sent; `null` for none.
    pub email_to: Option<String>,
    /// The first save, epoch ms.
    pub created_at: Option<i64>,
    /// The latest save, epoch ms.
    pub updated_at: Option<i64>,
}

/// The body of `PUT …/hosted-verification/{site_id}`.
#[derive(Serialize, ToSchema)]
pub struct HostedVerificationPut {
    /// Addresses; `null` removes the email destination; absent keeps it.
    pub email_to: Option<String>,
    /// Forwarding on or off (required).
    pub enabled: bool,
    /// The webhook URL; `null` removes it; absent keeps it.
    pub webhook_url: Option<String>,
}

/// One destination's Test delivery.
#[derive(Serialize, ToSchema)]
pub struct TestResult {
    /// `webhook` or `email`.
    pub destination: String,
    /// True when it was delivered.
    pub ok: bool,
    /// `delivered` or the failure category.
    pub outcome: String,
    /// The webhook's HTTP status.
    pub http_status: Option<u16>,
    /// The relay's reply code.
    pub smtp_code: Option<u16>,
    /// Time to the outcome, ms.
    pub latency_ms: u64,
    /// What happened, in words.
    pub detail: Option<String>,
}

/// The answer of `POST …/hosted-verification/{site_id}/test`.
#[derive(Serialize, ToSchema)]
pub struct TestAnswer {
    /// The site's id.
    pub site_id: String,
    /// One entry per configured destination.
    pub destinations: Vec<TestResult>,
}

/// Caputchin's Cap configuration (reference §6, §9.4).
#[derive(Serialize, ToSchema)]
pub struct CapConfig {
    /// Always false.
    pub instrumentation: bool,
    /// Proof-of-work difficulty, 1–8.
    pub difficulty: i64,
    /// Challenges per verification, 1–500.
    pub challenge_count: i64,
    /// Always 1.
    pub obfuscation_level: i64,
    /// Always false.
    pub block_automated_browsers: bool,
    /// Always null.
    pub block_non_browser_ua: Option<bool>,
    /// Always null.
    pub required_headers: Option<Vec<String>>,
    /// Always null.
    pub ratelimit_max: Option<i64>,
    /// The allowed origins, as sent; `null` for any origin.
    pub cors_origins: Option<Vec<String>>,
}

/// `{"site_id", "config"}`.
#[derive(Serialize, ToSchema)]
pub struct CapConfigAnswer {
    /// The site's id.
    pub site_id: String,
    /// The configuration.
    pub config: CapConfig,
}

/// Caputchin's security settings: the neutral values only (reference §9.5).
#[derive(Serialize, ToSchema)]
pub struct SecuritySettings {
    /// Always false.
    pub require_game: bool,
    /// Always null.
    pub preview_mode: Option<bool>,
    /// Always null.
    pub reuse: Option<bool>,
    /// Always null.
    pub reuse_window_ms: Option<i64>,
    /// Always null.
    pub reuse_persist: Option<bool>,
    /// Always false.
    pub proxy_gate: bool,
    /// Always null.
    pub proxy_ttl_seconds: Option<i64>,
    /// Always null.
    pub proxy_fail_mode: Option<String>,
}

/// `{"site_id", "settings"}`.
#[derive(Serialize, ToSchema)]
pub struct SecuritySettingsAnswer {
    /// The site's id.
    pub site_id: String,
    /// The settings.
    pub settings: SecuritySettings,
}

/// A site's lifetime statistics (reference §6, §9.7).
#[derive(Serialize, ToSchema)]
pub struct SiteStats {
    /// The site's id.
    pub site_id: String,
    /// Challenges issued.
    pub sessions_started: u64,
    /// Challenges solved and redeemed.
    pub sessions_client_completed: u64,
    /// Tokens accepted by siteverify or the form endpoint.
    pub sessions_server_verified: u64,
    /// Redeems refused.
    pub failed_client_completion: u64,
    /// Tokens refused by siteverify or the form endpoint.
    pub failed_server_verification: u64,
    /// Requests refused by a rate limit.
    pub rate_limit_rejections: u64,
    /// Requests refused for their origin.
    pub challenge_blocked: u64,
    /// Real webhook deliveries accepted.
    pub webhook_delivered: u64,
    /// Real webhook deliveries failed.
    pub webhook_failed: u64,
    /// Real emails accepted by the relay.
    pub email_delivered: u64,
    /// Real emails failed.
    pub email_failed: u64,
}

/// Ours: a site's full settings (secrets write-only).
#[derive(Serialize, ToSchema)]
pub struct FullSettings {
    /// The site's id.
    pub site_id: String,
    /// Public key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// The key switched off.
    pub disabled: bool,
    /// Forwarding on.
    pub forwarding_enabled: bool,
    /// The webhook URL.
    pub webhook_url: Option<String>,
    /// The addresses.
    pub email_to: Option<String>,
    /// Where visitors go after a post.
    pub redirect_url: Option<String>,
    /// Allowed origins; `null` for any.
    pub allowed_origins: Option<Vec<String>>,
    /// Challenges per verification.
    pub challenge_count: u16,
    /// Difficulty.
    pub difficulty: u8,
    /// `builtin`, `caputchin`, `turnstile`, `hcaptcha` or `recaptcha`.
    pub verifier: String,
    /// The verifier's siteverify URL.
    pub verifier_url: Option<String>,
    /// hCaptcha's site key.
    pub verifier_sitekey: Option<String>,
    /// Whether a verifier secret is stored.
    pub verifier_secret_set: bool,
}

/// Ours: the body of `PATCH …/sites/{site_id}/settings`: the changed fields.
#[derive(Serialize, ToSchema)]
pub struct FullSettingsPatch {
    /// `null` or `""` for the built-in thank-you page.
    pub redirect_url: Option<String>,
    /// `null` for any origin.
    pub allowed_origins: Option<Vec<String>>,
    /// 1–500.
    pub challenge_count: Option<i64>,
    /// 1–8.
    pub difficulty: Option<i64>,
    /// The verifier's name.
    pub verifier: Option<String>,
    /// The remote verifier's secret (write-only).
    pub verifier_secret: Option<String>,
    /// The verifier's siteverify URL.
    pub verifier_url: Option<String>,
    /// hCaptcha's site key.
    pub verifier_sitekey: Option<String>,
}

/// One of the latest deliveries (never form contents).
#[derive(Serialize, ToSchema)]
pub struct LatestDelivery {
    /// When it finished, epoch ms.
    pub at: i64,
    /// `webhook` or `email`.
    pub destination: String,
    /// A Test delivery.
    pub test: bool,
    /// `delivered` or the failure category.
    pub outcome: String,
    /// The HTTP status.
    pub http_status: Option<u16>,
    /// Latency, ms.
    pub latency_ms: u64,
}

/// Ours: `{"site_id", "deliveries"}`.
#[derive(Serialize, ToSchema)]
pub struct LatestDeliveries {
    /// The site's id.
    pub site_id: String,
    /// Newest first.
    pub deliveries: Vec<LatestDelivery>,
}

/// A token as listed.
#[derive(Serialize, ToSchema)]
pub struct Token {
    /// `tok_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `troop` or `account`, as created.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its first 16 characters.
    pub prefix: String,
    /// Latest use, epoch ms.
    pub last_used_at: Option<i64>,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// `read` or `write`.
    pub scope: String,
    /// The site it is bound to.
    pub site_id: Option<String>,
    /// Expiry, epoch ms.
    pub expires_at: Option<i64>,
}

/// `{"tokens": [token]}`.
#[derive(Serialize, ToSchema)]
pub struct TokenList {
    /// The live tokens.
    pub tokens: Vec<Token>,
}

/// The body of `POST …/tokens`.
#[derive(Serialize, ToSchema)]
pub struct CreateToken {
    /// Its name.
    pub name: String,
    /// `troop` (default) or `account`; echoed, grants nothing by itself.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Ours: `read` or `write` (default).
    pub scope: Option<String>,
    /// Ours: bind it to one site.
    pub site_id: Option<String>,
    /// Ours: days until it stops working.
    pub expires_days: Option<i64>,
}

/// A new token with its value.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    /// `tok_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `troop` or `account`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its first 16 characters.
    pub prefix: String,
    /// The token, shown only here.
    pub value: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
}

/// `{"token"}`.
#[derive(Serialize, ToSchema)]
pub struct CreatedTokenAnswer {
    /// The token.
    pub token: CreatedToken,
}

/// Adds the bearer scheme every route but this document's uses.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A personal access token, cpt_pat_…"))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of the management API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Caputchin Forwarder management API",
        description = "Caputchin's management API as its Terraform provider speaks it, plus the \
                       forwarder's extensions. Every path is also served under /api."
    ),
    paths(
        super::sites::me,
        super::sites::troops,
        super::sites::troop_by_id,
        super::sites::list,
        super::sites::create,
        super::sites::read,
        super::sites::update,
        super::sites::delete,
        super::sites::rotate,
        super::hosted::read,
        super::hosted::write,
        super::hosted::test,
        super::settings::read_cap_config,
        super::settings::update_cap_config,
        super::settings::read_security,
        super::settings::update_security,
        super::settings::read_full,
        super::settings::update_full,
        super::stats::site,
        super::stats::deliveries_range,
        super::stats::latest,
        super::tokens::list,
        super::tokens::create,
        super::tokens::revoke,
        super::openapi,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;
