//! Winograd F(m x m, 3x3) (Lavin & Gray, 2016): the forward of 3x3, stride-1,
//! undilated, ungrouped f32 convolutions on AVX-512F, in two sizes:
//! - F(4x4, 3x3) ([`Tile::F4`]): 36 multiplies per 4x4 output tile and
//!   channel pair where im2col + GEMM takes 144;
//! - F(2x2, 3x3) ([`Tile::F2`]): 16 multiplies per 2x2 tile where im2col +
//!   GEMM takes 36, for planes too small to give 4x4 tiles enough to fill a
//!   GEMM panel (the 7x7 last stage of a ResNet at 224, the 8x8 one of a
//!   CIFAR ResNet).
//!
//! Shapes, with `m` the tile's side and `α = m + 2` its input patch's:
//! `x: [n, c, h, w]`, `w: [o, c, 3, 3]`, `y: [n, o, oh, ow]`. The output is
//! cut into m x m tiles, `th = ceil(oh / m)` by `tw = ceil(ow / m)` per
//! sample and `T = n * th * tw` in all, each computed from an α x α patch of
//! the (zero-padded) input:
//! - `U[ξ] = (G g Gᵀ)[ξ]: [α²][o, c]`, the weights' transform, computed and
//!   packed as the GEMM's A operand once per call ([`forward`]), or once per
//!   weight and passed in ([`transform_weights`], [`forward_transformed`]);
//! - per chunk of [`TB`] tiles (one rayon task): `V[ξ] = (Bᵀ d B)[ξ]: [α²][c,
//!   TB]`, written straight in the GEMM's B panel layout, then `M[ξ] = U[ξ]
//!   V[ξ]: [α²][o, TB]`, then each tile's `Aᵀ M A: [m, m]` stored into `y`.
//!
//! Tiles reaching past the output (and, in the last chunk, past the batch)
//! are computed on zeros and not stored. F(4x4)'s transforms' constants (4,
//! 5, 1/6, 1/24, 8) cost accuracy against a direct product, F(2x2)'s (1,
//! 1/2) little: the tests measure the error against a float64 convolution on
//! the ResNets' layer shapes.
//!
//! Use [`choose`] first: [`forward`] requires AVX512F.

pub use super::epilogue::Epilogue;
use super::fill::{assume_init_vec, uninit_vec};
use super::gemm_avx512::{self, PackedA, PANEL_COLUMNS};
use super::spare::Spare;
use crate::backend::Conv2dGeometry;
use rayon::prelude::*;

/// Tiles per chunk: the GEMM's one B panel.
const TB: usize = PANEL_COLUMNS;
/// Tiles per vector: one lane each.
const LANES: usize = 16;

const _: () = assert!(TB.is_multiple_of(LANES));

/// Which Winograd algorithm: the side of its output tiles.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tile {
    /// F(2x2, 3x3): 4x4 input patches, 16 products.
    F2,
    /// F(4x4, 3x3): 6x6 input patches, 36 products.
    F4,
}

impl Tile {
    /// The side of an output tile.
    fn side(self) -> usize {
        match self {
            Tile::F2 => 2,
            Tile::F4 => 4,
        }
    }

    /// Points of a transformed patch: the number of products.
    fn points(self) -> usize {
        (self.side() + 2).pow(2)
    }
}

/// The algorithm [`forward`] computes this convolution with, where one
/// applies and pays: [`supports`] holds, with at least 16 input and output
/// channels (below that the transforms cost more than the products they
/// save), and at least 16 output tiles per sample (on fewer, most of a chunk
/// of 32 tiles would be padding). F(4x4) where it gives 16 tiles (planes of
/// 13x13 outputs or so), else F(2x2) where it does (7x7 to 12x12).
///
/// It depends on one sample's shape only, not on the batch size: a batch
/// split across data-parallel ranks computes each sample as one process
/// does, with the same rounding.
pub fn choose(g: &Conv2dGeometry) -> Option<Tile> {
    if !(supports(g) && g.c_in >= 16 && g.c_out >= 16) {
        return None;
    }
    let tiles = |t: Tile| g.oh.div_ceil(t.side()) * g.ow.div_ceil(t.side());
    [Tile::F4, Tile::F2]
        .into_iter()
        .find(|&t| tiles(t) >= TB / 2)
}

/// Whether [`forward`] can compute this convolution: 3x3, stride 1,
/// undilated, ungrouped, tensors whose offsets fit in i32 (the gathers'
/// indices), on a CPU with AVX512F.
fn supports(g: &Conv2dGeometry) -> bool {
    let fits_i32 = |len: usize| len <= i32::MAX as usize;
    g.kh == 3
        && g.kw == 3
        && g.p.stride == (1, 1)
        && g.p.dilation == (1, 1)
        && g.p.groups == 1
        && fits_i32(g.n * g.c_in * g.h * g.w)
        && fits_i32(g.n * g.c_out * g.oh * g.ow)
        && gemm_avx512::available()
}

