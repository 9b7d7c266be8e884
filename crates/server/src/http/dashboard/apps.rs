//! Applications: the OAuth clients a developer registered (spec 000: "Create your OAuth2 app
//! … to get your Client ID and Client Secret"). Redirect URIs follow the authorization
//! endpoint's rules (exact strings; https, or http on loopback; no fragment: RFC 6749 §3.1.2,
//! RFC 9700 §4.1.1). The secret is shown once, in the answer to the POST that made it.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::HeaderMap;

use camgate_core::dashboard::{AppInput, ClientUpdate};
use camgate_core::model::{
    Client, ClientKind, GrantType, IdTokenAlg, JwtAlg, OidcClient, SecretHash, SubjectType,
};
use camgate_core::scope::ScopeSet;

use super::{
    base, confirm, done, ok, read_form, scope_names, when, Confirm, Dash, Errs, Form, Nav,
    NoticeQuery, Res, When,
};
use crate::http::AppState;

const FIELDS: &[&str] = &[
    "name",
    "kind",
    "redirect_uris",
    "grants",
    "scopes",
    "profile",
    // The OpenID Connect fields (`validate_oidc`), shown beside their form fields.
    "post_logout_redirect_uri",
    "sector_identifier",
];

/// One grant checkbox.
pub struct GrantChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub checked: bool,
}

fn grant_choices(selected: &[GrantType]) -> Vec<GrantChoice> {
    GrantType::ALL
        .into_iter()
        .map(|g| {
            let (label, help) = match g {
                GrantType::AuthorizationCode => (
                    "Authorization code",
                    "Users sign in on camgate and approve your app (recommended).",
                ),
                GrantType::RefreshToken => (
                    "Refresh token",
                    "Keep users signed in without asking again.",
                ),
                GrantType::Password => (
                    "Password",
                    "Your app collects the user's password itself (legacy; trusted apps only).",
                ),
                GrantType::ClientCredentials => (
                    "Client credentials",
                    "Your app acts for itself, not for a user (confidential apps only).",
                ),
                GrantType::DeviceCode => (
                    "Device code",
                    "A device without a browser shows a code; its user approves it on /device.",
                ),
                GrantType::TokenExchange => (
                    "Token exchange",
                    "A dealer's token becomes a short-lived token for one of its customers (RFC 8693).",
                ),
            };
            GrantChoice {
                value: g.as_str(),
                label,
                help,
                checked: selected.contains(&g),
            }
        })
        .collect()
}

/// What the application form shows (create and edit).
pub struct AppFormData {
    pub name: String,
    pub kind: &'static str,
    pub redirect_uris: String,
    pub grants: Vec<GrantChoice>,
    pub read: bool,
    pub write: bool,
    pub profile: String,
    pub profiles: Vec<String>,
    pub post_logout_redirect_uris: String,
    pub subject_type: &'static str,
    pub id_token_alg: String,
}

fn kind_str(k: ClientKind) -> &'static str {
    match k {
        ClientKind::Confidential => "confidential",
        ClientKind::Public => "public",
    }
}

fn first_uri(c: &Client) -> String {
    c.redirect_uris
        .first()
        .cloned()
        .unwrap_or_else(|| "https://yourapp.example.com/callback".into())
}

fn profiles(s: &AppState) -> Vec<String> {
    s.core.profiles.names().map(str::to_string).collect()
}

impl AppFormData {
    fn from_client(s: &AppState, c: &Client) -> Self {
        Self {
            name: c.name.clone(),
            kind: kind_str(c.kind),
            redirect_uris: c.redirect_uris.join("\n"),
            grants: grant_choices(&c.grants),
            read: c.scopes.read,
            write: c.scopes.write,
            profile: c.profile.clone(),
            profiles: profiles(s),
            post_logout_redirect_uris: c.oidc.post_logout_redirect_uris.join("\n"),
            subject_type: c.oidc.subject_type.as_str(),
            id_token_alg: c.oidc.id_token_alg.0.as_str().into(),
        }
    }

