//! Errors to responses, one type per surface:
//! - [`OAuthHttpError`]: token, revoke and introspect endpoints — RFC 6749 §5.2 JSON
//!   `{error, error_description}`, 400 (401 + `WWW-Authenticate` for `invalid_client`),
//!   `Cache-Control: no-store`.
//! - [`AngelError`]: Angelcam routes — `{status, title, detail}`.
//!
//! Internal details are logged and never shown.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use camgate_core::error::{ApiError, OAuthError, OAuthErrorCode};

/// The `WWW-Authenticate` value of a resource-route 401 (RFC 6750 §3).
pub const BEARER_INVALID_TOKEN: &str = r#"Bearer realm="api", error="invalid_token""#;

pub struct OAuthHttpError {
    pub error: OAuthError,
    /// Status override (413 for an oversized body).
    pub status: Option<StatusCode>,
}

impl From<OAuthError> for OAuthHttpError {
    fn from(error: OAuthError) -> Self {
        Self {
            error,
            status: None,
        }
    }
}

impl IntoResponse for OAuthHttpError {
    fn into_response(self) -> Response {
        let e = self.error;
        let status = self.status.unwrap_or(match e.code {
            OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            OAuthErrorCode::SlowDown => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        });
        let mut resp = (
            status,
            Json(json!({"error": e.code.as_str(), "error_description": e.description})),
        )
            .into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if e.code == OAuthErrorCode::InvalidClient {
            // RFC 6749 §5.2: 401 with a WWW-Authenticate matching the scheme used.
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="camgate""#),
            );
        }
        if let Some(s) = e.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// An Angelcam-shaped error.
#[derive(Debug)]
pub struct AngelError(pub ApiError);

impl From<ApiError> for AngelError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

pub fn angel_body(status: StatusCode, title: &str, detail: &str) -> Response {
    (
        status,
        Json(json!({"status": status.as_u16(), "title": title, "detail": detail})),
    )
        .into_response()
}

impl IntoResponse for AngelError {
    fn into_response(self) -> Response {
        api_error_response(Surface::Angelcam, self.0)
    }
}

/// A CameraManager-shaped error (`{code, title, detail}`).
#[derive(Debug)]
pub struct CmError(pub ApiError);

impl From<ApiError> for CmError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for CmError {
    fn into_response(self) -> Response {
        api_error_response(Surface::CameraManager, self.0)
    }
}

/// Renders a resource-API error in a surface's shape, with the RFC 6750 §3 headers.
pub fn api_error_response(surface: Surface, e: ApiError) -> Response {
    let detail = e.to_string();
    match e {
        ApiError::Unauthenticated(_) => {
            let mut r = surface.error(StatusCode::UNAUTHORIZED, "not_authenticated", &detail);
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(BEARER_INVALID_TOKEN),
            );
            r
        }
        ApiError::InsufficientScope(scope) => {
            let mut r = surface.error(StatusCode::FORBIDDEN, "permission_denied", &detail);
            if let Ok(v) = HeaderValue::from_str(&format!(
                r#"Bearer realm="api", error="insufficient_scope", scope="{scope}""#
            )) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            r
        }
        ApiError::Forbidden(_) => {
            surface.error(StatusCode::FORBIDDEN, "permission_denied", &detail)
        }
        ApiError::NotFound => surface.error(StatusCode::NOT_FOUND, "not_found", "Not found."),
        ApiError::Invalid { .. } => surface.error(StatusCode::BAD_REQUEST, "invalid", &detail),
        ApiError::Conflict(_) => surface.error(StatusCode::CONFLICT, "conflict", &detail),
        ApiError::Unavailable { retry_after } => {
            let mut r = surface.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                &detail,
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            r
        }
        ApiError::TooManyRequests { retry_after } => {
            let mut r = surface.error(StatusCode::TOO_MANY_REQUESTS, "throttled", &detail);
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            r
        }
        ApiError::Internal => surface.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Internal server error.",
        ),
    }
}

/// Which error shape a path belongs to, for answers produced before any handler runs
/// (404 fallback, 413 from the size guard, 405).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    OAuth,
    Angelcam,
    CameraManager,
    Cam2,
}

impl Surface {
    pub fn for_path(path: &str) -> Self {
        if path.starts_with("/oauth/")
            || path.starts_with("/token")
            || path.starts_with("/refresh_token")
        {
            Surface::OAuth
        } else if path.starts_with("/rest/") {
            Surface::CameraManager
        } else if path.starts_with("/cameras") {
            Surface::Cam2
        } else {
            Surface::Angelcam
        }
    }

    /// A plain error in this surface's shape.
    pub fn error(self, status: StatusCode, title: &str, detail: &str) -> Response {
        match self {
            Surface::OAuth => {
                let code = match status {
                    StatusCode::TOO_MANY_REQUESTS => OAuthErrorCode::SlowDown,
                    StatusCode::SERVICE_UNAVAILABLE => OAuthErrorCode::TemporarilyUnavailable,
                    _ => OAuthErrorCode::InvalidRequest,
                };
                OAuthHttpError {
                    error: OAuthError::new(code, detail),
                    status: Some(status),
                }
                .into_response()
            }
            Surface::Angelcam => angel_body(status, title, detail),
            Surface::CameraManager => (
                status,
                Json(json!({"code": status.as_u16(), "title": title, "detail": detail})),
            )
                .into_response(),
            Surface::Cam2 => (status, Json(json!({"detail": detail}))).into_response(),
        }
    }
}

pub fn too_large(path: &str, limit: usize) -> Response {
    Surface::for_path(path).error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        &format!("The request body exceeds the limit of {limit} bytes."),
    )
}
