//! The webhook delivery worker: every node runs one (`camgate serve`). It polls the outbox
//! every 250 ms (sooner when woken: `camgate_core::webhooks::wake_workers`), claims up to 32
//! due deliveries with a 60 s lease (`Core::claim_deliveries`; any node may take any row, none
//! takes a leased one), POSTs each, and records the attempt (`Core::finish_delivery`: 2xx =
//! delivered, anything else a retry on the schedule in `camgate_core::webhooks`).
//!
//! The request: `POST <url>` with the stored payload as body and `Content-Type:
//! application/json`, `Camgate-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>`,
//! `Camgate-Delivery: <delivery id>`, `Camgate-Event: <type>`, `User-Agent: camgate-webhooks`;
//! a 10 s timeout, no redirects followed (a 3xx is a failure), no proxy.
//!
//! SSRF at delivery time: the URL is checked again, and the connection goes only to addresses
//! that passed the check. Names are resolved by [`CheckedResolver`], the client's own resolver,
//! which refuses the name if any address it resolves to is private (unless the configuration
//! allows private targets) and hands the connector exactly the checked addresses, so a name
//! re-pointed between a check and the connection (DNS rebinding) cannot reach an internal
//! address. Address literals, which the client does not resolve, are checked here.
//!
//! A node killed mid-delivery leaves its claimed rows leased; another node (or this one after a
//! restart) claims them when the lease ends: at-least-once, never lost. On shutdown the worker
//! stops claiming and drops what is in flight (those rows come back when their lease ends).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use camgate_core::store::ClaimedDelivery;
use camgate_core::webhooks::{self, AttemptResult};
use camgate_core::Core;

use crate::config::Config;

/// How often an idle worker looks at the outbox.
pub const POLL: Duration = Duration::from_millis(250);
/// Deliveries claimed at once.
pub const BATCH: i64 = 32;
/// A claim's lease: a delivery not finished by then may be claimed again.
pub const LEASE_SECS: i64 = 60;
/// One request's time limit, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
pub const USER_AGENT: &str = "camgate-webhooks";

/// The client's resolver: resolves a host and fails unless every address passes the SSRF
/// check (`camgate_core::webhooks::resolve_checked`); the connector connects to exactly the
/// addresses returned.
pub struct CheckedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private;
        Box::pin(async move {
            let ips = webhooks::resolve_checked(name.as_str(), allow)
                .await
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?;
            // The port is the URL's; the connector ignores this one.
            let addrs: reqwest::dns::Addrs =
                Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// The delivery client: no redirects, no proxy, the checking resolver, 10 s per request.
pub fn client(allow_private: bool) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .user_agent(USER_AGENT)
        .dns_resolver(Arc::new(CheckedResolver { allow_private }))
        .build()
        .map_err(|e| anyhow::anyhow!("webhook client: {e}"))
}

/// A running worker. [`WebhookWorker::stop`] ends it; dropping it aborts it.
pub struct WebhookWorker {
    stop: watch::Sender<bool>,
    handle: Option<JoinHandle<()>>,
}

impl WebhookWorker {
    /// Looks at the outbox now (every worker of this process).
    pub fn wake(&self) {
        webhooks::wake_workers();
    }

    /// Stops claiming, drops deliveries in flight (they are claimed again after their lease)
    /// and waits for the task to end.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(h) = self.handle.take() {
            let abort = h.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), h)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for WebhookWorker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

/// Starts the worker of `serve` with the configuration's target rule.
pub fn spawn_webhook_worker(core: Arc<Core>, cfg: &Config) -> anyhow::Result<WebhookWorker> {
    spawn_with(core, cfg.webhooks_allow_private_targets)
}

/// Starts a worker (tests start one beside an app they spawned).
pub fn spawn_with(core: Arc<Core>, allow_private: bool) -> anyhow::Result<WebhookWorker> {
    let http = client(allow_private)?;
    let (tx, rx) = watch::channel(false);
    let handle = tokio::spawn(run(core, http, allow_private, rx));
    Ok(WebhookWorker {
        stop: tx,
        handle: Some(handle),
    })
}

