//! Pieces of the edge (edge.rs): security headers on every answer and the body-size guard.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::response::Response;

/// Headers every answer carries unless a handler set its own.
pub fn add_security_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// True when the request declares a body larger than the limit: it is refused before any
/// handler runs, in the error shape of the path's surface. Undeclared (chunked) bodies are
/// bounded where they are read.
pub fn declared_too_large(req: &Request, limit: usize) -> bool {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    matches!(declared, Some(n) if n > limit as u64)
}
