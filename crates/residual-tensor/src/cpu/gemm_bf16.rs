//! The bf16 GEMM of the CPU backend: `c[m, n] = op(a)[m, k] @ op(b)[k, n] +
//! beta * c` with bf16 operands and an f32 result, on AVX512-BF16's
//! `vdpbf16ps`, which multiplies pairs of bf16 values and adds both products
//! to an f32 lane: twice the multiply-adds per instruction of an f32 FMA.
//!
//! Blocking as in GotoBLAS: C is split into one block per rayon thread
//! (`gemm_parts::for_each_block`); within a block, `NC` columns by `KC` of k of B are
//! packed, then `MC` rows by `KC` of A, and an `MR x NR` micro-kernel keeps
//! its tile of C in 12 registers. Packed layouts take k in pairs, as
//! `vdpbf16ps` does (one u32 word holds `x[.., 2p]` in its low half and
//! `x[.., 2p + 1]` in its high half):
//! - an A panel: `MR` rows; for each pair `p`, `MR` words, row by row;
//! - a B panel: `NR` columns; for each pair `p`, `NR` words, column by column.
//!
//! Partial panels and an odd k are padded with zeros. The instruction rounds
//! to nearest even and flushes denormals (it ignores MXCSR), so results can
//! differ from an f32 GEMM of the same values in the last bits.
//!
//! Use [`available`] first: [`gemm`] requires AVX512F, AVX512BW and AVX512-BF16.

#[cfg(test)]
use super::bf16_pairs::cpuinfo_lists;
use super::bf16_pairs::{interleave_rows, pair, scatter_pairs};
use super::epilogue::Epilogue;
use super::gemm::{GemmElem, MatRef};
#[cfg(target_arch = "x86_64")]
use super::gemm_pack::transpose_16_at;
use super::gemm_parts::for_each_block_of_c;
use super::spare::Spare;
use half::bf16;
use std::mem::MaybeUninit;

/// Rows of C per micro-tile.
const MR: usize = 6;
/// Columns of C per micro-tile (two 16-lane vectors).
const NR: usize = 32;
/// Inner size per packed block (even).
const KC: usize = 256;
/// Rows of A per packed block (a multiple of `MR`).
const MC: usize = 96;
/// Columns of B per packed block (a multiple of `NR`).
const NC: usize = 1024;

// `interleave_rows` packs full panels of exactly 32 columns.
const _: () = assert!(NR == 32);

/// The native bf16 GEMM as a [`GemmElem`]: callers check [`available`] first.
impl GemmElem for bf16 {
    /// bf16 weights are not packed ahead (none can be).
    type Packed = std::convert::Infallible;

    fn packed_shape(a: &Self::Packed) -> (usize, usize) {
        match *a {}
    }

    fn gemm_packed_fused(
        a: &Self::Packed,
        _: MatRef<bf16>,
        _: usize,
        _: &mut [MaybeUninit<f32>],
        _: &Epilogue<'_>,
    ) {
        match *a {}
    }

    fn gemm(
        m: usize,
        k: usize,
        n: usize,
        a: MatRef<bf16>,
        b: MatRef<bf16>,
        beta: f32,
        c: &mut [f32],
    ) {
        gemm(m, k, n, a, b, beta, c);
    }
}

/// Whether this CPU runs [`gemm`].
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU reports AVX512-BF16, to std's detection or in the
/// kernel's `/proc/cpuinfo` (`avx512_bf16`): a second look, independent of
/// [`available`], for the tests of the native path.
#[cfg(test)]
fn cpu_reports_avx512_bf16() -> bool {
    #[cfg(target_arch = "x86_64")]
    let detected = std::arch::is_x86_feature_detected!("avx512bf16");
    #[cfg(not(target_arch = "x86_64"))]
    let detected = false;
    detected
        || std::fs::read_to_string("/proc/cpuinfo")
            .is_ok_and(|text| cpuinfo_lists(&text, "avx512_bf16"))
}

/// For a test of the native path: whether it runs here ([`available`]).
/// When it does not, the test is reported skipped
/// ([`crate::test_skip::run_or_skip`]), except in CI on a CPU that reports
/// AVX512-BF16, where the test fails instead of skipping.
#[cfg(test)]
pub(crate) fn test_runs_here() -> bool {
    crate::test_skip::run_or_skip("AVX512-BF16", available(), cpu_reports_avx512_bf16())
}

