//! Black-box tests of the developer dashboard: applications, personal access tokens,
//! authorized apps, cameras, the account page and administration, over HTTP with a hand-kept
//! cookie jar (redirects are not followed). Each test runs the real app on port 0 with its own
//! database (SQLite, or PostgreSQL with `CAMGATE_TEST_DATABASE=postgres`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::session::*;
use crate::common::*;
use camgate_core::authorize::s256_challenge;
use camgate_core::model::ClientKind;
use serde_json::{json, Value};

const CB: &str = "https://app.example.com/callback";

/// A form, the field its error must be shown beside, and a part of the message.
type FormCase = (
    Vec<(&'static str, &'static str)>,
    &'static str,
    &'static str,
);

/// The `value` of the element with `id`.
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

fn assert_dashboard_headers(r: &Resp) {
    assert_eq!(r.header("x-frame-options"), "DENY");
    let csp = r.header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert_eq!(r.header("referrer-policy"), "no-referrer");
    assert_eq!(r.header("cache-control"), "no-store");
    assert!(r.header("content-type").starts_with("text/html"));
}

/// A signed-in browser for a new user `email`.
async fn signed_in<'a>(app: &'a TestApp, email: &str) -> Browser<'a> {
    app.create_user(email, PASSWORD).await;
    let mut b = Browser::new(app);
    let r = b.sign_in(email, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/dashboard/");
    b
}

/// Creates an application through the dashboard; returns (client_id, secret) from the page.
async fn create_app(
    b: &mut Browser<'_>,
    name: &str,
    kind: &str,
    grants: &[&str],
) -> (String, Option<String>) {
    let mut form = vec![
        ("name", name),
        ("kind", kind),
        ("redirect_uris", CB),
        ("scopes", "read"),
        ("scopes", "write"),
        ("profile", "angelcam"),
    ];
    for g in grants {
        form.push(("grants", g));
    }
    let r = b.post_csrf("/dashboard/apps/new", &form).await;
    r.ok().has("is ready");
    assert_dashboard_headers(&r);
    // Without JavaScript the values sit in read-only inputs and the copy buttons stay hidden.
    r.has("id=\"client-id\" class=\"secret-value\" type=\"text\" value=\"")
        .has("data-copy=\"client-id\" hidden>");
    let id = input_value(&r.body, "client-id");
    let secret = r
        .body
        .contains("id=\"client-secret\"")
        .then(|| input_value(&r.body, "client-secret"));
    (id, secret)
}

/// Creates a personal access token through the dashboard; returns it.
async fn create_pat(b: &mut Browser<'_>, name: &str, scopes: &[&str], days: &str) -> String {
    let mut form = vec![("name", name), ("expires_in_days", days)];
    for s in scopes {
        form.push(("scope", s));
    }
    let r = b.post_csrf("/dashboard/tokens/new", &form).await;
    r.ok().has("Copy the token now");
    input_value(&r.body, "token-value")
}

async fn pat_get(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .header("authorization", format!("PersonalAccessToken {token}"))
        .send()
        .await
        .unwrap()
}

/// The id of the (only) PAT named `name` of a user.
async fn pat_id(app: &TestApp, user_id: i64, name: &str) -> i64 {
    app.core
        .my_pats(user_id)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap()
        .id
}

async fn user_id(app: &TestApp, email: &str) -> i64 {
    app.core.user_by_email(email).await.unwrap().unwrap().id
}

async fn password_grant(
    app: &TestApp,
    client_id: &str,
    secret: Option<&str>,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "password"),
        ("client_id", client_id),
        ("username", email),
        ("password", password),
    ];
    if let Some(s) = secret {
        form.push(("client_secret", s));
    }
    app.token_form(&form).await
}

// ---- sessions, headers, CSRF