async fn run(
    core: Arc<Core>,
    http: reqwest::Client,
    allow_private: bool,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        let batch = match core.claim_deliveries(BATCH, LEASE_SECS).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "webhook outbox claim failed");
                Vec::new()
            }
        };
        let full = batch.len() as i64 >= BATCH;
        if !batch.is_empty() {
            let work = join_all(
                batch
                    .into_iter()
                    .map(|c| deliver(&core, &http, c, allow_private)),
            );
            tokio::select! {
                _ = work => {}
                _ = stop.changed() => return,
            }
        }
        if full {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = webhooks::woken() => {}
            _ = stop.changed() => return,
        }
    }
}

/// One attempt of one claimed delivery, recorded.
async fn deliver(core: &Core, http: &reqwest::Client, c: ClaimedDelivery, allow_private: bool) {
    let at = core.now();
    let started = Instant::now();
    let (status, error) = match attempt(core, http, &c, at, allow_private).await {
        Ok(s) if (200..300).contains(&s) => (Some(s), None),
        Ok(s) => (Some(s), Some(format!("HTTP {s}"))),
        Err(e) => (None, Some(e)),
    };
    let r = AttemptResult {
        at,
        status,
        error,
        duration_ms: started.elapsed().as_millis().min(i64::MAX as u128) as i64,
    };
    match core.finish_delivery(&c, r).await {
        Ok(outcome) => tracing::debug!(
            delivery = c.delivery.id,
            webhook = c.webhook.id,
            ?outcome,
            "webhook attempt"
        ),
        // Not recorded: the lease ends and the delivery is tried again.
        Err(e) => tracing::warn!(
            error = %e,
            delivery = c.delivery.id,
            "webhook attempt not recorded"
        ),
    }
}

/// Sends the request; the status, or why there is none.
async fn attempt(
    core: &Core,
    http: &reqwest::Client,
    c: &ClaimedDelivery,
    at: i64,
    allow_private: bool,
) -> Result<u16, String> {
    let url = url::Url::parse(&c.webhook.url).map_err(|e| format!("invalid URL: {e}"))?;
    if url.scheme() != "https" && !(allow_private && url.scheme() == "http") {
        return Err("only https URLs are allowed".into());
    }
    // Address literals: the client connects to them without asking the resolver.
    match url.host() {
        Some(url::Host::Ipv4(ip)) => {
            webhooks::check_ip(&ip.to_string(), ip.into(), allow_private).map_err(|e| e.0)?
        }
        Some(url::Host::Ipv6(ip)) => {
            webhooks::check_ip(&ip.to_string(), ip.into(), allow_private).map_err(|e| e.0)?
        }
        Some(url::Host::Domain(_)) => {}
        None => return Err("the URL names no host".into()),
    }
    let signature = core
        .sign_delivery(&c.webhook, at, &c.delivery.payload)
        .ok_or("the signing secret cannot be opened (was the data key changed?)")?;
    let r = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Camgate-Signature", signature)
        .header("Camgate-Delivery", c.delivery.id.to_string())
        .header("Camgate-Event", c.delivery.event_type.as_str())
        .body(c.delivery.payload.clone())
        .send()
        .await
        .map_err(|e| describe(&e))?;
    Ok(r.status().as_u16())
}

/// An error with its causes (`error sending request: connect: <why>`), for the delivery log.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = if let Some(re) = e.downcast_ref::<reqwest::Error>() {
        if re.is_timeout() {
            "timed out".to_string()
        } else if re.is_connect() {
            "connection failed".to_string()
        } else if re.is_request() {
            "request failed".to_string()
        } else {
            re.to_string()
        }
    } else {
        e.to_string()
    };
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}
