//! Black-box tests of the OpenID Provider (decision 87): discovery, id_tokens on the code flow
//! and on refresh (signatures checked here against `/.well-known/jwks.json` with aws-lc-rs),
//! `sub` (public and pairwise), userinfo, `prompt=none`, `max_age`, `login_hint`, identity
//! scopes on other grants, RP-initiated logout, id_token key rotation, the client CLI flags
//! and the dashboard's OpenID Connect fields. A user signs in and approves through the pages as
//! in `authorize.rs` (a hand-kept cookie jar, redirects not followed). Each test runs on its
//! own database (SQLite, or PostgreSQL with `CAMGATE_TEST_DATABASE=postgres`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use camgate_core::authorize::s256_challenge;
use camgate_core::model::{ClientKind, GrantType, IdTokenAlg, JwtAlg, OidcClient, SubjectType};
use camgate_core::scope::ScopeSet;
use camgate_core::users::UserInput;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};

use crate::common::session::*;
use crate::common::*;

const CB: &str = "https://rp.example.com/cb";
const BYE: &str = "https://rp.example.com/bye";
const STATE: &str = "st-1";
const EMAIL: &str = "user@example.com";

// ---- relying parties

/// A registered relying party.
struct Rp {
    id: String,
    secret: String,
    redirect: String,
}

/// A confidential client (angelcam profile: opaque tokens, rotating refresh tokens) with
/// these redirect URIs and OpenID Connect settings.
async fn register_rp(app: &TestApp, redirect_uris: &[&str], oidc: OidcClient) -> Rp {
    let mut input = client_input("Relying Party", ClientKind::Confidential, "angelcam");
    input.redirect_uris = redirect_uris.iter().map(|s| s.to_string()).collect();
    input.oidc = oidc;
    let r = app.register(input).await;
    Rp {
        id: r.client.client_id,
        secret: r.secret.unwrap(),
        redirect: redirect_uris[0].to_string(),
    }
}

/// The default relying party: RS256, public `sub`, `BYE` registered for logout.
async fn default_rp(app: &TestApp) -> Rp {
    register_rp(
        app,
        &[CB],
        OidcClient {
            post_logout_redirect_uris: vec![BYE.into()],
            ..Default::default()
        },
    )
    .await
}

fn alg_oidc(alg: JwtAlg) -> OidcClient {
    OidcClient {
        id_token_alg: IdTokenAlg(alg),
        ..Default::default()
    }
}

fn pairwise() -> OidcClient {
    OidcClient {
        subject_type: SubjectType::Pairwise,
        ..Default::default()
    }
}

/// A PKCE pair: (verifier, S256 challenge).
fn pkce() -> (String, String) {
    let a = camgate_core::secret::generate(camgate_core::secret::TokenFormat::Alnum30);
    let b = camgate_core::secret::generate(camgate_core::secret::TokenFormat::Alnum30);
    let v = format!("{a}-{b}");
    let c = s256_challenge(&v);
    (v, c)
}

// ---- the browser

async fn authorize(b: &mut Browser<'_>, params: &[(&str, &str)]) -> Resp {
    b.get(&format!("/oauth/authorize/?{}", encode(params)))
        .await
}

/// authorize → (sign in) → (approve): the final answer (a redirect to the client).
async fn authorize_and_approve(b: &mut Browser<'_>, params: &[(&str, &str)], email: &str) -> Resp {
    let mut r = authorize(b, params).await;
    if r.status == 303 && r.location().starts_with("/login") {
        r = b.sign_in_at(&r.location(), email, PASSWORD).await;
        assert_eq!(r.status, 303, "{}", r.body);
        r = b.get(&r.location()).await;
    }
    if r.status == 200 {
        r = b.decide(&r, "approve").await;
    }
    r
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The code of a redirect back to `redirect` (checks `state` and `iss`).
#[track_caller]
fn code_of(app: &TestApp, r: &Resp, redirect: &str) -> String {
    assert!(
        r.status == 302 || r.status == 303,
        "{} {}",
        r.status,
        r.body
    );
    let loc = r.location();
    assert!(loc.starts_with(&format!("{redirect}?")), "{loc}");
    let q = query(&loc);
    assert_eq!(q.get("state").map(String::as_str), Some(STATE), "{loc}");
    assert_eq!(q["iss"], app.base);
    q.get("code")
        .unwrap_or_else(|| panic!("no code in {loc}"))
        .clone()
}

/// The `error` of a redirect back to `redirect` (checks `state` and `iss`).
#[track_caller]
fn error_of_redirect(app: &TestApp, r: &Resp, redirect: &str) -> String {
    assert!(
        r.status == 302 || r.status == 303,
        "{} {}",
        r.status,
        r.body
    );
    let loc = r.location();
    assert!(loc.starts_with(&format!("{redirect}?")), "{loc}");
    let q = query(&loc);
    assert!(!q.contains_key("code"), "{loc}");
    assert_eq!(q.get("state").map(String::as_str), Some(STATE), "{loc}");
    assert_eq!(q["iss"], app.base);
    q["error"].clone()
}

/// Authorization parameters of an OpenID request.
fn params<'a>(
    rp: &'a Rp,
    scope: &'a str,
    nonce: Option<&'a str>,
    challenge: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("response_type", "code"),
        ("client_id", rp.id.as_str()),
        ("redirect_uri", rp.redirect.as_str()),
        ("scope", scope),
        ("state", STATE),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    if let Some(n) = nonce {
        p.push(("nonce", n));
    }
    p
}

async fn exchange(app: &TestApp, rp: &Rp, code: &str, verifier: &str) -> Value {
    let r = app
        .token_form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &rp.id),
            ("client_secret", &rp.secret),
            ("code", code),
            ("redirect_uri", &rp.redirect),
            ("code_verifier", verifier),
        ])
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The whole code flow for `email` in browser `b`: the token response.
async fn tokens(
    app: &TestApp,
    b: &mut Browser<'_>,
    rp: &Rp,
    scope: &str,
    nonce: Option<&str>,
    email: &str,
) -> Value {
    let (verifier, challenge) = pkce();
    let r = authorize_and_approve(b, &params(rp, scope, nonce, &challenge), email).await;
    let code = code_of(app, &r, &rp.redirect);
    exchange(app, rp, &code, &verifier).await
}

async fn refresh(app: &TestApp, rp: &Rp, refresh_token: &str, scope: Option<&str>) -> Value {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", rp.id.as_str()),
        ("client_secret", rp.secret.as_str()),
        ("refresh_token", refresh_token),
    ];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let r = app.token_form(&form).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

// ---- JWTs

fn seg_json(seg: &str) -> Value {
    serde_json::from_slice(&B64.decode(seg).unwrap()).unwrap()
}

/// (header, claims) without any check.
fn jwt_parts(jwt: &str) -> (Value, Value) {
    let p: Vec<&str> = jwt.split('.').collect();
    assert_eq!(p.len(), 3, "{jwt}");
    (seg_json(p[0]), seg_json(p[1]))
}

async fn jwks(app: &TestApp) -> Vec<Value> {
    let r = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["keys"].as_array().unwrap().clone()
}

fn jwks_kids(keys: &[Value]) -> Vec<String> {
    keys.iter().map(|k| s(&k["kid"]).to_string()).collect()
}

/// Verifies a JWS signature with a public JWK (RSA, P-256 or Ed25519).
fn verify_with_jwk(jwk: &Value, msg: &[u8], sig: &[u8]) -> bool {
    let b = |k: &str| B64.decode(s(&jwk[k])).unwrap();
    match s(&jwk["kty"]) {
        "RSA" => RsaPublicKeyComponents {
            n: b("n"),
            e: b("e"),
        }
        .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, sig)
        .is_ok(),
        "EC" => {
            assert_eq!(jwk["crv"], "P-256");
            let mut point = vec![4u8];
            point.extend(b("x"));
            point.extend(b("y"));
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(msg, sig)
                .is_ok()
        }
        "OKP" => {
            assert_eq!(jwk["crv"], "Ed25519");
            UnparsedPublicKey::new(&signature::ED25519, b("x"))
                .verify(msg, sig)
                .is_ok()
        }
        other => panic!("unexpected kty {other}"),
    }
}

