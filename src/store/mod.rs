//! The SQLite store: opening the database, the migrations runner, and one file of SQL per table
//! family. SQL lives here and nowhere else. Blocking calls are run off the async workers through
//! [`Store::read_async`] and [`Store::write_async`].

pub mod access_tokens;
pub mod accounts;
pub mod backup;
pub mod deliveries;
pub mod files;
pub mod migrations;
pub mod server_key;
pub mod sessions;
pub mod sites;
pub mod tokens;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
/// The SQLite connection store functions run on. Modules outside the store name it through this
/// path (the blocking recording twins that join a caller's transaction), never through rusqlite.
pub use rusqlite::Connection;

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
/// One batched write: runs inside the batch's transaction and returns how to answer its caller.
type Work = Box<dyn FnOnce(&Connection) -> Done + Send>;

/// A write waiting for the batch writer.
struct Job {
    work: Work,
    /// Commit everything queued in the same transaction (see [`Store::flush`]).
    with_queue: bool,
}

/// What the batch writer's channel carries.
enum Message {
    /// A write whose caller waits for the commit.
    Job(Job),
    /// Writes were queued (see [`Store::record`]); nobody waits for them.
    Queued,
}

/// How long queued writes (statistics records, spent challenges) wait before they are written.
/// They then join the next commit, so the commits a visitor waits for (spent tokens) stay small,
/// and a burst of records is summed into each rollup row once (see
/// `deliveries::write_records`).
pub const QUEUE_DELAY: Duration = Duration::from_millis(10);

