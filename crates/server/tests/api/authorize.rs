//! Black-box tests of the authorization-code grant: the authorization endpoint, the
//! login and approval pages, sessions, PKCE, the code exchange and login throttling. Each test
//! runs the real app on port 0 with its own database (SQLite, or PostgreSQL with
//! `CAMGATE_TEST_DATABASE=postgres`), keeps cookies by hand and never follows redirects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use crate::common::session::*;
use crate::common::*;
use camgate_core::authorize::s256_challenge;
use camgate_core::model::{ClientKind, GrantType};
use camgate_core::scope::ScopeSet;
use serde_json::Value;

const CB: &str = "https://app.example.com/callback";

/// The authorization flow as a browser walks it.
impl Browser<'_> {
    /// GET /oauth/authorize/ with these parameters.
    async fn authorize(&mut self, params: &[(&str, &str)]) -> Resp {
        let q = encode(params);
        self.get(&format!("/oauth/authorize/?{q}")).await
    }

    /// Runs authorize → (login) → (approval) and returns the final redirect to the client.
    async fn authorize_and_approve(
        &mut self,
        params: &[(&str, &str)],
        email: &str,
        password: &str,
    ) -> Resp {
        let mut r = self.authorize(params).await;
        if r.status == 303 && r.location().starts_with("/login") {
            r = self.sign_in_at(&r.location(), email, password).await;
            assert_eq!(r.status, 303, "{}", r.body);
            r = self.get(&r.location()).await;
        }
        if r.status == 200 {
            r = self.decide(&r, "approve").await;
        }
        r
    }
}

