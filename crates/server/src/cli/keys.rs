//! `camgate keys …`: the JWT signing keys.

use anyhow::anyhow;
use clap::Subcommand;
use serde_json::json;

use camgate_core::jwt::JwtAlg;
use camgate_server::config::Config;
use camgate_server::http::iso;

use super::core_for;

#[derive(Subcommand)]
pub enum KeysCmd {
    /// Make a new signing key active. The previous key stops signing and keeps verifying until
    /// every token it signed has expired.
    Rotate {
        /// `EdDSA` or `ES256` (default: the configured `jwt_alg`).
        #[arg(long)]
        alg: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List the keys that still verify.
    List {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: KeysCmd, cfg: &Config) -> anyhow::Result<()> {
    match cmd {
        KeysCmd::Rotate { alg, json } => {
            // A bad --alg fails before the database is opened.
            let alg = match alg {
                None => None,
                Some(a) => {
                    Some(JwtAlg::parse(&a).ok_or_else(|| anyhow!("--alg must be EdDSA or ES256"))?)
                }
            };
            let core = core_for(cfg).await?;
            let kid = core
                .rotate_signing_key(alg)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            if json {
                println!("{}", json!({"kid": kid}));
            } else {
                println!("new signing key {kid} is active; previous keys verify until their tokens have expired");
            }
        }
        KeysCmd::List { json } => {
            let core = core_for(cfg).await?;
            let keys = core
                .store
                .signing_keys(core.now())
                .await
                .map_err(|e| anyhow!("{e}"))?;
            for k in keys {
                if json {
                    println!(
                        "{}",
                        json!({"kid": k.kid, "alg": k.alg, "created_at": k.created_at, "retired_at": k.retired_at, "verify_until": k.verify_until})
                    );
                } else {
                    let state = match k.verify_until {
                        None => "active".to_string(),
                        Some(u) => format!("retired, verifies until {}", iso(u)),
                    };
                    println!(
                        "{} {:<5} created {}  {state}",
                        k.kid,
                        k.alg,
                        iso(k.created_at)
                    );
                }
            }
        }
    }
    Ok(())
}
