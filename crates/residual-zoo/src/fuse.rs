//! The inference rewrite of convolutional networks: batch norm folded into
//! the convolutions, bias + residual add + activation in each convolution's
//! epilogue.
//!
//! In evaluation a batch norm (trainable or frozen) is a fixed per-channel
//! affine map, so it folds into its convolution's weight and bias
//! (`w' = w * s`, `b' = (b - mean) * s + beta`, `s = gamma / sqrt(var + eps)`),
//! and each convolution runs as one fused kernel (`Tensor::conv2d_fused`).
//! The folded network copies every tensor it uses: it is a snapshot of the
//! weights when it was built. Model code stays as it trains; a family opts in
//! through `Model::fused_for_inference` (the ResNet does) and
//! [`crate::inference`] runs it. [`FusedBlock::fold`] serves any model made of
//! zoo blocks (a ResNet stem under a transformer, say).

use crate::block::Block;
use crate::conv_norm::{check_input, ConvNorm};
use crate::norm::Norm;
use residual_nn::{Activation, AdaptiveAvgPool2d, Linear, MaxPool2d, Mode, Module, Param, Visitor};
use residual_tensor::backend::UnaryOp;
use residual_tensor::{no_grad, Conv2dParams, DType, Result, Tensor};

/// A convolution with its norm folded in: `conv(x, weight) + bias`.
pub struct FoldedConv {
    weight: Tensor,
    bias: Tensor,
    params: Conv2dParams,
}

impl FoldedConv {
    /// Folds `unit`'s batch norm into its convolution, the folded weight cast
    /// once to `dtype` (f32, or bf16 for the bf16 inference path; the bias
    /// stays f32); `None` for group norm.
    pub fn fold(unit: &ConvNorm, dtype: DType) -> Result<Option<Self>> {
        let Norm::Batch(bn) = &unit.norm else {
            return Ok(None);
        };
        no_grad(|| {
            let w = unit.conv.weight.get();
            let c = w.dims()[0];
            let scale = bn
                .weight
                .get()
                .mul(&bn.running_var.get().add_scalar(bn.eps)?.rsqrt()?)?;
            let weight = w.mul(&scale.reshape(&[c, 1, 1, 1])?)?;
            let mean = bn.running_mean.get();
            let centred = match &unit.conv.bias {
                Some(b) => b.get().sub(&mean)?,
                None => mean.neg()?,
            };
            let bias = centred.mul(&scale)?.add(&bn.bias.get())?;
            Ok(Some(FoldedConv {
                weight: weight.cast(dtype)?,
                bias,
                params: unit.conv.params,
            }))
        })
    }

    /// `act(conv(x) + bias + residual)` in one kernel, in the weight's dtype
    /// (`x` is cast to it first when it differs: the network's f32 input).
    pub fn run(
        &self,
        x: &Tensor,
        residual: Option<&Tensor>,
        act: Option<UnaryOp>,
    ) -> Result<Tensor> {
        let x = x.cast(self.weight.dtype())?;
        x.conv2d_fused(&self.weight, Some(&self.bias), residual, act, self.params)
    }
}

/// A block of folded convolutions; the last one adds the shortcut and
/// applies the activation in its epilogue.
pub struct FusedBlock {
    layers: Vec<FoldedConv>,
    downsample: Option<FoldedConv>,
    shortcut: bool,
    act: UnaryOp,
}

impl FusedBlock {
    /// Folds every norm of `b`, the weights in `dtype` (see
    /// [`FoldedConv::fold`]); `None` when one of them does not fold.
    pub fn fold(b: &Block, dtype: DType) -> Result<Option<Self>> {
        let mut layers = Vec::new();
        for unit in &b.layers {
            let Some(f) = FoldedConv::fold(unit, dtype)? else {
                return Ok(None);
            };
            layers.push(f);
        }
        let downsample = match &b.downsample {
            Some(unit) => match FoldedConv::fold(unit, dtype)? {
                Some(f) => Some(f),
                None => return Ok(None),
            },
            None => None,
        };
        Ok(Some(FusedBlock {
            layers,
            downsample,
            shortcut: b.shortcut,
            act: b.act.op(),
        }))
    }

    /// The block's evaluation-mode forward.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let identity = match (&self.downsample, self.shortcut) {
            (_, false) => None,
            (Some(ds), true) => Some(ds.run(x, None, None)?),
            (None, true) => Some(x.clone()),
        };
        let last = self.layers.len() - 1;
        let mut h = x.clone();
        for (i, conv) in self.layers.iter().enumerate() {
            let residual = if i == last { identity.as_ref() } else { None };
            h = conv.run(&h, residual, Some(self.act))?;
        }
        Ok(h)
    }
}

/// A convolutional classifier folded for inference: stem convolution (+ max
/// pool), blocks, global pooling, classifier.
pub struct FusedConvNet {
    in_channels: usize,
    stem: FoldedConv,
    act: UnaryOp,
    maxpool: Option<MaxPool2d>,
    blocks: Vec<FusedBlock>,
    avgpool: AdaptiveAvgPool2d,
    fc: Linear,
}

impl FusedConvNet {
    /// Folds a network of these parts, the convolutions' weights in `dtype`
    /// (f32, or bf16: the activations between the convolutions are then bf16,
    /// the pooled features and the classifier f32); `None` when a norm does
    /// not fold. The classifier's tensors are copied, like the folded ones.
    #[allow(clippy::too_many_arguments)]
    pub fn fold(
        in_channels: usize,
        stem: &ConvNorm,
        act: Activation,
        maxpool: Option<MaxPool2d>,
        blocks: &[&Block],
        avgpool: AdaptiveAvgPool2d,
        fc: &Linear,
        dtype: DType,
    ) -> Result<Option<Self>> {
        let Some(stem) = FoldedConv::fold(stem, dtype)? else {
            return Ok(None);
        };
        let mut fused = Vec::new();
        for b in blocks {
            let Some(f) = FusedBlock::fold(b, dtype)? else {
                return Ok(None);
            };
            fused.push(f);
        }
        let copy = |p: &Param| Param::frozen(p.get());
        Ok(Some(FusedConvNet {
            in_channels,
            stem,
            act: act.op(),
            maxpool,
            blocks: fused,
            avgpool,
            fc: Linear {
                weight: copy(&fc.weight),
                bias: fc.bias.as_ref().map(copy),
            },
        }))
    }
}

impl Module for FusedConvNet {
    /// The evaluation-mode forward, whatever `mode` says.
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        check_input(x, self.in_channels)?;
        let mut h = self.stem.run(x, None, Some(self.act))?;
        if let Some(p) = &self.maxpool {
            h = p.forward(&h, Mode::Eval)?;
        }
        for b in &self.blocks {
            h = b.forward(&h)?;
        }
        let pooled = self.avgpool.forward(&h, Mode::Eval)?.flatten(1)?;
        self.fc.forward(&pooled, Mode::Eval)
    }
    /// Derived tensors only, no parameters of a model.
    fn visit(&self, _f: &mut Visitor<'_>) {}
}
