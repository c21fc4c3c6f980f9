//! `loadgen`: the load generator behind `scripts/bench`.
//!
//! One subcommand per kind of load; each prints one JSON object on one line
//! (stdout) that the script collects and `bench/report.py` turns into tables.
//! Every figure is measured from the client's side of a loopback socket, so
//! the same command works against lookout and against its peers (the seed's
//! microdot server, Debian's `motion`).
//!
//! | subcommand | what |
//! |---|---|
//! | `mjpeg` | N MJPEG viewers (+ an optional stalled one): fps per viewer, MB/s, latency or jitter |
//! | `ws` | sequential WebSocket command round trips on `/control` |
//! | `sse` | one event to N SSE subscribers, time to the last receipt |
//! | `tcp` | the loopback ceiling: one writer thread, N raw TCP readers, MB/s |
//! | `frames` | records a stream's distinct JPEGs and their order (the seed peer replays them) |
//!
//! `--pid` makes a subcommand also report the server's CPU seconds per second
//! over the measured window and its peak RSS (`/proc`). `--label k=v` adds
//! fields to the output line.

mod mjpeg;
mod procstat;
mod sse;
// The one SSE reader, shared with the integration tests, which use the
// rest of it (its client with deadlines).
#[allow(dead_code)]
#[path = "../tests/common/sse.rs"]
mod sse_client;
mod stats;
mod tcp;
mod ws;

use clap::{Parser, Subcommand};
use serde_json::{Map, Value};

/// Load generator for `scripts/bench`.
#[derive(Debug, Parser)]
#[command(name = "loadgen")]
struct Cli {
    /// Extra `key=value` fields for the JSON output line (repeatable).
    #[arg(long = "label", global = true, value_parser = parse_label)]
    labels: Vec<(String, String)>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// What the server under test is, for `/proc` sampling.
#[derive(Debug, Clone, clap::Args)]
pub struct Server {
    /// Server process to sample (utime+stime, VmHWM) over the window.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    pub clk_tck: u64,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// MJPEG viewers on a `multipart/x-mixed-replace` URL.
    Mjpeg(mjpeg::Args),
    /// WebSocket command round trips.
    Ws(ws::Args),
    /// One event to many SSE subscribers.
    Sse(sse::Args),
    /// The loopback ceiling: one writer, N raw TCP readers.
    Tcp(tcp::Args),
    /// Save the distinct JPEGs of a stream and their order.
    Frames(mjpeg::FramesArgs),
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("label {s:?} is not key=value"))
}

fn main() -> std::process::ExitCode {
    lookout::install_crypto_provider();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async {
        match cli.cmd {
            Cmd::Mjpeg(a) => mjpeg::run(a).await,
            Cmd::Ws(a) => ws::run(a).await,
            Cmd::Sse(a) => sse::run(a).await,
            Cmd::Tcp(a) => tcp::run(a).await,
            Cmd::Frames(a) => mjpeg::frames(a).await,
        }
    });
    // Output is printed even on failure, so the report can say what broke.
    let (mut out, ok) = match result {
        Ok(v) => (v, true),
        Err(e) => {
            let mut m = Map::new();
            m.insert("error".into(), Value::String(format!("{e:#}")));
            (m, false)
        }
    };
    for (k, v) in cli.labels {
        out.insert(k, Value::String(v));
    }
    println!("{}", Value::Object(out));
    // Viewer tasks may still hold sockets; do not wait for them.
    rt.shutdown_background();
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
