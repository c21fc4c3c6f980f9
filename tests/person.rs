//! The person detector on real frames: recall on hand-labelled people
//! (testdata/person), no person on the empty yard or the synthetic scene's
//! ball, regions mapped back to the whole frame, and what a build without
//! the `person` feature answers.

// Without the model only the last test runs; the helpers stay compiled.
#![cfg_attr(not(feature = "person"), allow(dead_code))]

use std::path::Path;
#[cfg(feature = "person")]
use std::sync::OnceLock;

use lookout::person::{self, Person, PersonDetector, PersonError};

/// Matched when the boxes overlap this much, or when the detection's centre
/// is inside the label (hand labels are rough, and a person half hidden
/// behind another gets a box of the visible half).
const MATCH_IOU: f32 = 0.3;

fn testdata(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/person")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[cfg(feature = "person")]
fn detector() -> &'static PersonDetector {
    static DETECTOR: OnceLock<PersonDetector> = OnceLock::new();
    DETECTOR.get_or_init(|| PersonDetector::load().expect("the embedded model loads"))
}

#[derive(serde::Deserialize)]
struct Labels {
    frame: Vec<LabelledFrame>,
    empty: Vec<String>,
}

#[derive(serde::Deserialize)]
struct LabelledFrame {
    file: String,
    /// x, y, w, h in pixels of the 768x576 frame.
    people: Vec<[f32; 4]>,
}

fn labels() -> Labels {
    let text = String::from_utf8(testdata("labels.toml")).expect("utf-8");
    toml::from_str(&text).expect("labels.toml parses")
}

const FRAME_W: f32 = 768.0;
const FRAME_H: f32 = 576.0;

