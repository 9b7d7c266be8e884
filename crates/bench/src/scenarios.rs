//! The benchmark scenarios. Each one starts its own `camgate serve --demo` on a fresh database
//! (SQLite or PostgreSQL, see `backend.rs`), creates its fixtures, runs the load and reports
//! rows for the table plus named figures for the targets. The older scenarios use the demo
//! data (`--demo` seeds an empty database); the newer ones make their fixtures with the CLI
//! before the server starts (so `--demo` seeds nothing) and bulk data with `fixtures.rs`.
//!
//! Adding a scenario: add a variant to [`Scenario`] with its `#[value(name)]`, list it in
//! [`Scenario::ALL`], give it a line in [`Scenario::about`] and a function in
//! [`Scenario::run`]. Workloads live in `workloads.rs`; targets in `report.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use crate::backend::Backend;
use crate::fixtures::{self, FillPlan};
use crate::hashrate;
use crate::http;
use crate::load::{self, Group, GroupStats, LoadResult, Phases};
use crate::server::{Db, DbOpts, Server, ServerOpts};
use crate::sys::CpuUse;
use crate::workloads::{
    self, ClientCredentialsGrant, DevicePoll, Get, PasswordGrant, PollCounts, RefreshChain,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Scenario {
    /// `GET /health/alive`: camgate's HTTP stack with no auth and no database.
    #[value(name = "floor")]
    Floor,
    /// `GET /v1/me/` with an opaque Bearer token.
    #[value(name = "me-opaque")]
    MeOpaque,
    /// `GET /v1/me/` with a JWT access token.
    #[value(name = "me-jwt")]
    MeJwt,
    /// `GET /v1/cameras/?limit=20`.
    #[value(name = "cameras")]
    Cameras,
    /// `GET /v1/cameras/?limit=20` with the listing cache off: every answer built anew.
    #[value(name = "cameras-uncached")]
    CamerasUncached,
    /// Page 1 and page 1,000 of `GET /v1/cameras/?limit=20` over 100,000 cameras, cache off.
    #[value(name = "cameras-page-1000")]
    CamerasPage1000,
    /// `GET /cameras.json` with a selective filter over 100,000 imported cameras.
    #[value(name = "cameras-json")]
    CamerasJson,
    /// `GET /cameras.json`: a city filter, then a 25 km radius search, over 1,000,000 cameras.
    #[value(name = "cameras-json-1m")]
    CamerasJson1m,
    /// Rotating refresh-token chains, one per connection.
    #[value(name = "refresh-rotate")]
    RefreshRotate,
    /// Client-credentials grants, JWT access tokens (cam2 profile).
    #[value(name = "cc-jwt")]
    CcJwt,
    /// Client-credentials grants, opaque access tokens (angelcam profile).
    #[value(name = "cc-opaque")]
    CcOpaque,
    /// Password grants, against the raw argon2id rate.
    #[value(name = "password")]
    Password,
    /// Password grants flooding the hashing pool while `GET /v1/me/` is measured.
    #[value(name = "login-storm")]
    LoginStorm,
    /// Device-code polls (one code, a fixed rate) while `GET /v1/me/` is measured.
    #[value(name = "device-poll-storm")]
    DevicePollStorm,
    /// `GET /v1/me/` with 10 million rows in the access-token table vs. 10 thousand.
    #[value(name = "me-10m")]
    Me10m,
    /// Restarts on an existing database (fixtures made with the CLI): start-to-ready, idle RSS.
    #[value(name = "startup")]
    Startup,
    /// `POST /v1/cameras/{id}/events/`: event ingestion (each event with its outbox rows).
    #[value(name = "events")]
    Events,
    /// Webhook deliveries: events queued on a node that does not deliver, then drained by one
    /// that does, to a local receiver.
    #[value(name = "webhook-delivery")]
    WebhookDelivery,
}

impl Scenario {
    /// Run order of a full run. `login-storm` and `device-poll-storm` compare with
    /// `me-opaque`, so they come later; `floor` comes first, next to `me-opaque`, which the
    /// report states as a share of it (computed at report time, so order does not matter).
    pub const ALL: &'static [Scenario] = &[
        Scenario::Floor,
        Scenario::MeOpaque,
        Scenario::MeJwt,
        Scenario::Cameras,
        Scenario::CamerasUncached,
        Scenario::CamerasPage1000,
        Scenario::CamerasJson,
        Scenario::CamerasJson1m,
        Scenario::RefreshRotate,
        Scenario::CcJwt,
        Scenario::CcOpaque,
        Scenario::Password,
        Scenario::LoginStorm,
        Scenario::DevicePollStorm,
        Scenario::Me10m,
        Scenario::Startup,
        Scenario::Events,
        Scenario::WebhookDelivery,
    ];

    /// What `--database both` runs when no `--scenario` is given.
    pub const BOTH_DEFAULT: &'static [Scenario] = &[Scenario::MeOpaque, Scenario::RefreshRotate];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Floor => "floor",
            Scenario::MeOpaque => "me-opaque",
            Scenario::MeJwt => "me-jwt",
            Scenario::Cameras => "cameras",
            Scenario::CamerasUncached => "cameras-uncached",
            Scenario::CamerasPage1000 => "cameras-page-1000",
            Scenario::CamerasJson => "cameras-json",
            Scenario::CamerasJson1m => "cameras-json-1m",
            Scenario::RefreshRotate => "refresh-rotate",
            Scenario::CcJwt => "cc-jwt",
            Scenario::CcOpaque => "cc-opaque",
            Scenario::Password => "password",
            Scenario::LoginStorm => "login-storm",
            Scenario::DevicePollStorm => "device-poll-storm",
            Scenario::Me10m => "me-10m",
            Scenario::Startup => "startup",
            Scenario::Events => "events",
            Scenario::WebhookDelivery => "webhook-delivery",
        }
    }

    pub fn about(self) -> &'static str {
        match self {
            Scenario::Floor => "GET /health/alive: camgate's HTTP stack (routing, middleware, access log) with no auth and no database",
            Scenario::MeOpaque => "GET /v1/me/ with an opaque Bearer token (password grant, demo public client)",
            Scenario::MeJwt => "GET /v1/me/ with a JWT access token (`Authorization: JWT`; password grant, public client on the cam2 profile)",
            Scenario::Cameras => "GET /v1/cameras/?limit=20 (the 20 demo cameras) with an opaque Bearer token",
            Scenario::CamerasUncached => "GET /v1/cameras/?limit=20 (the 20 demo cameras) with `camera_listing_cache_bytes = 0`: every answer read, signed and serialised anew",
            Scenario::CamerasPage1000 => "GET /v1/cameras/?limit=20, page 1 then page 1,000 (the `next` link's keyset form) of 100,000 imported cameras, listing cache off",
            Scenario::CamerasJson1m => "GET /cameras.json over --million-cameras (1,000,000) imported cameras: the city filter of cameras-json, then near=<a city>&radius_km=25 (a spatial-index search refined by great-circle distance)",
            Scenario::CamerasJson => "GET /cameras.json?city=…&video=true over 100,000 cameras imported with `camgate camera import` (JWT of the owner's cam2 client)",
            Scenario::RefreshRotate => "POST /oauth/token/ grant_type=refresh_token; each connection follows its own rotating chain",
            Scenario::CcJwt => "POST /oauth/token/ grant_type=client_credentials, confidential client on the cam2 profile (JWT access tokens)",
            Scenario::CcOpaque => "POST /oauth/token/ grant_type=client_credentials, confidential client on the angelcam profile (opaque access tokens)",
            Scenario::Password => "POST /oauth/token/ grant_type=password (one argon2id verification each), vs. the raw argon2id rate",
            Scenario::LoginStorm => "password grants beyond the hashing pool's capacity on extra connections while GET /v1/me/ is measured",
            Scenario::DevicePollStorm => "device-code polls of one pending code at a fixed rate (--poll-rate) on extra connections while GET /v1/me/ is measured",
            Scenario::Me10m => "GET /v1/me/ with an opaque token, 10 thousand then 10 million rows in the access-token table (filled before the server starts)",
            Scenario::Events => "POST /v1/cameras/{id}/events/ round-robin over the 20 demo cameras (a motion event with a small JSON payload; the per-camera post limit off)",
            Scenario::WebhookDelivery => "events posted with one webhook subscribed on a node with `[webhooks] deliver = false`, then a node with delivery on drains the outbox to a local receiver (204 to each): deliveries per second and per server CPU-second",
            Scenario::Startup => "fixtures with `camgate user add/client add/pat add`, then repeated `serve --demo` restarts on that database",
        }
    }

    pub async fn run(
        self,
        ctx: &Ctx,
        earlier: &[ScenarioResult],
    ) -> anyhow::Result<ScenarioResult> {
        match self {
            Scenario::Floor => floor(ctx).await,
            Scenario::MeOpaque => get_scenario(ctx, self, "/v1/me/").await,
            Scenario::MeJwt => me_jwt(ctx).await,
            Scenario::Cameras | Scenario::CamerasUncached => {
                get_scenario(ctx, self, "/v1/cameras/?limit=20").await
            }
            Scenario::CamerasPage1000 => cameras_page_1000(ctx).await,
            Scenario::CamerasJson => cameras_json(ctx).await,
            Scenario::CamerasJson1m => cameras_json_1m(ctx).await,
            Scenario::RefreshRotate => refresh_rotate(ctx).await,
            Scenario::CcJwt => client_credentials(ctx, self, "cam2", "cc_jwt").await,
            Scenario::CcOpaque => client_credentials(ctx, self, "angelcam", "cc_opaque").await,
            Scenario::Password => password(ctx).await,
            Scenario::LoginStorm => login_storm(ctx, earlier).await,
            Scenario::DevicePollStorm => device_poll_storm(ctx, earlier).await,
            Scenario::Me10m => me_10m(ctx).await,
            Scenario::Startup => startup(ctx).await,
            Scenario::Events => events(ctx).await,
            Scenario::WebhookDelivery => webhook_delivery(ctx).await,
        }
    }
}

