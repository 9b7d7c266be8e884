//! The SQLite token role's writer: one OS thread owning one read-write rusqlite connection, fed by a
//! channel. Each store call is ONE job — all its statements, audit rows included — so a refresh
//! rotation is one hand-off to this thread and one oneshot answer back, instead of a hand-off
//! per statement through sqlx's worker thread.
//!
//! Group commit: the thread takes every job waiting in the queue (up to `max_batch`) and runs
//! them in ONE SQLite transaction, each inside its own savepoint, so a job that fails is rolled
//! back alone and the others still commit. Answers are sent only after `COMMIT` returned, so a
//! caller never sees a result that a crash could still take back (with WAL and
//! `synchronous = NORMAL`, a committed transaction survives a process kill) and a job that lost
//! a race can immediately read the winner's rows from any connection. While writes are
//! concurrent, a transaction also waits for the jobs that arrive within 0.5 ms of the previous
//! one's beginning ([`gather`]): fewer, larger transactions write fewer pages per job.
//!
//! This connection and sqlx's writer connection (which keeps every other write) are two SQLite
//! writers of the same file. So that they neither deadlock nor starve each other, the thread
//! borrows the sqlx writer pool's single connection for the length of each transaction: the
//! two take turns in the pool's fair (first come, first served) queue, in process, instead of
//! polling SQLite's lock with a busy handler — under sustained hot writes a polling sqlx writer
//! could wait for seconds and fail with `SQLITE_BUSY`. Against other processes (the CLI) the
//! 5 s busy timeouts still apply: this connection takes the write lock up front
//! (`BEGIN IMMEDIATE`) and every sqlx write transaction starts with a write statement, so no
//! transaction holds a read snapshot while it waits for the lock (the one case in which SQLite
//! answers `SQLITE_BUSY` without waiting).
//!
//! Checkpoints: this thread's connection does not checkpoint by itself (`wal_autocheckpoint =
//! 0`). With `synchronous = NORMAL` a commit only appends to the WAL; the fsyncs happen when
//! the WAL is copied back into the database file, and SQLite's automatic checkpoint does that
//! inside the `COMMIT` of whichever write crosses 1,000 pages — on this thread, which then
//! waits for two fsyncs while every queued token write waits for it. (The sqlx writer keeps
//! the automatic checkpoint, so that its writes alone also restart the WAL: sqlite.rs.) A checkpointer thread with its own connection runs
//! `PRAGMA wal_checkpoint(PASSIVE)` shortly after commits instead: in WAL mode a checkpoint runs
//! beside the writer (it copies frames already committed while new ones are appended), so the
//! disk's fsync latency leaves the write path. Measured on this machine: rotating refresh
//! 3.6 k/s with the database on disk vs 5.6 k/s on tmpfs before the change (BENCHMARKS.md).
//!
//! WAL appends: SQLite writes each frame as two `pwrite`s (header, page); this connection
//! opens through a VFS shim (wal_append.rs) that writes a transaction's frames in a few large
//! calls before the commit is published: a third less CPU spent appending frames.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags};
use sqlx::pool::PoolConnection;
use sqlx::Sqlite;
use tokio::sync::oneshot;

use camgate_core::error::StoreError;
use camgate_core::model::AuditEvent;
use camgate_core::store::StoreResult;

/// Jobs per transaction when nothing else is configured.
pub(crate) const DEFAULT_MAX_BATCH: usize = 64;

/// One unit of work: runs inside a savepoint, then learns whether its transaction committed.
trait Job: Send {
    /// Runs the job's statements; false if it failed (its savepoint is then rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Delivers the answer once the transaction ended (`Err`: it did not commit).
    fn finish(self: Box<Self>, committed: Result<(), &StoreError>);
}

