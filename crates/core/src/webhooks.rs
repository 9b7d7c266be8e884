//! Webhooks: a user subscribes a URL to event types (`camera.event`, `camera.added`,
//! `camera.removed`, `camera.shared`, `app.authorized`, `app.revoked`: [`NOTICE_KINDS`]) and
//! camgate POSTs each matching notice there, signed, retried, logged.
//!
//! - **Outbox.** A notice is stored as one `webhook_deliveries` row per subscribed webhook in
//!   the transaction of the event itself (`EventStore::record_event`), so an acknowledged event
//!   is never lost. Any node's worker claims due rows with a lease (`WebhookStore::
//!   claim_deliveries`; `FOR UPDATE SKIP LOCKED` on PostgreSQL) and records each attempt: a
//!   node that dies mid-delivery leaves the row to be claimed again when the lease ends.
//!   Delivery is at-least-once; the payload's `id` is the receiver's idempotency key (the same
//!   on every try and replay).
//! - **Signature.** `Camgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//!   "<t>.<body>")>` ([`signature`]): the key is the secret exactly as shown (`whsec_…`, its
//!   UTF-8 bytes), the message the decimal timestamp, a full stop and the raw body. Receivers
//!   compare in constant time and refuse old timestamps (replays of a captured request).
//! - **Secret.** `whsec_` + 32 alphanumerics (≈ 190 bits, `secret::generate`), shown once in the
//!   answer that creates the webhook. It must be read back to sign, so it is sealed with
//!   AES-256-GCM under the data key with the user id as associated data, like TOTP keys
//!   (`mfa::seal`), never stored in the clear.
//! - **Retries.** After failed attempt n the next try is due after 1 s × 2^(n−1) ± 20 % jitter,
//!   at most 1 h ([`retry_delay_ms`]); a delivery is `failed` when its next try would be more
//!   than 24 h after it was queued ([`after_failure`]). A webhook whose attempts have all failed
//!   for 24 h is disabled ([`DISABLE_AFTER_SECS`]): its pending deliveries fail, nothing more is
//!   queued for it. Replaying a delivery (the owner's explicit request) enables it again.
//! - **SSRF.** URLs whose host is, or resolves to, a loopback, private, link-local, unique-local,
//!   shared (CGNAT), unspecified, multicast, broadcast, documentation or otherwise special-purpose
//!   address are refused ([`refused_ip`]), unless the configuration allows private targets
//!   (`webhooks.allow_private_targets`). The check runs when the webhook is created and again at
//!   each delivery, where the connection goes to the checked addresses only (the server's
//!   resolver), so a name re-pointed after the check (DNS rebinding) cannot reach them.
//! - **Ownership.** A user sees, deletes and replays only their own webhooks and deliveries;
//!   anything else is 404. A paired device's token is refused (403).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use crate::clock::Timestamp;
use crate::error::{ApiError, StoreError};
use crate::events::NOTICE_KINDS;
use crate::model::UserId;
use crate::principal::Principal;
use crate::scope::Need;
use crate::store::{
    AttemptRecord, ClaimedDelivery, Delivery, DeliveryAttempt, DeliveryOutcome, NewWebhook, Webhook,
};
use crate::Core;

/// Webhooks one user may have.
pub const MAX_WEBHOOKS_PER_USER: i64 = 20;
/// Longest URL accepted (characters).
pub const MAX_URL_LEN: usize = 2000;
/// The prefix of signing secrets (helps secret scanners).
pub const SECRET_PREFIX: &str = "whsec_";
/// The first retry comes after about this long (milliseconds); each one after doubles it.
pub const FIRST_RETRY_MS: u64 = 1000;
/// ± this fraction of jitter on each retry delay.
pub const JITTER: f64 = 0.2;
/// No retry waits longer than this.
pub const MAX_RETRY_DELAY_SECS: i64 = 3600;
/// A delivery is retried for this long after it was queued, then `failed`.
pub const RETRY_WINDOW_SECS: i64 = 24 * 3600;
/// A webhook failing for this long without a success is disabled.
pub const DISABLE_AFTER_SECS: i64 = 24 * 3600;
/// Deliveries per page of the delivery log (default and most).
pub const LOG_PAGE_DEFAULT: i64 = 50;
pub const LOG_PAGE_MAX: i64 = 100;
/// A name lookup at creation or delivery gives up after this long.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `last_error` stored.
const MAX_ERROR_LEN: usize = 500;

