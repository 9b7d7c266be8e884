//! No secret leaks: the real binary runs a full flow with trace-level logs
//! (every target, sqlx included), then the captured logs and the database — the raw SQLite
//! file with its WAL, or every row of every PostgreSQL table — are searched for every
//! password, client secret and token used. Only their digests may be stored; nothing may be
//! logged.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common::*;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_camgate");

fn camgate(db: &str) -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("CAMGATE_") {
            c.env_remove(k);
        }
    }
    c.env("CAMGATE_DATABASE_URL", db)
        .env("CAMGATE_LOG", "trace");
    c
}

/// Runs a CLI command (its stderr goes to `log`), feeding `stdin`; returns stdout as JSON.
fn cli(db: &str, log: &std::fs::File, args: &[&str], stdin: Option<&str>) -> Value {
    let mut child = camgate(db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log.try_clone().unwrap()))
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{args:?} failed");
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(text.trim()).unwrap_or(Value::Null)
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("no {k} in {v}"))
        .to_string()
}

async fn json_ok(r: reqwest::Response) -> Value {
    let st = r.status();
    let text = r.text().await.unwrap();
    assert!(st.is_success(), "{st}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Everything the database holds, as bytes to search.
async fn database_bytes(db: &TestDb) -> Vec<u8> {
    if let Some(path) = db.url.strip_prefix("sqlite://") {
        let mut all = Vec::new();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            if let Ok(b) = std::fs::read(format!("{path}{suffix}")) {
                all.extend(b);
            }
        }
        assert!(all.len() > 10_000, "the database file was not found");
        all
    } else {
        use sqlx::{Connection, Row};
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                .fetch_all(&mut c)
                .await
                .unwrap();
        assert!(tables.len() >= 5, "{tables:?}");
        let mut all = Vec::new();
        for t in tables {
            let rows = sqlx::query(&format!("SELECT t::text FROM \"{t}\" t"))
                .fetch_all(&mut c)
                .await
                .unwrap();
            for r in rows {
                let s: String = r.get(0);
                all.extend(s.into_bytes());
                all.push(b'\n');
            }
        }
        all
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn no_secret_reaches_the_logs_or_the_database() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("camgate.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut secrets: Vec<(&str, String)> = Vec::new();

    // Set-up through the CLI (its logs are captured too).
    let password = "Leak-Password-7f3a9c41e2";
    let wrong_password = "Leak-Wrong-Password-0b8e5d";
    let imported_secret = "Leak-Imported-Secret-93ac11";
    secrets.push(("password", password.into()));
    secrets.push(("wrong password", wrong_password.into()));
    secrets.push(("imported client secret", imported_secret.into()));
    cli(&db.url, &log, &["migrate"], None);
    cli(
        &db.url,
        &log,
        &[
            "user",
            "add",
            "--email",
            "leak@example.com",
            "--password-stdin",
            "--json",
        ],
        Some(&format!("{password}\n")),
    );
    let cm = cli(
        &db.url,
        &log,
        &[
            "client",
            "add",
            "--name",
            "cm",
            "--profile",
            "cameramanager",
            "--json",
        ],
        None,
    );
    let (cm_id, cm_secret) = (s(&cm, "client_id"), s(&cm, "client_secret"));
    secrets.push(("generated client secret", cm_secret.clone()));
    cli(
        &db.url,
        &log,
        &[
            "client",
            "add",
            "--name",
            "imported",
            "--profile",
            "cameramanager",
            "--client-id",
            "imported.client",
            "--client-secret-stdin",
            "--json",
        ],
        Some(&format!("{imported_secret}\n")),
    );
    let public = s(
        &cli(
            &db.url,
            &log,
            &["client", "add", "--name", "pub", "--public", "--json"],
            None,
        ),
        "client_id",
    );
    let pat = s(
        &cli(
            &db.url,
            &log,
            &[
                "pat",
                "add",
                "--user",
                "leak@example.com",
                "--name",
                "ci",
                "--json",
            ],
            None,
        ),
        "token",
    );
    secrets.push(("personal access token", pat.clone()));

    // The server, at trace level for every target.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Server(
        camgate(&db.url)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log.try_clone().unwrap()))
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        assert!(server.0.try_wait().unwrap().is_none(), "serve exited");
        if let Ok(r) = http.get(format!("{base}/health/ready")).send().await {
            if r.status() == 200 {
                up = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "serve did not become ready");
    let u = |p: &str| format!("{base}{p}");

    // Angelcam: password grant (urlencoded), refresh (multipart), resource calls.
    let t1 = json_ok(
        http.post(u("/oauth/token/"))
            .form(&[
                ("client_id", public.as_str()),
                ("grant_type", "password"),
                ("username", "leak@example.com"),
                ("password", password),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (at1, rt1) = (s(&t1, "access_token"), s(&t1, "refresh_token"));
    let t2 = json_ok(
        http.post(u("/oauth/token/"))
            .multipart(
                reqwest::multipart::Form::new()
                    .text("grant_type", "refresh_token")
                    .text("client_id", public.clone())
                    .text("refresh_token", rt1.clone()),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (at2, rt2) = (s(&t2, "access_token"), s(&t2, "refresh_token"));
    json_ok(
        http.get(u("/v1/me/"))
            .bearer_auth(&at2)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // A token in the query string is refused — and its URL must not be logged either.
    let r = http
        .get(u(&format!("/v1/me/?access_token={at2}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A failed login with a wrong password.
    let r = http
        .post(u("/oauth/token/"))
        .form(&[
            ("client_id", public.as_str()),
            ("grant_type", "password"),
            ("username", "leak@example.com"),
            ("password", wrong_password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Personal access token: create and read a camera.
    let cam = json_ok(
        http.post(u("/v1/cameras/"))
            .header("authorization", format!("PersonalAccessToken {pat}"))
            .json(&serde_json::json!({"name": "door"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    json_ok(
        http.get(u(&format!("/v1/cameras/{}/", cam["id"])))
            .header("authorization", format!("PersonalAccessToken {pat}"))
            .send()
            .await
            .unwrap(),
    )
    .await;

    // CameraManager: everything in the query string, HTTP Basic client authentication.
    let t3 = json_ok(
        http.post(u("/oauth/token"))
            .basic_auth(&cm_id, Some(&cm_secret))
            .query(&[
                ("grant_type", "password"),
                ("scope", "write"),
                ("username", "leak@example.com"),
                ("password", password),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (at3, rt3) = (s(&t3, "access_token"), s(&t3, "refresh_token"));
    let t4 = json_ok(
        http.post(u("/oauth/token"))
            .basic_auth(&cm_id, Some(&cm_secret))
            .query(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt3.as_str()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let at4 = s(&t4, "access_token");
    json_ok(
        http.get(u("/rest/v2.0/users/self"))
            .bearer_auth(&at4)
            .send()
            .await
            .unwrap(),
    )
    .await;
    // The imported (argon2id) client secret via Basic.
    let t5 = json_ok(
        http.post(u("/oauth/token"))
            .basic_auth("imported.client", Some(imported_secret))
            .query(&[
                ("grant_type", "password"),
                ("username", "leak@example.com"),
                ("password", password),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (at5, rt5) = (s(&t5, "access_token"), s(&t5, "refresh_token"));
    // Introspection with the secret in the body; revocation; logout.
    let intro = json_ok(
        http.post(u("/oauth/introspect"))
            .form(&[
                ("client_id", cm_id.as_str()),
                ("client_secret", cm_secret.as_str()),
                ("token", at3.as_str()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(intro["active"], true);
    json_ok(
        http.post(u("/oauth/token-revoke/"))
            .form(&[("client_id", public.as_str()), ("token", rt2.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    json_ok(
        http.delete(u("/rest/v2.0/users/self/tokens/current"))
            .bearer_auth(&at4)
            .send()
            .await
            .unwrap(),
    )
    .await;
    for (what, v) in [
        ("access token 1", at1),
        ("refresh token 1", rt1),
        ("access token 2", at2),
        ("refresh token 2", rt2),
        ("access token 3", at3),
        ("refresh token 3", rt3),
        ("access token 4", at4),
        ("access token 5", at5),
        ("refresh token 5", rt5),
    ] {
        secrets.push((what, v));
    }
    // The device grant: a device code and a user code (the page gets it in the query string,
    // which the access log never records), polled once.
    let device = s(
        &cli(
            &db.url,
            &log,
            &[
                "client",
                "add",
                "--name",
                "tv",
                "--public",
                "--grant",
                "device_code",
                "--json",
            ],
            None,
        ),
        "client_id",
    );
    let codes = json_ok(
        http.post(u("/oauth/device_authorization"))
            .form(&[("client_id", device.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (device_code, user_code) = (s(&codes, "device_code"), s(&codes, "user_code"));
    let page = http
        .get(u(&format!("/device?user_code={user_code}")))
        .send()
        .await
        .unwrap();
    // (This client follows redirects: the page sends a visitor without a session to sign in.)
    assert_eq!(page.url().path(), "/login");
    let pending = http
        .post(u("/oauth/token"))
        .form(&[
            ("client_id", device.as_str()),
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(pending.status(), 400);
    secrets.push(("device code", device_code));
    secrets.push(("user code", user_code.replace('-', "")));
    secrets.push(("user code as shown", user_code));

    // Encoded forms a careless log line would show.
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    secrets.push(("Basic header", b64(&format!("{cm_id}:{cm_secret}"))));
    secrets.push((
        "Basic header",
        b64(&format!("imported.client:{imported_secret}")),
    ));

    // Stop the server abruptly: the WAL is left as it is, unflushed into the main file.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(server);

    let logs = std::fs::read(&log_path).unwrap();
    let text = String::from_utf8_lossy(&logs);
    // The logs really were at trace level and saw the traffic.
    assert!(text.contains("/oauth/token"), "no access log lines");
    assert!(
        text.contains("TRACE") || text.contains("DEBUG"),
        "not at trace level"
    );
    assert!(
        logs.len() > 5_000,
        "suspiciously short log ({} bytes)",
        logs.len()
    );
    let data = database_bytes(&db).await;
    let mut leaks = Vec::new();
    for (what, secret) in &secrets {
        if contains(&logs, secret) {
            leaks.push(format!("{what} in the logs"));
        }
        if contains(&data, secret) {
            leaks.push(format!("{what} in the database"));
        }
    }
    assert!(leaks.is_empty(), "secrets leaked: {leaks:?}");
    eprintln!(
        "leaks: {} secrets searched in {} bytes of logs ({} sqlx lines) and {} bytes of database",
        secrets.len(),
        logs.len(),
        text.lines().filter(|l| l.contains("sqlx")).count(),
        data.len()
    );
    // What the database does hold: digests.
    let digest = hex::encode(camgate_core::secret::digest(&pat));
    let raw_digest = camgate_core::secret::digest(&pat);
    assert!(
        data.windows(32).any(|w| w == raw_digest.as_slice()) || contains(&data, &digest),
        "the PAT's digest is not in the database"
    );
}
