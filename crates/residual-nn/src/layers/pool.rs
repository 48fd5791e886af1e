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
