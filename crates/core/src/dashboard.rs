//! The developer dashboard's use-cases: a user's own OAuth applications (create,
//! edit, rotate the secret with an optional overlap, delete), personal access tokens (list,
//! revoke; creation is [`Core::create_pat`]), the third-party applications the user authorized
//! (list, revoke), the account (password change, sign out everywhere) and, for administrators,
//! user management. The server crate renders pages; this module decides.
//!
//! Ownership is checked on every object: a client is found by its public id and then compared
//! with the acting user, and every change repeats the owner in its `WHERE` clause, so another
//! user's object is "not found", never "forbidden" (OWASP ASVS 4.0.3 V4.2.1, insecure direct
//! object references). Cameras go through the same [`Core`] functions as the API.

use crate::clients::{validate_redirect_uri, ClientInput, RegisteredClient};
use crate::clock::Timestamp;
use crate::error::{ApiError, OAuthError};
use crate::model::{
    AuditKind, Client, ClientKind, GrantType, OidcClient, Pat, SecretHash, User, UserId,
};
use crate::oauth::Caller;
use crate::password::HashError;
use crate::scope::ScopeSet;
use crate::sessions::BrowserSession;
pub use crate::store::records::{AuthorizedApp, ClientUpdate};
use crate::throttle::human_wait;
use crate::users::UserInput;
use crate::{secret, Core};

/// Most redirect URIs one application may register.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Shortest password the dashboard accepts when one is set (OWASP ASVS 4.0.3 V2.1.1: "at least
/// 12 characters"). Longer limits come from [`crate::users::validate_password`].
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Users per page on the admin list.
pub const USERS_PAGE: i64 = 50;

/// What a developer fills in to create an application.
#[derive(Debug, Clone)]
pub struct AppInput {
    pub name: String,
    pub kind: ClientKind,
    /// As typed; blank entries are ignored and duplicates dropped.
    pub redirect_uris: Vec<String>,
    pub grants: Vec<GrantType>,
    pub scopes: ScopeSet,
    pub profile: String,
    pub oidc: OidcClient,
}

/// An application as its owner sees it.
#[derive(Debug, Clone)]
pub struct AppView {
    pub client: Client,
    /// Until when the previous secret is still accepted, if a rotation kept it.
    pub previous_secret_until: Option<Timestamp>,
}

fn hash_error(e: HashError) -> ApiError {
    match e {
        HashError::Busy => ApiError::Unavailable { retry_after: 1 },
        HashError::Failed => ApiError::Internal,
    }
}

/// Checks a password chosen on the dashboard.
pub fn validate_new_password(field: &str, pw: &str) -> Result<(), ApiError> {
    if pw.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid(
            field,
            format!("Use at least {MIN_PASSWORD_CHARS} characters."),
        ));
    }
    crate::users::validate_password(pw).map_err(|e| match e {
        ApiError::Invalid { message, .. } => ApiError::invalid(field, message),
        other => other,
    })
}

