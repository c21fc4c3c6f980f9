//! The bench's camera: the same 2 s loop as the integration tests'
//! `motion_scene` (tests/common), written here because that helper lives in a
//! module full of test-only items. 10 fps: 0.5 s of a square crossing, then
//! 1.5 s still, so with a threshold of 5 and a cooldown of 0 every loop is one
//! motion episode, one incident, one push (for about half a minute: then the
//! detector has learned the square's path as restless, see `phase`).

use std::path::Path;

/// A 160x120 JPEG of a grey gradient, with a 50 px yellow square at `x`
/// when given (the tests' `square_jpeg`, pixel for pixel).
fn square_jpeg(square_x: Option<usize>) -> anyhow::Result<Vec<u8>> {
    let (w, h) = (160u16, 120u16);
    let mut px = vec![0u8; usize::from(w) * usize::from(h) * 3];
    for y in 0..usize::from(h) {
        for x in 0..usize::from(w) {
            let i = (y * usize::from(w) + x) * 3;
            let g = (40 + x / 4 + y / 4) as u8;
            px[i..i + 3].copy_from_slice(&[g, g, g]);
            if let Some(sx) = square_x {
                if (sx..sx + 50).contains(&x) && (35..85).contains(&y) {
                    px[i..i + 3].copy_from_slice(&[250, 250, 40]);
                }
            }
        }
    }
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85).encode(&px, w, h, jpeg_encoder::ColorType::Rgb)?;
    Ok(out)
}

/// Fills `dir` with the loop's 20 frames, named in play order.
pub(crate) fn write(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let still = square_jpeg(None)?;
    for i in 0..5 {
        std::fs::write(dir.join(format!("a{i:02}.jpg")), square_jpeg(Some(i * 20))?)?;
    }
    for i in 0..15 {
        std::fs::write(dir.join(format!("b{i:02}.jpg")), &still)?;
    }
    Ok(())
}
