//! The token endpoint's logic: client authentication (RFC 6749 §2.3), the password grant
//! (§4.3), the authorization-code grant (§4.1.3, in `authorize.rs`) and the refresh grant (§6) with rotation, grace window and theft detection
//! (RFC 9700 §4.14.2).

use std::collections::BTreeMap;

use crate::error::{OAuthError, OAuthErrorCode};
use crate::model::*;
use crate::password::{HashError, HashTicket};
use crate::profile::{AccessKind, Profile, RefreshMode};
use crate::scope::ScopeSet;
use crate::secret;
use crate::Core;

/// Request parameters, each present at most once (RFC 6749 §3.1: "Request and response
/// parameters MUST NOT be included more than once"). Built by [`Params::from_pairs`].
#[derive(Debug, Default, Clone)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Collects pairs from every source of a request (query string and body); a name seen twice,
    /// in one source or across two, is `invalid_request`. Empty values count as absent
    /// (RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if they were omitted").
    pub fn from_pairs<I>(pairs: I) -> Result<Self, OAuthError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut m = BTreeMap::new();
        for (k, v) in pairs {
            if m.contains_key(&k) {
                let shown: String = k.chars().take(40).collect();
                return Err(OAuthError::invalid_request(format!(
                    "Parameter `{shown}` is included more than once."
                )));
            }
            m.insert(k, v);
        }
        m.retain(|_, v| !v.is_empty());
        Ok(Self(m))
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    pub fn require(&self, k: &str) -> Result<&str, OAuthError> {
        self.get(k)
            .ok_or_else(|| OAuthError::invalid_request(format!("Missing parameter `{k}`.")))
    }

    pub fn take(&mut self, k: &str) -> Option<String> {
        self.0.remove(k)
    }
}

/// How the client presented itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<String>,
    pub via_basic: bool,
}

impl ClientCredentials {
    /// Combines HTTP Basic credentials (already decoded) with `client_id` / `client_secret`
    /// body parameters. RFC 6749 §2.3: "The client MUST NOT use more than one authentication
    /// method in each request." A body `client_id` equal to the Basic one is tolerated (many
    /// libraries send it); a body secret next to Basic, or a different id, is not.
    pub fn resolve(
        basic: Option<(String, String)>,
        body_id: Option<String>,
        body_secret: Option<String>,
    ) -> Result<Option<Self>, OAuthError> {
        match (basic, body_id, body_secret) {
            (Some(_), _, Some(_)) => Err(OAuthError::invalid_request(
                "Use one client authentication method: HTTP Basic or body parameters, not both.",
            )),
            (Some((id, _)), Some(body), None) if body != id => Err(OAuthError::invalid_request(
                "client_id in the body differs from the HTTP Basic client id.",
            )),
            (Some((id, secret)), _, None) => Ok(Some(Self {
                client_id: id,
                secret: if secret.is_empty() {
                    None
                } else {
                    Some(secret)
                },
                via_basic: true,
            })),
            (None, Some(id), secret) => Ok(Some(Self {
                client_id: id,
                secret,
                via_basic: false,
            })),
            (None, None, Some(_)) => Err(OAuthError::invalid_request(
                "client_secret given without client_id.",
            )),
            (None, None, None) => Ok(None),
        }
    }
}

/// A successful token answer (RFC 6749 §5.1). The surface renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub refresh_token: Option<String>,
    pub scope: String,
    /// OpenID Connect: with the tokens of a grant that has the `openid` scope.
    pub id_token: Option<String>,
    /// Token exchange (RFC 8693 §2.2.1): the type of the issued token.
    pub issued_token_type: Option<&'static str>,
}

/// Context of the caller, for audit and throttling (never a secret).
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub ip: Option<String>,
}

fn hash_busy(e: HashError) -> OAuthError {
    match e {
        HashError::Busy => OAuthError::unavailable(1),
        HashError::Failed => OAuthError::server_error(),
    }
}

