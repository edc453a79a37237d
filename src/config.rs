//! Settings: one typed struct read from the environment, an optional `.env` file and command-line
//! flags, validated once at start (SPEC §7). Environment variable names are part of the contract.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use ipnet::IpNet;

use crate::relay::{MailSettings, SmtpRelay, parse_sender};
use crate::tls::ExtraRoots;

/// Longest field name accepted in a form post, in bytes (SPEC §3).
pub const MAX_FIELD_NAME_BYTES: usize = 256;

/// The raw settings as given on the command line or in the environment, before validation.
///
/// Every value is kept as text so that a bad one is reported with the name of its environment
/// variable, whichever way it was given.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SettingsArgs {
    /// Listen address.
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_BIND",
        default_value = "127.0.0.1:8080"
    )]
    pub bind: String,

    /// SQLite database file; it and its folder are created when missing.
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_DATABASE",
        default_value = "./data/forwarder.db"
    )]
    pub database: String,

    /// Base URL shown in snippets and forwarder URLs [default: http://{bind}].
    #[arg(long, global = true, env = "CAPUTCHIN_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Total webhook timeout in milliseconds, 1..=10000.
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_DELIVERY_TIMEOUT_MS",
        default_value = "5000"
    )]
    pub delivery_timeout_ms: String,

    /// Comma-separated CIDRs exempted from egress blocking (logged loudly at start).
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_EGRESS_ALLOW",
        default_value = ""
    )]
    pub egress_allow: String,

    /// Token MAC key, base64, at least 32 bytes [default: generated and kept in the database].
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_SERVER_KEY",
        hide_env_values = true
    )]
    pub server_key: Option<String>,

    /// Create this account at start if it does not exist (with --bootstrap-password).
    #[arg(long, global = true, env = "CAPUTCHIN_BOOTSTRAP_EMAIL")]
    pub bootstrap_email: Option<String>,

    /// Password for the bootstrap account.
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_BOOTSTRAP_PASSWORD",
        hide_env_values = true
    )]
    pub bootstrap_password: Option<String>,

    /// `open` lets anyone create an account from the dashboard; `closed` does not.
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_SIGNUP",
        default_value = "closed"
    )]
    pub signup: String,

    /// Form posts per client IP per site per minute.
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_RATE_LIMIT_PER_MIN",
        default_value = "60"
    )]
    pub rate_limit_per_min: String,

    /// Cap challenges per client IP per site per minute.
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_CHALLENGE_RATE_LIMIT_PER_MIN",
        default_value = "600"
    )]
    pub challenge_rate_limit_per_min: String,

    /// Cap redeems per client IP per site per minute.
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_REDEEM_RATE_LIMIT_PER_MIN",
        default_value = "600"
    )]
    pub redeem_rate_limit_per_min: String,

    /// Siteverify calls per client IP per site per minute (an unknown secret counts for one
    /// shared unknown site).
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_SITEVERIFY_RATE_LIMIT_PER_MIN",
        default_value = "600"
    )]
    pub siteverify_rate_limit_per_min: String,

    /// Management API requests per access token per minute.
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_API_RATE_LIMIT_PER_MIN",
        default_value = "600"
    )]
    pub api_rate_limit_per_min: String,

    /// Longest time a request body may take to arrive after its headers, in milliseconds; a
    /// slower one is answered 408 and its connection closed.
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_BODY_TIMEOUT_MS",
        default_value = "10000"
    )]
    pub body_timeout_ms: String,

    /// Largest accepted form body in bytes.
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_MAX_BODY_BYTES",
        default_value = "65536"
    )]
    pub max_body_bytes: String,

    /// Most fields accepted in one form post.
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_MAX_FIELDS",
        default_value = "100"
    )]
    pub max_fields: String,

    /// Comma-separated CIDRs of reverse proxies whose `Forwarded` / `X-Forwarded-For` headers
    /// name the client, read right to left past trusted hops [default: none; the TCP peer is the
    /// client].
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_TRUSTED_PROXIES",
        default_value = ""
    )]
    pub trusted_proxies: String,

    /// Listen address of the Prometheus `GET /metrics` listener [default: off].
    #[arg(long, global = true, env = "CAPUTCHIN_METRICS_BIND")]
    pub metrics_bind: Option<String>,

    /// The SMTP relay for the email destination: `smtp://user:password@host:587` (STARTTLS
    /// required), `smtp://host:25?tls=none` (no TLS) or `smtps://user:password@host:465`
    /// (implicit TLS) [default: none; sites cannot have email addresses].
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_SMTP_URL",
        hide_env_values = true
    )]
    pub smtp_url: Option<String>,

    /// The sender of submission emails, `Name <address>`; required with CAPUTCHIN_SMTP_URL.
    #[arg(long, global = true, env = "CAPUTCHIN_MAIL_FROM")]
    pub mail_from: Option<String>,

    /// A PEM file of extra trust anchors for TLS to the SMTP relay and to webhooks, beside the
    /// web PKI roots (for a private CA) [default: none].
    #[arg(long, global = true, env = "CAPUTCHIN_TLS_EXTRA_ROOTS")]
    pub tls_extra_roots: Option<String>,

    /// Log format: `text` or `json` (one JSON object per line). The filter is `RUST_LOG`
    /// (default `info`, e.g. `RUST_LOG=caputchin_forwarder=debug,actix_web=warn`).
    #[arg(
        long,
        global = true,
        env = "CAPUTCHIN_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: String,
}

