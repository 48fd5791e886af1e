//! `Conv2d`, as `torch.nn.Conv2d` (weight `[out, in/groups, kh, kw]`).

use crate::init;
use crate::module::{Mode, Module, Visitor};
use crate::Param;
use residual_tensor::{Conv2dParams, Device, Result, Tensor};

/// A 2-D convolution layer.
#[derive(Debug, Clone)]
pub struct Conv2d {
    /// `[out, in/groups, kh, kw]`.
    pub weight: Param,
    /// `[out]`, if the layer has a bias.
    pub bias: Option<Param>,
    /// Stride, padding, dilation, groups.
    pub params: Conv2dParams,
}

impl Conv2d {
    /// A square-kernel convolution initialised as torchvision's ResNet
    /// (kaiming normal, fan_out, relu); the bias, if any, is zero.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        groups: usize,
        bias: bool,
        seed: u64,
        dev: &Device,
    ) -> Result<Self> {
        if groups == 0 || !c_in.is_multiple_of(groups) || !c_out.is_multiple_of(groups) {
            return Err(residual_tensor::Error::arg(
                "Conv2d",
                format!(
                    "in_channels {c_in} and out_channels {c_out} must divide by groups={groups}"
                ),
            ));
        }
        let w = init::kaiming_normal_fan_out(&[c_out, c_in / groups, kernel, kernel], seed, dev)?;
        let b = bias
            .then(|| Tensor::zeros([c_out], dev).map(Param::parameter))
            .transpose()?;
        Ok(Conv2d {
            weight: Param::parameter(w),
            bias: b,
            params: Conv2dParams::new(stride, padding, 1, groups),
        })
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.get().dims()[0]
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let b = self.bias.as_ref().map(Param::get);
        x.conv2d(&self.weight.get(), b.as_ref(), self.params)
    }
    fn visit(&self, f: &mut Visitor<'_>) {
        f("weight", &self.weight);
        if let Some(b) = &self.bias {
            f("bias", b);
        }
    }
}