impl Core {
    /// Authenticates a client (RFC 6749 §2.3). Unknown client, wrong secret, a confidential
    /// client without secret, or a public client with one: `invalid_client` (answered 401).
    pub async fn authenticate_client(
        &self,
        creds: &ClientCredentials,
    ) -> Result<Client, OAuthError> {
        let fail = || OAuthError::invalid_client("Client authentication failed.");
        // A NUL cannot be in any client id (PostgreSQL text cannot even compare one).
        if creds.client_id.len() > 256 || creds.client_id.contains('\0') {
            return Err(fail());
        }
        let client = self
            .store
            .client_by_client_id(&creds.client_id)
            .await?
            .ok_or_else(fail)?;
        match (&client.secret, &creds.secret) {
            (SecretHash::None, None) if client.kind == ClientKind::Public => Ok(client),
            (SecretHash::Sha256(stored), Some(given)) => {
                // High-entropy generated secret: a digest compared in constant time. After a
                // rotation the previous secret may still be valid for a while (the dashboard's secret rotation with overlap).
                if secret::ct_eq(stored, &secret::digest(given))
                    || self.previous_secret_matches(&client, given).await?
                {
                    Ok(client)
                } else {
                    Err(fail())
                }
            }
            (SecretHash::Argon2(phc), Some(given)) => {
                let ok = self
                    .hasher
                    .verify(Some(phc.clone()), given.clone())
                    .await
                    .map_err(hash_busy)?;
                if ok || self.previous_secret_matches(&client, given).await? {
                    Ok(client)
                } else {
                    Err(fail())
                }
            }
            _ => Err(fail()),
        }
    }

    pub(crate) fn profile_of(&self, client: &Client) -> Result<&Profile, OAuthError> {
        self.profiles.get(&client.profile).ok_or_else(|| {
            tracing::error!(profile = %client.profile, client = %client.client_id, "client has an unknown profile");
            OAuthError::server_error()
        })
    }

    /// The token endpoint (RFC 6749 §3.2): dispatches on `grant_type`.
    pub async fn token(
        &self,
        params: Params,
        creds: Option<ClientCredentials>,
        caller: &Caller,
    ) -> Result<TokenResponse, OAuthError> {
        let grant = params.require("grant_type")?.to_string();
        let grant_type = match GrantType::parse(&grant) {
            Some(GrantType::Password) => GrantType::Password,
            Some(GrantType::RefreshToken) => GrantType::RefreshToken,
            Some(GrantType::AuthorizationCode) => GrantType::AuthorizationCode,
            Some(GrantType::ClientCredentials) => GrantType::ClientCredentials,
            Some(GrantType::DeviceCode) if grant != "device_code" => GrantType::DeviceCode,
            Some(GrantType::TokenExchange) if grant != "token_exchange" => GrantType::TokenExchange,
            _ => {
                let shown: String = grant.chars().take(40).collect();
                return Err(OAuthError::new(
                    OAuthErrorCode::UnsupportedGrantType,
                    format!("Grant type `{shown}` is not supported."),
                ));
            }
        };
        // Load shedding: a password grant takes its place in the hashing queue first, so one
        // that could not be hashed anyway is refused before any database work and a login
        // storm costs the other routes as little as possible. Reserving (rather than checking
        // for room, then queueing after the lookups) matters under a storm: each time a place
        // freed up, every grant that saw the room did the client and user lookups and was then
        // refused anyway — ~7% of the refusals, and all of their slow tail.
        let ticket = match grant_type {
            GrantType::Password => Some(self.hasher.reserve().map_err(hash_busy)?),
            _ => None,
        };
        let creds = creds.ok_or_else(|| {
            OAuthError::invalid_client("Client authentication is required (client_id).")
        })?;
        let client = self.authenticate_client(&creds).await?;
        if !client.allows_grant(grant_type) {
            return Err(OAuthError::unauthorized_client(format!(
                "This client may not use the {} grant.",
                grant_type.as_str()
            )));
        }
        match grant_type {
            GrantType::Password => {
                let ticket = match ticket {
                    Some(t) => t,
                    None => self.hasher.reserve().map_err(hash_busy)?,
                };
                self.password_grant(&client, &params, caller, ticket).await
            }
            GrantType::AuthorizationCode => {
                self.authorization_code_grant(&client, &params, caller)
                    .await
            }
            GrantType::ClientCredentials => {
                self.client_credentials(&client, params.get("scope"), caller)
                    .await
            }
            GrantType::DeviceCode => self.device_code_grant(&client, &params, caller).await,
            GrantType::TokenExchange => self.token_exchange(&client, &params, caller).await,
            _ => self.refresh_grant(&client, &params, caller).await,
        }
    }

