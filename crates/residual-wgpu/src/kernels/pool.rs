//! Max, average and adaptive average pooling with their backward kernels
//! (`shaders/pool.wgsl`).

use super::word;
use crate::backend::{share, WgpuBackend};
use crate::context::Dispatch;
use residual_tensor::backend::{Pool2dGeometry, Storage};
use residual_tensor::{DType, Result};

/// Which pooling (the shader's `MODE`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Max = 0,
    Avg = 1,
    Adaptive = 2,
}

fn params(g: &Pool2dGeometry) -> Vec<u32> {
    let p = &g.p;
    [
        g.planes,
        g.h,
        g.w,
        g.oh,
        g.ow,
        p.kernel.0,
        p.kernel.1,
        p.stride.0,
        p.stride.1,
        p.padding.0,
        p.padding.1,
        p.count_include_pad as usize,
    ]
    .map(word)
    .to_vec()
}

/// `y: [planes, oh, ow]`
pub(crate) fn forward(
    be: &WgpuBackend,
    kind: Kind,
    x: &Storage,
    g: &Pool2dGeometry,
) -> Result<Storage> {
    let n = g.planes * g.oh * g.ow;
    let y = be.alloc(DType::F32, n)?;
    be.launch(Dispatch {
        shader: "pool",
        entry: "pool_forward",
        constants: &[("MODE", kind as u32 as f64)],
        params: &params(g),
        buffers: &[(1, be.f32_buffer(x)?), (2, y.buffer())],
        groups: be.threads(n),
    })?;
    Ok(share(y))
}

/// `dx: [planes, h, w]`; max pooling reads `x` to find each window's maximum.
pub(crate) fn backward(
    be: &WgpuBackend,
    kind: Kind,
    x: Option<&Storage>,
    dy: &Storage,
    g: &Pool2dGeometry,
) -> Result<Storage> {
    let n = g.planes * g.h * g.w;
    let dx = be.alloc(DType::F32, n)?;
    let dy_buf = be.f32_buffer(dy)?;
    // The averaging modes never read x; dy stands in for the binding.
    let x_buf = match x {
        Some(x) => be.f32_buffer(x)?,
        None => dy_buf,
    };
    be.launch(Dispatch {
        shader: "pool",
        entry: "pool_backward",
        constants: &[("MODE", kind as u32 as f64)],
        params: &params(g),
        buffers: &[(1, x_buf), (3, dy_buf), (4, dx.buffer())],
        groups: be.threads(n),
    })?;
    Ok(share(dx))
}
