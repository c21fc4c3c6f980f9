//! The scenes' truth (`testdata/footage/scenes.toml`) and the tables that
//! compare a detector's episodes with it, the same for lookout and `motion`.

use std::path::Path;

use lookout::motion::replay::{judge, Replay, Verdict};
use serde::Deserialize;

/// Most seconds from the start of real motion to an episode's start that
/// still counts as found: the regression test's bound (tests/footage.rs).
pub(crate) const MAX_LATENCY_S: f64 = 2.0;

#[derive(Deserialize)]
struct Scenes {
    scene: Vec<Scene>,
}

/// One regression scene and where something really moves in it.
#[derive(Debug, Deserialize)]
pub(crate) struct Scene {
    /// File stem of the scene `scripts/scenes` builds.
    pub(crate) name: String,
    /// What the scene shows.
    pub(crate) what: String,
    /// Spans (seconds) of real motion.
    pub(crate) motion: Vec<(f64, f64)>,
    /// Whether the regression test asserts it (false: a known limit).
    #[serde(default = "yes")]
    pub(crate) strict: bool,
    /// Whether what moves is people (the person check must mark its
    /// episodes; in the other scenes a marked episode is a false alarm).
    /// (Read by the person bench; `footage` shares this file.)
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) people: bool,
}

fn yes() -> bool {
    true
}

/// Reads the truth file.
pub(crate) fn load(path: &Path) -> Result<Vec<Scene>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let scenes: Scenes = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(scenes.scene)
}

/// The median of `xs` (sorted or not).
pub(crate) fn median(xs: &[f64]) -> Option<f64> {
    quantile(xs, 0.5)
}

/// The `q` quantile of `xs`, by linear interpolation between ranks.
fn quantile(xs: &[f64], q: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

/// Lookout's scores in one scene.
pub(crate) struct Scores {
    /// Highest score inside the spans of real motion.
    in_motion: Option<f32>,
    /// Highest score away from them (0.5 s before to 1 s after excluded).
    quiet: Option<f32>,
    /// `area` (% of the picture) at the peak frame of each span, averaged;
    /// at the quiet peak for a scene with no motion.
    area: Option<f32>,
}

/// The scores of `replay` against `scene`'s truth.
pub(crate) fn scores(scene: &Scene, replay: &Replay) -> Scores {
    let in_span = |t: f64| scene.motion.iter().any(|&(a, b)| (a..=b).contains(&t));
    let near_span = |t: f64| {
        scene
            .motion
            .iter()
            .any(|&(a, b)| (a - 0.5..=b + 1.0).contains(&t))
    };
    let peak = |keep: &dyn Fn(f64) -> bool| {
        replay
            .frames
            .iter()
            .filter(|(t, _)| keep(*t))
            .max_by(|x, y| x.1.change.total_cmp(&y.1.change))
            .map(|(_, a)| a)
    };
    let quiet = peak(&|t| !near_span(t));
    let areas: Vec<f32> = scene
        .motion
        .iter()
        .filter_map(|&(a, b)| peak(&|t| (a..=b).contains(&t)).map(|x| x.area))
        .collect();
    let area = if areas.is_empty() {
        quiet.map(|q| q.area)
    } else {
        Some(areas.iter().sum::<f32>() / areas.len() as f32)
    };
    Scores {
        in_motion: peak(&in_span).map(|a| a.change),
        quiet: quiet.map(|a| a.change),
        area,
    }
}

/// One scene's line in a detector's table.
pub(crate) struct Row<'a> {
    scene: &'a Scene,
    /// The episode start times judged.
    starts: Vec<f64>,
    /// Each episode as `start-end` in seconds, for the reader.
    episodes: String,
    verdict: Verdict,
    scores: Option<Scores>,
}

impl<'a> Row<'a> {
    /// A row; `scores` only for lookout (`motion` reports none per frame).
    pub(crate) fn new(
        scene: &'a Scene,
        episodes: &[(f64, Option<f64>)],
        max_latency: f64,
        scores: Option<Scores>,
    ) -> Self {
        let starts: Vec<f64> = episodes.iter().map(|e| e.0).collect();
        let listed: Vec<String> = episodes
            .iter()
            .map(|(a, b)| match b {
                Some(b) => format!("{a:.1}-{b:.1}"),
                None => format!("{a:.1}-"),
            })
            .collect();
        Self {
            scene,
            episodes: if listed.is_empty() {
                "none".into()
            } else {
                listed.join(", ")
            },
            verdict: judge(&starts, &scene.motion, max_latency),
            starts,
            scores,
        }
    }
}

fn secs(x: Option<f64>) -> String {
    x.map_or("-".into(), |s| format!("{s:.1} s"))
}

fn num(x: Option<f32>, digits: usize) -> String {
    x.map_or("-".into(), |s| format!("{s:.digits$}"))
}