// ---- addresses (SSRF)

/// Why `ip` may not be a webhook target, or `None` if it may. The special-purpose registries
/// (RFC 6890 and its updates) less the globally reachable unicast space:
///
/// IPv4: `0.0.0.0/8` this network, unspecified included (RFC 1122 §3.2.1.3); `10/8`,
/// `172.16/12`, `192.168/16` private (RFC 1918); `100.64/10` shared address space, CGNAT (RFC
/// 6598); `127/8` loopback (RFC 1122); `169.254/16` link-local, cloud metadata endpoints (RFC
/// 3927); `192.0.0/24` IETF protocol assignments (RFC 6890); `192.0.2/24`, `198.51.100/24`,
/// `203.0.113/24` documentation (RFC 5737); `198.18/15` benchmarking (RFC 2544); `224/4`
/// multicast (RFC 5771); `240/4` reserved and `255.255.255.255` limited broadcast (RFC 1112,
/// RFC 919).
///
/// IPv6: `::/96` unspecified, loopback and the deprecated IPv4-compatible addresses (RFC 4291
/// §2.5.2, §2.5.3, §2.5.5.1); `::ffff:0:0/96` IPv4-mapped and `64:ff9b::/96` NAT64 (RFC 6052),
/// `2002::/16` 6to4 (RFC 3056): judged by the IPv4 address they carry; `64:ff9b:1::/48` local
/// NAT64 (RFC 8215); `100::/64` discard (RFC 6666); `2001::/32` Teredo (RFC 4380, carries an
/// obscured IPv4 address); `2001:db8::/32` and `3fff::/20` documentation (RFC 3849, RFC 9637);
/// `fc00::/7` unique local (RFC 4193); `fe80::/10` link-local and `fec0::/10` site-local (RFC
/// 4291, RFC 3879); `ff00::/8` multicast (RFC 4291).
pub fn refused_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "an unspecified (this-network) address",
        (10, _, _) => "a private address",
        (172, 16..=31, _) => "a private address",
        (192, 168, _) => "a private address",
        (100, 64..=127, _) => "a shared (CGNAT) address",
        (127, _, _) => "a loopback address",
        (169, 254, _) => "a link-local address",
        (192, 0, 0) => "an IETF protocol address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, 18..=19, _) => "a benchmarking address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved or broadcast address",
        _ => return None,
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d): the IPv4 address decides.
    if s[..5] == [0; 5] && s[5] == 0xffff {
        return refused_v4(embedded(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return refused_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return refused_v4(embedded(s[1], s[2]));
    }
    Some(match s {
        [0, 0, 0, 0, 0, 0, _, _] => "an unspecified, loopback or IPv4-compatible address",
        [0x64, 0xff9b, 1, ..] => "a local NAT64 address",
        [0x100, 0, 0, 0, ..] => "a discard-only address",
        [0x2001, 0, ..] => "a Teredo address",
        [0x2001, 0xdb8, ..] => "a documentation address",
        [x, ..] if x & 0xfff0 == 0x3ff0 => "a documentation address",
        [x, ..] if x & 0xfe00 == 0xfc00 => "a unique local address",
        [x, ..] if x & 0xffc0 == 0xfe80 => "a link-local address",
        [x, ..] if x & 0xffc0 == 0xfec0 => "a site-local address",
        [x, ..] if x & 0xff00 == 0xff00 => "a multicast address",
        _ => return None,
    })
}

/// A refused or unusable delivery target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

/// Checks an address: `Err` naming why it is refused (unless private targets are allowed).
pub fn check_ip(host: &str, ip: IpAddr, allow_private: bool) -> Result<(), TargetError> {
    match refused_ip(ip) {
        Some(why) if !allow_private => Err(TargetError(format!(
            "`{host}` is {why} ({ip}); webhooks may not target it"
        ))),
        _ => Ok(()),
    }
}

/// Resolves `host` and checks every address it resolves to (one refused address refuses the
/// name: which one a connection would use is the resolver's choice). The addresses, to connect
/// to exactly these (so a second lookup cannot answer differently: DNS rebinding).
pub async fn resolve_checked(host: &str, allow_private: bool) -> Result<Vec<IpAddr>, TargetError> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        check_ip(host, ip, allow_private)?;
        return Ok(vec![ip]);
    }
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, 0)))
        .await
        .map_err(|_| TargetError(format!("`{host}` did not resolve in time")))?
        .map_err(|_| TargetError(format!("`{host}` does not resolve")))?;
    let mut ips: Vec<IpAddr> = found.map(|a| a.ip()).collect();
    ips.dedup();
    if ips.is_empty() {
        return Err(TargetError(format!("`{host}` does not resolve")));
    }
    for ip in &ips {
        check_ip(host, *ip, allow_private)?;
    }
    Ok(ips)
}