/// Settings shared by every scenario.
#[derive(Clone)]
pub struct Ctx {
    pub server: ServerOpts,
    /// The backend and how to reach PostgreSQL.
    pub db: DbOpts,
    /// Cameras imported for `cameras-json`.
    pub cameras: usize,
    /// Cameras imported for `cameras-json-1m`.
    pub million_cameras: usize,
    /// Access-token rows of `me-10m`'s large and small runs.
    pub token_rows: u64,
    pub small_token_rows: u64,
    /// Where filled databases are kept between runs (`None`: no cache).
    pub cache_dir: Option<PathBuf>,
    pub phases: Phases,
    pub connections: usize,
    /// Password-grant connections in the login storm.
    pub storm_logins: usize,
    /// Login-storm password connections wait Retry-After after a 503.
    pub honor_retry_after: bool,
    /// Device-code polls per second in the device-poll storm, all connections together.
    pub poll_rate: f64,
    /// Connections the device-poll storm spreads its polls over.
    pub poll_connections: usize,
    /// Threads for the raw argon2id measurement.
    pub hash_threads: usize,
    /// Server restarts in the startup scenario.
    pub restarts: usize,
}

/// One line of the results table.
pub struct Row {
    pub stats: GroupStats,
    pub cpu: CpuUse,
    pub peak_rss_kb: u64,
    /// Other groups ran at the same time, so the server CPU is not this row's alone.
    pub shared: bool,
}

/// One server start.
pub struct Start {
    /// `fresh` (empty database, demo seeding included) or `existing`.
    pub db: &'static str,
    pub ready: Duration,
    pub idle_rss_kb: u64,
}

pub struct ScenarioResult {
    pub scenario: Scenario,
    pub backend: Backend,
    pub rows: Vec<Row>,
    pub starts: Vec<Start>,
    /// Free-form lines for the report.
    pub notes: Vec<String>,
    /// Named figures the targets are checked against (see report.rs).
    pub figures: BTreeMap<String, f64>,
    /// The server's peak RSS (kB) before the load: start-up and fixtures.
    pub peak_before_kb: u64,
}

impl ScenarioResult {
    fn new(scenario: Scenario, ctx: &Ctx) -> Self {
        Self {
            scenario,
            backend: ctx.db.backend,
            rows: Vec::new(),
            starts: Vec::new(),
            notes: Vec::new(),
            figures: BTreeMap::new(),
            peak_before_kb: 0,
        }
    }

    fn started(&mut self, s: &Server, db: &'static str) {
        self.starts.push(Start {
            db,
            ready: s.ready,
            idle_rss_kb: s.idle_rss_kb,
        });
    }

    fn add_load(&mut self, load: LoadResult) {
        // Only the first load's: later ones would include the earlier load.
        if let (Some(before), true) = (load.peak_before_kb, self.rows.is_empty()) {
            self.peak_before_kb = before;
        }
        let shared = load.groups.len() > 1;
        for stats in load.groups {
            self.rows.push(Row {
                stats,
                cpu: load.cpu,
                peak_rss_kb: load.peak_rss_kb,
                shared,
            });
        }
    }

    fn row(&self, i: usize) -> anyhow::Result<&GroupStats> {
        self.rows
            .get(i)
            .map(|r| &r.stats)
            .ok_or_else(|| anyhow!("{}: no row {i}", self.scenario.name()))
    }

    /// Stores p50/p99/rps of a row under `prefix.*`.
    fn figures_of(&mut self, prefix: &str, i: usize) -> anyhow::Result<()> {
        let s = self.row(i)?;
        let (rps, p50, p99, errors) = (s.rps(), s.ms(0.5), s.ms(0.99), s.errors as f64);
        let key = |k: &str| format!("{prefix}.{k}");
        self.figures.insert(key("rps"), rps);
        self.figures.insert(key("p50"), p50);
        self.figures.insert(key("p99"), p99);
        self.figures.insert(key("errors"), errors);
        Ok(())
    }

    /// Stores req per server CPU-second of a row under `prefix.per_cpu` (NaN, so left out of
    /// the targets, if the server's CPU was not measured).
    fn per_cpu_figure(&mut self, prefix: &str, i: usize) {
        let v = self.rows.get(i).map_or(f64::NAN, |row| {
            if row.cpu.server > 0.0 {
                row.stats.rps() / row.cpu.server
            } else {
                f64::NAN
            }
        });
        self.figures.insert(format!("{prefix}.per_cpu"), v);
    }

    pub fn figure(&self, key: &str) -> Option<f64> {
        self.figures.get(key).copied().filter(|v| v.is_finite())
    }
}

/// A fresh database and server.
async fn fresh(ctx: &Ctx, r: &mut ScenarioResult) -> anyhow::Result<(Db, Server)> {
    let mut db = Db::new(&ctx.db).await?;
    let server = Server::start(&ctx.server, &mut db).await?;
    r.started(&server, "fresh");
    eprintln!(
        "  server pid {} on {} ready in {:.0} ms, idle RSS {:.1} MB",
        server.pid,
        server.target.addr,
        server.ready.as_secs_f64() * 1000.0,
        server.idle_rss_kb as f64 / 1024.0
    );
    Ok((db, server))
}

async fn finish(
    mut server: Server,
    load: LoadResult,
    r: &mut ScenarioResult,
) -> anyhow::Result<()> {
    server.check_alive()?;
    r.add_load(load);
    server.stop().await
}

/// Runs a storm (`groups`: `GET /v1/me/`, then the storm's own group) on `server`, records
/// both rows' figures as `{key}.me` and `{key}.{storm_key}`, and returns their row indexes.
async fn storm_phase(
    ctx: &Ctx,
    server: Server,
    r: &mut ScenarioResult,
    groups: [Group; 2],
    what: &str,
    key: &str,
    storm_key: &str,
) -> anyhow::Result<(usize, usize)> {
    log_phase(what, ctx);
    let load = load::run(&server.target, server.pid, groups.into(), ctx.phases).await?;
    finish(server, load, r).await?;
    // Rows: [baseline?], me during the storm, the storm's group.
    let n = r.rows.len();
    r.figures_of(&format!("{key}.me"), n - 2)?;
    r.figures_of(&format!("{key}.{storm_key}"), n - 1)?;
    Ok((n - 2, n - 1))
}

fn log_phase(what: &str, ctx: &Ctx) {
    eprintln!(
        "  {what}: {:.0} s warm-up + {:.0} s measured",
        ctx.phases.warmup.as_secs_f64(),
        ctx.phases.duration.as_secs_f64()
    );
}

/// A configuration file that turns the camera listing cache off.
fn no_listing_cache(db: &mut Db) -> anyhow::Result<()> {
    let config = db.path().join("camgate.toml");
    std::fs::write(&config, "camera_listing_cache_bytes = 0\n")?;
    db.config = Some(config);
    Ok(())
}