/// The query parameters of a URL.
fn query(url: &str) -> HashMap<String, String> {
    let u = url::Url::parse(url).unwrap();
    u.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn verifier() -> String {
    let a = camgate_core::secret::generate(camgate_core::secret::TokenFormat::Alnum30);
    let b = camgate_core::secret::generate(camgate_core::secret::TokenFormat::Alnum30);
    format!("{a}-{b}")
}

fn assert_page_headers(r: &Resp) {
    assert_eq!(r.header("x-frame-options"), "DENY");
    let csp = r.header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    // Scripts: none, except this server's own file on the sign-in pages (passkeys); never
    // inline ones.
    let script = csp.split(';').find(|d| d.trim().starts_with("script-src"));
    assert!(
        script.is_none_or(|d| d.trim() == "script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.header("referrer-policy"), "no-referrer");
    assert_eq!(r.header("cache-control"), "no-store");
    assert!(r.header("content-type").starts_with("text/html"));
}

/// An error page: 400, the message, and never a redirect.
fn assert_error_page(r: &Resp, message: &str) {
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.headers.get("location").is_none());
    assert!(r.body.contains(message), "{}", r.body);
    assert_page_headers(r);
}

struct Fixture {
    app: TestApp,
    email: String,
}

async fn fixture() -> Fixture {
    fixture_with(|_| {}).await
}

async fn fixture_with(configure: impl FnOnce(&mut camgate_server::Config)) -> Fixture {
    let app = spawn_app_with(configure).await;
    let email = "user@example.com".to_string();
    app.create_user(&email, PASSWORD).await;
    Fixture { app, email }
}

/// A confidential client (angelcam profile) owned by a developer; returns (id, secret).
async fn confidential(app: &TestApp, redirect_uris: &[&str]) -> (String, String) {
    let owner = app.create_user("dev@example.com", PASSWORD).await;
    let mut input = client_input("Camera Viewer", ClientKind::Confidential, "angelcam");
    input.owner_id = Some(owner.id);
    input.redirect_uris = redirect_uris.iter().map(|s| s.to_string()).collect();
    let r = app.register(input).await;
    (r.client.client_id, r.secret.unwrap())
}

async fn public(app: &TestApp, redirect_uris: &[&str]) -> String {
    let mut input = client_input("Phone App", ClientKind::Public, "angelcam");
    input.redirect_uris = redirect_uris.iter().map(|s| s.to_string()).collect();
    app.register(input).await.client.client_id
}

/// Exchanges a code with an urlencoded body and client_secret in the body.
async fn exchange(
    app: &TestApp,
    client_id: &str,
    secret: Option<&str>,
    code: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", code),
    ];
    if let Some(s) = secret {
        form.push(("client_secret", s));
    }
    form.extend_from_slice(extra);
    app.token_form(&form).await
}

async fn error_of(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    (status, v["error"].as_str().unwrap().to_string())
}

// ---------------------------------------------------------------------------------------------

/// Spec 000 steps 1–2 as written: authorize, sign in, approve, exchange with `curl -F`
/// (multipart) and client_secret in the body, call `/v1/me/`.
#[tokio::test]
async fn spec_000_authorization_code_flow() {
    let f = fixture().await;
    let app = &f.app;
    let (id, secret) = confidential(app, &["https://yourapp.com/callback"]).await;
    let mut b = Browser::new(app);
    let params = [
        ("response_type", "code"),
        ("client_id", id.as_str()),
        ("redirect_uri", "https://yourapp.com/callback"),
        ("scope", "user_access"),
        ("state", "CSRF_TOKEN"),
    ];
    let r = b.authorize(&params).await;
    assert_eq!(r.status, 303);
    let login = r.location();
    assert!(login.starts_with("/login?request_id="), "{login}");
    // The request is parked server-side: none of its parameters travel to the login page.
    assert!(!login.contains("yourapp") && !login.contains("CSRF_TOKEN"));

    let page = b.get(&login).await;
    assert_eq!(page.status, 200);
    assert_page_headers(&page);
    assert!(page.body.contains("Camera Viewer"), "{}", page.body);
    assert!(page.body.contains("<label for=\"email\">"));
    assert!(page.body.contains("<label for=\"password\">"));
    // No inline script: only the server's own passkey script, by URL.
    assert!(
        page.body
            .match_indices("<script")
            .all(|(i, _)| page.body[i..].starts_with("<script src=\"/static/passkeys.js\"")),
        "{}",
        page.body
    );

    let r = b.sign_in_at(&login, &f.email, PASSWORD).await;
    assert_eq!(r.status, 303);
    let session_cookie = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-camgate_session="))
        .unwrap();
    for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(session_cookie.contains(attr), "{session_cookie}");
    }
    assert!(!session_cookie.to_lowercase().contains("domain="));

    let consent = b.get(&r.location()).await;
    assert_eq!(consent.status, 200);
    assert_page_headers(&consent);
    let csp = consent.header("content-security-policy");
    assert!(
        csp.contains("form-action 'self' https://yourapp.com"),
        "{csp}"
    );
    for text in [
        "Camera Viewer",
        "Developed by Test User (dev@example.com)",
        "Signed in as <strong>user@example.com</strong>",
        "See your profile (name, email address, phone) and your cameras",
        "Add, change and delete cameras on your account",
        ">Approve<",
        ">Deny<",
        "yourapp.com",
    ] {
        assert!(
            consent.body.contains(text),
            "missing {text:?} in {}",
            consent.body
        );
    }

    let r = b.decide(&consent, "approve").await;
    assert_eq!(r.status, 303);
    let loc = r.location();
    assert!(
        loc.starts_with("https://yourapp.com/callback?code="),
        "{loc}"
    );
    let q = query(&loc);
    assert_eq!(q["state"], "CSRF_TOKEN");
    assert_eq!(q["iss"], app.base);
    let code = q["code"].clone();
    assert!(code.len() >= 30);

    // Step 2: curl -F (multipart) with client_id and client_secret in the body.
    let form = reqwest::multipart::Form::new()
        .text("grant_type", "authorization_code")
        .text("client_id", id.clone())
        .text("client_secret", secret.clone())
        .text("code", code.clone())
        .text("redirect_uri", "https://yourapp.com/callback");
    let r = app
        .http
        .post(app.url("/oauth/token/"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 36000);
    assert_eq!(t["scope"], "read write");
    assert_eq!(t["access_token"].as_str().unwrap().len(), 30);
    assert_eq!(t["refresh_token"].as_str().unwrap().len(), 30);
    let me = app
        .get_bearer("/v1/me/", t["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["email"], "user@example.com");
}

/// Spec 004: POST /oauth/authorize, then the exchange with parameters in the query string,
/// HTTP Basic client authentication and `Accept: application/json`; the CameraManager
/// profile answers.
#[tokio::test]
async fn spec_004_cameramanager_flow() {
    let f = fixture().await;
    let app = &f.app;
    let mut input = client_input(
        "CameraManager test app",
        ClientKind::Confidential,
        "cameramanager",
    );
    input.client_id = Some("cameramanager.test".into());
    input.client_secret = Some("qwertyuiopasdfghjklzxcvbnm12345".into());
    input.redirect_uris = vec!["https://example.com/".into()];
    app.register(input).await;
    let mut b = Browser::new(app);
    b.sign_in(&f.email, PASSWORD).await;
    let r = b
        .post(
            "/oauth/authorize",
            &[
                ("scope", "write"),
                ("client_id", "cameramanager.test"),
                ("response_type", "code"),
                ("redirect_uri", "https://example.com/"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = b.decide(&r, "approve").await;
    let loc = r.location();
    assert!(loc.starts_with("https://example.com/?code="), "{loc}");
    let code = query(&loc)["code"].clone();
    let q = encode(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", "https://example.com/"),
    ]);
    let r = app
        .http
        .post(app.url(&format!("/oauth/token?{q}")))
        .basic_auth(
            "cameramanager.test",
            Some("qwertyuiopasdfghjklzxcvbnm12345"),
        )
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["expires_in"], 43199);
    assert_eq!(t["scope"], "write");
    assert!(t["refresh_token"].is_string());
}

#[tokio::test]
async fn redirect_uri_is_compared_exactly_and_never_redirected_to_when_wrong() {
    let f = fixture().await;
    let app = &f.app;
    let (id, _) = confidential(app, &["https://app.example.com:8443/callback?tenant=1"]).await;
    let mut b = Browser::new(app);
    b.sign_in(&f.email, PASSWORD).await;
    let good = "https://app.example.com:8443/callback?tenant=1";
    let r = b
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &id),
            ("redirect_uri", good),
        ])
        .await;
    assert_eq!(r.status, 200, "the registered URI itself works: {}", r.body);
    for bad in [
        "https://app.example.com:8443/callback/extra?tenant=1", // extra path
        "https://app.example.com:8443/callback?tenant=1&x=2",   // extra query
        "https://app.example.com:8444/callback?tenant=1",       // another port
        "https://app.example.com/callback?tenant=1",            // default port
        "https://APP.example.com:8443/callback?tenant=1",       // host case
        "https://app.example.com:8443/Callback?tenant=1",       // path case
        "https://user@app.example.com:8443/callback?tenant=1",  // userinfo
        "https://evil.com@app.example.com:8443/callback?tenant=1",
        "https://app.example.com:8443/callback?tenant=1#frag", // fragment
        "http://app.example.com:8443/callback?tenant=1",       // scheme
        "https://app.example.com:8443/callback?tenant=1/",
        "https://app.example.com:8443/callback?tenant=%31", // encoded differently
        "https://attacker.example/callback",
    ] {
        let r = b
            .authorize(&[
                ("response_type", "code"),
                ("client_id", &id),
                ("redirect_uri", bad),
                ("state", "s"),
            ])
            .await;
        assert_error_page(&r, "Mismatching redirect URI.");
    }
    // An unknown client, or none: an error page as well.
    let r = b
        .authorize(&[
            ("response_type", "code"),
            ("client_id", "nope"),
            ("redirect_uri", good),
        ])
        .await;
    assert_error_page(&r, "Invalid client_id");
    let r = b
        .authorize(&[("response_type", "code"), ("redirect_uri", good)])
        .await;
    assert_error_page(&r, "Missing client_id");
    // A repeated redirect_uri cannot be trusted either.
    let r = b
        .get(&format!(
            "/oauth/authorize?response_type=code&client_id={id}&redirect_uri={}&redirect_uri={}",
            url::form_urlencoded::byte_serialize(good.as_bytes()).collect::<String>(),
            url::form_urlencoded::byte_serialize(b"https://attacker.example/").collect::<String>()
        ))
        .await;
    assert_error_page(&r, "Mismatching redirect URI.");
}

#[tokio::test]
async fn redirect_uri_may_be_omitted_only_with_one_registered() {
    let f = fixture().await;
    let app = &f.app;
    let (one, secret) = confidential(app, &[CB]).await;
    let mut input = client_input("Two URIs", ClientKind::Confidential, "angelcam");
    input.redirect_uris = vec![CB.into(), "https://app.example.com/other".into()];
    let two = app.register(input).await.client.client_id;
    let mut b = Browser::new(app);
    b.sign_in(&f.email, PASSWORD).await;
    let r = b
        .authorize(&[("response_type", "code"), ("client_id", &two)])
        .await;
    assert_error_page(&r, "several");
    // One registered URI: omitted at authorize, the code goes there, and the exchange may
    // omit it too.
    let r = b
        .authorize_and_approve(
            &[("response_type", "code"), ("client_id", &one)],
            &f.email,
            PASSWORD,
        )
        .await;
    let loc = r.location();
    assert!(loc.starts_with(&format!("{CB}?code=")), "{loc}");
    let code = query(&loc)["code"].clone();
    let r = exchange(app, &one, Some(&secret), &code, &[]).await;
    assert_eq!(r.status(), 200);
    // Given at authorize: the exchange must repeat it, identically (RFC 6749 §4.1.3).
    let r = b
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &one),
            ("redirect_uri", CB),
        ])
        .await;
    let code = query(&r.location())["code"].clone();
    let (s, e) = error_of(exchange(app, &one, Some(&secret), &code, &[]).await).await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    let (s, e) = error_of(
        exchange(
            app,
            &one,
            Some(&secret),
            &code,
            &[("redirect_uri", "https://app.example.com/callback/")],
        )
        .await,
    )
    .await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    let r = exchange(app, &one, Some(&secret), &code, &[("redirect_uri", CB)]).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn registered_redirect_uris_must_be_absolute_https_or_loopback_without_fragment() {
    let app = spawn_app().await;
    for bad in [
        "http://app.example.com/cb",
        "https://app.example.com/cb#x",
        "/relative/cb",
        "https://user:pw@app.example.com/cb",
        "custom:cb",
    ] {
        let mut input = client_input("bad", ClientKind::Confidential, "angelcam");
        input.redirect_uris = vec![bad.into()];
        assert!(
            app.core.register_client(input).await.is_err(),
            "{bad} was accepted"
        );
    }
    for good in [
        "https://app.example.com/cb",
        "http://127.0.0.1:9000/cb",
        "http://localhost/cb",
        "http://[::1]:8080/cb",
    ] {
        let mut input = client_input("good", ClientKind::Confidential, "angelcam");
        input.redirect_uris = vec![good.into()];
        app.core.register_client(input).await.unwrap();
    }
}

