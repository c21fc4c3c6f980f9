//! Event clips: what happened around a motion episode, as a file per clip in
//! one folder per camera, `<data-dir>/clips/<camera>/`.
//!
//! A clip is recorded by the [`recorder`] as `.rec-motion-<ms>.mkv` (hidden:
//! never listed or served) and gets its real name `motion-<ms>.mkv` only
//! when it is finished and synced, so a half-written file is never listed.
//! A `.rec-` file found at start is what a crash left: it is finished with
//! the frames that reached the disk ([`mkv::finish_partial`]) or removed.
//!
//! A camera that sends H.264/H.265 (RTSP) gets `motion-<ms>.mp4` clips
//! instead: its own stream, fragmented while recorded ([`mp4file`]), cut
//! after its last whole fragment when a crash left it
//! ([`mp4file::finish_partial`]). A camera of JPEGs keeps Matroska clips of
//! them ([`mkv`]).
//!
//! Names carry the unix milliseconds of the motion start. Within a folder
//! they only increase, even when the wall clock jumps back, so the order of
//! names is the order of recording.
//!
//! The folder is a [`crate::shelf`], as snapshot folders are: the
//! order, the paging cursor and retention are the shelf's.
//!
//! All functions block (std::fs); async callers run them with
//! `spawn_blocking`.

pub mod continuous;
mod error;
pub mod gops;
pub mod mkv;
pub mod mp4file;
pub mod recorder;
pub mod segments;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

pub use crate::shelf::Retention;
use crate::shelf::{expired, unix_ms, Naming, Shelf, Stamp};
use crate::thumbs::Thumbs;
pub use error::ClipError;
use segments::Segments;

/// Prefix of a clip being recorded.
const REC_PREFIX: &str = ".rec-";
/// Clips listed in one page at most.
pub const MAX_PAGE: usize = 500;

/// One clip as shown to clients.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClipInfo {
    /// File name, e.g. `motion-1764033000123.mkv`.
    pub name: String,
    /// Where it is served: `<prefix>/clips/<name>`.
    pub url: String,
    /// Its thumbnail.
    pub thumb: String,
    /// When its first frame was taken, unix seconds.
    pub start_ts: f64,
    /// Its length in seconds.
    pub duration_s: f64,
    /// How many frames it holds.
    pub frames: u64,
    /// Size of the file.
    pub bytes: u64,
    /// What started it (always `motion` for now).
    pub trigger: crate::snaps::Trigger,
}

/// The two kinds of clip file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Matroska of the camera's JPEGs (`.mkv`).
    Mkv,
    /// Fragmented MP4 of the camera's own H.264/H.265 (`.mp4`).
    Mp4,
}

impl Kind {
    /// The file name's extension, dot included.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Mkv => ".mkv",
            Kind::Mp4 => ".mp4",
        }
    }

    /// The kind of a clip's file name.
    pub fn of(name: &str) -> Kind {
        if name.ends_with(".mp4") {
            Kind::Mp4
        } else {
            Kind::Mkv
        }
    }

    /// Its MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Kind::Mkv => "video/x-matroska",
            Kind::Mp4 => "video/mp4",
        }
    }
}

/// How the shelf reads clip names.
const NAMING: Naming = Naming {
    noun: "clip",
    valid: valid_name,
    stamp: stamp_of,
};

/// What a finished clip holds, read once from its file.
#[derive(Debug, Clone, Copy)]
struct Summary {
    start_ts: f64,
    duration_s: f64,
    frames: u64,
    bytes: u64,
}

/// The clip folder of one camera.
#[derive(Debug)]
pub struct Clips {
    /// The folder, and how it is listed.
    shelf: Shelf,
    /// Where the files are served (`/clips`, or `/cams/NAME/clips`).
    url_prefix: String,
    /// The last name's milliseconds: the next is always later.
    last_ms: Mutex<u64>,
    /// What each listed clip holds (its file never changes under its name).
    summaries: Mutex<HashMap<String, Summary>>,
    /// Their thumbnails, in `.thumbs/`.
    thumbs: Thumbs,
    /// The continuous recording's segments, in `continuous/`: they share
    /// the clips' bytes.
    segments: Segments,
}

