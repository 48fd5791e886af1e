//! Convolution kernels: im2col + one GEMM per chunk of samples and group.
//!
//! Shapes: `x: [n, c_in, h, w]`, `w: [c_out, c_in/g, kh, kw]`,
//! `y: [n, c_out, oh, ow]`. Per group, `K = c_in/g * kh * kw` and `P = oh * ow`.
//! Samples are processed in chunks of `nb` so that the GEMM's column count
//! `nb * P` stays large when the spatial size is small (the deep ResNet
//! stages); a 1x1 / stride 1 / unpadded convolution of one sample multiplies
//! the input directly, without im2col.

use super::epilogue::Epilogue;
use super::fill::{assume_init_vec, uninit_vec};
use super::gemm::{GemmElem, MatRef};
use super::gemm_avx512::PackedA;
use super::spare::Spare;
use super::wide::wide;
use crate::backend::Conv2dGeometry;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// GEMM columns to aim for per chunk: enough for the GEMM's panels to be efficient.
const TARGET_COLUMNS: usize = 4096;
/// Upper bound for one chunk's column buffer, in elements (128 MiB of f32).
const MAX_COLS_ELEMS: usize = 32 << 20;

/// Sizes shared by the three kernels.
#[derive(Clone, Copy)]
struct Dims {
    /// Input channels per group.
    cpg: usize,
    /// Output channels per group.
    opg: usize,
    /// GEMM inner size `cpg * kh * kw`.
    k: usize,
    /// Input plane `h * w`.
    x_plane: usize,
    /// Output plane `oh * ow`.
    p: usize,
    /// Samples per chunk.
    nb: usize,
}

fn dims(g: &Conv2dGeometry) -> Dims {
    let cpg = g.c_in / g.p.groups;
    let k = cpg * g.kh * g.kw;
    let p = g.oh * g.ow;
    let by_target = TARGET_COLUMNS.div_ceil(p.max(1));
    let by_memory = (MAX_COLS_ELEMS / (k * p).max(1)).max(1);
    // Large planes already make wide GEMMs: batching them only adds copies.
    let nb = if p >= TARGET_COLUMNS / 4 {
        1
    } else {
        by_target.min(by_memory).clamp(1, g.n.max(1))
    };
    Dims {
        cpg,
        opg: g.c_out / g.p.groups,
        k,
        x_plane: g.h * g.w,
        p,
        nb,
    }
}

/// Whether one sample's convolution is a plain matrix product over pixels.
fn is_pointwise(g: &Conv2dGeometry) -> bool {
    g.kh == 1 && g.kw == 1 && g.p.stride == (1, 1) && g.p.padding == [0; 4]
}

/// The output positions `o` in `0..out` whose input `o*stride + k*dil - pad`
/// lies inside `0..len`, as a half-open range.
#[inline]
fn valid_range(
    out: usize,
    k: usize,
    stride: usize,
    dil: usize,
    pad: usize,
    len: usize,
) -> (usize, usize) {
    let shift = (k * dil) as isize - pad as isize; // input = o*stride + shift
    let lo = if shift >= 0 {
        0
    } else {
        ((-shift) as usize).div_ceil(stride)
    };
    let hi = if (len as isize) <= shift {
        0
    } else {
        ((len as isize - shift) as usize).div_ceil(stride)
    };
    (lo.min(out), hi.min(out).max(lo.min(out)))
}

