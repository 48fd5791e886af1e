//! Strided gathers, concatenation and index_select / index_add
//! (`shaders/layout.wgsl`).

use crate::contract::layout::{self as abi, BlockParams, CopyParams, IndexParams};
use crate::launch::{share, word, Gpu, Launch};
use residual_tensor::backend::{coalesce, AxisView, Storage};
use residual_tensor::{DType, Result, Shape};

/// `y[i] = x[offset + sum(i_d * strides[d])]` over `out_shape`.
pub(crate) fn strided_copy(
    gpu: &Gpu,
    x: &Storage,
    out_shape: &Shape,
    strides: &[usize],
    offset: usize,
) -> Result<Storage> {
    let n = out_shape.numel();
    let (dims, s) = coalesce(out_shape.dims(), &[strides]);
    // shape: [dims[rank], strides[rank]]
    let mut shape: Vec<u32> = dims.iter().map(|&d| word(d)).collect();
    shape.extend(s[0].iter().map(|&d| word(d)));
    let y = gpu.alloc(DType::F32, n)?;
    gpu.launch(Launch {
        entry: abi::STRIDED_COPY,
        constants: &[],
        params: CopyParams {
            n: word(n),
            rank: word(dims.len()),
            offset: word(offset),
            ..Default::default()
        },
        tables: &[(abi::SHAPE, &shape)],
        buffers: &[(abi::X, gpu.f32_buffer(x)?), (abi::Y, y.buffer())],
        groups: gpu.threads(n),
    })?;
    Ok(share(y))
}

/// Concatenation along the middle axis of `[outer, len_i, inner]` parts.
pub(crate) fn concat(
    gpu: &Gpu,
    parts: &[(&Storage, usize)],
    outer: usize,
    inner: usize,
) -> Result<Storage> {
    let total: usize = parts.iter().map(|p| p.1).sum();
    let y = gpu.alloc(DType::F32, outer * total * inner)?;
    let mut at = 0;
    for (part, len) in parts {
        gpu.launch(Launch {
            entry: abi::COPY_BLOCK,
            constants: &[],
            params: BlockParams {
                outer: word(outer),
                len: word(*len),
                inner: word(inner),
                total_len: word(total),
                at: word(at),
                ..Default::default()
            },
            tables: &[],
            buffers: &[(abi::X, gpu.f32_buffer(part)?), (abi::Y, y.buffer())],
            groups: gpu.threads(outer * len * inner),
        })?;
        at += len;
    }
    Ok(share(y))
}

fn index_params(v: AxisView, index: &[usize]) -> (IndexParams, Vec<u32>) {
    let params = IndexParams {
        outer: word(v.outer),
        len: word(v.len),
        inner: word(v.inner),
        count: word(index.len()),
    };
    (params, index.iter().map(|&i| word(i)).collect())
}

/// `y: [outer, index.len(), inner] = x[:, index, :]`
pub(crate) fn index_select(
    gpu: &Gpu,
    x: &Storage,
    v: AxisView,
    index: &[usize],
) -> Result<Storage> {
    let n = v.outer * index.len() * v.inner;
    let y = gpu.alloc(DType::F32, n)?;
    let (params, positions) = index_params(v, index);
    gpu.launch(Launch {
        entry: abi::INDEX_SELECT,
        constants: &[],
        params,
        tables: &[(abi::POSITIONS, &positions)],
        buffers: &[(abi::X, gpu.f32_buffer(x)?), (abi::Y, y.buffer())],
        groups: gpu.threads(n),
    })?;
    Ok(share(y))
}

/// `dx: [outer, len, inner]` with `dx[:, index[j], :] += dy[:, j, :]`
pub(crate) fn index_add(gpu: &Gpu, dy: &Storage, v: AxisView, index: &[usize]) -> Result<Storage> {
    let n = v.outer * v.len * v.inner;
    let y = gpu.alloc(DType::F32, n)?;
    let (params, positions) = index_params(v, index);
    gpu.launch(Launch {
        entry: abi::INDEX_ADD,
        constants: &[],
        params,
        tables: &[(abi::POSITIONS, &positions)],
        buffers: &[(abi::X, gpu.f32_buffer(dy)?), (abi::Y, y.buffer())],
        groups: gpu.threads(n),
    })?;
    Ok(share(y))
}
