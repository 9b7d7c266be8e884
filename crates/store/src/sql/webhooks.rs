//! Webhook subscriptions and their outbox (`webhook_deliveries`, `webhook_attempts`), for both
//! backends. The outbox rows themselves are written with their event (`sql/events.rs`); here
//! they are claimed, attempted, listed and replayed.
//!
//! A claim is one statement, `UPDATE … SET next_attempt_at = <lease end>, attempts =
//! attempts + 1 WHERE id IN (SELECT … due … ORDER BY next_attempt_at LIMIT n) RETURNING …`.
//! The pushed `next_attempt_at` is the lease: until it passes no other claim returns the row;
//! a node that dies mid-delivery leaves it to be claimed again when the lease ends
//! (at-least-once). On PostgreSQL the SELECT takes `FOR UPDATE SKIP LOCKED`, so that
//! concurrent claimers on other nodes pass over rows being claimed instead of waiting or both
//! taking them (a row committed by another claim meanwhile is re-checked under READ
//! COMMITTED, and its pushed `next_attempt_at` leaves it out). SQLite has no row locks: its
//! one writer runs the UPDATE whole (a write statement takes the write lock before it reads),
//! so two claims never see the same due row either.

use async_trait::async_trait;

use camgate_core::clock::Timestamp;
use camgate_core::error::StoreError;
use camgate_core::model::UserId;
use camgate_core::store::{
    AttemptRecord, ClaimedDelivery, Delivery, DeliveryAttempt, DeliveryOutcome, DeliveryState,
    NewWebhook, StoreResult, Webhook, WebhookStore,
};

use super::{args, Arg, Exec, Sql};
use crate::backend::Backend;

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: i64,
    user_id: i64,
    url: String,
    events: String,
    secret_enc: Vec<u8>,
    created_at: i64,
    failing_since: Option<i64>,
    disabled_at: Option<i64>,
}

impl From<WebhookRow> for Webhook {
    fn from(r: WebhookRow) -> Self {
        Webhook {
            id: r.id,
            user_id: r.user_id,
            url: r.url,
            events: r
                .events
                .split(' ')
                .filter(|e| !e.is_empty())
                .map(String::from)
                .collect(),
            secret_enc: r.secret_enc,
            created_at: r.created_at,
            failing_since: r.failing_since,
            disabled_at: r.disabled_at,
        }
    }
}

const WEBHOOK_COLS: &str =
    "id, user_id, url, events, secret_enc, created_at, failing_since, disabled_at";

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    webhook_id: i64,
    event_id: String,
    event_type: String,
    payload: String,
    state: String,
    attempts: i64,
    next_attempt_at: i64,
    created_at: i64,
    delivered_at: Option<i64>,
    last_status: Option<i64>,
    last_error: Option<String>,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(r: DeliveryRow) -> Result<Self, StoreError> {
        Ok(Delivery {
            state: DeliveryState::parse(&r.state)
                .ok_or_else(|| StoreError::Other(format!("delivery state `{}`", r.state)))?,
            id: r.id,
            webhook_id: r.webhook_id,
            event_id: r.event_id,
            event_type: r.event_type,
            payload: r.payload,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
            last_status: r.last_status,
            last_error: r.last_error,
        })
    }
}

const DELIVERY_COLS: &str = "id, webhook_id, event_id, event_type, payload, state, attempts, \
     next_attempt_at, created_at, delivered_at, last_status, last_error";

#[derive(sqlx::FromRow)]
struct AttemptRow {
    id: i64,
    delivery_id: i64,
    at: i64,
    status: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
}

impl From<AttemptRow> for DeliveryAttempt {
    fn from(r: AttemptRow) -> Self {
        DeliveryAttempt {
            id: r.id,
            delivery_id: r.delivery_id,
            at: r.at,
            status: r.status,
            error: r.error,
            duration_ms: r.duration_ms,
        }
    }
}

fn deliveries(rows: Vec<DeliveryRow>) -> StoreResult<Vec<Delivery>> {
    rows.into_iter().map(Delivery::try_from).collect()
}

