//! A webhook receiver for the `webhook-delivery` scenario: a plain HTTP/1.1 listener on
//! loopback that answers every request `204 No Content` on a kept-alive connection and counts
//! the distinct `Camgate-Delivery` ids it has seen (a retried delivery counts once).
//!
//! Written on a raw socket rather than hyper's server: the bench depends on hyper's client
//! only, and a receiver that does nothing but read a head, skip `Content-Length` bytes and
//! answer costs the measured server nothing either way.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Receiver {
    pub addr: SocketAddr,
    seen: Arc<Mutex<HashSet<String>>>,
    task: JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let s = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, s.clone()));
            }
        });
        Ok(Self { addr, seen, task })
    }

    /// Distinct deliveries received so far.
    pub fn count(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves one connection until the peer closes it or sends something unreadable.
async fn serve(mut sock: TcpStream, seen: Arc<Mutex<HashSet<String>>>) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        // Read until the end of the head.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut length = 0usize;
        let mut delivery = None;
        for line in head.lines() {
            if let Some((k, v)) = line.split_once(':') {
                let (k, v) = (k.trim(), v.trim());
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("camgate-delivery") {
                    delivery = Some(v.to_string());
                }
            }
        }
        while buf.len() < head_end + length {
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..head_end + length);
        if let (Some(d), Ok(mut s)) = (delivery, seen.lock()) {
            s.insert(d);
        }
        if sock
            .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