/// What retention removed.
#[derive(Debug, Default, PartialEq)]
pub struct Removed {
    /// Clips, newest first.
    pub clips: Vec<String>,
    /// Continuous segments, oldest first.
    pub segments: Vec<String>,
}

impl Clips {
    /// Opens the folder `dir`, creating it when missing, and finishes or
    /// removes the clips a crash left unfinished.
    pub fn open(dir: PathBuf, url_prefix: String) -> Result<Clips, ClipError> {
        crate::datadir::create_dir(&dir).map_err(|err| {
            ClipError::io(format!("cannot create clip folder {}", dir.display()), err)
        })?;
        // `/clips` beside `/recordings`, `/cams/NAME/clips` beside
        // `/cams/NAME/recordings`.
        let base = url_prefix.strip_suffix("/clips").unwrap_or(&url_prefix);
        let segments = Segments::open(dir.join("continuous"), format!("{base}/recordings"))?;
        let clips = Clips {
            segments,
            thumbs: Thumbs::new(&dir),
            shelf: Shelf::new(dir, NAMING),
            url_prefix,
            last_ms: Mutex::new(0),
            summaries: Mutex::new(HashMap::new()),
        };
        clips.recover()?;
        let newest = clips.shelf.scan()?.first().map_or(0, |i| i.stamp.ms);
        *crate::sync::lock(&clips.last_ms) = newest;
        Ok(clips)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        self.shelf.dir()
    }

