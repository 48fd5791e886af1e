//! The f32 GEMM of the CPU backend on AVX-512F: `c[m, n] = alpha *
//! op(a)[m, k] @ op(b)[k, n] + beta * c`.
//!
//! Blocking as in GotoBLAS, like the bf16 GEMM ([`super::gemm_bf16`]): C is
//! split into one block per rayon thread (`gemm_parts::for_each_block`); within a
//! block, `NC` columns by `KC` of k of B are packed (L2), then `MC` rows by
//! `KC` of A (unless A was packed once, [`PackedA`]; B likewise, [`PackedB`]),
//! and a `MR x NR` micro-kernel keeps its tile of C in 24 of the
//! 32 vector registers: per k, two 16-lane loads of B and `MR` broadcasts of
//! A feed 24 FMAs, so the two FMA ports, not the loads, set the pace (a tile
//! of at most 16 columns: one load, 12 FMAs). The packing itself is
//! `gemm_pack`'s. Packed
//! layouts, k-major so that the micro-kernel reads both panels in order:
//! - an A panel: `MR` rows; for each k, `MR` values, row by row;
//! - a B panel: `NR` columns; for each k, `NR` values, column by column.
//!
//! A block of few rows ([`DIRECT_B_MAX_ROWS`]) reads a `[k, n]` B where it
//! lies instead (whole panels; a partial last panel is still packed), and
//! [`gemm_fused`] applies an epilogue (bias, residual, ReLU) to each tile
//! of C as its last k block is stored.
//!
//! Partial panels are padded with zeros. Sums run in k order within a k
//! block (FMA: one rounding per multiply-add), so results can differ from
//! another GEMM's in the last bits.
//!
//! Use [`available`] first: [`gemm`] requires AVX512F.

use super::epilogue::Epilogue;
use super::fill::{assume_init_vec, uninit_vec};
use super::gemm_pack::pack;
use super::gemm_parts::{for_each_block_of_c, MatRef};
use super::spare::Spare;
use std::mem::MaybeUninit;

/// Rows of C per micro-tile.
const MR: usize = 12;
/// Columns of C per micro-tile (two 16-lane vectors).
const NR: usize = 32;
/// Inner size per packed block: a B panel (`KC x NR`, 32 KiB) stays in L1.
const KC: usize = 256;
/// Rows of A per packed block (a multiple of `MR`).
const MC: usize = 96;
/// Columns of B per packed block (a multiple of `NR`).
const NC: usize = 1024;

const _: () = assert!(MC.is_multiple_of(MR) && NC.is_multiple_of(NR));

/// Blocks of at most this many rows of C read B where it lies instead of
/// packing it, when B is stored `[k, n]`: each B panel then serves one or
/// two blocks of A, too few to repay its copy (a 1x1 convolution to 64 or
/// 128 channels spent a third of its time packing B). Larger blocks pack:
/// read in place, B's rows (`n` apart, often a power of two) collide in
/// the caches (a 2048 x 2048 product ran at half speed).
const DIRECT_B_MAX_ROWS: usize = 128;

/// Whether this CPU runs [`gemm`].
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `c[m, n] = alpha * op(a)[m, k] @ op(b)[k, n] + beta * c` (with `beta ==
/// 0`, `c` is only written). Operands are dense row-major as stored (`a`
/// `[m, k]`, or `[k, m]` when transposed; likewise `b`).
///
/// # Panics
/// When the CPU lacks AVX512F ([`available`] is false) or an operand is
/// shorter than its shape.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    m: usize,
    k: usize,
    n: usize,
    alpha: f32,
    a: MatRef<f32>,
    b: MatRef<f32>,
    beta: f32,
    c: &mut [f32],
) {
    blocked(
        (m, k, n),
        alpha,
        AOperand::Stored(a),
        BOperand::Stored(b),
        beta,
        c,
        &Epilogue::default(),
    );
}

