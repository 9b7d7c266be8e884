//! The Angelcam dialect (specs 000 and 001): `/v1/me/` and `/v1/cameras/`, trailing slash
//! required, django-rest-framework conventions (limit/offset pagination, `{status, title,
//! detail}` errors).

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use std::collections::HashMap;

use camgate_core::cameras::{parse_codec, parse_status, CameraPatch, Page, PAGE_MAX};
use camgate_core::error::ApiError;
use camgate_core::listings::Listed;
use camgate_core::model::{Camera, CameraFields, Snapshot, Stream};
use camgate_core::scope::Need;

use super::auth::{Auth, Dialect};
use super::error::{angel_body, AngelError};
use super::openapi as doc;
use super::{base_url, iso, AppState};

pub struct Angelcam;
impl Dialect for Angelcam {
    type Error = AngelError;
}

type A = Auth<Angelcam>;
type Res<T> = Result<T, AngelError>;

/// A JSON body read under the body limit; errors in Angelcam shape.
pub struct AngelJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for AngelJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !ct.starts_with("application/json") {
            return Err(angel_body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as application/json.",
            ));
        }
        let body = axum::body::to_bytes(req.into_body(), state.body_limit)
            .await
            .map_err(|e| {
                if super::rejections::is_too_large(&e) {
                    super::error::too_large("/v1/", state.body_limit)
                } else {
                    angel_body(
                        StatusCode::BAD_REQUEST,
                        "invalid",
                        "The request body could not be read.",
                    )
                }
            })?;
        serde_json::from_slice(&body).map(AngelJson).map_err(|e| {
            angel_body(
                StatusCode::BAD_REQUEST,
                "invalid",
                &format!("Invalid JSON body: {e}."),
            )
        })
    }
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
pub struct SnapshotIn {
    pub url: String,
}

#[derive(Debug, Deserialize)]
pub struct CameraIn {
    name: Option<String>,
    #[serde(rename = "type")]
    codec: Option<String>,
    status: Option<String>,
    streams: Option<Vec<Stream>>,
    #[serde(default, deserialize_with = "nullable")]
    snapshot: Option<Option<SnapshotIn>>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    tags: Option<Vec<String>>,
    is_public: Option<bool>,
}

impl CameraIn {
    fn into_patch(self, now: i64) -> CameraPatch {
        CameraPatch {
            name: self.name,
            codec: self.codec,
            status: self.status,
            streams: self.streams,
            snapshot: self.snapshot.map(|s| {
                s.map(|s| Snapshot {
                    url: s.url,
                    created_at: now,
                })
            }),
            description: self.description,
            tags: self.tags,
            is_public: self.is_public,
            ..Default::default()
        }
    }
}

pub fn camera_json(c: &Camera) -> Value {
    let f = &c.fields;
    let mut v = json!({
        "id": c.id,
        "name": f.name,
        "type": f.codec.as_str(),
        "status": f.status.as_str(),
        "snapshot": f.snapshot.as_ref().map(|s| json!({"url": s.url, "created_at": iso(s.created_at)})),
        "streams": f.streams,
        "description": f.description,
        "tags": f.tags,
        "is_public": f.is_public,
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
    });
    // Only a guest's view of someone else's camera is marked (the owner's answer keeps the
    // spec's shape).
    if let Some(s) = &c.shared {
        v["shared"] = json!(true);
        v["permission"] = json!(s.permission.as_str());
        v["owner_name"] = json!(s.owner_name);
    }
    v
}

/// A camera as the caller may see it, its media URLs signed for them.
pub async fn signed_camera_json(s: &AppState, auth: &A, mut cam: Camera) -> Res<Value> {
    s.core.sign_camera(auth, &mut cam).await?;
    Ok(camera_json(&cam))
}

fn owner(auth: &A) -> Res<i64> {
    auth.owner_id()
        .ok_or_else(|| ApiError::Forbidden("This token is not tied to a user.".into()).into())
}

/// `GET /v1/me/` → `{id, email, first_name, last_name, phone}` (spec 001).
#[utoipa::path(
    get,
    path = "/v1/me/",
    tag = "Angelcam",
    operation_id = "angelcam_me",
    responses(
        (status = 200, description = "The caller's account.", body = doc::AngelUser),
        (status = 400, description = "Invalid parameters, or a token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks the scope, or is not tied to a user.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn me(auth: A) -> Res<Response> {
    /// Serialised from the caller's record as borrowed text: the most frequent answer of the
    /// API builds no `serde_json::Value` tree (five keys and four values copied per request).
    #[derive(serde::Serialize)]
    struct Me<'a> {
        id: i64,
        email: &'a str,
        first_name: &'a str,
        last_name: &'a str,
        phone: &'a str,
    }
    auth.require(Need::Read)?;
    let u = auth.user()?;
    Ok(Json(Me {
        id: u.id,
        email: &u.email,
        first_name: &u.first_name,
        last_name: &u.last_name,
        phone: &u.phone,
    })
    .into_response())
}

