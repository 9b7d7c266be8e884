//! The storage port. `camgate-store` implements it for SQLite and PostgreSQL; core logic only
//! ever sees these traits, one per role (lldap-style small traits), joined in [`Store`]. Every method is one short transaction at most; methods that must be
//! atomic say so, and the implementations guarantee it (one conditional UPDATE, or a
//! transaction).

pub mod records;

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::error::StoreError;
use crate::model::*;
use crate::scope::ScopeSet;
pub use records::*;

pub type StoreResult<T> = Result<T, StoreError>;

/// The hot path: everything a token request or an authenticated resource request touches —
/// token families, access and refresh tokens, personal access tokens, authorization-code
/// claims, audit rows — and the credential lookups those requests make (user, client,
/// login-throttle window, active signing key, a JWT's holder). Each backend implements it in
/// its own plain code (SQLite: rusqlite on a writer thread and per-thread readers; PostgreSQL:
/// sqlx).
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Creates a token family with its first access token and optional refresh token, atomically.
    async fn create_family(
        &self,
        family: &NewFamily,
        access: &NewAccessToken,
        refresh: Option<&NewRefreshToken>,
    ) -> StoreResult<FamilyId> {
        let g = NewGrant {
            family,
            access,
            refresh,
        };
        self.create_grant(&g, &[]).await
    }
    /// [`TokenStore::create_family`] and the grant's audit events (see
    /// [`TokenStore::create_grant`]).
    async fn create_family_audited(
        &self,
        family: &NewFamily,
        access: &NewAccessToken,
        refresh: Option<&NewRefreshToken>,
        audits: &[AuditEvent],
    ) -> StoreResult<FamilyId> {
        let g = NewGrant {
            family,
            access,
            refresh,
        };
        self.create_grant(&g, audits).await
    }
    /// The family with its first tokens, atomically, and `audits`, in one transaction where
    /// the backend can. A failure to write an audit event is logged, never fatal.
    async fn create_grant(&self, g: &NewGrant<'_>, audits: &[AuditEvent]) -> StoreResult<FamilyId>;
    async fn access_token(&self, hash: &[u8]) -> StoreResult<Option<AccessTokenInfo>>;
    async fn refresh_token(&self, hash: &[u8]) -> StoreResult<Option<RefreshTokenInfo>>;
    /// Rotation, atomically: claims the refresh token `old` (one conditional UPDATE that only
    /// succeeds if it is unused and unrevoked), revokes the family's older access tokens and
    /// inserts the successor pair. Returns false, changing nothing, if the claim lost.
    async fn rotate_refresh(
        &self,
        family_id: FamilyId,
        old: &[u8],
        now: Timestamp,
        access: &NewAccessToken,
        refresh: &NewRefreshToken,
    ) -> StoreResult<bool> {
        let r = Rotation {
            family_id,
            old,
            now,
            access,
            refresh,
        };
        self.rotate(&r, None).await
    }
    /// [`TokenStore::rotate_refresh`] and, if the claim won, `audit` (see [`TokenStore::rotate`]).
    async fn rotate_refresh_audited(
        &self,
        family_id: FamilyId,
        old: &[u8],
        now: Timestamp,
        access: &NewAccessToken,
        refresh: &NewRefreshToken,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        let r = Rotation {
            family_id,
            old,
            now,
            access,
            refresh,
        };
        self.rotate(&r, Some(audit)).await
    }
    /// The rotation, and if the claim won and `audit` is given, its audit row, in one
    /// transaction where the backend can. A failure to write the audit row is logged, never
    /// fatal.
    async fn rotate(&self, r: &Rotation<'_>, audit: Option<&AuditEvent>) -> StoreResult<bool>;
    /// Adds an access token to the family of a reusable refresh token, only if that refresh
    /// token is still live (not revoked). Returns false otherwise.
    async fn add_access_token(
        &self,
        family_id: FamilyId,
        refresh: &[u8],
        access: &NewAccessToken,
    ) -> StoreResult<bool> {
        let a = AddAccess {
            family_id,
            refresh,
            access,
        };
        self.add_access(&a).await
    }
    /// [`TokenStore::add_access_token`], its arguments as a record.
    async fn add_access(&self, a: &AddAccess<'_>) -> StoreResult<bool>;
    /// Revokes a family: every access and refresh token descended from that login.
    async fn revoke_family(&self, family_id: FamilyId, now: Timestamp) -> StoreResult<()>;
    /// Revokes one access token. Returns false if it was unknown or already revoked.
    async fn revoke_access_token(&self, hash: &[u8], now: Timestamp) -> StoreResult<bool>;
    async fn create_pat(&self, p: &NewPat) -> StoreResult<Pat>;
    async fn pat_by_hash(&self, hash: &[u8]) -> StoreResult<Option<(Pat, User)>>;
    /// Revokes a PAT of `user_id`. Returns false if there is no such live token.
    async fn revoke_pat(&self, id: i64, user_id: UserId, now: Timestamp) -> StoreResult<bool>;
    /// Records use, at most once per `min_interval` seconds (a conditional UPDATE).
    async fn touch_pat(&self, id: i64, now: Timestamp, min_interval: i64) -> StoreResult<()>;
    /// Claims an unused code: one conditional UPDATE that succeeds only if `used_at` is unset.
    /// Returns false, changing nothing, if someone else used it first.
    async fn claim_auth_code(&self, hash: &[u8], now: Timestamp) -> StoreResult<bool>;
    /// Records the token family minted from a claimed code. Returns true if a replay of the
    /// code was recorded meanwhile (the caller then revokes the family).
    async fn attach_auth_code_family(&self, hash: &[u8], family_id: FamilyId) -> StoreResult<bool>;
    /// Records a second use of a code and returns the family minted from it, if any yet.
    async fn mark_auth_code_replayed(
        &self,
        hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<Option<FamilyId>>;
    async fn audit(&self, e: &AuditEvent) -> StoreResult<()>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    /// By normalised (lower-case) email.
    async fn user_by_email(&self, email_norm: &str) -> StoreResult<Option<User>>;
    async fn client_by_client_id(&self, client_id: &str) -> StoreResult<Option<Client>>;
    /// The failures counted under `key` in a window that started after `since`:
    /// `(window_start, failures)`.
    async fn throttle_failures(&self, key: &[u8], since: Timestamp) -> StoreResult<Option<Window>>;
    /// The kid of the newest active (unretired) key, if any.
    async fn active_signing_kid(&self) -> StoreResult<Option<String>>;
    /// One query for a JWT's holder, at every request a JWT authenticates: the client by
    /// `client_id` (`None` if it is gone), the user if `user_id` is given and exists, and
    /// whether `jti` is denylisted.
    async fn jwt_subject(
        &self,
        client_id: &str,
        user_id: Option<UserId>,
        jti: &str,
    ) -> StoreResult<Option<JwtSubject>>;
}

/// The browser flow: authorization codes, consents, parked authorization requests, browser
/// sessions, login-throttle writes, and the per-user view of authorized applications.
#[async_trait]
pub trait AuthzStore: Send + Sync + 'static {
    async fn create_auth_code(&self, c: &NewAuthCode) -> StoreResult<()>;
    async fn auth_code(&self, hash: &[u8]) -> StoreResult<Option<AuthCode>>;
    /// The scope a user has approved for a client, if any.
    async fn consent(&self, user_id: UserId, client_pk: ClientPk) -> StoreResult<Option<ScopeSet>>;
    /// Inserts or replaces the approved scope of (user, client).
    async fn put_consent(
        &self,
        user_id: UserId,
        client_pk: ClientPk,
        scope: ScopeSet,
        now: Timestamp,
    ) -> StoreResult<()>;
    async fn park_authz_request(&self, hash: &[u8], r: &ParkedRequest) -> StoreResult<()>;
    async fn parked_authz_request(&self, hash: &[u8]) -> StoreResult<Option<ParkedRequest>>;
    /// Deletes and returns a parked request (atomic: only one caller gets it).
    async fn take_authz_request(&self, hash: &[u8]) -> StoreResult<Option<ParkedRequest>>;
    async fn create_session(&self, s: &NewSession) -> StoreResult<()>;
    async fn session(&self, hash: &[u8]) -> StoreResult<Option<SessionRecord>>;
    /// Records activity, at most once per `min_interval` seconds (a conditional UPDATE).
    async fn touch_session(
        &self,
        hash: &[u8],
        now: Timestamp,
        min_interval: i64,
    ) -> StoreResult<()>;
    async fn delete_session(&self, hash: &[u8]) -> StoreResult<()>;
    /// Ends every browser session of a user. Returns how many there were.
    async fn delete_user_sessions(&self, user_id: UserId) -> StoreResult<u64>;
    /// Counts one failure under `key` (atomic upsert): a window that started at or before
    /// `since` is over and restarts at `now`. Returns the new `(window_start, failures)`.
    async fn throttle_record_failure(
        &self,
        key: &[u8],
        now: Timestamp,
        since: Timestamp,
    ) -> StoreResult<(Timestamp, i64)>;
    // ---- the device authorization grant (RFC 8628)
    /// Inserts a device code. `Conflict` if its user code is taken (the caller draws again).
    async fn create_device_code(&self, d: &NewDeviceCode) -> StoreResult<()>;
    /// A device code by its digest.
    async fn device_code(&self, hash: &[u8]) -> StoreResult<Option<DeviceCode>>;
    /// A device code by the digest of its normalised user code.
    async fn device_code_by_user_code(&self, user_hash: &[u8]) -> StoreResult<Option<DeviceCode>>;
    /// Records the user's decision on a pending, unexpired code (one conditional UPDATE).
    /// False if it was decided already, expired, or unknown.
    async fn decide_device_code(&self, d: &DeviceDecision<'_>) -> StoreResult<bool>;
    /// Pairings `user_id` approved whose device has not redeemed its code yet, unexpired.
    async fn pending_pairings(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<PendingPairing>>;
    /// Paces polling (RFC 8628 §3.5), in one statement: records a poll at `now`; true if the
    /// last one was at least the code's interval ago, else false (`slow_down`) with 5 seconds
    /// added to the interval.
    async fn poll_device_code(&self, hash: &[u8], now: Timestamp) -> StoreResult<bool>;
    /// Claims an approved, unused code (one conditional UPDATE). False if someone else did.
    async fn claim_device_code(&self, hash: &[u8], now: Timestamp) -> StoreResult<bool>;
    /// Records the family minted from a claimed code, and binds the family to the code's
    /// camera if it paired one; true if a replay was recorded meanwhile.
    async fn attach_device_family(&self, hash: &[u8], family_id: FamilyId) -> StoreResult<bool>;
    /// Records a second redemption; the family minted from the code, if any yet.
    async fn mark_device_code_replayed(
        &self,
        hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<Option<FamilyId>>;
    /// Deletes at most `batch` rows per table of codes, parked requests, sessions and throttle
    /// windows that ended before `cutoff`. Returns the number of rows deleted.
    async fn purge_authorize(&self, cutoff: Timestamp, batch: i64) -> StoreResult<u64>;
    /// The clients a user approved (a consent) or that hold a live token family of the user.
    async fn authorized_apps(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<AuthorizedApp>>;
    /// Atomically: forgets the user's consent for the client, revokes every token family (and
    /// token) of the user at the client, and closes their authorization codes (marked used and
    /// replayed, so an exchange in flight revokes what it mints). True if a consent or a live
    /// family was there.
    async fn revoke_client_for_user(
        &self,
        user_id: UserId,
        client_pk: ClientPk,
        now: Timestamp,
    ) -> StoreResult<bool>;
}

/// Users and clients: creation, settings, secrets, lists.
#[async_trait]
pub trait DirectoryStore: Send + Sync + 'static {
    async fn create_user(&self, u: &NewUser) -> StoreResult<User>;
    async fn count_users(&self) -> StoreResult<i64>;
    /// Deletes the user and, by cascade, their cameras, tokens and personal access tokens.
    async fn delete_user(&self, id: UserId) -> StoreResult<bool>;
    /// Disables or re-enables a user. A disabled user's tokens, PATs and sessions stop working
    /// at the next request (every lookup checks the flag).
    async fn set_user_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool>;
    /// Sets a new password hash and revokes every token family and PAT of the user, atomically.
    async fn set_password(&self, id: UserId, hash: &str, now: Timestamp) -> StoreResult<bool>;
    /// One page of users by id, and the total count.
    async fn list_users(&self, limit: i64, offset: i64) -> StoreResult<(i64, Vec<User>)>;
    async fn create_client(&self, c: &NewClient) -> StoreResult<Client>;
    async fn client_by_pk(&self, pk: ClientPk) -> StoreResult<Option<Client>>;
    /// The clients a user registered, oldest first.
    async fn clients_by_owner(&self, owner: UserId) -> StoreResult<Vec<Client>>;
    /// Replaces a client's OpenID Connect settings. False if there is no such client.
    async fn set_client_oidc(&self, pk: ClientPk, oidc: &OidcClient) -> StoreResult<bool>;
    /// Changes the editable settings of a client of `owner`. False if there is no such client.
    async fn update_client(
        &self,
        pk: ClientPk,
        owner: UserId,
        u: &ClientUpdate,
    ) -> StoreResult<bool>;
    /// Deletes a client of `owner`; its token families, tokens, codes, consents and parked
    /// requests go with it (ON DELETE CASCADE). False if there is no such client.
    async fn delete_client(&self, pk: ClientPk, owner: UserId) -> StoreResult<bool>;
    /// Replaces the secret of a confidential client of `owner` by `new_sha256`, in one
    /// statement. With `previous_until`, the replaced secret stays valid until then; without,
    /// any previous secret is forgotten. False if there is no such confidential client.
    async fn rotate_client_secret(
        &self,
        pk: ClientPk,
        owner: UserId,
        new_sha256: &[u8],
        previous_until: Option<Timestamp>,
    ) -> StoreResult<bool>;
    /// The previous secret of a client and until when it is valid, if one was kept.
    async fn client_previous_secret(
        &self,
        pk: ClientPk,
    ) -> StoreResult<Option<(SecretHash, Timestamp)>>;
    /// A user's personal access tokens that are not revoked (expired ones included), newest
    /// first.
    async fn pats_by_user(&self, user_id: UserId) -> StoreResult<Vec<Pat>>;
}

/// Cameras: the owner's CRUD, the CAM2 search, bulk import.
#[async_trait]
pub trait CameraStore: Send + Sync + 'static {
    async fn create_camera(
        &self,
        owner: UserId,
        f: &CameraFields,
        now: Timestamp,
    ) -> StoreResult<Camera>;
    async fn camera(&self, owner: UserId, id: CameraId) -> StoreResult<Option<Camera>>;
    /// One page of the owner's cameras by id, and the owner's total count.
    /// A page of an owner's cameras in id order — after the camera `after` (keyset) when
    /// given, else from `offset` — and how many the owner has.
    async fn list_cameras(
        &self,
        owner: UserId,
        limit: i64,
        offset: i64,
        after: Option<CameraId>,
    ) -> StoreResult<(i64, Vec<Camera>)>;
    /// The version of what `user`'s camera listings show (own cameras, shares held, cameras
    /// shared with them, their owners' names): any change to those moves it (kept by the
    /// database, so a change on any node moves it). 0 for a user who never had any.
    async fn camera_listing_version(&self, user: UserId) -> StoreResult<i64>;
    /// The version of what any CAM2 search may show (every camera, share and owner name):
    /// any change to those moves it.
    async fn camera_search_version(&self) -> StoreResult<i64>;
    /// Writes `c` if the stored row still has `c.version` (then bumps it). False if the camera
    /// is gone or was changed concurrently.
    async fn update_camera(&self, c: &Camera) -> StoreResult<bool>;
    async fn delete_camera(&self, owner: UserId, id: CameraId) -> StoreResult<bool>;
    /// Cameras matching `q` with `id > after_id`, in id order, skipping `offset`, at most `limit`.
    async fn search_cameras(
        &self,
        q: &CameraQuery,
        after_id: CameraId,
        offset: i64,
        limit: i64,
    ) -> StoreResult<Vec<Camera>>;
    /// Every camera whose position lies in `b`, as cells from the spatial index (a superset:
    /// a cell may only touch the box). No other condition applies, not even visibility: the
    /// radius search refines these and reads the rows through [`Self::search_cameras_among`].
    async fn camera_cells(&self, b: &GeoBox) -> StoreResult<Vec<GeoCell>>;
    /// The cameras among `ids` (ascending) that match `q`, in id order. `q.bbox`'s exact
    /// latitude/longitude conditions apply; the spatial index is not consulted again.
    async fn search_cameras_among(
        &self,
        q: &CameraQuery,
        ids: &[CameraId],
    ) -> StoreResult<Vec<Camera>>;
    /// Inserts `rows` for `owner` in one transaction (multi-row INSERTs). Returns the count.
    async fn import_cameras(&self, owner: UserId, rows: &[NewCamera]) -> StoreResult<u64>;
    /// The camera of `owner` with this device serial, registered now (status online) or, if
    /// the device was paired before, the same one (status online again).
    async fn pair_camera(
        &self,
        owner: UserId,
        serial: &str,
        fields: &CameraFields,
        now: Timestamp,
    ) -> StoreResult<Camera>;
    /// Records a report of a camera of `owner`: its status and `last_seen_at = now`. False if
    /// there is no such camera.
    async fn camera_heartbeat(
        &self,
        owner: UserId,
        id: CameraId,
        status: CameraStatus,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// The owner's cameras registered by pairing.
    async fn paired_devices(&self, owner: UserId) -> StoreResult<Vec<PairedDevice>>;
    /// Revokes the device tokens bound to a camera of `owner` (the camera stays; pairing the
    /// device again re-binds it). True if a live one was revoked.
    async fn unpair_camera(&self, owner: UserId, id: CameraId, now: Timestamp)
        -> StoreResult<bool>;
    /// Refreshes the planner's statistics of the cameras table (after a bulk import).
    async fn analyze_cameras(&self) -> StoreResult<()>;
}

/// Operations: migrations, liveness, pool metrics, shared settings, signing keys and the JWT
/// denylist, purges, the audit list.
#[async_trait]
pub trait AdminStore: Send + Sync + 'static {
    /// Applies pending migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// Cheap liveness check of the database.
    async fn ping(&self) -> StoreResult<()>;
    /// Connection pool use, for metrics (none by default).
    fn pool_stats(&self) -> Vec<PoolStats> {
        Vec::new()
    }
    /// Returns the stored value of `key`, inserting `value` first if there is none (atomic;
    /// every node sees the same value).
    async fn setting_get_or_insert(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>>;
    async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<AuditRecord>>;
    /// Deletes at most `batch` rows per table of tokens, families and PATs that expired or
    /// were revoked before `cutoff`. A family expires with its last token; deleting it takes
    /// its remaining tokens along (not counted in the result).
    async fn purge_expired(&self, cutoff: Timestamp, batch: i64) -> StoreResult<PurgeCounts>;
    /// Signing keys that still verify at `now`: active ones, and retired ones whose
    /// `verify_until` is later than `now`.
    async fn signing_keys(&self, now: Timestamp) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Inserts `key` (unretired) only if no key of its kind is active: an `access` key if no
    /// access key is, an `id` key if no id key of its algorithm is. Returns whether it did.
    async fn insert_signing_key_if_none(&self, key: &SigningKeyRecord) -> StoreResult<bool>;
    /// The kid of the active id_token key of `alg` (the newest unretired one).
    async fn active_id_signing_kid(&self, alg: &str) -> StoreResult<Option<String>>;
    /// Atomically: retires every active key of `key`'s kind (see
    /// [`AdminStore::insert_signing_key_if_none`]; `retired_at = now`, `verify_until`) and
    /// inserts `key` as the active one.
    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        now: Timestamp,
        verify_until: Timestamp,
    ) -> StoreResult<()>;
    /// Puts `jti` on the denylist until `until` (idempotent; the later time wins).
    async fn deny_jwt(&self, jti: &str, until: Timestamp) -> StoreResult<()>;
    /// Deletes at most `batch` denylist entries and at most `batch` signing keys that stopped
    /// mattering before `cutoff`. Returns how many rows went.
    async fn purge_jwt_state(&self, cutoff: Timestamp, batch: i64) -> StoreResult<u64>;
}

/// The whole port: every role. Implemented for any type that implements each role, so callers
/// that need several roles take `S: Store` (or `dyn Store`) and call any method.
/// Second factors: TOTP authenticators and recovery codes.
#[async_trait]
pub trait MfaStore: Send + Sync + 'static {
    async fn totp(&self, user: UserId) -> StoreResult<Option<TotpRecord>>;
    /// Stores a not yet confirmed authenticator, replacing an unconfirmed one; false (nothing
    /// changed) if the user has a confirmed one.
    async fn put_pending_totp(
        &self,
        user: UserId,
        secret_enc: &[u8],
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Atomically: confirms the pending authenticator (its first code was for `step`) and
    /// replaces the user's recovery codes. False if there was no pending one.
    async fn confirm_totp(
        &self,
        user: UserId,
        step: i64,
        now: Timestamp,
        recovery_hashes: &[Vec<u8>],
    ) -> StoreResult<bool>;
    /// Accepts time step `step` if it is later than every step accepted before (one
    /// conditional UPDATE: of two concurrent uses of one code, one wins).
    async fn accept_totp_step(&self, user: UserId, step: i64) -> StoreResult<bool>;
    /// Uses up an unused recovery code; false if there is none with this digest.
    async fn use_recovery_code(
        &self,
        user: UserId,
        hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<bool>;
    async fn recovery_codes_left(&self, user: UserId) -> StoreResult<i64>;
    /// Removes the TOTP authenticator and its recovery codes (passkeys stay); false if there
    /// were none.
    async fn delete_totp(&self, user: UserId) -> StoreResult<bool>;
    /// Removes every second factor: the authenticator, the recovery codes and the passkeys;
    /// false if there were none.
    async fn delete_second_factors(&self, user: UserId) -> StoreResult<bool>;
}

/// Passkeys (WebAuthn credentials) and ceremonies in progress.
#[async_trait]
pub trait PasskeyStore: Send + Sync + 'static {
    /// Registers a credential; `Conflict` if its id is registered already (to anyone).
    async fn add_passkey(
        &self,
        user: UserId,
        cred_id: &[u8],
        name: &str,
        passkey: &str,
        now: Timestamp,
    ) -> StoreResult<PasskeyRecord>;
    async fn passkeys_of(&self, user: UserId) -> StoreResult<Vec<PasskeyRecord>>;
    async fn passkey_by_cred(&self, cred_id: &[u8]) -> StoreResult<Option<PasskeyRecord>>;
    /// Stores the credential's new state (counter, flags) after a use.
    async fn passkey_used(&self, id: i64, passkey: &str, now: Timestamp) -> StoreResult<bool>;
    async fn rename_passkey(&self, user: UserId, id: i64, name: &str) -> StoreResult<bool>;
    async fn delete_passkey(&self, user: UserId, id: i64) -> StoreResult<bool>;
    async fn put_ceremony(&self, hash: &[u8], c: &Ceremony) -> StoreResult<()>;
    /// Removes and returns a ceremony (single use).
    async fn take_ceremony(&self, hash: &[u8]) -> StoreResult<Option<Ceremony>>;
}

/// Cameras shared with guests.
#[async_trait]
pub trait ShareStore: Send + Sync + 'static {
    /// Shares a camera of `owner` with an address (normalised). `None` if the camera is not
    /// the owner's; `Conflict` if that address has a share of it already. The share applies
    /// at once to an account with that address, else when one is created.
    async fn create_share(
        &self,
        owner: UserId,
        camera: CameraId,
        email_norm: &str,
        permission: SharePermission,
        now: Timestamp,
    ) -> StoreResult<Option<Share>>;
    /// A camera's shares, oldest first.
    async fn shares(&self, camera: CameraId) -> StoreResult<Vec<Share>>;
    async fn update_share(
        &self,
        camera: CameraId,
        share: i64,
        permission: SharePermission,
        now: Timestamp,
    ) -> StoreResult<Option<Share>>;
    async fn delete_share(&self, camera: CameraId, share: i64) -> StoreResult<bool>;
    /// Camera `id` as `user` sees it: their own (`shared` unset) or shared with them (`shared`
    /// set); `None` if neither.
    async fn visible_camera(&self, user: UserId, id: CameraId) -> StoreResult<Option<Camera>>;
    /// Every camera shared with `user`: camera id and how it is shared.
    async fn shared_with(&self, user: UserId) -> StoreResult<Vec<(CameraId, SharedAs)>>;
    /// The cameras shared with `user` (with `shared` set), in id order, at most `limit`.
    async fn shared_cameras(&self, user: UserId, limit: i64) -> StoreResult<Vec<Camera>>;
}

/// Which events a listing wants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    pub camera: Option<CameraId>,
    pub kind: Option<String>,
    /// `at >= since`.
    pub since: Option<Timestamp>,
    /// `at < until`.
    pub until: Option<Timestamp>,
    /// Keyset: events with a smaller id (the listing is newest first).
    pub before: Option<i64>,
    pub limit: i64,
}

/// Events, and the webhook outbox rows written with them.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Stores an event and, in the same transaction, one pending delivery of `notice` for every
    /// enabled webhook subscribed to its kind whose owner may see the camera (its owner and
    /// the users it is shared with).
    #[allow(clippy::too_many_arguments)]
    async fn record_event(
        &self,
        camera: CameraId,
        owner: UserId,
        public_id: &str,
        kind: &str,
        at: Timestamp,
        data: &str,
        notice: &Notice,
        now: Timestamp,
    ) -> StoreResult<Event>;
    /// Queues `notice` for the subscribed webhooks of `users` (no event row); the number queued.
    async fn enqueue_notice(
        &self,
        users: &[UserId],
        notice: &Notice,
        now: Timestamp,
    ) -> StoreResult<u64>;
    /// Events `user` may see (own cameras and cameras shared with them), newest first.
    async fn events(&self, user: UserId, q: &EventQuery) -> StoreResult<Vec<Event>>;
    /// Events `user` may see with an id above `after`, oldest first (the event stream).
    async fn events_after(&self, user: UserId, after: i64, limit: i64) -> StoreResult<Vec<Event>>;
    /// The highest event id (the stream's starting point without `Last-Event-ID`).
    async fn last_event_id(&self) -> StoreResult<i64>;
    /// Drops events, recordings and finished deliveries created before `cutoff`, at most
    /// `batch` rows per table; the number deleted.
    async fn purge_media(&self, cutoff: Timestamp, batch: i64) -> StoreResult<u64>;
}

/// Recordings of cameras.
#[async_trait]
pub trait RecordingStore: Send + Sync + 'static {
    async fn add_recording(
        &self,
        camera: CameraId,
        r: &NewRecording,
        now: Timestamp,
    ) -> StoreResult<Recording>;
    /// Segments of `camera` overlapping `[start, end)`, ordered by (start, id), after the
    /// keyset position `after`, at most `limit`. Segments are at most `max_len` seconds long
    /// (the bound that keeps the scan on the index).
    async fn recordings(
        &self,
        camera: CameraId,
        start: Timestamp,
        end: Timestamp,
        after: Option<(Timestamp, i64)>,
        limit: i64,
        max_len: i64,
    ) -> StoreResult<Vec<Recording>>;
}