async fn get_scenario(ctx: &Ctx, sc: Scenario, path: &str) -> anyhow::Result<ScenarioResult> {
    let mut r = ScenarioResult::new(sc, ctx);
    let mut db = Db::new(&ctx.db).await?;
    if sc == Scenario::CamerasUncached {
        no_listing_cache(&mut db)?;
    }
    let server = Server::start(&ctx.server, &mut db).await?;
    r.started(&server, "fresh");
    let tokens = workloads::demo_grants(&server.target, 1).await?;
    let token = tokens
        .first()
        .ok_or_else(|| anyhow!("no token"))?
        .access
        .clone();
    // Check the fixture once, outside the measurement.
    let probe = Get::bearer(path, &token)?;
    let req = server.target.get(path, probe.auth.as_ref())?;
    let reply = http::once(server.target.addr, req, Duration::from_secs(10)).await?;
    if reply.status != hyper::StatusCode::OK {
        bail!("GET {path}: {}", reply.describe());
    }
    if matches!(sc, Scenario::Cameras | Scenario::CamerasUncached) {
        let n = reply
            .json()
            .get("results")
            .and_then(|v| v.as_array())
            .map_or(0, |a| a.len());
        r.notes.push(format!("each answer lists {n} cameras"));
    }
    let group = Group::new(format!("GET {path}"), ctx.connections, |_| {
        Get::bearer(path, &token)
    })?;
    log_phase("load", ctx);
    let load = load::run(&server.target, server.pid, vec![group], ctx.phases).await?;
    finish(server, load, &mut r).await?;
    let prefix = match sc {
        Scenario::MeOpaque => "me",
        Scenario::CamerasUncached => "cameras_uncached",
        _ => "cameras",
    };
    r.figures_of(prefix, 0)?;
    r.per_cpu_figure(prefix, 0);
    drop(db);
    Ok(r)
}

/// The demo user's access token and the ids of the demo cameras.
async fn demo_token_and_cameras(server: &Server) -> anyhow::Result<(String, Vec<i64>)> {
    let tokens = workloads::demo_grants(&server.target, 1).await?;
    let token = tokens
        .first()
        .ok_or_else(|| anyhow!("no token"))?
        .access
        .clone();
    let list = probe(server, &Get::bearer("/v1/cameras/?limit=20", &token)?).await?;
    let cameras: Vec<i64> = list
        .json()
        .get("results")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|c| c["id"].as_i64()).collect())
        .unwrap_or_default();
    if cameras.is_empty() {
        bail!("no demo cameras");
    }
    Ok((token, cameras))
}

fn post_events_group(cameras: &[i64], token: &str, connections: usize) -> anyhow::Result<Group> {
    let auth = hyper::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
    Group::new("POST /v1/cameras/{id}/events/", connections, |i| {
        Ok(workloads::PostEvents {
            cameras: cameras.to_vec(),
            auth: auth.clone(),
            next: i,
        })
    })
}

/// Event ingestion: each answer comes after the event and its webhook outbox rows are
/// committed. Reported per second and per server CPU-second.
async fn events(ctx: &Ctx) -> anyhow::Result<ScenarioResult> {
    let mut r = ScenarioResult::new(Scenario::Events, ctx);
    let mut db = Db::new(&ctx.db).await?;
    // The per-camera post limit (120 a minute by default) would cap the run, not the server.
    let config = db.path().join("camgate.toml");
    std::fs::write(&config, "camera_posts_per_minute = 0\n")?;
    db.config = Some(config);
    let server = Server::start(&ctx.server, &mut db).await?;
    r.started(&server, "fresh");
    let (token, cameras) = demo_token_and_cameras(&server).await?;
    r.notes.push(format!(
        "events spread over {} cameras; one outbox row per subscribed webhook (none here)",
        cameras.len()
    ));
    let group = post_events_group(&cameras, &token, ctx.connections)?;
    log_phase("load", ctx);
    let load = load::run(&server.target, server.pid, vec![group], ctx.phases).await?;
    finish(server, load, &mut r).await?;
    r.figures_of("events", 0)?;
    r.per_cpu_figure("events", 0);
    drop(db);
    Ok(r)
}

/// The number a `SELECT count(*) …` answers on the scenario's database.
async fn count_rows(db: &Db, sql: &str) -> anyhow::Result<i64> {
    match db.backend {
        Backend::Sqlite => {
            let conn = rusqlite::Connection::open(db.sqlite_file())?;
            Ok(conn.query_row(sql, [], |row| row.get(0))?)
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&db.url).await?;
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await?;
            conn.close().await.ok();
            Ok(n)
        }
    }
}

/// Webhook delivery. Phase 1: a node with `[webhooks] deliver = false` takes events for the
/// measured duration, one webhook subscribed (so each event queues one delivery); nothing is
/// delivered. Phase 2: a node with delivery on starts on the same database and drains the
/// outbox to a receiver in this process that answers 204. Its rate is the queued deliveries
/// over the time from its spawn to the last one received (start-up included), and per server
/// CPU-second over the process's whole CPU time (start-up included: both err low).
async fn webhook_delivery(ctx: &Ctx) -> anyhow::Result<ScenarioResult> {
    let mut r = ScenarioResult::new(Scenario::WebhookDelivery, ctx);
    let mut db = Db::new(&ctx.db).await?;
    let config = db.path().join("camgate.toml");
    let write_config = |deliver: bool| {
        std::fs::write(
            &config,
            format!(
                "camera_posts_per_minute = 0\n[webhooks]\nallow_private_targets = true\ndeliver = {deliver}\n"
            ),
        )
    };
    write_config(false)?;
    db.config = Some(config.clone());
    let receiver = crate::receiver::Receiver::start().await?;
    let server = Server::start(&ctx.server, &mut db).await?;
    r.started(&server, "fresh");
    let (token, cameras) = demo_token_and_cameras(&server).await?;
    let auth = hyper::header::HeaderValue::from_str(&format!("Bearer {token}"))?;
    let hook = serde_json::json!({
        "url": format!("http://{}/hook", receiver.addr),
        "events": ["camera.event"],
    });
    let req =
        server
            .target
            .post_json("/v1/webhooks/", &auth, bytes::Bytes::from(hook.to_string()))?;
    let reply = http::once(server.target.addr, req, Duration::from_secs(10)).await?;
    if reply.status != hyper::StatusCode::CREATED {
        bail!("POST /v1/webhooks/: {}", reply.describe());
    }
    let group = post_events_group(&cameras, &token, ctx.connections)?;
    log_phase("ingestion, delivery off", ctx);
    let load = load::run(&server.target, server.pid, vec![group], ctx.phases).await?;
    finish(server, load, &mut r).await?;
    r.figures_of("webhook_ingest", 0)?;
    r.per_cpu_figure("webhook_ingest", 0);
    let queued = count_rows(&db, "SELECT count(*) FROM webhook_deliveries").await?;
    if receiver.count() != 0 {
        bail!("a node with `deliver = false` delivered webhooks");
    }
    if queued == 0 {
        bail!("no deliveries queued");
    }

    write_config(true)?;
    eprintln!("  delivery: draining {queued} queued deliveries");
    let spawned = Instant::now();
    let mut server = Server::start(&ctx.server, &mut db).await?;
    r.started(&server, "existing");
    let limit = Duration::from_secs(120.max(queued as u64 / 50));
    while (receiver.count() as i64) < queued {
        if spawned.elapsed() > limit {
            bail!(
                "{} of {queued} deliveries received after {} s",
                receiver.count(),
                limit.as_secs()
            );
        }
        server.check_alive()?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let wall = spawned.elapsed().as_secs_f64();
    let cpu = crate::sys::cpu_ticks(&server.pid.to_string()).unwrap_or(0) as f64
        / crate::sys::TICKS_PER_SEC;
    // The worker records each attempt after the receiver answers: wait for the last ones.
    let sql = "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'";
    let recorded = Instant::now();
    let mut delivered = count_rows(&db, sql).await?;
    while delivered < queued && recorded.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        delivered = count_rows(&db, sql).await?;
    }
    server.stop().await?;
    if delivered != queued {
        bail!("{delivered} of {queued} deliveries recorded as delivered");
    }
    let rate = queued as f64 / wall;
    r.figures.insert("webhook.deliveries".into(), queued as f64);
    r.figures.insert("webhook.rate".into(), rate);
    let per_cpu = if cpu > 0.0 {
        queued as f64 / cpu
    } else {
        f64::NAN
    };
    r.figures.insert("webhook.per_cpu".into(), per_cpu);
    r.notes.push(
        "ingestion row: each event also queues one delivery (one webhook subscribed; delivery off on that node)"
            .to_string(),
    );
    r.notes.push(format!(
        "delivery: {queued} deliveries (each a signed POST to a loopback receiver answering 204, its attempt recorded) \
         drained in {wall:.2} s from the delivering node's spawn = {rate:.0}/s; that node used {cpu:.2} CPU-s \
         = {per_cpu:.0} deliveries per server CPU-second (start-up included in both); all {delivered} recorded as delivered"
    ));
    drop(db);
    Ok(r)
}

