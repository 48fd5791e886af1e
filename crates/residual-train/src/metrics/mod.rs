//! Prometheus metrics of a training run: the figures TensorBoard gets
//! (loss, accuracy, learning rate, loss scale, throughput, gradient norms,
//! per-layer gradient flow, weight statistics, dead units, held-out figures)
//! as gauges and counters of one [`Registry`], every series labelled with
//! the run, plus the process's own CPU, memory, threads and files
//! ([`process`]); [`server`] serves them at `GET /metrics`.
//!
//! Names (all prefixed `residual_`; the `run` label on every series):
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `train_loss`, `train_accuracy` | gauge | | the last step's batch figures |
//! | `learning_rate`, `grad_norm`, `loss_scale` | gauge | | the last step's (loss scale: f16 only) |
//! | `train_images_per_second` | gauge | | the last step's throughput |
//! | `step`, `epoch`, `planned_steps` | gauge | | optimizer steps taken (from the run's start, resumes included), epochs completed, the run's length |
//! | `train_images_total`, `skipped_steps_total` | counter | | images trained and steps skipped (overflow) by this process |
//! | `epoch_train_loss`, `epoch_train_accuracy` | gauge | | means over the last completed epoch |
//! | `eval_loss`, `eval_accuracy` | gauge | | held-out (with `--val-fraction`: validation) figures after the last epoch |
//! | `layer_grad_norm` | gauge | `layer`, `depth` | gradient norm of each weight layer, every `log_every` steps |
//! | `layer_weight_mean`, `layer_weight_std` | gauge | `layer`, `depth` | each weight's mean and standard deviation |
//! | `zero_activation_fraction` | gauge | `block`, `depth` | exactly-zero outputs after the stem and each block |
//! | `run_info` | gauge (1) | `model`, `device` | what the run trains |
//!
//! `depth` is the index from the input (`000`) to the output, zero-padded so
//! that sorting by the label sorts by depth: of weight layers for the
//! `layer_*` gauges, of the stem and blocks for `zero_activation_fraction`.
//! The per-epoch gauges are NaN until the first epoch ends.

pub mod process;
pub mod server;

use crate::trainer::StepStats;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::sync::atomic::AtomicU64;

/// A gauge of an `f64`.
type FloatGauge = Gauge<f64, AtomicU64>;
/// Label pairs of a per-layer series.
type Labels = Vec<(String, String)>;
/// A per-layer (per-block) family of gauges.
type LayerGauges = Family<Labels, FloatGauge>;

/// What a run reports (see the module docs for the names): handles to the
/// gauges and counters of one registry. Updating them is a few atomic
/// stores; a scrape reads them from another thread.
#[derive(Debug, Clone, Default)]
pub struct TrainMetrics {
    loss: FloatGauge,
    acc: FloatGauge,
    lr: FloatGauge,
    grad_norm: FloatGauge,
    loss_scale: FloatGauge,
    img_per_s: FloatGauge,
    step: FloatGauge,
    epoch: FloatGauge,
    planned_steps: FloatGauge,
    images: Counter,
    skipped: Counter,
    epoch_loss: FloatGauge,
    epoch_acc: FloatGauge,
    eval_loss: FloatGauge,
    eval_acc: FloatGauge,
    layer_grad_norm: LayerGauges,
    layer_weight_mean: LayerGauges,
    layer_weight_std: LayerGauges,
    zero_fraction: LayerGauges,
    info: Family<Labels, Gauge>,
}

/// The figures of a completed epoch.
#[derive(Debug, Clone, Copy)]
pub struct EpochMetrics {
    /// Epochs completed.
    pub epoch: u64,
    /// Mean training loss over the epoch's steps.
    pub train_loss: f32,
    /// Mean training accuracy over the epoch's steps.
    pub train_acc: f32,
    /// Held-out loss.
    pub eval_loss: f32,
    /// Held-out accuracy.
    pub eval_acc: f32,
}

/// A series' labels: its layer (or block) and its depth, zero-padded to
/// three digits so that label order is depth order (`007` before `010`).
fn labels(kind: &str, name: &str, depth: usize) -> Labels {
    vec![
        (kind.to_string(), name.to_string()),
        ("depth".to_string(), format!("{depth:03}")),
    ]
}

