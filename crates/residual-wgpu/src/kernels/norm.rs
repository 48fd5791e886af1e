//! Batch norm and row norm (layer norm, group norm) with fused backward
//! kernels (`shaders/norm.wgsl`).

use crate::contract::norm::{self as abi, BatchNormParams, RowNormParams};
use crate::launch::{share, word, Gpu, Launch};
use residual_tensor::backend::{AxisView, NormGrads, NormStats, RowAffine, Storage};
use residual_tensor::{DType, Result};

fn bn_params(v: AxisView, eps: f32) -> BatchNormParams {
    BatchNormParams {
        outer: word(v.outer),
        channels: word(v.len),
        inner: word(v.inner),
        eps,
    }
}

/// `x: [outer, channels, inner]` normalised per channel; returns y and the statistics.
pub(crate) fn batch_norm(
    gpu: &Gpu,
    x: &Storage,
    v: AxisView,
    gamma: &Storage,
    beta: &Storage,
    eps: f32,
) -> Result<(Storage, NormStats)> {
    let y = gpu.alloc(DType::F32, x.len())?;
    let mean = gpu.alloc(DType::F32, v.len)?;
    let rstd = gpu.alloc(DType::F32, v.len)?;
    gpu.launch(Launch {
        entry: abi::BATCH_NORM,
        constants: &[],
        params: bn_params(v, eps),
        tables: &[],
        buffers: &[
            (abi::X, gpu.f32_buffer(x)?),
            (abi::GAMMA, gpu.f32_buffer(gamma)?),
            (abi::BETA, gpu.f32_buffer(beta)?),
            (abi::Y, y.buffer()),
            (abi::MEAN_OUT, mean.buffer()),
            (abi::RSTD_OUT, rstd.buffer()),
        ],
        groups: gpu.workgroups(v.len),
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
    gpu: &Gpu,
    x: &Storage,
    dy: &Storage,
    v: AxisView,
    gamma: &Storage,
    stats: &NormStats,
) -> Result<NormGrads> {
    let dx = gpu.alloc(DType::F32, x.len())?;
    let dgamma = gpu.alloc(DType::F32, v.len)?;
    let dbeta = gpu.alloc(DType::F32, v.len)?;
    gpu.launch(Launch {
        entry: abi::BATCH_NORM_BACKWARD,
        constants: &[],
        params: bn_params(v, 0.0),
        tables: &[],
        buffers: &[
            (abi::X, gpu.f32_buffer(x)?),
            (abi::GAMMA, gpu.f32_buffer(gamma)?),
            (abi::DY, gpu.f32_buffer(dy)?),
            (abi::MEAN_IN, gpu.f32_buffer(&stats.mean)?),
            (abi::RSTD_IN, gpu.f32_buffer(&stats.rstd)?),
            (abi::DX, dx.buffer()),
            (abi::DGAMMA, dgamma.buffer()),
            (abi::DBETA, dbeta.buffer()),
        ],
        groups: gpu.workgroups(v.len),
    })?;
    Ok(NormGrads {
        dx: share(dx),
        dgamma: share(dgamma),
        dbeta: share(dbeta),
    })
}

fn row_params(rows: usize, cols: usize, a: RowAffine, eps: f32) -> RowNormParams {
    RowNormParams {
        rows: word(rows),
        cols: word(cols),
        groups: word(a.groups),
        cpg: word(a.channels_per_group),
        per_channel: word(a.per_channel),
        eps,
        ..Default::default()
    }
}

/// `x: [rows, cols]` normalised per row, then the affine transform.
#[allow(clippy::too_many_arguments)]
pub(crate) fn row_norm(
    gpu: &Gpu,
    x: &Storage,
    rows: usize,
    cols: usize,
    a: RowAffine,
    gamma: &Storage,
    beta: &Storage,
    eps: f32,
) -> Result<(Storage, NormStats)> {
    let y = gpu.alloc(DType::F32, x.len())?;
    let mean = gpu.alloc(DType::F32, rows)?;
    let rstd = gpu.alloc(DType::F32, rows)?;
    gpu.launch(Launch {
        entry: abi::ROW_NORM,
        constants: &[],
        params: row_params(rows, cols, a, eps),
        tables: &[],
        buffers: &[
            (abi::X, gpu.f32_buffer(x)?),
            (abi::GAMMA, gpu.f32_buffer(gamma)?),
            (abi::BETA, gpu.f32_buffer(beta)?),
            (abi::Y, y.buffer()),
            (abi::MEAN_OUT, mean.buffer()),
            (abi::RSTD_OUT, rstd.buffer()),
        ],
        groups: gpu.workgroups(rows),
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
    gpu: &Gpu,
    x: &Storage,
    dy: &Storage,
    rows: usize,
    cols: usize,
    a: RowAffine,
    gamma: &Storage,
    stats: &NormStats,
) -> Result<NormGrads> {
    let n_params = a.groups * a.channels_per_group;
    let dx = gpu.alloc(DType::F32, x.len())?;
    let dgamma = gpu.alloc(DType::F32, n_params)?;
    let dbeta = gpu.alloc(DType::F32, n_params)?;
    let params = row_params(rows, cols, a, 0.0);
    let (xb, dyb) = (gpu.f32_buffer(x)?, gpu.f32_buffer(dy)?);
    let (mb, rb) = (gpu.f32_buffer(&stats.mean)?, gpu.f32_buffer(&stats.rstd)?);
    gpu.launch(Launch {
        entry: abi::ROW_NORM_BACKWARD,
        constants: &[],
        params,
        tables: &[],
        buffers: &[
            (abi::X, xb),
            (abi::GAMMA, gpu.f32_buffer(gamma)?),
            (abi::DY, dyb),
            (abi::MEAN_IN, mb),
            (abi::RSTD_IN, rb),
            (abi::DX, dx.buffer()),
        ],
        groups: gpu.workgroups(rows),
    })?;
    gpu.launch(Launch {
        entry: abi::ROW_NORM_PARAMS_BACKWARD,
        constants: &[],
        params,
        tables: &[],
        buffers: &[
            (abi::X, xb),
            (abi::DY, dyb),
            (abi::MEAN_IN, mb),
            (abi::RSTD_IN, rb),
            (abi::DGAMMA, dgamma.buffer()),
            (abi::DBETA, dbeta.buffer()),
        ],
        groups: gpu.workgroups(n_params),
    })?;
    Ok(NormGrads {
        dx: share(dx),
        dgamma: share(dgamma),
        dbeta: share(dbeta),
    })
}
