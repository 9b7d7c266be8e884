//! Per-client-IP rate limit on the token endpoint, against password and client secret guessing
//! (RFC 9700 §4.x brute force, OWASP ASVS V2.2.1 anti-automation): a token bucket per address,
//! refilled at `token_rate_limit_per_minute` and holding at most `token_rate_limit_burst`
//! requests.
//! Over the limit the answer is `429` + `Retry-After` in RFC 6749 §5.2 JSON shape.
//!
//! IPv6 clients are keyed by their /64 (one host usually owns the whole prefix); IPv4 by the
//! address. The address is the TCP peer: behind a reverse proxy every client shares the
//! proxy's address, so limit there instead (or leave this off). The table is bounded: when it
//! grows past [`MAX_TRACKED`] buckets that have refilled completely are dropped (they carry no
//! information), and if every bucket is still busy the least recently seen half goes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::Response;

use super::error::Surface;

/// Most client addresses tracked at once.
pub const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A keyed token bucket.
#[derive(Debug)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

/// The key of an address: IPv4 as is, IPv6 by its /64 prefix (IPv4-mapped as IPv4).
pub fn key_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl RateLimiter {
    /// `None` when `per_minute` is 0 (disabled).
    pub fn new(per_minute: u32, burst: u32) -> Option<Self> {
        (per_minute > 0).then(|| Self {
            per_sec: f64::from(per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one request from `ip`'s bucket at time `now`. `Err(wait)` when the bucket is
    /// empty: `wait` is how long until one request is allowed again.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut map = match self.buckets.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() >= MAX_TRACKED {
            self.prune(&mut map, now);
        }
        let b = map.entry(key_of(ip)).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_sec).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_sec))
        }
    }

    fn prune(&self, map: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        let full_after = self.burst / self.per_sec;
        map.retain(|_, b| now.saturating_duration_since(b.last).as_secs_f64() < full_after);
        if map.len() >= MAX_TRACKED {
            let mut seen: Vec<Instant> = map.values().map(|b| b.last).collect();
            seen.sort_unstable();
            let cutoff = seen[seen.len() / 2];
            map.retain(|_, b| b.last > cutoff);
        }
    }

    /// Addresses tracked now (for tests).
    pub fn tracked(&self) -> usize {
        self.buckets.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// Token endpoints of every dialect (canonical, Angelcam, CAM2API).
pub fn is_token_endpoint(path: &str) -> bool {
    let p = path.strip_suffix(".json").unwrap_or(path);
    matches!(
        p,
        "/oauth/token"
            | "/oauth/token/"
            | "/token"
            | "/token/"
            | "/refresh_token"
            | "/refresh_token/"
    )
}

/// The middleware: limits POSTs to token endpoints by client IP.
/// The 429 for a token request over its address's limit, or `None` to let it through.
pub fn refusal(limiter: &RateLimiter, req: &Request) -> Option<Response> {
    if req.method() != Method::POST || !is_token_endpoint(req.uri().path()) {
        return None;
    }
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())?;
    let wait = limiter.check(ip, Instant::now()).err()?;
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    tracing::warn!(
        target: "camgate::access",
        method = "POST",
        path = %req.uri().path(),
        status = 429u16,
        peer = %ip,
        "token endpoint rate limit"
    );
    let mut r = Surface::OAuth.error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        &format!("Too many token requests from this address; retry in {secs} s."),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_refill() {
        let rl = RateLimiter::new(60, 3).unwrap(); // one per second
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert!(rl.check(a, t0).is_ok());
        }
        let wait = rl.check(a, t0).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        // Another address has its own bucket.
        assert!(rl.check(ip("192.0.2.2"), t0).is_ok());
        // One second later exactly one more request fits.
        let t1 = t0 + Duration::from_secs(1);
        assert!(rl.check(a, t1).is_ok());
        assert!(rl.check(a, t1).is_err());
    }

    #[test]
    fn ipv6_by_prefix() {
        let rl = RateLimiter::new(1, 1).unwrap();
        let t = Instant::now();
        assert!(rl.check(ip("2001:db8:1:2::1"), t).is_ok());
        assert!(rl.check(ip("2001:db8:1:2::ffff"), t).is_err());
        assert!(rl.check(ip("2001:db8:1:3::1"), t).is_ok());
        assert_eq!(key_of(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn disabled_and_paths() {
        assert!(RateLimiter::new(0, 10).is_none());
        for p in [
            "/oauth/token",
            "/oauth/token/",
            "/token/",
            "/token.json",
            "/refresh_token/",
        ] {
            assert!(is_token_endpoint(p), "{p}");
        }
        for p in ["/oauth/revoke", "/v1/me/", "/oauth/tokens"] {
            assert!(!is_token_endpoint(p), "{p}");
        }
    }

    #[test]
    fn table_is_bounded() {
        let rl = RateLimiter::new(60, 1).unwrap();
        let t = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 10) {
            let _ = rl.check(IpAddr::V4(std::net::Ipv4Addr::from(i)), t);
        }
        assert!(rl.tracked() <= MAX_TRACKED);
    }
}
