//! The resource-route Authorization parser (Bearer, PersonalAccessToken, JWT).
//! The body lives in `camgate_server::fuzzing::authorization_header` (input layout and properties there), shared
//! with `crates/server/tests/api/fuzz_corpus.rs`, which replays `corpus/authorization_header/` in `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| camgate_server::fuzzing::authorization_header(data));
