//! `site …`: creating, changing, testing, inspecting, re-keying, deleting and listing sites, each
//! through the same library functions the dashboard uses. A site is named by its public key.

use std::fmt;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde::ser::{SerializeMap as _, SerializeStruct as _};
use serde::{Serialize, Serializer};

use crate::clock::{Clock as _, SystemClock};
use crate::config::Settings;
use crate::delivery::{Deliveries, Destination, Outcome, Report};
use crate::keys::Sealer;
use crate::sites::{self, RotationGrace, Site, SiteDirectory, SiteInput};
use crate::stats::{DestinationStats, PerDestination, Range, Scope, Stats};

/// The site commands.
#[derive(Subcommand)]
pub enum SiteCommand {
    /// Create a site; prints its key, its secret (shown once), forwarder URL and Cap endpoint.
    Create(Box<CreateArgs>),
    /// Change a site's settings; options not given keep their values.
    Edit(Box<EditArgs>),
    /// Send a Test delivery (the dashboard's button) to each of the site's destinations: the
    /// synthetic submission through the same delivery code, SSRF rules and timeout as a real one.
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
        grace: RotationGrace,
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

/// The options of `site create` (its help text is the variant's).
#[derive(Args)]
pub struct CreateArgs {
    /// Email of the owning account.
    #[arg(long)]
    account: String,
    /// Display name.
    #[arg(long)]
    name: String,
    /// Webhook URL (http or https, no user-info, at most 2048 bytes); a site needs a webhook,
    /// an email address, or both.
    #[arg(long)]
    webhook: Option<String>,
    /// An address that receives each submission by email (repeatable, at most 5; needs
    /// CAPUTCHIN_SMTP_URL and CAPUTCHIN_MAIL_FROM).
    #[arg(long = "email-to")]
    email_to: Vec<String>,
    /// Where visitors go after a successful post [default: a built-in thank-you page].
    #[arg(long)]
    redirect: Option<String>,
    /// An allowed origin such as https://www.example.com (repeatable) [default: any].
    // This text is `--help` output, where the URL stays bare.
    #[allow(rustdoc::bare_urls)]
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
}

/// The options of `site edit` (its help text is the variant's).
#[derive(Args)]
pub struct EditArgs {
    /// The site's public key (cpt_pub_…).
    site_key: String,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Webhook URL.
    #[arg(long, conflicts_with = "no_webhook")]
    webhook: Option<String>,
    /// Remove the webhook (the site keeps its email destination).
    #[arg(long)]
    no_webhook: bool,
    /// Replace the email addresses (repeatable, at most 5).
    #[arg(long = "email-to", conflicts_with = "no_email")]
    email_to: Option<Vec<String>>,
    /// Remove the email destination (the site keeps its webhook).
    #[arg(long)]
    no_email: bool,
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
    /// Switch the site's key off: challenges, form posts and siteverify are refused
    /// (`site-disabled`) until --enable-key; forwarding's switch and the destinations stay.
    #[arg(long, conflicts_with = "enable_key")]
    disable_key: bool,
    /// Switch the site's key back on.
    #[arg(long)]
    enable_key: bool,
    #[command(flatten)]
    verifier: VerifierArgs,
}

/// The verifier options shared by `site create` and `site edit` (SPEC §8).
#[derive(Args)]
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
    /// The secret given, sealed with the server key; an empty one counts as none.
    fn sealed_secret(&self, sealer: &Sealer) -> anyhow::Result<Option<Vec<u8>>> {
        let secret = match (&self.verifier_secret, self.verifier_secret_stdin) {
            (Some(s), _) => Some(s.trim().to_owned()),
            (None, true) => Some(super::read_line("standard input")?),
            (None, false) => None,
        };
        Ok(secret.filter(|s| !s.is_empty()).map(|s| sealer.seal(&s)))
    }
}

/// Parses `--grace`.
fn parse_grace(raw: &str) -> Result<RotationGrace, String> {
    RotationGrace::parse(raw).ok_or_else(|| format!("{raw:?}: use none, 1h or 24h"))
}

