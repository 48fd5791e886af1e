//! Pooling layers.

use crate::module::{Mode, Module, Visitor};
use residual_tensor::{Pool2dParams, Result, Tensor};

/// `torch.nn.MaxPool2d`.
#[derive(Debug, Clone, Copy)]
pub struct MaxPool2d(pub Pool2dParams);

/// `torch.nn.AvgPool2d`.
#[derive(Debug, Clone, Copy)]
pub struct AvgPool2d(pub Pool2dParams);

/// `torch.nn.AdaptiveAvgPool2d` to `(h, w)`.
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveAvgPool2d(pub (usize, usize));

impl Module for MaxPool2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let y = x.max_pool2d(self.0)?;
        crate::trace::record(self, &y);
        Ok(y)
    }
    fn visit(&self, _f: &mut Visitor<'_>) {}
}

impl Module for AvgPool2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let y = x.avg_pool2d(self.0)?;
        crate::trace::record(self, &y);
        Ok(y)
    }
    fn visit(&self, _f: &mut Visitor<'_>) {}
}

impl Module for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        let y = x.adaptive_avg_pool2d(self.0)?;
        crate::trace::record(self, &y);
        Ok(y)
    }
    fn visit(&self, _f: &mut Visitor<'_>) {}
}

/// timm's `MaxPool2dSame`: max pooling with TensorFlow's SAME padding,
/// computed from the input's size and filled with `-inf` (so a border never
/// wins a window), asymmetric where the stride makes it so.
#[derive(Debug, Clone, Copy)]
pub struct MaxPool2dSame {
    /// Square window.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
}

impl Module for MaxPool2dSame {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        if x.rank() != 4 {
            return Err(residual_tensor::Error::shape(
                "MaxPool2dSame",
                format!("expected input [N, C, H, W], got {}", x.shape()),
            ));
        }
        let (k, s) = (self.kernel, self.stride);
        let [top, bottom, left, right] =
            super::padding::same_padding_2d((x.dims()[2], x.dims()[3]), (k, k), (s, s), (1, 1));
        let padded =
            x.pad(2, top, bottom, f32::NEG_INFINITY)?
                .pad(3, left, right, f32::NEG_INFINITY)?;
        let y = padded.max_pool2d(Pool2dParams::new(k, s, 0))?;
        crate::trace::record(self, &y);
        Ok(y)
    }
    fn visit(&self, _f: &mut Visitor<'_>) {}
}
