//! Operations — migrations, liveness, pool metrics, settings, signing keys, the JWT denylist,
//! purges, the audit list — for both backends.

use async_trait::async_trait;

use camgate_core::clock::Timestamp;
use camgate_core::error::StoreError;
use camgate_core::model::*;
use camgate_core::store::{AdminStore, PoolStats, PurgeCounts, SigningKeyRecord, StoreResult};

use super::authz::{bounded_delete, purge};
use super::rows::{self, AuditRow, SigningKeyRow};
use super::{args, Exec, Sql};
use crate::backend::Backend;

/// Per table: the rows that expired before the cutoff first, then the revoked ones in what is
/// left of the batch.
async fn purge_table<Q: Sql>(
    sql: &Q,
    table: &str,
    key: &str,
    cutoff: Timestamp,
    batch: i64,
) -> StoreResult<u64> {
    let expired = [bounded_delete(table, key, "expires_at < $1")];
    let n = purge(sql, &expired, cutoff, batch).await?;
    let revoked = [bounded_delete(table, key, "revoked_at < $1")];
    Ok(n + purge(sql, &revoked, cutoff, batch - n as i64).await?)
}

#[async_trait]
impl<T: Send + Sync + 'static, Q: Sql> AdminStore for Backend<T, Q> {
    async fn migrate(&self) -> StoreResult<()> {
        self.sql.migrate().await
    }

    async fn ping(&self) -> StoreResult<()> {
        let _: Option<(i32,)> = self.sql.one("SELECT 1", vec![]).await?;
        Ok(())
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        self.sql.pool_stats()
    }

    async fn setting_get_or_insert(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
        let insert = "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO NOTHING";
        self.sql.run(insert, args![key, value]).await?;
        let stored: Option<(Vec<u8>,)> = self
            .sql
            .one_w("SELECT value FROM settings WHERE key = $1", args![key])
            .await?;
        stored
            .map(|(v,)| v)
            .ok_or_else(|| StoreError::Other(format!("setting {key} vanished")))
    }

    async fn recent_audit(&self, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        let sql = "SELECT id, at, kind, user_id, client_id, ip, detail FROM audit_events \
             ORDER BY id DESC LIMIT $1";
        let rows: Vec<AuditRow> = self.sql.all(sql, args![limit]).await?;
        Ok(rows::all(rows))
    }

    async fn purge_expired(&self, cutoff: Timestamp, batch: i64) -> StoreResult<PurgeCounts> {
        // Whole families first: a family past its latest token expiry, or revoked, can never
        // be used again, and its tokens go with it (ON DELETE CASCADE), in id order. Then the
        // stray expired or revoked tokens of families still alive.
        let s = &self.sql;
        Ok(PurgeCounts {
            families: purge_table(s, "token_families", "id", cutoff, batch).await?,
            access_tokens: purge_table(s, "access_tokens", "hash", cutoff, batch).await?,
            refresh_tokens: purge_table(s, "refresh_tokens", "hash", cutoff, batch).await?,
            pats: purge_table(s, "personal_access_tokens", "id", cutoff, batch).await?,
        })
    }

    async fn signing_keys(&self, now: Timestamp) -> StoreResult<Vec<SigningKeyRecord>> {
        let sql = "SELECT kid, alg, purpose, private_key, created_at, retired_at, verify_until \
             FROM signing_keys WHERE verify_until IS NULL OR verify_until > $1 \
             ORDER BY created_at, kid";
        let rows: Vec<SigningKeyRow> = self.sql.all(sql, args![now]).await?;
        Ok(rows::all(rows))
    }

    async fn insert_signing_key_if_none(&self, key: &SigningKeyRecord) -> StoreResult<bool> {
        // One active access key (of either algorithm); one active id_token key per algorithm.
        let sql = "INSERT INTO signing_keys (kid, alg, purpose, private_key, created_at) \
             SELECT $1, $2, $3, $4, $5 \
             WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL \
               AND purpose = $6 AND ($7 = 'access' OR alg = $8))";
        let args = args![
            &key.kid,
            &key.alg,
            &key.purpose,
            &key.private_key,
            key.created_at,
            &key.purpose,
            &key.purpose,
            &key.alg
        ];
        Ok(self.sql.run(sql, args).await? == 1)
    }

    async fn active_id_signing_kid(&self, alg: &str) -> StoreResult<Option<String>> {
        let sql = "SELECT kid FROM signing_keys WHERE retired_at IS NULL AND purpose = 'id' \
             AND alg = $1 ORDER BY created_at DESC, kid DESC LIMIT 1";
        let kid: Option<(String,)> = self.sql.one(sql, args![alg]).await?;
        Ok(kid.map(|(k,)| k))
    }

    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        now: Timestamp,
        verify_until: Timestamp,
    ) -> StoreResult<()> {
        let mut tx = self.sql.begin().await?;
        // The access key retires whatever its algorithm; an id_token key retires its algorithm's.
        let retire = "UPDATE signing_keys SET retired_at = $1, verify_until = $2 \
             WHERE retired_at IS NULL AND purpose = $3 AND ($4 = 'access' OR alg = $5)";
        let args = args![now, verify_until, &key.purpose, &key.purpose, &key.alg];
        tx.run(retire, args).await?;
        let insert = "INSERT INTO signing_keys (kid, alg, purpose, private_key, created_at) \
             VALUES ($1, $2, $3, $4, $5)";
        let args = args![
            &key.kid,
            &key.alg,
            &key.purpose,
            &key.private_key,
            key.created_at
        ];
        tx.run(insert, args).await?;
        tx.commit().await
    }

    async fn deny_jwt(&self, jti: &str, until: Timestamp) -> StoreResult<()> {
        let sql = "INSERT INTO jwt_denylist (jti, expires_at) VALUES ($1, $2) \
             ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE jwt_denylist.expires_at < excluded.expires_at";
        self.sql.run(sql, args![jti, until]).await?;
        Ok(())
    }

    async fn purge_jwt_state(&self, cutoff: Timestamp, batch: i64) -> StoreResult<u64> {
        let stmts = [
            bounded_delete("jwt_denylist", "jti", "expires_at < $1"),
            bounded_delete(
                "signing_keys",
                "kid",
                "verify_until IS NOT NULL AND verify_until < $1",
            ),
        ];
        purge(&self.sql, &stmts, cutoff, batch).await
    }
}