#[tokio::test]
async fn other_errors_redirect_with_error_state_and_iss() {
    let f = fixture().await;
    let app = &f.app;
    let (conf, _) = confidential(app, &[CB]).await;
    let public_id = public(app, &[CB]).await;
    let mut input = client_input("read only", ClientKind::Confidential, "angelcam");
    input.scopes = Some(ScopeSet::READ);
    let read_only = app.register(input).await.client.client_id;
    let mut input = client_input("no code", ClientKind::Confidential, "angelcam");
    input.grants = vec![GrantType::Password];
    let no_code = app.register(input).await.client.client_id;
    let ch = s256_challenge(&verifier());
    let mut b = Browser::new(app);
    b.sign_in(&f.email, PASSWORD).await;
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("response_type", "token"), ("client_id", &conf)],
            "unsupported_response_type",
        ),
        (vec![("client_id", &conf)], "invalid_request"),
        (
            vec![
                ("response_type", "code"),
                ("client_id", &conf),
                ("scope", "admin"),
            ],
            "invalid_scope",
        ),
        (
            vec![
                ("response_type", "code"),
                ("client_id", &read_only),
                ("scope", "write"),
            ],
            "invalid_scope",
        ),
        // A public client without PKCE.
        (
            vec![("response_type", "code"), ("client_id", &public_id)],
            "invalid_request",
        ),
        // plain, or a challenge without method (which means plain), is refused.
        (
            vec![
                ("response_type", "code"),
                ("client_id", &public_id),
                ("code_challenge", &ch),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("client_id", &public_id),
                ("code_challenge", &ch),
            ],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "code"),
                ("client_id", &public_id),
                ("code_challenge", "tooshort"),
                ("code_challenge_method", "S256"),
            ],
            "invalid_request",
        ),
        (
            vec![("response_type", "code"), ("client_id", &no_code)],
            "unauthorized_client",
        ),
        (
            vec![
                ("response_type", "code"),
                ("client_id", &conf),
                ("scope", "read"),
                ("scope", "write"),
            ],
            "invalid_request",
        ),
    ];
    for (mut params, expected) in cases {
        params.push(("state", "xyz 1/2"));
        params.push(("redirect_uri", CB));
        let r = b.authorize(&params).await;
        assert_eq!(r.status, 302, "{params:?}: {}", r.body);
        let loc = r.location();
        assert!(loc.starts_with(&format!("{CB}?error=")), "{loc}");
        let q = query(&loc);
        assert_eq!(q["error"], expected, "{params:?}");
        assert!(!q["error_description"].is_empty());
        assert_eq!(q["state"], "xyz 1/2");
        assert_eq!(q["iss"], app.base);
        assert!(!q.contains_key("code"));
    }
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_state() {
    let f = fixture().await;
    let app = &f.app;
    let (id, _) = confidential(app, &[CB]).await;
    let mut b = Browser::new(app);
    b.sign_in(&f.email, PASSWORD).await;
    let page = b
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &id),
            ("state", "st4te"),
        ])
        .await;
    let r = b.decide(&page, "deny").await;
    assert_eq!(r.status, 303);
    let q = query(&r.location());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st4te");
    assert_eq!(q["iss"], app.base);
    assert!(!q.contains_key("code"));
    // Nothing was remembered: the next request asks again.
    let again = b
        .authorize(&[("response_type", "code"), ("client_id", &id)])
        .await;
    assert_eq!(again.status, 200);
    // The decision is single use.
    let r = b.decide(&page, "approve").await;
    assert_error_page(&r, "expired");
}

