//! Fused normalisation kernels. Statistics accumulate in f64.
//!
//! Batch norm sees `x: [outer=N, C, inner=HW]` and normalises per channel;
//! row norm sees `x: [rows, cols]` and normalises per row (layer norm: rows are
//! samples; group norm: rows are (sample, group) pairs).

use crate::backend::{AxisView, RowAffine};
use rayon::prelude::*;

/// Per channel: the `inner`-long runs of channel `c` across the batch.
fn channel_runs<'a>(x: &'a [f32], v: AxisView, c: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
    (0..v.outer).map(move |o| &x[(o * v.len + c) * v.inner..(o * v.len + c + 1) * v.inner])
}

/// Batch norm forward: returns `(y, mean[C], rstd[C])`.
pub fn batch_forward(
    x: &[f32],
    v: AxisView,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let m = v.outer * v.inner;
    let stats: Vec<(f32, f32)> = (0..v.len)
        .into_par_iter()
        .map(|c| {
            // Two passes: the mean, then the biased variance around it.
            let mean = channel_runs(x, v, c)
                .flatten()
                .map(|&e| e as f64)
                .sum::<f64>()
                / m as f64;
            let var = channel_runs(x, v, c)
                .flatten()
                .map(|&e| (e as f64 - mean).powi(2))
                .sum::<f64>()
                / m as f64;
            (mean as f32, (1.0 / (var + eps as f64).sqrt()) as f32)
        })
        .collect();
    let mut y = vec![0.0; x.len()];
    if v.inner > 0 {
        y.par_chunks_mut(v.inner)
            .enumerate()
            .for_each(|(plane, out)| {
                let c = plane % v.len;
                let (mean, rstd) = stats[c];
                let (s, b) = (gamma[c] * rstd, beta[c] - mean * gamma[c] * rstd);
                let src = &x[plane * v.inner..(plane + 1) * v.inner];
                for (o, &xv) in out.iter_mut().zip(src) {
                    *o = xv * s + b;
                }
            });
    }
    let (mean, rstd) = stats.into_iter().unzip();
    (y, mean, rstd)
}

/// Batch norm backward: `(dx, dgamma, dbeta)`, with
/// `dx = gamma * rstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat))`.
pub fn batch_backward(
    x: &[f32],
    dy: &[f32],
    v: AxisView,
    gamma: &[f32],
    mean: &[f32],
    rstd: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let m = (v.outer * v.inner) as f64;
    let sums: Vec<(f64, f64)> = (0..v.len)
        .into_par_iter()
        .map(|c| {
            let (mu, r) = (mean[c], rstd[c]);
            let mut sdy = 0.0f64;
            let mut sdyx = 0.0f64;
            for (xr, dr) in channel_runs(x, v, c).zip(channel_runs(dy, v, c)) {
                for (&xv, &d) in xr.iter().zip(dr) {
                    sdy += d as f64;
                    sdyx += (d * (xv - mu) * r) as f64;
                }
            }
            (sdy, sdyx)
        })
        .collect();
    let mut dx = vec![0.0; x.len()];
    if v.inner > 0 {
        dx.par_chunks_mut(v.inner)
            .enumerate()
            .for_each(|(plane, out)| {
                let c = plane % v.len;
                let (mu, r) = (mean[c], rstd[c]);
                let k = gamma[c] * r / m as f32;
                let (sdy, sdyx) = (sums[c].0 as f32, sums[c].1 as f32);
                let xs = &x[plane * v.inner..(plane + 1) * v.inner];
                let ds = &dy[plane * v.inner..(plane + 1) * v.inner];
                for ((o, &xv), &d) in out.iter_mut().zip(xs).zip(ds) {
                    let xhat = (xv - mu) * r;
                    *o = k * (m as f32 * d - sdy - xhat * sdyx);
                }
            });
    }
    let dgamma = sums.iter().map(|s| s.1 as f32).collect();
    let dbeta = sums.iter().map(|s| s.0 as f32).collect();
    (dx, dgamma, dbeta)
}

