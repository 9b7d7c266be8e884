//! Sharing and dealers on the dashboard in headless Chromium: an owner shares a camera with an
//! address that has no account yet (the share waits), the guest signs up and sees it under
//! "Shared with me" and through the API, the owner changes the permission and then stops
//! sharing (the guest's next API request is 404); a dealer creates a customer on its Customers
//! page; the customer finds "Managed by" on Account, limits the dealer to read-only and
//! revokes it. Screenshots go to `target/screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common::browser;
use crate::common::browser::{click, save_screenshot, type_into, wait_for_text, wait_for_url};
use crate::common::*;
use camgate_core::model::{CameraFields, DealerLevel};
use fantoccini::Locator;
use serde_json::Value;

async fn sign_in(c: &fantoccini::Client, app: &TestApp, email: &str, next: &str) {
    c.goto(&app.url(next)).await.unwrap();
    wait_for_url(c, &app.url("/login?next=")).await;
    c.wait().for_element(Locator::Id("email")).await.unwrap();
    type_into(c, "email", email).await;
    type_into(c, "password", PASSWORD).await;
    click(c, "sign-in").await;
    wait_for_url(c, &app.url(next)).await;
}

async fn sign_out(c: &fantoccini::Client) {
    click(c, "sign-out").await;
    // The sign-out answer is a page of its own: waiting for a URL under "/" would return at
    // once (the form's `/logout` is one) and race the next navigation with the sign-out.
    wait_for_text(c, "You are signed out").await;
    // A fresh start: no session cookie left behind.
    c.delete_all_cookies().await.unwrap();
}

