//! The slow checks, which wait for something else: each camera's first
//! frames, the MQTT broker's answer, the person model's loading. `lookout
//! doctor` runs them side by side; `lookout` itself never runs them at start.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::check::Check;
use crate::config::CameraConfig;
use crate::frame::{Frame, FrameSink};
use crate::source::{SourceSpec, SourceState, Supervisor};

/// How long a camera gets to send its first frame.
pub(super) const FIRST_FRAME_WITHIN: Duration = Duration::from_secs(10);
/// How long frames are counted after the first, for the rate.
const RATE_OVER: Duration = Duration::from_millis(1500);
/// How long the broker gets to accept the connection.
pub(super) const BROKER_WITHIN: Duration = Duration::from_secs(10);

/// The camera's source, run as the server runs it (the real supervisor and
/// source), gives a frame within [`FIRST_FRAME_WITHIN`]: its size, rate and
/// kind of JPEG; or the reason it does not, with what to do.
pub(super) async fn camera(camera: &CameraConfig) -> Check {
    let name = &camera.name;
    // With a detect stream, the pictures come from it (the main stream has
    // a check of its own, `stream::main_stream`).
    let (source, uri) = match &camera.detect_source {
        Some((uri, spec)) => (spec, uri),
        None => (&camera.source, &camera.source_uri),
    };
    let shown = crate::redact::redact(uri);
    let (sink, mut frames) = FrameSink::new();
    let (supervisor, status, mut states) = Supervisor::new(source.clone(), uri, sink);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(supervisor.run(cancel.clone()));
    let deadline = tokio::time::Instant::now() + FIRST_FRAME_WITHIN;
    let first: Result<Arc<Frame>, Option<String>> = loop {
        if let Some(frame) = frames.borrow_and_update().clone() {
            break Ok(frame);
        }
        if *states.borrow_and_update() == SourceState::Failed {
            let error = crate::sync::lock(&status).last_error.clone();
            // The supervisor's own stall timer, as long as ours: the same
            // "nothing within 10 s", said below.
            let stalled = crate::source::SourceError::Stalled.to_string();
            break Err(error.filter(|e| *e != stalled));
        }
        tokio::select! {
            r = frames.changed() => if r.is_err() { break Err(None) },
            r = states.changed() => if r.is_err() { break Err(None) },
            _ = tokio::time::sleep_until(deadline) => break Err(None),
        }
    };
    let last = match &first {
        Ok(f) => {
            let until = (f.captured_mono + RATE_OVER).min(deadline.into_std());
            tokio::time::sleep_until(until.into()).await;
            frames.borrow().clone()
        }
        Err(_) => None,
    };
    cancel.cancel();
    // The source stops (an exec: child is killed) before the doctor goes on.
    let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    let bad_frames = crate::sync::lock(&status).bad_frames;
    let first = match first {
        Ok(f) => f,
        Err(Some(error)) if bad_frames > 0 => {
            return Check::fail(format!(
                "camera {name}: {error}, after sending only data that is not JPEG \
                 ({bad_frames} piece(s) refused){}",
                not_mjpeg(source)
            ))
        }
        Err(Some(error)) => {
            return Check::fail(format!("camera {name}: {error}{}", hint(source, &error)))
        }
        Err(None) if bad_frames > 0 => {
            return Check::fail(format!(
                "camera {name}: {shown} sent no picture within {} s, only data that is not \
                 JPEG ({bad_frames} piece(s) refused){}",
                FIRST_FRAME_WITHIN.as_secs(),
                not_mjpeg(source)
            ));
        }
        Err(None) => {
            return Check::fail(format!(
                "camera {name}: {shown} sent no frame within {} s{}",
                FIRST_FRAME_WITHIN.as_secs(),
                hint(source, "timed out")
            ))
        }
    };
    let rate = match last {
        Some(last) if last.seq > first.seq => {
            let took = last.captured_mono.duration_since(first.captured_mono);
            let fps = (last.seq - first.seq) as f64 / took.as_secs_f64().max(1e-3);
            format!("{fps:.1} fps")
        }
        _ => format!("under 1 frame in {:.1} s", RATE_OVER.as_secs_f64()),
    };
    // A decoded camera's picture is encoded here, off the async workers.
    let jpeg = first.jpeg_async().await;
    let kind = tokio::task::spawn_blocking(move || jpeg_kind(&jpeg))
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let kind = match kind {
        Ok(kind) => kind,
        Err(e) => {
            return Check::fail(format!(
                "camera {name}: {shown} sends frames that do not decode: {e}"
            ))
        }
    };
    let stream = crate::sync::lock(&status).stream.clone();
    let text = match stream {
        // An IP camera: what it sends, then what lookout makes of it.
        Some(info) => format!(
            "camera {name}: {shown} sends {}; decoded to {}x{} at {rate}",
            super::stream::describe(&info),
            first.width,
            first.height
        ),
        None => format!(
            "camera {name}: {shown} gives {}x{} {kind} at {rate}",
            first.width, first.height
        ),
    };
    if bad_frames > 0 {
        Check::warn(format!(
            "{text}, but {bad_frames} piece(s) of its data were not whole JPEGs and were dropped"
        ))
    } else {
        Check::ok(text)
    }
}

