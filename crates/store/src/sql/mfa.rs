//! Second factors (TOTP authenticators, recovery codes) for both backends.

use async_trait::async_trait;

use camgate_core::clock::Timestamp;
use camgate_core::model::UserId;
use camgate_core::store::{MfaStore, StoreResult, TotpRecord};

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

    async fn delete_second_factors(&self, user: UserId) -> StoreResult<bool> {
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
}
