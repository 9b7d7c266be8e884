//! Black-box tests of the OAuth 2.0 Device Authorization Grant (RFC 8628): the device
//! authorization endpoint (`POST /oauth/device_authorization`, §3.1–3.2), polling the token
//! endpoint with `grant_type=urn:ietf:params:oauth:grant-type:device_code` (§3.4–3.5), the
//! verification page `/device` where a signed-in user enters the user code and approves or
//! denies (§3.3), its brute-force protection (§5.1), discovery (RFC 8414), the CLI and the
//! OpenAPI document; plus one walk through the flow in headless Chromium. Each test runs the
//! real app on port 0 with its own database (SQLite, or PostgreSQL with
//! `CAMGATE_TEST_DATABASE=postgres`) and a manual clock that only moves when a test advances
//! it; the HTTP tests keep cookies by hand and never follow redirects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::common::browser::{self, save_screenshot, type_into, wait_for_text, wait_for_url};
use crate::common::session::*;
use crate::common::*;
use camgate_core::clock::ManualClock;
use camgate_core::model::{ClientKind, GrantType};
use camgate_core::scope::ScopeSet;
use fantoccini::Locator;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const USER_EMAIL: &str = "viewer@example.com";
/// The application's name as the confirmation page must show it.
const TV: &str = "Living Room TV";
/// The user-code alphabet of the contract (no vowels, no look-alikes).
const ALPHABET: &str = "BCDFGHJKLMNPQRSTVWXZ";

// ---- fixtures

/// Registers a client named `name` with these grants and scopes (angelcam profile).
async fn device_client_with(
    app: &TestApp,
    name: &str,
    kind: ClientKind,
    grants: Vec<GrantType>,
    scopes: ScopeSet,
) -> (String, Option<String>) {
    let mut input = client_input(name, kind, "angelcam");
    input.grants = grants;
    input.scopes = Some(scopes);
    let r = app.register(input).await;
    (r.client.client_id, r.secret)
}

/// A public client "Living Room TV" with the device and refresh grants, read + write.
pub(crate) async fn tv_client(app: &TestApp) -> String {
    device_client_with(
        app,
        TV,
        ClientKind::Public,
        vec![GrantType::DeviceCode, GrantType::RefreshToken],
        ScopeSet::READ_WRITE,
    )
    .await
    .0
}

/// Status, headers and JSON body of an answer (panics when the body is not JSON).
async fn parts(r: reqwest::Response) -> (u16, HeaderMap, Value) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"));
    (status, headers, body)
}

/// POSTs a form to the device authorization endpoint.
async fn device_authorization(app: &TestApp, form: &[(&str, &str)]) -> (u16, HeaderMap, Value) {
    let r = app
        .http
        .post(app.url("/oauth/device_authorization"))
        .form(form)
        .send()
        .await
        .unwrap();
    parts(r).await
}

/// Starts the flow for a public client; panics unless 200. Returns the JSON answer.
async fn start_flow(app: &TestApp, client_id: &str) -> Value {
    let got = device_authorization(app, &[("client_id", client_id)]).await;
    assert_eq!(got.0, 200, "device authorization failed: {}", got.2);
    got.2
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} is not a string in {v}"))
}

/// Polls the token endpoint with the device code (public client: just client_id).
async fn poll(app: &TestApp, client_id: &str, device_code: &str) -> (u16, HeaderMap, Value) {
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    parts(r).await
}

/// Asserts an OAuth error answer: exact status and code, JSON, not cached, and no other
/// members than `error`, `error_description` (a string when present) and `error_uri`.
#[track_caller]
fn assert_oauth_error(got: &(u16, HeaderMap, Value), status: u16, code: &str) {
    let (st, h, body) = got;
    assert_eq!(*st, status, "expected {status} {code}, got body: {body}");
    assert_eq!(body["error"], code, "body: {body}");
    let obj = body.as_object().unwrap();
    for k in obj.keys() {
        assert!(
            ["error", "error_description", "error_uri"].contains(&k.as_str()),
            "unexpected member {k} in an error answer: {body}"
        );
    }
    if let Some(d) = obj.get("error_description") {
        assert!(d.is_string(), "error_description is not a string: {body}");
    }
    assert_eq!(h["cache-control"], "no-store", "error answer cacheable");
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
}

/// Asserts a successful token answer with a refresh token and `scope`; returns the body.
#[track_caller]
fn assert_tokens(got: &(u16, HeaderMap, Value), scope: &str) -> Value {
    let (st, h, body) = got;
    assert_eq!(*st, 200, "poll did not give tokens: {body}");
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "scope",
            "token_type"
        ],
        "{body}"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().is_some_and(|e| e > 0), "{body}");
    assert_eq!(body["scope"], scope);
    assert!(!s(body, "access_token").is_empty());
    assert!(!s(body, "refresh_token").is_empty());
    assert_eq!(h["cache-control"], "no-store");
    body.clone()
}

// ---- HTML, attribute order agnostic

/// `&amp;`, `&#60;`, `&#x27;` and friends back to characters.
fn unescape(v: &str) -> String {
    let mut out = String::new();
    let mut rest = v;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every start tag `<name …>` in `body`.
fn tags<'a>(body: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}");
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = body[at..].find(&open) {
        let start = at + i;
        let after = start + open.len();
        let next = body[after..].chars().next();
        let end = after + body[after..].find('>').unwrap_or(body.len() - after);
        if matches!(next, Some(c) if c.is_whitespace() || c == '>' || c == '/') {
            out.push(&body[start..end]);
        }
        at = end.max(after);
    }
    out
}

/// The value of attribute `name` in a start tag (unescaped); `Some("")` for a bare one.
fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let mut at = 0;
    while let Some(i) = tag[at..].find(&needle) {
        let p = at + i;
        if p > 0 && tag[..p].ends_with(char::is_whitespace) {
            let v = p + needle.len();
            let end = tag[v..].find('"').unwrap();
            return Some(unescape(&tag[v..v + end]));
        }
        at = p + needle.len();
    }
    None
}

/// The `<input>` named `name`, if any.
fn input<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    tags(body, "input")
        .into_iter()
        .find(|t| attr(t, "name").as_deref() == Some(name))
}

/// The value of the input named `name` ("" when it has no value attribute).
#[track_caller]
fn value(body: &str, name: &str) -> String {
    let t = input(body, name).unwrap_or_else(|| panic!("no input {name} in\n{body}"));
    attr(t, "value").unwrap_or_default()
}

/// The page has a form that posts to /device.
#[track_caller]
fn assert_device_form(body: &str) {
    assert!(
        tags(body, "form").iter().any(|f| {
            attr(f, "method").is_some_and(|m| m.eq_ignore_ascii_case("post"))
                && attr(f, "action").as_deref() == Some("/device")
        }),
        "no <form method=post action=/device> in\n{body}"
    );
}

/// The page has a `<button name="decision" value="…">`.
fn has_decision_button(body: &str, decision: &str) -> bool {
    tags(body, "button").iter().any(|b| {
        attr(b, "name").as_deref() == Some("decision")
            && attr(b, "value").as_deref() == Some(decision)
    })
}

/// A page that shows the scope: its plain-language description, or its name as element text.
fn shows_scope(body: &str, name: &str, description: &str) -> bool {
    body.contains(description) || body.contains(&format!(">{name}<"))
}

// ---- the browser side over HTTP

/// A new user signed in through the login form (lands on the dashboard).
pub(crate) async fn signed_in<'a>(app: &'a TestApp, email: &str) -> Browser<'a> {
    app.create_user(email, PASSWORD).await;
    sign_in_again(app, email).await
}

/// Another session for an existing user.
async fn sign_in_again<'a>(app: &'a TestApp, email: &str) -> Browser<'a> {
    let mut b = Browser::new(app);
    let r = b.sign_in(email, PASSWORD).await;
    assert_eq!(r.status, 303, "sign-in failed: {}", r.body);
    b
}

/// Signs in through the login page at `location`, posting its CSRF token and `next` back.
async fn sign_in_with_next(b: &mut Browser<'_>, location: &str, email: &str) -> Resp {
    let page = b.get(location).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = value(&page.body, "csrf_token");
    let next = value(&page.body, "next");
    b.post(
        "/login",
        &[
            ("email", email),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("next", &next),
        ],
    )
    .await
}

