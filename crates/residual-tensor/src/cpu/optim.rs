//! Fused optimizer updates, one pass over each parameter (PyTorch's formulas,
//! in PyTorch's order of operations).

use super::fill::{assume_init_vec, uninit_vec};
use super::wide::wide;
use crate::backend::{AdamWHyper, SgdHyper};
use rayon::prelude::*;

const CHUNK: usize = 1 << 14;

/// SGD with optional momentum / Nesterov / weight decay: `(p, buf)`.
pub fn sgd(
    p: &[f32],
    g: &[f32],
    buf: Option<&[f32]>,
    h: &SgdHyper,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let mut np = uninit_vec(p.len());
    if h.momentum == 0.0 {
        np.par_chunks_mut(CHUNK)
            .zip(p.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
            .for_each(|(np, (p, g))| {
                for ((np, &p), &g) in np.iter_mut().zip(p).zip(g) {
                    let d = g + h.weight_decay * p;
                    np.write(p - h.lr * d);
                }
            });
        // SAFETY: the chunks of `np` and of `p` match one to one and every
        // element was written.
        return (unsafe { assume_init_vec(np) }, None);
    }
    let mut nb = uninit_vec(p.len());
    let first = buf.is_none();
    // The first step has no buffer; its values are never read.
    let old_buf = buf.unwrap_or(g);
    np.par_chunks_mut(CHUNK)
        .zip(nb.par_chunks_mut(CHUNK))
        .zip(p.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
        .zip(old_buf.par_chunks(CHUNK))
        .for_each(|(((np, nb), (p, g)), b)| {
            for ((((np, nb), &p), &g), &b) in np.iter_mut().zip(nb).zip(p).zip(g).zip(b) {
                let d = g + h.weight_decay * p;
                let b = if first {
                    d
                } else {
                    h.momentum * b + (1.0 - h.dampening) * d
                };
                let step = if h.nesterov { d + h.momentum * b } else { b };
                nb.write(b);
                np.write(p - h.lr * step);
            }
        });
    // SAFETY: the chunks of `np`, `nb` and `p` match one to one and every
    // element was written.
    unsafe { (assume_init_vec(np), Some(assume_init_vec(nb))) }
}

/// AdamW: `(p, m, v)`.
pub fn adamw(
    p: &[f32],
    g: &[f32],
    m: &[f32],
    v: &[f32],
    h: &AdamWHyper,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = p.len();
    let (mut np, mut nm, mut nv) = (uninit_vec(n), uninit_vec(n), uninit_vec(n));
    let bc1 = 1.0 - h.beta1.powi(h.step as i32);
    let bc2 = 1.0 - h.beta2.powi(h.step as i32);
    let step_size = h.lr / bc1;
    let bc2_sqrt = bc2.sqrt();
    np.par_chunks_mut(CHUNK)
        .zip(nm.par_chunks_mut(CHUNK).zip(nv.par_chunks_mut(CHUNK)))
        .zip(p.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
        .zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK)))
        .for_each(|(((np, (nm, nv)), (p, g)), (m, v))| {
            let outs = np.iter_mut().zip(nm).zip(nv);
            let ins = p.iter().zip(g).zip(m).zip(v);
            wide(|| {
                for (((np, nm), nv), (((&p, &g), &m), &v)) in outs.zip(ins) {
                    let p = p * (1.0 - h.lr * h.weight_decay);
                    let m = h.beta1 * m + (1.0 - h.beta1) * g;
                    let v = h.beta2 * v + (1.0 - h.beta2) * g * g;
                    let denom = v.sqrt() / bc2_sqrt + h.eps;
                    np.write(p - step_size * m / denom);
                    nm.write(m);
                    nv.write(v);
                }
            })
        });
    // SAFETY: the chunks of the outputs and of `p` match one to one and every
    // element was written.
    unsafe {
        (
            assume_init_vec(np),
            assume_init_vec(nm),
            assume_init_vec(nv),
        )
    }
}
