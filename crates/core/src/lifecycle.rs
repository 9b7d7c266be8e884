//! Token lifecycle: revocation (RFC 7009), introspection (RFC 7662) and logout (specs 003/004).

use crate::error::{ApiError, OAuthError};
pub use crate::model::Introspection;
use crate::model::{AuditKind, Client, ClientKind};
use crate::principal::{CredentialKind, Principal};
use crate::secret;
use crate::Core;

/// Which kind of token a `token_type_hint` names (RFC 7009 §2.1, RFC 7662 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHint {
    AccessToken,
    RefreshToken,
}

impl TokenHint {
    /// Unknown hints are ignored: RFC 7009 §2.1 lets the server search all token types, and
    /// a wrong hint must still find the token.
    pub fn parse(s: Option<&str>) -> Option<Self> {
        match s {
            Some("access_token") => Some(Self::AccessToken),
            Some("refresh_token") => Some(Self::RefreshToken),
            _ => None,
        }
    }
}

impl Core {
    /// RFC 7009 §2.1: revokes `token` if it belongs to `client`. Unknown tokens, tokens of
    /// another client and already-revoked tokens all answer the same (200, §2.2), and
    /// another client's token stays active. Revoking a refresh token revokes its family.
    pub async fn revoke(
        &self,
        client: &Client,
        token: &str,
        hint: Option<TokenHint>,
        ip: Option<&str>,
    ) -> Result<(), OAuthError> {
        if token.len() > 4096 {
            return Ok(());
        }
        if crate::jwt::looks_like_jwt(token) {
            return self.revoke_jwt(client, token, ip).await;
        }
        let hash = secret::digest(token);
        let now = self.now();
        let order = match hint {
            Some(TokenHint::RefreshToken) => [TokenHint::RefreshToken, TokenHint::AccessToken],
            _ => [TokenHint::AccessToken, TokenHint::RefreshToken],
        };
        for kind in order {
            match kind {
                TokenHint::AccessToken => {
                    if let Some(a) = self.store.access_token(&hash).await? {
                        if a.client.pk != client.pk {
                            return Ok(());
                        }
                        if self.store.revoke_access_token(&hash, now).await? {
                            self.audit(
                                AuditKind::TokenRevoked,
                                a.user.map(|u| u.id),
                                Some(&client.client_id),
                                ip,
                                "access token",
                            )
                            .await;
                        }
                        return Ok(());
                    }
                }
                TokenHint::RefreshToken => {
                    if let Some(r) = self.store.refresh_token(&hash).await? {
                        if r.client_pk != client.pk {
                            return Ok(());
                        }
                        if !r.revoked {
                            self.store.revoke_family(r.family_id, now).await?;
                            self.audit(
                                AuditKind::TokenRevoked,
                                r.user_id,
                                Some(&client.client_id),
                                ip,
                                format!("refresh token; family {}", r.family_id),
                            )
                            .await;
                        }
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// RFC 7662 §2.1: only an authenticated (confidential) client may introspect.
    pub fn may_introspect(client: &Client) -> Result<(), OAuthError> {
        if client.kind == ClientKind::Public {
            return Err(OAuthError::invalid_client(
                "Introspection requires client authentication; public clients cannot introspect.",
            ));
        }
        Ok(())
    }

    /// RFC 7662 §2.2: details of a live token, or `None` (answered `{"active": false}`) for
    /// anything unknown, expired or revoked.
    pub async fn introspect(
        &self,
        token: &str,
        hint: Option<TokenHint>,
    ) -> Result<Option<Introspection>, OAuthError> {
        if token.is_empty() || token.len() > 4096 {
            return Ok(None);
        }
        if crate::jwt::looks_like_jwt(token) {
            return self.introspect_jwt(token).await;
        }
        let hash = secret::digest(token);
        let now = self.now();
        let order = match hint {
            Some(TokenHint::RefreshToken) => [TokenHint::RefreshToken, TokenHint::AccessToken],
            _ => [TokenHint::AccessToken, TokenHint::RefreshToken],
        };
        for kind in order {
            match kind {
                TokenHint::AccessToken => {
                    if let Some(a) = self.store.access_token(&hash).await? {
                        let user_ok = a.user.as_ref().is_none_or(|u| !u.disabled);
                        if a.revoked || a.expires_at <= now || !user_ok {
                            return Ok(None);
                        }
                        // A dealer's token for a customer is live only while the dealer may
                        // still act, at the level the customer allows now.
                        let mut scope = a.scope;
                        if let (Some(actor), Some(u)) = (a.actor_id, a.user.as_ref()) {
                            match self.act_level(actor, u.id).await? {
                                Some(level) => scope = crate::dealers::cap_scope(scope, level),
                                None => return Ok(None),
                            }
                        }
                        return Ok(Some(Introspection {
                            act: a.actor_id.map(|d| d.to_string()),
                            scope,
                            client_id: a.client.client_id,
                            username: a.user.as_ref().map(|u| u.email.clone()),
                            sub: a.user.as_ref().map(|u| u.id.to_string()),
                            token_type: "access_token",
                            exp: Some(a.expires_at),
                            iat: a.created_at,
                        }));
                    }
                }
                TokenHint::RefreshToken => {
                    if let Some(r) = self.store.refresh_token(&hash).await? {
                        if r.revoked
                            || r.used_at.is_some()
                            || matches!(r.expires_at, Some(e) if e <= now)
                        {
                            return Ok(None);
                        }
                        let client = self.store.client_by_pk(r.client_pk).await?;
                        let user = match r.user_id {
                            Some(id) => self.store.user_by_id(id).await?,
                            None => None,
                        };
                        if matches!(&user, Some(u) if u.disabled) {
                            return Ok(None);
                        }
                        let Some(client) = client else {
                            return Ok(None);
                        };
                        return Ok(Some(Introspection {
                            act: None,
                            scope: r.scope,
                            client_id: client.client_id,
                            username: user.as_ref().map(|u| u.email.clone()),
                            sub: user.as_ref().map(|u| u.id.to_string()),
                            token_type: "refresh_token",
                            exp: r.expires_at,
                            iat: r.created_at,
                        }));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Logout (spec 003 §4: "delete the access_token and refresh_token"): revokes the family of
    /// the presented access token, or the presented personal access token.
    pub async fn logout(&self, p: &Principal, ip: Option<&str>) -> Result<(), ApiError> {
        let now = self.now();
        let user_id = p.user.as_ref().map(|u| u.id);
        match &p.credential {
            CredentialKind::Access { family_id, .. } => {
                self.store.revoke_family(*family_id, now).await?;
                self.audit(
                    AuditKind::TokenRevoked,
                    user_id,
                    p.client.as_ref().map(|c| c.client_id.as_str()),
                    ip,
                    format!("logout; family {family_id}"),
                )
                .await;
            }
            CredentialKind::Jwt { jti, expires_at } => {
                self.deny_principal_jwt(p, jti, *expires_at).await?;
                self.audit(
                    AuditKind::TokenRevoked,
                    user_id,
                    p.client.as_ref().map(|c| c.client_id.as_str()),
                    ip,
                    "logout; jwt denylisted",
                )
                .await;
            }
            CredentialKind::Pat { id } => {
                if let Some(uid) = user_id {
                    self.store.revoke_pat(*id, uid, now).await?;
                    self.audit(AuditKind::PatRevoked, user_id, None, ip, "logout")
                        .await;
                }
            }
            // A browser session ends at /logout, not through the API.
            CredentialKind::Session => {}
        }
        Ok(())
    }
}
