//! Continuous recording's files: the camera's own stream cut into segments
//! of a few minutes, in `<clip folder>/continuous/`.
//!
//! A segment is recorded as `.rec-segment-<start ms>.mp4` (hidden) and named
//! `segment-<start ms>-<length ms>.mp4` once finished, so a listing of a
//! day reads names only, never the files: a day is up to 288 files of
//! thousands of fragments each. A `.rec-` file found at start is what a
//! crash left: it is cut after its last whole fragment and named, or
//! removed when no frame reached the disk (as clips are, see
//! [`super::mp4file::finish_partial`]).
//!
//! The start is the wall-clock time the first frame arrived; the frames
//! after it follow the camera's own timestamps. A segment never spans a
//! gap: lookout ends it when frames stop or were dropped, so "start plus
//! the player's time" is the time of day anywhere in it.
//!
//! All functions block (std::fs); async callers run them with
//! `spawn_blocking`.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::error::ClipError;
use super::mp4file;
use crate::shelf::{unix_ms, Item, Naming, Shelf, Stamp};

/// Prefix of a segment being recorded.
const REC_PREFIX: &str = ".rec-segment-";

/// How the shelf reads segment names.
const NAMING: Naming = Naming {
    noun: "recording",
    valid: valid_name,
    stamp: stamp_of,
};

/// One finished segment as shown to clients.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SegmentInfo {
    /// File name, e.g. `segment-1764033000123-300040.mp4`.
    pub name: String,
    /// Where it is served.
    pub url: String,
    /// When its first frame arrived, unix seconds.
    pub start_ts: f64,
    /// When it ends, unix seconds.
    pub end_ts: f64,
    /// Its length in seconds.
    pub duration_s: f64,
    /// Size of the file.
    pub bytes: u64,
}

/// The continuous segments of one camera.
#[derive(Debug)]
pub struct Segments {
    shelf: Shelf,
    /// Where the files are served (`/recordings` or `/cams/NAME/recordings`).
    url_prefix: String,
    /// The last start given: the next is always later.
    last_ms: Mutex<u64>,
}

impl Segments {
    /// Opens the folder `dir` (made by the first segment: a camera that
    /// never records continuously has none), and finishes or removes the
    /// segments a crash left unfinished.
    pub fn open(dir: PathBuf, url_prefix: String) -> Result<Segments, ClipError> {
        let segments = Segments {
            shelf: Shelf::new(dir, NAMING),
            url_prefix,
            last_ms: Mutex::new(0),
        };
        segments.recover()?;
        let newest = segments.shelf.scan()?.first().map_or(0, |i| i.stamp.ms);
        *crate::sync::lock(&segments.last_ms) = newest;
        Ok(segments)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        self.shelf.dir()
    }

    /// Creates the hidden file of a segment whose first frame arrived at
    /// `at`; returns its start (later than every start given before) and
    /// the file.
    pub fn create(&self, at: SystemTime) -> Result<(u64, File), ClipError> {
        let start = {
            let mut last = crate::sync::lock(&self.last_ms);
            let ms = unix_ms(at).max(*last + 1);
            *last = ms;
            ms
        };
        crate::datadir::create_dir(self.dir()).map_err(|err| {
            ClipError::io(
                format!("cannot create recording folder {}", self.dir().display()),
                err,
            )
        })?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(crate::datadir::FILE_MODE)
            .open(self.rec_path(start))
            .map_err(|err| ClipError::io("cannot create a recording segment", err))?;
        Ok((start, file))
    }

    /// Names the finished (synced) segment that started at `start`, with
    /// its length read from the file. A segment without a whole frame is
    /// removed (`Ok(None)`).
    pub fn publish(&self, start: u64) -> Result<Option<SegmentInfo>, ClipError> {
        let rec = self.rec_path(start);
        let scanned = File::open(&rec)
            .map_err(mp4file::Mp4Error::from)
            .and_then(|f| mp4file::scan(&f));
        let duration = match scanned {
            Ok(s) if s.frames > 0 => s.duration,
            _ => {
                let _ = fs::remove_file(&rec);
                return Ok(None);
            }
        };
        let name = segment_name(start, duration);
        let fail = |err| ClipError::io(format!("cannot save recording {name}"), err);
        fs::hard_link(&rec, self.dir().join(&name)).map_err(fail)?;
        let _ = fs::remove_file(&rec);
        self.shelf.sync();
        Ok(Some(self.info_of(
            &name,
            fs::metadata(self.dir().join(&name)).map_or(0, |m| m.len()),
        )))
    }

