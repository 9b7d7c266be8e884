//! The developer dashboard at `/dashboard/`, where developers manage their OAuth applications
//! and personal access tokens: server-rendered askama pages that work without JavaScript, in
//! the browser session of the login page.
//!
//! - Every page needs a live session (`__Host-camgate_session`); without one the browser is
//!   sent to `/login?next=…` and comes back after signing in. A disabled user's session stops
//!   at the next request (`Core::session` checks the flag).
//! - Every form carries the session's CSRF token (synchronizer token pattern, OWASP CSRF
//!   Prevention Cheat Sheet); a POST without a valid one is refused with 403 before anything
//!   else happens. As defence in depth, a request the browser labels `Sec-Fetch-Site:
//!   cross-site` is refused too (Fetch Metadata, same cheat sheet).
//! - Destructive actions (delete, revoke, rotate, disable, sign out everywhere) have a
//!   confirmation page (GET) whose form POSTs the action — no JavaScript needed.
//! - Secrets (client secrets, personal access tokens) are shown once, in the answer to the
//!   POST that created them, never in a URL; pages are `Cache-Control: no-store`.
//! - Another user's applications, tokens and cameras are "not found" (404), never "forbidden".
//! - Handlers call the same `Core` functions as the API (cameras) and the CLI (PATs, clients).
//!
//! Pages carry the login pages' CSP plus `script-src 'self'` for one small optional script
//! (`/static/dashboard.js`: the copy buttons); without it everything still works.

mod account;
mod admin;
mod apps;
mod authorized;
mod cameras;
mod passkeys;
mod sharing;
mod tokens;
mod two_factor;
mod webhooks;

use askama::Template;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use camgate_core::error::{ApiError, StoreError};
use camgate_core::scope::ScopeSet;
use camgate_core::sessions::{check_csrf, BrowserSession};

use super::pages::{current_session, page_response, redirect, render, MessagePage, PageError};
use super::AppState;

const STYLESHEET: &str = include_str!("../../../static/dashboard.css");
const SCRIPT: &str = include_str!("../../../static/dashboard.js");

/// The dashboard's CSP: the login pages' policy plus our one script file.
pub const DASHBOARD_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Most fields one dashboard form may carry.
const MAX_FORM_FIELDS: usize = 100;

