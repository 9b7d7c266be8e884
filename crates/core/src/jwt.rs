//! JWT access tokens (RFC 9068) for profiles with `access = "jwt"` (CAM2API, spec 002).
//!
//! - Format: JWS compact serialisation (RFC 7515 §3.1) with header `{alg, typ: "at+jwt", kid}`
//!   (RFC 9068 §2.1) and claims `iss, sub, aud, exp, iat, jti, client_id, scope`
//!   (RFC 9068 §2.2), plus `orig_iat` (djangorestframework-jwt's name for the original issue
//!   time, which CAM2API's `/refresh_token/` keeps) and `gty` (the grant the token descends
//!   from). No secret ever goes into a payload.
//! - Algorithms: Ed25519 (`EdDSA`, RFC 8037) by default, ES256 (RFC 7518 §3.4) selectable.
//!   Verification follows RFC 8725 §3.1: the algorithm comes from the *key* (found by `kid`),
//!   the header's `alg` must equal it, and only `EdDSA` / `ES256` exist here — no `none`, no
//!   HMAC, so a public key can never be used as an HMAC secret.
//! - Keys live in the database (`signing_keys`) so every node signs and verifies with the same
//!   set. Verification never touches the database: keys are cached in memory and reloaded only
//!   when an unknown `kid` shows up (a rotation on another node), at most every
//!   [`RELOAD_MIN_INTERVAL`]. Signing asks the store which key is active (one indexed query on
//!   the token endpoint, which hits the database anyway), so a rotation anywhere takes effect
//!   on every node at once.
//! - Rotation retires the active key: it stops signing but keeps verifying until every token it
//!   signed has expired and can no longer be refreshed (`verify_until`).
//! - Revocation and logout put the token's `jti` on a small denylist kept until `exp` (or, for
//!   a token that may still be refreshed, until the refresh window closes).
//!
//! The issuer (`iss`, also used as `aud`: this server is both authorization and resource
//! server) is the configured `issuer` when set, else the base URL of the current request
//! (`http://` + Host), derived once per request by the HTTP layer and handed down through
//! [`with_request_issuer`], identically at issue and at check time.

pub use crate::store::records::{JwtSubject, SigningKeyRecord};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use rand::{rngs::OsRng, RngCore};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, OAuthError, StoreError};
use crate::model::{AuditKind, Client, ClientRef, GrantType, UserId};
use crate::oauth::{Caller, TokenResponse};
use crate::principal::{CredentialKind, Principal};
use crate::profile::{AccessKind, Profile, RefreshMode};
use crate::scope::ScopeSet;
use crate::Core;

/// `typ` of an RFC 9068 access token.
pub const TYP: &str = "at+jwt";
/// Minimum time between two reloads of the key set triggered by unknown `kid`s.
pub const RELOAD_MIN_INTERVAL: Duration = Duration::from_millis(250);
/// Extra seconds a retired key keeps verifying beyond the longest token lifetime (clock skew
/// between nodes, a signer that read the active key just before the rotation committed).
pub const RETIRE_MARGIN_SECS: i64 = 60;

pub use crate::model::JwtAlg;

/// What a key signs. Access-token keys never sign id_tokens and the reverse (RFC 8725 §3.12:
/// one kind of JWT must not pass for another), on top of the `typ` check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// RFC 9068 access tokens: one active key, EdDSA or ES256.
    Access,
    /// OpenID Connect id_tokens: one active key per algorithm.
    Id,
}

impl KeyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Id => "id",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access" => Some(Self::Access),
            "id" => Some(Self::Id),
            _ => None,
        }
    }
}

// A handful of long-lived keys per node: the size difference of the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum KeyMaterial {
    Ed(ed25519_dalek::SigningKey, ed25519_dalek::VerifyingKey),
    Es(p256::ecdsa::SigningKey, p256::ecdsa::VerifyingKey),
    /// RSA-2048 (aws-lc-rs: constant-time private-key operations).
    Rsa(aws_lc_rs::rsa::KeyPair),
}

