//! `soak run`: the receiver, lookout, the churn, the samples, the upload
//! drain, the clean stop, then the verdict and the summary.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::Value;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{sleep, timeout, Instant};
use tokio_util::sync::CancellationToken;

use crate::ctx::Ctx;
use crate::events::{sse, SseRole};
use crate::growth::{fd_noise, proc_sample, Growth, Sample, RSS_NOISE_MB};
use crate::server::{LogCounts, Lookout};
use crate::tally::Tally;
use crate::uploads::Flaky;
use crate::RunArgs;

pub(crate) async fn run(a: RunArgs) -> anyhow::Result<bool> {
    let work = a.work_dir.clone();
    let data = work.join("data");
    std::fs::create_dir_all(&work).context("work dir")?;
    let (flaky, receiver) = Flaky::start(a.minutes >= 20.0).await;
    let rport = receiver.addr().port();
    let mut lookout = Lookout::start(&a.bin, &work, &data, &receiver.url("/frames")).await?;
    let tally = Arc::new(Tally {
        started: Some(Instant::now()),
        ..Tally::default()
    });
    let stop = CancellationToken::new();
    let ctx = Arc::new(Ctx::new(lookout.port, tally.clone(), stop.clone())?);
    println!(
        "soak: lookout pid {} at {} ({} min of churn), receiver on port {rport}, log {}",
        lookout.pid,
        ctx.base,
        a.minutes,
        lookout.log_path.display()
    );
    // Both cameras running before the churn starts.
    lookout.wait_ready(&ctx).await?;

    let mut churn = Churn::start(&ctx);
    let (samples, churn_s) = sample(&a, &mut lookout, &data, &tally, &flaky).await?;

    // Stop the churn; the monitor stays subscribed through the drain.
    stop.cancel();
    churn.wind_down(&tally).await;
    let uploads = drain(&ctx, &flaky).await;
    let snaps_listed = snap_count(&ctx).await;
    churn.monitor_stop.cancel();
    if timeout(Duration::from_secs(10), churn.monitor)
        .await
        .is_err()
    {
        tally.fail("the SSE monitor did not stop within 10 s");
    }

    // A clean stop.
    lookout.stop(&tally).await;
    let growth = Growth::assess(&samples, churn_s, churn.clients, &tally);
    let end = End {
        samples: &samples,
        churn_s,
        clients: churn.clients,
        growth: &growth,
        uploads: &uploads,
        flaky: &flaky,
        snaps_listed,
        log: lookout.log_counts(),
        lookout: &lookout,
    };
    Ok(end.report(&tally))
}

/// The churn tasks, and the monitor that outlives them.
struct Churn {
    tasks: JoinSet<()>,
    /// Connections the driver holds at most, one per task.
    clients: usize,
    monitor: JoinHandle<()>,
    monitor_stop: CancellationToken,
}

impl Churn {
    fn start(ctx: &Arc<Ctx>) -> Churn {
        let stop = &ctx.stop;
        let mut tasks = JoinSet::new();
        let mut clients = 0usize;
        let monitor_stop = CancellationToken::new();
        let monitor = tokio::spawn(sse(ctx.clone(), 0, SseRole::Monitor, monitor_stop.clone()));
        tasks.spawn(sse(ctx.clone(), 1, SseRole::Staller, stop.clone()));
        for i in 2..4 {
            tasks.spawn(sse(ctx.clone(), i, SseRole::Churn, stop.clone()));
        }
        tasks.spawn(sse(ctx.clone(), 4, SseRole::Camera("gate"), stop.clone()));
        clients += 5;
        for i in 0..6 {
            tasks.spawn(crate::viewers::viewer(ctx.clone(), i));
        }
        clients += 6;
        for i in 0..2 {
            tasks.spawn(crate::control::ws(ctx.clone(), i));
        }
        clients += 2;
        tasks.spawn(crate::http::http_commands(ctx.clone(), 0));
        tasks.spawn(crate::http::http_commands(ctx.clone(), 1));
        tasks.spawn(crate::snapshots::snapshots(ctx.clone()));
        tasks.spawn(crate::control::oversized(ctx.clone()));
        clients += 4;
        Churn {
            tasks,
            clients,
            monitor,
            monitor_stop,
        }
    }

    /// Waits up to 60 s for the churn tasks to see the stop.
    async fn wind_down(&mut self, tally: &Tally) {
        let tasks = &mut self.tasks;
        let wind_down = Instant::now() + Duration::from_secs(60);
        while let Ok(Some(r)) = timeout(
            wind_down.saturating_duration_since(Instant::now()),
            tasks.join_next(),
        )
        .await
        {
            if let Err(e) = r {
                tally.fail(format!("a churn task panicked: {e}"));
            }
        }
        if !tasks.is_empty() {
            tally.fail(format!(
                "{} churn task(s) did not stop within 60 s",
                tasks.len()
            ));
            tasks.abort_all();
        }
    }
}

