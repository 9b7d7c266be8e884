//! Layered configuration: command-line flag > `CAMGATE_*` environment variable > TOML file
//! (`--config`) > built-in default. Clap resolves flag and environment; this module merges
//! the file and the defaults, and rejects unknown file keys by name.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use camgate_core::authorize::{AuthzSettings, MAX_CODE_TTL_SECS};
use camgate_core::jwt::JwtAlg;
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
    /// Nice value (0..=19) of the password-hashing threads: how far they step back when
    /// request handling wants the CPU (0 = the same priority).
    pub hash_nice: Option<i32>,
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
    /// Browser sessions end after this many seconds without activity (default 1800).
    pub session_idle_timeout_secs: Option<i64>,
    /// Browser sessions end this many seconds after login, however active (default 28800).
    pub session_absolute_timeout_secs: Option<i64>,
    /// Authorization code lifetime, 1..=600 seconds (default 60; RFC 6749 §4.1.2).
    pub authorization_code_ttl_secs: Option<i64>,
    /// Device code lifetime, 60..=1800 seconds (default 600; RFC 8628 §3.2).
    pub device_code_ttl_secs: Option<i64>,
    /// Seconds a device waits between polls, 1..=60 (default 5; RFC 8628 §3.2).
    pub device_poll_interval_secs: Option<i64>,
    /// Failed logins allowed per account per window (default 100; OWASP ASVS 2.2.1).
    pub login_max_failures_per_account: Option<i64>,
    /// Failed logins allowed per client address per window (default 1000).
    pub login_max_failures_per_ip: Option<i64>,
    /// The login-failure window in seconds (default 3600).
    pub login_failure_window_secs: Option<i64>,
    /// Algorithm of new JWT signing keys: `EdDSA` (default) or `ES256`.
    pub jwt_alg: Option<String>,
    /// After a client secret is rotated on the dashboard, the old secret keeps working this
    /// many seconds (default 0: it stops at once; at most 30 days).
    pub client_secret_overlap_secs: Option<i64>,
    /// Reverse proxies (addresses or CIDR ranges) whose X-Forwarded-For / X-Forwarded-Proto
    /// are believed (default: loopback only).
    pub trusted_proxies: Option<Vec<String>>,
    /// A file holding 32 random bytes, base64 (`head -c 32 /dev/urandom | base64`): the key
    /// that seals TOTP keys at rest. Kept outside the database, so a copy of the database
    /// alone does not reveal them. Default: a key kept in the database (with a warning).
    pub data_key_file: Option<std::path::PathBuf>,
    /// Administrators must sign in with a second factor to use the admin pages (default false).
    pub require_mfa_for_admins: Option<bool>,
    /// Dealers must have two-factor sign-in on to manage customers or act for them (default
    /// false).
    pub require_mfa_for_dealers: Option<bool>,
    /// Wrong second-factor codes allowed per account per window (default 10).
    pub mfa_max_failures: Option<i64>,
    /// The second-factor failure window in seconds (default 3600).
    pub mfa_failure_window_secs: Option<i64>,
    /// Lifetime of OpenID Connect id_tokens, 60..=86400 seconds (default 3600).
    pub id_token_ttl_secs: Option<i64>,
    /// Lifetime of the tokens in signed media URLs, 10..=3600 seconds (default 300).
    pub media_url_ttl_secs: Option<i64>,
    /// Events and recordings older than this many seconds are dropped by the sweeper and
    /// `camgate db purge` (default 30 days; 0 keeps them forever).
    pub media_retention_secs: Option<i64>,
    /// Bytes of camera listings each node keeps in memory, answered again while unchanged
    /// (default 8 MiB; 0: none).
    pub camera_listing_cache_bytes: Option<usize>,
    /// Events, recordings and snapshots one camera may post per minute on one node (default
    /// 120; 0: no limit).
    pub camera_posts_per_minute: Option<u32>,
    /// `[webhooks]`: outgoing webhook deliveries.
    pub webhooks: Option<WebhooksFile>,
}

/// The `[webhooks]` section.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksFile {
    /// Webhook URLs may target loopback, private and link-local addresses, and use plain http
    /// (default false: refused, against SSRF). Env `CAMGATE_WEBHOOKS_ALLOW_PRIVATE_TARGETS=1`.
    pub allow_private_targets: Option<bool>,
    /// This node runs the delivery worker (default true). Off: the node still accepts events
    /// and queues their deliveries; other nodes deliver them (API-only nodes).
    /// Env `CAMGATE_WEBHOOKS_DELIVER=0`.
    pub deliver: Option<bool>,
}

