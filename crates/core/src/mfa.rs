//! Two-factor sign-in: TOTP authenticators (RFC 6238) with single-use recovery codes, and the
//! sealed "password verified, second factor pending" state between the two sign-in steps.
//!
//! - TOTP: HMAC-SHA-1, 6 digits, 30-second steps, one step of drift either way (RFC 6238 §5.2
//!   recommends allowing one). A code is accepted only for a time step later than every step
//!   accepted before (`last_step`, one conditional UPDATE), so a code cannot be replayed — not
//!   even in its own window, nor concurrently on two nodes.
//! - The key must be read back to compute codes, so unlike client secrets it cannot be stored as
//!   a digest: it is sealed with AES-256-GCM under the server's data key, with the user id as
//!   associated data (a sealed key copied to another user's row does not open). The data key
//!   comes from the configuration (`data_key_file`, kept outside the database), so a copy of the
//!   database alone does not reveal TOTP keys; without one configured, a key in the database's
//!   `settings` table is used and a warning says so (SECURITY.md).
//! - Recovery codes: ten per enrolment, shown once, stored as SHA-256 digests, each usable once.
//! - Attempts at the second factor have their own throttle, per account.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use rand::{rngs::OsRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, StoreError};
use crate::model::{AuditKind, User, UserId};
use crate::oauth::Caller;
use crate::secret;
use crate::Core;

/// RFC 6238 parameters (what every authenticator app assumes by default).
pub const TOTP_STEP_SECS: i64 = 30;
pub const TOTP_DIGITS: usize = 6;
/// Steps of drift accepted either way.
pub const TOTP_SKEW: i64 = 1;
/// Recovery codes per enrolment.
pub const RECOVERY_CODES: usize = 10;
/// How long a password-verified sign-in waits for its second factor.
pub const PENDING_TTL_SECS: i64 = 300;
/// The issuer shown in authenticator apps.
pub const TOTP_ISSUER: &str = "camgate";

/// Tunables of two-factor sign-in.
#[derive(Debug, Clone)]
pub struct MfaSettings {
    /// Administrators must have a second factor to use the admin pages.
    pub require_for_admins: bool,
    /// Dealers must have a second factor to manage customers or act for them.
    pub require_for_dealers: bool,
    /// Failed second-factor attempts allowed per account in one window.
    pub max_failures: i64,
    pub window_secs: i64,
}

impl Default for MfaSettings {
    fn default() -> Self {
        Self {
            require_for_admins: false,
            require_for_dealers: false,
            max_failures: 10,
            window_secs: 3600,
        }
    }
}

/// Why a second factor was refused.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    #[error("That code is not valid.")]
    Invalid,
    #[error("Too many wrong codes. Try again in {retry_after} seconds.")]
    Throttled { retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<MfaError> for ApiError {
    fn from(e: MfaError) -> Self {
        match e {
            MfaError::Invalid => ApiError::invalid("code", "That code is not valid."),
            // Beside the field, like the password change's throttle (not "the service is busy").
            MfaError::Throttled { retry_after } => ApiError::invalid(
                "code",
                format!(
                    "Too many wrong codes. Try again in {}.",
                    crate::throttle::human_wait(retry_after)
                ),
            ),
            MfaError::Store(s) => s.into(),
        }
    }
}

/// A new authenticator, before its first code confirms it.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    /// RFC 4648 base32 without padding (what apps accept typed in).
    pub secret_base32: String,
    /// `otpauth://totp/…` (the Key Uri Format authenticator apps scan).
    pub otpauth_uri: String,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

/// Which second factor a sign-in used, and whether the user has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    Totp,
    RecoveryCode,
}

impl SecondFactor {
    /// RFC 8176 name (a recovery code is a one-time password too).
    pub fn amr(self) -> &'static str {
        "otp"
    }
}

