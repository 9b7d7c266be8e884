//! The data model (DESIGN.md §2). Plain data; behaviour lives in the use-case modules.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::scope::ScopeSet;

pub type UserId = i64;
pub type ClientPk = i64;
pub type FamilyId = i64;
pub type CameraId = i64;

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: Timestamp,
    pub password_changed_at: Timestamp,
    /// Whether the email address is known to be the user's (OIDC Core §5.1
    /// `email_verified`). Set by an administrator (`user add --email-verified`).
    pub email_verified: bool,
    /// A dealer: creates customer accounts and may act for them (token exchange).
    pub is_dealer: bool,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub password_hash: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
    pub is_admin: bool,
    pub created_at: Timestamp,
    pub email_verified: bool,
}

/// Normalised login name: emails are unique case-insensitively.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    Confidential,
    Public,
}

/// How a client's secret is stored. Generated secrets are high-entropy, so a SHA-256 digest
/// suffices and verification costs microseconds; imported (possibly human-chosen) secrets are
/// argon2id PHC strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretHash {
    None,
    Sha256(Vec<u8>),
    Argon2(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    Password,
    RefreshToken,
    ClientCredentials,
    /// The device authorization grant (RFC 8628 §3.4).
    DeviceCode,
    /// OAuth 2.0 Token Exchange (RFC 8693 §2.1): a dealer acting for a customer.
    TokenExchange,
}

impl GrantType {
    pub const ALL: [GrantType; 6] = [
        GrantType::AuthorizationCode,
        GrantType::Password,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::DeviceCode,
        GrantType::TokenExchange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::Password => "password",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
        }
    }

    /// The grant's name as the token endpoint takes it; the short names `device_code` and
    /// `token_exchange` are accepted too (CLI, configuration).
    pub fn parse(s: &str) -> Option<GrantType> {
        match s {
            "device_code" => return Some(Self::DeviceCode),
            "token_exchange" => return Some(Self::TokenExchange),
            _ => {}
        }
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub pk: ClientPk,
    pub client_id: String,
    pub secret: SecretHash,
    pub name: String,
    pub owner_id: Option<UserId>,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    pub grants: Vec<GrantType>,
    pub scopes: ScopeSet,
    pub profile: String,
    pub created_at: Timestamp,
    pub oidc: OidcClient,
    /// The password grant works for users with a second factor (legacy devices; audited).
    pub allow_password_without_mfa: bool,
}

/// Signature algorithms camgate signs JWTs with (RFC 7518 §3.1 names). Access tokens use
/// EdDSA or ES256 ([`JwtAlg::parse`]); id_tokens any of the three ([`JwtAlg::parse_any`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum JwtAlg {
    /// Ed25519 (RFC 8037 §3.1).
    #[default]
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// ECDSA P-256 with SHA-256 (RFC 7518 §3.4).
    #[serde(rename = "ES256")]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3): for id_tokens only, the algorithm every
    /// OpenID relying party must accept (OIDC Core §15.1).
    #[serde(rename = "RS256")]
    Rs256,
}

impl JwtAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    /// The algorithms of access tokens, by exact, case-sensitive name (RFC 7515 §4.1.1).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EdDSA" => Some(Self::EdDsa),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    /// Any algorithm camgate signs with (id_tokens).
    pub fn parse_any(s: &str) -> Option<Self> {
        match s {
            "RS256" => Some(Self::Rs256),
            other => Self::parse(other),
        }
    }
}

/// Whose `sub` a client sees (OIDC Core §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectType {
    /// The same identifier for every client.
    #[default]
    Public,
    /// A different identifier per sector (the client's redirect host or sector identifier).
    Pairwise,
}

impl SubjectType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Pairwise => "pairwise",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "pairwise" => Some(Self::Pairwise),
            _ => None,
        }
    }
}

/// A client's OpenID Connect settings (stored as one JSON column; absent members default).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct OidcClient {
    /// Where RP-initiated logout may return to, exact strings (RP-Initiated Logout 1.0 §3).
    pub post_logout_redirect_uris: Vec<String>,
    pub subject_type: SubjectType,
    /// The sector of pairwise identifiers (OIDC Core §8.1); default: the redirect URIs' host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sector_identifier: Option<String>,
    /// How its id_tokens are signed (`id_token_signed_response_alg`); RS256 by default.
    pub id_token_alg: IdTokenAlg,
}

