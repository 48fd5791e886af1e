//! Fused normalisation kernels. Statistics accumulate in vectorised f32 lanes
//! over blocks of 4096 elements, carried into f64 (a layer norm's per-column
//! parameter sums: in f32 over chunks of 16 rows, carried into f64).
//!
//! Batch norm sees `x: [outer=N, C, inner=HW]` and normalises per channel;
//! row norm sees `x: [rows, cols]` and normalises per row (layer norm: rows are
//! samples; group norm: rows are (sample, group) pairs).

use super::fill::{assume_init_vec, par_fill, uninit_vec, PAR_CHUNK};
use super::storage::Float;
use super::wide::wide;
use crate::backend::Storage;
use crate::backend::{AxisView, RowAffine};
use rayon::prelude::*;

/// Per channel: the `inner`-long runs of channel `c` across the batch.
fn channel_runs<'a, T>(x: &'a [T], v: AxisView, c: usize) -> impl Iterator<Item = &'a [T]> + 'a {
    (0..v.outer).map(move |o| &x[(o * v.len + c) * v.inner..(o * v.len + c + 1) * v.inner])
}

/// f32 lanes of the vectorised sums: 16 lanes fill one AVX-512 register.
const LANES: usize = 16;
/// Elements summed in f32 lanes before the lanes are added into f64.
const BLOCK: usize = 4096;

/// The `S` sums of the terms `f(x, y)` over the pairs of `x` and `y` (equal
/// lengths): [`lane_sums3`] with `x` as its unread third slice.
#[inline]
fn lane_sums<const S: usize, A: Float, B: Float>(
    x: &[A],
    y: &[B],
    f: impl Fn(f32, f32) -> [f32; S],
) -> [f64; S] {
    lane_sums3(x, y, x, |a, b, _| f(a, b))
}

/// The `S` sums of the terms `f(x, y, z)` over the triples of `x`, `y` and
/// `z` (equal lengths; a layer norm's rows with their per-column parameters),
/// each in f32 lanes that the compiler vectorises, carried into f64 every
/// [`BLOCK`] elements.
/// The lanes are independent, so the sums are the same bits at every width.
#[inline]
fn lane_sums3<const S: usize, A: Float, B: Float, C: Float>(
    x: &[A],
    y: &[B],
    z: &[C],
    f: impl Fn(f32, f32, f32) -> [f32; S],
) -> [f64; S] {
    wide(
        #[inline(always)]
        || lane_sums3_loop(x, y, z, f),
    )
}

/// The loop of [`lane_sums3`].
#[inline(always)]
fn lane_sums3_loop<const S: usize, A: Float, B: Float, C: Float>(
    x: &[A],
    y: &[B],
    z: &[C],
    f: impl Fn(f32, f32, f32) -> [f32; S],
) -> [f64; S] {
    let mut sums = [0.0f64; S];
    for ((xb, yb), zb) in x.chunks(BLOCK).zip(y.chunks(BLOCK)).zip(z.chunks(BLOCK)) {
        let mut acc = [[0.0f32; LANES]; S];
        let (xc, yc, zc) = (
            xb.chunks_exact(LANES),
            yb.chunks_exact(LANES),
            zb.chunks_exact(LANES),
        );
        let (xr, yr, zr) = (xc.remainder(), yc.remainder(), zc.remainder());
        for ((xl, yl), zl) in xc.zip(yc).zip(zc) {
            for l in 0..LANES {
                let terms = f(xl[l].to_f32(), yl[l].to_f32(), zl[l].to_f32());
                for (a, t) in acc.iter_mut().zip(terms) {
                    a[l] += t;
                }
            }
        }
        for ((a, b), c) in xr.iter().zip(yr).zip(zr) {
            let terms = f(a.to_f32(), b.to_f32(), c.to_f32());
            for (a, t) in acc.iter_mut().zip(terms) {
                a[0] += t;
            }
        }
        for (s, a) in sums.iter_mut().zip(&acc) {
            *s += a.iter().map(|&v| v as f64).sum::<f64>();
        }
    }
    sums
}

