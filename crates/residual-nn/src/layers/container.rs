//! `Identity` and `Sequential`.

use crate::module::{Mode, Module, Visitor};
use residual_tensor::{Result, Tensor};

/// Returns its input.
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity;

impl Module for Identity {
    fn forward(&self, x: &Tensor, _mode: Mode) -> Result<Tensor> {
        crate::trace::record(self, x);
        Ok(x.clone())
    }
    fn visit(&self, _f: &mut Visitor<'_>) {}
}

/// Applies its children in order; they are named `0`, `1`, ... as in PyTorch.
#[derive(Default)]
pub struct Sequential(pub Vec<Box<dyn Module>>);

impl Sequential {
    /// An empty sequence.
    pub fn new() -> Self {
        Sequential(Vec::new())
    }
    /// Appends a module.
    pub fn push(mut self, m: impl Module + 'static) -> Self {
        self.0.push(Box::new(m));
        self
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.0
            .iter()
            .try_fold(x.clone(), |h, m| m.forward(&h, mode))
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        self.0
            .iter()
            .enumerate()
            .map(|(i, m)| (i.to_string(), m.as_ref()))
            .collect()
    }
}