#[tokio::test]
async fn consent_is_remembered_and_asked_again_for_a_wider_scope() {
    let f = fixture().await;
    let app = &f.app;
    let (id, _) = confidential(app, &[CB]).await;
    let mut b = Browser::new(app);
    b.sign_in(&f.email, PASSWORD).await;
    let read = [
        ("response_type", "code"),
        ("client_id", id.as_str()),
        ("scope", "read"),
    ];
    let page = b.authorize(&read).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("See your profile"));
    assert!(!page.body.contains("Add, change and delete"));
    let r = b.decide(&page, "approve").await;
    assert!(query(&r.location()).contains_key("code"));
    // Same scope (or an alias of it): no screen, straight back with a code.
    for scope in ["read", "camera_access"] {
        let r = b
            .authorize(&[
                ("response_type", "code"),
                ("client_id", &id),
                ("scope", scope),
            ])
            .await;
        assert_eq!(r.status, 302, "{scope}: {}", r.body);
        assert!(query(&r.location()).contains_key("code"));
    }
    // A wider scope: asked again.
    let wide = [
        ("response_type", "code"),
        ("client_id", id.as_str()),
        ("scope", "read write"),
    ];
    let page = b.authorize(&wide).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Add, change and delete"));
    let r = b.decide(&page, "approve").await;
    assert!(query(&r.location()).contains_key("code"));
    // Now both are covered, and fewer scopes too.
    for scope in ["read write", "write", "read"] {
        let r = b
            .authorize(&[
                ("response_type", "code"),
                ("client_id", &id),
                ("scope", scope),
            ])
            .await;
        assert_eq!(r.status, 302, "{scope}");
    }
    // prompt=consent shows the screen anyway.
    let r = b
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &id),
            ("prompt", "consent"),
        ])
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(">Approve<"));
    // Consent is per user: another user is asked.
    app.create_user("other@example.com", PASSWORD).await;
    let mut other = Browser::new(app);
    let r = other
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &id),
            ("scope", "read"),
        ])
        .await;
    let r = other
        .sign_in_at(&r.location(), "other@example.com", PASSWORD)
        .await;
    let r = other.get(&r.location()).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains(">Approve<"));
}

#[tokio::test]
async fn prompt_none_never_shows_a_page() {
    let f = fixture().await;
    let app = &f.app;
    let (id, _) = confidential(app, &[CB]).await;
    let none = [
        ("response_type", "code"),
        ("client_id", id.as_str()),
        ("prompt", "none"),
        ("state", "n"),
    ];
    let mut b = Browser::new(app);
    let r = b.authorize(&none).await;
    assert_eq!(r.status, 302);
    let q = query(&r.location());
    assert_eq!(
        (q["error"].as_str(), q["state"].as_str()),
        ("login_required", "n")
    );
    b.sign_in(&f.email, PASSWORD).await;
    let r = b.authorize(&none).await;
    assert_eq!(r.status, 302);
    let q = query(&r.location());
    assert_eq!(q["error"], "consent_required");
    assert_eq!(q["iss"], app.base);
    let page = b
        .authorize(&[("response_type", "code"), ("client_id", &id)])
        .await;
    b.decide(&page, "approve").await;
    let r = b.authorize(&none).await;
    assert_eq!(r.status, 302);
    let q = query(&r.location());
    assert!(q.contains_key("code"), "{q:?}");
    assert_eq!(q["state"], "n");
}

