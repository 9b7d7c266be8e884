//! Adversarial black-box tests along RFC 9700 and OWASP ASVS that the other
//! suites do not already hold: every open-redirect variant against every form of the
//! authorization endpoint (Angelcam `GET /oauth/authorize/`, CameraManager `GET|POST
//! /oauth/authorize`), signed in or not; login CSRF with a wrong or foreign token; framing
//! headers on every browser page; the format of codes the flow hands out. SECURITY.md maps
//! each threat to its test here or elsewhere. Runs on SQLite and with
//! `CAMGATE_TEST_DATABASE=postgres`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use crate::common::session::*;
use crate::common::*;
use camgate_core::model::ClientKind;

const CB: &str = "https://app.example.com/callback";
const CB2: &str = "https://app.example.com:8443/cb?tenant=1";

/// The security headers every HTML page carries (clickjacking: RFC 9700 §4.16, ASVS 14.4).
fn assert_unframeable(r: &Resp, what: &str) {
    assert_eq!(r.header("x-frame-options"), "DENY", "{what}");
    let csp = r.header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(r.header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(r.header("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(r.header("cache-control"), "no-store", "{what}");
}

async fn confidential(app: &TestApp, uris: &[&str], profile: &str) -> String {
    let mut input = client_input("Camera Viewer", ClientKind::Confidential, profile);
    input.redirect_uris = uris.iter().map(|s| s.to_string()).collect();
    app.register(input).await.client.client_id
}

/// RFC 9700 §4.1 / §2.1: the redirect URI is matched by exact string comparison. Every trick
/// (percent-encoding, userinfo, backslash, extra path, case, trailing dot, …) gets the error
/// page — never a `Location`, on any form of the endpoint, signed in or not, whatever else the
/// request says (a `prompt=none` or a bad `response_type` would otherwise redirect at once).
#[tokio::test]
async fn open_redirect_variants_get_the_error_page_on_every_authorize_form() {
    let app = spawn_app().await;
    app.create_user("user@example.com", PASSWORD).await;
    let angelcam = confidential(&app, &[CB, CB2], "angelcam").await;
    let cameramanager = confidential(&app, &[CB, CB2], "cameramanager").await;
    let variants = [
        // percent-encoding
        "https://app.example.com/%63allback",
        "https://app.example.com%2Fcallback",
        "https://app.example.com/callback%2F..%2F..%2Fevil",
        "https%3A%2F%2Fapp.example.com%2Fcallback",
        "https://app.example.com:8443/cb?tenant=%31",
        "https://app%2Eexample.com/callback",
        // userinfo
        "https://user@app.example.com/callback",
        "https://evil.example@app.example.com/callback",
        "https://app.example.com@evil.example/callback",
        "https://app.example.com:443@evil.example/callback",
        "https://:@app.example.com/callback",
        // backslash
        "https://evil.example\\@app.example.com/callback",
        "https://app.example.com\\@evil.example/callback",
        "https://app.example.com\\callback",
        "https:\\\\app.example.com\\callback",
        "/\\evil.example/callback",
        // extra path, query, fragment
        "https://app.example.com/callback/",
        "https://app.example.com/callback/../evil",
        "https://app.example.com/callback/extra",
        "https://app.example.com/callbackx",
        "https://app.example.com/callback?x=1",
        "https://app.example.com/callback?",
        "https://app.example.com/callback#",
        "https://app.example.com/callback#x",
        "https://app.example.com:8443/cb?tenant=1&next=https://evil.example",
        "https://app.example.com:8443/cb",
        // case
        "HTTPS://app.example.com/callback",
        "https://APP.example.com/callback",
        "https://app.example.com/Callback",
        // trailing dot, ports, lookalikes, scheme
        "https://app.example.com./callback",
        "https://app.example.com:443/callback",
        "https://app.example.com:8443/callback",
        "https://app.example.com.evil.example/callback",
        "https://evil.example/callback",
        "//evil.example/callback",
        "http://app.example.com/callback",
        "javascript:alert(1)//app.example.com/callback",
        " https://app.example.com/callback",
        "https://app.example.com/callback ",
        "https://app.example.com/callback\u{0}",
        "https://xn--pp-7ka.example.com/callback",
    ];
    let mut anon = Browser::new(&app);
    let mut signed = Browser::new(&app);
    assert_eq!(
        signed.sign_in("user@example.com", PASSWORD).await.status,
        303
    );
    // The registered URIs themselves work on every form (else the test proves nothing).
    for (client, path) in [
        (&angelcam, "/oauth/authorize/"),
        (&cameramanager, "/oauth/authorize"),
    ] {
        for good in [CB, CB2] {
            let q = [
                ("response_type", "code"),
                ("client_id", client.as_str()),
                ("redirect_uri", good),
                ("prompt", "none"),
            ];
            let r = anon.get(&format!("{path}?{}", encode(&q))).await;
            assert_eq!(r.status, 302, "{good}: {}", r.body);
            assert!(r.location().starts_with(good), "{}", r.location());
        }
    }
    for bad in variants {
        for (client, path) in [
            (&angelcam, "/oauth/authorize/"),
            (&angelcam, "/oauth/authorize"),
            (&cameramanager, "/oauth/authorize"),
            (&cameramanager, "/oauth/authorize/"),
        ] {
            for extra in [("prompt", "none"), ("response_type", "token")] {
                let q = [
                    ("client_id", client.as_str()),
                    ("redirect_uri", bad),
                    ("state", "s"),
                    ("scope", "write"),
                    extra,
                    ("response_type", "code"),
                ];
                // A repeated response_type is itself an error that would go back to the
                // client: only when the first one is `token` (extra) is it repeated.
                let q: Vec<(&str, &str)> = if extra.0 == "response_type" {
                    q[..5].to_vec()
                } else {
                    q.to_vec()
                };
                for b in [&mut anon, &mut signed] {
                    let get = b.get(&format!("{path}?{}", encode(&q))).await;
                    let post = b.post(path, &q).await;
                    for (method, r) in [("GET", get), ("POST", post)] {
                        let what = format!("{method} {path} {bad:?} {extra:?}");
                        assert_eq!(r.status, 400, "{what}: {}", r.body);
                        assert!(r.headers.get("location").is_none(), "{what}");
                        assert!(r.body.contains("Mismatching redirect URI."), "{what}");
                        assert!(!r.body.contains("evil.example\""), "{what}");
                        assert_unframeable(&r, &what);
                    }
                }
            }
        }
    }
}

/// POSTs the login form of user@example.com with `csrf` as its token.
async fn post_login(b: &mut Browser<'_>, csrf: &str) -> Resp {
    b.post(
        "/login",
        &[
            ("email", "user@example.com"),
            ("password", PASSWORD),
            ("csrf_token", csrf),
        ],
    )
    .await
}

/// Login CSRF (RFC 9700 §4.7 for the login form; ASVS 4.2.2): a wrong token, a token from
/// another browser, or a token without its cookie signs nobody in, and the right one does.
#[tokio::test]
async fn login_csrf_with_a_wrong_or_foreign_token_signs_nobody_in() {
    let app = spawn_app().await;
    app.create_user("user@example.com", PASSWORD).await;
    let mut victim = Browser::new(&app);
    let mut attacker = Browser::new(&app);
    let apage = attacker.get("/login").await;
    let foreign = hidden(&apage.body, "csrf_token");
    for kind in ["empty", "forged", "foreign", "truncated", "other case"] {
        // A fresh form each time (a refused form is re-rendered with a new token).
        let page = victim.get("/login").await;
        let token = hidden(&page.body, "csrf_token");
        assert_ne!(token, foreign);
        let bad = match kind {
            "empty" => String::new(),
            "forged" => "forged".into(),
            "foreign" => foreign.clone(),
            "truncated" => token[..token.len() - 1].to_string(),
            _ => token.to_ascii_uppercase(),
        };
        if bad == token {
            continue;
        }
        let r = post_login(&mut victim, &bad).await;
        assert_eq!(r.status, 400, "{kind}: {}", r.body);
        assert!(r.body.contains("expired"), "{kind}");
        assert!(!victim.jar.contains_key(SESSION), "{kind}");
    }
    let page = victim.get("/login").await;
    let token = hidden(&page.body, "csrf_token");
    // The victim's token posted from a browser without the victim's cookie (cross-site).
    let mut bare = Browser::new(&app);
    let r = post_login(&mut bare, &token).await;
    assert_eq!(r.status, 400);
    assert!(!bare.jar.contains_key(SESSION));
    // The right pair works.
    let r = post_login(&mut victim, &token).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(victim.jar.contains_key(SESSION));
}

/// Clickjacking (RFC 9700 §4.16): every HTML page — login, logout, error pages, the approval
/// screen, every dashboard page, the dashboard's 404 — refuses to be framed.
#[tokio::test]
async fn every_browser_page_refuses_framing() {
    let app = spawn_app().await;
    app.create_user("user@example.com", PASSWORD).await;
    let client = confidential(&app, &[CB], "angelcam").await;
    let mut b = Browser::new(&app);
    let mut pages = vec![];
    for path in [
        "/login",
        "/logout",
        "/consent",
        "/consent?request_id=nope",
        "/oauth/authorize/",
        "/oauth/authorize/?client_id=nope",
        "/dashboard/",
    ] {
        pages.push((path.to_string(), b.get(path).await));
    }
    assert_eq!(b.sign_in("user@example.com", PASSWORD).await.status, 303);
    let consent = b
        .get(&format!(
            "/oauth/authorize/?response_type=code&client_id={client}"
        ))
        .await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("csrf_token"));
    pages.push(("approval screen".into(), consent));
    for path in [
        "/login",
        "/logout",
        "/dashboard/",
        "/dashboard/apps/",
        "/dashboard/tokens/",
        "/dashboard/authorized/",
        "/dashboard/cameras/",
        "/dashboard/account/",
        "/dashboard/admin/",
        "/dashboard/no-such-page/",
    ] {
        pages.push((format!("{path} (signed in)"), b.get(path).await));
    }
    for (what, r) in &pages {
        assert_unframeable(r, what);
        if r.status == 200 {
            assert!(r.header("content-type").starts_with("text/html"), "{what}");
        }
    }
    // Sanity: the list holds real pages, not only errors.
    assert!(pages.iter().filter(|(_, r)| r.status == 200).count() >= 8);
}

/// Authorization codes are long random strings of their profile's format (RFC 6749 §10.10:
/// guessing must be infeasible): 30 alphanumerics for Angelcam-style clients, `cgac_` + 32
/// alphanumerics otherwise; two codes are never equal.
#[tokio::test]
async fn codes_from_the_flow_have_their_format() {
    let app = spawn_app().await;
    app.create_user("user@example.com", PASSWORD).await;
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in("user@example.com", PASSWORD).await.status, 303);
    let mut codes = vec![];
    for (profile, check) in [
        ("angelcam", (|c: &str| c.len() == 30) as fn(&str) -> bool),
        ("cameramanager", |c: &str| {
            c.starts_with("cgac_") && c.len() == 37
        }),
    ] {
        let client = confidential(&app, &[CB], profile).await;
        let path = format!("/oauth/authorize/?response_type=code&client_id={client}");
        let page = b.get(&path).await;
        let r = b.decide(&page, "approve").await;
        assert_eq!(r.status, 303, "{}", r.body);
        for _ in 0..3 {
            let loc = if codes.is_empty() || !codes.iter().any(|(p, _)| *p == profile) {
                r.location()
            } else {
                b.get(&path).await.location()
            };
            let u = url::Url::parse(&loc).unwrap();
            let code = u
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_else(|| panic!("no code in {loc}"));
            assert!(check(&code), "{profile}: {code}");
            let tail = code.strip_prefix("cgac_").unwrap_or(&code);
            assert!(tail.bytes().all(|b| b.is_ascii_alphanumeric()), "{code}");
            assert!(!codes.iter().any(|(_, c)| *c == code), "repeated code");
            codes.push((profile, code));
        }
    }
}

/// CSRF on the approval screen: a missing, forged or foreign token approves nothing — no
/// code reaches the client, no consent is remembered (the screen is shown again).
#[tokio::test]
async fn consent_csrf_changes_nothing() {
    let app = spawn_app().await;
    app.create_user("user@example.com", PASSWORD).await;
    app.create_user("mallory@example.com", PASSWORD).await;
    let client = confidential(&app, &[CB], "angelcam").await;
    let path = format!("/oauth/authorize/?response_type=code&client_id={client}&state=s");
    let mut b = Browser::new(&app);
    assert_eq!(b.sign_in("user@example.com", PASSWORD).await.status, 303);
    let mut m = Browser::new(&app);
    assert_eq!(m.sign_in("mallory@example.com", PASSWORD).await.status, 303);
    let foreign = hidden(&m.get(&path).await.body, "csrf_token");
    for bad in [None, Some("forged"), Some(foreign.as_str())] {
        let page = b.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let rid = hidden(&page.body, "request_id");
        let mut form = vec![("request_id", rid.as_str()), ("decision", "approve")];
        if let Some(t) = bad {
            form.push(("csrf_token", t));
        }
        let r = b.post("/consent", &form).await;
        assert_eq!(r.status, 400, "{bad:?}: {}", r.body);
        assert!(r.headers.get("location").is_none(), "{bad:?}");
        assert!(!r.body.contains("code="), "{bad:?}");
    }
    // Nothing was approved: the approval screen is still asked for, and prompt=none says so.
    let r = b.get(&format!("{path}&prompt=none")).await;
    assert_eq!(r.status, 302);
    assert!(
        r.location().contains("error=consent_required"),
        "{}",
        r.location()
    );
    let page = b.get(&path).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("csrf_token"));
}