/// Planes (runs of `inner` elements) per rayon task: about [`PAR_CHUNK`] elements.
fn planes_per_task(inner: usize) -> usize {
    (PAR_CHUNK / inner.max(1)).max(1)
}

/// Batch norm forward: returns `(y, mean[C], rstd[C])`. `x` may be a half
/// type (mixed precision, as PyTorch's batch norm takes a bf16 input): the
/// arithmetic is f32 and `y` is rounded once to `x`'s type.
pub fn batch_forward<X: Float>(
    x: &[X],
    v: AxisView,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) -> (Vec<X>, Vec<f32>, Vec<f32>) {
    let m = (v.outer * v.inner) as f64;
    let stats: Vec<(f32, f32)> = (0..v.len)
        .into_par_iter()
        .map(|c| {
            // Two passes: the mean, then the biased variance around it.
            let sum: f64 = channel_runs(x, v, c)
                .map(|r| lane_sums(r, r, |a, _| [a])[0])
                .sum();
            let mean = (sum / m) as f32;
            let sq: f64 = channel_runs(x, v, c)
                .map(|r| lane_sums(r, r, |a, _| [(a - mean) * (a - mean)])[0])
                .sum();
            let var = sq / m;
            (mean, (1.0 / (var + eps as f64).sqrt()) as f32)
        })
        .collect();
    let per_task = planes_per_task(v.inner);
    // SAFETY: each task's run is whole planes of `inner` elements, and every
    // element of every plane is written.
    let y = unsafe {
        par_fill(x.len(), per_task * v.inner, |task, out| {
            for (j, out) in out.chunks_mut(v.inner.max(1)).enumerate() {
                let plane = task * per_task + j;
                let c = plane % v.len;
                let (mean, rstd) = stats[c];
                let (s, b) = (gamma[c] * rstd, beta[c] - mean * gamma[c] * rstd);
                let src = &x[plane * v.inner..(plane + 1) * v.inner];
                wide(
                    #[inline(always)]
                    || {
                        for (o, &xv) in out.iter_mut().zip(src) {
                            o.write(X::from_f32(xv.to_f32() * s + b));
                        }
                    },
                )
            }
        })
    };
    let (mean, rstd) = stats.into_iter().unzip();
    (y, mean, rstd)
}

/// Batch norm backward: `(dx, dgamma, dbeta)`, with
/// `dx = gamma * rstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat))`.
/// `dx` has the type of `x` (rounded once from f32); `dy` is f32 or `x`'s
/// type.
pub fn batch_backward<X: Float, D: Float>(
    x: &[X],
    dy: &[D],
    v: AxisView,
    gamma: &[f32],
    mean: &[f32],
    rstd: &[f32],
) -> (Storage, Vec<f32>, Vec<f32>) {
    let m = (v.outer * v.inner) as f64;
    let sums: Vec<(f64, f64)> = (0..v.len)
        .into_par_iter()
        .map(|c| {
            let (mu, r) = (mean[c], rstd[c]);
            channel_runs(x, v, c)
                .zip(channel_runs(dy, v, c))
                .map(|(xr, dr)| lane_sums(dr, xr, |d, xv| [d, d * (xv - mu) * r]))
                .fold((0.0, 0.0), |(a, b), [c, d]| (a + c, b + d))
        })
        .collect();
    let per_task = planes_per_task(v.inner);
    // SAFETY: each task's run is whole planes of `inner` elements, and every
    // element of every plane is written.
    let dx = unsafe {
        par_fill(x.len(), per_task * v.inner, |task, out| {
            for (j, out) in out.chunks_mut(v.inner.max(1)).enumerate() {
                let plane = task * per_task + j;
                let c = plane % v.len;
                let (mu, r) = (mean[c], rstd[c]);
                let k = gamma[c] * r / m as f32;
                let (sdy, sdyx) = (sums[c].0 as f32, sums[c].1 as f32);
                let xs = &x[plane * v.inner..(plane + 1) * v.inner];
                let ds = &dy[plane * v.inner..(plane + 1) * v.inner];
                wide(
                    #[inline(always)]
                    || {
                        for ((o, &xv), &d) in out.iter_mut().zip(xs).zip(ds) {
                            let xhat = (xv.to_f32() - mu) * r;
                            o.write(X::from_f32(k * (m as f32 * d.to_f32() - sdy - xhat * sdyx)));
                        }
                    },
                )
            }
        })
    };
    let dgamma = sums.iter().map(|s| s.1 as f32).collect();
    let dbeta = sums.iter().map(|s| s.0 as f32).collect();
    (X::into_storage(dx), dgamma, dbeta)
}

