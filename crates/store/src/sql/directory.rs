//! Users and clients, for both backends.

use async_trait::async_trait;

use camgate_core::clock::Timestamp;
use camgate_core::error::StoreError;
use camgate_core::model::*;
use camgate_core::store::{ClientUpdate, DirectoryStore, StoreResult};

use super::queries::{CLIENT_COLS, PAT_COLS, USER_COLS};
use super::rows::{self, grants_str, kind_str, ClientRow, PatRow, PreviousSecretRow, UserRow};
use super::{args, json, Exec, Sql};
use crate::backend::Backend;

/// A new user (`$1`…`$10` from [`user_args`]), returning its columns.
pub(crate) static INSERT_USER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO users (email, email_norm, password_hash, first_name, last_name, phone, \
         is_admin, disabled, created_at, password_changed_at, email_verified) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, FALSE, $8, $9, $10) RETURNING {USER_COLS}"
    )
});

pub(crate) fn user_args(u: &NewUser) -> Vec<super::Arg> {
    args![
        &u.email,
        normalize_email(&u.email),
        &u.password_hash,
        &u.first_name,
        &u.last_name,
        &u.phone,
        u.is_admin,
        u.created_at,
        u.created_at,
        u.email_verified
    ]
}

/// Shares that waited for an account with this address now apply to it.
pub(crate) const CLAIM_SHARES: &str =
    "UPDATE camera_shares SET user_id = $1 WHERE email_norm = $2 AND user_id IS NULL";

fn returned<T>(row: Option<T>) -> StoreResult<T> {
    row.ok_or_else(|| StoreError::Other("INSERT … RETURNING returned no row".into()))
}

