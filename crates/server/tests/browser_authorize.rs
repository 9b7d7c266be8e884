//! The authorization-code grant in a real browser (issue 3): headless Chromium driven through
//! chromedriver (WebDriver, via fantoccini) opens `/oauth/authorize/` as spec 000 step 1 does,
//! signs in, approves, lands on a local callback server; the test then exchanges the code with
//! a multipart body (spec 000 step 2, `curl -F`) and calls `/v1/me/`. Screenshots of the login
//! and approval pages (desktop and phone width) are saved under `target/screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test prints a notice and
//! passes — unless `CAMGATE_REQUIRE_BROWSER=1`, when it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]
mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camgate_core::model::ClientKind;
use common::*;
use fantoccini::{ClientBuilder, Locator};
use serde_json::{json, Value};

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Kills the child process when dropped (chromedriver must not outlive the test).
struct ChildGuard(std::process::Child);
impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn save_screenshot(c: &fantoccini::Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let path = screenshot_dir().join(name);
    std::fs::write(&path, png).unwrap();
    println!("screenshot: {}", path.display());
}

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

async fn wait_for_driver(port: u16) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http
            .get(format!("http://127.0.0.1:{port}/status"))
            .send()
            .await
        {
            if let Ok(v) = r.json::<Value>().await {
                if v["value"]["ready"] == true {
                    return;
                }
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn type_into(c: &fantoccini::Client, id: &str, text: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

async fn click(c: &fantoccini::Client, id: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn wait_for_url(c: &fantoccini::Client, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let u = c.current_url().await.unwrap().to_string();
        if u.starts_with(prefix) {
            return u;
        }
        assert!(Instant::now() < deadline, "never reached {prefix}; at {u}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn spec_000_in_headless_chromium() {
    let required = std::env::var("CAMGATE_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let chrome = which(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = which(&["chromedriver"]);
    let (chrome, driver) = match (chrome, driver) {
        (Some(c), Some(d)) => (c, d),
        (c, d) => {
            let msg = format!(
                "browser test needs chromium and chromedriver (found chromium: {}, chromedriver: {}); \
                 install Debian's `chromium chromium-driver`",
                c.is_some(),
                d.is_some()
            );
            if required {
                panic!("CAMGATE_REQUIRE_BROWSER=1: {msg}");
            }
            // Straight to the stderr handle: libtest captures eprintln! of passing tests.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED spec_000_in_headless_chromium: {msg}"
            );
            return;
        }
    };

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

    // chromedriver on a free port, Chromium headless with a fresh profile.
    let port = free_port();
    let _driver = ChildGuard(
        std::process::Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    wait_for_driver(port).await;
    let profile = tempfile::tempdir().unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chrome.to_string_lossy(),
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--disable-dev-shm-usage",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }),
    );
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("connect to chromedriver");

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
        save_screenshot(&c, "authorize-0-error.png").await;

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
        wait_for_url(&c, &app.url("/login?request_id=")).await;
        c.wait().for_element(Locator::Id("email")).await.unwrap();
        let title = c.title().await.unwrap();
        assert_eq!(title, "Sign in · camgate");
        save_screenshot(&c, "authorize-1-login.png").await;
        c.set_window_size(390, 844).await.unwrap();
        save_screenshot(&c, "authorize-1-login-phone.png").await;
        c.set_window_size(1280, 900).await.unwrap();

        // A wrong password first: the page says so, and nothing else changes.
        type_into(&c, "email", "user@example.com").await;
        type_into(&c, "password", "wrong").await;
        click(&c, "sign-in").await;
        let alert = c
            .wait()
            .for_element(Locator::Id("login-error"))
            .await
            .unwrap();
        assert!(alert.text().await.unwrap().contains("incorrect"));
        save_screenshot(&c, "authorize-2-login-error.png").await;

        // The email is kept; type the right password.
        type_into(&c, "password", PASSWORD).await;
        click(&c, "sign-in").await;
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
        save_screenshot(&c, "authorize-3-approve.png").await;
        c.set_window_size(390, 844).await.unwrap();
        save_screenshot(&c, "authorize-3-approve-phone.png").await;
        c.set_window_size(1280, 900).await.unwrap();

        approve.click().await.unwrap();
        let landed = wait_for_url(&c, &callback).await;
        save_screenshot(&c, "authorize-4-callback.png").await;
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
    let _ = c.close().await;
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
