//! `person`: the cost of one person check, for `scripts/bench --person`.
//!
//! Times [`PersonDetector::detect_jpeg`] (JPEG decode, scaling, the model,
//! decoding and NMS: everything a check costs) on a 1280x720 frame (the
//! synthetic scene with its ball, the server's default camera) and on the
//! 768x576 real frames in testdata/person, whole and on a region around one
//! walker, with one thread and with a pool of every core. Best of 10 runs
//! after one warm-up; a Markdown table on stdout.
//!
//! Then the figures of issue 32's item 3 beside its targets: the slowest
//! one-thread check above, the memory the process gained by loading the
//! model and running its first checks (VmRSS before and after, from
//! /proc/self/status), and with `--binary PATH` the size of that lookout
//! binary.
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

/// Issue 32's item 3: a check on one core, the memory the loaded check adds,
/// the release binary with the check.
const TARGET_MS: f64 = 50.0;
const TARGET_RSS_MB: f64 = 40.0;
const TARGET_BINARY_MB: f64 = 30.0;

/// This process's resident memory in MB of 10^6 bytes: all of it (VmRSS)
/// and the part mapped from files (RssFile: the binary's pages, the
/// embedded model among them); 0 where /proc has none.
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib * 1024.0 / 1e6)
    };
    (field("VmRSS:"), field("RssFile:"))
}

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
    /// A lookout binary whose size to print beside the target.
    #[arg(long)]
    binary: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Everything a check reads is made before the model is loaded, so the
    // memory the process gains from here is the check's own.
    let scene = Scene::new(1280, 720, 10, MotionMode::Always).expect("scene");
    let picture = (0..scene.picture_count())
        .find(|&p| scene.is_motion_picture(p))
        .unwrap_or(0);
    let synthetic = scene.render_jpeg(picture).expect("render");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/person");
    let real = |name: &str| std::fs::read(dir.join(name)).expect("testdata/person");
    let walk = real("walk-68.jpg");

    let rss_before = rss_mb();
    let t = Instant::now();
    let one = PersonDetector::load().expect("load the model");
    let load_ms = t.elapsed().as_secs_f64() * 1e3;
    let rss_loaded = rss_mb();
    for jpeg in [&synthetic, &walk] {
        one.detect_jpeg(jpeg, None, DEFAULT_MIN_SCORE)
            .expect("check");
    }
    let rss_checked = rss_mb();
    let all = PersonDetector::load_with_threads(cores).expect("load the model");

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
    let mut slowest: f64 = 0.0;
    for (what, jpeg, region) in &rows {
        let (ms1, n) = best_ms(&one, jpeg, *region);
        let (msn, _) = best_ms(&all, jpeg, *region);
        slowest = slowest.max(ms1);
        println!("| {what} | {n} | {ms1:.1} | {msn:.1} |");
    }

    println!("\n### Issue 32, item 3: a lighter person check\n");
    println!("| figure | measured | target |");
    println!("|---|---:|---:|");
    println!(
        "| one check on one thread, slowest frame above (ms) | {slowest:.1} | {TARGET_MS:.0} |"
    );
    for (what, (rss, file), target) in [
        ("model loaded", rss_loaded, String::new()),
        (
            "loaded and two checks run",
            rss_checked,
            format!("{TARGET_RSS_MB:.0}"),
        ),
    ] {
        println!(
            "| memory added: {what} (MB; of it mapped from the binary) | {:.1} ({:.1}) | {target} |",
            rss - rss_before.0,
            file - rss_before.1
        );
    }
    if let Some(binary) = &cli.binary {
        match std::fs::metadata(binary) {
            Ok(m) => println!(
                "| the `{}` binary (MB) | {:.1} | {TARGET_BINARY_MB:.0} |",
                // Its name alone: the table may be pasted into the docs.
                binary.file_name().unwrap_or_default().to_string_lossy(),
                m.len() as f64 / 1e6
            ),
            Err(e) => eprintln!("person: {}: {e}", binary.display()),
        }
    }

    if let (Some(scenes), Some(truth)) = (&cli.scenes, &cli.truth) {
        println!();
        if let Err(e) = person_scenes::table(&one, truth, scenes) {
            eprintln!("person: {e}");
            std::process::exit(1);
        }
    }
}