/// `c[m, n] = epi(op(a)[m, k] @ op(b)[k, n])`: the product with the
/// epilogue applied to each tile of C right after its last k block is
/// stored, while the tile is still in L1 (rows of C are the epilogue's
/// rows; its residual is `[m, n]`). `c` is only written.
///
/// # Panics
/// When the CPU lacks AVX512F ([`available`] is false), an operand is
/// shorter than its shape, the bias holds fewer than `m` values or the
/// residual fewer than `m * n`.
pub fn gemm_fused(
    (m, k, n): (usize, usize, usize),
    a: MatRef<f32>,
    b: MatRef<f32>,
    c: &mut [f32],
    epi: &Epilogue<'_>,
) {
    fused((m, k, n), AOperand::Stored(a), BOperand::Stored(b), c, epi);
}

/// `c[m, n] = epi(a[m, k] @ op(b)[k, n])` with A packed once
/// ([`PackedA`]): [`gemm_fused`] without packing A, for weights that
/// multiply many inputs. `c` is only written.
///
/// # Panics
/// As [`gemm_fused`].
pub fn gemm_packed_fused(a: &PackedA, b: MatRef<f32>, n: usize, c: &mut [f32], epi: &Epilogue<'_>) {
    let (m, k) = (a.m, a.k);
    assert_eq!(
        c.len(),
        m * n,
        "gemm_packed_fused: c must hold m * n elements"
    );
    fused((m, k, n), AOperand::Packed(a), BOperand::Stored(b), c, epi);
}

/// `c[m, n] = epi(op(a)[m, k] @ b[k, n])` with B packed once
/// ([`PackedB`]): [`gemm_fused`] without packing B, for a layer's weights
/// that multiply many inputs. `c` is only written. As everywhere here, the
/// epilogue's bias is per row of C (not per column: a linear layer's bias
/// is added after).
///
/// # Panics
/// As [`gemm_fused`].
pub fn gemm_packed_b_fused(
    m: usize,
    a: MatRef<f32>,
    b: &PackedB,
    c: &mut [f32],
    epi: &Epilogue<'_>,
) {
    let (k, n) = (b.k, b.n);
    assert_eq!(
        c.len(),
        m * n,
        "gemm_packed_b_fused: c must hold m * n elements"
    );
    fused((m, k, n), AOperand::Stored(a), BOperand::Packed(b), c, epi);
}

/// [`gemm_fused`], [`gemm_packed_fused`] or [`gemm_packed_b_fused`]: the
/// epilogue's lengths checked,
/// a product with no k (no tile is stored: C is zeros, then the epilogue),
/// else the blocked product with the epilogue in its stores.
fn fused(
    (m, k, n): (usize, usize, usize),
    a: AOperand<'_>,
    b: BOperand<'_>,
    c: &mut [f32],
    epi: &Epilogue<'_>,
) {
    assert!(
        epi.bias.is_none_or(|v| v.len() >= m) && epi.residual.is_none_or(|v| v.len() >= m * n),
        "gemm_avx512: epilogue shorter than C"
    );
    if k == 0 {
        c[..m * n].fill(0.0);
        epi.apply(&mut c[..m * n], n);
        return;
    }
    blocked((m, k, n), 1.0, a, b, 0.0, c, epi);
}

