//! Native V4L2 MJPEG capture, used for `--source v4l2:/dev/video0?size=1280x720&fps=30`.
//!
//! Most USB (UVC) webcams can compress to MJPEG in hardware. Lookout stores and serves JPEG
//! frames, so asking the camera for MJPEG and passing every frame through untouched costs almost
//! no CPU: no decode, no re-encode, no ffmpeg child process to supervise.
//!
//! The device is driven through [`linuxvideo`], a pure-Rust V4L2 binding, rather than the `v4l`
//! crate: `v4l` generates its bindings with bindgen and therefore needs libclang at build time,
//! which breaks minimal build images and cross-compilation. linuxvideo keeps all `ioctl`/`mmap`
//! `unsafe` code inside itself, so this module needs none (the crate forbids it).
//!
//! What linuxvideo 0.3 cannot express, and what this module does instead:
//! - It cannot open the device non-blocking or `poll(2)` it, so a camera that stops delivering
//!   frames would block `VIDIOC_DQBUF` forever (and with it the caller's shutdown). The capture
//!   loop therefore asks the driver whether a filled buffer is ready
//!   ([`ReadStream::will_block`]) every few milliseconds and gives up with
//!   [`V4l2Error::Stalled`] after [`STALL_TIMEOUT`].
//! - The number of mmap buffers is fixed by the crate (2). Frames are copied out and the buffer
//!   is handed back to the driver before `on_frame` runs, so a slow consumer makes the driver drop
//!   frames instead of building latency.
//! - Its ioctl wrappers do not retry on `EINTR`; the capture loop does.
//! - A few of its enumeration paths assert on inconsistent driver answers, so mode enumeration is
//!   run under `catch_unwind` and treated as "no modes listed" if it panics.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use linuxvideo::format::{FrameIntervals, FrameSizes, PixFormat, PixelFormat};
use linuxvideo::stream::ReadStream;
use linuxvideo::{BufType, CapabilityFlags, Device, Fract};

/// How long the camera may go without delivering a frame before [`capture`] gives up with
/// [`V4l2Error::Stalled`], so the caller can reopen it. Generous because some cameras take a
/// couple of seconds to deliver the first frame after streaming starts (auto exposure).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the capture loop asks the driver whether a frame is ready. This bounds the extra
/// latency the polling adds (at 30 fps frames are 33 ms apart) while costing only a couple of
/// cheap ioctls per wake-up.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Consecutive unusable frames (driver error flag, empty, or not starting with a JPEG SOI marker)
/// after which the camera is considered broken rather than momentarily glitching.
const MAX_BAD_FRAMES_IN_A_ROW: u32 = 60;

/// Consecutive `EINTR`s tolerated before treating the interruption as a real error, so a signal
/// storm cannot turn the loop into a busy loop.
const MAX_INTERRUPTS_IN_A_ROW: u32 = 100;

/// Size requested when the device does not list discrete sizes and the user did not ask for one.
const DEFAULT_SIZE: (u32, u32) = (1280, 720);

// Linux errno values (identical on every Linux architecture). Named here because std's
// `io::ErrorKind` has no stable kind for all of them on older toolchains, and pulling in `libc`
// for four numbers is not worth a dependency.
const ENXIO: i32 = 6;
const EBUSY: i32 = 16;
const ENODEV: i32 = 19;
const ENOTTY: i32 = 25;

/// What to capture: the device node plus optional size and frame rate wishes.
///
/// `size` and `fps` are wishes, not demands: the closest mode the camera offers is used (see
/// [`choose_mode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V4l2Options {
    /// Device node, e.g. `/dev/video0`.
    pub device: PathBuf,
    /// Wanted frame size as `(width, height)`; `None` picks the largest size up to 1280x720.
    pub size: Option<(u32, u32)>,
    /// Wanted frames per second; `None` picks the highest rate offered for the chosen size.
    pub fps: Option<u32>,
}

impl V4l2Options {
    /// Options for `device` with the camera's defaults for size and frame rate.
    pub fn new(device: impl Into<PathBuf>) -> Self {
        Self {
            device: device.into(),
            size: None,
            fps: None,
        }
    }
}

