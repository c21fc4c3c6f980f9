//! Motion masks and zones: polygons drawn over the picture, checked once when
//! a setting changes and rasterized for the motion detector's working image.
//!
//! Coordinates are normalized (0..1, x right, y down) so that a polygon drawn
//! on the dashboard keeps covering the same part of the scene when the camera's
//! resolution changes. A *mask* polygon hides changes (a tree, a road, a TV);
//! a *zone* names a part of the picture, so an event can say where the motion
//! was, and *required zones* make only motion inside them count.
//!
//! The settings (`settings.rs`) parse and validate the JSON here, so every way
//! in (`POST /config`, the WebSocket `set`, the TOML file, the store) gets the
//! same rules and the same messages. The detector builds a [`ZoneMap`] for its
//! working-image size, which turns every per-pixel question into an index.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One polygon: its corners in order, normalized `[x, y]`.
pub type Polygon = Vec<[f64; 2]>;

/// Most mask polygons: enough to blank out every distracting thing in a
/// scene, and small enough that a settings body stays a few KiB.
pub const MAX_MASKS: usize = 16;
/// Most zones. Each is a bit in [`ZoneMap::zones_at`].
pub const MAX_ZONES: usize = 16;
/// Most corners of one polygon: a hand-drawn outline rarely needs more, and it
/// bounds the self-intersection check (pairs of edges) and the body size.
pub const MAX_POINTS: usize = 32;
/// Longest zone name (it is shown in events and on the dashboard).
const MAX_NAME: usize = 32;
/// Stored coordinates keep this many decimals: 1/10000 of the picture is
/// finer than any camera's pixel, and short numbers keep the JSON small.
const SCALE: f64 = 10_000.0;
/// Below this a cross product is zero. Rounded coordinates make cross products
/// multiples of 1e-8, so this only absorbs the floating-point error.
const EPS: f64 = 1e-10;

/// A named zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// Its name: 1-32 letters, digits, `-` or `_` (events carry it).
    pub name: String,
    /// Its outline.
    pub points: Polygon,
}

/// Which polygon a message is about, as the user knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// The n-th mask polygon (from 1).
    Mask(usize),
    /// The zone of this name.
    Zone(String),
}

impl std::fmt::Display for Which {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Which::Mask(n) => write!(f, "mask polygon {n}"),
            Which::Zone(name) => write!(f, "zone \"{name}\""),
        }
    }
}

/// Why a mask or zone setting was refused. The message is shown to clients as
/// is; polygons and points are numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    /// `mask` is not a list of lists.
    #[error("mask must be a list of polygons")]
    MaskShape,
    /// `zones` is not a list of objects with exactly a name and points.
    #[error("zones must be a list of {{\"name\", \"points\"}}")]
    ZonesShape,
    /// `required_zones` is not a list of strings.
    #[error("required_zones must be a list of zone names")]
    RequiredShape,
    /// More than [`MAX_MASKS`] mask polygons.
    #[error("too many mask polygons (most {MAX_MASKS})")]
    TooManyMasks,
    /// More than [`MAX_ZONES`] zones.
    #[error("too many zones (most {MAX_ZONES})")]
    TooManyZones,
    /// More than [`MAX_ZONES`] required zones: more names than there can be
    /// zones, refused before any of them is read.
    #[error("too many required zones (most {MAX_ZONES})")]
    TooManyRequired,
    /// A polygon with fewer than 3 corners.
    #[error("{0} has fewer than 3 points")]
    TooFewPoints(Which),
    /// A polygon with more than [`MAX_POINTS`] corners.
    #[error("{0} has too many points (most {MAX_POINTS})")]
    TooManyPoints(Which),
    /// A point that is not two numbers.
    #[error("{0}: point {1} must be [x, y] numbers")]
    NotNumbers(Which, usize),
    /// A coordinate outside the picture.
    #[error("{0}: point {1} is outside 0..1")]
    Outside(Which, usize),
    /// The same corner twice in a row (after rounding), as a double click
    /// may leave: the edge between them has no direction.
    #[error("{0}: point {1} is the same as point {2}")]
    Repeated(Which, usize, usize),
    /// Two edges cross, touch or overlap.
    #[error("{0} crosses itself")]
    CrossesItself(Which),
    /// All corners on one line.
    #[error("{0} has no area")]
    NoArea(Which),
    /// A zone name that is empty, too long or has other characters.
    #[error("zone name must be 1-32 letters, digits, '-' or '_'")]
    BadName,
    /// Two zones of one name.
    #[error("duplicate zone name: {0}")]
    DuplicateName(String),
    /// A required zone that no zone is called.
    #[error("required zone \"{0}\" is not a zone")]
    NotAZone(String),
}

