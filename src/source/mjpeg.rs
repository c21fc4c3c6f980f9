//! Marker-aware MJPEG stream splitter.
//!
//! Many camera inputs deliver "MJPEG": a plain byte stream of JPEG images
//! written back to back. That is what `ffmpeg -f mjpeg -` and
//! `rpicam-vid --codec mjpeg -o -` print on stdout (exec source), what an
//! `.mjpeg` file contains (file source), and what the body of a
//! `multipart/x-mixed-replace` HTTP stream looks like once the boundary lines
//! and part headers are treated as garbage between frames (http source). All
//! three sources share this module to cut such a stream into whole frames.
//!
//! Searching naively for `FF D9` is wrong: an EXIF thumbnail inside APP1 is a
//! complete JPEG with its own `FF D8 .. FF D9`, and comment or metadata
//! segments may contain arbitrary bytes. So [`MjpegSplitter`] walks the JPEG
//! segment structure instead: segments with a length field are skipped by
//! their length, and after SOS the entropy-coded data is scanned, honouring
//! byte stuffing (`FF 00`) and restart markers (`FF D0..D7`), until a real
//! marker appears. EOI ends the frame; any other marker (e.g. the next
//! DHT/SOS of a progressive JPEG) resumes segment parsing.
//!
//! The parser is incremental: it keeps its position and state between
//! pushes, so every input byte is examined a bounded number of times no
//! matter how the stream is chunked. Frames larger than the configured cap
//! are dropped (reported once as [`SplitError::TooLarge`]) while the parser
//! keeps walking them without buffering, so memory stays bounded.
//!
//! Everything dropped is reported, so a source can count it as a bad frame:
//! a frame that breaks JPEG syntax ([`SplitError::Corrupt`]), one cut short
//! by the next frame or the end of the stream ([`SplitError::Truncated`]),
//! and every [`GARBAGE_REPORT`] bytes of data outside any frame (random
//! bytes, a part header that never ends: [`SplitError::Garbage`]). None of
//! these is buffered beyond the frame cap.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::frame::MAX_FRAME_BYTES;
use crate::jpeg::{read_u16, EOI, MARKER, SOI, SOS, TEM};

/// Bytes outside any frame after which [`SplitError::Garbage`] is reported
/// (and again after as many more). Multipart boundaries and part headers
/// between frames are some tens of bytes; a mebibyte of them is not a camera.
pub const GARBAGE_REPORT: usize = 1024 * 1024;

/// How much [`FrameReader`] asks the underlying reader for at a time.
const READ_CHUNK: usize = 64 * 1024;

/// Errors produced while splitting a stream into frames.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// A frame exceeded the size cap. It is skipped; the splitter continues
    /// with the next frame, so the caller may simply log this and go on.
    #[error("JPEG frame larger than {limit} bytes; dropped")]
    TooLarge {
        /// The cap that was exceeded.
        limit: usize,
    },
    /// A frame broke JPEG syntax (a byte where a marker must be, an
    /// impossible segment length). It is skipped up to the next SOI.
    #[error("JPEG frame with broken structure; dropped")]
    Corrupt,
    /// A frame was cut short: the next frame's SOI, or the end of the
    /// stream, came before its EOI.
    #[error("JPEG frame cut short (no end marker); dropped")]
    Truncated,
    /// This many bytes arrived outside any frame (no SOI in them).
    #[error("{bytes} bytes that are not JPEG; skipped")]
    Garbage {
        /// How many bytes were skipped since the last report.
        bytes: usize,
    },
    /// The underlying reader failed (only from [`FrameReader`]).
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

impl SplitError {
    /// Whether this is data the source sent that was refused (count it as a
    /// bad frame and go on) rather than a failure to read.
    pub fn is_bad_data(&self) -> bool {
        !matches!(self, SplitError::Io(_))
    }
}

