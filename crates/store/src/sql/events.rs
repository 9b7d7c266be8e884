//! Events with their webhook outbox rows, and recordings, for both backends.

use async_trait::async_trait;

use camgate_core::clock::Timestamp;
use camgate_core::error::StoreError;
use camgate_core::model::*;
use camgate_core::store::{EventQuery, EventStore, RecordingStore, StoreResult};

use super::cameras::Where;
use super::{args, Arg, Exec, Sql};
use crate::backend::Backend;

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    public_id: String,
    camera_id: Option<i64>,
    owner_id: i64,
    kind: String,
    at: i64,
    data: String,
    created_at: i64,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Event {
            id: r.id,
            public_id: r.public_id,
            camera_id: r.camera_id,
            owner_id: r.owner_id,
            kind: r.kind,
            at: r.at,
            data: r.data,
            created_at: r.created_at,
        }
    }
}

const EVENT_COLS: &str = "id, public_id, camera_id, owner_id, type AS kind, at, data, created_at";

#[derive(sqlx::FromRow)]
struct RecordingRow {
    id: i64,
    camera_id: i64,
    start_at: i64,
    end_at: i64,
    url: String,
    format: String,
    size_bytes: i64,
    created_at: i64,
}

impl From<RecordingRow> for Recording {
    fn from(r: RecordingRow) -> Self {
        Recording {
            id: r.id,
            camera_id: r.camera_id,
            start: r.start_at,
            end: r.end_at,
            url: r.url,
            format: r.format,
            size_bytes: r.size_bytes,
            created_at: r.created_at,
        }
    }
}

const RECORDING_COLS: &str = "id, camera_id, start_at, end_at, url, format, size_bytes, created_at";

/// The outbox insert: one pending delivery per enabled webhook subscribed to the notice's kind
/// (`events` is a space-separated list) among the webhooks matched by `owners` (a condition on
/// `w.user_id`). `$1` event id, `$2` kind, `$3` payload, `$4` now.
fn enqueue_sql(owners: &str) -> String {
    format!(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, payload, state, \
         attempts, next_attempt_at, created_at) \
         SELECT w.id, $1, $2, $3, 'pending', 0, $4, $4 FROM webhooks w \
         WHERE w.disabled_at IS NULL AND (' ' || w.events || ' ') LIKE ('% ' || $2 || ' %') \
         AND ({owners})"
    )
}

fn notice_args(n: &Notice, now: Timestamp) -> Vec<Arg> {
    args![n.id.as_str(), n.kind, n.payload.as_str(), now]
}

/// Events a user may see: of their own cameras, and of cameras shared with them.
const VISIBLE: &str = "(owner_id = $1 OR camera_id IN \
     (SELECT s.camera_id FROM camera_shares s WHERE s.user_id = $1))";

