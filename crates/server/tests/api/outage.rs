//! Database outage: while PostgreSQL is unreachable `/health/ready` fails, requests get
//! a quick 503 with Retry-After (never a 500, never a hang), and the node recovers by itself
//! when the database returns.
//!
//! The outage is made with a TCP proxy between camgate and PostgreSQL that the test cuts and
//! restores: from camgate's side this is exactly a database going away (connections reset,
//! new connections refused), and unlike stopping the shared server it does not disturb the
//! other tests running at the same time. Always PostgreSQL: it fails if PostgreSQL is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common::*;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A cuttable TCP proxy to 127.0.0.1:5432.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    /// Bumped on every cut: live connections watch it and close.
    epoch: watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (epoch, _) = watch::channel(0u64);
        let (up2, epoch2) = (up.clone(), epoch.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound); // refused: closed at once
                    continue;
                }
                let mut cut = epoch2.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { port, up, epoch }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.epoch.send_modify(|e| *e += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn outage_gives_503_and_recovery_is_automatic() {
    let db = TestDb::postgres().await;
    let direct = url::Url::parse(&db.url).unwrap();
    let target = format!(
        "{}:{}",
        direct.host_str().unwrap(),
        direct.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(target).await;
    let mut via_proxy = direct.clone();
    via_proxy.set_port(Some(proxy.port)).unwrap();
    let mut config = test_config(via_proxy.as_str());
    config.store.acquire_timeout = Duration::from_millis(1000);
    let app = spawn_on(db, config).await;
    app.create_user("u@example.com", PASSWORD).await;
    let client = app.public_client("angelcam").await;
    let t = app.password_token(&client, "u@example.com", PASSWORD).await;
    let token = t["access_token"].as_str().unwrap().to_string();
    // Requests that hang are failures: every call below must answer well within this.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    assert_eq!(
        http.get(app.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Load throughout: every answer must be 200 or 503, never a 500 or a hang.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (http, url, token, stop) = (
            http.clone(),
            app.url("/v1/me/"),
            token.clone(),
            stop.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let r = http
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("request hung or failed");
                seen.push(r.status().as_u16());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let r = http
        .get(app.url("/v1/me/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], 503);
    let r = http
        .post(app.url("/oauth/token/"))
        .form(&[
            ("client_id", client.as_str()),
            ("grant_type", "password"),
            ("username", "u@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    tokio::time::sleep(Duration::from_millis(500)).await;

    proxy.restore();
    let mut ready = false;
    for _ in 0..40 {
        if http
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(ready, "the node did not recover by itself");
    let mut ok = false;
    for _ in 0..20 {
        if http
            .get(app.url("/v1/me/"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
            == 200
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "requests did not recover");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    for h in load {
        all.extend(h.await.unwrap());
    }
    assert!(
        all.iter().all(|s| *s == 200 || *s == 503),
        "statuses under load: {all:?}"
    );
    assert!(all.contains(&503), "the load saw the outage");
    assert_eq!(*all.last().unwrap(), 200, "the load ends healthy");
}
