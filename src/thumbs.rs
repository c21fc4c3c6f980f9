//! Small previews of snapshots (and, later, clips): 320 px wide JPEGs.
//!
//! The dashboard's gallery and its "recent events" list showed the full
//! camera pictures, ~120 KB each at 720p, which is slow on a phone over
//! mobile data for a tile 96 to 320 px wide. A thumbnail of the same picture
//! is ~10 KB.
//!
//! # Where they live
//! Beside the originals, in a hidden subfolder: the thumbnail of
//! `<folder>/manual-1764033000123.jpg` is
//! `<folder>/.thumbs/manual-1764033000123.jpg`, and that of a clip
//! `<folder>/motion-1764033000123.mkv` would be
//! `<folder>/.thumbs/motion-1764033000123.jpg`: one thumbnail per stem. The
//! folder starts with `.`, so the snapshot listing (which takes only valid
//! snapshot names, never hidden ones) never shows it.
//!
//! # Cheap
//! [`make`] decodes once (zune-jpeg), averages boxes of pixels (every source
//! pixel counts, so the result is smooth, not aliased like point sampling)
//! and encodes a small JPEG: a few milliseconds for a 720p frame, done in the
//! blocking task that saves the snapshot anyway.
//!
//! # Durable, and lazily made
//! A thumbnail is written like every file lookout keeps (a synced temporary
//! file, a rename, a synced folder), so a crash never leaves a truncated one
//! under its name. Snapshots from before thumbnails existed, or whose
//! thumbnail could not be written, get theirs on first request
//! ([`Thumbs::get_or_make`]).
//!
//! All functions block (std::fs and CPU work); async callers run them with
//! `spawn_blocking`.

use std::collections::HashMap;
use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::durable::{self, TempFiles};
use crate::jpeg::JpegError;

/// Width of a thumbnail: the gallery's tile, sharp on most phones at 2x for
/// the 96 px "recent events" preview too. Narrower pictures keep their size.
pub const WIDTH: usize = 320;

/// JPEG quality of thumbnails: about 10 KB for a 320x180 real-footage frame,
/// and no visible blocking at that size.
const QUALITY: u8 = 70;

pub use crate::jpeg::{MAX_PIXELS, MAX_SIDE};

/// The hidden subfolder holding the thumbnails of a folder of originals.
pub const FOLDER: &str = ".thumbs";

/// Prefix of temporary files in [`FOLDER`]; it starts with `.`, which no
/// valid original name does, so it never clashes with a thumbnail.
const TMP_PREFIX: &str = ".tmp-";

/// Longest accepted original name, in bytes (as for snapshots).
const MAX_NAME_LEN: usize = 128;

/// How long the same broken original stays quiet in the log after it was
/// reported. A broken picture stays broken, and a gallery asks for its
/// thumbnail on every view: one line an hour, with the count of requests
/// since, says it is still there without flooding the log.
pub const REPORT_EVERY: Duration = Duration::from_secs(3600);

/// Originals whose last report is remembered at most (only files that
/// exist and failed are, so this is rarely reached; past it the oldest
/// memories are dropped, costing at most an early repeat).
const MAX_REPORTED: usize = 1024;

/// Why no thumbnail could be made or read.
#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    /// The original is not a JPEG that can be decoded.
    #[error("cannot decode the picture: {0}")]
    Decode(String),
    /// The picture is larger than [`MAX_SIDE`] or [`MAX_PIXELS`] allow.
    #[error(
        "picture {width}x{height} is too large for a thumbnail \
         (at most {MAX_SIDE} px a side and {MAX_PIXELS} pixels)"
    )]
    TooLarge {
        /// Width from the JPEG header.
        width: usize,
        /// Height from the JPEG header.
        height: usize,
    },
    /// The thumbnail could not be encoded.
    #[error("cannot encode the thumbnail: {0}")]
    Encode(String),
    /// The name is not a plain file name (and might point outside the folder).
    #[error("invalid file name {0:?}")]
    InvalidName(String),
    /// The original does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The file system refused.
    #[error("{what}: {err}")]
    Io {
        /// What was being done, e.g. `cannot write thumbnail manual-1.jpg`.
        what: String,
        /// Why it failed.
        #[source]
        err: io::Error,
    },
}

