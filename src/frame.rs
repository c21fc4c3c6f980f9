//! The latest frame: one immutable picture shared by reference with every
//! consumer.
//!
//! The source publishes into a `watch` channel, which keeps only the newest value:
//! the source never waits for anyone, and a slow consumer simply sees a later frame
//! next time it looks (it skips frames instead of queueing old ones).
//!
//! A frame is the camera's own JPEG, or, for a camera whose video lookout
//! decodes (RTSP H.264/H.265), the decoded [`Picture`]. Such a frame's JPEG
//! is made when first asked for, at most once ([`Frame::jpeg`]); frames
//! with their JPEG made go to a second channel, the one MJPEG viewers read
//! ([`FrameSink::watch_jpegs`]), which the [`encoder`](crate::encoder)
//! fills only while someone watches.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use tokio::sync::{watch, Notify};

use crate::jpeg;
use crate::picture::{Picture, JPEG_QUALITY};

pub use crate::picture::MAX_DIMENSION;

/// Upper bound for one JPEG frame, in bytes. Far above any sane camera frame,
/// but small enough that a broken stream cannot exhaust memory. Every source
/// (and the MJPEG splitter) caps what it buffers by it.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The MJPEG multipart boundary of `/stream.jpg` (the seed's).
pub const BOUNDARY: &str = "frame";

/// What opens an MJPEG stream, sent once before the first part.
pub const FIRST_BOUNDARY: &[u8] = b"--frame\r\n";

/// What ends every MJPEG part: the next part's boundary. Chrome draws a part
/// only when it sees the boundary that ends it, so sending the boundary with
/// the frame (not before the next one) shows each frame when it arrives
/// rather than one frame late.
const AFTER_PART: &[u8] = b"\r\n--frame\r\n";

/// One captured picture. Cloning the `Arc<Frame>` around it costs a refcount.
#[derive(Debug)]
pub struct Frame {
    /// 1 for the first frame since start, then +1 per frame; never reused.
    pub seq: u64,
    /// Wall-clock capture time (for the `X-Timestamp` part header and events).
    pub captured_at: SystemTime,
    /// Monotonic capture time (for frame age and rate measurements).
    pub captured_mono: Instant,
    /// Picture width (from the JPEG header, or the decoded picture).
    pub width: u16,
    /// Picture height.
    pub height: u16,
    /// The decoded picture, for a camera whose video lookout decodes;
    /// `None` for a camera that sends JPEGs.
    picture: Option<Picture>,
    /// The JPEG and its MJPEG part: the camera's own from the start, or
    /// made from `picture` the first time one is asked for.
    encoded: OnceLock<Encoded>,
    /// The camera's count of JPEGs made from pictures.
    encodes: Option<Arc<AtomicU64>>,
}

/// A frame's JPEG and the MJPEG part around it.
#[derive(Debug)]
struct Encoded {
    /// The JPEG (a view into `part`, no copy of its own).
    jpeg: Bytes,
    /// This frame as one whole MJPEG part: headers (`Content-Type`,
    /// `Content-Length`, `X-Timestamp`), the JPEG and the next boundary, made
    /// once here rather than once per viewer. Each viewer sends it as one
    /// buffer: one body chunk and one write per frame, which matters at a
    /// thousand viewers.
    part: Bytes,
}

impl Frame {
    /// Capture time as Unix seconds with fractions (the seed's `ts` format).
    pub fn unix_secs(&self) -> f64 {
        unix_secs(self.captured_at)
    }

    /// The decoded picture, when the camera's video is decoded by lookout.
    pub fn picture(&self) -> Option<&Picture> {
        self.picture.as_ref()
    }

    /// The frame as a JPEG: the camera's own, or made from the decoded
    /// picture now if it has not been yet (milliseconds: call it off the
    /// async workers, or use [`Frame::jpeg_async`]).
    pub fn jpeg(&self) -> Bytes {
        self.encoded().jpeg.clone()
    }

    /// The frame as one MJPEG part (see [`Frame::jpeg`] for its cost).
    pub fn part(&self) -> Bytes {
        self.encoded().part.clone()
    }

    /// Whether the JPEG is there without encoding.
    pub fn has_jpeg(&self) -> bool {
        self.encoded.get().is_some()
    }

    /// What the frame weighs in memory: its picture's bytes, or its JPEG's
    /// (never changing, so a ring of frames can add and take it away).
    pub fn bytes(&self) -> usize {
        match (&self.picture, self.encoded.get()) {
            (Some(p), _) => p.len(),
            (None, Some(e)) => e.jpeg.len(),
            (None, None) => 0,
        }
    }

