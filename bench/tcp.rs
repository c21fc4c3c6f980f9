//! The loopback ceiling: one writer thread sending a frame-sized buffer over
//! and over to N raw TCP readers, as fast as the sockets take it.
//!
//! No HTTP, no pacing, no frame splitting: what this machine's loopback and
//! scheduler can move with the same number of connections, measured in the
//! same run as the servers, so a server's MB/s at saturation can be read
//! against it. The writer is one thread (a current-thread runtime) as a
//! server's event loop would be; the readers run on the load generator's
//! usual runtime and discard what they read.

use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::stats::{median, num};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Concurrent readers (connections).
    #[arg(long, default_value_t = 1000)]
    readers: usize,
    /// Length of the measured window.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Time for every reader to connect before the window opens.
    #[arg(long, default_value_t = 2.0)]
    ramp: f64,
    /// Size of the buffer written in one go (a 720p JPEG is about 120 KB).
    #[arg(long, default_value_t = 120)]
    frame_kb: usize,
}

pub(crate) async fn run(a: Args) -> anyhow::Result<Map<String, Value>> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let frame = Bytes::from(vec![0x5a; a.frame_kb * 1024]);
    let readers = a.readers;
    let writer = std::thread::Builder::new()
        .name("tcp-writer".into())
        .spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                let mut tasks = Vec::with_capacity(readers);
                for _ in 0..readers {
                    let (mut sock, _) = listener.accept().await?;
                    sock.set_nodelay(true)?;
                    let frame = frame.clone();
                    tasks.push(tokio::spawn(async move {
                        // Ends when the reader goes away.
                        while sock.write_all(&frame).await.is_ok() {}
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
                Ok::<_, anyhow::Error>(())
            })
        })?;
    let start = Instant::now() + Duration::from_secs_f64(a.ramp);
    let end = start + Duration::from_secs_f64(a.seconds);
    let mut tasks = Vec::with_capacity(a.readers);
    for _ in 0..a.readers {
        let sock = TcpStream::connect(addr).await.context("connect")?;
        tasks.push(tokio::spawn(read_until(sock, start, end)));
    }
    tokio::time::sleep_until(end).await;
    let mut per_reader = Vec::with_capacity(tasks.len());
    for t in tasks {
        per_reader.push(t.await.unwrap_or(0) as f64 / 1e6 / a.seconds);
    }
    // Closing the readers ends the writer's tasks, then its thread.
    drop(writer);
    let total: f64 = per_reader.iter().sum();
    let mut out = Map::new();
    out.insert("mode".into(), json!("tcp"));
    out.insert("readers".into(), json!(a.readers));
    out.insert("seconds".into(), json!(a.seconds));
    out.insert("frame_kb".into(), json!(a.frame_kb));
    out.insert("mb_per_s".into(), num(Some(total)));
    out.insert(
        "reader_mb_per_s_min".into(),
        num(per_reader.iter().copied().reduce(f64::min)),
    );
    out.insert("reader_mb_per_s_median".into(), num(median(&per_reader)));
    Ok(out)
}

/// Reads and discards until `end`; returns the bytes read inside the window.
async fn read_until(mut sock: TcpStream, start: Instant, end: Instant) -> usize {
    let mut buf = vec![0u8; 64 * 1024];
    let mut counted = 0;
    loop {
        let n = tokio::select! {
            r = sock.read(&mut buf) => match r {
                Ok(0) | Err(_) => return counted,
                Ok(n) => n,
            },
            _ = tokio::time::sleep_until(end) => return counted,
        };
        let now = Instant::now();
        if now >= start && now < end {
            counted += n;
        }
    }
}
