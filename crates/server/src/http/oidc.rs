//! OpenID Connect routes: discovery (`/.well-known/openid-configuration`, Discovery 1.0 §4),
//! UserInfo (`/oauth/userinfo`, Core §5.3) and RP-initiated logout (`/oauth/logout`,
//! RP-Initiated Logout 1.0). The decisions are in `camgate_core::oidc`.

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use camgate_core::error::ApiError;
use camgate_core::oidc::{server_metadata, EndSession, EndSessionRequest};
use camgate_core::sessions::check_csrf;

use super::auth::{Auth, Dialect};
use super::error::BEARER_INVALID_TOKEN;
use super::oauth::no_store;
use super::pages::{
    clear_cookie, cookie, current_session, field, origin_of, page_response, redirect, render,
    MessagePage, PageError, SESSION_COOKIE,
};
use super::{base_url, AppState};

/// `GET /.well-known/openid-configuration`: the same document as RFC 8414's (one builder), so
/// the two never disagree.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "OAuth",
    operation_id = "openid_configuration",
    responses((status = 200, description = "OpenID Provider metadata (Discovery 1.0 §3), equal to the RFC 8414 document.", body = super::openapi::ServerMetadata)),
)]
pub async fn openid_configuration(State(s): State<AppState>, headers: HeaderMap) -> Json<Value> {
    Json(server_metadata(&base_url(&s, &headers)))
}

/// UserInfo errors as RFC 6750 §3 has them: `WWW-Authenticate: Bearer error=…` and a JSON body
/// with `error` and `error_description`.
pub struct UserinfoError(ApiError);

impl From<ApiError> for UserinfoError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for UserinfoError {
    fn into_response(self) -> Response {
        let detail = self.0.to_string();
        let (status, code, www) = match self.0 {
            ApiError::Unauthenticated(_) => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                Some(BEARER_INVALID_TOKEN.to_string()),
            ),
            ApiError::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                Some(format!(
                    r#"Bearer realm="api", error="insufficient_scope", scope="{scope}""#
                )),
            ),
            ApiError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_request", None),
            ApiError::Unavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                None,
            ),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error", None),
        };
        let mut r = (
            status,
            Json(json!({"error": code, "error_description": detail})),
        )
            .into_response();
        if let Some(v) = www.and_then(|w| HeaderValue::from_str(&w).ok()) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        no_store(r)
    }
}

pub struct UserinfoDialect;
impl Dialect for UserinfoDialect {
    type Error = UserinfoError;
}

/// `GET|POST /oauth/userinfo` (OIDC Core §5.3): the signed-in user's claims for a Bearer
/// access token with the `openid` scope.
#[utoipa::path(
    method(get, post),
    path = "/oauth/userinfo",
    tag = "OAuth",
    operation_id = "oidc_userinfo",
    responses(
        (status = 200, description = "Claims by scope (Core §5.4): `sub`, and `name`, `given_name`, `family_name`, `email`, `email_verified`, `phone_number` when granted and not empty.", body = Object),
        (status = 400, description = "A token in the query string (`invalid_request`).", body = super::openapi::BearerErrorBody),
        (status = 401, description = "No token, or an invalid one (`WWW-Authenticate: Bearer error=\"invalid_token\"`).", body = super::openapi::BearerErrorBody),
        (status = 403, description = "The token lacks the `openid` scope (`insufficient_scope`).", body = super::openapi::BearerErrorBody),
        (status = 503, description = "The database is unavailable (`temporarily_unavailable`).", body = super::openapi::BearerErrorBody),
    ),
    security(("Bearer" = [])),
)]
pub async fn userinfo(
    State(s): State<AppState>,
    auth: Auth<UserinfoDialect>,
) -> Result<Response, UserinfoError> {
    let claims = s.core.userinfo(&auth).await?;
    Ok(no_store(Json(claims).into_response()))
}

#[derive(Template)]
#[template(path = "logout_confirm.html")]
struct LogoutConfirmPage<'a> {
    app_name: Option<&'a str>,
    user_email: &'a str,
    csrf_token: &'a str,
    carried: Vec<(&'static str, String)>,
}

const CARRIED: [&str; 4] = [
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
];