/// Carries out a site command and prints its report.
pub(super) fn run(settings: Settings, command: SiteCommand) -> anyhow::Result<()> {
    match command {
        SiteCommand::Create(args) => {
            let json = args.json;
            super::emit(&create(settings, *args)?, json)
        }
        SiteCommand::Edit(args) => super::emit(&edit(settings, *args)?, false),
        SiteCommand::Test { site_key, json } => {
            let report = test(settings, &site_key)?;
            // The report is printed either way: it says why a failed delivery failed.
            super::emit(&report, json)?;
            let failed: Vec<String> = report
                .0
                .iter()
                .filter(|(_, r)| r.outcome != Outcome::Delivered)
                .map(|(d, r)| format!("{} {}", d.as_str(), r.outcome.as_str()))
                .collect();
            if !failed.is_empty() {
                bail!("test delivery failed: {}", failed.join(", "));
            }
            Ok(())
        }
        SiteCommand::Stats {
            site_key,
            range,
            json,
        } => super::emit(&stats(settings, &site_key, &range)?, json),
        SiteCommand::RotateSecret {
            site_key,
            grace,
            json,
        } => super::emit(&rotate_secret(settings, &site_key, grace)?, json),
        SiteCommand::Delete { site_key, yes } => {
            super::emit(&delete(settings, &site_key, yes)?, false)
        }
        SiteCommand::List { account, json } => {
            super::emit(&list(settings, account.as_deref())?, json)
        }
    }
}

/// The site with this key, blanks around it ignored.
fn find(sites: &SiteDirectory, site_key: &str) -> anyhow::Result<Arc<Site>> {
    sites
        .get(site_key.trim())
        .with_context(|| format!("no site with key {}", site_key.trim()))
}

/// A new site with the secret shown this once. (No `Debug`: it holds the secret.)
#[derive(Serialize)]
pub struct SiteCreated {
    /// The internal id.
    pub site_id: String,
    /// The public key.
    pub site_key: String,
    /// The secret, in clear.
    pub secret: String,
    /// Where forms post.
    pub forwarder_url: String,
    /// The Cap widget's endpoint.
    pub cap_endpoint: String,
}

impl fmt::Display for SiteCreated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "site created")?;
        writeln!(f, "  site id:       {}", self.site_id)?;
        writeln!(f, "  site key:      {}", self.site_key)?;
        writeln!(
            f,
            "  secret:        {}  (shown once: store it now)",
            self.secret
        )?;
        writeln!(f, "  forwarder URL: {}", self.forwarder_url)?;
        writeln!(f, "  Cap endpoint:  {}", self.cap_endpoint)
    }
}

/// `site create`.
fn create(settings: Settings, args: CreateArgs) -> anyhow::Result<SiteCreated> {
    let state = super::Records::open(settings)?;
    let CreateArgs {
        account,
        name,
        webhook,
        email_to,
        redirect,
        origins,
        challenges,
        difficulty,
        disabled,
        verifier,
        json: _,
    } = args;
    let verifier_secret = verifier.sealed_secret(state.keys()?.sealer())?;
    let input = SiteInput {
        name,
        webhook_url: webhook.unwrap_or_default(),
        email_to,
        redirect_url: redirect,
        allowed_origins: origins,
        challenge_count: challenges,
        difficulty,
        enabled: !disabled,
        verifier: verifier.verifier,
        verifier_secret,
        verifier_url: verifier.verifier_url,
        verifier_sitekey: verifier.verifier_sitekey,
        ..SiteInput::default()
    };
    sites::check_email_relay(&input.validate()?, state.settings.mail.is_some())?;
    let created = sites::create_site(&state.store, &account, &input, SystemClock.now_ms())?;
    let key = created.site_key.as_str();
    Ok(SiteCreated {
        forwarder_url: state.settings.forwarder_url(key),
        cap_endpoint: state.settings.cap_endpoint(key),
        site_key: key.to_owned(),
        site_id: created.site_id,
        secret: created.secret,
    })
}

