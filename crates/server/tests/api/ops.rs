//! Operations: request ids, health endpoints, Prometheus metrics, `--log-format json`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common::*;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The value of one series in a Prometheus text page (0 when absent).
fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name_and_labels)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

async fn scrape(app: &TestApp) -> String {
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    r.text().await.unwrap()
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let app = spawn_app().await;
    // A sane incoming id is kept.
    let r = app
        .http
        .get(app.url("/health/alive"))
        .header("x-request-id", "edge-1234.abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "edge-1234.abc");
    // None: one is generated, different per request.
    let a = app.http.get(app.url("/health/alive")).send().await.unwrap();
    let b = app.http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(b.status(), 404);
    let (a, b) = (
        a.headers()["x-request-id"].to_str().unwrap().to_string(),
        b.headers()["x-request-id"].to_str().unwrap().to_string(),
    );
    assert_eq!(a.len(), 32);
    assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    assert_ne!(a, b);
    // An insane one (too long, or with spaces) is replaced.
    for bad in ["x".repeat(200), "a b".to_string()] {
        let r = app
            .http
            .get(app.url("/health/alive"))
            .header("x-request-id", bad.as_str())
            .send()
            .await
            .unwrap();
        let got = r.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(got, bad);
        assert_eq!(got.len(), 32);
    }
    // Error answers carry it too (a token-endpoint error).
    let r = app.token_form(&[("grant_type", "password")]).await;
    assert!(r.status().is_client_error());
    assert!(r.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn health_alive_and_ready() {
    let app = spawn_app().await;
    for path in ["/health/alive", "/health/ready"] {
        let r = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v, serde_json::json!({"status": "ok"}));
    }
}

#[tokio::test]
async fn metrics_count_requests_tokens_failures_theft_and_sweeps() {
    let app = spawn_app_with(|c| c.refresh_grace_secs = 0).await;
    let before = scrape(&app).await;
    let me_ok = "camgate_http_requests_total{route=\"/v1/me/\",method=\"GET\",status=\"200\"}";
    let me_401 = "camgate_http_requests_total{route=\"/v1/me/\",method=\"GET\",status=\"401\"}";
    let issued_pw = "camgate_tokens_issued_total{grant=\"password\",profile=\"angelcam\"}";
    let issued_rt = "camgate_tokens_issued_total{grant=\"refresh_token\",profile=\"angelcam\"}";
    let theft = "camgate_theft_detections_total";
    let failures = "camgate_login_failures_total";
    let sweeps = "camgate_sweeper_deleted_rows_total";
    let unmatched =
        "camgate_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}";
    let camera =
        "camgate_http_requests_total{route=\"/v1/cameras/{id}/\",method=\"GET\",status=\"401\"}";

    app.create_user("m@example.com", PASSWORD).await;
    let client = app.public_client("angelcam").await;
    let t = app.password_token(&client, "m@example.com", PASSWORD).await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(app.get_bearer("/v1/me/", access).await.status(), 200);
    assert_eq!(app.get_bearer("/v1/me/", "nope").await.status(), 401);
    assert_eq!(
        app.get_bearer("/v1/cameras/42/", "nope").await.status(),
        401
    );
    assert_eq!(
        app.http
            .get(app.url("/some/raw/path/123"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // A failed login.
    let r = app
        .token_form(&[
            ("client_id", &client),
            ("grant_type", "password"),
            ("username", "m@example.com"),
            ("password", "wrong"),
        ])
        .await;
    assert_eq!(r.status(), 400);
    // Rotation, then a replay of the spent refresh token: theft detection.
    let rt = t["refresh_token"].as_str().unwrap();
    let refresh = [
        ("client_id", client.as_str()),
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
    ];
    assert_eq!(app.token_form(&refresh).await.status(), 200);
    assert_eq!(app.token_form(&refresh).await.status(), 400);
    // The revoked family is swept once retention has passed.
    app.clock.advance(app.config.token_retention_secs + 1);
    let r = camgate_server::sweep_once(&app.core, app.config.token_retention_secs, 100)
        .await
        .unwrap();
    assert!(r.deleted > 0);

    let after = scrape(&app).await;
    for (name, at_least) in [
        (me_ok, 1.0),
        (me_401, 1.0),
        (camera, 1.0),
        (unmatched, 1.0),
        (issued_pw, 1.0),
        (issued_rt, 1.0),
        (theft, 1.0),
        (failures, 1.0),
        (sweeps, r.deleted as f64),
    ] {
        assert!(
            series(&after, name) - series(&before, name) >= at_least,
            "{name} did not move:\n{after}"
        );
    }
    // Raw paths never become labels.
    assert!(!after.contains("/some/raw/path"), "{after}");
    assert!(!after.contains("/v1/cameras/42/"), "{after}");
    // Latency histogram per route template.
    assert!(after.contains("# TYPE camgate_http_request_duration_seconds histogram"));
    assert!(
        series(
            &after,
            "camgate_http_request_duration_seconds_count{route=\"/v1/me/\",method=\"GET\"}"
        ) >= 2.0
    );
    assert!(after.contains(
        "camgate_http_request_duration_seconds_bucket{route=\"/v1/me/\",method=\"GET\",le=\"+Inf\"}"
    ));
    // Gauges: hash queue depth (idle now) and the database pool.
    assert!(
        after.contains("\ncamgate_password_hash_queue_depth 0\n"),
        "{after}"
    );
    let pool = if use_postgres() { "main" } else { "read" };
    assert!(
        after.contains(&format!(
            "camgate_db_pool_connections{{pool=\"{pool}\",state=\"max\"}}"
        )),
        "{after}"
    );
    assert!(after.contains(&format!(
        "camgate_db_pool_connections{{pool=\"{pool}\",state=\"in_use\"}}"
    )));
}

/// `camgate serve --log-format json`: one JSON object per line, the access line carries the
/// request id the client sent.
#[tokio::test]
async fn serve_log_format_json_carries_request_id() {
    let db = TestDb::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_camgate"))
        .env_remove("CAMGATE_BIND")
        .env_remove("CAMGATE_CONFIG")
        .env_remove("CAMGATE_LOG")
        .env("CAMGATE_DATABASE_URL", &db.url)
        .args([
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--log-format",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..200 {
        if let Ok(r) = http
            .get(format!("{base}/health/ready"))
            .header("x-request-id", "json-log-test-1")
            .send()
            .await
        {
            if r.status() == 200 {
                assert_eq!(r.headers()["x-request-id"], "json-log-test-1");
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "server did not start");
    let mut found = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while found.is_none() && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let v: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
            if v["fields"]["message"] == "request" && v["span"]["request_id"] == "json-log-test-1" {
                found = Some(v);
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let v = found.expect("no JSON access-log line with the request id");
    assert_eq!(v["fields"]["path"], "/health/ready");
    assert_eq!(v["fields"]["status"], 200);
    assert_eq!(v["target"], "camgate::access");
}

/// X-Forwarded-For counts only from a trusted proxy (default: loopback).
#[tokio::test]
async fn forwarded_for_from_trusted_proxy_sets_the_client_address() {
    for (trusted, expect) in [(true, "203.0.113.7"), (false, "127.0.0.1")] {
        let app = spawn_app_with(|c| {
            if !trusted {
                c.trusted_proxies.clear();
            }
        })
        .await;
        let client = app.public_client("angelcam").await;
        let r = app
            .http
            .post(app.url("/oauth/token/"))
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.7, 127.0.0.1")
            .form(&[
                ("client_id", client.as_str()),
                ("grant_type", "password"),
                ("username", "x@example.com"),
                ("password", "wrong"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let events = app.core.store.recent_audit(10).await.unwrap();
        let failed = events
            .iter()
            .find(|e| e.kind == "login_failed")
            .expect("a login_failed event");
        assert_eq!(failed.ip.as_deref(), Some(expect), "trusted={trusted}");
    }
}
