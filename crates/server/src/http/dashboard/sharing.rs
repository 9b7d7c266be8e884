//! Sharing and dealers on the dashboard: a camera's shares (its owner adds, changes and ends
//! them), "Shared with me" (a guest's view), "Customers" (a dealer's accounts) and the
//! "Managed by" panel of a customer's Account page (lower or revoke the dealer's access).
//! The same `Core` functions as the API decide; the session acts as the signed-in user.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;

use camgate_core::dealers::CustomerInput;
use camgate_core::model::{DealerLevel, DealerLink, Share, SharePermission, User};
use camgate_core::principal::Principal;
use camgate_core::users::UserInput;

use super::{
    confirm, done, html, ok, read_form, when, Confirm, Dash, DashError, Errs, Nav, NoticeQuery,
    Res, When,
};
use crate::http::AppState;

fn principal(d: &Dash) -> Principal {
    Principal::session(d.user().clone())
}

fn parse_id(id: &str) -> Result<i64, DashError> {
    id.parse::<i64>().map_err(|_| DashError::not_found())
}

pub struct ShareRow {
    pub id: i64,
    pub email: String,
    pub permission: &'static str,
    pub pending: bool,
    pub since: When,
}

impl ShareRow {
    pub fn is(&self, p: &str) -> bool {
        self.permission == p
    }
}

#[derive(Template)]
#[template(path = "dashboard/camera_shares.html")]
struct SharesPage {
    nav: Nav,
    camera_id: i64,
    camera_name: String,
    shares: Vec<ShareRow>,
    permissions: &'static [&'static str],
    email: String,
    permission: String,
    errors: Errs,
}

const PERMISSIONS: &[&str] = &["view", "playback", "manage"];
const SHARE_FIELDS: &[&str] = &["email", "permission"];

fn share_rows(now: i64, shares: Vec<Share>) -> Vec<ShareRow> {
    shares
        .into_iter()
        .map(|s| ShareRow {
            id: s.id,
            pending: s.user_id.is_none(),
            permission: s.permission.as_str(),
            since: when(now, s.created_at),
            email: s.email,
        })
        .collect()
}

async fn shares_page(
    s: &AppState,
    d: &Dash,
    camera: i64,
    notice: Option<&'static str>,
    email: String,
    permission: String,
    errors: Errs,
) -> Result<SharesPage, DashError> {
    let p = principal(d);
    // Only the owner manages shares here (a `manage` guest may list them through the API).
    let cam = s.core.camera(d.user().id, camera).await?;
    let shares = s.core.camera_shares(&p, camera).await?;
    Ok(SharesPage {
        nav: d.nav("cameras", notice),
        camera_id: cam.id,
        camera_name: cam.fields.name,
        shares: share_rows(s.core.now(), shares),
        permissions: PERMISSIONS,
        email,
        permission,
        errors,
    })
}