struct Typed<T, F> {
    f: F,
    out: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Typed<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> rusqlite::Result<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        // A panic (a bug) fails this job alone instead of stopping the writer thread.
        let f = &mut self.f;
        let r = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn))) {
            Ok(r) => r.map_err(map_err),
            Err(_) => Err(StoreError::Other("write job panicked".into())),
        };
        let ok = r.is_ok();
        self.out = Some(r);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), &StoreError>) {
        let answer = match (committed, self.out) {
            (Ok(()), Some(r)) => r,
            (Err(e), _) => Err(copy_err(e)),
            (Ok(()), None) => Err(StoreError::Other("write job did not run".into())),
        };
        // The caller may have gone away (request cancelled); nothing to do then.
        let _ = self.reply.send(answer);
    }
}

fn copy_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Other(m) => StoreError::Other(m.clone()),
    }
}

pub(crate) fn map_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StoreError::Conflict(e.to_string())
            }
            _ => StoreError::Other(e.to_string()),
        },
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

/// The handle the store keeps; dropping it ends the thread (after the queued jobs).
pub(crate) struct Writer {
    tx: mpsc::Sender<Box<dyn Job>>,
}

/// How long the checkpointer waits after a commit nudged it, so that one checkpoint (two
/// fsyncs) covers every commit of that window.
const CHECKPOINT_DELAY: Duration = Duration::from_millis(100);
/// Without nudges the checkpointer still looks this often.
const CHECKPOINT_IDLE: Duration = Duration::from_secs(1);

/// The writer thread's side of the checkpointer.
struct Checkpoints {
    /// Wakes the checkpointer after a commit (never blocks: a nudge already pending is enough).
    nudge: mpsc::SyncSender<()>,
    /// Set by the checkpointer after it copied frames back: the writer's next transaction
    /// should first finish the job (see [`Checkpoints::before_transaction`]).
    copied: Arc<AtomicBool>,
}

impl Checkpoints {
    /// Starts the checkpointer thread for the database at `path`. It ends when the writer
    /// thread does, after a last checkpoint.
    fn start(path: &std::path::Path) -> Result<Self, StoreError> {
        let conn = open(path, false).map_err(map_err)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = std::path::PathBuf::from(wal);
        let frame_bytes = 24
            + conn
                .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
                .map_err(map_err)?;
        let (nudge, rx) = mpsc::sync_channel::<()>(1);
        let copied = Arc::new(AtomicBool::new(false));
        let flag = copied.clone();
        std::thread::Builder::new()
            .name("sqlite-checkpnt".into())
            .spawn(move || {
                // Consecutive passes that found little of the WAL in use.
                let mut quiet = 0u32;
                loop {
                    let idle = match rx.recv_timeout(CHECKPOINT_IDLE) {
                        Ok(()) => {
                            std::thread::sleep(CHECKPOINT_DELAY);
                            while rx.try_recv().is_ok() {}
                            false
                        }
                        // Commits of the sqlx writer (which does not nudge) are covered here;
                        // with nothing to copy a checkpoint only reads the WAL index.
                        Err(mpsc::RecvTimeoutError::Timeout) => true,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    };
                    // The second pass copies what was committed during the first, so
                    // that the writer's share (before_transaction) is small.
                    let first = pass(&conn);
                    let second = first.copied_all.then(|| pass(&conn));
                    if second.is_some_and(|p| p.copied_all) {
                        flag.store(true, Ordering::Release);
                    }
                    let in_use = second.unwrap_or(first).frames.saturating_mul(frame_bytes);
                    quiet = if (0..WAL_QUIET).contains(&in_use) {
                        quiet.saturating_add(1)
                    } else {
                        0
                    };
                    if idle || quiet >= QUIET_PASSES {
                        truncate_when_quiet(&conn, &wal);
                    }
                }
                checkpoint(&conn);
            })
            .map_err(|e| StoreError::Other(format!("cannot start the SQLite checkpointer: {e}")))?;
        Ok(Self { nudge, copied })
    }

    /// After a commit.
    fn committed(&self) {
        let _ = self.nudge.try_send(());
    }

