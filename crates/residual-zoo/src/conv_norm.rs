//! A convolution followed by its norm: the unit every ResNet layer is made of,
//! with batch norm folded into the convolution for inference.

use crate::block::{residual_add, shape_mismatch, Norm};
use residual_nn::{Activation, Conv2d, Mode, Module, Param};
use residual_tensor::backend::Conv2dGeometry;
use residual_tensor::{is_grad_enabled, Result, Shape, Tensor, TensorId};
use std::sync::Mutex;

/// Folded weights and the parameter versions they were computed from.
struct Folded {
    key: Vec<TensorId>,
    weight: Tensor,
    bias: Tensor,
}

/// `conv` then `norm` (named by the parent: `conv1` / `bn1`, `downsample.0` / `.1`).
pub struct ConvNorm {
    /// The convolution.
    pub conv: Conv2d,
    /// Its norm.
    pub norm: Norm,
    folded: Mutex<Option<Folded>>,
}

impl ConvNorm {
    /// Pairs a convolution with its norm.
    pub fn new(conv: Conv2d, norm: Norm) -> Self {
        ConvNorm {
            conv,
            norm,
            folded: Mutex::new(None),
        }
    }

    /// `act(norm(conv(x)) + residual)`. Where the norm is a per-channel affine
    /// map (batch norm in evaluation, frozen batch norm), it is folded into the
    /// convolution's weight and bias and the unit runs as one fused convolution;
    /// without graph recording the folded weights are cached until a parameter
    /// is replaced (an optimizer step, a weight load).
    pub fn forward_fused(
        &self,
        x: &Tensor,
        mode: Mode,
        residual: Option<&Tensor>,
        act: Option<Activation>,
    ) -> Result<Tensor> {
        if let Some(r) = residual {
            let out = conv_output_shape(&self.conv, x.shape())?;
            if r.shape() != &out {
                return Err(shape_mismatch(&out, r.shape()));
            }
        }
        if let Some((w, b)) = self.folded_params(mode)? {
            return x.conv2d_fused(
                &w,
                Some(&b),
                residual,
                act.map(|a| a.op()),
                self.conv.params,
            );
        }
        let mut h = self.norm.forward(&self.conv.forward(x, mode)?, mode)?;
        if let Some(r) = residual {
            h = residual_add(&h, r)?;
        }
        match act {
            Some(a) => a.apply(&h),
            None => Ok(h),
        }
    }

    /// The convolution's weight and bias with the norm folded in, when the
    /// norm is an affine map in this mode.
    fn folded_params(&self, mode: Mode) -> Result<Option<(Tensor, Tensor)>> {
        let Norm::Batch(bn) = &self.norm else {
            return Ok(None);
        };
        if !bn.uses_running_stats(mode) {
            return Ok(None);
        }
        let params: Vec<&Param> = [
            Some(&self.conv.weight),
            self.conv.bias.as_ref(),
            Some(&bn.weight),
            Some(&bn.bias),
        ]
        .into_iter()
        .flatten()
        .chain([&bn.running_mean, &bn.running_var])
        .collect();
        let tensors: Vec<Tensor> = params.iter().map(|p| p.get()).collect();
        let key: Vec<TensorId> = tensors.iter().map(Tensor::id).collect();
        let cacheable = !is_grad_enabled();
        if cacheable {
            let cache = self.folded.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(f) = cache.as_ref().filter(|f| f.key == key) {
                return Ok(Some((f.weight.clone(), f.bias.clone())));
            }
        }
        // scale = gamma / sqrt(var + eps); w' = w * scale; b' = (b - mean) * scale + beta
        let w = self.conv.weight.get();
        let c = w.dims()[0];
        let scale = bn
            .weight
            .get()
            .mul(&bn.running_var.get().add_scalar(bn.eps)?.rsqrt()?)?;
        let weight = w.mul(&scale.reshape(&[c, 1, 1, 1])?)?;
        let mean = bn.running_mean.get();
        let centred = match &self.conv.bias {
            Some(b) => b.get().sub(&mean)?,
            None => mean.neg()?,
        };
        let bias = centred.mul(&scale)?.add(&bn.bias.get())?;
        if cacheable {
            *self.folded.lock().unwrap_or_else(|e| e.into_inner()) = Some(Folded {
                key,
                weight: weight.clone(),
                bias: bias.clone(),
            });
        }
        Ok(Some((weight, bias)))
    }
}

/// The output shape of `conv` on an input of shape `x` (`[N, C, H, W]`).
pub fn conv_output_shape(conv: &Conv2d, x: &Shape) -> Result<Shape> {
    let g = Conv2dGeometry::new(x, conv.weight.get().shape(), &conv.params)?;
    Ok(Shape::new([g.n, g.c_out, g.oh, g.ow]))
}
