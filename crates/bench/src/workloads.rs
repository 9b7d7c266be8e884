//! The requests the scenarios send, and the fixtures they need first (obtained over HTTP the
//! way a client would).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};

use crate::http::{self, Body, Reply, Target};
use crate::load::{Outcome, Workload};

/// The demo fixtures `camgate serve --demo` creates (crates/server/src/demo.rs).
pub const DEMO_EMAIL: &str = "user@example.com";
pub const DEMO_PASSWORD: &str = "secret";
/// The demo public client (Angelcam profile: opaque tokens, rotating refresh tokens).
pub const DEMO_PUBLIC_CLIENT: &str = "DBaJcGbAT2Tbvbrz0fLh1uRmYURprJAQPxwFsgoo";

pub const TOKEN_PATH: &str = "/oauth/token/";

/// An access token and, if the client may refresh, a refresh token.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: Option<String>,
}

fn tokens_from(reply: &Reply) -> anyhow::Result<Tokens> {
    let v = reply.json();
    let access = v
        .get("access_token")
        .and_then(|t| t.as_str())
        .ok_or_else(|| anyhow!("no access_token in {}", reply.describe()))?;
    Ok(Tokens {
        access: access.to_string(),
        refresh: v
            .get("refresh_token")
            .and_then(|t| t.as_str())
            .map(str::to_string),
    })
}

/// The form body of a password grant.
pub fn password_form(client_id: &str, username: &str, password: &str) -> Bytes {
    http::form(&[
        ("grant_type", "password"),
        ("client_id", client_id),
        ("username", username),
        ("password", password),
    ])
}

/// One password grant, waiting out 503s (Retry-After) like a polite client.
pub async fn password_grant(
    target: &Target,
    client_id: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<Tokens> {
    for _ in 0..50 {
        let req = target.post_form(TOKEN_PATH, password_form(client_id, username, password))?;
        let reply = http::once(target.addr, req, Duration::from_secs(30)).await?;
        match reply.status {
            StatusCode::OK => return tokens_from(&reply),
            StatusCode::SERVICE_UNAVAILABLE => {
                let secs = http::retry_after(&reply.headers).unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(secs)).await;
            }
            _ => bail!("password grant failed: {}", reply.describe()),
        }
    }
    bail!("password grant: still 503 after 50 attempts")
}

/// `n` password grants for the demo user with the demo public client, a few at a time.
pub async fn demo_grants(target: &Target, n: usize) -> anyhow::Result<Vec<Tokens>> {
    let mut out = Vec::with_capacity(n);
    let mut set = tokio::task::JoinSet::new();
    let mut started = 0;
    // Enough in flight to keep the server's hashing pool busy, not enough to overflow it.
    let parallel = 8;
    while out.len() < n {
        while started < n && set.len() < parallel {
            let t = target.clone();
            set.spawn(async move {
                password_grant(&t, DEMO_PUBLIC_CLIENT, DEMO_EMAIL, DEMO_PASSWORD).await
            });
            started += 1;
        }
        match set.join_next().await {
            Some(r) => out.push(r??),
            None => break,
        }
    }
    Ok(out)
}

/// `GET path` with a fixed Authorization header (or none); 200 is the expected answer.
pub struct Get {
    pub path: String,
    pub auth: Option<HeaderValue>,
}

impl Get {
    /// No Authorization header.
    pub fn plain(path: &str) -> Self {
        Self {
            path: path.to_string(),
            auth: None,
        }
    }

    pub fn bearer(path: &str, token: &str) -> anyhow::Result<Self> {
        Self::with_scheme(path, "Bearer", token)
    }

    /// `Authorization: <scheme> <token>` (`JWT` for CAM2 tokens).
    pub fn with_scheme(path: &str, scheme: &str, token: &str) -> anyhow::Result<Self> {
        Ok(Self {
            path: path.to_string(),
            auth: Some(
                HeaderValue::from_str(&format!("{scheme} {token}"))
                    .map_err(|_| anyhow!("bad token"))?,
            ),
        })
    }
}

/// The form body of a client-credentials grant (RFC 6749 §4.4.2), the client authenticating
/// with body parameters (§2.3.1).
pub fn client_credentials_form(client_id: &str, secret: &str) -> Bytes {
    http::form(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
    ])
}

/// One client-credentials grant: the access token and its `token_type`.
pub async fn client_credentials_token(
    target: &Target,
    client_id: &str,
    secret: &str,
) -> anyhow::Result<(String, String)> {
    let req = target.post_form(TOKEN_PATH, client_credentials_form(client_id, secret))?;
    let reply = http::once(target.addr, req, Duration::from_secs(30)).await?;
    if reply.status != StatusCode::OK {
        bail!("client credentials grant failed: {}", reply.describe());
    }
    let t = tokens_from(&reply)?;
    let kind = reply
        .json()
        .get("token_type")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    Ok((t.access, kind))
}