/// GET /device, then POST the code with the form's CSRF token (step 1).
async fn enter_code(b: &mut Browser<'_>, code: &str) -> Resp {
    let page = b.get("/device").await;
    assert_eq!(page.status, 200, "GET /device: {}", page.body);
    let csrf = value(&page.body, "csrf_token");
    b.post("/device", &[("user_code", code), ("csrf_token", &csrf)])
        .await
}

/// Decides on the confirmation page `confirm` (step 2) with its hidden fields.
async fn decide(b: &mut Browser<'_>, confirm: &Resp, decision: &str) -> Resp {
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let code = value(&confirm.body, "user_code");
    let csrf = value(&confirm.body, "csrf_token");
    b.post(
        "/device",
        &[
            ("user_code", &code),
            ("csrf_token", &csrf),
            ("decision", decision),
        ],
    )
    .await
}

/// Enters the code and approves; asserts both pages.
async fn approve(b: &mut Browser<'_>, code: &str) {
    let confirm = enter_code(b, code).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let done = decide(b, &confirm, "approve").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.to_lowercase().contains("connected"),
        "approval page does not say the device is connected:\n{}",
        done.body
    );
}

/// The `next` of a `/login?next=…` location.
#[track_caller]
fn login_next(location: &str) -> String {
    let (path, query) = location
        .split_once('?')
        .unwrap_or_else(|| panic!("no query in {location}"));
    assert_eq!(path, "/login", "{location}");
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    q.get("next")
        .unwrap_or_else(|| panic!("no next in {location}"))
        .clone()
}

/// A user code shaped like the server's that the server did not issue.
fn made_up_code(i: usize) -> String {
    let a: Vec<char> = ALPHABET.chars().collect();
    let c = a[i % a.len()];
    let d = a[(i * 7 + 3) % a.len()];
    format!("{c}{d}{c}{d}-{d}{c}{d}{c}")
}

/// The page answering a wrong code: 400, the code form again (no decision buttons).
#[track_caller]
fn assert_code_refused(r: &Resp, what: &str) {
    assert_eq!(r.status, 400, "{what}: {}", r.body);
    assert_device_form(&r.body);
    assert!(
        input(&r.body, "user_code").is_some(),
        "{what}: no code input"
    );
    assert!(
        input(&r.body, "csrf_token").is_some(),
        "{what}: no csrf_token"
    );
    assert!(
        !has_decision_button(&r.body, "approve"),
        "{what}: a refused code shows the approve button:\n{}",
        r.body
    );
}

// ---- the happy path

/// The whole flow over HTTP: device authorization, the verification URI without a session
/// sends to the login form and back, the prefilled code, the confirmation page naming the
/// application and its scopes, approval, a pending poll before and tokens after, and the
/// access token at /v1/me/, the refresh token at the token endpoint.
#[tokio::test]
async fn device_flow_end_to_end_over_http() {
    let app = spawn_app().await;
    app.create_user(USER_EMAIL, PASSWORD).await;
    let client = tv_client(&app).await;
    let d = start_flow(&app, &client).await;
    let device_code = s(&d, "device_code").to_string();
    let user_code = s(&d, "user_code").to_string();

    // Nobody decided yet.
    assert_oauth_error(
        &poll(&app, &client, &device_code).await,
        400,
        "authorization_pending",
    );

    // The user opens verification_uri_complete: no session, so the login form, and back.
    let mut b = Browser::new(&app);
    let complete = s(&d, "verification_uri_complete").to_string();
    let r = b.get(&complete).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let here = format!("/device?user_code={user_code}");
    assert_eq!(login_next(&r.location()), here);
    let r = sign_in_with_next(&mut b, &r.location(), USER_EMAIL).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.location(),
        here,
        "login did not send back to the device page"
    );

    // The code form, prefilled.
    let form = b.get(&r.location()).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.header("content-type").starts_with("text/html"));
    assert_device_form(&form.body);
    assert_eq!(value(&form.body, "user_code"), user_code);
    let csrf = value(&form.body, "csrf_token");
    assert!(!csrf.is_empty());
    assert_eq!(
        attr(input(&form.body, "csrf_token").unwrap(), "type").as_deref(),
        Some("hidden")
    );

    // Step 1: the confirmation page.
    let confirm = b
        .post(
            "/device",
            &[("user_code", &user_code), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    confirm.has(TV);
    for (name, description) in camgate_core::authorize::scope_descriptions(ScopeSet::READ_WRITE) {
        assert!(
            shows_scope(&confirm.body, name, description),
            "scope {name} not shown:\n{}",
            confirm.body
        );
    }
    assert_device_form(&confirm.body);
    let hidden_code = input(&confirm.body, "user_code").expect("no user_code on confirmation");
    assert_eq!(attr(hidden_code, "type").as_deref(), Some("hidden"));
    assert_eq!(
        attr(input(&confirm.body, "csrf_token").unwrap(), "type").as_deref(),
        Some("hidden")
    );
    assert!(
        has_decision_button(&confirm.body, "approve"),
        "{}",
        confirm.body
    );
    assert!(
        has_decision_button(&confirm.body, "deny"),
        "{}",
        confirm.body
    );

    // Showing the confirmation page decides nothing.
    app.clock.advance(5);
    assert_oauth_error(
        &poll(&app, &client, &device_code).await,
        400,
        "authorization_pending",
    );

    // Step 2: approve.
    let done = decide(&mut b, &confirm, "approve").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.to_lowercase().contains("connected"),
        "{}",
        done.body
    );

    // The device's next poll gets tokens.
    app.clock.advance(5);
    let t = assert_tokens(&poll(&app, &client, &device_code).await, "read write");
    let me = app.get_bearer("/v1/me/", s(&t, "access_token")).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["email"], USER_EMAIL);

    // The refresh token works like any other.
    let r = app
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", s(&t, "refresh_token")),
        ])
        .await;
    assert_eq!(r.status(), 200);
}

// ---- the device authorization endpoint

#[tokio::test]
async fn device_authorization_answers_the_rfc_8628_fields() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let (status, h, d) = device_authorization(&app, &[("client_id", &client)]).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let keys: BTreeSet<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "device_code",
            "expires_in",
            "interval",
            "user_code",
            "verification_uri",
            "verification_uri_complete"
        ]),
        "{d}"
    );
    let user_code = s(&d, "user_code");
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(&user_code[4..5], "-", "{user_code}");
    assert!(
        user_code
            .chars()
            .enumerate()
            .all(|(i, c)| i == 4 || ALPHABET.contains(c)),
        "user code {user_code} outside the alphabet {ALPHABET}"
    );
    let device_code = s(&d, "device_code");
    assert!(!device_code.is_empty());
    assert_ne!(device_code, user_code);
    assert_eq!(d["verification_uri"], format!("{}/device", app.base));
    assert_eq!(
        d["verification_uri_complete"],
        format!("{}/device?user_code={user_code}", app.base)
    );
    assert_eq!(d["expires_in"], 600);
    assert_eq!(d["interval"], 5);

    // Each request gets its own codes; a scope within the client's is accepted.
    let (status, _, d2) =
        device_authorization(&app, &[("client_id", &client), ("scope", "read")]).await;
    assert_eq!(status, 200, "{d2}");
    assert_ne!(d2["device_code"], d["device_code"]);
    assert_ne!(d2["user_code"], d["user_code"]);
}

