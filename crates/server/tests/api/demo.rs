//! `serve --demo` fixtures: every spec request works against them as written (host aside).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common::*;

use camgate_core::model::{ClientKind, GrantType};
use camgate_server::demo;
use serde_json::Value;

#[tokio::test]
async fn demo_seeds_once_and_serves_the_spec_requests() {
    let app = spawn_app().await;
    let info = demo::seed(&app.core).await.unwrap().expect("seeded");
    assert!(
        demo::seed(&app.core).await.unwrap().is_none(),
        "seeds only an empty database"
    );

    // Spec 001, as written.
    let r = app
        .http
        .post(app.url("/oauth/token/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("client_id=DBaJcGbAT2Tbvbrz0fLh1uRmYURprJAQPxwFsgoo&grant_type=password&username=user%40example.com&password=secret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let me: Value = app
        .get_bearer("/v1/me/", t["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["first_name"], "Keyshawn");
    let cams: Value = app
        .get_bearer("/v1/cameras/?limit=5", t["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cams["count"], 20);
    assert_eq!(cams["results"].as_array().unwrap().len(), 5);

    // Spec 003, as written.
    let r = app
        .http
        .post(app.url("/oauth/token?grant_type=password&scope=write&username=user%40example.com&password=secret"))
        .header("Accept", "application/json")
        .header("Authorization", "Basic Y2FtZXJhbWFuYWdlci50ZXN0OnF3ZXJ0eXVpb3Bhc2RmZ2hqa2x6eGN2Ym5tMTIzNDU=")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Spec 000's personal access token.
    let r = app
        .http
        .get(app.url("/v1/me/"))
        .header("Authorization", format!("PersonalAccessToken {}", info.pat))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Spec 000's authorization-code exchange uses a client secret without PKCE: the web app is
    // confidential and its printed secret authenticates.
    let web = app
        .core
        .store
        .client_by_client_id(&info.web_client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(web.kind, ClientKind::Confidential);
    assert!(web.allows_grant(GrantType::AuthorizationCode));
    assert!(web
        .redirect_uris
        .contains(&"https://yourapp.com/callback".to_string()));
    let creds = camgate_core::oauth::ClientCredentials {
        client_id: info.web_client_id.clone(),
        secret: Some(info.web_client_secret.clone()),
        via_basic: false,
    };
    assert!(app.core.authenticate_client(&creds).await.is_ok());
    let text = demo::instructions(&app.base, &info);
    assert!(text.contains(&info.web_client_secret) && text.contains(&info.pat));
}