    /// Before the writer's next transaction. SQLite starts the WAL over from its beginning
    /// (instead of appending to an ever longer file) only when a write transaction begins
    /// with every frame already copied back, and under a steady stream of commits the
    /// checkpointer never sees that moment: frames arrive while it copies. So once it has
    /// copied a stretch, the writer — the only one that can make the moment happen — copies
    /// the few frames committed since (a small passive checkpoint of its own, in its turn, so
    /// nothing can be appended meanwhile) and its next transaction restarts the log. Without
    /// this the WAL grew by about 200 MB/s under rotating refresh, and every frame written was
    /// a new file block (ext4 block allocation and page zeroing were half of this thread's
    /// time). It is not always enough: a restart also needs every reader on the newest
    /// snapshot, and under rotating refresh with busy readers the WAL still reached 200–500
    /// MB between restarts (measured 2026-12-06), which is why a restarted log is no longer
    /// cut back while writes go on (`journal_size_limit = -1`, see [`open`]).
    fn before_transaction(&self, conn: &Connection) {
        if self.copied.swap(false, Ordering::Acquire) {
            checkpoint(conn);
        }
    }
}

/// A WAL longer than this is cut to nothing once writes pause or slow down.
pub(crate) const WAL_KEEP: u64 = 64 * 1024 * 1024;
/// Writes have slowed down when this many passes in a row found less than [`WAL_QUIET`]
/// bytes of the WAL in use (the log restarts again). Under rotating refresh the log grows by
/// tens of megabytes between passes, so such a streak does not happen while it lasts.
const QUIET_PASSES: u32 = 10;
const WAL_QUIET: i64 = 8 * 1024 * 1024;
/// How long the idle truncation may wait for a reader or writer (it holds new writers off
/// while it waits).
const TRUNCATE_WAIT: Duration = Duration::from_millis(20);

/// With no commit for [`CHECKPOINT_IDLE`], or after [`QUIET_PASSES`] quiet passes, gives the
/// disk back: a WAL over [`WAL_KEEP`] is checkpointed and truncated to zero bytes
/// (`wal_checkpoint(TRUNCATE)`). If a reader or writer is still busy after
/// [`TRUNCATE_WAIT`], it is tried again at the next look.
fn truncate_when_quiet(conn: &Connection, wal: &std::path::Path) {
    if std::fs::metadata(wal).map_or(true, |m| m.len() <= WAL_KEEP) {
        return;
    }
    let r = conn.busy_timeout(TRUNCATE_WAIT).and_then(|()| {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            r.get::<_, i64>(0)
        })
    });
    let _ = conn.busy_timeout(Duration::from_secs(5));
    match r {
        Ok(busy) => tracing::debug!(busy, "idle WAL truncation"),
        Err(e) => tracing::warn!(error = %e, "idle WAL truncation failed"),
    }
}

/// What one checkpoint pass found.
#[derive(Clone, Copy)]
struct Pass {
    /// It copied every frame it found (and found some).
    copied_all: bool,
    /// Frames in the WAL since its last restart (-1 if the pass failed).
    frames: i64,
}

/// One passive checkpoint: copies what it can without waiting for readers or writers.
fn pass(conn: &Connection) -> Pass {
    let r = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    });
    match r {
        Ok((busy, log, done)) => {
            tracing::trace!(busy, log, done, "WAL checkpoint");
            Pass {
                copied_all: busy == 0 && log > 0 && done == log,
                frames: log,
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpoint failed");
            Pass {
                copied_all: false,
                frames: -1,
            }
        }
    }
}

/// One passive checkpoint; true when it copied every frame it found (and found some).
fn checkpoint(conn: &Connection) -> bool {
    pass(conn).copied_all
}

