//! The CAM2API dialect (spec 002), each path also with a `.json` suffix:
//! - `POST /token/`: client credentials (RFC 6749 §4.4) from a form or JSON body → a JWT,
//!   answered `{"token", "expires in", "token_type": "JWT"}` as the spec shows, plus the
//!   RFC 6749 §5.1 names (`access_token`, `expires_in`) so standard OAuth clients work too.
//! - `POST /refresh_token/` with `{token}` → `{"token": …}` (re-signed, same original issue
//!   time; see `camgate_core::jwt`).
//! - `GET /cameras/`: a plain JSON array in CAM2 field names, filtered (`camgate_core::cam2`).
//! - `GET /.well-known/jwks.json`: the public signing keys (RFC 7517 §5).
//!
//! Token-route errors carry the RFC 6749 §5.2 members and CAM2's `detail`; camera-route errors
//! are `{detail}`.

use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use camgate_core::cam2::Cam2Search;
use camgate_core::error::{ApiError, OAuthError, OAuthErrorCode};
use camgate_core::listings::Listed;
use camgate_core::model::Camera;
use camgate_core::oauth::{Caller, TokenResponse};
use camgate_core::scope::Need;

use super::auth::{Auth, ClientIp, Dialect};
use super::error::{api_error_response, OAuthHttpError, Surface};
use super::oauth::{no_store, read_body, read_params, split_client};
use super::openapi as doc;
use super::{iso, with_405, AppState};

pub struct Cam2;
impl Dialect for Cam2 {
    type Error = Cam2Error;
}

/// A CAM2-shaped resource error: `{detail}`.
#[derive(Debug)]
pub struct Cam2Error(pub ApiError);

impl From<ApiError> for Cam2Error {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for Cam2Error {
    fn into_response(self) -> Response {
        api_error_response(Surface::Cam2, self.0)
    }
}

/// A token-route error: RFC 6749 §5.2 `{error, error_description}` plus CAM2's `detail`.
pub struct Cam2TokenError(OAuthHttpError);

impl From<OAuthError> for Cam2TokenError {
    fn from(e: OAuthError) -> Self {
        Self(e.into())
    }
}

impl From<OAuthHttpError> for Cam2TokenError {
    fn from(e: OAuthHttpError) -> Self {
        Self(e)
    }
}

impl IntoResponse for Cam2TokenError {
    fn into_response(self) -> Response {
        let OAuthHttpError { error: e, status } = self.0;
        let status = status.unwrap_or(match e.code {
            OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            OAuthErrorCode::SlowDown => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        });
        let mut r = (
            status,
            Json(json!({
                "detail": e.description,
                "error": e.code.as_str(),
                "error_description": e.description,
            })),
        )
            .into_response();
        let h = r.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if e.code == OAuthErrorCode::InvalidClient {
            // RFC 6749 §5.2: 401 with a WWW-Authenticate challenge.
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="camgate""#),
            );
        }
        if let Some(s) = e.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

/// The CAM2 routes (mounted by `http::router`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/token/", with_405(post(token)))
        .route("/token.json", with_405(post(token)))
        .route("/refresh_token/", with_405(post(refresh)))
        .route("/refresh_token.json", with_405(post(refresh)))
        .route("/cameras/", with_405(get(cameras)))
        .route("/cameras.json", with_405(get(cameras)))
        .route("/.well-known/jwks.json", get(jwks))
}

const MAX_JSON_PARAMS: usize = 64;

/// CAM2 bodies are JSON objects or forms. A JSON body's members become
/// parameters: strings as they are, numbers and booleans as text; nested values are refused.
fn json_pairs(body: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|_| OAuthError::invalid_request("The body is not valid JSON."))?;
    let Value::Object(m) = v else {
        return Err(OAuthError::invalid_request(
            "The JSON body must be an object.",
        ));
    };
    if m.len() > MAX_JSON_PARAMS {
        return Err(OAuthError::invalid_request("Too many parameters."));
    }
    m.into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            _ => Err(OAuthError::invalid_request(format!(
                "`{}` must be a string.",
                k.chars().take(40).collect::<String>()
            ))),
        })
        .collect()
}

/// Parameters of a CAM2 POST: a JSON body, or what the token endpoint accepts (query string,
/// urlencoded or multipart body).
async fn cam2_params(
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
) -> Result<Vec<(String, String)>, OAuthError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence == "application/json" || essence.ends_with("+json") {
        let mut pairs = read_params(headers, query, Bytes::new()).await?;
        pairs.extend(json_pairs(&body)?);
        Ok(pairs)
    } else {
        read_params(headers, query, body).await
    }
}

fn cam2_token_json(t: TokenResponse) -> Response {
    // Spec 002 spells the lifetime "expires in" (with a space); RFC 6749 §5.1 names follow.
    no_store(
        Json(json!({
            "token": t.access_token,
            "expires in": t.expires_in,
            "token_type": t.token_type,
            "access_token": t.access_token,
            "expires_in": t.expires_in,
            "scope": t.scope,
        }))
        .into_response(),
    )
}

