//! Storage for camgate: the SQLite and PostgreSQL implementations of the storage port
//! (`camgate_core::store`, one small trait per role).
//!
//! - `sql/`: the SQL both backends share, written once against a small port over sqlx
//!   ([`sql::Sql`]): the cold roles, and the token role for PostgreSQL.
//! - `sqlite/`: SQLite's set-up and its token role in plain rusqlite (writer thread with group
//!   commit, per-thread readers).
//! - `postgres.rs`: PostgreSQL's set-up.
//! - `backend.rs`: one backend = its token role beside its pools.
//!
//! The conformance suites in `tests/` run against both.

mod backend;
pub(crate) mod postgres;
pub(crate) mod sql;
pub(crate) mod sqlite;

use postgres::PgStore;
use sqlite::SqliteStore;

use std::sync::Arc;
use std::time::Duration;

use camgate_core::error::StoreError;
use camgate_core::store::Store;

/// Pool and connection options shared by both backends.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections in the (read) pool. SQLite always writes through one connection.
    pub max_connections: u32,
    /// How long a request waits for a connection before failing with `Unavailable`.
    pub acquire_timeout: Duration,
    /// PostgreSQL TLS mode (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`), if set.
    pub pg_ssl_mode: Option<String>,
    /// PostgreSQL root certificate file for `verify-ca` / `verify-full`.
    pub pg_ssl_root_cert: Option<String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(3),
            pg_ssl_mode: None,
            pg_ssl_root_cert: None,
        }
    }
}

/// Opens the database named by `url` (`sqlite://path`, `sqlite::memory:`, `postgres://…`),
/// creating an SQLite file if missing. Does not migrate.
pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, opts).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::connect(url, opts).await?))
    } else {
        Err(StoreError::Other(
            "unsupported database URL: use sqlite://FILE or postgres://…".to_string(),
        ))
    }
}

pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_string())
        }
        // SQLITE_BUSY (5) / SQLITE_LOCKED (6): contention beyond busy_timeout.
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5") | Some("6")) => {
            StoreError::Unavailable(e.to_string())
        }
        // PostgreSQL: admin shutdown, cannot connect now, too many connections.
        sqlx::Error::Database(db)
            if matches!(
                db.code().as_deref(),
                Some("57P01") | Some("57P03") | Some("53300")
            ) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Tls(_) => StoreError::Unavailable(e.to_string()),
        _ => StoreError::Other(e.to_string()),
    }
}
