//! BasicBlock and Bottleneck (torchvision's, v1.5), and their plain twins.

use crate::config::{ActKind, BlockKind, NormKind};
use crate::conv_norm::ConvNorm;
use residual_nn::init::SeedSequence;
use residual_nn::*;
use residual_tensor::{Device, Error, Result, Shape, Tensor};

/// The norm after a convolution: batch norm (trainable or frozen) or group norm.
pub enum Norm {
    /// BatchNorm2d.
    Batch(BatchNorm2d),
    /// GroupNorm.
    Group(GroupNorm),
}

impl Norm {
    /// The norm of kind `kind` over `c` channels.
    pub fn new(kind: NormKind, c: usize, dev: &Device) -> Result<Self> {
        Ok(match kind {
            NormKind::Batch => Norm::Batch(BatchNorm2d::new(c, BnMode::Normal, dev)?),
            NormKind::FrozenBatch => Norm::Batch(BatchNorm2d::new(c, BnMode::Frozen, dev)?),
            NormKind::Group => Norm::Group(GroupNorm::new(group_count(c), c, dev)?),
        })
    }
    /// The scale parameter (zeroed by `zero_init_residual`).
    pub fn weight(&self) -> &Param {
        match self {
            Norm::Batch(b) => &b.weight,
            Norm::Group(g) => &g.weight,
        }
    }
}

pub(crate) fn shape_mismatch(branch: &Shape, shortcut: &Shape) -> Error {
    Error::shape(
        "residual add",
        format!(
            "the block's branch gives {branch} but its shortcut gives {shortcut}; a block that changes stride \
             or channels needs a 1x1 conv + norm shortcut (downsample)"
        ),
    )
}

/// 32 groups, or the largest divisor of `c` below that.
fn group_count(c: usize) -> usize {
    (1..=32.min(c))
        .rev()
        .find(|g| c.is_multiple_of(*g))
        .unwrap_or(1)
}

impl Module for Norm {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        match self {
            Norm::Batch(b) => b.forward(x, mode),
            Norm::Group(g) => g.forward(x, mode),
        }
    }
    fn visit(&self, f: &mut Visitor<'_>) {
        match self {
            Norm::Batch(b) => b.visit(f),
            Norm::Group(g) => g.visit(f),
        }
    }
}

/// The activation module of a kind.
pub fn activation(a: ActKind) -> Activation {
    match a {
        ActKind::Relu => Activation::Relu,
        ActKind::Gelu => Activation::Gelu,
        ActKind::Silu => Activation::Silu,
    }
}

/// `y = branch + shortcut`, refusing shapes that differ (never a silent broadcast).
pub fn residual_add(branch: &Tensor, shortcut: &Tensor) -> Result<Tensor> {
    if branch.shape() != shortcut.shape() {
        return Err(shape_mismatch(branch.shape(), shortcut.shape()));
    }
    branch.add(shortcut)
}

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
        let mut conv = |ci, co, k, stride, pad| {
            Conv2d::new(ci, co, k, stride, pad, 1, false, seeds.next_seed(), dev)
        };
        let convs = match s.kind {
            BlockKind::Basic => vec![
                conv(s.c_in, s.width, 3, s.stride, 1)?,
                conv(s.width, s.width, 3, 1, 1)?,
            ],
            BlockKind::Bottleneck => vec![
                conv(s.c_in, s.width, 1, 1, 0)?,
                conv(s.width, s.width, 3, s.stride, 1)?,
                conv(s.width, out, 1, 1, 0)?,
            ],
        };
        let downsample = if s.shortcut && (s.stride != 1 || s.c_in != out) {
            Some(ConvNorm::new(
                conv(s.c_in, out, 1, s.stride, 0)?,
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
            layers,
            downsample,
            shortcut: s.shortcut,
            act: activation(s.act),
        })
    }
}

impl Module for Block {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let identity = match (&self.downsample, self.shortcut) {
            (_, false) => None,
            (Some(ds), true) => Some(ds.forward_fused(x, mode, None, None)?),
            (None, true) => Some(x.clone()),
        };
        let mut h = x.clone();
        let last = self.layers.len() - 1;
        for (i, unit) in self.layers.iter().enumerate() {
            let residual = if i == last { identity.as_ref() } else { None };
            h = unit.forward_fused(&h, mode, residual, Some(self.act))?;
        }
        Ok(h)
    }

    fn visit(&self, f: &mut Visitor<'_>) {
        for (i, unit) in self.layers.iter().enumerate() {
            visit_child(&format!("conv{}", i + 1), &unit.conv, f);
            visit_child(&format!("bn{}", i + 1), &unit.norm, f);
        }
        if let Some(unit) = &self.downsample {
            visit_child("downsample.0", &unit.conv, f);
            visit_child("downsample.1", &unit.norm, f);
        }
    }
}
