//! Resource-route pagination and the redirect-URI registration rules.
//! The body lives in `camgate_server::fuzzing::resource_query` (input layout and properties there), shared
//! with `crates/server/tests/api/fuzz_corpus.rs`, which replays `corpus/resource_query/` in `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| camgate_server::fuzzing::resource_query(data));
