//! The one GEMM entry point of the CPU backend. Everything that multiplies
//! matrices (matmul, convolution) calls [`sgemm`], so the kernel behind it
//! (today `matrixmultiply` with its thread pool) can be swapped in one place.

use crate::backend::MatmulSpec;
use rayon::prelude::*;

/// A dense row-major matrix operand, possibly read transposed.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    /// The elements, row-major as stored.
    pub data: &'a [f32],
    /// Read the stored matrix transposed.
    pub trans: bool,
}

/// `c[m, n] = alpha * op(a)[m, k] @ op(b)[k, n] + beta * c`, all dense row-major
/// (`a` stored `[m, k]`, or `[k, m]` when transposed; likewise `b`).
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    c: &mut [f32],
) {
    debug_assert!(a.data.len() >= m * k && b.data.len() >= k * n && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].iter_mut().for_each(|v| *v *= beta);
        return;
    }
    let (rsa, csa) = if a.trans {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let (rsb, csb) = if b.trans {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    // matrixmultiply splits its threads over blocks of rows of C: a wide,
    // short product (a conv with few output channels and many pixels) gets
    // one block and one thread. Compute those as C^T = B^T A^T instead,
    // writing C through transposed strides.
    let swap = m < n && m < 256;
    // SAFETY: the slices hold at least m*k, k*n and m*n elements (asserted
    // above in debug builds and guaranteed by every caller's shapes), and the
    // strides describe dense matrices inside them, read or written transposed.
    unsafe {
        if swap {
            matrixmultiply::sgemm(
                n,
                k,
                m,
                alpha,
                b.data.as_ptr(),
                csb,
                rsb,
                a.data.as_ptr(),
                csa,
                rsa,
                beta,
                c.as_mut_ptr(),
                1,
                n as isize,
            );
        } else {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                alpha,
                a.data.as_ptr(),
                rsa,
                csa,
                b.data.as_ptr(),
                rsb,
                csb,
                beta,
                c.as_mut_ptr(),
                n as isize,
                1,
            );
        }
    }
}

/// Batched product for the `matmul` kernel: `[batch, m, n]`.
pub fn batched(a: &[f32], b: &[f32], s: MatmulSpec) -> Vec<f32> {
    let mut c = vec![0.0; s.batch * s.m * s.n];
    let (sa, sb, sc) = (s.m * s.k, s.k * s.n, s.m * s.n);
    if sc == 0 {
        return c;
    }
    let one = |i: usize, c: &mut [f32]| {
        let ai = if s.a_shared { 0 } else { i * sa };
        let bi = if s.b_shared { 0 } else { i * sb };
        sgemm(
            s.m,
            s.k,
            s.n,
            1.0,
            MatRef {
                data: &a[ai..ai + sa],
                trans: s.trans_a,
            },
            MatRef {
                data: &b[bi..bi + sb],
                trans: s.trans_b,
            },
            0.0,
            c,
        );
    };
    // Small products: parallel over the batch. Large ones: the GEMM threads itself.
    if s.batch > 1 && s.m * s.k * s.n < 64 * 64 * 64 {
        c.par_chunks_mut(sc)
            .enumerate()
            .for_each(|(i, c)| one(i, c));
    } else {
        c.chunks_mut(sc).enumerate().for_each(|(i, c)| one(i, c));
    }
    c
}
