//! The records the storage port reads and writes besides the domain model: new rows, stored
//! forms of requests and sessions, settings updates, queries. The bottom of core with
//! [`crate::model`]: it depends on nothing but the model, scopes and the clock, so the port and
//! every use case can import it without a cycle.

use crate::clock::Timestamp;
use crate::model::{
    Authn, CameraFields, CameraId, ClientPk, ClientRef, FamilyId, GrantType, NewAccessToken,
    NewFamily, NewRefreshToken, OidcClient, User, UserId,
};
use crate::scope::ScopeSet;

/// Use of one connection pool, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// `read` / `write` (SQLite) or `main` (PostgreSQL).
    pub name: &'static str,
    /// Open connections (idle + in use).
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// How many rows one call of `AdminStore::purge_expired` removed, per table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PurgeCounts {
    pub access_tokens: u64,
    pub refresh_tokens: u64,
    pub families: u64,
    pub pats: u64,
}

impl PurgeCounts {
    pub fn total(&self) -> u64 {
        self.access_tokens + self.refresh_tokens + self.families + self.pats
    }
}

/// A parked request as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedRequest {
    pub client_pk: ClientPk,
    pub request: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewAuthCode {
    pub hash: Vec<u8>,
    pub client_pk: ClientPk,
    pub user_id: UserId,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub scope: ScopeSet,
    pub code_challenge: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// OIDC Core §3.1.2.1: echoed in the id_token.
    pub nonce: Option<String>,
    pub authn: Option<Authn>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCode {
    pub client_pk: ClientPk,
    pub user_id: UserId,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub scope: ScopeSet,
    pub code_challenge: Option<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    pub replayed_at: Option<Timestamp>,
    pub family_id: Option<FamilyId>,
    pub nonce: Option<String>,
    pub authn: Option<Authn>,
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub hash: Vec<u8>,
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// RFC 8176 names of the factors the sign-in used, space-separated (`pwd`, `pwd otp`).
    pub amr: String,
}

/// A registered passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    pub id: i64,
    pub user_id: UserId,
    pub cred_id: Vec<u8>,
    pub name: String,
    /// webauthn-rs's `Passkey`, JSON (public material only).
    pub passkey: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// A WebAuthn ceremony between its two requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    /// The user it is for (`None`: a sign-in with a discoverable passkey, user unknown yet).
    pub user_id: Option<UserId>,
    /// `register`, `authenticate` (second factor) or `discover` (passkey alone).
    pub kind: String,
    /// webauthn-rs's ceremony state, JSON.
    pub state: String,
    pub expires_at: Timestamp,
}

/// A user's TOTP authenticator as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// The key, sealed (see `core::mfa`).
    pub secret_enc: Vec<u8>,
    pub created_at: Timestamp,
    /// `None` while enrolling.
    pub confirmed_at: Option<Timestamp>,
    /// The highest time step accepted so far.
    pub last_step: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
    pub expires_at: Timestamp,
    /// `None`: a session from before sessions recorded it (a password sign-in).
    pub amr: Option<String>,
}

/// The editable settings of an application (its kind and id never change).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientUpdate {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub grants: Vec<GrantType>,
    pub scopes: ScopeSet,
    pub profile: String,
    pub oidc: OidcClient,
}

/// A third-party application that may act for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizedApp {
    pub client_pk: ClientPk,
    pub client_id: String,
    pub name: String,
    /// The approved scope; for an app the user never saw an approval screen for (password
    /// grant), the scope of its latest token.
    pub scope: ScopeSet,
    /// When the user last approved it on the approval screen, if ever.
    pub approved_at: Option<Timestamp>,
    /// When it last obtained a token for the user (sign-in or refresh), if ever.
    pub last_used_at: Option<Timestamp>,
}

/// A signing key as the store holds it. `private_key` is the raw 32-byte Ed25519 seed or P-256
/// scalar, or an RSA key's PKCS#8 v1 DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    /// `access` (signs access tokens; one active) or `id` (id_tokens; one active per alg).
    pub purpose: String,
    pub private_key: Vec<u8>,
    pub created_at: i64,
    /// When it stopped signing (`None`: active).
    pub retired_at: Option<i64>,
    /// After this it no longer verifies (`None`: active).
    pub verify_until: Option<i64>,
}

/// What a resource route needs about the holder of a JWT, read in one query.
#[derive(Debug, Clone)]
pub struct JwtSubject {
    pub client: ClientRef,
    pub user: Option<User>,
    /// The `jti` is on the denylist (revoked or logged out).
    pub denied: bool,
}

/// The bounding box of a radius search: a latitude range and one or two longitude ranges
/// (none: every longitude).
#[derive(Debug, Clone, PartialEq)]
pub struct GeoBox {
    pub lat_min: f64,
    pub lat_max: f64,
    pub lng_ranges: Vec<(f64, f64)>,
}

impl GeoBox {
    /// The longitude ranges to query: [`GeoBox::lng_ranges`], or the whole circle when the
    /// box has none.
    pub fn lng_spans(&self) -> &[(f64, f64)] {
        if self.lng_ranges.is_empty() {
            &[(-180.0, 180.0)]
        } else {
            &self.lng_ranges
        }
    }
}