/// Checks an id_token's signature against the published key set (the key named by `kid`, of
/// the header's algorithm) and its `typ`; returns (header, claims).
async fn verify_id_token(app: &TestApp, jwt: &str) -> (Value, Value) {
    let (header, claims) = jwt_parts(jwt);
    assert_eq!(header["typ"], "JWT", "{header}");
    let keys = jwks(app).await;
    let kid = s(&header["kid"]);
    let jwk = keys
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS {keys:?}"));
    assert_eq!(jwk["alg"], header["alg"], "{jwk}");
    assert_eq!(jwk["use"], "sig");
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let sig = B64.decode(sig).unwrap();
    assert!(
        verify_with_jwk(jwk, input.as_bytes(), &sig),
        "the id_token signature does not verify"
    );
    // And a changed payload does not.
    assert!(!verify_with_jwk(jwk, format!("{input}x").as_bytes(), &sig));
    (header, claims)
}

/// at_hash as OIDC Core §3.1.3.6 defines it (SHA-512 for EdDSA, the convention camgate follows).
fn at_hash(alg: &str, access_token: &str) -> String {
    match alg {
        "EdDSA" => B64.encode(&Sha512::digest(access_token.as_bytes())[..32]),
        "RS256" | "ES256" => B64.encode(&Sha256::digest(access_token.as_bytes())[..16]),
        other => panic!("unexpected alg {other}"),
    }
}

// ---- userinfo, logout

async fn userinfo(app: &TestApp, token: &str) -> reqwest::Response {
    app.get_bearer("/oauth/userinfo", token).await
}

async fn userinfo_json(app: &TestApp, token: &str) -> Value {
    let r = userinfo(app, token).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

async fn logout(b: &mut Browser<'_>, params: &[(&str, &str)]) -> Resp {
    b.get(&format!("/oauth/logout?{}", encode(params))).await
}

/// An error page of the logout endpoint: 400, HTML, never a redirect.
#[track_caller]
fn assert_logout_refused(r: &Resp, message: &str) {
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.headers.get("location").is_none(), "{:?}", r.headers);
    assert!(r.header("content-type").starts_with("text/html"));
    assert!(
        r.body.contains(message),
        "missing {message:?} in {}",
        r.body
    );
}

/// Whether `b` still has a live session: `prompt=none` gives a code (consent was given) or
/// `login_required`.
async fn has_session(app: &TestApp, b: &mut Browser<'_>, rp: &Rp) -> bool {
    let (_, challenge) = pkce();
    let mut p = params(rp, "openid", None, &challenge);
    p.push(("prompt", "none"));
    let r = authorize(b, &p).await;
    let loc = r.location();
    let q = query(&loc);
    assert_eq!(q["iss"], app.base);
    match q.get("error").map(String::as_str) {
        Some("login_required") => false,
        Some(other) => panic!("unexpected error {other} in {loc}"),
        None => {
            assert!(q.contains_key("code"), "{loc}");
            true
        }
    }
}

