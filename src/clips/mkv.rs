//! Matroska files of the camera's own JPEGs (codec `V_MJPEG`), written as
//! they are recorded and readable at every step.
//!
//! # Why Matroska
//! - Every frame carries its own timestamp, so a clip keeps the real capture
//!   times of a camera that delivers frames unevenly (AVI has one fixed
//!   frame rate, so its timing drifts or frames must be duplicated).
//! - A cluster may have an "unknown" size, as in live streams: the file on
//!   disk is a playable Matroska file after every frame. A crash loses at
//!   most the frame being written, and [`finish_partial`] only has to cut that
//!   frame off and add the index.
//! - ffmpeg, ffprobe, VLC and mpv all read `V_MJPEG` in Matroska.
//!
//! # Layout
//! ```text
//! EBML header
//! Segment (size patched at the end)
//!   Void (a slot for the SeekHead written at the end)
//!   Info (timestamps in ms, start time, Duration patched at the end)
//!   Tracks (one video track, V_MJPEG, width and height)
//!   Cluster* (Timestamp, SimpleBlock*; a new one each second; the size of
//!             each is patched when the next one starts)
//!   Cues (one point per cluster, for seeking)
//! ```
//!
//! Only the files written here are read back ([`scan`]): the reader knows the
//! elements above and skips any other.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const EBML: u32 = 0x1A45_DFA3;
const EBML_VERSION: u32 = 0x4286;
const EBML_READ_VERSION: u32 = 0x42F7;
const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
const DOC_TYPE: u32 = 0x4282;
const DOC_TYPE_VERSION: u32 = 0x4287;
const DOC_TYPE_READ_VERSION: u32 = 0x4285;
const SEGMENT: u32 = 0x1853_8067;
const SEEK_HEAD: u32 = 0x114D_9B74;
const SEEK: u32 = 0x4DBB;
const SEEK_ID: u32 = 0x53AB;
const SEEK_POSITION: u32 = 0x53AC;
const VOID: u32 = 0xEC;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const DATE_UTC: u32 = 0x4461;
const MUXING_APP: u32 = 0x4D80;
const WRITING_APP: u32 = 0x5741;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_UID: u32 = 0x73C5;
const TRACK_TYPE: u32 = 0x83;
const FLAG_LACING: u32 = 0x9C;
const CODEC_ID: u32 = 0x86;
const DEFAULT_DURATION: u32 = 0x23_E383;
const VIDEO: u32 = 0xE0;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const CLUSTER: u32 = 0x1F43_B675;
const TIMESTAMP: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;
const CUES: u32 = 0x1C53_BB6B;
const CUE_POINT: u32 = 0xBB;
const CUE_TIME: u32 = 0xB3;
const CUE_TRACK_POSITIONS: u32 = 0xB7;
const CUE_TRACK: u32 = 0xF7;
const CUE_CLUSTER_POSITION: u32 = 0xF1;

/// An 8-byte size field meaning "unknown" (the element runs to what follows).
const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
/// Bytes kept free after the Segment header for the SeekHead.
const SEEK_SLOT: usize = 96;
/// A new cluster starts this often (and block times are relative to it, at
/// most ±32.7 s).
const CLUSTER_MS: u64 = 1000;
/// Unix seconds of Matroska's epoch, 2001-01-01T00:00:00 UTC.
const MATROSKA_EPOCH: u64 = 978_307_200;
/// The largest frame accepted into a clip (the sources' own cap is lower).
const MAX_FRAME: u64 = 64 * 1024 * 1024;

/// Why a clip file could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum MkvError {
    /// Reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Not a Matroska file written by lookout.
    #[error("not a clip file: {0}")]
    Format(&'static str),
    /// A valid start, but no frame in it.
    #[error("no frame in the clip")]
    Empty,
}

/// One frame of a clip: where its JPEG lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FrameRef {
    /// Milliseconds since the clip's first frame.
    pub t_ms: u64,
    /// Offset of the JPEG's first byte in the file.
    pub offset: u64,
    /// Length of the JPEG.
    pub len: u64,
}

