//! `camgate pat …`: personal access tokens.

use clap::Subcommand;
use serde_json::json;

use camgate_core::scope::ScopeSet;
use camgate_server::config::Config;

use super::{api_err, core_for, parse_scopes, user_id};

#[derive(Subcommand)]
pub enum PatCmd {
    /// Create a personal access token; it is printed once.
    Add {
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long)]
        expires_in_days: Option<i64>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: PatCmd, cfg: &Config) -> anyhow::Result<()> {
    match cmd {
        PatCmd::Add {
            user,
            name,
            scopes,
            expires_in_days,
            json,
        } => {
            let core = core_for(cfg).await?;
            let id = user_id(&core, &user).await?;
            let scope = parse_scopes(&scopes)?.unwrap_or(ScopeSet::READ_WRITE);
            let (pat, token) = core
                .create_pat(id, &name, scope, expires_in_days)
                .await
                .map_err(api_err)?;
            if json {
                println!(
                    "{}",
                    json!({"id": pat.id, "name": pat.name, "token": token, "scope": pat.scope.to_scope_string(), "expires_at": pat.expires_at})
                );
            } else {
                println!("personal access token (shown once): {token}");
                println!("use it as: Authorization: PersonalAccessToken {token}");
            }
        }
    }
    Ok(())
}
