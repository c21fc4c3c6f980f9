//! The durable upload queue on disk: `pending/` and `failed/`.
//!
//! An item is `<seq>-<kind>.json` (its [`ItemMeta`]) plus, for frames,
//! `<seq>-frame.jpg`. Every file is written under a `.tmp-*` name, synced,
//! renamed, and the folder synced; the JSON is renamed last, so it marks a
//! complete item. This module only moves files; the worker in `mod.rs`
//! decides what to move, and calls these outside its lock (an fsync may
//! take a while on an SD card, and `/status` must not wait for one).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::UploadError;
use crate::durable::{sync_dir, TempFiles};

/// Prefix of temporary files; [`Queue::scan`] removes them, since only a
/// crash mid-write leaves one behind.
const TMP_PREFIX: &str = ".tmp-";

/// Version of the item file format, so a later lookout can read old queues.
const ITEM_VERSION: u64 = 1;

/// The two kinds of items, each with its own receiver and backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Lane {
    /// A JPEG plus event for `url`.
    Frame,
    /// The event JSON alone for `webhook_url`.
    Event,
}

impl Lane {
    pub(crate) const ALL: [Lane; 2] = [Lane::Frame, Lane::Event];

    /// The `<kind>` in file names and events.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Lane::Frame => "frame",
            Lane::Event => "event",
        }
    }

    fn from_str(s: &str) -> Option<Lane> {
        match s {
            "frame" => Some(Lane::Frame),
            "event" => Some(Lane::Event),
            _ => None,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Lane::Frame => 0,
            Lane::Event => 1,
        }
    }
}

/// The `<seq>-<kind>.json` file: what is sent, and what the index needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ItemMeta {
    /// Format version ([`ITEM_VERSION`]).
    pub v: u64,
    /// Which lane.
    pub kind: Lane,
    /// When it was queued, Unix seconds (for `max_age`).
    pub created: f64,
    /// `frame-<ts>.jpg`, the name shown in events and to the receiver.
    #[serde(default)]
    pub file: String,
    /// The event JSON that is sent.
    #[serde(default)]
    pub event: Value,
    /// The clip's name, when the item carries one (`<seq>-frame.mkv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<String>,
}

impl ItemMeta {
    /// A new item's metadata.
    pub(crate) fn new(kind: Lane, created: f64, file: &str, event: &Value) -> ItemMeta {
        ItemMeta {
            v: ITEM_VERSION,
            kind,
            created,
            file: file.to_string(),
            event: event.clone(),
            clip: None,
        }
    }
}

/// What the worker knows about a pending item without reading it.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub lane: Lane,
    /// When it was queued, Unix seconds (for `max_age`).
    pub created: f64,
    /// `frame-<ts>.jpg`, the name shown in events and to the receiver.
    pub file: String,
    /// Bytes on disk (both files), for the queue bound.
    pub bytes: u64,
}

/// The two folders.
#[derive(Debug)]
pub(crate) struct Queue {
    pending: PathBuf,
    failed: PathBuf,
    tmp: TempFiles,
}

impl Queue {
    /// Creates `<data-dir>/uploads/{pending,failed}` as needed. Blocking.
    pub(crate) fn open(data_dir: &Path) -> Result<Queue, UploadError> {
        let root = data_dir.join("uploads");
        let pending = root.join("pending");
        let queue = Queue {
            tmp: TempFiles::new(&pending, TMP_PREFIX),
            pending,
            failed: root.join("failed"),
        };
        for dir in [&queue.pending, &queue.failed] {
            crate::datadir::create_dir(dir)
                .map_err(|e| UploadError::io(format!("cannot create {}", dir.display()), e))?;
        }
        Ok(queue)
    }

