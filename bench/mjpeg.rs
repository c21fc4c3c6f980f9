//! MJPEG viewers: N clients reading a `multipart/x-mixed-replace` stream, and
//! optionally one stalled client that connects and never reads.
//!
//! A part is counted when its last byte arrives: at `Content-Length` bytes when
//! the part says how long it is (lookout, motion), else when the body ends in a
//! JPEG end-of-image marker (the seed sends no length), else at the next
//! boundary. Latency (the frame's age at arrival) is the wall clock when the
//! read that brought the part's last byte returned, minus the part's
//! `X-Timestamp` (the capture time: lookout's, and the seed's in the bench's
//! copy); a server without it gets inter-arrival jitter only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::{json, Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use crate::stats::{median, num, percentile, stddev, unix_now};
use crate::Server;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The stream, e.g. http://127.0.0.1:8080/stream.jpg; repeat for several
    /// streams read at once (several cameras of one server), each by
    /// `--viewers` viewers in the same window, with figures per stream in
    /// `per_url` besides the totals.
    #[arg(long = "url", required = true)]
    urls: Vec<String>,
    /// Concurrent viewers (of each `--url`).
    #[arg(long, default_value_t = 1)]
    viewers: usize,
    /// Length of the measured window.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Time for every viewer to connect before the window opens.
    #[arg(long, default_value_t = 2.0)]
    ramp: f64,
    /// Also open one viewer that connects and reads nothing (one per `--url`).
    #[arg(long)]
    stalled: bool,
    #[command(flatten)]
    server: Server,
}

/// One multipart part, complete.
pub(crate) struct Part {
    pub(crate) jpeg: Bytes,
    pub(crate) timestamp: Option<f64>,
}

/// Splits a multipart byte stream into parts.
pub(crate) struct Splitter {
    buf: BytesMut,
    /// `--` + boundary.
    marker: Vec<u8>,
    /// Inside a part: its declared length and timestamp.
    body: Option<(Option<usize>, Option<f64>)>,
    /// Where the search for the next boundary resumes (no-length parts).
    scan_from: usize,
}

impl Splitter {
    pub(crate) fn new(boundary: &str) -> Self {
        Splitter {
            buf: BytesMut::with_capacity(256 * 1024),
            marker: format!("--{boundary}").into_bytes(),
            body: None,
            scan_from: 0,
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete part, if the buffer holds one.
    pub(crate) fn next_part(&mut self) -> Option<Part> {
        loop {
            match self.body {
                None => {
                    let at = find(&self.buf, &self.marker, 0)?;
                    let head_start = at + self.marker.len();
                    let head_end = find(&self.buf, b"\r\n\r\n", head_start)?;
                    let head = String::from_utf8_lossy(&self.buf[head_start..head_end]);
                    let mut len = None;
                    let mut ts = None;
                    for line in head.lines() {
                        if let Some((k, v)) = line.split_once(':') {
                            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                            if k == "content-length" {
                                len = v.parse().ok();
                            } else if k == "x-timestamp" {
                                ts = v.parse().ok();
                            }
                        }
                    }
                    self.buf.advance(head_end + 4);
                    self.body = Some((len, ts));
                    self.scan_from = 0;
                }
                Some((Some(len), ts)) => {
                    if self.buf.len() < len {
                        return None;
                    }
                    let jpeg = self.buf.split_to(len).freeze();
                    self.body = None;
                    return Some(Part {
                        jpeg,
                        timestamp: ts,
                    });
                }
                Some((None, ts)) => {
                    // A JPEG ends in FFD9 (never inside entropy-coded data), so a
                    // part can be closed without waiting for the next boundary.
                    let b = &self.buf[..];
                    let end = if b.ends_with(&[0xFF, 0xD9]) {
                        Some(b.len())
                    } else if b.ends_with(&[0xFF, 0xD9, b'\r', b'\n']) {
                        Some(b.len() - 2)
                    } else {
                        find(b, &self.marker, self.scan_from).map(|at| {
                            let mut end = at;
                            while end > 0 && matches!(b[end - 1], b'\r' | b'\n') {
                                end -= 1;
                            }
                            end
                        })
                    };
                    let Some(end) = end else {
                        self.scan_from = self.buf.len().saturating_sub(self.marker.len());
                        return None;
                    };
                    let jpeg = self.buf.split_to(end).freeze();
                    self.body = None;
                    return Some(Part {
                        jpeg,
                        timestamp: ts,
                    });
                }
            }
        }
    }
}

/// The first `needle` in `hay` at or after `from`. SIMD (memchr), because
/// a part without `Content-Length` is scanned byte by byte for the boundary:
/// a naive search made the load generator spend twice the CPU per byte on
/// such streams and skewed the comparison against the servers that send them.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= hay.len() || needle.is_empty() {
        return None;
    }
    memchr::memmem::find(&hay[from..], needle).map(|at| from + at)
}

