//! The ResNet model: stem, stages of blocks, global pooling, classifier.

use crate::block::{Block, BlockSpec};
use crate::config::{ResNetConfig, StemKind};
use crate::conv_norm::{check_input, ConvNorm};
use crate::fuse::FusedConvNet;
use crate::model::{Intermediates, Model};
use crate::model_config::ModelConfig;
use crate::norm::{activation, Norm};
use residual_nn::init::SeedSequence;
use residual_nn::*;
use residual_tensor::{DType, Pool2dParams, Result, Tensor};

/// A ResNet built from a [`ResNetConfig`]; parameter names are torchvision's
/// (`conv1.weight`, `layer1.0.bn1.running_mean`, `fc.bias`, ...).
pub struct ResNet {
    config: ResNetConfig,
    /// Stem convolution (`conv1`) and norm (`bn1`).
    pub stem: ConvNorm,
    /// The activation after every norm that is not added to a shortcut first.
    pub act: Activation,
    /// The stem's 3x3 stride-2 max pool (ImageNet stem only).
    pub maxpool: Option<MaxPool2d>,
    /// `layer1`, `layer2`, ...: the stages.
    pub stages: Vec<Vec<Block>>,
    /// Global average pooling.
    pub avgpool: AdaptiveAvgPool2d,
    /// The classifier.
    pub fc: Linear,
}

impl ResNet {
    /// Builds and initialises a model (torchvision's init) from `seed`.
    pub fn new(config: &ResNetConfig, seed: u64, dev: &Device) -> Result<Self> {
        config.validate()?;
        let c = config;
        let mut seeds = SeedSequence::new(seed);
        let stem = match c.stem {
            StemKind::Imagenet => Conv2dConfig::new(c.in_channels, c.stem_width, 7)
                .stride(2)
                .padding(3),
            StemKind::Cifar => Conv2dConfig::new(c.in_channels, c.stem_width, 3).padding(1),
        };
        let conv1 = stem.init(seeds.next_seed(), dev)?;
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
            avgpool: AdaptiveAvgPool2d((1, 1)),
            fc,
        })
    }

    /// The configuration it was built from.
    pub fn resnet_config(&self) -> &ResNetConfig {
        &self.config
    }

    /// The blocks with their torchvision names (`layer2.0`), input to output.
    pub fn named_blocks(&self) -> impl Iterator<Item = (String, &Block)> {
        self.stages.iter().enumerate().flat_map(|(i, stage)| {
            stage
                .iter()
                .enumerate()
                .map(move |(j, b)| (format!("layer{}.{j}", i + 1), b))
        })
    }

    /// Refuses an input that is not `[N, in_channels, H, W]`.
    pub fn check_input(&self, x: &Tensor) -> Result<()> {
        check_input(x, self.config.in_channels)
    }

    /// The stem and the blocks, giving the output after the stem and after
    /// every block to `tap` (the feature maps timm's `forward_intermediates`
    /// returns).
    pub(crate) fn run(
        &self,
        x: &Tensor,
        mode: Mode,
        tap: &mut dyn FnMut(String, &Tensor),
    ) -> Result<Tensor> {
        self.check_input(x)?;
        let mut h = self.act.apply(&self.stem.forward(x, mode)?)?;
        tap("conv1".into(), &h);
        if let Some(p) = &self.maxpool {
            h = p.forward(&h, mode)?;
        }
        for (name, block) in self.named_blocks() {
            h = block.forward(&h, mode)?;
            tap(name, &h);
        }
        Ok(h)
    }
}

impl ResNet {
    /// The children of the stem and the stages, without pooling and classifier.
    pub(crate) fn trunk_children(&self) -> Vec<(String, &dyn Module)> {
        let mut out = self.children();
        out.retain(|(name, _)| name != "avgpool" && name != "fc");
        out
    }
}

impl Module for ResNet {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.forward_head(&self.forward_features(x, mode)?, mode)
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut out: Vec<(String, &dyn Module)> = vec![
            ("conv1".into(), &self.stem.conv),
            ("bn1".into(), &self.stem.norm),
        ];
        if let Some(p) = &self.maxpool {
            out.push(("maxpool".into(), p));
        }
        for (name, block) in self.named_blocks() {
            out.push((name, block));
        }
        out.push(("avgpool".into(), &self.avgpool));
        out.push(("fc".into(), &self.fc));
        out
    }
}

impl Model for ResNet {
    fn config(&self) -> ModelConfig {
        ModelConfig::Resnet(self.config.clone())
    }

    fn forward_features(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.run(x, mode, &mut |_, _| {})
    }

    fn forward_head(&self, features: &Tensor, mode: Mode) -> Result<Tensor> {
        let pooled = self.avgpool.forward(features, mode)?.flatten(1)?;
        self.fc.forward(&pooled, mode)
    }

    fn forward_intermediates(&self, x: &Tensor, mode: Mode) -> Result<Intermediates> {
        let mut taps = Vec::new();
        let features = self.run(x, mode, &mut |name, t| taps.push((name, t.clone())))?;
        Ok(Intermediates { features, taps })
    }

    /// Batch norm folded into the convolutions, bias + residual + activation
    /// in their epilogues (`None` with group norm, which does not fold).
    fn fused_for_inference(&self, dtype: DType) -> Result<Option<Box<dyn Module>>> {
        let blocks: Vec<&Block> = self.named_blocks().map(|(_, b)| b).collect();
        let fused = FusedConvNet::fold(
            self.config.in_channels,
            &self.stem,
            self.act,
            self.maxpool,
            &blocks,
            self.avgpool,
            &self.fc,
            dtype,
        )?;
        Ok(fused.map(|f| Box::new(f) as Box<dyn Module>))
    }
}

impl std::fmt::Debug for ResNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResNet")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
