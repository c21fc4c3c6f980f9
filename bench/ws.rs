//! WebSocket command round trips: one connection, one command at a time, the
//! time from sending a command to reading its reply.

use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::stats::summary;
use crate::Server;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The command channel, e.g. ws://127.0.0.1:8080/control
    #[arg(long)]
    url: String,
    /// Measured round trips.
    #[arg(long, default_value_t = 1000)]
    count: usize,
    /// Unmeasured round trips first.
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Commands sent in turn (comma-separated `cmd` names).
    #[arg(long, default_value = "reset,ping")]
    cmds: String,
    #[command(flatten)]
    server: Server,
}

pub(crate) async fn run(a: Args) -> anyhow::Result<Map<String, Value>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(a.url.as_str())
        .await
        .with_context(|| format!("connect {}", a.url))?;
    let cmds: Vec<&str> = a.cmds.split(',').map(str::trim).collect();
    let mut per_cmd: Vec<Vec<f64>> = vec![Vec::new(); cmds.len()];
    let mut all = Vec::new();
    let mut error_replies = 0usize;
    let mut sample = None;
    for i in 0..a.warmup + a.count {
        if i == a.warmup {
            sample = a.server.start();
        }
        let which = i % cmds.len();
        let text = json!({"cmd": cmds[which]}).to_string();
        let t0 = Instant::now();
        ws.send(Message::Text(text.into())).await.context("send")?;
        let reply = loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => break t.as_str().to_string(),
                Some(Ok(Message::Binary(b))) => break String::from_utf8_lossy(&b).into_owned(),
                Some(Ok(Message::Close(c))) => bail!("server closed the socket: {c:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(anyhow!(e).context("receive")),
                None => bail!("server closed the socket"),
            }
        };
        let rtt_ms = t0.elapsed().as_secs_f64() * 1000.0;
        if i < a.warmup {
            continue;
        }
        let parsed: Value = serde_json::from_str(&reply).unwrap_or(Value::Null);
        if parsed.get("error").is_some() || parsed.get("ok") == Some(&Value::Bool(false)) {
            error_replies += 1;
        }
        per_cmd[which].push(rtt_ms);
        all.push(rtt_ms);
    }
    let mut out = Map::new();
    a.server.finish(sample, &mut out);
    let _ = ws.close(None).await;
    out.insert("mode".into(), json!("ws"));
    out.insert("count".into(), json!(all.len()));
    summary(&mut out, "rtt_ms", &all);
    for (cmd, samples) in cmds.iter().zip(&per_cmd) {
        summary(&mut out, &format!("{cmd}_rtt_ms"), samples);
    }
    // Replies with "error" or "ok": false (e.g. a peer that has no "ping").
    out.insert("error_replies".into(), json!(error_replies));
    Ok(out)
}
