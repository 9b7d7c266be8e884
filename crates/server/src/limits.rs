//! Resource limits against hostile or broken clients: the accept loop and everything that
//! bounds what one client can make the server hold.
//!
//! - **Connections**: at most `max_connections` at once. A connection over the cap is accepted
//!   and answered at once with a fixed `503` + `Retry-After: 1` and closed, instead of waiting in
//!   the kernel backlog (where a client cannot tell a full server from a dead one and where the
//!   slots would go to whoever reconnects fastest once freed).
//! - **Request heads**: the request line and headers must arrive within `header_read_timeout`
//!   (a deadline for the whole head, not an idle timer: a client dribbling one byte a second
//!   is cut off all the same — slow-loris). The same deadline bounds an idle keep-alive
//!   connection waiting for its next request. A head larger than `max_header_bytes`, or with
//!   more than 100 headers, is answered `431` and the connection closed (hyper).
//! - **Requests**: a handler — including reading the body — must finish within
//!   `request_timeout`; otherwise the answer is `503` + `Retry-After` in the surface's error
//!   shape (`http/edge.rs`). Body size is bounded by `body_limit_bytes` (see
//!   `http/middleware.rs`).
//! - **Token endpoint rate**: an optional per-client-IP token bucket (see `http/ratelimit.rs`).
//! - **Password hashing**: a bounded queue (`core/src/password.rs`), 503 + Retry-After when full.
//!
//! [`serve`] keeps the signature the tests use; [`serve_with`] takes explicit limits.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::FileConfig;
use crate::http::edge::Edge;

/// Every limit in one place, resolved from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Open connections at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Deadline for a request's line and headers (also the keep-alive idle limit).
    pub header_read_timeout: Duration,
    /// Largest request head (request line + headers) in bytes; larger is 431.
    pub max_header_bytes: usize,
    /// Deadline for a whole request, body reading included; later is 503.
    pub request_timeout: Duration,
    /// Sustained token-endpoint requests per minute per client IP; 0 disables the limit.
    pub token_rate_per_minute: u32,
    /// Requests a client IP may make at once before the sustained rate applies.
    pub token_rate_burst: u32,
    /// How long shutdown waits for in-flight requests before closing connections anyway.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1000,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            request_timeout: Duration::from_secs(30),
            token_rate_per_minute: 0,
            token_rate_burst: 20,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// Resolves the file's limit keys over the defaults, checking their ranges.
    pub fn from_file(file: &FileConfig) -> anyhow::Result<Self> {
        let d = Limits::default();
        let l = Limits {
            max_connections: file.max_connections.unwrap_or(d.max_connections),
            header_read_timeout: file
                .header_read_timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(d.header_read_timeout),
            max_header_bytes: file.max_header_bytes.unwrap_or(d.max_header_bytes),
            request_timeout: file
                .request_timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(d.request_timeout),
            token_rate_per_minute: file
                .token_rate_limit_per_minute
                .unwrap_or(d.token_rate_per_minute),
            token_rate_burst: file.token_rate_limit_burst.unwrap_or(d.token_rate_burst),
            shutdown_grace: d.shutdown_grace,
        };
        if l.max_connections == 0 {
            anyhow::bail!("config: max_connections must be at least 1");
        }
        if l.header_read_timeout.is_zero() || l.request_timeout.is_zero() {
            anyhow::bail!(
                "config: header_read_timeout_secs and request_timeout_secs must be at least 1"
            );
        }
        if !(1024..=256 * 1024).contains(&l.max_header_bytes) {
            anyhow::bail!("config: max_header_bytes must be between 1024 and 262144");
        }
        if l.token_rate_per_minute > 0 && l.token_rate_burst == 0 {
            anyhow::bail!("config: token_rate_limit_burst must be at least 1");
        }
        Ok(l)
    }
}

/// The fixed answer to a connection over the cap (the request is never read).
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
cache-control: no-store\r\n\
connection: close\r\n\
content-length: 67\r\n\
\r\n\
{\"error\":\"temporarily_unavailable\",\"detail\":\"Too many connections\"}";

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Serves `router` on `listener` with the default [`Limits`] until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    router: Edge,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router, &Limits::default(), shutdown).await
}

/// The accept loop: HTTP/1.1 on hyper with the connection-level limits. When `shutdown`
/// resolves it stops accepting, lets in-flight requests finish (closing idle keep-alive
/// connections at once) and returns; after `shutdown_grace` it returns anyway.
pub async fn serve_with(
    listener: TcpListener,
    router: Edge,
    limits: &Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(target: "camgate::access", peer = %peer.ip(), "connection refused: max_connections reached");
            // Best effort, never waits: a full send buffer just drops the answer.
            let _ = stream.try_write(OVER_CAPACITY);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let edge = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let edge = edge.clone();
            async move { Ok::<_, Infallible>(edge.handle(req.map(Body::new)).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Errors here are the client's (reset, timeout, malformed head): nothing to report.
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; closing remaining connections");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_ranges() {
        let l = Limits::from_file(&FileConfig::default()).unwrap();
        assert_eq!(l, Limits::default());
        let f: FileConfig = toml::from_str("max_header_bytes = 10").unwrap();
        assert!(Limits::from_file(&f).is_err());
        let f: FileConfig = toml::from_str("max_connections = 0").unwrap();
        assert!(Limits::from_file(&f).is_err());
        let f: FileConfig =
            toml::from_str("token_rate_limit_per_minute = 60\ntoken_rate_limit_burst = 5").unwrap();
        let l = Limits::from_file(&f).unwrap();
        assert_eq!((l.token_rate_per_minute, l.token_rate_burst), (60, 5));
    }

    #[test]
    fn over_capacity_answer_is_well_formed() {
        let text = std::str::from_utf8(OVER_CAPACITY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        serde_json::from_str::<serde_json::Value>(body).unwrap();
    }
}