/// A site that was changed or deleted (`site edit`, `site delete`; printed as text only).
#[derive(Debug, Serialize)]
pub struct SiteChanged {
    /// The site's public key.
    pub site_key: String,
    /// What happened to it: `updated` or `deleted`.
    pub what: &'static str,
}

impl fmt::Display for SiteChanged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "site {} {}", self.site_key, self.what)
    }
}

/// `site edit`: every option not given keeps the site's current value.
fn edit(settings: Settings, args: EditArgs) -> anyhow::Result<SiteChanged> {
    let state = super::Records::open(settings)?;
    let site = find(&state.sites, &args.site_key)?;
    let current = &site.settings;
    let EditArgs {
        site_key: _,
        name,
        webhook,
        no_webhook,
        email_to,
        no_email,
        redirect,
        origins,
        challenges,
        difficulty,
        enable,
        disable,
        disable_key,
        enable_key,
        verifier,
    } = args;
    let verifier_secret = verifier.sealed_secret(state.keys()?.sealer())?;
    let input = SiteInput {
        name: name.unwrap_or_else(|| current.name.clone()),
        webhook_url: match (webhook, no_webhook) {
            (_, true) => String::new(),
            (Some(url), false) => url,
            (None, false) => current
                .webhook_url
                .as_ref()
                .map(|u| u.expose().to_owned())
                .unwrap_or_default(),
        },
        email_to: match (email_to, no_email) {
            (_, true) => Vec::new(),
            (Some(addresses), false) => addresses,
            (None, false) => current.email_to.iter().map(ToString::to_string).collect(),
        },
        redirect_url: redirect.or_else(|| current.redirect_url.as_ref().map(|u| u.to_string())),
        allowed_origins: origins.unwrap_or_else(|| current.allowed_origins.clone()),
        challenge_count: Some(challenges.unwrap_or(current.challenge.count)),
        difficulty: Some(difficulty.unwrap_or(current.challenge.difficulty)),
        enabled: enable || (!disable && current.enabled),
        verifier: Some(
            verifier
                .verifier
                .unwrap_or_else(|| current.verifier.as_str().to_owned()),
        ),
        verifier_secret,
        verifier_url: verifier
            .verifier_url
            .or_else(|| current.verifier_url.as_ref().map(|u| u.expose().to_owned())),
        verifier_sitekey: verifier
            .verifier_sitekey
            .or_else(|| current.verifier_sitekey.clone()),
        disabled: disable_key || (!enable_key && current.disabled),
        ..SiteInput::default()
    };
    sites::check_email_relay(&input.validate()?, state.settings.mail.is_some())?;
    sites::update_site(
        &state.store,
        site.account_id,
        &site.id,
        &input,
        SystemClock.now_ms(),
    )?;
    Ok(SiteChanged {
        site_key: site.key.as_str().to_owned(),
        what: "updated",
    })
}

/// A Test delivery's result, one report per destination. Its JSON is
/// `{"deliveries": [{"destination": "webhook", …the report…}, …]}`.
#[derive(Debug)]
pub struct TestDelivery(pub Deliveries);

impl Serialize for TestDelivery {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct One<'a> {
            destination: Destination,
            #[serde(flatten)]
            report: &'a Report,
        }
        let deliveries: Vec<One<'_>> = self
            .0
            .iter()
            .map(|(destination, report)| One {
                destination: *destination,
                report,
            })
            .collect();
        let mut out = serializer.serialize_struct("TestDelivery", 1)?;
        out.serialize_field("deliveries", &deliveries)?;
        out.end()
    }
}

