//! The cameras to run, from `--camera`, `--source` or the file's
//! `[[camera]]` tables, each with its name checked and its source parsed.

use super::cli::{Cli, DEFAULT_SOURCE};
use super::error::ConfigError;
use crate::names::is_plain_name;
use crate::settings::Settings;
use crate::source::SourceSpec;

/// One camera to run.
#[derive(Debug, Clone)]
pub struct CameraConfig {
    /// Its name, in URLs (`/cams/NAME/`) and events.
    pub name: String,
    /// The source as given (for `/status`, redacted there).
    pub source_uri: String,
    /// The parsed source.
    pub source: SourceSpec,
    /// A second stream of the same camera to decode and detect on (its
    /// substream), as given and parsed; the main `source` is then only
    /// passed through.
    pub detect_source: Option<(String, SourceSpec)>,
    /// Runtime settings to start from (before the saved ones are applied).
    pub settings: Settings,
}

impl CameraConfig {
    /// The settings the camera starts from. The synthetic scene burns a
    /// clock into its picture, as many cameras do: it starts masked, as a
    /// user masks their camera's, unless the settings give a mask of their own.
    pub fn initial_settings(&self) -> Settings {
        let mut settings = self.settings.clone();
        if let SourceSpec::Synthetic { size, .. } = self.source {
            if settings.mask.is_empty() {
                settings.mask = vec![crate::source::scene::clock_mask(size.0, size.1)];
            }
        }
        settings
    }

    /// The camera that `--source` alone means.
    pub const DEFAULT_NAME: &'static str = "cam";

    /// A camera with default settings.
    pub fn new(name: &str, source_uri: &str) -> Result<CameraConfig, ConfigError> {
        Ok(CameraConfig {
            name: check_camera_name(name)?,
            source: source_uri.parse()?,
            source_uri: source_uri.to_string(),
            detect_source: None,
            settings: Settings::default(),
        })
    }

    /// Gives the camera a stream to detect on. The main source must be an
    /// `rtsp://` camera: only its stream can be passed through undecoded.
    fn set_detect_source(&mut self, uri: &str) -> Result<(), ConfigError> {
        let uri = uri.trim();
        if !matches!(self.source, SourceSpec::Rtsp { .. }) {
            return Err(ConfigError::Camera(format!(
                "camera {:?}: a detect source needs an rtsp:// source (the main stream, \
                 recorded as it comes); this camera's source is decoded already",
                self.name
            )));
        }
        let spec: SourceSpec = uri.parse()?;
        self.detect_source = Some((uri.to_string(), spec));
        Ok(())
    }
}

/// Lays `--detect-source [NAME=]URI` entries over the cameras.
fn detect_sources(list: &mut [CameraConfig], entries: &[String]) -> Result<(), ConfigError> {
    for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
        let (name, uri) = match entry.split_once('=') {
            Some((name, uri)) if is_plain_name(name.trim()) => (Some(name.trim()), uri),
            _ => (None, entry),
        };
        let cam = match name {
            Some(name) => list.iter_mut().find(|c| c.name == name).ok_or_else(|| {
                ConfigError::Camera(format!(
                    "--detect-source {name}=...: no camera named {name:?}"
                ))
            })?,
            None if list.len() == 1 => &mut list[0],
            None => {
                return Err(ConfigError::Camera(
                    "--detect-source needs NAME=URI when there are several cameras".into(),
                ))
            }
        };
        cam.set_detect_source(uri)?;
    }
    Ok(())
}

/// A camera name: see [`is_plain_name`].
fn check_camera_name(name: &str) -> Result<String, ConfigError> {
    if is_plain_name(name) {
        Ok(name.to_string())
    } else {
        Err(ConfigError::Camera(format!(
            "camera name {name:?} must be 1 to 32 of a-z, 0-9, _ and -"
        )))
    }
}

/// The cameras from `--camera` (or LOOKOUT_CAMERAS), else the file's
/// `[[camera]]` tables, else `--source` (or the file's `source`, or the
/// default) as one camera named `cam`, from options already laid over the
/// file (`Cli::over` keeps the file's cameras only when the flags name
/// none). `defaults` are the file's `[settings]`, which every camera starts
/// from.
pub(super) fn cameras(
    options: &Cli,
    defaults: &Settings,
) -> Result<Vec<CameraConfig>, ConfigError> {
    let flags: Vec<&str> = options
        .cameras
        .iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .collect();
    if !flags.is_empty() && options.source.is_some() {
        return Err(ConfigError::Camera(
            "give --source (one camera) or --camera NAME=SOURCE (several), not both".into(),
        ));
    }
    let mut list = Vec::new();
    if !flags.is_empty() {
        for (i, entry) in flags.iter().enumerate() {
            let Some((name, source)) = entry.split_once('=') else {
                return Err(ConfigError::Camera(format!(
                    "--camera {} ({entry:?}): expected NAME=SOURCE, e.g. yard=synthetic",
                    i + 1
                )));
            };
            let mut cam = CameraConfig::new(name.trim(), source.trim()).map_err(|e| {
                ConfigError::Camera(format!("--camera {} ({:?}): {e}", i + 1, name.trim()))
            })?;
            cam.settings = defaults.clone();
            list.push(cam);
        }
    } else {
        for (i, table) in options.camera.iter().enumerate() {
            let which = format!(
                "[[camera]] {} ({:?})",
                i + 1,
                table.name.as_deref().unwrap_or("no name")
            );
            let name = table
                .name
                .as_deref()
                .ok_or_else(|| ConfigError::Camera(format!("{which}: no name")))?;
            let source = table
                .source
                .as_deref()
                .ok_or_else(|| ConfigError::Camera(format!("{which}: no source")))?;
            let mut cam = CameraConfig::new(name, source)
                .map_err(|e| ConfigError::Camera(format!("{which}: {e}")))?;
            if let Some(detect) = &table.detect_source {
                cam.set_detect_source(detect)
                    .map_err(|e| ConfigError::Camera(format!("{which} detect_source: {e}")))?;
            }
            cam.settings = match &table.settings {
                Some(patch) => defaults
                    .patched_keys(patch)
                    .map_err(|e| ConfigError::Camera(format!("{which} settings: {e}")))?,
                None => defaults.clone(),
            };
            list.push(cam);
        }
    }
    if list.is_empty() {
        let source = options.source.as_deref().unwrap_or(DEFAULT_SOURCE);
        let mut cam = CameraConfig::new(CameraConfig::DEFAULT_NAME, source)?;
        cam.settings = defaults.clone();
        list.push(cam);
    }
    detect_sources(&mut list, &options.detect_sources)?;
    for (i, cam) in list.iter().enumerate() {
        if list[..i].iter().any(|other| other.name == cam.name) {
            return Err(ConfigError::Camera(format!(
                "camera name {:?} is used twice; names must be unique",
                cam.name
            )));
        }
    }
    Ok(list)
}
