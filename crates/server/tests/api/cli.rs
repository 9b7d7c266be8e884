#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Black-box tests of the `camgate` command line (DESIGN.md §6): the real binary against a
//! fresh database (SQLite, or PostgreSQL with `CAMGATE_TEST_DATABASE=postgres`).
use crate::common::*;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_camgate");

/// A command for the binary with no `CAMGATE_*` variables inherited from the caller.
fn camgate() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("CAMGATE_") {
            c.env_remove(k);
        }
    }
    c.env("CAMGATE_LOG", "warn");
    c
}

/// Runs `camgate --database-url URL args...`, feeding `stdin` if given.
fn run(db: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = camgate();
    c.arg("--database-url").arg(db).args(args);
    run_cmd(c, stdin)
}

fn run_cmd(mut c: Command, stdin: Option<&str>) -> Output {
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// Asserts success and parses stdout as one JSON object.
fn ok_json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        stderr(o)
    );
    serde_json::from_str(stdout(o).trim()).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

fn assert_failed(o: &Output, needle: &str) {
    assert!(
        !o.status.success(),
        "expected failure\nstdout: {}",
        stdout(o)
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(o);
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "stderr should mention {needle:?}: {err}"
    );
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A spawned `camgate serve`, killed when dropped (also on a failed assertion).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_ready(server: &mut Server, base: &str) {
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Some(status) = server.0.try_wait().unwrap() {
            panic!("camgate serve exited early: {status}");
        }
        if let Ok(r) = http.get(format!("{base}/health/ready")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("camgate serve did not become ready");
}

#[tokio::test]
async fn migrate_is_idempotent() {
    let db = TestDb::new().await;
    for _ in 0..2 {
        let o = run(&db.url, &["migrate"], None);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o).trim(), "migrations applied");
    }
}

