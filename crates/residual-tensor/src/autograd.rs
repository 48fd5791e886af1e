//! Define-by-run automatic differentiation.
//!
//! Every op that has an input requiring gradients records a [`Node`]: edges
//! to its inputs and a closure mapping the output's gradient to the inputs'
//! (which captures the values it reads, and is dropped once it has run).
//! [`Tensor::backward`] walks the nodes in reverse topological order, adds
//! up the gradients of tensors used more than once, and returns the gradients
//! of the leaves.
//!
//! The graph's types ([`Node`], [`BackwardFn`], [`TensorId`]) live beside
//! [`Tensor`], which holds them, and the grad mode in `grad_mode`; this module
//! re-exports both, so it imports `tensor` and `tensor` never imports it.

use crate::tensor::Edge;
use crate::{Error, Result, Tensor};
use std::collections::{HashMap, HashSet};

pub use crate::grad_mode::{is_grad_enabled, no_grad, NoGradGuard};
pub use crate::tensor::{BackwardFn, Node, TensorId};

/// Gradients of the leaves of a graph, keyed by tensor.
#[derive(Default, Debug)]
pub struct Gradients {
    map: HashMap<TensorId, Tensor>,
}

impl Gradients {
    /// The gradient of `t`, if `t` is a leaf that requires grad and the loss depends on it.
    pub fn get(&self, t: &Tensor) -> Option<&Tensor> {
        self.map.get(&t.id())
    }
    /// Removes and returns the gradient of `t`.
    pub fn remove(&mut self, t: &Tensor) -> Option<Tensor> {
        self.map.remove(&t.id())
    }
    /// Inserts or replaces the gradient of `t` (for optimizers, clipping...).
    pub fn insert(&mut self, t: &Tensor, grad: Tensor) {
        self.map.insert(t.id(), grad);
    }
    /// Every gradient, mutably (for scaling and clipping in place).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Tensor> {
        self.map.values_mut()
    }
    /// Number of gradients held.
    pub fn len(&self) -> usize {
        self.map.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Every (id, gradient) pair.
    pub fn iter(&self) -> impl Iterator<Item = (&TensorId, &Tensor)> {
        self.map.iter()
    }
}

impl Tensor {
    /// Gradients of every leaf that requires grad, from this one-element tensor.
    pub fn backward(&self) -> Result<Gradients> {
        sweep(self)
    }
}

/// Reverse-mode sweep from `root` (a one-element tensor).
fn sweep(root: &Tensor) -> Result<Gradients> {
    if root.shape().numel() != 1 {
        return Err(Error::Autograd(format!(
            "backward() needs a scalar (one-element) tensor, got shape {}",
            root.shape()
        )));
    }
    if !root.requires_grad() {
        return Err(Error::Autograd(
            "backward() on a tensor that does not require grad: no input of the graph \
             requires grad, or it was computed under no_grad"
                .into(),
        ));
    }
    let order = topological_order(root.edge());
    let _guard = NoGradGuard::new();
    let mut pending: HashMap<TensorId, Tensor> = HashMap::new();
    pending.insert(root.id(), Tensor::ones_like(root)?);
    let mut leaves = Gradients::default();
    for t in order.iter().rev() {
        let Some(grad) = pending.remove(&t.id) else {
            continue;
        };
        let Some(node) = &t.node else {
            leaves.map.insert(t.id, grad);
            continue;
        };
        let grads = node.run_backward_once(&grad)?;
        debug_assert_eq!(
            grads.len(),
            node.inputs.len(),
            "{}: wrong number of grads",
            node.op
        );
        for (input, g) in node.inputs.iter().zip(grads) {
            let Some(g) = g else { continue };
            if !input.requires_grad {
                continue;
            }
            if *g.shape() != input.shape {
                return Err(Error::Autograd(format!(
                    "internal: backward of {} produced a gradient of shape {} for an input of shape {}",
                    node.op,
                    g.shape(),
                    input.shape
                )));
            }
            let acc = match pending.remove(&input.id) {
                Some(prev) => prev.add(&g)?,
                None => g,
            };
            pending.insert(input.id, acc);
        }
    }
    Ok(leaves)
}

/// Tensors reachable from `root` through recorded nodes, inputs before outputs.
fn topological_order(root: Edge) -> Vec<Edge> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    // Iterative post-order DFS: (tensor, children pushed?)
    let mut stack = vec![(root, false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !seen.insert(t.id) {
            continue;
        }
        let node = t.node.clone();
        stack.push((t, true));
        if let Some(node) = node {
            for i in &node.inputs {
                if i.requires_grad && !seen.contains(&i.id) {
                    stack.push((i.clone(), false));
                }
            }
        }
    }
    order
}