/// `POST /token/` (spec 002 §1): client credentials in the body (or HTTP Basic).
#[utoipa::path(
    post,
    path = "/token/",
    tag = "CAM2API",
    operation_id = "cam2_token",
    request_body(content(
        (doc::Cam2TokenRequest = "application/x-www-form-urlencoded"),
        (doc::Cam2TokenRequest = "application/json"),
        (doc::Cam2TokenRequest = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "A JWT access token (`Cache-Control: no-store`).", body = doc::Cam2TokenResponse),
        (status = 400, description = "Invalid request, grant or scope.", body = doc::Cam2TokenErrorBody),
        (status = 401, description = "Client authentication failed (with `WWW-Authenticate: Basic`).", body = doc::Cam2TokenErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::Cam2TokenErrorBody),
        (status = 429, description = "Too many requests from this address (with `Retry-After`).", body = doc::Cam2TokenErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::Cam2TokenErrorBody),
    ),
    security((), ("ClientBasic" = [])),
)]
pub async fn token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    req: Request,
) -> Result<Response, Cam2TokenError> {
    let (parts, body) = read_body(req, state.body_limit).await?;
    let pairs = cam2_params(&parts.headers, parts.uri.query(), body).await?;
    let (params, creds) = split_client(&parts.headers, pairs)?;
    if let Some(g) = params.get("grant_type") {
        if g != "client_credentials" {
            return Err(OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                "This endpoint issues tokens by client credentials only.",
            )
            .into());
        }
    }
    let creds = creds
        .ok_or_else(|| OAuthError::invalid_client("client_id and client_secret are required."))?;
    let client = state.core.authenticate_client(&creds).await?;
    let t = state
        .core
        .client_credentials(&client, params.get("scope"), &Caller { ip })
        .await?;
    Ok(cam2_token_json(t))
}

/// `POST /refresh_token/` (spec 002 §3): `{token}` → `{"token": …}`.
#[utoipa::path(
    post,
    path = "/refresh_token/",
    tag = "CAM2API",
    operation_id = "cam2_refresh_token",
    request_body(content(
        (doc::Cam2RefreshRequest = "application/x-www-form-urlencoded"),
        (doc::Cam2RefreshRequest = "application/json"),
        (doc::Cam2RefreshRequest = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "The JWT re-signed with a new expiry.", body = doc::Cam2TokenResponse),
        (status = 400, description = "Invalid request, grant or scope.", body = doc::Cam2TokenErrorBody),
        (status = 401, description = "Client authentication failed (with `WWW-Authenticate: Basic`).", body = doc::Cam2TokenErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::Cam2TokenErrorBody),
        (status = 429, description = "Too many requests from this address (with `Retry-After`).", body = doc::Cam2TokenErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::Cam2TokenErrorBody),
    ),
    security(()),
)]
pub async fn refresh(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    req: Request,
) -> Result<Response, Cam2TokenError> {
    let (parts, body) = read_body(req, state.body_limit).await?;
    let pairs = cam2_params(&parts.headers, parts.uri.query(), body).await?;
    let params = camgate_core::oauth::Params::from_pairs(pairs)?;
    let token = params.require("token")?;
    let t = state.core.cam2_refresh(token, &Caller { ip }).await?;
    Ok(cam2_token_json(t))
}

/// A camera in CAM2 field names, serialised straight from the camera (no JSON tree). Fields
/// in the order the answer always had (alphabetical).
#[derive(serde::Serialize)]
pub struct Cam2Camera<'a> {
    camera_id: i64,
    camera_type: &'a Option<String>,
    city: &'a Option<String>,
    country: &'a Option<String>,
    date_added: String,
    description: &'a Option<String>,
    framerate: Option<f64>,
    inactive: Option<bool>,
    is_video: Option<bool>,
    last_updated: String,
    lat: Option<f64>,
    lng: Option<f64>,
    outdoors: Option<bool>,
    /// Only a camera shared with the caller is marked (the spec's shape stays as it is).
    #[serde(skip_serializing_if = "Option::is_none")]
    owner_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permission: Option<&'static str>,
    resolution_h: Option<i64>,
    resolution_w: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shared: Option<bool>,
    source: &'a Option<String>,
    source_url: &'a Option<String>,
    state: &'a Option<String>,
    traffic: Option<bool>,
}

impl<'a> Cam2Camera<'a> {
    pub fn of(c: &'a Camera) -> Self {
        let f = &c.fields;
        Cam2Camera {
            camera_id: c.id,
            camera_type: &f.camera_type,
            city: &f.city,
            country: &f.country,
            date_added: iso(c.created_at),
            description: &f.description,
            framerate: f.framerate,
            inactive: f.inactive,
            is_video: f.is_video,
            last_updated: iso(c.updated_at),
            lat: f.lat,
            lng: f.lng,
            outdoors: f.outdoors,
            owner_name: c.shared.as_ref().map(|s| s.owner_name.as_str()),
            permission: c.shared.as_ref().map(|s| s.permission.as_str()),
            resolution_h: f.resolution_h,
            resolution_w: f.resolution_w,
            shared: c.shared.as_ref().map(|_| true),
            source: &f.source,
            source_url: &f.source_url,
            state: &f.state,
            traffic: f.traffic,
        }
    }
}

