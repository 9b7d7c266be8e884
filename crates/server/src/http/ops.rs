//! Operations (issue 10): the request id carried on every log line and response, the
//! per-route request metrics, and `GET /metrics` in the Prometheus text format.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use camgate_core::metrics;

use super::AppState;

pub const REQUEST_ID: &str = "x-request-id";

/// The request's id, in the request extensions for handlers that want it.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// An incoming id is kept if it is 1..=128 characters of `[A-Za-z0-9._:@/+=-]` (a proxy's or
/// a client's correlation id); anything else is replaced, so a log line never carries
/// attacker-chosen control characters.
pub fn sane_request_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:@/+=-".contains(&b))
}

fn new_request_id() -> String {
    hex::encode(&camgate_core::secret::random_key()[..16])
}

/// Outermost layer: takes `X-Request-Id` (if sane) or makes one, runs the request inside a
/// `request{request_id=…}` span — so the access-log line and every line logged while handling
/// carry it — and echoes it on the response.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(new_request_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id);
    let mut resp = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// The matched route template, handed from the inner route layer to the outer metrics layer.
#[derive(Clone)]
struct Route(MatchedPath);

/// Route layer (runs after routing): remembers which route template served the request.
pub async fn mark_route(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut resp = next.run(req).await;
    if let Some(m) = matched {
        resp.extensions_mut().insert(Route(m));
    }
    resp
}

/// Counts requests by route template, method and status and observes their latency. Unmatched
/// paths are labelled `unmatched`: raw paths never become labels (unbounded cardinality).
pub async fn record(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_string();
    let resp = next.run(req).await;
    let route = resp
        .extensions()
        .get::<Route>()
        .map(|r| r.0.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let status = resp.status().as_u16().to_string();
    metrics::counter_add(
        "camgate_http_requests_total",
        "HTTP requests by route template, method and status.",
        &[("route", &route), ("method", &method), ("status", &status)],
        1,
    );
    metrics::observe(
        "camgate_http_request_duration_seconds",
        "HTTP request latency by route template and method.",
        &[("route", &route), ("method", &method)],
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// `GET /metrics`: the process registry plus this server's gauges.
pub async fn metrics_endpoint(State(s): State<AppState>) -> Response {
    use std::fmt::Write as _;
    let mut out = metrics::render();
    let _ = writeln!(
        out,
        "# HELP camgate_password_hash_queue_depth Password hashes running or waiting.\n\
         # TYPE camgate_password_hash_queue_depth gauge\n\
         camgate_password_hash_queue_depth {}",
        s.core.hasher.depth()
    );
    let pools = s.core.store.pool_stats();
    if !pools.is_empty() {
        out.push_str(
            "# HELP camgate_db_pool_connections Database pool connections by state.\n\
             # TYPE camgate_db_pool_connections gauge\n",
        );
        for p in &pools {
            let in_use = p.size.saturating_sub(p.idle);
            for (state, v) in [("in_use", in_use), ("idle", p.idle), ("max", p.max)] {
                let _ = writeln!(
                    out,
                    "camgate_db_pool_connections{{pool=\"{}\",state=\"{state}\"}} {v}",
                    p.name
                );
            }
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_sanity() {
        assert!(sane_request_id("abc-123_x.y:z"));
        assert!(!sane_request_id(""));
        assert!(!sane_request_id("a b"));
        assert!(!sane_request_id("a\nb"));
        assert!(!sane_request_id(&"a".repeat(129)));
        assert_eq!(new_request_id().len(), 32);
    }
}