/// Reads and checks the `mask` setting: a list of polygons, each a list of
/// `[x, y]` points.
pub(crate) fn parse_mask(value: &Value) -> Result<Vec<Polygon>, ZoneError> {
    let list = value.as_array().ok_or(ZoneError::MaskShape)?;
    if list.len() > MAX_MASKS {
        return Err(ZoneError::TooManyMasks);
    }
    list.iter()
        .enumerate()
        .map(|(i, raw)| {
            let points = raw
                .as_array()
                .filter(|p| holds_points(p))
                .ok_or(ZoneError::MaskShape)?;
            polygon(&Which::Mask(i + 1), points)
        })
        .collect()
}

/// Reads and checks the `zones` setting: a list of `{"name", "points"}`
/// with distinct names.
pub(crate) fn parse_zones(value: &Value) -> Result<Vec<Zone>, ZoneError> {
    let list = value.as_array().ok_or(ZoneError::ZonesShape)?;
    if list.len() > MAX_ZONES {
        return Err(ZoneError::TooManyZones);
    }
    let mut zones: Vec<Zone> = Vec::with_capacity(list.len());
    for raw in list {
        let obj = raw.as_object().ok_or(ZoneError::ZonesShape)?;
        if obj.len() != 2 {
            return Err(ZoneError::ZonesShape);
        }
        let (Some(name), Some(points)) = (obj.get("name"), obj.get("points")) else {
            return Err(ZoneError::ZonesShape);
        };
        let name = name.as_str().ok_or(ZoneError::BadName)?;
        check_name(name)?;
        if zones.iter().any(|z| z.name == name) {
            return Err(ZoneError::DuplicateName(name.to_string()));
        }
        let points = points
            .as_array()
            .filter(|p| holds_points(p))
            .ok_or(ZoneError::ZonesShape)?;
        let points = polygon(&Which::Zone(name.to_string()), points)?;
        zones.push(Zone {
            name: name.to_string(),
            points,
        });
    }
    Ok(zones)
}

