//! Browser sessions for the login page and the approval screen (OWASP Session Management
//! Cheat Sheet): ids of ≥ 128 bits from the OS CSPRNG (ours carry ≈ 190), stored only as
//! SHA-256 digests, a new id at every login (no fixation), idle and absolute timeouts, and a
//! session ending when the password changes. The cookie itself (`__Host-` prefix, Secure,
//! HttpOnly, SameSite=Lax) is the server crate's business.
//!
//! CSRF tokens are derived from the session id (HMAC-SHA256 keyed by the id), so they need no
//! storage and an attacker without the cookie cannot compute one.

pub use crate::store::records::{NewSession, SessionRecord};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::model::{normalize_email, AuditKind, User};
use crate::oauth::Caller;
use crate::password::HashError;
use crate::secret::{self, TokenFormat};
use crate::Core;

#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// A session unused this long ends (OWASP: 15–30 minutes for most applications).
    pub idle_timeout_secs: i64,
    /// A session ends this long after login, however active.
    pub absolute_timeout_secs: i64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 1800,
            absolute_timeout_secs: 8 * 3600,
        }
    }
}

/// A live session: the presented id, its user and the CSRF token for its forms.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    pub id: String,
    pub user: User,
    pub csrf_token: String,
    /// When the user signed in (a new session at every sign-in): OIDC `auth_time`.
    pub created_at: Timestamp,
    /// The factors of that sign-in (RFC 8176 names, space-separated).
    pub amr: String,
}

impl BrowserSession {
    /// How the user signed in, as an id_token states it.
    pub fn authn(&self) -> crate::model::Authn {
        crate::model::Authn {
            auth_time: self.created_at,
            amr: self.amr.clone(),
        }
    }

    /// Whether the sign-in used a second factor.
    pub fn multi_factor(&self) -> bool {
        self.amr
            .split(' ')
            .any(|f| f != crate::oidc::AMR_PASSWORD && !f.is_empty())
    }
}

/// Why a sign-in failed. The same [`SignInError::Invalid`] for an unknown user and a wrong
/// password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInError {
    Invalid,
    /// Too many failures for the account or the client address; retry after this many seconds.
    Throttled {
        retry_after: u64,
    },
    Unavailable {
        retry_after: u64,
    },
    Internal,
}

impl From<StoreError> for SignInError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "storage unavailable");
                Self::Unavailable { retry_after: 5 }
            }
            _ => {
                tracing::error!(error = %e, "storage error");
                Self::Internal
            }
        }
    }
}

/// The CSRF token of forms shown in a session: BASE64URL(HMAC-SHA256(session id, label)).
pub fn csrf_token(session_id: &str) -> String {
    keyed_token(session_id, "camgate session csrf v1")
}

/// Checks a presented CSRF token in constant time.
pub fn check_csrf(session_id: &str, presented: &str) -> bool {
    secret::ct_eq(csrf_token(session_id).as_bytes(), presented.as_bytes())
}

/// A token bound to a random browser-held value (the login form's double-submit cookie).
pub fn keyed_token(key: &str, label: &str) -> String {
    let mac = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(mut m) => {
            m.update(label.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length; unreachable.
        Err(_) => secret::random_key(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
}

fn hash_error(e: HashError) -> SignInError {
    match e {
        HashError::Busy => SignInError::Unavailable { retry_after: 1 },
        HashError::Failed => SignInError::Internal,
    }
}

impl Core {
    /// Verifies a login (throttled per account and per client address, ASVS 2.2.1). An
    /// unknown user costs one hash like a known one and gets the same answer.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        caller: &Caller,
    ) -> Result<User, SignInError> {
        if email.len() > 254 || password.len() > 1024 || email.trim().is_empty() {
            return Err(SignInError::Invalid);
        }
        if let Some(retry_after) = self.login_throttled(email, caller.ip.as_deref()).await? {
            return Err(SignInError::Throttled { retry_after });
        }
        let user = self.store.user_by_email(&normalize_email(email)).await?;
        let ok = self
            .hasher
            .verify(
                user.as_ref().map(|u| u.password_hash.clone()),
                password.to_string(),
            )
            .await
            .map_err(hash_error)?;
        match user {
            Some(u) if ok && !u.disabled => {
                self.audit(
                    AuditKind::LoginOk,
                    Some(u.id),
                    None,
                    caller.ip.as_deref(),
                    "login page",
                )
                .await;
                Ok(u)
            }
            other => {
                self.login_failed(email, caller.ip.as_deref()).await;
                self.audit(
                    AuditKind::LoginFailed,
                    other.map(|u| u.id),
                    None,
                    caller.ip.as_deref(),
                    "login page",
                )
                .await;
                Err(SignInError::Invalid)
            }
        }
    }

    /// Starts a session for `user` and returns its id (for the cookie). A session the browser
    /// already had is ended: the id is renewed at every login.
    pub async fn start_session(
        &self,
        user: &User,
        previous: Option<&str>,
        amr: &str,
    ) -> Result<String, StoreError> {
        if let Some(old) = previous {
            self.store.delete_session(&secret::digest(old)).await?;
        }
        let id = secret::generate(TokenFormat::Prefixed("cgs_"));
        let now = self.now();
        self.store
            .create_session(&NewSession {
                hash: secret::digest(&id),
                user_id: user.id,
                created_at: now,
                expires_at: now + self.settings.authz.session.absolute_timeout_secs,
                amr: amr.to_string(),
            })
            .await?;
        Ok(id)
    }

    /// The live session for a presented id, or `None` if it is unknown, idle too long, past
    /// its absolute lifetime, older than the user's last password change, or its user is
    /// disabled. Records activity.
    pub async fn session(&self, id: &str) -> Result<Option<BrowserSession>, StoreError> {
        if id.is_empty() || id.len() > 128 {
            return Ok(None);
        }
        let hash = secret::digest(id);
        let Some(rec) = self.store.session(&hash).await? else {
            return Ok(None);
        };
        let now = self.now();
        let idle = self.settings.authz.session.idle_timeout_secs;
        if rec.expires_at <= now || now - rec.last_seen_at >= idle {
            self.store.delete_session(&hash).await?;
            return Ok(None);
        }
        let user = match self.store.user_by_id(rec.user_id).await? {
            Some(u) if !u.disabled && u.password_changed_at <= rec.created_at => u,
            _ => {
                self.store.delete_session(&hash).await?;
                return Ok(None);
            }
        };
        // Coarse activity: at most one write per interval (a tenth of the idle timeout, ≤ 60 s).
        let interval = (idle / 10).clamp(1, 60);
        self.store.touch_session(&hash, now, interval).await?;
        Ok(Some(BrowserSession {
            id: id.to_string(),
            user,
            csrf_token: csrf_token(id),
            created_at: rec.created_at,
            amr: rec
                .amr
                .unwrap_or_else(|| crate::oidc::AMR_PASSWORD.to_string()),
        }))
    }

    /// Ends a session (logout).
    pub async fn end_session(&self, id: &str) -> Result<(), StoreError> {
        if id.is_empty() || id.len() > 128 {
            return Ok(());
        }
        self.store.delete_session(&secret::digest(id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_is_bound_to_the_session() {
        let t = csrf_token("cgs_a");
        assert!(check_csrf("cgs_a", &t));
        assert!(!check_csrf("cgs_b", &t));
        assert!(!check_csrf("cgs_a", ""));
        assert_eq!(t.len(), 43);
    }
}