/// `DELETE /v1/me/` → 204: deletes the caller's account and everything it owns.
#[utoipa::path(
    delete,
    path = "/v1/me/",
    tag = "Angelcam",
    operation_id = "angelcam_delete_me",
    responses(
        (status = 204, description = "The account and everything it owned are deleted."),
        (status = 400, description = "Invalid parameters, or a token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks the scope, or is not tied to a user.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn delete_me(State(s): State<AppState>, auth: A) -> Res<StatusCode> {
    auth.require(Need::Write)?;
    let id = auth.user()?.id;
    s.core.delete_user(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/cameras/?limit=&offset=` → `{count, next, previous, results}`.
#[utoipa::path(
    get,
    path = "/v1/cameras/",
    tag = "Angelcam",
    operation_id = "angelcam_list_cameras",
    params(doc::AngelPageQuery),
    responses(
        (status = 200, description = "A page of the caller's cameras.", body = doc::AngelCameraPage),
        (status = 400, description = "Invalid parameters, or a token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks the scope, or is not tied to a user.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn list_cameras(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    auth: A,
) -> Res<Response> {
    auth.require(Need::Read)?;
    let owner = owner(&auth)?;
    let page = Page::parse(
        q.get("limit").map(String::as_str),
        q.get("offset").map(String::as_str),
        PAGE_MAX,
    )?
    .with_after(q.get("after").map(String::as_str))?;
    let base = format!("{}/v1/cameras/", base_url(&s, &headers));
    let request = format!(
        "angelcam|{base}|{}|{}|{:?}",
        page.limit, page.offset, page.after
    );
    let core = &s.core;
    let bytes = core
        .camera_listing(&auth, Listed::Cameras(owner), &request, || async {
            let (count, mut cams) = core.list_cameras(owner, page).await?;
            for c in cams.iter_mut() {
                core.sign_camera(&auth, c).await?;
            }
            let link = |off: i64, after: Option<i64>| {
                let mut l = format!("{base}?limit={}", page.limit);
                if off > 0 {
                    l.push_str(&format!("&offset={off}"));
                }
                if let Some(a) = after {
                    l.push_str(&format!("&after={a}"));
                }
                l
            };
            // `next` also names the last camera of this page, so following it is a keyset
            // read; `previous` stays an offset link.
            let last = cams.last().map(|c| c.id);
            let body = CameraList {
                count,
                next: page
                    .next(count)
                    .filter(|_| !cams.is_empty())
                    .map(|off| link(off, last)),
                previous: page.previous().map(|off| link(off, None)),
                results: cams.iter().map(CameraOut::of).collect(),
            };
            serde_json::to_vec(&body).map_err(|_| ApiError::Internal)
        })
        .await?;
    Ok(super::json_bytes(bytes))
}

/// The listing as Angelcam shapes it, serialised straight from the cameras (no JSON tree).
#[derive(serde::Serialize)]
struct CameraList<'a> {
    count: i64,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<CameraOut<'a>>,
}

#[derive(serde::Serialize)]
struct SnapshotOut<'a> {
    url: &'a str,
    created_at: String,
}

/// One camera as [`camera_json`] shapes it.
#[derive(serde::Serialize)]
struct CameraOut<'a> {
    id: i64,
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    status: &'static str,
    snapshot: Option<SnapshotOut<'a>>,
    streams: &'a [camgate_core::model::Stream],
    description: Option<&'a str>,
    tags: &'a [String],
    is_public: bool,
    created_at: String,
    updated_at: String,
    /// A guest's view of a camera shared with them: how, and whose (absent on the owner's).
    #[serde(skip_serializing_if = "Option::is_none")]
    shared: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permission: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_name: Option<&'a str>,
}

impl<'a> CameraOut<'a> {
    fn of(c: &'a Camera) -> Self {
        let f = &c.fields;
        CameraOut {
            id: c.id,
            name: &f.name,
            kind: f.codec.as_str(),
            status: f.status.as_str(),
            snapshot: f.snapshot.as_ref().map(|s| SnapshotOut {
                url: &s.url,
                created_at: iso(s.created_at),
            }),
            streams: &f.streams,
            description: f.description.as_deref(),
            tags: &f.tags,
            is_public: f.is_public,
            created_at: iso(c.created_at),
            updated_at: iso(c.updated_at),
            shared: c.shared.as_ref().map(|_| true),
            permission: c.shared.as_ref().map(|s| s.permission.as_str()),
            owner_name: c.shared.as_ref().map(|s| s.owner_name.as_str()),
        }
    }
}

/// `POST /v1/cameras/` → 201 with the camera.
#[utoipa::path(
    post,
    path = "/v1/cameras/",
    tag = "Angelcam",
    operation_id = "angelcam_create_camera",
    request_body(content = doc::AngelCameraIn, content_type = "application/json"),
    responses(
        (status = 201, description = "The camera, created.", body = doc::AngelCamera),
        (status = 400, description = "Invalid parameters, or a token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks the scope, or is not tied to a user.", body = doc::AngelErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::AngelErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn create_camera(
    State(s): State<AppState>,
    auth: A,
    AngelJson(body): AngelJson<CameraIn>,
) -> Res<Response> {
    auth.require(Need::Write)?;
    let owner = owner(&auth)?;
    let name = body
        .name
        .clone()
        .ok_or_else(|| ApiError::invalid("name", "`name`: this field is required."))?;
    let mut fields = CameraFields::named(name);
    if let Some(c) = &body.codec {
        fields.codec = parse_codec(c)?;
    }
    if let Some(st) = &body.status {
        fields.status = parse_status(st)?;
    }
    body.into_patch(s.core.now()).apply(&mut fields)?;
    let cam = s.core.create_camera(owner, fields).await?;
    Ok((
        StatusCode::CREATED,
        Json(signed_camera_json(&s, &auth, cam).await?),
    )
        .into_response())
}

/// `GET /v1/cameras/{id}/`.
#[utoipa::path(
    get,
    path = "/v1/cameras/{id}/",
    tag = "Angelcam",
    operation_id = "angelcam_get_camera",
    params(("id" = String, Path, description = "Camera id.")),
    responses(
        (status = 200, description = "The camera.", body = doc::AngelCamera),
        (status = 400, description = "Invalid parameters, or a token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks the scope, or is not tied to a user.", body = doc::AngelErrorBody),
        (status = 404, description = "No such camera of the caller's.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn get_camera(
    State(s): State<AppState>,
    auth: A,
    Path(id): Path<String>,
) -> Res<Json<Value>> {
    let id = id.parse::<i64>().map_err(|_| ApiError::NotFound)?;
    let cam = s.core.camera_for(&auth, id).await?;
    Ok(Json(signed_camera_json(&s, &auth, cam).await?))
}

/// The body of a heartbeat: all optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatIn {
    pub status: Option<String>,
}

/// `POST /v1/cameras/{id}/heartbeat/`: a camera reports in (status, default online, and
/// last-seen). The paired device's own token may send it, or the owner with `write`.
#[utoipa::path(
    post,
    path = "/v1/cameras/{id}/heartbeat/",
    tag = "Angelcam",
    operation_id = "angelcam_camera_heartbeat",
    params(("id" = String, Path, description = "Camera id.")),
    request_body(content = Option<doc::HeartbeatIn>, content_type = "application/json",
        description = "Optional: `{\"status\": \"online\"}` (default), `offline` or `unknown`."),
    responses(
        (status = 200, description = "The camera, with its new status.", body = doc::AngelCamera),
        (status = 400, description = "Invalid body, or a token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "A device token of another camera, or a token without `write`.", body = doc::AngelErrorBody),
        (status = 404, description = "No such camera of the caller's.", body = doc::AngelErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn camera_heartbeat(
    State(s): State<AppState>,
    auth: A,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Res<Json<Value>> {
    let id = id.parse::<i64>().map_err(|_| ApiError::NotFound)?;
    let input: HeartbeatIn = if body.iter().all(u8::is_ascii_whitespace) {
        HeartbeatIn::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid("body", format!("Invalid JSON body: {e}")))?
    };
    let status = input
        .status
        .as_deref()
        .map(camgate_core::cameras::parse_status)
        .transpose()?;
    let cam = s.core.camera_heartbeat(&auth, id, status).await?;
    Ok(Json(signed_camera_json(&s, &auth, cam).await?))
}

/// `PUT /v1/cameras/{id}/`: a partial update (only the fields given change).
#[utoipa::path(
    put,
    path = "/v1/cameras/{id}/",
    tag = "Angelcam",
    operation_id = "angelcam_update_camera",
    params(("id" = String, Path, description = "Camera id.")),
    request_body(content = doc::AngelCameraIn, content_type = "application/json"),
    responses(
        (status = 200, description = "The camera, updated.", body = doc::AngelCamera),
        (status = 400, description = "Invalid parameters, or a token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks the scope, or is not tied to a user.", body = doc::AngelErrorBody),
        (status = 404, description = "No such camera of the caller's.", body = doc::AngelErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::AngelErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn update_camera(
    State(s): State<AppState>,
    auth: A,
    Path(id): Path<String>,
    AngelJson(body): AngelJson<CameraIn>,
) -> Res<Json<Value>> {
    let id = id.parse::<i64>().map_err(|_| ApiError::NotFound)?;
    let cam = s
        .core
        .update_camera_as(&auth, id, body.into_patch(s.core.now()))
        .await?;
    Ok(Json(signed_camera_json(&s, &auth, cam).await?))
}

/// `DELETE /v1/cameras/{id}/`.
#[utoipa::path(
    delete,
    path = "/v1/cameras/{id}/",
    tag = "Angelcam",
    operation_id = "angelcam_delete_camera",
    params(("id" = String, Path, description = "Camera id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "Invalid parameters, or a token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks the scope, or is not tied to a user.", body = doc::AngelErrorBody),
        (status = 404, description = "No such camera of the caller's.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn delete_camera(
    State(s): State<AppState>,
    auth: A,
    Path(id): Path<String>,
) -> Res<StatusCode> {
    let id = id.parse::<i64>().map_err(|_| ApiError::NotFound)?;
    s.core.delete_camera_as(&auth, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
