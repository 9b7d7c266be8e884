//! The developer dashboard in a real browser: headless Chromium driven through
//! chromedriver (WebDriver, via fantoccini) signs in, creates an application, reads its client
//! secret off the page, uses it at the token endpoint, creates a personal access token, calls
//! `/v1/me/` with it, revokes it and sees 401 — then visits every other page. Screenshots of
//! each page (desktop, and phone width for some) are saved under `target/screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without them the test prints a notice and
//! passes — unless `CAMGATE_REQUIRE_BROWSER=1`, when it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common::browser;

use crate::common::browser::{
    click, save_screenshot, type_into, value_of, wait_for_text, wait_for_url,
};
use crate::common::*;
use fantoccini::Locator;
use serde_json::Value;

async fn shot(c: &fantoccini::Client, name: &str) {
    save_screenshot(c, &format!("dashboard-{name}.png")).await;
}

/// A full-page screenshot at phone width, then back to the desktop size.
async fn phone_shot(c: &fantoccini::Client, name: &str) {
    c.set_window_size(390, 844).await.unwrap();
    shot(c, &format!("{name}-phone")).await;
    c.set_window_size(1280, 900).await.unwrap();
}

async fn pat_me(app: &TestApp, token: &str) -> u16 {
    app.http
        .get(app.url("/v1/me/"))
        .header("authorization", format!("PersonalAccessToken {token}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn dashboard_in_headless_chromium() {
    // An administrator (so the Users page can be shown too) and a second user.
    let app = spawn_app().await;
    app.core
        .create_user(camgate_core::users::UserInput {
            email: "dev@example.com".into(),
            password: PASSWORD.into(),
            first_name: "Dana".into(),
            last_name: "Developer".into(),
            phone: "+420 555 0100".into(),
            is_admin: true,
            email_verified: false,
        })
        .await
        .unwrap();
    app.create_user("user@example.com", PASSWORD).await;

    let Some(browser) = browser::start("dashboard_in_headless_chromium").await else {
        return;
    };
    let c = &browser.c;

    let result = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        // ---- log in: the dashboard sends us to the login page and back.
        c.goto(&app.url("/dashboard/apps/")).await.unwrap();
        wait_for_url(c, &app.url("/login?next=")).await;
        c.wait().for_element(Locator::Id("email")).await.unwrap();
        shot(c, "01-login").await;
        type_into(c, "email", "dev@example.com").await;
        type_into(c, "password", PASSWORD).await;
        click(c, "sign-in").await;
        wait_for_url(c, &app.url("/dashboard/apps/")).await;

        // ---- applications: empty state, form, a field error, the secret shown once.
        let text = wait_for_text(c, "No applications yet").await;
        assert!(text.contains("Create your first application"), "{text}");
        shot(c, "02-apps-empty").await;
        click(c, "new-app").await;
        c.wait()
            .for_element(Locator::Id("create-app"))
            .await
            .unwrap();
        type_into(c, "name", "Camera Viewer").await;
        type_into(c, "redirect_uris", "http://viewer.example.com/callback").await;
        click(c, "grant-password").await;
        shot(c, "03-app-new").await;
        click(c, "create-app").await;
        let error = c
            .wait()
            .for_element(Locator::Id("redirect_uris-error"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(error.contains("loopback"), "{error}");
        // What was typed is still there.
        assert_eq!(value_of(c, "name").await, "Camera Viewer");
        shot(c, "04-app-new-error").await;
        let uris = c.find(Locator::Id("redirect_uris")).await.unwrap();
        uris.clear().await.unwrap();
        uris.send_keys("https://viewer.example.com/callback")
            .await
            .unwrap();
        click(c, "create-app").await;
        wait_for_text(c, "Copy the client secret now").await;
        let client_id = value_of(c, "client-id").await;
        let secret = value_of(c, "client-secret").await;
        assert_eq!(client_id.len(), 40, "{client_id}");
        assert!(secret.starts_with("cgs_"), "{secret}");
        // The copy button is there with JavaScript (hidden without), and does something.
        let copy = c
            .find(Locator::Css("button[data-copy=\"client-secret\"]"))
            .await
            .unwrap();
        assert!(copy.is_displayed().await.unwrap());
        copy.click().await.unwrap();
        // The script updates the label asynchronously (clipboard promise): wait for it.
        let mut label = copy.text().await.unwrap();
        for _ in 0..50 {
            if label != "Copy" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            label = copy.text().await.unwrap();
        }
        assert!(label == "Copied" || label == "Press Ctrl+C", "{label}");
        shot(c, "05-app-secret").await;
        phone_shot(c, "05-app-secret").await;

        // Use the secret at the token endpoint (password grant, ticked on the form).
        let r = app
            .token_form(&[
                ("grant_type", "password"),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("username", "user@example.com"),
                ("password", PASSWORD),
            ])
            .await;
        assert_eq!(r.status(), 200);
        let t: Value = r.json().await.unwrap();
        let me = app
            .get_bearer("/v1/me/", t["access_token"].as_str().unwrap())
            .await;
        assert_eq!(me.status(), 200);
        // …and for the dashboard's own user, so "Authorized apps" has something to show.
        let r = app
            .token_form(&[
                ("grant_type", "password"),
                ("client_id", &client_id),
                ("client_secret", &secret),
                ("username", "dev@example.com"),
                ("password", PASSWORD),
            ])
            .await;
        assert_eq!(r.status(), 200);

        click(c, "done").await;
        let text = wait_for_text(c, "Credentials").await;
        assert!(!text.contains(&secret), "the secret is shown again");
        assert!(text.contains("https://viewer.example.com/callback"));
        shot(c, "06-app").await;
        click(c, "rotate-secret").await;
        wait_for_text(c, "Rotate the secret of Camera Viewer?").await;
        shot(c, "07-app-rotate-confirm").await;
        click(c, "cancel").await;
        wait_for_text(c, "Credentials").await;
        click(c, "edit-app").await;
        c.wait().for_element(Locator::Id("save-app")).await.unwrap();
        shot(c, "08-app-edit").await;
        click(c, "nav-apps").await;
        wait_for_text(c, "Camera Viewer").await;
        shot(c, "09-apps").await;
        phone_shot(c, "09-apps").await;

        // ---- personal access tokens: create, use, revoke, 401.
        click(c, "nav-tokens").await;
        wait_for_text(c, "No access tokens").await;
        shot(c, "10-tokens-empty").await;
        click(c, "new-token").await;
        c.wait()
            .for_element(Locator::Id("create-token"))
            .await
            .unwrap();
        type_into(c, "token-name", "backup script").await;
        shot(c, "11-token-new").await;
        click(c, "create-token").await;
        wait_for_text(c, "Copy the token now").await;
        let token = value_of(c, "token-value").await;
        assert!(token.starts_with("cgpat_"), "{token}");
        shot(c, "12-token-created").await;
        assert_eq!(pat_me(&app, &token).await, 200);
        click(c, "done").await;
        let text = wait_for_text(c, "backup script").await;
        assert!(text.contains(&token[..10]) && !text.contains(&token));
        assert!(text.contains("just now"), "{text}");
        shot(c, "13-tokens").await;
        phone_shot(c, "13-tokens").await;
        c.find(Locator::Css("a[id^=\"revoke-\"]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_text(c, "Revoke the token “backup script”?").await;
        shot(c, "14-token-revoke-confirm").await;
        // Until confirmed, nothing happened.
        assert_eq!(pat_me(&app, &token).await, 200);
        click(c, "confirm").await;
        wait_for_text(c, "Token revoked.").await;
        shot(c, "15-tokens-revoked").await;
        assert_eq!(pat_me(&app, &token).await, 401);

        // ---- authorized apps.
        click(c, "nav-authorized").await;
        wait_for_text(c, "Signed in with password").await;
        shot(c, "16-authorized").await;

        // ---- cameras: empty, add (with a field error first), list, edit, delete confirmation.
        click(c, "nav-cameras").await;
        wait_for_text(c, "No cameras yet").await;
        shot(c, "17-cameras-empty").await;
        click(c, "new-camera").await;
        c.wait()
            .for_element(Locator::Id("save-camera"))
            .await
            .unwrap();
        type_into(c, "name", "Front door").await;
        c.find(Locator::Css("input[name=\"stream_format_0\"]"))
            .await
            .unwrap()
            .send_keys("hls")
            .await
            .unwrap();
        c.find(Locator::Css("input[name=\"stream_url_0\"]"))
            .await
            .unwrap()
            .send_keys("not a url")
            .await
            .unwrap();
        type_into(c, "city", "Brno").await;
        type_into(c, "country", "Czechia").await;
        click(c, "save-camera").await;
        c.wait()
            .for_element(Locator::Id("streams-error"))
            .await
            .unwrap();
        shot(c, "18-camera-error").await;
        let url = c
            .find(Locator::Css("input[name=\"stream_url_0\"]"))
            .await
            .unwrap();
        url.clear().await.unwrap();
        url.send_keys("https://cams.example.com/front.m3u8")
            .await
            .unwrap();
        click(c, "save-camera").await;
        wait_for_text(c, "Camera added.").await;
        shot(c, "19-cameras").await;
        c.find(Locator::LinkText("Front door"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait()
            .for_element(Locator::Id("delete-camera"))
            .await
            .unwrap();
        shot(c, "20-camera-edit").await;
        click(c, "delete-camera").await;
        wait_for_text(c, "Delete the camera “Front door”?").await;
        shot(c, "21-camera-delete-confirm").await;
        click(c, "cancel").await;
        c.wait()
            .for_element(Locator::Id("save-camera"))
            .await
            .unwrap();

        // ---- account and administration.
        click(c, "nav-account").await;
        wait_for_text(c, "Change password").await;
        type_into(c, "current_password", "not my password").await;
        type_into(c, "new_password", "a brand new long password").await;
        type_into(c, "confirm_password", "a brand new long password").await;
        click(c, "change-password").await;
        let error = c
            .wait()
            .for_element(Locator::Id("current_password-error"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(error.contains("not correct"), "{error}");
        shot(c, "22-account").await;
        click(c, "nav-admin").await;
        wait_for_text(c, "Create a user").await;
        shot(c, "23-admin-users").await;
        click(c, "nav-apps").await;
        wait_for_text(c, "Camera Viewer").await;
        // The overview last (it counts what we made).
        c.goto(&app.url("/dashboard/")).await.unwrap();
        wait_for_text(c, "Welcome, Dana Developer").await;
        shot(c, "00-overview").await;
        phone_shot(c, "00-overview").await;
        click(c, "sign-out").await;
        wait_for_text(c, "You are signed out").await;
    }))
    .await;
    let _ = c.clone().close().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
