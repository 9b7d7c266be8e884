//! JWT parsing and verification, and the CAM2 `Authorization: JWT …` path.
//! The body lives in `camgate_server::fuzzing::jwt` (input layout and properties there), shared
//! with `crates/server/tests/api/fuzz_corpus.rs`, which replays `corpus/jwt/` in `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| camgate_server::fuzzing::jwt(data));
