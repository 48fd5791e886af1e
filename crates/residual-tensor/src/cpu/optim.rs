//! Fused optimizer updates, one pass over each parameter (PyTorch's formulas,
//! in PyTorch's order of operations).

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
    let mut np = p.to_vec();
    if h.momentum == 0.0 {
        np.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .for_each(|(p, g)| {
                for (p, &g) in p.iter_mut().zip(g) {
                    let d = g + h.weight_decay * *p;
                    *p -= h.lr * d;
                }
            });
        return (np, None);
    }
    let mut nb = match buf {
        Some(b) => b.to_vec(),
        None => vec![0.0; p.len()],
    };
    let first = buf.is_none();
    np.par_chunks_mut(CHUNK)
        .zip(nb.par_chunks_mut(CHUNK))
        .zip(g.par_chunks(CHUNK))
        .for_each(|((p, b), g)| {
            for ((p, b), &g) in p.iter_mut().zip(b.iter_mut()).zip(g) {
                let d = g + h.weight_decay * *p;
                *b = if first {
                    d
                } else {
                    h.momentum * *b + (1.0 - h.dampening) * d
                };
                let step = if h.nesterov { d + h.momentum * *b } else { *b };
                *p -= h.lr * step;
            }
        });
    (np, Some(nb))
}

/// AdamW: `(p, m, v)`.
pub fn adamw(
    p: &[f32],
    g: &[f32],
    m: &[f32],
    v: &[f32],
    h: &AdamWHyper,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mut np, mut nm, mut nv) = (p.to_vec(), m.to_vec(), v.to_vec());
    let bc1 = 1.0 - h.beta1.powi(h.step as i32);
    let bc2 = 1.0 - h.beta2.powi(h.step as i32);
    let step_size = h.lr / bc1;
    let bc2_sqrt = bc2.sqrt();
    np.par_chunks_mut(CHUNK)
        .zip(nm.par_chunks_mut(CHUNK).zip(nv.par_chunks_mut(CHUNK)))
        .zip(g.par_chunks(CHUNK))
        .for_each(|((p, (m, v)), g)| {
            for (((p, m), v), &g) in p.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
                *p *= 1.0 - h.lr * h.weight_decay;
                *m = h.beta1 * *m + (1.0 - h.beta1) * g;
                *v = h.beta2 * *v + (1.0 - h.beta2) * g * g;
                let denom = v.sqrt() / bc2_sqrt + h.eps;
                *p -= step_size * *m / denom;
            }
        });
    (np, nm, nv)
}
