//! Pooling kernels over planes: `x: [planes, h, w] -> y: [planes, oh, ow]`.

use crate::backend::Pool2dGeometry;
use rayon::prelude::*;

/// A pooling window clipped to the input, and PyTorch's average divisor.
struct Window {
    y0: usize,
    y1: usize,
    x0: usize,
    x1: usize,
    divisor: f32,
}

fn window(g: &Pool2dGeometry, oy: usize, ox: usize) -> Window {
    let p = &g.p;
    let span = |o: usize, k: usize, s: usize, pad: usize, len: usize| {
        let start = (o * s) as isize - pad as isize;
        let end_padded = (start + k as isize).min((len + pad) as isize);
        let padded_len = end_padded - start;
        let a = start.max(0) as usize;
        let b = (end_padded.min(len as isize)).max(0) as usize;
        (a, b.max(a), padded_len as usize)
    };
    let (y0, y1, ph) = span(oy, p.kernel.0, p.stride.0, p.padding.0, g.h);
    let (x0, x1, pw) = span(ox, p.kernel.1, p.stride.1, p.padding.1, g.w);
    let divisor = if p.count_include_pad {
        (ph * pw) as f32
    } else {
        ((y1 - y0) * (x1 - x0)) as f32
    };
    Window {
        y0,
        y1,
        x0,
        x1,
        divisor,
    }
}

/// Adaptive window along one axis: `floor(i*len/out) .. ceil((i+1)*len/out)`.
fn adaptive_span(i: usize, len: usize, out: usize) -> (usize, usize) {
    (i * len / out, ((i + 1) * len).div_ceil(out))
}

/// Position of the maximum in a window: the last NaN if there is one, else
/// the first maximum (as PyTorch's max_pool2d).
/// The first element seeds the running best; each later one replaces it
/// through selects, not branches (the windows are a few elements each).
fn argmax_in(plane: &[f32], wdt: usize, win: &Window) -> Option<usize> {
    if win.y0 >= win.y1 || win.x0 >= win.x1 {
        return None;
    }
    let first = win.y0 * wdt + win.x0;
    let (mut best_i, mut best_v) = (first, plane[first]);
    for iy in win.y0..win.y1 {
        let row = &plane[iy * wdt..][..win.x1];
        for (ix, &v) in row.iter().enumerate().skip(win.x0) {
            let take = v > best_v || v.is_nan();
            best_i = if take { iy * wdt + ix } else { best_i };
            best_v = if take { v } else { best_v };
        }
    }
    Some(best_i)
}

/// The clipped row spans `y0 .. y1` of the windows of each output row, and
/// the column spans `x0 .. x1` of each output column.
type Spans = (Vec<(usize, usize)>, Vec<(usize, usize)>);

fn spans(g: &Pool2dGeometry) -> Spans {
    let rows = (0..g.oh)
        .map(|oy| {
            let w = window(g, oy, 0);
            (w.y0, w.y1)
        })
        .collect();
    let cols = (0..g.ow)
        .map(|ox| {
            let w = window(g, 0, ox);
            (w.x0, w.x1)
        })
        .collect();
    (rows, cols)
}

/// Max pooling forward: each window's maximum, NaN where the window holds
/// one (as PyTorch's max_pool2d), -inf for a window outside the input.
///
/// The windows' clipped row and column spans are computed once per call;
/// each output row then takes the running maximum over its window's input
/// rows, a branch-free select per element.
pub fn max_forward(x: &[f32], g: &Pool2dGeometry) -> Vec<f32> {
    let (rows, cols) = spans(g);
    let mut y = vec![f32::NEG_INFINITY; g.planes * g.oh * g.ow];
    if g.oh * g.ow == 0 || g.h * g.w == 0 {
        return y;
    }
    y.par_chunks_mut(g.oh * g.ow)
        .enumerate()
        .for_each(|(pl, out)| {
            let plane = &x[pl * g.h * g.w..(pl + 1) * g.h * g.w];
            for (out_row, &(y0, y1)) in out.chunks_exact_mut(g.ow).zip(&rows) {
                for row in plane.chunks_exact(g.w).take(y1).skip(y0) {
                    for (m, &(x0, x1)) in out_row.iter_mut().zip(&cols) {
                        for &v in &row[x0..x1] {
                            // A NaN, once taken, stays: no value compares above it.
                            *m = if v > *m || v.is_nan() { v } else { *m };
                        }
                    }
                }
            }
        });
    y
}

