//! The SQL shared by both backends, expanded once per backend by `store_impl!`.
//! Parameters are `$1..$n`, numbered in order of appearance (SQLite binds `$NNN` by number too).

use camgate_core::model::*;
use camgate_core::scope::ScopeSet;

pub(crate) const USER_COLS: &str = "id, email, password_hash, first_name, last_name, phone, \
     is_admin, disabled, created_at, password_changed_at";

pub(crate) const CLIENT_COLS: &str = "id, client_id, secret_sha256, secret_phc, name, owner_id, \
     kind, redirect_uris, grants, scopes, profile, created_at";

pub(crate) const CAMERA_COLS: &str = "id, owner_id, name, codec, status, streams, snapshot, city, \
     state, country, lat, lng, source, source_url, camera_type, description, is_video, framerate, \
     outdoors, traffic, inactive, resolution_w, resolution_h, tags, is_public, created_at, \
     updated_at, version";

/// The hot lookup of a resource request: an access token with its family, client and user.
pub(crate) const ACCESS_TOKEN_SQL: &str = "SELECT a.family_id, a.scope, a.created_at AS a_created_at, a.expires_at, \
                         (a.revoked_at IS NOT NULL OR f.revoked_at IS NOT NULL) AS revoked, \
                         c.id AS c_pk, c.client_id AS c_client_id, c.owner_id AS c_owner_id, c.profile AS c_profile, \
                         u.id AS u_id, u.email AS u_email, u.password_hash AS u_password_hash, \
                         u.first_name AS u_first_name, u.last_name AS u_last_name, u.phone AS u_phone, \
                         u.is_admin AS u_is_admin, u.disabled AS u_disabled, u.created_at AS u_created_at, \
                         u.password_changed_at AS u_password_changed_at \
                         FROM access_tokens a \
                         JOIN token_families f ON f.id = a.family_id \
                         JOIN clients c ON c.id = f.client_pk \
                         LEFT JOIN users u ON u.id = f.user_id \
                         WHERE a.hash = $1";

/// A personal access token with its user.
pub(crate) const PAT_SQL: &str = "SELECT p.id AS p_id, p.user_id AS p_user_id, p.name AS p_name, p.prefix AS p_prefix, \
                         p.scope AS p_scope, p.created_at AS p_created_at, p.expires_at AS p_expires_at, \
                         p.last_used_at AS p_last_used_at, p.revoked_at AS p_revoked_at, \
                         u.id AS u_id, u.email AS u_email, u.password_hash AS u_password_hash, \
                         u.first_name AS u_first_name, u.last_name AS u_last_name, u.phone AS u_phone, \
                         u.is_admin AS u_is_admin, u.disabled AS u_disabled, u.created_at AS u_created_at, \
                         u.password_changed_at AS u_password_changed_at \
                         FROM personal_access_tokens p JOIN users u ON u.id = p.user_id WHERE p.hash = $1";

/// A refresh token with its family's client and user.
pub(crate) const REFRESH_TOKEN_SQL: &str =
    "SELECT r.family_id, r.scope, r.created_at, r.expires_at, r.used_at, \
                         (r.revoked_at IS NOT NULL OR f.revoked_at IS NOT NULL) AS revoked, \
                         f.client_pk, f.user_id \
                         FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id \
                         WHERE r.hash = $1";

/// `SELECT` of a user's columns prefixed `u_` (as in the joins above), up to its `WHERE`.
macro_rules! select_user_u {
    () => {
        "SELECT id AS u_id, email AS u_email, password_hash AS u_password_hash, \
         first_name AS u_first_name, last_name AS u_last_name, phone AS u_phone, is_admin AS u_is_admin, \
         disabled AS u_disabled, created_at AS u_created_at, password_changed_at AS u_password_changed_at \
         FROM users WHERE "
    };
}

/// A user by id.
pub(crate) const USER_BY_ID_SQL: &str = concat!(select_user_u!(), "id = $1");

/// A user by normalised email (the fast reader's; same columns as [`USER_BY_ID_SQL`]).
pub(crate) const USER_BY_EMAIL_SQL: &str = concat!(select_user_u!(), "email_norm = $1");

/// A login-throttle counter still in its window.
pub(crate) const THROTTLE_SQL: &str =
    "SELECT window_start, failures FROM login_throttle WHERE key = $1 AND window_start > $2";

/// A client by its public id.
pub(crate) const CLIENT_BY_ID_SQL: &str =
    "SELECT id, client_id, secret_sha256, secret_phc, name, owner_id, \
     kind, redirect_uris, grants, scopes, profile, created_at FROM clients WHERE client_id = $1";

/// The kid of the active signing key (the newest unretired one).
pub(crate) const ACTIVE_KID_SQL: &str =
    "SELECT kid FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1";

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

pub(crate) fn json_err(e: serde_json::Error) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

/// A bound value of a dynamically built query.
pub(crate) enum Arg {
    I(i64),
    F(f64),
    S(String),
}

/// WHERE clauses with `$n` parameters numbered in order of appearance.
#[derive(Default)]
pub(crate) struct Where {
    pub clauses: Vec<String>,
    pub args: Vec<Arg>,
}

impl Where {
    pub fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }
    pub fn cond(&mut self, expr: &str, op: &str, a: Arg) {
        let p = self.arg(a);
        self.clauses.push(format!("{expr} {op} {p}"));
    }
}

/// The SQL of `Store::search_cameras` and its arguments (CAM2 filters, issue 7).
pub(crate) fn camera_search_sql(
    q: &camgate_core::cam2::CameraQuery,
    after_id: i64,
    offset: i64,
    limit: i64,
) -> (String, Vec<Arg>) {
    let mut w = Where::default();
    match q.owner {
        Some(o) => {
            let p = w.arg(Arg::I(o));
            w.clauses.push(format!("(owner_id = {p} OR is_public)"));
        }
        None => w.clauses.push("is_public".into()),
    }
    if after_id > 0 {
        w.cond("id", ">", Arg::I(after_id));
    }
    for (col, v) in [
        ("city", &q.city),
        ("state", &q.state),
        ("country", &q.country),
        ("camera_type", &q.camera_type),
        ("source", &q.source),
    ] {
        if let Some(v) = v {
            w.cond(col, "=", Arg::S(v.clone()));
        }
    }
    for (col, op, v) in [
        ("lat", ">=", q.lat_min),
        ("lat", "<=", q.lat_max),
        ("lng", ">=", q.lng_min),
        ("lng", "<=", q.lng_max),
        ("framerate", ">=", q.framerate_min),
        ("framerate", "<=", q.framerate_max),
    ] {
        if let Some(v) = v {
            w.cond(col, op, Arg::F(v));
        }
    }
    for (col, op, v) in [
        ("resolution_w", ">=", q.resolution_w_min),
        ("resolution_w", "<=", q.resolution_w_max),
        ("resolution_h", ">=", q.resolution_h_min),
        ("resolution_h", "<=", q.resolution_h_max),
        ("created_at", "<", q.added_before),
        ("created_at", ">=", q.added_after),
        ("updated_at", "<", q.updated_before),
        ("updated_at", ">=", q.updated_after),
    ] {
        if let Some(v) = v {
            w.cond(col, op, Arg::I(v));
        }
    }
    for (col, v) in [
        ("is_video", q.is_video),
        ("outdoors", q.outdoors),
        ("traffic", q.traffic),
        ("inactive", q.inactive),
    ] {
        // A literal, not a parameter: SQLite stores booleans as 0/1, PostgreSQL as boolean,
        // and both read TRUE/FALSE.
        if let Some(v) = v {
            w.clauses
                .push(format!("{col} = {}", if v { "TRUE" } else { "FALSE" }));
        }
    }
    if let Some(b) = &q.bbox {
        w.cond("lat", ">=", Arg::F(b.lat_min));
        w.cond("lat", "<=", Arg::F(b.lat_max));
        if !b.lng_ranges.is_empty() {
            let mut ors = Vec::new();
            for (lo, hi) in &b.lng_ranges {
                let (a, z) = (w.arg(Arg::F(*lo)), w.arg(Arg::F(*hi)));
                ors.push(format!("(lng >= {a} AND lng <= {z})"));
            }
            w.clauses.push(format!("({})", ors.join(" OR ")));
        }
    }
    let l = w.arg(Arg::I(limit));
    let o = w.arg(Arg::I(offset));
    let sql = format!(
        "SELECT {CAMERA_COLS} FROM cameras WHERE {} ORDER BY id LIMIT {l} OFFSET {o}",
        w.clauses.join(" AND ")
    );
    (sql, w.args)
}

/// Columns written by `Store::import_cameras`, in bind order.
pub(crate) const IMPORT_COLS: &str = "owner_id, name, codec, status, streams, snapshot, city, \
     state, country, lat, lng, source, source_url, camera_type, description, is_video, framerate, \
     outdoors, traffic, inactive, resolution_w, resolution_h, tags, is_public, created_at, updated_at";
pub(crate) const IMPORT_NCOLS: usize = 26;
/// Rows per multi-row INSERT: 500 × 26 = 13,000 parameters, under SQLite's 32,766 and
/// PostgreSQL's 65,535.
pub(crate) const IMPORT_CHUNK: usize = 500;

