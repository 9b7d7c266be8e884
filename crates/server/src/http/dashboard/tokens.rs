//! Personal access tokens (spec 000: "For personal use only. No expiration, but can be
//! revoked manually"; sent as `Authorization: PersonalAccessToken <token>`). Created through
//! [`camgate_core::Core::create_pat`], the function `camgate pat add` uses; the token is shown
//! once. The list shows a short prefix, never the token; `last used` is written at most once a
//! minute per token (`Settings::pat_touch_interval_secs`), not on every request.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};

use camgate_core::scope::ScopeSet;

use super::{
    base, confirm, done, html, ok, read_form, scope_names, when, Confirm, Dash, Errs, Nav,
    NoticeQuery, Res, When,
};
use crate::http::AppState;

const FIELDS: &[&str] = &["name", "scope", "expires_in_days"];

/// Expiry choices: never (the spec's default) or a number of days.
const EXPIRY_CHOICES: &[(&str, &str)] = &[
    ("", "Never"),
    ("7", "7 days"),
    ("30", "30 days"),
    ("90", "90 days"),
    ("365", "1 year"),
];

pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<&'static str>,
    pub created: When,
    pub last_used: Option<When>,
    pub expires: Option<When>,
    pub expired: bool,
}

#[derive(Template)]
#[template(path = "dashboard/tokens.html")]
struct TokensPage {
    nav: Nav,
    tokens: Vec<TokenRow>,
}

pub async fn list(State(s): State<AppState>, d: Dash, Query(q): Query<NoticeQuery>) -> Res {
    let now = s.core.now();
    let tokens = s
        .core
        .my_pats(d.user().id)
        .await?
        .into_iter()
        .map(|p| TokenRow {
            id: p.id,
            scopes: scope_names(p.scope),
            created: when(now, p.created_at),
            last_used: p.last_used_at.map(|t| when(now, t)),
            expires: p.expires_at.map(|t| when(now, t)),
            expired: p.expires_at.is_some_and(|t| t <= now),
            prefix: p.prefix,
            name: p.name,
        })
        .collect();
    Ok(ok(&TokensPage {
        nav: d.nav("tokens", q.notice()),
        tokens,
    }))
}

#[derive(Template)]
#[template(path = "dashboard/token_form.html")]
struct TokenFormPage {
    nav: Nav,
    name: String,
    read: bool,
    write: bool,
    expiry: String,
    choices: &'static [(&'static str, &'static str)],
    errors: Errs,
}

pub async fn new_form(d: Dash) -> Res {
    Ok(ok(&TokenFormPage {
        nav: d.nav("tokens", None),
        name: String::new(),
        read: true,
        write: false,
        expiry: String::new(),
        choices: EXPIRY_CHOICES,
        errors: Errs::none(),
    }))
}

#[derive(Template)]
#[template(path = "dashboard/token_created.html")]
struct TokenCreatedPage {
    nav: Nav,
    name: String,
    token: String,
    scopes: Vec<&'static str>,
    expires: Option<When>,
    base: String,
}

pub async fn create(State(s): State<AppState>, headers: HeaderMap, d: Dash, req: Request) -> Res {
    let f = read_form(&s, &d, req).await?;
    let scopes = f.all("scope");
    let scope = ScopeSet {
        read: scopes.contains(&"read"),
        write: scopes.contains(&"write"),
        ..ScopeSet::NONE
    };
    let expiry = f.get("expires_in_days").trim().to_string();
    let form_again = |errors: Errs| {
        html(
            StatusCode::BAD_REQUEST,
            &TokenFormPage {
                nav: d.nav("tokens", None),
                name: f.get("name").to_string(),
                read: scope.read,
                write: scope.write,
                expiry: expiry.clone(),
                choices: EXPIRY_CHOICES,
                errors,
            },
        )
    };
    let days = if expiry.is_empty() {
        None
    } else {
        match expiry.parse::<i64>() {
            Ok(d) => Some(d),
            Err(_) => {
                return Ok(form_again(Errs::field(
                    "expires_in_days",
                    "Choose when the token expires.",
                )))
            }
        }
    };
    match s
        .core
        .create_pat(d.user().id, f.get("name"), scope, days)
        .await
    {
        Ok((pat, token)) => {
            let now = s.core.now();
            Ok(ok(&TokenCreatedPage {
                nav: d.nav("tokens", None),
                name: pat.name,
                token,
                scopes: scope_names(pat.scope),
                expires: pat.expires_at.map(|t| when(now, t)),
                base: base(&s, &headers),
            }))
        }
        Err(e) => Ok(form_again(Errs::from_api(e, FIELDS)?)),
    }
}

fn parse_id(id: &str) -> Result<i64, super::DashError> {
    id.parse::<i64>().map_err(|_| super::DashError::not_found())
}

pub async fn revoke_confirm(State(s): State<AppState>, d: Dash, Path(id): Path<String>) -> Res {
    let pat = s.core.my_pat(d.user().id, parse_id(&id)?).await?;
    Ok(confirm(
        &d,
        "tokens",
        Confirm {
            title: format!("Revoke the token “{}”?", pat.name),
            message: format!(
                "The token starting with {}… will stop working at once. This cannot be undone.",
                pat.prefix
            ),
            consequences: vec![
                "Scripts and tools that use it will get 401 Unauthorized.".into(),
                "You can create a new token at any time.".into(),
            ],
            action: format!("/dashboard/tokens/{}/revoke", pat.id),
            button: "Revoke token",
            cancel: "/dashboard/tokens/".into(),
            danger: true,
        },
    ))
}

pub async fn revoke(
    State(s): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    req: Request,
) -> Res {
    read_form(&s, &d, req).await?;
    s.core.revoke_my_pat(d.user().id, parse_id(&id)?).await?;
    Ok(done("/dashboard/tokens/", "token-revoked"))
}