/// im2col of samples `n0 .. n0 + nb` of group `grp` into `cols: [K, nb * P]`:
/// row `(c, ki, kj)`, column `s * P + oy * ow + ox`.
fn im2col<T: GemmElem>(
    x: &[T],
    g: &Conv2dGeometry,
    d: Dims,
    n0: usize,
    nb: usize,
    grp: usize,
    cols: &mut [T],
) {
    let zero = T::default();
    let (oh, ow, p) = (g.oh, g.ow, &g.p);
    let ld = nb * d.p;
    cols[..d.k * ld]
        .par_chunks_mut(ld)
        .enumerate()
        .for_each(|(row, out)| {
            let c = row / (g.kh * g.kw);
            let (ki, kj) = ((row / g.kw) % g.kh, row % g.kw);
            let (y0, y1) = valid_range(oh, ki, p.stride.0, p.dilation.0, p.padding[0], g.h);
            let (x0, x1) = valid_range(ow, kj, p.stride.1, p.dilation.1, p.padding[2], g.w);
            let ix0 = (x0 * p.stride.1 + kj * p.dilation.1) as isize - p.padding[2] as isize;
            for s in 0..nb {
                let plane = &x[((n0 + s) * g.c_in + grp * d.cpg + c) * d.x_plane..][..d.x_plane];
                let dst = &mut out[s * d.p..(s + 1) * d.p];
                dst[..y0 * ow].fill(zero);
                dst[y1 * ow..].fill(zero);
                if rows_are_contiguous(g) {
                    let iy0 = y0 + ki * p.dilation.0 - p.padding[0];
                    shifted_copy(
                        plane,
                        iy0 * g.w,
                        ix0 - x0 as isize,
                        (x0, x1),
                        ow,
                        &mut dst[y0 * ow..y1 * ow],
                    );
                    continue;
                }
                for oy in y0..y1 {
                    let iy = oy * p.stride.0 + ki * p.dilation.0 - p.padding[0];
                    let line = &mut dst[oy * ow..(oy + 1) * ow];
                    line[..x0].fill(zero);
                    line[x1..].fill(zero);
                    if x1 > x0 {
                        let src = &plane[iy * g.w..(iy + 1) * g.w];
                        let start = ix0 as usize;
                        if p.stride.1 == 1 {
                            line[x0..x1].copy_from_slice(&src[start..start + (x1 - x0)]);
                        } else {
                            // Every stride-th value of the row, without a
                            // bounds check per value, compiled wide (AVX-512
                            // shuffles the strided loads).
                            let picks = src[start..].iter().step_by(p.stride.1);
                            let line = &mut line[x0..x1];
                            wide(
                                #[inline(always)]
                                || line.iter_mut().zip(picks).for_each(|(v, s)| *v = *s),
                            );
                        }
                    }
                }
            }
        });
}

/// Whether an output row and an input row have the same length and the
/// stride is 1, so that consecutive output rows of one kernel tap read
/// consecutive input rows: the tap's whole valid block is one run of the input
/// (the 3x3 / stride 1 / padding 1 convolutions of ResNets).
fn rows_are_contiguous(g: &Conv2dGeometry) -> bool {
    g.p.stride == (1, 1) && g.ow == g.w
}

/// One kernel tap's rows of im2col when [`rows_are_contiguous`]: `dst` is
/// `rows` output rows of `ow`; output `(r, ox)` reads
/// `plane[start + r * ow + ox + shift]` for `ox` in `x0..x1` and is zero
/// elsewhere. Copies the block in one run, then zeroes the columns outside
/// `x0..x1`, which the run filled with neighbouring rows' values.
fn shifted_copy<T: GemmElem>(
    plane: &[T],
    start: usize,
    shift: isize,
    (x0, x1): (usize, usize),
    ow: usize,
    dst: &mut [T],
) {
    let zero = T::default();
    if x1 <= x0 || dst.is_empty() {
        dst.fill(zero);
        return;
    }
    // The first and last elements of the run may fall outside the plane (a
    // padded column at its ends); they lie outside x0..x1 and are zeroed below.
    let from = start as isize + shift;
    let lo = (-from).max(0) as usize;
    let hi = dst
        .len()
        .min((plane.len() as isize - from).max(0) as usize)
        .max(lo);
    dst[lo..hi]
        .copy_from_slice(&plane[(from + lo as isize) as usize..(from + hi as isize) as usize]);
    for row in dst.chunks_mut(ow) {
        row[..x0].fill(zero);
        row[x1..].fill(zero);
    }
}