    /// The scope to grant: the requested one (which must lie within the client's allowed
    /// scopes, RFC 6749 §3.3) or the client's default.
    pub(crate) fn grant_scope(
        &self,
        client: &Client,
        requested: Option<&str>,
    ) -> Result<ScopeSet, OAuthError> {
        // The identity scopes (OIDC) belong to the authorization-code flow: no other grant
        // yields them, whatever the client's registration says.
        match requested {
            None => Ok(client.scopes.resource()),
            Some(s) => {
                let set = ScopeSet::parse_requested(s)?;
                if set.has_identity() {
                    return Err(OAuthError::invalid_scope(
                        "openid, profile, email and phone are granted only through the \
                         authorization code flow.",
                    ));
                }
                if client.scopes.covers(&set) {
                    Ok(set)
                } else {
                    Err(OAuthError::invalid_scope(
                        "The requested scope exceeds what this client may be granted.",
                    ))
                }
            }
        }
    }

    /// RFC 6749 §4.3: resource owner password credentials.
    async fn password_grant(
        &self,
        client: &Client,
        params: &Params,
        caller: &Caller,
        ticket: HashTicket,
    ) -> Result<TokenResponse, OAuthError> {
        let username = params.require("username")?;
        let password = params.require("password")?;
        let scope = self.grant_scope(client, params.get("scope"))?;
        if username.len() > 254 || password.len() > 1024 {
            return Err(OAuthError::invalid_grant("Invalid credentials given."));
        }
        // Brute-force protection (ASVS 2.2.1), shared with the login page.
        if let Some(wait) = self.login_throttled(username, caller.ip.as_deref()).await? {
            return Err(crate::throttle::too_many_attempts(wait));
        }
        // No account can have a NUL in its email: such a name is an unknown user (and still
        // costs a hash below, like any unknown user).
        let user = if username.contains('\0') {
            None
        } else {
            self.store.user_by_email(&normalize_email(username)).await?
        };
        let ok = self
            .hasher
            .verify_reserved(
                ticket,
                user.as_ref().map(|u| u.password_hash.clone()),
                password.to_string(),
            )
            .await
            .map_err(hash_busy)?;
        let user = match user {
            Some(u) if ok && !u.disabled => u,
            other => {
                self.login_failed(username, caller.ip.as_deref()).await;
                self.audit(
                    AuditKind::LoginFailed,
                    other.map(|u| u.id),
                    Some(&client.client_id),
                    caller.ip.as_deref(),
                    "password grant",
                )
                .await;
                // The same answer for an unknown user and a wrong password.
                return Err(OAuthError::invalid_grant("Invalid credentials given."));
            }
        };
        // A password alone does not sign in a user who has a second factor: the password grant
        // cannot ask for it. Only a client registered for legacy devices may (audited).
        if self.has_second_factor(user.id).await? {
            if !client.allow_password_without_mfa {
                return Err(OAuthError::invalid_grant(
                    "This account uses two-factor sign-in, which the password grant cannot ask \
                     for. Sign in through the browser with the authorization code flow \
                     (/oauth/authorize).",
                ));
            }
            self.audit(
                AuditKind::PasswordWithoutMfa,
                Some(user.id),
                Some(&client.client_id),
                caller.ip.as_deref(),
                "password grant without the second factor (client exception)",
            )
            .await;
        }
        // The login's audit row is written in the token family's transaction.
        let login = self.audit_event(
            AuditKind::LoginOk,
            Some(user.id),
            Some(&client.client_id),
            caller.ip.as_deref(),
            "password grant",
        );
        self.issue_family_with(
            client,
            Some(user.id),
            GrantType::Password,
            scope,
            caller,
            Some(login),
            None,
        )
        .await
    }