/// `INSERT INTO cameras (…) VALUES (…), (…)` for `rows` rows. PostgreSQL gets `$n`
/// parameters; SQLite gets anonymous `?` ones (`numbered = false`): SQLite looks each named
/// parameter up in a linear list, which makes binding 13,000 `$n` parameters quadratic
/// (~1 s per statement), while `?` parameters bind in order. The only place the two backends
/// get different SQL text.
pub(crate) fn import_sql(rows: usize, numbered: bool) -> String {
    let mut s = String::with_capacity(80 + rows * IMPORT_NCOLS * 6);
    s.push_str("INSERT INTO cameras (");
    s.push_str(IMPORT_COLS);
    s.push_str(") VALUES ");
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..IMPORT_NCOLS {
            if c > 0 {
                s.push(',');
            }
            n += 1;
            if numbered {
                s.push('$');
                s.push_str(&n.to_string());
            } else {
                s.push('?');
            }
        }
        s.push(')');
    }
    s
}

macro_rules! store_impl {
    ($Store:ident, $Db:ty, $Row:ty) => {
        mod store_impl {
            use async_trait::async_trait;
            use sqlx::Row;

            use camgate_core::clock::Timestamp;
            use camgate_core::error::StoreError;
            use camgate_core::jwt::{JwtSubject, SigningKeyRecord};
            use camgate_core::model::*;
            use camgate_core::store::{PurgeCounts, Store, StoreResult};

            use super::$Store;
            use crate::common::*;
            use crate::map_err;

            type R = $Row;

            fn user_from(r: &R, p: &str) -> Result<User, sqlx::Error> {
                let c = |n: &str| format!("{p}{n}");
                Ok(User {
                    id: r.try_get(c("id").as_str())?,
                    email: r.try_get(c("email").as_str())?,
                    password_hash: r.try_get(c("password_hash").as_str())?,
                    first_name: r.try_get(c("first_name").as_str())?,
                    last_name: r.try_get(c("last_name").as_str())?,
                    phone: r.try_get(c("phone").as_str())?,
                    is_admin: r.try_get(c("is_admin").as_str())?,
                    disabled: r.try_get(c("disabled").as_str())?,
                    created_at: r.try_get(c("created_at").as_str())?,
                    password_changed_at: r.try_get(c("password_changed_at").as_str())?,
                })
            }

            fn client_from(r: &R) -> Result<Client, sqlx::Error> {
                let sha: Option<Vec<u8>> = r.try_get("secret_sha256")?;
                let phc: Option<String> = r.try_get("secret_phc")?;
                let secret = match (sha, phc) {
                    (Some(h), _) => SecretHash::Sha256(h),
                    (None, Some(p)) => SecretHash::Argon2(p),
                    (None, None) => SecretHash::None,
                };
                let kind: String = r.try_get("kind")?;
                let uris: String = r.try_get("redirect_uris")?;
                let grants: String = r.try_get("grants")?;
                let scopes: String = r.try_get("scopes")?;
                Ok(Client {
                    pk: r.try_get("id")?,
                    client_id: r.try_get("client_id")?,
                    secret,
                    name: r.try_get("name")?,
                    owner_id: r.try_get("owner_id")?,
                    kind: if kind == "public" { ClientKind::Public } else { ClientKind::Confidential },
                    redirect_uris: serde_json::from_str(&uris).map_err(json_err)?,
                    grants: grants_of(&grants),
                    scopes: scope_of(&scopes),
                    profile: r.try_get("profile")?,
                    created_at: r.try_get("created_at")?,
                })
            }

            fn camera_from(r: &R) -> Result<Camera, sqlx::Error> {
                let codec: String = r.try_get("codec")?;
                let status: String = r.try_get("status")?;
                let streams: String = r.try_get("streams")?;
                let snapshot: Option<String> = r.try_get("snapshot")?;
                let tags: String = r.try_get("tags")?;
                Ok(Camera {
                    id: r.try_get("id")?,
                    owner_id: r.try_get("owner_id")?,
                    created_at: r.try_get("created_at")?,
                    updated_at: r.try_get("updated_at")?,
                    version: r.try_get("version")?,
                    fields: CameraFields {
                        name: r.try_get("name")?,
                        codec: VideoCodec::parse(&codec).unwrap_or(VideoCodec::H264),
                        status: CameraStatus::parse(&status).unwrap_or(CameraStatus::Unknown),
                        streams: serde_json::from_str(&streams).map_err(json_err)?,
                        snapshot: match snapshot {
                            Some(s) => Some(serde_json::from_str(&s).map_err(json_err)?),
                            None => None,
                        },
                        city: r.try_get("city")?,
                        state: r.try_get("state")?,
                        country: r.try_get("country")?,
                        lat: r.try_get("lat")?,
                        lng: r.try_get("lng")?,
                        source: r.try_get("source")?,
                        source_url: r.try_get("source_url")?,
                        camera_type: r.try_get("camera_type")?,
                        description: r.try_get("description")?,
                        is_video: r.try_get("is_video")?,
                        framerate: r.try_get("framerate")?,
                        outdoors: r.try_get("outdoors")?,
                        traffic: r.try_get("traffic")?,
                        inactive: r.try_get("inactive")?,
                        resolution_w: r.try_get("resolution_w")?,
                        resolution_h: r.try_get("resolution_h")?,
                        tags: serde_json::from_str(&tags).map_err(json_err)?,
                        is_public: r.try_get("is_public")?,
                    },
                })
            }

            fn pat_from(r: &R) -> Result<Pat, sqlx::Error> {
                let scope: String = r.try_get("p_scope")?;
                Ok(Pat {
                    id: r.try_get("p_id")?,
                    user_id: r.try_get("p_user_id")?,
                    name: r.try_get("p_name")?,
                    prefix: r.try_get("p_prefix")?,
                    scope: scope_of(&scope),
                    created_at: r.try_get("p_created_at")?,
                    expires_at: r.try_get("p_expires_at")?,
                    last_used_at: r.try_get("p_last_used_at")?,
                    revoked_at: r.try_get("p_revoked_at")?,
                })
            }

            fn snapshot_json(f: &CameraFields) -> Result<Option<String>, StoreError> {
                f.snapshot
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(|e| StoreError::Other(e.to_string()))
            }

            fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
                serde_json::to_string(v).map_err(|e| StoreError::Other(e.to_string()))
            }

            /// A family's expiry: the latest of its tokens', or `None` if one never expires.
            fn family_expiry(access: &NewAccessToken, refresh: Option<&NewRefreshToken>) -> Option<Timestamp> {
                match refresh {
                    None => Some(access.expires_at),
                    Some(r) => r.expires_at.map(|e| e.max(access.expires_at)),
                }
            }

            /// Moves a family's expiry forward (or to never) when it gains a token.
            async fn extend_family(
                tx: &mut sqlx::Transaction<'_, $Db>,
                family_id: FamilyId,
                expiry: Option<Timestamp>,
            ) -> StoreResult<()> {
                match expiry {
                    None => sqlx::query("UPDATE token_families SET expires_at = NULL WHERE id = $1")
                        .bind(family_id)
                        .execute(&mut **tx)
                        .await
                        .map_err(map_err)?,
                    Some(e) => sqlx::query(
                        "UPDATE token_families SET expires_at = $1 \
                         WHERE id = $2 AND expires_at IS NOT NULL AND expires_at < $1",
                    )
                    .bind(e)
                    .bind(family_id)
                    .execute(&mut **tx)
                    .await
                    .map_err(map_err)?,
                };
                Ok(())
            }

            #[async_trait]
            impl Store for $Store {
                async fn migrate(&self) -> StoreResult<()> {
                    self.run_migrations().await
                }

                async fn ping(&self) -> StoreResult<()> {
                    sqlx::query("SELECT 1").execute(&self.read).await.map_err(map_err)?;
                    Ok(())
                }

                fn pool_stats(&self) -> Vec<camgate_core::store::PoolStats> {
                    self.pools()
                        .into_iter()
                        .map(|(name, p)| camgate_core::store::PoolStats {
                            name,
                            size: p.size(),
                            idle: p.num_idle() as u32,
                            max: p.options().get_max_connections(),
                        })
                        .collect()
                }

                async fn setting_get_or_insert(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
                    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                        .bind(key)
                        .bind(value)
                        .execute(&self.write)
                        .await
                        .map_err(map_err)?;
                    sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM settings WHERE key = $1")
                        .bind(key)
                        .fetch_one(&self.write)
                        .await
                        .map_err(map_err)
                }

                async fn create_user(&self, u: &NewUser) -> StoreResult<User> {
                    let sql = format!(
                        "INSERT INTO users (email, email_norm, password_hash, first_name, last_name, phone, \
                         is_admin, disabled, created_at, password_changed_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE, $8, $9) RETURNING {USER_COLS}"
                    );
                    let row = sqlx::query(&sql)
                        .bind(&u.email)
                        .bind(normalize_email(&u.email))
                        .bind(&u.password_hash)
                        .bind(&u.first_name)
                        .bind(&u.last_name)
                        .bind(&u.phone)
                        .bind(u.is_admin)
                        .bind(u.created_at)
                        .bind(u.created_at)
                        .fetch_one(&self.write)
                        .await
                        .map_err(map_err)?;
                    user_from(&row, "").map_err(map_err)
                }

                async fn user_by_email(&self, email_norm: &str) -> StoreResult<Option<User>> {
                    if let Some(fast) = self.fast_user_by_email(email_norm) {
                        return Ok(fast);
                    }
                    let sql = format!("SELECT {USER_COLS} FROM users WHERE email_norm = $1");
                    let row = sqlx::query(&sql).bind(email_norm).fetch_optional(&self.read).await.map_err(map_err)?;
                    row.map(|r| user_from(&r, "")).transpose().map_err(map_err)
                }

                async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
                    if let Some(fast) = self.fast_user(id) {
                        return Ok(fast);
                    }
                    let sql = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
                    let row = sqlx::query(&sql).bind(id).fetch_optional(&self.read).await.map_err(map_err)?;
                    row.map(|r| user_from(&r, "")).transpose().map_err(map_err)
                }

                async fn count_users(&self) -> StoreResult<i64> {
                    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM users")
                        .fetch_one(&self.read)
                        .await
                        .map_err(map_err)
                }

                async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
                    let r = sqlx::query("DELETE FROM users WHERE id = $1")
                        .bind(id)
                        .execute(&self.write)
                        .await
                        .map_err(map_err)?;
                    Ok(r.rows_affected() == 1)
                }

                async fn set_user_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool> {
                    let r = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                        .bind(disabled)
                        .bind(id)
                        .execute(&self.write)
                        .await
                        .map_err(map_err)?;
                    Ok(r.rows_affected() == 1)
                }

                async fn set_password(&self, id: UserId, hash: &str, now: Timestamp) -> StoreResult<bool> {
                    let mut tx = self.write.begin().await.map_err(map_err)?;
                    let r = sqlx::query("UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3")
                        .bind(hash)
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    if r.rows_affected() != 1 {
                        return Ok(false);
                    }
                    // Revoke the tokens themselves too (not only their families), so a
                    // concurrent claim cannot slip through and the sweeper can purge them.
                    for sql in [
                        "UPDATE access_tokens SET revoked_at = $1 WHERE revoked_at IS NULL \
                         AND family_id IN (SELECT id FROM token_families WHERE user_id = $2)",
                        "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL \
                         AND family_id IN (SELECT id FROM token_families WHERE user_id = $2)",
                        "UPDATE token_families SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                    ] {
                        sqlx::query(sql).bind(now).bind(id).execute(&mut *tx).await.map_err(map_err)?;
                    }
                    sqlx::query("UPDATE personal_access_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                        .bind(now)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    tx.commit().await.map_err(map_err)?;
                    Ok(true)
                }

                async fn create_client(&self, c: &NewClient) -> StoreResult<Client> {
                    let (sha, phc) = match &c.secret {
                        SecretHash::None => (None, None),
                        SecretHash::Sha256(h) => (Some(h.clone()), None),
                        SecretHash::Argon2(p) => (None, Some(p.clone())),
                    };
                    let sql = format!(
                        "INSERT INTO clients (client_id, secret_sha256, secret_phc, name, owner_id, kind, \
                         redirect_uris, grants, scopes, profile, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {CLIENT_COLS}"
                    );
                    let row = sqlx::query(&sql)
                        .bind(&c.client_id)
                        .bind(sha)
                        .bind(phc)
                        .bind(&c.name)
                        .bind(c.owner_id)
                        .bind(kind_str(c.kind))
                        .bind(json(&c.redirect_uris)?)
                        .bind(grants_str(&c.grants))
                        .bind(c.scopes.to_scope_string())
                        .bind(&c.profile)
                        .bind(c.created_at)
                        .fetch_one(&self.write)
                        .await
                        .map_err(map_err)?;
                    client_from(&row).map_err(map_err)
                }

                async fn client_by_client_id(&self, client_id: &str) -> StoreResult<Option<Client>> {
                    if let Some(fast) = self.fast_client(client_id) {
                        return Ok(fast);
                    }
                    let sql = format!("SELECT {CLIENT_COLS} FROM clients WHERE client_id = $1");
                    let row = sqlx::query(&sql).bind(client_id).fetch_optional(&self.read).await.map_err(map_err)?;
                    row.map(|r| client_from(&r)).transpose().map_err(map_err)
                }

                async fn client_by_pk(&self, pk: ClientPk) -> StoreResult<Option<Client>> {
                    let sql = format!("SELECT {CLIENT_COLS} FROM clients WHERE id = $1");
                    let row = sqlx::query(&sql).bind(pk).fetch_optional(&self.read).await.map_err(map_err)?;
                    row.map(|r| client_from(&r)).transpose().map_err(map_err)
                }

                async fn create_family(
                    &self,
                    family: &NewFamily,
                    access: &NewAccessToken,
                    refresh: Option<&NewRefreshToken>,
                ) -> StoreResult<FamilyId> {
                    if let Some(w) = self.hot_writer() {
                        return w.create_family(family, access, refresh, &[]).await;
                    }
                    let mut tx = self.write.begin().await.map_err(map_err)?;
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO token_families (user_id, client_pk, grant_type, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING id",
                    )
                    .bind(family.user_id)
                    .bind(family.client_pk)
                    .bind(family.grant_type.as_str())
                    .bind(family.created_at)
                    .bind(family_expiry(access, refresh))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    sqlx::query(
                        "INSERT INTO access_tokens (hash, family_id, scope, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&access.hash)
                    .bind(id)
                    .bind(access.scope.to_scope_string())
                    .bind(access.created_at)
                    .bind(access.expires_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    if let Some(r) = refresh {
                        sqlx::query(
                            "INSERT INTO refresh_tokens (hash, family_id, scope, created_at, expires_at) \
                             VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(&r.hash)
                        .bind(id)
                        .bind(r.scope.to_scope_string())
                        .bind(r.created_at)
                        .bind(r.expires_at)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    }
                    tx.commit().await.map_err(map_err)?;
                    Ok(id)
                }

                async fn access_token(&self, hash: &[u8]) -> StoreResult<Option<AccessTokenInfo>> {
                    if let Some(fast) = self.fast_access_token(hash) {
                        return Ok(fast);
                    }
                    let sql = ACCESS_TOKEN_SQL;
                    let row = sqlx::query(sql).bind(hash).fetch_optional(&self.read).await.map_err(map_err)?;
                    let Some(r) = row else { return Ok(None) };
                    let conv = || -> Result<AccessTokenInfo, sqlx::Error> {
                        let uid: Option<i64> = r.try_get("u_id")?;
                        let scope: String = r.try_get("scope")?;
                        Ok(AccessTokenInfo {
                            family_id: r.try_get("family_id")?,
                            scope: scope_of(&scope),
                            created_at: r.try_get("a_created_at")?,
                            expires_at: r.try_get("expires_at")?,
                            revoked: r.try_get("revoked")?,
                            client: ClientRef {
                                pk: r.try_get("c_pk")?,
                                client_id: r.try_get("c_client_id")?,
                                owner_id: r.try_get("c_owner_id")?,
                                profile: r.try_get("c_profile")?,
                            },
                            user: match uid {
                                Some(_) => Some(user_from(&r, "u_")?),
                                None => None,
                            },
                        })
                    };
                    conv().map(Some).map_err(map_err)
                }

                async fn refresh_token(&self, hash: &[u8]) -> StoreResult<Option<RefreshTokenInfo>> {
                    if let Some(fast) = self.fast_refresh(hash) {
                        return Ok(fast);
                    }
                    let sql = REFRESH_TOKEN_SQL;
                    let row = sqlx::query(sql).bind(hash).fetch_optional(&self.write).await.map_err(map_err)?;
                    let Some(r) = row else { return Ok(None) };
                    let conv = || -> Result<RefreshTokenInfo, sqlx::Error> {
                        let scope: String = r.try_get("scope")?;
                        Ok(RefreshTokenInfo {
                            family_id: r.try_get("family_id")?,
                            client_pk: r.try_get("client_pk")?,
                            user_id: r.try_get("user_id")?,
                            scope: scope_of(&scope),
                            created_at: r.try_get("created_at")?,
                            expires_at: r.try_get("expires_at")?,
                            used_at: r.try_get("used_at")?,
                            revoked: r.try_get("revoked")?,
                        })
                    };
                    conv().map(Some).map_err(map_err)
                }

                async fn rotate_refresh(
                    &self,
                    family_id: FamilyId,
                    old: &[u8],
                    now: Timestamp,
                    access: &NewAccessToken,
                    refresh: &NewRefreshToken,
                ) -> StoreResult<bool> {
                    if let Some(w) = self.hot_writer() {
                        return w.rotate_refresh(family_id, old, now, access, refresh, None).await;
                    }
                    let mut tx = self.write.begin().await.map_err(map_err)?;
                    // The claim: one conditional UPDATE. Concurrent claimers serialise on the
                    // row; exactly one sees rows_affected = 1.
                    let claimed = sqlx::query(
                        "UPDATE refresh_tokens SET used_at = $1 \
                         WHERE hash = $2 AND used_at IS NULL AND revoked_at IS NULL \
                         AND NOT EXISTS (SELECT 1 FROM token_families f \
                           WHERE f.id = refresh_tokens.family_id AND f.revoked_at IS NOT NULL)",
                    )
                    .bind(now)
                    .bind(old)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                    if claimed != 1 {
                        tx.rollback().await.map_err(map_err)?;
                        return Ok(false);
                    }
                    extend_family(&mut tx, family_id, family_expiry(access, Some(refresh))).await?;
                    // "causes all previous tokens to become invalid" (spec 000).
                    sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
                        .bind(now)
                        .bind(family_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    sqlx::query(
                        "INSERT INTO access_tokens (hash, family_id, scope, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&access.hash)
                    .bind(family_id)
                    .bind(access.scope.to_scope_string())
                    .bind(access.created_at)
                    .bind(access.expires_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    sqlx::query(
                        "INSERT INTO refresh_tokens (hash, family_id, scope, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&refresh.hash)
                    .bind(family_id)
                    .bind(refresh.scope.to_scope_string())
                    .bind(refresh.created_at)
                    .bind(refresh.expires_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    tx.commit().await.map_err(map_err)?;
                    Ok(true)
                }

                async fn add_access_token(
                    &self,
                    family_id: FamilyId,
                    refresh: &[u8],
                    access: &NewAccessToken,
                ) -> StoreResult<bool> {
                    if let Some(w) = self.hot_writer() {
                        return w.add_access_token(family_id, refresh, access).await;
                    }
                    let mut tx = self.write.begin().await.map_err(map_err)?;
                    let r = sqlx::query(
                        "INSERT INTO access_tokens (hash, family_id, scope, created_at, expires_at) \
                         SELECT $1, $2, $3, $4, $5 WHERE EXISTS (\
                           SELECT 1 FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id \
                           WHERE r.hash = $6 AND r.revoked_at IS NULL AND f.revoked_at IS NULL)",
                    )
                    .bind(&access.hash)
                    .bind(family_id)
                    .bind(access.scope.to_scope_string())
                    .bind(access.created_at)
                    .bind(access.expires_at)
                    .bind(refresh)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    if r.rows_affected() != 1 {
                        tx.rollback().await.map_err(map_err)?;
                        return Ok(false);
                    }
                    extend_family(&mut tx, family_id, Some(access.expires_at)).await?;
                    tx.commit().await.map_err(map_err)?;
                    Ok(true)
                }

                async fn revoke_family(&self, family_id: FamilyId, now: Timestamp) -> StoreResult<()> {
                    if let Some(w) = self.hot_writer() {
                        return w.revoke_family(family_id, now).await;
                    }
                    let mut tx = self.write.begin().await.map_err(map_err)?;
                    for sql in [
                        "UPDATE token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                        "UPDATE access_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
                        "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
                    ] {
                        sqlx::query(sql).bind(now).bind(family_id).execute(&mut *tx).await.map_err(map_err)?;
                    }
                    tx.commit().await.map_err(map_err)?;
                    Ok(())
                }

                async fn revoke_access_token(&self, hash: &[u8], now: Timestamp) -> StoreResult<bool> {
                    if let Some(w) = self.hot_writer() {
                        return w.revoke_access_token(hash, now).await;
                    }
                    let r = sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL")
                        .bind(now)
                        .bind(hash)
                        .execute(&self.write)
                        .await
                        .map_err(map_err)?;
                    Ok(r.rows_affected() == 1)
                }

                async fn revoke_pat(&self, id: i64, user_id: UserId, now: Timestamp) -> StoreResult<bool> {
                    let r = sqlx::query(
                        "UPDATE personal_access_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
                    )
                    .bind(now)
                    .bind(id)
                    .bind(user_id)
                    .execute(&self.write)
                    .await
                    .map_err(map_err)?;
                    Ok(r.rows_affected() == 1)
                }

                async fn create_pat(&self, p: &NewPat) -> StoreResult<Pat> {
                    let row = sqlx::query(
                        "INSERT INTO personal_access_tokens (user_id, name, hash, prefix, scope, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id AS p_id, user_id AS p_user_id, \
                         name AS p_name, prefix AS p_prefix, scope AS p_scope, created_at AS p_created_at, \
                         expires_at AS p_expires_at, last_used_at AS p_last_used_at, revoked_at AS p_revoked_at",
                    )
                    .bind(p.user_id)
                    .bind(&p.name)
                    .bind(&p.hash)
                    .bind(&p.prefix)
                    .bind(p.scope.to_scope_string())
                    .bind(p.created_at)
                    .bind(p.expires_at)
                    .fetch_one(&self.write)
                    .await
                    .map_err(map_err)?;
                    pat_from(&row).map_err(map_err)
                }

                async fn pat_by_hash(&self, hash: &[u8]) -> StoreResult<Option<(Pat, User)>> {
                    if let Some(fast) = self.fast_pat(hash) {
                        return Ok(fast);
                    }
                    let sql = PAT_SQL;
                    let row = sqlx::query(sql).bind(hash).fetch_optional(&self.read).await.map_err(map_err)?;
                    let Some(r) = row else { return Ok(None) };
                    Ok(Some((pat_from(&r).map_err(map_err)?, user_from(&r, "u_").map_err(map_err)?)))
                }

                async fn touch_pat(&self, id: i64, now: Timestamp, min_interval: i64) -> StoreResult<()> {
                    sqlx::query(
                        "UPDATE personal_access_tokens SET last_used_at = $1 \
                         WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
                    )
                    .bind(now)
                    .bind(id)
                    .bind(now - min_interval)
                    .execute(&self.write)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                }

                async fn create_camera(&self, owner: UserId, f: &CameraFields, now: Timestamp) -> StoreResult<Camera> {
                    let sql = format!(
                        "INSERT INTO cameras (owner_id, name, codec, status, streams, snapshot, city, state, country, \
                         lat, lng, source, source_url, camera_type, description, is_video, framerate, outdoors, \
                         traffic, inactive, resolution_w, resolution_h, tags, is_public, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
                         $19, $20, $21, $22, $23, $24, $25, $26) RETURNING {CAMERA_COLS}"
                    );
                    let row = sqlx::query(&sql)
                        .bind(owner)
                        .bind(&f.name)
                        .bind(f.codec.as_str())
                        .bind(f.status.as_str())
                        .bind(json(&f.streams)?)
                        .bind(snapshot_json(f)?)
                        .bind(&f.city)
                        .bind(&f.state)
                        .bind(&f.country)
                        .bind(f.lat)
                        .bind(f.lng)
                        .bind(&f.source)
                        .bind(&f.source_url)
                        .bind(&f.camera_type)
                        .bind(&f.description)
                        .bind(f.is_video)
                        .bind(f.framerate)
                        .bind(f.outdoors)
                        .bind(f.traffic)
                        .bind(f.inactive)
                        .bind(f.resolution_w)
                        .bind(f.resolution_h)
                        .bind(json(&f.tags)?)
                        .bind(f.is_public)
                        .bind(now)
                        .bind(now)
                        .fetch_one(&self.write)
                        .await
                        .map_err(map_err)?;
                    camera_from(&row).map_err(map_err)
                }

                async fn camera(&self, owner: UserId, id: CameraId) -> StoreResult<Option<Camera>> {
                    let sql = format!("SELECT {CAMERA_COLS} FROM cameras WHERE id = $1 AND owner_id = $2");
                    let row = sqlx::query(&sql).bind(id).bind(owner).fetch_optional(&self.read).await.map_err(map_err)?;
                    row.map(|r| camera_from(&r)).transpose().map_err(map_err)
                }

                async fn list_cameras(&self, owner: UserId, limit: i64, offset: i64) -> StoreResult<(i64, Vec<Camera>)> {
                    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cameras WHERE owner_id = $1")
                        .bind(owner)
                        .fetch_one(&self.read)
                        .await
                        .map_err(map_err)?;
                    let sql = format!(
                        "SELECT {CAMERA_COLS} FROM cameras WHERE owner_id = $1 ORDER BY id LIMIT $2 OFFSET $3"
                    );
                    let rows = sqlx::query(&sql)
                        .bind(owner)
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.read)
                        .await
                        .map_err(map_err)?;
                    let cams = rows.iter().map(camera_from).collect::<Result<Vec<_>, _>>().map_err(map_err)?;
                    Ok((count, cams))
                }

                async fn update_camera(&self, c: &Camera) -> StoreResult<bool> {
                    let f = &c.fields;
                    let r = sqlx::query(
                        "UPDATE cameras SET name = $1, codec = $2, status = $3, streams = $4, snapshot = $5, \
                         city = $6, state = $7, country = $8, lat = $9, lng = $10, source = $11, source_url = $12, \
                         camera_type = $13, description = $14, is_video = $15, framerate = $16, outdoors = $17, \
                         traffic = $18, inactive = $19, resolution_w = $20, resolution_h = $21, tags = $22, \
                         is_public = $23, updated_at = $24, version = version + 1 \
                         WHERE id = $25 AND owner_id = $26 AND version = $27",
                    )
                    .bind(&f.name)
                    .bind(f.codec.as_str())
                    .bind(f.status.as_str())
                    .bind(json(&f.streams)?)
                    .bind(snapshot_json(f)?)
                    .bind(&f.city)
                    .bind(&f.state)
                    .bind(&f.country)
                    .bind(f.lat)
                    .bind(f.lng)
                    .bind(&f.source)
                    .bind(&f.source_url)
                    .bind(&f.camera_type)
                    .bind(&f.description)
                    .bind(f.is_video)
                    .bind(f.framerate)
                    .bind(f.outdoors)
                    .bind(f.traffic)
                    .bind(f.inactive)
                    .bind(f.resolution_w)
                    .bind(f.resolution_h)
                    .bind(json(&f.tags)?)
                    .bind(f.is_public)
                    .bind(c.updated_at)
                    .bind(c.id)
                    .bind(c.owner_id)
                    .bind(c.version)
                    .execute(&self.write)
                    .await
                    .map_err(map_err)?;
                    Ok(r.rows_affected() == 1)
                }

                async fn delete_camera(&self, owner: UserId, id: CameraId) -> StoreResult<bool> {
                    let r = sqlx::query("DELETE FROM cameras WHERE id = $1 AND owner_id = $2")
                        .bind(id)
                        .bind(owner)
                        .execute(&self.write)
                        .await
                        .map_err(map_err)?;
                    Ok(r.rows_affected() == 1)
                }

                async fn audit(&self, e: &AuditEvent) -> StoreResult<()> {
                    if let Some(w) = self.hot_writer() {
                        return w.audit(e).await;
                    }
                    sqlx::query(
                        "INSERT INTO audit_events (at, kind, user_id, client_id, ip, detail) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(e.at)
                    .bind(e.kind.as_str())
                    .bind(e.user_id)
                    .bind(&e.client_id)
                    .bind(&e.ip)
                    .bind(&e.detail)
                    .execute(&self.write)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                }

                async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<AuditRecord>> {
                    let rows = sqlx::query(
                        "SELECT id, at, kind, user_id, client_id, ip, detail FROM audit_events ORDER BY id DESC LIMIT $1",
                    )
                    .bind(limit)
                    .fetch_all(&self.read)
                    .await
                    .map_err(map_err)?;
                    rows.iter()
                        .map(|r| {
                            Ok(AuditRecord {
                                id: r.try_get("id")?,
                                at: r.try_get("at")?,
                                kind: r.try_get("kind")?,
                                user_id: r.try_get("user_id")?,
                                client_id: r.try_get("client_id")?,
                                ip: r.try_get("ip")?,
                                detail: r.try_get("detail")?,
                            })
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                        .map_err(map_err)
                }

                async fn purge_expired(&self, cutoff: Timestamp, batch: i64) -> StoreResult<PurgeCounts> {
                    // Every statement is an index range scan bounded by the batch, so one batch
                    // holds the writer for milliseconds whatever the table size. Per table, the
                    // expired rows go first and the revoked ones share what is left of the batch.
                    let run = |sql: &'static str, limit: i64| {
                        let pool = self.write.clone();
                        async move {
                            if limit <= 0 {
                                return Ok(0);
                            }
                            sqlx::query(sql)
                                .bind(cutoff)
                                .bind(limit)
                                .execute(&pool)
                                .await
                                .map(|r| r.rows_affected())
                                .map_err(map_err)
                        }
                    };
                    let both = |expired: &'static str, revoked: &'static str| async move {
                        let n = run(expired, batch).await?;
                        Ok::<u64, StoreError>(n + run(revoked, batch - n as i64).await?)
                    };
                    // Whole families first: a family past its latest token expiry, or revoked, can never
                    // be used again, and its tokens go with it (ON DELETE CASCADE), in id order.
                    // Then the stray expired or revoked tokens of families still alive.
                    let families = both(
                        "DELETE FROM token_families WHERE id IN (SELECT id FROM token_families \
                         WHERE expires_at < $1 LIMIT $2)",
                        "DELETE FROM token_families WHERE id IN (SELECT id FROM token_families \
                         WHERE revoked_at < $1 LIMIT $2)",
                    )
                    .await?;
                    let access_tokens = both(
                        "DELETE FROM access_tokens WHERE hash IN (SELECT hash FROM access_tokens \
                         WHERE expires_at < $1 LIMIT $2)",
                        "DELETE FROM access_tokens WHERE hash IN (SELECT hash FROM access_tokens \
                         WHERE revoked_at < $1 LIMIT $2)",
                    )
                    .await?;
                    let refresh_tokens = both(
                        "DELETE FROM refresh_tokens WHERE hash IN (SELECT hash FROM refresh_tokens \
                         WHERE expires_at < $1 LIMIT $2)",
                        "DELETE FROM refresh_tokens WHERE hash IN (SELECT hash FROM refresh_tokens \
                         WHERE revoked_at < $1 LIMIT $2)",
                    )
                    .await?;
                    let pats = both(
                        "DELETE FROM personal_access_tokens WHERE id IN (SELECT id FROM personal_access_tokens \
                         WHERE expires_at < $1 LIMIT $2)",
                        "DELETE FROM personal_access_tokens WHERE id IN (SELECT id FROM personal_access_tokens \
                         WHERE revoked_at < $1 LIMIT $2)",
                    )
                    .await?;
                    Ok(PurgeCounts { access_tokens, refresh_tokens, families, pats })
                }

                // ---- authorization codes, consents, sessions (issue 3)
                async fn create_auth_code(&self, c: &camgate_core::authorize::NewAuthCode) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO authorization_codes (hash, client_pk, user_id, redirect_uri, redirect_uri_given, \
                         scope, code_challenge, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(&c.hash)
                    .bind(c.client_pk)
                    .bind(c.user_id)
                    .bind(&c.redirect_uri)
                    .bind(c.redirect_uri_given)
                    .bind(c.scope.to_scope_string())
                    .bind(&c.code_challenge)
                    .bind(c.created_at)
                    .bind(c.expires_at)
                    .execute(&self.write)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                }

                async fn auth_code(&self, hash: &[u8]) -> StoreResult<Option<camgate_core::authorize::AuthCode>> {
                    // Read through the writer: the replay decision must see the latest claim.
                    let row = sqlx::query(
                        "SELECT client_pk, user_id, redirect_uri, redirect_uri_given, scope, code_challenge, \
                         created_at, expires_at, used_at, replayed_at, family_id \
                         FROM authorization_codes WHERE hash = $1",
                    )
                    .bind(hash)
                    .fetch_optional(&self.write)
                    .await
                    .map_err(map_err)?;
                    let Some(r) = row else { return Ok(None) };
                    let conv = || -> Result<camgate_core::authorize::AuthCode, sqlx::Error> {
                        let scope: String = r.try_get("scope")?;
                        Ok(camgate_core::authorize::AuthCode {
                            client_pk: r.try_get("client_pk")?,
                            user_id: r.try_get("user_id")?,
                            redirect_uri: r.try_get("redirect_uri")?,
                            redirect_uri_given: r.try_get("redirect_uri_given")?,
                            scope: scope_of(&scope),
                            code_challenge: r.try_get("code_challenge")?,
                            created_at: r.try_get("created_at")?,
                            expires_at: r.try_get("expires_at")?,
                            used_at: r.try_get("used_at")?,
                            replayed_at: r.try_get("replayed_at")?,
                            family_id: r.try_get("family_id")?,
                        })
                    };
                    conv().map(Some).map_err(map_err)
                }

                async fn claim_auth_code(&self, hash: &[u8], now: Timestamp) -> StoreResult<bool> {
                    if let Some(w) = self.hot_writer() {
                        return w.claim_auth_code(hash, now).await;
                    }
                    let r = sqlx::query("UPDATE authorization_codes SET used_at = $1 WHERE hash = $2 AND used_at IS NULL")
                        .bind(now)
                        .bind(hash)
                        .execute(&self.write)
                        .await
                        .map_err(map_err)?;
                    Ok(r.rows_affected() == 1)
                }

                async fn attach_auth_code_family(&self, hash: &[u8], family_id: FamilyId) -> StoreResult<bool> {
                    if let Some(w) = self.hot_writer() {
                        return w.attach_auth_code_family(hash, family_id).await;
                    }
                    // One statement: it serialises with mark_auth_code_replayed on the row, so
                    // whichever runs second sees the other's write.
                    let replayed: Option<Option<i64>> = sqlx::query_scalar(
                        "UPDATE authorization_codes SET family_id = $1 WHERE hash = $2 RETURNING replayed_at",
                    )
                    .bind(family_id)
                    .bind(hash)
                    .fetch_optional(&self.write)
                    .await
                    .map_err(map_err)?;
                    Ok(matches!(replayed, Some(Some(_))))
                }

                async fn mark_auth_code_replayed(&self, hash: &[u8], now: Timestamp) -> StoreResult<Option<FamilyId>> {
                    if let Some(w) = self.hot_writer() {
                        return w.mark_auth_code_replayed(hash, now).await;
                    }
                    let family: Option<Option<i64>> = sqlx::query_scalar(
                        "UPDATE authorization_codes SET replayed_at = COALESCE(replayed_at, $1) WHERE hash = $2 \
                         RETURNING family_id",
                    )
                    .bind(now)
                    .bind(hash)
                    .fetch_optional(&self.write)
                    .await
                    .map_err(map_err)?;
                    Ok(family.flatten())
                }

                async fn consent(&self, user_id: UserId, client_pk: ClientPk) -> StoreResult<Option<camgate_core::scope::ScopeSet>> {
                    let s: Option<String> = sqlx::query_scalar("SELECT scope FROM consents WHERE user_id = $1 AND client_pk = $2")
                        .bind(user_id)
                        .bind(client_pk)
                        .fetch_optional(&self.read)
                        .await
                        .map_err(map_err)?;
                    Ok(s.map(|s| scope_of(&s)))
                }

                async fn put_consent(
                    &self,
                    user_id: UserId,
                    client_pk: ClientPk,
                    scope: camgate_core::scope::ScopeSet,
                    now: Timestamp,
                ) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO consents (user_id, client_pk, scope, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (user_id, client_pk) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at",
                    )
                    .bind(user_id)
                    .bind(client_pk)
                    .bind(scope.to_scope_string())
                    .bind(now)
                    .bind(now)
                    .execute(&self.write)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                }

                async fn park_authz_request(&self, hash: &[u8], r: &camgate_core::authorize::ParkedRequest) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO authorization_requests (hash, client_pk, request, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(hash)
                    .bind(r.client_pk)
                    .bind(&r.request)
                    .bind(r.created_at)
                    .bind(r.expires_at)
                    .execute(&self.write)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                }

                async fn parked_authz_request(&self, hash: &[u8]) -> StoreResult<Option<camgate_core::authorize::ParkedRequest>> {
                    let row = sqlx::query(
                        "SELECT client_pk, request, created_at, expires_at FROM authorization_requests WHERE hash = $1",
                    )
                    .bind(hash)
                    .fetch_optional(&self.write)
                    .await
                    .map_err(map_err)?;
                    let Some(r) = row else { return Ok(None) };
                    let conv = || -> Result<camgate_core::authorize::ParkedRequest, sqlx::Error> {
                        Ok(camgate_core::authorize::ParkedRequest {
                            client_pk: r.try_get("client_pk")?,
                            request: r.try_get("request")?,
                            created_at: r.try_get("created_at")?,
                            expires_at: r.try_get("expires_at")?,
                        })
                    };
                    conv().map(Some).map_err(map_err)
                }

                async fn take_authz_request(&self, hash: &[u8]) -> StoreResult<Option<camgate_core::authorize::ParkedRequest>> {
                    let row = sqlx::query(
                        "DELETE FROM authorization_requests WHERE hash = $1 RETURNING client_pk, request, created_at, expires_at",
                    )
                    .bind(hash)
                    .fetch_optional(&self.write)
                    .await
                    .map_err(map_err)?;
                    let Some(r) = row else { return Ok(None) };
                    let conv = || -> Result<camgate_core::authorize::ParkedRequest, sqlx::Error> {
                        Ok(camgate_core::authorize::ParkedRequest {
                            client_pk: r.try_get("client_pk")?,
                            request: r.try_get("request")?,
                            created_at: r.try_get("created_at")?,
                            expires_at: r.try_get("expires_at")?,
                        })
                    };
                    conv().map(Some).map_err(map_err)
                }

                async fn create_session(&self, s: &camgate_core::sessions::NewSession) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO browser_sessions (hash, user_id, created_at, last_seen_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&s.hash)
                    .bind(s.user_id)
                    .bind(s.created_at)
                    .bind(s.created_at)
                    .bind(s.expires_at)
                    .execute(&self.write)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                }

                async fn session(&self, hash: &[u8]) -> StoreResult<Option<camgate_core::sessions::SessionRecord>> {
                    let row = sqlx::query(
                        "SELECT user_id, created_at, last_seen_at, expires_at FROM browser_sessions WHERE hash = $1",
                    )
                    .bind(hash)
                    .fetch_optional(&self.write)
                    .await
                    .map_err(map_err)?;
                    let Some(r) = row else { return Ok(None) };
                    let conv = || -> Result<camgate_core::sessions::SessionRecord, sqlx::Error> {
                        Ok(camgate_core::sessions::SessionRecord {
                            user_id: r.try_get("user_id")?,
                            created_at: r.try_get("created_at")?,
                            last_seen_at: r.try_get("last_seen_at")?,
                            expires_at: r.try_get("expires_at")?,
                        })
                    };
                    conv().map(Some).map_err(map_err)
                }

                async fn touch_session(&self, hash: &[u8], now: Timestamp, min_interval: i64) -> StoreResult<()> {
                    sqlx::query("UPDATE browser_sessions SET last_seen_at = $1 WHERE hash = $2 AND last_seen_at <= $3")
                        .bind(now)
                        .bind(hash)
                        .bind(now - min_interval)
                        .execute(&self.write)
                        .await
                        .map_err(map_err)?;
                    Ok(())
                }

                async fn delete_session(&self, hash: &[u8]) -> StoreResult<()> {
                    sqlx::query("DELETE FROM browser_sessions WHERE hash = $1")
                        .bind(hash)
                        .execute(&self.write)
                        .await
                        .map_err(map_err)?;
                    Ok(())
                }

                async fn throttle_failures(&self, key: &[u8], since: Timestamp) -> StoreResult<Option<(Timestamp, i64)>> {
                    if let Some(fast) = self.fast_throttle(key, since) {
                        return Ok(fast);
                    }
                    let row = sqlx::query(THROTTLE_SQL)
                        .bind(key)
                        .bind(since)
                        .fetch_optional(&self.write)
                        .await
                        .map_err(map_err)?;
                    let Some(r) = row else { return Ok(None) };
                    Ok(Some((
                        r.try_get("window_start").map_err(map_err)?,
                        r.try_get("failures").map_err(map_err)?,
                    )))
                }

                async fn throttle_record_failure(&self, key: &[u8], now: Timestamp, since: Timestamp) -> StoreResult<(Timestamp, i64)> {
                    // One atomic upsert: a window that started at or before `since` is over and
                    // restarts at `now` (both CASEs read the old row).
                    let r = sqlx::query(
                        "INSERT INTO login_throttle (key, window_start, failures) VALUES ($1, $2, 1) \
                         ON CONFLICT (key) DO UPDATE SET \
                         failures = CASE WHEN login_throttle.window_start <= $3 THEN 1 ELSE login_throttle.failures + 1 END, \
                         window_start = CASE WHEN login_throttle.window_start <= $4 THEN $5 ELSE login_throttle.window_start END \
                         RETURNING window_start, failures",
                    )
                    .bind(key)
                    .bind(now)
                    .bind(since)
                    .bind(since)
                    .bind(now)
                    .fetch_one(&self.write)
                    .await
                    .map_err(map_err)?;
                    Ok((
                        r.try_get("window_start").map_err(map_err)?,
                        r.try_get("failures").map_err(map_err)?,
                    ))
                }

                async fn purge_authorize(&self, cutoff: Timestamp, batch: i64) -> StoreResult<u64> {
                    let mut total = 0;
                    for sql in [
                        "DELETE FROM authorization_codes WHERE hash IN (SELECT hash FROM authorization_codes \
                         WHERE expires_at < $1 LIMIT $2)",
                        "DELETE FROM authorization_requests WHERE hash IN (SELECT hash FROM authorization_requests \
                         WHERE expires_at < $1 LIMIT $2)",
                        "DELETE FROM browser_sessions WHERE hash IN (SELECT hash FROM browser_sessions \
                         WHERE expires_at < $1 LIMIT $2)",
                        "DELETE FROM login_throttle WHERE key IN (SELECT key FROM login_throttle \
                         WHERE window_start < $1 LIMIT $2)",
                    ] {
                        total += sqlx::query(sql)
                            .bind(cutoff)
                            .bind(batch)
                            .execute(&self.write)
                            .await
                            .map_err(map_err)?
                            .rows_affected();
                    }
                    Ok(total)
                }

                // ---- signing keys, JWT denylist, camera search (issue 7)

                async fn signing_keys(&self, now: Timestamp) -> StoreResult<Vec<SigningKeyRecord>> {
                    let rows = sqlx::query(
                        "SELECT kid, alg, private_key, created_at, retired_at, verify_until FROM signing_keys \
                         WHERE verify_until IS NULL OR verify_until > $1 ORDER BY created_at, kid",
                    )
                    .bind(now)
                    .fetch_all(&self.read)
                    .await
                    .map_err(map_err)?;
                    rows.iter()
                        .map(|r| {
                            Ok(SigningKeyRecord {
                                kid: r.try_get("kid")?,
                                alg: r.try_get("alg")?,
                                private_key: r.try_get("private_key")?,
                                created_at: r.try_get("created_at")?,
                                retired_at: r.try_get("retired_at")?,
                                verify_until: r.try_get("verify_until")?,
                            })
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                        .map_err(map_err)
                }

                async fn active_signing_kid(&self) -> StoreResult<Option<String>> {
                    if let Some(fast) = self.fast_active_kid() {
                        return Ok(fast);
                    }
                    sqlx::query_scalar::<_, String>(ACTIVE_KID_SQL)
                    .fetch_optional(&self.read)
                    .await
                    .map_err(map_err)
                }

                async fn insert_signing_key_if_none(&self, key: &SigningKeyRecord) -> StoreResult<bool> {
                    let r = sqlx::query(
                        "INSERT INTO signing_keys (kid, alg, private_key, created_at) \
                         SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)",
                    )
                    .bind(&key.kid)
                    .bind(&key.alg)
                    .bind(&key.private_key)
                    .bind(key.created_at)
                    .execute(&self.write)
                    .await
                    .map_err(map_err)?;
                    Ok(r.rows_affected() == 1)
                }

                async fn rotate_signing_key(
                    &self,
                    key: &SigningKeyRecord,
                    now: Timestamp,
                    verify_until: Timestamp,
                ) -> StoreResult<()> {
                    let mut tx = self.write.begin().await.map_err(map_err)?;
                    sqlx::query("UPDATE signing_keys SET retired_at = $1, verify_until = $2 WHERE retired_at IS NULL")
                        .bind(now)
                        .bind(verify_until)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    sqlx::query("INSERT INTO signing_keys (kid, alg, private_key, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(&key.kid)
                        .bind(&key.alg)
                        .bind(&key.private_key)
                        .bind(key.created_at)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    tx.commit().await.map_err(map_err)?;
                    Ok(())
                }

                async fn deny_jwt(&self, jti: &str, until: Timestamp) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO jwt_denylist (jti, expires_at) VALUES ($1, $2) \
                         ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at \
                         WHERE jwt_denylist.expires_at < excluded.expires_at",
                    )
                    .bind(jti)
                    .bind(until)
                    .execute(&self.write)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                }

                async fn jwt_subject(
                    &self,
                    client_id: &str,
                    user_id: Option<UserId>,
                    jti: &str,
                ) -> StoreResult<Option<JwtSubject>> {
                    let sql = "SELECT c.id AS c_pk, c.client_id AS c_client_id, c.owner_id AS c_owner_id, \
                         c.profile AS c_profile, \
                         EXISTS (SELECT 1 FROM jwt_denylist d WHERE d.jti = $1) AS denied, \
                         u.id AS u_id, u.email AS u_email, u.password_hash AS u_password_hash, \
                         u.first_name AS u_first_name, u.last_name AS u_last_name, u.phone AS u_phone, \
                         u.is_admin AS u_is_admin, u.disabled AS u_disabled, u.created_at AS u_created_at, \
                         u.password_changed_at AS u_password_changed_at \
                         FROM clients c LEFT JOIN users u ON u.id = $2 \
                         WHERE c.client_id = $3";
                    let row = sqlx::query(sql)
                        .bind(jti)
                        .bind(user_id)
                        .bind(client_id)
                        .fetch_optional(&self.read)
                        .await
                        .map_err(map_err)?;
                    let Some(r) = row else { return Ok(None) };
                    let conv = || -> Result<JwtSubject, sqlx::Error> {
                        let uid: Option<i64> = r.try_get("u_id")?;
                        Ok(JwtSubject {
                            client: ClientRef {
                                pk: r.try_get("c_pk")?,
                                client_id: r.try_get("c_client_id")?,
                                owner_id: r.try_get("c_owner_id")?,
                                profile: r.try_get("c_profile")?,
                            },
                            user: match uid {
                                Some(_) => Some(user_from(&r, "u_")?),
                                None => None,
                            },
                            denied: r.try_get("denied")?,
                        })
                    };
                    conv().map(Some).map_err(map_err)
                }

                async fn purge_jwt_state(&self, cutoff: Timestamp, batch: i64) -> StoreResult<u64> {
                    let mut n = 0;
                    for sql in [
                        "DELETE FROM jwt_denylist WHERE jti IN (SELECT jti FROM jwt_denylist WHERE expires_at < $1 LIMIT $2)",
                        "DELETE FROM signing_keys WHERE kid IN (SELECT kid FROM signing_keys \
                         WHERE verify_until IS NOT NULL AND verify_until < $1 LIMIT $2)",
                    ] {
                        n += sqlx::query(sql)
                            .bind(cutoff)
                            .bind(batch)
                            .execute(&self.write)
                            .await
                            .map_err(map_err)?
                            .rows_affected();
                    }
                    Ok(n)
                }

                async fn search_cameras(
                    &self,
                    q: &camgate_core::cam2::CameraQuery,
                    after_id: CameraId,
                    offset: i64,
                    limit: i64,
                ) -> StoreResult<Vec<Camera>> {
                    let (sql, args) = camera_search_sql(q, after_id, offset, limit);
                    let mut query = sqlx::query(&sql);
                    for a in args {
                        query = match a {
                            Arg::I(v) => query.bind(v),
                            Arg::F(v) => query.bind(v),
                            Arg::S(v) => query.bind(v),
                        };
                    }
                    let rows = query.fetch_all(&self.read).await.map_err(map_err)?;
                    rows.iter().map(camera_from).collect::<Result<Vec<_>, _>>().map_err(map_err)
                }

                async fn import_cameras(
                    &self,
                    owner: UserId,
                    rows: &[camgate_core::cam2::NewCamera],
                ) -> StoreResult<u64> {
                    if rows.is_empty() {
                        return Ok(0);
                    }
                    let numbered = <$Db as sqlx::Database>::NAME != "SQLite";
                    let full = import_sql(IMPORT_CHUNK.min(rows.len()), numbered);
                    let mut tx = self.write.begin().await.map_err(map_err)?;
                    for chunk in rows.chunks(IMPORT_CHUNK) {
                        let partial;
                        let sql = if chunk.len() == IMPORT_CHUNK.min(rows.len()) {
                            &full
                        } else {
                            partial = import_sql(chunk.len(), numbered);
                            &partial
                        };
                        let mut q = sqlx::query(sql);
                        for r in chunk {
                            let f = &r.fields;
                            q = q
                                .bind(owner)
                                .bind(&f.name)
                                .bind(f.codec.as_str())
                                .bind(f.status.as_str())
                                .bind(json(&f.streams)?)
                                .bind(snapshot_json(f)?)
                                .bind(&f.city)
                                .bind(&f.state)
                                .bind(&f.country)
                                .bind(f.lat)
                                .bind(f.lng)
                                .bind(&f.source)
                                .bind(&f.source_url)
                                .bind(&f.camera_type)
                                .bind(&f.description)
                                .bind(f.is_video)
                                .bind(f.framerate)
                                .bind(f.outdoors)
                                .bind(f.traffic)
                                .bind(f.inactive)
                                .bind(f.resolution_w)
                                .bind(f.resolution_h)
                                .bind(json(&f.tags)?)
                                .bind(f.is_public)
                                .bind(r.created_at)
                                .bind(r.updated_at);
                        }
                        q.execute(&mut *tx).await.map_err(map_err)?;
                    }
                    tx.commit().await.map_err(map_err)?;
                    Ok(rows.len() as u64)
                }

                async fn analyze_cameras(&self) -> StoreResult<()> {
                    let mut conn = self.write.acquire().await.map_err(map_err)?;
                    if <$Db as sqlx::Database>::NAME == "SQLite" {
                        // Sampled statistics (PostgreSQL samples by itself): seconds, not minutes,
                        // at a million rows.
                        sqlx::query("PRAGMA analysis_limit = 1000").execute(&mut *conn).await.map_err(map_err)?;
                    }
                    sqlx::query("ANALYZE cameras").execute(&mut *conn).await.map_err(map_err)?;
                    Ok(())
                }

                // ---- dashboard (issue 8)
                async fn clients_by_owner(&self, owner: UserId) -> StoreResult<Vec<Client>> {
                    let sql = format!("SELECT {CLIENT_COLS} FROM clients WHERE owner_id = $1 ORDER BY id");
                    let rows = sqlx::query(&sql).bind(owner).fetch_all(&self.read).await.map_err(map_err)?;
                    rows.iter().map(client_from).collect::<Result<Vec<_>, _>>().map_err(map_err)
                }

                async fn update_client(
                    &self,
                    pk: ClientPk,
                    owner: UserId,
                    u: &camgate_core::dashboard::ClientUpdate,
                ) -> StoreResult<bool> {
                    let r = sqlx::query(
                        "UPDATE clients SET name = $1, redirect_uris = $2, grants = $3, scopes = $4, profile = $5 \
                         WHERE id = $6 AND owner_id = $7",
                    )
                    .bind(&u.name)
                    .bind(json(&u.redirect_uris)?)
                    .bind(grants_str(&u.grants))
                    .bind(u.scopes.to_scope_string())
                    .bind(&u.profile)
                    .bind(pk)
                    .bind(owner)
                    .execute(&self.write)
                    .await
                    .map_err(map_err)?;
                    Ok(r.rows_affected() == 1)
                }

                async fn delete_client(&self, pk: ClientPk, owner: UserId) -> StoreResult<bool> {
                    let r = sqlx::query("DELETE FROM clients WHERE id = $1 AND owner_id = $2")
                        .bind(pk)
                        .bind(owner)
                        .execute(&self.write)
                        .await
                        .map_err(map_err)?;
                    Ok(r.rows_affected() == 1)
                }

                async fn rotate_client_secret(
                    &self,
                    pk: ClientPk,
                    owner: UserId,
                    new_sha256: &[u8],
                    previous_until: Option<Timestamp>,
                ) -> StoreResult<bool> {
                    // One statement: the right-hand sides read the row as it was, so the
                    // current secret moves to `previous_*` as the new one takes its place.
                    let keep = previous_until.is_some();
                    let r = sqlx::query(
                        "UPDATE clients SET \
                         previous_secret_sha256 = CASE WHEN $1 THEN secret_sha256 ELSE NULL END, \
                         previous_secret_phc = CASE WHEN $2 THEN secret_phc ELSE NULL END, \
                         previous_secret_expires_at = $3, \
                         secret_sha256 = $4, secret_phc = NULL \
                         WHERE id = $5 AND owner_id = $6 AND kind = 'confidential'",
                    )
                    .bind(keep)
                    .bind(keep)
                    .bind(previous_until)
                    .bind(new_sha256)
                    .bind(pk)
                    .bind(owner)
                    .execute(&self.write)
                    .await
                    .map_err(map_err)?;
                    Ok(r.rows_affected() == 1)
                }

                async fn client_previous_secret(&self, pk: ClientPk) -> StoreResult<Option<(SecretHash, Timestamp)>> {
                    let row = sqlx::query(
                        "SELECT previous_secret_sha256, previous_secret_phc, previous_secret_expires_at \
                         FROM clients WHERE id = $1",
                    )
                    .bind(pk)
                    .fetch_optional(&self.write)
                    .await
                    .map_err(map_err)?;
                    let Some(r) = row else { return Ok(None) };
                    let sha: Option<Vec<u8>> = r.try_get("previous_secret_sha256").map_err(map_err)?;
                    let phc: Option<String> = r.try_get("previous_secret_phc").map_err(map_err)?;
                    let until: Option<i64> = r.try_get("previous_secret_expires_at").map_err(map_err)?;
                    Ok(match (sha, phc, until) {
                        (Some(h), _, Some(t)) => Some((SecretHash::Sha256(h), t)),
                        (None, Some(p), Some(t)) => Some((SecretHash::Argon2(p), t)),
                        _ => None,
                    })
                }

                async fn pats_by_user(&self, user_id: UserId) -> StoreResult<Vec<Pat>> {
                    let rows = sqlx::query(
                        "SELECT id AS p_id, user_id AS p_user_id, name AS p_name, prefix AS p_prefix, \
                         scope AS p_scope, created_at AS p_created_at, expires_at AS p_expires_at, \
                         last_used_at AS p_last_used_at, revoked_at AS p_revoked_at \
                         FROM personal_access_tokens WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id DESC",
                    )
                    .bind(user_id)
                    .fetch_all(&self.read)
                    .await
                    .map_err(map_err)?;
                    rows.iter().map(pat_from).collect::<Result<Vec<_>, _>>().map_err(map_err)
                }

                async fn authorized_apps(
                    &self,
                    user_id: UserId,
                    now: Timestamp,
                ) -> StoreResult<Vec<camgate_core::dashboard::AuthorizedApp>> {
                    // Driven by the user's own rows (consents, families by the user index), never
                    // by a scan of all clients.
                    let rows = sqlx::query(
                        "SELECT c.id, c.client_id, c.name, cs.scope AS consent_scope, cs.updated_at AS approved_at, \
                         (SELECT MAX(a.created_at) FROM access_tokens a JOIN token_families f ON f.id = a.family_id \
                          WHERE f.user_id = $1 AND f.client_pk = c.id) AS last_used_at, \
                         (SELECT a.scope FROM access_tokens a JOIN token_families f ON f.id = a.family_id \
                          WHERE f.user_id = $2 AND f.client_pk = c.id ORDER BY a.created_at DESC LIMIT 1) AS token_scope \
                         FROM clients c LEFT JOIN consents cs ON cs.client_pk = c.id AND cs.user_id = $3 \
                         WHERE c.id IN (SELECT client_pk FROM consents WHERE user_id = $4 \
                           UNION SELECT client_pk FROM token_families WHERE user_id = $5 AND revoked_at IS NULL \
                           AND (expires_at IS NULL OR expires_at > $6)) \
                         ORDER BY c.name, c.id",
                    )
                    .bind(user_id)
                    .bind(user_id)
                    .bind(user_id)
                    .bind(user_id)
                    .bind(user_id)
                    .bind(now)
                    .fetch_all(&self.read)
                    .await
                    .map_err(map_err)?;
                    rows.iter()
                        .map(|r| {
                            let consent: Option<String> = r.try_get("consent_scope")?;
                            let token: Option<String> = r.try_get("token_scope")?;
                            Ok(camgate_core::dashboard::AuthorizedApp {
                                client_pk: r.try_get("id")?,
                                client_id: r.try_get("client_id")?,
                                name: r.try_get("name")?,
                                scope: consent.or(token).map(|s| scope_of(&s)).unwrap_or_default(),
                                approved_at: r.try_get("approved_at")?,
                                last_used_at: r.try_get("last_used_at")?,
                            })
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                        .map_err(map_err)
                }

                async fn revoke_client_for_user(
                    &self,
                    user_id: UserId,
                    client_pk: ClientPk,
                    now: Timestamp,
                ) -> StoreResult<bool> {
                    let mut tx = self.write.begin().await.map_err(map_err)?;
                    let consents = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_pk = $2")
                        .bind(user_id)
                        .bind(client_pk)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?
                        .rows_affected();
                    // Tokens first, then their families (as set_password does), so the sweeper
                    // can purge them and no concurrent claim slips through.
                    for sql in [
                        "UPDATE access_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND family_id IN \
                         (SELECT id FROM token_families WHERE user_id = $2 AND client_pk = $3)",
                        "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND family_id IN \
                         (SELECT id FROM token_families WHERE user_id = $2 AND client_pk = $3)",
                    ] {
                        sqlx::query(sql)
                            .bind(now)
                            .bind(user_id)
                            .bind(client_pk)
                            .execute(&mut *tx)
                            .await
                            .map_err(map_err)?;
                    }
                    let families = sqlx::query(
                        "UPDATE token_families SET revoked_at = $1 \
                         WHERE user_id = $2 AND client_pk = $3 AND revoked_at IS NULL \
                         AND (expires_at IS NULL OR expires_at > $4)",
                    )
                    .bind(now)
                    .bind(user_id)
                    .bind(client_pk)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                    // Expired families count as nothing to revoke, but are closed too.
                    sqlx::query(
                        "UPDATE token_families SET revoked_at = $1 WHERE user_id = $2 AND client_pk = $3 AND revoked_at IS NULL",
                    )
                    .bind(now)
                    .bind(user_id)
                    .bind(client_pk)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    // Outstanding codes: marked used (no exchange can claim them) and replayed
                    // (an exchange that claimed one already revokes what it mints on attach).
                    sqlx::query(
                        "UPDATE authorization_codes SET used_at = COALESCE(used_at, $1), \
                         replayed_at = COALESCE(replayed_at, $2) WHERE user_id = $3 AND client_pk = $4",
                    )
                    .bind(now)
                    .bind(now)
                    .bind(user_id)
                    .bind(client_pk)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                    tx.commit().await.map_err(map_err)?;
                    Ok(consents + families > 0)
                }

                async fn delete_user_sessions(&self, user_id: UserId) -> StoreResult<u64> {
                    let r = sqlx::query("DELETE FROM browser_sessions WHERE user_id = $1")
                        .bind(user_id)
                        .execute(&self.write)
                        .await
                        .map_err(map_err)?;
                    Ok(r.rows_affected())
                }

                async fn list_users(&self, limit: i64, offset: i64) -> StoreResult<(i64, Vec<User>)> {
                    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                        .fetch_one(&self.read)
                        .await
                        .map_err(map_err)?;
                    let sql = format!("SELECT {USER_COLS} FROM users ORDER BY id LIMIT $1 OFFSET $2");
                    let rows = sqlx::query(&sql)
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.read)
                        .await
                        .map_err(map_err)?;
                    let users = rows.iter().map(|r| user_from(r, "")).collect::<Result<Vec<_>, _>>().map_err(map_err)?;
                    Ok((count, users))
                }

                async fn create_family_audited(
                    &self,
                    family: &NewFamily,
                    access: &NewAccessToken,
                    refresh: Option<&NewRefreshToken>,
                    audits: &[AuditEvent],
                ) -> StoreResult<FamilyId> {
                    if let Some(w) = self.hot_writer() {
                        return w.create_family(family, access, refresh, audits).await;
                    }
                    let id = self.create_family(family, access, refresh).await?;
                    camgate_core::store::write_audits(self, audits).await;
                    Ok(id)
                }

                async fn rotate_refresh_audited(
                    &self,
                    family_id: FamilyId,
                    old: &[u8],
                    now: Timestamp,
                    access: &NewAccessToken,
                    refresh: &NewRefreshToken,
                    audit: &AuditEvent,
                ) -> StoreResult<bool> {
                    if let Some(w) = self.hot_writer() {
                        return w.rotate_refresh(family_id, old, now, access, refresh, Some(audit)).await;
                    }
                    let won = self.rotate_refresh(family_id, old, now, access, refresh).await?;
                    if won {
                        camgate_core::store::write_audits(self, std::slice::from_ref(audit)).await;
                    }
                    Ok(won)
                }
            }
        }
    };
}