impl Writer {
    /// Opens the connection and starts the thread. `turn`: the sqlx writer pool (one
    /// connection), held during each transaction so the two writers take turns; `waiting`:
    /// how many sqlx writes want it.
    pub(crate) fn start(
        path: &std::path::Path,
        max_batch: usize,
        turn: sqlx::SqlitePool,
        waiting: Arc<AtomicUsize>,
    ) -> Result<Self, StoreError> {
        let conn = open(path, wal_append()).map_err(map_err)?;
        let rt = tokio::runtime::Handle::try_current().map_err(|e| {
            StoreError::Other(format!("no Tokio runtime for the SQLite writer: {e}"))
        })?;
        let checkpoints = Checkpoints::start(path)?;
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let turn = Turn {
                    pool: turn,
                    waiting,
                };
                run(conn, rx, max_batch.max(1), rt, turn, checkpoints)
            })
            .map_err(|e| StoreError::Other(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Self { tx })
    }

    /// Runs `f` in a transaction on the writer thread (grouped with other waiting jobs, each in
    /// its own savepoint) and answers after the commit.
    pub(crate) async fn call<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Typed {
            f,
            out: None,
            reply,
        });
        self.tx
            .send(job)
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?
    }
}

/// Whether the writer thread's connection coalesces its WAL writes (wal_append.rs). On unless
/// `CAMGATE_SQLITE_WAL_APPEND=0`, which exists to measure the shim against SQLite's own
/// writes in one build.
fn wal_append() -> bool {
    if std::env::var("CAMGATE_SQLITE_WAL_APPEND").is_ok_and(|v| v == "0") {
        return false;
    }
    match super::wal_append::register() {
        Ok(()) => true,
        Err(code) => {
            tracing::warn!(
                code,
                "SQLite WAL-append VFS not registered; SQLite's own writes are used"
            );
            false
        }
    }
}

/// `coalesce`: open through the WAL-append shim (only the connection that writes frames
/// gains from it).
fn open(path: &std::path::Path, coalesce: bool) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = if coalesce {
        Connection::open_with_flags_and_vfs(path, flags, super::wal_append::VFS_NAME)?
    } else {
        Connection::open_with_flags(path, flags)?
    };
    conn.busy_timeout(Duration::from_secs(5))?;
    // Per-connection settings, the same as the sqlx connections' (sqlite.rs).
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "temp_store", "memory")?;
    conn.pragma_update(None, "cache_size", -16000)?;
    // The checkpointer thread checkpoints (see the module notes).
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // A restarted WAL keeps its length while writes go on: under a steady stream of commits
    // SQLite often cannot restart the log (a reader still holds an older snapshot when the
    // writer's transaction begins), so the WAL grows to hundreds of megabytes between
    // restarts, and a limit cut it back at each restart only for the next stretch to
    // allocate those blocks again (ext4 block allocation, truncation, more writeback). The
    // checkpointer cuts it to nothing once writes pause or slow down ([`truncate_when_quiet`]).
    conn.pragma_update(None, "journal_size_limit", -1)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn run(
    conn: Connection,
    rx: mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
    rt: tokio::runtime::Handle,
    turn: Turn,
    checkpoints: Checkpoints,
) {
    // Inside the runtime's context: returning the borrowed pool connection spawns a task.
    let _rt = rt.enter();
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(max_batch);
    // The write turn, kept across back-to-back transactions (see TURN_HOLD).
    let mut slot: Option<(Result<PoolConnection<Sqlite>, sqlx::Error>, Instant)> = None;
    let mut next: Option<Box<dyn Job>> = None;
    let gather_for = gather_window();
    // When the last transaction began (none yet: long ago).
    let mut last_begin = Instant::now()
        .checked_sub(gather_for)
        .unwrap_or_else(Instant::now);
    let mut last_jobs = 0;
    loop {
        let first = match next.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => break,
            },
        };
        batch.push(first);
        // Wait for our turn (queued behind sqlx writes already waiting), then take every job
        // that arrived meanwhile too.
        let (turn_conn, since) =
            slot.get_or_insert_with(|| (rt.block_on(turn.pool.acquire()), Instant::now()));
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        // Gathering waits only when writes are evidently concurrent (more than one job in this
        // transaction or the last): one client writing in sequence never waits.
        if batch.len() > 1 || last_jobs > 1 {
            gather(&rx, &mut batch, max_batch, last_begin, gather_for);
        }
        last_jobs = batch.len();
        last_begin = Instant::now();
        let outcome = match turn_conn {
            Ok(_) => {
                checkpoints.before_transaction(&conn);
                run_batch(&conn, &mut batch)
            }
            Err(e) => Err(StoreError::Unavailable(format!(
                "waiting for the SQLite write turn: {e}"
            ))),
        };
        let held = since.elapsed();
        if outcome.is_ok() {
            checkpoints.committed();
        } else {
            tracing::warn!(error = %outcome.as_ref().err().map(ToString::to_string).unwrap_or_default(), jobs = batch.len(), "SQLite write transaction failed");
        }
        for job in batch.drain(..) {
            job.finish(outcome.as_ref().map(|_| ()));
        }
        // Keep the turn while more work comes and no sqlx write wants it; with sqlx writes
        // waiting, for at most TURN_HOLD. Giving it back costs a round trip through the
        // runtime (the pool returns a connection from a spawned task, and taking it again
        // waits for that task): under rotating refresh, with the turn given back whenever the
        // queue was empty for a moment, this thread waited for its turn 10-15% of the time.
        let wanted = || turn.waiting.load(Ordering::Acquire) > 0;
        let more = match rx.try_recv() {
            Ok(j) => Some(j),
            // Nothing queued: wait a moment for the next job, still holding the turn.
            Err(_) if !wanted() && outcome.is_ok() => rx.recv_timeout(TURN_LINGER).ok(),
            Err(_) => None,
        };
        let give_back = outcome.is_err() || (wanted() && held >= TURN_HOLD);
        if more.is_none() || give_back {
            slot = None;
        }
        next = more;
    }
}