/// RFC 6749 §4.1.2: a code is single use; a second use is refused and revokes every token
/// issued from it, including those descended by refresh.
#[tokio::test]
async fn code_replay_revokes_the_tokens_it_minted() {
    let f = fixture().await;
    let app = &f.app;
    let (id, secret) = confidential(app, &[CB]).await;
    let mut b = Browser::new(app);
    let r = b
        .authorize_and_approve(
            &[("response_type", "code"), ("client_id", &id)],
            &f.email,
            PASSWORD,
        )
        .await;
    let code = query(&r.location())["code"].clone();
    let r = exchange(app, &id, Some(&secret), &code, &[]).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    // One refresh: the family now has a successor pair.
    let r = app
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("refresh_token", &refresh),
        ])
        .await;
    assert_eq!(r.status(), 200);
    let t2: Value = r.json().await.unwrap();
    let access2 = t2["access_token"].as_str().unwrap().to_string();
    let refresh2 = t2["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(app.get_bearer("/v1/me/", &access2).await.status(), 200);

    let (s, e) = error_of(exchange(app, &id, Some(&secret), &code, &[]).await).await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    for tok in [&access, &access2] {
        assert_eq!(app.get_bearer("/v1/me/", tok).await.status(), 401);
    }
    let (s, e) = error_of(
        app.token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("refresh_token", &refresh2),
        ])
        .await,
    )
    .await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    // A third try is refused just the same.
    let (s, _) = error_of(exchange(app, &id, Some(&secret), &code, &[]).await).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn code_expires_and_is_bound_to_its_client() {
    let f = fixture_with(|c| c.authz.code_ttl_secs = 90).await;
    let app = &f.app;
    let (id, secret) = confidential(app, &[CB]).await;
    let mut input = client_input("Other", ClientKind::Confidential, "angelcam");
    input.redirect_uris = vec![CB.into()];
    let other = app.register(input).await;
    let (other_id, other_secret) = (other.client.client_id, other.secret.unwrap());
    let mut b = Browser::new(app);
    let params = [("response_type", "code"), ("client_id", id.as_str())];
    let r = b.authorize_and_approve(&params, &f.email, PASSWORD).await;
    let code = query(&r.location())["code"].clone();
    // Another client cannot use it; a wrong secret is invalid_client.
    let (s, e) = error_of(exchange(app, &other_id, Some(&other_secret), &code, &[]).await).await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    let (s, e) = error_of(exchange(app, &id, Some("wrong"), &code, &[]).await).await;
    assert_eq!((s, e.as_str()), (401, "invalid_client"));
    // ... and that did not burn it: the rightful client still can.
    let r = exchange(app, &id, Some(&secret), &code, &[]).await;
    assert_eq!(r.status(), 200);
    // The configured lifetime (90 s): alive at 89 s, dead at 90 s.
    let r = b.authorize(&params).await;
    let code = query(&r.location())["code"].clone();
    app.clock.advance(90);
    let (s, e) = error_of(exchange(app, &id, Some(&secret), &code, &[]).await).await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    let r = b.authorize(&params).await;
    let code = query(&r.location())["code"].clone();
    app.clock.advance(89);
    let r = exchange(app, &id, Some(&secret), &code, &[]).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn default_code_lifetime_is_sixty_seconds() {
    let f = fixture().await;
    let app = &f.app;
    let (id, secret) = confidential(app, &[CB]).await;
    let mut b = Browser::new(app);
    let params = [("response_type", "code"), ("client_id", id.as_str())];
    let r = b.authorize_and_approve(&params, &f.email, PASSWORD).await;
    let code = query(&r.location())["code"].clone();
    app.clock.advance(60);
    let (s, e) = error_of(exchange(app, &id, Some(&secret), &code, &[]).await).await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
}

#[tokio::test]
async fn pkce_wrong_missing_and_downgraded() {
    let f = fixture().await;
    let app = &f.app;
    let pub_id = public(app, &[CB]).await;
    let (conf, secret) = confidential(app, &[CB]).await;
    let v = verifier();
    let ch = s256_challenge(&v);
    let mut b = Browser::new(app);
    let pkce = [
        ("response_type", "code"),
        ("client_id", pub_id.as_str()),
        ("code_challenge", ch.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let r = b.authorize_and_approve(&pkce, &f.email, PASSWORD).await;
    let code = query(&r.location())["code"].clone();
    // Missing verifier.
    let (s, e) = error_of(exchange(app, &pub_id, None, &code, &[]).await).await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    // Wrong verifier (well-formed), and a malformed one.
    let (s, e) =
        error_of(exchange(app, &pub_id, None, &code, &[("code_verifier", &verifier())]).await)
            .await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    let (s, e) =
        error_of(exchange(app, &pub_id, None, &code, &[("code_verifier", &ch)]).await).await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    // The right one.
    let r = exchange(app, &pub_id, None, &code, &[("code_verifier", &v)]).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");

    // Downgrade: a code issued without a challenge, redeemed with a verifier (RFC 9700 §2.1.1).
    let r = b
        .authorize_and_approve(
            &[("response_type", "code"), ("client_id", &conf)],
            &f.email,
            PASSWORD,
        )
        .await;
    let code = query(&r.location())["code"].clone();
    let (s, e) =
        error_of(exchange(app, &conf, Some(&secret), &code, &[("code_verifier", &v)]).await).await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    // PKCE stays optional for the confidential client.
    let r = exchange(app, &conf, Some(&secret), &code, &[]).await;
    assert_eq!(r.status(), 200);
    // A confidential client may use PKCE, and then must present the verifier.
    let r = b
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &conf),
            ("code_challenge", &ch),
            ("code_challenge_method", "S256"),
        ])
        .await;
    let code = query(&r.location())["code"].clone();
    let (s, e) = error_of(exchange(app, &conf, Some(&secret), &code, &[]).await).await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    let r = exchange(app, &conf, Some(&secret), &code, &[("code_verifier", &v)]).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn session_is_renewed_at_login_and_ends_at_logout() {
    let f = fixture().await;
    let app = &f.app;
    let (id, _) = confidential(app, &[CB]).await;
    let mut b = Browser::new(app);
    b.sign_in(&f.email, PASSWORD).await;
    let first = b.jar["__Host-camgate_session"].clone();
    assert!(first.len() >= 22, "session id too short for 128 bits");
    // Signing in again (prompt=login) gives a new id.
    let r = b
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &id),
            ("prompt", "login"),
        ])
        .await;
    let login = r.location();
    assert!(login.starts_with("/login?request_id="), "{login}");
    let r = b.sign_in_at(&login, &f.email, PASSWORD).await;
    assert_eq!(r.status, 303);
    let second = b.jar["__Host-camgate_session"].clone();
    assert_ne!(first, second);
    // A planted (fixated) id is never adopted: login issues a fresh one.
    let mut planted = Browser::new(app);
    planted.jar.insert(
        "__Host-camgate_session".into(),
        "cgs_planted_by_attacker".into(),
    );
    planted.sign_in(&f.email, PASSWORD).await;
    assert_ne!(
        planted.jar["__Host-camgate_session"],
        "cgs_planted_by_attacker"
    );
    // The old id is dead.
    let mut old = Browser::new(app);
    old.jar.insert("__Host-camgate_session".into(), first);
    let r = old
        .authorize(&[("response_type", "code"), ("client_id", &id)])
        .await;
    assert!(r.location().starts_with("/login"));
    // Logout needs the CSRF token.
    let page = b.get("/logout").await;
    assert_eq!(page.status, 200);
    assert_page_headers(&page);
    let r = b.post("/logout", &[("csrf_token", "forged")]).await;
    assert_eq!(r.status, 400);
    let csrf = hidden(&page.body, "csrf_token");
    let r = b.post("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("signed out"));
    assert!(!b.jar.contains_key("__Host-camgate_session"));
    // Even with the cookie replayed, the session is gone.
    b.jar.insert("__Host-camgate_session".into(), second);
    let r = b
        .authorize(&[("response_type", "code"), ("client_id", &id)])
        .await;
    assert!(r.location().starts_with("/login"));
}