/// Adds `cols: [K, nb * P]` back into samples `n0 ..` of group `grp` of `dx`.
fn col2im(
    cols: &[f32],
    g: &Conv2dGeometry,
    d: Dims,
    n0: usize,
    nb: usize,
    grp: usize,
    dx: &mut [f32],
) {
    let (ow, kk, p) = (g.ow, g.kh * g.kw, &g.p);
    let ld = nb * d.p;
    // Each (sample, channel) plane of dx is written by one task.
    let planes: Vec<(usize, &mut [f32])> = dx
        .chunks_mut(d.x_plane)
        .enumerate()
        .filter_map(|(i, pl)| {
            let (n, c) = (i / g.c_in, i % g.c_in);
            (n >= n0 && n < n0 + nb && c / d.cpg == grp).then_some((i, pl))
        })
        .collect();
    planes.into_par_iter().for_each(|(i, plane)| {
        wide(
            #[inline(always)]
            || {
                let (s, c) = (i / g.c_in - n0, i % g.c_in - grp * d.cpg);
                for k in 0..kk {
                    let (ki, kj) = (k / g.kw, k % g.kw);
                    let (y0, y1) =
                        valid_range(g.oh, ki, p.stride.0, p.dilation.0, p.padding[0], g.h);
                    let (x0, x1) = valid_range(ow, kj, p.stride.1, p.dilation.1, p.padding[2], g.w);
                    if x1 <= x0 {
                        continue;
                    }
                    let ix0 = x0 * p.stride.1 + kj * p.dilation.1 - p.padding[2];
                    let col = &cols[(c * kk + k) * ld + s * d.p..][..d.p];
                    for oy in y0..y1 {
                        let iy = oy * p.stride.0 + ki * p.dilation.0 - p.padding[0];
                        let src = &col[oy * ow + x0..oy * ow + x1];
                        let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
                        if p.stride.1 == 1 {
                            for (d, &v) in dst[ix0..ix0 + src.len()].iter_mut().zip(src) {
                                *d += v;
                            }
                        } else {
                            for (j, &v) in src.iter().enumerate() {
                                dst[ix0 + j * p.stride.1] += v;
                            }
                        }
                    }
                }
            },
        )
    });
}

/// Gathers `[opg, nb * P]` of group `grp` from `t: [n, c_out, P]`.
fn gather_out<T: GemmElem>(
    t: &[T],
    g: &Conv2dGeometry,
    d: Dims,
    n0: usize,
    nb: usize,
    grp: usize,
    buf: &mut [T],
) {
    buf[..d.opg * nb * d.p]
        .par_chunks_mut(nb * d.p)
        .enumerate()
        .for_each(|(m, row)| {
            for s in 0..nb {
                let src = &t[((n0 + s) * g.c_out + grp * d.opg + m) * d.p..][..d.p];
                row[s * d.p..(s + 1) * d.p].copy_from_slice(src);
            }
        });
}

/// Scatters `[opg, nb * P]` into group `grp` of `y: [n, c_out, P]` (not
/// yet written) through the epilogue, writing each of its elements there.
fn scatter_out(
    buf: &[f32],
    g: &Conv2dGeometry,
    d: Dims,
    (n0, nb, grp): (usize, usize, usize),
    epi: &Epilogue<'_>,
    y: &mut [MaybeUninit<f32>],
) {
    for s in 0..nb {
        let at = ((n0 + s) * g.c_out + grp * d.opg) * d.p;
        let dst = &mut y[at..][..d.opg * d.p];
        dst.par_chunks_mut(d.p).enumerate().for_each(|(m, out)| {
            let src = &buf[m * nb * d.p + s * d.p..][..d.p];
            epi.row_into(src, out, grp * d.opg + m, at + m * d.p);
        });
    }
}

/// The chunks `(n0, nb)` covering the batch.
fn chunks(n: usize, nb: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n)
        .step_by(nb.max(1))
        .map(move |n0| (n0, nb.min(n - n0)))
}

