//! Webhooks on the dashboard: the user's subscriptions with a form that adds one (its signing
//! secret is shown once, in the answer to that POST), a confirmation page that deletes one, and
//! each webhook's delivery log with a replay button per delivery. The same `Core` functions as
//! `/v1/webhooks/` decide; the session acts as the signed-in user.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;

use camgate_core::events::NOTICE_KINDS;
use camgate_core::principal::Principal;
use camgate_core::store::{Delivery, DeliveryAttempt, DeliveryState, Webhook};
use camgate_core::webhooks::LOG_PAGE_DEFAULT;

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

const FIELDS: &[&str] = &["url", "events"];

/// What each event type means, for the form.
const EVENT_HELP: &[(&str, &str)] = &[
    ("camera.event", "A camera or its owner posted an event"),
    ("camera.added", "A camera was added"),
    ("camera.removed", "A camera was removed"),
    ("camera.shared", "A camera was shared"),
    ("app.authorized", "You approved an application"),
    ("app.revoked", "You revoked an application"),
];

pub struct WebhookRow {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub created: When,
    pub disabled: bool,
    pub failing: Option<When>,
}

fn rows(now: i64, list: Vec<Webhook>) -> Vec<WebhookRow> {
    list.into_iter()
        .map(|w| WebhookRow {
            id: w.id,
            created: when(now, w.created_at),
            disabled: w.disabled_at.is_some(),
            failing: w.failing_since.map(|t| when(now, t)),
            url: w.url,
            events: w.events,
        })
        .collect()
}

pub struct EventChoice {
    pub kind: &'static str,
    pub help: &'static str,
    pub checked: bool,
}