    /// Starts a token family: one access token and, if the client may refresh, a refresh token.
    pub async fn issue_new_family(
        &self,
        client: &Client,
        user_id: Option<UserId>,
        grant: GrantType,
        scope: ScopeSet,
        caller: &Caller,
    ) -> Result<TokenResponse, OAuthError> {
        self.issue_family_with(client, user_id, grant, scope, caller, None, None)
            .await
    }

    /// [`Core::issue_new_family`] for a sign-in that yields id_tokens (`authn`).
    pub(crate) async fn issue_family_authn(
        &self,
        client: &Client,
        user_id: Option<UserId>,
        grant: GrantType,
        scope: ScopeSet,
        caller: &Caller,
        authn: Option<Authn>,
    ) -> Result<TokenResponse, OAuthError> {
        self.issue_family_with(client, user_id, grant, scope, caller, None, authn)
            .await
    }

    /// [`Core::issue_new_family`], writing `before` (an earlier audit event of the same grant)
    /// in the family's transaction.
    #[allow(clippy::too_many_arguments)]
    async fn issue_family_with(
        &self,
        client: &Client,
        user_id: Option<UserId>,
        grant: GrantType,
        scope: ScopeSet,
        caller: &Caller,
        before: Option<AuditEvent>,
        authn: Option<Authn>,
    ) -> Result<TokenResponse, OAuthError> {
        let profile = self.profile_of(client)?;
        if profile.access == AccessKind::Jwt {
            if let Some(e) = before {
                crate::store::write_audits(&*self.store, &[e]).await;
            }
            return self
                .issue_jwt(client, user_id, grant, scope, caller, &profile.clone())
                .await;
        }
        let now = self.now();
        let access = secret::generate(profile.access_format());
        let refresh = (client.allows_grant(GrantType::RefreshToken)
            && grant != GrantType::ClientCredentials)
            .then(|| secret::generate(profile.refresh_format()));
        let new_access = NewAccessToken {
            hash: secret::digest(&access),
            scope,
            created_at: now,
            expires_at: now + profile.access_ttl_secs,
        };
        let new_refresh = refresh.as_ref().map(|r| NewRefreshToken {
            hash: secret::digest(r),
            scope,
            created_at: now,
            expires_at: profile.refresh_ttl_secs.map(|t| now + t),
        });
        let family = NewFamily {
            user_id,
            client_pk: client.pk,
            grant_type: grant,
            created_at: now,
            authn,
            actor_id: None,
        };
        let issued = self.audit_event(
            AuditKind::TokenIssued,
            user_id,
            Some(&client.client_id),
            caller.ip.as_deref(),
            grant.as_str(),
        );
        let audits = match before {
            Some(b) => vec![b, issued],
            None => vec![issued],
        };
        // One transaction for the family, its tokens and the audit rows.
        self.store
            .create_family_audited(&family, &new_access, new_refresh.as_ref(), &audits)
            .await?;
        crate::metrics::token_issued(grant.as_str(), &client.profile);
        Ok(TokenResponse {
            access_token: access,
            token_type: profile.token_type.clone(),
            expires_in: profile.access_ttl_secs,
            refresh_token: refresh,
            scope: scope.to_scope_string(),
            id_token: None,
            issued_token_type: None,
        })
    }

