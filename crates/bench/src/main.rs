//! `camgate-bench`: starts `camgate serve --demo` per scenario, loads it over keep-alive
//! HTTP/1.1 connections and reports throughput, latency, errors, memory and start-up time as a
//! markdown table (BENCHMARKS.md), on SQLite, PostgreSQL or both.

mod backend;
mod fixtures;
mod hashrate;
mod http;
mod load;
mod receiver;
mod report;
mod scenarios;
mod server;
mod sys;
mod workloads;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Parser;

use backend::DatabaseArg;
use scenarios::{Ctx, Scenario, ScenarioResult};

#[derive(Parser, Debug)]
#[command(
    name = "camgate-bench",
    about = "Benchmarks a release build of camgate: each scenario starts its own `camgate serve --demo`."
)]
struct Cli {
    /// Measured seconds per load phase.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds before each measured phase (not counted).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Keep-alive connections per load phase.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Scenario to run (repeatable); all of them by default. See --list.
    #[arg(long = "scenario", value_enum)]
    scenarios: Vec<Scenario>,
    /// Write the results into this markdown file (between the camgate-bench markers if the
    /// file has them, else appended).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// The camgate binary [default: target/release/camgate in the workspace].
    #[arg(long)]
    camgate: Option<PathBuf>,
    /// Password-grant connections added during the login storm; more than the server's hashing
    /// workers + queue (2 + 64 by default) so that some are shed.
    #[arg(long, default_value_t = 96)]
    storm_logins: usize,
    /// Login-storm clients wait Retry-After after a 503 instead of retrying at once.
    #[arg(long)]
    honor_retry_after: bool,
    /// Device-code polls per second in the device-poll storm, all its connections together
    /// (a paced open loop).
    #[arg(long, default_value_t = 1000.0)]
    poll_rate: f64,
    /// Connections the device-poll storm spreads its polls over (each sends every
    /// connections ÷ rate seconds: 32 ms at the defaults, above the polls' p99 on the shared
    /// 2-core machine, so few slots are skipped).
    #[arg(long, default_value_t = 32)]
    poll_connections: usize,
    /// Threads of the load generator's runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Threads for the raw argon2id measurement [default: one per core, or one per
    /// --server-cpus CPU].
    #[arg(long)]
    hash_threads: Option<usize>,
    /// Pin the server (all its threads) to these CPUs, e.g. `0`, `0,1`, `0-1`; the load
    /// generator then runs on the remaining CPUs, if any. The raw argon2id measurement runs
    /// on the server's CPUs.
    #[arg(long, value_name = "LIST", value_parser = parse_server_cpus)]
    server_cpus: Option<sys::CpuList>,
    /// A second CPU set for the server: every selected scenario runs again with the server
    /// pinned to these CPUs (the load generator stays where it is), and the report adds each
    /// row's scaling ratio (req/s on this set ÷ req/s on --server-cpus). E.g. `--server-cpus 0
    /// --scaling-cpus 0,1`. Needs --server-cpus.
    #[arg(long, value_name = "LIST", value_parser = parse_server_cpus, requires = "server_cpus")]
    scaling_cpus: Option<sys::CpuList>,
    /// Pin the load generator to these CPUs instead of the ones --server-cpus leaves over. On
    /// a machine with many cores, keep it apart from both server sets so that the scaling
    /// ratio measures the server alone: e.g. on 16 CPUs `--server-cpus 0-3 --scaling-cpus 0-7
    /// --bench-cpus 8-15 --client-threads 8`.
    #[arg(long, value_name = "LIST", value_parser = parse_server_cpus)]
    bench_cpus: Option<sys::CpuList>,
    /// Run the server's threads at this nice value (0–19) once it is ready. A contention
    /// probe: where the server's CPU set includes the load generator's CPU, 19 lets the
    /// server use that CPU only while the generator waits, so a server thread preempted
    /// inside a critical section stalls the others and a lock shared by the worker threads
    /// shows as a scaling ratio below 1. Meant for SQLite: an unpinned PostgreSQL at nice 0
    /// would take the server's CPU too.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=19))]
    server_nice: i32,
    /// Server restarts in the startup scenario.
    #[arg(long, default_value_t = 5)]
    restarts: usize,
    /// CAMGATE_LOG for the server [default: the server's own default, info].
    #[arg(long)]
    server_log: Option<String>,
    /// Database backend: a fresh SQLite file or PostgreSQL database per scenario; `both` runs
    /// the scenarios on each (me-opaque and refresh-rotate unless --scenario is given) and
    /// adds a comparison table.
    #[arg(long, value_enum, default_value_t = DatabaseArg::Sqlite)]
    database: DatabaseArg,
    /// PostgreSQL admin URL: each scenario creates `camgate_bench_<pid>_<n>` through it and
    /// drops it afterwards.
    #[arg(long, env = "CAMGATE_BENCH_PG_URL", default_value = backend::DEFAULT_PG_URL)]
    pg_url: String,
    /// Cameras imported for cameras-json and cameras-page-1000.
    #[arg(long, default_value_t = 100_000)]
    cameras: usize,
    /// Cameras imported for cameras-json-1m.
    #[arg(long, default_value_t = 1_000_000)]
    million_cameras: usize,
    /// Access-token rows of me-10m's large run.
    #[arg(long, default_value_t = 10_000_000)]
    token_rows: u64,
    /// Access-token rows of me-10m's small run.
    #[arg(long, default_value_t = 10_000)]
    small_token_rows: u64,
    /// Where filled databases (1 M+ token rows, cameras-json-1m's cameras) are kept between
    /// runs (SQLite files; for PostgreSQL a template database
    /// `camgate_bench_tpl_<what>_<rows>_<key>` is kept instead)
    /// [default: target/camgate-bench-cache in the workspace].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Fill the databases every time instead of using (or making) the cache.
    #[arg(long)]
    no_cache: bool,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .filter(|p| p.join("Cargo.toml").exists())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `--server-cpus`: against the CPUs this process may use.
fn parse_server_cpus(text: &str) -> Result<sys::CpuList, String> {
    let available = sys::available_cpus().map_err(|e| format!("{e:#}"))?;
    sys::CpuList::parse(text, &available)
}

/// Where the server and the load generator run, for the report.
fn cpu_settings(server: Option<&sys::CpuList>, bench: Option<&sys::CpuList>) -> String {
    match (server, bench) {
        (None, _) => "not pinned (server and load generator share every CPU)".into(),
        (Some(s), Some(b)) => format!(
            "server pinned to CPU {}, load generator to CPU {}",
            s.label(),
            b.label()
        ),
        (Some(s), None) => format!(
            "server pinned to CPU {}, load generator not pinned (no CPU left over)",
            s.label()
        ),
    }
}

fn secs(v: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| anyhow!("--{what}: not a duration in seconds"))
}

