//! The durable upload queue on disk: `pending/` and `failed/`.
//!
//! An item is `<seq>-<kind>.json` (its [`ItemMeta`]) plus, for frames,
//! `<seq>-frame.jpg`, and for a clip `<seq>-frame.mkv` or `<seq>-frame.mp4`:
//! the clip's own extension, which its JSON names (`clip`), so a scan knows
//! which file completes an item. Every file is written under a `.tmp-*`
//! name, synced, renamed, and the folder synced; the JSON is renamed last,
//! so it marks a complete item. This module only moves files; the worker in
//! `mod.rs` decides what to move, and calls these outside its lock (an
//! fsync may take a while on an SD card, and `/status` must not wait for
//! one).

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::UploadError;
use crate::clips::Kind;
use crate::durable::{sync_dir, TempFiles};

/// Prefix of temporary files; [`Queue::scan`] removes them, since only a
/// crash mid-write leaves one behind.
const TMP_PREFIX: &str = ".tmp-";

/// Version of the item file format, so a later lookout can read old queues.
const ITEM_VERSION: u64 = 1;

/// Every kind of clip a queue may hold: Matroska (also every clip an older
/// lookout queued) and MP4. Files of both are found, sent and removed.
const CLIP_KINDS: [Kind; 2] = [Kind::Mkv, Kind::Mp4];

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
    /// `frame-<ts>.jpg` (`motion-<ms>.jpg` beside a clip), the name shown
    /// in events and to the receiver.
    #[serde(default)]
    pub file: String,
    /// The event JSON that is sent.
    #[serde(default)]
    pub event: Value,
    /// The clip's own name, when the item carries one (`motion-<ms>.mkv`
    /// or `.mp4`): the name the receiver gets, and whose extension the
    /// queued file `<seq>-frame.<ext>` has.
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

    /// The kind of the item's clip, if it has one.
    fn clip_kind(&self) -> Option<Kind> {
        self.clip.as_deref().map(Kind::of)
    }
}