/// What a delivery is doing: `pending` (due at `next_attempt_at`; a claim pushes that forward
/// as its lease), `delivered` (a 2xx answer), `failed` (given up after a day, or its webhook
/// was disabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            _ => return None,
        })
    }
}

/// A subscription to insert: `events` in a canonical order, the signing secret sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWebhook {
    pub user_id: UserId,
    pub url: String,
    pub events: Vec<String>,
    pub secret_enc: Vec<u8>,
    pub created_at: Timestamp,
}

/// A user's subscription of a URL to event types.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: i64,
    pub user_id: UserId,
    pub url: String,
    pub events: Vec<String>,
    /// The signing secret, sealed under the data key (never in the clear).
    pub secret_enc: Vec<u8>,
    pub created_at: Timestamp,
    /// Since when every attempt has failed (cleared by a success).
    pub failing_since: Option<Timestamp>,
    /// Set when it was disabled after a day of failures; nothing is queued or sent for it then.
    pub disabled_at: Option<Timestamp>,
}

/// One notice to one webhook (an outbox row).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    /// The idempotency id the payload carries (`evt_…`, `ntc_…`).
    pub event_id: String,
    pub event_type: String,
    /// The JSON body sent.
    pub payload: String,
    pub state: DeliveryState,
    /// Attempts so far (a claim counts one).
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
}