/// `GET /health/alive` on the same connections as me-opaque: what camgate's HTTP stack costs
/// with nothing behind it, the floor under every other figure.
async fn floor(ctx: &Ctx) -> anyhow::Result<ScenarioResult> {
    const PATH: &str = "/health/alive";
    let mut r = ScenarioResult::new(Scenario::Floor, ctx);
    let (_db, server) = fresh(ctx, &mut r).await?;
    let reply = probe(&server, &Get::plain(PATH)).await?;
    r.notes.push(format!(
        "each answer is {} bytes of JSON, no Authorization header",
        reply.body.len()
    ));
    let group = Group::new(format!("GET {PATH}"), ctx.connections, |_| {
        Ok(Get::plain(PATH))
    })?;
    log_phase("load", ctx);
    let load = load::run(&server.target, server.pid, vec![group], ctx.phases).await?;
    finish(server, load, &mut r).await?;
    r.figures_of("floor", 0)?;
    r.per_cpu_figure("floor", 0);
    Ok(r)
}

async fn refresh_rotate(ctx: &Ctx) -> anyhow::Result<ScenarioResult> {
    let mut r = ScenarioResult::new(Scenario::RefreshRotate, ctx);
    let (_db, server) = fresh(ctx, &mut r).await?;
    eprintln!(
        "  obtaining {} refresh tokens (password grants)",
        ctx.connections
    );
    let chains = workloads::demo_grants(&server.target, ctx.connections).await?;
    let mut chains = chains.into_iter();
    let group = Group::new("refresh (rotating)", ctx.connections, |_| {
        let refresh = chains
            .next()
            .and_then(|t| t.refresh)
            .ok_or_else(|| anyhow!("the demo client returned no refresh token"))?;
        Ok(RefreshChain {
            client_id: workloads::DEMO_PUBLIC_CLIENT.into(),
            refresh,
        })
    })?;
    log_phase("load", ctx);
    let load = load::run(&server.target, server.pid, vec![group], ctx.phases).await?;
    let rotations = load.groups.first().map_or(0, |g| g.ok);
    let written = load.writer_bytes.filter(|_| rotations > 0);
    finish(server, load, &mut r).await?;
    r.figures_of("refresh", 0)?;
    // What a rotation costs the single writer in pages: each page it changes is one 4 KiB
    // WAL frame per transaction (and a copy back at the next checkpoint).
    if let Some(bytes) = written {
        let per = bytes as f64 / rotations as f64;
        r.figures.insert("refresh.writer_bytes".into(), per);
        r.notes.push(format!(
            "the SQLite token writer thread wrote {:.1} kB per rotation: WAL frames and its \
             own small checkpoints ({} rotations; `wchar` of the thread in /proc)",
            per / 1000.0,
            rotations
        ));
    }
    Ok(r)
}

/// The raw argon2id rate over `window`, with no server running.
async fn raw_hash_rate(ctx: &Ctx, window: Duration) -> anyhow::Result<hashrate::HashRate> {
    let threads = ctx.hash_threads;
    let warmup = ctx.phases.warmup.min(Duration::from_secs(1));
    eprintln!(
        "  raw argon2id (m={} KiB, t={}, p={}) on {threads} threads for {:.0} s",
        hashrate::M_COST_KIB,
        hashrate::T_COST,
        hashrate::P_COST,
        window.as_secs_f64()
    );
    // With --server-cpus the hashing threads run where the server would (they inherit the
    // blocking thread's mask, which is put back afterwards); the server is not running then.
    let cpus = ctx.server.cpus.clone();
    tokio::task::spawn_blocking(move || {
        crate::sys::on_cpus(cpus.as_ref(), || hashrate::measure(threads, warmup, window))?
    })
    .await?
}

async fn password(ctx: &Ctx) -> anyhow::Result<ScenarioResult> {
    let mut r = ScenarioResult::new(Scenario::Password, ctx);
    // The raw rate takes as long as the load in total: half before the server starts, half
    // after it stops, so drift in what else the shared machine is doing affects both sides.
    let half = ctx.phases.duration / 2;
    let before = raw_hash_rate(ctx, half).await?;
    let (_db, server) = fresh(ctx, &mut r).await?;
    let group = Group::new("password grant", ctx.connections, |_| {
        Ok(PasswordGrant::demo(false))
    })?;
    log_phase("load", ctx);
    let load = load::run(&server.target, server.pid, vec![group], ctx.phases).await?;
    finish(server, load, &mut r).await?;
    let after = raw_hash_rate(ctx, ctx.phases.duration - half).await?;
    let raw = hashrate::HashRate {
        threads: before.threads,
        hashes: before.hashes + after.hashes,
        window: before.window + after.window,
        cpu_secs: before.cpu_secs + after.cpu_secs,
    };
    r.figures_of("password", 0)?;
    let grants = r.row(0)?.rps();
    let ratio = grants / raw.per_sec();
    let row = r.rows.first().ok_or_else(|| anyhow!("password: no row"))?;
    let grants_per_cpu = grants / row.cpu.server;
    let ratio_cpu = grants_per_cpu / raw.per_cpu_sec();
    r.figures.insert("argon.rps".into(), raw.per_sec());
    r.figures.insert("argon.per_cpu".into(), raw.per_cpu_sec());
    r.figures.insert("password.per_cpu".into(), grants_per_cpu);
    r.figures.insert("password.ratio".into(), ratio);
    r.figures
        .insert("argon.ms_per_hash".into(), raw.ms_per_hash());
    r.notes.push(format!(
        "raw argon2id: {:.1} hashes/s on {} threads ({:.1}/s before the load, {:.1}/s after; {:.1} ms per hash per thread, wall clock); password grants: {:.1}/s = {:.0}% of raw",
        raw.per_sec(),
        raw.threads,
        before.per_sec(),
        after.per_sec(),
        raw.ms_per_hash(),
        grants,
        ratio * 100.0
    ));
    r.notes.push(format!(
        "per CPU-second, which other tenants of the machine do not skew: raw argon2id {:.1} hashes ({:.1} ms of CPU each), server {:.1} password grants ({:.1} ms each) = {:.0}% of raw",
        raw.per_cpu_sec(),
        1000.0 / raw.per_cpu_sec(),
        grants_per_cpu,
        1000.0 / grants_per_cpu,
        ratio_cpu * 100.0
    ));
    Ok(r)
}

/// The idle `GET /v1/me/` baseline of a storm: this run's me-opaque on the same backend, or
/// measured first on `server` (then it is a row of `r`). Returns (req/s, p99 ms, where from).
async fn idle_baseline(
    ctx: &Ctx,
    earlier: &[ScenarioResult],
    server: &Server,
    r: &mut ScenarioResult,
    me: &dyn Fn(&str) -> anyhow::Result<Group>,
) -> anyhow::Result<(f64, f64, &'static str)> {
    let idle = earlier
        .iter()
        .find(|e| e.scenario == Scenario::MeOpaque && e.backend == ctx.db.backend)
        .and_then(|e| Some((e.figure("me.rps")?, e.figure("me.p99")?)));
    if let Some((rps, p99)) = idle {
        return Ok((rps, p99, "the me-opaque scenario"));
    }
    log_phase("idle baseline (GET /v1/me/ alone)", ctx);
    let load = load::run(
        &server.target,
        server.pid,
        vec![me("GET /v1/me/ (idle baseline)")?],
        ctx.phases,
    )
    .await?;
    let s = load
        .groups
        .first()
        .ok_or_else(|| anyhow!("no baseline group"))?;
    let out = (s.rps(), s.ms(0.99), "a baseline run inside this scenario");
    r.add_load(load);
    Ok(out)
}

