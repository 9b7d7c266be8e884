//! Resource-server authentication: who is calling, with what scopes (RFC 6750).

use crate::error::ApiError;
use crate::model::{ClientRef, User, UserId};
use crate::scope::{Need, ScopeSet};
use crate::secret;
use crate::Core;

/// The credential schemes accepted on every resource route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    PersonalAccessToken,
    Jwt,
}

impl Scheme {
    /// Scheme names are case-insensitive (RFC 9110 §11.1).
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("bearer") {
            Some(Self::Bearer)
        } else if s.eq_ignore_ascii_case("personalaccesstoken") {
            Some(Self::PersonalAccessToken)
        } else if s.eq_ignore_ascii_case("jwt") {
            Some(Self::Jwt)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CredentialKind {
    /// An OAuth access token, by family (for logout) and digest.
    Access {
        family_id: i64,
        hash: Vec<u8>,
        expires_at: i64,
        created_at: i64,
    },
    Pat {
        id: i64,
    },
    /// A JWT access token (RFC 9068), by `jti` (for logout through the denylist).
    Jwt {
        jti: String,
        expires_at: i64,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: Option<User>,
    pub client: Option<ClientRef>,
    pub scopes: ScopeSet,
    pub credential: CredentialKind,
}

impl Principal {
    pub fn require(&self, need: Need) -> Result<(), ApiError> {
        if self.scopes.allows(need) {
            Ok(())
        } else {
            Err(ApiError::InsufficientScope(need.name()))
        }
    }

    /// The user acting, for routes about "me" (a client-credentials token has none).
    pub fn user(&self) -> Result<&User, ApiError> {
        self.user
            .as_ref()
            .ok_or_else(|| ApiError::Forbidden("This route needs a token issued to a user.".into()))
    }

    /// Whose cameras this caller sees: the user, or for a client token the client's owner.
    pub fn owner_id(&self) -> Option<UserId> {
        self.user
            .as_ref()
            .map(|u| u.id)
            .or(self.client.as_ref().and_then(|c| c.owner_id))
    }
}

fn invalid_token() -> ApiError {
    ApiError::Unauthenticated("Invalid token.".into())
}

impl Core {
    /// Authenticates a presented credential. Unknown, expired, revoked, or belonging to a
    /// disabled user: `Unauthenticated` (RFC 6750 §3.1 `invalid_token`).
    pub async fn authenticate(&self, scheme: Scheme, token: &str) -> Result<Principal, ApiError> {
        if token.is_empty() || token.len() > 4096 {
            return Err(invalid_token());
        }
        let now = self.now();
        match scheme {
            Scheme::Bearer | Scheme::Jwt if crate::jwt::looks_like_jwt(token) => {
                self.authenticate_jwt(token).await
            }
            Scheme::Bearer | Scheme::Jwt => {
                let hash = secret::digest(token);
                let info = self
                    .store
                    .access_token(&hash)
                    .await?
                    .ok_or_else(invalid_token)?;
                if info.revoked || info.expires_at <= now {
                    return Err(invalid_token());
                }
                if matches!(&info.user, Some(u) if u.disabled) {
                    return Err(invalid_token());
                }
                Ok(Principal {
                    user: info.user,
                    client: Some(info.client),
                    scopes: info.scope,
                    credential: CredentialKind::Access {
                        family_id: info.family_id,
                        hash,
                        expires_at: info.expires_at,
                        created_at: info.created_at,
                    },
                })
            }
            Scheme::PersonalAccessToken => {
                let hash = secret::digest(token);
                let (pat, user) = self
                    .store
                    .pat_by_hash(&hash)
                    .await?
                    .ok_or_else(invalid_token)?;
                if pat.revoked_at.is_some()
                    || matches!(pat.expires_at, Some(e) if e <= now)
                    || user.disabled
                {
                    return Err(invalid_token());
                }
                if pat
                    .last_used_at
                    .is_none_or(|t| now - t >= self.settings.pat_touch_interval_secs)
                {
                    if let Err(e) = self
                        .store
                        .touch_pat(pat.id, now, self.settings.pat_touch_interval_secs)
                        .await
                    {
                        tracing::warn!(error = %e, "could not record personal access token use");
                    }
                }
                Ok(Principal {
                    user: Some(user),
                    client: None,
                    scopes: pat.scope,
                    credential: CredentialKind::Pat { id: pat.id },
                })
            }
        }
    }
}
