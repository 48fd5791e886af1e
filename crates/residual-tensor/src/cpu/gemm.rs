//! The one GEMM entry point of the CPU backend. Everything that multiplies
//! matrices (matmul, convolution) calls [`sgemm`], so the kernel behind it
//! can be swapped in one place: our own AVX-512F kernel
//! ([`super::gemm_avx512`]) where the CPU has AVX-512F, else single-threaded
//! `matrixmultiply` blocks on rayon's threads; [`path`] names the kernel.

use super::epilogue::Epilogue;
use super::fill::{assume_init_vec, uninit_vec};
use super::gemm_parts::for_each_block_of_c;
pub use super::gemm_parts::MatRef;
use crate::backend::MatmulSpec;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// The kernel [`sgemm`] runs on this CPU: ours on AVX-512F, else the
/// micro-kernel `matrixmultiply` dispatches to (its own run-time choice,
/// repeated here to name it: AVX2 + FMA, else AVX, else portable code).
pub fn path() -> &'static str {
    if super::gemm_avx512::available() {
        return "avx512f (residual's 12x32 FMA kernel)";
    }
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2")
        {
            return "matrixmultiply avx2+fma";
        }
        if std::arch::is_x86_feature_detected!("avx") {
            return "matrixmultiply avx";
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            return "matrixmultiply neon";
        }
    }
    "matrixmultiply portable"
}

/// `c[m, n] = alpha * op(a)[m, k] @ op(b)[k, n] + beta * c`, all dense row-major
/// (`a` stored `[m, k]`, or `[k, m]` when transposed; likewise `b`).
///
/// Large products are split into one block of C per rayon thread (along the
/// longer side of C), each computed on one thread by [`super::gemm_avx512`]
/// where the CPU has AVX-512F, else by `matrixmultiply`. Using
/// rayon's threads rather than a second pool keeps the two cores from being
/// fought over by two schedulers, and a conv already inside a rayon task
/// simply runs its GEMM there.
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
    if super::gemm_avx512::available() {
        return super::gemm_avx512::gemm(m, k, n, alpha, a, b, beta, c);
    }
    let (rsa, csa) = if a.trans { (1, m) } else { (k, 1) };
    let (rsb, csb) = if b.trans { (1, k) } else { (n, 1) };
    // Addresses as integers so that tasks can share them.
    let (pa, pb) = (a.data.as_ptr() as usize, b.data.as_ptr() as usize);
    let dims = (m, k, n);
    for_each_block_of_c(
        "sgemm",
        dims,
        (16, 16),
        a.data,
        b.data,
        beta,
        c,
        |pc, (r0, rows), (c0, cols)| {
            // SAFETY: the checked lengths cover every element the strides reach
            // for rows r0..r0+rows of op(a), columns c0..c0+cols of op(b) and that
            // block of c; blocks of concurrent tasks do not overlap.
            unsafe {
                matrixmultiply::sgemm(
                    rows,
                    k,
                    cols,
                    alpha,
                    (pa as *const f32).add(r0 * rsa),
                    rsa as isize,
                    csa as isize,
                    (pb as *const f32).add(c0 * csb),
                    rsb as isize,
                    csb as isize,
                    beta,
                    pc.add(r0 * n + c0),
                    n as isize,
                    1,
                );
            }
        },
    );
}

/// An element type the CPU GEMM multiplies, with f32 accumulation and an f32
/// result: f32 ([`sgemm`], here) and bf16 ([`super::gemm_bf16::gemm`], only
/// where [`super::gemm_bf16::available`] holds; its impl lives in `gemm_bf16`
/// so that this file does not import the file that imports it).
///
/// Sealed: [`GemmElem::gemm_uninit`] relies on every implementation writing
/// all of C and reading none of it when `beta == 0`, which holds for these
/// two and is not something another crate's implementation could promise.
pub trait GemmElem: sealed::Sealed + Copy + Default + Send + Sync {
    /// A weight `[m, k]` packed once for products that multiply it by many
    /// inputs (f32 on AVX-512F: [`super::gemm_avx512::PackedA`]; none for
    /// bf16, whose type has no values).
    type Packed: Send + Sync;

    /// The shape `(m, k)` of a packed operand.
    fn packed_shape(a: &Self::Packed) -> (usize, usize);

    /// `c[m, n] = epi(a[m, k] @ op(b)[k, n])` into memory not yet written,
    /// with A packed ahead.
    fn gemm_packed_fused(
        a: &Self::Packed,
        b: MatRef<Self>,
        n: usize,
        c: &mut [MaybeUninit<f32>],
        epi: &Epilogue<'_>,
    );

