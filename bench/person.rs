//! `person`: the cost of one person check, for `scripts/bench --person`.
//!
//! Times [`PersonDetector::detect_jpeg`] (JPEG decode, scaling, the model,
//! decoding and NMS: everything a check costs) on a 1280x720 frame (the
//! synthetic scene with its ball, the server's default camera) and on the
//! 768x576 real frames in testdata/person, whole and on a region around one
//! walker, with one thread and with a pool of every core. Best of 10 runs
//! after one warm-up; a Markdown table on stdout.
//!
//! With `--scenes DIR --truth FILE` (the scenes `scripts/scenes` built, and
//! testdata/footage/scenes.toml) it then prints what the check makes of
//! each motion episode of the regression scenes (`person_scenes.rs`).

mod person_scenes;
// Only its scene list and median are used here; the rest is `footage`'s.
#[allow(dead_code)]
mod truth;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;

use lookout::person::{PersonDetector, DEFAULT_MIN_SCORE};
use lookout::source::scene::{MotionMode, Scene};

const RUNS: usize = 10;

fn best_ms(d: &PersonDetector, jpeg: &[u8], region: Option<[f32; 4]>) -> (f64, usize) {
    let mut found = 0;
    let mut best = Duration::MAX;
    for i in 0..=RUNS {
        let t = Instant::now();
        let people = d
            .detect_jpeg(jpeg, region, DEFAULT_MIN_SCORE)
            .expect("check");
        // Run 0 is the warm-up (first allocations of the plan's buffers).
        if i > 0 {
            best = best.min(t.elapsed());
        }
        found = people.len();
    }
    (best.as_secs_f64() * 1e3, found)
}

/// The cost of a person check, and what it makes of the regression scenes.
#[derive(Debug, Parser)]
#[command(name = "person")]
struct Cli {
    /// Folder with the scenes `scripts/scenes` built (`NAME.mjpeg`).
    #[arg(long, requires = "truth")]
    scenes: Option<PathBuf>,
    /// The scenes' truth (`testdata/footage/scenes.toml`).
    #[arg(long, requires = "scenes")]
    truth: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let t = Instant::now();
    let one = PersonDetector::load().expect("load the model");
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let all = PersonDetector::load_with_threads(cores).expect("load the model");

    let scene = Scene::new(1280, 720, 10, MotionMode::Always).expect("scene");
    let picture = (0..scene.picture_count())
        .find(|&p| scene.is_motion_picture(p))
        .unwrap_or(0);
    let synthetic = scene.render_jpeg(picture).expect("render");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/person");
    let real = |name: &str| std::fs::read(dir.join(name)).expect("testdata/person");

    let mut rows: Vec<(String, Vec<u8>, Option<[f32; 4]>)> = vec![(
        "1280x720 synthetic scene, whole frame".into(),
        synthetic,
        None,
    )];
    for name in [
        "walk-04.jpg",
        "walk-52.jpg",
        "walk-68.jpg",
        "empty-yard.jpg",
    ] {
        rows.push((format!("768x576 {name}, whole frame"), real(name), None));
    }
    // A motion box around the woman on the grass in walk-68 with a margin:
    // about 150x240 px, scaled up to 416.
    rows.push((
        "768x576 walk-68.jpg, region 150x240 px".into(),
        real("walk-68.jpg"),
        Some([100.0 / 768.0, 280.0 / 576.0, 150.0 / 768.0, 240.0 / 576.0]),
    ));

    println!("Person check (decode, scale, NanoDet-g on tract, NMS), best of {RUNS}; model load and optimization {load_ms:.0} ms.\n");
    println!("| frame | people | 1 thread (ms) | {cores} threads (ms) |");
    println!("|---|---:|---:|---:|");
    for (what, jpeg, region) in &rows {
        let (ms1, n) = best_ms(&one, jpeg, *region);
        let (msn, _) = best_ms(&all, jpeg, *region);
        println!("| {what} | {n} | {ms1:.1} | {msn:.1} |");
    }

    if let (Some(scenes), Some(truth)) = (&cli.scenes, &cli.truth) {
        println!();
        if let Err(e) = person_scenes::table(&one, truth, scenes) {
            eprintln!("person: {e}");
            std::process::exit(1);
        }
    }
}
