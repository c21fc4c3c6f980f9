//! The server's own cost, read from `/proc`: CPU time (utime + stime of every
//! thread, which `/proc/<pid>/stat` of the leader sums) and peak RSS (`VmHWM`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::stats::num;
use crate::Server;

/// A CPU-time reading at one moment.
pub(crate) struct Sample {
    ticks: u64,
    at: Instant,
    /// Highest VmRSS seen by a 100 ms poll during the window (kB).
    peak_kb: Arc<AtomicU64>,
    poller: tokio::task::JoinHandle<()>,
}

/// How often RSS is read during a window (VmHWM only says "since start").
const RSS_POLL: Duration = Duration::from_millis(100);

pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields restart after its ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0], so utime (14) and stime (15) are 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn status_kb(pid: u32, key: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

impl Server {
    /// Starts a window (nothing when no pid was given).
    pub(crate) fn start(&self) -> Option<Sample> {
        let pid = self.pid?;
        let ticks = cpu_ticks(pid)?;
        let peak_kb = Arc::new(AtomicU64::new(0));
        let peak = peak_kb.clone();
        let poller = tokio::spawn(async move {
            loop {
                if let Some(kb) = status_kb(pid, "VmRSS:") {
                    peak.fetch_max(kb as u64, Ordering::Relaxed);
                }
                tokio::time::sleep(RSS_POLL).await;
            }
        });
        Some(Sample {
            ticks,
            at: Instant::now(),
            peak_kb,
            poller,
        })
    }

    /// Ends a window started by [`Server::start`] and adds `cpu_s_per_s`,
    /// `rss_window_peak_mb` (highest VmRSS polled in the window), `rss_hwm_mb`
    /// (VmHWM: the peak since the server started) and `rss_mb` (now).
    pub(crate) fn finish(&self, start: Option<Sample>, out: &mut Map<String, Value>) {
        let (Some(pid), Some(start)) = (self.pid, start) else {
            return;
        };
        let elapsed = start.at.elapsed().as_secs_f64();
        start.poller.abort();
        if let Some(kb) = status_kb(pid, "VmRSS:") {
            start.peak_kb.fetch_max(kb as u64, Ordering::Relaxed);
        }
        let window_peak = start.peak_kb.load(Ordering::Relaxed) as f64 / 1024.0;
        out.insert("rss_window_peak_mb".into(), num(Some(window_peak)));
        let cpu = cpu_ticks(pid)
            .map(|t| t.saturating_sub(start.ticks) as f64 / self.clk_tck.max(1) as f64 / elapsed);
        out.insert("cpu_s_per_s".into(), num(cpu));
        out.insert(
            "rss_hwm_mb".into(),
            num(status_kb(pid, "VmHWM:").map(|k| k / 1024.0)),
        );
        out.insert(
            "rss_mb".into(),
            num(status_kb(pid, "VmRSS:").map(|k| k / 1024.0)),
        );
    }
}