/// The batch writer's loop: takes every write waiting for it, runs them inside one transaction,
/// commits once, and only then answers each caller (group commit). A caller is therefore never
/// told "done" before its write is in the WAL. The queue joins the first commit after its oldest
/// entry is [`QUEUE_DELAY`] old, or the next one a flush asks for; when the channel closes, the
/// last of the queue is committed and the loop returns.
fn run_batches(
    conn: Connection,
    messages: std::sync::mpsc::Receiver<Message>,
    queue: Arc<WriteQueue>,
) {
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::Instant;
    // Statements run for every job are prepared once; the connection's statement cache keeps them.
    let run = |sql: &str| -> rusqlite::Result<()> {
        conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    };
    let mut open = true;
    let mut queue_due: Option<Instant> = None;
    while open {
        let mut batch = Vec::new();
        let first = match queue_due {
            None => messages.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(due) => messages.recv_timeout(due.saturating_duration_since(Instant::now())),
        };
        let mut take = |message: Message, batch: &mut Vec<Job>| match message {
            Message::Job(job) => batch.push(job),
            Message::Queued => {
                queue_due.get_or_insert_with(|| Instant::now() + QUEUE_DELAY);
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
        let write_queue = !open
            || batch.iter().any(|job| job.with_queue)
            || queue_due.is_some_and(|due| due <= Instant::now());
        let queued = if write_queue {
            queue_due = None;
            queue.take()
        } else {
            Queue::default()
        };
        if batch.is_empty() && queued.is_empty() {
            continue;
        }
        let in_tx = run("BEGIN IMMEDIATE").is_ok();
        // The queue first, so that a job asking for it sees what was queued before it.
        if !queued.is_empty() {
            write_queued(&conn, in_tx, &queued);
        }
        // Each job is one statement: a failed one has changed nothing, and its error is its own
        // answer; the others still commit.
        let done: Vec<Done> = batch.into_iter().map(|job| (job.work)(&conn)).collect();
        let failure = if in_tx {
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
    let count = queued.len();
    if !in_tx || run("SAVEPOINT queued").is_err() {
        tracing::error!(count, "could not write queued records: no transaction");
        return;
    }
    let written = queued
        .spent_challenges
        .iter()
        .try_for_each(|(id, expires_at)| tokens::spend_challenge(conn, id, *expires_at).map(drop))
        .and_then(|()| deliveries::write_challenge_counts(conn, &queued.challenge_counts))
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
    queue: Arc<WriteQueue>,
    /// Calls of [`Store::read`] so far (the site directory's cost is measured with it).
    reads: std::sync::atomic::AtomicU64,
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
    /// Challenges issued and solved since the last commit, per site id and hour.
    challenge_counts: deliveries::ChallengeCounts,
    /// Writes refused because the queue was full.
    dropped: usize,
}

/// Most writes the queue holds. The writer empties it every [`QUEUE_DELAY`]; only a writer stuck
/// for seconds (a lock held elsewhere, a failing disk) fills it, and then memory stays bounded:
/// further writes are dropped and counted, as a crash at that moment would lose them.
const MAX_QUEUED: usize = 262_144;

impl Queue {
    fn len(&self) -> usize {
        self.records.len() + self.spent_challenges.len() + self.challenge_counts.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The queue, shared by the callers and the batch writer.
#[derive(Default)]
struct WriteQueue {
    queue: Mutex<Queue>,
}

impl WriteQueue {
    /// Queues one write; true when the queue was empty (the writer must be told).
    fn push(&self, add: impl FnOnce(&mut Queue)) -> bool {
        match self.queue.lock() {
            Ok(mut queue) if queue.len() >= MAX_QUEUED => {
                queue.dropped += 1;
                false
            }
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
        let queue = self
            .queue
            .lock()
            .map(|mut queue| std::mem::take(&mut *queue))
            .unwrap_or_default();
        if queue.dropped > 0 {
            tracing::error!(
                dropped = queue.dropped,
                "the write queue was full: statistics records or spent-challenge records were dropped"
            );
        }
        queue
    }
}

/// A handle to the database: one writer connection (SQLite serialises writers anyway) and a small
/// pool of reader connections, which WAL lets run beside the writer. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// How long a process keeps trying to switch a new database to WAL while another one holds it.
const WAL_SWITCH_WAIT: Duration = Duration::from_secs(5);

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    // WAL with synchronous=NORMAL: a commit survives a crash of this process (kill -9) because it
    // is in the WAL file before the call returns; only a power loss can drop the last commits.
    // WAL is recorded in the file, so only a new database is switched; the switch needs the
    // database alone and SQLite answers "busy" at once, without its busy handler, when processes
    // starting together on a new file race for it: retried here.
    let started = std::time::Instant::now();
    loop {
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if mode.eq_ignore_ascii_case("wal") {
            break;
        }
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && started.elapsed() < WAL_SWITCH_WAIT =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => break other?,
        }
    }
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
    /// Opens (creating the file and its folder when missing, private to their owner: see
    /// [`files`]) and migrates the database.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        files::prepare(path)?;
        let mut writer = open_connection(path)?;
        migrations::migrate(&mut writer).context("applying migrations")?;
        let batch_conn = open_connection(path)?;
        batch_conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .context("configuring the batch writer")?;
        let (batch, messages) = std::sync::mpsc::channel::<Message>();
        let queue = Arc::new(WriteQueue::default());
        let queued = Arc::clone(&queue);
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
                queue,
                reads: std::sync::atomic::AtomicU64::new(0),
                _checkpointer: checkpointer,
            }),
        })
    }

    /// How many reads this handle and its clones have run (every [`Store::read`] and
    /// [`Store::read_async`]).
    pub fn reads(&self) -> u64 {
        self.inner.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many writes are queued for the batch writer's next commit.
    pub fn queue_depth(&self) -> usize {
        self.inner.queue.queue.lock().map_or(0, |queue| queue.len())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` in one write transaction on the writer connection, blocking the calling thread:
    /// committed when `f` returns `Ok`, rolled back otherwise. The transaction begins as a write
    /// (`BEGIN IMMEDIATE`, SPEC §9), so it waits for other processes' writers within the busy
    /// timeout instead of failing on a stale read snapshot when it first writes.
    pub fn write<R, E>(&self, f: impl FnOnce(&Connection) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self
            .inner
            .writer
            .lock()
            .map_err(|_| E::from(StoreError::Poisoned))?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| E::from(StoreError::from(e)))?;
        let result = f(&tx)?;
        tx.commit().map_err(|e| E::from(StoreError::from(e)))?;
        Ok(result)
    }

    /// Runs `f` on a reader connection, blocking the calling thread.
    pub fn read<R, E>(&self, f: impl FnOnce(&Connection) -> Result<R, E>) -> Result<R, E>
    where
        E: From<StoreError>,
    {
        self.inner
            .reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.write(f))
            .await
            .map_err(|_| E::from(StoreError::Task))?
    }

    /// Runs a one-statement write through the batch writer: it shares one transaction (and one
    /// commit) with the writes waiting beside it, and resolves after the commit. `f` must change
    /// at most one row with one statement, so that an `Err` has nothing of its own to undo
    /// (SQLite undoes a failed statement), and must not open transactions itself.
    pub async fn batch_write<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.batched(f, false).await
    }

    /// [`Store::batch_write`] that runs after everything queued before the call, in the same
    /// transaction: `f` sees those writes.
    pub async fn batch_write_after_queue<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.batched(f, true).await
    }

    async fn batched<R, E, F>(&self, f: F, with_queue: bool) -> Result<R, E>
    where
        F: FnOnce(&Connection) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<R, E>>();
        let work: Work = Box::new(move |conn| {
            let result = f(conn);
            Box::new(move |failure| {
                let answer = match failure {
                    None => result,
                    Some(e) => Err(E::from(StoreError::Commit(e))),
                };
                let _ = tx.send(answer);
            })
        });
        self.send(Message::Job(Job { work, with_queue }))
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
    /// within [`QUEUE_DELAY`] (plus the commit itself), with every record queued beside it
    /// summed into the rollups once (see `deliveries::write_records`). A graceful shutdown
    /// calls [`Store::flush`]; a crash loses at most the records of that last moment.
    pub fn record(&self, record: deliveries::Record) {
        self.queue(|queue| queue.records.push(record));
    }

    /// Queues a spent challenge like a statistics record: committed within [`QUEUE_DELAY`],
    /// before a graceful shutdown ends. The issuer refuses it again from memory meanwhile.
    pub fn queue_spent_challenge(&self, id: [u8; 16], expires_at: i64) {
        self.queue(|queue| queue.spent_challenges.push((id, expires_at)));
    }

    /// Counts a challenge issued (`solved` false) or solved for a site in the hour of `at_ms`:
    /// added up in memory and written with the batch writer's next commit.
    pub fn count_challenge(&self, site_id: &str, at_ms: i64, solved: bool) {
        let event = if solved {
            deliveries::Verification::Solved
        } else {
            deliveries::Verification::Issued
        };
        self.count_verification(site_id, at_ms, event);
    }

    /// Counts one verification event for a site in the hour of `at_ms`: added up in memory and
    /// written with the batch writer's next commit, so counting does no I/O of its own.
    pub fn count_verification(&self, site_id: &str, at_ms: i64, event: deliveries::Verification) {
        let hour = at_ms - at_ms.rem_euclid(crate::time::HOUR_MS);
        self.queue(|queue| {
            let counts = &mut queue.challenge_counts;
            // The site's entry is made once per commit; later counts allocate nothing.
            let hours = match counts.get_mut(site_id) {
                Some(hours) => hours,
                None => counts.entry(site_id.to_owned()).or_default(),
            };
            hours.entry(hour).or_default().add(event);
        });
    }

    fn queue(&self, add: impl FnOnce(&mut Queue)) {
        if self.inner.queue.push(add)
            && let Err(e) = self.send(Message::Queued)
        {
            tracing::error!(error = %e, "could not wake the batch writer for a queued write");
        }
    }

    /// Waits until everything queued before this call is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.batch_write_after_queue(|_| Ok::<_, StoreError>(()))
            .await
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

    // What the rest of the crate reaches the store through, grouped by what callers need. The
    // closure-taking methods above are for this module's own files (and tests that seed data).

    /// The site records.
    pub fn sites(&self) -> sites::Sites<'_> {
        sites::Sites(self)
    }

    /// The account records.
    pub fn accounts(&self) -> accounts::Accounts<'_> {
        accounts::Accounts(self)
    }

    /// The management API's personal access tokens.
    pub fn access_tokens(&self) -> access_tokens::AccessTokens<'_> {
        access_tokens::AccessTokens(self)
    }

    /// The dashboard's sessions.
    pub fn sessions(&self) -> sessions::Sessions<'_> {
        sessions::Sessions(self)
    }

    /// The single-use records: spent challenges and used verification tokens.
    pub fn single_use(&self) -> tokens::SingleUse<'_> {
        tokens::SingleUse(self)
    }

    /// The stored server key, storing `fresh` first when there is none (the first start).
    pub fn server_key_or_insert(&self, fresh: &[u8], now_ms: i64) -> Result<Vec<u8>, StoreError> {
        self.write(|c| server_key::get_or_insert(c, fresh, now_ms))
    }

    /// Whether the database answers a query (`/healthz`).
    pub async fn answers(&self) -> bool {
        self.read_async(|c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map_err(StoreError::from)
        })
        .await
        .is_ok()
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

    /// One job: insert `id`, or fail on a duplicate primary key when it is already there.
    async fn insert(store: &Store, id: String) -> Result<(), StoreError> {
        store
            .batch_write(move |c| {
                c.execute(
                    "INSERT INTO redeemed_tokens (expires_at, session_id) VALUES (1, ?1)",
                    [id],
                )?;
                Ok(())
            })
            .await
    }

    fn ids(store: &Store) -> Vec<String> {
        store
            .read(|c| {
                let mut stmt = c.prepare("SELECT session_id FROM redeemed_tokens ORDER BY 1")?;
                let rows = stmt.query_map([], |r| r.get(0))?;
                Ok::<_, StoreError>(rows.collect::<Result<_, _>>()?)
            })
            .unwrap()
    }

    #[actix_web::test]
    async fn a_failed_write_answers_its_error_and_the_next_one_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("one.db")).unwrap();
        assert!(insert(&store, "a".into()).await.is_ok());
        assert!(insert(&store, "a".into()).await.is_err());
        assert!(insert(&store, "b".into()).await.is_ok());
        assert_eq!(ids(&store), ["a", "b"]);
    }

    #[actix_web::test]
    async fn batched_writes_commit_together_and_a_failed_one_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("b.db")).unwrap();
        let mut handles = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            // Every tenth one repeats an id already taken: its statement fails alone.
            let id = if i % 10 == 5 {
                "s0".to_owned()
            } else {
                format!("s{i}")
            };
            handles.push(tokio::spawn(async move { insert(&store, id).await }));
        }
        let mut ok = 0;
        for handle in handles {
            if handle.await.unwrap().is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 180);
        assert_eq!(ids(&store).len(), 180, "failed writes left nothing behind");
    }

    #[test]
    fn a_full_queue_drops_and_counts_further_writes() {
        let queue = WriteQueue::default();
        assert!(queue.push(|q| q.spent_challenges.push(([0; 16], 1))));
        for i in 1..MAX_QUEUED {
            assert!(!queue.push(|q| q.spent_challenges.push(([0; 16], i as i64))));
        }
        assert!(!queue.push(|q| q.spent_challenges.push(([1; 16], 1))));
        assert!(!queue.push(|q| q.spent_challenges.push(([2; 16], 1))));
        let taken = queue.take();
        assert_eq!(taken.len(), MAX_QUEUED);
        assert_eq!(taken.dropped, 2);
        assert!(queue.take().is_empty(), "taking empties it");
    }

    #[actix_web::test]
    async fn a_write_after_the_queue_sees_a_spend_still_waiting_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("q.db")).unwrap();
        store.queue_spent_challenge([3; 16], 1_000);
        let fresh = store
            .batch_write_after_queue(|c| tokens::spend_challenge(c, &[3; 16], 1_000))
            .await
            .unwrap();
        assert!(!fresh, "the queued spend was written first");
        let other = store
            .batch_write_after_queue(|c| tokens::spend_challenge(c, &[4; 16], 1_000))
            .await
            .unwrap();
        assert!(other);
    }

    #[actix_web::test]
    async fn queued_writes_are_committed_on_their_own_within_moments() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        store.queue_spent_challenge([5; 16], 1_000);
        let count = || {
            store
                .read(|c| {
                    c.query_row("SELECT COUNT(*) FROM spent_challenges", [], |r| {
                        r.get::<_, i64>(0)
                    })
                    .map_err(StoreError::from)
                })
                .unwrap()
        };
        let started = std::time::Instant::now();
        while count() == 0 && started.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(count(), 1);
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