#[async_trait]
impl<T: Send + Sync + 'static, Q: Sql> EventStore for Backend<T, Q> {
    async fn record_event(
        &self,
        camera: CameraId,
        owner: UserId,
        public_id: &str,
        kind: &str,
        at: Timestamp,
        data: &str,
        notice: &Notice,
        now: Timestamp,
    ) -> StoreResult<Event> {
        // One transaction: the event is never stored without its outbox rows (a crash loses
        // both or neither; the answer comes after COMMIT).
        let mut tx = self.sql.begin().await?;
        let sql = format!(
            "INSERT INTO events (public_id, camera_id, owner_id, type, at, data, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {EVENT_COLS}"
        );
        let row: Option<EventRow> = tx
            .one(&sql, args![public_id, camera, owner, kind, at, data, now])
            .await?;
        let event: Event = row
            .ok_or_else(|| StoreError::Other("no event row".into()))?
            .into();
        let mut a = notice_args(notice, now);
        a.extend(args![owner, camera]);
        tx.run(
            &enqueue_sql(
                "w.user_id = $5 OR w.user_id IN (SELECT s.user_id FROM camera_shares s \
                 WHERE s.camera_id = $6 AND s.user_id IS NOT NULL)",
            ),
            a,
        )
        .await?;
        tx.commit().await?;
        Ok(event)
    }

    async fn enqueue_notice(
        &self,
        users: &[UserId],
        notice: &Notice,
        now: Timestamp,
    ) -> StoreResult<u64> {
        if users.is_empty() {
            return Ok(0);
        }
        let mut a = notice_args(notice, now);
        let params: Vec<String> = users
            .iter()
            .map(|u| {
                a.push(Arg::from(*u));
                format!("${}", a.len())
            })
            .collect();
        let owners = format!("w.user_id IN ({})", params.join(", "));
        self.sql.run(&enqueue_sql(&owners), a).await
    }

    async fn events(&self, user: UserId, q: &EventQuery) -> StoreResult<Vec<Event>> {
        let mut w = Where::default();
        w.arg(Arg::from(user));
        w.clauses.push(VISIBLE.into());
        if let Some(c) = q.camera {
            w.cond("camera_id", "=", Arg::from(c));
        }
        if let Some(k) = &q.kind {
            w.cond("type", "=", Arg::from(k.clone()));
        }
        if let Some(s) = q.since {
            w.cond("at", ">=", Arg::from(s));
        }
        if let Some(u) = q.until {
            w.cond("at", "<", Arg::from(u));
        }
        if let Some(b) = q.before {
            w.cond("id", "<", Arg::from(b));
        }
        let l = w.arg(Arg::from(q.limit));
        let sql = format!(
            "SELECT {EVENT_COLS} FROM events WHERE {} ORDER BY id DESC LIMIT {l}",
            w.clauses.join(" AND ")
        );
        let rows: Vec<EventRow> = self.sql.all(&sql, w.args).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn events_after(&self, user: UserId, after: i64, limit: i64) -> StoreResult<Vec<Event>> {
        let sql = format!(
            "SELECT {EVENT_COLS} FROM events WHERE {VISIBLE} AND id > $2 ORDER BY id LIMIT $3"
        );
        // Committed events are visible to every later read (WAL on SQLite), so the read pool.
        let rows: Vec<EventRow> = self.sql.all(&sql, args![user, after, limit]).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn last_event_id(&self) -> StoreResult<i64> {
        let row: Option<(Option<i64>,)> =
            self.sql.one_w("SELECT MAX(id) FROM events", vec![]).await?;
        Ok(row.and_then(|(n,)| n).unwrap_or(0))
    }

    async fn purge_media(&self, cutoff: Timestamp, batch: i64) -> StoreResult<u64> {
        let mut n = 0;
        for (table, cond) in [
            ("events", "created_at < $1"),
            ("recordings", "created_at < $1"),
            (
                "webhook_deliveries",
                "created_at < $1 AND state IN ('delivered', 'failed')",
            ),
        ] {
            let sql = format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {cond} \
                 ORDER BY id LIMIT $2)"
            );
            n += self.sql.run(&sql, args![cutoff, batch]).await?;
        }
        Ok(n)
    }
}

#[async_trait]
impl<T: Send + Sync + 'static, Q: Sql> RecordingStore for Backend<T, Q> {
    async fn add_recording(
        &self,
        camera: CameraId,
        r: &NewRecording,
        now: Timestamp,
    ) -> StoreResult<Recording> {
        let sql = format!(
            "INSERT INTO recordings (camera_id, start_at, end_at, url, format, size_bytes, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {RECORDING_COLS}"
        );
        let row: Option<RecordingRow> = self
            .sql
            .one_w(
                &sql,
                args![
                    camera,
                    r.start,
                    r.end,
                    r.url.as_str(),
                    r.format.as_str(),
                    r.size_bytes,
                    now
                ],
            )
            .await?;
        Ok(row
            .ok_or_else(|| StoreError::Other("no recording row".into()))?
            .into())
    }

    async fn recordings(
        &self,
        camera: CameraId,
        start: Timestamp,
        end: Timestamp,
        after: Option<(Timestamp, i64)>,
        limit: i64,
        max_len: i64,
    ) -> StoreResult<Vec<Recording>> {
        // Overlap: start_at < end AND end_at > start; a segment is at most max_len long, so
        // start_at > start - max_len bounds the index range.
        let (after_start, after_id) = after.unwrap_or((i64::MIN, i64::MIN));
        let sql = format!(
            "SELECT {RECORDING_COLS} FROM recordings WHERE camera_id = $1 \
             AND start_at < $2 AND start_at > $3 AND end_at > $4 \
             AND (start_at > $5 OR (start_at = $5 AND id > $6)) \
             ORDER BY start_at, id LIMIT $7"
        );
        let rows: Vec<RecordingRow> = self
            .sql
            .all(
                &sql,
                args![
                    camera,
                    end,
                    start.saturating_sub(max_len + 1),
                    start,
                    after_start,
                    after_id,
                    limit
                ],
            )
            .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
