//! The token role's SQLite reads: synchronous, on a read-only rusqlite connection owned by the
//! calling runtime thread. sqlx runs every SQLite connection on a worker thread of its own, so
//! each query cost two thread hand-offs — half the CPU of a `GET /v1/me/` went to context
//! switches; a primary-key lookup in the page cache takes microseconds, less than a hand-off.
//! WAL readers do not wait for the writer, and see every transaction committed before they
//! start; a short busy timeout bounds the rare wait (a checkpoint restarting the log).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Row};

use camgate_core::error::StoreError;
use camgate_core::store::StoreResult;

use super::memo::{Memo, WalIndex};
use crate::sql::rows::{CameraRow, ClientRefRow, OptUser, PatRow, UserRow};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One per store; its thread-local connections die with it.
pub(crate) struct Reader {
    id: u64,
    path: PathBuf,
    alive: Arc<()>,
    /// The database's `-shm` file, for [`Reader::with_memo`]; `None`: not memoised.
    wal_index: OnceLock<Option<WalIndex>>,
}

struct Slot {
    id: u64,
    alive: Weak<()>,
    conn: Connection,
    /// Set once the connection has finished a read: it then holds the shared memory open.
    has_read: bool,
    memo: Memo,
}

thread_local! {
    static SLOTS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

impl Reader {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            path,
            alive: Arc::new(()),
            wal_index: OnceLock::new(),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_millis(500))?;
        conn.pragma_update(None, "query_only", true)?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(conn)
    }

    /// Runs `f` on this thread's connection for this store.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> StoreResult<T> {
        self.slot(|s| f(&s.conn))
    }

    /// Runs `f` on this thread's connection with the thread's memo for this store, emptied
    /// if anything committed since its entries were looked up (`memo.rs`); `None` when the
    /// database cannot tell (then `f` reads, and keeps nothing).
    pub(crate) fn with_memo<T>(
        &self,
        f: impl FnOnce(&Connection, Option<&mut Memo>) -> rusqlite::Result<T>,
    ) -> StoreResult<T> {
        self.slot(|s| {
            let header = if s.has_read {
                self.wal_index
                    .get_or_init(|| {
                        // The file name as SQLite resolved it (symbolic links followed), so
                        // the `-shm` file beside it is the one SQLite maps.
                        let db = s.conn.path().filter(|p| !p.is_empty())?;
                        if wal_mode(&s.conn) {
                            WalIndex::open(Path::new(db))
                        } else {
                            None
                        }
                    })
                    .as_ref()
                    .and_then(WalIndex::header)
            } else {
                None
            };
            let memo = header.map(|h| {
                s.memo.align(h);
                &mut s.memo
            });
            f(&s.conn, memo)
        })
    }

    fn slot<T>(&self, f: impl FnOnce(&mut Slot) -> rusqlite::Result<T>) -> StoreResult<T> {
        SLOTS.with(|slots| {
            let mut slots = slots
                .try_borrow_mut()
                .map_err(|_| StoreError::Other("SQLite reader re-entered".into()))?;
            slots.retain(|s| s.alive.strong_count() > 0);
            let idx = match slots.iter().position(|s| s.id == self.id) {
                Some(i) => i,
                None => {
                    let conn = self.open().map_err(super::writer::map_err)?;
                    slots.push(Slot {
                        id: self.id,
                        alive: Arc::downgrade(&self.alive),
                        conn,
                        has_read: false,
                        memo: Memo::new(),
                    });
                    slots.len() - 1
                }
            };
            let slot = &mut slots[idx];
            let out = f(slot).map_err(super::writer::map_err)?;
            slot.has_read = true;
            Ok(out)
        })
    }
}

/// Whether the database is in WAL mode (the only mode whose commits the memo can see).
fn wal_mode(c: &Connection) -> bool {
    c.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
        .is_ok_and(|m| m.eq_ignore_ascii_case("wal"))
}

/// Where the `u_*` columns start in ACCESS_TOKEN_SQL and PAT_SQL (the user queries: 0), and
/// the `c_*` columns in ACCESS_TOKEN_SQL. Columns are read by position: a lookup by name
/// compares every column name, which cost more than the query on this hottest path.
pub(crate) const AT_CLIENT: usize = 5;
pub(crate) const AT_USER: usize = 9;
/// The token's camera binding in ACCESS_TOKEN_SQL, after the user's twelve columns; then the
/// family's actor (a token-exchange token's dealer).
pub(crate) const AT_CAMERA: usize = AT_USER + 12;
pub(crate) const PAT_USER: usize = 9;
/// `denied` in JWT_SUBJECT_SQL, after the four `c_*` columns; the user's columns follow.
pub(crate) const JWT_DENIED: usize = 4;

/// The user columns `u_id … u_password_changed_at`, in that order, from position `at`.
pub(crate) fn user_at(r: &Row<'_>, at: usize) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        u_id: r.get(at)?,
        u_email: r.get(at + 1)?,
        u_password_hash: r.get(at + 2)?,
        u_first_name: r.get(at + 3)?,
        u_last_name: r.get(at + 4)?,
        u_phone: r.get(at + 5)?,
        u_is_admin: r.get(at + 6)?,
        u_disabled: r.get(at + 7)?,
        u_created_at: r.get(at + 8)?,
        u_password_changed_at: r.get(at + 9)?,
        u_email_verified: r.get(at + 10)?,
        u_is_dealer: r.get(at + 11)?,
    })
}