/// Makes the thumbnail of `jpeg`: [`WIDTH`] px wide with the same aspect
/// ratio (a picture at most that wide keeps its size), as a JPEG.
///
/// The header is read first, so a hostile or broken picture claiming huge
/// dimensions is refused with [`ThumbError::TooLarge`] before any pixel
/// buffer is allocated.
pub fn make(jpeg: &[u8]) -> Result<Vec<u8>, ThumbError> {
    let (rgb, w, h) = decode_rgb(jpeg)?;
    let (tw, th) = thumb_size(w, h);
    let small = if (tw, th) == (w, h) {
        rgb
    } else {
        box_shrink(&rgb, w, h, tw, th)
    };
    encode(&small, tw, th)
}

/// Decodes `jpeg` to interleaved RGB, refusing pictures over the limits.
/// Returns (pixels, width, height).
fn decode_rgb(jpeg: &[u8]) -> Result<(Vec<u8>, usize, usize), ThumbError> {
    match crate::jpeg::decode_rgb(jpeg) {
        Ok(img) => Ok((img.pixels, img.width, img.height)),
        Err(JpegError::Decode(e)) => Err(ThumbError::Decode(e)),
        Err(JpegError::TooLarge { width, height }) => Err(ThumbError::TooLarge { width, height }),
    }
}

/// The thumbnail size of a `w`x`h` picture: [`WIDTH`] wide (never wider
/// than the picture), the height in proportion, rounded, at least 1.
fn thumb_size(w: usize, h: usize) -> (usize, usize) {
    let tw = w.min(WIDTH);
    let th = ((h * tw + w / 2) / w).clamp(1, h);
    (tw, th)
}

/// Box-averages interleaved RGB `src` (`w`x`h`) down to `tw`x`th`: each
/// output pixel is the rounded mean of the source block it covers, so every
/// source pixel counts once. Rows of a block are summed column-wise first,
/// then each output pixel folds its columns.
fn box_shrink(src: &[u8], w: usize, h: usize, tw: usize, th: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(tw * th * 3);
    // At most 8192 rows of 255: fits u32 easily.
    let mut sums = vec![0u32; w * 3];
    for oy in 0..th {
        let (y0, y1) = (oy * h / th, (oy + 1) * h / th);
        sums.fill(0);
        for row in src[y0 * w * 3..y1 * w * 3].chunks_exact(w * 3) {
            for (sum, &px) in sums.iter_mut().zip(row) {
                *sum += u32::from(px);
            }
        }
        let rows = (y1 - y0) as u32;
        for ox in 0..tw {
            let (x0, x1) = (ox * w / tw, (ox + 1) * w / tw);
            let count = rows * (x1 - x0) as u32;
            for c in 0..3 {
                let total: u32 = (x0..x1).map(|x| sums[x * 3 + c]).sum();
                // The mean of values <= 255 is <= 255.
                out.push(((total + count / 2) / count) as u8);
            }
        }
    }
    out
}

/// Encodes interleaved RGB as a JPEG at [`QUALITY`], with 4:2:0 chroma (what
/// cameras send, and the smallest).
fn encode(rgb: &[u8], w: usize, h: usize) -> Result<Vec<u8>, ThumbError> {
    let too_large = || ThumbError::Encode(format!("size {w}x{h} out of range"));
    let w16 = u16::try_from(w).map_err(|_| too_large())?;
    let h16 = u16::try_from(h).map_err(|_| too_large())?;
    let mut out = Vec::with_capacity(16 * 1024);
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, QUALITY);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    encoder
        .encode(rgb, w16, h16, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| ThumbError::Encode(e.to_string()))?;
    Ok(out)
}

/// The stem of an original's file name, if it is a plain name:
/// `[A-Za-z0-9._-]`, not starting with `.`, without `..`, at most 128 bytes.
/// `manual-1.jpg` gives `manual-1`, `motion-1.mkv` gives `motion-1`, `clip`
/// gives `clip`. This keeps names from URLs inside the folder.
fn stem(name: &str) -> Option<&str> {
    let plain = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !plain {
        return None;
    }
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    (!stem.is_empty()).then_some(stem)
}