    /// [`Frame::jpeg`], encoding on a blocking thread when needed.
    pub async fn jpeg_async(self: &Arc<Self>) -> Bytes {
        if let Some(e) = self.encoded.get() {
            return e.jpeg.clone();
        }
        let frame = self.clone();
        match tokio::task::spawn_blocking(move || frame.jpeg()).await {
            Ok(jpeg) => jpeg,
            // The encoder panicked (it does not on a valid picture): the
            // next caller tries again.
            Err(e) => {
                tracing::error!("encoding a JPEG failed: {e}");
                Bytes::new()
            }
        }
    }

    /// A frame of `jpeg` (taken as it is) captured at `at`, for tests.
    #[cfg(test)]
    pub(crate) fn for_test(at: Instant, jpeg: Bytes, width: u16, height: u16) -> Frame {
        let (part, jpeg) = mjpeg_part(&jpeg, SystemTime::now());
        Frame {
            seq: 1,
            captured_at: SystemTime::now(),
            captured_mono: at,
            width,
            height,
            picture: None,
            encoded: OnceLock::from(Encoded { jpeg, part }),
            encodes: None,
        }
    }

    fn encoded(&self) -> &Encoded {
        self.encoded.get_or_init(|| {
            let jpeg = match self.picture.as_ref().map(|p| p.to_jpeg(JPEG_QUALITY)) {
                Some(Ok(jpeg)) => jpeg,
                // A picture of a checked size always encodes; if it ever
                // did not, an empty part is shown rather than a panic.
                Some(Err(e)) => {
                    tracing::error!("cannot make a JPEG of frame {}: {e}", self.seq);
                    Vec::new()
                }
                None => Vec::new(),
            };
            if let Some(n) = &self.encodes {
                n.fetch_add(1, Ordering::Relaxed);
            }
            let (part, jpeg) = mjpeg_part(&jpeg, self.captured_at);
            Encoded { jpeg, part }
        })
    }
}

/// Converts a wall-clock time to Unix seconds as a float.
pub fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Receiving side of the latest frame: `None` until the first frame arrives.
pub type LatestFrame = watch::Receiver<Option<Arc<Frame>>>;

/// Publishing side, handed to whichever source runs. Cheap to clone.
#[derive(Clone)]
pub struct FrameSink {
    /// Every frame.
    tx: Arc<watch::Sender<Option<Arc<Frame>>>>,
    /// Frames whose JPEG is made: every frame of a camera that sends JPEGs,
    /// and the decoded pictures the encoder made one of.
    jpegs: Arc<watch::Sender<Option<Arc<Frame>>>>,
    seq: Arc<AtomicU64>,
    encodes: Arc<AtomicU64>,
    demand: Arc<Demand>,
}

/// How many watch the JPEGs, and a wake-up for the encoder when the first
/// comes.
#[derive(Default)]
struct Demand {
    watching: AtomicUsize,
    first: Notify,
}

/// One watcher of the JPEGs ([`FrameSink::watch_jpegs`]): while any is
/// held, the encoder makes a JPEG of each decoded picture.
pub struct Watching(Arc<Demand>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.watching.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a buffer was not published.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// The bytes have no SOI/SOF header, so they cannot be a picture.
    #[error("not a JPEG picture ({len} bytes without a frame header)")]
    NotJpeg {
        /// Length of the rejected buffer.
        len: usize,
    },
    /// The JPEG does not end with its EOI marker: it was cut short.
    #[error("truncated JPEG ({len} bytes without an end marker)")]
    Truncated {
        /// Length of the rejected buffer.
        len: usize,
    },
    /// The header claims a picture larger than [`MAX_DIMENSION`] on a side.
    #[error("JPEG header claims {width}x{height}, over {MAX_DIMENSION} pixels on a side")]
    TooWide {
        /// Claimed width.
        width: u16,
        /// Claimed height.
        height: u16,
    },
    /// The buffer is larger than [`MAX_FRAME_BYTES`].
    #[error("JPEG of {len} bytes, over the {MAX_FRAME_BYTES}-byte cap")]
    TooLarge {
        /// Length of the rejected buffer.
        len: usize,
    },
}