/// The URL rules: absolute `https` (`http` too only where private targets are allowed, i.e. a
/// test or an internal deployment), a host, at most [`MAX_URL_LEN`] characters, and a host that
/// passes [`resolve_checked`] (names are resolved only when private targets are refused).
pub async fn check_url(raw: &str, allow_private: bool) -> Result<url::Url, ApiError> {
    let bad = |m: String| ApiError::invalid("url", m);
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(bad("`url`: this field is required.".into()));
    }
    if raw.chars().count() > MAX_URL_LEN {
        return Err(bad(format!(
            "`url` must be at most {MAX_URL_LEN} characters."
        )));
    }
    let u = url::Url::parse(raw).map_err(|_| bad("`url` must be an absolute URL.".into()))?;
    match u.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => {
            return Err(bad(if allow_private {
                "`url` must be an http or https URL.".into()
            } else {
                "`url` must be an https URL.".into()
            }))
        }
    }
    let host = match u.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(bad("`url` must name a host.".into())),
    };
    if !allow_private {
        resolve_checked(&host, false)
            .await
            .map_err(|e| bad(format!("`url`: {e}.")))?;
    }
    Ok(u)
}

// ---- signing and retries

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the `Camgate-Signature` header.
pub fn signature(secret: &str, t: Timestamp, body: &str) -> String {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait after failed attempt `attempt` (1 = the first): 1 s × 2^(attempt−1), scaled by
/// `1 + jitter` (`jitter` in ±[`JITTER`]), at most [`MAX_RETRY_DELAY_SECS`]. Milliseconds.
pub fn retry_delay_ms(attempt: i64, jitter: f64) -> u64 {
    let doublings = attempt.clamp(1, 13) - 1;
    let base = FIRST_RETRY_MS << doublings;
    let jitter = jitter.clamp(-JITTER, JITTER);
    let ms = (base as f64 * (1.0 + jitter)).round() as u64;
    ms.min(MAX_RETRY_DELAY_SECS as u64 * 1000)
}

/// A random jitter in ±[`JITTER`].
pub fn jitter() -> f64 {
    rand::thread_rng().gen_range(-JITTER..=JITTER)
}

/// What becomes of a delivery queued at `created_at` whose attempt `attempt` failed at `now`:
/// a retry after [`retry_delay_ms`] (whole seconds, at least one), or `Failed` when that would
/// be more than [`RETRY_WINDOW_SECS`] after it was queued.
pub fn after_failure(
    created_at: Timestamp,
    now: Timestamp,
    attempt: i64,
    jitter: f64,
) -> DeliveryOutcome {
    let secs = (retry_delay_ms(attempt, jitter) as f64 / 1000.0)
        .round()
        .max(1.0) as i64;
    let next = now + secs;
    if next > created_at + RETRY_WINDOW_SECS {
        DeliveryOutcome::Failed
    } else {
        DeliveryOutcome::Retry(next)
    }
}

/// A webhook failing since `since` is disabled at `now` after [`DISABLE_AFTER_SECS`].
pub fn should_disable(since: Timestamp, now: Timestamp) -> bool {
    now - since >= DISABLE_AFTER_SECS
}

/// The AAD of a sealed secret: the owner's id, so that a sealed secret copied to another
/// user's row does not open.
fn secret_aad(user: UserId) -> Vec<u8> {
    format!("camgate webhook secret v1\0{user}").into_bytes()
}

/// Canonical event list: known kinds only, each once, in [`NOTICE_KINDS`] order.
pub fn parse_events(events: &[String]) -> Result<Vec<String>, ApiError> {
    let bad = || {
        ApiError::invalid(
            "events",
            format!(
                "`events` must be a non-empty list of {}.",
                NOTICE_KINDS.join(", ")
            ),
        )
    };
    if events.is_empty() || events.len() > 100 {
        return Err(bad());
    }
    if events.iter().any(|e| !NOTICE_KINDS.contains(&e.as_str())) {
        return Err(bad());
    }
    Ok(NOTICE_KINDS
        .iter()
        .filter(|k| events.iter().any(|e| e == *k))
        .map(|k| k.to_string())
        .collect())
}

// ---- wake-ups

fn wake() -> &'static tokio::sync::Notify {
    static WAKE: OnceLock<tokio::sync::Notify> = OnceLock::new();
    WAKE.get_or_init(tokio::sync::Notify::new)
}

