//! The authorization endpoint, `GET|POST /oauth/authorize` and `/oauth/authorize/`
//! (RFC 6749 §3.1 — "MUST support the use of the HTTP GET method … MAY support POST"; spec 004
//! uses both), and the approval screen at `/consent`.
//!
//! Flow: validate (client and redirect URI first; until both are good, errors are pages);
//! without a session, park the request server-side and send the browser to `/login`; with one,
//! show the approval screen unless the user already approved this scope for this client; then
//! redirect to the client with `code`, `state` and `iss` (RFC 9207). GET requests are answered
//! `302 Found`; answers to form POSTs `303 See Other` (RFC 9700 §4.12: never 307).

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};

use camgate_core::authorize::{
    scope_descriptions, AuthorizationRedirect, AuthorizeError, Prompt, ValidRequest,
};
use camgate_core::oauth::Caller;
use camgate_core::sessions::{check_csrf, BrowserSession};

use super::auth::ClientIp;
use super::openapi as doc;
use super::pages::{
    current_session, field, form_pairs, login_location, origin_of, page_response, redirect, render,
    ConsentPage, PageError, RequestQuery,
};
use super::{base_url, AppState};

fn page_error(
    e: AuthorizeError,
    s: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
) -> Response {
    match e {
        AuthorizeError::Page { status, message } => PageError::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            "This request cannot be completed",
            message,
        )
        .with_hint(
            "The link that brought you here does not work for this application. Go back to the \
             application and try again; if this keeps happening, contact its developer.",
        )
        .into_response(),
        AuthorizeError::Redirect(r) => to_client(s, headers, status, &r),
    }
}

/// Sends the browser back to the client with `iss` (RFC 9207 §2).
fn to_client(
    s: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    r: &AuthorizationRedirect,
) -> Response {
    redirect(status, &r.location(&base_url(s, headers)))
}

/// The parameters of a `GET /oauth/authorize` request: its query string, form-urldecoded,
/// at most one more than the core accepts (so "too many" is still noticed). The POST form is
/// read by `oauth::read_params`, as at the token endpoint.
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .take(camgate_core::authorize::MAX_PARAMS + 1)
                .collect()
        })
        .unwrap_or_default()
}

