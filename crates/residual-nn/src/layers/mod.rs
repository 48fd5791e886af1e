//! The layers of a ResNet and a ViT hybrid.

mod activation;
mod attention;
mod container;
mod conv;
mod dropout;
mod linear;
mod norm;
pub mod padding;
mod pool;
mod std_conv;

pub use activation::Activation;
pub use attention::{Attention, Mlp};
pub use container::{Identity, Sequential};
pub use conv::{Conv2d, Conv2dConfig};
pub use dropout::{DropPath, Dropout};
pub use linear::Linear;
pub use norm::{BatchNorm2d, BnMode, GroupNorm, LayerNorm};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, MaxPool2dSame};
pub use std_conv::StdConv2dSame;
