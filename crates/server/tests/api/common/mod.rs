//! Black-box test harness: spawns the real app on 127.0.0.1:0 with its own database and a
//! manual clock, and talks HTTP to it (like zero-to-production's `tests/api/helpers.rs`).
//!
//! Backend: `CAMGATE_TEST_DATABASE=postgres` runs every test on a fresh PostgreSQL database
//! (created from `CAMGATE_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`,
//! dropped afterwards); anything else runs on a fresh SQLite file. When PostgreSQL is asked for
//! and unreachable the test fails — it never silently falls back.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod session;

use std::sync::Arc;

use camgate_core::clients::{ClientInput, RegisteredClient};
use camgate_core::clock::ManualClock;
use camgate_core::model::{ClientKind, GrantType, User};
use camgate_core::scope::ScopeSet;
use camgate_core::users::UserInput;
use camgate_core::Core;
use camgate_server::config::{Config, FileConfig};
use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery staple";

/// Every suite runs in this one test process, in parallel threads (each was a test binary of
/// its own before). The tests that measure time (latency bounds, a timing side channel) and
/// the one that loads the whole machine (the SIGKILL durability run, alone in its binary
/// before) take this lock for their whole run, so that no measurement runs beside that load
/// or beside another measurement. A tokio mutex: a failing holder does not poison it.
static QUIET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits for [`QUIET`]; hold the guard until the test ends (`let _quiet = quiet().await;`).
pub async fn quiet() -> tokio::sync::MutexGuard<'static, ()> {
    QUIET.lock().await
}

/// A test database: a temp SQLite file or a throwaway PostgreSQL database.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>,
}

pub fn use_postgres() -> bool {
    std::env::var("CAMGATE_TEST_DATABASE")
        .map(|v| v == "postgres")
        .unwrap_or(false)
}

