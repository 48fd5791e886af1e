//! Reductions over sets of axes, and argmax.

use super::layout::strided_copy;
use crate::backend::{AxisView, ReduceOp};
use crate::Shape;
use rayon::prelude::*;

/// Reduces `x: shape` over sorted `axes`; output has those axes set to 1.
/// The reduced axes are first gathered to the end (one strided copy unless they
/// already are trailing), then each contiguous row is reduced in f64 for sums.
pub fn reduce(op: ReduceOp, x: &[f32], shape: &Shape, axes: &[usize]) -> Vec<f32> {
    let dims = shape.dims();
    let kept: Vec<usize> = (0..dims.len()).filter(|d| !axes.contains(d)).collect();
    let row: usize = axes.iter().map(|&a| dims[a]).product();
    let rows: usize = kept.iter().map(|&a| dims[a]).product();
    let trailing = axes
        .iter()
        .enumerate()
        .all(|(i, &a)| a == dims.len() - axes.len() + i);
    let gathered;
    let data: &[f32] = if trailing {
        x
    } else {
        let perm: Vec<usize> = kept.iter().chain(axes).copied().collect();
        let st = shape.strides();
        let out = Shape::new(perm.iter().map(|&p| dims[p]).collect::<Vec<_>>());
        let strides: Vec<usize> = perm.iter().map(|&p| st[p]).collect();
        gathered = strided_copy(x, &out, &strides, 0);
        &gathered
    };
    let mut y = vec![0.0; rows];
    if row == 0 {
        return y; // sums of nothing (max over empty is rejected by the op)
    }
    y.par_iter_mut()
        .enumerate()
        .with_min_len(64)
        .for_each(|(r, y)| {
            let s = &data[r * row..(r + 1) * row];
            *y = match op {
                ReduceOp::Sum => s.iter().map(|&v| v as f64).sum::<f64>() as f32,
                ReduceOp::Max => s.iter().copied().fold(f32::NEG_INFINITY, |m, v| {
                    if v > m || v.is_nan() {
                        v
                    } else {
                        m
                    }
                }),
            };
        });
    y
}

/// Index of the first NaN along the axis, else of the first maximum (as
/// PyTorch's argmax), for each `(outer, inner)`.
pub fn argmax(x: &[f32], v: AxisView) -> Vec<u32> {
    let mut out = vec![0u32; v.outer * v.inner];
    for o in 0..v.outer {
        for i in 0..v.inner {
            let line = (0..v.len).map(|j| x[(o * v.len + j) * v.inner + i]);
            out[o * v.inner + i] = first_max(line) as u32;
        }
    }
    out
}

/// Position of the first NaN of `line`, else of its first maximum (0 when empty).
fn first_max(line: impl Iterator<Item = f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (j, val) in line.enumerate() {
        if val.is_nan() {
            return j;
        }
        if val > best.1 || j == 0 {
            best = (j, val);
        }
    }
    best.0
}
