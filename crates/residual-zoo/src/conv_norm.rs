//! A convolution followed by its norm: the unit every ResNet layer is made of.
//! (For inference the pair is folded into one convolution by [`crate::fuse`].)

use crate::norm::Norm;
use residual_nn::{Conv2d, Mode, Module};
use residual_tensor::backend::Conv2dGeometry;
use residual_tensor::{Error, Result, Shape, Tensor};

/// `conv` then `norm` (named by the parent: `conv1` / `bn1`, `downsample.0` / `.1`).
pub struct ConvNorm {
    /// The convolution.
    pub conv: Conv2d,
    /// Its norm.
    pub norm: Norm,
}

impl ConvNorm {
    /// Pairs a convolution with its norm.
    pub fn new(conv: Conv2d, norm: Norm) -> Self {
        ConvNorm { conv, norm }
    }

    /// `norm(conv(x))`.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.norm.forward(&self.conv.forward(x, mode)?, mode)
    }
}

/// The output shape of `conv` on an input of shape `x` (`[N, C, H, W]`).
pub fn conv_output_shape(conv: &Conv2d, x: &Shape) -> Result<Shape> {
    let g = Conv2dGeometry::new(x, conv.weight.get().shape(), &conv.params)?;
    Ok(Shape::new([g.n, g.c_out, g.oh, g.ow]))
}

/// Refuses an input that is not `[N, channels, H, W]` (what a network whose
/// stem is a convolution over `channels` takes), naming both shapes.
pub(crate) fn check_input(x: &Tensor, channels: usize) -> Result<()> {
    if x.rank() != 4 || x.dims()[1] != channels {
        return Err(Error::shape(
            "resnet",
            format!("expected input [N, {channels}, H, W], got {}", x.shape()),
        ));
    }
    Ok(())
}
