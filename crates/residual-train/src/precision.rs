//! What a reduced-precision inference pass costs in accuracy: the same model
//! evaluated through the f32 pass and through the other one, batch by batch
//! on the same inputs.

use crate::data::{Dataset, Transform};
use crate::distributed::Solo;
use crate::trainer::{for_each_eval_batch, EvalStats, EvalSums};
use residual_nn::{Mode, Module};
use residual_tensor::{no_grad, Device, Result};
use residual_zoo::{inference_at, Model, Precision};
use std::sync::Arc;

/// The f32 pass against another precision's on one dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionComparison {
    /// The precision compared with f32.
    pub precision: Precision,
    /// Loss and accuracy of the f32 pass.
    pub f32: EvalStats,
    /// Loss and accuracy at `precision`.
    pub reduced: EvalStats,
    /// Samples whose top-1 class is the same in both passes.
    pub agree: usize,
    /// Samples evaluated.
    pub samples: usize,
    /// The largest |logit difference| between the passes, over every sample and class.
    pub max_logit_diff: f32,
    /// The largest |logit| of the f32 pass (the scale of `max_logit_diff`).
    pub max_logit: f32,
    /// Logits that are NaN or infinite in the reduced pass but finite in the
    /// f32 one (left out of `max_logit_diff`, which they would make NaN).
    pub non_finite: usize,
}

impl PrecisionComparison {
    /// The share of samples whose top-1 class both passes agree on.
    pub fn agreement(&self) -> f32 {
        self.agree as f32 / self.samples.max(1) as f32
    }
}

/// Evaluates `model` on `data` (as [`crate::trainer::evaluate`] does) through
/// the f32 inference pass and the one at `precision`.
pub fn compare_precision(
    model: &dyn Model,
    precision: Precision,
    data: Arc<dyn Dataset>,
    transforms: &[Transform],
    batch_size: usize,
    dev: &Device,
) -> Result<PrecisionComparison> {
    let reference = inference_at(model, Precision::F32)?;
    let reduced = inference_at(model, precision)?;
    let (mut f32_sums, mut reduced_sums) = (EvalSums::default(), EvalSums::default());
    let (mut agree, mut samples) = (0, 0);
    let (mut max_logit_diff, mut max_logit, mut non_finite) = (0f32, 0f32, 0);
    for_each_eval_batch(data, transforms, batch_size, dev, &Solo, |batch| {
        let a = no_grad(|| reference.forward(&batch.images, Mode::Eval))?;
        let b = no_grad(|| reduced.forward(&batch.images, Mode::Eval))?;
        f32_sums.add(&a, &batch.labels)?;
        reduced_sums.add(&b, &batch.labels)?;
        let (ta, tb) = (a.argmax(1)?, b.argmax(1)?);
        agree += ta.iter().zip(&tb).filter(|(x, y)| x == y).count();
        samples += ta.len();
        let (va, vb) = (a.to_vec()?, b.to_vec()?);
        for (x, y) in va.iter().zip(&vb) {
            if x.is_finite() && !y.is_finite() {
                non_finite += 1;
                continue;
            }
            max_logit_diff = max_logit_diff.max((x - y).abs());
            max_logit = max_logit.max(x.abs());
        }
        Ok(())
    })?;
    Ok(PrecisionComparison {
        precision,
        f32: f32_sums.stats(),
        reduced: reduced_sums.stats(),
        agree,
        samples,
        max_logit_diff,
        max_logit,
        non_finite,
    })
}