    fn from_form(s: &AppState, f: &Form, kind: &'static str) -> Self {
        Self {
            name: f.get("name").to_string(),
            kind,
            redirect_uris: f.get("redirect_uris").to_string(),
            grants: grant_choices(&parse_grants(f)),
            read: f.all("scopes").contains(&"read"),
            write: f.all("scopes").contains(&"write"),
            profile: f.get("profile").to_string(),
            profiles: profiles(s),
            post_logout_redirect_uris: f.get("post_logout_redirect_uris").to_string(),
            subject_type: parse_oidc(f, None).subject_type.as_str(),
            id_token_alg: f.get("id_token_alg").to_string(),
        }
    }
}

fn parse_grants(f: &Form) -> Vec<GrantType> {
    f.all("grants")
        .into_iter()
        .filter_map(GrantType::parse)
        .collect()
}

fn parse_scopes(f: &Form) -> ScopeSet {
    let v = f.all("scopes");
    ScopeSet {
        read: v.contains(&"read"),
        write: v.contains(&"write"),
        ..ScopeSet::NONE
    }
}

/// The OpenID Connect fields; `keep`: the client's current settings (the sector identifier is
/// not on the form, so an edit keeps it).
fn parse_oidc(f: &Form, keep: Option<&OidcClient>) -> OidcClient {
    OidcClient {
        post_logout_redirect_uris: f
            .get("post_logout_redirect_uris")
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
        subject_type: SubjectType::parse(f.get("subject_type")).unwrap_or_default(),
        sector_identifier: keep.and_then(|k| k.sector_identifier.clone()),
        id_token_alg: JwtAlg::parse_any(f.get("id_token_alg"))
            .map(IdTokenAlg)
            .unwrap_or_default(),
    }
}

