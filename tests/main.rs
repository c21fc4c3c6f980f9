//! lookout's integration tests, in one test binary: each module drives the
//! real server (or the package, or a source) over real sockets.
//!
//! One binary, not one per file: each would link the whole server again, and
//! `cargo test` runs binaries one after another, so a slow test held back
//! every file after it. Here the tests of all files share the test threads.
//! Run one file's tests with `cargo test --test integration rtsp::`.

mod common;

mod api;
mod cameras;
mod clips;
mod clips_mp4;
mod closed_pipes;
mod control;
mod crash;
mod disk_full;
mod doctor;
mod events;
mod faults;
mod fd_limit;
mod footage;
mod incidents;
mod live;
mod metrics;
mod mqtt;
mod notifications;
mod person;
mod person_check;
mod redaction;
mod robustness;
mod rtsp;
mod rtsp_quirks;
mod security;
mod security_auth;
mod security_net;
mod security_tokens;
mod service;
mod snaps;
mod sources;
mod stream;
mod uploads;
mod webpush;
mod zones;