/// A CAM2 access token (an RFC 9068 JWT signed by the access key) of a client-credentials client.
async fn cam2_token(app: &TestApp, id: &str, secret: &str) -> String {
    let r = app
        .http
        .post(app.url("/token.json"))
        .form(&[("client_id", id), ("client_secret", secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s(&r.json::<Value>().await.unwrap()["token"]).to_string()
}

async fn cameras(app: &TestApp, jwt: &str) -> u16 {
    app.http
        .get(app.url("/cameras/"))
        .header("Authorization", format!("JWT {jwt}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn camgate(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_camgate"))
        .args(args)
        .env("CAMGATE_DATABASE_URL", &app.db.url)
        .env_remove("CAMGATE_CONFIG")
        .output()
        .unwrap()
}

#[track_caller]
fn stdout_ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Discovery

#[tokio::test]
async fn discovery_is_the_rfc_8414_document() {
    let app = spawn_app().await;
    let get = |p: &str| {
        let url = app.url(p);
        let http = app.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert!(r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"));
            r.json::<Value>().await.unwrap()
        }
    };
    let oidc = get("/.well-known/openid-configuration").await;
    let rfc8414 = get("/.well-known/oauth-authorization-server").await;
    assert_eq!(oidc, rfc8414);
    let base = &app.base;
    assert_eq!(oidc["issuer"], base.as_str());
    assert_eq!(
        oidc["authorization_endpoint"],
        format!("{base}/oauth/authorize")
    );
    assert_eq!(oidc["token_endpoint"], format!("{base}/oauth/token"));
    assert_eq!(oidc["userinfo_endpoint"], format!("{base}/oauth/userinfo"));
    assert_eq!(oidc["end_session_endpoint"], format!("{base}/oauth/logout"));
    assert_eq!(oidc["jwks_uri"], format!("{base}/.well-known/jwks.json"));
    assert_eq!(
        oidc["response_types_supported"],
        serde_json::json!(["code"])
    );
    assert_eq!(
        oidc["subject_types_supported"],
        serde_json::json!(["public", "pairwise"])
    );
    let algs = oidc["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    for alg in ["RS256", "ES256", "EdDSA"] {
        assert!(algs.iter().any(|a| a == alg), "{alg} missing: {algs:?}");
    }
    assert_eq!(oidc["request_uri_parameter_supported"], false);
    assert_eq!(oidc["request_parameter_supported"], false);
    assert_eq!(oidc["claims_parameter_supported"], false);
    assert_eq!(oidc["authorization_response_iss_parameter_supported"], true);
    let scopes = oidc["scopes_supported"].as_array().unwrap();
    for sc in ["openid", "profile", "email", "phone"] {
        assert!(scopes.iter().any(|x| x == sc), "{sc}");
    }
    // Every advertised endpoint answers here (not 404).
    for key in ["userinfo_endpoint", "end_session_endpoint", "jwks_uri"] {
        let r = app.http.get(s(&oidc[key])).send().await.unwrap();
        assert_ne!(r.status(), 404, "{key}");
    }
    // The JWKS has the RS256 id_token key before any sign-in (Core §10.1.1: RPs cache it).
    let keys = jwks(&app).await;
    assert!(
        keys.iter()
            .any(|k| k["alg"] == "RS256" && k["kty"] == "RSA" && k["e"] == "AQAB"),
        "{keys:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The code flow

#[tokio::test]
async fn code_flow_gives_a_verified_rs256_id_token_with_the_sign_in_facts() {
    let app = spawn_app().await;
    let user = app.create_user(EMAIL, PASSWORD).await;
    let rp = default_rp(&app).await;
    let mut b = Browser::new(&app);
    let (verifier, challenge) = pkce();
    let nonce = "n-0S6_WzA2Mj";
    let p = params(&rp, "openid profile email phone", Some(nonce), &challenge);

    let r = authorize(&mut b, &p).await;
    assert_eq!(r.status, 303);
    let login = r.location();
    assert!(login.starts_with("/login?request_id="), "{login}");
    // The nonce stays server-side with the parked request.
    assert!(!login.contains(nonce));
    let signed_in_at = app.clock_now();
    let r = b.sign_in_at(&login, EMAIL, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    app.clock.advance(5);
    let consent = b.get(&r.location()).await;
    consent
        .ok()
        .has("Sign you in with your account")
        .has("See your name")
        .has("See your email address")
        .has("See your phone number");
    let r = b.decide(&consent, "approve").await;
    let code = code_of(&app, &r, CB);
    app.clock.advance(7);
    let issued_at = app.clock_now();
    let t = exchange(&app, &rp, &code, &verifier).await;

    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "openid profile email phone");
    let access = s(&t["access_token"]);
    assert!(t["refresh_token"].is_string());
    let id_token = s(&t["id_token"]);
    let (header, c) = verify_id_token(&app, id_token).await;
    assert_eq!(header["alg"], "RS256");
    assert_eq!(c["iss"], app.base.as_str());
    assert_eq!(c["aud"], rp.id.as_str());
    assert_eq!(c["azp"], rp.id.as_str());
    assert_eq!(c["nonce"], nonce);
    assert_eq!(c["auth_time"], signed_in_at);
    assert_eq!(c["iat"], issued_at);
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(c["amr"], serde_json::json!(["pwd"]));
    assert_eq!(c["at_hash"], at_hash("RS256", access).as_str());
    let sub = s(&c["sub"]);
    assert_eq!(sub.len(), 43, "{sub}");
    assert_ne!(sub, user.id.to_string());
    assert!(!sub.contains(EMAIL));
    // Profile, email and phone are in userinfo only (Core §5.4).
    for claim in ["email", "name", "phone_number", "given_name"] {
        assert!(c.get(claim).is_none(), "{claim} in the id_token: {c}");
    }
    // The id key is an `id` key, not the access-token key.
    let kid = s(&header["kid"]);
    let rec = app
        .core
        .store
        .signing_keys(app.clock_now())
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == kid)
        .unwrap();
    assert_eq!((rec.alg.as_str(), rec.purpose.as_str()), ("RS256", "id"));

    let info = userinfo_json(&app, access).await;
    assert_eq!(info["sub"], sub);
    assert_eq!(info["name"], "Test User");
    assert_eq!(info["given_name"], "Test");
    assert_eq!(info["family_name"], "User");
    assert_eq!(info["email"], EMAIL);
    assert_eq!(info["email_verified"], false);
    assert_eq!(info["phone_number"], "+100");
    // POST works the same.
    let r = app
        .http
        .post(app.url("/oauth/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), info);
    // The access token still works on the API (openid adds no permission, takes none away).
    let me = app.get_bearer("/v1/me/", access).await;
    assert_eq!(me.status(), 403, "openid profile email phone has no read");
}

#[tokio::test]
async fn eddsa_and_es256_clients_get_id_tokens_of_their_algorithm() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let mut subs = Vec::new();
    let mut kids = Vec::new();
    for alg in [JwtAlg::EdDsa, JwtAlg::Es256] {
        let rp = register_rp(&app, &[CB], alg_oidc(alg)).await;
        let mut b = Browser::new(&app);
        let t = tokens(&app, &mut b, &rp, "openid read", Some("abc"), EMAIL).await;
        let id_token = s(&t["id_token"]);
        let (header, c) = verify_id_token(&app, id_token).await;
        assert_eq!(header["alg"], alg.as_str());
        let expected = at_hash(alg.as_str(), s(&t["access_token"]));
        assert_eq!(c["at_hash"], expected.as_str());
        // EdDSA: the left half of SHA-512 is 32 bytes (43 characters); SHA-256's 16 (22).
        let len = if alg == JwtAlg::EdDsa { 43 } else { 22 };
        assert_eq!(expected.len(), len);
        assert_eq!(c["nonce"], "abc");
        subs.push(s(&c["sub"]).to_string());
        kids.push(s(&header["kid"]).to_string());
        let rec = app
            .core
            .store
            .signing_keys(app.clock_now())
            .await
            .unwrap()
            .into_iter()
            .find(|k| k.kid == header["kid"])
            .unwrap();
        assert_eq!(rec.purpose, "id", "an id_token key, not the access key");
        assert_eq!(rec.alg, alg.as_str());
    }
    // Public sub: the same for both clients.
    assert_eq!(subs[0], subs[1]);
    assert_ne!(kids[0], kids[1]);
    // The EdDSA id key is not the (EdDSA) access-token key.
    let access_kid = app.core.store.active_signing_kid().await.unwrap().unwrap();
    assert!(!kids.contains(&access_kid));
}

#[tokio::test]
async fn sub_is_stable_and_pairwise_per_sector() {
    let app = spawn_app().await;
    let user = app.create_user(EMAIL, PASSWORD).await;
    let public_a = register_rp(&app, &[CB], OidcClient::default()).await;
    let public_b = register_rp(
        &app,
        &["https://other.example.net/cb"],
        OidcClient::default(),
    )
    .await;
    let pw_1 = register_rp(&app, &["https://pw.example.org/one"], pairwise()).await;
    let pw_2 = register_rp(&app, &["https://pw.example.org/two"], pairwise()).await;
    let pw_other = register_rp(&app, &["https://else.example.org/cb"], pairwise()).await;

    let sub_of = |t: &Value| s(&jwt_parts(s(&t["id_token"])).1["sub"]).to_string();
    // Two separate sign-ins to the same client: the same sub.
    let mut b1 = Browser::new(&app);
    let t1 = tokens(&app, &mut b1, &public_a, "openid", None, EMAIL).await;
    let mut b2 = Browser::new(&app);
    app.clock.advance(60);
    let t2 = tokens(&app, &mut b2, &public_a, "openid", None, EMAIL).await;
    let public_sub = sub_of(&t1);
    assert_eq!(public_sub, sub_of(&t2));
    assert_ne!(
        jwt_parts(s(&t1["id_token"])).1["auth_time"],
        jwt_parts(s(&t2["id_token"])).1["auth_time"],
        "two sign-ins"
    );
    assert_eq!(public_sub.len(), 43);
    assert_ne!(public_sub, user.id.to_string());
    // Public: the same for another client.
    let tb = tokens(&app, &mut b1, &public_b, "openid", None, EMAIL).await;
    assert_eq!(sub_of(&tb), public_sub);

    // Pairwise: not the public one; equal for two clients on the same redirect host; not for
    // another host.
    let p1 = tokens(&app, &mut b1, &pw_1, "openid", None, EMAIL).await;
    let p2 = tokens(&app, &mut b1, &pw_2, "openid", None, EMAIL).await;
    let po = tokens(&app, &mut b1, &pw_other, "openid", None, EMAIL).await;
    let pw_sub = sub_of(&p1);
    assert_eq!(pw_sub.len(), 43);
    assert_ne!(pw_sub, public_sub);
    assert_eq!(sub_of(&p2), pw_sub);
    assert_ne!(sub_of(&po), pw_sub);
    assert_ne!(sub_of(&po), public_sub);
    // Userinfo states the same sub as the id_token.
    assert_eq!(
        userinfo_json(&app, s(&p1["access_token"])).await["sub"],
        pw_sub
    );
    assert_eq!(
        userinfo_json(&app, s(&t1["access_token"])).await["sub"],
        public_sub
    );
    // Stable across a password change (same password, new change time: sessions end).
    assert!(app
        .core
        .store
        .set_password(user.id, &user.password_hash, app.clock_now())
        .await
        .unwrap());
    app.clock.advance(1);
    let mut b3 = Browser::new(&app);
    let t3 = tokens(&app, &mut b3, &public_a, "openid", None, EMAIL).await;
    assert_eq!(sub_of(&t3), public_sub);
}

// ---------------------------------------------------------------------------------------------
// Userinfo

#[tokio::test]
async fn userinfo_claims_follow_the_scopes() {
    let app = spawn_app().await;
    // A verified address, no phone number.
    app.core
        .create_user(UserInput {
            email: "ada@example.com".into(),
            password: PASSWORD.into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            phone: String::new(),
            is_admin: false,
            email_verified: true,
        })
        .await
        .unwrap();
    app.create_user(EMAIL, PASSWORD).await;
    let rp = default_rp(&app).await;

    let mut ada = Browser::new(&app);
    let t = tokens(&app, &mut ada, &rp, "openid email", None, "ada@example.com").await;
    let info = userinfo_json(&app, s(&t["access_token"])).await;
    let keys: Vec<&String> = info.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["email", "email_verified", "sub"], "{info}");
    assert_eq!(info["email"], "ada@example.com");
    assert_eq!(info["email_verified"], true);

    // profile and phone: the name; no phone_number (empty ones are left out), no email.
    let t = tokens(
        &app,
        &mut ada,
        &rp,
        "openid profile phone",
        None,
        "ada@example.com",
    )
    .await;
    let info = userinfo_json(&app, s(&t["access_token"])).await;
    assert_eq!(info["name"], "Ada Lovelace");
    assert_eq!(info["given_name"], "Ada");
    assert_eq!(info["family_name"], "Lovelace");
    for absent in ["phone_number", "email", "email_verified"] {
        assert!(info.get(absent).is_none(), "{absent} in {info}");
    }

    // openid alone: sub only.
    let t = tokens(&app, &mut ada, &rp, "openid", None, "ada@example.com").await;
    let info = userinfo_json(&app, s(&t["access_token"])).await;
    assert_eq!(info.as_object().unwrap().len(), 1, "{info}");
    assert_eq!(s(&info["sub"]).len(), 43);

    // A user created without it: email_verified false.
    let mut other = Browser::new(&app);
    let t = tokens(&app, &mut other, &rp, "openid email", None, EMAIL).await;
    let info = userinfo_json(&app, s(&t["access_token"])).await;
    assert_eq!(info["email"], EMAIL);
    assert_eq!(info["email_verified"], false);
    assert!(info.get("name").is_none() && info.get("phone_number").is_none());
}

#[tokio::test]
async fn userinfo_errors_follow_rfc_6750() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let rp = default_rp(&app).await;

    let check = |r: reqwest::Response, status: u16, code: &'static str| async move {
        assert_eq!(r.status(), status);
        let www = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(www.starts_with("Bearer "), "{www}");
        assert!(www.contains(&format!("error=\"{code}\"")), "{www}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], code);
        www
    };
    // No token, a bad token.
    let r = app
        .http
        .get(app.url("/oauth/userinfo"))
        .send()
        .await
        .unwrap();
    check(r, 401, "invalid_token").await;
    check(userinfo(&app, "cgat_nope").await, 401, "invalid_token").await;
    let r = app
        .http
        .post(app.url("/oauth/userinfo"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    check(r, 401, "invalid_token").await;

    // A token without openid (the code flow with read, and the password grant).
    let mut b = Browser::new(&app);
    let t = tokens(&app, &mut b, &rp, "read", None, EMAIL).await;
    assert!(t.get("id_token").is_none(), "{t}");
    let www = check(
        userinfo(&app, s(&t["access_token"])).await,
        403,
        "insufficient_scope",
    )
    .await;
    assert!(www.contains("scope=\"openid\""), "{www}");
    let pw = app
        .token_form(&[
            ("grant_type", "password"),
            ("client_id", &rp.id),
            ("client_secret", &rp.secret),
            ("username", EMAIL),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(pw.status(), 200);
    let pw: Value = pw.json().await.unwrap();
    assert!(pw.get("id_token").is_none());
    check(
        userinfo(&app, s(&pw["access_token"])).await,
        403,
        "insufficient_scope",
    )
    .await;

    // An id_token is no access token: not at userinfo, not at the API.
    let t = tokens(&app, &mut b, &rp, "openid read", None, EMAIL).await;
    let id_token = s(&t["id_token"]);
    check(userinfo(&app, id_token).await, 401, "invalid_token").await;
    let me = app.get_bearer("/v1/me/", id_token).await;
    assert_eq!(me.status(), 401);
    // While the access token of the same grant works at both.
    assert_eq!(userinfo(&app, s(&t["access_token"])).await.status(), 200);
    assert_eq!(
        app.get_bearer("/v1/me/", s(&t["access_token"]))
            .await
            .status(),
        200
    );
}

// ---------------------------------------------------------------------------------------------
// Refresh

#[tokio::test]
async fn refresh_returns_a_new_id_token_with_the_same_sign_in() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let rp = default_rp(&app).await;
    let mut b = Browser::new(&app);
    let signed_in_at = app.clock_now();
    let t = tokens(
        &app,
        &mut b,
        &rp,
        "openid email read",
        Some("nonce-1"),
        EMAIL,
    )
    .await;
    let (_, first) = verify_id_token(&app, s(&t["id_token"])).await;
    assert_eq!(first["nonce"], "nonce-1");

    app.clock.advance(600);
    let r = refresh(&app, &rp, s(&t["refresh_token"]), None).await;
    assert_eq!(r["scope"], "openid email read");
    assert_ne!(r["access_token"], t["access_token"]);
    let (header, c) = verify_id_token(&app, s(&r["id_token"])).await;
    assert_eq!(header["alg"], "RS256");
    assert!(c.get("nonce").is_none(), "no nonce on refresh: {c}");
    for same in ["sub", "aud", "azp", "iss", "amr"] {
        assert_eq!(c[same], first[same], "{same}");
    }
    assert_eq!(c["auth_time"], signed_in_at);
    assert_eq!(c["iat"], app.clock_now());
    assert_eq!(c["exp"], app.clock_now() + 3600);
    assert_eq!(
        c["at_hash"],
        at_hash("RS256", s(&r["access_token"])).as_str()
    );
    assert_ne!(c["at_hash"], first["at_hash"]);
    // The new access token is the one at_hash names, and it works.
    assert_eq!(
        userinfo_json(&app, s(&r["access_token"])).await["sub"],
        c["sub"]
    );

    // Again, from the rotated refresh token; narrowing to `read` drops openid and the id_token.
    app.clock.advance(60);
    let r2 = refresh(&app, &rp, s(&r["refresh_token"]), Some("read")).await;
    assert_eq!(r2["scope"], "read");
    assert!(r2.get("id_token").is_none(), "{r2}");

    // A grant without openid never gets one.
    let t = tokens(&app, &mut b, &rp, "read write", None, EMAIL).await;
    assert!(t.get("id_token").is_none(), "{t}");
    let r = refresh(&app, &rp, s(&t["refresh_token"]), None).await;
    assert!(r.get("id_token").is_none(), "{r}");
}

// ---------------------------------------------------------------------------------------------
// prompt, max_age, login_hint, redirect_uri

#[tokio::test]
async fn prompt_none_without_a_session_is_login_required() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let rp = default_rp(&app).await;
    let mut b = Browser::new(&app);
    let (_, challenge) = pkce();
    let mut p = params(&rp, "openid", Some("n"), &challenge);
    p.push(("prompt", "none"));
    let r = authorize(&mut b, &p).await;
    assert_eq!(r.status, 302);
    assert_eq!(error_of_redirect(&app, &r, CB), "login_required");
    // Signed in but not yet approved: consent_required.
    let r = b.sign_in(EMAIL, PASSWORD).await;
    assert_eq!(r.status, 303);
    let r = authorize(&mut b, &p).await;
    assert_eq!(error_of_redirect(&app, &r, CB), "consent_required");
}

#[tokio::test]
async fn max_age_makes_an_older_session_sign_in_again() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let rp = default_rp(&app).await;
    let mut b = Browser::new(&app);
    let first_sign_in = app.clock_now();
    tokens(&app, &mut b, &rp, "openid", None, EMAIL).await;

    // Within max_age: no sign-in, a code at once (consent was given).
    app.clock.advance(120);
    let (verifier, challenge) = pkce();
    let mut p = params(&rp, "openid", None, &challenge);
    p.push(("max_age", "300"));
    let r = authorize(&mut b, &p).await;
    let code = code_of(&app, &r, CB);
    let t = exchange(&app, &rp, &code, &verifier).await;
    assert_eq!(jwt_parts(s(&t["id_token"])).1["auth_time"], first_sign_in);

    // Older than max_age: under prompt=none, login_required; else the login page, even though
    // the session is live, and the new sign-in is the id_token's auth_time.
    let (verifier, challenge) = pkce();
    let mut p = params(&rp, "openid", None, &challenge);
    p.push(("max_age", "60"));
    let mut none = p.clone();
    none.push(("prompt", "none"));
    let r = authorize(&mut b, &none).await;
    assert_eq!(error_of_redirect(&app, &r, CB), "login_required");
    let r = authorize(&mut b, &p).await;
    assert_eq!(r.status, 303);
    let login = r.location();
    assert!(login.starts_with("/login?request_id="), "{login}");
    // The login page shows the form (it does not bounce back to the approval step).
    b.get(&login).await.ok().has("name=\"password\"");
    app.clock.advance(3);
    let second_sign_in = app.clock_now();
    let r = b.sign_in_at(&login, EMAIL, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = b.get(&r.location()).await;
    let code = code_of(&app, &r, CB);
    let t = exchange(&app, &rp, &code, &verifier).await;
    let (_, c) = verify_id_token(&app, s(&t["id_token"])).await;
    assert_eq!(c["auth_time"], second_sign_in);
    assert_ne!(first_sign_in, second_sign_in);

    // max_age=0: a sign-in every time, even right after one.
    let (verifier, challenge) = pkce();
    let mut p = params(&rp, "openid", None, &challenge);
    p.push(("max_age", "0"));
    let r = authorize(&mut b, &p).await;
    assert_eq!(r.status, 303);
    let login = r.location();
    assert!(login.starts_with("/login?request_id="), "{login}");
    app.clock.advance(2);
    let third_sign_in = app.clock_now();
    let r = b.sign_in_at(&login, EMAIL, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let r = b.get(&r.location()).await;
    let code = code_of(&app, &r, CB);
    let t = exchange(&app, &rp, &code, &verifier).await;
    assert_eq!(jwt_parts(s(&t["id_token"])).1["auth_time"], third_sign_in);
    // A bad max_age is invalid_request.
    let (_, challenge) = pkce();
    let mut p = params(&rp, "openid", None, &challenge);
    p.push(("max_age", "-1"));
    let r = authorize(&mut b, &p).await;
    assert_eq!(error_of_redirect(&app, &r, CB), "invalid_request");
}

#[tokio::test]
async fn login_hint_prefills_the_escaped_email_field() {
    let app = spawn_app().await;
    let rp = default_rp(&app).await;
    let mut b = Browser::new(&app);
    let (_, challenge) = pkce();
    let hint = "x\"><script>alert(1)</script>@example.com";
    let mut p = params(&rp, "openid", None, &challenge);
    p.push(("login_hint", hint));
    let r = authorize(&mut b, &p).await;
    assert_eq!(r.status, 303);
    let login = r.location();
    // The hint does not travel in the URL; the parked request keeps it.
    assert!(!login.contains("example.com"), "{login}");
    let page = b.get(&login).await;
    page.ok().lacks("<script>").lacks(hint);
    let i = page.body.find("id=\"email\"").unwrap();
    let tag = &page.body[i..i + page.body[i..].find('>').unwrap()];
    let v = tag.find("value=\"").unwrap() + "value=\"".len();
    let value = &tag[v..v + tag[v..].find('"').unwrap()];
    assert_eq!(
        value,
        "x&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;@example.com"
    );
    // A plain hint is shown as is.
    let mut p = params(&rp, "openid", None, &challenge);
    p.push(("login_hint", "ada@example.com"));
    let r = authorize(&mut b, &p).await;
    b.get(&r.location())
        .await
        .ok()
        .has("value=\"ada@example.com\"");
}

#[tokio::test]
async fn openid_requires_redirect_uri() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let rp = default_rp(&app).await; // one registered redirect URI
    let mut b = Browser::new(&app);
    let (_, challenge) = pkce();
    let without = |scope: &'static str| {
        vec![
            ("response_type", "code"),
            ("client_id", rp.id.as_str()),
            ("scope", scope),
            ("state", STATE),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
    };
    let r = authorize(&mut b, &without("openid email")).await;
    assert_eq!(r.status, 302);
    assert_eq!(error_of_redirect(&app, &r, CB), "invalid_request");
    assert!(
        query(&r.location())["error_description"].contains("redirect_uri"),
        "{}",
        r.location()
    );
    // Without openid the registered URI is used as before (the user is asked to sign in).
    let r = authorize(&mut b, &without("read")).await;
    assert_eq!(r.status, 303);
    assert!(r.location().starts_with("/login?"), "{}", r.location());
}

// ---------------------------------------------------------------------------------------------
// Identity scopes elsewhere

#[tokio::test]
async fn identity_scopes_belong_to_the_code_flow() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let rp = default_rp(&app).await;
    let mut cc = client_input("Service", ClientKind::Confidential, "angelcam");
    cc.grants = vec![GrantType::ClientCredentials];
    let cc = app.register(cc).await;
    let (cc_id, cc_secret) = (cc.client.client_id, cc.secret.unwrap());

    let invalid_scope = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_scope", "{v}");
    };
    for scope in ["openid", "openid read", "read email", "profile", "phone"] {
        let r = app
            .token_form(&[
                ("grant_type", "password"),
                ("client_id", &rp.id),
                ("client_secret", &rp.secret),
                ("username", EMAIL),
                ("password", PASSWORD),
                ("scope", scope),
            ])
            .await;
        invalid_scope(r).await;
        let r = app
            .token_form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &cc_id),
                ("client_secret", &cc_secret),
                ("scope", scope),
            ])
            .await;
        invalid_scope(r).await;
    }
    // The same grants without identity scopes work.
    let r = app
        .token_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &cc_id),
            ("client_secret", &cc_secret),
            ("scope", "read"),
        ])
        .await;
    assert_eq!(r.status(), 200);

    // A client registered for `read` gets `openid read` on the code flow, never `write`.
    let mut input = client_input("Reader", ClientKind::Confidential, "angelcam");
    input.scopes = Some(ScopeSet::READ);
    let reg = app.register(input).await;
    let reader = Rp {
        id: reg.client.client_id,
        secret: reg.secret.unwrap(),
        redirect: "https://app.example.com/callback".into(),
    };
    let mut b = Browser::new(&app);
    let t = tokens(&app, &mut b, &reader, "openid read", None, EMAIL).await;
    assert_eq!(t["scope"], "openid read");
    assert!(t["id_token"].is_string());
    let (_, challenge) = pkce();
    let r = authorize(&mut b, &params(&reader, "openid write", None, &challenge)).await;
    assert_eq!(
        error_of_redirect(&app, &r, &reader.redirect),
        "invalid_scope"
    );
    // The registration still limits the password grant to `read`.
    let r = app
        .token_form(&[
            ("grant_type", "password"),
            ("client_id", &reader.id),
            ("client_secret", &reader.secret),
            ("username", EMAIL),
            ("password", PASSWORD),
            ("scope", "openid"),
        ])
        .await;
    invalid_scope(r).await;
}