/// Calls `f(columns, first_param, per_column)` for the runs of row `r`'s
/// columns that read their affine parameters alike: with one parameter per
/// column (layer norm) the whole row, its parameters `first_param..` one per
/// column (`per_column`); otherwise each run of `per_channel` columns sharing
/// the parameter `first_param` (group norm's channel planes). No per-element
/// index arithmetic, so the loops over a run vectorise.
#[inline]
fn affine_runs(
    a: &RowAffine,
    r: usize,
    cols: usize,
    mut f: impl FnMut(std::ops::Range<usize>, usize, bool),
) {
    let first = (r % a.groups) * a.channels_per_group;
    if a.per_channel == 1 {
        f(0..cols, first, true);
        return;
    }
    for (k, start) in (0..cols).step_by(a.per_channel.max(1)).enumerate() {
        f(start..(start + a.per_channel).min(cols), first + k, false);
    }
}

/// Row norm forward: returns `(y, mean[rows], rstd[rows])`. Statistics in
/// two passes (the mean, then the variance around it), each summed in f32
/// lanes carried into f64. `x` may be a half type (a convolution's output
/// under mixed precision); the arithmetic is f32 and `y` is rounded once to
/// `x`'s type.
pub fn row_forward<X: Float>(
    x: &[X],
    rows: usize,
    cols: usize,
    a: RowAffine,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) -> (Vec<X>, Vec<f32>, Vec<f32>) {
    // The rows below cover `y` only when it holds exactly `rows` of them.
    assert_eq!(x.len(), rows * cols, "row_forward: x is not [rows, cols]");
    let mut y = uninit_vec::<X>(x.len());
    let mut mean = vec![0.0; rows];
    let mut rstd = vec![0.0; rows];
    y.par_chunks_mut(cols)
        .zip(mean.par_iter_mut().zip(rstd.par_iter_mut()))
        .enumerate()
        .for_each(|(r, (out, (mu, rs)))| {
            let src = &x[r * cols..(r + 1) * cols];
            let [sum] = lane_sums(src, src, |v, _| [v]);
            let m = (sum / cols as f64) as f32;
            let [ss] = lane_sums(src, src, |v, _| [(v - m) * (v - m)]);
            let var = ss / cols as f64;
            let inv = (1.0 / (var + eps as f64).sqrt()) as f32;
            affine_runs(&a, r, cols, |run, p, per_column| {
                let (o, v) = (&mut out[run.clone()], &src[run.clone()]);
                if per_column {
                    let (g, b) = (&gamma[p..p + run.len()], &beta[p..p + run.len()]);
                    wide(
                        #[inline(always)]
                        || {
                            for (((o, &v), &g), &b) in o.iter_mut().zip(v).zip(g).zip(b) {
                                o.write(X::from_f32((v.to_f32() - m) * inv * g + b));
                            }
                        },
                    );
                } else {
                    let (g, b) = (gamma[p], beta[p]);
                    wide(
                        #[inline(always)]
                        || {
                            for (o, &v) in o.iter_mut().zip(v) {
                                o.write(X::from_f32((v.to_f32() - m) * inv * g + b));
                            }
                        },
                    );
                }
            });
            *mu = m;
            *rs = inv;
        });
    // SAFETY: `affine_runs` covers every column of every row, and each
    // column of a run is written.
    (unsafe { assume_init_vec(y) }, mean, rstd)
}

