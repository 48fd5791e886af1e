//! The training loop: batches through [`train_step`] with the scheduled
//! learning rate; evaluation; checkpoints.

use crate::checkpoint::{self, CheckpointMeta};
use crate::config::{AmpDtype, TrainConfig};
use crate::data::{DataLoader, Dataset, Shard, Transform};
use crate::distributed::{self, Collective, Replicas, Solo};
use crate::monitor::Histogram;
use crate::optim::Optimizer;
use crate::precise_bn;
use crate::scaler::GradScaler;
use crate::step::{train_step, NonFinite, StepSettings};
use residual_nn::sync_bn::SyncBatchNormGuard;
use residual_nn::{named_tensors, Mode, Module};
use residual_tensor::{no_grad, Device, Error, Result, Tensor};
use residual_zoo::{inference_at, Model, ModelOptions, Precision};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

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
    /// Training loss of this batch (the global batch of a data-parallel run).
    pub loss: f32,
    /// Training accuracy of this batch (likewise).
    pub acc: f32,
    /// Learning rate used.
    pub lr: f32,
    /// Training images per second over this step (the global batch's, over
    /// every rank of a data-parallel run).
    pub img_per_s: f32,
    /// Global gradient norm (unscaled, before clipping).
    pub grad_norm: f32,
    /// The loss scale of this step (f16 mixed precision only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<f32>,
    /// Whether the optimizer step was skipped because a gradient overflowed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// Seconds of this step spent in the gradients' all-reduce (data-parallel
    /// runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comm_seconds: Option<f32>,
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
    /// Histograms of each parameter and its gradient (`weights/<param>`,
    /// `grads/<param>`), every `log_every` steps; for TensorBoard, not the log.
    #[serde(skip)]
    pub histograms: Option<Vec<(String, Histogram)>>,
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
    /// The model (any registered family).
    pub model: Box<dyn Model>,
    /// The optimizer.
    pub optimizer: Optimizer,
    /// Training batches.
    pub train: DataLoader,
    /// Completed epochs.
    pub epoch: u64,
    /// Batches of the current epoch already trained (a run stopped mid-epoch
    /// by Ctrl-C resumes at the next one).
    pub batch_in_epoch: usize,
    /// The dynamic loss scaler of an f16 mixed-precision run.
    pub scaler: Option<GradScaler>,
    dev: Device,
    /// The ranks of a data-parallel run ([`Solo`] alone).
    collective: Arc<dyn Collective>,
}

/// How [`Trainer::train_epoch_until`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochEnd {
    /// Every batch of the epoch was trained.
    Complete,
    /// The stop flag was raised: the epoch stopped after a whole step, at
    /// [`Trainer::batch_in_epoch`].
    Stopped,
}

/// The loss scale below which an f16 run is declared diverged: the scaler
/// has backed off 40 times from 2^16, so every step overflows whatever the
/// scale (a NaN loss, not a large gradient).
pub const MIN_LOSS_SCALE: f32 = 1.0 / (1u32 << 24) as f32;