impl fmt::Display for TestDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (destination, report)) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            writeln!(f, "destination: {}", destination.as_str())?;
            writeln!(f, "outcome:    {}", report.outcome.as_str())?;
            if let Some(status) = report.http_status {
                writeln!(f, "HTTP:       {status}")?;
            }
            if let Some(code) = report.smtp_code {
                writeln!(f, "SMTP:       {code}")?;
            }
            writeln!(f, "latency:    {} ms", report.latency_ms)?;
            let resolved: Vec<String> = report.resolved.iter().map(|ip| ip.to_string()).collect();
            if resolved.is_empty() {
                writeln!(f, "resolved:   -")?;
            } else {
                writeln!(f, "resolved:   {}", resolved.join(", "))?;
            }
            writeln!(f, "detail:     {}", report.detail)?;
            if let Some(body) = report.response_body.as_deref().filter(|b| !b.is_empty()) {
                writeln!(f, "response:   {body}")?;
            }
            if let Some(reply) = report.smtp_reply.as_deref().filter(|r| !r.is_empty()) {
                writeln!(f, "reply:      {reply}")?;
            }
        }
        Ok(())
    }
}

/// `site test`: the dashboard's Test delivery.
fn test(settings: Settings, site_key: &str) -> anyhow::Result<TestDelivery> {
    let state = super::services(settings)?;
    let site = find(&state.sites, site_key)?;
    let deliveries = crate::app::block_on(async {
        let client = state.deliverer.client();
        crate::test_delivery::run(&state, &client, &site).await
    });
    Ok(TestDelivery(deliveries))
}

/// A site's statistics over one range: the dashboard's [`Stats`], named by the site.
pub struct SiteStats {
    /// The site's public key.
    pub site_key: String,
    /// The site's display name (text only).
    pub site_name: String,
    /// The numbers.
    pub stats: Stats,
}

/// The JSON `site stats --json` prints: the tiles of [`Stats`] after the site key, counts by
/// reason and by category as objects (name to count, in the query's order), and `destinations`:
/// `{"webhook": {"delivered", "failed", "success_rate", "p50_ms", "p95_ms", "failures"},
/// "email": {…}}`, each
/// destination's own tiles and failure categories (zeros for one the site does not have). The
/// top-level `delivered`, `failed` and `failures_by_category` count every destination together.
/// The series, the recent deliveries and the challenge counts are the dashboard's alone.
impl Serialize for SiteStats {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let stats = &self.stats;
        let mut out = serializer.serialize_struct("SiteStats", 14)?;
        out.serialize_field("site_key", &self.site_key)?;
        out.serialize_field("range", &stats.range)?;
        out.serialize_field("start_ms", &stats.start_ms)?;
        out.serialize_field("end_ms", &stats.end_ms)?;
        out.serialize_field("delivered", &stats.delivered)?;
        out.serialize_field("failed", &stats.failed)?;
        out.serialize_field("destinations", &Destinations(&stats.destinations))?;
        out.serialize_field("success_rate", &stats.success_rate)?;
        out.serialize_field("p50_ms", &stats.p50_ms)?;
        out.serialize_field("p95_ms", &stats.p95_ms)?;
        out.serialize_field("rejected", &stats.rejected)?;
        out.serialize_field("rejected_by_reason", &Counts(&stats.rejected_by_reason))?;
        out.serialize_field("failures_by_category", &Counts(&stats.failures_by_category))?;
        out.serialize_field("test_deliveries", &stats.test_deliveries)?;
        out.end()
    }
}

/// Each destination's tiles and failures, as one object keyed by destination name.
struct Destinations<'a>(&'a PerDestination<DestinationStats>);

impl Serialize for Destinations<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(Destination::ALL.len()))?;
        for (destination, numbers) in self.0.iter() {
            map.serialize_entry(destination.as_str(), &DestinationNumbers(numbers))?;
        }
        map.end()
    }
}

struct DestinationNumbers<'a>(&'a DestinationStats);