/// Reusable buffers of one kernel call: the columns `[K, nb * P]` (im2col of
/// the input, or the input gradient before col2im; unused by a direct 1x1
/// convolution) and an output-shaped block `[opg, nb * P]` (a gathered `dy`,
/// or the forward result before scattering). Taken from the calling thread's
/// spare buffers and handed back on drop, so that consecutive convolutions
/// reuse them instead of allocating and zeroing them anew.
struct Scratch<C: Spare, B: Spare> {
    direct: bool,
    cols: Vec<C>,
    block: Vec<B>,
}

impl<C: Spare, B: Spare> Scratch<C, B> {
    fn new(g: &Conv2dGeometry, d: Dims) -> Self {
        let direct = is_pointwise(g) && d.nb == 1;
        let cols = if direct {
            Vec::new()
        } else {
            C::take(d.k * d.nb * d.p)
        };
        let block = if d.nb > 1 {
            B::take(d.opg * d.nb * d.p)
        } else {
            Vec::new()
        };
        Scratch {
            direct,
            cols,
            block,
        }
    }
}

impl<C: Spare, B: Spare> Drop for Scratch<C, B> {
    fn drop(&mut self) {
        C::give(std::mem::take(&mut self.cols));
        B::give(std::mem::take(&mut self.block));
    }
}

/// Group `grp`'s weight `[opg, K]`.
fn group_weight<T>(w: &[T], d: Dims, grp: usize) -> &[T] {
    &w[grp * d.opg * d.k..][..d.opg * d.k]
}

/// The input of a chunk and group as the GEMM's `[K, nb * P]` operand: the
/// input itself for a direct 1x1 convolution, its im2col otherwise.
#[allow(clippy::too_many_arguments)]
fn input_matrix<'a, T: GemmElem>(
    x: &'a [T],
    cols: &'a mut [T],
    direct: bool,
    g: &Conv2dGeometry,
    d: Dims,
    n0: usize,
    nb: usize,
    grp: usize,
) -> &'a [T] {
    if direct {
        &x[(n0 * g.c_in + grp * d.cpg) * d.x_plane..][..d.cpg * d.x_plane]
    } else {
        im2col(x, g, d, n0, nb, grp, cols);
        cols
    }
}

/// An output-shaped tensor (`dy`) of a chunk and group as `[opg, nb * P]`:
/// a slice for one sample, gathered into `block` for several.
#[allow(clippy::too_many_arguments)]
fn output_matrix<'a, T: GemmElem>(
    t: &'a [T],
    block: &'a mut [T],
    g: &Conv2dGeometry,
    d: Dims,
    n0: usize,
    nb: usize,
    grp: usize,
) -> &'a [T] {
    if nb == 1 {
        &t[(n0 * g.c_out + grp * d.opg) * d.p..][..d.opg * d.p]
    } else {
        gather_out(t, g, d, n0, nb, grp, block);
        block
    }
}

/// Forward: `y[chunk, grp] = w[grp] @ im2col(x[chunk, grp])`.
pub fn forward<T: GemmElem + Spare>(x: &[T], w: &[T], g: &Conv2dGeometry) -> Vec<f32> {
    forward_fused(x, Weights::Stored(w), g, &Epilogue::default())
}