pub fn routes() -> Router<AppState> {
    use axum::routing::post;
    Router::new()
        .route(
            "/dashboard",
            get(|| async { redirect(StatusCode::PERMANENT_REDIRECT, "/dashboard/") }),
        )
        .route("/dashboard/", get(home))
        .route("/static/dashboard.css", get(stylesheet))
        .route("/static/dashboard.js", get(script))
        // Applications (OAuth clients).
        .route("/dashboard/apps/", get(apps::list))
        .route(
            "/dashboard/apps/new",
            get(apps::new_form).post(apps::create),
        )
        .route("/dashboard/apps/{client_id}/", get(apps::show))
        .route(
            "/dashboard/apps/{client_id}/edit",
            get(apps::edit_form).post(apps::update),
        )
        .route(
            "/dashboard/apps/{client_id}/rotate",
            get(apps::rotate_confirm).post(apps::rotate),
        )
        .route(
            "/dashboard/apps/{client_id}/delete",
            get(apps::delete_confirm).post(apps::delete),
        )
        // Personal access tokens.
        .route("/dashboard/tokens/", get(tokens::list))
        .route(
            "/dashboard/tokens/new",
            get(tokens::new_form).post(tokens::create),
        )
        .route(
            "/dashboard/tokens/{id}/revoke",
            get(tokens::revoke_confirm).post(tokens::revoke),
        )
        // Applications the user authorized.
        .route("/dashboard/authorized/", get(authorized::list))
        .route(
            "/dashboard/authorized/{client_id}/revoke",
            get(authorized::revoke_confirm).post(authorized::revoke),
        )
        // Cameras.
        .route("/dashboard/cameras/", get(cameras::list))
        .route(
            "/dashboard/cameras/new",
            get(cameras::new_form).post(cameras::create),
        )
        .route(
            "/dashboard/cameras/{id}/edit",
            get(cameras::edit_form).post(cameras::update),
        )
        .route(
            "/dashboard/cameras/{id}/delete",
            get(cameras::delete_confirm).post(cameras::delete),
        )
        .route(
            "/dashboard/cameras/{id}/unpair",
            get(cameras::unpair_confirm).post(cameras::unpair),
        )
        .route(
            "/dashboard/cameras/{id}/shares/",
            get(sharing::shares).post(sharing::add_share),
        )
        .route(
            "/dashboard/cameras/{id}/shares/{share_id}",
            post(sharing::change_share),
        )
        .route(
            "/dashboard/cameras/{id}/shares/{share_id}/delete",
            get(sharing::end_share_confirm).post(sharing::end_share),
        )
        .route("/dashboard/shared/", get(sharing::shared_with_me))
        .route(
            "/dashboard/customers/",
            get(sharing::customers).post(sharing::add_customer),
        )
        .route(
            "/dashboard/account/dealer/limit",
            post(sharing::limit_dealer),
        )
        .route(
            "/dashboard/account/dealer/revoke",
            get(sharing::revoke_dealer_confirm).post(sharing::revoke_dealer),
        )
        // Webhooks.
        .route(
            "/dashboard/webhooks/",
            get(webhooks::list).post(webhooks::create),
        )
        .route("/dashboard/webhooks/{id}/", get(webhooks::log))
        .route(
            "/dashboard/webhooks/{id}/delete",
            get(webhooks::delete_confirm).post(webhooks::delete),
        )
        .route(
            "/dashboard/webhooks/{id}/deliveries/{delivery_id}/replay",
            post(webhooks::replay),
        )
        // Account.
        .route("/dashboard/account/", get(account::page))
        .route("/dashboard/account/two-factor/", get(two_factor::page))
        .route("/dashboard/account/passkeys/", get(passkeys::page))
        .route("/dashboard/account/passkeys/begin", post(passkeys::begin))
        .route("/dashboard/account/passkeys/finish", post(passkeys::finish))
        .route(
            "/dashboard/account/passkeys/{id}/rename",
            post(passkeys::rename),
        )
        .route(
            "/dashboard/account/passkeys/{id}/delete",
            post(passkeys::remove),
        )
        .route(
            "/dashboard/account/two-factor/setup",
            post(two_factor::setup),
        )
        .route(
            "/dashboard/account/two-factor/confirm",
            post(two_factor::confirm),
        )
        .route(
            "/dashboard/account/two-factor/disable",
            post(two_factor::disable),
        )
        .route(
            "/dashboard/account/password",
            post(account::change_password),
        )
        .route(
            "/dashboard/account/sign-out-everywhere",
            get(account::sign_out_confirm).post(account::sign_out_everywhere),
        )
        // Administration.
        .route(
            "/dashboard/admin/users/",
            get(admin::users).post(admin::create_user),
        )
        .route(
            "/dashboard/admin/users/{id}/disable",
            get(admin::disable_confirm).post(admin::disable),
        )
        .route(
            "/dashboard/admin/users/{id}/enable",
            get(admin::enable_confirm).post(admin::enable),
        )
        .route("/dashboard/{*rest}", get(not_found).post(not_found))
}

async fn stylesheet() -> Response {
    static_file(STYLESHEET, "text/css; charset=utf-8")
}

async fn script() -> Response {
    static_file(SCRIPT, "text/javascript; charset=utf-8")
}

fn static_file(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

async fn not_found(_d: Dash) -> DashError {
    DashError::not_found()
}

// ---- the session

/// A signed-in dashboard user. Without a live session the request is answered with a
/// redirect to the login page, which comes back here afterwards.
pub struct Dash(pub BrowserSession);

impl FromRequestParts<AppState> for Dash {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match current_session(state, &parts.headers).await {
            Ok(Some(sess)) => Ok(Dash(sess)),
            Ok(None) => {
                // Come back to the page asked for (a GET), or to the dashboard.
                let next = match parts.method {
                    Method::GET => parts
                        .uri
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("/dashboard/"),
                    _ => "/dashboard/",
                };
                let q = form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", next)
                    .finish();
                Err(redirect(StatusCode::SEE_OTHER, &format!("/login?{q}")))
            }
            Err(e) => Err(DashError::from(e).into_response()),
        }
    }
}

impl Dash {
    pub fn user(&self) -> &camgate_core::model::User {
        &self.0.user
    }

    /// What the layout needs: who is signed in, the section, the sign-out token, a notice.
    pub fn nav(&self, section: &'static str, notice: Option<&'static str>) -> Nav {
        Nav {
            email: self.0.user.email.clone(),
            is_admin: self.0.user.is_admin,
            is_dealer: self.0.user.is_dealer,
            csrf: self.0.csrf_token.clone(),
            section,
            notice,
        }
    }
}

/// The layout's data, part of every dashboard template.
pub struct Nav {
    pub email: String,
    pub is_admin: bool,
    pub is_dealer: bool,
    pub csrf: String,
    pub section: &'static str,
    pub notice: Option<&'static str>,
}