/// Everything that can go wrong while capturing. Each message names the device and says what to
/// do next, because these end up in the server log read by whoever set up the camera.
#[derive(Debug, thiserror::Error)]
pub enum V4l2Error {
    /// The device node does not exist, or its hardware is gone.
    #[error(
        "cannot open {}: no such device; is the camera plugged in? `ls /dev/video*` lists cameras",
        .device.display()
    )]
    NotFound {
        /// The device node.
        device: PathBuf,
    },
    /// The user running lookout may not open the device node.
    #[error(
        "cannot open {}: permission denied; add the user to the 'video' group \
         (`sudo usermod -aG video $USER`, then log in again)",
        .device.display()
    )]
    PermissionDenied {
        /// The device node.
        device: PathBuf,
    },
    /// Another program is already streaming from the camera.
    #[error(
        "{} is busy: another program is using the camera; stop it (`fuser {}` shows which) \
         or pick another camera",
        .device.display(),
        .device.display()
    )]
    Busy {
        /// The device node.
        device: PathBuf,
    },
    /// The path exists but is not something V4L2 video can be captured from.
    #[error(
        "{} is not a video capture device ({reason}); cameras often expose several \
         /dev/video* nodes and only one of them captures video, `v4l2-ctl --list-devices` shows them",
        .device.display()
    )]
    NotCaptureDevice {
        /// The path given.
        device: PathBuf,
        /// Why it was rejected (regular file, metadata node, ...).
        reason: String,
    },
    /// The camera offers neither MJPEG nor JPEG, so frames cannot be passed through untouched.
    #[error(
        "{} cannot capture MJPEG (formats: {formats}); use \
         --source 'exec:ffmpeg -f v4l2 -i {} -c:v mjpeg -f mjpeg -' to convert",
        .device.display(),
        .device.display()
    )]
    NoMjpeg {
        /// The device node.
        device: PathBuf,
        /// The pixel formats the device does offer, as fourcc codes.
        formats: String,
    },
    /// The camera went away while streaming (unplugged, USB reset).
    #[error(
        "{} was disconnected; reconnect the camera, capture is retried automatically",
        .device.display()
    )]
    Disconnected {
        /// The device node.
        device: PathBuf,
    },
    /// Streaming is on but no frame arrived for [`STALL_TIMEOUT`].
    #[error(
        "{} delivered no frame for {} s; the camera or its USB link is stuck, try replugging it \
         or a lower size/fps (USB bandwidth)",
        .device.display(),
        .timeout.as_secs()
    )]
    Stalled {
        /// The device node.
        device: PathBuf,
        /// How long was waited.
        timeout: Duration,
    },
    /// Every recent frame was flagged as corrupt by the driver or was not a JPEG.
    #[error(
        "{} delivered {count} unusable frames in a row; check the USB cable/port or try a lower \
         size/fps",
        .device.display()
    )]
    CorruptFrames {
        /// The device node.
        device: PathBuf,
        /// How many bad frames in a row were seen.
        count: u32,
    },
    /// A V4L2 request failed for a reason not covered above.
    #[error(
        "{}: {op} failed: {source}; `v4l2-ctl -d {} --all` and `dmesg` may show why",
        .device.display(),
        .device.display()
    )]
    Io {
        /// The device node.
        device: PathBuf,
        /// What was being done, e.g. "start streaming".
        op: String,
        /// The underlying OS error.
        source: io::Error,
    },
    /// The device answered, but with something unusable.
    #[error("{}: {message}", .device.display())]
    Device {
        /// The device node.
        device: PathBuf,
        /// What is wrong, including what to try.
        message: String,
    },
}

/// A capture mode the device offers (from format/frame-size/frame-interval enumeration).
///
/// `fps` is 0 when the device does not say which rates it supports for that size; such a mode
/// leaves the frame rate at the driver's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mode {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
}

/// Pure: picks the mode to request. Rules: exact size match if present, else the size with the
/// smallest area difference (prefer not smaller than wanted when tie-ish); then the fps closest to
/// wanted (or the highest when fps is None); with no size wanted pick the largest size up to 1280x720
/// (or the smallest above it if none). Returns None for an empty list.
///
/// "Tie-ish" means within 5% of the wanted area of the best difference: users asking for a size
/// would rather get slightly more pixels (which can be scaled down) than slightly fewer. Ties in
/// frame rate distance go to the higher rate.
pub fn choose_mode(available: &[Mode], size: Option<(u32, u32)>, fps: Option<u32>) -> Option<Mode> {
    let (width, height) = choose_size(available, size)?;
    available
        .iter()
        .filter(|m| m.width == width && m.height == height)
        .copied()
        .min_by_key(|m| {
            let distance = fps.map_or(0, |want| m.fps.abs_diff(want));
            (distance, std::cmp::Reverse(m.fps))
        })
}

fn area(width: u32, height: u32) -> u64 {
    u64::from(width) * u64::from(height)
}

