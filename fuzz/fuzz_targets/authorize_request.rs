//! The authorization request parser and validator (GET|POST /oauth/authorize[/]).
//! The body lives in `camgate_server::fuzzing::authorize_request` (input layout and properties there), shared
//! with `crates/server/tests/api/fuzz_corpus.rs`, which replays `corpus/authorize_request/` in `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| camgate_server::fuzzing::authorize_request(data));
