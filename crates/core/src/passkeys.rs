//! Passkeys (WebAuthn, through webauthn-rs): registration from the account page, sign-in with a
//! passkey alone (a discoverable credential: no email typed), and a passkey as the second
//! factor after the password.
//!
//! - The relying party is this server's issuer: its origin (scheme, host, port) must be the
//!   page's, and the RP ID is its host. webauthn-rs checks the origin and RP ID hash of every
//!   response, the signature, user verification (required) and the counter.
//! - A ceremony's state waits in the database under the digest of an id handed to the browser
//!   and is taken once, so a challenge is single use on every node, and expires after five
//!   minutes.
//! - The WebAuthn user handle is not the row id: 16 bytes of HMAC under the server's subject
//!   key, so credentials do not reveal account numbers.
//! - Registration asks for a resident (discoverable) key, so that the passkey can sign in
//!   without an email address; webauthn-rs's passkey profile leaves that to the authenticator.
//! - `amr` (RFC 8176): `hwk` for a device-bound credential, `swk` for a synced one (backup
//!   eligible), plus `user` when the authenticator verified the user.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

use crate::error::{ApiError, StoreError};
use crate::model::{AuditKind, User, UserId};
use crate::secret::{self, TokenFormat};
use crate::store::{Ceremony, PasskeyRecord};
use crate::Core;

/// How long the browser has to answer a ceremony.
pub const CEREMONY_TTL_SECS: i64 = 300;
/// Passkeys per account.
pub const MAX_PASSKEYS: usize = 20;

/// What the browser needs to run a ceremony: its id (sent back with the answer) and the options
/// for `navigator.credentials.create` / `get` (JSON, binary fields base64url).
#[derive(Debug, Clone)]
pub struct CeremonyStart {
    pub ceremony: String,
    pub options: Value,
}

/// The ceremony kinds.
const REGISTER: &str = "register";
const AUTHENTICATE: &str = "authenticate";
const DISCOVER: &str = "discover";

fn invalid() -> ApiError {
    ApiError::invalid(
        "credential",
        "The passkey could not be verified. Try again, or use another sign-in method.",
    )
}

fn store_json<T: serde::Serialize>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|_| ApiError::Internal)
}

impl Core {
    /// The WebAuthn relying party of the current request's issuer.
    fn webauthn(&self) -> Result<Webauthn, ApiError> {
        let iss = self.jwt_issuer().ok_or(ApiError::Internal)?;
        let origin = Url::parse(&iss).map_err(|_| ApiError::Internal)?;
        let host = origin.host_str().ok_or(ApiError::Internal)?.to_string();
        WebauthnBuilder::new(&host, &origin)
            .and_then(|b| b.rp_name("camgate").build())
            .map_err(|e| {
                // An IP address is not a valid RP ID (WebAuthn §5.1.2): passkeys need a name.
                tracing::warn!(error = %e, %host, "passkeys are unavailable for this issuer");
                ApiError::Forbidden(
                    "Passkeys need the server to be reached by a host name (not an IP address)."
                        .into(),
                )
            })
    }

    /// The user's WebAuthn user handle (stable, opaque).
    pub fn user_handle(&self, user: UserId) -> Uuid {
        let mut m = match Hmac::<Sha256>::new_from_slice(&self.subject_key) {
            Ok(m) => m,
            Err(_) => return Uuid::nil(),
        };
        m.update(b"camgate webauthn user v1\0");
        m.update(user.to_string().as_bytes());
        let d = m.finalize().into_bytes();
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        Uuid::from_bytes(b)
    }

    async fn start_ceremony(
        &self,
        user: Option<UserId>,
        kind: &str,
        state: String,
        options: Value,
    ) -> Result<CeremonyStart, ApiError> {
        let id = secret::generate(TokenFormat::Prefixed("cgw_"));
        self.store
            .put_ceremony(
                &secret::digest(&id),
                &Ceremony {
                    user_id: user,
                    kind: kind.into(),
                    state,
                    expires_at: self.now() + CEREMONY_TTL_SECS,
                },
            )
            .await?;
        Ok(CeremonyStart {
            ceremony: id,
            options,
        })
    }

