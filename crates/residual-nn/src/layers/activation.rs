//! Activations as modules.

use crate::module::{Mode, Module, Visitor};
use residual_tensor::{Result, Tensor};

/// ReLU, GELU (exact erf) or SiLU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// `max(x, 0)`
    #[default]
    Relu,
    /// `x * Phi(x)`, PyTorch's default exact form.
    Gelu,
    /// `x * sigmoid(x)`
    Silu,
}

impl Activation {
    /// Applies the function.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Relu => x.relu(),
            Activation::Gelu => x.gelu(),
            Activation::Silu => x.silu(),
        }
    }
}

impl Module for Activation {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        self.apply(x)
    }
    fn visit(&self, _f: &mut Visitor<'_>) {}
}