/// The A operand of a blocked product.
#[derive(Clone, Copy)]
enum AOperand<'a> {
    /// As stored: packed block by block as the product goes.
    Stored(MatRef<'a, f32>),
    /// Packed once, whole.
    Packed(&'a PackedA),
}

/// The B operand of a blocked product.
#[derive(Clone, Copy)]
enum BOperand<'a> {
    /// As stored: packed block by block as the product goes, or read in
    /// place ([`DIRECT_B_MAX_ROWS`]).
    Stored(MatRef<'a, f32>),
    /// Packed once, whole.
    Packed(&'a PackedB),
}

/// [`gemm`], [`gemm_fused`], [`gemm_packed_fused`] or
/// [`gemm_packed_b_fused`]: the product split into blocks of C, one per
/// thread (rows split at multiples of `MR`, where a packed A's panels
/// start; columns at multiples of `NR` where B was packed once, where its
/// panels start).
#[allow(clippy::too_many_arguments)]
fn blocked(
    dims: (usize, usize, usize),
    alpha: f32,
    a: AOperand<'_>,
    b: BOperand<'_>,
    beta: f32,
    c: &mut [f32],
    epi: &Epilogue<'_>,
) {
    assert!(available(), "gemm_avx512: this CPU lacks AVX512F");
    let a_data = match a {
        AOperand::Stored(a) => a.data,
        AOperand::Packed(p) => &p.data[..],
    };
    let b_data = match b {
        BOperand::Stored(b) => b.data,
        BOperand::Packed(p) => &p.data[..],
    };
    // A packed B is split at its panels; else at 16 columns, which
    // balances the threads better.
    let col_step = match b {
        BOperand::Packed(_) => NR,
        BOperand::Stored(_) => 16,
    };
    for_each_block_of_c(
        "gemm_avx512",
        dims,
        (MR, col_step),
        a_data,
        b_data,
        beta,
        c,
        |c, rows, cols| {
            // SAFETY: blocks of concurrent tasks are disjoint parts of c, whose
            // length was checked; `block` writes only its rows and columns;
            // the epilogue covers C (the callers' checks).
            unsafe { block(dims, alpha, a, b, beta, c, rows, cols, epi) }
        },
    );
}

/// The blocked product for rows `r0 .. r0 + rows` and columns `c0 .. c0 +
/// cols` of C.
///
/// # Safety
/// `c` points to the `m x n` result; no other thread writes this block;
/// [`available`] holds; a stored B holds `k * n` values (it is read in
/// place, unchecked); a packed B's panels start at `c0`; the epilogue's
/// bias holds `m` values and its residual `m * n`.
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    (m, k, n): (usize, usize, usize),
    alpha: f32,
    a: AOperand<'_>,
    b: BOperand<'_>,
    beta: f32,
    c: *mut f32,
    (r0, rows): (usize, usize),
    (c0, cols): (usize, usize),
    epi: &Epilogue<'_>,
) {
    // This thread's spare buffers; packing overwrites what the micro-kernel reads.
    // Sized to this block: a small product packs (and touches) little.
    let kc_max = KC.min(k);
    let direct_b = matches!(b, BOperand::Stored(b) if !b.trans && rows <= DIRECT_B_MAX_ROWS);
    let b_lines = match b {
        BOperand::Packed(_) => 0,
        BOperand::Stored(_) if direct_b => NR,
        BOperand::Stored(_) => NC.min(cols.next_multiple_of(NR)),
    };
    let a_lines = match a {
        AOperand::Stored(_) => MC.min(rows.next_multiple_of(MR)),
        AOperand::Packed(_) => 0,
    };
    let (mut apack, mut bpack) = (f32::take(a_lines * kc_max), f32::take(b_lines * kc_max));
    {
        let (apack, bpack) = (&mut apack[..], &mut bpack[..]);
        for jc in (c0..c0 + cols).step_by(NC) {
            let nc = NC.min(c0 + cols - jc);
            for pc in (0..k).step_by(KC) {
                let kc = KC.min(k - pc);
                // Columns before `whole` are read from B's panels where they
                // lie: a packed B's, or whole panels of a B stored `[k, n]`
                // (rows of NR values, n apart). The rest is packed
                // (zero-padded) at the start of bpack.
                let whole = match b {
                    BOperand::Packed(_) => nc,
                    BOperand::Stored(_) if direct_b => nc / NR * NR,
                    BOperand::Stored(_) => 0,
                };
                if let (BOperand::Stored(b), true) = (b, whole < nc) {
                    let ldb = if b.trans { k } else { n };
                    pack::<NR>(
                        b.data,
                        !b.trans,
                        ldb,
                        (jc + whole, nc - whole),
                        (pc, kc),
                        bpack,
                    );
                }
                // The first k block applies beta; the others add to it.
                let beta_k = if pc == 0 { beta } else { 1.0 };
                let last_k = pc + kc == k;
                for ic in (r0..r0 + rows).step_by(MC) {
                    let mc = MC.min(r0 + rows - ic);
                    let a_block: &[f32] = match a {
                        AOperand::Stored(a) => {
                            let lda = if a.trans { m } else { k };
                            pack::<MR>(a.data, a.trans, lda, (ic, mc), (pc, kc), apack);
                            apack
                        }
                        AOperand::Packed(p) => {
                            // Blocks split rows at multiples of MR (`blocked`),
                            // and MC is one: row ic starts a panel.
                            assert!(ic.is_multiple_of(MR), "packed A: block off a panel");
                            let m_pad = m.next_multiple_of(MR);
                            &p.data[pc * m_pad + ic / MR * kc * MR..]
                        }
                    };
                    for jr in (0..nc).step_by(NR) {
                        let bp = match b {
                            BOperand::Packed(p) => {
                                // Blocks split columns at multiples of NR
                                // (`blocked`), and NC is one: column jc + jr
                                // starts a panel.
                                assert!(
                                    (jc + jr).is_multiple_of(NR),
                                    "packed B: block off a panel"
                                );
                                let n_pad = n.next_multiple_of(NR);
                                let p = &p.data[pc * n_pad + (jc + jr) / NR * kc * NR..][..kc * NR];
                                BPanel {
                                    at: p.as_ptr(),
                                    ld: NR,
                                    ahead: kc * NR,
                                }
                            }
                            BOperand::Stored(b) if jr < whole => BPanel {
                                // SAFETY: row pc, column jc + jr of B, whose
                                // kc rows of NR values lie in b (checked by
                                // the driver: b holds k x n).
                                at: unsafe { b.data.as_ptr().add(pc * n + jc + jr) },
                                ld: n,
                                ahead: NR,
                            },
                            BOperand::Stored(_) => {
                                let p = &bpack[(jr - whole) / NR * kc * NR..][..kc * NR];
                                BPanel {
                                    at: p.as_ptr(),
                                    ld: NR,
                                    ahead: 0,
                                }
                            }
                        };
                        for ir in (0..mc).step_by(MR) {
                            let ap = &a_block[ir / MR * kc * MR..][..kc * MR];
                            let (row, col) = (ic + ir, jc + jr);
                            // SAFETY: the tile's first element lies in
                            // this block of C.
                            let at = unsafe { c.add(row * n + col) };
                            let (t_rows, t_cols) = (MR.min(mc - ir), NR.min(nc - jr));
                            // The tile's lines of C (first stored by this k
                            // block) and of the residual (read after the
                            // last) are fetched while the kernel multiplies:
                            // rows n apart defeat the hardware's prefetch,
                            // and with a short k each miss would stall.
                            if pc == 0 {
                                prefetch_rows(at, n, t_rows, t_cols);
                            }
                            if let (true, Some(r)) = (last_k, epi.residual) {
                                prefetch_rows(
                                    r.as_ptr().wrapping_add(row * n + col),
                                    n,
                                    t_rows,
                                    t_cols,
                                );
                            }
                            let tile = Tile {
                                at,
                                ldc: n,
                                rows: t_rows,
                                cols: t_cols,
                            };
                            // SAFETY: the panels hold kc values of MR / NR
                            // lines; the tile lies inside this block of C;
                            // `available` holds (the caller's contract).
                            unsafe { kernel(kc, ap, bp, tile, alpha, beta_k) };
                            if last_k && !epi.is_identity() {
                                // SAFETY: as for the kernel; the epilogue
                                // covers C (the caller's contract).
                                unsafe {
                                    epi.apply_tile_avx512(at, n, (row, t_rows), (col, t_cols))
                                };
                            }
                        }
                    }
                }
            }
        }
    }
    f32::give(apack);
    f32::give(bpack);
}

/// Columns of the one B panel [`gemm_panel`] multiplies.
pub const PANEL_COLUMNS: usize = NR;

/// An A operand `[m, k]` packed once into the micro-kernel's panels, for
/// products that multiply it many times ([`gemm_panel`]): for each k block
/// of `KC`, `m` rounded up to `MR` rows as panels of `MR` rows.
pub struct PackedA {
    m: usize,
    k: usize,
    data: Vec<f32>,
}

impl PackedA {
    /// Packs the row-major `a: [m, k]`.
    ///
    /// # Panics
    /// When the CPU lacks AVX512F or `a` holds fewer than `m * k` values.
    pub fn new(m: usize, k: usize, a: &[f32]) -> Self {
        assert!(a.len() >= m * k, "PackedA: operand too small");
        let data = pack_whole::<MR>(m, k, a);
        PackedA { m, k, data }
    }

    /// Its shape `(m, k)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.m, self.k)
    }

    /// The values it holds (rows padded to `MR`), for accounting.
    pub fn len(&self) -> usize {
        self.data.len()
    }
}