/// What a clip holds, as read from its file.
#[derive(Debug, Clone, Default)]
pub struct Scanned {
    /// Its frames in order.
    pub frames: Vec<FrameRef>,
    /// Wall-clock time of the first frame, when the file says.
    pub start: Option<SystemTime>,
    /// Picture size.
    pub width: u32,
    /// Picture size.
    pub height: u32,
    /// The nominal time of one frame, ms (from the track's default duration).
    pub frame_ms: u64,
    /// The Duration written in the header (0 while recording).
    pub duration_ms: f64,
    /// Where the complete data ends (after the last whole element).
    end: u64,
    /// Where the Segment's data starts (positions in Cues and SeekHead are
    /// relative to it).
    segment_data: u64,
    /// Where the Segment's 8-byte size field is.
    segment_size_at: u64,
    /// Whether the Segment's size is written (the file was finished).
    finished: bool,
    /// Where the Duration's 8-byte float is.
    duration_at: Option<u64>,
    /// The Void slot kept for the SeekHead: where, and how big.
    seek_slot: Option<(u64, u64)>,
    /// Each cluster: the position of its 8-byte size field, where its data
    /// starts and ends, its timestamp, and whether its size was unknown.
    clusters: Vec<ClusterRef>,
    /// Where Info and Tracks start.
    info_at: u64,
    tracks_at: u64,
}

#[derive(Debug, Clone, Copy)]
struct ClusterRef {
    start: u64,
    size_at: u64,
    data: u64,
    end: u64,
    ts: u64,
    unknown: bool,
}

impl Scanned {
    /// The clip's length: the last frame's time plus one frame.
    pub fn duration(&self) -> Duration {
        match self.frames.last() {
            Some(f) => Duration::from_millis(f.t_ms + self.frame_ms),
            None => Duration::ZERO,
        }
    }
}

/// Writes a clip frame by frame. Every write goes straight to the file (no
/// buffer in this process), so what `kill -9` leaves is on disk.
pub struct Writer {
    file: File,
    pos: u64,
    segment_data: u64,
    info_at: u64,
    tracks_at: u64,
    duration_at: u64,
    frame_ms: u64,
    cluster: Option<ClusterRef>,
    cues: Vec<(u64, u64)>,
    frames: u64,
    last_t: Option<u64>,
}

impl Writer {
    /// Starts a clip in `file` (empty, opened for writing) of `width` x
    /// `height` pictures at nominally `fps`, whose first frame was taken at
    /// `start`.
    pub fn new(
        mut file: File,
        width: u32,
        height: u32,
        fps: u32,
        start: SystemTime,
    ) -> io::Result<Writer> {
        let frame_ms = 1000 / u64::from(fps.max(1));
        let mut head = Vec::with_capacity(512);
        master(
            &mut head,
            EBML,
            &[
                uint(EBML_VERSION, 1),
                uint(EBML_READ_VERSION, 1),
                uint(EBML_MAX_ID_LENGTH, 4),
                uint(EBML_MAX_SIZE_LENGTH, 8),
                string(DOC_TYPE, "matroska"),
                uint(DOC_TYPE_VERSION, 4),
                uint(DOC_TYPE_READ_VERSION, 2),
            ]
            .concat(),
        );
        put_id(&mut head, SEGMENT);
        head.extend_from_slice(&UNKNOWN_SIZE);
        let segment_data = head.len() as u64;
        void(&mut head, SEEK_SLOT);
        let info_at = head.len() as u64;
        let since_epoch = start
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .saturating_sub(Duration::from_secs(MATROSKA_EPOCH));
        let info_body = [
            uint(TIMESTAMP_SCALE, 1_000_000),
            string(MUXING_APP, "lookout"),
            string(WRITING_APP, "lookout"),
            fixed(DATE_UTC, since_epoch.as_nanos() as u64),
        ]
        .concat();
        // Duration goes last so its position is the body's end minus 8.
        let mut info = info_body;
        put_id(&mut info, DURATION);
        info.push(0x88);
        info.extend_from_slice(&0f64.to_be_bytes());
        master(&mut head, INFO, &info);
        let duration_at = head.len() as u64 - 8;
        let tracks_at = head.len() as u64;
        let video = [
            uint(PIXEL_WIDTH, width.into()),
            uint(PIXEL_HEIGHT, height.into()),
        ]
        .concat();
        let mut entry = [
            uint(TRACK_NUMBER, 1),
            uint(TRACK_UID, 1),
            uint(TRACK_TYPE, 1),
            uint(FLAG_LACING, 0),
            string(CODEC_ID, "V_MJPEG"),
            uint(DEFAULT_DURATION, frame_ms * 1_000_000),
        ]
        .concat();
        master(&mut entry, VIDEO, &video);
        let mut track = Vec::new();
        master(&mut track, TRACK_ENTRY, &entry);
        master(&mut head, TRACKS, &track);
        file.write_all(&head)?;
        Ok(Writer {
            file,
            pos: head.len() as u64,
            segment_data,
            info_at,
            tracks_at,
            duration_at,
            frame_ms,
            cluster: None,
            cues: Vec::new(),
            frames: 0,
            last_t: None,
        })
    }

