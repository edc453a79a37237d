//! SQL for the `access_tokens` table: the management API's personal access tokens (SPEC §12).

use rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::StoreError;

/// A token row as stored; the token itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRow {
    /// Internal id, `tok_…`.
    pub id: String,
    /// Owning account.
    pub account_id: i64,
    /// The name its creator gave it.
    pub name: String,
    /// The type the Caputchin API was asked for: `troop` or `account`.
    pub kind: String,
    /// `read` or `write`.
    pub scope: String,
    /// The one site it is bound to, if any.
    pub site_id: Option<String>,
    /// The bound site's public key, if any.
    pub site_key: Option<String>,
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// The token's first 16 characters.
    pub prefix: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// When it stops working, epoch ms; `None` for never.
    pub expires_at: Option<i64>,
    /// Its latest use, epoch ms.
    pub last_used_at: Option<i64>,
    /// When it was revoked, epoch ms.
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str = "t.id, t.account_id, t.name, t.kind, t.scope, t.site_id, s.site_key, \
     t.token_hash, t.prefix, t.created_at, t.expires_at, t.last_used_at, t.revoked_at";

const FROM: &str = "access_tokens t LEFT JOIN sites s ON s.id = t.site_id";

fn from_row(r: &Row<'_>) -> rusqlite::Result<AccessTokenRow> {
    Ok(AccessTokenRow {
        id: r.get(0)?,
        account_id: r.get(1)?,
        name: r.get(2)?,
        kind: r.get(3)?,
        scope: r.get(4)?,
        site_id: r.get(5)?,
        site_key: r.get(6)?,
        token_hash: r.get(7)?,
        prefix: r.get(8)?,
        created_at: r.get(9)?,
        expires_at: r.get(10)?,
        last_used_at: r.get(11)?,
        revoked_at: r.get(12)?,
    })
}

/// Inserts a token row (its `site_key` is ignored).
pub(super) fn insert(conn: &Connection, row: &AccessTokenRow) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO access_tokens (id, account_id, name, kind, scope, site_id, token_hash,
                                    prefix, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            row.id,
            row.account_id,
            row.name,
            row.kind,
            row.scope,
            row.site_id,
            row.token_hash,
            row.prefix,
            row.created_at,
            row.expires_at
        ],
    )?;
    Ok(())
}

/// The token with this hash, revoked or not.
pub(super) fn by_hash(
    conn: &Connection,
    hash: &[u8],
) -> Result<Option<AccessTokenRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE t.token_hash = ?1"
    ))?;
    Ok(stmt.query_row(params![hash], from_row).optional()?)
}

/// An account's tokens that are not revoked, oldest first.
pub(super) fn live_of_account(
    conn: &Connection,
    account_id: i64,
) -> Result<Vec<AccessTokenRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE t.account_id = ?1 AND t.revoked_at IS NULL
         ORDER BY t.created_at, t.id"
    ))?;
    let rows = stmt.query_map(params![account_id], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes one of an account's live tokens; false when it has no such live token.
pub(super) fn revoke(
    conn: &Connection,
    account_id: i64,
    token_id: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE access_tokens SET revoked_at = ?3
         WHERE account_id = ?1 AND id = ?2 AND revoked_at IS NULL",
        params![account_id, token_id, now_ms],
    )?;
    Ok(changed == 1)
}

/// Records a use of a token, at most once per `every_ms` (so a busy script costs one write a
/// minute, not one per request).
pub(super) fn touch(
    conn: &Connection,
    token_id: &str,
    now_ms: i64,
    every_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE access_tokens SET last_used_at = ?2
         WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?2 - ?3)",
        params![token_id, now_ms, every_ms],
    )?;
    Ok(())
}

/// The access tokens, as the rest of the crate reaches them ([`super::Store::access_tokens`]).
#[derive(Clone, Copy)]
pub struct AccessTokens<'a>(pub(super) &'a super::Store);

impl AccessTokens<'_> {
    /// Records a new token.
    pub fn insert(&self, row: &AccessTokenRow) -> Result<(), StoreError> {
        self.0.write(|c| insert(c, row))
    }

    /// The token with this hash, revoked or not.
    pub fn by_hash(&self, hash: &[u8; 32]) -> Result<Option<AccessTokenRow>, StoreError> {
        self.0.read(|c| by_hash(c, hash))
    }

    /// An account's tokens that are not revoked, oldest first.
    pub fn live_of_account(&self, account_id: i64) -> Result<Vec<AccessTokenRow>, StoreError> {
        self.0.read(|c| live_of_account(c, account_id))
    }

    /// Revokes one of an account's tokens; false when it has no such live token.
    pub fn revoke(&self, account_id: i64, token_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.0.write(|c| revoke(c, account_id, token_id, now_ms))
    }

    /// Records a use of a token (at most one write per `every_ms`), through the batch writer.
    pub async fn touch(
        &self,
        token_id: String,
        now_ms: i64,
        every_ms: i64,
    ) -> Result<(), StoreError> {
        self.0
            .batch_write(move |c| touch(c, &token_id, now_ms, every_ms))
            .await
    }
}
