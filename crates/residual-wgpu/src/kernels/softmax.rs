//! Softmax, log-softmax and cross-entropy (`shaders/softmax.wgsl`).

use crate::contract::softmax::{self as abi, AxisParams, CrossEntropyParams};
use crate::launch::{share, word, Gpu, Launch};
use residual_tensor::backend::{AxisView, Storage};
use residual_tensor::{DType, Result};

fn axis_params(v: AxisView) -> AxisParams {
    AxisParams {
        outer: word(v.outer),
        len: word(v.len),
        inner: word(v.inner),
        ..Default::default()
    }
}

/// Softmax (or log-softmax) along the axis of `v`.
pub(crate) fn softmax(gpu: &Gpu, x: &Storage, v: AxisView, log: bool) -> Result<Storage> {
    let y = gpu.alloc(DType::F32, x.len())?;
    gpu.launch(Launch {
        entry: abi::SOFTMAX,
        constants: &[("LOG", log as u32 as f64)],
        params: axis_params(v),
        tables: &[],
        buffers: &[(abi::X, gpu.f32_buffer(x)?), (abi::Y, y.buffer())],
        groups: gpu.threads(v.outer * v.inner),
    })?;
    Ok(share(y))
}

/// Backward from the forward's output `y`.
pub(crate) fn softmax_backward(
    gpu: &Gpu,
    y: &Storage,
    dy: &Storage,
    v: AxisView,
    log: bool,
) -> Result<Storage> {
    let dx = gpu.alloc(DType::F32, y.len())?;
    gpu.launch(Launch {
        entry: abi::SOFTMAX_BACKWARD,
        constants: &[("LOG", log as u32 as f64)],
        params: axis_params(v),
        tables: &[],
        buffers: &[
            (abi::Y_IN, gpu.f32_buffer(y)?),
            (abi::DY, gpu.f32_buffer(dy)?),
            (abi::DX, dx.buffer()),
        ],
        groups: gpu.threads(v.outer * v.inner),
    })?;
    Ok(share(dx))
}

fn ce_params(
    n: usize,
    c: usize,
    targets: &[usize],
    smoothing: f32,
) -> (CrossEntropyParams, Vec<u32>) {
    let params = CrossEntropyParams {
        n: word(n),
        c: word(c),
        smoothing,
        ..Default::default()
    };
    (params, targets.iter().map(|&t| word(t)).collect())
}

/// Mean cross-entropy of `logits: [n, c]`: a one-element storage.
pub(crate) fn cross_entropy(
    gpu: &Gpu,
    logits: &Storage,
    n: usize,
    c: usize,
    targets: &[usize],
    smoothing: f32,
) -> Result<Storage> {
    let y = gpu.alloc(DType::F32, 1)?;
    let (params, targets) = ce_params(n, c, targets, smoothing);
    gpu.launch(Launch {
        entry: abi::CROSS_ENTROPY,
        constants: &[],
        params,
        tables: &[(abi::TARGETS, &targets)],
        buffers: &[(abi::X, gpu.f32_buffer(logits)?), (abi::Y, y.buffer())],
        groups: [1, 1, 1],
    })?;
    Ok(share(y))
}

/// `dlogits: [n, c]`
pub(crate) fn cross_entropy_backward(
    gpu: &Gpu,
    logits: &Storage,
    n: usize,
    c: usize,
    targets: &[usize],
    smoothing: f32,
    dloss: &Storage,
) -> Result<Storage> {
    let dx = gpu.alloc(DType::F32, n * c)?;
    let (params, targets) = ce_params(n, c, targets, smoothing);
    gpu.launch(Launch {
        entry: abi::CROSS_ENTROPY_BACKWARD,
        constants: &[],
        params,
        tables: &[(abi::TARGETS, &targets)],
        buffers: &[
            (abi::X, gpu.f32_buffer(logits)?),
            (abi::DX, dx.buffer()),
            (abi::DLOSS, gpu.f32_buffer(dloss)?),
        ],
        groups: gpu.threads(n),
    })?;
    Ok(share(dx))
}
