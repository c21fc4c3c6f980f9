//! The doctor's words for IP cameras (`rtsp://`): what their compressed
//! stream is, whether the main stream runs beside a detect stream, the
//! decoder program, and what to do about an RTSP error.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::check::{Check, Status};
use crate::config::CameraConfig;
use crate::source::{SourceState, StreamInfo, Supervisor};

/// How long the main stream gets to send its first frames.
const MAIN_WITHIN: Duration = Duration::from_secs(10);

/// `H.264 Main (avc1.4D4016) 640x360, 10.0 fps, 282 kbit/s, a keyframe every
/// 2.0 s, over tcp`, as far as it is known.
pub(super) fn describe(info: &StreamInfo) -> String {
    let mut text = match info.codec.as_str() {
        "h264" => "H.264".to_string(),
        "h265" => "H.265".to_string(),
        "jpeg" => "MJPEG".to_string(),
        other => other.to_string(),
    };
    if let Some(profile) = &info.profile {
        text.push(' ');
        text.push_str(profile);
    }
    if let Some(codec) = &info.rfc6381 {
        text.push_str(&format!(" ({codec})"));
    }
    if info.width > 0 {
        text.push_str(&format!(" {}x{}", info.width, info.height));
    }
    if let Some(fps) = info.fps {
        text.push_str(&format!(", {fps:.1} fps"));
    }
    if let Some(kbps) = info.bitrate_kbps {
        text.push_str(&format!(", {kbps} kbit/s"));
    }
    if let Some(s) = info.keyframe_interval_s {
        text.push_str(&format!(", a keyframe every {s:.1} s"));
    }
    text.push_str(&format!(", over {}", info.transport));
    text
}

/// The decoder is on the PATH, for a camera whose pictures come from RTSP.
pub(super) fn decoder(camera: &CameraConfig) -> Option<Check> {
    let decoded = match &camera.detect_source {
        Some((_, spec)) => spec,
        None => &camera.source,
    };
    if !matches!(decoded, crate::source::SourceSpec::Rtsp { .. }) {
        return None;
    }
    let check = super::local::programs(&camera.name, "ffmpeg");
    Some(if check.status == Status::Fail {
        Check::fail(format!(
            "camera {}: an rtsp:// camera's H.264 or H.265 is decoded by ffmpeg, which is \
             not installed (e.g. `apt install ffmpeg`)",
            camera.name
        ))
    } else {
        check
    })
}

/// The main stream of a camera with a detect stream, read as the server
/// reads it (undecoded): it answers and sends frames; what it sends.
pub(super) async fn main_stream(camera: &CameraConfig) -> Check {
    let name = &camera.name;
    let shown = crate::redact::redact(&camera.source_uri);
    let (supervisor, status, mut states) =
        Supervisor::passthrough(camera.source.clone(), &camera.source_uri);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(supervisor.run(cancel.clone()));
    let deadline = tokio::time::Instant::now() + MAIN_WITHIN;
    // Running from the first frame; the figures need a window of two seconds.
    let outcome = loop {
        let (state, measured) = {
            let st = crate::sync::lock(&status);
            let measured = st.stream.as_ref().is_some_and(|s| s.fps.is_some());
            (st.state, measured)
        };
        if state == SourceState::Failed || (state == SourceState::Running && measured) {
            break state;
        }
        tokio::select! {
            r = states.changed() => if r.is_err() { break state },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = tokio::time::sleep_until(deadline) => break state,
        }
    };
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    let st = crate::sync::lock(&status).clone();
    match (outcome, &st.stream) {
        (SourceState::Running, Some(info)) => Check::ok(format!(
            "camera {name} main stream (recorded, not decoded): {shown} sends {}",
            describe(info)
        )),
        (SourceState::Failed, _) => {
            let error = st.last_error.unwrap_or_default();
            Check::fail(format!(
                "camera {name} main stream: {error}{}",
                hint(&error).map(|h| format!("; {h}")).unwrap_or_default()
            ))
        }
        _ => Check::fail(format!(
            "camera {name} main stream: {shown} sent no frame within {} s",
            MAIN_WITHIN.as_secs()
        )),
    }
}

/// What to do about an RTSP source's error, when there is more to say than
/// the error itself says.
pub(super) fn hint(error: &str) -> Option<&'static str> {
    let e = error.to_ascii_lowercase();
    Some(if e.contains("connection refused") {
        "nothing listens there: is the camera on, and are the address and port right \
         (RTSP is usually port 554)?"
    } else if e.contains("did not answer") || e.contains("timed out") {
        "no answer: check the address, and that this machine can reach the camera"
    } else if e.contains("framing error") || e.contains("rtsp describe failed") {
        "does this port serve RTSP? cameras serve it on 554 (HTTP is another port)"
    } else if e.contains(" 403") {
        "the camera refuses this user: check its permissions"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_described_as_far_as_known() {
        let mut info = StreamInfo {
            codec: "h264".into(),
            transport: "tcp",
            ..StreamInfo::default()
        };
        assert_eq!(describe(&info), "H.264, over tcp");
        info.profile = Some("Main".into());
        info.rfc6381 = Some("avc1.4D4016".into());
        info.width = 640;
        info.height = 360;
        info.fps = Some(10.0);
        info.bitrate_kbps = Some(282);
        info.keyframe_interval_s = Some(2.0);
        assert_eq!(
            describe(&info),
            "H.264 Main (avc1.4D4016) 640x360, 10.0 fps, 282 kbit/s, \
             a keyframe every 2.0 s, over tcp"
        );
    }

    #[test]
    fn errors_get_what_to_do() {
        assert!(
            hint("RTSP DESCRIBE failed: Connection refused (os error 111)")
                .is_some_and(|h| h.contains("554"))
        );
        assert!(hint(
            "the camera refused the user name or password (401 Unauthorized to DESCRIBE)"
        )
        .is_none());
    }
}