#[inline]
fn param_index(a: &RowAffine, row: usize, col: usize) -> usize {
    (row % a.groups) * a.channels_per_group + col / a.per_channel
}

/// Row norm forward: returns `(y, mean[rows], rstd[rows])`.
pub fn row_forward(
    x: &[f32],
    rows: usize,
    cols: usize,
    a: RowAffine,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut y = vec![0.0; x.len()];
    let mut mean = vec![0.0; rows];
    let mut rstd = vec![0.0; rows];
    y.par_chunks_mut(cols)
        .zip(mean.par_iter_mut().zip(rstd.par_iter_mut()))
        .enumerate()
        .for_each(|(r, (out, (mu, rs)))| {
            let src = &x[r * cols..(r + 1) * cols];
            let m = src.iter().map(|&v| v as f64).sum::<f64>() / cols as f64;
            let var = src.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / cols as f64;
            let inv = (1.0 / (var + eps as f64).sqrt()) as f32;
            let m = m as f32;
            for (j, (o, &v)) in out.iter_mut().zip(src).enumerate() {
                let p = param_index(&a, r, j);
                *o = (v - m) * inv * gamma[p] + beta[p];
            }
            *mu = m;
            *rs = inv;
        });
    (y, mean, rstd)
}

/// Row norm backward: `(dx, dgamma, dbeta)` with, per row,
/// `dx = rstd * (g - mean(g) - xhat * mean(g * xhat))`, `g = dy * gamma`.
#[allow(clippy::too_many_arguments)]
pub fn row_backward(
    x: &[f32],
    dy: &[f32],
    rows: usize,
    cols: usize,
    a: RowAffine,
    gamma: &[f32],
    mean: &[f32],
    rstd: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let params = gamma.len();
    let mut dx = vec![0.0; x.len()];
    dx.par_chunks_mut(cols).enumerate().for_each(|(r, out)| {
        let (xs, ds) = (&x[r * cols..(r + 1) * cols], &dy[r * cols..(r + 1) * cols]);
        let (mu, rs) = (mean[r], rstd[r]);
        let mut sg = 0.0f64;
        let mut sgx = 0.0f64;
        for (j, (&xv, &d)) in xs.iter().zip(ds).enumerate() {
            let g = d * gamma[param_index(&a, r, j)];
            sg += g as f64;
            sgx += (g * (xv - mu) * rs) as f64;
        }
        let (mg, mgx) = ((sg / cols as f64) as f32, (sgx / cols as f64) as f32);
        for (j, ((o, &xv), &d)) in out.iter_mut().zip(xs).zip(ds).enumerate() {
            let g = d * gamma[param_index(&a, r, j)];
            *o = rs * (g - mg - (xv - mu) * rs * mgx);
        }
    });
    // Parameter gradients: fixed chunks of rows in parallel, combined in chunk
    // order, so the floating-point sum is the same on every run.
    const ROWS_PER_CHUNK: usize = 16;
    let partials: Vec<(Vec<f64>, Vec<f64>)> = (0..rows.div_ceil(ROWS_PER_CHUNK))
        .into_par_iter()
        .map(|chunk| {
            let (mut dg, mut db) = (vec![0.0f64; params], vec![0.0f64; params]);
            for r in chunk * ROWS_PER_CHUNK..((chunk + 1) * ROWS_PER_CHUNK).min(rows) {
                let (mu, rs) = (mean[r], rstd[r]);
                for j in 0..cols {
                    let p = param_index(&a, r, j);
                    let d = dy[r * cols + j];
                    dg[p] += (d * (x[r * cols + j] - mu) * rs) as f64;
                    db[p] += d as f64;
                }
            }
            (dg, db)
        })
        .collect();
    let (mut dg, mut db) = (vec![0.0f64; params], vec![0.0f64; params]);
    for (pg, pb) in partials {
        dg.iter_mut().zip(pg).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    (
        dx,
        dg.into_iter().map(|v| v as f32).collect(),
        db.into_iter().map(|v| v as f32).collect(),
    )
}
