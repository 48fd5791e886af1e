//! Weight-standardised convolution with TensorFlow "SAME" padding: timm's
//! `StdConv2dSame` (`layers/std_conv.py`), the convolution of BiT and of the
//! ViT hybrids' ResNetV2 backbones.

use super::padding::{is_static_same, same_padding_2d};
use crate::init;
use crate::module::{Mode, Module, Visitor};
use crate::Param;
use residual_tensor::{Conv2dParams, Device, Error, Result, Tensor};

/// A convolution whose weight is standardised per output channel before
/// every use: `w_hat = (w - mean) / sqrt(var + eps)` over `[in/groups, kh, kw]`
/// (the biased variance, as timm computes it with `F.batch_norm`), and whose
/// padding is TensorFlow's SAME (computed from the input's size when the
/// stride makes it depend on it). Training differentiates through the
/// standardisation.
#[derive(Debug, Clone)]
pub struct StdConv2dSame {
    /// `[out, in/groups, kh, kw]` (the raw, unstandardised weight, as saved).
    pub weight: Param,
    /// `[out]`, if the layer has a bias.
    pub bias: Option<Param>,
    /// Stride (both directions).
    pub stride: usize,
    /// Dilation (both directions).
    pub dilation: usize,
    /// Channel groups.
    pub groups: usize,
    /// Added to the variance (timm's hybrids: `1e-8`; BiT: `1e-6`).
    pub eps: f32,
}

impl StdConv2dSame {
    /// A `kernel x kernel` layer from `c_in` to `c_out` channels without a
    /// bias, its weight drawn as torchvision's conv init (kaiming normal,
    /// fan_out) from `seed` (the standardisation makes the scale irrelevant).
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        eps: f32,
        seed: u64,
        dev: &Device,
    ) -> Result<Self> {
        if c_in == 0 || c_out == 0 || kernel == 0 || stride == 0 {
            return Err(Error::arg(
                "StdConv2dSame",
                format!("channels, kernel and stride must be >= 1, got in {c_in}, out {c_out}, kernel {kernel}, stride {stride}"),
            ));
        }
        let w = init::kaiming_normal_fan_out(&[c_out, c_in, kernel, kernel], seed, dev)?;
        Ok(StdConv2dSame {
            weight: Param::parameter(w),
            bias: None,
            stride,
            dilation: 1,
            groups: 1,
            eps,
        })
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.get().dims()[0]
    }

    /// The standardised weight the convolution uses: `[out, in/groups, kh, kw]`.
    pub fn standardized_weight(&self) -> Result<Tensor> {
        let w = self.weight.get();
        let dims = w.dims().to_vec();
        let per_out: usize = dims[1..].iter().product();
        w.reshape(&[dims[0], per_out])?
            .layer_norm(&[per_out], None, None, self.eps)?
            .reshape(&dims)
    }

    /// The convolution's parameters on an input of spatial size `(h, w)`.
    pub fn params_for(&self, hw: (usize, usize), kernel: (usize, usize)) -> Conv2dParams {
        let (s, d) = (self.stride, self.dilation);
        let padding = if is_static_same(kernel.0, s, d) && is_static_same(kernel.1, s, d) {
            let (ph, pw) = ((kernel.0 - 1) * d / 2, (kernel.1 - 1) * d / 2);
            [ph, ph, pw, pw]
        } else {
            same_padding_2d(hw, kernel, (s, s), (d, d))
        };
        Conv2dParams {
            stride: (s, s),
            padding,
            dilation: (d, d),
            groups: self.groups,
        }
    }
}

impl Module for StdConv2dSame {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        if x.rank() != 4 {
            return Err(Error::shape(
                "StdConv2dSame",
                format!("expected input [N, C, H, W], got {}", x.shape()),
            ));
        }
        let w = self.standardized_weight()?;
        let kernel = (w.dims()[2], w.dims()[3]);
        let params = self.params_for((x.dims()[2], x.dims()[3]), kernel);
        let b = self.bias.as_ref().map(Param::get);
        let y = x.conv2d(&w, b.as_ref(), params)?;
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
