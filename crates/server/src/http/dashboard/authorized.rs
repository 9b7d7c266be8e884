//! Authorized applications: the third-party apps that may act for the user — those approved
//! on the approval screen (a remembered consent, RFC 6749 §4.1) and those holding a live token
//! of the user (e.g. signed in with the password grant). Revoking one forgets the consent and
//! revokes every token of that app for this user (RFC 7009 §2.1 semantics: the whole grant).

use askama::Template;
use axum::extract::{Path, Query, Request, State};

use super::{
    confirm, done, ok, read_form, scope_names, when, Confirm, Dash, Nav, NoticeQuery, Res, When,
};
use crate::http::AppState;

pub struct AuthorizedRow {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<&'static str>,
    pub approved: Option<When>,
    pub last_used: Option<When>,
}

#[derive(Template)]
#[template(path = "dashboard/authorized.html")]
struct AuthorizedPage {
    nav: Nav,
    apps: Vec<AuthorizedRow>,
}

pub async fn list(State(s): State<AppState>, d: Dash, Query(q): Query<NoticeQuery>) -> Res {
    let now = s.core.now();
    let apps = s
        .core
        .authorized_apps(d.user().id)
        .await?
        .into_iter()
        .map(|a| AuthorizedRow {
            scopes: scope_names(a.scope),
            approved: a.approved_at.map(|t| when(now, t)),
            last_used: a.last_used_at.map(|t| when(now, t)),
            client_id: a.client_id,
            name: a.name,
        })
        .collect();
    Ok(ok(&AuthorizedPage {
        nav: d.nav("authorized", q.notice()),
        apps,
    }))
}

pub async fn revoke_confirm(
    State(s): State<AppState>,
    d: Dash,
    Path(client_id): Path<String>,
) -> Res {
    let app = s.core.authorized_app(d.user().id, &client_id).await?;
    Ok(confirm(
        &d,
        "authorized",
        Confirm {
            title: format!("Revoke access for {}?", app.name),
            message: format!("{} will no longer be able to use your account.", app.name),
            consequences: vec![
                "Every access and refresh token it holds for you stops working at once.".into(),
                "Your approval is forgotten: if you use the application again, it has to ask \
                 you again."
                    .into(),
            ],
            action: format!("/dashboard/authorized/{}/revoke", app.client_id),
            button: "Revoke access",
            cancel: "/dashboard/authorized/".into(),
            danger: true,
        },
    ))
}

pub async fn revoke(
    State(s): State<AppState>,
    d: Dash,
    Path(client_id): Path<String>,
    req: Request,
) -> Res {
    read_form(&s, &d, req).await?;
    s.core
        .revoke_authorized_app(d.user().id, &client_id)
        .await?;
    Ok(done("/dashboard/authorized/", "app-revoked"))
}