/// `$first, $first+1, …` for `n` values.
fn params(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The claim (see the module comment). `$1` now, `$2` lease end, `$3` limit.
fn claim_sql<Q: Sql>() -> String {
    format!(
        "UPDATE webhook_deliveries SET next_attempt_at = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT d.id FROM webhook_deliveries d \
         WHERE d.state = 'pending' AND d.next_attempt_at <= $1 \
         AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id \
         AND w.disabled_at IS NULL) \
         ORDER BY d.next_attempt_at, d.id LIMIT $3{}) \
         RETURNING {DELIVERY_COLS}",
        Q::SKIP_LOCKED
    )
}

#[async_trait]
impl<T: Send + Sync + 'static, Q: Sql> WebhookStore for Backend<T, Q> {
    async fn create_webhook(
        &self,
        w: &NewWebhook,
        max_per_user: i64,
    ) -> StoreResult<Option<Webhook>> {
        let sql = format!(
            "INSERT INTO webhooks (user_id, url, events, secret_enc, created_at) \
             SELECT $1, $2, $3, $4, $5 \
             WHERE (SELECT COUNT(*) FROM webhooks WHERE user_id = $1) < $6 \
             RETURNING {WEBHOOK_COLS}"
        );
        let row: Option<WebhookRow> = self
            .sql
            .one_w(
                &sql,
                args![
                    w.user_id,
                    w.url.as_str(),
                    w.events.join(" "),
                    w.secret_enc.as_slice(),
                    w.created_at,
                    max_per_user
                ],
            )
            .await?;
        Ok(row.map(Into::into))
    }

    async fn webhooks(&self, user: UserId) -> StoreResult<Vec<Webhook>> {
        let sql = format!("SELECT {WEBHOOK_COLS} FROM webhooks WHERE user_id = $1 ORDER BY id");
        let rows: Vec<WebhookRow> = self.sql.all(&sql, args![user]).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn webhook(&self, user: UserId, id: i64) -> StoreResult<Option<Webhook>> {
        let sql = format!("SELECT {WEBHOOK_COLS} FROM webhooks WHERE id = $1 AND user_id = $2");
        let row: Option<WebhookRow> = self.sql.one(&sql, args![id, user]).await?;
        Ok(row.map(Into::into))
    }

    async fn delete_webhook(&self, user: UserId, id: i64) -> StoreResult<bool> {
        let n = self
            .sql
            .run(
                "DELETE FROM webhooks WHERE id = $1 AND user_id = $2",
                args![id, user],
            )
            .await?;
        Ok(n > 0)
    }

    async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        // A read first, on the read pool: an idle outbox costs no write lock (workers poll
        // several times a second on every node).
        let due: Option<(i64,)> = self
            .sql
            .one(
                "SELECT d.id FROM webhook_deliveries d \
                 WHERE d.state = 'pending' AND d.next_attempt_at <= $1 \
                 AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id \
                 AND w.disabled_at IS NULL) LIMIT 1",
                args![now],
            )
            .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        // The UPDATE first: on SQLite a write transaction must start with a write (it then
        // holds the write lock, and reads see the latest commit).
        let mut tx = self.sql.begin().await?;
        let rows: Vec<DeliveryRow> = tx
            .all(&claim_sql::<Q>(), args![now, lease_until, limit])
            .await?;
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let mut claimed = deliveries(rows)?;
        claimed.sort_by_key(|d| (d.next_attempt_at, d.id));
        let mut ids: Vec<i64> = claimed.iter().map(|d| d.webhook_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let sql = format!(
            "SELECT {WEBHOOK_COLS} FROM webhooks WHERE id IN ({})",
            params(1, ids.len())
        );
        let hooks: Vec<WebhookRow> = tx
            .all(&sql, ids.iter().map(|i| Arg::from(*i)).collect())
            .await?;
        tx.commit().await?;
        let hooks: Vec<Webhook> = hooks.into_iter().map(Into::into).collect();
        Ok(claimed
            .into_iter()
            .filter_map(|delivery| {
                let webhook = hooks.iter().find(|w| w.id == delivery.webhook_id)?.clone();
                Some(ClaimedDelivery { delivery, webhook })
            })
            .collect())
    }

    async fn record_attempt(&self, a: &AttemptRecord) -> StoreResult<bool> {
        let mut tx = self.sql.begin().await?;
        // The attempt happened, whoever holds the lease now; nothing if the delivery is gone
        // (its webhook was deleted meanwhile).
        tx.run(
            "INSERT INTO webhook_attempts (delivery_id, at, status, error, duration_ms) \
             SELECT $1, $2, $3, $4, $5 \
             WHERE EXISTS (SELECT 1 FROM webhook_deliveries WHERE id = $1)",
            args![a.delivery_id, a.at, a.status, &a.error, a.duration_ms],
        )
        .await?;
        let (state, next, delivered_at) = match a.outcome {
            DeliveryOutcome::Delivered => (DeliveryState::Delivered, a.at, Some(a.at)),
            DeliveryOutcome::Retry(t) => (DeliveryState::Pending, t, None),
            DeliveryOutcome::Failed => (DeliveryState::Failed, a.at, None),
        };
        let n = tx
            .run(
                "UPDATE webhook_deliveries SET state = $1, next_attempt_at = $2, \
                 delivered_at = $3, last_status = $4, last_error = $5 \
                 WHERE id = $6 AND state = 'pending' AND attempts = $7",
                args![
                    state.as_str(),
                    next,
                    delivered_at,
                    a.status,
                    &a.error,
                    a.delivery_id,
                    a.claimed_attempts
                ],
            )
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn webhook_failing(
        &self,
        webhook: i64,
        now: Timestamp,
    ) -> StoreResult<Option<Timestamp>> {
        let row: Option<(Option<i64>,)> = self
            .sql
            .one_w(
                "UPDATE webhooks SET failing_since = COALESCE(failing_since, $1) WHERE id = $2 \
                 RETURNING failing_since",
                args![now, webhook],
            )
            .await?;
        Ok(row.and_then(|(t,)| t))
    }

    async fn webhook_recovered(&self, webhook: i64) -> StoreResult<()> {
        self.sql
            .run(
                "UPDATE webhooks SET failing_since = NULL \
                 WHERE id = $1 AND failing_since IS NOT NULL",
                args![webhook],
            )
            .await?;
        Ok(())
    }

    async fn disable_webhook(&self, webhook: i64, now: Timestamp) -> StoreResult<bool> {
        let mut tx = self.sql.begin().await?;
        let n = tx
            .run(
                "UPDATE webhooks SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL",
                args![now, webhook],
            )
            .await?;
        if n > 0 {
            tx.run(
                "UPDATE webhook_deliveries SET state = 'failed', next_attempt_at = $1, \
                 last_error = $2 WHERE webhook_id = $3 AND state = 'pending'",
                args![now, "webhook disabled after a day of failures", webhook],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    async fn delivery_log(
        &self,
        user: UserId,
        webhook: i64,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<(Delivery, Vec<DeliveryAttempt>)>> {
        // The read pool: committed attempts are visible to every later read (WAL on SQLite).
        let sql = format!(
            "SELECT {DELIVERY_COLS} FROM webhook_deliveries \
             WHERE webhook_id = $1 AND id < $2 \
             AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = $1 AND w.user_id = $3) \
             ORDER BY id DESC LIMIT $4"
        );
        let rows: Vec<DeliveryRow> = self
            .sql
            .all(
                &sql,
                args![webhook, before.unwrap_or(i64::MAX), user, limit],
            )
            .await?;
        let list = deliveries(rows)?;
        if list.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, delivery_id, at, status, error, duration_ms FROM webhook_attempts \
             WHERE delivery_id IN ({}) ORDER BY delivery_id, id",
            params(1, list.len())
        );
        let attempts: Vec<AttemptRow> = self
            .sql
            .all(&sql, list.iter().map(|d| Arg::from(d.id)).collect())
            .await?;
        let attempts: Vec<DeliveryAttempt> = attempts.into_iter().map(Into::into).collect();
        Ok(list
            .into_iter()
            .map(|d| {
                let mine = attempts
                    .iter()
                    .filter(|a| a.delivery_id == d.id)
                    .cloned()
                    .collect();
                (d, mine)
            })
            .collect())
    }

    async fn replay_delivery(
        &self,
        user: UserId,
        webhook: i64,
        delivery: i64,
        now: Timestamp,
    ) -> StoreResult<Option<Delivery>> {
        let mut tx = self.sql.begin().await?;
        let sql = format!(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $1 \
             WHERE id = $2 AND webhook_id = $3 \
             AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id = $3 AND w.user_id = $4) \
             RETURNING {DELIVERY_COLS}"
        );
        let row: Option<DeliveryRow> = tx.one(&sql, args![now, delivery, webhook, user]).await?;
        let Some(row) = row else {
            tx.commit().await?;
            return Ok(None);
        };
        // The owner asks for another try: a webhook disabled after a day of failures is
        // enabled again (and starts a fresh failure clock).
        tx.run(
            "UPDATE webhooks SET disabled_at = NULL, failing_since = NULL \
             WHERE id = $1 AND disabled_at IS NOT NULL",
            args![webhook],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(row.try_into()?))
    }
}
