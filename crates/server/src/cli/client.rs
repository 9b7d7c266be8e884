//! `camgate client …`: register OAuth clients.

use anyhow::anyhow;
use clap::Subcommand;
use serde_json::json;

use camgate_core::clients::ClientInput;
use camgate_core::model::{ClientKind, GrantType, IdTokenAlg, JwtAlg, OidcClient, SubjectType};
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
        #[command(flatten)]
        oidc: OidcArgs,
        /// Let the password grant sign in users who have a second factor, without it (legacy
        /// devices that cannot show a browser; every such grant is audited).
        #[arg(long)]
        allow_password_without_mfa: bool,
        #[arg(long)]
        json: bool,
    },
    /// Change a client's OpenID Connect settings (only the flags given).
    Update {
        #[arg(long)]
        client_id: String,
        #[command(flatten)]
        oidc: OidcArgs,
        /// Remove every post-logout redirect URI (before adding the --post-logout-redirect-uri
        /// ones).
        #[arg(long)]
        clear_post_logout_redirect_uris: bool,
    },
}

/// OpenID Connect settings of a client.
#[derive(clap::Args)]
pub struct OidcArgs {
    /// Where RP-initiated logout may return to (repeatable; compared exactly).
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// `public` (one `sub` for every client) or `pairwise` (one per sector).
    #[arg(long)]
    subject_type: Option<String>,
    /// The sector of pairwise identifiers (a host name; default: the redirect URIs' host).
    #[arg(long)]
    sector_identifier: Option<String>,
    /// `RS256` (default), `ES256` or `EdDSA`.
    #[arg(long)]
    id_token_alg: Option<String>,
}

impl OidcArgs {
    /// Applies the flags given to `base`.
    fn apply(self, mut base: OidcClient) -> anyhow::Result<OidcClient> {
        base.post_logout_redirect_uris
            .extend(self.post_logout_redirect_uris);
        if let Some(t) = self.subject_type {
            base.subject_type = SubjectType::parse(&t)
                .ok_or_else(|| anyhow!("--subject-type must be public or pairwise"))?;
        }
        if let Some(s) = self.sector_identifier {
            base.sector_identifier = Some(s).filter(|s| !s.is_empty());
        }
        if let Some(a) = self.id_token_alg {
            base.id_token_alg = IdTokenAlg(
                JwtAlg::parse_any(&a)
                    .ok_or_else(|| anyhow!("--id-token-alg must be RS256, ES256 or EdDSA"))?,
            );
        }
        Ok(base)
    }
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
            oidc,
            allow_password_without_mfa,
            json,
        } => {
            // Bad flags fail before the database is opened.
            let oidc = oidc.apply(OidcClient::default())?;
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
                    oidc,
                    allow_password_without_mfa,
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
                        "post_logout_redirect_uris": c.oidc.post_logout_redirect_uris,
                        "subject_type": c.oidc.subject_type.as_str(),
                        "id_token_alg": c.oidc.id_token_alg.0.as_str(),
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
        ClientCmd::Update {
            client_id,
            oidc,
            clear_post_logout_redirect_uris,
        } => {
            let core = core_for(cfg).await?;
            let c = core
                .store
                .client_by_client_id(&client_id)
                .await
                .map_err(|e| anyhow!("{e}"))?
                .ok_or_else(|| anyhow!("no client with id `{client_id}`"))?;
            let mut base = c.oidc.clone();
            if clear_post_logout_redirect_uris {
                base.post_logout_redirect_uris.clear();
            }
            let new = oidc.apply(base)?;
            core.set_client_oidc(&c, new).await.map_err(api_err)?;
            println!("client {client_id} updated");
        }
    }
    Ok(())
}
