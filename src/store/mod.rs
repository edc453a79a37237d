//! The SQLite store: opening the database, the migrations runner, and one file of SQL per table
//! family. SQL lives here and nowhere else. Blocking calls are run off the async workers through
//! [`Store::read_async`] and [`Store::write_async`].

pub mod accounts;
pub mod deliveries;
pub mod migrations;
pub mod server_key;
pub mod sessions;
pub mod sites;
pub mod tokens;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use rusqlite::Connection;

/// A failure of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored value could not be read back into its type.
    #[error("database holds an invalid value: {0}")]
    Corrupt(String),
    /// The blocking task running the query did not complete.
    #[error("database task failed")]
    Task,
    /// A connection lock was poisoned by a panic on another thread.
    #[error("database connection lock poisoned")]
    Poisoned,
}

/// Most idle read connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

/// A handle to the database: one writer connection (SQLite serialises writers anyway) and a small
/// pool of reader connections, which WAL lets run beside the writer. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL with synchronous=NORMAL: a commit survives a crash of this process (kill -9) because it
    // is in the WAL file before the call returns; only a power loss can drop the last commits.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn open_connection(path: &Path) -> anyhow::Result<Connection> {
    let conn =
        Connection::open(path).with_context(|| format!("opening database {}", path.display()))?;
    configure(&conn).context("configuring database connection")?;
    Ok(conn)
}

impl Store {
    /// Opens (creating the file and its folder when missing) and migrates the database.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating database folder {}", parent.display()))?;
        }
        let mut writer = open_connection(path)?;
        migrations::migrate(&mut writer).context("applying migrations")?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the writer connection, blocking the calling thread.
    pub fn write<R, E>(&self, f: impl FnOnce(&mut Connection) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self
            .inner
            .writer
            .lock()
            .map_err(|_| E::from(StoreError::Poisoned))?;
        f(&mut conn)
    }

    /// Runs `f` on a reader connection, blocking the calling thread.
    pub fn read<R, E>(&self, f: impl FnOnce(&Connection) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let pooled = self
            .inner
            .readers
            .lock()
            .map_err(|_| E::from(StoreError::Poisoned))?
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_connection(&self.inner.path)
                .map_err(|e| E::from(StoreError::Corrupt(format!("{e:#}"))))?,
        };
        let result = f(&conn);
        if let Ok(mut idle) = self.inner.readers.lock()
            && idle.len() < MAX_IDLE_READERS
        {
            idle.push(conn);
        }
        result
    }

    /// Runs `f` on the writer connection on the blocking thread pool.
    pub async fn write_async<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&mut Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.write(f))
            .await
            .map_err(|_| E::from(StoreError::Task))?
    }

    /// Runs `f` on a reader connection on the blocking thread pool.
    pub async fn read_async<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read(f))
            .await
            .map_err(|_| E::from(StoreError::Task))?
    }
}

/// True when `err` is a violation of a UNIQUE or PRIMARY KEY constraint.
pub fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_the_folder_and_uses_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/deeper/forwarder.db");
        let store = Store::open(&path).unwrap();
        assert!(path.exists());
        let mode: String = store
            .read(|c| {
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = store
            .read(|c| {
                c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(fk, 1);
    }
}