fn command_line() -> String {
    let mut args = std::env::args();
    let exe = args
        .next()
        .map(|a| {
            Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or(a)
        })
        .unwrap_or_default();
    std::iter::once(format!("target/release/{exe}"))
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ")
}

async fn run(cli: Cli, bench_cpus: Option<sys::CpuList>) -> anyhow::Result<bool> {
    if cli.list {
        for s in Scenario::ALL {
            println!("{:<18} {}", s.name(), s.about());
        }
        return Ok(true);
    }
    let root = workspace_root();
    let binary = cli
        .camgate
        .clone()
        .unwrap_or_else(|| root.join("target/release/camgate"));
    if !binary.is_file() {
        bail!(
            "{} not found; build it with `cargo build --release -p camgate-server` or pass --camgate",
            binary.display()
        );
    }
    if cli.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let backends = cli.database.backends();
    let selected: Vec<Scenario> = if cli.scenarios.is_empty() && backends.len() > 1 {
        Scenario::BOTH_DEFAULT.to_vec()
    } else {
        Scenario::ALL
            .iter()
            .copied()
            .filter(|s| cli.scenarios.is_empty() || cli.scenarios.contains(s))
            .collect()
    };
    if !(cli.poll_rate.is_finite() && cli.poll_rate > 0.0) || cli.poll_connections == 0 {
        bail!("--poll-rate must be positive and --poll-connections at least 1");
    }
    if cli.token_rows == 0 || cli.small_token_rows == 0 {
        bail!("--token-rows and --small-token-rows must be at least 1");
    }
    let base_ctx = Ctx {
        db: server::DbOpts {
            backend: backend::Backend::Sqlite,
            pg_admin: cli.pg_url.clone(),
        },
        cameras: cli.cameras,
        million_cameras: cli.million_cameras,
        token_rows: cli.token_rows,
        small_token_rows: cli.small_token_rows,
        cache_dir: (!cli.no_cache).then(|| {
            cli.cache_dir
                .clone()
                .unwrap_or_else(|| root.join("target/camgate-bench-cache"))
        }),
        server: server::ServerOpts {
            binary: binary.clone(),
            log_filter: cli.server_log.clone(),
            cpus: cli.server_cpus.clone(),
            nice: cli.server_nice,
        },
        phases: load::Phases {
            warmup: secs(cli.warmup, "warmup")?,
            duration: secs(cli.duration, "duration")?,
        },
        connections: cli.connections,
        storm_logins: cli.storm_logins,
        honor_retry_after: cli.honor_retry_after,
        poll_rate: cli.poll_rate,
        poll_connections: cli.poll_connections,
        hash_threads: cli.hash_threads.unwrap_or_else(|| {
            cli.server_cpus
                .as_ref()
                .map_or_else(sys::nproc, sys::CpuList::len)
        }),
        restarts: cli.restarts,
    };
    let machine = sys::MachineInfo::collect(&root);
    let mut cpus = cpu_settings(cli.server_cpus.as_ref(), bench_cpus.as_ref());
    // Where the generator shares a CPU with a server set, a scaling ratio measures the two
    // together (on two cores it must); say so beside the figures.
    if let Some(b) = &bench_cpus {
        for (what, set) in [
            ("--server-cpus", cli.server_cpus.as_ref()),
            ("--scaling-cpus", cli.scaling_cpus.as_ref()),
        ] {
            if let Some(shared) = set.and_then(|s| b.shared_with(s)) {
                cpus.push_str(&format!(
                    "; the load generator shares CPU {shared} with {what}"
                ));
            }
        }
    }
    if cli.server_nice > 0 {
        cpus.push_str(&format!("; server at nice {}", cli.server_nice));
    }
    eprintln!(
        "camgate-bench: {} on {} × {} (load {}), {} scenario(s) on {}; CPUs: {cpus}",
        binary.display(),
        machine.nproc,
        machine.cpu_model,
        machine.loadavg_start,
        selected.len(),
        backends
            .iter()
            .map(|b| b.label())
            .collect::<Vec<_>>()
            .join(" and ")
    );

    let started = Instant::now();
    let mut results: Vec<ScenarioResult> = Vec::new();
    let mut failures = Vec::new();
    let ctx = base_ctx;
    let runs: Vec<(backend::Backend, Scenario)> = backends
        .iter()
        .flat_map(|b| selected.iter().map(move |s| (*b, *s)))
        .collect();
    let mut scaled: Vec<ScenarioResult> = Vec::new();
    let sets: Vec<Option<sys::CpuList>> = std::iter::once(cli.server_cpus.clone())
        .chain(cli.scaling_cpus.clone().map(Some))
        .collect();
    for (set, cpus_of_set) in sets.iter().enumerate() {
        for (b, s) in runs.clone() {
            let mut ctx = ctx.clone();
            ctx.db.backend = b;
            ctx.server.cpus = cpus_of_set.clone();
            if set > 0 {
                eprintln!(
                    "\n(scaling run: server on CPU {})",
                    cpus_of_set.as_ref().map_or("all".into(), |c| c.label())
                );
            }
            eprintln!("\n== {} [{}] — {}", s.name(), b.label(), s.about());
            match s.run(&ctx, &results).await {
                Ok(r) => {
                    for row in &r.rows {
                        let st = &row.stats;
                        eprintln!(
                        "  {}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} errors ({} × 5xx), {} shed; peak RSS {:.1} MB; CPU server {:.2} bench {:.2} machine {:.2}",
                        st.label,
                        st.rps(),
                        st.ms(0.5),
                        st.ms(0.99),
                        st.max_ms(),
                        st.errors,
                        st.status_5xx,
                        st.shed,
                        row.peak_rss_kb as f64 / 1024.0,
                        row.cpu.server,
                        row.cpu.client,
                        row.cpu.machine
                    );
                        for e in &st.error_samples {
                            eprintln!("    error: {e}");
                        }
                    }
                    for n in &r.notes {
                        eprintln!("  {n}");
                    }
                    if set == 0 {
                        results.push(r);
                    } else {
                        scaled.push(r);
                    }
                }
                Err(e) => {
                    eprintln!("  FAILED: {e:#}");
                    failures.push(format!("{} ({}): {e:#}", s.name(), b.label()));
                }
            }
        }
    }

    let run_info = report::RunInfo {
        command: command_line(),
        duration: ctx.phases.duration,
        warmup: ctx.phases.warmup,
        connections: ctx.connections,
        storm_logins: ctx.storm_logins,
        poll_rate: ctx.poll_rate,
        poll_connections: ctx.poll_connections,
        client_threads: cli.client_threads,
        cpus,
        server_log: cli
            .server_log
            .clone()
            .unwrap_or_else(|| "default (info: one access-log line per request, to a file)".into()),
        elapsed: started.elapsed(),
        all_scenarios: selected.len() == Scenario::ALL.len(),
        backends: backends.clone(),
        loadavg_end: sys::loadavg(),
        pressure_end: sys::pressure(),
    };
    let mut block = report::render(&machine, &run_info, &results);
    if let (Some(a), Some(b)) = (&cli.server_cpus, &cli.scaling_cpus) {
        block.push_str(&report::scaling(&a.label(), &b.label(), &results, &scaled));
    }
    if !failures.is_empty() {
        block.push_str("\nFailed scenarios:\n\n");
        for f in &failures {
            block.push_str(&format!("- {}\n", f.replace('\n', " ")));
        }
    }
    println!("{block}");
    if let Some(path) = &cli.markdown {
        report::write(path, &block)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(failures.is_empty())
}

fn main() {
    let cli = Cli::parse();
    // Pin the load generator before its runtime starts, so that every thread it makes
    // inherits the mask; the server gets its CPUs where it is spawned (server.rs).
    let bench_cpus = cli.bench_cpus.clone().or_else(|| {
        cli.server_cpus.as_ref().and_then(|server| {
            let available = sys::available_cpus().unwrap_or_default();
            server.rest(&available)
        })
    });
    if let Some(cpus) = &bench_cpus {
        if let Err(e) = sys::pin_current_thread(cpus) {
            eprintln!("error: pinning the load generator: {e:#}");
            std::process::exit(2);
        }
    }
    let threads = cli.client_threads.max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the tokio runtime");
    // Ctrl-C drops the run future: its servers are killed and its PostgreSQL databases
    // dropped by their Drop guards.
    let outcome = rt.and_then(|rt| {
        rt.block_on(async {
            tokio::select! {
                r = run(cli, bench_cpus) => r,
                _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
            }
        })
    });
    match outcome {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