async fn login_storm(ctx: &Ctx, earlier: &[ScenarioResult]) -> anyhow::Result<ScenarioResult> {
    let mut r = ScenarioResult::new(Scenario::LoginStorm, ctx);
    let (_db, server) = fresh(ctx, &mut r).await?;
    let token = workloads::demo_grants(&server.target, 1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no token"))?
        .access;
    let me = |label: &str| Group::new(label, ctx.connections, |_| Get::bearer("/v1/me/", &token));
    let (idle_rps, idle_p99, baseline_from) =
        idle_baseline(ctx, earlier, &server, &mut r, &me).await?;

    let logins = Group::new("password grant (storm)", ctx.storm_logins, |_| {
        Ok(PasswordGrant::demo(ctx.honor_retry_after))
    })?;
    let what = format!(
        "storm: {} GET /v1/me/ + {} password-grant connections",
        ctx.connections, ctx.storm_logins
    );
    let me_storm = me("GET /v1/me/ (during storm)")?;
    let rows = storm_phase(
        ctx,
        server,
        &mut r,
        [me_storm, logins],
        &what,
        "storm",
        "login",
    )
    .await?;
    let login = r.row(rows.1)?;
    let me_storm = r.row(rows.0)?;
    let (shed, shed_rps, shed_p50, shed_p99) = (
        login.shed as f64,
        login.shed_rps(),
        login.shed_ms(0.5),
        login.shed_ms(0.99),
    );
    let storm_note = format!(
        "idle baseline from {baseline_from}: {idle_rps:.0} req/s, p99 {idle_p99:.2} ms; during the storm: {:.0} req/s ({:.0}% of idle), p99 {:.2} ms ({:.1}x idle)",
        me_storm.rps(),
        me_storm.rps() / idle_rps * 100.0,
        me_storm.ms(0.99),
        me_storm.ms(0.99) / idle_p99
    );
    let login_note = format!(
        "password grants: {:.1}/s succeeded; {shed:.0} answered 503 + Retry-After ({shed_rps:.0}/s, p50 {shed_p50:.2} ms, p99 {shed_p99:.2} ms){}",
        login.rps(),
        if ctx.honor_retry_after {
            "; connections waited Retry-After after each 503"
        } else {
            "; connections retried at once (Retry-After ignored, full rate)"
        }
    );
    r.figures.insert("storm.shed".into(), shed);
    r.figures.insert("storm.shed.p99".into(), shed_p99);
    r.figures.insert("idle.me.rps".into(), idle_rps);
    r.figures.insert("idle.me.p99".into(), idle_p99);
    r.notes.push(storm_note);
    r.notes.push(login_note);
    Ok(r)
}

/// Polls sent one after another before the storm, to check that the token endpoint's
/// per-address rate limit (`token_rate_limit_per_minute`, off by default; burst 20 when on)
/// does not answer them: the storm would then measure a wall of 429s, not the server.
const RATE_LIMIT_PROBE_POLLS: usize = 30;

async fn device_poll_storm(
    ctx: &Ctx,
    earlier: &[ScenarioResult],
) -> anyhow::Result<ScenarioResult> {
    let mut r = ScenarioResult::new(Scenario::DevicePollStorm, ctx);
    if !(ctx.poll_rate.is_finite() && ctx.poll_rate > 0.0) || ctx.poll_connections == 0 {
        bail!("--poll-rate must be positive and --poll-connections at least 1");
    }
    let (_db, server) = fresh(ctx, &mut r).await?;
    let token = workloads::demo_grants(&server.target, 1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no token"))?
        .access;
    let me = |label: &str| Group::new(label, ctx.connections, |_| Get::bearer("/v1/me/", &token));
    let (idle_rps, idle_p99, baseline_from) =
        idle_baseline(ctx, earlier, &server, &mut r, &me).await?;

    // One device code nobody will approve, polled by every storm connection.
    let d = workloads::device_authorization(&server.target, workloads::DEMO_DEVICE_CLIENT).await?;
    let storm_secs = (ctx.phases.warmup + ctx.phases.duration).as_secs_f64();
    if storm_secs + 5.0 >= d.expires_in as f64 {
        bail!(
            "the device code expires in {} s, before the storm's {storm_secs:.0} s are over (expired_token would count as errors)",
            d.expires_in
        );
    }
    let body = workloads::device_poll_form(workloads::DEMO_DEVICE_CLIENT, &d.device_code);
    let mut conn = http::Conn::open(server.target.addr).await?;
    let mut probe = Vec::with_capacity(RATE_LIMIT_PROBE_POLLS);
    for _ in 0..RATE_LIMIT_PROBE_POLLS {
        let req = server
            .target
            .post_form(workloads::DEVICE_TOKEN_PATH, body.clone())?;
        let reply = tokio::time::timeout(Duration::from_secs(30), conn.send(req))
            .await
            .map_err(|_| anyhow!("device poll: no answer within 30 s"))??;
        if reply.status == hyper::StatusCode::TOO_MANY_REQUESTS {
            bail!(
                "the token endpoint answered 429 to poll {} of {RATE_LIMIT_PROBE_POLLS} ({}): its per-address rate limit (token_rate_limit_per_minute) is on, so the storm would measure the limiter; run the server without it (the default is 0, off)",
                probe.len() + 1,
                reply.describe()
            );
        }
        match workloads::poll_answer(&reply) {
            workloads::PollAnswer::Other => {
                bail!("device poll {}: {}", probe.len() + 1, reply.describe())
            }
            a => probe.push(a),
        }
    }
    if probe.first() != Some(&workloads::PollAnswer::Pending) {
        bail!("the first poll of a fresh device code was not answered authorization_pending");
    }
    drop(conn);
    let slow = probe
        .iter()
        .filter(|a| **a == workloads::PollAnswer::SlowDown)
        .count();
    r.notes.push(format!(
        "one device code of the demo device client `{}` (interval {} s, expires in {} s), polled {RATE_LIMIT_PROBE_POLLS} times back to back before the storm: {} × authorization_pending, {slow} × slow_down, no 429 — the token endpoint's per-address rate limit (`token_rate_limit_per_minute`) is 0 (off) by default and the bench passes the server no config file, so the storm measures the server, not the limiter (a 429 would fail the scenario here, and count as an error during the storm)",
        workloads::DEMO_DEVICE_CLIENT,
        d.interval,
        d.expires_in,
        probe.len() - slow
    ));

    let counts = Arc::new(PollCounts::default());
    let polls = Group::new("device-code poll (storm)", ctx.poll_connections, |_| {
        Ok(DevicePoll {
            body: body.clone(),
            counts: counts.clone(),
        })
    })?
    .paced(ctx.poll_rate);
    let what = format!(
        "storm: {} GET /v1/me/ connections + {:.0} device-code polls/s on {} connections",
        ctx.connections, ctx.poll_rate, ctx.poll_connections
    );
    let me_storm = me("GET /v1/me/ (during device-poll storm)")?;
    let rows = storm_phase(
        ctx,
        server,
        &mut r,
        [me_storm, polls],
        &what,
        "dstorm",
        "poll",
    )
    .await?;
    let poll = r.row(rows.1)?;
    let me_storm = r.row(rows.0)?;
    let (achieved, poll_5xx, poll_errors) = (
        poll.completed_rps(),
        poll.status_5xx as f64,
        poll.errors as f64,
    );
    let storm_note = format!(
        "idle baseline from {baseline_from}: {idle_rps:.0} req/s, p99 {idle_p99:.2} ms; during the device-poll storm: {:.0} req/s ({:.0}% of idle), p99 {:.2} ms ({:.2}x idle)",
        me_storm.rps(),
        me_storm.rps() / idle_rps * 100.0,
        me_storm.ms(0.99),
        me_storm.ms(0.99) / idle_p99
    );
    let poll_note = format!(
        "device-code polls: {achieved:.0}/s achieved of {:.0}/s requested on {} connections (paced open loop); in the window {} answered as expected (p50 {:.2} ms, p99 {:.2} ms), {poll_5xx:.0} × 5xx, {poll_errors:.0} errors in all; over warm-up + window {} × authorization_pending and {} × slow_down (each slow_down adds 5 s to the code's interval and writes the poll)",
        ctx.poll_rate,
        ctx.poll_connections,
        poll.ok,
        poll.ms(0.5),
        poll.ms(0.99),
        counts.pending(),
        counts.slow_down()
    );
    r.figures.insert("dstorm.poll.rate".into(), achieved);
    r.figures
        .insert("dstorm.poll.requested".into(), ctx.poll_rate);
    r.figures.insert("dstorm.poll.5xx".into(), poll_5xx);
    r.figures.insert("dstorm.idle.rps".into(), idle_rps);
    r.figures.insert("dstorm.idle.p99".into(), idle_p99);
    r.notes.push(storm_note);
    r.notes.push(poll_note);
    Ok(r)
}

async fn startup(ctx: &Ctx) -> anyhow::Result<ScenarioResult> {
    let mut r = ScenarioResult::new(Scenario::Startup, ctx);
    let mut db = Db::new(&ctx.db).await?;
    let opts = &ctx.server;
    // Fixtures through the CLI, before any server runs on this database.
    let email = "bench@example.com";
    let pw = "bench-password-1";
    let client_id = "camgate-bench-public";
    db.cli(
        opts,
        &[
            "user",
            "add",
            "--email",
            email,
            "--password-stdin",
            "--json",
        ],
        Some(pw),
    )?;
    db.cli(
        opts,
        &[
            "client",
            "add",
            "--name",
            "camgate-bench",
            "--public",
            "--client-id",
            client_id,
            "--grant",
            "password",
            "--grant",
            "refresh_token",
            "--json",
        ],
        None,
    )?;
    let pat = db.cli(
        opts,
        &["pat", "add", "--user", email, "--name", "bench", "--json"],
        None,
    )?;
    let pat = pat
        .get("token")
        .and_then(|t| t.as_str())
        .ok_or_else(|| anyhow!("pat add printed no token"))?
        .to_string();

    for i in 0..ctx.restarts.max(1) {
        let server = Server::start(opts, &mut db).await?;
        r.started(&server, "existing");
        eprintln!(
            "  start {}: ready in {:.0} ms, idle RSS {:.1} MB",
            i + 1,
            server.ready.as_secs_f64() * 1000.0,
            server.idle_rss_kb as f64 / 1024.0
        );
        if i == 0 {
            // The CLI-made fixtures work over HTTP.
            let t = workloads::password_grant(&server.target, client_id, email, pw).await?;
            for (scheme, tok) in [("Bearer", t.access.as_str()), ("PersonalAccessToken", &pat)] {
                let auth = hyper::header::HeaderValue::from_str(&format!("{scheme} {tok}"))?;
                let req = server.target.get("/v1/me/", Some(&auth))?;
                let reply = http::once(server.target.addr, req, Duration::from_secs(10)).await?;
                if reply.status != hyper::StatusCode::OK {
                    bail!("GET /v1/me/ with {scheme}: {}", reply.describe());
                }
            }
        }
        server.stop().await?;
    }
    let mut ready: Vec<f64> = r
        .starts
        .iter()
        .map(|s| s.ready.as_secs_f64() * 1000.0)
        .collect();
    ready.sort_by(f64::total_cmp);
    let median = crate::report::median(&ready);
    r.figures.insert("startup.ready.median".into(), median);
    r.notes.push(format!(
        "{} restarts on a database made with the CLI (user add, client add, pat add): start-to-ready median {median:.0} ms; the fixtures were checked with a password grant and a PersonalAccessToken request",
        ready.len()
    ));
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Scenarios whose fixtures are made with the CLI before the server starts.

/// The user the CLI makes for the newer scenarios.
const BENCH_EMAIL: &str = "bench@example.com";
const BENCH_PASSWORD: &str = "bench-password-1";
/// The public client (angelcam profile: opaque tokens) of `me-10m`.
const BENCH_PUBLIC_CLIENT: &str = "camgate-bench-public";
/// The public client on the cam2 profile (JWT access tokens) of `me-jwt`.
const BENCH_JWT_CLIENT: &str = "camgate-bench-jwt";
/// Filled databases at least this large are cached.
const CACHE_MIN_ROWS: u64 = 1_000_000;

/// `camgate user add` for the bench user; returns the user id.
fn cli_user(ctx: &Ctx, db: &Db) -> anyhow::Result<i64> {
    let v = db.cli(
        &ctx.server,
        &[
            "user",
            "add",
            "--email",
            BENCH_EMAIL,
            "--password-stdin",
            "--json",
        ],
        Some(BENCH_PASSWORD),
    )?;
    v.get("id")
        .and_then(|v| v.as_i64())
        .ok_or_else(|| anyhow!("user add printed no id: {v}"))
}

/// `camgate client add … --json`; returns (client_id, client_secret if any).
fn cli_client(ctx: &Ctx, db: &Db, args: &[&str]) -> anyhow::Result<(String, Option<String>)> {
    let mut all = vec!["client", "add", "--name", "camgate-bench"];
    all.extend_from_slice(args);
    all.push("--json");
    let v = db.cli(&ctx.server, &all, None)?;
    let id = v
        .get("client_id")
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow!("client add printed no client_id: {v}"))?
        .to_string();
    let secret = v
        .get("client_secret")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    Ok((id, secret))
}

/// A confidential client of the bench user allowing client credentials on `profile`.
fn cli_cc_client(ctx: &Ctx, db: &Db, profile: &str) -> anyhow::Result<(String, String)> {
    let (id, secret) = cli_client(
        ctx,
        db,
        &[
            "--profile",
            profile,
            "--grant",
            "client_credentials",
            "--owner",
            BENCH_EMAIL,
        ],
    )?;
    let secret = secret.ok_or_else(|| anyhow!("client add printed no client_secret"))?;
    Ok((id, secret))
}

/// Starts the server on a database the CLI prepared (no demo seeding: users exist).
async fn start_prepared(ctx: &Ctx, db: &mut Db, r: &mut ScenarioResult) -> anyhow::Result<Server> {
    let server = Server::start(&ctx.server, db).await?;
    r.started(&server, "prepared");
    eprintln!(
        "  server pid {} on {} ({}) ready in {:.0} ms, idle RSS {:.1} MB",
        server.pid,
        server.target.addr,
        ctx.db.backend.label(),
        server.ready.as_secs_f64() * 1000.0,
        server.idle_rss_kb as f64 / 1024.0
    );
    Ok(server)
}

/// One GET outside the measurement; fails unless it answers 200.
async fn probe(server: &Server, get: &Get) -> anyhow::Result<http::Reply> {
    let req = server.target.get(&get.path, get.auth.as_ref())?;
    let reply = http::once(server.target.addr, req, Duration::from_secs(30)).await?;
    if reply.status != hyper::StatusCode::OK {
        bail!("GET {}: {}", get.path, reply.describe());
    }
    Ok(reply)
}

fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

async fn me_jwt(ctx: &Ctx) -> anyhow::Result<ScenarioResult> {
    let mut r = ScenarioResult::new(Scenario::MeJwt, ctx);
    let mut db = Db::new(&ctx.db).await?;
    cli_user(ctx, &db)?;
    cli_client(
        ctx,
        &db,
        &[
            "--public",
            "--profile",
            "cam2",
            "--client-id",
            BENCH_JWT_CLIENT,
            "--grant",
            "password",
        ],
    )?;
    let server = start_prepared(ctx, &mut db, &mut r).await?;
    let t = workloads::password_grant(
        &server.target,
        BENCH_JWT_CLIENT,
        BENCH_EMAIL,
        BENCH_PASSWORD,
    )
    .await?;
    if !is_jwt(&t.access) {
        bail!("the cam2 profile issued a non-JWT access token");
    }
    let get = || Get::with_scheme("/v1/me/", "JWT", &t.access);
    probe(&server, &get()?).await?;
    r.notes.push(format!(
        "a {}-byte JWT in `Authorization: JWT …` (password grant of a public client on the cam2 profile)",
        t.access.len()
    ));
    let group = Group::new("GET /v1/me/ (JWT)", ctx.connections, |_| get())?;
    log_phase("load", ctx);
    let load = load::run(&server.target, server.pid, vec![group], ctx.phases).await?;
    finish(server, load, &mut r).await?;
    r.figures_of("me_jwt", 0)?;
    Ok(r)
}

async fn client_credentials(
    ctx: &Ctx,
    sc: Scenario,
    profile: &str,
    prefix: &str,
) -> anyhow::Result<ScenarioResult> {
    let mut r = ScenarioResult::new(sc, ctx);
    let mut db = Db::new(&ctx.db).await?;
    cli_user(ctx, &db)?;
    let (id, secret) = cli_cc_client(ctx, &db, profile)?;
    let server = start_prepared(ctx, &mut db, &mut r).await?;
    let (token, kind) = workloads::client_credentials_token(&server.target, &id, &secret).await?;
    let want_jwt = sc == Scenario::CcJwt;
    if is_jwt(&token) != want_jwt {
        bail!("profile {profile} issued an unexpected token (token_type {kind})");
    }
    r.notes.push(format!(
        "confidential client (generated secret, SHA-256) on the {profile} profile, secret in the form body: token_type `{kind}`, {} access tokens of {} bytes",
        if want_jwt { "JWT" } else { "opaque" },
        token.len()
    ));
    let body = workloads::client_credentials_form(&id, &secret);
    let label = if want_jwt {
        "client credentials (JWT)"
    } else {
        "client credentials (opaque)"
    };
    let group = Group::new(label, ctx.connections, |_| {
        Ok(ClientCredentialsGrant { body: body.clone() })
    })?;
    log_phase("load", ctx);
    let load = load::run(&server.target, server.pid, vec![group], ctx.phases).await?;
    finish(server, load, &mut r).await?;
    r.figures_of(prefix, 0)?;
    Ok(r)
}

/// Generates `n` cameras as CSV and imports them for the bench user with the CLI; the seconds
/// the import took.
async fn import_cameras(ctx: &Ctx, db: &Db, n: usize) -> anyhow::Result<f64> {
    let csv = db.path().join("cameras.csv");
    let file = csv.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let f = std::fs::File::create(&file)?;
        fixtures::write_cameras_csv(n, f)?;
        Ok(())
    })
    .await??;
    eprintln!("  importing {n} cameras (camgate camera import)");
    let started = Instant::now();
    let csv_arg = csv.to_string_lossy().into_owned();
    let sum = db.cli(
        &ctx.server,
        &[
            "camera",
            "import",
            &csv_arg,
            "--owner",
            BENCH_EMAIL,
            "--json",
        ],
        None,
    )?;
    let import_secs = started.elapsed().as_secs_f64();
    let imported = sum.get("imported").and_then(|v| v.as_u64()).unwrap_or(0);
    if imported != n as u64 {
        bail!("camera import imported {imported} of {n} rows: {sum}");
    }
    std::fs::remove_file(&csv).ok();
    Ok(import_secs)
}

