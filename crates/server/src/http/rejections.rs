//! Framework rejections in the surface's shape. axum answers a malformed path, query string or
//! JSON body with a `text/plain` error of its own (e.g. `Invalid URL: Invalid UTF-8 in 'id'`);
//! clients of every dialect expect JSON in their dialect's error shape. This layer rewrites any
//! plain-text error answer into `Surface::for_path(..).error(..)`, keeping its status and
//! headers, so hostile input can never surface an unshaped answer. Called by the
//! edge (edge.rs) on every answer.

use axum::http::{header, StatusCode};
use axum::response::Response;

use super::error::Surface;

/// Longest framework message shown (it may quote a little of the request).
const MAX_DETAIL: usize = 200;

pub async fn reshape(path: &str, resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    if !plain {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let detail = if status.is_server_error() {
        "Internal server error.".to_string()
    } else {
        match axum::body::to_bytes(body, 16 * 1024).await {
            Ok(b) => String::from_utf8_lossy(&b)
                .chars()
                .take(MAX_DETAIL)
                .collect(),
            Err(_) => String::new(),
        }
    };
    let title = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "request_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "server_error",
        _ => "invalid",
    };
    let detail = if detail.trim().is_empty() {
        status.canonical_reason().unwrap_or("Error").to_string()
    } else {
        detail
    };
    let mut shaped = Surface::for_path(path).error(status, title, &detail);
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            shaped
                .headers_mut()
                .entry(name)
                .or_insert_with(|| value.clone());
        }
    }
    shaped
}

/// True when reading a body failed because it exceeded the limit (as opposed to a malformed
/// chunked encoding or a dropped connection, which are the client's 400).
pub fn is_too_large(e: &axum::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = err.source();
    }
    false
}
