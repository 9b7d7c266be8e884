//! `camgate media verify URL`: checks a signed media URL with the client crate's offline
//! verifier against this server's key set (what a media server does with `/.well-known/jwks.json`).

use clap::Subcommand;
use serde_json::json;

use camgate_server::config::Config;

use super::core_for;

#[derive(Subcommand)]
pub enum MediaCmd {
    /// Verify a signed stream, snapshot or recording URL; exits 1 if it is refused.
    Verify {
        /// The URL as an answer handed it out (with its `token=` parameter).
        url: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: MediaCmd, cfg: &Config) -> anyhow::Result<()> {
    let MediaCmd::Verify { url, json } = cmd;
    let core = core_for(cfg).await?;
    let jwks = core.jwks().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    match camgate_client::media::verify(&url, &jwks, core.now()) {
        Ok(c) => {
            if json {
                println!(
                    "{}",
                    json!({"valid": true, "sub": c.sub, "camera": c.cam, "kind": c.kind, "exp": c.exp, "iss": c.iss})
                );
            } else {
                println!(
                    "valid: {} URL of camera {} for {} (issuer {}), expires at {} (Unix time)",
                    c.kind, c.cam, c.sub, c.iss, c.exp
                );
            }
            Ok(())
        }
        Err(e) => {
            if json {
                println!("{}", json!({"valid": false, "error": e.to_string()}));
            } else {
                println!("refused: {e}");
            }
            std::process::exit(1);
        }
    }
}
