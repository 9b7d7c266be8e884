//! Token lifecycle: revocation (RFC 7009), logout (specs 003/004), introspection (RFC 7662),
//! metadata (RFC 8414), theft detection, password change, sweeper, audit.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common::*;

use camgate_core::model::{ClientKind, GrantType, NewAccessToken, NewFamily, NewRefreshToken};
use camgate_core::scope::ScopeSet;
use serde_json::Value;

const CM_BASIC: &str = "Basic Y2FtZXJhbWFuYWdlci50ZXN0OnF3ZXJ0eXVpb3Bhc2RmZ2hqa2x6eGN2Ym5tMTIzNDU=";

async fn cm_app() -> TestApp {
    let app = spawn_app().await;
    app.create_user("user@example.com", "secret").await;
    let mut input = client_input("CM", ClientKind::Confidential, "cameramanager");
    input.client_id = Some("cameramanager.test".into());
    input.client_secret = Some("qwertyuiopasdfghjklzxcvbnm12345".into());
    app.register(input).await;
    app
}

async fn cm_login(app: &TestApp) -> Value {
    let r = app
        .http
        .post(app.url("/oauth/token?grant_type=password&scope=write&username=user%40example.com&password=secret"))
        .header("Accept", "application/json")
        .header("Authorization", CM_BASIC)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap().to_string()
}

async fn refresh(app: &TestApp, client_id: &str, rt: &str) -> reqwest::Response {
    app.token_form(&[
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("refresh_token", rt),
    ])
    .await
}

/// The status of `GET /v1/me/` with the access token of the token answer `t`.
async fn me_status(app: &TestApp, t: &Value) -> reqwest::StatusCode {
    app.get_bearer("/v1/me/", &s(t, "access_token"))
        .await
        .status()
}

/// The status of a refresh with the refresh token of the token answer `t`.
async fn refresh_status(app: &TestApp, client_id: &str, t: &Value) -> reqwest::StatusCode {
    refresh(app, client_id, &s(t, "refresh_token"))
        .await
        .status()
}

#[tokio::test]
async fn spec_003_logout_deletes_access_and_refresh_token() {
    let app = cm_app().await;
    let t = cm_login(&app).await;
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["expires_in"], 43199);
    assert_eq!(t["scope"], "write");
    // Refresh through the query string: new access token, same refresh token (spec 003 §3).
    let url = format!(
        "/oauth/token?grant_type=refresh_token&scope=write&refresh_token={}",
        s(&t, "refresh_token")
    );
    let r = app
        .http
        .post(app.url(&url))
        .header("Authorization", CM_BASIC)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t2: Value = r.json().await.unwrap();
    assert_eq!(t2["refresh_token"], t["refresh_token"]);
    assert_ne!(t2["access_token"], t["access_token"]);

    let me = app
        .get_bearer("/rest/v2.0/users/self", &s(&t2, "access_token"))
        .await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["email"], "user@example.com");

    let r = app
        .http
        .delete(app.url("/rest/v2.0/users/self/tokens/current"))
        .header("Accept", "application/json")
        .bearer_auth(s(&t2, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Both the access token and the refresh token are gone.
    let r = app
        .get_bearer("/rest/v2.0/users/self", &s(&t2, "access_token"))
        .await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], 401);
    assert_eq!(body["title"], "not_authenticated");
    assert!(body["detail"].is_string());
    let r = app
        .http
        .post(app.url(&url))
        .header("Authorization", CM_BASIC)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
}

