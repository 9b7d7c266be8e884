//! Process-wide counters and histograms for Prometheus. One camgate process is one
//! scrape target, so the registry is global: the domain records events where they happen
//! (tokens issued, theft detections, login failures) without threading a handle through every
//! call. Rendering is the Prometheus text exposition format 0.0.4; the server adds its gauges
//! (hash queue depth, database pool) at scrape time.
//!
//! Every thread records into a registry of its own, summed at scrape time. The HTTP layer
//! records twice per request on every route; with one process-wide registry behind one mutex,
//! every worker thread took the same lock and pulled the same cache lines (the lock word and
//! the map's nodes) across cores twice per request — a lock shared by all workers, which is
//! what makes a route slower on more cores. A thread's own mutex is taken by the scraper only,
//! so recording never waits and the lines stay on the recording core. A thread that ends hands
//! its counts to a registry of retired threads, so nothing recorded is lost.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Latency buckets in seconds.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A series' labels as they appear in the exposition text, escaped, without the braces:
/// `route="/v1/me/",method="GET"` (empty when there are none). Keyed by this text, a
/// recording finds its series with a borrowed `&str` built in a reused per-thread buffer, so
/// recording allocates only the first time a series appears on a thread.
type Labels = String;

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default, Clone)]
struct Registry {
    counters: Families<u64>,
    histograms: Families<Histogram>,
}

/// name -> (help, labels -> value)
type Families<V> = BTreeMap<&'static str, (&'static str, BTreeMap<Labels, V>)>;

/// The series of metric `name` by their labels; registered with `help` if new.
fn family<'a, V>(
    families: &'a mut Families<V>,
    name: &'static str,
    help: &'static str,
) -> &'a mut BTreeMap<Labels, V> {
    &mut families
        .entry(name)
        .or_insert_with(|| (help, BTreeMap::new()))
        .1
}

impl Registry {
    fn add(&mut self, name: &'static str, help: &'static str, key: &str, n: u64) {
        if let Some(v) = series(family(&mut self.counters, name, help), key) {
            *v += n;
        }
    }

    fn observe(&mut self, name: &'static str, help: &'static str, key: &str, secs: f64) {
        if let Some(h) = series(family(&mut self.histograms, name, help), key) {
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    h.counts[i] += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        }
    }

    /// Adds every series of `other` to this one.
    fn merge(&mut self, other: &Registry) {
        for (name, (help, series)) in &other.counters {
            let m = family(&mut self.counters, name, help);
            for (l, v) in series {
                *m.entry(l.clone()).or_default() += v;
            }
        }
        for (name, (help, series)) in &other.histograms {
            let m = family(&mut self.histograms, name, help);
            for (l, h) in series {
                let into = m.entry(l.clone()).or_default();
                for (a, b) in into.counts.iter_mut().zip(h.counts) {
                    *a += b;
                }
                into.sum += h.sum;
                into.count += h.count;
            }
        }
    }
}

type Shared = Arc<Mutex<Registry>>;

/// The registries of the threads alive now. Lock order: `LIVE`, then `RETIRED`, then a
/// thread's own registry; a recording takes only the last.
static LIVE: Mutex<Vec<Shared>> = Mutex::new(Vec::new());
/// What threads that have ended recorded (and recordings made while a thread ends).
static RETIRED: Mutex<Registry> = Mutex::new(Registry {
    counters: BTreeMap::new(),
    histograms: BTreeMap::new(),
});

/// A poisoned lock still holds counts worth keeping (a panic cannot leave a series half
/// updated in a way that matters to a counter).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// This thread's registry and label buffer.
struct Local {
    registry: Shared,
    key: RefCell<String>,
}