#[tokio::test]
async fn device_authorization_refuses_bad_clients_and_scopes() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let (conf, secret) = device_client_with(
        &app,
        "Confidential TV",
        ClientKind::Confidential,
        vec![GrantType::DeviceCode],
        ScopeSet::READ_WRITE,
    )
    .await;
    let secret = secret.unwrap();
    let no_grant = app.public_client("angelcam").await;
    let (read_only, _) = device_client_with(
        &app,
        "Read-only TV",
        ClientKind::Public,
        vec![GrantType::DeviceCode],
        ScopeSet::READ,
    )
    .await;

    // Unknown client, wrong secret, a confidential client without its secret: 401.
    let got = device_authorization(&app, &[("client_id", "no-such-client")]).await;
    assert_oauth_error(&got, 401, "invalid_client");
    let got = device_authorization(
        &app,
        &[("client_id", &conf), ("client_secret", "wrong-secret")],
    )
    .await;
    assert_oauth_error(&got, 401, "invalid_client");
    let r = app
        .http
        .post(app.url("/oauth/device_authorization"))
        .basic_auth(&conf, Some("wrong-secret"))
        .form(&[("scope", "read")])
        .send()
        .await
        .unwrap();
    assert_oauth_error(&parts(r).await, 401, "invalid_client");
    let got = device_authorization(&app, &[("client_id", &conf)]).await;
    assert_oauth_error(&got, 401, "invalid_client");
    // No client at all.
    let got = device_authorization(&app, &[]).await;
    assert!(got.0 == 400 || got.0 == 401, "{}: {}", got.0, got.2);

    // A client without the device grant.
    let got = device_authorization(&app, &[("client_id", &no_grant)]).await;
    assert_oauth_error(&got, 400, "unauthorized_client");

    // Scopes beyond the client's, and unknown scopes.
    let got =
        device_authorization(&app, &[("client_id", &read_only), ("scope", "read write")]).await;
    assert_oauth_error(&got, 400, "invalid_scope");
    let got = device_authorization(&app, &[("client_id", &read_only), ("scope", "write")]).await;
    assert_oauth_error(&got, 400, "invalid_scope");
    let got = device_authorization(&app, &[("client_id", &client), ("scope", "admin")]).await;
    assert_oauth_error(&got, 400, "invalid_scope");
    // Within the client's: fine.
    let got = device_authorization(&app, &[("client_id", &read_only), ("scope", "read")]).await;
    assert_eq!(got.0, 200, "{}", got.2);
    // The confidential client with its secret in the form: fine.
    let got = device_authorization(&app, &[("client_id", &conf), ("client_secret", &secret)]).await;
    assert_eq!(got.0, 200, "{}", got.2);

    // GET is not allowed.
    let r = app
        .http
        .get(app.url(&format!("/oauth/device_authorization?client_id={client}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}

/// A confidential client authenticates with HTTP Basic at both endpoints; polling without
/// (or with a wrong) secret is invalid_client.
#[tokio::test]
async fn confidential_client_uses_basic_auth_to_start_and_poll() {
    let app = spawn_app().await;
    let (id, secret) = device_client_with(
        &app,
        TV,
        ClientKind::Confidential,
        vec![GrantType::DeviceCode, GrantType::RefreshToken],
        ScopeSet::READ_WRITE,
    )
    .await;
    let secret = secret.unwrap();
    let r = app
        .http
        .post(app.url("/oauth/device_authorization"))
        .basic_auth(&id, Some(&secret))
        .form(&[("scope", "read")])
        .send()
        .await
        .unwrap();
    let (status, _, d) = parts(r).await;
    assert_eq!(status, 200, "{d}");
    let device_code = s(&d, "device_code").to_string();
    let user_code = s(&d, "user_code").to_string();

    let basic_poll = |secret: &str| {
        app.http
            .post(app.url("/oauth/token"))
            .basic_auth(&id, Some(secret))
            .form(&[("grant_type", DEVICE_GRANT), ("device_code", &device_code)])
            .send()
    };
    let got = parts(basic_poll(&secret).await.unwrap()).await;
    assert_oauth_error(&got, 400, "authorization_pending");
    app.clock.advance(5);
    // Without the secret, and with a wrong one: the client is not authenticated.
    let got = poll(&app, &id, &device_code).await;
    assert_oauth_error(&got, 401, "invalid_client");
    let got = parts(basic_poll("wrong-secret").await.unwrap()).await;
    assert_oauth_error(&got, 401, "invalid_client");

    let mut b = signed_in(&app, USER_EMAIL).await;
    approve(&mut b, &user_code).await;
    app.clock.advance(10);
    let got = parts(basic_poll(&secret).await.unwrap()).await;
    let t = assert_tokens(&got, "read");
    let me = app.get_bearer("/v1/me/", s(&t, "access_token")).await;
    assert_eq!(me.status(), 200);
}

// ---- polling

#[tokio::test]
async fn polling_with_an_unknown_or_foreign_device_code_is_invalid_grant() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let other = tv_client(&app).await;
    let no_grant = app.public_client("angelcam").await;
    let d = start_flow(&app, &client).await;
    let device_code = s(&d, "device_code").to_string();

    assert_oauth_error(
        &poll(&app, &client, "no-such-device-code").await,
        400,
        "invalid_grant",
    );
    // Another client (which has the grant) cannot poll this client's code.
    assert_oauth_error(
        &poll(&app, &other, &device_code).await,
        400,
        "invalid_grant",
    );
    // The user code is not a device code.
    assert_oauth_error(
        &poll(&app, &client, s(&d, "user_code")).await,
        400,
        "invalid_grant",
    );
    // A client without the device grant may not use it (RFC 6749 §5.2).
    assert_oauth_error(
        &poll(&app, &no_grant, &device_code).await,
        400,
        "unauthorized_client",
    );
    // The rightful client is still pending, and after approval gets tokens (the foreign
    // polls did not spoil the code).
    assert_oauth_error(
        &poll(&app, &client, &device_code).await,
        400,
        "authorization_pending",
    );
    let mut b = signed_in(&app, USER_EMAIL).await;
    approve(&mut b, s(&d, "user_code")).await;
    app.clock.advance(5);
    assert_oauth_error(
        &poll(&app, &other, &device_code).await,
        400,
        "invalid_grant",
    );
    app.clock.advance(5);
    assert_tokens(&poll(&app, &client, &device_code).await, "read write");
}

/// RFC 8628 §3.5: polling again before `interval` seconds is slow_down, and each slow_down
/// adds 5 s to that code's interval. Time moves only on the manual clock. The checks are
/// placed so that they hold whether or not a slow_down poll itself counts as the last poll.
#[tokio::test]
async fn polling_too_fast_is_slow_down_and_adds_five_seconds() {
    let clock = Arc::new(ManualClock::starting_now());
    let db = TestDb::new().await;
    let config = test_config(&db.url);
    let app = spawn_on_with_clock(db, config, clock.clone()).await;
    let client = tv_client(&app).await;
    let d = start_flow(&app, &client).await;
    let code = s(&d, "device_code").to_string();
    let other = start_flow(&app, &client).await;
    let other_code = s(&other, "device_code").to_string();
    let pending =
        |got: &(u16, HeaderMap, Value)| assert_oauth_error(got, 400, "authorization_pending");
    let slow = |got: &(u16, HeaderMap, Value)| assert_oauth_error(got, 400, "slow_down");

    // t=0: first poll; again at once: slow_down (interval now 10).
    pending(&poll(&app, &client, &code).await);
    slow(&poll(&app, &client, &code).await);
    // The interval is per device code: another code of the same client is not slowed.
    pending(&poll(&app, &client, &other_code).await);
    // t=5: the old interval has passed, the new one (10) has not.
    clock.advance(5);
    slow(&poll(&app, &client, &code).await); // interval 15
    pending(&poll(&app, &client, &other_code).await);
    // t=15: 15 s since the last accepted poll (t=0), 10 since the slow_down at t=5.
    clock.advance(10);
    let got = poll(&app, &client, &code).await;
    if got.2["error"] == "slow_down" {
        // Only acceptable if the slow_down at t=5 counted as the last poll (10 < 15): then
        // the interval is 20 now; wait it out from here.
        clock.advance(20);
        pending(&poll(&app, &client, &code).await);
        // 19 s later: still too fast for a 20 s interval.
        clock.advance(19);
        slow(&poll(&app, &client, &code).await);
    } else {
        pending(&got);
        // The interval is 15 now: 14 s is too fast, 15 s is fine.
        clock.advance(14);
        slow(&poll(&app, &client, &code).await); // interval 20
        clock.advance(20);
        pending(&poll(&app, &client, &code).await);
        // 19 s later: too fast for the 20 s interval.
        clock.advance(19);
        slow(&poll(&app, &client, &code).await);
    }
    // A poll exactly `interval` after an accepted one is fine: the first code's interval is
    // still large, but a fresh code's is 5.
    let fresh = start_flow(&app, &client).await;
    let fresh = s(&fresh, "device_code").to_string();
    pending(&poll(&app, &client, &fresh).await);
    clock.advance(5);
    pending(&poll(&app, &client, &fresh).await);
    clock.advance(4);
    slow(&poll(&app, &client, &fresh).await);
}

/// After expires_in (600 s) the code is expired_token at the token endpoint and refused on
/// the page.
#[tokio::test]
async fn an_unapproved_code_expires_after_expires_in() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let d = start_flow(&app, &client).await;
    let code = s(&d, "device_code").to_string();
    assert_oauth_error(
        &poll(&app, &client, &code).await,
        400,
        "authorization_pending",
    );
    app.clock.advance(599);
    assert_oauth_error(
        &poll(&app, &client, &code).await,
        400,
        "authorization_pending",
    );
    app.clock.advance(2);
    assert_oauth_error(&poll(&app, &client, &code).await, 400, "expired_token");
    app.clock.advance(10);
    assert_oauth_error(&poll(&app, &client, &code).await, 400, "expired_token");
    // The user arrives too late: the page refuses the code, and the device stays expired.
    let mut b = signed_in(&app, USER_EMAIL).await;
    let r = enter_code(&mut b, s(&d, "user_code")).await;
    assert_code_refused(&r, "expired code");
    app.clock.advance(10);
    assert_oauth_error(&poll(&app, &client, &code).await, 400, "expired_token");
}

#[tokio::test]
async fn an_approved_but_unredeemed_code_expires_too() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let d = start_flow(&app, &client).await;
    let code = s(&d, "device_code").to_string();
    let mut b = signed_in(&app, USER_EMAIL).await;
    approve(&mut b, s(&d, "user_code")).await;
    app.clock.advance(601);
    assert_oauth_error(&poll(&app, &client, &code).await, 400, "expired_token");
}

