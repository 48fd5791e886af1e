//! Layout kernels: strided gather, concat, index_select and its backward.

use super::fill::{par_fill, PAR_CHUNK};
use crate::backend::{coalesce, AxisView};
use crate::Shape;

/// `out[i] = x[offset + sum_d i_d * strides[d]]` over every index of `out`.
pub fn strided_copy(x: &[f32], out: &Shape, strides: &[usize], offset: usize) -> Vec<f32> {
    let out_strides = out.strides();
    let (dims, st) = coalesce(out.dims(), &[strides, &out_strides]);
    let out = &Shape::new(dims);
    let strides = &st[0][..];
    let n = out.numel();
    if n == 0 {
        return Vec::new();
    }
    let dims = out.dims();
    if dims.is_empty() {
        return vec![x[offset]];
    }
    let r = dims.len();
    let last = dims[r - 1];
    let ls = strides[r - 1];
    let rows_per_task = (PAR_CHUNK / last).max(1);
    // SAFETY: each task's run is whole rows of `last` elements, and every
    // element of every row is written.
    unsafe {
        par_fill(n, last * rows_per_task, |task, chunk| {
            for (j, row) in chunk.chunks_mut(last).enumerate() {
                let mut rest = task * rows_per_task + j;
                let mut o = offset;
                for d in (0..r - 1).rev() {
                    o += (rest % dims[d]) * strides[d];
                    rest /= dims[d];
                }
                if ls == 1 {
                    for (y, &v) in row.iter_mut().zip(&x[o..o + last]) {
                        y.write(v);
                    }
                } else {
                    for (k, y) in row.iter_mut().enumerate() {
                        y.write(x[o + k * ls]);
                    }
                }
            }
        })
    }
}

/// Concatenation of `[outer, len_p, inner]` parts along the middle axis.
pub fn concat(parts: &[(&[f32], usize)], outer: usize, inner: usize) -> Vec<f32> {
    let total: usize = parts.iter().map(|p| p.1).sum();
    let mut y = Vec::with_capacity(outer * total * inner);
    for o in 0..outer {
        for (data, len) in parts {
            let block = len * inner;
            y.extend_from_slice(&data[o * block..(o + 1) * block]);
        }
    }
    y
}

/// `out[o, j, i] = x[o, index[j], i]`.
pub fn index_select(x: &[f32], v: AxisView, index: &[usize]) -> Vec<f32> {
    let mut y = Vec::with_capacity(v.outer * index.len() * v.inner);
    for o in 0..v.outer {
        for &j in index {
            let s = (o * v.len + j) * v.inner;
            y.extend_from_slice(&x[s..s + v.inner]);
        }
    }
    y
}

/// `dx[o, index[j], i] += dy[o, j, i]`, `dx: [outer, len, inner]`.
pub fn index_add(dy: &[f32], v: AxisView, index: &[usize]) -> Vec<f32> {
    let mut dx = vec![0.0; v.outer * v.len * v.inner];
    for o in 0..v.outer {
        for (j, &t) in index.iter().enumerate() {
            let src = (o * index.len() + j) * v.inner;
            let dst = (o * v.len + t) * v.inner;
            for i in 0..v.inner {
                dx[dst + i] += dy[src + i];
            }
        }
    }
    dx
}
