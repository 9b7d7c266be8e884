//! The `camgate` command line (DESIGN.md §6 — a stable contract: scripts depend on it).

mod client_cli;

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use camgate_core::clients::ClientInput;
use camgate_core::clock::SystemClock;
use camgate_core::model::{ClientKind, GrantType};
use camgate_core::password::HashParams;
use camgate_core::scope::ScopeSet;
use camgate_core::users::UserInput;
use camgate_core::Core;
use camgate_server::config::{Config, FileConfig};
use camgate_server::{
    build_core, build_router, demo, open_store, serve_with, shutdown_signal, spawn_sweeper,
    sweep_once,
};

#[derive(Parser)]
#[command(
    name = "camgate",
    version,
    about = "Camera-cloud OAuth2 server and camera API"
)]
struct Cli {
    /// Database URL: sqlite://FILE (default sqlite://camgate.db) or postgres://…
    #[arg(long, global = true, env = "CAMGATE_DATABASE_URL")]
    database_url: Option<String>,
    /// TOML configuration file.
    #[arg(long, global = true, env = "CAMGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Manage OAuth clients.
    Client {
        #[command(subcommand)]
        cmd: ClientCmd,
    },
    /// Manage personal access tokens.
    Pat {
        #[command(subcommand)]
        cmd: PatCmd,
    },
    /// Delete expired and revoked tokens now (the server also does this by itself).
    Purge,
    /// Read the audit log.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// Manage cameras.
    Camera {
        #[command(subcommand)]
        cmd: CameraCmd,
    },
    /// Manage the JWT signing keys.
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Log in to a camgate server as an OAuth client (password grant); keeps the refresh
    /// token (never the password) in a 0600 credentials file.
    Login(client_cli::LoginArgs),
    /// Call the server's API with the saved credentials (refreshing them as needed) and print
    /// the answer; exits non-zero for a non-2xx status.
    Api(client_cli::ApiArgs),
    /// Revoke the saved credentials at the server and delete the credentials file.
    Logout(client_cli::LogoutArgs),
}

