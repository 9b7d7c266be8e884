//! Black-box tests of two-factor sign-in with TOTP (RFC 6238): enrolment on the dashboard and
//! by the CLI, the second sign-in step (`POST /login/mfa` with the sealed `__Host-camgate_mfa`
//! cookie), replay and drift, recovery codes, the per-account throttle, `amr`/`acr` in
//! id_tokens, `prompt=login`, the password grant's refusal and its per-client exception,
//! turning it off (user and operator), `require_mfa_for_admins`, and the keys at rest under
//! `data_key_file`. Codes are computed with `camgate_core::mfa::totp_code` from the base32 key
//! the server shows, at the server's (manual) clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use base64::Engine;
use camgate_core::authorize::s256_challenge;
use camgate_core::mfa::{totp_code, TOTP_STEP_SECS};
use camgate_core::model::{ClientKind, User};
use camgate_core::users::UserInput;
use camgate_server::config::{Config, FileConfig};
use serde_json::Value;

use crate::common::session::*;
use crate::common::*;

/// The pending sign-in cookie between the password and the code.
const MFA: &str = "__Host-camgate_mfa";
const CB: &str = "https://app.example.com/callback";

// ---- helpers

/// RFC 4648 base32 (no padding needed), as authenticator apps read the key.
fn base32_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {s:?}"),
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn base32_decoder_matches_rfc_4648() {
    // RFC 4648 §10 test vectors.
    assert_eq!(base32_decode("MZXW6YTBOI======"), b"foobar");
    assert_eq!(base32_decode("MZXW6YQ"), b"foob");
    assert_eq!(
        base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
        b"12345678901234567890"
    );
}

/// The server's current RFC 6238 time step.
fn step_now(app: &TestApp) -> i64 {
    app.clock_now() / TOTP_STEP_SECS
}

/// The code of the current step plus `offset` steps.
fn code(app: &TestApp, key: &[u8], offset: i64) -> String {
    totp_code(key, step_now(app) + offset).unwrap()
}

/// A well-formed code that no step within the drift window produces.
fn wrong_code(app: &TestApp, key: &[u8]) -> String {
    let valid: Vec<String> = (-1..=1).map(|o| code(app, key, o)).collect();
    (0..)
        .map(|n: u32| format!("{:06}", (n * 7919 + 123_457) % 1_000_000))
        .find(|c| !valid.contains(c))
        .unwrap()
}

/// A user's authenticator as the test holds it.
struct Totp {
    key: Vec<u8>,
    recovery: Vec<String>,
}

/// Moves the clock to the start of the next time step.
fn next_step(app: &TestApp) {
    app.clock
        .advance(TOTP_STEP_SECS - app.clock_now().rem_euclid(TOTP_STEP_SECS));
}

/// Turns on TOTP for `user` the way the CLI does (enrol and confirm at once, at the server's
/// clock), then moves the clock to the start of the next step (the confirming step is used
/// up; from a step's start, tests can move within it).
async fn enrol(app: &TestApp, user: &User) -> Totp {
    let (e, recovery) = app.core.enable_totp_now(user).await.unwrap();
    next_step(app);
    Totp {
        key: base32_decode(&e.secret_base32),
        recovery,
    }
}

