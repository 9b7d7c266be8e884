//! The browser flow — codes, consents, parked requests, sessions, throttle writes — and the
//! per-user view of authorized applications, for both backends.

use async_trait::async_trait;

use camgate_core::clock::Timestamp;
use camgate_core::error::StoreError;
use camgate_core::model::*;
use camgate_core::scope::ScopeSet;
use camgate_core::store::{
    AuthCode, AuthorizedApp, AuthzStore, DeviceCode, DeviceDecision, NewAuthCode, NewDeviceCode,
    NewSession, ParkedRequest, PendingPairing, SessionRecord, StoreResult,
};

use super::rows::{
    self, scope_of, AppRow, AuthCodeRow, DeviceRow, ParkedRow, PendingRow, SessionRow,
};
use super::{args, json, Arg, Exec, Sql};
use crate::backend::Backend;

/// A device code's columns ([`DeviceRow`]).
const DEVICE_COLS: &str = "hash, client_pk, scope, created_at, expires_at, interval_secs, \
     last_polled_at, user_id, approved, used_at, family_id, pairing, camera_id";

/// Deletes at most `batch` rows matching `cond` (`$1` = the cutoff) from `table` by `key`:
/// an index range scan bounded by the batch, so one call holds the writer for milliseconds
/// whatever the table size.
pub(crate) fn bounded_delete(table: &str, key: &str, cond: &str) -> String {
    format!("DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {cond} LIMIT $2)")
}

/// Runs `bounded_delete` statements with `(cutoff, limit)`; the rows deleted.
pub(crate) async fn purge<Q: Sql>(
    sql: &Q,
    stmts: &[String],
    cutoff: Timestamp,
    limit: i64,
) -> StoreResult<u64> {
    let mut n = 0;
    for s in stmts {
        if limit > 0 {
            n += sql.run(s, args![cutoff, limit]).await?;
        }
    }
    Ok(n)
}

