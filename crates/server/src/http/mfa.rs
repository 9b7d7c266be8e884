//! The second sign-in step (`POST /login/mfa`): after the password, a user with a second factor
//! gives a TOTP or recovery code. Between the two steps the browser holds only a sealed,
//! five-minute `__Host-camgate_mfa` cookie naming the user (`core::mfa`); the session starts
//! once the code is right, recording both factors (`amr`: `pwd otp`).

use askama::Template;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use camgate_core::mfa::{MfaError, PENDING_TTL_SECS};
use camgate_core::model::User;
use camgate_core::oauth::Caller;
use camgate_core::secret;
use camgate_core::throttle::human_wait;

use super::auth::ClientIp;
use super::pages::{
    clear_cookie, consent_location, cookie, field, form_pairs, login_location, page_response,
    redirect, render, safe_next, secure_enough, set_cookie, PageError, LOGIN_COOKIE,
    SESSION_COOKIE,
};
use super::AppState;

/// The pending sign-in between the password and the second factor.
pub const MFA_COOKIE: &str = "__Host-camgate_mfa";

#[derive(Template)]
#[template(path = "login_mfa.html")]
struct MfaPage<'a> {
    email: &'a str,
    csrf_token: &'a str,
    request_id: Option<&'a str>,
    next: Option<&'a str>,
    error: Option<String>,
}

/// After a right password for a user with a second factor: the code form, and the pending
/// sign-in cookie. `csrf_token`: the login form's double-submit value (its cookie stays).
pub fn ask_second_factor(
    s: &AppState,
    user: &User,
    csrf_token: &str,
    request_id: Option<&str>,
    next: Option<&str>,
) -> Result<Response, PageError> {
    let sealed = s
        .core
        .seal_pending_sign_in(user)
        .ok_or_else(PageError::internal)?;
    let mut r = form(user, csrf_token, request_id, next, None, StatusCode::OK);
    set_cookie(&mut r, MFA_COOKIE, &sealed, PENDING_TTL_SECS, "Lax");
    Ok(r)
}

fn form(
    user: &User,
    csrf_token: &str,
    request_id: Option<&str>,
    next: Option<&str>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let html = render(&MfaPage {
        email: &user.email,
        csrf_token,
        request_id,
        next: safe_next(next),
        error,
    });
    page_response(status, html, None)
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
            &csrf,
            request_id,
            next,
            Some(
                "That code is not valid. Check the time on your device, or use a recovery code."
                    .into(),
            ),
            StatusCode::OK,
        )),
        Err(MfaError::Throttled { retry_after }) => {
            let mut r = form(
                &user,
                &csrf,
                request_id,
                next,
                Some(format!(
                    "Too many wrong codes. For your security, try again in {}.",
                    human_wait(retry_after)
                )),
                StatusCode::TOO_MANY_REQUESTS,
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