/// A B operand `[k, n]` packed once into the micro-kernel's panels, from
/// its transpose `w: [n, k]` as stored (a linear layer's weight, `y = x @
/// w^T`), for products that multiply it many times ([`gemm_packed_b_fused`]):
/// for each k block of `KC`, `n` rounded up to `NR` columns as panels of `NR`
/// columns.
pub struct PackedB {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl PackedB {
    /// Packs `b = w^T` from the row-major `w: [n, k]`.
    ///
    /// # Panics
    /// When the CPU lacks AVX512F or `w` holds fewer than `n * k` values.
    pub fn from_transposed(n: usize, k: usize, w: &[f32]) -> Self {
        assert!(w.len() >= n * k, "PackedB: operand too small");
        let data = pack_whole::<NR>(n, k, w);
        PackedB { k, n, data }
    }

    /// Its shape `(k, n)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// The values it holds (columns padded to `NR`), for accounting.
    pub fn len(&self) -> usize {
        self.data.len()
    }
}

/// The row-major `x: [lines, k]` packed whole into `W`-line panels (a packed
/// A's rows or a packed B's columns): for each k block of `KC`, `lines`
/// rounded up to `W` as panels of `W` lines (zeros past the last line).
fn pack_whole<const W: usize>(lines: usize, k: usize, x: &[f32]) -> Vec<f32> {
    assert!(available(), "gemm_avx512: this CPU lacks AVX512F");
    let padded = lines.next_multiple_of(W);
    let mut data = uninit_vec::<f32>(padded * k);
    // SAFETY: only written before it is read: `pack` writes every value of
    // each k block's `padded / W` panels (zeros past the last line).
    let out = unsafe { &mut *(&mut data[..] as *mut [MaybeUninit<f32>] as *mut [f32]) };
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        pack::<W>(
            x,
            false,
            k,
            (0, lines),
            (pc, kc),
            &mut out[pc * padded..][..padded * kc],
        );
    }
    // SAFETY: the k blocks cover all of data, each written in full.
    unsafe { assume_init_vec(data) }
}