pub async fn shares(
    State(s): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Res {
    let page = shares_page(
        &s,
        &d,
        parse_id(&id)?,
        q.notice(),
        String::new(),
        "view".into(),
        Errs::none(),
    )
    .await?;
    Ok(ok(&page))
}

pub async fn add_share(
    State(s): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    req: Request,
) -> Res {
    let f = read_form(&s, &d, req).await?;
    let camera = parse_id(&id)?;
    s.core.camera(d.user().id, camera).await?;
    let (email, permission) = (
        f.get("email").trim().to_string(),
        f.get("permission").to_string(),
    );
    match s
        .core
        .create_share(&principal(&d), camera, &email, &permission)
        .await
    {
        Ok(_) => Ok(done(
            &format!("/dashboard/cameras/{camera}/shares/"),
            "share-added",
        )),
        Err(e) => {
            let errs = Errs::from_api(e, SHARE_FIELDS)?;
            let page = shares_page(&s, &d, camera, None, email, permission, errs).await?;
            Ok(html(StatusCode::BAD_REQUEST, &page))
        }
    }
}

pub async fn change_share(
    State(s): State<AppState>,
    d: Dash,
    Path((id, share)): Path<(String, String)>,
    req: Request,
) -> Res {
    let f = read_form(&s, &d, req).await?;
    let camera = parse_id(&id)?;
    s.core.camera(d.user().id, camera).await?;
    let permission = f.get("permission").to_string();
    match s
        .core
        .update_share(&principal(&d), camera, parse_id(&share)?, &permission)
        .await
    {
        Ok(_) => Ok(done(
            &format!("/dashboard/cameras/{camera}/shares/"),
            "share-changed",
        )),
        Err(e) => {
            let errs = Errs::from_api(e, SHARE_FIELDS)?;
            let page =
                shares_page(&s, &d, camera, None, String::new(), "view".into(), errs).await?;
            Ok(html(StatusCode::BAD_REQUEST, &page))
        }
    }
}

pub async fn end_share_confirm(
    State(s): State<AppState>,
    d: Dash,
    Path((id, share)): Path<(String, String)>,
) -> Res {
    let camera = parse_id(&id)?;
    let cam = s.core.camera(d.user().id, camera).await?;
    let share_id = parse_id(&share)?;
    let share = s
        .core
        .camera_shares(&principal(&d), camera)
        .await?
        .into_iter()
        .find(|x| x.id == share_id)
        .ok_or_else(DashError::not_found)?;
    Ok(confirm(
        &d,
        "cameras",
        Confirm {
            title: format!("Stop sharing “{}” with {}?", cam.fields.name, share.email),
            message: "They lose access at their next request, on every server.".into(),
            consequences: vec![
                "The camera disappears from their camera lists and applications.".into(),
            ],
            action: format!("/dashboard/cameras/{camera}/shares/{share_id}/delete"),
            button: "Stop sharing",
            cancel: format!("/dashboard/cameras/{camera}/shares/"),
            danger: true,
        },
    ))
}

pub async fn end_share(
    State(s): State<AppState>,
    d: Dash,
    Path((id, share)): Path<(String, String)>,
    req: Request,
) -> Res {
    read_form(&s, &d, req).await?;
    let camera = parse_id(&id)?;
    s.core.camera(d.user().id, camera).await?;
    s.core
        .delete_share(&principal(&d), camera, parse_id(&share)?)
        .await?;
    Ok(done(
        &format!("/dashboard/cameras/{camera}/shares/"),
        "share-ended",
    ))
}

pub struct SharedRow {
    pub id: i64,
    pub name: String,
    pub status: &'static str,
    pub owner: String,
    pub permission: &'static str,
}

#[derive(Template)]
#[template(path = "dashboard/shared.html")]
struct SharedPage {
    nav: Nav,
    cameras: Vec<SharedRow>,
}

/// "Shared with me": the cameras other users share with the signed-in user.
pub async fn shared_with_me(State(s): State<AppState>, d: Dash) -> Res {
    let cameras = s
        .core
        .shared_cameras(d.user().id)
        .await?
        .into_iter()
        .map(|c| {
            let sh = c.shared.clone();
            SharedRow {
                id: c.id,
                status: c.fields.status.as_str(),
                owner: sh
                    .as_ref()
                    .map(|x| x.owner_name.clone())
                    .unwrap_or_default(),
                permission: sh
                    .map(|x| x.permission)
                    .unwrap_or(SharePermission::View)
                    .as_str(),
                name: c.fields.name,
            }
        })
        .collect();
    Ok(ok(&SharedPage {
        nav: d.nav("shared", None),
        cameras,
    }))
}

pub struct CustomerRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub status: &'static str,
    pub since: When,
}

#[derive(Template)]
#[template(path = "dashboard/customers.html")]
struct CustomersPage {
    nav: Nav,
    customers: Vec<CustomerRow>,
    email: String,
    first_name: String,
    last_name: String,
    level: String,
    errors: Errs,
}

const CUSTOMER_FIELDS: &[&str] = &["email", "password", "first_name", "last_name", "level"];

fn customer_rows(now: i64, list: Vec<(User, DealerLink)>) -> Vec<CustomerRow> {
    list.into_iter()
        .map(|(u, l)| CustomerRow {
            id: u.id,
            name: camgate_core::model::display_name(&u.first_name, &u.last_name, ""),
            status: l.status(),
            since: when(now, l.created_at),
            email: u.email,
        })
        .collect()
}

