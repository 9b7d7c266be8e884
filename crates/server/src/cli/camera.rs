//! `camgate camera …`: bulk import of cameras.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use camgate_server::config::Config;
use camgate_server::import::{import_file, ImportOptions};

use super::{core_for, user_id};

#[derive(Subcommand)]
pub enum CameraCmd {
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

/// Skipped rows listed in the text summary; `--json` lists them all.
const SHOWN: usize = 50;

pub async fn run(cmd: CameraCmd, cfg: &Config) -> anyhow::Result<()> {
    match cmd {
        CameraCmd::Import {
            file,
            owner,
            public,
            batch_size,
            json,
        } => {
            let core = core_for(cfg).await?;
            let owner_id = user_id(&core, &owner).await?;
            let opts = ImportOptions {
                batch_size,
                public,
                progress: !json,
            };
            let sum = import_file(core, &file, owner_id, opts).await?;
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
    }
    Ok(())
}
