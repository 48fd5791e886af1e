//! The registry: every named model of the zoo, in one list, with the
//! constructor of each family (timm's `@register_model` and
//! `build_model_with_cfg`).
//!
//! A name resolves to its default [`ModelConfig`]; [`create`] applies the
//! caller's [`ModelOptions`] and builds it. A path to a `.json` or `.toml`
//! config file stands wherever a name does.

use crate::config::{BlockKind, ResNetConfig};
use crate::hybrid::HybridVit;
use crate::hybrid_config::{BackboneConfig, GlobalPool, HybridConfig};
use crate::model::Model;
use crate::model_config::{ModelConfig, ModelOptions};
use crate::preprocess::Preprocess;
use crate::resnet::ResNet;
use residual_tensor::{Device, Error, Result};
use std::path::Path;

/// A registered model: its name, a line about it and its default config.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    /// The name (`resnet50`).
    pub name: &'static str,
    /// What it is, in a few words.
    pub about: &'static str,
    /// Its default config.
    pub config: fn() -> ModelConfig,
    /// How its images are prepared for evaluation (`residual predict --image`).
    pub preprocess: Preprocess,
}

fn imagenet(block: BlockKind, layers: [usize; 4]) -> ModelConfig {
    ModelConfig::Resnet(ResNetConfig::imagenet(block, layers))
}

fn hybrid(layers: &[usize], embed_dim: usize, heads: usize, img_size: usize) -> ModelConfig {
    ModelConfig::Hybrid(HybridConfig::timm(layers, embed_dim, 12, heads, img_size))
}

/// The small hybrid that trains on the bundled digits: ResNet-20's CIFAR stem
/// and its three stages (28x28 -> a 7x7 map of 64 channels), then a 4-block,
/// 128-wide transformer with 4 heads over the 49 tokens and the class token,
/// the head on the normed mean token (average pooling: 98.50% on the digits'
/// validation split against 98.06% for the class token, docs/training.md).
fn digits_hybrid() -> ModelConfig {
    let resnet = cifar_config(20, true);
    ModelConfig::Hybrid(HybridConfig {
        backbone: BackboneConfig::Resnet { resnet, stages: 3 },
        embed_dim: 128,
        depth: 4,
        num_heads: 4,
        mlp_ratio: 2.0,
        qkv_bias: true,
        img_size: 28,
        in_channels: 3,
        num_classes: 10,
        drop_path_rate: 0.0,
        global_pool: GlobalPool::Avg,
    })
}

fn cifar_config(depth: usize, shortcut: bool) -> ResNetConfig {
    let c = ResNetConfig::cifar(depth).expect("a registered CIFAR depth is 6n + 2");
    ResNetConfig { shortcut, ..c }
}

fn cifar(depth: usize, shortcut: bool) -> ModelConfig {
    ModelConfig::Resnet(cifar_config(depth, shortcut))
}

/// Every registered model, in the order `residual summary --help` lists them.
pub static MODELS: &[Registration] = &[
    Registration {
        name: "resnet18",
        about: "torchvision ResNet-18 (BasicBlock, 2-2-2-2), ImageNet",
        config: || imagenet(BlockKind::Basic, [2, 2, 2, 2]),
        preprocess: Preprocess::TORCHVISION,
    },
    Registration {
        name: "resnet34",
        about: "torchvision ResNet-34 (BasicBlock, 3-4-6-3), ImageNet",
        config: || imagenet(BlockKind::Basic, [3, 4, 6, 3]),
        preprocess: Preprocess::TORCHVISION,
    },
    Registration {
        name: "resnet50",
        about: "torchvision ResNet-50 (Bottleneck, 3-4-6-3), ImageNet",
        config: || imagenet(BlockKind::Bottleneck, [3, 4, 6, 3]),
        preprocess: Preprocess::TORCHVISION,
    },
    Registration {
        name: "resnet101",
        about: "torchvision ResNet-101 (Bottleneck, 3-4-23-3), ImageNet",
        config: || imagenet(BlockKind::Bottleneck, [3, 4, 23, 3]),
        preprocess: Preprocess::TORCHVISION,
    },
    Registration {
        name: "resnet152",
        about: "torchvision ResNet-152 (Bottleneck, 3-8-36-3), ImageNet",
        config: || imagenet(BlockKind::Bottleneck, [3, 8, 36, 3]),
        preprocess: Preprocess::TORCHVISION,
    },
    Registration {
        name: "resnet20",
        about: "CIFAR ResNet-20 (He et al. 2015, 3x3 blocks per stage), 10 classes",
        config: || cifar(20, true),
        preprocess: Preprocess::TORCHVISION,
    },
    Registration {
        name: "resnet32",
        about: "CIFAR ResNet-32, 10 classes",
        config: || cifar(32, true),
        preprocess: Preprocess::TORCHVISION,
    },
    Registration {
        name: "resnet44",
        about: "CIFAR ResNet-44, 10 classes",
        config: || cifar(44, true),
        preprocess: Preprocess::TORCHVISION,
    },
    Registration {
        name: "resnet56",
        about: "CIFAR ResNet-56, 10 classes",
        config: || cifar(56, true),
        preprocess: Preprocess::TORCHVISION,
    },
    Registration {
        name: "resnet110",
        about: "CIFAR ResNet-110, 10 classes",
        config: || cifar(110, true),
        preprocess: Preprocess::TORCHVISION,
    },
    Registration {
        name: "plain20",
        about: "ResNet-20 without shortcuts (the degradation experiment)",
        config: || cifar(20, false),
        preprocess: Preprocess::TORCHVISION,
    },
    Registration {
        name: "plain32",
        about: "ResNet-32 without shortcuts",
        config: || cifar(32, false),
        preprocess: Preprocess::TORCHVISION,
    },
    Registration {
        name: "plain44",
        about: "ResNet-44 without shortcuts",
        config: || cifar(44, false),
        preprocess: Preprocess::TORCHVISION,
    },
    Registration {
        name: "plain56",
        about: "ResNet-56 without shortcuts",
        config: || cifar(56, false),
        preprocess: Preprocess::TORCHVISION,
    },
    Registration {
        name: "plain110",
        about: "ResNet-110 without shortcuts",
        config: || cifar(110, false),
        preprocess: Preprocess::TORCHVISION,
    },
    Registration {
        name: "vit_small_r26_s32_224",
        about: "timm's ResNet-26 (GN, std-conv, SAME) + ViT-S/32 hybrid (384 wide, 12 blocks, 6 heads), 224",
        config: || hybrid(&[2, 2, 2, 2], 384, 6, 224),
        preprocess: Preprocess::timm_vit(224),
    },
    Registration {
        name: "vit_small_r26_s32_384",
        about: "timm's ResNet-26 + ViT-S/32 hybrid at 384",
        config: || hybrid(&[2, 2, 2, 2], 384, 6, 384),
        preprocess: Preprocess::timm_vit(384),
    },
    Registration {
        name: "vit_base_r50_s16_224",
        about: "timm's ResNet-50 (3-4-9, GN, std-conv, SAME) + ViT-B/16 hybrid (768 wide, 12 blocks, 12 heads), 224",
        config: || hybrid(&[3, 4, 9], 768, 12, 224),
        preprocess: Preprocess::timm_vit(224),
    },
    Registration {
        name: "vit_base_r50_s16_384",
        about: "timm's ResNet-50 + ViT-B/16 hybrid at 384",
        config: || hybrid(&[3, 4, 9], 768, 12, 384),
        preprocess: Preprocess::timm_vit(384),
    },
    Registration {
        name: "vit_digits_r20",
        about: "a small hybrid for 28x28 digits: ResNet-20's stem and stages + a 4-block, 128-wide ViT over 7x7 tokens (mean-token head), 10 classes",
        config: digits_hybrid,
        preprocess: Preprocess::TORCHVISION,
    },
];

