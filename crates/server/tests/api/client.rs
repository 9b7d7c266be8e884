//! The client library (`camgate-client`) and `camgate login` / `camgate api` / `camgate logout`
//! against a live server: every grant, refresh rotation persisted in the file
//! store, a 401 answered by one refresh and one retry, and 50 concurrent calls around an expiry
//! that send exactly one refresh (so rotation never trips theft detection). Runs on SQLite, and
//! on PostgreSQL with `CAMGATE_TEST_DATABASE=postgres`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::session::*;
use crate::common::*;
use async_trait::async_trait;
use camgate_client::{Client, Error, FileStore, MemoryStore, StoreError, TokenStore, Tokens};
use camgate_core::clock::{Clock as _, ManualClock};
use camgate_core::model::{CameraFields, ClientKind, GrantType};
use serde_json::Value;

const CB: &str = "https://app.example.com/callback";
/// The angelcam profile's access-token lifetime.
const ACCESS_TTL: i64 = 36000;

/// The server's manual clock, as the client's clock: the client's idea of expiry moves with
/// the server's.
struct ServerClock(Arc<ManualClock>);

impl camgate_client::Clock for ServerClock {
    fn now(&self) -> i64 {
        self.0.now()
    }
}

/// A store that counts its saves (one per grant or refresh) around an inner store.
struct CountingStore {
    inner: Arc<dyn TokenStore>,
    saves: AtomicUsize,
}

