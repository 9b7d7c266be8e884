//! The device authorization grant (RFC 8628): a device without a browser or a keyboard worth
//! typing a password into asks for a pair of codes, shows the short user code, and polls the
//! token endpoint while its user approves on `/device` in a browser.
//!
//! - §3.1-3.2: [`Core::device_authorization`] — client authenticated as at the token endpoint
//!   (public clients by `client_id`), a device code (≥ 190 bits, stored as its SHA-256) and a
//!   user code of 8 letters from 20 consonants (§6.1: no vowels, so no words; ≈ 34.6 bits),
//!   also stored only as a digest.
//! - §3.3: the `/device` page calls [`Core::device_request`] and [`Core::decide_device`].
//!   Wrong user codes are counted per browser session and per client address; past the limit
//!   the page refuses every code for the rest of the window (§5.1: the user code's entropy is
//!   low, so guessing must be rate-limited).
//! - §3.4-3.5: [`Core::device_code_grant`] answers `authorization_pending`, `slow_down`,
//!   `access_denied`, `expired_token`, or tokens — once: a second redemption is answered
//!   `invalid_grant` and revokes what the first minted (as for authorization codes, RFC 6749
//!   §4.1.2).

use rand::{rngs::OsRng, Rng};

use crate::cameras::parse_codec;
use crate::error::{ApiError, OAuthError, OAuthErrorCode, StoreError};
use crate::model::{AuditKind, CameraFields, CameraStatus, Client, GrantType, User};
use crate::oauth::{Caller, ClientCredentials, Params, TokenResponse};
use crate::profile::AccessKind;
use crate::scope::ScopeSet;
use crate::secret::{self, TokenFormat};
use crate::store::{DeviceCode, DeviceDecision, NewDeviceCode, Pairing};
use crate::Core;

/// The user-code alphabet (RFC 8628 §6.1's example): 20 consonants, no vowels, no look-alikes.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Letters in a user code (shown `XXXX-XXXX`).
pub const USER_CODE_LEN: usize = 8;
/// Wrong user codes allowed per browser session, and per client address, in a window.
pub const MAX_WRONG_CODES_PER_SESSION: i64 = 5;
pub const MAX_WRONG_CODES_PER_IP: i64 = 20;
/// The window of those counts, seconds.
pub const WRONG_CODE_WINDOW_SECS: i64 = 900;

/// The answer of the device authorization endpoint (RFC 8628 §3.2), without the URIs (the
/// surface knows its base URL).
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    pub device_code: String,
    /// `XXXX-XXXX`.
    pub user_code: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// The scope a device asks for to be paired as a camera: its tokens are then bound to that
/// camera and carry no other permission.
pub const CAMERA_PAIR_SCOPE: &str = "camera_pair";

/// A pending device request as the `/device` page shows it.
#[derive(Debug, Clone)]
pub struct DeviceRequest {
    pub client: Client,
    pub scope: ScopeSet,
    /// A camera pairing: the device it describes.
    pub pairing: Option<Pairing>,
    /// `XXXX-XXXX`.
    pub user_code: String,
}

/// Why the `/device` page refused a code.
#[derive(Debug)]
pub enum DeviceCodeError {
    /// Unknown, expired or already decided (one answer for all three).
    Invalid,
    /// Too many wrong codes: wait this many seconds.
    Throttled(u64),
    Store(StoreError),
}

impl From<StoreError> for DeviceCodeError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The user code's 8 letters, upper-case, if `input` is one (case, dashes and spaces ignored).
pub fn normalize_user_code(input: &str) -> Option<String> {
    if input.len() > 64 {
        return None;
    }
    let code: String = input
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)))
        .then_some(code)
}

/// `XXXX-XXXX` for a normalised code.
pub fn format_user_code(code: &str) -> String {
    let (a, b) = code.split_at(code.len() / 2);
    format!("{a}-{b}")
}

fn new_user_code() -> String {
    let mut rng = OsRng;
    (0..USER_CODE_LEN)
        .map(|_| USER_CODE_ALPHABET[rng.gen_range(0..USER_CODE_ALPHABET.len())] as char)
        .collect()
}

