//! The ViT hybrid family's config: a convolutional backbone (timm's ResNetV2,
//! or any zoo ResNet cut after a stage) whose feature map becomes the tokens
//! of a Vision Transformer.

use crate::config::{ResNetConfig, MAX_BLOCKS, MAX_CLASSES, MAX_WIDTH};
use residual_tensor::{Error, Result};
use serde::{Deserialize, Serialize};

/// The backbone in front of the transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BackboneConfig {
    /// timm's `ResNetV2` as the hybrids build it (`preact=False`,
    /// `stem_type="same"`, `StdConv2dSame(eps=1e-8)`, GroupNorm + ReLU):
    /// stem (std-conv 7x7/2, GN, ReLU, SAME 3x3/2 max pool) and stages of
    /// non-pre-activation bottlenecks, the first of each with a projection.
    Resnetv2 {
        /// Blocks per stage (`(2, 2, 2, 2)` for R26, `(3, 4, 9)` for R50 of the hybrids).
        layers: Vec<usize>,
        /// Output channels per stage (timm's `channels`, default 256, 512, 1024, 2048).
        #[serde(default = "resnetv2_channels")]
        channels: Vec<usize>,
        /// Channels out of the stem (64).
        #[serde(default = "sixty_four")]
        stem_width: usize,
        /// GroupNorm groups (32).
        #[serde(default = "thirty_two")]
        groups: usize,
    },
    /// A zoo ResNet (torchvision layout, any norm) cut after its first
    /// `stages` stages: its stem and those stages, no pooling or classifier.
    Resnet {
        /// The ResNet (its classifier settings are ignored).
        resnet: ResNetConfig,
        /// Stages kept, `1..=resnet.layers.len()`.
        stages: usize,
    },
}

fn resnetv2_channels() -> Vec<usize> {
    vec![256, 512, 1024, 2048]
}
fn sixty_four() -> usize {
    64
}
fn thirty_two() -> usize {
    32
}
fn four() -> f32 {
    4.0
}
use crate::config::{three, yes};

impl BackboneConfig {
    /// Channels of the feature map the transformer's embedding reads.
    pub fn feature_channels(&self) -> usize {
        match self {
            BackboneConfig::Resnetv2 {
                layers, channels, ..
            } => channels
                .get(layers.len().wrapping_sub(1))
                .copied()
                .unwrap_or(0),
            BackboneConfig::Resnet { resnet, stages } => {
                resnet
                    .widths
                    .get(stages.wrapping_sub(1))
                    .copied()
                    .unwrap_or(0)
                    * resnet.block.expansion()
            }
        }
    }

    /// The stages the transformer's tokens come through.
    pub fn stage_count(&self) -> usize {
        match self {
            BackboneConfig::Resnetv2 { layers, .. } => layers.len(),
            BackboneConfig::Resnet { stages, .. } => *stages,
        }
    }

    /// The total stride of the feature map (4 from the stem, 2 per later stage;
    /// 1 for a CIFAR stem). Saturates for stage counts beyond
    /// [`MAX_STAGES`], which `HybridConfig::validate` refuses.
    pub fn feature_stride(&self) -> usize {
        let stem = match self {
            BackboneConfig::Resnetv2 { .. } => 4usize,
            BackboneConfig::Resnet { resnet, .. } => match resnet.stem {
                crate::config::StemKind::Imagenet => 4,
                crate::config::StemKind::Cifar => 1,
            },
        };
        let later = self.stage_count().saturating_sub(1).min(MAX_STAGES) as u32;
        stem.saturating_mul(1 << later)
    }
}

/// What the head reads from the tokens (timm's `global_pool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GlobalPool {
    /// The class token after the final LayerNorm (`norm`), timm's default.
    #[default]
    Token,
    /// The mean of the other tokens, then a LayerNorm (`fc_norm`; the tokens
    /// are not normed before), as timm's `global_pool="avg"`.
    Avg,
}

