//! A backend: its token role (`T`, the hot path, in the backend's own plain code) beside its
//! pools (`Q`, where the cold roles run, shared by both backends in `crate::sql`).
//! [`crate::SqliteStore`] and [`crate::PgStore`] are two instances.

use async_trait::async_trait;

use camgate_core::clock::Timestamp;
use camgate_core::model::*;
use camgate_core::store::{Rotation, StoreResult, TokenStore};

pub struct Backend<T, Q> {
    pub(crate) tokens: T,
    pub(crate) sql: Q,
}

/// The token role is the backend's own: every call goes to `T`.
#[async_trait]
impl<T: TokenStore, Q: Send + Sync + 'static> TokenStore for Backend<T, Q> {
    async fn create_family_audited(
        &self,
        family: &NewFamily,
        access: &NewAccessToken,
        refresh: Option<&NewRefreshToken>,
        audits: &[AuditEvent],
    ) -> StoreResult<FamilyId> {
        self.tokens
            .create_family_audited(family, access, refresh, audits)
            .await
    }
    async fn access_token(&self, hash: &[u8]) -> StoreResult<Option<AccessTokenInfo>> {
        self.tokens.access_token(hash).await
    }
    async fn refresh_token(&self, hash: &[u8]) -> StoreResult<Option<RefreshTokenInfo>> {
        self.tokens.refresh_token(hash).await
    }
    async fn rotate(&self, r: &Rotation<'_>, audit: Option<&AuditEvent>) -> StoreResult<bool> {
        self.tokens.rotate(r, audit).await
    }
    async fn add_access_token(
        &self,
        family_id: FamilyId,
        refresh: &[u8],
        access: &NewAccessToken,
    ) -> StoreResult<bool> {
        self.tokens
            .add_access_token(family_id, refresh, access)
            .await
    }
    async fn revoke_family(&self, family_id: FamilyId, now: Timestamp) -> StoreResult<()> {
        self.tokens.revoke_family(family_id, now).await
    }
    async fn revoke_access_token(&self, hash: &[u8], now: Timestamp) -> StoreResult<bool> {
        self.tokens.revoke_access_token(hash, now).await
    }
    async fn create_pat(&self, p: &NewPat) -> StoreResult<Pat> {
        self.tokens.create_pat(p).await
    }
    async fn pat_by_hash(&self, hash: &[u8]) -> StoreResult<Option<(Pat, User)>> {
        self.tokens.pat_by_hash(hash).await
    }
    async fn revoke_pat(&self, id: i64, user_id: UserId, now: Timestamp) -> StoreResult<bool> {
        self.tokens.revoke_pat(id, user_id, now).await
    }
    async fn touch_pat(&self, id: i64, now: Timestamp, min_interval: i64) -> StoreResult<()> {
        self.tokens.touch_pat(id, now, min_interval).await
    }
    async fn claim_auth_code(&self, hash: &[u8], now: Timestamp) -> StoreResult<bool> {
        self.tokens.claim_auth_code(hash, now).await
    }
    async fn attach_auth_code_family(&self, hash: &[u8], family_id: FamilyId) -> StoreResult<bool> {
        self.tokens.attach_auth_code_family(hash, family_id).await
    }
    async fn mark_auth_code_replayed(
        &self,
        hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<Option<FamilyId>> {
        self.tokens.mark_auth_code_replayed(hash, now).await
    }
    async fn audit(&self, e: &AuditEvent) -> StoreResult<()> {
        self.tokens.audit(e).await
    }
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        self.tokens.user_by_id(id).await
    }
    async fn user_by_email(&self, email_norm: &str) -> StoreResult<Option<User>> {
        self.tokens.user_by_email(email_norm).await
    }
    async fn client_by_client_id(&self, client_id: &str) -> StoreResult<Option<Client>> {
        self.tokens.client_by_client_id(client_id).await
    }
    async fn throttle_failures(
        &self,
        key: &[u8],
        since: Timestamp,
    ) -> StoreResult<Option<(Timestamp, i64)>> {
        self.tokens.throttle_failures(key, since).await
    }
    async fn active_signing_kid(&self) -> StoreResult<Option<String>> {
        self.tokens.active_signing_kid().await
    }
}
