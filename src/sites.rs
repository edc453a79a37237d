//! Sites: creation, listing and the in-memory directory the public endpoints read. The CLI and the
//! dashboard call these same functions (the dashboard through the directory, which reloads itself
//! after each of its changes).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::accounts::{self, AccountError};
use crate::captcha::VerifierKind;
use crate::captcha::cap::ChallengeParams;
use crate::egress::webhook_url::{WebhookUrl, WebhookUrlError};
use crate::store::{self, Store, StoreError};

/// Prefix of public site keys.
pub const SITE_KEY_PREFIX: &str = "cpt_pub_";
/// Prefix of site secrets.
pub const SECRET_PREFIX: &str = "cpt_sec_";
/// Prefix of internal site ids.
pub const SITE_ID_PREFIX: &str = "site_";
/// Longest site name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// Most allowed origins per site.
pub const MAX_ORIGINS: usize = 50;
/// Most email addresses per site (SPEC §10).
pub const MAX_EMAIL_TO: usize = 5;

/// Why a site could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// Empty or too long.
    #[error("the site name must be 1 to {MAX_NAME_CHARS} characters")]
    InvalidName,
    /// The webhook URL broke a save-time rule (SPEC §5).
    #[error("{0}")]
    InvalidWebhook(#[from] WebhookUrlError),
    /// The redirect URL is not an absolute http(s) URL.
    #[error("the redirect URL must be an absolute http or https URL")]
    InvalidRedirect,
    /// An unknown verifier name.
    #[error("the verifier must be one of builtin, caputchin, turnstile, hcaptcha, recaptcha")]
    InvalidVerifier,
    /// A remote verifier without its secret.
    #[error("a remote verifier needs its secret")]
    MissingVerifierSecret,
    /// The verifier URL broke a save-time rule.
    #[error("verifier URL: {0}")]
    InvalidVerifierUrl(WebhookUrlError),
    /// An allowed origin is not `scheme://host[:port]`.
    #[error("{0:?} is not an origin such as https://www.example.com")]
    InvalidOrigin(String),
    /// Too many origins.
    #[error("at most {MAX_ORIGINS} allowed origins")]
    TooManyOrigins,
    /// The challenge count is out of range.
    #[error(
        "challenges must be between 1 and {}",
        crate::captcha::cap::MAX_CHALLENGE_COUNT
    )]
    InvalidChallengeCount,
    /// The difficulty is out of range.
    #[error(
        "difficulty must be between 1 and {}",
        crate::captcha::cap::MAX_DIFFICULTY
    )]
    InvalidDifficulty,
    /// An email address that does not parse.
    #[error("{0:?} is not an email address such as owner@example.com")]
    InvalidEmailTo(String),
    /// More than five addresses.
    #[error("at most {MAX_EMAIL_TO} email addresses")]
    TooManyEmailTo,
    /// Neither a webhook nor an address.
    #[error("forwarding needs a webhook URL, an email address, or both")]
    NoDestination,
    /// Addresses while the operator configured no relay.
    #[error(
        "email needs an SMTP relay, and this server has none: the operator sets \
         CAPUTCHIN_SMTP_URL and CAPUTCHIN_MAIL_FROM (see the README's email section)"
    )]
    NoRelay,
    /// The owning account does not exist.
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A syntactically valid public site key, `cpt_pub_` and 24 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SiteKey(String);

impl SiteKey {
    /// Parses a key; `None` if it does not have the shape of one.
    pub fn parse(raw: &str) -> Option<SiteKey> {
        let hex = raw.strip_prefix(SITE_KEY_PREFIX)?;
        (hex.len() == 24 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| SiteKey(raw.to_owned()))
    }

    /// A new random key.
    pub fn generate() -> SiteKey {
        SiteKey(crate::ids::random_id::<12>(SITE_KEY_PREFIX))
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// SHA-256 of a site secret. Secrets are 192 random bits, so a fast hash is the right tool: it
/// cannot be brute-forced, and it lets siteverify find the site by the hash.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Normalises an origin to `scheme://host[:port]`, as browsers send it in `Origin`.
pub fn normalize_origin(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw.trim()).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    plain.then(|| url.origin().ascii_serialization())
}

/// Parses a redirect URL: absolute http or https.
pub fn parse_redirect(raw: &str) -> Result<Option<url::Url>, SiteError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let url = url::Url::parse(raw).map_err(|_| SiteError::InvalidRedirect)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || raw.len() > 2048 {
        return Err(SiteError::InvalidRedirect);
    }
    Ok(Some(url))
}