/// The boundary named by a Content-Type header.
fn boundary_of(content_type: &str) -> anyhow::Result<String> {
    let b = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .ok_or_else(|| anyhow!("no boundary in Content-Type {content_type:?}"))?;
    let b = b.trim_matches('"');
    Ok(b.strip_prefix("--").unwrap_or(b).to_string())
}

/// Opens the stream; returns the response and its boundary.
async fn open(client: &reqwest::Client, url: &str) -> anyhow::Result<(reqwest::Response, String)> {
    let resp = client.get(url).send().await.context("connect")?;
    if !resp.status().is_success() {
        bail!("{url}: HTTP {}", resp.status());
    }
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Ok((resp, boundary_of(&ct)?))
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(0)
        .build()
        .expect("http client")
}

/// What one viewer saw inside the window.
#[derive(Default)]
struct ViewerStats {
    frames: usize,
    bytes: usize,
    latencies_ms: Vec<f64>,
    gaps_ms: Vec<f64>,
    error: Option<String>,
}

async fn viewer(client: reqwest::Client, url: String, start: Instant, end: Instant) -> ViewerStats {
    let mut st = ViewerStats::default();
    if let Err(e) = view(&client, &url, start, end, &mut st).await {
        st.error = Some(format!("{e:#}"));
    }
    st
}

async fn view(
    client: &reqwest::Client,
    url: &str,
    start: Instant,
    end: Instant,
    st: &mut ViewerStats,
) -> anyhow::Result<()> {
    let (resp, boundary) = open(client, url).await?;
    let mut splitter = Splitter::new(&boundary);
    let mut body = resp.bytes_stream();
    let mut last: Option<Instant> = None;
    loop {
        let chunk = tokio::select! {
            c = body.next() => c,
            _ = tokio::time::sleep_until(end) => return Ok(()),
        };
        let chunk = match chunk {
            Some(c) => c.context("read")?,
            None => bail!("server ended the stream"),
        };
        // One reading of each clock per read: every part this chunk completes
        // had its last byte arrive now.
        let now = Instant::now();
        let now_unix = unix_now();
        let in_window = now >= start && now < end;
        if in_window {
            st.bytes += chunk.len();
        }
        splitter.push(&chunk);
        while let Some(part) = splitter.next_part() {
            if !in_window {
                continue;
            }
            st.frames += 1;
            if let Some(ts) = part.timestamp {
                st.latencies_ms.push((now_unix - ts) * 1000.0);
            }
            if let Some(prev) = last {
                st.gaps_ms
                    .push(now.duration_since(prev).as_secs_f64() * 1000.0);
            }
            last = Some(now);
        }
    }
}

/// A viewer that sends its request and never reads: a tiny receive buffer
/// makes the server's socket back up at once.
async fn stalled(url: &str) -> anyhow::Result<tokio::net::TcpStream> {
    let u = url::Url::parse(url)?;
    let addr = u
        .socket_addrs(|| Some(80))?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("no address for {url}"))?;
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    sock.set_recv_buffer_size(4096)?;
    let mut s = sock.connect(addr).await?;
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    let host = u.host_str().unwrap_or("localhost");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    Ok(s)
}

