//! The [`Module`] trait and PyTorch-style naming of parameters and buffers.

use crate::Param;
use residual_tensor::{Result, Tensor};

/// Whether a forward pass trains (batch statistics, dropout) or evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Training: batch norm uses and updates batch statistics; dropout drops.
    Train,
    /// Evaluation: running statistics, no dropout.
    Eval,
}

/// Receives `(name, slot)` for every parameter and buffer, names as PyTorch's
/// `state_dict` keys (`layer1.0.downsample.0.weight`).
pub type Visitor<'a> = dyn FnMut(&str, &Param) + 'a;

/// A layer or a model: a forward pass plus its named parameters and buffers.
pub trait Module: Send + Sync {
    /// Applies the module.
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor>;
    /// Calls `f` for every parameter and buffer with its name relative to this
    /// module, in PyTorch's registration order.
    fn visit(&self, f: &mut Visitor<'_>);
}

/// Visits `child` with names prefixed by `prefix.`.
pub fn visit_child(prefix: &str, child: &dyn Module, f: &mut Visitor<'_>) {
    child.visit(&mut |name: &str, p: &Param| f(&format!("{prefix}.{name}"), p));
}

/// Every parameter and buffer of `m` as `(name, slot)`, in registration order.
pub fn named_tensors(m: &dyn Module) -> Vec<(String, Param)> {
    let mut out = Vec::new();
    m.visit(&mut |n: &str, p: &Param| out.push((n.to_string(), p.clone())));
    out
}
