//! Several nodes on one database: whatever one node changes, the other honours at its
//! next request, and concurrent refreshes split across nodes obey single use, grace and theft
//! rules. Runs on the backend `CAMGATE_TEST_DATABASE` selects (PostgreSQL in CI's second pass).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common::*;

use camgate_core::model::CameraFields;
use camgate_core::scope::ScopeSet;
use serde_json::Value;

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap().to_string()
}

async fn refresh(app: &TestApp, client: &str, rt: &str) -> (u16, Value) {
    let r = app
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", client),
            ("refresh_token", rt),
        ])
        .await;
    let st = r.status().as_u16();
    (st, r.json().await.unwrap())
}

async fn pat_get(app: &TestApp, pat: &str) -> u16 {
    app.http
        .get(app.url("/v1/me/"))
        .header("Authorization", format!("PersonalAccessToken {pat}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Uses an access token on `app` a few times, so that its threads remember it (on SQLite a
/// node answers a lookup from memory while the database is unchanged: what the other node
/// changes next must end that).
async fn remembered(app: &TestApp, at: &str) {
    for _ in 0..4 {
        assert_eq!(app.get_bearer("/v1/me/", at).await.status(), 200);
    }
}

#[tokio::test]
async fn token_from_a_works_on_b_and_revocation_on_b_reaches_a() {
    let a = spawn_app().await;
    let b = a.spawn_node().await;
    a.create_user("u@example.com", PASSWORD).await;
    let client = a.public_client("angelcam").await;
    let t = a.password_token(&client, "u@example.com", PASSWORD).await;
    let at = s(&t, "access_token");
    assert_eq!(b.get_bearer("/v1/me/", &at).await.status(), 200);
    remembered(&a, &at).await;
    let r = b
        .http
        .post(b.url("/oauth/revoke"))
        .form(&[
            ("client_id", client.as_str()),
            ("token", s(&t, "refresh_token").as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(a.get_bearer("/v1/me/", &at).await.status(), 401);
    assert_eq!(refresh(&a, &client, &s(&t, "refresh_token")).await.0, 400);
}

#[tokio::test]
async fn logout_password_change_pat_revocation_and_disabling_cross_nodes() {
    let a = spawn_app().await;
    let b = a.spawn_node().await;
    let user = a.create_user("u@example.com", PASSWORD).await;
    let client = a.public_client("angelcam").await;

    // Logout on B.
    let t = a.password_token(&client, "u@example.com", PASSWORD).await;
    remembered(&a, &s(&t, "access_token")).await;
    let r = b
        .http
        .delete(b.url("/rest/v2.0/users/self/tokens/current"))
        .bearer_auth(s(&t, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        a.get_bearer("/v1/me/", &s(&t, "access_token"))
            .await
            .status(),
        401
    );

    // PAT revocation on B (logout with the PAT revokes it).
    let (_, pat) = a
        .core
        .create_pat(user.id, "p", ScopeSet::READ_WRITE, None)
        .await
        .unwrap();
    assert_eq!(pat_get(&a, &pat).await, 200);
    let r = b
        .http
        .delete(b.url("/rest/v2.0/users/self/tokens/current"))
        .header("Authorization", format!("PersonalAccessToken {pat}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(pat_get(&a, &pat).await, 401);

    // Disabling on B: A refuses the token and the PAT at once; enabling restores them.
    let t = a.password_token(&client, "u@example.com", PASSWORD).await;
    let (_, pat) = a
        .core
        .create_pat(user.id, "q", ScopeSet::READ_WRITE, None)
        .await
        .unwrap();
    remembered(&a, &s(&t, "access_token")).await;
    b.core.set_user_disabled(user.id, true).await.unwrap();
    assert_eq!(
        a.get_bearer("/v1/me/", &s(&t, "access_token"))
            .await
            .status(),
        401
    );
    assert_eq!(pat_get(&a, &pat).await, 401);
    let r = a
        .token_form(&[
            ("client_id", &client),
            ("grant_type", "password"),
            ("username", "u@example.com"),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(r.status(), 400, "a disabled user cannot log in");
    b.core.set_user_disabled(user.id, false).await.unwrap();
    assert_eq!(
        a.get_bearer("/v1/me/", &s(&t, "access_token"))
            .await
            .status(),
        200
    );

    // Password change on B revokes everything on A.
    remembered(&a, &s(&t, "access_token")).await;
    b.core
        .change_password(user.id, "another password".into())
        .await
        .unwrap();
    assert_eq!(
        a.get_bearer("/v1/me/", &s(&t, "access_token"))
            .await
            .status(),
        401
    );
    assert_eq!(pat_get(&a, &pat).await, 401);
    assert_eq!(refresh(&a, &client, &s(&t, "refresh_token")).await.0, 400);
}

#[tokio::test]
async fn concurrent_refreshes_across_nodes_single_use() {
    let a = spawn_app_with(|c| c.refresh_grace_secs = 0).await;
    let b = a.spawn_node().await;
    a.create_user("u@example.com", PASSWORD).await;
    let client = a.public_client("angelcam").await;
    let t = a.password_token(&client, "u@example.com", PASSWORD).await;
    let rt = s(&t, "refresh_token");
    let futs = (0..40).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        let (client, rt) = (client.clone(), rt.clone());
        async move { refresh(node, &client, &rt).await }
    });
    let results = futures_util::future::join_all(futs).await;
    let ok = results.iter().filter(|(st, _)| *st == 200).count();
    assert_eq!(ok, 1, "exactly one node wins the claim");
    for (st, body) in &results {
        assert!(
            *st == 200 || (*st == 400 && body["error"] == "invalid_grant"),
            "{st} {body}"
        );
    }
}

#[tokio::test]
async fn concurrent_refreshes_across_nodes_within_grace_give_one_pair() {
    let a = spawn_app().await;
    let b = a.spawn_node().await;
    a.create_user("u@example.com", PASSWORD).await;
    let client = a.public_client("angelcam").await;
    let t = a.password_token(&client, "u@example.com", PASSWORD).await;
    let rt = s(&t, "refresh_token");
    let futs = (0..40).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        let (client, rt) = (client.clone(), rt.clone());
        async move { refresh(node, &client, &rt).await }
    });
    let results = futures_util::future::join_all(futs).await;
    let mut pairs = std::collections::HashSet::new();
    for (st, body) in &results {
        match st {
            200 => {
                pairs.insert((s(body, "access_token"), s(body, "refresh_token")));
            }
            400 => assert_eq!(body["error"], "invalid_grant"),
            _ => panic!("unexpected {st}: {body}"),
        }
    }
    assert_eq!(pairs.len(), 1);
    // After the window, a replay on B revokes the family that A handed out.
    let (at, _) = pairs.into_iter().next().unwrap();
    assert_eq!(a.get_bearer("/v1/me/", &at).await.status(), 200);
    a.clock.advance(11);
    assert_eq!(refresh(&b, &client, &rt).await.0, 400);
    assert_eq!(a.get_bearer("/v1/me/", &at).await.status(), 401);
}

#[tokio::test]
async fn concurrent_partial_updates_lose_nothing() {
    let a = spawn_app().await;
    let b = a.spawn_node().await;
    let (user, token) = a.user_with_token("u@example.com").await;
    let cam = a
        .core
        .create_camera(user.id, CameraFields::named("start"))
        .await
        .unwrap();
    let path = format!("/v1/cameras/{}/", cam.id);
    for round in 0..15 {
        let name = format!("name {round}");
        let desc = format!("description {round}");
        let put = |node: &TestApp, body: Value| {
            node.http
                .put(node.url(&path))
                .bearer_auth(&token)
                .json(&body)
                .send()
        };
        let (r1, r2) = tokio::join!(
            put(&a, serde_json::json!({"name": name})),
            put(&b, serde_json::json!({"description": desc}))
        );
        assert_eq!(r1.unwrap().status(), 200);
        assert_eq!(r2.unwrap().status(), 200);
        let v: Value = a.get_bearer(&path, &token).await.json().await.unwrap();
        assert_eq!(v["name"], name.as_str(), "round {round}");
        assert_eq!(v["description"], desc.as_str(), "round {round}");
    }
}
