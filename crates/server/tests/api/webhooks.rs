//! Webhooks, black-box: subscriptions (`/v1/webhooks/`), signed deliveries to a real receiver
//! (an axum server on 127.0.0.1, so these apps allow private targets), retries with backoff and
//! the same idempotency id, the delivery log and replays, the SSRF refusals of the default
//! configuration, disabling after a day of failures, ownership, the secret at rest, two nodes
//! on one database, app notices, the dashboard pages, and a SIGKILLed `camgate serve` that
//! still delivers every acknowledged event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::common::session::Browser;
use crate::common::*;
use camgate_core::scope::ScopeSet;
use camgate_server::webhook_worker::{self, WebhookWorker};

// ---- the receiver

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    headers: HashMap<String, String>,
    body: String,
    /// The status it answered.
    status: u16,
}

impl Got {
    fn h(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[derive(Default)]
struct ReceiverState {
    got: Mutex<Vec<Got>>,
    /// Answer 500 to this many requests first.
    fail_first: AtomicUsize,
    /// Answer 500 to everything.
    always_fail: AtomicBool,
}

struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    fn got(&self) -> Vec<Got> {
        self.state.got.lock().unwrap().clone()
    }
    fn count(&self) -> usize {
        self.state.got.lock().unwrap().len()
    }
    async fn wait_for(&self, n: usize) -> Vec<Got> {
        wait_until(&format!("{n} requests at the receiver"), || {
            self.count() >= n
        })
        .await;
        self.got()
    }
}

/// A receiver on 127.0.0.1:0 that records every request and fails the first `fail_first`.
async fn receiver(fail_first: usize) -> Receiver {
    let state = Arc::new(ReceiverState::default());
    state.fail_first.store(fail_first, Ordering::SeqCst);
    let st = state.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let st = st.clone();
            async move {
                let fail = st.always_fail.load(Ordering::SeqCst)
                    || st
                        .fail_first
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                let status = if fail { 500 } else { 200 };
                let headers = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                st.got.lock().unwrap().push(Got {
                    headers,
                    body,
                    status,
                });
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Receiver {
        url: format!("http://{addr}/hook"),
        state,
        _stop: tx,
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..400 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

// ---- helpers

/// An app that allows private targets (the receiver is on loopback), with its delivery worker.
async fn app_with_worker() -> (TestApp, WebhookWorker) {
    let app = spawn_app_with(|c| c.webhooks_allow_private_targets = true).await;
    let worker = webhook_worker::spawn_with(app.core.clone(), true).unwrap();
    (app, worker)
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    // A personal access token comes with its scheme (`PersonalAccessToken …`).
    let auth = if token.starts_with("PersonalAccessToken ") {
        token.to_string()
    } else {
        format!("Bearer {token}")
    };
    let mut r = app
        .http
        .request(method, app.url(path))
        .header("Authorization", auth);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    send(app, reqwest::Method::POST, path, token, Some(body)).await
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    send(app, reqwest::Method::GET, path, token, None).await
}

async fn subscribe(app: &TestApp, token: &str, url: &str, events: &[&str]) -> Value {
    let (s, v) = post(
        app,
        "/v1/webhooks/",
        token,
        json!({"url": url, "events": events}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v
}

async fn camera(app: &TestApp, token: &str) -> i64 {
    let (s, v) = post(app, "/v1/cameras/", token, json!({"name": "door"})).await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_i64().unwrap()
}

/// Posts a motion event; its `event_id`.
async fn event(app: &TestApp, token: &str, cam: i64) -> String {
    let (s, v) = post(
        app,
        &format!("/v1/cameras/{cam}/events/"),
        token,
        json!({"type": "motion", "data": {"zone": "door"}}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["event_id"].as_str().unwrap().to_string()
}

async fn log(app: &TestApp, token: &str, hook: i64) -> Vec<Value> {
    let (s, v) = get(app, &format!("/v1/webhooks/{hook}/deliveries/"), token).await;
    assert_eq!(s, 200, "{v}");
    v["results"].as_array().unwrap().clone()
}

/// Waits until the newest delivery of `hook` satisfies `cond`; returns it.
async fn wait_delivery(
    app: &TestApp,
    token: &str,
    hook: i64,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..400 {
        if let Some(d) = log(app, token, hook).await.first() {
            if cond(d) {
                return d.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "timed out waiting for {what}: {:?}",
        log(app, token, hook).await
    );
}

fn unix(iso: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(iso.as_str().unwrap())
        .unwrap()
        .timestamp()
}

/// Checks `Camgate-Signature` with an HMAC computed here, independently of the server's code.
fn verify_signature(g: &Got, secret: &str, now: i64) {
    let header = g.h("camgate-signature");
    let (t, v1) = header
        .split_once(',')
        .unwrap_or_else(|| panic!("signature {header:?}"));
    let t: i64 = t.strip_prefix("t=").unwrap().parse().unwrap();
    let v1 = v1.strip_prefix("v1=").unwrap();
    assert!((t - now).abs() <= 1, "t={t} is not the server's time {now}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", g.body).as_bytes());
    let want = hex::encode(mac.finalize().into_bytes());
    assert_eq!(v1, want, "signature over `t.body`");
    // A wrong secret does not verify.
    let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec_wrong").unwrap();
    mac.update(format!("{t}.{}", g.body).as_bytes());
    assert_ne!(v1, hex::encode(mac.finalize().into_bytes()));
}

// ---- subscriptions and deliveries

#[tokio::test]
async fn a_posted_event_is_delivered_signed_with_its_headers() {
    let (app, _worker) = app_with_worker().await;
    let rx = receiver(0).await;
    let (_, token) = app.user_with_token("owner@example.com").await;

    let hook = subscribe(&app, &token, &rx.url, &["camera.event", "camera.event"]).await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 38,
        "{secret}"
    );
    assert!(secret[6..].chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(hook["url"], rx.url.as_str());
    assert_eq!(hook["events"], json!(["camera.event"]), "each type once");
    assert_eq!(hook["disabled"], false);
    assert!(hook["created_at"].is_string());
    let id = hook["id"].as_i64().unwrap();

    // camera.added is not subscribed: only the event arrives.
    let cam = camera(&app, &token).await;
    let event_id = event(&app, &token, cam).await;
    let got = rx.wait_for(1).await;
    let g = &got[0];
    assert_eq!(g.h("content-type"), "application/json");
    assert_eq!(g.h("user-agent"), "camgate-webhooks");
    assert_eq!(g.h("camgate-event"), "camera.event");
    verify_signature(g, &secret, app.clock_now());
    let body = g.json();
    assert_eq!(body["id"], event_id.as_str(), "the idempotency id");
    assert_eq!(body["type"], "camera.event");
    assert!(body["created_at"].is_string());
    assert_eq!(body["data"]["camera_id"], cam);
    assert_eq!(body["data"]["type"], "motion");
    assert_eq!(body["data"]["data"], json!({"zone": "door"}));

    let d = wait_delivery(&app, &token, id, "delivered", |d| d["state"] == "delivered").await;
    assert_eq!(
        g.h("camgate-delivery"),
        d["id"].as_i64().unwrap().to_string()
    );
    assert_eq!(d["event_id"], event_id.as_str());
    assert_eq!(d["type"], "camera.event");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["last_status"], 200);
    assert_eq!(d["last_error"], Value::Null);
    assert_eq!(d["next_attempt_at"], Value::Null);
    assert!(d["delivered_at"].is_string());
    assert_eq!(d["payload"], body);
    let attempts = d["attempt_log"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["status"], 200);
    assert!(attempts[0]["duration_ms"].as_i64().unwrap() >= 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(rx.count(), 1, "delivered once");
}

#[tokio::test]
async fn retries_back_off_until_delivered_with_the_same_id() {
    let (app, _worker) = app_with_worker().await;
    let rx = receiver(3).await;
    let (_, token) = app.user_with_token("owner@example.com").await;
    let hook = subscribe(&app, &token, &rx.url, &["camera.event"]).await;
    let (id, secret) = (
        hook["id"].as_i64().unwrap(),
        hook["secret"].as_str().unwrap(),
    );
    let cam = camera(&app, &token).await;
    let event_id = event(&app, &token, cam).await;

    // Three failures, each retried after about 1 s × 2^(n−1) (± 20 %, whole seconds).
    let allowed: [&[i64]; 3] = [&[1], &[2], &[3, 4, 5]];
    for (n, ok_delays) in allowed.iter().enumerate() {
        let attempts = n as i64 + 1;
        // The outcome is written after the attempt's log row: wait until the retry time
        // replaced the claim's 60 s lease.
        let d = wait_delivery(&app, &token, id, "a failed attempt", |d| {
            d["attempts"] == attempts
                && d["attempt_log"].as_array().unwrap().len() == n + 1
                && d["next_attempt_at"].is_string()
                && unix(&d["next_attempt_at"]) - app.clock_now() < 60
        })
        .await;
        assert_eq!(d["state"], "pending");
        assert_eq!(d["last_status"], 500);
        assert_eq!(d["last_error"], "HTTP 500");
        let now = app.clock_now();
        let delay = unix(&d["next_attempt_at"]) - now;
        assert!(
            ok_delays.contains(&delay),
            "retry {attempts} after {delay} s"
        );
        // Not due yet: nothing more arrives.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(rx.count(), n + 1);
        app.clock.advance(delay);
    }
    let d = wait_delivery(&app, &token, id, "delivered", |d| d["state"] == "delivered").await;
    assert_eq!(d["attempts"], 4);
    let statuses: Vec<i64> = d["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 500, 500, 200]);
    let got = rx.got();
    assert_eq!(got.len(), 4);
    let answered: Vec<u16> = got.iter().map(|g| g.status).collect();
    assert_eq!(answered, [500, 500, 500, 200]);
    for g in &got {
        assert_eq!(g.json()["id"], event_id.as_str(), "same idempotency id");
        assert_eq!(g.h("camgate-delivery"), id_str(&d));
        assert_eq!(g.body, got[0].body, "the same body every time");
    }
    verify_signature(&got[3], secret, app.clock_now());

    // Replay: sent again, same id, one more attempt in the log.
    let (s, r) = post(
        &app,
        &format!("/v1/webhooks/{id}/deliveries/{}/replay/", id_str(&d)),
        &token,
        json!({}),
    )
    .await;
    assert_eq!(s, 202, "{r}");
    assert_eq!(r["state"], "pending");
    assert_eq!(r["id"], d["id"]);
    let got = rx.wait_for(5).await;
    assert_eq!(got[4].json()["id"], event_id.as_str());
    assert_eq!(got[4].body, got[0].body);
    let d = wait_delivery(&app, &token, id, "replayed", |d| {
        d["state"] == "delivered" && d["attempts"] == 5
    })
    .await;
    assert_eq!(d["attempt_log"].as_array().unwrap().len(), 5);
}

fn id_str(d: &Value) -> String {
    d["id"].as_i64().unwrap().to_string()
}

#[tokio::test]
async fn a_webhook_is_disabled_after_a_day_of_failures() {
    let (app, _worker) = app_with_worker().await;
    let rx = receiver(0).await;
    rx.state.always_fail.store(true, Ordering::SeqCst);
    // A token that outlives the day the clock is moved on.
    let user = app.create_user("owner@example.com", PASSWORD).await;
    let (_, pat) = app
        .core
        .create_pat(user.id, "hooks", ScopeSet::READ_WRITE, None)
        .await
        .unwrap();
    let token = format!("PersonalAccessToken {pat}");
    let hook = subscribe(&app, &token, &rx.url, &["camera.event"]).await;
    let id = hook["id"].as_i64().unwrap();
    let cam = camera(&app, &token).await;
    event(&app, &token, cam).await;
    let first = wait_delivery(&app, &token, id, "a failure", |d| {
        d["attempts"] == 1 && d["last_status"] == 500
    })
    .await;
    let (_, w) = get(&app, &format!("/v1/webhooks/{id}/"), &token).await;
    assert_eq!(w["failing_since"], first["attempt_log"][0]["at"]);
    assert_eq!(w["disabled"], false);

    // 23 hours later: still failing, still enabled, still retried.
    app.clock.advance(23 * 3600);
    let d = wait_delivery(&app, &token, id, "a second failure", |d| {
        d["attempts"] == 2 && d["attempt_log"].as_array().unwrap().len() == 2
    })
    .await;
    assert_eq!(d["state"], "pending");
    let (_, w) = get(&app, &format!("/v1/webhooks/{id}/"), &token).await;
    assert_eq!(w["disabled"], false);

    // A day after the first failure: the next failure disables it, the delivery is failed.
    app.clock.advance(3600 + 5);
    let d = wait_delivery(&app, &token, id, "given up", |d| d["state"] == "failed").await;
    assert_eq!(d["attempts"], 3);
    assert_eq!(d["next_attempt_at"], Value::Null);
    let (_, w) = get(&app, &format!("/v1/webhooks/{id}/"), &token).await;
    assert_eq!(w["disabled"], true, "{w}");
    assert!(w["disabled_at"].is_string());
    let (_, list) = get(&app, "/v1/webhooks/", &token).await;
    assert_eq!(list[0]["disabled"], true);

    // Nothing more is queued for it, nor sent.
    event(&app, &token, cam).await;
    app.clock.advance(3600);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(log(&app, &token, id).await.len(), 1);
    assert_eq!(rx.count(), 3);

    // Replaying (the receiver works again) enables it and delivers.
    rx.state.always_fail.store(false, Ordering::SeqCst);
    let (s, _) = post(
        &app,
        &format!("/v1/webhooks/{id}/deliveries/{}/replay/", id_str(&d)),
        &token,
        json!({}),
    )
    .await;
    assert_eq!(s, 202);
    wait_delivery(&app, &token, id, "delivered", |d| d["state"] == "delivered").await;
    let (_, w) = get(&app, &format!("/v1/webhooks/{id}/"), &token).await;
    assert_eq!(w["disabled"], false);
    assert_eq!(w["failing_since"], Value::Null);
}

// ---- refusals

#[tokio::test]
async fn private_targets_are_refused_by_default_and_nothing_is_stored() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("owner@example.com").await;
    for url in [
        "https://127.0.0.1/hook",
        "https://127.0.0.1:8443/hook",
        "https://10.1.2.3/hook",
        "https://172.16.5.4/hook",
        "https://192.168.1.10/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://100.64.0.1/hook",
        "https://0.0.0.0/hook",
        "https://2130706433/hook",
        "https://localhost/hook",
        "https://localhost.:9/hook",
        // Plain http, even to a public address.
        "http://93.184.215.14/hook",
    ] {
        let (s, v) = post(
            &app,
            "/v1/webhooks/",
            &token,
            json!({"url": url, "events": ["camera.event"]}),
        )
        .await;
        assert_eq!(s, 400, "{url}: {v}");
        assert_eq!(v["title"], "invalid", "{url}: {v}");
    }
    // Bad input of other kinds.
    for body in [
        json!({"events": ["camera.event"]}),
        json!({"url": "https://93.184.215.14/hook"}),
        json!({"url": "https://93.184.215.14/hook", "events": []}),
        json!({"url": "https://93.184.215.14/hook", "events": ["camera.exploded"]}),
        json!({"url": "ftp://93.184.215.14/hook", "events": ["camera.event"]}),
        json!({"url": "hook", "events": ["camera.event"]}),
        json!({"url": format!("https://93.184.215.14/{}", "a".repeat(2000)), "events": ["camera.event"]}),
        json!({"url": "https://93.184.215.14/hook", "events": ["camera.event"], "extra": 1}),
    ] {
        let (s, v) = post(&app, "/v1/webhooks/", &token, body.clone()).await;
        assert_eq!(s, 400, "{body}: {v}");
    }
    let (s, list) = get(&app, "/v1/webhooks/", &token).await;
    assert_eq!(s, 200);
    assert_eq!(list, json!([]), "nothing stored");

    // A public https URL is fine; at most 20 per account.
    for i in 0..20 {
        let (s, v) = post(
            &app,
            "/v1/webhooks/",
            &token,
            json!({"url": format!("https://93.184.215.14/hook/{i}"), "events": ["app.revoked"]}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = post(
        &app,
        "/v1/webhooks/",
        &token,
        json!({"url": "https://93.184.215.14/one-more", "events": ["app.revoked"]}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
}

#[tokio::test]
async fn a_delivery_to_a_private_address_is_refused_at_delivery_time_too() {
    // Created while private targets were allowed (a node configured so, or a configuration
    // changed since), delivered by a worker that refuses them: never sent, and the refusal is
    // in the log. `localhost` is refused by the delivery client's own resolver.
    let app = spawn_app_with(|c| c.webhooks_allow_private_targets = true).await;
    let rx = receiver(0).await;
    let (_, token) = app.user_with_token("owner@example.com").await;
    let https = rx.url.replace("http://", "https://");
    let literal = subscribe(&app, &token, &https, &["camera.event"]).await;
    let named = subscribe(
        &app,
        &token,
        &https.replace("127.0.0.1", "localhost"),
        &["camera.event"],
    )
    .await;
    let plain = subscribe(&app, &token, &rx.url, &["camera.event"]).await;
    let strict = webhook_worker::spawn_with(app.core.clone(), false).unwrap();
    let cam = camera(&app, &token).await;
    event(&app, &token, cam).await;
    for (h, why) in [
        (&literal, "loopback"),
        (&named, "loopback"),
        (&plain, "https"),
    ] {
        let id = h["id"].as_i64().unwrap();
        let d = wait_delivery(&app, &token, id, "a refused attempt", |d| {
            d["attempts"] == 1 && d["last_error"].is_string()
        })
        .await;
        assert_eq!(d["state"], "pending");
        assert_eq!(d["last_status"], Value::Null);
        let e = d["last_error"].as_str().unwrap();
        assert!(e.contains(why), "{e}");
    }
    assert_eq!(rx.count(), 0, "nothing reached the receiver");
    strict.stop().await;
}

#[tokio::test]
async fn webhooks_are_their_owners_alone() {
    let (app, _worker) = app_with_worker().await;
    let rx = receiver(0).await;
    let (owner, token) = app.user_with_token("owner@example.com").await;
    let (_, other) = app.user_with_token("other@example.com").await;
    let hook = subscribe(&app, &token, &rx.url, &["camera.event"]).await;
    let id = hook["id"].as_i64().unwrap();
    let cam = camera(&app, &token).await;
    event(&app, &token, cam).await;
    let d = wait_delivery(&app, &token, id, "delivered", |d| d["state"] == "delivered").await;
    let did = id_str(&d);

    // Someone else: 404 everywhere, and an empty list.
    for (m, p) in [
        ("GET", format!("/v1/webhooks/{id}/")),
        ("DELETE", format!("/v1/webhooks/{id}/")),
        ("GET", format!("/v1/webhooks/{id}/deliveries/")),
        (
            "POST",
            format!("/v1/webhooks/{id}/deliveries/{did}/replay/"),
        ),
        ("GET", "/v1/webhooks/999999/".to_string()),
        ("GET", "/v1/webhooks/abc/".to_string()),
    ] {
        let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        let (s, v) = send(&app, method, &p, &other, None).await;
        assert_eq!(s, 404, "{m} {p}: {v}");
    }
    let (_, list) = get(&app, "/v1/webhooks/", &other).await;
    assert_eq!(list, json!([]));
    // Nor under another of one's own webhooks.
    let mine = subscribe(&app, &other, &rx.url, &["camera.added"]).await;
    let (s, _) = post(
        &app,
        &format!("/v1/webhooks/{}/deliveries/{did}/replay/", mine["id"]),
        &other,
        json!({}),
    )
    .await;
    assert_eq!(s, 404);

    // Scopes: reading needs `read`, writing `write`.
    let (_, read_only) = app
        .core
        .create_pat(owner.id, "ro", ScopeSet::READ, None)
        .await
        .unwrap();
    let ro = |m: &str, p: String| {
        let m = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
        app.http
            .request(m, app.url(&p))
            .header("Authorization", format!("PersonalAccessToken {read_only}"))
            .json(&json!({"url": "https://93.184.215.14/x", "events": ["camera.event"]}))
            .send()
    };
    assert_eq!(
        ro("GET", "/v1/webhooks/".into()).await.unwrap().status(),
        200
    );
    assert_eq!(
        ro("GET", format!("/v1/webhooks/{id}/deliveries/"))
            .await
            .unwrap()
            .status(),
        200
    );
    for (m, p) in [
        ("POST", "/v1/webhooks/".to_string()),
        ("DELETE", format!("/v1/webhooks/{id}/")),
        (
            "POST",
            format!("/v1/webhooks/{id}/deliveries/{did}/replay/"),
        ),
    ] {
        assert_eq!(ro(m, p.clone()).await.unwrap().status(), 403, "{m} {p}");
    }
    // No credentials: 401.
    let r = app.http.get(app.url("/v1/webhooks/")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    // The owner deletes it: gone, with its log.
    let (s, _) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/v1/webhooks/{id}/"),
        &token,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = get(&app, &format!("/v1/webhooks/{id}/deliveries/"), &token).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn a_paired_device_token_may_not_manage_webhooks() {
    use crate::device::{pair, signed_in, tv_client};
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let mut b = signed_in(&app, "owner@example.com").await;
    let device = pair(&app, &mut b, &client, "SN-1").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = get(&app, "/v1/webhooks/", &device).await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = post(
        &app,
        "/v1/webhooks/",
        &device,
        json!({"url": "https://93.184.215.14/x", "events": ["camera.event"]}),
    )
    .await;
    assert_eq!(s, 403, "{v}");
}

#[tokio::test]
async fn the_secret_is_shown_once_and_never_stored_in_the_clear() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("owner@example.com").await;
    let hook = subscribe(
        &app,
        &token,
        "https://93.184.215.14/hook",
        &["camera.added"],
    )
    .await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    let id = hook["id"].as_i64().unwrap();
    camera(&app, &token).await;
    for path in [
        "/v1/webhooks/".to_string(),
        format!("/v1/webhooks/{id}/"),
        format!("/v1/webhooks/{id}/deliveries/"),
    ] {
        let r = app.get_bearer(&path, &token).await;
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(!text.contains(&secret), "{path} shows the secret");
        assert!(!text.contains("secret"), "{path}: {text}");
    }
    // The raw rows.
    let hex_secret = hex::encode(secret.as_bytes());
    let rows: Vec<String> = if use_postgres() {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
        let mut all = Vec::new();
        for t in [
            "webhooks",
            "webhook_deliveries",
            "webhook_attempts",
            "settings",
        ] {
            let v: Vec<String> =
                sqlx::query_scalar(&format!("SELECT row_to_json(t)::text FROM {t} t"))
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
            all.extend(v);
        }
        let sealed: Vec<u8> = sqlx::query_scalar("SELECT secret_enc FROM webhooks")
            .fetch_one(&mut c)
            .await
            .unwrap();
        all.push(String::from_utf8_lossy(&sealed).into_owned());
        all
    } else {
        // The whole database file and its WAL, byte for byte.
        let path = app.db.url.trim_start_matches("sqlite://").to_string();
        let mut all = Vec::new();
        for p in [path.clone(), format!("{path}-wal")] {
            if let Ok(bytes) = std::fs::read(&p) {
                all.push(String::from_utf8_lossy(&bytes).into_owned());
            }
        }
        assert!(!all.is_empty());
        all
    };
    assert!(
        rows.iter().any(|r| r.contains("93.184.215.14")),
        "the rows were read"
    );
    for r in &rows {
        assert!(!r.contains(&secret), "the secret is stored in the clear");
        assert!(
            !r.contains(&secret[6..]),
            "the secret is stored in the clear"
        );
        assert!(
            !r.contains(&hex_secret),
            "the secret is stored in the clear (hex)"
        );
    }
}

// ---- notices

#[tokio::test]
async fn app_authorized_and_revoked_are_notified() {
    let (app, _worker) = app_with_worker().await;
    let rx = receiver(0).await;
    let (user, token) = app.user_with_token("owner@example.com").await;
    subscribe(&app, &token, &rx.url, &["app.authorized", "app.revoked"]).await;
    let client_id = app.public_client("angelcam").await;
    let client = app
        .core
        .store
        .client_by_client_id(&client_id)
        .await
        .unwrap()
        .unwrap();
    // What the consent page does when the user approves.
    app.core
        .remember_consent(user.id, &client, ScopeSet::READ)
        .await
        .unwrap();
    let got = rx.wait_for(1).await;
    let v = got[0].json();
    assert_eq!(v["type"], "app.authorized");
    assert_eq!(got[0].h("camgate-event"), "app.authorized");
    assert!(v["id"].as_str().unwrap().starts_with("ntc_"));
    assert_eq!(v["data"]["client_id"], client_id.as_str());
    assert_eq!(v["data"]["scope"], "read");
    // The dashboard's revoke.
    let mut b = Browser::new(&app);
    b.sign_in("owner@example.com", PASSWORD).await;
    let r = b
        .post_csrf(&format!("/dashboard/authorized/{client_id}/revoke"), &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let got = rx.wait_for(2).await;
    let v = got[1].json();
    assert_eq!(v["type"], "app.revoked");
    assert_eq!(v["data"]["client_id"], client_id.as_str());
    assert_ne!(v["id"], got[0].json()["id"]);
}

// ---- two nodes

#[tokio::test]
async fn two_nodes_deliver_every_event_and_never_claim_one_twice_within_a_lease() {
    let (a, _wa) = app_with_worker().await;
    let b = a.spawn_node().await;
    let _wb = webhook_worker::spawn_with(b.core.clone(), true).unwrap();
    let rx = receiver(0).await;
    let (_, token) = a.user_with_token("owner@example.com").await;
    let hook = subscribe(&a, &token, &rx.url, &["camera.event"]).await;
    let id = hook["id"].as_i64().unwrap();
    let cam = camera(&a, &token).await;
    let mut posted = HashSet::new();
    for i in 0..20 {
        let node = if i % 2 == 0 { &a } else { &b };
        posted.insert(event(node, &token, cam).await);
    }
    wait_until("every event at the receiver", || {
        let got: HashSet<String> = rx
            .got()
            .iter()
            .map(|g| g.json()["id"].as_str().unwrap().to_string())
            .collect();
        posted.is_subset(&got)
    })
    .await;
    // The lease never ended (the shared clock stood still): one claim, one attempt, one
    // request per delivery.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let deliveries = log(&a, &token, id).await;
    assert_eq!(deliveries.len(), 20);
    for d in &deliveries {
        assert_eq!(d["state"], "delivered", "{d}");
        assert_eq!(d["attempts"], 1, "claimed twice: {d}");
        assert_eq!(d["attempt_log"].as_array().unwrap().len(), 1, "{d}");
    }
    let got = rx.got();
    assert_eq!(got.len(), 20, "a delivery was sent twice");
    let ids: HashSet<&str> = got.iter().map(|g| g.h("camgate-delivery")).collect();
    assert_eq!(ids.len(), 20);
}

// ---- the dashboard

fn input_value(body: &str, id: &str) -> String {
    let i = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element #{id} in {body}"));
    let tag_end = i + body[i..].find('>').unwrap();
    let tag = &body[i..tag_end];
    let v = tag.find("value=\"").unwrap() + "value=\"".len();
    let end = tag[v..].find('"').unwrap();
    tag[v..v + end].to_string()
}

#[tokio::test]
async fn the_dashboard_adds_lists_logs_replays_and_deletes_webhooks() {
    let (app, _worker) = app_with_worker().await;
    let rx = receiver(0).await;
    let (_, token) = app.user_with_token("owner@example.com").await;
    let mut b = Browser::new(&app);
    b.sign_in("owner@example.com", PASSWORD).await;
    b.get("/dashboard/webhooks/")
        .await
        .ok()
        .has("No webhooks")
        .has("id=\"nav-webhooks\" aria-current=\"page\"");

    // Errors beside their fields.
    let r = b
        .post_csrf("/dashboard/webhooks/", &[("url", &rx.url)])
        .await;
    assert_eq!(r.status, 400);
    r.field_error("events");
    let r = b
        .post_csrf(
            "/dashboard/webhooks/",
            &[("url", "ftp://x.example/"), ("events", "camera.event")],
        )
        .await;
    assert_eq!(r.status, 400);
    r.field_error("url");
    // Without CSRF: refused.
    let r = b
        .post(
            "/dashboard/webhooks/",
            &[("url", &rx.url), ("events", "camera.event")],
        )
        .await;
    assert_eq!(r.status, 403);

    // Added: the secret is shown once.
    let r = b
        .post_csrf(
            "/dashboard/webhooks/",
            &[
                ("url", &rx.url),
                ("events", "camera.event"),
                ("events", "camera.added"),
            ],
        )
        .await;
    r.ok().has("Copy the signing secret now");
    let secret = input_value(&r.body, "secret-value");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let list = b.get("/dashboard/webhooks/").await;
    list.ok().has(&rx.url).lacks(&secret).lacks("No webhooks");
    let (_, hooks) = get(&app, "/v1/webhooks/", &token).await;
    let id = hooks[0]["id"].as_i64().unwrap();
    assert_eq!(hooks[0]["events"], json!(["camera.event", "camera.added"]));

    // A delivery, in the log, replayed from it.
    camera(&app, &token).await;
    rx.wait_for(1).await;
    verify_signature(&rx.got()[0], &secret, app.clock_now());
    let d = wait_delivery(&app, &token, id, "delivered", |d| d["state"] == "delivered").await;
    let page = b.get(&format!("/dashboard/webhooks/{id}/")).await;
    page.ok()
        .has("camera.added")
        .has("delivered")
        .has(&format!("id=\"replay-{}\"", id_str(&d)))
        .lacks(&secret);
    let r = b
        .post_csrf(
            &format!("/dashboard/webhooks/{id}/deliveries/{}/replay", id_str(&d)),
            &[],
        )
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.location(),
        format!("/dashboard/webhooks/{id}/?notice=delivery-replayed")
    );
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].json()["id"], got[0].json()["id"]);
    b.get(&r.location()).await.ok().has("Delivery queued");

    // Someone else's pages are not found.
    app.create_user("other@example.com", PASSWORD).await;
    let mut o = Browser::new(&app);
    o.sign_in("other@example.com", PASSWORD).await;
    assert_eq!(
        o.get(&format!("/dashboard/webhooks/{id}/")).await.status,
        404
    );
    assert_eq!(
        o.get(&format!("/dashboard/webhooks/{id}/delete"))
            .await
            .status,
        404
    );
    let r = o
        .post_csrf(
            &format!("/dashboard/webhooks/{id}/deliveries/{}/replay", id_str(&d)),
            &[],
        )
        .await;
    assert_eq!(r.status, 404);

    // Deleted after a confirmation page.
    b.get(&format!("/dashboard/webhooks/{id}/delete"))
        .await
        .ok()
        .has("Delete the webhook");
    let r = b
        .post_csrf(&format!("/dashboard/webhooks/{id}/delete"), &[])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/dashboard/webhooks/?notice=webhook-deleted");
    b.get(&r.location())
        .await
        .ok()
        .has("Webhook deleted")
        .has("No webhooks");
}

#[tokio::test]
async fn the_dashboard_refuses_private_targets_by_default() {
    let app = spawn_app().await;
    app.create_user("owner@example.com", PASSWORD).await;
    let mut b = Browser::new(&app);
    b.sign_in("owner@example.com", PASSWORD).await;
    let r = b
        .post_csrf(
            "/dashboard/webhooks/",
            &[
                ("url", "https://169.254.169.254/latest/meta-data/"),
                ("events", "camera.event"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.field_error("url").contains("link-local"), "{}", r.body);
    b.get("/dashboard/webhooks/").await.ok().has("No webhooks");
}

// ---- the real binary, killed

mod crash {
    use super::*;
    use std::io::Write;
    use std::process::{Child, Command, Stdio};

    fn camgate(db: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_camgate"));
        for (k, _) in std::env::vars() {
            if k.starts_with("CAMGATE_") {
                c.env_remove(k);
            }
        }
        c.env("CAMGATE_DATABASE_URL", db).env("CAMGATE_LOG", "warn");
        c
    }

    fn cli_json(db: &str, args: &[&str], stdin: Option<&str>) -> Value {
        let mut child = camgate(db)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        {
            let mut input = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                input.write_all(s.as_bytes()).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}");
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    struct Server(Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    async fn start(db: &str, config: &std::path::Path, http: &reqwest::Client) -> (Server, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Server(
            camgate(db)
                .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
                .env("CAMGATE_CONFIG", config)
                // The receiver is on loopback; the variable is the documented switch.
                .env("CAMGATE_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        );
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..400 {
            assert!(server.0.try_wait().unwrap().is_none(), "serve exited early");
            if let Ok(r) = http.get(format!("{base}/health/ready")).send().await {
                if r.status() == 200 {
                    return (server, base);
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("serve did not become ready");
    }

    /// `camgate config check` knows `[webhooks] allow_private_targets` and the variable that
    /// overrides it.
    #[test]
    fn config_check_reports_the_webhooks_setting_from_file_and_environment() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("camgate.toml");
        let check = |file: &str, env: Option<&str>| {
            std::fs::write(&f, file).unwrap();
            let mut c = camgate("sqlite://unused.db");
            c.args(["config", "check", "--config"]).arg(&f);
            if let Some(v) = env {
                c.env("CAMGATE_WEBHOOKS_ALLOW_PRIVATE_TARGETS", v);
            }
            let o = c.output().unwrap();
            (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        };
        let line = |on: bool| format!("webhooks.allow_private_targets = {on}");
        let (ok, out, _) = check("", None);
        assert!(ok && out.contains(&line(false)), "{out}");
        let (ok, out, _) = check("[webhooks]\nallow_private_targets = true\n", None);
        assert!(ok && out.contains(&line(true)), "{out}");
        // The environment wins over the file, either way.
        let (ok, out, _) = check("", Some("1"));
        assert!(ok && out.contains(&line(true)), "{out}");
        let (ok, out, _) = check("[webhooks]\nallow_private_targets = true\n", Some("0"));
        assert!(ok && out.contains(&line(false)), "{out}");
        // Unknown keys and values are named.
        let (ok, _, err) = check("[webhooks]\nallow_private = true\n", None);
        assert!(!ok && err.contains("allow_private"), "{err}");
        let (ok, _, err) = check("", Some("maybe"));
        assert!(
            !ok && err.contains("CAMGATE_WEBHOOKS_ALLOW_PRIVATE_TARGETS"),
            "{err}"
        );
    }

    /// A user made with the CLI and a personal access token of theirs.
    fn user_with_pat(db: &str, email: &str) -> String {
        cli_json(
            db,
            &[
                "user",
                "add",
                "--email",
                email,
                "--password-stdin",
                "--json",
            ],
            Some("a long password\n"),
        );
        cli_json(
            db,
            &["pat", "add", "--user", email, "--name", "t", "--json"],
            None,
        )["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A camera named `name`, created over HTTP; its id.
    async fn http_camera(http: &reqwest::Client, base: &str, auth: &str, name: &str) -> i64 {
        let cam: Value = http
            .post(format!("{base}/v1/cameras/"))
            .header("Authorization", auth)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        cam["id"].as_i64().unwrap()
    }

    /// A node with `[webhooks] deliver = false` accepts events and queues their deliveries but
    /// sends nothing; a node with delivery on (the default) then delivers them.
    #[tokio::test]
    async fn a_node_with_delivery_off_queues_and_another_delivers() {
        let _quiet = quiet().await;
        let db = TestDb::new().await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("camgate.toml");
        std::fs::write(
            &config,
            "camera_posts_per_minute = 0\n[webhooks]\ndeliver = false\n",
        )
        .unwrap();
        cli_json(&db.url, &["migrate"], None);
        let pat = user_with_pat(&db.url, "quiet@example.com");
        let auth = format!("PersonalAccessToken {pat}");
        let rx = receiver(0).await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let (quiet_node, base) = start(&db.url, &config, &http).await;
        let cam = http_camera(&http, &base, &auth, "queued").await;
        let hook: Value = http
            .post(format!("{base}/v1/webhooks/"))
            .header("Authorization", &auth)
            .json(&json!({"url": rx.url, "events": ["camera.event"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let hook = hook["id"].as_i64().unwrap();
        for _ in 0..3 {
            let r = http
                .post(format!("{base}/v1/cameras/{cam}/events/"))
                .header("Authorization", &auth)
                .json(&json!({"type": "motion"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
        // Well past the worker's 250 ms poll: nothing sent, three deliveries pending.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(rx.count(), 0, "a node with delivery off delivered");
        let log: Value = http
            .get(format!("{base}/v1/webhooks/{hook}/deliveries/"))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rows = log["results"].as_array().expect("a delivery log");
        assert_eq!(rows.len(), 3, "{log}");
        assert!(rows.iter().all(|d| d["state"] == "pending"), "{log}");
        drop(quiet_node);

        // The default configuration delivers: all three arrive.
        std::fs::write(&config, "camera_posts_per_minute = 0\n").unwrap();
        let (_node, _) = start(&db.url, &config, &http).await;
        rx.wait_for(3).await;
    }

    /// Posts events until a request fails (the server was killed); the acknowledged ids.
    async fn poster(
        http: reqwest::Client,
        base: String,
        pat: String,
        cam: i64,
        acked: Arc<Mutex<Vec<String>>>,
    ) {
        loop {
            let r = http
                .post(format!("{base}/v1/cameras/{cam}/events/"))
                .header("Authorization", format!("PersonalAccessToken {pat}"))
                .json(&json!({"type": "custom", "data": {"n": 1}}))
                .send()
                .await;
            let Ok(r) = r else { return };
            if r.status() != 201 {
                return;
            }
            let Ok(v) = r.json::<Value>().await else {
                return;
            };
            acked
                .lock()
                .unwrap()
                .push(v["event_id"].as_str().unwrap().to_string());
        }
    }

    /// `camgate serve` is SIGKILLed while events are being posted and delivered, twice, and
    /// restarted: every event whose POST was answered 201 reaches the receiver at least once
    /// (deliveries in flight at the kill come back when their 60 s lease ends).
    #[tokio::test]
    async fn sigkill_while_posting_loses_no_acknowledged_event() {
        let _quiet = quiet().await;
        let db = TestDb::new().await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("camgate.toml");
        std::fs::write(&config, "camera_posts_per_minute = 0\n").unwrap();
        cli_json(&db.url, &["migrate"], None);
        let pat = user_with_pat(&db.url, "load@example.com");
        let rx = receiver(0).await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let auth = format!("PersonalAccessToken {pat}");

        let (server, base) = start(&db.url, &config, &http).await;
        let cam = http_camera(&http, &base, &auth, "load").await;
        let r = http
            .post(format!("{base}/v1/webhooks/"))
            .header("Authorization", &auth)
            .json(&json!({"url": rx.url, "events": ["camera.event"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

        let mut acked_all: Vec<String> = Vec::new();
        let mut running = Some((server, base));
        for round in 0..2u64 {
            let (mut server, base) = match running.take() {
                Some(r) => r,
                None => start(&db.url, &config, &http).await,
            };
            let acked = Arc::new(Mutex::new(Vec::new()));
            let posters: Vec<_> = (0..4)
                .map(|_| {
                    tokio::spawn(poster(
                        http.clone(),
                        base.clone(),
                        pat.clone(),
                        cam,
                        acked.clone(),
                    ))
                })
                .collect();
            // Kill once events are flowing and being delivered.
            let delivered_before = rx.count();
            wait_until("acknowledged and delivered events", || {
                acked.lock().unwrap().len() >= 30 && rx.count() >= delivered_before + 10
            })
            .await;
            tokio::time::sleep(Duration::from_millis(40 + round * 70)).await;
            server.0.kill().unwrap(); // SIGKILL on Unix
            server.0.wait().unwrap();
            for p in posters {
                p.await.unwrap();
            }
            acked_all.extend(acked.lock().unwrap().drain(..));
        }
        // Restarted: everything acknowledged arrives (within the lease plus some).
        let before_restart = rx.count();
        let (_server, _) = start(&db.url, &config, &http).await;
        let want: HashSet<String> = acked_all.iter().cloned().collect();
        let mut missing = want.len();
        for _ in 0..(90 * 4) {
            let got: HashSet<String> = rx
                .got()
                .iter()
                .map(|g| g.json()["id"].as_str().unwrap().to_string())
                .collect();
            missing = want.difference(&got).count();
            if missing == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(
            missing,
            0,
            "{missing} of {} acknowledged events never delivered",
            want.len()
        );
        eprintln!(
            "webhooks crash: {} acknowledged events delivered after 2 SIGKILLs ({} requests \
             received, duplicates included; {} after the last restart)",
            want.len(),
            rx.count(),
            rx.count() - before_restart
        );
    }
}
