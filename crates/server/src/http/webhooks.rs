//! Webhooks in the Angelcam dialect: `POST|GET /v1/webhooks/` (subscribe a URL to event types;
//! the answer to the POST shows the signing `secret`, once), `GET|DELETE /v1/webhooks/{id}/`,
//! the delivery log `GET /v1/webhooks/{id}/deliveries/` and
//! `POST /v1/webhooks/{id}/deliveries/{delivery_id}/replay/`. Reading needs `read`, writing
//! `write`; a paired device's token gets 403; someone else's webhook is 404. The rules (URL and
//! SSRF checks, secrets, signing, retries) are in `core::webhooks`; the sending in
//! `webhook_worker.rs`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use camgate_core::error::ApiError;
use camgate_core::store::{Delivery, DeliveryAttempt, DeliveryState, Webhook};
use camgate_core::webhooks::{LOG_PAGE_DEFAULT, LOG_PAGE_MAX};

use super::angelcam::{AngelJson, Angelcam};
use super::auth::Auth;
use super::error::AngelError;
use super::openapi as doc;
use super::{base_url, iso, AppState};

type A = Auth<Angelcam>;
type Res<T> = Result<T, AngelError>;

fn id_of(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>().map_err(|_| ApiError::NotFound)
}

/// A webhook as the API shows it (never its secret).
pub fn webhook_json(w: &Webhook) -> Value {
    json!({
        "id": w.id,
        "url": w.url,
        "events": w.events,
        "created_at": iso(w.created_at),
        "disabled": w.disabled_at.is_some(),
        "disabled_at": w.disabled_at.map(iso),
        "failing_since": w.failing_since.map(iso),
    })
}

pub fn attempt_json(a: &DeliveryAttempt) -> Value {
    json!({
        "at": iso(a.at),
        "status": a.status,
        "error": a.error,
        "duration_ms": a.duration_ms,
    })
}

