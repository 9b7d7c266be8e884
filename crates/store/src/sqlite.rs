//! SQLite backend: one file, WAL journal, foreign keys on. Writes go through a single
//! connection (SQLite has one writer; a pool of writers would only contend on the lock), reads
//! through a pool. `synchronous = NORMAL` in WAL mode: a committed transaction survives a
//! process crash (SIGKILL); only an OS crash or power loss can drop the last transactions
//! (see ARCHITECTURE.md, "Durability").

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use camgate_core::error::StoreError;

use crate::{map_err, StoreOptions};

pub struct SqliteStore {
    pub(crate) read: SqlitePool,
    pub(crate) write: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteStore {
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
        let base = SqliteConnectOptions::from_str(url)
            .map_err(map_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16000");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            .test_before_acquire(false)
            // The single writer gets a larger page cache (128 MiB, allocated only as used):
            // bulk imports maintain several indexes with random keys (issue 7).
            .connect_with(base.clone().pragma("cache_size", "-131072"))
            .await
            .map_err(map_err)?;
        let read = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .test_before_acquire(false)
            .connect_with(base)
            .await
            .map_err(map_err)?;
        Ok(Self { read, write })
    }

    pub(crate) async fn run_migrations(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.write)
            .await
            .map_err(|e| StoreError::Other(e.to_string()))
    }

    /// `PRAGMA integrity_check` (durability tests and `camgate migrate`).
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        sqlx::query_scalar::<_, String>("PRAGMA integrity_check")
            .fetch_one(&self.write)
            .await
            .map_err(map_err)
    }
}

store_impl!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