/// Moves the clock past the last step the user's authenticator accepted (the CLI confirms at
/// the wall clock, which may be ahead of the test's manual clock).
async fn past_last_step(app: &TestApp, user: &User) {
    let last = app
        .core
        .store
        .totp(user.id)
        .await
        .unwrap()
        .unwrap()
        .last_step
        .unwrap();
    while step_now(app) <= last {
        app.clock.advance(TOTP_STEP_SECS);
    }
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

/// Audit events of `kind` so far.
async fn audited(app: &TestApp, kind: &str) -> Vec<camgate_core::model::AuditRecord> {
    app.core
        .store
        .recent_audit(10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

fn sets_session(r: &Resp) -> bool {
    r.set_cookies()
        .iter()
        .any(|c| c.starts_with(&format!("{SESSION}=")) && !c.contains("Max-Age=0"))
}

/// Asserts that `r` is the second-factor form, and that no session started.
#[track_caller]
fn assert_code_form(r: &Resp) {
    assert_eq!(r.status, 200, "{}", r.body);
    r.has("action=\"/login/mfa\"")
        .has("name=\"code\"")
        .has("autocomplete=\"one-time-code\"");
    assert!(!sets_session(r), "{:?}", r.set_cookies());
}

/// Asserts the code form again with its error, and no session.
#[track_caller]
fn assert_code_refused(r: &Resp) {
    assert_code_form(r);
    r.has("id=\"mfa-error\"").has("That code is not valid");
}

/// Answers the second-factor form shown in `form` with `code` (its hidden fields kept).
async fn give_code(b: &mut Browser<'_>, form: &Resp, code: &str) -> Resp {
    let csrf = hidden(&form.body, "csrf_token");
    let mut f = vec![("csrf_token", csrf.as_str()), ("code", code)];
    let rid = hidden_opt(&form.body, "request_id");
    if let Some(r) = &rid {
        f.push(("request_id", r.as_str()));
    }
    let next = hidden_opt(&form.body, "next");
    if let Some(n) = &next {
        f.push(("next", n.as_str()));
    }
    b.post("/login/mfa", &f).await
}

/// The password step; asserts the code form comes next.
async fn password_step(b: &mut Browser<'_>, path: &str, email: &str) -> Resp {
    let r = b.sign_in_at(path, email, PASSWORD).await;
    assert_code_form(&r);
    assert!(b.jar.contains_key(MFA), "no pending sign-in cookie");
    r
}

/// Both steps at `/login`; asserts the session started.
async fn sign_in_2fa(b: &mut Browser<'_>, email: &str, code: &str) -> Resp {
    let form = password_step(b, "/login", email).await;
    let r = give_code(b, &form, code).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/dashboard/");
    assert!(b.jar.contains_key(SESSION));
    r
}

fn has_session(b: &Browser<'_>) -> bool {
    b.jar.contains_key(SESSION)
}

/// The amr the server recorded for this browser's session.
async fn session_amr(b: &Browser<'_>) -> String {
    let id = b.jar.get(SESSION).expect("no session cookie");
    b.app.core.session(id).await.unwrap().unwrap().amr
}

async fn authorize(b: &mut Browser<'_>, params: &[(&str, &str)]) -> Resp {
    b.get(&format!("/oauth/authorize/?{}", encode(params)))
        .await
}

/// A user created with `is_admin`.
async fn admin(app: &TestApp, email: &str) -> User {
    app.core
        .create_user(UserInput {
            email: email.into(),
            password: PASSWORD.into(),
            first_name: "Ada".into(),
            last_name: "Admin".into(),
            phone: String::new(),
            is_admin: true,
            email_verified: false,
        })
        .await
        .unwrap()
}

/// The payload of a JWT (signatures are checked by the OIDC suite).
fn jwt_payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A confidential client allowed the code flow; (client_id, secret).
async fn oidc_client(app: &TestApp) -> (String, String) {
    let mut input = client_input("Viewer", ClientKind::Confidential, "angelcam");
    input.redirect_uris = vec![CB.into()];
    let r = app.register(input).await;
    (r.client.client_id, r.secret.unwrap())
}

/// From the answer after the sign-in (`/consent?…`) to the code at the callback: approves
/// when the consent screen is shown.
async fn consent_to_code(b: &mut Browser<'_>, after_sign_in: &Resp) -> String {
    assert_eq!(after_sign_in.status, 303, "{}", after_sign_in.body);
    let loc = after_sign_in.location();
    assert!(loc.starts_with("/consent?request_id="), "{loc}");
    let mut r = b.get(&loc).await;
    if r.status == 200 {
        r = b.decide(&r, "approve").await;
    }
    assert_eq!(r.status, 303, "{}", r.body);
    let loc = r.location();
    assert!(loc.starts_with(CB), "{loc}");
    query(&loc)["code"].clone()
}

/// Exchanges a code; returns the id_token's claims.
async fn id_token_claims(
    app: &TestApp,
    client: &(String, String),
    code: &str,
    verifier: &str,
) -> Value {
    let v = exchange(app, client, code, verifier).await;
    jwt_payload(v["id_token"].as_str().expect("no id_token"))
}

/// Exchanges a code; returns the token response.
async fn exchange(app: &TestApp, client: &(String, String), code: &str, verifier: &str) -> Value {
    let r = app
        .token_form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client.0),
            ("client_secret", &client.1),
            ("code", code),
            ("redirect_uri", CB),
            ("code_verifier", verifier),
        ])
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn authorize_params<'a>(
    client_id: &'a str,
    challenge: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CB),
        ("scope", "openid read"),
        ("state", "st"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    p.extend_from_slice(extra);
    p
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-mfa-tests";

// ---- enrolment

#[tokio::test]
async fn enrolment_on_the_dashboard_shows_key_and_qr_then_ten_recovery_codes() {
    let app = spawn_app().await;
    let user = app.create_user("user@example.com", PASSWORD).await;
    let mut b = Browser::new(&app);
    let r = b.sign_in("user@example.com", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(session_amr(&b).await, "pwd");

    b.get("/dashboard/account/two-factor/")
        .await
        .ok()
        .has("id=\"two-factor-off\"")
        .has("action=\"/dashboard/account/two-factor/setup\"");

    // A setup form without the session's CSRF token does nothing.
    let r = b
        .post(
            "/dashboard/account/two-factor/setup",
            &[("csrf_token", "x")],
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(app.core.store.totp(user.id).await.unwrap(), None);

    let r = b
        .post_csrf("/dashboard/account/two-factor/setup", &[])
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.location().starts_with("/dashboard/account/two-factor/"));
    let page = b.get("/dashboard/account/two-factor/").await;
    page.ok()
        .has("id=\"two-factor-setup\"")
        .lacks("two-factor-on");
    let secret = between(&page.body, "<code id=\"totp-secret\">", "</code>");
    let key = base32_decode(&secret);
    assert_eq!(key.len(), 20, "a 160-bit key (RFC 4226 §4)");
    // The QR code: an SVG as a data: URI (the CSP allows img-src data:).
    let qr = between(&page.body, "<img src=\"data:image/svg+xml;base64,", "\"");
    let svg = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&qr)
            .unwrap(),
    )
    .unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    let uri = format!("otpauth{}", between(&page.body, "<a href=\"otpauth", "\""));
    page.has(&format!("href=\"{uri}\" id=\"totp-uri\""));
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(uri.contains("issuer=camgate"), "{uri}");
    // Reloading shows the same pending key.
    let again = b.get("/dashboard/account/two-factor/").await;
    assert_eq!(
        between(&again.body, "<code id=\"totp-secret\">", "</code>"),
        secret
    );

    // A wrong code is refused beside the field; the key stays pending.
    let r = b
        .post_csrf(
            "/dashboard/account/two-factor/confirm",
            &[("code", &wrong_code(&app, &key))],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.field_error("code").contains("not valid"), "{}", r.body);
    r.has("id=\"two-factor-setup\"");
    assert!(!app.core.has_totp(user.id).await.unwrap());
    assert!(audited(&app, "mfa_enabled").await.is_empty());

    // The right code turns it on and shows ten recovery codes, once.
    let r = b
        .post_csrf(
            "/dashboard/account/two-factor/confirm",
            &[("code", &code(&app, &key, 0))],
        )
        .await;
    r.ok().has("id=\"recovery-codes\"");
    let codes: Vec<String> = r
        .body
        .split("<li class=\"recovery-code\">")
        .skip(1)
        .map(|s| s.split('<').next().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{}", r.body);
    let mut distinct = codes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);
    for c in &codes {
        assert_eq!(c.len(), 11, "{c}");
        assert_eq!(c.as_bytes()[5], b'-', "{c}");
    }
    assert!(app.core.has_totp(user.id).await.unwrap());
    let on = b.get("/dashboard/account/two-factor/").await;
    on.ok()
        .has("id=\"two-factor-on\"")
        .has("10 of your recovery codes are unused")
        .lacks(&secret)
        .lacks("recovery-code\"");
    let ev = audited(&app, "mfa_enabled").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].user_id, Some(user.id));

    // A second set-up is refused while it is on; the key is unchanged.
    let sealed = app.core.store.totp(user.id).await.unwrap().unwrap();
    let r = b
        .post_csrf("/dashboard/account/two-factor/setup", &[])
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(app.core.store.totp(user.id).await.unwrap().unwrap(), sealed);

    // The next sign-in asks for a code from this key (the confirming step is used up).
    app.clock.advance(TOTP_STEP_SECS);
    let mut b2 = Browser::new(&app);
    sign_in_2fa(&mut b2, "user@example.com", &code(&app, &key, 0)).await;
    // And a recovery code shown above works too.
    let mut b3 = Browser::new(&app);
    let form = password_step(&mut b3, "/login", "user@example.com").await;
    let r = give_code(&mut b3, &form, &codes[0]).await;
    assert_eq!(r.status, 303, "{}", r.body);
}

/// The text between `start` and the next `end` in `body`.
#[track_caller]
fn between(body: &str, start: &str, end: &str) -> String {
    let i = body
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in {body}"))
        + start.len();
    let j = body[i..].find(end).unwrap();
    body[i..i + j].to_string()
}