/// `GET /cameras/`: the caller's and the public cameras, filtered, as a plain array.
#[utoipa::path(
    get,
    path = "/cameras/",
    tag = "CAM2API",
    operation_id = "cam2_cameras",
    params(doc::Cam2Query),
    responses(
        (status = 200, description = "The matching cameras.", body = Vec<doc::Cam2Camera>),
        (status = 400, description = "A filter does not parse, is given twice, or a token is in the query string.", body = doc::Cam2ErrorBody),
        (status = 401, description = "No, unknown, expired or revoked credentials (with `WWW-Authenticate: Bearer`).", body = doc::Cam2ErrorBody),
        (status = 403, description = "The token lacks the scope.", body = doc::Cam2ErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::Cam2ErrorBody),
    ),
    security(("Bearer" = []), ("PersonalAccessToken" = []), ("JWT" = [])),
)]
pub async fn cameras(
    State(s): State<AppState>,
    RawQuery(query): RawQuery,
    auth: Auth<Cam2>,
) -> Result<Response, Cam2Error> {
    auth.require(Need::Read)?;
    let pairs: Vec<(String, String)> = query
        .as_deref()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    if pairs.len() > 64 {
        return Err(ApiError::invalid("query", "Too many query parameters.").into());
    }
    let search = Cam2Search::parse(&pairs)?;
    // Answered from memory while no camera, share or owner name changed anywhere (see
    // camgate_core::listings); the key is the query as sent.
    let request = format!("cam2|{}", query.as_deref().unwrap_or(""));
    let core = &s.core;
    let body = core
        .camera_listing(&auth, Listed::Search, &request, || async {
            let cams = core.cam2_cameras(&auth, search).await?;
            let list: Vec<Cam2Camera> = cams.iter().map(Cam2Camera::of).collect();
            serde_json::to_vec(&list).map_err(|_| ApiError::Internal)
        })
        .await?;
    Ok(super::json_bytes(body))
}

/// `GET /.well-known/jwks.json` (RFC 7517 §5): public keys that still verify tokens.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "CAM2API",
    operation_id = "jwks",
    responses(
        (status = 200, description = "The public signing keys (`Cache-Control: public, max-age=300`).", body = doc::JwkSet),
        (status = 503, description = "The database is unavailable.", body = doc::AngelErrorBody),
    ),
)]
pub async fn jwks(State(s): State<AppState>) -> Response {
    match s.core.jwks().await {
        Ok(v) => {
            let mut r = Json(v).into_response();
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            r
        }
        Err(e) => api_error_response(Surface::Angelcam, e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camgate_core::model::{CameraFields, SharePermission, SharedAs};

    /// The struct answers exactly what the JSON tree it replaced answered: every CAM2 field,
    /// `null` where unset, the share marks only on a shared camera, keys in the same order.
    #[test]
    fn a_camera_serialises_as_the_tree_did() {
        let mut f = CameraFields::named("porch");
        f.city = Some("Lafayette".into());
        f.lat = Some(40.42);
        f.lng = Some(-86.91);
        f.framerate = Some(25.0);
        f.is_video = Some(true);
        f.resolution_w = Some(1920);
        let mut c = Camera {
            id: 7,
            owner_id: 1,
            fields: f,
            created_at: 1_700_000_000,
            updated_at: 1_700_000_060,
            version: 1,
            shared: None,
        };
        let tree = |c: &Camera| {
            let f = &c.fields;
            let mut v = json!({
                "camera_id": c.id, "city": f.city, "state": f.state, "country": f.country,
                "lat": f.lat, "lng": f.lng, "source": f.source, "source_url": f.source_url,
                "camera_type": f.camera_type, "description": f.description,
                "is_video": f.is_video, "framerate": f.framerate, "outdoors": f.outdoors,
                "traffic": f.traffic, "inactive": f.inactive, "resolution_w": f.resolution_w,
                "resolution_h": f.resolution_h, "date_added": iso(c.created_at),
                "last_updated": iso(c.updated_at),
            });
            if let Some(s) = &c.shared {
                v["shared"] = json!(true);
                v["permission"] = json!(s.permission.as_str());
                v["owner_name"] = json!(s.owner_name);
            }
            serde_json::to_string(&v).unwrap()
        };
        let direct = |c: &Camera| serde_json::to_string(&Cam2Camera::of(c)).unwrap();
        assert_eq!(direct(&c), tree(&c));
        assert!(!direct(&c).contains("owner_name"));
        c.shared = Some(SharedAs {
            permission: SharePermission::View,
            owner_name: "Olga Owner".into(),
        });
        assert_eq!(direct(&c), tree(&c));
        assert!(direct(&c).contains(r#""owner_name":"Olga Owner""#));
    }
}
