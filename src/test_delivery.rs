//! Test delivery (SPEC §6, §10): a synthetic submission sent to every destination the site has —
//! the webhook gets SPEC §4's test envelope, the email destination a message marked `[Test]` —
//! through the same delivery code, SSRF rules and timeout as a real submission, whether or not
//! forwarding is enabled, and recorded as a test. The dashboard's button and `site test` both
//! call [`run`].

use crate::delivery::envelope::{self, TEST_FIELDS};
use crate::delivery::message::About;
use crate::delivery::{Deliveries, Destination, Kind, Report};
use crate::fields::{Fields, Limits};
use crate::services::Services;
use crate::sites::Site;

/// Sends a test delivery to each of `site`'s destinations at once and records each; returns
/// the full reports (with the first part of the webhook's answer and the relay's reply).
pub async fn run(state: &Services, client: &awc::Client, site: &Site) -> Deliveries {
    let now = state.clock.now_ms();
    let (body, session_id) = envelope::test(site.key.as_str(), now);
    let webhook = async {
        match &site.settings.webhook_url {
            Some(url) => Some(state.deliverer.deliver(client, url, body, Kind::Test).await),
            None => None,
        }
    };
    let fields = test_fields();
    let about = About {
        site_name: &site.settings.name,
        site_key: site.key.as_str(),
        session_id: &session_id,
        verified_at: now,
        test: true,
    };
    let email = state
        .deliverer
        .deliver_email(site, &about, &fields, Kind::Test);
    let (webhook, email) = futures_util::future::join(webhook, email).await;
    let mut reports = Vec::with_capacity(2);
    reports.extend(webhook.map(|r| (Destination::Webhook, r)));
    reports.extend(email.map(|r| (Destination::Email, r)));
    let finished = state.clock.now_ms();
    for (destination, report) in &reports {
        record(state, site, finished, *destination, report).await;
    }
    Deliveries::from_reports(reports)
}

fn test_fields() -> Fields {
    let limits = Limits {
        max_fields: TEST_FIELDS.len(),
        max_name_bytes: crate::config::MAX_FIELD_NAME_BYTES,
    };
    let pairs = TEST_FIELDS
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()));
    // The test fields are two short constants: always within their own limits.
    Fields::from_pairs(pairs, &limits).unwrap_or_default()
}

async fn record(
    state: &Services,
    site: &Site,
    finished: i64,
    destination: Destination,
    report: &Report,
) {
    state.metrics.delivery(destination, Kind::Test, report);
    if let Err(e) = crate::stats::record_delivery(
        &state.store,
        &site.id,
        finished,
        destination,
        Kind::Test,
        report,
    )
    .await
    {
        tracing::error!(error = %e, "could not record a test delivery");
    }
    tracing::info!(
        site_id = %site.id,
        destination = destination.as_str(),
        outcome = report.outcome.as_str(),
        http_status = report.http_status,
        smtp_code = report.smtp_code,
        latency_ms = report.latency_ms,
        "test delivery"
    );
}
