//! `camgate serve`: the HTTP server.

use std::net::SocketAddr;

use anyhow::{anyhow, bail, Context};
use clap::Args;

use camgate_server::config::Config;
use camgate_server::{
    build_router, demo, serve_with, shutdown_signal, spawn_sweeper, spawn_webhook_worker,
};

use super::{api_err, core_for};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CAMGATE_BIND")]
    pub bind: Option<String>,
    /// Fill an empty database with demo data (loopback binds only).
    #[arg(long, env = "CAMGATE_DEMO")]
    pub demo: bool,
    /// Log format: `text` (default) or `json` (one object per line, with the request id).
    #[arg(long, env = "CAMGATE_LOG_FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
}

/// Listens on the configured address (`--bind` already resolved into `cfg`) until a shutdown
/// signal; with `--demo`, seeds an empty database first and prints how to try it.
pub async fn run(args: ServeArgs, cfg: &Config) -> anyhow::Result<()> {
    let addr: SocketAddr = cfg
        .bind
        .parse()
        .map_err(|_| anyhow!("--bind: `{}` is not an address:port", cfg.bind))?;
    if args.demo && !addr.ip().is_loopback() {
        bail!("--demo refuses a non-loopback bind ({addr}): the demo credentials are public");
    }
    let core = core_for(cfg).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    if args.demo {
        match demo::seed(&core).await.map_err(api_err)? {
            Some(info) => println!("{}", demo::instructions(&format!("http://{local}"), &info)),
            None => println!("camgate demo: the database already has users; nothing seeded."),
        }
        // Seeding hashed passwords and client secrets; the argon2 memory it pooled (19 MiB per
        // buffer, one per core) would otherwise stay resident until the first login, and an
        // idle server should stay small.
        core.hasher.release_memory();
    }
    let _sweeper = spawn_sweeper(core.clone(), cfg);
    // A node with `[webhooks] deliver = false` queues deliveries but leaves them to others.
    let webhooks = if cfg.webhooks_deliver {
        Some(spawn_webhook_worker(core.clone(), cfg)?)
    } else {
        tracing::info!(target: "camgate", "webhook delivery off on this node");
        None
    };
    // The binary's target (`camgate`), not this module's path: log filters
    // (`CAMGATE_LOG=camgate=info`) and readers of the log match on it.
    let database = redact_url(&cfg.database_url);
    tracing::info!(target: "camgate", %local, %database, "listening");
    serve_with(
        listener,
        build_router(cfg, core),
        &cfg.limits,
        shutdown_signal(),
    )
    .await?;
    if let Some(w) = webhooks {
        w.stop().await;
    }
    Ok(())
}

/// Hides a password in a database URL before logging it.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