impl Trainer {
    /// Builds the model for `train`'s shape and classes, and its optimizer.
    pub fn new(config: TrainConfig, train: Arc<dyn Dataset>, dev: &Device) -> Result<Self> {
        if config.epochs == 0 || !config.lr.is_finite() || config.lr <= 0.0 {
            return Err(Error::arg(
                "train",
                format!(
                    "epochs must be >= 1 and lr > 0, got {} and {}",
                    config.epochs, config.lr
                ),
            ));
        }
        let [c, _, _] = train.shape();
        let mut config = config;
        config.model_config.apply(&ModelOptions {
            num_classes: Some(train.classes()),
            in_channels: Some(c),
            settings: Vec::new(),
        })?;
        let model = config.model_config.build(config.seed, dev)?;
        let optimizer = Optimizer::new(
            config.optimizer,
            named_tensors(&*model),
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
            batch_in_epoch: 0,
            scaler,
            dev: dev.clone(),
            collective: Arc::new(Solo),
        })
    }

    /// Makes this trainer rank `c.rank()` of a data-parallel run over `c`
    /// (every rank calls it, with the same configuration and data): checks
    /// that the ranks' configurations agree, replaces the weights and buffers
    /// by rank 0's and checks that the training state (weights, buffers,
    /// optimizer moments and step, for a resumed run too) agrees; then each epoch this rank reads
    /// its shard ([`Shard`]) of every global batch of `config.batch_size`.
    /// The step count per epoch does not depend on the number of ranks, so a
    /// run may be resumed on any number of them.
    pub fn distribute(&mut self, c: Arc<dyn Collective>) -> Result<()> {
        let (rank, world) = (c.rank(), c.world_size());
        let mut setup = serde_json::to_value(&self.config)
            .map_err(|e| Error::arg("distributed", e.to_string()))?;
        if let Some(o) = setup.as_object_mut() {
            let data = self.train.dataset();
            o.insert("training samples".into(), data.len().into());
            o.insert("sample shape".into(), format!("{:?}", data.shape()).into());
            o.insert("completed epochs".into(), self.epoch.into());
            o.insert("optimizer steps".into(), self.optimizer.steps().into());
            o.insert("batch in epoch".into(), self.batch_in_epoch.into());
        }
        distributed::verify_config(&*c, &setup.to_string())?;
        let batch = self.config.batch_size;
        if world == 0 || !batch.is_multiple_of(world) {
            return Err(Error::arg(
                "--batch-size",
                format!(
                    "the global batch ({batch}) must be a multiple of the number of ranks \
                     ({world} processes or replicas): each takes an equal share"
                ),
            ));
        }
        distributed::broadcast_model(&*c, &*self.model)?;
        let sum = distributed::state_checksum(&*self.model, &self.optimizer)?;
        distributed::verify_same(&*c, "the training state at the start", sum)?;
        self.train.batch_size = batch / world;
        self.train.set_shard(Shard {
            rank,
            world,
            pad: true,
        })?;
        self.collective = c;
        Ok(())
    }

    /// Whether `stop` is raised on any rank (all-reduced in a data-parallel
    /// run, so that every rank makes the same choice between epochs).
    pub fn any_rank_stopping(&self, stop: &AtomicBool) -> Result<bool> {
        any_rank_raised(&*self.collective, stop)
    }

    /// The ranks this trainer trains with.
    pub fn collective(&self) -> &Arc<dyn Collective> {
        &self.collective
    }

    /// Total optimizer steps of the run.
    pub fn total_steps(&self) -> u64 {
        self.config
            .epochs
            .saturating_mul(self.train.batches() as u64)
    }

    /// Trains one epoch, calling `on_step` after every step. A loader thread
    /// prepares the next batch (decoded and augmented in parallel on rayon)
    /// while the model trains on the current one; batches are pure functions of
    /// `(seed, epoch, sample)`, so prefetching changes no result.
    pub fn train_epoch(&mut self, on_step: &mut dyn FnMut(&StepStats)) -> Result<()> {
        self.train_epoch_until(&AtomicBool::new(false), on_step)
            .map(|_| ())
    }

    /// [`Trainer::train_epoch`] from [`Trainer::batch_in_epoch`] on, checking
    /// `stop` after every step: when it is raised the epoch ends there
    /// ([`EpochEnd::Stopped`]), after a whole step, ready to be saved and
    /// resumed at the next batch.
    ///
    /// A step whose loss or gradient is not finite (without a loss scaler), or
    /// a loss scale that backed off below [`MIN_LOSS_SCALE`], stops training
    /// with an error naming the step, the loss, the learning rate and the
    /// first parameter whose gradient went non-finite; that step's update is
    /// not applied.
    pub fn train_epoch_until(
        &mut self,
        stop: &AtomicBool,
        on_step: &mut dyn FnMut(&StepStats),
    ) -> Result<EpochEnd> {
        let order = self.train.order(self.epoch);
        let batches = self.train.batches();
        let first = self.batch_in_epoch.min(batches);
        let (loader, dev, epoch) = (&self.train, self.dev.clone(), self.epoch);
        let settings = StepSettings::from(&self.config);
        let end = std::thread::scope(|scope| -> Result<EpochEnd> {
            // One batch waits ready while the model trains on the current one.
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let order = &order;
            scope.spawn(move || {
                for b in first..batches {
                    // The receiver is gone when the loop below stopped early.
                    if tx.send(loader.batch(order, epoch, b, &dev)).is_err() {
                        break;
                    }
                }
            });
            for b in first..batches {
                let t0 = Instant::now();
                let batch = rx.recv().map_err(|_| Error::Argument {
                    op: "train",
                    msg: "the loader thread stopped".into(),
                })??;
                let step = self.optimizer.steps() + 1;
                let detailed =
                    self.config.log_every > 0 && step.is_multiple_of(self.config.log_every);
                let lr = self
                    .config
                    .schedule
                    .lr(self.config.lr, self.optimizer.steps());
                let c = self.collective.clone();
                let parallel = c.world_size() > 1;
                if parallel && !self.config.sync_bn {
                    distributed::broadcast_buffers(&*c, &*self.model)?;
                }
                let sync = (parallel && self.config.sync_bn)
                    .then(|| SyncBatchNormGuard::new(Arc::new(Replicas(c.clone()))));
                let out = train_step(
                    &*self.model,
                    &mut self.optimizer,
                    self.scaler.as_mut(),
                    &batch,
                    &settings,
                    lr,
                    detailed,
                    &*c,
                )?;
                drop(sync);
                // The global batch's loss and accuracy, and whether any rank
                // was asked to stop.
                let k = batch.labels.len() as f32;
                let (loss, acc, images) = match parallel {
                    true => {
                        let mut sums = [out.loss * k, out.correct as f32, k];
                        c.all_reduce_sum(&mut sums)?;
                        let [loss_sum, correct, images] = sums;
                        (loss_sum / images, correct / images, images)
                    }
                    false => (out.loss, out.correct as f32 / k, k),
                };
                if parallel && step.is_multiple_of(distributed::CHECK_EVERY) {
                    // Per-rank batch statistics moved each rank's running
                    // ones: rank 0's are the run's (as before every step).
                    if !self.config.sync_bn {
                        distributed::broadcast_buffers(&*c, &*self.model)?;
                    }
                    let sum = distributed::state_checksum(&*self.model, &self.optimizer)?;
                    distributed::verify_same(
                        &*c,
                        &format!("the training state after step {step}"),
                        sum,
                    )?;
                }
                if let Some(nf) = &out.non_finite {
                    let at = (self.epoch, b, step, lr);
                    return Err(diverged(&*self.model, at, nf, &batch.images));
                }
                if let Some(scale) = out.loss_scale.filter(|&s| s < MIN_LOSS_SCALE) {
                    return Err(Error::arg(
                        "train",
                        format!(
                            "diverged at step {step} (epoch {}, batch {}): the loss scaler backed off to \
                             {scale:e}, every step overflowing (loss {}, learning rate {lr}); nothing was \
                             saved from this epoch: the last checkpoint is the last good one",
                            self.epoch + 1,
                            b + 1,
                            out.loss
                        ),
                    ));
                }
                let (layer_grad_norms, layer_weight_stats, zero_activations, histograms) =
                    match out.monitors {
                        Some(m) => (
                            Some(m.layer_grad_norms),
                            Some(m.layer_weight_stats),
                            Some(m.zero_activations),
                            Some(m.histograms),
                        ),
                        None => (None, None, None, None),
                    };
                self.batch_in_epoch = b + 1;
                on_step(&StepStats {
                    epoch: self.epoch,
                    step,
                    batch: b,
                    batches,
                    loss,
                    acc,
                    lr,
                    img_per_s: images / t0.elapsed().as_secs_f32(),
                    grad_norm: out.grad_norm,
                    loss_scale: out.loss_scale,
                    skipped: out.skipped,
                    comm_seconds: parallel.then_some(out.comm_seconds),
                    layer_grad_norms,
                    layer_weight_stats,
                    zero_activations,
                    histograms,
                });
                // Every rank stops when any was asked to.
                if any_rank_raised(&*c, stop)? && b + 1 < batches {
                    return Ok(EpochEnd::Stopped);
                }
            }
            Ok(EpochEnd::Complete)
        })?;
        if end == EpochEnd::Complete {
            self.recalibrate_batch_norm()?;
            self.epoch += 1;
            self.batch_in_epoch = 0;
        }
        Ok(end)
    }

    /// Mean loss and accuracy on `data` in evaluation mode, with the run's
    /// preprocessing (its transforms without the random augmentation). In a
    /// data-parallel run each rank evaluates its shard with rank 0's batch-norm
    /// running statistics and the sums are all-reduced: every rank gets the
    /// figures of the whole of `data`.
    pub fn evaluate(&self, data: Arc<dyn Dataset>, batch_size: usize) -> Result<EvalStats> {
        // Per-rank batch statistics left each rank its own running ones:
        // every rank evaluates with rank 0's (the checkpoint's).
        if self.collective.world_size() > 1 && !self.config.sync_bn {
            distributed::broadcast_buffers(&*self.collective, &*self.model)?;
        }
        evaluate_sharded(
            &*self.model,
            data,
            &self.preprocessing(),
            batch_size,
            &self.dev,
            &*self.collective,
        )
    }

    /// [`Trainer::evaluate`] on this rank alone, over the whole of `data`
    /// (no collective: for what one rank does by itself).
    pub fn evaluate_here(&self, data: Arc<dyn Dataset>, batch_size: usize) -> Result<EvalStats> {
        evaluate(
            &*self.model,
            data,
            &self.preprocessing(),
            batch_size,
            &self.dev,
        )
    }

    /// With [`TrainConfig::precise_bn`], recalibrates the batch norms on that
    /// many training images without augmentation (every rank together:
    /// [`precise_bn::recalibrate_batch_norm`]); the number of batches used.
    pub fn recalibrate_batch_norm(&self) -> Result<usize> {
        if self.config.precise_bn == 0 {
            return Ok(0);
        }
        precise_bn::recalibrate_batch_norm(
            &*self.model,
            self.train.dataset().clone(),
            &self.preprocessing(),
            self.config.precise_bn,
            self.config.batch_size,
            &self.dev,
            &*self.collective,
        )
    }

    /// The run's transforms without the random augmentation.
    fn preprocessing(&self) -> Vec<Transform> {
        self.config
            .transforms
            .iter()
            .filter(|t| !t.is_augmentation())
            .cloned()
            .collect()
    }

    /// Saves the training state to `dir`, then the weights (see
    /// [`checkpoint::save`]).
    pub fn save(&self, dir: &Path) -> Result<()> {
        checkpoint::save(dir, &*self.model, &self.optimizer, &self.meta())
    }

    /// Rebuilds a trainer from the checkpoint in `dir`, ready to continue.
    ///
    /// `epochs`: `None` continues to the run's own epoch count. `Some(n)`
    /// with more epochs than the run had extends it: a schedule shaped over
    /// the whole run (warmup + cosine, one-cycle) is reshaped over the new
    /// total and continues from the current step, as timm rebuilds its
    /// scheduler for a new epoch count (the learning rate jumps to where the
    /// longer schedule is at this step); step and multi-step schedules, which
    /// depend on the step alone, simply go on. Fewer epochs than the run
    /// already completed is an error.
    pub fn resume(
        dir: &Path,
        train: Arc<dyn Dataset>,
        epochs: Option<u64>,
        dev: &Device,
    ) -> Result<Self> {
        let (meta, tensors) = checkpoint::read(dir, dev)?;
        let mut config = meta.config.clone();
        if let Some(e) = epochs.filter(|&e| e != config.epochs) {
            if e < meta.epoch.max(1) {
                return Err(Error::arg(
                    "--epochs",
                    format!(
                        "the run in {} has completed {} of its {} epochs; --epochs {e} would end it \
                         before where it is (give more epochs to extend it, or leave --epochs out)",
                        dir.display(),
                        meta.epoch,
                        config.epochs
                    ),
                ));
            }
            let steps = (train.len() / config.batch_size.max(1)) as u64;
            let total = e.checked_mul(steps).ok_or_else(|| {
                Error::arg(
                    "--epochs",
                    format!("{e} epochs of {steps} steps overflow the step counter"),
                )
            })?;
            config.schedule = config.schedule.with_total(total);
            config.epochs = e;
        }
        let mut t = Trainer::new(config, train, dev)?;
        checkpoint::restore(&*t.model, &mut t.optimizer, &meta, &tensors)?;
        t.epoch = meta.epoch;
        t.batch_in_epoch = meta.batch_in_epoch as usize;
        if t.scaler.is_some() {
            t.scaler = meta.scaler.clone().or(t.scaler);
        }
        Ok(t)
    }

    /// Exports the model as `dir/model_best.safetensors` when `acc` (its
    /// held-out accuracy now) beats the best export there (see
    /// [`checkpoint::export_best`]). Returns whether it did.
    pub fn export_best(&self, dir: &Path, acc: f32) -> Result<bool> {
        checkpoint::export_best(dir, &*self.model, &self.meta(), acc)
    }

    /// The checkpoint metadata of the trainer as it is now.
    fn meta(&self) -> CheckpointMeta {
        CheckpointMeta {
            format: checkpoint::FORMAT.into(),
            epoch: self.epoch,
            optimizer_step: self.optimizer.steps(),
            batch_in_epoch: self.batch_in_epoch as u64,
            config: self.config.clone(),
            scaler: self.scaler.clone(),
        }
    }

    /// Rewrites `dir`'s exports (`model.safetensors`, `model.json`) from this
    /// trainer when they are not those of its checkpoint: a run killed
    /// between writing the state and the exports left them one checkpoint
    /// behind. Returns whether they were rewritten.
    pub fn repair_exports(&self, dir: &Path) -> Result<bool> {
        let meta = self.meta();
        if checkpoint::export_is_current(dir, &meta) {
            return Ok(false);
        }
        checkpoint::export_model(dir, &*self.model, &meta)?;
        Ok(true)
    }
}