/// [`JwtAlg`] with RS256 as the default, for id_tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdTokenAlg(pub JwtAlg);

impl Default for IdTokenAlg {
    fn default() -> Self {
        Self(JwtAlg::Rs256)
    }
}

/// How a user signed in, as an id_token states it: when (OIDC Core §2 `auth_time`) and with
/// what (RFC 8176 `amr` values, space-separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authn {
    pub auth_time: Timestamp,
    pub amr: String,
}

impl Client {
    pub fn allows_grant(&self, g: GrantType) -> bool {
        self.grants.contains(&g)
    }
}

#[derive(Debug, Clone)]
pub struct NewClient {
    pub client_id: String,
    pub secret: SecretHash,
    pub name: String,
    pub owner_id: Option<UserId>,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    pub grants: Vec<GrantType>,
    pub scopes: ScopeSet,
    pub profile: String,
    pub created_at: Timestamp,
    pub oidc: OidcClient,
    pub allow_password_without_mfa: bool,
}

/// One login (one grant): the root of a chain of refresh and access tokens.
#[derive(Debug, Clone)]
pub struct NewFamily {
    pub user_id: Option<UserId>,
    pub client_pk: ClientPk,
    pub grant_type: GrantType,
    pub created_at: Timestamp,
    /// A grant with the openid scope: how the user signed in (its refreshes carry id_tokens).
    pub authn: Option<Authn>,
    /// A token-exchange family: the dealer acting for `user_id` (RFC 8693 §4.1 `act`).
    pub actor_id: Option<UserId>,
}

#[derive(Debug, Clone)]
pub struct NewAccessToken {
    pub hash: Vec<u8>,
    pub scope: ScopeSet,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub hash: Vec<u8>,
    pub scope: ScopeSet,
    pub created_at: Timestamp,
    /// `None`: valid until revoked (CameraManager: "until the user logs out").
    pub expires_at: Option<Timestamp>,
}

/// The owner of a token as the resource server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRef {
    pub pk: ClientPk,
    pub client_id: String,
    pub owner_id: Option<UserId>,
    pub profile: String,
}

/// An access token looked up by digest, with what a resource route needs.
#[derive(Debug, Clone)]
pub struct AccessTokenInfo {
    pub family_id: FamilyId,
    pub scope: ScopeSet,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// Revoked itself or through its family.
    pub revoked: bool,
    pub client: ClientRef,
    pub user: Option<User>,
    /// The camera a paired device's token is bound to (it may act on nothing else).
    pub camera_id: Option<CameraId>,
    /// A token-exchange token: the dealer acting for the user.
    pub actor_id: Option<UserId>,
}

#[derive(Debug, Clone)]
pub struct RefreshTokenInfo {
    pub family_id: FamilyId,
    pub client_pk: ClientPk,
    pub user_id: Option<UserId>,
    pub scope: ScopeSet,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub used_at: Option<Timestamp>,
    /// Revoked itself or through its family.
    pub revoked: bool,
    /// The family's sign-in facts (a grant with the openid scope).
    pub authn: Option<Authn>,
    /// The family's user exists and is not disabled (true for a family without a user). Read
    /// with the token, so a refresh needs no second read of the user.
    pub user_active: bool,
}