/// A device code yields tokens once; a second redemption is invalid_grant and takes back the
/// tokens of the first (RFC 6749 §4.1.2's rule for codes, applied to device codes).
#[tokio::test]
async fn a_second_redemption_is_refused_and_revokes_the_first_tokens() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let d = start_flow(&app, &client).await;
    let code = s(&d, "device_code").to_string();
    let mut b = signed_in(&app, USER_EMAIL).await;
    approve(&mut b, s(&d, "user_code")).await;
    let t = assert_tokens(&poll(&app, &client, &code).await, "read write");
    let access = s(&t, "access_token");
    assert_eq!(app.get_bearer("/v1/me/", access).await.status(), 200);

    app.clock.advance(5);
    assert_oauth_error(&poll(&app, &client, &code).await, 400, "invalid_grant");
    assert_eq!(
        app.get_bearer("/v1/me/", access).await.status(),
        401,
        "the first redemption's access token still works after a replay"
    );
    let r = app
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", s(&t, "refresh_token")),
        ])
        .await;
    let got = parts(r).await;
    assert_oauth_error(&got, 400, "invalid_grant");
    // And it stays refused.
    app.clock.advance(5);
    assert_oauth_error(&poll(&app, &client, &code).await, 400, "invalid_grant");
}

/// Several polls of one approved code at once: at most one gets tokens, the others
/// invalid_grant, and whatever was handed out is revoked (every redemption after the first is
/// a replay).
#[tokio::test]
async fn concurrent_redemptions_leave_no_live_tokens() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let d = start_flow(&app, &client).await;
    let code = s(&d, "device_code").to_string();
    let mut b = signed_in(&app, USER_EMAIL).await;
    approve(&mut b, s(&d, "user_code")).await;
    let polls = (0..6).map(|_| poll(&app, &client, &code));
    let answers = futures_util::future::join_all(polls).await;
    let granted: Vec<&Value> = answers
        .iter()
        .filter(|a| a.0 == 200)
        .map(|a| &a.2)
        .collect();
    assert!(
        granted.len() <= 1,
        "{} redemptions got tokens",
        granted.len()
    );
    for a in answers.iter().filter(|a| a.0 != 200) {
        assert_oauth_error(a, 400, "invalid_grant");
    }
    assert!(answers.iter().any(|a| a.0 == 400));
    for t in granted {
        assert_eq!(
            app.get_bearer("/v1/me/", s(t, "access_token"))
                .await
                .status(),
            401,
            "tokens of a replayed device code still work"
        );
    }
}

/// A client with only the device grant gets no refresh token.
#[tokio::test]
async fn no_refresh_token_without_the_refresh_grant() {
    let app = spawn_app().await;
    let (client, _) = device_client_with(
        &app,
        TV,
        ClientKind::Public,
        vec![GrantType::DeviceCode],
        ScopeSet::READ_WRITE,
    )
    .await;
    let d = start_flow(&app, &client).await;
    let mut b = signed_in(&app, USER_EMAIL).await;
    approve(&mut b, s(&d, "user_code")).await;
    let (status, _, t) = poll(&app, &client, s(&d, "device_code")).await;
    assert_eq!(status, 200, "{t}");
    let keys: BTreeSet<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["access_token", "expires_in", "scope", "token_type"]),
        "{t}"
    );
}

// ---- the page

