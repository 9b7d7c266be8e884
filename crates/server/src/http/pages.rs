//! Browser pages: `/login`, `/logout`, the message and error pages, the stylesheet, and the
//! plumbing the approval screen shares with them (askama templates, escaped by default;
//! cookies; page headers).
//!
//! Every page carries `X-Frame-Options: DENY`, a CSP with `frame-ancestors 'none'` and no
//! script source at all, `Referrer-Policy: no-referrer` and `Cache-Control: no-store`. Forms
//! carry a CSRF token: the login form a double-submit cookie (there is no session yet), the
//! others a token derived from the session id.
//!
//! The session cookie is `__Host-camgate_session`: Secure, HttpOnly, SameSite=Lax, Path=/, no
//! Domain. It is always Secure; browsers treat http://127.0.0.1 and http://localhost as secure
//! contexts, which is how plain http works for development on loopback — and only there: on
//! any other host the login form refuses to work over plain http.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use camgate_core::oauth::Caller;
use camgate_core::secret::{self, TokenFormat};
use camgate_core::sessions::{check_csrf, BrowserSession, SignInError};
use camgate_core::throttle::human_wait;

use super::auth::ClientIp;
use super::{base_url, AppState};

pub const SESSION_COOKIE: &str = "__Host-camgate_session";
/// The login form's double-submit CSRF cookie.
pub const LOGIN_COOKIE: &str = "__Host-camgate_login";

const STYLESHEET: &str = include_str!("../../static/camgate.css");

// ---- templates

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub app_name: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub csrf_token: &'a str,
    pub email: &'a str,
    pub error: Option<String>,
    /// A dashboard page to go to after signing in.
    pub next: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub app_name: &'a str,
    pub app_initial: String,
    pub owner: Option<String>,
    pub user_email: &'a str,
    pub scopes: Vec<(&'static str, &'static str)>,
    pub redirect_host: String,
    pub request_id: &'a str,
    pub csrf_token: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub is_error: bool,
    pub hint: Option<&'a str>,
    pub signout_csrf: Option<&'a str>,
    /// A parked authorization request to come back to after signing out.
    pub request_id: Option<&'a str>,
    pub link: Option<(String, &'a str)>,
}

/// Renders a template; a rendering failure (a bug) is logged and shown as a plain error.
pub fn render<T: Template>(t: &T) -> String {
    t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "template rendering failed");
        "<!doctype html><title>Error</title><p>Internal server error.</p>".into()
    })
}

/// The CSP of a page. No scripts at all; our stylesheet only; forms post to us. When a form
/// submission can end in a redirect to the client (login or approval), the client's origin is
/// added to `form-action`: CSP Level 3 checks `form-action` on every redirect after a form
/// submission, and Chromium enforces it.
pub fn page_csp(form_origin: Option<&str>) -> String {
    let mut form_action = "'self'".to_string();
    if let Some(o) = form_origin {
        form_action.push(' ');
        form_action.push_str(o);
    }
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The sign-in pages' policy: as [`page_csp`], plus this server's own script (passkeys) and
/// its `fetch` calls back here.
pub fn script_page_csp() -> String {
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        .to_string()
}

/// A page with [`script_page_csp`].
pub fn script_page_response(status: StatusCode, html: String) -> Response {
    let mut r = page_response(status, html, None);
    if let Ok(v) = HeaderValue::from_str(&script_page_csp()) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

/// `GET /static/passkeys.js`.
pub async fn passkeys_script() -> Response {
    let mut r = PASSKEYS_JS.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

const PASSKEYS_JS: &str = include_str!("../../static/passkeys.js");

/// An HTML page with the page headers.
pub fn page_response(status: StatusCode, html: String, form_origin: Option<&str>) -> Response {
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&page_csp(form_origin)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// The serialised origin of an absolute URL (`https://app.example:8443`), for CSP.
pub fn origin_of(uri: &str) -> Option<String> {
    let u = url::Url::parse(uri).ok()?;
    match u.origin() {
        o @ url::Origin::Tuple(..) => Some(o.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// A page-shaped error: a status, a title and a message for a person.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
    /// What the person can do about it.
    pub hint: Option<&'static str>,
}

impl PageError {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            title,
            message: message.into(),
            hint: None,
        }
    }
    pub fn with_hint(mut self, hint: &'static str) -> Self {
        self.hint = Some(hint);
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Something is wrong", message)
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Something went wrong on our side. Please try again later.",
        )
    }
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again",
            "The service is busy. Please try again in a moment.",
        )
    }
    pub fn expired_request() -> Self {
        Self::bad_request(
            "This sign-in request has expired or was already used. Go back to the application \
             and start again.",
        )
    }
}

impl From<camgate_core::error::StoreError> for PageError {
    fn from(e: camgate_core::error::StoreError) -> Self {
        match e {
            camgate_core::error::StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "storage unavailable");
                Self::unavailable()
            }
            _ => {
                tracing::error!(error = %e, "storage error");
                Self::internal()
            }
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let html = render(&MessagePage {
            title: self.title,
            message: &self.message,
            is_error: true,
            hint: self.hint,
            signout_csrf: None,
            request_id: None,
            link: None,
        });
        let mut r = page_response(self.status, html, None);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(5));
        }
        r
    }
}

