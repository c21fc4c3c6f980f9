//! Parsing `--source` URIs into a [`SourceSpec`].
//!
//! One string names any camera, so the same flag, environment variable and
//! config-file key work for all of them.

use std::path::PathBuf;
use std::str::FromStr;

use super::rtsp::RtspTransport;
use super::scene::MotionMode;
use super::v4l2::V4l2Options;
use crate::redact::redact;

/// Default frames per second for sources that are paced by lookout itself.
pub const DEFAULT_FPS: u32 = 30;
/// Default synthetic picture size.
pub const DEFAULT_SIZE: (u32, u32) = (1280, 720);
/// Default poll rate for an upstream URL that serves single JPEGs.
pub const DEFAULT_POLL_FPS: u32 = 10;
/// Default replay rate for files and folders.
pub const DEFAULT_FILE_FPS: u32 = 10;

/// Which camera to read, parsed from a URI.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSpec {
    /// A generated scene (no hardware).
    Synthetic {
        /// Width and height in pixels.
        size: (u32, u32),
        /// Frames per second.
        fps: u32,
        /// Whether and when the scene moves.
        motion: MotionMode,
    },
    /// A shell command whose stdout is MJPEG.
    Exec {
        /// The command line, run by `sh -c`.
        command: String,
    },
    /// An upstream MJPEG stream or single-JPEG URL.
    Http {
        /// The URL (any `#fps=N` fragment removed).
        url: String,
        /// Poll rate when the URL answers single JPEGs.
        fps: u32,
    },
    /// An MJPEG file or a folder of JPEG files, replayed in a loop.
    File {
        /// File or folder.
        path: PathBuf,
        /// Replay rate.
        fps: u32,
    },
    /// A V4L2 capture device.
    V4l2(V4l2Options),
    /// An IP camera's RTSP stream, read natively.
    Rtsp {
        /// The `rtsp://` URL, credentials included (any `#...` options
        /// removed).
        url: String,
        /// How the packets travel.
        transport: RtspTransport,
    },
}

/// A `--source` value that cannot be used, with what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad --source {uri:?}: {reason}")]
pub struct SpecError {
    /// The URI as given (passwords removed).
    pub uri: String,
    /// What is wrong and what would work.
    pub reason: String,
}

impl FromStr for SourceSpec {
    type Err = SpecError;

    fn from_str(uri: &str) -> Result<Self, SpecError> {
        parse(uri).map_err(|reason| SpecError {
            uri: redact(uri),
            reason,
        })
    }
}

fn parse(uri: &str) -> Result<SourceSpec, String> {
    let uri = uri.trim();
    if uri == "synthetic" || uri.starts_with("synthetic:") {
        let query = uri
            .strip_prefix("synthetic:")
            .map(|r| r.trim_start_matches('?'))
            .unwrap_or("");
        return parse_synthetic(query);
    }
    if let Some(command) = uri.strip_prefix("exec:") {
        if command.trim().is_empty() {
            return Err("exec: needs a command, e.g. exec:ffmpeg -i rtsp://cam/stream -c:v mjpeg -f mjpeg -".into());
        }
        return Ok(SourceSpec::Exec {
            command: command.trim().to_string(),
        });
    }
    if uri.starts_with("http://") || uri.starts_with("https://") {
        let (url, fragment) = uri.split_once('#').unwrap_or((uri, ""));
        let mut fps = DEFAULT_POLL_FPS;
        for (k, v) in pairs(fragment) {
            match k {
                "fps" => fps = parse_fps(v)?,
                _ => return Err(format!("unknown option #{k}; only #fps=N is known")),
            }
        }
        return Ok(SourceSpec::Http {
            url: url.to_string(),
            fps,
        });
    }
    if uri.starts_with("rtsps://") {
        return Err("rtsps:// (RTSP over TLS) is read through ffmpeg: use \
            exec:ffmpeg -loglevel error -rtsp_transport tcp -i rtsps://... -c:v mjpeg -f mjpeg -"
            .into());
    }
    if uri.starts_with("rtsp://") {
        let (url, fragment) = uri.split_once('#').unwrap_or((uri, ""));
        let mut transport = RtspTransport::Tcp;
        for (k, v) in pairs(fragment) {
            match (k, v) {
                ("transport", "tcp") => transport = RtspTransport::Tcp,
                ("transport", "udp") => transport = RtspTransport::Udp,
                ("transport", _) => return Err(format!("transport {v:?}: tcp or udp")),
                _ => {
                    return Err(format!(
                        "unknown option #{k}; only #transport=tcp|udp is known"
                    ))
                }
            }
        }
        if url::Url::parse(url).map_or(true, |u| u.host_str().is_none_or(str::is_empty)) {
            return Err("not an rtsp:// URL with a host, e.g. rtsp://user:password@192.168.1.20:554/stream1".into());
        }
        return Ok(SourceSpec::Rtsp {
            url: url.to_string(),
            transport,
        });
    }
    if let Some(rest) = uri.strip_prefix("file:") {
        let (path, query) = split_query(rest);
        let mut fps = DEFAULT_FILE_FPS;
        for (k, v) in pairs(query) {
            match k {
                "fps" => fps = parse_fps(v)?,
                _ => return Err(format!("unknown option {k}; only fps=N is known")),
            }
        }
        if path.is_empty() {
            return Err("file: needs a path to an MJPEG file or a folder of .jpg files".into());
        }
        return Ok(SourceSpec::File {
            path: PathBuf::from(path),
            fps,
        });
    }
    if let Some(rest) = uri.strip_prefix("v4l2:") {
        let (path, query) = split_query(rest);
        let mut opts = V4l2Options {
            device: PathBuf::from(if path.is_empty() { "/dev/video0" } else { path }),
            size: None,
            fps: None,
        };
        for (k, v) in pairs(query) {
            match k {
                "size" => opts.size = Some(parse_size(v)?),
                "fps" => opts.fps = Some(parse_fps(v)?),
                _ => return Err(format!("unknown option {k}; size=WxH and fps=N are known")),
            }
        }
        return Ok(SourceSpec::V4l2(opts));
    }
    Err(
        "unknown kind; use synthetic, exec:COMMAND, http(s)://URL, rtsp://URL, file:PATH or v4l2:/dev/videoN"
            .into(),
    )
}