fn pg_admin_url() -> String {
    std::env::var("CAMGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDb {
    /// Another handle on an existing database (a second node); dropping it drops nothing.
    pub fn shared(url: &str) -> TestDb {
        TestDb {
            url: url.to_string(),
            _dir: None,
            pg_drop: None,
        }
    }

    /// A fresh PostgreSQL database whatever `CAMGATE_TEST_DATABASE` says.
    pub async fn postgres() -> TestDb {
        Self::create(true).await
    }

    pub async fn new() -> TestDb {
        Self::create(use_postgres()).await
    }

    async fn create(postgres: bool) -> TestDb {
        if postgres {
            use sqlx::Connection;
            let admin = pg_admin_url();
            let name = format!(
                "camgate_test_{}",
                camgate_core::secret::generate_client_id().to_lowercase()
            );
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("CAMGATE_TEST_DATABASE=postgres but PostgreSQL is unreachable");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
            let _ = conn.close().await;
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
            TestDb {
                url: format!("{base}/{name}"),
                _dir: None,
                pg_drop: Some((admin, name)),
            }
        } else {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("camgate.db").display());
            TestDb {
                url,
                _dir: Some(dir),
                pg_drop: None,
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_drop.take() {
            // Drop from a fresh runtime on another thread (we may be inside a runtime here).
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    use sqlx::Connection;
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub core: Arc<Core>,
    pub config: Config,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub db: TestDb,
}

/// Config for tests: defaults, overridable per test.
pub fn test_config(db_url: &str) -> Config {
    let mut c = Config::resolve(None, Some(db_url.to_string()), FileConfig::default()).unwrap();
    c.hash_workers = 2;
    c
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::new().await;
    let mut config = test_config(&db.url);
    configure(&mut config);
    spawn_on(db, config).await
}

/// Spawns an app on an existing database (e.g. a second node on the same database).
pub async fn spawn_on(db: TestDb, config: Config) -> TestApp {
    spawn_on_with_clock(db, config, Arc::new(ManualClock::starting_now())).await
}

/// Spawns an app with a given clock (nodes of one cluster share a clock in tests).
pub async fn spawn_on_with_clock(db: TestDb, config: Config, clock: Arc<ManualClock>) -> TestApp {
    let store = camgate_server::open_store(&config).await.unwrap();
    let app = camgate_server::build(&config, store, clock.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = app.router.clone();
    let limits = config.limits.clone();
    tokio::spawn(async move {
        let _ = camgate_server::serve_with(listener, router, &limits, async move {
            let _ = rx.await;
        })
        .await;
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        base: format!("http://{addr}"),
        http,
        clock,
        core: app.core,
        config,
        shutdown: Some(tx),
        db,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn create_user(&self, email: &str, password: &str) -> User {
        self.core
            .create_user(UserInput {
                email: email.into(),
                password: password.into(),
                first_name: "Test".into(),
                last_name: "User".into(),
                phone: "+100".into(),
                is_admin: false,
                email_verified: false,
            })
            .await
            .unwrap()
    }

    /// Registers a client with the given input.
    pub async fn register(&self, input: ClientInput) -> RegisteredClient {
        self.core.register_client(input).await.unwrap()
    }

    /// A public client on `profile` allowing password + refresh (+ code).
    pub async fn public_client(&self, profile: &str) -> String {
        self.register(client_input("public app", ClientKind::Public, profile))
            .await
            .client
            .client_id
    }

    /// A confidential client on `profile`; returns (client_id, secret).
    pub async fn confidential_client(&self, profile: &str) -> (String, String) {
        let r = self
            .register(client_input(
                "confidential app",
                ClientKind::Confidential,
                profile,
            ))
            .await;
        (r.client.client_id, r.secret.unwrap())
    }

    /// POSTs a urlencoded form to the token endpoint.
    pub async fn token_form(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/oauth/token/"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Password grant for a public client; panics unless 200. Returns the JSON body.
    pub async fn password_token(&self, client_id: &str, email: &str, password: &str) -> Value {
        let r = self
            .token_form(&[
                ("client_id", client_id),
                ("grant_type", "password"),
                ("username", email),
                ("password", password),
            ])
            .await;
        assert_eq!(r.status(), 200, "password grant failed");
        r.json().await.unwrap()
    }

    /// A user plus a fresh access token for them (public angelcam client).
    pub async fn user_with_token(&self, email: &str) -> (User, String) {
        let user = self.create_user(email, PASSWORD).await;
        let client = self.public_client("angelcam").await;
        let t = self.password_token(&client, email, PASSWORD).await;
        (user, t["access_token"].as_str().unwrap().to_string())
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

pub fn client_input(name: &str, kind: ClientKind, profile: &str) -> ClientInput {
    ClientInput {
        name: name.into(),
        owner_id: None,
        kind,
        redirect_uris: vec!["https://app.example.com/callback".into()],
        grants: vec![
            GrantType::Password,
            GrantType::RefreshToken,
            GrantType::AuthorizationCode,
        ],
        scopes: Some(ScopeSet::READ_WRITE),
        profile: Some(profile.into()),
        client_id: None,
        client_secret: None,
        oidc: Default::default(),
        allow_password_without_mfa: false,
    }
}

impl TestApp {
    /// A second node: another app (own pool, own router) on the same database and clock.
    pub async fn spawn_node(&self) -> TestApp {
        spawn_on_with_clock(
            TestDb::shared(&self.db.url),
            self.config.clone(),
            self.clock.clone(),
        )
        .await
    }

    /// The server's current time.
    pub fn clock_now(&self) -> i64 {
        use camgate_core::clock::Clock;
        self.clock.now()
    }
}

/// `v` with the media tokens taken off every `url` (stream, snapshot and recording URLs are
/// signed per caller; compare what was stored with this).
pub fn unsigned(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let x = match (k.as_str(), x.as_str()) {
                        ("url", Some(u)) => match camgate_client::media::split_token(u) {
                            Some((base, _)) => Value::String(base),
                            None => x.clone(),
                        },
                        _ => unsigned(x),
                    };
                    (k.clone(), x)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(unsigned).collect()),
        other => other.clone(),
    }
}