/// Samples the server every `--sample-s` until the churn's time is up;
/// returns the samples and the churn's length in seconds.
async fn sample(
    a: &RunArgs,
    lookout: &mut Lookout,
    data: &std::path::Path,
    tally: &Tally,
    flaky: &Flaky,
) -> anyhow::Result<(Vec<Sample>, f64)> {
    let start = Instant::now();
    let churn_for = Duration::from_secs_f64(a.minutes * 60.0);
    let every = Duration::from_secs_f64(a.sample_s.max(1.0));
    let mut samples: Vec<Sample> = Vec::new();
    println!("soak:      t  rss MB  fds threads  data MB  requests  events  uploads sent/failed");
    loop {
        let t = start.elapsed().as_secs_f64();
        let Some(s) = proc_sample(lookout.pid, data, t) else {
            let status = lookout.child.try_wait().ok().flatten();
            bail!(
                "lookout is gone ({status:?}; see {})",
                lookout.log_path.display()
            );
        };
        samples.push(s);
        println!(
            "soak: {:>5.0} s {:>7.1} {:>4} {:>7} {:>8.1} {:>9} {:>7} {:>8}/{}",
            t,
            s.rss_mb,
            s.fds,
            s.threads,
            s.data_mb,
            Tally::get(&tally.requests) + Tally::get(&tally.ws_commands),
            Tally::get(&tally.sse_events),
            flaky.delivered_count(),
            Tally::get(&flaky.failed),
        );
        if start.elapsed() >= churn_for {
            break;
        }
        let next = start + every.mul_f64(samples.len() as f64);
        sleep(
            next.min(start + churn_for)
                .saturating_duration_since(Instant::now()),
        )
        .await;
    }
    Ok((samples, start.elapsed().as_secs_f64()))
}

/// The uploads at the end: what the monitor saw queued, what arrived.
struct Uploads {
    expected: HashSet<String>,
    delivered: HashMap<String, u32>,
    missing: Vec<String>,
    twice: usize,
    /// lookout's own `/status` uploads section.
    status: Value,
}

/// Drains the uploads: the receiver takes everything now, and lookout is
/// told to retry at once (its backoff may be minutes by now). Fails the run
/// on a lost or doubled upload, a bad one, or one lookout gave up on.
async fn drain(ctx: &Ctx, flaky: &Flaky) -> Uploads {
    let tally = &ctx.tally;
    flaky.drain.store(true, Ordering::SeqCst);
    let expected: HashSet<String> = tally.expected.lock().map(|e| e.clone()).unwrap_or_default();
    let delivered = || {
        flaky
            .delivered
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default()
    };
    let drain_deadline = Instant::now() + Duration::from_secs(180);
    let mut missing: Vec<String>;
    loop {
        let _ = ctx
            .http
            .post(ctx.url("/control"))
            .body(r#"{"cmd":"flush_uploads"}"#)
            .send()
            .await;
        let d = delivered();
        missing = expected
            .iter()
            .filter(|k| !d.contains_key(*k))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() > drain_deadline {
            break;
        }
        sleep(Duration::from_secs(2)).await;
    }
    let status: Value = match ctx.http.get(ctx.url("/status")).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    let uploads = status["uploads"].clone();
    missing.sort();
    if !missing.is_empty() {
        tally.fail(format!(
            "{} upload(s) queued by lookout never arrived within 180 s of draining, e.g. {:?}; \
             lookout's uploads: {uploads}",
            missing.len(),
            &missing[..missing.len().min(5)]
        ));
    }
    let delivered = delivered();
    let twice: Vec<(&String, &u32)> = delivered.iter().filter(|(_, n)| **n > 1).collect();
    if !twice.is_empty() {
        tally.fail(format!(
            "{} upload(s) delivered more than once, e.g. {:?}",
            twice.len(),
            &twice[..twice.len().min(5)]
        ));
    }
    let twice = twice.len();
    if !missing.is_empty() {
        let unexpected: Vec<&String> = delivered
            .keys()
            .filter(|k| !expected.contains(*k))
            .collect();
        println!(
            "soak: e.g. missing {:?}; delivered but not seen as queued: {:?}",
            &missing[..missing.len().min(3)],
            &unexpected[..unexpected.len().min(3)]
        );
    }
    let bad = flaky.bad.lock().map(|b| b.clone()).unwrap_or_default();
    for bad in bad.iter().take(5) {
        tally.fail(format!("receiver: {bad}"));
    }
    for k in ["failed", "dropped"] {
        if uploads[k].as_u64().unwrap_or(0) > 0 {
            tally.fail(format!("lookout gave up on uploads ({k}): {uploads}"));
        }
    }
    Uploads {
        expected,
        delivered,
        missing,
        twice,
        status: uploads,
    }
}

/// Snapshots listed by both cameras at the end.
async fn snap_count(ctx: &Ctx) -> usize {
    let mut n = 0;
    for base in ["", "/cams/gate"] {
        if let Ok(r) = ctx
            .http
            .get(ctx.url(&format!("{base}/snaps?limit=1000")))
            .send()
            .await
        {
            if let Ok(v) = r.json::<Value>().await {
                n += v["snaps"].as_array().map_or(0, Vec::len);
            }
        }
    }
    n
}

/// Everything the summary reports.
struct End<'a> {
    samples: &'a [Sample],
    churn_s: f64,
    clients: usize,
    growth: &'a Growth,
    uploads: &'a Uploads,
    flaky: &'a Flaky,
    snaps_listed: usize,
    log: LogCounts,
    lookout: &'a Lookout,
}

