//! The device authorization grant's two surfaces (RFC 8628): the device authorization
//! endpoint `POST /oauth/device_authorization` (§3.1-3.2; JSON, the token endpoint's error
//! shape) and the verification page `/device` (§3.3) where a signed-in user enters the code
//! the device shows and approves or denies it. Polling is the token endpoint's
//! (`grant_type=urn:ietf:params:oauth:grant-type:device_code`, core/src/device.rs).

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use camgate_core::authorize::scope_descriptions;
use camgate_core::device::{DeviceCodeError, DeviceRequest};
use camgate_core::oauth::Caller;
use camgate_core::sessions::{check_csrf, BrowserSession};
use camgate_core::throttle::human_wait;

use super::auth::ClientIp;
use super::error::OAuthHttpError;
use super::oauth::{no_store, read_body, read_params, split_client};
use super::openapi as doc;
use super::pages::{
    current_session, field, form_pairs, page_response, redirect, render, PageError,
};
use super::{base_url, AppState};

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    user_email: &'a str,
    csrf_token: &'a str,
    user_code: &'a str,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "device_confirm.html")]
struct DeviceConfirmPage<'a> {
    app_name: &'a str,
    app_initial: String,
    user_email: &'a str,
    scopes: Vec<(&'static str, &'static str)>,
    user_code: &'a str,
    csrf_token: &'a str,
    pairing: Option<&'a camgate_core::store::Pairing>,
}

/// `POST /oauth/device_authorization` (RFC 8628 §3.1).
#[utoipa::path(
    post,
    path = "/oauth/device_authorization",
    tag = "OAuth",
    operation_id = "oauth_device_authorization",
    request_body(content = doc::DeviceAuthorizationRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "The device and user codes (RFC 8628 §3.2; `Cache-Control: no-store`).", body = doc::DeviceAuthorizationResponse),
        (status = 400, description = "Invalid request or scope, or a client not allowed the grant.", body = doc::OAuthErrorBody),
        (status = 401, description = "Client authentication failed (with `WWW-Authenticate: Basic`).", body = doc::OAuthErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::OAuthErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::OAuthErrorBody),
    ),
    security((), ("ClientBasic" = [])),
)]
pub async fn device_authorization(
    State(s): State<AppState>,
    req: Request,
) -> Result<Response, OAuthHttpError> {
    let (parts, body) = read_body(req, s.body_limit).await?;
    let pairs = read_params(&parts.headers, parts.uri.query(), body).await?;
    let (params, creds) = split_client(&parts.headers, pairs)?;
    let d = s.core.device_authorization(&params, creds).await?;
    let base = base_url(&s, &parts.headers);
    let complete = format!("{base}{}", device_path(Some(&d.user_code)));
    Ok(no_store(
        Json(json!({
            "device_code": d.device_code,
            "user_code": d.user_code,
            "verification_uri": format!("{base}/device"),
            "verification_uri_complete": complete,
            "expires_in": d.expires_in,
            "interval": d.interval,
        }))
        .into_response(),
    ))
}

#[derive(Debug, Deserialize, Default)]
pub struct DeviceQuery {
    pub user_code: Option<String>,
}

/// Where `/login` sends the browser back to: `/device`, with the code if one was given.
fn device_path(user_code: Option<&str>) -> String {
    match user_code.filter(|c| !c.is_empty() && c.len() <= 32) {
        Some(c) => {
            let q = form_urlencoded::Serializer::new(String::new())
                .append_pair("user_code", c)
                .finish();
            format!("/device?{q}")
        }
        None => "/device".to_string(),
    }
}

fn to_login(user_code: Option<&str>) -> Response {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("next", &device_path(user_code))
        .finish();
    redirect(StatusCode::SEE_OTHER, &format!("/login?{q}"))
}

fn entry_page(
    sess: &BrowserSession,
    status: StatusCode,
    user_code: &str,
    error: Option<String>,
) -> Response {
    let html = render(&DevicePage {
        user_email: &sess.user.email,
        csrf_token: &sess.csrf_token,
        user_code,
        error,
    });
    page_response(status, html, None)
}

