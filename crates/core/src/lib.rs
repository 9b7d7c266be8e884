//! camgate's domain: users, clients, tokens, grants, scopes, cameras and their rules.
//!
//! Pure logic over a [`store::Store`] and a [`clock::Clock`]; no HTTP, no SQL. The server crate
//! parses requests, calls one function of [`Core`], and renders the answer in its dialect.

pub mod authorize;
pub mod cam2;
pub mod cameras;
pub mod client_credentials;
pub mod clients;
pub mod clock;
pub mod dashboard;
pub mod dealers;
pub mod device;
pub mod error;
pub mod events;
pub mod jwt;
pub mod lifecycle;
pub mod listings;
pub mod media;
pub mod metrics;
pub mod mfa;
pub mod model;
pub mod oauth;
pub mod oidc;
pub mod passkeys;
pub mod password;
pub mod pats;
pub mod principal;
pub mod profile;
pub mod resource;
pub mod scope;
pub mod secret;
pub mod sessions;
pub mod shares;
pub mod store;
pub mod throttle;
pub mod users;
pub mod webhooks;

use std::sync::Arc;

use clock::Clock;
use password::PasswordHasher;
use profile::Profiles;
use store::Store;

/// Tunables of the domain (filled from the server's configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// A used refresh token presented again within this many seconds returns the same
    /// successor pair; later, it revokes the family (theft detection). 0 disables the window.
    pub refresh_grace_secs: i64,
    /// Minimum seconds between two `last_used_at` writes of one personal access token.
    pub pat_touch_interval_secs: i64,
    /// The browser flow: code lifetime, session timeouts, login throttling.
    pub authz: authorize::AuthzSettings,
    /// Configured public base URL: the `iss` (and `aud`) of JWT access tokens. `None`: the
    /// request's base URL (see [`jwt`]).
    pub issuer: Option<String>,
    /// Algorithm of new JWT signing keys.
    pub jwt_alg: jwt::JwtAlg,
    /// After a client secret is rotated, the old one keeps working this many seconds
    /// (0: it stops at once).
    pub client_secret_overlap_secs: i64,
    /// OpenID Connect tunables.
    pub oidc: oidc::OidcSettings,
    /// Two-factor sign-in tunables.
    pub mfa: mfa::MfaSettings,
    /// The key that seals data the server must read back (TOTP keys), from the configuration
    /// (kept outside the database). `None`: a key in the database's settings table.
    pub data_key: Option<[u8; 32]>,
    /// Lifetime of the tokens in signed media URLs (see [`media`]).
    pub media_url_ttl_secs: i64,
    /// Events and recordings older than this are dropped by the sweeper and `camgate db
    /// purge` (0: kept forever).
    pub media_retention_secs: i64,
    /// Events, recordings and snapshots one camera may post per minute on one node (0: no
    /// limit).
    pub camera_posts_per_minute: u32,
    /// Bytes of camera listings a node keeps in memory (see [`listings`]; 0: none).
    pub camera_listing_cache_bytes: usize,
    /// Webhook URLs may target loopback, private and link-local addresses, and plain http
    /// (tests, internal deployments); off by default (SSRF, see [`webhooks`]).
    pub allow_private_targets: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            refresh_grace_secs: 10,
            pat_touch_interval_secs: 60,
            authz: authorize::AuthzSettings::default(),
            issuer: None,
            jwt_alg: jwt::JwtAlg::default(),
            client_secret_overlap_secs: 0,
            oidc: oidc::OidcSettings::default(),
            mfa: mfa::MfaSettings::default(),
            data_key: None,
            media_url_ttl_secs: 300,
            media_retention_secs: 30 * 24 * 3600,
            camera_posts_per_minute: events::POSTS_PER_MINUTE,
            camera_listing_cache_bytes: listings::DEFAULT_BUDGET,
            allow_private_targets: false,
        }
    }
}

/// Everything the use-cases need, shared by every request.
pub struct Core {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub hasher: PasswordHasher,
    pub profiles: Profiles,
    pub settings: Settings,
    /// Server-wide key for deriving refresh successors; kept in the database so every node
    /// shares it.
    rotation_key: Vec<u8>,
    /// JWT signing keys cached in memory (see [`jwt`]).
    keys: jwt::KeyRing,
    /// Server-wide key of the OpenID Connect subject identifiers (see [`oidc`]); never rotated.
    subject_key: Vec<u8>,
    /// The key sealing TOTP keys and pending sign-ins (see [`mfa`]).
    data_key: Vec<u8>,
    /// Posts per camera and minute on this node (see [`events`]).
    post_limiter: events::PostLimiter,
    /// Media tokens already signed (see [`media`]).
    media_cache: media::MediaCache,
    /// Camera listings answered from memory (see [`listings`]).
    listing_cache: listings::ListingCache,
}

const ROTATION_KEY_SETTING: &str = "refresh_rotation_key";
const SUBJECT_KEY_SETTING: &str = "oidc_subject_key";
const DATA_KEY_SETTING: &str = "data_key";

impl Core {
    pub async fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        hasher: PasswordHasher,
        profiles: Profiles,
        settings: Settings,
    ) -> Result<Self, error::StoreError> {
        let rotation_key = store
            .setting_get_or_insert(ROTATION_KEY_SETTING, &secret::random_key())
            .await?;
        let subject_key = store
            .setting_get_or_insert(SUBJECT_KEY_SETTING, &secret::random_key())
            .await?;
        let data_key = match settings.data_key {
            Some(k) => k.to_vec(),
            None => {
                store
                    .setting_get_or_insert(DATA_KEY_SETTING, &secret::random_key())
                    .await?
            }
        };
        let listing_cache = listings::ListingCache::new(settings.camera_listing_cache_bytes);
        let core = Self {
            store,
            clock,
            hasher,
            profiles,
            settings,
            rotation_key,
            keys: jwt::KeyRing::default(),
            subject_key,
            data_key,
            post_limiter: Default::default(),
            media_cache: Default::default(),
            listing_cache,
        };
        core.init_signing_keys().await?;
        Ok(core)
    }

    pub fn now(&self) -> clock::Timestamp {
        self.clock.now()
    }

    /// Writes an audit event; a failure to audit is logged, never fatal to the request.
    pub async fn audit(
        &self,
        kind: model::AuditKind,
        user_id: Option<model::UserId>,
        client_id: Option<&str>,
        ip: Option<&str>,
        detail: impl Into<String>,
    ) {
        let e = self.audit_event(kind, user_id, client_id, ip, detail);
        if let Err(err) = self.store.audit(&e).await {
            tracing::warn!(error = %err, kind = kind.as_str(), "audit write failed");
        }
    }

    /// An audit event to write together with other changes (one transaction, see
    /// `Store::create_family_audited`); counted in the metrics now, like [`Core::audit`].
    pub fn audit_event(
        &self,
        kind: model::AuditKind,
        user_id: Option<model::UserId>,
        client_id: Option<&str>,
        ip: Option<&str>,
        detail: impl Into<String>,
    ) -> model::AuditEvent {
        metrics::audit_event(kind);
        model::AuditEvent {
            at: self.now(),
            kind,
            user_id,
            client_id: client_id.map(str::to_string),
            ip: ip.map(str::to_string),
            detail: detail.into(),
        }
    }
}
