//! What the churn counted and what failed, and how an upload is known.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::Value;
use tokio::time::Instant;

/// Counters and failures shared by every churn task.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) requests: AtomicU64,
    pub(crate) ws_commands: AtomicU64,
    pub(crate) viewers: AtomicU64,
    pub(crate) frames: AtomicU64,
    pub(crate) sse_connects: AtomicU64,
    pub(crate) sse_events: AtomicU64,
    pub(crate) snaps_made: AtomicU64,
    pub(crate) snaps_deleted: AtomicU64,
    pub(crate) snaps_read: AtomicU64,
    pub(crate) clips_read: AtomicU64,
    pub(crate) config_changes: AtomicU64,
    pub(crate) failures: Mutex<Vec<String>>,
    pub(crate) failure_count: AtomicU64,
    /// Upload keys of the events the monitor saw that lookout queues.
    pub(crate) expected: Mutex<HashSet<String>>,
    /// Stored events by kind, as the monitor saw them.
    pub(crate) kinds: Mutex<BTreeMap<String, u64>>,
    /// Snapshots made by commands: (list path, file name).
    pub(crate) made: Mutex<Vec<(String, String)>>,
    pub(crate) started: Option<Instant>,
}

impl Tally {
    pub(crate) fn fail(&self, what: impl Into<String>) {
        let what = what.into();
        let n = self.failure_count.fetch_add(1, Ordering::SeqCst);
        let t = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        if n < 30 {
            eprintln!("soak: FAIL at {t:.0} s: {what}");
        }
        if let Ok(mut f) = self.failures.lock() {
            if f.len() < 30 {
                f.push(format!("{t:.0} s: {what}"));
            }
        }
    }
    pub(crate) fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// How an upload is known: uploads carry no id of their own, and the event
/// JSON in them has no event id, so it is the event's camera and what it
/// names (the snapshot of a motion or a manual snapshot, the clip's file),
/// else its time; not its kind, which a manual snapshot's upload lacks.
pub(crate) fn upload_key(data: &Value) -> String {
    let camera = data.get("camera").and_then(Value::as_str).unwrap_or("-");
    let what = ["snapshot", "url", "name"]
        .iter()
        .find_map(|k| data.get(*k).and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| data.get("ts").map_or_else(String::new, Value::to_string));
    format!("{camera}|{what}")
}

/// Whether lookout queues an upload for this stored event (with
/// `--upload-on-manual --upload-clips`): every motion start, every manual
/// snapshot, every clip saved.
pub(crate) fn queues_upload(kind: &str, data: &Value) -> bool {
    match kind {
        "motion" => true,
        "snapshot" => data.get("trigger").and_then(Value::as_str) == Some("manual"),
        "clip" => data.get("ok").and_then(Value::as_bool) == Some(true),
        _ => false,
    }
}