    /// The URL of clip `name`.
    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.url_prefix)
    }

    /// A new clip name of `kind` for a motion start at `at`: later than
    /// every name given before, whatever the wall clock says.
    pub fn allocate(&self, at: SystemTime, kind: Kind) -> String {
        let mut last = crate::sync::lock(&self.last_ms);
        let ms = unix_ms(at).max(*last + 1);
        *last = ms;
        format!("motion-{ms}{}", kind.extension())
    }

    /// Creates the hidden file a clip is recorded into.
    pub fn create(&self, name: &str) -> Result<File, ClipError> {
        self.shelf.check(name)?;
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(crate::datadir::FILE_MODE)
            .open(self.rec_path(name))
            .map_err(|err| ClipError::io(format!("cannot create clip {name}"), err))
    }

    /// Gives a finished (synced) clip its name; never replaces a file.
    pub fn publish(&self, name: &str) -> Result<ClipInfo, ClipError> {
        let rec = self.rec_path(name);
        let fail = |err| ClipError::io(format!("cannot save clip {name}"), err);
        fs::hard_link(&rec, self.dir().join(name)).map_err(fail)?;
        let _ = fs::remove_file(&rec);
        self.shelf.sync();
        self.info(name)
    }

    /// Removes a clip that failed while being recorded (and a thumbnail
    /// saved for it).
    pub fn discard(&self, name: &str) {
        let _ = fs::remove_file(self.rec_path(name));
        let _ = self.thumbs.remove(name);
    }

    fn rec_path(&self, name: &str) -> PathBuf {
        self.dir().join(format!("{REC_PREFIX}{name}"))
    }

    /// Finishes each `.rec-` file with the frames that reached the disk, or
    /// removes it when none did.
    fn recover(&self) -> Result<(), ClipError> {
        let entries = fs::read_dir(self.dir()).map_err(|err| {
            ClipError::io(
                format!("cannot list clips in {}", self.dir().display()),
                err,
            )
        })?;
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str().and_then(|n| n.strip_prefix(REC_PREFIX)) else {
                continue;
            };
            let rec = entry.path();
            let done = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&rec)
                .map_err(|e| e.to_string())
                .and_then(|f| finish_partial(&f, Kind::of(name)));
            match done {
                Ok((frames, length))
                    if valid_name(name) && fs::hard_link(&rec, self.dir().join(name)).is_ok() =>
                {
                    let _ = fs::remove_file(&rec);
                    tracing::warn!(
                        "clip {name} was cut short by an unclean stop: kept its {frames} \
                         frame(s) ({:.1} s)",
                        length.as_secs_f64()
                    );
                }
                other => {
                    let why = match other {
                        Err(e) => e,
                        Ok(_) => "cannot give it its name".to_string(),
                    };
                    let _ = fs::remove_file(&rec);
                    if valid_name(name) {
                        let _ = self.thumbs.remove(name);
                    }
                    tracing::warn!("removed clip {name} left unfinished by an unclean stop: {why}");
                }
            }
        }
        self.shelf.sync();
        Ok(())
    }

    /// Lists up to `limit` clips, newest first; with `before`, only older ones.
    pub fn list(&self, limit: usize, before: Option<&str>) -> Result<Vec<ClipInfo>, ClipError> {
        Ok(self
            .shelf
            .after(before)?
            .filter_map(|item| match self.info(&item.name) {
                Ok(info) => Some(info),
                // Deleted meanwhile: not a clip any more.
                Err(ClipError::NotFound(_)) => None,
                Err(e) => {
                    tracing::warn!("{e}");
                    None
                }
            })
            .take(limit)
            .collect())
    }

    /// One clip's listing entry.
    pub fn info(&self, name: &str) -> Result<ClipInfo, ClipError> {
        let summary = self.summary(name)?;
        Ok(ClipInfo {
            name: name.to_string(),
            url: self.url(name),
            thumb: format!("{}/thumb", self.url(name)),
            start_ts: summary.start_ts,
            duration_s: summary.duration_s,
            frames: summary.frames,
            bytes: summary.bytes,
            trigger: crate::snaps::Trigger::Motion,
        })
    }

    fn summary(&self, name: &str) -> Result<Summary, ClipError> {
        if let Some(s) = crate::sync::lock(&self.summaries).get(name) {
            return Ok(*s);
        }
        let (start, length, frames) = match Kind::of(name) {
            Kind::Mkv => {
                let scanned = self.index(name)?;
                let length = scanned.duration();
                (scanned.start, length, scanned.frames.len() as u64)
            }
            Kind::Mp4 => {
                let scanned = self.scan_mp4(name)?;
                (scanned.start, scanned.duration, scanned.frames)
            }
        };
        let bytes = fs::metadata(self.dir().join(name)).map_or(0, |m| m.len());
        let start = start.map_or_else(
            || ms_of(name).unwrap_or(0) as f64 / 1000.0,
            crate::frame::unix_secs,
        );
        let s = Summary {
            start_ts: (start * 1000.0).round() / 1000.0,
            duration_s: (length.as_secs_f64() * 10.0).round() / 10.0,
            frames,
            bytes,
        };
        crate::sync::lock(&self.summaries).insert(name.to_string(), s);
        Ok(s)
    }

    /// The path of clip `name`, checked.
    pub fn path(&self, name: &str) -> Result<PathBuf, ClipError> {
        self.shelf.check(name)?;
        let path = self.dir().join(name);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => Ok(path),
            Ok(_) => Err(ClipError::NotFound(name.to_string())),
            Err(err) if err.kind() == ErrorKind::NotFound => {
                Err(ClipError::NotFound(name.to_string()))
            }
            Err(err) => Err(ClipError::io(format!("cannot read clip {name}"), err)),
        }
    }

    /// Where each frame of clip `name` is in its file (for the player of
    /// Matroska clips; an MP4 clip is played as it is).
    pub fn index(&self, name: &str) -> Result<mkv::Scanned, ClipError> {
        let file = self.open_clip(name)?;
        if Kind::of(name) == Kind::Mp4 {
            return Err(ClipError::NoIndex(name.to_string()));
        }
        mkv::scan(&file).map_err(|err| ClipError::Unreadable {
            name: name.to_string(),
            err,
        })
    }

    /// What the MP4 clip `name` holds.
    fn scan_mp4(&self, name: &str) -> Result<mp4file::Scanned, ClipError> {
        let file = self.open_clip(name)?;
        mp4file::scan(&file).map_err(|err| ClipError::UnreadableMp4 {
            name: name.to_string(),
            err,
        })
    }

    fn open_clip(&self, name: &str) -> Result<File, ClipError> {
        let path = self.path(name)?;
        File::open(&path).map_err(|err| match err.kind() {
            ErrorKind::NotFound => ClipError::NotFound(name.to_string()),
            _ => ClipError::io(format!("cannot read clip {name}"), err),
        })
    }

    /// Deletes one clip, and its thumbnail.
    pub fn delete(&self, name: &str) -> Result<(), ClipError> {
        self.shelf.delete(name)?;
        self.forget(name);
        Ok(())
    }

    /// Drops what is kept beside a deleted clip: its summary and thumbnail.
    fn forget(&self, name: &str) {
        crate::sync::lock(&self.summaries).remove(name);
        if let Err(e) = self.thumbs.remove(name) {
            tracing::warn!("cannot remove the thumbnail of clip {name}: {e}");
        }
    }

    /// The thumbnails of this folder's clips.
    pub fn thumbs(&self) -> &Thumbs {
        &self.thumbs
    }

    /// Makes and stores the thumbnail of clip `name` from `jpeg` (the frame
    /// where the motion scored highest). A failure is only logged: the next
    /// request makes one from the clip.
    pub fn save_thumb(&self, name: &str, jpeg: &[u8]) {
        if let Err(e) = self.thumbs.make_and_save(name, jpeg) {
            tracing::warn!("no thumbnail for clip {name} yet: {e}");
        }
    }

    /// The thumbnail of clip `name`; for a clip without one (recovered
    /// after a crash, or whose thumbnail failed), made now from its middle
    /// frame and stored.
    pub fn thumb(&self, name: &str) -> Result<Vec<u8>, ClipError> {
        let path = self.path(name)?;
        let thumb_error = |err| ClipError::Thumb {
            name: name.to_string(),
            err,
        };
        let stored = self.thumbs.path(name).map_err(thumb_error)?;
        if let Ok(jpeg) = fs::read(&stored) {
            return Ok(jpeg);
        }
        if Kind::of(name) == Kind::Mp4 {
            // Its pictures would need a decoder: the recorder saves its
            // thumbnail when the clip starts.
            return Err(ClipError::NotFound(name.to_string()));
        }
        let scanned = self.index(name)?;
        let Some(frame) = scanned.frames.get(scanned.frames.len() / 2) else {
            return Err(ClipError::NotFound(name.to_string()));
        };
        let read = || -> io::Result<Vec<u8>> {
            let file = File::open(&path)?;
            let mut jpeg = vec![0u8; frame.len as usize];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut jpeg, frame.offset)?;
            Ok(jpeg)
        };
        let jpeg = read().map_err(|err| ClipError::io(format!("cannot read clip {name}"), err))?;
        self.thumbs.make_and_save(name, &jpeg).map_err(thumb_error)
    }

    /// The continuous recording's segments.
    pub fn segments(&self) -> &Segments {
        &self.segments
    }

    /// Applies the retention of the pool of clips and segments: every
    /// segment older than `segments_max_age` and every clip older than
    /// `retention`'s age go; then, while the pool is over `retention`'s
    /// bytes, the oldest segments go first and the oldest clips after them
    /// (the newest clip stays whatever the count and bytes). The count
    /// limit is the clips'.
    pub fn enforce(
        &self,
        retention: Retention,
        segments_max_age: std::time::Duration,
    ) -> Result<Removed, ClipError> {
        let segments = self.segments.scan()?;
        let clip_bytes = self.shelf.usage()?.1;
        // The segments' own plan, with the clips' bytes counted in.
        let plan = Retention {
            max_count: usize::MAX,
            max_bytes: retention.max_bytes.saturating_sub(clip_bytes),
            max_age: segments_max_age,
        };
        let doomed = match segments.first() {
            // `expired` keeps one file for the bytes: none is kept here.
            Some(_) => expired(&segments, plan, "", unix_ms(SystemTime::now())),
            None => Vec::new(),
        };
        let left: u64 = segments.iter().map(|i| i.bytes).sum::<u64>()
            - doomed.iter().map(|i| i.bytes).sum::<u64>();
        let removed_segments = self.segments.remove(&doomed)?;
        let clips = Retention {
            max_bytes: retention.max_bytes.saturating_sub(left),
            ..retention
        };
        let mut removed = self.shelf.enforce(clips, None, |gone| self.forget(gone))?;
        removed.reverse();
        Ok(Removed {
            clips: removed,
            segments: removed_segments,
        })
    }

    /// How many clips there are and their bytes.
    pub fn usage(&self) -> Result<(usize, u64), ClipError> {
        Ok(self.shelf.usage()?)
    }
}

