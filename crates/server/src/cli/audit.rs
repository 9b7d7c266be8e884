//! `camgate audit …`: read the audit log.

use anyhow::anyhow;
use clap::Subcommand;
use serde_json::json;

use camgate_server::config::Config;

use super::core_for;

#[derive(Subcommand)]
pub enum AuditCmd {
    /// Print the most recent audit events, oldest first.
    Tail {
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: AuditCmd, cfg: &Config) -> anyhow::Result<()> {
    match cmd {
        AuditCmd::Tail { limit, json } => {
            let core = core_for(cfg).await?;
            let mut events = core
                .store
                .recent_audit(limit.clamp(1, 10_000))
                .await
                .map_err(|e| anyhow!("{e}"))?;
            events.reverse();
            for e in events {
                if json {
                    println!(
                        "{}",
                        json!({"id": e.id, "at": e.at, "kind": e.kind, "user_id": e.user_id, "client_id": e.client_id, "ip": e.ip, "detail": e.detail})
                    );
                } else {
                    println!(
                        "{} {:<16} user={} client={} ip={} {}",
                        camgate_server::http::iso(e.at),
                        e.kind,
                        e.user_id
                            .map(|u| u.to_string())
                            .unwrap_or_else(|| "-".into()),
                        e.client_id.as_deref().unwrap_or("-"),
                        e.ip.as_deref().unwrap_or("-"),
                        e.detail
                    );
                }
            }
        }
    }
    Ok(())
}
