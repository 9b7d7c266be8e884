//! Resource limits, black-box: oversized and overlong request heads, heads
//! dribbled slowly (slow-loris), idle keep-alive connections, the connection cap, the request
//! deadline (a body dribbled slowly), the bounded password-hashing queue, and the per-IP rate
//! limit on the token endpoint. Raw TCP where an HTTP client would refuse to misbehave.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common::*;

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// Sends `raw` and reads until the server closes or `wait` passes; returns what came back.
async fn exchange(app: &TestApp, raw: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr(app)).await.unwrap();
    // The server may answer (and close) before it has read everything: ignore write errors.
    let _ = s.write_all(raw).await;
    read_until_close(&mut s, wait).await
}

async fn read_until_close(s: &mut TcpStream, wait: Duration) -> String {
    let mut out = Vec::new();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(raw: &str) -> u16 {
    raw.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn body_of(raw: &str) -> Value {
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn oversized_or_overlong_heads_are_431() {
    let app = spawn_app_with(|c| c.limits.max_header_bytes = 8 * 1024).await;
    // One header of 20 KB.
    let big = format!(
        "GET /health/alive HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let got = exchange(&app, big.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(status_of(&got), 431, "{got}");
    // A 1 MB scope in the query string (CameraManager puts parameters there).
    let scope = format!(
        "POST /oauth/token?grant_type=password&scope={} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        "read%20".repeat(150_000)
    );
    let got = exchange(&app, scope.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(status_of(&got), 431, "{}", &got[..got.len().min(200)]);
    // 500 small headers (hyper's cap is 100).
    let mut many = String::from("GET /health/alive HTTP/1.1\r\nHost: x\r\n");
    for i in 0..500 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let got = exchange(&app, many.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(status_of(&got), 431, "{got}");
    // Through a real client too.
    let r = app
        .http
        .get(app.url("/health/alive"))
        .header("x-big", "b".repeat(10_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    // The server is fine afterwards.
    let r = app.http.get(app.url("/health/alive")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn malformed_heads_are_400_and_the_connection_closes() {
    let app = spawn_app().await;
    for raw in [
        &b"GET /health/alive HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n"[..],
        b"GET /health/alive HTTP/1.1\r\nHost: x\r\nX-Nul: a\0b\r\n\r\n",
        b"GET /health/alive HTTP/1.1\r\nHost: x\r\n folded: v\r\n\r\n",
        b"GET /health alive HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n",
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let got = exchange(&app, raw, Duration::from_secs(5)).await;
        let st = status_of(&got);
        assert!(
            st == 400 || (got.is_empty()),
            "{:?} -> {got}",
            String::from_utf8_lossy(raw)
        );
    }
    let r = app.http.get(app.url("/health/alive")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Opens a connection that sends a request head one small piece at a time, forever (until
/// the server closes it). Returns when the server closed it, with how long that took.
async fn dribble(addr: String, every: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.ok()?;
    if s.write_all(b"GET /health/alive HTTP/1.1\r\nHost: x\r\n")
        .await
        .is_err()
    {
        return Some(started.elapsed());
    }
    let mut buf = [0u8; 1024];
    for i in 0..200 {
        tokio::select! {
            r = s.read(&mut buf) => {
                // The server answered (503 over the cap) or closed: either way we are out.
                let _ = r;
                return Some(started.elapsed());
            }
            _ = tokio::time::sleep(every) => {}
        }
        if s.write_all(format!("X-{i}: v\r\n").as_bytes())
            .await
            .is_err()
        {
            return Some(started.elapsed());
        }
    }
    None
}

#[tokio::test]
async fn slow_loris_heads_are_cut_off_and_the_cap_answers_503() {
    let _quiet = quiet().await;
    let app = spawn_app_with(|c| {
        c.limits.header_read_timeout = Duration::from_secs(1);
        c.limits.max_connections = 16;
    })
    .await;
    // 16 attackers fill every slot, each sending a header line every 200 ms.
    let attackers: Vec<_> = (0..16)
        .map(|_| tokio::spawn(dribble(addr(&app), Duration::from_millis(200))))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A 17th connection is answered at once with 503 + Retry-After, not left hanging.
    let t = Instant::now();
    let got = exchange(
        &app,
        b"GET /health/alive HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(status_of(&got), 503, "{got}");
    assert!(got.to_ascii_lowercase().contains("retry-after: 1"), "{got}");
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    // Every attacker is cut off by the head deadline although it keeps sending.
    for a in attackers {
        let took = a
            .await
            .unwrap()
            .expect("the server never closed a dribbling connection");
        assert!(took < Duration::from_secs(4), "cut off after {took:?}");
    }
    // The slots are free again: normal requests are served.
    let r = app.http.get(app.url("/health/alive")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn attackers_below_the_cap_do_not_delay_other_clients() {
    let _quiet = quiet().await;
    let app = spawn_app_with(|c| {
        c.limits.header_read_timeout = Duration::from_secs(2);
        c.limits.max_connections = 64;
    })
    .await;
    let attackers: Vec<_> = (0..32)
        .map(|_| tokio::spawn(dribble(addr(&app), Duration::from_millis(100))))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, token) = app.user_with_token("loris@example.com").await;
    for _ in 0..10 {
        let t = Instant::now();
        let r = app.get_bearer("/v1/me/", &token).await;
        assert_eq!(r.status(), 200);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
    for a in attackers {
        assert!(a.await.unwrap().is_some());
    }
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let _quiet = quiet().await;
    let app = spawn_app_with(|c| c.limits.header_read_timeout = Duration::from_secs(1)).await;
    let mut s = TcpStream::connect(addr(&app)).await.unwrap();
    s.write_all(b"GET /health/alive HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Now stay silent: the connection is closed after the head deadline.
    let t = Instant::now();
    let rest = read_until_close(&mut s, Duration::from_secs(5)).await;
    assert!(rest.is_empty(), "{rest}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "idle connection kept {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn slow_bodies_hit_the_request_deadline_in_the_surface_shape() {
    let _quiet = quiet().await;
    let app = spawn_app_with(|c| c.limits.request_timeout = Duration::from_secs(1)).await;
    let (_, token) = app.user_with_token("slow@example.com").await;
    for (head, shape) in [
        (
            "POST /oauth/token/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n".to_string(),
            "oauth",
        ),
        (
            format!("POST /v1/cameras/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"),
            "angelcam",
        ),
    ] {
        let t = Instant::now();
        let mut s = TcpStream::connect(addr(&app)).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        // One body byte every 300 ms: each arrives well within any idle timeout.
        let mut got = String::new();
        let mut buf = [0u8; 4096];
        for _ in 0..30 {
            tokio::select! {
                r = s.read(&mut buf) => {
                    let n = r.unwrap_or(0);
                    got.push_str(&String::from_utf8_lossy(&buf[..n]));
                    got.push_str(&read_until_close(&mut s, Duration::from_millis(500)).await);
                    break;
                }
                _ = tokio::time::sleep(Duration::from_millis(300)) => {
                    let _ = s.write_all(b"a").await;
                }
            }
        }
        assert_eq!(status_of(&got), 503, "{got}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert!(got.to_ascii_lowercase().contains("retry-after: 1"), "{got}");
        let body = body_of(&got);
        match shape {
            "oauth" => assert_eq!(body["error"], "temporarily_unavailable", "{got}"),
            _ => {
                assert_eq!(body["status"], 503, "{got}");
                assert_eq!(body["title"], "request_timeout", "{got}");
            }
        }
        assert!(got.to_ascii_lowercase().contains("x-frame-options: deny"), "{got}");
    }
}

#[tokio::test]
async fn a_full_password_hashing_queue_answers_503_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.hash_workers = 1;
        c.hash_queue = 0;
    })
    .await;
    app.create_user("busy@example.com", PASSWORD).await;
    let client = app.public_client("angelcam").await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (http, url, client) = (app.http.clone(), app.url("/oauth/token/"), client.clone());
            tokio::spawn(async move {
                let r = http
                    .post(url)
                    .form(&[
                        ("client_id", client.as_str()),
                        ("grant_type", "password"),
                        ("username", "busy@example.com"),
                        ("password", PASSWORD),
                    ])
                    .send()
                    .await
                    .unwrap();
                let st = r.status().as_u16();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                let body: Value = r.json().await.unwrap();
                (st, retry, body)
            })
        })
        .collect();
    let mut ok = 0;
    let mut busy = 0;
    for t in tasks {
        let (st, retry, body) = t.await.unwrap();
        match st {
            200 => ok += 1,
            503 => {
                busy += 1;
                assert_eq!(retry.as_deref(), Some("1"));
                assert_eq!(body["error"], "temporarily_unavailable");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(ok >= 1, "at least the first login is served");
    assert!(
        busy >= 1,
        "the queue of one must overflow under 16 concurrent logins"
    );
    // Once the burst is over, logins work again.
    app.password_token(&client, "busy@example.com", PASSWORD)
        .await;
}

#[tokio::test]
async fn token_endpoint_rate_limit_per_ip() {
    let app = spawn_app_with(|c| {
        c.limits.token_rate_per_minute = 6;
        c.limits.token_rate_burst = 3;
    })
    .await;
    let (_, token) = app.user_with_token("rl@example.com").await; // 1st token request
    let form = [("client_id", "nobody"), ("grant_type", "password")];
    for _ in 0..2 {
        let r = app.token_form(&form).await;
        assert_eq!(r.status(), 401);
    }
    for path in ["/oauth/token/", "/oauth/token"] {
        let r = app
            .http
            .post(app.url(path))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=10).contains(&retry), "{retry}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "slow_down");
        assert!(body["error_description"]
            .as_str()
            .unwrap()
            .contains("retry"));
    }
    // Other routes are not limited.
    for _ in 0..5 {
        assert_eq!(app.get_bearer("/v1/me/", &token).await.status(), 200);
    }
    let r = app
        .http
        .post(app.url("/oauth/revoke"))
        .form(&[("client_id", "nobody"), ("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let app = spawn_app().await;
    let (_, token) = app.user_with_token("bye@example.com").await;
    // A keep-alive connection with a request in flight when shutdown starts.
    let http = app.http.clone();
    let url = app.url("/v1/me/");
    let inflight = tokio::spawn(async move { http.get(url).bearer_auth(token).send().await });
    let base = app.base.clone();
    drop(app);
    let r = inflight.await.unwrap();
    // Either it completed, or it was never accepted; never a half answer.
    if let Ok(r) = r {
        assert_eq!(r.status(), 200);
    }
    // The listener is gone.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(reqwest::get(format!("{base}/health/alive")).await.is_err());
}
