//! `footage`: the detection half of `scripts/bench --footage`.
//!
//! The regression scenes of `scripts/scenes` (real footage, with the spans of
//! real motion in `testdata/footage/scenes.toml`) measured for two detectors
//! with the same yardstick, [`lookout::motion::replay::judge`]:
//!
//! | subcommand | what |
//! |---|---|
//! | `lookout` | replays each scene through lookout's detector at default settings: episodes, latency, scores, analysis CPU per frame |
//! | `serve` | plays the scenes over HTTP in real time for Debian's `motion` (see `pacer.rs`) |
//! | `motion` | judges the event start times `motion`'s hook wrote, against the same truth |
//!
//! Every table is Markdown on stdout, ready for the README.

mod pacer;
mod truth;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lookout::motion::detector::MotionParams;
use lookout::motion::replay::{replay, Replay};
use truth::{Row, Scene, Summary, MAX_LATENCY_S};

/// Frame rate of the scenes `scripts/scenes` builds.
const FPS: f64 = 10.0;

/// Motion regression scenes through lookout and through `motion`.
#[derive(Debug, Parser)]
#[command(name = "footage")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Replay the scenes through lookout's detector and print its tables.
    Lookout(LookoutArgs),
    /// Serve the scenes over HTTP in real time (for `motion`).
    Serve(pacer::Args),
    /// Judge `motion`'s event start times and print its table.
    Motion(MotionArgs),
}

#[derive(Debug, clap::Args)]
struct LookoutArgs {
    /// The scenes' truth (`testdata/footage/scenes.toml`).
    #[arg(long)]
    truth: PathBuf,
    /// Folder with the scenes `scripts/scenes` built (`NAME.mjpeg`).
    #[arg(long)]
    scenes: PathBuf,
    /// A 1280x720 scene to time the analysis on (the walkers, scaled).
    #[arg(long)]
    hd720: Option<PathBuf>,
    /// Replays of the 720p scene; its median CPU per frame is quoted,
    /// because the machine is shared and single runs are noisy.
    #[arg(long, default_value_t = 7)]
    runs: usize,
}

