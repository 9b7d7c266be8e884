//! A minimal HTTP/1.1 client: one keep-alive connection per caller, requests built by hand (no
//! pooling, no redirects, nothing hidden).
//!
//! The connection is written by hand over `httparse` rather than driven by hyper's client
//! connection: on a small machine the load generator shares CPUs with the server it measures,
//! and every cycle it spends is taken from the server. hyper's client runs each connection as
//! a second task behind a channel (two wake-ups and a hand-off per request); here one task
//! writes the request and parses the answer in its own buffer. With the server on two CPUs
//! and this generator on one of them, `floor` went from 0.74 to 0.93 of its one-CPU figure
//! (BENCHMARKS.md, "A cheaper load generator").

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST,
};
use hyper::{Method, Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub type Body = Full<Bytes>;

/// Most header lines an answer may carry.
const MAX_HEADERS: usize = 64;
/// Largest head (status line and headers) an answer may have.
const MAX_HEAD: usize = 64 * 1024;

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    stream: TcpStream,
    /// Bytes read but not yet consumed (the start of the next answer never arrives early on a
    /// closed loop, but a server may send it; it stays here).
    inbuf: BytesMut,
    out: Vec<u8>,
    /// The server said `Connection: close`, or the connection failed mid-answer.
    closed: bool,
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

/// How the body of an answer is delimited (RFC 9112 section 6.3).
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            inbuf: BytesMut::with_capacity(16 * 1024),
            out: Vec::with_capacity(1024),
            closed: false,
        })
    }

    pub async fn send(&mut self, req: Request<Body>) -> anyhow::Result<Reply> {
        if self.closed {
            bail!("connection closed by the server");
        }
        let head = self.write_request(req).await;
        let reply = match head {
            Ok(method) => self.read_reply(&method).await,
            Err(e) => Err(e),
        };
        if reply.is_err() {
            self.closed = true;
        }
        reply
    }

    async fn write_request(&mut self, req: Request<Body>) -> anyhow::Result<Method> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await?.to_bytes();
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(parts.method.as_str().as_bytes());
        out.push(b' ');
        let target = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        for (name, value) in &parts.headers {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let has_body = !body.is_empty() || !matches!(parts.method, Method::GET | Method::HEAD);
        if has_body && !parts.headers.contains_key(CONTENT_LENGTH) {
            out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&body);
        self.stream.write_all(out).await.context("sending")?;
        Ok(parts.method)
    }

    /// Reads more bytes into the buffer; false at the end of the stream.
    async fn fill(&mut self) -> anyhow::Result<bool> {
        if self.inbuf.capacity() - self.inbuf.len() < 4096 {
            self.inbuf.reserve(16 * 1024);
        }
        let n = self
            .stream
            .read_buf(&mut self.inbuf)
            .await
            .context("reading")?;
        Ok(n > 0)
    }

    async fn read_reply(&mut self, method: &Method) -> anyhow::Result<Reply> {
        let (status, headers, head_len) = loop {
            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut slots);
            match parsed
                .parse(&self.inbuf)
                .context("parsing the answer's head")?
            {
                httparse::Status::Complete(n) => {
                    let status = StatusCode::from_u16(parsed.code.unwrap_or(0))
                        .context("the answer's status code")?;
                    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
                    for h in parsed.headers.iter() {
                        headers.append(
                            HeaderName::from_bytes(h.name.as_bytes())?,
                            HeaderValue::from_bytes(h.value)?,
                        );
                    }
                    break (status, headers, n);
                }
                httparse::Status::Partial => {
                    if self.inbuf.len() > MAX_HEAD {
                        bail!("the answer's head is over {MAX_HEAD} bytes");
                    }
                    if !self.fill().await? {
                        bail!("connection closed before an answer");
                    }
                }
            }
        };
        self.inbuf.advance(head_len);
        let framing = framing(method, status, &headers)?;
        let body = match framing {
            Framing::Length(n) => {
                while self.inbuf.len() < n {
                    if !self.fill().await? {
                        bail!("connection closed inside a body");
                    }
                }
                self.inbuf.split_to(n).freeze()
            }
            Framing::Chunked => self.read_chunked().await?,
            Framing::UntilClose => {
                while self.fill().await? {}
                self.closed = true;
                self.inbuf.split().freeze()
            }
        };
        let close = headers
            .get(hyper::header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if close {
            self.closed = true;
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// A chunked body (RFC 9112 section 7.1); trailers are read and dropped.
    async fn read_chunked(&mut self) -> anyhow::Result<Bytes> {
        let mut body = BytesMut::new();
        loop {
            let line = self.line().await?;
            let size = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size)
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .context("a chunk size")?;
            if size == 0 {
                // Trailer lines, then the empty line.
                while !self.line().await?.is_empty() {}
                return Ok(body.freeze());
            }
            while self.inbuf.len() < size + 2 {
                if !self.fill().await? {
                    bail!("connection closed inside a chunk");
                }
            }
            body.extend_from_slice(&self.inbuf[..size]);
            if &self.inbuf[size..size + 2] != b"\r\n" {
                bail!("a chunk without its CRLF");
            }
            self.inbuf.advance(size + 2);
        }
    }

    /// One CRLF-terminated line, without the CRLF.
    async fn line(&mut self) -> anyhow::Result<Bytes> {
        loop {
            if let Some(i) = self.inbuf.windows(2).position(|w| w == b"\r\n") {
                let line = self.inbuf.split_to(i).freeze();
                self.inbuf.advance(2);
                return Ok(line);
            }
            if self.inbuf.len() > MAX_HEAD {
                bail!("a line over {MAX_HEAD} bytes");
            }
            if !self.fill().await? {
                bail!("connection closed inside a chunked body");
            }
        }
    }
}