    /// Appends one JPEG taken `t_ms` after the first frame. Times must not
    /// go back; an earlier time is written as the last one.
    pub fn write_frame(&mut self, t_ms: u64, jpeg: &[u8]) -> io::Result<()> {
        let t = t_ms.max(self.last_t.unwrap_or(0));
        let new_cluster = match self.cluster {
            None => true,
            Some(c) => t - c.ts >= CLUSTER_MS,
        };
        if new_cluster {
            self.close_cluster()?;
            let mut head = Vec::with_capacity(24);
            put_id(&mut head, CLUSTER);
            let size_at = self.pos + head.len() as u64;
            head.extend_from_slice(&UNKNOWN_SIZE);
            let data = self.pos + head.len() as u64;
            head.extend_from_slice(&uint(TIMESTAMP, t));
            self.file.write_all(&head)?;
            self.cues.push((t, self.pos - self.segment_data));
            self.cluster = Some(ClusterRef {
                start: self.pos,
                size_at,
                data,
                end: 0,
                ts: t,
                unknown: true,
            });
            self.pos += head.len() as u64;
        }
        let ts = self.cluster.map_or(t, |c| c.ts);
        let rel = (t - ts) as i16;
        let mut head = Vec::with_capacity(16);
        put_id(&mut head, SIMPLE_BLOCK);
        put_size(&mut head, jpeg.len() as u64 + 4);
        head.push(0x81); // track 1
        head.extend_from_slice(&rel.to_be_bytes());
        head.push(0x80); // keyframe: every JPEG stands alone
        self.file.write_all(&head)?;
        self.file.write_all(jpeg)?;
        self.pos += head.len() as u64 + jpeg.len() as u64;
        self.frames += 1;
        self.last_t = Some(t);
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.pos
    }

    /// Pushes what was written to the disk (for a power cut; a crash of
    /// the process alone loses nothing written).
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Writes the size of the open cluster, now that it is complete.
    fn close_cluster(&mut self) -> io::Result<()> {
        if let Some(c) = self.cluster.take() {
            self.file
                .write_all_at(&size8(self.pos - c.data), c.size_at)?;
        }
        Ok(())
    }

    /// Finishes the file: cluster size, Cues, SeekHead, Duration and Segment
    /// size, then syncs it. Returns the clip's duration.
    pub fn finish(mut self) -> io::Result<Duration> {
        self.close_cluster()?;
        let duration_ms = self.last_t.map_or(0, |t| t + self.frame_ms);
        let end = Ends {
            segment_data: self.segment_data,
            segment_size_at: self.segment_data - 8,
            seek_slot: (self.segment_data, SEEK_SLOT as u64),
            info_at: self.info_at,
            tracks_at: self.tracks_at,
            duration_at: self.duration_at,
        };
        end.write(&self.file, self.pos, &self.cues, duration_ms)?;
        self.file.sync_all()?;
        Ok(Duration::from_millis(duration_ms))
    }
}

/// Where the finishing touches go.
struct Ends {
    segment_data: u64,
    segment_size_at: u64,
    seek_slot: (u64, u64),
    info_at: u64,
    tracks_at: u64,
    duration_at: u64,
}

