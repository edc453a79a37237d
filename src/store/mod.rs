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
type Work = Box<dyn FnOnce(&Connection) -> (bool, Done) + Send>;

/// A write waiting for the batch writer.
struct Job {
    work: Work,
    /// Run inside its own savepoint, so that an `Err` undoes only its own changes. A job that
    /// changes at most one row with one statement needs none: SQLite undoes a failed statement.
    savepoint: bool,
    /// Commit every queued record in the same transaction (see [`Store::flush`]).
    with_records: bool,
}

/// What the batch writer's channel carries.
enum Message {
    /// A write whose caller waits for the commit.
    Job(Job),
    /// Records were queued (see [`Store::record`]); nobody waits for them.
    Records,
}

/// How long queued statistics records wait before they are written. They then join the next
/// commit, so the writes a visitor waits for (spent tokens) stay small, and a burst of records
/// is summed into each rollup row once (see [`deliveries::write_records`]).
const RECORD_DELAY: Duration = Duration::from_millis(10);

/// The batch writer's loop: takes every queued write, runs each (in its own savepoint when it
/// needs one) inside one transaction, commits once, and only then answers each caller (group
/// commit). A caller is therefore never told "done" before its write is in the WAL. Queued
/// records join the first commit after they are [`RECORD_DELAY`] old, or the next one a flush
/// asks for; when the channel closes, the last records are committed and it returns.
fn run_batches(
    conn: Connection,
    messages: std::sync::mpsc::Receiver<Message>,
    records: Arc<Records>,
) {
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::Instant;
    // Statements run for every job are prepared once; the connection's statement cache keeps them.
    let run = |sql: &str| -> rusqlite::Result<()> {
        conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    };
    let mut open = true;
    let mut records_due: Option<Instant> = None;
    while open {
        let mut batch = Vec::new();
        let first = match records_due {
            None => messages.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(due) => messages.recv_timeout(due.saturating_duration_since(Instant::now())),
        };
        let mut take = |message: Message, batch: &mut Vec<Job>| match message {
            Message::Job(job) => batch.push(job),
            Message::Records => {
                records_due.get_or_insert_with(|| Instant::now() + RECORD_DELAY);
            }
        };
        match first {
            Ok(message) => take(message, &mut batch),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open = false,
        }
        while batch.len() < MAX_BATCH {
            match messages.try_recv() {
                Ok(message) => take(message, &mut batch),
                Err(_) => break,
            }
        }
        let write_records = !open
            || batch.iter().any(|job| job.with_records)
            || records_due.is_some_and(|due| due <= Instant::now());
        let queued = if write_records {
            records_due = None;
            records.take()
        } else {
            Queue::default()
        };
        if batch.is_empty() && queued.is_empty() {
            continue;
        }
        let in_tx = run("BEGIN IMMEDIATE").is_ok();
        // A write alone in its batch needs no savepoint: its transaction is its own.
        let alone = batch.len() == 1 && queued.is_empty();
        let mut roll_back = false;
        let mut done = Vec::with_capacity(batch.len());
        for job in batch {
            let savepoint = in_tx && !alone && job.savepoint && run("SAVEPOINT job").is_ok();
            let (keep, callback) = (job.work)(&conn);
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
        if !queued.is_empty() {
            write_queued(&conn, in_tx, &queued);
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
                    if !queued.is_empty() {
                        tracing::error!(error = %e, "could not commit the queued writes");
                    }
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

/// Writes the queue inside the batch's transaction, in a savepoint of its own so that a failure
/// leaves the batch's other writes alone.
fn write_queued(conn: &Connection, in_tx: bool, queued: &Queue) {
    let run = |sql: &str| -> rusqlite::Result<()> {
        conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    };
    let count = queued.records.len() + queued.spent_challenges.len();
    if !in_tx || run("SAVEPOINT queued").is_err() {
        tracing::error!(count, "could not write queued records: no transaction");
        return;
    }
    let written = queued
        .spent_challenges
        .iter()
        .try_for_each(|(id, expires_at)| tokens::spend_challenge(conn, id, *expires_at).map(drop))
        .and_then(|()| deliveries::write_records(conn, &queued.records));
    match written {
        Ok(0) => {}
        Ok(skipped) => tracing::warn!(skipped, "dropped statistics records of deleted sites"),
        Err(e) => {
            tracing::error!(error = %e, count, "could not write queued records");
            let _ = run("ROLLBACK TO queued");
        }
    }
    let _ = run("RELEASE queued");
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    batch: Mutex<std::sync::mpsc::Sender<Message>>,
    records: Arc<Records>,
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

/// Writes queued behind their callers' answers for the batch writer's next commit.
#[derive(Default)]
struct Queue {
    /// Statistics records.
    records: Vec<deliveries::Record>,
    /// Spent challenges (id, expiry), already refused again by the issuer's memory.
    spent_challenges: Vec<([u8; 16], i64)>,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.records.is_empty() && self.spent_challenges.is_empty()
    }
}

#[derive(Default)]
struct Records {
    queue: Mutex<Queue>,
}

impl Records {
    /// Queues one write; true when the queue was empty (the writer must be told).
    fn push(&self, add: impl FnOnce(&mut Queue)) -> bool {
        match self.queue.lock() {
            Ok(mut queue) => {
                let was_empty = queue.is_empty();
                add(&mut queue);
                was_empty
            }
            Err(_) => {
                tracing::error!("write queue lock poisoned; a queued write was dropped");
                false
            }
        }
    }

    fn take(&self) -> Queue {
        self.queue
            .lock()
            .map(|mut queue| std::mem::take(&mut *queue))
            .unwrap_or_default()
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
        let (batch, messages) = std::sync::mpsc::channel::<Message>();
        let records = Arc::new(Records::default());
        let queued = Arc::clone(&records);
        std::thread::Builder::new()
            .name("store-batch-writer".into())
            .spawn(move || run_batches(batch_conn, messages, queued))
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
                records,
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
        self.batched(f, true, false).await
    }

    /// [`Store::batch_write`] for a write that changes at most one row with one statement, so an
    /// `Err` has nothing of its own to undo and needs no savepoint.
    pub async fn batch_write_one<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.batched(f, false, false).await
    }

    async fn batched<R, E, F>(&self, f: F, savepoint: bool, with_records: bool) -> Result<R, E>
    where
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<R, E>>();
        let work: Work = Box::new(move |conn| {
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
        self.send(Message::Job(Job {
            work,
            savepoint,
            with_records,
        }))
        .map_err(E::from)?;
        rx.await.map_err(|_| E::from(StoreError::Task))?
    }

    fn send(&self, message: Message) -> Result<(), StoreError> {
        self.inner
            .batch
            .lock()
            .map_err(|_| StoreError::Poisoned)?
            .send(message)
            .map_err(|_| StoreError::Task)
    }

    /// Queues a statistics record for the batch writer without waiting for it: it is committed
    /// within [`RECORD_DELAY`] (plus the commit itself), with every record queued beside it
    /// summed into the rollups once (see [`deliveries::write_records`]). A graceful shutdown
    /// calls [`Store::flush`]; a crash loses at most the records of that last moment.
    pub fn record(&self, record: deliveries::Record) {
        self.queue(|queue| queue.records.push(record));
    }

    /// Queues a spent challenge like a statistics record: committed within [`RECORD_DELAY`],
    /// before a graceful shutdown ends. The issuer refuses it again from memory meanwhile.
    pub fn queue_spent_challenge(&self, id: [u8; 16], expires_at: i64) {
        self.queue(|queue| queue.spent_challenges.push((id, expires_at)));
    }

    fn queue(&self, add: impl FnOnce(&mut Queue)) {
        if self.inner.records.push(add)
            && let Err(e) = self.send(Message::Records)
        {
            tracing::error!(error = %e, "could not wake the batch writer for a queued write");
        }
    }

    /// Waits until every record queued before this call is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.batched(|_| Ok::<_, StoreError>(()), false, true).await
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
