//! `camgate migrate` and `camgate purge`: database maintenance.

use camgate_server::config::Config;
use camgate_server::{open_store, sweep_once};

use super::core_for;

/// Applies the migrations (opening the store does) and exits.
pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    open_store(cfg).await?;
    println!("migrations applied");
    Ok(())
}

/// Deletes expired and revoked rows now, in the server's batches, and reports the timings.
pub async fn purge(cfg: &Config) -> anyhow::Result<()> {
    let core = core_for(cfg).await?;
    let started = std::time::Instant::now();
    let r = sweep_once(&core, cfg.token_retention_secs, cfg.sweep_batch).await?;
    println!(
        "purged {} expired or revoked rows in {} batches of up to {} rows per table; longest batch {} ms; total {} ms",
        r.deleted,
        r.batches,
        cfg.sweep_batch,
        r.longest_batch.as_millis(),
        started.elapsed().as_millis()
    );
    Ok(())
}