/// Whether the server still holds the stalled connection open (it may drop a
/// viewer that stops reading; both are fine, spinning on it is not).
fn still_open(s: &tokio::net::TcpStream) -> bool {
    let mut b = [0u8; 1];
    match s.try_read(&mut b) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    }
}

/// Figures over a set of viewers: fps (min, median, max over the viewers),
/// MB/s, latency, gaps and jitter, errors.
fn summarize<'a>(
    out: &mut Map<String, Value>,
    seconds: f64,
    stats: impl IntoIterator<Item = &'a ViewerStats>,
) {
    let mut fps = Vec::new();
    let (mut bytes, mut lat, mut gaps, mut errors) = (0usize, Vec::new(), Vec::new(), Vec::new());
    for st in stats {
        fps.push(st.frames as f64 / seconds);
        bytes += st.bytes;
        lat.extend_from_slice(&st.latencies_ms);
        gaps.extend_from_slice(&st.gaps_ms);
        if let Some(e) = &st.error {
            errors.push(e);
        }
    }
    out.insert("fps_min".into(), num(fps.iter().copied().reduce(f64::min)));
    out.insert("fps_median".into(), num(median(&fps)));
    out.insert("fps_max".into(), num(fps.iter().copied().reduce(f64::max)));
    out.insert("mb_per_s".into(), num(Some(bytes as f64 / 1e6 / seconds)));
    out.insert("latency_ms_p50".into(), num(percentile(&lat, 0.5)));
    out.insert("latency_ms_p99".into(), num(percentile(&lat, 0.99)));
    out.insert("latency_n".into(), json!(lat.len()));
    out.insert("gap_ms_p50".into(), num(percentile(&gaps, 0.5)));
    out.insert("gap_ms_p99".into(), num(percentile(&gaps, 0.99)));
    out.insert("jitter_ms".into(), num(stddev(&gaps)));
    out.insert("errors".into(), json!(errors.len()));
    if let Some(e) = errors.first() {
        out.insert("first_error".into(), json!(e));
    }
}

pub(crate) async fn run(a: Args) -> anyhow::Result<Map<String, Value>> {
    let client = client();
    let mut stalled_conns = Vec::new();
    if a.stalled {
        for url in &a.urls {
            stalled_conns.push(stalled(url).await.context("stalled viewer")?);
        }
    }
    let start = Instant::now() + Duration::from_secs_f64(a.ramp);
    let end = start + Duration::from_secs_f64(a.seconds);
    // Viewers of each URL, in the order of the URLs.
    let tasks: Vec<Vec<_>> = a
        .urls
        .iter()
        .map(|url| {
            (0..a.viewers)
                .map(|_| tokio::spawn(viewer(client.clone(), url.clone(), start, end)))
                .collect()
        })
        .collect();
    tokio::time::sleep_until(start).await;
    let sample = a.server.start();
    // The load generator's own CPU over the window: at high viewer counts it
    // needs most of the machine, and what it cannot read stays queued.
    let me = std::process::id();
    let my_start = crate::procstat::cpu_ticks(me);
    tokio::time::sleep_until(end).await;
    let my_end = crate::procstat::cpu_ticks(me);
    let mut out = Map::new();
    a.server.finish(sample, &mut out);
    if let (Some(t0), Some(t1)) = (my_start, my_end) {
        let per_s = t1.saturating_sub(t0) as f64 / a.server.clk_tck.max(1) as f64 / a.seconds;
        out.insert("client_cpu_s_per_s".into(), num(Some(per_s)));
    }
    let mut stats: Vec<Vec<ViewerStats>> = Vec::new();
    for ts in tasks {
        let mut one = Vec::new();
        for t in ts {
            one.push(t.await.unwrap_or_else(|e| ViewerStats {
                error: Some(e.to_string()),
                ..Default::default()
            }));
        }
        stats.push(one);
    }
    out.insert("mode".into(), json!("mjpeg"));
    out.insert("viewers".into(), json!(a.viewers));
    out.insert("seconds".into(), json!(a.seconds));
    summarize(&mut out, a.seconds, stats.iter().flatten());
    if !stalled_conns.is_empty() {
        out.insert(
            "stalled_still_open".into(),
            json!(stalled_conns.iter().all(still_open)),
        );
    }
    if a.urls.len() > 1 {
        out.insert("urls".into(), json!(a.urls.len()));
        let per_url = a
            .urls
            .iter()
            .zip(&stats)
            .map(|(url, st)| {
                let mut one = Map::new();
                one.insert("url".into(), json!(url));
                summarize(&mut one, a.seconds, st);
                Value::Object(one)
            })
            .collect();
        out.insert("per_url".into(), Value::Array(per_url));
    }
    Ok(out)
}