/// Checks that `jpeg` is one whole picture of a sane size: SOI first, a frame
/// header with both sides from 1 to [`MAX_DIMENSION`], EOI last, at most
/// [`MAX_FRAME_BYTES`]. Returns its width and height. Cheap: the segment
/// headers before the frame header and the last two bytes are read, never the
/// image data (the sources' splitter has walked it already).
pub fn check_jpeg(jpeg: &[u8]) -> Result<(u16, u16), FrameError> {
    let len = jpeg.len();
    if len > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge { len });
    }
    let (width, height) = match jpeg.get(..2) {
        Some([0xFF, 0xD8]) => jpeg::dimensions(jpeg),
        _ => None,
    }
    .ok_or(FrameError::NotJpeg { len })?;
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(FrameError::TooWide { width, height });
    }
    if !jpeg.ends_with(&[0xFF, 0xD9]) {
        return Err(FrameError::Truncated { len });
    }
    Ok((width, height))
}

/// The MJPEG part of `jpeg` captured at `at`, and the JPEG as a view into
/// it. One copy of the JPEG per frame (about 10 µs for 120 KB), so that no
/// viewer has to assemble anything.
fn mjpeg_part(jpeg: &[u8], at: SystemTime) -> (Bytes, Bytes) {
    let head = format!(
        "Content-Type: image/jpeg\r\nContent-Length: {}\r\nX-Timestamp: {:.6}\r\n\r\n",
        jpeg.len(),
        unix_secs(at)
    );
    let mut part = BytesMut::with_capacity(head.len() + jpeg.len() + AFTER_PART.len());
    part.extend_from_slice(head.as_bytes());
    part.extend_from_slice(jpeg);
    part.extend_from_slice(AFTER_PART);
    let part = part.freeze();
    let jpeg = part.slice(head.len()..head.len() + jpeg.len());
    (part, jpeg)
}

impl FrameSink {
    /// A new channel with no frame yet.
    pub fn new() -> (FrameSink, LatestFrame) {
        let (tx, rx) = watch::channel(None);
        let sink = FrameSink {
            tx: Arc::new(tx),
            jpegs: Arc::new(watch::channel(None).0),
            seq: Arc::new(AtomicU64::new(0)),
            encodes: Arc::new(AtomicU64::new(0)),
            demand: Arc::default(),
        };
        (sink, rx)
    }

    /// Publishes a JPEG as the newest frame. Never blocks and never waits for
    /// consumers; a buffer that fails [`check_jpeg`] (no frame header, cut
    /// short, absurd size) is refused so viewers and the detector never get
    /// garbage.
    pub fn publish(&self, jpeg: Bytes) -> Result<Arc<Frame>, FrameError> {
        let (width, height) = check_jpeg(&jpeg)?;
        let captured_at = SystemTime::now();
        let (part, jpeg) = mjpeg_part(&jpeg, captured_at);
        let frame = Arc::new(Frame {
            seq: self.next_seq(),
            captured_at,
            captured_mono: Instant::now(),
            width,
            height,
            picture: None,
            encoded: OnceLock::from(Encoded { jpeg, part }),
            encodes: None,
        });
        self.tx.send_replace(Some(frame.clone()));
        self.jpegs.send_replace(Some(frame.clone()));
        Ok(frame)
    }