async fn token_for(app: &TestApp, email: &str) -> String {
    let client = app.public_client("angelcam").await;
    let t = app.password_token(&client, email, PASSWORD).await;
    t["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn sharing_and_dealer_pages_in_headless_chromium() {
    let app = spawn_app().await;
    let owner = app.create_user("owner@example.com", PASSWORD).await;
    let cam = app
        .core
        .create_camera(owner.id, CameraFields::named("Porch".to_string()))
        .await
        .unwrap();
    let dealer = app.create_user("dealer@example.com", PASSWORD).await;
    app.core.set_dealer(dealer.id, true).await.unwrap();

    let Some(browser) = browser::start("sharing_and_dealer_pages_in_headless_chromium").await
    else {
        return;
    };
    let c = &browser.c;
    let result = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        // ---- the owner shares with an address that has no account yet.
        let shares = format!("/dashboard/cameras/{}/shares/", cam.id);
        sign_in(c, &app, "owner@example.com", &shares).await;
        wait_for_text(c, "Not shared with anyone").await;
        type_into(c, "email", "owner@example.com").await;
        click(c, "share-camera").await;
        // Sharing with oneself is a field error, and nothing is created.
        let err = c
            .wait()
            .for_element(Locator::Id("email-error"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(err.contains("owner"), "{err}");
        let email = c.find(Locator::Id("email")).await.unwrap();
        email.clear().await.unwrap();
        email.send_keys("Guest@Example.com").await.unwrap();
        c.find(Locator::Id("permission"))
            .await
            .unwrap()
            .select_by_value("playback")
            .await
            .unwrap();
        click(c, "share-camera").await;
        let text = wait_for_text(c, "Camera shared.").await;
        assert!(text.contains("guest@example.com"), "{text}");
        assert!(text.contains("waiting for sign-up"), "{text}");
        save_screenshot(c, "sharing-01-pending.png").await;

        // ---- the guest signs up: the share applies; the API lists the camera as shared.
        app.create_user("guest@example.com", PASSWORD).await;
        let guest_token = token_for(&app, "guest@example.com").await;
        let list: Value = app
            .get_bearer("/v1/cameras/", &guest_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list["count"], 1, "{list}");
        assert_eq!(list["results"][0]["id"], cam.id);
        assert_eq!(list["results"][0]["shared"], true);
        assert_eq!(list["results"][0]["permission"], "playback");
        assert_eq!(list["results"][0]["owner_name"], "Test User");
        c.refresh().await.unwrap();
        let text = wait_for_text(c, "guest@example.com").await;
        assert!(!text.contains("waiting for sign-up"), "{text}");

        // ---- change the permission to manage.
        let share_id = app
            .core
            .camera_shares(
                &camgate_core::principal::Principal::session(owner.clone()),
                cam.id,
            )
            .await
            .unwrap()[0]
            .id;
        let row = c
            .find(Locator::Id(&format!("share-{share_id}")))
            .await
            .unwrap();
        row.find(Locator::Css("select"))
            .await
            .unwrap()
            .select_by_value("manage")
            .await
            .unwrap();
        row.find(Locator::Css("button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_text(c, "Permission changed.").await;
        let one: Value = app
            .get_bearer(&format!("/v1/cameras/{}/", cam.id), &guest_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(one["permission"], "manage", "{one}");
        sign_out(c).await;

        // ---- the guest's "Shared with me".
        sign_in(c, &app, "guest@example.com", "/dashboard/shared/").await;
        let text = wait_for_text(c, "Porch").await;
        assert!(
            text.contains("Test User") && text.contains("manage"),
            "{text}"
        );
        save_screenshot(c, "sharing-02-shared-with-me.png").await;
        // Not a dealer: no Customers page.
        assert!(c.find(Locator::Id("nav-customers")).await.is_err());
        sign_out(c).await;

        // ---- the owner stops sharing (with a confirmation): the guest's next request is 404.
        sign_in(c, &app, "owner@example.com", &shares).await;
        c.find(Locator::Css(&format!("#share-{share_id} a.link-danger")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_text(c, "Stop sharing").await;
        click(c, "confirm").await;
        wait_for_text(c, "Sharing stopped").await;
        let r = app
            .get_bearer(&format!("/v1/cameras/{}/", cam.id), &guest_token)
            .await;
        assert_eq!(r.status(), 404);
        sign_out(c).await;

        // ---- the dealer creates a customer.
        sign_in(c, &app, "dealer@example.com", "/dashboard/customers/").await;
        wait_for_text(c, "No customers yet").await;
        type_into(c, "email", "customer@example.com").await;
        type_into(c, "password", PASSWORD).await;
        type_into(c, "first_name", "Cara").await;
        click(c, "create-customer").await;
        let text = wait_for_text(c, "Customer account created.").await;
        assert!(
            text.contains("customer@example.com") && text.contains("full"),
            "{text}"
        );
        save_screenshot(c, "sharing-03-customers.png").await;
        let customer = app
            .core
            .user_by_email("customer@example.com")
            .await
            .unwrap()
            .unwrap();
        let (link, d) = app.core.managed_by(customer.id).await.unwrap().unwrap();
        assert_eq!((link.dealer_id, link.level), (dealer.id, DealerLevel::Full));
        assert_eq!(d.id, dealer.id);
        sign_out(c).await;

        // ---- the customer limits, then revokes the dealer.
        sign_in(c, &app, "customer@example.com", "/dashboard/account/").await;
        let text = wait_for_text(c, "Managed by").await;
        assert!(
            text.contains("dealer@example.com") || text.contains("Test User"),
            "{text}"
        );
        click(c, "limit-dealer").await;
        wait_for_text(c, "limited to reading").await;
        let (link, _) = app.core.managed_by(customer.id).await.unwrap().unwrap();
        assert_eq!(link.level, DealerLevel::Limited);
        assert!(c.find(Locator::Id("limit-dealer")).await.is_err());
        click(c, "revoke-dealer").await;
        wait_for_text(c, "Revoke").await;
        click(c, "confirm").await;
        wait_for_text(c, "access is revoked").await;
        let access = c
            .find(Locator::Id("dealer-access"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(access, "revoked");
        let (link, _) = app.core.managed_by(customer.id).await.unwrap().unwrap();
        assert!(link.revoked_at.is_some());
        save_screenshot(c, "sharing-04-managed-by.png").await;
    }))
    .await;
    if result.is_err() {
        if let Ok(png) = c.screenshot().await {
            let path = browser::screenshot_dir().join("sharing-failed.png");
            let _ = std::fs::write(&path, png);
        }
    }
    let _ = c.clone().close().await;
    drop(browser);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