    /// `c[m, n] = op(a)[m, k] @ op(b)[k, n] + beta * c`.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: MatRef<Self>,
        b: MatRef<Self>,
        beta: f32,
        c: &mut [f32],
    );

    /// `c[m, n] = op(a)[m, k] @ op(b)[k, n]` into memory not yet written, so
    /// that an output needs no zeroing pass first; every element of `c`
    /// (which must hold exactly `m * n`) is written.
    fn gemm_uninit(
        m: usize,
        k: usize,
        n: usize,
        a: MatRef<Self>,
        b: MatRef<Self>,
        c: &mut [MaybeUninit<f32>],
    ) {
        // The GEMMs cover only `m * n` elements, so `c` must be no longer.
        assert_eq!(c.len(), m * n, "gemm_uninit: c must hold m * n elements");
        // SAFETY: with beta == 0 the GEMMs write every element of C and read
        // none: `matrixmultiply` documents that C need not be initialised
        // when beta is zero, the AVX-512 f32 kernel and the bf16 kernels
        // store their tiles without
        // reading C (`add_scaled` / the micro-kernel's `beta == 0` arm), and
        // `degenerate` writes zeros. `MaybeUninit<f32>` has f32's layout.
        let c = unsafe { to_be_written(c) };
        Self::gemm(m, k, n, a, b, 0.0, c);
    }

    /// `c[m, n] = epi(op(a)[m, k] @ op(b)[k, n])` into memory not yet
    /// written, rows of C being the epilogue's rows: by default the product
    /// ([`GemmElem::gemm_uninit`]) and then the epilogue over C; the f32
    /// AVX-512 GEMM applies it to each tile as it stores it.
    fn gemm_uninit_fused(
        (m, k, n): (usize, usize, usize),
        a: MatRef<Self>,
        b: MatRef<Self>,
        c: &mut [MaybeUninit<f32>],
        epi: &Epilogue<'_>,
    ) {
        Self::gemm_uninit(m, k, n, a, b, c);
        // SAFETY: gemm_uninit wrote every element of c; MaybeUninit<f32>
        // has f32's layout.
        let c = unsafe { to_be_written(c) };
        epi.apply(c, n);
    }
}

/// C not yet written, as the f32 slice a product with `beta == 0` writes.
///
/// # Safety
/// Every element must be written before it is read (the GEMMs with beta 0
/// do: they store their tiles without reading C). `MaybeUninit<f32>` has
/// f32's layout.
unsafe fn to_be_written(c: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: same layout; the caller writes before reading.
    unsafe { std::slice::from_raw_parts_mut(c.as_mut_ptr().cast::<f32>(), c.len()) }
}

/// The seal of [`GemmElem`]: implemented for f32 here and for bf16 in
/// `gemm_bf16`, and nameable only inside this crate.
pub(crate) mod sealed {
    /// A type this crate's GEMMs multiply.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::bf16 {}
}

impl GemmElem for f32 {
    type Packed = super::gemm_avx512::PackedA;

    fn packed_shape(a: &Self::Packed) -> (usize, usize) {
        a.shape()
    }

    fn gemm_packed_fused(
        a: &Self::Packed,
        b: MatRef<f32>,
        n: usize,
        c: &mut [MaybeUninit<f32>],
        epi: &Epilogue<'_>,
    ) {
        // SAFETY: MaybeUninit<f32> has f32's layout; the product writes
        // every element of C before reading it (beta == 0).
        let c = unsafe { to_be_written(c) };
        super::gemm_avx512::gemm_packed_fused(a, b, n, c, epi);
    }

    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: MatRef<f32>,
        b: MatRef<f32>,
        beta: f32,
        c: &mut [f32],
    ) {
        sgemm(m, k, n, 1.0, a, b, beta, c);
    }

    fn gemm_uninit_fused(
        (m, k, n): (usize, usize, usize),
        a: MatRef<f32>,
        b: MatRef<f32>,
        c: &mut [MaybeUninit<f32>],
        epi: &Epilogue<'_>,
    ) {
        assert_eq!(
            c.len(),
            m * n,
            "gemm_uninit_fused: c must hold m * n elements"
        );
        // SAFETY: MaybeUninit<f32> has f32's layout; both paths write every
        // element of C before reading it (beta == 0, as in `gemm_uninit`).
        let c = unsafe { to_be_written(c) };
        if super::gemm_avx512::available() {
            super::gemm_avx512::gemm_fused((m, k, n), a, b, c, epi);
        } else {
            sgemm(m, k, n, 1.0, a, b, 0.0, c);
            epi.apply(c, n);
        }
    }
}

/// A linear layer's product `y[m, n] = x[m, k] @ b[k, n]` with its weights
/// packed once as B ([`super::gemm_avx512::PackedB`], AVX-512 only).
///
/// # Panics
/// When `x` holds fewer than `m * k` values or the CPU lacks AVX512F.
pub fn linear_packed(x: &[f32], b: &super::gemm_avx512::PackedB, m: usize) -> Vec<f32> {
    let (k, n) = b.shape();
    let mut y = uninit_vec::<f32>(m * n);
    let a = MatRef {
        data: &x[..m * k],
        trans: false,
    };
    // SAFETY: the product (beta 0) writes every element of y before any is
    // read; MaybeUninit<f32> has f32's layout.
    let c = unsafe { to_be_written(&mut y) };
    super::gemm_avx512::gemm_packed_b_fused(m, a, b, c, &Epilogue::default());
    // SAFETY: every element was written.
    unsafe { assume_init_vec(y) }
}

/// Batched product for the `matmul` kernel: `[batch, m, n]`.
pub fn batched<T: GemmElem>(a: &[T], b: &[T], s: MatmulSpec) -> Vec<f32> {
    let (sa, sb, sc) = (s.m * s.k, s.k * s.n, s.m * s.n);
    if sc == 0 || s.batch == 0 {
        return vec![0.0; s.batch * sc];
    }
    let mut c = uninit_vec::<f32>(s.batch * sc);
    let one = |i: usize, c: &mut [MaybeUninit<f32>]| {
        let ai = if s.a_shared { 0 } else { i * sa };
        let bi = if s.b_shared { 0 } else { i * sb };
        T::gemm_uninit(
            s.m,
            s.k,
            s.n,
            MatRef {
                data: &a[ai..ai + sa],
                trans: s.trans_a,
            },
            MatRef {
                data: &b[bi..bi + sb],
                trans: s.trans_b,
            },
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
    // SAFETY: the batch's chunks of `sc` elements cover `c`, and
    // `gemm_uninit` writes every element of each.
    unsafe { assume_init_vec(c) }
}
