//! SQLite's token role in plain rusqlite: every write is one job on the writer thread (all its
//! statements and audit rows in one transaction, grouped with other waiting jobs), every read
//! a synchronous lookup on this runtime thread's connection. The statements are the shared
//! ones (`crate::sql::queries`), which PostgreSQL runs through sqlx.

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use camgate_core::clock::Timestamp;
use camgate_core::model::*;
use camgate_core::store::{
    AddAccess, GeoCell, JwtSubject, NewGrant, Rotation, StoreResult, TokenStore, Window,
};

use super::reader::{
    camera_at, client_ref_at, opt_user_at, pat_at, user_at, Reader, AT_CAMERA, AT_CLIENT, AT_USER,
    JWT_DENIED, PAT_USER,
};
use super::writer::{audit, insert_audit, Writer};
use super::{SqliteStore, TempFile};
use crate::sql::queries::*;
use crate::sql::rows::{AccessRow, ClientRow, RefreshRow, SharedCameraRow};
use crate::sql::tokens::{family_expiry, new_pat};
use crate::sql::Pools;

pub struct SqliteTokens {
    pub(crate) writer: Writer,
    pub(crate) reader: Reader,
    /// The file of an in-memory database, removed with the store.
    pub(crate) _temp: Option<TempFile>,
}

/// Moves a family's expiry forward (or to never) when it gains a token.
fn extend_family(
    c: &Connection,
    family_id: FamilyId,
    expiry: Option<Timestamp>,
) -> rusqlite::Result<()> {
    match expiry {
        None => c
            .prepare_cached(FAMILY_NEVER_EXPIRES)?
            .execute([family_id])?,
        Some(e) => c.prepare_cached(FAMILY_EXTEND)?.execute([e, family_id])?,
    };
    Ok(())
}

fn insert_access(c: &Connection, family_id: FamilyId, a: &NewAccessToken) -> rusqlite::Result<()> {
    let scope = a.scope.to_scope_string();
    let p = params![a.hash, family_id, scope, a.created_at, a.expires_at];
    c.prepare_cached(INSERT_ACCESS)?.execute(p)?;
    Ok(())
}

fn insert_refresh(
    c: &Connection,
    family_id: FamilyId,
    r: &NewRefreshToken,
) -> rusqlite::Result<()> {
    let scope = r.scope.to_scope_string();
    let p = params![r.hash, family_id, scope, r.created_at, r.expires_at];
    c.prepare_cached(INSERT_REFRESH)?.execute(p)?;
    Ok(())
}

impl SqliteTokens {
    /// One conditional UPDATE on a code with a `RETURNING` column that may be NULL.
    async fn update_code(
        &self,
        sql: &'static str,
        first: i64,
        hash: &[u8],
    ) -> StoreResult<Option<Option<i64>>> {
        let hash = hash.to_vec();
        self.writer
            .call(move |c| {
                c.prepare_cached(sql)?
                    .query_row(params![first, hash], |r| r.get(0))
                    .optional()
            })
            .await
    }