/// Where the parser is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside a frame, looking for SOI; everything before it is garbage.
    Seek,
    /// Inside a frame, expecting a marker (`FF`, optional fill `FF`s, code).
    Marker,
    /// Expecting the 2-byte length of the segment whose marker was just read.
    Length { sos: bool },
    /// Skipping the rest of a segment payload.
    Skip { remaining: usize, sos: bool },
    /// Scanning entropy-coded data after an SOS header.
    Entropy,
}

/// Outcome of one parser step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Progress was made; keep stepping.
    Continue,
    /// All buffered input is consumed; wait for a push.
    NeedMore,
    /// EOI found; the frame is `buf[..end]`.
    Complete { end: usize },
    /// SOI found at `pos` inside a frame: the old frame was truncated.
    Restart,
    /// The data does not follow JPEG syntax; drop the frame and resync.
    Corrupt,
}

/// Incremental splitter: push arbitrary chunks, pull complete JPEG frames.
///
/// Invariant: while inside a frame (state other than `Seek`) the frame
/// starts at `buf[0]` and `pos` is how far it has been parsed. In discard
/// mode (oversized frame) bytes before `pos` are dropped as soon as they
/// are parsed, so the buffer does not grow.
#[derive(Debug)]
pub struct MjpegSplitter {
    buf: BytesMut,
    pos: usize,
    state: State,
    discarding: bool,
    max: usize,
    /// Bytes skipped outside any frame since the last report or good frame.
    garbage: usize,
}

impl Default for MjpegSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl MjpegSplitter {
    /// A splitter with the default [`MAX_FRAME_BYTES`] cap.
    pub fn new() -> Self {
        Self::with_max_frame(MAX_FRAME_BYTES)
    }

