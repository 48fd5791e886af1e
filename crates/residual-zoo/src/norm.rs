//! The norm after a convolution (batch norm, frozen batch norm or group norm)
//! and the activation of a ResNet, chosen by the config.

use crate::config::{ActKind, NormKind};
use residual_nn::*;
use residual_tensor::{Device, Result, Tensor};

/// The norm after a convolution: batch norm (trainable or frozen) or group norm.
pub enum Norm {
    /// BatchNorm2d.
    Batch(BatchNorm2d),
    /// GroupNorm.
    Group(GroupNorm),
}

impl Norm {
    /// The norm of kind `kind` over `c` channels.
    pub fn new(kind: NormKind, c: usize, dev: &Device) -> Result<Self> {
        Ok(match kind {
            NormKind::Batch => Norm::Batch(BatchNorm2d::new(c, BnMode::Normal, dev)?),
            NormKind::FrozenBatch => Norm::Batch(BatchNorm2d::new(c, BnMode::Frozen, dev)?),
            NormKind::Group => Norm::Group(GroupNorm::new(group_count(c), c, dev)?),
        })
    }
    /// The scale parameter (zeroed by `zero_init_residual`).
    pub fn weight(&self) -> &Param {
        match self {
            Norm::Batch(b) => &b.weight,
            Norm::Group(g) => &g.weight,
        }
    }
    fn inner(&self) -> &dyn Module {
        match self {
            Norm::Batch(b) => b,
            Norm::Group(g) => g,
        }
    }
}

/// 32 groups, or the largest divisor of `c` below that.
fn group_count(c: usize) -> usize {
    (1..=32.min(c))
        .rev()
        .find(|g| c.is_multiple_of(*g))
        .unwrap_or(1)
}

impl Module for Norm {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.inner().forward(x, mode)
    }
    /// The norm itself, under its own type: its tensors keep their names.
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![(String::new(), self.inner())]
    }
    fn kind(&self) -> String {
        self.inner().kind()
    }
}

/// The activation module of a kind.
pub fn activation(a: ActKind) -> Activation {
    match a {
        ActKind::Relu => Activation::Relu,
        ActKind::Gelu => Activation::Gelu,
        ActKind::Silu => Activation::Silu,
    }
}
