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
    (
        12,
        "management",
        include_str!("../../migrations/0012_management.sql"),
    ),
    (
        13,
        "verification_counts",
        include_str!("../../migrations/0013_verification_counts.sql"),
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

    #[test]
    fn the_management_migration_keeps_every_site_as_it_was() {
        let conn = Connection::open_in_memory().unwrap();
        for &(_, _, sql) in &MIGRATIONS[..11] {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO accounts (id, email, password_hash, created_at) VALUES (1, 'a@x', 'h', 5);
             INSERT INTO accounts (id, email, password_hash, created_at) VALUES (2, 'b@x', 'h', 6);
             INSERT INTO sites (id, account_id, name, site_key, secret_hash, webhook_url, enabled,
                                challenge_count, challenge_difficulty, created_at, updated_at)
             VALUES ('site_on', 1, 'On', 'k1', x'01', 'https://h.example/', 1, 50, 4, 10, 20),
                    ('site_off', 1, 'Off', 'k2', x'02', 'https://h.example/', 0, 50, 4, 11, 21);",
        )
        .unwrap();
        conn.execute_batch(MIGRATIONS[11].2).unwrap();
        type Row = (String, bool, bool, Option<i64>, Option<i64>);
        let rows: Vec<Row> = conn
            .prepare(
                "SELECT id, enabled, disabled, hosted_created_at, hosted_updated_at FROM sites
                 ORDER BY id",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                ("site_off".to_owned(), false, false, Some(11), Some(21)),
                ("site_on".to_owned(), true, false, Some(10), Some(20)),
            ],
            "forwarding as it was, no key disabled, the hosted times the site's own"
        );
        let troops: Vec<String> = conn
            .prepare("SELECT troop_id FROM accounts ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(troops.len(), 2);
        assert!(
            troops
                .iter()
                .all(|t| t.starts_with("troop_") && t.len() == 22)
        );
        assert_ne!(troops[0], troops[1]);
    }
}