impl Ends {
    /// Appends Cues at `pos` and fills in the SeekHead, Duration and Segment
    /// size.
    fn write(
        &self,
        file: &File,
        pos: u64,
        cues: &[(u64, u64)],
        duration_ms: u64,
    ) -> io::Result<()> {
        let mut points = Vec::new();
        for &(t, at) in cues {
            let positions = [uint(CUE_TRACK, 1), uint(CUE_CLUSTER_POSITION, at)].concat();
            let mut body = uint(CUE_TIME, t);
            master(&mut body, CUE_TRACK_POSITIONS, &positions);
            master(&mut points, CUE_POINT, &body);
        }
        let mut cues_el = Vec::new();
        master(&mut cues_el, CUES, &points);
        file.write_all_at(&cues_el, pos)?;
        let end = pos + cues_el.len() as u64;
        let rel = |at: u64| at - self.segment_data;
        let mut seeks = Vec::new();
        for (id, at) in [(INFO, self.info_at), (TRACKS, self.tracks_at), (CUES, pos)] {
            let mut body = Vec::new();
            let mut id_bytes = Vec::new();
            put_id(&mut id_bytes, id);
            bin(&mut body, SEEK_ID, &id_bytes);
            body.extend_from_slice(&fixed(SEEK_POSITION, rel(at)));
            master(&mut seeks, SEEK, &body);
        }
        let mut slot = Vec::new();
        master(&mut slot, SEEK_HEAD, &seeks);
        let (slot_at, slot_len) = self.seek_slot;
        if (slot.len() as u64) + 2 <= slot_len {
            let rest = (slot_len - slot.len() as u64) as usize;
            void(&mut slot, rest);
            file.write_all_at(&slot, slot_at)?;
        }
        file.write_all_at(&(duration_ms as f64).to_be_bytes(), self.duration_at)?;
        file.write_all_at(&size8(end - self.segment_data), self.segment_size_at)?;
        file.set_len(end)?;
        Ok(())
    }
}

/// Makes a clip left unfinished (by a crash) whole: cuts off a frame that
/// was being written, then adds what [`Writer::finish`] would have. Returns
/// what the file now holds; [`MkvError::Empty`] when not one frame made it
/// (the caller removes the file).
pub fn finish_partial(file: &File) -> Result<Scanned, MkvError> {
    let mut s = scan(file)?;
    if s.frames.is_empty() {
        return Err(MkvError::Empty);
    }
    if s.finished {
        return Ok(s);
    }
    file.set_len(s.end)?;
    let mut cues = Vec::with_capacity(s.clusters.len());
    for c in &mut s.clusters {
        if c.unknown {
            c.end = c.end.min(s.end);
            file.write_all_at(&size8(c.end - c.data), c.size_at)?;
            c.unknown = false;
        }
        cues.push((c.ts, c.start - s.segment_data));
    }
    let duration_ms = s.duration().as_millis() as u64;
    let Some(duration_at) = s.duration_at else {
        return Err(MkvError::Format("no Duration in Info"));
    };
    let ends = Ends {
        segment_data: s.segment_data,
        segment_size_at: s.segment_size_at,
        seek_slot: s.seek_slot.unwrap_or((0, 0)),
        info_at: s.info_at,
        tracks_at: s.tracks_at,
        duration_at,
    };
    ends.write(file, s.end, &cues, duration_ms)?;
    file.sync_all()?;
    s.finished = true;
    s.duration_ms = duration_ms as f64;
    Ok(s)
}

