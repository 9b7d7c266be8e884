//! Shares and dealers in the Angelcam dialect: `/v1/cameras/{id}/shares/` (the owner shares a
//! camera with an e-mail address) and `/v1/dealer/customers/` (a dealer's customer accounts).
//! Thin: the rules are in `core::shares` and `core::dealers`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use camgate_core::dealers::CustomerInput;
use camgate_core::error::ApiError;
use camgate_core::model::{DealerLink, Share, User};
use camgate_core::users::UserInput;

use super::angelcam::{AngelJson, Angelcam};
use super::auth::Auth;
use super::error::AngelError;
use super::openapi as doc;
use super::{iso, AppState};

type A = Auth<Angelcam>;
type Res<T> = Result<T, AngelError>;

fn id_of(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>().map_err(|_| ApiError::NotFound)
}

pub fn share_json(s: &Share) -> Value {
    json!({
        "id": s.id,
        "camera_id": s.camera_id,
        "email": s.email,
        "permission": s.permission.as_str(),
        // No account with that address yet: the share applies when one is created.
        "pending": s.user_id.is_none(),
        "created_at": iso(s.created_at),
        "updated_at": iso(s.updated_at),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareIn {
    email: Option<String>,
    permission: Option<String>,
}

fn required(v: Option<String>, field: &str) -> Result<String, ApiError> {
    v.ok_or_else(|| ApiError::invalid(field, format!("`{field}`: this field is required.")))
}

/// `GET /v1/cameras/{id}/shares/`: the camera's shares (its owner, or a `manage` guest).
#[utoipa::path(
    get,
    path = "/v1/cameras/{id}/shares/",
    tag = "Angelcam",
    operation_id = "angelcam_list_shares",
    params(("id" = String, Path, description = "Camera id.")),
    responses(
        (status = 200, description = "The camera's shares, oldest first.", body = Vec<doc::AngelShare>),
        (status = 400, description = "A token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks the scope, or the caller is a guest below `manage`.", body = doc::AngelErrorBody),
        (status = 404, description = "No such camera the caller may see.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn list_shares(
    State(s): State<AppState>,
    auth: A,
    Path(id): Path<String>,
) -> Res<Json<Value>> {
    let shares = s.core.camera_shares(&auth, id_of(&id)?).await?;
    Ok(Json(Value::Array(shares.iter().map(share_json).collect())))
}

/// `POST /v1/cameras/{id}/shares/` `{email, permission}` → 201: the owner shares the camera.
#[utoipa::path(
    post,
    path = "/v1/cameras/{id}/shares/",
    tag = "Angelcam",
    operation_id = "angelcam_create_share",
    params(("id" = String, Path, description = "Camera id.")),
    request_body(content = doc::AngelShareIn, content_type = "application/json"),
    responses(
        (status = 201, description = "The share; `pending` until an account has that address.", body = doc::AngelShare),
        (status = 400, description = "Invalid address or permission, the owner's own address, or a second share to one address.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks `write`, or the caller is a guest (only the owner shares).", body = doc::AngelErrorBody),
        (status = 404, description = "No such camera the caller may see.", body = doc::AngelErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::AngelErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn create_share(
    State(s): State<AppState>,
    auth: A,
    Path(id): Path<String>,
    AngelJson(body): AngelJson<ShareIn>,
) -> Res<Response> {
    let camera = id_of(&id)?;
    let email = required(body.email, "email")?;
    let permission = required(body.permission, "permission")?;
    let share = s
        .core
        .create_share(&auth, camera, &email, &permission)
        .await?;
    Ok((StatusCode::CREATED, Json(share_json(&share))).into_response())
}

async fn one_share(s: &AppState, auth: &A, camera: i64, share: i64) -> Result<Share, ApiError> {
    s.core
        .camera_shares(auth, camera)
        .await?
        .into_iter()
        .find(|x| x.id == share)
        .ok_or(ApiError::NotFound)
}

/// `GET /v1/cameras/{id}/shares/{share_id}/`.
#[utoipa::path(
    get,
    path = "/v1/cameras/{id}/shares/{share_id}/",
    tag = "Angelcam",
    operation_id = "angelcam_get_share",
    params(("id" = String, Path, description = "Camera id."), ("share_id" = String, Path, description = "Share id.")),
    responses(
        (status = 200, description = "The share.", body = doc::AngelShare),
        (status = 400, description = "A token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks the scope, or the caller is a guest below `manage`.", body = doc::AngelErrorBody),
        (status = 404, description = "No such camera or share.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn get_share(
    State(s): State<AppState>,
    auth: A,
    Path((id, share)): Path<(String, String)>,
) -> Res<Json<Value>> {
    let share = one_share(&s, &auth, id_of(&id)?, id_of(&share)?).await?;
    Ok(Json(share_json(&share)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharePermissionIn {
    permission: Option<String>,
}

/// `PUT /v1/cameras/{id}/shares/{share_id}/` `{permission}`: the owner changes a share.
#[utoipa::path(
    put,
    path = "/v1/cameras/{id}/shares/{share_id}/",
    tag = "Angelcam",
    operation_id = "angelcam_update_share",
    params(("id" = String, Path, description = "Camera id."), ("share_id" = String, Path, description = "Share id.")),
    request_body(content = doc::AngelSharePermissionIn, content_type = "application/json"),
    responses(
        (status = 200, description = "The share, changed.", body = doc::AngelShare),
        (status = 400, description = "Invalid permission.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks `write`, or the caller is a guest.", body = doc::AngelErrorBody),
        (status = 404, description = "No such camera or share.", body = doc::AngelErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::AngelErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn update_share(
    State(s): State<AppState>,
    auth: A,
    Path((id, share)): Path<(String, String)>,
    AngelJson(body): AngelJson<SharePermissionIn>,
) -> Res<Json<Value>> {
    let permission = required(body.permission, "permission")?;
    let share = s
        .core
        .update_share(&auth, id_of(&id)?, id_of(&share)?, &permission)
        .await?;
    Ok(Json(share_json(&share)))
}

/// `DELETE /v1/cameras/{id}/shares/{share_id}/` → 204: the owner ends a share (at once).
#[utoipa::path(
    delete,
    path = "/v1/cameras/{id}/shares/{share_id}/",
    tag = "Angelcam",
    operation_id = "angelcam_delete_share",
    params(("id" = String, Path, description = "Camera id."), ("share_id" = String, Path, description = "Share id.")),
    responses(
        (status = 204, description = "Ended."),
        (status = 400, description = "A token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The token lacks `write`, or the caller is a guest.", body = doc::AngelErrorBody),
        (status = 404, description = "No such camera or share.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn delete_share(
    State(s): State<AppState>,
    auth: A,
    Path((id, share)): Path<(String, String)>,
) -> Res<StatusCode> {
    s.core
        .delete_share(&auth, id_of(&id)?, id_of(&share)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn customer_json(u: &User, l: &DealerLink) -> Value {
    json!({
        "id": u.id,
        "email": u.email,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "level": l.level.as_str(),
        // `full`, `limited` or `revoked` (the customer ended the dealer's access).
        "status": l.status(),
        "disabled": u.disabled,
        "created_at": iso(l.created_at),
        "updated_at": iso(l.updated_at),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerIn {
    email: Option<String>,
    password: Option<String>,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    phone: String,
    level: Option<String>,
}

/// `GET /v1/dealer/customers/`: the calling dealer's customers.
#[utoipa::path(
    get,
    path = "/v1/dealer/customers/",
    tag = "Angelcam",
    operation_id = "angelcam_list_customers",
    responses(
        (status = 200, description = "The dealer's customers, oldest first.", body = Vec<doc::AngelCustomer>),
        (status = 400, description = "A token in the query string.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The caller is not a dealer, or the token lacks the scope.", body = doc::AngelErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn list_customers(State(s): State<AppState>, auth: A) -> Res<Json<Value>> {
    let list = s.core.dealer_customers(&auth).await?;
    Ok(Json(Value::Array(
        list.iter().map(|(u, l)| customer_json(u, l)).collect(),
    )))
}

/// `POST /v1/dealer/customers/` → 201: a dealer creates a customer account linked to it.
#[utoipa::path(
    post,
    path = "/v1/dealer/customers/",
    tag = "Angelcam",
    operation_id = "angelcam_create_customer",
    request_body(content = doc::AngelCustomerIn, content_type = "application/json"),
    responses(
        (status = 201, description = "The customer account and its link.", body = doc::AngelCustomer),
        (status = 400, description = "Invalid fields, or the address is taken.", body = doc::AngelErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::AngelErrorBody),
        (status = 403, description = "The caller is not a dealer, or the token lacks `write`.", body = doc::AngelErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::AngelErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = doc::AngelErrorBody),
        (status = 503, description = "The database or the password hasher is busy (with `Retry-After`).", body = doc::AngelErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn create_customer(
    State(s): State<AppState>,
    auth: A,
    AngelJson(body): AngelJson<CustomerIn>,
) -> Res<Response> {
    let input = CustomerInput {
        user: UserInput {
            email: required(body.email, "email")?,
            password: required(body.password, "password")?,
            first_name: body.first_name,
            last_name: body.last_name,
            phone: body.phone,
            ..Default::default()
        },
        level: body.level,
    };
    let (u, l) = s.core.create_customer(&auth, input).await?;
    Ok((StatusCode::CREATED, Json(customer_json(&u, &l))).into_response())
}