/// Client-credentials grants with a fixed body; 200 is the expected answer.
pub struct ClientCredentialsGrant {
    pub body: Bytes,
}

impl Workload for ClientCredentialsGrant {
    fn request(&mut self, target: &Target) -> anyhow::Result<Request<Body>> {
        target.post_form(TOKEN_PATH, self.body.clone())
    }

    fn response(&mut self, reply: &Reply) -> Outcome {
        if reply.status == StatusCode::OK {
            Outcome::Ok
        } else {
            unexpected(reply)
        }
    }
}

fn unexpected(reply: &Reply) -> Outcome {
    Outcome::Error(reply.describe())
}

/// Camera events posted round-robin over a set of cameras (`POST /v1/cameras/{id}/events/`).
pub struct PostEvents {
    pub cameras: Vec<i64>,
    pub auth: HeaderValue,
    pub next: usize,
}

impl Workload for PostEvents {
    fn request(&mut self, target: &Target) -> anyhow::Result<Request<Body>> {
        let cam = self.cameras[self.next % self.cameras.len()];
        self.next = self.next.wrapping_add(1);
        let body = Bytes::from_static(br#"{"type":"motion","data":{"zone":"door","score":0.93}}"#);
        target.post_json(&format!("/v1/cameras/{cam}/events/"), &self.auth, body)
    }

    fn response(&mut self, reply: &Reply) -> Outcome {
        if reply.status == StatusCode::CREATED {
            Outcome::Ok
        } else {
            unexpected(reply)
        }
    }
}

impl Workload for Get {
    fn request(&mut self, target: &Target) -> anyhow::Result<Request<Body>> {
        target.get(&self.path, self.auth.as_ref())
    }

    fn response(&mut self, reply: &Reply) -> Outcome {
        if reply.status == StatusCode::OK {
            Outcome::Ok
        } else {
            unexpected(reply)
        }
    }
}

/// A refresh-token chain: every request presents the current refresh token and keeps the one
/// the answer rotates in.
pub struct RefreshChain {
    pub client_id: String,
    pub refresh: String,
}

impl Workload for RefreshChain {
    fn request(&mut self, target: &Target) -> anyhow::Result<Request<Body>> {
        target.post_form(
            TOKEN_PATH,
            http::form(&[
                ("grant_type", "refresh_token"),
                ("client_id", &self.client_id),
                ("refresh_token", &self.refresh),
            ]),
        )
    }

    fn response(&mut self, reply: &Reply) -> Outcome {
        if reply.status != StatusCode::OK {
            // The current token is kept: a retry inside the grace window gets the same
            // successor pair.
            return unexpected(reply);
        }
        match tokens_from(reply) {
            Ok(Tokens {
                refresh: Some(r), ..
            }) => {
                self.refresh = r;
                Outcome::Ok
            }
            Ok(_) => Outcome::Error("refresh answer without refresh_token".into()),
            Err(e) => Outcome::Error(format!("{e:#}")),
        }
    }
}

/// Password grants with a fixed body. 200 is expected; a 503 carrying Retry-After is load
/// shedding (counted apart); a 503 without it is an error.
pub struct PasswordGrant {
    pub body: Bytes,
    /// Wait Retry-After before the next attempt (a polite client) instead of retrying at once.
    pub honor_retry_after: bool,
}

impl PasswordGrant {
    pub fn demo(honor_retry_after: bool) -> Self {
        Self {
            body: password_form(DEMO_PUBLIC_CLIENT, DEMO_EMAIL, DEMO_PASSWORD),
            honor_retry_after,
        }
    }
}

impl Workload for PasswordGrant {
    fn request(&mut self, target: &Target) -> anyhow::Result<Request<Body>> {
        target.post_form(TOKEN_PATH, self.body.clone())
    }

