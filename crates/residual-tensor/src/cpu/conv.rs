//! Convolution kernels: im2col + GEMM per sample and group, with a direct GEMM
//! for 1x1 / stride 1 / no padding. Shapes:
//! `x: [n, c_in, h, w]`, `w: [c_out, c_in/g, kh, kw]`, `y: [n, c_out, oh, ow]`.

use super::gemm::{sgemm, MatRef};
use crate::backend::Conv2dGeometry;
use rayon::prelude::*;

/// Whether the convolution is a plain matrix product over pixels.
fn is_pointwise(g: &Conv2dGeometry) -> bool {
    g.kh == 1 && g.kw == 1 && g.p.stride == (1, 1) && g.p.padding == [0; 4]
}

/// Input row touched by output row `o` and kernel row `k`, if inside the input.
#[inline]
fn src_index(
    o: usize,
    k: usize,
    stride: usize,
    dil: usize,
    pad: usize,
    len: usize,
) -> Option<usize> {
    let i = (o * stride + k * dil) as isize - pad as isize;
    (i >= 0 && (i as usize) < len).then_some(i as usize)
}

/// `cols: [cpg * kh * kw, oh * ow]` from one sample-group `x: [cpg, h, w]`.
fn im2col(x: &[f32], cpg: usize, g: &Conv2dGeometry, cols: &mut [f32]) {
    let (oh, ow) = (g.oh, g.ow);
    let p = &g.p;
    cols.par_chunks_mut(oh * ow)
        .enumerate()
        .for_each(|(row, out)| {
            let c = row / (g.kh * g.kw);
            let ki = (row / g.kw) % g.kh;
            let kj = row % g.kw;
            debug_assert!(c < cpg);
            let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
            for oy in 0..oh {
                let dst = &mut out[oy * ow..(oy + 1) * ow];
                match src_index(oy, ki, p.stride.0, p.dilation.0, p.padding[0], g.h) {
                    None => dst.fill(0.0),
                    Some(iy) => {
                        let src = &plane[iy * g.w..(iy + 1) * g.w];
                        for (ox, d) in dst.iter_mut().enumerate() {
                            *d = src_index(ox, kj, p.stride.1, p.dilation.1, p.padding[2], g.w)
                                .map_or(0.0, |ix| src[ix]);
                        }
                    }
                }
            }
        });
}

/// Adds `cols: [cpg * kh * kw, oh * ow]` back into `dx: [cpg, h, w]`.
fn col2im(cols: &[f32], cpg: usize, g: &Conv2dGeometry, dx: &mut [f32]) {
    let (oh, ow, kk) = (g.oh, g.ow, g.kh * g.kw);
    let p = &g.p;
    dx.par_chunks_mut(g.h * g.w)
        .enumerate()
        .for_each(|(c, plane)| {
            debug_assert!(c < cpg);
            for k in 0..kk {
                let (ki, kj) = (k / g.kw, k % g.kw);
                let col = &cols[(c * kk + k) * oh * ow..(c * kk + k + 1) * oh * ow];
                for oy in 0..oh {
                    let Some(iy) = src_index(oy, ki, p.stride.0, p.dilation.0, p.padding[0], g.h)
                    else {
                        continue;
                    };
                    let src = &col[oy * ow..(oy + 1) * ow];
                    let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
                    for (ox, &v) in src.iter().enumerate() {
                        if let Some(ix) =
                            src_index(ox, kj, p.stride.1, p.dilation.1, p.padding[2], g.w)
                        {
                            dst[ix] += v;
                        }
                    }
                }
            }
        });
}

/// Sizes shared by the three kernels.
struct Dims {
    cpg: usize,
    opg: usize,
    k: usize,
    x_plane: usize,
    y_plane: usize,
}

fn dims(g: &Conv2dGeometry) -> Dims {
    let cpg = g.c_in / g.p.groups;
    Dims {
        cpg,
        opg: g.c_out / g.p.groups,
        k: cpg * g.kh * g.kw,
        x_plane: g.h * g.w,
        y_plane: g.oh * g.ow,
    }
}