/// Under load, one transaction per [`GATHER`] at most: when the previous transaction began less
/// than `window` ago, the jobs that arrive until `window` has passed join this one (up to
/// `max_batch`). A transaction rewrites the pages every job of it shares (the tails of the
/// audit table, of the expiry indexes, the families' rows) and pays SQLite's fixed cost of a
/// commit, so fewer, larger transactions write fewer pages per job. A write after a pause
/// waits for nothing.
fn gather(
    rx: &mpsc::Receiver<Box<dyn Job>>,
    batch: &mut Vec<Box<dyn Job>>,
    max_batch: usize,
    last_begin: Instant,
    window: Duration,
) {
    let until = last_begin + window;
    while batch.len() < max_batch {
        let Some(left) = until.checked_duration_since(Instant::now()) else {
            break;
        };
        match rx.recv_timeout(left) {
            Ok(j) => batch.push(j),
            Err(_) => break,
        }
    }
}

/// Shortest time between the beginnings of two write transactions while jobs keep coming.
const GATHER: Duration = Duration::from_micros(500);

fn gather_window() -> Duration {
    std::env::var("CAMGATE_SQLITE_GATHER_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(GATHER, Duration::from_micros)
}

/// The write turn: the sqlx writer pool's one connection, and how many sqlx writes want it.
struct Turn {
    pool: sqlx::SqlitePool,
    waiting: Arc<AtomicUsize>,
}

/// How long the writer thread waits for its next job, holding the turn, before it gives the
/// turn back (only while no sqlx write wants it).
const TURN_LINGER: Duration = Duration::from_millis(1);

/// Longest time the writer thread keeps the write turn once a sqlx write wants it; sqlx writes
/// (everything but the hot token paths) wait at most about this long for it.
const TURN_HOLD: Duration = Duration::from_millis(20);

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

thread_local! {
    /// True while jobs run in their own savepoints (the writer thread's slow path).
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// One transaction for the whole batch; `Err` if it did not commit (every job then fails).
///
/// The jobs first run one after the other with no savepoint at all: a savepoint costs two
/// statements and, worse, a copy of every page the job touches into the statement journal
/// (about 10% of this thread's time under rotating refresh). Jobs almost never fail; when one
/// does, the whole transaction is rolled back and the batch runs again with one savepoint per
/// job (and per audit row), so the failing job is undone alone and the others commit — the
/// same outcome as if every job had always had its savepoint. Jobs are `FnMut` for this: they
/// read their captured values and may run twice, the first run having been rolled back.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    if !conn.is_autocommit() {
        // A transaction left open by an earlier failure (a failed ROLLBACK) would make every
        // BEGIN fail and keep the write lock: end it first.
        let _ = exec(conn, "ROLLBACK");
    }
    exec(conn, "BEGIN IMMEDIATE").map_err(map_err)?;
    if batch.iter_mut().all(|job| job.run(conn)) {
        let r = exec(conn, "COMMIT").map_err(map_err);
        if r.is_err() && !conn.is_autocommit() {
            let _ = exec(conn, "ROLLBACK");
        }
        return r;
    }
    if !conn.is_autocommit() {
        exec(conn, "ROLLBACK").map_err(map_err)?;
    }
    exec(conn, "BEGIN IMMEDIATE").map_err(map_err)?;
    GUARDED.with(|g| g.set(true));
    let r = run_jobs(conn, batch);
    GUARDED.with(|g| g.set(false));
    if r.is_err() && !conn.is_autocommit() {
        let _ = exec(conn, "ROLLBACK");
    }
    r
}