    /// RFC 6749 §6: refreshing an access token.
    async fn refresh_grant(
        &self,
        client: &Client,
        params: &Params,
        caller: &Caller,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = params.require("refresh_token")?;
        let invalid =
            || OAuthError::invalid_grant("The refresh token is invalid, expired or revoked.");
        if presented.len() > 512 {
            return Err(invalid());
        }
        let hash = secret::digest(presented);
        let rt = self.store.refresh_token(&hash).await?.ok_or_else(invalid)?;
        // §6: "validate the refresh token was issued to the authenticated client". Another
        // client's refresh token is indistinguishable from an unknown one.
        if rt.client_pk != client.pk || rt.revoked {
            return Err(invalid());
        }
        let now = self.now();
        if matches!(rt.expires_at, Some(e) if e <= now) {
            return Err(invalid());
        }
        // A disabled (or vanished) account gets no new tokens; the refresh token is left
        // unconsumed, so it works again if the account is re-enabled.
        if !rt.user_active {
            return Err(invalid());
        }
        // §6: the new scope must not include anything not originally granted.
        let scope = match params.get("scope") {
            None => rt.scope,
            Some(s) => {
                let req = ScopeSet::parse_requested(s)?;
                if !rt.scope.covers(&req) {
                    return Err(OAuthError::invalid_scope(
                        "The requested scope exceeds the scope originally granted.",
                    ));
                }
                req
            }
        };
        let profile = self.profile_of(client)?.clone();
        let mut resp = self
            .refresh_with(
                client,
                &profile,
                presented,
                &hash,
                rt.clone(),
                scope,
                caller,
            )
            .await?;
        // OIDC Core §12.2: a refresh of a grant with openid returns a new id_token (same sub,
        // auth_time and amr; no nonce).
        if let (Some(authn), Some(uid), true) = (&rt.authn, rt.user_id, scope.openid) {
            resp.id_token = Some(
                self.sign_id_token(client, uid, authn, None, &resp.access_token)
                    .await?,
            );
        }
        Ok(resp)
    }

    #[allow(clippy::too_many_arguments)]
    async fn refresh_with(
        &self,
        client: &Client,
        profile: &Profile,
        presented: &str,
        hash: &[u8],
        rt: RefreshTokenInfo,
        scope: ScopeSet,
        caller: &Caller,
    ) -> Result<TokenResponse, OAuthError> {
        let invalid =
            || OAuthError::invalid_grant("The refresh token is invalid, expired or revoked.");
        let now = self.now();
        match profile.refresh {
            RefreshMode::Reuse => {
                let access = secret::generate(profile.access_format());
                let na = NewAccessToken {
                    hash: secret::digest(&access),
                    scope,
                    created_at: now,
                    expires_at: now + profile.access_ttl_secs,
                };
                if !self.store.add_access_token(rt.family_id, hash, &na).await? {
                    return Err(invalid());
                }
                self.audit(
                    AuditKind::TokenRefreshed,
                    rt.user_id,
                    Some(&client.client_id),
                    caller.ip.as_deref(),
                    "reuse",
                )
                .await;
                crate::metrics::token_issued("refresh_token", &client.profile);
                Ok(TokenResponse {
                    access_token: access,
                    token_type: profile.token_type.clone(),
                    expires_in: profile.access_ttl_secs,
                    refresh_token: Some(presented.to_string()),
                    scope: scope.to_scope_string(),
                    id_token: None,
                    issued_token_type: None,
                })
            }
            RefreshMode::Rotate | RefreshMode::Resign => {
                self.rotate(client, profile, presented, hash, rt, scope, caller)
                    .await
            }
        }
    }

