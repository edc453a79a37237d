//! Delivery statistics: recording every delivery's outcome and every rejected submission's
//! reason (never form contents, never webhook URLs).

use crate::delivery::{Kind, Report};
use crate::store::{self, Store, StoreError};

const HOUR_MS: i64 = 60 * 60 * 1000;

/// Records one delivery.
pub async fn record_delivery(
    store: &Store,
    site_id: &str,
    at_ms: i64,
    kind: Kind,
    report: &Report,
) -> Result<(), StoreError> {
    let site_id = site_id.to_owned();
    let outcome = report.outcome.as_str();
    let (http_status, latency_ms) = (report.http_status, report.latency_ms);
    store
        .write_async(move |c| {
            store::deliveries::insert(
                c,
                &store::deliveries::NewDelivery {
                    site_id: &site_id,
                    at_ms,
                    is_test: kind == Kind::Test,
                    outcome,
                    http_status,
                    latency_ms,
                },
            )
        })
        .await
}

/// Counts one rejected submission by its error code.
pub async fn record_rejection(
    store: &Store,
    site_id: &str,
    at_ms: i64,
    reason: &'static str,
) -> Result<(), StoreError> {
    let site_id = site_id.to_owned();
    let hour_ms = at_ms - at_ms.rem_euclid(HOUR_MS);
    store
        .write_async(move |c| store::deliveries::count_rejection(c, &site_id, hour_ms, reason))
        .await
}
