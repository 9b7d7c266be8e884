//! The adversarial black-box suite, along RFC 9700 and OWASP ASVS, for what
//! exists today: the token, revocation and introspection endpoints and the resource APIs.
//! The authorization-code items (open redirects at /oauth/authorize, code replay, PKCE, CSRF
//! on login/consent, session fixation) wait for the authorization-code flow; SECURITY.md lists
//! them as pending.
//!
//! Every answer to hostile input must be a well-formed 4xx in the surface's shape — never a
//! 500, never a hang — and must leave the data intact.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common::*;

use std::time::{Duration, Instant};

use base64::Engine;
use camgate_core::model::ClientKind;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const EMAIL: &str = "victim@example.com";

async fn parts(r: reqwest::Response) -> (u16, HeaderMap, Value) {
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

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn assert_oauth(got: &(u16, HeaderMap, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{}", got.2);
    assert_eq!(got.2["error"], code, "{}", got.2);
    assert_eq!(got.1["cache-control"], "no-store");
}

/// A 4xx with a JSON body: what any hostile input must produce.
fn assert_client_error(got: &(u16, HeaderMap, Value), what: &str) {
    assert!(
        (400..500).contains(&got.0),
        "{what}: status {} body {}",
        got.0,
        got.2
    );
}

/// Sends raw bytes and returns the status line's code and the whole answer.
async fn raw(app: &TestApp, bytes: &[u8]) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

// ------------------------------------------------------------ RFC 9700 §4.3.2 / RFC 6750 §2.3

#[tokio::test]
async fn tokens_in_the_query_string_are_refused_on_every_resource_route() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token(EMAIL).await;
    for path in [
        "/v1/me/",
        "/v1/cameras/",
        "/v1/cameras/1/",
        "/rest/v2.0/users/self",
        "/rest/v2.0/cameras",
    ] {
        for param in ["access_token", "token"] {
            let url = app.url(&format!("{path}?{param}={token}"));
            // Alone: never authenticates.
            let got = parts(app.http.get(&url).send().await.unwrap()).await;
            assert_eq!(got.0, 400, "{path}?{param}: {}", got.2);
            assert!(!got.2.to_string().contains(&token), "token echoed");
            // Next to a valid header: still refused (the URL leaks into logs and Referer).
            let got = parts(app.http.get(&url).bearer_auth(&token).send().await.unwrap()).await;
            assert_eq!(got.0, 400, "{path}?{param} + header: {}", got.2);
        }
    }
    // A token in a resource request's *body* is not a credential either (RFC 6750 §2.2 is
    // optional; camgate does not implement it).
    let got = parts(
        app.http
            .post(app.url("/v1/cameras/"))
            .form(&[("access_token", token.as_str()), ("name", "x")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.0, 401, "{}", got.2);
}

// ------------------------------------------------------------ RFC 6749 §6, RFC 9700 §4.14

#[tokio::test]
async fn client_a_refresh_token_is_useless_to_client_b_and_a_keeps_it() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let (a_id, a_secret) = app.confidential_client("cameramanager").await;
    let (b_id, b_secret) = app.confidential_client("cameramanager").await;
    let login = parts(
        app.http
            .post(app.url("/oauth/token"))
            .basic_auth(&a_id, Some(&a_secret))
            .query(&[
                ("grant_type", "password"),
                ("username", EMAIL),
                ("password", PASSWORD),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(login.0, 200, "{}", login.2);
    let rt = login.2["refresh_token"].as_str().unwrap().to_string();
    let at = login.2["access_token"].as_str().unwrap().to_string();
    // B presents A's refresh token with B's own valid credentials.
    let got = parts(
        app.http
            .post(app.url("/oauth/token"))
            .basic_auth(&b_id, Some(&b_secret))
            .query(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_oauth(&got, 400, "invalid_grant");
    // B claims to be A in the body while authenticating as B: two identities, refused.
    let got = parts(
        app.http
            .post(app.url("/oauth/token"))
            .basic_auth(&b_id, Some(&b_secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
                ("client_id", a_id.as_str()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_oauth(&got, 400, "invalid_request");
    // B cannot revoke or introspect A's tokens.
    let r = app
        .http
        .post(app.url("/oauth/revoke"))
        .basic_auth(&b_id, Some(&b_secret))
        .form(&[("token", rt.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "RFC 7009 §2.2: same answer either way");
    // Introspection is open to every confidential client by design (RFC 7662: the caller is
    // a resource server); it reveals metadata, never a token, and changes nothing.
    let intro = parts(
        app.http
            .post(app.url("/oauth/introspect"))
            .basic_auth(&b_id, Some(&b_secret))
            .form(&[("token", at.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(intro.0, 200, "{}", intro.2);
    assert!(!intro.2.to_string().contains(&rt) && !intro.2.to_string().contains(&at));
    // A's tokens are untouched by all of the above.
    let got = parts(
        app.http
            .post(app.url("/oauth/token"))
            .basic_auth(&a_id, Some(&a_secret))
            .query(&[("grant_type", "refresh_token"), ("refresh_token", &rt)])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(app.get_bearer("/v1/me/", &at).await.status(), 200);
}

// ------------------------------------------------------------ ASVS V14.4 (clickjacking etc.)

#[tokio::test]
async fn anti_framing_headers_on_every_kind_of_answer() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token(EMAIL).await;
    let answers = vec![
        app.get_bearer("/v1/me/", &token).await,
        app.get_bearer("/rest/v2.0/users/self", &token).await,
        app.http
            .get(app.url("/rest/v2.0/cameras"))
            .send()
            .await
            .unwrap(),
        app.http.get(app.url("/nowhere")).send().await.unwrap(),
        app.http
            .get(app.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap(),
        app.http.get(app.url("/oauth/token")).send().await.unwrap(),
        app.token_form(&[("grant_type", "nope")]).await,
        app.http
            .post(app.url("/oauth/token/"))
            .body(vec![b'a'; 100 * 1024])
            .send()
            .await
            .unwrap(),
    ];
    for r in answers {
        let h = r.headers();
        let url = r.url().to_string();
        assert_eq!(h["x-frame-options"], "DENY", "{url}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{url}: {csp}");
        assert!(csp.contains("default-src 'none'"), "{url}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(h["cross-origin-opener-policy"], "same-origin", "{url}");
        assert_eq!(h["cache-control"], "no-store", "{url}");
    }
}

// ------------------------------------------------------------ ASVS V2.2 / V3 user enumeration

#[tokio::test]
async fn unknown_user_wrong_password_and_disabled_user_look_the_same() {
    let _quiet = quiet().await;
    let app = spawn_app().await;
    let user = app.create_user(EMAIL, PASSWORD).await;
    app.create_user("disabled@example.com", PASSWORD).await;
    let d = app
        .core
        .user_by_email("disabled@example.com")
        .await
        .unwrap()
        .unwrap();
    app.core.set_user_disabled(d.id, true).await.unwrap();
    let _ = user;
    let (id, secret) = app.confidential_client("cameramanager").await;
    let attempt = |username: &'static str, password: &'static str| {
        let (http, url, id, secret) = (
            app.http.clone(),
            app.url("/oauth/token"),
            id.clone(),
            secret.clone(),
        );
        async move {
            let t = Instant::now();
            let r = http
                .post(url)
                .basic_auth(id, Some(secret))
                .query(&[
                    ("grant_type", "password"),
                    ("username", username),
                    ("password", password),
                ])
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            let text = r.text().await.unwrap();
            (st, text, t.elapsed())
        }
    };
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    let mut answers = Vec::new();
    for _ in 0..5 {
        for (i, (u, p)) in [
            (EMAIL, "wrong password"),
            ("nobody@example.com", "wrong password"),
            ("disabled@example.com", PASSWORD),
        ]
        .into_iter()
        .enumerate()
        {
            let (st, text, took) = attempt(u, p).await;
            times[i].push(took);
            answers.push((st, text));
        }
    }
    let first = answers[0].clone();
    assert_eq!(first.0, 400);
    assert!(first.1.contains("invalid_grant"), "{}", first.1);
    for a in &answers {
        assert_eq!(a, &first, "answers differ: an account's existence leaks");
    }
    // An unknown user costs a password hash too (a dummy one): no fast path to detect.
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let known = median(&mut times[0]);
    let unknown = median(&mut times[1]);
    assert!(
        unknown * 3 >= known,
        "unknown user answered much faster ({unknown:?} vs {known:?})"
    );
}

// ------------------------------------------------------------ ASVS V5.3.4 (injection)

const SQLISH: &[&str] = &[
    "' OR '1'='1",
    "' OR 1=1 --",
    "\"; DROP TABLE users; --",
    "1; DELETE FROM access_tokens",
    "') UNION SELECT hash, hash FROM refresh_tokens --",
    "x' AND (SELECT pg_sleep(3)) IS NULL --",
    "%27%20OR%201%3D1",
    "\\'; --",
    "admin'/*",
    "$1",
    "?",
    "nul\0byte",
];

#[tokio::test]
async fn sql_looking_input_in_every_field_is_just_data() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let public = app.public_client("angelcam").await;
    let (cm_id, cm_secret) = app.confidential_client("cameramanager").await;
    let t = app.password_token(&public, EMAIL, PASSWORD).await;
    let token = t["access_token"].as_str().unwrap().to_string();
    let started = Instant::now();
    for evil in SQLISH {
        // Every token-endpoint field.
        for field in [
            "username",
            "password",
            "client_id",
            "scope",
            "grant_type",
            "refresh_token",
        ] {
            let mut form = vec![
                ("client_id", public.as_str()),
                ("grant_type", "password"),
                ("username", EMAIL),
                ("password", "wrong"),
            ];
            form.retain(|(k, _)| *k != field);
            form.push((field, evil));
            if field == "refresh_token" {
                form[1] = ("grant_type", "refresh_token");
            }
            let got = parts(app.token_form(&form).await).await;
            assert_client_error(&got, &format!("{field}={evil}"));
        }
        // Basic credentials.
        let r = app
            .http
            .post(app.url("/oauth/token"))
            .basic_auth(evil, Some(evil))
            .query(&[
                ("grant_type", "password"),
                ("username", EMAIL),
                ("password", evil),
            ])
            .send()
            .await
            .unwrap();
        assert_oauth(&parts(r).await, 401, "invalid_client");
        // Revocation and introspection of an "evil" token.
        for path in ["/oauth/revoke", "/oauth/introspect"] {
            let r = app
                .http
                .post(app.url(path))
                .basic_auth(&cm_id, Some(&cm_secret))
                .form(&[("token", *evil), ("token_type_hint", *evil)])
                .send()
                .await
                .unwrap();
            let got = parts(r).await;
            assert!(
                got.0 == 200 || got.0 == 400 || got.0 == 403,
                "{path}: {}",
                got.2
            );
        }
        // Credentials on resource routes (the header value cannot hold every byte).
        let compact: String = evil
            .chars()
            .filter(|c| *c != ' ' && !c.is_control())
            .collect();
        for scheme in ["Bearer", "PersonalAccessToken", "JWT"] {
            let r = app
                .http
                .get(app.url("/v1/me/"))
                .header("authorization", format!("{scheme} {compact}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{scheme} {compact}");
        }
        // Query parameters and path segments.
        let q: String = form_urlencoded::byte_serialize(evil.as_bytes()).collect();
        for path in [
            format!("/v1/cameras/?limit={q}"),
            format!("/v1/cameras/?offset={q}"),
            format!("/rest/v2.0/cameras?limit={q}"),
            format!("/v1/cameras/{q}/"),
        ] {
            let got = parts(app.get_bearer(&path, &token).await).await;
            assert!(got.0 == 400 || got.0 == 404, "{path}: {} {}", got.0, got.2);
        }
        // Camera fields: stored and returned verbatim.
        let body = json!({
            "name": evil,
            "description": evil,
            "tags": [evil],
            "streams": [{"format": "mjpeg", "url": format!("https://cam.example.com/{q}")}],
        });
        let got = parts(
            app.http
                .post(app.url("/v1/cameras/"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        if evil.contains('\0') {
            // PostgreSQL text cannot hold NUL: refused on both backends alike.
            assert_eq!(got.0, 400, "{}", got.2);
            assert_eq!(got.2["title"], "invalid");
            continue;
        }
        assert_eq!(got.0, 201, "{evil}: {}", got.2);
        assert_eq!(got.2["name"], evil.trim());
        assert_eq!(got.2["description"], *evil);
        assert_eq!(got.2["tags"][0], *evil);
        let id = got.2["id"].as_i64().unwrap();
        let back = parts(app.get_bearer(&format!("/v1/cameras/{id}/"), &token).await).await;
        assert_eq!(back.2["description"], *evil);
        let got = parts(
            app.http
                .put(app.url(&format!("/v1/cameras/{id}/")))
                .bearer_auth(&token)
                .json(&json!({"name": format!("{evil} 2"), "type": evil, "status": evil}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(got.0, 400, "type/status are enums: {}", got.2);
    }
    // Nothing slept on an injected pg_sleep, and everything is intact.
    assert!(started.elapsed() < Duration::from_secs(60));
    let list = parts(app.get_bearer("/v1/cameras/", &token).await).await;
    let stored = SQLISH.iter().filter(|e| !e.contains('\0')).count();
    assert_eq!(list.2["count"], stored);
    app.password_token(&public, EMAIL, PASSWORD).await;
    assert_eq!(app.get_bearer("/v1/me/", &token).await.status(), 200);
}

// ------------------------------------------------------------ oversized and malformed input

#[tokio::test]
async fn a_one_megabyte_scope_is_refused_cheaply() {
    let _quiet = quiet().await;
    let app = spawn_app_with(|c| c.body_limit_bytes = 2 * 1024 * 1024).await;
    app.create_user(EMAIL, PASSWORD).await;
    let client = app.public_client("angelcam").await;
    let huge = "read ".repeat(1024 * 1024 / 5);
    let t = Instant::now();
    let got = parts(
        app.token_form(&[
            ("client_id", client.as_str()),
            ("grant_type", "password"),
            ("username", EMAIL),
            ("password", PASSWORD),
            ("scope", huge.as_str()),
        ])
        .await,
    )
    .await;
    assert_oauth(&got, 400, "invalid_scope");
    assert!(got.2.to_string().len() < 500, "the scope is not echoed");
    assert!(t.elapsed() < Duration::from_secs(5));
    // In a multipart body.
    let form = reqwest::multipart::Form::new()
        .text("client_id", client.clone())
        .text("grant_type", "password")
        .text("username", EMAIL)
        .text("password", PASSWORD)
        .text("scope", huge.clone());
    let r = app
        .http
        .post(app.url("/oauth/token/"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_oauth(&parts(r).await, 400, "invalid_scope");
    // With the default 64 KiB body limit it never gets that far: 413.
    let small = spawn_app().await;
    let got = parts(
        small
            .token_form(&[("grant_type", "password"), ("scope", huge.as_str())])
            .await,
    )
    .await;
    assert_oauth(&got, 413, "invalid_request");
}

#[tokio::test]
async fn invalid_utf8_anywhere_is_a_client_error() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let client = app.public_client("angelcam").await;
    let (_, token) = app.user_with_token("other@example.com").await;
    // Percent-encoded invalid UTF-8 in the form: decoded lossily, then simply wrong.
    for body in [
        format!("client_id={client}&grant_type=password&username=%FF%FE&password=%C3%28"),
        format!("client_id=%ff{client}&grant_type=password&username=a&password=b"),
        format!("client_id={client}&grant_type=%80&username=a&password=b"),
        format!("client_id={client}&grant_type=password&username=a&password=b&scope=%ED%A0%80"),
    ] {
        let got = parts(
            app.http
                .post(app.url("/oauth/token/"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_client_error(&got, &body);
    }
    // Raw invalid bytes in the body.
    let mut body = format!("client_id={client}&grant_type=password&username=").into_bytes();
    body.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28]);
    body.extend_from_slice(b"&password=x");
    let got = parts(
        app.http
            .post(app.url("/oauth/token/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_oauth(&got, 400, "invalid_grant");
    // Invalid UTF-8 inside a multipart part.
    let part = reqwest::multipart::Part::bytes(vec![0xff, 0xfe, 0xfd]);
    let form = reqwest::multipart::Form::new()
        .text("client_id", client.clone())
        .text("grant_type", "password")
        .part("username", part)
        .text("password", "x");
    let got = parts(
        app.http
            .post(app.url("/oauth/token/"))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_client_error(&got, "multipart");
    // Invalid UTF-8 in a JSON body.
    let got = parts(
        app.http
            .post(app.url("/v1/cameras/"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(b"{\"name\": \"\xff\xfe\"}".to_vec())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(got.0, 400, "{}", got.2);
    // Non-ASCII bytes (obs-text) in the Authorization header, Bearer and Basic.
    for value in [
        &b"Bearer \xff\xfe\xfd"[..],
        b"Basic \xc3\x28",
        b"\xff\xfe abc",
    ] {
        let mut req =
            b"GET /v1/me/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ".to_vec();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n\r\n");
        let (code, text) = raw(&app, &req).await;
        assert_eq!(code, 401, "{text}");
        let mut req =
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\nAuthorization: "
                .to_vec();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n\r\n");
        let (code, text) = raw(&app, &req).await;
        assert!(code == 401 || code == 400, "{text}");
    }
    // Base64 of invalid UTF-8 in Basic.
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .header(
            "authorization",
            format!("Basic {}", b64(&[0xff, b':', 0xfe])),
        )
        .query(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_oauth(&parts(r).await, 401, "invalid_client");
    // Raw invalid bytes in the request target, and a percent-encoded path segment.
    let (code, _) = raw(
        &app,
        b"GET /v1/cameras/\xff\xfe/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(code, 400);
    let got = parts(app.get_bearer("/v1/cameras/%FF%FE/", &token).await).await;
    assert!(got.0 == 400 || got.0 == 404, "{}", got.2);
    assert_eq!(got.2["status"], got.0, "Angelcam shape: {}", got.2);
    let got = parts(app.get_bearer("/v1/cameras/?limit=%FF", &token).await).await;
    assert_client_error(&got, "limit=%FF");
}

#[tokio::test]
async fn duplicated_parameters_and_headers_are_refused() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let (id, secret) = app.confidential_client("cameramanager").await;
    // Revoke and introspect refuse a parameter given twice (query + body).
    for path in ["/oauth/revoke", "/oauth/introspect"] {
        let r = app
            .http
            .post(app.url(&format!("{path}?token=a")))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", "b")])
            .send()
            .await
            .unwrap();
        assert_oauth(&parts(r).await, 400, "invalid_request");
    }
    // Two Authorization headers: ambiguous (a proxy may read the other one), refused.
    let good = format!("Basic {}", b64(format!("{id}:{secret}").as_bytes()));
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .header("authorization", good.clone())
        .header("authorization", "Basic Zm9vOmJhcg==")
        .query(&[
            ("grant_type", "password"),
            ("username", EMAIL),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth(&parts(r).await, 400, "invalid_request");
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .header("authorization", good.clone())
        .header("authorization", good.clone())
        .query(&[
            ("grant_type", "password"),
            ("username", EMAIL),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth(&parts(r).await, 400, "invalid_request");
    let (_, token) = app.user_with_token("dup@example.com").await;
    let r = app
        .http
        .get(app.url("/v1/me/"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Repeated camera-list parameters: the first wins or it is refused — never a 500.
    let got = parts(app.get_bearer("/v1/cameras/?limit=1&limit=2", &token).await).await;
    assert!(got.0 == 200 || got.0 == 400, "{}", got.2);
}

#[tokio::test]
async fn basic_headers_bad_base64_colons_and_odd_shapes() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    // A client whose id has characters that need care.
    let mut input = client_input("odd", ClientKind::Confidential, "cameramanager");
    input.client_id = Some("odd.client_id-1~".into());
    let reg = app.register(input).await;
    let id = reg.client.client_id.clone();
    let secret = reg.secret.clone().unwrap();
    let login = |auth: String| {
        let (http, url) = (app.http.clone(), app.url("/oauth/token"));
        async move {
            parts(
                http.post(url)
                    .header("authorization", auth)
                    .query(&[
                        ("grant_type", "password"),
                        ("username", EMAIL),
                        ("password", PASSWORD),
                    ])
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    // Sanity.
    let got = login(format!(
        "Basic {}",
        b64(format!("{id}:{secret}").as_bytes())
    ))
    .await;
    assert_eq!(got.0, 200, "{}", got.2);
    // Lower-case scheme and extra spaces are tolerated.
    let got = login(format!(
        "basic   {}",
        b64(format!("{id}:{secret}").as_bytes())
    ))
    .await;
    assert_eq!(got.0, 200, "{}", got.2);
    let bad: Vec<String> = vec![
        "Basic".into(),
        "Basic ".into(),
        "Basic !!!!".into(),
        "Basic Zm9v".into(), // "foo": no colon
        format!("Basic {}", b64(format!(":{secret}").as_bytes())), // empty id
        format!(
            "Basic {}",
            b64(format!("{id}:{secret}").as_bytes()).trim_end_matches('=')
        ), // no padding
        format!("Basic {}", b64(format!("{id}:{secret}x").as_bytes())), // wrong secret
        format!("Basic {}", b64(format!("{id}x:{secret}").as_bytes())), // wrong id
        // A ':' inside the id: the first ':' splits, so this is id "odd.client_id-1~:x".
        format!("Basic {}", b64(format!("{id}%3Ax:{secret}").as_bytes())),
        // Raw ':' in the id: splits early; id "odd.client_id-1~" with secret "x:SECRET".
        format!("Basic {}", b64(format!("{id}:x:{secret}").as_bytes())),
        format!("Basic {}", b64(&vec![b'a'; 6000])),
        format!("Basic {}", b64(b"\0\0\0:\0")),
        format!("Bearer {}", b64(format!("{id}:{secret}").as_bytes())),
        format!("Digest username=\"{id}\""),
        format!("Basic {} extra", b64(format!("{id}:{secret}").as_bytes())),
    ];
    for auth in bad {
        let got = login(auth.clone()).await;
        assert_oauth(&got, 401, "invalid_client");
        assert!(got.1.contains_key("www-authenticate"), "{auth}");
        assert!(!got.2.to_string().contains(&secret), "secret echoed");
    }
    // Basic credentials are form-urldecoded (RFC 6749 §2.3.1): the right secret with every
    // byte percent-encoded still works.
    let enc_secret: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
    let got = login(format!(
        "Basic {}",
        b64(format!("{id}:{enc_secret}").as_bytes())
    ))
    .await;
    assert_eq!(got.0, 200, "{}", got.2);
}

#[tokio::test]
async fn hostile_authorization_values_on_resource_routes() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token(EMAIL).await;
    let values = vec![
        "Bearer".to_string(),
        "Bearer ".to_string(),
        format!("Bearer {token} {token}"),
        format!("Bearer\t{token}"),
        format!("Bearer {}", "A".repeat(8000)),
        format!("Bearer {token}x"),
        format!("Bearer {}", &token[..token.len() - 1]),
        format!("Basic {}", b64(b"a:b")),
        format!("Token {token}"),
        token.clone(),
        format!("Bearer {}", token.to_lowercase()),
    ];
    for v in values {
        let got = parts(
            app.http
                .get(app.url("/v1/me/"))
                .header("authorization", v.clone())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(got.0, 401, "{}: {}", &v[..v.len().min(40)], got.2);
        assert!(got.1["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
    }
}