/// `GET|POST /oauth/authorize[/]`.
#[utoipa::path(
    method(get, post),
    path = "/oauth/authorize",
    tag = "OAuth",
    operation_id = "oauth_authorize",
    params(doc::AuthorizeRequest),
    request_body(content = Option<doc::AuthorizeRequest>, content_type = "application/x-www-form-urlencoded",
        description = "POST only: the parameters as a form (the query string works too)."),
    responses(
        (status = 200, description = "The approval screen (signed in).", body = String, content_type = "text/html"),
        (status = 302, description = "To `/login`, to the approval screen, or back to the client with `code` or `error`, `state` and `iss` (RFC 9207).",
            headers(("Location" = String, description = "Where to go."))),
        (status = 303, description = "As 302, after a form was posted.", headers(("Location" = String, description = "Where to go."))),
        (status = 400, description = "An error page: unknown client or redirect URI, or a malformed request.", body = String, content_type = "text/html"),
        (status = 413, description = "An error page: the body exceeds the configured limit.", body = String, content_type = "text/html"),
        (status = 503, description = "An error page: the database is unavailable.", body = String, content_type = "text/html"),
    ),
)]
pub async fn authorize(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let pairs = if parts.method == Method::POST {
        let body = match axum::body::to_bytes(body, s.body_limit).await {
            Ok(b) => b,
            Err(_) => {
                return PageError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Something is wrong",
                    "The request is too large.",
                )
                .into_response()
            }
        };
        match super::oauth::read_params(&headers, parts.uri.query(), body).await {
            Ok(p) => p,
            Err(e) => return PageError::bad_request(e.description).into_response(),
        }
    } else {
        query_pairs(parts.uri.query())
    };
    let status = StatusCode::FOUND;
    let valid = match s.core.validate_authorization(pairs).await {
        Ok(v) => v,
        Err(e) => return page_error(e, &s, &headers, status),
    };
    // OIDC Core §3.1.2.1 max_age: an older sign-in counts as none (sign in again; under
    // prompt=none, login_required).
    let now = s.core.now();
    let session = match current_session(&s, &headers).await {
        Ok(sess) => sess.filter(|sess| valid.session_fresh(sess.created_at, now)),
        Err(e) => return e.into_response(),
    };
    let caller = Caller { ip };
    match (session, valid.prompt) {
        // prompt=none: never show a page (OIDC Core §3.1.2.6 error codes).
        (None, Prompt::None) => to_client(
            &s,
            &headers,
            status,
            &AuthorizationRedirect::error(
                &valid.redirect_uri,
                valid.state.as_deref(),
                "login_required",
                "The user is not signed in.",
            ),
        ),
        (Some(sess), Prompt::None) => match s.core.needs_consent(sess.user.id, &valid).await {
            Ok(true) => to_client(
                &s,
                &headers,
                status,
                &AuthorizationRedirect::error(
                    &valid.redirect_uri,
                    valid.state.as_deref(),
                    "consent_required",
                    "The user has not approved this application for the requested scope.",
                ),
            ),
            Ok(false) => match s
                .core
                .issue_code(&sess.user, &sess.authn(), &valid, &caller)
                .await
            {
                Ok(r) => to_client(&s, &headers, status, &r),
                Err(e) => page_error(e, &s, &headers, status),
            },
            Err(e) => page_error(e, &s, &headers, status),
        },
        // No session, or prompt=login: park the request and sign in first. Only the opaque
        // handle travels through the browser; the request itself stays here.
        (None, _) | (Some(_), Prompt::Login) => match s.core.park_request(&valid).await {
            Ok(handle) => redirect(StatusCode::SEE_OTHER, &login_location(&handle)),
            Err(e) => page_error(e, &s, &headers, status),
        },
        (Some(sess), _) => proceed(&s, &headers, &sess, valid, None, &caller, status).await,
    }
}

/// With a signed-in user: the approval screen if needed, else a code for the client.
async fn proceed(
    s: &AppState,
    headers: &HeaderMap,
    sess: &BrowserSession,
    req: ValidRequest,
    handle: Option<String>,
    caller: &Caller,
    status: StatusCode,
) -> Response {
    let needs = match s.core.needs_consent(sess.user.id, &req).await {
        Ok(n) => n,
        Err(e) => return page_error(e, s, headers, status),
    };
    if needs {
        let handle = match handle {
            Some(h) => h,
            None => match s.core.park_request(&req).await {
                Ok(h) => h,
                Err(e) => return page_error(e, s, headers, status),
            },
        };
        return consent_screen(s, sess, &req, &handle).await;
    }
    if let Some(h) = handle {
        // Consume the parked request: it must not be resumed twice.
        if !matches!(s.core.parked_request(&h, true).await, Ok(Some(_))) {
            return PageError::expired_request().into_response();
        }
    }
    match s
        .core
        .issue_code(&sess.user, &sess.authn(), &req, caller)
        .await
    {
        Ok(r) => to_client(s, headers, status, &r),
        Err(e) => page_error(e, s, headers, status),
    }
}

async fn consent_screen(
    s: &AppState,
    sess: &BrowserSession,
    req: &ValidRequest,
    handle: &str,
) -> Response {
    let owner = match s.core.client_owner(&req.client).await {
        Ok(o) => o.map(|u| {
            let name = format!("{} {}", u.first_name, u.last_name);
            let name = name.trim();
            if name.is_empty() {
                u.email
            } else {
                format!("{name} ({})", u.email)
            }
        }),
        Err(e) => return PageError::from(e).into_response(),
    };
    let redirect_host = url::Url::parse(&req.redirect_uri)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_else(|| req.redirect_uri.clone());
    let html = render(&ConsentPage {
        app_name: &req.client.name,
        app_initial: req
            .client
            .name
            .chars()
            .find(|c| c.is_alphanumeric())
            .unwrap_or('?')
            .to_string(),
        owner,
        user_email: &sess.user.email,
        scopes: scope_descriptions(req.scope),
        redirect_host,
        request_id: handle,
        csrf_token: &sess.csrf_token,
    });
    page_response(
        StatusCode::OK,
        html,
        origin_of(&req.redirect_uri).as_deref(),
    )
}

