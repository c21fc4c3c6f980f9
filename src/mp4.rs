//! Fragmented MP4 (ISO BMFF) of a camera's own H.264/H.265, without
//! re-encoding: an init segment (the track, its sample entry as the camera's
//! parameters give it) and then one fragment per frame, so a browser's
//! Media Source Extensions can play each frame as soon as it arrives.
//!
//! Only what a player needs is written: one video track, no edit list, no
//! sample tables in the init segment (`mvex` says they come in fragments).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

use crate::video::{Packet, Track};

/// A frame's duration when the camera's clock says nothing usable (the
/// first frame, or a jump): 1/15 s at 90 kHz, the usual substream rate.
const FALLBACK_DURATION: u32 = 6000;

/// Longest gap between two frames taken from the camera's clock; more is a
/// jump (or a camera that stalled), and the fallback is used.
const MAX_GAP_SECS: i64 = 5;

/// Writes one box: its size, its type, then what `body` puts in.
fn write_box(out: &mut BytesMut, kind: &[u8; 4], body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out);
    let size = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// A full box: as [`write_box`], with a version and flags first.
fn full_box(
    out: &mut BytesMut,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut BytesMut),
) {
    write_box(out, kind, |o| {
        o.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(o);
    });
}

/// The identity matrix of `mvhd` and `tkhd`.
fn matrix(out: &mut BytesMut) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        out.put_u32(v);
    }
}

/// The init segment: `ftyp` and `moov` for the one track.
pub fn init_segment(track: &Track) -> Bytes {
    let mut out = BytesMut::with_capacity(track.sample_entry.len() + 700);
    write_box(&mut out, b"ftyp", |o| {
        o.put_slice(b"isom");
        o.put_u32(0x200);
        for brand in [b"isom", b"iso5", b"iso6", b"mp41"] {
            o.put_slice(brand);
        }
    });
    write_box(&mut out, b"moov", |o| {
        full_box(o, b"mvhd", 0, 0, |o| {
            o.put_u32(0); // creation time
            o.put_u32(0); // modification time
            o.put_u32(1000); // timescale
            o.put_u32(0); // duration: unknown (fragmented)
            o.put_u32(0x0001_0000); // rate 1.0
            o.put_u16(0x0100); // volume 1.0
            o.put_slice(&[0; 10]);
            matrix(o);
            o.put_slice(&[0; 24]);
            o.put_u32(2); // next track id
        });
        write_box(o, b"trak", |o| {
            // Enabled, in the movie.
            full_box(o, b"tkhd", 0, 3, |o| {
                o.put_u32(0);
                o.put_u32(0);
                o.put_u32(1); // track id
                o.put_u32(0);
                o.put_u32(0); // duration
                o.put_slice(&[0; 8]);
                o.put_u16(0); // layer
                o.put_u16(0); // alternate group
                o.put_u16(0); // volume: video
                o.put_u16(0);
                matrix(o);
                o.put_u32(track.width << 16);
                o.put_u32(track.height << 16);
            });
            write_box(o, b"mdia", |o| {
                full_box(o, b"mdhd", 0, 0, |o| {
                    o.put_u32(0);
                    o.put_u32(0);
                    o.put_u32(track.timescale);
                    o.put_u32(0);
                    o.put_u16(0x55c4); // "und"
                    o.put_u16(0);
                });
                full_box(o, b"hdlr", 0, 0, |o| {
                    o.put_u32(0);
                    o.put_slice(b"vide");
                    o.put_slice(&[0; 12]);
                    o.put_slice(b"lookout\0");
                });
                write_box(o, b"minf", |o| {
                    full_box(o, b"vmhd", 0, 1, |o| o.put_slice(&[0; 8]));
                    write_box(o, b"dinf", |o| {
                        full_box(o, b"dref", 0, 0, |o| {
                            o.put_u32(1);
                            full_box(o, b"url ", 0, 1, |_| {});
                        });
                    });
                    write_box(o, b"stbl", |o| {
                        full_box(o, b"stsd", 0, 0, |o| {
                            o.put_u32(1);
                            o.put_slice(&track.sample_entry);
                        });
                        full_box(o, b"stts", 0, 0, |o| o.put_u32(0));
                        full_box(o, b"stsc", 0, 0, |o| o.put_u32(0));
                        full_box(o, b"stsz", 0, 0, |o| {
                            o.put_u32(0);
                            o.put_u32(0);
                        });
                        full_box(o, b"stco", 0, 0, |o| o.put_u32(0));
                    });
                });
            });
        });
        write_box(o, b"mvex", |o| {
            full_box(o, b"trex", 0, 0, |o| {
                o.put_u32(1); // track id
                o.put_u32(1); // sample description index
                o.put_u32(0);
                o.put_u32(0);
                o.put_u32(0);
            });
        });
    });
    out.freeze()
}

/// Makes fragments of one frame each, with decode times that only go
/// forward whatever the camera's clock does.
#[derive(Debug, Default)]
pub struct Fragmenter {
    sequence: u32,
    /// Decode time of the next fragment, in the track's timescale.
    next_time: u64,
    last_pts: Option<i64>,
    last_duration: Option<u32>,
}

impl Fragmenter {
    /// A fragmenter whose first fragment starts at time 0.
    pub fn new() -> Fragmenter {
        Fragmenter::default()
    }

