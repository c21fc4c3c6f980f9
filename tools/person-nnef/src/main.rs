//! `person-nnef`: converts the person detector's ONNX model to the NNEF file
//! lookout embeds (models/person/nanodet-g.nnef.tar).
//!
//!     person-nnef ONNX NNEF [SIDE]
//!
//! lookout runs the model on tract-nnef alone: reading ONNX needs tract's
//! ONNX front end (tract-onnx, tract-hir, tract-onnx-opl, protobuf), most
//! of the binary and of its build, for work that gives the same graph every
//! time. This tool does that work once, offline:
//! 1. reads the ONNX file, fixes the input to 1x3xSIDExSIDE (416 unless
//!    told), types the graph and declutters it (the f16 weights' Casts are
//!    folded, batch norms merged and so on);
//! 2. writes the graph as an NNEF tar with tract's core extensions and fixed
//!    timestamps, so the same inputs give the same bytes;
//! 3. stores every f32 weight of that file that f16 holds exactly back as
//!    f16, with a `tract_core_cast` to f32 in the graph: the same numbers,
//!    half the bytes (tract folds the Casts away again when lookout loads
//!    the file). tract's writer folds such Casts itself, so this is done on
//!    the written file: each `variable` line of graph.nnef and its .dat;
//! 4. reads the file back as lookout does and runs both models, the ONNX one
//!    and the NNEF one, on the same inputs: it fails unless their outputs
//!    agree.

use std::path::PathBuf;
use std::process::ExitCode;

use tract_nnef::internal::{bail, ensure, format_err};
use tract_onnx::prelude::*;

/// The time stamp of every file in the tar, as tract's deterministic writer
/// sets it (1 January 1980).
const MTIME: u64 = 315_532_800;

/// The largest difference allowed between an output of the two models: the
/// scores are probabilities and the distances logits of order 1-10, so this
/// is rounding noise (the two are the same graph, optimized the same way).
const TOLERANCE: f32 = 1e-3;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("person-nnef: {e:?}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> TractResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (onnx_path, nnef_path, side) = match args.as_slice() {
        [o, n] => (PathBuf::from(o), PathBuf::from(n), 416),
        [o, n, s] => (PathBuf::from(o), PathBuf::from(n), s.parse()?),
        _ => bail!("usage: person-nnef ONNX NNEF [SIDE]"),
    };
    let shape = [1, 3, side, side];

    let onnx = tract_onnx::onnx()
        .model_for_path(&onnx_path)?
        .with_input_fact(0, f32::fact(shape).into())?
        .into_typed()?
        .into_decluttered()?;

    let nnef = tract_nnef::nnef();
    let mut wide = Vec::new();
    nnef.write_to_tar_with_config(&onnx, &mut wide, false, true)?;
    let mut again = Vec::new();
    nnef.write_to_tar_with_config(&onnx, &mut again, false, true)?;
    ensure!(wide == again, "two writes of the same model differ");
    let (bytes, halved, kept) = halve_weights(&wide)?;
    eprintln!("{halved} weights stored as f16, {kept} kept as f32");
    std::fs::write(&nnef_path, &bytes)?;
    eprintln!("wrote {} ({} bytes)", nnef_path.display(), bytes.len());

    // Read back as lookout reads it, and compare with the ONNX model.
    let read = nnef
        .model_for_read(&mut &bytes[..])?
        .into_optimized()?
        .into_runnable()?;
    let reference = onnx.into_optimized()?.into_runnable()?;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..3 {
        let input = Tensor::from_shape(
            &shape,
            &(0..shape.iter().product::<usize>())
                .map(|_| {
                    // xorshift64: the same inputs every run; values in the
                    // normalized range the model sees, about -2..2.
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
                })
                .collect::<Vec<f32>>(),
        )?;
        let want = reference.run(tvec!(input.clone().into_tvalue()))?;
        let got = read.run(tvec!(input.into_tvalue()))?;
        ensure!(
            want.len() == got.len(),
            "{} outputs, expected {}",
            got.len(),
            want.len()
        );
        let mut worst = 0.0f32;
        for (w, g) in want.iter().zip(got.iter()) {
            ensure!(
                w.shape() == g.shape(),
                "output shapes {:?} and {:?}",
                w.shape(),
                g.shape()
            );
            let (w, g) = (
                w.to_plain_array_view::<f32>()?,
                g.to_plain_array_view::<f32>()?,
            );
            for (a, b) in w.iter().zip(g.iter()) {
                worst = worst.max((a - b).abs());
            }
        }
        eprintln!("check {round}: largest difference from the ONNX model {worst:e}");
        ensure!(
            worst <= TOLERANCE,
            "the NNEF model's outputs differ by {worst}"
        );
    }
    Ok(())
}

/// Rewrites an NNEF tar with each f32 variable of 16 values or more that
/// f16 holds exactly stored as f16 and cast back to f32 in the graph.
/// Returns the new tar, and how many variables were halved and kept.
fn halve_weights(tar_bytes: &[u8]) -> TractResult<(Vec<u8>, usize, usize)> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in tar::Archive::new(tar_bytes).entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data)?;
        files.push((path, data));
    }
    let graph_at = files
        .iter()
        .position(|(p, _)| p == "graph.nnef")
        .ok_or_else(|| format_err!("no graph.nnef in the written file"))?;
    let graph = String::from_utf8(files[graph_at].1.clone())?;
    let (mut halved, mut kept) = (0, 0);
    let mut out = String::new();
    for line in graph.split_inclusive('\n') {
        // `  NAME = variable<scalar>(label = "LABEL", shape = [..]);`
        let Some((name, label)) = variable(line) else {
            out.push_str(line);
            continue;
        };
        let dat = format!("{label}.dat");
        let file = files
            .iter_mut()
            .find(|(p, _)| *p == dat || p.trim_start_matches("./") == dat)
            .ok_or_else(|| format_err!("no {dat} for variable {name}"))?;
        let wide = tract_nnef::tensors::read_tensor(&file.1[..])?;
        if wide.datum_type() != f32::datum_type() || wide.len() < 16 {
            out.push_str(line);
            continue;
        }
        let half = wide.cast_to::<f16>()?.into_owned();
        if *half.cast_to::<f32>()? != wide {
            kept += 1;
            out.push_str(line);
            continue;
        }
        let mut data = Vec::new();
        tract_nnef::tensors::write_tensor(&mut data, &half)?;
        file.1 = data;
        let indent = &line[..line.len() - line.trim_start().len()];
        out.push_str(&line.replacen(name, &format!("{name}_f16"), 1));
        out.push_str(&format!(
            "{indent}{name} = tract_core_cast({name}_f16, to = \"f32\");\n"
        ));
        halved += 1;
    }
    files[graph_at].1 = out.into_bytes();

    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(MTIME);
        builder.append_data(&mut header, path, &data[..])?;
    }
    Ok((builder.into_inner()?, halved, kept))
}

/// The name and label of a `variable` line of graph.nnef.
fn variable(line: &str) -> Option<(&str, &str)> {
    let (name, rest) = line.trim().split_once(" = variable<scalar>(label = \"")?;
    let (label, _) = rest.split_once('"')?;
    Some((name, label))
}