    /// Removes a segment that failed while being recorded.
    pub fn discard(&self, start: u64) {
        let _ = fs::remove_file(self.rec_path(start));
    }

    /// The finished segments that overlap `from..to` (unix ms), oldest first.
    pub fn between(&self, from_ms: u64, to_ms: u64) -> Result<Vec<SegmentInfo>, ClipError> {
        let mut found: Vec<SegmentInfo> = self
            .shelf
            .scan()?
            .into_iter()
            .filter(|item| {
                parse(&item.name).is_some_and(|(start, len)| start < to_ms && start + len > from_ms)
            })
            .map(|item| self.info_of(&item.name, item.bytes))
            .collect();
        found.reverse();
        Ok(found)
    }

    /// The path of finished segment `name`, checked to be one.
    pub fn path(&self, name: &str) -> Result<PathBuf, ClipError> {
        self.shelf.check(name)?;
        let path = self.dir().join(name);
        if !path.is_file() {
            return Err(ClipError::NotFound(name.to_string()));
        }
        Ok(path)
    }

    /// Every finished segment, newest first (for retention).
    pub(super) fn scan(&self) -> Result<Vec<Item>, ClipError> {
        Ok(self.shelf.scan()?)
    }

    /// Deletes `items`; returns the names deleted.
    pub(super) fn remove(&self, items: &[&Item]) -> Result<Vec<String>, ClipError> {
        Ok(self.shelf.remove(items, |_| {})?)
    }

    /// How many segments there are and their bytes.
    pub fn usage(&self) -> Result<(usize, u64), ClipError> {
        Ok(self.shelf.usage()?)
    }

    fn info_of(&self, name: &str, bytes: u64) -> SegmentInfo {
        let (start, len) = parse(name).unwrap_or((0, 0));
        SegmentInfo {
            name: name.to_string(),
            url: format!("{}/{name}", self.url_prefix),
            start_ts: start as f64 / 1000.0,
            end_ts: (start + len) as f64 / 1000.0,
            duration_s: len as f64 / 1000.0,
            bytes,
        }
    }

    fn rec_path(&self, start: u64) -> PathBuf {
        self.dir().join(format!("{REC_PREFIX}{start}.mp4"))
    }

    /// Cuts each `.rec-` segment after its last whole fragment and names
    /// it, or removes it when no frame reached the disk.
    fn recover(&self) -> Result<(), ClipError> {
        let entries = match fs::read_dir(self.dir()) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            entries => entries,
        };
        let entries = entries.map_err(|err| {
            ClipError::io(
                format!("cannot list recordings in {}", self.dir().display()),
                err,
            )
        })?;
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(start) = file_name
                .to_str()
                .and_then(|n| n.strip_prefix(REC_PREFIX))
                .and_then(|n| n.strip_suffix(".mp4"))
                .and_then(digits)
            else {
                continue;
            };
            let rec = entry.path();
            let done = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&rec)
                .map_err(mp4file::Mp4Error::from)
                .and_then(|f| mp4file::finish_partial(&f));
            match done {
                Ok(s) => {
                    let name = segment_name(start, s.duration);
                    if fs::hard_link(&rec, self.dir().join(&name)).is_ok() {
                        tracing::warn!(
                            "recording {name} was cut short by an unclean stop: kept its {} \
                             frame(s) ({:.1} s)",
                            s.frames,
                            s.duration.as_secs_f64()
                        );
                    }
                    let _ = fs::remove_file(&rec);
                }
                Err(e) => {
                    let _ = fs::remove_file(&rec);
                    tracing::warn!(
                        "removed a recording segment left unfinished by an unclean stop: {e}"
                    );
                }
            }
        }
        self.shelf.sync();
        Ok(())
    }
}

/// The name of a finished segment.
fn segment_name(start: u64, length: Duration) -> String {
    format!("segment-{start}-{}.mp4", length.as_millis())
}

/// Whether `name` is a finished segment's name.
pub fn valid_name(name: &str) -> bool {
    parse(name).is_some()
}