/// A camera's retention of clips and segments from its settings: the
/// pool's (count, bytes, the clips' age) and the segments' age, as
/// [`Clips::enforce`] takes them.
pub fn retention(s: &crate::settings::Settings) -> (Retention, std::time::Duration) {
    let day = |days: u32| std::time::Duration::from_secs(u64::from(days) * 86_400);
    (
        Retention {
            max_count: s.max_clips as usize,
            max_bytes: u64::from(s.max_clips_mb) * 1024 * 1024,
            max_age: day(s.clips_max_age_days),
        },
        day(s.recordings_max_age_days),
    )
}

/// Whether `name` is a clip name lookout writes: `motion-<ms>.mkv` or
/// `motion-<ms>.mp4`.
pub fn valid_name(name: &str) -> bool {
    ms_of(name).is_some()
}

/// Finishes a clip file a crash left: returns its frames and length, or why
/// it cannot be kept.
fn finish_partial(file: &File, kind: Kind) -> Result<(u64, std::time::Duration), String> {
    match kind {
        Kind::Mkv => mkv::finish_partial(file)
            .map(|s| (s.frames.len() as u64, s.duration()))
            .map_err(|e| e.to_string()),
        Kind::Mp4 => mp4file::finish_partial(file)
            .map(|s| (s.frames, s.duration))
            .map_err(|e| e.to_string()),
    }
}

