//! Two real `camgate serve` processes on one database: a token issued by one works
//! on the other, revocation on one takes effect on the other at the next request, and
//! concurrent refreshes split across both yield one successor pair.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::common::*;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

struct Node {
    child: Child,
    base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn camgate(db: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_camgate"));
    c.env_remove("CAMGATE_BIND")
        .env_remove("CAMGATE_CONFIG")
        .env("CAMGATE_DATABASE_URL", db);
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(db: &str) -> Node {
    let port = free_port();
    let child = camgate(db)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("CAMGATE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let node = Node {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{}/health/ready", node.base)).send().await {
            if r.status() == 200 {
                return node;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("node did not become ready");
}

#[tokio::test]
async fn two_processes_share_tokens_revocation_and_rotation() {
    let db = TestDb::new().await;
    assert!(camgate(&db.url).arg("migrate").status().unwrap().success());
    let mut add = camgate(&db.url)
        .args([
            "user",
            "add",
            "--email",
            "u@example.com",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(b"pw-123\n").unwrap();
    assert!(add.wait().unwrap().success());
    let out = camgate(&db.url)
        .args(["client", "add", "--name", "app", "--public", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let client: Value = serde_json::from_slice(&out.stdout).unwrap();
    let client_id = client["client_id"].as_str().unwrap().to_string();

    let (a, b) = (start(&db.url).await, start(&db.url).await);
    let http = reqwest::Client::new();
    let token = |base: String, form: Vec<(&'static str, String)>| {
        let http = http.clone();
        async move {
            let r = http
                .post(format!("{base}/oauth/token/"))
                .form(&form)
                .send()
                .await
                .unwrap();
            let st = r.status().as_u16();
            (st, r.json::<Value>().await.unwrap())
        }
    };
    let (st, t) = token(
        a.base.clone(),
        vec![
            ("client_id", client_id.clone()),
            ("grant_type", "password".into()),
            ("username", "u@example.com".into()),
            ("password", "pw-123".into()),
        ],
    )
    .await;
    assert_eq!(st, 200);
    let me = |base: &str, at: &str| http.get(format!("{base}/v1/me/")).bearer_auth(at).send();
    assert_eq!(
        me(&b.base, t["access_token"].as_str().unwrap())
            .await
            .unwrap()
            .status(),
        200
    );

    // Concurrent refreshes of one token, split across the two processes: one pair.
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let futs = (0..20).map(|i| {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        token(
            base,
            vec![
                ("client_id", client_id.clone()),
                ("grant_type", "refresh_token".into()),
                ("refresh_token", rt.clone()),
            ],
        )
    });
    let mut pairs = std::collections::HashSet::new();
    for (st, body) in futures_util::future::join_all(futs).await {
        match st {
            200 => {
                pairs.insert((
                    body["access_token"].to_string(),
                    body["refresh_token"].to_string(),
                ));
            }
            400 => assert_eq!(body["error"], "invalid_grant"),
            _ => panic!("unexpected {st}: {body}"),
        }
    }
    assert_eq!(pairs.len(), 1);
    let (at, new_rt) = pairs.into_iter().next().unwrap();
    let (at, new_rt) = (
        at.trim_matches('"').to_string(),
        new_rt.trim_matches('"').to_string(),
    );
    // Asked repeatedly, so that A's threads remember the token (a SQLite node answers a
    // lookup from memory while the database is unchanged: the revocation below must end that).
    for _ in 0..8 {
        assert_eq!(me(&a.base, &at).await.unwrap().status(), 200);
    }

    // Revocation on B: A refuses at the next request.
    let r = http
        .post(format!("{}/oauth/revoke", b.base))
        .form(&[
            ("client_id", client_id.as_str()),
            ("token", new_rt.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(me(&a.base, &at).await.unwrap().status(), 401);
    assert_eq!(me(&b.base, &at).await.unwrap().status(), 401);
}