fn parse_synthetic(query: &str) -> Result<SourceSpec, String> {
    let (mut size, mut fps, mut motion) = (DEFAULT_SIZE, DEFAULT_FPS, MotionMode::default());
    for (k, v) in pairs(query) {
        match k {
            "size" => size = parse_size(v)?,
            "fps" => fps = parse_fps(v)?,
            "motion" => motion = v.parse()?,
            _ => {
                return Err(format!(
                    "unknown option {k}; size, fps and motion are known"
                ))
            }
        }
    }
    Ok(SourceSpec::Synthetic { size, fps, motion })
}

/// Splits `path?query` where the query holds only `key=value` pairs, so a path
/// that itself contains `?` is kept whole.
fn split_query(s: &str) -> (&str, &str) {
    match s.rsplit_once('?') {
        Some((path, q)) if q.split('&').all(|p| p.contains('=')) => (path, q),
        _ => (s, ""),
    }
}

fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

fn parse_size(v: &str) -> Result<(u32, u32), String> {
    let bad = || format!("size {v:?} is not WIDTHxHEIGHT, e.g. 1280x720");
    let (w, h) = v.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if !(16..=7680).contains(&w) || !(16..=4320).contains(&h) {
        return Err(format!("size {v} out of range (16x16 to 7680x4320)"));
    }
    Ok((w, h))
}

fn parse_fps(v: &str) -> Result<u32, String> {
    match v.parse::<u32>() {
        Ok(n) if (1..=120).contains(&n) => Ok(n),
        _ => Err(format!("fps {v:?} must be a whole number from 1 to 120")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_defaults_and_options() {
        assert_eq!(
            "synthetic".parse::<SourceSpec>().unwrap(),
            SourceSpec::Synthetic {
                size: (1280, 720),
                fps: 30,
                motion: MotionMode::Periodic
            }
        );
        assert_eq!(
            "synthetic:?size=320x240&fps=5&motion=never"
                .parse::<SourceSpec>()
                .unwrap(),
            SourceSpec::Synthetic {
                size: (320, 240),
                fps: 5,
                motion: MotionMode::Never
            }
        );
        assert!("synthetic:?size=big".parse::<SourceSpec>().is_err());
        assert!("synthetic:?fps=0".parse::<SourceSpec>().is_err());
        assert!("synthetic:?motion=sometimes".parse::<SourceSpec>().is_err());
        assert!("synthetic:?colour=red".parse::<SourceSpec>().is_err());
    }

    #[test]
    fn other_kinds() {
        assert_eq!(
            "exec:ffmpeg -i x -f mjpeg -".parse::<SourceSpec>().unwrap(),
            SourceSpec::Exec {
                command: "ffmpeg -i x -f mjpeg -".into()
            }
        );
        assert!("exec:  ".parse::<SourceSpec>().is_err());
        assert_eq!(
            "http://cam/jpg?a=1#fps=2".parse::<SourceSpec>().unwrap(),
            SourceSpec::Http {
                url: "http://cam/jpg?a=1".into(),
                fps: 2
            }
        );
        assert_eq!(
            "file:/tmp/a?b.mjpeg".parse::<SourceSpec>().unwrap(),
            SourceSpec::File {
                path: "/tmp/a?b.mjpeg".into(),
                fps: DEFAULT_FILE_FPS
            }
        );
        assert_eq!(
            "file:clips/?fps=3".parse::<SourceSpec>().unwrap(),
            SourceSpec::File {
                path: "clips/".into(),
                fps: 3
            }
        );
        assert_eq!(
            "v4l2:/dev/video2?size=640x480&fps=15"
                .parse::<SourceSpec>()
                .unwrap(),
            SourceSpec::V4l2(V4l2Options {
                device: "/dev/video2".into(),
                size: Some((640, 480)),
                fps: Some(15)
            })
        );
        assert_eq!(
            "rtsp://u:p@cam:554/s#transport=udp"
                .parse::<SourceSpec>()
                .unwrap(),
            SourceSpec::Rtsp {
                url: "rtsp://u:p@cam:554/s".into(),
                transport: RtspTransport::Udp
            }
        );
        for bad in [
            "rtsp://u:secret@cam#x=1",
            "rtsp://u:secret@/s",
            "rtsps://u:secret@cam",
        ] {
            let err = bad.parse::<SourceSpec>().unwrap_err();
            assert!(!err.to_string().contains("secret"), "{err}");
        }
        let err = "ftp://u:secret@cam".parse::<SourceSpec>().unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