/// `c[m, n] = op(a)[m, k] @ op(b)[k, n] + beta * c` (with `beta == 0`, `c` is
/// only written). Operands are dense row-major as stored (`a` `[m, k]`, or
/// `[k, m]` when transposed; likewise `b`).
///
/// # Panics
/// When the CPU lacks the instructions ([`available`] is false) or an
/// operand is shorter than its shape.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: MatRef<bf16>,
    b: MatRef<bf16>,
    beta: f32,
    c: &mut [f32],
) {
    gemm_on(Path::fastest(), m, k, n, a, b, beta, c);
}

/// Whether [`gemm`] runs on AMX tiles here (the CPU has AMX-BF16 and the
/// kernel granted this process the tile data, which this asks for once).
pub fn uses_amx() -> bool {
    available() && Path::fastest() == Path::Amx
}

/// The kernels [`gemm`] can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// AVX512-BF16's `vdpbf16ps` on vectors.
    Avx512Bf16,
    /// AMX tiles (`tdpbf16ps`, [`super::gemm_amx`]).
    Amx,
}

impl Path {
    /// AMX where the CPU and the kernel allow it, else AVX512-BF16.
    pub(crate) fn fastest() -> Self {
        #[cfg(target_arch = "x86_64")]
        if super::gemm_amx::available() {
            return Path::Amx;
        }
        Path::Avx512Bf16
    }

    /// What [`super::kernel_paths`] reports.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Path::Amx => "amx (tdpbf16ps on 16x16 tiles, f32 accumulation)",
            Path::Avx512Bf16 => "avx512_bf16 (vdpbf16ps, f32 accumulation)",
        }
    }
}

/// [`gemm`] on the kernels of `path` (which must run here).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_on(
    path: Path,
    m: usize,
    k: usize,
    n: usize,
    a: MatRef<bf16>,
    b: MatRef<bf16>,
    beta: f32,
    c: &mut [f32],
) {
    assert!(available(), "gemm_bf16: this CPU lacks AVX512-BF16");
    for_each_block_of_c(
        "gemm_bf16",
        (m, k, n),
        (16, 16),
        a.data,
        b.data,
        beta,
        c,
        |c, rows, cols| {
            // SAFETY: blocks of concurrent tasks are disjoint parts of c, whose
            // length was checked; `block` writes only its rows and columns.
            match path {
                Path::Avx512Bf16 => unsafe { block(m, k, n, a, b, beta, c, rows, cols) },
                #[cfg(target_arch = "x86_64")]
                Path::Amx => {
                    assert!(super::gemm_amx::available(), "gemm_bf16: no AMX here");
                    unsafe { super::gemm_amx::block(m, k, n, a, b, beta, c, rows, cols) }
                }
                #[cfg(not(target_arch = "x86_64"))]
                Path::Amx => unreachable!("AMX is x86_64's"),
            }
        },
    );
}

