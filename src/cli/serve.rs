//! `serve`, the default command: the forwarder, the Cap endpoints, siteverify and the dashboard
//! until the process is stopped.

use anyhow::Context as _;

use crate::app::Application;
use crate::config::Settings;

/// Builds the application, announces it and serves until stopped.
pub(super) fn serve(settings: Settings) -> anyhow::Result<()> {
    crate::app::block_on(async move {
        let app = Application::build(settings).await?;
        // Logged under the binary's target, as these lines always were: filters and log
        // searches name it.
        tracing::info!(target: "caputchin_forwarder", port = app.port(), "listening");
        tracing::info!(
            target: "caputchin_forwarder",
            "forwarder ready at {}",
            app.services().settings.public_url
        );
        if let Some(url) = app.setup_url() {
            // Printed, not logged: the link is a one-time credential for the first account.
            eprintln!("\nNo account exists yet. Create the first one here (one use):\n  {url}\n");
        }
        app.run_until_stopped().await.context("server failed")
    })
}