/// A ResNet-stem Vision Transformer (timm's `vision_transformer_hybrid`), as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HybridConfig {
    /// The convolutional backbone.
    pub backbone: BackboneConfig,
    /// Token width.
    pub embed_dim: usize,
    /// Transformer blocks.
    pub depth: usize,
    /// Attention heads per block (`embed_dim` divides by it).
    pub num_heads: usize,
    /// MLP hidden width over `embed_dim` (4).
    #[serde(default = "four")]
    pub mlp_ratio: f32,
    /// Bias on the qkv projection (timm's default: true).
    #[serde(default = "yes")]
    pub qkv_bias: bool,
    /// The input size the position embedding is laid out for (a square);
    /// other sizes resample it bicubically.
    pub img_size: usize,
    /// Input channels.
    #[serde(default = "three")]
    pub in_channels: usize,
    /// Output classes.
    pub num_classes: usize,
    /// Stochastic depth of the last block, rising linearly from 0 (timm's `drop_path_rate`).
    #[serde(default)]
    pub drop_path_rate: f32,
    /// What the head reads: the class token (default) or the mean token.
    #[serde(default)]
    pub global_pool: GlobalPool,
}

/// The most transformer blocks or heads a config may ask for.
const MAX_DEPTH: usize = 1 << 10;
/// The most backbone stages (timm's have 3 or 4).
pub const MAX_STAGES: usize = 8;
/// The most tokens a side of the trained grid may have (timm's largest: 24).
pub const MAX_GRID: usize = 128;

impl HybridConfig {
    /// timm's hybrid: a ResNetV2 with `layers` and a ViT of `embed_dim`,
    /// `depth` and `num_heads`, 1000 classes at `img_size`.
    pub fn timm(
        layers: &[usize],
        embed_dim: usize,
        depth: usize,
        num_heads: usize,
        img_size: usize,
    ) -> Self {
        HybridConfig {
            backbone: BackboneConfig::Resnetv2 {
                layers: layers.to_vec(),
                channels: resnetv2_channels()[..layers.len().min(4)].to_vec(),
                stem_width: 64,
                groups: 32,
            },
            embed_dim,
            depth,
            num_heads,
            mlp_ratio: 4.0,
            qkv_bias: true,
            img_size,
            in_channels: 3,
            num_classes: 1000,
            drop_path_rate: 0.0,
            global_pool: GlobalPool::Token,
        }
    }

    /// The MLP's hidden width (`int(embed_dim * mlp_ratio)`, as timm).
    pub fn mlp_hidden(&self) -> usize {
        (self.embed_dim as f64 * self.mlp_ratio as f64) as usize
    }

    /// The token grid at the trained input size (`img_size / stride`, rounded up
    /// as SAME padding rounds).
    pub fn grid(&self) -> usize {
        let s = self.backbone.feature_stride().max(1);
        match &self.backbone {
            BackboneConfig::Resnetv2 { .. } => self.img_size.div_ceil(s),
            // torchvision's symmetric padding: 7x7/2 then 3x3/2 pool, then a
            // 3x3/2 per later stage, each floor((n - 1) / 2) + 1.
            BackboneConfig::Resnet { .. } => {
                let mut n = self.img_size;
                let mut s = s;
                while s > 1 {
                    n = n.saturating_sub(1) / 2 + 1;
                    s /= 2;
                }
                n
            }
        }
    }

