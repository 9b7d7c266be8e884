//! Second factors (TOTP authenticators, recovery codes, passkeys and their ceremonies) for both
//! backends.

use async_trait::async_trait;

use camgate_core::clock::Timestamp;
use camgate_core::error::StoreError;
use camgate_core::model::UserId;
use camgate_core::store::{
    Ceremony, MfaStore, PasskeyRecord, PasskeyStore, StoreResult, TotpRecord,
};

use super::{args, Exec, Sql};
use crate::backend::Backend;

#[derive(sqlx::FromRow)]
struct TotpRow {
    secret_enc: Vec<u8>,
    created_at: i64,
    confirmed_at: Option<i64>,
    last_step: Option<i64>,
}

#[async_trait]
impl<T: Send + Sync + 'static, Q: Sql> MfaStore for Backend<T, Q> {
    async fn totp(&self, user: UserId) -> StoreResult<Option<TotpRecord>> {
        let sql = "SELECT secret_enc, created_at, confirmed_at, last_step FROM user_totp \
             WHERE user_id = $1";
        // Through the writer: a step accepted a moment ago must be seen.
        let row: Option<TotpRow> = self.sql.one_w(sql, args![user]).await?;
        Ok(row.map(|r| TotpRecord {
            secret_enc: r.secret_enc,
            created_at: r.created_at,
            confirmed_at: r.confirmed_at,
            last_step: r.last_step,
        }))
    }

    async fn put_pending_totp(
        &self,
        user: UserId,
        secret_enc: &[u8],
        now: Timestamp,
    ) -> StoreResult<bool> {
        let sql = "INSERT INTO user_totp (user_id, secret_enc, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET secret_enc = excluded.secret_enc, \
             created_at = excluded.created_at, last_step = NULL \
             WHERE user_totp.confirmed_at IS NULL";
        Ok(self.sql.run(sql, args![user, secret_enc, now]).await? == 1)
    }

    async fn confirm_totp(
        &self,
        user: UserId,
        step: i64,
        now: Timestamp,
        recovery_hashes: &[Vec<u8>],
    ) -> StoreResult<bool> {
        let mut tx = self.sql.begin().await?;
        let confirm = "UPDATE user_totp SET confirmed_at = $1, last_step = $2 \
             WHERE user_id = $3 AND confirmed_at IS NULL";
        if tx.run(confirm, args![now, step, user]).await? != 1 {
            return Ok(false);
        }
        tx.run("DELETE FROM recovery_codes WHERE user_id = $1", args![user])
            .await?;
        for h in recovery_hashes {
            tx.run(
                "INSERT INTO recovery_codes (user_id, hash, created_at) VALUES ($1, $2, $3)",
                args![user, h, now],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn accept_totp_step(&self, user: UserId, step: i64) -> StoreResult<bool> {
        let sql = "UPDATE user_totp SET last_step = $1 WHERE user_id = $2 \
             AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $3)";
        Ok(self.sql.run(sql, args![step, user, step]).await? == 1)
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<bool> {
        let sql = "UPDATE recovery_codes SET used_at = $1 \
             WHERE user_id = $2 AND hash = $3 AND used_at IS NULL";
        Ok(self.sql.run(sql, args![now, user, hash]).await? == 1)
    }

    async fn recovery_codes_left(&self, user: UserId) -> StoreResult<i64> {
        let sql = "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL";
        let n: Option<(i64,)> = self.sql.one_w(sql, args![user]).await?;
        Ok(n.map_or(0, |(n,)| n))
    }

    async fn delete_totp(&self, user: UserId) -> StoreResult<bool> {
        let mut tx = self.sql.begin().await?;
        let a = tx
            .run("DELETE FROM user_totp WHERE user_id = $1", args![user])
            .await?;
        let b = tx
            .run("DELETE FROM recovery_codes WHERE user_id = $1", args![user])
            .await?;
        tx.commit().await?;
        Ok(a + b > 0)
    }

    async fn delete_second_factors(&self, user: UserId) -> StoreResult<bool> {
        let mut tx = self.sql.begin().await?;
        let a = tx
            .run("DELETE FROM user_totp WHERE user_id = $1", args![user])
            .await?;
        let b = tx
            .run("DELETE FROM recovery_codes WHERE user_id = $1", args![user])
            .await?;
        let c = tx
            .run("DELETE FROM passkeys WHERE user_id = $1", args![user])
            .await?;
        tx.commit().await?;
        Ok(a + b + c > 0)
    }
}

#[derive(sqlx::FromRow)]
struct PasskeyRow {
    id: i64,
    user_id: i64,
    cred_id: Vec<u8>,
    name: String,
    passkey: String,
    created_at: i64,
    last_used_at: Option<i64>,
}

impl From<PasskeyRow> for PasskeyRecord {
    fn from(r: PasskeyRow) -> Self {
        PasskeyRecord {
            id: r.id,
            user_id: r.user_id,
            cred_id: r.cred_id,
            name: r.name,
            passkey: r.passkey,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct CeremonyRow {
    user_id: Option<i64>,
    kind: String,
    state: String,
    expires_at: i64,
}

const PASSKEY_COLS: &str = "id, user_id, cred_id, name, passkey, created_at, last_used_at";

#[async_trait]
impl<T: Send + Sync + 'static, Q: Sql> PasskeyStore for Backend<T, Q> {
    async fn add_passkey(
        &self,
        user: UserId,
        cred_id: &[u8],
        name: &str,
        passkey: &str,
        now: Timestamp,
    ) -> StoreResult<PasskeyRecord> {
        let sql = format!(
            "INSERT INTO passkeys (user_id, cred_id, name, passkey, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {PASSKEY_COLS}"
        );
        let row: Option<PasskeyRow> = self
            .sql
            .one_w(&sql, args![user, cred_id, name, passkey, now])
            .await?;
        row.map(Into::into)
            .ok_or_else(|| StoreError::Other("INSERT … RETURNING returned no row".into()))
    }

    async fn passkeys_of(&self, user: UserId) -> StoreResult<Vec<PasskeyRecord>> {
        let sql = format!("SELECT {PASSKEY_COLS} FROM passkeys WHERE user_id = $1 ORDER BY id");
        let rows: Vec<PasskeyRow> = self.sql.all(&sql, args![user]).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn passkey_by_cred(&self, cred_id: &[u8]) -> StoreResult<Option<PasskeyRecord>> {
        let sql = format!("SELECT {PASSKEY_COLS} FROM passkeys WHERE cred_id = $1");
        let row: Option<PasskeyRow> = self.sql.one_w(&sql, args![cred_id]).await?;
        Ok(row.map(Into::into))
    }

    async fn passkey_used(&self, id: i64, passkey: &str, now: Timestamp) -> StoreResult<bool> {
        let sql = "UPDATE passkeys SET passkey = $1, last_used_at = $2 WHERE id = $3";
        Ok(self.sql.run(sql, args![passkey, now, id]).await? == 1)
    }

    async fn rename_passkey(&self, user: UserId, id: i64, name: &str) -> StoreResult<bool> {
        let sql = "UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3";
        Ok(self.sql.run(sql, args![name, id, user]).await? == 1)
    }

    async fn delete_passkey(&self, user: UserId, id: i64) -> StoreResult<bool> {
        let sql = "DELETE FROM passkeys WHERE id = $1 AND user_id = $2";
        Ok(self.sql.run(sql, args![id, user]).await? == 1)
    }

    async fn put_ceremony(&self, hash: &[u8], c: &Ceremony) -> StoreResult<()> {
        let sql = "INSERT INTO webauthn_ceremonies (hash, user_id, kind, state, expires_at) \
             VALUES ($1, $2, $3, $4, $5)";
        self.sql
            .run(
                sql,
                args![
                    hash,
                    c.user_id,
                    c.kind.as_str(),
                    c.state.as_str(),
                    c.expires_at
                ],
            )
            .await?;
        Ok(())
    }

    async fn take_ceremony(&self, hash: &[u8]) -> StoreResult<Option<Ceremony>> {
        let sql = "DELETE FROM webauthn_ceremonies WHERE hash = $1 \
             RETURNING user_id, kind, state, expires_at";
        let row: Option<CeremonyRow> = self.sql.one_w(sql, args![hash]).await?;
        Ok(row.map(|r| Ceremony {
            user_id: r.user_id,
            kind: r.kind,
            state: r.state,
            expires_at: r.expires_at,
        }))
    }
}
