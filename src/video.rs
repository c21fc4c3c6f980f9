//! A camera's own compressed video as it arrives (H.264 or H.265 from an
//! RTSP camera), for whatever passes it through without decoding: the live
//! view today, recordings next.
//!
//! The source pushes each frame in; the feed keeps the track's parameters
//! and the frames from the second-latest keyframe on (about two GOPs,
//! bounded in bytes), so that a new reader can start at once at the latest
//! keyframe. Readers follow at their own pace, and one that falls more than
//! [`MAX_LAG`] behind skips to the newest keyframe: whole GOPs are dropped,
//! never buffered, and nobody slows the camera or another reader.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::watch;

/// A reader whose next frame arrived longer ago than this skips ahead to the
/// newest keyframe.
pub const MAX_LAG: Duration = Duration::from_secs(1);

/// Most bytes of frames kept (two GOPs of a 4K camera at 16 Mbit/s with 4 s
/// GOPs is 16 MB).
const MAX_BYTES: usize = 24 * 1024 * 1024;

/// What a decoder (or a browser) needs to start: the codec and its
/// parameters, as an MP4 sample entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// RFC 6381 codec string, e.g. `avc1.4D401F` (what MSE is asked about).
    pub codec: String,
    /// The `avc1`/`hvc1` sample entry box, parameter sets included.
    pub sample_entry: Bytes,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Timestamp ticks per second (90000 for video over RTP).
    pub timescale: u32,
}

/// One frame (access unit) as the camera sent it.
#[derive(Debug, Clone)]
pub struct Packet {
    /// NAL units with 4-byte length prefixes (the MP4 form).
    pub data: Bytes,
    /// A keyframe: decoding can start here.
    pub keyframe: bool,
    /// Presentation time in [`Track::timescale`] ticks since the session
    /// began (from the camera's clock; may jump).
    pub pts: i64,
    /// When it arrived.
    pub received: Instant,
    /// When it arrived, on the wall clock.
    pub received_at: SystemTime,
}

/// The video of one stream.
pub struct VideoFeed {
    state: Mutex<State>,
    /// The sequence number of the newest frame (0: none yet).
    latest: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    track: Option<Arc<Track>>,
    /// Bumped whenever the track changes: readers stop there.
    generation: u64,
    /// Frames with their sequence numbers, oldest first, starting at a
    /// keyframe.
    frames: VecDeque<(u64, Arc<Packet>)>,
    bytes: usize,
    next_seq: u64,
}

/// What a reader gets next.
#[derive(Debug, Clone)]
pub enum Next {
    /// A frame; `skipped` frames were dropped before it (the reader lagged).
    Frame {
        /// The frame.
        packet: Arc<Packet>,
        /// Frames dropped just before it.
        skipped: u64,
    },
    /// The track changed (new parameters): start again with the new one.
    TrackChanged,
    /// The feed is gone.
    Closed,
}

impl Default for VideoFeed {
    fn default() -> Self {
        VideoFeed {
            state: Mutex::new(State {
                next_seq: 1,
                ..State::default()
            }),
            latest: watch::channel(0).0,
        }
    }
}

impl VideoFeed {
    /// An empty feed.
    pub fn new() -> Arc<VideoFeed> {
        Arc::new(VideoFeed::default())
    }

    /// The current track, once the stream's parameters are known.
    pub fn track(&self) -> Option<Arc<Track>> {
        crate::sync::lock(&self.state).track.clone()
    }

    /// Sets the track. A different one drops the frames kept (they belong
    /// to the old parameters) and ends every reader's run.
    pub fn set_track(&self, track: Track) {
        let mut st = crate::sync::lock(&self.state);
        if st.track.as_deref() == Some(&track) {
            return;
        }
        st.track = Some(Arc::new(track));
        st.generation += 1;
        st.frames.clear();
        st.bytes = 0;
        drop(st);
        self.latest.send_modify(|_| {});
    }

    /// Adds one frame. Frames before the first keyframe are dropped (nobody
    /// could decode them); a keyframe lets go of all but the GOP before it.
    pub fn push(&self, packet: Packet) {
        let mut st = crate::sync::lock(&self.state);
        if st.frames.is_empty() && !packet.keyframe {
            return;
        }
        if packet.keyframe {
            // Keep the GOP before this one, for a reader in the middle of it.
            let last_key = st.frames.iter().rposition(|(_, p)| p.keyframe);
            if let Some(at) = last_key {
                for _ in 0..at {
                    if let Some((_, old)) = st.frames.pop_front() {
                        st.bytes -= old.data.len();
                    }
                }
            }
        }
        let seq = st.next_seq;
        st.next_seq += 1;
        st.bytes += packet.data.len();
        st.frames.push_back((seq, Arc::new(packet)));
        // A stream with very long GOPs: drop the oldest GOP whole, never
        // part of one (the rest could not be decoded).
        while st.bytes > MAX_BYTES {
            let Some((_, first)) = st.frames.pop_front() else {
                break;
            };
            st.bytes -= first.data.len();
            while st.frames.front().is_some_and(|(_, p)| !p.keyframe) {
                if let Some((_, p)) = st.frames.pop_front() {
                    st.bytes -= p.data.len();
                }
            }
        }
        drop(st);
        self.latest.send_replace(seq);
    }

    /// A reader that starts at the newest keyframe.
    pub fn reader(self: &Arc<Self>) -> Reader {
        let generation = crate::sync::lock(&self.state).generation;
        Reader {
            feed: self.clone(),
            next: None,
            generation,
            rx: self.latest.subscribe(),
        }
    }
}

