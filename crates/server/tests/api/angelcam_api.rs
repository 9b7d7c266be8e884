#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Black-box tests of the Angelcam dialect (specs 000, 001): `/v1/me/`, `/v1/cameras/`,
//! resource-route authentication, scopes, pagination and error shapes.
use crate::common::*;

use camgate_core::model::CameraFields;
use camgate_core::scope::ScopeSet;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};

const INVALID_TOKEN: &str = r#"Bearer realm="api", error="invalid_token""#;

async fn parts(r: reqwest::Response) -> (u16, HeaderMap, Value) {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"));
    (status, headers, body)
}

/// Asserts an Angelcam error: exact status, exactly `{status, title, detail}`.
fn assert_angel_error(got: &(u16, HeaderMap, Value), status: u16, title: &str) {
    let (s, h, body) = got;
    assert_eq!(*s, status, "body: {body}");
    assert_eq!(body["status"], status, "body: {body}");
    assert_eq!(body["title"], title, "body: {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "detail missing: {body}"
    );
    assert_eq!(body.as_object().unwrap().len(), 3, "extra fields: {body}");
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
}

fn assert_unauthenticated(got: &(u16, HeaderMap, Value)) {
    assert_angel_error(got, 401, "not_authenticated");
    assert_eq!(got.1["www-authenticate"], INVALID_TOKEN);
}

fn sorted_keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort_unstable();
    k
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, HeaderMap, Value) {
    parts(app.get_bearer(path, token).await).await
}