#[tokio::test]
async fn session_idle_and_absolute_timeouts() {
    let f = fixture_with(|c| {
        c.authz.session.idle_timeout_secs = 600;
        c.authz.session.absolute_timeout_secs = 1500;
    })
    .await;
    let app = &f.app;
    let (id, _) = confidential(app, &[CB]).await;
    let params = [("response_type", "code"), ("client_id", id.as_str())];
    let mut b = Browser::new(app);
    b.sign_in(&f.email, PASSWORD).await;
    // Idle: 599 s is fine, then 600 s of silence ends it.
    app.clock.advance(599);
    assert_eq!(b.authorize(&params).await.status, 200);
    app.clock.advance(600);
    assert!(b.authorize(&params).await.location().starts_with("/login"));
    // Absolute: active every 500 s, still over at 1500 s.
    b.sign_in(&f.email, PASSWORD).await;
    for _ in 0..2 {
        app.clock.advance(500);
        assert_eq!(b.authorize(&params).await.status, 200);
    }
    app.clock.advance(500);
    assert!(b.authorize(&params).await.location().starts_with("/login"));
}

#[tokio::test]
async fn a_password_change_ends_sessions() {
    let f = fixture().await;
    let app = &f.app;
    let (id, _) = confidential(app, &[CB]).await;
    let mut b = Browser::new(app);
    b.sign_in(&f.email, PASSWORD).await;
    app.clock.advance(1);
    let user = app.core.user_by_email(&f.email).await.unwrap().unwrap();
    app.core
        .change_password(user.id, "a new password".into())
        .await
        .unwrap();
    let r = b
        .authorize(&[("response_type", "code"), ("client_id", &id)])
        .await;
    assert!(r.location().starts_with("/login"));
}

