//! # residual-nn
//!
//! Layers on top of `residual-tensor`: the [`Module`] trait, [`Param`]eters and
//! buffers named as PyTorch names them, the layers of a ResNet, torchvision's
//! initialisation and safetensors weights that load a torchvision `state_dict`
//! one to one.

pub mod init;
pub mod layers;
mod module;
mod param;
pub mod weights;

pub use layers::*;
pub use module::{named_tensors, visit_child, Mode, Module, Visitor};
pub use param::{Param, ParamKind};
pub use residual_tensor::{Device, Error, Result, Tensor};