    /// One UPDATE; whether it changed exactly one row.
    async fn update_one(&self, sql: &'static str, p: (i64, Vec<u8>)) -> StoreResult<bool> {
        self.writer
            .call(move |c| Ok(c.prepare_cached(sql)?.execute(params![p.0, p.1])? == 1))
            .await
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn create_grant(&self, g: &NewGrant<'_>, audits: &[AuditEvent]) -> StoreResult<FamilyId> {
        let (family, access, refresh) = (g.family, g.access, g.refresh);
        let (family, access, refresh) = (family.clone(), access.clone(), refresh.cloned());
        let audits = audits.to_vec();
        self.tokens
            .writer
            .call(move |c| {
                let f = &family;
                let expiry = family_expiry(&access, refresh.as_ref());
                let p = params![
                    f.user_id,
                    f.client_pk,
                    f.grant_type.as_str(),
                    f.created_at,
                    expiry,
                    f.authn.as_ref().map(|a| a.auth_time),
                    f.authn.as_ref().map(|a| a.amr.as_str()),
                    f.actor_id
                ];
                let id: i64 = c
                    .prepare_cached(INSERT_FAMILY)?
                    .query_row(p, |r| r.get(0))?;
                insert_access(c, id, &access)?;
                if let Some(r) = &refresh {
                    insert_refresh(c, id, r)?;
                }
                for e in &audits {
                    audit(c, e)?;
                }
                Ok(id)
            })
            .await
    }

    /// The rotation and, if the claim won, its audit row: one job.
    async fn rotate(
        &self,
        r: &Rotation<'_>,
        audit_event: Option<&AuditEvent>,
    ) -> StoreResult<bool> {
        let (family_id, now) = (r.family_id, r.now);
        let (old, access, refresh) = (r.old.to_vec(), r.access.clone(), r.refresh.clone());
        let audit_event = audit_event.cloned();
        self.tokens
            .writer
            .call(move |c| {
                // The claim: exactly one caller sees one row changed (this thread is the only
                // writer of these rows; sqlx's writer takes the same database lock).
                if c.prepare_cached(CLAIM_REFRESH)?
                    .execute(params![now, old])?
                    != 1
                {
                    return Ok(false);
                }
                extend_family(c, family_id, family_expiry(&access, Some(&refresh)))?;
                c.prepare_cached(NEXT_ACCESS_GENERATION)?
                    .execute([family_id])?;
                insert_access(c, family_id, &access)?;
                insert_refresh(c, family_id, &refresh)?;
                if let Some(e) = &audit_event {
                    audit(c, e)?;
                }
                Ok(true)
            })
            .await
    }

    async fn access_token(&self, hash: &[u8]) -> StoreResult<Option<AccessTokenInfo>> {
        self.tokens.reader.with_memo(|c, memo| {
            if let Some(hit) = memo.as_ref().and_then(|m| m.access.get(hash)) {
                return Ok(Some(hit));
            }
            let found: Option<AccessTokenInfo> = c
                .prepare_cached(ACCESS_TOKEN_SQL)?
                .query_row([hash], |r| {
                    Ok(AccessRow {
                        family_id: r.get(0)?,
                        scope: r.get(1)?,
                        a_created_at: r.get(2)?,
                        expires_at: r.get(3)?,
                        revoked: r.get(4)?,
                        client: client_ref_at(r, AT_CLIENT)?,
                        user: opt_user_at(r, AT_USER)?,
                        f_camera_id: r.get(AT_CAMERA)?,
                        f_actor_id: r.get(AT_CAMERA + 1)?,
                    }
                    .into())
                })
                .optional()?;
            if let (Some(m), Some(info)) = (memo, &found) {
                m.access.put(hash.to_vec(), info.clone());
            }
            Ok(found)
        })
    }

    async fn refresh_token(&self, hash: &[u8]) -> StoreResult<Option<RefreshTokenInfo>> {
        self.tokens.reader.with(|c| {
            c.prepare_cached(REFRESH_TOKEN_SQL)?
                .query_row([hash], |r| {
                    Ok(RefreshRow {
                        family_id: r.get(0)?,
                        scope: r.get(1)?,
                        created_at: r.get(2)?,
                        expires_at: r.get(3)?,
                        used_at: r.get(4)?,
                        revoked: r.get(5)?,
                        client_pk: r.get(6)?,
                        user_id: r.get(7)?,
                        auth_time: r.get(8)?,
                        amr: r.get(9)?,
                        user_active: r.get(10)?,
                    }
                    .into())
                })
                .optional()
        })
    }

    async fn add_access(&self, add: &AddAccess<'_>) -> StoreResult<bool> {
        let (family_id, refresh, a) = (add.family_id, add.refresh.to_vec(), add.access.clone());
        self.tokens
            .writer
            .call(move |c| {
                let scope = a.scope.to_scope_string();
                let p = params![
                    a.hash,
                    family_id,
                    scope,
                    a.created_at,
                    a.expires_at,
                    refresh
                ];
                if c.prepare_cached(ADD_ACCESS)?.execute(p)? != 1 {
                    return Ok(false);
                }
                extend_family(c, family_id, Some(a.expires_at))?;
                Ok(true)
            })
            .await
    }

    async fn revoke_family(&self, family_id: FamilyId, now: Timestamp) -> StoreResult<()> {
        self.tokens
            .writer
            .call(move |c| {
                for sql in REVOKE_FAMILY {
                    c.prepare_cached(sql)?.execute([now, family_id])?;
                }
                Ok(())
            })
            .await
    }

    async fn revoke_access_token(&self, hash: &[u8], now: Timestamp) -> StoreResult<bool> {
        self.tokens
            .update_one(REVOKE_ACCESS, (now, hash.to_vec()))
            .await
    }

    async fn create_pat(&self, p: &NewPat) -> StoreResult<Pat> {
        let n = p.clone();
        let id: i64 = self
            .tokens
            .writer
            .call(move |c| {
                let scope = n.scope.to_scope_string();
                let p = params![
                    n.user_id,
                    n.name,
                    n.hash,
                    n.prefix,
                    scope,
                    n.created_at,
                    n.expires_at
                ];
                c.prepare_cached(INSERT_PAT)?.query_row(p, |r| r.get(0))
            })
            .await?;
        Ok(new_pat(id, p))
    }

    async fn pat_by_hash(&self, hash: &[u8]) -> StoreResult<Option<(Pat, User)>> {
        self.tokens.reader.with(|c| {
            c.prepare_cached(PAT_SQL)?
                .query_row([hash], |r| {
                    Ok((pat_at(r)?.into(), user_at(r, PAT_USER)?.into()))
                })
                .optional()
        })
    }

    async fn revoke_pat(&self, id: i64, user_id: UserId, now: Timestamp) -> StoreResult<bool> {
        self.tokens
            .writer
            .call(move |c| Ok(c.prepare_cached(REVOKE_PAT)?.execute([now, id, user_id])? == 1))
            .await
    }

    async fn touch_pat(&self, id: i64, now: Timestamp, min_interval: i64) -> StoreResult<()> {
        self.tokens
            .writer
            .call(move |c| {
                c.prepare_cached(TOUCH_PAT)?
                    .execute([now, id, now - min_interval])?;
                Ok(())
            })
            .await
    }

    async fn claim_auth_code(&self, hash: &[u8], now: Timestamp) -> StoreResult<bool> {
        self.tokens
            .update_one(CLAIM_CODE, (now, hash.to_vec()))
            .await
    }

    async fn attach_auth_code_family(&self, hash: &[u8], family_id: FamilyId) -> StoreResult<bool> {
        let replayed = self
            .tokens
            .update_code(ATTACH_CODE_FAMILY, family_id, hash)
            .await?;
        Ok(matches!(replayed, Some(Some(_))))
    }

    async fn mark_auth_code_replayed(
        &self,
        hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<Option<FamilyId>> {
        Ok(self
            .tokens
            .update_code(MARK_CODE_REPLAYED, now, hash)
            .await?
            .flatten())
    }

    async fn audit(&self, e: &AuditEvent) -> StoreResult<()> {
        let e = e.clone();
        self.tokens.writer.call(move |c| insert_audit(c, &e)).await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        self.tokens.reader.with(|c| {
            c.prepare_cached(USER_BY_ID_SQL)?
                .query_row([id], |r| Ok(user_at(r, 0)?.into()))
                .optional()
        })
    }

    async fn user_by_email(&self, email_norm: &str) -> StoreResult<Option<User>> {
        self.tokens.reader.with(|c| {
            c.prepare_cached(USER_BY_EMAIL_SQL)?
                .query_row([email_norm], |r| Ok(user_at(r, 0)?.into()))
                .optional()
        })
    }

    async fn client_by_client_id(&self, client_id: &str) -> StoreResult<Option<Client>> {
        let row = self.tokens.reader.with(|c| {
            c.prepare_cached(CLIENT_BY_ID_SQL)?
                .query_row([client_id], |r| {
                    Ok(ClientRow {
                        id: r.get(0)?,
                        client_id: r.get(1)?,
                        secret_sha256: r.get(2)?,
                        secret_phc: r.get(3)?,
                        name: r.get(4)?,
                        owner_id: r.get(5)?,
                        kind: r.get(6)?,
                        redirect_uris: r.get(7)?,
                        grants: r.get(8)?,
                        scopes: r.get(9)?,
                        profile: r.get(10)?,
                        created_at: r.get(11)?,
                        oidc: r.get(12)?,
                        allow_password_without_mfa: r.get(13)?,
                    })
                })
                .optional()
        })?;
        row.map(Client::try_from).transpose()
    }

    /// A committed failure is visible to the next read: WAL readers see every transaction
    /// committed before they start.
    async fn throttle_failures(&self, key: &[u8], since: Timestamp) -> StoreResult<Option<Window>> {
        self.tokens.reader.with(|c| {
            c.prepare_cached(THROTTLE_SQL)?
                .query_row(params![key, since], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
    }

    /// Every request a JWT authenticates asks for it.
    async fn jwt_subject(
        &self,
        client_id: &str,
        user_id: Option<UserId>,
        jti: &str,
    ) -> StoreResult<Option<JwtSubject>> {
        self.tokens.reader.with_memo(|c, memo| {
            if let Some(hit) = memo
                .as_ref()
                .and_then(|m| m.jwt_subject(jti, client_id, user_id))
            {
                return Ok(Some(hit));
            }
            let found: Option<JwtSubject> = c
                .prepare_cached(JWT_SUBJECT_SQL)?
                .query_row(params![jti, user_id, client_id], |r| {
                    Ok(JwtSubject {
                        client: client_ref_at(r, 0)?.into(),
                        denied: r.get(JWT_DENIED)?,
                        user: opt_user_at(r, JWT_DENIED + 1)?.0.map(Into::into),
                    })
                })
                .optional()?;
            if let (Some(m), Some(s)) = (memo, &found) {
                m.keep_jwt_subject(jti, client_id, user_id, s.clone());
            }
            Ok(found)
        })
    }

    /// Every JWT the token endpoint signs asks for it.
    async fn active_signing_kid(&self) -> StoreResult<Option<String>> {
        self.tokens.reader.with(|c| {
            c.prepare_cached(ACTIVE_KID_SQL)?
                .query_row([], |r| r.get(0))
                .optional()
        })
    }
}

/// Camera listings on the per-thread reader, like the token lookups.
#[async_trait]
impl crate::sql::cameras::CameraReads<Pools<sqlx::Sqlite>> for SqliteTokens {
    /// The CAM2 searches' statements on this thread's reader: through sqlx every row was a
    /// message from its worker thread (a futex wake each), which made a radius search that
    /// reads thousands of candidate positions cost ≈ 20 ms of CPU.
    async fn camera_rows(
        &self,
        _sql: &Pools<sqlx::Sqlite>,
        text: &str,
        args: Vec<crate::sql::Arg>,
    ) -> StoreResult<Vec<Camera>> {
        let rows = self
            .reader
            .with(|c| rows_where(c, text, &args, |r| camera_at(r).map(Some)))?;
        crate::sql::rows::try_all(rows)
    }

    async fn camera_cells(
        &self,
        _sql: &Pools<sqlx::Sqlite>,
        text: &str,
        args: Vec<crate::sql::Arg>,
    ) -> StoreResult<Vec<GeoCell>> {
        self.reader.with(|c| {
            rows_where(c, text, &args, |r| {
                Ok(Some(GeoCell {
                    id: r.get(0)?,
                    lat_min: r.get(1)?,
                    lat_max: r.get(2)?,
                    lng_min: r.get(3)?,
                    lng_max: r.get(4)?,
                }))
            })
        })
    }

    async fn camera_page(
        &self,
        _sql: &Pools<sqlx::Sqlite>,
        owner: UserId,
        limit: i64,
        offset: i64,
        after: Option<CameraId>,
    ) -> StoreResult<(i64, Vec<Camera>)> {
        let (count, rows) = self.reader.with(|c| {
            let (own, shared): (i64, i64) = c
                .prepare_cached(CAMERA_COUNTS_SQL)?
                .query_row([owner], |r| Ok((r.get(0)?, r.get(1)?)))?;
            if shared > 0 {
                let (after, offset) = match after {
                    Some(a) => (a, 0),
                    None => (0, offset),
                };
                let rows = c
                    .prepare_cached(&SHARED_PAGE_SQL)?
                    .query_map(params![owner, after, limit, offset], |r| {
                        Ok(SharedCameraRow {
                            camera: camera_at(r)?,
                            s_permission: r.get(28)?,
                            o_first_name: r.get(29)?,
                            o_last_name: r.get(30)?,
                            o_email: r.get(31)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                return Ok((own + shared, Err(rows)));
            }
            let rows = match after {
                Some(a) => c
                    .prepare_cached(CAMERA_PAGE_AFTER_SQL)?
                    .query_map(params![owner, a, limit], camera_at)?
                    .collect::<rusqlite::Result<Vec<_>>>()?,
                None => c
                    .prepare_cached(CAMERA_PAGE_OFFSET_SQL)?
                    .query_map(params![owner, limit, offset], camera_at)?
                    .collect::<rusqlite::Result<Vec<_>>>()?,
            };
            Ok((own, Ok(rows)))
        })?;
        // Own cameras only (Ok) or own and shared ones (Err: the rows carry the share).
        let cams = match rows {
            Ok(rows) => rows
                .into_iter()
                .map(Camera::try_from)
                .collect::<StoreResult<Vec<_>>>()?,
            Err(rows) => rows
                .into_iter()
                .map(Camera::try_from)
                .collect::<StoreResult<Vec<_>>>()?,
        };
        Ok((count, cams))
    }

    async fn camera_listing_version(
        &self,
        _sql: &Pools<sqlx::Sqlite>,
        user: UserId,
    ) -> StoreResult<i64> {
        self.reader.with_memo(|c, memo| {
            if let Some(v) = memo.as_ref().and_then(|m| m.listing_version.get(&user)) {
                return Ok(v);
            }
            let v = c
                .prepare_cached(CAMERA_LISTING_VERSION_SQL)?
                .query_row([user], |r| r.get(0))?;
            if let Some(m) = memo {
                m.listing_version.put(user, v);
            }
            Ok(v)
        })
    }

    async fn camera_search_version(&self, _sql: &Pools<sqlx::Sqlite>) -> StoreResult<i64> {
        self.reader.with_memo(|c, memo| {
            if let Some(v) = memo.as_ref().and_then(|m| m.search_version) {
                return Ok(v);
            }
            let v = c
                .prepare_cached(CAMERA_SEARCH_VERSION_SQL)?
                .query_row([], |r| r.get(0))?;
            if let Some(m) = memo {
                m.search_version = Some(v);
            }
            Ok(v)
        })
    }
}

/// Runs `text` with `args` and keeps what `keep` makes of each row (`None`: left out).
fn rows_where<T>(
    c: &Connection,
    text: &str,
    args: &[crate::sql::Arg],
    mut keep: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<Option<T>>,
) -> rusqlite::Result<Vec<T>> {
    let mut st = c.prepare_cached(text)?;
    bind_numbered(&mut st, args)?;
    let mut rows = st.raw_query();
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.extend(keep(r)?);
    }
    Ok(out)
}

/// Binds `args` to a statement written with `$1`, `$2`, … (the shared SQL's style); SQLite
/// numbers such parameters by first appearance, so each is looked up by name.
fn bind_numbered(
    st: &mut rusqlite::Statement<'_>,
    args: &[crate::sql::Arg],
) -> rusqlite::Result<()> {
    use crate::sql::Arg;
    for (i, a) in args.iter().enumerate() {
        let Some(idx) = st.parameter_index(&format!("${}", i + 1))? else {
            continue;
        };
        match a {
            Arg::Int(v) => st.raw_bind_parameter(idx, v)?,
            Arg::Real(v) => st.raw_bind_parameter(idx, v)?,
            Arg::Text(v) => st.raw_bind_parameter(idx, v)?,
            Arg::Bytes(v) => st.raw_bind_parameter(idx, v)?,
            Arg::Bool(v) => st.raw_bind_parameter(idx, v)?,
        }
    }
    Ok(())
}
