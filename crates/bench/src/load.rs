//! The closed-loop load generator: every connection is one keep-alive HTTP/1.1 connection
//! driven by one task that sends a request, waits for the whole answer, records the latency
//! and sends the next. Connections are arranged in groups (a scenario may measure two kinds
//! of traffic at once); each group has its own statistics.
//!
//! A group may instead be paced ([`Group::paced`]): a rate-limited open loop in which each of
//! its connections sends on a fixed schedule (the group's rate spread evenly over its
//! connections, their first sends staggered), whatever the answers do. A connection whose
//! answer arrives after its next slot sends at once; one that fell more than a whole interval
//! behind skips the missed slots instead of bursting, so the group never exceeds its rate and
//! the achieved rate ([`GroupStats::completed_rps`]) shows any shortfall.

use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use hyper::Request;

use crate::http::{Body, Conn, Reply, Target};
use crate::sys::{self, CpuSnapshot, CpuUse, RssMonitor};

/// Longest a single request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Distinct error messages kept per group, for the console.
const ERROR_SAMPLES: usize = 5;

/// How one answer counts.
pub enum Outcome {
    /// The expected answer: counted in throughput and latency.
    Ok,
    /// Deliberate load shedding (503 with Retry-After): counted apart, not an error. The
    /// connection waits `pause` before its next request.
    Shed { pause: Duration },
    /// Anything else.
    Error(String),
}

/// What one connection sends, and how it judges the answers. One instance per connection, so
/// per-connection state (a refresh-token chain) needs no locking.
pub trait Workload: Send + 'static {
    fn request(&mut self, target: &Target) -> anyhow::Result<Request<Body>>;
    fn response(&mut self, reply: &Reply) -> Outcome;
}

/// Connections that share a label and statistics.
pub struct Group {
    pub label: String,
    pub workers: Vec<Box<dyn Workload>>,
    /// Paced groups: the interval between two sends of one connection.
    pub pace: Option<Duration>,
}

impl Group {
    pub fn new<W: Workload>(
        label: impl Into<String>,
        n: usize,
        mut make: impl FnMut(usize) -> anyhow::Result<W>,
    ) -> anyhow::Result<Self> {
        let workers = (0..n)
            .map(|i| make(i).map(|w| Box::new(w) as Box<dyn Workload>))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            label: label.into(),
            workers,
            pace: None,
        })
    }

    /// Paces the group at `per_sec` requests per second in total (open loop, see the module
    /// comment). A rate that is not positive and finite leaves the group closed-loop.
    pub fn paced(mut self, per_sec: f64) -> Self {
        let n = self.workers.len().max(1) as f64;
        self.pace = (per_sec.is_finite() && per_sec > 0.0)
            .then(|| Duration::try_from_secs_f64(n / per_sec).ok())
            .flatten()
            .filter(|d| !d.is_zero());
        self
    }
}

/// Warm-up, then the measured window.
#[derive(Clone, Copy, Debug)]
pub struct Phases {
    pub warmup: Duration,
    pub duration: Duration,
}

/// Statistics of one group over the measured window. Latencies are in microseconds.
pub struct GroupStats {
    pub label: String,
    pub connections: usize,
    pub window: Duration,
    pub ok: u64,
    pub shed: u64,
    pub errors: u64,
    /// Answers with a 5xx status (also counted as errors or, for 503 + Retry-After to a
    /// password grant, as shed).
    pub status_5xx: u64,
    pub ok_latency: Histogram<u64>,
    pub shed_latency: Histogram<u64>,
    pub error_samples: Vec<String>,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 120_000_000, 3).context("histogram")
}