/// Parses a site's email addresses: entries split at commas and newlines, each one address
/// checked by lettre's parser (the one that sends), duplicates (ignoring case) dropped.
pub fn parse_email_to(entries: &[String]) -> Result<Vec<lettre::Address>, SiteError> {
    let mut out: Vec<lettre::Address> = Vec::new();
    let raws = entries
        .iter()
        .flat_map(|e| e.split([',', '\n']))
        .map(str::trim)
        .filter(|e| !e.is_empty());
    for raw in raws {
        let address = raw
            .parse::<lettre::Address>()
            .ok()
            .filter(|_| raw.len() <= 254 && !raw.contains(char::is_whitespace))
            .ok_or_else(|| SiteError::InvalidEmailTo(raw.to_owned()))?;
        if !out.iter().any(|a: &lettre::Address| {
            AsRef::<str>::as_ref(a).eq_ignore_ascii_case(address.as_ref())
        }) {
            out.push(address);
        }
    }
    if out.len() > MAX_EMAIL_TO {
        return Err(SiteError::TooManyEmailTo);
    }
    Ok(out)
}

/// Refuses email addresses when the operator configured no SMTP relay (SPEC §10): saving a site
/// checks this beside its own rules.
pub fn check_email_relay(settings: &SiteSettings, relay_configured: bool) -> Result<(), SiteError> {
    if !settings.email_to.is_empty() && !relay_configured {
        return Err(SiteError::NoRelay);
    }
    Ok(())
}

/// The settings an owner chooses for a site, as given (unchecked).
#[derive(Debug, Clone, Default)]
pub struct SiteInput {
    /// Display name.
    pub name: String,
    /// Webhook URL; empty for none (then `email_to` must name someone).
    pub webhook_url: String,
    /// Email addresses, each entry one or more separated by commas or newlines; empty for none.
    pub email_to: Vec<String>,
    /// Redirect URL after a successful post; empty for the built-in thank-you page.
    pub redirect_url: Option<String>,
    /// Allowed origins; empty means any.
    pub allowed_origins: Vec<String>,
    /// Challenges per verification; `None` for the default.
    pub challenge_count: Option<u16>,
    /// Difficulty; `None` for the default.
    pub difficulty: Option<u8>,
    /// Whether forwarding is enabled.
    pub enabled: bool,
    /// The verifier's name (`builtin` when `None`).
    pub verifier: Option<String>,
    /// A new verifier secret, already sealed with [`crate::keys::Sealer`]; `None`
    /// keeps the stored one.
    pub verifier_secret: Option<Vec<u8>>,
    /// The verifier's siteverify URL; empty for the provider's public endpoint.
    pub verifier_url: Option<String>,
    /// hCaptcha's site key, sent with each verification when set.
    pub verifier_sitekey: Option<String>,
    /// Whether the site's key is switched off (SPEC §12): it refuses challenges, form posts and
    /// siteverify, whatever forwarding says.
    pub disabled: bool,
    /// How a management API client spelled the values it sent (kept to be echoed; `None`
    /// fields keep what is stored).
    pub as_sent: AsSent,
    /// When a management API client saved the hosted verification (destinations and
    /// forwarding), epoch ms; `None` for other changes.
    pub hosted_saved_at: Option<i64>,
}

/// Values as a management API client sent them, kept beside the normalised ones the site uses,
/// so that answers give back exactly what was sent (the Caputchin reference's §2, rule 5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AsSent {
    /// The webhook URL.
    pub webhook_url: Option<String>,
    /// The email addresses, one string (commas between addresses).
    pub email_to: Option<String>,
    /// The allowed origins, in the order sent.
    pub allowed_origins: Option<Vec<String>>,
}

/// Site settings that passed every rule.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteSettings {
    /// Display name.
    pub name: String,
    /// Webhook URL, when the site has a webhook.
    pub webhook_url: Option<WebhookUrl>,
    /// Email addresses (one to five), when the site has the email destination.
    pub email_to: Vec<lettre::Address>,
    /// Redirect URL after a successful post.
    pub redirect_url: Option<url::Url>,
    /// Allowed origins, normalised; empty means any.
    pub allowed_origins: Vec<String>,
    /// Challenge shape.
    pub challenge: ChallengeParams,
    /// Whether forwarding is enabled.
    pub enabled: bool,
    /// Which service verifies submissions.
    pub verifier: VerifierKind,
    /// An overriding siteverify URL (same save-time rules as webhook URLs).
    pub verifier_url: Option<WebhookUrl>,
    /// hCaptcha's site key.
    pub verifier_sitekey: Option<String>,
    /// Whether the site's key is switched off.
    pub disabled: bool,
}

impl SiteSettings {
    /// The siteverify URL to call: the override, or the provider's public endpoint.
    pub fn verify_url(&self) -> Option<WebhookUrl> {
        self.verifier_url.clone().or_else(|| {
            self.verifier
                .default_url()
                .and_then(|u| WebhookUrl::parse(u).ok())
        })
    }
}