// ---- forms

/// A submitted form, CSRF-checked.
pub struct Form(Vec<(String, String)>);

impl Form {
    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Every value of `name` (checkbox groups).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn checked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

/// Reads a form POSTed from a dashboard page and checks its CSRF token (OWASP CSRF Prevention
/// Cheat Sheet: synchronizer token; Fetch Metadata as defence in depth). Refusals are 403.
pub async fn read_form(s: &AppState, d: &Dash, req: Request) -> Result<Form, DashError> {
    let forbidden = || {
        DashError::new(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "The form was not sent from this page, or it is too old. Go back, reload the page \
             and try again.",
        )
    };
    let cross_site = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"));
    if cross_site {
        return Err(forbidden());
    }
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(DashError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Something is wrong",
            "Send this form as application/x-www-form-urlencoded.",
        ));
    }
    let body = axum::body::to_bytes(req.into_body(), s.body_limit)
        .await
        .map_err(|_| {
            DashError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Something is wrong",
                "The form is too large.",
            )
        })?;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .take(MAX_FORM_FIELDS)
        .collect();
    let form = Form(pairs);
    if !check_csrf(&d.0.id, form.get("csrf_token")) {
        return Err(forbidden());
    }
    Ok(form)
}

/// A form's error, shown beside the field it concerns (or above the form when it concerns
/// none of the fields shown).
#[derive(Debug, Default)]
pub struct Errs {
    field: Option<String>,
    message: Option<String>,
}

impl Errs {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_string()),
            message: Some(message.into()),
        }
    }

    /// Maps a core error onto a form whose fields are `fields`; anything that is not a
    /// validation error goes back to the caller as a page error.
    pub fn from_api(e: ApiError, fields: &[&str]) -> Result<Self, DashError> {
        match e {
            ApiError::Invalid { field, message } => Ok(match field {
                Some(f) if fields.contains(&f.as_str()) => Self {
                    message: Some(humane(&f, &message)),
                    field: Some(f),
                },
                _ => Self {
                    field: None,
                    message: Some(message),
                },
            }),
            ApiError::Conflict(message) => Ok(Self {
                field: fields.first().map(|f| f.to_string()),
                message: Some(message),
            }),
            other => Err(other.into()),
        }
    }

    /// The message for `field`, if the error concerns it.
    pub fn get(&self, field: &str) -> Option<&str> {
        match (&self.field, &self.message) {
            (Some(f), Some(m)) if f == field => Some(m),
            _ => None,
        }
    }

    /// A message that concerns no particular field.
    pub fn general(&self) -> Option<&str> {
        match (&self.field, &self.message) {
            (None, Some(m)) => Some(m),
            _ => None,
        }
    }

    pub fn any(&self) -> bool {
        self.message.is_some()
    }
}

/// Core messages name fields and values in backticks (API style). Beside a form field,
/// "`streams` must be …" reads "Must be …", and other quoted values get typographic quotes.
pub fn humane(field: &str, message: &str) -> String {
    let prefix = format!("`{field}` ");
    let m = match message.strip_prefix(&prefix) {
        Some(rest) => {
            let mut c = rest.chars();
            match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        }
        None => message.to_string(),
    };
    let mut out = String::with_capacity(m.len());
    let mut open = true;
    for ch in m.chars() {
        if ch == '`' {
            out.push(if open { '“' } else { '”' });
            open = !open;
        } else {
            out.push(ch);
        }
    }
    out
}

// ---- rendering

/// A dashboard page with the page headers and the dashboard's CSP.
pub fn html<T: Template>(status: StatusCode, t: &T) -> Response {
    let mut r = page_response(status, render(t), None);
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DASHBOARD_CSP),
    );
    r
}

pub fn ok<T: Template>(t: &T) -> Response {
    html(StatusCode::OK, t)
}

/// `303 See Other` to `path` with a notice key (a fixed message; nothing the user typed is
/// reflected).
pub fn done(path: &str, notice: &str) -> Response {
    redirect(StatusCode::SEE_OTHER, &format!("{path}?notice={notice}"))
}

