//! camgate's black-box integration suite, one test binary (`cargo test -p camgate-server
//! --test api`). Each module was a test binary of its own until linking 24 copies of the
//! server made every server change slow to test; they now share one process, so tests that
//! rely on process-wide resources take a lock for them (the browser tests share one, see
//! `common::browser`). `common` is the shared harness (the app on port 0 with its own
//! database, SQLite or PostgreSQL with `CAMGATE_TEST_DATABASE=postgres`).

mod common;

mod adversarial;
mod angelcam_api;
mod authorize;
mod browser_authorize;
mod browser_dashboard;
mod browser_passkeys;
mod browser_sharing;
mod cam2;
mod cli;
mod client;
mod config_cli;
mod dashboard;
mod dealers;
mod demo;
mod device;
mod durability;
mod events;
mod fuzz_corpus;
mod hostile;
mod leaks;
mod lifecycle;
mod limits;
mod mfa;
mod nodes;
mod oidc;
mod openapi;
mod ops;
mod outage;
mod processes;
mod sharing;
mod smoke;
mod token_endpoint;
mod webhooks;