#[tokio::test]
async fn enrolment_by_the_cli_prints_key_uri_and_recovery_codes_as_json() {
    let app = spawn_app().await;
    let user = app.create_user("cli@example.com", PASSWORD).await;
    let out = camgate(
        &app,
        &[
            "user",
            "totp",
            "enable",
            "--email",
            "cli@example.com",
            "--json",
        ],
    );
    let v: Value = serde_json::from_str(&stdout_ok(&out)).unwrap();
    let secret = v["secret"].as_str().unwrap();
    let key = base32_decode(secret);
    assert_eq!(key.len(), 20);
    let uri = v["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert!(uri.contains("issuer=camgate"), "{uri}");
    let codes: Vec<String> = v["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    assert!(app.core.has_totp(user.id).await.unwrap());
    assert_eq!(app.core.recovery_codes_left(user.id).await.unwrap(), 10);

    // Once on, enabling again fails and leaves the key alone.
    let out = camgate(
        &app,
        &[
            "user",
            "totp",
            "enable",
            "--email",
            "cli@example.com",
            "--json",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already on"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An unknown user is named.
    let out = camgate(
        &app,
        &["user", "totp", "enable", "--email", "nobody@example.com"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nobody@example.com"));

    // The printed key is the one the server checks.
    past_last_step(&app, &user).await;
    let mut b = Browser::new(&app);
    sign_in_2fa(&mut b, "cli@example.com", &code(&app, &key, 0)).await;
    assert_eq!(session_amr(&b).await, "pwd otp");
    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "cli@example.com").await;
    let r = give_code(&mut b, &form, &codes[9]).await;
    assert_eq!(r.status, 303, "{}", r.body);
}

// ---- the second sign-in step

#[tokio::test]
async fn login_asks_for_the_code_before_any_session_starts() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com", PASSWORD).await;
    let t = enrol(&app, &user).await;
    let mut b = Browser::new(&app);
    let form = b.sign_in("u@example.com", PASSWORD).await;
    assert_code_form(&form);
    form.has("u@example.com").lacks("id=\"mfa-error\"");
    let pending = form
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with(&format!("{MFA}=")))
        .expect("no pending sign-in cookie");
    for attr in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=300",
    ] {
        assert!(pending.contains(attr), "{pending}");
    }
    assert!(!has_session(&b));
    // Without the code, the dashboard is still closed.
    let r = b.get("/dashboard/").await;
    assert_eq!(r.status, 303);
    assert!(r.location().starts_with("/login"), "{}", r.location());
    // GET /login/mfa has nothing to show.
    let r = b.get("/login/mfa").await;
    assert_eq!((r.status, r.location().as_str()), (303, "/login"));

    // A wrong code: the form again, with the error; no session.
    let r = give_code(&mut b, &form, &wrong_code(&app, &t.key)).await;
    assert_code_refused(&r);
    assert!(!has_session(&b));
    // Garbage is refused the same way.
    for bad in ["", "12345", "1234567", "abcdef", &"9".repeat(100)] {
        let r = give_code(&mut b, &form, bad).await;
        assert_code_refused(&r);
    }
    assert!(!has_session(&b));
    assert_eq!(audited(&app, "mfa_failed").await.len(), 6);

    // The right code (spaces are ignored): a session, the dashboard, both factors recorded.
    let c = code(&app, &t.key, 0);
    let spaced = format!("{} {}", &c[..3], &c[3..]);
    let r = give_code(&mut b, &form, &spaced).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/dashboard/");
    assert!(sets_session(&r));
    assert!(!b.jar.contains_key(MFA), "the pending cookie is cleared");
    assert_eq!(session_amr(&b).await, "pwd otp");
    b.get("/dashboard/").await.ok();

    // With `next`, the code step goes on where the dashboard sent the user.
    app.clock.advance(TOTP_STEP_SECS);
    let mut b = Browser::new(&app);
    let page = b.get("/login?next=/dashboard/tokens/").await;
    let csrf = hidden(&page.body, "csrf_token");
    assert_eq!(hidden(&page.body, "next"), "/dashboard/tokens/");
    let form = b
        .post(
            "/login",
            &[
                ("email", "u@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
                ("next", "/dashboard/tokens/"),
            ],
        )
        .await;
    assert_code_form(&form);
    assert_eq!(hidden(&form.body, "next"), "/dashboard/tokens/");
    let r = give_code(&mut b, &form, &code(&app, &t.key, 0)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/dashboard/tokens/");

    // A wrong password never reaches the code step.
    let mut b = Browser::new(&app);
    let r = b.sign_in("u@example.com", "wrong password").await;
    assert_eq!(r.status, 200);
    r.lacks("name=\"code\"")
        .has("The email address or password is incorrect.");
    assert!(!b.jar.contains_key(MFA));
}

#[tokio::test]
async fn a_code_is_never_accepted_twice_even_within_its_window() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com", PASSWORD).await;
    let t = enrol(&app, &user).await;
    let c = code(&app, &t.key, 0);
    let mut first = Browser::new(&app);
    sign_in_2fa(&mut first, "u@example.com", &c).await;

    // The same code in a second sign-in, with the clock unchanged (the code is still current).
    let mut second = Browser::new(&app);
    let form = password_step(&mut second, "/login", "u@example.com").await;
    let r = give_code(&mut second, &form, &c).await;
    assert_code_refused(&r);
    assert!(!has_session(&second));
    // Ten seconds later, still within its 30 s step: refused.
    app.clock.advance(10);
    assert_eq!(code(&app, &t.key, 0), c);
    let r = give_code(&mut second, &form, &c).await;
    assert_code_refused(&r);

    // The next step's code works.
    app.clock.advance(TOTP_STEP_SECS);
    let r = give_code(&mut second, &form, &code(&app, &t.key, 0)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(has_session(&second));

    // Two sign-ins racing with one fresh code: exactly one gets a session.
    app.clock.advance(TOTP_STEP_SECS);
    let c = code(&app, &t.key, 0);
    let mut x = Browser::new(&app);
    let mut y = Browser::new(&app);
    let fx = password_step(&mut x, "/login", "u@example.com").await;
    let fy = password_step(&mut y, "/login", "u@example.com").await;
    let (rx, ry) = tokio::join!(give_code(&mut x, &fx, &c), give_code(&mut y, &fy, &c));
    let won = [&rx, &ry].iter().filter(|r| r.status == 303).count();
    assert_eq!(won, 1, "{} {}", rx.status, ry.status);
    assert_eq!(
        [has_session(&x), has_session(&y)]
            .iter()
            .filter(|h| **h)
            .count(),
        1
    );
}

#[tokio::test]
async fn one_step_of_drift_either_way_and_no_more() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com", PASSWORD).await;
    let t = enrol(&app, &user).await;
    // One more step, so that the previous step is not the confirming one (used up).
    app.clock.advance(TOTP_STEP_SECS);
    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "u@example.com").await;
    // Two steps back, two steps ahead: refused.
    assert_code_refused(&give_code(&mut b, &form, &code(&app, &t.key, -2)).await);
    assert_code_refused(&give_code(&mut b, &form, &code(&app, &t.key, 2)).await);
    assert!(!has_session(&b));
    // The previous step's code (a slow phone clock): accepted.
    let r = give_code(&mut b, &form, &code(&app, &t.key, -1)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(has_session(&b));

    // The next step's code (a fast phone clock): accepted too.
    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "u@example.com").await;
    let r = give_code(&mut b, &form, &code(&app, &t.key, 1)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    // Then the current step's code is older than a step accepted: refused.
    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "u@example.com").await;
    assert_code_refused(&give_code(&mut b, &form, &code(&app, &t.key, 0)).await);
    assert!(!has_session(&b));
}

#[tokio::test]
async fn a_recovery_code_works_once() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com", PASSWORD).await;
    let t = enrol(&app, &user).await;
    assert_eq!(t.recovery.len(), 10);
    let rc = t.recovery[3].clone();

    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "u@example.com").await;
    // Typed in capitals without the dash: the same code.
    let typed = rc.to_uppercase().replace('-', " ");
    let r = give_code(&mut b, &form, &typed).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/dashboard/");
    assert_eq!(session_amr(&b).await, "pwd otp");
    assert_eq!(app.core.recovery_codes_left(user.id).await.unwrap(), 9);
    let ev = audited(&app, "mfa_recovery_code_used").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].user_id, Some(user.id));
    assert!(!ev[0].detail.contains(&rc), "the code is not audited");

    // The same code again: refused.
    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "u@example.com").await;
    assert_code_refused(&give_code(&mut b, &form, &rc).await);
    assert!(!has_session(&b));
    assert_eq!(app.core.recovery_codes_left(user.id).await.unwrap(), 9);
    // Another user's recovery code is not this user's.
    let other = app.create_user("o@example.com", PASSWORD).await;
    let o = enrol(&app, &other).await;
    assert_code_refused(&give_code(&mut b, &form, &o.recovery[0]).await);
    // Another of the user's codes still works.
    let r = give_code(&mut b, &form, &t.recovery[4]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(app.core.recovery_codes_left(user.id).await.unwrap(), 8);
    assert_eq!(app.core.recovery_codes_left(other.id).await.unwrap(), 10);
}

