//! The HTTP surfaces, all mounted at once and told apart by path: canonical OAuth2, the Angelcam
//! dialect, operations. Handlers are thin: parse, call one `Core` function, render.

pub mod angelcam;
pub mod auth;
pub mod authorize;
pub mod cam2;
pub mod cameramanager;
pub mod dashboard;
pub mod device;
pub mod edge;
pub mod error;
pub mod events;
pub mod lifecycle;
pub mod mfa;
pub mod middleware;
pub mod oauth;
pub mod oidc;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod ratelimit;
pub mod rejections;
pub mod sharing;
pub mod webhooks;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde_json::json;

use camgate_core::Core;

use error::Surface;

#[derive(Clone)]
pub struct AppState {
    pub core: Arc<Core>,
    pub body_limit: usize,
    /// Public base URL (config `issuer`), if set.
    pub issuer: Option<Arc<str>>,
}

/// Base URL for absolute links: the configured issuer, else `http://` + the Host header.
pub fn base_url(s: &AppState, headers: &HeaderMap) -> String {
    if let Some(i) = &s.issuer {
        return i.to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// A JSON body already serialised (a listing from `Core::camera_listing`), as a 200.
pub fn json_bytes(body: bytes::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// RFC 3339 in UTC.
pub fn iso(t: i64) -> String {
    camgate_core::clock::rfc3339(t)
}

async fn method_not_allowed(req: Request) -> Response {
    Surface::for_path(req.uri().path()).error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("Method \"{}\" not allowed.", req.method()),
    )
}

async fn not_found(req: Request) -> Response {
    Surface::for_path(req.uri().path()).error(StatusCode::NOT_FOUND, "not_found", "Not found.")
}

/// `GET /health/alive`: the process answers.
#[utoipa::path(
    get,
    path = "/health/alive",
    tag = "Operations",
    operation_id = "health_alive",
    responses((status = 200, description = "Alive.", body = openapi::HealthStatus)),
)]
pub async fn alive() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /health/ready`: the database answers.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "Operations",
    operation_id = "health_ready",
    responses(
        (status = 200, description = "Ready.", body = openapi::HealthStatus),
        (status = 503, description = "The database does not answer (with `Retry-After`).", body = openapi::HealthStatus),
    ),
)]
pub async fn ready(State(s): State<AppState>) -> Response {
    match s.core.store.ping().await {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
                .into_response();
            r.headers_mut().insert(header::RETRY_AFTER, 5.into());
            r
        }
    }
}

pub(crate) fn with_405(m: MethodRouter<AppState>) -> MethodRouter<AppState> {
    m.fallback(method_not_allowed)
}

/// The routes. Cross-cutting concerns (logging, metrics, limits, headers) are the edge's
/// (edge.rs), which wraps this router.
pub fn router(state: AppState) -> Router {
    Router::new()
        // Canonical OAuth2 and the dialects' token endpoints (RFC 6749 §3.2).
        .route("/oauth/token", with_405(post(oauth::token)))
        .route("/oauth/token/", with_405(post(oauth::token)))
        // The authorization endpoint and the browser pages (RFC 6749 §3.1, §4.1): sign-in
        // and consent for the authorization code grant.
        .route(
            "/oauth/authorize",
            with_405(get(authorize::authorize).post(authorize::authorize)),
        )
        .route(
            "/oauth/authorize/",
            with_405(get(authorize::authorize).post(authorize::authorize)),
        )
        .route(
            "/consent",
            with_405(get(authorize::consent_page).post(authorize::consent_decision)),
        )
        .route(
            "/login",
            with_405(get(pages::login_page).post(pages::login_submit)),
        )
        .route(
            "/logout",
            with_405(get(pages::logout_page).post(pages::logout_submit)),
        )
        .route(
            "/login/mfa",
            with_405(get(mfa::mfa_page).post(mfa::mfa_submit)),
        )
        .route("/login/passkey/begin", with_405(post(mfa::passkey_begin)))
        .route("/login/passkey/finish", with_405(post(mfa::passkey_finish)))
        .route(
            "/login/mfa/passkey/begin",
            with_405(post(mfa::mfa_passkey_begin)),
        )
        .route(
            "/login/mfa/passkey/finish",
            with_405(post(mfa::mfa_passkey_finish)),
        )
        .route("/static/passkeys.js", get(pages::passkeys_script))
        // The device authorization grant (RFC 8628 §3.1, §3.3).
        .route(
            "/oauth/device_authorization",
            with_405(post(device::device_authorization)),
        )
        .route(
            "/device",
            with_405(get(device::device_page).post(device::device_submit)),
        )
        .route("/static/camgate.css", get(pages::stylesheet))
        // Revocation (RFC 7009), introspection (RFC 7662), metadata (RFC 8414).
        .route("/oauth/revoke", with_405(post(lifecycle::revoke)))
        .route("/oauth/token-revoke/", with_405(post(lifecycle::revoke)))
        .route("/oauth/introspect", with_405(post(lifecycle::introspect)))
        .route(
            "/.well-known/oauth-authorization-server",
            get(lifecycle::metadata),
        )
        // OpenID Connect: discovery, UserInfo, RP-initiated logout.
        .route(
            "/.well-known/openid-configuration",
            get(oidc::openid_configuration),
        )
        .route(
            "/oauth/userinfo",
            with_405(get(oidc::userinfo).post(oidc::userinfo)),
        )
        .route(
            "/oauth/logout",
            with_405(get(oidc::end_session).post(oidc::end_session)),
        )
        // CameraManager.
        .route(
            "/rest/v2.0/users/self",
            with_405(get(cameramanager::user_self)),
        )
        .route(
            "/rest/v2.0/users/self/tokens/current",
            with_405(axum::routing::delete(cameramanager::logout)),
        )
        .route("/rest/v2.0/cameras", with_405(get(cameramanager::cameras)))
        // Angelcam (trailing slash required).
        .route(
            "/v1/me/",
            with_405(get(angelcam::me).delete(angelcam::delete_me)),
        )
        .route(
            "/v1/cameras/",
            with_405(get(angelcam::list_cameras).post(angelcam::create_camera)),
        )
        .route(
            "/v1/cameras/{id}/",
            with_405(
                get(angelcam::get_camera)
                    .put(angelcam::update_camera)
                    .delete(angelcam::delete_camera),
            ),
        )
        .route(
            "/v1/cameras/{id}/heartbeat/",
            with_405(post(angelcam::camera_heartbeat)),
        )
        .route(
            "/v1/cameras/{id}/shares/",
            with_405(get(sharing::list_shares).post(sharing::create_share)),
        )
        .route(
            "/v1/cameras/{id}/shares/{share_id}/",
            with_405(
                get(sharing::get_share)
                    .put(sharing::update_share)
                    .delete(sharing::delete_share),
            ),
        )
        .route(
            "/v1/cameras/{id}/events/",
            with_405(post(events::post_event)),
        )
        .route(
            "/v1/cameras/{id}/recordings/",
            with_405(get(events::list_recordings).post(events::add_recording)),
        )
        .route(
            "/v1/cameras/{id}/snapshot/",
            with_405(post(events::update_snapshot)),
        )
        .route("/v1/events/", with_405(get(events::list_events)))
        .route("/v1/events/stream", with_405(get(events::event_stream)))
        .route(
            "/v1/dealer/customers/",
            with_405(get(sharing::list_customers).post(sharing::create_customer)),
        )
        .route(
            "/v1/webhooks/",
            with_405(get(webhooks::list_webhooks).post(webhooks::create_webhook)),
        )
        .route(
            "/v1/webhooks/{id}/",
            with_405(get(webhooks::get_webhook).delete(webhooks::delete_webhook)),
        )
        .route(
            "/v1/webhooks/{id}/deliveries/",
            with_405(get(webhooks::list_deliveries)),
        )
        .route(
            "/v1/webhooks/{id}/deliveries/{delivery_id}/replay/",
            with_405(post(webhooks::replay_delivery)),
        )
        // Operations.
        .route("/health/alive", get(alive))
        .route("/health/ready", get(ready))
        // CAM2API (spec 002) and the JWKS that verifies its JWT access tokens.
        .merge(cam2::routes())
        // The developer dashboard (OAuth applications, personal access tokens).
        .merge(dashboard::routes())
        .route("/metrics", get(ops::metrics_endpoint))
        .route("/openapi.json", get(openapi::openapi_json))
        .route_layer(edge::MarkRouteLayer)
        .fallback(not_found)
        .with_state(state)
}