impl SiteInput {
    /// Applies every rule; the first broken one is the error.
    pub fn validate(&self) -> Result<SiteSettings, SiteError> {
        let name = self.name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(SiteError::InvalidName);
        }
        let webhook_url = match self.webhook_url.trim() {
            "" => None,
            raw => Some(WebhookUrl::parse(raw)?),
        };
        let email_to = parse_email_to(&self.email_to)?;
        // An enabled site needs a destination; one with forwarding off may have none yet (a
        // site made over the management API starts so, SPEC §12).
        if self.enabled && webhook_url.is_none() && email_to.is_empty() {
            return Err(SiteError::NoDestination);
        }
        let redirect_url = parse_redirect(self.redirect_url.as_deref().unwrap_or(""))?;
        let mut allowed_origins = Vec::new();
        // One per entry, line or comma: "https://a.example, https://b.example" is two.
        let entries = self
            .allowed_origins
            .iter()
            .flat_map(|o| o.split([',', '\n']))
            .map(str::trim)
            .filter(|o| !o.is_empty());
        for raw in entries {
            let origin =
                normalize_origin(raw).ok_or_else(|| SiteError::InvalidOrigin(raw.to_owned()))?;
            if !allowed_origins.contains(&origin) {
                allowed_origins.push(origin);
            }
        }
        if allowed_origins.len() > MAX_ORIGINS {
            return Err(SiteError::TooManyOrigins);
        }
        let defaults = ChallengeParams::default();
        let (count, difficulty) = (
            self.challenge_count.unwrap_or(defaults.count),
            self.difficulty.unwrap_or(defaults.difficulty),
        );
        if ChallengeParams::new(count, defaults.difficulty).is_none() {
            return Err(SiteError::InvalidChallengeCount);
        }
        let challenge =
            ChallengeParams::new(count, difficulty).ok_or(SiteError::InvalidDifficulty)?;
        let verifier = match self.verifier.as_deref().map(str::trim) {
            None | Some("") => VerifierKind::Builtin,
            Some(name) => VerifierKind::parse(name).ok_or(SiteError::InvalidVerifier)?,
        };
        let verifier_url = match self.verifier_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(_) if verifier == VerifierKind::Builtin => None,
            Some(raw) => Some(WebhookUrl::parse(raw).map_err(SiteError::InvalidVerifierUrl)?),
        };
        let verifier_sitekey = self
            .verifier_sitekey
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty() && verifier == VerifierKind::Hcaptcha)
            .map(str::to_owned);
        Ok(SiteSettings {
            name: name.to_owned(),
            webhook_url,
            email_to,
            redirect_url,
            allowed_origins,
            challenge,
            enabled: self.enabled,
            verifier,
            verifier_url,
            verifier_sitekey,
            disabled: self.disabled,
        })
    }
}

/// A site as the public endpoints see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Internal id.
    pub id: String,
    /// Owning account.
    pub account_id: i64,
    /// Owning account's email.
    pub account_email: String,
    /// Public key.
    pub key: SiteKey,
    /// SHA-256 of the secret.
    pub secret_hash: [u8; 32],
    /// The secret a rotation replaced, while its grace period lasts.
    pub previous_secret: Option<PreviousSecret>,
    /// The remote verifier's secret, sealed.
    pub verifier_secret: Option<Vec<u8>>,
    /// The checked settings.
    pub settings: SiteSettings,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// How a management API client last spelled its destinations and origins.
    pub as_sent: AsSent,
    /// The first save of its hosted verification, epoch ms (`None` for a site made over the
    /// API whose hosted verification was never saved).
    pub hosted_created_at: Option<i64>,
    /// The latest save of its hosted verification, epoch ms.
    pub hosted_updated_at: Option<i64>,
}

/// A replaced secret that still verifies until `until_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousSecret {
    /// Its SHA-256.
    pub hash: [u8; 32],
    /// When it stops verifying, epoch ms.
    pub until_ms: i64,
}

/// How long a rotated-out secret keeps verifying, so that servers can move to the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RotationGrace {
    /// The old secret stops at once.
    #[default]
    None,
    /// One hour.
    Hour,
    /// 24 hours.
    Day,
}

impl RotationGrace {
    /// Every choice, shortest first.
    pub const ALL: [RotationGrace; 3] =
        [RotationGrace::None, RotationGrace::Hour, RotationGrace::Day];

    /// Parses `none`, `1h` or `24h`.
    pub fn parse(raw: &str) -> Option<RotationGrace> {
        RotationGrace::ALL
            .into_iter()
            .find(|g| g.as_str() == raw.trim().to_ascii_lowercase())
    }

    /// The typed name.
    pub fn as_str(self) -> &'static str {
        match self {
            RotationGrace::None => "none",
            RotationGrace::Hour => "1h",
            RotationGrace::Day => "24h",
        }
    }

    /// Its length in milliseconds (`None` for no grace).
    pub fn millis(self) -> Option<i64> {
        match self {
            RotationGrace::None => None,
            RotationGrace::Hour => Some(3_600_000),
            RotationGrace::Day => Some(86_400_000),
        }
    }
}