#[async_trait]
impl<T: Send + Sync + 'static, Q: Sql> DirectoryStore for Backend<T, Q> {
    async fn create_user(&self, u: &NewUser) -> StoreResult<User> {
        // The account and the shares waiting for its address, in one transaction.
        let mut tx = self.sql.begin().await?;
        let row: Option<UserRow> = tx.one(&INSERT_USER, user_args(u)).await?;
        let user: User = returned(row)?.into();
        tx.run(CLAIM_SHARES, args![user.id, normalize_email(&user.email)])
            .await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn count_users(&self) -> StoreResult<i64> {
        let (n,): (i64,) = returned(self.sql.one("SELECT COUNT(*) FROM users", vec![]).await?)?;
        Ok(n)
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        let n = self
            .sql
            .run("DELETE FROM users WHERE id = $1", args![id])
            .await?;
        Ok(n == 1)
    }

    async fn set_user_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool> {
        let sql = "UPDATE users SET disabled = $1 WHERE id = $2";
        Ok(self.sql.run(sql, args![disabled, id]).await? == 1)
    }

    async fn set_password(&self, id: UserId, hash: &str, now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.sql.begin().await?;
        let sql = "UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE id = $3";
        if tx.run(sql, args![hash, now, id]).await? != 1 {
            return Ok(false);
        }
        // Revoke the tokens themselves too (not only their families), so a concurrent claim
        // cannot slip through and the sweeper can purge them.
        for sql in [
            "UPDATE access_tokens SET revoked_at = $1 WHERE revoked_at IS NULL \
             AND family_id IN (SELECT id FROM token_families WHERE user_id = $2)",
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL \
             AND family_id IN (SELECT id FROM token_families WHERE user_id = $2)",
            "UPDATE token_families SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            "UPDATE personal_access_tokens SET revoked_at = $1 \
             WHERE user_id = $2 AND revoked_at IS NULL",
        ] {
            tx.run(sql, args![now, id]).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn list_users(&self, limit: i64, offset: i64) -> StoreResult<(i64, Vec<User>)> {
        let count = self.count_users().await?;
        let sql = format!("SELECT {USER_COLS} FROM users ORDER BY id LIMIT $1 OFFSET $2");
        let users: Vec<UserRow> = self.sql.all(&sql, args![limit, offset]).await?;
        Ok((count, rows::all(users)))
    }

    async fn create_client(&self, c: &NewClient) -> StoreResult<Client> {
        let (sha, phc) = match &c.secret {
            SecretHash::None => (None, None),
            SecretHash::Sha256(h) => (Some(h.clone()), None),
            SecretHash::Argon2(p) => (None, Some(p.clone())),
        };
        let sql = format!(
            "INSERT INTO clients (client_id, secret_sha256, secret_phc, name, owner_id, kind, \
             redirect_uris, grants, scopes, profile, created_at, oidc, allow_password_without_mfa) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             RETURNING {CLIENT_COLS}"
        );
        let args = args![
            &c.client_id,
            sha,
            phc,
            &c.name,
            c.owner_id,
            kind_str(c.kind),
            json(&c.redirect_uris)?,
            grants_str(&c.grants),
            c.scopes.to_scope_string(),
            &c.profile,
            c.created_at,
            json(&c.oidc)?,
            c.allow_password_without_mfa
        ];
        let row: Option<ClientRow> = self.sql.one_w(&sql, args).await?;
        returned(row)?.try_into()
    }

    async fn client_by_pk(&self, pk: ClientPk) -> StoreResult<Option<Client>> {
        let sql = format!("SELECT {CLIENT_COLS} FROM clients WHERE id = $1");
        let row: Option<ClientRow> = self.sql.one(&sql, args![pk]).await?;
        row.map(Client::try_from).transpose()
    }

    async fn clients_by_owner(&self, owner: UserId) -> StoreResult<Vec<Client>> {
        let sql = format!("SELECT {CLIENT_COLS} FROM clients WHERE owner_id = $1 ORDER BY id");
        let rows: Vec<ClientRow> = self.sql.all(&sql, args![owner]).await?;
        rows::try_all(rows)
    }

    async fn update_client(
        &self,
        pk: ClientPk,
        owner: UserId,
        u: &ClientUpdate,
    ) -> StoreResult<bool> {
        let sql = "UPDATE clients SET name = $1, redirect_uris = $2, grants = $3, scopes = $4, \
             profile = $5, oidc = $6 WHERE id = $7 AND owner_id = $8";
        let args = args![
            &u.name,
            json(&u.redirect_uris)?,
            grants_str(&u.grants),
            u.scopes.to_scope_string(),
            &u.profile,
            json(&u.oidc)?,
            pk,
            owner
        ];
        Ok(self.sql.run(sql, args).await? == 1)
    }

    async fn set_client_oidc(&self, pk: ClientPk, oidc: &OidcClient) -> StoreResult<bool> {
        let sql = "UPDATE clients SET oidc = $1 WHERE id = $2";
        Ok(self.sql.run(sql, args![json(oidc)?, pk]).await? == 1)
    }

    async fn delete_client(&self, pk: ClientPk, owner: UserId) -> StoreResult<bool> {
        let sql = "DELETE FROM clients WHERE id = $1 AND owner_id = $2";
        Ok(self.sql.run(sql, args![pk, owner]).await? == 1)
    }

    async fn rotate_client_secret(
        &self,
        pk: ClientPk,
        owner: UserId,
        new_sha256: &[u8],
        previous_until: Option<Timestamp>,
    ) -> StoreResult<bool> {
        // One statement: the right-hand sides read the row as it was, so the current secret
        // moves to `previous_*` as the new one takes its place.
        let keep = previous_until.is_some();
        let sql = "UPDATE clients SET \
             previous_secret_sha256 = CASE WHEN $1 THEN secret_sha256 ELSE NULL END, \
             previous_secret_phc = CASE WHEN $2 THEN secret_phc ELSE NULL END, \
             previous_secret_expires_at = $3, \
             secret_sha256 = $4, secret_phc = NULL \
             WHERE id = $5 AND owner_id = $6 AND kind = 'confidential'";
        let args = args![keep, keep, previous_until, new_sha256, pk, owner];
        Ok(self.sql.run(sql, args).await? == 1)
    }

    async fn client_previous_secret(
        &self,
        pk: ClientPk,
    ) -> StoreResult<Option<(SecretHash, Timestamp)>> {
        let sql = "SELECT previous_secret_sha256, previous_secret_phc, previous_secret_expires_at \
             FROM clients WHERE id = $1";
        let row: Option<PreviousSecretRow> = self.sql.one_w(sql, args![pk]).await?;
        Ok(row.and_then(PreviousSecretRow::secret))
    }

    async fn pats_by_user(&self, user_id: UserId) -> StoreResult<Vec<Pat>> {
        let sql = format!(
            "SELECT {PAT_COLS} FROM personal_access_tokens \
             WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id DESC"
        );
        let rows: Vec<PatRow> = self.sql.all(&sql, args![user_id]).await?;
        Ok(rows::all(rows))
    }
}
