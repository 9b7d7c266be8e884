#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common::*;

#[tokio::test]
async fn spec_001_password_request_as_written() {
    let app = spawn_app().await;
    app.create_user("user@example.com", "secret").await;
    let id = "DBaJcGbAT2Tbvbrz0fLh1uRmYURprJAQPxwFsgoo";
    let mut input = client_input(
        "quick start",
        camgate_core::model::ClientKind::Public,
        "angelcam",
    );
    input.client_id = Some(id.into());
    app.register(input).await;
    let r = app
        .http
        .post(app.url("/oauth/token/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id={id}&grant_type=password&username=user%40example.com&password=secret"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 36000);
    assert_eq!(v["scope"], "read write");
    assert_eq!(v["access_token"].as_str().unwrap().len(), 30);
    assert_eq!(v["refresh_token"].as_str().unwrap().len(), 30);
    let me = app
        .get_bearer("/v1/me/", v["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 200);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["email"], "user@example.com");
    assert_eq!(me.as_object().unwrap().len(), 5);
}
