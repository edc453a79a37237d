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
    /// The batch a write belonged to could not be committed.
    #[error("database commit failed: {0}")]
    Commit(String),
}

/// Most idle read connections kept for reuse.
const MAX_IDLE_READERS: usize = 8;

/// Most writes committed together by the batch writer.
const MAX_BATCH: usize = 256;

/// Called with the batch's commit error, if any, once the batch is committed or rolled back.
type Done = Box<dyn FnOnce(Option<String>) + Send>;
/// One batched write: runs inside the batch's transaction, says whether to keep its changes.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Done) + Send>;

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    batch: Mutex<std::sync::mpsc::Sender<Job>>,
    /// Dropping it stops the checkpointer.
    _checkpointer: std::sync::mpsc::Sender<()>,
}

/// How often the WAL is checkpointed in the background.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Checkpoints the WAL from its own connection, so the batch writer's commits never pay for it
/// (the batch connection has automatic checkpoints off). PASSIVE never blocks writers.
fn run_checkpoints(conn: Connection, stop: std::sync::mpsc::Receiver<()>) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY)
    {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

/// The batch writer's loop: takes every queued write, runs each in its own savepoint inside one
/// transaction, commits once, and only then answers each caller (group commit). A caller is
/// therefore never told "done" before its write is in the WAL.
fn run_batches(conn: Connection, jobs: std::sync::mpsc::Receiver<Job>) {
    // Statements run for every job are prepared once; the connection's statement cache keeps them.
    let run = |sql: &str| -> rusqlite::Result<()> {
        conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    };
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let in_tx = run("BEGIN IMMEDIATE").is_ok();
        // A write alone in its batch needs no savepoint: its transaction is its own.
        let alone = batch.len() == 1;
        let mut roll_back = false;
        let mut done = Vec::with_capacity(batch.len());
        for job in batch {
            let savepoint = in_tx && !alone && run("SAVEPOINT job").is_ok();
            let (keep, callback) = job(&conn);
            if savepoint {
                let ended = if keep {
                    run("RELEASE job")
                } else {
                    run("ROLLBACK TO job").and_then(|()| run("RELEASE job"))
                };
                if let Err(e) = ended {
                    tracing::error!(error = %e, "batch savepoint failed");
                }
            } else if alone && !keep {
                roll_back = true;
            }
            done.push(callback);
        }
        let failure = if in_tx && roll_back {
            // The lone write failed: its own error is its answer; nothing else was in the batch.
            let _ = run("ROLLBACK");
            None
        } else if in_tx {
            match run("COMMIT") {
                Ok(()) => None,
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Some(e.to_string())
                }
            }
        } else {
            None
        };
        for callback in done {
            callback(failure.clone());
        }
    }
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
        let batch_conn = open_connection(path)?;
        batch_conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .context("configuring the batch writer")?;
        let (batch, jobs) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("store-batch-writer".into())
            .spawn(move || run_batches(batch_conn, jobs))
            .context("starting the batch writer")?;
        let checkpoint_conn = open_connection(path)?;
        let (checkpointer, stop) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("store-checkpointer".into())
            .spawn(move || run_checkpoints(checkpoint_conn, stop))
            .context("starting the checkpointer")?;
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                batch: Mutex::new(batch),
                _checkpointer: checkpointer,
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

    /// Runs a short write through the batch writer: it shares one transaction (and one commit)
    /// with the writes queued beside it, in its own savepoint (`Err` rolls back only its own
    /// changes). Resolves after the commit. `f` must not open transactions itself.
    pub async fn batch_write<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<R, E>>();
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            let keep = result.is_ok();
            let done: Done = Box::new(move |failure| {
                let answer = match failure {
                    None => result,
                    Some(e) => Err(E::from(StoreError::Commit(e))),
                };
                let _ = tx.send(answer);
            });
            (keep, done)
        });
        let sent = self
            .inner
            .batch
            .lock()
            .map_err(|_| E::from(StoreError::Poisoned))?
            .send(job);
        if sent.is_err() {
            return Err(E::from(StoreError::Task));
        }
        rx.await.map_err(|_| E::from(StoreError::Task))?
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

    #[actix_web::test]
    async fn a_lone_failed_write_leaves_nothing_and_the_next_one_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("one.db")).unwrap();
        let insert = |id: &'static str, fail: bool| {
            let store = store.clone();
            async move {
                store
                    .batch_write(move |c| {
                        c.execute(
                            "INSERT INTO redeemed_tokens (session_id, expires_at) VALUES (?1, 1)",
                            [id],
                        )?;
                        if fail {
                            return Err(StoreError::Corrupt("refused".into()));
                        }
                        Ok(())
                    })
                    .await
            }
        };
        assert!(insert("a", true).await.is_err());
        assert!(insert("b", false).await.is_ok());
        let ids: Vec<String> = store
            .read(|c| {
                let mut stmt = c.prepare("SELECT session_id FROM redeemed_tokens")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok::<_, StoreError>(rows.collect::<Result<_, _>>()?)
            })
            .unwrap();
        assert_eq!(ids, ["b"]);
    }

    #[actix_web::test]
    async fn batched_writes_commit_together_and_a_failed_one_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("b.db")).unwrap();
        let mut handles = Vec::new();
        for i in 0..200i64 {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                store
                    .batch_write(move |c| {
                        c.execute(
                            "INSERT INTO redeemed_tokens (session_id, expires_at) VALUES (?1, 1)",
                            [format!("s{i}")],
                        )?;
                        if i % 10 == 0 {
                            return Err(StoreError::Corrupt("refused".into()));
                        }
                        Ok(i)
                    })
                    .await
            }));
        }
        let mut ok = 0;
        for handle in handles {
            if handle.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        let rows: i64 = store
            .read(|c| {
                c.query_row("SELECT COUNT(*) FROM redeemed_tokens", [], |r| r.get(0))
                    .map_err(StoreError::from)
            })
            .unwrap();
        assert_eq!(ok, 180);
        assert_eq!(rows, 180, "refused writes left nothing behind");
    }

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
