//! `camgate config check`, and the configuration every server command runs with: the file
//! (`--config`), the environment and the flags, resolved once.

use clap::Subcommand;

use camgate_server::config::{Config, FileConfig};
use camgate_server::config_check;

use super::{Global, ServerCmd};

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Validate the configuration (file, environment, flags) and print the resolved values,
    /// secrets redacted. Exits non-zero naming an unknown or invalid key.
    Check,
}

/// The resolved configuration: the file, then the environment and the flags over it
/// (`serve`'s `--bind` and `--log-format` when `cmd` is `serve`).
pub fn resolve(global: &Global, cmd: Option<&ServerCmd>) -> anyhow::Result<Config> {
    let mut file = match &global.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    let serve = match cmd {
        Some(ServerCmd::Serve(a)) => Some(a),
        _ => None,
    };
    file.apply_env()?;
    if let Some(f) = serve.and_then(|a| a.log_format.as_ref()) {
        file.log_format = Some(f.clone());
    }
    let bind = serve.and_then(|a| a.bind.clone());
    let database_url =
        config_check::value_or_file("CAMGATE_DATABASE_URL", global.database_url.clone())?;
    Config::resolve(bind, database_url, file)
}

/// Prints the resolved configuration, secrets redacted; an invalid one is an error.
pub fn run(cmd: ConfigCmd, global: &Global) -> anyhow::Result<()> {
    match cmd {
        ConfigCmd::Check => {
            let cfg = resolve(global, None)?;
            print!("{}", config_check::report(&cfg));
            eprintln!("configuration ok");
            Ok(())
        }
    }
}
