//! Black-box tests of dealers: marking one with the command line (`user add --dealer`,
//! `user set --dealer | --no-dealer`), its customer accounts (`/v1/dealer/customers/`), and
//! acting for a customer through OAuth 2.0 Token Exchange (RFC 8693) at `/oauth/token`: the
//! dealer's access token as `subject_token`, the customer in `requested_subject`, answered by a
//! short-lived customer token that carries `act` (§4.1) — opaque on an opaque profile, a JWT on
//! the `cam2` profile. Every refusal, the `limited` level, the customer lowering or revoking the
//! dealer's access (effective on the next request), introspection and the audit rows. Runs on
//! SQLite, or on PostgreSQL with `CAMGATE_TEST_DATABASE=postgres`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use camgate_core::model::{AuditRecord, CameraFields, ClientKind, DealerLevel, GrantType, User};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const REFRESH_TYPE: &str = "urn:ietf:params:oauth:token-type:refresh_token";

type Got = (u16, HeaderMap, Value);

async fn parts(r: reqwest::Response) -> Got {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"))
    };
    (status, headers, body)
}

/// `method path` with `Authorization: Bearer token` and an optional JSON body.
async fn call(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> Got {
    let mut r = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    parts(r.send().await.unwrap()).await
}

async fn get(app: &TestApp, path: &str, token: &str) -> Got {
    call(app, Method::GET, path, token, None).await
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} is not a string in {v}"))
        .to_string()
}

#[track_caller]
fn assert_oauth_error(got: &Got, status: u16, code: &str) {
    let (st, h, body) = got;
    assert_eq!(*st, status, "expected {status} {code}, got: {body}");
    assert_eq!(body["error"], code, "{body}");
    for k in body.as_object().unwrap().keys() {
        assert!(
            ["error", "error_description", "error_uri"].contains(&k.as_str()),
            "unexpected member {k} in an error answer: {body}"
        );
    }
    assert_eq!(h["cache-control"], "no-store");
}

#[track_caller]
fn assert_angel_error(got: &Got, status: u16, title: &str) {
    let (st, _, body) = got;
    assert_eq!(*st, status, "body: {body}");
    assert_eq!(body["status"], status, "body: {body}");
    assert_eq!(body["title"], title, "body: {body}");
}

#[track_caller]
fn assert_insufficient_scope(got: &Got) {
    assert_angel_error(got, 403, "permission_denied");
    assert_eq!(
        got.1["www-authenticate"],
        r#"Bearer realm="api", error="insufficient_scope", scope="write""#
    );
}

/// A 401 `invalid_token` on a resource route.
#[track_caller]
fn assert_unauthenticated(got: &Got) {
    assert_angel_error(got, 401, "not_authenticated");
    assert_eq!(
        got.1["www-authenticate"],
        r#"Bearer realm="api", error="invalid_token""#
    );
}

fn jwt_payload(jwt: &str) -> Value {
    let p: Vec<&str> = jwt.split('.').collect();
    assert_eq!(p.len(), 3, "not a JWS: {jwt}");
    serde_json::from_slice(&B64.decode(p[1]).unwrap()).unwrap()
}

// ---- fixtures

/// A confidential client on `profile` with these grants: (client_id, secret).
async fn client_with(app: &TestApp, profile: &str, grants: Vec<GrantType>) -> (String, String) {
    let mut input = client_input("dealer tool", ClientKind::Confidential, profile);
    input.grants = grants;
    let r = app.register(input).await;
    (r.client.client_id, r.secret.unwrap())
}

/// The exchange client of a profile: token exchange only.
async fn exchange_client(app: &TestApp, profile: &str) -> (String, String) {
    client_with(app, profile, vec![GrantType::TokenExchange]).await
}

/// A dealer (marked through the core, as `user add --dealer` does) and its access token.
async fn dealer(app: &TestApp, email: &str) -> (User, String) {
    let (u, t) = app.user_with_token(email).await;
    app.core.set_dealer(u.id, true).await.unwrap();
    (u, t)
}

/// The dealer creates a customer through the API; panics unless 201. Returns the answer.
async fn add_customer(app: &TestApp, dealer_t: &str, email: &str, level: Option<&str>) -> Value {
    let mut body = json!({"email": email, "password": PASSWORD, "first_name": "Cora",
        "last_name": "Customer"});
    if let Some(l) = level {
        body["level"] = json!(l);
    }
    let got = call(
        app,
        Method::POST,
        "/v1/dealer/customers/",
        dealer_t,
        Some(body),
    )
    .await;
    assert_eq!(got.0, 201, "customer not created: {}", got.2);
    got.2
}

/// POSTs a token-exchange request (the client in the body) and returns the answer.
async fn exchange_with(app: &TestApp, client: &(String, String), extra: &[(&str, &str)]) -> Got {
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", EXCHANGE),
        ("client_id", client.0.as_str()),
        ("client_secret", client.1.as_str()),
    ];
    form.extend_from_slice(extra);
    parts(app.token_form(&form).await).await
}

/// The usual exchange: `subject` acting for `customer`.
async fn exchange(app: &TestApp, client: &(String, String), subject: &str, customer: i64) -> Got {
    let customer = customer.to_string();
    exchange_with(
        app,
        client,
        &[
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TYPE),
            ("requested_subject", customer.as_str()),
        ],
    )
    .await
}