/// The blocked product for rows `r0 .. r0 + rows` and columns `c0 .. c0 + cols` of C.
///
/// # Safety
/// `c` points to the `m x n` result; no other thread writes this block.
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    m: usize,
    k: usize,
    n: usize,
    a: MatRef<bf16>,
    b: MatRef<bf16>,
    beta: f32,
    c: *mut f32,
    (r0, rows): (usize, usize),
    (c0, cols): (usize, usize),
) {
    // This thread's spare buffers; packing overwrites what the micro-kernel reads.
    let (mut apack, mut bpack) = (u32::take(MC * KC / 2), u32::take(NC * KC / 2));
    {
        let (apack, bpack) = (&mut apack[..], &mut bpack[..]);
        for jc in (c0..c0 + cols).step_by(NC) {
            let nc = NC.min(c0 + cols - jc);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                let kp = kc.div_ceil(2);
                pack_b(b, k, n, (pc, kc), (jc, nc), bpack);
                // The first k block applies beta; the others add to it.
                let beta_k = if pc == 0 { beta } else { 1.0 };
                for ic in (r0..r0 + rows).step_by(MC) {
                    let mc = MC.min(r0 + rows - ic);
                    pack_a(a, m, k, (ic, mc), (pc, kc), apack);
                    for jr in (0..nc).step_by(NR) {
                        let bp = &bpack[jr / NR * kp * NR..][..kp * NR];
                        for ir in (0..mc).step_by(MR) {
                            let ap = &apack[ir / MR * kp * MR..][..kp * MR];
                            // SAFETY: the tile lies inside this block of C; the
                            // panels hold kp pairs of MR / NR words.
                            unsafe {
                                let tile = c.add((ic + ir) * n + jc + jr);
                                kernel(
                                    kp,
                                    ap,
                                    bp,
                                    tile,
                                    n,
                                    MR.min(mc - ir),
                                    NR.min(nc - jr),
                                    beta_k,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    u32::give(apack);
    u32::give(bpack);
}

/// Packs rows `i0 .. i0 + mc` and k `k0 .. k0 + kc` of `op(a)` (`[m, k]`)
/// into `MR`-row panels of k pairs.
fn pack_a(
    a: MatRef<bf16>,
    m: usize,
    k: usize,
    rows: (usize, usize),
    ks: (usize, usize),
    out: &mut [u32],
) {
    // Stored [m, k] (k contiguous per row), or [k, m] when transposed.
    let ld = if a.trans { m } else { k };
    pack::<MR>(a.data, a.trans, ld, rows, ks, out);
}

/// Packs k `k0 .. k0 + kc` and columns `j0 .. j0 + nc` of `op(b)` (`[k, n]`)
/// into `NR`-column panels of k pairs.
fn pack_b(
    b: MatRef<bf16>,
    k: usize,
    n: usize,
    ks: (usize, usize),
    cols: (usize, usize),
    out: &mut [u32],
) {
    // Stored [k, n], or [n, k] (k contiguous per column) when transposed.
    let ld = if b.trans { k } else { n };
    pack::<NR>(b.data, !b.trans, ld, cols, ks, out);
}

/// Packs lines `i0 .. i0 + len` (rows of A, or columns of B) over k
/// `k0 .. k0 + kc` into `W`-line panels of k pairs: for each pair `p`, `W`
/// words, line by line; lines past `len` are zero.
///
/// `k_major`: the operand is stored `[k, ld]`, so a pair's two values lie in
/// two rows of memory and a panel's lines are adjacent in each (interleaved,
/// with AVX-512 for a full `NR`-wide panel). Otherwise it is stored
/// `[lines, ld]` with k contiguous: each line's pairs are adjacent words,
/// moved into the (L1-sized) panel 16 lines by 16 pairs through an
/// in-register transpose ([`transpose_pairs`]), the rest one word at a
/// time.
fn pack<const W: usize>(
    data: &[bf16],
    k_major: bool,
    ld: usize,
    (i0, len): (usize, usize),
    (k0, kc): (usize, usize),
    out: &mut [u32],
) {
    let kp = kc.div_ceil(2);
    for (pi, panel) in out.chunks_mut(kp * W).take(len.div_ceil(W)).enumerate() {
        let ib = i0 + pi * W;
        let lines = W.min(i0 + len - ib);
        if !k_major {
            // Whole pairs 16 at a time through the in-register transpose,
            // the rest (and an odd last value) one word at a time.
            let done = transpose_pairs(data, ld, (ib, lines), (k0, kc / 2), panel, W);
            for j in 0..lines {
                let line = &data[(ib + j) * ld + k0 + 2 * done..][..kc - 2 * done];
                scatter_pairs(line, &mut panel[done * W..], j, W);
            }
            if lines < W {
                for p in 0..kp {
                    panel[p * W + lines..(p + 1) * W].fill(0);
                }
            }
            continue;
        }
        for p in 0..kp {
            let kk = k0 + 2 * p;
            let r0 = &data[kk * ld + ib..][..lines];
            let dst = &mut panel[p * W..(p + 1) * W];
            if 2 * p + 1 < kc {
                let r1 = &data[(kk + 1) * ld + ib..][..lines];
                if W == NR && lines == NR {
                    // SAFETY: `available()` was asserted by `gemm`; both rows
                    // hold NR elements and dst NR words.
                    unsafe { interleave_rows(r0.as_ptr(), r1.as_ptr(), dst.as_mut_ptr()) };
                    continue;
                }
                for ((d, &lo), &hi) in dst.iter_mut().zip(r0).zip(r1) {
                    *d = pair(lo, hi);
                }
            } else {
                for (d, &lo) in dst.iter_mut().zip(r0) {
                    *d = pair(lo, bf16::ZERO);
                }
            }
            if lines < W {
                dst[lines..].fill(0);
            }
        }
    }
}

/// The first `pairs / 16 * 16` k pairs of lines `ib .. ib + lines` (k
/// contiguous, `ld` apart, from `k0`) written down a panel of `w` words per
/// pair, 16 lines by 16 pairs through [`transpose_16_at`]: two bf16 values
/// side by side in memory are, read as one little-endian word, the word
/// [`super::bf16_pairs::pair`] makes of them. Returns how many pairs it
/// wrote (0 off x86-64).
fn transpose_pairs(
    data: &[bf16],
    ld: usize,
    (ib, lines): (usize, usize),
    (k0, pairs): (usize, usize),
    panel: &mut [u32],
    w: usize,
) -> usize {
    let done = pairs / 16 * 16;
    #[cfg(target_arch = "x86_64")]
    {
        if done == 0 {
            return 0;
        }
        assert!(
            panel.len() >= (done - 1) * w + lines,
            "transpose_pairs: panel too short"
        );
        for group in (0..lines).step_by(16) {
            let n = 16.min(lines - group);
            // Each line's 2 * done values, checked once; lines past the
            // group's repeat its first and are not stored.
            let src: [&[bf16]; 16] = std::array::from_fn(|i| {
                let line = group + if i < n { i } else { 0 };
                &data[(ib + line) * ld + k0..][..2 * done]
            });
            for p in (0..done).step_by(16) {
                let rows: [*const f32; 16] =
                    std::array::from_fn(|i| src[i][2 * p..].as_ptr().cast::<f32>());
                let out = panel[p * w + group..].as_mut_ptr().cast::<f32>();
                // SAFETY: `available()` (AVX-512 BF16, so AVX512F) was
                // asserted by `gemm`; each row holds 16 words from pair p
                // (2 * done values from k0); the stores write n words of
                // rows p .. p + 16 of the panel, inside it (asserted).
                unsafe { transpose_16_at(&rows, out, w, n) };
            }
        }
        done
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (data, ld, ib, lines, k0, panel, w, done);
        0
    }
}

/// The micro-kernel: `tile[rows, cols] = beta * tile + a_panel @ b_panel`
/// over `kp` k pairs (`beta == 0`: the tile is only written). `ldc` is the
/// row stride of C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(
    kp: usize,
    a: &[u32],
    b: &[u32],
    tile: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
    beta: f32,
) {
    use std::arch::x86_64::*;
    // SAFETY: the panels hold kp pairs of MR / NR words; the tile has
    // rows x cols elements at stride ldc (checked by the caller).
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        for p in 0..kp {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(pb.add(p * NR) as *const _));
            let b1: __m512bh =
                std::mem::transmute(_mm512_loadu_si512(pb.add(p * NR + 16) as *const _));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av: __m512bh =
                    std::mem::transmute(_mm512_set1_epi32(*pa.add(p * MR + r) as i32));
                acc_r[0] = _mm512_dpbf16_ps(acc_r[0], av, b0);
                acc_r[1] = _mm512_dpbf16_ps(acc_r[1], av, b1);
            }
        }
        if rows == MR && cols == NR {
            let vb = _mm512_set1_ps(beta);
            for (r, acc_r) in acc.iter().enumerate() {
                for (h, v) in acc_r.iter().enumerate() {
                    let dst = tile.add(r * ldc + h * 16);
                    let out = if beta == 0.0 {
                        *v
                    } else {
                        _mm512_fmadd_ps(vb, _mm512_loadu_ps(dst), *v)
                    };
                    _mm512_storeu_ps(dst, out);
                }
            }
            return;
        }
        let mut tmp = [0f32; MR * NR];
        for (r, acc_r) in acc.iter().enumerate() {
            _mm512_storeu_ps(tmp.as_mut_ptr().add(r * NR), acc_r[0]);
            _mm512_storeu_ps(tmp.as_mut_ptr().add(r * NR + 16), acc_r[1]);
        }
        for r in 0..rows {
            for j in 0..cols {
                let dst = tile.add(r * ldc + j);
                let v = tmp[r * NR + j];
                *dst = if beta == 0.0 { v } else { beta * *dst + v };
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn kernel(
    _: usize,
    _: &[u32],
    _: &[u32],
    _: *mut f32,
    _: usize,
    _: usize,
    _: usize,
    _: f32,
) {
    unreachable!("gemm_bf16 runs only where available() holds")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_flags_are_read_whole_words_on_flags_lines() {
        let text = "processor\t: 0\nflags\t\t: fpu avx512f avx512bw avx512_bf16 avx512vl\n\n\
                    processor\t: 1\nflags\t\t: fpu avx512f\n";
        assert!(cpuinfo_lists(text, "avx512_bf16"));
        assert!(cpuinfo_lists(text, "avx512f"));
        assert!(
            !cpuinfo_lists(text, "avx512_bf1"),
            "a whole flag, not a prefix"
        );
        assert!(!cpuinfo_lists(
            "processor\t: 0\nflags\t\t: fpu avx512f\n",
            "avx512_bf16"
        ));
        assert!(!cpuinfo_lists(
            "model name\t: avx512_bf16 box\n",
            "avx512_bf16"
        ));
    }

    /// Deterministic bf16 values in [-2, 2).
    fn values(len: usize, seed: u32) -> Vec<bf16> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                bf16::from_f32((s % 4096) as f32 / 1024.0 - 2.0)
            })
            .collect()
    }

    #[test]
    fn matches_a_float64_product_for_every_shape_and_transpose() {
        if !test_runs_here() {
            return;
        }
        products_match_float64(&|m, k, n, a, b, beta, c| {
            gemm_on(Path::Avx512Bf16, m, k, n, a, b, beta, c)
        });
    }

    /// Whether an AMX test runs here ([`crate::test_skip::run_or_skip`]:
    /// reported skipped where the CPU or Linux grants no AMX-BF16).
    fn amx_test_runs_here() -> bool {
        #[cfg(target_arch = "x86_64")]
        let (runs, reported) = (
            available() && super::super::gemm_amx::available(),
            super::super::gemm_amx::cpu_reports_amx_bf16(),
        );
        #[cfg(not(target_arch = "x86_64"))]
        let (runs, reported) = (false, false);
        crate::test_skip::run_or_skip("AMX-BF16", runs, reported)
    }

    #[test]
    fn the_amx_path_matches_a_float64_product_for_every_shape_and_transpose() {
        if !amx_test_runs_here() {
            return;
        }
        products_match_float64(&|m, k, n, a, b, beta, c| {
            gemm_on(Path::Amx, m, k, n, a, b, beta, c)
        });
    }

    /// The AMX product gives the same bits on 1 to 4 threads, whose splits
    /// cut C at multiples of 16 rows (so a 32-row tile is whole on some and
    /// partial on others), over several k blocks (beta 1 after the first)
    /// and with beta 1 from the start.
    #[test]
    fn the_amx_path_gives_the_same_bits_on_any_thread_count() {
        if !amx_test_runs_here() {
            return;
        }
        let (m, k, n) = (100, 1100, 70);
        let (a, b) = (values(m * k, 4), values(k * n, 5));
        let c0: Vec<f32> = values(m * n, 6).iter().map(|v| v.to_f32()).collect();
        for beta in [0.0f32, 1.0] {
            let on = |threads: usize| {
                let mut c = c0.clone();
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    let (ar, br) = (
                        MatRef {
                            data: &a[..],
                            trans: false,
                        },
                        MatRef {
                            data: &b[..],
                            trans: false,
                        },
                    );
                    gemm_on(Path::Amx, m, k, n, ar, br, beta, &mut c)
                });
                c.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
            };
            let one = on(1);
            for threads in 2..=4 {
                assert!(on(threads) == one, "beta {beta}: {threads} threads");
            }
        }
    }

    type GemmFn<'f> = dyn Fn(usize, usize, usize, MatRef<bf16>, MatRef<bf16>, f32, &mut [f32]) + 'f;

    fn products_match_float64(path_gemm: &GemmFn) {
        // Odd k, partial panels, several k blocks (k > KC), and sizes large
        // enough to be split across threads.
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 13, 45),
            (6, 32, 32),
            (13, 600, 70),
            (70, 300, 1100),
            (7, 300, 50),
            (33, 1100, 65),
            (33, 1101, 65),
        ] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (a, b) = (values(m * k, 1), values(k * n, 2));
                let get_a = |i: usize, kk: usize| if ta { a[kk * m + i] } else { a[i * k + kk] };
                let get_b = |kk: usize, j: usize| if tb { b[j * k + kk] } else { b[kk * n + j] };
                let c0: Vec<f32> = values(m * n, 3).iter().map(|v| v.to_f32()).collect();
                for beta in [0.0f32, 0.5, 1.0] {
                    let mut c = c0.clone();
                    let (ar, br) = (
                        MatRef {
                            data: &a[..],
                            trans: ta,
                        },
                        MatRef {
                            data: &b[..],
                            trans: tb,
                        },
                    );
                    path_gemm(m, k, n, ar, br, beta, &mut c);
                    for i in 0..m {
                        for j in 0..n {
                            let (mut want, mut mag) = (beta as f64 * c0[i * n + j] as f64, 0.0f64);
                            for kk in 0..k {
                                let t = get_a(i, kk).to_f64() * get_b(kk, j).to_f64();
                                want += t;
                                mag += t.abs();
                            }
                            let got = c[i * n + j] as f64;
                            assert!(
                                (got - want).abs() <= 1e-6 * (mag + 1.0) * (k as f64).sqrt(),
                                "m{m} k{k} n{n} ta{ta} tb{tb} beta{beta} [{i},{j}]: {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