/// The size half of [`choose_mode`].
fn choose_size(available: &[Mode], size: Option<(u32, u32)>) -> Option<(u32, u32)> {
    let mode_area = |m: &Mode| area(m.width, m.height);
    let chosen = match size {
        Some((want_w, want_h)) => {
            if available
                .iter()
                .any(|m| m.width == want_w && m.height == want_h)
            {
                return Some((want_w, want_h));
            }
            let want = area(want_w, want_h);
            let diff = |m: &Mode| mode_area(m).abs_diff(want);
            let best = available.iter().map(diff).min()?;
            let slack = want / 20;
            available
                .iter()
                .filter(|m| diff(m) <= best.saturating_add(slack))
                .min_by_key(|m| {
                    let smaller = m.width < want_w || m.height < want_h;
                    (smaller, diff(m), std::cmp::Reverse(mode_area(m)), m.width)
                })
        }
        None => {
            let (max_w, max_h) = DEFAULT_SIZE;
            available
                .iter()
                .filter(|m| m.width <= max_w && m.height <= max_h)
                .max_by_key(|m| (mode_area(m), m.width))
                .or_else(|| available.iter().min_by_key(|m| (mode_area(m), m.width)))
        }
    };
    chosen.map(|m| (m.width, m.height))
}

/// Maps an io::Error from opening the device to the right V4l2Error with the advice above.
pub fn open_error(device: &Path, err: io::Error) -> V4l2Error {
    let device = device.to_path_buf();
    match (err.kind(), err.raw_os_error()) {
        // ENODEV/ENXIO: the node exists but the hardware behind it is gone, which to the user
        // is the same as "not plugged in".
        (io::ErrorKind::NotFound, _) | (_, Some(ENODEV | ENXIO)) => V4l2Error::NotFound { device },
        (io::ErrorKind::PermissionDenied, _) => V4l2Error::PermissionDenied { device },
        (_, Some(EBUSY)) => V4l2Error::Busy { device },
        // ENOTTY: the file does not understand V4L2 ioctls (e.g. /dev/null, a tty).
        (_, Some(ENOTTY)) => V4l2Error::NotCaptureDevice {
            device,
            reason: "it does not answer V4L2 requests".to_string(),
        },
        _ => V4l2Error::Io {
            device,
            op: "open".to_string(),
            source: err,
        },
    }
}

/// Maps an error from a request on an already open device, where ENODEV means the camera was
/// unplugged rather than never there.
fn request_error(device: &Path, op: &str, err: io::Error) -> V4l2Error {
    let device = device.to_path_buf();
    match err.raw_os_error() {
        Some(ENODEV | ENXIO) => V4l2Error::Disconnected { device },
        Some(EBUSY) => V4l2Error::Busy { device },
        _ => V4l2Error::Io {
            device,
            op: op.to_string(),
            source: err,
        },
    }
}

/// Pure: why a device with these capabilities cannot be used, or `None` if it can. Capture needs
/// single-planar video capture (what linuxvideo's `video_capture` negotiates) plus streaming I/O.
fn capability_problem(caps: CapabilityFlags) -> Option<&'static str> {
    if !caps.contains(CapabilityFlags::VIDEO_CAPTURE) {
        return Some(if caps.contains(CapabilityFlags::META_CAPTURE) {
            "it is a metadata node"
        } else if caps.contains(CapabilityFlags::VIDEO_CAPTURE_MPLANE) {
            "it only offers multi-planar capture, which is not supported"
        } else {
            "it cannot capture video"
        });
    }
    if !caps.contains(CapabilityFlags::STREAMING) {
        return Some("it does not support streaming I/O");
    }
    None
}

/// Pure: the pixel format to request. MJPG is preferred as that is what webcams call their
/// compressed mode; plain JPEG is equally passable.
fn pick_jpeg_format(formats: &[PixelFormat]) -> Option<PixelFormat> {
    [PixelFormat::MJPG, PixelFormat::JPEG]
        .into_iter()
        .find(|f| formats.contains(f))
}

/// Pure: the frame to hand on, or `None` if the buffer is unusable: flagged as corrupt by the
/// driver, empty (UVC cameras sometimes complete empty buffers), or not starting with a JPEG
/// start-of-image marker. Only `used` (the buffer's bytes-used part) is ever copied.
fn jpeg_frame(used: &[u8], error_flag: bool) -> Option<Vec<u8>> {
    if error_flag || used.len() < 4 || !used.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    Some(used.to_vec())
}

/// Pure: frames per second for a frame interval (seconds per frame), rounded to the nearest
/// integer, or `None` for a nonsensical interval. 64-bit maths because drivers report intervals
/// like 333333/10000000.
fn fps_of(interval: Fract) -> Option<u32> {
    let num = u64::from(interval.numerator());
    let den = u64::from(interval.denominator());
    if num == 0 || den == 0 {
        return None;
    }
    let fps = (den + num / 2) / num;
    u32::try_from(fps.max(1)).ok()
}