/// `CAMGATE_WEBHOOKS_ALLOW_PRIVATE_TARGETS`: overrides `[webhooks] allow_private_targets`.
pub const ENV_ALLOW_PRIVATE_TARGETS: &str = "CAMGATE_WEBHOOKS_ALLOW_PRIVATE_TARGETS";
/// `CAMGATE_WEBHOOKS_DELIVER`: overrides `[webhooks] deliver`.
pub const ENV_DELIVER: &str = "CAMGATE_WEBHOOKS_DELIVER";

/// A boolean environment value: `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`.
pub fn env_bool(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => anyhow::bail!("{name} must be 1 or 0 (true or false), not `{value}`"),
    }
}

impl FileConfig {
    /// Environment variables that set file keys (precedence: environment over file).
    pub fn apply_env(&mut self) -> anyhow::Result<()> {
        if let Ok(v) = std::env::var(ENV_ALLOW_PRIVATE_TARGETS) {
            let on = env_bool(ENV_ALLOW_PRIVATE_TARGETS, &v)?;
            self.webhooks
                .get_or_insert_with(WebhooksFile::default)
                .allow_private_targets = Some(on);
        }
        if let Ok(v) = std::env::var(ENV_DELIVER) {
            let on = env_bool(ENV_DELIVER, &v)?;
            self.webhooks
                .get_or_insert_with(WebhooksFile::default)
                .deliver = Some(on);
        }
        Ok(())
    }
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
    pub hash_nice: i32,
    pub store: StoreOptions,
    pub sweep_interval: Duration,
    pub sweep_batch: i64,
    pub token_retention_secs: i64,
    pub log_format: String,
    pub profiles: Profiles,
    /// The browser sign-in flow: authorization code lifetime, session timeouts and login
    /// throttling.
    pub authz: AuthzSettings,
    pub jwt_alg: JwtAlg,
    /// Seconds a rotated client secret keeps working, so that a deployed application can
    /// switch to the new secret without an outage.
    pub client_secret_overlap_secs: i64,
    pub limits: crate::limits::Limits,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<crate::http::ops::ProxyNet>,
    /// The key sealing TOTP keys (from `data_key_file`).
    pub data_key: Option<[u8; 32]>,
    pub mfa: camgate_core::mfa::MfaSettings,
    pub oidc: camgate_core::oidc::OidcSettings,
    pub media_url_ttl_secs: i64,
    pub media_retention_secs: i64,
    pub camera_listing_cache_bytes: usize,
    pub camera_posts_per_minute: u32,
    /// `[webhooks] allow_private_targets`.
    pub webhooks_allow_private_targets: bool,
    /// `[webhooks] deliver`: this node runs the delivery worker.
    pub webhooks_deliver: bool,
}