// ---------------------------------------------------------------------------------------------
// RP-initiated logout

/// A signed-in browser with an id_token of `rp` (scope openid, consent given).
async fn signed_in_with_id_token<'a>(
    app: &'a TestApp,
    rp: &Rp,
    email: &str,
) -> (Browser<'a>, String) {
    let mut b = Browser::new(app);
    let t = tokens(app, &mut b, rp, "openid", None, email).await;
    let id_token = s(&t["id_token"]).to_string();
    assert!(has_session(app, &mut b, rp).await);
    (b, id_token)
}

#[tokio::test]
async fn logout_with_a_hint_of_the_signed_in_user_ends_the_session_and_returns() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let rp = default_rp(&app).await;
    let (mut b, id_token) = signed_in_with_id_token(&app, &rp, EMAIL).await;
    let old_cookie = b.jar[SESSION].clone();

    let r = logout(
        &mut b,
        &[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", BYE),
            ("state", "s t&u"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), format!("{BYE}?state=s+t%26u"));
    let cleared = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&format!("{SESSION}=")))
        .expect("the session cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(!b.jar.contains_key(SESSION));
    assert!(!has_session(&app, &mut b, &rp).await);
    // Ended on the server too: the old cookie no longer works.
    let mut replay = Browser::new(&app);
    replay.jar.insert(SESSION.into(), old_cookie);
    assert!(!has_session(&app, &mut replay, &rp).await);

    // Without a session it still returns to the client; without a post_logout_redirect_uri
    // it shows a signed-out page.
    let r = logout(
        &mut b,
        &[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", BYE),
        ],
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), BYE);
    let r = logout(&mut b, &[("id_token_hint", &id_token)]).await;
    r.ok().has("You are signed out");
    assert!(r.headers.get("location").is_none());
    // POST works like GET.
    let (mut b2, id_token2) = signed_in_with_id_token(&app, &rp, EMAIL).await;
    let r = b2
        .post(
            "/oauth/logout",
            &[
                ("id_token_hint", id_token2.as_str()),
                ("post_logout_redirect_uri", BYE),
                ("state", "p"),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), format!("{BYE}?state=p"));
    assert!(!has_session(&app, &mut b2, &rp).await);
}

