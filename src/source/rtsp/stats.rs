//! What `/status` says about a compressed stream: its codec and profile,
//! size, and the rate, bitrate and keyframe interval measured as frames
//! arrive (a camera's own figures are often wrong, and the keyframe
//! interval decides how far back a clip's pre-roll and a live view start).

use std::time::{Duration, Instant};

use crate::source::output::StreamInfo;

/// Rate and bitrate are averaged over at least this long.
const WINDOW: Duration = Duration::from_secs(2);

/// Counts frames as they arrive.
pub(crate) struct Stats {
    info: StreamInfo,
    window_start: Option<Instant>,
    frames: u32,
    bytes: u64,
    last_keyframe: Option<Instant>,
}

impl Stats {
    /// Figures for a stream of `codec` (lowercase, e.g. `h264`) read over
    /// `transport`.
    pub(crate) fn new(codec: &str, transport: &'static str) -> Stats {
        Stats {
            info: StreamInfo {
                codec: codec.to_string(),
                transport,
                ..StreamInfo::default()
            },
            window_start: None,
            frames: 0,
            bytes: 0,
            last_keyframe: None,
        }
    }

    /// Takes the stream's parameters: RFC 6381 codec string and size.
    pub(crate) fn parameters(&mut self, rfc6381: &str, (width, height): (u32, u32)) {
        self.info.rfc6381 = Some(rfc6381.to_string());
        self.info.profile = profile(rfc6381).map(str::to_string);
        self.info.width = width;
        self.info.height = height;
    }

    /// Counts one frame of `len` bytes arriving `now`. Returns the figures
    /// when a window closes (about every two seconds), to be published.
    pub(crate) fn frame(&mut self, len: usize, keyframe: bool, now: Instant) -> Option<StreamInfo> {
        if keyframe {
            if let Some(last) = self.last_keyframe.replace(now) {
                let s = now.duration_since(last).as_secs_f64();
                self.info.keyframe_interval_s = Some((s * 10.0).round() / 10.0);
            }
        }
        let start = *self.window_start.get_or_insert(now);
        self.frames += 1;
        self.bytes += len as u64;
        let elapsed = now.duration_since(start);
        if elapsed < WINDOW {
            return None;
        }
        let secs = elapsed.as_secs_f64();
        // The frame that closes this window opens the next.
        let frames = f64::from(self.frames - 1);
        self.info.fps = Some((frames / secs * 10.0).round() / 10.0);
        self.info.bitrate_kbps =
            Some(((self.bytes - len as u64) as f64 * 8.0 / secs / 1000.0).round() as u64);
        self.window_start = Some(now);
        self.frames = 1;
        self.bytes = len as u64;
        Some(self.info.clone())
    }

    /// Whether the stream's parameters (its size) are known yet.
    pub(crate) fn has_parameters(&self) -> bool {
        self.info.width > 0
    }

    /// The figures so far.
    pub(crate) fn info(&self) -> StreamInfo {
        self.info.clone()
    }
}

/// The profile's name from an RFC 6381 codec string: `avc1.4D401F` is Main
/// (profile_idc 0x4D), `hvc1.2.4.L120.90` is Main 10.
fn profile(rfc6381: &str) -> Option<&'static str> {
    let (kind, rest) = rfc6381.split_once('.')?;
    match kind {
        "avc1" | "avc3" => {
            let idc = u8::from_str_radix(rest.get(..2)?, 16).ok()?;
            Some(match idc {
                66 => "Baseline",
                77 => "Main",
                88 => "Extended",
                100 => "High",
                110 => "High 10",
                122 => "High 4:2:2",
                244 => "High 4:4:4",
                _ => return None,
            })
        }
        "hvc1" | "hev1" => {
            let first = rest.split('.').next()?;
            let idc: u8 = first.trim_start_matches(['A', 'B', 'C']).parse().ok()?;
            Some(match idc {
                1 => "Main",
                2 => "Main 10",
                3 => "Main Still Picture",
                4 => "Range Extensions",
                _ => return None,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_by_name() {
        assert_eq!(profile("avc1.4D401F"), Some("Main"));
        assert_eq!(profile("avc1.640028"), Some("High"));
        assert_eq!(profile("avc1.42C01E"), Some("Baseline"));
        assert_eq!(profile("hvc1.1.6.L120.90"), Some("Main"));
        assert_eq!(profile("hvc1.2.4.L120.90"), Some("Main 10"));
        assert_eq!(profile("mp4v.6C"), None);
        assert_eq!(profile("avc1"), None);
    }

    #[test]
    fn rate_bitrate_and_keyframe_interval() {
        let mut s = Stats::new("h264", "tcp");
        let t0 = Instant::now();
        let mut last = None;
        // 10 fps for 4.1 s, 1000 bytes a frame, a keyframe every 2 s.
        for i in 0..=41u32 {
            let now = t0 + Duration::from_millis(u64::from(i) * 100);
            if let Some(info) = s.frame(1000, i % 20 == 0, now) {
                last = Some(info);
            }
        }
        let info = last.expect("a window closed");
        assert_eq!(info.fps, Some(10.0));
        assert_eq!(info.bitrate_kbps, Some(80));
        assert_eq!(info.keyframe_interval_s, Some(2.0));
    }
}
