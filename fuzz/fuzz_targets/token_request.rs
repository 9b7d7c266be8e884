//! The token-endpoint request parser (query + urlencoded / multipart body + Basic).
//! The body lives in `camgate_server::fuzzing::token_request` (input layout and properties there), shared
//! with `crates/server/tests/api/fuzz_corpus.rs`, which replays `corpus/token_request/` in `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| camgate_server::fuzzing::token_request(data));
