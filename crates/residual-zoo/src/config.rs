//! The ResNet family's config: a ResNet is data (block type, depths, widths,
//! stem, norm, activation, classes); the registered models are instances of it.

use residual_tensor::{Error, Result};
use serde::{Deserialize, Serialize};

/// The residual block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    /// Two 3x3 convolutions (ResNet-18/34, CIFAR ResNets); expansion 1.
    Basic,
    /// 1x1 - 3x3 - 1x1 with the stride on the 3x3 (torchvision's v1.5); expansion 4.
    Bottleneck,
}

impl BlockKind {
    /// Output channels over the block's base width.
    pub fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// The stem in front of the stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StemKind {
    /// 7x7 stride-2 convolution, norm, activation, 3x3 stride-2 max pool (ImageNet).
    Imagenet,
    /// 3x3 stride-1 convolution, norm, activation (CIFAR ResNets of the original paper).
    Cifar,
}

/// The normalisation after each convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// BatchNorm2d.
    #[default]
    Batch,
    /// Frozen BatchNorm (running statistics and fixed affine terms in training too).
    FrozenBatch,
    /// GroupNorm with 32 groups (fewer when the channels do not allow 32).
    Group,
}

/// The activation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ActKind {
    /// ReLU.
    #[default]
    Relu,
    /// GELU (exact).
    Gelu,
    /// SiLU.
    Silu,
}

/// A ResNet, as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResNetConfig {
    /// Block type.
    pub block: BlockKind,
    /// Blocks per stage.
    pub layers: Vec<usize>,
    /// Base width per stage (the first stage has stride 1, the others 2).
    pub widths: Vec<usize>,
    /// The stem.
    pub stem: StemKind,
    /// Channels out of the stem.
    pub stem_width: usize,
    /// Input channels (3 for RGB, 1 for MNIST).
    #[serde(default = "three")]
    pub in_channels: usize,
    /// Output classes.
    pub num_classes: usize,
    /// Residual shortcuts; `false` builds the plain twin (no shortcuts at all).
    #[serde(default = "yes")]
    pub shortcut: bool,
    /// Normalisation layer.
    #[serde(default)]
    pub norm: NormKind,
    /// Activation.
    #[serde(default)]
    pub act: ActKind,
    /// Zero the last norm's scale in each block, so each block starts as the identity.
    #[serde(default)]
    pub zero_init_residual: bool,
}

/// The widest layer a config may ask for (channels).
pub const MAX_WIDTH: usize = 1 << 16;
/// The most blocks a stage may have.
pub const MAX_BLOCKS: usize = 1 << 10;
/// The most classes a classifier may have.
pub const MAX_CLASSES: usize = 1 << 20;

/// The serde default of `in_channels` (RGB).
pub(crate) fn three() -> usize {
    3
}
/// The serde default `true`.
pub(crate) fn yes() -> bool {
    true
}

impl ResNetConfig {
    /// torchvision's ImageNet ResNet with `layers` blocks per stage (widths
    /// 64..512, 7x7 stem with max pool), 1000 classes.
    pub fn imagenet(block: BlockKind, layers: [usize; 4]) -> Self {
        ResNetConfig {
            block,
            layers: layers.to_vec(),
            widths: vec![64, 128, 256, 512],
            stem: StemKind::Imagenet,
            stem_width: 64,
            in_channels: 3,
            num_classes: 1000,
            shortcut: true,
            norm: NormKind::Batch,
            act: ActKind::Relu,
            zero_init_residual: false,
        }
    }

    /// CIFAR-style ResNet of depth `6n + 2` (He et al. 2015, section 4.2), 10 classes.
    pub fn cifar(depth: usize) -> Result<Self> {
        if depth < 8 || !(depth - 2).is_multiple_of(6) {
            return Err(Error::arg(
                "ResNetConfig::cifar",
                format!("depth must be 6n + 2 (20, 32, 44, 56, 110), got {depth}"),
            ));
        }
        let n = (depth - 2) / 6;
        Ok(ResNetConfig {
            block: BlockKind::Basic,
            layers: vec![n; 3],
            widths: vec![16, 32, 64],
            stem: StemKind::Cifar,
            stem_width: 16,
            in_channels: 3,
            num_classes: 10,
            shortcut: true,
            norm: NormKind::Batch,
            act: ActKind::Relu,
            zero_init_residual: false,
        })
    }

    /// Reads a config from JSON text.
    pub fn from_json(text: &str) -> Result<Self> {
        let c: Self = serde_json::from_str(text)
            .map_err(|e| Error::arg("ResNetConfig", format!("invalid JSON config: {e}")))?;
        c.validate()?;
        Ok(c)
    }

    /// Reads a config from TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        let c: Self = toml::from_str(text)
            .map_err(|e| Error::arg("ResNetConfig", format!("invalid TOML config: {e}")))?;
        c.validate()?;
        Ok(c)
    }

    /// Checks the numbers fit together.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::arg("ResNetConfig", m));
        if self.layers.is_empty() || self.layers.len() != self.widths.len() {
            return bad(format!(
                "layers {:?} and widths {:?} must be non-empty and of equal length",
                self.layers, self.widths
            ));
        }
        if self.layers.contains(&0)
            || self.widths.contains(&0)
            || self.stem_width == 0
            || self.in_channels == 0
        {
            return bad("layers, widths, stem_width and in_channels must be >= 1".into());
        }
        if self.num_classes == 0 {
            return bad("num_classes must be >= 1".into());
        }
        // Saturating: a width near usize::MAX must be refused, not overflow.
        let widest =
            (self.widths.iter().max().copied().unwrap_or(0)).saturating_mul(self.block.expansion());
        if widest.max(self.stem_width) > MAX_WIDTH || self.in_channels > MAX_WIDTH {
            return bad(format!(
                "channels must be at most {MAX_WIDTH}: widths {:?} (x{} for {:?} blocks), stem_width {}, in_channels {}",
                self.widths,
                self.block.expansion(),
                self.block,
                self.stem_width,
                self.in_channels
            ));
        }
        if self.layers.iter().any(|&n| n > MAX_BLOCKS) {
            return bad(format!(
                "at most {MAX_BLOCKS} blocks per stage, got layers {:?}",
                self.layers
            ));
        }
        if self.num_classes > MAX_CLASSES {
            return bad(format!(
                "num_classes must be at most {MAX_CLASSES}, got {}",
                self.num_classes
            ));
        }
        Ok(())
    }

    /// Channels of the final feature map (the classifier's input).
    pub fn feature_channels(&self) -> usize {
        self.widths.last().copied().unwrap_or(0) * self.block.expansion()
    }
}