/// The forward convolution `y = epi(conv(x, w))` on tiles of `tile`.
///
/// # Panics
/// Where [`supports`] does not hold ([`choose`] implies it), or an operand
/// is shorter than its shape.
pub fn forward(
    x: &[f32],
    w: &[f32],
    g: &Conv2dGeometry,
    tile: Tile,
    epi: Epilogue<'_>,
) -> Vec<f32> {
    forward_transformed(x, &transform_weights(w, g, tile), g, tile, epi)
}

/// The weights of a convolution [`forward`] computes on tiles of `tile`,
/// transformed and packed for its products: what [`forward_transformed`]
/// takes, made once for weights that convolve many inputs.
///
/// # Panics
/// Where [`supports`] does not hold, or `w` is shorter than its shape.
pub fn transform_weights(w: &[f32], g: &Conv2dGeometry, tile: Tile) -> Vec<PackedA> {
    assert!(
        supports(g),
        "winograd::transform_weights: convolution not supported"
    );
    let (c, o) = (g.c_in, g.c_out);
    assert!(
        w.len() >= o * c * 9,
        "winograd::transform_weights: weights too small"
    );
    match tile {
        Tile::F2 => weight_transform::<4, 2, F2>(w, o, c),
        Tile::F4 => weight_transform::<6, 4, F4>(w, o, c),
    }
}

/// [`forward`] with the weights already transformed ([`transform_weights`]
/// of this geometry's weights and the same `tile`).
///
/// # Panics
/// As [`forward`], or when `u` is not `tile`'s number of operands of `c_out
/// x c_in`.
pub fn forward_transformed(
    x: &[f32],
    u: &[PackedA],
    g: &Conv2dGeometry,
    tile: Tile,
    epi: Epilogue<'_>,
) -> Vec<f32> {
    assert!(supports(g), "winograd::forward: convolution not supported");
    let (c, o) = (g.c_in, g.c_out);
    let y_len = g.n * o * g.oh * g.ow;
    assert!(
        x.len() >= g.n * c * g.h * g.w
            && u.len() == tile.points()
            && u.iter().all(|u| u.shape() == (o, c))
            && epi.bias.is_none_or(|b| b.len() >= o)
            && epi.residual.is_none_or(|r| r.len() >= y_len),
        "winograd::forward: operand too small"
    );
    match tile {
        Tile::F2 => run::<4, 2, F2>(x, u, g, epi),
        Tile::F4 => run::<6, 4, F4>(x, u, g, epi),
    }
}

/// [`forward_transformed`] of the algorithm `K`: `A x A` patches, `M x M`
/// tiles, its operands checked.
fn run<const A: usize, const M: usize, K: Transforms<A, M>>(
    x: &[f32],
    u: &[PackedA],
    g: &Conv2dGeometry,
    epi: Epilogue<'_>,
) -> Vec<f32> {
    let (c, o, points) = (g.c_in, g.c_out, A * A);
    let tiles = Tiles::new(g, M);
    let mut y = uninit_vec::<f32>(g.n * o * g.oh * g.ow);
    // The address as an integer so that tasks can share it.
    let py = y.as_mut_ptr() as usize;
    let chunks = tiles.total.div_ceil(TB);
    // Fewer chunks than threads (a small batch of small planes): the
    // products of each chunk run in parallel instead.
    let products_in_parallel = chunks < rayon::current_num_threads();
    let run_chunk = |chunk: usize| {
        let (mut v, mut m) = (f32::take(points * c * TB), f32::take(points * o * TB));
        let t0 = chunk * TB;
        // A last chunk of at most 16 tiles (at batch 1, a sample of 13x13
        // to 16x16 outputs on F(4x4), of 7x7 or 8x8 on F(2x2)) multiplies
        // half a panel; any other, the whole panel, so that every lane the
        // output transform reads is written.
        let cols = if tiles.total - t0 <= LANES { LANES } else { TB };
        // SAFETY: AVX512F holds (supports); x, y and the epilogue's
        // operands hold the geometry's elements (asserted by the caller,
        // allocated above); the chunks' tiles are disjoint, so are the
        // output elements their tasks store.
        unsafe { input_transform::<A, M, K>(x, &tiles, t0, &mut v) };
        let product = |(xi, m): (usize, &mut [f32])| {
            gemm_avx512::gemm_panel(&u[xi], &v[xi * c * TB..][..c * TB], m, TB, cols)
        };
        if products_in_parallel {
            m.par_chunks_mut(o * TB).enumerate().for_each(product);
        } else {
            m.chunks_mut(o * TB).enumerate().for_each(product);
        }
        unsafe { output_transform::<A, M, K>(&m, &tiles, t0, epi, py as *mut f32) };
        f32::give(v);
        f32::give(m);
    };
    if products_in_parallel {
        (0..chunks).for_each(run_chunk);
    } else {
        (0..chunks).into_par_iter().for_each(run_chunk);
    }
    // SAFETY: the tiles cover every output element of every sample and
    // channel, and each stored its valid ones.
    unsafe { assume_init_vec(y) }
}