#[tokio::test]
async fn wrong_codes_are_throttled_per_account_until_the_window_passes() {
    let app = spawn_app_with(|c| {
        c.mfa.max_failures = 3;
        c.mfa.window_secs = 120;
    })
    .await;
    let user = app.create_user("u@example.com", PASSWORD).await;
    let other = app.create_user("o@example.com", PASSWORD).await;
    let t = enrol(&app, &user).await;
    let o = enrol(&app, &other).await;

    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "u@example.com").await;
    for _ in 0..3 {
        assert_code_refused(&give_code(&mut b, &form, &wrong_code(&app, &t.key)).await);
    }
    // Now even the right code is refused: 429 with Retry-After, and no session.
    let right = code(&app, &t.key, 0);
    let r = give_code(&mut b, &form, &right).await;
    assert_eq!(r.status, 429, "{}", r.body);
    let retry: u64 = r.header("retry-after").parse().unwrap();
    assert!((1..=120).contains(&retry), "{retry}");
    r.has("Too many wrong codes").has("name=\"code\"");
    assert!(!sets_session(&r));
    assert!(!has_session(&b));
    // A fresh password step does not reset it.
    let mut b2 = Browser::new(&app);
    let form2 = password_step(&mut b2, "/login", "u@example.com").await;
    let r = give_code(&mut b2, &form2, &right).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(!has_session(&b2));
    // Another account is not affected.
    let mut ob = Browser::new(&app);
    sign_in_2fa(&mut ob, "o@example.com", &code(&app, &o.key, 0)).await;
    // Recovery codes are throttled too.
    let r = give_code(&mut b, &form, &t.recovery[0]).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(app.core.recovery_codes_left(user.id).await.unwrap(), 10);

    // After the window the right code (and the pending sign-in, within its five minutes) works.
    app.clock.advance(retry as i64);
    let r = give_code(&mut b, &form, &code(&app, &t.key, 0)).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(has_session(&b));
}

#[tokio::test]
async fn a_tampered_or_expired_pending_cookie_goes_back_to_login() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com", PASSWORD).await;
    let t = enrol(&app, &user).await;

    // Tampered: one character of the sealed value changed.
    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "u@example.com").await;
    let v = b.jar.get(MFA).unwrap().clone();
    let mid = v.len() / 2;
    let flipped = if &v[mid..=mid] == "A" { "B" } else { "A" };
    b.jar.insert(
        MFA.into(),
        format!("{}{flipped}{}", &v[..mid], &v[mid + 1..]),
    );
    let r = give_code(&mut b, &form, &code(&app, &t.key, 0)).await;
    assert_eq!((r.status, r.location().as_str()), (303, "/login"));
    assert!(!has_session(&b));
    assert!(!b.jar.contains_key(MFA), "the bad cookie is cleared");

    // Missing altogether.
    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "u@example.com").await;
    b.jar.remove(MFA);
    let r = give_code(&mut b, &form, &code(&app, &t.key, 0)).await;
    assert_eq!((r.status, r.location().as_str()), (303, "/login"));
    assert!(!has_session(&b));

    // Made up by hand.
    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "u@example.com").await;
    b.jar
        .insert(MFA.into(), "eyJ1IjoxLCJlIjo5OTk5OTk5OTk5LCJwIjowfQ".into());
    let r = give_code(&mut b, &form, &code(&app, &t.key, 0)).await;
    assert_eq!((r.status, r.location().as_str()), (303, "/login"));
    assert!(!has_session(&b));

    // Expired: more than five minutes after the password.
    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "u@example.com").await;
    app.clock.advance(301);
    let r = give_code(&mut b, &form, &code(&app, &t.key, 0)).await;
    assert_eq!((r.status, r.location().as_str()), (303, "/login"));
    assert!(!has_session(&b));

    // None of these used the code: it still signs in (within five minutes).
    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "u@example.com").await;
    app.clock.advance(299);
    let c = code(&app, &t.key, 0);
    let r = give_code(&mut b, &form, &c).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/dashboard/");

    // A pending sign-in of a user disabled meanwhile does not go on.
    app.clock.advance(TOTP_STEP_SECS);
    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "u@example.com").await;
    app.core.set_user_disabled(user.id, true).await.unwrap();
    let r = give_code(&mut b, &form, &code(&app, &t.key, 0)).await;
    assert_eq!((r.status, r.location().as_str()), (303, "/login"));
    assert!(!has_session(&b));
}

#[tokio::test]
async fn a_csrf_mismatch_on_the_code_form_starts_no_session() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com", PASSWORD).await;
    let t = enrol(&app, &user).await;
    let c = code(&app, &t.key, 0);

    // A wrong token in the form.
    let mut b = Browser::new(&app);
    password_step(&mut b, "/login", "u@example.com").await;
    let r = b
        .post(
            "/login/mfa",
            &[
                ("csrf_token", "cgl_not_the_token_of_this_form_000000"),
                ("code", &c),
            ],
        )
        .await;
    assert_eq!((r.status, r.location().as_str()), (303, "/login"));
    assert!(!has_session(&b));

    // No token at all.
    let mut b = Browser::new(&app);
    password_step(&mut b, "/login", "u@example.com").await;
    let r = b.post("/login/mfa", &[("code", &c)]).await;
    assert_eq!((r.status, r.location().as_str()), (303, "/login"));
    assert!(!has_session(&b));

    // The form's token without the login cookie it pairs with (a cross-site post).
    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "u@example.com").await;
    b.jar.remove("__Host-camgate_login");
    let r = give_code(&mut b, &form, &c).await;
    assert_eq!((r.status, r.location().as_str()), (303, "/login"));
    assert!(!has_session(&b));

    // Another browser's matching pair does not carry this browser's pending sign-in.
    let mut attacker = Browser::new(&app);
    let page = attacker.get("/login").await;
    let token = hidden(&page.body, "csrf_token");
    let r = attacker
        .post("/login/mfa", &[("csrf_token", &token), ("code", &c)])
        .await;
    assert_eq!((r.status, r.location().as_str()), (303, "/login"));
    assert!(!has_session(&attacker));

    // The refusals did not use the code up.
    let mut b = Browser::new(&app);
    sign_in_2fa(&mut b, "u@example.com", &c).await;
}

// ---- OpenID Connect

