//! The authorization-code grant in a real browser: headless Chromium driven through
//! chromedriver (WebDriver, via fantoccini) opens `/oauth/authorize/` as spec 000 step 1 does,
//! signs in, approves, lands on a local callback server; the test then exchanges the code with
//! a multipart body (spec 000 step 2, `curl -F`) and calls `/v1/me/`. Screenshots of the login
//! and approval pages (desktop and phone width) are saved under `target/screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test prints a notice and
//! passes — unless `CAMGATE_REQUIRE_BROWSER=1`, when it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common::browser;

use std::sync::{Arc, Mutex};

use crate::common::browser::{click, save_screenshot, type_into, wait_for_url};
use crate::common::*;
use camgate_core::model::ClientKind;
use fantoccini::Locator;
use serde_json::Value;

/// A local stand-in for the client application's callback endpoint.
async fn callback_server() -> (String, Arc<Mutex<Option<String>>>) {
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
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/callback"), seen)
}

#[tokio::test]
async fn spec_000_in_headless_chromium() {
    let Some(browser) = browser::start("spec_000_in_headless_chromium").await else {
        return;
    };
    let c = &browser.c;

    // The app, a user, and a confidential client whose redirect URI is our callback server.
    let app = spawn_app().await;
    let owner = app.create_user("dev@example.com", PASSWORD).await;
    app.create_user("user@example.com", PASSWORD).await;
    let (callback, seen) = callback_server().await;
    let mut input = client_input("Camera Viewer", ClientKind::Confidential, "angelcam");
    input.owner_id = Some(owner.id);
    input.redirect_uris = vec![callback.clone()];
    let reg = app.register(input).await;
    let (client_id, secret) = (reg.client.client_id, reg.secret.unwrap());

    // Run the browser part so that a failure still closes the browser before it is reported.
    let result = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        // A redirect URI that is not registered: an error page, no redirect.
        let bad = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", "https://attacker.example/cb")
            .finish();
        c.goto(&app.url(&format!("/oauth/authorize/?{bad}")))
            .await
            .unwrap();
        let text = c
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("Mismatching redirect URI."), "{text}");
        assert!(c
            .current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&app.base));
        save_screenshot(c, "authorize-0-error.png").await;

        // Spec 000 step 1.
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &client_id)
            .append_pair("redirect_uri", &callback)
            .append_pair("scope", "user_access")
            .append_pair("state", "CSRF_TOKEN")
            .finish();
        c.goto(&app.url(&format!("/oauth/authorize/?{q}")))
            .await
            .unwrap();
        wait_for_url(c, &app.url("/login?request_id=")).await;
        c.wait().for_element(Locator::Id("email")).await.unwrap();
        let title = c.title().await.unwrap();
        assert_eq!(title, "Sign in · camgate");
        save_screenshot(c, "authorize-1-login.png").await;
        c.set_window_size(390, 844).await.unwrap();
        save_screenshot(c, "authorize-1-login-phone.png").await;
        c.set_window_size(1280, 900).await.unwrap();

        // A wrong password first: the page says so, and nothing else changes.
        type_into(c, "email", "user@example.com").await;
        type_into(c, "password", "wrong").await;
        click(c, "sign-in").await;
        let alert = c
            .wait()
            .for_element(Locator::Id("login-error"))
            .await
            .unwrap();
        assert!(alert.text().await.unwrap().contains("incorrect"));
        save_screenshot(c, "authorize-2-login-error.png").await;

        // The email is kept; type the right password.
        type_into(c, "password", PASSWORD).await;
        click(c, "sign-in").await;
        let approve = c.wait().for_element(Locator::Id("approve")).await.unwrap();
        let body = c
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for text in [
            "Camera Viewer wants to access your account",
            "Developed by Test User (dev@example.com)",
            "Signed in as user@example.com",
            "See your profile",
            "Add, change and delete cameras",
        ] {
            assert!(body.contains(text), "missing {text:?} in {body}");
        }
        save_screenshot(c, "authorize-3-approve.png").await;
        c.set_window_size(390, 844).await.unwrap();
        save_screenshot(c, "authorize-3-approve-phone.png").await;
        c.set_window_size(1280, 900).await.unwrap();

        approve.click().await.unwrap();
        let landed = wait_for_url(c, &callback).await;
        save_screenshot(c, "authorize-4-callback.png").await;
        let query = seen
            .lock()
            .unwrap()
            .clone()
            .expect("callback server saw nothing");
        let params: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
        assert!(landed.contains("code="), "{landed}");
        assert_eq!(params["state"], "CSRF_TOKEN");
        assert_eq!(params["iss"], app.base);
        params["code"].clone()
    }))
    .await;
    let _ = c.clone().close().await;
    let code = match result {
        Ok(code) => code,
        Err(panic) => std::panic::resume_unwind(panic),
    };

    // Spec 000 step 2: curl -F (multipart).
    let form = reqwest::multipart::Form::new()
        .text("grant_type", "authorization_code")
        .text("client_id", client_id.clone())
        .text("client_secret", secret.clone())
        .text("code", code)
        .text("redirect_uri", callback.clone());
    let r = app
        .http
        .post(app.url("/oauth/token/"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "read write");
    let me = app
        .get_bearer("/v1/me/", t["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["email"], "user@example.com");
}
