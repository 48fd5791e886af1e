//! Convolutions computed output row by output row, their B panels built in
//! L1 from the input: for those whose im2col matrix has at most one GEMM k
//! block of rows (`k = c_in * kh * kw <= 256`: the ResNets' and hybrids'
//! 7x7 stems on 3 channels; also a 3x3 on at most 28 channels that Winograd
//! does not take) and output rows of at least one panel, where
//! im2col + GEMM writes a `k x oh * ow` matrix per sample to memory (7.4 MB
//! for a stem at 224) only to read it back once.
//!
//! Shapes: `x: [n, c, h, w]`, the weights `[o, c, kh, kw]` packed as the
//! GEMM's A `[o, k]` (rows of `k` in `(c, kh, kw)` order, as im2col's),
//! `y: [n, o, oh, ow]`. The input is first split by column phase, `phases:
//! [n, c, sw, h, u]`: phase `q` holds the left-padded columns `q, q + sw, q +
//! 2 sw, ...`, so that the values tap `(i, j)` of output columns `c0 ..
//! c0 + len` reads lie in phase `j % sw` from `u = c0 + j / sw` on, one
//! contiguous run. Per output row, per segment of up to 32 columns: `b: [k,
//! 32]`, one GEMM panel, each of its rows one such run (zeros where the
//! tap's input row lies in the padding), then `y[:, row, segment] = epi(A
//! b)` straight into the output.
//!
//! The products are im2col + GEMM's, in the same order: the output has
//! their bits.

use super::epilogue::Epilogue;
use super::fill::{assume_init_vec, uninit_vec};
use super::gemm_avx512::{self, PackedA, PANEL_COLUMNS};
use super::spare::Spare;
use crate::backend::Conv2dGeometry;
use rayon::prelude::*;

/// Columns of one B panel.
const NR: usize = PANEL_COLUMNS;
/// The most rows of B (values of k) a panel takes: one k block of the GEMM.
const MAX_K: usize = 256;

/// Whether [`forward`] computes this convolution, and pays: at least one
/// input and output channel and input pixel, ungrouped,
/// undilated, a spatial kernel (1x1 convolutions read their input as B
/// where it lies, or as a strided copy of it), `k <= 256`, output rows of
/// at least 32 columns (one whole panel: on narrower rows, as a stem's at
/// 32x32, the tasks are too small to beat im2col + GEMM over chunks of
/// samples), on a CPU with AVX512F.
pub fn applies(g: &Conv2dGeometry) -> bool {
    // Empty shapes (no channels, an empty plane) go where they are handled.
    g.c_in > 0
        && g.c_out > 0
        && g.h * g.w > 0
        && g.p.groups == 1
        && g.p.dilation == (1, 1)
        && g.kh * g.kw > 1
        && g.c_in * g.kh * g.kw <= MAX_K
        && g.ow >= NR
        && gemm_avx512::available()
}

/// The forward convolution `y = epi(conv(x, w))`, `a` the weights packed as
/// `[o, k]` (`conv::pack_weights` of the ungrouped weights: the stored layout).
///
/// # Panics
/// Where [`applies`] does not hold, or an operand is not of its shape.
pub fn forward(x: &[f32], a: &PackedA, g: &Conv2dGeometry, epi: Epilogue<'_>) -> Vec<f32> {
    assert!(applies(g), "conv_rows::forward: convolution not supported");
    let (c, o, k) = (g.c_in, g.c_out, g.c_in * g.kh * g.kw);
    let plane = g.oh * g.ow;
    let y_len = g.n * o * plane;
    assert!(
        x.len() >= g.n * c * g.h * g.w
            && a.shape() == (o, k)
            && epi.bias.is_none_or(|b| b.len() >= o)
            && epi.residual.is_none_or(|r| r.len() >= y_len),
        "conv_rows::forward: operand of another shape"
    );
    let phases = Phases::new(x, g);
    let mut y = uninit_vec::<f32>(y_len);
    // The address as an integer so that tasks can share it.
    let py = y.as_mut_ptr() as usize;
    (0..g.n * g.oh).into_par_iter().for_each(|nr| {
        let (n, row) = (nr / g.oh, nr % g.oh);
        let mut b = f32::take(k * NR);
        let epi = epi.part(0, o, n * o * plane, o * plane);
        for c0 in (0..g.ow).step_by(NR) {
            let len = NR.min(g.ow - c0);
            phases.panel(n, row, (c0, len), &mut b);
            let col = row * g.ow + c0;
            // SAFETY: the tile (o rows of len columns from (n, 0, row, c0),
            // at the stride of a plane) lies in y; tasks write disjoint
            // rows, so disjoint tiles. The epilogue's operands hold o values
            // and this sample's planes (asserted, part).
            unsafe {
                let at = (py as *mut f32).add(n * o * plane + col);
                gemm_avx512::gemm_panel_at(a, &b, at, plane, len);
                epi.apply_tile_avx512(at, plane, (0, o), (col, len));
            }
        }
        f32::give(b);
    });
    phases.give();
    // SAFETY: the tasks wrote every column of every row of every plane.
    unsafe { assume_init_vec(y) }
}