impl CountingStore {
    fn new(inner: Arc<dyn TokenStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            saves: AtomicUsize::new(0),
        })
    }
    fn saves(&self) -> usize {
        self.saves.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl TokenStore for CountingStore {
    async fn load(&self) -> Result<Option<Tokens>, StoreError> {
        self.inner.load().await
    }
    async fn save(&self, tokens: &Tokens) -> Result<(), StoreError> {
        self.saves.fetch_add(1, Ordering::SeqCst);
        self.inner.save(tokens).await
    }
    async fn clear(&self) -> Result<(), StoreError> {
        self.inner.clear().await
    }
}

fn builder(app: &TestApp, client_id: &str) -> camgate_client::ClientBuilder {
    Client::builder(&app.base)
        .client_id(client_id)
        .clock(Arc::new(ServerClock(app.clock.clone())))
}

/// Audit events of `kind` so far (the server writes them before it answers).
async fn audited(app: &TestApp, kind: &str) -> usize {
    app.core
        .store
        .recent_audit(10_000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.kind == kind)
        .count()
}

/// Revokes one access token at the server (RFC 7009 with the hint): its refresh token stays.
async fn revoke_access_token(app: &TestApp, client_id: &str, secret: Option<&str>, token: &str) {
    let mut form = vec![
        ("token", token),
        ("token_type_hint", "access_token"),
        ("client_id", client_id),
    ];
    if let Some(s) = secret {
        form.push(("client_secret", s));
    }
    let r = app
        .http
        .post(app.url("/oauth/token-revoke/"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.get_bearer("/v1/me/", token).await.status(), 401);
}

async fn json(r: reqwest::Response) -> Value {
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn password_grant_then_authenticated_calls() {
    let app = spawn_app().await;
    app.create_user("user@example.com", PASSWORD).await;
    let id = app.public_client("angelcam").await;
    let client = builder(&app, &id).scope("read").build().unwrap();

    // A wrong password: the OAuth error comes back parsed, and nothing is stored.
    let e = client
        .password_grant("user@example.com", "wrong password")
        .await
        .unwrap_err();
    assert_eq!(e.oauth_code(), Some("invalid_grant"), "{e}");
    assert!(matches!(e, Error::OAuth { status: 400, .. }), "{e:?}");
    assert!(client.tokens().await.unwrap().is_none());
    assert!(matches!(
        client.get("/v1/me/").await,
        Err(Error::NotAuthenticated)
    ));

    let t = client
        .password_grant("user@example.com", PASSWORD)
        .await
        .unwrap();
    assert_eq!(t.scope.as_deref(), Some("read"));
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.expires_at, Some(app.clock_now() + ACCESS_TTL));
    assert!(t.refresh_token.is_some());
    let me = json(client.get("/v1/me/").await.unwrap()).await;
    assert_eq!(me["email"], "user@example.com");
    // The scope was honoured: a write is refused (403), and the client does not refresh for it.
    let r = client
        .send(
            reqwest::Method::POST,
            "/v1/cameras/",
            Some(&serde_json::json!({"name": "x"})),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(audited(&app, "token_refreshed").await, 0);
    // The access token goes to the server's origin only.
    assert!(matches!(
        client.get("http://127.0.0.2:1/v1/me/").await,
        Err(Error::ForeignOrigin(_))
    ));
}

#[tokio::test]
async fn client_credentials_grant_asks_again_instead_of_refreshing() {
    let app = spawn_app().await;
    let owner = app.create_user("owner@example.com", PASSWORD).await;
    let cam = app
        .core
        .create_camera(owner.id, CameraFields::named("Front door"))
        .await
        .unwrap();
    let mut input = client_input("service", ClientKind::Confidential, "angelcam");
    input.owner_id = Some(owner.id);
    input.grants = vec![GrantType::ClientCredentials];
    let reg = app.register(input).await;
    let (id, secret) = (reg.client.client_id, reg.secret.unwrap());

    // Without the secret the grant is refused before any request.
    let no_secret = builder(&app, &id).build().unwrap();
    assert!(matches!(
        no_secret.client_credentials_grant().await,
        Err(Error::Config(_))
    ));
    // A wrong secret: invalid_client, 401 (RFC 6749 §5.2).
    let wrong = builder(&app, &id).client_secret("nope").build().unwrap();
    let e = wrong.client_credentials_grant().await.unwrap_err();
    assert_eq!(e.oauth_code(), Some("invalid_client"));

    let client = builder(&app, &id).client_secret(&secret).build().unwrap();
    let t = client.client_credentials_grant().await.unwrap();
    assert!(t.refresh_token.is_none(), "RFC 6749 §4.4.3");
    assert_eq!(t.grant.as_deref(), Some("client_credentials"));
    let cams = json(client.get("/cameras/").await.unwrap()).await;
    let ids: Vec<i64> = cams
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["camera_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![cam.id]);

    // Revoked at the server: the 401 is answered by a new client-credentials token.
    revoke_access_token(&app, &id, Some(&secret), &t.access_token).await;
    let issued = audited(&app, "token_issued").await;
    json(client.get("/cameras/").await.unwrap()).await;
    assert_eq!(audited(&app, "token_issued").await, issued + 1);
    let t2 = client.tokens().await.unwrap().unwrap();
    assert_ne!(t2.access_token, t.access_token);

    // Expired by the clock: asked again before the call.
    app.clock.advance(ACCESS_TTL + 1);
    json(client.get("/cameras/").await.unwrap()).await;
    assert_eq!(audited(&app, "token_issued").await, issued + 2);
}

/// Drives authorize → login → consent in a browser and returns the redirect back to the client.
async fn approve_in_browser(app: &TestApp, authorize_url: &str, email: &str) -> String {
    let mut b = Browser::new(app);
    let r = b.get(authorize_url).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let login = r.location();
    assert!(login.starts_with("/login"), "{login}");
    let page = b.get(&login).await;
    let csrf = hidden(&page.body, "csrf_token");
    let rid = hidden(&page.body, "request_id");
    let r = b
        .post(
            "/login",
            &[
                ("email", email),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
                ("request_id", &rid),
            ],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    let consent = b.get(&r.location()).await;
    if consent.status == 303 {
        // Consent remembered from an earlier approval: straight back to the client.
        return consent.location();
    }
    let r = b.decide(&consent, "approve").await;
    assert_eq!(r.status, 303, "{}", r.body);
    r.location()
}

#[tokio::test]
async fn authorization_code_with_pkce() {
    let app = spawn_app().await;
    app.create_user("user@example.com", PASSWORD).await;
    let id = app.public_client("angelcam").await;
    let client = builder(&app, &id).scope("read").build().unwrap();

    let req = client.authorization_request(CB).unwrap();
    let q: HashMap<_, _> = req.url().query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    let back = approve_in_browser(&app, req.url().as_str(), "user@example.com").await;
    assert!(back.starts_with(CB), "{back}");

    // A callback whose state is not ours is refused before the code is used …
    let forged = back.replace(&format!("state={}", req.state()), "state=forged");
    let other = client.authorization_request(CB).unwrap();
    assert!(matches!(
        client.exchange_code(other, &back).await,
        Err(Error::StateMismatch)
    ));
    let again = client.authorization_request(CB).unwrap();
    assert!(matches!(
        client.exchange_code(again, &forged).await,
        Err(Error::StateMismatch)
    ));
    // … so the real exchange (code + verifier) still works.
    let t = client.exchange_code(req, &back).await.unwrap();
    assert_eq!(t.grant.as_deref(), Some("authorization_code"));
    assert_eq!(t.scope.as_deref(), Some("read"));
    let me = json(client.get("/v1/me/").await.unwrap()).await;
    assert_eq!(me["email"], "user@example.com");

    // The server enforces the verifier: a code exchanged with another request's verifier
    // (same state copied over by an attacker who saw the callback) is refused.
    let req2 = client.authorization_request(CB).unwrap();
    let back2 = approve_in_browser(&app, req2.url().as_str(), "user@example.com").await;
    let wrong = client.authorization_request(CB).unwrap();
    let spliced = back2.replace(
        &format!("state={}", req2.state()),
        &format!("state={}", wrong.state()),
    );
    let e = client.exchange_code(wrong, &spliced).await.unwrap_err();
    assert_eq!(e.oauth_code(), Some("invalid_grant"), "{e}");

    // Denied at the consent screen: the error comes back as Error::Authorization.
    let deny_req = client.authorization_request(CB).unwrap();
    let cb = format!(
        "{CB}?error=access_denied&state={}&iss={}",
        deny_req.state(),
        app.base
    );
    let e = client.exchange_code(deny_req, &cb).await.unwrap_err();
    assert_eq!(e.oauth_code(), Some("access_denied"));
}

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn refresh_rotation_is_persisted_in_the_file_store() {
    let app = spawn_app().await;
    app.create_user("user@example.com", PASSWORD).await;
    let (id, secret) = app.confidential_client("angelcam").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("camgate/credentials.json");
    let client = builder(&app, &id)
        .client_secret(&secret)
        .store(FileStore::new(&path))
        .build()
        .unwrap();
    let t1 = client
        .password_grant("user@example.com", PASSWORD)
        .await
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains(PASSWORD),
        "the password must never be stored"
    );
    assert!(
        !text.contains(&secret),
        "the client secret must never be stored"
    );
    assert!(text.contains(t1.refresh_token.as_deref().unwrap()));
    #[cfg(unix)]
    {
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }

    // Past the expiry: refreshed before the call, and the rotated pair is in the file.
    app.clock.advance(ACCESS_TTL + 1);
    json(client.get("/v1/me/").await.unwrap()).await;
    assert_eq!(audited(&app, "token_refreshed").await, 1);
    let on_disk = FileStore::new(&path).load().await.unwrap().unwrap();
    assert_ne!(on_disk.refresh_token, t1.refresh_token, "rotated");
    assert_ne!(on_disk.access_token, t1.access_token);
    assert_eq!(
        on_disk.expires_at,
        Some(app.clock_now() + ACCESS_TTL),
        "expiry by the client's clock"
    );
    assert!(!std::fs::read_to_string(&path).unwrap().contains(&secret));
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600, "the mode survives the atomic replace");

    // A later run (a new client on the same file) picks the session up without a new grant or
    // refresh.
    let later = builder(&app, &id)
        .client_secret(&secret)
        .store(FileStore::new(&path))
        .build()
        .unwrap();
    json(later.get("/v1/me/").await.unwrap()).await;
    assert_eq!(audited(&app, "token_refreshed").await, 1);

    // Logout revokes the family and deletes the file.
    later.revoke().await.unwrap();
    assert!(!path.exists());
    let r = app
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("refresh_token", on_disk.refresh_token.as_deref().unwrap()),
        ])
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_401_leads_to_exactly_one_refresh_and_one_retry() {
    let app = spawn_app().await;
    app.create_user("user@example.com", PASSWORD).await;
    let id = app.public_client("angelcam").await;
    let store = CountingStore::new(Arc::new(MemoryStore::new()));
    let client = builder(&app, &id)
        .shared_store(store.clone())
        .build()
        .unwrap();
    let t = client
        .password_grant("user@example.com", PASSWORD)
        .await
        .unwrap();
    assert_eq!(store.saves(), 1);

    // The server revokes the access token while the client still thinks it is valid.
    revoke_access_token(&app, &id, None, &t.access_token).await;
    let me = json(client.get("/v1/me/").await.unwrap()).await;
    assert_eq!(me["email"], "user@example.com");
    assert_eq!(audited(&app, "token_refreshed").await, 1);
    assert_eq!(store.saves(), 2);

    // When the refresh itself is refused (the whole family revoked), the client gives up
    // after that one refresh: the OAuth error, no loop.
    let t2 = client.tokens().await.unwrap().unwrap();
    let r = app
        .http
        .post(app.url("/oauth/token-revoke/"))
        .form(&[
            ("token", t2.refresh_token.as_deref().unwrap()),
            ("token_type_hint", "refresh_token"),
            ("client_id", id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let e = client.get("/v1/me/").await.unwrap_err();
    assert_eq!(e.oauth_code(), Some("invalid_grant"), "{e}");
    assert_eq!(audited(&app, "token_refreshed").await, 1);
    assert_eq!(store.saves(), 2);

    // A session without a refresh token hands the 401 back as is.
    let bare = builder(&app, &id).build().unwrap();
    bare.set_tokens(Tokens {
        access_token: "not-a-token".into(),
        token_type: "Bearer".into(),
        expires_at: None,
        refresh_token: None,
        scope: None,
        grant: Some("password".into()),
    })
    .await
    .unwrap();
    assert_eq!(bare.get("/v1/me/").await.unwrap().status(), 401);
}

/// Fires `n` concurrent GETs through clones of one client; all must answer 200.
async fn concurrent_gets(client: &Client, n: usize, path: &str) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let c = client.clone();
            let p = path.to_string();
            tokio::spawn(async move { c.get(&p).await.map(|r| r.status().as_u16()) })
        })
        .collect();
    for t in tasks {
        let status = t.await.unwrap().unwrap();
        assert_eq!(status, 200);
    }
}

/// The grace window is off, so a second use of a rotated refresh token — what two concurrent
/// refreshes would be — revokes the family at once.
async fn strict_rotation_app() -> (TestApp, String, Client, Arc<CountingStore>) {
    let app = spawn_app_with(|c| c.refresh_grace_secs = 0).await;
    let user = app.create_user("user@example.com", PASSWORD).await;
    for i in 0..3 {
        app.core
            .create_camera(user.id, CameraFields::named(format!("cam {i}")))
            .await
            .unwrap();
    }
    let id = app.public_client("angelcam").await;
    let store = CountingStore::new(Arc::new(MemoryStore::new()));
    let client = builder(&app, &id)
        .shared_store(store.clone())
        .build()
        .unwrap();
    client
        .password_grant("user@example.com", PASSWORD)
        .await
        .unwrap();
    (app, id, client, store)
}

/// After the storm: one refresh, no theft detection, and the family still alive (the current
/// refresh token refreshes again).
async fn assert_one_refresh_and_family_alive(
    app: &TestApp,
    client: &Client,
    store: &CountingStore,
) {
    assert_eq!(
        audited(app, "token_refreshed").await,
        1,
        "exactly one refresh"
    );
    assert_eq!(store.saves(), 2, "one grant + one refresh");
    assert_eq!(audited(app, "theft_detected").await, 0);
    let before = client.tokens().await.unwrap().unwrap();
    let after = client.refresh().await.unwrap();
    assert_ne!(after.refresh_token, before.refresh_token);
    assert_eq!(audited(app, "token_refreshed").await, 2);
    let cams = json(client.get("/v1/cameras/").await.unwrap()).await;
    assert!(cams.to_string().contains("cam 2"), "{cams}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_calls_around_an_expiry_refresh_once() {
    let (app, _id, client, store) = strict_rotation_app().await;
    json(client.get("/v1/cameras/").await.unwrap()).await;
    app.clock.advance(ACCESS_TTL + 1);
    concurrent_gets(&client, 50, "/v1/cameras/").await;
    assert_one_refresh_and_family_alive(&app, &client, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_calls_after_a_server_side_revocation_refresh_once() {
    let (app, id, client, store) = strict_rotation_app().await;
    let t = client.tokens().await.unwrap().unwrap();
    revoke_access_token(&app, &id, None, &t.access_token).await;
    // The client cannot know: every call gets a 401 first, and they share one refresh.
    concurrent_gets(&client, 50, "/v1/cameras/").await;
    assert_one_refresh_and_family_alive(&app, &client, &store).await;
}

// --- the command line ------------------------------------------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_camgate");

/// Runs the binary (off the runtime's threads: the server is in this process) with no
/// `CAMGATE_*` variables inherited and `XDG_CONFIG_HOME` at `config_home`.
async fn camgate(config_home: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("CAMGATE_") {
            c.env_remove(k);
        }
    }
    c.env("XDG_CONFIG_HOME", config_home)
        .env("CAMGATE_LOG", "warn")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stdin = stdin.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

/// `camgate login --password-stdin` as user@example.com with the public client `id`, plus the
/// `extra` arguments; `stdin` is what the command reads.
async fn cli_login(
    app: &TestApp,
    config_home: &std::path::Path,
    id: &str,
    extra: &[&str],
    stdin: &str,
) -> Output {
    let mut args = vec![
        "login",
        "--server",
        &app.base,
        "--client-id",
        id,
        "--username",
        "user@example.com",
        "--password-stdin",
    ];
    args.extend_from_slice(extra);
    camgate(config_home, &args, stdin).await
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_login_api_refresh_and_logout() {
    let app = spawn_app().await;
    let user = app.create_user("user@example.com", PASSWORD).await;
    app.core
        .create_camera(user.id, CameraFields::named("Garden"))
        .await
        .unwrap();
    let id = app.public_client("angelcam").await;
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("camgate/credentials.json");

    let o = cli_login(&app, home.path(), &id, &[], &format!("{PASSWORD}\n")).await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("logged in"), "{}", out(&o));
    assert!(out(&o).contains(&file.display().to_string()), "{}", out(&o));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(PASSWORD));
    assert!(!out(&o).contains(PASSWORD) && !err(&o).contains(PASSWORD));
    #[cfg(unix)]
    {
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(file.parent().unwrap()), 0o700);
    }
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["server"], app.base.as_str());
    assert_eq!(doc["client_id"], id.as_str());
    let refresh1 = doc["tokens"]["refresh_token"].as_str().unwrap().to_string();
    // Tokens never reach the terminal.
    assert!(!out(&o).contains(&refresh1));

    let o = camgate(home.path(), &["api", "GET", "/v1/cameras/"], "").await;
    assert!(o.status.success(), "{}", err(&o));
    let cams: Value = serde_json::from_str(&out(&o)).unwrap();
    assert!(cams.to_string().contains("Garden"), "{cams}");

    // The server's clock passes the expiry; the command line's does not, so its call gets a
    // 401, refreshes, retries, and the rotated refresh token lands in the file.
    app.clock.advance(ACCESS_TTL + 1);
    let o = camgate(home.path(), &["api", "get", "/v1/me/"], "").await;
    assert!(o.status.success(), "{}", err(&o));
    let me: Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(me["email"], "user@example.com");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let refresh2 = doc["tokens"]["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh1, refresh2, "rotated refresh token persisted");
    assert_eq!(audited(&app, "token_refreshed").await, 1);
    #[cfg(unix)]
    assert_eq!(mode(&file), 0o600);

    // A POST with a body, then errors: a 404 exits non-zero with the status on stderr.
    let o = camgate(
        home.path(),
        &[
            "api",
            "POST",
            "/v1/cameras/",
            "--data",
            r#"{"name": "Porch"}"#,
        ],
        "",
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("Porch"), "{}", out(&o));
    let o = camgate(home.path(), &["api", "GET", "/v1/cameras/999999/"], "").await;
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("404"), "{}", err(&o));
    let o = camgate(
        home.path(),
        &["api", "POST", "/v1/cameras/", "--data", "{not json"],
        "",
    )
    .await;
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("--data is not JSON"), "{}", err(&o));

    // Logout revokes the family and removes the file; api then says to log in.
    let o = camgate(home.path(), &["logout"], "").await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(!file.exists());
    let r = app
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &id),
            ("refresh_token", &refresh2),
        ])
        .await;
    assert_eq!(r.status(), 400);
    let o = camgate(home.path(), &["api", "GET", "/v1/me/"], "").await;
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("camgate login"), "{}", err(&o));

    // A session revoked at the server (say, from the dashboard): told to log in again.
    let o = cli_login(&app, home.path(), &id, &[], &format!("{PASSWORD}\n")).await;
    assert!(o.status.success(), "{}", err(&o));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let r = app
        .http
        .post(app.url("/oauth/token-revoke/"))
        .form(&[
            ("token", doc["tokens"]["refresh_token"].as_str().unwrap()),
            ("client_id", id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let o = camgate(home.path(), &["api", "GET", "/v1/me/"], "").await;
    assert_eq!(o.status.code(), Some(1));
    let e = err(&o);
    assert!(
        e.contains("no longer valid") && e.contains("run `camgate login` again"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_login_with_a_bad_password_fails_clearly_and_writes_nothing() {
    let app = spawn_app().await;
    app.create_user("user@example.com", PASSWORD).await;
    let id = app.public_client("angelcam").await;
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("creds.json");
    let o = cli_login(
        &app,
        home.path(),
        &id,
        &["--credentials", file.to_str().unwrap()],
        "not the password\n",
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let e = err(&o);
    assert!(
        e.contains("login failed") && e.contains("invalid_grant"),
        "{e}"
    );
    assert!(!e.contains("not the password"), "{e}");
    assert!(!file.exists());
    assert!(!home.path().join("camgate").exists());

    // An empty password is refused before any request.
    let o = cli_login(&app, home.path(), &id, &[], "\n").await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("password read from stdin is empty"),
        "{}",
        err(&o)
    );
    assert_eq!(audited(&app, "login_failed").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_confidential_client_secret_comes_from_stdin_and_is_never_stored() {
    let app = spawn_app().await;
    app.create_user("user@example.com", PASSWORD).await;
    let (id, secret) = app.confidential_client("angelcam").await;
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("camgate/credentials.json");
    let o = camgate(
        home.path(),
        &[
            "login",
            "--server",
            &app.base,
            "--client-id",
            &id,
            "--client-secret-stdin",
            "--username",
            "user@example.com",
            "--password-stdin",
            "--scope",
            "read",
        ],
        &format!("{secret}\n{PASSWORD}\n"),
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("scope: read"), "{}", out(&o));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&secret) && !text.contains(PASSWORD));
    // Refreshing needs the secret again: from stdin (or CAMGATE_CLIENT_SECRET).
    app.clock.advance(ACCESS_TTL + 1);
    let o = camgate(
        home.path(),
        &["api", "GET", "/v1/me/", "--client-secret-stdin"],
        &format!("{secret}\n"),
    )
    .await;
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(audited(&app, "token_refreshed").await, 1);
}
