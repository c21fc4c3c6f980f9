//! The person check on the motion regression scenes: for each scene of
//! `scripts/scenes`, its motion episodes (lookout's detector at default
//! settings, as `footage` replays them) and what the check made of each,
//! with the checks run as the server runs them: at the episode's start,
//! then at most 2 a second (`person_checks_per_s`) until a person is found,
//! on the motion boxes' region (`motion::check::region`), one thread.
//!
//! The scenes with people (`people = true` in scenes.toml) should have every
//! episode marked; the others (a car, a cat, a tree, rain, light, a cloud,
//! the IR switch, shake) none: each marked one is a false person alarm.

use std::path::Path;
use std::time::Duration;

use lookout::motion::check::region;
use lookout::motion::detector::MotionParams;
use lookout::motion::replay::{replay, thread_cpu, Replay};
use lookout::person::{PersonDetector, DEFAULT_MIN_SCORE};
use lookout::source::mjpeg::MjpegSplitter;

use crate::truth::{self, Scene};

/// Frame rate of the scenes `scripts/scenes` builds.
const FPS: f64 = 10.0;
/// The default `person_checks_per_s`.
const CHECKS_PER_S: f64 = 2.0;

/// What the check made of one episode.
struct Checked {
    checks: usize,
    person: bool,
    best: f32,
    cpu: Duration,
}

/// Prints the table for every scene in `truth` found in `scenes`.
pub(crate) fn table(d: &PersonDetector, truth: &Path, scenes: &Path) -> Result<(), String> {
    let all = truth::load(truth)?;
    println!(
        "### Person check on the motion regression scenes (min score {DEFAULT_MIN_SCORE}, \
         {CHECKS_PER_S} checks/s until a person is found, one thread)\n"
    );
    println!("| scene | what | people | episodes | marked person | checks | best score | CPU per episode, median (max) |");
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    // (episodes, marked) in scenes with people and in scenes without.
    let (mut with, mut without) = ((0, 0), (0, 0));
    let mut cpu_all: Vec<f64> = Vec::new();
    for scene in &all {
        let path = scenes.join(format!("{}.mjpeg", scene.name));
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let done = check_scene(d, scene, &bytes)?;
        let marked = done.iter().filter(|c| c.person).count();
        let cpu: Vec<f64> = done.iter().map(|c| c.cpu.as_secs_f64() * 1e3).collect();
        cpu_all.extend(&cpu);
        let tally = if scene.people {
            &mut with
        } else {
            &mut without
        };
        tally.0 += done.len();
        tally.1 += marked;
        let best = done.iter().map(|c| c.best).fold(0.0f32, f32::max);
        let best = if best > 0.0 {
            format!("{best:.2}")
        } else {
            "< 0.3".into()
        };
        println!(
            "| {} | {} | {} | {} | {marked} | {} | {best} | {} |",
            scene.name,
            scene.what,
            if scene.people { "yes" } else { "no" },
            done.len(),
            done.iter().map(|c| c.checks).sum::<usize>(),
            match truth::median(&cpu) {
                Some(m) => format!(
                    "{m:.0} ms ({:.0} ms)",
                    cpu.iter().copied().fold(0.0, f64::max)
                ),
                None => "-".into(),
            }
        );
    }
    println!();
    println!(
        "Scenes with people: {} of {} episodes marked person. Scenes without: {} of {} \
         marked (false person alarms). CPU per episode, median over all: {}.",
        with.1,
        with.0,
        without.1,
        without.0,
        truth::median(&cpu_all).map_or("-".into(), |m| format!("{m:.0} ms"))
    );
    Ok(())
}

/// Replays `mjpeg` through the motion detector and checks its episodes.
fn check_scene(d: &PersonDetector, scene: &Scene, mjpeg: &[u8]) -> Result<Vec<Checked>, String> {
    let mut splitter = MjpegSplitter::new();
    splitter.push(mjpeg);
    let mut jpegs = Vec::new();
    while let Ok(Some(j)) = splitter.next_frame() {
        jpegs.push(j);
    }
    let first = jpegs.first().ok_or(format!("{}: no JPEG", scene.name))?;
    let size = lookout::jpeg::decode_rgb(first).map_err(|e| format!("{}: {e}", scene.name))?;
    let (w, h) = (
        u16::try_from(size.width).map_err(|e| e.to_string())?,
        u16::try_from(size.height).map_err(|e| e.to_string())?,
    );
    let r: Replay = replay(mjpeg, FPS, 1, &MotionParams::default());
    let mut out = Vec::new();
    for e in &r.episodes {
        let end = e.ended_s.unwrap_or(f64::MAX);
        let mut c = Checked {
            checks: 0,
            person: false,
            best: 0.0,
            cpu: Duration::ZERO,
        };
        let mut last: Option<f64> = None;
        for (t, a) in r
            .frames
            .iter()
            .filter(|(t, _)| (e.started_s..=end).contains(t))
        {
            if c.person {
                break;
            }
            if last.is_some_and(|l| t - l < 1.0 / CHECKS_PER_S - 1e-9) {
                continue;
            }
            last = Some(*t);
            let jpeg = jpegs
                .get((t * FPS).round() as usize)
                .ok_or(format!("{}: no frame at {t} s", scene.name))?;
            let before = thread_cpu().ok_or("this platform does not report thread CPU time")?;
            // Down to 0.3, as the server asks, for the episode's best score.
            let found = d
                .detect_jpeg(jpeg, region(&a.boxes, w, h), DEFAULT_MIN_SCORE.min(0.3))
                .map_err(|e| format!("{} at {t} s: {e}", scene.name))?;
            c.cpu += thread_cpu()
                .ok_or("this platform does not report thread CPU time")?
                .saturating_sub(before);
            c.checks += 1;
            if let Some(p) = found.first() {
                c.best = c.best.max(p.score);
                c.person = p.score >= DEFAULT_MIN_SCORE;
            }
        }
        out.push(c);
    }
    Ok(out)
}
