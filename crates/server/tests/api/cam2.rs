//! CAM2API (spec 002): client credentials → JWT access tokens (RFC 9068), JWT checks
//! on resource routes, refresh within the non-sliding window, key rotation, revocation, the
//! camera search with every CAM2 filter and a radius search, and the bulk import command.
// `is_multiple_of` is newer than the workspace's rust-version (1.85).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::manual_is_multiple_of
)]
use crate::common::*;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use camgate_core::cam2::NewCamera;
use camgate_core::jwt::JwtAlg;
use camgate_core::model::{CameraFields, ClientKind, GrantType};
use serde_json::{json, Value};

/// A confidential client on `profile` allowing client credentials, owned by `owner`.
async fn cc_client(app: &TestApp, profile: &str, owner: Option<i64>) -> (String, String) {
    let mut input = client_input("cam2 app", ClientKind::Confidential, profile);
    input.owner_id = owner;
    input.grants = vec![GrantType::ClientCredentials];
    let r = app.register(input).await;
    (r.client.client_id, r.secret.unwrap())
}

async fn cam2_token(app: &TestApp, id: &str, secret: &str) -> String {
    let r = app
        .http
        .post(app.url("/token.json"))
        .form(&[("client_id", id), ("client_secret", secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["token"].as_str().unwrap().to_string()
}

fn decode(seg: &str) -> Value {
    serde_json::from_slice(&B64.decode(seg).unwrap()).unwrap()
}

fn parts(jwt: &str) -> (Value, Value, String) {
    let p: Vec<&str> = jwt.split('.').collect();
    assert_eq!(p.len(), 3, "{jwt}");
    (decode(p[0]), decode(p[1]), p[2].to_string())
}

fn encode(v: &Value) -> String {
    B64.encode(serde_json::to_vec(v).unwrap())
}

async fn get_jwt(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .header("Authorization", format!("JWT {token}"))
        .send()
        .await
        .unwrap()
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.http
        .post(app.url("/refresh_token.json"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

/// Asserts a 401 in CAM2 shape with the RFC 6750 challenge.
async fn assert_401(r: reqwest::Response) -> Value {
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        r#"Bearer realm="api", error="invalid_token""#
    );
    let v: Value = r.json().await.unwrap();
    assert!(v["detail"].is_string(), "{v}");
    v
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["camera_id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn spec_002_token_then_cameras() {
    let app = spawn_app().await;
    let user = app.create_user("owner@example.com", PASSWORD).await;
    let mut f = CameraFields::named("Shinjuku");
    f.city = Some("Shinjuku-ku".into());
    f.country = Some("JP".into());
    f.lat = Some(35.6895);
    f.lng = Some(139.6917);
    f.source = Some("Google".into());
    f.source_url = Some("www.google.com".into());
    f.resolution_w = Some(1920);
    f.resolution_h = Some(1080);
    let cam = app.core.create_camera(user.id, f).await.unwrap();
    let (id, secret) = cc_client(&app, "cam2", Some(user.id)).await;

    // curl -X POST …/token.json -d client_id=… -d client_secret=…
    let r = app
        .http
        .post(app.url("/token.json"))
        .form(&[
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["expires in"], 3600);
    assert_eq!(v["token_type"], "JWT");
    assert_eq!(v["expires_in"], 3600);
    assert_eq!(v["access_token"], v["token"]);
    let token = v["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("eyJ"));

    // RFC 9068 header and claims; no secret in the payload.
    let (h, c, _) = parts(&token);
    assert_eq!(h["typ"], "at+jwt");
    assert_eq!(h["alg"], "EdDSA");
    assert!(h["kid"].is_string());
    assert_eq!(c["iss"], app.base);
    assert_eq!(c["aud"], app.base);
    assert_eq!(c["sub"], id.as_str());
    assert_eq!(c["client_id"], id.as_str());
    assert_eq!(c["scope"], "read write");
    assert_eq!(c["gty"], "client_credentials");
    let iat = c["iat"].as_i64().unwrap();
    assert_eq!(iat, app.clock_now());
    assert_eq!(c["exp"].as_i64().unwrap() - iat, 3600);
    assert_eq!(c["orig_iat"].as_i64().unwrap(), iat);
    assert!(c["jti"].as_str().unwrap().len() >= 16);
    assert!(!token.contains(&secret) && !c.to_string().contains(&secret));

    // curl -H "Authorization: JWT …" …/cameras.json
    let r = get_jwt(&app, "/cameras.json", &token).await;
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    assert_eq!(
        list,
        json!([{
            "camera_id": cam.id,
            "city": "Shinjuku-ku",
            "state": null,
            "country": "JP",
            "lat": 35.6895,
            "lng": 139.6917,
            "source": "Google",
            "source_url": "www.google.com",
            "camera_type": null,
            "description": null,
            "is_video": null,
            "framerate": null,
            "outdoors": null,
            "traffic": null,
            "inactive": null,
            "resolution_w": 1920,
            "resolution_h": 1080,
            "date_added": camgate_server::http::iso(cam.created_at),
            "last_updated": camgate_server::http::iso(cam.updated_at),
        }])
    );
    // Bearer with a JWT works too, on every dialect's routes.
    assert_eq!(app.get_bearer("/cameras/", &token).await.status(), 200);
    assert_eq!(app.get_bearer("/v1/cameras/", &token).await.status(), 200);
    // A client-credentials token has no user: "me" routes refuse it.
    assert_eq!(get_jwt(&app, "/v1/me/", &token).await.status(), 403);

    // POST /token/ with a JSON body.
    let r = app
        .http
        .post(app.url("/token/"))
        .json(&json!({"client_id": id, "client_secret": secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_ne!(v["token"].as_str().unwrap(), token, "a fresh jti each time");
}

#[tokio::test]
async fn token_endpoint_errors() {
    let app = spawn_app().await;
    let (id, secret) = cc_client(&app, "cam2", None).await;
    let r = app
        .http
        .post(app.url("/token/"))
        .form(&[("client_id", id.as_str()), ("client_secret", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_client");
    assert!(v["detail"].is_string());
    let r = app.http.post(app.url("/token/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // A client that may not use client credentials.
    let (other, other_secret) = app.confidential_client("cam2").await;
    let r = app
        .http
        .post(app.url("/token/"))
        .json(&json!({"client_id": other, "client_secret": other_secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "unauthorized_client");
    // Malformed JSON.
    let r = app
        .http
        .post(app.url("/token/"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Only client credentials here.
    let r = app
        .http
        .post(app.url("/token/"))
        .form(&[
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
            ("grant_type", "password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn client_credentials_at_oauth_token_for_every_profile() {
    let app = spawn_app().await;
    let user = app.create_user("owner@example.com", PASSWORD).await;
    let mine = app
        .core
        .create_camera(user.id, CameraFields::named("mine"))
        .await
        .unwrap();
    // An opaque-token profile (angelcam) with the grant allowed.
    let (id, secret) = cc_client(&app, "angelcam", Some(user.id)).await;
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 36000);
    assert!(v.get("refresh_token").is_none(), "RFC 6749 §4.4.3");
    let opaque = v["access_token"].as_str().unwrap();
    assert_eq!(opaque.len(), 30);
    let r = app.get_bearer("/cameras/", opaque).await;
    assert_eq!(r.status(), 200);
    assert_eq!(ids(&r.json().await.unwrap()), vec![mine.id]);

    // The cam2 profile at the canonical endpoint: a JWT.
    let (id2, secret2) = cc_client(&app, "cam2", Some(user.id)).await;
    let r = app
        .http
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id2.as_str()),
            ("client_secret", secret2.as_str()),
            ("scope", "read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    // The RFC route answers Bearer for a JWT too (RFC 9068 §2); /token.json keeps "JWT".
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["scope"], "read");
    let jwt = v["access_token"].as_str().unwrap();
    assert_eq!(parts(jwt).1["scope"], "read");
    assert_eq!(get_jwt(&app, "/cameras/", jwt).await.status(), 200);

    // A public client cannot use the grant.
    let public = app.public_client("cam2").await;
    let r = app
        .token_form(&[("grant_type", "client_credentials"), ("client_id", &public)])
        .await;
    assert_eq!(r.status(), 400);

    // Password grant for a user on a JWT profile: sub is the user.
    let pw_client = app.public_client("cam2").await;
    let t = app
        .password_token(&pw_client, "owner@example.com", PASSWORD)
        .await;
    assert_eq!(t["token_type"], "Bearer");
    assert!(t.get("refresh_token").is_none());
    let ut = t["access_token"].as_str().unwrap();
    assert_eq!(parts(ut).1["sub"], user.id.to_string());
    let me = get_jwt(&app, "/v1/me/", ut).await;
    assert_eq!(me.status(), 200);
    // A password change revokes the user's JWTs.
    app.clock.advance(1);
    app.core
        .change_password(user.id, "another long password".into())
        .await
        .unwrap();
    assert_401(get_jwt(&app, "/v1/me/", ut).await).await;

    // Metadata advertises the grant and the key set.
    let m: Value = app
        .http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(m["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("client_credentials")));
    assert_eq!(m["jwks_uri"], format!("{}/.well-known/jwks.json", app.base));
}

#[tokio::test]
async fn expired_tampered_and_forged_jwts_are_401() {
    let app = spawn_app().await;
    let (id, secret) = cc_client(&app, "cam2", None).await;
    let token = cam2_token(&app, &id, &secret).await;
    assert_eq!(get_jwt(&app, "/cameras/", &token).await.status(), 200);
    let (h, c, sig) = parts(&token);
    let p: Vec<&str> = token.split('.').collect();

    // Tampered signature: flip one bit of the signature bytes.
    let mut raw = B64.decode(&sig).unwrap();
    raw[10] ^= 1;
    let t = format!("{}.{}.{}", p[0], p[1], B64.encode(&raw));
    assert_401(get_jwt(&app, "/cameras/", &t).await).await;
    // Tampered payload under the original signature.
    let mut c2 = c.clone();
    c2["client_id"] = json!("someone-else");
    let t = format!("{}.{}.{}", p[0], encode(&c2), sig);
    assert_401(get_jwt(&app, "/cameras/", &t).await).await;

    // alg: none, with and without a signature.
    let mut none = h.clone();
    none["alg"] = json!("none");
    for s in ["", sig.as_str()] {
        let t = format!("{}.{}.{}", encode(&none), p[1], s);
        assert_401(get_jwt(&app, "/cameras/", &t).await).await;
    }
    // Algorithm switching: HS256 with the public key (from the JWKS) as the HMAC secret.
    let jwks: Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The key that signed this token (the JWKS also carries the RSA id_token key).
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == h["kid"])
        .expect("the signing key is published");
    let x = key["x"].as_str().unwrap().to_string();
    for secret in [B64.decode(&x).unwrap(), x.as_bytes().to_vec()] {
        use hmac::{Hmac, Mac};
        let mut hs = h.clone();
        hs["alg"] = json!("HS256");
        let input = format!("{}.{}", encode(&hs), p[1]);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&secret).unwrap();
        mac.update(input.as_bytes());
        let t = format!("{input}.{}", B64.encode(mac.finalize().into_bytes()));
        assert_401(get_jwt(&app, "/cameras/", &t).await).await;
    }
    // Wrong typ, unknown kid, wrong issuer (signed correctly is impossible for us; the
    // header change alone breaks the signature, so these are refused either way).
    let mut typ = h.clone();
    typ["typ"] = json!("JWT");
    let t = format!("{}.{}.{}", encode(&typ), p[1], sig);
    assert_401(get_jwt(&app, "/cameras/", &t).await).await;
    let mut kid = h.clone();
    kid["kid"] = json!("no-such-key");
    let t = format!("{}.{}.{}", encode(&kid), p[1], sig);
    assert_401(get_jwt(&app, "/cameras/", &t).await).await;

    // Another Host: the issuer (http:// + Host, no `issuer` configured) does not match.
    let r = app
        .http
        .get(app.url("/cameras/"))
        .header("Host", "evil.example.com")
        .header("Authorization", format!("JWT {token}"))
        .send()
        .await
        .unwrap();
    assert_401(r).await;

    // Expired: exactly at exp the token is refused.
    app.clock.advance(3599);
    assert_eq!(get_jwt(&app, "/cameras/", &token).await.status(), 200);
    app.clock.advance(1);
    let v = assert_401(get_jwt(&app, "/cameras/", &token).await).await;
    assert_eq!(v["detail"], "Token has expired.");
}

#[tokio::test]
async fn configured_issuer_and_es256() {
    let app = spawn_app_with(|c| {
        c.issuer = Some("https://cams.example.com".into());
        c.jwt_alg = JwtAlg::Es256;
    })
    .await;
    let (id, secret) = cc_client(&app, "cam2", None).await;
    let token = cam2_token(&app, &id, &secret).await;
    let (h, c, sig) = parts(&token);
    assert_eq!(h["alg"], "ES256");
    assert_eq!(B64.decode(sig).unwrap().len(), 64, "JOSE R||S, not DER");
    assert_eq!(c["iss"], "https://cams.example.com");
    // With a configured issuer, the Host header does not matter.
    let r = app
        .http
        .get(app.url("/cameras/"))
        .header("Host", "other.example.com")
        .header("Authorization", format!("JWT {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let jwks: Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The set also holds the RS256 id_token key; the access token names its own.
    let k = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == h["kid"])
        .unwrap();
    assert_eq!(k["kty"], "EC");
    assert_eq!(k["crv"], "P-256");
    assert_eq!(k["kid"], h["kid"]);
    assert!(k.get("d").is_none(), "no private part in the JWKS");
}

#[tokio::test]
async fn refresh_keeps_the_original_issue_time() {
    let app = spawn_app().await;
    let (id, secret) = cc_client(&app, "cam2", None).await;
    let t0 = app.clock_now();
    let token = cam2_token(&app, &id, &secret).await;

    // Already expired, still refreshable within the day.
    app.clock.advance(7200);
    assert_401(get_jwt(&app, "/cameras/", &token).await).await;
    let r = refresh(&app, &token).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let t1 = v["token"].as_str().unwrap().to_string();
    let (_, c1, _) = parts(&t1);
    assert_eq!(c1["orig_iat"].as_i64().unwrap(), t0);
    assert_eq!(c1["iat"].as_i64().unwrap(), t0 + 7200);
    assert_eq!(c1["exp"].as_i64().unwrap(), t0 + 7200 + 3600);
    assert_eq!(get_jwt(&app, "/cameras/", &t1).await.status(), 200);

    // JSON body at /refresh_token/; the refreshed token refreshes within the same window.
    app.clock.set(t0 + 86_399);
    let r = app
        .http
        .post(app.url("/refresh_token/"))
        .json(&json!({"token": t1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t2 = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(parts(&t2).1["orig_iat"].as_i64().unwrap(), t0);
    // t2 is valid for its hour …
    app.clock.set(t0 + 86_400);
    assert_eq!(get_jwt(&app, "/cameras/", &t2).await.status(), 200);
    // … but the window does not slide: no refresh after original issue + 1 day.
    for t in [&token, &t1, &t2] {
        let r = refresh(&app, t).await;
        assert_eq!(r.status(), 400);
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_grant");
        assert!(
            e["detail"]
                .as_str()
                .unwrap()
                .starts_with("Refresh has expired"),
            "{e}"
        );
    }
    // Garbage and missing tokens.
    assert_eq!(refresh(&app, "not-a-jwt").await.status(), 400);
    let r = app
        .http
        .post(app.url("/refresh_token/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn key_rotation_and_retired_keys() {
    // Nodes behind one name share the issuer; in tests they have different ports, so the
    // issuer is configured (as it should be in a multi-node deployment).
    let app = spawn_app_with(|c| c.issuer = Some("http://camgate.test".into())).await;
    let node2 = app.spawn_node().await;
    let (id, secret) = cc_client(&app, "cam2", None).await;
    let old = cam2_token(&app, &id, &secret).await;
    let old_kid = parts(&old).0["kid"].as_str().unwrap().to_string();

    // Rotate on node 1; node 2 signs with the new key at once and both verify both.
    let new_kid = app.core.rotate_signing_key(None).await.unwrap();
    assert_ne!(new_kid, old_kid);
    let new = cam2_token(&node2, &id, &secret).await;
    assert_eq!(parts(&new).0["kid"], new_kid.as_str());
    for node in [&app, &node2] {
        assert_eq!(get_jwt(node, "/cameras/", &old).await.status(), 200);
        assert_eq!(get_jwt(node, "/cameras/", &new).await.status(), 200);
    }
    // A key node 2 has never seen (rotated on node 1, token from node 1): reloaded by kid.
    let newer_kid = app.core.rotate_signing_key(None).await.unwrap();
    let newer = cam2_token(&app, &id, &secret).await;
    assert_eq!(parts(&newer).0["kid"], newer_kid.as_str());
    assert_eq!(get_jwt(&node2, "/cameras/", &newer).await.status(), 200);

    let jwks = |a: &TestApp| {
        let url = a.url("/.well-known/jwks.json");
        let http = a.http.clone();
        async move {
            let v: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            v["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let listed = jwks(&app).await;
    assert!(listed.contains(&old_kid) && listed.contains(&new_kid) && listed.contains(&newer_kid));

    // The retired key's token after its expiry: refused.
    app.clock.advance(3600);
    assert_401(get_jwt(&app, "/cameras/", &old).await).await;
    // Within the refresh window the retired key still verifies for a refresh, which is signed
    // by the active key.
    let r = refresh(&app, &old).await;
    assert_eq!(r.status(), 200);
    let re = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(parts(&re).0["kid"], newer_kid.as_str());
    // After the retirement period (longest lifetime + margin) the old key is gone.
    app.clock.advance(86_400 + 60);
    assert!(!jwks(&app).await.contains(&old_kid));
    assert_eq!(refresh(&app, &old).await.status(), 400);
    assert_401(get_jwt(&node2, "/cameras/", &old).await).await;
    // The sweeper deletes it.
    camgate_server::sweep_once(&app.core, 0, 100).await.unwrap();
    let keys = app.core.store.signing_keys(0).await.unwrap();
    assert!(keys.iter().all(|k| k.kid != old_kid && k.kid != new_kid));
    assert!(keys.iter().any(|k| k.kid == newer_kid));
}

#[tokio::test]
async fn revoked_and_logged_out_jwts_are_refused() {
    let app = spawn_app().await;
    let (id, secret) = cc_client(&app, "cam2", None).await;
    let token = cam2_token(&app, &id, &secret).await;
    let other = cam2_token(&app, &id, &secret).await;

    // Introspection (RFC 7662) knows JWTs.
    let r = app
        .http
        .post(app.url("/oauth/introspect"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["active"], true);
    assert_eq!(v["client_id"], id.as_str());

    // Another client's revocation is ignored (RFC 7009 §2.1).
    let (id2, secret2) = cc_client(&app, "cam2", None).await;
    let r = app
        .http
        .post(app.url("/oauth/revoke"))
        .basic_auth(&id2, Some(&secret2))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get_jwt(&app, "/cameras/", &token).await.status(), 200);

    // RFC 7009 revocation by its client: denylisted.
    let r = app
        .http
        .post(app.url("/oauth/revoke"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_401(get_jwt(&app, "/cameras/", &token).await).await;
    assert_eq!(refresh(&app, &token).await.status(), 400);
    let v: Value = app
        .http
        .post(app.url("/oauth/introspect"))
        .basic_auth(&id, Some(&secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["active"], false);
    // The other token of the same client is untouched.
    assert_eq!(get_jwt(&app, "/cameras/", &other).await.status(), 200);

    // Logout (spec 003's route) with a JWT.
    let r = app
        .http
        .delete(app.url("/rest/v2.0/users/self/tokens/current"))
        .header("Authorization", format!("JWT {other}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_401(get_jwt(&app, "/cameras/", &other).await).await;

    // A deleted client's tokens stop working.
    let t3 = cam2_token(&app, &id2, &secret2).await;
    assert_eq!(get_jwt(&app, "/cameras/", &t3).await.status(), 200);
    sqlx_delete_client(&app, &id2).await;
    assert_401(get_jwt(&app, "/cameras/", &t3).await).await;

    // The denylist is swept once the entries no longer matter (after the refresh window).
    app.clock.advance(86_400 + 1);
    camgate_server::sweep_once(&app.core, 0, 100).await.unwrap();
}

async fn sqlx_delete_client(app: &TestApp, client_id: &str) {
    use sqlx::Connection;
    if app.db.url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(&app.db.url).await.unwrap();
        sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut c)
            .await
            .unwrap();
    } else {
        let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
        sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut c)
            .await
            .unwrap();
    }
}

/// A small deterministic generator (xorshift), so failures are reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

/// Cameras with every CAM2 field varied; timestamps spread over a year.
fn varied(n: usize, seed: u64, t0: i64) -> Vec<NewCamera> {
    let mut r = Rng(seed);
    (0..n)
        .map(|i| {
            let mut f = CameraFields::named(format!("cam {i}"));
            if r.next() % 10 != 0 {
                f.city = Some(r.pick(&["Tokyo", "Lyon", "Austin", "Prague"]).into());
            }
            f.state = Some(r.pick(&["TX", "IN", "ARA"]).into());
            f.country = Some(r.pick(&["JP", "FR", "US", "CZ"]).into());
            if r.next() % 8 != 0 {
                f.lat = Some(r.f() * 180.0 - 90.0);
                f.lng = Some(r.f() * 360.0 - 180.0);
            }
            f.source = Some(r.pick(&["Google", "DOT", "EarthCam"]).into());
            f.camera_type = Some(r.pick(&["IP", "Non_IP"]).into());
            f.is_video = Some(r.next() % 2 == 0);
            f.framerate = Some((r.next() % 60) as f64 + 0.5);
            f.outdoors = Some(r.next() % 2 == 0);
            f.traffic = Some(r.next() % 3 == 0);
            f.inactive = Some(r.next() % 5 == 0);
            f.resolution_w = Some([640, 1280, 1920, 3840][(r.next() % 4) as usize]);
            f.resolution_h = Some([480, 720, 1080, 2160][(r.next() % 4) as usize]);
            f.is_public = r.next() % 3 == 0;
            let created_at = t0 - (r.next() % 31_536_000) as i64;
            NewCamera {
                fields: f,
                created_at,
                updated_at: created_at + (r.next() % 1_000_000) as i64,
            }
        })
        .collect()
}

#[tokio::test]
async fn every_filter_matches_a_brute_force_filter() {
    let app = spawn_app().await;
    let owner = app.create_user("owner@example.com", PASSWORD).await;
    let stranger = app.create_user("stranger@example.com", PASSWORD).await;
    let t0 = app.clock_now();
    let mine = varied(150, 7, t0);
    let theirs = varied(150, 11, t0);
    app.core.import_cameras(owner.id, &mine).await.unwrap();
    app.core.import_cameras(stranger.id, &theirs).await.unwrap();
    let (id, secret) = cc_client(&app, "cam2", Some(owner.id)).await;
    let token = cam2_token(&app, &id, &secret).await;

    // Ids are assigned in insertion order: owner's 150 first, then the stranger's.
    let mut all: Vec<(i64, i64, NewCamera)> = Vec::new();
    let first: Value = get_jwt(&app, "/cameras/?limit=1", &token)
        .await
        .json()
        .await
        .unwrap();
    let base_id = ids(&first)[0];
    for (i, c) in mine.iter().enumerate() {
        all.push((base_id + i as i64, owner.id, c.clone()));
    }
    for (i, c) in theirs.iter().enumerate() {
        all.push((base_id + 150 + i as i64, stranger.id, c.clone()));
    }
    let visible: Vec<&(i64, i64, NewCamera)> = all
        .iter()
        .filter(|(_, o, c)| *o == owner.id || c.fields.is_public)
        .collect();

    let date = |t: i64| camgate_server::http::iso(t);
    let mid = t0 - 15_000_000;
    type Pred = Box<dyn Fn(&NewCamera) -> bool>;
    let cases: Vec<(String, Pred)> = vec![
        ("".into(), Box::new(|_: &NewCamera| true)),
        (
            "city=Tokyo".into(),
            Box::new(|c: &NewCamera| c.fields.city.as_deref() == Some("Tokyo")),
        ),
        (
            "state=TX".into(),
            Box::new(|c: &NewCamera| c.fields.state.as_deref() == Some("TX")),
        ),
        (
            "country=FR".into(),
            Box::new(|c: &NewCamera| c.fields.country.as_deref() == Some("FR")),
        ),
        (
            "camera_type=Non_IP".into(),
            Box::new(|c: &NewCamera| c.fields.camera_type.as_deref() == Some("Non_IP")),
        ),
        (
            "source=DOT".into(),
            Box::new(|c: &NewCamera| c.fields.source.as_deref() == Some("DOT")),
        ),
        (
            "lat_min=10&lat_max=60".into(),
            Box::new(|c: &NewCamera| c.fields.lat.is_some_and(|v| (10.0..=60.0).contains(&v))),
        ),
        (
            "lng_min=-100.5&lng_max=20".into(),
            Box::new(|c: &NewCamera| c.fields.lng.is_some_and(|v| (-100.5..=20.0).contains(&v))),
        ),
        (
            "resolution_w_min=1280&resolution_w_max=1920".into(),
            Box::new(|c: &NewCamera| {
                c.fields
                    .resolution_w
                    .is_some_and(|v| (1280..=1920).contains(&v))
            }),
        ),
        (
            "resolution_h_min=1080".into(),
            Box::new(|c: &NewCamera| c.fields.resolution_h.is_some_and(|v| v >= 1080)),
        ),
        (
            "resolution_h_max=720".into(),
            Box::new(|c: &NewCamera| c.fields.resolution_h.is_some_and(|v| v <= 720)),
        ),
        (
            "framerate_min=10&framerate_max=30.5".into(),
            Box::new(|c: &NewCamera| {
                c.fields
                    .framerate
                    .is_some_and(|v| (10.0..=30.5).contains(&v))
            }),
        ),
        (
            "video=true".into(),
            Box::new(|c: &NewCamera| c.fields.is_video == Some(true)),
        ),
        (
            "video=false".into(),
            Box::new(|c: &NewCamera| c.fields.is_video == Some(false)),
        ),
        (
            "outdoors=1".into(),
            Box::new(|c: &NewCamera| c.fields.outdoors == Some(true)),
        ),
        (
            "traffic=true".into(),
            Box::new(|c: &NewCamera| c.fields.traffic == Some(true)),
        ),
        (
            "inactive=false".into(),
            Box::new(|c: &NewCamera| c.fields.inactive == Some(false)),
        ),
        (
            format!("added_before={}", date(mid)),
            Box::new(move |c: &NewCamera| c.created_at < mid),
        ),
        (
            format!("added_after={}", date(mid)),
            Box::new(move |c: &NewCamera| c.created_at >= mid),
        ),
        (
            format!("updated_before={mid}"),
            Box::new(move |c: &NewCamera| c.updated_at < mid),
        ),
        (format!("updated_after={}", &date(mid)[..10]), {
            let day = mid - mid.rem_euclid(86_400);
            Box::new(move |c: &NewCamera| c.updated_at >= day)
        }),
        (
            "country=US&video=true&resolution_w_min=1920&outdoors=false".into(),
            Box::new(|c: &NewCamera| {
                c.fields.country.as_deref() == Some("US")
                    && c.fields.is_video == Some(true)
                    && c.fields.resolution_w.is_some_and(|v| v >= 1920)
                    && c.fields.outdoors == Some(false)
            }),
        ),
    ];
    for (q, pred) in &cases {
        let want: Vec<i64> = visible
            .iter()
            .filter(|(_, _, c)| pred(c))
            .map(|(id, _, _)| *id)
            .collect();
        let url = format!("/cameras/?limit=1000&{}", q.replace('+', "%2B"));
        let r = get_jwt(&app, &url, &token).await;
        assert_eq!(r.status(), 200, "{q}");
        let got = ids(&r.json().await.unwrap());
        assert_eq!(got, want, "filter {q}");
        assert!(
            !want.is_empty() || q.contains("&outdoors"),
            "{q} matches nothing: weak test"
        );
    }

    // Default page 100, limit/offset, maximum 1000.
    let all_visible: Vec<i64> = visible.iter().map(|(id, _, _)| *id).collect();
    let r: Value = get_jwt(&app, "/cameras.json", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&r), all_visible[..100.min(all_visible.len())].to_vec());
    let r: Value = get_jwt(&app, "/cameras/?limit=7&offset=5", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&r), all_visible[5..12].to_vec());

    // A filter that does not parse: 400 {detail} naming the parameter.
    for (q, param) in [
        ("lat_min=north", "lat_min"),
        ("resolution_w_max=big", "resolution_w_max"),
        ("framerate_min=1e999", "framerate_min"),
        ("video=perhaps", "video"),
        ("outdoors=2", "outdoors"),
        ("traffic=", "none"),
        ("inactive=nope", "inactive"),
        ("added_before=last+week", "added_before"),
        ("added_after=2020-13-45", "added_after"),
        ("updated_before=x", "updated_before"),
        ("updated_after=y", "updated_after"),
        ("camera_type=Analog", "camera_type"),
        ("near=1,2", "radius_km"),
        ("near=100,2&radius_km=5", "near"),
        ("near=1,2&radius_km=-5", "radius_km"),
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
        ("city=a&city=b", "city"),
    ] {
        let r = get_jwt(&app, &format!("/cameras/?{q}"), &token).await;
        if param == "none" {
            assert_eq!(r.status(), 200, "{q}: an empty value is no filter");
            continue;
        }
        assert_eq!(r.status(), 400, "{q}");
        let v: Value = r.json().await.unwrap();
        let detail = v["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("`{param}`")), "{q}: {detail}");
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    }
    // No credentials: 401 {detail}.
    let r = app.http.get(app.url("/cameras/")).send().await.unwrap();
    assert_401(r).await;
}

/// Great-circle distance by the spherical law of cosines on unit vectors — an implementation
/// independent of the server's haversine.
fn brute_km(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let v = |la: f64, lo: f64| {
        let (la, lo) = (la.to_radians(), lo.to_radians());
        [la.cos() * lo.cos(), la.cos() * lo.sin(), la.sin()]
    };
    let (a, b) = (v(lat1, lng1), v(lat2, lng2));
    let cross = [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ];
    let sin = (cross[0].powi(2) + cross[1].powi(2) + cross[2].powi(2)).sqrt();
    let cos = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    camgate_core::cam2::EARTH_RADIUS_KM * sin.atan2(cos)
}

#[tokio::test]
async fn radius_search_agrees_with_brute_force() {
    let app = spawn_app().await;
    let owner = app.create_user("owner@example.com", PASSWORD).await;
    let t0 = app.clock_now();
    // Clusters around a few centres (one on the antimeridian, one near the pole) plus noise.
    let centres = [
        (35.68, 139.69),
        (0.0, 179.9),
        (-16.5, -179.8),
        (88.5, 20.0),
        (40.42, -86.9),
    ];
    let mut r = Rng(99);
    let mut rows = Vec::new();
    for i in 0..1500 {
        let mut f = CameraFields::named(format!("p{i}"));
        let (la, lo) = if i % 7 == 6 {
            (r.f() * 180.0 - 90.0, r.f() * 360.0 - 180.0)
        } else {
            let (cla, clo) = centres[i % centres.len()];
            let la = (cla + (r.f() - 0.5) * 12.0).clamp(-90.0, 90.0);
            let mut lo = clo + (r.f() - 0.5) * 12.0;
            if lo > 180.0 {
                lo -= 360.0;
            }
            if lo < -180.0 {
                lo += 360.0;
            }
            (la, lo)
        };
        f.lat = Some(la);
        f.lng = Some(lo);
        f.country = Some(if i % 2 == 0 { "A" } else { "B" }.into());
        rows.push(NewCamera {
            fields: f,
            created_at: t0,
            updated_at: t0,
        });
    }
    app.core.import_cameras(owner.id, &rows).await.unwrap();
    let (id, secret) = cc_client(&app, "cam2", Some(owner.id)).await;
    let token = cam2_token(&app, &id, &secret).await;
    let first: Value = get_jwt(&app, "/cameras/?limit=1", &token)
        .await
        .json()
        .await
        .unwrap();
    let base_id = ids(&first)[0];

    for (lat, lng, radius, extra) in [
        (35.68, 139.69, 150.0, ""),
        (35.68, 139.69, 400.0, "&country=A"),
        (0.0, 180.0, 500.0, ""),
        (-16.5, -179.9, 300.0, ""),
        (89.9, -170.0, 400.0, ""),
        (40.42, -86.9, 60.0, ""),
        (10.0, 10.0, 2500.0, ""),
        (0.0, 0.0, 25_000.0, ""),
    ] {
        let want: Vec<i64> = rows
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                (extra.is_empty() || (i % 2 == 0))
                    && brute_km(lat, lng, c.fields.lat.unwrap(), c.fields.lng.unwrap()) <= radius
            })
            .map(|(i, _)| base_id + i as i64)
            .collect();
        // Points within a micrometre of the circle could go either way on float rounding.
        let ambiguous: Vec<i64> = rows
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                (brute_km(lat, lng, c.fields.lat.unwrap(), c.fields.lng.unwrap()) - radius).abs()
                    < 1e-6
            })
            .map(|(i, _)| base_id + i as i64)
            .collect();
        let url = format!("/cameras/?near={lat},{lng}&radius_km={radius}&limit=1000{extra}");
        let res = get_jwt(&app, &url, &token).await;
        assert_eq!(res.status(), 200, "{url}");
        let mut got = ids(&res.json().await.unwrap());
        got.retain(|i| !ambiguous.contains(i));
        let want: Vec<i64> = want
            .into_iter()
            .filter(|i| !ambiguous.contains(i))
            .collect();
        let want = want[..want.len().min(1000)].to_vec();
        assert_eq!(got, want, "{url}");
        assert!(!want.is_empty(), "{url} matches nothing: weak test");
        // Paging through the same result with offset gives the same sequence.
        if want.len() > 10 {
            let url =
                format!("/cameras/?near={lat},{lng}&radius_km={radius}&limit=4&offset=6{extra}");
            let page = ids(&get_jwt(&app, &url, &token).await.json().await.unwrap());
            assert_eq!(page, want[6..10].to_vec(), "{url}");
        }
    }
}

#[tokio::test]
async fn visibility_owner_and_public() {
    let app = spawn_app().await;
    let a = app.create_user("a@example.com", PASSWORD).await;
    let b = app.create_user("b@example.com", PASSWORD).await;
    let a_private = app
        .core
        .create_camera(a.id, CameraFields::named("a private"))
        .await
        .unwrap();
    let mut f = CameraFields::named("b public");
    f.is_public = true;
    let b_public = app.core.create_camera(b.id, f).await.unwrap();
    let b_private = app
        .core
        .create_camera(b.id, CameraFields::named("b private"))
        .await
        .unwrap();
    let (id, secret) = cc_client(&app, "cam2", Some(a.id)).await;
    let t = cam2_token(&app, &id, &secret).await;
    let v: Value = get_jwt(&app, "/cameras/", &t).await.json().await.unwrap();
    assert_eq!(ids(&v), vec![a_private.id, b_public.id]);
    // A client without an owner sees public cameras only.
    let (id, secret) = cc_client(&app, "cam2", None).await;
    let t = cam2_token(&app, &id, &secret).await;
    let v: Value = get_jwt(&app, "/cameras/", &t).await.json().await.unwrap();
    assert_eq!(ids(&v), vec![b_public.id]);
    // A user's token (opaque, Angelcam) on the CAM2 route: own and public.
    let client = app.public_client("angelcam").await;
    let tok = app.password_token(&client, "b@example.com", PASSWORD).await;
    let r = app
        .get_bearer("/cameras/", tok["access_token"].as_str().unwrap())
        .await;
    assert_eq!(
        ids(&r.json().await.unwrap()),
        vec![b_public.id, b_private.id]
    );
}

/// The radius search reads every camera in its box from the spatial index, other users'
/// private ones included; only what the caller may see is listed, and the page is still full.
#[tokio::test]
async fn radius_search_shows_only_what_the_caller_may_see() {
    let app = spawn_app().await;
    let a = app.create_user("a@example.com", PASSWORD).await;
    let b = app.create_user("b@example.com", PASSWORD).await;
    let at = |name: &str, lat: f64, public: bool| {
        let mut f = CameraFields::named(name);
        (f.lat, f.lng, f.is_public) = (Some(lat), Some(2.35), public);
        f
    };
    // Forty private cameras of b first (lowest ids), then a's cameras and b's public one.
    for i in 0..40 {
        let f = at(
            &format!("b private {i}"),
            48.85 + f64::from(i) * 1e-4,
            false,
        );
        app.core.create_camera(b.id, f).await.unwrap();
    }
    let a_private = app
        .core
        .create_camera(a.id, at("a private", 48.86, false))
        .await
        .unwrap();
    let b_public = app
        .core
        .create_camera(b.id, at("b public", 48.87, true))
        .await
        .unwrap();
    let a_far = app
        .core
        .create_camera(a.id, at("a far", 49.5, false))
        .await
        .unwrap();
    let (id, secret) = cc_client(&app, "cam2", Some(a.id)).await;
    let t = cam2_token(&app, &id, &secret).await;
    let v: Value = get_jwt(&app, "/cameras/?near=48.85,2.35&radius_km=25&limit=2", &t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&v), vec![a_private.id, b_public.id]);
    let v: Value = get_jwt(&app, "/cameras/?near=48.85,2.35&radius_km=100", &t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&v), vec![a_private.id, b_public.id, a_far.id]);
    // Without an owner: public cameras only.
    let (id, secret) = cc_client(&app, "cam2", None).await;
    let t = cam2_token(&app, &id, &secret).await;
    let v: Value = get_jwt(&app, "/cameras/?near=48.85,2.35&radius_km=25", &t)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&v), vec![b_public.id]);
}

fn camgate(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_camgate"))
        .args(args)
        .env("CAMGATE_DATABASE_URL", &app.db.url)
        .env_remove("CAMGATE_CONFIG")
        .output()
        .unwrap()
}

/// `camgate camera import FILE --owner OWNER` and the `extra` arguments.
fn import(app: &TestApp, file: &str, owner: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["camera", "import", file, "--owner", owner];
    args.extend_from_slice(extra);
    camgate(app, &args)
}

#[track_caller]
fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn camera_import_csv_and_json_lines() {
    let app = spawn_app().await;
    let owner = app.create_user("importer@example.com", PASSWORD).await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("cams.csv");
    std::fs::write(
        &csv,
        "camera_id,city,state,country,lat,lng,source,source_url,camera_type,description,is_video,framerate,outdoors,traffic,inactive,resolution_w,resolution_h,date_added,last_updated,extra\n\
         1,Shinjuku-ku,Tokyo,JP,35.6895,139.6917,Google,www.google.com,IP,Crossing,True,25,True,True,False,1920,1080,2019-05-01,2020-01-01T10:00:00Z,x\n\
         2,Lyon,ARA,FR,95.0,4.8,DOT,,IP,,,,,,,,,,,\n\
         3,\"Quoted, City\",,US,40.4,-86.9,DOT,,Non_IP,\"two\nlines\",0,1.5,no,no,yes,640,480,,,\n\
         4,Austin,TX,US,30.2,-97.7,DOT,,Analog,,,,,,,,,,,\n\
         5,Austin,TX,US,30.2,-97.7,DOT,,IP,,,fast,,,,,,,,\n\
         6,short\n\
         7,Prague,,CZ,50.08,14.43,EarthCam,,IP,,,,,,,,,1999-12-31 23:59:59,,\n",
    )
    .unwrap();
    let out = import(
        &app,
        csv.to_str().unwrap(),
        "importer@example.com",
        &["--json"],
    );
    assert_success(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["imported"], 3, "{v}");
    assert_eq!(
        v["skipped"],
        json!([
            {"line": 3, "reason": "lat: `lat` must be between -90 and 90."},
            {"line": 6, "reason": "camera_type: `camera_type` must be IP or Non_IP."},
            {"line": 7, "reason": "framerate: `fast` is not a number"},
            {"line": 8, "reason": "2 fields where the header has 20"},
        ]),
        "{v}"
    );
    assert_eq!(v["warnings"], json!(["unknown column `extra` ignored"]));

    // The text summary and the progress bar's absence off a terminal.
    let jsonl = dir.path().join("cams.jsonl");
    std::fs::write(
        &jsonl,
        "{\"camera_id\": 10, \"city\": \"Lyon\", \"country\": \"FR\", \"lat\": 45.76, \"lng\": 4.83, \"is_video\": true, \"resolution_w\": 1280, \"is_public\": true}\n\
         \n\
         not json\n\
         {\"city\": \"Nowhere\", \"lng\": 500}\n\
         [1, 2]\n\
         {\"city\": \"Prague\", \"country\": \"CZ\", \"framerate\": 2.5, \"date_added\": \"2021-06-01\"}\n",
    )
    .unwrap();
    let out = import(&app, jsonl.to_str().unwrap(), "importer@example.com", &[]);
    assert_success(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("imported 2 cameras in "), "{text}");
    assert!(text.contains("skipped 3 rows:"), "{text}");
    assert!(text.contains("  line 3: invalid JSON"), "{text}");
    assert!(
        text.contains("  line 4: lng: `lng` must be between -180 and 180."),
        "{text}"
    );
    assert!(text.contains("  line 5: not a JSON object"), "{text}");

    // What arrived, through the CAM2 route.
    let (id, secret) = cc_client(&app, "cam2", Some(owner.id)).await;
    let t = cam2_token(&app, &id, &secret).await;
    let v: Value = get_jwt(&app, "/cameras/", &t).await.json().await.unwrap();
    let cams = v.as_array().unwrap();
    assert_eq!(cams.len(), 5);
    assert_eq!(cams[0]["city"], "Shinjuku-ku");
    assert_eq!(cams[0]["is_video"], true);
    assert_eq!(cams[0]["framerate"], 25.0);
    assert_eq!(cams[0]["date_added"], "2019-05-01T00:00:00Z");
    assert_eq!(cams[0]["last_updated"], "2020-01-01T10:00:00Z");
    assert_eq!(cams[1]["city"], "Quoted, City");
    assert_eq!(cams[1]["description"], "two\nlines");
    assert_eq!(cams[1]["inactive"], true);
    assert_eq!(cams[1]["camera_type"], "Non_IP");
    assert_eq!(cams[2]["date_added"], "1999-12-31T23:59:59Z");
    assert_eq!(cams[3]["city"], "Lyon");
    assert_eq!(cams[4]["framerate"], 2.5);
    // is_public from the row: the Lyon camera is public, the others private.
    let (id0, secret0) = cc_client(&app, "cam2", None).await;
    let t0 = cam2_token(&app, &id0, &secret0).await;
    let v: Value = get_jwt(&app, "/cameras/", &t0).await.json().await.unwrap();
    assert_eq!(ids(&v), vec![cams[3]["camera_id"].as_i64().unwrap()]);

    // An unknown owner or a missing file: a clear error, exit 1.
    let out = import(&app, csv.to_str().unwrap(), "nobody@example.com", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user with email"));
    let out = import(&app, "/nonexistent.csv", "importer@example.com", &[]);
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn keys_rotate_command() {
    let app = spawn_app().await;
    let (id, secret) = cc_client(&app, "cam2", None).await;
    let before = cam2_token(&app, &id, &secret).await;
    let out = camgate(&app, &["keys", "rotate", "--alg", "ES256", "--json"]);
    assert_success(&out);
    let kid = serde_json::from_slice::<Value>(&out.stdout).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string();
    let after = cam2_token(&app, &id, &secret).await;
    assert_eq!(parts(&after).0["kid"], kid.as_str());
    assert_eq!(parts(&after).0["alg"], "ES256");
    // Both verify on this node (its cache learns the new kid on first sight).
    assert_eq!(get_jwt(&app, "/cameras/", &before).await.status(), 200);
    assert_eq!(get_jwt(&app, "/cameras/", &after).await.status(), 200);
    let out = camgate(&app, &["keys", "list"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("retired, verifies until"), "{text}");
}

#[tokio::test]
async fn demo_seeds_a_cam2_client_for_the_spec_commands() {
    use camgate_server::demo::{seed, CAM2_CLIENT_ID, CAM2_CLIENT_SECRET};
    let app = spawn_app().await;
    seed(&app.core).await.unwrap().unwrap();
    let token = cam2_token(&app, CAM2_CLIENT_ID, CAM2_CLIENT_SECRET).await;
    let v: Value = get_jwt(&app, "/cameras.json", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v.as_array().unwrap().len(), 20);
    assert_eq!(v[0]["city"], "Shinjuku-ku");
    let v: Value = get_jwt(&app, "/cameras.json?country=JP", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v.as_array().unwrap().len(), 4);
    let r = refresh(&app, &token).await;
    assert_eq!(r.status(), 200);
}

/// The radius search's spatial index follows a camera that moves, loses its position or is
/// deleted (triggers on SQLite's R*Tree; PostgreSQL's GiST index is on the row itself).
#[tokio::test]
async fn radius_search_follows_moved_and_deleted_cameras() {
    let app = spawn_app().await;
    let owner = app.create_user("owner@example.com", PASSWORD).await;
    let t0 = app.clock_now();
    let at = |name: &str, lat: f64, lng: f64| {
        let mut f = CameraFields::named(name);
        f.lat = Some(lat);
        f.lng = Some(lng);
        NewCamera {
            fields: f,
            created_at: t0,
            updated_at: t0,
        }
    };
    app.core
        .import_cameras(
            owner.id,
            &[at("paris", 48.8566, 2.3522), at("lyon", 45.764, 4.8357)],
        )
        .await
        .unwrap();
    let (id, secret) = cc_client(&app, "cam2", Some(owner.id)).await;
    let token = cam2_token(&app, &id, &secret).await;
    let near_paris = "/cameras/?near=48.85,2.35&radius_km=25";
    let found = |v: Value| v.as_array().map_or(usize::MAX, Vec::len);
    let got: Value = get_jwt(&app, near_paris, &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found(got.clone()), 1, "{got}");
    let paris_id = ids(&got)[0];
    let lyon_id = paris_id + 1;

    // Lyon moves to Paris: two near Paris.
    let store = app.core.store.clone();
    let mut lyon = store.camera(owner.id, lyon_id).await.unwrap().unwrap();
    lyon.fields.lat = Some(48.86);
    lyon.fields.lng = Some(2.34);
    assert!(store.update_camera(&lyon).await.unwrap());
    let got: Value = get_jwt(&app, near_paris, &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&got), vec![paris_id, lyon_id], "{got}");
    // It loses its position: one again; none near Lyon either.
    let mut lyon = store.camera(owner.id, lyon_id).await.unwrap().unwrap();
    lyon.fields.lat = None;
    lyon.fields.lng = None;
    assert!(store.update_camera(&lyon).await.unwrap());
    let got: Value = get_jwt(&app, near_paris, &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&got), vec![paris_id], "{got}");
    let got: Value = get_jwt(&app, "/cameras/?near=45.76,4.83&radius_km=25", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found(got), 0);
    // Paris deleted: nothing near Paris.
    assert!(store.delete_camera(owner.id, paris_id).await.unwrap());
    let got: Value = get_jwt(&app, near_paris, &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found(got), 0);
}

/// CAM2 searches are answered from memory on each node while nothing a search could show
/// changed: a camera added, edited or deleted on another node, or a share ended there, shows
/// in the next search on this one.
#[tokio::test]
async fn a_search_from_memory_follows_changes_made_on_another_node() {
    let a = spawn_app().await;
    let b = a.spawn_node().await;
    let owner = a.create_user("owner@example.com", PASSWORD).await;
    let t0 = a.clock_now();
    let in_city = |name: &str| {
        let mut f = CameraFields::named(name);
        f.city = Some("Lafayette".into());
        NewCamera {
            fields: f,
            created_at: t0,
            updated_at: t0,
        }
    };
    a.core
        .import_cameras(owner.id, &[in_city("one")])
        .await
        .unwrap();
    let (id, secret) = cc_client(&a, "cam2", Some(owner.id)).await;
    // From B: each test node is its own issuer (its own address).
    let token = cam2_token(&b, &id, &secret).await;
    let path = "/cameras.json?city=Lafayette";
    let search = || async {
        get_jwt(&b, path, &token)
            .await
            .json::<Value>()
            .await
            .unwrap()
    };
    let first = search().await;
    assert!(first.is_array(), "{first}");
    assert_eq!(ids(&first).len(), 1, "{first}");
    assert_eq!(search().await, first, "the same answer again");
    let one = ids(&first)[0];

    // Added on A: two on B.
    a.core
        .import_cameras(owner.id, &[in_city("two")])
        .await
        .unwrap();
    assert_eq!(ids(&search().await).len(), 2);
    // Moved out of the city on A: one on B.
    let store = a.core.store.clone();
    let mut c = store.camera(owner.id, one).await.unwrap().unwrap();
    c.fields.city = Some("Elsewhere".into());
    assert!(store.update_camera(&c).await.unwrap());
    let got = search().await;
    assert_eq!(ids(&got).len(), 1, "{got}");
    assert_ne!(ids(&got)[0], one);
    // Deleted on A: none on B.
    assert!(store.delete_camera(owner.id, ids(&got)[0]).await.unwrap());
    assert_eq!(ids(&search().await).len(), 0);
}