#[tokio::test]
async fn invalid_logout_requests_are_error_pages() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let rp = default_rp(&app).await;
    let other = register_rp(
        &app,
        &["https://other.example.net/cb"],
        OidcClient {
            post_logout_redirect_uris: vec!["https://other.example.net/bye".into()],
            ..Default::default()
        },
    )
    .await;
    let (mut b, id_token) = signed_in_with_id_token(&app, &rp, EMAIL).await;

    // An unregistered post_logout_redirect_uri (also another client's).
    for uri in [
        "https://evil.example/bye",
        "https://rp.example.com/bye/",
        "https://other.example.net/bye",
    ] {
        let r = logout(
            &mut b,
            &[
                ("id_token_hint", &id_token),
                ("post_logout_redirect_uri", uri),
            ],
        )
        .await;
        assert_logout_refused(&r, "not registered");
    }
    // A post_logout_redirect_uri without anything identifying the client.
    let r = logout(&mut b, &[("post_logout_redirect_uri", BYE), ("state", "x")]).await;
    assert_logout_refused(&r, "id_token_hint or client_id");
    // A tampered hint: another sub with the original signature; a cut signature; garbage.
    let parts: Vec<&str> = id_token.split('.').collect();
    let mut claims = seg_json(parts[1]);
    claims["sub"] = Value::String("A".repeat(43));
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    let cut = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        &parts[2][..parts[2].len() - 4]
    );
    // Signed by the access-token key (a cam2 JWT): not an id key.
    let mut cam2 = client_input("cam2", ClientKind::Confidential, "cam2");
    cam2.grants = vec![GrantType::ClientCredentials];
    let cam2 = app.register(cam2).await;
    let access_jwt = cam2_token(
        &app,
        &cam2.client.client_id,
        cam2.secret.as_deref().unwrap(),
    )
    .await;
    for hint in [forged.as_str(), cut.as_str(), "a.b.c", access_jwt.as_str()] {
        let r = logout(
            &mut b,
            &[("id_token_hint", hint), ("post_logout_redirect_uri", BYE)],
        )
        .await;
        assert_logout_refused(&r, "not a valid ID token");
    }
    // A client_id that is not the hint's audience; an unknown one.
    let r = logout(
        &mut b,
        &[
            ("id_token_hint", &id_token),
            ("client_id", &other.id),
            ("post_logout_redirect_uri", "https://other.example.net/bye"),
        ],
    )
    .await;
    assert_logout_refused(&r, "client_id does not match");
    let r = logout(
        &mut b,
        &[
            ("client_id", "no-such-client"),
            ("post_logout_redirect_uri", BYE),
        ],
    )
    .await;
    assert_logout_refused(&r, "Unknown client_id");
    // None of them ended the session.
    assert!(has_session(&app, &mut b, &rp).await);
    // The matching client_id with the hint is fine.
    let r = logout(
        &mut b,
        &[
            ("id_token_hint", &id_token),
            ("client_id", &rp.id),
            ("post_logout_redirect_uri", BYE),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), BYE);
}