#[derive(Debug, clap::Args)]
struct MotionArgs {
    /// The scenes' truth (`testdata/footage/scenes.toml`).
    #[arg(long)]
    truth: PathBuf,
    /// What `footage serve` printed: when each scene's first frame went out.
    #[arg(long)]
    served: PathBuf,
    /// Folder of `NAME.events`: one Unix time per line, per event start.
    #[arg(long)]
    events: PathBuf,
    /// The URL path prefix this run's scenes were served under.
    #[arg(long)]
    prefix: String,
    /// The table's title.
    #[arg(long)]
    title: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Lookout(a) => lookout_tables(&a),
        Cmd::Serve(a) => pacer::run(a),
        Cmd::Motion(a) => motion_table(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("footage: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One scene replayed through lookout.
struct Replayed<'a> {
    scene: &'a Scene,
    replay: Replay,
    size: (usize, usize),
}

fn lookout_tables(a: &LookoutArgs) -> Result<(), String> {
    let scenes = truth::load(&a.truth)?;
    let params = MotionParams::default();
    // One scene after another on one thread: the CPU figures are this
    // thread's, and nothing else of ours competes for the cores.
    let mut done = Vec::new();
    for scene in &scenes {
        let bytes = read(&a.scenes.join(format!("{}.mjpeg", scene.name)))?;
        let replay = replay(&bytes, FPS, 1, &params);
        if replay.frames.is_empty() {
            return Err(format!("{}: no frame could be decoded", scene.name));
        }
        done.push(Replayed {
            scene,
            size: picture_size(&bytes)?,
            replay,
        });
    }

    println!("### lookout, default settings (threshold 12, 2 frames, cooldown 5 s)\n");
    let mut rows = Vec::new();
    for r in &done {
        let episodes: Vec<(f64, Option<f64>)> = r
            .replay
            .episodes
            .iter()
            .map(|e| (e.started_s, e.ended_s))
            .collect();
        let scores = truth::scores(r.scene, &r.replay);
        rows.push(Row::new(r.scene, &episodes, MAX_LATENCY_S, Some(scores)));
    }
    truth::print_table(&rows);
    println!();
    println!("{}", Summary::of(&rows).line("lookout"));
    println!();

    cpu_table(&done, a)?;
    println!();
    truth::print_score_table(
        &done
            .iter()
            .map(|r| (r.scene, &r.replay))
            .collect::<Vec<_>>(),
    );
    Ok(())
}

/// Analysis CPU per frame (decode included) by picture size, and the 720p
/// figure the README promises (at most 1.5 ms).
fn cpu_table(done: &[Replayed<'_>], a: &LookoutArgs) -> Result<(), String> {
    println!("### lookout: analysis CPU per frame (decode included, one thread)\n");
    println!("| picture | scenes | frames | CPU per frame |");
    println!("|---|---|---:|---:|");
    let mut sizes: Vec<(usize, usize)> = done.iter().map(|r| r.size).collect();
    sizes.sort_by_key(|&(w, h)| std::cmp::Reverse(w * h));
    sizes.dedup();
    for size in sizes {
        let of: Vec<&Replayed<'_>> = done.iter().filter(|r| r.size == size).collect();
        let frames: usize = of.iter().map(|r| r.replay.frames.len()).sum();
        let cpu: Option<Duration> = of.iter().map(|r| r.replay.cpu).sum();
        let names: Vec<&str> = of.iter().map(|r| r.scene.name.as_str()).collect();
        println!(
            "| {}x{} | {} | {frames} | {} |",
            size.0,
            size.1,
            names.join(", "),
            per_frame(cpu, frames)
        );
    }
    if let Some(path) = &a.hd720 {
        let bytes = read(path)?;
        let (w, h) = picture_size(&bytes)?;
        let params = MotionParams::default();
        let mut each: Vec<f64> = Vec::new();
        let mut frames = 0;
        for _ in 0..a.runs.max(1) {
            let r = replay(&bytes, FPS, 1, &params);
            frames = r.frames.len();
            let cpu = r
                .cpu
                .ok_or("this platform does not report thread CPU time")?;
            each.push(cpu.as_secs_f64() * 1e3 / frames.max(1) as f64);
        }
        each.sort_by(f64::total_cmp);
        // The JPEG decode alone (luma, box-averaged as the detector does), to
        // say how much of the figure is decoding.
        let mut decode: Vec<f64> = Vec::new();
        for _ in 0..a.runs.max(1) {
            decode.push(decode_ms(&bytes).ok_or("cannot time the decode")?);
        }
        println!(
            "| **{w}x{h}** | walkers, scaled | {frames} x {} runs | **{:.2} ms** median (runs {:.2}-{:.2}) |",
            each.len(),
            truth::median(&each).unwrap_or(f64::NAN),
            each[0],
            each[each.len() - 1]
        );
        println!(
            "| {w}x{h}, JPEG decode to luma only | walkers, scaled | {frames} x {} runs | {:.2} ms median |",
            decode.len(),
            truth::median(&decode).unwrap_or(f64::NAN)
        );
    }
    Ok(())
}

/// CPU milliseconds per frame to decode `mjpeg`'s JPEGs to the detector's
/// small luma picture; None when the platform does not say or a frame fails.
fn decode_ms(mjpeg: &[u8]) -> Option<f64> {
    let mut splitter = lookout::source::mjpeg::MjpegSplitter::new();
    splitter.push(mjpeg);
    let mut jpegs = Vec::new();
    while let Ok(Some(j)) = splitter.next_frame() {
        jpegs.push(j);
    }
    let before = lookout::motion::replay::thread_cpu()?;
    for j in &jpegs {
        lookout::motion::image::decode_small_luma(j, lookout::motion::detector::WORK_WIDTH).ok()?;
    }
    let spent = lookout::motion::replay::thread_cpu()?.saturating_sub(before);
    Some(spent.as_secs_f64() * 1e3 / jpegs.len().max(1) as f64)
}

fn per_frame(cpu: Option<Duration>, frames: usize) -> String {
    match cpu {
        Some(c) if frames > 0 => format!("{:.2} ms", c.as_secs_f64() * 1e3 / frames as f64),
        _ => "n/a".into(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Width and height of a scene's first JPEG.
fn picture_size(mjpeg: &[u8]) -> Result<(usize, usize), String> {
    let mut splitter = lookout::source::mjpeg::MjpegSplitter::new();
    splitter.push(mjpeg);
    let first = splitter
        .next_frame()
        .ok()
        .flatten()
        .ok_or("no JPEG in the scene")?;
    let mut decoder = zune_jpeg::JpegDecoder::new(&first[..]);
    decoder.decode_headers().map_err(|e| format!("{e:?}"))?;
    decoder.dimensions().ok_or_else(|| "no picture size".into())
}

fn motion_table(a: &MotionArgs) -> Result<(), String> {
    let scenes = truth::load(&a.truth)?;
    let served = std::fs::read_to_string(&a.served)
        .map_err(|e| format!("cannot read {}: {e}", a.served.display()))?;
    println!("### {}\n", a.title);
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for scene in &scenes {
        let path = format!("{}/{}", a.prefix, scene.name);
        // `motion` (through ffmpeg) opens the stream, reads its head, hangs
        // up and opens it again for good: time 0 is the first frame of the
        // connection that went on to the scene's last frame.
        let mut started: Vec<(&str, f64)> = Vec::new();
        let mut whole: Vec<&str> = Vec::new();
        for line in served.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["start", p, id, t] if *p == path => {
                    if let Ok(t) = t.parse() {
                        started.push((id, t));
                    }
                }
                ["end", p, id, _] if *p == path => whole.push(id),
                _ => {}
            }
        }
        let Some(&(_, t0)) = started.iter().find(|(id, _)| whole.contains(id)) else {
            notes.push(format!(
                "{}: not judged: motion did not take the scene to its end ({} connection(s))",
                scene.name,
                started.len()
            ));
            continue;
        };
        if whole.len() > 1 {
            notes.push(format!(
                "{}: motion saw the scene {} times (it reconnected); times count from the first",
                scene.name,
                whole.len()
            ));
        }
        let times = |ext: &str| {
            let file = a.events.join(format!("{}.{ext}", scene.name));
            let text = std::fs::read_to_string(file).unwrap_or_default();
            let mut ts: Vec<f64> = text
                .lines()
                .filter_map(|l| l.trim().parse::<f64>().ok())
                .map(|t| t - t0)
                .collect();
            ts.sort_by(f64::total_cmp);
            ts
        };
        let (starts, ends) = (times("events"), times("ends"));
        // An event ends before the next one starts, so the first end after
        // each start is its end (none while it still ran at the stop).
        let episodes: Vec<(f64, Option<f64>)> = starts
            .iter()
            .map(|&s| (s, ends.iter().copied().find(|&e| e >= s)))
            .collect();
        rows.push(Row::new(scene, &episodes, MAX_LATENCY_S, None));
    }
    truth::print_table(&rows);
    println!();
    println!("{}", Summary::of(&rows).line("motion"));
    for n in notes {
        println!("\n- {n}");
    }
    Ok(())
}
