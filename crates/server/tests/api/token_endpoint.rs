#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Black-box tests of the token endpoint, `POST /oauth/token/` and `POST /oauth/token`
//! (RFC 6749 §3.2, §4.3, §5, §6; specs 000, 001 and 003).
use crate::common::*;

use camgate_core::model::{ClientKind, GrantType};
use camgate_core::scope::ScopeSet;
use reqwest::header::HeaderMap;
use serde_json::Value;

const EMAIL: &str = "user@example.com";
/// The literal header of spec 003: Basic base64("cameramanager.test:qwertyuiopasdfghjklzxcvbnm12345").
const SPEC_003_BASIC: &str =
    "Basic Y2FtZXJhbWFuYWdlci50ZXN0OnF3ZXJ0eXVpb3Bhc2RmZ2hqa2x6eGN2Ym5tMTIzNDU=";
const INVALID_TOKEN: &str = r#"Bearer realm="api", error="invalid_token""#;

/// Status, headers and JSON body of an answer.
async fn parts(r: reqwest::Response) -> (u16, HeaderMap, Value) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"));
    (status, headers, body)
}

/// POSTs a form to the token endpoint and reads the answer.
async fn token(app: &TestApp, form: &[(&str, &str)]) -> (u16, HeaderMap, Value) {
    parts(app.token_form(form).await).await
}

/// The headers of every JSON answer of the token endpoint: not cached, JSON.
#[track_caller]
fn assert_no_store_json(h: &HeaderMap) {
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["pragma"], "no-cache");
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
}

/// A token answer with a refresh token has these fields and no others.
#[track_caller]
fn assert_token_keys(body: &Value) {
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
        ]
    );
}

/// Asserts an RFC 6749 §5.2 error: exact status, exactly `{error, error_description}`, the
/// code, and `Cache-Control: no-store`.
fn assert_oauth_error(got: &(u16, HeaderMap, Value), status: u16, code: &str) {
    let (s, h, body) = got;
    assert_eq!(*s, status, "body: {body}");
    assert_eq!(body["error"], code, "body: {body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "error_description missing: {body}"
    );
    assert_eq!(body.as_object().unwrap().len(), 2, "extra fields: {body}");
    assert_no_store_json(h);
}

/// Asserts a successful token answer of the angelcam profile.
fn assert_angelcam_tokens(got: &(u16, HeaderMap, Value), scope: &str) {
    let (s, h, body) = got;
    assert_eq!(*s, 200, "body: {body}");
    assert_no_store_json(h);
    assert_token_keys(body);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 36000);
    assert_eq!(body["scope"], scope);
    for k in ["access_token", "refresh_token"] {
        let t = body[k].as_str().unwrap();
        assert_eq!(t.len(), 30, "{k}: {t}");
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric()), "{k}: {t}");
    }
    assert_ne!(body["access_token"], body["refresh_token"]);
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .to_string()
}

async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.get_bearer("/v1/me/", token).await.status().as_u16()
}

/// A user with the common password and a public angelcam client.
async fn setup(app: &TestApp) -> String {
    app.create_user(EMAIL, PASSWORD).await;
    app.public_client("angelcam").await
}

async fn refresh(app: &TestApp, client: &str, rt: &str) -> (u16, HeaderMap, Value) {
    token(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client),
            ("refresh_token", rt),
        ],
    )
    .await
}

async fn password_login(
    app: &TestApp,
    client: &str,
    scope: Option<&str>,
) -> (u16, HeaderMap, Value) {
    let mut form = vec![
        ("client_id", client),
        ("grant_type", "password"),
        ("username", EMAIL),
        ("password", PASSWORD),
    ];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    token(app, &form).await
}

