//! SQLite backend: one file, WAL journal, foreign keys on. `synchronous = NORMAL` in WAL mode: a
//! committed transaction survives a process crash (SIGKILL); only an OS crash or power loss can
//! drop the last transactions (docs/decisions, "Durability").
//!
//! The token role runs in plain rusqlite ([`tokens`]): writes on one writer thread with group
//! commit ([`writer`]), reads on a connection per runtime thread ([`reader`]). The cold roles
//! run through sqlx (`crate::sql`): a read pool and a one-connection write pool, which the
//! writer thread borrows for each of its transactions so that the two writers take turns.

mod reader;
mod tokens;
pub(crate) mod writer;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use camgate_core::error::StoreError;

use crate::backend::Backend;
use crate::sql::Pools;
use crate::{map_err, StoreOptions};
use reader::Reader;
use tokens::SqliteTokens;
use writer::{Writer, DEFAULT_MAX_BATCH};

/// The SQLite store: the rusqlite token role beside the sqlx pools.
pub(crate) type SqliteStore = Backend<SqliteTokens, Pools<sqlx::Sqlite>>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// An in-memory database (`sqlite::memory:`) is a private temporary file instead: the writer
/// thread, the readers and the pools are separate connections and must see one database.
/// Removed when the store is dropped.
pub(crate) struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl SqliteStore {
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
        let parsed = SqliteConnectOptions::from_str(url).map_err(map_err)?;
        let mut filename = parsed.get_filename().to_path_buf();
        let mut temp = None;
        let mut parsed = Some(parsed);
        // sqlx names an in-memory database `file:sqlx-in-memory-N` (shared cache).
        let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
        if rest.starts_with(":memory:") || rest.contains("mode=memory") || rest.is_empty() {
            // Unique per process (the pid) and per store in it (the counter).
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let name = format!("camgate-mem-{}-{n}.db", std::process::id());
            filename = std::env::temp_dir().join(name);
            temp = Some(TempFile(filename.clone()));
            // Options of a plain file: the parsed ones would keep sqlx's in-memory mode.
            parsed = None;
        }
        let base = parsed
            .unwrap_or_else(|| SqliteConnectOptions::new().filename(&filename))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16000");
        // The sqlx writer keeps SQLite's automatic checkpoint: when only it writes (an import,
        // the sweeper, dashboard writes) with the writer thread idle, nothing else would ever
        // restart the WAL (writer.rs, "Checkpoints"); its checkpoint runs inside its own commit,
        // in its write turn. The larger page cache (allocated only as used) serves bulk imports,
        // which maintain several indexes with random keys.
        let write_opts = base
            .clone()
            .pragma("cache_size", "-131072")
            .pragma("journal_size_limit", "67108864");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            .test_before_acquire(false)
            .connect_with(write_opts)
            .await
            .map_err(map_err)?;
        // Started after the sqlx writer connected, which created the file and set WAL mode.
        // `CAMGATE_SQLITE_WRITE_BATCH` (jobs per transaction; 1 = no group commit) exists to
        // measure group commit; the default suits every load measured.
        let max_batch = std::env::var("CAMGATE_SQLITE_WRITE_BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_BATCH);
        let write_waiting = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writer = Writer::start(&filename, max_batch, write.clone(), write_waiting.clone())?;
        let read = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .test_before_acquire(false)
            .connect_with(base)
            .await
            .map_err(map_err)?;
        Ok(Backend {
            tokens: SqliteTokens {
                writer,
                reader: Reader::new(filename),
                _temp: temp,
            },
            sql: Pools {
                read,
                write,
                migrator: &MIGRATOR,
                shared: false,
                write_waiting,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use camgate_core::model::NewUser;
    use camgate_core::store::{AdminStore, DirectoryStore, TokenStore};

    use super::*;

    /// `sqlite::memory:` is one database for every connection — a user written through the
    /// sqlx pools is read back through the token role's rusqlite reader — and its file is gone
    /// once the store is dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_in_memory_database_is_shared_and_removed() {
        let store = SqliteStore::connect("sqlite::memory:", &StoreOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let u = store
            .create_user(&NewUser {
                email: "Mem@Example.com".into(),
                password_hash: "x".into(),
                first_name: "M".into(),
                last_name: "E".into(),
                phone: String::new(),
                is_admin: false,
                created_at: 1,
                email_verified: false,
            })
            .await
            .unwrap();
        let read = store.user_by_email("mem@example.com").await.unwrap();
        assert_eq!(read.map(|r| r.id), Some(u.id));
        let path = store.tokens._temp.as_ref().unwrap().0.clone();
        assert!(path.exists());
        drop(store);
        assert!(!path.exists(), "{} left behind", path.display());
    }
}