    /// Publishes a decoded picture as the newest frame, without a JPEG:
    /// one is made only when asked for.
    pub fn publish_picture(&self, picture: Picture) -> Arc<Frame> {
        let frame = Arc::new(Frame {
            seq: self.next_seq(),
            captured_at: SystemTime::now(),
            captured_mono: Instant::now(),
            width: picture.width(),
            height: picture.height(),
            picture: Some(picture),
            encoded: OnceLock::new(),
            encodes: Some(self.encodes.clone()),
        });
        self.tx.send_replace(Some(frame.clone()));
        frame
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Frames published so far (the seed's `frames`).
    pub fn count(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    /// JPEGs made from decoded pictures so far (none for a camera that
    /// sends JPEGs).
    pub fn encodes(&self) -> u64 {
        self.encodes.load(Ordering::Relaxed)
    }

    /// A new receiver of the latest frame.
    pub fn subscribe(&self) -> LatestFrame {
        self.tx.subscribe()
    }

    /// The latest frame, if any.
    pub fn latest(&self) -> Option<Arc<Frame>> {
        self.tx.borrow().clone()
    }

    /// A receiver of the frames with their JPEG made (an MJPEG viewer's),
    /// and the token that keeps the encoder making them.
    pub fn watch_jpegs(&self) -> (LatestFrame, Watching) {
        if self.demand.watching.fetch_add(1, Ordering::Relaxed) == 0 {
            self.demand.first.notify_one();
        }
        (self.jpegs.subscribe(), Watching(self.demand.clone()))
    }

    /// How many [`Watching`] tokens are held.
    pub fn watching(&self) -> usize {
        self.demand.watching.load(Ordering::Relaxed)
    }

    /// Resolves when someone watches the JPEGs (at once if someone does).
    pub async fn watched(&self) {
        while self.watching() == 0 {
            self.demand.first.notified().await;
        }
    }

    /// Shows a frame whose JPEG is made to the JPEG watchers.
    pub fn show(&self, frame: Arc<Frame>) {
        self.jpegs.send_replace(Some(frame));
    }

    /// Takes a decoded picture's JPEG off show when nobody watches, so the
    /// next watcher does not first get a picture from long ago.
    pub fn hide_pictures(&self) {
        self.jpegs.send_if_modified(|shown| {
            let old = shown.as_ref().is_some_and(|f| f.picture.is_some());
            if old {
                *shown = None;
            }
            old
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_one_whole_part_and_its_jpeg_a_view_into_it() {
        let (sink, _rx) = FrameSink::new();
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 80)
            .encode(&[128u8; 16 * 8 * 3], 16, 8, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let frame = sink.publish(Bytes::from(jpeg.clone())).unwrap();
        assert_eq!(&frame.jpeg()[..], &jpeg[..]);
        let head = format!(
            "Content-Type: image/jpeg\r\nContent-Length: {}\r\nX-Timestamp: {:.6}\r\n\r\n",
            jpeg.len(),
            frame.unix_secs()
        );
        let mut expected = head.into_bytes();
        expected.extend_from_slice(&jpeg);
        expected.extend_from_slice(b"\r\n--frame\r\n");
        assert_eq!(&frame.part()[..], &expected[..]);
        // The JPEG lies inside the part's buffer: no second copy per frame.
        let part = frame.part();
        let inside = part.as_ptr_range();
        assert!(inside.contains(&frame.jpeg().as_ptr()));
    }

    fn picture(w: u32, h: u32) -> Picture {
        Picture::new(w, h, vec![128; Picture::len_for(w, h)]).unwrap()
    }

    #[test]
    fn a_picture_is_encoded_once_and_only_when_asked() {
        let (sink, rx) = FrameSink::new();
        let (jpegs, _watching) = sink.watch_jpegs();
        let frame = sink.publish_picture(picture(32, 16));
        assert_eq!((frame.width, frame.height, frame.seq), (32, 16, 1));
        assert!(rx.borrow().is_some());
        // Published to the frame channel only: no JPEG yet, none shown.
        assert!(!frame.has_jpeg());
        assert!(jpegs.borrow().is_none());
        assert_eq!(sink.encodes(), 0);
        assert_eq!(frame.bytes(), Picture::len_for(32, 16));
        let jpeg = frame.jpeg();
        assert_eq!(
            frame.bytes(),
            Picture::len_for(32, 16),
            "the same once encoded"
        );
        assert_eq!(crate::jpeg::dimensions(&jpeg), Some((32, 16)));
        assert_eq!(&frame.jpeg()[..], &jpeg[..]);
        assert!(frame.part().ends_with(b"\r\n--frame\r\n"));
        assert_eq!(sink.encodes(), 1, "made once, however often asked");
        sink.show(frame.clone());
        assert_eq!(jpegs.borrow().as_ref().map(|f| f.seq), Some(1));
    }

    #[test]
    fn watchers_are_counted_and_old_pictures_hidden_when_they_leave() {
        let (sink, _rx) = FrameSink::new();
        assert_eq!(sink.watching(), 0);
        let (jpegs, a) = sink.watch_jpegs();
        let (_, b) = sink.watch_jpegs();
        assert_eq!(sink.watching(), 2);
        drop(a);
        drop(b);
        assert_eq!(sink.watching(), 0);
        let frame = sink.publish_picture(picture(8, 8));
        sink.show(frame);
        sink.hide_pictures();
        assert!(jpegs.borrow().is_none());
        // A camera's own JPEG stays on show.
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 80)
            .encode(&[9u8; 8 * 8 * 3], 8, 8, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        sink.publish(Bytes::from(jpeg)).unwrap();
        sink.hide_pictures();
        assert!(jpegs.borrow().is_some());
    }
}