impl KeyMaterial {
    /// A fresh key. `None` only if the RSA generator fails (it draws from the OS).
    fn generate(alg: JwtAlg) -> Option<Self> {
        if alg == JwtAlg::Rs256 {
            let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).ok()?;
            return Some(Self::Rsa(kp));
        }
        loop {
            let mut b = [0u8; 32];
            OsRng.fill_bytes(&mut b);
            if let Some(k) = Self::from_bytes(alg, &b) {
                return Some(k);
            }
        }
    }

    fn from_bytes(alg: JwtAlg, bytes: &[u8]) -> Option<Self> {
        match alg {
            JwtAlg::EdDsa => {
                let seed: [u8; 32] = bytes.try_into().ok()?;
                let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
                let vk = sk.verifying_key();
                Some(Self::Ed(sk, vk))
            }
            JwtAlg::Es256 => {
                let sk = p256::ecdsa::SigningKey::from_slice(bytes).ok()?;
                let vk = *sk.verifying_key();
                Some(Self::Es(sk, vk))
            }
            JwtAlg::Rs256 => aws_lc_rs::rsa::KeyPair::from_pkcs8(bytes)
                .ok()
                .filter(|k| k.public_modulus_len() >= 256)
                .map(Self::Rsa),
        }
    }

    fn secret_bytes(&self) -> Vec<u8> {
        match self {
            Self::Ed(sk, _) => sk.to_bytes().to_vec(),
            Self::Es(sk, _) => sk.to_bytes().to_vec(),
            Self::Rsa(kp) => {
                use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
                let der: Result<Pkcs8V1Der, _> = kp.as_der();
                der.map(|d| d.as_ref().to_vec()).unwrap_or_default()
            }
        }
    }

    fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            Self::Ed(sk, _) => {
                use ed25519_dalek::Signer;
                sk.sign(msg).to_bytes().to_vec()
            }
            Self::Es(sk, _) => {
                use p256::ecdsa::signature::Signer;
                // JOSE form: R || S, 64 bytes (RFC 7518 §3.4), not DER.
                let sig: p256::ecdsa::Signature = sk.sign(msg);
                sig.to_bytes().to_vec()
            }
            Self::Rsa(kp) => {
                // RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3); the signature is as long as
                // the modulus. Signing fails only on an internal error: an empty signature
                // then verifies nowhere.
                let mut sig = vec![0u8; kp.public_modulus_len()];
                let rng = aws_lc_rs::rand::SystemRandom::new();
                match kp.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig) {
                    Ok(()) => sig,
                    Err(_) => Vec::new(),
                }
            }
        }
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match self {
            Self::Ed(_, vk) => match ed25519_dalek::Signature::from_slice(sig) {
                // verify_strict refuses small-order keys and non-canonical signatures.
                Ok(s) => vk.verify_strict(msg, &s).is_ok(),
                Err(_) => false,
            },
            Self::Es(_, vk) => {
                use p256::ecdsa::signature::Verifier;
                match p256::ecdsa::Signature::from_slice(sig) {
                    Ok(s) => vk.verify(msg, &s).is_ok(),
                    Err(_) => false,
                }
            }
            Self::Rsa(kp) => {
                use aws_lc_rs::signature::{
                    KeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
                };
                UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, kp.public_key().as_ref())
                    .verify(msg, sig)
                    .is_ok()
            }
        }
    }

    /// The public JWK members that define the key, in lexicographic order (RFC 7638 §3.2).
    fn public_members(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Ed(_, vk) => vec![
                ("crv", "Ed25519".into()),
                ("kty", "OKP".into()),
                ("x", B64.encode(vk.to_bytes())),
            ],
            Self::Es(_, vk) => {
                let p = vk.to_encoded_point(false);
                let x = p.x().map(|x| B64.encode(x)).unwrap_or_default();
                let y = p.y().map(|y| B64.encode(y)).unwrap_or_default();
                vec![
                    ("crv", "P-256".into()),
                    ("kty", "EC".into()),
                    ("x", x),
                    ("y", y),
                ]
            }
            Self::Rsa(kp) => {
                use aws_lc_rs::signature::KeyPair;
                // Big-endian, without leading zeros (RFC 7518 §6.3.1).
                let pk = kp.public_key();
                vec![
                    (
                        "e",
                        B64.encode(pk.exponent().big_endian_without_leading_zero()),
                    ),
                    ("kty", "RSA".into()),
                    (
                        "n",
                        B64.encode(pk.modulus().big_endian_without_leading_zero()),
                    ),
                ]
            }
        }
    }

    /// RFC 7638 JWK thumbprint (SHA-256, base64url): the key id.
    fn thumbprint(&self) -> String {
        let members = self.public_members();
        let mut canon = serde_json::Map::new();
        for (k, v) in members {
            canon.insert(k.to_string(), Value::String(v));
        }
        // serde_json's Map is ordered by key (no `preserve_order`), which is what RFC 7638 wants.
        let text = Value::Object(canon).to_string();
        B64.encode(Sha256::digest(text.as_bytes()))
    }
}

/// A key in the in-memory cache.
pub struct CachedKey {
    pub kid: String,
    pub alg: JwtAlg,
    pub purpose: KeyPurpose,
    material: KeyMaterial,
    /// The public key's RFC 7638 thumbprint, computed once: what a remembered verification
    /// is tied to (`signature_ok`).
    thumbprint: String,
    pub retired_at: Option<i64>,
    pub verify_until: Option<i64>,
}

impl CachedKey {
    /// The usable key of a stored record (`None`: unknown algorithm or bad key bytes).
    pub fn from_record(r: &SigningKeyRecord) -> Option<Self> {
        let alg = JwtAlg::parse_any(&r.alg)?;
        let material = KeyMaterial::from_bytes(alg, &r.private_key)?;
        Some(Self {
            kid: r.kid.clone(),
            alg,
            purpose: KeyPurpose::parse(&r.purpose)?,
            thumbprint: material.thumbprint(),
            material,
            retired_at: r.retired_at,
            verify_until: r.verify_until,
        })
    }

    /// A JWS signature over `signing_input` (JOSE form). The fuzz target `jwt` signs the
    /// headers and claims it invents with this, to get past the signature check.
    pub fn sign(&self, signing_input: &[u8]) -> Vec<u8> {
        self.material.sign(signing_input)
    }

    /// The public JWK (RFC 7517 §4) with `kid`, `alg`, `use`.
    pub fn jwk(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (k, v) in self.material.public_members() {
            m.insert(k.into(), Value::String(v));
        }
        m.insert("kid".into(), json!(self.kid));
        m.insert("alg".into(), json!(self.alg.as_str()));
        m.insert("use".into(), json!("sig"));
        Value::Object(m)
    }
}

/// The in-memory key cache shared by every request of one node.
#[derive(Default)]
pub struct KeyRing {
    keys: RwLock<HashMap<String, Arc<CachedKey>>>,
    last_reload: tokio::sync::Mutex<Option<Instant>>,
}

