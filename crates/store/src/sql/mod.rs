//! The SQL both backends share, written once as plain async functions against [`Sql`]: a
//! small port over sqlx that both the SQLite pools and the PostgreSQL pool implement. The
//! cold roles (`AuthzStore`, `DirectoryStore`, `CameraStore`, `AdminStore`) live here for both
//! backends, and so does the token role for PostgreSQL ([`tokens::SqlTokens`]); SQLite's token
//! role is its own rusqlite code (`crate::sqlite::tokens`) over the same statements
//! ([`queries`]).
//!
//! The SQL is the dialect both databases accept: `$n` parameters (numbered in order of
//! appearance; SQLite binds `$NNN` by number too), `RETURNING`, `ON CONFLICT`,
//! `INSERT … SELECT … WHERE EXISTS`. Rows map through `sqlx::FromRow` structs ([`rows`]).

pub(crate) mod admin;
pub(crate) mod authz;
pub(crate) mod cameras;
pub(crate) mod directory;
pub(crate) mod events;
pub(crate) mod mfa;
pub(crate) mod queries;
pub(crate) mod rows;
pub(crate) mod sharing;
pub(crate) mod tokens;
pub(crate) mod webhooks;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use camgate_core::store::{PoolStats, StoreResult};

/// A bound value. NULLs are typed (PostgreSQL checks a parameter's type against its column).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
    Bool(Option<bool>),
}

macro_rules! arg_from {
    ($($t:ty => $v:ident),* $(,)?) => {$(
        impl From<$t> for Arg {
            fn from(v: $t) -> Self {
                Arg::$v(Some(v.into()))
            }
        }
        impl From<Option<$t>> for Arg {
            fn from(v: Option<$t>) -> Self {
                Arg::$v(v.map(Into::into))
            }
        }
    )*};
}

arg_from!(i64 => Int, f64 => Real, bool => Bool, String => Text, &str => Text, Vec<u8> => Bytes, &[u8] => Bytes);

impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(Some(v.clone()))
    }
}

impl From<&Option<String>> for Arg {
    fn from(v: &Option<String>) -> Self {
        Arg::Text(v.clone())
    }
}

impl From<&Vec<u8>> for Arg {
    fn from(v: &Vec<u8>) -> Self {
        Arg::Bytes(Some(v.clone()))
    }
}

/// `args![a, b, …]`: the bound values of one statement, in `$n` order.
macro_rules! args {
    ($($a:expr),* $(,)?) => {
        vec![$($crate::sql::Arg::from($a)),*]
    };
}
pub(crate) use args;

/// A row type both backends decode (derive `sqlx::FromRow`).
pub(crate) trait Rec:
    for<'r> sqlx::FromRow<'r, SqliteRow> + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin + 'static
{
}

impl<T> Rec for T where
    T: for<'r> sqlx::FromRow<'r, SqliteRow>
        + for<'r> sqlx::FromRow<'r, PgRow>
        + Send
        + Unpin
        + 'static
{
}

/// Statements on one connection: a transaction ([`Sql::begin`]).
#[async_trait]
pub(crate) trait Exec: Send {
    /// Runs a statement; the number of rows it changed.
    async fn run(&mut self, sql: &str, args: Vec<Arg>) -> StoreResult<u64>;
    async fn one<T: Rec>(&mut self, sql: &str, args: Vec<Arg>) -> StoreResult<Option<T>>;
    async fn all<T: Rec>(&mut self, sql: &str, args: Vec<Arg>) -> StoreResult<Vec<T>>;
    async fn commit(self) -> StoreResult<()>;
}

/// How a backend indexes camera positions (migration 16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Geo {
    /// SQLite: the `cameras_geo` R*Tree table, kept by triggers.
    RTree,
    /// PostgreSQL: a GiST index on `point(lng, lat)` that includes `id, lat, lng`.
    Gist,
}

impl Geo {
    /// A condition that the index answers: the position lies in the box (a superset on
    /// R*Tree, whose 32-bit bounds are rounded outward; the exact conditions stay beside it).
    pub(crate) fn within(self, lat: (&str, &str), lng: (&str, &str)) -> String {
        match self {
            Geo::RTree => format!(
                "id IN (SELECT id FROM cameras_geo WHERE min_lat <= {} AND max_lat >= {} \
                 AND min_lng <= {} AND max_lng >= {})",
                lat.1, lat.0, lng.1, lng.0
            ),
            Geo::Gist => format!(
                "point(lng, lat) <@ box(point({}, {}), point({}, {}))",
                lng.0, lat.0, lng.1, lat.1
            ),
        }
    }