/// Where the tiles lie: sizes of the convolution and its tiling.
struct Tiles {
    c: usize,
    o: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    /// The side of a tile.
    m: usize,
    th: usize,
    tw: usize,
    pad_top: usize,
    pad_left: usize,
    total: usize,
}

impl Tiles {
    fn new(g: &Conv2dGeometry, m: usize) -> Self {
        let (th, tw) = (g.oh.div_ceil(m), g.ow.div_ceil(m));
        Tiles {
            c: g.c_in,
            o: g.c_out,
            h: g.h,
            w: g.w,
            oh: g.oh,
            ow: g.ow,
            m,
            th,
            tw,
            pad_top: g.p.padding[0],
            pad_left: g.p.padding[2],
            total: g.n * th * tw,
        }
    }

    /// Tile `t`'s sample and first output row and column.
    fn place(&self, t: usize) -> (usize, usize, usize) {
        let per_sample = self.th * self.tw;
        let r = t % per_sample;
        (t / per_sample, r / self.tw * self.m, r % self.tw * self.m)
    }
}

/// `U[ξ] = (G g Gᵀ)[ξ]` for every output and input channel pair, packed as
/// `A²` GEMM operands `[o, c]`.
fn weight_transform<const A: usize, const M: usize, K: Transforms<A, M>>(
    w: &[f32],
    o: usize,
    c: usize,
) -> Vec<PackedA> {
    // u: [A²][o, c], written in full below, one output channel per task.
    let plane = o * c;
    let mut u = uninit_vec::<f32>(A * A * plane);
    let pu = u.as_mut_ptr() as usize;
    (0..o).into_par_iter().for_each(|oc| {
        // SAFETY: AVX512F holds (supports); w holds o * c * 9 values
        // (asserted by the caller); this task writes output channel oc of
        // each of u's planes, and no other task does.
        unsafe { weight_transform_row::<A, M, K>(w, oc, c, plane, pu as *mut f32) }
    });
    // SAFETY: the tasks wrote (ξ, oc, ic) for every ξ, oc and ic.
    let u = unsafe { assume_init_vec(u) };
    (0..A * A)
        .into_par_iter()
        .map(|xi| PackedA::new(o, c, &u[xi * plane..][..plane]))
        .collect()
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// One algorithm's transforms, on one line of 16 lanes at a time (kernels
/// or tiles): `A` points per patch line, `M` per tile line.
#[cfg(target_arch = "x86_64")]
trait Transforms<const A: usize, const M: usize> {
    /// `G`'s rows applied to one line `(g0, g1, g2)` of the kernels.
    ///
    /// # Safety
    /// AVX512F is available.
    unsafe fn g(g0: __m512, g1: __m512, g2: __m512) -> [__m512; A];
    /// `Bᵀ d` for one line `d` of the input patches.
    ///
    /// # Safety
    /// AVX512F is available.
    unsafe fn bt(d: [__m512; A]) -> [__m512; A];
    /// `Aᵀ m` for one line `m` of the products: the tile line's points.
    ///
    /// # Safety
    /// AVX512F is available.
    unsafe fn at(m: [__m512; A]) -> [__m512; M];
}

#[cfg(not(target_arch = "x86_64"))]
trait Transforms<const A: usize, const M: usize> {}

/// F(2x2, 3x3)'s transforms.
struct F2;
/// F(4x4, 3x3)'s transforms.
struct F4;

#[cfg(not(target_arch = "x86_64"))]
impl Transforms<4, 2> for F2 {}
#[cfg(not(target_arch = "x86_64"))]
impl Transforms<6, 4> for F4 {}

#[cfg(target_arch = "x86_64")]
impl Transforms<4, 2> for F2 {
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn g(g0: __m512, g1: __m512, g2: __m512) -> [__m512; 4] {
        let half = _mm512_set1_ps(0.5);
        let even = _mm512_add_ps(g0, g2);
        [
            g0,
            _mm512_mul_ps(_mm512_add_ps(even, g1), half),
            _mm512_mul_ps(_mm512_sub_ps(even, g1), half),
            g2,
        ]
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn bt(d: [__m512; 4]) -> [__m512; 4] {
        [
            _mm512_sub_ps(d[0], d[2]),
            _mm512_add_ps(d[1], d[2]),
            _mm512_sub_ps(d[2], d[1]),
            _mm512_sub_ps(d[1], d[3]),
        ]
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn at(m: [__m512; 4]) -> [__m512; 2] {
        [
            _mm512_add_ps(_mm512_add_ps(m[0], m[1]), m[2]),
            _mm512_sub_ps(_mm512_sub_ps(m[1], m[2]), m[3]),
        ]
    }
}

#[cfg(target_arch = "x86_64")]
impl Transforms<6, 4> for F4 {
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn g(g0: __m512, g1: __m512, g2: __m512) -> [__m512; 6] {
        let s = _mm512_set1_ps;
        let even = _mm512_add_ps(g0, g2);
        let g2_6 = _mm512_mul_ps(g2, s(1.0 / 6.0));
        [
            _mm512_mul_ps(g0, s(0.25)),
            _mm512_mul_ps(_mm512_add_ps(even, g1), s(-1.0 / 6.0)),
            _mm512_mul_ps(_mm512_sub_ps(even, g1), s(-1.0 / 6.0)),
            _mm512_fmadd_ps(g0, s(1.0 / 24.0), _mm512_fmadd_ps(g1, s(1.0 / 12.0), g2_6)),
            _mm512_fmadd_ps(g0, s(1.0 / 24.0), _mm512_fnmadd_ps(g1, s(1.0 / 12.0), g2_6)),
            g2,
        ]
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn bt(d: [__m512; 6]) -> [__m512; 6] {
        let (two, four, five) = (
            _mm512_set1_ps(2.0),
            _mm512_set1_ps(4.0),
            _mm512_set1_ps(5.0),
        );
        let d12 = _mm512_add_ps(d[1], d[2]);
        let d34 = _mm512_add_ps(d[3], d[4]);
        let e12 = _mm512_sub_ps(d[1], d[2]);
        let e43 = _mm512_sub_ps(d[4], d[3]);
        let d42 = _mm512_sub_ps(d[4], d[2]);
        let d31 = _mm512_sub_ps(d[3], d[1]);
        [
            _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4])),
            _mm512_fnmadd_ps(four, d12, d34),
            _mm512_fmadd_ps(four, e12, e43),
            _mm512_fmadd_ps(two, d31, d42),
            _mm512_fnmadd_ps(two, d31, d42),
            _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5])),
        ]
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn at(m: [__m512; 6]) -> [__m512; 4] {
        let (two, four, eight) = (
            _mm512_set1_ps(2.0),
            _mm512_set1_ps(4.0),
            _mm512_set1_ps(8.0),
        );
        let a = _mm512_add_ps(m[1], m[2]);
        let b = _mm512_sub_ps(m[1], m[2]);
        let c = _mm512_add_ps(m[3], m[4]);
        let d = _mm512_sub_ps(m[3], m[4]);
        [
            _mm512_add_ps(_mm512_add_ps(m[0], a), c),
            _mm512_fmadd_ps(two, d, b),
            _mm512_fmadd_ps(four, c, a),
            _mm512_add_ps(_mm512_fmadd_ps(eight, d, b), m[5]),
        ]
    }
}

