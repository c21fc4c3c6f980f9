//! The pre-roll of an MP4 clip: the last seconds of a camera's own
//! H.264/H.265 frames, as whole GOPs. The ring always starts at a keyframe
//! (a clip must start where decoding can), so it holds up to a GOP more than
//! the seconds asked for.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::video::{Packet, Track};

/// The frames of the current track, from a keyframe on.
#[derive(Default)]
pub struct GopRing {
    /// The track the frames belong to.
    track: Option<Arc<Track>>,
    packets: VecDeque<Arc<Packet>>,
    bytes: u64,
}

impl GopRing {
    /// Empties the ring for frames of `track` (a new reader of the feed).
    pub fn reset(&mut self, track: Option<Arc<Track>>) {
        self.track = track;
        self.packets.clear();
        self.bytes = 0;
    }

    /// The track of the frames.
    pub fn track(&self) -> Option<&Arc<Track>> {
        self.track.as_ref()
    }

    /// Adds the newest frame, and lets go of the oldest GOP while the next
    /// one still starts `keep` or more before it, or while the bytes are
    /// over `max_bytes`. A frame that cannot be decoded (no keyframe before
    /// it) is not kept; nor is a single GOP over `max_bytes`.
    pub fn push(&mut self, packet: Arc<Packet>, keep: Duration, max_bytes: u64) {
        if self.packets.is_empty() && !packet.keyframe {
            return;
        }
        let newest = packet.received;
        self.bytes += packet.data.len() as u64;
        self.packets.push_back(packet);
        loop {
            let next_key = self.packets.iter().skip(1).position(|p| p.keyframe);
            let Some(next_key) = next_key.map(|i| i + 1) else {
                if self.bytes > max_bytes {
                    // One GOP bigger than the cap: start again at the next
                    // keyframe.
                    self.packets.clear();
                    self.bytes = 0;
                }
                break;
            };
            let covered = self
                .packets
                .get(next_key)
                .is_some_and(|p| newest.duration_since(p.received) >= keep);
            if !covered && self.bytes <= max_bytes {
                break;
            }
            for p in self.packets.drain(..next_key) {
                self.bytes -= p.data.len() as u64;
            }
        }
    }

    /// The frames from `pre` before `at` on: from the last keyframe received
    /// at or before `at - pre` (or the oldest, when the ring is shorter).
    pub fn since(&self, at: Instant, pre: Duration) -> impl Iterator<Item = &Arc<Packet>> {
        let from = at.checked_sub(pre).unwrap_or(at);
        let skip = self
            .packets
            .iter()
            .rposition(|p| p.keyframe && p.received <= from)
            .unwrap_or(0);
        self.packets.iter().skip(skip)
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether no frame is held.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Their bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The time they span.
    pub fn span(&self) -> Duration {
        match (self.packets.front(), self.packets.back()) {
            (Some(a), Some(b)) => b.received.duration_since(a.received),
            _ => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::SystemTime;

    fn packet(at: Instant, keyframe: bool, bytes: usize) -> Arc<Packet> {
        Arc::new(Packet {
            data: Bytes::from(vec![0u8; bytes]),
            keyframe,
            pts: 0,
            received: at,
            received_at: SystemTime::now(),
        })
    }

    #[test]
    fn the_ring_keeps_whole_gops_covering_its_seconds() {
        let t0 = Instant::now();
        let mut ring = GopRing::default();
        let keep = Duration::from_secs(3);
        // Not decodable: dropped.
        ring.push(packet(t0, false, 10), keep, 1 << 20);
        assert!(ring.is_empty());
        // 10 fps, a keyframe every 2 s, for 10 s.
        for i in 0..100u64 {
            let at = t0 + Duration::from_millis(i * 100);
            ring.push(packet(at, i % 20 == 0, 10), keep, 1 << 20);
        }
        // At 9.9 s: from the keyframe at 6 s (the one at 8 s covers less
        // than 3 s).
        assert_eq!(ring.len(), 40);
        assert!(ring.since(t0, Duration::ZERO).next().unwrap().keyframe);
        let asked = t0 + Duration::from_millis(9500);
        let pre: Vec<_> = ring.since(asked, Duration::from_secs(1)).collect();
        assert_eq!(pre.len(), 20, "from the keyframe at 8 s");
        assert!(pre[0].keyframe);
        // Bytes over the cap: whole GOPs go, the newest stays.
        for i in 100..110u64 {
            let at = t0 + Duration::from_millis(i * 100);
            ring.push(packet(at, i % 20 == 0, 100), keep, 1000);
        }
        assert_eq!(ring.len(), 10, "only the GOP from 10 s");
        assert_eq!(ring.bytes(), 1000);
        // A GOP alone over the cap: nothing until the next keyframe.
        ring.push(
            packet(t0 + Duration::from_secs(11), false, 1000),
            keep,
            1000,
        );
        assert!(ring.is_empty());
    }
}