/// Max pooling backward: each window's gradient goes to its maximum (see
/// `argmax_in`), the windows' clipped spans computed once per call.
pub fn max_backward(x: &[f32], dy: &[f32], g: &Pool2dGeometry) -> Vec<f32> {
    let (rows, cols) = spans(g);
    let mut dx = vec![0.0; g.planes * g.h * g.w];
    if g.h * g.w == 0 {
        return dx;
    }
    dx.par_chunks_mut(g.h * g.w)
        .enumerate()
        .for_each(|(pl, dplane)| {
            let plane = &x[pl * g.h * g.w..(pl + 1) * g.h * g.w];
            let dout = &dy[pl * g.oh * g.ow..(pl + 1) * g.oh * g.ow];
            for (&(y0, y1), dout_row) in rows.iter().zip(dout.chunks_exact(g.ow.max(1))) {
                for (&(x0, x1), &d) in cols.iter().zip(dout_row) {
                    if y0 == y1 || x0 == x1 {
                        continue;
                    }
                    let win = Window {
                        y0,
                        y1,
                        x0,
                        x1,
                        divisor: 1.0,
                    };
                    if let Some(i) = argmax_in(plane, g.w, &win) {
                        dplane[i] += d;
                    }
                }
            }
        });
    dx
}

/// Average pooling forward.
pub fn avg_forward(x: &[f32], g: &Pool2dGeometry) -> Vec<f32> {
    let mut y = vec![0.0; g.planes * g.oh * g.ow];
    y.par_chunks_mut(g.oh * g.ow)
        .enumerate()
        .for_each(|(pl, out)| {
            let plane = &x[pl * g.h * g.w..(pl + 1) * g.h * g.w];
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let win = window(g, oy, ox);
                    let mut s = 0.0;
                    for iy in win.y0..win.y1 {
                        s += plane[iy * g.w + win.x0..iy * g.w + win.x1]
                            .iter()
                            .sum::<f32>();
                    }
                    out[oy * g.ow + ox] = if win.divisor > 0.0 {
                        s / win.divisor
                    } else {
                        0.0
                    };
                }
            }
        });
    y
}

/// Average pooling backward.
pub fn avg_backward(dy: &[f32], g: &Pool2dGeometry) -> Vec<f32> {
    let mut dx = vec![0.0; g.planes * g.h * g.w];
    dx.par_chunks_mut(g.h * g.w)
        .enumerate()
        .for_each(|(pl, dplane)| {
            let dout = &dy[pl * g.oh * g.ow..(pl + 1) * g.oh * g.ow];
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let win = window(g, oy, ox);
                    if win.divisor == 0.0 {
                        continue;
                    }
                    let v = dout[oy * g.ow + ox] / win.divisor;
                    for iy in win.y0..win.y1 {
                        dplane[iy * g.w + win.x0..iy * g.w + win.x1]
                            .iter_mut()
                            .for_each(|d| *d += v);
                    }
                }
            }
        });
    dx
}

/// Adaptive average pooling forward.
pub fn adaptive_forward(x: &[f32], g: &Pool2dGeometry) -> Vec<f32> {
    let mut y = vec![0.0; g.planes * g.oh * g.ow];
    y.par_chunks_mut(g.oh * g.ow)
        .enumerate()
        .for_each(|(pl, out)| {
            let plane = &x[pl * g.h * g.w..(pl + 1) * g.h * g.w];
            for oy in 0..g.oh {
                let (y0, y1) = adaptive_span(oy, g.h, g.oh);
                for ox in 0..g.ow {
                    let (x0, x1) = adaptive_span(ox, g.w, g.ow);
                    let mut s = 0.0;
                    for iy in y0..y1 {
                        s += plane[iy * g.w + x0..iy * g.w + x1].iter().sum::<f32>();
                    }
                    out[oy * g.ow + ox] = s / ((y1 - y0) * (x1 - x0)) as f32;
                }
            }
        });
    y
}

/// Adaptive average pooling backward.
pub fn adaptive_backward(dy: &[f32], g: &Pool2dGeometry) -> Vec<f32> {
    let mut dx = vec![0.0; g.planes * g.h * g.w];
    dx.par_chunks_mut(g.h * g.w)
        .enumerate()
        .for_each(|(pl, dplane)| {
            let dout = &dy[pl * g.oh * g.ow..(pl + 1) * g.oh * g.ow];
            for oy in 0..g.oh {
                let (y0, y1) = adaptive_span(oy, g.h, g.oh);
                for ox in 0..g.ow {
                    let (x0, x1) = adaptive_span(ox, g.w, g.ow);
                    let v = dout[oy * g.ow + ox] / ((y1 - y0) * (x1 - x0)) as f32;
                    for iy in y0..y1 {
                        dplane[iy * g.w + x0..iy * g.w + x1]
                            .iter_mut()
                            .for_each(|d| *d += v);
                    }
                }
            }
        });
    dx
}
