//! Fused scaled dot-product attention on the CPU: per attention (batch x
//! heads, in parallel), blocks of query rows go through `s = scale * q k^T`
//! (one GEMM reading K transposed in place), the softmax in that block's
//! buffer, and `o = p v` (a second GEMM). Only a `[rows, tk]` block of scores
//! exists at a time per thread; the backward recomputes the weights from the
//! per-row log-sum-exp the forward keeps (`[batch, tq]`), instead of keeping
//! `[batch, tq, tk]` weights as the composition does.
//!
//! Shapes: `q: [batch, tq, d]`, `k: [batch, tk, d]`, `v: [batch, tk, dv]`,
//! `o: [batch, tq, dv]`, `lse: [batch, tq]`.

use super::gemm::{sgemm, MatRef};
use super::vector_math;
use super::wide::wide;
use crate::backend::AttentionSpec;
use rayon::prelude::*;

/// Scores a block of query rows may hold (256 KiB of f32, within L2),
/// unless 64 rows hold more (over 1024 keys; see [`block_rows`]).
const BLOCK_SCORES: usize = 1 << 16;

/// Query rows per block: as many as [`BLOCK_SCORES`] allows over `tk` keys,
/// at least 64, at most `tq`. Each block packs K and V anew for its two
/// GEMMs, so a sequence of a ViT (197 tokens) goes in one block, not four.
fn block_rows(tq: usize, tk: usize) -> usize {
    (BLOCK_SCORES / tk.max(1)).max(64).min(tq)
}

/// `p = exp(s - lse)` for one block: `s` is `[rows, tk]` scores, `lse` their
/// rows' log-sum-exp. With `lse` absent, each row's weights are `exp(s -
/// max) / sum` and `max + ln(sum)` is written there.
fn softmax_rows(s: &mut [f32], tk: usize, lse: &mut [f32], known: bool) {
    for (row, l) in s.chunks_mut(tk).zip(lse.iter_mut()) {
        *l = wide(
            #[inline(always)]
            || softmax_row(row, known.then_some(*l)),
        );
    }
}

/// One row of [`softmax_rows`]: `row = exp(row - lse)` with `lse` given,
/// else `exp(row - max) / sum`; returns the row's log-sum-exp. Always
/// inlined, so that its loops are compiled (and vectorised) inside
/// [`wide`]'s function, [`vector_math::exp`] included.
#[inline(always)]
fn softmax_row(row: &mut [f32], lse: Option<f32>) -> f32 {
    if let Some(l) = lse {
        for x in row.iter_mut() {
            *x = vector_math::exp(*x - l);
        }
        return l;
    }
    let m = lane_fold(row, f32::NEG_INFINITY, |m, x| if x > m { x } else { m });
    for x in row.iter_mut() {
        *x = vector_math::exp(*x - m);
    }
    // The sum in f64 lanes, as the row softmax sums (long rows stay exact
    // to f32's rounding of each term).
    let mut lanes = [0.0f64; 16];
    for c in row.chunks(16) {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l += x as f64;
        }
    }
    let sum: f64 = lanes.iter().sum();
    let inv = (1.0 / sum) as f32;
    for x in row.iter_mut() {
        *x *= inv;
    }
    m + sum.ln() as f32
}

/// `row` folded with `f` in 16 lanes (element `i` into lane `i % 16`), then
/// the lanes in order: a loop the compiler vectorises, where one
/// accumulator would chain every element through one register. `f`
/// (a max that skips NaN, a sum) must not care about the order.
#[inline(always)]
fn lane_fold(row: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [init; 16];
    let chunks = row.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l = f(*l, x);
        }
    }
    for (l, &x) in lanes.iter_mut().zip(rest) {
        *l = f(*l, x);
    }
    lanes.into_iter().fold(init, f)
}

/// The attention weights of a block of query rows, in `p` (`[rows, tk]`):
/// `exp(scale * q_block @ k^T - lse)`, K read transposed in place; `lse`
/// (the rows' log-sum-exp) is computed and written unless `known`.
fn weights_block(
    qb: &[f32],
    kn: &[f32],
    s: AttentionSpec,
    p: &mut [f32],
    lse: &mut [f32],
    known: bool,
) {
    let rows = lse.len();
    // [rows, d] x ([tk, d])^T
    sgemm(
        rows,
        s.d,
        s.tk,
        s.scale,
        MatRef {
            data: qb,
            trans: false,
        },
        MatRef {
            data: kn,
            trans: true,
        },
        0.0,
        p,
    );
    softmax_rows(p, s.tk, lse, known);
}