impl TrainMetrics {
    /// The run's metrics, registered in a new registry whose every series
    /// carries `run="<run>"`, with the process collector beside them.
    /// `model` and `device` go into `residual_run_info`.
    pub fn new(run: &str, model: &str, device: &str) -> (Self, Registry) {
        let run_label = (Cow::Borrowed("run"), Cow::Owned(run.to_string()));
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessCollector));
        let reg = root.sub_registry_with_prefix("residual");
        let reg = reg.sub_registry_with_label(run_label);
        let m = TrainMetrics::default();
        let gauges: [(&str, &str, &FloatGauge); 13] = [
            (
                "train_loss",
                "Training loss of the last step's batch",
                &m.loss,
            ),
            (
                "train_accuracy",
                "Training accuracy of the last step's batch",
                &m.acc,
            ),
            ("learning_rate", "Learning rate of the last step", &m.lr),
            (
                "grad_norm",
                "Global gradient L2 norm of the last step (unscaled, before clipping)",
                &m.grad_norm,
            ),
            (
                "loss_scale",
                "Dynamic loss scale of the last step (f16 mixed precision; 0 otherwise)",
                &m.loss_scale,
            ),
            (
                "train_images_per_second",
                "Training throughput of the last step",
                &m.img_per_s,
            ),
            (
                "step",
                "Optimizer steps taken since the run started (a resumed run continues its count)",
                &m.step,
            ),
            ("epoch", "Epochs completed", &m.epoch),
            (
                "planned_steps",
                "Optimizer steps the whole run takes",
                &m.planned_steps,
            ),
            (
                "epoch_train_loss",
                "Mean training loss over the last completed epoch; NaN before the first",
                &m.epoch_loss,
            ),
            (
                "epoch_train_accuracy",
                "Mean training accuracy over the last completed epoch; NaN before the first",
                &m.epoch_acc,
            ),
            (
                "eval_loss",
                "Held-out (with --val-fraction: validation) loss after the last completed epoch; NaN before the first",
                &m.eval_loss,
            ),
            (
                "eval_accuracy",
                "Held-out (with --val-fraction: validation) accuracy after the last completed epoch; NaN before the first",
                &m.eval_acc,
            ),
        ];
        for (name, help, g) in gauges {
            reg.register(name, help, g.clone());
        }
        // No epoch has ended yet: NaN (a gap in Grafana), not a 0% accuracy.
        for g in [&m.epoch_loss, &m.epoch_acc, &m.eval_loss, &m.eval_acc] {
            g.set(f64::NAN);
        }
        reg.register(
            "train_images",
            "Training images processed by this process",
            m.images.clone(),
        );
        reg.register(
            "skipped_steps",
            "Optimizer steps skipped by this process because a gradient overflowed",
            m.skipped.clone(),
        );
        let families: [(&str, &str, &LayerGauges); 4] = [
            ("layer_grad_norm", "Gradient L2 norm of each weight layer (weight and bias), every log_every steps", &m.layer_grad_norm),
            ("layer_weight_mean", "Mean of each layer's weight, every log_every steps", &m.layer_weight_mean),
            ("layer_weight_std", "Standard deviation of each layer's weight, every log_every steps", &m.layer_weight_std),
            ("zero_activation_fraction", "Fraction of exactly-zero outputs after the stem and each block, every log_every steps", &m.zero_fraction),
        ];
        for (name, help, f) in families {
            reg.register(name, help, f.clone());
        }
        reg.register("run_info", "What the run trains (always 1)", m.info.clone());
        m.info
            .get_or_create(&vec![
                ("model".to_string(), model.to_string()),
                ("device".to_string(), device.to_string()),
            ])
            .set(1);
        (m, root)
    }

    /// Sets the run's length and where it stands before its first step (a
    /// resumed run starts at its checkpoint).
    pub fn start(&self, planned_steps: u64, step: u64, epoch: u64) {
        self.planned_steps.set(planned_steps as f64);
        self.step.set(step as f64);
        self.epoch.set(epoch as f64);
    }

    /// One optimizer step's figures, and on monitored steps the per-layer ones.
    pub fn step(&self, s: &StepStats, batch_size: usize) {
        self.loss.set(s.loss as f64);
        self.acc.set(s.acc as f64);
        self.lr.set(s.lr as f64);
        self.grad_norm.set(s.grad_norm as f64);
        self.loss_scale.set(s.loss_scale.unwrap_or(0.0) as f64);
        self.img_per_s.set(s.img_per_s as f64);
        self.step.set(s.step as f64);
        self.images.inc_by(batch_size as u64);
        if s.skipped {
            self.skipped.inc();
        }
        for (depth, (layer, norm)) in s.layer_grad_norms.iter().flatten().enumerate() {
            let l = labels("layer", layer, depth);
            self.layer_grad_norm.get_or_create(&l).set(*norm as f64);
        }
        for (depth, (layer, mean, std)) in s.layer_weight_stats.iter().flatten().enumerate() {
            let l = labels("layer", layer, depth);
            self.layer_weight_mean.get_or_create(&l).set(*mean as f64);
            self.layer_weight_std.get_or_create(&l).set(*std as f64);
        }
        for (depth, (block, zeros)) in s.zero_activations.iter().flatten().enumerate() {
            let l = labels("block", block, depth);
            self.zero_fraction.get_or_create(&l).set(*zeros as f64);
        }
    }

    /// A completed epoch's figures.
    pub fn epoch(&self, e: &EpochMetrics) {
        self.epoch.set(e.epoch as f64);
        self.epoch_loss.set(e.train_loss as f64);
        self.epoch_acc.set(e.train_acc as f64);
        self.eval_loss.set(e.eval_loss as f64);
        self.eval_acc.set(e.eval_acc as f64);
    }
}

#[cfg(test)]
mod tests;
