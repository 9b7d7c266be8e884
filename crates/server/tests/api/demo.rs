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
    let me = app
        .get_bearer("/v1/me/", t["access_token"].as_str().unwrap())
        .await
        .text()
        .await
        .unwrap();
    // The spec's answer, key for key in its order (the id is the demo user's).
    assert_eq!(
        me,
        r#"{"id":1,"email":"user@example.com","first_name":"Keyshawn","last_name":"Jacobs","phone":"+1608494652"}"#
    );
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

/// The demo's batch registration: hashed side by side, stored in the order given, each secret
/// its own; an invalid input stores nothing.
#[tokio::test]
async fn batches_of_users_and_clients_keep_their_order_and_their_own_secrets() {
    use camgate_core::clients::ClientInput;
    use camgate_core::oauth::ClientCredentials;
    use camgate_core::users::UserInput;
    let app = spawn_app().await;
    let users = app
        .core
        .create_users(
            (0..3)
                .map(|i| UserInput {
                    email: format!("batch{i}@example.com"),
                    password: format!("batch-password-{i}"),
                    ..Default::default()
                })
                .collect(),
        )
        .await
        .unwrap();
    let emails: Vec<_> = users.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(
        emails,
        [
            "batch0@example.com",
            "batch1@example.com",
            "batch2@example.com"
        ]
    );
    assert!(
        users.windows(2).all(|w| w[0].id < w[1].id),
        "ids in input order"
    );
    // Each password is the one given for that account.
    for (i, u) in users.iter().enumerate() {
        let stored = app.core.user_by_email(&u.email).await.unwrap().unwrap();
        assert!(camgate_core::password::verify_blocking(
            &stored.password_hash,
            &format!("batch-password-{i}")
        ));
        assert!(!camgate_core::password::verify_blocking(
            &stored.password_hash,
            &format!("batch-password-{}", (i + 1) % 3)
        ));
    }

    let input = |i: usize| ClientInput {
        name: format!("Batch app {i}"),
        owner_id: Some(users[0].id),
        kind: ClientKind::Confidential,
        redirect_uris: Vec::new(),
        grants: vec![GrantType::ClientCredentials],
        scopes: None,
        profile: Some("angelcam".into()),
        client_id: Some(format!("batch.app.{i}")),
        client_secret: Some(format!("batch-secret-{i}")),
        oidc: Default::default(),
        allow_password_without_mfa: false,
    };
    let clients = app
        .core
        .register_clients((0..4).map(input).collect())
        .await
        .unwrap();
    let ids: Vec<_> = clients
        .iter()
        .map(|c| c.client.client_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["batch.app.0", "batch.app.1", "batch.app.2", "batch.app.3"]
    );
    assert!(clients.windows(2).all(|w| w[0].client.pk < w[1].client.pk));
    let creds = |i: usize, secret: usize| ClientCredentials {
        client_id: format!("batch.app.{i}"),
        secret: Some(format!("batch-secret-{secret}")),
        via_basic: false,
    };
    for i in 0..4 {
        assert!(app.core.authenticate_client(&creds(i, i)).await.is_ok());
        assert!(app
            .core
            .authenticate_client(&creds(i, (i + 1) % 4))
            .await
            .is_err());
    }

    // One invalid input (an empty name): none of the batch is stored.
    let mut bad = input(5);
    bad.name = " ".into();
    assert!(app
        .core
        .register_clients(vec![input(4), bad])
        .await
        .is_err());
    assert!(app.core.authenticate_client(&creds(4, 4)).await.is_err());
}