impl Site {
    /// The site's remote verifier, as a submission to it needs it (SPEC §8).
    pub fn verifier(&self) -> crate::captcha::remote::SiteVerifier<'_> {
        crate::captcha::remote::SiteVerifier {
            kind: self.settings.verifier,
            site_id: &self.id,
            site_key: self.key.as_str(),
            sealed_secret: self.verifier_secret.as_deref(),
            url: self.settings.verify_url(),
            sitekey: self.settings.verifier_sitekey.as_deref(),
            allowed_origins: &self.settings.allowed_origins,
        }
    }

    /// True when `secret` verifies for this site at `now_ms`: the current secret, or the
    /// previous one inside its grace period (both compared in constant time).
    pub fn accepts_secret(&self, secret: &str, now_ms: i64) -> bool {
        let hash = hash_secret(secret);
        let current = bool::from(self.secret_hash.ct_eq(&hash));
        let previous = self
            .previous_secret
            .is_some_and(|p| bool::from(p.hash.ct_eq(&hash)) && now_ms < p.until_ms);
        current | previous
    }

    /// When the previous secret stops verifying, if it still does at `now_ms`.
    pub fn previous_secret_until(&self, now_ms: i64) -> Option<i64> {
        self.previous_secret
            .map(|p| p.until_ms)
            .filter(|until| now_ms < *until)
    }

    /// True when `origin` (an `Origin` header value) may use this site: any origin when the site
    /// sets none.
    pub fn allows_origin(&self, origin: &str) -> bool {
        let allowed = &self.settings.allowed_origins;
        allowed.is_empty() || normalize_origin(origin).is_some_and(|o| allowed.contains(&o))
    }

    fn from_row(row: store::sites::SiteRow) -> Result<Site, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("site {}: bad {what}", row.id));
        let key = SiteKey::parse(&row.site_key).ok_or_else(|| corrupt("site key"))?;
        let secret_hash: [u8; 32] = row
            .secret_hash
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("secret hash"))?;
        let previous_secret = match (&row.previous_secret_hash, row.previous_secret_until) {
            (Some(hash), Some(until_ms)) => Some(PreviousSecret {
                hash: hash
                    .as_slice()
                    .try_into()
                    .map_err(|_| corrupt("previous secret hash"))?,
                until_ms,
            }),
            _ => None,
        };
        let input = SiteInput {
            name: row.name.clone(),
            webhook_url: row.webhook_url.clone(),
            email_to: row.email_to.lines().map(str::to_owned).collect(),
            redirect_url: row.redirect_url.clone(),
            allowed_origins: row.allowed_origins.lines().map(str::to_owned).collect(),
            challenge_count: u16::try_from(row.challenge_count).ok(),
            difficulty: u8::try_from(row.challenge_difficulty).ok(),
            enabled: row.enabled,
            verifier: Some(row.verifier.clone()),
            verifier_secret: None,
            verifier_url: row.verifier_url.clone(),
            verifier_sitekey: row.verifier_sitekey.clone(),
            disabled: row.disabled,
            as_sent: AsSent::default(),
            hosted_saved_at: None,
        };
        let settings = input.validate().map_err(|e| corrupt(&e.to_string()))?;
        let as_sent = AsSent {
            webhook_url: row.webhook_url_as_sent.clone(),
            email_to: row.email_to_as_sent.clone(),
            allowed_origins: row
                .allowed_origins_as_sent
                .as_deref()
                .and_then(|raw| serde_json::from_str(raw).ok()),
        };
        Ok(Site {
            id: row.id,
            account_id: row.account_id,
            account_email: row.account_email,
            key,
            secret_hash,
            previous_secret,
            verifier_secret: row.verifier_secret,
            settings,
            created_at: row.created_at,
            as_sent,
            hosted_created_at: row.hosted_created_at,
            hosted_updated_at: row.hosted_updated_at,
        })
    }

    /// The site's current settings as an input, for a change that keeps everything it does not
    /// name (the verifier secret is kept: `None` keeps the stored one).
    pub fn to_input(&self) -> SiteInput {
        let s = &self.settings;
        SiteInput {
            name: s.name.clone(),
            webhook_url: s
                .webhook_url
                .as_ref()
                .map(|u| u.expose().to_owned())
                .unwrap_or_default(),
            email_to: s.email_to.iter().map(ToString::to_string).collect(),
            redirect_url: s.redirect_url.as_ref().map(|u| u.to_string()),
            allowed_origins: s.allowed_origins.clone(),
            challenge_count: Some(s.challenge.count),
            difficulty: Some(s.challenge.difficulty),
            enabled: s.enabled,
            verifier: Some(s.verifier.as_str().to_owned()),
            verifier_secret: None,
            verifier_url: s.verifier_url.as_ref().map(|u| u.expose().to_owned()),
            verifier_sitekey: s.verifier_sitekey.clone(),
            disabled: s.disabled,
            as_sent: AsSent::default(),
            hosted_saved_at: None,
        }
    }

    /// The webhook URL to show a management client: as it sent it while that still names the
    /// stored one, else the stored one.
    pub fn webhook_url_echo(&self) -> Option<String> {
        let current = self.settings.webhook_url.as_ref()?.expose().to_owned();
        Some(
            self.as_sent
                .webhook_url
                .clone()
                .filter(|sent| WebhookUrl::parse(sent).is_ok_and(|u| u.expose() == current))
                .unwrap_or(current),
        )
    }

    /// The email addresses to show a management client: as it sent them while they still name
    /// the stored ones, else the stored ones separated by `, `.
    pub fn email_to_echo(&self) -> Option<String> {
        let current = &self.settings.email_to;
        if current.is_empty() {
            return None;
        }
        let sent = self.as_sent.email_to.clone().filter(|sent| {
            parse_email_to(std::slice::from_ref(sent)).is_ok_and(|parsed| &parsed == current)
        });
        Some(sent.unwrap_or_else(|| {
            current
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }))
    }

    /// The allowed origins to show a management client: `None` when any origin may use the
    /// site; as it sent them while they still name the stored ones, else the stored ones.
    pub fn allowed_origins_echo(&self) -> Option<Vec<String>> {
        let current = &self.settings.allowed_origins;
        if current.is_empty() {
            return None;
        }
        let sent = self.as_sent.allowed_origins.clone().filter(|sent| {
            let mut normalised: Vec<String> = Vec::new();
            for origin in sent {
                match normalize_origin(origin) {
                    Some(o) if !normalised.contains(&o) => normalised.push(o),
                    Some(_) => {}
                    None => return false,
                }
            }
            &normalised == current
        });
        Some(sent.unwrap_or_else(|| current.clone()))
    }
}