/// AES-256-GCM sealing under the data key: `1 ‖ nonce ‖ ciphertext ‖ tag`.
pub(crate) fn seal(key: &[u8], aad: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let mut buf = plain.to_vec();
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .ok()?;
    let mut out = Vec::with_capacity(1 + 12 + buf.len());
    out.push(1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    Some(out)
}

pub(crate) fn open(key: &[u8], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let (&version, rest) = sealed.split_first()?;
    if version != 1 || rest.len() < 12 + 16 {
        return None;
    }
    let (nonce, ct) = rest.split_at(12);
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let mut buf = ct.to_vec();
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let plain = k.open_in_place(nonce, Aad::from(aad), &mut buf).ok()?;
    Some(plain.to_vec())
}

fn totp_aad(user: UserId) -> Vec<u8> {
    format!("camgate totp v1\0{user}").into_bytes()
}

const PENDING_AAD: &[u8] = b"camgate mfa pending v1";

/// The sealed contents of the pending-sign-in cookie.
#[derive(Serialize, Deserialize)]
struct Pending {
    u: UserId,
    e: i64,
    /// The user's password change time: a password change meanwhile voids the pending sign-in.
    p: i64,
}

fn totp_for(key: Vec<u8>, account: &str) -> Option<totp_rs::Totp> {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(TOTP_DIGITS as u8)
        .with_skew(0)
        .with_step_duration(TOTP_STEP_SECS as u64)
        .with_secret(key)
        .with_issuer(Some(TOTP_ISSUER))
        .with_account_name(account.replace(':', ""))
        .build()
        .ok()
}

/// The code of time step `step` (RFC 6238 §4: T = floor(time / X)).
pub fn totp_code(key: &[u8], step: i64) -> Option<String> {
    let t = totp_for(key.to_vec(), "x")?;
    Some(
        t.generate((step.max(0) * TOTP_STEP_SECS) as u64)
            .to_string(),
    )
}

/// `xxxxx-xxxxx` from an alphabet without look-alikes (≈ 49 bits).
fn recovery_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut out = String::with_capacity(11);
    let mut b = [0u8; 10];
    OsRng.fill_bytes(&mut b);
    for (i, x) in b.iter().enumerate() {
        if i == 5 {
            out.push('-');
        }
        // 256 % 31 != 0: a bias of under 1 % per character, irrelevant at this length.
        out.push(ALPHABET[*x as usize % ALPHABET.len()] as char);
    }
    out
}

fn normalize_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn recovery_hash(user: UserId, code: &str) -> Vec<u8> {
    secret::digest(&format!("recovery\0{user}\0{}", normalize_recovery(code)))
}

fn throttle_key(user: UserId) -> Vec<u8> {
    secret::digest(&format!("mfa\0{user}"))
}

impl Core {
    fn totp_key_of(&self, user: UserId, sealed: &[u8]) -> Option<Vec<u8>> {
        open(&self.data_key, &totp_aad(user), sealed)
    }

    /// Whether the user has a confirmed second factor (then sign-ins ask for it).
    pub async fn has_second_factor(&self, user: UserId) -> Result<bool, StoreError> {
        Ok(self.has_totp(user).await? || !self.store.passkeys_of(user).await?.is_empty())
    }

    /// Whether the user has a confirmed TOTP authenticator.
    pub async fn has_totp(&self, user: UserId) -> Result<bool, StoreError> {
        Ok(self
            .store
            .totp(user)
            .await?
            .is_some_and(|t| t.confirmed_at.is_some()))
    }

    /// Starts (or restarts) enrolment: a fresh key, stored sealed and unconfirmed. Refused
    /// when the user already has a confirmed authenticator (disable it first).
    pub async fn start_totp(&self, user: &User) -> Result<TotpEnrolment, ApiError> {
        if self.settings.data_key.is_none() {
            tracing::warn!(
                "no data_key_file configured: TOTP keys are sealed with a key kept in the \
                 database, so a copy of the database reveals them (see SECURITY.md)"
            );
        }
        let mut key = vec![0u8; 20];
        OsRng.fill_bytes(&mut key);
        let sealed = seal(&self.data_key, &totp_aad(user.id), &key).ok_or(ApiError::Internal)?;
        if !self
            .store
            .put_pending_totp(user.id, &sealed, self.now())
            .await?
        {
            return Err(ApiError::Conflict(
                "Two-factor sign-in is already on for this account.".into(),
            ));
        }
        enrolment(key, &user.email).ok_or(ApiError::Internal)
    }

    /// The pending enrolment's key again (the page is reloaded), if one is pending.
    pub async fn pending_totp(&self, user: &User) -> Result<Option<TotpEnrolment>, ApiError> {
        let Some(t) = self.store.totp(user.id).await? else {
            return Ok(None);
        };
        if t.confirmed_at.is_some() {
            return Ok(None);
        }
        let key = self
            .totp_key_of(user.id, &t.secret_enc)
            .ok_or(ApiError::Internal)?;
        Ok(enrolment(key, &user.email))
    }

