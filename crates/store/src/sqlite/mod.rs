//! SQLite backend: one file, WAL journal, foreign keys on. `synchronous = NORMAL` in WAL mode: a
//! committed transaction survives a process crash (SIGKILL); only an OS crash or power loss can
//! drop the last transactions (docs/decisions, "Durability").
//!
//! The token role runs in plain rusqlite ([`tokens`]): writes on one writer thread with group
//! commit ([`writer`]), reads on a connection per runtime thread ([`reader`]). The cold roles
//! run through sqlx (`crate::sql`): a read pool and a one-connection write pool, which the
//! writer thread borrows for each of its transactions so that the two writers take turns.

mod memo;
mod reader;
mod tokens;
mod wal_append;
pub(crate) mod writer;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use camgate_core::error::StoreError;

use crate::backend::Backend;
use crate::sql::{CommentEdit, Pools};
use crate::{map_err, StoreOptions};
use reader::Reader;
use tokens::SqliteTokens;
use writer::{Writer, DEFAULT_MAX_BATCH};

/// The SQLite store: the rusqlite token role beside the sqlx pools.
pub(crate) type SqliteStore = Backend<SqliteTokens, Pools<sqlx::Sqlite>>;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Migrations whose first comment named the tracker entry it was written for (and 0004 a
/// note in that tracker): labels that meant nothing in this repository, replaced by what each
/// migration holds. The checksums are those of the texts databases applied.
static COMMENT_EDITS: &[CommentEdit] = &[
    CommentEdit {
        version: 3,
        old_sha384: "c6eb7860c4fcfc17e3da404dd44e64500a87db1983912d6730821c6cf089e50a0d4b1dccf1c0d3ac477d3e25c6907b1b",
    },
    CommentEdit {
        version: 4,
        old_sha384: "b0439605002eb44a0aa11b3c00c23b6bf5f874c6d4bd3077bafba4773ac56822e2ef8eef6a778b85ae05cfec0d12a3a7",
    },
    CommentEdit {
        version: 6,
        old_sha384: "abd240dff54be980a37d69d4be8905655305edc12c902a2e831c2d9da8ba756e95873b812cc0c032f2c0efd5fcb65255",
    },
];

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
                comment_edits: COMMENT_EDITS,
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

    fn new_user(email: &str) -> NewUser {
        NewUser {
            email: email.into(),
            password_hash: "x".into(),
            first_name: "M".into(),
            last_name: "E".into(),
            phone: String::new(),
            is_admin: false,
            created_at: 1,
            email_verified: false,
        }
    }

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
            .create_user(&new_user("Mem@Example.com"))
            .await
            .unwrap();
        let read = store.user_by_email("mem@example.com").await.unwrap();
        assert_eq!(read.map(|r| r.id), Some(u.id));
        let path = store.tokens._temp.as_ref().unwrap().0.clone();
        assert!(path.exists());
        drop(store);
        assert!(!path.exists(), "{} left behind", path.display());
    }

    /// Migration 0018 rebuilds the token tables with rowids and starts access generations:
    /// tokens written before it keep their state (live, revoked, used), and the first rotation
    /// after it supersedes the access tokens issued before it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokens_written_before_the_rowid_rebuild_keep_their_state() {
        use camgate_core::model::{NewAccessToken, NewRefreshToken};
        use camgate_core::scope::ScopeSet;
        let store = SqliteStore::connect("sqlite::memory:", &StoreOptions::default())
            .await
            .unwrap();
        let before = sqlx::migrate::Migrator {
            migrations: std::borrow::Cow::Owned(
                MIGRATOR
                    .iter()
                    .filter(|m| m.version < 18)
                    .cloned()
                    .collect(),
            ),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        before.run(&store.sql.write).await.unwrap();
        let h = |tag: &str| camgate_core::secret::digest(tag);
        let setup = [
            "INSERT INTO users (id, email, email_norm, password_hash, created_at, \
             password_changed_at) VALUES (1, 'a@example.com', 'a@example.com', 'x', 0, 0)",
            "INSERT INTO clients (id, client_id, name, kind, redirect_uris, grants, scopes, \
             profile, created_at) VALUES (1, 'c', 'c', 'public', '[]', '[]', 'read', \
             'angelcam', 0)",
            "INSERT INTO token_families (id, user_id, client_pk, grant_type, created_at, \
             expires_at) VALUES (1, 1, 1, 'password', 0, 9000000000)",
        ];
        for sql in setup {
            sqlx::query(sql).execute(&store.sql.write).await.unwrap();
        }
        let access = [("live", None), ("revoked", Some(5_i64))];
        for (tag, revoked) in access {
            sqlx::query(
                "INSERT INTO access_tokens (hash, family_id, scope, created_at, expires_at, \
                 revoked_at) VALUES ($1, 1, 'read', 1, 9000000000, $2)",
            )
            .bind(h(tag))
            .bind(revoked)
            .execute(&store.sql.write)
            .await
            .unwrap();
        }
        let refresh = [("used", Some(7_i64)), ("next", None)];
        for (tag, used) in refresh {
            sqlx::query(
                "INSERT INTO refresh_tokens (hash, family_id, scope, created_at, used_at) \
                 VALUES ($1, 1, 'read', 1, $2)",
            )
            .bind(h(tag))
            .bind(used)
            .execute(&store.sql.write)
            .await
            .unwrap();
        }

        store.migrate().await.unwrap();
        let revoked = |tag: &'static str| {
            let store = &store;
            async move { store.access_token(&h(tag)).await.unwrap().unwrap().revoked }
        };
        assert!(!revoked("live").await);
        assert!(revoked("revoked").await);
        let used = store.refresh_token(&h("used")).await.unwrap().unwrap();
        assert_eq!(used.used_at, Some(7));
        let next = store.refresh_token(&h("next")).await.unwrap().unwrap();
        assert_eq!((next.used_at, next.revoked), (None, false));

        let a = NewAccessToken {
            hash: h("after"),
            scope: ScopeSet::READ,
            created_at: 10,
            expires_at: 9_000_000_000,
        };
        let r = NewRefreshToken {
            hash: h("after-r"),
            scope: ScopeSet::READ,
            created_at: 10,
            expires_at: None,
        };
        assert!(store
            .rotate_refresh(1, &h("next"), 10, &a, &r)
            .await
            .unwrap());
        assert!(revoked("live").await, "issued before the rotation");
        assert!(!revoked("after").await);
        // The digest stays unique in the rebuilt table.
        let again = store.rotate_refresh(1, &h("after-r"), 11, &a, &r).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    }

    /// Under sustained writes the WAL is never cut back (it would only be allocated again);
    /// once writes pause, the checkpointer gives the disk back, and keeps every row.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_wal_is_truncated_once_writes_pause() {
        long_wal_is_truncated(false).await;
    }

    /// The same while light writes go on (a commit every 100 ms: never a pause of a second).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_wal_is_truncated_once_writes_slow_down() {
        long_wal_is_truncated(true).await;
    }

    async fn long_wal_is_truncated(keep_writing: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let url = format!("sqlite://{}", path.display());
        let store = SqliteStore::connect(&url, &StoreOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let wal = dir.path().join("t.db-wal");
        // One long transaction of another connection (as an import through the CLI would be).
        let c = rusqlite::Connection::open(&path).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c.execute_batch(
            "CREATE TABLE scratch (b BLOB); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 18000) \
             INSERT INTO scratch SELECT randomblob(4000) FROM n;",
        )
        .unwrap();
        let len = std::fs::metadata(&wal).unwrap().len();
        assert!(len > writer::WAL_KEEP, "the WAL is only {len} bytes");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut written = 0;
        // Truncated to nothing; with writes going on, the WAL starts growing again at once
        // (a few frames per commit), so what is asked then is that the long one was given back.
        let given_back = if keep_writing { 1024 * 1024 } else { 0 };
        loop {
            let len = std::fs::metadata(&wal).map_or(0, |m| m.len());
            if len <= given_back {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the WAL is still {len} bytes"
            );
            if keep_writing {
                let e = camgate_core::model::AuditEvent {
                    at: written,
                    kind: camgate_core::model::AuditKind::TokenRefreshed,
                    user_id: None,
                    client_id: None,
                    ip: None,
                    detail: "light".into(),
                };
                store.audit(&e).await.unwrap();
                written += 1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let rows: i64 = c
            .query_row("SELECT count(*) FROM scratch", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 18000);
        let audited: i64 = c
            .query_row(
                "SELECT count(*) FROM audit_events WHERE detail = 'light'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(audited, written);
    }

    /// A token lookup is answered from the thread's memo while nothing commits, and read
    /// again after any commit: one of this store's own writes, or another connection's (as
    /// another node or the CLI would make, through the same file).
    #[tokio::test(flavor = "current_thread")]
    async fn remembered_lookups_follow_every_commit() {
        use camgate_core::model::*;
        use camgate_core::scope::ScopeSet;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store =
            SqliteStore::connect(&format!("sqlite://{}", path.display()), &Default::default())
                .await
                .unwrap();
        store.migrate().await.unwrap();
        let user = store.create_user(&new_user("m@example.com")).await.unwrap();
        let client = store
            .create_client(&NewClient {
                client_id: "memo".into(),
                secret: SecretHash::Sha256(vec![0xab; 32]),
                name: "memo".into(),
                owner_id: None,
                kind: ClientKind::Confidential,
                redirect_uris: vec![],
                grants: GrantType::ALL.to_vec(),
                scopes: ScopeSet::READ_WRITE,
                profile: "default".into(),
                created_at: 1,
                oidc: Default::default(),
                allow_password_without_mfa: false,
            })
            .await
            .unwrap();
        let hash = vec![7u8; 32];
        store
            .create_family(
                &NewFamily {
                    actor_id: None,
                    user_id: Some(user.id),
                    client_pk: client.pk,
                    grant_type: GrantType::Password,
                    created_at: 1,
                    authn: None,
                },
                &NewAccessToken {
                    hash: hash.clone(),
                    scope: ScopeSet::READ_WRITE,
                    created_at: 1,
                    expires_at: i64::MAX,
                },
                None,
            )
            .await
            .unwrap();
        let disabled = || async {
            let info = store.access_token(&hash).await.unwrap().unwrap();
            info.user.unwrap().disabled
        };
        // The first lookups fill the memo (the connection's first read keeps nothing).
        assert!(!disabled().await);
        assert!(!disabled().await);
        let before = memo::hits();
        assert!(!disabled().await);
        assert_eq!(memo::hits(), before + 1, "not answered from the memo");
        assert!(store.access_token(&[9u8; 32]).await.unwrap().is_none());

        // Another connection commits: the next lookup reads again and sees it.
        let other = rusqlite::Connection::open(&path).unwrap();
        other
            .execute("UPDATE users SET disabled = 1 WHERE id = ?1", [user.id])
            .unwrap();
        let before = memo::hits();
        assert!(
            disabled().await,
            "a stale answer after another connection's commit"
        );
        assert_eq!(memo::hits(), before);
        assert!(disabled().await);
        assert_eq!(memo::hits(), before + 1);

        // This store's own write, through its sqlx writer.
        store.set_user_disabled(user.id, false).await.unwrap();
        assert!(
            !disabled().await,
            "a stale answer after this store's commit"
        );

        // A JWT's holder: remembered, asked for the same client and user only, and denied at
        // the next lookup once its jti is denylisted.
        let denied = || async {
            let s = store
                .jwt_subject("memo", Some(user.id), "j-1")
                .await
                .unwrap();
            s.unwrap().denied
        };
        assert!(!denied().await);
        let before = memo::hits();
        assert!(!denied().await);
        assert_eq!(memo::hits(), before + 1, "not answered from the memo");
        assert!(store
            .jwt_subject("other", Some(user.id), "j-1")
            .await
            .unwrap()
            .is_none());
        let s = store
            .jwt_subject("memo", None, "j-1")
            .await
            .unwrap()
            .unwrap();
        assert!(s.user.is_none());
        store.deny_jwt("j-1", i64::MAX).await.unwrap();
        assert!(denied().await, "a denylisted jti answered from the memo");
    }

    async fn checksum(store: &SqliteStore, version: i64) -> Vec<u8> {
        sqlx::query_scalar("SELECT checksum FROM _sqlx_migrations WHERE version = $1")
            .bind(version)
            .fetch_one(&store.sql.write)
            .await
            .unwrap()
    }

    async fn set_checksum(store: &SqliteStore, version: i64, sum: &[u8]) {
        sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2")
            .bind(sum.to_vec())
            .bind(version)
            .execute(&store.sql.write)
            .await
            .unwrap();
    }

    /// A database that applied a migration before its comments were edited (it holds the old
    /// text's checksum) starts and records the new one; any other recorded checksum still
    /// stops the start, as sqlx always did.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn applied_migrations_adopt_their_comment_edits_only() {
        let store = SqliteStore::connect("sqlite::memory:", &StoreOptions::default())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let new = |v: i64| {
            MIGRATOR
                .iter()
                .find(|m| m.version == v)
                .unwrap()
                .checksum
                .to_vec()
        };
        for e in COMMENT_EDITS {
            let old = e.old_checksum().unwrap();
            assert_ne!(
                old,
                new(e.version),
                "migration {} did not change",
                e.version
            );
            set_checksum(&store, e.version, &old).await;
        }
        store.migrate().await.unwrap();
        for e in COMMENT_EDITS {
            assert_eq!(checksum(&store, e.version).await, new(e.version));
        }

        // Not the old text of an edited migration: refused.
        set_checksum(&store, 3, &[7u8; 48]).await;
        assert!(store.migrate().await.is_err());
        set_checksum(&store, 3, &new(3)).await;
        // An old checksum on a migration that was not edited: refused.
        let old3 = COMMENT_EDITS[0].old_checksum().unwrap();
        set_checksum(&store, 5, &old3).await;
        assert!(store.migrate().await.is_err());
        set_checksum(&store, 5, &new(5)).await;
        store.migrate().await.unwrap();
    }
}
