//! Replays every file of every `fuzz/corpus/*` directory through the code its fuzz target runs
//! (`camgate_server::fuzzing`, shared with the targets in `fuzz/fuzz_targets/`), so the seeds
//! and the regression inputs of past findings run in `cargo test` — in CI, without cargo-fuzz
//! or a nightly toolchain. A finding is kept as `fuzz/corpus/TARGET/seed-crash-*` (only
//! `seed-*` files are committed; see `fuzz/.gitignore` and `fuzz/README.md`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use camgate_server::fuzzing::{run, TARGETS};

fn corpus_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

#[test]
fn every_corpus_file_of_every_target_passes_its_target() {
    let mut seen = Vec::new();
    for dir in std::fs::read_dir(corpus_root()).expect("fuzz/corpus") {
        let dir = dir.unwrap();
        let target = dir.file_name().into_string().unwrap();
        assert!(
            TARGETS.contains(&target.as_str()),
            "fuzz/corpus/{target} belongs to no target in camgate_server::fuzzing::TARGETS"
        );
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|f| f.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let seeds = files
            .iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("seed-")
            })
            .count();
        assert!(
            seeds > 0,
            "fuzz/corpus/{target} has no committed seed-* file"
        );
        for f in &files {
            // A fuzzer running meanwhile may reduce (delete) generated files: skip those.
            let data = match std::fs::read(f) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("{}: {e}", f.display()),
            };
            let outcome = std::panic::catch_unwind(|| run(&target, &data));
            assert!(
                matches!(outcome, Ok(true)),
                "{} fails its target {target}",
                f.display()
            );
        }
        seen.push(target);
    }
    for t in TARGETS {
        assert!(seen.iter().any(|s| s == t), "no corpus for fuzz target {t}");
    }
}

#[test]
fn every_target_has_a_binary_in_the_fuzz_crate() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let script = std::fs::read_to_string(root.join("run")).unwrap();
    for t in TARGETS {
        let src = std::fs::read_to_string(root.join(format!("fuzz_targets/{t}.rs")))
            .unwrap_or_else(|_| panic!("fuzz/fuzz_targets/{t}.rs is missing"));
        assert!(
            src.contains(&format!("camgate_server::fuzzing::{t}(data)")),
            "fuzz/fuzz_targets/{t}.rs does not call camgate_server::fuzzing::{t}"
        );
        assert!(
            manifest.contains(&format!("name = \"{t}\"")),
            "{t} not in fuzz/Cargo.toml"
        );
        assert!(script.contains(t), "{t} not in fuzz/run's default list");
    }
}
