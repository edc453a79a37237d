//! SQL for single-use records: spent challenges and redeemed verification tokens, each kept until
//! the moment it would have expired anyway, then purged.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// Records a challenge as spent; false when it was spent already.
pub(super) fn spend_challenge(
    conn: &Connection,
    id: &[u8],
    expires_at: i64,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached("INSERT OR IGNORE INTO spent_challenges (expires_at, id) VALUES (?1, ?2)")?
        .execute(params![expires_at, id])?;
    Ok(inserted == 1)
}

/// Up to `limit` spent challenges (id, expiry) that expire at or after `now_ms`, latest expiry
/// first (the ones memory should hold longest).
pub(super) fn live_spent_challenges(
    conn: &Connection,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<([u8; 16], i64)>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, expires_at FROM spent_challenges WHERE expires_at >= ?1
         ORDER BY expires_at DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(
        params![now_ms, i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)),
    )?;
    let mut live = Vec::new();
    for row in rows {
        let (id, expires_at) = row?;
        let id: [u8; 16] = id
            .try_into()
            .map_err(|_| StoreError::Corrupt("a spent challenge id is not 16 bytes".into()))?;
        live.push((id, expires_at));
    }
    Ok(live)
}

/// True when a verification session's token (which expires at `expires_at`) has been consumed.
pub(super) fn is_token_redeemed(
    conn: &Connection,
    session_id: &str,
    expires_at: i64,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM redeemed_tokens WHERE expires_at = ?1 AND session_id = ?2")?
        .query_row(params![expires_at, session_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Records a verification session's token as consumed; false when it was consumed already.
pub(super) fn redeem_token(
    conn: &Connection,
    session_id: &str,
    expires_at: i64,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO redeemed_tokens (expires_at, session_id) VALUES (?1, ?2)",
        )?
        .execute(params![expires_at, session_id])?;
    Ok(inserted == 1)
}

/// Deletes records that expired before `now_ms`; returns how many were removed.
pub(super) fn purge_expired(conn: &Connection, now_ms: i64) -> Result<usize, StoreError> {
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

/// What recording a verification token's use found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// Recorded as used now.
    Recorded,
    /// Used before.
    AlreadyUsed,
    /// Not used before, and (as asked) not recorded.
    Unused,
}

/// The single-use records, as the rest of the crate reaches them
/// ([`super::Store::single_use`]).
#[derive(Clone, Copy)]
pub struct SingleUse<'a>(pub(super) &'a super::Store);

impl SingleUse<'_> {
    /// Up to `limit` spent challenges that are still live, latest expiry first.
    pub fn live_spent_challenges(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<([u8; 16], i64)>, StoreError> {
        self.0.read(|c| live_spent_challenges(c, now_ms, limit))
    }

    /// Spends a challenge after every spend already queued is written (a spend memory forgot
    /// may still wait there); false when it was spent already.
    pub async fn spend_challenge(&self, id: [u8; 16], expires_at: i64) -> Result<bool, StoreError> {
        self.0
            .batch_write_after_queue(move |c| spend_challenge(c, &id, expires_at))
            .await
    }

    /// Records a verification token as used (`record`), or only looks it up: one statement
    /// either way, in the batch writer's next commit.
    pub async fn use_token(
        &self,
        session_id: String,
        expires_at: i64,
        record: bool,
    ) -> Result<TokenUse, StoreError> {
        self.0
            .batch_write(move |c| {
                Ok(if record {
                    if redeem_token(c, &session_id, expires_at)? {
                        TokenUse::Recorded
                    } else {
                        TokenUse::AlreadyUsed
                    }
                } else if is_token_redeemed(c, &session_id, expires_at)? {
                    TokenUse::AlreadyUsed
                } else {
                    TokenUse::Unused
                })
            })
            .await
    }

    /// Deletes the records that expired before `now_ms`; how many.
    pub async fn purge_expired(&self, now_ms: i64) -> Result<usize, StoreError> {
        self.0.write_async(move |c| purge_expired(c, now_ms)).await
    }
}
