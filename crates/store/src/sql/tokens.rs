//! The token role over [`Sql`]: PostgreSQL's hot path. Multi-statement changes run in one
//! transaction; the refresh claim is one conditional UPDATE, so concurrent claims from any
//! node serialise on the row lock and exactly one wins.

use async_trait::async_trait;

use camgate_core::clock::Timestamp;
use camgate_core::model::*;
use camgate_core::store::{
    write_audits, AddAccess, JwtSubject, NewGrant, Rotation, StoreResult, TokenStore, Window,
};

use super::queries::*;
use super::rows::{AccessRow, ClientRow, JwtSubjectRow, PatUserRow, RefreshRow, UserRow};
use super::{args, Exec, Sql};
use crate::backend::Backend;

/// The token role of a backend that runs it through the shared SQL (PostgreSQL).
pub(crate) struct SqlTokens;

/// A family's expiry: the latest of its tokens', or `None` if one never expires.
pub(crate) fn family_expiry(
    access: &NewAccessToken,
    refresh: Option<&NewRefreshToken>,
) -> Option<Timestamp> {
    match refresh {
        None => Some(access.expires_at),
        Some(r) => r.expires_at.map(|e| e.max(access.expires_at)),
    }
}

/// A PAT just inserted with row id `id`.
pub(crate) fn new_pat(id: i64, p: &NewPat) -> Pat {
    Pat {
        id,
        user_id: p.user_id,
        name: p.name.clone(),
        prefix: p.prefix.clone(),
        scope: p.scope,
        created_at: p.created_at,
        expires_at: p.expires_at,
        last_used_at: None,
        revoked_at: None,
    }
}

/// Moves a family's expiry forward (or to never) when it gains a token.
async fn extend_family<X: Exec>(
    tx: &mut X,
    family_id: FamilyId,
    expiry: Option<Timestamp>,
) -> StoreResult<()> {
    match expiry {
        None => tx.run(FAMILY_NEVER_EXPIRES, args![family_id]).await?,
        Some(e) => tx.run(FAMILY_EXTEND, args![e, family_id]).await?,
    };
    Ok(())
}

/// Inserts a family's new access token and, if given, its new refresh token.
async fn insert_tokens<X: Exec>(
    tx: &mut X,
    family_id: FamilyId,
    a: &NewAccessToken,
    r: Option<&NewRefreshToken>,
) -> StoreResult<()> {
    let access = (
        INSERT_ACCESS,
        &a.hash,
        a.scope,
        a.created_at,
        Some(a.expires_at),
    );
    let refresh = r.map(|r| (INSERT_REFRESH, &r.hash, r.scope, r.created_at, r.expires_at));
    for (sql, hash, scope, created, expires) in std::iter::once(access).chain(refresh) {
        let args = args![
            hash.as_slice(),
            family_id,
            scope.to_scope_string(),
            created,
            expires
        ];
        tx.run(sql, args).await?;
    }
    Ok(())
}

#[async_trait]
impl<Q: Sql> TokenStore for Backend<SqlTokens, Q> {
    /// The family in one transaction; the audit rows after it commits (a failed audit insert
    /// would abort a PostgreSQL transaction, and auditing must never undo the grant).
    async fn create_grant(&self, g: &NewGrant<'_>, audits: &[AuditEvent]) -> StoreResult<FamilyId> {
        let (family, access, refresh) = (g.family, g.access, g.refresh);
        let mut tx = self.sql.begin().await?;
        let fam = args![
            family.user_id,
            family.client_pk,
            family.grant_type.as_str(),
            family.created_at,
            family_expiry(access, refresh),
            family.authn.as_ref().map(|a| a.auth_time),
            family.authn.as_ref().map(|a| a.amr.clone()),
            family.actor_id
        ];
        let (id,): (i64,) = tx
            .one(INSERT_FAMILY, fam)
            .await?
            .ok_or_else(|| camgate_core::error::StoreError::Other("no family id".into()))?;
        insert_tokens(&mut tx, id, access, refresh).await?;
        tx.commit().await?;
        write_audits(self, audits).await;
        Ok(id)
    }

    async fn access_token(&self, hash: &[u8]) -> StoreResult<Option<AccessTokenInfo>> {
        let row: Option<AccessRow> = self.sql.one(ACCESS_TOKEN_SQL, args![hash]).await?;
        Ok(row.map(Into::into))
    }

    async fn refresh_token(&self, hash: &[u8]) -> StoreResult<Option<RefreshTokenInfo>> {
        // Through the writer: the grace-window decision must see the latest claim.
        let row: Option<RefreshRow> = self.sql.one_w(REFRESH_TOKEN_SQL, args![hash]).await?;
        Ok(row.map(Into::into))
    }

    /// The audit row after the commit, as for [`TokenStore::create_grant`].
    async fn rotate(&self, r: &Rotation<'_>, audit: Option<&AuditEvent>) -> StoreResult<bool> {
        let (family_id, now, access, refresh) = (r.family_id, r.now, r.access, r.refresh);
        let mut tx = self.sql.begin().await?;
        // Dropping the transaction unclaimed rolls it back.
        if tx.run(CLAIM_REFRESH, args![now, r.old]).await? != 1 {
            return Ok(false);
        }
        extend_family(&mut tx, family_id, family_expiry(access, Some(refresh))).await?;
        tx.run(NEXT_ACCESS_GENERATION, args![family_id]).await?;
        insert_tokens(&mut tx, family_id, access, Some(refresh)).await?;
        tx.commit().await?;
        write_audits(self, audit.map(std::slice::from_ref).unwrap_or(&[])).await;
        Ok(true)
    }