/// One attempt of a delivery, for the owner's delivery log.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryAttempt {
    pub id: i64,
    pub delivery_id: i64,
    pub at: Timestamp,
    /// The HTTP status answered, if any.
    pub status: Option<i64>,
    /// Why it failed when no status came back (or with a non-2xx one).
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// A claimed delivery and its webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    pub delivery: Delivery,
    pub webhook: Webhook,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    /// Pending again, due at this time.
    Retry(Timestamp),
    /// Given up.
    Failed,
}

/// An attempt's result, recorded with [`WebhookStore::record_attempt`].
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub delivery_id: i64,
    /// `attempts` as the claim returned it: the outcome is written only if no other claim
    /// happened since (the lease was not lost).
    pub claimed_attempts: i64,
    pub at: Timestamp,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub outcome: DeliveryOutcome,
}

/// Webhook subscriptions and their outbox: any node claims due deliveries with a lease, records
/// each attempt, and the owner reads the delivery log and replays deliveries.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Inserts a webhook unless its user has `max_per_user` already (`None` then; one
    /// statement).
    async fn create_webhook(
        &self,
        w: &NewWebhook,
        max_per_user: i64,
    ) -> StoreResult<Option<Webhook>>;
    /// A user's webhooks, oldest first.
    async fn webhooks(&self, user: UserId) -> StoreResult<Vec<Webhook>>;
    /// A webhook of `user` (`None` if there is none with that id, or it is someone else's).
    async fn webhook(&self, user: UserId, id: i64) -> StoreResult<Option<Webhook>>;
    /// Deletes a webhook of `user` with its deliveries and attempts; false if there was none.
    async fn delete_webhook(&self, user: UserId, id: i64) -> StoreResult<bool>;
    /// Claims at most `limit` due deliveries (pending, `next_attempt_at <= now`, of an enabled
    /// webhook), oldest due first, in one statement that pushes their `next_attempt_at` to
    /// `lease_until` and counts the attempt: until then no other claim returns them (on
    /// PostgreSQL concurrent claimers skip each other's rows: `FOR UPDATE SKIP LOCKED`).
    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Records an attempt (always, while the delivery exists) and, in the same transaction, its
    /// outcome, only if the delivery is still pending with `claimed_attempts` attempts (no
    /// later claim took it over). Returns whether the outcome was written.
    async fn record_attempt(&self, a: &AttemptRecord) -> StoreResult<bool>;
    /// Marks a webhook failing since `now` unless it already is; returns since when it is.
    async fn webhook_failing(&self, webhook: i64, now: Timestamp)
        -> StoreResult<Option<Timestamp>>;
    /// Clears a webhook's `failing_since` (a delivery succeeded).
    async fn webhook_recovered(&self, webhook: i64) -> StoreResult<()>;
    /// Disables a webhook and fails its pending deliveries (one transaction); false if it was
    /// disabled already or is gone.
    async fn disable_webhook(&self, webhook: i64, now: Timestamp) -> StoreResult<bool>;
    /// The newest deliveries (id below `before`, if given) of a webhook of `user`, at most
    /// `limit`, newest first, each with its attempts, oldest first. Empty for someone else's.
    async fn delivery_log(
        &self,
        user: UserId,
        webhook: i64,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<(Delivery, Vec<DeliveryAttempt>)>>;
    /// Puts a delivery of a webhook of `user` back to pending, due at `now`, and enables the
    /// webhook again if it was disabled (one transaction). `None` if there is no such delivery.
    async fn replay_delivery(
        &self,
        user: UserId,
        webhook: i64,
        delivery: i64,
        now: Timestamp,
    ) -> StoreResult<Option<Delivery>>;
}

