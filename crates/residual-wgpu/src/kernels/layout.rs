//! Strided gathers, concatenation and index_select / index_add
//! (`shaders/layout.wgsl`).

use super::word;
use crate::backend::{share, WgpuBackend};
use crate::context::Dispatch;
use residual_tensor::backend::{coalesce, AxisView, Storage};
use residual_tensor::{DType, Result, Shape};

/// `y[i] = x[offset + sum(i_d * strides[d])]` over `out_shape`.
pub(crate) fn strided_copy(
    be: &WgpuBackend,
    x: &Storage,
    out_shape: &Shape,
    strides: &[usize],
    offset: usize,
) -> Result<Storage> {
    let n = out_shape.numel();
    let (dims, s) = coalesce(out_shape.dims(), &[strides]);
    let mut params = vec![word(n), word(dims.len()), word(offset)];
    params.extend(dims.iter().map(|&d| word(d)));
    params.extend(s[0].iter().map(|&d| word(d)));
    let y = be.alloc(DType::F32, n)?;
    be.launch(Dispatch {
        shader: "layout",
        entry: "strided_copy",
        constants: &[],
        params: &params,
        buffers: &[(1, be.f32_buffer(x)?), (2, y.buffer())],
        groups: be.threads(n),
    })?;
    Ok(share(y))
}

/// Concatenation along the middle axis of `[outer, len_i, inner]` parts.
pub(crate) fn concat(
    be: &WgpuBackend,
    parts: &[(&Storage, usize)],
    outer: usize,
    inner: usize,
) -> Result<Storage> {
    let total: usize = parts.iter().map(|p| p.1).sum();
    let y = be.alloc(DType::F32, outer * total * inner)?;
    let mut at = 0;
    for (part, len) in parts {
        be.launch(Dispatch {
            shader: "layout",
            entry: "copy_block",
            constants: &[],
            params: &[word(outer), word(*len), word(inner), word(total), word(at)],
            buffers: &[(1, be.f32_buffer(part)?), (2, y.buffer())],
            groups: be.threads(outer * len * inner),
        })?;
        at += len;
    }
    Ok(share(y))
}

fn index_params(v: AxisView, index: &[usize]) -> Vec<u32> {
    let mut params = vec![word(v.outer), word(v.len), word(v.inner), word(index.len())];
    params.extend(index.iter().map(|&i| word(i)));
    params
}

/// `y: [outer, index.len(), inner] = x[:, index, :]`
pub(crate) fn index_select(
    be: &WgpuBackend,
    x: &Storage,
    v: AxisView,
    index: &[usize],
) -> Result<Storage> {
    let n = v.outer * index.len() * v.inner;
    let y = be.alloc(DType::F32, n)?;
    be.launch(Dispatch {
        shader: "layout",
        entry: "index_select",
        constants: &[],
        params: &index_params(v, index),
        buffers: &[(1, be.f32_buffer(x)?), (2, y.buffer())],
        groups: be.threads(n),
    })?;
    Ok(share(y))
}

/// `dx: [outer, len, inner]` with `dx[:, index[j], :] += dy[:, j, :]`
pub(crate) fn index_add(
    be: &WgpuBackend,
    dy: &Storage,
    v: AxisView,
    index: &[usize],
) -> Result<Storage> {
    let n = v.outer * v.len * v.inner;
    let y = be.alloc(DType::F32, n)?;
    be.launch(Dispatch {
        shader: "layout",
        entry: "index_add",
        constants: &[],
        params: &index_params(v, index),
        buffers: &[(1, be.f32_buffer(dy)?), (2, y.buffer())],
        groups: be.threads(n),
    })?;
    Ok(share(y))
}
