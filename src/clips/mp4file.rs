//! MP4 clips of a camera's own H.264/H.265, written fragmented so that a
//! crash leaves a playable file.
//!
//! The file is the init segment ([`crate::mp4::init_segment`]) and then,
//! for every frame, a `prft` (when it was received, for the clip's start
//! time), a `moof` and an `mdat`, each frame written in one `write`. A file
//! cut anywhere is made whole again by [`finish_partial`]: it ends after the
//! last complete fragment. Nothing is rewritten at the end of a clip, so a
//! finished clip and a recovered one have the same form.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::time::{Duration, SystemTime};

use crate::mp4::{init_segment, ntp_time, Fragmenter};
use crate::video::{Packet, Track};

/// Largest `moov` or `moof` read (ours are a few hundred bytes).
const MAX_META_BOX: u64 = 1 << 20;

/// Why a file is not a readable MP4 clip.
#[derive(Debug, thiserror::Error)]
pub enum Mp4Error {
    /// The file could not be read or cut.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The init segment is missing or broken.
    #[error("no complete init segment (moov)")]
    NoInit,
    /// Not one frame reached the disk whole.
    #[error("no complete frame")]
    Empty,
}

/// Writes one clip.
pub struct Writer {
    file: File,
    fragmenter: Fragmenter,
    timescale: u32,
}

impl Writer {
    /// Starts the clip in `file` with the init segment of `track`.
    pub fn new(mut file: File, track: &Track) -> io::Result<Writer> {
        file.write_all(&init_segment(track))?;
        Ok(Writer {
            file,
            fragmenter: Fragmenter::new(),
            timescale: track.timescale,
        })
    }

    /// Appends one frame: `prft`, `moof` and `mdat` (one fragment, as the
    /// fragmenter makes it) in one write.
    pub fn write(&mut self, packet: &Packet) -> io::Result<()> {
        let fragment = self.fragmenter.fragment(packet, self.timescale);
        self.file.write_all(&fragment)
    }

    /// Pushes what was written to the disk.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Ends the clip: everything on the disk.
    pub fn finish(self) -> io::Result<()> {
        self.file.sync_all()
    }
}

/// What a clip file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Scanned {
    /// Complete frames (fragments).
    pub frames: u64,
    /// Their total duration.
    pub duration: Duration,
    /// When the first frame was received, from its `prft`.
    pub start: Option<SystemTime>,
    /// Where the last complete fragment ends.
    end: u64,
}

/// Reads the boxes of a clip: the track's timescale from the init segment,
/// then every complete fragment (an optional `prft`, a `moof`, an `mdat`).
/// Reading stops at the first box that is cut short or makes no sense.
pub fn scan(file: &File) -> Result<Scanned, Mp4Error> {
    let len = file.metadata()?.len();
    let mut s = Scanned {
        frames: 0,
        duration: Duration::ZERO,
        start: None,
        end: 0,
    };
    let mut timescale = None;
    let mut ticks = 0u64;
    let mut stamp = None;
    let mut moof = None;
    let mut at = 0;
    while let Some((kind, body, size)) = header(file, at, len)? {
        match &kind {
            b"moov" => {
                timescale = read_body(file, body, size - (body - at))?
                    .as_deref()
                    .and_then(timescale_of);
            }
            b"prft" => {
                stamp = read_body(file, body, size - (body - at))?
                    .as_deref()
                    .and_then(prft_time);
            }
            b"moof" => {
                moof = read_body(file, body, size - (body - at))?
                    .as_deref()
                    .map(moof_ticks);
            }
            b"mdat" => {
                if let Some(d) = moof.take() {
                    s.frames += 1;
                    ticks += d;
                    s.end = at + size;
                    if s.frames == 1 {
                        s.start = stamp;
                    }
                }
                stamp = None;
            }
            _ => {}
        }
        at += size;
    }
    let timescale = timescale.filter(|t| *t > 0).ok_or(Mp4Error::NoInit)?;
    s.duration = Duration::from_secs_f64(ticks as f64 / f64::from(timescale));
    Ok(s)
}

/// Cuts a clip left by a crash after its last complete fragment; an error
/// when not one frame is whole (the caller removes the file).
pub fn finish_partial(file: &File) -> Result<Scanned, Mp4Error> {
    let s = scan(file)?;
    if s.frames == 0 {
        return Err(Mp4Error::Empty);
    }
    file.set_len(s.end)?;
    file.sync_all()?;
    Ok(s)
}