fn user_code_hash(normalized: &str) -> Vec<u8> {
    secret::digest(normalized)
}

/// A device's description of itself (`device_name`, `device_serial`, optional
/// `device_model` and `device_type`, extra parameters of the device authorization request).
fn pairing_of(params: &Params) -> Result<Pairing, OAuthError> {
    let text = |name: &str, max: usize| -> Result<Option<String>, OAuthError> {
        match params.get(name) {
            None => Ok(None),
            Some(v) if v.chars().count() <= max && !v.chars().any(char::is_control) => {
                Ok(Some(v.trim().to_string()))
            }
            Some(_) => Err(OAuthError::invalid_request(format!(
                "`{name}` must be at most {max} characters, without control characters."
            ))),
        }
    };
    let name = text("device_name", 100)?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("A pairing needs `device_name`."))?;
    let serial = text("device_serial", 64)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("A pairing needs `device_serial`."))?;
    if !serial
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return Err(OAuthError::invalid_request(
            "`device_serial` may hold letters, digits and - _ . : only.",
        ));
    }
    let codec = match params.get("device_type") {
        None => None,
        Some(t) => Some(parse_codec(t).map_err(|_| {
            OAuthError::invalid_request("`device_type` must be h264, h265 or mjpeg.")
        })?),
    };
    Ok(Pairing {
        name,
        serial,
        model: text("device_model", 100)?.filter(|m| !m.is_empty()),
        codec,
    })
}

