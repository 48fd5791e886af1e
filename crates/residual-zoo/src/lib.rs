//! # residual-zoo
//!
//! The model zoo behind one interface, [`Model`], and one registry,
//! [`MODELS`]: torchvision's `resnet18/34/50/101/152` (same parameter names
//! and shapes, so torchvision weights load one to one), the CIFAR ResNets of
//! the original paper (`resnet20/32/44/56/110`) and their plain twins
//! (`plain20/...`, no shortcuts), and timm's ResNet-stem Vision Transformer
//! hybrids (`vit_small_r26_s32_224`, ...; timm's names, so their checkpoints
//! load unchanged). A model is a [`ModelConfig`]; [`create`]
//! builds one by name or from a config file; [`inference`] rewrites one for
//! evaluation (batch norm folded, fused epilogues).

mod block;
mod config;
mod conv_norm;
pub mod fuse;
mod hybrid;
mod hybrid_config;
mod model;
mod model_config;
mod norm;
mod preprocess;
mod registry;
mod residual;
mod resnet;
mod resnetv2;
mod vit;

pub use block::{Block, BlockSpec};
pub use config::{ActKind, BlockKind, NormKind, ResNetConfig, StemKind};
pub use conv_norm::{conv_output_shape, ConvNorm};
pub use hybrid::{Backbone, HybridEmbed, HybridVit, TokenEmbed};
pub use hybrid_config::{BackboneConfig, GlobalPool, HybridConfig};
pub use model::{inference, inference_at, InferenceModel, Intermediates, Model, Precision};
pub use model_config::{ModelConfig, ModelOptions};
pub use norm::{activation, Norm};
pub use preprocess::{Interpolation, Preprocess};
pub use registry::{
    create, eval_preprocess, lookup, names, read_config_file, resolve, Registration, MODELS,
};
pub use residual::residual_add;
pub use residual_nn::summary::{thousands, Summary, SummaryRow};
pub use resnet::ResNet;
pub use resnetv2::{bottleneck_width, Bottleneck, ResNetStage, ResNetV2};
pub use vit::VitBlock;
