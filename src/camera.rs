//! A running camera: its core ([`Cam`]) and the subsystems that act on it
//! (the clip recorder, the person check, the motion runner, the source
//! supervisor), opened and started in one place.
//!
//! The subsystems call down into [`Cam`], never the other way: the motion
//! runner drives the recorder, the person check and the camera through the
//! handles it is given here.

use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::cam::{Cam, CamParts};
use crate::clips::continuous::Continuous;
use crate::clips::recorder::Recorder;
use crate::clips::{ClipError, Clips};
use crate::events::{EventBus, EventKind, SourceChange};
use crate::frame::FrameSink;
use crate::metrics::Metrics;
use crate::motion::check::{PersonCheck, PersonWorker};
use crate::settings::Settings;
use crate::snaps::{SnapError, Snaps};
use crate::source::spec::SourceSpec;
use crate::source::{SourceState, StatusCell, Supervisor};
use crate::store::StoreError;
use crate::uploads::Uploader;
use crate::video::VideoFeed;

/// Why a camera could not start.
#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    /// Its state could not be read from the store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Its snapshot folder could not be prepared.
    #[error(transparent)]
    Snaps(#[from] SnapError),
    /// Its clip folder could not be prepared.
    #[error(transparent)]
    Clips(#[from] ClipError),
    /// A blocking task died.
    #[error("camera set-up task failed: {0}")]
    Task(String),
}

/// One running camera.
pub struct Camera {
    /// Its name (URLs, events, store keys, folders).
    pub name: String,
    /// The prefix of its routes: empty for the first camera (the seed's
    /// root routes), `/cams/NAME` for the others.
    pub base: String,
    /// Its state and the actions on it.
    pub cam: Arc<Cam>,
    /// Its snapshot folder (the camera saves into it, the web lists it).
    pub snaps: Arc<Snaps>,
    /// Its clip recorder, and through it its clip folder.
    pub recorder: Arc<Recorder>,
    /// Whether what moved is a person.
    pub check: Arc<PersonCheck>,
    /// The main stream's state when the pictures come from a detect stream.
    pub main_source: Option<StatusCell>,
    /// The camera's own compressed video, for the live view.
    pub video: CameraVideo,
    /// Its continuous recording (of the main stream).
    pub recording: Arc<Continuous>,
}

/// The compressed streams of an RTSP camera, as they arrive.
#[derive(Clone, Default)]
pub struct CameraVideo {
    /// The main stream (the camera's `source`).
    pub main: Option<Arc<VideoFeed>>,
    /// The detect stream, when the camera has one.
    pub detect: Option<Arc<VideoFeed>>,
}

/// A feed for `spec` when it sends compressed video.
fn feed_for(spec: &SourceSpec) -> Option<Arc<VideoFeed>> {
    matches!(spec, SourceSpec::Rtsp { .. }).then(VideoFeed::new)
}

/// One camera as configured, for [`Camera::start`].
pub struct Spec {
    /// Its name.
    pub name: String,
    /// Its parsed source.
    pub source: SourceSpec,
    /// The source as given (shown redacted in `/status`).
    pub source_uri: String,
    /// A stream of the same camera to take the pictures from (its
    /// substream), as given and parsed; `source` is then passed through.
    pub detect_source: Option<(String, SourceSpec)>,
    /// The settings it starts from, before the saved ones.
    pub settings: Settings,
}

/// What the cameras share, for [`Camera::start`].
pub struct Shared<'a> {
    /// The data directory.
    pub data_dir: &'a Path,
    /// The event bus (and the store behind it).
    pub events: &'a EventBus,
    /// The upload queue, when configured.
    pub uploads: Option<&'a Arc<Uploader>>,
    /// The counted metrics.
    pub metrics: &'a Metrics,
    /// The person detector's thread, when this build has one.
    pub person: Option<&'a PersonWorker>,
    /// Where the camera's tasks run.
    pub tracker: &'a TaskTracker,
    /// Fires at shutdown.
    pub shutdown: &'a CancellationToken,
}

