//! Events, recordings and snapshots: what a camera (through its paired device's token) or its
//! owner reports, and who may read it. Every event is stored with its webhook outbox rows in one
//! transaction (`EventStore::record_event`), so an acknowledged event is never lost and is
//! delivered at least once. Permissions come from `camera_access` (core/src/shares.rs):
//! reporting is the owner's or the camera's own device token's; recordings are for the owner and
//! `playback` guests; events for everyone who may see the camera.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{json, Value};

use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::model::{
    Camera, CameraId, CameraStatus, Event, NewRecording, Notice, Recording, Snapshot, UserId,
};
use crate::principal::Principal;
use crate::shares::CameraAction;
use crate::store::EventQuery;
use crate::Core;

/// Event kinds a camera or its owner may post.
pub const EVENT_KINDS: [&str; 4] = ["motion", "status", "tamper", "custom"];
/// Webhook event types (what a subscription names).
pub const NOTICE_KINDS: [&str; 6] = [
    "camera.event",
    "camera.added",
    "camera.removed",
    "camera.shared",
    "app.authorized",
    "app.revoked",
];
/// At most this much JSON in an event's `data` (bytes, serialised).
pub const MAX_EVENT_DATA: usize = 4096;
/// A timeline request covers at most 24 hours.
pub const MAX_WINDOW_SECS: i64 = 24 * 3600;
/// A recorded segment is at most this long (which bounds the timeline's index scan).
pub const MAX_SEGMENT_SECS: i64 = 24 * 3600;
/// Page sizes of the event listing and the timeline.
pub const PAGE_MAX: i64 = 100;
/// Default of posts (events, recordings, snapshots) per camera per minute, per node.
pub const POSTS_PER_MINUTE: u32 = 120;

/// A fixed-window counter of posts per camera (per node: a bound on what one camera can make a
/// node write, not a global quota).
#[derive(Default)]
pub struct PostLimiter {
    windows: Mutex<HashMap<CameraId, (i64, u32)>>,
}

impl PostLimiter {
    /// Counts a post; `Err(seconds to wait)` past `limit` (0: no limit).
    fn hit(&self, camera: CameraId, now: Timestamp, limit: u32) -> Result<(), u64> {
        if limit == 0 {
            return Ok(());
        }
        let window = now.div_euclid(60);
        let mut m = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() > 100_000 {
            m.retain(|_, (w, _)| *w == window);
        }
        let e = m.entry(camera).or_insert((window, 0));
        if e.0 != window {
            *e = (window, 0);
        }
        if e.1 >= limit {
            return Err((60 - now.rem_euclid(60)).max(1) as u64);
        }
        e.1 += 1;
        Ok(())
    }
}

/// A new random public id with a prefix (`evt_`, `ntc_`).
fn public_id(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        crate::secret::generate(crate::secret::TokenFormat::Alnum30)
    )
}

fn iso(t: Timestamp) -> String {
    crate::clock::rfc3339(t)
}

/// A webhook delivery body: `{id, type, created_at, data}`.
pub fn notice(kind: &'static str, id: String, now: Timestamp, data: Value) -> Notice {
    let payload = json!({"id": id, "type": kind, "created_at": iso(now), "data": data});
    Notice {
        kind,
        id,
        payload: payload.to_string(),
    }
}

/// An event as the API shows it.
pub fn event_json(e: &Event) -> Value {
    json!({
        "id": e.id,
        "event_id": e.public_id,
        "camera_id": e.camera_id,
        "type": e.kind,
        "at": iso(e.at),
        "data": serde_json::from_str::<Value>(&e.data).unwrap_or(Value::Null),
        "created_at": iso(e.created_at),
    })
}

/// A recording as the API shows it (before its URL is signed).
pub fn recording_json(r: &Recording) -> Value {
    json!({
        "id": r.id,
        "camera_id": r.camera_id,
        "start": iso(r.start),
        "end": iso(r.end),
        "url": r.url,
        "format": r.format,
        "size_bytes": r.size_bytes,
    })
}

/// Recording and snapshot URLs: what media storage hands out (`s3` too).
fn url_ok(field: &str, u: &str) -> Result<(), ApiError> {
    crate::cameras::url_in(
        field,
        u,
        &["http", "https", "rtsp", "rtmp", "rtsps", "s3"],
        "an absolute http(s), rtsp, rtmp or s3 URL",
    )
}

/// Parses an RFC 3339 time or whole Unix seconds.
pub fn parse_time(field: &str, s: &str) -> Result<Timestamp, ApiError> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        if (0..=253_402_300_799).contains(&n) {
            return Ok(n);
        }
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp())
        .map_err(|_| {
            ApiError::invalid(
                field,
                format!("`{field}` must be an RFC 3339 time or Unix seconds."),
            )
        })
}

