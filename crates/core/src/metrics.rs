//! Process-wide counters and histograms for Prometheus. One camgate process is one
//! scrape target, so the registry is global: the domain records events where they happen
//! (tokens issued, theft detections, login failures) without threading a handle through every
//! call. Rendering is the Prometheus text exposition format 0.0.4; the server adds its gauges
//! (hash queue depth, database pool) at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};

/// Latency buckets in seconds.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A series' labels as they appear in the exposition text, escaped, without the braces:
/// `route="/v1/me/",method="GET"` (empty when there are none). Keyed by this text, a
/// recording finds its series with a borrowed `&str` built in a reused per-thread buffer, so
/// recording allocates only the first time a series appears (the HTTP layer records twice per
/// request).
type Labels = String;

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Registry {
    /// name -> (help, labels -> value)
    counters: BTreeMap<&'static str, (&'static str, BTreeMap<Labels, u64>)>,
    histograms: BTreeMap<&'static str, (&'static str, BTreeMap<Labels, Histogram>)>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(Registry::default()));

thread_local! {
    static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Runs `f` with the label text of `l` (see [`Labels`]).
fn with_key<T>(l: &[(&'static str, &str)], f: impl FnOnce(&str) -> T) -> T {
    KEY.with(|k| {
        let mut k = k.borrow_mut();
        k.clear();
        for (i, (name, v)) in l.iter().enumerate() {
            if i > 0 {
                k.push(',');
            }
            k.push_str(name);
            k.push_str("=\"");
            escape_into(&mut k, v);
            k.push('"');
        }
        f(&k)
    })
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
    with_key(l, |key| {
        if let Ok(mut r) = REGISTRY.lock() {
            let (_, m) = r
                .counters
                .entry(name)
                .or_insert_with(|| (help, BTreeMap::new()));
            if let Some(v) = series(m, key) {
                *v += n;
            }
        }
    })
}

/// Records one observation (seconds) in a histogram.
pub fn observe(name: &'static str, help: &'static str, l: &[(&'static str, &str)], secs: f64) {
    with_key(l, |key| {
        if let Ok(mut r) = REGISTRY.lock() {
            let (_, m) = r
                .histograms
                .entry(name)
                .or_insert_with(|| (help, BTreeMap::new()));
            if let Some(h) = series(m, key) {
                for (i, b) in BUCKETS.iter().enumerate() {
                    if secs <= *b {
                        h.counts[i] += 1;
                    }
                }
                h.sum += secs;
                h.count += 1;
            }
        }
    })
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
    let Ok(r) = REGISTRY.lock() else {
        return out;
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
}
