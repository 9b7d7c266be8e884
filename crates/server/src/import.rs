//! `camgate camera import FILE --owner EMAIL`: bulk import of cameras from CSV (a header row of
//! CAM2 field names) or JSON lines (one object per line, same names).
//!
//! Streamed: a parser thread reads the file through a byte-counting reader (the progress bar
//! follows bytes), converts and validates each row (`camgate_core::cam2::import_row`) and
//! hands batches of valid rows over a bounded channel to the writer, which inserts each batch
//! in one transaction of multi-row INSERTs. Parsing and writing overlap; memory stays bounded
//! by the channel. A bad row is reported with its line number and reason and skipped; only an
//! unreadable file or a database failure stops the import (batches already committed stay).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use camgate_core::cam2::{import_row, NewCamera, CAM2_FIELDS};
use camgate_core::model::UserId;
use camgate_core::Core;

/// Import options.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Rows per transaction.
    pub batch_size: usize,
    /// Mark rows without an `is_public` column public.
    pub public: bool,
    /// Draw a progress bar on stderr (it hides itself when stderr is not a terminal).
    pub progress: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            batch_size: 25_000,
            public: false,
            progress: true,
        }
    }
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line number in the file.
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct ImportSummary {
    pub imported: u64,
    pub skipped: Vec<Skipped>,
    /// Notes about the file itself (unknown columns).
    pub warnings: Vec<String>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    JsonLines,
}

fn detect(path: &Path) -> anyhow::Result<Format> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("csv") => return Ok(Format::Csv),
        Some("jsonl" | "ndjson" | "json") => return Ok(Format::JsonLines),
        _ => {}
    }
    let mut head = [0u8; 512];
    let n = File::open(path)?.read(&mut head)?;
    let first = head[..n].iter().find(|b| !b.is_ascii_whitespace());
    Ok(if first == Some(&b'{') {
        Format::JsonLines
    } else {
        Format::Csv
    })
}

/// Counts bytes read into the progress bar.
struct Counting<R> {
    inner: R,
    pb: ProgressBar,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pb.inc(n as u64);
        Ok(n)
    }
}

type Batch = Vec<NewCamera>;

/// What the parser thread reports when it is done.
struct Parsed {
    skipped: Vec<Skipped>,
    warnings: Vec<String>,
}

struct Batcher {
    tx: tokio::sync::mpsc::Sender<Batch>,
    batch: Batch,
    size: usize,
}

impl Batcher {
    /// False when the writer has gone away (it failed): stop parsing.
    fn push(&mut self, c: NewCamera) -> bool {
        self.batch.push(c);
        if self.batch.len() >= self.size {
            return self.flush();
        }
        true
    }
    fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let b = std::mem::replace(&mut self.batch, Vec::with_capacity(self.size));
        self.tx.blocking_send(b).is_ok()
    }
}

fn parse_csv(
    reader: impl Read,
    now: i64,
    public: bool,
    out: &mut Batcher,
) -> anyhow::Result<Parsed> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::Headers)
        .from_reader(reader);
    let headers = rdr.headers().context("reading the CSV header")?.clone();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut warnings = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let h = h.trim_start_matches('\u{feff}').to_string();
        if !CAM2_FIELDS.contains(&h.as_str()) && h != "name" && h != "is_public" {
            warnings.push(format!("unknown column `{h}` ignored"));
        }
        index.insert(h, i);
    }
    if !index.keys().any(|k| CAM2_FIELDS.contains(&k.as_str())) {
        return Err(anyhow!(
            "the CSV header has no CAM2 field ({}…)",
            CAM2_FIELDS[..4].join(", ")
        ));
    }
    let mut skipped = Vec::new();
    let mut rec = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                let line = rec.position().map(|p| p.line()).unwrap_or(0);
                if rec.len() != headers.len() {
                    skipped.push(Skipped {
                        line,
                        reason: format!(
                            "{} fields where the header has {}",
                            rec.len(),
                            headers.len()
                        ),
                    });
                    continue;
                }
                let get = |k: &str| index.get(k).and_then(|&i| rec.get(i));
                match import_row(get, now, public) {
                    Ok(c) => {
                        if !out.push(c) {
                            break;
                        }
                    }
                    Err(reason) => skipped.push(Skipped { line, reason }),
                }
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(anyhow!("reading line {line}: {e}"));
                }
                skipped.push(Skipped {
                    line,
                    reason: format!("unreadable row: {e}"),
                });
            }
        }
    }
    out.flush();
    Ok(Parsed { skipped, warnings })
}

