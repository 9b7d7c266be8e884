//! Statements that both implementations of the token role run (SQLite's rusqlite code and the
//! shared sqlx code), and the column lists the row structs of [`super::rows`] decode. One text
//! per statement, so a fix to the riskiest SQL (rotation, family revocation) lands once.

/// A user's columns, prefixed `u_` ([`super::rows::UserRow`]), as a `SELECT` list.
macro_rules! user_u_cols {
    ($t:literal) => {
        concat!(
            $t,
            "id AS u_id, ",
            $t,
            "email AS u_email, ",
            $t,
            "password_hash AS u_password_hash, ",
            $t,
            "first_name AS u_first_name, ",
            $t,
            "last_name AS u_last_name, ",
            $t,
            "phone AS u_phone, ",
            $t,
            "is_admin AS u_is_admin, ",
            $t,
            "disabled AS u_disabled, ",
            $t,
            "created_at AS u_created_at, ",
            $t,
            "password_changed_at AS u_password_changed_at, ",
            $t,
            "email_verified AS u_email_verified, ",
            $t,
            "is_dealer AS u_is_dealer"
        )
    };
}

/// The user columns, unqualified.
pub(crate) const USER_COLS: &str = user_u_cols!("");

pub(crate) const CLIENT_COLS: &str = "id, client_id, secret_sha256, secret_phc, name, owner_id, \
     kind, redirect_uris, grants, scopes, profile, created_at, oidc, allow_password_without_mfa";

/// A camera's columns ([`super::rows::CameraRow`], in this order: SQLite decodes by position).
macro_rules! camera_cols {
    () => {
        "id, owner_id, name, codec, status, streams, snapshot, city, state, country, lat, lng, \
         source, source_url, camera_type, description, is_video, framerate, outdoors, traffic, \
         inactive, resolution_w, resolution_h, tags, is_public, created_at, updated_at, version"
    };
}

pub(crate) const CAMERA_COLS: &str = camera_cols!();

/// A listing's counts: the caller's own cameras (the trigger-kept counter) and the cameras
/// shared with them. With no shares the listing takes the owner-only statements below.
pub(crate) const CAMERA_COUNTS_SQL: &str = "SELECT \
     COALESCE((SELECT n FROM camera_counts WHERE owner_id = $1), 0) AS own, \
     (SELECT COUNT(*) FROM camera_shares WHERE user_id = $1) AS shared";

/// A user's camera listing version (`camera_counts.version`, kept by triggers).
pub(crate) const CAMERA_LISTING_VERSION_SQL: &str =
    "SELECT COALESCE((SELECT version FROM camera_counts WHERE owner_id = $1), 0)";

/// The CAM2 search version (`camera_search_versions`, kept by triggers).
pub(crate) const CAMERA_SEARCH_VERSION_SQL: &str =
    "SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM camera_search_versions";

/// `cols` (a `, `-separated SELECT list) with every column prefixed by table alias `t`.
pub(crate) fn qualified(cols: &str, t: &str) -> String {
    cols.split(", ")
        .map(|c| format!("{t}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Cameras shared with a user (`s.user_id`), as [`super::rows::SharedCameraRow`] reads them:
/// the camera's columns, the share's permission and the owner's names. Callers add the
/// `WHERE` on `s`.
pub(crate) static SHARED_CAMERAS_SQL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| {
        format!(
            "SELECT {}, s.permission AS s_permission, o.first_name AS o_first_name, \
             o.last_name AS o_last_name, o.email AS o_email FROM camera_shares s \
             JOIN cameras c ON c.id = s.camera_id JOIN users o ON o.id = c.owner_id",
            qualified(CAMERA_COLS, "c")
        )
    });

/// A page of a user's own and shared cameras in id order, after camera `$2` (0: from the
/// start), skipping `$4`: the columns of [`CAMERA_COLS`], then how each is shared (NULL for
/// the user's own) and the owner's names.
pub(crate) static SHARED_PAGE_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT * FROM (SELECT {CAMERA_COLS}, NULL AS s_permission, NULL AS o_first_name, \
         NULL AS o_last_name, NULL AS o_email FROM cameras WHERE owner_id = $1 \
         UNION ALL {} WHERE s.user_id = $1) t \
         WHERE id > $2 ORDER BY id LIMIT $3 OFFSET $4",
        *SHARED_CAMERAS_SQL
    )
});

/// A page of an owner's cameras by offset (the `cameras_owner (owner_id, id)` index).
pub(crate) const CAMERA_PAGE_OFFSET_SQL: &str = concat!(
    "SELECT ",
    camera_cols!(),
    " FROM cameras WHERE owner_id = $1 ORDER BY id LIMIT $2 OFFSET $3"
);