impl Core {
    /// `POST /oauth/device_authorization` (RFC 8628 §3.1-3.2).
    pub async fn device_authorization(
        &self,
        params: &Params,
        creds: Option<ClientCredentials>,
    ) -> Result<DeviceAuthorization, OAuthError> {
        let creds = creds.ok_or_else(|| {
            OAuthError::invalid_client("Client authentication is required (client_id).")
        })?;
        let client = self.authenticate_client(&creds).await?;
        if !client.allows_grant(GrantType::DeviceCode) {
            return Err(OAuthError::unauthorized_client(
                "This client may not use the device authorization grant.",
            ));
        }
        let requested = params.get("scope");
        let pairs = requested.is_some_and(|s| s.split(' ').any(|n| n == CAMERA_PAIR_SCOPE));
        let (scope, pairing) = if pairs {
            // A pairing's tokens carry no scope at all: they are bound to the camera instead.
            if requested.is_some_and(|s| {
                s.split(' ')
                    .any(|n| !n.is_empty() && n != CAMERA_PAIR_SCOPE)
            }) {
                return Err(OAuthError::invalid_scope(
                    "`camera_pair` cannot be combined with other scopes.",
                ));
            }
            if self.profile_of(&client)?.access == AccessKind::Jwt {
                return Err(OAuthError::unauthorized_client(
                    "Camera pairing needs a client on an opaque-token profile.",
                ));
            }
            (ScopeSet::default(), Some(pairing_of(params)?))
        } else {
            (self.grant_scope(&client, requested)?, None)
        };
        let a = &self.settings.authz;
        let now = self.now();
        let device_code = secret::generate(TokenFormat::Prefixed("cgd_"));
        // A user code is drawn again on the rare collision with a live one (UNIQUE).
        for _ in 0..8 {
            let user_code = new_user_code();
            let row = NewDeviceCode {
                hash: secret::digest(&device_code),
                user_code_hash: user_code_hash(&user_code),
                client_pk: client.pk,
                scope,
                created_at: now,
                expires_at: now + a.device_code_ttl_secs,
                interval_secs: a.device_poll_interval_secs,
                pairing: pairing.clone(),
            };
            match self.store.create_device_code(&row).await {
                Ok(()) => {
                    return Ok(DeviceAuthorization {
                        device_code,
                        user_code: format_user_code(&user_code),
                        expires_in: a.device_code_ttl_secs,
                        interval: a.device_poll_interval_secs,
                    })
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OAuthError::server_error())
    }

    /// The token endpoint's device grant (RFC 8628 §3.4-3.5), for an authenticated client
    /// allowed the grant.
    pub(crate) async fn device_code_grant(
        &self,
        client: &Client,
        params: &Params,
        caller: &Caller,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = params.require("device_code")?;
        let hash = secret::digest(presented);
        let unknown = || OAuthError::invalid_grant("Unknown or already used device code.");
        let code = match self.store.device_code(&hash).await? {
            Some(c) if c.client_pk == client.pk => c,
            _ => return Err(unknown()),
        };
        let now = self.now();
        if code.used_at.is_some() {
            return Err(self.device_replay(&hash, now).await);
        }
        if now >= code.expires_at {
            return Err(OAuthError::new(
                OAuthErrorCode::ExpiredToken,
                "The device code expired: start again.",
            ));
        }
        let user_id = match (code.approved, code.user_id) {
            (Some(true), Some(u)) => u,
            (Some(false), _) => {
                return Err(OAuthError::new(
                    OAuthErrorCode::AccessDenied,
                    "The user denied the request.",
                ))
            }
            _ => return Err(self.device_pending(&hash, now).await?),
        };
        if !self.store.claim_device_code(&hash, now).await? {
            return Err(self.device_replay(&hash, now).await);
        }
        let user = match self.store.user_by_id(user_id).await? {
            Some(u) if !u.disabled => u,
            _ => return Err(unknown()),
        };
        let mut tokens = self
            .issue_new_family(
                client,
                Some(user.id),
                GrantType::DeviceCode,
                code.scope,
                caller,
            )
            .await?;
        if code.camera_id.is_some() {
            // A pairing's tokens carry no resource scope; they are bound to the camera.
            tokens.scope = CAMERA_PAIR_SCOPE.into();
        }
        self.attach_device_tokens(&hash, &code, client, &tokens)
            .await?;
        Ok(tokens)
    }

    /// Links the minted family to the code; if a replay was recorded meanwhile, revokes it.
    async fn attach_device_tokens(
        &self,
        hash: &[u8],
        code: &DeviceCode,
        client: &Client,
        tokens: &TokenResponse,
    ) -> Result<(), OAuthError> {
        let at = secret::digest(&tokens.access_token);
        // A JWT access token has no family row: there is nothing to link (its lifetime is
        // its bound, as for a code exchange on a JWT profile).
        let Some(info) = self.store.access_token(&at).await? else {
            return Ok(());
        };
        if self
            .store
            .attach_device_family(hash, info.family_id)
            .await?
        {
            self.store.revoke_family(info.family_id, self.now()).await?;
            tracing::warn!(client = %client.client_id, scope = %code.scope.to_scope_string(), "device code redeemed twice at once; tokens revoked");
            return Err(OAuthError::invalid_grant(
                "Unknown or already used device code.",
            ));
        }
        Ok(())
    }

    /// A second redemption: recorded, and the first redemption's tokens revoked.
    async fn device_replay(&self, hash: &[u8], now: i64) -> OAuthError {
        match self.store.mark_device_code_replayed(hash, now).await {
            Ok(Some(family)) => {
                if let Err(e) = self.store.revoke_family(family, now).await {
                    return e.into();
                }
                tracing::warn!("device code redeemed twice; its tokens are revoked");
            }
            Ok(None) => {}
            Err(e) => return e.into(),
        }
        OAuthError::invalid_grant("Unknown or already used device code.")
    }

    /// Still pending: `authorization_pending`, or `slow_down` for a device polling early.
    async fn device_pending(&self, hash: &[u8], now: i64) -> Result<OAuthError, OAuthError> {
        Ok(if self.store.poll_device_code(hash, now).await? {
            OAuthError::new(
                OAuthErrorCode::AuthorizationPending,
                "The user has not decided yet: keep polling.",
            )
        } else {
            OAuthError::new(
                OAuthErrorCode::DeviceSlowDown,
                "Polling too fast: wait 5 seconds longer between polls from now on.",
            )
        })
    }

    fn device_throttle_keys(&self, session_id: &str, ip: Option<&str>) -> Vec<(Vec<u8>, i64)> {
        let mut keys = vec![(
            secret::digest(&format!("device-session:{session_id}")),
            MAX_WRONG_CODES_PER_SESSION,
        )];
        if let Some(ip) = ip {
            let key = secret::digest(&format!("device-ip:{}", crate::throttle::ip_bucket(ip)));
            keys.push((key, MAX_WRONG_CODES_PER_IP));
        }
        keys
    }

    /// The pending device request a user code names, for the `/device` page. Wrong codes are
    /// counted under the browser session and the client address.
    pub async fn device_request(
        &self,
        session_id: &str,
        ip: Option<&str>,
        input: &str,
    ) -> Result<DeviceRequest, DeviceCodeError> {
        let now = self.now();
        let keys = self.device_throttle_keys(session_id, ip);
        if let Some(wait) = self.throttle_wait(&keys, WRONG_CODE_WINDOW_SECS).await? {
            return Err(DeviceCodeError::Throttled(wait));
        }
        let found = match normalize_user_code(input) {
            Some(code) => {
                let row = self
                    .store
                    .device_code_by_user_code(&user_code_hash(&code))
                    .await?;
                match row {
                    Some(d) if d.approved.is_none() && now < d.expires_at => {
                        match self.store.client_by_pk(d.client_pk).await? {
                            Some(client) => Some(DeviceRequest {
                                client,
                                scope: d.scope,
                                pairing: d.pairing,
                                user_code: format_user_code(&code),
                            }),
                            None => None,
                        }
                    }
                    _ => None,
                }
            }
            None => None,
        };
        match found {
            Some(r) => Ok(r),
            None => {
                self.throttle_fail(&keys, WRONG_CODE_WINDOW_SECS).await;
                Err(DeviceCodeError::Invalid)
            }
        }
    }

    /// The user's decision on the `/device` page (after [`Core::device_request`] found the
    /// code). False if the code was decided meanwhile or expired.
    pub async fn decide_device(
        &self,
        user: &User,
        request: &DeviceRequest,
        approve: bool,
        caller: &Caller,
    ) -> Result<bool, ApiError> {
        let code = normalize_user_code(&request.user_code).ok_or(ApiError::NotFound)?;
        let now = self.now();
        // An approved pairing registers the device as a camera of the user (or finds the one
        // it was paired as before: the same serial, the same camera).
        let camera_id = match (&request.pairing, approve) {
            (Some(p), true) => {
                let mut f = CameraFields::named(p.name.clone());
                f.status = CameraStatus::Online;
                f.codec = p.codec.unwrap_or(f.codec);
                f.description = p.model.clone();
                Some(
                    self.store
                        .pair_camera(user.id, &p.serial, &f, now)
                        .await?
                        .id,
                )
            }
            _ => None,
        };
        let decision = DeviceDecision {
            user_hash: &user_code_hash(&code),
            user_id: user.id,
            approve,
            camera_id,
            now,
        };
        let done = self.store.decide_device_code(&decision).await?;
        if done {
            let kind = if approve {
                AuditKind::DeviceApproved
            } else {
                AuditKind::DeviceDenied
            };
            let client = Some(request.client.client_id.as_str());
            let scope = request.scope.to_scope_string();
            self.audit(kind, Some(user.id), client, caller.ip.as_deref(), &scope)
                .await;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_normalise_and_render() {
        assert_eq!(
            normalize_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(
            normalize_user_code(" BCDF GHJK ").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalize_user_code("bcdfghjk").as_deref(), Some("BCDFGHJK"));
        // Vowels, digits and wrong lengths are no user code.
        assert_eq!(normalize_user_code("ABCD-EFGH"), None);
        assert_eq!(normalize_user_code("BCDF-GHJ1"), None);
        assert_eq!(normalize_user_code("BCDF-GHJ"), None);
        assert_eq!(normalize_user_code("BCDF-GHJKL"), None);
        assert_eq!(format_user_code("BCDFGHJK"), "BCDF-GHJK");
        for _ in 0..100 {
            let c = new_user_code();
            assert_eq!(normalize_user_code(&format_user_code(&c)), Some(c));
        }
    }
}
