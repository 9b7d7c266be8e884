//! camgate's server: configuration, the HTTP surfaces, the background sweeper, and the
//! command line (in `main.rs` and `cli/`). `build` wires a [`Core`] to a store and returns
//! the router; tests call it directly to run the real app on port 0.

pub mod config;
pub mod config_check;
pub mod demo;
pub mod fuzzing;
pub mod http;
pub mod import;
pub mod limits;
pub mod logbuf;
pub mod webhook_worker;

use std::sync::Arc;

use camgate_core::clock::Clock;
use camgate_core::password::{HashParams, PasswordHasher};
use camgate_core::store::Store;
use camgate_core::{Core, Settings};

pub use config::Config;
pub use webhook_worker::{spawn_webhook_worker, WebhookWorker};

/// A built application: the shared core and the router.
pub struct App {
    pub core: Arc<Core>,
    pub router: http::edge::Edge,
}

/// Opens and migrates the configured database.
pub async fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = camgate_store::connect(&cfg.database_url, &cfg.store)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open database: {e}"))?;
    store
        .migrate()
        .await
        .map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    Ok(store)
}

/// Builds the core over an open store.
pub async fn build_core(
    cfg: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hash: HashParams,
) -> anyhow::Result<Arc<Core>> {
    let hasher = PasswordHasher::new(hash, cfg.hash_workers, cfg.hash_queue)
        .map_err(|e| anyhow::anyhow!("password hasher: {e}"))?
        .with_nice(cfg.hash_nice);
    let settings = Settings {
        refresh_grace_secs: cfg.refresh_grace_secs,
        authz: cfg.authz.clone(),
        issuer: cfg.issuer.clone(),
        jwt_alg: cfg.jwt_alg,
        client_secret_overlap_secs: cfg.client_secret_overlap_secs,
        mfa: cfg.mfa.clone(),
        oidc: cfg.oidc.clone(),
        data_key: cfg.data_key,
        media_url_ttl_secs: cfg.media_url_ttl_secs,
        media_retention_secs: cfg.media_retention_secs,
        camera_posts_per_minute: cfg.camera_posts_per_minute,
        camera_listing_cache_bytes: cfg.camera_listing_cache_bytes,
        allow_private_targets: cfg.webhooks_allow_private_targets,
        ..Settings::default()
    };
    let core = Core::new(store, clock, hasher, cfg.profiles.clone(), settings)
        .await
        .map_err(|e| anyhow::anyhow!("cannot initialise: {e}"))?;
    Ok(Arc::new(core))
}

pub fn build_router(cfg: &Config, core: Arc<Core>) -> http::edge::Edge {
    let state = http::AppState {
        core,
        body_limit: cfg.body_limit_bytes,
        issuer: cfg.issuer.as_deref().map(Arc::from),
    };
    http::edge::Edge::new(
        http::router(state.clone()),
        state,
        cfg.trusted_proxies.clone().into(),
        http::ratelimit::RateLimiter::new(
            cfg.limits.token_rate_per_minute,
            cfg.limits.token_rate_burst,
        ),
        cfg.limits.request_timeout,
    )
}

pub async fn build(
    cfg: &Config,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<App> {
    let core = build_core(cfg, store, clock, HashParams::default()).await?;
    let router = build_router(cfg, core.clone());
    Ok(App { core, router })
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy)]
pub struct SweepReport {
    pub deleted: u64,
    pub batches: u64,
    pub longest_batch: std::time::Duration,
}

/// Deletes expired and revoked rows in small batches until a pass finds less than a batch.
/// Each batch is one short statement per table, so requests never wait long behind it.
pub async fn sweep_once(
    core: &Core,
    retention_secs: i64,
    batch: i64,
) -> anyhow::Result<SweepReport> {
    let mut report = SweepReport::default();
    // Events, recordings and finished webhook deliveries past their retention.
    let keep = core.settings.media_retention_secs;
    if keep > 0 {
        loop {
            let n = core
                .store
                .purge_media(core.now() - keep, batch)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            report.deleted += n;
            record_sweep(n);
            if n < batch as u64 {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    // JWT denylist entries past their time and signing keys that no longer verify.
    loop {
        let n = core
            .store
            .purge_jwt_state(core.now(), batch)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        report.deleted += n;
        if n < batch as u64 {
            break;
        }
    }
    loop {
        let cutoff = core.now() - retention_secs;
        let started = std::time::Instant::now();
        let n = core
            .store
            .purge_expired(cutoff, batch)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        report.longest_batch = report.longest_batch.max(started.elapsed());
        report.batches += 1;
        report.deleted += n.total();
        record_sweep(n.total());
        if n.access_tokens < batch as u64
            && n.refresh_tokens < batch as u64
            && n.families < batch as u64
            && n.pats < batch as u64
        {
            // The browser sign-in flow's codes, parked requests, sessions and throttle windows.
            loop {
                let started = std::time::Instant::now();
                let n = core
                    .store
                    .purge_authorize(cutoff, batch)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                report.longest_batch = report.longest_batch.max(started.elapsed());
                report.batches += 1;
                report.deleted += n;
                record_sweep(n);
                if n < batch as u64 {
                    return Ok(report);
                }
                tokio::task::yield_now().await;
            }
        }
        // Let waiting requests at the writer between batches.
        tokio::task::yield_now().await;
    }
}

fn record_sweep(n: u64) {
    camgate_core::metrics::counter_add(
        "camgate_sweeper_deleted_rows_total",
        "Rows the sweeper deleted (expired or revoked tokens, codes, sessions, ...).",
        &[],
        n,
    );
}

/// Runs the sweeper forever at the configured interval.
pub fn spawn_sweeper(core: Arc<Core>, cfg: &Config) -> tokio::task::JoinHandle<()> {
    let (interval, retention, batch) = (
        cfg.sweep_interval,
        cfg.token_retention_secs,
        cfg.sweep_batch,
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            match sweep_once(&core, retention, batch).await {
                Ok(r) if r.deleted > 0 => tracing::info!(
                    deleted = r.deleted,
                    batches = r.batches,
                    longest_batch_ms = r.longest_batch.as_millis() as u64,
                    "sweeper pass"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sweeper pass failed"),
            }
        }
    })
}

pub use limits::{serve, serve_with};

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
