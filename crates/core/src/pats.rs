//! Personal access tokens (spec 000: "No expiration, but can be revoked manually"), sent as
//! `Authorization: PersonalAccessToken <token>`.

use crate::error::ApiError;
use crate::model::{AuditKind, NewPat, Pat, UserId};
use crate::scope::ScopeSet;
use crate::secret::{self, TokenFormat};
use crate::Core;

pub const PAT_PREFIX: &str = "cgpat_";

impl Core {
    /// Creates a PAT; returns it with the token, which is shown once.
    pub async fn create_pat(
        &self,
        user_id: UserId,
        name: &str,
        scope: ScopeSet,
        expires_in_days: Option<i64>,
    ) -> Result<(Pat, String), ApiError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiError::invalid(
                "name",
                "The name must be 1-100 characters.",
            ));
        }
        if scope.is_empty() {
            return Err(ApiError::invalid("scope", "Choose at least one scope."));
        }
        if matches!(expires_in_days, Some(d) if !(1..=3650).contains(&d)) {
            return Err(ApiError::invalid(
                "expires_in_days",
                "Expiry must be 1-3650 days.",
            ));
        }
        let token = secret::generate(TokenFormat::Prefixed(PAT_PREFIX));
        let now = self.now();
        let pat = self
            .store
            .create_pat(&NewPat {
                user_id,
                name: name.to_string(),
                hash: secret::digest(&token),
                prefix: token.chars().take(PAT_PREFIX.len() + 4).collect(),
                scope,
                created_at: now,
                expires_at: expires_in_days.map(|d| now + d * 86_400),
            })
            .await?;
        self.audit(
            AuditKind::PatCreated,
            Some(user_id),
            None,
            None,
            name.to_string(),
        )
        .await;
        Ok((pat, token))
    }
}