/// The input split by column phase, left-padded: `[n, c, sw, h, u]`.
struct Phases<'g> {
    data: Vec<f32>,
    g: &'g Conv2dGeometry,
    /// Values per phase row.
    u: usize,
}

impl<'g> Phases<'g> {
    fn new(x: &[f32], g: &'g Conv2dGeometry) -> Self {
        let sw = g.p.stride.1;
        let pad_left = g.p.padding[2];
        let u = (pad_left + g.w + g.p.padding[3]).div_ceil(sw);
        // Every value is written below (zeros in the padding).
        let mut data = f32::take(g.n * g.c_in * sw * g.h * u);
        // One (sample, channel) plane of x per task: its sw phases.
        data.par_chunks_mut(sw * g.h * u)
            .zip(x.par_chunks(g.h * g.w))
            .for_each(|(out, plane)| {
                for (q, phase) in out.chunks_exact_mut(g.h * u).enumerate() {
                    for (dst, src) in phase.chunks_exact_mut(u).zip(plane.chunks_exact(g.w)) {
                        // dst[t] = padded column q + t * sw = x column
                        // q + t * sw - pad_left where that lies in x, else 0.
                        for (t, d) in dst.iter_mut().enumerate() {
                            let col = (q + t * sw).wrapping_sub(pad_left);
                            *d = if col < g.w { src[col] } else { 0.0 };
                        }
                    }
                }
            });
        Phases { data, g, u }
    }

    /// Gives the buffer back for the next call.
    fn give(self) {
        f32::give(self.data);
    }