/// Prints one detector's table: the same first columns for every detector,
/// lookout's scores after them.
pub(crate) fn print_table(rows: &[Row<'_>]) {
    let scored = rows.iter().any(|r| r.scores.is_some());
    print!("| scene | what | found | false alarms | start latency, median / max | episodes, s |");
    if scored {
        print!(" peak in motion | peak in quiet | area at peak |");
    }
    println!();
    print!("|---|---|---:|---|---:|---|");
    if scored {
        print!("---:|---:|---:|");
    }
    println!();
    for r in rows {
        let v = &r.verdict;
        let alarms = if v.false_alarms.is_empty() {
            "0".to_string()
        } else {
            let at: Vec<String> = v.false_alarms.iter().map(|t| format!("{t:.1}")).collect();
            format!("{} (at {} s)", v.false_alarms.len(), at.join(", "))
        };
        let max = v.latencies.iter().copied().reduce(f64::max);
        let strict = if r.scene.strict { "" } else { " (not strict)" };
        // A missed span may still have had an episode, just too late.
        let late: Vec<String> = v
            .missed
            .iter()
            .filter_map(|&(a, b)| r.starts.iter().find(|&&s| s >= a && s <= b).map(|s| s - a))
            .map(|l| format!("{l:.1} s late"))
            .collect();
        let late = if late.is_empty() {
            String::new()
        } else {
            format!(" ({})", late.join(", "))
        };
        print!(
            "| {}{strict} | {} | {}/{}{late} | {alarms} | {} / {} | {} |",
            r.scene.name,
            r.scene.what,
            v.found,
            v.expected,
            secs(median(&v.latencies)),
            secs(max),
            r.episodes,
        );
        if let Some(s) = &r.scores {
            print!(
                " {} | {} | {} % |",
                num(s.in_motion, 1),
                num(s.quiet, 1),
                num(s.area, 2)
            );
        }
        println!();
    }
}

/// The totals under a detector's table.
pub(crate) struct Summary {
    found: usize,
    expected: usize,
    false_alarms: usize,
    latencies: Vec<f64>,
}

impl Summary {
    /// Episodes over the strict scenes, false alarms over every scene.
    pub(crate) fn of(rows: &[Row<'_>]) -> Self {
        let strict = || rows.iter().filter(|r| r.scene.strict).map(|r| &r.verdict);
        Self {
            found: strict().map(|v| v.found).sum(),
            expected: strict().map(|v| v.expected).sum(),
            false_alarms: rows.iter().map(|r| r.verdict.false_alarms.len()).sum(),
            latencies: strict().flat_map(|v| v.latencies.iter().copied()).collect(),
        }
    }

    /// `**name**: found F/E episodes (strict scenes), N false alarms (all scenes), median latency L`.
    pub(crate) fn line(&self, name: &str) -> String {
        format!(
            "**{name}**: {}/{} episodes found (strict scenes), {} false alarm(s) (all scenes), median start latency {}",
            self.found,
            self.expected,
            self.false_alarms,
            secs(median(&self.latencies))
        )
    }
}

/// Which frames of a scene a line of the score table covers.
enum Part {
    /// The spans of real motion.
    Motion,
    /// The whole scene.
    All,
    /// From, to (seconds).
    Between(f64, f64),
}

/// The score table's lines: what a camera meets, the scene that shows it
/// and the part of that scene.
const SCORED: &[(&str, &str, Part)] = &[
    ("people, 20-40 m", "walkers", Part::Motion),
    ("person near", "near", Part::Motion),
    ("person far", "far", Part::Motion),
    ("car", "car", Part::Motion),
    ("cat-sized patch", "cat", Part::Motion),
    (
        "foliage: the tree in gusts",
        "foliage",
        Part::Between(0.0, 22.4),
    ),
    (
        "foliage: a hand before the lens",
        "foliage",
        Part::Between(22.5, 29.6),
    ),
    ("rain", "rain", Part::All),
    ("lighting steps", "lighting", Part::All),
    ("cloud shadow", "cloud", Part::All),
    ("IR switch", "ir_switch", Part::All),
    ("camera shake", "shake", Part::All),
];

/// Prints the peak and 90th percentile of lookout's per-frame score for each
/// kind of thing a camera meets (the default threshold is 12).
pub(crate) fn print_score_table(done: &[(&Scene, &Replay)]) {
    println!("### lookout: motion score by what is in the picture (threshold 12)\n");
    println!("| what | scene, seconds | peak score | 90th percentile |");
    println!("|---|---|---:|---:|");
    for (label, name, part) in SCORED {
        let Some((scene, replay)) = done.iter().find(|(s, _)| s.name == *name) else {
            continue;
        };
        let keep = |t: f64| match part {
            Part::Motion => scene.motion.iter().any(|&(a, b)| (a..=b).contains(&t)),
            Part::All => true,
            Part::Between(a, b) => (*a..=*b).contains(&t),
        };
        let xs: Vec<f64> = replay
            .frames
            .iter()
            .filter(|(t, _)| keep(*t))
            .map(|(_, a)| f64::from(a.change))
            .collect();
        let span = match part {
            Part::Motion => {
                let s: Vec<String> = scene
                    .motion
                    .iter()
                    .map(|(a, b)| format!("{a}-{b}"))
                    .collect();
                s.join(", ")
            }
            Part::All => "all".into(),
            Part::Between(a, b) => format!("{a}-{b}"),
        };
        let peak = xs.iter().copied().reduce(f64::max);
        println!(
            "| {label} | {name}, {span} | {} | {} |",
            peak.map_or("-".into(), |p| format!("{p:.1}")),
            quantile(&xs, 0.9).map_or("-".into(), |p| format!("{p:.1}"))
        );
    }
}