impl Serialize for DestinationNumbers<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let numbers = self.0;
        let mut out = serializer.serialize_struct("DestinationStats", 6)?;
        out.serialize_field("delivered", &numbers.delivered)?;
        out.serialize_field("failed", &numbers.failed)?;
        out.serialize_field("success_rate", &numbers.success_rate)?;
        out.serialize_field("p50_ms", &numbers.p50_ms)?;
        out.serialize_field("p95_ms", &numbers.p95_ms)?;
        out.serialize_field("failures", &Counts(&numbers.failures_by_category))?;
        out.end()
    }
}

/// Counts by name, serialized as one object from name to count.
struct Counts<'a, K>(&'a [(K, u64)]);

impl<K: Serialize> Serialize for Counts<'_, K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, count) in self.0 {
            map.serialize_entry(name, count)?;
        }
        map.end()
    }
}

impl fmt::Display for SiteStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stats = &self.stats;
        let or_dash = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v} ms"));
        writeln!(f, "{} · {} (UTC)", self.site_name, stats.range.label())?;
        writeln!(f, "  delivered      {}", stats.delivered)?;
        writeln!(f, "  failed         {}", stats.failed)?;
        for (destination, numbers) in stats.destinations.iter() {
            let name = destination.as_str();
            writeln!(f, "    {name:<8} delivered {}", numbers.delivered)?;
            writeln!(f, "    {name:<8} failed    {}", numbers.failed)?;
            writeln!(
                f,
                "    {name:<8} latency   p50 {}, p95 {}",
                or_dash(numbers.p50_ms),
                or_dash(numbers.p95_ms)
            )?;
        }
        writeln!(
            f,
            "  success rate   {}",
            stats
                .success_rate
                .map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0))
        )?;
        writeln!(f, "  latency p50    {}", or_dash(stats.p50_ms))?;
        writeln!(f, "  latency p95    {}", or_dash(stats.p95_ms))?;
        writeln!(f, "  rejected       {}", stats.rejected)?;
        for (reason, n) in &stats.rejected_by_reason {
            writeln!(f, "    {reason:<24} {n}")?;
        }
        for (destination, numbers) in stats.destinations.iter() {
            writeln!(f, "  {} failures by category", destination.as_str())?;
            for (outcome, n) in &numbers.failures_by_category {
                writeln!(f, "    {:<24} {n}", outcome.as_str())?;
            }
        }
        writeln!(f, "  test deliveries (apart) {}", stats.test_deliveries)?;
        writeln!(f, "  challenges issued {}", stats.challenges_issued)?;
        writeln!(f, "  challenges solved {}", stats.challenges_solved)
    }
}

/// `site stats`: the range is checked before anything is opened.
fn stats(settings: Settings, site_key: &str, range: &str) -> anyhow::Result<SiteStats> {
    let Some(range) = Range::parse(range) else {
        bail!("unknown range {range:?}: use today, yesterday, 7d, 28d or all");
    };
    let state = super::Records::open(settings)?;
    let site = find(&state.sites, site_key)?;
    let stats = crate::stats::query(
        &state.store,
        Scope::Site(&site.id),
        range,
        SystemClock.now_ms(),
    )?;
    Ok(SiteStats {
        site_key: site.key.as_str().to_owned(),
        site_name: site.settings.name.clone(),
        stats,
    })
}

/// A site's new secret. (No `Debug`: it holds the secret.)
#[derive(Serialize)]
pub struct SecretRotated {
    /// The site's public key.
    pub site_key: String,
    /// The new secret, in clear.
    pub secret: String,
    /// Until when the previous secret keeps verifying, epoch ms; `None` when it stopped at once.
    pub previous_secret_until: Option<i64>,
}

impl fmt::Display for SecretRotated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "secret rotated for {}", self.site_key)?;
        writeln!(
            f,
            "  secret:        {}  (shown once: store it now)",
            self.secret
        )?;
        match self.previous_secret_until {
            Some(ms) => writeln!(
                f,
                "  the previous secret keeps working until {} UTC",
                crate::time::utc_datetime(ms)
            ),
            None => writeln!(f, "  the previous secret no longer works"),
        }
    }
}