impl KeyRing {
    fn get(&self, kid: &str) -> Option<Arc<CachedKey>> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kid)
            .cloned()
    }

    fn replace(&self, records: &[SigningKeyRecord]) {
        let mut map = HashMap::new();
        for r in records {
            match CachedKey::from_record(r) {
                Some(k) => {
                    map.insert(r.kid.clone(), Arc::new(k));
                }
                None => tracing::error!(kid = %r.kid, "unusable signing key in the database"),
            }
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = map;
    }
}

tokio::task_local! {
    static REQUEST_ISSUER: Arc<str>;
}

/// Runs `f` with `issuer` as the issuer of JWTs issued and expected while it runs (the HTTP
/// layer wraps every request in this with the request's base URL).
pub async fn with_request_issuer<F: Future>(issuer: Arc<str>, f: F) -> F::Output {
    REQUEST_ISSUER.scope(issuer, f).await
}

/// True if `token` has the shape of a JWS compact serialisation (three base64url segments).
/// camgate's opaque tokens are alphanumeric with `_`, never with dots.
pub fn looks_like_jwt(token: &str) -> bool {
    token.len() > 20
        && token.bytes().filter(|&b| b == b'.').count() == 2
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'a str,
    typ: &'a str,
    kid: &'a str,
}

/// The claims of a camgate access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The user id for tokens of a user; the client id for client credentials (RFC 9068 §2.2).
    pub sub: String,
    /// A string or an array of strings (RFC 7519 §4.1.3).
    pub aud: Value,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(default)]
    pub scope: String,
    /// Original issue time: kept across `/refresh_token/`, so the refresh window does not slide.
    pub orig_iat: i64,
    /// The grant the token descends from (`client_credentials`, `password`, ...).
    pub gty: String,
    /// Token exchange: the dealer acting for `sub` (RFC 8693 §4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

/// The `act` claim (RFC 8693 §4.1): who acts for the subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    pub sub: String,
}

impl AccessClaims {
    fn user_id(&self) -> Option<UserId> {
        if self.gty == GrantType::ClientCredentials.as_str() {
            None
        } else {
            self.sub.parse().ok()
        }
    }

    /// The acting dealer of a token-exchange token; an `act` that names no user is an error.
    fn actor_id(&self) -> Result<Option<UserId>, ()> {
        match &self.act {
            None => Ok(None),
            Some(a) => a.sub.parse().map(Some).map_err(|_| ()),
        }
    }

    fn has_audience(&self, aud: &str) -> bool {
        match &self.aud {
            Value::String(s) => s == aud,
            Value::Array(v) => v.iter().any(|a| a.as_str() == Some(aud)),
            _ => false,
        }
    }
}

/// Why a JWT was refused. Each maps to 401 `invalid_token` on resource routes.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("Malformed token.")]
    Malformed,
    #[error("Unsupported token type or algorithm.")]
    Algorithm,
    #[error("Invalid token signature.")]
    Signature,
    #[error("Token has expired.")]
    Expired,
    #[error("Token was issued for another issuer or audience.")]
    Issuer,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<JwtError> for ApiError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::Store(s) => s.into(),
            other => ApiError::Unauthenticated(other.to_string()),
        }
    }
}

/// Whether verification checks `exp` (refresh and revocation accept expired tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exp {
    Check,
    Ignore,
}

/// The parts of a JWT read before its key is looked up (RFC 7515 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtHeader {
    pub alg: JwtAlg,
    pub kid: String,
}

