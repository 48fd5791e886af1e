//! Softmax, log-softmax and cross-entropy (`shaders/softmax.wgsl`).

use super::{bits, word};
use crate::backend::{share, WgpuBackend};
use crate::context::Dispatch;
use residual_tensor::backend::{AxisView, Storage};
use residual_tensor::{DType, Result};

/// Softmax (or log-softmax) along the axis of `v`.
pub(crate) fn softmax(be: &WgpuBackend, x: &Storage, v: AxisView, log: bool) -> Result<Storage> {
    let y = be.alloc(DType::F32, x.len())?;
    be.launch(Dispatch {
        shader: "softmax",
        entry: "softmax",
        constants: &[("LOG", log as u32 as f64)],
        params: &[word(v.outer), word(v.len), word(v.inner)],
        buffers: &[(1, be.f32_buffer(x)?), (2, y.buffer())],
        groups: be.threads(v.outer * v.inner),
    })?;
    Ok(share(y))
}

/// Backward from the forward's output `y`.
pub(crate) fn softmax_backward(
    be: &WgpuBackend,
    y: &Storage,
    dy: &Storage,
    v: AxisView,
    log: bool,
) -> Result<Storage> {
    let dx = be.alloc(DType::F32, y.len())?;
    be.launch(Dispatch {
        shader: "softmax",
        entry: "softmax_backward",
        constants: &[("LOG", log as u32 as f64)],
        params: &[word(v.outer), word(v.len), word(v.inner)],
        buffers: &[
            (3, be.f32_buffer(y)?),
            (4, be.f32_buffer(dy)?),
            (5, dx.buffer()),
        ],
        groups: be.threads(v.outer * v.inner),
    })?;
    Ok(share(dx))
}

fn ce_params(n: usize, c: usize, targets: &[usize], smoothing: f32) -> Vec<u32> {
    let mut p = vec![word(n), word(c), bits(smoothing)];
    p.extend(targets.iter().map(|&t| word(t)));
    p
}

/// Mean cross-entropy of `logits: [n, c]`: a one-element storage.
pub(crate) fn cross_entropy(
    be: &WgpuBackend,
    logits: &Storage,
    n: usize,
    c: usize,
    targets: &[usize],
    smoothing: f32,
) -> Result<Storage> {
    let y = be.alloc(DType::F32, 1)?;
    be.launch(Dispatch {
        shader: "softmax",
        entry: "cross_entropy",
        constants: &[],
        params: &ce_params(n, c, targets, smoothing),
        buffers: &[(1, be.f32_buffer(logits)?), (2, y.buffer())],
        groups: [1, 1, 1],
    })?;
    Ok(share(y))
}

/// `dlogits: [n, c]`
pub(crate) fn cross_entropy_backward(
    be: &WgpuBackend,
    logits: &Storage,
    n: usize,
    c: usize,
    targets: &[usize],
    smoothing: f32,
    dloss: &Storage,
) -> Result<Storage> {
    let dx = be.alloc(DType::F32, n * c)?;
    be.launch(Dispatch {
        shader: "softmax",
        entry: "cross_entropy_backward",
        constants: &[],
        params: &ce_params(n, c, targets, smoothing),
        buffers: &[
            (1, be.f32_buffer(logits)?),
            (5, dx.buffer()),
            (6, be.f32_buffer(dloss)?),
        ],
        groups: be.threads(n),
    })?;
    Ok(share(dx))
}
