//! Define-by-run automatic differentiation.
//!
//! Every op that has an input requiring gradients records a [`Node`]: its
//! inputs and a closure mapping the output's gradient to the inputs'.
//! [`Tensor::backward`] walks the nodes in reverse topological order, adds
//! up the gradients of tensors used more than once, and returns the gradients
//! of the leaves.

use crate::{Error, Result, Tensor};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};

/// The backward rule of one op: gradient of the output to gradients of the
/// inputs (`None` for inputs that need none).
pub type BackwardFn = Box<dyn Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

/// A recorded op in the graph.
pub struct Node {
    pub(crate) op: &'static str,
    pub(crate) inputs: Vec<Tensor>,
    pub(crate) backward: BackwardFn,
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread record the graph.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Runs `f` without recording the graph (evaluation, optimizer updates).
pub fn no_grad<T>(f: impl FnOnce() -> T) -> T {
    let _guard = NoGradGuard::new();
    f()
}

/// Disables graph recording on this thread until dropped.
pub struct NoGradGuard {
    prev: bool,
}

impl NoGradGuard {
    /// Disables recording; the previous state returns on drop.
    pub fn new() -> Self {
        let prev = GRAD_ENABLED.with(|g| g.replace(false));
        NoGradGuard { prev }
    }
}

impl Default for NoGradGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.prev));
    }
}

/// Identity of a tensor, stable across clones of its handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub(crate) u64);

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

/// Reverse-mode sweep from `root` (a one-element tensor).
pub(crate) fn backward(root: &Tensor) -> Result<Gradients> {
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
    let order = topological_order(root);
    let _guard = NoGradGuard::new();
    let mut pending: HashMap<TensorId, Tensor> = HashMap::new();
    pending.insert(root.id(), Tensor::ones_like(root)?);
    let mut leaves = Gradients::default();
    for t in order.iter().rev() {
        let Some(grad) = pending.remove(&t.id()) else {
            continue;
        };
        let Some(node) = t.node() else {
            leaves.map.insert(t.id(), grad);
            continue;
        };
        let grads = (node.backward)(&grad)?;
        debug_assert_eq!(
            grads.len(),
            node.inputs.len(),
            "{}: wrong number of grads",
            node.op
        );
        for (input, g) in node.inputs.iter().zip(grads) {
            let Some(g) = g else { continue };
            if !input.requires_grad() {
                continue;
            }
            if g.shape() != input.shape() {
                return Err(Error::Autograd(format!(
                    "internal: backward of {} produced a gradient of shape {} for an input of shape {}",
                    node.op,
                    g.shape(),
                    input.shape()
                )));
            }
            let acc = match pending.remove(&input.id()) {
                Some(prev) => prev.add(&g)?,
                None => g,
            };
            pending.insert(input.id(), acc);
        }
    }
    Ok(leaves)
}

/// Tensors reachable from `root` through recorded nodes, inputs before outputs.
fn topological_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    // Iterative post-order DFS: (tensor, children pushed?)
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !seen.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Some(node) = t.node() {
            for i in &node.inputs {
                if i.requires_grad() && !seen.contains(&i.id()) {
                    stack.push((i.clone(), false));
                }
            }
        }
    }
    order
}
