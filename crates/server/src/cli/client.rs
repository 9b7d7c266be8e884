//! `camgate client …`: register OAuth clients.

use anyhow::anyhow;
use clap::Subcommand;
use serde_json::json;

use camgate_core::clients::ClientInput;
use camgate_core::model::{ClientKind, GrantType};
use camgate_server::config::Config;

use super::{api_err, core_for, parse_scopes, read_stdin_line, user_id};

#[derive(Subcommand)]
pub enum ClientCmd {
    /// Register an OAuth client. A generated secret is printed once.
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        public: bool,
        #[arg(long)]
        profile: Option<String>,
        #[arg(long = "grant")]
        grants: Vec<String>,
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        #[arg(long)]
        client_id: Option<String>,
        #[arg(long)]
        client_secret_stdin: bool,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: ClientCmd, cfg: &Config) -> anyhow::Result<()> {
    match cmd {
        ClientCmd::Add {
            name,
            owner,
            public,
            profile,
            grants,
            scopes,
            redirect_uris,
            client_id,
            client_secret_stdin,
            json,
        } => {
            let core = core_for(cfg).await?;
            let owner_id = match owner {
                Some(e) => Some(user_id(&core, &e).await?),
                None => None,
            };
            let grants = grants
                .iter()
                .map(|g| {
                    GrantType::parse(g).ok_or_else(|| anyhow!("--grant: unknown grant type `{g}`"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let client_secret = if client_secret_stdin {
                Some(read_stdin_line("client secret")?)
            } else {
                None
            };
            let reg = core
                .register_client(ClientInput {
                    name,
                    owner_id,
                    kind: if public {
                        ClientKind::Public
                    } else {
                        ClientKind::Confidential
                    },
                    redirect_uris,
                    grants,
                    scopes: parse_scopes(&scopes)?,
                    profile,
                    client_id,
                    client_secret,
                })
                .await
                .map_err(api_err)?;
            let c = &reg.client;
            if json {
                println!(
                    "{}",
                    json!({
                        "client_id": c.client_id,
                        "client_secret": reg.secret,
                        "name": c.name,
                        "public": c.kind == ClientKind::Public,
                        "profile": c.profile,
                        "grants": c.grants.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
                        "scope": c.scopes.to_scope_string(),
                        "redirect_uris": c.redirect_uris,
                    })
                );
            } else {
                println!("client_id:     {}", c.client_id);
                match &reg.secret {
                    Some(s) => println!("client_secret: {s}   (shown once; store it now)"),
                    None if c.kind == ClientKind::Public => {
                        println!("client_secret: none (public client)")
                    }
                    None => println!("client_secret: (imported; stored as an argon2id hash)"),
                }
                println!("profile:       {}", c.profile);
                println!(
                    "grants:        {}",
                    c.grants
                        .iter()
                        .map(|g| g.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                );
            }
        }
    }
    Ok(())
}