    /// A splitter that drops frames larger than `max` bytes.
    pub fn with_max_frame(max: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            pos: 0,
            state: State::Seek,
            discarding: false,
            max,
            garbage: 0,
        }
    }

    /// The frame size cap in bytes.
    pub fn max_frame(&self) -> usize {
        self.max
    }

    /// Append input. Call [`next_frame`](Self::next_frame) until it returns
    /// `Ok(None)` between pushes; the splitter only trims its buffer there.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes currently buffered (for tests and for "truncated input at EOF"
    /// reporting: after the last frame this is the size of the partial tail).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether the parser is currently inside a (not yet complete) frame.
    pub fn in_frame(&self) -> bool {
        self.state != State::Seek
    }

    /// Next complete frame (SOI..=EOI) as `Bytes`, `Ok(None)` when more data
    /// is needed. Data that is dropped is reported as an error, once per
    /// dropped frame (`TooLarge`, `Corrupt`, `Truncated`) or per
    /// [`GARBAGE_REPORT`] bytes between frames (`Garbage`); the splitter
    /// stays usable, so calling again continues.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, SplitError> {
        loop {
            if self.discarding {
                self.drop_parsed();
            }
            match self.step() {
                Step::Continue => {}
                Step::NeedMore => {
                    self.check_cap()?;
                    self.check_garbage()?;
                    return Ok(None);
                }
                Step::Complete { end } => {
                    if let Some(frame) = self.finish(end)? {
                        self.garbage = 0;
                        return Ok(Some(frame));
                    }
                }
                Step::Restart => {
                    let reported = self.discarding;
                    self.drop_parsed();
                    self.begin_frame();
                    if !reported {
                        return Err(SplitError::Truncated);
                    }
                }
                Step::Corrupt => {
                    let reported = self.discarding;
                    self.drop_parsed();
                    self.discarding = false;
                    self.state = State::Seek;
                    if !reported {
                        return Err(SplitError::Corrupt);
                    }
                }
            }
            self.check_cap()?;
            self.check_garbage()?;
        }
    }

    /// Reports the garbage skipped between frames once it reaches
    /// [`GARBAGE_REPORT`] bytes.
    fn check_garbage(&mut self) -> Result<(), SplitError> {
        if self.garbage >= GARBAGE_REPORT {
            let bytes = std::mem::take(&mut self.garbage);
            return Err(SplitError::Garbage { bytes });
        }
        Ok(())
    }

    /// Whether an oversized frame is being skipped (already reported).
    fn reported_too_large(&self) -> bool {
        self.discarding
    }

    /// Run one state transition.
    fn step(&mut self) -> Step {
        match self.state {
            State::Seek => self.seek(),
            State::Marker => self.marker(),
            State::Length { sos } => self.length(sos),
            State::Skip { remaining, sos } => self.skip(remaining, sos),
            State::Entropy => self.entropy(),
        }
    }

    /// Switch to discard mode once the frame being parsed exceeds the cap.
    /// Returning the error here (instead of at EOI) reports it promptly and
    /// frees the memory right away.
    fn check_cap(&mut self) -> Result<(), SplitError> {
        if self.state != State::Seek && !self.discarding && self.pos > self.max {
            self.discarding = true;
            self.drop_parsed();
            return Err(SplitError::TooLarge { limit: self.max });
        }
        Ok(())
    }

    /// Handle EOI at `end`: hand out the frame, or finish discarding it.
    fn finish(&mut self, end: usize) -> Result<Option<Bytes>, SplitError> {
        self.state = State::Seek;
        self.pos = 0;
        if self.discarding {
            self.discarding = false;
            self.buf.advance(end);
            return Ok(None);
        }
        if end > self.max {
            self.buf.advance(end);
            return Err(SplitError::TooLarge { limit: self.max });
        }
        Ok(Some(self.buf.split_to(end).freeze()))
    }

    /// Forget the bytes the parser has already walked past.
    fn drop_parsed(&mut self) {
        self.buf.advance(self.pos);
        self.pos = 0;
    }

    /// Start a frame whose SOI sits at `buf[0]`.
    fn begin_frame(&mut self) {
        self.pos = 2;
        self.state = State::Marker;
        self.discarding = false;
    }

    /// Discard garbage up to the next SOI. A trailing `FF` is kept because it
    /// may be the first half of an SOI split across pushes.
    fn seek(&mut self) -> Step {
        match find_soi(&self.buf) {
            Some(at) => {
                self.garbage += at;
                self.buf.advance(at);
                self.begin_frame();
                Step::Continue
            }
            None => {
                let keep = usize::from(self.buf.last() == Some(&MARKER));
                let skipped = self.buf.len() - keep;
                self.garbage += skipped;
                self.buf.advance(skipped);
                self.pos = 0;
                Step::NeedMore
            }
        }
    }

    /// Read a marker at `pos`, skipping fill bytes (`FF FF ..`).
    fn marker(&mut self) -> Step {
        let rest = &self.buf[self.pos..];
        match rest.first() {
            None => return Step::NeedMore,
            Some(&MARKER) => {}
            Some(_) => return Step::Corrupt,
        }
        let Some(fill) = rest[1..].iter().position(|&b| b != MARKER) else {
            // Only FFs so far: keep the last one as the marker prefix.
            self.pos += rest.len() - 1;
            return Step::NeedMore;
        };
        let code = rest[fill + 1];
        self.pos += fill;
        match code {
            EOI => Step::Complete { end: self.pos + 2 },
            SOI => Step::Restart,
            0xD0..=0xD7 => {
                // RST only occurs between entropy-coded intervals.
                self.pos += 2;
                self.state = State::Entropy;
                Step::Continue
            }
            TEM => {
                self.pos += 2;
                Step::Continue
            }
            0x00 => Step::Corrupt,
            _ => {
                self.pos += 2;
                self.state = State::Length { sos: code == SOS };
                Step::Continue
            }
        }
    }

    /// Read a segment length (which counts its own two bytes).
    fn length(&mut self, sos: bool) -> Step {
        let Some(len) = read_u16(&self.buf, self.pos) else {
            return Step::NeedMore;
        };
        let Some(remaining) = usize::from(len).checked_sub(2) else {
            return Step::Corrupt;
        };
        self.pos += 2;
        self.state = State::Skip { remaining, sos };
        Step::Continue
    }

    /// Skip segment payload without looking at it (it may contain anything,
    /// including a whole thumbnail JPEG).
    fn skip(&mut self, remaining: usize, sos: bool) -> Step {
        let take = remaining.min(self.buf.len() - self.pos);
        self.pos += take;
        let remaining = remaining - take;
        if remaining > 0 {
            self.state = State::Skip { remaining, sos };
            return Step::NeedMore;
        }
        self.state = if sos { State::Entropy } else { State::Marker };
        Step::Continue
    }

    /// Scan entropy-coded data for the next real marker. `pos` only moves
    /// forward, so data is never rescanned across pushes.
    fn entropy(&mut self) -> Step {
        loop {
            let Some(off) = self.buf[self.pos..].iter().position(|&b| b == MARKER) else {
                self.pos = self.buf.len();
                return Step::NeedMore;
            };
            let at = self.pos + off;
            match self.buf.get(at + 1) {
                None => {
                    self.pos = at;
                    return Step::NeedMore;
                }
                // Stuffed zero or restart marker: still entropy data.
                Some(0x00 | 0xD0..=0xD7) => self.pos = at + 2,
                // Fill byte: look at what follows it.
                Some(&MARKER) => self.pos = at + 1,
                Some(_) => {
                    self.pos = at;
                    self.state = State::Marker;
                    return Step::Continue;
                }
            }
        }
    }
}