/// Reads `data_key_file`: 32 bytes, base64 (standard alphabet, padding optional).
fn read_data_key(path: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    use base64::Engine;
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!("config: cannot read data_key_file {}: {e}", path.display())
    })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text.trim()))
        .map_err(|_| anyhow::anyhow!("config: data_key_file must hold base64 (32 bytes)"))?;
    bytes.try_into().map_err(|_| {
        anyhow::anyhow!(
            "config: data_key_file must hold exactly 32 bytes (head -c 32 /dev/urandom | base64)"
        )
    })
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
        let authz = authz_settings(&file)?;
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
        let client_secret_overlap_secs = file.client_secret_overlap_secs.unwrap_or(0);
        if !(0..=30 * 86_400).contains(&client_secret_overlap_secs) {
            anyhow::bail!(
                "config: client_secret_overlap_secs must be between 0 and 2592000 (30 days)"
            );
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
        let jwt_alg = match file.jwt_alg.as_deref() {
            None => JwtAlg::default(),
            Some(a) => JwtAlg::parse(a)
                .ok_or_else(|| anyhow::anyhow!("config: jwt_alg must be `EdDSA` or `ES256`"))?,
        };
        let trusted_proxies = file
            .trusted_proxies
            .unwrap_or_else(|| vec!["127.0.0.1/8".into(), "::1".into()])
            .iter()
            .map(|p| {
                crate::http::ops::ProxyNet::parse(p).ok_or_else(|| {
                    anyhow::anyhow!(
                        "config: trusted_proxies: `{p}` is not an address or CIDR range"
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let data_key = file
            .data_key_file
            .as_deref()
            .map(read_data_key)
            .transpose()?;
        let mfa = camgate_core::mfa::MfaSettings {
            require_for_admins: file.require_mfa_for_admins.unwrap_or(false),
            require_for_dealers: file.require_mfa_for_dealers.unwrap_or(false),
            max_failures: match file.mfa_max_failures {
                None => 10,
                Some(n) if (1..=1000).contains(&n) => n,
                Some(_) => anyhow::bail!("config: mfa_max_failures must be 1..=1000"),
            },
            window_secs: match file.mfa_failure_window_secs {
                None => 3600,
                Some(n) if (60..=86_400).contains(&n) => n,
                Some(_) => anyhow::bail!("config: mfa_failure_window_secs must be 60..=86400"),
            },
        };
        let oidc = camgate_core::oidc::OidcSettings {
            id_token_ttl_secs: match file.id_token_ttl_secs {
                None => 3600,
                Some(n) if (60..=86_400).contains(&n) => n,
                Some(_) => anyhow::bail!("config: id_token_ttl_secs must be 60..=86400"),
            },
        };
        let media_url_ttl_secs = match file.media_url_ttl_secs {
            None => 300,
            Some(n) if (10..=3600).contains(&n) => n,
            Some(_) => anyhow::bail!("config: media_url_ttl_secs must be 10..=3600"),
        };
        let media_retention_secs = match file.media_retention_secs {
            None => 30 * 86_400,
            Some(n) if n >= 0 => n,
            Some(_) => anyhow::bail!("config: media_retention_secs must be 0 or more"),
        };
        let webhooks_allow_private_targets = file
            .webhooks
            .as_ref()
            .and_then(|w| w.allow_private_targets)
            .unwrap_or(false);
        let webhooks_deliver = file
            .webhooks
            .as_ref()
            .and_then(|w| w.deliver)
            .unwrap_or(true);
        Ok(Self {
            webhooks_allow_private_targets,
            webhooks_deliver,
            data_key,
            mfa,
            oidc,
            media_url_ttl_secs,
            media_retention_secs,
            camera_listing_cache_bytes: match file.camera_listing_cache_bytes {
                None => camgate_core::listings::DEFAULT_BUDGET,
                Some(n) if n <= 1 << 30 => n,
                Some(_) => {
                    anyhow::bail!("config: camera_listing_cache_bytes must be at most 1 GiB")
                }
            },
            camera_posts_per_minute: file
                .camera_posts_per_minute
                .unwrap_or(camgate_core::events::POSTS_PER_MINUTE),
            jwt_alg,
            bind: bind.or(file.bind).unwrap_or_else(|| DEFAULT_BIND.into()),
            database_url: database_url
                .or(file.database_url)
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            issuer: file.issuer.map(|s| s.trim_end_matches('/').to_string()),
            refresh_grace_secs: grace,
            body_limit_bytes: file.body_limit_bytes.unwrap_or(64 * 1024),
            hash_workers: file.hash_workers.unwrap_or_else(cores).max(1),
            hash_queue: file.hash_queue.unwrap_or(64),
            hash_nice: match file.hash_nice {
                None => camgate_core::password::DEFAULT_NICE,
                Some(n) if (0..=19).contains(&n) => n,
                Some(n) => anyhow::bail!("config: hash_nice must be 0..=19, not {n}"),
            },
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
            authz,
            client_secret_overlap_secs,
            limits,
            trusted_proxies,
        })
    }
}

fn authz_settings(file: &FileConfig) -> anyhow::Result<AuthzSettings> {
    let mut a = AuthzSettings::default();
    let positive = |name: &str, v: Option<i64>, default: i64| -> anyhow::Result<i64> {
        match v {
            None => Ok(default),
            Some(v) if v > 0 => Ok(v),
            Some(_) => anyhow::bail!("config: {name} must be positive"),
        }
    };
    a.code_ttl_secs = positive(
        "authorization_code_ttl_secs",
        file.authorization_code_ttl_secs,
        a.code_ttl_secs,
    )?;
    if a.code_ttl_secs > MAX_CODE_TTL_SECS {
        anyhow::bail!(
            "config: authorization_code_ttl_secs must be at most {MAX_CODE_TTL_SECS} (RFC 6749 §4.1.2)"
        );
    }
    a.device_code_ttl_secs = positive(
        "device_code_ttl_secs",
        file.device_code_ttl_secs,
        a.device_code_ttl_secs,
    )?;
    if !(60..=1800).contains(&a.device_code_ttl_secs) {
        anyhow::bail!("config: device_code_ttl_secs must be between 60 and 1800");
    }
    a.device_poll_interval_secs = positive(
        "device_poll_interval_secs",
        file.device_poll_interval_secs,
        a.device_poll_interval_secs,
    )?;
    if a.device_poll_interval_secs > 60 {
        anyhow::bail!("config: device_poll_interval_secs must be at most 60");
    }
    a.session.idle_timeout_secs = positive(
        "session_idle_timeout_secs",
        file.session_idle_timeout_secs,
        a.session.idle_timeout_secs,
    )?;
    a.session.absolute_timeout_secs = positive(
        "session_absolute_timeout_secs",
        file.session_absolute_timeout_secs,
        a.session.absolute_timeout_secs,
    )?;
    if a.session.idle_timeout_secs > a.session.absolute_timeout_secs {
        anyhow::bail!(
            "config: session_idle_timeout_secs must not exceed session_absolute_timeout_secs"
        );
    }
    a.throttle.max_failures_per_account = positive(
        "login_max_failures_per_account",
        file.login_max_failures_per_account,
        a.throttle.max_failures_per_account,
    )?;
    a.throttle.max_failures_per_ip = positive(
        "login_max_failures_per_ip",
        file.login_max_failures_per_ip,
        a.throttle.max_failures_per_ip,
    )?;
    a.throttle.window_secs = positive(
        "login_failure_window_secs",
        file.login_failure_window_secs,
        a.throttle.window_secs,
    )?;
    Ok(a)
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
    fn hash_nice_is_a_nice_value() {
        let c = Config::resolve(None, None, FileConfig::default()).unwrap();
        assert_eq!(c.hash_nice, camgate_core::password::DEFAULT_NICE);
        let f: FileConfig = toml::from_str("hash_nice = 0").unwrap();
        assert_eq!(Config::resolve(None, None, f).unwrap().hash_nice, 0);
        for bad in ["hash_nice = 20", "hash_nice = -1"] {
            let f: FileConfig = toml::from_str(bad).unwrap();
            let err = Config::resolve(None, None, f).unwrap_err().to_string();
            assert!(err.contains("hash_nice"), "{err}");
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = toml::from_str::<FileConfig>("bnid = 1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bnid"), "{err}");
    }

    #[test]
    fn authorize_settings() {
        let c = Config::resolve(None, None, FileConfig::default()).unwrap();
        assert_eq!(c.authz.code_ttl_secs, 60);
        assert_eq!(c.authz.throttle.max_failures_per_account, 100);
        assert_eq!(c.authz.throttle.window_secs, 3600);
        let file: FileConfig = toml::from_str(
            "authorization_code_ttl_secs = 120\nsession_idle_timeout_secs = 600\nsession_absolute_timeout_secs = 3600",
        )
        .unwrap();
        let c = Config::resolve(None, None, file).unwrap();
        assert_eq!(c.authz.code_ttl_secs, 120);
        assert_eq!(c.authz.session.idle_timeout_secs, 600);
        assert_eq!(c.authz.session.absolute_timeout_secs, 3600);
        let too_long: FileConfig = toml::from_str("authorization_code_ttl_secs = 601").unwrap();
        assert!(Config::resolve(None, None, too_long).is_err());
    }

    #[test]
    fn webhooks_section() {
        let c = Config::resolve(None, None, FileConfig::default()).unwrap();
        assert!(!c.webhooks_allow_private_targets);
        assert!(c.webhooks_deliver);
        let f: FileConfig = toml::from_str("[webhooks]\ndeliver = false").unwrap();
        assert!(!Config::resolve(None, None, f).unwrap().webhooks_deliver);
        let f: FileConfig = toml::from_str("[webhooks]\nallow_private_targets = true").unwrap();
        assert!(
            Config::resolve(None, None, f)
                .unwrap()
                .webhooks_allow_private_targets
        );
        let err = toml::from_str::<FileConfig>("[webhooks]\nallow_privat = true")
            .unwrap_err()
            .to_string();
        assert!(err.contains("allow_privat"), "{err}");
        assert!(env_bool("X", "1").unwrap());
        assert!(!env_bool("X", "false").unwrap());
        assert!(env_bool("X", "maybe").is_err());
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
