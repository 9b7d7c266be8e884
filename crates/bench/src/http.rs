//! Minimal HTTP/1.1 client plumbing over hyper's connection API: one keep-alive connection per
//! caller, requests built by hand (no pooling, no redirects, nothing hidden).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub type Body = Full<Bytes>;

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    sender: SendRequest<Body>,
}

/// What came back: status, headers and the whole body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// A short description for error messages.
    pub fn describe(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text: String = text.chars().take(160).collect();
        format!("HTTP {}: {text}", self.status.as_u16())
    }
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the server closes it; either
            // way the next send_request reports it.
            let _ = conn.await;
        });
        Ok(Self { sender })
    }

    pub async fn send(&mut self, req: Request<Body>) -> anyhow::Result<Reply> {
        self.sender.ready().await.context("connection not ready")?;
        let resp = self.sender.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// Builds requests for one server (the Host header is fixed).
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    host: HeaderValue,
}

impl Target {
    pub fn new(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string())?,
        })
    }

    /// `GET path` with an optional ready-made `Authorization` value.
    pub fn get(&self, path: &str, auth: Option<&HeaderValue>) -> anyhow::Result<Request<Body>> {
        let mut b = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(HOST, self.host.clone());
        if let Some(a) = auth {
            b = b.header(AUTHORIZATION, a.clone());
        }
        Ok(b.body(Full::new(Bytes::new()))?)
    }

    /// `POST path` with a JSON body and an Authorization header.
    pub fn post_json(
        &self,
        path: &str,
        auth: &HeaderValue,
        body: Bytes,
    ) -> anyhow::Result<Request<Body>> {
        Ok(Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(HOST, self.host.clone())
            .header(AUTHORIZATION, auth.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(body))?)
    }

    /// `POST path` with an `application/x-www-form-urlencoded` body.
    pub fn post_form(&self, path: &str, form: Bytes) -> anyhow::Result<Request<Body>> {
        Ok(Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(HOST, self.host.clone())
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .body(Full::new(form))?)
    }
}

/// Percent-encodes a form value (RFC 3986 unreserved characters pass through).
pub fn form_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds a form body from pairs.
pub fn form(pairs: &[(&str, &str)]) -> Bytes {
    let s = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_escape(k), form_escape(v)))
        .collect::<Vec<_>>()
        .join("&");
    Bytes::from(s)
}

/// The `Retry-After` header in seconds, if present and numeric.
pub fn retry_after(h: &HeaderMap) -> Option<u64> {
    h.get(hyper::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// One request on a fresh connection, with a timeout (fixtures and readiness checks).
pub async fn once(
    addr: SocketAddr,
    req: Request<Body>,
    timeout: Duration,
) -> anyhow::Result<Reply> {
    tokio::time::timeout(timeout, async {
        let mut c = Conn::open(addr).await?;
        c.send(req).await
    })
    .await
    .map_err(|_| anyhow!("request timed out after {timeout:?}"))?
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn form_escapes_reserved_characters() {
        assert_eq!(
            form(&[("username", "user@example.com"), ("grant_type", "password")]),
            Bytes::from("username=user%40example.com&grant_type=password")
        );
        assert_eq!(form_escape("a b+c/="), "a%20b%2Bc%2F%3D");
    }
}
