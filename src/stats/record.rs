//! Recording statistics (SPEC §6, §10): every delivery's destination, outcome, status and latency
//! bucket, and every rejected submission's reason (never form contents, never webhook URLs or
//! addresses), either queued for the store's batch writer or written at once on a caller's
//! connection.

use crate::delivery::{Destination, Kind, Report};
use crate::store::deliveries::{self, NewDelivery, NewRejection, Record};
use crate::store::{Connection, Store, StoreError};

use super::latency::latency_bucket;

fn delivery_record(
    site_id: &str,
    at_ms: i64,
    destination: Destination,
    kind: Kind,
    report: &Report,
) -> Record {
    Record::Delivery(NewDelivery {
        site_id: site_id.to_owned(),
        at_ms,
        destination: destination.as_str(),
        is_test: kind == Kind::Test,
        outcome: report.outcome.as_str(),
        http_status: report.http_status,
        latency_ms: report.latency_ms,
        latency_bucket: latency_bucket(report.latency_ms),
    })
}

fn rejection_record(site_id: &str, at_ms: i64, reason: &'static str) -> Record {
    Record::Rejection(NewRejection {
        site_id: site_id.to_owned(),
        at_ms,
        reason,
    })
}

/// Records one delivery on `conn`: its row and its rollups, atomically (joining the caller's
/// transaction when there is one, so many can be recorded in one). The blocking twin of
/// [`record_delivery`].
pub fn record_delivery_sync(
    conn: &Connection,
    site_id: &str,
    at_ms: i64,
    destination: Destination,
    kind: Kind,
    report: &Report,
) -> Result<(), StoreError> {
    deliveries::insert(
        conn,
        delivery_record(site_id, at_ms, destination, kind, report),
    )
}

/// Records one delivery that finished at `at_ms`, with its rollups, and waits until it is
/// committed (a test delivery, whose result page reads it back at once).
pub async fn record_delivery(
    store: &Store,
    site_id: &str,
    at_ms: i64,
    destination: Destination,
    kind: Kind,
    report: &Report,
) -> Result<(), StoreError> {
    store.record(delivery_record(site_id, at_ms, destination, kind, report));
    store.flush().await
}

/// Queues one delivery record for the batch writer's next commit (a few milliseconds at most)
/// without waiting for it: the visitor's answer depends on the delivery, not on its record. A
/// graceful shutdown commits every queued record before the process exits.
pub fn record_delivery_later(
    store: &Store,
    site_id: &str,
    at_ms: i64,
    destination: Destination,
    kind: Kind,
    report: &Report,
) {
    store.record(delivery_record(site_id, at_ms, destination, kind, report));
}

/// Counts one rejected submission on `conn`, in the UTC hour of `at_ms`. The blocking twin of
/// [`record_rejection`].
pub fn record_rejection_sync(
    conn: &Connection,
    site_id: &str,
    at_ms: i64,
    reason: &'static str,
) -> Result<(), StoreError> {
    deliveries::insert(conn, rejection_record(site_id, at_ms, reason))
}

/// Queues one rejected submission, counted by its error code, for the batch writer's next
/// commit, like [`record_delivery_later`].
pub fn record_rejection(store: &Store, site_id: &str, at_ms: i64, reason: &'static str) {
    store.record(rejection_record(site_id, at_ms, reason));
}