    /// The cells in a box (`$1`–`$2` latitude, `$3`–`$4` longitude) straight from the index:
    /// R*Tree answers `id, lat_min, lat_max, lng_min, lng_max` from its own nodes (no camera
    /// row is read); PostgreSQL reads `id, lat, lng`, the exact point, from its index (an
    /// index-only scan where the rows are all-visible, migration 17) and answers them packed
    /// in ONE `bytea`, 24 bytes a cell (`int8send`/`float8send`: big-endian, the float's
    /// exact bits), or NULL for none (`cameras::decode_packed_cells`). Decoding thousands of
    /// one-row answers through sqlx was most of the uncached radius search's time there.
    pub(crate) fn cells(self) -> &'static str {
        match self {
            Geo::RTree => {
                "SELECT id, min_lat, max_lat, min_lng, max_lng FROM cameras_geo \
                 WHERE min_lat <= $2 AND max_lat >= $1 AND min_lng <= $4 AND max_lng >= $3"
            }
            Geo::Gist => {
                "SELECT string_agg(int8send(id) || float8send(lat) || float8send(lng), ''::bytea) \
                 FROM cameras \
                 WHERE point(lng, lat) <@ box(point($3, $1), point($4, $2)) \
                 AND lat >= $1 AND lat <= $2 AND lng >= $3 AND lng <= $4"
            }
        }
    }
}

/// A backend's pools. Reads go to the read pool; writes, and reads that must see the latest
/// write (a code's replay state, a session), to the write pool — on SQLite its one connection,
/// which takes turns with the token role's writer thread.
#[async_trait]
pub(crate) trait Sql: Send + Sync + 'static {
    type Tx: Exec;
    /// False for SQLite's multi-row INSERTs, which bind anonymous `?` parameters faster.
    const NUMBERED: bool;
    /// What runs after a bulk camera import: statistics for the planner (SQLite sampled
    /// first, seconds rather than minutes at a million rows; PostgreSQL samples by itself).
    /// PostgreSQL also vacuums, which marks the new rows all-visible so that the radius
    /// search's cells come from the GiST index alone (an index-only scan, migration 17).
    const ANALYZE_CAMERAS: &'static [&'static str];
    /// Appended to the SELECT of a claim (the outbox): ` FOR UPDATE SKIP LOCKED` on
    /// PostgreSQL, so that concurrent claimers pass over each other's rows instead of waiting;
    /// empty on SQLite, which has no row locks (its one writer runs a claim's UPDATE whole).
    const SKIP_LOCKED: &'static str;
    /// The spatial index of camera positions (migration 16).
    const GEO: Geo;

    async fn begin(&self) -> StoreResult<Self::Tx>;
    /// A read on the read pool.
    async fn one<T: Rec>(&self, sql: &str, args: Vec<Arg>) -> StoreResult<Option<T>>;
    async fn all<T: Rec>(&self, sql: &str, args: Vec<Arg>) -> StoreResult<Vec<T>>;
    /// A read, or a write with `RETURNING`, on the write pool.
    async fn one_w<T: Rec>(&self, sql: &str, args: Vec<Arg>) -> StoreResult<Option<T>>;
    /// A write on the write pool; the number of rows it changed.
    async fn run(&self, sql: &str, args: Vec<Arg>) -> StoreResult<u64>;
    /// Several statements on one write connection outside a transaction (`ANALYZE`).
    async fn run_each(&self, sqls: &[&str]) -> StoreResult<()>;
    async fn migrate(&self) -> StoreResult<()>;
    fn pool_stats(&self) -> Vec<PoolStats>;
}

/// Pools of one backend: reads and writes (on PostgreSQL the same pool).
pub(crate) struct Pools<DB: sqlx::Database> {
    pub read: sqlx::Pool<DB>,
    pub write: sqlx::Pool<DB>,
    pub migrator: &'static sqlx::migrate::Migrator,
    /// Applied migrations whose comments changed since: (version, checksum of the old text).
    pub comment_edits: &'static [CommentEdit],
    /// `read` and `write` are one pool (PostgreSQL).
    pub shared: bool,
    /// sqlx writes waiting for (or running on) the write connection. The SQLite writer
    /// thread, which borrows that connection as its write turn, keeps the turn between its
    /// transactions while this is zero (sqlite/writer.rs, `TURN_HOLD`).
    pub write_waiting: Arc<AtomicUsize>,
}

