//! The second sign-in step (`POST /login/mfa`): after the password, a user with a second factor
//! gives a TOTP or recovery code. Between the two steps the browser holds only a sealed,
//! five-minute `__Host-camgate_mfa` cookie naming the user (`core::mfa`); the session starts
//! once the code is right, recording both factors (`amr`: `pwd otp`).

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use camgate_core::error::ApiError;
use camgate_core::passkeys::CeremonyStart;

use camgate_core::mfa::{MfaError, PENDING_TTL_SECS};
use camgate_core::model::User;
use camgate_core::oauth::Caller;
use camgate_core::secret;
use camgate_core::throttle::human_wait;

use super::auth::ClientIp;
use super::pages::{
    clear_cookie, consent_location, cookie, field, form_pairs, login_location, origin_of, redirect,
    render, safe_next, secure_enough, set_cookie, PageError, LOGIN_COOKIE, SESSION_COOKIE,
};
use super::AppState;

/// Which second factors a user has (what the page offers).
#[derive(Debug, Clone, Copy)]
pub struct Factors {
    pub totp: bool,
    pub passkey: bool,
}

impl Factors {
    pub async fn of(s: &AppState, user: &User) -> Result<Self, camgate_core::error::StoreError> {
        Ok(Self {
            totp: s.core.has_totp(user.id).await?,
            passkey: !s.core.passkeys(user.id).await?.is_empty(),
        })
    }
}

/// The pending sign-in between the password and the second factor.
pub const MFA_COOKIE: &str = "__Host-camgate_mfa";

#[derive(Template)]
#[template(path = "login_mfa.html")]
struct MfaPage<'a> {
    email: &'a str,
    /// Ask for a code (the user has an authenticator app).
    totp: bool,
    /// Offer "use a passkey" (the user has one).
    passkey: bool,
    csrf_token: &'a str,
    request_id: Option<&'a str>,
    next: Option<&'a str>,
    error: Option<String>,
}

/// After a right password for a user with a second factor: the code form, and the pending
/// sign-in cookie. `csrf_token`: the login form's double-submit value (its cookie stays).
/// `form_origin`: the client's origin when signing in for an authorization request (see
/// [`form`]).
pub fn ask_second_factor(
    s: &AppState,
    user: &User,
    factors: Factors,
    csrf_token: &str,
    request_id: Option<&str>,
    next: Option<&str>,
    form_origin: Option<&str>,
) -> Result<Response, PageError> {
    let sealed = s
        .core
        .seal_pending_sign_in(user)
        .ok_or_else(PageError::internal)?;
    let mut r = form(
        user,
        factors,
        csrf_token,
        request_id,
        next,
        None,
        StatusCode::OK,
        form_origin,
    );
    set_cookie(&mut r, MFA_COOKIE, &sealed, PENDING_TTL_SECS, "Lax");
    Ok(r)
}

