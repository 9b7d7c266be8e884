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

use crate::fastread::FastReader;
use crate::writer::{Writer, DEFAULT_MAX_BATCH};
use crate::{map_err, StoreOptions};

pub struct SqliteStore {
    pub(crate) read: SqlitePool,
    pub(crate) write: SqlitePool,
    /// Synchronous per-thread reader for the hot lookups (none for in-memory databases).
    fast: Option<FastReader>,
    /// The hot-path writer thread (writer.rs; none for in-memory databases).
    hot: Option<Writer>,
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
        let filename = base.get_filename().to_path_buf();
        let file_backed = !filename.as_os_str().is_empty() && filename.as_os_str() != ":memory:";
        // The sqlx writer keeps SQLite's automatic checkpoint: when only it writes (an import,
        // the sweeper, dashboard writes) with the hot writer idle, nothing else would ever
        // restart the WAL (writer.rs, "Checkpoints"); its checkpoint runs inside its own
        // commit, in its write turn, so the next commit starts the log over. Under hot load
        // the checkpointer has usually copied most frames already.
        let write_opts = base
            .clone()
            .pragma("cache_size", "-131072")
            .pragma("journal_size_limit", "67108864");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(opts.acquire_timeout)
            .test_before_acquire(false)
            // The single writer gets a larger page cache (128 MiB, allocated only as used):
            // bulk imports maintain several indexes with random keys (issue 7).
            .connect_with(write_opts)
            .await
            .map_err(map_err)?;
        // Started after the sqlx writer connected, which created the file and set WAL mode.
        // `CAMGATE_SQLITE_WRITE_BATCH` (jobs per transaction; 1 = no group commit) exists to
        // measure group commit; the default suits every load measured (ARCHITECTURE.md).
        let max_batch = std::env::var("CAMGATE_SQLITE_WRITE_BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_MAX_BATCH);
        let hot = if file_backed {
            Some(Writer::start(&filename, max_batch, write.clone())?)
        } else {
            None
        };
        let fast = file_backed.then(|| FastReader::new(filename));
        let read = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .test_before_acquire(false)
            .connect_with(base)
            .await
            .map_err(map_err)?;
        Ok(Self {
            read,
            write,
            fast,
            hot,
        })
    }

    /// The pools, for metrics.
    pub(crate) fn pools(&self) -> Vec<(&'static str, &SqlitePool)> {
        vec![("read", &self.read), ("write", &self.write)]
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

impl SqliteStore {
    fn hot_writer(&self) -> Option<&Writer> {
        self.hot.as_ref()
    }

    fn fast_access_token(
        &self,
        hash: &[u8],
    ) -> Option<Option<camgate_core::model::AccessTokenInfo>> {
        self.fast.as_ref()?.access_token(hash)
    }

    fn fast_pat(
        &self,
        hash: &[u8],
    ) -> Option<Option<(camgate_core::model::Pat, camgate_core::model::User)>> {
        self.fast.as_ref()?.pat(hash)
    }

    fn fast_refresh(&self, hash: &[u8]) -> Option<Option<camgate_core::model::RefreshTokenInfo>> {
        self.fast.as_ref()?.refresh_token(hash)
    }

    fn fast_user(&self, id: i64) -> Option<Option<camgate_core::model::User>> {
        self.fast.as_ref()?.user(id)
    }

    fn fast_active_kid(&self) -> Option<Option<String>> {
        self.fast.as_ref()?.active_signing_kid()
    }

    fn fast_user_by_email(&self, email_norm: &str) -> Option<Option<camgate_core::model::User>> {
        self.fast.as_ref()?.user_by_email(email_norm)
    }

    fn fast_throttle(&self, key: &[u8], since: i64) -> Option<Option<(i64, i64)>> {
        self.fast.as_ref()?.throttle(key, since)
    }

    fn fast_client(&self, client_id: &str) -> Option<Option<camgate_core::model::Client>> {
        self.fast.as_ref()?.client(client_id)
    }
}

store_impl!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow);