impl Camera {
    /// Opens camera `spec` (the first one answers at the root routes) and
    /// starts its tasks. Returns it with its source's state, whose ticks
    /// tell the watchdog the supervisor is alive.
    pub async fn start(
        spec: Spec,
        first: bool,
        shared: &Shared<'_>,
    ) -> Result<(Arc<Camera>, StatusCell), CameraError> {
        let Spec {
            name,
            source,
            source_uri,
            detect_source,
            settings,
        } = spec;
        let (frames, _) = FrameSink::new();
        // With a detect stream, that one gives the pictures and the main
        // stream is read beside it, undecoded.
        let mut video = CameraVideo {
            main: feed_for(&source),
            ..CameraVideo::default()
        };
        let (pictures, main_source) = match detect_source {
            Some((uri, spec)) => {
                let (mut main, status, states) = Supervisor::passthrough(source, &source_uri);
                if let Some(feed) = &video.main {
                    main = main.with_video(feed.clone());
                }
                shared
                    .tracker
                    .spawn(main.run(shared.shutdown.child_token()));
                video.detect = feed_for(&spec);
                ((spec, uri, video.detect.clone()), Some((status, states)))
            }
            None => ((source, source_uri, video.main.clone()), None),
        };
        let (mut supervisor, source_status, states) =
            Supervisor::new(pictures.0, &pictures.1, frames.clone());
        if let Some(feed) = pictures.2 {
            supervisor = supervisor.with_video(feed);
        }
        shared
            .tracker
            .spawn(supervisor.run(shared.shutdown.child_token()));
        let (prefix, base) = if first {
            (String::new(), String::new())
        } else {
            (format!("/cams/{name}"), format!("/cams/{name}"))
        };
        let snaps = Arc::new(Snaps::open_in(
            shared.data_dir.join("snaps").join(&name),
            format!("{prefix}/snaps"),
        )?);
        let clips = {
            let dir = shared.data_dir.join("clips").join(&name);
            let url = format!("{prefix}/clips");
            tokio::task::spawn_blocking(move || Clips::open(dir, url))
                .await
                .map_err(|e| CameraError::Task(e.to_string()))??
        };
        let cam = Arc::new(
            Cam::load(CamParts {
                name: name.clone(),
                frames: frames.clone(),
                initial: settings,
                source_status: source_status.clone(),
                events: shared.events.clone(),
                snaps: snaps.clone(),
                uploads: shared.uploads.cloned(),
                metrics: shared.metrics.camera(&name),
            })
            .await?,
        );
        let camera = Arc::new(Camera {
            name,
            base,
            snaps,
            recording: Arc::new(Continuous::new(video.main.is_some())),
            recorder: Arc::new(Recorder::new(clips).with_video(video.main.clone())),
            check: Arc::new(PersonCheck::new(shared.person.cloned())),
            cam,
            main_source: main_source.as_ref().map(|(status, _)| status.clone()),
            video,
        });
        let cancel = shared.shutdown;
        // Every line its tasks log names the camera (`camera{name=yard}:`).
        let span = tracing::info_span!("camera", name = %camera.name);
        shared.tracker.spawn(
            crate::motion::run(
                camera.cam.clone(),
                camera.recorder.clone(),
                camera.check.clone(),
                cancel.clone(),
            )
            .instrument(span.clone()),
        );
        let settings_of = camera.cam.clone();
        shared.tracker.spawn(
            crate::encoder::run(
                frames,
                move || settings_of.settings().mjpeg_fps,
                cancel.clone(),
            )
            .instrument(span.clone()),
        );
        shared.tracker.spawn(
            crate::clips::recorder::run(
                camera.cam.clone(),
                camera.recorder.clone(),
                cancel.clone(),
            )
            .instrument(span.clone()),
        );
        if let Some(feed) = &camera.video.main {
            shared.tracker.spawn(
                crate::clips::continuous::run(
                    camera.cam.clone(),
                    camera.recorder.clips().clone(),
                    feed.clone(),
                    camera.recording.clone(),
                    cancel.clone(),
                )
                .instrument(span.clone()),
            );
        }
        if let Some((status, states)) = main_source {
            // The main stream beside a detect stream: its failures stop the
            // recording while the pictures go on, so they are said apart.
            shared.tracker.spawn(
                announce_source(
                    camera.cam.clone(),
                    Announced {
                        status,
                        states,
                        stream: Some("main"),
                    },
                    cancel.clone(),
                )
                .instrument(span.clone()),
            );
        }
        shared.tracker.spawn(
            announce_source(
                camera.cam.clone(),
                Announced {
                    status: source_status.clone(),
                    states,
                    stream: None,
                },
                cancel.clone(),
            )
            .instrument(span),
        );
        Ok((camera, source_status))
    }
}

impl Camera {
    /// Its continuous recording's state now.
    pub fn recording_status(&self) -> crate::clips::continuous::RecordingStatus {
        let settings = self.cam.settings();
        // The recorded stream is the main one: beside a detect stream, the
        // main source's.
        let main = match &self.main_source {
            Some(cell) => crate::sync::lock(cell).clone(),
            None => self.cam.source(),
        };
        let codec = main.stream.as_ref().map(|s| s.codec.as_str());
        self.recording
            .status(settings.record, settings.segment_s, codec)
    }
}

/// A source whose ups and downs are announced.
struct Announced {
    /// Its status (for the error).
    status: StatusCell,
    /// Its state changes.
    states: tokio::sync::watch::Receiver<SourceState>,
    /// `Some("main")` for the main stream read beside a detect stream.
    stream: Option<&'static str>,
}

/// Publishes a `source` event when the camera (or its main stream) comes up
/// or goes down, so every dashboard can say "camera offline" (or that
/// recording stopped).
async fn announce_source(cam: Arc<Cam>, source: Announced, cancel: CancellationToken) {
    let Announced {
        status,
        mut states,
        stream,
    } = source;
    let mut announced = None;
    loop {
        let state = *states.borrow_and_update();
        let up = match state {
            SourceState::Running => Some(true),
            SourceState::Failed => Some(false),
            SourceState::Starting | SourceState::Reconnecting => None,
        };
        if up.is_some() && up != announced {
            announced = up;
            let data = SourceChange {
                state,
                up: up == Some(true),
                error: crate::sync::lock(&status).last_error.clone(),
                stream,
            };
            cam.announce(EventKind::Source, &data).await;
        }
        tokio::select! {
            r = states.changed() => if r.is_err() { return },
            _ = cancel.cancelled() => return,
        }
    }
}