#[tokio::test]
async fn id_tokens_carry_amr_and_acr_of_the_sign_in() {
    let app = spawn_app().await;
    let user = app.create_user("otp@example.com", PASSWORD).await;
    app.create_user("pwd@example.com", PASSWORD).await;
    let t = enrol(&app, &user).await;
    let client = oidc_client(&app).await;
    let challenge = s256_challenge(VERIFIER);
    let params = authorize_params(&client.0, &challenge, &[]);

    // With TOTP: the login asks for the code, in the authorization request's context.
    let mut b = Browser::new(&app);
    let r = authorize(&mut b, &params).await;
    assert_eq!(r.status, 303);
    let login = r.location();
    assert!(login.starts_with("/login?request_id="), "{login}");
    let form = password_step(&mut b, &login, "otp@example.com").await;
    let rid = hidden(&form.body, "request_id");
    // The code's POST may end in a redirect to the client (a remembered consent): like the
    // login page, the form's CSP allows the client's origin in form-action (CSP3 checks it
    // on every redirect after a form submission; Chromium enforces it).
    let csp = form.header("content-security-policy");
    assert!(
        csp.contains("form-action 'self' https://app.example.com;"),
        "{csp}"
    );
    assert_eq!(query(&app.url(&login))["request_id"], rid);
    let r = give_code(&mut b, &form, &code(&app, &t.key, 0)).await;
    let auth_time = app.clock_now();
    let c = consent_to_code(&mut b, &r).await;
    let tokens = exchange(&app, &client, &c, VERIFIER).await;
    let claims = jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp"]), "{claims}");
    assert_eq!(claims["acr"], "urn:camgate:acr:mfa", "{claims}");
    assert_eq!(claims["auth_time"], auth_time);
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    // A refreshed id_token keeps the sign-in's factors (OIDC Core §12.2).
    app.clock.advance(60);
    let r = app
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client.0),
            ("client_secret", &client.1),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let refreshed = jwt_payload(v["id_token"].as_str().expect("no id_token on refresh"));
    assert_eq!(refreshed["amr"], serde_json::json!(["pwd", "otp"]));
    assert_eq!(refreshed["acr"], "urn:camgate:acr:mfa");
    assert_eq!(refreshed["auth_time"], auth_time);

    // A wrong code in the authorization request's context: the form again, with its
    // request_id; a bad pending cookie goes back to this request's login page.
    let mut b = Browser::new(&app);
    let r = authorize(&mut b, &params).await;
    let form = password_step(&mut b, &r.location(), "otp@example.com").await;
    let again = give_code(&mut b, &form, &wrong_code(&app, &t.key)).await;
    assert_code_refused(&again);
    let csp = again.header("content-security-policy");
    assert!(
        csp.contains("form-action 'self' https://app.example.com;"),
        "{csp}"
    );
    assert_eq!(
        hidden(&again.body, "request_id"),
        hidden(&form.body, "request_id")
    );
    b.jar.remove(MFA);
    let r = give_code(&mut b, &again, &code(&app, &t.key, 1)).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), r_login(&form));

    // Without TOTP: the password alone.
    let mut b = Browser::new(&app);
    let r = authorize(&mut b, &params).await;
    let r = b
        .sign_in_at(&r.location(), "pwd@example.com", PASSWORD)
        .await;
    assert!(!b.jar.contains_key(MFA));
    let c = consent_to_code(&mut b, &r).await;
    let claims = id_token_claims(&app, &client, &c, VERIFIER).await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]), "{claims}");
    assert_eq!(claims["acr"], "urn:camgate:acr:pwd", "{claims}");

    // Discovery lists both classes.
    let d: Value = app
        .http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let acrs = d["acr_values_supported"].as_array().unwrap();
    assert!(acrs.contains(&Value::from("urn:camgate:acr:mfa")), "{d}");
    assert!(acrs.contains(&Value::from("urn:camgate:acr:pwd")), "{d}");
}

/// The login page of the request whose code form this is.
fn r_login(form: &Resp) -> String {
    format!(
        "/login?{}",
        encode(&[("request_id", &hidden(&form.body, "request_id"))])
    )
}

#[tokio::test]
async fn prompt_login_asks_for_both_factors_again() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com", PASSWORD).await;
    let t = enrol(&app, &user).await;
    let client = oidc_client(&app).await;
    let challenge = s256_challenge(VERIFIER);

    let mut b = Browser::new(&app);
    let r = authorize(&mut b, &authorize_params(&client.0, &challenge, &[])).await;
    let form = password_step(&mut b, &r.location(), "u@example.com").await;
    let r = give_code(&mut b, &form, &code(&app, &t.key, 0)).await;
    let first_time = app.clock_now();
    let c = consent_to_code(&mut b, &r).await;
    let first = id_token_claims(&app, &client, &c, VERIFIER).await;
    assert_eq!(first["auth_time"], first_time);
    let old_session = b.jar.get(SESSION).unwrap().clone();

    // With the session, a plain request needs no sign-in at all.
    app.clock.advance(5);
    let r = authorize(&mut b, &authorize_params(&client.0, &challenge, &[])).await;
    assert_eq!(r.status, 302);
    assert!(r.location().starts_with(CB), "{}", r.location());

    // prompt=login: the password form despite the session, then the code form again.
    app.clock.advance(TOTP_STEP_SECS);
    let r = authorize(
        &mut b,
        &authorize_params(&client.0, &challenge, &[("prompt", "login")]),
    )
    .await;
    assert_eq!(r.status, 303);
    let login = r.location();
    assert!(login.starts_with("/login?request_id="), "{login}");
    let page = b.get(&login).await;
    page.ok().has("name=\"password\"");
    let form = password_step(&mut b, &login, "u@example.com").await;
    assert_eq!(b.jar.get(SESSION), Some(&old_session), "no new session yet");
    // The code used at the first sign-in is refused.
    assert_code_refused(
        &give_code(&mut b, &form, &totp_code(&t.key, first_time / 30).unwrap()).await,
    );
    // Timestamps are whole seconds: a sign-in counts as after the request only in a later
    // second (the safe side of a tie).
    app.clock.advance(1);
    let r = give_code(&mut b, &form, &code(&app, &t.key, 0)).await;
    let second_time = app.clock_now();
    assert!(sets_session(&r));
    assert_ne!(b.jar.get(SESSION), Some(&old_session), "a new session");
    assert_eq!(
        app.core.session(&old_session).await.unwrap().map(|s| s.amr),
        None,
        "the old session ended"
    );
    let c = consent_to_code(&mut b, &r).await;
    let second = id_token_claims(&app, &client, &c, VERIFIER).await;
    assert_eq!(second["amr"], serde_json::json!(["pwd", "otp"]), "{second}");
    assert_eq!(second["acr"], "urn:camgate:acr:mfa");
    assert_eq!(second["auth_time"], second_time);
    assert!(second_time > first_time);
}

// ---- the password grant

