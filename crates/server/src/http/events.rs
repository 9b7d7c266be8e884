//! Events, recordings and snapshots in the Angelcam dialect: `POST /v1/cameras/{id}/events/`,
//! `GET /v1/events/` (newest first, keyset `before`), `GET /v1/events/stream` (Server-Sent
//! Events with `Last-Event-ID` resume), `POST|GET /v1/cameras/{id}/recordings/` (the timeline,
//! at most 24 h per request, keyset `after`), `POST /v1/cameras/{id}/snapshot/`. The rules are
//! in `core::events`; media URLs in answers are signed (`core::media`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use camgate_core::error::ApiError;
use camgate_core::events::{event_json, parse_time, EventInput, PAGE_MAX};
use camgate_core::model::{NewRecording, Recording};
use camgate_core::store::EventQuery;

use super::angelcam::{signed_camera_json, AngelJson, Angelcam};
use super::auth::Auth;
use super::error::AngelError;
use super::openapi as doc;
use super::{base_url, AppState};

type A = Auth<Angelcam>;
type Res<T> = Result<T, AngelError>;

fn id_of(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>().map_err(|_| ApiError::NotFound)
}

fn limit_of(q: &HashMap<String, String>) -> Result<i64, ApiError> {
    match q.get("limit") {
        None => Ok(PAGE_MAX),
        Some(s) => match s.trim().parse::<i64>() {
            Ok(n) if n >= 1 => Ok(n.min(PAGE_MAX)),
            _ => Err(ApiError::invalid(
                "limit",
                "`limit` must be a whole number of at least 1.",
            )),
        },
    }
}

fn int_param(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    q.get(name)
        .map(|s| {
            s.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::invalid(name, format!("`{name}` must be a whole number.")))
        })
        .transpose()
}

fn time_param(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    q.get(name).map(|s| parse_time(name, s)).transpose()
}

fn created(v: Value) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    #[serde(rename = "type")]
    kind: Option<String>,
    /// RFC 3339 or Unix seconds; default: now.
    at: Option<Value>,
    data: Option<Value>,
}

fn time_value(field: &str, v: Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s),
        Value::Number(n) if n.is_i64() => Ok(n.to_string()),
        _ => Err(ApiError::invalid(
            field,
            format!("`{field}` must be an RFC 3339 time or Unix seconds."),
        )),
    }
}