/// Output channel `oc`'s row of the planes `u: [A²][o, c]` (`plane = o * c`
/// apart), 16 input channels at a time.
///
/// # Safety
/// AVX512F is available; `w` holds `[o, c, 3, 3]`; `u` points to `A² *
/// plane` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn weight_transform_row<const A: usize, const M: usize, K: Transforms<A, M>>(
    w: &[f32],
    oc: usize,
    c: usize,
    plane: usize,
    u: *mut f32,
) {
    let row = &w[oc * c * 9..][..c * 9];
    let nine = _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32(9),
    );
    for c0 in (0..c).step_by(LANES) {
        let lanes = LANES.min(c - c0);
        let mask = ((1u32 << lanes) - 1) as __mmask16;
        // taps[k]: tap k of the 16 kernels, each 9 values apart.
        let taps: [__m512; 9] = std::array::from_fn(|k| {
            let idx = _mm512_add_epi32(nine, _mm512_set1_epi32((c0 * 9 + k) as i32));
            // SAFETY: the masked lanes read kernels c0 .. c0 + lanes of row.
            unsafe {
                _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, idx, row.as_ptr().cast())
            }
        });
        // G g: one column of g at a time, then G along each of its A rows.
        // SAFETY (every K call here): AVX512F holds.
        let cols: [[__m512; A]; 3] =
            std::array::from_fn(|j| unsafe { K::g(taps[j], taps[3 + j], taps[6 + j]) });
        #[allow(clippy::needless_range_loop)] // point i of every column
        for i in 0..A {
            for (j, v) in unsafe { K::g(cols[0][i], cols[1][i], cols[2][i]) }
                .into_iter()
                .enumerate()
            {
                // SAFETY: (i*A+j, oc, c0 .. c0 + lanes) lies in u.
                unsafe { _mm512_mask_storeu_ps(u.add((i * A + j) * plane + oc * c + c0), mask, v) };
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn weight_transform_row<const A: usize, const M: usize, K: Transforms<A, M>>(
    _: &[f32],
    _: usize,
    _: usize,
    _: usize,
    _: *mut f32,
) {
    unreachable!("winograd runs only where choose() gives an algorithm")
}

/// Per lane of 16 tiles: the offset of the patch's (or output tile's) first
/// element in its sample, and for each of its `R` rows and columns which
/// lanes lie inside the image (bit per lane; none for tiles past the batch).
#[cfg(target_arch = "x86_64")]
struct LaneTiles<const R: usize> {
    offset: [i32; LANES],
    rows: [u16; R],
    cols: [u16; R],
}

/// Lanes `t0 .. t0 + 16` of the tiles: their input patches' (`input`, `R`
/// the patch's side, from `-pad`) or output tiles' (`R` the tile's side)
/// rows and columns.
#[cfg(target_arch = "x86_64")]
fn lane_tiles<const R: usize>(tiles: &Tiles, t0: usize, input: bool) -> LaneTiles<R> {
    let (h, w) = if input {
        (tiles.h, tiles.w)
    } else {
        (tiles.oh, tiles.ow)
    };
    let sample = if input { tiles.c } else { tiles.o } * h * w;
    let mut lt = LaneTiles {
        offset: [0; LANES],
        rows: [0; R],
        cols: [0; R],
    };
    for l in 0..LANES {
        let t = t0 + l;
        if t >= tiles.total {
            continue;
        }
        let (n, r0, c0) = tiles.place(t);
        let (r0, c0) = if input {
            (
                r0 as isize - tiles.pad_top as isize,
                c0 as isize - tiles.pad_left as isize,
            )
        } else {
            (r0 as isize, c0 as isize)
        };
        // Within i32: supports() bounds the tensors' lengths.
        lt.offset[l] = (n * sample) as i32 + (r0 * w as isize + c0) as i32;
        for i in 0..R {
            let (r, c) = (r0 + i as isize, c0 + i as isize);
            lt.rows[i] |= u16::from(r >= 0 && r < h as isize) << l;
            lt.cols[i] |= u16::from(c >= 0 && c < w as isize) << l;
        }
    }
    lt
}

/// `V[ξ] = (Bᵀ d B)[ξ]` of tiles `t0 .. t0 + TB`, for every input channel:
/// `v: [A²][c][TB]`, each `[c][TB]` one B panel of the GEMM.
///
/// # Safety
/// AVX512F is available; `x` holds the geometry's `[n, c, h, w]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn input_transform<const A: usize, const M: usize, K: Transforms<A, M>>(
    x: &[f32],
    tiles: &Tiles,
    t0: usize,
    v: &mut [f32],
) {
    let c = tiles.c;
    assert!(v.len() >= A * A * c * TB);
    let plane = (tiles.h * tiles.w) as i32;
    // A lane group past the last tile is neither multiplied (the chunk's
    // products then take the first 16 lanes) nor read back.
    for lane0 in (0..TB).step_by(LANES).take_while(|l| t0 + l < tiles.total) {
        let lt = lane_tiles::<A>(tiles, t0 + lane0, true);
        // SAFETY: offset is 16 i32 values.
        let base = unsafe { _mm512_loadu_si512(lt.offset.as_ptr().cast()) };
        let masks: [[__mmask16; A]; A] =
            std::array::from_fn(|a| std::array::from_fn(|b| lt.rows[a] & lt.cols[b]));
        let w = tiles.w as i32;
        for ic in 0..c {
            let at = _mm512_add_epi32(base, _mm512_set1_epi32(ic as i32 * plane));
            // d[a][b]: point (a, b) of the 16 patches, zero outside the image.
            let d: [[__m512; A]; A] = std::array::from_fn(|a| {
                std::array::from_fn(|b| {
                    let idx = _mm512_add_epi32(at, _mm512_set1_epi32(a as i32 * w + b as i32));
                    // SAFETY: the masked lanes' offsets lie in x (they are
                    // inside the image of their tile's sample).
                    unsafe {
                        _mm512_mask_i32gather_ps::<4>(
                            _mm512_setzero_ps(),
                            masks[a][b],
                            idx,
                            x.as_ptr().cast(),
                        )
                    }
                })
            });
            // Bᵀ d: down each column, then B along each row.
            // SAFETY (both K calls): AVX512F holds.
            let cols: [[__m512; A]; A] =
                std::array::from_fn(|b| unsafe { K::bt(std::array::from_fn(|a| d[a][b])) });
            for i in 0..A {
                let row = unsafe { K::bt(std::array::from_fn(|b| cols[b][i])) };
                for (j, val) in row.into_iter().enumerate() {
                    let dst = &mut v[((i * A + j) * c + ic) * TB + lane0..][..LANES];
                    // SAFETY: dst holds 16 values.
                    unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), val) };
                }
            }
        }
    }
}