/// Reads a clip's layout: its frames and where they are. Stops at the first
/// element that is cut short, so a file left by a crash reads up to its
/// last whole frame.
pub fn scan(file: &File) -> Result<Scanned, MkvError> {
    let len = file.metadata()?.len();
    let mut r = Reader {
        inner: BufReader::with_capacity(16 * 1024, file),
        pos: 0,
        len,
    };
    r.inner.seek(SeekFrom::Start(0))?;
    let Some((id, size)) = r.head()? else {
        return Err(MkvError::Format("empty file"));
    };
    if id != EBML {
        return Err(MkvError::Format("no EBML header"));
    }
    r.seek(r.pos + size.ok_or(MkvError::Format("EBML header of unknown size"))?)?;
    let segment_size_at = r.pos + 4;
    let Some((SEGMENT, seg_size)) = r.head()? else {
        return Err(MkvError::Format("no Segment"));
    };
    if r.pos != segment_size_at + 8 {
        return Err(MkvError::Format("Segment size is not 8 bytes"));
    }
    let mut s = Scanned {
        segment_data: r.pos,
        segment_size_at,
        finished: seg_size.is_some(),
        ..Scanned::default()
    };
    let seg_end = seg_size.map_or(len, |n| (r.pos + n).min(len));
    s.end = r.pos;
    while r.pos < seg_end {
        let at = r.pos;
        let Some((id, size)) = r.head()? else { break };
        let body = r.pos;
        if id == CLUSTER {
            // A cluster being recorded runs to what follows; read it up to
            // its last whole block.
            let end = size.map_or(seg_end, |n| (body + n).min(seg_end));
            read_cluster(&mut r, at, body, end, &mut s)?;
            let cut_short = size.is_some_and(|n| s.end < body + n);
            if cut_short {
                break;
            }
            r.seek(s.end)?;
            continue;
        }
        let Some(size) = size else {
            return Err(MkvError::Format("element of unknown size"));
        };
        if body + size > seg_end {
            break;
        }
        match id {
            VOID if at == s.segment_data => s.seek_slot = Some((at, body + size - at)),
            INFO => {
                s.info_at = at;
                read_info(&mut r, body + size, &mut s)?;
            }
            TRACKS => {
                s.tracks_at = at;
                read_tracks(&mut r, body + size, &mut s)?;
            }
            _ => {}
        }
        r.seek(body + size)?;
        s.end = body + size;
    }
    if s.info_at == 0 || s.tracks_at == 0 {
        return Err(MkvError::Format("no Info or Tracks"));
    }
    Ok(s)
}

fn read_info(r: &mut Reader<'_>, end: u64, s: &mut Scanned) -> Result<(), MkvError> {
    while r.pos < end {
        let Some((id, Some(size))) = r.head()? else {
            return Err(MkvError::Format("bad Info"));
        };
        let body = r.pos;
        match id {
            DURATION if size == 8 => {
                s.duration_at = Some(body);
                s.duration_ms = f64::from_be_bytes(r.bytes::<8>()?);
            }
            DATE_UTC if size == 8 => {
                let ns = i64::from_be_bytes(r.bytes::<8>()?);
                let secs = Duration::from_nanos(ns.max(0) as u64);
                s.start = Some(UNIX_EPOCH + Duration::from_secs(MATROSKA_EPOCH) + secs);
            }
            _ => {}
        }
        r.seek(body + size)?;
    }
    Ok(())
}

fn read_tracks(r: &mut Reader<'_>, end: u64, s: &mut Scanned) -> Result<(), MkvError> {
    // TrackEntry and Video are masters: step into them, read the leaves.
    while r.pos < end {
        let Some((id, Some(size))) = r.head()? else {
            return Err(MkvError::Format("bad Tracks"));
        };
        let body = r.pos;
        match id {
            TRACK_ENTRY | VIDEO => continue,
            PIXEL_WIDTH => s.width = r.uint(size)? as u32,
            PIXEL_HEIGHT => s.height = r.uint(size)? as u32,
            DEFAULT_DURATION => s.frame_ms = r.uint(size)? / 1_000_000,
            _ => {}
        }
        r.seek(body + size)?;
    }
    Ok(())
}

