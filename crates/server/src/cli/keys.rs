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
        /// `EdDSA` or `ES256`: the access-token key (default: the configured `jwt_alg`);
        /// `RS256`: the RS256 id_token key.
        #[arg(long)]
        alg: Option<String>,
        /// Rotate the id_token key of `--alg` (default RS256) instead of the access-token key.
        #[arg(long)]
        id_token: bool,
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
        KeysCmd::Rotate {
            alg,
            id_token,
            json,
        } => {
            // A bad --alg fails before the database is opened.
            let alg = match alg {
                None => None,
                Some(a) => {
                    // RS256 rotates the id_token key (`Core::rotate_signing_key`).
                    Some(
                        JwtAlg::parse_any(&a)
                            .ok_or_else(|| anyhow!("--alg must be EdDSA, ES256 or RS256"))?,
                    )
                }
            };
            let core = core_for(cfg).await?;
            let kid = if id_token {
                core.rotate_id_token_key(alg.unwrap_or(JwtAlg::Rs256)).await
            } else {
                core.rotate_signing_key(alg).await
            }
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
                        json!({"kid": k.kid, "alg": k.alg, "purpose": k.purpose, "created_at": k.created_at, "retired_at": k.retired_at, "verify_until": k.verify_until})
                    );
                } else {
                    let state = match k.verify_until {
                        None => "active".to_string(),
                        Some(u) => format!("retired, verifies until {}", iso(u)),
                    };
                    println!(
                        "{} {:<5} {:<6} created {}  {state}",
                        k.kid,
                        k.alg,
                        k.purpose,
                        iso(k.created_at)
                    );
                }
            }
        }
    }
    Ok(())
}
