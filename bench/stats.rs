//! Small statistics over samples (milliseconds, fps) for the JSON output.

use serde_json::{Map, Value};

/// Nearest-rank percentile (`p` in 0..=1) of unsorted samples.
pub(crate) fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (p * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// Median (the lower one for an even count, like nearest-rank p50).
pub(crate) fn median(samples: &[f64]) -> Option<f64> {
    percentile(samples, 0.5)
}

/// Population standard deviation.
pub(crate) fn stddev(samples: &[f64]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    Some((samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt())
}

/// Rounds to 3 decimals for readable JSON; `None` becomes `null`.
pub(crate) fn num(x: Option<f64>) -> Value {
    match x {
        Some(x) if x.is_finite() => serde_json::json!((x * 1000.0).round() / 1000.0),
        _ => Value::Null,
    }
}

/// Inserts `<prefix>_p50`, `_p99`, `_max` (and `_n`) of `samples`.
pub(crate) fn summary(out: &mut Map<String, Value>, prefix: &str, samples: &[f64]) {
    out.insert(format!("{prefix}_p50"), num(percentile(samples, 0.5)));
    out.insert(format!("{prefix}_p99"), num(percentile(samples, 0.99)));
    out.insert(
        format!("{prefix}_max"),
        num(samples.iter().copied().reduce(f64::max)),
    );
    out.insert(format!("{prefix}_n"), serde_json::json!(samples.len()));
}

/// Now as Unix seconds.
pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
