//! `camgate config check` and secrets from files: the resolved configuration as TOML-like
//! lines with secrets redacted, and `CAMGATE_*_FILE` variables for secrets.

use std::fmt::Write as _;

use crate::config::Config;

/// Hides a password in a database URL.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// `value` (from a flag or `NAME`) or else the content of the file `NAME_FILE` names (trailing
/// newline removed). Both set is an error: which one wins would be a guess.
pub fn value_or_file(name: &str, value: Option<String>) -> anyhow::Result<Option<String>> {
    let file_var = format!("{name}_FILE");
    let Some(path) = std::env::var_os(&file_var) else {
        return Ok(value);
    };
    if std::env::var_os(name).is_some() {
        anyhow::bail!("both {name} and {file_var} are set; use one");
    }
    if value.is_some() {
        // Given as a flag: flags win over the environment.
        return Ok(value);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "{file_var}: cannot read {}: {e}",
            std::path::Path::new(&path).display()
        )
    })?;
    let v = text.trim_end_matches(['\r', '\n']).to_string();
    if v.is_empty() {
        anyhow::bail!("{file_var}: the file is empty");
    }
    Ok(Some(v))
}

fn q(s: &str) -> String {
    format!("{s:?}")
}

/// The resolved configuration, one `key = value` line per setting (the file's key names),
/// secrets redacted.
pub fn report(c: &Config) -> String {
    let mut o = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(o, "{k} = {v}");
    };
    line("bind", q(&c.bind));
    line("database_url", q(&redact_url(&c.database_url)));
    match &c.issuer {
        Some(i) => line("issuer", q(i)),
        None => line("# issuer", "unset (links use the Host header)".into()),
    }
    line("refresh_grace_secs", c.refresh_grace_secs.to_string());
    line("body_limit_bytes", c.body_limit_bytes.to_string());
    line("hash_workers", c.hash_workers.to_string());
    line("hash_queue", c.hash_queue.to_string());
    line("hash_nice", c.hash_nice.to_string());
    line("db_max_connections", c.store.max_connections.to_string());
    line(
        "db_acquire_timeout_ms",
        c.store.acquire_timeout.as_millis().to_string(),
    );
    match &c.store.pg_ssl_mode {
        Some(m) => line("pg_ssl_mode", q(m)),
        None => line("# pg_ssl_mode", "unset".into()),
    }
    match &c.store.pg_ssl_root_cert {
        Some(m) => line("pg_ssl_root_cert", q(m)),
        None => line("# pg_ssl_root_cert", "unset".into()),
    }
    line(
        "sweep_interval_secs",
        c.sweep_interval.as_secs().to_string(),
    );
    line("sweep_batch", c.sweep_batch.to_string());
    line("token_retention_secs", c.token_retention_secs.to_string());
    line("log_format", q(&c.log_format));
    line(
        "session_idle_timeout_secs",
        c.authz.session.idle_timeout_secs.to_string(),
    );
    line(
        "session_absolute_timeout_secs",
        c.authz.session.absolute_timeout_secs.to_string(),
    );
    line(
        "authorization_code_ttl_secs",
        c.authz.code_ttl_secs.to_string(),
    );
    line(
        "device_code_ttl_secs",
        c.authz.device_code_ttl_secs.to_string(),
    );
    line(
        "device_poll_interval_secs",
        c.authz.device_poll_interval_secs.to_string(),
    );
    line(
        "login_max_failures_per_account",
        c.authz.throttle.max_failures_per_account.to_string(),
    );
    line(
        "login_max_failures_per_ip",
        c.authz.throttle.max_failures_per_ip.to_string(),
    );
    line(
        "login_failure_window_secs",
        c.authz.throttle.window_secs.to_string(),
    );
    line(
        "trusted_proxies",
        format!(
            "{:?}",
            c.trusted_proxies
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
        ),
    );
    match &c.data_key {
        Some(_) => line("# data_key_file", "set (TOTP keys sealed with it)".into()),
        None => line(
            "# data_key_file",
            "unset (TOTP keys sealed with a key kept in the database)".into(),
        ),
    }
    line(
        "require_mfa_for_admins",
        c.mfa.require_for_admins.to_string(),
    );
    line(
        "require_mfa_for_dealers",
        c.mfa.require_for_dealers.to_string(),
    );
    line("mfa_max_failures", c.mfa.max_failures.to_string());
    line("mfa_failure_window_secs", c.mfa.window_secs.to_string());
    line("id_token_ttl_secs", c.oidc.id_token_ttl_secs.to_string());
    line("media_url_ttl_secs", c.media_url_ttl_secs.to_string());
    line("media_retention_secs", c.media_retention_secs.to_string());
    line(
        "camera_listing_cache_bytes",
        c.camera_listing_cache_bytes.to_string(),
    );
    line(
        "camera_posts_per_minute",
        c.camera_posts_per_minute.to_string(),
    );
    line(
        "webhooks.allow_private_targets",
        c.webhooks_allow_private_targets.to_string(),
    );
    line("webhooks.deliver", c.webhooks_deliver.to_string());
    line(
        "# profiles",
        c.profiles.names().collect::<Vec<_>>().join(", "),
    );
    o
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::FileConfig;

    const EXAMPLE: &str = include_str!("../../../camgate.example.toml");

    /// Every key FileConfig accepts, taken from serde's own "expected one of" message, so a
    /// key added to the code without documentation fails this test.
    fn file_keys() -> Vec<String> {
        let err = toml::from_str::<FileConfig>("zz_not_a_key = 1")
            .unwrap_err()
            .to_string();
        let list = err.split("expected one of").nth(1).unwrap();
        list.split(',')
            .map(|k| k.trim().trim_matches('`').to_string())
            .filter(|k| !k.is_empty())
            .collect()
    }

    #[test]
    fn example_documents_every_key() {
        let keys = file_keys();
        assert!(keys.len() >= 20, "{keys:?}");
        for k in keys {
            let documented = EXAMPLE.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.starts_with(&format!("{k} ="))
                    || l.starts_with(&format!("[{k}."))
                    || l.starts_with(&format!("[{k}]"))
            });
            assert!(documented, "camgate.example.toml does not document `{k}`");
        }
    }

    #[test]
    fn example_defaults_are_the_real_defaults() {
        let file: FileConfig = toml::from_str(EXAMPLE).unwrap();
        let from_example = Config::resolve(None, None, file).unwrap();
        let default = Config::resolve(None, None, FileConfig::default()).unwrap();
        assert_eq!(report(&from_example), report(&default));
        // The commented-out profile example is itself valid.
        let profile: String = EXAMPLE
            .lines()
            .skip_while(|l| !l.starts_with("# [profiles."))
            .map(|l| l.trim_start_matches("# ").to_string() + "\n")
            .collect();
        let file: FileConfig = toml::from_str(&profile).unwrap();
        let c = Config::resolve(None, None, file).unwrap();
        assert!(c.profiles.contains("short"));
    }

    #[test]
    fn report_redacts_the_database_password() {
        let c = Config::resolve(
            None,
            Some("postgres://camgate:hunter2@db:5432/camgate".into()),
            FileConfig::default(),
        )
        .unwrap();
        let r = report(&c);
        assert!(!r.contains("hunter2"), "{r}");
        assert!(r.contains("database_url = \"postgres://camgate:***@db:5432/camgate\""));
    }
}