/// A newly created site, with the secret that is shown this once.
#[derive(Debug, Clone)]
pub struct CreatedSite {
    /// Internal id.
    pub site_id: String,
    /// Public key.
    pub site_key: SiteKey,
    /// The secret, in clear: shown once, never stored.
    pub secret: String,
}

/// Creates a site for the account with this email.
pub fn create_site(
    store: &Store,
    account_email: &str,
    input: &SiteInput,
    now_ms: i64,
) -> Result<CreatedSite, SiteError> {
    input.validate()?;
    let account = accounts::find_account(store, account_email)?;
    create_site_for(store, account.id, input, now_ms)
}

/// Creates a site for an account id (the dashboard's path; the CLI resolves the email first).
pub fn create_site_for(
    store: &Store,
    account_id: i64,
    input: &SiteInput,
    now_ms: i64,
) -> Result<CreatedSite, SiteError> {
    let settings = input.validate()?;
    // A site made here starts with a destination (only the management API makes sites without
    // one, with forwarding off: [`create_api_site_for`]).
    if settings.webhook_url.is_none() && settings.email_to.is_empty() {
        return Err(SiteError::NoDestination);
    }
    insert_site(store, account_id, input, settings, Some(now_ms), now_ms)
}

/// Creates a site over the management API (SPEC §12): just a name, no destination yet, so
/// forwarding is off, the key on, the default challenge; its hosted verification was never
/// saved.
pub fn create_api_site_for(
    store: &Store,
    account_id: i64,
    name: &str,
    now_ms: i64,
) -> Result<CreatedSite, SiteError> {
    let input = SiteInput {
        name: name.to_owned(),
        ..SiteInput::default()
    };
    let settings = input.validate()?;
    insert_site(store, account_id, &input, settings, None, now_ms)
}

/// Records a new site with fresh ids and secret.
fn insert_site(
    store: &Store,
    account_id: i64,
    input: &SiteInput,
    settings: SiteSettings,
    hosted_at: Option<i64>,
    now_ms: i64,
) -> Result<CreatedSite, SiteError> {
    if settings.verifier != VerifierKind::Builtin && input.verifier_secret.is_none() {
        return Err(SiteError::MissingVerifierSecret);
    }
    let site_id = crate::ids::random_id::<8>(SITE_ID_PREFIX);
    let site_key = SiteKey::generate();
    let secret = crate::ids::random_id::<24>(SECRET_PREFIX);
    let mut row = settings_row(&site_id, settings, input, now_ms);
    row.hosted_created_at = hosted_at;
    row.hosted_updated_at = hosted_at;
    row.account_id = account_id;
    row.site_key = site_key.as_str().to_owned();
    row.secret_hash = hash_secret(&secret).to_vec();
    store.sites().insert(&row)?;
    Ok(CreatedSite {
        site_id,
        site_key,
        secret,
    })
}

/// The stored form of a site's settings; the account, key and secret hash are left empty for
/// the caller to fill where they apply.
fn settings_row(
    site_id: &str,
    settings: SiteSettings,
    input: &SiteInput,
    now_ms: i64,
) -> store::sites::SiteRow {
    let sealed_secret = input.verifier_secret.clone();
    store::sites::SiteRow {
        id: site_id.to_owned(),
        account_id: 0,
        account_email: String::new(),
        name: settings.name,
        site_key: String::new(),
        secret_hash: Vec::new(),
        webhook_url: settings
            .webhook_url
            .as_ref()
            .map(|u| u.expose().to_owned())
            .unwrap_or_default(),
        email_to: settings
            .email_to
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        enabled: settings.enabled,
        redirect_url: settings.redirect_url.map(String::from),
        allowed_origins: settings.allowed_origins.join("\n"),
        challenge_count: i64::from(settings.challenge.count),
        challenge_difficulty: i64::from(settings.challenge.difficulty),
        created_at: now_ms,
        updated_at: now_ms,
        verifier: settings.verifier.as_str().to_owned(),
        verifier_secret: sealed_secret,
        verifier_url: settings.verifier_url.map(|u| u.expose().to_owned()),
        verifier_sitekey: settings.verifier_sitekey,
        previous_secret_hash: None,
        previous_secret_until: None,
        disabled: settings.disabled,
        hosted_created_at: input.hosted_saved_at,
        hosted_updated_at: input.hosted_saved_at,
        webhook_url_as_sent: input.as_sent.webhook_url.clone(),
        email_to_as_sent: input.as_sent.email_to.clone(),
        allowed_origins_as_sent: input
            .as_sent
            .allowed_origins
            .as_ref()
            .and_then(|origins| serde_json::to_string(origins).ok()),
    }
}

