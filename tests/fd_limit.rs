//! File-descriptor exhaustion, against the real binary under a low open-file
//! limit: a flood of connections, far more than the limit, while two viewers
//! watch. lookout must shed the extra connections (close them at once),
//! neither die nor spin on the CPU, keep the viewers' frames coming, and
//! answer new requests once the flood is gone.

use crate::common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{decode_jpeg, wait_until, Binary, MjpegClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A deadline for each state waited for; generous for a slow, busy machine.
const WAIT: Duration = Duration::from_secs(30);

/// The open-file limit lookout runs under: 64 connections after its reserve.
const NOFILE: u64 = 128;

/// Connections the flood opens: three times the limit.
const FLOOD: usize = 3 * NOFILE as usize;

/// CPU time (user and system) of process `pid` so far, from
/// `/proc/PID/stat`, in clock ticks (USER_HZ, 100 a second on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // The command name may hold spaces; the fields after it do not.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15, the 12th and 13th after comm.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// A viewer that counts the frames it receives, in the background.
fn watch(mut viewer: MjpegClient) -> Arc<AtomicU64> {
    let frames = Arc::new(AtomicU64::new(0));
    let counter = frames.clone();
    tokio::spawn(async move {
        while let Some(part) = viewer.next_part().await {
            decode_jpeg(&part.body);
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    frames
}

/// Whether the server closed `conn` (its read ends) within `limit`.
async fn closed_by_server(conn: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(limit, conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A reply (a 503, say) then the close.
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_past_the_open_file_limit_is_shed_and_viewers_keep_watching() {
    lookout::install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut bin = Binary::spawn_with_nofile(
        NOFILE,
        &[
            "--listen",
            "127.0.0.1:0",
            "--source",
            "synthetic:?size=160x120&fps=10&motion=never",
            "--header-timeout",
            "2",
        ],
        dir.path(),
    );
    let base = bin.wait_for_url("http").await;
    let (mut child, log) = bin.collect();
    let pid = child.id().expect("running");
    let addr = base.trim_start_matches("http://").to_string();
    let client = reqwest::Client::new();
    wait_until(WAIT, || async {
        client
            .get(format!("{base}/snapshot.jpg"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let viewers = [
        watch(MjpegClient::connect(&format!("{base}/stream.jpg")).await),
        watch(MjpegClient::connect(&format!("{base}/stream.jpg")).await),
    ];
    wait_until(WAIT, || async {
        viewers.iter().all(|v| v.load(Ordering::SeqCst) >= 2)
    })
    .await;

    // The flood: idle sockets, and some that send a request and keep the
    // connection, three times the open-file limit.
    let cpu_before = cpu_ticks(pid);
    let flood_started = Instant::now();
    let mut flood = Vec::new();
    for i in 0..FLOOD {
        let connect = tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(&addr));
        if let Ok(Ok(mut conn)) = connect.await {
            if i % 4 == 0 {
                let _ = conn
                    .write_all(b"GET /status HTTP/1.1\r\nHost: cam\r\n\r\n")
                    .await;
            }
            flood.push(conn);
        }
    }
    eprintln!(
        "{} of {FLOOD} flood connections made; lookout holds {} descriptors",
        flood.len(),
        open_fds(pid)
    );
    assert!(open_fds(pid) as u64 <= NOFILE);

    // Shed: most of the flood is closed by the server at once.
    let mut shed = 0;
    for conn in &mut flood {
        if closed_by_server(conn, Duration::from_millis(20)).await {
            shed += 1;
        }
    }
    assert!(
        shed >= FLOOD / 2,
        "{shed} of {FLOOD} flood connections shed"
    );
    // Said in the log, with a count, not once per refused connection.
    let said = log.wait_for(0, "connection limit reached", WAIT).await;
    assert!(said.contains("refused"), "{said}");

    // Meanwhile the viewers' frames keep coming.
    let counts: Vec<u64> = viewers.iter().map(|v| v.load(Ordering::SeqCst)).collect();
    wait_until(WAIT, || async {
        viewers
            .iter()
            .zip(&counts)
            .all(|(v, before)| v.load(Ordering::SeqCst) >= before + 5)
    })
    .await;

    // No spinning: well under one core busy through the flood (a busy
    // accept loop would use a whole core).
    let wall = flood_started.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid) - cpu_before) as f64 / 100.0;
    eprintln!("during the flood: {cpu:.2} s of CPU in {wall:.2} s");
    assert!(cpu < 0.5 * wall, "{cpu:.2} s of CPU in {wall:.2} s");
    assert!(child.try_wait().expect("status").is_none(), "lookout runs");

    // The flood ends: new requests and viewers are served again.
    drop(flood);
    wait_until(WAIT, || async {
        client
            .get(format!("{base}/status"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let mut fresh = MjpegClient::connect(&format!("{base}/stream.jpg")).await;
    let part = tokio::time::timeout(WAIT, fresh.next_part())
        .await
        .expect("a frame for a new viewer")
        .expect("stream open");
    decode_jpeg(&part.body);
    let counts: Vec<u64> = viewers.iter().map(|v| v.load(Ordering::SeqCst)).collect();
    wait_until(WAIT, || async {
        viewers
            .iter()
            .zip(&counts)
            .all(|(v, before)| v.load(Ordering::SeqCst) > *before)
    })
    .await;
    assert!(child.try_wait().expect("status").is_none(), "lookout runs");
    let lines = log.count("connection limit reached");
    assert!(lines <= 3, "{lines} log lines about refused connections");
}