#[tokio::test]
async fn revoke_access_token_at_angelcam_path() {
    let app = spawn_app().await;
    app.create_user("a@example.com", PASSWORD).await;
    let client = app.public_client("angelcam").await;
    let t = app.password_token(&client, "a@example.com", PASSWORD).await;
    let at = s(&t, "access_token");
    let r = app
        .http
        .post(app.url("/oauth/token-revoke/"))
        .form(&[("client_id", client.as_str()), ("token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.bytes().await.unwrap().is_empty());
    assert_eq!(app.get_bearer("/v1/me/", &at).await.status(), 401);
    // Revoking the access token leaves the refresh token usable (RFC 7009 §2.1 MAY, not MUST).
    assert_eq!(refresh_status(&app, &client, &t).await, 200);
}

#[tokio::test]
async fn revoke_refresh_token_with_wrong_hint_revokes_family() {
    let app = spawn_app().await;
    app.create_user("a@example.com", PASSWORD).await;
    let (client, secret) = app.confidential_client("angelcam").await;
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&client, Some(&secret))
        .form(&[
            ("grant_type", "password"),
            ("username", "a@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let r = app
        .http
        .post(app.url("/oauth/revoke"))
        .basic_auth(&client, Some(&secret))
        .form(&[
            ("token", s(&t, "refresh_token").as_str()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(me_status(&app, &t).await, 401);
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&client, Some(&secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", s(&t, "refresh_token").as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn revoking_another_clients_token_leaves_it_active() {
    let app = spawn_app().await;
    app.create_user("a@example.com", PASSWORD).await;
    let mine = app.public_client("angelcam").await;
    let other = app.public_client("angelcam").await;
    let t = app.password_token(&mine, "a@example.com", PASSWORD).await;
    for token in [s(&t, "access_token"), s(&t, "refresh_token")] {
        let r = app
            .http
            .post(app.url("/oauth/revoke"))
            .form(&[("client_id", other.as_str()), ("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "RFC 7009 §2.2: same answer as for a revoked token"
        );
    }
    assert_eq!(me_status(&app, &t).await, 200);
    assert_eq!(refresh_status(&app, &mine, &t).await, 200);
}

#[tokio::test]
async fn revoke_errors() {
    let app = spawn_app().await;
    let client = app.public_client("angelcam").await;
    // Unknown token: 200.
    let r = app
        .http
        .post(app.url("/oauth/revoke"))
        .form(&[("client_id", client.as_str()), ("token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // No client authentication: 401 invalid_client.
    let r = app
        .http
        .post(app.url("/oauth/revoke"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_client");
    // Missing token: 400 invalid_request.
    let r = app
        .http
        .post(app.url("/oauth/revoke"))
        .form(&[("client_id", client.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_request");
    // GET is not allowed.
    assert_eq!(
        app.http
            .get(app.url("/oauth/revoke"))
            .send()
            .await
            .unwrap()
            .status(),
        405
    );
}

async fn introspect(app: &TestApp, id: &str, secret: &str, token: &str) -> reqwest::Response {
    app.http
        .post(app.url("/oauth/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn introspection_of_live_revoked_and_expired_tokens() {
    let app = spawn_app().await;
    let user = app.create_user("a@example.com", PASSWORD).await;
    let public = app.public_client("angelcam").await;
    let (rs, rs_secret) = app.confidential_client("angelcam").await;
    let t = app.password_token(&public, "a@example.com", PASSWORD).await;
    let at = s(&t, "access_token");

    let r = introspect(&app, &rs, &rs_secret, &at).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["active"], true);
    assert_eq!(v["scope"], "read write");
    assert_eq!(v["client_id"], public.as_str());
    assert_eq!(v["username"], "a@example.com");
    assert_eq!(v["token_type"], "access_token");
    assert_eq!(v["sub"], user.id.to_string());
    assert_eq!(v["aud"], public.as_str());
    assert_eq!(v["iss"], app.base.as_str());
    let iat = v["iat"].as_i64().unwrap();
    assert_eq!(v["exp"].as_i64().unwrap(), iat + 36000);

    let v: Value = introspect(&app, &rs, &rs_secret, &s(&t, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["active"], true);
    assert_eq!(v["token_type"], "refresh_token");

    // Expired: only {"active": false}.
    app.clock.advance(36_001);
    let v: Value = introspect(&app, &rs, &rs_secret, &at)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v, serde_json::json!({"active": false}));

    // Revoked: only {"active": false}.
    let t = app.password_token(&public, "a@example.com", PASSWORD).await;
    let at = s(&t, "access_token");
    app.http
        .post(app.url("/oauth/revoke"))
        .form(&[("client_id", public.as_str()), ("token", at.as_str())])
        .send()
        .await
        .unwrap();
    let v: Value = introspect(&app, &rs, &rs_secret, &at)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v, serde_json::json!({"active": false}));
    let v: Value = introspect(&app, &rs, &rs_secret, "garbage")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v, serde_json::json!({"active": false}));

    // A public client cannot introspect; nor can a wrong secret.
    let r = app
        .http
        .post(app.url("/oauth/introspect"))
        .form(&[("client_id", public.as_str()), ("token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(introspect(&app, &rs, "wrong", &at).await.status(), 401);
}

#[tokio::test]
async fn metadata_lists_every_endpoint() {
    let app = spawn_app().await;
    let r = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let base = app.base.as_str();
    assert_eq!(v["issuer"], base);
    assert_eq!(v["token_endpoint"], format!("{base}/oauth/token"));
    assert_eq!(
        v["authorization_endpoint"],
        format!("{base}/oauth/authorize")
    );
    assert_eq!(v["revocation_endpoint"], format!("{base}/oauth/revoke"));
    assert_eq!(
        v["introspection_endpoint"],
        format!("{base}/oauth/introspect")
    );
    assert_eq!(
        v["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert!(v["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&"refresh_token".into()));
    assert!(v["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .contains(&"client_secret_basic".into()));
    assert!(v["scopes_supported"]
        .as_array()
        .unwrap()
        .contains(&"read".into()));
}

#[tokio::test]
async fn metadata_issuer_comes_from_config() {
    let app = spawn_app_with(|c| c.issuer = Some("https://auth.example.com".into())).await;
    let v: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["issuer"], "https://auth.example.com");
    assert_eq!(v["token_endpoint"], "https://auth.example.com/oauth/token");
}

#[tokio::test]
async fn replay_after_grace_revokes_live_family_and_is_audited() {
    let app = spawn_app().await;
    app.create_user("a@example.com", PASSWORD).await;
    let client = app.public_client("angelcam").await;
    let t0 = app.password_token(&client, "a@example.com", PASSWORD).await;
    let r = refresh(&app, &client, &s(&t0, "refresh_token")).await;
    assert_eq!(r.status(), 200);
    let t1: Value = r.json().await.unwrap();
    // Retry inside the grace window: the same successor pair.
    let r = refresh(&app, &client, &s(&t0, "refresh_token")).await;
    assert_eq!(r.status(), 200);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["access_token"], t1["access_token"]);
    assert_eq!(again["refresh_token"], t1["refresh_token"]);
    assert_eq!(me_status(&app, &t1).await, 200);
    // After the window, the replay is theft: the live successor dies too.
    app.clock.advance(11);
    let r = refresh(&app, &client, &s(&t0, "refresh_token")).await;
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    assert_eq!(me_status(&app, &t1).await, 401);
    assert_eq!(refresh_status(&app, &client, &t1).await, 400);
    let events = app.core.store.recent_audit(50).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.kind == "theft_detected" && e.client_id.as_deref() == Some(client.as_str())));
}

#[tokio::test]
async fn grace_zero_means_immediate_theft_detection() {
    let app = spawn_app_with(|c| c.refresh_grace_secs = 0).await;
    app.create_user("a@example.com", PASSWORD).await;
    let client = app.public_client("angelcam").await;
    let t0 = app.password_token(&client, "a@example.com", PASSWORD).await;
    let t1: Value = refresh(&app, &client, &s(&t0, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refresh_status(&app, &client, &t0).await, 400);
    assert_eq!(me_status(&app, &t1).await, 401);
}

#[tokio::test]
async fn refresh_storm_of_100_yields_one_pair() {
    let app = spawn_app().await;
    app.create_user("a@example.com", PASSWORD).await;
    let client = app.public_client("angelcam").await;
    let t0 = app.password_token(&client, "a@example.com", PASSWORD).await;
    let rt = s(&t0, "refresh_token");
    let futs = (0..100).map(|_| {
        let (app, client, rt) = (&app, client.clone(), rt.clone());
        async move {
            let r = refresh(app, &client, &rt).await;
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    });
    let results = futures_util::future::join_all(futs).await;
    let mut pairs = std::collections::HashSet::new();
    for (status, body) in &results {
        match status {
            200 => {
                pairs.insert((s(body, "access_token"), s(body, "refresh_token")));
            }
            400 => assert_eq!(body["error"], "invalid_grant"),
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert_eq!(pairs.len(), 1, "never two different live successors");
    let (at, new_rt) = pairs.into_iter().next().unwrap();
    assert_eq!(app.get_bearer("/v1/me/", &at).await.status(), 200);
    assert_eq!(refresh(&app, &client, &new_rt).await.status(), 200);
}

#[tokio::test]
async fn password_change_revokes_tokens_and_pats() {
    let app = spawn_app().await;
    let user = app.create_user("a@example.com", PASSWORD).await;
    let client = app.public_client("angelcam").await;
    let t = app.password_token(&client, "a@example.com", PASSWORD).await;
    let (_, pat) = app
        .core
        .create_pat(user.id, "ci", ScopeSet::READ, None)
        .await
        .unwrap();
    app.core
        .change_password(user.id, "new password".into())
        .await
        .unwrap();
    assert_eq!(me_status(&app, &t).await, 401);
    assert_eq!(refresh_status(&app, &client, &t).await, 400);
    let r = app
        .http
        .get(app.url("/v1/me/"))
        .header("Authorization", format!("PersonalAccessToken {pat}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The old password no longer works; the new one does.
    let r = app
        .token_form(&[
            ("client_id", &client),
            ("grant_type", "password"),
            ("username", "a@example.com"),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(r.status(), 400);
    app.password_token(&client, "a@example.com", "new password")
        .await;
}

#[tokio::test]
async fn sweeper_removes_expired_rows_in_batches_and_keeps_live_ones() {
    let app = spawn_app().await;
    let user = app.create_user("a@example.com", PASSWORD).await;
    let client = app.public_client("angelcam").await;
    let c = app
        .core
        .store
        .client_by_client_id(&client)
        .await
        .unwrap()
        .unwrap();
    let now = app.clock_now();
    for i in 0..1200u32 {
        let expired = i % 4 != 0;
        let exp = if expired {
            now - 100_000
        } else {
            now + 100_000
        };
        let fam = NewFamily {
            actor_id: None,
            user_id: Some(user.id),
            client_pk: c.pk,
            grant_type: GrantType::Password,
            created_at: now - 200_000,
            authn: None,
        };
        let a = NewAccessToken {
            hash: format!("a{i}").into_bytes(),
            scope: ScopeSet::READ,
            created_at: now - 200_000,
            expires_at: exp,
        };
        let r = NewRefreshToken {
            hash: format!("r{i}").into_bytes(),
            scope: ScopeSet::READ,
            created_at: now - 200_000,
            expires_at: Some(exp),
        };
        app.core
            .store
            .create_family(&fam, &a, Some(&r))
            .await
            .unwrap();
    }
    // One batch removes at most `batch` rows per table.
    let one = app.core.store.purge_expired(now - 1000, 100).await.unwrap();
    assert_eq!(one.access_tokens, 100);
    assert_eq!(one.refresh_tokens, 100);
    let total = camgate_server::sweep_once(&app.core, 1000, 100)
        .await
        .unwrap();
    // 900 expired families with 2 tokens each. Tokens that leave by cascade with their family
    // are not counted, so the count is bounded; the state below is exact.
    let counted = total.deleted + one.total();
    assert!((900 * 2..=900 * 3).contains(&counted), "{counted}");
    assert!(total.batches >= 2);
    for i in 0..1200u32 {
        let a = app
            .core
            .store
            .access_token(format!("a{i}").as_bytes())
            .await
            .unwrap();
        assert_eq!(a.is_some(), i % 4 == 0, "token a{i}");
        let r = app
            .core
            .store
            .refresh_token(format!("r{i}").as_bytes())
            .await
            .unwrap();
        assert_eq!(r.is_some(), i % 4 == 0, "token r{i}");
    }
    assert_eq!(
        app.core
            .store
            .purge_expired(now - 1000, 100)
            .await
            .unwrap()
            .total(),
        0
    );
}

#[tokio::test]
async fn audit_records_logins_and_token_events_without_secrets() {
    let app = spawn_app().await;
    app.create_user("a@example.com", PASSWORD).await;
    let client = app.public_client("angelcam").await;
    let bad = app
        .token_form(&[
            ("client_id", &client),
            ("grant_type", "password"),
            ("username", "a@example.com"),
            ("password", "wrong"),
        ])
        .await;
    assert_eq!(bad.status(), 400);
    let t = app.password_token(&client, "a@example.com", PASSWORD).await;
    let t1: Value = refresh(&app, &client, &s(&t, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    app.http
        .post(app.url("/oauth/revoke"))
        .form(&[
            ("client_id", client.as_str()),
            ("token", s(&t1, "refresh_token").as_str()),
        ])
        .send()
        .await
        .unwrap();
    let events = app.core.store.recent_audit(100).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    for k in [
        "login_failed",
        "login_ok",
        "token_issued",
        "token_refreshed",
        "token_revoked",
        "client_created",
    ] {
        assert!(kinds.contains(&k), "missing audit kind {k}: {kinds:?}");
    }
    let login = events.iter().find(|e| e.kind == "login_ok").unwrap();
    assert_eq!(login.client_id.as_deref(), Some(client.as_str()));
    assert_eq!(login.ip.as_deref(), Some("127.0.0.1"));
    for e in &events {
        for secret in [
            s(&t, "access_token"),
            s(&t, "refresh_token"),
            s(&t1, "refresh_token"),
            PASSWORD.to_string(),
        ] {
            assert!(!e.detail.contains(&secret));
        }
    }
}

#[tokio::test]
async fn cameramanager_cameras_list() {
    let app = cm_app().await;
    let user = app
        .core
        .user_by_email("user@example.com")
        .await
        .unwrap()
        .unwrap();
    for i in 0..3 {
        app.core
            .create_camera(
                user.id,
                camgate_core::model::CameraFields::named(format!("cam {i}")),
            )
            .await
            .unwrap();
    }
    let t = cm_login(&app).await;
    let r = app
        .get_bearer("/rest/v2.0/cameras", &s(&t, "access_token"))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 3);
    assert_eq!(arr[0]["name"], "cam 0");
    assert!(arr[0]["cameraId"].is_i64());
    let r = app
        .get_bearer("/rest/v2.0/cameras?limit=x", &s(&t, "access_token"))
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], 400);
}