/// RFC 9112 section 6.3: no body for HEAD, 1xx, 204 and 304; chunked before Content-Length;
/// otherwise the length, or everything up to the close.
fn framing(method: &Method, status: StatusCode, headers: &HeaderMap) -> anyhow::Result<Framing> {
    if method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Length(0));
    }
    if let Some(te) = headers.get(hyper::header::TRANSFER_ENCODING) {
        let te = te.to_str().unwrap_or_default();
        if te
            .rsplit(',')
            .next()
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
        {
            return Ok(Framing::Chunked);
        }
        return Ok(Framing::UntilClose);
    }
    match headers.get(CONTENT_LENGTH) {
        Some(v) => Ok(Framing::Length(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| anyhow!("a Content-Length that is not a number"))?,
        )),
        None => Ok(Framing::UntilClose),
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod client_tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A server that reads one request head per canned answer and writes the answer back,
    /// keeping what each request looked like.
    async fn serve(
        answers: Vec<&'static [u8]>,
    ) -> (SocketAddr, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = Vec::new();
            for answer in answers {
                loop {
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8(buf[..end].to_vec()).unwrap();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length: "))
                            .map_or(0, |n| n.parse::<usize>().unwrap());
                        if buf.len() >= end + 4 + len {
                            seen.push(String::from_utf8(buf[..end + 4 + len].to_vec()).unwrap());
                            buf.drain(..end + 4 + len);
                            break;
                        }
                    }
                    let mut chunk = [0u8; 4096];
                    let n = sock.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "client closed early");
                    buf.extend_from_slice(&chunk[..n]);
                }
                sock.write_all(answer).await.unwrap();
            }
            seen
        });
        (addr, task)
    }

    #[tokio::test]
    async fn reads_length_and_chunked_answers_on_one_connection() {
        let (addr, server) = serve(vec![
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\n\r\nhello",
            b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nx-trailer: t\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno",
        ])
        .await;
        let target = Target::new(addr).unwrap();
        let auth = HeaderValue::from_static("Bearer t");
        let mut c = Conn::open(addr).await.unwrap();

        let r = c
            .send(target.get("/v1/me/?a=b", Some(&auth)).unwrap())
            .await
            .unwrap();
        assert_eq!((r.status, &r.body[..]), (StatusCode::OK, &b"hello"[..]));
        assert_eq!(r.headers.get("x-a").unwrap(), "1");

        let body = Bytes::from_static(b"{\"x\":1}");
        let r = c
            .send(target.post_json("/p", &auth, body).unwrap())
            .await
            .unwrap();
        assert_eq!(
            (r.status, &r.body[..]),
            (StatusCode::CREATED, &b"abcde"[..])
        );

        let r = c
            .send(target.post_form("/f", Bytes::new()).unwrap())
            .await
            .unwrap();
        assert_eq!((r.status, r.body.len()), (StatusCode::NO_CONTENT, 0));

        let r = c.send(target.get("/x", None).unwrap()).await.unwrap();
        assert_eq!(
            (r.status, &r.body[..]),
            (StatusCode::BAD_REQUEST, &b"no"[..])
        );
        // The server closed the connection: the next request fails instead of hanging.
        assert!(c.send(target.get("/x", None).unwrap()).await.is_err());

        let seen = server.await.unwrap();
        assert_eq!(seen.len(), 4);
        assert!(
            seen[0].starts_with("GET /v1/me/?a=b HTTP/1.1\r\n"),
            "{}",
            seen[0]
        );
        assert!(
            seen[0].contains("\r\nauthorization: Bearer t\r\n"),
            "{}",
            seen[0]
        );
        assert!(
            seen[0].contains(&format!("\r\nhost: {addr}\r\n")),
            "{}",
            seen[0]
        );
        assert!(
            !seen[0].contains("content-length"),
            "a GET has no body: {}",
            seen[0]
        );
        assert!(seen[1].starts_with("POST /p HTTP/1.1\r\n"), "{}", seen[1]);
        assert!(
            seen[1].ends_with("content-length: 7\r\n\r\n{\"x\":1}"),
            "{}",
            seen[1]
        );
        assert!(seen[2].contains("content-length: 0\r\n"), "{}", seen[2]);
    }

    #[tokio::test]
    async fn a_truncated_answer_is_an_error() {
        let (addr, server) =
            serve(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"]).await;
        let target = Target::new(addr).unwrap();
        let mut c = Conn::open(addr).await.unwrap();
        let send = c.send(target.get("/", None).unwrap());
        let (r, _) = tokio::join!(send, server);
        let err = r
            .err()
            .expect("a body cut short must not count as an answer");
        assert!(
            format!("{err:#}").contains("closed inside a body"),
            "{err:#}"
        );
    }
}
