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

/// A layer or a model: a forward pass, its sub-modules and its named
/// parameters and buffers.
///
/// A layer that holds tensors (a leaf) implements [`Module::visit`]; a module
/// made of other modules implements [`Module::children`] and gets `visit`
/// (every descendant's tensors, prefixed with the child's name) for free.
pub trait Module: Send + Sync {
    /// Applies the module.
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor>;

    /// The direct sub-modules with their names, in PyTorch's registration
    /// order. A name may contain dots (`layer1.0`); an empty name marks a
    /// transparent wrapper (the child is this module under another type, and
    /// its tensors keep their own names).
    fn children(&self) -> Vec<(String, &dyn Module)> {
        Vec::new()
    }

    /// Calls `f` for every parameter and buffer with its name relative to this
    /// module, in PyTorch's registration order. By default: each child's, in
    /// the order of [`Module::children`].
    fn visit(&self, f: &mut Visitor<'_>) {
        for (name, child) in self.children() {
            visit_child(&name, child, f);
        }
    }

    /// The layer's type as a person reads it in a summary (PyTorch's class
    /// name: `Conv2d`, `BasicBlock`). By default the Rust type's name.
    fn kind(&self) -> String {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base).to_string()
    }
}

/// Visits `child` with names prefixed by `prefix.` (unchanged for an empty prefix).
pub fn visit_child(prefix: &str, child: &dyn Module, f: &mut Visitor<'_>) {
    if prefix.is_empty() {
        child.visit(f);
    } else {
        child.visit(&mut |name: &str, p: &Param| f(&format!("{prefix}.{name}"), p));
    }
}

/// Every parameter and buffer of `m` as `(name, slot)`, in registration order.
pub fn named_tensors(m: &dyn Module) -> Vec<(String, Param)> {
    let mut out = Vec::new();
    m.visit(&mut |n: &str, p: &Param| out.push((n.to_string(), p.clone())));
    out
}

/// Parameters of a module (trainable and frozen, not buffers), as the sum of
/// PyTorch's `parameters()` sizes.
pub fn parameter_count(m: &dyn Module) -> usize {
    named_tensors(m)
        .iter()
        .filter(|(_, p)| p.kind() != crate::ParamKind::Buffer)
        .map(|(_, p)| p.get().numel())
        .sum()
}

/// A boxed module is the module (so a `Box<dyn Module>` goes wherever a
/// `&dyn Module` does).
impl Module for Box<dyn Module> {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        (**self).forward(x, mode)
    }
    /// The boxed module itself, as a transparent child: a summary finds the
    /// module's layers where the box is.
    fn children(&self) -> Vec<(String, &dyn Module)> {
        vec![(String::new(), &**self)]
    }
    fn kind(&self) -> String {
        (**self).kind()
    }
}