/// The weight operand of a forward convolution.
#[derive(Clone, Copy)]
pub enum Weights<'a, T: GemmElem> {
    /// `[c_out, c_in / groups, kh, kw]` as stored.
    Stored(&'a [T]),
    /// Packed ahead for the GEMM, one `[opg, K]` per group ([`pack_weights`]).
    Packed(&'a [T::Packed]),
}

/// The f32 weights of a convolution packed for its GEMMs, one operand per
/// group, so that an inference convolution does not pack them on every
/// call (with few output pixels, as at batch 1, packing was a sixth of the
/// work).
///
/// # Panics
/// When the CPU lacks AVX-512F or `w` is shorter than its shape.
pub fn pack_weights(w: &[f32], g: &Conv2dGeometry) -> Vec<PackedA> {
    let d = dims(g);
    (0..g.p.groups)
        .map(|grp| PackedA::new(d.opg, d.k, group_weight(w, d, grp)))
        .collect()
}

/// Forward with an epilogue: `y = epi(conv(x, w))`, the epilogue applied
/// as each part of `y` is stored (by the GEMM's tiles for one sample, by
/// the scatter of a chunk of samples), never as a pass of its own.
///
/// # Panics
/// When the epilogue's bias holds fewer than `c_out` values or its residual
/// fewer than `y`'s.
pub fn forward_fused<T: GemmElem + Spare>(
    x: &[T],
    w: Weights<'_, T>,
    g: &Conv2dGeometry,
    epi: &Epilogue<'_>,
) -> Vec<f32> {
    let d = dims(g);
    // The groups' planes cover `y` only when the groups divide the channels.
    assert!(d.opg * g.p.groups == g.c_out && d.cpg * g.p.groups == g.c_in);
    let y_len = g.n * g.c_out * d.p;
    assert!(
        epi.bias.is_none_or(|b| b.len() >= g.c_out)
            && epi.residual.is_none_or(|r| r.len() >= y_len),
        "conv::forward_fused: epilogue shorter than the output"
    );
    // Every element is written below: by the GEMM of its chunk and group,
    // or by the scatter of that GEMM's block.
    let mut y = uninit_vec::<f32>(y_len);
    let mut s = Scratch::<T, f32>::new(g, d);
    for (n0, nb) in chunks(g.n, d.nb) {
        for grp in 0..g.p.groups {
            let b = MatRef {
                data: input_matrix(x, &mut s.cols, s.direct, g, d, n0, nb, grp),
                trans: false,
            };
            // One sample: the GEMM stores y's planes through the epilogue.
            // Several: it stores a block that the scatter sends through it.
            let (out, part, cols) = if nb == 1 {
                let at = (n0 * g.c_out + grp * d.opg) * d.p;
                let part = epi.part(grp * d.opg, d.opg, at, d.opg * d.p);
                (&mut y[at..][..d.opg * d.p], part, d.p)
            } else {
                let block = &mut s.block[..d.opg * nb * d.p];
                // SAFETY: MaybeUninit<f32> has f32's layout, and only
                // values are written through it.
                let block = unsafe {
                    std::slice::from_raw_parts_mut(block.as_mut_ptr().cast(), block.len())
                };
                (block, Epilogue::default(), nb * d.p)
            };
            match w {
                Weights::Stored(w) => {
                    let ws = MatRef {
                        data: group_weight(w, d, grp),
                        trans: false,
                    };
                    T::gemm_uninit_fused((d.opg, d.k, cols), ws, b, out, &part);
                }
                Weights::Packed(p) => {
                    // A packed operand of another shape would leave part
                    // of `y` unwritten: refuse it.
                    assert!(
                        p.len() == g.p.groups && T::packed_shape(&p[grp]) == (d.opg, d.k),
                        "conv::forward_fused: packed weights of another shape"
                    );
                    T::gemm_packed_fused(&p[grp], b, cols, out, &part)
                }
            }
            if nb > 1 {
                scatter_out(&s.block, g, d, (n0, nb, grp), epi, &mut y);
            }
        }
    }
    // SAFETY: the chunks and groups cover every sample and output channel,
    // and each of their planes was written in full.
    unsafe { assume_init_vec(y) }
}

/// Input gradient: `dx[chunk, grp] = col2im(w[grp]^T @ dy[chunk, grp])`.
pub fn backward_input<T: GemmElem + Spare>(dy: &[T], w: &[T], g: &Conv2dGeometry) -> Vec<f32> {
    let d = dims(g);
    if is_pointwise(g) && d.nb == 1 {
        return pointwise_backward_input(dy, w, g, d);
    }
    let mut s = Scratch::<f32, T>::new(g, d);
    let mut dx = vec![0.0; g.n * g.c_in * d.x_plane];
    for (n0, nb) in chunks(g.n, d.nb) {
        for grp in 0..g.p.groups {
            let wt = MatRef {
                data: group_weight(w, d, grp),
                trans: true,
            };
            let dys = MatRef {
                data: output_matrix(dy, &mut s.block, g, d, n0, nb, grp),
                trans: false,
            };
            T::gemm(d.k, d.opg, nb * d.p, wt, dys, 0.0, &mut s.cols);
            col2im(&s.cols, g, d, n0, nb, grp, &mut dx);
        }
    }
    dx
}

/// [`backward_input`] of a 1x1 / stride 1 / unpadded convolution one sample
/// at a time: `dx[n, grp] = w[grp]^T @ dy[n, grp]`, written straight into
/// the (not zeroed) result.
fn pointwise_backward_input<T: GemmElem>(
    dy: &[T],
    w: &[T],
    g: &Conv2dGeometry,
    d: Dims,
) -> Vec<f32> {
    // Each GEMM writes a `[cpg, P]` block: the planes cover `dx` only when
    // the groups divide the channels and the output plane is the input's.
    assert!(d.cpg * g.p.groups == g.c_in && d.opg * g.p.groups == g.c_out);
    assert_eq!(d.p, d.x_plane, "a pointwise convolution keeps the plane");
    let mut dx = uninit_vec::<f32>(g.n * g.c_in * d.x_plane);
    for n0 in 0..g.n {
        for grp in 0..g.p.groups {
            let wt = MatRef {
                data: group_weight(w, d, grp),
                trans: true,
            };
            let dys = MatRef {
                data: &dy[(n0 * g.c_out + grp * d.opg) * d.p..][..d.opg * d.p],
                trans: false,
            };
            let dxs = &mut dx[(n0 * g.c_in + grp * d.cpg) * d.x_plane..][..d.cpg * d.x_plane];
            T::gemm_uninit(d.k, d.opg, d.p, wt, dys, dxs);
        }
    }
    // SAFETY: the samples and groups cover every input channel plane, and
    // `gemm_uninit` wrote each in full (`k = cpg` and `P = x_plane` here).
    unsafe { assume_init_vec(dx) }
}

/// Weight gradient: `dw[grp] = sum over chunks of dy[chunk, grp] @ im2col(x[chunk, grp])^T`.
pub fn backward_weight<T: GemmElem + Spare>(x: &[T], dy: &[T], g: &Conv2dGeometry) -> Vec<f32> {
    let d = dims(g);
    let mut dw = vec![0.0; g.c_out * d.k];
    let mut s = Scratch::<T, T>::new(g, d);
    for (i, (n0, nb)) in chunks(g.n, d.nb).enumerate() {
        for grp in 0..g.p.groups {
            let b = MatRef {
                data: input_matrix(x, &mut s.cols, s.direct, g, d, n0, nb, grp),
                trans: true,
            };
            let dys = MatRef {
                data: output_matrix(dy, &mut s.block, g, d, n0, nb, grp),
                trans: false,
            };
            let dws = &mut dw[grp * d.opg * d.k..][..d.opg * d.k];
            let beta = if i == 0 { 0.0 } else { 1.0 };
            T::gemm(d.opg, nb * d.p, d.k, dys, b, beta, dws);
        }
    }
    dw
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Conv2dParams;
    use crate::Shape;
    use half::bf16;

    /// bf16 values from a fixed pseudo-random sequence.
    fn values(len: usize, seed: u64) -> Vec<bf16> {
        crate::rng::normal(seed, len, 0.0, 1.0)
            .into_iter()
            .map(bf16::from_f32)
            .collect()
    }

    fn close(what: &str, got: &[f32], want: &[f32]) {
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-5 * scale, "{what}[{i}]: {g} vs {w}");
        }
    }

    /// `y[n, o, oy, ox] = sum w[o, c, ki, kj] * x[n, g*cpg + c, iy, ix]`, one
    /// term at a time, and the input gradient scattered the same way.
    fn naive(x: &[f32], w: &[f32], dy: &[f32], g: &Conv2dGeometry) -> (Vec<f32>, Vec<f32>) {
        let d = dims(g);
        let mut y = vec![0.0; g.n * g.c_out * d.p];
        let mut dx = vec![0.0; x.len()];
        let p = &g.p;
        for n in 0..g.n {
            for o in 0..g.c_out {
                let grp = o / d.opg;
                for c in 0..d.cpg {
                    for ki in 0..g.kh {
                        for kj in 0..g.kw {
                            let wv = w[((o * d.cpg + c) * g.kh + ki) * g.kw + kj];
                            for oy in 0..g.oh {
                                for ox in 0..g.ow {
                                    let iy = (oy * p.stride.0 + ki * p.dilation.0) as isize
                                        - p.padding[0] as isize;
                                    let ix = (ox * p.stride.1 + kj * p.dilation.1) as isize
                                        - p.padding[2] as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xi = ((n * g.c_in + grp * d.cpg + c) * g.h + iy as usize)
                                        * g.w
                                        + ix as usize;
                                    let yi = ((n * g.c_out + o) * g.oh + oy) * g.ow + ox;
                                    y[yi] += wv * x[xi];
                                    dx[xi] += wv * dy[yi];
                                }
                            }
                        }
                    }
                }
            }
        }
        (y, dx)
    }

    /// im2col and col2im (both the unit-stride run copy and the general
    /// path) against the naive convolution: padding on one side only,
    /// dilation, groups, stride 2, planes of one pixel, chunked batches.
    #[test]
    fn kernels_match_the_naive_convolution() {
        let params = |stride, pad: [usize; 4], dil, groups| Conv2dParams {
            stride,
            padding: pad,
            dilation: dil,
            groups,
        };
        for (x_dims, w_dims, p) in [
            (
                [2, 4, 6, 7],
                [6, 4, 3, 3],
                params((1, 1), [1; 4], (1, 1), 1),
            ),
            (
                [3, 4, 5, 5],
                [4, 2, 3, 3],
                params((1, 1), [2, 0, 0, 2], (1, 1), 2),
            ),
            (
                [2, 3, 7, 6],
                [5, 3, 3, 3],
                params((1, 1), [2; 4], (2, 2), 1),
            ),
            (
                [4, 2, 1, 1],
                [3, 2, 3, 3],
                params((1, 1), [1; 4], (1, 1), 1),
            ),
            (
                [2, 3, 7, 7],
                [4, 3, 3, 3],
                params((2, 2), [1; 4], (1, 1), 1),
            ),
            (
                [2, 3, 6, 5],
                [4, 3, 3, 5],
                params((1, 1), [0, 0, 2, 2], (1, 1), 1),
            ),
        ] {
            let g = Conv2dGeometry::new(&Shape::new(x_dims), &Shape::new(w_dims), &p).unwrap();
            let wide = |v: Vec<bf16>| v.iter().map(|h| h.to_f32()).collect::<Vec<f32>>();
            let x = wide(values(x_dims.iter().product(), 4));
            let w = wide(values(w_dims.iter().product(), 5));
            let dy = wide(values(g.n * g.c_out * g.oh * g.ow, 6));
            let (y, dx) = naive(&x, &w, &dy, &g);
            close("forward", &forward(&x, &w, &g), &y);
            close("backward_input", &backward_input(&dy, &w, &g), &dx);
        }
    }

    /// The three kernels on bf16 operands (the native bf16 GEMM where the CPU
    /// has it) against the same kernels on the upcast f32 values: chunked
    /// batches, groups, strides, padding and the direct 1x1 path.
    #[test]
    fn bf16_kernels_match_f32_kernels_on_the_same_values() {
        if !crate::cpu::gemm_bf16::test_runs_here() {
            return;
        }
        for (x_dims, w_dims, p) in [
            ([4, 8, 9, 9], [16, 8, 3, 3], Conv2dParams::new(1, 1, 1, 1)),
            ([3, 6, 11, 10], [8, 3, 3, 3], Conv2dParams::new(2, 1, 1, 2)),
            ([2, 16, 7, 7], [40, 16, 1, 1], Conv2dParams::new(1, 0, 1, 1)),
            ([1, 3, 70, 70], [8, 3, 7, 7], Conv2dParams::new(2, 3, 1, 1)),
        ] {
            let g = Conv2dGeometry::new(&Shape::new(x_dims), &Shape::new(w_dims), &p).unwrap();
            let x = values(x_dims.iter().product(), 1);
            let w = values(w_dims.iter().product(), 2);
            let dy = values(g.n * g.c_out * g.oh * g.ow, 3);
            let wide = |v: &[bf16]| v.iter().map(|h| h.to_f32()).collect::<Vec<f32>>();
            let (xf, wf, dyf) = (wide(&x), wide(&w), wide(&dy));
            close("forward", &forward(&x, &w, &g), &forward(&xf, &wf, &g));
            close(
                "backward_input",
                &backward_input(&dy, &w, &g),
                &backward_input(&dyf, &wf, &g),
            );
            close(
                "backward_weight",
                &backward_weight(&x, &dy, &g),
                &backward_weight(&xf, &dyf, &g),
            );
        }
    }

    /// The epilogue stored with the output (by a sample's GEMM tiles, or by
    /// the scatter of a chunk of samples) gives the bits of the convolution
    /// followed by the epilogue as a pass of its own, for each combination
    /// of bias, residual and ReLU: a direct 1x1 convolution with a large
    /// plane (several k blocks, partial tiles), a padded 3x3 one whose
    /// small planes are chunked, and a grouped one.
    #[test]
    fn the_fused_epilogue_gives_the_bits_of_the_separate_pass() {
        use crate::backend::UnaryOp;
        for (x_dims, w_dims, p) in [
            (
                [2, 300, 40, 30],
                [50, 300, 1, 1],
                Conv2dParams::new(1, 0, 1, 1),
            ),
            ([5, 6, 7, 7], [20, 6, 3, 3], Conv2dParams::new(1, 1, 1, 1)),
            ([3, 6, 11, 10], [8, 3, 3, 3], Conv2dParams::new(2, 1, 1, 2)),
        ] {
            let g = Conv2dGeometry::new(&Shape::new(x_dims), &Shape::new(w_dims), &p).unwrap();
            let f32s = |v: Vec<bf16>| v.iter().map(|h| h.to_f32()).collect::<Vec<f32>>();
            let x = f32s(values(x_dims.iter().product(), 7));
            let w = f32s(values(w_dims.iter().product(), 8));
            let plane = g.oh * g.ow;
            let bias = f32s(values(g.c_out, 9));
            let residual = f32s(values(g.n * g.c_out * plane, 10));
            let plain = forward(&x, &w, &g);
            for mask in 1..8 {
                let epi = Epilogue {
                    bias: (mask & 1 != 0).then_some(&bias[..]),
                    residual: (mask & 2 != 0).then_some(&residual[..]),
                    relu: mask & 4 != 0,
                };
                let mut want = plain.clone();
                let act = epi.relu.then_some(UnaryOp::Relu);
                super::super::elementwise::conv_epilogue(
                    &mut want,
                    g.c_out,
                    plane,
                    epi.bias,
                    epi.residual,
                    act,
                );
                let got = forward_fused(&x, Weights::Stored(&w), &g, &epi);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert!(
                    bits(&got) == bits(&want),
                    "{x_dims:?} {w_dims:?} epilogue {mask:03b}: fused and separate differ"
                );
            }
        }
    }
}
