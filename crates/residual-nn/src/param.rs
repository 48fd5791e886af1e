//! Parameters and buffers: named, replaceable tensors inside modules.

use residual_tensor::Tensor;
use std::sync::{Arc, RwLock};

/// What a [`Param`] is to training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Trained by the optimizer (requires grad).
    Parameter,
    /// A parameter that is not trained (frozen BN's affine terms): saved and loaded, no grad.
    Frozen,
    /// State that is saved and loaded but never trained (BN running statistics).
    Buffer,
}

/// A shared, replaceable tensor slot. Modules read it each forward; optimizers
/// and running-stat updates replace its tensor (the only in-place updates).
/// Clones share the slot.
#[derive(Clone, Debug)]
pub struct Param {
    slot: Arc<RwLock<Tensor>>,
    kind: ParamKind,
}

impl Param {
    /// A trainable parameter (the tensor is made a leaf that requires grad).
    pub fn parameter(t: Tensor) -> Self {
        Param {
            slot: Arc::new(RwLock::new(t.detach().requires_grad_())),
            kind: ParamKind::Parameter,
        }
    }
    /// A parameter that is loaded and saved but not trained.
    pub fn frozen(t: Tensor) -> Self {
        Param {
            slot: Arc::new(RwLock::new(t.detach())),
            kind: ParamKind::Frozen,
        }
    }
    /// A buffer (state that is not a parameter).
    pub fn buffer(t: Tensor) -> Self {
        Param {
            slot: Arc::new(RwLock::new(t.detach())),
            kind: ParamKind::Buffer,
        }
    }
    /// The current tensor (a cheap handle clone). For a trainable parameter it
    /// is the leaf whose gradient `backward()` reports.
    pub fn get(&self) -> Tensor {
        self.slot.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
    /// Replaces the tensor, keeping the kind (a trainable parameter stays a leaf that requires grad).
    pub fn set(&self, t: Tensor) {
        let t = match self.kind {
            ParamKind::Parameter => t.detach().requires_grad_(),
            _ => t.detach(),
        };
        *self.slot.write().unwrap_or_else(|e| e.into_inner()) = t;
    }
    /// What this slot is.
    pub fn kind(&self) -> ParamKind {
        self.kind
    }
    /// Whether the optimizer trains it.
    pub fn is_trainable(&self) -> bool {
        self.kind == ParamKind::Parameter
    }
}