#[derive(Subcommand)]
enum CameraCmd {
    /// Import cameras from a CSV file (header row of CAM2 field names) or JSON lines. Bad rows
    /// are reported with their line numbers and skipped.
    Import {
        /// The file (`.csv`, or `.jsonl` / `.ndjson`; other names are sniffed).
        file: PathBuf,
        /// Email of the user who will own the cameras.
        #[arg(long)]
        owner: String,
        /// Mark the cameras public (unless a row has an `is_public` column).
        #[arg(long)]
        public: bool,
        /// Rows per transaction (larger batches rewrite fewer index pages per row).
        #[arg(long, default_value_t = 25_000)]
        batch_size: usize,
        /// Print the summary as JSON (every skipped row).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
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

#[derive(Subcommand)]
enum ConfigCmd {
    /// Validate the configuration (file, environment, flags) and print the resolved values,
    /// secrets redacted. Exits non-zero naming an unknown or invalid key.
    Check,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CAMGATE_BIND")]
    bind: Option<String>,
    /// Fill an empty database with demo data (loopback binds only).
    #[arg(long, env = "CAMGATE_DEMO")]
    demo: bool,
    /// Log format: `text` (default) or `json` (one object per line, with the request id).
    #[arg(long, env = "CAMGATE_LOG_FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user. The password is read from stdin with --password-stdin, otherwise one is
    /// generated and printed once.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long, default_value = "")]
        first_name: String,
        #[arg(long, default_value = "")]
        last_name: String,
        #[arg(long, default_value = "")]
        phone: String,
        #[arg(long)]
        admin: bool,
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: their tokens, personal access tokens and sessions stop working.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Re-enable a disabled user.
    Enable {
        #[arg(long)]
        email: String,
    },
    /// Set a user's password (read from stdin); revokes the user's tokens.
    SetPassword {
        #[arg(long)]
        email: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ClientCmd {
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

#[derive(Subcommand)]
enum PatCmd {
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

#[derive(Subcommand)]
enum AuditCmd {
    /// Print the most recent audit events, oldest first.
    Tail {
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

/// Logs go to stderr through a buffer written out in large pieces (`logbuf.rs`); the guard
/// writes the rest when `run` returns.
fn init_logging(format: &str) -> camgate_server::logbuf::FlushGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAMGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let (sink, guard) = camgate_server::logbuf::stderr();
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink);
    if format == "json" {
        b.json().init();
    } else {
        b.init();
    }
    guard
}

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

async fn core_for(cfg: &Config) -> anyhow::Result<Arc<Core>> {
    let store = open_store(cfg).await?;
    build_core(cfg, store, Arc::new(SystemClock), HashParams::default()).await
}

fn api_err(e: camgate_core::error::ApiError) -> anyhow::Error {
    match e {
        camgate_core::error::ApiError::Invalid {
            field: Some(f),
            message,
        } => anyhow!("{f}: {message}"),
        other => anyhow!("{other}"),
    }
}

async fn user_id(core: &Core, email: &str) -> anyhow::Result<i64> {
    Ok(core
        .user_by_email(email)
        .await
        .map_err(api_err)?
        .ok_or_else(|| anyhow!("no user with email {email}"))?
        .id)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut file = match &cli.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    if let Cmd::Serve(ServeArgs {
        log_format: Some(f),
        ..
    }) = &cli.cmd
    {
        file.log_format = Some(f.clone());
    }
    let bind = match &cli.cmd {
        Cmd::Serve(a) => a.bind.clone(),
        _ => None,
    };
    let database_url = camgate_server::config_check::value_or_file(
        "CAMGATE_DATABASE_URL",
        cli.database_url.clone(),
    )?;
    let cfg = Config::resolve(bind, database_url, file)?;
    if let Cmd::Config {
        cmd: ConfigCmd::Check,
    } = &cli.cmd
    {
        print!("{}", camgate_server::config_check::report(&cfg));
        eprintln!("configuration ok");
        return Ok(());
    }
    let _log = init_logging(&cfg.log_format);

    match cli.cmd {
        Cmd::Serve(args) => {
            let addr: SocketAddr = cfg
                .bind
                .parse()
                .map_err(|_| anyhow!("--bind: `{}` is not an address:port", cfg.bind))?;
            if args.demo && !addr.ip().is_loopback() {
                bail!(
                    "--demo refuses a non-loopback bind ({addr}): the demo credentials are public"
                );
            }
            let core = core_for(&cfg).await?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            let local = listener.local_addr()?;
            if args.demo {
                match demo::seed(&core).await.map_err(api_err)? {
                    Some(info) => {
                        println!("{}", demo::instructions(&format!("http://{local}"), &info))
                    }
                    None => {
                        println!("camgate demo: the database already has users; nothing seeded.")
                    }
                }
                // Seeding hashed one password; the 19 MiB of argon2 memory it pooled would
                // otherwise stay resident until the first login (idle RSS, issue 6).
                core.hasher.release_memory();
            }
            let _sweeper = spawn_sweeper(core.clone(), &cfg);
            tracing::info!(%local, database = %redact_url(&cfg.database_url), "listening");
            serve_with(
                listener,
                build_router(&cfg, core),
                &cfg.limits,
                shutdown_signal(),
            )
            .await?;
        }
        Cmd::Migrate => {
            open_store(&cfg).await?;
            println!("migrations applied");
        }
        Cmd::User {
            cmd:
                UserCmd::Add {
                    email,
                    password_stdin,
                    first_name,
                    last_name,
                    phone,
                    admin,
                    json,
                },
        } => {
            let core = core_for(&cfg).await?;
            let (password, generated) = if password_stdin {
                (read_stdin_line("password")?, false)
            } else {
                (
                    camgate_core::secret::generate(camgate_core::secret::TokenFormat::Alnum30),
                    true,
                )
            };
            let u = core
                .create_user(UserInput {
                    email,
                    password: password.clone(),
                    first_name,
                    last_name,
                    phone,
                    is_admin: admin,
                })
                .await
                .map_err(api_err)?;
            let shown = generated.then_some(password);
            if json {
                println!(
                    "{}",
                    json!({"id": u.id, "email": u.email, "is_admin": u.is_admin, "password": shown})
                );
            } else {
                println!("created user {} (id {})", u.email, u.id);
                if let Some(p) = shown {
                    println!("generated password (shown once): {p}");
                }
            }
        }
        Cmd::User {
            cmd: UserCmd::Disable { email },
        } => {
            let core = core_for(&cfg).await?;
            let id = user_id(&core, &email).await?;
            core.set_user_disabled(id, true).await.map_err(api_err)?;
            println!("disabled {email}");
        }
        Cmd::User {
            cmd: UserCmd::Enable { email },
        } => {
            let core = core_for(&cfg).await?;
            let id = user_id(&core, &email).await?;
            core.set_user_disabled(id, false).await.map_err(api_err)?;
            println!("enabled {email}");
        }
        Cmd::User {
            cmd: UserCmd::SetPassword { email, json },
        } => {
            let core = core_for(&cfg).await?;
            let id = user_id(&core, &email).await?;
            let pw = read_stdin_line("new password")?;
            core.change_password(id, pw).await.map_err(api_err)?;
            if json {
                println!(
                    "{}",
                    json!({"id": id, "email": email, "tokens_revoked": true})
                );
            } else {
                println!("password changed for {email}; their tokens were revoked");
            }
        }
        Cmd::Client {
            cmd:
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
                },
        } => {
            let core = core_for(&cfg).await?;
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
        Cmd::Pat {
            cmd:
                PatCmd::Add {
                    user,
                    name,
                    scopes,
                    expires_in_days,
                    json,
                },
        } => {
            let core = core_for(&cfg).await?;
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
        Cmd::Purge => {
            let core = core_for(&cfg).await?;
            let started = std::time::Instant::now();
            let r = sweep_once(&core, cfg.token_retention_secs, cfg.sweep_batch).await?;
            println!(
                "purged {} expired or revoked rows in {} batches of up to {} rows per table; longest batch {} ms; total {} ms",
                r.deleted,
                r.batches,
                cfg.sweep_batch,
                r.longest_batch.as_millis(),
                started.elapsed().as_millis()
            );
        }
        Cmd::Config { .. } => {}
        Cmd::Login(_) | Cmd::Api(_) | Cmd::Logout(_) => {}
        Cmd::Audit {
            cmd: AuditCmd::Tail { limit, json },
        } => {
            let core = core_for(&cfg).await?;
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
        Cmd::Camera {
            cmd:
                CameraCmd::Import {
                    file,
                    owner,
                    public,
                    batch_size,
                    json,
                },
        } => {
            let core = core_for(&cfg).await?;
            let owner_id = user_id(&core, &owner).await?;
            let opts = camgate_server::import::ImportOptions {
                batch_size,
                public,
                progress: !json,
            };
            let sum = camgate_server::import::import_file(core, &file, owner_id, opts).await?;
            if json {
                println!(
                    "{}",
                    json!({
                        "imported": sum.imported,
                        "skipped": sum.skipped.iter().map(|s| json!({"line": s.line, "reason": s.reason})).collect::<Vec<_>>(),
                        "warnings": sum.warnings,
                        "seconds": (sum.seconds * 1000.0).round() / 1000.0,
                    })
                );
            } else {
                for w in &sum.warnings {
                    println!("warning: {w}");
                }
                let rate = sum.imported as f64 / sum.seconds.max(0.001);
                println!(
                    "imported {} cameras in {:.1} s ({:.0} rows/s)",
                    sum.imported, sum.seconds, rate
                );
                if !sum.skipped.is_empty() {
                    println!("skipped {} rows:", sum.skipped.len());
                    const SHOWN: usize = 50;
                    for s in sum.skipped.iter().take(SHOWN) {
                        println!("  line {}: {}", s.line, s.reason);
                    }
                    if sum.skipped.len() > SHOWN {
                        println!(
                            "  … and {} more (--json lists them all)",
                            sum.skipped.len() - SHOWN
                        );
                    }
                }
            }
        }
        Cmd::Keys {
            cmd: KeysCmd::Rotate { alg, json },
        } => {
            let alg = match alg {
                None => None,
                Some(a) => Some(
                    camgate_core::jwt::JwtAlg::parse(&a)
                        .ok_or_else(|| anyhow!("--alg must be EdDSA or ES256"))?,
                ),
            };
            let core = core_for(&cfg).await?;
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
        Cmd::Keys {
            cmd: KeysCmd::List { json },
        } => {
            let core = core_for(&cfg).await?;
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
                        Some(u) => {
                            format!("retired, verifies until {}", camgate_server::http::iso(u))
                        }
                    };
                    println!(
                        "{} {:<5} created {}  {state}",
                        k.kid,
                        k.alg,
                        camgate_server::http::iso(k.created_at)
                    );
                }
            }
        }
    }
    Ok(())
}

/// Hides a password in a database URL before logging it.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[tokio::main]
async fn main() {
    let Cli {
        database_url,
        config,
        cmd,
    } = Cli::parse();
    // The client commands need no database and no server configuration.
    let result = match cmd {
        Cmd::Login(a) => client_cli::login(a).await,
        Cmd::Api(a) => client_cli::api(a).await,
        Cmd::Logout(a) => client_cli::logout(a).await,
        cmd => {
            run(Cli {
                database_url,
                config,
                cmd,
            })
            .await
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
