//! The server's process sampled from `/proc`, and the thresholds that tell
//! growth from churn.

use std::path::Path;

use crate::tally::Tally;

/// The server's process, as `/proc` shows it.
#[derive(Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) t_s: f64,
    pub(crate) rss_mb: f64,
    pub(crate) fds: f64,
    pub(crate) threads: f64,
    pub(crate) data_mb: f64,
}

pub(crate) fn proc_sample(pid: u32, data: &Path, t_s: f64) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| -> Option<f64> {
        status
            .lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as f64;
    Some(Sample {
        t_s,
        rss_mb: field("VmRSS:")? / 1024.0,
        fds,
        threads: field("Threads:")?,
        data_mb: dir_bytes(data) as f64 / 1e6,
    })
}

/// Bytes under `dir`; files that vanish while it walks are skipped.
pub(crate) fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// Least-squares slope of `y` over `x`.
pub(crate) fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

/// RSS growth (MB, fitted over the samples after the warm-up) that fails the
/// run. A healthy lookout's RSS moves with what is in flight, not with time:
/// each camera's pre-roll (bounded, full after `clip_pre_s`), the clip
/// writer's queue, frames held by slow viewers, SQLite's page cache (2 MB per
/// connection) and the allocator keeping freed pages of its per-thread arenas
/// (glibc, up to 8 per core) for reuse; all of it is bounded and mostly there
/// by the end of the warm-up. Their swing over a run measures a few MB (the
/// README's bench: 33.6 MB idle, 33.7 MB with 10 viewers), so 16 MB is well
/// above it; a leak of a few hundred bytes per request, or one frame (~30 KB)
/// per viewer or per source restart, passes it within the hour of the
/// README's run. The fitted growth, not end minus start, so one sample taken
/// while a clip is being written does not decide.
pub(crate) const RSS_NOISE_MB: f64 = 16.0;

/// Fd growth (fitted over the samples after the warm-up) that fails the run.
/// The fds a healthy server holds are bounded by what is open at once: one
/// per connection the driver holds (`clients`: each churn task holds at most
/// one connection, or one pooled idle one), plus at most 24 of its own that
/// come and go (the exec camera's three pipes during a restart, the clip
/// being written and its folder, snapshot temp files, SQLite's WAL, the
/// upload in flight and the clip it streams). A quantity that only moves
/// within a band of width `b` fits a slope of at most 1.5 b over the window
/// (a step from the bottom to the top at the middle, the worst case), so a
/// fitted growth above that is not churn but fds that are never given back.
pub(crate) fn fd_noise(clients: usize) -> f64 {
    1.5 * (clients as f64 + 24.0)
}

/// RSS, fds, threads and the data directory fitted over the samples after
/// the warm-up.
pub(crate) struct Growth {
    /// Seconds of warm-up left out of the fit.
    pub(crate) warm: f64,
    /// Samples after the warm-up.
    pub(crate) after: usize,
    pub(crate) rss_slope: f64,
    pub(crate) fd_slope: f64,
    pub(crate) thr_slope: f64,
    pub(crate) data_slope: f64,
}

impl Growth {
    /// Fits `samples` of a churn of `churn_s` seconds with `clients`
    /// connections held by the driver, and fails the run on growth.
    pub(crate) fn assess(
        samples: &[Sample],
        churn_s: f64,
        clients: usize,
        tally: &Tally,
    ) -> Growth {
        // A fifth of the run, at least 30 s (the pre-roll fills, SQLite's
        // cache warms, the thread pool grows to what the churn needs), at
        // most 5 minutes.
        let warm = (churn_s / 5.0).clamp(30.0, 300.0);
        let after: Vec<Sample> = samples.iter().copied().filter(|s| s.t_s >= warm).collect();
        let window_min = match (after.first(), after.last()) {
            (Some(f), Some(l)) => (l.t_s - f.t_s) / 60.0,
            _ => 0.0,
        };
        let fit = |f: fn(&Sample) -> f64| {
            slope(
                &after
                    .iter()
                    .map(|s| (s.t_s / 60.0, f(s)))
                    .collect::<Vec<_>>(),
            )
        };
        let g = Growth {
            warm,
            after: after.len(),
            rss_slope: fit(|s| s.rss_mb),
            fd_slope: fit(|s| s.fds),
            thr_slope: fit(|s| s.threads),
            data_slope: fit(|s| s.data_mb),
        };
        if g.after < 3 {
            tally.fail(format!(
                "only {} sample(s) after the {warm:.0} s warm-up: run longer",
                g.after
            ));
        }
        let (rss_slope, fd_slope) = (g.rss_slope, g.fd_slope);
        if rss_slope * window_min > RSS_NOISE_MB {
            tally.fail(format!(
                "RSS grows: {rss_slope:.2} MB/min fitted after the warm-up, {:.1} MB over {window_min:.1} min (limit {RSS_NOISE_MB} MB)",
                rss_slope * window_min
            ));
        }
        if fd_slope * window_min > fd_noise(clients) {
            tally.fail(format!(
                "open fds grow: {fd_slope:.2}/min fitted after the warm-up, {:.0} over {window_min:.1} min (limit {:.0})",
                fd_slope * window_min,
                fd_noise(clients)
            ));
        }
        g
    }
}