/// Page 1 and page 1,000 of the Angelcam listing over `--cameras` cameras, the listing cache
/// off so both are read from the database: page 1,000 is requested the way its `next` link
/// names it (`offset` and `after`, a keyset read), one load phase each.
async fn cameras_page_1000(ctx: &Ctx) -> anyhow::Result<ScenarioResult> {
    let mut r = ScenarioResult::new(Scenario::CamerasPage1000, ctx);
    let mut db = Db::new(&ctx.db).await?;
    no_listing_cache(&mut db)?;
    cli_user(ctx, &db)?;
    let n = ctx.cameras;
    if n < 20_000 {
        bail!("cameras-page-1000 needs --cameras 20000 or more");
    }
    let import_secs = import_cameras(ctx, &db, n).await?;
    let (id, secret) = cli_cc_client(ctx, &db, "cam2")?;
    let server = start_prepared(ctx, &mut db, &mut r).await?;
    let (token, _) = workloads::client_credentials_token(&server.target, &id, &secret).await?;
    let first = "/v1/cameras/?limit=20".to_string();
    // Follow the `next` links to page 999's last camera once (keyset reads), so page 1,000 is
    // asked exactly as a client walking the pages asks for it.
    let mut next = first.clone();
    for _ in 0..999 {
        let reply = probe(&server, &Get::with_scheme(&next, "JWT", &token)?).await?;
        let url = reply.json()["next"]
            .as_str()
            .ok_or_else(|| anyhow!("no next link after {next}"))?
            .to_string();
        next = url
            .find("/v1/cameras/")
            .map(|i| url[i..].to_string())
            .ok_or_else(|| anyhow!("odd next link {url}"))?;
    }
    let deep = next;
    let reply = probe(&server, &Get::with_scheme(&deep, "JWT", &token)?).await?;
    let listed = reply.json()["results"].as_array().map_or(0, |a| a.len());
    if listed != 20 || reply.json()["count"] != n as u64 {
        bail!(
            "GET {deep}: {listed} cameras, count {}",
            reply.json()["count"]
        );
    }
    r.notes.push(format!(
        "{n} cameras of the bench user (imported with the CLI in {import_secs:.1} s); page 1,000 is `{deep}` (from following `next` 999 times); listing cache off; token: the owner's cam2 client-credentials JWT"
    ));
    for (i, path) in [first, deep].iter().enumerate() {
        let group = Group::new(format!("GET {path}"), ctx.connections, |_| {
            Get::with_scheme(path, "JWT", &token)
        })?;
        log_phase(if i == 0 { "page 1" } else { "page 1,000" }, ctx);
        let load = load::run(&server.target, server.pid, vec![group], ctx.phases).await?;
        r.add_load(load);
    }
    let mut server = server;
    server.check_alive()?;
    server.stop().await?;
    r.figures_of("page1", 0)?;
    r.figures_of("page1000", 1)?;
    if let (Some(a), Some(b)) = (r.figure("page1.rps"), r.figure("page1000.rps")) {
        r.figures.insert("page1000.share".into(), b / a);
        r.notes.push(format!(
            "page 1,000 at {:.0}% of page 1's req/s",
            100.0 * b / a
        ));
    }
    Ok(r)
}

