//! Rows as both backends decode them (`sqlx::FromRow`), and their conversion into the model.
//! Column names are the SQL's (see [`super::queries`]); joined rows carry prefixes (`u_`,
//! `c_`, `p_`) so that one query can read several tables.

use camgate_core::clock::Timestamp;
use camgate_core::error::StoreError;
use camgate_core::model::*;
use camgate_core::scope::ScopeSet;
use camgate_core::store::{
    AuthCode, AuthorizedApp, DeviceCode, JwtSubject, PairedDevice, ParkedRequest, PendingPairing,
    SessionRecord, SigningKeyRecord,
};

pub(crate) fn scope_of(s: &str) -> ScopeSet {
    ScopeSet::parse(s).unwrap_or_default()
}

pub(crate) fn grants_of(s: &str) -> Vec<GrantType> {
    s.split(' ').filter_map(GrantType::parse).collect()
}

pub(crate) fn grants_str(g: &[GrantType]) -> String {
    g.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" ")
}

pub(crate) fn kind_str(k: ClientKind) -> &'static str {
    match k {
        ClientKind::Public => "public",
        ClientKind::Confidential => "confidential",
    }
}

/// The stored secret columns of a client.
pub(crate) fn secret_of(sha: Option<Vec<u8>>, phc: Option<String>) -> SecretHash {
    match (sha, phc) {
        (Some(h), _) => SecretHash::Sha256(h),
        (None, Some(p)) => SecretHash::Argon2(p),
        (None, None) => SecretHash::None,
    }
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Other(format!("stored JSON: {e}")))
}

/// A user (the columns of `queries::USER_COLS`, prefixed `u_`).
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub(crate) u_id: i64,
    pub(crate) u_email: String,
    pub(crate) u_password_hash: String,
    pub(crate) u_first_name: String,
    pub(crate) u_last_name: String,
    pub(crate) u_phone: String,
    pub(crate) u_is_admin: bool,
    pub(crate) u_disabled: bool,
    pub(crate) u_created_at: i64,
    pub(crate) u_password_changed_at: i64,
    pub(crate) u_email_verified: bool,
    pub(crate) u_is_dealer: bool,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.u_id,
            email: r.u_email,
            password_hash: r.u_password_hash,
            first_name: r.u_first_name,
            last_name: r.u_last_name,
            phone: r.u_phone,
            is_admin: r.u_is_admin,
            disabled: r.u_disabled,
            created_at: r.u_created_at,
            password_changed_at: r.u_password_changed_at,
            email_verified: r.u_email_verified,
            is_dealer: r.u_is_dealer,
        }
    }
}

/// A user of an outer join: `None` when `u_id` is NULL.
pub(crate) struct OptUser(pub(crate) Option<UserRow>);

impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for OptUser
where
    &'r str: sqlx::ColumnIndex<R>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    UserRow: sqlx::FromRow<'r, R>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let id: Option<i64> = row.try_get("u_id")?;
        Ok(OptUser(match id {
            Some(_) => Some(UserRow::from_row(row)?),
            None => None,
        }))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ClientRow {
    pub(crate) id: i64,
    pub(crate) client_id: String,
    pub(crate) secret_sha256: Option<Vec<u8>>,
    pub(crate) secret_phc: Option<String>,
    pub(crate) name: String,
    pub(crate) owner_id: Option<i64>,
    pub(crate) kind: String,
    pub(crate) redirect_uris: String,
    pub(crate) grants: String,
    pub(crate) scopes: String,
    pub(crate) profile: String,
    pub(crate) created_at: i64,
    pub(crate) oidc: String,
    pub(crate) allow_password_without_mfa: bool,
}

