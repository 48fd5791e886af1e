//! The training loop: forward, cross-entropy, backward, clipping, the
//! optimizer step with the scheduled learning rate; evaluation; checkpoints.

use crate::checkpoint::{self, CheckpointMeta};
use crate::clip::clip_grad_norm;
use crate::data::{DataLoader, Dataset, Transform};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::scaler::{self, GradScaler};
use crate::schedule::Schedule;
use residual_nn::{named_tensors, Mode, Module};
use residual_tensor::{no_grad, AutocastGuard, DType, Device, Error, Result};
use residual_zoo::{build, ActKind, ModelOptions, NormKind, ResNet};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Everything that defines a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Zoo model name.
    pub model: String,
    /// Epochs to train.
    pub epochs: u64,
    /// Samples per batch.
    pub batch_size: usize,
    /// Base learning rate.
    pub lr: f32,
    /// Optimizer and its hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule over optimizer steps.
    pub schedule: Schedule,
    /// Clip gradients to this global norm.
    pub clip_grad_norm: Option<f32>,
    /// Cross-entropy label smoothing.
    pub label_smoothing: f32,
    /// Seed of initialisation, data order and augmentation.
    pub seed: u64,
    /// Normalisation layers.
    pub norm: NormKind,
    /// Activation.
    pub act: ActKind,
    /// No weight decay on biases and norm parameters.
    pub no_decay_norm_bias: bool,
    /// Per-sample transforms of the training data.
    pub transforms: Vec<Transform>,
    /// Steps between detailed log records (per-layer gradient norms).
    pub log_every: u64,
    /// Mixed precision: the dtype the convolutions and the classifier compute
    /// in, `None` for f32 throughout.
    #[serde(default)]
    pub amp: Option<AmpDtype>,
}

/// The half-precision dtype of a mixed-precision run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AmpDtype {
    /// bfloat16: f32's range, so no loss scaling (PyTorch's CPU default).
    Bf16,
    /// IEEE half: small gradients underflow, so the loss is scaled
    /// dynamically (PyTorch's GPU default).
    F16,
}

impl AmpDtype {
    /// PyTorch's choice for `dev`: f16 on a GPU with f16 arithmetic, bf16 otherwise.
    pub fn for_device(dev: &Device) -> Self {
        match dev.backend().autocast_dtype() {
            DType::F16 => AmpDtype::F16,
            _ => AmpDtype::Bf16,
        }
    }

    /// A fresh loss scaler when this dtype needs one (f16; bf16 has f32's range).
    pub fn loss_scaler(self) -> Option<GradScaler> {
        (self == AmpDtype::F16).then(GradScaler::default)
    }

    /// The tensor dtype.
    pub fn dtype(self) -> DType {
        match self {
            AmpDtype::Bf16 => DType::BF16,
            AmpDtype::F16 => DType::F16,
        }
    }
}

/// What one optimizer step reports.
#[derive(Debug, Clone, Serialize)]
pub struct StepStats {
    /// Epoch (from 0).
    pub epoch: u64,
    /// Optimizer step (from 1).
    pub step: u64,
    /// Batch within the epoch (from 0).
    pub batch: usize,
    /// Batches per epoch.
    pub batches: usize,
    /// Training loss of this batch.
    pub loss: f32,
    /// Training accuracy of this batch.
    pub acc: f32,
    /// Learning rate used.
    pub lr: f32,
    /// Training images per second over this step.
    pub img_per_s: f32,
    /// Global gradient norm (unscaled, before clipping).
    pub grad_norm: f32,
    /// The loss scale of this step (f16 mixed precision only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<f32>,
    /// Whether the optimizer step was skipped because a gradient overflowed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// Gradient norms of the weight layers (convolutions, classifier; weight
    /// and bias together), input to output, every `log_every` steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_grad_norms: Option<Vec<(String, f32)>>,
    /// Per-layer weight mean and standard deviation `(layer, mean, std)` of the
    /// weight tensors (rank >= 2), every `log_every` steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_weight_stats: Option<Vec<(String, f32, f32)>>,
    /// Fraction of exactly-zero outputs after the stem and each block (units a
    /// ReLU switched off), input to output, every `log_every` steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zero_activations: Option<Vec<(String, f32)>>,
}

/// Loss and accuracy over a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EvalStats {
    /// Mean cross-entropy.
    pub loss: f32,
    /// Fraction correct.
    pub acc: f32,
}

/// A model, its optimizer and its data.
pub struct Trainer {
    /// The run's configuration.
    pub config: TrainConfig,
    /// The model.
    pub model: ResNet,
    /// The optimizer.
    pub optimizer: Optimizer,
    /// Training batches.
    pub train: DataLoader,
    /// Completed epochs.
    pub epoch: u64,
    /// The dynamic loss scaler of an f16 mixed-precision run.
    pub scaler: Option<GradScaler>,
    dev: Device,
}