/// Row norm backward: `(dx, dgamma, dbeta)` with, per row,
/// `dx = rstd * (g - mean(g) - xhat * mean(g * xhat))`, `g = dy * gamma`.
/// `dx` has the type of `x` (rounded once from f32); `dy` is f32 or `x`'s
/// type.
///
/// Group norm's parameter gradients are the per-channel sums of the first
/// pass over each row, so it reads `x` and `dy` twice; with one parameter per
/// column (a layer norm, or a group norm of 1x1 planes) they are
/// sums down the columns, a third pass in chunks of rows.
#[allow(clippy::too_many_arguments)]
pub fn row_backward<X: Float, D: Float>(
    x: &[X],
    dy: &[D],
    rows: usize,
    cols: usize,
    a: RowAffine,
    gamma: &[f32],
    mean: &[f32],
    rstd: &[f32],
) -> (Storage, Vec<f32>, Vec<f32>) {
    // The rows below cover `dx` only when it holds exactly `rows` of them.
    assert_eq!(x.len(), rows * cols, "row_backward: x is not [rows, cols]");
    assert!(dy.len() == x.len() && mean.len() >= rows && rstd.len() >= rows);
    let per_column = a.per_channel == 1;
    // Group norm: each row's `[sum dy, sum dy * xhat]` per channel run.
    let runs = if per_column {
        1
    } else {
        cols.div_ceil(a.per_channel.max(1))
    };
    let mut run_sums = vec![[0.0f64; 2]; rows * runs];
    let mut dx = uninit_vec::<X>(x.len());
    dx.par_chunks_mut(cols)
        .zip(run_sums.par_chunks_mut(runs))
        .enumerate()
        .for_each(|(r, (out, sums))| {
            let (xs, ds) = (&x[r * cols..(r + 1) * cols], &dy[r * cols..(r + 1) * cols]);
            let (mu, rs) = (mean[r], rstd[r]);
            let (mut sg, mut sgx) = (0.0f64, 0.0f64);
            affine_runs(&a, r, cols, |run, p, per_column| {
                let (xv, dv) = (&xs[run.clone()], &ds[run.clone()]);
                if per_column {
                    // g = dy * gamma per column: sums of g and g * xhat.
                    let gs = &gamma[p..p + run.len()];
                    let [s0, s1] = lane_sums3(dv, xv, gs, |d, x, g| [d * g, d * g * (x - mu) * rs]);
                    sg += s0;
                    sgx += s1;
                } else {
                    let [sd, sdx] = lane_sums(dv, xv, |d, x| [d, d * (x - mu) * rs]);
                    sums[run.start / a.per_channel] = [sd, sdx];
                    let gp = gamma[p] as f64;
                    sg += gp * sd;
                    sgx += gp * sdx;
                }
            });
            let (mg, mgx) = ((sg / cols as f64) as f32, (sgx / cols as f64) as f32);
            affine_runs(&a, r, cols, |run, p, per_column| {
                let (o, xv, dv) = (&mut out[run.clone()], &xs[run.clone()], &ds[run.clone()]);
                if per_column {
                    let g = &gamma[p..p + run.len()];
                    wide(
                        #[inline(always)]
                        || {
                            for (((o, &x), &d), &g) in o.iter_mut().zip(xv).zip(dv).zip(g) {
                                let xhat = (x.to_f32() - mu) * rs;
                                o.write(X::from_f32(rs * (d.to_f32() * g - mg - xhat * mgx)));
                            }
                        },
                    );
                } else {
                    let g = gamma[p];
                    wide(
                        #[inline(always)]
                        || {
                            for ((o, &x), &d) in o.iter_mut().zip(xv).zip(dv) {
                                let xhat = (x.to_f32() - mu) * rs;
                                o.write(X::from_f32(rs * (d.to_f32() * g - mg - xhat * mgx)));
                            }
                        },
                    );
                }
            });
        });
    // SAFETY: `affine_runs` covers every column of every row, and each
    // column of a run is written.
    let dx = X::into_storage(unsafe { assume_init_vec(dx) });
    let (dg, db) = if per_column {
        column_param_grads(x, dy, rows, cols, a, gamma.len(), mean, rstd)
    } else {
        // Rows in order, so the floating-point sum is the same on every run.
        let (mut dg, mut db) = (vec![0.0f64; gamma.len()], vec![0.0f64; gamma.len()]);
        for (r, sums) in run_sums.chunks(runs).enumerate() {
            let first = (r % a.groups) * a.channels_per_group;
            for (k, [sd, sdx]) in sums.iter().enumerate() {
                dg[first + k] += sdx;
                db[first + k] += sd;
            }
        }
        (dg, db)
    };
    (
        dx,
        dg.into_iter().map(|v| v as f32).collect(),
        db.into_iter().map(|v| v as f32).collect(),
    )
}