    /// Confirms enrolment with a first code; returns the recovery codes (shown once).
    pub async fn confirm_totp(&self, user: &User, code: &str) -> Result<Vec<String>, ApiError> {
        let invalid = || {
            ApiError::invalid(
                "code",
                "That code is not valid. Check the time on your device and try again.",
            )
        };
        let t = self
            .store
            .totp(user.id)
            .await?
            .filter(|t| t.confirmed_at.is_none())
            .ok_or_else(|| ApiError::invalid("code", "Start the set-up again."))?;
        let key = self
            .totp_key_of(user.id, &t.secret_enc)
            .ok_or(ApiError::Internal)?;
        let step = self.matching_step(&key, code).ok_or_else(invalid)?;
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
        let hashes: Vec<Vec<u8>> = codes.iter().map(|c| recovery_hash(user.id, c)).collect();
        if !self
            .store
            .confirm_totp(user.id, step, self.now(), &hashes)
            .await?
        {
            return Err(invalid());
        }
        self.audit(AuditKind::MfaEnabled, Some(user.id), None, None, "totp")
            .await;
        Ok(codes)
    }

    /// For automation (`camgate user totp enable`): enrols and confirms at once; returns the
    /// key (base32), the otpauth URI and the recovery codes.
    pub async fn enable_totp_now(
        &self,
        user: &User,
    ) -> Result<(TotpEnrolment, Vec<String>), ApiError> {
        let e = self.start_totp(user).await?;
        let key = self
            .store
            .totp(user.id)
            .await?
            .and_then(|t| self.totp_key_of(user.id, &t.secret_enc))
            .ok_or(ApiError::Internal)?;
        // Confirmed with the previous step's code (within the drift): the current code stays
        // usable for a sign-in right away.
        let step = self.now() / TOTP_STEP_SECS - 1;
        let code = totp_code(&key, step).ok_or(ApiError::Internal)?;
        let codes = self.confirm_totp(user, &code).await?;
        Ok((e, codes))
    }

    /// Turns two-factor sign-in off: the user proves the password and a current code.
    pub async fn disable_totp(
        &self,
        user: &User,
        password: &str,
        code: &str,
        caller: &Caller,
    ) -> Result<(), ApiError> {
        // A password check like the login's: wrong passwords count towards the login throttle
        // (ASVS 2.2.1), so a stolen session is no unthrottled password oracle.
        if let Some(wait) = self
            .login_throttled(&user.email, caller.ip.as_deref())
            .await?
        {
            return Err(ApiError::invalid(
                "password",
                format!(
                    "Too many wrong passwords. Try again in {}.",
                    crate::throttle::human_wait(wait)
                ),
            ));
        }
        let ok = password.len() <= 1024
            && self
                .hasher
                .verify(Some(user.password_hash.clone()), password.to_string())
                .await
                .map_err(|_| ApiError::Unavailable { retry_after: 1 })?;
        if !ok {
            self.login_failed(&user.email, caller.ip.as_deref()).await;
            return Err(ApiError::invalid(
                "password",
                "The password is not correct.",
            ));
        }
        self.verify_second_factor(user, code, caller).await?;
        self.store.delete_totp(user.id).await?;
        self.audit(
            AuditKind::MfaDisabled,
            Some(user.id),
            None,
            caller.ip.as_deref(),
            "by the user",
        )
        .await;
        Ok(())
    }

    /// Operator reset (`camgate user mfa reset`): removes every second factor.
    pub async fn reset_second_factors(&self, user: &User) -> Result<bool, ApiError> {
        let had = self.store.delete_second_factors(user.id).await?;
        if had {
            self.audit(
                AuditKind::MfaDisabled,
                Some(user.id),
                None,
                None,
                "operator reset",
            )
            .await;
        }
        Ok(had)
    }

    pub async fn recovery_codes_left(&self, user: UserId) -> Result<i64, StoreError> {
        self.store.recovery_codes_left(user).await
    }