    /// Rotation with a grace window (DESIGN.md §4). The successor pair is derived from the
    /// presented token under the server key, so a retry — on this node or another — can be
    /// answered with the same pair without storing any plaintext.
    #[allow(clippy::too_many_arguments)]
    async fn rotate(
        &self,
        client: &Client,
        profile: &Profile,
        presented: &str,
        hash: &[u8],
        rt: RefreshTokenInfo,
        scope: ScopeSet,
        caller: &Caller,
    ) -> Result<TokenResponse, OAuthError> {
        let invalid =
            || OAuthError::invalid_grant("The refresh token is invalid, expired or revoked.");
        let now = self.now();
        let access = secret::derive(
            &self.rotation_key,
            "access",
            presented,
            profile.access_format(),
        );
        let refresh = secret::derive(
            &self.rotation_key,
            "refresh",
            presented,
            profile.refresh_format(),
        );
        let respond = |expires_in: i64, scope: ScopeSet| TokenResponse {
            access_token: access.clone(),
            token_type: profile.token_type.clone(),
            expires_in,
            refresh_token: Some(refresh.clone()),
            scope: scope.to_scope_string(),
            id_token: None,
            issued_token_type: None,
        };
        let mut used_at = rt.used_at;
        if used_at.is_none() {
            let na = NewAccessToken {
                hash: secret::digest(&access),
                scope,
                created_at: now,
                expires_at: now + profile.access_ttl_secs,
            };
            let nr = NewRefreshToken {
                hash: secret::digest(&refresh),
                scope: rt.scope,
                created_at: now,
                expires_at: profile.refresh_ttl_secs.map(|t| now + t),
            };
            // The claim, the successor pair and the audit row: one transaction.
            let event = AuditEvent {
                at: now,
                kind: AuditKind::TokenRefreshed,
                user_id: rt.user_id,
                client_id: Some(client.client_id.clone()),
                ip: caller.ip.clone(),
                detail: "rotate".to_string(),
            };
            if self
                .store
                .rotate_refresh_audited(rt.family_id, hash, now, &na, &nr, &event)
                .await?
            {
                crate::metrics::audit_event(AuditKind::TokenRefreshed);
                crate::metrics::token_issued("refresh_token", &client.profile);
                return Ok(respond(profile.access_ttl_secs, scope));
            }
            // Lost the race: someone claimed it a moment ago. Re-read and treat as a replay.
            let again = self.store.refresh_token(hash).await?.ok_or_else(invalid)?;
            if again.revoked {
                return Err(invalid());
            }
            used_at = again.used_at.or(Some(now));
        }
        let used_at = used_at.unwrap_or(now);
        let grace = self.settings.refresh_grace_secs;
        if grace > 0 && now - used_at < grace {
            // Inside the grace window: answer with the same successor pair, if it is still live.
            let succ_refresh = self.store.refresh_token(&secret::digest(&refresh)).await?;
            let succ_access = self.store.access_token(&secret::digest(&access)).await?;
            if let (Some(r), Some(a)) = (succ_refresh, succ_access) {
                if !r.revoked && r.used_at.is_none() && !a.revoked && a.expires_at > now {
                    return Ok(respond(a.expires_at - now, a.scope));
                }
            }
            return Err(invalid());
        }
        // Outside the window: a used refresh token came back. Either the client or an attacker
        // holds a stolen copy; revoke the whole family (RFC 9700 §4.14.2).
        self.store.revoke_family(rt.family_id, now).await?;
        self.audit(
            AuditKind::TheftDetected,
            rt.user_id,
            Some(&client.client_id),
            caller.ip.as_deref(),
            format!("refresh token reused; family {} revoked", rt.family_id),
        )
        .await;
        tracing::warn!(family = rt.family_id, client = %client.client_id, "refresh token reuse: family revoked");
        Err(invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn duplicate_parameters_are_rejected() {
        let e = Params::from_pairs(pairs(&[("a", "1"), ("a", "2")])).unwrap_err();
        assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
        let p = Params::from_pairs(pairs(&[("a", ""), ("b", "x")])).unwrap();
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("x"));
    }

    #[test]
    fn client_credentials_resolution() {
        let basic = Some(("id".to_string(), "sec".to_string()));
        assert!(ClientCredentials::resolve(basic.clone(), None, Some("s".into())).is_err());
        assert!(ClientCredentials::resolve(basic.clone(), Some("other".into()), None).is_err());
        let c = ClientCredentials::resolve(basic, Some("id".into()), None)
            .unwrap()
            .unwrap();
        assert!(c.via_basic);
        assert_eq!(c.secret.as_deref(), Some("sec"));
        let c = ClientCredentials::resolve(None, Some("pub".into()), None)
            .unwrap()
            .unwrap();
        assert_eq!(c.secret, None);
        assert!(ClientCredentials::resolve(None, None, None)
            .unwrap()
            .is_none());
    }
}