/// SQL-looking input in every field of the browser flow (the token endpoint, resource routes
/// and camera fields are in `hostile::sql_looking_input_in_every_field_is_just_data`): just
/// data — unknown clients, mismatching redirect URIs, failed sign-ins, and a `state` handed
/// back verbatim.
#[tokio::test]
async fn sql_looking_input_in_the_browser_flow_is_just_data() {
    let app = spawn_app().await;
    app.create_user("user@example.com", PASSWORD).await;
    let client = confidential(&app, &[CB], "angelcam").await;
    let payloads = [
        "' OR '1'='1",
        "'; DROP TABLE users; --",
        "\" OR 1=1 --",
        "1; SELECT pg_sleep(5)",
        "x' UNION SELECT secret FROM clients --",
    ];
    let mut b = Browser::new(&app);
    for p in payloads {
        let r = b.sign_in(p, p).await;
        assert_eq!(r.status, 200, "{p}: {}", r.body);
        assert!(r
            .body
            .contains("The email address or password is incorrect."));
        let r = b
            .get(&format!(
                "/oauth/authorize/?{}",
                encode(&[("response_type", "code"), ("client_id", p)])
            ))
            .await;
        assert_eq!(r.status, 400, "{p}");
        assert!(r.body.contains("Invalid client_id"), "{p}");
        let r = b
            .get(&format!(
                "/oauth/authorize/?{}",
                encode(&[
                    ("response_type", "code"),
                    ("client_id", &client),
                    ("redirect_uri", p)
                ])
            ))
            .await;
        assert_eq!(r.status, 400, "{p}");
        assert!(r.body.contains("Mismatching redirect URI."), "{p}");
        let r = b
            .get(&format!("/consent?{}", encode(&[("request_id", p)])))
            .await;
        assert!(r.status == 303 || r.status == 400, "{p}: {}", r.status);
    }
    // Signed in, the payload as state comes back verbatim with the error answer.
    assert_eq!(b.sign_in("user@example.com", PASSWORD).await.status, 303);
    for p in payloads {
        let r = b
            .get(&format!(
                "/oauth/authorize/?{}",
                encode(&[
                    ("response_type", "code"),
                    ("client_id", &client),
                    ("scope", p),
                    ("state", p)
                ])
            ))
            .await;
        assert_eq!(r.status, 302, "{p}");
        let u = url::Url::parse(&r.location()).unwrap();
        let q: HashMap<String, String> = u.query_pairs().into_owned().collect();
        assert_eq!(q["error"], "invalid_scope", "{p}");
        assert_eq!(q["state"], p);
        assert!(r.location().starts_with(CB));
    }
    // Nothing changed: the user still signs in, the client still works.
    let page = b
        .get(&format!(
            "/oauth/authorize/?response_type=code&client_id={client}"
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
}