    /// The time step `code` matches within the allowed drift, if any (constant-time compare
    /// per candidate).
    fn matching_step(&self, key: &[u8], code: &str) -> Option<i64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != TOTP_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = self.now() / TOTP_STEP_SECS;
        let mut found = None;
        for step in (now - TOTP_SKEW)..=(now + TOTP_SKEW) {
            if let Some(c) = totp_code(key, step) {
                if secret::ct_eq(c.as_bytes(), code.as_bytes()) && found.is_none() {
                    found = Some(step);
                }
            }
        }
        found
    }

    /// Checks a second factor: a current TOTP code (never one accepted before) or an unused
    /// recovery code. Throttled per account; failures are audited.
    pub async fn verify_second_factor(
        &self,
        user: &User,
        code: &str,
        caller: &Caller,
    ) -> Result<SecondFactor, MfaError> {
        let keys = [(throttle_key(user.id), self.settings.mfa.max_failures)];
        let window = self.settings.mfa.window_secs;
        if let Some(retry_after) = self.throttle_wait(&keys, window).await? {
            return Err(MfaError::Throttled { retry_after });
        }
        if code.len() <= 64 {
            if let Some(t) = self.store.totp(user.id).await? {
                if t.confirmed_at.is_some() {
                    if let Some(key) = self.totp_key_of(user.id, &t.secret_enc) {
                        if let Some(step) = self.matching_step(&key, code) {
                            if self.store.accept_totp_step(user.id, step).await? {
                                return Ok(SecondFactor::Totp);
                            }
                        }
                    }
                }
            }
            let normalized = normalize_recovery(code);
            if normalized.len() == 10
                && self
                    .store
                    .use_recovery_code(user.id, &recovery_hash(user.id, code), self.now())
                    .await?
            {
                self.audit(
                    AuditKind::MfaRecoveryCodeUsed,
                    Some(user.id),
                    None,
                    caller.ip.as_deref(),
                    "",
                )
                .await;
                return Ok(SecondFactor::RecoveryCode);
            }
        }
        self.throttle_fail(&keys, window).await;
        self.audit(
            AuditKind::MfaFailed,
            Some(user.id),
            None,
            caller.ip.as_deref(),
            "",
        )
        .await;
        Err(MfaError::Invalid)
    }

    /// The cookie value of a password-verified sign-in waiting for its second factor.
    pub fn seal_pending_sign_in(&self, user: &User) -> Option<String> {
        let p = Pending {
            u: user.id,
            e: self.now() + PENDING_TTL_SECS,
            p: user.password_changed_at,
        };
        let json = serde_json::to_vec(&p).ok()?;
        seal(&self.data_key, PENDING_AAD, &json).map(|b| B64.encode(b))
    }

    /// The user of a pending sign-in cookie, if it is ours, unexpired, and still valid for the
    /// user (not disabled, password unchanged).
    pub async fn pending_sign_in(&self, cookie: &str) -> Result<Option<User>, StoreError> {
        if cookie.len() > 512 {
            return Ok(None);
        }
        let Some(p) = B64
            .decode(cookie)
            .ok()
            .and_then(|b| open(&self.data_key, PENDING_AAD, &b))
            .and_then(|j| serde_json::from_slice::<Pending>(&j).ok())
        else {
            return Ok(None);
        };
        if p.e <= self.now() {
            return Ok(None);
        }
        Ok(self
            .store
            .user_by_id(p.u)
            .await?
            .filter(|u| !u.disabled && u.password_changed_at == p.p))
    }
}

fn enrolment(key: Vec<u8>, email: &str) -> Option<TotpEnrolment> {
    let t = totp_for(key, email)?;
    let uri = t.to_url().ok()?;
    let qr = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = qr
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Some(TotpEnrolment {
        secret_base32: t.secret().to_base32(),
        otpauth_uri: uri,
        qr_svg: svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 Appendix B, SHA-1 key "12345678901234567890", 8 digits there; the last six
        // digits are the 6-digit codes.
        let key = b"12345678901234567890";
        for (time, code8) in [
            (59i64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
        ] {
            assert_eq!(
                totp_code(key, time / TOTP_STEP_SECS).unwrap(),
                &code8[2..],
                "at {time}"
            );
        }
    }

    #[test]
    fn sealing_is_bound_to_key_and_context() {
        let key = [7u8; 32];
        let s = seal(&key, b"a", b"secret").unwrap();
        assert_eq!(open(&key, b"a", &s).unwrap(), b"secret");
        assert!(open(&key, b"b", &s).is_none());
        assert!(open(&[8u8; 32], b"a", &s).is_none());
        let mut t = s.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(open(&key, b"a", &t).is_none());
        assert_ne!(
            seal(&key, b"a", b"secret").unwrap(),
            s,
            "fresh nonce each time"
        );
    }

    #[test]
    fn recovery_codes_normalise() {
        let c = recovery_code();
        assert_eq!(c.len(), 11);
        assert_eq!(
            recovery_hash(1, &c),
            recovery_hash(1, &c.to_uppercase().replace('-', " "))
        );
        assert_ne!(recovery_hash(1, &c), recovery_hash(2, &c));
    }
}
