//! Account → passkeys: the list (rename, remove) and adding one (the page's script runs the
//! WebAuthn ceremony against `begin` / `finish`). The rules are in `camgate_core::passkeys`.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::{done, ok, read_form, when, Dash, Nav, NoticeQuery, Res, When};
use crate::http::AppState;

pub struct PasskeyRow {
    pub id: i64,
    pub name: String,
    pub added: When,
    pub used: Option<When>,
}

#[derive(Template)]
#[template(path = "dashboard/passkeys.html")]
struct PasskeysPage {
    nav: Nav,
    passkeys: Vec<PasskeyRow>,
}

pub async fn page(State(s): State<AppState>, d: Dash, Query(q): Query<NoticeQuery>) -> Res {
    let now = s.core.now();
    let passkeys = s
        .core
        .passkeys(d.user().id)
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            id: p.id,
            name: p.name,
            added: when(now, p.created_at),
            used: p.last_used_at.map(|t| when(now, t)),
        })
        .collect();
    Ok(ok(&PasskeysPage {
        nav: d.nav("account", q.notice()),
        passkeys,
    }))
}

fn json_error(e: camgate_core::error::ApiError) -> axum::response::Response {
    let status = match &e {
        camgate_core::error::ApiError::Invalid { .. } => StatusCode::BAD_REQUEST,
        camgate_core::error::ApiError::Conflict(_) => StatusCode::CONFLICT,
        camgate_core::error::ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, Json(json!({"error": e.to_string()}))).into_response()
}

/// `POST …/passkeys/begin` (CSRF-checked form): the creation options.
pub async fn begin(State(s): State<AppState>, d: Dash, req: Request) -> Res {
    read_form(&s, &d, req).await?;
    Ok(match s.core.begin_passkey_registration(d.user()).await {
        Ok(c) => Json(json!({"ceremony": c.ceremony, "options": c.options})).into_response(),
        Err(e) => json_error(e),
    })
}

/// `POST …/passkeys/finish`: the authenticator's answer and a name.
pub async fn finish(State(s): State<AppState>, d: Dash, req: Request) -> Res {
    let f = read_form(&s, &d, req).await?;
    Ok(
        match s
            .core
            .finish_passkey_registration(
                d.user(),
                f.get("ceremony"),
                f.get("credential"),
                f.get("name"),
            )
            .await
        {
            Ok(_) => Json(json!({"redirect": "/dashboard/account/passkeys/?notice=passkey-added"}))
                .into_response(),
            Err(e) => json_error(e),
        },
    )
}

fn parse_id(id: &str) -> Result<i64, super::DashError> {
    id.parse()
        .map_err(|_| super::DashError::from(camgate_core::error::ApiError::NotFound))
}

pub async fn rename(
    State(s): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    req: Request,
) -> Res {
    let f = read_form(&s, &d, req).await?;
    s.core
        .rename_passkey(d.user(), parse_id(&id)?, f.get("name"))
        .await?;
    Ok(done("/dashboard/account/passkeys/", "passkey-renamed"))
}

pub async fn remove(
    State(s): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    req: Request,
) -> Res {
    read_form(&s, &d, req).await?;
    s.core.remove_passkey(d.user(), parse_id(&id)?).await?;
    Ok(done("/dashboard/account/passkeys/", "passkey-removed"))
}