#[tokio::test]
async fn the_password_grant_refuses_totp_users_unless_the_client_allows_it() {
    let app = spawn_app().await;
    let user = app.create_user("otp@example.com", PASSWORD).await;
    app.create_user("pwd@example.com", PASSWORD).await;
    enrol(&app, &user).await;
    let plain = app.public_client("angelcam").await;

    let r = app
        .token_form(&[
            ("client_id", &plain),
            ("grant_type", "password"),
            ("username", "otp@example.com"),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_grant", "{v}");
    let d = v["error_description"].as_str().unwrap();
    assert!(d.contains("authorization code flow"), "{d}");
    assert!(v.get("access_token").is_none());
    // A wrong password is still the plain credentials error (no hint that 2FA is on).
    let r = app
        .token_form(&[
            ("client_id", &plain),
            ("grant_type", "password"),
            ("username", "otp@example.com"),
            ("password", "wrong"),
        ])
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_grant");
    assert!(!v["error_description"]
        .as_str()
        .unwrap()
        .contains("two-factor"));
    // Users without a second factor are not affected.
    app.password_token(&plain, "pwd@example.com", PASSWORD)
        .await;
    assert!(audited(&app, "password_without_mfa").await.is_empty());

    // A client registered for legacy devices (the CLI flag) gets tokens, audited.
    let out = camgate(
        &app,
        &[
            "client",
            "add",
            "--name",
            "Legacy DVR",
            "--public",
            "--grant",
            "password",
            "--grant",
            "refresh_token",
            "--allow-password-without-mfa",
            "--json",
        ],
    );
    let legacy: Value = serde_json::from_str(&stdout_ok(&out)).unwrap();
    let legacy_id = legacy["client_id"].as_str().unwrap();
    let t = app
        .password_token(legacy_id, "otp@example.com", PASSWORD)
        .await;
    assert!(t["access_token"].as_str().is_some());
    let ev = audited(&app, "password_without_mfa").await;
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].user_id, Some(user.id));
    assert_eq!(ev[0].client_id.as_deref(), Some(legacy_id));
    // A user without a second factor on that client: nothing to audit.
    app.password_token(legacy_id, "pwd@example.com", PASSWORD)
        .await;
    assert_eq!(audited(&app, "password_without_mfa").await.len(), 1);

    // The same through ClientInput.
    let mut input = client_input("Legacy NVR", ClientKind::Public, "angelcam");
    input.allow_password_without_mfa = true;
    let nvr = app.register(input).await.client.client_id;
    app.password_token(&nvr, "otp@example.com", PASSWORD).await;
    assert_eq!(audited(&app, "password_without_mfa").await.len(), 2);
}

// ---- turning it off

#[tokio::test]
async fn turning_it_off_on_the_dashboard_needs_the_password_and_a_current_code() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com", PASSWORD).await;
    let t = enrol(&app, &user).await;
    let mut b = Browser::new(&app);
    sign_in_2fa(&mut b, "u@example.com", &code(&app, &t.key, 0)).await;
    b.get("/dashboard/account/two-factor/")
        .await
        .ok()
        .has("id=\"two-factor-on\"")
        .has("action=\"/dashboard/account/two-factor/disable\"");
    app.clock.advance(TOTP_STEP_SECS);
    let c = code(&app, &t.key, 0);

    // A wrong password (with a right code).
    let r = b
        .post_csrf(
            "/dashboard/account/two-factor/disable",
            &[("password", "not my password"), ("code", &c)],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.field_error("password").contains("not correct"));
    assert!(app.core.has_totp(user.id).await.unwrap());
    // The right password with a wrong code, with the code used at sign-in, with none.
    for bad in [
        wrong_code(&app, &t.key),
        code(&app, &t.key, -1),
        String::new(),
    ] {
        let r = b
            .post_csrf(
                "/dashboard/account/two-factor/disable",
                &[("password", PASSWORD), ("code", &bad)],
            )
            .await;
        assert_eq!(r.status, 400, "{bad:?}: {}", r.body);
        assert!(r.field_error("code").contains("not valid"), "{}", r.body);
        assert!(app.core.has_totp(user.id).await.unwrap());
    }
    // Without the CSRF token: 403, nothing changes.
    let r = b
        .post(
            "/dashboard/account/two-factor/disable",
            &[("password", PASSWORD), ("code", &c)],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(app.core.has_totp(user.id).await.unwrap());

    // Both right: off, recovery codes gone, audited.
    let r = b
        .post_csrf(
            "/dashboard/account/two-factor/disable",
            &[("password", PASSWORD), ("code", &c)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    b.get("/dashboard/account/two-factor/")
        .await
        .ok()
        .has("id=\"two-factor-off\"");
    assert!(!app.core.has_totp(user.id).await.unwrap());
    assert_eq!(app.core.store.totp(user.id).await.unwrap(), None);
    assert_eq!(app.core.recovery_codes_left(user.id).await.unwrap(), 0);
    let ev = audited(&app, "mfa_disabled").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].user_id, Some(user.id));

    // The next login needs no code; old recovery codes mean nothing.
    let mut b = Browser::new(&app);
    let r = b.sign_in("u@example.com", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(session_amr(&b).await, "pwd");
}

/// The password check of the turn-off form is a password check like the others: wrong
/// passwords count towards the login throttle (a stolen session is no unthrottled password
/// oracle), and once it is used up even the right password is refused.
#[tokio::test]
async fn wrong_passwords_on_the_turn_off_form_count_towards_the_login_throttle() {
    let app = spawn_app_with(|c| c.authz.throttle.max_failures_per_account = 3).await;
    let user = app.create_user("u@example.com", PASSWORD).await;
    let t = enrol(&app, &user).await;
    let mut b = Browser::new(&app);
    sign_in_2fa(&mut b, "u@example.com", &code(&app, &t.key, 0)).await;
    app.clock.advance(TOTP_STEP_SECS);
    let c = code(&app, &t.key, 0);
    for _ in 0..3 {
        let r = b
            .post_csrf(
                "/dashboard/account/two-factor/disable",
                &[("password", "guess"), ("code", &c)],
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        r.field_error("password");
    }
    let r = b
        .post_csrf(
            "/dashboard/account/two-factor/disable",
            &[("password", PASSWORD), ("code", &c)],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.field_error("password").contains("Too many"), "{}", r.body);
    assert!(app.core.has_totp(user.id).await.unwrap());
    // The same counter as the login page's.
    let mut other = Browser::new(&app);
    let r = other.sign_in("u@example.com", PASSWORD).await;
    assert_eq!(r.status, 429, "{}", r.body);
}

/// The turn-off form's code shares the second-factor throttle; once it is used up, the form
/// says so beside the code (not "the service is busy").
#[tokio::test]
async fn wrong_codes_on_the_turn_off_form_are_throttled() {
    let app = spawn_app_with(|c| c.mfa.max_failures = 3).await;
    let user = app.create_user("u@example.com", PASSWORD).await;
    let t = enrol(&app, &user).await;
    let mut b = Browser::new(&app);
    sign_in_2fa(&mut b, "u@example.com", &code(&app, &t.key, 0)).await;
    app.clock.advance(TOTP_STEP_SECS);
    for _ in 0..3 {
        let r = b
            .post_csrf(
                "/dashboard/account/two-factor/disable",
                &[("password", PASSWORD), ("code", &wrong_code(&app, &t.key))],
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.field_error("code").contains("not valid"));
    }
    let r = b
        .post_csrf(
            "/dashboard/account/two-factor/disable",
            &[("password", PASSWORD), ("code", &code(&app, &t.key, 0))],
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.field_error("code").contains("Too many wrong codes"),
        "{}",
        r.body
    );
    assert!(app.core.has_totp(user.id).await.unwrap());
    // The sign-in's code step is throttled too (one counter per account).
    let mut other = Browser::new(&app);
    let form = password_step(&mut other, "/login", "u@example.com").await;
    let r = give_code(&mut other, &form, &code(&app, &t.key, 0)).await;
    assert_eq!(r.status, 429, "{}", r.body);
}

#[tokio::test]
async fn a_recovery_code_can_turn_it_off() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com", PASSWORD).await;
    let t = enrol(&app, &user).await;
    let mut b = Browser::new(&app);
    sign_in_2fa(&mut b, "u@example.com", &code(&app, &t.key, 0)).await;
    let r = b
        .post_csrf(
            "/dashboard/account/two-factor/disable",
            &[("password", PASSWORD), ("code", &t.recovery[7])],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(!app.core.has_totp(user.id).await.unwrap());
}

#[tokio::test]
async fn an_operator_reset_removes_the_second_factor() {
    let app = spawn_app().await;
    let user = app.create_user("lost@example.com", PASSWORD).await;
    let t = enrol(&app, &user).await;
    let mut pending = Browser::new(&app);
    let pending_form = password_step(&mut pending, "/login", "lost@example.com").await;

    let out = camgate(&app, &["user", "mfa", "reset", "lost@example.com"]);
    assert!(stdout_ok(&out).contains("second factors removed"));
    assert_eq!(app.core.store.totp(user.id).await.unwrap(), None);
    assert_eq!(app.core.recovery_codes_left(user.id).await.unwrap(), 0);
    let ev = audited(&app, "mfa_disabled").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].user_id, Some(user.id));
    assert!(ev[0].detail.contains("operator"), "{}", ev[0].detail);
    // A sign-in waiting for its code when the factor went: the old key's code means nothing.
    let r = give_code(&mut pending, &pending_form, &code(&app, &t.key, 0)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.has("id=\"mfa-error\"");
    assert!(!sets_session(&r));
    assert!(!has_session(&pending));

    // The next login needs no code.
    let mut b = Browser::new(&app);
    let r = b.sign_in("lost@example.com", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location(), "/dashboard/");
    assert!(!b.jar.contains_key(MFA));
    // The password grant works again.
    let client = app.public_client("angelcam").await;
    app.password_token(&client, "lost@example.com", PASSWORD)
        .await;
    // Old recovery codes do not come back with a new enrolment.
    let t2 = enrol(&app, &user).await;
    assert_ne!(t2.key, t.key);
    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "lost@example.com").await;
    assert_code_refused(&give_code(&mut b, &form, &t.recovery[0]).await);

    // A second reset: nothing to remove (t2 removed first).
    stdout_ok(&camgate(
        &app,
        &["user", "mfa", "reset", "lost@example.com"],
    ));
    let out = camgate(&app, &["user", "mfa", "reset", "lost@example.com"]);
    assert!(stdout_ok(&out).contains("had no second factor"));
    assert_eq!(audited(&app, "mfa_disabled").await.len(), 2);
    let out = camgate(&app, &["user", "mfa", "reset", "nobody@example.com"]);
    assert!(!out.status.success());
}