    fn response(&mut self, reply: &Reply) -> Outcome {
        match reply.status {
            StatusCode::OK => Outcome::Ok,
            StatusCode::SERVICE_UNAVAILABLE => match http::retry_after(&reply.headers) {
                Some(secs) => Outcome::Shed {
                    pause: if self.honor_retry_after {
                        Duration::from_secs(secs)
                    } else {
                        Duration::ZERO
                    },
                },
                None => Outcome::Error(format!("503 without Retry-After: {}", reply.describe())),
            },
            _ => unexpected(reply),
        }
    }
}

/// The demo public client allowed the device authorization grant (RFC 8628).
pub const DEMO_DEVICE_CLIENT: &str = "camgate.device.demo";
/// The device authorization endpoint (RFC 8628 §3.1).
pub const DEVICE_AUTHORIZATION_PATH: &str = "/oauth/device_authorization";
/// The token endpoint as the demo prints it for the device client (same handler as
/// [`TOKEN_PATH`]).
pub const DEVICE_TOKEN_PATH: &str = "/oauth/token";
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// What `POST /oauth/device_authorization` answered (RFC 8628 §3.2), as far as the bench
/// needs it.
#[derive(Clone, Debug)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// Starts a device authorization for `client_id`.
pub async fn device_authorization(
    target: &Target,
    client_id: &str,
) -> anyhow::Result<DeviceAuthorization> {
    let req = target.post_form(
        DEVICE_AUTHORIZATION_PATH,
        http::form(&[("client_id", client_id)]),
    )?;
    let reply = http::once(target.addr, req, Duration::from_secs(30)).await?;
    if reply.status != StatusCode::OK {
        bail!("device authorization failed: {}", reply.describe());
    }
    let v = reply.json();
    let device_code = v
        .get("device_code")
        .and_then(|c| c.as_str())
        .ok_or_else(|| anyhow!("no device_code in {}", reply.describe()))?;
    let int = |k: &str| {
        v.get(k)
            .and_then(|n| n.as_i64())
            .ok_or_else(|| anyhow!("no {k} in {}", reply.describe()))
    };
    Ok(DeviceAuthorization {
        device_code: device_code.to_string(),
        expires_in: int("expires_in")?,
        interval: int("interval")?,
    })
}

/// The form body of a device access-token request (RFC 8628 §3.4).
pub fn device_poll_form(client_id: &str, device_code: &str) -> Bytes {
    http::form(&[
        ("client_id", client_id),
        ("grant_type", DEVICE_CODE_GRANT),
        ("device_code", device_code),
    ])
}

/// How a poll of a pending device code was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollAnswer {
    /// 400 `authorization_pending`.
    Pending,
    /// 400 `slow_down`.
    SlowDown,
    /// Anything else: for a code nobody decided on, an error.
    Other,
}

pub fn poll_answer(reply: &Reply) -> PollAnswer {
    if reply.status != StatusCode::BAD_REQUEST {
        return PollAnswer::Other;
    }
    match reply.json().get("error").and_then(|e| e.as_str()) {
        Some("authorization_pending") => PollAnswer::Pending,
        Some("slow_down") => PollAnswer::SlowDown,
        _ => PollAnswer::Other,
    }
}

/// The expected answers of every [`DevicePoll`] connection of a group, counted together
/// (warm-up included: the workload does not know the measured window).
#[derive(Debug, Default)]
pub struct PollCounts {
    pub pending: AtomicU64,
    pub slow_down: AtomicU64,
}

impl PollCounts {
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    pub fn slow_down(&self) -> u64 {
        self.slow_down.load(Ordering::Relaxed)
    }
}

/// Polls of one device code nobody approves: 400 `authorization_pending` or `slow_down` is
/// the expected answer; anything else (a 5xx, a 429 of the per-address rate limit, another
/// error code) is an error.
pub struct DevicePoll {
    pub body: Bytes,
    pub counts: Arc<PollCounts>,
}

impl Workload for DevicePoll {
    fn request(&mut self, target: &Target) -> anyhow::Result<Request<Body>> {
        target.post_form(DEVICE_TOKEN_PATH, self.body.clone())
    }

    fn response(&mut self, reply: &Reply) -> Outcome {
        match poll_answer(reply) {
            PollAnswer::Pending => {
                self.counts.pending.fetch_add(1, Ordering::Relaxed);
                Outcome::Ok
            }
            PollAnswer::SlowDown => {
                self.counts.slow_down.fetch_add(1, Ordering::Relaxed);
                Outcome::Ok
            }
            PollAnswer::Other => unexpected(reply),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: hyper::HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        }
    }

    #[test]
    fn classifies_device_poll_answers() {
        let r = |s, b| poll_answer(&reply(s, b));
        assert_eq!(
            r(400, r#"{"error":"authorization_pending"}"#),
            PollAnswer::Pending
        );
        assert_eq!(r(400, r#"{"error":"slow_down"}"#), PollAnswer::SlowDown);
        assert_eq!(r(429, r#"{"error":"slow_down"}"#), PollAnswer::Other);
        assert_eq!(r(400, r#"{"error":"expired_token"}"#), PollAnswer::Other);
        assert_eq!(r(500, "oops"), PollAnswer::Other);
    }

    #[test]
    fn device_poll_form_escapes_the_grant_type() {
        assert_eq!(
            device_poll_form("camgate.device.demo", "abc"),
            Bytes::from(
                "client_id=camgate.device.demo&grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=abc"
            )
        );
    }
}