#[derive(Debug, Clone)]
pub struct NewPat {
    pub user_id: UserId,
    pub name: String,
    pub hash: Vec<u8>,
    pub prefix: String,
    pub scope: ScopeSet,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pat {
    pub id: i64,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub scope: ScopeSet,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    H264,
    H265,
    Mjpeg,
}

impl VideoCodec {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::H264 => "h264",
            Self::H265 => "h265",
            Self::Mjpeg => "mjpeg",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "h264" => Some(Self::H264),
            "h265" => Some(Self::H265),
            "mjpeg" => Some(Self::Mjpeg),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraStatus {
    Online,
    Offline,
    Unknown,
}

impl CameraStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
            Self::Unknown => "unknown",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "online" => Some(Self::Online),
            "offline" => Some(Self::Offline),
            "unknown" => Some(Self::Unknown),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stream {
    pub format: String,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub url: String,
    pub created_at: Timestamp,
}

/// Every editable field of a camera (all dialects' fields on one model).
#[derive(Debug, Clone, PartialEq)]
pub struct CameraFields {
    pub name: String,
    pub codec: VideoCodec,
    pub status: CameraStatus,
    pub streams: Vec<Stream>,
    pub snapshot: Option<Snapshot>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub source: Option<String>,
    pub source_url: Option<String>,
    /// CAM2 `camera_type`: `IP` or `Non_IP`.
    pub camera_type: Option<String>,
    pub description: Option<String>,
    pub is_video: Option<bool>,
    pub framerate: Option<f64>,
    pub outdoors: Option<bool>,
    pub traffic: Option<bool>,
    pub inactive: Option<bool>,
    pub resolution_w: Option<i64>,
    pub resolution_h: Option<i64>,
    pub tags: Vec<String>,
    pub is_public: bool,
}

impl CameraFields {
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            codec: VideoCodec::H264,
            status: CameraStatus::Unknown,
            streams: Vec::new(),
            snapshot: None,
            city: None,
            state: None,
            country: None,
            lat: None,
            lng: None,
            source: None,
            source_url: None,
            camera_type: None,
            description: None,
            is_video: None,
            framerate: None,
            outdoors: None,
            traffic: None,
            inactive: None,
            resolution_w: None,
            resolution_h: None,
            tags: Vec::new(),
            is_public: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Camera {
    pub id: CameraId,
    pub owner_id: UserId,
    pub fields: CameraFields,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped by every update; an update only applies to the version it read.
    pub version: i64,
    /// Set when the camera is seen by a guest: what it was shared with and by whom.
    pub shared: Option<SharedAs>,
}

/// What a camera's owner lets a guest do, from least to most (each level includes the ones
/// before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SharePermission {
    /// Metadata, snapshot and live stream URLs.
    View,
    /// View, and recordings.
    Playback,
    /// Playback, and editing the camera (not deleting it, not sharing it again).
    Manage,
}

impl SharePermission {
    pub const ALL: [SharePermission; 3] = [Self::View, Self::Playback, Self::Manage];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Playback => "playback",
            Self::Manage => "manage",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// How a guest sees a camera shared with them.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedAs {
    pub permission: SharePermission,
    /// The owner's display name (first and last name, else the e-mail address).
    pub owner_name: String,
}

/// A camera shared with an e-mail address; `user_id` once an account has that address.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    pub id: i64,
    pub camera_id: CameraId,
    pub email: String,
    pub user_id: Option<UserId>,
    pub permission: SharePermission,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// How much a dealer may do for a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DealerLevel {
    /// Read-only: cameras can be read, nothing changed, no account changes.
    Limited,
    /// Everything the customer's own token could do.
    Full,
}

impl DealerLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Limited => "limited",
            Self::Full => "full",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "limited" => Some(Self::Limited),
            "full" => Some(Self::Full),
            _ => None,
        }
    }
}

/// A customer account and the dealer who manages it.
#[derive(Debug, Clone, PartialEq)]
pub struct DealerLink {
    pub dealer_id: UserId,
    pub customer_id: UserId,
    pub level: DealerLevel,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The customer ended the dealer's access.
    pub revoked_at: Option<Timestamp>,
}

impl DealerLink {
    pub fn status(&self) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else {
            self.level.as_str()
        }
    }
}

/// A recorded segment of a camera's video, stored by the operator's media storage at `url`.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub id: i64,
    pub camera_id: CameraId,
    pub start: Timestamp,
    pub end: Timestamp,
    pub url: String,
    pub format: String,
    pub size_bytes: i64,
    pub created_at: Timestamp,
}

/// A segment as a camera reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecording {
    pub start: Timestamp,
    pub end: Timestamp,
    pub url: String,
    pub format: String,
    pub size_bytes: i64,
}

/// Something that happened to a camera.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: i64,
    /// The id webhook deliveries carry (`evt_…`): stable across retries, for idempotency.
    pub public_id: String,
    pub camera_id: Option<CameraId>,
    pub owner_id: UserId,
    /// `motion`, `status`, `tamper` or `custom`.
    pub kind: String,
    /// When it happened (the reporter's clock).
    pub at: Timestamp,
    /// A JSON object, as text.
    pub data: String,
    /// When camgate stored it.
    pub created_at: Timestamp,
}