/// The thumbnails of one folder of originals (a camera's snapshots, or its
/// clips), kept in its [`FOLDER`] subfolder, created on the first save.
///
/// Every function taking a name checks it first: a name with a separator, a
/// parent reference or a leading `.` is refused.
#[derive(Debug)]
pub struct Thumbs {
    /// `<originals>/.thumbs`.
    dir: PathBuf,
    /// Synced temporary files, renamed to their final names.
    tmp: TempFiles,
    /// When each broken original was last reported.
    reports: Reports,
    /// When each thumbnail that could not be stored was last reported (a
    /// read-only or full disk fails every request that makes one).
    unstored: Reports,
}

impl Thumbs {
    /// The thumbnails of the originals in `folder`. Removes temporary files
    /// a crash left in the thumbnail folder (so call it once, at start); a
    /// folder that cannot be cleaned is only logged, as its temporary files
    /// are never served.
    pub fn new(folder: &Path) -> Thumbs {
        let dir = folder.join(FOLDER);
        let thumbs = Thumbs {
            tmp: TempFiles::new(&dir, TMP_PREFIX),
            dir,
            reports: Reports::default(),
            unstored: Reports::default(),
        };
        if let Err(e) = thumbs.tmp.remove_stale() {
            tracing::warn!(
                "cannot clean temporary files in {}: {e}",
                thumbs.dir.display()
            );
        }
        thumbs
    }

    /// The thumbnail folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the thumbnail of the original `name` is (or would be) kept.
    pub fn path(&self, name: &str) -> Result<PathBuf, ThumbError> {
        let stem = stem(name).ok_or_else(|| ThumbError::InvalidName(name.to_string()))?;
        Ok(self.dir.join(format!("{stem}.jpg")))
    }

