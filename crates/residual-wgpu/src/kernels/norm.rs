//! Batch norm and row norm (layer norm, group norm) with fused backward
//! kernels (`shaders/norm.wgsl`).

use super::{bits, word};
use crate::backend::{share, WgpuBackend};
use crate::context::Dispatch;
use residual_tensor::backend::{AxisView, NormGrads, NormStats, RowAffine, Storage};
use residual_tensor::{DType, Result};

/// `x: [outer, channels, inner]` normalised per channel; returns y and the statistics.
pub(crate) fn batch_norm(
    be: &WgpuBackend,
    x: &Storage,
    v: AxisView,
    gamma: &Storage,
    beta: &Storage,
    eps: f32,
) -> Result<(Storage, NormStats)> {
    let y = be.alloc(DType::F32, x.len())?;
    let mean = be.alloc(DType::F32, v.len)?;
    let rstd = be.alloc(DType::F32, v.len)?;
    be.launch(Dispatch {
        shader: "norm",
        entry: "batch_norm",
        constants: &[],
        params: &[word(v.outer), word(v.len), word(v.inner), bits(eps)],
        buffers: &[
            (1, be.f32_buffer(x)?),
            (2, be.f32_buffer(gamma)?),
            (3, be.f32_buffer(beta)?),
            (4, y.buffer()),
            (5, mean.buffer()),
            (6, rstd.buffer()),
        ],
        groups: be.workgroups(v.len),
    })?;
    Ok((
        share(y),
        NormStats {
            mean: share(mean),
            rstd: share(rstd),
        },
    ))
}

/// Fused backward of [`batch_norm`]: dx, dgamma, dbeta in one launch.
pub(crate) fn batch_norm_backward(
    be: &WgpuBackend,
    x: &Storage,
    dy: &Storage,
    v: AxisView,
    gamma: &Storage,
    stats: &NormStats,
) -> Result<NormGrads> {
    let dx = be.alloc(DType::F32, x.len())?;
    let dgamma = be.alloc(DType::F32, v.len)?;
    let dbeta = be.alloc(DType::F32, v.len)?;
    be.launch(Dispatch {
        shader: "norm",
        entry: "batch_norm_backward",
        constants: &[],
        params: &[word(v.outer), word(v.len), word(v.inner)],
        buffers: &[
            (1, be.f32_buffer(x)?),
            (2, be.f32_buffer(gamma)?),
            (7, be.f32_buffer(dy)?),
            (8, be.f32_buffer(&stats.mean)?),
            (9, be.f32_buffer(&stats.rstd)?),
            (10, dx.buffer()),
            (11, dgamma.buffer()),
            (12, dbeta.buffer()),
        ],
        groups: be.workgroups(v.len),
    })?;
    Ok(NormGrads {
        dx: share(dx),
        dgamma: share(dgamma),
        dbeta: share(dbeta),
    })
}

fn row_params(rows: usize, cols: usize, a: RowAffine, eps: f32) -> Vec<u32> {
    vec![
        word(rows),
        word(cols),
        word(a.groups),
        word(a.channels_per_group),
        word(a.per_channel),
        bits(eps),
    ]
}

/// `x: [rows, cols]` normalised per row, then the affine transform.
#[allow(clippy::too_many_arguments)]
pub(crate) fn row_norm(
    be: &WgpuBackend,
    x: &Storage,
    rows: usize,
    cols: usize,
    a: RowAffine,
    gamma: &Storage,
    beta: &Storage,
    eps: f32,
) -> Result<(Storage, NormStats)> {
    let y = be.alloc(DType::F32, x.len())?;
    let mean = be.alloc(DType::F32, rows)?;
    let rstd = be.alloc(DType::F32, rows)?;
    be.launch(Dispatch {
        shader: "norm",
        entry: "row_norm",
        constants: &[],
        params: &row_params(rows, cols, a, eps),
        buffers: &[
            (1, be.f32_buffer(x)?),
            (2, be.f32_buffer(gamma)?),
            (3, be.f32_buffer(beta)?),
            (4, y.buffer()),
            (5, mean.buffer()),
            (6, rstd.buffer()),
        ],
        groups: be.workgroups(rows),
    })?;
    Ok((
        share(y),
        NormStats {
            mean: share(mean),
            rstd: share(rstd),
        },
    ))
}

/// Backward of [`row_norm`]: dx per row, then dgamma / dbeta per parameter.
#[allow(clippy::too_many_arguments)]
pub(crate) fn row_norm_backward(
    be: &WgpuBackend,
    x: &Storage,
    dy: &Storage,
    rows: usize,
    cols: usize,
    a: RowAffine,
    gamma: &Storage,
    stats: &NormStats,
) -> Result<NormGrads> {
    let n_params = a.groups * a.channels_per_group;
    let dx = be.alloc(DType::F32, x.len())?;
    let dgamma = be.alloc(DType::F32, n_params)?;
    let dbeta = be.alloc(DType::F32, n_params)?;
    let params = row_params(rows, cols, a, 0.0);
    let (xb, dyb) = (be.f32_buffer(x)?, be.f32_buffer(dy)?);
    let (mb, rb) = (be.f32_buffer(&stats.mean)?, be.f32_buffer(&stats.rstd)?);
    be.launch(Dispatch {
        shader: "norm",
        entry: "row_norm_backward",
        constants: &[],
        params: &params,
        buffers: &[
            (1, xb),
            (2, be.f32_buffer(gamma)?),
            (7, dyb),
            (8, mb),
            (9, rb),
            (10, dx.buffer()),
        ],
        groups: be.workgroups(rows),
    })?;
    be.launch(Dispatch {
        shader: "norm",
        entry: "row_norm_params_backward",
        constants: &[],
        params: &params,
        buffers: &[
            (1, xb),
            (7, dyb),
            (8, mb),
            (9, rb),
            (11, dgamma.buffer()),
            (12, dbeta.buffer()),
        ],
        groups: be.workgroups(n_params),
    })?;
    Ok(NormGrads {
        dx: share(dx),
        dgamma: share(dgamma),
        dbeta: share(dbeta),
    })
}