// ---- cookies and forms

/// The value of cookie `name`, from any `Cookie` header.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 256)
}

/// `Set-Cookie` for a `__Host-` cookie (RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain).
pub fn set_cookie(r: &mut Response, name: &str, value: &str, max_age: i64, same_site: &str) {
    let c = format!(
        "{name}={value}; Path=/; Secure; HttpOnly; SameSite={same_site}; Max-Age={max_age}"
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub fn clear_cookie(r: &mut Response, name: &str) {
    set_cookie(r, name, "", 0, "Lax");
}

/// A `303 See Other` (the answer to a form POST) or `302 Found`.
pub fn redirect(status: StatusCode, location: &str) -> Response {
    let mut r = status.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Reads an `application/x-www-form-urlencoded` body under the limit.
pub async fn form_pairs(req: Request, limit: usize) -> Result<Vec<(String, String)>, PageError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(PageError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Something is wrong",
            "Send this form as application/x-www-form-urlencoded.",
        ));
    }
    let body: Bytes = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| {
            PageError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Something is wrong",
                "The form is too large.",
            )
        })?;
    Ok(form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .take(32)
        .collect())
}

pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The live browser session, if the request carries one.
pub async fn current_session(
    s: &AppState,
    headers: &HeaderMap,
) -> Result<Option<BrowserSession>, PageError> {
    match cookie(headers, SESSION_COOKIE) {
        Some(id) => Ok(s.core.session(&id).await?),
        None => Ok(None),
    }
}

