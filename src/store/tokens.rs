//! SQL for single-use records: spent challenges and redeemed verification tokens, each kept until
//! the moment it would have expired anyway, then purged.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// Records a challenge as spent; false when it was spent already.
pub fn spend_challenge(conn: &Connection, id: &[u8], expires_at: i64) -> Result<bool, StoreError> {
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO spent_challenges (id, expires_at) VALUES (?1, ?2)",
        params![id, expires_at],
    )?;
    Ok(inserted == 1)
}

/// True when a verification session's token has been consumed.
pub fn is_token_redeemed(conn: &Connection, session_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM redeemed_tokens WHERE session_id = ?1",
            params![session_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Records a verification session's token as consumed; false when it was consumed already.
pub fn redeem_token(
    conn: &Connection,
    session_id: &str,
    expires_at: i64,
) -> Result<bool, StoreError> {
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO redeemed_tokens (session_id, expires_at) VALUES (?1, ?2)",
        params![session_id, expires_at],
    )?;
    Ok(inserted == 1)
}

/// Deletes records that expired before `now_ms`; returns how many were removed.
pub fn purge_expired(conn: &Connection, now_ms: i64) -> Result<usize, StoreError> {
    let a = conn.execute(
        "DELETE FROM spent_challenges WHERE expires_at < ?1",
        params![now_ms],
    )?;
    let b = conn.execute(
        "DELETE FROM redeemed_tokens WHERE expires_at < ?1",
        params![now_ms],
    )?;
    Ok(a + b)
}