/// How log lines are written (SPEC §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target` and the event's fields.
    Json,
}

impl LogFormat {
    /// Parses `CAPUTCHIN_LOG_FORMAT`.
    pub fn parse(raw: &str) -> Result<LogFormat, SettingsError> {
        match raw.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(bad(
                "CAPUTCHIN_LOG_FORMAT",
                format!("expected `text` or `json`, got {other:?}"),
            )),
        }
    }
}

/// Whether visitors may create accounts from the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signup {
    /// Only the CLI, the bootstrap settings and the setup link create accounts.
    Closed,
    /// Anyone may sign up.
    Open,
}

/// The validated settings. A value of this type is always usable as it is.
#[derive(Clone)]
pub struct Settings {
    /// Listen address.
    pub bind: SocketAddr,
    /// SQLite database file.
    pub database: PathBuf,
    /// Base URL without a trailing slash, e.g. `https://forms.example.com`.
    pub public_url: String,
    /// Total webhook timeout.
    pub delivery_timeout: Duration,
    /// Networks exempted from egress blocking.
    pub egress_allow: Vec<IpNet>,
    /// A configured server key; `None` means the one kept in the database.
    pub server_key: Option<Vec<u8>>,
    /// Account created at start when missing: email and password.
    pub bootstrap: Option<(String, String)>,
    /// Whether sign-up is open.
    pub signup: Signup,
    /// Form posts per client IP per site per minute.
    pub rate_limit_per_min: u32,
    /// Cap challenges per client IP per site per minute.
    pub challenge_rate_limit_per_min: u32,
    /// Cap redeems per client IP per site per minute.
    pub redeem_rate_limit_per_min: u32,
    /// Siteverify calls per client IP per site per minute.
    pub siteverify_rate_limit_per_min: u32,
    /// Management API requests per access token per minute.
    pub api_rate_limit_per_min: u32,
    /// Longest time a request body may take to arrive after its headers.
    pub body_timeout: Duration,
    /// Largest accepted form body in bytes.
    pub max_body_bytes: usize,
    /// Most fields accepted in one form post.
    pub max_fields: usize,
    /// Networks of reverse proxies trusted to name the client (SPEC §9).
    pub trusted_proxies: Vec<IpNet>,
    /// Where the metrics listener binds; `None` when it is off.
    pub metrics_bind: Option<SocketAddr>,
    /// How log lines are written.
    pub log_format: LogFormat,
    /// The email destination's relay and sender; `None` when email is off.
    pub mail: Option<MailSettings>,
    /// Extra trust anchors for outgoing TLS.
    pub tls_extra_roots: Option<ExtraRoots>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The server key and bootstrap password never reach logs.
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("database", &self.database)
            .field("public_url", &self.public_url)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("egress_allow", &self.egress_allow)
            .field(
                "server_key",
                &self.server_key.as_ref().map(|_| "<configured>"),
            )
            .field("bootstrap", &self.bootstrap.as_ref().map(|(e, _)| e))
            .field("signup", &self.signup)
            .field("rate_limit_per_min", &self.rate_limit_per_min)
            .field(
                "challenge_rate_limit_per_min",
                &self.challenge_rate_limit_per_min,
            )
            .field("redeem_rate_limit_per_min", &self.redeem_rate_limit_per_min)
            .field(
                "siteverify_rate_limit_per_min",
                &self.siteverify_rate_limit_per_min,
            )
            .field("api_rate_limit_per_min", &self.api_rate_limit_per_min)
            .field("body_timeout", &self.body_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_fields", &self.max_fields)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_bind", &self.metrics_bind)
            .field("log_format", &self.log_format)
            // The relay's Debug leaves its password out.
            .field("mail", &self.mail)
            .field("tls_extra_roots", &self.tls_extra_roots)
            .finish()
    }
}