impl GroupStats {
    fn new(label: &str, connections: usize, window: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            label: label.to_string(),
            connections,
            window,
            ok: 0,
            shed: 0,
            errors: 0,
            status_5xx: 0,
            ok_latency: histogram()?,
            shed_latency: histogram()?,
            error_samples: Vec::new(),
        })
    }

    fn merge(&mut self, other: GroupStats) -> anyhow::Result<()> {
        self.ok += other.ok;
        self.shed += other.shed;
        self.errors += other.errors;
        self.status_5xx += other.status_5xx;
        self.ok_latency.add(&other.ok_latency)?;
        self.shed_latency.add(&other.shed_latency)?;
        for e in other.error_samples {
            self.note_error(e);
        }
        Ok(())
    }

    fn note_error(&mut self, e: String) {
        if self.error_samples.len() < ERROR_SAMPLES && !self.error_samples.contains(&e) {
            self.error_samples.push(e);
        }
    }

    /// Expected answers per second.
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// Everything completed per second: expected answers, shed answers and errors (the
    /// achieved rate of a paced group).
    pub fn completed_rps(&self) -> f64 {
        (self.ok + self.shed + self.errors) as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// Shed (503) answers per second.
    pub fn shed_rps(&self) -> f64 {
        self.shed as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// A quantile of the expected answers' latency, in ms.
    pub fn ms(&self, q: f64) -> f64 {
        if self.ok == 0 {
            return f64::NAN;
        }
        self.ok_latency.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        if self.ok == 0 {
            return f64::NAN;
        }
        self.ok_latency.max() as f64 / 1000.0
    }

    pub fn shed_ms(&self, q: f64) -> f64 {
        if self.shed == 0 {
            return f64::NAN;
        }
        self.shed_latency.value_at_quantile(q) as f64 / 1000.0
    }
}

/// The result of one load run.
pub struct LoadResult {
    pub groups: Vec<GroupStats>,
    /// CPU used during the measured window.
    pub cpu: CpuUse,
    /// Bytes the server's SQLite token writer thread wrote during the measured window (its WAL
    /// appends and its own small checkpoints); `None` on PostgreSQL.
    pub writer_bytes: Option<u64>,
    /// The server's peak RSS (kB) during warm-up and measurement.
    pub peak_rss_kb: u64,
    /// The server's peak RSS (kB) before this run: start-up and fixtures. `None` if the
    /// kernel's peak counter could not be reset, in which case `peak_rss_kb` covers the whole
    /// life of the server.
    pub peak_before_kb: Option<u64>,
}

struct Timing {
    measure_start: Instant,
    end: Instant,
    /// Paced connections: the interval between sends and the first send.
    pace: Option<(Duration, Instant)>,
}

async fn drive(
    target: Target,
    mut conn: Conn,
    mut w: Box<dyn Workload>,
    t: Timing,
    mut stats: GroupStats,
) -> anyhow::Result<GroupStats> {
    let mut broken = false;
    let mut next_send = t.pace.map(|(_, first)| first);
    while Instant::now() < t.end {
        if broken {
            match Conn::open(target.addr).await {
                Ok(c) => {
                    conn = c;
                    broken = false;
                }
                Err(e) => {
                    stats.errors += 1;
                    stats.note_error(format!("reconnect: {e:#}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        if let (Some((interval, _)), Some(at)) = (t.pace, next_send.as_mut()) {
            let now = Instant::now();
            if *at > now {
                if *at >= t.end {
                    break;
                }
                tokio::time::sleep_until((*at).into()).await;
            } else if now.duration_since(*at) > interval {
                // More than a whole interval behind: skip the missed slots, don't burst.
                *at = now;
            }
            *at += interval;
        }
        let req = w.request(&target)?;
        let start = Instant::now();
        let res = tokio::time::timeout(REQUEST_TIMEOUT, conn.send(req)).await;
        let done = Instant::now();
        let measured = done >= t.measure_start && done < t.end;
        let us = done.duration_since(start).as_micros() as u64;
        if measured && matches!(&res, Ok(Ok(reply)) if reply.status.is_server_error()) {
            stats.status_5xx += 1;
        }
        let outcome = match res {
            Ok(Ok(reply)) => w.response(&reply),
            Ok(Err(e)) => {
                broken = true;
                Outcome::Error(format!("transport: {e:#}"))
            }
            Err(_) => {
                broken = true;
                Outcome::Error(format!("no answer within {REQUEST_TIMEOUT:?}"))
            }
        };
        match outcome {
            Outcome::Ok if measured => {
                stats.ok += 1;
                stats.ok_latency.saturating_record(us);
            }
            Outcome::Shed { pause } => {
                if measured {
                    stats.shed += 1;
                    stats.shed_latency.saturating_record(us);
                }
                if !pause.is_zero() {
                    tokio::time::sleep(pause.min(t.end.saturating_duration_since(Instant::now())))
                        .await;
                }
            }
            Outcome::Error(e) if measured => {
                stats.errors += 1;
                stats.note_error(e);
            }
            _ => {}
        }
    }
    Ok(stats)
}

/// The name of the server's SQLite token writer thread.
const SQLITE_WRITER: &str = "sqlite-writer";

/// Opens every connection, runs the warm-up and the measured window, and returns the
/// per-group statistics. `server_pid` is sampled for CPU use.
pub async fn run(
    target: &Target,
    server_pid: u32,
    groups: Vec<Group>,
    phases: Phases,
) -> anyhow::Result<LoadResult> {
    // Connect first, so connection set-up is outside both phases.
    let mut prepared = Vec::new();
    for (gi, g) in groups.into_iter().enumerate() {
        let n = g.workers.len();
        let mut opens = tokio::task::JoinSet::new();
        for _ in 0..n {
            let addr = target.addr;
            opens.spawn(async move { Conn::open(addr).await });
        }
        let mut conns = Vec::with_capacity(n);
        while let Some(c) = opens.join_next().await {
            conns.push(c??);
        }
        prepared.push((gi, g.label, g.workers, g.pace, conns));
    }

    let before = sys::status_kb(server_pid, "VmHWM").unwrap_or(0);
    let peak_before_kb = sys::reset_peak(server_pid).then_some(before);
    let rss = RssMonitor::start(server_pid);

    let t0 = Instant::now();
    let measure_start = t0 + phases.warmup;
    let end = measure_start + phases.duration;
    let mut totals = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (gi, label, workers, pace, conns) in prepared {
        let n = workers.len();
        totals.push(GroupStats::new(&label, n, phases.duration)?);
        for (i, (w, conn)) in workers.into_iter().zip(conns).enumerate() {
            let stats = GroupStats::new(&label, 0, phases.duration)?;
            let target = target.clone();
            // Paced connections start staggered over one interval.
            let pace = pace.map(|d| (d, t0 + d.mul_f64(i as f64 / n as f64)));
            let t = Timing {
                measure_start,
                end,
                pace,
            };
            tasks.spawn(async move { (gi, drive(target, conn, w, t, stats).await) });
        }
    }

    tokio::time::sleep_until(measure_start.into()).await;
    let cpu_start = CpuSnapshot::take(server_pid);
    let writer_start = sys::thread_bytes_written(server_pid, SQLITE_WRITER);
    tokio::time::sleep_until(end.into()).await;
    let cpu = CpuSnapshot::take(server_pid).since(&cpu_start);
    let writer_bytes = writer_start
        .zip(sys::thread_bytes_written(server_pid, SQLITE_WRITER))
        .map(|(a, b)| b.saturating_sub(a));
    let peak_rss_kb = rss.finish().await;

    while let Some(r) = tasks.join_next().await {
        let (gi, stats) = r?;
        if let Some(total) = totals.get_mut(gi) {
            total.merge(stats?)?;
        }
    }
    Ok(LoadResult {
        groups: totals,
        cpu,
        writer_bytes,
        peak_rss_kb,
        peak_before_kb,
    })
}