#[tokio::test]
async fn the_device_page_needs_a_session_and_comes_back_after_login() {
    let app = spawn_app().await;
    app.create_user(USER_EMAIL, PASSWORD).await;
    let mut b = Browser::new(&app);
    let r = b.get("/device").await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(login_next(&r.location()), "/device");
    let r = sign_in_with_next(&mut b, &r.location(), USER_EMAIL).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/device");
    let page = b.get("/device").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_device_form(&page.body);
    assert_eq!(value(&page.body, "user_code"), "");
    assert!(!value(&page.body, "csrf_token").is_empty());
    // The page must not be framed (a clickjacked Approve would hand out the account).
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert!(page
        .header("content-security-policy")
        .contains("frame-ancestors 'none'"));

    // With a code in the query, signed out: next keeps it.
    let mut b2 = Browser::new(&app);
    let r = b2.get("/device?user_code=BCDF-GHJK").await;
    assert_eq!(r.status, 303);
    assert_eq!(login_next(&r.location()), "/device?user_code=BCDF-GHJK");
    // Signed in, the query pre-fills the input.
    let page = b.get("/device?user_code=BCDF-GHJK").await;
    assert_eq!(page.status, 200);
    assert_eq!(value(&page.body, "user_code"), "BCDF-GHJK");

    // The query is escaped into the page, never markup.
    let page = b
        .get("/device?user_code=%22%3E%3Cscript%3Ex%3C%2Fscript%3E")
        .await;
    assert_eq!(page.status, 200);
    page.lacks("<script>x");
    assert_eq!(value(&page.body, "user_code"), "\"><script>x</script>");

    // Login's `next` goes to the device page, and only to it (no open redirect).
    for (next, expected) in [
        ("/device", "/device"),
        ("/device?user_code=BCDF-GHJK", "/device?user_code=BCDF-GHJK"),
        ("/devices", "/dashboard/"),
        ("/device//evil.example", "/dashboard/"),
        ("/device?x=//evil.example", "/dashboard/"),
        ("https://evil.example/device", "/dashboard/"),
    ] {
        let mut b = Browser::new(&app);
        let page = b.get("/login").await;
        let csrf = value(&page.body, "csrf_token");
        let r = b
            .post(
                "/login",
                &[
                    ("email", USER_EMAIL),
                    ("password", PASSWORD),
                    ("csrf_token", &csrf),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(r.location(), expected, "next={next}");
    }

    // A POST without a session decides nothing.
    let client = tv_client(&app).await;
    let d = start_flow(&app, &client).await;
    let mut anon = Browser::new(&app);
    let r = anon
        .post(
            "/device",
            &[
                ("user_code", s(&d, "user_code")),
                ("csrf_token", "x"),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_ne!(r.status, 200, "{}", r.body);
    assert_oauth_error(
        &poll(&app, &client, s(&d, "device_code")).await,
        400,
        "authorization_pending",
    );
}

#[tokio::test]
async fn denying_makes_the_poll_answer_access_denied() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let d = start_flow(&app, &client).await;
    let code = s(&d, "device_code").to_string();
    let mut b = signed_in(&app, USER_EMAIL).await;
    let confirm = enter_code(&mut b, s(&d, "user_code")).await;
    let r = decide(&mut b, &confirm, "deny").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.to_lowercase().contains("denied"), "{}", r.body);
    assert_oauth_error(&poll(&app, &client, &code).await, 400, "access_denied");
    // The decision is final: the code cannot be entered again, nor approved afterwards.
    let again = enter_code(&mut b, s(&d, "user_code")).await;
    assert_code_refused(&again, "denied code");
    let csrf = value(&again.body, "csrf_token");
    let r = b
        .post(
            "/device",
            &[
                ("user_code", s(&d, "user_code")),
                ("csrf_token", &csrf),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    app.clock.advance(5);
    let got = poll(&app, &client, &code).await;
    assert_ne!(got.0, 200, "a denied code gave tokens: {}", got.2);
}

#[tokio::test]
async fn a_post_without_the_right_csrf_token_is_400_and_changes_nothing() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let d = start_flow(&app, &client).await;
    let code = s(&d, "device_code").to_string();
    let user_code = s(&d, "user_code").to_string();
    let mut b = signed_in(&app, USER_EMAIL).await;

    // Step 1 without / with a wrong token.
    let r = b.post("/device", &[("user_code", &user_code)]).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = b
        .post(
            "/device",
            &[("user_code", &user_code), ("csrf_token", "forged")],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(!has_decision_button(&r.body, "approve"));

    // Step 2 without / with a wrong token.
    let confirm = enter_code(&mut b, &user_code).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let hidden_code = value(&confirm.body, "user_code");
    let csrf = value(&confirm.body, "csrf_token");
    let r = b
        .post(
            "/device",
            &[("user_code", &hidden_code), ("decision", "approve")],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = b
        .post(
            "/device",
            &[
                ("user_code", &hidden_code),
                ("csrf_token", "forged"),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // Another session's token does not do either.
    let mut other = sign_in_again(&app, USER_EMAIL).await;
    let other_csrf = value(&other.get("/device").await.body, "csrf_token");
    assert_ne!(other_csrf, csrf);
    let r = b
        .post(
            "/device",
            &[
                ("user_code", &hidden_code),
                ("csrf_token", &other_csrf),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_oauth_error(
        &poll(&app, &client, &code).await,
        400,
        "authorization_pending",
    );

    // Deny without the token: still nothing.
    let r = b
        .post(
            "/device",
            &[("user_code", &hidden_code), ("decision", "deny")],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    app.clock.advance(5);
    assert_oauth_error(
        &poll(&app, &client, &code).await,
        400,
        "authorization_pending",
    );

    // With the token it works.
    let r = decide(&mut b, &confirm, "approve").await;
    assert_eq!(r.status, 200, "{}", r.body);
    app.clock.advance(5);
    assert_tokens(&poll(&app, &client, &code).await, "read write");
}

/// Case and dashes do not matter in a typed code.
#[tokio::test]
async fn the_user_code_is_normalised() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let d = start_flow(&app, &client).await;
    let code = s(&d, "device_code").to_string();
    let user_code = s(&d, "user_code").to_string();
    let bare = user_code.replace('-', "");
    let mut b = signed_in(&app, USER_EMAIL).await;
    let mut last = None;
    for typed in [
        user_code.to_lowercase(),
        bare.clone(),
        bare.to_lowercase(),
        format!("{}-{}", &bare[..2].to_lowercase(), &bare[2..]),
    ] {
        let confirm = enter_code(&mut b, &typed).await;
        assert_eq!(confirm.status, 200, "typed {typed}: {}", confirm.body);
        confirm.has(TV);
        assert!(has_decision_button(&confirm.body, "approve"));
        last = Some(confirm);
    }
    // Approving with the code as typed in lower case without its dash works too.
    let confirm = last.unwrap();
    let csrf = value(&confirm.body, "csrf_token");
    let r = b
        .post(
            "/device",
            &[
                ("user_code", &bare.to_lowercase()),
                ("csrf_token", &csrf),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_tokens(&poll(&app, &client, &code).await, "read write");
}

/// Unknown, expired and already decided codes: 400 with the form again.
#[tokio::test]
async fn unknown_expired_and_decided_codes_are_refused() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let mut b = signed_in(&app, USER_EMAIL).await;

    let r = enter_code(&mut b, &made_up_code(1)).await;
    assert_code_refused(&r, "unknown code");
    let r = enter_code(&mut b, "not a code at all").await;
    assert_code_refused(&r, "garbage");

    // Approved already (and not yet redeemed), then redeemed.
    let d = start_flow(&app, &client).await;
    approve(&mut b, s(&d, "user_code")).await;
    let r = enter_code(&mut b, s(&d, "user_code")).await;
    assert_code_refused(&r, "approved code");
    assert_tokens(
        &poll(&app, &client, s(&d, "device_code")).await,
        "read write",
    );
    let r = enter_code(&mut b, s(&d, "user_code")).await;
    assert_code_refused(&r, "redeemed code");

    // Expired.
    let late = start_flow(&app, &client).await;
    app.clock.advance(601);
    let mut b = sign_in_again(&app, USER_EMAIL).await;
    let r = enter_code(&mut b, s(&late, "user_code")).await;
    assert_code_refused(&r, "expired code");
}

/// A code requested with a narrower scope shows and grants only that scope.
#[tokio::test]
async fn the_requested_scope_is_shown_and_granted() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let (status, _, d) =
        device_authorization(&app, &[("client_id", &client), ("scope", "read")]).await;
    assert_eq!(status, 200, "{d}");
    let mut b = signed_in(&app, USER_EMAIL).await;
    let confirm = enter_code(&mut b, s(&d, "user_code")).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let descriptions = camgate_core::authorize::scope_descriptions(ScopeSet::READ_WRITE);
    let (rn, rd) = descriptions[0];
    let (wn, wd) = descriptions[1];
    assert!(shows_scope(&confirm.body, rn, rd), "{}", confirm.body);
    assert!(
        !shows_scope(&confirm.body, wn, wd),
        "write shown for a read-only request:\n{}",
        confirm.body
    );
    let r = decide(&mut b, &confirm, "approve").await;
    assert_eq!(r.status, 200);
    let t = assert_tokens(&poll(&app, &client, s(&d, "device_code")).await, "read");
    // A read token cannot write.
    let r = app
        .http
        .post(app.url("/v1/cameras/"))
        .bearer_auth(s(&t, "access_token"))
        .json(&json!({"name": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

// ---- brute-force protection (RFC 8628 §5.1)

/// Five wrong codes in a session: the sixth attempt is 429 even with a right code; another
/// session (same address, 5 < 20 failures) is not affected.
#[tokio::test]
async fn five_wrong_codes_lock_the_session() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let d = start_flow(&app, &client).await;
    let mut b = signed_in(&app, USER_EMAIL).await;
    for i in 0..4 {
        let r = enter_code(&mut b, &made_up_code(i)).await;
        assert_code_refused(&r, &format!("wrong code {}", i + 1));
    }
    // Four wrong codes: a right one still opens the confirmation page (and is no failure).
    let r = enter_code(&mut b, s(&d, "user_code")).await;
    assert_eq!(r.status, 200, "after four wrong codes: {}", r.body);
    let r = enter_code(&mut b, &made_up_code(4)).await;
    assert_code_refused(&r, "wrong code 5");
    let r = enter_code(&mut b, s(&d, "user_code")).await;
    assert_eq!(
        r.status, 429,
        "after five wrong codes (a right code): {}",
        r.body
    );
    let r = enter_code(&mut b, &made_up_code(9)).await;
    assert_eq!(r.status, 429, "{}", r.body);
    // The locked session cannot approve by posting the decision directly either.
    let csrf = value(&b.get("/device").await.body, "csrf_token");
    let r = b
        .post(
            "/device",
            &[
                ("user_code", s(&d, "user_code")),
                ("csrf_token", &csrf),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_oauth_error(
        &poll(&app, &client, s(&d, "device_code")).await,
        400,
        "authorization_pending",
    );

    // Another session of the same user on the same address still can.
    let mut fresh = sign_in_again(&app, USER_EMAIL).await;
    approve(&mut fresh, s(&d, "user_code")).await;
    app.clock.advance(5);
    assert_tokens(
        &poll(&app, &client, s(&d, "device_code")).await,
        "read write",
    );
}

/// Twenty wrong codes from one address (spread over sessions that each stay under five):
/// every session from that address is refused.
#[tokio::test]
async fn twenty_wrong_codes_from_one_address_lock_it() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let d = start_flow(&app, &client).await;
    app.create_user(USER_EMAIL, PASSWORD).await;
    let mut n = 0;
    for _ in 0..5 {
        let mut b = sign_in_again(&app, USER_EMAIL).await;
        for _ in 0..4 {
            if n == 19 {
                // Nineteen wrong codes: a fresh session still gets in.
                let mut fresh = sign_in_again(&app, USER_EMAIL).await;
                let r = enter_code(&mut fresh, s(&d, "user_code")).await;
                assert_eq!(r.status, 200, "after 19 failures: {}", r.body);
            }
            let r = enter_code(&mut b, &made_up_code(n)).await;
            assert_code_refused(&r, &format!("wrong code {}", n + 1));
            n += 1;
        }
    }
    assert_eq!(n, 20);
    let mut b = sign_in_again(&app, USER_EMAIL).await;
    let r = enter_code(&mut b, s(&d, "user_code")).await;
    assert_eq!(
        r.status, 429,
        "after 20 failures from one address: {}",
        r.body
    );
}

/// The lockout lasts 15 minutes (of the server's clock).
#[tokio::test]
async fn the_session_lockout_ends_after_fifteen_minutes() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let mut b = signed_in(&app, USER_EMAIL).await;
    for i in 0..5 {
        let r = enter_code(&mut b, &made_up_code(i)).await;
        assert_eq!(r.status, 400, "{}", r.body);
    }
    let d = start_flow(&app, &client).await;
    let r = enter_code(&mut b, s(&d, "user_code")).await;
    assert_eq!(r.status, 429, "{}", r.body);
    app.clock.advance(15 * 60 + 1);
    let d = start_flow(&app, &client).await;
    approve(&mut b, s(&d, "user_code")).await;
    assert_tokens(
        &poll(&app, &client, s(&d, "device_code")).await,
        "read write",
    );
}

/// `device_code_ttl_secs`, `device_poll_interval_secs` and `issuer` from the config file are
/// what the endpoint answers and enforces; out-of-range values are refused at startup.
#[tokio::test]
async fn configured_lifetime_interval_and_issuer_are_used() {
    let db = TestDb::new().await;
    let file = camgate_server::config::FileConfig {
        device_code_ttl_secs: Some(120),
        device_poll_interval_secs: Some(2),
        issuer: Some("https://auth.example.com".into()),
        ..Default::default()
    };
    let mut config =
        camgate_server::config::Config::resolve(None, Some(db.url.clone()), file).unwrap();
    config.hash_workers = 2;
    let app = spawn_on(db, config).await;
    let client = tv_client(&app).await;
    let d = start_flow(&app, &client).await;
    assert_eq!(d["expires_in"], 120);
    assert_eq!(d["interval"], 2);
    assert_eq!(d["verification_uri"], "https://auth.example.com/device");
    assert_eq!(
        d["verification_uri_complete"],
        format!(
            "https://auth.example.com/device?user_code={}",
            s(&d, "user_code")
        )
    );
    let meta: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["device_authorization_endpoint"],
        "https://auth.example.com/oauth/device_authorization"
    );
    let code = s(&d, "device_code").to_string();
    assert_oauth_error(
        &poll(&app, &client, &code).await,
        400,
        "authorization_pending",
    );
    app.clock.advance(2);
    assert_oauth_error(
        &poll(&app, &client, &code).await,
        400,
        "authorization_pending",
    );
    app.clock.advance(1);
    assert_oauth_error(&poll(&app, &client, &code).await, 400, "slow_down");
    app.clock.advance(120 - 3 - 1);
    assert_oauth_error(
        &poll(&app, &client, &code).await,
        400,
        "authorization_pending",
    );
    app.clock.advance(2);
    assert_oauth_error(&poll(&app, &client, &code).await, 400, "expired_token");

    for (ttl, interval) in [
        (Some(59), None),
        (Some(1801), None),
        (None, Some(0)),
        (None, Some(61)),
    ] {
        let file = camgate_server::config::FileConfig {
            device_code_ttl_secs: ttl,
            device_poll_interval_secs: interval,
            ..Default::default()
        };
        assert!(
            camgate_server::config::Config::resolve(None, Some("sqlite://x.db".into()), file)
                .is_err(),
            "ttl {ttl:?} interval {interval:?} accepted"
        );
    }
}

// ---- discovery, model, CLI, OpenAPI

#[tokio::test]
async fn discovery_lists_the_device_endpoint_and_grant() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["device_authorization_endpoint"],
        format!("{}/oauth/device_authorization", app.base)
    );
    let grants = v["grant_types_supported"].as_array().unwrap();
    assert!(grants.contains(&DEVICE_GRANT.into()), "{grants:?}");
    // The others are still there.
    for g in ["authorization_code", "refresh_token"] {
        assert!(grants.contains(&g.into()), "{g} missing: {grants:?}");
    }
}

#[test]
fn the_grant_type_parses_from_the_urn_and_the_short_name() {
    assert_eq!(GrantType::DeviceCode.as_str(), DEVICE_GRANT);
    assert_eq!(GrantType::parse(DEVICE_GRANT), Some(GrantType::DeviceCode));
    assert_eq!(GrantType::parse("device_code"), Some(GrantType::DeviceCode));
    assert_eq!(GrantType::parse("DEVICE_CODE"), None);
}

/// `camgate client add --grant device_code` stores the URN; the client then works.
#[tokio::test]
async fn cli_client_add_with_the_device_code_grant() {
    let db = TestDb::new().await;
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_camgate"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CAMGATE_") {
            c.env_remove(k);
        }
    }
    let o = c
        .env("CAMGATE_LOG", "warn")
        .args(["--database-url", &db.url])
        .args([
            "client",
            "add",
            "--name",
            TV,
            "--public",
            "--grant",
            "device_code",
            "--grant",
            "refresh_token",
            "--json",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {out}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["grants"], json!([DEVICE_GRANT, "refresh_token"]), "{v}");
    let client_id = s(&v, "client_id").to_string();

    // The stored client can run the flow.
    let config = test_config(&db.url);
    let app = spawn_on(db, config).await;
    let d = start_flow(&app, &client_id).await;
    assert_oauth_error(
        &poll(&app, &client_id, s(&d, "device_code")).await,
        400,
        "authorization_pending",
    );
}

/// The OpenAPI document describes the device authorization endpoint and a real answer
/// matches its 200 schema; the /device page is left out.
#[tokio::test]
async fn openapi_documents_the_device_authorization_endpoint() {
    let app = spawn_app().await;
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let op = &doc["paths"]["/oauth/device_authorization"]["post"];
    assert!(
        op.is_object(),
        "POST /oauth/device_authorization undocumented"
    );
    for st in ["200", "400", "401"] {
        assert!(op["responses"][st].is_object(), "{st} undocumented: {op}");
    }
    assert!(
        op["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object(),
        "no form request body: {op}"
    );
    assert!(doc["paths"].get("/device").is_none());

    let client = tv_client(&app).await;
    let (status, _, body) = device_authorization(&app, &[("client_id", &client)]).await;
    assert_eq!(status, 200);
    let schema = op["responses"]["200"]["content"]["application/json"]["schema"].clone();
    assert!(schema.is_object(), "no JSON schema for 200: {op}");
    let mut root = json!({"$schema": "https://json-schema.org/draft/2020-12/schema"});
    root["allOf"] = json!([schema]);
    root["components"] = doc["components"].clone();
    let v = jsonschema::draft202012::new(&root).unwrap();
    let errors: Vec<String> = v.iter_errors(&body).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{body} does not match: {errors:?}");
    // Not vacuous: without device_code it fails.
    let mut bad = body.clone();
    bad.as_object_mut().unwrap().remove("device_code");
    assert!(
        !v.is_valid(&bad),
        "the 200 schema does not require device_code"
    );
}

// ---- headless Chromium

/// The user opens verification_uri_complete in a real browser, signs in, confirms and
/// approves; the device's poll then gets tokens.
#[tokio::test]
async fn device_flow_in_headless_chromium() {
    let Some(browser) = browser::start("device_flow_in_headless_chromium").await else {
        return;
    };
    let c = &browser.c;
    let app = spawn_app().await;
    app.create_user(USER_EMAIL, PASSWORD).await;
    let client = tv_client(&app).await;
    let d = start_flow(&app, &client).await;
    let device_code = s(&d, "device_code").to_string();
    let user_code = s(&d, "user_code").to_string();
    let complete = s(&d, "verification_uri_complete").to_string();
    assert_oauth_error(
        &poll(&app, &client, &device_code).await,
        400,
        "authorization_pending",
    );

    let result = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        c.goto(&complete).await.unwrap();
        wait_for_url(c, &app.url("/login?next=")).await;
        c.wait().for_element(Locator::Id("email")).await.unwrap();
        save_screenshot(c, "device-1-login.png").await;
        type_into(c, "email", USER_EMAIL).await;
        type_into(c, "password", PASSWORD).await;
        browser::click(c, "sign-in").await;

        // Back on the device page, the code filled in.
        wait_for_url(c, &app.url("/device")).await;
        let input = c
            .wait()
            .for_element(Locator::Css("form[action=\"/device\"] input[name=\"user_code\"]"))
            .await
            .unwrap();
        let typed = input.prop("value").await.unwrap().unwrap_or_default();
        assert_eq!(typed, user_code);
        save_screenshot(c, "device-2-code.png").await;
        c.find(Locator::Css("form[action=\"/device\"] button[type=\"submit\"], form[action=\"/device\"] input[type=\"submit\"]"))
            .await
            .expect("no submit button on the code form")
            .click()
            .await
            .unwrap();

        // The confirmation page names the application.
        let approve = c
            .wait()
            .for_element(Locator::Css("button[name=\"decision\"][value=\"approve\"]"))
            .await
            .unwrap();
        let text = wait_for_text(c, TV).await;
        assert!(text.contains(TV), "{text}");
        save_screenshot(c, "device-3-confirm.png").await;
        c.set_window_size(390, 844).await.unwrap();
        save_screenshot(c, "device-3-confirm-phone.png").await;
        c.set_window_size(1280, 900).await.unwrap();
        let approve = match approve.is_displayed().await {
            Ok(true) => approve,
            _ => c
                .find(Locator::Css("button[name=\"decision\"][value=\"approve\"]"))
                .await
                .unwrap(),
        };
        approve.click().await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            // The page may be between documents right after the click: no `main` yet.
            let t = match c.find(Locator::Css("main")).await {
                Ok(m) => m.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if t.to_lowercase().contains("connected") {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never saw the connected page: {t}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        save_screenshot(c, "device-4-connected.png").await;
    }))
    .await;
    let _ = c.clone().close().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }

    app.clock.advance(5);
    let t = assert_tokens(&poll(&app, &client, &device_code).await, "read write");
    let me = app.get_bearer("/v1/me/", s(&t, "access_token")).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["email"], USER_EMAIL);
}

// ---- camera pairing (scope `camera_pair`)

/// Starts a pairing for `client_id` with the device's description.
async fn start_pairing(app: &TestApp, client_id: &str, name: &str, serial: &str) -> Value {
    let got = device_authorization(
        app,
        &[
            ("client_id", client_id),
            ("scope", "camera_pair"),
            ("device_name", name),
            ("device_serial", serial),
            ("device_model", "CG-1000"),
            ("device_type", "h265"),
        ],
    )
    .await;
    assert_eq!(got.0, 200, "pairing start failed: {}", got.2);
    got.2
}

/// The signed-in user pairs the device: the confirmation page describes it, the approval page
/// says it is paired; then the device's poll gets its tokens.
pub(crate) async fn pair(
    app: &TestApp,
    b: &mut Browser<'_>,
    client_id: &str,
    serial: &str,
) -> Value {
    let flow = start_pairing(app, client_id, "Porch cam", serial).await;
    let confirm = enter_code(b, s(&flow, "user_code")).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("Porch cam"), "{}", confirm.body);
    assert!(confirm.body.contains(serial), "{}", confirm.body);
    assert!(confirm.body.contains("camera_pair"), "{}", confirm.body);
    let done = decide(b, &confirm, "approve").await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("paired"), "{}", done.body);
    let got = poll(app, client_id, s(&flow, "device_code")).await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(got.2["scope"], "camera_pair");
    got.2
}

/// An access token of `email` (read + write) through a password-grant client.
async fn owner_token(app: &TestApp, email: &str) -> String {
    let client = app.public_client("angelcam").await;
    let t = app.password_token(&client, email, PASSWORD).await;
    s(&t, "access_token").to_string()
}

async fn heartbeat(app: &TestApp, id: i64, token: &str, body: Option<Value>) -> reqwest::Response {
    let mut req = app
        .http
        .post(app.url(&format!("/v1/cameras/{id}/heartbeat/")))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn pairing_registers_a_camera_and_binds_its_tokens_to_it() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let mut b = signed_in(&app, USER_EMAIL).await;
    let tokens = pair(&app, &mut b, &client, "SN-0001").await;
    let device = s(&tokens, "access_token").to_string();

    // The owner sees one new camera, online, with the device's name and codec.
    let owner = owner_token(&app, USER_EMAIL).await;
    let list: Value = app
        .get_bearer("/v1/cameras/", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 1, "{list}");
    let cam = &list["results"][0];
    assert_eq!(cam["name"], "Porch cam");
    assert_eq!(cam["status"], "online");
    assert_eq!(cam["type"], "h265");
    let id = cam["id"].as_i64().unwrap();

    // The device reads its own camera, and nothing else.
    let r = app.get_bearer(&format!("/v1/cameras/{id}/"), &device).await;
    assert_eq!(r.status(), 200);
    let own: Value = r.json().await.unwrap();
    assert_eq!(own["id"], id);
    for path in [
        "/v1/me/",
        "/v1/cameras/",
        "/rest/v2.0/users/self",
        "/rest/v2.0/cameras",
    ] {
        let r = app.get_bearer(path, &device).await;
        assert_eq!(r.status(), 403, "{path} with a device token");
    }
    let other = app
        .http
        .post(app.url("/v1/cameras/"))
        .bearer_auth(&owner)
        .json(&json!({"name": "Garden", "type": "h264"}))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 201);
    let other_id = other.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let r = app
        .get_bearer(&format!("/v1/cameras/{other_id}/"), &device)
        .await;
    assert_eq!(r.status(), 403, "another camera with a device token");
    let r = app
        .http
        .put(app.url(&format!("/v1/cameras/{id}/")))
        .bearer_auth(&device)
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a device token may not edit its camera");

    // Heartbeats: status and last-seen from the device; another camera is refused.
    let r = heartbeat(&app, id, &device, Some(json!({"status": "offline"}))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "offline");
    let r = heartbeat(&app, id, &device, None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "online");
    assert_eq!(heartbeat(&app, other_id, &device, None).await.status(), 403);
    let r = heartbeat(&app, id, &device, Some(json!({"status": "exploded"}))).await;
    assert_eq!(r.status(), 400);
    let r = heartbeat(&app, id, &device, Some(json!({"bogus": 1}))).await;
    assert_eq!(r.status(), 400);
    // The owner may report too (write scope); a stranger's camera id is 404 for them.
    assert_eq!(heartbeat(&app, other_id, &owner, None).await.status(), 200);
    assert_eq!(heartbeat(&app, 999_999, &owner, None).await.status(), 404);

    // The device's refresh token keeps the binding.
    let refreshed = app
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", s(&tokens, "refresh_token")),
        ])
        .await;
    assert_eq!(refreshed.status(), 200);
    let t: Value = refreshed.json().await.unwrap();
    let device2 = s(&t, "access_token");
    assert_eq!(
        app.get_bearer(&format!("/v1/cameras/{id}/"), device2)
            .await
            .status(),
        200
    );
    assert_eq!(app.get_bearer("/v1/me/", device2).await.status(), 403);
}

#[tokio::test]
async fn pairing_the_same_serial_again_rebinds_the_same_camera() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let mut b = signed_in(&app, USER_EMAIL).await;
    let first = pair(&app, &mut b, &client, "SN-0042").await;
    let second = pair(&app, &mut b, &client, "SN-0042").await;
    let owner = owner_token(&app, USER_EMAIL).await;
    let list: Value = app
        .get_bearer("/v1/cameras/", &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 1, "pairing again made a duplicate: {list}");
    let id = list["results"][0]["id"].as_i64().unwrap();
    for t in [&first, &second] {
        let r = app
            .get_bearer(&format!("/v1/cameras/{id}/"), s(t, "access_token"))
            .await;
        assert_eq!(r.status(), 200);
    }
    // Another user pairing a device with the same serial gets a camera of their own.
    let mut other = signed_in(&app, "neighbour@example.com").await;
    let theirs = pair(&app, &mut other, &client, "SN-0042").await;
    let r = app
        .get_bearer(&format!("/v1/cameras/{id}/"), s(&theirs, "access_token"))
        .await;
    assert_eq!(
        r.status(),
        403,
        "a neighbour's device reached the first user's camera"
    );
    let n = owner_token(&app, "neighbour@example.com").await;
    let theirs_list: Value = app
        .get_bearer("/v1/cameras/", &n)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs_list["count"], 1);
    assert_ne!(theirs_list["results"][0]["id"], id);
}