    /// Checks that the numbers fit together.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::arg("HybridConfig", m));
        if self.backbone.stage_count() > MAX_STAGES {
            return bad(format!(
                "the backbone may have at most {MAX_STAGES} stages, got {}",
                self.backbone.stage_count()
            ));
        }
        match &self.backbone {
            BackboneConfig::Resnetv2 {
                layers,
                channels,
                stem_width,
                groups,
            } => {
                if layers.is_empty() || layers.len() != channels.len() {
                    return bad(format!(
                        "backbone layers {layers:?} and channels {channels:?} must be non-empty and of equal length"
                    ));
                }
                if layers.iter().any(|&n| n == 0 || n > MAX_BLOCKS) {
                    return bad(format!(
                        "backbone layers {layers:?} must each be 1..={MAX_BLOCKS}"
                    ));
                }
                if *groups == 0 {
                    return bad("backbone groups must be >= 1".into());
                }
                let mids = channels
                    .iter()
                    .map(|&c| crate::resnetv2::bottleneck_width(c));
                for c in channels.iter().copied().chain([*stem_width]).chain(mids) {
                    if c == 0 || c > MAX_WIDTH || !c.is_multiple_of(*groups) {
                        return bad(format!(
                            "backbone channels {channels:?}, stem_width {stem_width} and their bottleneck widths (a quarter, at least 8) must be 1..={MAX_WIDTH} and divide by groups={groups}; {c} does not"
                        ));
                    }
                }
            }
            BackboneConfig::Resnet { resnet, stages } => {
                resnet.validate()?;
                if *stages == 0 || *stages > resnet.layers.len() {
                    return bad(format!(
                        "backbone stages must be 1..={} (the ResNet's stages), got {stages}",
                        resnet.layers.len()
                    ));
                }
                if resnet.in_channels != self.in_channels {
                    return bad(format!(
                        "backbone in_channels {} differs from the model's in_channels {}",
                        resnet.in_channels, self.in_channels
                    ));
                }
            }
        }
        if self.embed_dim == 0 || self.embed_dim > MAX_WIDTH || self.num_heads == 0 {
            return bad(format!(
                "embed_dim must be 1..={MAX_WIDTH} and num_heads >= 1, got {} and {}",
                self.embed_dim, self.num_heads
            ));
        }
        if !self.embed_dim.is_multiple_of(self.num_heads) {
            return bad(format!(
                "embed_dim {} must divide by num_heads {}",
                self.embed_dim, self.num_heads
            ));
        }
        if self.depth == 0 || self.depth > MAX_DEPTH || self.num_heads > MAX_DEPTH {
            return bad(format!(
                "depth and num_heads must be 1..={MAX_DEPTH}, got {} and {}",
                self.depth, self.num_heads
            ));
        }
        if !(self.mlp_ratio.is_finite() && self.mlp_ratio > 0.0)
            || self.mlp_hidden() == 0
            || self.mlp_hidden() > MAX_WIDTH * 4
        {
            return bad(format!(
                "mlp_ratio must be positive and give a hidden width of 1..={}, got {}",
                MAX_WIDTH * 4,
                self.mlp_ratio
            ));
        }
        if !(0.0..1.0).contains(&self.drop_path_rate) {
            return bad(format!(
                "drop_path_rate must be in [0, 1), got {}",
                self.drop_path_rate
            ));
        }
        if self.in_channels == 0 || self.in_channels > MAX_WIDTH {
            return bad(format!(
                "in_channels must be 1..={MAX_WIDTH}, got {}",
                self.in_channels
            ));
        }
        if self.num_classes == 0 || self.num_classes > MAX_CLASSES {
            return bad(format!(
                "num_classes must be 1..={MAX_CLASSES}, got {}",
                self.num_classes
            ));
        }
        if self.img_size == 0 || self.grid() > MAX_GRID {
            return bad(format!(
                "img_size must be >= 1 and give at most {MAX_GRID} tokens a side (stride {}), got {}",
                self.backbone.feature_stride(),
                self.img_size
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(layers: Vec<usize>, img_size: usize) -> HybridConfig {
        HybridConfig {
            backbone: BackboneConfig::Resnetv2 {
                channels: vec![64; layers.len()],
                layers,
                stem_width: 32,
                groups: 8,
            },
            img_size,
            ..HybridConfig::timm(&[1], 32, 1, 2, 32)
        }
    }

    #[test]
    fn grids_follow_same_padding_and_bounds_are_named() {
        assert_eq!(HybridConfig::timm(&[2, 2, 2, 2], 384, 12, 6, 224).grid(), 7);
        assert_eq!(HybridConfig::timm(&[3, 4, 9], 768, 12, 12, 384).grid(), 24);
        assert_eq!(config(vec![1, 1], 30).grid(), 4);
        config(vec![1, 1], 32).validate().unwrap();
        // 70 stages would overflow a shift; refused before any size is computed.
        let e = config(vec![1; 70], 32).validate().unwrap_err().to_string();
        assert!(e.contains("at most 8 stages, got 70"), "{e}");
        // A grid of 1000 tokens a side (a million tokens) is refused.
        let e = config(vec![1], 4000).validate().unwrap_err().to_string();
        assert!(e.contains("at most 128 tokens a side"), "{e}");
    }
}
