//! One event to many SSE subscribers: how long until the last one has it.
//!
//! Two ways to time an event:
//! - `--trigger-url`: POST a command (lookout: `{"cmd":"reset"}` to
//!   `/control`) and time from sending it to the last subscriber's receipt of
//!   the event it causes (`event: reset`);
//! - without a trigger, `--ts-field`: the server stamps the event itself (the
//!   seed's `last_motion['ts']`, `time.time()` just before it wakes the
//!   subscribers), and the time runs from that stamp to the last receipt.
//!
//! With both, the stamp gives a second figure (`from_stamp_ms`): lookout
//! stamps an event before it stores and broadcasts it, so that one leaves out
//! the trigger request but keeps the store write.
//!
//! Other event names (lookout's `level` feed, twice a second) are ignored. An
//! event is told apart from the next by its `id:` line, else by its data.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

use crate::sse_client::Events;
use crate::stats::{num, percentile, summary, unix_now};
use crate::Server;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The event stream, e.g. http://127.0.0.1:8080/events
    #[arg(long)]
    url: String,
    /// Concurrent subscribers.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Events to time.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// POST here to cause each event (else wait for the server's own events).
    #[arg(long)]
    trigger_url: Option<String>,
    /// Body of the trigger POST.
    #[arg(long, default_value = r#"{"cmd":"reset"}"#)]
    trigger_body: String,
    /// The event name to time.
    #[arg(long, default_value = "reset")]
    event: String,
    /// A field of the event's JSON data holding the server's Unix-seconds stamp.
    #[arg(long)]
    ts_field: Option<String>,
    /// Longest wait for every subscriber to get one event.
    #[arg(long, default_value_t = 5.0)]
    round_timeout: f64,
    #[command(flatten)]
    server: Server,
}

/// One subscriber's receipt of a matching event.
struct Receipt {
    key: String,
    arrival: f64,
    stamp: Option<f64>,
}

async fn subscribe(
    client: reqwest::Client,
    url: String,
    event: Arc<str>,
    ts_field: Option<Arc<str>>,
    connected: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
    tx: mpsc::UnboundedSender<Receipt>,
) -> anyhow::Result<()> {
    let permit = gate.acquire_owned().await?;
    let resp = client
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("{url}: HTTP {}", resp.status());
    }
    connected.fetch_add(1, Ordering::SeqCst);
    drop(permit);
    let mut events = Events::new(resp);
    while let Some(msg) = events.next().await {
        let msg = msg?;
        if msg.event != *event {
            continue;
        }
        let stamp = ts_field
            .as_ref()
            .and_then(|f| msg.json().get(&**f)?.as_f64());
        let _ = tx.send(Receipt {
            key: msg.id.unwrap_or(msg.data),
            arrival: unix_now(),
            stamp,
        });
    }
    bail!("server ended the event stream")
}