impl TryFrom<ClientRow> for Client {
    type Error = StoreError;
    fn try_from(r: ClientRow) -> Result<Self, StoreError> {
        Ok(Client {
            pk: r.id,
            client_id: r.client_id,
            secret: secret_of(r.secret_sha256, r.secret_phc),
            name: r.name,
            owner_id: r.owner_id,
            kind: if r.kind == "public" {
                ClientKind::Public
            } else {
                ClientKind::Confidential
            },
            redirect_uris: from_json(&r.redirect_uris)?,
            grants: grants_of(&r.grants),
            scopes: scope_of(&r.scopes),
            profile: r.profile,
            created_at: r.created_at,
            oidc: from_json(&r.oidc)?,
            allow_password_without_mfa: r.allow_password_without_mfa,
        })
    }
}

/// The `c_` columns of a joined client reference.
#[derive(sqlx::FromRow)]
pub(crate) struct ClientRefRow {
    pub(crate) c_pk: i64,
    pub(crate) c_client_id: String,
    pub(crate) c_owner_id: Option<i64>,
    pub(crate) c_profile: String,
}

impl From<ClientRefRow> for ClientRef {
    fn from(r: ClientRefRow) -> Self {
        ClientRef {
            pk: r.c_pk,
            client_id: r.c_client_id,
            owner_id: r.c_owner_id,
            profile: r.c_profile,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CameraRow {
    pub(crate) id: i64,
    pub(crate) owner_id: i64,
    pub(crate) name: String,
    pub(crate) codec: String,
    pub(crate) status: String,
    pub(crate) streams: String,
    pub(crate) snapshot: Option<String>,
    pub(crate) city: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) country: Option<String>,
    pub(crate) lat: Option<f64>,
    pub(crate) lng: Option<f64>,
    pub(crate) source: Option<String>,
    pub(crate) source_url: Option<String>,
    pub(crate) camera_type: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) is_video: Option<bool>,
    pub(crate) framerate: Option<f64>,
    pub(crate) outdoors: Option<bool>,
    pub(crate) traffic: Option<bool>,
    pub(crate) inactive: Option<bool>,
    pub(crate) resolution_w: Option<i64>,
    pub(crate) resolution_h: Option<i64>,
    pub(crate) tags: String,
    pub(crate) is_public: bool,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) version: i64,
}

impl TryFrom<CameraRow> for Camera {
    type Error = StoreError;
    fn try_from(r: CameraRow) -> Result<Self, StoreError> {
        Ok(Camera {
            id: r.id,
            owner_id: r.owner_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
            shared: None,
            fields: CameraFields {
                name: r.name,
                codec: VideoCodec::parse(&r.codec).unwrap_or(VideoCodec::H264),
                status: CameraStatus::parse(&r.status).unwrap_or(CameraStatus::Unknown),
                streams: from_json(&r.streams)?,
                snapshot: r.snapshot.as_deref().map(from_json).transpose()?,
                city: r.city,
                state: r.state,
                country: r.country,
                lat: r.lat,
                lng: r.lng,
                source: r.source,
                source_url: r.source_url,
                camera_type: r.camera_type,
                description: r.description,
                is_video: r.is_video,
                framerate: r.framerate,
                outdoors: r.outdoors,
                traffic: r.traffic,
                inactive: r.inactive,
                resolution_w: r.resolution_w,
                resolution_h: r.resolution_h,
                tags: from_json(&r.tags)?,
                is_public: r.is_public,
            },
        })
    }
}

/// A camera with how it is shared with the reader (`s_permission` NULL: the reader's own).
#[derive(sqlx::FromRow)]
pub(crate) struct SharedCameraRow {
    #[sqlx(flatten)]
    pub(crate) camera: CameraRow,
    pub(crate) s_permission: Option<String>,
    pub(crate) o_first_name: Option<String>,
    pub(crate) o_last_name: Option<String>,
    pub(crate) o_email: Option<String>,
}

