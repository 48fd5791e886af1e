//! What defines a run: [`TrainConfig`] (stored in every checkpoint) and the
//! mixed-precision dtype [`AmpDtype`].

use crate::data::Transform;
use crate::optim::OptimizerConfig;
use crate::scaler::GradScaler;
use crate::schedule::Schedule;
use residual_tensor::{DType, Device};
use residual_zoo::ModelConfig;
use serde::{Deserialize, Serialize};

/// Everything that defines a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The model as the user named it: a registered name or a config file.
    pub model: String,
    /// The model's config, family settings included; the trainer sets its
    /// input channels and classes from the training data.
    pub model_config: ModelConfig,
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
    /// Where the training data came from, as the front end named it, so that
    /// a resumed run reads the same data (`None` in checkpoints written
    /// before the data source was recorded, and for library users who pass a
    /// dataset of their own).
    #[serde(default)]
    pub data: Option<DataSource>,
    /// Data-parallel runs: batch norm with the statistics of the global batch
    /// (SyncBatchNorm) instead of each rank's own (DistributedDataParallel's
    /// default).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sync_bn: bool,
    /// Batch-norm recalibration after every epoch on this many training
    /// images read without augmentation ([`crate::precise_bn`]); 0 for none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub precise_bn: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// A dataset as `residual train --data` names it, recorded in the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSource {
    /// `mnist`, `mnist:DIR`, `cifar10:DIR`, `cifar100:DIR` or
    /// `imagefolder:DIR`, folders made absolute.
    pub data: String,
    /// A separate held-out folder (imagefolder).
    #[serde(default)]
    pub val: Option<std::path::PathBuf>,
    /// The input side (imagefolder); `None`: chosen from the images.
    #[serde(default)]
    pub image_size: Option<u32>,
    /// The random resized crops' area range (imagefolder); `None`: the
    /// recipe's own (see `data::ImageRecipe`).
    #[serde(default)]
    pub crop_scale: Option<[f64; 2]>,
    /// The fraction of the training split carved out as the validation set
    /// that the run evaluates on instead of the held-out split.
    #[serde(default)]
    pub val_fraction: Option<f64>,
    /// Whether that validation set is the last `val_fraction` of each class
    /// in the source's order (the bundled digits, whose held-out split was
    /// cut that way) rather than a seeded random share (every other dataset,
    /// and runs recorded before 2026-12-04, which lack the field).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub val_last: bool,
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