fn dealer_only(d: &Dash) -> Result<(), DashError> {
    if d.user().is_dealer {
        Ok(())
    } else {
        Err(DashError::not_found())
    }
}

/// A dealer's customers and the form that creates one.
pub async fn customers(State(s): State<AppState>, d: Dash, Query(q): Query<NoticeQuery>) -> Res {
    dealer_only(&d)?;
    let list = s.core.customers_of(d.user()).await?;
    Ok(ok(&CustomersPage {
        nav: d.nav("customers", q.notice()),
        customers: customer_rows(s.core.now(), list),
        email: String::new(),
        first_name: String::new(),
        last_name: String::new(),
        level: "full".into(),
        errors: Errs::none(),
    }))
}

pub async fn add_customer(State(s): State<AppState>, d: Dash, req: Request) -> Res {
    dealer_only(&d)?;
    let f = read_form(&s, &d, req).await?;
    let input = CustomerInput {
        user: UserInput {
            email: f.get("email").trim().to_string(),
            password: f.get("password").to_string(),
            first_name: f.get("first_name").trim().to_string(),
            last_name: f.get("last_name").trim().to_string(),
            ..Default::default()
        },
        level: Some(f.get("level").to_string()),
    };
    let (email, first_name, last_name, level) = (
        input.user.email.clone(),
        input.user.first_name.clone(),
        input.user.last_name.clone(),
        f.get("level").to_string(),
    );
    match s.core.create_customer(&principal(&d), input).await {
        Ok(_) => Ok(done("/dashboard/customers/", "customer-created")),
        Err(e) => {
            let errors = Errs::from_api(e, CUSTOMER_FIELDS)?;
            let list = s.core.customers_of(d.user()).await?;
            Ok(html(
                StatusCode::BAD_REQUEST,
                &CustomersPage {
                    nav: d.nav("customers", None),
                    customers: customer_rows(s.core.now(), list),
                    email,
                    first_name,
                    last_name,
                    level,
                    errors,
                },
            ))
        }
    }
}

/// What the Account page shows of the user's dealer.
pub struct ManagedBy {
    pub dealer: String,
    pub status: &'static str,
    pub full: bool,
    pub revoked: bool,
}

pub async fn managed_by(s: &AppState, user: &User) -> Result<Option<ManagedBy>, DashError> {
    Ok(s.core.managed_by(user.id).await?.map(|(l, d)| ManagedBy {
        dealer: camgate_core::model::display_name(&d.first_name, &d.last_name, &d.email),
        status: l.status(),
        full: l.level == DealerLevel::Full,
        revoked: l.revoked_at.is_some(),
    }))
}

/// The customer lowers the dealer's access to `limited`.
pub async fn limit_dealer(State(s): State<AppState>, d: Dash, req: Request) -> Res {
    read_form(&s, &d, req).await?;
    s.core
        .change_dealer_access(d.user().id, Some(DealerLevel::Limited))
        .await?;
    Ok(done("/dashboard/account/", "dealer-limited"))
}

pub async fn revoke_dealer_confirm(State(s): State<AppState>, d: Dash) -> Res {
    let m = managed_by(&s, d.user())
        .await?
        .filter(|m| !m.revoked)
        .ok_or_else(DashError::not_found)?;
    Ok(confirm(
        &d,
        "account",
        Confirm {
            title: format!("Revoke {}'s access to your account?", m.dealer),
            message: "Your dealer can no longer act for you; the tokens it holds for your \
                      account stop working at once."
                .into(),
            consequences: vec!["Only you can manage your cameras and account.".into()],
            action: "/dashboard/account/dealer/revoke".into(),
            button: "Revoke access",
            cancel: "/dashboard/account/".into(),
            danger: true,
        },
    ))
}

pub async fn revoke_dealer(State(s): State<AppState>, d: Dash, req: Request) -> Res {
    read_form(&s, &d, req).await?;
    s.core.change_dealer_access(d.user().id, None).await?;
    Ok(done("/dashboard/account/", "dealer-revoked"))
}