/// A page after a camera id (keyset): as cheap at page 1,000 as at page 1.
pub(crate) const CAMERA_PAGE_AFTER_SQL: &str = concat!(
    "SELECT ",
    camera_cols!(),
    " FROM cameras WHERE owner_id = $1 AND id > $2 ORDER BY id LIMIT $3"
);

/// A PAT's columns, prefixed `p_` ([`super::rows::PatRow`]).
pub(crate) const PAT_COLS: &str = "id AS p_id, user_id AS p_user_id, name AS p_name, \
     prefix AS p_prefix, scope AS p_scope, created_at AS p_created_at, \
     expires_at AS p_expires_at, last_used_at AS p_last_used_at, revoked_at AS p_revoked_at";

/// The hot lookup of a resource request: an access token with its family, client and user.
/// SQLite's reader decodes it by position (`AT_USER`), the order below. A token issued before
/// its family's latest rotation (a lower generation) is revoked ([`NEXT_ACCESS_GENERATION`]).
pub(crate) const ACCESS_TOKEN_SQL: &str = concat!(
    "SELECT a.family_id, a.scope, a.created_at AS a_created_at, a.expires_at, \
     (a.revoked_at IS NOT NULL OR f.revoked_at IS NOT NULL \
      OR a.generation < f.access_generation) AS revoked, \
     c.id AS c_pk, c.client_id AS c_client_id, c.owner_id AS c_owner_id, c.profile AS c_profile, ",
    user_u_cols!("u."),
    ", f.camera_id AS f_camera_id, f.actor_id AS f_actor_id FROM access_tokens a \
     JOIN token_families f ON f.id = a.family_id \
     JOIN clients c ON c.id = f.client_pk \
     LEFT JOIN users u ON u.id = f.user_id \
     WHERE a.hash = $1"
);

/// A personal access token with its user.
pub(crate) const PAT_SQL: &str = concat!(
    "SELECT p.id AS p_id, p.user_id AS p_user_id, p.name AS p_name, p.prefix AS p_prefix, \
     p.scope AS p_scope, p.created_at AS p_created_at, p.expires_at AS p_expires_at, \
     p.last_used_at AS p_last_used_at, p.revoked_at AS p_revoked_at, ",
    user_u_cols!("u."),
    " FROM personal_access_tokens p JOIN users u ON u.id = p.user_id WHERE p.hash = $1"
);

/// A refresh token with its family's client and user.
pub(crate) const REFRESH_TOKEN_SQL: &str =
    "SELECT r.family_id, r.scope, r.created_at, r.expires_at, r.used_at, \
     (r.revoked_at IS NOT NULL OR f.revoked_at IS NOT NULL) AS revoked, f.client_pk, f.user_id, \
     f.auth_time, f.amr, \
     (f.user_id IS NULL OR EXISTS (SELECT 1 FROM users u WHERE u.id = f.user_id AND NOT u.disabled)) \
     AS user_active \
     FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id WHERE r.hash = $1";

/// What a resource route needs about the holder of a JWT: its client, its user, and whether
/// the `jti` is denylisted.
pub(crate) const JWT_SUBJECT_SQL: &str = concat!(
    "SELECT c.id AS c_pk, c.client_id AS c_client_id, c.owner_id AS c_owner_id, \
     c.profile AS c_profile, EXISTS (SELECT 1 FROM jwt_denylist d WHERE d.jti = $1) AS denied, ",
    user_u_cols!("u."),
    " FROM clients c LEFT JOIN users u ON u.id = $2 WHERE c.client_id = $3"
);

pub(crate) const USER_BY_ID_SQL: &str =
    concat!("SELECT ", user_u_cols!(""), " FROM users WHERE id = $1");

pub(crate) const USER_BY_EMAIL_SQL: &str = concat!(
    "SELECT ",
    user_u_cols!(""),
    " FROM users WHERE email_norm = $1"
);

pub(crate) const CLIENT_BY_ID_SQL: &str = "SELECT id, client_id, secret_sha256, secret_phc, name, \
     owner_id, kind, redirect_uris, grants, scopes, profile, created_at, oidc, \
     allow_password_without_mfa FROM clients WHERE client_id = $1";

/// A login-throttle counter still in its window.
pub(crate) const THROTTLE_SQL: &str =
    "SELECT window_start, failures FROM login_throttle WHERE key = $1 AND window_start > $2";

