//! Elementwise kernels: unary functions and their derivatives, broadcasting
//! binary ops, dropout.

use super::PAR_CHUNK;
use crate::backend::{BinaryOp, UnaryOp};
use crate::Shape;
use rayon::prelude::*;

const INV_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi)
const INV_SQRT_2PI: f32 = 0.398_942_3;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `f(x)` for one element.
fn apply(op: UnaryOp, x: f32) -> f32 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => 1.0 / x.sqrt(),
        UnaryOp::Abs => x.abs(),
        UnaryOp::Powf(p) => x.powf(p),
        UnaryOp::AddScalar(c) => x + c,
        UnaryOp::MulScalar(c) => x * c,
        UnaryOp::Clamp(lo, hi) => x.max(lo).min(hi),
        UnaryOp::Relu => x.max(0.0),
        UnaryOp::Gelu => 0.5 * x * (1.0 + libm::erff(x * INV_SQRT_2)),
        UnaryOp::Silu => x * sigmoid(x),
        UnaryOp::Sigmoid => sigmoid(x),
        UnaryOp::Tanh => x.tanh(),
    }
}

/// `f'(x)` for one element (PyTorch's conventions at kinks: relu'(0) = 0,
/// abs'(0) = 0, clamp passes the gradient at the bounds).
fn derivative(op: UnaryOp, x: f32) -> f32 {
    match op {
        UnaryOp::Neg => -1.0,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => 1.0 / x,
        UnaryOp::Sqrt => 0.5 / x.sqrt(),
        UnaryOp::Rsqrt => -0.5 / (x * x.sqrt()),
        UnaryOp::Abs => {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        UnaryOp::Powf(p) => {
            if p == 0.0 {
                0.0
            } else {
                p * x.powf(p - 1.0)
            }
        }
        UnaryOp::AddScalar(_) => 1.0,
        UnaryOp::MulScalar(c) => c,
        UnaryOp::Clamp(lo, hi) => {
            if x >= lo && x <= hi {
                1.0
            } else {
                0.0
            }
        }
        UnaryOp::Relu => {
            if x > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        UnaryOp::Gelu => {
            let cdf = 0.5 * (1.0 + libm::erff(x * INV_SQRT_2));
            cdf + x * INV_SQRT_2PI * (-0.5 * x * x).exp()
        }
        UnaryOp::Silu => {
            let s = sigmoid(x);
            s * (1.0 + x * (1.0 - s))
        }
        UnaryOp::Sigmoid => {
            let s = sigmoid(x);
            s * (1.0 - s)
        }
        UnaryOp::Tanh => {
            let t = x.tanh();
            1.0 - t * t
        }
    }
}

/// `y = f(x)`.
pub fn unary(op: UnaryOp, x: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    y.par_chunks_mut(PAR_CHUNK)
        .zip(x.par_chunks(PAR_CHUNK))
        .for_each(|(y, x)| {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = apply(op, x);
            }
        });
    y
}

/// `dx = dy * f'(x)`.
pub fn unary_backward(op: UnaryOp, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let mut dx = vec![0.0; x.len()];
    dx.par_chunks_mut(PAR_CHUNK)
        .zip(x.par_chunks(PAR_CHUNK).zip(dy.par_chunks(PAR_CHUNK)))
        .for_each(|(dx, (x, dy))| {
            for ((d, &x), &g) in dx.iter_mut().zip(x).zip(dy) {
                *d = g * derivative(op, x);
            }
        });
    dx
}

fn combine(op: BinaryOp, a: f32, b: f32) -> f32 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
    }
}

/// `out = a op b` with both operands broadcast to `out`.
pub fn binary(op: BinaryOp, a: (&[f32], &Shape), b: (&[f32], &Shape), out: &Shape) -> Vec<f32> {
    let n = out.numel();
    let mut y = vec![0.0; n];
    if n == 0 {
        return y;
    }
    if a.1 == out && b.1 == out {
        y.par_chunks_mut(PAR_CHUNK)
            .zip(a.0.par_chunks(PAR_CHUNK).zip(b.0.par_chunks(PAR_CHUNK)))
            .for_each(|(y, (a, b))| {
                for ((y, &a), &b) in y.iter_mut().zip(a).zip(b) {
                    *y = combine(op, a, b);
                }
            });
        return y;
    }
    // General case: rows along the last output dimension; each row's start
    // offsets in `a` and `b` come from its index over the leading dimensions.
    let (dims, st) = crate::backend::coalesce(
        out.dims(),
        &[
            &a.1.broadcast_strides(out),
            &b.1.broadcast_strides(out),
            &out.strides(),
        ],
    );
    let (sa, sb) = (&st[0], &st[1]);
    let dims = &dims[..];
    let r = dims.len();
    let last = dims[r - 1];
    let (la, lb) = (sa[r - 1], sb[r - 1]);
    let rows_per_task = (PAR_CHUNK / last).max(1);
    y.par_chunks_mut(last * rows_per_task)
        .enumerate()
        .for_each(|(task, chunk)| {
            for (j, row) in chunk.chunks_mut(last).enumerate() {
                let mut rest = task * rows_per_task + j;
                let (mut oa, mut ob) = (0, 0);
                for d in (0..r - 1).rev() {
                    let i = rest % dims[d];
                    rest /= dims[d];
                    oa += i * sa[d];
                    ob += i * sb[d];
                }
                for (k, y) in row.iter_mut().enumerate() {
                    *y = combine(op, a.0[oa + k * la], b.0[ob + k * lb]);
                }
            }
        });
    y
}

/// `y = x * keep / (1 - p)`, `keep` drawn from [`crate::rng::uniform32_at`].
pub fn dropout(x: &[f32], p: f32, seed: u64) -> Vec<f32> {
    let scale = 1.0 / (1.0 - p);
    let mut y = vec![0.0; x.len()];
    y.par_chunks_mut(PAR_CHUNK).enumerate().for_each(|(c, y)| {
        let base = c * PAR_CHUNK;
        for (j, y) in y.iter_mut().enumerate() {
            let i = base + j;
            let keep = crate::rng::uniform32_at(seed, i as u32) >= p;
            *y = if keep { x[i] * scale } else { 0.0 };
        }
    });
    y
}

/// In place over `y: [n, c, plane]`: `y = act(y + bias[c] + residual)`.
pub fn conv_epilogue(
    y: &mut [f32],
    c: usize,
    plane: usize,
    bias: Option<&[f32]>,
    residual: Option<&[f32]>,
    act: Option<UnaryOp>,
) {
    if plane == 0 {
        return;
    }
    y.par_chunks_mut(plane).enumerate().for_each(|(i, out)| {
        let b = bias.map_or(0.0, |b| b[i % c]);
        let res = residual.map(|r| &r[i * plane..(i + 1) * plane]);
        for (j, v) in out.iter_mut().enumerate() {
            let mut z = *v + b;
            if let Some(r) = res {
                z += r[j];
            }
            *v = match act {
                Some(UnaryOp::Relu) => z.max(0.0),
                Some(op) => apply(op, z),
                None => z,
            };
        }
    });
}