fn iou(a: [f32; 4], b: [f32; 4]) -> f32 {
    let w = ((a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0])).max(0.0);
    let h = ((a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

fn matches(label: [f32; 4], found: [f32; 4]) -> bool {
    let (cx, cy) = (found[0] + found[2] / 2.0, found[1] + found[3] / 2.0);
    let inside =
        cx >= label[0] && cx <= label[0] + label[2] && cy >= label[1] && cy <= label[1] + label[3];
    inside || iou(label, found) >= MATCH_IOU
}

/// A detection in frame pixels.
fn pixels(p: &Person) -> [f32; 4] {
    [
        p.bbox[0] * FRAME_W,
        p.bbox[1] * FRAME_H,
        p.bbox[2] * FRAME_W,
        p.bbox[3] * FRAME_H,
    ]
}

/// Labels matched one to one, each to the best-scored free detection that
/// matches it. Returns (matched labels, unmatched detections).
fn score_frame(people: &[[f32; 4]], found: &[Person]) -> (usize, Vec<Person>) {
    let mut used = vec![false; found.len()];
    let mut hits = 0;
    for &label in people {
        // `found` is sorted best first.
        if let Some(i) = (0..found.len()).find(|&i| !used[i] && matches(label, pixels(&found[i]))) {
            used[i] = true;
            hits += 1;
        }
    }
    let extra = found
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(p, _)| *p)
        .collect();
    (hits, extra)
}

#[cfg(feature = "person")]
#[test]
fn finds_at_least_90_percent_of_the_labelled_people() {
    let labels = labels();
    let (mut total, mut hits) = (0, 0);
    for frame in &labels.frame {
        let found = detector()
            .detect_jpeg(&testdata(&frame.file), None, person::DEFAULT_MIN_SCORE)
            .expect("a real frame is checked");
        // Best first, all above the minimum, all inside the frame.
        assert!(
            found.windows(2).all(|w| w[0].score >= w[1].score),
            "{found:?}"
        );
        for p in &found {
            assert!(
                p.score >= person::DEFAULT_MIN_SCORE && p.score <= 1.0,
                "{p:?}"
            );
            let [x, y, w, h] = p.bbox;
            assert!(
                x >= 0.0 && y >= 0.0 && w > 0.0 && h > 0.0 && x + w <= 1.0001 && y + h <= 1.0001,
                "{p:?}"
            );
        }
        let (n, extra) = score_frame(&frame.people, &found);
        eprintln!(
            "{}: {n} of {} labelled people found, {} other detections {:?}",
            frame.file,
            frame.people.len(),
            extra.len(),
            extra
                .iter()
                .map(|p| (p.score, pixels(p).map(|v| v.round())))
                .collect::<Vec<_>>()
        );
        total += frame.people.len();
        hits += n;
    }
    eprintln!("recall: {hits} of {total}");
    assert!(
        hits * 10 >= total * 9,
        "recall {hits} of {total} is under 90 %"
    );
}

/// A camera's night mode (IR) sends grayscale JPEGs, one component: the
/// check must take them, and still find the people in them.
#[cfg(feature = "person")]
#[test]
fn grayscale_frames_are_checked_too() {
    let labels = labels();
    let (mut total, mut hits) = (0, 0);
    for frame in &labels.frame {
        let rgb = lookout::jpeg::decode_rgb(&testdata(&frame.file)).expect("decodes");
        let luma: Vec<u8> = rgb
            .pixels
            .chunks(3)
            .map(|p| {
                let y = 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
                y.round() as u8
            })
            .collect();
        let mut grey = Vec::new();
        jpeg_encoder::Encoder::new(&mut grey, 85)
            .encode(
                &luma,
                rgb.width as u16,
                rgb.height as u16,
                jpeg_encoder::ColorType::Luma,
            )
            .expect("encodes");
        let found = detector()
            .detect_jpeg(&grey, None, person::DEFAULT_MIN_SCORE)
            .expect("a grayscale frame is checked");
        let (n, _) = score_frame(&frame.people, &found);
        eprintln!("{} in grey: {n} of {}", frame.file, frame.people.len());
        total += frame.people.len();
        hits += n;
    }
    eprintln!("recall in grey: {hits} of {total}");
    // Colour helps the model a little; most people must still be found.
    assert!(hits * 4 >= total * 3, "recall in grey {hits} of {total}");
}

#[cfg(feature = "person")]
#[test]
fn no_person_on_the_empty_yard() {
    for file in labels().empty {
        let found = detector()
            .detect_jpeg(&testdata(&file), None, person::DEFAULT_MIN_SCORE)
            .expect("a real frame is checked");
        assert!(found.is_empty(), "{file}: {found:?}");
    }
}

#[cfg(feature = "person")]
#[test]
fn no_person_on_the_synthetic_scene() {
    use lookout::source::scene::{MotionMode, Scene};
    let scene = Scene::new(1280, 720, 10, MotionMode::Always).expect("scene");
    // The ball at a handful of places along its path, checked whole and
    // in a region around the middle of the picture as a motion box would be.
    let pictures: Vec<usize> = (0..scene.picture_count())
        .filter(|&p| scene.is_motion_picture(p))
        .collect();
    assert!(!pictures.is_empty());
    let step = (pictures.len() / 5).max(1);
    for &picture in pictures.iter().step_by(step) {
        let jpeg = scene.render_jpeg(picture).expect("render");
        for region in [None, Some([0.2, 0.2, 0.6, 0.6])] {
            let found = detector()
                .detect_jpeg(&jpeg, region, person::DEFAULT_MIN_SCORE)
                .expect("check");
            assert!(
                found.is_empty(),
                "picture {picture}, region {region:?}: {found:?}"
            );
        }
    }
}

#[cfg(feature = "person")]
#[test]
fn a_region_is_checked_and_mapped_back_to_the_whole_frame() {
    let labels = labels();
    let frame = labels
        .frame
        .iter()
        .find(|f| f.file == "walk-60.jpg")
        .expect("walk-60");
    let jpeg = testdata(&frame.file);
    // The man by the tripod, with a margin of about his size around him.
    let [x, y, w, h] = frame.people[3];
    let region = [
        (x - w) / FRAME_W,
        (y - h / 2.0) / FRAME_H,
        3.0 * w / FRAME_W,
        2.0 * h / FRAME_H,
    ];
    let found = detector()
        .detect_jpeg(&jpeg, Some(region), person::DEFAULT_MIN_SCORE)
        .expect("check");
    assert!(
        found.iter().any(|p| iou(pixels(p), [x, y, w, h]) >= 0.5),
        "{found:?} has no box on {:?}",
        [x, y, w, h]
    );
    // Every box lies inside the region.
    for p in &found {
        let [bx, by, bw, bh] = p.bbox;
        assert!(bx >= region[0] - 1e-4 && by >= region[1] - 1e-4, "{p:?}");
        assert!(
            bx + bw <= region[0] + region[2] + 1e-4 && by + bh <= region[1] + region[3] + 1e-4,
            "{p:?}"
        );
    }
    // A region with no pixel is refused.
    assert!(matches!(
        detector().detect_jpeg(&jpeg, Some([0.5, 0.5, 0.0, 0.1]), 0.5),
        Err(PersonError::Region(_))
    ));
}

#[cfg(feature = "person")]
#[test]
fn bad_input_is_an_error_not_a_panic() {
    let d = detector();
    assert!(matches!(
        d.detect_jpeg(b"", None, 0.5),
        Err(PersonError::Decode(_))
    ));
    let mut jpeg = testdata("walk-04.jpg");
    jpeg.truncate(jpeg.len() / 3);
    // A truncated JPEG either decodes (zune fills the rest) or is refused.
    if let Err(e) = d.detect_jpeg(&jpeg, None, 0.5) {
        assert!(matches!(e, PersonError::Decode(_)), "{e}");
    }
}

#[cfg(feature = "person")]
#[test]
fn clones_share_the_model_across_threads() {
    fn send_sync<T: Send + Sync + Clone + 'static>() {}
    send_sync::<PersonDetector>();
    let jpeg = testdata("walk-68.jpg");
    let single = detector().detect_jpeg(&jpeg, None, 0.5).expect("check");
    let pooled = PersonDetector::load_with_threads(2).expect("load");
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (d, jpeg) = (pooled.clone(), jpeg.clone());
            std::thread::spawn(move || d.detect_jpeg(&jpeg, None, 0.5).expect("check"))
        })
        .collect();
    for h in handles {
        let found = h.join().expect("thread");
        // Same people, same order; scores equal up to summation order.
        assert_eq!(found.len(), single.len());
        for (a, b) in found.iter().zip(&single) {
            assert!((a.score - b.score).abs() < 1e-3, "{a:?} {b:?}");
        }
    }
}

#[cfg(not(feature = "person"))]
#[test]
fn without_the_feature_the_check_is_unavailable() {
    const { assert!(!person::AVAILABLE) };
    assert!(matches!(
        PersonDetector::load(),
        Err(PersonError::Unavailable)
    ));
    // The labels still parse, so the test data stays checked.
    assert!(!labels().frame.is_empty());
}
