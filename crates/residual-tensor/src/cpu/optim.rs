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

/// One AdamW step's constants (PyTorch's formulas, bias corrections folded).
struct AdamWStep {
    decay: f32,
    beta1: f32,
    beta2: f32,
    step_size: f32,
    bc2_sqrt: f32,
    eps: f32,
}

impl AdamWStep {
    fn new(h: &AdamWHyper) -> Self {
        let bc1 = 1.0 - h.beta1.powi(h.step as i32);
        let bc2 = 1.0 - h.beta2.powi(h.step as i32);
        AdamWStep {
            decay: 1.0 - h.lr * h.weight_decay,
            beta1: h.beta1,
            beta2: h.beta2,
            step_size: h.lr / bc1,
            bc2_sqrt: bc2.sqrt(),
            eps: h.eps,
        }
    }

    /// The new `(p, m, v)` of one element.
    #[inline(always)]
    fn update(&self, p: f32, g: f32, m: f32, v: f32) -> (f32, f32, f32) {
        let p = p * self.decay;
        let m = self.beta1 * m + (1.0 - self.beta1) * g;
        let v = self.beta2 * v + (1.0 - self.beta2) * g * g;
        let denom = v.sqrt() / self.bc2_sqrt + self.eps;
        (p - self.step_size * m / denom, m, v)
    }
}

/// AdamW: `(p, m, v)`, all three new.
pub fn adamw(
    p: &[f32],
    g: &[f32],
    m: &[f32],
    v: &[f32],
    h: &AdamWHyper,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = p.len();
    let (mut np, mut nm, mut nv) = (uninit_vec(n), uninit_vec(n), uninit_vec(n));
    let step = AdamWStep::new(h);
    np.par_chunks_mut(CHUNK)
        .zip(nm.par_chunks_mut(CHUNK).zip(nv.par_chunks_mut(CHUNK)))
        .zip(p.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
        .zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK)))
        .for_each(|(((np, (nm, nv)), (p, g)), (m, v))| {
            let outs = np.iter_mut().zip(nm).zip(nv);
            let ins = p.iter().zip(g).zip(m).zip(v);
            wide(
                #[inline(always)]
                || {
                    for (((np, nm), nv), (((&p, &g), &m), &v)) in outs.zip(ins) {
                        let (p, m, v) = step.update(p, g, m, v);
                        np.write(p);
                        nm.write(m);
                        nv.write(v);
                    }
                },
            )
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

/// AdamW with the moments `m` and `v` updated in place: returns the new `p`
/// (the same values as [`adamw`]).
pub fn adamw_in_place(
    p: &[f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    h: &AdamWHyper,
) -> Vec<f32> {
    let mut np = uninit_vec(p.len());
    let step = AdamWStep::new(h);
    np.par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
        .zip(p.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
        .for_each(|((np, (m, v)), (p, g))| {
            let outs = np.iter_mut().zip(m).zip(v);
            wide(
                #[inline(always)]
                || {
                    for (((np, m), v), (&p, &g)) in outs.zip(p.iter().zip(g)) {
                        let (p, nm, nv) = step.update(p, g, *m, *v);
                        np.write(p);
                        *m = nm;
                        *v = nv;
                    }
                },
            )
        });
    // SAFETY: the chunks of `np` and of `p` match one to one and every
    // element was written.
    unsafe { assume_init_vec(np) }
}

#[cfg(test)]
mod tests {
    use super::super::storage::{f32s, store};
    use super::*;
    use crate::backend::Backend;
    use crate::cpu::CpuBackend;
    use std::sync::Arc;

    fn hyper() -> AdamWHyper {
        AdamWHyper {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.05,
            step: 3,
        }
    }

    /// Over more elements than one chunk: the backend updates moments that
    /// no tensor holds in place (the same buffers come back) to the values of
    /// the copying step, bit for bit, and leaves a moment that is also held
    /// elsewhere untouched, returning new buffers instead.
    #[test]
    fn adamw_updates_sole_moments_in_place_and_leaves_held_ones_alone() {
        let n = CHUNK + 37;
        let p = crate::rng::normal(1, n, 0.0, 1.0);
        let g = crate::rng::normal(2, n, 0.0, 1.0);
        let m = crate::rng::normal(3, n, 0.0, 0.1);
        let v: Vec<f32> = crate::rng::normal(4, n, 0.0, 0.1)
            .iter()
            .map(|x| x * x)
            .collect();
        let (want_p, want_m, want_v) = adamw(&p, &g, &m, &v, &hyper());
        let (ps, gs) = (store(p), store(g));
        let be = CpuBackend;

        let (ms, vs) = (store(m.clone()), store(v.clone()));
        let (m_at, v_at) = (f32s(&ms).unwrap().as_ptr(), f32s(&vs).unwrap().as_ptr());
        let (np, nm, nv) = be.adamw_step(&ps, &gs, ms, vs, &hyper()).unwrap();
        assert_eq!(f32s(&nm).unwrap().as_ptr(), m_at, "m updated where it lay");
        assert_eq!(f32s(&nv).unwrap().as_ptr(), v_at, "v updated where it lay");
        assert_eq!(f32s(&np).unwrap(), &want_p[..]);
        assert_eq!(f32s(&nm).unwrap(), &want_m[..]);
        assert_eq!(f32s(&nv).unwrap(), &want_v[..]);

        let (ms, vs) = (store(m.clone()), store(v.clone()));
        let held = Arc::clone(&ms);
        let (_, nm, nv) = be.adamw_step(&ps, &gs, ms, vs, &hyper()).unwrap();
        assert_eq!(f32s(&held).unwrap(), &m[..], "a held moment is not written");
        assert!(!Arc::ptr_eq(&nm, &held), "a new buffer for a held moment");
        assert_eq!(f32s(&nm).unwrap(), &want_m[..]);
        assert_eq!(f32s(&nv).unwrap(), &want_v[..]);
    }
}