/// Wakes this process's delivery workers (something became due now).
pub fn wake_workers() {
    wake().notify_waiters();
}

/// Resolves at the next [`wake_workers`].
pub async fn woken() {
    wake().notified().await;
}

// ---- use cases

/// A webhook just created, with its secret (shown this once).
#[derive(Debug, Clone)]
pub struct CreatedWebhook {
    pub webhook: Webhook,
    pub secret: String,
}

/// The result of one delivery attempt, as the worker saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    /// When the attempt started.
    pub at: Timestamp,
    /// The status answered, if any.
    pub status: Option<u16>,
    /// Why no 2xx came back (connection error, timeout, refused target, the status).
    pub error: Option<String>,
    pub duration_ms: i64,
}

fn truncate(s: &str) -> String {
    match s.char_indices().nth(MAX_ERROR_LEN) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The user a webhook route acts for: a user's token with the scope, not a device's.
fn owner(p: &Principal, need: Need) -> Result<UserId, ApiError> {
    if p.camera.is_some() {
        return Err(ApiError::Forbidden(
            "A device token may not manage webhooks.".into(),
        ));
    }
    p.require(need)?;
    Ok(p.user()?.id)
}

impl Core {
    /// `POST /v1/webhooks/` `{url, events}`: a new subscription and its secret (shown once).
    pub async fn create_webhook(
        &self,
        p: &Principal,
        url: Option<&str>,
        events: Option<&[String]>,
    ) -> Result<CreatedWebhook, ApiError> {
        let user = owner(p, Need::Write)?;
        let url = url.ok_or_else(|| ApiError::invalid("url", "`url`: this field is required."))?;
        let events = events
            .ok_or_else(|| ApiError::invalid("events", "`events`: this field is required."))?;
        let events = parse_events(events)?;
        let url = check_url(url, self.settings.allow_private_targets).await?;
        let secret = crate::secret::generate(crate::secret::TokenFormat::Prefixed(SECRET_PREFIX));
        let secret_enc = crate::mfa::seal(&self.data_key, &secret_aad(user), secret.as_bytes())
            .ok_or(ApiError::Internal)?;
        let new = NewWebhook {
            user_id: user,
            url: url.to_string(),
            events,
            secret_enc,
            created_at: self.now(),
        };
        let webhook = self
            .store
            .create_webhook(&new, MAX_WEBHOOKS_PER_USER)
            .await?
            .ok_or_else(|| ApiError::Invalid {
                field: None,
                message: format!(
                    "An account may have at most {MAX_WEBHOOKS_PER_USER} webhooks; delete one \
                     first."
                ),
            })?;
        Ok(CreatedWebhook { webhook, secret })
    }

    /// `GET /v1/webhooks/`: the caller's webhooks, oldest first.
    pub async fn list_webhooks(&self, p: &Principal) -> Result<Vec<Webhook>, ApiError> {
        let user = owner(p, Need::Read)?;
        Ok(self.store.webhooks(user).await?)
    }

    /// One of the caller's webhooks (404 for anyone else's).
    pub async fn get_webhook(&self, p: &Principal, id: i64) -> Result<Webhook, ApiError> {
        let user = owner(p, Need::Read)?;
        self.store
            .webhook(user, id)
            .await?
            .ok_or(ApiError::NotFound)
    }

    /// `DELETE /v1/webhooks/{id}/`: with its deliveries (nothing more is sent).
    pub async fn delete_webhook(&self, p: &Principal, id: i64) -> Result<(), ApiError> {
        let user = owner(p, Need::Write)?;
        if self.store.delete_webhook(user, id).await? {
            Ok(())
        } else {
            Err(ApiError::NotFound)
        }
    }

    /// `GET /v1/webhooks/{id}/deliveries/`: the newest deliveries (before the delivery id
    /// `before`, if given), each with its attempts.
    pub async fn delivery_log(
        &self,
        p: &Principal,
        id: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(Delivery, Vec<DeliveryAttempt>)>, ApiError> {
        let user = owner(p, Need::Read)?;
        self.store
            .webhook(user, id)
            .await?
            .ok_or(ApiError::NotFound)?;
        let limit = limit.clamp(1, LOG_PAGE_MAX);
        Ok(self.store.delivery_log(user, id, before, limit).await?)
    }

    /// `POST /v1/webhooks/{id}/deliveries/{delivery_id}/replay/`: the delivery is sent again
    /// now (same body, same `id`); a webhook disabled after a day of failures is enabled again.
    pub async fn replay_delivery(
        &self,
        p: &Principal,
        id: i64,
        delivery: i64,
    ) -> Result<Delivery, ApiError> {
        let user = owner(p, Need::Write)?;
        let d = self
            .store
            .replay_delivery(user, id, delivery, self.now())
            .await?
            .ok_or(ApiError::NotFound)?;
        wake_workers();
        Ok(d)
    }

    // ---- the delivery worker's side

    /// Claims at most `limit` due deliveries for `lease_secs` (see `WebhookStore`).
    pub async fn claim_deliveries(
        &self,
        limit: i64,
        lease_secs: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let now = self.now();
        self.store
            .claim_deliveries(now, now + lease_secs, limit)
            .await
    }

    /// The `Camgate-Signature` of `body` at `t` for `webhook`; `None` if its secret does not
    /// open (the data key changed).
    pub fn sign_delivery(&self, webhook: &Webhook, t: Timestamp, body: &str) -> Option<String> {
        let secret = crate::mfa::open(
            &self.data_key,
            &secret_aad(webhook.user_id),
            &webhook.secret_enc,
        )?;
        let secret = String::from_utf8(secret).ok()?;
        Some(signature(&secret, t, body))
    }

    /// Records an attempt of a claimed delivery and decides what follows: delivered on a 2xx,
    /// else a retry per the schedule or `failed`; the webhook's failure clock starts, stops,
    /// or after a day disables it.
    pub async fn finish_delivery(
        &self,
        c: &ClaimedDelivery,
        r: AttemptResult,
    ) -> Result<DeliveryOutcome, StoreError> {
        let now = self.now();
        let ok = r.status.is_some_and(|s| (200..300).contains(&s));
        let outcome = if ok {
            DeliveryOutcome::Delivered
        } else {
            after_failure(c.delivery.created_at, now, c.delivery.attempts, jitter())
        };
        let recorded = self
            .store
            .record_attempt(&AttemptRecord {
                delivery_id: c.delivery.id,
                claimed_attempts: c.delivery.attempts,
                at: r.at,
                status: r.status.map(i64::from),
                error: r.error.as_deref().map(truncate),
                duration_ms: r.duration_ms,
                outcome,
            })
            .await?;
        let label = match (ok, outcome) {
            (true, _) => "delivered",
            (false, DeliveryOutcome::Failed) => "failed",
            _ => "retry",
        };
        crate::metrics::counter_add(
            "camgate_webhook_attempts_total",
            "Webhook delivery attempts, by what became of the delivery.",
            &[("outcome", label)],
            1,
        );
        if !recorded {
            tracing::info!(
                delivery = c.delivery.id,
                "webhook attempt recorded after its lease was taken over"
            );
        }
        if ok {
            if c.webhook.failing_since.is_some() {
                self.store.webhook_recovered(c.webhook.id).await?;
            }
        } else if let Some(since) = self.store.webhook_failing(c.webhook.id, now).await? {
            if should_disable(since, now) && self.store.disable_webhook(c.webhook.id, now).await? {
                tracing::warn!(
                    webhook = c.webhook.id,
                    user = c.webhook.user_id,
                    "webhook disabled after a day of failed deliveries"
                );
            }
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn special_purpose_addresses_are_refused() {
        for a in [
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "3fff::1",
            "2002:7f00:1::1",
            "2002:c0a8:101::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(refused_ip(v4(a)).is_some(), "{a} must be refused");
            assert!(check_ip("h", v4(a), false).is_err());
            assert!(
                check_ip("h", v4(a), true).is_ok(),
                "allowed when configured"
            );
        }
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.215.14",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "169.253.0.1",
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(refused_ip(v4(a)), None, "{a} must pass");
        }
    }

    #[tokio::test]
    async fn urls_are_checked() {
        for (u, private) in [
            ("https://127.0.0.1/hook", false),
            ("https://[::1]/hook", false),
            ("https://10.0.0.5/hook", false),
            ("https://192.168.0.1:8443/hook", false),
            ("https://169.254.169.254/latest/meta-data/", false),
            ("https://0x7f.1/hook", false),
            ("https://[::ffff:7f00:1]/hook", false),
            ("https://localhost/hook", false),
            ("http://93.184.215.14/hook", false),
            ("ftp://93.184.215.14/hook", true),
            ("not a url", true),
            ("/relative", true),
            ("", true),
        ] {
            assert!(check_url(u, private).await.is_err(), "{u} must be refused");
        }
        let long = format!("https://93.184.215.14/{}", "a".repeat(MAX_URL_LEN));
        assert!(check_url(&long, true).await.is_err());
        assert!(check_url("https://93.184.215.14/hook", false).await.is_ok());
        assert!(check_url("http://127.0.0.1:9/hook", true).await.is_ok());
        assert!(check_url("https://localhost/hook", true).await.is_ok());
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_t_dot_body() {
        // Computed independently: printf '%s' '1700000000.{"a":1}' |
        //   openssl dgst -sha256 -hmac 'whsec_test' -hex
        assert_eq!(
            signature("whsec_test", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn retries_double_from_a_second_with_jitter_and_a_cap() {
        assert_eq!(retry_delay_ms(1, 0.0), 1000);
        assert_eq!(retry_delay_ms(2, 0.0), 2000);
        assert_eq!(retry_delay_ms(3, 0.0), 4000);
        assert_eq!(retry_delay_ms(1, 0.2), 1200);
        assert_eq!(retry_delay_ms(1, -0.2), 800);
        assert_eq!(retry_delay_ms(1, 5.0), 1200, "jitter is clamped");
        assert_eq!(retry_delay_ms(12, 0.0), 2_048_000);
        assert_eq!(retry_delay_ms(13, 0.2), 3_600_000, "at most an hour");
        assert_eq!(retry_delay_ms(1000, 0.0), 3_600_000);
        for _ in 0..1000 {
            let j = jitter();
            assert!((-JITTER..=JITTER).contains(&j));
        }
    }

    #[test]
    fn a_delivery_fails_when_the_next_try_would_be_past_a_day() {
        assert_eq!(after_failure(0, 0, 1, 0.0), DeliveryOutcome::Retry(1));
        assert_eq!(after_failure(0, 10, 3, 0.0), DeliveryOutcome::Retry(14));
        assert_eq!(
            after_failure(0, 86_400 - 3600, 30, 0.0),
            DeliveryOutcome::Retry(86_400)
        );
        assert_eq!(
            after_failure(0, 86_400 - 3599, 30, 0.0),
            DeliveryOutcome::Failed
        );
        assert!(!should_disable(100, 100 + 86_399));
        assert!(should_disable(100, 100 + 86_400));
    }

    #[test]
    fn events_are_known_kinds_in_canonical_order() {
        let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_events(&e(&["app.revoked", "camera.event", "camera.event"])).unwrap(),
            e(&["camera.event", "app.revoked"])
        );
        assert!(parse_events(&[]).is_err());
        assert!(parse_events(&e(&["camera.exploded"])).is_err());
    }
}