/// A setting that cannot be used, named by its environment variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid {variable}: {message}")]
pub struct SettingsError {
    /// The environment variable that carries the bad value.
    pub variable: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn bad(variable: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        variable,
        message: message.into(),
    }
}

fn parse_int<T>(
    variable: &'static str,
    raw: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, SettingsError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    let value: T = raw.trim().parse().map_err(|_| {
        bad(
            variable,
            format!(
                "expected an integer in {}..={}, got {raw:?}",
                range.start(),
                range.end()
            ),
        )
    })?;
    if !range.contains(&value) {
        return Err(bad(
            variable,
            format!(
                "must be in {}..={}, got {value}",
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(value)
}

/// Parses a comma-separated list of CIDRs; a bare address counts as a single-host network. An
/// IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) is read as the IPv4 network it maps, since
/// addresses are compared in their canonical form.
pub fn parse_cidr_list(raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map(|net| canonical_net(net.trunc()))
                .map_err(|_| format!("{s:?} is not a CIDR such as 10.0.0.0/8 or ::1/128"))
        })
        .collect()
}

fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        other => other,
    }
}

/// The relay and sender: both or neither.
fn parse_mail(args: &SettingsArgs) -> Result<Option<MailSettings>, SettingsError> {
    let given = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    match (given(&args.smtp_url), given(&args.mail_from)) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(bad(
            "CAPUTCHIN_MAIL_FROM",
            "must be set when CAPUTCHIN_SMTP_URL is, e.g. `Forms <forms@example.com>`",
        )),
        (None, Some(_)) => Err(bad(
            "CAPUTCHIN_SMTP_URL",
            "must be set when CAPUTCHIN_MAIL_FROM is: the relay that sends the emails",
        )),
        (Some(url), Some(from)) => Ok(Some(MailSettings {
            relay: SmtpRelay::parse(&url).map_err(|m| bad("CAPUTCHIN_SMTP_URL", m))?,
            from: parse_sender(&from).map_err(|m| bad("CAPUTCHIN_MAIL_FROM", m))?,
        })),
    }
}

impl Settings {
    /// Validates raw settings; the first bad value is reported with its variable's name.
    pub fn from_args(args: &SettingsArgs) -> Result<Settings, SettingsError> {
        let bind: SocketAddr = args.bind.trim().parse().map_err(|_| {
            bad(
                "CAPUTCHIN_BIND",
                format!(
                    "expected an address such as 127.0.0.1:8080, got {:?}",
                    args.bind
                ),
            )
        })?;

        let database = args.database.trim();
        if database.is_empty() {
            return Err(bad("CAPUTCHIN_DATABASE", "must not be empty"));
        }

        let public_url = match args.public_url.as_deref().map(str::trim) {
            None | Some("") => format!("http://{bind}"),
            Some(raw) => {
                let url = url::Url::parse(raw).map_err(|e| {
                    bad("CAPUTCHIN_PUBLIC_URL", format!("not an absolute URL ({e})"))
                })?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(bad(
                        "CAPUTCHIN_PUBLIC_URL",
                        "must be an http or https URL with a host",
                    ));
                }
                if url.query().is_some() || url.fragment().is_some() {
                    return Err(bad(
                        "CAPUTCHIN_PUBLIC_URL",
                        "must not have a query or fragment",
                    ));
                }
                url.as_str().trim_end_matches('/').to_owned()
            }
        };

        let timeout_ms: u64 = parse_int(
            "CAPUTCHIN_DELIVERY_TIMEOUT_MS",
            &args.delivery_timeout_ms,
            1..=10_000,
        )?;

        let egress_allow =
            parse_cidr_list(&args.egress_allow).map_err(|m| bad("CAPUTCHIN_EGRESS_ALLOW", m))?;