/// What `POST /v1/cameras/{id}/events/` carries, parsed by the handler.
#[derive(Debug, Clone, Default)]
pub struct EventInput {
    pub kind: Option<String>,
    pub at: Option<String>,
    pub data: Option<Value>,
}

impl Core {
    fn check_post_rate(&self, camera: CameraId) -> Result<(), ApiError> {
        self.post_limiter
            .hit(camera, self.now(), self.settings.camera_posts_per_minute)
            .map_err(|retry_after| ApiError::TooManyRequests { retry_after })
    }

    /// `POST /v1/cameras/{id}/events/`: the camera's device token or its owner reports.
    pub async fn post_event(
        &self,
        p: &Principal,
        camera: CameraId,
        input: EventInput,
    ) -> Result<Event, ApiError> {
        let cam = self.camera_access(p, camera, CameraAction::Report).await?;
        let kind = input
            .kind
            .ok_or_else(|| ApiError::invalid("type", "`type`: this field is required."))?;
        if !EVENT_KINDS.contains(&kind.as_str()) {
            return Err(ApiError::invalid(
                "type",
                "`type` must be one of motion, status, tamper, custom.",
            ));
        }
        let now = self.now();
        let at = match input.at.as_deref() {
            None => now,
            Some(s) => parse_time("at", s)?,
        };
        let data = input.data.unwrap_or_else(|| json!({}));
        if !data.is_object() {
            return Err(ApiError::invalid("data", "`data` must be a JSON object."));
        }
        let data = data.to_string();
        if data.len() > MAX_EVENT_DATA || data.contains("\\u0000") {
            return Err(ApiError::invalid(
                "data",
                format!("`data` must be at most {MAX_EVENT_DATA} bytes of JSON, without NUL."),
            ));
        }
        self.check_post_rate(camera)?;
        self.store_event(&cam, &kind, at, &data).await
    }

    /// Stores an event of `cam` with its `camera.event` notice.
    async fn store_event(
        &self,
        cam: &Camera,
        kind: &str,
        at: Timestamp,
        data: &str,
    ) -> Result<Event, ApiError> {
        let now = self.now();
        let id = public_id("evt_");
        let body = json!({
            "camera_id": cam.id,
            "type": kind,
            "at": iso(at),
            "data": serde_json::from_str::<Value>(data).unwrap_or(Value::Null),
        });
        let n = notice("camera.event", id.clone(), now, body);
        let e = self
            .store
            .record_event(cam.id, cam.owner_id, &id, kind, at, data, &n, now)
            .await?;
        crate::metrics::event_recorded(kind);
        // Its deliveries are due now: wake this node's webhook worker.
        crate::webhooks::wake_workers();
        Ok(e)
    }

    /// A heartbeat is a `status` event too (with whether the status changed).
    pub(crate) async fn heartbeat_event(
        &self,
        cam: &Camera,
        before: CameraStatus,
        status: CameraStatus,
    ) -> Result<(), ApiError> {
        let data = json!({
            "status": status.as_str(),
            "previous": before.as_str(),
            "heartbeat": true,
            "changed": before != status,
        })
        .to_string();
        self.store_event(cam, "status", self.now(), &data).await?;
        Ok(())
    }

    /// Queues a webhook notice for `users` (camera added, removed, shared; app authorized,
    /// revoked). Failures are logged: the action it reports has happened already.
    pub async fn notify(&self, users: &[UserId], kind: &'static str, data: Value) {
        let n = notice(kind, public_id("ntc_"), self.now(), data);
        match self.store.enqueue_notice(users, &n, self.now()).await {
            Ok(_) => crate::webhooks::wake_workers(),
            Err(e) => tracing::warn!(error = %e, kind, "webhook notice not queued"),
        }
    }

    /// `GET /v1/events/`: what the caller may see, newest first.
    pub async fn list_events(
        &self,
        p: &Principal,
        mut q: EventQuery,
    ) -> Result<Vec<Event>, ApiError> {
        p.require(crate::scope::Need::Read)?;
        if p.camera.is_some() {
            return Err(ApiError::Forbidden(
                "A device token may not read the event list.".into(),
            ));
        }
        let me = p.owner_id().ok_or_else(|| {
            ApiError::Forbidden("This route needs a token issued to a user.".into())
        })?;
        if let Some(k) = &q.kind {
            if !EVENT_KINDS.contains(&k.as_str()) {
                return Err(ApiError::invalid(
                    "type",
                    "`type` must be one of motion, status, tamper, custom.",
                ));
            }
        }
        q.limit = q.limit.clamp(1, PAGE_MAX);
        Ok(self.store.events(me, &q).await?)
    }

