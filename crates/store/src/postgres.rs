//! PostgreSQL backend: one pool shared by reads and writes; several camgate nodes may share the
//! database. Every role, the token role included, runs through the shared sqlx code
//! (`crate::sql`): multi-statement changes in transactions, and the refresh claim a single
//! conditional UPDATE, so concurrent claims from any node serialise on the row lock.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};

use camgate_core::error::StoreError;

use crate::backend::Backend;
use crate::sql::tokens::SqlTokens;
use crate::sql::{CommentEdit, Pools};
use crate::{map_err, StoreOptions};

/// The PostgreSQL store.
pub(crate) type PgStore = Backend<SqlTokens, Pools<sqlx::Postgres>>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The same comment edits as SQLite's (sqlite/mod.rs), with this backend's old checksums.
static COMMENT_EDITS: &[CommentEdit] = &[
    CommentEdit {
        version: 3,
        old_sha384: "e3cc8b99946fc6522aafba80729f27cf43b0054395777bc4d7c282a1d1738e5dd28b27f32baad490293f93f8fb671a1e",
    },
    CommentEdit {
        version: 4,
        old_sha384: "36ddd4e8bf63245af3d65837f5b7893bdca38770604f14e934569ca8ba8cdccea7dd6c880d0d3b79ac4ed4a958fde0ef",
    },
    CommentEdit {
        version: 6,
        old_sha384: "94d1c9ddb8028ac120301486642268bc7ca84afb077e7a085de1de1c1422dc060efc82949993bee609c5a43ed3f3edd7",
    },
];

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
                comment_edits: COMMENT_EDITS,
                shared: true,
                write_waiting: Default::default(),
            },
        })
    }
}
