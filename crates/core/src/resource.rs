//! Resource-server authentication: who is calling, with what scopes (RFC 6750).

use crate::error::ApiError;
pub use crate::principal::{CredentialKind, Principal};
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
                let mut p = Principal {
                    camera: info.camera_id,
                    actor: info.actor_id,
                    user: info.user,
                    client: Some(info.client),
                    scopes: info.scope,
                    credential: CredentialKind::Access {
                        family_id: info.family_id,
                        hash,
                        expires_at: info.expires_at,
                        created_at: info.created_at,
                    },
                };
                self.check_actor(&mut p).await?;
                Ok(p)
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
                    camera: None,
                    actor: None,
                })
            }
        }
    }
}
