//! The server under test: a fresh database per scenario (SQLite file or PostgreSQL database),
//! fixtures through the `camgate` CLI, and a `camgate serve --demo` child process on a free
//! loopback port.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use crate::backend::{Backend, PgDatabase};
use crate::http::{self, Target};
use crate::sys;

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ServerOpts {
    pub binary: PathBuf,
    /// `CAMGATE_LOG` for the server; `None` keeps the server's default (`info`, which writes
    /// one access-log line per request).
    pub log_filter: Option<String>,
    /// `--server-cpus`: the server process runs on these CPUs only (all its threads).
    pub cpus: Option<sys::CpuList>,
    /// `--server-nice`: every server thread at least this nice (0 leaves them alone).
    pub nice: i32,
}

/// Which database a scenario gets.
#[derive(Clone, Debug)]
pub struct DbOpts {
    pub backend: Backend,
    /// PostgreSQL admin URL (a database to connect to for CREATE/DROP DATABASE).
    pub pg_admin: String,
}

/// One fresh database plus a scratch directory for the server logs (and the SQLite file).
/// Dropping it removes both (the PostgreSQL database with `DROP DATABASE … WITH (FORCE)`).
pub struct Db {
    dir: tempfile::TempDir,
    pub url: String,
    starts: usize,
    pub backend: Backend,
    pub pg: Option<PgDatabase>,
    /// A configuration file the server starts with (`--config`), if any.
    pub config: Option<PathBuf>,
}

impl Db {
    pub async fn new(opts: &DbOpts) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("camgate-bench-")
            .tempdir()
            .context("creating a temporary directory")?;
        let (url, pg) = match opts.backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("bench.db").display()),
                None,
            ),
            Backend::Postgres => {
                let pg = PgDatabase::create(&opts.pg_admin).await?;
                (pg.url.clone(), Some(pg))
            }
        };
        Ok(Self {
            dir,
            url,
            starts: 0,
            backend: opts.backend,
            pg,
            config: None,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The SQLite database file.
    pub fn sqlite_file(&self) -> PathBuf {
        self.dir.path().join("bench.db")
    }

    /// Runs `camgate --database-url <db> <args…>` to completion (the server must not be running
    /// a conflicting migration); returns its stdout parsed as JSON (use `--json`).
    pub fn cli(
        &self,
        opts: &ServerOpts,
        args: &[&str],
        stdin: Option<&str>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut cmd = Command::new(&opts.binary);
        cmd.arg("--database-url")
            .arg(&self.url)
            .args(args)
            .env("CAMGATE_LOG", "warn")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("running {}", opts.binary.display()))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            writeln!(pipe, "{text}")?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "camgate {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.trim())
            .with_context(|| format!("camgate {}: output is not JSON: {stdout}", args.join(" ")))
    }
}

/// A running `camgate serve --demo`.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub target: Target,
    /// Spawn to the first `GET /health/ready` answered 200.
    pub ready: Duration,
    /// `VmRSS` shortly after ready, before any fixture or load.
    pub idle_rss_kb: u64,
    log_path: PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Server {
    pub async fn start(opts: &ServerOpts, db: &mut Db) -> anyhow::Result<Self> {
        db.starts += 1;
        let log_path = db.path().join(format!("serve-{}.log", db.starts));
        let log = std::fs::File::create(&log_path)?;
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let mut cmd = Command::new(&opts.binary);
        cmd.arg("--database-url")
            .arg(&db.url)
            .arg("serve")
            .arg("--demo")
            .arg("--bind")
            .arg(addr.to_string())
            .args(
                db.config
                    .iter()
                    .flat_map(|c| [std::ffi::OsStr::new("--config"), c.as_os_str()]),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if let Some(f) = &opts.log_filter {
            cmd.env("CAMGATE_LOG", f);
        }
        let spawned = Instant::now();
        // The child inherits the affinity of the thread that forks it, so it starts pinned,
        // before its runtime creates any thread (no `pre_exec`: the workspace forbids unsafe
        // code). No `.await` inside, so the thread cannot change under us.
        let child = sys::on_cpus(opts.cpus.as_ref(), || cmd.spawn())?
            .with_context(|| format!("starting {}", opts.binary.display()))?;
        let pid = child.id();
        if let Some(want) = &opts.cpus {
            let got = sys::cpus_of(pid)?;
            if got != want.cpus() {
                bail!(
                    "camgate (pid {pid}) runs on CPUs {got:?}, not on --server-cpus {}",
                    want.label()
                );
            }
        }
        let target = Target::new(addr)?;
        let mut server = Self {
            child,
            pid,
            target,
            ready: Duration::ZERO,
            idle_rss_kb: 0,
            log_path,
        };
        server.ready = server.wait_ready(spawned).await?;
        // After start-up: the threads that serve exist now, and later ones inherit.
        if opts.nice > 0 {
            sys::renice_threads(pid, opts.nice)?;
        }
        // Let start-up allocations settle before calling the memory "idle".
        tokio::time::sleep(Duration::from_millis(250)).await;
        server.idle_rss_kb = sys::status_kb(pid, "VmRSS").unwrap_or(0);
        Ok(server)
    }

    async fn wait_ready(&mut self, spawned: Instant) -> anyhow::Result<Duration> {
        let deadline = spawned + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "camgate exited during start-up ({status}); log:\n{}",
                    log_tail(&self.log_path)
                );
            }
            let req = self.target.get("/health/ready", None)?;
            if let Ok(r) = http::once(self.target.addr, req, Duration::from_secs(2)).await {
                if r.status == hyper::StatusCode::OK {
                    return Ok(spawned.elapsed());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "camgate was not ready within 30 s; log:\n{}",
                    log_tail(&self.log_path)
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Fails if the server died (call after a load phase).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            Some(status) => Err(anyhow!(
                "camgate died ({status}); log:\n{}",
                log_tail(&self.log_path)
            )),
            None => Ok(()),
        }
    }

    /// Graceful stop: SIGTERM, then SIGKILL after 5 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_none() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.pid.to_string())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.child.try_wait()?.is_none() {
                if Instant::now() > deadline {
                    eprintln!("  camgate did not stop within 5 s of SIGTERM; killing it");
                    self.child.kill()?;
                    self.child.wait()?;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