#[tokio::test]
async fn user_add_reads_the_password_from_stdin_and_refuses_duplicates() {
    let db = TestDb::new().await;
    let o = run(
        &db.url,
        &[
            "user",
            "add",
            "--email",
            "a@b.c",
            "--password-stdin",
            "--json",
        ],
        Some("pw from stdin\n"),
    );
    let v = ok_json(&o);
    assert_eq!(v["email"], "a@b.c");
    assert_eq!(v["is_admin"], false);
    assert_eq!(v["password"], Value::Null, "a given password is not echoed");
    assert!(v["id"].as_i64().unwrap() > 0);
    assert!(!stdout(&o).contains("pw from stdin"));

    // Plain output, no --json.
    let o = run(
        &db.url,
        &["user", "add", "--email", "d@e.f", "--password-stdin"],
        Some("another\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("d@e.f"), "{}", stdout(&o));

    // The same email again (also differently cased).
    for email in ["a@b.c", "A@B.C"] {
        let o = run(
            &db.url,
            &["user", "add", "--email", email, "--password-stdin"],
            Some("pw\n"),
        );
        assert_failed(&o, "already exists");
    }
    // An empty password on stdin.
    let o = run(
        &db.url,
        &["user", "add", "--email", "x@y.z", "--password-stdin"],
        Some(""),
    );
    assert_failed(&o, "password");
    // A malformed email.
    let o = run(
        &db.url,
        &["user", "add", "--email", "not-an-email", "--password-stdin"],
        Some("pw\n"),
    );
    assert_failed(&o, "email");
}

#[tokio::test]
async fn user_add_without_password_generates_one() {
    let db = TestDb::new().await;
    let v = ok_json(&run(
        &db.url,
        &["user", "add", "--email", "gen@example.com", "--json"],
        None,
    ));
    let pw = v["password"].as_str().unwrap();
    assert_eq!(pw.len(), 30);
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
}

#[tokio::test]
async fn client_add_variants() {
    let db = TestDb::new().await;
    // Confidential (default).
    let v = ok_json(&run(
        &db.url,
        &["client", "add", "--name", "X", "--json"],
        None,
    ));
    let id = v["client_id"].as_str().unwrap();
    assert_eq!(id.len(), 40);
    assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(v["client_secret"].as_str().is_some_and(|s| s.len() >= 27));
    assert_eq!(v["name"], "X");
    assert_eq!(v["public"], false);
    assert_eq!(v["profile"], "angelcam");
    assert_eq!(v["scope"], "read write");

    // Public: no secret.
    let v = ok_json(&run(
        &db.url,
        &["client", "add", "--name", "P", "--public", "--json"],
        None,
    ));
    assert_eq!(v["client_id"].as_str().unwrap().len(), 40);
    assert_eq!(v["client_secret"], Value::Null);
    assert_eq!(v["public"], true);
    assert!(!v["grants"]
        .as_array()
        .unwrap()
        .contains(&Value::from("client_credentials")));

    // Restricted grants and scopes, a loopback http redirect URI.
    let v = ok_json(&run(
        &db.url,
        &[
            "client",
            "add",
            "--name",
            "R",
            "--grant",
            "password",
            "--grant",
            "refresh_token",
            "--scope",
            "read",
            "--redirect-uri",
            "http://127.0.0.1:9000/cb",
            "--json",
        ],
        None,
    ));
    assert_eq!(
        v["grants"],
        serde_json::json!(["password", "refresh_token"])
    );
    assert_eq!(v["scope"], "read");
    assert_eq!(
        v["redirect_uris"],
        serde_json::json!(["http://127.0.0.1:9000/cb"])
    );

    // Plain http off loopback is refused.
    let o = run(
        &db.url,
        &[
            "client",
            "add",
            "--name",
            "Y",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
        None,
    );
    assert_failed(&o, "loopback");
    // Unknown profile, grant and scope are refused by name.
    let o = run(
        &db.url,
        &["client", "add", "--name", "Z", "--profile", "nope"],
        None,
    );
    assert_failed(&o, "nope");
    let o = run(
        &db.url,
        &["client", "add", "--name", "Z", "--grant", "implicit"],
        None,
    );
    assert_failed(&o, "implicit");
    let o = run(
        &db.url,
        &["client", "add", "--name", "Z", "--scope", "admin"],
        None,
    );
    assert_failed(&o, "admin");
}

#[tokio::test]
async fn client_add_with_imported_id_and_secret() {
    let db = TestDb::new().await;
    let args = [
        "client",
        "add",
        "--client-id",
        "cameramanager.test",
        "--client-secret-stdin",
        "--profile",
        "cameramanager",
        "--name",
        "CM",
        "--json",
    ];
    let o = run(&db.url, &args, Some("qwertyuiopasdfghjklzxcvbnm12345\n"));
    let v = ok_json(&o);
    assert_eq!(v["client_id"], "cameramanager.test");
    assert_eq!(
        v["client_secret"],
        Value::Null,
        "an imported secret is not echoed"
    );
    assert_eq!(v["profile"], "cameramanager");
    assert_eq!(v["public"], false);
    assert!(!stdout(&o).contains("qwertyuiop"));
    // The same id again.
    let o = run(&db.url, &args, Some("qwertyuiopasdfghjklzxcvbnm12345\n"));
    assert_failed(&o, "already exists");
}

#[tokio::test]
async fn pat_add_prints_the_token_once() {
    let db = TestDb::new().await;
    ok_json(&run(
        &db.url,
        &[
            "user",
            "add",
            "--email",
            "a@b.c",
            "--password-stdin",
            "--json",
        ],
        Some("pw\n"),
    ));
    let v = ok_json(&run(
        &db.url,
        &["pat", "add", "--user", "a@b.c", "--name", "t", "--json"],
        None,
    ));
    let token = v["token"].as_str().unwrap();
    assert!(token.starts_with("cgpat_"), "{token}");
    assert!(token.len() > 30);
    assert_eq!(v["name"], "t");
    assert_eq!(v["scope"], "read write");
    assert_eq!(v["expires_at"], Value::Null);

    let v = ok_json(&run(
        &db.url,
        &[
            "pat",
            "add",
            "--user",
            "a@b.c",
            "--name",
            "ro",
            "--scope",
            "read",
            "--expires-in-days",
            "7",
            "--json",
        ],
        None,
    ));
    assert_eq!(v["scope"], "read");
    assert!(v["expires_at"].as_i64().is_some());

    let o = run(
        &db.url,
        &["pat", "add", "--user", "nobody@b.c", "--name", "t"],
        None,
    );
    assert_failed(&o, "nobody@b.c");
    let o = run(
        &db.url,
        &[
            "pat",
            "add",
            "--user",
            "a@b.c",
            "--name",
            "t",
            "--expires-in-days",
            "0",
        ],
        None,
    );
    assert_failed(&o, "expir");
}

#[tokio::test]
async fn database_url_from_the_environment() {
    let db = TestDb::new().await;
    let mut c = camgate();
    c.env("CAMGATE_DATABASE_URL", &db.url).args([
        "user",
        "add",
        "--email",
        "env@example.com",
        "--password-stdin",
        "--json",
    ]);
    let v = ok_json(&run_cmd(c, Some("pw\n")));
    assert_eq!(v["email"], "env@example.com");
    // The flag names the same database: the user is there.
    let o = run(
        &db.url,
        &[
            "user",
            "add",
            "--email",
            "env@example.com",
            "--password-stdin",
        ],
        Some("pw\n"),
    );
    assert_failed(&o, "already exists");
    // And the flag wins over the environment.
    let other = TestDb::new().await;
    let mut c = camgate();
    c.env("CAMGATE_DATABASE_URL", &db.url)
        .arg("--database-url")
        .arg(&other.url)
        .args([
            "user",
            "add",
            "--email",
            "env@example.com",
            "--password-stdin",
        ]);
    let o = run_cmd(c, Some("pw\n"));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[tokio::test]
async fn serve_uses_what_the_cli_created() {
    let db = TestDb::new().await;
    ok_json(&run(
        &db.url,
        &[
            "user",
            "add",
            "--email",
            "a@b.c",
            "--password-stdin",
            "--json",
        ],
        Some("secret\n"),
    ));
    let pat = ok_json(&run(
        &db.url,
        &["pat", "add", "--user", "a@b.c", "--name", "t", "--json"],
        None,
    ))["token"]
        .as_str()
        .unwrap()
        .to_string();
    ok_json(&run(
        &db.url,
        &[
            "client",
            "add",
            "--client-id",
            "cameramanager.test",
            "--client-secret-stdin",
            "--profile",
            "cameramanager",
            "--name",
            "CM",
            "--json",
        ],
        Some("qwertyuiopasdfghjklzxcvbnm12345\n"),
    ));
    let public = ok_json(&run(
        &db.url,
        &["client", "add", "--name", "P", "--public", "--json"],
        None,
    ))["client_id"]
        .as_str()
        .unwrap()
        .to_string();

    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut c = camgate();
    c.arg("--database-url")
        .arg(&db.url)
        .args(["serve", "--bind", &bind])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut server = Server(c.spawn().unwrap());
    let base = format!("http://{bind}");
    wait_ready(&mut server, &base).await;
    let http = reqwest::Client::new();

    // The PAT.
    let r = http
        .get(format!("{base}/v1/me/"))
        .header("authorization", format!("PersonalAccessToken {pat}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["email"], "a@b.c");
    assert_eq!(me.as_object().unwrap().len(), 5);

    // The imported CameraManager client, with spec 003's request.
    let r = http
        .post(format!(
            "{base}/oauth/token?grant_type=password&scope=write&username=a%40b.c&password=secret"
        ))
        .header("accept", "application/json")
        .header(
            "authorization",
            "Basic Y2FtZXJhbWFuYWdlci50ZXN0OnF3ZXJ0eXVpb3Bhc2RmZ2hqa2x6eGN2Ym5tMTIzNDU=",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["expires_in"], 43199);
    assert_eq!(t["scope"], "write");

    // The public client, with spec 001's request.
    let r = http
        .post(format!("{base}/oauth/token/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id={public}&grant_type=password&username=a%40b.c&password=secret"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 36000);
    let r = http
        .get(format!("{base}/v1/me/"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(server);
}

/// Log lines written to a pipe (a file, a log collector) are plain text: no ANSI colour
/// escapes, with `NO_COLOR` unset too (a terminal gets colour).
#[tokio::test]
async fn serve_logs_to_a_pipe_without_colour() {
    let db = TestDb::new().await;
    let bind = format!("127.0.0.1:{}", free_port());
    let mut c = camgate();
    c.env_remove("NO_COLOR")
        .env("CAMGATE_LOG", "info")
        .arg("--database-url")
        .arg(&db.url)
        .args(["serve", "--bind", &bind])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut server = Server(c.spawn().unwrap());
    let stderr = server.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    wait_ready(&mut server, &format!("http://{bind}")).await;
    // Read until the access line of a readiness probe (it follows `listening`).
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !lines.iter().any(|l: &String| l.contains("/health/ready")) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
    }
    drop(server);
    let log = lines.join("\n");
    assert!(
        log.contains(&format!(" INFO camgate: listening local={bind} ")),
        "no plain `listening` line: {log:?}"
    );
    assert!(
        log.contains(" camgate::access: request method=GET path=/health/ready status=200 "),
        "no plain access line: {log:?}"
    );
    assert!(
        !log.contains("\x1b["),
        "ANSI escapes in piped logs: {log:?}"
    );
}

#[tokio::test]
async fn serve_demo_refuses_a_non_loopback_bind() {
    let db = TestDb::new().await;
    let port = free_port();
    let o = run(
        &db.url,
        &["serve", "--demo", "--bind", &format!("0.0.0.0:{port}")],
        None,
    );
    assert_failed(&o, "loopback");
    let mut c = camgate();
    c.env("CAMGATE_DEMO", "true")
        .arg("--database-url")
        .arg(&db.url)
        .args(["serve", "--bind", &format!("0.0.0.0:{port}")]);
    assert_failed(&run_cmd(c, None), "loopback");
}

#[tokio::test]
async fn a_bad_bind_or_unknown_command_fails() {
    let db = TestDb::new().await;
    let o = run(&db.url, &["serve", "--bind", "not-an-address"], None);
    assert_failed(&o, "not-an-address");
    let o = run(&db.url, &["frobnicate"], None);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("frobnicate"), "{}", stderr(&o));
}