#[tokio::test]
async fn deleting_the_paired_camera_revokes_its_device_tokens_at_once() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let mut b = signed_in(&app, USER_EMAIL).await;
    let tokens = pair(&app, &mut b, &client, "SN-0099").await;
    let device = s(&tokens, "access_token");
    let owner = owner_token(&app, USER_EMAIL).await;
    let list: Value = app
        .get_bearer("/v1/cameras/", &owner)
        .await
        .json()
        .await
        .unwrap();
    let id = list["results"][0]["id"].as_i64().unwrap();
    assert_eq!(
        app.get_bearer(&format!("/v1/cameras/{id}/"), device)
            .await
            .status(),
        200
    );
    let r = app
        .http
        .delete(app.url(&format!("/v1/cameras/{id}/")))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        app.get_bearer(&format!("/v1/cameras/{id}/"), device)
            .await
            .status(),
        401
    );
    assert_eq!(heartbeat(&app, id, device, None).await.status(), 401);
    let refreshed = app
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", s(&tokens, "refresh_token")),
        ])
        .await;
    assert_eq!(refreshed.status(), 400);
    // The owner's own token is untouched.
    assert_eq!(app.get_bearer("/v1/me/", &owner).await.status(), 200);
}

#[tokio::test]
async fn pairing_requests_are_validated() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let base = [
        ("client_id", client.as_str()),
        ("device_name", "Cam"),
        ("device_serial", "SN-1"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut f: Vec<(&str, &str)> = base.to_vec();
        f.extend_from_slice(extra);
        f
    };
    let got = device_authorization(&app, &with(&[("scope", "camera_pair read")])).await;
    assert_oauth_error(&got, 400, "invalid_scope");
    let got = device_authorization(
        &app,
        &[
            ("client_id", &client),
            ("scope", "camera_pair"),
            ("device_serial", "SN-1"),
        ],
    )
    .await;
    assert_oauth_error(&got, 400, "invalid_request");
    let got = device_authorization(
        &app,
        &[
            ("client_id", &client),
            ("scope", "camera_pair"),
            ("device_name", "Cam"),
        ],
    )
    .await;
    assert_oauth_error(&got, 400, "invalid_request");
    let got = device_authorization(
        &app,
        &[
            ("client_id", &client),
            ("scope", "camera_pair"),
            ("device_name", "Cam"),
            ("device_serial", "SN 1; DROP"),
        ],
    )
    .await;
    assert_oauth_error(&got, 400, "invalid_request");
    let got = device_authorization(
        &app,
        &with(&[("scope", "camera_pair"), ("device_type", "vhs")]),
    )
    .await;
    assert_oauth_error(&got, 400, "invalid_request");
    // A client on a JWT profile cannot pair (its tokens could not be bound).
    let (jwt_client, _) = {
        let mut input = client_input("JWT device", ClientKind::Public, "cam2");
        input.grants = vec![GrantType::DeviceCode];
        let r = app.register(input).await;
        (r.client.client_id, r.secret)
    };
    let got = device_authorization(
        &app,
        &[
            ("client_id", &jwt_client),
            ("scope", "camera_pair"),
            ("device_name", "Cam"),
            ("device_serial", "SN-1"),
        ],
    )
    .await;
    assert_oauth_error(&got, 400, "unauthorized_client");
    // A valid pairing request still works after all that.
    let ok = device_authorization(&app, &with(&[("scope", "camera_pair")])).await;
    assert_eq!(ok.0, 200, "{}", ok.2);
}