    /// The event stream: events after `after` that the caller may see, oldest first.
    pub async fn events_after(
        &self,
        p: &Principal,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Event>, ApiError> {
        let me = p.owner_id().ok_or_else(|| {
            ApiError::Forbidden("This route needs a token issued to a user.".into())
        })?;
        Ok(self.store.events_after(me, after, limit).await?)
    }

    /// Where a stream without `Last-Event-ID` starts: after the newest event.
    pub async fn last_event_id(&self) -> Result<i64, ApiError> {
        Ok(self.store.last_event_id().await?)
    }

    /// `POST /v1/cameras/{id}/recordings/`: a segment reported by the device or the owner.
    pub async fn add_recording(
        &self,
        p: &Principal,
        camera: CameraId,
        r: NewRecording,
    ) -> Result<Recording, ApiError> {
        self.camera_access(p, camera, CameraAction::Report).await?;
        url_ok("url", &r.url)?;
        if r.format.is_empty() || r.format.len() > 32 || r.format.contains('\0') {
            return Err(ApiError::invalid(
                "format",
                "`format` must be 1-32 characters.",
            ));
        }
        if r.end <= r.start {
            return Err(ApiError::invalid("end", "`end` must be after `start`."));
        }
        if r.end - r.start > MAX_SEGMENT_SECS {
            return Err(ApiError::invalid(
                "end",
                "A segment is at most 24 hours long.",
            ));
        }
        if r.size_bytes < 0 {
            return Err(ApiError::invalid(
                "size_bytes",
                "`size_bytes` must be at least 0.",
            ));
        }
        self.check_post_rate(camera)?;
        Ok(self.store.add_recording(camera, &r, self.now()).await?)
    }

    /// `GET /v1/cameras/{id}/recordings/?start=&end=`: the owner's and `playback` guests'.
    pub async fn recordings(
        &self,
        p: &Principal,
        camera: CameraId,
        start: Timestamp,
        end: Timestamp,
        after: Option<(Timestamp, i64)>,
        limit: i64,
    ) -> Result<Vec<Recording>, ApiError> {
        self.camera_access(p, camera, CameraAction::Playback)
            .await?;
        if end <= start {
            return Err(ApiError::invalid("end", "`end` must be after `start`."));
        }
        if end - start > MAX_WINDOW_SECS {
            return Err(ApiError::invalid(
                "end",
                "A timeline request covers at most 24 hours.",
            ));
        }
        Ok(self
            .store
            .recordings(
                camera,
                start,
                end,
                after,
                limit.clamp(1, PAGE_MAX),
                MAX_SEGMENT_SECS,
            )
            .await?)
    }

    /// `POST /v1/cameras/{id}/snapshot/`: the camera's current snapshot (URL and time taken).
    pub async fn update_snapshot(
        &self,
        p: &Principal,
        camera: CameraId,
        url: &str,
        taken_at: Option<Timestamp>,
    ) -> Result<Camera, ApiError> {
        let cam = self.camera_access(p, camera, CameraAction::Report).await?;
        url_ok("url", url)?;
        self.check_post_rate(camera)?;
        let patch = crate::cameras::CameraPatch {
            snapshot: Some(Some(Snapshot {
                url: url.to_string(),
                created_at: taken_at.unwrap_or_else(|| self.now()),
            })),
            ..Default::default()
        };
        let mut out = self.update_camera(cam.owner_id, camera, patch).await?;
        out.shared = cam.shared;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_post_limiter_counts_per_camera_and_minute() {
        let l = PostLimiter::default();
        let n = POSTS_PER_MINUTE;
        for _ in 0..n {
            assert!(l.hit(1, 120, n).is_ok());
        }
        assert_eq!(l.hit(1, 130, n), Err(50));
        assert!(
            l.hit(2, 130, n).is_ok(),
            "another camera has its own window"
        );
        assert!(l.hit(1, 180, n).is_ok(), "a new minute starts afresh");
        for _ in 0..1000 {
            assert!(l.hit(3, 200, 0).is_ok(), "0: no limit");
        }
    }

    #[test]
    fn times_parse_as_rfc3339_or_unix_seconds() {
        assert_eq!(parse_time("at", "1700000000").unwrap(), 1_700_000_000);
        assert_eq!(
            parse_time("at", "2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000
        );
        assert!(parse_time("at", "yesterday").is_err());
        assert!(parse_time("at", "-5").is_err());
    }

    #[test]
    fn a_notice_carries_its_id_type_and_data() {
        let n = notice("camera.added", "ntc_x".into(), 0, json!({"camera_id": 3}));
        let v: Value = serde_json::from_str(&n.payload).unwrap();
        assert_eq!(v["id"], "ntc_x");
        assert_eq!(v["type"], "camera.added");
        assert_eq!(v["created_at"], "1970-01-01T00:00:00Z");
        assert_eq!(v["data"]["camera_id"], 3);
    }
}
