//! The inference pass: a model rewritten for evaluation-mode forwards.
//!
//! For a ResNet with batch norm (trainable or frozen), each norm is a fixed
//! per-channel affine map in evaluation, so it is folded into its
//! convolution's weight and bias (`w' = w * s`, `b' = (b - mean) * s + beta`,
//! `s = gamma / sqrt(var + eps)`), and each convolution runs as one fused
//! kernel with its epilogue: bias, the block's residual add and the
//! activation (`Tensor::conv2d_fused`). The folded model is a snapshot of the
//! weights when [`inference`] ran: fold again after a weight load or an
//! optimizer step. Models the pass does not know run unchanged.

use crate::conv_norm::ConvNorm;
use crate::model::Model;
use crate::norm::Norm;
use crate::resnet::{check_input, ResNet};
use residual_nn::{Linear, MaxPool2d, Mode, Module, Visitor};
use residual_tensor::backend::UnaryOp;
use residual_tensor::{no_grad, Conv2dParams, Result, Tensor};

/// A model ready for evaluation-mode forwards: the rewritten model where the
/// pass applies, the model itself elsewhere. Its forward always evaluates.
pub struct InferenceModel<'a>(Inner<'a>);

enum Inner<'a> {
    Plain(&'a dyn Model),
    Fused(Box<FusedResNet>),
}

impl InferenceModel<'_> {
    /// Whether the pass rewrote the model (folded norms, fused epilogues).
    pub fn is_fused(&self) -> bool {
        matches!(self.0, Inner::Fused(_))
    }
}

/// Runs the inference pass over `model`.
pub fn inference(model: &dyn Model) -> Result<InferenceModel<'_>> {
    let any: &dyn std::any::Any = model;
    if let Some(resnet) = any.downcast_ref::<ResNet>() {
        if let Some(fused) = FusedResNet::fold(resnet)? {
            return Ok(InferenceModel(Inner::Fused(Box::new(fused))));
        }
    }
    Ok(InferenceModel(Inner::Plain(model)))
}

impl Module for InferenceModel<'_> {
    /// The evaluation-mode forward, whatever `mode` says.
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        match &self.0 {
            Inner::Plain(m) => m.forward(x, Mode::Eval),
            Inner::Fused(f) => f.forward(x),
        }
    }
    /// No tensors of its own: a folded model holds derived weights, not the
    /// model's parameters.
    fn visit(&self, _f: &mut Visitor<'_>) {}
}

/// A convolution with its norm folded in: `conv(x, weight) + bias`.
struct FoldedConv {
    weight: Tensor,
    bias: Tensor,
    params: Conv2dParams,
}

impl FoldedConv {
    /// Folds `unit`'s batch norm into its convolution; `None` for group norm.
    fn fold(unit: &ConvNorm) -> Result<Option<Self>> {
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
                weight,
                bias,
                params: unit.conv.params,
            }))
        })
    }

    /// `act(conv(x) + bias + residual)` in one kernel.
    fn run(&self, x: &Tensor, residual: Option<&Tensor>, act: Option<UnaryOp>) -> Result<Tensor> {
        x.conv2d_fused(&self.weight, Some(&self.bias), residual, act, self.params)
    }
}

/// A block with folded convolutions; the last one adds the shortcut and
/// applies the activation in its epilogue.
struct FusedBlock {
    layers: Vec<FoldedConv>,
    downsample: Option<FoldedConv>,
    shortcut: bool,
}

/// A ResNet folded for inference.
struct FusedResNet {
    in_channels: usize,
    stem: FoldedConv,
    act: UnaryOp,
    maxpool: Option<MaxPool2d>,
    blocks: Vec<FusedBlock>,
    avgpool: residual_nn::AdaptiveAvgPool2d,
    fc: Linear,
}

impl FusedResNet {
    /// Folds every norm of `m`; `None` when one of them is not batch norm.
    fn fold(m: &ResNet) -> Result<Option<Self>> {
        let Some(stem) = FoldedConv::fold(&m.stem)? else {
            return Ok(None);
        };
        let mut blocks = Vec::new();
        for (_, b) in m.named_blocks() {
            let mut layers = Vec::new();
            for unit in &b.layers {
                let Some(f) = FoldedConv::fold(unit)? else {
                    return Ok(None);
                };
                layers.push(f);
            }
            let downsample = match &b.downsample {
                Some(unit) => match FoldedConv::fold(unit)? {
                    Some(f) => Some(f),
                    None => return Ok(None),
                },
                None => None,
            };
            blocks.push(FusedBlock {
                layers,
                downsample,
                shortcut: b.shortcut,
            });
        }
        Ok(Some(FusedResNet {
            in_channels: m.resnet_config().in_channels,
            stem,
            act: m.act.op(),
            maxpool: m.maxpool,
            blocks,
            avgpool: m.avgpool,
            fc: m.fc.clone(),
        }))
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_input(x, self.in_channels)?;
        let act = Some(self.act);
        let mut h = self.stem.run(x, None, act)?;
        if let Some(p) = &self.maxpool {
            h = p.forward(&h, Mode::Eval)?;
        }
        for b in &self.blocks {
            let identity = match (&b.downsample, b.shortcut) {
                (_, false) => None,
                (Some(ds), true) => Some(ds.run(&h, None, None)?),
                (None, true) => Some(h.clone()),
            };
            let last = b.layers.len() - 1;
            for (i, conv) in b.layers.iter().enumerate() {
                let residual = if i == last { identity.as_ref() } else { None };
                h = conv.run(&h, residual, act)?;
            }
        }
        let pooled = self.avgpool.forward(&h, Mode::Eval)?.flatten(1)?;
        self.fc.forward(&pooled, Mode::Eval)
    }
}