/// `site rotate-secret`.
fn rotate_secret(
    settings: Settings,
    site_key: &str,
    grace: RotationGrace,
) -> anyhow::Result<SecretRotated> {
    let state = super::Records::open(settings)?;
    let site = find(&state.sites, site_key)?;
    let now = SystemClock.now_ms();
    let Some(secret) = sites::rotate_secret(&state.store, site.account_id, &site.id, grace, now)?
    else {
        bail!("no site with key {}", site.key.as_str());
    };
    Ok(SecretRotated {
        site_key: site.key.as_str().to_owned(),
        secret,
        // The same end the library stored: both from this `now`.
        previous_secret_until: grace.millis().map(|ms| now.saturating_add(ms)),
    })
}

/// `site delete`: refused without `--yes`, before anything is opened.
fn delete(settings: Settings, site_key: &str, yes: bool) -> anyhow::Result<SiteChanged> {
    if !yes {
        bail!(
            "deleting {} removes the site and its statistics for good: give --yes to confirm",
            site_key.trim()
        );
    }
    let state = super::Records::open(settings)?;
    let site = find(&state.sites, site_key)?;
    if !sites::delete_site(&state.store, site.account_id, &site.id)? {
        bail!("no site with key {}", site.key.as_str());
    }
    Ok(SiteChanged {
        site_key: site.key.as_str().to_owned(),
        what: "deleted",
    })
}

/// The sites `site list` shows.
#[derive(Debug, Serialize)]
pub struct SiteList {
    /// Oldest first.
    pub sites: Vec<ListedSite>,
}

/// One listed site; never its secret, its webhook URL masked.
#[derive(Debug, Serialize)]
pub struct ListedSite {
    /// The internal id.
    pub site_id: String,
    /// The public key.
    pub site_key: String,
    /// The display name.
    pub name: String,
    /// The owning account's email.
    pub account: String,
    /// Whether forwarding is enabled.
    pub enabled: bool,
    /// Whether the site's key is switched off (`site edit --disable-key`).
    pub key_disabled: bool,
    /// The webhook URL, scheme and host only; `None` without a webhook.
    pub webhook_url: Option<String>,
    /// The email destination's addresses.
    pub email_to: Vec<String>,
    /// Where forms post.
    pub forwarder_url: String,
}

impl fmt::Display for SiteList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sites.is_empty() {
            return writeln!(f, "no sites");
        }
        writeln!(
            f,
            "{:<32}  {:<8}  {:<24}  {:<28}  {:<32}  EMAIL",
            "SITE KEY", "ENABLED", "NAME", "ACCOUNT", "WEBHOOK"
        )?;
        for s in &self.sites {
            let email = if s.email_to.is_empty() {
                "-".to_owned()
            } else {
                s.email_to.join(", ")
            };
            writeln!(
                f,
                "{:<32}  {:<8}  {:<24}  {:<28}  {:<32}  {}",
                s.site_key,
                match (s.enabled, s.key_disabled) {
                    (_, true) => "key off",
                    (true, false) => "yes",
                    (false, false) => "no",
                },
                s.name,
                s.account,
                s.webhook_url.as_deref().unwrap_or("-"),
                email
            )?;
        }
        Ok(())
    }
}

/// `site list`: every site, or one account's.
fn list(settings: Settings, account: Option<&str>) -> anyhow::Result<SiteList> {
    let state = super::Records::open(settings)?;
    let sites = sites::list_sites(&state.store, account)?
        .into_iter()
        .map(|s| ListedSite {
            forwarder_url: state.settings.forwarder_url(s.key.as_str()),
            site_key: s.key.as_str().to_owned(),
            webhook_url: s.settings.webhook_url.as_ref().map(|u| u.masked()),
            email_to: s
                .settings
                .email_to
                .iter()
                .map(ToString::to_string)
                .collect(),
            enabled: s.settings.enabled,
            key_disabled: s.settings.disabled,
            name: s.settings.name,
            account: s.account_email,
            site_id: s.id,
        })
        .collect();
    Ok(SiteList { sites })
}