#[derive(Debug, clap::Args)]
pub(crate) struct FramesArgs {
    /// The stream to record.
    #[arg(long)]
    url: String,
    /// How long to record (one full cycle of the source, or more).
    #[arg(long, default_value_t = 25.0)]
    seconds: f64,
    /// Folder for NNNN.jpg (each distinct picture once) and sequence.txt.
    #[arg(long)]
    out: PathBuf,
}

/// Records the distinct JPEGs of a stream and the order they came in, so a
/// peer can replay exactly the same pictures at the same rate.
pub(crate) async fn frames(a: FramesArgs) -> anyhow::Result<Map<String, Value>> {
    std::fs::create_dir_all(&a.out)?;
    let (resp, boundary) = open(&client(), &a.url).await?;
    let mut splitter = Splitter::new(&boundary);
    let mut body = resp.bytes_stream();
    let end = Instant::now() + Duration::from_secs_f64(a.seconds);
    let mut names: HashMap<Bytes, String> = HashMap::new();
    let mut sequence = Vec::new();
    let mut total_bytes = 0usize;
    loop {
        let chunk = tokio::select! {
            c = body.next() => c,
            _ = tokio::time::sleep_until(end) => break,
        };
        let chunk = chunk
            .ok_or_else(|| anyhow!("stream ended"))?
            .context("read")?;
        splitter.push(&chunk);
        while let Some(part) = splitter.next_part() {
            total_bytes += part.jpeg.len();
            let next = names.len();
            let name = names
                .entry(part.jpeg.clone())
                .or_insert_with(|| format!("{next:04}.jpg"))
                .clone();
            if names.len() > next {
                std::fs::write(a.out.join(&name), &part.jpeg)?;
            }
            sequence.push(name);
        }
    }
    if sequence.is_empty() {
        bail!("no frame in {} s", a.seconds);
    }
    std::fs::write(a.out.join("sequence.txt"), sequence.join("\n") + "\n")?;
    let mut out = Map::new();
    out.insert("mode".into(), json!("frames"));
    out.insert("frames".into(), json!(sequence.len()));
    out.insert("distinct".into(), json!(names.len()));
    out.insert("fps".into(), num(Some(sequence.len() as f64 / a.seconds)));
    out.insert(
        "mean_kb".into(),
        num(Some(total_bytes as f64 / sequence.len() as f64 / 1024.0)),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_parts_with_and_without_length() {
        let mut s = Splitter::new("frame");
        s.push(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 4\r\nX-Timestamp: 12.5\r\n\r\nab\xff\xd9\r\n--frame\r\nContent-Type: image/jpeg\r\n\r\nxy\xff\xd9\r\n");
        let p = s.next_part().unwrap();
        assert_eq!((&p.jpeg[..], p.timestamp), (&b"ab\xff\xd9"[..], Some(12.5)));
        let p = s.next_part().unwrap();
        assert_eq!(&p.jpeg[..], b"xy\xff\xd9");
        assert!(s.next_part().is_none());
    }
}