/// The exchange succeeded: checks the answer's members; returns the access token.
#[track_caller]
fn assert_exchanged(got: &Got, token_type: &str, scope: &str) -> String {
    let (st, h, body) = got;
    assert_eq!(*st, 200, "exchange failed: {body}");
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
            "issued_token_type",
            "scope",
            "token_type"
        ],
        "no refresh token, nothing else: {body}"
    );
    assert_eq!(body["token_type"], token_type);
    assert_eq!(body["issued_token_type"], ACCESS_TYPE);
    assert_eq!(body["scope"], scope);
    let exp = body["expires_in"].as_i64().unwrap();
    assert!((1..=600).contains(&exp), "expires_in {exp}");
    assert_eq!(h["cache-control"], "no-store");
    s(body, "access_token")
}

async fn introspect(app: &TestApp, client: &(String, String), token: &str) -> Value {
    let r = app
        .http
        .post(app.url("/oauth/introspect"))
        .form(&[
            ("client_id", client.0.as_str()),
            ("client_secret", client.1.as_str()),
            ("token", token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn audits(app: &TestApp, kind: &str) -> Vec<AuditRecord> {
    app.core
        .store
        .recent_audit(10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

/// The subject token and its type.
fn base(subject: &str) -> Vec<(&str, &str)> {
    vec![
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TYPE),
    ]
}

fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap()
}

// ---- the command line

const BIN: &str = env!("CARGO_BIN_EXE_camgate");

/// Runs `camgate --database-url URL args...` with no `CAMGATE_*` variables inherited.
fn cli(db: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("CAMGATE_") {
            c.env_remove(k);
        }
    }
    c.env("CAMGATE_LOG", "warn")
        .arg("--database-url")
        .arg(db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn cli_json(o: &Output) -> Value {
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {out}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[track_caller]
fn assert_cli_failed(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected a failure");
    let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
    assert!(
        err.contains(needle),
        "stderr should mention {needle:?}: {err}"
    );
}

#[tokio::test]
async fn the_command_line_marks_dealers_and_registers_an_exchange_client() {
    let db = TestDb::new().await;
    let url = db.url.clone();
    let v = cli_json(&cli(
        &url,
        &[
            "user",
            "add",
            "--email",
            "dealer@example.com",
            "--password-stdin",
            "--dealer",
            "--json",
        ],
        Some(&format!("{PASSWORD}\n")),
    ));
    assert_eq!(v["is_dealer"], true, "{v}");
    let dealer_id = v["id"].as_i64().unwrap();
    let v = cli_json(&cli(
        &url,
        &[
            "user",
            "add",
            "--email",
            "later@example.com",
            "--password-stdin",
            "--json",
        ],
        Some(&format!("{PASSWORD}\n")),
    ));
    assert_eq!(v["is_dealer"], false, "{v}");
    let later_id = v["id"].as_i64().unwrap();
    // The short grant name is accepted here.
    let v = cli_json(&cli(
        &url,
        &[
            "client",
            "add",
            "--name",
            "Dealer tool",
            "--grant",
            "password",
            "--grant",
            "token_exchange",
            "--json",
        ],
        None,
    ));
    let grants: Vec<&str> = v["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert!(grants.contains(&EXCHANGE), "{v}");
    let client = (s(&v, "client_id"), s(&v, "client_secret"));
    // `user set` needs a flag, a known user, and not both flags.
    assert_cli_failed(
        &cli(&url, &["user", "set", "later@example.com"], None),
        "nothing to set",
    );
    assert!(!cli(
        &url,
        &["user", "set", "nobody@example.com", "--dealer"],
        None
    )
    .status
    .success());
    assert!(!cli(
        &url,
        &[
            "user",
            "set",
            "later@example.com",
            "--dealer",
            "--no-dealer"
        ],
        None
    )
    .status
    .success());

    let app = spawn_on(db, test_config(&url)).await;
    assert!(
        app.core
            .store
            .user_by_id(dealer_id)
            .await
            .unwrap()
            .unwrap()
            .is_dealer
    );
    let token = |email: &'static str| {
        let app = &app;
        let client = client.clone();
        async move {
            let r = app
                .token_form(&[
                    ("grant_type", "password"),
                    ("client_id", client.0.as_str()),
                    ("client_secret", client.1.as_str()),
                    ("username", email),
                    ("password", PASSWORD),
                ])
                .await;
            assert_eq!(r.status(), 200);
            s(&r.json::<Value>().await.unwrap(), "access_token")
        }
    };
    let dealer_t = token("dealer@example.com").await;
    let later_t = token("later@example.com").await;

    // Not a dealer yet: no customers.
    let body = json!({"email": "c2@example.com", "password": PASSWORD});
    let got = call(
        &app,
        Method::POST,
        "/v1/dealer/customers/",
        &later_t,
        Some(body.clone()),
    )
    .await;
    assert_angel_error(&got, 403, "permission_denied");

    let cust = add_customer(&app, &dealer_t, "c1@example.com", None).await;
    let got = exchange(&app, &client, &dealer_t, id_of(&cust)).await;
    let act = assert_exchanged(&got, "Bearer", "read write");
    assert_eq!(get(&app, "/v1/me/", &act).await.2["id"], cust["id"]);

    // `user set --dealer` makes the second one a dealer (the running server sees it).
    let v = cli_json(&cli(
        &url,
        &["user", "set", "later@example.com", "--dealer", "--json"],
        None,
    ));
    assert_eq!(
        v,
        json!({"id": later_id, "email": "later@example.com", "is_dealer": true})
    );
    let got = call(
        &app,
        Method::POST,
        "/v1/dealer/customers/",
        &later_t,
        Some(body),
    )
    .await;
    assert_eq!(got.0, 201, "{}", got.2);

    // `user set --no-dealer` ends the first one's acting at once, and its exchanges.
    let o = cli(
        &url,
        &["user", "set", "dealer@example.com", "--no-dealer"],
        None,
    );
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("no longer a dealer"));
    assert_unauthenticated(&get(&app, "/v1/me/", &act).await);
    let got = exchange(&app, &client, &dealer_t, id_of(&cust)).await;
    assert_oauth_error(&got, 400, "invalid_target");
    assert_angel_error(
        &get(&app, "/v1/dealer/customers/", &dealer_t).await,
        403,
        "permission_denied",
    );

    // The audit log, through `camgate audit tail`.
    let o = cli(&url, &["audit", "tail", "--json", "--limit", "200"], None);
    assert!(o.status.success());
    let rows: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds = |k: &str| rows.iter().filter(|r| r["kind"] == k).count();
    assert_eq!(kinds("dealer_set"), 3, "two marks and one unmark");
    assert_eq!(kinds("customer_created"), 2);
    let ex: Vec<&Value> = rows
        .iter()
        .filter(|r| r["kind"] == "token_exchanged")
        .collect();
    assert_eq!(ex.len(), 1, "refused exchanges are not `token_exchanged`");
    assert_eq!(ex[0]["user_id"], cust["id"]);
    assert_eq!(ex[0]["client_id"], client.0.as_str());
    let d = ex[0]["detail"].as_str().unwrap();
    assert!(d.contains(&format!("dealer {dealer_id} ")), "{d}");
    assert!(d.contains(&format!("customer {} ", cust["id"])), "{d}");
}

// ---- customers

#[tokio::test]
async fn a_dealer_creates_and_lists_its_customers() {
    let app = spawn_app().await;
    let (_, plain_t) = app.user_with_token("plain@example.com").await;
    let (d, dealer_t) = dealer(&app, "dealer@example.com").await;
    let (_, other_t) = dealer(&app, "other-dealer@example.com").await;
    let path = "/v1/dealer/customers/";

    // Not a dealer: refused, and nothing is created.
    let body = json!({"email": "c@example.com", "password": PASSWORD});
    assert_angel_error(
        &call(&app, Method::POST, path, &plain_t, Some(body.clone())).await,
        403,
        "permission_denied",
    );
    assert_angel_error(&get(&app, path, &plain_t).await, 403, "permission_denied");
    assert!(app
        .core
        .user_by_email("c@example.com")
        .await
        .unwrap()
        .is_none());

    // The default level is full.
    let c1 = add_customer(&app, &dealer_t, "C1@Example.com", None).await;
    let mut keys: Vec<&str> = c1.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "disabled",
            "email",
            "first_name",
            "id",
            "last_name",
            "level",
            "status",
            "updated_at"
        ]
    );
    assert_eq!(c1["level"], "full");
    assert_eq!(c1["status"], "full");
    assert_eq!(c1["disabled"], false);
    assert_eq!(c1["first_name"], "Cora");
    let c2 = add_customer(&app, &dealer_t, "c2@example.com", Some("limited")).await;
    assert_eq!(c2["level"], "limited");
    assert_eq!(c2["status"], "limited");

    // A customer is an account of its own: it signs in with the password given.
    let client = app.public_client("angelcam").await;
    let t = app
        .password_token(&client, "c1@example.com", PASSWORD)
        .await;
    let me = get(&app, "/v1/me/", &s(&t, "access_token")).await;
    assert_eq!(me.2["id"], c1["id"]);
    let cust = app
        .core
        .store
        .user_by_id(id_of(&c1))
        .await
        .unwrap()
        .unwrap();
    assert!(!cust.is_dealer && !cust.is_admin);
    let (link, by) = app.core.managed_by(cust.id).await.unwrap().unwrap();
    assert_eq!(by.id, d.id);
    assert_eq!(link.level, DealerLevel::Full);

    // Refusals: each 400 (or 403) and nothing created.
    let bad = [
        json!({"email": "c1@example.com", "password": PASSWORD}),
        json!({"email": "C2@EXAMPLE.COM", "password": PASSWORD}),
        json!({"email": "plain@example.com", "password": PASSWORD}),
        json!({"email": "c3@example.com", "password": PASSWORD, "level": "admin"}),
        json!({"email": "c3@example.com", "password": PASSWORD, "level": "FULL"}),
        json!({"email": "c3@example.com", "password": PASSWORD, "level": ""}),
        json!({"email": "c3@example.com"}),
        json!({"password": PASSWORD}),
        json!({"email": "not-an-email", "password": PASSWORD}),
        json!({"email": "c3@example.com", "password": PASSWORD, "is_admin": true}),
    ];
    for b in bad {
        let got = call(&app, Method::POST, path, &dealer_t, Some(b.clone())).await;
        assert_angel_error(&got, 400, "invalid");
        assert!(
            app.core
                .user_by_email("c3@example.com")
                .await
                .unwrap()
                .is_none(),
            "{b}"
        );
    }
    // A read-only token of the dealer may list, not create.
    let ro = {
        let r = app
            .token_form(&[
                ("grant_type", "password"),
                ("client_id", client.as_str()),
                ("username", "dealer@example.com"),
                ("password", PASSWORD),
                ("scope", "read"),
            ])
            .await;
        s(&r.json::<Value>().await.unwrap(), "access_token")
    };
    assert_eq!(get(&app, path, &ro).await.0, 200);
    assert_insufficient_scope(
        &call(
            &app,
            Method::POST,
            path,
            &ro,
            Some(json!({"email": "c3@example.com", "password": PASSWORD})),
        )
        .await,
    );

    // The list: the dealer's customers, oldest first, no one else's.
    let got = get(&app, path, &dealer_t).await;
    assert_eq!(got.0, 200);
    let list = got.2.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0], c1);
    assert_eq!(list[1], c2);
    assert_eq!(list[0]["email"], "C1@Example.com", "kept as given");
    assert_eq!(get(&app, path, &other_t).await.2, json!([]));

    // The customer revokes: the list says so.
    app.core
        .change_dealer_access(id_of(&c1), None)
        .await
        .unwrap();
    let list = get(&app, path, &dealer_t).await.2;
    assert_eq!(list[0]["status"], "revoked");
    assert_eq!(list[0]["level"], "full");
}

#[tokio::test]
async fn a_customer_account_claims_shares_waiting_for_its_address() {
    let app = spawn_app().await;
    let (owner, owner_t) = app.user_with_token("owner@example.com").await;
    let cam = app
        .core
        .create_camera(owner.id, CameraFields::named("Shop"))
        .await
        .unwrap();
    let got = call(
        &app,
        Method::POST,
        &format!("/v1/cameras/{}/shares/", cam.id),
        &owner_t,
        Some(json!({"email": "cust@example.com", "permission": "view"})),
    )
    .await;
    assert_eq!(got.2["pending"], true);
    let (_, dealer_t) = dealer(&app, "dealer@example.com").await;
    let cust = add_customer(&app, &dealer_t, "cust@example.com", None).await;

    let ex = exchange_client(&app, "angelcam").await;
    let act = assert_exchanged(
        &exchange(&app, &ex, &dealer_t, id_of(&cust)).await,
        "Bearer",
        "read write",
    );
    let got = get(&app, "/v1/cameras/", &act).await;
    assert_eq!(got.2["count"], 1, "{}", got.2);
    assert_eq!(got.2["results"][0]["id"], cam.id);
    assert_eq!(got.2["results"][0]["shared"], true);
    // The dealer's own token does not reach it.
    assert_eq!(
        get(&app, &format!("/v1/cameras/{}/", cam.id), &dealer_t)
            .await
            .0,
        404
    );
}

// ---- token exchange

#[tokio::test]
async fn exchange_on_an_opaque_profile_acts_for_the_customer() {
    let app = spawn_app().await;
    let (d, dealer_t) = dealer(&app, "dealer@example.com").await;
    let cust = add_customer(&app, &dealer_t, "cust@example.com", None).await;
    let cid = id_of(&cust);
    let cam = app
        .core
        .create_camera(cid, CameraFields::named("Customer's cam"))
        .await
        .unwrap();
    // The dealer's own camera, which the act token must not show.
    app.core
        .create_camera(d.id, CameraFields::named("Dealer's cam"))
        .await
        .unwrap();
    let ex = exchange_client(&app, "angelcam").await;

    let got = exchange(&app, &ex, &dealer_t, cid).await;
    let act = assert_exchanged(&got, "Bearer", "read write");
    assert_eq!(got.2["expires_in"], 600);
    assert_eq!(act.len(), 30, "the profile's token style");
    assert!(act.chars().all(|c| c.is_ascii_alphanumeric()));

    // It is the customer's token.
    let me = get(&app, "/v1/me/", &act).await;
    assert_eq!(me.0, 200);
    assert_eq!(me.2["id"], cid);
    assert_eq!(me.2["email"], "cust@example.com");
    let got = get(&app, "/v1/cameras/", &act).await;
    assert_eq!(got.2["count"], 1);
    assert_eq!(got.2["results"][0]["id"], cam.id);
    assert!(got.2["results"][0].get("shared").is_none());
    assert_eq!(
        get(&app, &format!("/v1/cameras/{}/", cam.id), &act).await.0,
        200
    );
    let n = get(&app, "/rest/v2.0/cameras", &act).await.2;
    assert_eq!(n.as_array().unwrap().len(), 1);
    assert_eq!(audits(&app, "acted_for").await.len(), 0, "reads are not");

    // Introspection names the dealer; the dealer's own token has no `act`.
    let i = introspect(&app, &ex, &act).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["sub"], cid.to_string());
    assert_eq!(i["username"], "cust@example.com");
    assert_eq!(i["scope"], "read write");
    assert_eq!(i["client_id"], ex.0.as_str());
    assert_eq!(i["act"], json!({"sub": d.id.to_string()}));
    let i = introspect(&app, &ex, &dealer_t).await;
    assert_eq!(i["active"], true);
    assert!(i.get("act").is_none(), "{i}");

    // A write: done as the customer, audited with both ids.
    let got = call(
        &app,
        Method::POST,
        "/v1/cameras/",
        &act,
        Some(json!({"name": "Added by dealer"})),
    )
    .await;
    assert_eq!(got.0, 201, "{}", got.2);
    let new_cam = id_of(&got.2);
    assert!(app.core.camera(cid, new_cam).await.is_ok());
    let acted = audits(&app, "acted_for").await;
    assert_eq!(acted.len(), 1);
    assert_eq!(acted[0].user_id, Some(cid));
    assert_eq!(acted[0].client_id.as_deref(), Some(ex.0.as_str()));
    assert!(
        acted[0]
            .detail
            .contains(&format!("dealer {} acting for customer {cid}", d.id)),
        "{}",
        acted[0].detail
    );
    assert!(
        acted[0].detail.contains("POST /v1/cameras/"),
        "{}",
        acted[0].detail
    );
    // What the dealer does on the customer's behalf names the dealer in its own row.
    let got = call(
        &app,
        Method::POST,
        &format!("/v1/cameras/{}/shares/", cam.id),
        &act,
        Some(json!({"email": "friend@example.com", "permission": "view"})),
    )
    .await;
    assert_eq!(got.0, 201, "{}", got.2);
    let shared = audits(&app, "share_created").await;
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].user_id, Some(cid));
    assert!(
        shared[0].detail.contains(&format!("(by dealer {})", d.id)),
        "{}",
        shared[0].detail
    );
    assert_eq!(audits(&app, "acted_for").await.len(), 2);

    let exchanged = audits(&app, "token_exchanged").await;
    assert_eq!(exchanged.len(), 1);
    assert_eq!(exchanged[0].user_id, Some(cid));
    assert_eq!(exchanged[0].client_id.as_deref(), Some(ex.0.as_str()));
    let det = &exchanged[0].detail;
    assert!(det.contains(&format!("dealer {} ", d.id)), "{det}");
    assert!(det.contains(&format!("customer {cid} ")), "{det}");
    assert!(det.contains("level full"), "{det}");

    // An act token is no dealer token: it cannot be exchanged again nor manage customers.
    let got = exchange(&app, &ex, &act, cid).await;
    assert_oauth_error(&got, 400, "invalid_request");
    assert_angel_error(
        &get(&app, "/v1/dealer/customers/", &act).await,
        403,
        "permission_denied",
    );
    // The exchange client may revoke one (RFC 7009): it stops at once.
    let other = assert_exchanged(
        &exchange(&app, &ex, &dealer_t, cid).await,
        "Bearer",
        "read write",
    );
    assert_eq!(get(&app, "/v1/me/", &other).await.0, 200);
    let r = app
        .http
        .post(app.url("/oauth/revoke"))
        .form(&[
            ("client_id", ex.0.as_str()),
            ("client_secret", ex.1.as_str()),
            ("token", other.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_unauthenticated(&get(&app, "/v1/me/", &other).await);
    assert_eq!(get(&app, "/v1/me/", &act).await.0, 200, "only that one");
    // It ends after its ten minutes.
    app.clock.advance(601);
    assert_unauthenticated(&get(&app, "/v1/me/", &act).await);
    assert_eq!(introspect(&app, &ex, &act).await, json!({"active": false}));
    assert_eq!(get(&app, "/v1/me/", &dealer_t).await.0, 200);
}

#[tokio::test]
async fn exchange_on_a_jwt_profile_carries_act_in_the_token() {
    let app = spawn_app().await;
    app.create_user("dealer@example.com", PASSWORD).await;
    let d = app
        .core
        .user_by_email("dealer@example.com")
        .await
        .unwrap()
        .unwrap();
    app.core.set_dealer(d.id, true).await.unwrap();
    // The dealer signs in on a cam2 client: its own token is a JWT too.
    let cam2 = client_with(
        &app,
        "cam2",
        vec![GrantType::Password, GrantType::TokenExchange],
    )
    .await;
    let r = app
        .token_form(&[
            ("grant_type", "password"),
            ("client_id", cam2.0.as_str()),
            ("client_secret", cam2.1.as_str()),
            ("username", "dealer@example.com"),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(r.status(), 200);
    let dealer_t = s(&r.json::<Value>().await.unwrap(), "access_token");
    assert!(dealer_t.starts_with("eyJ"), "{dealer_t}");
    let cust = add_customer(&app, &dealer_t, "cust@example.com", None).await;
    let cid = id_of(&cust);
    let cam = app
        .core
        .create_camera(cid, CameraFields::named("Customer's cam"))
        .await
        .unwrap();

    let got = exchange(&app, &cam2, &dealer_t, cid).await;
    // RFC 9068 §2: at /oauth/token a JWT access token is still of type Bearer.
    let act = assert_exchanged(&got, "Bearer", "read write");
    assert!(act.starts_with("eyJ"), "{act}");
    let c = jwt_payload(&act);
    assert_eq!(c["sub"], cid.to_string());
    assert_eq!(c["act"], json!({"sub": d.id.to_string()}));
    assert_eq!(c["client_id"], cam2.0.as_str());
    assert_eq!(c["gty"], EXCHANGE);
    assert_eq!(c["scope"], "read write");
    let life = c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap();
    assert_eq!(life, got.2["expires_in"].as_i64().unwrap());
    assert!(life <= 600, "{life}");
    // The dealer's own JWT has no `act`.
    assert!(jwt_payload(&dealer_t).get("act").is_none());

    // It reads the customer's cameras, under both schemes.
    let got = get(&app, "/v1/cameras/", &act).await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(got.2["count"], 1);
    assert_eq!(got.2["results"][0]["id"], cam.id);
    let r = app
        .http
        .get(app.url("/cameras.json"))
        .header("Authorization", format!("JWT {act}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v[0]["camera_id"], cam.id);

    let i = introspect(&app, &cam2, &act).await;
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["sub"], cid.to_string());
    assert_eq!(i["act"], json!({"sub": d.id.to_string()}));
    assert_eq!(i["scope"], "read write");

    // A write is audited.
    let got = call(
        &app,
        Method::PUT,
        &format!("/v1/cameras/{}/", cam.id),
        &act,
        Some(json!({"name": "Renamed by dealer"})),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.2);
    let acted = audits(&app, "acted_for").await;
    assert_eq!(acted.len(), 1);
    assert!(acted[0]
        .detail
        .contains(&format!("PUT /v1/cameras/{}/", cam.id)));

    // Not refreshable through CAM2's refresh, not exchangeable again.
    let r = app
        .http
        .post(app.url("/refresh_token.json"))
        .form(&[("token", act.as_str())])
        .send()
        .await
        .unwrap();
    let got = parts(r).await;
    assert_eq!(got.0, 400, "{}", got.2);
    assert_eq!(got.2["error"], "invalid_grant", "{}", got.2);
    assert_oauth_error(
        &exchange(&app, &cam2, &act, cid).await,
        400,
        "invalid_request",
    );

    // Revoked by the customer: the JWT stops working at its next use.
    app.core.change_dealer_access(cid, None).await.unwrap();
    assert_unauthenticated(&get(&app, "/v1/cameras/", &act).await);
    assert_eq!(
        introspect(&app, &cam2, &act).await,
        json!({"active": false})
    );
    assert_oauth_error(
        &exchange(&app, &cam2, &dealer_t, cid).await,
        400,
        "invalid_target",
    );
}

#[tokio::test]
async fn every_refusal_of_the_exchange() {
    let app = spawn_app().await;
    let (_, dealer_t) = dealer(&app, "dealer@example.com").await;
    let (_, other_dealer_t) = dealer(&app, "other@example.com").await;
    let (plain, plain_t) = app.user_with_token("plain@example.com").await;
    let cust = add_customer(&app, &dealer_t, "cust@example.com", None).await;
    let theirs = add_customer(&app, &other_dealer_t, "theirs@example.com", None).await;
    let revoked = add_customer(&app, &dealer_t, "gone@example.com", None).await;
    app.core
        .change_dealer_access(id_of(&revoked), None)
        .await
        .unwrap();
    let ex = exchange_client(&app, "angelcam").await;
    let cid_string = id_of(&cust).to_string();
    let cid: &str = &cid_string;
    let dt: &str = &dealer_t;

    // invalid_request: what is missing or malformed, and bad subject tokens.
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (base(dt), "no requested_subject"),
        (
            vec![
                ("subject_token_type", ACCESS_TYPE),
                ("requested_subject", cid),
            ],
            "no subject_token",
        ),
        (
            vec![("subject_token", dt), ("requested_subject", cid)],
            "no subject_token_type",
        ),
        (
            vec![
                ("subject_token", dt),
                ("subject_token_type", REFRESH_TYPE),
                ("requested_subject", cid),
            ],
            "refresh token type",
        ),
        (
            vec![
                ("subject_token", dt),
                ("subject_token_type", "access_token"),
                ("requested_subject", cid),
            ],
            "short token type",
        ),
        (
            [base("not-a-token"), vec![("requested_subject", cid)]].concat(),
            "unknown subject token",
        ),
        (
            [
                base("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.x"),
                vec![("requested_subject", cid)],
            ]
            .concat(),
            "forged JWT",
        ),
        (
            [
                base(dt),
                vec![
                    ("requested_subject", cid),
                    ("actor_token", dt),
                    ("actor_token_type", ACCESS_TYPE),
                ],
            ]
            .concat(),
            "actor_token",
        ),
        (
            [
                base(dt),
                vec![
                    ("requested_subject", cid),
                    ("requested_token_type", REFRESH_TYPE),
                ],
            ]
            .concat(),
            "refresh token requested",
        ),
    ];
    for (form, what) in cases {
        let got = exchange_with(&app, &ex, &form).await;
        assert_eq!(got.2["error"], "invalid_request", "{what}: {}", got.2);
        assert_oauth_error(&got, 400, "invalid_request");
    }

    // invalid_target: not a dealer, not this dealer's customer, a revoked link.
    let not = |subject: &str, target: String, what: &str| {
        let (app, ex) = (&app, &ex);
        let subject = subject.to_string();
        let what = what.to_string();
        async move {
            let got = exchange_with(
                app,
                ex,
                &[
                    ("subject_token", subject.as_str()),
                    ("subject_token_type", ACCESS_TYPE),
                    ("requested_subject", target.as_str()),
                ],
            )
            .await;
            assert_eq!(got.2["error"], "invalid_target", "{what}: {}", got.2);
            assert_oauth_error(&got, 400, "invalid_target");
        }
    };
    not(&plain_t, cid.to_string(), "a non-dealer's token").await;
    not(&dealer_t, plain.id.to_string(), "not a customer").await;
    not(&dealer_t, id_of(&theirs).to_string(), "another dealer's").await;
    not(&dealer_t, id_of(&revoked).to_string(), "revoked").await;
    not(&dealer_t, "999999".into(), "no such user").await;
    not(&dealer_t, "abc".into(), "not an id").await;
    not(&dealer_t, "cust@example.com".into(), "an address").await;

    // The client: without the grant, with a bad secret, the short grant name.
    let plain_client = app.confidential_client("angelcam").await;
    let got = exchange(&app, &plain_client, &dealer_t, id_of(&cust)).await;
    assert_oauth_error(&got, 400, "unauthorized_client");
    let got = exchange(
        &app,
        &(ex.0.clone(), "wrong".into()),
        &dealer_t,
        id_of(&cust),
    )
    .await;
    assert_oauth_error(&got, 401, "invalid_client");
    let r = app
        .token_form(&[
            ("grant_type", "token_exchange"),
            ("client_id", ex.0.as_str()),
            ("client_secret", ex.1.as_str()),
            ("subject_token", dealer_t.as_str()),
            ("subject_token_type", ACCESS_TYPE),
            ("requested_subject", cid),
        ])
        .await;
    assert_oauth_error(&parts(r).await, 400, "unsupported_grant_type");

    // Scope: never more than the dealer's token carries.
    let client = app.public_client("angelcam").await;
    let r = app
        .token_form(&[
            ("grant_type", "password"),
            ("client_id", client.as_str()),
            ("username", "dealer@example.com"),
            ("password", PASSWORD),
            ("scope", "read"),
        ])
        .await;
    let read_t = s(&r.json::<Value>().await.unwrap(), "access_token");
    for (subject, scope) in [(read_t.as_str(), "write"), (dealer_t.as_str(), "openid")] {
        let got = exchange_with(
            &app,
            &ex,
            &[
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TYPE),
                ("requested_subject", cid),
                ("scope", scope),
            ],
        )
        .await;
        assert_oauth_error(&got, 400, "invalid_scope");
    }
    // Narrower is fine.
    let got = exchange_with(
        &app,
        &ex,
        &[
            ("subject_token", dealer_t.as_str()),
            ("subject_token_type", ACCESS_TYPE),
            ("requested_subject", cid),
            ("scope", "read"),
        ],
    )
    .await;
    assert_exchanged(&got, "Bearer", "read");
    let got = exchange(&app, &ex, &read_t, id_of(&cust)).await;
    assert_exchanged(&got, "Bearer", "read");

    // Only these two succeeded.
    assert_eq!(audits(&app, "token_exchanged").await.len(), 2);

    // The dealer's token revoked (logout): refused as invalid.
    let r = app
        .http
        .delete(app.url("/rest/v2.0/users/self/tokens/current"))
        .bearer_auth(&read_t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = exchange(&app, &ex, &read_t, id_of(&cust)).await;
    assert_oauth_error(&got, 400, "invalid_request");
}

#[tokio::test]
async fn an_expired_subject_token_is_refused_and_bounds_the_act_token() {
    let app = spawn_app().await;
    let (_, dealer_t) = dealer(&app, "dealer@example.com").await;
    let cust = add_customer(&app, &dealer_t, "cust@example.com", None).await;
    let cid = id_of(&cust);
    let ex = exchange_client(&app, "angelcam").await;
    // The dealer's token (angelcam: 36 000 s) has 100 s left: so has the act token.
    app.clock.advance(36_000 - 100);
    let got = exchange(&app, &ex, &dealer_t, cid).await;
    let act = assert_exchanged(&got, "Bearer", "read write");
    assert_eq!(got.2["expires_in"], 100);
    assert_eq!(get(&app, "/v1/me/", &act).await.0, 200);
    app.clock.advance(100);
    assert_unauthenticated(&get(&app, "/v1/me/", &act).await);
    let got = exchange(&app, &ex, &dealer_t, cid).await;
    assert_oauth_error(&got, 400, "invalid_request");
    assert!(got.2["error_description"]
        .as_str()
        .unwrap()
        .contains("subject_token"));
}

#[tokio::test]
async fn the_limited_level_reads_only() {
    let app = spawn_app().await;
    let (d, dealer_t) = dealer(&app, "dealer@example.com").await;
    let cust = add_customer(&app, &dealer_t, "cust@example.com", Some("limited")).await;
    let cid = id_of(&cust);
    let cam = app
        .core
        .create_camera(cid, CameraFields::named("Front door"))
        .await
        .unwrap();
    let ex = exchange_client(&app, "angelcam").await;
    let got = exchange(&app, &ex, &dealer_t, cid).await;
    let act = assert_exchanged(&got, "Bearer", "read");
    let ev = audits(&app, "token_exchanged").await;
    assert!(ev[0].detail.contains("level limited"), "{}", ev[0].detail);

    assert_eq!(get(&app, "/v1/cameras/", &act).await.2["count"], 1);
    let path = format!("/v1/cameras/{}/", cam.id);
    for (method, p, b) in [
        (Method::PUT, path.clone(), Some(json!({"name": "Changed"}))),
        (Method::DELETE, path.clone(), None),
        (
            Method::POST,
            "/v1/cameras/".to_string(),
            Some(json!({"name": "New"})),
        ),
        (Method::DELETE, "/v1/me/".to_string(), None),
    ] {
        let got = call(&app, method.clone(), &p, &act, b).await;
        assert_insufficient_scope(&got);
    }
    // Nothing changed; every attempt was audited with both identities.
    assert_eq!(
        app.core.camera(cid, cam.id).await.unwrap().fields.name,
        "Front door"
    );
    assert!(app.core.store.user_by_id(cid).await.unwrap().is_some());
    let acted = audits(&app, "acted_for").await;
    assert_eq!(acted.len(), 4);
    assert!(acted
        .iter()
        .all(|e| e.user_id == Some(cid) && e.detail.contains(&format!("dealer {}", d.id))));
    // Asking for write does not get it either.
    let got = exchange_with(
        &app,
        &ex,
        &[
            ("subject_token", dealer_t.as_str()),
            ("subject_token_type", ACCESS_TYPE),
            ("requested_subject", cid.to_string().as_str()),
            ("scope", "read write"),
        ],
    )
    .await;
    assert_exchanged(&got, "Bearer", "read");
    let i = introspect(&app, &ex, &act).await;
    assert_eq!(i["scope"], "read");
}

#[tokio::test]
async fn lowering_or_revoking_the_dealer_takes_effect_on_the_next_request() {
    let app = spawn_app().await;
    let b = app.spawn_node().await;
    let (_, dealer_t) = dealer(&app, "dealer@example.com").await;
    let cust = add_customer(&app, &dealer_t, "cust@example.com", None).await;
    let cid = id_of(&cust);
    let cam = app
        .core
        .create_camera(cid, CameraFields::named("Front door"))
        .await
        .unwrap();
    let ex = exchange_client(&app, "angelcam").await;
    let act = assert_exchanged(
        &exchange(&app, &ex, &dealer_t, cid).await,
        "Bearer",
        "read write",
    );
    let path = format!("/v1/cameras/{}/", cam.id);
    let rename = |n: &str| Some(json!({"name": n}));
    assert_eq!(
        call(&app, Method::PUT, &path, &act, rename("One")).await.0,
        200
    );

    // Lowered to limited: the same token reads, no longer writes (on either node).
    app.core
        .change_dealer_access(cid, Some(DealerLevel::Limited))
        .await
        .unwrap();
    assert_insufficient_scope(&call(&app, Method::PUT, &path, &act, rename("Two")).await);
    assert_insufficient_scope(&call(&b, Method::PUT, &path, &act, rename("Two")).await);
    assert_eq!(get(&b, &path, &act).await.0, 200);
    assert_eq!(
        app.core.camera(cid, cam.id).await.unwrap().fields.name,
        "One"
    );
    let i = introspect(&app, &ex, &act).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["scope"], "read");
    // New exchanges are limited too; the level only goes down.
    assert_exchanged(&exchange(&app, &ex, &dealer_t, cid).await, "Bearer", "read");
    assert!(app
        .core
        .change_dealer_access(cid, Some(DealerLevel::Full))
        .await
        .is_err());
    let (link, _) = app.core.managed_by(cid).await.unwrap().unwrap();
    assert_eq!(link.level, DealerLevel::Limited);
    assert_eq!(link.revoked_at, None);

    // Revoked: the token is dead at once, everywhere.
    app.core.change_dealer_access(cid, None).await.unwrap();
    assert_unauthenticated(&get(&app, &path, &act).await);
    assert_unauthenticated(&get(&b, "/v1/me/", &act).await);
    assert_eq!(introspect(&b, &ex, &act).await, json!({"active": false}));
    assert_oauth_error(
        &exchange(&b, &ex, &dealer_t, cid).await,
        400,
        "invalid_target",
    );
    // Revoking twice is refused; the customer's own sign-in is untouched.
    assert!(app.core.change_dealer_access(cid, None).await.is_err());
    let client = app.public_client("angelcam").await;
    let t = app
        .password_token(&client, "cust@example.com", PASSWORD)
        .await;
    assert_eq!(get(&app, &path, &s(&t, "access_token")).await.0, 200);
    let changed = audits(&app, "dealer_access_changed").await;
    assert_eq!(changed.len(), 2);
    assert!(changed.iter().all(|e| e.user_id == Some(cid)));
    // A customer with no dealer cannot change one.
    let (plain, _) = app.user_with_token("plain@example.com").await;
    assert!(app
        .core
        .change_dealer_access(plain.id, Some(DealerLevel::Limited))
        .await
        .is_err());
}

#[tokio::test]
async fn with_require_mfa_for_dealers_a_dealer_needs_a_second_factor() {
    let app = spawn_app_with(|c| c.mfa.require_for_dealers = true).await;
    let dealer = app.create_user("dealer@example.com", PASSWORD).await;
    app.core.set_dealer(dealer.id, true).await.unwrap();
    let client = app.public_client("angelcam").await;
    let t = app
        .password_token(&client, "dealer@example.com", PASSWORD)
        .await;
    let token = t["access_token"].as_str().unwrap().to_string();
    let list = app.get_bearer("/v1/dealer/customers/", &token).await;
    assert_eq!(list.status(), 403);
    let body: Value = list.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("two-factor"),
        "{body}"
    );
    // With TOTP on, the same dealer may (its token from before still works: the rule is the
    // account's second factor, checked at each request).
    app.core.enable_totp_now(&dealer).await.unwrap();
    assert_eq!(
        app.get_bearer("/v1/dealer/customers/", &token)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn disabling_the_dealer_or_the_customer_ends_acting() {
    let app = spawn_app().await;
    let (d, dealer_t) = dealer(&app, "dealer@example.com").await;
    let c1 = id_of(&add_customer(&app, &dealer_t, "c1@example.com", None).await);
    let c2 = id_of(&add_customer(&app, &dealer_t, "c2@example.com", None).await);
    let ex = exchange_client(&app, "angelcam").await;
    let cam2 = exchange_client(&app, "cam2").await;
    let act1 = assert_exchanged(
        &exchange(&app, &ex, &dealer_t, c1).await,
        "Bearer",
        "read write",
    );
    let jwt1 = assert_exchanged(
        &exchange(&app, &cam2, &dealer_t, c1).await,
        "Bearer",
        "read write",
    );
    let act2 = assert_exchanged(
        &exchange(&app, &ex, &dealer_t, c2).await,
        "Bearer",
        "read write",
    );

    // A disabled customer: its act tokens stop, and no new one is issued.
    app.core.set_user_disabled(c1, true).await.unwrap();
    assert_unauthenticated(&get(&app, "/v1/me/", &act1).await);
    assert_unauthenticated(&get(&app, "/v1/me/", &jwt1).await);
    assert_eq!(introspect(&app, &ex, &act1).await, json!({"active": false}));
    assert_oauth_error(
        &exchange(&app, &ex, &dealer_t, c1).await,
        400,
        "invalid_target",
    );
    assert_eq!(get(&app, "/v1/me/", &act2).await.0, 200);

    // A disabled dealer: every act token of its stops at once.
    app.core.set_user_disabled(d.id, true).await.unwrap();
    assert_unauthenticated(&get(&app, "/v1/me/", &act2).await);
    assert_eq!(introspect(&app, &ex, &act2).await, json!({"active": false}));
    assert_oauth_error(
        &exchange(&app, &ex, &dealer_t, c2).await,
        400,
        "invalid_request",
    );
}
