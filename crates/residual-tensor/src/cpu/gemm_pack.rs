//! Packing of the f32 GEMM's operands (`gemm_avx512`) into the
//! micro-kernel's k-major panels: lines of a `[k, ld]` operand copied per
//! k, lines of a `[lines, ld]` operand (k contiguous) gathered 16 by 16
//! through an in-register transpose. Its own module so that the GEMM's
//! blocking and its kernels stay apart from the copies that feed them.

/// Packs lines `i0 .. i0 + len` (rows of A, or columns of B) over k `k0 ..
/// k0 + kc` into `W`-line panels: for each k, `W` values, line by line;
/// lines past `len` are zero.
///
/// `k_major`: the operand is stored `[k, ld]`, so a panel's lines are
/// adjacent in each row of memory (one copy per k). Otherwise it is stored
/// `[lines, ld]` with k contiguous: each line is read in order and written
/// down the panel at a stride of `W`, through the AVX-512 transpose.
///
/// # Panics
/// When a panel of k-contiguous lines is packed on a CPU without AVX512F.
pub(super) fn pack<const W: usize>(
    data: &[f32],
    k_major: bool,
    ld: usize,
    (i0, len): (usize, usize),
    (k0, kc): (usize, usize),
    out: &mut [f32],
) {
    for (pi, panel) in out.chunks_mut(kc * W).take(len.div_ceil(W)).enumerate() {
        let ib = i0 + pi * W;
        let lines = W.min(i0 + len - ib);
        if k_major {
            for (p, dst) in panel.chunks_exact_mut(W).enumerate() {
                let src = &data[(k0 + p) * ld + ib..];
                if lines == W {
                    // A copy of constant length: vector moves, no call.
                    dst.copy_from_slice(&src[..W]);
                } else {
                    dst[..lines].copy_from_slice(&src[..lines]);
                    dst[lines..].fill(0.0);
                }
            }
            continue;
        }
        // k contiguous per line: gather each k's values from the lines and
        // write the panel in order (a scatter down the panel at a stride of
        // W measured slower).
        if lines == W {
            #[cfg(target_arch = "x86_64")]
            assert!(
                std::arch::is_x86_feature_detected!("avx512f"),
                "gemm_pack: the transpose needs AVX512F"
            );
            // Whole panels (almost all of them): W rows of kc values each,
            // checked once, then read without per-element checks; 16 rows
            // by 16 k at a time through an in-register transpose.
            let rows: [&[f32]; W] = std::array::from_fn(|j| &data[(ib + j) * ld + k0..][..kc]);
            let k16 = kc / 16 * 16;
            for group in (0..W).step_by(16) {
                let n = 16.min(W - group);
                // Rows past the panel's repeat its first; they are not stored.
                let src: [&[f32]; 16] =
                    std::array::from_fn(|i| rows[group + if i < n { i } else { 0 }]);
                for p0 in (0..k16).step_by(16) {
                    // SAFETY: AVX512F holds (asserted above); each
                    // source row holds kc >= p0 + 16 values; the stores
                    // write n lanes at rows p0..p0 + 16 of the panel.
                    unsafe { transpose_16(&src, p0, &mut panel[p0 * W + group..], W, n) };
                }
            }
            for p in k16..kc {
                let dst = &mut panel[p * W..][..W];
                for (d, row) in dst.iter_mut().zip(&rows) {
                    // SAFETY: p < kc, the length of every row.
                    *d = unsafe { *row.get_unchecked(p) };
                }
            }
            continue;
        }
        for (p, dst) in panel.chunks_exact_mut(W).enumerate() {
            for (j, d) in dst.iter_mut().enumerate() {
                *d = if j < lines {
                    data[(ib + j) * ld + k0 + p]
                } else {
                    0.0
                };
            }
        }
    }
}

/// Sixteen rows `src[i][p0 .. p0 + 16]` transposed into a panel: for each
/// `t` in 0..16, `out[t * stride ..][..n]` = `src[0..n][p0 + t]` (rows `n..`
/// are read but not stored). Four rounds of in-register shuffles
/// ([`transpose_16_at`]).
///
/// # Safety
/// AVX512F is available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn transpose_16(src: &[&[f32]; 16], p0: usize, out: &mut [f32], stride: usize, n: usize) {
    assert!(
        n <= 16 && src.iter().all(|r| r.len() >= p0 + 16) && out.len() >= 15 * stride + n,
        "transpose_16: rows or panel too short"
    );
    let rows: [*const f32; 16] = std::array::from_fn(|i| src[i][p0..].as_ptr());
    // SAFETY: each row holds 16 values from p0, `out` 16 rows of `stride`
    // (the last n long) (asserted); AVX512F holds (the caller's contract).
    unsafe { transpose_16_at(&rows, out.as_mut_ptr(), stride, n) }
}

/// [`transpose_16`] on raw pointers, for any 32-bit values (the shuffles
/// move bits; the bf16 GEMM packs words of bf16 pairs through it): for each
/// `t` in 0..16, `out + t * stride` gets `n` values, `rows[0..n][t]`.
///
/// # Safety
/// AVX512F is available; each of the 16 rows is readable for 16 values
/// (unaligned); `out + t * stride` is writable for `n <= 16` values, `t` in
/// 0..16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn transpose_16_at(
    rows: &[*const f32; 16],
    out: *mut f32,
    stride: usize,
    n: usize,
) {
    use std::arch::x86_64::*;
    let (ps, pd) = (_mm512_castpd_ps, _mm512_castps_pd);
    // SAFETY: the loads read 16 values of each row, the stores n lanes of
    // 16 rows of `out` (the caller's contract).
    unsafe {
        let r: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(rows[i]));
        // 32-bit pairs, then 64-bit pairs, then 128-bit lanes twice.
        let mut t = [_mm512_setzero_ps(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
        }
        let mut u = [_mm512_setzero_ps(); 16];
        for i in 0..4 {
            let (a, b, c, d) = (t[4 * i], t[4 * i + 1], t[4 * i + 2], t[4 * i + 3]);
            u[4 * i] = ps(_mm512_unpacklo_pd(pd(a), pd(c)));
            u[4 * i + 1] = ps(_mm512_unpackhi_pd(pd(a), pd(c)));
            u[4 * i + 2] = ps(_mm512_unpacklo_pd(pd(b), pd(d)));
            u[4 * i + 3] = ps(_mm512_unpackhi_pd(pd(b), pd(d)));
        }
        let mut v = [_mm512_setzero_ps(); 16];
        for i in 0..2 {
            for j in 0..4 {
                v[8 * i + j] = _mm512_shuffle_f32x4::<0x88>(u[8 * i + j], u[8 * i + 4 + j]);
                v[8 * i + 4 + j] = _mm512_shuffle_f32x4::<0xdd>(u[8 * i + j], u[8 * i + 4 + j]);
            }
        }
        let mask = ((1u32 << n) - 1) as __mmask16;
        for j in 0..8 {
            let lo = _mm512_shuffle_f32x4::<0x88>(v[j], v[8 + j]);
            let hi = _mm512_shuffle_f32x4::<0xdd>(v[j], v[8 + j]);
            _mm512_mask_storeu_ps(out.add(j * stride), mask, lo);
            _mm512_mask_storeu_ps(out.add((8 + j) * stride), mask, hi);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn transpose_16(_: &[&[f32]; 16], _: usize, _: &mut [f32], _: usize, _: usize) {
    unreachable!("gemm_avx512 runs only where available() holds")
}