/// A delivery of the log, with its attempts (`attempt_log`, oldest first).
pub fn delivery_json(d: &Delivery, attempts: &[DeliveryAttempt]) -> Value {
    json!({
        "id": d.id,
        "event_id": d.event_id,
        "type": d.event_type,
        "state": d.state.as_str(),
        "attempts": d.attempts,
        "last_status": d.last_status,
        "last_error": d.last_error,
        // When the next try is due; only a pending delivery has one.
        "next_attempt_at": (d.state == DeliveryState::Pending).then(|| iso(d.next_attempt_at)),
        "created_at": iso(d.created_at),
        "delivered_at": d.delivered_at.map(iso),
        "payload": serde_json::from_str::<Value>(&d.payload).unwrap_or(Value::Null),
        "attempt_log": attempts.iter().map(attempt_json).collect::<Vec<_>>(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookIn {
    url: Option<String>,
    events: Option<Vec<String>>,
}

/// `POST /v1/webhooks/` `{url, events}` → 201 with the signing `secret` (shown once).
#[utoipa::path(
    post,
    path = "/v1/webhooks/",
    tag = "Angelcam",
    operation_id = "angelcam_create_webhook",
    request_body(content = doc::AngelWebhookIn, content_type = "application/json"),
    responses(
        (status = 201, description = "The webhook with its signing secret; the secret is not shown again.", body = doc::AngelWebhookCreated),
        (status = 400, description = "A missing or invalid `url` (not https, too long, a loopback, private or link-local target) or `events`, or 20 webhooks already.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks `write`, or is a device token.", body = doc::AngelErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::AngelErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn create_webhook(
    State(s): State<AppState>,
    auth: A,
    AngelJson(body): AngelJson<WebhookIn>,
) -> Res<Response> {
    let c = s
        .core
        .create_webhook(&auth, body.url.as_deref(), body.events.as_deref())
        .await?;
    let mut v = webhook_json(&c.webhook);
    v["secret"] = Value::String(c.secret);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// `GET /v1/webhooks/`: the caller's webhooks, oldest first.
#[utoipa::path(
    get,
    path = "/v1/webhooks/",
    tag = "Angelcam",
    operation_id = "angelcam_list_webhooks",
    responses(
        (status = 200, description = "The caller's webhooks, oldest first (no secrets).", body = Vec<doc::AngelWebhook>),
        (status = 400, description = "A token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks `read`, or is a device token.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn list_webhooks(State(s): State<AppState>, auth: A) -> Res<Json<Value>> {
    let list = s.core.list_webhooks(&auth).await?;
    Ok(Json(Value::Array(list.iter().map(webhook_json).collect())))
}

/// `GET /v1/webhooks/{id}/`.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/",
    tag = "Angelcam",
    operation_id = "angelcam_get_webhook",
    params(("id" = String, Path, description = "Webhook id.")),
    responses(
        (status = 200, description = "The webhook (no secret).", body = doc::AngelWebhook),
        (status = 400, description = "A token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks `read`, or is a device token.", body = doc::AngelErrorBody),
        (status = 404, description = "No such webhook of the caller's.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn get_webhook(
    State(s): State<AppState>,
    auth: A,
    Path(id): Path<String>,
) -> Res<Json<Value>> {
    let w = s.core.get_webhook(&auth, id_of(&id)?).await?;
    Ok(Json(webhook_json(&w)))
}

/// `DELETE /v1/webhooks/{id}/` → 204: nothing more is sent; its delivery log goes too.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}/",
    tag = "Angelcam",
    operation_id = "angelcam_delete_webhook",
    params(("id" = String, Path, description = "Webhook id.")),
    responses(
        (status = 204, description = "Deleted, with its deliveries."),
        (status = 400, description = "A token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks `write`, or is a device token.", body = doc::AngelErrorBody),
        (status = 404, description = "No such webhook of the caller's.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn delete_webhook(
    State(s): State<AppState>,
    auth: A,
    Path(id): Path<String>,
) -> Res<StatusCode> {
    s.core.delete_webhook(&auth, id_of(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn int_param(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    q.get(name)
        .map(|v| match v.trim().parse::<i64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(ApiError::invalid(
                name,
                format!("`{name}` must be a whole number of at least 1."),
            )),
        })
        .transpose()
}

/// `GET /v1/webhooks/{id}/deliveries/?before=&limit=`: the delivery log, newest first.
#[utoipa::path(
    get,
    path = "/v1/webhooks/{id}/deliveries/",
    tag = "Angelcam",
    operation_id = "angelcam_webhook_deliveries",
    params(("id" = String, Path, description = "Webhook id."), doc::DeliveryQueryDoc),
    responses(
        (status = 200, description = "Deliveries, newest first, each with its attempts; `next` continues below the last one.", body = doc::AngelDeliveryPage),
        (status = 400, description = "Invalid parameters, or a token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks `read`, or is a device token.", body = doc::AngelErrorBody),
        (status = 404, description = "No such webhook of the caller's.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn list_deliveries(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    auth: A,
    Path(id): Path<String>,
) -> Res<Json<Value>> {
    let id = id_of(&id)?;
    let limit = int_param(&q, "limit")?
        .unwrap_or(LOG_PAGE_DEFAULT)
        .min(LOG_PAGE_MAX);
    let before = int_param(&q, "before")?;
    let log = s.core.delivery_log(&auth, id, before, limit).await?;
    let next = (log.len() as i64 == limit)
        .then(|| log.last().map(|(d, _)| d.id))
        .flatten()
        .map(|last| {
            format!(
                "{}/v1/webhooks/{id}/deliveries/?limit={limit}&before={last}",
                base_url(&s, &headers)
            )
        });
    Ok(Json(json!({
        "next": next,
        "results": log.iter().map(|(d, a)| delivery_json(d, a)).collect::<Vec<_>>(),
    })))
}

/// `POST /v1/webhooks/{id}/deliveries/{delivery_id}/replay/` → 202: sent again now, with the
/// same body and `id`; a webhook disabled after a day of failures is enabled again.
#[utoipa::path(
    post,
    path = "/v1/webhooks/{id}/deliveries/{delivery_id}/replay/",
    tag = "Angelcam",
    operation_id = "angelcam_replay_delivery",
    params(("id" = String, Path, description = "Webhook id."), ("delivery_id" = String, Path, description = "Delivery id.")),
    responses(
        (status = 202, description = "Queued: the delivery is pending and due now.", body = doc::AngelDelivery),
        (status = 400, description = "A token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks `write`, or is a device token.", body = doc::AngelErrorBody),
        (status = 404, description = "No such webhook or delivery of the caller's.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn replay_delivery(
    State(s): State<AppState>,
    auth: A,
    Path((id, delivery)): Path<(String, String)>,
) -> Res<Response> {
    let d = s
        .core
        .replay_delivery(&auth, id_of(&id)?, id_of(&delivery)?)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_json(&d, &[]))).into_response())
}