/// `GET|POST /oauth/logout` (RP-Initiated Logout 1.0): checks the request (§2–§3; anything
/// invalid is an error page, never a redirect, §4), then ends the session — at once when the
/// `id_token_hint` names the signed-in user, else after the user confirms on a CSRF-protected
/// page (§4 advises asking) — and returns to the registered `post_logout_redirect_uri` with
/// `state`, or shows a signed-out page.
#[utoipa::path(
    method(get, post),
    path = "/oauth/logout",
    tag = "OAuth",
    operation_id = "oidc_end_session",
    responses(
        (status = 200, description = "The confirmation page, or the signed-out page.", body = String, content_type = "text/html"),
        (status = 303, description = "Signed out: to the registered post_logout_redirect_uri with `state`.", headers(("Location" = String, description = "Where to go."))),
        (status = 400, description = "An error page: an invalid id_token_hint, an unknown client or an unregistered post_logout_redirect_uri.", body = String, content_type = "text/html"),
        (status = 413, description = "An error page: the body exceeds the configured limit.", body = String, content_type = "text/html"),
        (status = 415, description = "An error page: a POST that is not a form.", body = String, content_type = "text/html"),
    ),
)]
pub async fn end_session(State(s): State<AppState>, req: Request) -> Result<Response, PageError> {
    let method = req.method().clone();
    let headers = req.headers().clone();
    let pairs = if method == Method::POST {
        super::pages::form_pairs(req, s.body_limit).await?
    } else {
        super::authorize::query_pairs(req.uri().query())
    };
    let get = |k: &str| field(&pairs, k).map(str::to_string);
    let r = EndSessionRequest {
        id_token_hint: get("id_token_hint"),
        client_id: get("client_id"),
        post_logout_redirect_uri: get("post_logout_redirect_uri"),
        state: get("state"),
    };
    let es = s
        .core
        .check_end_session(&r)
        .await
        .map_err(PageError::bad_request)?;
    let Some(sess) = current_session(&s, &headers).await? else {
        // Nobody is signed in here: nothing to end; still return to the client.
        return Ok(finish(&es));
    };
    let confirmed = method == Method::POST
        && field(&pairs, "decision") == Some("logout")
        && check_csrf(&sess.id, field(&pairs, "csrf_token").unwrap_or(""));
    if method == Method::POST && field(&pairs, "decision") == Some("stay") {
        return Ok(stayed(&sess.user.email));
    }
    if confirmed || s.core.hint_names(&es, sess.user.id) {
        if let Some(id) = cookie(&headers, SESSION_COOKIE) {
            s.core.end_session(&id).await?;
        }
        return Ok(finish(&es));
    }
    let carried = CARRIED
        .iter()
        .filter_map(|k| get(k).map(|v| (*k, v)))
        .collect();
    let html = render(&LogoutConfirmPage {
        app_name: es.client.as_ref().map(|c| c.name.as_str()),
        user_email: &sess.user.email,
        csrf_token: &sess.csrf_token,
        carried,
    });
    // The form posts here; its answer redirects to the registered URI (CSP form-action).
    let origin = es.redirect.as_deref().and_then(origin_of);
    Ok(page_response(StatusCode::OK, html, origin.as_deref()))
}

/// After the session ended (or there was none): to the client, or a signed-out page.
fn finish(es: &EndSession) -> Response {
    let mut r = match &es.redirect {
        Some(to) => redirect(StatusCode::SEE_OTHER, to),
        None => {
            let html = render(&MessagePage {
                title: "You are signed out",
                message: "Your session has ended.",
                is_error: false,
                hint: None,
                signout_csrf: None,
                request_id: None,
                link: Some(("/login".to_string(), "Sign in again")),
            });
            page_response(StatusCode::OK, html, None)
        }
    };
    clear_cookie(&mut r, SESSION_COOKIE);
    r
}

fn stayed(email: &str) -> Response {
    let message = format!("You are still signed in as {email}.");
    let html = render(&MessagePage {
        title: "You are still signed in",
        message: &message,
        is_error: false,
        hint: Some("You can close this window."),
        signout_csrf: None,
        request_id: None,
        link: None,
    });
    page_response(StatusCode::OK, html, None)
}