#[async_trait]
impl<T: Send + Sync + 'static, Q: Sql> AuthzStore for Backend<T, Q> {
    async fn create_auth_code(&self, c: &NewAuthCode) -> StoreResult<()> {
        let sql = "INSERT INTO authorization_codes (hash, client_pk, user_id, redirect_uri, \
             redirect_uri_given, scope, code_challenge, created_at, expires_at, nonce, auth_time, \
             amr) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
        let args = args![
            &c.hash,
            c.client_pk,
            c.user_id,
            &c.redirect_uri,
            c.redirect_uri_given,
            c.scope.to_scope_string(),
            &c.code_challenge,
            c.created_at,
            c.expires_at,
            &c.nonce,
            c.authn.as_ref().map(|a| a.auth_time),
            c.authn.as_ref().map(|a| a.amr.clone())
        ];
        self.sql.run(sql, args).await?;
        Ok(())
    }

    async fn auth_code(&self, hash: &[u8]) -> StoreResult<Option<AuthCode>> {
        // Read through the writer: the replay decision must see the latest claim.
        let sql = "SELECT client_pk, user_id, redirect_uri, redirect_uri_given, scope, \
             code_challenge, created_at, expires_at, used_at, replayed_at, family_id, nonce, \
             auth_time, amr FROM authorization_codes WHERE hash = $1";
        let row: Option<AuthCodeRow> = self.sql.one_w(sql, args![hash]).await?;
        Ok(row.map(Into::into))
    }

    async fn consent(&self, user_id: UserId, client_pk: ClientPk) -> StoreResult<Option<ScopeSet>> {
        let sql = "SELECT scope FROM consents WHERE user_id = $1 AND client_pk = $2";
        let s: Option<(String,)> = self.sql.one(sql, args![user_id, client_pk]).await?;
        Ok(s.map(|(s,)| scope_of(&s)))
    }

    async fn put_consent(
        &self,
        user_id: UserId,
        client_pk: ClientPk,
        scope: ScopeSet,
        now: Timestamp,
    ) -> StoreResult<()> {
        let sql = "INSERT INTO consents (user_id, client_pk, scope, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, client_pk) \
             DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at";
        let args = args![user_id, client_pk, scope.to_scope_string(), now, now];
        self.sql.run(sql, args).await?;
        Ok(())
    }

    async fn park_authz_request(&self, hash: &[u8], r: &ParkedRequest) -> StoreResult<()> {
        let sql = "INSERT INTO authorization_requests (hash, client_pk, request, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5)";
        let args = args![hash, r.client_pk, &r.request, r.created_at, r.expires_at];
        self.sql.run(sql, args).await?;
        Ok(())
    }

    async fn parked_authz_request(&self, hash: &[u8]) -> StoreResult<Option<ParkedRequest>> {
        let sql = "SELECT client_pk, request, created_at, expires_at FROM authorization_requests \
             WHERE hash = $1";
        let row: Option<ParkedRow> = self.sql.one_w(sql, args![hash]).await?;
        Ok(row.map(Into::into))
    }

    async fn take_authz_request(&self, hash: &[u8]) -> StoreResult<Option<ParkedRequest>> {
        let sql = "DELETE FROM authorization_requests WHERE hash = $1 \
             RETURNING client_pk, request, created_at, expires_at";
        let row: Option<ParkedRow> = self.sql.one_w(sql, args![hash]).await?;
        Ok(row.map(Into::into))
    }

    async fn create_session(&self, s: &NewSession) -> StoreResult<()> {
        let sql = "INSERT INTO browser_sessions (hash, user_id, created_at, last_seen_at, \
             expires_at, amr) VALUES ($1, $2, $3, $4, $5, $6)";
        let args = args![
            &s.hash,
            s.user_id,
            s.created_at,
            s.created_at,
            s.expires_at,
            &s.amr
        ];
        self.sql.run(sql, args).await?;
        Ok(())
    }

    async fn session(&self, hash: &[u8]) -> StoreResult<Option<SessionRecord>> {
        let sql = "SELECT user_id, created_at, last_seen_at, expires_at, amr \
             FROM browser_sessions WHERE hash = $1";
        let row: Option<SessionRow> = self.sql.one_w(sql, args![hash]).await?;
        Ok(row.map(Into::into))
    }

    async fn touch_session(
        &self,
        hash: &[u8],
        now: Timestamp,
        min_interval: i64,
    ) -> StoreResult<()> {
        let sql = "UPDATE browser_sessions SET last_seen_at = $1 WHERE hash = $2 \
             AND last_seen_at <= $3";
        self.sql
            .run(sql, args![now, hash, now - min_interval])
            .await?;
        Ok(())
    }

    async fn delete_session(&self, hash: &[u8]) -> StoreResult<()> {
        let sql = "DELETE FROM browser_sessions WHERE hash = $1";
        self.sql.run(sql, args![hash]).await?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: UserId) -> StoreResult<u64> {
        let sql = "DELETE FROM browser_sessions WHERE user_id = $1";
        self.sql.run(sql, args![user_id]).await
    }

    async fn throttle_record_failure(
        &self,
        key: &[u8],
        now: Timestamp,
        since: Timestamp,
    ) -> StoreResult<(Timestamp, i64)> {
        // One atomic upsert: a window that started at or before `since` is over and restarts
        // at `now` (both CASEs read the old row).
        let sql = "INSERT INTO login_throttle (key, window_start, failures) VALUES ($1, $2, 1) \
             ON CONFLICT (key) DO UPDATE SET \
             failures = CASE WHEN login_throttle.window_start <= $3 THEN 1 \
               ELSE login_throttle.failures + 1 END, \
             window_start = CASE WHEN login_throttle.window_start <= $4 THEN $5 \
               ELSE login_throttle.window_start END \
             RETURNING window_start, failures";
        let row = self
            .sql
            .one_w(sql, args![key, now, since, since, now])
            .await?;
        row.ok_or_else(|| StoreError::Other("the throttle upsert returned no row".into()))
    }

    async fn purge_authorize(&self, cutoff: Timestamp, batch: i64) -> StoreResult<u64> {
        let stmts = [
            ("authorization_codes", "hash", "expires_at < $1"),
            ("authorization_requests", "hash", "expires_at < $1"),
            ("browser_sessions", "hash", "expires_at < $1"),
            ("login_throttle", "key", "window_start < $1"),
            ("device_codes", "hash", "expires_at < $1"),
            ("webauthn_ceremonies", "hash", "expires_at < $1"),
        ]
        .map(|(t, k, c)| bounded_delete(t, k, c));
        purge(&self.sql, &stmts, cutoff, batch).await
    }

    async fn create_device_code(&self, d: &NewDeviceCode) -> StoreResult<()> {
        let sql = "INSERT INTO device_codes (hash, user_code_hash, client_pk, scope, created_at, \
             expires_at, interval_secs, pairing) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let pairing = d.pairing.as_ref().map(json).transpose()?;
        let args = args![
            &d.hash,
            &d.user_code_hash,
            d.client_pk,
            d.scope.to_scope_string(),
            d.created_at,
            d.expires_at,
            d.interval_secs,
            pairing
        ];
        self.sql.run(sql, args).await?;
        Ok(())
    }

    async fn device_code(&self, hash: &[u8]) -> StoreResult<Option<DeviceCode>> {
        // The read pool: a poll must not queue on the writer to read. It sees every committed
        // decision; claims and replays are conditional UPDATEs, so a stale read cannot mint
        // twice.
        let sql = format!("SELECT {DEVICE_COLS} FROM device_codes WHERE hash = $1");
        let row: Option<DeviceRow> = self.sql.one(&sql, args![hash]).await?;
        Ok(row.map(Into::into))
    }

    async fn device_code_by_user_code(&self, user_hash: &[u8]) -> StoreResult<Option<DeviceCode>> {
        let sql = format!("SELECT {DEVICE_COLS} FROM device_codes WHERE user_code_hash = $1");
        let row: Option<DeviceRow> = self.sql.one_w(&sql, args![user_hash]).await?;
        Ok(row.map(Into::into))
    }

    async fn decide_device_code(&self, d: &DeviceDecision<'_>) -> StoreResult<bool> {
        let sql = "UPDATE device_codes SET approved = $1, user_id = $2, decided_at = $3, \
             camera_id = $4 WHERE user_code_hash = $5 AND approved IS NULL AND expires_at > $6";
        let args = args![d.approve, d.user_id, d.now, d.camera_id, d.user_hash, d.now];
        Ok(self.sql.run(sql, args).await? == 1)
    }

    async fn pending_pairings(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<PendingPairing>> {
        let sql = "SELECT c.name AS client_name, d.pairing, d.decided_at, d.expires_at \
             FROM device_codes d JOIN clients c ON c.id = d.client_pk \
             WHERE d.user_id = $1 AND d.approved = TRUE AND d.used_at IS NULL \
             AND d.pairing IS NOT NULL AND d.expires_at > $2 ORDER BY d.decided_at DESC";
        let rows: Vec<PendingRow> = self.sql.all(sql, args![user_id, now]).await?;
        Ok(rows::all(rows))
    }

    async fn poll_device_code(&self, hash: &[u8], now: Timestamp) -> StoreResult<bool> {
        // One statement, so a storm of polls costs one write each: every SET expression reads
        // the row as it was, so `slowed` says whether this poll came before the interval was
        // up, and then (RFC 8628 §3.5) "the interval MUST be increased by 5 seconds for this
        // and all subsequent requests".
        let sql = "UPDATE device_codes SET \
             slowed = (last_polled_at IS NOT NULL AND last_polled_at > $1 - interval_secs), \
             interval_secs = CASE WHEN last_polled_at IS NOT NULL \
               AND last_polled_at > $1 - interval_secs THEN interval_secs + 5 \
               ELSE interval_secs END, \
             last_polled_at = $1 WHERE hash = $2 RETURNING slowed";
        let slowed: Option<(bool,)> = self.sql.one_w(sql, args![now, hash]).await?;
        Ok(!matches!(slowed, Some((true,))))
    }

    async fn claim_device_code(&self, hash: &[u8], now: Timestamp) -> StoreResult<bool> {
        let sql = "UPDATE device_codes SET used_at = $1 \
             WHERE hash = $2 AND used_at IS NULL AND approved = TRUE";
        Ok(self.sql.run(sql, args![now, hash]).await? == 1)
    }

    async fn attach_device_family(&self, hash: &[u8], family_id: FamilyId) -> StoreResult<bool> {
        // One statement on the code: it serialises with the replay mark on the row. A
        // pairing's family is bound to its camera in the same transaction.
        let mut tx = self.sql.begin().await?;
        let sql = "UPDATE device_codes SET family_id = $1 WHERE hash = $2 \
             RETURNING replayed_at, camera_id";
        let row: Option<(Option<i64>, Option<i64>)> = tx.one(sql, args![family_id, hash]).await?;
        if let Some((_, Some(camera))) = row {
            let bind = "UPDATE token_families SET camera_id = $1 WHERE id = $2";
            tx.run(bind, args![camera, family_id]).await?;
        }
        tx.commit().await?;
        Ok(matches!(row, Some((Some(_), _))))
    }

    async fn mark_device_code_replayed(
        &self,
        hash: &[u8],
        now: Timestamp,
    ) -> StoreResult<Option<FamilyId>> {
        let sql = "UPDATE device_codes SET replayed_at = COALESCE(replayed_at, $1) \
             WHERE hash = $2 RETURNING family_id";
        let family: Option<(Option<i64>,)> = self.sql.one_w(sql, args![now, hash]).await?;
        Ok(family.and_then(|(f,)| f))
    }

    async fn authorized_apps(
        &self,
        user_id: UserId,
        now: Timestamp,
    ) -> StoreResult<Vec<AuthorizedApp>> {
        // Driven by the user's own rows (consents, families by the user index), never by a
        // scan of all clients.
        let sql = "SELECT c.id, c.client_id, c.name, cs.scope AS consent_scope, \
             cs.updated_at AS approved_at, \
             (SELECT MAX(a.created_at) FROM access_tokens a \
              JOIN token_families f ON f.id = a.family_id \
              WHERE f.user_id = $1 AND f.client_pk = c.id) AS last_used_at, \
             (SELECT a.scope FROM access_tokens a JOIN token_families f ON f.id = a.family_id \
              WHERE f.user_id = $2 AND f.client_pk = c.id \
              ORDER BY a.created_at DESC LIMIT 1) AS token_scope \
             FROM clients c LEFT JOIN consents cs ON cs.client_pk = c.id AND cs.user_id = $3 \
             WHERE c.id IN (SELECT client_pk FROM consents WHERE user_id = $4 \
               UNION SELECT client_pk FROM token_families WHERE user_id = $5 \
               AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $6)) \
             ORDER BY c.name, c.id";
        let mut args: Vec<Arg> = vec![Arg::from(user_id); 5];
        args.push(now.into());
        let rows: Vec<AppRow> = self.sql.all(sql, args).await?;
        Ok(rows::all(rows))
    }

    async fn revoke_client_for_user(
        &self,
        user_id: UserId,
        client_pk: ClientPk,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.sql.begin().await?;
        let consents = tx
            .run(
                "DELETE FROM consents WHERE user_id = $1 AND client_pk = $2",
                args![user_id, client_pk],
            )
            .await?;
        // Tokens first, then their families (as set_password does), so the sweeper can purge
        // them and no concurrent claim slips through.
        for sql in [
            "UPDATE access_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND family_id IN \
             (SELECT id FROM token_families WHERE user_id = $2 AND client_pk = $3)",
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND family_id IN \
             (SELECT id FROM token_families WHERE user_id = $2 AND client_pk = $3)",
        ] {
            tx.run(sql, args![now, user_id, client_pk]).await?;
        }
        let live = "UPDATE token_families SET revoked_at = $1 \
             WHERE user_id = $2 AND client_pk = $3 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $4)";
        let families = tx.run(live, args![now, user_id, client_pk, now]).await?;
        // Expired families count as nothing to revoke, but are closed too.
        let rest = "UPDATE token_families SET revoked_at = $1 \
             WHERE user_id = $2 AND client_pk = $3 AND revoked_at IS NULL";
        tx.run(rest, args![now, user_id, client_pk]).await?;
        // Outstanding codes: marked used (no exchange can claim them) and replayed (an
        // exchange that claimed one already revokes what it mints on attach).
        let codes = "UPDATE authorization_codes SET used_at = COALESCE(used_at, $1), \
             replayed_at = COALESCE(replayed_at, $2) WHERE user_id = $3 AND client_pk = $4";
        tx.run(codes, args![now, now, user_id, client_pk]).await?;
        tx.commit().await?;
        Ok(consents + families > 0)
    }
}