/// The start and length (ms) in a segment's name.
fn parse(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("segment-")?.strip_suffix(".mp4")?;
    let (start, len) = rest.split_once('-')?;
    Some((digits(start)?, digits(len)?))
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn stamp_of(name: &str) -> Option<Stamp> {
    parse(name).map(|(ms, _)| Stamp { ms, n: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::{Packet, Track};
    use std::io::Write;

    fn track() -> Track {
        crate::video::test_track()
    }

    fn write(file: File, frames: i64) {
        let mut w = mp4file::Writer::new(file, &track()).unwrap();
        for i in 0..frames {
            w.write(&Packet {
                data: bytes::Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
                keyframe: i == 0,
                pts: i * 9000,
                received: std::time::Instant::now(),
                received_at: SystemTime::now(),
            })
            .unwrap();
        }
        w.finish().unwrap();
    }

    #[test]
    fn names_carry_start_and_length_and_nothing_else_passes() {
        assert_eq!(
            parse("segment-1764033000123-300040.mp4"),
            Some((1764033000123, 300040))
        );
        for bad in [
            "segment-1.mp4",
            "segment--5.mp4",
            "segment-1-2.mkv",
            ".rec-segment-1.mp4",
            "segment-1-2.mp4/../x",
            "motion-1.mp4",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_published_segment_is_named_by_its_length_and_found_by_its_span() {
        let dir = tempfile::tempdir().unwrap();
        let segs = Segments::open(dir.path().join("s"), "/recordings".into()).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let (start, file) = segs.create(t0).unwrap();
        assert_eq!(start, 1_000_000_000);
        write(file, 20);
        let info = segs.publish(start).unwrap().unwrap();
        // 20 frames of 0.1 s (the last one's length is the fragmenter's guess).
        assert!(
            info.name.starts_with("segment-1000000000-"),
            "{}",
            info.name
        );
        assert!((1.9..=2.1).contains(&info.duration_s), "{info:?}");
        assert_eq!(info.start_ts, 1_000_000.0);
        assert_eq!(info.end_ts, 1_000_000.0 + info.duration_s);
        assert_eq!(info.url, format!("/recordings/{}", info.name));
        // An empty one is not kept.
        let (empty, file) = segs.create(t0).unwrap();
        assert_eq!(empty, start + 1, "starts only increase");
        mp4file::Writer::new(file, &track()).unwrap();
        assert_eq!(segs.publish(empty).unwrap(), None);
        let ms = 1_000_000_000;
        let end = ms + (info.duration_s * 1000.0).round() as u64;
        assert_eq!(
            segs.between(end - 1, ms + 5000).unwrap(),
            vec![info.clone()]
        );
        assert!(segs.between(end, ms + 5000).unwrap().is_empty());
        assert!(segs.between(0, ms).unwrap().is_empty());
        assert_eq!(segs.usage().unwrap().0, 1);
        assert!(segs.path(&info.name).is_ok());
        assert!(matches!(
            segs.path("segment-1-1.mp4"),
            Err(ClipError::NotFound(_))
        ));
        assert!(matches!(segs.path("../x"), Err(ClipError::InvalidName(_))));
    }

    #[test]
    fn a_segment_left_by_a_crash_is_cut_and_named_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("s");
        let segs = Segments::open(folder.clone(), "/r".into()).unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000);
        let (start, file) = segs.create(at).unwrap();
        write(file, 11);
        let mut f = OpenOptions::new()
            .append(true)
            .open(folder.join(format!("{REC_PREFIX}{start}.mp4")))
            .unwrap();
        f.write_all(&[0, 0, 0, 40, b'm', b'o', b'o', b'f', 1])
            .unwrap();
        let (_, empty) = segs.create(at).unwrap();
        mp4file::Writer::new(empty, &track()).unwrap();
        drop(segs);
        let segs = Segments::open(folder.clone(), "/r".into()).unwrap();
        let all = segs.between(0, u64::MAX).unwrap();
        assert_eq!(all.len(), 1);
        assert!(all[0].name.starts_with(&format!("segment-{start}-")));
        assert!(
            (1.0..=1.2).contains(&all[0].duration_s),
            "11 frames: {all:?}"
        );
        assert_eq!(fs::read_dir(&folder).unwrap().count(), 1);
    }
}