/// The box at `at`: its type, where its body starts and its whole size;
/// `None` when it is cut short or its size makes no sense (the end).
fn header(file: &File, at: u64, len: u64) -> io::Result<Option<([u8; 4], u64, u64)>> {
    if at + 8 > len {
        return Ok(None);
    }
    let mut h = [0u8; 8];
    file.read_exact_at(&mut h, at)?;
    let kind = [h[4], h[5], h[6], h[7]];
    let (size, body) = match u32::from_be_bytes([h[0], h[1], h[2], h[3]]) {
        1 if at + 16 <= len => {
            let mut large = [0u8; 8];
            file.read_exact_at(&mut large, at + 8)?;
            (u64::from_be_bytes(large), at + 16)
        }
        // Size 0 (to the end) is never written: zeros a power cut left.
        0 | 1 => return Ok(None),
        n => (u64::from(n), at + 8),
    };
    if size < body - at || at.saturating_add(size) > len {
        return Ok(None);
    }
    Ok(Some((kind, body, size)))
}

/// The body of a metadata box, or `None` when it is too big to be ours.
fn read_body(file: &File, at: u64, len: u64) -> io::Result<Option<Vec<u8>>> {
    if len > MAX_META_BOX {
        return Ok(None);
    }
    let mut body = vec![0u8; len as usize];
    file.read_exact_at(&mut body, at)?;
    Ok(Some(body))
}

/// The child boxes of a box body: (type, body).
fn children(mut b: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 8 {
            return None;
        }
        let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if size < 8 || size > b.len() {
            return None;
        }
        let kind = [b[4], b[5], b[6], b[7]];
        let body = &b[8..size];
        b = &b[size..];
        Some((kind, body))
    })
}

fn child<'a>(b: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(b).find(|(k, _)| k == kind).map(|(_, body)| body)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// `moov/trak/mdia/mdhd`'s timescale.
fn timescale_of(moov: &[u8]) -> Option<u32> {
    let mdhd = child(child(child(moov, b"trak")?, b"mdia")?, b"mdhd")?;
    match mdhd.first()? {
        0 => be32(mdhd, 12),
        _ => be32(mdhd, 20),
    }
}

/// The wall-clock time in a `prft` body.
fn prft_time(b: &[u8]) -> Option<SystemTime> {
    ntp_time(be64(b, 8)?)
}

/// The summed sample durations of a `moof`'s track runs.
fn moof_ticks(moof: &[u8]) -> u64 {
    children(moof)
        .filter(|(k, _)| k == b"traf")
        .flat_map(|(_, traf)| children(traf).filter(|(k, _)| k == b"trun"))
        .map(|(_, trun)| trun_ticks(trun).unwrap_or(0))
        .sum()
}

fn trun_ticks(trun: &[u8]) -> Option<u64> {
    let flags = be32(trun, 0)? & 0x00ff_ffff;
    let count = be32(trun, 4)?;
    if flags & 0x100 == 0 {
        return Some(0);
    }
    let mut at = 8;
    if flags & 0x1 != 0 {
        at += 4;
    }
    if flags & 0x4 != 0 {
        at += 4;
    }
    let per_sample = [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|f| flags & *f != 0)
        .count()
        * 4;
    let mut ticks = 0u64;
    for i in 0..count as usize {
        ticks += u64::from(be32(trun, at + i * per_sample)?);
    }
    Some(ticks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Instant;

    fn track() -> Track {
        crate::video::test_track()
    }

    fn packet(i: i64, at: SystemTime) -> Packet {
        Packet {
            data: Bytes::from(vec![0, 0, 0, 3, 0x65, 0x88, i as u8]),
            keyframe: i == 0,
            pts: i * 9000,
            received: Instant::now(),
            received_at: at,
        }
    }

    #[test]
    fn a_clip_cut_anywhere_keeps_its_whole_fragments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.mp4");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_033_000_123);
        let mut w = Writer::new(File::create(&path).unwrap(), &track()).unwrap();
        let mut ends = vec![];
        for i in 0..5 {
            w.write(&packet(i, t0 + Duration::from_millis(i as u64 * 100)))
                .unwrap();
            ends.push(std::fs::metadata(&path).unwrap().len());
        }
        w.finish().unwrap();
        let file = File::open(&path).unwrap();
        let whole = scan(&file).unwrap();
        assert_eq!(whole.frames, 5);
        // The first frame's duration is the fallback (1/15 s), the others
        // the gap since the one before (0.1 s).
        assert_eq!(whole.duration.as_millis(), 466);
        let start = whole.start.unwrap();
        let off = start.duration_since(t0).unwrap_or_else(|e| e.duration());
        assert!(off < Duration::from_micros(1), "{off:?}");

        // Cut in the middle of the fourth frame: three are kept.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        file.set_len(ends[3] - 5).unwrap();
        let kept = finish_partial(&file).unwrap();
        assert_eq!(kept.frames, 4 - 1);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), ends[2]);
        assert_eq!(scan(&file).unwrap(), kept);

        // Cut before any frame is whole: nothing to keep.
        file.set_len(ends[0] - 1).unwrap();
        assert!(matches!(finish_partial(&file), Err(Mp4Error::Empty)));
        file.set_len(20).unwrap();
        assert!(matches!(scan(&file), Err(Mp4Error::NoInit)));
    }
}
