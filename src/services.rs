//! The services every surface shares, built once: the settings, the store, the site directory,
//! the purpose keys, the built-in issuer, the deliverer, the metrics and the clock. The HTTP
//! server ([`crate::app`]) wraps them in its own state; the CLI builds them, or only the part a
//! command needs; tests build them with their own clock and resolver.

use std::sync::Arc;

use anyhow::Context as _;

use crate::captcha::Issuer;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::delivery::Deliverer;
use crate::delivery::email::Mailer;
use crate::egress::policy::EgressPolicy;
use crate::egress::resolve::{Egress, Resolve, SystemResolver};
use crate::keys::Keys;
use crate::metrics::Metrics;
use crate::sites::SiteDirectory;
use crate::store::Store;

/// What the application takes from outside: the clock and the DNS resolver (tests inject both).
#[derive(Clone)]
pub struct Dependencies {
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The resolver webhook host names are looked up with.
    pub resolver: Arc<dyn Resolve>,
}

impl Default for Dependencies {
    fn default() -> Self {
        Dependencies {
            clock: Arc::new(SystemClock),
            resolver: Arc::new(SystemResolver),
        }
    }
}

/// What every surface (the HTTP server, the CLI, the tests) works with, built once: the settings,
/// the store, the site directory, the purpose keys, the built-in issuer, the deliverer, the
/// metrics and the clock. Cheap to clone. Building it has no side effect beyond opening (and
/// migrating) the store and, on a first start, generating the server key.
#[derive(Clone)]
pub struct Services {
    /// The validated settings.
    pub settings: Arc<Settings>,
    /// The database.
    pub store: Store,
    /// The in-memory site directory.
    pub sites: SiteDirectory,
    /// The purpose keys derived from the server key.
    pub keys: Keys,
    /// The built-in token issuer.
    pub issuer: Issuer,
    /// Sends envelopes to the sites' destinations.
    pub deliverer: Deliverer,
    /// What this process counted (SPEC §9).
    pub metrics: Arc<Metrics>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl Services {
    /// Opens the store, loads the server key and the sites, and builds the services.
    pub fn open(settings: Settings, deps: Dependencies) -> anyhow::Result<Services> {
        let clock = deps.clock;
        let store = Store::open(&settings.database)?;
        let keys = Keys::load_or_create(&store, settings.server_key.as_deref(), clock.now_ms())
            .context("loading the server key")?;
        let sites = SiteDirectory::default();
        sites.reload(&store).context("loading sites")?;
        let egress = Egress::new(
            EgressPolicy::new(settings.egress_allow.clone()),
            deps.resolver,
        );
        let mailer = settings
            .mail
            .as_ref()
            .map(|mail| Mailer::new(mail, settings.tls_extra_roots.as_ref()))
            .transpose()
            .map_err(|e| anyhow::anyhow!(e))
            .context("configuring the SMTP relay")?;
        Ok(Services {
            deliverer: Deliverer::new(
                egress,
                settings.delivery_timeout,
                settings.tls_extra_roots.as_ref(),
                mailer,
            )
            .context("configuring TLS for delivery")?,
            metrics: Arc::new(Metrics::new(
                store.clone(),
                sites.clone(),
                settings.metrics_bind.is_some(),
            )),
            settings: Arc::new(settings),
            issuer: Issuer::new(keys.token().clone(), store.clone(), Arc::clone(&clock))
                .context("loading spent challenges")?,
            keys,
            store,
            sites,
            clock,
        })
    }
}
