//! `rtsp://` cameras, read natively with `retina`: the IP cameras people
//! own (Reolink, Hikvision, Dahua, Amcrest, Tapo), which send H.264 or H.265
//! (or, rarely, MJPEG) over RTSP.
//!
//! The session runs over TCP (interleaved in the RTSP connection, the
//! default, as it crosses NAT and loses nothing) or UDP (`#transport=udp`).
//! H.264 and H.265 frames are decoded by an ffmpeg child ([`decode`]) and
//! published as pictures (a JPEG is made of one only when asked for); MJPEG
//! frames are published as they come. `/status` gets the stream's codec, profile, size, rate,
//! bitrate and keyframe interval ([`stats`]). A failure ends the run with a
//! clear error, and the supervisor reconnects with backoff.
//!
//! `rtsps://` is not taken here (retina has no TLS); the `exec:ffmpeg` form
//! reads it.

mod annexb;
mod decode;
mod stats;
mod y4m;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use retina::client::{
    Credentials, PlayOptions, Session, SessionOptions, SetupOptions, TcpTransportOptions,
    Transport, UdpTransportOptions,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef, VideoFrame, VideoParametersCodec};

use self::annexb::{to_annex_b, Codec};
use self::decode::Decoder;
use self::stats::Stats;
use super::error::SourceError;
use super::output::Output;
use crate::video::{Packet, Track, VideoFeed};

/// How long the camera may take to answer each step of setting up: under
/// the stall watchdog's 10 s, so that a camera that never answers is
/// reported as that, not as a stall. Each answer counts as life for the
/// watchdog, so a slow camera gets this long for every step.
const ANSWER_WITHIN: Duration = Duration::from_secs(8);

/// How the RTP packets travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtspTransport {
    /// Interleaved in the RTSP connection.
    #[default]
    Tcp,
    /// In UDP datagrams.
    Udp,
}

impl RtspTransport {
    fn name(self) -> &'static str {
        match self {
            RtspTransport::Tcp => "tcp",
            RtspTransport::Udp => "udp",
        }
    }
}

/// Reads the camera at `url` (which may hold `user:password@`) until the
/// stream fails or ends.
pub async fn run(url: &str, transport: RtspTransport, out: &Output) -> Result<(), SourceError> {
    let (url, creds) = split_credentials(url)?;
    let options = SessionOptions::default()
        .creds(creds)
        .user_agent(format!("lookout/{}", env!("CARGO_PKG_VERSION")));
    let mut session = answer("DESCRIBE", Session::describe(url, options)).await?;
    out.alive(Instant::now());
    let (index, stream) = session
        .streams()
        .iter()
        .enumerate()
        .find(|(_, s)| s.media() == "video")
        .ok_or_else(|| SourceError::Rtsp("the camera's stream has no video".into()))?;
    let encoding = stream.encoding_name().to_ascii_lowercase();
    let codec = match encoding.as_str() {
        "h264" => Some(Codec::H264),
        "h265" => Some(Codec::H265),
        "jpeg" => None,
        other => {
            return Err(SourceError::Rtsp(format!(
                "the camera sends {other} video; lookout reads H.264, H.265 and MJPEG"
            )))
        }
    };
    let transport_opts = match transport {
        RtspTransport::Tcp => Transport::Tcp(TcpTransportOptions::default()),
        RtspTransport::Udp => Transport::Udp(UdpTransportOptions::default()),
    };
    let setup = SetupOptions::default()
        .transport(transport_opts)
        .frame_format(FrameFormat::MP4);
    answer("SETUP", session.setup(index, setup)).await?;
    out.alive(Instant::now());
    let playing = answer("PLAY", session.play(PlayOptions::default())).await?;
    out.alive(Instant::now());
    let mut demuxed = playing.demuxed().map_err(|e| rtsp_error("PLAY", &e))?;
    let mut stats = Stats::new(&encoding, transport.name());
    out.set_stream(stats.info());
    let mut decoder: Option<Decoder> = None;
    loop {
        let item = tokio::select! {
            item = demuxed.next() => item,
            why = ended(&mut decoder) => return Err(SourceError::Rtsp(why)),
        };
        let frame = match item {
            None => return Err(SourceError::Rtsp("the camera ended the stream".into())),
            Some(Err(e)) => return Err(rtsp_error("PLAY", &e)),
            Some(Ok(CodecItem::VideoFrame(frame))) => frame,
            Some(Ok(_)) => continue,
        };
        let now = Instant::now();
        out.heard(now);
        let params = match demuxed.streams()[index].parameters() {
            // Borrowed: cloning them (their codec string and parameter
            // sets) for every frame would cost an allocation a frame.
            Some(ParametersRef::Video(p)) => Some(p),
            _ => None,
        };
        if frame.has_new_parameters() || !stats.has_parameters() {
            if let Some(p) = params {
                stats.parameters(p.rfc6381_codec(), p.pixel_dimensions());
                out.set_stream(stats.info());
            }
        }
        let key = frame.is_random_access_point();
        if let Some(info) = stats.frame(frame.data().len(), key, now) {
            out.set_stream(info);
        }
        let Some(codec) = codec else {
            if !out.passthrough() {
                out.publish_one(Bytes::from(frame.into_data()));
            }
            continue;
        };
        if !out.passthrough() {
            // New parameters (a new size, say) start a new decoder at this
            // keyframe, so the decoder starts clean on the new stream.
            if frame.has_new_parameters() && key {
                decoder = None;
            }
            if decoder.is_none() {
                decoder = Some(Decoder::start(codec, out)?);
            }
            if let Some(d) = decoder.as_mut() {
                feed(d, &frame, params.map(|p| p.codec_params()), out);
            }
        }
        if let (Some(video), Some(p)) = (out.video(), params) {
            pass_on(video, p, frame, now);
        }
    }
}