    /// Writes one item, clip and JPEG first and JSON last; returns its
    /// bytes on disk. On failure nothing of it is left under a final name.
    /// The clip (already synced, in the same data directory) is hard-linked,
    /// not copied; another file system gets a synced copy. Blocking.
    pub(crate) fn write(
        &self,
        seq: u64,
        meta: &ItemMeta,
        jpeg: Option<&[u8]>,
        clip: Option<&Path>,
    ) -> io::Result<u64> {
        let json = serde_json::to_vec(meta).map_err(io::Error::other)?;
        let mut bytes = json.len() as u64;
        let cleanup = |seq| {
            for name in [jpg_name(seq), clip_name(seq)] {
                let _ = fs::remove_file(self.pending.join(name));
            }
        };
        if let Some(clip) = clip {
            bytes += self.link_clip(seq, clip)?;
        }
        if let Some(jpeg) = jpeg {
            if let Err(e) = self.write_atomic(&jpg_name(seq), jpeg) {
                cleanup(seq);
                return Err(e);
            }
            bytes += jpeg.len() as u64;
        }
        if let Err(e) = self.write_atomic(&json_name(seq, meta.kind), &json) {
            cleanup(seq);
            return Err(e);
        }
        Ok(bytes)
    }

    /// Puts the clip at `pending/<seq>-frame.mkv`; returns its size.
    fn link_clip(&self, seq: u64, clip: &Path) -> io::Result<u64> {
        let to = self.pending.join(clip_name(seq));
        if fs::hard_link(clip, &to).is_err() {
            let data = fs::read(clip)?;
            let tmp = self.tmp.write(&data)?;
            if let Err(e) = fs::rename(&tmp, &to) {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        }
        sync_dir(&self.pending)?;
        Ok(fs::metadata(&to)?.len())
    }

    /// Where an item's clip is.
    pub(crate) fn clip_path(&self, seq: u64) -> PathBuf {
        self.pending.join(clip_name(seq))
    }

    /// The item's metadata. Async: the worker reads it before each attempt.
    pub(crate) async fn read_meta(&self, seq: u64, lane: Lane) -> Result<ItemMeta, String> {
        let raw = tokio::fs::read(self.pending.join(json_name(seq, lane)))
            .await
            .map_err(|e| format!("queued item unreadable: {e}"))?;
        serde_json::from_slice(&raw).map_err(|e| format!("queued item corrupt: {e}"))
    }

    /// The frame's JPEG.
    pub(crate) async fn read_jpeg(&self, seq: u64) -> Result<Vec<u8>, String> {
        tokio::fs::read(self.pending.join(jpg_name(seq)))
            .await
            .map_err(|e| format!("queued frame unreadable: {e}"))
    }

    /// Deletes an item (sent, dropped or expired). Blocking.
    pub(crate) fn remove(&self, seq: u64, lane: Lane) {
        // JSON first: without it the item no longer exists, and a leftover
        // JPEG is an orphan that the next scan removes.
        let _ = fs::remove_file(self.pending.join(json_name(seq, lane)));
        if lane == Lane::Frame {
            let _ = fs::remove_file(self.pending.join(jpg_name(seq)));
            let _ = fs::remove_file(self.pending.join(clip_name(seq)));
        }
        let _ = sync_dir(&self.pending);
    }

    /// Moves an item's files to `failed/` (JPEG first, so `pending/` never
    /// holds a JSON without its JPEG). Returns whether it worked; if not, the
    /// files stay in `pending/` and come back at the next open, which is
    /// better than losing them. Blocking.
    pub(crate) fn move_to_failed(&self, seq: u64, lane: Lane) -> bool {
        let mut names = Vec::new();
        if lane == Lane::Frame {
            names.push(clip_name(seq));
            names.push(jpg_name(seq));
        }
        names.push(json_name(seq, lane));
        let mut ok = true;
        for name in names {
            match fs::rename(self.pending.join(&name), self.failed.join(&name)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::error!("cannot move {name} to uploads/failed: {e}");
                    ok = false;
                }
            }
        }
        let _ = sync_dir(&self.failed);
        let _ = sync_dir(&self.pending);
        ok
    }

