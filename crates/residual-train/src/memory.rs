//! What a training run will need in memory, estimated before it allocates,
//! so that a batch or image size that cannot fit is refused with the figures
//! instead of ending in an out-of-memory kill minutes later.
//!
//! The activations come from real forwards: a copy of the model runs a
//! training forward on two and on four samples (at most 64x64, the figure
//! per sample then scaled to the real image area, which is how a
//! convolutional network's activations grow) while [`SavedBytesCounter`]
//! adds up the outputs the autograd graph keeps for backward. Backward frees
//! those activations layer by layer as it creates their gradients, and adds
//! the convolutions' unfold buffers; the parameters come with their
//! gradients and the optimizer's state.

use crate::config::TrainConfig;
use crate::optim::OptimizerConfig;
use residual_nn::{named_tensors, Mode};
use residual_tensor::saved::SavedBytesCounter;
use residual_tensor::{AutocastGuard, Device, Error, Result, Tensor};
use residual_zoo::ModelOptions;

/// The side the activation probe runs at, at most.
const PROBE_SIDE: usize = 64;

/// Backward's peak over the forward's saved activations: each layer's
/// activations are freed as its backward runs, while gradients of the same
/// sizes are created layer by layer, so the peak stays close to the
/// activations at the start of backward (measured: see docs/reliability.md).
const BACKWARD_FACTOR: f64 = 1.1;

/// The two batch sizes of the probe: their difference gives the bytes per
/// sample, the rest (the weights' half copies under autocast) does not grow
/// with the batch or the image. Two samples, not one, so that batch norm has
/// more than one value per channel even where a stage is 1x1.
const PROBE_BATCHES: [usize; 2] = [2, 4];

/// What a run holds besides the model and the batch: the code, thread
/// stacks, the loaded dataset's index or images, the convolutions' bounded
/// unfold buffers (measured: see docs/reliability.md).
const RUNTIME_BYTES: u64 = 200_000_000;

/// Batches of input alive at once: the one training, the one the loader
/// thread has ready, the one it is preparing.
const INPUT_BATCHES: u64 = 3;

/// A training run's memory, estimated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryEstimate {
    /// Bytes per sample of the batch: activations kept for backward (with
    /// backward's peak over them) and the sample's input copies.
    pub per_sample: u64,
    /// Bytes that do not grow with the batch: parameters, their gradients,
    /// the optimizer's state and a working copy, the runtime's own, and
    /// what the graph keeps once per step (the weights' half copies under
    /// autocast).
    pub fixed: u64,
    /// Samples per batch.
    pub batch: usize,
}

impl MemoryEstimate {
    /// The estimated peak, in bytes.
    pub fn total(&self) -> u64 {
        self.fixed
            .saturating_add(self.per_sample.saturating_mul(self.batch as u64))
    }

    /// The largest batch whose estimate fits in `budget` bytes (0 when even
    /// the fixed part does not).
    pub fn max_batch(&self, budget: u64) -> u64 {
        budget.saturating_sub(self.fixed) / self.per_sample.max(1)
    }

    /// An error when the estimate exceeds `available` bytes, naming the
    /// estimate, its parts, what is available and the largest batch that fits.
    pub fn check_fits(&self, available: u64, what: &str) -> Result<()> {
        if self.total() <= available {
            return Ok(());
        }
        let fits = self.max_batch(available);
        let advice = if fits > 0 {
            format!("a batch size of at most {fits} fits")
        } else {
            "the model's parameters and optimizer state alone do not fit".into()
        };
        Err(Error::arg(
            "train",
            format!(
                "{what} needs about {} to train (activations {} per sample x batch {}, \
                 parameters, gradients, optimizer state, runtime and per-step copies {}), and this machine has {} \
                 available: {advice}, or use smaller images",
                human(self.total()),
                human(self.per_sample),
                self.batch,
                human(self.fixed),
                human(available)
            ),
        ))
    }
}