impl End<'_> {
    /// Prints the summary and the failures; true when there were none.
    fn report(&self, tally: &Tally) -> bool {
        self.print_process();
        self.print_work(tally);
        let failures = tally.failures.lock().map(|f| f.clone()).unwrap_or_default();
        if failures.is_empty() {
            println!("soak: PASS");
            true
        } else {
            println!(
                "soak: FAILED ({} failure(s)):",
                Tally::get(&tally.failure_count)
            );
            for f in &failures {
                println!("soak:   {f}");
            }
            false
        }
    }

    /// The server's process: RSS, fds, threads, the data directory.
    fn print_process(&self) {
        let g = self.growth;
        println!(
            "soak: ---- summary ({:.1} min of churn, warm-up {:.0} s, {} samples after it)",
            self.churn_s / 60.0,
            g.warm,
            g.after
        );
        let (Some(f), Some(l)) = (self.samples.first(), self.samples.last()) else {
            return;
        };
        println!(
            "soak: RSS {:.1} -> {:.1} MB, fitted {:+.3} MB/min after warm-up (limit {:.1} MB over the window)",
            f.rss_mb, l.rss_mb, g.rss_slope, RSS_NOISE_MB
        );
        println!(
            "soak: fds {} -> {}, fitted {:+.2}/min (limit {:.0} over the window); threads {} -> {} ({:+.2}/min)",
            f.fds, l.fds, g.fd_slope, fd_noise(self.clients), f.threads, l.threads, g.thr_slope
        );
        println!(
            "soak: data dir {:.1} -> {:.1} MB ({:+.2} MB/min)",
            f.data_mb, l.data_mb, g.data_slope
        );
    }

    /// What the churn did: requests, events, uploads, snapshots, the log.
    fn print_work(&self, tally: &Tally) {
        let kinds = tally.kinds.lock().map(|k| k.clone()).unwrap_or_default();
        println!(
            "soak: requests {} HTTP + {} WebSocket commands; {} viewers ({} frames); {} SSE connections",
            Tally::get(&tally.requests),
            Tally::get(&tally.ws_commands),
            Tally::get(&tally.viewers),
            Tally::get(&tally.frames),
            Tally::get(&tally.sse_connects),
        );
        println!(
            "soak: events {} stored ({}), {} received by all subscribers",
            kinds.values().sum::<u64>(),
            kinds
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            Tally::get(&tally.sse_events),
        );
        let (u, r) = (self.uploads, self.flaky);
        println!(
            "soak: uploads {} expected, {} delivered, {} missing, {} twice; receiver {} requests, {} failed on purpose ({} hung); lookout: {}",
            u.expected.len(),
            u.delivered.len(),
            u.missing.len(),
            u.twice,
            Tally::get(&r.requests),
            Tally::get(&r.failed),
            Tally::get(&r.hung),
            u.status
        );
        println!(
            "soak: snapshots {} made by commands, {} read, {} deleted, {} listed at the end; {} clips read; {} config changes",
            Tally::get(&tally.snaps_made),
            Tally::get(&tally.snaps_read),
            Tally::get(&tally.snaps_deleted),
            self.snaps_listed,
            Tally::get(&tally.clips_read),
            Tally::get(&tally.config_changes),
        );
        println!(
            "soak: server log {} warnings, {} errors ({})",
            self.log.warns,
            self.log.errors,
            self.lookout.log_path.display()
        );
        for l in &self.log.error_lines {
            println!("soak:   {l}");
        }
    }
}