/// POSTs a raw urlencoded body to `path`.
async fn post_raw(app: &TestApp, path: &str, body: String) -> (u16, HeaderMap, Value) {
    parts(
        app.http
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn enc(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

// ---------------------------------------------------------------- password grant

#[tokio::test]
async fn password_grant_success_shape_on_both_paths() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    for path in ["/oauth/token/", "/oauth/token"] {
        let got = parts(
            app.http
                .post(app.url(path))
                .form(&[
                    ("client_id", client.as_str()),
                    ("grant_type", "password"),
                    ("username", EMAIL),
                    ("password", PASSWORD),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_angelcam_tokens(&got, "read write");
        let me = app.get_bearer("/v1/me/", &s(&got.2, "access_token")).await;
        assert_eq!(me.status(), 200, "{path}");
        let me: Value = me.json().await.unwrap();
        assert_eq!(me["email"], EMAIL);
    }
}

#[tokio::test]
async fn spec_000_user_access_scope_is_read_write() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    // The request of spec 000, as written.
    let got = post_raw(
        &app,
        "/oauth/token/",
        format!(
            "client_id={client}&scope=user_access&grant_type=password&username={}&password={}",
            enc(EMAIL),
            enc(PASSWORD)
        ),
    )
    .await;
    assert_angelcam_tokens(&got, "read write");
}

#[tokio::test]
async fn scope_aliases_and_subsets() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    for (asked, granted) in [
        ("user_access", "read write"),
        ("camera_access", "read"),
        ("read", "read"),
        ("write read", "read write"),
        ("read write", "read write"),
    ] {
        let got = password_login(&app, &client, Some(asked)).await;
        assert_angelcam_tokens(&got, granted);
    }
    // A camera_access token can read but not write.
    let got = password_login(&app, &client, Some("camera_access")).await;
    let token = s(&got.2, "access_token");
    assert_eq!(app.get_bearer("/v1/cameras/", &token).await.status(), 200);
    let r = app
        .http
        .post(app.url("/v1/cameras/"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn write_scope_on_cameramanager_client_is_answered_write() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let (id, secret) = app.confidential_client("cameramanager").await;
    let got = parts(
        app.http
            .post(app.url("/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "password"),
                ("scope", "write"),
                ("username", EMAIL),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(got.2["scope"], "write");
    assert_eq!(got.2["token_type"], "bearer");
    assert_eq!(got.2["expires_in"], 43199);
    // `write` implies `read` when authorizing.
    assert_eq!(me_status(&app, &s(&got.2, "access_token")).await, 200);
}

#[tokio::test]
async fn unknown_scope_is_invalid_scope() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    for scope in ["admin", "read admin", "READ"] {
        let got = password_login(&app, &client, Some(scope)).await;
        assert_oauth_error(&got, 400, "invalid_scope");
    }
}

#[tokio::test]
async fn scope_wider_than_the_client_allows_is_invalid_scope() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let mut input = client_input("read only", ClientKind::Public, "angelcam");
    input.scopes = Some(ScopeSet::READ);
    let client = app.register(input).await.client.client_id;
    for scope in ["write", "user_access", "read write", "camera_manage"] {
        let got = password_login(&app, &client, Some(scope)).await;
        assert_oauth_error(&got, 400, "invalid_scope");
    }
    // Within the allowed scopes, and the default, both work.
    assert_angelcam_tokens(&password_login(&app, &client, Some("read")).await, "read");
    assert_angelcam_tokens(&password_login(&app, &client, None).await, "read");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_answer_identically() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    let wrong = token(
        &app,
        &[
            ("client_id", &client),
            ("grant_type", "password"),
            ("username", EMAIL),
            ("password", "not the password"),
        ],
    )
    .await;
    assert_oauth_error(&wrong, 400, "invalid_grant");
    let unknown = token(
        &app,
        &[
            ("client_id", &client),
            ("grant_type", "password"),
            ("username", "nobody@example.com"),
            ("password", "not the password"),
        ],
    )
    .await;
    assert_oauth_error(&unknown, 400, "invalid_grant");
    assert_eq!(wrong.2, unknown.2);
    // Missing username or password is a malformed request, not a failed login.
    let got = token(
        &app,
        &[
            ("client_id", &client),
            ("grant_type", "password"),
            ("username", EMAIL),
        ],
    )
    .await;
    assert_oauth_error(&got, 400, "invalid_request");
}

// ---------------------------------------------------------------- refresh grant

#[tokio::test]
async fn refresh_with_multipart_body_rotates_and_invalidates_previous_tokens() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    let first = password_login(&app, &client, None).await;
    let (a1, r1) = (s(&first.2, "access_token"), s(&first.2, "refresh_token"));
    assert_eq!(me_status(&app, &a1).await, 200);

    // Spec 000's `curl -F` refresh request.
    let form = reqwest::multipart::Form::new()
        .text("grant_type", "refresh_token")
        .text("client_id", client.clone())
        .text("refresh_token", r1.clone());
    let second = parts(
        app.http
            .post(app.url("/oauth/token/"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_angelcam_tokens(&second, "read write");
    let (a2, r2) = (s(&second.2, "access_token"), s(&second.2, "refresh_token"));
    assert_ne!(r2, r1);
    assert_ne!(a2, a1);
    // "causes all previous tokens to become invalid"
    let old = app.get_bearer("/v1/me/", &a1).await;
    assert_eq!(old.status(), 401);
    assert_eq!(old.headers()["www-authenticate"], INVALID_TOKEN);
    assert_eq!(me_status(&app, &a2).await, 200);
    // The successor refreshes in turn.
    let third = refresh(&app, &client, &r2).await;
    assert_angelcam_tokens(&third, "read write");
    assert_ne!(s(&third.2, "refresh_token"), r2);
}

#[tokio::test]
async fn refresh_may_narrow_but_not_widen_the_scope() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    let first = password_login(&app, &client, Some("read")).await;
    let got = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", &s(&first.2, "refresh_token")),
            ("scope", "write"),
        ],
    )
    .await;
    assert_oauth_error(&got, 400, "invalid_scope");
    // The failed attempt did not consume the token.
    assert_angelcam_tokens(
        &refresh(&app, &client, &s(&first.2, "refresh_token")).await,
        "read",
    );
}

#[tokio::test]
async fn used_refresh_token_is_invalid_grant_without_grace() {
    let app = spawn_app_with(|c| c.refresh_grace_secs = 0).await;
    let client = setup(&app).await;
    let first = password_login(&app, &client, None).await;
    let r1 = s(&first.2, "refresh_token");
    let second = refresh(&app, &client, &r1).await;
    assert_angelcam_tokens(&second, "read write");
    let replay = refresh(&app, &client, &r1).await;
    assert_oauth_error(&replay, 400, "invalid_grant");
    // Reuse of a spent token is theft detection: the whole family is gone.
    assert_eq!(me_status(&app, &s(&second.2, "access_token")).await, 401);
    let succ = refresh(&app, &client, &s(&second.2, "refresh_token")).await;
    assert_oauth_error(&succ, 400, "invalid_grant");
}

#[tokio::test]
async fn replay_inside_grace_window_returns_same_pair_outside_revokes_family() {
    let app = spawn_app().await; // default grace window: 10 s
    let client = setup(&app).await;
    let first = password_login(&app, &client, None).await;
    let r1 = s(&first.2, "refresh_token");
    let second = refresh(&app, &client, &r1).await;
    assert_angelcam_tokens(&second, "read write");

    // A retry (lost response) inside the window: the identical pair.
    let retry = refresh(&app, &client, &r1).await;
    assert_angelcam_tokens(&retry, "read write");
    assert_eq!(retry.2, second.2);
    assert_eq!(me_status(&app, &s(&second.2, "access_token")).await, 200);

    // Outside the window: theft detection.
    app.clock.advance(11);
    let late = refresh(&app, &client, &r1).await;
    assert_oauth_error(&late, 400, "invalid_grant");
    let succ_access = app
        .get_bearer("/v1/me/", &s(&second.2, "access_token"))
        .await;
    assert_eq!(succ_access.status(), 401);
    assert_eq!(succ_access.headers()["www-authenticate"], INVALID_TOKEN);
    let succ = refresh(&app, &client, &s(&second.2, "refresh_token")).await;
    assert_oauth_error(&succ, 400, "invalid_grant");
}

#[tokio::test]
async fn replay_inside_grace_after_successor_was_used_is_refused() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    let first = password_login(&app, &client, None).await;
    let r1 = s(&first.2, "refresh_token");
    let second = refresh(&app, &client, &r1).await;
    let third = refresh(&app, &client, &s(&second.2, "refresh_token")).await;
    assert_angelcam_tokens(&third, "read write");
    // The pair the retry would return has already been rotated away.
    let replay = refresh(&app, &client, &r1).await;
    assert_oauth_error(&replay, 400, "invalid_grant");
    assert_eq!(me_status(&app, &s(&third.2, "access_token")).await, 200);
}

#[tokio::test]
async fn spec_003_password_request_as_written_and_reusable_refresh_token() {
    let app = spawn_app().await;
    app.create_user("cm@example.com", "secret").await;
    let mut input = client_input("CameraManager", ClientKind::Confidential, "cameramanager");
    input.client_id = Some("cameramanager.test".into());
    input.client_secret = Some("qwertyuiopasdfghjklzxcvbnm12345".into());
    let reg = app.register(input).await;
    assert_eq!(reg.secret, None, "an imported secret is not shown back");

    let r = app
        .http
        .post(app.url(
            "/oauth/token?grant_type=password&scope=write&username=cm%40example.com&password=secret",
        ))
        .header("accept", "application/json")
        .header("authorization", SPEC_003_BASIC)
        .send()
        .await
        .unwrap();
    let got = parts(r).await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(got.1["cache-control"], "no-store");
    let body = &got.2;
    assert_token_keys(body);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 43199);
    assert_eq!(body["scope"], "write");
    let rt = s(body, "refresh_token");
    let mut seen = vec![s(body, "access_token")];

    // Step 3 of spec 003, several times: the same refresh token keeps working.
    for _ in 0..3 {
        let r = app
            .http
            .post(app.url(&format!(
                "/oauth/token?grant_type=refresh_token&scope=write&refresh_token={}",
                enc(&rt)
            )))
            .header("accept", "application/json")
            .header("authorization", SPEC_003_BASIC)
            .send()
            .await
            .unwrap();
        let got = parts(r).await;
        assert_eq!(got.0, 200, "{}", got.2);
        assert_eq!(got.2["refresh_token"], rt.as_str());
        assert_eq!(got.2["token_type"], "bearer");
        assert_eq!(got.2["expires_in"], 43199);
        assert_eq!(got.2["scope"], "write");
        let access = s(&got.2, "access_token");
        assert!(!seen.contains(&access), "a fresh access token each time");
        assert_eq!(me_status(&app, &access).await, 200);
        seen.push(access);
    }
}

#[tokio::test]
async fn cameramanager_wrong_imported_secret_is_invalid_client() {
    let app = spawn_app().await;
    app.create_user("cm@example.com", "secret").await;
    let mut input = client_input("CameraManager", ClientKind::Confidential, "cameramanager");
    input.client_id = Some("cameramanager.test".into());
    input.client_secret = Some("qwertyuiopasdfghjklzxcvbnm12345".into());
    app.register(input).await;
    let got = parts(
        app.http
            .post(app.url(
                "/oauth/token?grant_type=password&scope=write&username=cm%40example.com&password=secret",
            ))
            .basic_auth("cameramanager.test", Some("qwertyuiopasdfghjklzxcvbnm12346"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_oauth_error(&got, 401, "invalid_client");
    assert!(got.1.contains_key("www-authenticate"));
}

// ---------------------------------------------------------------- client authentication

#[tokio::test]
async fn client_authentication_failures() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let (id, secret) = app.confidential_client("angelcam").await;
    let public = app.public_client("angelcam").await;
    let login = [
        ("grant_type", "password"),
        ("username", EMAIL),
        ("password", PASSWORD),
    ];

    // Sanity: right secret, in the body and via Basic.
    let mut ok = login.to_vec();
    ok.extend([
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
    ]);
    assert_angelcam_tokens(&token(&app, &ok).await, "read write");
    let basic_ok = app
        .http
        .post(app.url("/oauth/token/"))
        .basic_auth(&id, Some(&secret))
        .form(&login)
        .send()
        .await
        .unwrap();
    assert_angelcam_tokens(&parts(basic_ok).await, "read write");

    let check_401 = |got: &(u16, HeaderMap, Value)| {
        assert_oauth_error(got, 401, "invalid_client");
        assert!(
            got.1.contains_key("www-authenticate"),
            "401 without WWW-Authenticate"
        );
    };

    // Wrong secret in the body.
    let mut f = login.to_vec();
    f.extend([
        ("client_id", id.as_str()),
        ("client_secret", "wrong-secret"),
    ]);
    check_401(&token(&app, &f).await);
    // Wrong secret via Basic.
    let r = app
        .http
        .post(app.url("/oauth/token/"))
        .basic_auth(&id, Some("wrong-secret"))
        .form(&login)
        .send()
        .await
        .unwrap();
    let got = parts(r).await;
    check_401(&got);
    assert!(got.1["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    // Unknown client.
    let mut f = login.to_vec();
    f.push(("client_id", "no-such-client"));
    check_401(&token(&app, &f).await);
    // Confidential client without a secret.
    let mut f = login.to_vec();
    f.push(("client_id", id.as_str()));
    check_401(&token(&app, &f).await);
    // A public client presenting a secret.
    let mut f = login.to_vec();
    f.extend([
        ("client_id", public.as_str()),
        ("client_secret", "anything"),
    ]);
    check_401(&token(&app, &f).await);
    // No client at all.
    check_401(&token(&app, &login).await);
    // A Basic header that is not base64.
    let r = app
        .http
        .post(app.url("/oauth/token/"))
        .header("authorization", "Basic !!!not-base64!!!")
        .form(&login)
        .send()
        .await
        .unwrap();
    check_401(&parts(r).await);

    // Two authentication methods at once (RFC 6749 §2.3).
    let r = app
        .http
        .post(app.url("/oauth/token/"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "password"),
            ("username", EMAIL),
            ("password", PASSWORD),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(&parts(r).await, 400, "invalid_request");
}

// ---------------------------------------------------------------- malformed requests

#[tokio::test]
async fn parameters_given_twice_are_invalid_request() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    let tail = format!("&username={}&password={}", enc(EMAIL), enc(PASSWORD));
    // Twice in the body.
    let got = post_raw(
        &app,
        "/oauth/token/",
        format!("client_id={client}&grant_type=password&grant_type=password{tail}"),
    )
    .await;
    assert_oauth_error(&got, 400, "invalid_request");
    assert!(got.2["error_description"]
        .as_str()
        .unwrap()
        .contains("grant_type"));
    // Once in the query string and once in the body.
    let got = post_raw(
        &app,
        "/oauth/token/?grant_type=password",
        format!("client_id={client}&grant_type=password{tail}"),
    )
    .await;
    assert_oauth_error(&got, 400, "invalid_request");
    // The client id twice.
    let got = post_raw(
        &app,
        "/oauth/token/",
        format!("client_id={client}&client_id={client}&grant_type=password{tail}"),
    )
    .await;
    assert_oauth_error(&got, 400, "invalid_request");
    // Twice in a multipart body.
    let form = reqwest::multipart::Form::new()
        .text("grant_type", "password")
        .text("grant_type", "password")
        .text("client_id", client.clone())
        .text("username", EMAIL)
        .text("password", PASSWORD);
    let r = app
        .http
        .post(app.url("/oauth/token/"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_oauth_error(&parts(r).await, 400, "invalid_request");
}

#[tokio::test]
async fn grant_type_missing_unknown_or_not_allowed() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let client = app.public_client("angelcam").await;
    let login = |grant: Option<&'static str>| {
        let mut f = vec![
            ("client_id", client.clone()),
            ("username", EMAIL.to_string()),
            ("password", PASSWORD.to_string()),
        ];
        if let Some(g) = grant {
            f.push(("grant_type", g.to_string()));
        }
        f
    };
    let send = |form: Vec<(&'static str, String)>| {
        let req = app.http.post(app.url("/oauth/token/")).form(&form);
        async move { parts(req.send().await.unwrap()).await }
    };
    assert_oauth_error(&send(login(None)).await, 400, "invalid_request");
    // An empty value counts as absent (RFC 6749 §3.1).
    assert_oauth_error(&send(login(Some(""))).await, 400, "invalid_request");
    assert_oauth_error(
        &send(login(Some("magic_link"))).await,
        400,
        "unsupported_grant_type",
    );

    // A grant the client is not registered for.
    let mut input = client_input("code only", ClientKind::Public, "angelcam");
    input.grants = vec![GrantType::AuthorizationCode];
    let code_only = app.register(input).await.client.client_id;
    let got = token(
        &app,
        &[
            ("client_id", &code_only),
            ("grant_type", "password"),
            ("username", EMAIL),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_oauth_error(&got, 400, "unauthorized_client");
    let got = token(
        &app,
        &[
            ("client_id", &code_only),
            ("grant_type", "refresh_token"),
            ("refresh_token", "abcdefghijklmnopqrstuvwxyz0123"),
        ],
    )
    .await;
    assert_oauth_error(&got, 400, "unauthorized_client");
}

#[tokio::test]
async fn unsupported_content_type_is_invalid_request() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    let r = app
        .http
        .post(app.url("/oauth/token/"))
        .json(&serde_json::json!({
            "client_id": client,
            "grant_type": "password",
            "username": EMAIL,
            "password": PASSWORD,
        }))
        .send()
        .await
        .unwrap();
    assert_oauth_error(&parts(r).await, 400, "invalid_request");
}

#[tokio::test]
async fn wrong_method_on_token_endpoint_is_405_in_oauth_shape() {
    let app = spawn_app().await;
    for path in ["/oauth/token/", "/oauth/token"] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        let got = parts(r).await;
        assert_oauth_error(&got, 405, "invalid_request");
        assert_eq!(got.1["allow"], "POST");
    }
}

// ---------------------------------------------------------------- concurrency

async fn concurrent_refreshes(
    app: &TestApp,
    client: &str,
    rt: &str,
    n: usize,
) -> Vec<(u16, Value)> {
    let futs = (0..n).map(|_| {
        let req = app.http.post(app.url("/oauth/token/")).form(&[
            ("grant_type", "refresh_token"),
            ("client_id", client),
            ("refresh_token", rt),
        ]);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    });
    futures_util::future::join_all(futs).await
}

#[tokio::test]
async fn concurrent_refreshes_without_grace_exactly_one_wins() {
    let app = spawn_app_with(|c| c.refresh_grace_secs = 0).await;
    let client = setup(&app).await;
    let first = password_login(&app, &client, None).await;
    let rt = s(&first.2, "refresh_token");
    let answers = concurrent_refreshes(&app, &client, &rt, 50).await;
    let wins: Vec<&Value> = answers
        .iter()
        .filter(|(st, _)| *st == 200)
        .map(|(_, b)| b)
        .collect();
    for (st, body) in &answers {
        assert!(*st == 200 || *st == 400, "unexpected {st}: {body}");
        if *st == 400 {
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
    }
    assert_eq!(wins.len(), 1, "exactly one refresh may win: {answers:?}");
    assert_ne!(s(wins[0], "refresh_token"), rt);
}

#[tokio::test]
async fn concurrent_refreshes_with_grace_never_hand_out_two_pairs() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    let first = password_login(&app, &client, None).await;
    let rt = s(&first.2, "refresh_token");
    let answers = concurrent_refreshes(&app, &client, &rt, 50).await;
    let mut pair: Option<(String, String)> = None;
    for (st, body) in &answers {
        match st {
            200 => {
                let p = (s(body, "access_token"), s(body, "refresh_token"));
                assert_ne!(p.1, rt);
                if let Some(prev) = &pair {
                    assert_eq!(prev, &p, "two different pairs handed out");
                }
                pair = Some(p);
            }
            400 => assert_eq!(body["error"], "invalid_grant", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let (access, refresh_token) = pair.expect("at least one refresh succeeds");
    assert_eq!(me_status(&app, &access).await, 200);
    assert_angelcam_tokens(&refresh(&app, &client, &refresh_token).await, "read write");
}

// ---------------------------------------------------------------- expiry

#[tokio::test]
async fn access_token_expires_after_ten_hours() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    let got = password_login(&app, &client, None).await;
    let token = s(&got.2, "access_token");
    app.clock.advance(35_999);
    assert_eq!(me_status(&app, &token).await, 200);
    app.clock.advance(2);
    let r = app.get_bearer("/v1/me/", &token).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], INVALID_TOKEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], 401);
    assert_eq!(body["title"], "not_authenticated");
    // The refresh token still works and mints a live access token.
    let next = refresh(&app, &client, &s(&got.2, "refresh_token")).await;
    assert_angelcam_tokens(&next, "read write");
    assert_eq!(me_status(&app, &s(&next.2, "access_token")).await, 200);
}

#[tokio::test]
async fn refresh_token_expires_after_thirty_days() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    let a = password_login(&app, &client, None).await;
    let b = password_login(&app, &client, None).await;
    app.clock.advance(30 * 86_400 - 1);
    assert_angelcam_tokens(
        &refresh(&app, &client, &s(&a.2, "refresh_token")).await,
        "read write",
    );
    app.clock.advance(2);
    let got = refresh(&app, &client, &s(&b.2, "refresh_token")).await;
    assert_oauth_error(&got, 400, "invalid_grant");
}

#[tokio::test]
async fn another_clients_refresh_token_is_invalid_grant() {
    let app = spawn_app().await;
    let client_a = setup(&app).await;
    let client_b = app.public_client("angelcam").await;
    let got = password_login(&app, &client_a, None).await;
    let rt = s(&got.2, "refresh_token");
    let stolen = refresh(&app, &client_b, &rt).await;
    assert_oauth_error(&stolen, 400, "invalid_grant");
    // Unknown refresh tokens answer the same.
    let unknown = refresh(&app, &client_b, "abcdefghijklmnopqrstuvwxyz0123").await;
    assert_oauth_error(&unknown, 400, "invalid_grant");
    assert_eq!(stolen.2, unknown.2);
    // The attempt neither consumed nor revoked the owner's token.
    assert_eq!(me_status(&app, &s(&got.2, "access_token")).await, 200);
    assert_angelcam_tokens(&refresh(&app, &client_a, &rt).await, "read write");
}

// ---------------------------------------------------------------- limits and hygiene

#[tokio::test]
async fn oversized_bodies_are_413_in_each_surface_shape() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    let mut body = format!("client_id={client}&grant_type=password&pad=").into_bytes();
    body.resize(1024 * 1024, b'a');
    let r = app
        .http
        .post(app.url("/oauth/token/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let got = parts(r).await;
    assert_oauth_error(&got, 413, "invalid_request");

    let (_, token) = app.user_with_token("other@example.com").await;
    let mut json = br#"{"name": "big", "description": ""#.to_vec();
    json.resize(1024 * 1024, b'a');
    json.extend_from_slice(br#""}"#);
    let r = app
        .http
        .post(app.url("/v1/cameras/"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(json)
        .send()
        .await
        .unwrap();
    let (st, _, body) = parts(r).await;
    assert_eq!(st, 413);
    assert_eq!(body["status"], 413);
    assert_eq!(body["title"], "request_too_large");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(body.as_object().unwrap().len(), 3);
}

#[tokio::test]
async fn no_secret_is_echoed_in_error_answers() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let public = app.public_client("angelcam").await;
    let (id, secret) = app.confidential_client("angelcam").await;
    let bad_password = "Sup3r-Secret-Password-Do-Not-Echo";
    let bad_secret = "Wr0ng-Client-Secret-Do-Not-Echo";
    let fake_refresh = "Fake0Refresh0Token0Do0Not0Echo";

    let mut answers = Vec::new();
    // Wrong password.
    answers.push(
        app.token_form(&[
            ("client_id", &public),
            ("grant_type", "password"),
            ("username", EMAIL),
            ("password", bad_password),
        ])
        .await,
    );
    // Wrong client secret (body and Basic).
    answers.push(
        app.token_form(&[
            ("client_id", &id),
            ("client_secret", bad_secret),
            ("grant_type", "password"),
            ("username", EMAIL),
            ("password", PASSWORD),
        ])
        .await,
    );
    answers.push(
        app.http
            .post(app.url("/oauth/token/"))
            .basic_auth(&id, Some(bad_secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", fake_refresh),
            ])
            .send()
            .await
            .unwrap(),
    );
    // Unknown refresh token.
    answers.push(
        app.token_form(&[
            ("client_id", &public),
            ("grant_type", "refresh_token"),
            ("refresh_token", fake_refresh),
        ])
        .await,
    );
    // Secrets inside a request that is malformed for another reason.
    answers.push(
        app.http
            .post(app.url("/oauth/token/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "client_id={id}&client_secret={secret}&client_secret={secret}&grant_type=password&username=x&password={bad_password}"
            ))
            .send()
            .await
            .unwrap(),
    );
    answers.push(
        app.http
            .post(app.url(&format!(
                "/oauth/token/?grant_type=nope&password={bad_password}&client_secret={bad_secret}"
            )))
            .send()
            .await
            .unwrap(),
    );
    answers.push(
        app.http
            .post(app.url("/oauth/token/"))
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "password"),
                ("username", EMAIL),
                ("password", bad_password),
                ("client_secret", secret.as_str()),
            ])
            .send()
            .await
            .unwrap(),
    );

    for r in answers {
        let status = r.status().as_u16();
        assert!((400..500).contains(&status), "status {status}");
        let headers = format!("{:?}", r.headers());
        let text = r.text().await.unwrap();
        for secret_value in [
            bad_password,
            bad_secret,
            fake_refresh,
            secret.as_str(),
            PASSWORD,
        ] {
            assert!(
                !text.contains(secret_value) && !headers.contains(secret_value),
                "{secret_value} echoed in {status}: {headers} {text}"
            );
        }
    }
}

/// Sends `POST path` with a 1 MiB body in chunked transfer encoding (no Content-Length, so
/// only the handler's bounded read can refuse it) and returns (status, JSON body).
async fn chunked_post(app: &TestApp, path: &str, content_type: &str, auth: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://").to_string();
    let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n{auth}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let chunk = vec![b'a'; 16 * 1024];
        for _ in 0..64 {
            wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            wr.write_all(&chunk).await?;
            wr.write_all(b"\r\n").await?;
        }
        wr.write_all(b"0\r\n\r\n").await?;
        wr.flush().await
    });
    let mut raw = Vec::new();
    rd.read_to_end(&mut raw).await.unwrap();
    // The server may stop reading (and so fail our writes) once it has refused the body.
    let _ = writer.await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let lower = head.to_ascii_lowercase();
    assert!(
        !lower.contains("transfer-encoding: chunked"),
        "expected a sized answer: {head}"
    );
    (status, serde_json::from_str(body).unwrap())
}

#[tokio::test]
async fn oversized_chunked_bodies_are_413_too() {
    let app = spawn_app().await;
    let (st, body) = chunked_post(
        &app,
        "/oauth/token/",
        "application/x-www-form-urlencoded",
        "",
    )
    .await;
    assert_eq!(st, 413, "{body}");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(body.as_object().unwrap().len(), 2);

    let (_, token) = app.user_with_token("big@example.com").await;
    let (st, body) = chunked_post(
        &app,
        "/v1/cameras/",
        "application/json",
        &format!("Authorization: Bearer {token}\r\n"),
    )
    .await;
    assert_eq!(st, 413, "{body}");
    assert_eq!(body["status"], 413);
    assert_eq!(body["title"], "request_too_large");
    assert_eq!(body.as_object().unwrap().len(), 3);
}

#[tokio::test]
async fn disabled_user_cannot_refresh() {
    let app = spawn_app().await;
    let user = app.create_user(EMAIL, PASSWORD).await;
    let client = app.public_client("angelcam").await;
    let (cm_id, cm_secret) = app.confidential_client("cameramanager").await;
    let got = password_login(&app, &client, None).await;
    let rt = s(&got.2, "refresh_token");
    let cm = parts(
        app.http
            .post(app.url("/oauth/token"))
            .basic_auth(&cm_id, Some(&cm_secret))
            .form(&[
                ("grant_type", "password"),
                ("username", EMAIL),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(cm.0, 200);
    let cm_refresh = || {
        let req = app
            .http
            .post(app.url("/oauth/token"))
            .basic_auth(&cm_id, Some(&cm_secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", cm.2["refresh_token"].as_str().unwrap()),
            ]);
        async move { parts(req.send().await.unwrap()).await }
    };

    app.core.set_user_disabled(user.id, true).await.unwrap();
    // Neither a rotating nor a reusable refresh token mints tokens for a disabled account.
    assert_oauth_error(&refresh(&app, &client, &rt).await, 400, "invalid_grant");
    assert_oauth_error(&cm_refresh().await, 400, "invalid_grant");
    assert_oauth_error(
        &password_login(&app, &client, None).await,
        400,
        "invalid_grant",
    );

    // Re-enabled: the refused attempts consumed nothing.
    app.core.set_user_disabled(user.id, false).await.unwrap();
    assert_angelcam_tokens(&refresh(&app, &client, &rt).await, "read write");
    assert_eq!(cm_refresh().await.0, 200);
}

#[tokio::test]
async fn login_name_is_case_insensitive() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    let got = token(
        &app,
        &[
            ("client_id", &client),
            ("grant_type", "password"),
            ("username", " User@EXAMPLE.com "),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_angelcam_tokens(&got, "read write");
    let me: Value = app
        .get_bearer("/v1/me/", &s(&got.2, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], EMAIL);
    // The password is not.
    let got = token(
        &app,
        &[
            ("client_id", &client),
            ("grant_type", "password"),
            ("username", EMAIL),
            ("password", &PASSWORD.to_uppercase()),
        ],
    )
    .await;
    assert_oauth_error(&got, 400, "invalid_grant");
}

#[tokio::test]
async fn body_encodings_accepted_and_refused() {
    let app = spawn_app().await;
    let client = setup(&app).await;
    let body = format!(
        "client_id={client}&grant_type=password&username={}&password={}",
        enc(EMAIL),
        enc(PASSWORD)
    );
    // A charset parameter on the media type.
    let r = app
        .http
        .post(app.url("/oauth/token/"))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_angelcam_tokens(&parts(r).await, "read write");
    // Everything in the query string, no body (the CameraManager style).
    let r = app
        .http
        .post(app.url(&format!("/oauth/token/?{body}")))
        .send()
        .await
        .unwrap();
    assert_angelcam_tokens(&parts(r).await, "read write");
    // A file part in a multipart body.
    let form = reqwest::multipart::Form::new()
        .text("grant_type", "password")
        .text("client_id", client.clone())
        .text("username", EMAIL)
        .part(
            "password",
            reqwest::multipart::Part::text(PASSWORD).file_name("pw.txt"),
        );
    let r = app
        .http
        .post(app.url("/oauth/token/"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_oauth_error(&parts(r).await, 400, "invalid_request");
    // Too many parameters.
    let padded: String = (0..70).map(|i| format!("&p{i}=x")).collect();
    let got = post_raw(&app, "/oauth/token/", format!("{body}{padded}")).await;
    assert_oauth_error(&got, 400, "invalid_request");
    // A non-Basic Authorization header is not client authentication.
    let r = app
        .http
        .post(app.url("/oauth/token/"))
        .bearer_auth("abcdefghijklmnopqrstuvwxyz0123")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let got = parts(r).await;
    assert_oauth_error(&got, 401, "invalid_client");
    assert!(got.1.contains_key("www-authenticate"));
}