/// Dealers and the customer accounts they manage.
#[async_trait]
pub trait DealerStore: Send + Sync + 'static {
    /// Marks or unmarks a dealer; false if there is no such user.
    async fn set_dealer(&self, user: UserId, dealer: bool) -> StoreResult<bool>;
    /// Creates a user and links it to `dealer`, in one transaction (`Conflict`: address taken).
    async fn create_customer(
        &self,
        dealer: UserId,
        user: &NewUser,
        level: DealerLevel,
        now: Timestamp,
    ) -> StoreResult<User>;
    /// A dealer's customers with their links, oldest first.
    async fn customers(&self, dealer: UserId) -> StoreResult<Vec<(User, DealerLink)>>;
    /// A customer's link and its dealer, if the account is a customer's.
    async fn dealer_of(&self, customer: UserId) -> StoreResult<Option<(DealerLink, User)>>;
    /// Lowers (or sets) the level, or revokes the link (`None`); false if there is no live link.
    async fn set_dealer_access(
        &self,
        customer: UserId,
        level: Option<DealerLevel>,
        now: Timestamp,
    ) -> StoreResult<bool>;
}

pub trait Store:
    TokenStore
    + AuthzStore
    + DirectoryStore
    + CameraStore
    + AdminStore
    + MfaStore
    + PasskeyStore
    + ShareStore
    + DealerStore
    + EventStore
    + RecordingStore
    + WebhookStore
{
}

impl<T> Store for T where
    T: TokenStore
        + AuthzStore
        + DirectoryStore
        + CameraStore
        + AdminStore
        + MfaStore
        + PasskeyStore
        + ShareStore
        + DealerStore
        + EventStore
        + RecordingStore
        + WebhookStore
{
}

/// Writes audit events one by one, logging (never returning) failures.
pub async fn write_audits<S: TokenStore + ?Sized>(store: &S, audits: &[AuditEvent]) {
    for e in audits {
        if let Err(err) = store.audit(e).await {
            tracing::warn!(error = %err, kind = e.kind.as_str(), "audit write failed");
        }
    }
}