/// The fixed notices a redirect may name.
pub fn notice(key: Option<&str>) -> Option<&'static str> {
    Some(match key? {
        "app-saved" => "Application saved.",
        "app-deleted" => "Application deleted. Its tokens no longer work.",
        "token-revoked" => "Token revoked. It no longer works.",
        "app-revoked" => "Access revoked. The application's tokens no longer work.",
        "camera-added" => "Camera added.",
        "camera-saved" => "Camera saved.",
        "camera-deleted" => "Camera deleted.",
        "camera-unpaired" => "Device unpaired: its tokens no longer work.",
        "password-changed" => {
            "Password changed. Your other sessions, tokens and app authorizations have ended."
        }
        "user-created" => "User created.",
        "user-disabled" => "User disabled. Their tokens and sessions no longer work.",
        "user-enabled" => "User enabled.",
        "two-factor-setup" => {
            "Scan the code with your authenticator app, then enter the code it shows."
        }
        "two-factor-off" => "Two-factor sign-in is off.",
        "passkey-added" => "Passkey added.",
        "passkey-renamed" => "Passkey renamed.",
        "passkey-removed" => "Passkey removed.",
        "share-added" => "Camera shared.",
        "share-changed" => "Permission changed.",
        "share-ended" => "Sharing stopped. They no longer see the camera.",
        "customer-created" => "Customer account created.",
        "dealer-limited" => "Your dealer's access is now limited to reading.",
        "dealer-revoked" => "Your dealer's access is revoked.",
        "webhook-deleted" => "Webhook deleted. Nothing more is sent to it.",
        "delivery-replayed" => "Delivery queued: it is sent again now.",
        _ => return None,
    })
}

#[derive(Debug, serde::Deserialize, Default)]
pub struct NoticeQuery {
    pub notice: Option<String>,
    pub offset: Option<String>,
}

impl NoticeQuery {
    pub fn notice(&self) -> Option<&'static str> {
        notice(self.notice.as_deref())
    }

    pub fn offset(&self) -> i64 {
        self.offset
            .as_deref()
            .and_then(|o| o.parse::<i64>().ok())
            .filter(|o| *o >= 0)
            .unwrap_or(0)
    }
}

/// The generic confirmation page of a destructive action: a GET shows it, its form POSTs.
#[derive(Template)]
#[template(path = "dashboard/confirm.html")]
pub struct ConfirmPage {
    pub nav: Nav,
    pub title: String,
    pub message: String,
    pub consequences: Vec<String>,
    pub action: String,
    pub button: &'static str,
    pub cancel: String,
    pub danger: bool,
}

pub fn confirm(d: &Dash, section: &'static str, c: Confirm) -> Response {
    ok(&ConfirmPage {
        nav: d.nav(section, None),
        title: c.title,
        message: c.message,
        consequences: c.consequences,
        action: c.action,
        button: c.button,
        cancel: c.cancel,
        danger: c.danger,
    })
}

pub struct Confirm {
    pub title: String,
    pub message: String,
    pub consequences: Vec<String>,
    pub action: String,
    pub button: &'static str,
    pub cancel: String,
    pub danger: bool,
}

// ---- errors

/// An error page in the dashboard (the login pages' message layout, with a way back).
#[derive(Debug)]
pub struct DashError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

impl DashError {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            title,
            message: message.into(),
        }
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing here, or it belongs to someone else.",
        )
    }
}

impl From<ApiError> for DashError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::NotFound => Self::not_found(),
            ApiError::Forbidden(m) => Self::new(StatusCode::FORBIDDEN, "Not allowed", m),
            ApiError::Invalid { message, .. } => {
                Self::new(StatusCode::BAD_REQUEST, "Something is wrong", message)
            }
            ApiError::Conflict(m) => Self::new(StatusCode::CONFLICT, "Something is wrong", m),
            ApiError::Unauthenticated(m) => {
                Self::new(StatusCode::UNAUTHORIZED, "Please sign in", m)
            }
            ApiError::InsufficientScope(_) => {
                Self::new(StatusCode::FORBIDDEN, "Not allowed", "You may not do this.")
            }
            ApiError::Unavailable { .. } => Self::from(PageError::unavailable()),
            ApiError::TooManyRequests { .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Slow down",
                "Too many requests; try again in a minute.",
            ),
            ApiError::Internal => Self::from(PageError::internal()),
        }
    }
}

impl From<StoreError> for DashError {
    fn from(e: StoreError) -> Self {
        PageError::from(e).into()
    }
}

impl From<PageError> for DashError {
    fn from(e: PageError) -> Self {
        Self {
            status: e.status,
            title: e.title,
            message: e.message,
        }
    }
}

impl IntoResponse for DashError {
    fn into_response(self) -> Response {
        let html = render(&MessagePage {
            title: self.title,
            message: &self.message,
            is_error: true,
            hint: None,
            signout_csrf: None,
            request_id: None,
            link: Some(("/dashboard/".to_string(), "Back to your dashboard")),
        });
        let mut r = page_response(self.status, html, None);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(5));
        }
        r
    }
}

