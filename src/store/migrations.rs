//! The migrations runner: numbered plain SQL files from `migrations/`, embedded at build time,
//! applied in order, each in its own transaction, and recorded in `schema_migrations`.

use rusqlite::{Connection, TransactionBehavior, params};

use super::StoreError;

/// Every migration: version, name, SQL. Versions are consecutive from 1.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "accounts_sites",
        include_str!("../../migrations/0001_accounts_sites.sql"),
    ),
    (
        2,
        "deliveries",
        include_str!("../../migrations/0002_deliveries.sql"),
    ),
    (
        3,
        "rollups",
        include_str!("../../migrations/0003_rollups.sql"),
    ),
    (
        4,
        "sessions",
        include_str!("../../migrations/0004_sessions.sql"),
    ),
    (
        5,
        "verifiers",
        include_str!("../../migrations/0005_verifiers.sql"),
    ),
    (
        6,
        "single_use_by_expiry",
        include_str!("../../migrations/0006_single_use_by_expiry.sql"),
    ),
    (
        7,
        "secret_grace",
        include_str!("../../migrations/0007_secret_grace.sql"),
    ),
    (
        8,
        "challenge_counts",
        include_str!("../../migrations/0008_challenge_counts.sql"),
    ),
    (
        9,
        "email_destination",
        include_str!("../../migrations/0009_email_destination.sql"),
    ),
    (
        10,
        "destinations",
        include_str!("../../migrations/0010_destinations.sql"),
    ),
    (
        11,
        "access_tokens",
        include_str!("../../migrations/0011_access_tokens.sql"),
    ),
];

/// Applies every migration not yet recorded; returns the versions applied now. Each migration
/// runs in its own `BEGIN EXCLUSIVE` transaction that first reads the recorded version again, so
/// processes starting together on one database apply each migration once: the others wait for
/// the lock (the busy timeout) and then find it recorded.
pub fn migrate(conn: &mut Connection) -> Result<Vec<i64>, StoreError> {
    let newest_known = MIGRATIONS.last().map_or(0, |m| m.0);
    let mut applied = Vec::new();
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT    NOT NULL,
                 applied_at INTEGER NOT NULL
             )",
        )?;
        let current: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )?;
        if current > newest_known {
            return Err(StoreError::Corrupt(format!(
                "database schema version {current} is newer than this program ({newest_known})"
            )));
        }
        let Some(&(version, name, sql)) = MIGRATIONS.iter().find(|m| m.0 > current) else {
            tx.commit()?;
            return Ok(applied);
        };
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at)
             VALUES (?1, ?2, CAST(strftime('%s','now') AS INTEGER) * 1000)",
            params![version, name],
        )?;
        tx.commit()?;
        applied.push(version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_consecutive_and_apply_once() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.0, i as i64 + 1);
        }
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap().len(), MIGRATIONS.len());
        assert!(migrate(&mut conn).unwrap().is_empty());
        let recorded: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(recorded, MIGRATIONS.len() as i64);
    }
}