/// What the worker knows about a pending item without reading it.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub lane: Lane,
    /// When it was queued, Unix seconds (for `max_age`).
    pub created: f64,
    /// `frame-<ts>.jpg` (`motion-<ms>.jpg` beside a clip), the name shown
    /// in events and to the receiver.
    pub file: String,
    /// Bytes on disk (all its files), for the queue bound.
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
    /// not copied; another file system gets a synced copy. Its queued name
    /// keeps the extension of `meta.clip`, which must be given with it.
    /// Blocking.
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
            let _ = fs::remove_file(self.pending.join(jpg_name(seq)));
            for kind in CLIP_KINDS {
                let _ = fs::remove_file(self.pending.join(clip_name(seq, kind)));
            }
        };
        match (clip, meta.clip_kind()) {
            (Some(clip), Some(kind)) => match self.link_clip(seq, clip, kind) {
                Ok(size) => bytes += size,
                Err(e) => {
                    cleanup(seq);
                    return Err(e);
                }
            },
            (None, None) => {}
            _ => {
                return Err(io::Error::new(
                    ErrorKind::InvalidInput,
                    "a queued clip needs both its file and its name",
                ))
            }
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

    /// Puts the clip at `pending/<seq>-frame.<ext>`; returns its size.
    fn link_clip(&self, seq: u64, clip: &Path, kind: Kind) -> io::Result<u64> {
        let to = self.pending.join(clip_name(seq, kind));
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

    /// Where an item's clip is, from the clip's own name (`ItemMeta::clip`).
    pub(crate) fn clip_path(&self, seq: u64, name: &str) -> PathBuf {
        self.pending.join(clip_name(seq, Kind::of(name)))
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
        // JPEG or clip is an orphan that the next scan removes.
        let _ = fs::remove_file(self.pending.join(json_name(seq, lane)));
        if lane == Lane::Frame {
            for name in frame_files(seq) {
                let _ = fs::remove_file(self.pending.join(name));
            }
        }
        let _ = sync_dir(&self.pending);
    }

    /// Moves an item's files to `failed/` (clip and JPEG first, so
    /// `pending/` never holds a JSON without its files). Returns whether it
    /// worked; if not, the files stay in `pending/` and come back at the next
    /// open, which is better than losing them. Blocking.
    pub(crate) fn move_to_failed(&self, seq: u64, lane: Lane) -> bool {
        let mut names = Vec::new();
        if lane == Lane::Frame {
            names.extend(frame_files(seq));
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

    /// Reads `pending/`: removes temp files and JPEGs or clips without their
    /// JSON (only left by a crash mid-write), moves unreadable or incomplete
    /// items to `failed/` (a JSON whose clip, of the extension it names, is
    /// missing), and returns the index plus the highest sequence number seen
    /// in either folder (so a new item never reuses a name `failed/` holds).
    /// Blocking.
    pub(crate) fn scan(&self) -> Result<(BTreeMap<u64, Item>, u64), UploadError> {
        let pending = &self.pending;
        let entries = fs::read_dir(pending)
            .map_err(|e| UploadError::io(format!("cannot list {}", pending.display()), e))?;
        let mut jsons = BTreeMap::new();
        let mut jpgs = BTreeMap::new();
        let mut clips: BTreeMap<u64, Vec<(Kind, u64)>> = BTreeMap::new();
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
                (Lane::Frame, ext) => {
                    if let Some(kind) = clip_kind(ext) {
                        clips.entry(seq).or_default().push((kind, size));
                    }
                }
                _ => {}
            }
        }
        let mut items = BTreeMap::new();
        for (seq, (lane, size)) in jsons {
            let jpg = jpgs.remove(&seq);
            let mut files = clips.remove(&seq).unwrap_or_default();
            let path = pending.join(json_name(seq, lane));
            let meta = fs::read(&path)
                .ok()
                .and_then(|m| serde_json::from_slice::<ItemMeta>(&m).ok());
            // The clip file of the kind the JSON names; any other is a stray.
            let wanted = meta.as_ref().and_then(ItemMeta::clip_kind);
            let clip = wanted
                .and_then(|k| files.iter().position(|(kind, _)| *kind == k))
                .map(|i| files.swap_remove(i).1);
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
                let mut names = frame_files(seq);
                names.push(json_name(seq, lane));
                for name in names {
                    let _ = fs::rename(pending.join(&name), self.failed.join(&name));
                }
                continue;
            };
            for (kind, _) in files {
                let _ = fs::remove_file(pending.join(clip_name(seq, kind)));
            }
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
        for (seq, files) in clips {
            for (kind, _) in files {
                let _ = fs::remove_file(pending.join(clip_name(seq, kind)));
            }
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

fn clip_name(seq: u64, kind: Kind) -> String {
    format!("{seq:020}-frame{}", kind.extension())
}

/// A frame item's files but its JSON: every clip name it may have, then its
/// JPEG (the order a move to `failed/` takes).
fn frame_files(seq: u64) -> Vec<String> {
    let mut names: Vec<String> = CLIP_KINDS.iter().map(|k| clip_name(seq, *k)).collect();
    names.push(jpg_name(seq));
    names
}

/// The kind of clip a queued file's extension (`mkv`, without the dot)
/// stands for.
fn clip_kind(ext: &str) -> Option<Kind> {
    CLIP_KINDS
        .into_iter()
        .find(|k| k.extension().strip_prefix('.') == Some(ext))
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
        assert_eq!(clip_name(3, Kind::Mkv), "00000000000000000003-frame.mkv");
        assert_eq!(clip_name(3, Kind::Mp4), "00000000000000000003-frame.mp4");
        assert_eq!(
            parse_name(&clip_name(3, Kind::Mp4)),
            Some((3, Lane::Frame, "mp4"))
        );
        assert_eq!(clip_kind("mkv"), Some(Kind::Mkv));
        assert_eq!(clip_kind("mp4"), Some(Kind::Mp4));
        assert_eq!(clip_kind("jpg"), None);
        assert_eq!(clip_kind(".mp4"), None);
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

    /// A queue in a fresh data directory, and the directory.
    fn queue() -> (tempfile::TempDir, Queue) {
        let dir = tempfile::tempdir().unwrap();
        let queue = Queue::open(dir.path()).unwrap();
        (dir, queue)
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// A clip file named `name` in `dir`, holding `bytes` bytes.
    fn clip_file(dir: &Path, name: &str, bytes: usize) -> PathBuf {
        let clips = dir.join("clips");
        fs::create_dir_all(&clips).unwrap();
        let path = clips.join(name);
        fs::write(&path, vec![7u8; bytes]).unwrap();
        path
    }

    /// Writes item `seq` carrying the clip `name`.
    fn write_clip_item(dir: &Path, queue: &Queue, seq: u64, name: &str) -> u64 {
        let clip = clip_file(dir, name, 5000);
        let mut meta = ItemMeta::new(Lane::Frame, 1.0, "motion-1.jpg", &Value::Null);
        meta.clip = Some(name.to_string());
        queue.write(seq, &meta, Some(b"jpeg"), Some(&clip)).unwrap()
    }

    #[test]
    fn an_mp4_clip_is_queued_under_its_own_extension_and_removed_whole() {
        let (dir, queue) = queue();
        let bytes = write_clip_item(dir.path(), &queue, 4, "motion-1718000000250.mp4");
        let pending = dir.path().join("uploads/pending");
        assert_eq!(
            names_in(&pending),
            [
                "00000000000000000004-frame.jpg",
                "00000000000000000004-frame.json",
                "00000000000000000004-frame.mp4",
            ]
        );
        assert_eq!(
            queue.clip_path(4, "motion-1718000000250.mp4"),
            pending.join("00000000000000000004-frame.mp4")
        );
        let (items, max) = queue.scan().unwrap();
        assert_eq!(max, 4);
        assert_eq!(items[&4].bytes, bytes);
        assert!(bytes > 5000, "the clip counts toward the bound: {bytes}");
        assert_eq!(names_in(&pending).len(), 3, "a whole item stays");
        queue.remove(4, Lane::Frame);
        assert!(names_in(&pending).is_empty(), "{:?}", names_in(&pending));
    }

    #[test]
    fn a_clip_without_its_name_is_refused_and_leaves_nothing() {
        let (dir, queue) = queue();
        let clip = clip_file(dir.path(), "motion-1.mp4", 10);
        let meta = ItemMeta::new(Lane::Frame, 1.0, "motion-1.jpg", &Value::Null);
        let err = queue
            .write(1, &meta, Some(b"jpeg"), Some(&clip))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(names_in(&dir.path().join("uploads/pending")).is_empty());
    }

    #[test]
    fn an_older_lookouts_mkv_item_is_found_sent_from_and_removed() {
        let (dir, queue) = queue();
        let pending = dir.path().join("uploads/pending");
        // As an older lookout left it: the same JSON, the clip as `.mkv`.
        let json = r#"{"v":1,"kind":"frame","created":1.0,"file":"motion-5.jpg","event":{},"clip":"motion-5.mkv"}"#;
        fs::write(pending.join("00000000000000000002-frame.json"), json).unwrap();
        fs::write(pending.join("00000000000000000002-frame.jpg"), b"jpeg").unwrap();
        fs::write(pending.join("00000000000000000002-frame.mkv"), b"clip").unwrap();
        let (items, max) = queue.scan().unwrap();
        assert_eq!(max, 2);
        assert_eq!(items[&2].bytes, json.len() as u64 + 8);
        let clip = queue.clip_path(2, "motion-5.mkv");
        assert_eq!(fs::read(&clip).unwrap(), b"clip");
        queue.remove(2, Lane::Frame);
        assert!(names_in(&pending).is_empty(), "{:?}", names_in(&pending));
    }

    #[test]
    fn both_kinds_move_to_failed_whole() {
        let (dir, queue) = queue();
        write_clip_item(dir.path(), &queue, 1, "motion-1.mkv");
        write_clip_item(dir.path(), &queue, 2, "motion-2.mp4");
        assert!(queue.move_to_failed(1, Lane::Frame));
        assert!(queue.move_to_failed(2, Lane::Frame));
        assert!(names_in(&dir.path().join("uploads/pending")).is_empty());
        assert_eq!(
            names_in(&dir.path().join("uploads/failed")),
            [
                "00000000000000000001-frame.jpg",
                "00000000000000000001-frame.json",
                "00000000000000000001-frame.mkv",
                "00000000000000000002-frame.jpg",
                "00000000000000000002-frame.json",
                "00000000000000000002-frame.mp4",
            ]
        );
    }

    #[test]
    fn a_crash_mid_write_is_recovered_for_both_kinds() {
        let (dir, queue) = queue();
        let pending = dir.path().join("uploads/pending");
        let failed = dir.path().join("uploads/failed");
        let put = |name: &str| fs::write(pending.join(name), b"x").unwrap();
        // Whole items of both kinds, queued before the crash.
        write_clip_item(dir.path(), &queue, 1, "motion-1.mkv");
        write_clip_item(dir.path(), &queue, 2, "motion-2.mp4");
        // Enqueues the crash cut before their JSON: clip (and JPEG) alone.
        put("00000000000000000003-frame.mp4");
        put("00000000000000000003-frame.jpg");
        put("00000000000000000004-frame.mkv");
        put(".tmp-1-0");
        // A JSON naming an MP4 clip that is not there (only an `.mkv` is):
        // incomplete, kept in failed/ with every file of its number.
        let json = r#"{"v":1,"kind":"frame","created":1.0,"file":"motion-5.jpg","event":{},"clip":"motion-5.mp4"}"#;
        fs::write(pending.join("00000000000000000005-frame.json"), json).unwrap();
        put("00000000000000000005-frame.jpg");
        put("00000000000000000005-frame.mkv");
        // A whole MP4 item with a stray `.mkv` of its number beside it.
        write_clip_item(dir.path(), &queue, 6, "motion-6.mp4");
        put("00000000000000000006-frame.mkv");

        let (items, max) = queue.scan().unwrap();
        assert_eq!(items.keys().copied().collect::<Vec<_>>(), [1, 2, 6]);
        assert_eq!(max, 6);
        assert_eq!(
            names_in(&pending),
            [
                "00000000000000000001-frame.jpg",
                "00000000000000000001-frame.json",
                "00000000000000000001-frame.mkv",
                "00000000000000000002-frame.jpg",
                "00000000000000000002-frame.json",
                "00000000000000000002-frame.mp4",
                "00000000000000000006-frame.jpg",
                "00000000000000000006-frame.json",
                "00000000000000000006-frame.mp4",
            ]
        );
        assert_eq!(
            names_in(&failed),
            [
                "00000000000000000005-frame.jpg",
                "00000000000000000005-frame.json",
                "00000000000000000005-frame.mkv",
            ]
        );
        // The item kept in failed/ still holds its number: no reuse.
        for seq in [1, 2, 6] {
            queue.remove(seq, Lane::Frame);
        }
        let (items, max) = queue.scan().unwrap();
        assert!(items.is_empty());
        assert_eq!(max, 5);
    }
}