// ---- administrators

#[tokio::test]
async fn admins_need_a_second_factor_when_the_config_requires_it() {
    let app = spawn_app_with(|c| c.mfa.require_for_admins = true).await;
    admin(&app, "admin@example.com").await;

    // Password only: the admin pages are forbidden, with the way out named.
    let mut b = Browser::new(&app);
    let r = b.sign_in("admin@example.com", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    b.get("/dashboard/").await.ok();
    let r = b.get("/dashboard/admin/users/").await;
    assert_eq!(r.status, 403, "{}", r.body);
    r.has("two-factor");
    let r = b
        .post_csrf(
            "/dashboard/admin/users/",
            &[
                ("email", "new@example.com"),
                ("password", "another horse battery staple"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(app
        .core
        .user_by_email("new@example.com")
        .await
        .unwrap()
        .is_none());

    // Enrolling in this session is not enough: the session's sign-in used the password only.
    b.post_csrf("/dashboard/account/two-factor/setup", &[])
        .await;
    let page = b.get("/dashboard/account/two-factor/").await;
    let key = base32_decode(&between(&page.body, "<code id=\"totp-secret\">", "</code>"));
    let r = b
        .post_csrf(
            "/dashboard/account/two-factor/confirm",
            &[("code", &code(&app, &key, 0))],
        )
        .await;
    r.ok().has("id=\"recovery-codes\"");
    assert_eq!(b.get("/dashboard/admin/users/").await.status, 403);

    // Signed in with both factors: allowed.
    app.clock.advance(TOTP_STEP_SECS);
    let mut b = Browser::new(&app);
    sign_in_2fa(&mut b, "admin@example.com", &code(&app, &key, 0)).await;
    b.get("/dashboard/admin/users/")
        .await
        .ok()
        .has("admin@example.com");

    // A non-administrator still does not learn the pages exist.
    app.create_user("user@example.com", PASSWORD).await;
    let mut u = Browser::new(&app);
    u.sign_in("user@example.com", PASSWORD).await;
    assert_eq!(u.get("/dashboard/admin/users/").await.status, 404);
}

#[tokio::test]
async fn admins_need_no_second_factor_by_default() {
    let app = spawn_app().await;
    assert!(!app.config.mfa.require_for_admins);
    admin(&app, "admin@example.com").await;
    let mut b = Browser::new(&app);
    b.sign_in("admin@example.com", PASSWORD).await;
    b.get("/dashboard/admin/users/").await.ok();
}

// ---- keys at rest

#[tokio::test]
async fn totp_keys_are_sealed_at_rest() {
    let app = spawn_app().await;
    let user = app.create_user("u@example.com", PASSWORD).await;
    let (e, _) = app.core.enable_totp_now(&user).await.unwrap();
    let key = base32_decode(&e.secret_base32);
    let sealed = app
        .core
        .store
        .totp(user.id)
        .await
        .unwrap()
        .unwrap()
        .secret_enc;
    assert!(
        !sealed.windows(key.len()).any(|w| w == key.as_slice()),
        "the raw key is in secret_enc"
    );
    assert!(!sealed
        .windows(e.secret_base32.len())
        .any(|w| w == e.secret_base32.as_bytes()));
    // version ‖ 96-bit nonce ‖ ciphertext ‖ 128-bit tag.
    assert_eq!(sealed.len(), 1 + 12 + key.len() + 16);
    assert_eq!(sealed[0], 1);

    // Copied to another user's row, it does not open (bound to the user id): that user's
    // codes from this key are refused.
    let other = app.create_user("o@example.com", PASSWORD).await;
    app.core.enable_totp_now(&other).await.unwrap();
    app.clock.advance(TOTP_STEP_SECS);
    copy_secret(&app, user.id, other.id).await;
    let mut b = Browser::new(&app);
    let form = password_step(&mut b, "/login", "o@example.com").await;
    assert_code_refused(&give_code(&mut b, &form, &code(&app, &key, 0)).await);
    // The owner's still work.
    let mut b = Browser::new(&app);
    sign_in_2fa(&mut b, "u@example.com", &code(&app, &key, 0)).await;
}

/// Copies `from`'s sealed TOTP key into `to`'s row, in the database.
async fn copy_secret(app: &TestApp, from: i64, to: i64) {
    let sql = "UPDATE user_totp SET secret_enc = \
               (SELECT secret_enc FROM user_totp WHERE user_id = $1) WHERE user_id = $2";
    if use_postgres() {
        let pool = sqlx::PgPool::connect(&app.db.url).await.unwrap();
        let n = sqlx::query(sql)
            .bind(from)
            .bind(to)
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(n.rows_affected(), 1);
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(&app.db.url).await.unwrap();
        let n = sqlx::query(sql)
            .bind(from)
            .bind(to)
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(n.rows_affected(), 1);
        pool.close().await;
    }
}

/// A config on `db_url` whose data key is read from a file holding `contents`.
fn config_with_key_file(
    db_url: &str,
    dir: &tempfile::TempDir,
    name: &str,
    contents: &str,
) -> anyhow::Result<Config> {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    let mut c = Config::resolve(
        None,
        Some(db_url.to_string()),
        FileConfig {
            data_key_file: Some(path),
            ..FileConfig::default()
        },
    )?;
    c.hash_workers = 2;
    Ok(c)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn a_data_key_file_seals_the_keys_and_another_key_cannot_open_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::new().await;
    let url = db.url.clone();
    // What `head -c 32 /dev/urandom | base64` writes: padded, with a newline.
    let key_a: Vec<u8> = (0..32).map(|i| i * 7 + 1).collect();
    let cfg_a = config_with_key_file(&url, &dir, "a.key", &format!("{}\n", b64(&key_a))).unwrap();
    assert_eq!(cfg_a.data_key.map(|k| k.to_vec()), Some(key_a.clone()));
    let a = spawn_on(db, cfg_a).await;
    let user = a.create_user("u@example.com", PASSWORD).await;
    let t = enrol(&a, &user).await;
    let mut b = Browser::new(&a);
    sign_in_2fa(&mut b, "u@example.com", &code(&a, &t.key, 0)).await;

    // A second node on the same database with another data key cannot verify codes.
    let key_b = [0x5au8; 32];
    let cfg_b = config_with_key_file(&url, &dir, "b.key", &b64(&key_b)).unwrap();
    let other = spawn_on_with_clock(TestDb::shared(&url), cfg_b, a.clock.clone()).await;
    a.clock.advance(TOTP_STEP_SECS);
    let mut ob = Browser::new(&other);
    let form = password_step(&mut ob, "/login", "u@example.com").await;
    assert_code_refused(&give_code(&mut ob, &form, &code(&a, &t.key, 0)).await);
    assert!(!has_session(&ob));
    // Nor can one without a data key (the database's own key).
    let plain = spawn_on_with_clock(TestDb::shared(&url), test_config(&url), a.clock.clone()).await;
    let mut pb = Browser::new(&plain);
    let form = password_step(&mut pb, "/login", "u@example.com").await;
    assert_code_refused(&give_code(&mut pb, &form, &code(&a, &t.key, 0)).await);
    // A pending sign-in sealed by one key is not accepted under another.
    let mut cross = Browser::new(&a);
    let form_a = password_step(&mut cross, "/login", "u@example.com").await;
    let pending = cross.jar.get(MFA).unwrap().clone();
    let mut ob2 = Browser::new(&other);
    ob2.jar = cross.jar.clone();
    assert_eq!(ob2.jar.get(MFA), Some(&pending));
    let r = give_code(&mut ob2, &form_a, &code(&a, &t.key, 0)).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location(), "/login");
    assert!(!has_session(&ob2));

    // A node with the same key (unpadded base64 this time) verifies them (none of the refusals
    // above used the step up).
    let cfg_same = config_with_key_file(
        &url,
        &dir,
        "same.key",
        base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(&key_a)
            .as_str(),
    )
    .unwrap();
    let same = spawn_on_with_clock(TestDb::shared(&url), cfg_same, a.clock.clone()).await;
    let mut sb = Browser::new(&same);
    sign_in_2fa(&mut sb, "u@example.com", &code(&a, &t.key, 0)).await;
    // Recovery codes are digests, not sealed: they work under any key.
    let mut rb = Browser::new(&other);
    let form = password_step(&mut rb, "/login", "u@example.com").await;
    let r = give_code(&mut rb, &form, &t.recovery[0]).await;
    assert_eq!(r.status, 303, "{}", r.body);
}

#[test]
fn a_data_key_file_must_hold_exactly_32_bytes_of_base64() {
    let dir = tempfile::tempdir().unwrap();
    let url = "sqlite:///nonexistent/camgate.db";
    for (name, contents, expect) in [
        ("short.key", b64(&[1u8; 31]), "exactly 32 bytes"),
        ("long.key", b64(&[1u8; 33]), "exactly 32 bytes"),
        ("empty.key", String::new(), "exactly 32 bytes"),
        ("text.key", "not base64 at all!".to_string(), "base64"),
    ] {
        let err = config_with_key_file(url, &dir, name, &contents)
            .err()
            .unwrap_or_else(|| panic!("{name} was accepted"));
        let msg = format!("{err:#}");
        assert!(msg.contains("data_key_file"), "{name}: {msg}");
        assert!(msg.contains(expect), "{name}: {msg}");
    }
    // A file that is not there is named.
    let missing = dir.path().join("missing.key");
    let err = Config::resolve(
        None,
        Some(url.into()),
        FileConfig {
            data_key_file: Some(missing.clone()),
            ..FileConfig::default()
        },
    )
    .err()
    .unwrap();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("data_key_file") && msg.contains("missing.key"),
        "{msg}"
    );
    // 32 bytes: accepted.
    let c = config_with_key_file(url, &dir, "ok.key", &b64(&[9u8; 32])).unwrap();
    assert_eq!(c.data_key, Some([9u8; 32]));
    // No file: no configured key (the database's key is used).
    assert_eq!(test_config(url).data_key, None);
}

#[test]
fn the_second_factor_throttle_settings_are_validated() {
    let url = "sqlite:///nonexistent/camgate.db";
    let resolve = |f: FileConfig| Config::resolve(None, Some(url.into()), f);
    let c = resolve(FileConfig::default()).unwrap();
    assert_eq!((c.mfa.max_failures, c.mfa.window_secs), (10, 3600));
    assert!(!c.mfa.require_for_admins);
    let c = resolve(FileConfig {
        mfa_max_failures: Some(3),
        mfa_failure_window_secs: Some(60),
        require_mfa_for_admins: Some(true),
        ..FileConfig::default()
    })
    .unwrap();
    assert_eq!((c.mfa.max_failures, c.mfa.window_secs), (3, 60));
    assert!(c.mfa.require_for_admins);
    for f in [
        FileConfig {
            mfa_max_failures: Some(0),
            ..FileConfig::default()
        },
        FileConfig {
            mfa_failure_window_secs: Some(59),
            ..FileConfig::default()
        },
    ] {
        let msg = format!("{:#}", resolve(f).err().unwrap());
        assert!(msg.contains("mfa_"), "{msg}");
    }
}
