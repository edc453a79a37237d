//! SQL for the `server_key` table (one row).

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// Returns the stored key, inserting `fresh` first when there is none.
pub(super) fn get_or_insert(
    conn: &Connection,
    fresh: &[u8],
    now_ms: i64,
) -> Result<Vec<u8>, StoreError> {
    conn.execute(
        "INSERT OR IGNORE INTO server_key (id, key, created_at) VALUES (1, ?1, ?2)",
        params![fresh, now_ms],
    )?;
    conn.query_row("SELECT key FROM server_key WHERE id = 1", [], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::Corrupt("server key row missing".into()))
}
