//! The `camgate` command line, one module per command group: the clap definitions of the
//! top level are here, each group's subcommands and their handlers in its own module.
//! `main.rs` parses, sets up (configuration, logging) and calls [`dispatch`].
//!
//! The command line is a stable contract: scripts depend on its subcommands, flags, output
//! (text and `--json`), exit codes and environment variables.

pub mod audit;
pub mod camera;
pub mod client;
pub mod config;
pub mod db;
pub mod keys;
pub mod login;
mod media;
pub mod pat;
pub mod serve;
pub mod user;

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};

use camgate_core::clock::SystemClock;
use camgate_core::password::HashParams;
use camgate_core::scope::ScopeSet;
use camgate_core::Core;
use camgate_server::config::Config;
use camgate_server::{build_core, open_store};

#[derive(Parser)]
#[command(
    name = "camgate",
    version,
    about = "Camera-cloud OAuth2 server and camera API"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub cmd: Cmd,
}

// The options every subcommand takes.
#[derive(clap::Args)]
pub struct Global {
    /// Database URL: sqlite://FILE (default sqlite://camgate.db) or postgres://…
    #[arg(long, global = true, env = "CAMGATE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// TOML configuration file.
    #[arg(long, global = true, env = "CAMGATE_CONFIG")]
    pub config: Option<PathBuf>,
}

// The three kinds of command differ in what they need before they run: the server commands
// a resolved configuration, an open database and logging; `config` the configuration alone;
// the client commands (`login`, `api`, `logout`) none of it.
#[derive(Subcommand)]
pub enum Cmd {
    #[command(flatten)]
    Server(ServerCmd),
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        cmd: config::ConfigCmd,
    },
    /// Log in to a camgate server as an OAuth client (password grant); keeps the refresh
    /// token (never the password) in a 0600 credentials file.
    Login(login::LoginArgs),
    /// Call the server's API with the saved credentials (refreshing them as needed) and print
    /// the answer; exits non-zero for a non-2xx status.
    Api(login::ApiArgs),
    /// Revoke the saved credentials at the server and delete the credentials file.
    Logout(login::LogoutArgs),
}

// The commands that run against the configured database, with logging on.
#[derive(Subcommand)]
pub enum ServerCmd {
    /// Run the HTTP server.
    Serve(serve::ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        cmd: user::UserCmd,
    },
    /// Manage OAuth clients.
    Client {
        #[command(subcommand)]
        cmd: client::ClientCmd,
    },
    /// Manage personal access tokens.
    Pat {
        #[command(subcommand)]
        cmd: pat::PatCmd,
    },
    /// Delete expired and revoked tokens now (the server also does this by itself).
    Purge,
    /// Read the audit log.
    Audit {
        #[command(subcommand)]
        cmd: audit::AuditCmd,
    },
    /// Manage cameras.
    Camera {
        #[command(subcommand)]
        cmd: camera::CameraCmd,
    },
    /// Manage the JWT signing keys.
    Keys {
        #[command(subcommand)]
        cmd: keys::KeysCmd,
    },
    /// Signed media URLs.
    Media {
        #[command(subcommand)]
        cmd: media::MediaCmd,
    },
}

/// Runs a server command with the resolved configuration.
pub async fn dispatch(cmd: ServerCmd, cfg: &Config) -> anyhow::Result<()> {
    match cmd {
        ServerCmd::Serve(args) => serve::run(args, cfg).await,
        ServerCmd::Migrate => db::migrate(cfg).await,
        ServerCmd::Purge => db::purge(cfg).await,
        ServerCmd::User { cmd } => user::run(cmd, cfg).await,
        ServerCmd::Client { cmd } => client::run(cmd, cfg).await,
        ServerCmd::Pat { cmd } => pat::run(cmd, cfg).await,
        ServerCmd::Audit { cmd } => audit::run(cmd, cfg).await,
        ServerCmd::Camera { cmd } => camera::run(cmd, cfg).await,
        ServerCmd::Media { cmd } => media::run(cmd, cfg).await,
        ServerCmd::Keys { cmd } => keys::run(cmd, cfg).await,
    }
}

/// Reads one line from stdin (prompting for it on a terminal); an empty line is an error.
fn read_stdin_line(what: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("{what}: ");
    }
    let mut s = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut s)
        .context("reading stdin")?;
    let s = s.trim_end_matches(['\r', '\n']).to_string();
    if s.is_empty() {
        bail!("{what} read from stdin is empty");
    }
    Ok(s)
}

/// The union of the `--scope` values; `None` when none was given.
fn parse_scopes(v: &[String]) -> anyhow::Result<Option<ScopeSet>> {
    if v.is_empty() {
        return Ok(None);
    }
    let mut set = ScopeSet::default();
    for s in v {
        set = set.union(&ScopeSet::parse(s).map_err(|e| anyhow!("--scope: {e}"))?);
    }
    Ok(Some(set))
}

/// Opens (and migrates) the database and builds the core over it.
async fn core_for(cfg: &Config) -> anyhow::Result<Arc<Core>> {
    let store = open_store(cfg).await?;
    build_core(cfg, store, Arc::new(SystemClock), HashParams::default()).await
}

/// An API error as a command-line message: `field: message` for an invalid field.
fn api_err(e: camgate_core::error::ApiError) -> anyhow::Error {
    match e {
        camgate_core::error::ApiError::Invalid {
            field: Some(f),
            message,
        } => anyhow!("{f}: {message}"),
        other => anyhow!("{other}"),
    }
}

/// The id of the user with this email, or an error naming the email.
async fn user_id(core: &Core, email: &str) -> anyhow::Result<i64> {
    Ok(core
        .user_by_email(email)
        .await
        .map_err(api_err)?
        .ok_or_else(|| anyhow!("no user with email {email}"))?
        .id)
}