/// A layer norm's parameter gradients `(dgamma, dbeta)` in f64, one per
/// column: `sum over rows of dy * xhat` and `sum of dy`. Fixed chunks of rows
/// in parallel, each summed in f32 (a loop over the columns, which
/// vectorises) and combined in chunk order, so the floating-point sum is the
/// same on every run.
#[allow(clippy::too_many_arguments)]
fn column_param_grads<X: Float, D: Float>(
    x: &[X],
    dy: &[D],
    rows: usize,
    cols: usize,
    a: RowAffine,
    params: usize,
    mean: &[f32],
    rstd: &[f32],
) -> (Vec<f64>, Vec<f64>) {
    const ROWS_PER_CHUNK: usize = 16;
    let partials: Vec<(Vec<f32>, Vec<f32>)> = (0..rows.div_ceil(ROWS_PER_CHUNK))
        .into_par_iter()
        .map(|chunk| {
            let (mut dg, mut db) = (vec![0.0f32; params], vec![0.0f32; params]);
            for r in chunk * ROWS_PER_CHUNK..((chunk + 1) * ROWS_PER_CHUNK).min(rows) {
                let (mu, rs) = (mean[r], rstd[r]);
                let (xs, ds) = (&x[r * cols..(r + 1) * cols], &dy[r * cols..(r + 1) * cols]);
                affine_runs(&a, r, cols, |run, p, _| {
                    let (g, b) = (&mut dg[p..p + run.len()], &mut db[p..p + run.len()]);
                    let (xv, dv) = (&xs[run.clone()], &ds[run]);
                    wide(
                        #[inline(always)]
                        || {
                            for (((g, b), &x), &d) in g.iter_mut().zip(b).zip(xv).zip(dv) {
                                let d = d.to_f32();
                                *g += d * (x.to_f32() - mu) * rs;
                                *b += d;
                            }
                        },
                    );
                });
            }
            (dg, db)
        })
        .collect();
    let (mut dg, mut db) = (vec![0.0f64; params], vec![0.0f64; params]);
    for (pg, pb) in partials {
        dg.iter_mut().zip(pg).for_each(|(a, b)| *a += b as f64);
        db.iter_mut().zip(pb).for_each(|(a, b)| *a += b as f64);
    }
    (dg, db)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sums in AVX-512 (or AVX2) functions are the bits of the same loop
    /// compiled for the baseline: lanes are independent, so the width does
    /// not change the order of any addition. Over two f64 blocks and a tail.
    #[test]
    fn lane_sums_give_the_same_bits_at_every_width() {
        let n = 2 * BLOCK + 37;
        let x: Vec<f32> = crate::rng::normal(3, n, 0.5, 2.0);
        let y: Vec<f32> = crate::rng::normal(4, n, 0.0, 1.0);
        let z: Vec<f32> = crate::rng::normal(5, n, 1.0, 0.5);
        let f = |a: f32, b: f32, c: f32| [a * b, a * b * (c - 0.3) * 1.7];
        let wide = lane_sums3(&x, &y, &z, f);
        let base = lane_sums3_loop(&x, &y, &z, f);
        assert_eq!(wide.map(f64::to_bits), base.map(f64::to_bits));
    }
}