/// One reader's place in a [`VideoFeed`].
pub struct Reader {
    feed: Arc<VideoFeed>,
    /// The sequence number of the next frame to give; `None` before the
    /// first (start at the newest keyframe).
    next: Option<u64>,
    generation: u64,
    rx: watch::Receiver<u64>,
}

impl Reader {
    /// The next frame, waiting for it when the reader is up to date.
    pub async fn next(&mut self) -> Next {
        loop {
            if let Some(item) = self.try_next() {
                return item;
            }
            if self.rx.changed().await.is_err() {
                return Next::Closed;
            }
        }
    }

    fn try_next(&mut self) -> Option<Next> {
        let st = crate::sync::lock(&self.feed.state);
        if st.generation != self.generation {
            return Some(Next::TrackChanged);
        }
        let newest_key = || {
            st.frames
                .iter()
                .rev()
                .find(|(_, p)| p.keyframe)
                .map(|(s, _)| *s)
        };
        let first = st.frames.front()?.0;
        let mut start = match self.next {
            None => newest_key()?,
            Some(n) if n < first => newest_key()?,
            Some(n) => n,
        };
        let index = (start - first) as usize;
        let (_, packet) = st.frames.get(index)?;
        // Behind by more than MAX_LAG: on to the newest keyframe, if there
        // is a newer one.
        if packet.received.elapsed() > MAX_LAG {
            if let Some(key) = newest_key().filter(|k| *k > start) {
                start = key;
            }
        }
        let skipped = self.next.map_or(0, |n| start.saturating_sub(n));
        let (_, packet) = st.frames.get((start - first) as usize)?;
        self.next = Some(start + 1);
        Some(Next::Frame {
            packet: packet.clone(),
            skipped,
        })
    }
}

/// A small H.264 track for tests of what writes or reads MP4.
#[cfg(test)]
pub(crate) fn test_track() -> Track {
    Track {
        codec: "avc1.4D401F".into(),
        sample_entry: Bytes::from_static(&[0, 0, 0, 8, b'a', b'v', b'c', b'1']),
        width: 320,
        height: 240,
        timescale: 90_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(keyframe: bool, pts: i64, age: Duration) -> Packet {
        Packet {
            data: Bytes::from(vec![0u8; 10]),
            keyframe,
            pts,
            received: Instant::now() - age,
            received_at: SystemTime::now(),
        }
    }

    fn track(w: u32) -> Track {
        Track {
            codec: "avc1.4D401F".into(),
            sample_entry: Bytes::from_static(b"avc1"),
            width: w,
            height: 360,
            timescale: 90_000,
        }
    }

    async fn frame(r: &mut Reader) -> (i64, u64) {
        match r.next().await {
            Next::Frame { packet, skipped } => (packet.pts, skipped),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn readers_start_at_the_newest_keyframe_and_follow() {
        let feed = VideoFeed::new();
        feed.set_track(track(640));
        feed.push(packet(false, 0, Duration::ZERO)); // before any keyframe: dropped
        for (i, key) in [true, false, false, true, false].into_iter().enumerate() {
            feed.push(packet(key, i as i64 + 1, Duration::ZERO));
        }
        let mut r = feed.reader();
        assert_eq!(frame(&mut r).await, (4, 0));
        assert_eq!(frame(&mut r).await, (5, 0));
        feed.push(packet(false, 6, Duration::ZERO));
        assert_eq!(frame(&mut r).await, (6, 0));
    }

    #[tokio::test]
    async fn a_lagging_reader_skips_whole_gops() {
        let feed = VideoFeed::new();
        feed.set_track(track(640));
        let old = MAX_LAG * 3;
        feed.push(packet(true, 1, old));
        let mut r = feed.reader();
        assert_eq!(frame(&mut r).await, (1, 0));
        feed.push(packet(false, 2, old));
        feed.push(packet(false, 3, old));
        feed.push(packet(true, 4, Duration::ZERO));
        feed.push(packet(false, 5, Duration::ZERO));
        // Frame 2 is old and a newer keyframe exists: 2 and 3 are dropped.
        assert_eq!(frame(&mut r).await, (4, 2));
        assert_eq!(frame(&mut r).await, (5, 0));
    }

    #[tokio::test]
    async fn a_new_track_ends_the_run() {
        let feed = VideoFeed::new();
        feed.set_track(track(640));
        feed.push(packet(true, 1, Duration::ZERO));
        let mut r = feed.reader();
        assert_eq!(frame(&mut r).await, (1, 0));
        feed.set_track(track(640)); // the same: nothing happens
        feed.push(packet(false, 2, Duration::ZERO));
        assert_eq!(frame(&mut r).await, (2, 0));
        feed.set_track(track(1280));
        assert!(matches!(r.next().await, Next::TrackChanged));
        assert!(feed.track().is_some_and(|t| t.width == 1280));
    }

    #[test]
    fn memory_is_bounded_by_whole_gops() {
        let feed = VideoFeed::new();
        let big = |key| Packet {
            data: Bytes::from(vec![0u8; MAX_BYTES / 4]),
            ..packet(key, 0, Duration::ZERO)
        };
        feed.push(big(true));
        for _ in 0..6 {
            feed.push(big(false));
        }
        let st = crate::sync::lock(&feed.state);
        assert!(st.bytes <= MAX_BYTES);
        assert!(st.frames.is_empty() || st.frames.front().is_some_and(|(_, p)| p.keyframe));
    }
}