/// One of an account's sites by its internal id; `None` for unknown ids and other accounts' sites.
pub fn site_for_account(
    store: &Store,
    account_id: i64,
    site_id: &str,
) -> Result<Option<Site>, SiteError> {
    let row = store.sites().of_account_by_id(account_id, site_id)?;
    Ok(row.map(Site::from_row).transpose()?)
}

/// Changes a site's settings; `Ok(false)` when the account has no such site.
pub fn update_site(
    store: &Store,
    account_id: i64,
    site_id: &str,
    input: &SiteInput,
    now_ms: i64,
) -> Result<bool, SiteError> {
    let settings = input.validate()?;
    let remote = settings.verifier != VerifierKind::Builtin;
    let row = settings_row(site_id, settings, input, now_ms);
    store.sites().update(account_id, &row, |current| {
        // A remote verifier keeps its stored secret unless a new one is given, and needs one.
        if remote && row.verifier_secret.is_none() && current.verifier_secret.is_none() {
            return Err(SiteError::MissingVerifierSecret);
        }
        Ok(())
    })
}

/// Replaces a site's secret; returns the new secret (shown once), `None` for no such site.
pub fn rotate_secret(
    store: &Store,
    account_id: i64,
    site_id: &str,
    grace: RotationGrace,
    now_ms: i64,
) -> Result<Option<String>, SiteError> {
    let secret = crate::ids::random_id::<24>(SECRET_PREFIX);
    let hash = hash_secret(&secret);
    let until = grace.millis().map(|ms| now_ms.saturating_add(ms));
    let changed = store
        .sites()
        .set_secret(account_id, site_id, &hash, until, now_ms)?;
    Ok(changed.then_some(secret))
}

/// Deletes a site and its records; `Ok(false)` when the account has no such site.
pub fn delete_site(store: &Store, account_id: i64, site_id: &str) -> Result<bool, SiteError> {
    Ok(store.sites().delete(account_id, site_id)?)
}

/// The sites of one account, oldest first.
pub fn sites_of_account(store: &Store, account_id: i64) -> Result<Vec<Site>, SiteError> {
    let rows = store.sites().of_account(account_id)?;
    Ok(rows
        .into_iter()
        .map(Site::from_row)
        .collect::<Result<_, _>>()?)
}

/// Lists sites: one account's, or every site when `account_email` is `None`.
pub fn list_sites(store: &Store, account_email: Option<&str>) -> Result<Vec<Site>, SiteError> {
    let rows = match account_email {
        Some(email) => {
            let account = accounts::find_account(store, email)?;
            store.sites().of_account(account.id)?
        }
        None => store.sites().all()?,
    };
    Ok(rows
        .into_iter()
        .map(Site::from_row)
        .collect::<Result<_, _>>()?)
}

#[derive(Default)]
struct Snapshot {
    version: i64,
    by_key: HashMap<String, Arc<Site>>,
    by_secret_hash: HashMap<[u8; 32], Arc<Site>>,
}

/// How often a serving process checks the change counter on its own: other processes' edits,
/// rotations and deletions are in force here within this period plus one reload (SPEC §9: 100 ms).
pub const DIRECTORY_POLL_EVERY: Duration = Duration::from_millis(25);

/// The shortest gap between two checks. A key or secret not in memory waits for the next check
/// (at most this long once one is running), so a flood of unknown keys costs at most one read of
/// the counter per gap, however many keys it sends.
pub const DIRECTORY_MIN_GAP: Duration = Duration::from_millis(5);

/// Longest a lookup waits for a check before answering from what is loaded.
const MISS_WAIT_LIMIT: Duration = Duration::from_secs(1);

/// The checks of a serving process: lookups that miss wake the watcher and wait for a check that
/// started after they arrived.
struct Watch {
    wake: tokio::sync::Notify,
    /// When the latest finished check started.
    checked: tokio::sync::watch::Sender<Option<Instant>>,
}

/// An in-memory copy of every site, so that issuing a challenge for a known key touches no
/// database. In a serving process ([`SiteDirectory::watch`]) the `sites_version` counter (moved by
/// every change, from any process) is checked every [`DIRECTORY_POLL_EVERY`], and a key or secret
/// that is not in memory is looked for once more after a fresh check (SPEC §9: a new site answers
/// its first request). This process's own changes reload it at once.
#[derive(Clone, Default)]
pub struct SiteDirectory {
    snapshot: Arc<RwLock<Arc<Snapshot>>>,
    watch: Arc<OnceLock<Watch>>,
}

