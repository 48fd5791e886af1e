//! BasicBlock and Bottleneck (torchvision's, v1.5), and their plain twins.

use crate::config::{ActKind, BlockKind, NormKind};
use crate::conv_norm::ConvNorm;
use crate::norm::{activation, Norm};
use crate::residual::residual_add;
use residual_nn::init::SeedSequence;
use residual_nn::*;
use residual_tensor::{Device, Result, Tensor};

/// Everything a block needs to know to build itself.
#[derive(Debug, Clone, Copy)]
pub struct BlockSpec {
    /// Block type.
    pub kind: BlockKind,
    /// Input channels.
    pub c_in: usize,
    /// Base width (output is `width * expansion`).
    pub width: usize,
    /// Stride of the block (on the 3x3 conv).
    pub stride: usize,
    /// Whether the block has a shortcut (false: plain net).
    pub shortcut: bool,
    /// Norm layer.
    pub norm: NormKind,
    /// Activation.
    pub act: ActKind,
    /// Zero-init the last norm's scale.
    pub zero_init_residual: bool,
}

/// A residual block: `act(norm(conv(...)) + shortcut(x))`, named as torchvision
/// names it (`conv1`, `bn1`, ..., `downsample.0`, `downsample.1`).
pub struct Block {
    /// Basic (two 3x3 convolutions) or bottleneck (1x1, 3x3, 1x1).
    pub kind: BlockKind,
    /// `(conv_i, bn_i)` for i = 1, 2 (and 3 for a bottleneck).
    pub layers: Vec<ConvNorm>,
    /// 1x1 conv + norm when the block changes stride or channels (and has a shortcut).
    pub downsample: Option<ConvNorm>,
    /// Whether the block adds its input back (false: a plain block).
    pub shortcut: bool,
    /// The activation.
    pub act: Activation,
}

impl Block {
    /// Builds a block, drawing initialisation seeds from `seeds`.
    pub fn new(s: BlockSpec, seeds: &mut SeedSequence, dev: &Device) -> Result<Self> {
        let out = s.width * s.kind.expansion();
        let mut conv = |c: Conv2dConfig| c.init(seeds.next_seed(), dev);
        let convs = match s.kind {
            BlockKind::Basic => vec![
                conv(
                    Conv2dConfig::new(s.c_in, s.width, 3)
                        .stride(s.stride)
                        .padding(1),
                )?,
                conv(Conv2dConfig::new(s.width, s.width, 3).padding(1))?,
            ],
            BlockKind::Bottleneck => vec![
                conv(Conv2dConfig::new(s.c_in, s.width, 1))?,
                conv(
                    Conv2dConfig::new(s.width, s.width, 3)
                        .stride(s.stride)
                        .padding(1),
                )?,
                conv(Conv2dConfig::new(s.width, out, 1))?,
            ],
        };
        let downsample = if s.shortcut && (s.stride != 1 || s.c_in != out) {
            Some(ConvNorm::new(
                conv(Conv2dConfig::new(s.c_in, out, 1).stride(s.stride))?,
                Norm::new(s.norm, out, dev)?,
            ))
        } else {
            None
        };
        let mut layers = Vec::new();
        for c in convs {
            let n = c.out_channels();
            layers.push(ConvNorm::new(c, Norm::new(s.norm, n, dev)?));
        }
        if s.zero_init_residual {
            if let Some(last) = layers.last() {
                last.norm.weight().set(Tensor::zeros([out], dev)?);
            }
        }
        Ok(Block {
            kind: s.kind,
            layers,
            downsample,
            shortcut: s.shortcut,
            act: activation(s.act),
        })
    }
}

impl Module for Block {
    /// torchvision's `BasicBlock.forward` / `Bottleneck.forward`: conv, norm
    /// and activation per layer, the last norm's output added to the identity
    /// (or its downsampled projection), then the activation.
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let last = self.layers.len() - 1;
        let mut out = x.clone();
        for (i, unit) in self.layers.iter().enumerate() {
            out = unit.forward(&out, mode)?;
            if i < last {
                out = self.act.apply(&out)?;
            }
        }
        if self.shortcut {
            let identity = match &self.downsample {
                Some(ds) => ds.forward(x, mode)?,
                None => x.clone(),
            };
            out = residual_add(&out, &identity)?;
        }
        self.act.apply(&out)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut out: Vec<(String, &dyn Module)> = Vec::new();
        for (i, unit) in self.layers.iter().enumerate() {
            out.push((format!("conv{}", i + 1), &unit.conv));
            out.push((format!("bn{}", i + 1), &unit.norm));
        }
        if let Some(unit) = &self.downsample {
            out.push(("downsample.0".into(), &unit.conv));
            out.push(("downsample.1".into(), &unit.norm));
        }
        out
    }

    fn kind(&self) -> String {
        let kind = match self.kind {
            BlockKind::Basic => "BasicBlock",
            BlockKind::Bottleneck => "Bottleneck",
        };
        match self.shortcut {
            true => kind.to_string(),
            false => format!("Plain{kind}"),
        }
    }
}
