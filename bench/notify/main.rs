//! `notify`: how long after the qualifying event a push leaves lookout
//! (`scripts/bench --notify` builds and runs it).
//!
//! The goal (notifications): a push leaves at most 1 s after the event that
//! qualifies its incident. With `notify_on = "motion"` that event is the
//! incident's `motion` event, whose SSE `id:` is the incident id and whose
//! `ts` is the Unix time lookout published it at. The bench:
//!
//! - writes the integration tests' motion loop (a square crossing for 0.5 s,
//!   then 1.5 s still, 10 fps: an incident every 2 s) and starts lookout on
//!   it with a `file:` camera, threshold 5, no cooldowns, no pre/post-roll,
//!   `notify_on = "motion"`, and `ntfy_url` pointing at its own receiver;
//! - the receiver notes when each `PUT`'s headers arrived (and when its body
//!   was complete), by incident (its `Filename` is `<camera>-<incident>.jpg`);
//! - an SSE subscriber on `/events` notes each `motion` event's id and `ts`;
//! - delay = arrival of the headers − `ts`, for `--incidents` incidents;
//!   first with no viewer, then with `--viewers` MJPEG viewers on
//!   `/stream.jpg`. The detector learns a spot that changes every 2 s as
//!   restless within about half a minute (and the loop stops making
//!   episodes), so a fresh lookout measures each 10 incidents, after
//!   `--warmup` unmeasured ones.
//!
//! Both clocks are this machine's wall clock. It prints one Markdown table:
//! p50/p90/p99/max of the delay, how many incidents had no push, and
//! lookout's CPU over the window. Everything listens on 127.0.0.1 and
//! writes to a temporary folder, removed at the end; lookout is killed if the
//! bench fails, panics, or gets Ctrl-C / SIGTERM.

mod clock;
mod ntfy;
mod phase;
mod scene;
mod server;
mod viewers;
// The one SSE reader, shared with the integration tests (which use the rest
// of it), and the bench programs' percentiles.
#[allow(dead_code)]
#[path = "../../tests/common/sse.rs"]
mod sse_client;
#[allow(dead_code)]
#[path = "../stats.rs"]
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Push delay benchmark for `scripts/bench --notify`.
#[derive(Debug, Parser)]
#[command(name = "notify")]
pub(crate) struct Args {
    /// The lookout binary to run.
    #[arg(long)]
    pub(crate) bin: PathBuf,
    /// Incidents measured per load (one every 2 s).
    #[arg(long, default_value_t = 60)]
    pub(crate) incidents: usize,
    /// Incidents skipped at the start of each load (start-up, viewers
    /// connecting).
    #[arg(long, default_value_t = 2)]
    pub(crate) warmup: usize,
    /// MJPEG viewers for the loaded run; 0 runs the idle one only.
    #[arg(long, default_value_t = 100)]
    pub(crate) viewers: usize,
    /// Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    pub(crate) clk_tck: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // reqwest's client (the SSE subscriber, the viewers) needs rustls's
    // provider even for plain HTTP.
    lookout::install_crypto_provider();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("notify: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = rt.block_on(async {
        tokio::select! {
            r = run(&args) => r,
            s = stop_signal() => Err(anyhow::anyhow!("stopped by {s}")),
        }
    });
    // Dropping the run (above) killed lookout and removed the folder.
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("notify: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Ctrl-C or SIGTERM (what `scripts/bench` sends on exit).
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

async fn run(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.incidents > 0, "--incidents must be at least 1");
    let work = tempfile::Builder::new()
        .prefix("lookout-notify.")
        .tempdir()?;
    let scene = work.path().join("scene");
    scene::write(&scene)?;
    let mut loads = vec![0];
    if args.viewers > 0 {
        loads.push(args.viewers);
    }
    let mut results = Vec::new();
    for viewers in loads {
        let servers = args.incidents.div_ceil(phase::PER_SERVER);
        eprintln!(
            "== {} incidents with {viewers} viewer(s), on {servers} fresh server(s) \
             ({} warm-up incidents each), about {} s",
            args.incidents,
            args.warmup,
            (args.incidents + args.warmup * servers) * 2 + 3 * servers
        );
        let dir = work.path().join(format!("v{viewers}"));
        std::fs::create_dir_all(&dir)?;
        let r = phase::run(args, &dir, &scene, viewers).await?;
        eprintln!("   {}", r.row());
        eprintln!("   {}", r.note());
        results.push(r);
    }
    println!("{}", phase::Result::header());
    for r in &results {
        println!("{}", r.row());
    }
    Ok(())
}