    async fn take_ceremony(&self, id: &str, kind: &str) -> Result<Ceremony, ApiError> {
        if id.is_empty() || id.len() > 128 {
            return Err(invalid());
        }
        let c = self
            .store
            .take_ceremony(&secret::digest(id))
            .await?
            .ok_or_else(invalid)?;
        if c.kind != kind || c.expires_at <= self.now() {
            return Err(invalid());
        }
        Ok(c)
    }

    pub async fn passkeys(&self, user: UserId) -> Result<Vec<PasskeyRecord>, StoreError> {
        self.store.passkeys_of(user).await
    }

    /// Starts registering a passkey for `user`.
    pub async fn begin_passkey_registration(&self, user: &User) -> Result<CeremonyStart, ApiError> {
        let wa = self.webauthn()?;
        let existing = self.store.passkeys_of(user.id).await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(ApiError::Conflict(format!(
                "At most {MAX_PASSKEYS} passkeys per account: remove one first."
            )));
        }
        let exclude = existing
            .iter()
            .filter_map(|p| serde_json::from_str::<Passkey>(&p.passkey).ok())
            .map(|p| p.cred_id().clone())
            .collect();
        let name = format!("{} {}", user.first_name, user.last_name);
        let display = match name.trim() {
            "" => user.email.as_str(),
            n => n,
        };
        let (ccr, reg) = wa
            .start_passkey_registration(
                self.user_handle(user.id),
                &user.email,
                display,
                Some(exclude),
            )
            .map_err(|_| ApiError::Internal)?;
        let mut options = serde_json::to_value(&ccr).map_err(|_| ApiError::Internal)?;
        // A discoverable credential, so it can sign in without an email address.
        if let Some(sel) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(Value::as_object_mut)
        {
            sel.insert("residentKey".into(), "required".into());
            sel.insert("requireResidentKey".into(), true.into());
        }
        self.start_ceremony(Some(user.id), REGISTER, store_json(&reg)?, options)
            .await
    }

    /// Finishes a registration with the browser's answer; `name` labels the passkey.
    pub async fn finish_passkey_registration(
        &self,
        user: &User,
        ceremony: &str,
        credential: &str,
        name: &str,
    ) -> Result<PasskeyRecord, ApiError> {
        let c = self.take_ceremony(ceremony, REGISTER).await?;
        if c.user_id != Some(user.id) {
            return Err(invalid());
        }
        let reg: PasskeyRegistration = serde_json::from_str(&c.state).map_err(|_| invalid())?;
        let cred: RegisterPublicKeyCredential =
            serde_json::from_str(credential).map_err(|_| invalid())?;
        let passkey = self
            .webauthn()?
            .finish_passkey_registration(&cred, &reg)
            .map_err(|e| {
                tracing::info!(error = %e, "passkey registration refused");
                invalid()
            })?;
        let name = name.trim();
        let name = if name.is_empty() {
            "Passkey".to_string()
        } else {
            name.chars().take(100).collect()
        };
        let rec = self
            .store
            .add_passkey(
                user.id,
                passkey.cred_id().as_ref(),
                &name,
                &store_json(&passkey)?,
                self.now(),
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    ApiError::Conflict("This passkey is registered already.".into())
                }
                other => other.into(),
            })?;
        self.audit(AuditKind::MfaEnabled, Some(user.id), None, None, "passkey")
            .await;
        Ok(rec)
    }

    pub async fn rename_passkey(&self, user: &User, id: i64, name: &str) -> Result<(), ApiError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiError::invalid(
                "name",
                "Give the passkey a name (1-100 characters).",
            ));
        }
        if !self.store.rename_passkey(user.id, id, name).await? {
            return Err(ApiError::NotFound);
        }
        Ok(())
    }

    pub async fn remove_passkey(&self, user: &User, id: i64) -> Result<(), ApiError> {
        if !self.store.delete_passkey(user.id, id).await? {
            return Err(ApiError::NotFound);
        }
        self.audit(
            AuditKind::MfaDisabled,
            Some(user.id),
            None,
            None,
            "passkey removed",
        )
        .await;
        Ok(())
    }

    /// Starts a passkey sign-in: for `user` (the second factor, any of their passkeys), or for
    /// whoever the authenticator names (`None`: a discoverable credential alone).
    pub async fn begin_passkey_sign_in(
        &self,
        user: Option<&User>,
    ) -> Result<CeremonyStart, ApiError> {
        let wa = self.webauthn()?;
        match user {
            Some(u) => {
                let keys: Vec<Passkey> = self
                    .store
                    .passkeys_of(u.id)
                    .await?
                    .iter()
                    .filter_map(|p| serde_json::from_str(&p.passkey).ok())
                    .collect();
                if keys.is_empty() {
                    return Err(ApiError::invalid(
                        "credential",
                        "This account has no passkey.",
                    ));
                }
                let (rcr, state) = wa
                    .start_passkey_authentication(&keys)
                    .map_err(|_| ApiError::Internal)?;
                let options = serde_json::to_value(&rcr).map_err(|_| ApiError::Internal)?;
                self.start_ceremony(Some(u.id), AUTHENTICATE, store_json(&state)?, options)
                    .await
            }
            None => {
                let (rcr, state) = wa
                    .start_discoverable_authentication()
                    .map_err(|_| ApiError::Internal)?;
                let mut options = serde_json::to_value(&rcr).map_err(|_| ApiError::Internal)?;
                // A button starts it, not the autofill UI: a regular (modal) request.
                if let Some(o) = options.as_object_mut() {
                    o.remove("mediation");
                }
                self.start_ceremony(None, DISCOVER, store_json(&state)?, options)
                    .await
            }
        }
    }

    /// Finishes a passkey sign-in. `expected`: the user of the second-factor step (the
    /// credential must be theirs). Returns the user and the `amr` values of the passkey.
    pub async fn finish_passkey_sign_in(
        &self,
        ceremony: &str,
        credential: &str,
        expected: Option<UserId>,
    ) -> Result<(User, Vec<&'static str>), ApiError> {
        let kind = if expected.is_some() {
            AUTHENTICATE
        } else {
            DISCOVER
        };
        let c = self.take_ceremony(ceremony, kind).await?;
        if c.user_id != expected {
            return Err(invalid());
        }
        let cred: PublicKeyCredential = serde_json::from_str(credential).map_err(|_| invalid())?;
        let wa = self.webauthn()?;
        let rec = self
            .store
            .passkey_by_cred(cred.get_credential_id())
            .await?
            .ok_or_else(invalid)?;
        let mut passkey: Passkey = serde_json::from_str(&rec.passkey).map_err(|_| invalid())?;
        let result = match expected {
            Some(uid) => {
                if rec.user_id != uid {
                    return Err(invalid());
                }
                let state: PasskeyAuthentication =
                    serde_json::from_str(&c.state).map_err(|_| invalid())?;
                wa.finish_passkey_authentication(&cred, &state)
            }
            None => {
                // The authenticator names the user by the handle it was registered with.
                let (handle, _) = wa
                    .identify_discoverable_authentication(&cred)
                    .map_err(|_| invalid())?;
                if handle != self.user_handle(rec.user_id) {
                    return Err(invalid());
                }
                let state: DiscoverableAuthentication =
                    serde_json::from_str(&c.state).map_err(|_| invalid())?;
                wa.finish_discoverable_authentication_v2(&cred, state, &passkey)
            }
        }
        .map_err(|e| {
            tracing::info!(error = %e, "passkey sign-in refused");
            invalid()
        })?;
        passkey.update_credential(&result);
        self.store
            .passkey_used(rec.id, &store_json(&passkey)?, self.now())
            .await?;
        let user = self
            .store
            .user_by_id(rec.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(invalid)?;
        let mut amr = vec![if result.backup_eligible() {
            "swk"
        } else {
            "hwk"
        }];
        if result.user_verified() {
            amr.push("user");
        }
        Ok((user, amr))
    }
}
