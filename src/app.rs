//! Builds the application: the HTTP server around the [`Services`] (built once): the listener
//! (port 0 in tests), the metrics listener, the first start's bootstrap account and setup link,
//! and the background tasks.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, Service as _};
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpServer};
use anyhow::Context as _;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::services::{Dependencies, Services};
use crate::web::{self, WebState};

/// How often expired single-use records are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Runs `future` to completion on the runtime the server and its HTTP clients run on (the CLI's
/// `serve` and `site test`).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    actix_web::rt::System::new().block_on(future)
}

/// What starting a server does before it listens: the bootstrap account (SPEC §7) when it is
/// configured and missing, and the one-time setup token while no account exists (SPEC §6).
fn first_start(services: &Services) -> anyhow::Result<Option<String>> {
    let now = services.clock.now_ms();
    if let Some((email, password)) = &services.settings.bootstrap
        && crate::accounts::ensure_bootstrap_account(&services.store, email, password, now)
            .context("creating the bootstrap account")?
    {
        tracing::info!("created the bootstrap account");
    }
    let no_accounts = crate::accounts::count(&services.store)? == 0;
    Ok(no_accounts.then(|| crate::ids::random_id::<24>("")))
}

/// A built, bound, not yet running application.
pub struct Application {
    port: u16,
    server: Server,
    /// The metrics listener's port and server, when `CAPUTCHIN_METRICS_BIND` is set.
    metrics: Option<(u16, Server)>,
    state: WebState,
}

impl Application {
    /// Builds the application with the system clock.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Application::build_with(settings, Dependencies::default()).await
    }

    /// Builds the application with the given clock and resolver (tests inject both).
    pub async fn build_with(settings: Settings, deps: Dependencies) -> anyhow::Result<Application> {
        let (state, readable) = tokio::task::spawn_blocking(move || {
            let services = Services::open(settings, deps)?;
            let setup_token = first_start(&services)?;
            let readable = crate::store::files::readable_by_others(&services.settings.database);
            anyhow::Ok((WebState::new(services, setup_token), readable))
        })
        .await
        .context("start-up task failed")??;
        let settings = Arc::clone(&state.settings);
        for (path, mode) in readable {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "a database file is readable by other users and holds the server key and webhook URLs: chmod 600 it"
            );
        }
        for net in &settings.egress_allow {
            tracing::warn!(
                network = %net,
                "CAPUTCHIN_EGRESS_ALLOW exempts this network from egress blocking: webhooks may reach it"
            );
        }
        if let Some(roots) = &settings.tls_extra_roots {
            tracing::warn!(
                path = %roots.path.display(),
                certificates = roots.certs.len(),
                "CAPUTCHIN_TLS_EXTRA_ROOTS: these certificates are trusted beside the web PKI roots for the SMTP relay and webhooks"
            );
        }
        match state.deliverer.mailer() {
            Some(mailer) => tracing::info!(
                relay = mailer.relay_shown(),
                from = %mailer.from(),
                "email destination on"
            ),
            None => {
                let waiting = state.sites.count_with_email();
                if waiting > 0 {
                    tracing::warn!(
                        sites = waiting,
                        "sites have email addresses but no SMTP relay is configured (CAPUTCHIN_SMTP_URL, CAPUTCHIN_MAIL_FROM): their emails fail"
                    );
                }
            }
        }
        let listener = TcpListener::bind(settings.bind)
            .with_context(|| format!("binding {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let data = actix_web::web::Data::new(state.clone());
        let deliverer = state.deliverer.clone();
        let body_timeout = settings.body_timeout;
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                // One pooled client per worker (awc clients are not shared across threads).
                .app_data(actix_web::web::Data::new(deliverer.client()))
                .app_data(actix_web::web::Data::new(crate::web::VerifierClient(
                    deliverer.client(),
                )))
                // Innermost (actix runs the last one registered first): the body deadline, so
                // that its 408 gets the headers below and is logged.
                .wrap(actix_web::middleware::from_fn(move |req, next| {
                    web::body_deadline::enforce(body_timeout, req, next)
                }))
                // Security headers on every answer; DefaultHeaders keeps a handler's own CSP.
                .wrap(
                    DefaultHeaders::new()
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("Referrer-Policy", "strict-origin-when-cross-origin"))
                        .add(("X-Frame-Options", "DENY"))
                        .add(("Content-Security-Policy", crate::web::CSP_STRICT)),
                )
                .wrap_fn(|req, srv| {
                    let started = Instant::now();
                    let method = req.method().clone();
                    let fut = srv.call(req);
                    async move {
                        let res = fut.await?;
                        if tracing::enabled!(tracing::Level::INFO) {
                            // The matched route pattern, never the raw path or query: paths and
                            // queries can carry tokens.
                            let route = res.request().match_pattern().unwrap_or_else(|| "-".into());
                            tracing::info!(
                                %method,
                                route,
                                status = res.status().as_u16(),
                                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                                "request"
                            );
                        }
                        Ok(res)
                    }
                })
                .configure(web::routes)
                .default_service(actix_web::web::to(web::not_found))
        })
        .listen(listener)?
        .shutdown_timeout(settings.delivery_timeout.as_secs() + 1)
        .run();
        let metrics = match settings.metrics_bind {
            Some(bind) => Some(metrics_server(bind, Arc::clone(&state.metrics))?),
            None => None,
        };
        spawn_background_tasks(&state);
        Ok(Application {
            port,
            server,
            metrics,
            state,
        })
    }

    /// The bound port of the metrics listener, when it is on.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    /// The one-time setup link, while no account exists (SPEC §6).
    pub fn setup_url(&self) -> Option<String> {
        let token = self.state.setup_token.lock().ok()?.clone()?;
        let base = if self.state.settings.bind.port() == 0 {
            format!("http://{}:{}", self.state.settings.bind.ip(), self.port)
        } else {
            self.state.settings.public_url.clone()
        };
        Some(format!("{base}/setup?token={token}"))
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The services (tests use them to create sites through the library).
    pub fn services(&self) -> &Services {
        &self.state.services
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM stop it gracefully: in-flight
    /// submissions finish, then the writes still queued are committed).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            actix_web::rt::spawn(server);
            handle
        });
        let served = self.server.await;
        if let Some(metrics) = metrics {
            metrics.stop(false).await;
        }
        if let Err(e) = self.state.store.flush().await {
            tracing::error!(error = %e, "could not commit the last queued writes");
        }
        served
    }
}

/// The second listener (SPEC §9): `GET /metrics` and nothing else, one worker, stopped with the
/// main server rather than by signals of its own.
fn metrics_server(
    bind: std::net::SocketAddr,
    metrics: Arc<Metrics>,
) -> anyhow::Result<(u16, Server)> {
    let listener = TcpListener::bind(bind).with_context(|| format!("binding metrics {bind}"))?;
    let port = listener.local_addr()?.port();
    let metrics = actix_web::web::Data::from(metrics);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(metrics.clone())
            .route("/metrics", actix_web::web::get().to(web::metrics))
            .default_service(actix_web::web::to(web::not_found))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    Ok((port, server))
}

fn spawn_background_tasks(state: &Services) {
    state.sites.watch(state.store.clone());
    let issuer = state.issuer.clone();
    actix_web::rt::spawn(async move {
        let first = tokio::time::Instant::now() + PURGE_EVERY;
        let mut tick = tokio::time::interval_at(first, PURGE_EVERY);
        loop {
            tick.tick().await;
            match issuer.purge_expired().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(removed = n, "purged expired single-use records"),
                Err(e) => tracing::warn!(error = %e, "purging expired records failed"),
            }
        }
    });
}