    async fn add_access(&self, add: &AddAccess<'_>) -> StoreResult<bool> {
        let (family_id, refresh, access) = (add.family_id, add.refresh, add.access);
        let mut tx = self.sql.begin().await?;
        let a = access;
        let args = args![
            a.hash.as_slice(),
            family_id,
            a.scope.to_scope_string(),
            a.created_at,
            a.expires_at,
            refresh
        ];
        if tx.run(ADD_ACCESS, args).await? != 1 {
            return Ok(false);
        }
        extend_family(&mut tx, family_id, Some(access.expires_at)).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn revoke_family(&self, family_id: FamilyId, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.sql.begin().await?;
        for sql in REVOKE_FAMILY {
            tx.run(sql, args![now, family_id]).await?;
        }
        tx.commit().await
    }

    async fn revoke_access_token(&self, hash: &[u8], now: Timestamp) -> StoreResult<bool> {
        Ok(self.sql.run(REVOKE_ACCESS, args![now, hash]).await? == 1)
    }

    async fn create_pat(&self, p: &NewPat) -> StoreResult<Pat> {
        let args = args![
            p.user_id,
            p.name.as_str(),
            p.hash.as_slice(),
            p.prefix.as_str(),
            p.scope.to_scope_string(),
            p.created_at,
            p.expires_at
        ];
        let (id,): (i64,) = self
            .sql
            .one_w(INSERT_PAT, args)
            .await?
            .ok_or_else(|| camgate_core::error::StoreError::Other("no PAT id".into()))?;
        Ok(new_pat(id, p))
    }

    async fn pat_by_hash(&self, hash: &[u8]) -> StoreResult<Option<(Pat, User)>> {
        let row: Option<PatUserRow> = self.sql.one(PAT_SQL, args![hash]).await?;
        Ok(row.map(Into::into))
    }

    async fn revoke_pat(&self, id: i64, user_id: UserId, now: Timestamp) -> StoreResult<bool> {
        Ok(self.sql.run(REVOKE_PAT, args![now, id, user_id]).await? == 1)
    }

    async fn touch_pat(&self, id: i64, now: Timestamp, min_interval: i64) -> StoreResult<()> {
        self.sql
            .run(TOUCH_PAT, args![now, id, now - min_interval])
            .await?;
        Ok(())
    }

    async fn claim_auth_code(&self, hash: &[u8], now: Timestamp) -> StoreResult<bool> {
        Ok(self.sql.run(CLAIM_CODE, args![now, hash]).await? == 1)
    }

    async fn attach_auth_code_family(&self, hash: &[u8], family_id: FamilyId) -> StoreResult<bool> {
        let replayed: Option<(Option<i64>,)> = self
            .sql
            .one_w(ATTACH_CODE_FAMILY, args![family_id, hash])
            .await?;
        Ok(matches!(replayed, Some((Some(_),))))
    }

    async fn mark_auth_code_replayed(
        &self,
        hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<Option<FamilyId>> {
        let family: Option<(Option<i64>,)> =
            self.sql.one_w(MARK_CODE_REPLAYED, args![now, hash]).await?;
        Ok(family.and_then(|(f,)| f))
    }

    async fn audit(&self, e: &AuditEvent) -> StoreResult<()> {
        let args = args![
            e.at,
            e.kind.as_str(),
            e.user_id,
            &e.client_id,
            &e.ip,
            e.detail.as_str()
        ];
        self.sql.run(INSERT_AUDIT, args).await?;
        Ok(())
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = self.sql.one(USER_BY_ID_SQL, args![id]).await?;
        Ok(row.map(Into::into))
    }

    async fn user_by_email(&self, email_norm: &str) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = self.sql.one(USER_BY_EMAIL_SQL, args![email_norm]).await?;
        Ok(row.map(Into::into))
    }

    async fn client_by_client_id(&self, client_id: &str) -> StoreResult<Option<Client>> {
        let row: Option<ClientRow> = self.sql.one(CLIENT_BY_ID_SQL, args![client_id]).await?;
        row.map(Client::try_from).transpose()
    }

    async fn throttle_failures(&self, key: &[u8], since: Timestamp) -> StoreResult<Option<Window>> {
        self.sql.one_w(THROTTLE_SQL, args![key, since]).await
    }

    async fn active_signing_kid(&self) -> StoreResult<Option<String>> {
        let kid: Option<(String,)> = self.sql.one(ACTIVE_KID_SQL, vec![]).await?;
        Ok(kid.map(|(k,)| k))
    }

    async fn jwt_subject(
        &self,
        client_id: &str,
        user_id: Option<UserId>,
        jti: &str,
    ) -> StoreResult<Option<JwtSubject>> {
        let args = args![jti, user_id, client_id];
        let row: Option<JwtSubjectRow> = self.sql.one(JWT_SUBJECT_SQL, args).await?;
        Ok(row.map(Into::into))
    }
}