/// `c[m, cols] = a @ b[.., ..cols]` on this thread, for one B panel
/// already in the packed layout: `b` holds, for each of `a`'s `k` columns,
/// [`PANEL_COLUMNS`] values, of which the first `cols` are multiplied (at
/// most 16 of them take half the work of a whole panel). `c` is row-major with
/// row stride `ldc`; its first `cols` columns are only written, the others
/// left as they are.
///
/// # Panics
/// When `cols` exceeds [`PANEL_COLUMNS`], or `b` or `c` is shorter than
/// that.
pub fn gemm_panel(a: &PackedA, b: &[f32], c: &mut [f32], ldc: usize, cols: usize) {
    let m = a.m;
    assert!(
        ldc >= NR && (m == 0 || c.len() >= (m - 1) * ldc + NR),
        "gemm_panel: operand too small"
    );
    // SAFETY: c holds the m rows of NR columns at stride ldc (asserted).
    unsafe { gemm_panel_at(a, b, c.as_mut_ptr(), ldc, cols) }
}

/// [`gemm_panel`] into C at `at`, where tasks write disjoint tiles of one
/// output that no slice may cover whole: writes only `a`'s `m` rows of the
/// first `cols` columns from `at`, at row stride `ldc`.
///
/// # Safety
/// Those `m x cols` elements lie in one allocation, which nothing else
/// reads or writes meanwhile.
///
/// # Panics
/// When `cols` exceeds [`PANEL_COLUMNS`], or `b` is shorter than `k` rows
/// of it.
pub unsafe fn gemm_panel_at(a: &PackedA, b: &[f32], at: *mut f32, ldc: usize, cols: usize) {
    let (m, k) = (a.m, a.k);
    assert!(
        cols <= NR && b.len() >= k * NR,
        "gemm_panel: operand too small"
    );
    let m_pad = m.next_multiple_of(MR);
    for pc in (0..k).step_by(KC) {
        let kc = KC.min(k - pc);
        let bp = &b[pc * NR..][..kc * NR];
        let block = &a.data[pc * m_pad..][..m_pad * kc];
        for (i, ap) in block.chunks_exact(kc * MR).enumerate() {
            let tile = Tile {
                // SAFETY: row i * MR < m lies in C (the caller's contract).
                at: unsafe { at.add(i * MR * ldc) },
                ldc,
                rows: MR.min(m - i * MR),
                cols,
            };
            let beta = if pc == 0 { 0.0 } else { 1.0 };
            let bp = BPanel {
                at: bp.as_ptr(),
                ld: NR,
                ahead: 0,
            };
            // SAFETY: the panels hold kc values of MR / NR lines; the tile's
            // rows and its columns (at most NR) lie in c; AVX512F holds
            // (PackedA::new).
            unsafe { kernel(kc, ap, bp, tile, 1.0, beta) };
        }
    }
}