/// The user columns of an outer join from position `at`: `None` when `u_id` is NULL.
pub(crate) fn opt_user_at(r: &Row<'_>, at: usize) -> rusqlite::Result<OptUser> {
    let id: Option<i64> = r.get(at)?;
    Ok(OptUser(match id {
        Some(_) => Some(user_at(r, at)?),
        None => None,
    }))
}

/// The `c_*` columns from position `at`.
pub(crate) fn client_ref_at(r: &Row<'_>, at: usize) -> rusqlite::Result<ClientRefRow> {
    Ok(ClientRefRow {
        c_pk: r.get(at)?,
        c_client_id: r.get(at + 1)?,
        c_owner_id: r.get(at + 2)?,
        c_profile: r.get(at + 3)?,
    })
}

/// A camera row (`queries::CAMERA_COLS`, in order), from position 0.
pub(crate) fn camera_at(r: &Row<'_>) -> rusqlite::Result<CameraRow> {
    Ok(CameraRow {
        id: r.get(0)?,
        owner_id: r.get(1)?,
        name: r.get(2)?,
        codec: r.get(3)?,
        status: r.get(4)?,
        streams: r.get(5)?,
        snapshot: r.get(6)?,
        city: r.get(7)?,
        state: r.get(8)?,
        country: r.get(9)?,
        lat: r.get(10)?,
        lng: r.get(11)?,
        source: r.get(12)?,
        source_url: r.get(13)?,
        camera_type: r.get(14)?,
        description: r.get(15)?,
        is_video: r.get(16)?,
        framerate: r.get(17)?,
        outdoors: r.get(18)?,
        traffic: r.get(19)?,
        inactive: r.get(20)?,
        resolution_w: r.get(21)?,
        resolution_h: r.get(22)?,
        tags: r.get(23)?,
        is_public: r.get(24)?,
        created_at: r.get(25)?,
        updated_at: r.get(26)?,
        version: r.get(27)?,
    })
}

/// The `p_*` columns, from position 0.
pub(crate) fn pat_at(r: &Row<'_>) -> rusqlite::Result<PatRow> {
    Ok(PatRow {
        p_id: r.get(0)?,
        p_user_id: r.get(1)?,
        p_name: r.get(2)?,
        p_prefix: r.get(3)?,
        p_scope: r.get(4)?,
        p_created_at: r.get(5)?,
        p_expires_at: r.get(6)?,
        p_last_used_at: r.get(7)?,
        p_revoked_at: r.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::queries::*;

    const USER: [&str; 12] = [
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
        "u_email_verified",
        "u_is_dealer",
    ];

    /// The positions the readers above use are the columns' names in the SQL.
    #[test]
    fn positional_columns_match_the_sql() {
        let c = Connection::open_in_memory().unwrap();
        // Every migration, so the columns are those of the schema the store runs on.
        for m in super::super::MIGRATOR.iter() {
            c.execute_batch(&m.sql).unwrap();
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
        assert_eq!(at[AT_CLIENT], "c_pk");
        assert_eq!(&at[AT_USER..AT_CAMERA], USER);
        assert_eq!(at[AT_CAMERA], "f_camera_id");
        assert_eq!(at[AT_CAMERA + 1], "f_actor_id");
        assert_eq!(at.len(), AT_CAMERA + 2);
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
        let jwt = names(JWT_SUBJECT_SQL);
        assert_eq!(
            &jwt[..=JWT_DENIED],
            ["c_pk", "c_client_id", "c_owner_id", "c_profile", "denied"]
        );
        assert_eq!(&jwt[JWT_DENIED + 1..], USER);
        assert_eq!(names(USER_BY_ID_SQL), USER);
        assert_eq!(names(USER_BY_EMAIL_SQL), USER);
        assert_eq!(names(THROTTLE_SQL), ["window_start", "failures"]);
        // sqlite/tokens.rs reads these by position too.
        assert_eq!(
            names(REFRESH_TOKEN_SQL),
            [
                "family_id",
                "scope",
                "created_at",
                "expires_at",
                "used_at",
                "revoked",
                "client_pk",
                "user_id",
                "auth_time",
                "amr",
                "user_active"
            ]
        );
        let client = names(CLIENT_BY_ID_SQL);
        assert_eq!(client.len(), 14);
        assert_eq!(client[11], "created_at");
        assert_eq!(client[12], "oidc");
        assert_eq!(client[13], "allow_password_without_mfa");
        // camera_at reads CAMERA_COLS by position.
        let cams = names(CAMERA_PAGE_OFFSET_SQL);
        assert_eq!(cams, names(CAMERA_PAGE_AFTER_SQL));
        assert_eq!(cams.len(), 28);
        for (i, n) in [
            (0, "id"),
            (1, "owner_id"),
            (16, "is_video"),
            (24, "is_public"),
            (27, "version"),
        ] {
            assert_eq!(cams[i], n);
        }
    }
}