impl Local {
    fn new() -> Self {
        let registry = Shared::default();
        lock(&LIVE).push(registry.clone());
        Self {
            registry,
            key: RefCell::new(String::new()),
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let mut live = lock(&LIVE);
        lock(&RETIRED).merge(&lock(&self.registry));
        live.retain(|r| !Arc::ptr_eq(r, &self.registry));
    }
}

thread_local! {
    static LOCAL: Local = Local::new();
}

/// Writes the label text of `l` (see [`Labels`]) into `k`.
fn write_key(k: &mut String, l: &[(&'static str, &str)]) {
    k.clear();
    for (i, (name, v)) in l.iter().enumerate() {
        if i > 0 {
            k.push(',');
        }
        k.push_str(name);
        k.push_str("=\"");
        escape_into(k, v);
        k.push('"');
    }
}

/// Runs `f` on this thread's registry with the label text of `l`; on the retired registry
/// when the thread is ending (its own is gone or going).
fn record(l: &[(&'static str, &str)], f: impl FnOnce(&mut Registry, &str)) {
    let mut f = Some(f);
    let done = LOCAL.try_with(|local| {
        let Ok(mut k) = local.key.try_borrow_mut() else {
            return false;
        };
        write_key(&mut k, l);
        if let Some(f) = f.take() {
            f(&mut lock(&local.registry), &k);
        }
        true
    });
    if !matches!(done, Ok(true)) {
        if let Some(f) = f.take() {
            let mut k = String::new();
            write_key(&mut k, l);
            f(&mut lock(&RETIRED), &k);
        }
    }
}

/// The series of `key`, created if missing (the only allocation of a recording).
fn series<'a, V: Default>(map: &'a mut BTreeMap<Labels, V>, key: &str) -> Option<&'a mut V> {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key)
}

/// Adds `n` to a counter.
pub fn counter_add(name: &'static str, help: &'static str, l: &[(&'static str, &str)], n: u64) {
    record(l, |r, key| r.add(name, help, key, n));
}

/// Records one observation (seconds) in a histogram.
pub fn observe(name: &'static str, help: &'static str, l: &[(&'static str, &str)], secs: f64) {
    record(l, |r, key| r.observe(name, help, key, secs));
}

/// An event was stored (with its webhook outbox rows).
pub fn event_recorded(kind: &str) {
    counter_add(
        "camgate_events_total",
        "Camera events stored, by type.",
        &[("type", kind)],
        1,
    );
}

/// A token (pair) was issued: a new family or a refresh.
pub fn token_issued(grant: &str, profile: &str) {
    counter_add(
        "camgate_tokens_issued_total",
        "Access tokens issued, by grant type and token profile.",
        &[("grant", grant), ("profile", profile)],
        1,
    );
}

/// Called for every audit event; counts the ones operators alert on.
pub fn audit_event(kind: crate::model::AuditKind) {
    use crate::model::AuditKind;
    match kind {
        AuditKind::TheftDetected => counter_add(
            "camgate_theft_detections_total",
            "Replays of used refresh tokens or authorization codes that revoked a token family.",
            &[],
            1,
        ),
        AuditKind::LoginFailed => counter_add(
            "camgate_login_failures_total",
            "Failed logins (password grant and login page).",
            &[],
            1,
        ),
        _ => {}
    }
}

/// Appends a label value, escaped (backslash, double quote, newline).
fn escape_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_labels(out: &mut String, l: &str, extra: Option<(&str, &str)>) {
    match (l.is_empty(), extra) {
        (true, None) => {}
        (true, Some((k, v))) => {
            let _ = write!(out, "{{{k}=\"{v}\"}}");
        }
        (false, None) => {
            let _ = write!(out, "{{{l}}}");
        }
        (false, Some((k, v))) => {
            let _ = write!(out, "{{{l},{k}=\"{v}\"}}");
        }
    }
}

/// The registry in the Prometheus text format.
pub fn render() -> String {
    let mut out = String::new();
    let r = {
        let live = lock(&LIVE);
        let mut sum = lock(&RETIRED).clone();
        for shard in live.iter() {
            sum.merge(&lock(shard));
        }
        sum
    };
    for (name, (help, series)) in &r.counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (l, v) in series {
            out.push_str(name);
            write_labels(&mut out, l, None);
            let _ = writeln!(out, " {v}");
        }
    }
    for (name, (help, series)) in &r.histograms {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (l, h) in series {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = write!(out, "{name}_bucket");
                write_labels(&mut out, l, Some(("le", &b.to_string())));
                let _ = writeln!(out, " {}", h.counts[i]);
            }
            let _ = write!(out, "{name}_bucket");
            write_labels(&mut out, l, Some(("le", "+Inf")));
            let _ = writeln!(out, " {}", h.count);
            let _ = write!(out, "{name}_sum");
            write_labels(&mut out, l, None);
            let _ = writeln!(out, " {}", h.sum);
            let _ = write!(out, "{name}_count");
            write_labels(&mut out, l, None);
            let _ = writeln!(out, " {}", h.count);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        counter_add("camgate_test_total", "A test.", &[("k", "a\"b")], 2);
        observe("camgate_test_seconds", "A test.", &[("route", "/x")], 0.003);
        let text = render();
        assert!(text.contains("# TYPE camgate_test_total counter"), "{text}");
        assert!(
            text.contains("camgate_test_total{k=\"a\\\"b\"} 2"),
            "{text}"
        );
        assert!(text.contains("camgate_test_seconds_bucket{route=\"/x\",le=\"0.0025\"} 0"));
        assert!(text.contains("camgate_test_seconds_bucket{route=\"/x\",le=\"0.005\"} 1"));
        assert!(text.contains("camgate_test_seconds_count{route=\"/x\"} 1"));
        // Recording again finds the same series (no second line for the same labels).
        counter_add("camgate_test_total", "A test.", &[("k", "a\"b")], 3);
        counter_add("camgate_test_total", "A test.", &[], 1);
        let text = render();
        assert!(
            text.contains("camgate_test_total{k=\"a\\\"b\"} 5"),
            "{text}"
        );
        assert!(text.contains("\ncamgate_test_total 1\n"), "{text}");
        assert_eq!(text.matches("camgate_test_total{").count(), 1, "{text}");
        // Newlines and backslashes are escaped too.
        counter_add("camgate_test_esc_total", "A test.", &[("k", "a\\b\nc")], 1);
        assert!(render().contains("camgate_test_esc_total{k=\"a\\\\b\\nc\"} 1"));
    }

    /// Each thread records into its own registry: a scrape sums the threads still running
    /// and those that have ended, whose counts are kept when they go.
    #[test]
    fn threads_record_apart_and_a_scrape_sums_them_all() {
        let value = |text: &str, series: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
                .unwrap_or(0)
        };
        // Threads that record and end.
        let ended: Vec<_> = (0..8u64)
            .map(|i| {
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        counter_add("camgate_test_threads_total", "A test.", &[("k", "x")], 1);
                    }
                    observe(
                        "camgate_test_threads_seconds",
                        "A test.",
                        &[],
                        0.002 * i as f64,
                    );
                })
            })
            .collect();
        for t in ended {
            t.join().unwrap();
        }
        // A thread that records, then waits (alive) while the scrape runs.
        let (recorded_tx, recorded_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let alive = std::thread::spawn(move || {
            counter_add("camgate_test_threads_total", "A test.", &[("k", "x")], 5);
            recorded_tx.send(()).unwrap();
            let _ = done_rx.recv();
        });
        recorded_rx.recv().unwrap();
        let text = render();
        assert_eq!(
            value(&text, "camgate_test_threads_total{k=\"x\"}"),
            8005,
            "{text}"
        );
        assert_eq!(
            value(&text, "camgate_test_threads_seconds_count"),
            8,
            "{text}"
        );
        // 0, 0.002, 0.004, …, 0.014: two at or below 2.5 ms, three at or below 5 ms.
        assert_eq!(
            value(&text, "camgate_test_threads_seconds_bucket{le=\"0.0025\"}"),
            2,
            "{text}"
        );
        assert_eq!(
            value(&text, "camgate_test_threads_seconds_bucket{le=\"0.005\"}"),
            3,
            "{text}"
        );
        // One series line however many threads recorded it.
        assert_eq!(text.matches("camgate_test_threads_total{").count(), 1);
        done_tx.send(()).unwrap();
        alive.join().unwrap();
        // The live thread has ended: its 5 moved to the retired registry, counted once.
        let text = render();
        assert_eq!(
            value(&text, "camgate_test_threads_total{k=\"x\"}"),
            8005,
            "{text}"
        );
    }
}
