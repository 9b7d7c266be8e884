//! Passkeys in a real browser: headless Chromium driven through chromedriver (WebDriver, via
//! fantoccini) with a WebAuthn virtual authenticator (the W3C WebAuthn §11 WebDriver extension
//! commands, which chromedriver implements on top of DevTools'
//! `WebAuthn.addVirtualAuthenticator`; sent with fantoccini's `issue_cmd`). A CTAP2 "internal"
//! authenticator with resident keys and user verification stands in for a phone or a laptop.
//!
//! - Account → Passkeys adds one (the page lists it by name, the authenticator holds one
//!   resident credential for RP ID `localhost`), refuses the same authenticator twice, renames it.
//! - "Sign in with a passkey" signs in with nothing typed; started by an authorization request
//!   with scope `openid`, the id_token says `amr` hwk|swk + user, `acr` mfa.
//! - After the password, the second-factor page's "Use a passkey instead" finishes the sign-in
//!   (`amr` pwd + hwk|swk + user).
//! - A removed passkey no longer signs in: a visible error and no session.
//! - The server refuses an assertion made for another origin (genuinely, from a page on another
//!   port of `localhost`, and by editing `clientDataJSON.origin`), and a ceremony used twice.
//!
//! The relying party is the request's issuer (`http://` + Host here), and an IP address is not a
//! valid RP ID, so the browser opens the app at `http://localhost:PORT`, not `127.0.0.1`.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the tests print a notice and
//! pass — unless `CAMGATE_REQUIRE_BROWSER=1`, when they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::Method;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use camgate_core::model::{ClientKind, User};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, Locator};
use serde_json::{json, Value};

use crate::common::browser::{
    self, click, save_screenshot, type_into, wait_for_text, wait_for_url,
};
use crate::common::session::{self, hidden};
use crate::common::*;

const EMAIL: &str = "pk@example.com";
const STATE: &str = "st-passkey";
const MFA_ACR: &str = "urn:camgate:acr:mfa";

// ---- the virtual authenticator (WebAuthn §11 WebDriver extension commands) ----------------

/// `…/session/{id}/webauthn/{path}` with a method and an optional JSON body.
#[derive(Debug)]
struct WebAuthnCmd {
    method: Method,
    path: String,
    body: Option<Value>,
}

impl WebDriverCompatibleCommand for WebAuthnCmd {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/webauthn/{}",
            session_id.unwrap_or_default(),
            self.path
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(Value::to_string),
        )
    }
}

/// Adds a CTAP2 platform authenticator with resident keys that verifies the user; returns its
/// id.
async fn add_authenticator(c: &Client) -> String {
    let v = c
        .issue_cmd(WebAuthnCmd {
            method: Method::POST,
            path: "authenticator".into(),
            body: Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true,
            })),
        })
        .await
        .expect("add a virtual authenticator");
    v.as_str().expect("an authenticator id").to_string()
}

/// The credentials the authenticator holds.
async fn credentials(c: &Client, auth: &str) -> Vec<Value> {
    let v = c
        .issue_cmd(WebAuthnCmd {
            method: Method::GET,
            path: format!("authenticator/{auth}/credentials"),
            body: None,
        })
        .await
        .expect("list the authenticator's credentials");
    v.as_array().expect("a list of credentials").clone()
}