impl TryFrom<SharedCameraRow> for Camera {
    type Error = StoreError;
    fn try_from(r: SharedCameraRow) -> Result<Self, StoreError> {
        let mut c = Camera::try_from(r.camera)?;
        c.shared = r.s_permission.map(|p| SharedAs {
            permission: SharePermission::parse(&p).unwrap_or(SharePermission::View),
            owner_name: display_name(
                r.o_first_name.as_deref().unwrap_or(""),
                r.o_last_name.as_deref().unwrap_or(""),
                r.o_email.as_deref().unwrap_or(""),
            ),
        });
        Ok(c)
    }
}

/// A personal access token (the `p_` columns of `queries::PAT_COLS`).
#[derive(sqlx::FromRow)]
pub(crate) struct PatRow {
    pub(crate) p_id: i64,
    pub(crate) p_user_id: i64,
    pub(crate) p_name: String,
    pub(crate) p_prefix: String,
    pub(crate) p_scope: String,
    pub(crate) p_created_at: i64,
    pub(crate) p_expires_at: Option<i64>,
    pub(crate) p_last_used_at: Option<i64>,
    pub(crate) p_revoked_at: Option<i64>,
}

impl From<PatRow> for Pat {
    fn from(r: PatRow) -> Self {
        Pat {
            id: r.p_id,
            user_id: r.p_user_id,
            name: r.p_name,
            prefix: r.p_prefix,
            scope: scope_of(&r.p_scope),
            created_at: r.p_created_at,
            expires_at: r.p_expires_at,
            last_used_at: r.p_last_used_at,
            revoked_at: r.p_revoked_at,
        }
    }
}

/// A PAT with its user (`queries::PAT_SQL`).
#[derive(sqlx::FromRow)]
pub(crate) struct PatUserRow {
    #[sqlx(flatten)]
    pub(crate) pat: PatRow,
    #[sqlx(flatten)]
    pub(crate) user: UserRow,
}

impl From<PatUserRow> for (Pat, User) {
    fn from(r: PatUserRow) -> Self {
        (r.pat.into(), r.user.into())
    }
}

/// `queries::ACCESS_TOKEN_SQL`.
#[derive(sqlx::FromRow)]
pub(crate) struct AccessRow {
    pub(crate) family_id: i64,
    pub(crate) scope: String,
    pub(crate) a_created_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) revoked: bool,
    #[sqlx(flatten)]
    pub(crate) client: ClientRefRow,
    #[sqlx(flatten)]
    pub(crate) user: OptUser,
    pub(crate) f_camera_id: Option<i64>,
    pub(crate) f_actor_id: Option<i64>,
}

impl From<AccessRow> for AccessTokenInfo {
    fn from(r: AccessRow) -> Self {
        AccessTokenInfo {
            family_id: r.family_id,
            scope: scope_of(&r.scope),
            created_at: r.a_created_at,
            expires_at: r.expires_at,
            revoked: r.revoked,
            client: r.client.into(),
            user: r.user.0.map(Into::into),
            camera_id: r.f_camera_id,
            actor_id: r.f_actor_id,
        }
    }
}

/// `queries::REFRESH_TOKEN_SQL`.
#[derive(sqlx::FromRow)]
pub(crate) struct RefreshRow {
    pub(crate) family_id: i64,
    pub(crate) scope: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) used_at: Option<i64>,
    pub(crate) revoked: bool,
    pub(crate) client_pk: i64,
    pub(crate) user_id: Option<i64>,
    pub(crate) auth_time: Option<i64>,
    pub(crate) amr: Option<String>,
    pub(crate) user_active: bool,
}

/// The sign-in facts of a family or code row (both columns, or neither).
pub(crate) fn authn_of(auth_time: Option<i64>, amr: Option<String>) -> Option<Authn> {
    Some(Authn {
        auth_time: auth_time?,
        amr: amr.unwrap_or_default(),
    })
}

impl From<RefreshRow> for RefreshTokenInfo {
    fn from(r: RefreshRow) -> Self {
        RefreshTokenInfo {
            family_id: r.family_id,
            client_pk: r.client_pk,
            user_id: r.user_id,
            scope: scope_of(&r.scope),
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
            revoked: r.revoked,
            authn: authn_of(r.auth_time, r.amr),
            user_active: r.user_active,
        }
    }
}