fn parse_json_lines(
    reader: impl Read,
    now: i64,
    public: bool,
    out: &mut Batcher,
) -> anyhow::Result<Parsed> {
    let mut r = BufReader::with_capacity(1 << 20, reader);
    let mut skipped = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut buf = Vec::new();
    let mut line = 0u64;
    let mut values: HashMap<String, String> = HashMap::new();
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line += 1;
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(_) => {
                skipped.push(Skipped {
                    line,
                    reason: "not UTF-8".into(),
                });
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        let obj = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => {
                skipped.push(Skipped {
                    line,
                    reason: "not a JSON object".into(),
                });
                continue;
            }
            Err(e) => {
                skipped.push(Skipped {
                    line,
                    reason: format!("invalid JSON: {e}"),
                });
                continue;
            }
        };
        values.clear();
        let mut bad = None;
        for (k, v) in obj {
            let s = match v {
                Value::Null => continue,
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    bad = Some(format!("{k}: nested values are not accepted"));
                    break;
                }
            };
            if !CAM2_FIELDS.contains(&k.as_str())
                && k != "name"
                && k != "is_public"
                && warnings.len() < 20
            {
                let w = format!("unknown field `{k}` ignored");
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
            values.insert(k, s);
        }
        if let Some(reason) = bad {
            skipped.push(Skipped { line, reason });
            continue;
        }
        let get = |k: &str| values.get(k).map(String::as_str);
        match import_row(get, now, public) {
            Ok(c) => {
                if !out.push(c) {
                    break;
                }
            }
            Err(reason) => skipped.push(Skipped { line, reason }),
        }
    }
    out.flush();
    Ok(Parsed { skipped, warnings })
}

fn progress_bar(len: u64, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// Imports `path` for `owner`. See the module docs.
pub async fn import_file(
    core: Arc<Core>,
    path: &Path,
    owner: UserId,
    opts: ImportOptions,
) -> anyhow::Result<ImportSummary> {
    let start = Instant::now();
    let format = detect(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let pb = progress_bar(len, opts.progress);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(4);
    let now = core.now();
    let size = opts.batch_size.clamp(1, 100_000);
    let public = opts.public;
    let reader = Counting {
        inner: file,
        pb: pb.clone(),
    };
    let parser = std::thread::spawn(move || {
        let mut out = Batcher {
            tx,
            batch: Vec::with_capacity(size),
            size,
        };
        match format {
            Format::Csv => parse_csv(reader, now, public, &mut out),
            Format::JsonLines => parse_json_lines(reader, now, public, &mut out),
        }
    });
    let mut imported = 0u64;
    let mut failure = None;
    while let Some(batch) = rx.recv().await {
        match core.import_cameras(owner, &batch).await {
            Ok(n) => {
                imported += n;
                pb.set_message(format!("{imported} imported"));
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    drop(rx);
    let parsed = tokio::task::spawn_blocking(move || parser.join())
        .await
        .map_err(|e| anyhow!("parser task: {e}"))?
        .map_err(|_| anyhow!("the parser thread panicked"))?;
    pb.finish_and_clear();
    if let Some(e) = failure {
        return Err(anyhow!(
            "database error after {imported} cameras were imported: {e}"
        ));
    }
    let parsed = parsed?;
    // Fresh statistics, so the planner picks the selective index for the CAM2 filters (on
    // PostgreSQL also a vacuum: the new rows all-visible, for the radius search's index-only
    // scan).
    if imported > 0 {
        pb.set_message("analyzing");
        core.store
            .analyze_cameras()
            .await
            .map_err(|e| anyhow!("ANALYZE after import: {e}"))?;
    }
    Ok(ImportSummary {
        imported,
        skipped: parsed.skipped,
        warnings: parsed.warnings,
        seconds: start.elapsed().as_secs_f64(),
    })
}
