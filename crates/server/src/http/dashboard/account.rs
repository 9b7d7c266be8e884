//! The account page: who is signed in, changing the password (current password required; all
//! other sessions, tokens and app authorizations end: OWASP ASVS 4.0.3 V2.1.6, V3.3.3) and
//! signing out everywhere (every browser session of the user, this one included).

use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use camgate_core::oauth::Caller;

use super::{
    confirm, done, html, ok, read_form, when, Confirm, Dash, Errs, Nav, NoticeQuery, Res, When,
};
use crate::http::auth::ClientIp;
use crate::http::pages::{
    clear_cookie, page_response, render, set_cookie, MessagePage, SESSION_COOKIE,
};
use crate::http::AppState;

const FIELDS: &[&str] = &["current_password", "new_password", "confirm_password"];

#[derive(Template)]
#[template(path = "dashboard/account.html")]
struct AccountPage {
    nav: Nav,
    email: String,
    name: String,
    phone: String,
    is_admin: bool,
    since: When,
    errors: Errs,
    managed_by: Option<super::sharing::ManagedBy>,
}

async fn account_page(
    s: &AppState,
    d: &Dash,
    notice: Option<&'static str>,
    errors: Errs,
) -> Result<AccountPage, super::DashError> {
    let u = d.user();
    let managed_by = super::sharing::managed_by(s, u).await?;
    Ok(AccountPage {
        managed_by,
        nav: d.nav("account", notice),
        email: u.email.clone(),
        name: format!("{} {}", u.first_name, u.last_name)
            .trim()
            .to_string(),
        phone: u.phone.clone(),
        is_admin: u.is_admin,
        since: when(s.core.now(), u.created_at),
        errors,
    })
}

pub async fn page(State(s): State<AppState>, d: Dash, Query(q): Query<NoticeQuery>) -> Res {
    Ok(ok(&account_page(&s, &d, q.notice(), Errs::none()).await?))
}

pub async fn change_password(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    d: Dash,
    req: Request,
) -> Res {
    let f = read_form(&s, &d, req).await?;
    let (current, new, again) = (
        f.get("current_password"),
        f.get("new_password"),
        f.get("confirm_password"),
    );
    if current.is_empty() {
        let e = Errs::field("current_password", "Enter your current password.");
        return Ok(html(
            StatusCode::BAD_REQUEST,
            &account_page(&s, &d, None, e).await?,
        ));
    }
    if new != again {
        let e = Errs::field("confirm_password", "The two new passwords do not match.");
        return Ok(html(
            StatusCode::BAD_REQUEST,
            &account_page(&s, &d, None, e).await?,
        ));
    }
    if let Err(e) = s
        .core
        .change_own_password(d.user(), current, new, &Caller { ip })
        .await
    {
        let e = Errs::from_api(e, FIELDS)?;
        return Ok(html(
            StatusCode::BAD_REQUEST,
            &account_page(&s, &d, None, e).await?,
        ));
    }
    // Every session ended with the change; this browser gets a fresh one (a new id: OWASP
    // Session Management Cheat Sheet, "renew the session ID after any privilege change").
    let id = s
        .core
        .start_session(d.user(), Some(&d.0.id), &d.0.amr)
        .await?;
    let mut r = done("/dashboard/account/", "password-changed");
    set_cookie(
        &mut r,
        SESSION_COOKIE,
        &id,
        s.core.settings.authz.session.absolute_timeout_secs,
        "Lax",
    );
    Ok(r)
}

pub async fn sign_out_confirm(d: Dash) -> Res {
    Ok(confirm(
        &d,
        "account",
        Confirm {
            title: "Sign out everywhere?".into(),
            message: "Every browser session of your account ends, this one included.".into(),
            consequences: vec![
                "You will have to sign in again on every device.".into(),
                "Applications and personal access tokens keep working; revoke them on their \
                 own pages, or change your password to end them all."
                    .into(),
            ],
            action: "/dashboard/account/sign-out-everywhere".into(),
            button: "Sign out everywhere",
            cancel: "/dashboard/account/".into(),
            danger: true,
        },
    ))
}

pub async fn sign_out_everywhere(State(s): State<AppState>, d: Dash, req: Request) -> Res {
    read_form(&s, &d, req).await?;
    let n = s.core.sign_out_everywhere(d.user().id).await?;
    let message = match n {
        1 => "Your session has ended.".to_string(),
        n => format!("All {n} of your sessions have ended."),
    };
    let page = render(&MessagePage {
        title: "You are signed out everywhere",
        message: &message,
        is_error: false,
        hint: None,
        signout_csrf: None,
        request_id: None,
        link: Some(("/login?next=/dashboard/".to_string(), "Sign in again")),
    });
    let mut r = page_response(StatusCode::OK, page, None).into_response();
    clear_cookie(&mut r, SESSION_COOKIE);
    Ok(r)
}
