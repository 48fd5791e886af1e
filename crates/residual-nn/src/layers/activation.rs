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
    /// The elementwise op of the tensor core (for fused kernels).
    pub fn op(&self) -> residual_tensor::backend::UnaryOp {
        use residual_tensor::backend::UnaryOp;
        match self {
            Activation::Relu => UnaryOp::Relu,
            Activation::Gelu => UnaryOp::Gelu,
            Activation::Silu => UnaryOp::Silu,
        }
    }

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
        let y = self.apply(x)?;
        crate::trace::record(self, &y);
        Ok(y)
    }
    fn visit(&self, _f: &mut Visitor<'_>) {}
}
