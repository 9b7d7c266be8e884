//! Operations: the request id carried on every log line and response, the
//! per-route request metrics, and `GET /metrics` in the Prometheus text format.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use camgate_core::metrics;

use super::edge::Route;
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
    // Unique, not secret: the thread's CSPRNG, no system call per request.
    format!("{:032x}", rand::random::<u128>())
}

/// The request's id: its `X-Request-Id` if sane (a proxy's or a client's correlation id),
/// else a new one. The edge runs the request inside a `request{request_id=…}` span — so the
/// access-log line and every line logged while handling carry it — and echoes it on the
/// response.
pub fn request_id_of(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map(str::to_string)
        .unwrap_or_else(new_request_id)
}

/// Counts the request by route template, method and status and observes its latency.
/// Unmatched paths are labelled `unmatched`: raw paths never become labels (unbounded
/// cardinality).
pub fn record(resp: &Response, method: &Method, status: StatusCode, elapsed: Duration) {
    let route = resp
        .extensions()
        .get::<Route>()
        .map(|r| r.0.as_str())
        .unwrap_or("unmatched");
    let method = method.as_str();
    metrics::counter_add(
        "camgate_http_requests_total",
        "HTTP requests by route template, method and status.",
        &[
            ("route", route),
            ("method", method),
            ("status", status.as_str()),
        ],
        1,
    );
    metrics::observe(
        "camgate_http_request_duration_seconds",
        "HTTP request latency by route template and method.",
        &[("route", route), ("method", method)],
        elapsed.as_secs_f64(),
    );
}

/// `GET /metrics`: the process registry plus this server's gauges.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "Operations",
    operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4.", body = String, content_type = "text/plain")),
)]
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

/// An address range (`10.0.0.0/8`, `::1`) of reverse proxies whose forwarding headers count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet {
    addr: std::net::IpAddr,
    prefix: u8,
}

impl ProxyNet {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: std::net::IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let bits = |ip: IpAddr| -> (u128, u8) {
            match ip {
                IpAddr::V4(v) => (u32::from(v) as u128, 32),
                IpAddr::V6(v) => match v.to_ipv4_mapped() {
                    Some(v4) => (u32::from(v4) as u128, 32),
                    None => (u128::from(v), 128),
                },
            }
        };
        let ((net, w1), (x, w2)) = (bits(self.addr), bits(ip));
        if w1 != w2 {
            return false;
        }
        let shift = u32::from(w1 - self.prefix.min(w1));
        net.checked_shr(shift).unwrap_or(0) == x.checked_shr(shift).unwrap_or(0)
    }
}

impl std::fmt::Display for ProxyNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// When the TCP peer is a trusted proxy, the client address (audit log, per-address login
/// throttling) becomes the right-most `X-Forwarded-For` entry that is not itself a trusted
/// proxy. From any other peer `X-Forwarded-For` and `X-Forwarded-Proto` are removed, so no
/// handler can be fooled by them.
pub fn apply_forwarded(req: &mut Request, trusted: &[ProxyNet]) {
    use axum::extract::ConnectInfo;
    use std::net::{IpAddr, SocketAddr};
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    match peer {
        Some(peer) if is_trusted(peer.ip()) => {
            let hops: Vec<IpAddr> = req
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|h| h.trim().parse::<IpAddr>().ok())
                .collect();
            if let Some(client) = hops
                .iter()
                .rev()
                .find(|ip| !is_trusted(**ip))
                .or(hops.first())
            {
                req.extensions_mut()
                    .insert(ConnectInfo(SocketAddr::new(*client, peer.port())));
            }
        }
        _ => {
            if req.headers().contains_key("x-forwarded-for") {
                req.headers_mut().remove("x-forwarded-for");
            }
            if req.headers().contains_key("x-forwarded-proto") {
                req.headers_mut().remove("x-forwarded-proto");
            }
        }
    }
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

    #[test]
    fn proxy_nets() {
        let n = ProxyNet::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.0.0.1".parse().unwrap()));
        let l = ProxyNet::parse("::1").unwrap();
        assert!(l.contains("::1".parse().unwrap()));
        assert!(!l.contains("::2".parse().unwrap()));
        let all = ProxyNet::parse("0.0.0.0/0").unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert!(ProxyNet::parse("10.0.0.0/33").is_none());
        assert!(ProxyNet::parse("nope").is_none());
    }
}
