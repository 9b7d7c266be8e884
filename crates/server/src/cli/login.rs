//! `camgate login`, `camgate api` and `camgate logout`: the command line as an OAuth client of
//! a camgate server, built on `camgate-client`. The credentials file (default
//! `$XDG_CONFIG_HOME/camgate/credentials.json`, mode 0600) keeps the server, the client id and
//! the tokens; never the password or the client secret.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::Args;

use camgate_client::{Client, FileStore, ANGELCAM_TOKEN_PATH};

#[derive(Args)]
pub struct LoginArgs {
    /// The server's base URL, e.g. https://camgate.example.com
    #[arg(long, env = "CAMGATE_SERVER")]
    server: String,
    /// The OAuth client id to log in with.
    #[arg(long, env = "CAMGATE_CLIENT_ID")]
    client_id: String,
    /// Read the client secret of a confidential client from stdin (before the password).
    #[arg(long)]
    client_secret_stdin: bool,
    /// The account's email address.
    #[arg(long)]
    username: String,
    /// Read the password from stdin (required: a password never goes on the command line).
    #[arg(long, required = true)]
    password_stdin: bool,
    /// The credentials file.
    #[arg(long, env = "CAMGATE_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// Scopes to ask for (default: the server's default).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// The token endpoint path.
    #[arg(long, default_value = ANGELCAM_TOKEN_PATH)]
    token_path: String,
}

#[derive(Args)]
pub struct ApiArgs {
    /// HTTP method: GET, POST, PUT, PATCH, DELETE.
    method: String,
    /// Path on the server, e.g. /v1/cameras/
    path: String,
    /// A JSON request body.
    #[arg(long)]
    data: Option<String>,
    /// The credentials file written by `camgate login`.
    #[arg(long, env = "CAMGATE_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// Read the client secret (confidential clients need it to refresh) from stdin.
    #[arg(long)]
    client_secret_stdin: bool,
}

#[derive(Args)]
pub struct LogoutArgs {
    /// The credentials file written by `camgate login`.
    #[arg(long, env = "CAMGATE_CREDENTIALS")]
    credentials: Option<PathBuf>,
    /// Read the client secret from stdin (confidential clients authenticate to revoke).
    #[arg(long)]
    client_secret_stdin: bool,
}

/// `$CAMGATE_CREDENTIALS` (via clap), else `$XDG_CONFIG_HOME/camgate/credentials.json`, else
/// `~/.config/camgate/credentials.json`.
fn credentials_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p);
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    anyhow!("neither XDG_CONFIG_HOME nor HOME is set; pass --credentials FILE")
                })?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(base.join("camgate").join("credentials.json"))
}

fn read_line(lines: &mut impl BufRead, what: &str) -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        eprint!("{what}: ");
    }
    let mut s = String::new();
    lines.read_line(&mut s).context("reading stdin")?;
    let s = s.trim_end_matches(['\r', '\n']).to_string();
    if s.is_empty() {
        bail!("{what} read from stdin is empty");
    }
    Ok(s)
}

fn client_secret(flag: bool) -> anyhow::Result<Option<String>> {
    if flag {
        let stdin = std::io::stdin();
        return read_line(&mut stdin.lock(), "client secret").map(Some);
    }
    Ok(std::env::var("CAMGATE_CLIENT_SECRET")
        .ok()
        .filter(|s| !s.is_empty()))
}

pub async fn login(a: LoginArgs) -> anyhow::Result<()> {
    let path = credentials_path(a.credentials)?;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock();
    let secret = if a.client_secret_stdin {
        Some(read_line(&mut lines, "client secret")?)
    } else {
        None
    };
    let password = zeroize::Zeroizing::new(read_line(&mut lines, "password")?);
    drop(lines);
    let store = FileStore::new(&path).with_identity(&a.server, &a.client_id, &a.token_path);
    let mut b = Client::builder(&a.server)
        .client_id(&a.client_id)
        .token_path(&a.token_path)
        .store(store);
    if let Some(s) = secret {
        b = b.client_secret(s);
    }
    for s in &a.scopes {
        b = b.scope(s);
    }
    let client = b.build()?;
    let t = client
        .password_grant(&a.username, &password)
        .await
        .map_err(|e| anyhow!("login failed: {e}"))?;
    drop(password);
    println!(
        "logged in to {} as {}{}; credentials saved to {}",
        a.server,
        a.username,
        t.scope
            .map(|s| format!(" (scope: {s})"))
            .unwrap_or_default(),
        path.display()
    );
    Ok(())
}

/// A client for the session saved in `path`.
fn saved_client(path: &std::path::Path, secret: Option<String>) -> anyhow::Result<Client> {
    let store = FileStore::new(path);
    let doc = store.read()?.ok_or_else(|| {
        anyhow!(
            "not logged in: {} does not exist (run `camgate login`)",
            path.display()
        )
    })?;
    let server = doc.server.ok_or_else(|| {
        anyhow!(
            "{}: no server recorded; run `camgate login`",
            path.display()
        )
    })?;
    let client_id = doc.client_id.ok_or_else(|| {
        anyhow!(
            "{}: no client id recorded; run `camgate login`",
            path.display()
        )
    })?;
    let token_path = doc
        .token_path
        .unwrap_or_else(|| ANGELCAM_TOKEN_PATH.to_string());
    let mut b = Client::builder(server)
        .client_id(client_id)
        .token_path(token_path)
        .store(store);
    if let Some(s) = secret {
        b = b.client_secret(s);
    }
    Ok(b.build()?)
}

pub async fn api(a: ApiArgs) -> anyhow::Result<()> {
    let path = credentials_path(a.credentials)?;
    let method =
        camgate_client::reqwest::Method::from_bytes(a.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| anyhow!("`{}` is not an HTTP method", a.method))?;
    let body = match &a.data {
        None => None,
        Some(d) => Some(
            serde_json::from_str::<serde_json::Value>(d)
                .map_err(|e| anyhow!("--data is not JSON: {e}"))?,
        ),
    };
    if !a.path.starts_with('/') {
        bail!("the path must start with `/` (e.g. /v1/cameras/)");
    }
    let client = saved_client(&path, client_secret(a.client_secret_stdin)?)?;
    let r = match client.send(method, &a.path, body.as_ref()).await {
        Ok(r) => r,
        Err(e) if e.oauth_code() == Some("invalid_grant") => {
            bail!("the saved session is no longer valid ({e}); run `camgate login` again")
        }
        Err(e) => return Err(e.into()),
    };
    let status = r.status();
    let bytes = r.bytes().await.context("reading the answer")?;
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)?;
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if !status.is_success() {
        bail!("HTTP {status}");
    }
    Ok(())
}

pub async fn logout(a: LogoutArgs) -> anyhow::Result<()> {
    let path = credentials_path(a.credentials)?;
    if !path.exists() {
        println!("not logged in ({} does not exist)", path.display());
        return Ok(());
    }
    let client = saved_client(&path, client_secret(a.client_secret_stdin)?)?;
    let revoked = client.revoke().await;
    println!("credentials removed from {}", path.display());
    revoked.map_err(|e| anyhow!("the server could not revoke the tokens: {e}"))
}