/// Hands one frame, as it came, to the video feed (the live view), with
/// the track when it is new.
fn pass_on(
    video: &VideoFeed,
    params: &retina::codec::VideoParameters,
    frame: VideoFrame,
    now: Instant,
) {
    if frame.has_new_parameters() || video.track().is_none() {
        match params.mp4_sample_entry().build() {
            Ok(entry) => {
                let (width, height) = params.pixel_dimensions();
                video.set_track(Track {
                    codec: params.rfc6381_codec().to_string(),
                    sample_entry: Bytes::from(entry),
                    width,
                    height,
                    timescale: frame.timestamp().clock_rate().get(),
                });
            }
            Err(e) => {
                tracing::warn!("the stream's parameters make no MP4 sample entry: {e}");
                return;
            }
        }
    }
    video.push(Packet {
        keyframe: frame.is_random_access_point(),
        pts: frame.timestamp().elapsed(),
        received: now,
        received_at: std::time::SystemTime::now(),
        data: Bytes::from(frame.into_data()),
    });
}

/// Hands one frame to the decoder in Annex B, with the parameter sets in
/// front of a keyframe.
fn feed(
    decoder: &mut Decoder,
    frame: &VideoFrame,
    params: Option<&VideoParametersCodec>,
    out: &Output,
) {
    let key = frame.is_random_access_point();
    let sets: Vec<&[u8]> = match (key, params) {
        (true, Some(VideoParametersCodec::H264 { sps, pps })) => vec![sps, pps],
        (true, Some(VideoParametersCodec::H265 { vps, sps, pps })) => vec![vps, sps, pps],
        _ => Vec::new(),
    };
    match to_annex_b(decoder.codec(), frame.data(), &sets) {
        Ok(au) => {
            decoder.feed(au, key);
        }
        Err(e) => out.reject(&e),
    }
}

/// Resolves when the decoder (if any) stops.
async fn ended(decoder: &mut Option<Decoder>) -> String {
    match decoder {
        Some(d) => d.ended().await,
        None => std::future::pending().await,
    }
}

/// Waits for one step of the set-up, at most [`ANSWER_WITHIN`].
async fn answer<T>(
    step: &str,
    f: impl std::future::Future<Output = Result<T, retina::Error>>,
) -> Result<T, SourceError> {
    match tokio::time::timeout(ANSWER_WITHIN, f).await {
        Ok(r) => r.map_err(|e| rtsp_error(step, &e)),
        Err(_) => Err(SourceError::Rtsp(format!(
            "the camera did not answer {step} within {} s",
            ANSWER_WITHIN.as_secs()
        ))),
    }
}

/// A retina error as one line that says what to do. retina's own text runs
/// over several lines of connection details; the first says what happened.
fn rtsp_error(step: &str, e: &retina::Error) -> SourceError {
    let text = e.to_string();
    // retina's first line may end in a "buffered:" that its next lines fill.
    let first = text.lines().next().unwrap_or("").trim();
    let first = first
        .strip_suffix("buffered:")
        .unwrap_or(first)
        .trim_end_matches([';', ' ', ','])
        .to_string();
    if first.contains("Invalid RTSP message") {
        return SourceError::Rtsp(format!(
            "the port answered {step}, but not in RTSP (a web server? cameras serve RTSP \
             on port 554): {first}"
        ));
    }
    SourceError::Rtsp(match e.status_code() {
        Some(401) => format!(
            "the camera refused the user name or password (401 Unauthorized to {step}); \
             check user:password@ in the URL"
        ),
        Some(404) => format!(
            "the camera has no stream at this path (404 Not Found to {step}); \
             check the path in the camera's manual"
        ),
        Some(code) => format!("the camera answered {code} to {step}: {first}"),
        // Once playing, an error is the stream breaking: say so.
        None if step == "PLAY" => format!("the camera's stream broke off: {first}"),
        None => format!("RTSP {step} failed: {first}"),
    })
}

/// The URL without its `user:password@`, and the credentials (decoded).
fn split_credentials(url: &str) -> Result<(url::Url, Option<Credentials>), SourceError> {
    let mut url = url::Url::parse(url).map_err(|e| SourceError::Rtsp(format!("not a URL: {e}")))?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let creds = match (url.username(), url.password()) {
        ("", None) => None,
        (user, password) => Some(Credentials {
            username: decode(user),
            password: decode(password.unwrap_or("")),
        }),
    };
    // Neither can fail on an rtsp:// URL with a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Ok((url, creds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url() {
        let (url, creds) = split_credentials("rtsp://ad%40min:p%3Ass@cam:554/s?x=1").unwrap();
        assert_eq!(url.as_str(), "rtsp://cam:554/s?x=1");
        let creds = creds.unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("ad@min", "p:ss")
        );
        let (url, creds) = split_credentials("rtsp://cam/s").unwrap();
        assert_eq!(url.as_str(), "rtsp://cam/s");
        assert!(creds.is_none());
    }
}