/// Reads a JWS compact serialisation's header: exactly three segments, a JSON object header
/// with an allowed `alg`, the `at+jwt` type, no `crit`, and a `kid`. Pure: the fuzz target
/// `jwt` runs it, then [`check_jwt`], on any input.
pub fn parse_jwt_header(token: &str) -> Result<JwtHeader, JwtError> {
    if token.len() > 4096 {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header: Value = B64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    let header = header.as_object().ok_or(JwtError::Malformed)?;
    // RFC 8725 §3.1 / §3.11: an allow-list of algorithms and an explicit type.
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(JwtAlg::parse)
        .ok_or(JwtError::Algorithm)?;
    let typ_ok = header.get("typ").and_then(Value::as_str).is_some_and(|t| {
        t.eq_ignore_ascii_case(TYP) || t.eq_ignore_ascii_case("application/at+jwt")
    });
    // RFC 7515 §4.1.11: extensions we do not understand must be refused.
    if !typ_ok || header.contains_key("crit") {
        return Err(JwtError::Algorithm);
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(JwtError::Signature)?;
    Ok(JwtHeader {
        alg,
        kid: kid.to_string(),
    })
}

/// Verifies a JWT whose header [`parse_jwt_header`] accepted against the key its `kid` named:
/// the key decides the algorithm (RFC 8725 §3.1), the key must still verify, then the
/// signature, the claims, issuer and audience (RFC 9068 §4), and (with [`Exp::Check`]) expiry.
/// Pure.
pub fn check_jwt(
    token: &str,
    header: &JwtHeader,
    key: &CachedKey,
    now: i64,
    iss: Option<&str>,
    exp: Exp,
) -> Result<AccessClaims, JwtError> {
    // The key decides the algorithm; a header naming another one is refused. Only an
    // access-token key verifies an access token.
    if key.alg != header.alg || key.purpose != KeyPurpose::Access {
        return Err(JwtError::Algorithm);
    }
    if key.verify_until.is_some_and(|u| u <= now) {
        return Err(JwtError::Signature);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let signing_input = &token[..h.len() + 1 + p.len()];
    if !signature_ok(key, token, signing_input, s)? {
        return Err(JwtError::Signature);
    }
    let claims: AccessClaims = B64
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(JwtError::Malformed)?;
    let iss = iss.ok_or(JwtError::Issuer)?;
    if claims.iss != iss || !claims.has_audience(iss) {
        return Err(JwtError::Issuer);
    }
    if exp == Exp::Check && claims.exp <= now {
        return Err(JwtError::Expired);
    }
    Ok(claims)
}

/// Digests a thread keeps in `VERIFIED` before it starts over.
const VERIFIED_MAX: usize = 4096;

thread_local! {
    /// Signature checks that succeeded on this thread, by digest of the key's thumbprint and
    /// the whole token (signature included). Verifying an Ed25519 signature costs tens of
    /// microseconds, the digest about one, and a client presents the same access token at every
    /// request until it expires. What is remembered is only the outcome of a pure function of
    /// the key and the token's bytes: every other check (algorithm, the key's `verify_until`,
    /// issuer, audience, expiry, and the holder's state in the store) still runs at each
    /// request. Failures are not kept. Per thread, so no lock is shared between worker threads.
    static VERIFIED: std::cell::RefCell<std::collections::HashSet<[u8; 32]>> =
        std::cell::RefCell::new(std::collections::HashSet::new());
}

#[cfg(test)]
thread_local! {
    /// Signature checks this thread answered from `VERIFIED`.
    static REMEMBERED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Whether `sig_b64` is `key`'s signature over `signing_input` (the start of `token`).
fn signature_ok(
    key: &CachedKey,
    token: &str,
    signing_input: &str,
    sig_b64: &str,
) -> Result<bool, JwtError> {
    let mut d = Sha256::new();
    d.update((key.thumbprint.len() as u64).to_be_bytes());
    d.update(key.thumbprint.as_bytes());
    d.update(token.as_bytes());
    let d: [u8; 32] = d.finalize().into();
    if VERIFIED.with(|v| v.borrow().contains(&d)) {
        #[cfg(test)]
        REMEMBERED.with(|r| r.set(r.get() + 1));
        return Ok(true);
    }
    let sig = B64.decode(sig_b64).map_err(|_| JwtError::Malformed)?;
    if !key.material.verify(signing_input.as_bytes(), &sig) {
        return Ok(false);
    }
    VERIFIED.with(|v| {
        let mut v = v.borrow_mut();
        if v.len() >= VERIFIED_MAX {
            v.clear();
        }
        v.insert(d);
    });
    Ok(true)
}

/// A new signing key as the store keeps it.
fn new_key_record(
    alg: JwtAlg,
    purpose: KeyPurpose,
    now: i64,
) -> Result<SigningKeyRecord, StoreError> {
    let fresh = KeyMaterial::generate(alg)
        .ok_or_else(|| StoreError::Other("the RSA key generator failed".into()))?;
    Ok(SigningKeyRecord {
        kid: fresh.thumbprint(),
        alg: alg.as_str().into(),
        purpose: purpose.as_str().into(),
        private_key: fresh.secret_bytes(),
        created_at: now,
        retired_at: None,
        verify_until: None,
    })
}

/// Verifies a JWS signature of `key` over `signing_input` (the id_token hint check).
pub(crate) fn verify_signature(key: &CachedKey, signing_input: &[u8], sig: &[u8]) -> bool {
    key.material.verify(signing_input, sig)
}

pub(crate) fn b64_json(v: &impl Serialize) -> String {
    B64.encode(serde_json::to_vec(v).unwrap_or_default())
}

impl Core {
    /// The issuer for the current request: configured `issuer`, else the request's base URL.
    pub fn jwt_issuer(&self) -> Option<String> {
        if let Some(i) = &self.settings.issuer {
            return Some(i.clone());
        }
        REQUEST_ISSUER.try_with(|s| s.to_string()).ok()
    }

    /// The longest a token signed now can matter: its lifetime or its refresh window, over all
    /// JWT profiles. A retired key verifies this long after retirement (plus a margin).
    pub fn jwt_max_lifetime(&self) -> i64 {
        self.profiles
            .names()
            .filter_map(|n| self.profiles.get(n))
            .filter(|p| p.access == AccessKind::Jwt)
            .map(|p| p.access_ttl_secs.max(p.refresh_ttl_secs.unwrap_or(0)))
            .max()
            .unwrap_or(0)
    }

    /// At start: makes sure a signing key is active (of the configured algorithm if this
    /// creates the first one), and fills the cache. An active key of another algorithm is kept
    /// (rotating on every start would churn keys, and `keys rotate --alg` chooses explicitly);
    /// the configured algorithm applies from the next rotation.
    pub(crate) async fn init_signing_keys(&self) -> Result<(), StoreError> {
        let record = new_key_record(self.settings.jwt_alg, KeyPurpose::Access, self.now())?;
        self.store.insert_signing_key_if_none(&record).await?;
        self.reload_keys().await
    }

    async fn reload_keys(&self) -> Result<(), StoreError> {
        let records = self.store.signing_keys(self.now()).await?;
        self.keys.replace(&records);
        Ok(())
    }

    /// Rotation (`camgate keys rotate`): a new key becomes active; the previous ones stop
    /// signing and keep verifying for [`Core::jwt_max_lifetime`] + a margin. Returns the new kid.
    pub async fn rotate_signing_key(&self, alg: Option<JwtAlg>) -> Result<String, StoreError> {
        let alg = alg.unwrap_or(self.settings.jwt_alg);
        if alg == JwtAlg::Rs256 {
            return self.rotate_id_token_key(alg).await;
        }
        let now = self.now();
        let record = new_key_record(alg, KeyPurpose::Access, now)?;
        let until = now + self.jwt_max_lifetime() + RETIRE_MARGIN_SECS;
        self.store.rotate_signing_key(&record, now, until).await?;
        self.reload_keys().await?;
        Ok(record.kid)
    }

    /// Rotation of the id_token key of one algorithm (`camgate keys rotate --id-token`). The
    /// retired key verifies as long as an id_token it signed may come back as an
    /// `id_token_hint` (its lifetime, or a browser session's, whichever is longer).
    pub async fn rotate_id_token_key(&self, alg: JwtAlg) -> Result<String, StoreError> {
        let now = self.now();
        let record = new_key_record(alg, KeyPurpose::Id, now)?;
        let until = now + self.id_token_key_lifetime() + RETIRE_MARGIN_SECS;
        self.store.rotate_signing_key(&record, now, until).await?;
        self.reload_keys().await?;
        Ok(record.kid)
    }

    /// How long an id_token signed now can matter (see [`Core::rotate_id_token_key`]).
    pub fn id_token_key_lifetime(&self) -> i64 {
        self.settings
            .oidc
            .id_token_ttl_secs
            .max(self.settings.authz.session.absolute_timeout_secs)
    }

    /// The active id_token key of `alg`, made on first use (race-safe: one active key per
    /// algorithm, whichever node inserts first), so a server without OIDC clients never pays
    /// for an RSA key.
    pub(crate) async fn id_token_key(&self, alg: JwtAlg) -> Result<Arc<CachedKey>, OAuthError> {
        let kid = match self.store.active_id_signing_kid(alg.as_str()).await? {
            Some(k) => k,
            None => {
                let record = new_key_record(alg, KeyPurpose::Id, self.now())?;
                self.store.insert_signing_key_if_none(&record).await?;
                self.reload_keys().await?;
                self.store
                    .active_id_signing_kid(alg.as_str())
                    .await?
                    .ok_or_else(OAuthError::server_error)?
            }
        };
        self.key_for(&kid).await?.ok_or_else(|| {
            tracing::error!(%kid, "active id_token key is not loadable");
            OAuthError::server_error()
        })
    }

    /// A key by kid for verifying something camgate signed (an `id_token_hint`).
    pub(crate) async fn verifying_key(
        &self,
        kid: &str,
    ) -> Result<Option<Arc<CachedKey>>, StoreError> {
        self.key_for(kid).await
    }

    /// A key by kid: from the cache, else (a rotation elsewhere) from the store, rate-limited.
    pub(crate) async fn key_for(&self, kid: &str) -> Result<Option<Arc<CachedKey>>, StoreError> {
        if let Some(k) = self.keys.get(kid) {
            return Ok(Some(k));
        }
        if kid.is_empty() || kid.len() > 128 {
            return Ok(None);
        }
        let mut last = self.keys.last_reload.lock().await;
        // Another request may have reloaded while we waited for the lock.
        if let Some(k) = self.keys.get(kid) {
            return Ok(Some(k));
        }
        if let Some(t) = *last {
            let since = t.elapsed();
            if since < RELOAD_MIN_INTERVAL {
                tokio::time::sleep(RELOAD_MIN_INTERVAL - since).await;
            }
        }
        self.reload_keys().await?;
        *last = Some(Instant::now());
        Ok(self.keys.get(kid))
    }

    /// The public keys that still verify (`/.well-known/jwks.json`, RFC 7517 §5).
    pub async fn jwks(&self) -> Result<Value, StoreError> {
        // The RS256 id_token key is made here at the latest, so a relying party that caches
        // the key set before its first sign-in already has it (OIDC Core §10.1.1).
        if self
            .store
            .active_id_signing_kid(JwtAlg::Rs256.as_str())
            .await?
            .is_none()
        {
            let record = new_key_record(JwtAlg::Rs256, KeyPurpose::Id, self.now())?;
            self.store.insert_signing_key_if_none(&record).await?;
        }
        self.reload_keys().await?;
        let now = self.now();
        let mut keys: Vec<Arc<CachedKey>> = self
            .keys
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|k| k.verify_until.is_none_or(|u| u > now))
            .cloned()
            .collect();
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        Ok(json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}))
    }

    /// The active access-token signing key (media tokens are signed with it too).
    pub(crate) async fn active_access_key(&self) -> Result<Arc<CachedKey>, OAuthError> {
        self.active_key().await
    }

    async fn active_key(&self) -> Result<Arc<CachedKey>, OAuthError> {
        let kid = match self.store.active_signing_kid().await? {
            Some(k) => k,
            None => {
                self.init_signing_keys().await?;
                self.store
                    .active_signing_kid()
                    .await?
                    .ok_or_else(OAuthError::server_error)?
            }
        };
        self.key_for(&kid).await?.ok_or_else(|| {
            tracing::error!(%kid, "active signing key is not loadable");
            OAuthError::server_error()
        })
    }

    /// Signs a new access token. `orig_iat`: the original issue time when re-signing.
    async fn sign_access_token(
        &self,
        client: &ClientRef,
        user_id: Option<UserId>,
        gty: &str,
        scope: ScopeSet,
        orig_iat: Option<i64>,
        profile: &Profile,
    ) -> Result<String, OAuthError> {
        self.sign_access_token_as(
            client,
            user_id,
            gty,
            scope,
            orig_iat,
            profile.access_ttl_secs,
            None,
        )
        .await
    }

    /// A dealer's JWT for a customer (token exchange): `act` names the dealer; `ttl` is short.
    pub(crate) async fn sign_act_token(
        &self,
        client: &ClientRef,
        customer: UserId,
        dealer: UserId,
        scope: ScopeSet,
        ttl: i64,
    ) -> Result<String, OAuthError> {
        let gty = GrantType::TokenExchange.as_str();
        self.sign_access_token_as(client, Some(customer), gty, scope, None, ttl, Some(dealer))
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn sign_access_token_as(
        &self,
        client: &ClientRef,
        user_id: Option<UserId>,
        gty: &str,
        scope: ScopeSet,
        orig_iat: Option<i64>,
        ttl: i64,
        act: Option<UserId>,
    ) -> Result<String, OAuthError> {
        let iss = self.jwt_issuer().ok_or_else(|| {
            tracing::error!("no issuer known: set `issuer` in the configuration");
            OAuthError::server_error()
        })?;
        let key = self.active_key().await?;
        let now = self.now();
        let mut jti = [0u8; 16];
        OsRng.fill_bytes(&mut jti);
        let claims = AccessClaims {
            aud: Value::String(iss.clone()),
            iss,
            sub: match user_id {
                Some(u) => u.to_string(),
                None => client.client_id.clone(),
            },
            exp: now + ttl,
            iat: now,
            jti: B64.encode(jti),
            client_id: client.client_id.clone(),
            scope: scope.to_scope_string(),
            orig_iat: orig_iat.unwrap_or(now),
            gty: gty.to_string(),
            act: act.map(|d| Actor { sub: d.to_string() }),
        };
        let header = Header {
            alg: key.alg.as_str(),
            typ: TYP,
            kid: &key.kid,
        };
        let signing_input = format!("{}.{}", b64_json(&header), b64_json(&claims));
        let sig = key.material.sign(signing_input.as_bytes());
        Ok(format!("{signing_input}.{}", B64.encode(sig)))
    }

    /// Issues a JWT access token for a grant (no token family, no refresh token: JWT profiles
    /// refresh by re-signing, `RefreshMode::Resign`).
    pub(crate) async fn issue_jwt(
        &self,
        client: &Client,
        user_id: Option<UserId>,
        grant: GrantType,
        scope: ScopeSet,
        caller: &Caller,
        profile: &Profile,
    ) -> Result<TokenResponse, OAuthError> {
        let cref = ClientRef {
            pk: client.pk,
            client_id: client.client_id.clone(),
            owner_id: client.owner_id,
            profile: client.profile.clone(),
        };
        let token = self
            .sign_access_token(&cref, user_id, grant.as_str(), scope, None, profile)
            .await?;
        self.audit(
            AuditKind::TokenIssued,
            user_id,
            Some(&client.client_id),
            caller.ip.as_deref(),
            format!("{} (jwt)", grant.as_str()),
        )
        .await;
        Ok(TokenResponse {
            access_token: token,
            token_type: profile.token_type.clone(),
            expires_in: profile.access_ttl_secs,
            refresh_token: None,
            scope: scope.to_scope_string(),
            id_token: None,
            issued_token_type: None,
        })
    }

    /// Verifies a JWT's structure, algorithm, signature, issuer and audience, and (unless
    /// told otherwise) expiry. Never touches the database unless the `kid` is unknown.
    pub async fn verify_jwt(&self, token: &str, exp: Exp) -> Result<AccessClaims, JwtError> {
        let header = parse_jwt_header(token)?;
        let key = self
            .key_for(&header.kid)
            .await?
            .ok_or(JwtError::Signature)?;
        let iss = self.jwt_issuer();
        check_jwt(token, &header, &key, self.now(), iss.as_deref(), exp)
    }

    /// Resource-route authentication of a JWT (`Authorization: JWT …` or `Bearer …`).
    pub(crate) async fn authenticate_jwt(&self, token: &str) -> Result<Principal, ApiError> {
        let claims = self.verify_jwt(token, Exp::Check).await?;
        let invalid = || ApiError::Unauthenticated("Invalid token.".into());
        let uid = claims.user_id();
        let subject = self
            .store
            .jwt_subject(&claims.client_id, uid, &claims.jti)
            .await?
            .ok_or_else(invalid)?;
        check_subject(&subject, &claims).map_err(|_| invalid())?;
        let mut p = Principal {
            camera: None,
            actor: claims.actor_id().map_err(|_| invalid())?,
            user: subject.user,
            client: Some(subject.client),
            scopes: ScopeSet::parse(&claims.scope).unwrap_or_default(),
            credential: CredentialKind::Jwt {
                jti: claims.jti,
                expires_at: claims.exp,
            },
        };
        self.check_actor(&mut p).await?;
        Ok(p)
    }

    /// How long a jti must stay denied: until the token expires or, if later, until it can
    /// no longer be refreshed.
    fn deny_until(&self, claims: &AccessClaims, profile: Option<&str>) -> i64 {
        let window = profile
            .and_then(|p| self.profiles.get(p))
            .filter(|p| p.refresh == RefreshMode::Resign)
            .and_then(|p| p.refresh_ttl_secs)
            .unwrap_or(0);
        claims.exp.max(claims.orig_iat + window)
    }

    /// Logout of a JWT (spec 003's `DELETE …/tokens/current`): denylists its jti.
    pub(crate) async fn deny_principal_jwt(
        &self,
        p: &Principal,
        jti: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let profile = p.client.as_ref().map(|c| c.profile.as_str());
        let window = profile
            .and_then(|n| self.profiles.get(n))
            .filter(|p| p.refresh == RefreshMode::Resign)
            .and_then(|p| p.refresh_ttl_secs)
            .unwrap_or(0);
        // The token's orig_iat is not in the principal; denying until exp + window covers it.
        self.store
            .deny_jwt(jti, expires_at.max(self.now()) + window)
            .await
    }

    /// RFC 7009 for a JWT: denylists it if it belongs to `client` (any other case: silently
    /// nothing, §2.2). An expired token is still denied, so it can no longer be refreshed.
    pub(crate) async fn revoke_jwt(
        &self,
        client: &Client,
        token: &str,
        ip: Option<&str>,
    ) -> Result<(), OAuthError> {
        let claims = match self.verify_jwt(token, Exp::Ignore).await {
            Ok(c) => c,
            Err(JwtError::Store(e)) => return Err(e.into()),
            Err(_) => return Ok(()),
        };
        if claims.client_id != client.client_id {
            return Ok(());
        }
        let until = self.deny_until(&claims, Some(&client.profile));
        self.store.deny_jwt(&claims.jti, until).await?;
        self.audit(
            AuditKind::TokenRevoked,
            claims.user_id(),
            Some(&client.client_id),
            ip,
            "jwt access token",
        )
        .await;
        Ok(())
    }

    /// RFC 7662 for a JWT: the claims if it is live.
    pub(crate) async fn introspect_jwt(
        &self,
        token: &str,
    ) -> Result<Option<crate::model::Introspection>, OAuthError> {
        let claims = match self.verify_jwt(token, Exp::Check).await {
            Ok(c) => c,
            Err(JwtError::Store(e)) => return Err(e.into()),
            Err(_) => return Ok(None),
        };
        let Some(subject) = self
            .store
            .jwt_subject(&claims.client_id, claims.user_id(), &claims.jti)
            .await?
        else {
            return Ok(None);
        };
        if check_subject(&subject, &claims).is_err() {
            return Ok(None);
        }
        let mut scope = ScopeSet::parse(&claims.scope).unwrap_or_default();
        let Ok(actor) = claims.actor_id() else {
            return Ok(None);
        };
        if let (Some(dealer), Some(customer)) = (actor, claims.user_id()) {
            match self.act_level(dealer, customer).await? {
                Some(level) => scope = crate::dealers::cap_scope(scope, level),
                None => return Ok(None),
            }
        }
        Ok(Some(crate::model::Introspection {
            act: actor.map(|d| d.to_string()),
            scope,
            client_id: claims.client_id.clone(),
            username: subject.user.as_ref().map(|u| u.email.clone()),
            sub: Some(claims.sub.clone()),
            token_type: "access_token",
            exp: Some(claims.exp),
            iat: claims.iat,
        }))
    }

    /// CAM2API `POST /refresh_token/` (spec 002 §3): a new JWT for a presented one, which may
    /// already have expired, as long as the refresh window (the profile's `refresh_ttl_secs`,
    /// 1 day for `cam2`) counted from the *original* issue time has not closed. The new token
    /// keeps that original time (`orig_iat`), so the window does not slide.
    pub async fn cam2_refresh(
        &self,
        token: &str,
        caller: &Caller,
    ) -> Result<TokenResponse, OAuthError> {
        let invalid = || OAuthError::invalid_grant("The token is invalid or has been revoked.");
        let claims = match self.verify_jwt(token, Exp::Ignore).await {
            Ok(c) => c,
            Err(JwtError::Store(e)) => return Err(e.into()),
            Err(_) => return Err(invalid()),
        };
        let uid = claims.user_id();
        let subject = self
            .store
            .jwt_subject(&claims.client_id, uid, &claims.jti)
            .await?
            .ok_or_else(invalid)?;
        check_subject(&subject, &claims).map_err(|_| invalid())?;
        // A dealer's token for a customer is short-lived on purpose: exchange again instead.
        if claims.act.is_some() {
            return Err(OAuthError::invalid_grant(
                "A token obtained by token exchange cannot be refreshed.",
            ));
        }
        let profile = self
            .profiles
            .get(&subject.client.profile)
            .filter(|p| p.access == AccessKind::Jwt && p.refresh == RefreshMode::Resign)
            .ok_or_else(|| {
                OAuthError::invalid_grant("Tokens of this client cannot be refreshed here.")
            })?
            .clone();
        let now = self.now();
        if let Some(window) = profile.refresh_ttl_secs {
            let closes = claims.orig_iat.saturating_add(window);
            if now >= closes {
                return Err(OAuthError::invalid_grant(format!(
                    "Refresh has expired: a token can be refreshed for {window} seconds after it was \
                     first issued (until {closes}, Unix time); request a new token with client_id \
                     and client_secret."
                )));
            }
        }
        let scope = ScopeSet::parse(&claims.scope).unwrap_or_default();
        let new = self
            .sign_access_token(
                &subject.client,
                uid,
                &claims.gty,
                scope,
                Some(claims.orig_iat),
                &profile,
            )
            .await?;
        self.audit(
            AuditKind::TokenRefreshed,
            uid,
            Some(&claims.client_id),
            caller.ip.as_deref(),
            "jwt re-signed",
        )
        .await;
        Ok(TokenResponse {
            access_token: new,
            token_type: profile.token_type.clone(),
            expires_in: profile.access_ttl_secs,
            refresh_token: None,
            scope: scope.to_scope_string(),
            id_token: None,
            issued_token_type: None,
        })
    }
}

/// Denylisted, a disabled user, or a token issued before the user's last password change.
fn check_subject(s: &JwtSubject, claims: &AccessClaims) -> Result<(), ()> {
    if s.denied {
        return Err(());
    }
    match (claims.user_id(), &s.user) {
        (None, _) => Ok(()),
        (Some(_), Some(u)) if !u.disabled && claims.iat >= u.password_changed_at => Ok(()),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sign_and_verify_and_round_trip() {
        for alg in [JwtAlg::EdDsa, JwtAlg::Es256, JwtAlg::Rs256] {
            let k = KeyMaterial::generate(alg).unwrap();
            let sig = k.sign(b"hello");
            assert!(k.verify(b"hello", &sig));
            assert!(!k.verify(b"hellp", &sig));
            let again = KeyMaterial::from_bytes(alg, &k.secret_bytes()).unwrap();
            assert!(again.verify(b"hello", &sig));
            assert_eq!(again.thumbprint(), k.thumbprint());
            assert_eq!(k.thumbprint().len(), 43);
        }
    }

    #[test]
    fn rfc_8037_thumbprint() {
        // RFC 8037 appendix A.3: the Ed25519 key of A.1/A.2 has this thumbprint.
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap();
        let k = KeyMaterial::from_bytes(JwtAlg::EdDsa, &seed).unwrap();
        assert_eq!(
            k.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn rsa_jwk_members_and_thumbprint() {
        let k = KeyMaterial::generate(JwtAlg::Rs256).unwrap();
        let m = k.public_members();
        assert_eq!(
            m.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            ["e", "kty", "n"]
        );
        // e = 65537 = 0x010001; n is 2048 bits with no leading zero byte.
        assert_eq!(m[0].1, "AQAB");
        let n = B64.decode(&m[2].1).unwrap();
        assert_eq!(n.len(), 256);
        assert_ne!(n[0], 0);
        // RFC 7638 §3.3: the thumbprint hashes exactly {"e":…,"kty":"RSA","n":…}.
        let canon = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, m[0].1, m[2].1);
        assert_eq!(k.thumbprint(), B64.encode(Sha256::digest(canon.as_bytes())));
        // A corrupted PKCS#8 document is not a key.
        assert!(KeyMaterial::from_bytes(JwtAlg::Rs256, &k.secret_bytes()[..100]).is_none());
    }

    /// An access token signed by `key` for issuer `iss`.
    fn signed(key: &CachedKey, iss: &str, exp: i64) -> String {
        let header = b64_json(&json!({"alg": key.alg.as_str(), "kid": key.kid, "typ": "at+jwt"}));
        let claims = b64_json(&json!({
            "iss": iss, "sub": "7", "aud": iss, "exp": exp, "iat": 1, "jti": "j1",
            "client_id": "c", "scope": "read", "orig_iat": 1, "gty": "password",
        }));
        let input = format!("{header}.{claims}");
        let sig = B64.encode(key.sign(input.as_bytes()));
        format!("{input}.{sig}")
    }

    fn remembered() -> u64 {
        REMEMBERED.with(|r| r.get())
    }

    /// A signature verified once is not verified again on the same thread, and what is
    /// remembered is tied to the exact token and key: a changed signature, another key under
    /// the same kid, an expired token or a retired key are still refused.
    #[test]
    fn a_verified_signature_is_remembered_for_that_token_and_key_only() {
        let record = new_key_record(JwtAlg::EdDsa, KeyPurpose::Access, 100).unwrap();
        let key = CachedKey::from_record(&record).unwrap();
        let iss = "https://cg.example";
        let token = signed(&key, iss, 1_000);
        let header = parse_jwt_header(&token).unwrap();
        let check = |t: &str, k: &CachedKey, now: i64| {
            check_jwt(
                t,
                &parse_jwt_header(t).unwrap(),
                k,
                now,
                Some(iss),
                Exp::Check,
            )
        };
        let before = remembered();
        assert_eq!(check(&token, &key, 500).unwrap().jti, "j1");
        assert_eq!(remembered(), before, "the first check verifies");
        assert_eq!(check(&token, &key, 500).unwrap().sub, "7");
        assert_eq!(remembered(), before + 1, "the second is remembered");

        // The signature's first character changed (all six of its bits are signature bits;
        // the last character's low bits are padding): verified, and refused.
        let at = token.rfind('.').unwrap() + 1;
        let first = &token[at..=at];
        let forged = format!(
            "{}{}{}",
            &token[..at],
            if first == "A" { "B" } else { "A" },
            &token[at + 1..]
        );
        assert!(matches!(
            check(&forged, &key, 500),
            Err(JwtError::Signature)
        ));

        // Another key given the same kid: the remembered check does not carry over.
        let mut other = new_key_record(JwtAlg::EdDsa, KeyPurpose::Access, 100).unwrap();
        other.kid = record.kid.clone();
        let other = CachedKey::from_record(&other).unwrap();
        assert!(matches!(
            check(&token, &other, 500),
            Err(JwtError::Signature)
        ));

        // Expiry and the key's end of verification are checked every time.
        assert!(matches!(check(&token, &key, 1_000), Err(JwtError::Expired)));
        let mut retiring = record.clone();
        retiring.verify_until = Some(400);
        let retiring = CachedKey::from_record(&retiring).unwrap();
        assert!(matches!(
            check_jwt(&token, &header, &retiring, 500, Some(iss), Exp::Check),
            Err(JwtError::Signature)
        ));
        // A different issuer for the same token: refused although its signature is known.
        assert!(matches!(
            check_jwt(
                &token,
                &header,
                &key,
                500,
                Some("https://other.example"),
                Exp::Check
            ),
            Err(JwtError::Issuer)
        ));
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2ln"));
        assert!(!looks_like_jwt("cgat_abcdefghijklmnopqrstuvwxyz012345"));
        assert!(!looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt(
            "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2ln.x"
        ));
    }
}
