//! The SQLite hot-path reader. sqlx runs every SQLite connection on a worker thread of its own,
//! so each query costs two thread hand-offs — half the CPU of a `GET /v1/me/` went to context
//! switches. The two lookups on every resource request (access token, personal access token)
//! instead run synchronously on a read-only rusqlite connection owned by the calling runtime
//! thread: a primary-key lookup in the page cache takes microseconds, less than a hand-off.
//! Any error falls back to the sqlx path, so this is an optimisation, never a second source
//! of truth. WAL readers do not wait for the writer; a short busy timeout bounds the rare
//! wait (checkpoint restart).

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};

use camgate_core::model::{
    AccessTokenInfo, Client, ClientKind, ClientRef, Pat, RefreshTokenInfo, SecretHash, User,
};

use crate::common::{
    grants_of, scope_of, ACCESS_TOKEN_SQL, ACTIVE_KID_SQL, CLIENT_BY_ID_SQL, PAT_SQL,
    REFRESH_TOKEN_SQL, THROTTLE_SQL, USER_BY_EMAIL_SQL, USER_BY_ID_SQL,
};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One per SqliteStore; its thread-local connections die with it.
pub(crate) struct FastReader {
    id: u64,
    path: PathBuf,
    alive: Arc<()>,
}

struct Slot {
    id: u64,
    alive: Weak<()>,
    conn: Connection,
}

thread_local! {
    static SLOTS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

impl FastReader {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            path,
            alive: Arc::new(()),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_millis(50))?;
        conn.pragma_update(None, "query_only", true)?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(conn)
    }

    /// Runs `f` on this thread's connection for this store. `None` on any error.
    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<T> {
        SLOTS.with(|slots| {
            let mut slots = slots.try_borrow_mut().ok()?;
            slots.retain(|s| s.alive.strong_count() > 0);
            let idx = match slots.iter().position(|s| s.id == self.id) {
                Some(i) => i,
                None => {
                    let conn = self.open().ok()?;
                    slots.push(Slot {
                        id: self.id,
                        alive: Arc::downgrade(&self.alive),
                        conn,
                    });
                    slots.len() - 1
                }
            };
            match f(&slots[idx].conn) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::debug!(error = %e, "fast read failed; using the pool");
                    None
                }
            }
        })
    }

    pub(crate) fn access_token(&self, hash: &[u8]) -> Option<Option<AccessTokenInfo>> {
        self.with(|c| {
            c.prepare_cached(ACCESS_TOKEN_SQL)?
                .query_row([hash], |r| {
                    // Columns by position (the order of ACCESS_TOKEN_SQL; checked by the
                    // test below): a lookup by name compares every column name, which cost
                    // more than the query on this hottest path.
                    let uid: Option<i64> = r.get(AT_USER)?;
                    let scope: String = r.get(1)?;
                    Ok(AccessTokenInfo {
                        family_id: r.get(0)?,
                        scope: scope_of(&scope),
                        created_at: r.get(2)?,
                        expires_at: r.get(3)?,
                        revoked: r.get(4)?,
                        client: ClientRef {
                            pk: r.get(5)?,
                            client_id: r.get(6)?,
                            owner_id: r.get(7)?,
                            profile: r.get(8)?,
                        },
                        user: match uid {
                            Some(_) => Some(user_at(r, AT_USER)?),
                            None => None,
                        },
                    })
                })
                .optional()
        })
    }

    pub(crate) fn pat(&self, hash: &[u8]) -> Option<Option<(Pat, User)>> {
        self.with(|c| {
            c.prepare_cached(PAT_SQL)?
                .query_row([hash], |r| {
                    // By position, the order of PAT_SQL (checked by the test below).
                    let scope: String = r.get(4)?;
                    Ok((
                        Pat {
                            id: r.get(0)?,
                            user_id: r.get(1)?,
                            name: r.get(2)?,
                            prefix: r.get(3)?,
                            scope: scope_of(&scope),
                            created_at: r.get(5)?,
                            expires_at: r.get(6)?,
                            last_used_at: r.get(7)?,
                            revoked_at: r.get(8)?,
                        },
                        user_at(r, PAT_USER)?,
                    ))
                })
                .optional()
        })
    }
}

impl FastReader {
    pub(crate) fn refresh_token(&self, hash: &[u8]) -> Option<Option<RefreshTokenInfo>> {
        self.with(|c| {
            c.prepare_cached(REFRESH_TOKEN_SQL)?
                .query_row([hash], |r| {
                    let scope: String = r.get("scope")?;
                    Ok(RefreshTokenInfo {
                        family_id: r.get("family_id")?,
                        client_pk: r.get("client_pk")?,
                        user_id: r.get("user_id")?,
                        scope: scope_of(&scope),
                        created_at: r.get("created_at")?,
                        expires_at: r.get("expires_at")?,
                        used_at: r.get("used_at")?,
                        revoked: r.get("revoked")?,
                    })
                })
                .optional()
        })
    }

    /// The active signing key's kid (every JWT the token endpoint signs asks for it).
    pub(crate) fn active_signing_kid(&self) -> Option<Option<String>> {
        self.with(|c| {
            c.prepare_cached(ACTIVE_KID_SQL)?
                .query_row([], |r| r.get(0))
                .optional()
        })
    }