/// The picture in `data`, a buffer meant to hold exactly one (a snapshot
/// URL's answer, a `.jpg` file, a V4L2 buffer). A buffer from SOI to EOI is
/// returned as it is; otherwise the splitter looks for the first whole frame,
/// so padding around it is ignored (some cameras fill their buffers with
/// zeros), and a picture cut short is `Truncated`.
pub fn one_frame(data: Bytes) -> Result<Bytes, SplitError> {
    if data.len() > MAX_FRAME_BYTES {
        return Err(SplitError::TooLarge {
            limit: MAX_FRAME_BYTES,
        });
    }
    if data.starts_with(&[MARKER, SOI]) && data.ends_with(&[MARKER, EOI]) {
        return Ok(data);
    }
    let mut splitter = MjpegSplitter::new();
    splitter.push(&data);
    match splitter.next_frame()? {
        Some(frame) => Ok(frame),
        None if splitter.in_frame() => Err(SplitError::Truncated),
        None => Err(SplitError::Garbage { bytes: data.len() }),
    }
}

/// Position of the first `FF D8` in `data`.
fn find_soi(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|w| w == [MARKER, SOI])
}

/// Reads frames from any `AsyncRead` (child stdout, file, HTTP body via
/// `StreamReader`).
///
/// `next_frame` is cancel safe if the reader's `read` is (as tokio's pipes,
/// files and `StreamReader` are): a dropped call loses no data, so it can be
/// used inside `tokio::select!`.
#[derive(Debug)]
pub struct FrameReader<R> {
    reader: R,
    splitter: MjpegSplitter,
    eof: bool,
    /// The frame cut short by the end of the stream was reported.
    tail_reported: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader with the default [`MAX_FRAME_BYTES`] cap.
    pub fn new(reader: R) -> Self {
        Self::with_max_frame(reader, MAX_FRAME_BYTES)
    }

    /// A reader that drops frames larger than `max` bytes.
    pub fn with_max_frame(reader: R, max: usize) -> Self {
        Self {
            reader,
            splitter: MjpegSplitter::with_max_frame(max),
            eof: false,
            tail_reported: false,
        }
    }

    /// `Ok(Some(frame))`, or `Ok(None)` at EOF, or `Err`. Dropped data
    /// (see [`MjpegSplitter::next_frame`], and a final frame cut short by the
    /// end of the stream: `Truncated`) is returned as an error so the caller
    /// can count it ([`SplitError::is_bad_data`]); the reader stays usable.
    pub async fn next_frame(&mut self) -> Result<Option<Bytes>, SplitError> {
        loop {
            if let Some(frame) = self.splitter.next_frame()? {
                return Ok(Some(frame));
            }
            if self.eof {
                let cut = self.splitter.in_frame() && !self.splitter.reported_too_large();
                if cut && !self.tail_reported {
                    self.tail_reported = true;
                    return Err(SplitError::Truncated);
                }
                return Ok(None);
            }
            self.fill().await?;
        }
    }