/// The CAM2 search over a million cameras: the city filter and a 25 km radius search, one
/// load phase each, answers checked against the generated data first.
async fn cameras_json_1m(ctx: &Ctx) -> anyhow::Result<ScenarioResult> {
    let mut r = ScenarioResult::new(Scenario::CamerasJson1m, ctx);
    let mut db = Db::new(&ctx.db).await?;
    cli_user(ctx, &db)?;
    let n = ctx.million_cameras;
    // The filled database is kept like me-10m's: the import takes about half a minute.
    let how = cached_fill(ctx, &db, "cameras", n as u64, true, || async {
        let secs = import_cameras(ctx, &db, n).await?;
        Ok(format!("camgate camera import, {secs:.1} s"))
    })
    .await?;
    eprintln!("  {n} cameras: {how}");
    let (id, secret) = cli_cc_client(ctx, &db, "cam2")?;
    let server = start_prepared(ctx, &mut db, &mut r).await?;
    let (token, _) = workloads::client_credentials_token(&server.target, &id, &secret).await?;
    let city = fixtures::cameras_json_path();
    let radius = fixtures::cameras_radius_path();
    let listed = |path: &str| {
        let path = path.to_string();
        let token = token.clone();
        let server = &server;
        async move {
            let reply = probe(server, &Get::with_scheme(&path, "JWT", &token)?).await?;
            anyhow::Ok(reply.json().as_array().map_or(0, |a| a.len()))
        }
    };
    let in_city = listed(&city).await?;
    let expected = fixtures::expected_matches(n).min(100);
    if in_city != expected {
        bail!("GET {city} listed {in_city} cameras, expected {expected}");
    }
    let near = listed(&radius).await?;
    if near == 0 {
        bail!("GET {radius} listed nothing");
    }
    r.notes.push(format!(
        "{n} cameras of the bench user in {} cities (`camgate camera import`; this run: {how}); `{city}` lists {in_city}, `{radius}` lists {near} (a page of at most 100); token: the owner's cam2 client-credentials JWT",
        fixtures::CITIES
    ));
    // Rows 0 and 1: as configured by default (searches answered from memory while nothing
    // changed); rows 2 and 3: a restart with `camera_listing_cache_bytes = 0`, every answer
    // searched anew.
    let mut server = server;
    let mut token = token;
    for cached in [true, false] {
        if !cached {
            server.check_alive()?;
            server.stop().await?;
            no_listing_cache(&mut db)?;
            server = Server::start(&ctx.server, &mut db).await?;
            r.started(&server, "existing");
            // The restarted server listens on another port, which is in its JWTs' issuer: the
            // first server's token is not for it.
            token = workloads::client_credentials_token(&server.target, &id, &secret)
                .await?
                .0;
        }
        for (i, path) in [&city, &radius].into_iter().enumerate() {
            let label = if cached { "" } else { " (no listing cache)" };
            let group = Group::new(format!("GET {path}{label}"), ctx.connections, |_| {
                Get::with_scheme(path, "JWT", &token)
            })?;
            log_phase(if i == 0 { "city filter" } else { "radius" }, ctx);
            let load = load::run(&server.target, server.pid, vec![group], ctx.phases).await?;
            r.add_load(load);
        }
    }
    server.check_alive()?;
    server.stop().await?;
    r.figures_of("cameras_json_1m_city", 0)?;
    r.figures_of("cameras_json_1m_radius", 1)?;
    r.figures_of("cameras_json_1m_city_uncached", 2)?;
    r.figures_of("cameras_json_1m_radius_uncached", 3)?;
    Ok(r)
}