/// `GET /consent?request_id=…`: resumes a parked request after login.
pub async fn consent_page(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Query(q): Query<RequestQuery>,
) -> Response {
    let Some(handle) = q.request_id.filter(|h| !h.is_empty()) else {
        return PageError::expired_request().into_response();
    };
    let sess = match current_session(&s, &headers).await {
        Ok(Some(sess)) => sess,
        Ok(None) => return redirect(StatusCode::SEE_OTHER, &login_location(&handle)),
        Err(e) => return e.into_response(),
    };
    let req = match s.core.parked_request(&handle, false).await {
        Ok(Some(r)) => r,
        Ok(None) => return PageError::expired_request().into_response(),
        Err(e) => return page_error(e, &s, &headers, StatusCode::SEE_OTHER),
    };
    // prompt=login / max_age (OIDC Core §3.1.2.1) hold here too, not only at /oauth/authorize.
    if !req.session_satisfies(sess.created_at, s.core.now()) {
        return redirect(StatusCode::SEE_OTHER, &login_location(&handle));
    }
    proceed(
        &s,
        &headers,
        &sess,
        req,
        Some(handle),
        &Caller { ip },
        StatusCode::SEE_OTHER,
    )
    .await
}

/// `POST /consent`: the user's decision (CSRF-checked). Approve: remember the consent and
/// send a code. Deny: `error=access_denied` (RFC 6749 §4.1.2.1).
pub async fn consent_decision(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let pairs = match form_pairs(req, s.body_limit).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(handle) = field(&pairs, "request_id") else {
        return PageError::expired_request().into_response();
    };
    let sess = match current_session(&s, &headers).await {
        Ok(Some(sess)) => sess,
        // The session ended while the screen was open: sign in again, then decide again.
        Ok(None) => return redirect(StatusCode::SEE_OTHER, &login_location(handle)),
        Err(e) => return e.into_response(),
    };
    if !check_csrf(&sess.id, field(&pairs, "csrf_token").unwrap_or("")) {
        return PageError::bad_request(
            "This form has expired. Go back to the application and start again.",
        )
        .into_response();
    }
    let approve = match field(&pairs, "decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => return PageError::bad_request("Choose Approve or Deny.").into_response(),
    };
    let status = StatusCode::SEE_OTHER;
    // The sign-in the request asks for (prompt=login, max_age) before anything is decided.
    match s.core.parked_request(handle, false).await {
        Ok(Some(r)) if !r.session_satisfies(sess.created_at, s.core.now()) => {
            return redirect(StatusCode::SEE_OTHER, &login_location(handle));
        }
        Ok(Some(_)) => {}
        Ok(None) => return PageError::expired_request().into_response(),
        Err(e) => return page_error(e, &s, &headers, status),
    }
    // Single use: taking the parked request deletes it.
    let req = match s.core.parked_request(handle, true).await {
        Ok(Some(r)) => r,
        Ok(None) => return PageError::expired_request().into_response(),
        Err(e) => return page_error(e, &s, &headers, status),
    };
    if !approve {
        return to_client(
            &s,
            &headers,
            status,
            &AuthorizationRedirect::error(
                &req.redirect_uri,
                req.state.as_deref(),
                "access_denied",
                "The user denied the request.",
            ),
        );
    }
    if let Err(e) = s
        .core
        .remember_consent(sess.user.id, &req.client, req.scope)
        .await
    {
        return page_error(e, &s, &headers, status);
    }
    match s
        .core
        .issue_code(&sess.user, &sess.authn(), &req, &Caller { ip })
        .await
    {
        Ok(r) => to_client(&s, &headers, status, &r),
        Err(e) => page_error(e, &s, &headers, status),
    }
}