pub(crate) async fn run(a: Args) -> anyhow::Result<Map<String, Value>> {
    let client = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(0)
        .build()?;
    let connected = Arc::new(AtomicUsize::new(0));
    // Connect in waves so a small listen backlog is not overrun.
    let gate = Arc::new(Semaphore::new(64));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let event: Arc<str> = a.event.clone().into();
    let ts_field: Option<Arc<str>> = a.ts_field.clone().map(Into::into);
    let t_connect = Instant::now();
    let tasks: Vec<_> = (0..a.subscribers)
        .map(|_| {
            tokio::spawn(subscribe(
                client.clone(),
                a.url.clone(),
                event.clone(),
                ts_field.clone(),
                connected.clone(),
                gate.clone(),
                tx.clone(),
            ))
        })
        .collect();
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(60);
    while connected.load(Ordering::SeqCst) < a.subscribers {
        if Instant::now() > deadline || tasks.iter().all(|t| t.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_s = t_connect.elapsed().as_secs_f64();
    let n = connected.load(Ordering::SeqCst);
    let mut out = Map::new();
    out.insert("mode".into(), json!("sse"));
    out.insert("subscribers".into(), json!(a.subscribers));
    out.insert("connected".into(), json!(n));
    out.insert("connect_s".into(), num(Some(connect_s)));
    if n < a.subscribers {
        let mut first = None;
        for t in tasks {
            if t.is_finished() {
                if let Ok(Err(e)) = t.await {
                    first = Some(format!("{e:#}"));
                    break;
                }
            }
        }
        bail!(
            "only {n} of {} subscribers connected{}",
            a.subscribers,
            first.map(|e| format!(": {e}")).unwrap_or_default()
        );
    }
    // Let each server park every subscriber on its event source.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while rx.try_recv().is_ok() {}
    let sample = a.server.start();
    let started = unix_now();
    let timeout = Duration::from_secs_f64(a.round_timeout);
    let mut last_ms = Vec::new();
    let mut first_ms = Vec::new();
    // Last receipt minus the server's own stamp in the event (`--ts-field`).
    let mut stamped_ms = Vec::new();
    let mut missed = 0usize;
    let mut rounds_done = 0usize;
    let http = reqwest::Client::new();
    match &a.trigger_url {
        Some(trigger) => {
            for _ in 0..a.rounds {
                while rx.try_recv().is_ok() {}
                let t0 = unix_now();
                let resp = http
                    .post(trigger)
                    .header("content-type", "application/json")
                    .body(a.trigger_body.clone())
                    .send()
                    .await
                    .context("trigger")?;
                if !resp.status().is_success() {
                    bail!("trigger: HTTP {}", resp.status());
                }
                let end = Instant::now() + timeout;
                let mut key: Option<String> = None;
                let mut stamp: Option<f64> = None;
                let (mut got, mut first, mut last) = (0usize, f64::MAX, 0f64);
                while got < n {
                    let r = tokio::select! {
                        r = rx.recv() => r,
                        _ = tokio::time::sleep_until(end) => None,
                    };
                    let Some(r) = r else { break };
                    if key.get_or_insert_with(|| r.key.clone()) != &r.key {
                        continue;
                    }
                    got += 1;
                    stamp = stamp.or(r.stamp);
                    first = first.min(r.arrival);
                    last = last.max(r.arrival);
                }
                missed += n - got;
                if got == n {
                    rounds_done += 1;
                    last_ms.push((last - t0) * 1000.0);
                    first_ms.push((first - t0) * 1000.0);
                    if let Some(stamp) = stamp {
                        stamped_ms.push((last - stamp) * 1000.0);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        None => {
            // The server's own events: group receipts by event, skip any stamped
            // before the subscribers were all in place.
            let mut seen: HashMap<String, (usize, f64, f64, Instant)> = HashMap::new();
            let overall = Instant::now() + timeout * (a.rounds as u32 + 2);
            let mut closed: Vec<String> = Vec::new();
            while rounds_done < a.rounds && Instant::now() < overall {
                let r = tokio::select! {
                    r = rx.recv() => r,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => None,
                };
                if let Some(r) = r {
                    let Some(stamp) = r.stamp else { continue };
                    if stamp < started || closed.contains(&r.key) {
                        continue;
                    }
                    let e =
                        seen.entry(r.key.clone())
                            .or_insert((0, stamp, f64::MAX, Instant::now()));
                    e.0 += 1;
                    e.2 = e.2.min(r.arrival);
                    if e.0 == n {
                        if let Some((_, stamp, first, _)) = seen.remove(&r.key) {
                            last_ms.push((r.arrival - stamp) * 1000.0);
                            stamped_ms.push((r.arrival - stamp) * 1000.0);
                            first_ms.push((first - stamp) * 1000.0);
                            rounds_done += 1;
                        }
                        closed.push(r.key);
                    }
                }
                // An event some subscribers never got.
                let late: Vec<String> = seen
                    .iter()
                    .filter(|(_, v)| v.3.elapsed() > timeout)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in late {
                    if let Some(v) = seen.remove(&k) {
                        missed += n - v.0;
                    }
                    closed.push(k);
                }
            }
        }
    }
    a.server.finish(sample, &mut out);
    out.insert("rounds".into(), json!(a.rounds));
    out.insert("rounds_complete".into(), json!(rounds_done));
    out.insert("missed_receipts".into(), json!(missed));
    summary(&mut out, "last_ms", &last_ms);
    summary(&mut out, "from_stamp_ms", &stamped_ms);
    out.insert("first_ms_p50".into(), num(percentile(&first_ms, 0.5)));
    for t in tasks {
        t.abort();
    }
    Ok(out)
}