/// What to do about a source that sends something other than JPEGs.
fn not_mjpeg(source: &SourceSpec) -> &'static str {
    match source {
        SourceSpec::Exec { .. } => {
            "; the command must write MJPEG to its standard output, e.g. ffmpeg ... \
             -c:v mjpeg -f mjpeg -"
        }
        _ => "; is it an MJPEG stream or a JPEG snapshot URL?",
    }
}

/// What the first frame is: `MJPEG (baseline, colour)`. The header is read
/// with zune-jpeg, then the whole picture decoded as the thumbnails and the
/// person check will.
fn jpeg_kind(jpeg: &[u8]) -> Result<String, String> {
    let mut decoder = zune_jpeg::JpegDecoder::new(jpeg);
    decoder.decode_headers().map_err(|e| format!("{e:?}"))?;
    let info = decoder.info().ok_or("no JPEG header")?;
    let sof = info.sof;
    let coding = if sof.is_progressive() {
        "progressive"
    } else if sof.is_lossless() {
        "lossless"
    } else if format!("{sof:?}") == "Baseline DCT" {
        "baseline"
    } else {
        "extended sequential"
    };
    let colour = if info.components == 1 {
        "greyscale"
    } else {
        "colour"
    };
    crate::jpeg::decode_rgb(jpeg).map_err(|e| e.to_string())?;
    Ok(format!("MJPEG ({coding}, {colour})"))
}

/// What to do about a source's error, after `; ` (or nothing).
fn hint(source: &SourceSpec, error: &str) -> String {
    let e = error.to_ascii_lowercase();
    let hint = match source {
        SourceSpec::Http { url, .. } => {
            let has_user = url::Url::parse(url).is_ok_and(|u| !u.username().is_empty());
            if e.contains(" 401") {
                if has_user {
                    "check the user name and password in the URL"
                } else {
                    "put user:password@ in the URL (http://user:password@cam/...) or check them"
                }
            } else if e.contains(" 403") {
                "the camera refuses this user: check its permissions"
            } else if e.contains(" 404") {
                "check the path: the camera's MJPEG stream or snapshot URL (its manual names it)"
            } else if e.contains("connection refused") {
                "nothing listens there: is the camera on, and are the address and port right?"
            } else if e.contains("dns error") || e.contains("failed to lookup") {
                "the host name does not resolve: check it, or use the camera's IP address"
            } else if e.contains("timed out") || e.contains("timeout") {
                "no answer: check the address, and that this machine can reach the camera"
            } else if e.contains("certificate") {
                "the camera's HTTPS certificate is not trusted; use http:// if it allows"
            } else {
                ""
            }
        }
        SourceSpec::Exec { .. } => {
            if e.contains("not found") || e.contains("status: 127") {
                "the program is not installed, or not on the PATH"
            } else if e.contains("timed out") {
                "the command started but wrote no frame: run it in a terminal to see why"
            } else if e.contains("exited") {
                "run the command in a terminal to see why it stops"
            } else {
                ""
            }
        }
        SourceSpec::Rtsp { .. } => super::stream::hint(error).unwrap_or(""),
        SourceSpec::V4l2(_) if e.contains("busy") => {
            "another program (another lookout?) is using the camera"
        }
        SourceSpec::V4l2(_) if e.contains("permission") => {
            "add the user lookout runs as to the `video` group"
        }
        _ => "",
    };
    if hint.is_empty() {
        String::new()
    } else {
        format!("; {hint}")
    }
}

/// The broker accepts a connection with the configured credentials.
pub(super) async fn mqtt(config: &crate::mqtt::MqttConfig) -> Check {
    let broker = config.broker();
    match crate::mqtt::probe(config, BROKER_WITHIN).await {
        Ok(()) => {
            let who = match &config.user {
                Some(user) => format!("user {user:?} accepted"),
                None => "anonymous connection accepted".to_string(),
            };
            Check::ok(format!("MQTT {broker}: connected, {who}"))
        }
        Err(e) => {
            let l = e.to_ascii_lowercase();
            let hint = if l.contains("connection refused") {
                "; nothing listens there: is the broker running, and are the host and port \
                 right (1883, or 8883 for mqtts://)?"
            } else if l.contains("dns") || l.contains("lookup") {
                "; the host name does not resolve: check it, or use the broker's IP address"
            } else {
                ""
            };
            Check::fail(format!("MQTT {broker}: {e}{hint}"))
        }
    }
}

/// The person model loads, when a camera has the check on.
pub(super) async fn person(cameras: &[CameraConfig]) -> Check {
    if !crate::person::AVAILABLE {
        return Check::skip(
            "person check: not in this build (built without the `person` feature); \
             motion alerts only",
        );
    }
    let on: Vec<&str> = cameras
        .iter()
        .filter(|c| c.settings.person_check)
        .map(|c| c.name.as_str())
        .collect();
    if on.is_empty() {
        return Check::skip("person check: off (person_check = false) for every camera");
    }
    let started = Instant::now();
    let loaded = tokio::task::spawn_blocking(crate::person::PersonDetector::load).await;
    match loaded {
        Ok(Ok(_)) => Check::ok(format!(
            "person check: model loaded in {:.1} s (camera(s) {})",
            started.elapsed().as_secs_f64(),
            on.join(", ")
        )),
        Ok(Err(e)) => Check::fail(format!(
            "person check: {e}; set person_check = false in [settings] to run without it"
        )),
        Err(e) => Check::fail(format!("person check: loading the model failed: {e}")),
    }
}