#[tokio::test]
async fn forms_need_their_csrf_tokens() {
    let f = fixture().await;
    let app = &f.app;
    let (id, _) = confidential(app, &[CB]).await;
    // Login without the double-submit cookie.
    let mut b = Browser::new(app);
    let r = b
        .post(
            "/login",
            &[
                ("email", &f.email),
                ("password", PASSWORD),
                ("csrf_token", "x"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("expired"));
    assert!(!b.jar.contains_key("__Host-camgate_session"));
    // The approval form with a forged token: refused, nothing sent to the client.
    b.sign_in(&f.email, PASSWORD).await;
    let page = b
        .authorize(&[("response_type", "code"), ("client_id", &id)])
        .await;
    let rid = hidden(&page.body, "request_id");
    let r = b
        .post(
            "/consent",
            &[
                ("csrf_token", "forged"),
                ("request_id", &rid),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_error_page(&r, "expired");
    // Another user's session token does not fit this session.
    app.create_user("mallory@example.com", PASSWORD).await;
    let mut m = Browser::new(app);
    m.sign_in("mallory@example.com", PASSWORD).await;
    let mpage = m
        .authorize(&[("response_type", "code"), ("client_id", &id)])
        .await;
    let mcsrf = hidden(&mpage.body, "csrf_token");
    let r = b
        .post(
            "/consent",
            &[
                ("csrf_token", &mcsrf),
                ("request_id", &rid),
                ("decision", "approve"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    // The real token still works.
    let r = b.decide(&page, "approve").await;
    assert_eq!(r.status, 303);
}

#[tokio::test]
async fn pages_carry_the_security_headers() {
    let f = fixture().await;
    let app = &f.app;
    let (id, _) = confidential(app, &[CB]).await;
    let mut b = Browser::new(app);
    assert_page_headers(&b.get("/login").await);
    assert_page_headers(&b.get("/logout").await);
    let err = b
        .authorize(&[("response_type", "code"), ("client_id", "nope")])
        .await;
    assert_page_headers(&err);
    b.sign_in(&f.email, PASSWORD).await;
    assert_page_headers(&b.get("/login").await);
    let consent = b
        .authorize(&[("response_type", "code"), ("client_id", &id)])
        .await;
    assert_page_headers(&consent);
    // Redirects to the client are not cached either.
    let r = b.decide(&consent, "approve").await;
    assert_eq!(r.header("cache-control"), "no-store");
    assert_eq!(r.header("referrer-policy"), "no-referrer");
    let css = b.get("/static/camgate.css").await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").starts_with("text/css"));
    assert!(css.body.contains(":focus-visible"));
}

/// ASVS 2.2.1: failures are counted per account (whether it exists or not) and per client
/// address; past the limit, every attempt is refused until the window passes.
#[tokio::test]
async fn login_throttling_per_account_on_page_and_password_grant() {
    let f = fixture_with(|c| c.authz.throttle.max_failures_per_account = 3).await;
    let app = &f.app;
    let pub_id = public(app, &[CB]).await;
    let mut b = Browser::new(app);
    // Unknown user and wrong password: the same answer.
    let wrong = b.sign_in(&f.email, "wrong").await;
    let unknown = b.sign_in("nobody@example.com", "wrong").await;
    assert_eq!(wrong.status, 200);
    assert_eq!(unknown.status, 200);
    assert!(wrong
        .body
        .contains("The email address or password is incorrect."));
    assert_eq!(
        wrong.body.replace(&f.email, "EMAIL"),
        unknown.body.replace("nobody@example.com", "EMAIL")
    );
    let g_wrong = app
        .token_form(&[
            ("grant_type", "password"),
            ("client_id", &pub_id),
            ("username", &f.email),
            ("password", "wrong"),
        ])
        .await;
    let g_unknown = app
        .token_form(&[
            ("grant_type", "password"),
            ("client_id", &pub_id),
            ("username", "nobody@example.com"),
            ("password", "wrong"),
        ])
        .await;
    assert_eq!(g_wrong.status(), 400);
    assert_eq!(g_unknown.status(), 400);
    assert_eq!(
        g_wrong.text().await.unwrap(),
        g_unknown.text().await.unwrap()
    );
    // That is 2 failures for the account; a third one reaches the limit.
    let r = b.sign_in(&f.email, "wrong").await;
    assert_eq!(r.status, 200);
    // Now even the right password is refused, on the page and at the token endpoint.
    let r = b.sign_in(&f.email, PASSWORD).await;
    assert_eq!(r.status, 429);
    assert!(
        r.body.contains("Too many failed sign-in attempts"),
        "{}",
        r.body
    );
    assert!(!b.jar.contains_key("__Host-camgate_session"));
    let retry: u64 = r.header("retry-after").parse().unwrap();
    assert!(retry > 3500 && retry <= 3600, "{retry}");
    let g = app.password_token_raw(&pub_id, &f.email, PASSWORD).await;
    assert_eq!(g.status(), 429);
    let retry: u64 = g.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 3500 && retry <= 3600);
    assert_eq!(g.headers()["cache-control"], "no-store");
    let v: Value = g.json().await.unwrap();
    assert!(v["error_description"]
        .as_str()
        .unwrap()
        .contains("Too many"));
    // Other accounts are not affected.
    app.create_user("second@example.com", PASSWORD).await;
    let r = b.sign_in("second@example.com", PASSWORD).await;
    assert_eq!(r.status, 303);
    // When the window has passed, the account works again.
    app.clock.advance(3600);
    let r = b.sign_in(&f.email, PASSWORD).await;
    assert_eq!(r.status, 303);
    let g = app.password_token_raw(&pub_id, &f.email, PASSWORD).await;
    assert_eq!(g.status(), 200);
}

#[tokio::test]
async fn login_throttling_per_client_address() {
    let f = fixture_with(|c| c.authz.throttle.max_failures_per_ip = 4).await;
    let app = &f.app;
    let mut b = Browser::new(app);
    for i in 0..4 {
        let r = b.sign_in(&format!("guess{i}@example.com"), "wrong").await;
        assert_eq!(r.status, 200);
    }
    let r = b.sign_in(&f.email, PASSWORD).await;
    assert_eq!(r.status, 429);
    assert!(r.body.contains("Too many failed sign-in attempts"));
}

/// The default: 100 failures per account per hour, then refusal.
#[tokio::test]
async fn default_limit_is_one_hundred_failures_per_account_per_hour() {
    let f = fixture().await;
    let app = &f.app;
    let pub_id = public(app, &[CB]).await;
    for _ in 0..100 {
        let r = app.password_token_raw(&pub_id, &f.email, "wrong").await;
        assert_eq!(r.status(), 400);
    }
    let r = app.password_token_raw(&pub_id, &f.email, PASSWORD).await;
    assert_eq!(r.status(), 429);
    app.clock.advance(3600);
    let r = app.password_token_raw(&pub_id, &f.email, PASSWORD).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn login_page_over_plain_http_is_refused_off_loopback() {
    let f = fixture().await;
    let app = &f.app;
    let mut b = Browser::new(app);
    let page = b.get("/login").await;
    let csrf = hidden(&page.body, "csrf_token");
    let r = app
        .http
        .post(app.url("/login"))
        .header("host", "auth.example.com")
        .header("cookie", b.cookie_header())
        .form(&[
            ("email", f.email.as_str()),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
        ])
        .send()
        .await
        .unwrap();
    let r = b.finish(r).await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("HTTPS"));
    assert!(!b.jar.contains_key("__Host-camgate_session"));
}

#[tokio::test]
async fn a_parked_request_survives_a_session_timeout_on_the_approval_screen() {
    let f = fixture_with(|c| c.authz.session.idle_timeout_secs = 300).await;
    let app = &f.app;
    let (id, secret) = confidential(app, &[CB]).await;
    let mut b = Browser::new(app);
    b.sign_in(&f.email, PASSWORD).await;
    let page = b
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &id),
            ("state", "k"),
        ])
        .await;
    app.clock.advance(301);
    // The session ended while the screen was open: sign in again, decide again.
    let r = b.decide(&page, "approve").await;
    assert_eq!(r.status, 303);
    let login = r.location();
    assert!(login.starts_with("/login?request_id="));
    let r = b.sign_in_at(&login, &f.email, PASSWORD).await;
    let page = b.get(&r.location()).await;
    let r = b.decide(&page, "approve").await;
    let q = query(&r.location());
    assert_eq!(q["state"], "k");
    let r = exchange(app, &id, Some(&secret), &q["code"], &[]).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn authorization_code_grant_needs_the_grant_and_a_code() {
    let f = fixture().await;
    let app = &f.app;
    let (id, secret) = confidential(app, &[CB]).await;
    let (s, e) = error_of(
        app.token_form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .await,
    )
    .await;
    assert_eq!((s, e.as_str()), (400, "invalid_request"));
    let (s, e) = error_of(exchange(app, &id, Some(&secret), "made-up", &[]).await).await;
    assert_eq!((s, e.as_str()), (400, "invalid_grant"));
    let mut input = client_input("password only", ClientKind::Confidential, "angelcam");
    input.grants = vec![GrantType::Password];
    let r = app.register(input).await;
    let (s, e) =
        error_of(exchange(app, &r.client.client_id, r.secret.as_deref(), "x", &[]).await).await;
    assert_eq!((s, e.as_str()), (400, "unauthorized_client"));
}

trait RawToken {
    async fn password_token_raw(&self, client: &str, user: &str, pw: &str) -> reqwest::Response;
}

impl RawToken for TestApp {
    async fn password_token_raw(&self, client: &str, user: &str, pw: &str) -> reqwest::Response {
        self.token_form(&[
            ("grant_type", "password"),
            ("client_id", client),
            ("username", user),
            ("password", pw),
        ])
        .await
    }
}

/// Two exchanges of one code at the same moment: at most one gets tokens, and since the code
/// was used twice, whatever it minted ends up revoked (RFC 6749 §4.1.2).
#[tokio::test]
async fn concurrent_uses_of_one_code_leave_no_live_tokens() {
    let f = fixture().await;
    let app = &f.app;
    let (id, secret) = confidential(app, &[CB]).await;
    let mut b = Browser::new(app);
    let params = [("response_type", "code"), ("client_id", id.as_str())];
    b.authorize_and_approve(&params, &f.email, PASSWORD).await;
    for _ in 0..5 {
        let r = b.authorize(&params).await;
        let code = query(&r.location())["code"].clone();
        let (a, c) = tokio::join!(
            exchange(app, &id, Some(&secret), &code, &[]),
            exchange(app, &id, Some(&secret), &code, &[])
        );
        let mut ok = 0;
        let mut tokens = Vec::new();
        for r in [a, c] {
            if r.status() == 200 {
                ok += 1;
                let v: Value = r.json().await.unwrap();
                tokens.push(v["access_token"].as_str().unwrap().to_string());
            } else {
                assert_eq!(r.status(), 400);
            }
        }
        assert!(ok <= 1, "a code was redeemed twice");
        for t in tokens {
            assert_eq!(app.get_bearer("/v1/me/", &t).await.status(), 401);
        }
    }
}

#[tokio::test]
async fn client_supplied_text_is_escaped_on_the_pages() {
    let f = fixture().await;
    let app = &f.app;
    let mut input = client_input(
        "<script>alert(1)</script> & \"Co\"",
        ClientKind::Confidential,
        "angelcam",
    );
    input.redirect_uris = vec![CB.into()];
    let id = app.register(input).await.client.client_id;
    let mut b = Browser::new(app);
    let r = b
        .authorize(&[("response_type", "code"), ("client_id", &id)])
        .await;
    let login = b.get(&r.location()).await;
    let r = b.sign_in_at(&r.location(), &f.email, PASSWORD).await;
    let consent = b.get(&r.location()).await;
    for page in [&login, &consent] {
        assert!(!page.body.contains("<script>"), "{}", page.body);
        // askama escapes with numeric references.
        assert!(
            page.body
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{}",
            page.body
        );
    }
}

#[tokio::test]
async fn after_login_a_remembered_consent_goes_straight_back_to_the_client() {
    let f = fixture().await;
    let app = &f.app;
    let (id, _) = confidential(app, &[CB]).await;
    let params = [
        ("response_type", "code"),
        ("client_id", id.as_str()),
        ("state", "z"),
    ];
    let mut b = Browser::new(app);
    b.authorize_and_approve(&params, &f.email, PASSWORD).await;
    // A new browser: sign in, and no approval screen this time.
    let mut fresh = Browser::new(app);
    let r = fresh.authorize(&params).await;
    let r = fresh.sign_in_at(&r.location(), &f.email, PASSWORD).await;
    let r = fresh.get(&r.location()).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let q = query(&r.location());
    assert!(q.contains_key("code"));
    assert_eq!(q["state"], "z");
    // The parked request was consumed.
    let again = fresh
        .get(&format!(
            "/consent?{}",
            r.location().split_once('?').unwrap().1
        ))
        .await;
    assert_eq!(again.status, 400);
}

/// "Not you?": sign out from the approval screen and continue as someone else.
#[tokio::test]
async fn switching_account_from_the_approval_screen() {
    let f = fixture().await;
    let app = &f.app;
    app.create_user("other@example.com", PASSWORD).await;
    let (id, _) = confidential(app, &[CB]).await;
    let mut b = Browser::new(app);
    b.sign_in(&f.email, PASSWORD).await;
    let page = b
        .authorize(&[
            ("response_type", "code"),
            ("client_id", &id),
            ("state", "w"),
        ])
        .await;
    let rid = hidden(&page.body, "request_id");
    let confirm = b.get(&format!("/logout?request_id={rid}")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Sign out?"));
    let r = b
        .post(
            "/logout",
            &[
                ("csrf_token", hidden(&confirm.body, "csrf_token").as_str()),
                ("request_id", rid.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    let link = format!("/login?request_id={rid}");
    assert!(r.body.contains(&link), "{}", r.body);
    let r = b.sign_in_at(&link, "other@example.com", PASSWORD).await;
    let page = b.get(&r.location()).await;
    assert!(page.body.contains("other@example.com"));
    let r = b.decide(&page, "approve").await;
    assert_eq!(query(&r.location())["state"], "w");
}

/// RFC 8414 metadata advertises what this endpoint does.
#[tokio::test]
async fn metadata_advertises_the_authorization_code_grant() {
    let app = spawn_app().await;
    let v: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["authorization_endpoint"],
        format!("{}/oauth/authorize", app.base)
    );
    assert!(v["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&"authorization_code".into()));
    assert_eq!(v["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        v["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(v["authorization_response_iss_parameter_supported"], true);
}