    /// Reads `pending/`: removes temp files and JPEGs without their JSON (both
    /// only left by a crash mid-write), moves unreadable items to `failed/`,
    /// and returns the index plus the highest sequence number seen in either
    /// folder (so a new item never reuses a name `failed/` holds). Blocking.
    pub(crate) fn scan(&self) -> Result<(BTreeMap<u64, Item>, u64), UploadError> {
        let pending = &self.pending;
        let entries = fs::read_dir(pending)
            .map_err(|e| UploadError::io(format!("cannot list {}", pending.display()), e))?;
        let mut jsons = BTreeMap::new();
        let mut jpgs = BTreeMap::new();
        let mut clips = BTreeMap::new();
        let mut max = 0;
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            if name.starts_with(TMP_PREFIX) {
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let Some((seq, lane, ext)) = parse_name(&name) else {
                continue;
            };
            max = max.max(seq);
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            match (lane, ext) {
                (_, "json") => {
                    jsons.insert(seq, (lane, size));
                }
                (Lane::Frame, "jpg") => {
                    jpgs.insert(seq, size);
                }
                (Lane::Frame, "mkv") => {
                    clips.insert(seq, size);
                }
                _ => {}
            }
        }
        let mut items = BTreeMap::new();
        for (seq, (lane, size)) in jsons {
            let jpg = jpgs.remove(&seq);
            let clip = clips.remove(&seq);
            let path = pending.join(json_name(seq, lane));
            let meta = fs::read(&path)
                .ok()
                .and_then(|m| serde_json::from_slice::<ItemMeta>(&m).ok());
            let complete = |m: &ItemMeta| {
                m.kind == lane
                    && (lane == Lane::Event || jpg.is_some())
                    && (m.clip.is_none() || clip.is_some())
            };
            let Some(meta) = meta.filter(complete) else {
                tracing::error!(
                    "queued upload {} is incomplete; moved to uploads/failed",
                    path.display()
                );
                for name in [json_name(seq, lane), jpg_name(seq), clip_name(seq)] {
                    let _ = fs::rename(pending.join(&name), self.failed.join(&name));
                }
                continue;
            };
            items.insert(
                seq,
                Item {
                    lane,
                    created: meta.created,
                    file: meta.file,
                    bytes: size + jpg.unwrap_or(0) + clip.unwrap_or(0),
                },
            );
        }
        // A JPEG or clip whose JSON was never renamed in: enqueue had not
        // returned.
        for seq in jpgs.keys() {
            let _ = fs::remove_file(pending.join(jpg_name(*seq)));
        }
        for seq in clips.keys() {
            let _ = fs::remove_file(pending.join(clip_name(*seq)));
        }
        let _ = sync_dir(pending);
        Ok((items, max.max(max_seq_in(&self.failed))))
    }

    /// Writes `data` to `pending/<name>` so that the name never holds a
    /// partial file: synced temp file, rename, synced folder.
    fn write_atomic(&self, name: &str, data: &[u8]) -> io::Result<()> {
        let tmp = self.tmp.write(data)?;
        if let Err(e) = fs::rename(&tmp, self.pending.join(name)) {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        sync_dir(&self.pending)
    }
}

fn json_name(seq: u64, lane: Lane) -> String {
    format!("{seq:020}-{}.json", lane.as_str())
}

fn jpg_name(seq: u64) -> String {
    format!("{seq:020}-frame.jpg")
}

fn clip_name(seq: u64) -> String {
    format!("{seq:020}-frame.mkv")
}

/// Parses `<seq>-<kind>.<ext>`.
fn parse_name(name: &str) -> Option<(u64, Lane, &str)> {
    let (stem, ext) = name.rsplit_once('.')?;
    let (seq, kind) = stem.split_once('-')?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((seq.parse().ok()?, Lane::from_str(kind)?, ext))
}

/// The highest sequence number in a folder.
fn max_seq_in(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| parse_name(n).map(|p| p.0))
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        assert_eq!(
            parse_name(&json_name(7, Lane::Event)),
            Some((7, Lane::Event, "json"))
        );
        assert_eq!(parse_name(&jpg_name(12)), Some((12, Lane::Frame, "jpg")));
        assert!(json_name(9, Lane::Frame) < json_name(10, Lane::Frame));
        assert_eq!(parse_name(".tmp-1-2"), None);
        assert_eq!(parse_name("+1-frame.json"), None);
        assert_eq!(parse_name("1-other.json"), None);
    }

    #[test]
    fn metadata_keeps_its_wire_format() {
        let meta = ItemMeta::new(
            Lane::Frame,
            1.5,
            "frame-1.jpg",
            &serde_json::json!({"ts": 1}),
        );
        let json: Value = serde_json::to_value(&meta).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"v": 1, "kind": "frame", "created": 1.5, "file": "frame-1.jpg", "event": {"ts": 1}})
        );
    }
}