async fn send_json(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: &Value,
) -> (u16, HeaderMap, Value) {
    parts(
        app.http
            .request(method, app.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn post_camera(app: &TestApp, token: &str, body: &Value) -> (u16, HeaderMap, Value) {
    send_json(app, reqwest::Method::POST, "/v1/cameras/", token, body).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.http
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// A password-grant token with the requested scope.
async fn token_with_scope(app: &TestApp, email: &str, scope: &str) -> String {
    app.create_user(email, PASSWORD).await;
    let client = app.public_client("angelcam").await;
    let r = app
        .token_form(&[
            ("client_id", client.as_str()),
            ("grant_type", "password"),
            ("username", email),
            ("password", PASSWORD),
            ("scope", scope),
        ])
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["scope"], scope);
    v["access_token"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------- /v1/me/

#[tokio::test]
async fn me_has_exactly_the_spec_001_shape() {
    let app = spawn_app().await;
    let (user, token) = app.user_with_token("me@example.com").await;
    let got = get(&app, "/v1/me/", &token).await;
    assert_eq!(got.0, 200);
    assert!(got.1["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(
        got.2,
        json!({
            "id": user.id,
            "email": "me@example.com",
            "first_name": "Test",
            "last_name": "User",
            "phone": "+100",
        })
    );
}

#[tokio::test]
async fn paths_without_trailing_slash_are_404() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("me@example.com").await;
    for path in ["/v1/me", "/v1/cameras", "/v1/nothing/"] {
        let got = get(&app, path, &token).await;
        assert_angel_error(&got, 404, "not_found");
        assert_eq!(got.2["detail"], "Not found.");
    }
}

#[tokio::test]
async fn missing_credentials_are_401_with_challenge() {
    let app = spawn_app().await;
    for path in ["/v1/me/", "/v1/cameras/", "/v1/cameras/1/"] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        let got = parts(r).await;
        assert_angel_error(&got, 401, "not_authenticated");
        assert!(
            got.1["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with(r#"Bearer realm="api""#),
            "{:?}",
            got.1
        );
    }
}

#[tokio::test]
async fn unknown_or_malformed_credentials_are_401() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("me@example.com").await;
    for value in [
        "Bearer abcdefghijklmnopqrstuvwxyz0123".to_string(),
        "Bearer".to_string(),
        "Bearer ".to_string(),
        "Bearer a b".to_string(),
        format!("Basic {token}"),
        format!("Token {token}"),
        token.clone(),
        format!("PersonalAccessToken {token}"),
        "JWT not.a.jwt".to_string(),
    ]
    .into_iter()
    .map(String::into_bytes)
    // Not valid UTF-8 (obs-text in a header value).
    .chain([b"Bearer \xffgarbage".to_vec()])
    {
        let r = app
            .http
            .get(app.url("/v1/me/"))
            .header("authorization", value.as_slice())
            .send()
            .await
            .unwrap();
        let got = parts(r).await;
        assert_unauthenticated(&got);
    }
}

#[tokio::test]
async fn scheme_names_are_case_insensitive() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("me@example.com").await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let r = app
            .http
            .get(app.url("/v1/me/"))
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }
}

#[tokio::test]
async fn tokens_in_the_query_string_are_refused() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("me@example.com").await;
    // Without a header.
    let r = app
        .http
        .get(app.url(&format!("/v1/me/?access_token={token}")))
        .send()
        .await
        .unwrap();
    let got = parts(r).await;
    assert_angel_error(&got, 400, "invalid");
    assert!(!got.2.to_string().contains(&token));
    // Even next to a valid header.
    let got = get(&app, &format!("/v1/me/?access_token={token}"), &token).await;
    assert_angel_error(&got, 400, "invalid");
    let got = get(
        &app,
        &format!("/v1/cameras/?limit=5&access_token={token}"),
        &token,
    )
    .await;
    assert_angel_error(&got, 400, "invalid");
}

#[tokio::test]
async fn wrong_method_is_405() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("me@example.com").await;
    for (method, path, allow) in [
        (reqwest::Method::POST, "/v1/me/", "GET,HEAD,DELETE"),
        (reqwest::Method::PUT, "/v1/me/", "GET,HEAD,DELETE"),
        (reqwest::Method::DELETE, "/v1/cameras/", "GET,HEAD,POST"),
        (
            reqwest::Method::POST,
            "/v1/cameras/1/",
            "GET,HEAD,PUT,DELETE",
        ),
    ] {
        let r = app
            .http
            .request(method.clone(), app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let got = parts(r).await;
        assert_angel_error(&got, 405, "method_not_allowed");
        // RFC 9110 §15.5.6: a 405 names the allowed methods.
        assert_eq!(got.1["allow"], allow, "{path}");
        assert_eq!(
            got.2["detail"],
            format!("Method \"{method}\" not allowed."),
            "{path}"
        );
    }
}

#[tokio::test]
async fn delete_me_removes_the_account() {
    let app = spawn_app().await;
    let (user, token) = app.user_with_token("gone@example.com").await;
    let client = app.public_client("angelcam").await;
    let (_, other) = app.user_with_token("stay@example.com").await;
    app.core
        .create_camera(user.id, CameraFields::named("mine"))
        .await
        .unwrap();
    let (_, pat) = app
        .core
        .create_pat(user.id, "p", ScopeSet::READ_WRITE, None)
        .await
        .unwrap();
    let r = delete(&app, "/v1/me/", &token).await;
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    assert_unauthenticated(&get(&app, "/v1/me/", &token).await);
    // Every credential of the account died with it.
    let r = app
        .http
        .get(app.url("/v1/me/"))
        .header("authorization", format!("PersonalAccessToken {pat}"))
        .send()
        .await
        .unwrap();
    assert_unauthenticated(&parts(r).await);
    // The account no longer logs in.
    let r = app
        .token_form(&[
            ("client_id", client.as_str()),
            ("grant_type", "password"),
            ("username", "gone@example.com"),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_grant");
    // Another user is untouched.
    assert_eq!(get(&app, "/v1/me/", &other).await.0, 200);
}

// ---------------------------------------------------------------- personal access tokens

#[tokio::test]
async fn personal_access_token_scheme() {
    let app = spawn_app().await;
    let user = app.create_user("pat@example.com", PASSWORD).await;
    let (_, pat) = app
        .core
        .create_pat(user.id, "n", ScopeSet::READ_WRITE, None)
        .await
        .unwrap();
    assert!(pat.starts_with("cgpat_"));
    for scheme in ["PersonalAccessToken", "personalaccesstoken"] {
        let r = app
            .http
            .get(app.url("/v1/me/"))
            .header("authorization", format!("{scheme} {pat}"))
            .send()
            .await
            .unwrap();
        let got = parts(r).await;
        assert_eq!(got.0, 200, "{scheme}");
        assert_eq!(got.2["email"], "pat@example.com");
        assert_eq!(got.2["id"], user.id);
    }
    // A PAT is not a Bearer access token.
    assert_unauthenticated(&get(&app, "/v1/me/", &pat).await);
    // No expiry: still valid a year later.
    app.clock.advance(365 * 86_400);
    let r = app
        .http
        .get(app.url("/v1/me/"))
        .header("authorization", format!("PersonalAccessToken {pat}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn personal_access_token_with_expiry_expires() {
    let app = spawn_app().await;
    let user = app.create_user("pat@example.com", PASSWORD).await;
    let (_, pat) = app
        .core
        .create_pat(user.id, "n", ScopeSet::READ_WRITE, Some(1))
        .await
        .unwrap();
    let call = || {
        app.http
            .get(app.url("/v1/me/"))
            .header("authorization", format!("PersonalAccessToken {pat}"))
            .send()
    };
    app.clock.advance(86_399);
    assert_eq!(call().await.unwrap().status(), 200);
    app.clock.advance(2);
    assert_unauthenticated(&parts(call().await.unwrap()).await);
}

#[tokio::test]
async fn read_only_personal_access_token_cannot_write() {
    let app = spawn_app().await;
    let user = app.create_user("pat@example.com", PASSWORD).await;
    let (_, pat) = app
        .core
        .create_pat(user.id, "ro", ScopeSet::READ, None)
        .await
        .unwrap();
    let auth = format!("PersonalAccessToken {pat}");
    let r = app
        .http
        .get(app.url("/v1/cameras/"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .http
        .post(app.url("/v1/cameras/"))
        .header("authorization", &auth)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_angel_error(&parts(r).await, 403, "permission_denied");
}

// ---------------------------------------------------------------- scopes

#[tokio::test]
async fn read_scope_cannot_write() {
    let app = spawn_app().await;
    let token = token_with_scope(&app, "ro@example.com", "read").await;
    let got = get(&app, "/v1/cameras/", &token).await;
    assert_eq!(got.0, 200);
    assert_eq!(got.2["count"], 0);
    assert_eq!(get(&app, "/v1/me/", &token).await.0, 200);

    let got = post_camera(&app, &token, &json!({"name": "x"})).await;
    assert_angel_error(&got, 403, "permission_denied");
    assert_eq!(
        got.1["www-authenticate"],
        r#"Bearer realm="api", error="insufficient_scope", scope="write""#
    );
    // Nothing was created.
    assert_eq!(get(&app, "/v1/cameras/", &token).await.2["count"], 0);
    assert_angel_error(
        &parts(delete(&app, "/v1/me/", &token).await).await,
        403,
        "permission_denied",
    );
    // The account survived the refused delete.
    assert_eq!(get(&app, "/v1/me/", &token).await.0, 200);
}

#[tokio::test]
async fn write_scope_implies_read() {
    let app = spawn_app().await;
    let token = token_with_scope(&app, "wo@example.com", "write").await;
    assert_eq!(get(&app, "/v1/cameras/", &token).await.0, 200);
    assert_eq!(
        post_camera(&app, &token, &json!({"name": "x"})).await.0,
        201
    );
}

// ---------------------------------------------------------------- cameras

fn full_camera() -> Value {
    json!({
        "name": "Front door",
        "type": "h265",
        "status": "online",
        "streams": [{"format": "hls", "url": "https://cam.example.com/live.m3u8"}],
        "snapshot": {"url": "https://cam.example.com/snap.jpg"},
        "description": "Porch",
        "tags": ["home", "outdoor"],
        "is_public": true,
    })
}

const CAMERA_KEYS: [&str; 11] = [
    "created_at",
    "description",
    "id",
    "is_public",
    "name",
    "snapshot",
    "status",
    "streams",
    "tags",
    "type",
    "updated_at",
];

#[tokio::test]
async fn create_camera_answers_201_with_the_camera() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("cam@example.com").await;
    let got = post_camera(&app, &token, &full_camera()).await;
    assert_eq!(got.0, 201, "{}", got.2);
    assert!(got.1["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let c = &got.2;
    assert_eq!(sorted_keys(c), CAMERA_KEYS);
    assert!(c["id"].as_i64().unwrap() > 0);
    assert_eq!(c["name"], "Front door");
    assert_eq!(c["type"], "h265");
    assert_eq!(c["status"], "online");
    // Media URLs come signed for the caller (a `token` parameter added last).
    assert_eq!(
        unsigned(&c["streams"]),
        json!([{"format": "hls", "url": "https://cam.example.com/live.m3u8"}])
    );
    assert!(c["streams"][0]["url"]
        .as_str()
        .unwrap()
        .starts_with("https://cam.example.com/live.m3u8?token="));
    assert_eq!(sorted_keys(&c["snapshot"]), ["created_at", "url"]);
    assert_eq!(
        unsigned(&c["snapshot"])["url"],
        "https://cam.example.com/snap.jpg"
    );
    assert_eq!(c["description"], "Porch");
    assert_eq!(c["tags"], json!(["home", "outdoor"]));
    assert_eq!(c["is_public"], true);
    assert!(c["created_at"].as_str().unwrap().ends_with('Z'));

    // GET by id answers the same object.
    let id = c["id"].as_i64().unwrap();
    let fetched = get(&app, &format!("/v1/cameras/{id}/"), &token).await;
    assert_eq!(fetched.0, 200);
    assert_eq!(&fetched.2, c);

    // Defaults of a minimal camera.
    let got = post_camera(&app, &token, &json!({"name": "  Garage  "})).await;
    assert_eq!(got.0, 201, "{}", got.2);
    let c = &got.2;
    assert_eq!(c["name"], "Garage");
    assert_eq!(c["type"], "h264");
    assert_eq!(c["status"], "unknown");
    assert_eq!(c["streams"], json!([]));
    assert_eq!(c["snapshot"], Value::Null);
    assert_eq!(c["description"], Value::Null);
    assert_eq!(c["tags"], json!([]));
    assert_eq!(c["is_public"], false);
}

#[tokio::test]
async fn create_camera_validation() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("cam@example.com").await;
    let invalid = [
        json!({"type": "h264"}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "x".repeat(256)}),
        json!({"name": "x", "type": "vp9"}),
        json!({"name": "x", "status": "broken"}),
        json!({"name": "x", "streams": [{"format": "hls", "url": "javascript:alert(1)"}]}),
        json!({"name": "x", "streams": [{"format": "", "url": "https://a.example/s"}]}),
        json!({"name": "x", "snapshot": {"url": "not a url"}}),
        json!({"name": 5}),
        json!([1, 2]),
    ];
    for body in &invalid {
        let got = post_camera(&app, &token, body).await;
        assert_angel_error(&got, 400, "invalid");
    }
    let got = post_camera(&app, &token, &json!({"type": "h264"})).await;
    assert!(got.2["detail"].as_str().unwrap().contains("name"));
    let got = post_camera(&app, &token, &json!({"name": "x", "type": "vp9"})).await;
    assert!(got.2["detail"].as_str().unwrap().contains("type"));

    // Not JSON at all.
    let r = app
        .http
        .post(app.url("/v1/cameras/"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_angel_error(&parts(r).await, 400, "invalid");
    // A charset parameter is fine.
    let r = app
        .http
        .post(app.url("/v1/cameras/"))
        .bearer_auth(&token)
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"name": "charset"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    assert_eq!(
        delete(&app, &format!("/v1/cameras/{id}/"), &token)
            .await
            .status(),
        204
    );
    // Not declared as JSON.
    let r = app
        .http
        .post(app.url("/v1/cameras/"))
        .bearer_auth(&token)
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_angel_error(&parts(r).await, 415, "unsupported_media_type");

    // None of the refused bodies created anything.
    assert_eq!(get(&app, "/v1/cameras/", &token).await.2["count"], 0);
}

#[tokio::test]
async fn update_camera_is_partial() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("cam@example.com").await;
    let created = post_camera(&app, &token, &full_camera()).await.2;
    let id = created["id"].as_i64().unwrap();
    let path = format!("/v1/cameras/{id}/");

    let got = send_json(
        &app,
        reqwest::Method::PUT,
        &path,
        &token,
        &json!({"name": "Back door"}),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.2);
    let mut expected = created.clone();
    expected["name"] = json!("Back door");
    expected["updated_at"] = got.2["updated_at"].clone();
    assert_eq!(got.2, expected);
    assert_eq!(get(&app, &path, &token).await.2, expected);

    // Several fields; an explicit null clears a nullable field.
    let got = send_json(
        &app,
        reqwest::Method::PUT,
        &path,
        &token,
        &json!({"status": "offline", "type": "mjpeg", "description": null, "snapshot": null}),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(got.2["name"], "Back door");
    assert_eq!(got.2["status"], "offline");
    assert_eq!(got.2["type"], "mjpeg");
    assert_eq!(got.2["description"], Value::Null);
    assert_eq!(got.2["snapshot"], Value::Null);
    assert_eq!(got.2["streams"], created["streams"]);
    assert_eq!(got.2["tags"], created["tags"]);
    assert_eq!(got.2["created_at"], created["created_at"]);
    let after = got.2;

    // An invalid update changes nothing.
    for body in [
        json!({"type": "vp9"}),
        json!({"name": ""}),
        json!({"status": "x"}),
    ] {
        let got = send_json(&app, reqwest::Method::PUT, &path, &token, &body).await;
        assert_angel_error(&got, 400, "invalid");
    }
    assert_eq!(get(&app, &path, &token).await.2, after);

    // Unknown camera.
    let got = send_json(
        &app,
        reqwest::Method::PUT,
        "/v1/cameras/999999/",
        &token,
        &json!({"name": "x"}),
    )
    .await;
    assert_angel_error(&got, 404, "not_found");
}

#[tokio::test]
async fn delete_camera_is_204_then_404() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("cam@example.com").await;
    let id = post_camera(&app, &token, &json!({"name": "x"})).await.2["id"]
        .as_i64()
        .unwrap();
    let path = format!("/v1/cameras/{id}/");
    let r = delete(&app, &path, &token).await;
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    assert_angel_error(&get(&app, &path, &token).await, 404, "not_found");
    assert_angel_error(
        &parts(delete(&app, &path, &token).await).await,
        404,
        "not_found",
    );
    assert_eq!(get(&app, "/v1/cameras/", &token).await.2["count"], 0);
}

#[tokio::test]
async fn another_users_camera_is_not_found_and_stays_intact() {
    let app = spawn_app().await;
    let (_, owner) = app.user_with_token("owner@example.com").await;
    let (_, other) = app.user_with_token("other@example.com").await;
    let created = post_camera(&app, &owner, &full_camera()).await.2;
    let path = format!("/v1/cameras/{}/", created["id"]);

    assert_angel_error(&get(&app, &path, &other).await, 404, "not_found");
    let got = send_json(
        &app,
        reqwest::Method::PUT,
        &path,
        &other,
        &json!({"name": "pwned"}),
    )
    .await;
    assert_angel_error(&got, 404, "not_found");
    assert_angel_error(
        &parts(delete(&app, &path, &other).await).await,
        404,
        "not_found",
    );
    let listed = get(&app, "/v1/cameras/", &other).await.2;
    assert_eq!(listed["count"], 0);
    assert_eq!(listed["results"], json!([]));

    let still = get(&app, &path, &owner).await;
    assert_eq!(still.0, 200);
    assert_eq!(still.2, created);
}

#[tokio::test]
async fn non_numeric_or_unknown_camera_ids_are_404() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("cam@example.com").await;
    for path in [
        "/v1/cameras/abc/",
        "/v1/cameras/1.5/",
        "/v1/cameras/-1/",
        "/v1/cameras/99999999999999999999999/",
        "/v1/cameras/424242/",
    ] {
        assert_angel_error(&get(&app, path, &token).await, 404, "not_found");
        assert_angel_error(
            &parts(delete(&app, path, &token).await).await,
            404,
            "not_found",
        );
    }
}

// ---------------------------------------------------------------- pagination

async fn seed_cameras(app: &TestApp, owner: i64, n: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let c = app
            .core
            .create_camera(owner, CameraFields::named(format!("cam {i}")))
            .await
            .unwrap();
        ids.push(c.id);
    }
    ids
}

fn result_ids(page: &Value) -> Vec<i64> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn limit_offset_pagination() {
    let app = spawn_app().await;
    let (user, token) = app.user_with_token("pages@example.com").await;
    let ids = seed_cameras(&app, user.id, 7).await;
    let base = app.url("/v1/cameras/");

    let got = get(&app, "/v1/cameras/?limit=3", &token).await;
    assert_eq!(got.0, 200);
    let p = &got.2;
    assert_eq!(sorted_keys(p), ["count", "next", "previous", "results"]);
    assert_eq!(p["count"], 7);
    assert_eq!(result_ids(p), ids[0..3]);
    // `next` carries the last id of the page too: following it is a keyset read.
    assert_eq!(
        p["next"],
        format!("{base}?limit=3&offset=3&after={}", ids[2])
    );
    assert_eq!(p["previous"], Value::Null);
    assert_eq!(sorted_keys(&p["results"][0]), CAMERA_KEYS);
    let keyset = get(
        &app,
        &format!("/v1/cameras/?limit=3&offset=3&after={}", ids[2]),
        &token,
    )
    .await
    .2;
    assert_eq!(result_ids(&keyset), ids[3..6]);
    assert_eq!(keyset["count"], 7);
    // A bad `after` is a 400 naming it.
    let bad = get(&app, "/v1/cameras/?after=x", &token).await;
    assert_eq!(bad.0, 400, "{}", bad.2);
    assert!(bad.2.to_string().contains("after"), "{}", bad.2);

    let p = get(&app, "/v1/cameras/?limit=3&offset=3", &token).await.2;
    assert_eq!(p["count"], 7);
    assert_eq!(result_ids(&p), ids[3..6]);
    assert_eq!(
        p["next"],
        format!("{base}?limit=3&offset=6&after={}", ids[5])
    );
    assert_eq!(p["previous"], format!("{base}?limit=3"));

    let p = get(&app, "/v1/cameras/?limit=3&offset=6", &token).await.2;
    assert_eq!(result_ids(&p), ids[6..7]);
    assert_eq!(p["next"], Value::Null);
    assert_eq!(p["previous"], format!("{base}?limit=3&offset=3"));

    // Following `next` links walks every camera once.
    let mut url = Some(format!("{base}?limit=3"));
    let mut walked = Vec::new();
    while let Some(u) = url {
        let r = app.http.get(&u).bearer_auth(&token).send().await.unwrap();
        let p: Value = r.json().await.unwrap();
        walked.extend(result_ids(&p));
        url = p["next"].as_str().map(str::to_string);
    }
    assert_eq!(walked, ids);

    // Past the end: an empty page.
    let p = get(&app, "/v1/cameras/?limit=3&offset=50", &token).await.2;
    assert_eq!(p["count"], 7);
    assert_eq!(p["results"], json!([]));
    assert_eq!(p["next"], Value::Null);

    // A huge offset is just past the end, not an error.
    let p = get(
        &app,
        "/v1/cameras/?limit=3&offset=9223372036854775807",
        &token,
    )
    .await;
    assert_eq!(p.0, 200, "{}", p.2);
    assert_eq!(p.2["results"], json!([]));
    assert_eq!(p.2["next"], Value::Null);
    assert_eq!(
        p.2["previous"],
        format!("{base}?limit=3&offset=9223372036854775804")
    );

    // Spec 000's request.
    let p = get(&app, "/v1/cameras/?limit=5", &token).await.2;
    assert_eq!(result_ids(&p), ids[0..5]);
    assert_eq!(
        p["next"],
        format!("{base}?limit=5&offset=5&after={}", ids[4])
    );
}

#[tokio::test]
async fn default_and_maximum_page_size_is_100() {
    let app = spawn_app().await;
    let (user, token) = app.user_with_token("many@example.com").await;
    let ids = seed_cameras(&app, user.id, 101).await;
    let base = app.url("/v1/cameras/");
    for path in [
        "/v1/cameras/",
        "/v1/cameras/?limit=500",
        "/v1/cameras/?limit=100",
    ] {
        let p = get(&app, path, &token).await.2;
        assert_eq!(p["count"], 101, "{path}");
        assert_eq!(result_ids(&p), ids[0..100], "{path}");
        assert_eq!(
            p["next"],
            format!("{base}?limit=100&offset=100&after={}", ids[99]),
            "{path}"
        );
        assert_eq!(p["previous"], Value::Null, "{path}");
    }
    let p = get(&app, "/v1/cameras/?offset=100", &token).await.2;
    assert_eq!(result_ids(&p), ids[100..]);
    assert_eq!(p["next"], Value::Null);
    assert_eq!(p["previous"], format!("{base}?limit=100"));
}

#[tokio::test]
async fn invalid_pagination_parameters_are_400() {
    let app = spawn_app().await;
    let (user, token) = app.user_with_token("pages@example.com").await;
    seed_cameras(&app, user.id, 2).await;
    for (q, param) in [
        ("limit=0", "limit"),
        ("limit=-3", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("limit=", "limit"),
        ("offset=-1", "offset"),
        ("offset=abc", "offset"),
        ("limit=2&offset=x", "offset"),
    ] {
        let got = get(&app, &format!("/v1/cameras/?{q}"), &token).await;
        assert_angel_error(&got, 400, "invalid");
        assert!(
            got.2["detail"].as_str().unwrap().contains(param),
            "{q}: {}",
            got.2
        );
    }
}

// ---------------------------------------------------------------- headers

#[tokio::test]
async fn security_headers_on_every_answer() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("h@example.com").await;
    let answers = vec![
        app.get_bearer("/v1/me/", &token).await,
        app.get_bearer("/v1/cameras/", &token).await,
        app.http.get(app.url("/v1/me/")).send().await.unwrap(),
        app.get_bearer("/v1/me", &token).await,
        app.http.post(app.url("/v1/me/")).send().await.unwrap(),
        app.http.get(app.url("/health/alive")).send().await.unwrap(),
        app.token_form(&[("grant_type", "password")]).await,
    ];
    let expected = [200, 200, 401, 404, 405, 200, 401];
    for (r, want) in answers.into_iter().zip(expected) {
        assert_eq!(r.status(), want, "{}", r.url());
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{}", r.url());
        assert_eq!(h["x-frame-options"], "DENY", "{}", r.url());
        assert_eq!(h["referrer-policy"], "no-referrer", "{}", r.url());
        assert_eq!(h["cache-control"], "no-store", "{}", r.url());
    }
}