impl Trainer {
    /// Builds the model for `train`'s shape and classes, and its optimizer.
    pub fn new(config: TrainConfig, train: Arc<dyn Dataset>, dev: &Device) -> Result<Self> {
        if config.epochs == 0 || config.lr.is_nan() || config.lr <= 0.0 {
            return Err(Error::arg(
                "train",
                format!(
                    "epochs must be >= 1 and lr > 0, got {} and {}",
                    config.epochs, config.lr
                ),
            ));
        }
        let [c, _, _] = train.shape();
        let opts = ModelOptions {
            num_classes: Some(train.classes()),
            in_channels: Some(c),
            norm: Some(config.norm),
            act: Some(config.act),
            zero_init_residual: false,
        };
        let model = build(&config.model, opts, config.seed, dev)?;
        let optimizer = Optimizer::new(
            config.optimizer,
            named_tensors(&model),
            config.no_decay_norm_bias,
        );
        let scaler = config.amp.and_then(AmpDtype::loss_scaler);
        let mut loader = DataLoader::new(train, config.batch_size, true, true, config.seed)?;
        loader.transforms = config.transforms.clone();
        Ok(Trainer {
            config,
            model,
            optimizer,
            train: loader,
            epoch: 0,
            scaler,
            dev: dev.clone(),
        })
    }

    /// Total optimizer steps of the run.
    pub fn total_steps(&self) -> u64 {
        self.config.epochs * self.train.batches() as u64
    }

    /// Trains one epoch, calling `on_step` after every step. A loader thread
    /// prepares the next batch (decoded and augmented in parallel on rayon)
    /// while the model trains on the current one; batches are pure functions of
    /// `(seed, epoch, sample)`, so prefetching changes no result.
    pub fn train_epoch(&mut self, on_step: &mut dyn FnMut(&StepStats)) -> Result<()> {
        let order = self.train.order(self.epoch);
        let batches = self.train.batches();
        let (loader, dev, epoch) = (&self.train, self.dev.clone(), self.epoch);
        std::thread::scope(|scope| -> Result<()> {
            // One batch waits ready while the model trains on the current one.
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let order = &order;
            scope.spawn(move || {
                for b in 0..batches {
                    // The receiver is gone when the loop below stopped early.
                    if tx.send(loader.batch(order, epoch, b, &dev)).is_err() {
                        break;
                    }
                }
            });
            for b in 0..batches {
                let t0 = Instant::now();
                let batch = rx.recv().map_err(|_| Error::Argument {
                    op: "train",
                    msg: "the loader thread stopped".into(),
                })??;
                let step = self.optimizer.steps() + 1;
                let detailed =
                    self.config.log_every > 0 && step.is_multiple_of(self.config.log_every);
                if detailed {
                    residual_zoo::monitor::start();
                }
                // Under autocast the convolutions and the classifier compute
                // in half precision; norms and the loss stay in f32.
                let autocast = self
                    .config
                    .amp
                    .map(|a| AutocastGuard::new(a.dtype()))
                    .transpose()?;
                let logits = self.model.forward(&batch.images, Mode::Train);
                let zero_activations = detailed.then(residual_zoo::monitor::take);
                let logits = logits?;
                let loss = logits.cross_entropy(&batch.labels, self.config.label_smoothing)?;
                drop(autocast);
                let loss_scale = self.scaler.as_ref().map(|s| s.scale);
                let (mut grads, skipped) = scaler::backward(&loss, self.scaler.as_ref())?;
                let layer_grad_norms = detailed
                    .then(|| Self::layer_grad_norms(&self.optimizer, &grads))
                    .transpose()?;
                let layer_weight_stats = detailed
                    .then(|| Self::layer_weight_stats(&self.optimizer))
                    .transpose()?;
                let grad_norm = match self.config.clip_grad_norm {
                    Some(max) => clip_grad_norm(&mut grads, max)?,
                    None => clip_grad_norm(&mut grads, f32::INFINITY)?,
                };
                let lr = self
                    .config
                    .schedule
                    .lr(self.config.lr, self.optimizer.steps());
                // A step with an inf / NaN gradient is skipped, as GradScaler does.
                if !skipped {
                    self.optimizer.step(&grads, lr)?;
                }
                if let Some(s) = &mut self.scaler {
                    s.update(skipped);
                }
                let pred = logits.argmax(1)?;
                let correct = pred
                    .iter()
                    .zip(&batch.labels)
                    .filter(|(p, l)| p == l)
                    .count();
                on_step(&StepStats {
                    epoch: self.epoch,
                    step,
                    batch: b,
                    batches,
                    loss: loss.to_scalar()?,
                    acc: correct as f32 / batch.labels.len() as f32,
                    lr,
                    img_per_s: batch.labels.len() as f32 / t0.elapsed().as_secs_f32(),
                    grad_norm,
                    loss_scale,
                    skipped,
                    layer_grad_norms,
                    layer_weight_stats,
                    zero_activations,
                });
            }
            Ok(())
        })?;
        self.epoch += 1;
        Ok(())
    }

