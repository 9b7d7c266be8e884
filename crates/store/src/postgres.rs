//! PostgreSQL backend: one pool shared by reads and writes; several camgate nodes may share the
//! database. Multi-statement changes run in transactions; the refresh claim is a single
//! conditional UPDATE, so concurrent claims from any node serialise on the row lock.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::PgPool;

use camgate_core::error::StoreError;

use crate::{map_err, StoreOptions};

pub struct PgStore {
    pub(crate) read: PgPool,
    pub(crate) write: PgPool,
}

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
        Ok(Self {
            read: pool.clone(),
            write: pool,
        })
    }

    pub(crate) async fn run_migrations(&self) -> Result<(), StoreError> {
        // Several nodes may start at once: sqlx takes an advisory lock around migrations.
        MIGRATOR
            .run(&self.write)
            .await
            .map_err(|e| StoreError::Other(e.to_string()))
    }

    pub fn pool(&self) -> &PgPool {
        &self.write
    }

    /// The pool (reads and writes share it), for metrics.
    pub(crate) fn pools(&self) -> Vec<(&'static str, &PgPool)> {
        vec![("main", &self.write)]
    }
}

impl PgStore {
    // PostgreSQL has no dedicated writer: its driver is async and rows lock individually.
    fn hot_writer(&self) -> Option<&crate::writer::Writer> {
        None
    }

    // PostgreSQL has no per-thread fast path: the pool's async driver is already direct.
    fn fast_access_token(&self, _: &[u8]) -> Option<Option<camgate_core::model::AccessTokenInfo>> {
        None
    }

    fn fast_pat(
        &self,
        _: &[u8],
    ) -> Option<Option<(camgate_core::model::Pat, camgate_core::model::User)>> {
        None
    }

    fn fast_refresh(&self, _: &[u8]) -> Option<Option<camgate_core::model::RefreshTokenInfo>> {
        None
    }

    fn fast_user(&self, _: i64) -> Option<Option<camgate_core::model::User>> {
        None
    }

    fn fast_active_kid(&self) -> Option<Option<String>> {
        None
    }

    fn fast_user_by_email(&self, _: &str) -> Option<Option<camgate_core::model::User>> {
        None
    }

    fn fast_throttle(&self, _: &[u8], _: i64) -> Option<Option<(i64, i64)>> {
        None
    }

    fn fast_client(&self, _: &str) -> Option<Option<camgate_core::model::Client>> {
        None
    }
}

store_impl!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow);