impl Core {
    /// The settings shared by creating and editing an application; the redirect URIs follow
    /// the same rules as at the authorization endpoint ([`validate_redirect_uri`]: RFC 6749
    /// §3.1.2, RFC 9700 §4.1.1 / §2.1). Returns the trimmed name and the cleaned URI list.
    fn check_app(
        &self,
        name: &str,
        kind: ClientKind,
        redirect_uris: &[String],
        grants: &[GrantType],
        scopes: ScopeSet,
        profile: &str,
    ) -> Result<(String, Vec<String>), ApiError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 255 {
            return Err(ApiError::invalid(
                "name",
                "Give the application a name (1-255 characters).",
            ));
        }
        let mut uris: Vec<String> = Vec::new();
        for u in redirect_uris
            .iter()
            .map(|u| u.trim())
            .filter(|u| !u.is_empty())
        {
            if !uris.iter().any(|x| x == u) {
                uris.push(u.to_string());
            }
        }
        if uris.len() > MAX_REDIRECT_URIS {
            return Err(ApiError::invalid(
                "redirect_uris",
                format!("At most {MAX_REDIRECT_URIS} redirect URIs."),
            ));
        }
        for u in &uris {
            validate_redirect_uri(u).map_err(|m| {
                let mut m = m;
                if let Some(first) = m.get(..1) {
                    m = first.to_uppercase() + &m[1..];
                }
                ApiError::invalid("redirect_uris", format!("{m}."))
            })?;
        }
        if grants.is_empty() {
            return Err(ApiError::invalid("grants", "Choose at least one grant."));
        }
        if kind == ClientKind::Public && grants.contains(&GrantType::ClientCredentials) {
            return Err(ApiError::invalid(
                "grants",
                "A public client cannot use client_credentials: it has no secret to \
                 authenticate with (RFC 6749 §4.4).",
            ));
        }
        if grants.contains(&GrantType::AuthorizationCode) && uris.is_empty() {
            return Err(ApiError::invalid(
                "redirect_uris",
                "The authorization code grant needs at least one redirect URI.",
            ));
        }
        if scopes.is_empty() {
            return Err(ApiError::invalid("scopes", "Choose at least one scope."));
        }
        if !self.profiles.contains(profile) {
            return Err(ApiError::invalid("profile", "Choose one of the profiles."));
        }
        Ok((name.to_string(), uris))
    }

    /// Registers an application owned by `owner`. A confidential one gets a secret, returned
    /// here once and stored only as a digest (DESIGN.md §3).
    pub async fn create_app(
        &self,
        owner: &User,
        input: AppInput,
    ) -> Result<RegisteredClient, ApiError> {
        let (name, uris) = self.check_app(
            &input.name,
            input.kind,
            &input.redirect_uris,
            &input.grants,
            input.scopes,
            &input.profile,
        )?;
        let mut grants = Vec::new();
        for g in GrantType::ALL {
            if input.grants.contains(&g) {
                grants.push(g);
            }
        }
        self.register_client(ClientInput {
            name,
            owner_id: Some(owner.id),
            kind: input.kind,
            redirect_uris: uris,
            grants,
            scopes: Some(input.scopes),
            profile: Some(input.profile),
            client_id: None,
            client_secret: None,
            oidc: input.oidc,
            allow_password_without_mfa: false,
        })
        .await
    }

    /// The applications `owner` registered.
    pub async fn my_apps(&self, owner: UserId) -> Result<Vec<Client>, ApiError> {
        Ok(self.store.clients_by_owner(owner).await?)
    }

    /// One application of `owner`, by client id; another user's is `NotFound`.
    pub async fn my_app(&self, owner: UserId, client_id: &str) -> Result<AppView, ApiError> {
        if client_id.is_empty() || client_id.len() > 256 {
            return Err(ApiError::NotFound);
        }
        let client = match self.store.client_by_client_id(client_id).await? {
            Some(c) if c.owner_id == Some(owner) => c,
            _ => return Err(ApiError::NotFound),
        };
        let previous_secret_until = match self.store.client_previous_secret(client.pk).await? {
            Some((_, until)) if until > self.now() => Some(until),
            _ => None,
        };
        Ok(AppView {
            client,
            previous_secret_until,
        })
    }

    /// Changes an application's settings (same rules as at creation).
    pub async fn update_app(
        &self,
        owner: UserId,
        client_id: &str,
        u: ClientUpdate,
    ) -> Result<Client, ApiError> {
        let app = self.my_app(owner, client_id).await?;
        let (name, uris) = self.check_app(
            &u.name,
            app.client.kind,
            &u.redirect_uris,
            &u.grants,
            u.scopes,
            &u.profile,
        )?;
        let grants: Vec<GrantType> = GrantType::ALL
            .into_iter()
            .filter(|g| u.grants.contains(g))
            .collect();
        crate::clients::validate_oidc(&u.oidc, &uris)?;
        let update = ClientUpdate {
            name,
            redirect_uris: uris,
            grants,
            scopes: u.scopes,
            profile: u.profile,
            oidc: u.oidc,
        };
        if !self
            .store
            .update_client(app.client.pk, owner, &update)
            .await?
        {
            return Err(ApiError::NotFound);
        }
        self.audit(
            AuditKind::ClientUpdated,
            Some(owner),
            Some(client_id),
            None,
            "",
        )
        .await;
        self.my_app(owner, client_id).await.map(|a| a.client)
    }

    /// Gives a confidential application a new secret (returned once). The old one keeps
    /// working for `client_secret_overlap_secs` (default 0: it stops at once), so a deployment
    /// can switch without downtime.
    pub async fn rotate_app_secret(
        &self,
        owner: UserId,
        client_id: &str,
    ) -> Result<String, ApiError> {
        let app = self.my_app(owner, client_id).await?;
        if app.client.kind != ClientKind::Confidential {
            return Err(ApiError::invalid(
                "kind",
                "A public client has no secret to rotate.",
            ));
        }
        let new = secret::generate_client_secret();
        let overlap = self.settings.client_secret_overlap_secs;
        let until = (overlap > 0).then(|| self.now() + overlap);
        if !self
            .store
            .rotate_client_secret(app.client.pk, owner, &secret::digest(&new), until)
            .await?
        {
            return Err(ApiError::NotFound);
        }
        self.audit(
            AuditKind::ClientSecretRotated,
            Some(owner),
            Some(client_id),
            None,
            match until {
                Some(_) => format!("previous secret valid for {overlap} s"),
                None => "previous secret revoked".to_string(),
            },
        )
        .await;
        Ok(new)
    }

    /// Deletes an application; every token it holds dies with it.
    pub async fn delete_app(&self, owner: UserId, client_id: &str) -> Result<(), ApiError> {
        let app = self.my_app(owner, client_id).await?;
        if !self.store.delete_client(app.client.pk, owner).await? {
            return Err(ApiError::NotFound);
        }
        self.audit(
            AuditKind::ClientDeleted,
            Some(owner),
            Some(client_id),
            None,
            "",
        )
        .await;
        Ok(())
    }

    /// Whether `given` is the client's previous secret, still inside its overlap window
    /// (called by client authentication after the current secret did not match).
    pub(crate) async fn previous_secret_matches(
        &self,
        client: &Client,
        given: &str,
    ) -> Result<bool, OAuthError> {
        if client.kind != ClientKind::Confidential {
            return Ok(false);
        }
        let Some((hash, until)) = self.store.client_previous_secret(client.pk).await? else {
            return Ok(false);
        };
        if until <= self.now() {
            return Ok(false);
        }
        match hash {
            SecretHash::Sha256(stored) => Ok(secret::ct_eq(&stored, &secret::digest(given))),
            SecretHash::Argon2(phc) => self
                .hasher
                .verify(Some(phc), given.to_string())
                .await
                .map_err(|e| match e {
                    HashError::Busy => OAuthError::unavailable(1),
                    HashError::Failed => OAuthError::server_error(),
                }),
            SecretHash::None => Ok(false),
        }
    }

    // ---- personal access tokens

    /// The user's personal access tokens that are not revoked, newest first.
    pub async fn my_pats(&self, user_id: UserId) -> Result<Vec<Pat>, ApiError> {
        Ok(self.store.pats_by_user(user_id).await?)
    }

    /// Revokes one of the user's personal access tokens; it answers 401 from the next request.
    pub async fn revoke_my_pat(&self, user_id: UserId, id: i64) -> Result<(), ApiError> {
        if !self.store.revoke_pat(id, user_id, self.now()).await? {
            return Err(ApiError::NotFound);
        }
        self.audit(
            AuditKind::PatRevoked,
            Some(user_id),
            None,
            None,
            format!("dashboard; token {id}"),
        )
        .await;
        Ok(())
    }

    /// One of the user's live (unrevoked) personal access tokens, for the confirmation page.
    pub async fn my_pat(&self, user_id: UserId, id: i64) -> Result<Pat, ApiError> {
        self.my_pats(user_id)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or(ApiError::NotFound)
    }

    // ---- authorized applications

    pub async fn authorized_apps(&self, user_id: UserId) -> Result<Vec<AuthorizedApp>, ApiError> {
        Ok(self.store.authorized_apps(user_id, self.now()).await?)
    }

    /// One authorized application of the user, by client id.
    pub async fn authorized_app(
        &self,
        user_id: UserId,
        client_id: &str,
    ) -> Result<AuthorizedApp, ApiError> {
        self.authorized_apps(user_id)
            .await?
            .into_iter()
            .find(|a| a.client_id == client_id)
            .ok_or(ApiError::NotFound)
    }

    /// Takes an application's access away: the consent is forgotten and every token of the
    /// app for this user is revoked; the app has to ask again.
    pub async fn revoke_authorized_app(
        &self,
        user_id: UserId,
        client_id: &str,
    ) -> Result<(), ApiError> {
        let app = self.authorized_app(user_id, client_id).await?;
        if !self
            .store
            .revoke_client_for_user(user_id, app.client_pk, self.now())
            .await?
        {
            return Err(ApiError::NotFound);
        }
        self.audit(
            AuditKind::AppRevoked,
            Some(user_id),
            Some(client_id),
            None,
            "consent and tokens revoked",
        )
        .await;
        self.notify(
            &[user_id],
            "app.revoked",
            serde_json::json!({"client_id": client_id, "name": app.name}),
        )
        .await;
        Ok(())
    }

    // ---- account

    /// Changes the user's own password after checking the current one (OWASP ASVS 4.0.3
    /// V2.1.6: "password change functionality requires the user's current and new password").
    /// Wrong current passwords count towards the login throttle (V2.2.1). Every token family,
    /// personal access token and browser session of the user ends with it (V3.3.3); the caller
    /// starts a new session for the browser that made the change.
    pub async fn change_own_password(
        &self,
        user: &User,
        current: &str,
        new: &str,
        caller: &Caller,
    ) -> Result<(), ApiError> {
        if let Some(wait) = self
            .login_throttled(&user.email, caller.ip.as_deref())
            .await?
        {
            return Err(ApiError::invalid(
                "current_password",
                format!(
                    "Too many wrong passwords. Try again in {}.",
                    human_wait(wait)
                ),
            ));
        }
        let ok = current.len() <= 1024
            && self
                .hasher
                .verify(Some(user.password_hash.clone()), current.to_string())
                .await
                .map_err(hash_error)?;
        if !ok {
            self.login_failed(&user.email, caller.ip.as_deref()).await;
            return Err(ApiError::invalid(
                "current_password",
                "Your current password is not correct.",
            ));
        }
        validate_new_password("new_password", new)?;
        self.change_password(user.id, new.to_string()).await?;
        // Sessions older than the change already stop working; delete them too.
        self.store.delete_user_sessions(user.id).await?;
        Ok(())
    }

    /// Ends every browser session of the user (this one included). API tokens are not
    /// touched: they are revoked from their own pages or by a password change.
    pub async fn sign_out_everywhere(&self, user_id: UserId) -> Result<u64, ApiError> {
        let n = self.store.delete_user_sessions(user_id).await?;
        self.audit(
            AuditKind::SessionsEnded,
            Some(user_id),
            None,
            None,
            format!("{n} sessions"),
        )
        .await;
        Ok(n)
    }

    // ---- administration

    /// The administrator of a session, if it may administer: an enabled administrator and,
    /// when `require_mfa_for_admins` is set, a sign-in with a second factor.
    fn require_admin<'a>(&self, session: &'a BrowserSession) -> Result<&'a User, ApiError> {
        let admin = &session.user;
        // Deny by default; a non-administrator does not learn the pages exist
        // (OWASP ASVS 4.0.3 V4.1.3, V4.1.5).
        if !admin.is_admin || admin.disabled {
            return Err(ApiError::NotFound);
        }
        if self.settings.mfa.require_for_admins && !session.multi_factor() {
            return Err(ApiError::Forbidden(
                "Administration needs two-factor sign-in: turn it on under Account, then sign \
                 out and in again."
                    .into(),
            ));
        }
        Ok(admin)
    }

    /// One page of users (by id) and the total count; administrators only.
    pub async fn admin_users(
        &self,
        session: &BrowserSession,
        offset: i64,
    ) -> Result<(i64, Vec<User>), ApiError> {
        self.require_admin(session)?;
        Ok(self.store.list_users(USERS_PAGE, offset.max(0)).await?)
    }

    /// Creates a user; administrators only.
    pub async fn admin_create_user(
        &self,
        session: &BrowserSession,
        input: UserInput,
    ) -> Result<User, ApiError> {
        let admin = self.require_admin(session)?;
        crate::users::validate_email(&input.email)?;
        validate_new_password("password", &input.password)?;
        let u = self.create_user(input).await?;
        self.audit(
            AuditKind::UserCreated,
            Some(admin.id),
            None,
            None,
            format!("user {}", u.id),
        )
        .await;
        Ok(u)
    }

    /// The user an administrator is looking at.
    pub async fn admin_user(&self, session: &BrowserSession, id: UserId) -> Result<User, ApiError> {
        self.require_admin(session)?;
        self.store.user_by_id(id).await?.ok_or(ApiError::NotFound)
    }

    /// Disables or re-enables a user; administrators only, never themselves. A disabled
    /// user's tokens, personal access tokens and sessions stop working at the next request
    /// (every lookup checks the flag); their sessions are also deleted.
    pub async fn admin_set_disabled(
        &self,
        session: &BrowserSession,
        id: UserId,
        disabled: bool,
    ) -> Result<(), ApiError> {
        let admin = self.require_admin(session)?;
        if admin.id == id {
            return Err(ApiError::Forbidden(
                "You cannot disable your own account.".into(),
            ));
        }
        self.set_user_disabled(id, disabled).await?;
        if disabled {
            self.store.delete_user_sessions(id).await?;
        }
        self.audit(
            if disabled {
                AuditKind::UserDisabled
            } else {
                AuditKind::UserEnabled
            },
            Some(admin.id),
            None,
            None,
            format!("user {id}"),
        )
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_need_twelve_characters() {
        assert!(validate_new_password("p", "short").is_err());
        assert!(validate_new_password("p", "elevenchars").is_err());
        assert!(validate_new_password("p", "twelve chars").is_ok());
        match validate_new_password("new_password", "") {
            Err(ApiError::Invalid { field, .. }) => {
                assert_eq!(field.as_deref(), Some("new_password"))
            }
            other => panic!("{other:?}"),
        }
    }
}