/// An applied migration whose comments were edited after databases had recorded it. sqlx
/// stores a SHA-384 of each migration's whole text and refuses to start when an applied file
/// changed; a database that still holds the checksum of exactly the old text is given the new
/// one before sqlx compares them. Only comments may change this way: the statements already ran.
pub(crate) struct CommentEdit {
    pub version: i64,
    /// The SHA-384 of the text as it was applied, in hex.
    pub old_sha384: &'static str,
}

impl CommentEdit {
    pub(crate) fn old_checksum(&self) -> StoreResult<Vec<u8>> {
        hex::decode(self.old_sha384).map_err(|e| {
            camgate_core::error::StoreError::Other(format!(
                "migration {} checksum: {e}",
                self.version
            ))
        })
    }
}

/// Replaces a recorded checksum only where it is the old text's (`$3`).
pub(crate) const ADOPT_COMMENT_EDIT: &str =
    "UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2 AND checksum = $3";

/// Counts one sqlx write in [`Pools::write_waiting`] while it lives.
pub(crate) struct Waiting<'a>(&'a AtomicUsize);

impl Waiting<'_> {
    pub(crate) fn on(n: &AtomicUsize) -> Waiting<'_> {
        n.fetch_add(1, Ordering::AcqRel);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<DB: sqlx::Database> Clone for Pools<DB> {
    fn clone(&self) -> Self {
        Self {
            read: self.read.clone(),
            write: self.write.clone(),
            migrator: self.migrator,
            comment_edits: self.comment_edits,
            shared: self.shared,
            write_waiting: self.write_waiting.clone(),
        }
    }
}

