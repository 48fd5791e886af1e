//! Softmax, log-softmax and cross-entropy kernels, over `[outer, len, inner]`.

use crate::backend::AxisView;
use rayon::prelude::*;

/// Calls `f(base, i, block)` for each line along the axis: element `j` of the
/// line is at `base + j * inner` in the inputs and at `i + j * inner` in the
/// output `block` (the line's `[len, inner]` block of `out`).
fn for_each_line(out: &mut [f32], v: AxisView, f: impl Fn(usize, usize, &mut [f32]) + Sync) {
    let block = v.len * v.inner;
    if block == 0 {
        return;
    }
    out.par_chunks_mut(block).enumerate().for_each(|(o, blk)| {
        for i in 0..v.inner {
            let base = o * block + i;
            f(base, i, blk);
        }
    });
}

/// Softmax or log-softmax along the axis (max-subtracted, f64 sum).
pub fn forward(x: &[f32], v: AxisView, log: bool) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    let (len, inner) = (v.len, v.inner);
    for_each_line(&mut y, v, |base, off, blk| {
        let idx = |j: usize| base + j * inner;
        let m = (0..len)
            .map(|j| x[idx(j)])
            .fold(f32::NEG_INFINITY, f32::max);
        let sum: f64 = (0..len).map(|j| ((x[idx(j)] - m) as f64).exp()).sum();
        let lse = m + sum.ln() as f32;
        for j in 0..len {
            let z = x[idx(j)];
            blk[off + j * inner] = if log {
                z - lse
            } else {
                ((z - m) as f64).exp() as f32 / sum as f32
            };
        }
    });
    y
}

/// Backward from the output `y`.
pub fn backward(y: &[f32], dy: &[f32], v: AxisView, log: bool) -> Vec<f32> {
    let mut dx = vec![0.0; y.len()];
    let (len, inner) = (v.len, v.inner);
    for_each_line(&mut dx, v, |base, off, blk| {
        let idx = |j: usize| base + j * inner;
        if log {
            let s: f64 = (0..len).map(|j| dy[idx(j)] as f64).sum();
            for j in 0..len {
                blk[off + j * inner] = dy[idx(j)] - y[idx(j)].exp() * s as f32;
            }
        } else {
            let s: f64 = (0..len).map(|j| (dy[idx(j)] * y[idx(j)]) as f64).sum();
            for j in 0..len {
                blk[off + j * inner] = y[idx(j)] * (dy[idx(j)] - s as f32);
            }
        }
    });
    dx
}

/// Per-row log-softmax of `[n, c]` logits.
fn log_probs(row: &[f32]) -> Vec<f32> {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = m + row
        .iter()
        .map(|&z| ((z - m) as f64).exp())
        .sum::<f64>()
        .ln() as f32;
    row.iter().map(|&z| z - lse).collect()
}

/// Mean over rows of `-(1 - eps) * logp[t] - eps / c * sum(logp)`.
pub fn cross_entropy(logits: &[f32], n: usize, c: usize, targets: &[usize], eps: f32) -> f32 {
    // Per-row losses in parallel, summed in row order: the same result on every run.
    let rows: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| {
            let lp = log_probs(&logits[i * c..(i + 1) * c]);
            let nll = -lp[targets[i]] as f64;
            if eps == 0.0 {
                // Not `nll + 0 * smooth`: a -Inf logit off the target makes
                // `smooth` infinite, and the plain loss stays finite.
                return nll;
            }
            let smooth = -lp.iter().map(|&v| v as f64).sum::<f64>() / c as f64;
            (1.0 - eps as f64) * nll + eps as f64 * smooth
        })
        .collect();
    let total: f64 = rows.iter().sum();
    (total / n as f64) as f32
}

/// `dlogits = dloss / n * (softmax - (1 - eps) * onehot - eps / c)`.
pub fn cross_entropy_backward(
    logits: &[f32],
    n: usize,
    c: usize,
    targets: &[usize],
    eps: f32,
    dloss: f32,
) -> Vec<f32> {
    let mut dx = vec![0.0; n * c];
    let k = dloss / n as f32;
    dx.par_chunks_mut(c).enumerate().for_each(|(i, out)| {
        let lp = log_probs(&logits[i * c..(i + 1) * c]);
        for (j, o) in out.iter_mut().enumerate() {
            let target = if j == targets[i] { 1.0 - eps } else { 0.0 } + eps / c as f32;
            *o = k * (lp[j].exp() - target);
        }
    });
    dx
}