#[tokio::test]
async fn logout_without_a_matching_hint_asks_first() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    app.create_user("other@example.com", PASSWORD).await;
    let rp = default_rp(&app).await;
    let (mut b, _) = signed_in_with_id_token(&app, &rp, EMAIL).await;
    let (_, others_token) = signed_in_with_id_token(&app, &rp, "other@example.com").await;

    let ask = [
        ("client_id", rp.id.as_str()),
        ("post_logout_redirect_uri", BYE),
        ("state", "s1"),
    ];
    let page = logout(&mut b, &ask).await;
    page.ok()
        .has("Sign out?")
        .has("Relying Party")
        .has(EMAIL)
        .has("name=\"decision\" value=\"logout\"");
    assert!(page.headers.get("location").is_none());
    let csp = page.header("content-security-policy");
    assert!(
        csp.contains("form-action 'self' https://rp.example.com"),
        "{csp}"
    );
    assert_eq!(hidden(&page.body, "post_logout_redirect_uri"), BYE);
    assert_eq!(hidden(&page.body, "state"), "s1");
    let csrf = hidden(&page.body, "csrf_token");

    // A hint of another user: asked too, nothing ended.
    let r = logout(
        &mut b,
        &[
            ("id_token_hint", others_token.as_str()),
            ("post_logout_redirect_uri", BYE),
        ],
    )
    .await;
    r.ok().has("Sign out?");
    assert!(has_session(&app, &mut b, &rp).await);

    let mut form: Vec<(&str, &str)> = ask.to_vec();
    form.push(("decision", "logout"));
    // A wrong CSRF token, or none: the page again, the session stays.
    for bad in [Some("forged-token"), None] {
        let mut f = form.clone();
        if let Some(t) = bad {
            f.push(("csrf_token", t));
        }
        let r = b.post("/oauth/logout", &f).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.headers.get("location").is_none());
        r.has("Sign out?");
        assert!(has_session(&app, &mut b, &rp).await);
    }
    // "Stay signed in".
    let mut f = ask.to_vec();
    f.push(("csrf_token", &csrf));
    f.push(("decision", "stay"));
    let r = b.post("/oauth/logout", &f).await;
    r.ok().has("still signed in");
    assert!(has_session(&app, &mut b, &rp).await);
    // The right token and decision=logout: ended, back to the client with state.
    let mut f = form.clone();
    f.push(("csrf_token", &csrf));
    let r = b.post("/oauth/logout", &f).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), format!("{BYE}?state=s1"));
    assert!(!b.jar.contains_key(SESSION));
    assert!(!has_session(&app, &mut b, &rp).await);
}

#[tokio::test]
async fn an_expired_hint_is_accepted() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let rp = default_rp(&app).await;
    let (mut b, id_token) = signed_in_with_id_token(&app, &rp, EMAIL).await;
    let exp = jwt_parts(&id_token).1["exp"].as_i64().unwrap();
    // Past exp, keeping the session alive (idle timeout 30 min) by using it.
    while app.clock_now() <= exp + 10 {
        app.clock.advance(1500);
        assert!(has_session(&app, &mut b, &rp).await);
    }
    let r = logout(
        &mut b,
        &[
            ("id_token_hint", &id_token),
            ("post_logout_redirect_uri", BYE),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), BYE);
    assert!(!has_session(&app, &mut b, &rp).await);
}

