//! The edge: every cross-cutting concern of a request, in one service around the router.
//!
//! In order, outermost first: the token-endpoint rate limit (by TCP peer), the request
//! deadline, trusted-proxy forwarding headers, the request id and its log span, the declared
//! body-size guard, the per-request JWT issuer, routing and the handler; then, on the way
//! out, the access-log line, the request metrics, framework rejections reshaped into the
//! surface's error shape, the `X-Request-Id` header and the security headers.
//!
//! These were eleven `axum::middleware::from_fn` layers. Each such layer, per request, clones
//! the boxed service beneath it, boxes that clone again as its `Next` and boxes its own future
//! — and `Router::layer` wraps every route's stack in a fresh box — so a request paid about
//! forty allocations and as many moves of ever larger futures before reaching its handler.
//! Here it is one future; the only per-route layer left is [`MarkRoute`], a plain tower
//! layer that hands the matched route template to the metrics without allocating.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use tower::{Layer, Service};
use tracing::Instrument;

use super::error::{too_large, Surface};
use super::ops::{self, ProxyNet, REQUEST_ID};
use super::ratelimit::RateLimiter;
use super::{base_url, middleware, rejections, AppState};

/// The whole server as one service: cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Edge(Arc<Inner>);

struct Inner {
    router: axum::Router,
    state: AppState,
    trusted: Arc<[ProxyNet]>,
    limiter: Option<RateLimiter>,
    deadline: Duration,
}

impl Edge {
    pub fn new(
        router: axum::Router,
        state: AppState,
        trusted: Arc<[ProxyNet]>,
        limiter: Option<RateLimiter>,
        deadline: Duration,
    ) -> Self {
        Self(Arc::new(Inner {
            router,
            state,
            trusted,
            limiter,
            deadline,
        }))
    }

    /// Answers one request.
    pub async fn handle(&self, req: Request) -> Response {
        let inner = &*self.0;
        let mut resp = match inner
            .limiter
            .as_ref()
            .and_then(|l| super::ratelimit::refusal(l, &req))
        {
            Some(refused) => refused,
            None => {
                let (method, uri) = (req.method().clone(), req.uri().clone());
                match tokio::time::timeout(inner.deadline, inner.serve(req)).await {
                    Ok(r) => r,
                    Err(_) => timed_out(&method, uri.path(), inner.deadline),
                }
            }
        };
        middleware::add_security_headers(&mut resp);
        resp
    }
}

impl Inner {
    async fn serve(&self, mut req: Request) -> Response {
        ops::apply_forwarded(&mut req, &self.trusted);
        let id = ops::request_id_of(&req);
        let span = tracing::info_span!("request", request_id = %id);
        let start = Instant::now();
        let method = req.method().clone();
        let uri = req.uri().clone();
        let path = uri.path();
        let resp = async {
            if middleware::declared_too_large(&req, self.state.body_limit) {
                return too_large(path, self.state.body_limit);
            }
            // The core must know the issuer of JWTs for this request: the configured `issuer`,
            // else `http://` + Host (`base_url`), derived here once, identically at issue and
            // check time.
            let issuer: Arc<str> = match &self.state.issuer {
                Some(i) => i.clone(),
                None => Arc::from(base_url(&self.state, req.headers())),
            };
            req.extensions_mut().insert(ops::RequestId(id.clone()));
            let mut router = self.router.clone();
            let routed = router.call(req);
            match camgate_core::jwt::with_request_issuer(issuer, routed).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        }
        .instrument(span.clone())
        .await;
        let elapsed = start.elapsed();
        let status = resp.status();
        span.in_scope(|| {
            // One line per request: method, path (no query string: it may hold credentials,
            // as the CameraManager token request does), status, latency.
            tracing::info!(
                target: "camgate::access",
                method = %method,
                path = %path,
                status = status.as_u16(),
                micros = elapsed.as_micros() as u64,
                "request"
            );
        });
        ops::record(&resp, &method, status, elapsed);
        let mut resp = rejections::reshape(path, resp).await;
        if let Ok(v) = HeaderValue::try_from(id) {
            resp.headers_mut().insert(REQUEST_ID, v);
        }
        resp
    }
}

/// 503 + `Retry-After` in the surface's shape for a request that outlived the deadline.
fn timed_out(method: &axum::http::Method, path: &str, deadline: Duration) -> Response {
    tracing::warn!(
        target: "camgate::access",
        method = %method,
        path = %path,
        status = 503u16,
        deadline_ms = deadline.as_millis() as u64,
        "request timed out"
    );
    let mut r = Surface::for_path(path).error(
        StatusCode::SERVICE_UNAVAILABLE,
        "request_timeout",
        "The request took too long and was abandoned; try again.",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

impl Service<Request> for Edge {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let edge = self.clone();
        Box::pin(async move { Ok(edge.handle(req).await) })
    }
}

/// The matched route template, handed from [`MarkRoute`] (inside the router) to the metrics
/// (outside it) in the response's extensions.
#[derive(Clone)]
pub struct Route(pub MatchedPath);

/// Route layer: remembers which route template served the request.
#[derive(Clone, Copy, Default)]
pub struct MarkRouteLayer;

impl<S> Layer<S> for MarkRouteLayer {
    type Service = MarkRoute<S>;
    fn layer(&self, inner: S) -> MarkRoute<S> {
        MarkRoute(inner)
    }
}

#[derive(Clone)]
pub struct MarkRoute<S>(S);

impl<S> Service<Request> for MarkRoute<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = MarkRouteFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let matched = req.extensions().get::<MatchedPath>().cloned();
        MarkRouteFuture {
            inner: self.0.call(req),
            matched,
        }
    }
}

pin_project_lite::pin_project! {
    pub struct MarkRouteFuture<F> {
        #[pin]
        inner: F,
        matched: Option<MatchedPath>,
    }
}

impl<F> Future for MarkRouteFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut resp = ready!(this.inner.poll(cx))?;
        if let Some(m) = this.matched.take() {
            resp.extensions_mut().insert(Route(m));
        }
        Poll::Ready(Ok(resp))
    }
}