fn run_jobs(conn: &Connection, batch: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    for job in batch.iter_mut() {
        exec(conn, "SAVEPOINT job").map_err(map_err)?;
        if !job.run(conn) {
            if conn.is_autocommit() {
                // SQLite rolled the whole transaction back (I/O error, disk full, …): the
                // jobs before this one are lost too.
                return Err(StoreError::Other(
                    "the SQLite write transaction was rolled back".into(),
                ));
            }
            exec(conn, "ROLLBACK TO job").map_err(map_err)?;
        }
        exec(conn, "RELEASE job").map_err(map_err)?;
    }
    exec(conn, "COMMIT").map_err(map_err)
}

/// Inserts an audit event inside its own savepoint: a failure to audit is logged and never
/// undoes the job's real work (as `Core::audit` promises). On the fast path (no savepoints,
/// see [`run_batch`]) a failing audit insert fails the job, and the batch runs again guarded.
pub(crate) fn audit(conn: &Connection, e: &AuditEvent) -> rusqlite::Result<()> {
    if !GUARDED.with(|g| g.get()) {
        return insert_audit(conn, e);
    }
    exec(conn, "SAVEPOINT audit")?;
    let r = insert_audit(conn, e);
    if let Err(err) = &r {
        tracing::warn!(error = %err, kind = e.kind.as_str(), "audit write failed");
        if conn.is_autocommit() {
            return r;
        }
        exec(conn, "ROLLBACK TO audit")?;
    }
    exec(conn, "RELEASE audit")
}

