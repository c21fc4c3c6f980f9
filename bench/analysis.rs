//! `analysis`: the CPU cost of motion analysis per frame: the luma decode,
//! the detector's work on the decoded picture, and both together as the
//! server runs them (`Detector::analyse`).
//!
//! ```sh
//! cargo build --release --locked --example analysis
//! target/release/examples/analysis --frames /tmp/an-frames
//! ```
//!
//! `--frames` is a folder of JPEGs from one camera (1280x720 for the figures
//! in the README), analysed in name order so the detector does real work on
//! real motion. Each run times a pass over every frame in thread CPU time
//! (the machine is shared: wall time would count other processes), and the
//! table gives the median over the runs of the CPU per frame, as Markdown.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use lookout::motion::detector::{Detector, MotionParams};
use lookout::motion::image::decode_luma_into;
use lookout::motion::replay::thread_cpu;

/// Time the motion analysis of a folder of JPEGs.
#[derive(Debug, Parser)]
#[command(name = "analysis")]
struct Cli {
    /// Folder of JPEG frames (`*.jpg`), analysed in name order.
    #[arg(long)]
    frames: PathBuf,
    /// Passes over the frames; the median is quoted.
    #[arg(long, default_value_t = 21)]
    runs: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("analysis: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let frames = load(&cli.frames)?;
    let mut full = Vec::new();
    let (w, h) = decode_luma_into(&frames[0], &mut full).map_err(|e| e.to_string())?;
    let mean_kb = frames.iter().map(Vec::len).sum::<usize>() / frames.len() / 1024;
    // Rows: what is timed, and one pass of it over every frame.
    type Pass<'a> = Box<dyn FnMut() -> Result<(), String> + 'a>;
    let mut buf = Vec::new();
    let decode_full: Pass = Box::new(|| {
        for f in &frames {
            decode_luma_into(f, &mut buf).map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    // Every frame decoded once, for the detector alone.
    let mut decoded = Vec::with_capacity(frames.len());
    for f in &frames {
        let mut luma = Vec::new();
        let size = decode_luma_into(f, &mut luma).map_err(|e| e.to_string())?;
        decoded.push((luma, size));
    }
    let detect: Pass = Box::new(|| {
        let (mut d, p, t0) = (Detector::new(), MotionParams::default(), Instant::now());
        for (i, (luma, (w, h))) in decoded.iter().enumerate() {
            let at = t0 + Duration::from_millis(100 * i as u64);
            d.analyse_luma(luma, *w, *h, at, &p);
        }
        Ok(())
    });
    let analyse: Pass = Box::new(|| {
        let (mut d, p, t0) = (Detector::new(), MotionParams::default(), Instant::now());
        for (i, f) in frames.iter().enumerate() {
            let at = t0 + Duration::from_millis(100 * i as u64);
            d.analyse(f, at, &p).map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    let mut rows: Vec<(String, Pass, Vec<f64>)> = vec![
        ("luma decode (zune-jpeg)".into(), decode_full, Vec::new()),
        (
            "detector on the decoded picture (`analyse_luma`)".into(),
            detect,
            Vec::new(),
        ),
        (
            "both, as the server runs them (`Detector::analyse`)".into(),
            analyse,
            Vec::new(),
        ),
    ];
    // Rows take turns within each run, so a busy moment of the shared
    // machine does not land on one of them only.
    for _ in 0..cli.runs {
        for (_, pass, times) in &mut rows {
            let before = thread_cpu().ok_or("no thread CPU time on this platform")?;
            pass()?;
            let spent = thread_cpu()
                .ok_or("no thread CPU time")?
                .saturating_sub(before);
            times.push(spent.as_secs_f64() * 1e3 / frames.len() as f64);
        }
    }
    println!(
        "{} frames {w}x{h}, {mean_kb} KB on average, {} runs, thread CPU per frame:\n",
        frames.len(),
        cli.runs
    );
    println!("| what | median | fastest run | slowest run |");
    println!("|---|---|---|---|");
    for (name, _, mut times) in rows {
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let (lo, hi) = (times[0], times[times.len() - 1]);
        println!("| {name} | {median:.3} ms | {lo:.3} ms | {hi:.3} ms |");
    }
    Ok(())
}

/// The folder's `*.jpg` files, in name order.
fn load(dir: &Path) -> Result<Vec<Vec<u8>>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("jpg")))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(format!("no .jpg in {}", dir.display()));
    }
    paths
        .iter()
        .map(|p| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display())))
        .collect()
}