/// Bytes of a base64url (or base64) value, padded or not.
fn b64(s: &str) -> Vec<u8> {
    let s: String = s
        .trim_end_matches('=')
        .chars()
        .map(|ch| match ch {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    B64.decode(s).unwrap()
}

// ---- the pages ------------------------------------------------------------------------------

/// `http://localhost:PORT`: the app by name (passkeys need a host name for the RP ID).
fn local(app: &TestApp) -> String {
    app.base.replace("127.0.0.1", "localhost")
}

/// Waits (15 s at most) until the element with this id is shown (passkeys.js unhides the
/// passkey buttons and the error box), and returns it.
async fn wait_shown(c: &Client, id: &str) -> fantoccini::elements::Element {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(e) = c.find(Locator::Id(id)).await {
            if e.is_displayed().await.unwrap_or(false) {
                return e;
            }
        }
        assert!(
            Instant::now() < deadline,
            "#{id} never shown; at {}",
            c.current_url().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the shown passkey error box (waits for it).
async fn passkey_error(c: &Client) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let t = wait_shown(c, "passkey-error").await.text().await.unwrap();
        if !t.trim().is_empty() {
            return t;
        }
        assert!(Instant::now() < deadline, "an empty passkey error");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The names in the passkey list (the rename fields' values).
async fn listed_names(c: &Client) -> Vec<String> {
    let mut names = Vec::new();
    for e in c
        .find_all(Locator::Css("tr.passkey-row input.passkey-name"))
        .await
        .unwrap()
    {
        names.push(e.prop("value").await.unwrap().unwrap_or_default());
    }
    names
}

/// Signs in with the password through `/login?next=…`.
async fn password_sign_in(c: &Client, base: &str, next: &str) {
    c.goto(&format!("{base}{next}")).await.unwrap();
    wait_for_url(c, &format!("{base}/login?next=")).await;
    c.wait().for_element(Locator::Id("email")).await.unwrap();
    type_into(c, "email", EMAIL).await;
    type_into(c, "password", PASSWORD).await;
    click(c, "sign-in").await;
}

/// On the passkeys page: names a new passkey and adds it; waits for the list.
async fn add_passkey(c: &Client, name: &str) {
    wait_shown(c, "add-passkey").await;
    let field = c.find(Locator::Id("passkey-name")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(name).await.unwrap();
    click(c, "add-passkey").await;
    wait_for_text(c, "Passkey added.").await;
}

/// Signs in with the password (the user has no second factor yet), adds a passkey named
/// "Laptop" from Account → Passkeys, and stays on that page.
async fn enrol(c: &Client, base: &str) {
    password_sign_in(c, base, "/dashboard/account/passkeys/").await;
    wait_for_url(c, &format!("{base}/dashboard/account/passkeys/")).await;
    add_passkey(c, "Laptop").await;
}

async fn sign_out(c: &Client) {
    click(c, "sign-out").await;
    wait_for_text(c, "You are signed out").await;
}

/// True when the browser has no session: the dashboard sends it to the sign-in page.
async fn signed_out(c: &Client, base: &str) -> bool {
    c.goto(&format!("{base}/dashboard/")).await.unwrap();
    c.current_url()
        .await
        .unwrap()
        .as_str()
        .starts_with(&format!("{base}/login?next="))
}

// ---- the relying party ------------------------------------------------------------------

/// A local stand-in for a client's callback endpoint (it records the query) — also a page on
/// another origin of `localhost`.
async fn callback_server() -> (u16, Arc<Mutex<Option<String>>>) {
    let seen: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |uri: axum::http::Uri| {
            let s2 = s2.clone();
            async move {
                *s2.lock().unwrap() = Some(uri.query().unwrap_or("").to_string());
                axum::response::Html(
                    "<!doctype html><title>Callback</title><h1>Back at the app</h1>",
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, seen)
}

struct Rp {
    id: String,
    secret: String,
    callback: String,
    seen: Arc<Mutex<Option<String>>>,
}

/// A confidential client whose redirect URI is a local callback server.
async fn relying_party(app: &TestApp) -> Rp {
    let (port, seen) = callback_server().await;
    let callback = format!("http://127.0.0.1:{port}/callback");
    let mut input = client_input("Camera Viewer", ClientKind::Confidential, "angelcam");
    input.redirect_uris = vec![callback.clone()];
    let reg = app.register(input).await;
    Rp {
        id: reg.client.client_id,
        secret: reg.secret.unwrap(),
        callback,
        seen,
    }
}

/// Opens `/oauth/authorize/` (code, scope openid, a nonce) on `base`; the browser lands on the
/// sign-in page of the parked request.
async fn start_authorization(c: &Client, base: &str, rp: &Rp) {
    let q = session::encode(&[
        ("response_type", "code"),
        ("client_id", &rp.id),
        ("redirect_uri", &rp.callback),
        ("scope", "openid"),
        ("state", STATE),
        ("nonce", "n-passkey"),
    ]);
    c.goto(&format!("{base}/oauth/authorize/?{q}"))
        .await
        .unwrap();
    wait_for_url(c, &format!("{base}/login?request_id=")).await;
}

/// On the approval page: approves, takes the code off the callback, exchanges it; returns the
/// id_token's claims.
async fn approve_and_claims(c: &Client, app: &TestApp, base: &str, rp: &Rp) -> Value {
    let approve = c.wait().for_element(Locator::Id("approve")).await.unwrap();
    approve.click().await.unwrap();
    wait_for_url(c, &rp.callback).await;
    let query = rp.seen.lock().unwrap().clone().expect("no callback");
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(params["state"], STATE, "{query}");
    // The issuer is the one the browser talked to.
    assert_eq!(params["iss"], base, "{query}");
    let r = app
        .http
        .post(format!("{base}/oauth/token/"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &rp.id),
            ("client_secret", &rp.secret),
            ("code", &params["code"]),
            ("redirect_uri", &rp.callback),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let id_token = t["id_token"].as_str().expect("an id_token");
    let payload = id_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["iss"], base);
    assert_eq!(claims["nonce"], "n-passkey");
    claims
}

fn amr(claims: &Value) -> Vec<String> {
    claims["amr"]
        .as_array()
        .unwrap_or_else(|| panic!("no amr in {claims}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Runs `body` with the browser; closes the browser before a failure is reported.
async fn with_browser<F, Fut>(test: &str, body: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(browser) = browser::start(test).await else {
        return;
    };
    let c = browser.c.clone();
    let result =
        futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(body(c.clone()))).await;
    if result.is_err() {
        // What the page showed (best effort: the browser may be gone).
        if let Ok(png) = c.screenshot().await {
            let path = browser::screenshot_dir().join(format!("{test}-failed.png"));
            let _ = std::fs::write(&path, png);
            eprintln!("screenshot: {}", path.display());
        }
    }
    let _ = c.close().await;
    drop(browser);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn user(app: &TestApp) -> User {
    app.create_user(EMAIL, PASSWORD).await
}

// ---- the tests ------------------------------------------------------------------------------

/// Account → Passkeys: add (listed by name; the authenticator holds one resident credential,
/// under the account's opaque user handle), the same authenticator refused a second time,
/// rename.
#[tokio::test]
async fn passkeys_add_and_rename_from_the_account_page() {
    let app = spawn_app().await;
    let u = user(&app).await;
    let base = local(&app);
    with_browser("passkeys-add", |c| async move {
        let c = &c;
        let auth = add_authenticator(c).await;
        password_sign_in(c, &base, "/dashboard/account/").await;
        wait_for_url(c, &format!("{base}/dashboard/account/")).await;
        click(c, "manage-passkeys").await;
        wait_for_url(c, &format!("{base}/dashboard/account/passkeys/")).await;
        wait_for_text(c, "No passkeys yet").await;
        assert!(credentials(c, &auth).await.is_empty());

        add_passkey(c, "Work laptop").await;
        assert_eq!(listed_names(c).await, ["Work laptop"]);
        save_screenshot(c, "passkeys-1-added.png").await;
        let creds = credentials(c, &auth).await;
        assert_eq!(creds.len(), 1, "{creds:?}");
        let cred = &creds[0];
        assert_eq!(cred["isResidentCredential"], true, "{cred}");
        assert_eq!(cred["rpId"], "localhost", "{cred}");
        assert_eq!(
            b64(cred["userHandle"].as_str().unwrap()),
            app.core.user_handle(u.id).as_bytes().to_vec(),
            "the user handle is the opaque one"
        );
        let stored = app.core.passkeys(u.id).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].name, "Work laptop");
        assert_eq!(
            stored[0].cred_id,
            b64(cred["credentialId"].as_str().unwrap())
        );

        // The same authenticator again: excluded, so the page says so and nothing is added.
        add_passkey_refused(c, "Again").await;
        assert_eq!(credentials(c, &auth).await.len(), 1);
        assert_eq!(app.core.passkeys(u.id).await.unwrap().len(), 1);

        // Rename.
        let field = c
            .find(Locator::Css("tr.passkey-row input.passkey-name"))
            .await
            .unwrap();
        field.clear().await.unwrap();
        field.send_keys("Backup key").await.unwrap();
        c.find(Locator::Css(
            "tr.passkey-row form[action$=\"/rename\"] button",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
        wait_for_text(c, "Passkey renamed.").await;
        assert_eq!(listed_names(c).await, ["Backup key"]);
        assert_eq!(app.core.passkeys(u.id).await.unwrap()[0].name, "Backup key");
        save_screenshot(c, "passkeys-2-renamed.png").await;
    })
    .await;
}

/// Adding a passkey the authenticator already holds for this account: refused in the browser
/// (excludeCredentials), shown in the error box, no reload.
async fn add_passkey_refused(c: &Client, name: &str) {
    let field = c.find(Locator::Id("passkey-name")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(name).await.unwrap();
    click(c, "add-passkey").await;
    let error = passkey_error(c).await;
    assert!(!error.is_empty());
    assert!(!listed_names(c).await.contains(&name.to_string()));
}

/// The sign-in page's "Sign in with a passkey": signed in with nothing typed; then, started by
/// an authorization request with scope openid, an id_token with amr hwk|swk + user, acr mfa.
#[tokio::test]
async fn passkey_alone_signs_in() {
    let app = spawn_app().await;
    let u = user(&app).await;
    let rp = relying_party(&app).await;
    let base = local(&app);
    with_browser("passkeys-sign-in", |c| async move {
        let c = &c;
        let auth = add_authenticator(c).await;
        enrol(c, &base).await;
        assert_eq!(credentials(c, &auth).await.len(), 1);
        assert!(app.core.passkeys(u.id).await.unwrap()[0]
            .last_used_at
            .is_none());
        sign_out(c).await;

        c.goto(&format!("{base}/login")).await.unwrap();
        let button = wait_shown(c, "passkey-sign-in").await;
        save_screenshot(c, "passkeys-3-login.png").await;
        button.click().await.unwrap();
        wait_for_url(c, &format!("{base}/dashboard/")).await;
        wait_for_text(c, "Welcome, Test User").await;
        assert!(app.core.passkeys(u.id).await.unwrap()[0]
            .last_used_at
            .is_some());
        sign_out(c).await;

        // The code flow, signed in by the passkey alone.
        start_authorization(c, &base, &rp).await;
        wait_shown(c, "passkey-sign-in")
            .await
            .click()
            .await
            .unwrap();
        let claims = approve_and_claims(c, &app, &base, &rp).await;
        let amr = amr(&claims);
        assert!(amr.iter().any(|a| a == "hwk" || a == "swk"), "amr {amr:?}");
        assert!(amr.iter().any(|a| a == "user"), "amr {amr:?}");
        assert!(!amr.iter().any(|a| a == "pwd"), "amr {amr:?}");
        assert_eq!(claims["acr"], MFA_ACR, "{claims}");
    })
    .await;
}

/// After the password, the second-factor page offers the passkey, which finishes the sign-in
/// (amr pwd + hwk|swk + user, acr mfa).
#[tokio::test]
async fn passkey_as_the_second_factor() {
    let app = spawn_app().await;
    user(&app).await;
    let rp = relying_party(&app).await;
    let base = local(&app);
    with_browser("passkeys-second-factor", |c| async move {
        let c = &c;
        add_authenticator(c).await;
        enrol(c, &base).await;
        sign_out(c).await;

        start_authorization(c, &base, &rp).await;
        c.wait().for_element(Locator::Id("email")).await.unwrap();
        type_into(c, "email", EMAIL).await;
        type_into(c, "password", PASSWORD).await;
        click(c, "sign-in").await;
        // The second step: the code form, and the passkey.
        let button = wait_shown(c, "passkey-second-factor").await;
        // A passkey but no authenticator app: no code field to mislead, just the passkey.
        assert!(c.find(Locator::Id("code")).await.is_err());
        assert!(button.text().await.unwrap().contains("Use your passkey"));
        save_screenshot(c, "passkeys-4-second-factor.png").await;
        button.click().await.unwrap();
        let claims = approve_and_claims(c, &app, &base, &rp).await;
        let amr = amr(&claims);
        assert!(amr.iter().any(|a| a == "pwd"), "amr {amr:?}");
        assert!(amr.iter().any(|a| a == "hwk" || a == "swk"), "amr {amr:?}");
        assert!(amr.iter().any(|a| a == "user"), "amr {amr:?}");
        assert_eq!(claims["acr"], MFA_ACR, "{claims}");
    })
    .await;
}

/// A passkey removed from the account no longer signs in, though the authenticator still holds
/// it: the page shows an error and there is no session.
#[tokio::test]
async fn removed_passkey_no_longer_signs_in() {
    let app = spawn_app().await;
    let u = user(&app).await;
    let base = local(&app);
    with_browser("passkeys-removed", |c| async move {
        let c = &c;
        let auth = add_authenticator(c).await;
        enrol(c, &base).await;
        c.find(Locator::Css(
            "tr.passkey-row form[action$=\"/delete\"] button",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
        wait_for_text(c, "Passkey removed.").await;
        wait_for_text(c, "No passkeys yet").await;
        assert!(app.core.passkeys(u.id).await.unwrap().is_empty());
        assert_eq!(credentials(c, &auth).await.len(), 1, "still on the device");
        sign_out(c).await;

        c.goto(&format!("{base}/login")).await.unwrap();
        wait_shown(c, "passkey-sign-in")
            .await
            .click()
            .await
            .unwrap();
        let error = passkey_error(c).await;
        assert!(error.contains("could not be verified"), "{error}");
        save_screenshot(c, "passkeys-5-removed.png").await;
        assert!(c
            .current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&format!("{base}/login")));
        // The button can be tried again.
        assert!(wait_shown(c, "passkey-sign-in")
            .await
            .is_enabled()
            .await
            .unwrap());
        assert!(
            signed_out(c, &base).await,
            "a session after a refused passkey"
        );
    })
    .await;
}

/// Runs `navigator.credentials.get` in the current page with a begin answer's options (binary
/// fields base64url, as passkeys.js does) and returns the credential as passkeys.js sends it.
async fn assertion(c: &Client, options: &Value) -> String {
    const SCRIPT: &str = r#"
        var done = arguments[arguments.length - 1];
        function fromB64u(s) {
          s = s.replace(/-/g, '+').replace(/_/g, '/');
          while (s.length % 4) s += '=';
          var bin = atob(s), out = new Uint8Array(bin.length);
          for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
          return out.buffer;
        }
        function toB64u(buf) {
          var bytes = new Uint8Array(buf), bin = '';
          for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
          return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
        }
        var pk = arguments[0].publicKey;
        pk.challenge = fromB64u(pk.challenge);
        (pk.allowCredentials || []).forEach(function (c) { c.id = fromB64u(c.id); });
        navigator.credentials.get({ publicKey: pk }).then(function (c) {
          var r = c.response;
          done({ credential: JSON.stringify({
            id: c.id, rawId: toB64u(c.rawId), type: c.type,
            response: {
              clientDataJSON: toB64u(r.clientDataJSON),
              authenticatorData: toB64u(r.authenticatorData),
              signature: toB64u(r.signature),
              userHandle: r.userHandle ? toB64u(r.userHandle) : null,
            },
            extensions: c.getClientExtensionResults(),
          }) });
        }, function (e) { done({ error: String(e) }); });
    "#;
    let v = c
        .execute_async(SCRIPT, vec![options.clone()])
        .await
        .unwrap();
    match v["credential"].as_str() {
        Some(s) => s.to_string(),
        None => panic!("navigator.credentials.get failed: {v}"),
    }
}

/// The origin in a credential's clientDataJSON.
fn client_origin(credential: &str) -> String {
    let cred: Value = serde_json::from_str(credential).unwrap();
    let cd: Value =
        serde_json::from_slice(&b64(cred["response"]["clientDataJSON"].as_str().unwrap())).unwrap();
    cd["origin"].as_str().unwrap().to_string()
}

/// The credential with its clientDataJSON's origin replaced (the signature no longer covers it,
/// but the origin is checked first).
fn with_origin(credential: &str, origin: &str) -> String {
    let mut cred: Value = serde_json::from_str(credential).unwrap();
    let mut cd: Value =
        serde_json::from_slice(&b64(cred["response"]["clientDataJSON"].as_str().unwrap())).unwrap();
    cd["origin"] = origin.into();
    cred["response"]["clientDataJSON"] = B64.encode(serde_json::to_vec(&cd).unwrap()).into();
    cred.to_string()
}

/// A sign-in page's cookies and CSRF token, for calling the passkey endpoints by hand.
struct LoginForm<'a> {
    http: session::Browser<'a>,
    csrf: String,
    base: String,
}

impl<'a> LoginForm<'a> {
    async fn open(app: &'a TestApp, base: &str) -> LoginForm<'a> {
        let mut http = session::Browser::new(app);
        let page = http.get(&format!("{base}/login")).await;
        assert_eq!(page.status, 200);
        let csrf = hidden(&page.body, "csrf_token");
        LoginForm {
            http,
            csrf,
            base: base.to_string(),
        }
    }

    /// `POST /login/passkey/begin`: (ceremony, options).
    async fn begin(&mut self) -> (String, Value) {
        let r = self
            .http
            .post(
                &format!("{}/login/passkey/begin", self.base),
                &[("csrf_token", &self.csrf)],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        (
            v["ceremony"].as_str().unwrap().to_string(),
            v["options"].clone(),
        )
    }

    /// `POST /login/passkey/finish`.
    async fn finish(&mut self, ceremony: &str, credential: &str) -> session::Resp {
        let csrf = self.csrf.clone();
        self.http
            .post(
                &format!("{}/login/passkey/finish", self.base),
                &[
                    ("csrf_token", &csrf),
                    ("ceremony", ceremony),
                    ("credential", credential),
                ],
            )
            .await
    }
}

/// A refused finish: 400, the passkey message (not the expired-form one), no session cookie.
#[track_caller]
fn refused(r: &session::Resp) {
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("could not be verified"), "{}", r.body);
    assert!(
        !r.set_cookies()
            .iter()
            .any(|c| c.starts_with(&format!("{}=", session::SESSION))),
        "{:?}",
        r.set_cookies()
    );
}

/// The server side of the ceremony: an assertion made for another origin is refused (made on
/// a page of another port of localhost — same RP ID, valid signature — and by editing
/// clientDataJSON.origin), and a ceremony is taken once, even by a refused answer.
#[tokio::test]
async fn wrong_origin_and_replayed_ceremonies_are_refused() {
    let app = spawn_app().await;
    user(&app).await;
    let (other_port, _) = callback_server().await;
    let other = format!("http://localhost:{other_port}");
    let base = local(&app);
    with_browser("passkeys-refused", |c| async move {
        let c = &c;
        add_authenticator(c).await;
        enrol(c, &base).await;
        sign_out(c).await;
        c.goto(&format!("{base}/login")).await.unwrap();
        let mut form = LoginForm::open(&app, &base).await;

        // clientDataJSON.origin edited to another origin.
        let (a, options) = form.begin().await;
        let genuine = assertion(c, &options).await;
        assert_eq!(client_origin(&genuine), base);
        let r = form.finish(&a, &with_origin(&genuine, &other)).await;
        refused(&r);
        // The same ceremony again, with the genuine answer: taken already.
        refused(&form.finish(&a, &genuine).await);

        // Made on a page of another origin (same RP ID, so the authenticator signs it).
        let (b, options) = form.begin().await;
        c.goto(&format!("{other}/callback")).await.unwrap();
        let elsewhere = assertion(c, &options).await;
        assert_eq!(client_origin(&elsewhere), other);
        refused(&form.finish(&b, &elsewhere).await);

        // A genuine answer to a fresh ceremony signs in (so the refusals above were the
        // origin's and the ceremony's doing)...
        c.goto(&format!("{base}/login")).await.unwrap();
        let login_cookie = form.http.jar.clone();
        let (d, options) = form.begin().await;
        let good = assertion(c, &options).await;
        let r = form.finish(&d, &good).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.body.contains("/dashboard/"), "{}", r.body);
        assert!(form.http.jar.contains_key(session::SESSION));
        // ...once: the same ceremony and answer again (with the sign-in form's cookie back).
        form.http.jar = login_cookie;
        refused(&form.finish(&d, &good).await);
        // And a ceremony id that was never handed out.
        let (_, options) = form.begin().await;
        let other_answer = assertion(c, &options).await;
        refused(&form.finish("cgw_not-a-ceremony", &other_answer).await);
    })
    .await;
}
