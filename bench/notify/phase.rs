//! One load: a fresh lookout, its event stream read for `motion` and
//! `notify` events, the pushes matched to their incidents, the delays.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::time::{timeout_at, Instant};

use crate::clock::unix_now;
use crate::ntfy::Ntfy;
use crate::server::{Lookout, CAMERA};
use crate::sse_client::Events;
use crate::stats::percentile;
use crate::viewers::Viewers;
use crate::Args;

/// How long the pushes of the last incidents may take to come after their
/// events before they count as missing (ten times the goal).
const GRACE: Duration = Duration::from_secs(10);

/// One incident measured.
struct Incident {
    id: i64,
    /// The `motion` event's `ts`.
    ts: f64,
    /// When the bench's subscriber had the event.
    sse_at: f64,
}

/// The figures of one load.
pub(crate) struct Result {
    viewers: usize,
    incidents: usize,
    /// Incidents with no push within [`GRACE`] of the end.
    missing: usize,
    /// Push headers arrived − `ts`, ms.
    headers_ms: Vec<f64>,
    /// Push body complete − `ts`, ms.
    body_ms: Vec<f64>,
    /// SSE receipt − `ts`, ms: the same clock read by another path.
    sse_ms: Vec<f64>,
    /// `notify` statuses of the measured incidents other than `sent`.
    not_sent: BTreeMap<String, usize>,
    /// Later pushes of an incident (ntfy's "ended" updates): not measured.
    later: usize,
    /// lookout's CPU seconds and the viewers' bytes over the windows, and
    /// the windows' length.
    cpu_s: Option<f64>,
    viewer_bytes: u64,
    window_s: f64,
    viewers_lost: u64,
    /// Fresh servers the incidents were measured on.
    servers: usize,
}

impl Result {
    pub(crate) fn header() -> String {
        "| viewers | incidents | no push | delay p50 | p90 | p99 | max | body done p50 / p99 | \
         SSE receipt p50 | not sent | lookout CPU s/s | viewers MB/s |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"
            .to_string()
    }

    /// What the row does not say: how many servers, later pushes.
    pub(crate) fn note(&self) -> String {
        format!(
            "{} incident(s) on {} fresh server(s), {:.0} s measured; {} later push(es) of the same incidents (not measured)",
            self.incidents, self.servers, self.window_s, self.later
        )
    }

