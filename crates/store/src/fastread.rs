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
    REFRESH_TOKEN_SQL, USER_BY_ID_SQL,
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
                    let uid: Option<i64> = r.get("u_id")?;
                    let scope: String = r.get("scope")?;
                    Ok(AccessTokenInfo {
                        family_id: r.get("family_id")?,
                        scope: scope_of(&scope),
                        created_at: r.get("a_created_at")?,
                        expires_at: r.get("expires_at")?,
                        revoked: r.get("revoked")?,
                        client: ClientRef {
                            pk: r.get("c_pk")?,
                            client_id: r.get("c_client_id")?,
                            owner_id: r.get("c_owner_id")?,
                            profile: r.get("c_profile")?,
                        },
                        user: match uid {
                            Some(_) => Some(user(r)?),
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
                    let scope: String = r.get("p_scope")?;
                    Ok((
                        Pat {
                            id: r.get("p_id")?,
                            user_id: r.get("p_user_id")?,
                            name: r.get("p_name")?,
                            prefix: r.get("p_prefix")?,
                            scope: scope_of(&scope),
                            created_at: r.get("p_created_at")?,
                            expires_at: r.get("p_expires_at")?,
                            last_used_at: r.get("p_last_used_at")?,
                            revoked_at: r.get("p_revoked_at")?,
                        },
                        user(r)?,
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
                .query_row([id], user)
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

fn user(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get("u_id")?,
        email: r.get("u_email")?,
        password_hash: r.get("u_password_hash")?,
        first_name: r.get("u_first_name")?,
        last_name: r.get("u_last_name")?,
        phone: r.get("u_phone")?,
        is_admin: r.get("u_is_admin")?,
        disabled: r.get("u_disabled")?,
        created_at: r.get("u_created_at")?,
        password_changed_at: r.get("u_password_changed_at")?,
    })
}
