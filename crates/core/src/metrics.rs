//! Process-wide counters and histograms for Prometheus (issue 10). One camgate process is one
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

type Labels = Vec<(&'static str, String)>;

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

fn labels(l: &[(&'static str, &str)]) -> Labels {
    l.iter().map(|(k, v)| (*k, (*v).to_string())).collect()
}

/// Adds `n` to a counter.
pub fn counter_add(name: &'static str, help: &'static str, l: &[(&'static str, &str)], n: u64) {
    if let Ok(mut r) = REGISTRY.lock() {
        *r.counters
            .entry(name)
            .or_insert_with(|| (help, BTreeMap::new()))
            .1
            .entry(labels(l))
            .or_default() += n;
    }
}

/// Records one observation (seconds) in a histogram.
pub fn observe(name: &'static str, help: &'static str, l: &[(&'static str, &str)], secs: f64) {
    if let Ok(mut r) = REGISTRY.lock() {
        let h = r
            .histograms
            .entry(name)
            .or_insert_with(|| (help, BTreeMap::new()))
            .1
            .entry(labels(l))
            .or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }
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

/// Escapes a label value (backslash, double quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn write_labels(out: &mut String, l: &Labels, extra: Option<(&str, String)>) {
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if !parts.is_empty() {
        let _ = write!(out, "{{{}}}", parts.join(","));
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
                write_labels(&mut out, l, Some(("le", b.to_string())));
                let _ = writeln!(out, " {}", h.counts[i]);
            }
            let _ = write!(out, "{name}_bucket");
            write_labels(&mut out, l, Some(("le", "+Inf".into())));
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
    }
}