    /// Gradient norm per weight layer (convolutions and the classifier, each
    /// with its bias), input to output. Norm layers are left out: their tiny
    /// scale / shift gradients between the convolutions would turn a plot of
    /// gradient norm by depth into a zigzag.
    fn layer_grad_norms(
        optimizer: &Optimizer,
        grads: &residual_tensor::Gradients,
    ) -> Result<Vec<(String, f32)>> {
        // (layer, sum of squares, whether it holds a matrix / kernel)
        let mut out: Vec<(String, f64, bool)> = Vec::new();
        for (name, p) in optimizer.params() {
            let t = p.get();
            let Some(g) = grads.get(&t) else {
                continue;
            };
            let layer = name
                .rsplit_once('.')
                .map_or(name.as_str(), |(l, _)| l)
                .to_string();
            let sq: f64 = g.to_vec()?.iter().map(|&v| (v as f64) * (v as f64)).sum();
            let weight = t.rank() >= 2;
            match out.last_mut() {
                Some((l, s, w)) if *l == layer => {
                    *s += sq;
                    *w |= weight;
                }
                _ => out.push((layer, sq, weight)),
            }
        }
        Ok(out
            .into_iter()
            .filter(|e| e.2)
            .map(|(l, s, _)| (l, s.sqrt() as f32))
            .collect())
    }

    /// Mean and standard deviation of each layer's weight (conv and linear weights).
    fn layer_weight_stats(optimizer: &Optimizer) -> Result<Vec<(String, f32, f32)>> {
        let mut out = Vec::new();
        for (name, p) in optimizer.params() {
            let w = p.get();
            if w.rank() < 2 {
                continue;
            }
            let v = w.to_vec()?;
            let n = v.len().max(1) as f64;
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
            let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
            let layer = name
                .rsplit_once('.')
                .map_or(name.as_str(), |(l, _)| l)
                .to_string();
            out.push((layer, mean as f32, var.sqrt() as f32));
        }
        Ok(out)
    }

    /// Mean loss and accuracy on `data` in evaluation mode, with the run's
    /// preprocessing (its transforms without the random augmentation).
    pub fn evaluate(&self, data: Arc<dyn Dataset>, batch_size: usize) -> Result<EvalStats> {
        let prep: Vec<Transform> = self
            .config
            .transforms
            .iter()
            .filter(|t| !t.is_augmentation())
            .cloned()
            .collect();
        evaluate(&self.model, data, &prep, batch_size, &self.dev)
    }

    /// Saves weights and training state to `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let meta = CheckpointMeta {
            format: checkpoint::FORMAT.into(),
            epoch: self.epoch,
            optimizer_step: self.optimizer.steps(),
            config: self.config.clone(),
            scaler: self.scaler.clone(),
        };
        checkpoint::save(dir, &self.model, &self.optimizer, &meta)
    }

    /// Rebuilds a trainer from the checkpoint in `dir`, ready to continue.
    /// `epochs` may extend the run.
    pub fn resume(
        dir: &Path,
        train: Arc<dyn Dataset>,
        epochs: Option<u64>,
        dev: &Device,
    ) -> Result<Self> {
        let (meta, tensors) = checkpoint::read(dir, dev)?;
        let mut config = meta.config.clone();
        if let Some(e) = epochs {
            config.epochs = e;
        }
        let mut t = Trainer::new(config, train, dev)?;
        checkpoint::restore(&t.model, &mut t.optimizer, &meta, &tensors)?;
        t.epoch = meta.epoch;
        if t.scaler.is_some() {
            t.scaler = meta.scaler.clone().or(t.scaler);
        }
        Ok(t)
    }
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("config", &self.config)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// Mean cross-entropy and accuracy of `model` on `data` in evaluation mode:
/// each sample as [`Dataset::get`] reads it (no augmentation on decode), after
/// `transforms` (preprocessing only: no augmentation belongs here either).
pub fn evaluate(
    model: &dyn Module,
    data: Arc<dyn Dataset>,
    transforms: &[Transform],
    batch_size: usize,
    dev: &Device,
) -> Result<EvalStats> {
    let mut loader = DataLoader::new(data, batch_size, false, false, 0)?;
    loader.transforms = transforms.to_vec();
    loader.augment_on_decode = false;
    let order = loader.order(0);
    let (mut loss_sum, mut correct, mut n) = (0.0f64, 0usize, 0usize);
    for b in 0..loader.batches() {
        let batch = loader.batch(&order, 0, b, dev)?;
        let logits = no_grad(|| model.forward(&batch.images, Mode::Eval))?;
        let loss = no_grad(|| logits.cross_entropy(&batch.labels, 0.0))?.to_scalar()?;
        let k = batch.labels.len();
        loss_sum += loss as f64 * k as f64;
        correct += logits
            .argmax(1)?
            .iter()
            .zip(&batch.labels)
            .filter(|(p, l)| p == l)
            .count();
        n += k;
    }
    Ok(EvalStats {
        loss: (loss_sum / n.max(1) as f64) as f32,
        acc: correct as f32 / n.max(1) as f32,
    })
}
