//! PostgreSQL backend: one pool shared by reads and writes; several camgate nodes may share the
//! database. Every role, the token role included, runs through the shared sqlx code
//! (`crate::sql`): multi-statement changes in transactions, and the refresh claim a single
//! conditional UPDATE, so concurrent claims from any node serialise on the row lock.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

use camgate_core::error::StoreError;

use crate::backend::Backend;
use crate::sql::tokens::SqlTokens;
use crate::sql::Pools;
use crate::{map_err, StoreOptions};

/// The PostgreSQL store.
pub(crate) type PgStore = Backend<SqlTokens, Pools<sqlx::Postgres>>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl PgStore {
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
        let mut co = PgConnectOptions::from_str(url).map_err(map_err)?;
        if let Some(mode) = &opts.pg_ssl_mode {
            let m = PgSslMode::from_str(mode)
                .map_err(|_| StoreError::Other(format!("invalid TLS mode `{mode}`")))?;
            co = co.ssl_mode(m);
        }
        if let Some(cert) = &opts.pg_ssl_root_cert {
            co = co.ssl_root_cert(cert.as_str());
        }
        Self::connect_with(co, opts).await
    }

    pub async fn connect_with(
        co: PgConnectOptions,
        opts: &StoreOptions,
    ) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            // No ping before every acquire (a round trip per query); a dead connection fails
            // its query with an I/O error (answered 503) and is replaced.
            .test_before_acquire(false)
            .connect_with(co)
            .await
            .map_err(map_err)?;
        Ok(Backend {
            tokens: SqlTokens,
            sql: Pools {
                read: pool.clone(),
                write: pool,
                migrator: &MIGRATOR,
                shared: true,
                write_waiting: Default::default(),
            },
        })
    }
}