    pub(crate) fn user(&self, id: i64) -> Option<Option<User>> {
        self.with(|c| {
            c.prepare_cached(USER_BY_ID_SQL)?
                .query_row([id], |r| user_at(r, 0))
                .optional()
        })
    }

    pub(crate) fn user_by_email(&self, email_norm: &str) -> Option<Option<User>> {
        self.with(|c| {
            c.prepare_cached(USER_BY_EMAIL_SQL)?
                .query_row([email_norm], |r| user_at(r, 0))
                .optional()
        })
    }

    /// A login-throttle counter (a committed failure is visible to the next read: WAL
    /// readers see every transaction committed before they start).
    pub(crate) fn throttle(&self, key: &[u8], since: i64) -> Option<Option<(i64, i64)>> {
        self.with(|c| {
            c.prepare_cached(THROTTLE_SQL)?
                .query_row(rusqlite::params![key, since], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
        })
    }

    pub(crate) fn client(&self, client_id: &str) -> Option<Option<Client>> {
        self.with(|c| {
            c.prepare_cached(CLIENT_BY_ID_SQL)?
                .query_row([client_id], |r| {
                    let sha: Option<Vec<u8>> = r.get("secret_sha256")?;
                    let phc: Option<String> = r.get("secret_phc")?;
                    let kind: String = r.get("kind")?;
                    let uris: String = r.get("redirect_uris")?;
                    let grants: String = r.get("grants")?;
                    let scopes: String = r.get("scopes")?;
                    Ok(Client {
                        pk: r.get("id")?,
                        client_id: r.get("client_id")?,
                        secret: match (sha, phc) {
                            (Some(h), _) => SecretHash::Sha256(h),
                            (None, Some(p)) => SecretHash::Argon2(p),
                            (None, None) => SecretHash::None,
                        },
                        name: r.get("name")?,
                        owner_id: r.get("owner_id")?,
                        kind: if kind == "public" {
                            ClientKind::Public
                        } else {
                            ClientKind::Confidential
                        },
                        redirect_uris: serde_json::from_str(&uris).map_err(|e| {
                            rusqlite::Error::FromSqlConversionFailure(
                                0,
                                rusqlite::types::Type::Text,
                                Box::new(e),
                            )
                        })?,
                        grants: grants_of(&grants),
                        scopes: scope_of(&scopes),
                        profile: r.get("profile")?,
                        created_at: r.get("created_at")?,
                    })
                })
                .optional()
        })
    }
}

/// Where the `u_*` columns start in ACCESS_TOKEN_SQL and PAT_SQL (USER_BY_ID_SQL: 0).
const AT_USER: usize = 9;
const PAT_USER: usize = 9;

/// The user columns `u_id … u_password_changed_at`, in that order, from position `at`.
fn user_at(r: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(at)?,
        email: r.get(at + 1)?,
        password_hash: r.get(at + 2)?,
        first_name: r.get(at + 3)?,
        last_name: r.get(at + 4)?,
        phone: r.get(at + 5)?,
        is_admin: r.get(at + 6)?,
        disabled: r.get(at + 7)?,
        created_at: r.get(at + 8)?,
        password_changed_at: r.get(at + 9)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: [&str; 10] = [
        "u_id",
        "u_email",
        "u_password_hash",
        "u_first_name",
        "u_last_name",
        "u_phone",
        "u_is_admin",
        "u_disabled",
        "u_created_at",
        "u_password_changed_at",
    ];

    /// The positions the readers above use are the columns' names in the SQL.
    #[test]
    fn positional_columns_match_the_sql() {
        let c = Connection::open_in_memory().unwrap();
        for m in [
            include_str!("../migrations/sqlite/0001_init.sql"),
            include_str!("../migrations/sqlite/0002_versions.sql"),
            include_str!("../migrations/sqlite/0003_authorize.sql"),
            include_str!("../migrations/sqlite/0004_cam2.sql"),
            include_str!("../migrations/sqlite/0005_purge.sql"),
            include_str!("../migrations/sqlite/0006_dashboard.sql"),
            include_str!("../migrations/sqlite/0007_family_live_index.sql"),
        ] {
            c.execute_batch(m).unwrap();
        }
        let names = |sql: &str| -> Vec<String> {
            c.prepare(sql)
                .unwrap()
                .column_names()
                .into_iter()
                .map(str::to_string)
                .collect()
        };
        let at = names(ACCESS_TOKEN_SQL);
        assert_eq!(
            &at[..AT_USER],
            [
                "family_id",
                "scope",
                "a_created_at",
                "expires_at",
                "revoked",
                "c_pk",
                "c_client_id",
                "c_owner_id",
                "c_profile"
            ]
        );
        assert_eq!(&at[AT_USER..], USER);
        let pat = names(PAT_SQL);
        assert_eq!(
            &pat[..PAT_USER],
            [
                "p_id",
                "p_user_id",
                "p_name",
                "p_prefix",
                "p_scope",
                "p_created_at",
                "p_expires_at",
                "p_last_used_at",
                "p_revoked_at"
            ]
        );
        assert_eq!(&pat[PAT_USER..], USER);
        assert_eq!(names(USER_BY_ID_SQL), USER);
        assert_eq!(names(USER_BY_EMAIL_SQL), USER);
        assert_eq!(names(THROTTLE_SQL), ["window_start", "failures"]);
    }
}