    /// The B panel `b: [k, NR]` of output columns `c0 .. c0 + len` of output
    /// row `row` of sample `n` (columns past `len` zero).
    fn panel(&self, n: usize, row: usize, (c0, len): (usize, usize), b: &mut [f32]) {
        let g = self.g;
        let (sh, sw) = g.p.stride;
        let channel = sw * g.h * self.u;
        let mut lines = b.chunks_exact_mut(NR);
        for ic in 0..g.c_in {
            let phases = &self.data[(n * g.c_in + ic) * channel..][..channel];
            for i in 0..g.kh {
                // The input row of tap row i, if inside the image.
                let input_row = (row * sh + i)
                    .checked_sub(g.p.padding[0])
                    .filter(|&r| r < g.h);
                for j in 0..g.kw {
                    let line = lines.next().expect("b holds k lines");
                    let (run, rest) = line.split_at_mut(len);
                    match input_row {
                        Some(r) => {
                            let from = (j % sw * g.h + r) * self.u + c0 + j / sw;
                            run.copy_from_slice(&phases[from..][..len]);
                        }
                        None => run.fill(0.0),
                    }
                    rest.fill(0.0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Conv2dParams;
    use crate::cpu::conv;

    /// Values of a fixed pseudo-random sequence.
    fn values(len: usize, seed: u64) -> Vec<f32> {
        crate::rng::normal(seed, len, 0.0, 1.0)
    }

    fn geometry(
        (n, c, h, w): (usize, usize, usize, usize),
        (o, kh, kw): (usize, usize, usize),
        stride: (usize, usize),
        padding: [usize; 4],
    ) -> Conv2dGeometry {
        Conv2dGeometry {
            n,
            c_in: c,
            h,
            w,
            c_out: o,
            kh,
            kw,
            oh: (h + padding[0] + padding[1] - kh) / stride.0 + 1,
            ow: (w + padding[2] + padding[3] - kw) / stride.1 + 1,
            p: Conv2dParams {
                stride,
                padding,
                ..Conv2dParams::default()
            },
        }
    }

    /// On a stem (7x7, stride 2, padding 3), a stride-1 3x3 on 3 channels,
    /// a stride-2 3x3 on 16 channels with odd sizes and asymmetric padding,
    /// rows of 35 to 52 columns (a whole panel, then a partial one of 3 to
    /// 20 columns: half a panel or a whole one), with and without an
    /// epilogue, the output has the bits of im2col + GEMM with the same
    /// epilogue.
    #[test]
    fn gives_the_bits_of_im2col_and_gemm() {
        if !crate::test_skip::run_or_skip(
            "AVX512F",
            gemm_avx512::available(),
            gemm_avx512::available(),
        ) {
            return;
        }
        for (i, g) in [
            geometry((2, 3, 37, 90), (24, 7, 7), (2, 2), [3; 4]),
            geometry((1, 3, 20, 52), (13, 3, 3), (1, 1), [1; 4]),
            geometry((3, 16, 33, 70), (20, 3, 3), (2, 2), [0, 1, 1, 0]),
        ]
        .iter()
        .enumerate()
        {
            assert!(applies(g), "shape {i} runs by rows");
            let seed = 10 * i as u64;
            let x = values(g.n * g.c_in * g.h * g.w, seed + 1);
            let w = values(g.c_out * g.c_in * g.kh * g.kw, seed + 2);
            let bias = values(g.c_out, seed + 3);
            let residual = values(g.n * g.c_out * g.oh * g.ow, seed + 4);
            let a = PackedA::new(g.c_out, g.c_in * g.kh * g.kw, &w);
            for epi in [
                Epilogue::default(),
                Epilogue {
                    bias: Some(&bias),
                    residual: Some(&residual),
                    relu: true,
                },
            ] {
                let got = forward(&x, &a, g, epi);
                let want = conv::forward_fused(&x, conv::Weights::Stored(&w), g, &epi);
                assert_eq!(got.len(), want.len());
                let differ = got
                    .iter()
                    .zip(&want)
                    .filter(|(a, b)| a.to_bits() != b.to_bits())
                    .count();
                assert_eq!(differ, 0, "shape {i}: {differ} outputs differ in bits");
            }
        }
    }

    /// Rows narrower than a panel (a stem at 32x32), 1x1 kernels, groups,
    /// dilation, a `k` past one block and empty shapes (no input or output
    /// channels, an empty plane) go to im2col + GEMM.
    #[test]
    fn leaves_other_convolutions_to_im2col() {
        let stem = geometry((1, 3, 224, 224), (64, 7, 7), (2, 2), [3; 4]);
        if gemm_avx512::available() {
            assert!(applies(&stem));
        }
        let narrow = geometry((64, 3, 32, 32), (64, 7, 7), (2, 2), [3; 4]);
        let pointwise = geometry((1, 64, 56, 56), (64, 1, 1), (2, 2), [0; 4]);
        let deep = geometry((1, 64, 56, 56), (64, 3, 3), (2, 2), [1; 4]);
        let mut grouped = stem;
        grouped.p.groups = 3;
        let mut dilated = stem;
        dilated.p.dilation = (2, 2);
        let mut no_input_channels = stem;
        no_input_channels.c_in = 0;
        let mut no_outputs = stem;
        no_outputs.c_out = 0;
        let mut empty_plane = stem;
        empty_plane.h = 0;
        for g in [
            narrow,
            pointwise,
            deep,
            grouped,
            dilated,
            no_input_channels,
            no_outputs,
            empty_plane,
        ] {
            assert!(!applies(&g), "{g:?}");
        }
    }
}
