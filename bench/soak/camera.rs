//! The `exec:` camera (`soak source`): lookout restarts it every 20 s.

use std::time::Duration;

use crate::SourceArgs;

/// The `exec:` camera: a grey 320x240 picture where a dark square crosses
/// for 3 s of every 10 s (a motion episode per crossing), then exit.
pub(crate) fn source(a: SourceArgs) -> anyhow::Result<()> {
    use std::io::Write;
    const W: usize = 320;
    const H: usize = 240;
    let fps = a.fps.clamp(1, 30);
    let encode = |x: Option<usize>| -> anyhow::Result<Vec<u8>> {
        let mut px = vec![150u8; W * H];
        if let Some(x) = x {
            for row in px.chunks_mut(W).skip(90).take(60) {
                for p in row.iter_mut().skip(x).take(60) {
                    *p = 30;
                }
            }
        }
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 80).encode(
            &px,
            W as u16,
            H as u16,
            jpeg_encoder::ColorType::Luma,
        )?;
        Ok(out)
    };
    let still = encode(None)?;
    let steps = (3 * fps) as usize;
    let moving: Vec<Vec<u8>> = (0..steps)
        .map(|i| encode(Some(i * (W - 60) / steps.max(1))))
        .collect::<anyhow::Result<_>>()?;
    let period = (10 * fps) as usize;
    let total = (a.seconds * f64::from(fps)) as usize;
    let start = std::time::Instant::now();
    let mut stdout = std::io::stdout().lock();
    for n in 0..total {
        // The crossing starts 4 s into each 10 s.
        let phase = n % period;
        let offset = (4 * fps) as usize;
        let jpeg = match phase.checked_sub(offset) {
            Some(i) if i < steps => &moving[i],
            _ => &still,
        };
        stdout.write_all(jpeg)?;
        stdout.flush()?;
        let due = start + Duration::from_secs_f64((n + 1) as f64 / f64::from(fps));
        std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
    }
    Ok(())
}
