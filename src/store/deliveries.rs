//! SQL for delivery records and rejection counters.

use rusqlite::{Connection, params};

use super::StoreError;

/// One delivery to record.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    /// The site.
    pub site_id: &'a str,
    /// When it finished, epoch ms.
    pub at_ms: i64,
    /// A test delivery.
    pub is_test: bool,
    /// The outcome category name.
    pub outcome: &'a str,
    /// The HTTP status, if the webhook answered.
    pub http_status: Option<u16>,
    /// Latency in ms.
    pub latency_ms: u64,
}

/// Records a delivery.
pub fn insert(conn: &Connection, d: &NewDelivery<'_>) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO deliveries (site_id, at_ms, is_test, outcome, http_status, latency_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        d.site_id,
        d.at_ms,
        d.is_test,
        d.outcome,
        d.http_status,
        i64::try_from(d.latency_ms).unwrap_or(i64::MAX)
    ])?;
    Ok(())
}

/// Counts one rejected submission in its hour.
pub fn count_rejection(
    conn: &Connection,
    site_id: &str,
    hour_ms: i64,
    reason: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO rejections (site_id, hour_ms, reason, count) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (site_id, hour_ms, reason) DO UPDATE SET count = count + 1",
    )?
    .execute(params![site_id, hour_ms, reason])?;
    Ok(())
}
