//! `Linear`, as `torch.nn.Linear` (weight `[out, in]`).

use crate::init;
use crate::module::{Mode, Module, Visitor};
use crate::Param;
use residual_tensor::{Device, Result, Tensor};

/// A fully connected layer: `y = x @ weight^T + bias`.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[out, in]`.
    pub weight: Param,
    /// `[out]`.
    pub bias: Option<Param>,
}

impl Linear {
    /// PyTorch's default init: weight and bias uniform in `±1/sqrt(in)`.
    pub fn new(c_in: usize, c_out: usize, bias: bool, seed: u64, dev: &Device) -> Result<Self> {
        let w = init::default_uniform(&[c_out, c_in], c_in, seed, dev)?;
        let b = bias
            .then(|| {
                init::default_uniform(&[c_out], c_in, init::derive_seed(seed, 1), dev)
                    .map(Param::parameter)
            })
            .transpose()?;
        Ok(Linear {
            weight: Param::parameter(w),
            bias: b,
        })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let b = self.bias.as_ref().map(Param::get);
        let y = x.linear(&self.weight.get(), b.as_ref())?;
        crate::trace::record(self, &y);
        Ok(y)
    }
    fn visit(&self, f: &mut Visitor<'_>) {
        f("weight", &self.weight);
        if let Some(b) = &self.bias {
            f("bias", b);
        }
    }
}