/// `POST /v1/cameras/{id}/events/` → 201: the camera (its device token) or its owner reports.
#[utoipa::path(
    post,
    path = "/v1/cameras/{id}/events/",
    tag = "Angelcam",
    operation_id = "angelcam_post_event",
    params(("id" = String, Path, description = "Camera id.")),
    request_body(content = doc::EventIn, content_type = "application/json"),
    responses(
        (status = 201, description = "The event, stored with its webhook deliveries.", body = doc::EventOut),
        (status = 400, description = "Invalid type, time or data.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "A guest, another camera's device token, or a token without `write`.", body = doc::AngelErrorBody),
        (status = 404, description = "No such camera the caller may see.", body = doc::AngelErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::AngelErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = doc::AngelErrorBody),
        (status = 429, description = "Too many posts for this camera (with `Retry-After`).", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn post_event(
    State(s): State<AppState>,
    auth: A,
    Path(id): Path<String>,
    AngelJson(body): AngelJson<EventIn>,
) -> Res<Response> {
    let input = EventInput {
        kind: body.kind,
        at: body.at.map(|v| time_value("at", v)).transpose()?,
        data: body.data,
    };
    let e = s.core.post_event(&auth, id_of(&id)?, input).await?;
    Ok(created(event_json(&e)))
}

/// `GET /v1/events/?camera=&type=&since=&until=&before=&limit=`: events the caller may see.
#[utoipa::path(
    get,
    path = "/v1/events/",
    tag = "Angelcam",
    operation_id = "angelcam_list_events",
    params(doc::EventQueryDoc),
    responses(
        (status = 200, description = "Events, newest first; `next` continues below the last one.", body = doc::EventPage),
        (status = 400, description = "Invalid parameters, or a token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks `read`, or is a device token.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn list_events(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    auth: A,
) -> Res<Json<Value>> {
    let limit = limit_of(&q)?;
    let query = EventQuery {
        camera: int_param(&q, "camera")?,
        kind: q.get("type").cloned(),
        since: time_param(&q, "since")?,
        until: time_param(&q, "until")?,
        before: int_param(&q, "before")?,
        limit,
    };
    let events = s.core.list_events(&auth, query.clone()).await?;
    let next = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.id))
        .flatten()
        .map(|last| {
            let mut ser = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &q {
                if k != "before" {
                    ser.append_pair(k, v);
                }
            }
            ser.append_pair("before", &last.to_string());
            format!("{}/v1/events/?{}", base_url(&s, &headers), ser.finish())
        });
    Ok(Json(json!({
        "next": next,
        "results": events.iter().map(event_json).collect::<Vec<_>>(),
    })))
}

/// How often the stream looks for new events (each node reads the shared database, so events
/// posted on any node reach every stream).
const STREAM_POLL: Duration = Duration::from_millis(500);

/// `GET /v1/events/stream`: Server-Sent Events, one per event the caller may see, each with its
/// id; a reconnecting client sends `Last-Event-ID` (or `?last_event_id=`) and gets what it
/// missed first.
#[utoipa::path(
    get,
    path = "/v1/events/stream",
    tag = "Angelcam",
    operation_id = "angelcam_event_stream",
    params(
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id."),
        ("last_event_id" = Option<String>, Query, description = "The same, for clients that cannot set headers."),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: `id`, `event` (the event type) and `data` (the event as `GET /v1/events/` shows it).", content_type = "text/event-stream", body = String),
        (status = 400, description = "An invalid Last-Event-ID, or a token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks `read`, or is a device token.", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn event_stream(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    auth: A,
) -> Res<Response> {
    // Permission first: the same as the listing (a cheap query that fails the same way).
    s.core
        .list_events(
            &auth,
            EventQuery {
                limit: 1,
                ..Default::default()
            },
        )
        .await?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| q.get("last_event_id").cloned());
    let start = match resume {
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::invalid("Last-Event-ID", "`Last-Event-ID` must be an event id.")
            })?,
        None => s.core.last_event_id().await?,
    };
    let principal = auth.0;
    let core = s.core.clone();
    let stream = futures_util::stream::unfold(
        (
            core,
            principal,
            start,
            Vec::<camgate_core::model::Event>::new(),
            true,
        ),
        |(core, p, mut after, mut queue, mut first)| async move {
            loop {
                if let Some(e) = (!queue.is_empty()).then(|| queue.remove(0)) {
                    after = e.id;
                    let ev = SseEvent::default()
                        .id(e.id.to_string())
                        .event(e.kind.clone())
                        .data(event_json(&e).to_string());
                    return Some((Ok::<_, Infallible>(ev), (core, p, after, queue, first)));
                }
                if !first {
                    tokio::time::sleep(STREAM_POLL).await;
                }
                first = false;
                // A token that stopped working ends the stream.
                match core.events_after(&p, after, 100).await {
                    Ok(batch) => queue = batch,
                    Err(ApiError::Unavailable { .. }) => continue,
                    Err(_) => return None,
                }
                if !still_valid(&core, &p).await {
                    return None;
                }
            }
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// Whether the stream's credential still works (revoked, expired, logged out: the stream ends).
async fn still_valid(core: &camgate_core::Core, p: &camgate_core::principal::Principal) -> bool {
    use camgate_core::principal::CredentialKind;
    let now = core.now();
    match &p.credential {
        CredentialKind::Access { expires_at, .. } | CredentialKind::Jwt { expires_at, .. } => {
            *expires_at > now
        }
        _ => true,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingIn {
    start: Option<Value>,
    end: Option<Value>,
    url: Option<String>,
    format: Option<String>,
    size_bytes: Option<i64>,
}

fn required<T>(v: Option<T>, field: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| ApiError::invalid(field, format!("`{field}`: this field is required.")))
}

/// A recording as the API shows it, with its URL signed for the caller.
async fn recording_out(s: &AppState, auth: &A, r: &Recording) -> Result<Value, ApiError> {
    let mut v = camgate_core::events::recording_json(r);
    v["url"] = json!(
        s.core
            .sign_media_url(auth, r.camera_id, "recording", &r.url)
            .await?
    );
    Ok(v)
}

/// `POST /v1/cameras/{id}/recordings/` → 201: a recorded segment.
#[utoipa::path(
    post,
    path = "/v1/cameras/{id}/recordings/",
    tag = "Angelcam",
    operation_id = "angelcam_add_recording",
    params(("id" = String, Path, description = "Camera id.")),
    request_body(content = doc::RecordingIn, content_type = "application/json"),
    responses(
        (status = 201, description = "The segment.", body = doc::RecordingOut),
        (status = 400, description = "Invalid times, URL, format or size.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "A guest, another camera's device token, or a token without `write`.", body = doc::AngelErrorBody),
        (status = 404, description = "No such camera the caller may see.", body = doc::AngelErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::AngelErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = doc::AngelErrorBody),
        (status = 429, description = "Too many posts for this camera (with `Retry-After`).", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn add_recording(
    State(s): State<AppState>,
    auth: A,
    Path(id): Path<String>,
    AngelJson(body): AngelJson<RecordingIn>,
) -> Res<Response> {
    let start = parse_time(
        "start",
        &time_value("start", required(body.start, "start")?)?,
    )?;
    let end = parse_time("end", &time_value("end", required(body.end, "end")?)?)?;
    let r = NewRecording {
        start,
        end,
        url: required(body.url, "url")?,
        format: required(body.format, "format")?,
        size_bytes: body.size_bytes.unwrap_or(0),
    };
    let rec = s.core.add_recording(&auth, id_of(&id)?, r).await?;
    Ok(created(recording_out(&s, &auth, &rec).await?))
}

/// `GET /v1/cameras/{id}/recordings/?start=&end=&limit=&after=`: the timeline.
#[utoipa::path(
    get,
    path = "/v1/cameras/{id}/recordings/",
    tag = "Angelcam",
    operation_id = "angelcam_list_recordings",
    params(("id" = String, Path, description = "Camera id."), doc::RecordingQueryDoc),
    responses(
        (status = 200, description = "Segments overlapping the window, by start; `next` continues.", body = doc::RecordingPage),
        (status = 400, description = "A missing or invalid window, more than 24 h, or a token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "A `view` guest, or a token without `read`.", body = doc::AngelErrorBody),
        (status = 404, description = "No such camera the caller may see.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn list_recordings(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    auth: A,
) -> Res<Json<Value>> {
    let camera = id_of(&id)?;
    let start = time_param(&q, "start")?
        .ok_or_else(|| ApiError::invalid("start", "`start`: this parameter is required."))?;
    let end = time_param(&q, "end")?
        .ok_or_else(|| ApiError::invalid("end", "`end`: this parameter is required."))?;
    let limit = limit_of(&q)?;
    // `after` is the keyset position `START_ID` of the last segment seen (from `next`).
    let after = match q.get("after") {
        None => None,
        Some(a) => Some(
            a.split_once('_')
                .and_then(|(t, i)| Some((t.parse::<i64>().ok()?, i.parse::<i64>().ok()?)))
                .ok_or_else(|| {
                    ApiError::invalid("after", "`after` must be a position from a `next` link.")
                })?,
        ),
    };
    let recs = s
        .core
        .recordings(&auth, camera, start, end, after, limit)
        .await?;
    let next = (recs.len() as i64 == limit)
        .then(|| recs.last())
        .flatten()
        .map(|r| {
            format!(
                "{}/v1/cameras/{camera}/recordings/?start={start}&end={end}&limit={limit}&after={}_{}",
                base_url(&s, &headers),
                r.start,
                r.id
            )
        });
    let mut results = Vec::with_capacity(recs.len());
    for r in &recs {
        results.push(recording_out(&s, &auth, r).await?);
    }
    Ok(Json(json!({"next": next, "results": results})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotUpdate {
    url: Option<String>,
    taken_at: Option<Value>,
}

/// `POST /v1/cameras/{id}/snapshot/`: the camera's current snapshot.
#[utoipa::path(
    post,
    path = "/v1/cameras/{id}/snapshot/",
    tag = "Angelcam",
    operation_id = "angelcam_update_snapshot",
    params(("id" = String, Path, description = "Camera id.")),
    request_body(content = doc::SnapshotUpdateIn, content_type = "application/json"),
    responses(
        (status = 200, description = "The camera, with its new snapshot.", body = doc::AngelCamera),
        (status = 400, description = "An invalid URL or time.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "A guest, another camera's device token, or a token without `write`.", body = doc::AngelErrorBody),
        (status = 404, description = "No such camera the caller may see.", body = doc::AngelErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::AngelErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = doc::AngelErrorBody),
        (status = 429, description = "Too many posts for this camera (with `Retry-After`).", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn update_snapshot(
    State(s): State<AppState>,
    auth: A,
    Path(id): Path<String>,
    AngelJson(body): AngelJson<SnapshotUpdate>,
) -> Res<Json<Value>> {
    let url = required(body.url, "url")?;
    let taken_at = body
        .taken_at
        .map(|v| time_value("taken_at", v).and_then(|t| parse_time("taken_at", &t)))
        .transpose()?;
    let cam = s
        .core
        .update_snapshot(&auth, id_of(&id)?, &url, taken_at)
        .await?;
    Ok(Json(signed_camera_json(&s, &auth, cam).await?))
}