/// `Sql` for `Pools<$Db>` and `Exec` for its transactions. One body for both backends: sqlx's
/// generic executor bounds cannot be named once for both, so the two impls are expanded here.
macro_rules! sql_for {
    ($Db:ty, numbered = $numbered:expr, analyze = $analyze:expr, skip_locked = $skip:expr, geo = $geo:expr) => {
        #[async_trait]
        impl Exec for sqlx::Transaction<'static, $Db> {
            async fn run(&mut self, sql: &str, args: Vec<Arg>) -> StoreResult<u64> {
                let q = bind!($Db, sqlx::query(sql), args);
                let r = q.execute(&mut **self).await.map_err(crate::map_err)?;
                Ok(r.rows_affected())
            }
            async fn one<T: Rec>(&mut self, sql: &str, args: Vec<Arg>) -> StoreResult<Option<T>> {
                let q = bind!($Db, sqlx::query_as::<_, T>(sql), args);
                q.fetch_optional(&mut **self).await.map_err(crate::map_err)
            }
            async fn all<T: Rec>(&mut self, sql: &str, args: Vec<Arg>) -> StoreResult<Vec<T>> {
                let q = bind!($Db, sqlx::query_as::<_, T>(sql), args);
                q.fetch_all(&mut **self).await.map_err(crate::map_err)
            }
            async fn commit(self) -> StoreResult<()> {
                sqlx::Transaction::commit(self)
                    .await
                    .map_err(crate::map_err)
            }
        }

        #[async_trait]
        impl Sql for Pools<$Db> {
            type Tx = sqlx::Transaction<'static, $Db>;
            const NUMBERED: bool = $numbered;
            const ANALYZE_CAMERAS: &'static [&'static str] = $analyze;
            const SKIP_LOCKED: &'static str = $skip;
            const GEO: Geo = $geo;

            async fn begin(&self) -> StoreResult<Self::Tx> {
                let _w = crate::sql::Waiting::on(&self.write_waiting);
                self.write.begin().await.map_err(crate::map_err)
            }
            async fn one<T: Rec>(&self, sql: &str, args: Vec<Arg>) -> StoreResult<Option<T>> {
                let q = bind!($Db, sqlx::query_as::<_, T>(sql), args);
                q.fetch_optional(&self.read).await.map_err(crate::map_err)
            }
            async fn all<T: Rec>(&self, sql: &str, args: Vec<Arg>) -> StoreResult<Vec<T>> {
                let q = bind!($Db, sqlx::query_as::<_, T>(sql), args);
                q.fetch_all(&self.read).await.map_err(crate::map_err)
            }
            async fn one_w<T: Rec>(&self, sql: &str, args: Vec<Arg>) -> StoreResult<Option<T>> {
                let q = bind!($Db, sqlx::query_as::<_, T>(sql), args);
                let _w = crate::sql::Waiting::on(&self.write_waiting);
                q.fetch_optional(&self.write).await.map_err(crate::map_err)
            }
            async fn run(&self, sql: &str, args: Vec<Arg>) -> StoreResult<u64> {
                let q = bind!($Db, sqlx::query(sql), args);
                let _w = crate::sql::Waiting::on(&self.write_waiting);
                let r = q.execute(&self.write).await.map_err(crate::map_err)?;
                Ok(r.rows_affected())
            }
            async fn run_each(&self, sqls: &[&str]) -> StoreResult<()> {
                let _w = crate::sql::Waiting::on(&self.write_waiting);
                let mut conn = self.write.acquire().await.map_err(crate::map_err)?;
                for sql in sqls {
                    sqlx::query(sql)
                        .execute(&mut *conn)
                        .await
                        .map_err(crate::map_err)?;
                }
                Ok(())
            }
            async fn migrate(&self) -> StoreResult<()> {
                // Several nodes may start at once: sqlx takes an advisory lock around
                // migrations (PostgreSQL).
                use sqlx::migrate::Migrate;
                let other = |e: sqlx::migrate::MigrateError| {
                    camgate_core::error::StoreError::Other(e.to_string())
                };
                let _w = crate::sql::Waiting::on(&self.write_waiting);
                // Edited comments are adopted before sqlx compares checksums, under that same
                // lock (`CommentEdit`).
                let mut conn = self.write.acquire().await.map_err(crate::map_err)?;
                conn.lock().await.map_err(other)?;
                let adopted = async {
                    conn.ensure_migrations_table().await.map_err(other)?;
                    for edit in self.comment_edits {
                        let Some(m) = self.migrator.iter().find(|m| m.version == edit.version)
                        else {
                            continue;
                        };
                        sqlx::query(crate::sql::ADOPT_COMMENT_EDIT)
                            .bind(m.checksum.to_vec())
                            .bind(edit.version)
                            .bind(edit.old_checksum()?)
                            .execute(&mut *conn)
                            .await
                            .map_err(crate::map_err)?;
                    }
                    Ok::<_, camgate_core::error::StoreError>(())
                }
                .await;
                conn.unlock().await.map_err(other)?;
                adopted?;
                drop(conn);
                self.migrator.run(&self.write).await.map_err(other)
            }
            fn pool_stats(&self) -> Vec<PoolStats> {
                crate::sql::pool_stats(self)
            }
        }
    };
}

/// Binds `args` to a sqlx query of database `$Db`, in order.
macro_rules! bind {
    ($Db:ty, $q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Int(v) => q.bind(v),
                Arg::Real(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
                Arg::Bytes(v) => q.bind(v),
                Arg::Bool(v) => q.bind(v),
            };
        }
        q
    }};
}

sql_for!(
    sqlx::Sqlite,
    numbered = false,
    analyze = &["PRAGMA analysis_limit = 1000", "ANALYZE cameras"],
    skip_locked = "",
    geo = Geo::RTree
);
sql_for!(
    sqlx::Postgres,
    numbered = true,
    analyze = &["VACUUM (ANALYZE) cameras"],
    skip_locked = " FOR UPDATE SKIP LOCKED",
    geo = Geo::Gist
);

/// Pool use for metrics: `read` and `write`, or `main` when both are one pool (PostgreSQL).
fn pool_stats<DB: sqlx::Database>(p: &Pools<DB>) -> Vec<PoolStats> {
    let stat = |name, p: &sqlx::Pool<DB>| PoolStats {
        name,
        size: p.size(),
        idle: p.num_idle() as u32,
        max: p.options().get_max_connections(),
    };
    if p.shared {
        vec![stat("main", &p.write)]
    } else {
        vec![stat("read", &p.read), stat("write", &p.write)]
    }
}

/// A JSON column's text.
pub(crate) fn json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| camgate_core::error::StoreError::Other(e.to_string()))
}
