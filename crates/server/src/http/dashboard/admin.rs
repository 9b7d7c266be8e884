//! Administration (users with `is_admin`): list and create users, disable or re-enable them.
//! A disabled user's tokens, personal access tokens and sessions stop working at the next
//! request (every lookup checks the flag) and their sessions are deleted. Everyone else gets
//! 404 here (OWASP ASVS 4.0.3 V4.1.3: least privilege, deny by default).

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;

use camgate_core::dashboard::USERS_PAGE;
use camgate_core::users::UserInput;

use super::{
    confirm, done, html, ok, read_form, when, Confirm, Dash, DashError, Errs, Nav, NoticeQuery,
    Res, When,
};
use crate::http::AppState;

const FIELDS: &[&str] = &["email", "password", "first_name", "last_name", "phone"];

pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub is_me: bool,
    pub created: When,
}

/// The create-user form's values (never the password).
#[derive(Default)]
pub struct NewUserForm {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
    pub is_admin: bool,
}

#[derive(Template)]
#[template(path = "dashboard/admin_users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<UserRow>,
    count: i64,
    first: i64,
    last: i64,
    previous: Option<i64>,
    next: Option<i64>,
    form: NewUserForm,
    errors: Errs,
}

async fn users_page(
    s: &AppState,
    d: &Dash,
    offset: i64,
    notice: Option<&'static str>,
    form: NewUserForm,
    errors: Errs,
) -> Result<UsersPage, DashError> {
    let (count, users) = s.core.admin_users(&d.0, offset).await?;
    let now = s.core.now();
    let n = users.len() as i64;
    let me = d.user().id;
    Ok(UsersPage {
        nav: d.nav("admin", notice),
        users: users
            .into_iter()
            .map(|u| UserRow {
                id: u.id,
                name: format!("{} {}", u.first_name, u.last_name)
                    .trim()
                    .to_string(),
                is_admin: u.is_admin,
                disabled: u.disabled,
                is_me: u.id == me,
                created: when(now, u.created_at),
                email: u.email,
            })
            .collect(),
        count,
        first: offset + 1,
        last: offset + n,
        previous: (offset > 0).then(|| (offset - USERS_PAGE).max(0)),
        next: (offset + USERS_PAGE < count).then_some(offset + USERS_PAGE),
        form,
        errors,
    })
}

pub async fn users(State(s): State<AppState>, d: Dash, Query(q): Query<NoticeQuery>) -> Res {
    let page = users_page(
        &s,
        &d,
        q.offset(),
        q.notice(),
        NewUserForm::default(),
        Errs::none(),
    )
    .await?;
    Ok(ok(&page))
}

pub async fn create_user(State(s): State<AppState>, d: Dash, req: Request) -> Res {
    let f = read_form(&s, &d, req).await?;
    let form = NewUserForm {
        email: f.get("email").trim().to_string(),
        first_name: f.get("first_name").trim().to_string(),
        last_name: f.get("last_name").trim().to_string(),
        phone: f.get("phone").trim().to_string(),
        is_admin: f.checked("is_admin"),
    };
    let input = UserInput {
        email: form.email.clone(),
        password: f.get("password").to_string(),
        first_name: form.first_name.clone(),
        last_name: form.last_name.clone(),
        phone: form.phone.clone(),
        is_admin: form.is_admin,
        email_verified: f.checked("email_verified"),
    };
    match s.core.admin_create_user(&d.0, input).await {
        Ok(_) => Ok(done("/dashboard/admin/users/", "user-created")),
        Err(e) => {
            let errors = Errs::from_api(e, FIELDS)?;
            let page = users_page(&s, &d, 0, None, form, errors).await?;
            Ok(html(StatusCode::BAD_REQUEST, &page))
        }
    }
}

fn parse_id(id: &str) -> Result<i64, DashError> {
    id.parse::<i64>().map_err(|_| DashError::not_found())
}

async fn toggle_confirm(s: &AppState, d: &Dash, id: &str, disable: bool) -> Res {
    let u = s.core.admin_user(&d.0, parse_id(id)?).await?;
    let c = if disable {
        Confirm {
            title: format!("Disable {}?", u.email),
            message: "The user will not be able to sign in or use the API.".into(),
            consequences: vec![
                "Their access tokens, refresh tokens and personal access tokens stop working \
                 at their next request."
                    .into(),
                "Their browser sessions end now.".into(),
                "You can enable the account again later; their tokens then work again unless \
                 they expired."
                    .into(),
            ],
            action: format!("/dashboard/admin/users/{}/disable", u.id),
            button: "Disable user",
            cancel: "/dashboard/admin/users/".into(),
            danger: true,
        }
    } else {
        Confirm {
            title: format!("Enable {}?", u.email),
            message: "The user will be able to sign in and use their tokens again.".into(),
            consequences: vec![],
            action: format!("/dashboard/admin/users/{}/enable", u.id),
            button: "Enable user",
            cancel: "/dashboard/admin/users/".into(),
            danger: false,
        }
    };
    Ok(confirm(d, "admin", c))
}

pub async fn disable_confirm(State(s): State<AppState>, d: Dash, Path(id): Path<String>) -> Res {
    toggle_confirm(&s, &d, &id, true).await
}

pub async fn enable_confirm(State(s): State<AppState>, d: Dash, Path(id): Path<String>) -> Res {
    toggle_confirm(&s, &d, &id, false).await
}

pub async fn disable(
    State(s): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    req: Request,
) -> Res {
    read_form(&s, &d, req).await?;
    s.core
        .admin_set_disabled(&d.0, parse_id(&id)?, true)
        .await?;
    Ok(done("/dashboard/admin/users/", "user-disabled"))
}

pub async fn enable(
    State(s): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    req: Request,
) -> Res {
    read_form(&s, &d, req).await?;
    s.core
        .admin_set_disabled(&d.0, parse_id(&id)?, false)
        .await?;
    Ok(done("/dashboard/admin/users/", "user-enabled"))
}
