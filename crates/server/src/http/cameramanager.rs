//! The Eagle Eye CameraManager dialect (specs 003 and 004): `/rest/v2.0/…`, errors as
//! `{code, title, detail}` (RFC 7807 style).

use axum::extract::{Query, State};
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;

use camgate_core::cameras::Page;
use camgate_core::error::ApiError;
use camgate_core::listings::Listed;
use camgate_core::model::Camera;
use camgate_core::scope::Need;

use super::auth::{Auth, ClientIp, Dialect};
use super::error::CmError;
use super::openapi as doc;
use super::{iso, AppState};

pub struct CameraManager;
impl Dialect for CameraManager {
    type Error = CmError;
}

type A = Auth<CameraManager>;

/// `GET /rest/v2.0/users/self`.
#[utoipa::path(
    get,
    path = "/rest/v2.0/users/self",
    tag = "CameraManager",
    operation_id = "cm_user_self",
    responses(
        (status = 200, description = "The caller's account.", body = doc::CmUser),
        (status = 400, description = "Invalid parameters, or a token in the query string.", body = doc::CmErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::CmErrorBody),
        (status = 403, description = "The token lacks the scope, or is not tied to a user.", body = doc::CmErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::CmErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn user_self(auth: A) -> Result<Json<Value>, CmError> {
    auth.require(Need::Read)?;
    let u = auth.user()?;
    Ok(Json(json!({
        "userId": u.id,
        "email": u.email,
        "firstName": u.first_name,
        "lastName": u.last_name,
        "phone": u.phone,
    })))
}

/// `DELETE /rest/v2.0/users/self/tokens/current` (spec 003 §4): deletes the presented access
/// token and its refresh token. 200.
#[utoipa::path(
    delete,
    path = "/rest/v2.0/users/self/tokens/current",
    tag = "CameraManager",
    operation_id = "cm_logout",
    responses(
        (status = 200, description = "The presented token and its refresh token are deleted.", body = doc::Empty),
        (status = 400, description = "Invalid parameters, or a token in the query string.", body = doc::CmErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::CmErrorBody),
        (status = 403, description = "The token lacks the scope, or is not tied to a user.", body = doc::CmErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::CmErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn logout(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    auth: A,
) -> Result<Json<Value>, CmError> {
    s.core.logout(&auth, ip.as_deref()).await?;
    Ok(Json(json!({})))
}

/// `GET /rest/v2.0/cameras`: a plain array; `limit`/`offset` optional (max 1000).
#[utoipa::path(
    get,
    path = "/rest/v2.0/cameras",
    tag = "CameraManager",
    operation_id = "cm_cameras",
    params(doc::CmPageQuery),
    responses(
        (status = 200, description = "The caller's cameras.", body = Vec<doc::CmCamera>),
        (status = 400, description = "Invalid parameters, or a token in the query string.", body = doc::CmErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::CmErrorBody),
        (status = 403, description = "The token lacks the scope, or is not tied to a user.", body = doc::CmErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::CmErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn cameras(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    auth: A,
) -> Result<Response, CmError> {
    auth.require(Need::Read)?;
    let owner = auth
        .owner_id()
        .ok_or_else(|| ApiError::Forbidden("This token is not tied to a user.".into()))?;
    let page = Page::parse(
        q.get("limit").map(String::as_str),
        q.get("offset").map(String::as_str),
        1000,
    )?;
    let request = format!("cameramanager|{}|{}", page.limit, page.offset);
    let core = &s.core;
    let bytes = core
        .camera_listing(&auth, Listed::Cameras(owner), &request, || async {
            let (_, mut cams) = core.list_cameras(owner, page).await?;
            for c in cams.iter_mut() {
                core.sign_camera(&auth, c).await?;
            }
            let out: Vec<CmCamera> = cams.iter().map(CmCamera::of).collect();
            serde_json::to_vec(&out).map_err(|_| ApiError::Internal)
        })
        .await?;
    Ok(super::json_bytes(bytes))
}

/// One camera as CameraManager shapes it, serialised straight from the camera (no JSON tree).
/// Fields in the order the answer always had (alphabetical).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct CmCamera<'a> {
    camera_id: i64,
    codec: &'static str,
    created_at: String,
    name: &'a str,
    /// A guest's view of a camera shared with them: whose, how (absent on the owner's).
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permission: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shared: Option<bool>,
    snapshot_url: Option<&'a str>,
    status: &'static str,
    streams: &'a [camgate_core::model::Stream],
}

impl<'a> CmCamera<'a> {
    fn of(c: &'a Camera) -> Self {
        let f = &c.fields;
        CmCamera {
            camera_id: c.id,
            codec: f.codec.as_str(),
            created_at: iso(c.created_at),
            name: &f.name,
            owner_name: c.shared.as_ref().map(|s| s.owner_name.as_str()),
            permission: c.shared.as_ref().map(|s| s.permission.as_str()),
            shared: c.shared.as_ref().map(|_| true),
            snapshot_url: f.snapshot.as_ref().map(|s| s.url.as_str()),
            status: f.status.as_str(),
            streams: &f.streams,
        }
    }
}
