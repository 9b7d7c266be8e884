//! Camera shares and dealers' customers, for both backends.

use async_trait::async_trait;

use camgate_core::clock::Timestamp;
use camgate_core::error::StoreError;
use camgate_core::model::*;
use camgate_core::store::{DealerStore, ShareStore, StoreResult};

use super::queries::{qualified, CAMERA_COLS, SHARED_CAMERAS_SQL, USER_COLS};
use super::rows::{CameraRow, SharedCameraRow, UserRow};
use super::{args, Exec, Sql};
use crate::backend::Backend;

#[derive(sqlx::FromRow)]
struct ShareRow {
    id: i64,
    camera_id: i64,
    email_norm: String,
    user_id: Option<i64>,
    permission: String,
    created_at: i64,
    updated_at: i64,
}

impl From<ShareRow> for Share {
    fn from(r: ShareRow) -> Self {
        Share {
            id: r.id,
            camera_id: r.camera_id,
            email: r.email_norm,
            user_id: r.user_id,
            // Only the three names are ever written; an unknown one reads as the least.
            permission: SharePermission::parse(&r.permission).unwrap_or(SharePermission::View),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const SHARE_COLS: &str = "id, camera_id, email_norm, user_id, permission, created_at, updated_at";

/// A link's columns beside a user's (`l_` prefixed).
#[derive(sqlx::FromRow)]
struct LinkRow {
    #[sqlx(flatten)]
    user: UserRow,
    l_dealer_id: i64,
    l_customer_id: i64,
    l_level: String,
    l_created_at: i64,
    l_updated_at: i64,
    l_revoked_at: Option<i64>,
}

const LINK_COLS: &str = "l.dealer_id AS l_dealer_id, l.customer_id AS l_customer_id, \
     l.level AS l_level, l.created_at AS l_created_at, l.updated_at AS l_updated_at, \
     l.revoked_at AS l_revoked_at";

impl LinkRow {
    fn split(self) -> (User, DealerLink) {
        let link = DealerLink {
            dealer_id: self.l_dealer_id,
            customer_id: self.l_customer_id,
            // Unknown level names read as the lesser one.
            level: DealerLevel::parse(&self.l_level).unwrap_or(DealerLevel::Limited),
            created_at: self.l_created_at,
            updated_at: self.l_updated_at,
            revoked_at: self.l_revoked_at,
        };
        (self.user.into(), link)
    }
}

#[async_trait]
impl<T: Send + Sync + 'static, Q: Sql> ShareStore for Backend<T, Q> {
    async fn create_share(
        &self,
        owner: UserId,
        camera: CameraId,
        email_norm: &str,
        permission: SharePermission,
        now: Timestamp,
    ) -> StoreResult<Option<Share>> {
        // The account with that address, if there is one, in the same statement: a share
        // applies at once, or when the account is created (`create_user` claims it).
        let sql = format!(
            "INSERT INTO camera_shares (camera_id, email_norm, user_id, permission, created_at, \
             updated_at) SELECT c.id, $1, (SELECT u.id FROM users u WHERE u.email_norm = $1), \
             $2, $3, $3 FROM cameras c WHERE c.id = $4 AND c.owner_id = $5 \
             RETURNING {SHARE_COLS}"
        );
        let row: Option<ShareRow> = self
            .sql
            .one_w(
                &sql,
                args![email_norm, permission.as_str(), now, camera, owner],
            )
            .await?;
        Ok(row.map(Into::into))
    }

    async fn shares(&self, camera: CameraId) -> StoreResult<Vec<Share>> {
        let sql =
            format!("SELECT {SHARE_COLS} FROM camera_shares WHERE camera_id = $1 ORDER BY id");
        let rows: Vec<ShareRow> = self.sql.all(&sql, args![camera]).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn update_share(
        &self,
        camera: CameraId,
        share: i64,
        permission: SharePermission,
        now: Timestamp,
    ) -> StoreResult<Option<Share>> {
        let sql = format!(
            "UPDATE camera_shares SET permission = $1, updated_at = $2 \
             WHERE id = $3 AND camera_id = $4 RETURNING {SHARE_COLS}"
        );
        let row: Option<ShareRow> = self
            .sql
            .one_w(&sql, args![permission.as_str(), now, share, camera])
            .await?;
        Ok(row.map(Into::into))
    }

    async fn delete_share(&self, camera: CameraId, share: i64) -> StoreResult<bool> {
        let sql = "DELETE FROM camera_shares WHERE id = $1 AND camera_id = $2";
        Ok(self.sql.run(sql, args![share, camera]).await? == 1)
    }

    async fn visible_camera(&self, user: UserId, id: CameraId) -> StoreResult<Option<Camera>> {
        // The write pool: a share just ended must not be seen on the next request.
        let own = format!("SELECT {CAMERA_COLS} FROM cameras WHERE id = $1 AND owner_id = $2");
        let row: Option<CameraRow> = self.sql.one_w(&own, args![id, user]).await?;
        if let Some(r) = row {
            return Ok(Some(r.try_into()?));
        }
        let sql = format!(
            "{} WHERE s.camera_id = $1 AND s.user_id = $2",
            *SHARED_CAMERAS_SQL
        );
        let row: Option<SharedCameraRow> = self.sql.one_w(&sql, args![id, user]).await?;
        row.map(Camera::try_from).transpose()
    }

    async fn shared_cameras(&self, user: UserId, limit: i64) -> StoreResult<Vec<Camera>> {
        let sql = format!(
            "{} WHERE s.user_id = $1 ORDER BY c.id LIMIT $2",
            *SHARED_CAMERAS_SQL
        );
        let rows: Vec<SharedCameraRow> = self.sql.all(&sql, args![user, limit]).await?;
        rows.into_iter().map(Camera::try_from).collect()
    }

    async fn shared_with(&self, user: UserId) -> StoreResult<Vec<(CameraId, SharedAs)>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            camera_id: i64,
            permission: String,
            first_name: String,
            last_name: String,
            email: String,
        }
        let sql = "SELECT s.camera_id, s.permission, o.first_name, o.last_name, o.email \
             FROM camera_shares s JOIN cameras c ON c.id = s.camera_id \
             JOIN users o ON o.id = c.owner_id WHERE s.user_id = $1 ORDER BY s.camera_id";
        let rows: Vec<Row> = self.sql.all(sql, args![user]).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.camera_id,
                    SharedAs {
                        permission: SharePermission::parse(&r.permission)
                            .unwrap_or(SharePermission::View),
                        owner_name: display_name(&r.first_name, &r.last_name, &r.email),
                    },
                )
            })
            .collect())
    }
}