    /// `prft`, `moof` and `mdat` for `packet`. Its duration is the gap since the
    /// previous frame (the next frame's time is not known yet), which holds
    /// for cameras at a steady rate.
    pub fn fragment(&mut self, packet: &Packet, timescale: u32) -> Bytes {
        let gap = self.last_pts.map(|last| packet.pts - last);
        let max_gap = MAX_GAP_SECS * i64::from(timescale);
        let duration = match gap {
            Some(g) if g > 0 && g <= max_gap => g as u32,
            _ => self.last_duration.unwrap_or(FALLBACK_DURATION),
        };
        // The time this frame is placed at: the previous one's plus the gap
        // (a jump back or forward continues at the usual pace instead).
        if let Some(g) = gap {
            let step = if g > 0 && g <= max_gap {
                g as u64
            } else {
                u64::from(duration)
            };
            self.next_time += step;
        }
        self.last_pts = Some(packet.pts);
        self.last_duration = Some(duration);
        self.sequence += 1;
        let flags: u32 = if packet.keyframe {
            0x0200_0000 // depends on no other sample
        } else {
            0x0101_0000 // depends on others, not a sync sample
        };
        let mut out = BytesMut::with_capacity(packet.data.len() + 160);
        // When lookout had the frame, on the wall clock, for a player that
        // measures how far behind it shows it (ISO BMFF's producer
        // reference time, ahead of the fragment it refers to).
        full_box(&mut out, b"prft", 1, 1, |o| {
            o.put_u32(1);
            o.put_u64(ntp(packet.received_at));
            o.put_u64(self.next_time);
        });
        let moof_at = out.len();
        let mut data_offset_at = 0;
        write_box(&mut out, b"moof", |o| {
            full_box(o, b"mfhd", 0, 0, |o| o.put_u32(self.sequence));
            write_box(o, b"traf", |o| {
                // default-base-is-moof
                full_box(o, b"tfhd", 0, 0x02_0000, |o| o.put_u32(1));
                full_box(o, b"tfdt", 1, 0, |o| o.put_u64(self.next_time));
                // data offset, and per sample: duration, size, flags.
                full_box(o, b"trun", 0, 0x0701, |o| {
                    o.put_u32(1);
                    data_offset_at = o.len();
                    o.put_i32(0);
                    o.put_u32(duration);
                    o.put_u32(packet.data.len() as u32);
                    o.put_u32(flags);
                });
            });
        });
        // The sample starts after the moof and the mdat header.
        let offset = (out.len() - moof_at + 8) as i32;
        out[data_offset_at..data_offset_at + 4].copy_from_slice(&offset.to_be_bytes());
        write_box(&mut out, b"mdat", |o| o.put_slice(&packet.data));
        out.freeze()
    }
}

/// Seconds from 1900 (NTP's epoch) to 1970.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// `t` as a 64-bit NTP timestamp: seconds since 1900 and a binary fraction.
fn ntp(t: SystemTime) -> u64 {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() + NTP_UNIX_OFFSET;
    let fraction = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | fraction
}

/// The wall-clock time of a `prft` box's NTP timestamp.
pub fn ntp_time(ntp: u64) -> Option<SystemTime> {
    let secs = (ntp >> 32).checked_sub(NTP_UNIX_OFFSET)?;
    let nanos = ((ntp & 0xffff_ffff) * 1_000_000_000) >> 32;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn boxes(mut b: &[u8]) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        while b.len() >= 8 {
            let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
            out.push((String::from_utf8_lossy(&b[4..8]).into_owned(), size));
            assert!(
                size >= 8 && size <= b.len(),
                "box size {size} of {}",
                b.len()
            );
            b = &b[size..];
        }
        assert!(b.is_empty());
        out
    }

    fn packet(pts: i64, keyframe: bool) -> Packet {
        Packet {
            data: Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
            keyframe,
            pts,
            received: Instant::now(),
            received_at: SystemTime::now(),
        }
    }

    #[test]
    fn init_and_fragments_are_whole_boxes() {
        let track = Track {
            codec: "avc1.4D401F".into(),
            sample_entry: Bytes::from_static(&[0, 0, 0, 8, b'a', b'v', b'c', b'1']),
            width: 640,
            height: 360,
            timescale: 90_000,
        };
        let init = init_segment(&track);
        let kinds: Vec<String> = boxes(&init).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, ["ftyp", "moov"]);
        let mut f = Fragmenter::new();
        let frag = f.fragment(&packet(1000, true), 90_000);
        let parts = boxes(&frag);
        assert_eq!(
            parts.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["prft", "moof", "mdat"]
        );
        // The data offset counts from the moof: past it and mdat's header
        // lies the sample.
        let offset_at = frag.len() - 6 - 8 - 16;
        let offset = i32::from_be_bytes(frag[offset_at..offset_at + 4].try_into().unwrap());
        assert_eq!(offset as usize, parts[1].1 + 8);
        let moof_at = parts[0].1;
        assert_eq!(
            &frag[moof_at + offset as usize..],
            &[0, 0, 0, 2, 0x65, 0x88]
        );
    }

    #[test]
    fn ntp_times_count_from_1900() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1500);
        assert_eq!(ntp(t) >> 32, 2_208_988_801);
        assert_eq!(ntp(t) & 0xffff_ffff, 1 << 31);
    }

    #[test]
    fn decode_times_go_forward_through_jumps() {
        let mut f = Fragmenter::new();
        let time = |frag: &Bytes| {
            let at = frag.windows(4).position(|w| w == b"tfdt").unwrap() + 8;
            u64::from_be_bytes(frag[at..at + 8].try_into().unwrap())
        };
        let a = f.fragment(&packet(90_000, true), 90_000);
        let b = f.fragment(&packet(96_000, false), 90_000);
        let c = f.fragment(&packet(10, false), 90_000); // back in time
        let d = f.fragment(&packet(6_010, false), 90_000);
        assert_eq!(
            [time(&a), time(&b), time(&c), time(&d)],
            [0, 6000, 12000, 18000]
        );
    }
}