#[tokio::test]
async fn rotating_the_rs256_key_keeps_old_hints_and_access_tokens_working() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let rp = default_rp(&app).await;
    let mut cam2 = client_input("cam2", ClientKind::Confidential, "cam2");
    cam2.grants = vec![GrantType::ClientCredentials];
    let cam2 = app.register(cam2).await;
    let (cam2_id, cam2_secret) = (cam2.client.client_id, cam2.secret.unwrap());
    let access_before = cam2_token(&app, &cam2_id, &cam2_secret).await;
    let access_kid = app.core.store.active_signing_kid().await.unwrap().unwrap();

    let (mut b, old_id_token) = signed_in_with_id_token(&app, &rp, EMAIL).await;
    let old_kid = s(&jwt_parts(&old_id_token).0["kid"]).to_string();

    let out = camgate(&app, &["keys", "rotate", "--alg", "RS256", "--json"]);
    let new_kid = serde_json::from_str::<Value>(&stdout_ok(&out)).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_kid, old_kid);
    // The access key was not rotated.
    assert_eq!(
        app.core.store.active_signing_kid().await.unwrap().unwrap(),
        access_kid
    );

    // New id_tokens carry the new kid and verify; both keys are published.
    let t = tokens(&app, &mut b, &rp, "openid", None, EMAIL).await;
    let (header, _) = verify_id_token(&app, s(&t["id_token"])).await;
    assert_eq!(header["kid"], new_kid.as_str());
    let kids = jwks_kids(&jwks(&app).await);
    assert!(
        kids.contains(&old_kid) && kids.contains(&new_kid),
        "{kids:?}"
    );
    // The old id_token still verifies and is accepted as a hint.
    verify_id_token(&app, &old_id_token).await;
    // Access tokens from before and after the rotation still work.
    assert_eq!(cameras(&app, &access_before).await, 200);
    let access_after = cam2_token(&app, &cam2_id, &cam2_secret).await;
    assert_eq!(jwt_parts(&access_after).0["kid"], access_kid.as_str());
    assert_eq!(cameras(&app, &access_after).await, 200);

    let r = logout(
        &mut b,
        &[
            ("id_token_hint", &old_id_token),
            ("post_logout_redirect_uri", BYE),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(!has_session(&app, &mut b, &rp).await);
}

// ---------------------------------------------------------------------------------------------
// Registration: CLI and dashboard

#[tokio::test]
async fn cli_client_add_and_update_take_the_oidc_settings() {
    let app = spawn_app().await;
    let out = camgate(
        &app,
        &[
            "client",
            "add",
            "--name",
            "OIDC RP",
            "--redirect-uri",
            "https://rp.example.com/cb",
            "--redirect-uri",
            "https://rp.example.com/cb2",
            "--post-logout-redirect-uri",
            "https://rp.example.com/bye",
            "--post-logout-redirect-uri",
            "https://rp.example.com/bye2",
            "--subject-type",
            "pairwise",
            "--id-token-alg",
            "ES256",
            "--json",
        ],
    );
    let v: Value = serde_json::from_str(&stdout_ok(&out)).unwrap();
    assert_eq!(
        v["post_logout_redirect_uris"],
        serde_json::json!(["https://rp.example.com/bye", "https://rp.example.com/bye2"])
    );
    assert_eq!(v["subject_type"], "pairwise");
    assert_eq!(v["id_token_alg"], "ES256");
    let id = s(&v["client_id"]).to_string();
    let stored = app
        .core
        .store
        .client_by_client_id(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.oidc.subject_type, SubjectType::Pairwise);
    assert_eq!(stored.oidc.id_token_alg, IdTokenAlg(JwtAlg::Es256));
    assert_eq!(stored.oidc.post_logout_redirect_uris.len(), 2);

    // A default registration: RS256, public.
    let out = camgate(
        &app,
        &[
            "client",
            "add",
            "--name",
            "Plain",
            "--redirect-uri",
            CB,
            "--json",
        ],
    );
    let v: Value = serde_json::from_str(&stdout_ok(&out)).unwrap();
    assert_eq!(v["subject_type"], "public");
    assert_eq!(v["id_token_alg"], "RS256");
    assert_eq!(v["post_logout_redirect_uris"], serde_json::json!([]));

    // Pairwise with redirect URIs on two hosts: no sector, refused clearly.
    let out = camgate(
        &app,
        &[
            "client",
            "add",
            "--name",
            "Two hosts",
            "--redirect-uri",
            "https://a.example.com/cb",
            "--redirect-uri",
            "https://b.example.com/cb",
            "--subject-type",
            "pairwise",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sector"), "{err}");
    // …unless a sector identifier is given.
    let out = camgate(
        &app,
        &[
            "client",
            "add",
            "--name",
            "Two hosts",
            "--redirect-uri",
            "https://a.example.com/cb",
            "--redirect-uri",
            "https://b.example.com/cb",
            "--subject-type",
            "pairwise",
            "--sector-identifier",
            "example.com",
            "--json",
        ],
    );
    let v: Value = serde_json::from_str(&stdout_ok(&out)).unwrap();
    assert_eq!(v["subject_type"], "pairwise");
    // Bad values fail with a message naming the flag.
    for (flag, value) in [
        ("--id-token-alg", "HS256"),
        ("--id-token-alg", "none"),
        ("--subject-type", "private"),
    ] {
        let out = camgate(
            &app,
            &[
                "client",
                "add",
                "--name",
                "Bad",
                "--redirect-uri",
                CB,
                flag,
                value,
            ],
        );
        assert!(!out.status.success(), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{err}");
    }
    // An unregistrable post-logout URI.
    let out = camgate(
        &app,
        &[
            "client",
            "add",
            "--name",
            "Bad",
            "--redirect-uri",
            CB,
            "--post-logout-redirect-uri",
            "ftp://x.example/bye",
        ],
    );
    assert!(!out.status.success());

    // client update changes only the flags given.
    let out = camgate(
        &app,
        &[
            "client",
            "update",
            "--client-id",
            &id,
            "--id-token-alg",
            "EdDSA",
        ],
    );
    stdout_ok(&out);
    let c = app
        .core
        .store
        .client_by_client_id(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.oidc.id_token_alg, IdTokenAlg(JwtAlg::EdDsa));
    assert_eq!(c.oidc.subject_type, SubjectType::Pairwise);
    assert_eq!(
        c.oidc.post_logout_redirect_uris,
        stored.oidc.post_logout_redirect_uris
    );
    let out = camgate(
        &app,
        &[
            "client",
            "update",
            "--client-id",
            &id,
            "--clear-post-logout-redirect-uris",
            "--post-logout-redirect-uri",
            "https://rp.example.com/new-bye",
            "--subject-type",
            "public",
        ],
    );
    stdout_ok(&out);
    let c = app
        .core
        .store
        .client_by_client_id(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.oidc.post_logout_redirect_uris,
        vec!["https://rp.example.com/new-bye".to_string()]
    );
    assert_eq!(c.oidc.subject_type, SubjectType::Public);
    assert_eq!(c.oidc.id_token_alg, IdTokenAlg(JwtAlg::EdDsa));
    // Bad values and unknown clients fail and change nothing.
    let out = camgate(
        &app,
        &[
            "client",
            "update",
            "--client-id",
            &id,
            "--id-token-alg",
            "RS512",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--id-token-alg"));
    let out = camgate(
        &app,
        &[
            "client",
            "update",
            "--client-id",
            "nope",
            "--id-token-alg",
            "RS256",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    assert_eq!(
        app.core
            .store
            .client_by_client_id(&id)
            .await
            .unwrap()
            .unwrap()
            .oidc
            .id_token_alg,
        IdTokenAlg(JwtAlg::EdDsa)
    );
    // The updated client's id_tokens are EdDSA.
    app.create_user(EMAIL, PASSWORD).await;
    let secret_rp = {
        let mut input = client_input("EdDSA RP", ClientKind::Confidential, "angelcam");
        input.redirect_uris = vec!["https://rp.example.com/cb".into()];
        input.oidc = c.oidc.clone();
        let r = app.register(input).await;
        Rp {
            id: r.client.client_id,
            secret: r.secret.unwrap(),
            redirect: "https://rp.example.com/cb".into(),
        }
    };
    let mut b = Browser::new(&app);
    let t = tokens(&app, &mut b, &secret_rp, "openid", None, EMAIL).await;
    assert_eq!(jwt_parts(s(&t["id_token"])).0["alg"], "EdDSA");
}

#[tokio::test]
async fn the_dashboard_stores_an_apps_oidc_settings() {
    let app = spawn_app().await;
    app.create_user("dev@example.com", PASSWORD).await;
    let mut b = Browser::new(&app);
    let r = b.sign_in("dev@example.com", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);

    b.get("/dashboard/apps/new")
        .await
        .ok()
        .has("name=\"post_logout_redirect_uris\"")
        .has("name=\"subject_type\"")
        .has("name=\"id_token_alg\"");
    let base = [
        ("name", "OIDC App"),
        ("kind", "confidential"),
        ("redirect_uris", CB),
        ("grants", "authorization_code"),
        ("grants", "refresh_token"),
        ("scopes", "read"),
        ("profile", "angelcam"),
    ];
    let mut form = base.to_vec();
    form.extend([
        (
            "post_logout_redirect_uris",
            "https://rp.example.com/bye\nhttps://rp.example.com/bye2\n",
        ),
        ("subject_type", "pairwise"),
        ("id_token_alg", "ES256"),
    ]);
    let r = b.post_csrf("/dashboard/apps/new", &form).await;
    r.ok().has("is ready");
    let apps = app
        .core
        .my_apps(
            app.core
                .user_by_email("dev@example.com")
                .await
                .unwrap()
                .unwrap()
                .id,
        )
        .await
        .unwrap();
    assert_eq!(apps.len(), 1);
    let c = &apps[0];
    assert_eq!(
        c.oidc,
        OidcClient {
            post_logout_redirect_uris: vec![
                "https://rp.example.com/bye".into(),
                "https://rp.example.com/bye2".into()
            ],
            subject_type: SubjectType::Pairwise,
            sector_identifier: None,
            id_token_alg: IdTokenAlg(JwtAlg::Es256),
        }
    );
    let id = c.client_id.clone();

    // The edit form shows them; saving other values stores those.
    let path = format!("/dashboard/apps/{id}/edit");
    b.get(&path)
        .await
        .ok()
        .has("https://rp.example.com/bye2")
        .has("<option value=\"pairwise\" selected>")
        .has("<option value=\"ES256\" selected>");
    let mut form = base.to_vec();
    form.retain(|(k, _)| *k != "kind");
    form.extend([
        (
            "post_logout_redirect_uris",
            "https://rp.example.com/signed-out",
        ),
        ("subject_type", "public"),
        ("id_token_alg", "EdDSA"),
    ]);
    let r = b.post_csrf(&path, &form).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let c = app
        .core
        .store
        .client_by_client_id(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.oidc.post_logout_redirect_uris,
        vec!["https://rp.example.com/signed-out".to_string()]
    );
    assert_eq!(c.oidc.subject_type, SubjectType::Public);
    assert_eq!(c.oidc.id_token_alg, IdTokenAlg(JwtAlg::EdDsa));

    // Invalid settings: the error beside its field, nothing stored.
    let mut two_hosts = base.to_vec();
    two_hosts.retain(|(k, _)| *k != "kind" && *k != "redirect_uris");
    two_hosts.extend([
        (
            "redirect_uris",
            "https://a.example.com/cb\nhttps://b.example.com/cb",
        ),
        ("subject_type", "pairwise"),
        ("id_token_alg", "RS256"),
    ]);
    let r = b.post_csrf(&path, &two_hosts).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.field_error("sector").contains("sector"), "{}", r.body);
    let mut bad_uri = base.to_vec();
    bad_uri.retain(|(k, _)| *k != "kind");
    bad_uri.extend([
        ("post_logout_redirect_uris", "ftp://x.example/bye"),
        ("subject_type", "public"),
        ("id_token_alg", "RS256"),
    ]);
    let r = b.post_csrf(&path, &bad_uri).await;
    assert_eq!(r.status, 400, "{}", r.body);
    r.field_error("post_logout");
    r.has("ftp://x.example/bye");
    let mut new_bad = base.to_vec();
    new_bad.extend([
        (
            "post_logout_redirect_uris",
            "https://rp.example.com/bye#frag",
        ),
        ("subject_type", "public"),
        ("id_token_alg", "RS256"),
    ]);
    let r = b.post_csrf("/dashboard/apps/new", &new_bad).await;
    assert_eq!(r.status, 400, "{}", r.body);
    r.field_error("post_logout");
    let c2 = app
        .core
        .store
        .client_by_client_id(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c2.oidc, c.oidc);
    assert_eq!(c2.redirect_uris, vec![CB.to_string()]);
}

#[tokio::test]
async fn a_client_registered_with_identity_scopes_still_gets_them_only_by_code() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    // Registration keeps the camera permissions only.
    let mut input = client_input("Legacy", ClientKind::Confidential, "angelcam");
    input.grants = vec![GrantType::Password];
    input.scopes = Some(ScopeSet::parse("openid email read").unwrap());
    let reg = app.register(input).await;
    assert_eq!(reg.client.scopes, ScopeSet::READ);
    let (id, secret) = (reg.client.client_id, reg.secret.unwrap());
    // No scope asked: the registered camera scope, no identity scope.
    let r = app
        .token_form(&[
            ("grant_type", "password"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("username", EMAIL),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["scope"], "read");
    assert!(t.get("id_token").is_none());
    // And userinfo refuses that token.
    let r = app
        .get_bearer("/oauth/userinfo", s(&t["access_token"]))
        .await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn consent_cannot_be_opened_directly_to_skip_a_fresh_sign_in() {
    let app = spawn_app().await;
    app.create_user(EMAIL, PASSWORD).await;
    let rp = default_rp(&app).await;
    let mut b = Browser::new(&app);
    tokens(&app, &mut b, &rp, "openid", None, EMAIL).await;
    app.clock.advance(120);
    for extra in [("max_age", "60"), ("prompt", "login")] {
        app.clock.advance(120);
        let (_, challenge) = pkce();
        let mut p = params(&rp, "openid", None, &challenge);
        p.push(extra);
        let r = authorize(&mut b, &p).await;
        assert_eq!(r.status, 303);
        let login = r.location();
        let rid = login.trim_start_matches("/login?request_id=").to_string();
        // The live but old session goes straight to /consent: sent to sign in, no code.
        let r = b.get(&format!("/consent?request_id={rid}")).await;
        assert_eq!(r.status, 303, "{extra:?}: {}", r.body);
        assert_eq!(r.location(), login, "{extra:?}");
        // A forged decision is refused the same way.
        let csrf = b.csrf().await;
        let r = b
            .post(
                "/consent",
                &[
                    ("csrf_token", csrf.as_str()),
                    ("request_id", rid.as_str()),
                    ("decision", "approve"),
                ],
            )
            .await;
        assert_eq!(r.status, 303, "{extra:?}");
        assert_eq!(r.location(), login, "{extra:?}");
        // After signing in again, the same request completes.
        app.clock.advance(1);
        let r = b.sign_in_at(&login, EMAIL, PASSWORD).await;
        let r = b.get(&r.location()).await;
        code_of(&app, &r, CB);
    }
}