/// The kid of the active access-token signing key (the newest unretired one).
pub(crate) const ACTIVE_KID_SQL: &str = "SELECT kid FROM signing_keys \
     WHERE retired_at IS NULL AND purpose = 'access' ORDER BY created_at DESC, kid DESC LIMIT 1";

// ---- token writes

pub(crate) const INSERT_FAMILY: &str = "INSERT INTO token_families \
     (user_id, client_pk, grant_type, created_at, expires_at, auth_time, amr, actor_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";

/// A new access token belongs to its family's current generation.
pub(crate) const INSERT_ACCESS: &str = "INSERT INTO access_tokens \
     (hash, family_id, scope, created_at, expires_at, generation) VALUES ($1, $2, $3, $4, $5, \
     (SELECT access_generation FROM token_families WHERE id = $2))";

pub(crate) const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens \
     (hash, family_id, scope, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";

/// A family that gains a token which never expires never expires either.
pub(crate) const FAMILY_NEVER_EXPIRES: &str =
    "UPDATE token_families SET expires_at = NULL WHERE id = $1";

/// A family expires with its latest token.
pub(crate) const FAMILY_EXTEND: &str = "UPDATE token_families SET expires_at = $1 \
     WHERE id = $2 AND expires_at IS NOT NULL AND expires_at < $1";

/// The refresh claim: one conditional UPDATE; exactly one concurrent claimer changes the row
/// (row lock on PostgreSQL, the single writer on SQLite).
pub(crate) const CLAIM_REFRESH: &str = "UPDATE refresh_tokens SET used_at = $1 \
     WHERE hash = $2 AND used_at IS NULL AND revoked_at IS NULL \
     AND NOT EXISTS (SELECT 1 FROM token_families f \
       WHERE f.id = refresh_tokens.family_id AND f.revoked_at IS NOT NULL)";

/// "causes all previous tokens to become invalid" (the Angelcam refresh rule): a rotation
/// starts a new generation of its family's access tokens, and every token of an older one
/// reads as revoked ([`ACCESS_TOKEN_SQL`]). One change to the family row, which the rotation
/// updates anyway, instead of a write to each old token's row and index entries.
pub(crate) const NEXT_ACCESS_GENERATION: &str =
    "UPDATE token_families SET access_generation = access_generation + 1 WHERE id = $1";

/// Revoking a family: the family row, then its tokens (both `$1` = now, `$2` = family), so
/// that the sweeper purges them with their `revoked_at`.
pub(crate) const REVOKE_FAMILY: [&str; 3] = [
    "UPDATE token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
    "UPDATE access_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
];

/// An access token added to the family of a reusable refresh token that is still live (in the
/// family's current generation, as [`INSERT_ACCESS`]).
pub(crate) const ADD_ACCESS: &str = "INSERT INTO access_tokens \
     (hash, family_id, scope, created_at, expires_at, generation) \
     SELECT $1, $2, $3, $4, $5, \
     (SELECT access_generation FROM token_families WHERE id = $2) WHERE EXISTS (\
       SELECT 1 FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id \
       WHERE r.hash = $6 AND r.revoked_at IS NULL AND f.revoked_at IS NULL)";

pub(crate) const REVOKE_ACCESS: &str =
    "UPDATE access_tokens SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL";

pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit_events \
     (at, kind, user_id, client_id, ip, detail) VALUES ($1, $2, $3, $4, $5, $6)";

pub(crate) const INSERT_PAT: &str = "INSERT INTO personal_access_tokens \
     (user_id, name, hash, prefix, scope, created_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";

pub(crate) const REVOKE_PAT: &str = "UPDATE personal_access_tokens SET revoked_at = $1 \
     WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL";

/// Records a PAT's use at most once per interval (`$3` = now - interval).
pub(crate) const TOUCH_PAT: &str = "UPDATE personal_access_tokens SET last_used_at = $1 \
     WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)";

pub(crate) const CLAIM_CODE: &str =
    "UPDATE authorization_codes SET used_at = $1 WHERE hash = $2 AND used_at IS NULL";

/// One statement: it serialises with [`MARK_CODE_REPLAYED`] on the row, so whichever runs
/// second sees the other's write.
pub(crate) const ATTACH_CODE_FAMILY: &str =
    "UPDATE authorization_codes SET family_id = $1 WHERE hash = $2 RETURNING replayed_at";

pub(crate) const MARK_CODE_REPLAYED: &str = "UPDATE authorization_codes \
     SET replayed_at = COALESCE(replayed_at, $1) WHERE hash = $2 RETURNING family_id";
