//! # residual-nn
//!
//! Layers on top of `residual-tensor`: the [`Module`] trait, [`Param`]eters and
//! buffers named as PyTorch names them, the layers of a ResNet, torchvision's
//! initialisation, safetensors weights that load a torchvision `state_dict`
//! one to one, and summaries computed from the module tree ([`summary`],
//! over a traced forward: [`trace`]).

pub mod batch_stats;
pub mod init;
pub mod layers;
mod module;
mod param;
pub mod resample;
pub mod summary;
pub mod sync_bn;
pub mod trace;
pub mod weights;

pub use layers::*;
pub use module::{named_tensors, parameter_count, visit_child, Mode, Module, Visitor};
pub use param::{Param, ParamKind};
pub use residual_tensor::{Device, Error, Result, Tensor};
