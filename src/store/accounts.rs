//! SQL for the `accounts` table.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;

/// An account row, without its password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    /// Internal id.
    pub id: i64,
    /// Login email, as entered (lookups ignore case).
    pub email: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Its troop id in the management API, `troop_…` (one troop per account).
    pub troop_id: String,
}

/// Inserts an account; `Ok(None)` when the email is taken.
pub(super) fn insert(
    conn: &Connection,
    email: &str,
    password_hash: &str,
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    match conn.execute(
        "INSERT INTO accounts (email, password_hash, created_at, troop_id)
         VALUES (?1, ?2, ?3, 'troop_' || lower(hex(randomblob(8))))",
        params![email, password_hash, now_ms],
    ) {
        Ok(_) => Ok(Some(conn.last_insert_rowid())),
        Err(e) if super::is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Finds an account by email (case-insensitively).
pub(super) fn find_by_email(
    conn: &Connection,
    email: &str,
) -> Result<Option<AccountRow>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, email, created_at, troop_id FROM accounts WHERE email = ?1",
            params![email],
            account_from_row,
        )
        .optional()?)
}

fn account_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok(AccountRow {
        id: r.get(0)?,
        email: r.get(1)?,
        created_at: r.get(2)?,
        troop_id: r.get(3)?,
    })
}

/// Finds an account by id.
pub(super) fn find_by_id(conn: &Connection, id: i64) -> Result<Option<AccountRow>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, email, created_at, troop_id FROM accounts WHERE id = ?1",
            params![id],
            account_from_row,
        )
        .optional()?)
}

/// The password hash of an account, found by email.
pub(super) fn password_hash(
    conn: &Connection,
    email: &str,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, password_hash FROM accounts WHERE email = ?1",
            params![email],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// Inserts the first account: `Ok(None)` when any account exists already. In the caller's write
/// transaction (`BEGIN IMMEDIATE`), so no other process can add one in between.
pub(super) fn insert_first(
    conn: &Connection,
    email: &str,
    password_hash: &str,
    now_ms: i64,
) -> Result<Option<i64>, StoreError> {
    if count(conn)? > 0 {
        return Ok(None);
    }
    insert(conn, email, password_hash, now_ms)
}

/// The number of accounts.
pub(super) fn count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT COUNT(*) FROM accounts", [], |r| r.get(0))?)
}

/// The account records, as the rest of the crate reaches them ([`super::Store::accounts`]).
#[derive(Clone, Copy)]
pub struct Accounts<'a>(pub(super) &'a super::Store);

impl Accounts<'_> {
    /// Records an account; `Ok(None)` when the email is taken.
    pub fn insert(
        &self,
        email: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.0.write(|c| insert(c, email, password_hash, now_ms))
    }

    /// Records the first account; `Ok(None)` when any account exists.
    pub fn insert_first(
        &self,
        email: &str,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        self.0
            .write(|c| insert_first(c, email, password_hash, now_ms))
    }

    /// The account with this email (any case).
    pub fn by_email(&self, email: &str) -> Result<Option<AccountRow>, StoreError> {
        self.0.read(|c| find_by_email(c, email))
    }

    /// The account with this id.
    pub fn by_id(&self, id: i64) -> Result<Option<AccountRow>, StoreError> {
        self.0.read(|c| find_by_id(c, id))
    }

    /// The id and password hash of the account with this email.
    pub fn password_hash(&self, email: &str) -> Result<Option<(i64, String)>, StoreError> {
        self.0.read(|c| password_hash(c, email))
    }

    /// How many accounts exist.
    pub fn count(&self) -> Result<i64, StoreError> {
        self.0.read(count)
    }
}