/// `GET /device[?user_code=…]`: the code form (prefilled), after signing in.
pub async fn device_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<DeviceQuery>,
) -> Response {
    let code = q.user_code.as_deref().filter(|c| c.len() <= 32);
    match current_session(&s, &headers).await {
        Ok(Some(sess)) => entry_page(&sess, StatusCode::OK, code.unwrap_or(""), None),
        Ok(None) => to_login(code),
        Err(e) => e.into_response(),
    }
}

/// `POST /device`: a code (answered with the confirmation screen) or, with `decision`, the
/// user's approval or denial. CSRF-checked; wrong codes are counted (RFC 8628 §5.1).
pub async fn device_submit(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let pairs = match form_pairs(req, s.body_limit).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let input = field(&pairs, "user_code").unwrap_or("");
    let sess = match current_session(&s, &headers).await {
        Ok(Some(sess)) => sess,
        Ok(None) => return to_login(Some(input)),
        Err(e) => return e.into_response(),
    };
    if !check_csrf(&sess.id, field(&pairs, "csrf_token").unwrap_or("")) {
        return PageError::bad_request("This form has expired. Enter the code again.")
            .into_response();
    }
    let request = match s.core.device_request(&sess.id, ip.as_deref(), input).await {
        Ok(r) => r,
        Err(DeviceCodeError::Invalid) => {
            let msg = "That code is not valid: it may have expired or been used. Check the \
                       code on your device and try again.";
            return entry_page(&sess, StatusCode::BAD_REQUEST, input, Some(msg.into()));
        }
        Err(DeviceCodeError::Throttled(wait)) => {
            let msg = format!("Too many wrong codes. Try again in {}.", human_wait(wait));
            let mut r = entry_page(&sess, StatusCode::TOO_MANY_REQUESTS, input, Some(msg));
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, wait.into());
            return r;
        }
        Err(DeviceCodeError::Store(e)) => return PageError::from(e).into_response(),
    };
    match field(&pairs, "decision") {
        None => confirm_page(&sess, &request),
        Some(d @ ("approve" | "deny")) => {
            decide(&s, &sess, &request, d == "approve", &Caller { ip }).await
        }
        Some(_) => PageError::bad_request("Choose Approve or Deny.").into_response(),
    }
}

fn confirm_page(sess: &BrowserSession, r: &DeviceRequest) -> Response {
    let html = render(&DeviceConfirmPage {
        app_name: &r.client.name,
        app_initial: r
            .client
            .name
            .chars()
            .find(|c| c.is_alphanumeric())
            .unwrap_or('?')
            .to_string(),
        user_email: &sess.user.email,
        scopes: scope_descriptions(r.scope),
        user_code: &r.user_code,
        csrf_token: &sess.csrf_token,
        pairing: r.pairing.as_ref(),
    });
    page_response(StatusCode::OK, html, None)
}

async fn decide(
    s: &AppState,
    sess: &BrowserSession,
    r: &DeviceRequest,
    approve: bool,
    caller: &Caller,
) -> Response {
    match s.core.decide_device(&sess.user, r, approve, caller).await {
        Ok(true) => {
            let (title, message) = if approve {
                (
                    "Device connected",
                    match &r.pairing {
                        Some(p) => format!(
                            "{} is connected and paired as your camera \u{201c}{}\u{201d}. \
                             You can return to your device.",
                            r.client.name, p.name
                        ),
                        None => format!(
                            "{} is connected. You can return to your device.",
                            r.client.name
                        ),
                    },
                )
            } else {
                (
                    "Request denied",
                    format!(
                        "{} was not connected. You can close this page.",
                        r.client.name
                    ),
                )
            };
            let html = render(&super::pages::MessagePage {
                title,
                message: &message,
                is_error: false,
                hint: None,
                signout_csrf: None,
                request_id: None,
                link: None,
            });
            page_response(StatusCode::OK, html, None)
        }
        Ok(false) => entry_page(
            sess,
            StatusCode::BAD_REQUEST,
            &r.user_code,
            Some("That code was decided already or has expired.".into()),
        ),
        Err(e) => {
            tracing::error!(error = %e, "device decision failed");
            PageError::internal().into_response()
        }
    }
}