#[async_trait]
impl<T: Send + Sync + 'static, Q: Sql> DealerStore for Backend<T, Q> {
    async fn set_dealer(&self, user: UserId, dealer: bool) -> StoreResult<bool> {
        let sql = "UPDATE users SET is_dealer = $1 WHERE id = $2";
        Ok(self.sql.run(sql, args![dealer, user]).await? == 1)
    }

    async fn create_customer(
        &self,
        dealer: UserId,
        u: &NewUser,
        level: DealerLevel,
        now: Timestamp,
    ) -> StoreResult<User> {
        let mut tx = self.sql.begin().await?;
        let row: Option<UserRow> = tx
            .one(
                &super::directory::INSERT_USER,
                super::directory::user_args(u),
            )
            .await?;
        let user: User = row
            .ok_or_else(|| StoreError::Other("no user row".into()))?
            .into();
        tx.run(
            super::directory::CLAIM_SHARES,
            args![user.id, normalize_email(&user.email)],
        )
        .await?;
        tx.run(
            "INSERT INTO dealer_customers (customer_id, dealer_id, level, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $4)",
            args![user.id, dealer, level.as_str(), now],
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn customers(&self, dealer: UserId) -> StoreResult<Vec<(User, DealerLink)>> {
        let sql = format!(
            "SELECT {}, {LINK_COLS} FROM dealer_customers l JOIN users u \
             ON u.id = l.customer_id WHERE l.dealer_id = $1 ORDER BY l.created_at, u.id",
            qualified(USER_COLS, "u")
        );
        let rows: Vec<LinkRow> = self.sql.all(&sql, args![dealer]).await?;
        Ok(rows.into_iter().map(LinkRow::split).collect())
    }

    async fn dealer_of(&self, customer: UserId) -> StoreResult<Option<(DealerLink, User)>> {
        // The write pool: a revocation a moment ago must be seen (an act token's next request).
        let sql = format!(
            "SELECT {}, {LINK_COLS} FROM dealer_customers l JOIN users u \
             ON u.id = l.dealer_id WHERE l.customer_id = $1",
            qualified(USER_COLS, "u")
        );
        let row: Option<LinkRow> = self.sql.one_w(&sql, args![customer]).await?;
        Ok(row.map(|r| {
            let (dealer, link) = r.split();
            (link, dealer)
        }))
    }

    async fn set_dealer_access(
        &self,
        customer: UserId,
        level: Option<DealerLevel>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let n = match level {
            Some(l) => {
                let sql = "UPDATE dealer_customers SET level = $1, updated_at = $2 \
                     WHERE customer_id = $3 AND revoked_at IS NULL";
                self.sql.run(sql, args![l.as_str(), now, customer]).await?
            }
            None => {
                let sql = "UPDATE dealer_customers SET revoked_at = $1, updated_at = $1 \
                     WHERE customer_id = $2 AND revoked_at IS NULL";
                self.sql.run(sql, args![now, customer]).await?
            }
        };
        Ok(n == 1)
    }
}