#[allow(clippy::too_many_arguments)]
fn form(
    user: &User,
    factors: Factors,
    csrf_token: &str,
    request_id: Option<&str>,
    next: Option<&str>,
    error: Option<String>,
    status: StatusCode,
    form_origin: Option<&str>,
) -> Response {
    let html = render(&MfaPage {
        email: &user.email,
        totp: factors.totp,
        passkey: factors.passkey,
        csrf_token,
        request_id,
        next: safe_next(next),
        error,
    });
    let mut r = super::pages::script_page_response(status, html);
    // As on the login page: the code's POST can end in a redirect to the client (a consent
    // given before), and CSP Level 3 checks `form-action` on every redirect after a form
    // submission, so the client's origin is allowed there too.
    if let Some(o) = form_origin {
        let csp = super::pages::script_page_csp().replacen(
            "form-action 'self'",
            &format!("form-action 'self' {o}"),
            1,
        );
        if let Ok(v) = HeaderValue::from_str(&csp) {
            r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    r
}

/// The origin of the client of the parked authorization request `request_id`, if it is live.
async fn request_origin(s: &AppState, request_id: Option<&str>) -> Option<String> {
    let r = s.core.parked_request(request_id?, false).await.ok()??;
    origin_of(&r.redirect_uri)
}

/// `POST /login/mfa`: checks the form (CSRF double-submit with the login cookie), the pending
/// sign-in, then the code (throttled per account); then starts the session and continues
/// where the password step would have.
pub async fn mfa_submit(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    req: Request,
) -> Result<Response, PageError> {
    let headers = req.headers().clone();
    let pairs = form_pairs(req, s.body_limit).await?;
    let request_id = field(&pairs, "request_id");
    let next = field(&pairs, "next");
    let again = || {
        let to = match request_id {
            Some(id) => login_location(id),
            None => "/login".to_string(),
        };
        let mut r = redirect(StatusCode::SEE_OTHER, &to);
        clear_cookie(&mut r, MFA_COOKIE);
        r
    };
    let login_token = cookie(&headers, LOGIN_COOKIE);
    let csrf_ok = match (&login_token, field(&pairs, "csrf_token")) {
        (Some(c), Some(f)) => secret::ct_eq(c.as_bytes(), f.as_bytes()),
        _ => false,
    };
    if !csrf_ok || !secure_enough(&s, &headers) {
        return Ok(again());
    }
    let Some(pending) = cookie(&headers, MFA_COOKIE) else {
        return Ok(again());
    };
    let Some(user) = s.core.pending_sign_in(&pending).await? else {
        return Ok(again());
    };
    let csrf = login_token.unwrap_or_default();
    let factors = Factors::of(&s, &user).await?;
    let code = field(&pairs, "code").unwrap_or("");
    match s
        .core
        .verify_second_factor(&user, code, &Caller { ip })
        .await
    {
        Ok(f) => {
            let amr = format!("{} {}", camgate_core::oidc::AMR_PASSWORD, f.amr());
            let previous = cookie(&headers, SESSION_COOKIE);
            let id = s
                .core
                .start_session(&user, previous.as_deref(), &amr)
                .await?;
            let location = match request_id {
                Some(rid) => consent_location(rid),
                None => safe_next(next).unwrap_or("/dashboard/").to_string(),
            };
            let mut r = redirect(StatusCode::SEE_OTHER, &location);
            set_cookie(
                &mut r,
                SESSION_COOKIE,
                &id,
                s.core.settings.authz.session.absolute_timeout_secs,
                "Lax",
            );
            clear_cookie(&mut r, LOGIN_COOKIE);
            clear_cookie(&mut r, MFA_COOKIE);
            Ok(r)
        }
        Err(MfaError::Invalid) => Ok(form(
            &user,
            factors,
            &csrf,
            request_id,
            next,
            Some(
                "That code is not valid. Check the time on your device, or use a recovery code."
                    .into(),
            ),
            StatusCode::OK,
            request_origin(&s, request_id).await.as_deref(),
        )),
        Err(MfaError::Throttled { retry_after }) => {
            let mut r = form(
                &user,
                factors,
                &csrf,
                request_id,
                next,
                Some(format!(
                    "Too many wrong codes. For your security, try again in {}.",
                    human_wait(retry_after)
                )),
                StatusCode::TOO_MANY_REQUESTS,
                request_origin(&s, request_id).await.as_deref(),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            Ok(r)
        }
        Err(MfaError::Store(e)) => Err(e.into()),
    }
}

/// `GET /login/mfa`: nothing to show without the form's context: back to the sign-in page.
pub async fn mfa_page() -> Response {
    redirect(StatusCode::SEE_OTHER, "/login").into_response()
}

// ---- passkeys at sign-in ------------------------------------------------------------------

/// A JSON error for the page's script (`{"error": message}`).
fn json_error(e: ApiError) -> Response {
    let (status, message) = match &e {
        ApiError::Invalid { message, .. } => (StatusCode::BAD_REQUEST, message.clone()),
        ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
        ApiError::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
        ApiError::Unavailable { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is busy. Please try again in a moment.".to_string(),
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side.".to_string(),
        ),
    };
    (status, Json(json!({"error": message}))).into_response()
}

fn ceremony_json(c: CeremonyStart) -> Response {
    let mut r = Json(json!({"ceremony": c.ceremony, "options": c.options})).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The login form's CSRF double-submit check, for the script's POSTs.
fn login_csrf_ok(headers: &HeaderMap, pairs: &[(String, String)]) -> bool {
    match (cookie(headers, LOGIN_COOKIE), field(pairs, "csrf_token")) {
        (Some(c), Some(f)) => secret::ct_eq(c.as_bytes(), f.as_bytes()),
        _ => false,
    }
}

fn expired_form() -> Response {
    json_error(ApiError::invalid(
        "csrf_token",
        "This sign-in form expired. Reload the page and try again.",
    ))
}

/// Starts the session of a finished sign-in and tells the script where to go.
async fn signed_in(
    s: &AppState,
    headers: &HeaderMap,
    pairs: &[(String, String)],
    user: &User,
    amr: &str,
) -> Result<Response, ApiError> {
    let previous = cookie(headers, SESSION_COOKIE);
    let id = s.core.start_session(user, previous.as_deref(), amr).await?;
    let location = match field(pairs, "request_id") {
        Some(rid) => consent_location(rid),
        None => safe_next(field(pairs, "next"))
            .unwrap_or("/dashboard/")
            .to_string(),
    };
    let mut r = Json(json!({"redirect": location})).into_response();
    set_cookie(
        &mut r,
        SESSION_COOKIE,
        &id,
        s.core.settings.authz.session.absolute_timeout_secs,
        "Lax",
    );
    clear_cookie(&mut r, LOGIN_COOKIE);
    clear_cookie(&mut r, MFA_COOKIE);
    Ok(r)
}

/// `POST /login/passkey/begin`: options for signing in with a passkey alone.
pub async fn passkey_begin(State(s): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let Ok(pairs) = form_pairs(req, s.body_limit).await else {
        return expired_form();
    };
    if !login_csrf_ok(&headers, &pairs) || !secure_enough(&s, &headers) {
        return expired_form();
    }
    match s.core.begin_passkey_sign_in(None).await {
        Ok(c) => ceremony_json(c),
        Err(e) => json_error(e),
    }
}

/// `POST /login/passkey/finish`: the authenticator's answer; signs the user in.
pub async fn passkey_finish(State(s): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let Ok(pairs) = form_pairs(req, s.body_limit).await else {
        return expired_form();
    };
    if !login_csrf_ok(&headers, &pairs) || !secure_enough(&s, &headers) {
        return expired_form();
    }
    let ceremony = field(&pairs, "ceremony").unwrap_or("");
    let credential = field(&pairs, "credential").unwrap_or("");
    let result = async {
        let (user, amr) = s
            .core
            .finish_passkey_sign_in(ceremony, credential, None)
            .await?;
        signed_in(&s, &headers, &pairs, &user, &amr.join(" ")).await
    }
    .await;
    result.unwrap_or_else(json_error)
}

/// `POST /login/mfa/passkey/begin`: options for the second factor of the pending sign-in.
pub async fn mfa_passkey_begin(State(s): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let Ok(pairs) = form_pairs(req, s.body_limit).await else {
        return expired_form();
    };
    if !login_csrf_ok(&headers, &pairs) {
        return expired_form();
    }
    let user = match pending_user(&s, &headers).await {
        Ok(Some(u)) => u,
        Ok(None) => return expired_form(),
        Err(e) => return json_error(e),
    };
    match s.core.begin_passkey_sign_in(Some(&user)).await {
        Ok(c) => ceremony_json(c),
        Err(e) => json_error(e),
    }
}

/// `POST /login/mfa/passkey/finish`: the second factor by passkey; signs the user in.
pub async fn mfa_passkey_finish(State(s): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let Ok(pairs) = form_pairs(req, s.body_limit).await else {
        return expired_form();
    };
    if !login_csrf_ok(&headers, &pairs) || !secure_enough(&s, &headers) {
        return expired_form();
    }
    let result = async {
        let Some(pending) = pending_user(&s, &headers).await? else {
            return Ok(expired_form());
        };
        let (user, amr) = s
            .core
            .finish_passkey_sign_in(
                field(&pairs, "ceremony").unwrap_or(""),
                field(&pairs, "credential").unwrap_or(""),
                Some(pending.id),
            )
            .await?;
        let amr = format!("{} {}", camgate_core::oidc::AMR_PASSWORD, amr.join(" "));
        signed_in(&s, &headers, &pairs, &user, &amr).await
    }
    .await;
    result.unwrap_or_else(json_error)
}

async fn pending_user(s: &AppState, headers: &HeaderMap) -> Result<Option<User>, ApiError> {
    match cookie(headers, MFA_COOKIE) {
        Some(c) => Ok(s.core.pending_sign_in(&c).await?),
        None => Ok(None),
    }
}
