//! The latest frame: one immutable JPEG shared by reference with every consumer.
//!
//! The source publishes into a `watch` channel, which keeps only the newest value:
//! the source never waits for anyone, and a slow consumer simply sees a later frame
//! next time it looks (it skips frames instead of queueing old ones).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

use crate::jpeg;

/// Largest picture side accepted from a source, in pixels. Cameras deliver at
/// most 8K (7680); a header claiming more is garbage or an attack (65535x65535
/// would make the motion detector allocate 4 GiB to decode it).
pub const MAX_DIMENSION: u16 = 16384;

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
    /// The JPEG exactly as the camera (or synthetic scene) produced it (a
    /// view into [`Frame::part`], no copy of its own).
    pub jpeg: Bytes,
    /// 1 for the first frame since start, then +1 per frame; never reused.
    pub seq: u64,
    /// Wall-clock capture time (for the `X-Timestamp` part header and events).
    pub captured_at: SystemTime,
    /// Monotonic capture time (for frame age and rate measurements).
    pub captured_mono: Instant,
    /// Picture width from the JPEG header.
    pub width: u16,
    /// Picture height from the JPEG header.
    pub height: u16,
    /// This frame as one whole MJPEG part: headers (`Content-Type`,
    /// `Content-Length`, `X-Timestamp`), the JPEG and the next boundary, made
    /// once here rather than once per viewer. Each viewer sends it as one
    /// buffer: one body chunk and one write per frame, which matters at a
    /// thousand viewers.
    pub part: Bytes,
}

impl Frame {
    /// Capture time as Unix seconds with fractions (the seed's `ts` format).
    pub fn unix_secs(&self) -> f64 {
        unix_secs(self.captured_at)
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
    tx: Arc<watch::Sender<Option<Arc<Frame>>>>,
    seq: Arc<AtomicU64>,
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
            seq: Arc::new(AtomicU64::new(0)),
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
            jpeg,
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            captured_at,
            captured_mono: Instant::now(),
            width,
            height,
            part,
        });
        self.tx.send_replace(Some(frame.clone()));
        Ok(frame)
    }

    /// Frames published so far (the seed's `frames`).
    pub fn count(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    /// A new receiver of the latest frame.
    pub fn subscribe(&self) -> LatestFrame {
        self.tx.subscribe()
    }

    /// The latest frame, if any.
    pub fn latest(&self) -> Option<Arc<Frame>> {
        self.tx.borrow().clone()
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
        assert_eq!(&frame.jpeg[..], &jpeg[..]);
        let head = format!(
            "Content-Type: image/jpeg\r\nContent-Length: {}\r\nX-Timestamp: {:.6}\r\n\r\n",
            jpeg.len(),
            frame.unix_secs()
        );
        let mut expected = head.into_bytes();
        expected.extend_from_slice(&jpeg);
        expected.extend_from_slice(b"\r\n--frame\r\n");
        assert_eq!(&frame.part[..], &expected[..]);
        // The JPEG lies inside the part's buffer: no second copy per frame.
        let inside = frame.part.as_ptr_range();
        assert!(inside.contains(&frame.jpeg.as_ptr()));
    }
}
