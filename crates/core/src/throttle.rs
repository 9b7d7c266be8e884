//! Brute-force protection for password logins (the login page and the password grant):
//! failures are counted per account and per client address in a fixed window kept in the
//! database, so every node sharing it enforces one limit. OWASP ASVS 2.2.1: "no more than 100
//! failed attempts per hour is possible on a single account". Past the limit every attempt is
//! refused, right or wrong, until the window passes.
//!
//! Accounts are keyed by the name typed, whether or not such a user exists, so the answer for
//! an unknown user and a known one is the same. Keys are stored as digests.

use std::net::IpAddr;

use crate::error::{OAuthError, OAuthErrorCode, StoreError};
use crate::model::normalize_email;
use crate::secret;
use crate::Core;

#[derive(Debug, Clone)]
pub struct ThrottleSettings {
    /// Failures allowed per account in one window (ASVS 2.2.1: at most 100 per hour).
    pub max_failures_per_account: i64,
    /// Failures allowed per client address (IPv6: per /64) in one window.
    pub max_failures_per_ip: i64,
    pub window_secs: i64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            max_failures_per_account: 100,
            max_failures_per_ip: 1000,
            window_secs: 3600,
        }
    }
}

fn account_key(username: &str) -> Vec<u8> {
    secret::digest(&format!("account\0{}", normalize_email(username)))
}

/// IPv4 addresses count one by one; IPv6 ones by /64 (one host usually has a whole /64).
fn ip_key(ip: &str) -> Vec<u8> {
    secret::digest(&format!("ip\0{}", ip_bucket(ip)))
}

/// The address a client counts as: itself for IPv4, its /64 for IPv6.
pub(crate) fn ip_bucket(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_string(),
    }
}

/// The token endpoint's refusal: 429 with Retry-After.
pub fn too_many_attempts(retry_after: u64) -> OAuthError {
    OAuthError {
        code: OAuthErrorCode::SlowDown,
        description: format!(
            "Too many failed sign-in attempts. Try again in {}.",
            human_wait(retry_after)
        ),
        retry_after: Some(retry_after),
    }
}

/// "about 12 minutes", "45 seconds".
pub fn human_wait(secs: u64) -> String {
    if secs < 60 {
        format!("{secs} seconds")
    } else {
        let m = secs.div_ceil(60);
        if m == 1 {
            "about a minute".into()
        } else {
            format!("about {m} minutes")
        }
    }
}

impl Core {
    fn throttle_keys(&self, username: &str, ip: Option<&str>) -> Vec<(Vec<u8>, i64)> {
        let t = &self.settings.authz.throttle;
        let mut keys = vec![(account_key(username), t.max_failures_per_account)];
        if let Some(ip) = ip {
            keys.push((ip_key(ip), t.max_failures_per_ip));
        }
        keys
    }

    /// `Some(retry_after)` when the account or the address has used up its failures.
    pub async fn login_throttled(
        &self,
        username: &str,
        ip: Option<&str>,
    ) -> Result<Option<u64>, StoreError> {
        let keys = self.throttle_keys(username, ip);
        self.throttle_wait(&keys, self.settings.authz.throttle.window_secs)
            .await
    }

    /// Counts a failed login. Errors are logged, not returned: the login already failed.
    pub async fn login_failed(&self, username: &str, ip: Option<&str>) {
        let keys = self.throttle_keys(username, ip);
        self.throttle_fail(&keys, self.settings.authz.throttle.window_secs)
            .await
    }

    /// `Some(retry_after)` when any of `keys` has used up its failures (`(key, max)`) in its
    /// current window of `window` seconds.
    pub(crate) async fn throttle_wait(
        &self,
        keys: &[(Vec<u8>, i64)],
        window: i64,
    ) -> Result<Option<u64>, StoreError> {
        let now = self.now();
        let mut wait: Option<u64> = None;
        for (key, max) in keys {
            if let Some((start, failures)) = self.store.throttle_failures(key, now - window).await?
            {
                if failures >= *max {
                    let w = (start + window - now).max(1) as u64;
                    wait = Some(wait.map_or(w, |x| x.max(w)));
                }
            }
        }
        Ok(wait)
    }

    /// Counts one failure under each of `keys`; errors are logged.
    pub(crate) async fn throttle_fail(&self, keys: &[(Vec<u8>, i64)], window: i64) {
        let now = self.now();
        for (key, _) in keys {
            if let Err(e) = self
                .store
                .throttle_record_failure(key, now, now - window)
                .await
            {
                tracing::warn!(error = %e, "could not count a failure");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(account_key("A@B.c "), account_key("a@b.c"));
        assert_eq!(ip_key("2001:db8::1"), ip_key("2001:db8::2"));
        assert_ne!(ip_key("2001:db8::1"), ip_key("2001:db9::1"));
        assert_eq!(ip_key("::ffff:10.0.0.1"), ip_key("10.0.0.1"));
        assert_eq!(human_wait(30), "30 seconds");
        assert_eq!(human_wait(3600), "about 60 minutes");
    }
}