/// Reads the `required_zones` setting: a list of at most [`MAX_ZONES`]
/// names, kept in order, a name given twice kept once. Whether each is a
/// zone is [`check_required`]'s question, asked once the whole patch is
/// applied.
///
/// The length is checked first: a body of thousands of names, each compared
/// with the others, cost most of a second of CPU per request.
pub(crate) fn parse_required(value: &Value) -> Result<Vec<String>, ZoneError> {
    let list = value.as_array().ok_or(ZoneError::RequiredShape)?;
    if list.len() > MAX_ZONES {
        return Err(ZoneError::TooManyRequired);
    }
    let mut seen = HashSet::with_capacity(list.len());
    let mut names: Vec<String> = Vec::with_capacity(list.len());
    for raw in list {
        let name = raw.as_str().ok_or(ZoneError::RequiredShape)?;
        if seen.insert(name) {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// Every required zone is a zone. Checked on the settings as a whole, since
/// one patch may set both, and a patch removing a zone still required is
/// refused rather than leaving a requirement nothing can meet.
pub(crate) fn check_required(zones: &[Zone], required: &[String]) -> Result<(), ZoneError> {
    let names: HashSet<&str> = zones.iter().map(|z| z.name.as_str()).collect();
    match required.iter().find(|r| !names.contains(r.as_str())) {
        Some(missing) => Err(ZoneError::NotAZone(missing.clone())),
        None => Ok(()),
    }
}

/// Whether a list can be a polygon's points: empty, or holding some list. A
/// list of numbers is one point given where a polygon was expected (one
/// nesting level short, `"mask": [[x, y], ...]`), a shape error rather than
/// "fewer than 3 points".
fn holds_points(list: &[Value]) -> bool {
    list.is_empty() || list.iter().any(Value::is_array)
}

fn check_name(name: &str) -> Result<(), ZoneError> {
    let ok = (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ZoneError::BadName)
    }
}

/// One polygon's points, checked and rounded: 3 to [`MAX_POINTS`] numbers
/// in 0..1, no corner twice in a row, no edges crossing, some area.
fn polygon(which: &Which, raw: &[Value]) -> Result<Polygon, ZoneError> {
    if raw.len() < 3 {
        return Err(ZoneError::TooFewPoints(which.clone()));
    }
    if raw.len() > MAX_POINTS {
        return Err(ZoneError::TooManyPoints(which.clone()));
    }
    let mut points = Vec::with_capacity(raw.len());
    for (i, p) in raw.iter().enumerate() {
        let xy = p
            .as_array()
            .filter(|a| a.len() == 2)
            .and_then(|a| Some([a[0].as_f64()?, a[1].as_f64()?]))
            .filter(|[x, y]| x.is_finite() && y.is_finite())
            .ok_or_else(|| ZoneError::NotNumbers(which.clone(), i + 1))?;
        if !xy.iter().all(|v| (0.0..=1.0).contains(v)) {
            return Err(ZoneError::Outside(which.clone(), i + 1));
        }
        // `+ 0.0` turns -0.0 into 0.0, which would otherwise be stored as "-0.0".
        points.push(xy.map(|v| (v * SCALE).round() / SCALE + 0.0));
    }
    let n = points.len();
    for i in 0..n {
        let next = (i + 1) % n;
        if points[i] == points[next] {
            return Err(ZoneError::Repeated(which.clone(), next + 1, i + 1));
        }
    }
    // Non-adjacent edges must not meet at all. (Adjacent edges folding back
    // on each other always make a third edge touch a non-adjacent one, or,
    // in a triangle, leave no area.)
    let edge = |i: usize| (points[i], points[(i + 1) % n]);
    for i in 0..n {
        for j in i + 2..n {
            if i == 0 && j == n - 1 {
                continue;
            }
            let (a, b) = edge(i);
            let (c, d) = edge(j);
            if segments_meet(a, b, c, d) {
                return Err(ZoneError::CrossesItself(which.clone()));
            }
        }
    }
    if doubled_area(&points).abs() < EPS {
        return Err(ZoneError::NoArea(which.clone()));
    }
    Ok(points)
}

/// Twice the signed area (shoelace formula).
fn doubled_area(points: &[[f64; 2]]) -> f64 {
    let n = points.len();
    (0..n)
        .map(|i| {
            let [x0, y0] = points[i];
            let [x1, y1] = points[(i + 1) % n];
            x0 * y1 - x1 * y0
        })
        .sum()
}

/// Which side of the line a->b the point c is on: 1 left, -1 right, 0 on it.
fn side(a: [f64; 2], b: [f64; 2], c: [f64; 2]) -> i8 {
    let cross = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
    if cross > EPS {
        1
    } else if cross < -EPS {
        -1
    } else {
        0
    }
}

/// Whether c, known to be on the line a-b, lies within the segment a-b.
fn within(a: [f64; 2], b: [f64; 2], c: [f64; 2]) -> bool {
    c[0] >= a[0].min(b[0]) - EPS
        && c[0] <= a[0].max(b[0]) + EPS
        && c[1] >= a[1].min(b[1]) - EPS
        && c[1] <= a[1].max(b[1]) + EPS
}

/// Whether segments a-b and c-d share any point: a proper crossing, an end
/// on the other segment, or a collinear overlap.
fn segments_meet(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> bool {
    let (s1, s2) = (side(c, d, a), side(c, d, b));
    let (s3, s4) = (side(a, b, c), side(a, b, d));
    if s1 * s2 < 0 && s3 * s4 < 0 {
        return true;
    }
    (s1 == 0 && within(c, d, a))
        || (s2 == 0 && within(c, d, b))
        || (s3 == 0 && within(a, b, c))
        || (s4 == 0 && within(a, b, d))
}

/// Masks and zones rasterized for one working-image size (the motion
/// detector's small image, e.g. 160x120), so that the detector asks an index,
/// not a polygon, for every pixel of every frame. Rebuilt only when the
/// settings or the size change.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneMap {
    width: usize,
    height: usize,
    /// Per pixel, row-major: inside a mask polygon. Empty when there is no mask.
    ignored: Vec<bool>,
    /// Per pixel: bit k set when inside zone k. Empty when there are no zones.
    zones: Vec<u32>,
    /// Zone names, bit k for `names[k]`.
    names: Vec<String>,
    /// Bits of the required zones.
    required: u32,
}

impl ZoneMap {
    /// Rasterizes `mask` and `zones` (already validated, as the settings
    /// hold them) at `width` x `height`. A pixel is inside a polygon when its
    /// centre `((x + 0.5) / width, (y + 0.5) / height)` is, by the even-odd
    /// rule. Zones past the 32nd and required names that are not zones are
    /// ignored (validation allows neither).
    pub fn new(
        mask: &[Polygon],
        zones: &[Zone],
        required: &[String],
        width: usize,
        height: usize,
    ) -> ZoneMap {
        let zones = &zones[..zones.len().min(u32::BITS as usize)];
        let pixels = width * height;
        let mut ignored = Vec::new();
        if !mask.is_empty() {
            ignored = vec![false; pixels];
            for polygon in mask {
                fill(polygon, width, height, |i| ignored[i] = true);
            }
        }
        let mut bits = Vec::new();
        if !zones.is_empty() {
            bits = vec![0u32; pixels];
            for (k, zone) in zones.iter().enumerate() {
                fill(&zone.points, width, height, |i| bits[i] |= 1 << k);
            }
        }
        let names: Vec<String> = zones.iter().map(|z| z.name.clone()).collect();
        let required = names
            .iter()
            .enumerate()
            .filter(|(_, n)| required.contains(n))
            .fold(0, |acc, (k, _)| acc | 1 << k);
        ZoneMap {
            width,
            height,
            ignored,
            zones: bits,
            names,
            required,
        }
    }

    /// The working-image size it was built for, to know when to rebuild.
    pub fn size(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    /// No mask and no zones: the detector can skip all per-pixel lookups.
    pub fn is_empty(&self) -> bool {
        self.ignored.is_empty() && self.names.is_empty()
    }

    /// Pixel `i` (row-major) is inside a mask polygon: changes there are
    /// ignored. False past the end of the image.
    pub fn ignored(&self, i: usize) -> bool {
        self.ignored.get(i).copied().unwrap_or(false)
    }

    /// Bit k set = pixel `i` is inside zone k (zones in settings order).
    /// 0 past the end of the image.
    pub fn zones_at(&self, i: usize) -> u32 {
        self.zones.get(i).copied().unwrap_or(0)
    }

    /// Bits of the required zones (0 = none required: all motion counts).
    pub fn required(&self) -> u32 {
        self.required
    }

    /// Names of the zones whose bits are set, in settings order, for events.
    pub fn names(&self, bits: u32) -> Vec<String> {
        self.names
            .iter()
            .enumerate()
            .filter(|(k, _)| bits & (1 << k) != 0)
            .map(|(_, n)| n.clone())
            .collect()
    }
}

/// Calls `set` with the index of every pixel whose centre is inside
/// `polygon` (even-odd rule), one scanline at a time: each row's pixel
/// centres are compared with the x where the edges cross that row, so the
/// cost is edges per row, not edges per pixel.
fn fill(polygon: &[[f64; 2]], width: usize, height: usize, mut set: impl FnMut(usize)) {
    let n = polygon.len();
    if n < 3 || width == 0 || height == 0 {
        return;
    }
    let mut crossings: Vec<f64> = Vec::with_capacity(n);
    for y in 0..height {
        let yc = (y as f64 + 0.5) / height as f64;
        crossings.clear();
        for k in 0..n {
            let [x0, y0] = polygon[k];
            let [x1, y1] = polygon[(k + 1) % n];
            // Half-open in y: a vertex exactly on the row counts for one of
            // its two edges only, and horizontal edges for neither.
            if (y0 <= yc) != (y1 <= yc) {
                crossings.push(x0 + (yc - y0) * (x1 - x0) / (y1 - y0));
            }
        }
        crossings.sort_by(f64::total_cmp);
        for span in crossings.chunks_exact(2) {
            let from = first_centre_from(span[0], width);
            let to = first_centre_from(span[1], width);
            for x in from..to {
                set(y * width + x);
            }
        }
    }
}

/// The first pixel column whose centre is at or right of `x` (normalized),
/// clamped to the image.
fn first_centre_from(x: f64, width: usize) -> usize {
    // (c + 0.5) / width >= x  <=>  c >= x * width - 0.5
    let c = (x * width as f64 - 0.5).ceil();
    if c <= 0.0 {
        0
    } else {
        (c as usize).min(width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn poly(points: &[[f64; 2]]) -> Polygon {
        points.to_vec()
    }

    fn zone(name: &str, points: &[[f64; 2]]) -> Zone {
        Zone {
            name: name.into(),
            points: poly(points),
        }
    }

    const SQUARE: [[f64; 2]; 4] = [[0.25, 0.25], [0.75, 0.25], [0.75, 0.75], [0.25, 0.75]];

    /// The map drawn as text, one row per line: `#` ignored, a digit the
    /// zone bits, `.` nothing.
    fn picture(map: &ZoneMap) -> String {
        let (w, h) = map.size();
        let mut out = String::new();
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                out.push(if map.ignored(i) {
                    '#'
                } else {
                    match map.zones_at(i) {
                        0 => '.',
                        b => char::from_digit(b, 36).unwrap_or('?'),
                    }
                });
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn square_covers_the_pixels_whose_centres_it_holds() {
        let map = ZoneMap::new(&[poly(&SQUARE)], &[], &[], 8, 8);
        assert_eq!(map.size(), (8, 8));
        assert_eq!(
            picture(&map),
            "........\n........\n..####..\n..####..\n..####..\n..####..\n........\n........\n"
        );
        // At 160x120: x 40..120, y 30..90.
        let map = ZoneMap::new(&[], &[zone("a", &SQUARE)], &[], 160, 120);
        let n = (0..160 * 120).filter(|&i| map.zones_at(i) == 1).count();
        assert_eq!(n, 80 * 60);
        assert_eq!(map.zones_at(30 * 160 + 40), 1);
        assert_eq!(map.zones_at(30 * 160 + 39), 0);
        assert_eq!(map.zones_at(89 * 160 + 119), 1);
        assert_eq!(map.zones_at(90 * 160 + 119), 0);
    }

    #[test]
    fn triangle_leaves_out_centres_on_its_edge() {
        // Centres with x + y < 1 only: on the hypotenuse is outside.
        let map = ZoneMap::new(
            &[poly(&[[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])],
            &[],
            &[],
            4,
            4,
        );
        assert_eq!(picture(&map), "###.\n##..\n#...\n....\n");
    }

    #[test]
    fn concave_polygon_keeps_its_notch_empty() {
        let u = [
            [0.0, 0.0],
            [1.0, 0.0],
            [1.0, 1.0],
            [0.75, 1.0],
            [0.75, 0.5],
            [0.25, 0.5],
            [0.25, 1.0],
            [0.0, 1.0],
        ];
        let map = ZoneMap::new(&[], &[zone("u", &u)], &[], 4, 4);
        assert_eq!(picture(&map), "1111\n1111\n1..1\n1..1\n");
    }

    #[test]
    fn zones_overlap_as_bits_and_masks_are_separate() {
        let left = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]];
        let top = [[0.0, 0.0], [1.0, 0.0], [1.0, 0.5], [0.0, 0.5]];
        let corner = [[0.75, 0.75], [1.0, 0.75], [1.0, 1.0], [0.75, 1.0]];
        let zones = [zone("left", &left), zone("top", &top)];
        let map = ZoneMap::new(&[poly(&corner)], &zones, &["top".into()], 4, 4);
        assert_eq!(picture(&map), "3322\n3322\n11..\n11.#\n");
        assert_eq!(map.required(), 0b10);
        assert_eq!(map.names(0b11), ["left", "top"]);
        assert_eq!(map.names(0b10), ["top"]);
        assert!(map.names(0).is_empty());
        assert!(
            map.names(1 << 7).is_empty(),
            "bits past the zones name none"
        );
        assert!(!map.is_empty());
    }

    #[test]
    fn empty_map_answers_no_for_every_pixel() {
        let map = ZoneMap::new(&[], &[], &[], 160, 120);
        assert!(map.is_empty());
        assert!(!map.ignored(0) && map.zones_at(0) == 0 && map.required() == 0);
        let map = ZoneMap::new(&[poly(&SQUARE)], &[], &[], 4, 4);
        assert!(!map.is_empty());
        assert!(!map.ignored(16) && map.zones_at(99) == 0, "past the end");
        let map = ZoneMap::new(&[poly(&SQUARE)], &[], &[], 0, 0);
        assert!(!map.ignored(0));
    }

    fn mask_err(v: Value) -> String {
        parse_mask(&v).unwrap_err().to_string()
    }

    fn zones_err(v: Value) -> String {
        parse_zones(&v).unwrap_err().to_string()
    }

    #[test]
    fn each_problem_has_its_message() {
        let tri = json!([[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]);
        assert_eq!(mask_err(json!({})), "mask must be a list of polygons");
        assert_eq!(mask_err(json!([1])), "mask must be a list of polygons");
        assert_eq!(mask_err(tri.clone()), "mask must be a list of polygons");
        assert_eq!(
            mask_err(json!([[]])),
            "mask polygon 1 has fewer than 3 points"
        );
        assert_eq!(
            mask_err(json!([tri, [[0.1, 0.1], [0.2, 0.2]]])),
            "mask polygon 2 has fewer than 3 points"
        );
        assert_eq!(
            mask_err(json!([[[0.1, 0.1], [0.5, 0.1], [1.5, 0.5]]])),
            "mask polygon 1: point 3 is outside 0..1"
        );
        assert_eq!(
            mask_err(json!([[[0.1, 0.1], [0.5, -0.1], [1, 0.5]]])),
            "mask polygon 1: point 2 is outside 0..1"
        );
        for bad in [
            json!("0.5"),
            json!(null),
            json!([0.5]),
            json!([0.5, 0.5, 0.5]),
        ] {
            assert_eq!(
                mask_err(json!([[[0.1, 0.1], [0.5, 0.1], bad]])),
                "mask polygon 1: point 3 must be [x, y] numbers"
            );
        }
        let many: Vec<[f64; 2]> = (0..33).map(|i| [f64::from(i) / 40.0, 0.5]).collect();
        assert_eq!(
            mask_err(json!([many])),
            "mask polygon 1 has too many points (most 32)"
        );
        assert_eq!(
            mask_err(json!(vec![tri.clone(); 17])),
            "too many mask polygons (most 16)"
        );
        let bowtie = json!([[0, 0], [1, 1], [1, 0], [0, 1]]);
        assert_eq!(
            zones_err(json!([{"name": "path", "points": bowtie}])),
            "zone \"path\" crosses itself"
        );
        let line = json!([[0, 0], [0.5, 0.5], [1, 1]]);
        assert_eq!(
            zones_err(json!([{"name": "path", "points": line}])),
            "zone \"path\" has no area"
        );
        assert_eq!(
            zones_err(json!([{"name": "path", "points": [[0.1, 0.1], [0.5, 0.1]]}])),
            "zone \"path\" has fewer than 3 points"
        );
        assert_eq!(
            zones_err(json!([{"name": "a", "points": [[0.1, 0.1], [0.1, 0.1], [0.5, 0.5]]}])),
            "zone \"a\": point 2 is the same as point 1"
        );
        assert_eq!(
            zones_err(json!([{"name": "a", "points": [[0.1, 0.1], [0.5, 0.1], [0.10001, 0.1]]}])),
            "zone \"a\": point 1 is the same as point 3",
            "the same once rounded"
        );
        for name in [json!(""), json!("a b"), json!("x".repeat(33)), json!(7)] {
            assert_eq!(
                zones_err(json!([{"name": name, "points": tri}])),
                "zone name must be 1-32 letters, digits, '-' or '_'"
            );
        }
        assert_eq!(
            zones_err(json!([{"name": "p", "points": tri}, {"name": "p", "points": tri}])),
            "duplicate zone name: p"
        );
        let shape = "zones must be a list of {\"name\", \"points\"}";
        for bad in [
            json!({}),
            json!([tri]),
            json!([{"name": "p"}]),
            json!([{"name": "p", "points": tri, "colour": 1}]),
            json!([{"name": "p", "points": 1}]),
            json!([{"name": "p", "points": [0.1, 0.1, 0.5]}]),
        ] {
            assert_eq!(zones_err(bad.clone()), shape, "{bad}");
        }
        let z = json!({"name": "p", "points": tri});
        let many: Vec<Value> = (0..17)
            .map(|i| json!({"name": format!("z{i}"), "points": tri}))
            .collect();
        assert_eq!(zones_err(json!(many)), "too many zones (most 16)");
        assert_eq!(
            parse_required(&json!("p")).unwrap_err().to_string(),
            "required_zones must be a list of zone names"
        );
        assert_eq!(
            parse_required(&json!([1])).unwrap_err().to_string(),
            "required_zones must be a list of zone names"
        );
        let zones = parse_zones(&json!([z])).unwrap();
        assert_eq!(
            check_required(&zones, &["p".into(), "x".into()])
                .unwrap_err()
                .to_string(),
            "required zone \"x\" is not a zone"
        );
        assert!(check_required(&zones, &["p".into()]).is_ok());
    }

    #[test]
    fn crossing_touching_and_overlapping_edges_are_refused() {
        let refused = [
            // A vertex on a non-adjacent edge (pinched).
            json!([[0, 0], [1, 0], [0.5, 0], [0.5, 1]]),
            // Collinear overlap of non-adjacent edges.
            json!([[0, 0], [0.2, 0], [0.4, 0], [0.6, 0]]),
            // A spike folding back on itself.
            json!([[0, 0], [1, 0], [1, 1], [0.5, 1], [0.7, 1], [0, 1]]),
            // A star drawn in one stroke.
            json!([[0.5, 0], [0.8, 1], [0, 0.35], [1, 0.35], [0.2, 1]]),
        ];
        for points in refused {
            assert_eq!(
                zones_err(json!([{"name": "s", "points": points}])),
                "zone \"s\" crosses itself",
                "{points}"
            );
        }
    }

    #[test]
    fn valid_settings_are_rounded_and_kept_in_order() {
        let mask = parse_mask(&json!([[[0.123456, 0], [1, 0], [1, 1]]])).unwrap();
        assert_eq!(mask, [poly(&[[0.1235, 0.0], [1.0, 0.0], [1.0, 1.0]])]);
        assert_eq!(
            serde_json::to_string(&mask).unwrap(),
            "[[[0.1235,0.0],[1.0,0.0],[1.0,1.0]]]"
        );
        let zones = parse_zones(&json!([
            {"name": "Path_2", "points": [[0, 0], [1, 0], [1, 1], [0, 1]]},
            {"points": [[-0.0, 0], [1, 0], [1, 1]], "name": "b-1"},
        ]))
        .unwrap();
        assert_eq!(zones[0].name, "Path_2");
        assert_eq!(zones[1].points[0], [0.0, 0.0]);
        assert!(zones[1].points[0][0].is_sign_positive(), "no -0.0 stored");
        assert!(parse_mask(&json!([])).unwrap().is_empty());
        assert_eq!(parse_required(&json!(["a", "b", "a"])).unwrap(), ["a", "b"]);
    }

    #[test]
    fn a_long_required_list_is_refused_before_any_name_is_read() {
        // Numbers are not names: a check of each entry would answer with the
        // list's shape. The length is refused first.
        let numbers = Value::Array(vec![json!(1); 100_000]);
        assert_eq!(
            parse_required(&numbers).unwrap_err(),
            ZoneError::TooManyRequired
        );
        let names: Vec<Value> = (0..100_000).map(|i| json!(format!("z{i}"))).collect();
        assert_eq!(
            parse_required(&Value::Array(names))
                .unwrap_err()
                .to_string(),
            "too many required zones (most 16)"
        );
        let most: Vec<String> = (0..MAX_ZONES).map(|i| format!("z{i}")).collect();
        assert_eq!(parse_required(&json!(most)).unwrap(), most);
        assert_eq!(
            parse_required(&json!(vec!["a"; MAX_ZONES + 1])).unwrap_err(),
            ZoneError::TooManyRequired,
            "a repeated name counts each time"
        );
    }

    proptest::proptest! {
        #[test]
        fn rectangles_cover_about_their_area(
            x0 in 0.0f64..0.9, y0 in 0.0f64..0.9, dx in 0.01f64..1.0, dy in 0.01f64..1.0,
        ) {
            let (x1, y1) = ((x0 + dx).min(1.0), (y0 + dy).min(1.0));
            let rect = json!([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]]);
            let mask = parse_mask(&rect).unwrap();
            let (w, h) = (160usize, 120usize);
            let map = ZoneMap::new(&mask, &[], &[], w, h);
            let count = (0..w * h).filter(|&i| map.ignored(i)).count() as f64;
            let (wf, hf) = (w as f64, h as f64);
            let expected = (x1 - x0) * wf * (y1 - y0) * hf;
            // Each side may gain or lose a row or column of pixels.
            let slack = (x1 - x0) * wf + (y1 - y0) * hf + 1.0;
            proptest::prop_assert!(
                (count - expected).abs() <= slack,
                "{count} pixels for {expected:.1}"
            );
        }

        #[test]
        fn any_points_are_checked_without_panicking(
            points in proptest::collection::vec((-0.5f64..1.5, -0.5f64..1.5), 0..40),
        ) {
            let points: Vec<[f64; 2]> = points.into_iter().map(|(x, y)| [x, y]).collect();
            if let Ok(mask) = parse_mask(&json!([points])) {
                let map = ZoneMap::new(&mask, &[], &[], 40, 30);
                proptest::prop_assert!(!map.is_empty());
            }
        }
    }
}