pub(crate) fn insert_audit(conn: &Connection, e: &AuditEvent) -> rusqlite::Result<()> {
    conn.prepare_cached(crate::sql::queries::INSERT_AUDIT)?
        .execute(rusqlite::params![
            e.at,
            e.kind.as_str(),
            e.user_id,
            e.client_id,
            e.ip,
            e.detail
        ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    fn job() -> Box<dyn Job> {
        let (reply, _answer) = oneshot::channel::<StoreResult<()>>();
        Box::new(Typed {
            f: |_: &Connection| Ok(()),
            out: None,
            reply,
        })
    }

    /// Within the window, jobs sent meanwhile join the transaction until the batch is full
    /// (it does not wait out the window then); past it, none is waited for.
    #[test]
    fn gathering_takes_what_arrives_within_the_window_only() {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let sender = std::thread::spawn(move || {
            for _ in 0..3 {
                std::thread::sleep(Duration::from_millis(5));
                tx.send(job()).unwrap();
            }
            tx
        });
        let mut batch = vec![job()];
        // A window far longer than the sends take: the batch limit ends the wait.
        gather(&rx, &mut batch, 4, Instant::now(), Duration::from_secs(600));
        assert_eq!(batch.len(), 4);
        let tx = sender.join().unwrap();

        // The window is over: nothing is waited for, even with a job on its way.
        let mut batch = vec![job()];
        let past = Instant::now().checked_sub(Duration::from_secs(1)).unwrap();
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            tx.send(job()).unwrap();
        });
        gather(&rx, &mut batch, 4, past, Duration::from_millis(1));
        assert_eq!(batch.len(), 1);
        late.join().unwrap();
        assert!(
            rx.try_recv().is_ok(),
            "the late job is left for the next transaction"
        );
    }

    async fn setup(dir: &std::path::Path) -> (Writer, sqlx::SqlitePool) {
        let path = dir.join("w.db");
        let opts = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE audit_events (id INTEGER PRIMARY KEY, at INTEGER, kind TEXT, user_id INTEGER, client_id TEXT, ip TEXT, detail TEXT)")
            .execute(&pool)
            .await
            .unwrap();
        let waiting = Arc::new(AtomicUsize::new(0));
        (
            Writer::start(&path, 64, pool.clone(), waiting).unwrap(),
            pool,
        )
    }

    /// Jobs queued while the turn is taken run as one batch. A failing job (it inserts a
    /// row, then hits a duplicate key) is undone alone — its first insert too — and every
    /// other job of the batch commits, whether it ran before or after the failing one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_is_undone_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (w, pool) = setup(dir.path()).await;
        let w = Arc::new(w);
        sqlx::query("INSERT INTO t (k, v) VALUES (1000, 'taken')")
            .execute(&pool)
            .await
            .unwrap();
        // Hold the write turn so that every job below lands in one batch.
        let turn = pool.acquire().await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..20i64 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                w.call(move |c| {
                    c.execute("INSERT INTO t (k, v) VALUES (?1, 'job')", [i])?;
                    if i % 5 == 2 {
                        // Duplicate key: this job fails after its first insert.
                        c.execute("INSERT INTO t (k, v) VALUES (1000, 'dup')", [])?;
                    }
                    Ok(i)
                })
                .await
            }));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(turn);
        let mut failed = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(v) => assert_eq!(v, i as i64),
                Err(StoreError::Conflict(_)) => failed.push(i as i64),
                Err(e) => panic!("job {i}: unexpected {e:?}"),
            }
        }
        assert_eq!(failed, vec![2, 7, 12, 17]);
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT k FROM t WHERE v = 'job' ORDER BY k")
            .fetch_all(&pool)
            .await
            .unwrap();
        let expect: Vec<(i64,)> = (0..20).filter(|i| i % 5 != 2).map(|i| (i,)).collect();
        assert_eq!(rows, expect);
    }

    /// On the fast path an audit row is written in the job's transaction; when the audit
    /// insert fails the job's own work still commits (the batch reruns guarded).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_audit_never_undoes_the_job() {
        let dir = tempfile::tempdir().unwrap();
        let (w, pool) = setup(dir.path()).await;
        let event = |detail: &str| AuditEvent {
            at: 1,
            kind: camgate_core::model::AuditKind::TokenIssued,
            user_id: None,
            client_id: None,
            ip: None,
            detail: detail.to_string(),
        };
        let ok = event("fine");
        let r = w
            .call(move |c| {
                c.execute("INSERT INTO t (k, v) VALUES (1, 'with audit')", [])?;
                audit(c, &ok)?;
                Ok(())
            })
            .await;
        assert!(r.is_ok());
        // Make the audit insert fail: the table is gone.
        sqlx::query("DROP TABLE audit_events")
            .execute(&pool)
            .await
            .unwrap();
        let bad = event("lost");
        let r = w
            .call(move |c| {
                c.execute("INSERT INTO t (k, v) VALUES (2, 'audit failed')", [])?;
                audit(c, &bad)?;
                Ok(())
            })
            .await;
        assert!(r.is_ok(), "{r:?}");
        let n: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t WHERE k IN (1, 2)")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n.0, 2);
    }
}
