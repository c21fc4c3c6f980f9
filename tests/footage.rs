//! Motion detection on real footage, at the default settings: the
//! regression scenes of `scripts/scenes` (real walkers cut out of OpenCV's
//! `vtest.avi` and laid on the empty yard, a real swaying tree, and the
//! false-alarm cases cameras meet) replayed through the detector frame by
//! frame. Each scene's truth is in `testdata/footage/scenes.toml`.
//!
//! Every span of real motion must start an episode within 2 s, and nothing
//! else may: not noise, light steps, a cloud shadow, the IR switch, rain or
//! camera shake.

use std::path::Path;
use std::process::Command;

use lookout::motion::detector::MotionParams;
use lookout::motion::replay::{judge, replay};
use serde::Deserialize;

/// Most seconds from the start of real motion to the episode's start.
const MAX_LATENCY_S: f64 = 2.0;

#[derive(Deserialize)]
struct Scenes {
    scene: Vec<Scene>,
}

#[derive(Deserialize)]
struct Scene {
    name: String,
    what: String,
    motion: Vec<(f64, f64)>,
    #[serde(default = "yes")]
    strict: bool,
}

fn yes() -> bool {
    true
}

#[test]
fn real_footage_at_default_settings() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenes: Scenes = toml::from_str(
        &std::fs::read_to_string(root.join("testdata/footage/scenes.toml")).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(root.join("scripts/scenes"))
        .arg(dir.path())
        .status()
        .expect("run scripts/scenes (needs ffmpeg)");
    assert!(status.success(), "scripts/scenes failed");

    // Two scenes at a time: the replay is CPU work.
    let results: Vec<(String, Result<(), String>)> = std::thread::scope(|s| {
        let chunks: Vec<&[Scene]> = scenes
            .scene
            .chunks(scenes.scene.len().div_ceil(2))
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let dir = dir.path();
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|sc| (sc.name.clone(), check(dir, sc)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|(name, r)| r.err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Replays one scene and checks it against its truth; prints what it saw.
fn check(dir: &Path, scene: &Scene) -> Result<(), String> {
    let bytes =
        std::fs::read(dir.join(format!("{}.mjpeg", scene.name))).map_err(|e| e.to_string())?;
    let r = replay(&bytes, 10.0, 1, &MotionParams::default());
    if r.frames.is_empty() || r.undecodable > 0 {
        return Err(format!(
            "{} frames, {} undecodable",
            r.frames.len(),
            r.undecodable
        ));
    }
    let starts: Vec<f64> = r.episodes.iter().map(|e| e.started_s).collect();
    let v = judge(&starts, &scene.motion, MAX_LATENCY_S);
    let in_motion = scene
        .motion
        .iter()
        .map(|&(a, b)| r.peak_between(a, b))
        .fold(0.0, f32::max);
    let quiet_peak = r
        .frames
        .iter()
        .filter(|(t, _)| {
            !scene
                .motion
                .iter()
                .any(|&(a, b)| (a - 0.5..=b + 1.0).contains(t))
        })
        .map(|(_, a)| a.change)
        .fold(0.0, f32::max);
    eprintln!(
        "{:12} {:55} found {}/{} latency {:?} false alarms {:?} peak in motion {in_motion} peak in quiet {quiet_peak}",
        scene.name, scene.what, v.found, v.expected, v.latencies, v.false_alarms
    );
    if !scene.strict {
        return Ok(());
    }
    if v.found != v.expected || !v.false_alarms.is_empty() {
        return Err(format!(
            "found {}/{}, missed {:?}, false alarms at {:?} s",
            v.found, v.expected, v.missed, v.false_alarms
        ));
    }
    Ok(())
}

/// A rectangle as a polygon, in normalized coordinates.
fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<[f64; 2]> {
    vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
}

/// The walkers scene with masks and zones: a mask over their path silences
/// them, a required zone elsewhere ignores them, a zone over the path names
/// them in the analysis (what the `motion` event carries).
#[test]
fn masks_and_zones_on_real_walkers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(root.join("scripts/scenes"))
        .args([dir.path().as_os_str(), "walkers".as_ref()])
        .status()
        .expect("run scripts/scenes (needs ffmpeg)");
    assert!(status.success(), "scripts/scenes failed");
    let bytes = std::fs::read(dir.path().join("walkers.mjpeg")).unwrap();
    let spans = [(10.0, 16.0), (28.0, 34.0), (46.0, 52.0)];
    let starts = |p: &MotionParams| -> Vec<f64> {
        replay(&bytes, 10.0, 1, p)
            .episodes
            .iter()
            .map(|e| e.started_s)
            .collect()
    };
    // The road and every path the walkers take (the farthest runs along
    // the top, at 10 % of the height).
    let path = lookout::zones::Zone {
        name: "path".into(),
        points: rect(0.0, 0.04, 1.0, 1.0),
    };
    // The top of the building's wall, where nobody walks.
    let wall = lookout::zones::Zone {
        name: "wall".into(),
        points: rect(0.45, 0.0, 0.75, 0.03),
    };

    let masked = MotionParams {
        mask: vec![path.points.clone()],
        ..MotionParams::default()
    };
    assert_eq!(starts(&masked), Vec::<f64>::new(), "a mask over the path");

    let elsewhere = MotionParams {
        zones: vec![path.clone(), wall.clone()],
        required_zones: vec!["wall".into()],
        ..MotionParams::default()
    };
    assert_eq!(
        starts(&elsewhere),
        Vec::<f64>::new(),
        "a required zone where nobody walks"
    );

    let named = MotionParams {
        zones: vec![path.clone(), wall.clone()],
        ..MotionParams::default()
    };
    let r = replay(&bytes, 10.0, 1, &named);
    let starts: Vec<f64> = r.episodes.iter().map(|e| e.started_s).collect();
    let v = judge(&starts, &spans, MAX_LATENCY_S);
    assert_eq!((v.found, v.false_alarms.len()), (3, 0), "{v:?}");
    let started: Vec<_> = r
        .frames
        .iter()
        .filter(|(_, a)| {
            matches!(
                a.transition,
                Some(lookout::motion::Transition::Started { .. })
            )
        })
        .map(|(_, a)| a.zones.clone())
        .collect();
    assert_eq!(started, vec![vec!["path".to_string()]; 3]);
    // Requiring the path changes nothing for them.
    let required = MotionParams {
        required_zones: vec!["path".into()],
        ..named
    };
    let again: Vec<f64> = replay(&bytes, 10.0, 1, &required)
        .episodes
        .iter()
        .map(|e| e.started_s)
        .collect();
    assert_eq!(again, starts);
}