/// Opens `path` as a V4L2 capture device, turning every failure into advice.
fn open_device(path: &Path) -> Result<Device, V4l2Error> {
    // Check the file type first so a regular file is never opened read-write by accident and
    // gets a clear message instead of "inappropriate ioctl for device".
    let meta = std::fs::metadata(path).map_err(|e| open_error(path, e))?;
    let file_type = meta.file_type();
    if !file_type.is_char_device() {
        let reason = if file_type.is_dir() {
            "it is a directory"
        } else if file_type.is_file() {
            "it is a regular file"
        } else {
            "it is not a character device"
        };
        return Err(V4l2Error::NotCaptureDevice {
            device: path.to_path_buf(),
            reason: reason.to_string(),
        });
    }
    let device = Device::open(path).map_err(|e| open_error(path, e))?;
    let caps = device
        .capabilities()
        .map_err(|e| request_error(path, "query capabilities", e))?
        .device_capabilities();
    if let Some(reason) = capability_problem(caps) {
        return Err(V4l2Error::NotCaptureDevice {
            device: path.to_path_buf(),
            reason: reason.to_string(),
        });
    }
    Ok(device)
}

/// Finds the MJPEG (or JPEG) pixel format of an open device.
fn jpeg_format_of(device: &Device, path: &Path) -> Result<PixelFormat, V4l2Error> {
    let mut formats = Vec::new();
    for desc in device.formats(BufType::VIDEO_CAPTURE) {
        let desc = desc.map_err(|e| request_error(path, "list formats", e))?;
        formats.push(desc.pixel_format());
    }
    pick_jpeg_format(&formats).ok_or_else(|| V4l2Error::NoMjpeg {
        device: path.to_path_buf(),
        formats: format_list(&formats),
    })
}

