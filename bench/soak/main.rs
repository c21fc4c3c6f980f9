//! `soak`: hours of churn against one lookout, watching for leaks and lost work
//! (`scripts/soak` builds and runs it).
//!
//! `soak run` starts lookout with two cameras (the synthetic yard, whose ball
//! makes a motion episode every 24 s, and an `exec:` camera, this same program
//! as `soak source`, that exits every 20 s so the supervisor's restart with
//! backoff runs all the time), uploads to a receiver of its own that fails 30 %
//! of requests and sometimes hangs, and then, all at once:
//! MJPEG viewers that come and go (some slow, some stalled), SSE subscribers
//! that drop and reconnect with `Last-Event-ID` (one stalls until the server
//! drops it), WebSocket and HTTP commands of every kind (bad ones included,
//! each reply checked against the README), config changes, snapshots made,
//! read and deleted, and clips read.
//!
//! Every 10 s it samples the server's RSS, open fds and threads from `/proc`
//! and the data directory's size. At the end it drains the uploads and fails
//! (exit 1, the reasons printed) when:
//! - RSS or fds grew after the warm-up (a least-squares slope over the
//!   samples, see [`growth::RSS_NOISE_MB`] and [`growth::fd_noise`] for the
//!   thresholds);
//! - a request failed that should not have, or a reply was not the README's;
//! - an SSE subscriber on `/events` saw a gap (or a repeat) in the event ids
//!   across its reconnects;
//! - an upload the server queued (every motion, manual snapshot and saved
//!   clip event) never arrived, or arrived twice (uploads carry no id, so an
//!   item is known by its camera and its snapshot, clip or time);
//! - a listed snapshot could not be read;
//! - the server did not stop within 30 s of SIGTERM.
//!
//! Everything listens on 127.0.0.1 and writes under `--work-dir` only.

mod camera;
mod control;
mod ctx;
mod events;
mod growth;
mod http;
mod rng;
mod run;
mod server;
mod snapshots;
mod tally;
mod uploads;
mod viewers;
// The upload receiver and the SSE reader, shared with the integration tests
// (tests/common), which use the rest of them.
#[allow(dead_code)]
#[path = "../../tests/common/receiver.rs"]
mod receiver;
#[allow(dead_code)]
#[path = "../../tests/common/sse.rs"]
mod sse_client;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Soak test driver for `scripts/soak`.
#[derive(Debug, Parser)]
#[command(name = "soak")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run lookout under churn and check it.
    Run(RunArgs),
    /// Be an `exec:` camera: MJPEG on stdout for `--seconds`, then exit.
    Source(SourceArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The lookout binary to run.
    #[arg(long)]
    pub(crate) bin: PathBuf,
    /// Minutes of churn (the upload drain and the shutdown come after).
    #[arg(long, default_value_t = 10.0)]
    pub(crate) minutes: f64,
    /// An empty folder for the data directory, the config and the server log.
    #[arg(long)]
    pub(crate) work_dir: PathBuf,
    /// Seconds between samples of the server's process.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) sample_s: f64,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SourceArgs {
    /// Seconds before exiting (the camera "dies").
    #[arg(long, default_value_t = 20.0)]
    pub(crate) seconds: f64,
    #[arg(long, default_value_t = 10)]
    pub(crate) fps: u32,
}

fn main() -> ExitCode {
    lookout::install_crypto_provider();
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Source(a) => match camera::source(a) {
            Ok(()) => ExitCode::SUCCESS,
            // stdout closed by the server (a restart): nothing to report.
            Err(_) => ExitCode::FAILURE,
        },
        Cmd::Run(a) => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("soak: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(run::run(a)) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("soak: FAILED: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