pub type Res = Result<Response, DashError>;

// ---- formatting helpers for the templates

/// "3 minutes ago", "in 30 days", or a date for anything over a month away.
pub fn ago(now: i64, t: i64) -> String {
    let d = now - t;
    let (future, d) = if d < 0 { (true, -d) } else { (false, d) };
    let unit = |n: i64, one: &str| {
        let s = if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        };
        if future {
            format!("in {s}")
        } else {
            format!("{s} ago")
        }
    };
    match d {
        0..=59 if !future => "just now".into(),
        0..=59 => "in under a minute".into(),
        60..=3599 => unit(d / 60, "minute"),
        3600..=86_399 => unit(d / 3600, "hour"),
        86_400..=2_678_399 => unit(d / 86_400, "day"),
        _ => date(t),
    }
}

/// A length of time in words: "45 seconds", "10 minutes", "1 hour", "3 days".
pub fn duration(secs: i64) -> String {
    let (n, unit) = match secs {
        s if s < 60 => (s, "second"),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s => (s / 86_400, "day"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// A UTC date and time for `title` attributes and tables.
pub fn date(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// A timestamp as the templates show it: relative text with the exact time on hover.
pub struct When {
    pub text: String,
    pub exact: String,
    pub iso: String,
}

pub fn when(now: i64, t: i64) -> When {
    When {
        text: ago(now, t),
        exact: date(t),
        iso: super::iso(t),
    }
}

/// `read`, `write` as badges.
pub fn scope_names(s: ScopeSet) -> Vec<&'static str> {
    let mut v = Vec::new();
    if s.read {
        v.push("read");
    }
    if s.write {
        v.push("write");
    }
    v
}

/// The base URL for the "how to use it" snippets.
pub fn base(s: &AppState, headers: &HeaderMap) -> String {
    super::base_url(s, headers)
}

// ---- the overview

#[derive(Template)]
#[template(path = "dashboard/home.html")]
struct HomePage {
    nav: Nav,
    name: String,
    apps: usize,
    tokens: usize,
    authorized: usize,
    cameras: i64,
    base: String,
}

async fn home(
    State(s): State<AppState>,
    headers: HeaderMap,
    d: Dash,
    axum::extract::Query(q): axum::extract::Query<NoticeQuery>,
) -> Res {
    let uid = d.user().id;
    let apps = s.core.my_apps(uid).await?.len();
    let tokens = s.core.my_pats(uid).await?.len();
    let authorized = s.core.authorized_apps(uid).await?.len();
    let page = camgate_core::cameras::Page {
        limit: 1,
        offset: 0,
        after: None,
    };
    let (cameras, _) = s.core.list_cameras(uid, page).await?;
    let u = d.user();
    let name = format!("{} {}", u.first_name, u.last_name)
        .trim()
        .to_string();
    Ok(ok(&HomePage {
        nav: d.nav("home", q.notice()),
        name: if name.is_empty() {
            u.email.clone()
        } else {
            name
        },
        apps,
        tokens,
        authorized,
        cameras,
        base: base(&s, &headers),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times() {
        assert_eq!(ago(1000, 1000), "just now");
        assert_eq!(ago(1000, 1000 - 60), "1 minute ago");
        assert_eq!(ago(10_000, 10_000 - 7200), "2 hours ago");
        assert_eq!(ago(0, 30 * 86_400), "in 30 days");
        assert_eq!(ago(100 * 86_400, 0), "1970-01-01 00:00 UTC");
        assert_eq!(duration(3600), "1 hour");
        assert_eq!(duration(2 * 86_400 + 5), "2 days");
        assert_eq!(duration(30), "30 seconds");
    }

    #[test]
    fn messages_read_well_beside_their_field() {
        assert_eq!(
            humane(
                "streams",
                "`streams` must be an absolute http(s)/rtsp/rtmp URL."
            ),
            "Must be an absolute http(s)/rtsp/rtmp URL."
        );
        assert_eq!(
            humane(
                "redirect_uris",
                "`http://a.example/cb`: plain http is allowed only on a loopback host."
            ),
            "“http://a.example/cb”: plain http is allowed only on a loopback host."
        );
        assert_eq!(humane("name", "Choose a name."), "Choose a name.");
    }

    #[test]
    fn notices_are_fixed_strings() {
        assert_eq!(
            notice(Some("token-revoked")),
            Some("Token revoked. It no longer works.")
        );
        assert_eq!(notice(Some("<script>")), None);
        assert_eq!(notice(None), None);
    }
}