fn format_list(formats: &[PixelFormat]) -> String {
    if formats.is_empty() {
        return "none".to_string();
    }
    formats
        .iter()
        .map(|f| f.to_string().trim().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Lists the modes `pixel_format` is offered in. Best effort: sizes that are not listed as
/// discrete values (stepwise/continuous ranges) or that cannot be enumerated yield no modes, and
/// the caller falls back to requesting the wanted size and letting the driver adjust it.
fn enumerate_modes(
    device: &Device,
    pixel_format: PixelFormat,
    wanted_fps: Option<u32>,
) -> Vec<Mode> {
    // linuxvideo asserts on some inconsistent driver answers; a buggy driver must not take the
    // capture thread down, it just means we cannot list modes.
    catch_unwind(AssertUnwindSafe(|| {
        enumerate_modes_unguarded(device, pixel_format, wanted_fps)
    }))
    .unwrap_or_default()
}

fn enumerate_modes_unguarded(
    device: &Device,
    pixel_format: PixelFormat,
    wanted_fps: Option<u32>,
) -> Vec<Mode> {
    let sizes = match device.frame_sizes(pixel_format) {
        Ok(FrameSizes::Discrete(sizes)) => sizes,
        _ => return Vec::new(),
    };
    let mut modes = Vec::new();
    for size in sizes {
        let (width, height) = (size.width(), size.height());
        if width == 0 || height == 0 {
            continue;
        }
        let mut push = |fps: u32| modes.push(Mode { width, height, fps });
        match device.frame_intervals(pixel_format, width, height) {
            Ok(FrameIntervals::Discrete(intervals)) => {
                let rates: Vec<u32> = intervals
                    .iter()
                    .filter_map(|i| fps_of(*i.fract()))
                    .collect();
                if rates.is_empty() {
                    push(wanted_fps.unwrap_or(0));
                }
                rates.into_iter().for_each(&mut push);
            }
            Ok(FrameIntervals::Stepwise(range)) | Ok(FrameIntervals::Continuous(range)) => {
                // The shortest interval is the highest rate.
                let fastest = fps_of(*range.min());
                let slowest = fps_of(*range.max());
                match (fastest, slowest) {
                    (Some(hi), Some(lo)) => {
                        push(hi);
                        push(lo);
                        if let Some(want) = wanted_fps.filter(|w| (lo..=hi).contains(w)) {
                            push(want);
                        }
                    }
                    _ => push(wanted_fps.unwrap_or(0)),
                }
            }
            Err(_) => push(wanted_fps.unwrap_or(0)),
        }
    }
    modes.sort_unstable();
    modes.dedup();
    modes
}

/// Lists the MJPEG modes `device` offers, e.g. for a "which sizes does my camera do?" command.
/// Empty when the device only describes its sizes as ranges.
pub fn list_modes(device: &Path) -> Result<Vec<Mode>, V4l2Error> {
    let dev = open_device(device)?;
    let pixel_format = jpeg_format_of(&dev, device)?;
    Ok(enumerate_modes(&dev, pixel_format, None))
}

/// Blocking capture loop: open the device, check it captures MJPEG, enumerate modes (where the
/// device lists discrete sizes/intervals; fall back to the wanted size if enumeration is stepwise or
/// unsupported), set the chosen format and frame interval, start streaming with mmap buffers, and
/// call `on_frame(jpeg_bytes)` for each captured frame (copy out the used bytes of the buffer only).
/// Returns Ok(()) when `on_frame` returns false (the caller is shutting down), Err on any failure
/// (device unplugged mid-stream gives an Err, never a panic or a busy loop).
///
/// Details worth knowing:
/// - The frame interval is set with `VIDIOC_S_PARM` (linuxvideo's `set_frame_interval`) on a best
///   effort basis: drivers that reject it keep their default rate and capture goes on.
/// - The driver may adjust the requested size; frames are passed on at whatever size it chose.
/// - Frames the driver flags as corrupt, empty buffers and buffers not starting with a JPEG SOI
///   marker are skipped; [`V4l2Error::CorruptFrames`] after too many in a row.
/// - `on_frame` is only consulted when a frame arrives, so a stuck camera is detected by the
///   [`STALL_TIMEOUT`] watchdog instead, which also bounds how long shutdown can wait on it.
pub fn capture(
    opts: &V4l2Options,
    on_frame: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<(), V4l2Error> {
    let path = opts.device.as_path();
    let device = open_device(path)?;
    let pixel_format = jpeg_format_of(&device, path)?;
    let modes = enumerate_modes(&device, pixel_format, opts.fps);
    let (fallback_w, fallback_h) = opts.size.unwrap_or(DEFAULT_SIZE);
    let target = choose_mode(&modes, opts.size, opts.fps).unwrap_or(Mode {
        width: fallback_w,
        height: fallback_h,
        fps: opts.fps.unwrap_or(0),
    });

    let capture = device
        .video_capture(PixFormat::new(target.width, target.height, pixel_format))
        .map_err(|e| {
            request_error(
                path,
                &format!(
                    "setting format {}x{} {}",
                    target.width,
                    target.height,
                    pixel_format.to_string().trim()
                ),
                e,
            )
        })?;
    // Drivers may substitute another format instead of failing; passing YUYV bytes on as JPEG
    // would only confuse everything downstream.
    let negotiated = capture.format().pixel_format();
    if pick_jpeg_format(&[negotiated]).is_none() {
        return Err(V4l2Error::NoMjpeg {
            device: path.to_path_buf(),
            formats: format_list(&[negotiated]),
        });
    }
    if target.fps > 0 {
        if let Err(e) = capture.set_frame_interval(Fract::new(1, target.fps)) {
            // Not supporting frame rate selection is fine (the driver keeps its default);
            // a vanished device is not.
            if let V4l2Error::Disconnected { device } = request_error(path, "set frame rate", e) {
                return Err(V4l2Error::Disconnected { device });
            }
        }
    }
    let mut stream = capture
        .into_stream()
        .map_err(|e| request_error(path, "start streaming", e))?;
    stream_frames(&mut stream, path, on_frame)
}

/// The streaming part of [`capture`]. Copies each frame out before calling `on_frame` so the
/// buffer goes back to the driver as early as possible.
fn stream_frames(
    stream: &mut ReadStream,
    path: &Path,
    on_frame: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<(), V4l2Error> {
    let mut bad_in_a_row = 0u32;
    let mut interrupts_in_a_row = 0u32;
    loop {
        wait_for_frame(stream, path, STALL_TIMEOUT)?;
        let frame = match stream.dequeue(|buf| Ok(jpeg_frame(&buf, buf.is_error()))) {
            Ok(frame) => {
                interrupts_in_a_row = 0;
                frame
            }
            Err(e)
                if e.kind() == io::ErrorKind::Interrupted
                    && interrupts_in_a_row < MAX_INTERRUPTS_IN_A_ROW =>
            {
                interrupts_in_a_row += 1;
                continue;
            }
            Err(e) => return Err(request_error(path, "dequeue frame", e)),
        };
        match frame {
            Some(jpeg) => {
                bad_in_a_row = 0;
                if !on_frame(jpeg) {
                    return Ok(());
                }
            }
            None => {
                bad_in_a_row += 1;
                if bad_in_a_row >= MAX_BAD_FRAMES_IN_A_ROW {
                    return Err(V4l2Error::CorruptFrames {
                        device: path.to_path_buf(),
                        count: bad_in_a_row,
                    });
                }
            }
        }
    }
}

/// Sleeps until the driver has a filled buffer ready, so the following dequeue cannot block
/// forever. Unplugging makes the query fail with ENODEV, which ends the wait with
/// [`V4l2Error::Disconnected`].
fn wait_for_frame(stream: &ReadStream, path: &Path, timeout: Duration) -> Result<(), V4l2Error> {
    let start = Instant::now();
    loop {
        match stream.will_block() {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(request_error(path, "wait for frame", e)),
        }
        if start.elapsed() >= timeout {
            return Err(V4l2Error::Stalled {
                device: path.to_path_buf(),
                timeout,
            });
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(width: u32, height: u32, fps: u32) -> Mode {
        Mode { width, height, fps }
    }

    fn typical_webcam() -> Vec<Mode> {
        vec![
            m(640, 480, 30),
            m(640, 480, 15),
            m(1280, 720, 30),
            m(1280, 720, 10),
            m(1920, 1080, 30),
            m(1920, 1080, 5),
            m(320, 240, 30),
        ]
    }

    #[test]
    fn exact_size_and_fps() {
        let modes = typical_webcam();
        assert_eq!(
            choose_mode(&modes, Some((1280, 720)), Some(10)),
            Some(m(1280, 720, 10))
        );
        assert_eq!(
            choose_mode(&modes, Some((1920, 1080)), Some(30)),
            Some(m(1920, 1080, 30))
        );
    }

    #[test]
    fn exact_size_beats_closer_area_elsewhere() {
        // 800x600 is listed; it must win even though order puts others first.
        let modes = vec![m(1024, 576, 30), m(800, 600, 30), m(640, 480, 30)];
        assert_eq!(
            choose_mode(&modes, Some((800, 600)), None),
            Some(m(800, 600, 30))
        );
    }

    #[test]
    fn nearest_size_by_area() {
        let modes = vec![
            m(640, 480, 30),
            m(1024, 768, 30),
            m(1280, 800, 30),
            m(1920, 1080, 30),
        ];
        // 1280x720 = 921600: 1280x800 differs by 102400, 1024x768 by 135168.
        assert_eq!(
            choose_mode(&modes, Some((1280, 720)), None),
            Some(m(1280, 800, 30))
        );
        // Far below everything: the smallest.
        assert_eq!(
            choose_mode(&modes, Some((160, 120)), None),
            Some(m(640, 480, 30))
        );
        // Far above everything: the largest.
        assert_eq!(
            choose_mode(&modes, Some((4000, 3000)), None),
            Some(m(1920, 1080, 30))
        );
    }

    #[test]
    fn nearest_size_prefers_not_smaller_when_tie_ish() {
        // Wanted 1000x1000; 995x1000 is closer by area (5000) but smaller, 1010x1000 differs by
        // 10000, within 5% of the wanted area, and is not smaller.
        let modes = vec![m(995, 1000, 30), m(1010, 1000, 30)];
        assert_eq!(
            choose_mode(&modes, Some((1000, 1000)), None),
            Some(m(1010, 1000, 30))
        );
        // Exact tie in area difference.
        let modes = vec![m(990, 1000, 30), m(1010, 1000, 30)];
        assert_eq!(
            choose_mode(&modes, Some((1000, 1000)), None),
            Some(m(1010, 1000, 30))
        );
        // Not tie-ish: the much closer smaller size wins.
        let modes = vec![m(990, 1000, 30), m(1300, 1000, 30)];
        assert_eq!(
            choose_mode(&modes, Some((1000, 1000)), None),
            Some(m(990, 1000, 30))
        );
    }

    #[test]
    fn fps_nearest_and_highest() {
        let modes = vec![
            m(640, 480, 5),
            m(640, 480, 15),
            m(640, 480, 30),
            m(640, 480, 60),
        ];
        assert_eq!(
            choose_mode(&modes, Some((640, 480)), Some(20)),
            Some(m(640, 480, 15))
        );
        assert_eq!(
            choose_mode(&modes, Some((640, 480)), Some(25)),
            Some(m(640, 480, 30))
        );
        assert_eq!(
            choose_mode(&modes, Some((640, 480)), Some(1000)),
            Some(m(640, 480, 60))
        );
        assert_eq!(
            choose_mode(&modes, Some((640, 480)), Some(1)),
            Some(m(640, 480, 5))
        );
        // 10 is 5 away from both 5 and 15: the higher rate wins.
        assert_eq!(
            choose_mode(&modes, Some((640, 480)), Some(10)),
            Some(m(640, 480, 15))
        );
        // No fps wanted: the highest.
        assert_eq!(
            choose_mode(&modes, Some((640, 480)), None),
            Some(m(640, 480, 60))
        );
    }

    #[test]
    fn fps_is_only_chosen_among_the_chosen_size() {
        let modes = vec![m(1280, 720, 10), m(640, 480, 30)];
        assert_eq!(
            choose_mode(&modes, Some((1280, 720)), Some(30)),
            Some(m(1280, 720, 10))
        );
    }

    #[test]
    fn no_size_wanted_picks_largest_up_to_720p() {
        let modes = typical_webcam();
        assert_eq!(choose_mode(&modes, None, None), Some(m(1280, 720, 30)));
        assert_eq!(choose_mode(&modes, None, Some(12)), Some(m(1280, 720, 10)));
        let modes = vec![m(640, 480, 30), m(800, 600, 30), m(1920, 1080, 30)];
        assert_eq!(choose_mode(&modes, None, None), Some(m(800, 600, 30)));
        // 1280x1024 is taller than 720, so it does not count as "up to 1280x720".
        let modes = vec![m(640, 480, 30), m(1280, 1024, 30)];
        assert_eq!(choose_mode(&modes, None, None), Some(m(640, 480, 30)));
    }

    #[test]
    fn no_size_wanted_and_all_above_720p_picks_smallest() {
        let modes = vec![m(3840, 2160, 30), m(1920, 1080, 30), m(2560, 1440, 30)];
        assert_eq!(choose_mode(&modes, None, None), Some(m(1920, 1080, 30)));
    }

    #[test]
    fn empty_list_gives_none() {
        assert_eq!(choose_mode(&[], None, None), None);
        assert_eq!(choose_mode(&[], Some((640, 480)), Some(30)), None);
    }

    fn io_err(kind: io::ErrorKind) -> io::Error {
        io::Error::new(kind, "test")
    }

    #[test]
    fn open_error_not_found() {
        let err = open_error(Path::new("/dev/video7"), io_err(io::ErrorKind::NotFound));
        assert!(matches!(err, V4l2Error::NotFound { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("/dev/video7"), "{msg}");
        assert!(msg.contains("no such device"), "{msg}");
        assert!(msg.contains("plugged in"), "{msg}");
        assert!(msg.contains("ls /dev/video*"), "{msg}");
    }

    #[test]
    fn open_error_enodev_counts_as_not_found() {
        let err = open_error(
            Path::new("/dev/video3"),
            io::Error::from_raw_os_error(ENODEV),
        );
        assert!(matches!(err, V4l2Error::NotFound { .. }), "{err:?}");
    }

    #[test]
    fn open_error_permission_denied() {
        let err = open_error(
            Path::new("/dev/video0"),
            io_err(io::ErrorKind::PermissionDenied),
        );
        let msg = err.to_string();
        assert!(matches!(err, V4l2Error::PermissionDenied { .. }), "{err:?}");
        assert!(msg.contains("/dev/video0"), "{msg}");
        assert!(msg.contains("permission denied"), "{msg}");
        assert!(msg.contains("'video' group"), "{msg}");
    }

    #[test]
    fn open_error_busy() {
        let err = open_error(
            Path::new("/dev/video1"),
            io::Error::from_raw_os_error(EBUSY),
        );
        let msg = err.to_string();
        assert!(matches!(err, V4l2Error::Busy { .. }), "{err:?}");
        assert!(msg.contains("/dev/video1"), "{msg}");
        assert!(msg.contains("fuser /dev/video1"), "{msg}");
    }

    #[test]
    fn open_error_enotty_is_not_a_capture_device() {
        let err = open_error(Path::new("/dev/tty0"), io::Error::from_raw_os_error(ENOTTY));
        let msg = err.to_string();
        assert!(matches!(err, V4l2Error::NotCaptureDevice { .. }), "{err:?}");
        assert!(
            msg.contains("/dev/tty0 is not a video capture device"),
            "{msg}"
        );
    }

    #[test]
    fn open_error_other_keeps_underlying_text_and_advice() {
        let err = open_error(Path::new("/dev/video2"), io::Error::other("weird failure"));
        let msg = err.to_string();
        assert!(matches!(err, V4l2Error::Io { .. }), "{err:?}");
        assert!(msg.contains("/dev/video2"), "{msg}");
        assert!(msg.contains("weird failure"), "{msg}");
        assert!(msg.contains("v4l2-ctl -d /dev/video2"), "{msg}");
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn request_error_enodev_is_disconnected() {
        let err = request_error(
            Path::new("/dev/video0"),
            "dequeue frame",
            io::Error::from_raw_os_error(ENODEV),
        );
        assert!(matches!(err, V4l2Error::Disconnected { .. }), "{err:?}");
        assert!(err.to_string().contains("reconnect"), "{err}");
        let err = request_error(
            Path::new("/dev/video0"),
            "start streaming",
            io::Error::from_raw_os_error(5),
        );
        let msg = err.to_string();
        assert!(msg.contains("start streaming failed"), "{msg}");
    }

    #[test]
    fn no_mjpeg_message_lists_formats_and_workaround() {
        let err = V4l2Error::NoMjpeg {
            device: PathBuf::from("/dev/video0"),
            formats: format_list(&[PixelFormat::YUYV]),
        };
        let msg = err.to_string();
        assert!(
            msg.starts_with("/dev/video0 cannot capture MJPEG (formats: YUYV); use --source"),
            "{msg}"
        );
        assert!(msg.contains("exec:ffmpeg"), "{msg}");
        assert_eq!(format_list(&[]), "none");
    }

    #[test]
    fn capture_on_missing_device_says_so() {
        let opts = V4l2Options::new("/dev/video-does-not-exist");
        let mut called = false;
        let err = capture(&opts, &mut |_| {
            called = true;
            true
        })
        .expect_err("a missing device must fail");
        assert!(!called);
        assert!(matches!(err, V4l2Error::NotFound { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("/dev/video-does-not-exist"), "{msg}");
        assert!(msg.contains("no such device"), "{msg}");
        assert!(msg.contains("ls /dev/video*"), "{msg}");
    }

    #[test]
    fn capture_on_regular_file_is_not_a_capture_device() {
        let path = std::env::temp_dir().join(format!(
            "lookout-v4l2-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, b"not a camera").expect("create temp file");
        let opts = V4l2Options::new(&path);
        let result = capture(&opts, &mut |_| true);
        let contents = std::fs::read(&path);
        std::fs::remove_file(&path).ok();
        let err = result.expect_err("a regular file must fail");
        assert!(matches!(err, V4l2Error::NotCaptureDevice { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("is not a video capture device"), "{msg}");
        assert!(msg.contains("regular file"), "{msg}");
        // The file must not have been touched.
        assert_eq!(contents.expect("read back"), b"not a camera");
    }

    #[test]
    fn capture_on_directory_is_not_a_capture_device() {
        let err = capture(&V4l2Options::new(std::env::temp_dir()), &mut |_| true)
            .expect_err("a directory must fail");
        assert!(matches!(err, V4l2Error::NotCaptureDevice { .. }), "{err:?}");
        assert!(err.to_string().contains("directory"), "{err}");
    }

    #[test]
    fn capture_on_non_v4l2_char_device_is_not_a_capture_device() {
        // /dev/null is a character device that rejects V4L2 ioctls with ENOTTY.
        let null = Path::new("/dev/null");
        if !null.exists() {
            return;
        }
        let err = capture(&V4l2Options::new(null), &mut |_| true).expect_err("/dev/null must fail");
        assert!(matches!(err, V4l2Error::NotCaptureDevice { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("/dev/null is not a video capture device"),
            "{err}"
        );
    }

    #[test]
    fn list_modes_on_missing_device_fails_cleanly() {
        let err = list_modes(Path::new("/dev/video-does-not-exist")).expect_err("must fail");
        assert!(matches!(err, V4l2Error::NotFound { .. }), "{err:?}");
    }

    #[test]
    fn capability_checks() {
        let ok = CapabilityFlags::VIDEO_CAPTURE | CapabilityFlags::STREAMING;
        assert_eq!(capability_problem(ok), None);
        assert!(capability_problem(CapabilityFlags::VIDEO_CAPTURE)
            .is_some_and(|r| r.contains("streaming")));
        assert!(
            capability_problem(CapabilityFlags::META_CAPTURE | CapabilityFlags::STREAMING)
                .is_some_and(|r| r.contains("metadata"))
        );
        assert!(capability_problem(
            CapabilityFlags::VIDEO_CAPTURE_MPLANE | CapabilityFlags::STREAMING
        )
        .is_some_and(|r| r.contains("multi-planar")));
        assert!(capability_problem(CapabilityFlags::VIDEO_OUTPUT).is_some());
    }

    #[test]
    fn jpeg_format_preference() {
        use PixelFormat as P;
        assert_eq!(pick_jpeg_format(&[P::YUYV, P::MJPG]), Some(P::MJPG));
        assert_eq!(pick_jpeg_format(&[P::JPEG, P::MJPG]), Some(P::MJPG));
        assert_eq!(pick_jpeg_format(&[P::YUYV, P::JPEG]), Some(P::JPEG));
        assert_eq!(pick_jpeg_format(&[P::YUYV]), None);
        assert_eq!(pick_jpeg_format(&[]), None);
    }

    #[test]
    fn jpeg_frame_copies_only_good_frames() {
        let good = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9];
        assert_eq!(jpeg_frame(&good, false), Some(good.to_vec()));
        assert_eq!(jpeg_frame(&good, true), None, "driver error flag");
        assert_eq!(jpeg_frame(&[], false), None, "empty buffer");
        assert_eq!(jpeg_frame(&[0, 0, 0, 0, 0], false), None, "zeroed buffer");
        assert_eq!(jpeg_frame(&[0xFF, 0xD8], false), None, "truncated");
    }

    #[test]
    fn fps_from_frame_intervals() {
        assert_eq!(fps_of(Fract::new(1, 30)), Some(30));
        assert_eq!(fps_of(Fract::new(333_333, 10_000_000)), Some(30));
        assert_eq!(fps_of(Fract::new(1001, 30_000)), Some(30));
        assert_eq!(fps_of(Fract::new(1, 1)), Some(1));
        assert_eq!(
            fps_of(Fract::new(5, 1)),
            Some(1),
            "slower than 1 fps rounds up to 1"
        );
        assert_eq!(fps_of(Fract::new(0, 30)), None);
        assert_eq!(fps_of(Fract::new(u32::MAX, u32::MAX)), Some(1));
    }
}