/// Where a micro-kernel reads its B panel: for each of its `kc` values of
/// k, up to `NR` values from `at + p * ld` (the kernel reads `16 * V` of
/// them; a packed panel: `ld == NR`; B as stored `[k, n]`: `ld == n`).
#[derive(Clone, Copy)]
struct BPanel {
    at: *const f32,
    ld: usize,
    /// How far ahead (in values) the next panel's part of each row lies,
    /// for the kernel to fetch while this one is multiplied; 0: no fetch
    /// (a panel packed for this block is already in the caches).
    ahead: usize,
}

/// Fetches into L1 the cache lines of `rows x cols` elements from `at` at a
/// row stride of `ld` (at most 32 columns). A prefetch never faults: any
/// address is harmless.
fn prefetch_rows(at: *const f32, ld: usize, rows: usize, cols: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for r in 0..rows {
            let line = at.wrapping_add(r * ld);
            // SAFETY: SSE is part of x86-64; prefetches do not fault.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(line.cast());
                _mm_prefetch::<_MM_HINT_T0>(line.wrapping_add(cols - 1).cast());
                if cols > 16 {
                    _mm_prefetch::<_MM_HINT_T0>(line.wrapping_add(16).cast());
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (at, ld, rows, cols);
}

/// Where a micro-kernel writes: `rows x cols` elements of C from `at`, at a
/// row stride of `ldc`.
struct Tile {
    at: *mut f32,
    ldc: usize,
    rows: usize,
    cols: usize,
}

/// The micro-kernel for a tile of any width (at most `NR`): a tile of at
/// most 16 columns multiplies only the first 16-lane vector of each B row
/// ([`kernel_of`] with one vector), half the work of a full one; the sums
/// of the columns it stores are the same.
///
/// # Safety
/// As [`kernel_of`].
unsafe fn kernel(kc: usize, a: &[f32], b: BPanel, tile: Tile, alpha: f32, beta: f32) {
    // SAFETY: the caller's contract.
    unsafe {
        if tile.cols <= 16 {
            kernel_of::<1>(kc, a, b, tile, alpha, beta);
        } else {
            kernel_of::<2>(kc, a, b, tile, alpha, beta);
        }
    }
}

/// The micro-kernel: `tile = alpha * a_panel @ b_panel + beta * tile` over
/// `kc` values of k (`beta == 0`: the tile is only written), on the first
/// `V` 16-lane vectors of each row of the B panel (tiles of at most `16 *
/// V` columns).
///
/// # Safety
/// AVX512F is available; the A panel holds `kc` values of `MR` rows; the B
/// panel's `kc` rows of `16 * V` values (from `b.at + p * b.ld`) are
/// readable; the tile's elements lie in C, and it has at most `16 * V`
/// columns.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn kernel_of<const V: usize>(
    kc: usize,
    a: &[f32],
    b: BPanel,
    tile: Tile,
    alpha: f32,
    beta: f32,
) {
    use std::arch::x86_64::*;
    assert!(a.len() >= kc * MR && tile.cols <= 16 * V && V <= NR / 16);
    // SAFETY: the loads stay inside the asserted A panel and the B panel
    // (the caller's contract); the stores inside the tile (likewise).
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); V]; MR];
        let (pa, pb, ldb, ahead) = (a.as_ptr(), b.at, b.ld, b.ahead);
        for p in 0..kc {
            let row = pb.add(p * ldb);
            if ahead != 0 {
                // B read where it lies, or packed once and not yet in
                // the caches: fetch the next panel's part of this row
                // while this one is multiplied. A prefetch never faults,
                // so past B's end it is harmless.
                for h in 0..V {
                    _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(ahead + 16 * h).cast());
                }
            }
            let bv: [__m512; V] = std::array::from_fn(|h| _mm512_loadu_ps(row.add(16 * h)));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*pa.add(p * MR + r));
                for (acc, b) in acc_r.iter_mut().zip(bv) {
                    *acc = _mm512_fmadd_ps(av, b, *acc);
                }
            }
        }
        let (va, vb) = (_mm512_set1_ps(alpha), _mm512_set1_ps(beta));
        let Tile {
            at,
            ldc,
            rows,
            cols,
        } = tile;
        if rows == MR && cols == 16 * V {
            for (r, acc_r) in acc.iter().enumerate() {
                for (h, v) in acc_r.iter().enumerate() {
                    let dst = at.add(r * ldc + h * 16);
                    let v = _mm512_mul_ps(va, *v);
                    let out = if beta == 0.0 {
                        v
                    } else {
                        _mm512_fmadd_ps(vb, _mm512_loadu_ps(dst), v)
                    };
                    _mm512_storeu_ps(dst, out);
                }
            }
            return;
        }
        // A partial tile: its rows, each with the lanes of its columns.
        for (r, acc_r) in acc.iter().enumerate().take(rows) {
            for (h, v) in acc_r.iter().enumerate() {
                let lanes = cols.saturating_sub(h * 16).min(16);
                if lanes == 0 {
                    break;
                }
                let mask: __mmask16 = (((1u32 << lanes) - 1) & 0xffff) as u16;
                let dst = at.add(r * ldc + h * 16);
                let v = _mm512_mul_ps(va, *v);
                let out = if beta == 0.0 {
                    v
                } else {
                    _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask, dst), v)
                };
                _mm512_mask_storeu_ps(dst, mask, out);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn kernel_of<const V: usize>(_: usize, _: &[f32], _: BPanel, _: Tile, _: f32, _: f32) {
    unreachable!("gemm_avx512 runs only where available() holds")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-2, 2).
    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 4096) as f32 / 1024.0 - 2.0
            })
            .collect()
    }

    #[test]
    fn matches_a_float64_product_for_every_shape_transpose_alpha_and_beta() {
        if !crate::test_skip::run_or_skip("AVX512F", available(), available()) {
            return;
        }
        // Partial panels in both directions, several k blocks (k > KC),
        // sizes split across threads, and a single row / column.
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 13, 45),
            (12, 32, 32),
            (13, 600, 70),
            (70, 300, 1100),
            (33, 1100, 65),
            (1, 257, 200),
            (200, 257, 1),
            // Tails of exactly 16 and of 28 columns on one thread.
            (13, 40, 48),
            (25, 30, 60),
        ] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let (a, b) = (values(m * k, 1), values(k * n, 2));
                let get_a = |i: usize, kk: usize| if ta { a[kk * m + i] } else { a[i * k + kk] };
                let get_b = |kk: usize, j: usize| if tb { b[j * k + kk] } else { b[kk * n + j] };
                let c0 = values(m * n, 3);
                for (alpha, beta) in [(1.0f32, 0.0f32), (1.0, 1.0), (0.25, 0.5)] {
                    let mut c = c0.clone();
                    let ar = MatRef {
                        data: &a[..],
                        trans: ta,
                    };
                    let br = MatRef {
                        data: &b[..],
                        trans: tb,
                    };
                    gemm(m, k, n, alpha, ar, br, beta, &mut c);
                    for i in 0..m {
                        for j in 0..n {
                            let (mut dot, mut mag) = (0.0f64, 0.0f64);
                            for kk in 0..k {
                                let t = get_a(i, kk) as f64 * get_b(kk, j) as f64;
                                dot += t;
                                mag += t.abs();
                            }
                            let want = alpha as f64 * dot + beta as f64 * c0[i * n + j] as f64;
                            let got = c[i * n + j] as f64;
                            assert!(
                                (got - want).abs() <= 1e-6 * (mag + 1.0) * (k as f64).sqrt(),
                                "m{m} k{k} n{n} ta{ta} tb{tb} alpha{alpha} beta{beta} [{i},{j}]: {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// A B stored `[k, n]` and read where it lies (blocks of at most
    /// `DIRECT_B_MAX_ROWS` rows) gives the bits of the same B packed (given
    /// transposed, which is always packed): whole and partial panels,
    /// several k blocks, one row and a full MC block, with and without the
    /// fused epilogue.
    #[test]
    fn b_read_in_place_gives_the_bits_of_b_packed() {
        if !crate::test_skip::run_or_skip("AVX512F", available(), available()) {
            return;
        }
        for &(m, k, n) in &[(100, 300, 70), (12, 40, 64), (128, 257, 33), (1, 5, 100)] {
            assert!(m <= DIRECT_B_MAX_ROWS);
            let (a, b) = (values(m * k, 4), values(k * n, 5));
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            let a = MatRef {
                data: &a[..],
                trans: false,
            };
            let in_place = MatRef {
                data: &b[..],
                trans: false,
            };
            let packed = MatRef {
                data: &bt[..],
                trans: true,
            };
            let bias = values(m, 6);
            let epi = Epilogue {
                bias: Some(&bias),
                residual: None,
                relu: true,
            };
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let (mut c1, mut c2) = (vec![0.0; m * n], vec![0.0; m * n]);
            gemm(m, k, n, 1.0, a, in_place, 0.0, &mut c1);
            gemm(m, k, n, 1.0, a, packed, 0.0, &mut c2);
            assert!(
                bits(&c1) == bits(&c2),
                "m{m} k{k} n{n}: in place and packed differ"
            );
            gemm_fused((m, k, n), a, in_place, &mut c1, &epi);
            gemm_fused((m, k, n), a, packed, &mut c2, &epi);
            assert!(
                bits(&c1) == bits(&c2),
                "m{m} k{k} n{n}: fused, in place and packed differ"
            );
        }
    }

    /// A B packed once whole ([`PackedB`]) gives the bits of the same B
    /// packed block by block as the product goes: partial panels, several k
    /// and column blocks, blocks of C split over the threads along either
    /// side, with and without the fused epilogue.
    #[test]
    fn b_packed_once_gives_the_bits_of_b_packed_per_call() {
        if !crate::test_skip::run_or_skip("AVX512F", available(), available()) {
            return;
        }
        let shapes = [
            (50, 384, 1152),
            (400, 300, 70),
            (1, 5, 100),
            (130, 600, 1100),
            (3, 2, 33),
        ];
        for &(m, k, n) in &shapes {
            let (a, w) = (values(m * k, 7), values(n * k, 8));
            let a = MatRef {
                data: &a[..],
                trans: false,
            };
            let stored = MatRef {
                data: &w[..],
                trans: true,
            };
            let packed = PackedB::from_transposed(n, k, &w);
            assert_eq!(packed.shape(), (k, n));
            let bias = values(m, 9);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            for epi in [
                Epilogue::default(),
                Epilogue {
                    bias: Some(&bias),
                    residual: None,
                    relu: true,
                },
            ] {
                let (mut c1, mut c2) = (vec![0.0; m * n], vec![1.0; m * n]);
                gemm_fused((m, k, n), a, stored, &mut c1, &epi);
                gemm_packed_b_fused(m, a, &packed, &mut c2, &epi);
                assert!(
                    bits(&c1) == bits(&c2),
                    "m{m} k{k} n{n}: B packed once and per call differ"
                );
            }
        }
    }
}