/// Forward: `y[n, grp] = w[grp] @ im2col(x[n, grp])`.
pub fn forward(x: &[f32], w: &[f32], g: &Conv2dGeometry) -> Vec<f32> {
    let d = dims(g);
    let mut y = vec![0.0; g.n * g.c_out * d.y_plane];
    let mut cols = if is_pointwise(g) {
        Vec::new()
    } else {
        vec![0.0; d.k * d.y_plane]
    };
    for n in 0..g.n {
        for grp in 0..g.p.groups {
            let xs = &x[(n * g.c_in + grp * d.cpg) * d.x_plane..][..d.cpg * d.x_plane];
            let b = if is_pointwise(g) {
                xs
            } else {
                im2col(xs, d.cpg, g, &mut cols);
                &cols
            };
            let ws = &w[grp * d.opg * d.k..][..d.opg * d.k];
            let ys = &mut y[(n * g.c_out + grp * d.opg) * d.y_plane..][..d.opg * d.y_plane];
            sgemm(
                d.opg,
                d.k,
                d.y_plane,
                1.0,
                MatRef {
                    data: ws,
                    trans: false,
                },
                MatRef {
                    data: b,
                    trans: false,
                },
                0.0,
                ys,
            );
        }
    }
    y
}

/// Input gradient: `dx[n, grp] = col2im(w[grp]^T @ dy[n, grp])`.
pub fn backward_input(dy: &[f32], w: &[f32], g: &Conv2dGeometry) -> Vec<f32> {
    let d = dims(g);
    let mut dx = vec![0.0; g.n * g.c_in * d.x_plane];
    let mut cols = vec![0.0; d.k * d.y_plane];
    for n in 0..g.n {
        for grp in 0..g.p.groups {
            let ws = &w[grp * d.opg * d.k..][..d.opg * d.k];
            let dys = &dy[(n * g.c_out + grp * d.opg) * d.y_plane..][..d.opg * d.y_plane];
            let dxs = &mut dx[(n * g.c_in + grp * d.cpg) * d.x_plane..][..d.cpg * d.x_plane];
            let (wt, dyr) = (
                MatRef {
                    data: ws,
                    trans: true,
                },
                MatRef {
                    data: dys,
                    trans: false,
                },
            );
            if is_pointwise(g) {
                sgemm(d.k, d.opg, d.y_plane, 1.0, wt, dyr, 0.0, dxs);
            } else {
                sgemm(d.k, d.opg, d.y_plane, 1.0, wt, dyr, 0.0, &mut cols);
                col2im(&cols, d.cpg, g, dxs);
            }
        }
    }
    dx
}

/// Weight gradient: `dw[grp] = sum_n dy[n, grp] @ im2col(x[n, grp])^T`.
pub fn backward_weight(x: &[f32], dy: &[f32], g: &Conv2dGeometry) -> Vec<f32> {
    let d = dims(g);
    let mut dw = vec![0.0; g.c_out * d.k];
    let mut cols = if is_pointwise(g) {
        Vec::new()
    } else {
        vec![0.0; d.k * d.y_plane]
    };
    for n in 0..g.n {
        for grp in 0..g.p.groups {
            let xs = &x[(n * g.c_in + grp * d.cpg) * d.x_plane..][..d.cpg * d.x_plane];
            let b = if is_pointwise(g) {
                xs
            } else {
                im2col(xs, d.cpg, g, &mut cols);
                &cols
            };
            let dys = &dy[(n * g.c_out + grp * d.opg) * d.y_plane..][..d.opg * d.y_plane];
            let dws = &mut dw[grp * d.opg * d.k..][..d.opg * d.k];
            let beta = if n == 0 { 0.0 } else { 1.0 };
            sgemm(
                d.opg,
                d.y_plane,
                d.k,
                1.0,
                MatRef {
                    data: dys,
                    trans: false,
                },
                MatRef {
                    data: b,
                    trans: true,
                },
                beta,
                dws,
            );
        }
    }
    dw
}
