//! SQL for dashboard sessions (stored by the hash of their id).

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// Records a session.
pub(super) fn insert(
    conn: &Connection,
    id_hash: &[u8],
    account_id: i64,
    now_ms: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO sessions (id_hash, account_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![id_hash, account_id, now_ms, expires_at],
    )?;
    Ok(())
}

/// The account and email of a live session.
pub(super) fn account_of(
    conn: &Connection,
    id_hash: &[u8],
    now_ms: i64,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT a.id, a.email FROM sessions s JOIN accounts a ON a.id = s.account_id
             WHERE s.id_hash = ?1 AND s.expires_at > ?2",
        )?
        .query_row(params![id_hash, now_ms], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Ends a session.
pub(super) fn delete(conn: &Connection, id_hash: &[u8]) -> Result<(), StoreError> {
    conn.execute("DELETE FROM sessions WHERE id_hash = ?1", params![id_hash])?;
    Ok(())
}

/// Deletes expired sessions.
pub(super) fn purge_expired(conn: &Connection, now_ms: i64) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "DELETE FROM sessions WHERE expires_at <= ?1",
        params![now_ms],
    )?)
}

/// The dashboard's sessions, as the rest of the crate reaches them
/// ([`super::Store::sessions`]).
#[derive(Clone, Copy)]
pub struct Sessions<'a>(pub(super) &'a super::Store);

impl Sessions<'_> {
    /// The account and email of a live session.
    pub fn account_of(
        &self,
        id_hash: &[u8],
        now_ms: i64,
    ) -> Result<Option<(i64, String)>, StoreError> {
        self.0.read(|c| account_of(c, id_hash, now_ms))
    }

    /// Records a session in one write that also ends the one it replaces and drops expired ones.
    pub fn start(
        &self,
        id_hash: &[u8],
        account_id: i64,
        replacing: Option<&[u8]>,
        now_ms: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        self.0.write(|c| {
            if let Some(old) = replacing {
                delete(c, old)?;
            }
            purge_expired(c, now_ms)?;
            insert(c, id_hash, account_id, now_ms, expires_at)
        })
    }

    /// Ends a session.
    pub fn end(&self, id_hash: &[u8]) -> Result<(), StoreError> {
        self.0.write(|c| delete(c, id_hash))
    }
}
