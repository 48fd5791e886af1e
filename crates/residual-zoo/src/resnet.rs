//! The ResNet model: stem, stages of blocks, global pooling, classifier.

use crate::block::{activation, Block, BlockSpec, Norm};
use crate::config::{ResNetConfig, StemKind};
use crate::conv_norm::ConvNorm;
use crate::monitor;
use crate::summary::{Summary, SummaryRow};
use residual_nn::init::SeedSequence;
use residual_nn::*;
use residual_tensor::backend::Conv2dGeometry;
use residual_tensor::{Device, Error, Pool2dParams, Result, Shape, Tensor};

/// A ResNet built from a [`ResNetConfig`]; parameter names are torchvision's
/// (`conv1.weight`, `layer1.0.bn1.running_mean`, `fc.bias`, ...).
pub struct ResNet {
    config: ResNetConfig,
    /// Stem convolution (`conv1`) and norm (`bn1`).
    pub stem: ConvNorm,
    act: Activation,
    maxpool: Option<MaxPool2d>,
    /// `layer1`, `layer2`, ...: the stages.
    pub stages: Vec<Vec<Block>>,
    /// The classifier.
    pub fc: Linear,
}

impl ResNet {
    /// Builds and initialises a model (torchvision's init) from `seed`.
    pub fn new(config: &ResNetConfig, seed: u64, dev: &Device) -> Result<Self> {
        config.validate()?;
        let c = config;
        let mut seeds = SeedSequence::new(seed);
        let (k, stride, pad) = match c.stem {
            StemKind::Imagenet => (7, 2, 3),
            StemKind::Cifar => (3, 1, 1),
        };
        let conv1 = Conv2d::new(
            c.in_channels,
            c.stem_width,
            k,
            stride,
            pad,
            1,
            false,
            seeds.next_seed(),
            dev,
        )?;
        let bn1 = Norm::new(c.norm, c.stem_width, dev)?;
        let maxpool =
            (c.stem == StemKind::Imagenet).then_some(MaxPool2d(Pool2dParams::new(3, 2, 1)));
        let mut c_in = c.stem_width;
        let mut stages = Vec::new();
        for (i, (&n, &width)) in c.layers.iter().zip(&c.widths).enumerate() {
            let mut blocks = Vec::new();
            for b in 0..n {
                let stride = if i > 0 && b == 0 { 2 } else { 1 };
                let spec = BlockSpec {
                    kind: c.block,
                    c_in,
                    width,
                    stride,
                    shortcut: c.shortcut,
                    norm: c.norm,
                    act: c.act,
                    zero_init_residual: c.zero_init_residual,
                };
                blocks.push(Block::new(spec, &mut seeds, dev)?);
                c_in = width * c.block.expansion();
            }
            stages.push(blocks);
        }
        let fc = Linear::new(c_in, c.num_classes, true, seeds.next_seed(), dev)?;
        Ok(ResNet {
            config: c.clone(),
            stem: ConvNorm::new(conv1, bn1),
            act: activation(c.act),
            maxpool,
            stages,
            fc,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }

    /// The final feature map `[N, C, h, w]` (before pooling and the classifier).
    pub fn features(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if x.rank() != 4 || x.dims()[1] != self.config.in_channels {
            return Err(Error::shape(
                "resnet",
                format!(
                    "expected input [N, {}, H, W], got {}",
                    self.config.in_channels,
                    x.shape()
                ),
            ));
        }
        let mut h = self.stem.forward_fused(x, mode, None, Some(self.act))?;
        monitor::observe(|| "conv1".into(), &h)?;
        if let Some(p) = &self.maxpool {
            h = p.forward(&h, mode)?;
        }
        for (i, stage) in self.stages.iter().enumerate() {
            for (j, block) in stage.iter().enumerate() {
                h = block.forward(&h, mode)?;
                monitor::observe(|| format!("layer{}.{j}", i + 1), &h)?;
            }
        }
        Ok(h)
    }

    /// Per-layer output shapes, parameters and multiply-accumulates for an
    /// input of `[c, h, w]` (MACs of convolutions and the classifier, as
    /// torchvision's published figures count them).
    pub fn summary(&self, name: &str, input: [usize; 3]) -> Result<Summary> {
        if input[0] != self.config.in_channels {
            return Err(Error::shape(
                "summary",
                format!(
                    "model takes {} input channels, got input {input:?}",
                    self.config.in_channels
                ),
            ));
        }
        let mut rows = Vec::new();
        let (mut h, mut w) = (input[1], input[2]);
        let (oh, ow, macs) = conv_cost(&self.stem.conv, h, w)?;
        (h, w) = (oh, ow);
        rows.push(SummaryRow::new(
            "conv1",
            "Conv2d",
            [self.stem.conv.out_channels(), h, w],
            count(&self.stem.conv),
            macs,
        ));
        rows.push(SummaryRow::new(
            "bn1",
            norm_name(&self.stem.norm),
            [self.stem.conv.out_channels(), h, w],
            count(&self.stem.norm),
            0,
        ));
        if self.maxpool.is_some() {
            (h, w) = ((h + 2 - 3) / 2 + 1, (w + 2 - 3) / 2 + 1);
            rows.push(SummaryRow::new(
                "maxpool",
                "MaxPool2d",
                [self.stem.conv.out_channels(), h, w],
                0,
                0,
            ));
        }
        let mut c = self.stem.conv.out_channels();
        for (i, stage) in self.stages.iter().enumerate() {
            for (j, block) in stage.iter().enumerate() {
                let mut macs = 0;
                let (mut bh, mut bw) = (h, w);
                for unit in &block.layers {
                    let (oh, ow, m) = conv_cost(&unit.conv, bh, bw)?;
                    (bh, bw, c) = (oh, ow, unit.conv.out_channels());
                    macs += m;
                }
                if let Some(unit) = &block.downsample {
                    macs += conv_cost(&unit.conv, h, w)?.2;
                }
                (h, w) = (bh, bw);
                let kind = match block.layers.len() {
                    2 => "BasicBlock",
                    _ => "Bottleneck",
                };
                let kind = if block.shortcut {
                    kind.to_string()
                } else {
                    format!("Plain{kind}")
                };
                rows.push(SummaryRow::new(
                    &format!("layer{}.{j}", i + 1),
                    &kind,
                    [c, h, w],
                    count(block),
                    macs,
                ));
            }
        }
        rows.push(SummaryRow::new(
            "avgpool",
            "AdaptiveAvgPool2d",
            [c, 1, 1],
            0,
            0,
        ));
        let classes = self.config.num_classes;
        rows.push(SummaryRow::new(
            "fc",
            "Linear",
            [classes, 1, 1],
            count(&self.fc),
            (c * classes) as u64,
        ));
        Ok(Summary {
            model: name.to_string(),
            input,
            rows,
        })
    }
}

fn norm_name(n: &Norm) -> &'static str {
    match n {
        Norm::Batch(b) if b.mode == BnMode::Frozen => "FrozenBatchNorm2d",
        Norm::Batch(_) => "BatchNorm2d",
        Norm::Group(_) => "GroupNorm",
    }
}

/// Output size and MACs of a convolution on one `h x w` sample.
fn conv_cost(conv: &Conv2d, h: usize, w: usize) -> Result<(usize, usize, u64)> {
    let wt = conv.weight.get();
    let c_in = wt.dims()[1] * conv.params.groups;
    let g = Conv2dGeometry::new(&Shape::new([1, c_in, h, w]), wt.shape(), &conv.params)?;
    Ok((g.oh, g.ow, g.macs()))
}

/// Parameters of a module (trainable and frozen, not buffers), as PyTorch's `parameters()`.
fn count(m: &dyn Module) -> usize {
    named_tensors(m)
        .iter()
        .filter(|(_, p)| p.kind() != ParamKind::Buffer)
        .map(|(_, p)| p.get().numel())
        .sum()
}

impl Module for ResNet {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let h = self.features(x, mode)?;
        let pooled = h.adaptive_avg_pool2d((1, 1))?.flatten(1)?;
        self.fc.forward(&pooled, mode)
    }

    fn visit(&self, f: &mut Visitor<'_>) {
        visit_child("conv1", &self.stem.conv, f);
        visit_child("bn1", &self.stem.norm, f);
        for (i, stage) in self.stages.iter().enumerate() {
            for (j, block) in stage.iter().enumerate() {
                visit_child(&format!("layer{}.{j}", i + 1), block, f);
            }
        }
        visit_child("fc", &self.fc, f);
    }
}

impl std::fmt::Debug for ResNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResNet")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