#[tokio::test]
async fn the_dashboard_shows_pending_and_paired_devices_and_unpairs() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let mut b = signed_in(&app, USER_EMAIL).await;
    // Approved but not yet fetched by the device: listed as waiting.
    let flow = start_pairing(&app, &client, "Shed cam", "SN-7").await;
    let confirm = enter_code(&mut b, s(&flow, "user_code")).await;
    let done = decide(&mut b, &confirm, "approve").await;
    assert_eq!(done.status, 200, "{}", done.body);
    let page = b.get("/dashboard/cameras/").await;
    page.ok()
        .has("Waiting for devices")
        .has("Shed cam")
        .has("Pair a device");
    // The device fetches its tokens: no longer waiting, shown as paired (last seen when it
    // was paired).
    let tokens = poll(&app, &client, s(&flow, "device_code")).await;
    assert_eq!(tokens.0, 200, "{}", tokens.2);
    let device = s(&tokens.2, "access_token").to_string();
    let page = b.get("/dashboard/cameras/").await;
    page.ok()
        .lacks("Waiting for devices")
        .has("Paired device")
        .has("SN-7")
        .has("last seen");
    let owner = owner_token(&app, USER_EMAIL).await;
    let list: Value = app
        .get_bearer("/v1/cameras/", &owner)
        .await
        .json()
        .await
        .unwrap();
    let id = list["results"][0]["id"].as_i64().unwrap();
    assert_eq!(heartbeat(&app, id, &device, None).await.status(), 200);
    b.get("/dashboard/cameras/").await.ok().has("last seen");
    // Unpair: confirmation, then the device's token is dead and the camera stays.
    let unpair = format!("/dashboard/cameras/{id}/unpair");
    b.get(&unpair).await.ok().has("Unpair device");
    let r = b.post(&unpair, &[]).await;
    assert_eq!(r.status, 403, "unpair without the CSRF token: {}", r.body);
    assert_eq!(
        app.get_bearer(&format!("/v1/cameras/{id}/"), &device)
            .await
            .status(),
        200
    );
    let r = b.post_csrf(&unpair, &[]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        app.get_bearer(&format!("/v1/cameras/{id}/"), &device)
            .await
            .status(),
        401
    );
    let page = b.get("/dashboard/cameras/").await;
    page.ok().has("Shed cam").has("unpaired");
    // Nothing left to unpair; another user's camera is not found.
    assert_eq!(b.post_csrf(&unpair, &[]).await.status, 404);
    let mut other = signed_in(&app, "other@example.com").await;
    assert_eq!(other.get(&unpair).await.status, 404);
}

#[tokio::test]
async fn deleting_a_paired_camera_on_one_node_kills_its_device_token_on_another() {
    let a = spawn_app().await;
    let node_b = a.spawn_node().await;
    let client = tv_client(&a).await;
    let mut b = signed_in(&a, USER_EMAIL).await;
    let tokens = pair(&a, &mut b, &client, "SN-2N").await;
    let device = s(&tokens, "access_token");
    let owner = owner_token(&a, USER_EMAIL).await;
    let list: Value = a
        .get_bearer("/v1/cameras/", &owner)
        .await
        .json()
        .await
        .unwrap();
    let id = list["results"][0]["id"].as_i64().unwrap();
    let path = format!("/v1/cameras/{id}/");
    // Warm both nodes' lookups first, so no cache could hide the revocation.
    assert_eq!(a.get_bearer(&path, device).await.status(), 200);
    assert_eq!(node_b.get_bearer(&path, device).await.status(), 200);
    let r = a
        .http
        .delete(a.url(&path))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(node_b.get_bearer(&path, device).await.status(), 401);
    assert_eq!(a.get_bearer(&path, device).await.status(), 401);
}
