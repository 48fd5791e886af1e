//! The training step, the one the trainer and the bench both run: forward
//! (under autocast with mixed precision), cross-entropy, backward (through
//! the loss scaler with f16), clipping, the optimizer step.

use crate::clip::clip_grad_norm;
use crate::config::{AmpDtype, TrainConfig};
use crate::data::Batch;
use crate::distributed::{all_reduce_gradients, Collective};
use crate::monitor::{self, Monitors};
use crate::optim::Optimizer;
use crate::scaler::{self, GradScaler};
use residual_nn::Mode;
use residual_tensor::{AutocastGuard, Result};
use residual_zoo::Model;
use std::time::Instant;

/// The settings of a step that stay fixed over a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepSettings {
    /// Mixed-precision dtype, `None` for f32.
    pub amp: Option<AmpDtype>,
    /// Cross-entropy label smoothing.
    pub label_smoothing: f32,
    /// Clip gradients to this global norm.
    pub clip_grad_norm: Option<f32>,
}

impl From<&TrainConfig> for StepSettings {
    fn from(c: &TrainConfig) -> Self {
        StepSettings {
            amp: c.amp,
            label_smoothing: c.label_smoothing,
            clip_grad_norm: c.clip_grad_norm,
        }
    }
}

/// What a step did.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    /// Training loss of the batch.
    pub loss: f32,
    /// Correct predictions in the batch.
    pub correct: usize,
    /// Global gradient norm (unscaled, before clipping).
    pub grad_norm: f32,
    /// The loss scale of this step (f16 mixed precision only).
    pub loss_scale: Option<f32>,
    /// Whether the optimizer step was skipped because a gradient overflowed.
    pub skipped: bool,
    /// Gradient flow, weights and dead units, when asked for.
    pub monitors: Option<Monitors>,
    /// Without a loss scaler: the loss or a gradient was not finite, and the
    /// optimizer step was not taken (the weights are those before the step).
    pub non_finite: Option<NonFinite>,
    /// Seconds spent in the gradients' all-reduce (0 on one rank).
    pub comm_seconds: f32,
}

/// A step whose loss or gradients were not finite: where it showed first.
#[derive(Debug, Clone, PartialEq)]
pub struct NonFinite {
    /// The loss of the batch.
    pub loss: f32,
    /// The first parameter, in backward order (output to input), whose
    /// gradient holds a NaN or an infinity: where the backward pass first
    /// produced one. `None` when every gradient is finite (the loss alone is not).
    pub first_gradient: Option<String>,
}

/// The first parameter of `optimizer`, from the output back, whose gradient
/// in `grads` is not finite.
fn first_non_finite_gradient(
    optimizer: &Optimizer,
    grads: &residual_tensor::Gradients,
) -> Result<Option<String>> {
    for (name, p) in optimizer.params().iter().rev() {
        if let Some(g) = grads.get(&p.get()) {
            if scaler::has_non_finite(g)? {
                return Ok(Some(name.clone()));
            }
        }
    }
    Ok(None)
}

/// One optimizer step of `model` on `batch` at learning rate `lr`. With
/// `monitor`, the step also records the per-layer figures of [`Monitors`]
/// (from the forward's intermediates and the unscaled gradients).
///
/// Over a `collective` of several ranks, `batch` is this rank's share of the
/// global batch: the gradients are averaged over the ranks after the
/// backward pass (see [`all_reduce_gradients`]), so every rank clips, checks
/// and steps on the same gradients: under a loss scaler an overflow on any
/// rank skips the step on all of them; without one a non-finite gradient on
/// any rank makes every rank report divergence. The loss and accuracy are
/// this rank's.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    model: &dyn Model,
    optimizer: &mut Optimizer,
    scaler: Option<&mut GradScaler>,
    batch: &Batch,
    settings: &StepSettings,
    lr: f32,
    monitor: bool,
    collective: &dyn Collective,
) -> Result<StepOutcome> {
    // Under autocast the convolutions and the classifier compute in half
    // precision; the norms, ReLU, GELU and residual adds compute in f32 and
    // keep the half dtype (see `residual_tensor::autocast`); the loss is f32.
    let autocast = settings
        .amp
        .map(|a| AutocastGuard::new(a.dtype()))
        .transpose()?;
    let (logits, taps) = if monitor {
        let out = model.forward_intermediates(&batch.images, Mode::Train)?;
        (model.forward_head(&out.features, Mode::Train)?, out.taps)
    } else {
        (model.forward(&batch.images, Mode::Train)?, Vec::new())
    };
    let loss = logits.cross_entropy(&batch.labels, settings.label_smoothing)?;
    drop(autocast);
    let loss_scale = scaler.as_ref().map(|s| s.scale);
    let (mut grads, mut skipped) = scaler::backward(&loss, scaler.as_deref())?;
    let t_comm = Instant::now();
    let reduced = all_reduce_gradients(collective, optimizer.params(), &mut grads)?;
    let comm_seconds = t_comm.elapsed().as_secs_f32();
    if reduced > 0 && scaler.is_some() {
        // An overflow on any rank is in every rank's sums.
        skipped = scaler::any_non_finite(&grads)?;
    }
    let monitors = monitor
        .then(|| -> Result<Monitors> {
            Ok(Monitors {
                layer_grad_norms: monitor::layer_grad_norms(optimizer, &grads)?,
                layer_weight_stats: monitor::layer_weight_stats(optimizer)?,
                zero_activations: monitor::zero_fractions(&taps)?,
                histograms: monitor::histograms(optimizer, &grads)?,
            })
        })
        .transpose()?;
    let loss_value = loss.to_scalar()?;
    // Without a scaler, a non-finite loss or gradient is divergence: the step
    // is not taken, so the weights stay those of the last good step.
    let non_finite = match scaler.is_none() && !loss_value.is_finite() {
        true => Some(NonFinite {
            loss: loss_value,
            first_gradient: first_non_finite_gradient(optimizer, &grads)?,
        }),
        false => None,
    };
    let grad_norm = clip_grad_norm(&mut grads, settings.clip_grad_norm.unwrap_or(f32::INFINITY))?;
    let non_finite = match non_finite {
        None if scaler.is_none() && !grad_norm.is_finite() => Some(NonFinite {
            loss: loss_value,
            first_gradient: first_non_finite_gradient(optimizer, &grads)?,
        }),
        other => other,
    };
    // A step with an inf / NaN gradient is skipped, as GradScaler does.
    if !skipped && non_finite.is_none() {
        optimizer.step(&grads, lr)?;
    }
    if let Some(s) = scaler {
        s.update(skipped);
    }
    let correct = logits
        .argmax(1)?
        .iter()
        .zip(&batch.labels)
        .filter(|(p, l)| p == l)
        .count();
    Ok(StepOutcome {
        loss: loss_value,
        correct,
        grad_norm,
        loss_scale,
        skipped,
        monitors,
        non_finite,
        comm_seconds,
    })
}