impl SiteDirectory {
    fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The site with this public key, as loaded (no database access).
    pub fn get(&self, site_key: &str) -> Option<Arc<Site>> {
        self.current().by_key.get(site_key).cloned()
    }

    /// The site with this public key; a key not in memory is looked for again after a check of
    /// the change counter that started after this call.
    pub async fn find(&self, site_key: &str) -> Option<Arc<Site>> {
        if let Some(site) = self.get(site_key) {
            return Some(site);
        }
        // A key that cannot be one is never worth a check.
        SiteKey::parse(site_key)?;
        self.fresh_check().await;
        self.get(site_key)
    }

    /// The site whose secret this is at `now_ms` (its current one, or its previous one inside
    /// the grace period), as loaded. The map lookup compares digests of the secret, which reveal
    /// nothing usable about it; the match is then confirmed in constant time.
    pub fn by_secret(&self, secret: &str, now_ms: i64) -> Option<Arc<Site>> {
        let hash = hash_secret(secret);
        let site = self.current().by_secret_hash.get(&hash).cloned()?;
        site.accepts_secret(secret, now_ms).then_some(site)
    }

    /// [`SiteDirectory::by_secret`], looking again after a fresh check when it is not in memory
    /// (a secret rotated a moment ago by another process).
    pub async fn find_by_secret(&self, secret: &str, now_ms: i64) -> Option<Arc<Site>> {
        if let Some(site) = self.by_secret(secret, now_ms) {
            return Some(site);
        }
        if !secret.starts_with(SECRET_PREFIX) {
            return None;
        }
        self.fresh_check().await;
        self.by_secret(secret, now_ms)
    }

    /// Waits for a check of the change counter that started after this call; returns at once
    /// when no watcher runs (the CLI).
    async fn fresh_check(&self) {
        let Some(watch) = self.watch.get() else {
            return;
        };
        let arrived = Instant::now();
        let mut checked = watch.checked.subscribe();
        watch.wake.notify_one();
        let fresh = checked.wait_for(|started| started.is_some_and(|s| s >= arrived));
        if tokio::time::timeout(MISS_WAIT_LIMIT, fresh).await.is_err() {
            tracing::warn!("the site directory check is late; answering from memory");
        }
    }

    /// Starts this process's watcher on the current runtime: it checks the change counter every
    /// [`DIRECTORY_POLL_EVERY`], or sooner when a lookup misses (at most once per
    /// [`DIRECTORY_MIN_GAP`]), and reloads when the counter moved. Only the first call starts one.
    pub fn watch(&self, store: Store) {
        let (checked, _) = tokio::sync::watch::channel(None);
        if self
            .watch
            .set(Watch {
                wake: tokio::sync::Notify::new(),
                checked,
            })
            .is_err()
        {
            return;
        }
        let directory = self.clone();
        tokio::task::spawn_local(async move {
            let Some(watch) = directory.watch.get() else {
                return;
            };
            loop {
                tokio::select! {
                    () = tokio::time::sleep(DIRECTORY_POLL_EVERY) => {}
                    () = watch.wake.notified() => {}
                }
                let started = Instant::now();
                let (store, sites) = (store.clone(), directory.clone());
                match tokio::task::spawn_blocking(move || sites.refresh_if_changed(&store)).await {
                    Ok(Ok(true)) => tracing::debug!("site directory reloaded"),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "site directory check failed"),
                    Err(e) => tracing::warn!(error = %e, "site directory check task failed"),
                }
                watch.checked.send_replace(Some(started));
                tokio::time::sleep(DIRECTORY_MIN_GAP).await;
            }
        });
    }

    /// How many loaded sites have email addresses.
    pub fn count_with_email(&self) -> usize {
        self.current()
            .by_key
            .values()
            .filter(|site| !site.settings.email_to.is_empty())
            .count()
    }

    /// How many sites are loaded.
    pub fn len(&self) -> usize {
        self.current().by_key.len()
    }

    /// True when no site is loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reloads every site from the database.
    pub fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let (version, rows) = store.sites().snapshot()?;
        let mut next = Snapshot {
            version,
            ..Snapshot::default()
        };
        for row in rows {
            let id = row.id.clone();
            match Site::from_row(row) {
                Ok(site) => {
                    let site = Arc::new(site);
                    if let Some(previous) = site.previous_secret {
                        next.by_secret_hash.insert(previous.hash, Arc::clone(&site));
                    }
                    next.by_secret_hash
                        .insert(site.secret_hash, Arc::clone(&site));
                    next.by_key.insert(site.key.as_str().to_owned(), site);
                }
                Err(e) => tracing::error!(site_id = %id, error = %e, "skipping unreadable site"),
            }
        }
        let next = Arc::new(next);
        let mut guard = match self.snapshot.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Two reloads may finish out of order (the watcher's and a dashboard change's): the
        // counter only grows, so an older snapshot never replaces a newer one.
        if next.version >= guard.version {
            *guard = next;
        }
        Ok(())
    }

    /// Reloads when the database's site counter differs from the loaded one.
    pub fn refresh_if_changed(&self, store: &Store) -> Result<bool, StoreError> {
        let version = store.sites().version()?;
        if version == self.current().version {
            return Ok(false);
        }
        self.reload(store)?;
        Ok(true)
    }
}