/// The registered names, in registry order.
pub fn names() -> Vec<&'static str> {
    MODELS.iter().map(|r| r.name).collect()
}

/// The registration of `name`.
pub fn lookup(name: &str) -> Result<&'static Registration> {
    MODELS.iter().find(|r| r.name == name).ok_or_else(|| {
        Error::arg(
            "model",
            format!(
                "unknown model {name:?}; known: {} (or a .json / .toml config file)",
                names().join(", ")
            ),
        )
    })
}

/// The evaluation preprocessing of `model`: its registration's for a
/// registered name, torchvision's ImageNet recipe for a config file (what
/// `residual train` normalises an image folder with, whatever the family).
pub fn eval_preprocess(model: &str) -> Preprocess {
    lookup(model).map_or(Preprocess::TORCHVISION, |r| r.preprocess)
}

/// The largest config file read, in bytes.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The config of `model` (a registered name, or a path to a `.json` /
/// `.toml` config file) with `opts` applied.
pub fn resolve(model: &str, opts: &ModelOptions) -> Result<ModelConfig> {
    let mut config = if model.ends_with(".json") || model.ends_with(".toml") {
        read_config_file(Path::new(model))?
    } else {
        (lookup(model)?.config)()
    };
    config.apply(opts)?;
    Ok(config)
}

/// Reads a model config file (JSON or TOML by its extension): a regular
/// file of at most 1 MiB (a device such as `/dev/zero` behind a `.json`
/// link, or a pipe, is refused instead of read without end).
pub fn read_config_file(path: &Path) -> Result<ModelConfig> {
    let io = |e: std::io::Error| Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_CONFIG_BYTES {
        return Err(Error::arg(
            "model config",
            format!(
                "{} is {len} bytes; a model config is at most {MAX_CONFIG_BYTES}",
                path.display()
            ),
        ));
    }
    let bytes = residual_nn::weights::read_regular_file(path)?;
    let text = String::from_utf8(bytes).map_err(|e| Error::Io {
        path: path.display().to_string(),
        msg: format!("not UTF-8 text ({e})"),
    })?;
    let parsed = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => ModelConfig::from_toml(&text),
        _ => ModelConfig::from_json(&text),
    };
    parsed.map_err(|e| Error::arg("model config", format!("{}: {e}", path.display())))
}

/// Builds `model` (a registered name or a config file) with `opts`,
/// initialised from `seed` on `dev`.
pub fn create(model: &str, opts: &ModelOptions, seed: u64, dev: &Device) -> Result<Box<dyn Model>> {
    resolve(model, opts)?.build(seed, dev)
}

impl ModelConfig {
    /// Builds and initialises the model from `seed` on `dev`: each family's
    /// constructor (which validates its config).
    pub fn build(&self, seed: u64, dev: &Device) -> Result<Box<dyn Model>> {
        Ok(match self {
            ModelConfig::Resnet(c) => Box::new(ResNet::new(c, seed, dev)?),
            ModelConfig::Hybrid(c) => Box::new(HybridVit::new(c, seed, dev)?),
        })
    }
}