/// The milliseconds in a clip name.
fn ms_of(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("motion-")?;
    let digits = rest
        .strip_suffix(".mkv")
        .or_else(|| rest.strip_suffix(".mp4"))?;
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The stamp of a clip name: its milliseconds (a clip name has no suffix).
fn stamp_of(name: &str) -> Option<Stamp> {
    ms_of(name).map(|ms| Stamp { ms, n: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    fn record(clips: &Clips, at: SystemTime, frames: u64) -> String {
        let name = clips.allocate(at, Kind::Mkv);
        let file = clips.create(&name).unwrap();
        let mut w = mkv::Writer::new(file, 16, 16, 10, at).unwrap();
        for i in 0..frames {
            w.write_frame(i * 100, &[0xFF, 0xD8, i as u8, 0xFF, 0xD9])
                .unwrap();
        }
        w.finish().unwrap();
        clips.publish(&name).unwrap();
        name
    }

    #[test]
    fn names_only_increase_when_the_clock_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let clips = Clips::open(dir.path().join("c"), "/clips".into()).unwrap();
        let now = SystemTime::now();
        let a = clips.allocate(now, Kind::Mkv);
        let b = clips.allocate(now - Duration::from_secs(3600), Kind::Mp4);
        assert!(ms_of(&b) > ms_of(&a));
        assert!(valid_name(&a) && !valid_name("../x.mkv") && !valid_name(".rec-motion-1.mkv"));
        assert!(b.ends_with(".mp4") && valid_name(&b) && !valid_name("motion-1.mp4.mkv"));
    }

    #[test]
    fn list_pages_newest_first_and_retention_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let clips = Clips::open(dir.path().join("c"), "/cams/y/clips".into()).unwrap();
        let t0 = SystemTime::now() - Duration::from_secs(9 * 86_400 + 43_200);
        let names: Vec<String> = (0..4)
            .map(|i| record(&clips, t0 + Duration::from_secs(i * 86_400), 5 + i))
            .collect();
        let all = clips.list(10, None).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].name, names[3]);
        assert_eq!(all[0].frames, 8);
        assert_eq!(all[0].duration_s, 0.8);
        assert_eq!(all[0].url, format!("/cams/y/clips/{}", names[3]));
        let page = clips.list(2, Some(&names[2])).unwrap();
        assert_eq!(
            page.iter().map(|c| &c.name).collect::<Vec<_>>(),
            [&names[1], &names[0]]
        );
        let removed = clips
            .enforce(
                Retention {
                    max_count: 3,
                    max_bytes: u64::MAX,
                    max_age: Duration::from_secs(8 * 86_400),
                },
                Duration::MAX,
            )
            .unwrap()
            .clips;
        // One for the count, one more for its age (8.5 days).
        assert_eq!(removed, vec![names[1].clone(), names[0].clone()]);
        assert_eq!(clips.usage().unwrap().0, 2);
    }

    /// A segment of `frames` frames whose first arrived at `at`.
    fn segment(clips: &Clips, at: SystemTime, frames: i64) -> String {
        let track = crate::video::test_track();
        let (start, file) = clips.segments().create(at).unwrap();
        let mut w = mp4file::Writer::new(file, &track).unwrap();
        for i in 0..frames {
            w.write(&crate::video::Packet {
                data: bytes::Bytes::from([0, 0, 0, 200, 0x65].repeat(40)),
                keyframe: i == 0,
                pts: i * 9000,
                received: std::time::Instant::now(),
                received_at: at,
            })
            .unwrap();
        }
        w.finish().unwrap();
        clips.segments().publish(start).unwrap().unwrap().name
    }

    #[test]
    fn segments_share_the_clips_bytes_and_go_first_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let clips = Clips::open(dir.path().join("c"), "/cams/y/clips".into()).unwrap();
        let now = SystemTime::now();
        let hours = |h: u64| now - Duration::from_secs(h * 3600);
        // Clips older than every segment: bytes still take segments first.
        let old_clip = record(&clips, hours(50), 5);
        let new_clip = record(&clips, hours(49), 5);
        let segs: Vec<String> = (0..4).map(|i| segment(&clips, hours(30 - i), 10)).collect();
        assert!(clips.segments().path(&segs[0]).is_ok());
        let all = clips.segments().between(0, u64::MAX).unwrap();
        assert_eq!(all[0].url, format!("/cams/y/recordings/{}", segs[0]));
        let seg_bytes = all[0].bytes;
        let (_, clip_bytes) = clips.usage().unwrap();
        let pool = |max_bytes: u64| Retention {
            max_count: 100,
            max_bytes,
            max_age: Duration::from_secs(30 * 86_400),
        };
        let week = Duration::from_secs(7 * 86_400);
        // Room for everything: nothing goes.
        let total = clip_bytes + 4 * seg_bytes;
        assert_eq!(
            clips.enforce(pool(total), week).unwrap(),
            Removed::default()
        );
        // One byte over: the oldest segment.
        let removed = clips.enforce(pool(total - 1), week).unwrap();
        assert_eq!(removed.segments, [segs[0].clone()]);
        assert!(removed.clips.is_empty());
        // Room for the clips only: every segment, then no clip.
        let removed = clips.enforce(pool(clip_bytes), week).unwrap();
        assert_eq!(removed.segments, segs[1..].to_vec());
        assert!(removed.clips.is_empty());
        // Less: the oldest clip; the newest stays whatever the bytes.
        segment(&clips, hours(1), 10);
        let removed = clips.enforce(pool(1), week).unwrap();
        assert_eq!(removed.clips, [old_clip]);
        assert_eq!(removed.segments.len(), 1);
        assert_eq!(clips.list(10, None).unwrap()[0].name, new_clip);
        // Age: a day's limit takes a segment of 30 hours, not a clip (a new
        // folder: starts only increase in one).
        let dir = tempfile::tempdir().unwrap();
        let clips = Clips::open(dir.path().join("c"), "/clips".into()).unwrap();
        record(&clips, hours(40), 5);
        let old = segment(&clips, hours(30), 10);
        let young = segment(&clips, hours(2), 10);
        let removed = clips
            .enforce(pool(u64::MAX), Duration::from_secs(86_400))
            .unwrap();
        assert_eq!(removed.segments, [old]);
        assert!(removed.clips.is_empty());
        assert_eq!(
            clips.segments().between(0, u64::MAX).unwrap()[0].name,
            young
        );
    }

    #[test]
    fn a_clip_left_by_a_crash_is_finished_or_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("c");
        let clips = Clips::open(folder.clone(), "/clips".into()).unwrap();
        let name = clips.allocate(SystemTime::now(), Kind::Mkv);
        let file = clips.create(&name).unwrap();
        let mut w = mkv::Writer::new(file, 16, 16, 10, SystemTime::now()).unwrap();
        for i in 0..12u64 {
            w.write_frame(i * 100, &[0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9])
                .unwrap();
        }
        drop(w);
        // Half a block more, as if killed mid-write.
        let mut f = OpenOptions::new()
            .append(true)
            .open(folder.join(format!(".rec-{name}")))
            .unwrap();
        f.write_all(&[0xA3, 0x90, 0x81, 0, 0]).unwrap();
        let empty = clips.allocate(SystemTime::now(), Kind::Mkv);
        clips.create(&empty).unwrap();
        assert!(
            clips.list(10, None).unwrap().is_empty(),
            "never listed while recorded"
        );
        drop(clips);
        let clips = Clips::open(folder.clone(), "/clips".into()).unwrap();
        let listed = clips.list(10, None).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, name);
        assert_eq!(listed[0].frames, 12);
        let left: Vec<_> = fs::read_dir(&folder)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn an_mp4_clip_left_by_a_crash_is_cut_after_its_last_fragment() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("c");
        let clips = Clips::open(folder.clone(), "/clips".into()).unwrap();
        let track = crate::video::test_track();
        let name = clips.allocate(SystemTime::now(), Kind::Mp4);
        let mut w = mp4file::Writer::new(clips.create(&name).unwrap(), &track).unwrap();
        for i in 0..8i64 {
            w.write(&crate::video::Packet {
                data: bytes::Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
                keyframe: i == 0,
                pts: i * 9000,
                received: std::time::Instant::now(),
                received_at: SystemTime::now(),
            })
            .unwrap();
        }
        drop(w);
        // Half a fragment more, as if killed mid-write.
        let mut f = OpenOptions::new()
            .append(true)
            .open(folder.join(format!(".rec-{name}")))
            .unwrap();
        f.write_all(&[0, 0, 0, 32, b'p', b'r', b'f', b't', 1])
            .unwrap();
        // An MP4 with only its init segment: nothing to keep.
        let empty = clips.allocate(SystemTime::now(), Kind::Mp4);
        mp4file::Writer::new(clips.create(&empty).unwrap(), &track).unwrap();
        drop(clips);
        let clips = Clips::open(folder.clone(), "/clips".into()).unwrap();
        let listed = clips.list(10, None).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, name);
        assert_eq!(listed[0].frames, 8);
        assert!(matches!(clips.index(&name), Err(ClipError::NoIndex(_))));
        let left: Vec<_> = fs::read_dir(&folder)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }
}
