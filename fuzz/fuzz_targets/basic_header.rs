//! HTTP Basic client authentication (RFC 6749 §2.3.1).
//! The body lives in `camgate_server::fuzzing::basic_header` (input layout and properties there), shared
//! with `crates/server/tests/api/fuzz_corpus.rs`, which replays `corpus/basic_header/` in `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| camgate_server::fuzzing::basic_header(data));