/// Forward: `(o, lse)` (zeros for empty sizes, which the op refuses).
pub fn forward(q: &[f32], k: &[f32], v: &[f32], s: AttentionSpec) -> (Vec<f32>, Vec<f32>) {
    let AttentionSpec { tq, tk, d, dv, .. } = s;
    let mut o = vec![0.0; s.batch * tq * dv];
    let mut lse = vec![0.0; s.batch * tq];
    if [tq, tk, d, dv].contains(&0) {
        return (o, lse);
    }
    o.par_chunks_mut(tq * dv)
        .zip(lse.par_chunks_mut(tq))
        .enumerate()
        .for_each(|(n, (o, lse))| {
            let (kn, vn) = (
                &k[n * tk * d..(n + 1) * tk * d],
                &v[n * tk * dv..(n + 1) * tk * dv],
            );
            let block = block_rows(tq, tk);
            let mut scores = vec![0.0; block * tk];
            for r0 in (0..tq).step_by(block) {
                let rows = block.min(tq - r0);
                let qb = &q[(n * tq + r0) * d..(n * tq + r0 + rows) * d];
                let sb = &mut scores[..rows * tk];
                weights_block(qb, kn, s, sb, &mut lse[r0..r0 + rows], false);
                // o = p @ v : [rows, tk] x [tk, dv]
                let ob = &mut o[r0 * dv..(r0 + rows) * dv];
                sgemm(
                    rows,
                    tk,
                    dv,
                    1.0,
                    MatRef {
                        data: sb,
                        trans: false,
                    },
                    MatRef {
                        data: vn,
                        trans: false,
                    },
                    0.0,
                    ob,
                );
            }
        });
    (o, lse)
}

/// Backward: `[dq, dk, dv]` from the inputs, the output `o`, its `lse` and `d_o`
/// (zeros for empty sizes, which the op refuses).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    o: &[f32],
    lse: &[f32],
    d_o: &[f32],
    s: AttentionSpec,
) -> [Vec<f32>; 3] {
    let AttentionSpec { tq, tk, d, dv, .. } = s;
    let mut dq = vec![0.0; s.batch * tq * d];
    let mut dk = vec![0.0; s.batch * tk * d];
    let mut dvv = vec![0.0; s.batch * tk * dv];
    if [tq, tk, d, dv].contains(&0) {
        return [dq, dk, dvv];
    }
    dq.par_chunks_mut(tq * d)
        .zip(dk.par_chunks_mut(tk * d))
        .zip(dvv.par_chunks_mut(tk * dv))
        .enumerate()
        .for_each(|(n, ((dq, dk), dvn))| {
            let (kn, vn) = (
                &k[n * tk * d..(n + 1) * tk * d],
                &v[n * tk * dv..(n + 1) * tk * dv],
            );
            let block = block_rows(tq, tk);
            let cap = block * tk;
            let (mut p, mut ds) = (vec![0.0; cap], vec![0.0; cap]);
            for r0 in (0..tq).step_by(block) {
                let rows = block.min(tq - r0);
                let at = n * tq + r0;
                let qb = &q[at * d..(at + rows) * d];
                let (ob, dob) = (
                    &o[at * dv..(at + rows) * dv],
                    &d_o[at * dv..(at + rows) * dv],
                );
                let (pb, dsb) = (&mut p[..rows * tk], &mut ds[..rows * tk]);
                weights_block(qb, kn, s, pb, &mut lse[at..at + rows].to_vec(), true);
                // dv += p^T @ do : ([rows, tk])^T x [rows, dv]
                sgemm(
                    tk,
                    rows,
                    dv,
                    1.0,
                    MatRef {
                        data: pb,
                        trans: true,
                    },
                    MatRef {
                        data: dob,
                        trans: false,
                    },
                    1.0,
                    dvn,
                );
                // dp = do @ v^T : [rows, dv] x ([tk, dv])^T
                sgemm(
                    rows,
                    dv,
                    tk,
                    1.0,
                    MatRef {
                        data: dob,
                        trans: false,
                    },
                    MatRef {
                        data: vn,
                        trans: true,
                    },
                    0.0,
                    dsb,
                );
                // ds = scale * p * (dp - sum_c do * o), the row sum being sum_j dp * p
                for ((pr, dr), (orow, dorow)) in pb
                    .chunks(tk)
                    .zip(dsb.chunks_mut(tk))
                    .zip(ob.chunks(dv).zip(dob.chunks(dv)))
                {
                    let dot: f64 = orow
                        .iter()
                        .zip(dorow)
                        .map(|(&a, &b)| a as f64 * b as f64)
                        .sum();
                    let dot = dot as f32;
                    for (x, &pj) in dr.iter_mut().zip(pr) {
                        *x = s.scale * pj * (*x - dot);
                    }
                }
                // dq = ds @ k : [rows, tk] x [tk, d]
                let dqb = &mut dq[r0 * d..(r0 + rows) * d];
                sgemm(
                    rows,
                    tk,
                    d,
                    1.0,
                    MatRef {
                        data: dsb,
                        trans: false,
                    },
                    MatRef {
                        data: kn,
                        trans: false,
                    },
                    0.0,
                    dqb,
                );
                // dk += ds^T @ q : ([rows, tk])^T x [rows, d]
                sgemm(
                    tk,
                    rows,
                    d,
                    1.0,
                    MatRef {
                        data: dsb,
                        trans: true,
                    },
                    MatRef {
                        data: qb,
                        trans: false,
                    },
                    1.0,
                    dk,
                );
            }
        });
    [dq, dk, dvv]
}