#[tokio::test]
async fn pages_need_a_session_and_come_back_after_login() {
    let app = spawn_app().await;
    app.create_user("dev@example.com", PASSWORD).await;
    let mut b = Browser::new(&app);
    let r = b.get("/dashboard/tokens/").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/login?next=%2Fdashboard%2Ftokens%2F");
    // The login page carries `next` in its form and returns there.
    let page = b.get(&r.location()).await;
    page.ok();
    assert_eq!(hidden(&page.body, "next"), "/dashboard/tokens/");
    let csrf = hidden(&page.body, "csrf_token");
    let r = b
        .post(
            "/login",
            &[
                ("email", "dev@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
                ("next", "/dashboard/tokens/"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/dashboard/tokens/");
    let r = b.get("/dashboard/tokens/").await;
    r.ok().has("Personal access tokens").has("dev@example.com");
    assert_dashboard_headers(&r);
    // Signed in, /login?next=… goes straight there.
    let r = b.get("/login?next=%2Fdashboard%2Fapps%2F").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/dashboard/apps/");
    // /dashboard without the slash, and an unknown page.
    let r = b.get("/dashboard").await;
    assert_eq!(r.status, 308);
    assert_eq!(r.location(), "/dashboard/");
    let r = b.get("/dashboard/nothing/here").await;
    assert_eq!(r.status, 404);
    r.has("Back to your dashboard");
    // The stylesheet and the optional script are served with the page CSP allowing them.
    let css = app
        .http
        .get(app.url("/static/dashboard.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    let js = app
        .http
        .get(app.url("/static/dashboard.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
}

#[tokio::test]
async fn login_next_only_goes_to_dashboard_pages() {
    let app = spawn_app().await;
    app.create_user("dev@example.com", PASSWORD).await;
    for (next, expected) in [
        ("https://evil.example/", "/dashboard/"),
        ("//evil.example/dashboard/", "/dashboard/"),
        ("/dashboard/..//evil.example", "/dashboard/"),
        ("/dashboard/\\evil", "/dashboard/"),
        ("/oauth/authorize", "/dashboard/"),
        ("/dashboard/cameras/", "/dashboard/cameras/"),
    ] {
        let mut b = Browser::new(&app);
        let page = b.get("/login").await;
        let csrf = hidden(&page.body, "csrf_token");
        let r = b
            .post(
                "/login",
                &[
                    ("email", "dev@example.com"),
                    ("password", PASSWORD),
                    ("csrf_token", &csrf),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(r.status, 303);
        assert_eq!(r.location(), expected, "next={next}");
    }
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_403_and_changes_nothing() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let (client_id, _) = create_app(&mut b, "Mine", "confidential", &["password"]).await;
    let pat = create_pat(&mut b, "ci", &["read"], "").await;
    let uid = user_id(&app, "dev@example.com").await;
    let pid = pat_id(&app, uid, "ci").await;
    let cam = app
        .core
        .create_camera(uid, camgate_core::model::CameraFields::named("Porch"))
        .await
        .unwrap();
    let other = app.create_user("other@example.com", PASSWORD).await;
    let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/dashboard/apps/new".into(),
            vec![
                ("name", "X"),
                ("kind", "public"),
                ("grants", "password"),
                ("scopes", "read"),
                ("profile", "angelcam"),
            ],
        ),
        (
            format!("/dashboard/apps/{client_id}/edit"),
            vec![("name", "Renamed")],
        ),
        (format!("/dashboard/apps/{client_id}/rotate"), vec![]),
        (format!("/dashboard/apps/{client_id}/delete"), vec![]),
        (
            "/dashboard/tokens/new".into(),
            vec![("name", "t2"), ("scope", "read")],
        ),
        (format!("/dashboard/tokens/{pid}/revoke"), vec![]),
        ("/dashboard/cameras/new".into(), vec![("name", "Cam")]),
        (
            format!("/dashboard/cameras/{}/edit", cam.id),
            vec![("name", "Renamed")],
        ),
        (format!("/dashboard/cameras/{}/delete", cam.id), vec![]),
        (
            "/dashboard/account/password".into(),
            vec![
                ("current_password", PASSWORD),
                ("new_password", "a new password here"),
                ("confirm_password", "a new password here"),
            ],
        ),
        ("/dashboard/account/sign-out-everywhere".into(), vec![]),
        (format!("/dashboard/authorized/{client_id}/revoke"), vec![]),
        (
            "/dashboard/admin/users/".into(),
            vec![
                ("email", "x@example.com"),
                ("password", "long enough password"),
            ],
        ),
        (
            format!("/dashboard/admin/users/{}/disable", other.id),
            vec![],
        ),
    ];
    for (path, form) in &posts {
        // No token at all.
        let r = b.post(path, form).await;
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        r.has("This form has expired");
        // Another session's token.
        let mut f = form.clone();
        f.push(("csrf_token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        let r = b.post(path, &f).await;
        assert_eq!(r.status, 403, "{path}");
    }
    // Fetch Metadata: a cross-site form post is refused even with a valid token.
    let csrf = b.csrf().await;
    let r = app
        .http
        .post(app.url("/dashboard/tokens/new"))
        .header("cookie", b.cookie_header())
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "x"),
            ("scope", "read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Nothing changed: one app (same name), one PAT that still works, the camera, the session.
    let apps = app.core.my_apps(uid).await.unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(apps[0].name, "Mine");
    assert_eq!(app.core.my_pats(uid).await.unwrap().len(), 1);
    assert_eq!(pat_get(&app, "/v1/me/", &pat).await.status(), 200);
    assert_eq!(
        app.core.camera(uid, cam.id).await.unwrap().fields.name,
        "Porch"
    );
    assert!(
        !app.core
            .user_by_email("other@example.com")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    b.get("/dashboard/").await.ok();
}

// ---- applications

#[tokio::test]
async fn an_app_is_created_with_a_secret_shown_once_that_works_at_the_token_endpoint() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    // Empty state first.
    b.get("/dashboard/apps/")
        .await
        .ok()
        .has("No applications yet")
        .has("Create your first application");
    let form = b.get("/dashboard/apps/new").await;
    form.ok().has("name=\"csrf_token\"");
    assert_dashboard_headers(&form);
    let (client_id, secret) = create_app(
        &mut b,
        "Camera Viewer",
        "confidential",
        &["password", "refresh_token"],
    )
    .await;
    let secret = secret.unwrap();
    assert_eq!(client_id.len(), 40);
    assert!(secret.starts_with("cgs_"));
    // Listed, with a detail page that never shows the secret again.
    b.get("/dashboard/apps/")
        .await
        .ok()
        .has("Camera Viewer")
        .has(&client_id);
    let detail = b.get(&format!("/dashboard/apps/{client_id}/")).await;
    detail
        .ok()
        .has(&client_id)
        .has("Rotate secret")
        .has(CB)
        .lacks(&secret);
    // The secret works at the token endpoint (password grant, allowed on the form).
    let r = password_grant(&app, &client_id, Some(&secret), "dev@example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["scope"], "read write");
    let me = app
        .get_bearer("/v1/me/", t["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 200);
    // A wrong secret and a grant the app was not given are refused.
    let r = password_grant(
        &app,
        &client_id,
        Some("cgs_wrong"),
        "dev@example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(r.status(), 401);
    let r = app
        .token_form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("code", "x"),
        ])
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "unauthorized_client");
}

#[tokio::test]
async fn a_public_app_has_no_secret_and_must_use_pkce() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let (client_id, secret) = create_app(
        &mut b,
        "Phone",
        "public",
        &["authorization_code", "refresh_token"],
    )
    .await;
    assert!(secret.is_none());
    b.get(&format!("/dashboard/apps/{client_id}/"))
        .await
        .ok()
        .has("must use PKCE")
        .lacks("Rotate secret");
    // Rotating a public app's secret is refused.
    assert_eq!(
        b.get(&format!("/dashboard/apps/{client_id}/rotate"))
            .await
            .status,
        400
    );
    let r = b
        .post_csrf(&format!("/dashboard/apps/{client_id}/rotate"), &[])
        .await;
    assert_eq!(r.status, 400);
    // The authorize endpoint knows it: PKCE required.
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", CB)
        .finish();
    let r = b.get(&format!("/oauth/authorize/?{q}")).await;
    assert_eq!(r.status, 302);
    assert!(
        r.location().contains("error=invalid_request"),
        "{}",
        r.location()
    );
}

#[tokio::test]
async fn app_settings_are_checked_and_errors_shown_beside_their_field() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let base = |name: &'static str, kind: &'static str, uris: &'static str| {
        vec![
            ("name", name),
            ("kind", kind),
            ("redirect_uris", uris),
            ("scopes", "read"),
            ("profile", "angelcam"),
        ]
    };
    let with_grant = |mut f: Vec<(&'static str, &'static str)>, grant: &'static str| {
        f.push(("grants", grant));
        f
    };
    let cases: Vec<FormCase> = vec![
        (
            with_grant(base("", "confidential", CB), "password"),
            "name",
            "name",
        ),
        (
            with_grant(
                base("App", "confidential", "http://app.example.com/cb"),
                "authorization_code",
            ),
            "redirect_uris",
            "loopback",
        ),
        (
            with_grant(
                base("App", "confidential", "https://app.example.com/cb#frag"),
                "authorization_code",
            ),
            "redirect_uris",
            "fragment",
        ),
        (
            with_grant(
                base("App", "confidential", "https://user@app.example.com/cb"),
                "authorization_code",
            ),
            "redirect_uris",
            "userinfo",
        ),
        (
            with_grant(
                base("App", "confidential", "/relative"),
                "authorization_code",
            ),
            "redirect_uris",
            "absolute",
        ),
        (
            with_grant(base("App", "confidential", ""), "authorization_code"),
            "redirect_uris",
            "at least one redirect URI",
        ),
        (
            base("App", "confidential", CB),
            "grants",
            "at least one grant",
        ),
        (
            with_grant(base("App", "public", CB), "client_credentials"),
            "grants",
            "public client cannot",
        ),
        (
            {
                let mut f = base("App", "confidential", CB);
                f.retain(|(k, _)| *k != "scopes");
                f.push(("grants", "password"));
                f
            },
            "scopes",
            "at least one scope",
        ),
        (
            {
                let mut f = base("App", "confidential", CB);
                f.retain(|(k, _)| *k != "profile");
                f.push(("profile", "nope"));
                f.push(("grants", "password"));
                f
            },
            "profile",
            "profiles",
        ),
        (
            with_grant(base("App", "sideways", CB), "password"),
            "kind",
            "confidential or public",
        ),
    ];
    for (form, field, text) in cases {
        let r = b.post_csrf("/dashboard/apps/new", &form).await;
        assert_eq!(r.status, 400, "{field}: {}", r.body);
        let e = r.field_error(field);
        assert!(e.contains(text), "{field}: {e:?} lacks {text:?}");
        // What was typed is kept.
        if let Some((_, name)) = form.iter().find(|(k, _)| *k == "name") {
            assert!(r.body.contains(&format!("value=\"{name}\"")));
        }
    }
    assert!(app
        .core
        .my_apps(user_id(&app, "dev@example.com").await)
        .await
        .unwrap()
        .is_empty());
    // http on loopback is fine; blank lines and duplicates are dropped.
    let r = b
        .post_csrf(
            "/dashboard/apps/new",
            &[
                ("name", "Local"),
                ("kind", "public"),
                (
                    "redirect_uris",
                    "http://127.0.0.1:9000/cb\n\nhttp://localhost/cb\r\nhttp://127.0.0.1:9000/cb",
                ),
                ("grants", "authorization_code"),
                ("scopes", "read"),
                ("profile", "cameramanager"),
            ],
        )
        .await;
    r.ok();
    let id = input_value(&r.body, "client-id");
    let c = app
        .core
        .my_app(user_id(&app, "dev@example.com").await, &id)
        .await
        .unwrap()
        .client;
    assert_eq!(
        c.redirect_uris,
        vec!["http://127.0.0.1:9000/cb", "http://localhost/cb"]
    );
    assert_eq!(c.profile, "cameramanager");
    assert_eq!(c.kind, ClientKind::Public);
}

#[tokio::test]
async fn an_app_can_be_edited() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let (client_id, secret) = create_app(&mut b, "Viewer", "confidential", &["password"]).await;
    let edit = b.get(&format!("/dashboard/apps/{client_id}/edit")).await;
    edit.ok().has("value=\"Viewer\"").has("cannot change");
    let path = format!("/dashboard/apps/{client_id}/edit");
    // An invalid change: error beside the field, nothing saved.
    let r = b
        .post_csrf(
            &path,
            &[
                ("name", "Viewer 2"),
                ("redirect_uris", "ftp://x.example/cb"),
                ("grants", "authorization_code"),
                ("scopes", "read"),
                ("profile", "angelcam"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    r.field_error("redirect_uris");
    r.has("value=\"Viewer 2\"");
    let r = b
        .post_csrf(
            &path,
            &[
                ("name", "Viewer 2"),
                (
                    "redirect_uris",
                    "https://new.example.com/cb\nhttps://other.example.com/cb",
                ),
                ("grants", "authorization_code"),
                ("grants", "refresh_token"),
                ("scopes", "read"),
                ("profile", "cameramanager"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.location(),
        format!("/dashboard/apps/{client_id}/?notice=app-saved")
    );
    b.get(&r.location())
        .await
        .ok()
        .has("Application saved.")
        .has("Viewer 2")
        .has("https://other.example.com/cb")
        .has("cameramanager");
    // The new settings are live: the password grant is no longer allowed, the secret unchanged.
    let r = password_grant(
        &app,
        &client_id,
        Some(&secret.unwrap()),
        "dev@example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "unauthorized_client");
    // The authorize endpoint accepts the new redirect URI and refuses the old one.
    let q = |uri: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", uri)
            .finish()
    };
    let r = b.get(&format!("/oauth/authorize/?{}", q(CB))).await;
    assert_eq!(r.status, 400);
    r.has("Mismatching redirect URI.");
    let r = b
        .get(&format!(
            "/oauth/authorize/?{}",
            q("https://new.example.com/cb")
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.has("Viewer 2</strong> wants to access your account")
        .has("read");
}

#[tokio::test]
async fn rotating_a_secret_with_the_default_overlap_stops_the_old_one_at_once() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let (client_id, old) = create_app(&mut b, "Viewer", "confidential", &["password"]).await;
    let old = old.unwrap();
    let confirm = b.get(&format!("/dashboard/apps/{client_id}/rotate")).await;
    confirm
        .ok()
        .has("Rotate the secret of Viewer?")
        .has("stops working immediately")
        .has(&format!("action=\"/dashboard/apps/{client_id}/rotate\""))
        .has("name=\"csrf_token\"");
    let r = b
        .post_csrf(&format!("/dashboard/apps/{client_id}/rotate"), &[])
        .await;
    r.ok()
        .has("New secret for Viewer")
        .has("The previous secret no longer works.");
    let new = input_value(&r.body, "client-secret");
    assert_ne!(new, old);
    let r = password_grant(&app, &client_id, Some(&old), "dev@example.com", PASSWORD).await;
    assert_eq!(r.status(), 401);
    let r = password_grant(&app, &client_id, Some(&new), "dev@example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_rotated_secret_keeps_working_for_the_configured_overlap() {
    let app = spawn_app_with(|c| c.client_secret_overlap_secs = 3600).await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let (client_id, old) = create_app(&mut b, "Viewer", "confidential", &["password"]).await;
    let old = old.unwrap();
    b.get(&format!("/dashboard/apps/{client_id}/rotate"))
        .await
        .ok()
        .has("keeps working for 1 hour");
    let r = b
        .post_csrf(&format!("/dashboard/apps/{client_id}/rotate"), &[])
        .await;
    r.ok().has("The previous secret keeps working until");
    let new = input_value(&r.body, "client-secret");
    b.get(&format!("/dashboard/apps/{client_id}/"))
        .await
        .ok()
        .has("The previous secret still works until");
    for s in [&old, &new] {
        let r = password_grant(&app, &client_id, Some(s), "dev@example.com", PASSWORD).await;
        assert_eq!(r.status(), 200);
    }
    // Introspection authenticates clients the same way.
    let r = app
        .http
        .post(app.url("/oauth/introspect"))
        .basic_auth(&client_id, Some(&old))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.clock.advance(3600);
    b.sign_in("dev@example.com", PASSWORD).await;
    let r = password_grant(&app, &client_id, Some(&old), "dev@example.com", PASSWORD).await;
    assert_eq!(r.status(), 401);
    let r = password_grant(&app, &client_id, Some(&new), "dev@example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    b.get(&format!("/dashboard/apps/{client_id}/"))
        .await
        .ok()
        .lacks("The previous secret still works");
    // A second rotation replaces the kept secret: only the latest previous one overlaps.
    let r = b
        .post_csrf(&format!("/dashboard/apps/{client_id}/rotate"), &[])
        .await;
    let newest = input_value(&r.body, "client-secret");
    let r = b
        .post_csrf(&format!("/dashboard/apps/{client_id}/rotate"), &[])
        .await;
    let last = input_value(&r.body, "client-secret");
    for (s, status) in [(&old, 401), (&new, 401), (&newest, 200), (&last, 200)] {
        let r = password_grant(&app, &client_id, Some(s), "dev@example.com", PASSWORD).await;
        assert_eq!(r.status(), status);
    }
}

#[tokio::test]
async fn deleting_an_app_kills_its_tokens() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let (client_id, secret) = create_app(
        &mut b,
        "Viewer",
        "confidential",
        &["password", "refresh_token"],
    )
    .await;
    let secret = secret.unwrap();
    let t: Value = password_grant(&app, &client_id, Some(&secret), "dev@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(app.get_bearer("/v1/me/", access).await.status(), 200);
    let confirm = b.get(&format!("/dashboard/apps/{client_id}/delete")).await;
    confirm
        .ok()
        .has("Delete Viewer?")
        .has("cannot be undone")
        .has("id=\"cancel\"")
        .has(&format!("action=\"/dashboard/apps/{client_id}/delete\""));
    // The GET changed nothing.
    assert_eq!(app.get_bearer("/v1/me/", access).await.status(), 200);
    let r = b
        .post_csrf(&format!("/dashboard/apps/{client_id}/delete"), &[])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/dashboard/apps/?notice=app-deleted");
    b.get(&r.location())
        .await
        .ok()
        .has("Application deleted.")
        .has("No applications yet");
    let r = app.get_bearer("/v1/me/", access).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let r = app
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        b.get(&format!("/dashboard/apps/{client_id}/")).await.status,
        404
    );
}

// ---- personal access tokens

#[tokio::test]
async fn a_pat_is_shown_once_works_and_a_revoked_pat_is_401() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    b.get("/dashboard/tokens/")
        .await
        .ok()
        .has("No access tokens");
    let form = b.get("/dashboard/tokens/new").await;
    form.ok().has("Never").has("name=\"csrf_token\"");
    let token = create_pat(&mut b, "backup script", &["read"], "").await;
    assert!(token.starts_with("cgpat_"));
    let r = pat_get(&app, "/v1/me/", &token).await;
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["email"], "dev@example.com");
    // Listed with name, scopes, created, last used and a short prefix — never the token.
    let list = b.get("/dashboard/tokens/").await;
    list.ok()
        .has("backup script")
        .has(&format!("{}…", &token[..10]))
        .has("just now")
        .lacks(&token);
    let uid = user_id(&app, "dev@example.com").await;
    let id = pat_id(&app, uid, "backup script").await;
    let confirm = b.get(&format!("/dashboard/tokens/{id}/revoke")).await;
    confirm
        .ok()
        .has("Revoke the token “backup script”?")
        .has(&format!("{}…", &token[..10]));
    assert_eq!(pat_get(&app, "/v1/me/", &token).await.status(), 200);
    let r = b
        .post_csrf(&format!("/dashboard/tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/dashboard/tokens/?notice=token-revoked");
    b.get(&r.location())
        .await
        .ok()
        .has("Token revoked.")
        .lacks("backup script");
    let r = pat_get(&app, "/v1/me/", &token).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"Bearer realm="api", error="invalid_token""#
    );
    // Revoking twice: not found.
    assert_eq!(
        b.post_csrf(&format!("/dashboard/tokens/{id}/revoke"), &[])
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn pat_form_errors_are_shown_beside_their_field() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let r = b
        .post_csrf("/dashboard/tokens/new", &[("name", ""), ("scope", "read")])
        .await;
    assert_eq!(r.status, 400);
    assert!(r.field_error("name").contains("1-100"));
    let r = b.post_csrf("/dashboard/tokens/new", &[("name", "x")]).await;
    assert_eq!(r.status, 400);
    assert!(r.field_error("scope").contains("at least one scope"));
    r.has("value=\"x\"");
    let r = b
        .post_csrf(
            "/dashboard/tokens/new",
            &[("name", "x"), ("scope", "read"), ("expires_in_days", "0")],
        )
        .await;
    assert_eq!(r.status, 400);
    r.field_error("expires");
    let r = b
        .post_csrf(
            "/dashboard/tokens/new",
            &[
                ("name", "x"),
                ("scope", "read"),
                ("expires_in_days", "soon"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    r.field_error("expires");
    assert!(app
        .core
        .my_pats(user_id(&app, "dev@example.com").await)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn an_expired_pat_is_401_and_by_default_a_pat_never_expires() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let week = create_pat(&mut b, "week", &["read"], "7").await;
    let forever = create_pat(&mut b, "forever", &["read"], "").await;
    let uid = user_id(&app, "dev@example.com").await;
    let pats = app.core.my_pats(uid).await.unwrap();
    let now = app.clock_now();
    assert_eq!(
        pats.iter().find(|p| p.name == "week").unwrap().expires_at,
        Some(now + 7 * 86_400)
    );
    assert_eq!(
        pats.iter()
            .find(|p| p.name == "forever")
            .unwrap()
            .expires_at,
        None
    );
    b.get("/dashboard/tokens/")
        .await
        .ok()
        .has("in 7 days")
        .has("Never");
    assert_eq!(pat_get(&app, "/v1/me/", &week).await.status(), 200);
    app.clock.advance(7 * 86_400 - 1);
    assert_eq!(pat_get(&app, "/v1/me/", &week).await.status(), 200);
    app.clock.advance(1);
    let r = pat_get(&app, "/v1/me/", &week).await;
    assert_eq!(r.status(), 401);
    b.sign_in("dev@example.com", PASSWORD).await;
    b.get("/dashboard/tokens/").await.ok().has("expired");
    // Ten years later the default token still works.
    app.clock.advance(3650 * 86_400);
    assert_eq!(pat_get(&app, "/v1/me/", &forever).await.status(), 200);
}

#[tokio::test]
async fn pat_last_used_is_written_at_most_once_a_minute() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let token = create_pat(&mut b, "t", &["read"], "").await;
    let uid = user_id(&app, "dev@example.com").await;
    let last_used = || async { app.core.my_pats(uid).await.unwrap()[0].last_used_at };
    assert_eq!(last_used().await, None);
    b.get("/dashboard/tokens/").await.ok().has("Never used");
    let t0 = app.clock_now();
    assert_eq!(pat_get(&app, "/v1/me/", &token).await.status(), 200);
    assert_eq!(last_used().await, Some(t0));
    app.clock.advance(59);
    assert_eq!(pat_get(&app, "/v1/me/", &token).await.status(), 200);
    assert_eq!(last_used().await, Some(t0), "written again within a minute");
    app.clock.advance(1);
    assert_eq!(pat_get(&app, "/v1/me/", &token).await.status(), 200);
    assert_eq!(last_used().await, Some(t0 + 60));
    app.clock.advance(120);
    b.sign_in("dev@example.com", PASSWORD).await;
    b.get("/dashboard/tokens/").await.ok().has("2 minutes ago");
}

#[tokio::test]
async fn the_pat_scheme_works_on_every_resource_route() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let rw = create_pat(&mut b, "rw", &["read", "write"], "").await;
    let ro = create_pat(&mut b, "ro", &["read"], "").await;
    let send = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let mut r = app
            .http
            .request(method, app.url(path))
            .header("authorization", format!("PersonalAccessToken {token}"));
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send()
    };
    // Scheme names are case-insensitive (RFC 9110 §11.1).
    let r = app
        .http
        .get(app.url("/v1/me/"))
        .header("authorization", format!("personalaccesstoken {rw}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = send(
        reqwest::Method::POST,
        "/v1/cameras/",
        &rw,
        Some(json!({"name": "Porch"})),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let cam: Value = r.json().await.unwrap();
    let cam_path = format!("/v1/cameras/{}/", cam["id"]);
    for (method, path, token, body, status) in [
        (reqwest::Method::GET, "/v1/me/", &ro, None, 200),
        (reqwest::Method::GET, "/v1/cameras/", &ro, None, 200),
        (reqwest::Method::GET, cam_path.as_str(), &ro, None, 200),
        (
            reqwest::Method::PUT,
            cam_path.as_str(),
            &ro,
            Some(json!({"name": "x"})),
            403,
        ),
        (
            reqwest::Method::POST,
            "/v1/cameras/",
            &ro,
            Some(json!({"name": "x"})),
            403,
        ),
        (
            reqwest::Method::PUT,
            cam_path.as_str(),
            &rw,
            Some(json!({"name": "Front"})),
            200,
        ),
        (
            reqwest::Method::GET,
            "/rest/v2.0/users/self",
            &ro,
            None,
            200,
        ),
        (reqwest::Method::GET, "/rest/v2.0/cameras", &ro, None, 200),
    ] {
        let r = send(method.clone(), path, token, body).await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
    }
    // Revoke both in the dashboard: every route answers 401 with invalid_token.
    let uid = user_id(&app, "dev@example.com").await;
    for name in ["rw", "ro"] {
        let id = pat_id(&app, uid, name).await;
        assert_eq!(
            b.post_csrf(&format!("/dashboard/tokens/{id}/revoke"), &[])
                .await
                .status,
            303
        );
    }
    for (method, path) in [
        (reqwest::Method::GET, "/v1/me/"),
        (reqwest::Method::GET, "/v1/cameras/"),
        (reqwest::Method::GET, cam_path.as_str()),
        (reqwest::Method::DELETE, cam_path.as_str()),
        (reqwest::Method::DELETE, "/v1/me/"),
        (reqwest::Method::GET, "/rest/v2.0/users/self"),
        (reqwest::Method::GET, "/rest/v2.0/cameras"),
        (
            reqwest::Method::DELETE,
            "/rest/v2.0/users/self/tokens/current",
        ),
    ] {
        let r = send(method.clone(), path, &rw, None).await.unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
    }
}

#[tokio::test]
async fn camgate_pat_add_tokens_show_up_and_can_be_revoked_on_the_dashboard() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_camgate"))
        .env_remove("CAMGATE_CONFIG")
        .env("CAMGATE_LOG", "warn")
        .args([
            "--database-url",
            &app.db.url,
            "pat",
            "add",
            "--user",
            "dev@example.com",
            "--name",
            "from the cli",
            "--scope",
            "read",
            "--expires-in-days",
            "30",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = v["token"].as_str().unwrap().to_string();
    assert_eq!(pat_get(&app, "/v1/me/", &token).await.status(), 200);
    b.get("/dashboard/tokens/")
        .await
        .ok()
        .has("from the cli")
        .has(&format!("{}…", &token[..10]))
        .lacks(&token);
    let id = v["id"].as_i64().unwrap();
    assert_eq!(
        b.post_csrf(&format!("/dashboard/tokens/{id}/revoke"), &[])
            .await
            .status,
        303
    );
    assert_eq!(pat_get(&app, "/v1/me/", &token).await.status(), 401);
}

// ---- isolation between users

#[tokio::test]
async fn another_users_apps_tokens_and_cameras_are_invisible_and_unchangeable() {
    let app = spawn_app().await;
    let mut alice = signed_in(&app, "alice@example.com").await;
    let (client_id, secret) =
        create_app(&mut alice, "Alice App", "confidential", &["password"]).await;
    let secret = secret.unwrap();
    let pat = create_pat(&mut alice, "alice token", &["read", "write"], "").await;
    let alice_id = user_id(&app, "alice@example.com").await;
    let pid = pat_id(&app, alice_id, "alice token").await;
    let r = app
        .http
        .post(app.url("/v1/cameras/"))
        .header("authorization", format!("PersonalAccessToken {pat}"))
        .json(&json!({"name": "Alice Cam"}))
        .send()
        .await
        .unwrap();
    let cam_id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    let mut bob = signed_in(&app, "bob@example.com").await;
    // Bob's lists do not show Alice's things.
    bob.get("/dashboard/apps/")
        .await
        .ok()
        .has("No applications yet")
        .lacks("Alice App");
    bob.get("/dashboard/tokens/")
        .await
        .ok()
        .has("No access tokens")
        .lacks("alice token");
    bob.get("/dashboard/cameras/")
        .await
        .ok()
        .has("No cameras yet")
        .lacks("Alice Cam");
    bob.get("/dashboard/authorized/")
        .await
        .ok()
        .lacks("Alice App");
    // Every page and action on them is 404.
    for path in [
        format!("/dashboard/apps/{client_id}/"),
        format!("/dashboard/apps/{client_id}/edit"),
        format!("/dashboard/apps/{client_id}/rotate"),
        format!("/dashboard/apps/{client_id}/delete"),
        format!("/dashboard/tokens/{pid}/revoke"),
        format!("/dashboard/cameras/{cam_id}/edit"),
        format!("/dashboard/cameras/{cam_id}/delete"),
        format!("/dashboard/authorized/{client_id}/revoke"),
    ] {
        let r = bob.get(&path).await;
        assert_eq!(r.status, 404, "GET {path}");
        r.lacks("Alice App").lacks("Alice Cam");
        if path.ends_with('/') {
            // The application page is GET only.
            continue;
        }
        let r = bob
            .post_csrf(
                &path,
                &[
                    ("name", "pwned"),
                    ("redirect_uris", "https://evil.example/cb"),
                    ("grants", "password"),
                    ("scopes", "read"),
                    ("profile", "angelcam"),
                    ("type", "h264"),
                    ("status", "online"),
                ],
            )
            .await;
        assert_eq!(r.status, 404, "POST {path}");
    }
    // Alice's things are untouched and still work.
    let c = app.core.my_app(alice_id, &client_id).await.unwrap().client;
    assert_eq!(c.name, "Alice App");
    assert_eq!(c.redirect_uris, vec![CB]);
    let r = password_grant(
        &app,
        &client_id,
        Some(&secret),
        "alice@example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(pat_get(&app, "/v1/me/", &pat).await.status(), 200);
    assert_eq!(
        app.core.camera(alice_id, cam_id).await.unwrap().fields.name,
        "Alice Cam"
    );
    // Bob's own camera with Alice's id does not exist for him through the API either.
    let bob_pat = create_pat(&mut bob, "bob", &["read"], "").await;
    assert_eq!(
        pat_get(&app, &format!("/v1/cameras/{cam_id}/"), &bob_pat)
            .await
            .status(),
        404
    );
}

// ---- authorized applications

/// Runs the authorization-code flow for a browser already signed in and approves.
async fn approve(b: &mut Browser<'_>, client_id: &str, scope: &str) -> String {
    let verifier = format!(
        "{}-{}",
        "v".repeat(30),
        camgate_core::secret::generate_client_id()
    );
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", CB)
        .append_pair("scope", scope)
        .append_pair("code_challenge", &s256_challenge(&verifier))
        .append_pair("code_challenge_method", "S256")
        .finish();
    let page = b.get(&format!("/oauth/authorize/?{q}")).await;
    let r = b.decide(&page, "approve").await;
    assert_eq!(r.status, 303);
    let loc = url::Url::parse(&r.location()).unwrap();
    let code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    let t = b
        .app
        .token_form(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(t.status(), 200);
    let t: Value = t.json().await.unwrap();
    t["refresh_token"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn authorized_apps_are_listed_and_revoking_one_ends_its_consent_and_tokens() {
    let app = spawn_app().await;
    let mut dev = signed_in(&app, "dev@example.com").await;
    let (viewer, _) = create_app(
        &mut dev,
        "Viewer",
        "public",
        &["authorization_code", "refresh_token"],
    )
    .await;
    let (legacy, _) =
        create_app(&mut dev, "Legacy", "public", &["password", "refresh_token"]).await;
    let mut b = signed_in(&app, "user@example.com").await;
    b.get("/dashboard/authorized/")
        .await
        .ok()
        .has("No authorized applications");
    let refresh = approve(&mut b, &viewer, "read").await;
    let legacy_tokens: Value = password_grant(&app, &legacy, None, "user@example.com", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let list = b.get("/dashboard/authorized/").await;
    list.ok()
        .has("Viewer")
        .has("Legacy")
        .has("Signed in with password")
        .has("just now");
    // Revoke Viewer: confirmation, then its consent and tokens are gone.
    let confirm = b
        .get(&format!("/dashboard/authorized/{viewer}/revoke"))
        .await;
    confirm.ok().has("Revoke access for Viewer?");
    let r = b
        .post_csrf(&format!("/dashboard/authorized/{viewer}/revoke"), &[])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/dashboard/authorized/?notice=app-revoked");
    b.get(&r.location())
        .await
        .ok()
        .has("Access revoked.")
        .lacks(">Viewer<")
        .has("Legacy");
    let r = app
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &viewer),
            ("refresh_token", &refresh),
        ])
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // The approval screen is shown again next time.
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &viewer)
        .append_pair("redirect_uri", CB)
        .append_pair("scope", "read")
        .append_pair("code_challenge", &s256_challenge(&"x".repeat(43)))
        .append_pair("code_challenge_method", "S256")
        .finish();
    b.get(&format!("/oauth/authorize/?{q}"))
        .await
        .ok()
        .has("Viewer</strong> wants to access your account");
    // Revoke Legacy (no consent, only tokens): its access token dies.
    let access = legacy_tokens["access_token"].as_str().unwrap();
    assert_eq!(app.get_bearer("/v1/me/", access).await.status(), 200);
    assert_eq!(
        b.post_csrf(&format!("/dashboard/authorized/{legacy}/revoke"), &[])
            .await
            .status,
        303
    );
    assert_eq!(app.get_bearer("/v1/me/", access).await.status(), 401);
    b.get("/dashboard/authorized/")
        .await
        .ok()
        .has("No authorized applications");
    // Nothing left to revoke: 404.
    assert_eq!(
        b.post_csrf(&format!("/dashboard/authorized/{legacy}/revoke"), &[])
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn revoking_an_app_closes_its_unused_codes() {
    let app = spawn_app().await;
    let mut dev = signed_in(&app, "dev@example.com").await;
    let (viewer, _) = create_app(&mut dev, "Viewer", "public", &["authorization_code"]).await;
    let mut b = signed_in(&app, "user@example.com").await;
    approve(&mut b, &viewer, "read").await;
    // A second code, issued silently (consent remembered) but not yet exchanged.
    let verifier = "w".repeat(43);
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &viewer)
        .append_pair("redirect_uri", CB)
        .append_pair("scope", "read")
        .append_pair("code_challenge", &s256_challenge(&verifier))
        .append_pair("code_challenge_method", "S256")
        .finish();
    let r = b.get(&format!("/oauth/authorize/?{q}")).await;
    assert_eq!(r.status, 302);
    let loc = url::Url::parse(&r.location()).unwrap();
    let code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    assert_eq!(
        b.post_csrf(&format!("/dashboard/authorized/{viewer}/revoke"), &[])
            .await
            .status,
        303
    );
    let r = app
        .token_form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &viewer),
            ("code", &code),
            ("redirect_uri", CB),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

// ---- cameras

#[tokio::test]
async fn cameras_are_managed_through_the_same_core_functions_as_the_api() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let pat = create_pat(&mut b, "api", &["read"], "").await;
    b.get("/dashboard/cameras/")
        .await
        .ok()
        .has("No cameras yet");
    b.get("/dashboard/cameras/new")
        .await
        .ok()
        .has("Add a camera");
    let r = b
        .post_csrf(
            "/dashboard/cameras/new",
            &[
                ("name", "Front door"),
                ("type", "h265"),
                ("status", "online"),
                ("stream_format_0", "hls"),
                ("stream_url_0", "https://cams.example.com/front.m3u8"),
                ("stream_format_1", ""),
                ("stream_url_1", ""),
                ("snapshot", "https://cams.example.com/front.jpg"),
                ("description", "Above the door"),
                ("tags", "outdoor, entrance,"),
                ("city", "Brno"),
                ("country", "CZ"),
                ("is_public", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/dashboard/cameras/?notice=camera-added");
    b.get(&r.location())
        .await
        .ok()
        .has("Camera added.")
        .has("Front door")
        .has("Brno, CZ");
    // The API sees exactly what the form said.
    let list: Value = pat_get(&app, "/v1/cameras/", &pat)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 1);
    let cam = &list["results"][0];
    assert_eq!(cam["name"], "Front door");
    assert_eq!(cam["type"], "h265");
    assert_eq!(cam["status"], "online");
    assert_eq!(
        unsigned(&cam["streams"]),
        json!([{"format": "hls", "url": "https://cams.example.com/front.m3u8"}])
    );
    assert_eq!(
        unsigned(&cam["snapshot"])["url"],
        "https://cams.example.com/front.jpg"
    );
    assert_eq!(cam["description"], "Above the door");
    assert_eq!(cam["tags"], json!(["outdoor", "entrance"]));
    assert_eq!(cam["is_public"], true);
    let id = cam["id"].as_i64().unwrap();
    // The edit form is filled in; invalid input is refused beside its field and nothing changes.
    let edit = b.get(&format!("/dashboard/cameras/{id}/edit")).await;
    edit.ok()
        .has("value=\"Front door\"")
        .has("https://cams.example.com/front.m3u8")
        .has("value=\"outdoor, entrance\"");
    let path = format!("/dashboard/cameras/{id}/edit");
    let bad_cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("name", " "), ("type", "h264"), ("status", "online")],
            "name",
        ),
        (
            vec![("name", "Cam"), ("type", "vp9"), ("status", "online")],
            "type",
        ),
        (
            vec![("name", "Cam"), ("type", "h264"), ("status", "dead")],
            "status",
        ),
        (
            vec![
                ("name", "Cam"),
                ("type", "h264"),
                ("status", "online"),
                ("stream_format_0", "hls"),
                ("stream_url_0", "not a url"),
            ],
            "streams",
        ),
        (
            vec![
                ("name", "Cam"),
                ("type", "h264"),
                ("status", "online"),
                ("stream_format_0", ""),
                ("stream_url_0", "https://x.example/s"),
            ],
            "streams",
        ),
        (
            vec![
                ("name", "Cam"),
                ("type", "h264"),
                ("status", "online"),
                ("snapshot", "javascript:alert(1)"),
            ],
            "snapshot",
        ),
    ];
    for (form, field) in bad_cases {
        let r = b.post_csrf(&path, &form).await;
        assert_eq!(r.status, 400, "{field}: {}", r.body);
        r.field_error(field);
    }
    let r = b
        .post_csrf(
            "/dashboard/cameras/new",
            &[("name", ""), ("type", "h264"), ("status", "online")],
        )
        .await;
    assert_eq!(r.status, 400);
    r.field_error("name");
    let unchanged: Value = pat_get(&app, &format!("/v1/cameras/{id}/"), &pat)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["name"], "Front door");
    let r = b
        .post_csrf(
            &path,
            &[
                ("name", "Back door"),
                ("type", "mjpeg"),
                ("status", "offline"),
                ("stream_format_0", "mjpeg"),
                ("stream_url_0", "http://10.0.0.2/video"),
                ("snapshot", "https://cams.example.com/front.jpg"),
                ("tags", ""),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/dashboard/cameras/?notice=camera-saved");
    let cam: Value = pat_get(&app, &format!("/v1/cameras/{id}/"), &pat)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cam["name"], "Back door");
    assert_eq!(cam["type"], "mjpeg");
    assert_eq!(cam["status"], "offline");
    assert_eq!(cam["tags"], json!([]));
    assert_eq!(cam["description"], Value::Null);
    assert_eq!(cam["is_public"], false);
    assert_eq!(
        cam["snapshot"]["created_at"],
        unchanged["snapshot"]["created_at"]
    );
    // A camera created through the API is editable here, and deletion asks first.
    let confirm = b.get(&format!("/dashboard/cameras/{id}/delete")).await;
    confirm.ok().has("Delete the camera “Back door”?");
    let r = b
        .post_csrf(&format!("/dashboard/cameras/{id}/delete"), &[])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/dashboard/cameras/?notice=camera-deleted");
    assert_eq!(
        pat_get(&app, &format!("/v1/cameras/{id}/"), &pat)
            .await
            .status(),
        404
    );
    b.get("/dashboard/cameras/")
        .await
        .ok()
        .has("No cameras yet");
}

#[tokio::test]
async fn the_camera_list_is_paginated() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let uid = user_id(&app, "dev@example.com").await;
    for i in 0..25 {
        app.core
            .create_camera(
                uid,
                camgate_core::model::CameraFields::named(format!("Cam {i:02}")),
            )
            .await
            .unwrap();
    }
    let first = b.get("/dashboard/cameras/").await;
    first
        .ok()
        .has("1–20 of 25")
        .has("Cam 19")
        .lacks("Cam 20")
        .has("?offset=20");
    b.get("/dashboard/cameras/?offset=20")
        .await
        .ok()
        .has("21–25 of 25")
        .has("Cam 24")
        .lacks("Cam 19<")
        .has("?offset=0");
}

// ---- account

#[tokio::test]
async fn changing_the_password_ends_other_sessions_and_every_token() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let mut other = Browser::new(&app);
    assert_eq!(other.sign_in("dev@example.com", PASSWORD).await.status, 303);
    let pat = create_pat(&mut b, "t", &["read"], "").await;
    let client = app.public_client("angelcam").await;
    let bearer = app
        .password_token(&client, "dev@example.com", PASSWORD)
        .await;
    let bearer = bearer["access_token"].as_str().unwrap();
    let page = b.get("/dashboard/account/").await;
    page.ok()
        .has("Change password")
        .has("dev@example.com")
        .has("Sign out everywhere");
    let new = "a much longer new password";
    let path = "/dashboard/account/password";
    let cases: Vec<FormCase> = vec![
        (
            vec![
                ("current_password", "wrong"),
                ("new_password", new),
                ("confirm_password", new),
            ],
            "current_password",
            "not correct",
        ),
        (
            vec![
                ("current_password", ""),
                ("new_password", new),
                ("confirm_password", new),
            ],
            "current_password",
            "current password",
        ),
        (
            vec![
                ("current_password", PASSWORD),
                ("new_password", new),
                ("confirm_password", "different"),
            ],
            "confirm_password",
            "do not match",
        ),
        (
            vec![
                ("current_password", PASSWORD),
                ("new_password", "short"),
                ("confirm_password", "short"),
            ],
            "new_password",
            "12 characters",
        ),
    ];
    for (form, field, text) in cases {
        let r = b.post_csrf(path, &form).await;
        assert_eq!(r.status, 400);
        let e = r.field_error(field);
        assert!(e.contains(text), "{e}");
        // Passwords are never echoed back.
        r.lacks(PASSWORD).lacks(new);
    }
    assert_eq!(pat_get(&app, "/v1/me/", &pat).await.status(), 200);
    let r = b
        .post_csrf(
            path,
            &[
                ("current_password", PASSWORD),
                ("new_password", new),
                ("confirm_password", new),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/dashboard/account/?notice=password-changed");
    // This browser got a fresh session and stays in.
    b.get(&r.location()).await.ok().has("Password changed.");
    // The other session, the PAT and the access token are over.
    let r = other.get("/dashboard/").await;
    assert_eq!(r.status, 303);
    assert!(r.location().starts_with("/login?next="));
    assert_eq!(pat_get(&app, "/v1/me/", &pat).await.status(), 401);
    assert_eq!(app.get_bearer("/v1/me/", bearer).await.status(), 401);
    // The old password no longer signs in; the new one does.
    let mut again = Browser::new(&app);
    assert_eq!(again.sign_in("dev@example.com", PASSWORD).await.status, 200);
    assert_eq!(again.sign_in("dev@example.com", new).await.status, 303);
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let mut other = Browser::new(&app);
    other.sign_in("dev@example.com", PASSWORD).await;
    let pat = create_pat(&mut b, "t", &["read"], "").await;
    let confirm = b.get("/dashboard/account/sign-out-everywhere").await;
    confirm
        .ok()
        .has("Sign out everywhere?")
        .has("this one included");
    let r = b
        .post_csrf("/dashboard/account/sign-out-everywhere", &[])
        .await;
    r.ok()
        .has("You are signed out everywhere")
        .has("All 2 of your sessions have ended.");
    assert!(r
        .headers
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with("__Host-camgate_session=;")));
    for br in [&mut b, &mut other] {
        let r = br.get("/dashboard/").await;
        assert_eq!(r.status, 303);
    }
    // API tokens are not sessions: they keep working.
    assert_eq!(pat_get(&app, "/v1/me/", &pat).await.status(), 200);
}

// ---- administration

#[tokio::test]
async fn admin_pages_are_for_administrators_only() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    b.get("/dashboard/")
        .await
        .ok()
        .lacks("/dashboard/admin/users/");
    let victim = app.create_user("victim@example.com", PASSWORD).await;
    for path in [
        "/dashboard/admin/users/".to_string(),
        format!("/dashboard/admin/users/{}/disable", victim.id),
        format!("/dashboard/admin/users/{}/enable", victim.id),
    ] {
        assert_eq!(b.get(&path).await.status, 404, "{path}");
        assert_eq!(
            b.post_csrf(
                &path,
                &[
                    ("email", "x@example.com"),
                    ("password", "long enough password")
                ]
            )
            .await
            .status,
            404,
            "{path}"
        );
    }
    assert!(app
        .core
        .user_by_email("x@example.com")
        .await
        .unwrap()
        .is_none());
    assert!(
        !app.core
            .user_by_email("victim@example.com")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
}

async fn admin_browser(app: &TestApp) -> Browser<'_> {
    app.core
        .create_user(camgate_core::users::UserInput {
            email: "admin@example.com".into(),
            password: PASSWORD.into(),
            first_name: "Ada".into(),
            last_name: "Admin".into(),
            phone: String::new(),
            is_admin: true,
            email_verified: false,
        })
        .await
        .unwrap();
    let mut b = Browser::new(app);
    assert_eq!(b.sign_in("admin@example.com", PASSWORD).await.status, 303);
    b
}

#[tokio::test]
async fn an_admin_creates_users_with_errors_beside_their_field() {
    let app = spawn_app().await;
    let mut admin = admin_browser(&app).await;
    let page = admin.get("/dashboard/admin/users/").await;
    page.ok()
        .has("admin@example.com")
        .has("Create a user")
        .has("/dashboard/admin/users/")
        .has(">You<");
    let cases: Vec<FormCase> = vec![
        (
            vec![
                ("email", "not-an-email"),
                ("password", "long enough password"),
            ],
            "email",
            "valid email",
        ),
        (
            vec![("email", "new@example.com"), ("password", "short")],
            "password",
            "12 characters",
        ),
        (
            vec![
                ("email", "ADMIN@example.com"),
                ("password", "long enough password"),
            ],
            "email",
            "already exists",
        ),
    ];
    for (form, field, text) in cases {
        let r = admin.post_csrf("/dashboard/admin/users/", &form).await;
        assert_eq!(r.status, 400);
        let e = r.field_error(field);
        assert!(e.contains(text), "{e}");
        r.lacks("long enough password");
    }
    let r = admin
        .post_csrf(
            "/dashboard/admin/users/",
            &[
                ("email", "new@example.com"),
                ("password", "long enough password"),
                ("first_name", "New"),
                ("last_name", "Person"),
                ("is_admin", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    admin
        .get(&r.location())
        .await
        .ok()
        .has("User created.")
        .has("new@example.com")
        .has("New Person");
    let u = app
        .core
        .user_by_email("new@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(u.is_admin);
    let mut b = Browser::new(&app);
    assert_eq!(
        b.sign_in("new@example.com", "long enough password")
            .await
            .status,
        303
    );
}

#[tokio::test]
async fn a_disabled_users_pat_tokens_and_sessions_stop_at_the_next_request() {
    let app = spawn_app().await;
    let mut admin = admin_browser(&app).await;
    let mut user = signed_in(&app, "user@example.com").await;
    let pat = create_pat(&mut user, "t", &["read"], "").await;
    let client = app.public_client("angelcam").await;
    let t = app
        .password_token(&client, "user@example.com", PASSWORD)
        .await;
    let bearer = t["access_token"].as_str().unwrap();
    let uid = user_id(&app, "user@example.com").await;
    assert_eq!(pat_get(&app, "/v1/me/", &pat).await.status(), 200);
    let confirm = admin
        .get(&format!("/dashboard/admin/users/{uid}/disable"))
        .await;
    confirm
        .ok()
        .has("Disable user@example.com?")
        .has("stop working");
    let r = admin
        .post_csrf(&format!("/dashboard/admin/users/{uid}/disable"), &[])
        .await;
    assert_eq!(r.status, 303);
    admin
        .get(&r.location())
        .await
        .ok()
        .has("User disabled.")
        .has("disabled");
    assert_eq!(pat_get(&app, "/v1/me/", &pat).await.status(), 401);
    assert_eq!(app.get_bearer("/v1/me/", bearer).await.status(), 401);
    let r = user.get("/dashboard/").await;
    assert_eq!(r.status, 303);
    assert!(r.location().starts_with("/login"));
    let r = app
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(r.status(), 400);
    // The user cannot sign in again either.
    assert_eq!(
        Browser::new(&app)
            .sign_in("user@example.com", PASSWORD)
            .await
            .status,
        200
    );
    // Enabled again: the PAT works again (it was never revoked).
    let r = admin
        .post_csrf(&format!("/dashboard/admin/users/{uid}/enable"), &[])
        .await;
    assert_eq!(r.status, 303);
    assert_eq!(pat_get(&app, "/v1/me/", &pat).await.status(), 200);
    // An administrator cannot disable themselves.
    let me = user_id(&app, "admin@example.com").await;
    assert_eq!(
        admin
            .post_csrf(&format!("/dashboard/admin/users/{me}/disable"), &[])
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn session_lookup_honours_the_disabled_flag() {
    // Disabled behind the dashboard's back (CLI, another node): the session still ends.
    let app = spawn_app().await;
    let mut b = signed_in(&app, "user@example.com").await;
    b.get("/dashboard/").await.ok();
    let uid = user_id(&app, "user@example.com").await;
    app.core.set_user_disabled(uid, true).await.unwrap();
    let r = b.get("/dashboard/").await;
    assert_eq!(r.status, 303);
    assert!(r.location().starts_with("/login"));
}

// ---- page quality

#[tokio::test]
async fn user_text_is_escaped_on_every_page() {
    let app = spawn_app().await;
    let mut b = signed_in(&app, "dev@example.com").await;
    let evil = "<script>alert(1)</script>";
    let (client_id, _) = create_app(&mut b, evil, "confidential", &["password"]).await;
    create_pat(&mut b, evil, &["read"], "").await;
    let r = b
        .post_csrf(
            "/dashboard/cameras/new",
            &[
                ("name", evil),
                ("type", "h264"),
                ("status", "online"),
                ("city", evil),
            ],
        )
        .await;
    assert_eq!(r.status, 303);
    let uid = user_id(&app, "dev@example.com").await;
    let pid = pat_id(&app, uid, evil).await;
    for path in [
        "/dashboard/apps/".to_string(),
        format!("/dashboard/apps/{client_id}/"),
        format!("/dashboard/apps/{client_id}/edit"),
        format!("/dashboard/apps/{client_id}/delete"),
        "/dashboard/tokens/".to_string(),
        format!("/dashboard/tokens/{pid}/revoke"),
        "/dashboard/cameras/".to_string(),
    ] {
        let r = b.get(&path).await;
        r.ok().lacks(evil).has("&#60;script&#62;alert(1)");
    }
    // A notice key is looked up, never reflected.
    b.get("/dashboard/apps/?notice=%3Cb%3Ehi")
        .await
        .ok()
        .lacks("<b>hi")
        .lacks("&lt;b&gt;hi");
}