/// `y` tile = `epi(Aᵀ M A)` for tiles `t0 .. t0 + TB` and every output
/// channel, `m: [A²][o][TB]`; stores the tiles' elements inside the output.
///
/// # Safety
/// AVX512F is available; `y` points to the geometry's `[n, o, oh, ow]`, and
/// the epilogue's operands hold `[o]` and that shape; no other thread writes
/// these tiles.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn output_transform<const A: usize, const M: usize, K: Transforms<A, M>>(
    m: &[f32],
    tiles: &Tiles,
    t0: usize,
    epi: Epilogue<'_>,
    y: *mut f32,
) {
    let o = tiles.o;
    assert!(m.len() >= A * A * o * TB);
    let plane = (tiles.oh * tiles.ow) as i32;
    let ow = tiles.ow as i32;
    for lane0 in (0..TB).step_by(LANES) {
        let lt = lane_tiles::<M>(tiles, t0 + lane0, false);
        if lt.rows[0] == 0 {
            continue; // every lane past the batch
        }
        // SAFETY: offset is 16 i32 values.
        let base = unsafe { _mm512_loadu_si512(lt.offset.as_ptr().cast()) };
        for oc in 0..o {
            // SAFETY: each load reads 16 of m's values (asserted length).
            let p: [[__m512; A]; A] = std::array::from_fn(|i| {
                std::array::from_fn(|j| unsafe {
                    _mm512_loadu_ps(m.as_ptr().add(((i * A + j) * o + oc) * TB + lane0))
                })
            });
            // Aᵀ M: down each column, then A along each of the M rows.
            // SAFETY (both K calls): AVX512F holds.
            let cols: [[__m512; M]; A] =
                std::array::from_fn(|j| unsafe { K::at(std::array::from_fn(|i| p[i][j])) });
            let at = _mm512_add_epi32(base, _mm512_set1_epi32(oc as i32 * plane));
            let bias = _mm512_set1_ps(epi.bias.map_or(0.0, |b| b[oc]));
            #[allow(clippy::needless_range_loop)] // row r of every column
            for r in 0..M {
                let row = unsafe { K::at(std::array::from_fn(|j| cols[j][r])) };
                for (cc, val) in row.into_iter().enumerate() {
                    let idx = _mm512_add_epi32(at, _mm512_set1_epi32(r as i32 * ow + cc as i32));
                    let mask = lt.rows[r] & lt.cols[cc];
                    let mut val = _mm512_add_ps(val, bias);
                    if let Some(res) = epi.residual {
                        // SAFETY: as for the store below: the residual has
                        // the output's shape.
                        val = _mm512_add_ps(val, unsafe {
                            _mm512_mask_i32gather_ps::<4>(
                                _mm512_setzero_ps(),
                                mask,
                                idx,
                                res.as_ptr().cast(),
                            )
                        });
                    }
                    if epi.relu {
                        // max returns its second operand when one is NaN:
                        // NaN passes, as through the ReLU op.
                        val = _mm512_max_ps(_mm512_setzero_ps(), val);
                    }
                    // SAFETY: the masked lanes' offsets lie in y (inside
                    // their tile's sample and channel plane).
                    unsafe { _mm512_mask_i32scatter_ps::<4>(y.cast(), mask, idx, val) };
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn input_transform<const A: usize, const M: usize, K: Transforms<A, M>>(
    _: &[f32],
    _: &Tiles,
    _: usize,
    _: &mut [f32],
) {
    unreachable!("winograd runs only where choose() gives an algorithm")
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn output_transform<const A: usize, const M: usize, K: Transforms<A, M>>(
    _: &[f32],
    _: &Tiles,
    _: usize,
    _: Epilogue<'_>,
    _: *mut f32,
) {
    unreachable!("winograd runs only where choose() gives an algorithm")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Conv2dParams;

    /// Deterministic values in [-1, 1).
    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(7);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 8192) as f32 / 4096.0 - 1.0
            })
            .collect()
    }

    fn geometry(
        n: usize,
        c: usize,
        o: usize,
        (h, w): (usize, usize),
        pad: [usize; 4],
    ) -> Conv2dGeometry {
        Conv2dGeometry {
            n,
            c_in: c,
            h,
            w,
            c_out: o,
            kh: 3,
            kw: 3,
            oh: h + pad[0] + pad[1] - 2,
            ow: w + pad[2] + pad[3] - 2,
            p: Conv2dParams {
                padding: pad,
                ..Conv2dParams::default()
            },
        }
    }

    /// The convolution in float64, straight from its definition.
    fn reference(x: &[f32], w: &[f32], g: &Conv2dGeometry) -> Vec<f64> {
        let (pt, pl) = (g.p.padding[0] as isize, g.p.padding[2] as isize);
        let mut y = vec![0.0f64; g.n * g.c_out * g.oh * g.ow];
        for n in 0..g.n {
            for o in 0..g.c_out {
                let out = &mut y[(n * g.c_out + o) * g.oh * g.ow..][..g.oh * g.ow];
                for c in 0..g.c_in {
                    let plane = &x[(n * g.c_in + c) * g.h * g.w..][..g.h * g.w];
                    let k = &w[(o * g.c_in + c) * 9..][..9];
                    for (tap, &kv) in k.iter().enumerate() {
                        let (dr, dc) = ((tap / 3) as isize - pt, (tap % 3) as isize - pl);
                        for r in 0..g.oh {
                            let ir = r as isize + dr;
                            if ir < 0 || ir >= g.h as isize {
                                continue;
                            }
                            for col in 0..g.ow {
                                let ic = col as isize + dc;
                                if ic >= 0 && ic < g.w as isize {
                                    out[r * g.ow + col] +=
                                        kv as f64 * plane[ir as usize * g.w + ic as usize] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        y
    }

    /// The largest error of `got` against `want`, relative to `want`'s largest magnitude.
    fn relative_error(got: &[f32], want: &[f64]) -> f64 {
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(want)
            .fold(0.0f64, |m, (&g, &w)| m.max((g as f64 - w).abs()));
        err / scale
    }

    /// Every element of odd shapes (planes that are no multiple of the
    /// tile, a partial last chunk of more or at most 16 tiles, output
    /// channels that are no multiple of the GEMM's 12 rows, asymmetric and
    /// no padding) matches the float64 convolution, on either tile.
    #[test]
    fn matches_a_float64_convolution_on_odd_shapes() {
        if !crate::test_skip::run_or_skip(
            "AVX512F",
            gemm_avx512::available(),
            gemm_avx512::available(),
        ) {
            return;
        }
        for (i, g) in [
            geometry(2, 16, 20, (13, 11), [1; 4]),
            geometry(1, 24, 13, (10, 9), [0; 4]),
            geometry(3, 5, 7, (6, 17), [0, 2, 1, 0]),
            geometry(2, 40, 33, (3, 3), [2; 4]),
            // A last chunk of exactly 16 tiles (half a panel) of 4x4.
            geometry(3, 16, 12, (13, 13), [1; 4]),
            // 16 tiles of 2x2 per sample, 4x4 of 7x7 outputs.
            geometry(3, 16, 12, (7, 7), [1; 4]),
        ]
        .iter()
        .enumerate()
        {
            let x = values(g.n * g.c_in * g.h * g.w, 1 + i as u32);
            let w = values(g.c_out * g.c_in * 9, 11 + i as u32);
            let want = reference(&x, &w, g);
            for tile in [Tile::F2, Tile::F4] {
                let got = forward(&x, &w, g, tile, Epilogue::default());
                assert_eq!(got.len(), want.len());
                let err = relative_error(&got, &want);
                assert!(err < 1e-5, "shape {i}, {tile:?}: relative error {err:e}");
            }
        }
    }

    /// The epilogue (bias, residual, ReLU) applied as the tiles are stored
    /// matches the same steps on the float64 convolution, on a shape whose
    /// tiles reach past the output.
    #[test]
    fn stores_bias_residual_and_relu_with_the_tiles() {
        if !crate::test_skip::run_or_skip(
            "AVX512F",
            gemm_avx512::available(),
            gemm_avx512::available(),
        ) {
            return;
        }
        let g = geometry(2, 16, 20, (13, 11), [1; 4]);
        let x = values(g.n * g.c_in * g.h * g.w, 21);
        let w = values(g.c_out * g.c_in * 9, 22);
        let bias = values(g.c_out, 23);
        let residual = values(g.n * g.c_out * g.oh * g.ow, 24);
        let conv = reference(&x, &w, &g);
        let plane = g.oh * g.ow;
        for (b, r, relu) in [
            (true, false, false),
            (false, true, false),
            (true, true, true),
        ] {
            let epi = Epilogue {
                bias: b.then_some(&bias[..]),
                residual: r.then_some(&residual[..]),
                relu,
            };
            let want: Vec<f64> = conv
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let z =
                        v + if b {
                            bias[i / plane % g.c_out] as f64
                        } else {
                            0.0
                        } + if r { residual[i] as f64 } else { 0.0 };
                    if relu {
                        z.max(0.0)
                    } else {
                        z
                    }
                })
                .collect();
            for tile in [Tile::F2, Tile::F4] {
                let got = forward(&x, &w, &g, tile, epi);
                let err = relative_error(&got, &want);
                assert!(
                    err < 1e-5,
                    "{tile:?}, bias {b} residual {r} relu {relu}: relative error {err:e}"
                );
                if relu {
                    assert!(got.iter().all(|&v| v >= 0.0), "ReLU clamps");
                }
            }
        }
    }

    /// A NaN in the input reaches every output it touches, through the
    /// fused ReLU too (a max that returned its other operand would hide it).
    #[test]
    fn nan_inputs_stay_nan_through_the_fused_relu() {
        if !crate::test_skip::run_or_skip(
            "AVX512F",
            gemm_avx512::available(),
            gemm_avx512::available(),
        ) {
            return;
        }
        let g = geometry(1, 16, 16, (13, 11), [1; 4]);
        let x = vec![f32::NAN; g.n * g.c_in * g.h * g.w];
        let w = values(g.c_out * g.c_in * 9, 41);
        let epi = Epilogue {
            relu: true,
            ..Epilogue::default()
        };
        for tile in [Tile::F2, Tile::F4] {
            let y = forward(&x, &w, &g, tile, epi);
            assert!(
                y.iter().all(|v| v.is_nan()),
                "{tile:?}: every output is NaN"
            );
        }
    }

    /// The CPU backend's input gradient of a 3x3 stride-1 convolution (here
    /// with asymmetric padding) runs as a Winograd forward convolution of
    /// `dy` with the turned kernels, and matches the im2col path's.
    #[test]
    fn input_gradient_through_the_turned_kernels_matches_col2im() {
        if !crate::test_skip::run_or_skip(
            "AVX512F",
            gemm_avx512::available(),
            gemm_avx512::available(),
        ) {
            return;
        }
        for (side, tile) in [((31, 32), Tile::F4), ((8, 9), Tile::F2)] {
            let g = geometry(4, 16, 24, side, [1, 0, 2, 1]);
            let turned = geometry(4, 24, 16, (g.oh, g.ow), [1, 2, 0, 1]);
            assert_eq!(choose(&turned), Some(tile), "the test's shape's algorithm");
            let dy = values(g.n * g.c_out * g.oh * g.ow, 31);
            let w = values(g.c_out * g.c_in * 9, 32);
            let got = super::super::conv_backward_input_f32(&dy, &w, &g);
            let want: Vec<f64> = super::super::conv::backward_input(&dy, &w, &g)
                .into_iter()
                .map(f64::from)
                .collect();
            let err = relative_error(&got, &want);
            assert!(err < 1e-5, "{tile:?}: relative error {err:e}");
        }
    }

    /// F(4x4) takes planes of 16 4x4 tiles or more, F(2x2) the smaller ones
    /// down to 16 2x2 tiles (7x7 outputs); below that, or on fewer than 16
    /// channels, or on shapes Winograd does not compute, neither does.
    #[test]
    fn chooses_4x4_tiles_on_large_planes_and_2x2_on_small_ones() {
        if !crate::test_skip::run_or_skip(
            "AVX512F",
            gemm_avx512::available(),
            gemm_avx512::available(),
        ) {
            return;
        }
        let same = |c: usize, side: usize| geometry(1, c, c, (side, side), [1; 4]);
        for (g, want) in [
            (same(64, 56), Some(Tile::F4)),
            (same(256, 14), Some(Tile::F4)),
            (same(256, 13), Some(Tile::F4)),
            (same(256, 12), Some(Tile::F2)),
            (same(512, 7), Some(Tile::F2)),
            (same(64, 8), Some(Tile::F2)),
            (same(512, 6), None),
            (same(8, 56), None),
        ] {
            assert_eq!(
                choose(&g),
                want,
                "{}x{} with {} channels",
                g.oh,
                g.ow,
                g.c_in
            );
        }
        let mut strided = same(64, 56);
        strided.p.stride = (2, 2);
        assert_eq!(choose(&strided), None, "stride 2");
    }

    /// On the 3x3 layer shapes of the ResNets (64 to 512 channels, planes of
    /// 56 down to 7), the error of the algorithm [`choose`] takes against
    /// float64 stays below 2e-5 of the largest output: a fifth of the zoo's
    /// parity bound of 1e-4 for one layer (measured 0.6-1.4e-5 here on
    /// F(4x4), 20-40x that of im2col + GEMM, which the test prints with
    /// F(2x2)'s; whole models stay near 1e-6, `full_size_parity`).
    #[test]
    fn error_on_resnet_layer_shapes_stays_below_2e_5() {
        if !crate::test_skip::run_or_skip(
            "AVX512F",
            gemm_avx512::available(),
            gemm_avx512::available(),
        ) {
            return;
        }
        for (c, side) in [(64, 56), (128, 28), (256, 14), (512, 7)] {
            let g = geometry(1, c, c, (side, side), [1; 4]);
            // He-scaled weights, as after training: outputs of unit scale.
            let scale = (2.0 / (9.0 * c as f32)).sqrt();
            let x: Vec<f32> = values(c * side * side, 3)
                .iter()
                .map(|v| v.max(0.0))
                .collect();
            let w: Vec<f32> = values(c * c * 9, 5).iter().map(|v| v * scale).collect();
            let want = reference(&x, &w, &g);
            let chosen = choose(&g).expect("Winograd takes every ResNet 3x3 shape");
            let error =
                |tile| relative_error(&forward(&x, &w, &g, tile, Epilogue::default()), &want);
            let (f2, f4) = (error(Tile::F2), error(Tile::F4));
            let gemm = relative_error(&super::super::conv::forward(&x, &w, &g), &want);
            println!(
                "c{c} {side}x{side}: F(2x2) {f2:.2e}, F(4x4) {f4:.2e}, im2col + gemm {gemm:.2e}"
            );
            let wino = if chosen == Tile::F2 { f2 } else { f4 };
            assert!(
                wino < 2e-5,
                "c{c} {side}x{side}: {chosen:?} {wino:e}, gemm {gemm:e}"
            );
        }
    }
}