fn read_cluster(
    r: &mut Reader<'_>,
    start: u64,
    data: u64,
    end: u64,
    s: &mut Scanned,
) -> Result<(), MkvError> {
    let mut c = ClusterRef {
        start,
        size_at: start + 4,
        data,
        end: data,
        ts: 0,
        unknown: false,
    };
    r.seek(start + 4)?;
    c.unknown = r.bytes::<8>()? == UNKNOWN_SIZE;
    r.seek(data)?;
    while r.pos < end {
        let at = r.pos;
        let Some((id, Some(size))) = r.head()? else {
            break;
        };
        let body = r.pos;
        if body + size > end {
            break;
        }
        match id {
            TIMESTAMP => c.ts = r.uint(size)?,
            SIMPLE_BLOCK if size >= 4 && size - 4 <= MAX_FRAME => {
                let [track, hi, lo, _flags] = r.bytes::<4>()?;
                if track == 0x81 {
                    let rel = i64::from(i16::from_be_bytes([hi, lo]));
                    s.frames.push(FrameRef {
                        t_ms: (c.ts as i64 + rel).max(0) as u64,
                        offset: body + 4,
                        len: size - 4,
                    });
                }
            }
            // A cluster of unknown size ends where the next top-level
            // element starts.
            CLUSTER | CUES if c.unknown => {
                r.seek(at)?;
                break;
            }
            _ => {}
        }
        r.seek(body + size)?;
        c.end = body + size;
    }
    s.end = c.end;
    s.clusters.push(c);
    Ok(())
}

/// Reads element heads through a buffer, knowing the file's length so that
/// a cut-short element reads as the end.
struct Reader<'a> {
    inner: BufReader<&'a File>,
    pos: u64,
    len: u64,
}

impl Reader<'_> {
    fn seek(&mut self, to: u64) -> io::Result<()> {
        let delta = to as i64 - self.pos as i64;
        self.inner.seek_relative(delta)?;
        self.pos = to;
        Ok(())
    }

    fn bytes<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut b = [0u8; N];
        self.inner.read_exact(&mut b)?;
        self.pos += N as u64;
        Ok(b)
    }

    fn uint(&mut self, size: u64) -> io::Result<u64> {
        if size > 8 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "integer over 8 bytes",
            ));
        }
        let mut v = 0u64;
        for _ in 0..size {
            v = (v << 8) | u64::from(self.bytes::<1>()?[0]);
        }
        Ok(v)
    }

    /// An element's ID and size (`None` for unknown); `None` at the end of
    /// the file or when the head itself is cut short.
    fn head(&mut self) -> io::Result<Option<(u32, Option<u64>)>> {
        if self.len.saturating_sub(self.pos) < 2 {
            return Ok(None);
        }
        let Some((id, _)) = self.vint(4)? else {
            return Ok(None);
        };
        let Some((size, n)) = self.vint(8)? else {
            return Ok(None);
        };
        let unknown = size == (1u64 << (7 * n)) - 1;
        Ok(Some((id as u32, (!unknown).then_some(size))))
    }

    /// A variable-length integer of at most `max` bytes and its length. IDs
    /// (`max` 4) keep their marker bit, as they are written; sizes lose it.
    fn vint(&mut self, max: u32) -> io::Result<Option<(u64, u32)>> {
        if self.pos >= self.len {
            return Ok(None);
        }
        let first = self.bytes::<1>()?[0];
        let n = first.leading_zeros() + 1;
        if n > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad element head",
            ));
        }
        if self.len - self.pos < u64::from(n - 1) {
            return Ok(None);
        }
        let mut v = u64::from(first);
        for _ in 1..n {
            v = (v << 8) | u64::from(self.bytes::<1>()?[0]);
        }
        Ok(Some((
            if max == 4 {
                v
            } else {
                v & ((1u64 << (7 * n)) - 1)
            },
            n,
        )))
    }
}

fn put_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(3);
    out.extend_from_slice(&bytes[skip..]);
}

/// The shortest size field for `n`.
fn put_size(out: &mut Vec<u8>, n: u64) {
    for len in 1..=8u32 {
        if n < (1u64 << (7 * len)) - 1 {
            let marked = n | (1u64 << (7 * len));
            out.extend_from_slice(&marked.to_be_bytes()[(8 - len as usize)..]);
            return;
        }
    }
    out.extend_from_slice(&size8(n));
}

/// An 8-byte size field (patchable in place).
fn size8(n: u64) -> [u8; 8] {
    let mut b = n.to_be_bytes();
    b[0] = 0x01;
    b
}

