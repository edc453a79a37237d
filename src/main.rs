//! The `caputchin-forwarder` binary: parses the command line, sets up logging, and calls the
//! library. `serve` is the default command.

use std::io::{BufRead as _, Write as _};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use caputchin_forwarder::app::{Application, Dependencies, Services};
use caputchin_forwarder::clock::{Clock as _, SystemClock};
use caputchin_forwarder::config::{LogFormat, Settings, SettingsArgs};
use caputchin_forwarder::{accounts, sites, store};
use clap::{Parser, Subcommand};
use serde_json::json;

/// A self-hostable, Caputchin-compatible hosted form forwarder.
///
/// Every setting is read from its environment variable (also from a `.env` file in the working
/// directory) or from the flag of the same name; flags win. Logs go to standard error, filtered by
/// RUST_LOG (default `info`; e.g. `RUST_LOG=caputchin_forwarder=debug,actix_web=warn`), written
/// as CAPUTCHIN_LOG_FORMAT says.
#[derive(Parser)]
#[command(name = "caputchin-forwarder", version, about, long_about)]
struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the forwarder, the Cap endpoints, siteverify and the dashboard (the default).
    Serve,
    /// Manage accounts.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage sites.
    #[command(subcommand)]
    Site(SiteCommand),
    /// Apply database migrations and exit.
    Migrate,
    /// Copy the database while servers use it: a consistent snapshot, checked with
    /// `PRAGMA integrity_check`, written beside PATH and renamed into place (mode 0600).
    Backup {
        /// Where the copy goes; its folder must exist.
        #[arg(long)]
        to: std::path::PathBuf,
        /// Replace PATH when it exists.
        #[arg(long)]
        force: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account.
    Create {
        /// Login email.
        #[arg(long)]
        email: String,
        /// Password (prefer --password-stdin: arguments are visible to other users).
        #[arg(
            long,
            conflicts_with = "password_stdin",
            required_unless_present = "password_stdin"
        )]
        password: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SiteCommand {
    /// Create a site; prints its key, its secret (shown once), forwarder URL and Cap endpoint.
    Create {
        /// Email of the owning account.
        #[arg(long)]
        account: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Webhook URL (http or https, no user-info, at most 2048 bytes).
        #[arg(long)]
        webhook: String,
        /// Where visitors go after a successful post [default: a built-in thank-you page].
        #[arg(long)]
        redirect: Option<String>,
        /// An allowed origin such as https://www.example.com (repeatable) [default: any].
        #[arg(long = "origin")]
        origins: Vec<String>,
        /// Proof-of-work challenges per verification, 1 to 500.
        #[arg(long)]
        challenges: Option<u16>,
        /// Proof-of-work difficulty in hex digits, 1..=8.
        #[arg(long)]
        difficulty: Option<u8>,
        /// Create the site with forwarding disabled.
        #[arg(long)]
        disabled: bool,
        #[command(flatten)]
        verifier: VerifierArgs,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Change a site's settings; options not given keep their values.
    Edit {
        /// The site's public key (cpt_pub_…).
        site_key: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Webhook URL.
        #[arg(long)]
        webhook: Option<String>,
        /// Redirect URL (empty for the built-in thank-you page).
        #[arg(long)]
        redirect: Option<String>,
        /// Replace the allowed origins (repeatable; `--origin ''` clears them).
        #[arg(long = "origin")]
        origins: Option<Vec<String>>,
        /// Proof-of-work challenges per verification, 1 to 500.
        #[arg(long)]
        challenges: Option<u16>,
        /// Proof-of-work difficulty in hex digits, 1..=8.
        #[arg(long)]
        difficulty: Option<u8>,
        /// Enable forwarding.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Disable forwarding.
        #[arg(long)]
        disable: bool,
        #[command(flatten)]
        verifier: VerifierArgs,
    },
    /// Send a Test delivery (the dashboard's button): the synthetic envelope through the same
    /// delivery code, SSRF rules and timeout as a real submission.
    Test {
        /// The site's public key (cpt_pub_…).
        site_key: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print a site's statistics (the dashboard's tiles, same query): delivered, failed, rejected
    /// by reason, failures by category, success rate, p50/p95 latency; tests counted apart.
    Stats {
        /// The site's public key (cpt_pub_…).
        site_key: String,
        /// today, yesterday, 7d, 28d or all.
        #[arg(long, default_value = "7d")]
        range: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Replace a site's secret; prints the new one (shown once). The old one fails siteverify
    /// at once on every server.
    RotateSecret {
        /// The site's public key (cpt_pub_…).
        site_key: String,
        /// How long the current secret keeps verifying beside the new one: none, 1h or 24h.
        #[arg(long, default_value = "none", value_parser = parse_grace)]
        grace: sites::RotationGrace,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Delete a site and its records; its key answers unknown-site at once on every server.
    Delete {
        /// The site's public key (cpt_pub_…).
        site_key: String,
        /// Confirm the deletion (required).
        #[arg(long)]
        yes: bool,
    },
    /// List sites (webhook URLs masked).
    List {
        /// Only this account's sites.
        #[arg(long)]
        account: Option<String>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// The verifier options shared by `site create` and `site edit` (SPEC §8).
#[derive(clap::Args)]
struct VerifierArgs {
    /// Who verifies submissions: builtin (default), caputchin, turnstile, hcaptcha, recaptcha.
    #[arg(long)]
    verifier: Option<String>,
    /// The remote verifier's secret (stored encrypted; prefer --verifier-secret-stdin).
    #[arg(long, conflicts_with = "verifier_secret_stdin")]
    verifier_secret: Option<String>,
    /// Read the remote verifier's secret from the first line of standard input.
    #[arg(long)]
    verifier_secret_stdin: bool,
    /// The verifier's siteverify URL [default: the provider's public endpoint].
    #[arg(long)]
    verifier_url: Option<String>,
    /// hCaptcha's site key, sent with each verification.
    #[arg(long)]
    verifier_sitekey: Option<String>,
}

impl VerifierArgs {
    /// The secret given, sealed with the server key.
    fn sealed_secret(
        &self,
        sealer: &caputchin_forwarder::keys::Sealer,
    ) -> anyhow::Result<Option<Vec<u8>>> {
        let secret = match (&self.verifier_secret, self.verifier_secret_stdin) {
            (Some(s), _) => Some(s.trim().to_owned()),
            (None, true) => Some(read_line()?),
            (None, false) => None,
        };
        Ok(secret.filter(|s| !s.is_empty()).map(|s| sealer.seal(&s)))
    }
}

fn read_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn main() -> ExitCode {
    // A missing .env is normal; any other problem with it is worth knowing.
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    let settings = match Settings::from_args(&cli.settings) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(settings.log_format);
    if let Err(e) = dotenv
        && !e.not_found()
    {
        tracing::warn!(error = %e, "could not read .env");
    }
    let format = settings.log_format;
    match run(settings, cli.command.unwrap_or(Command::Serve)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // In JSON mode every line on standard error stays one JSON object.
            match format {
                LogFormat::Text => eprintln!("error: {e:#}"),
                LogFormat::Json => tracing::error!(error = format!("{e:#}"), "command failed"),
            }
            ExitCode::FAILURE
        }
    }
}

/// Parses `--grace`.
fn parse_grace(raw: &str) -> Result<sites::RotationGrace, String> {
    sites::RotationGrace::parse(raw).ok_or_else(|| format!("{raw:?}: use none, 1h or 24h"))
}

/// Logs go to standard error, filtered by `RUST_LOG` (default `info`), as text or one JSON
/// object per line (SPEC §9).
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

fn run(settings: Settings, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve => actix_web::rt::System::new().block_on(async move {
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "listening");
            tracing::info!("forwarder ready at {}", app.services().settings.public_url);
            if let Some(url) = app.setup_url() {
                // Printed, not logged: the link is a one-time credential for the first account.
                eprintln!(
                    "\nNo account exists yet. Create the first one here (one use):\n  {url}\n"
                );
            }
            app.run_until_stopped().await.context("server failed")
        }),
        Command::Migrate => {
            let db = store::Store::open(&settings.database)?;
            println!("database {} is up to date", db.path().display());
            Ok(())
        }
        Command::Backup { to, force, json } => {
            let report = store::backup::run(&settings.database, &to, force)?;
            if json {
                print_json(&serde_json::to_value(&report)?)?;
            } else {
                println!(
                    "backup written: {} ({} bytes, {} sites, integrity ok)",
                    report.path.display(),
                    report.bytes,
                    report.sites
                );
            }
            Ok(())
        }
        Command::Site(SiteCommand::RotateSecret {
            site_key,
            grace,
            json,
        }) => {
            let state = Services::open(settings, Dependencies::default())?;
            let site = cli_site(&state, &site_key)?;
            let now = SystemClock.now_ms();
            let Some(secret) =
                sites::rotate_secret(&state.store, site.account_id, &site.id, grace, now)?
            else {
                bail!("no site with key {}", site.key.as_str());
            };
            let until = grace.millis().map(|ms| now.saturating_add(ms));
            if json {
                print_json(&json!({
                    "site_key": site.key.as_str(),
                    "secret": secret,
                    "previous_secret_until": until,
                }))?;
            } else {
                println!("secret rotated for {}", site.key.as_str());
                println!("  secret:        {secret}  (shown once: store it now)");
                match until {
                    Some(ms) => println!(
                        "  the previous secret keeps working until {} UTC",
                        caputchin_forwarder::web::dashboard::utc_datetime(ms)
                    ),
                    None => println!("  the previous secret no longer works"),
                }
            }
            Ok(())
        }
        Command::Site(SiteCommand::Delete { site_key, yes }) => {
            if !yes {
                bail!(
                    "deleting {} removes the site and its statistics for good: give --yes to confirm",
                    site_key.trim()
                );
            }
            let state = Services::open(settings, Dependencies::default())?;
            let site = cli_site(&state, &site_key)?;
            if !sites::delete_site(&state.store, site.account_id, &site.id)? {
                bail!("no site with key {}", site.key.as_str());
            }
            println!("site {} deleted", site.key.as_str());
            Ok(())
        }
        Command::Account(AccountCommand::Create {
            email,
            password,
            password_stdin,
            json,
        }) => {
            let password = match password {
                Some(p) => p,
                None if password_stdin => {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .context("reading the password from standard input")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
                None => bail!("give --password or --password-stdin"),
            };
            let state = Services::open(settings, Dependencies::default())?;
            let id =
                accounts::create_account(&state.store, &email, &password, SystemClock.now_ms())?;
            if json {
                print_json(&json!({"account_id": id, "email": email.trim()}))?;
            } else {
                println!("account created: {}", email.trim());
            }
            Ok(())
        }
        Command::Site(SiteCommand::Create {
            account,
            name,
            webhook,
            redirect,
            origins,
            challenges,
            difficulty,
            disabled,
            verifier,
            json,
        }) => {
            let state = Services::open(settings, Dependencies::default())?;
            let input = sites::SiteInput {
                name,
                webhook_url: webhook,
                redirect_url: redirect,
                allowed_origins: origins,
                challenge_count: challenges,
                difficulty,
                enabled: !disabled,
                verifier: verifier.verifier.clone(),
                verifier_secret: verifier.sealed_secret(state.keys.sealer())?,
                verifier_url: verifier.verifier_url.clone(),
                verifier_sitekey: verifier.verifier_sitekey.clone(),
            };
            let created = sites::create_site(&state.store, &account, &input, SystemClock.now_ms())?;
            let key = created.site_key.as_str();
            let forwarder_url = state.settings.forwarder_url(key);
            let cap_endpoint = state.settings.cap_endpoint(key);
            if json {
                print_json(&json!({
                    "site_id": created.site_id,
                    "site_key": key,
                    "secret": created.secret,
                    "forwarder_url": forwarder_url,
                    "cap_endpoint": cap_endpoint,
                }))?;
            } else {
                println!("site created");
                println!("  site id:       {}", created.site_id);
                println!("  site key:      {key}");
                println!(
                    "  secret:        {}  (shown once: store it now)",
                    created.secret
                );
                println!("  forwarder URL: {forwarder_url}");
                println!("  Cap endpoint:  {cap_endpoint}");
            }
            Ok(())
        }
        Command::Site(SiteCommand::Edit {
            site_key,
            name,
            webhook,
            redirect,
            origins,
            challenges,
            difficulty,
            enable,
            disable,
            verifier,
        }) => {
            let state = Services::open(settings, Dependencies::default())?;
            let site = cli_site(&state, &site_key)?;
            let current = &site.settings;
            let input = sites::SiteInput {
                name: name.unwrap_or_else(|| current.name.clone()),
                webhook_url: webhook.unwrap_or_else(|| current.webhook_url.expose().to_owned()),
                redirect_url: redirect
                    .or_else(|| current.redirect_url.as_ref().map(|u| u.to_string())),
                allowed_origins: origins.unwrap_or_else(|| current.allowed_origins.clone()),
                challenge_count: Some(challenges.unwrap_or(current.challenge.count)),
                difficulty: Some(difficulty.unwrap_or(current.challenge.difficulty)),
                enabled: if enable {
                    true
                } else {
                    !disable && current.enabled
                },
                verifier: Some(
                    verifier
                        .verifier
                        .clone()
                        .unwrap_or_else(|| current.verifier.as_str().to_owned()),
                ),
                verifier_secret: verifier.sealed_secret(state.keys.sealer())?,
                verifier_url: verifier
                    .verifier_url
                    .clone()
                    .or_else(|| current.verifier_url.as_ref().map(|u| u.expose().to_owned())),
                verifier_sitekey: verifier
                    .verifier_sitekey
                    .clone()
                    .or_else(|| current.verifier_sitekey.clone()),
            };
            sites::update_site(
                &state.store,
                site.account_id,
                &site.id,
                &input,
                SystemClock.now_ms(),
            )?;
            println!("site {} updated", site.key.as_str());
            Ok(())
        }
        Command::Site(SiteCommand::Test { site_key, json }) => {
            let state = Services::open(settings, Dependencies::default())?;
            let site = cli_site(&state, &site_key)?;
            let report = actix_web::rt::System::new().block_on(async {
                let client = state.deliverer.client();
                caputchin_forwarder::test_delivery::run(&state, &client, &site).await
            });
            if json {
                print_json(&serde_json::to_value(&report)?)?;
            } else {
                println!("outcome:    {}", report.outcome.as_str());
                if let Some(status) = report.http_status {
                    println!("HTTP:       {status}");
                }
                println!("latency:    {} ms", report.latency_ms);
                let resolved: Vec<String> =
                    report.resolved.iter().map(|ip| ip.to_string()).collect();
                println!(
                    "resolved:   {}",
                    if resolved.is_empty() {
                        "-".into()
                    } else {
                        resolved.join(", ")
                    }
                );
                println!("detail:     {}", report.detail);
                if let Some(body) = report.response_body.as_deref().filter(|b| !b.is_empty()) {
                    println!("response:   {body}");
                }
            }
            if report.outcome != caputchin_forwarder::delivery::Outcome::Delivered {
                bail!("test delivery failed: {}", report.outcome.as_str());
            }
            Ok(())
        }
        Command::Site(SiteCommand::Stats {
            site_key,
            range,
            json,
        }) => {
            let Some(range) = caputchin_forwarder::stats::Range::parse(&range) else {
                bail!("unknown range {range:?}: use today, yesterday, 7d, 28d or all");
            };
            let state = Services::open(settings, Dependencies::default())?;
            let site = cli_site(&state, &site_key)?;
            let stats = caputchin_forwarder::stats::query(
                &state.store,
                caputchin_forwarder::stats::Scope::Site(&site.id),
                range,
                SystemClock.now_ms(),
            )?;
            let failures: serde_json::Map<String, serde_json::Value> = stats
                .failures_by_category
                .iter()
                .map(|(o, n)| (o.as_str().to_owned(), json!(n)))
                .collect();
            let rejected: serde_json::Map<String, serde_json::Value> = stats
                .rejected_by_reason
                .iter()
                .map(|(r, n)| (r.clone(), json!(n)))
                .collect();
            if json {
                print_json(&json!({
                    "site_key": site.key.as_str(),
                    "range": range.as_str(),
                    "start_ms": stats.start_ms,
                    "end_ms": stats.end_ms,
                    "delivered": stats.delivered,
                    "failed": stats.failed,
                    "success_rate": stats.success_rate,
                    "p50_ms": stats.p50_ms,
                    "p95_ms": stats.p95_ms,
                    "rejected": stats.rejected,
                    "rejected_by_reason": rejected,
                    "failures_by_category": failures,
                    "test_deliveries": stats.test_deliveries,
                }))?;
            } else {
                let or_dash =
                    |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v} ms"));
                println!("{} · {} (UTC)", site.settings.name, range.label());
                println!("  delivered      {}", stats.delivered);
                println!("  failed         {}", stats.failed);
                println!(
                    "  success rate   {}",
                    stats
                        .success_rate
                        .map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0))
                );
                println!("  latency p50    {}", or_dash(stats.p50_ms));
                println!("  latency p95    {}", or_dash(stats.p95_ms));
                println!("  rejected       {}", stats.rejected);
                for (reason, n) in &stats.rejected_by_reason {
                    println!("    {reason:<24} {n}");
                }
                println!("  failures by category");
                for (outcome, n) in &stats.failures_by_category {
                    println!("    {:<24} {n}", outcome.as_str());
                }
                println!("  test deliveries (apart) {}", stats.test_deliveries);
                println!("  challenges issued {}", stats.challenges_issued);
                println!("  challenges solved {}", stats.challenges_solved);
            }
            Ok(())
        }
        Command::Site(SiteCommand::List { account, json }) => {
            let state = Services::open(settings, Dependencies::default())?;
            let listed = sites::list_sites(&state.store, account.as_deref())?;
            if json {
                let rows: Vec<_> = listed
                    .iter()
                    .map(|s| {
                        json!({
                            "site_id": s.id,
                            "site_key": s.key.as_str(),
                            "name": s.settings.name,
                            "account": s.account_email,
                            "enabled": s.settings.enabled,
                            "webhook_url": s.settings.webhook_url.masked(),
                            "forwarder_url": state.settings.forwarder_url(s.key.as_str()),
                        })
                    })
                    .collect();
                print_json(&json!({ "sites": rows }))?;
            } else if listed.is_empty() {
                println!("no sites");
            } else {
                println!(
                    "{:<32}  {:<8}  {:<24}  {:<28}  WEBHOOK",
                    "SITE KEY", "ENABLED", "NAME", "ACCOUNT"
                );
                for s in &listed {
                    println!(
                        "{:<32}  {:<8}  {:<24}  {:<28}  {}",
                        s.key.as_str(),
                        if s.settings.enabled { "yes" } else { "no" },
                        s.settings.name,
                        s.account_email,
                        s.settings.webhook_url.masked()
                    );
                }
            }
            Ok(())
        }
    }
}

/// The site with this key, as the CLI names it.
fn cli_site(state: &Services, site_key: &str) -> anyhow::Result<std::sync::Arc<sites::Site>> {
    state
        .sites
        .get(site_key.trim())
        .with_context(|| format!("no site with key {}", site_key.trim()))
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