    /// Bytes of an incomplete frame still buffered; after `next_frame`
    /// returned `Ok(None)` this is the size of the discarded truncated tail.
    pub fn buffered(&self) -> usize {
        self.splitter.buffered()
    }

    /// Give back the underlying reader (buffered bytes are lost).
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// Read one chunk straight into the splitter's buffer (no extra copy).
    async fn fill(&mut self) -> Result<(), SplitError> {
        self.splitter.buf.reserve(READ_CHUNK);
        let n = (&mut self.reader)
            .take(READ_CHUNK as u64)
            .read_buf(&mut self.splitter.buf)
            .await?;
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jpeg::dimensions;
    use crate::jpeg::samples::{dht, dqt, entropy, jpeg, segment, sos};

    /// A JPEG whose APP1 carries a complete thumbnail JPEG.
    fn jpeg_with_exif_thumbnail() -> Vec<u8> {
        let mut exif = b"Exif\0\0".to_vec();
        exif.extend(jpeg(4, 3));
        let mut out = vec![0xFF, 0xD8];
        out.extend(segment(0xE1, &exif));
        out.extend(jpeg(640, 480)[2..].iter().copied());
        out
    }

    /// A progressive-style JPEG: several DHT+SOS scans before EOI.
    fn progressive_jpeg() -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8];
        out.extend(dqt());
        out.extend(segment(0xC2, &[8, 0, 16, 0, 32, 1, 1, 0x11, 0]));
        for _ in 0..3 {
            out.extend(dht());
            out.extend(sos());
            out.extend(entropy());
        }
        out.extend([0xFF, 0xD9]);
        out
    }

    const MULTIPART: &[u8] = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 123\r\n\r\n";

    fn drain(splitter: &mut MjpegSplitter) -> Vec<Bytes> {
        let mut frames = Vec::new();
        while let Some(frame) = splitter.next_frame().unwrap() {
            frames.push(frame);
        }
        frames
    }

    /// The frames and the errors (as text) of a stream pushed in one piece.
    fn split_reporting(stream: &[u8]) -> (Vec<Bytes>, Vec<String>) {
        let mut splitter = MjpegSplitter::new();
        splitter.push(stream);
        let (mut frames, mut errors) = (Vec::new(), Vec::new());
        loop {
            match splitter.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => return (frames, errors),
                Err(e) => errors.push(e.to_string()),
            }
        }
    }

    fn split_all(chunks: &[&[u8]]) -> Vec<Bytes> {
        let mut splitter = MjpegSplitter::new();
        let mut frames = Vec::new();
        for chunk in chunks {
            splitter.push(chunk);
            frames.extend(drain(&mut splitter));
        }
        frames
    }

    /// Garbage, two frames and more garbage as one stream plus the frames.
    fn mixed_stream() -> (Vec<u8>, Vec<Vec<u8>>) {
        let frames = vec![
            jpeg(320, 240),
            jpeg_with_exif_thumbnail(),
            progressive_jpeg(),
        ];
        let mut stream = Vec::new();
        for frame in &frames {
            stream.extend_from_slice(MULTIPART);
            stream.extend_from_slice(&[0xFF, 0xFF, 0x00, 0xFF, 0xD9, 0xFF]);
            stream.extend_from_slice(frame);
            stream.extend_from_slice(b"\r\n");
        }
        stream.extend_from_slice(b"--frame--\r\n\xFF");
        (stream, frames)
    }

    #[test]
    fn one_frame_one_push() {
        let frame = jpeg(320, 240);
        let got = split_all(&[&frame]);
        assert_eq!(got, vec![Bytes::from(frame)]);
    }

    #[test]
    fn needs_more_data_until_eoi() {
        let frame = jpeg(320, 240);
        let mut splitter = MjpegSplitter::new();
        splitter.push(&frame[..frame.len() - 1]);
        assert!(splitter.next_frame().unwrap().is_none());
        assert!(splitter.in_frame());
        splitter.push(&frame[frame.len() - 1..]);
        assert_eq!(splitter.next_frame().unwrap().unwrap(), frame);
        assert!(splitter.next_frame().unwrap().is_none());
        assert_eq!(splitter.buffered(), 0);
    }

    #[test]
    fn several_frames_one_push() {
        let (stream, frames) = mixed_stream();
        let got = split_all(&[&stream]);
        assert_eq!(got, frames);
    }

    #[test]
    fn frames_split_at_every_position() {
        let (stream, frames) = mixed_stream();
        for cut in 0..=stream.len() {
            let got = split_all(&[&stream[..cut], &stream[cut..]]);
            assert_eq!(got, frames, "split at {cut}");
        }
    }

    #[test]
    fn frames_split_at_every_pair_of_positions() {
        let frame = jpeg(16, 16);
        for a in 0..=frame.len() {
            for b in a..=frame.len() {
                let got = split_all(&[&frame[..a], &frame[a..b], &frame[b..]]);
                assert_eq!(got, vec![Bytes::from(frame.clone())], "split at {a}/{b}");
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let (stream, frames) = mixed_stream();
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(split_all(&chunks), frames);
    }

    #[test]
    fn garbage_before_and_between_frames() {
        let a = jpeg(1, 2);
        let b = jpeg(3, 4);
        let mut stream = b"\xFF\xFF\xFFhello\xFF\xD9\x00".to_vec();
        stream.extend_from_slice(MULTIPART);
        stream.extend_from_slice(&a);
        stream.extend_from_slice(b"\r\n\xFF");
        stream.extend_from_slice(MULTIPART);
        stream.extend_from_slice(&b);
        let got = split_all(&[&stream]);
        assert_eq!(got, vec![Bytes::from(a), Bytes::from(b)]);
    }

    #[test]
    fn garbage_alone_is_not_retained() {
        let mut splitter = MjpegSplitter::new();
        for _ in 0..1000 {
            splitter.push(MULTIPART);
            assert!(splitter.next_frame().unwrap().is_none());
        }
        splitter.push(b"\xFF");
        assert!(splitter.next_frame().unwrap().is_none());
        assert_eq!(splitter.buffered(), 1, "only a possible SOI prefix is kept");
        assert!(!splitter.in_frame());
    }

    #[test]
    fn exif_thumbnail_does_not_end_frame() {
        let outer = jpeg_with_exif_thumbnail();
        let got = split_all(&[&outer]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0], outer);
        assert_eq!(dimensions(&got[0]), Some((640, 480)));
    }

    #[test]
    fn progressive_scans_continue_frame() {
        let frame = progressive_jpeg();
        assert_eq!(split_all(&[&frame]), vec![Bytes::from(frame.clone())]);
        assert_eq!(dimensions(&frame), Some((32, 16)));
    }

    #[test]
    fn truncated_frame_followed_by_new_soi_resyncs() {
        let full = jpeg(8, 8);
        // Cut in entropy data: the next frame's SOI is then seen as a marker.
        let mut stream = full[..full.len() - 6].to_vec();
        stream.extend_from_slice(&full);
        let (frames, errors) = split_reporting(&stream);
        assert_eq!(frames, vec![Bytes::from(full)]);
        assert_eq!(errors, [SplitError::Truncated.to_string()]);
    }

    #[test]
    fn corrupt_segment_resyncs_on_next_soi() {
        let good = jpeg(8, 8);
        // Segment length 1 is impossible.
        let mut stream = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 0xAA];
        stream.extend_from_slice(&good);
        // Non-marker byte where a marker is required.
        stream.extend_from_slice(&[0xFF, 0xD8, 0x12, 0x34]);
        stream.extend_from_slice(&good);
        let (frames, errors) = split_reporting(&stream);
        assert_eq!(frames, vec![Bytes::from(good.clone()), Bytes::from(good)]);
        let corrupt = SplitError::Corrupt.to_string();
        assert_eq!(errors, [corrupt.clone(), corrupt]);
    }

    #[test]
    fn garbage_is_reported_per_mebibyte_and_not_kept() {
        let mut splitter = MjpegSplitter::new();
        let chunk = [b'x'; 4096];
        let mut reports = 0;
        for _ in 0..(3 * GARBAGE_REPORT / chunk.len()) {
            splitter.push(&chunk);
            loop {
                match splitter.next_frame() {
                    Ok(Some(_)) => panic!("no frame in garbage"),
                    Ok(None) => break,
                    Err(SplitError::Garbage { bytes }) => {
                        assert_eq!(bytes, GARBAGE_REPORT);
                        reports += 1;
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            assert!(splitter.buffered() <= 1);
        }
        assert_eq!(reports, 3);
        // A good frame afterwards comes out, and the count starts over.
        splitter.push(&jpeg(4, 4));
        assert!(splitter.next_frame().unwrap().is_some());
    }

    #[test]
    fn one_frame_takes_the_picture_out_of_a_buffer() {
        let good = jpeg(8, 6);
        assert_eq!(one_frame(Bytes::from(good.clone())).unwrap(), good);
        let mut padded = good.clone();
        padded.extend([0; 100]);
        assert_eq!(one_frame(Bytes::from(padded)).unwrap(), good);
        let cut = Bytes::copy_from_slice(&good[..good.len() - 5]);
        assert!(matches!(one_frame(cut), Err(SplitError::Truncated)));
        assert!(matches!(
            one_frame(Bytes::from_static(b"<html>no</html>")),
            Err(SplitError::Garbage { bytes: 15 })
        ));
        let huge = Bytes::from(vec![0; MAX_FRAME_BYTES + 1]);
        assert!(matches!(one_frame(huge), Err(SplitError::TooLarge { .. })));
    }

    #[test]
    fn oversized_frame_reported_once_then_recovers() {
        let small = jpeg(2, 2);
        let mut big = vec![0xFF, 0xD8];
        big.extend(segment(0xFE, &[0x55; 1000]));
        big.extend(sos());
        big.extend(vec![0x11; 3000]);
        big.extend([0xFF, 0xD9]);
        let max = small.len() + 10;
        let mut stream = big.clone();
        stream.extend_from_slice(&small);

        for chunk_size in [1, 7, 100, stream.len()] {
            let mut splitter = MjpegSplitter::with_max_frame(max);
            let mut frames = Vec::new();
            let mut errors = 0;
            let mut peak = 0;
            for chunk in stream.chunks(chunk_size) {
                splitter.push(chunk);
                loop {
                    match splitter.next_frame() {
                        Ok(Some(frame)) => frames.push(frame),
                        Ok(None) => break,
                        Err(SplitError::TooLarge { limit }) => {
                            assert_eq!(limit, max);
                            errors += 1;
                        }
                        Err(other) => panic!("unexpected {other}"),
                    }
                    peak = peak.max(splitter.buffered());
                }
                peak = peak.max(splitter.buffered());
            }
            assert_eq!(errors, 1, "chunk size {chunk_size}");
            assert_eq!(
                frames,
                vec![Bytes::from(small.clone())],
                "chunk {chunk_size}"
            );
            if chunk_size < stream.len() {
                assert!(peak <= max + chunk_size + 2, "buffered {peak} > cap");
            }
        }
    }

    #[test]
    fn oversized_frame_with_thumbnail_does_not_leak_inner_frame() {
        // When an oversized frame is dropped, its EXIF thumbnail must not be
        // mistaken for the next frame.
        let outer = jpeg_with_exif_thumbnail();
        let mut splitter = MjpegSplitter::with_max_frame(50);
        splitter.push(&outer);
        assert!(matches!(
            splitter.next_frame(),
            Err(SplitError::TooLarge { limit: 50 })
        ));
        assert!(splitter.next_frame().unwrap().is_none());
        assert_eq!(splitter.buffered(), 0);
    }

    #[test]
    fn frame_exactly_at_cap_is_accepted() {
        let frame = jpeg(5, 5);
        let mut splitter = MjpegSplitter::with_max_frame(frame.len());
        splitter.push(&frame);
        assert_eq!(splitter.next_frame().unwrap().unwrap(), frame);

        let mut splitter = MjpegSplitter::with_max_frame(frame.len() - 1);
        splitter.push(&frame);
        splitter.push(&frame);
        assert!(splitter.next_frame().is_err());
        assert!(splitter.next_frame().is_err());
        assert!(splitter.next_frame().unwrap().is_none());
    }

    #[test]
    fn default_cap() {
        assert_eq!(MjpegSplitter::default().max_frame(), MAX_FRAME_BYTES);
        assert_eq!(MAX_FRAME_BYTES, 16 * 1024 * 1024);
    }

    #[tokio::test]
    async fn frame_reader_over_slice() {
        let (stream, frames) = mixed_stream();
        let mut reader = FrameReader::new(&stream[..]);
        let mut got = Vec::new();
        while let Some(frame) = reader.next_frame().await.unwrap() {
            got.push(frame);
        }
        assert_eq!(got, frames);
        assert!(reader.next_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn frame_reader_truncated_input_at_eof() {
        let frame = jpeg(10, 10);
        let mut stream = frame.clone();
        stream.extend_from_slice(&frame[..frame.len() - 3]);
        let mut reader = FrameReader::new(&stream[..]);
        assert_eq!(reader.next_frame().await.unwrap().unwrap(), frame);
        assert!(matches!(
            reader.next_frame().await,
            Err(SplitError::Truncated)
        ));
        assert!(reader.next_frame().await.unwrap().is_none());
        assert_eq!(reader.buffered(), frame.len() - 3);
    }

    #[tokio::test]
    async fn frame_reader_duplex_tiny_writes() {
        use tokio::io::AsyncWriteExt;
        let (stream, frames) = mixed_stream();
        let (mut tx, rx) = tokio::io::duplex(8);
        let writer = tokio::spawn(async move {
            for chunk in stream.chunks(3) {
                tx.write_all(chunk).await.unwrap();
            }
        });
        let mut reader = FrameReader::new(rx);
        let mut got = Vec::new();
        while let Some(frame) = reader.next_frame().await.unwrap() {
            got.push(frame);
        }
        writer.await.unwrap();
        assert_eq!(got, frames);
    }

    #[tokio::test]
    async fn frame_reader_too_large_then_continues() {
        let small = jpeg(2, 2);
        let mut stream = jpeg_with_exif_thumbnail();
        stream.extend_from_slice(&small);
        let mut reader = FrameReader::with_max_frame(&stream[..], small.len());
        assert!(matches!(
            reader.next_frame().await,
            Err(SplitError::TooLarge { .. })
        ));
        assert_eq!(reader.next_frame().await.unwrap().unwrap(), small);
        assert!(reader.next_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn frame_reader_reports_io_errors() {
        let reader = tokio_test_reader_error();
        let mut reader = FrameReader::new(reader);
        let err = reader.next_frame().await.unwrap_err();
        assert!(matches!(err, SplitError::Io(_)));
        assert!(err.to_string().starts_with("read error: "));
    }

    /// A reader that fails immediately.
    fn tokio_test_reader_error() -> impl AsyncRead + Unpin {
        struct Failing;
        impl AsyncRead for Failing {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                _: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Err(std::io::Error::other("boom")))
            }
        }
        Failing
    }

    #[test]
    fn large_frame_fed_in_small_chunks_is_linear() {
        // 4 MiB of entropy data pushed 1 KiB at a time: a rescanning splitter
        // would do ~8 billion byte comparisons here and time out.
        let mut frame = vec![0xFF, 0xD8];
        frame.extend(sos());
        frame.extend(std::iter::repeat_n(0x42, 4 << 20));
        frame.extend([0xFF, 0xD9]);
        let mut splitter = MjpegSplitter::new();
        let start = std::time::Instant::now();
        let mut got = Vec::new();
        for chunk in frame.chunks(1024) {
            splitter.push(chunk);
            got.extend(drain(&mut splitter));
        }
        assert_eq!(got, vec![Bytes::from(frame)]);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
