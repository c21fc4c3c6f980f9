//! The NanoDet-g model on tract: loaded from the bytes embedded in the
//! binary, optimized once, then run once per check.
//!
//! The model is embedded in tract's NNEF format, already typed and
//! decluttered for its fixed input (tools/person-nnef converts the ONNX
//! file, see models/person/NOTICE): reading it needs tract-nnef alone, not
//! tract's ONNX front end, which was most of the binary and of its build.

use std::sync::Arc;

use tract_linalg::multithread::Executor;
use tract_nnef::prelude::*;
use tract_nnef::tract_core::runtime::RunOptions;

use super::decode::{self, Candidate, BINS, CLASSES, INPUT, STRIDES};
use super::error::PersonError;

/// The model file (models/person/nanodet-g.nnef.tar, 7.7 MB: the weights as
/// f16; see its NOTICE), in the binary so that a camera needs no file beside
/// it.
static NNEF: &[u8] = include_bytes!("../../models/person/nanodet-g.nnef.tar");

/// The optimized model, shared by every clone of the detector.
#[derive(Clone)]
pub(super) struct Model {
    plan: Arc<TypedRunnableModel>,
}

fn model_err(e: impl std::fmt::Display) -> PersonError {
    PersonError::Model(format!("{e:#}"))
}

impl Model {
    /// Reads and optimizes the graph, whose input the file fixes to
    /// 1x3xINPUTxINPUT (about 100 ms). With `threads` > 1 the plan gets a
    /// rayon pool of its own; otherwise tract computes on the calling thread.
    pub(super) fn load(threads: usize) -> Result<Model, PersonError> {
        let model = tract_nnef::nnef()
            .model_for_read(&mut &NNEF[..])
            .map_err(model_err)?;
        let input = model.input_fact(0).map_err(model_err)?;
        if input.shape.as_concrete() != Some(&[1, 3, INPUT, INPUT]) {
            return Err(PersonError::Model(format!(
                "the model's input is {input:?}, expected 1x3x{INPUT}x{INPUT}"
            )));
        }
        let model = model.into_optimized().map_err(model_err)?;
        let mut options = RunOptions::default();
        if threads > 1 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("person-{i}"))
                // As low as the checks' own thread (motion::check::NICE).
                .start_handler(|_| {
                    let _ = rustix::process::setpriority_process(None, 10);
                })
                .build()
                .map_err(|e| PersonError::Model(format!("cannot start {threads} threads: {e}")))?;
            options.executor = Some(Executor::MultiThread(Arc::new(pool)));
        }
        let plan = model
            .into_runnable_with_options(&options)
            .map_err(model_err)?;
        Ok(Model { plan })
    }

    /// Runs the model on one input (from `prep::model_input`) and decodes
    /// every stride's person boxes at or above `min_score`, in input pixels.
    pub(super) fn run(
        &self,
        input: Vec<f32>,
        min_score: f32,
    ) -> Result<Vec<Candidate>, PersonError> {
        let tensor = Tensor::from_shape(&[1, 3, INPUT, INPUT], &input).map_err(model_err)?;
        drop(input);
        let outputs = self
            .plan
            .run(tvec!(tensor.into_tvalue()))
            .map_err(model_err)?;
        // The outputs are told apart by shape, [1, cells, 80] for scores and
        // [1, cells, 44] for distances, not by their order in the file.
        let mut by_shape: Vec<(usize, usize, &TValue)> = Vec::new();
        for out in &outputs {
            if let [1, cells, width] = out.shape() {
                by_shape.push((*cells, *width, out));
            }
        }
        let find = |cells: usize, width: usize| {
            by_shape
                .iter()
                .find(|(c, w, _)| *c == cells && *w == width)
                .map(|(_, _, t)| *t)
                .ok_or_else(|| {
                    PersonError::Model(format!("no output of shape [1, {cells}, {width}]"))
                })
        };
        let mut candidates = Vec::new();
        for stride in STRIDES {
            let cells = decode::grid(stride).pow(2);
            let scores = find(cells, CLASSES)?
                .to_plain_array_view::<f32>()
                .map_err(model_err)?;
            let dists = find(cells, 4 * BINS)?
                .to_plain_array_view::<f32>()
                .map_err(model_err)?;
            let (Some(scores), Some(dists)) = (scores.as_slice(), dists.as_slice()) else {
                return Err(PersonError::Model("outputs are not contiguous".into()));
            };
            decode::decode_stride(stride, scores, dists, min_score, &mut candidates)
                .map_err(model_err)?;
        }
        Ok(candidates)
    }
}