/// `queries::JWT_SUBJECT_SQL`.
#[derive(sqlx::FromRow)]
pub(crate) struct JwtSubjectRow {
    #[sqlx(flatten)]
    pub(crate) client: ClientRefRow,
    pub(crate) denied: bool,
    #[sqlx(flatten)]
    pub(crate) user: OptUser,
}

impl From<JwtSubjectRow> for JwtSubject {
    fn from(r: JwtSubjectRow) -> Self {
        JwtSubject {
            client: r.client.into(),
            user: r.user.0.map(Into::into),
            denied: r.denied,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuthCodeRow {
    pub(crate) client_pk: i64,
    pub(crate) user_id: i64,
    pub(crate) redirect_uri: String,
    pub(crate) redirect_uri_given: bool,
    pub(crate) scope: String,
    pub(crate) code_challenge: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) used_at: Option<i64>,
    pub(crate) replayed_at: Option<i64>,
    pub(crate) family_id: Option<i64>,
    pub(crate) nonce: Option<String>,
    pub(crate) auth_time: Option<i64>,
    pub(crate) amr: Option<String>,
}

impl From<AuthCodeRow> for AuthCode {
    fn from(r: AuthCodeRow) -> Self {
        AuthCode {
            client_pk: r.client_pk,
            user_id: r.user_id,
            redirect_uri: r.redirect_uri,
            redirect_uri_given: r.redirect_uri_given,
            scope: scope_of(&r.scope),
            code_challenge: r.code_challenge,
            created_at: r.created_at,
            expires_at: r.expires_at,
            used_at: r.used_at,
            replayed_at: r.replayed_at,
            family_id: r.family_id,
            nonce: r.nonce,
            authn: authn_of(r.auth_time, r.amr),
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ParkedRow {
    pub(crate) client_pk: i64,
    pub(crate) request: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
}

impl From<ParkedRow> for ParkedRequest {
    fn from(r: ParkedRow) -> Self {
        ParkedRequest {
            client_pk: r.client_pk,
            request: r.request,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub(crate) user_id: i64,
    pub(crate) created_at: i64,
    pub(crate) last_seen_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) amr: Option<String>,
}

impl From<SessionRow> for SessionRecord {
    fn from(r: SessionRow) -> Self {
        SessionRecord {
            user_id: r.user_id,
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
            amr: r.amr,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SigningKeyRow {
    pub(crate) kid: String,
    pub(crate) alg: String,
    pub(crate) purpose: String,
    pub(crate) private_key: Vec<u8>,
    pub(crate) created_at: i64,
    pub(crate) retired_at: Option<i64>,
    pub(crate) verify_until: Option<i64>,
}

impl From<SigningKeyRow> for SigningKeyRecord {
    fn from(r: SigningKeyRow) -> Self {
        SigningKeyRecord {
            kid: r.kid,
            alg: r.alg,
            purpose: r.purpose,
            private_key: r.private_key,
            created_at: r.created_at,
            retired_at: r.retired_at,
            verify_until: r.verify_until,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub(crate) id: i64,
    pub(crate) at: i64,
    pub(crate) kind: String,
    pub(crate) user_id: Option<i64>,
    pub(crate) client_id: Option<String>,
    pub(crate) ip: Option<String>,
    pub(crate) detail: String,
}

impl From<AuditRow> for AuditRecord {
    fn from(r: AuditRow) -> Self {
        AuditRecord {
            id: r.id,
            at: r.at,
            kind: r.kind,
            user_id: r.user_id,
            client_id: r.client_id,
            ip: r.ip,
            detail: r.detail,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AppRow {
    pub(crate) id: i64,
    pub(crate) client_id: String,
    pub(crate) name: String,
    pub(crate) consent_scope: Option<String>,
    pub(crate) approved_at: Option<i64>,
    pub(crate) last_used_at: Option<i64>,
    pub(crate) token_scope: Option<String>,
}

impl From<AppRow> for AuthorizedApp {
    fn from(r: AppRow) -> Self {
        AuthorizedApp {
            client_pk: r.id,
            client_id: r.client_id,
            name: r.name,
            scope: r
                .consent_scope
                .or(r.token_scope)
                .map(|s| scope_of(&s))
                .unwrap_or_default(),
            approved_at: r.approved_at,
            last_used_at: r.last_used_at,
        }
    }
}

/// A client's previous secret and until when it is valid.
#[derive(sqlx::FromRow)]
pub(crate) struct PreviousSecretRow {
    pub(crate) previous_secret_sha256: Option<Vec<u8>>,
    pub(crate) previous_secret_phc: Option<String>,
    pub(crate) previous_secret_expires_at: Option<i64>,
}

impl PreviousSecretRow {
    pub(crate) fn secret(self) -> Option<(SecretHash, Timestamp)> {
        let until = self.previous_secret_expires_at?;
        match secret_of(self.previous_secret_sha256, self.previous_secret_phc) {
            SecretHash::None => None,
            s => Some((s, until)),
        }
    }
}

/// Converts rows that may fail to convert (stored JSON).
pub(crate) fn try_all<R, T>(rows: Vec<R>) -> Result<Vec<T>, StoreError>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

/// Converts rows.
pub(crate) fn all<R, T: From<R>>(rows: Vec<R>) -> Vec<T> {
    rows.into_iter().map(T::from).collect()
}

/// A device code (`authz::DEVICE_COLS`).
#[derive(sqlx::FromRow)]
pub(crate) struct DeviceRow {
    pub(crate) hash: Vec<u8>,
    pub(crate) client_pk: i64,
    pub(crate) scope: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) interval_secs: i64,
    pub(crate) last_polled_at: Option<i64>,
    pub(crate) user_id: Option<i64>,
    pub(crate) approved: Option<bool>,
    pub(crate) used_at: Option<i64>,
    pub(crate) family_id: Option<i64>,
    pub(crate) pairing: Option<String>,
    pub(crate) camera_id: Option<i64>,
}

impl From<DeviceRow> for DeviceCode {
    fn from(r: DeviceRow) -> Self {
        DeviceCode {
            hash: r.hash,
            client_pk: r.client_pk,
            scope: scope_of(&r.scope),
            created_at: r.created_at,
            expires_at: r.expires_at,
            interval_secs: r.interval_secs,
            last_polled_at: r.last_polled_at,
            user_id: r.user_id,
            approved: r.approved,
            used_at: r.used_at,
            family_id: r.family_id,
            // Written by us from a `Pairing`; unreadable JSON would be a bug, logged.
            pairing: r.pairing.and_then(|p| {
                serde_json::from_str(&p)
                    .map_err(|e| tracing::error!(error = %e, "stored device pairing"))
                    .ok()
            }),
            camera_id: r.camera_id,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PairedRow {
    id: i64,
    device_serial: String,
    last_seen_at: Option<i64>,
    live: bool,
}

impl From<PairedRow> for PairedDevice {
    fn from(r: PairedRow) -> Self {
        PairedDevice {
            camera_id: r.id,
            serial: r.device_serial,
            last_seen_at: r.last_seen_at,
            live: r.live,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct PendingRow {
    client_name: String,
    pairing: String,
    decided_at: i64,
    expires_at: i64,
}

impl From<PendingRow> for PendingPairing {
    fn from(r: PendingRow) -> Self {
        let device: Option<camgate_core::store::Pairing> = serde_json::from_str(&r.pairing).ok();
        PendingPairing {
            client_name: r.client_name,
            device_name: device.map(|d| d.name).unwrap_or_default(),
            decided_at: r.decided_at,
            expires_at: r.expires_at,
        }
    }
}
