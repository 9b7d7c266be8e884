//! The `camgate` command line (a stable contract: scripts depend on it). The commands live in
//! `cli/`, one module per command group; here the line is parsed, the configuration and
//! logging set up for the commands that need them, and the command dispatched.

mod cli;

use std::io::IsTerminal;

use clap::Parser;

use camgate_server::logbuf;
use cli::{Cli, Cmd, Global, ServerCmd};

/// jemalloc instead of glibc's malloc: tokio moves tasks between worker threads, so memory is
/// often freed on another thread than the one that allocated it, and glibc then takes the
/// allocating thread's arena lock — a lock shared by the worker threads, contended more the
/// more cores serve. jemalloc frees into the freeing thread's cache. Measured on two threads:
/// contended futex calls from malloc fell from ~8,000/s to ~200/s on the uncached camera
/// listing, which went ~20% faster on two CPUs; idle RSS +3 MB (mimalloc, also tried, cost
/// +33 MB). docs/decisions/095-allocator-and-sqlite-mutexes.md has the figures.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() {
    let Cli { global, cmd } = Cli::parse();
    let result = match cmd {
        Cmd::Server(cmd) => server(&global, cmd).await,
        // Its output is the report alone: no logging.
        Cmd::Config { cmd } => cli::config::run(cmd, &global),
        // The client commands need no database and no server configuration.
        Cmd::Login(a) => cli::login::login(a).await,
        Cmd::Api(a) => cli::login::api(a).await,
        Cmd::Logout(a) => cli::login::logout(a).await,
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// A server command: resolves the configuration and starts logging first.
async fn server(global: &Global, cmd: ServerCmd) -> anyhow::Result<()> {
    let cfg = cli::config::resolve(global, Some(&cmd))?;
    let _log = init_logging(&cfg.log_format);
    cli::dispatch(cmd, &cfg).await
}

/// Logs go to stderr through a buffer written out in large pieces (`logbuf.rs`); the guard
/// writes the rest when it is dropped. The text format is coloured only on a terminal, and
/// never with `NO_COLOR` set; the JSON format never is.
fn init_logging(format: &str) -> logbuf::FlushGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAMGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let (sink, guard) = logbuf::stderr();
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink);
    if format == "json" {
        b.json().init();
    } else {
        let colour = logbuf::colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        );
        b.with_ansi(colour).init();
    }
    guard
}