/// Bytes as a person reads them: "812 MB", "14.2 GB".
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else {
        format!("{:.0} KB", (b / 1e3).ceil())
    }
}

/// Estimates the memory of training `config` on samples of `shape`
/// (`[channels, height, width]`) with `classes` classes, by a probe forward
/// of a fresh copy of the model on `dev` (the run's own model and its
/// running statistics are not touched).
pub fn estimate_training(
    config: &TrainConfig,
    shape: [usize; 3],
    classes: usize,
    dev: &Device,
) -> Result<MemoryEstimate> {
    let [c, h, w] = shape;
    let mut model_config = config.model_config.clone();
    model_config.apply(&ModelOptions {
        num_classes: Some(classes),
        in_channels: Some(c),
        settings: Vec::new(),
    })?;
    let model = model_config.build(config.seed, dev)?;
    let params: u64 = named_tensors(&*model)
        .iter()
        .map(|(_, t)| t.get().numel() as u64)
        .sum();
    let states = match config.optimizer {
        OptimizerConfig::Sgd { momentum, .. } => u64::from(momentum != 0.0),
        OptimizerConfig::AdamW { .. } => 2,
    };
    // Weights, gradients, optimizer state, and one working copy (the
    // gradient-norm and update temporaries; the weights' half copies under
    // autocast, which the graph keeps, are counted by the probes below).
    let fixed = params * 4 * (3 + states) + RUNTIME_BYTES;
    let (ph, pw) = (h.min(PROBE_SIDE), w.min(PROBE_SIDE));
    let saved = |probe: usize| -> Result<u64> {
        let x = Tensor::zeros([probe, c, ph, pw], dev)?;
        let _autocast = config
            .amp
            .map(|a| AutocastGuard::new(a.dtype()))
            .transpose()?;
        let counter = SavedBytesCounter::start();
        let logits = model.forward(&x, Mode::Train)?;
        let _loss = logits.cross_entropy(&vec![0; probe], 0.0)?;
        Ok(counter.count())
    };
    let [small, large] = PROBE_BATCHES;
    let (saved_small, saved_large) = (saved(small)?, saved(large)?);
    let probe_per_sample = saved_large.saturating_sub(saved_small) as f64 / (large - small) as f64;
    let per_batch = (saved_small as f64 - probe_per_sample * small as f64).max(0.0);
    let area = (h * w) as f64 / (ph * pw) as f64;
    let activations = probe_per_sample * area * BACKWARD_FACTOR;
    let input = INPUT_BATCHES * (c * h * w * 4) as u64;
    Ok(MemoryEstimate {
        per_sample: (activations as u64).saturating_add(input),
        fixed: fixed.saturating_add(per_batch as u64),
        batch: config.batch_size,
    })
}

/// The memory the system can give a new allocation now (Linux's
/// `MemAvailable`), or `None` where it cannot be read.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_fitting_batch_and_the_refusal_name_the_figures() {
        let e = MemoryEstimate {
            per_sample: 10_000_000,
            fixed: 60_000_000,
            batch: 100,
        };
        assert_eq!(e.total(), 1_060_000_000);
        assert_eq!(e.max_batch(1_060_000_000), 100);
        assert_eq!(e.max_batch(40_000_000), 0);
        assert!(e.check_fits(2_000_000_000, "x").is_ok());
        let err = e
            .check_fits(500_000_000, "resnet110 on 1x32x32")
            .unwrap_err();
        let msg = err.to_string();
        for part in [
            "1.1 GB",
            "10 MB per sample",
            "batch 100",
            "500 MB",
            "at most 44",
        ] {
            assert!(msg.contains(part), "{part}: {msg}");
        }
        assert_eq!(human(1_500), "2 KB");
    }

    #[test]
    fn available_memory_is_read_on_linux() {
        if std::path::Path::new("/proc/meminfo").exists() {
            assert!(available_memory().is_some_and(|b| b > 0));
        }
    }
}