/// Where a camera may be, as a spatial index answers: bounds that contain its position (exact,
/// `min == max`, where the index keeps the coordinates as they are; SQLite's R*Tree keeps
/// 32-bit floats rounded outward, a cell of a metre or two).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoCell {
    pub id: CameraId,
    pub lat_min: f64,
    pub lat_max: f64,
    pub lng_min: f64,
    pub lng_max: f64,
}

/// A camera search as the store runs it. Every `Some` narrows the result (AND).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CameraQuery {
    /// Cameras of this owner are visible besides public ones; `None`: only public cameras.
    pub owner: Option<UserId>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub camera_type: Option<String>,
    pub source: Option<String>,
    pub lat_min: Option<f64>,
    pub lat_max: Option<f64>,
    pub lng_min: Option<f64>,
    pub lng_max: Option<f64>,
    pub resolution_w_min: Option<i64>,
    pub resolution_w_max: Option<i64>,
    pub resolution_h_min: Option<i64>,
    pub resolution_h_max: Option<i64>,
    pub framerate_min: Option<f64>,
    pub framerate_max: Option<f64>,
    pub is_video: Option<bool>,
    pub outdoors: Option<bool>,
    pub traffic: Option<bool>,
    pub inactive: Option<bool>,
    /// `created_at < added_before`
    pub added_before: Option<Timestamp>,
    /// `created_at >= added_after`
    pub added_after: Option<Timestamp>,
    pub updated_before: Option<Timestamp>,
    pub updated_after: Option<Timestamp>,
    pub bbox: Option<GeoBox>,
}

/// A camera to import, with its own timestamps.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCamera {
    pub fields: CameraFields,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A refresh-token rotation: claim `old` of family `family_id` at `now`, then issue the
/// successor pair.
#[derive(Debug, Clone, Copy)]
pub struct Rotation<'a> {
    pub family_id: FamilyId,
    pub old: &'a [u8],
    pub now: Timestamp,
    pub access: &'a NewAccessToken,
    pub refresh: &'a NewRefreshToken,
}

/// A new grant: a token family with its first access token and optional refresh token.
#[derive(Debug, Clone, Copy)]
pub struct NewGrant<'a> {
    pub family: &'a NewFamily,
    pub access: &'a NewAccessToken,
    pub refresh: Option<&'a NewRefreshToken>,
}

/// A login-throttle window: `(window_start, failures)`.
pub type Window = (Timestamp, i64);

/// A new device authorization (RFC 8628 §3.2): both codes as SHA-256 digests.
#[derive(Debug, Clone)]
pub struct NewDeviceCode {
    pub hash: Vec<u8>,
    pub user_code_hash: Vec<u8>,
    pub client_pk: ClientPk,
    pub scope: ScopeSet,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub interval_secs: i64,
    /// A camera pairing: what the device says of itself.
    pub pairing: Option<Pairing>,
}

/// A device asking to be paired as a camera (scope `camera_pair`): registered as a camera of
/// the user who approves it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pairing {
    pub name: String,
    pub serial: String,
    pub model: Option<String>,
    pub codec: Option<crate::model::VideoCodec>,
}

/// A device code as the store holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCode {
    pub hash: Vec<u8>,
    pub client_pk: ClientPk,
    pub scope: ScopeSet,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub interval_secs: i64,
    pub last_polled_at: Option<Timestamp>,
    /// Who decided, and how (`None` while pending).
    pub user_id: Option<UserId>,
    pub approved: Option<bool>,
    pub used_at: Option<Timestamp>,
    pub family_id: Option<FamilyId>,
    pub pairing: Option<Pairing>,
    /// The camera an approved pairing registered.
    pub camera_id: Option<crate::model::CameraId>,
}

/// An access token added to the family of a reusable refresh token (`refresh`, the presented
/// token's digest), if that refresh token is still live.
#[derive(Debug, Clone, Copy)]
pub struct AddAccess<'a> {
    pub family_id: FamilyId,
    pub refresh: &'a [u8],
    pub access: &'a NewAccessToken,
}

/// A user's decision on a device code, by the digest of its user code.
#[derive(Debug, Clone, Copy)]
pub struct DeviceDecision<'a> {
    pub user_hash: &'a [u8],
    pub user_id: UserId,
    pub approve: bool,
    /// The camera an approved pairing registered.
    pub camera_id: Option<crate::model::CameraId>,
    pub now: Timestamp,
}

/// A camera registered by pairing, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairedDevice {
    pub camera_id: crate::model::CameraId,
    pub serial: String,
    pub last_seen_at: Option<Timestamp>,
    /// A device token for the camera is live (unpairing revokes them).
    pub live: bool,
}

/// A pairing the user approved whose device has not fetched its tokens yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPairing {
    pub client_name: String,
    pub device_name: String,
    pub decided_at: Timestamp,
    pub expires_at: Timestamp,
}
