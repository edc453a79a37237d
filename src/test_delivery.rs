//! Test delivery (SPEC §6): the synthetic envelope of SPEC §4 sent through the same delivery
//! function, SSRF rules and timeout as a real submission, whether or not forwarding is enabled,
//! and recorded as a test. The dashboard's button and `site test` both call [`run`].

use crate::delivery::envelope;
use crate::delivery::{Kind, Report};
use crate::services::Services;
use crate::sites::Site;

/// Sends a test delivery for `site` and records it; returns the full report (with the first part
/// of the response body).
pub async fn run(state: &Services, client: &awc::Client, site: &Site) -> Report {
    let (body, _session_id) = envelope::test(site.key.as_str(), state.clock.now_ms());
    let report = state
        .deliverer
        .deliver(client, &site.settings.webhook_url, body, Kind::Test)
        .await;
    let finished = state.clock.now_ms();
    state.metrics.delivery(Kind::Test, &report);
    if let Err(e) =
        crate::stats::record_delivery(&state.store, &site.id, finished, Kind::Test, &report).await
    {
        tracing::error!(error = %e, "could not record a test delivery");
    }
    tracing::info!(
        site_id = %site.id,
        outcome = report.outcome.as_str(),
        http_status = report.http_status,
        latency_ms = report.latency_ms,
        "test delivery"
    );
    report
}