    pub(crate) fn row(&self) -> String {
        let ms = |s: &[f64], p: f64| match percentile(s, p) {
            Some(x) => format!("{x:.1} ms"),
            None => "-".into(),
        };
        let max = match self.headers_ms.iter().copied().reduce(f64::max) {
            Some(x) => format!("{x:.1} ms"),
            None => "-".into(),
        };
        let not_sent = if self.not_sent.is_empty() {
            "none".to_string()
        } else {
            self.not_sent
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let opt = |x: Option<f64>, digits: usize| match x {
            Some(x) => format!("{x:.digits$}"),
            None => "-".into(),
        };
        let lost = if self.viewers_lost > 0 {
            format!(" ({} lost)", self.viewers_lost)
        } else {
            String::new()
        };
        format!(
            "| {} | {} | {} | {} | {} | {} | {max} | {} / {} | {} | {not_sent} | {} | {}{lost} |",
            self.viewers,
            self.incidents,
            self.missing,
            ms(&self.headers_ms, 0.5),
            ms(&self.headers_ms, 0.9),
            ms(&self.headers_ms, 0.99),
            ms(&self.body_ms, 0.5),
            ms(&self.body_ms, 0.99),
            ms(&self.sse_ms, 0.5),
            opt(self.cpu_s.map(|c| c / self.window_s), 3),
            if self.viewers == 0 {
                "-".into()
            } else {
                opt(Some(self.viewer_bytes as f64 / 1e6 / self.window_s), 2)
            },
        )
    }
}

/// The detector learns a spot that changes every 2 s as restless (leaves,
/// water) within about half a minute, and the loop stops making episodes:
/// so each server measures at most this many incidents, then a fresh one
/// takes over.
pub(crate) const PER_SERVER: usize = 10;

/// Measures `args.incidents` incidents with `viewers` viewers, on fresh
/// lookouts working under `dir`.
pub(crate) async fn run(
    args: &Args,
    dir: &Path,
    scene: &Path,
    viewers: usize,
) -> anyhow::Result<Result> {
    let mut total = Result {
        viewers,
        incidents: 0,
        missing: 0,
        headers_ms: Vec::new(),
        body_ms: Vec::new(),
        sse_ms: Vec::new(),
        not_sent: BTreeMap::new(),
        later: 0,
        cpu_s: Some(0.0),
        viewer_bytes: 0,
        window_s: 0.0,
        viewers_lost: 0,
        servers: 0,
    };
    while total.incidents < args.incidents {
        let n = PER_SERVER.min(args.incidents - total.incidents);
        let sub = dir.join(format!("s{}", total.servers));
        std::fs::create_dir_all(&sub)?;
        let r = segment(args, &sub, scene, viewers, n).await?;
        // Each server's data goes with it.
        let _ = std::fs::remove_dir_all(&sub);
        total.incidents += r.incidents;
        total.missing += r.missing;
        total.headers_ms.extend(r.headers_ms);
        total.body_ms.extend(r.body_ms);
        total.sse_ms.extend(r.sse_ms);
        for (k, v) in r.not_sent {
            *total.not_sent.entry(k).or_default() += v;
        }
        total.later += r.later;
        total.cpu_s = total.cpu_s.zip(r.cpu_s).map(|(a, b)| a + b);
        total.viewer_bytes += r.viewer_bytes;
        total.window_s += r.window_s;
        total.viewers_lost += r.viewers_lost;
        total.servers += 1;
        eprintln!("   {} / {}", total.incidents, args.incidents);
    }
    Ok(total)
}

/// Measures `count` incidents with `viewers` viewers on a fresh lookout
/// working in `dir`.
async fn segment(
    args: &Args,
    dir: &Path,
    scene: &Path,
    viewers: usize,
    count: usize,
) -> anyhow::Result<Result> {
    let ntfy = Ntfy::start().await?;
    let mut server = Lookout::start(&args.bin, dir, scene, &ntfy.url(), viewers + 16).await?;
    let resp = reqwest::Client::new()
        .get(server.url("/events"))
        .send()
        .await
        .context("subscribe to /events")?;
    if !resp.status().is_success() {
        bail!("/events answered {}", resp.status());
    }
    let mut events = Events::new(resp);
    let load = (viewers > 0).then(|| Viewers::start(&server.url("/stream.jpg"), viewers));

    let wanted = args.warmup + count;
    // Three times the scene's pace, and a minute to start.
    let deadline = Instant::now() + Duration::from_secs(wanted as u64 * 6 + 60);
    let mut seen = 0usize;
    let mut measured: Vec<Incident> = Vec::new();
    let mut statuses: BTreeMap<i64, String> = BTreeMap::new();
    let mut window: Option<(Instant, Option<u64>, u64)> = None;
    let mut grace_end: Option<Instant> = None;
    loop {
        if let Some(end) = grace_end {
            // Every push in, and every `notify` event (published as the
            // incident is decided, before its push leaves).
            let all_in = measured
                .iter()
                .all(|i| ntfy.arrival(i.id).is_some() && statuses.contains_key(&i.id));
            if all_in || Instant::now() >= end {
                break;
            }
        }
        let until = grace_end
            .unwrap_or(deadline)
            .min(Instant::now() + Duration::from_millis(200));
        let msg = match timeout_at(until, events.next()).await {
            Err(_) => {
                if grace_end.is_none() && Instant::now() >= deadline {
                    bail!(
                        "only {seen} of {wanted} motion events within the deadline (see {})",
                        server.log_path.display()
                    );
                }
                if !server.running() {
                    bail!("lookout exited (see {})", server.log_path.display());
                }
                continue;
            }
            Ok(None) => bail!("the event stream ended (see {})", server.log_path.display()),
            Ok(Some(msg)) => msg.context("read /events")?,
        };
        let data = msg.json();
        if data["camera"] != CAMERA {
            continue;
        }
        match msg.event.as_str() {
            "motion" if grace_end.is_none() => {
                let sse_at = unix_now();
                let (Some(id), Some(ts)) = (msg.id_number(), data["ts"].as_f64()) else {
                    bail!("a motion event without an id or ts: {}", msg.data);
                };
                seen += 1;
                if seen <= args.warmup {
                    continue;
                }
                if window.is_none() {
                    let bytes = load.as_ref().map_or(0, Viewers::bytes);
                    window = Some((Instant::now(), server.cpu_ticks(), bytes));
                }
                measured.push(Incident { id, ts, sse_at });
                if measured.len() == count {
                    grace_end = Some(Instant::now() + GRACE);
                }
            }
            "notify" => {
                if let (Some(id), Some(status)) =
                    (data["incident"].as_i64(), data["status"].as_str())
                {
                    statuses.insert(id, status.to_string());
                }
            }
            _ => {}
        }
    }

    // The window: from the first measured event to the last push (or the
    // grace's end).
    let (cpu_s, viewer_bytes, window_s) = match window {
        Some((start, ticks, bytes)) => {
            let cpu = match (ticks, server.cpu_ticks()) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / args.clk_tck as f64),
                _ => None,
            };
            let got = load.as_ref().map_or(0, |l| l.bytes().saturating_sub(bytes));
            (cpu, got, start.elapsed().as_secs_f64())
        }
        None => (None, 0, 0.0),
    };
    let viewers_lost = load.as_ref().map_or(0, Viewers::lost);
    if let Some(load) = load {
        load.stop();
    }
    server.stop().await;

    let mut r = Result {
        viewers,
        incidents: measured.len(),
        missing: 0,
        headers_ms: Vec::new(),
        body_ms: Vec::new(),
        sse_ms: Vec::new(),
        not_sent: BTreeMap::new(),
        later: 0,
        cpu_s,
        viewer_bytes,
        window_s,
        viewers_lost,
        servers: 1,
    };
    for i in &measured {
        r.sse_ms.push((i.sse_at - i.ts) * 1000.0);
        match ntfy.arrival(i.id) {
            Some(a) => {
                r.headers_ms.push((a.headers_at - i.ts) * 1000.0);
                r.body_ms.push((a.body_at - i.ts) * 1000.0);
            }
            None => r.missing += 1,
        }
        match statuses.get(&i.id).map(String::as_str) {
            Some("sent") => {}
            Some(other) => *r.not_sent.entry(other.to_string()).or_default() += 1,
            None => *r.not_sent.entry("no notify event".into()).or_default() += 1,
        }
    }
    if let Ok(book) = ntfy.book.lock() {
        r.later = book.later;
    }
    Ok(r)
}