fn master(out: &mut Vec<u8>, id: u32, body: &[u8]) {
    bin(out, id, body);
}

fn bin(out: &mut Vec<u8>, id: u32, body: &[u8]) {
    put_id(out, id);
    put_size(out, body.len() as u64);
    out.extend_from_slice(body);
}

fn uint(id: u32, v: u64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count().min(7);
    let mut out = Vec::with_capacity(12);
    bin(&mut out, id, &bytes[skip..]);
    out
}

/// An integer in 8 bytes, so it can be rewritten in place.
fn fixed(id: u32, v: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    bin(&mut out, id, &v.to_be_bytes());
    out
}

fn string(id: u32, s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 4);
    bin(&mut out, id, s.as_bytes());
    out
}

/// A Void element of exactly `total` bytes (at least 2).
fn void(out: &mut Vec<u8>, total: usize) {
    put_id(out, VOID);
    if total - 2 < 127 {
        put_size(out, (total - 2) as u64);
        out.resize(out.len() + total - 2, 0);
    } else {
        out.extend_from_slice(&size8((total - 9) as u64));
        out.resize(out.len() + total - 9, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(n: u8) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        j.extend(std::iter::repeat_n(n, 1000 + usize::from(n)));
        j.extend_from_slice(&[0xFF, 0xD9]);
        j
    }

    fn write(path: &std::path::Path, frames: &[(u64, Vec<u8>)], finish: bool) {
        let file = File::create(path).unwrap();
        let mut w = Writer::new(file, 64, 48, 10, SystemTime::now()).unwrap();
        for (t, j) in frames {
            w.write_frame(*t, j).unwrap();
        }
        if finish {
            w.finish().unwrap();
        }
    }

    fn frames(n: u64) -> Vec<(u64, Vec<u8>)> {
        (0..n).map(|i| (i * 100, jpeg(i as u8))).collect()
    }

    #[test]
    fn frames_read_back_with_their_times_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.mkv");
        let input = frames(35);
        write(&path, &input, true);
        let file = File::open(&path).unwrap();
        let s = scan(&file).unwrap();
        assert!(s.finished);
        assert_eq!(s.frames.len(), 35);
        assert_eq!((s.width, s.height, s.frame_ms), (64, 48, 100));
        assert_eq!(s.duration_ms, 3500.0);
        assert_eq!(s.clusters.len(), 4);
        let data = std::fs::read(&path).unwrap();
        for (f, (t, j)) in s.frames.iter().zip(&input) {
            assert_eq!(f.t_ms, *t);
            assert_eq!(
                &data[f.offset as usize..(f.offset + f.len) as usize],
                &j[..]
            );
        }
        assert!(s.start.is_some());
    }

    #[test]
    fn a_clip_cut_short_keeps_its_whole_frames() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.mkv");
        write(&path, &frames(25), false);
        // Cut into the middle of the last frame, as a crash would.
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        file.set_len(len - 500).unwrap();
        let s = finish_partial(&file).unwrap();
        assert_eq!(s.frames.len(), 24);
        let again = scan(&file).unwrap();
        assert!(again.finished);
        assert_eq!(again.frames, s.frames);
        assert_eq!(again.duration_ms, 2400.0);
    }

    #[test]
    fn a_clip_without_frames_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.mkv");
        write(&path, &[], false);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        assert!(matches!(finish_partial(&file), Err(MkvError::Empty)));
        std::fs::write(&path, b"garbage that is not a clip").unwrap();
        let file = File::open(&path).unwrap();
        assert!(scan(&file).is_err());
    }

    #[test]
    fn sizes_round_trip() {
        for n in [0u64, 1, 126, 127, 128, 16382, 16383, 1 << 20, 1 << 40] {
            let mut out = Vec::new();
            put_size(&mut out, n);
            let len = (out[0].leading_zeros() + 1) as usize;
            assert_eq!(out.len(), len, "{n}");
            let mut v = 0u64;
            for b in &out {
                v = (v << 8) | u64::from(*b);
            }
            assert_eq!(v & ((1u64 << (7 * len)) - 1), n);
        }
    }
}