/// A webhook notice to queue with an event (or alone): its type and the delivery body.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// `camera.event`, `camera.added`, `camera.removed`, `camera.shared`, `app.authorized`,
    /// `app.revoked`.
    pub kind: &'static str,
    /// The delivery's idempotency id (the event's `public_id` for `camera.event`).
    pub id: String,
    /// The JSON body every subscriber receives.
    pub payload: String,
}

/// A display name: first and last name, else the e-mail address.
pub fn display_name(first: &str, last: &str, email: &str) -> String {
    let n = format!("{} {}", first.trim(), last.trim());
    let n = n.trim();
    if n.is_empty() {
        email.to_string()
    } else {
        n.to_string()
    }
}

/// What happened, for the audit table. Never carries a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    LoginOk,
    LoginFailed,
    TokenIssued,
    TokenRefreshed,
    TokenRevoked,
    TheftDetected,
    ClientCreated,
    PatCreated,
    PatRevoked,
    PasswordChanged,
    // the developer dashboard
    ClientUpdated,
    ClientSecretRotated,
    ClientDeleted,
    AppRevoked,
    UserCreated,
    UserDisabled,
    UserEnabled,
    SessionsEnded,
    // the device authorization grant
    DeviceApproved,
    DeviceDenied,
    // two-factor sign-in
    MfaEnabled,
    MfaDisabled,
    MfaFailed,
    MfaRecoveryCodeUsed,
    /// A password grant for a user with a second factor, allowed by the client's exception.
    PasswordWithoutMfa,
    // sharing and dealers
    ShareCreated,
    ShareChanged,
    ShareEnded,
    DealerSet,
    CustomerCreated,
    DealerAccessChanged,
    /// A dealer obtained a token for a customer (RFC 8693).
    TokenExchanged,
    /// A write made with a token-exchange token: the customer's account, by the dealer.
    ActedFor,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginOk => "login_ok",
            Self::LoginFailed => "login_failed",
            Self::TokenIssued => "token_issued",
            Self::TokenRefreshed => "token_refreshed",
            Self::TokenRevoked => "token_revoked",
            Self::TheftDetected => "theft_detected",
            Self::ClientCreated => "client_created",
            Self::PatCreated => "pat_created",
            Self::PatRevoked => "pat_revoked",
            Self::PasswordChanged => "password_changed",
            Self::ClientUpdated => "client_updated",
            Self::ClientSecretRotated => "client_secret_rotated",
            Self::ClientDeleted => "client_deleted",
            Self::AppRevoked => "app_revoked",
            Self::UserCreated => "user_created",
            Self::UserDisabled => "user_disabled",
            Self::UserEnabled => "user_enabled",
            Self::SessionsEnded => "sessions_ended",
            Self::DeviceApproved => "device_approved",
            Self::DeviceDenied => "device_denied",
            Self::MfaEnabled => "mfa_enabled",
            Self::MfaDisabled => "mfa_disabled",
            Self::MfaFailed => "mfa_failed",
            Self::MfaRecoveryCodeUsed => "mfa_recovery_code_used",
            Self::PasswordWithoutMfa => "password_without_mfa",
            Self::ShareCreated => "share_created",
            Self::ShareChanged => "share_changed",
            Self::ShareEnded => "share_ended",
            Self::DealerSet => "dealer_set",
            Self::CustomerCreated => "customer_created",
            Self::DealerAccessChanged => "dealer_access_changed",
            Self::TokenExchanged => "token_exchanged",
            Self::ActedFor => "acted_for",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub at: Timestamp,
    pub kind: AuditKind,
    pub user_id: Option<UserId>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub at: Timestamp,
    pub kind: String,
    pub user_id: Option<UserId>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

/// An active token as introspection reports it (RFC 7662 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    pub scope: ScopeSet,
    pub client_id: String,
    pub username: Option<String>,
    pub sub: Option<String>,
    pub token_type: &'static str,
    pub exp: Option<i64>,
    pub iat: i64,
    /// A token-exchange token: the acting dealer's `sub` (RFC 8693 §4.1 `act`).
    pub act: Option<String>,
}