/// This process's own changes. The dashboard makes its changes through [`SiteDirectory::change`];
/// the CLI, which serves nothing, calls the plain functions.
impl SiteDirectory {
    /// Runs `change` (one of [`create_site_for`], [`update_site`], [`rotate_secret`],
    /// [`delete_site`]) and then reloads (also when the account had no such site), so that the
    /// change is in force in this process before the caller answers; other processes see it
    /// within their watch interval (SPEC §9).
    pub fn change<R>(
        &self,
        store: &Store,
        change: impl FnOnce(&Store) -> Result<R, SiteError>,
    ) -> Result<R, SiteError> {
        let changed = change(store)?;
        self.reload(store)?;
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SiteInput {
        SiteInput {
            name: "Contact".into(),
            webhook_url: "https://hooks.example.com/in".into(),
            enabled: true,
            ..SiteInput::default()
        }
    }

    #[test]
    fn site_keys_have_one_shape() {
        let key = SiteKey::generate();
        assert!(SiteKey::parse(key.as_str()).is_some());
        for bad in [
            "",
            "cpt_pub_",
            "cpt_pub_0123456789abcdef0123456",
            "cpt_pub_0123456789abcdef012345678",
            "cpt_pub_0123456789ABCDEF01234567",
            "cpt_sec_0123456789abcdef01234567",
        ] {
            assert!(SiteKey::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn origins_are_normalised_and_checked() {
        assert_eq!(
            normalize_origin("https://WWW.Example.com").as_deref(),
            Some("https://www.example.com")
        );
        assert_eq!(
            normalize_origin("https://example.com:443/").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(
            normalize_origin("http://localhost:3000").as_deref(),
            Some("http://localhost:3000")
        );
        for bad in [
            "example.com",
            "https://example.com/path",
            "ftp://x",
            "null",
            "*",
        ] {
            assert!(normalize_origin(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn input_rules_each_refuse() {
        assert!(input().validate().is_ok());
        let mut i = input();
        i.name = " ".into();
        assert!(matches!(i.validate(), Err(SiteError::InvalidName)));
        let mut i = input();
        i.webhook_url = "https://u:p@x.com/".into();
        assert!(matches!(
            i.validate(),
            Err(SiteError::InvalidWebhook(WebhookUrlError::UserInfo))
        ));
        let mut i = input();
        i.redirect_url = Some("/thanks".into());
        assert!(matches!(i.validate(), Err(SiteError::InvalidRedirect)));
        let mut i = input();
        i.allowed_origins = vec!["https://a.com/x".into()];
        assert!(matches!(i.validate(), Err(SiteError::InvalidOrigin(_))));
        let mut i = input();
        i.allowed_origins = vec![
            "https://a.example, http://localhost:8000,".into(),
            " https://b.example ".into(),
        ];
        assert_eq!(
            i.validate().map(|s| s.allowed_origins).ok(),
            Some(vec![
                "https://a.example".to_owned(),
                "http://localhost:8000".to_owned(),
                "https://b.example".to_owned()
            ]),
            "commas and lines both separate origins"
        );
        let mut i = input();
        i.difficulty = Some(9);
        let e = i.validate().err();
        assert!(matches!(e, Some(SiteError::InvalidDifficulty)));
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("difficulty must be between 1 and 8")
        );
        let mut i = input();
        i.challenge_count = Some(0);
        let e = i.validate().err();
        assert!(matches!(e, Some(SiteError::InvalidChallengeCount)));
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("challenges must be between 1 and 500")
        );
    }

    #[test]
    fn created_sites_are_listed_found_by_key_and_secret_and_the_secret_is_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        assert!(matches!(
            create_site(&store, "owner@example.com", &input(), 1),
            Err(SiteError::Account(AccountError::UnknownAccount))
        ));
        accounts::create_account(&store, "owner@example.com", "long enough pw", 1).unwrap();
        let created = create_site(&store, "owner@example.com", &input(), 2).unwrap();
        assert!(created.secret.starts_with(SECRET_PREFIX));
        assert!(created.site_id.starts_with(SITE_ID_PREFIX));

        let listed = list_sites(&store, Some("owner@example.com")).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, created.site_key);

        let directory = SiteDirectory::default();
        assert!(directory.refresh_if_changed(&store).unwrap());
        assert!(!directory.refresh_if_changed(&store).unwrap());
        assert!(directory.get(created.site_key.as_str()).is_some());
        assert!(directory.by_secret(&created.secret, 2).is_some());
        assert!(directory.by_secret("cpt_sec_wrong", 2).is_none());

        drop(store);
        let bytes = std::fs::read(dir.path().join("s.db")).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&created.secret));
    }
}
