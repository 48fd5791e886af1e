//! Max, average and adaptive average pooling with their backward kernels
//! (`shaders/pool.wgsl`).

use crate::contract::pool::{self as abi, PoolParams};
use crate::launch::{share, word, Gpu, Launch};
use residual_tensor::backend::{Pool2dGeometry, Storage};
use residual_tensor::{DType, Result};

/// Which pooling (the shader's `MODE`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Max = 0,
    Avg = 1,
    Adaptive = 2,
}

fn params(g: &Pool2dGeometry) -> PoolParams {
    let p = &g.p;
    PoolParams {
        planes: word(g.planes),
        h: word(g.h),
        w: word(g.w),
        oh: word(g.oh),
        ow: word(g.ow),
        kh: word(p.kernel.0),
        kw: word(p.kernel.1),
        sh: word(p.stride.0),
        sw: word(p.stride.1),
        ph: word(p.padding.0),
        pw: word(p.padding.1),
        count_include_pad: p.count_include_pad as u32,
    }
}

/// `y: [planes, oh, ow]`
pub(crate) fn forward(gpu: &Gpu, kind: Kind, x: &Storage, g: &Pool2dGeometry) -> Result<Storage> {
    let n = g.planes * g.oh * g.ow;
    let y = gpu.alloc(DType::F32, n)?;
    gpu.launch(Launch {
        entry: abi::POOL_FORWARD,
        constants: &[("MODE", kind as u32 as f64)],
        params: params(g),
        tables: &[],
        buffers: &[(abi::X, gpu.f32_buffer(x)?), (abi::Y, y.buffer())],
        groups: gpu.threads(n),
    })?;
    Ok(share(y))
}

/// `dx: [planes, h, w]`; max pooling reads `x` to find each window's maximum.
pub(crate) fn backward(
    gpu: &Gpu,
    kind: Kind,
    x: Option<&Storage>,
    dy: &Storage,
    g: &Pool2dGeometry,
) -> Result<Storage> {
    let n = g.planes * g.h * g.w;
    let dx = gpu.alloc(DType::F32, n)?;
    let dy_buf = gpu.f32_buffer(dy)?;
    // The averaging modes never read x; dy stands in for the binding.
    let x_buf = match x {
        Some(x) => gpu.f32_buffer(x)?,
        None => dy_buf,
    };
    gpu.launch(Launch {
        entry: abi::POOL_BACKWARD,
        constants: &[("MODE", kind as u32 as f64)],
        params: params(g),
        tables: &[],
        buffers: &[(abi::X, x_buf), (abi::DY, dy_buf), (abi::DX, dx.buffer())],
        groups: gpu.threads(n),
    })?;
    Ok(share(dx))
}