        let server_key = match args.server_key.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => {
                let key = base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw))
                    .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw))
                    .map_err(|_| bad("CAPUTCHIN_SERVER_KEY", "is not valid base64"))?;
                if key.len() < 32 {
                    return Err(bad(
                        "CAPUTCHIN_SERVER_KEY",
                        format!("must decode to at least 32 bytes, got {}", key.len()),
                    ));
                }
                Some(key)
            }
        };

        let email = args
            .bootstrap_email
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let password = args.bootstrap_password.as_deref().filter(|s| !s.is_empty());
        let bootstrap = match (email, password) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(bad(
                    "CAPUTCHIN_BOOTSTRAP_PASSWORD",
                    "must be set when CAPUTCHIN_BOOTSTRAP_EMAIL is",
                ));
            }
            (None, Some(_)) => {
                return Err(bad(
                    "CAPUTCHIN_BOOTSTRAP_EMAIL",
                    "must be set when CAPUTCHIN_BOOTSTRAP_PASSWORD is",
                ));
            }
            (Some(e), Some(p)) => {
                crate::credentials::Email::parse(e)
                    .map_err(|m| bad("CAPUTCHIN_BOOTSTRAP_EMAIL", m.to_string()))?;
                crate::credentials::check_password(p)
                    .map_err(|m| bad("CAPUTCHIN_BOOTSTRAP_PASSWORD", m.to_string()))?;
                Some((e.to_owned(), p.to_owned()))
            }
        };

        let signup = match args.signup.trim() {
            "closed" => Signup::Closed,
            "open" => Signup::Open,
            other => {
                return Err(bad(
                    "CAPUTCHIN_SIGNUP",
                    format!("expected `open` or `closed`, got {other:?}"),
                ));
            }
        };

        Ok(Settings {
            bind,
            database: PathBuf::from(database),
            public_url,
            delivery_timeout: Duration::from_millis(timeout_ms),
            egress_allow,
            server_key,
            bootstrap,
            signup,
            rate_limit_per_min: parse_int(
                "CAPUTCHIN_RATE_LIMIT_PER_MIN",
                &args.rate_limit_per_min,
                1..=1_000_000,
            )?,
            challenge_rate_limit_per_min: parse_int(
                "CAPUTCHIN_CHALLENGE_RATE_LIMIT_PER_MIN",
                &args.challenge_rate_limit_per_min,
                1..=1_000_000,
            )?,
            redeem_rate_limit_per_min: parse_int(
                "CAPUTCHIN_REDEEM_RATE_LIMIT_PER_MIN",
                &args.redeem_rate_limit_per_min,
                1..=1_000_000,
            )?,
            siteverify_rate_limit_per_min: parse_int(
                "CAPUTCHIN_SITEVERIFY_RATE_LIMIT_PER_MIN",
                &args.siteverify_rate_limit_per_min,
                1..=1_000_000,
            )?,
            api_rate_limit_per_min: parse_int(
                "CAPUTCHIN_API_RATE_LIMIT_PER_MIN",
                &args.api_rate_limit_per_min,
                1..=1_000_000,
            )?,
            body_timeout: Duration::from_millis(parse_int(
                "CAPUTCHIN_BODY_TIMEOUT_MS",
                &args.body_timeout_ms,
                100..=600_000,
            )?),
            max_body_bytes: parse_int(
                "CAPUTCHIN_MAX_BODY_BYTES",
                &args.max_body_bytes,
                1024..=16 * 1024 * 1024,
            )?,
            max_fields: parse_int("CAPUTCHIN_MAX_FIELDS", &args.max_fields, 1..=10_000)?,
            trusted_proxies: parse_cidr_list(&args.trusted_proxies)
                .map_err(|m| bad("CAPUTCHIN_TRUSTED_PROXIES", m))?,
            metrics_bind: match args.metrics_bind.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(raw) => Some(raw.parse().map_err(|_| {
                    bad(
                        "CAPUTCHIN_METRICS_BIND",
                        format!("expected an address such as 127.0.0.1:9464, got {raw:?}"),
                    )
                })?),
            },
            log_format: LogFormat::parse(&args.log_format)?,
            mail: parse_mail(args)?,
            tls_extra_roots: match args.tls_extra_roots.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(path) => Some(
                    ExtraRoots::read(std::path::Path::new(path))
                        .map_err(|m| bad("CAPUTCHIN_TLS_EXTRA_ROOTS", m))?,
                ),
            },
        })
    }

    /// Settings for tests and embedding: every default, listening on an ephemeral loopback port,
    /// with this database file.
    pub fn defaults_with_database(database: impl Into<PathBuf>) -> Settings {
        Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            database: database.into(),
            public_url: "http://127.0.0.1:0".into(),
            delivery_timeout: Duration::from_millis(5000),
            egress_allow: Vec::new(),
            server_key: None,
            bootstrap: None,
            signup: Signup::Closed,
            rate_limit_per_min: 60,
            challenge_rate_limit_per_min: 600,
            redeem_rate_limit_per_min: 600,
            siteverify_rate_limit_per_min: 600,
            api_rate_limit_per_min: 600,
            body_timeout: Duration::from_millis(10_000),
            max_body_bytes: 65536,
            max_fields: 100,
            trusted_proxies: Vec::new(),
            metrics_bind: None,
            log_format: LogFormat::Text,
            mail: None,
            tls_extra_roots: None,
        }
    }

    /// The forwarder URL of a site: where its form posts.
    pub fn forwarder_url(&self, site_key: &str) -> String {
        format!("{}/f/{site_key}", self.public_url)
    }

    /// The Cap endpoint of a site (always ending in `/`, CAP-PROTOCOL §3).
    pub fn cap_endpoint(&self, site_key: &str) -> String {
        format!("{}/v1/cap/{site_key}/", self.public_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> SettingsArgs {
        SettingsArgs {
            bind: "127.0.0.1:8080".into(),
            database: "./data/forwarder.db".into(),
            delivery_timeout_ms: "5000".into(),
            signup: "closed".into(),
            rate_limit_per_min: "60".into(),
            challenge_rate_limit_per_min: "600".into(),
            redeem_rate_limit_per_min: "600".into(),
            siteverify_rate_limit_per_min: "600".into(),
            api_rate_limit_per_min: "600".into(),
            body_timeout_ms: "10000".into(),
            max_body_bytes: "65536".into(),
            max_fields: "100".into(),
            log_format: "text".into(),
            ..SettingsArgs::default()
        }
    }

    #[test]
    fn defaults_validate_and_derive_the_public_url_from_bind() {
        let s = Settings::from_args(&args()).unwrap();
        assert_eq!(s.public_url, "http://127.0.0.1:8080");
        assert_eq!(s.delivery_timeout, Duration::from_millis(5000));
        assert!(s.egress_allow.is_empty());
        let _ = Settings::defaults_with_database("x.db");
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        type Mutation = fn(&mut SettingsArgs);
        let cases: Vec<(Mutation, &str)> = vec![
            (|a| a.bind = "nope".into(), "CAPUTCHIN_BIND"),
            (
                |a| a.delivery_timeout_ms = "0".into(),
                "CAPUTCHIN_DELIVERY_TIMEOUT_MS",
            ),
            (
                |a| a.delivery_timeout_ms = "10001".into(),
                "CAPUTCHIN_DELIVERY_TIMEOUT_MS",
            ),
            (
                |a| a.egress_allow = "10.0.0.0/33".into(),
                "CAPUTCHIN_EGRESS_ALLOW",
            ),
            (
                |a| a.server_key = Some("c2hvcnQ=".into()),
                "CAPUTCHIN_SERVER_KEY",
            ),
            (|a| a.signup = "maybe".into(), "CAPUTCHIN_SIGNUP"),
            (
                |a| a.public_url = Some("ftp://x".into()),
                "CAPUTCHIN_PUBLIC_URL",
            ),
            (
                |a| a.rate_limit_per_min = "-1".into(),
                "CAPUTCHIN_RATE_LIMIT_PER_MIN",
            ),
            (
                |a| a.challenge_rate_limit_per_min = "0".into(),
                "CAPUTCHIN_CHALLENGE_RATE_LIMIT_PER_MIN",
            ),
            (
                |a| a.redeem_rate_limit_per_min = "many".into(),
                "CAPUTCHIN_REDEEM_RATE_LIMIT_PER_MIN",
            ),
            (
                |a| a.siteverify_rate_limit_per_min = "".into(),
                "CAPUTCHIN_SITEVERIFY_RATE_LIMIT_PER_MIN",
            ),
            (
                |a| a.api_rate_limit_per_min = "0".into(),
                "CAPUTCHIN_API_RATE_LIMIT_PER_MIN",
            ),
            (
                |a| a.body_timeout_ms = "50".into(),
                "CAPUTCHIN_BODY_TIMEOUT_MS",
            ),
            (|a| a.max_fields = "0".into(), "CAPUTCHIN_MAX_FIELDS"),
            (
                |a| a.max_body_bytes = "big".into(),
                "CAPUTCHIN_MAX_BODY_BYTES",
            ),
            (
                |a| a.bootstrap_email = Some("a@b.c".into()),
                "CAPUTCHIN_BOOTSTRAP_PASSWORD",
            ),
            (
                |a| a.trusted_proxies = "10.0.0.0/8, nonsense".into(),
                "CAPUTCHIN_TRUSTED_PROXIES",
            ),
            (
                |a| a.trusted_proxies = "192.168.0.0/33".into(),
                "CAPUTCHIN_TRUSTED_PROXIES",
            ),
            (
                |a| a.metrics_bind = Some("localhost".into()),
                "CAPUTCHIN_METRICS_BIND",
            ),
            (
                |a| a.metrics_bind = Some("127.0.0.1:99999".into()),
                "CAPUTCHIN_METRICS_BIND",
            ),
            (|a| a.log_format = "xml".into(), "CAPUTCHIN_LOG_FORMAT"),
            (|a| a.log_format = "JSON ".into(), "CAPUTCHIN_LOG_FORMAT"),
            (
                |a| a.smtp_url = Some("smtp://mail.example.com".into()),
                "CAPUTCHIN_MAIL_FROM",
            ),
            (
                |a| a.mail_from = Some("Forms <forms@example.com>".into()),
                "CAPUTCHIN_SMTP_URL",
            ),
            (
                |a| {
                    a.smtp_url = Some("ftp://mail.example.com".into());
                    a.mail_from = Some("forms@example.com".into());
                },
                "CAPUTCHIN_SMTP_URL",
            ),
            (
                |a| {
                    a.smtp_url = Some("smtp://mail.example.com".into());
                    a.mail_from = Some("Forms <not an address>".into());
                },
                "CAPUTCHIN_MAIL_FROM",
            ),
            (
                |a| a.tls_extra_roots = Some("/nonexistent/roots.pem".into()),
                "CAPUTCHIN_TLS_EXTRA_ROOTS",
            ),
        ];
        for (mutate, variable) in cases {
            let mut a = args();
            mutate(&mut a);
            let err = Settings::from_args(&a).unwrap_err();
            assert_eq!(err.variable, variable);
            assert!(err.to_string().contains(variable));
        }
    }

    #[test]
    fn the_relay_and_sender_are_read_together_and_the_password_is_never_shown() {
        let mut a = args();
        a.smtp_url = Some(" smtps://forms:hunter2-secret@mail.example.com ".into());
        a.mail_from = Some("Forms <forms@example.com>".into());
        let s = Settings::from_args(&a).unwrap();
        let mail = s.mail.as_ref().unwrap();
        assert_eq!(mail.relay.host, "mail.example.com");
        assert_eq!(mail.relay.port, crate::relay::SUBMISSIONS_PORT);
        assert_eq!(mail.from.email.to_string(), "forms@example.com");
        assert!(!format!("{s:?}").contains("hunter2"), "{s:?}");

        a.smtp_url = Some("smtp://mail.example.com:2525/?password=hunter2".into());
        let err = Settings::from_args(&a).map(|_| ()).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let none = Settings::from_args(&args()).unwrap();
        assert!(none.mail.is_none());
        assert!(none.tls_extra_roots.is_none());
    }

    #[test]
    fn cidr_list_accepts_bare_addresses_and_spaces() {
        let nets = parse_cidr_list(" 127.0.0.0/8, ::1 ,10.1.2.3, ::ffff:10.0.0.0/104").unwrap();
        assert_eq!(nets.len(), 4);
        assert_eq!(
            nets[3].to_string(),
            "10.0.0.0/8",
            "IPv4-mapped networks are IPv4"
        );
        assert_eq!(nets[1].to_string(), "::1/128");
        assert_eq!(nets[2].to_string(), "10.1.2.3/32");
    }

    #[test]
    fn a_good_server_key_is_accepted() {
        let mut a = args();
        a.server_key = Some(base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
        assert_eq!(
            Settings::from_args(&a).unwrap().server_key.unwrap().len(),
            32
        );
    }
}