fn uris(f: &Form) -> Vec<String> {
    f.get("redirect_uris")
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

// ---- list

pub struct AppRow {
    pub client_id: String,
    pub name: String,
    pub kind: &'static str,
    pub grants: Vec<&'static str>,
    pub created: When,
}

#[derive(Template)]
#[template(path = "dashboard/apps.html")]
struct AppsPage {
    nav: Nav,
    apps: Vec<AppRow>,
}

pub async fn list(State(s): State<AppState>, d: Dash, Query(q): Query<NoticeQuery>) -> Res {
    let now = s.core.now();
    let apps = s
        .core
        .my_apps(d.user().id)
        .await?
        .into_iter()
        .map(|c| AppRow {
            kind: kind_str(c.kind),
            grants: c.grants.iter().map(|g| g.as_str()).collect(),
            created: when(now, c.created_at),
            client_id: c.client_id,
            name: c.name,
        })
        .collect();
    Ok(ok(&AppsPage {
        nav: d.nav("apps", q.notice()),
        apps,
    }))
}

// ---- create

#[derive(Template)]
#[template(path = "dashboard/app_form.html")]
struct AppFormPage {
    nav: Nav,
    /// None: a new application; Some: the client id being edited.
    editing: Option<String>,
    form: AppFormData,
    errors: Errs,
}

pub async fn new_form(State(s): State<AppState>, d: Dash) -> Res {
    let form = AppFormData {
        name: String::new(),
        kind: "confidential",
        redirect_uris: String::new(),
        grants: grant_choices(&[GrantType::AuthorizationCode, GrantType::RefreshToken]),
        read: true,
        write: true,
        profile: camgate_core::profile::DEFAULT_PROFILE.to_string(),
        profiles: profiles(&s),
        post_logout_redirect_uris: String::new(),
        subject_type: "public",
        id_token_alg: "RS256".into(),
    };
    Ok(ok(&AppFormPage {
        nav: d.nav("apps", None),
        editing: None,
        form,
        errors: Errs::none(),
    }))
}

/// The page that shows credentials once: after creating an app and after rotating its secret.
#[derive(Template)]
#[template(path = "dashboard/app_secret.html")]
pub struct SecretPage {
    pub nav: Nav,
    pub name: String,
    pub client_id: String,
    pub secret: Option<String>,
    pub rotated: bool,
    pub overlap: Option<When>,
    pub base: String,
    /// For the example: the first registered redirect URI.
    pub redirect_uri: String,
}

pub async fn create(State(s): State<AppState>, headers: HeaderMap, d: Dash, req: Request) -> Res {
    let f = read_form(&s, &d, req).await?;
    let kind = match f.get("kind") {
        "public" => ClientKind::Public,
        "confidential" => ClientKind::Confidential,
        _ => {
            return Ok(super::html(
                axum::http::StatusCode::BAD_REQUEST,
                &AppFormPage {
                    nav: d.nav("apps", None),
                    editing: None,
                    form: AppFormData::from_form(&s, &f, "confidential"),
                    errors: Errs::field("kind", "Choose confidential or public."),
                },
            ))
        }
    };
    let input = AppInput {
        name: f.get("name").to_string(),
        kind,
        redirect_uris: uris(&f),
        grants: parse_grants(&f),
        scopes: parse_scopes(&f),
        profile: f.get("profile").to_string(),
        oidc: parse_oidc(&f, None),
    };
    match s.core.create_app(d.user(), input).await {
        Ok(reg) => Ok(ok(&SecretPage {
            nav: d.nav("apps", None),
            redirect_uri: first_uri(&reg.client),
            name: reg.client.name,
            client_id: reg.client.client_id,
            secret: reg.secret,
            rotated: false,
            overlap: None,
            base: base(&s, &headers),
        })),
        Err(e) => Ok(super::html(
            axum::http::StatusCode::BAD_REQUEST,
            &AppFormPage {
                nav: d.nav("apps", None),
                editing: None,
                form: AppFormData::from_form(&s, &f, kind_str(kind)),
                errors: Errs::from_api(e, FIELDS)?,
            },
        )),
    }
}

// ---- show

#[derive(Template)]
#[template(path = "dashboard/app.html")]
struct AppPage {
    nav: Nav,
    client_id: String,
    name: String,
    kind: &'static str,
    has_secret: bool,
    imported_secret: bool,
    previous_until: Option<When>,
    redirect_uris: Vec<String>,
    grants: Vec<&'static str>,
    scopes: Vec<&'static str>,
    profile: String,
    created: When,
    base: String,
}

pub async fn show(
    State(s): State<AppState>,
    headers: HeaderMap,
    d: Dash,
    Path(client_id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Res {
    let app = s.core.my_app(d.user().id, &client_id).await?;
    let now = s.core.now();
    let c = app.client;
    Ok(ok(&AppPage {
        nav: d.nav("apps", q.notice()),
        kind: kind_str(c.kind),
        has_secret: !matches!(c.secret, SecretHash::None),
        imported_secret: matches!(c.secret, SecretHash::Argon2(_)),
        previous_until: app.previous_secret_until.map(|t| when(now, t)),
        grants: c.grants.iter().map(|g| g.as_str()).collect(),
        scopes: scope_names(c.scopes),
        created: when(now, c.created_at),
        redirect_uris: c.redirect_uris,
        profile: c.profile,
        client_id: c.client_id,
        name: c.name,
        base: base(&s, &headers),
    }))
}

// ---- edit

pub async fn edit_form(State(s): State<AppState>, d: Dash, Path(client_id): Path<String>) -> Res {
    let app = s.core.my_app(d.user().id, &client_id).await?;
    Ok(ok(&AppFormPage {
        nav: d.nav("apps", None),
        form: AppFormData::from_client(&s, &app.client),
        editing: Some(app.client.client_id),
        errors: Errs::none(),
    }))
}

pub async fn update(
    State(s): State<AppState>,
    d: Dash,
    Path(client_id): Path<String>,
    req: Request,
) -> Res {
    let f = read_form(&s, &d, req).await?;
    let app = s.core.my_app(d.user().id, &client_id).await?;
    let u = ClientUpdate {
        name: f.get("name").to_string(),
        redirect_uris: uris(&f),
        grants: parse_grants(&f),
        scopes: parse_scopes(&f),
        profile: f.get("profile").to_string(),
        oidc: parse_oidc(&f, Some(&app.client.oidc)),
    };
    match s.core.update_app(d.user().id, &client_id, u).await {
        Ok(c) => Ok(done(
            &format!("/dashboard/apps/{}/", c.client_id),
            "app-saved",
        )),
        Err(e) => Ok(super::html(
            axum::http::StatusCode::BAD_REQUEST,
            &AppFormPage {
                nav: d.nav("apps", None),
                form: AppFormData::from_form(&s, &f, kind_str(app.client.kind)),
                editing: Some(client_id),
                errors: Errs::from_api(e, FIELDS)?,
            },
        )),
    }
}

// ---- rotate the secret

pub async fn rotate_confirm(
    State(s): State<AppState>,
    d: Dash,
    Path(client_id): Path<String>,
) -> Res {
    let app = s.core.my_app(d.user().id, &client_id).await?;
    if app.client.kind != ClientKind::Confidential {
        return Err(camgate_core::error::ApiError::invalid(
            "kind",
            "A public application has no secret to rotate.",
        )
        .into());
    }
    let overlap = s.core.settings.client_secret_overlap_secs;
    let old = if overlap > 0 {
        format!(
            "The current secret keeps working for {} after this, so you can deploy the new \
             one; then it stops.",
            super::duration(overlap)
        )
    } else {
        "The current secret stops working immediately: requests that use it will fail with \
         invalid_client until you deploy the new one."
            .to_string()
    };
    Ok(confirm(
        &d,
        "apps",
        Confirm {
            title: format!("Rotate the secret of {}?", app.client.name),
            message: "A new client secret will be generated and shown once.".into(),
            consequences: vec![
                old,
                "Tokens already issued to the application keep working.".into(),
            ],
            action: format!("/dashboard/apps/{}/rotate", app.client.client_id),
            button: "Rotate secret",
            cancel: format!("/dashboard/apps/{}/", app.client.client_id),
            danger: true,
        },
    ))
}

pub async fn rotate(
    State(s): State<AppState>,
    headers: HeaderMap,
    d: Dash,
    Path(client_id): Path<String>,
    req: Request,
) -> Res {
    read_form(&s, &d, req).await?;
    let secret = s.core.rotate_app_secret(d.user().id, &client_id).await?;
    let app = s.core.my_app(d.user().id, &client_id).await?;
    let now = s.core.now();
    Ok(ok(&SecretPage {
        nav: d.nav("apps", None),
        redirect_uri: first_uri(&app.client),
        name: app.client.name,
        client_id: app.client.client_id,
        secret: Some(secret),
        rotated: true,
        overlap: app.previous_secret_until.map(|t| when(now, t)),
        base: base(&s, &headers),
    }))
}

// ---- delete

pub async fn delete_confirm(
    State(s): State<AppState>,
    d: Dash,
    Path(client_id): Path<String>,
) -> Res {
    let app = s.core.my_app(d.user().id, &client_id).await?;
    Ok(confirm(
        &d,
        "apps",
        Confirm {
            title: format!("Delete {}?", app.client.name),
            message: "The application and its credentials will be deleted. This cannot be undone."
                .into(),
            consequences: vec![
                "Every access and refresh token it holds stops working at once.".into(),
                "Users who approved it lose the approval; sign-in requests with its client id \
                 fail."
                    .into(),
            ],
            action: format!("/dashboard/apps/{}/delete", app.client.client_id),
            button: "Delete application",
            cancel: format!("/dashboard/apps/{}/", app.client.client_id),
            danger: true,
        },
    ))
}

pub async fn delete(
    State(s): State<AppState>,
    d: Dash,
    Path(client_id): Path<String>,
    req: Request,
) -> Res {
    read_form(&s, &d, req).await?;
    s.core.delete_app(d.user().id, &client_id).await?;
    Ok(done("/dashboard/apps/", "app-deleted"))
}
