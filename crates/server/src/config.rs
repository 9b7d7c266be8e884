//! Layered configuration: command-line flag > `CAMGATE_*` environment variable > TOML file
//! (`--config`) > built-in default. Clap resolves flag and environment; this module merges
//! the file and the defaults, and rejects unknown file keys by name.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use camgate_core::profile::{Profile, Profiles};
use camgate_store::StoreOptions;
use serde::Deserialize;

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://camgate.db";

/// The TOML file. Every key is optional; unknown keys are an error naming the key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub bind: Option<String>,
    pub database_url: Option<String>,
    /// Public base URL of this server (`https://auth.example.com`): the RFC 8414 issuer and the
    /// base of absolute links. Without it, links are built from the request's Host header.
    pub issuer: Option<String>,
    pub refresh_grace_secs: Option<i64>,
    pub body_limit_bytes: Option<usize>,
    pub hash_workers: Option<usize>,
    pub hash_queue: Option<usize>,
    pub db_max_connections: Option<u32>,
    pub db_acquire_timeout_ms: Option<u64>,
    pub pg_ssl_mode: Option<String>,
    pub pg_ssl_root_cert: Option<String>,
    pub sweep_interval_secs: Option<u64>,
    pub sweep_batch: Option<i64>,
    /// Seconds revoked or used tokens are kept before the sweeper deletes them.
    pub token_retention_secs: Option<i64>,
    pub log_format: Option<String>,
    /// Resource limits (see `limits.rs`).
    pub max_connections: Option<usize>,
    pub header_read_timeout_secs: Option<u64>,
    pub max_header_bytes: Option<usize>,
    pub request_timeout_secs: Option<u64>,
    pub token_rate_limit_per_minute: Option<u32>,
    pub token_rate_limit_burst: Option<u32>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: String,
    pub database_url: String,
    pub issuer: Option<String>,
    pub refresh_grace_secs: i64,
    pub body_limit_bytes: usize,
    pub hash_workers: usize,
    pub hash_queue: usize,
    pub store: StoreOptions,
    pub sweep_interval: Duration,
    pub sweep_batch: i64,
    pub token_retention_secs: i64,
    pub log_format: String,
    pub profiles: Profiles,
    pub limits: crate::limits::Limits,
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

impl Config {
    /// Merges flag/env values (already combined by clap) over the file over the defaults.
    pub fn resolve(
        bind: Option<String>,
        database_url: Option<String>,
        file: FileConfig,
    ) -> anyhow::Result<Self> {
        let limits = crate::limits::Limits::from_file(&file)?;
        let mut profiles = Profiles::builtin();
        for (name, p) in file.profiles {
            profiles
                .insert(&name, p)
                .map_err(|e| anyhow::anyhow!("config: {e}"))?;
        }
        let grace = file.refresh_grace_secs.unwrap_or(10);
        if !(0..=3600).contains(&grace) {
            anyhow::bail!("config: refresh_grace_secs must be between 0 and 3600");
        }
        let log_format = file.log_format.unwrap_or_else(|| "text".into());
        if log_format != "text" && log_format != "json" {
            anyhow::bail!("config: log_format must be `text` or `json`");
        }
        if let Some(issuer) = &file.issuer {
            let u = url::Url::parse(issuer)
                .map_err(|_| anyhow::anyhow!("config: issuer must be an absolute URL"))?;
            if u.query().is_some() || u.fragment().is_some() {
                anyhow::bail!("config: issuer must not have a query or fragment (RFC 8414 §2)");
            }
        }
        Ok(Self {
            bind: bind.or(file.bind).unwrap_or_else(|| DEFAULT_BIND.into()),
            database_url: database_url
                .or(file.database_url)
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            issuer: file.issuer.map(|s| s.trim_end_matches('/').to_string()),
            refresh_grace_secs: grace,
            body_limit_bytes: file.body_limit_bytes.unwrap_or(64 * 1024),
            hash_workers: file.hash_workers.unwrap_or_else(cores).max(1),
            hash_queue: file.hash_queue.unwrap_or(64),
            store: StoreOptions {
                max_connections: file.db_max_connections.unwrap_or(8),
                acquire_timeout: Duration::from_millis(file.db_acquire_timeout_ms.unwrap_or(3000)),
                pg_ssl_mode: file.pg_ssl_mode,
                pg_ssl_root_cert: file.pg_ssl_root_cert,
            },
            sweep_interval: Duration::from_secs(file.sweep_interval_secs.unwrap_or(300)),
            sweep_batch: file.sweep_batch.unwrap_or(1000).max(1),
            token_retention_secs: file.token_retention_secs.unwrap_or(86_400).max(0),
            log_format,
            profiles,
            limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_flag_over_file_over_default() {
        let file: FileConfig =
            toml::from_str("bind = \"127.0.0.1:9\"\nrefresh_grace_secs = 3").unwrap();
        let c = Config::resolve(Some("127.0.0.1:1".into()), None, file).unwrap();
        assert_eq!(c.bind, "127.0.0.1:1");
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.refresh_grace_secs, 3);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = toml::from_str::<FileConfig>("bnid = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bnid"), "{err}");
    }

    #[test]
    fn custom_profile() {
        let file: FileConfig = toml::from_str(
            "[profiles.short]\naccess = \"opaque\"\naccess_ttl_secs = 60\nrefresh = \"rotate\"\ntoken_type = \"Bearer\"",
        )
        .unwrap();
        let c = Config::resolve(None, None, file).unwrap();
        assert_eq!(c.profiles.get("short").unwrap().access_ttl_secs, 60);
    }
}