    /// Stores `thumb_jpeg` as the thumbnail of the original `name`, replacing
    /// an older one: a synced temporary file, renamed, then the folder
    /// synced. On error nothing is left under the thumbnail's name but what
    /// was there before.
    pub fn save(&self, name: &str, thumb_jpeg: &[u8]) -> io::Result<()> {
        let dest = self
            .path(name)
            .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e.to_string()))?;
        let created = !self.dir.is_dir();
        if created {
            crate::datadir::create_dir(&self.dir)?;
        }
        let tmp = self.tmp.write(thumb_jpeg)?;
        if let Err(err) = fs::rename(&tmp, &dest) {
            let _ = fs::remove_file(&tmp);
            return Err(err);
        }
        // Some file systems refuse to sync a folder; the data is synced.
        let _ = durable::sync_dir(&self.dir);
        if created {
            if let Some(parent) = self.dir.parent() {
                let _ = durable::sync_dir(parent);
            }
        }
        Ok(())
    }

    /// Makes the thumbnail of `jpeg` (e.g. the frame a clip chose) and
    /// stores it as that of the original `name`; returns the thumbnail.
    pub fn make_and_save(&self, name: &str, jpeg: &[u8]) -> Result<Vec<u8>, ThumbError> {
        self.path(name)?;
        let thumb = make(jpeg)?;
        self.save(name, &thumb).map_err(|err| ThumbError::Io {
            what: format!("cannot write thumbnail of {name}"),
            err,
        })?;
        Ok(thumb)
    }

    /// Removes the thumbnail of the original `name`; one that does not exist
    /// is not an error. The folder is synced so the removal sticks.
    pub fn remove(&self, name: &str) -> io::Result<()> {
        let path = self
            .path(name)
            .map_err(|e| io::Error::new(ErrorKind::InvalidInput, e.to_string()))?;
        match fs::remove_file(path) {
            Ok(()) => {
                let _ = durable::sync_dir(&self.dir);
                Ok(())
            }
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// The stored thumbnail of `name`, or, when there is none yet, one made
    /// from the JPEG `original`, stored and returned. `NotFound` when the
    /// original does not exist.
    ///
    /// A failed store is logged (at most once per [`REPORT_EVERY`] for each
    /// name), not returned: the thumbnail is good, and the next request tries
    /// again. An original deleted while its thumbnail was
    /// being made takes the thumbnail with it, so none is left orphaned.
    pub fn get_or_make(&self, name: &str, original: &Path) -> Result<Vec<u8>, ThumbError> {
        let path = self.path(name)?;
        match fs::read(&path) {
            Ok(thumb) => return Ok(thumb),
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => {
                return Err(ThumbError::Io {
                    what: format!("cannot read thumbnail of {name}"),
                    err,
                })
            }
        }
        let jpeg = fs::read(original).map_err(|err| match err.kind() {
            ErrorKind::NotFound => ThumbError::NotFound(name.to_string()),
            _ => ThumbError::Io {
                what: format!("cannot read {name}"),
                err,
            },
        })?;
        let thumb = make(&jpeg)?;
        match self.save(name, &thumb) {
            Ok(()) if original.symlink_metadata().is_err() => {
                let _ = self.remove(name);
            }
            Ok(()) => {}
            Err(e) => match self.unstored.due(name, Instant::now()) {
                Some(0) => tracing::warn!("cannot store the thumbnail of {name}: {e}"),
                Some(held) => tracing::warn!(
                    "cannot store the thumbnail of {name}: {e} (also failed {held} time(s) \
                     since the last report)"
                ),
                None => {}
            },
        }
        Ok(thumb)
    }
}

impl Thumbs {
    /// Logs that no thumbnail can be made of the original `name` (a `kind`,
    /// "snapshot" or "clip") because of `err`, at most once per
    /// [`REPORT_EVERY`] for each original, with how many failures were not
    /// logged since. Each request for a broken picture's thumbnail calls
    /// this; the log holds one line per broken file, not one per request.
    pub fn report_failure(&self, kind: &str, name: &str, err: &ThumbError) {
        match self.reports.due(name, Instant::now()) {
            Some(0) => tracing::warn!("no thumbnail for {kind} {name}: {err}"),
            Some(held) => tracing::warn!(
                "no thumbnail for {kind} {name}: {err} (also failed {held} time(s) since \
                 the last report)"
            ),
            None => {}
        }
    }
}

/// When each original was last reported, and how many failures since were
/// not.
#[derive(Debug, Default)]
struct Reports(Mutex<HashMap<String, Reported>>);

#[derive(Debug, Clone, Copy)]
struct Reported {
    at: Instant,
    held: u64,
}

impl Reports {
    /// Whether a failure of `name` at `now` is to be logged: `Some(held)`
    /// with the failures held back since the last report, or `None` to
    /// stay quiet (and count it).
    fn due(&self, name: &str, now: Instant) -> Option<u64> {
        let mut seen = crate::sync::lock(&self.0);
        if let Some(last) = seen.get_mut(name) {
            if now.saturating_duration_since(last.at) < REPORT_EVERY {
                last.held += 1;
                return None;
            }
            let held = last.held;
            *last = Reported { at: now, held: 0 };
            return Some(held);
        }
        if seen.len() >= MAX_REPORTED {
            seen.retain(|_, r| now.saturating_duration_since(r.at) < REPORT_EVERY);
            if seen.len() >= MAX_REPORTED {
                seen.clear();
            }
        }
        seen.insert(name.to_string(), Reported { at: now, held: 0 });
        Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_broken_original_is_reported_once_per_interval_with_a_count() {
        let reports = Reports::default();
        let t0 = Instant::now();
        assert_eq!(reports.due("a.jpg", t0), Some(0), "the first is logged");
        for i in 1..=1000 {
            assert_eq!(reports.due("a.jpg", t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(reports.due("b.jpg", t0), Some(0), "each file has its own");
        let later = t0 + REPORT_EVERY;
        assert_eq!(reports.due("a.jpg", later), Some(1000), "with the count");
        assert_eq!(reports.due("a.jpg", later), None);
        assert_eq!(reports.due("a.jpg", later + REPORT_EVERY), Some(1));
        // Memory stays bounded however many files break.
        for i in 0..3 * MAX_REPORTED {
            reports.due(&format!("n{i}.jpg"), later);
        }
        assert!(crate::sync::lock(&reports.0).len() <= MAX_REPORTED);
    }

    /// A real 1280x720 camera frame (see testdata/frames/README.md).
    fn real_frame() -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/frames/yard-720p.jpg");
        fs::read(path).unwrap()
    }

    fn size_of(jpeg: &[u8]) -> (usize, usize) {
        let img = crate::jpeg::decode_rgb(jpeg).unwrap();
        (img.width, img.height)
    }

    fn rgb_jpeg(w: u16, h: u16) -> Vec<u8> {
        let rgb: Vec<u8> = (0..usize::from(w) * usize::from(h) * 3)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90)
            .encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn grayscale_jpeg_gets_a_thumbnail() {
        let luma: Vec<u8> = (0..640 * 360).map(|i| (i % 251) as u8).collect();
        let mut grey = Vec::new();
        jpeg_encoder::Encoder::new(&mut grey, 90)
            .encode(&luma, 640, 360, jpeg_encoder::ColorType::Luma)
            .unwrap();
        assert_eq!(size_of(&make(&grey).unwrap()), (320, 180));
    }

    /// A valid JPEG whose frame header (SOF) claims `w`x`h`.
    fn claiming(w: u16, h: u16) -> Vec<u8> {
        let mut jpeg = rgb_jpeg(16, 16);
        let sof = jpeg
            .windows(2)
            .position(|m| m == [0xFF, 0xC0])
            .expect("baseline SOF");
        // FFC0, length (2), precision (1), height (2), width (2).
        jpeg[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        jpeg
    }

    #[test]
    fn real_frame_gives_small_320_wide_thumbnail() {
        let frame = real_frame();
        assert_eq!(size_of(&frame), (1280, 720));
        let start = Instant::now();
        let thumb = make(&frame).unwrap();
        let took = start.elapsed();
        assert_eq!(size_of(&thumb), (320, 180));
        assert!(thumb.len() < 30 * 1024, "{} bytes", thumb.len());
        println!(
            "1280x720 frame of {} bytes -> 320x180 thumbnail of {} bytes in {took:?}",
            frame.len(),
            thumb.len()
        );
    }

    #[test]
    fn keeps_aspect_ratio() {
        assert_eq!(size_of(&make(&rgb_jpeg(640, 480)).unwrap()), (320, 240));
        assert_eq!(size_of(&make(&rgb_jpeg(1000, 3)).unwrap()), (320, 1));
        assert_eq!(thumb_size(1920, 1080), (320, 180));
        assert_eq!(thumb_size(8192, 1), (320, 1));
    }

    #[test]
    fn narrow_picture_keeps_its_size() {
        assert_eq!(size_of(&make(&rgb_jpeg(200, 150)).unwrap()), (200, 150));
        assert_eq!(size_of(&make(&rgb_jpeg(320, 240)).unwrap()), (320, 240));
    }

    #[test]
    fn box_filter_averages() {
        // 4x2 -> 2x1: each output pixel is the mean of a 2x2 block.
        #[rustfmt::skip]
        let src = [
            0, 0, 0,   10, 20, 30,   100, 100, 100,   200, 200, 200,
            2, 2, 2,   12, 22, 32,   100, 100, 100,   255, 255, 255,
        ];
        assert_eq!(box_shrink(&src, 4, 2, 2, 1), [6, 11, 16, 164, 164, 164]);
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [&b""[..], b"not a jpeg at all", &[0xFF, 0xD8, 0xFF]] {
            assert!(matches!(make(bad), Err(ThumbError::Decode(_))), "{bad:?}");
        }
        let mut truncated = real_frame();
        truncated.truncate(300);
        assert!(make(&truncated).is_err());
    }

    #[test]
    fn hostile_dimensions_refused() {
        for (w, h) in [(65_535, 65_535), (8193, 16), (16, 8193), (8192, 8192)] {
            match make(&claiming(w, h)) {
                Err(ThumbError::TooLarge { width, height }) => {
                    assert_eq!((width, height), (usize::from(w), usize::from(h)));
                }
                other => panic!("{w}x{h}: {other:?}"),
            }
        }
        // The same file with its real size decodes.
        assert_eq!(size_of(&make(&claiming(16, 16)).unwrap()), (16, 16));
    }

    #[test]
    fn stems_and_names() {
        assert_eq!(
            stem("manual-1764033000123.jpg"),
            Some("manual-1764033000123")
        );
        assert_eq!(stem("motion-1-2.mkv"), Some("motion-1-2"));
        assert_eq!(stem("clip"), Some("clip"));
        for bad in [
            "",
            ".jpg",
            ".thumbs",
            "..",
            "../x.jpg",
            "a/b.jpg",
            "/etc/passwd",
            "a..b.jpg",
            "x\0.jpg",
            "é.jpg",
        ] {
            assert_eq!(stem(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn save_path_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let thumbs = Thumbs::new(tmp.path());
        assert!(!thumbs.dir().exists(), "created only on the first save");
        let path = thumbs.path("motion-5.mkv").unwrap();
        assert_eq!(path, tmp.path().join(".thumbs/motion-5.jpg"));
        thumbs.save("motion-5.mkv", b"one").unwrap();
        thumbs.save("motion-5.mkv", b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(thumbs.dir()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
        thumbs.remove("motion-5.mkv").unwrap();
        assert!(!path.exists());
        thumbs.remove("motion-5.mkv").unwrap();
        for bad in ["../x.jpg", ".tmp-1", "a/b.jpg"] {
            assert!(matches!(thumbs.path(bad), Err(ThumbError::InvalidName(_))));
            assert_eq!(
                thumbs.save(bad, b"x").unwrap_err().kind(),
                ErrorKind::InvalidInput
            );
            assert_eq!(
                thumbs.remove(bad).unwrap_err().kind(),
                ErrorKind::InvalidInput
            );
        }
    }

    #[test]
    fn new_removes_stale_temp_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(FOLDER);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(".tmp-1-0"), b"partial").unwrap();
        fs::write(dir.join("manual-1.jpg"), b"kept").unwrap();
        Thumbs::new(tmp.path());
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["manual-1.jpg"]);
    }

    #[test]
    fn get_or_make_is_lazy() {
        let tmp = tempfile::tempdir().unwrap();
        let original = tmp.path().join("manual-1.jpg");
        fs::write(&original, rgb_jpeg(640, 360)).unwrap();
        let thumbs = Thumbs::new(tmp.path());
        let made = thumbs.get_or_make("manual-1.jpg", &original).unwrap();
        assert_eq!(size_of(&made), (320, 180));
        assert_eq!(
            fs::read(thumbs.path("manual-1.jpg").unwrap()).unwrap(),
            made
        );
        // A stored one is served as it is.
        thumbs.save("manual-1.jpg", b"stored").unwrap();
        assert_eq!(
            thumbs.get_or_make("manual-1.jpg", &original).unwrap(),
            b"stored"
        );
        let gone = tmp.path().join("manual-2.jpg");
        assert!(matches!(
            thumbs.get_or_make("manual-2.jpg", &gone),
            Err(ThumbError::NotFound(n)) if n == "manual-2.jpg"
        ));
        fs::write(tmp.path().join("bad.jpg"), b"garbage").unwrap();
        assert!(matches!(
            thumbs.get_or_make("bad.jpg", &tmp.path().join("bad.jpg")),
            Err(ThumbError::Decode(_))
        ));
        assert!(!thumbs.path("bad.jpg").unwrap().exists());
    }

    #[test]
    fn make_and_save_for_a_clip() {
        let tmp = tempfile::tempdir().unwrap();
        let thumbs = Thumbs::new(tmp.path());
        let thumb = thumbs
            .make_and_save("motion-7.mkv", &rgb_jpeg(1280, 720))
            .unwrap();
        assert_eq!(
            fs::read(tmp.path().join(".thumbs/motion-7.jpg")).unwrap(),
            thumb
        );
        assert!(matches!(
            thumbs.make_and_save("../x.mkv", &rgb_jpeg(8, 8)),
            Err(ThumbError::InvalidName(_))
        ));
    }
}
