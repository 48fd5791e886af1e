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

/// How to build a [`Conv2d`]: channels and kernel size, then PyTorch's
/// keyword arguments with PyTorch's defaults (stride 1, padding 0, groups 1)
/// except the bias, which ResNets leave out and so is off by default.
///
/// ```
/// # use residual_nn::Conv2dConfig;
/// # let dev = residual_tensor::Device::cpu();
/// let stem = Conv2dConfig::new(3, 64, 7).stride(2).padding(3).init(0, &dev)?;
/// assert_eq!(stem.out_channels(), 64);
/// # Ok::<(), residual_tensor::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dConfig {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Square kernel size.
    pub kernel: usize,
    /// Stride (both directions).
    pub stride: usize,
    /// Zero padding (all sides).
    pub padding: usize,
    /// Channel groups.
    pub groups: usize,
    /// Whether the layer has a bias.
    pub bias: bool,
}

impl Conv2dConfig {
    /// A `kernel x kernel` convolution from `c_in` to `c_out` channels.
    pub fn new(c_in: usize, c_out: usize, kernel: usize) -> Self {
        Conv2dConfig {
            c_in,
            c_out,
            kernel,
            stride: 1,
            padding: 0,
            groups: 1,
            bias: false,
        }
    }
    /// Sets the stride.
    pub fn stride(self, stride: usize) -> Self {
        Conv2dConfig { stride, ..self }
    }
    /// Sets the zero padding.
    pub fn padding(self, padding: usize) -> Self {
        Conv2dConfig { padding, ..self }
    }
    /// Sets the channel groups.
    pub fn groups(self, groups: usize) -> Self {
        Conv2dConfig { groups, ..self }
    }
    /// Gives the layer a bias (initialised to zero).
    pub fn bias(self, bias: bool) -> Self {
        Conv2dConfig { bias, ..self }
    }

    /// Builds the layer, initialised as torchvision's ResNet (kaiming normal,
    /// fan_out, relu) from `seed`; the bias, if any, is zero.
    pub fn init(self, seed: u64, dev: &Device) -> Result<Conv2d> {
        let Conv2dConfig {
            c_in,
            c_out,
            kernel,
            groups,
            ..
        } = self;
        if groups == 0 || !c_in.is_multiple_of(groups) || !c_out.is_multiple_of(groups) {
            return Err(residual_tensor::Error::arg(
                "Conv2d",
                format!(
                    "in_channels {c_in} and out_channels {c_out} must divide by groups={groups}"
                ),
            ));
        }
        let w = init::kaiming_normal_fan_out(&[c_out, c_in / groups, kernel, kernel], seed, dev)?;
        let b = self
            .bias
            .then(|| Tensor::zeros([c_out], dev).map(Param::parameter))
            .transpose()?;
        Ok(Conv2d {
            weight: Param::parameter(w),
            bias: b,
            params: Conv2dParams::new(self.stride, self.padding, 1, groups),
        })
    }
}

impl Conv2d {
    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.get().dims()[0]
    }
}

impl Module for Conv2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let b = self.bias.as_ref().map(Param::get);
        let y = x.conv2d(&self.weight.get(), b.as_ref(), self.params)?;
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