/// Whether a login may happen over this connection: https (issuer or a proxy's
/// `X-Forwarded-Proto`), or plain http on a loopback host (development).
pub fn secure_enough(s: &AppState, headers: &HeaderMap) -> bool {
    let base = base_url(s, headers);
    if base.starts_with("https://") {
        return true;
    }
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if forwarded_https {
        return true;
    }
    match url::Url::parse(&base).ok().as_ref().and_then(|u| u.host()) {
        Some(url::Host::Domain(d)) => d == "localhost" || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `/consent?request_id=…` (where a parked request resumes).
pub fn consent_location(request_id: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("request_id", request_id)
        .finish();
    format!("/consent?{q}")
}

pub fn login_location(request_id: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("request_id", request_id)
        .finish();
    format!("/login?{q}")
}

// ---- handlers

/// The stylesheet (pages allow `style-src 'self'` and nothing inline).
pub async fn stylesheet() -> Response {
    let mut r = STYLESHEET.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

#[derive(Debug, Deserialize, Default)]
pub struct RequestQuery {
    pub request_id: Option<String>,
    /// Where to go after signing in (a dashboard path; see [`safe_next`]).
    pub next: Option<String>,
}

/// A `next` location we will redirect to after login: a path on the dashboard or the device
/// page, nothing else
/// (OWASP Unvalidated Redirects and Forwards Cheat Sheet: allow-list the destinations). No
/// scheme, no `//` (protocol-relative), no backslash, no control characters.
pub fn safe_next(next: Option<&str>) -> Option<&str> {
    next.filter(|n| {
        n.len() <= 512
            && (n.starts_with("/dashboard/") || *n == "/device" || n.starts_with("/device?"))
            && !n.contains("//")
            && !n.contains('\\')
            && n.bytes().all(|b| b.is_ascii_graphic())
    })
}

struct LoginForm<'a> {
    request: Option<(&'a str, camgate_core::authorize::ValidRequest)>,
    email: &'a str,
    error: Option<String>,
    status: StatusCode,
    /// A reusable double-submit value the browser already holds.
    existing_token: Option<String>,
    next: Option<&'a str>,
}

fn login_form(f: LoginForm<'_>) -> Response {
    let token = f
        .existing_token
        .filter(|t| t.len() >= 32 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .unwrap_or_else(|| secret::generate(TokenFormat::Prefixed("cgl_")));
    let (request_id, app_name, origin) = match &f.request {
        Some((id, req)) => (
            Some(*id),
            Some(req.client.name.as_str()),
            origin_of(&req.redirect_uri),
        ),
        None => (None, None, None),
    };
    let html = render(&LoginPage {
        app_name,
        request_id,
        csrf_token: &token,
        email: f.email,
        error: f.error,
        next: safe_next(f.next),
    });
    let mut r = page_response(f.status, html, origin.as_deref());
    // The passkey button's script and its calls back here.
    let csp = page_csp(origin.as_deref()).replacen(
        "default-src 'none'; ",
        "default-src 'none'; script-src 'self'; connect-src 'self'; ",
        1,
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    set_cookie(&mut r, LOGIN_COOKIE, &token, 3600, "Strict");
    r
}

/// Loads the parked request named by `request_id`, if it is still live.
async fn parked<'a>(
    s: &AppState,
    id: Option<&'a str>,
) -> Result<Option<(&'a str, camgate_core::authorize::ValidRequest)>, PageError> {
    let Some(id) = id else { return Ok(None) };
    match s.core.parked_request(id, false).await {
        Ok(Some(r)) => Ok(Some((id, r))),
        Ok(None) => Ok(None),
        Err(camgate_core::authorize::AuthorizeError::Page { status, message }) => {
            Err(PageError::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                "Something is wrong",
                message,
            ))
        }
        Err(camgate_core::authorize::AuthorizeError::Redirect(_)) => Err(PageError::internal()),
    }
}

/// `GET /login`: the sign-in form; with a live session, where the user was going.
pub async fn login_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<RequestQuery>,
) -> Result<Response, PageError> {
    let request = parked(&s, q.request_id.as_deref()).await?;
    if let Some(sess) = current_session(&s, &headers).await? {
        match &request {
            // prompt=login asks for a fresh sign-in even with a session, as does a max_age
            // the session is older than (OIDC Core §3.1.2.1).
            Some((id, req)) if req.session_satisfies(sess.created_at, s.core.now()) => {
                return Ok(redirect(StatusCode::SEE_OTHER, &consent_location(id)));
            }
            Some(_) => {}
            None => match safe_next(q.next.as_deref()) {
                Some(next) => return Ok(redirect(StatusCode::SEE_OTHER, next)),
                None => return Ok(signed_in_page(&sess)),
            },
        }
    }
    // OIDC Core §3.1.2.1 login_hint: only pre-fills the (escaped) email field.
    let hint = request
        .as_ref()
        .and_then(|(_, r)| r.login_hint.clone())
        .unwrap_or_default();
    Ok(login_form(LoginForm {
        request,
        email: &hint,
        error: None,
        status: StatusCode::OK,
        existing_token: cookie(&headers, LOGIN_COOKIE),
        next: q.next.as_deref(),
    }))
}

fn signed_in_page(sess: &BrowserSession) -> Response {
    let message = format!("You are signed in as {}.", sess.user.email);
    let html = render(&MessagePage {
        title: "You are signed in",
        message: &message,
        is_error: false,
        hint: Some("You can close this window, or sign out below."),
        signout_csrf: Some(&sess.csrf_token),
        request_id: None,
        link: Some(("/dashboard/".to_string(), "Open your dashboard")),
    });
    page_response(StatusCode::OK, html, None)
}

/// `POST /login`: checks the form's CSRF token, then the credentials (throttled), then starts
/// a fresh session and resumes the parked authorization request, if any.
pub async fn login_submit(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    req: Request,
) -> Result<Response, PageError> {
    let headers = req.headers().clone();
    let pairs = form_pairs(req, s.body_limit).await?;
    let email = field(&pairs, "email").unwrap_or("");
    let password = field(&pairs, "password").unwrap_or("");
    let request = parked(&s, field(&pairs, "request_id")).await?;
    let next = field(&pairs, "next");
    let cookie_token = cookie(&headers, LOGIN_COOKIE);
    let csrf_ok = match (&cookie_token, field(&pairs, "csrf_token")) {
        (Some(c), Some(f)) => secret::ct_eq(c.as_bytes(), f.as_bytes()),
        _ => false,
    };
    if !csrf_ok {
        return Ok(login_form(LoginForm {
            request,
            email,
            error: Some("Your sign-in form expired. Please try again.".into()),
            status: StatusCode::BAD_REQUEST,
            existing_token: None,
            next,
        }));
    }
    if !secure_enough(&s, &headers) {
        return Err(PageError::bad_request(
            "Signing in needs a secure (HTTPS) connection. Plain http works only on this \
             computer's loopback address, for development.",
        ));
    }
    let user = match s.core.sign_in(email, password, &Caller { ip }).await {
        Ok(u) => u,
        Err(SignInError::Invalid) => {
            return Ok(login_form(LoginForm {
                request,
                email,
                error: Some("The email address or password is incorrect.".into()),
                status: StatusCode::OK,
                existing_token: cookie_token,
                next,
            }))
        }
        Err(SignInError::Throttled { retry_after }) => {
            let mut r = login_form(LoginForm {
                request,
                email,
                error: Some(format!(
                    "Too many failed sign-in attempts. For your security, signing in is paused \
                     for this account or network. Try again in {}.",
                    human_wait(retry_after)
                )),
                status: StatusCode::TOO_MANY_REQUESTS,
                existing_token: cookie_token,
                next,
            });
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return Ok(r);
        }
        Err(SignInError::Unavailable { .. }) => return Err(PageError::unavailable()),
        Err(SignInError::Internal) => return Err(PageError::internal()),
    };
    // A second factor: ask for it before any session exists.
    if s.core.has_second_factor(user.id).await? {
        let token = cookie_token.unwrap_or_default();
        let rid = request.as_ref().map(|(id, _)| *id);
        let factors = super::mfa::Factors::of(&s, &user).await?;
        let origin = request
            .as_ref()
            .and_then(|(_, r)| origin_of(&r.redirect_uri));
        return super::mfa::ask_second_factor(
            &s,
            &user,
            factors,
            &token,
            rid,
            next,
            origin.as_deref(),
        );
    }
    let previous = cookie(&headers, SESSION_COOKIE);
    let id = s
        .core
        .start_session(&user, previous.as_deref(), camgate_core::oidc::AMR_PASSWORD)
        .await?;
    let location = match &request {
        Some((rid, _)) => consent_location(rid),
        // Without a parked request: where the dashboard sent us, else the dashboard.
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
    Ok(r)
}

/// `GET /logout`: asks for confirmation (a sign-out is a state change: POST with CSRF token).
pub async fn logout_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<RequestQuery>,
) -> Result<Response, PageError> {
    let Some(sess) = current_session(&s, &headers).await? else {
        return Ok(signed_out_page(q.request_id.as_deref()));
    };
    let message = format!("You are signed in as {}.", sess.user.email);
    let html = render(&MessagePage {
        title: "Sign out?",
        message: &message,
        is_error: false,
        hint: Some("Signing out ends your session on this device."),
        signout_csrf: Some(&sess.csrf_token),
        request_id: q.request_id.as_deref(),
        link: q
            .request_id
            .as_deref()
            .map(|id| (consent_location(id), "Cancel and go back")),
    });
    Ok(page_response(StatusCode::OK, html, None))
}

fn signed_out_page(request_id: Option<&str>) -> Response {
    let html = render(&MessagePage {
        title: "You are signed out",
        message: "Your session has ended.",
        is_error: false,
        hint: None,
        signout_csrf: None,
        request_id: None,
        link: Some(match request_id {
            Some(id) => (login_location(id), "Sign in with another account"),
            None => ("/login".to_string(), "Sign in again"),
        }),
    });
    let mut r = page_response(StatusCode::OK, html, None);
    clear_cookie(&mut r, SESSION_COOKIE);
    r
}

/// `POST /logout`: ends the session.
pub async fn logout_submit(
    State(s): State<AppState>,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, PageError> {
    let pairs = form_pairs(req, s.body_limit).await?;
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        let token = field(&pairs, "csrf_token").unwrap_or("");
        if !check_csrf(&id, token) {
            return Err(PageError::bad_request(
                "This form has expired. Go back, reload the page and try again.",
            ));
        }
        s.core.end_session(&id).await?;
    }
    Ok(signed_out_page(field(&pairs, "request_id")))
}