fn choices(checked: &[String]) -> Vec<EventChoice> {
    NOTICE_KINDS
        .iter()
        .map(|k| EventChoice {
            kind: k,
            help: EVENT_HELP
                .iter()
                .find(|(e, _)| e == k)
                .map(|(_, h)| *h)
                .unwrap_or(""),
            checked: checked.iter().any(|c| c == k),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "dashboard/webhooks.html")]
struct WebhooksPage {
    nav: Nav,
    webhooks: Vec<WebhookRow>,
    url: String,
    events: Vec<EventChoice>,
    errors: Errs,
}

async fn list_page(
    s: &AppState,
    d: &Dash,
    notice: Option<&'static str>,
    url: String,
    events: &[String],
    errors: Errs,
) -> Result<WebhooksPage, DashError> {
    let list = s.core.list_webhooks(&principal(d)).await?;
    Ok(WebhooksPage {
        nav: d.nav("webhooks", notice),
        webhooks: rows(s.core.now(), list),
        url,
        events: choices(events),
        errors,
    })
}

/// The user's webhooks and the form that adds one.
pub async fn list(State(s): State<AppState>, d: Dash, Query(q): Query<NoticeQuery>) -> Res {
    let page = list_page(
        &s,
        &d,
        q.notice(),
        String::new(),
        &["camera.event".to_string()],
        Errs::none(),
    )
    .await?;
    Ok(ok(&page))
}

#[derive(Template)]
#[template(path = "dashboard/webhooks_created.html")]
struct CreatedPage {
    nav: Nav,
    id: i64,
    url: String,
    events: Vec<String>,
    secret: String,
}

/// Adds a webhook; the answer shows its secret, once.
pub async fn create(State(s): State<AppState>, d: Dash, req: Request) -> Res {
    let f = read_form(&s, &d, req).await?;
    let url = f.get("url").trim().to_string();
    let events: Vec<String> = f.all("events").into_iter().map(String::from).collect();
    if events.is_empty() {
        let errs = Errs::field("events", "Choose at least one event.");
        let page = list_page(&s, &d, None, url, &events, errs).await?;
        return Ok(html(StatusCode::BAD_REQUEST, &page));
    }
    match s
        .core
        .create_webhook(&principal(&d), Some(&url), Some(&events))
        .await
    {
        Ok(c) => Ok(ok(&CreatedPage {
            nav: d.nav("webhooks", None),
            id: c.webhook.id,
            url: c.webhook.url,
            events: c.webhook.events,
            secret: c.secret,
        })),
        Err(e) => {
            let errs = Errs::from_api(e, FIELDS)?;
            let page = list_page(&s, &d, None, url, &events, errs).await?;
            Ok(html(StatusCode::BAD_REQUEST, &page))
        }
    }
}

pub async fn delete_confirm(State(s): State<AppState>, d: Dash, Path(id): Path<String>) -> Res {
    let w = s.core.get_webhook(&principal(&d), parse_id(&id)?).await?;
    Ok(confirm(
        &d,
        "webhooks",
        Confirm {
            title: format!("Delete the webhook to {}?", w.url),
            message: "Nothing more is sent to it, and its delivery log is deleted.".into(),
            consequences: vec![
                "Deliveries not yet made are dropped.".into(),
                "A new webhook to the same URL gets a new secret.".into(),
            ],
            action: format!("/dashboard/webhooks/{}/delete", w.id),
            button: "Delete webhook",
            cancel: "/dashboard/webhooks/".into(),
            danger: true,
        },
    ))
}

pub async fn delete(
    State(s): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    req: Request,
) -> Res {
    read_form(&s, &d, req).await?;
    s.core
        .delete_webhook(&principal(&d), parse_id(&id)?)
        .await?;
    Ok(done("/dashboard/webhooks/", "webhook-deleted"))
}

pub struct AttemptRow {
    pub at: When,
    pub status: String,
    pub error: String,
    pub duration_ms: i64,
}

pub struct DeliveryRow {
    pub id: i64,
    pub event_id: String,
    pub kind: String,
    pub state: &'static str,
    pub pending: bool,
    pub delivered: bool,
    pub attempts: i64,
    pub created: When,
    pub next: Option<When>,
    pub log: Vec<AttemptRow>,
}

fn delivery_rows(now: i64, log: Vec<(Delivery, Vec<DeliveryAttempt>)>) -> Vec<DeliveryRow> {
    log.into_iter()
        .map(|(d, attempts)| DeliveryRow {
            id: d.id,
            state: d.state.as_str(),
            pending: d.state == DeliveryState::Pending,
            delivered: d.state == DeliveryState::Delivered,
            attempts: d.attempts,
            created: when(now, d.created_at),
            next: (d.state == DeliveryState::Pending).then(|| when(now, d.next_attempt_at)),
            event_id: d.event_id,
            kind: d.event_type,
            log: attempts
                .into_iter()
                .map(|a| AttemptRow {
                    at: when(now, a.at),
                    status: a.status.map(|s| s.to_string()).unwrap_or_default(),
                    error: a.error.unwrap_or_default(),
                    duration_ms: a.duration_ms,
                })
                .collect(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "dashboard/webhooks_log.html")]
struct LogPage {
    nav: Nav,
    webhook: WebhookRow,
    deliveries: Vec<DeliveryRow>,
}

/// A webhook's delivery log, newest first.
pub async fn log(
    State(s): State<AppState>,
    d: Dash,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Res {
    let p = principal(&d);
    let id = parse_id(&id)?;
    let w = s.core.get_webhook(&p, id).await?;
    let log = s.core.delivery_log(&p, id, None, LOG_PAGE_DEFAULT).await?;
    let now = s.core.now();
    let webhook = rows(now, vec![w]).pop().ok_or_else(DashError::not_found)?;
    Ok(ok(&LogPage {
        nav: d.nav("webhooks", q.notice()),
        webhook,
        deliveries: delivery_rows(now, log),
    }))
}

/// Sends a delivery again (same body and id).
pub async fn replay(
    State(s): State<AppState>,
    d: Dash,
    Path((id, delivery)): Path<(String, String)>,
    req: Request,
) -> Res {
    read_form(&s, &d, req).await?;
    let id = parse_id(&id)?;
    s.core
        .replay_delivery(&principal(&d), id, parse_id(&delivery)?)
        .await?;
    Ok(done(
        &format!("/dashboard/webhooks/{id}/"),
        "delivery-replayed",
    ))
}