async fn cameras_json(ctx: &Ctx) -> anyhow::Result<ScenarioResult> {
    let mut r = ScenarioResult::new(Scenario::CamerasJson, ctx);
    let mut db = Db::new(&ctx.db).await?;
    cli_user(ctx, &db)?;
    let n = ctx.cameras;
    let import_secs = import_cameras(ctx, &db, n).await?;
    let (id, secret) = cli_cc_client(ctx, &db, "cam2")?;
    let server = start_prepared(ctx, &mut db, &mut r).await?;
    let (token, _) = workloads::client_credentials_token(&server.target, &id, &secret).await?;
    let path = fixtures::cameras_json_path();
    let get = || Get::with_scheme(&path, "JWT", &token);
    let reply = probe(&server, &get()?).await?;
    let listed = reply.json().as_array().map_or(0, |a| a.len());
    let expected = fixtures::expected_matches(n).min(100);
    if listed != expected {
        bail!("GET {path} listed {listed} cameras, expected {expected}");
    }
    r.notes.push(format!(
        "{n} cameras of the bench user in {} cities, imported from a generated CSV in {import_secs:.1} s (CLI run, migrations included); `{path}` lists {listed} of them; token: the owner's cam2 client-credentials JWT",
        fixtures::CITIES
    ));
    r.figures
        .insert("cameras_json.import_secs".into(), import_secs);
    let group = Group::new(format!("GET {path}"), ctx.connections, |_| get())?;
    log_phase("load", ctx);
    let load = load::run(&server.target, server.pid, vec![group], ctx.phases).await?;
    finish(server, load, &mut r).await?;
    r.figures_of("cameras_json", 0)?;
    Ok(r)
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// "10 M", "10 k".
pub fn rows_label(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{} M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{} k", n / 1_000)
    } else {
        n.to_string()
    }
}

/// Adds `rows` access tokens (and their families) to the prepared database `db`, from the
/// cache when there is one. Returns how, for the notes.
async fn prepare_tokens(
    ctx: &Ctx,
    db: &Db,
    rows: u64,
    user_id: i64,
    client_id: &str,
) -> anyhow::Result<String> {
    let plan = FillPlan {
        rows,
        user_id,
        client_pk: fixtures::client_pk(&db.url, client_id).await?,
        now: unix_now(),
    };
    let cache = rows >= CACHE_MIN_ROWS;
    cached_fill(ctx, db, "access-tokens", rows, cache, || async move {
        match db.backend {
            Backend::Sqlite => {
                eprintln!("  filling {rows} access-token rows (SQLite, one transaction)");
                let f = db.sqlite_file();
                tokio::task::spawn_blocking(move || fixtures::fill_sqlite(&f, plan)).await??;
                Ok("rusqlite, one transaction".to_string())
            }
            Backend::Postgres => {
                eprintln!("  filling {rows} access-token rows (PostgreSQL, generate_series)");
                fixtures::fill_postgres(&db.url, plan).await?;
                Ok("generate_series".to_string())
            }
        }
    })
    .await
}

/// Runs `fill` on the prepared (migrated, nobody connected) database `db`, or, when the cache
/// holds an earlier fill of the same `kind` and `rows` on the same migrations, copies that
/// instead: a file copy on SQLite, a template database on PostgreSQL. Returns how, for the
/// notes.
async fn cached_fill<F, Fut>(
    ctx: &Ctx,
    db: &Db,
    kind: &str,
    rows: u64,
    cache: bool,
    fill: F,
) -> anyhow::Result<String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    let migrations = fixtures::applied_migrations(&db.url).await?;
    let key = fixtures::cache_key(&migrations, kind, rows);
    let cache = ctx.cache_dir.as_ref().filter(|_| cache);
    let started = Instant::now();
    match db.backend {
        Backend::Sqlite => {
            let file = db.sqlite_file();
            let cached = cache.map(|d| fixtures::sqlite_cache_file(d, kind, rows, &key));
            if let Some(c) = cached.as_ref().filter(|c| c.is_file()) {
                for ext in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{ext}", file.display()));
                }
                let (from, to) = (c.clone(), file.clone());
                tokio::task::spawn_blocking(move || std::fs::copy(from, to)).await??;
                return Ok(format!(
                    "copied from the cache {} in {:.1} s",
                    c.display(),
                    started.elapsed().as_secs_f64()
                ));
            }
            let how = fill().await?;
            let filled = started.elapsed().as_secs_f64();
            let Some(c) = cached else {
                return Ok(format!("filled in {filled:.1} s ({how})"));
            };
            if let Some(dir) = c.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            // Whatever the filler left in the WAL goes into the file before it is copied.
            let f = file.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let c = rusqlite::Connection::open(&f)?;
                c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                Ok(())
            })
            .await??;
            let part = c.with_extension("part");
            let (from, to) = (file.clone(), part.clone());
            tokio::task::spawn_blocking(move || std::fs::copy(from, to)).await??;
            std::fs::rename(&part, &c)?;
            Ok(format!(
                "filled in {filled:.1} s ({how}) and saved to the cache {}",
                c.display()
            ))
        }
        Backend::Postgres => {
            let pg = db
                .pg
                .as_ref()
                .ok_or_else(|| anyhow!("no PostgreSQL database"))?;
            let template = fixtures::pg_template_name(kind, rows, &key);
            if cache.is_some() && crate::backend::pg_database_exists(pg.admin(), &template).await? {
                pg.recreate_from(&template).await?;
                return Ok(format!(
                    "copied from the template database {template} in {:.1} s",
                    started.elapsed().as_secs_f64()
                ));
            }
            let how = fill().await?;
            let filled = started.elapsed().as_secs_f64();
            if cache.is_none() {
                return Ok(format!("filled in {filled:.1} s ({how})"));
            }
            pg.save_as(&template).await?;
            Ok(format!(
                "filled in {filled:.1} s ({how}) and saved as the template database {template}"
            ))
        }
    }
}

/// One `GET /v1/me/` load on a database holding `rows` access tokens; adds a row.
async fn me_with_rows(ctx: &Ctx, r: &mut ScenarioResult, rows: u64) -> anyhow::Result<()> {
    let mut db = Db::new(&ctx.db).await?;
    let user_id = cli_user(ctx, &db)?;
    cli_client(
        ctx,
        &db,
        &[
            "--public",
            "--client-id",
            BENCH_PUBLIC_CLIENT,
            "--grant",
            "password",
        ],
    )?;
    let how = prepare_tokens(ctx, &db, rows, user_id, BENCH_PUBLIC_CLIENT).await?;
    eprintln!("  {} access-token rows: {how}", rows_label(rows));
    r.notes
        .push(format!("{} access-token rows: {how}", rows_label(rows)));
    let server = start_prepared(ctx, &mut db, r).await?;
    let t = workloads::password_grant(
        &server.target,
        BENCH_PUBLIC_CLIENT,
        BENCH_EMAIL,
        BENCH_PASSWORD,
    )
    .await?;
    let get = || Get::bearer("/v1/me/", &t.access);
    probe(&server, &get()?).await?;
    let label = format!("GET /v1/me/ ({} access-token rows)", rows_label(rows));
    let group = Group::new(label, ctx.connections, |_| get())?;
    log_phase("load", ctx);
    let load = load::run(&server.target, server.pid, vec![group], ctx.phases).await?;
    finish(server, load, r).await?;
    Ok(())
}

async fn me_10m(ctx: &Ctx) -> anyhow::Result<ScenarioResult> {
    let mut r = ScenarioResult::new(Scenario::Me10m, ctx);
    me_with_rows(ctx, &mut r, ctx.small_token_rows).await?;
    me_with_rows(ctx, &mut r, ctx.token_rows).await?;
    r.figures_of("me_small", 0)?;
    r.figures_of("me_large", 1)?;
    r.figures
        .insert("me_small.rows".into(), ctx.small_token_rows as f64);
    r.figures
        .insert("me_large.rows".into(), ctx.token_rows as f64);
    let per_cpu = |i: usize| {
        r.rows
            .get(i)
            .map_or(f64::NAN, |row| row.stats.rps() / row.cpu.server)
    };
    let (small, large) = (per_cpu(0), per_cpu(1));
    r.figures.insert("me_small.per_cpu".into(), small);
    r.figures.insert("me_large.per_cpu".into(), large);
    let (a, b) = (r.row(0)?.rps(), r.row(1)?.rps());
    r.notes.push(format!(
        "{} rows: {:.0} req/s = {:.0}% of the {} rows' {:.0} req/s; per server CPU-second {:.0} vs {:.0} = {:.0}%",
        rows_label(ctx.token_rows),
        b,
        b / a * 100.0,
        rows_label(ctx.small_token_rows),
        a,
        large,
        small,
        large / small * 100.0
    ));
    Ok(r)
}
