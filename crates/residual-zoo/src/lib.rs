//! # residual-zoo
//!
//! The ResNet family: torchvision's `resnet18/34/50/101/152` (same parameter
//! names and shapes, so torchvision weights load one to one), the CIFAR
//! ResNets of the original paper (`resnet20/32/44/56/110`) and their plain
//! twins (`plain20/...`, no shortcuts). A model is a [`ResNetConfig`]; the
//! named models are presets; [`build`] makes one by name.

mod block;
mod config;
mod conv_norm;
pub mod monitor;
mod resnet;
mod summary;

pub use block::{residual_add, Block, BlockSpec, Norm};
pub use config::{ActKind, BlockKind, NormKind, ResNetConfig, StemKind, PRESETS};
pub use conv_norm::{conv_output_shape, ConvNorm};
pub use resnet::ResNet;
pub use summary::{thousands, Summary, SummaryRow};

use residual_tensor::{Device, Result};

/// Options that apply to any preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ModelOptions {
    /// Output classes (the preset's default when `None`: 1000 ImageNet, 10 CIFAR).
    pub num_classes: Option<usize>,
    /// Input channels (the preset's default, 3, when `None`).
    pub in_channels: Option<usize>,
    /// Normalisation (the preset's batch norm when `None`).
    pub norm: Option<NormKind>,
    /// Activation (ReLU when `None`).
    pub act: Option<ActKind>,
    /// Zero-init the last norm of each block.
    pub zero_init_residual: bool,
}

/// The config of preset `name` with `opts` applied.
pub fn config(name: &str, opts: ModelOptions) -> Result<ResNetConfig> {
    let mut c = ResNetConfig::preset(name)?;
    if let Some(n) = opts.num_classes {
        c.num_classes = n;
    }
    if let Some(n) = opts.in_channels {
        c.in_channels = n;
    }
    if let Some(n) = opts.norm {
        c.norm = n;
    }
    if let Some(a) = opts.act {
        c.act = a;
    }
    c.zero_init_residual |= opts.zero_init_residual;
    c.validate()?;
    Ok(c)
}

/// Builds preset `name` (see [`PRESETS`]) with torchvision's initialisation from `seed`.
pub fn build(name: &str, opts: ModelOptions, seed: u64, dev: &Device) -> Result<ResNet> {
    ResNet::new(&config(name, opts)?, seed, dev)
}