/// Whether `flag` is raised on any rank of `c` (all-reduced over several).
fn any_rank_raised(c: &dyn Collective, flag: &AtomicBool) -> Result<bool> {
    let mut raised = [flag.load(Ordering::SeqCst) as u8 as f32];
    if c.world_size() > 1 {
        c.all_reduce_sum(&mut raised)?;
    }
    Ok(raised[0] > 0.0)
}

/// The error of a diverged step at `(epoch, batch, step, learning rate)`:
/// the loss and rate, the first parameter whose gradient went non-finite
/// and, when the loss itself is not finite, the first block of `model` whose
/// output on `images` was not.
fn diverged(
    model: &dyn Model,
    (epoch, batch, step, lr): (u64, usize, u64, f32),
    nf: &NonFinite,
    images: &residual_tensor::Tensor,
) -> Error {
    let mut where_ = match &nf.first_gradient {
        Some(p) => format!("the first non-finite gradient (from the output back) is {p}'s"),
        None => "every gradient is finite".into(),
    };
    if !nf.loss.is_finite() {
        let taps = no_grad(|| model.forward_intermediates(images, Mode::Eval));
        let first_tap = taps.ok().and_then(|out| {
            out.taps.into_iter().find_map(|(name, t)| {
                let bad = t.to_vec().ok()?.iter().any(|v| !v.is_finite());
                bad.then_some(name)
            })
        });
        if let Some(tap) = first_tap {
            where_.push_str(&format!("; the first non-finite activation is after {tap}"));
        }
    }
    Error::arg(
        "train",
        format!(
            "diverged at step {step} (epoch {}, batch {}): loss {} at learning rate {lr}; {where_}. \
             The update was not applied and nothing was saved from this epoch: the last checkpoint \
             is the last good one. Start again with a lower --lr or with --clip-grad-norm",
            epoch + 1,
            batch + 1,
            nf.loss
        ),
    )
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("config", &self.config)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// Mean cross-entropy and accuracy of `model` on `data` in evaluation mode,
/// through the inference pass ([`residual_zoo::inference`]: batch norm
/// folded, fused epilogues): each sample as [`Dataset::get`] reads it (no
/// augmentation on decode), after `transforms` (preprocessing only: no
/// augmentation belongs here either).
pub fn evaluate(
    model: &dyn Model,
    data: Arc<dyn Dataset>,
    transforms: &[Transform],
    batch_size: usize,
    dev: &Device,
) -> Result<EvalStats> {
    evaluate_sharded(model, data, transforms, batch_size, dev, &Solo)
}

/// [`evaluate`] over the ranks of `c`: each evaluates its disjoint shard of
/// `data` ([`Shard`] without padding, so every sample counts once) and the
/// loss sums and counts are all-reduced.
pub fn evaluate_sharded(
    model: &dyn Model,
    data: Arc<dyn Dataset>,
    transforms: &[Transform],
    batch_size: usize,
    dev: &Device,
    c: &dyn Collective,
) -> Result<EvalStats> {
    evaluate_at(model, Precision::F32, data, transforms, batch_size, dev, c)
}

/// [`evaluate_sharded`] through the inference pass at `precision`
/// ([`residual_zoo::inference_at`]).
pub fn evaluate_at(
    model: &dyn Model,
    precision: Precision,
    data: Arc<dyn Dataset>,
    transforms: &[Transform],
    batch_size: usize,
    dev: &Device,
    c: &dyn Collective,
) -> Result<EvalStats> {
    let model = inference_at(model, precision)?;
    let mut sums = EvalSums::default();
    for_each_eval_batch(data, transforms, batch_size, dev, c, |batch| {
        let logits = no_grad(|| model.forward(&batch.images, Mode::Eval))?;
        sums.add(&logits, &batch.labels)?;
        Ok(())
    })?;
    if c.world_size() > 1 {
        let mut v = [sums.loss_sum as f32, sums.correct as f32, sums.n as f32];
        c.all_reduce_sum(&mut v)?;
        let [loss_sum, correct, count] = v;
        return Ok(EvalStats {
            loss: loss_sum / count.max(1.0),
            acc: correct / count.max(1.0),
        });
    }
    Ok(sums.stats())
}

/// Runs `f` on every batch of this rank's shard of `data` in order, as the
/// evaluation reads it: no shuffling, no augmentation, `transforms` applied.
pub(crate) fn for_each_eval_batch(
    data: Arc<dyn Dataset>,
    transforms: &[Transform],
    batch_size: usize,
    dev: &Device,
    c: &dyn Collective,
    mut f: impl FnMut(&crate::data::Batch) -> Result<()>,
) -> Result<()> {
    if data.is_empty() {
        return Err(Error::arg(
            "evaluate",
            "the dataset has no samples: there is nothing to evaluate (an empty held-out split?)",
        ));
    }
    let mut loader = DataLoader::new(data, batch_size, false, false, 0)?;
    loader.transforms = transforms.to_vec();
    loader.augment_on_decode = false;
    loader.set_shard(Shard {
        rank: c.rank(),
        world: c.world_size(),
        pad: false,
    })?;
    let order = loader.order(0);
    for b in 0..loader.batches() {
        f(&loader.batch(&order, 0, b, dev)?)?;
    }
    Ok(())
}

/// Running sums of an evaluation: cross-entropy, correct predictions, samples.
#[derive(Default)]
pub(crate) struct EvalSums {
    loss_sum: f64,
    correct: usize,
    n: usize,
}

impl EvalSums {
    /// Adds a batch's logits `[B, classes]` against its labels.
    pub(crate) fn add(&mut self, logits: &Tensor, labels: &[usize]) -> Result<()> {
        let loss = no_grad(|| logits.cross_entropy(labels, 0.0))?.to_scalar()?;
        let k = labels.len();
        self.loss_sum += loss as f64 * k as f64;
        self.correct += logits
            .argmax(1)?
            .iter()
            .zip(labels)
            .filter(|(p, l)| p == l)
            .count();
        self.n += k;
        Ok(())
    }

    /// Mean loss and accuracy so far.
    pub(crate) fn stats(&self) -> EvalStats {
        EvalStats {
            loss: (self.loss_sum / self.n.max(1) as f64) as f32,
            acc: self.correct as f32 / self.n.max(1) as f32,
        }
    }
}
