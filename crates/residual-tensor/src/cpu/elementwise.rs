//! Elementwise kernels: unary functions and their derivatives, broadcasting
//! binary ops, dropout.

use super::fill::{par_fill, PAR_CHUNK};
use super::storage::Float;
use super::vector_math;
use super::wide::wide;
use crate::backend::{BinaryOp, UnaryOp};
use crate::Shape;
use rayon::prelude::*;

const INV_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi)
const INV_SQRT_2PI: f32 = 0.398_942_3;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `x^p` as PyTorch computes it: exponents 0.5 and -0.5 go through sqrt and
/// 1 / sqrt (NaN at -Inf, where C's `powf` gives +Inf and 0), every other
/// exponent through `powf`.
#[inline]
fn pow_like_torch(x: f32, p: f32) -> f32 {
    if p == 0.5 {
        x.sqrt()
    } else if p == -0.5 {
        1.0 / x.sqrt()
    } else {
        x.powf(p)
    }
}

/// A loop to run with an op's scalar function. The function reaches it as a
/// closure of its own type, so each op gets its own compiled (and vectorised)
/// loop instead of one loop that branches on the op at every element.
trait WithFn {
    /// What the loop returns.
    type Out;
    /// Runs the loop with `f`.
    fn call<F: Fn(f32) -> f32 + Sync + Send>(self, f: F) -> Self::Out;
}

/// Runs `w` with `f(x)` of `op`. NaN stays NaN through every op, as in
/// PyTorch: ReLU and clamp compare and select (`f32::max` / `f32::min` would
/// return the other operand of a NaN), which vectorises as well.
fn with_apply<W: WithFn>(op: UnaryOp, w: W) -> W::Out {
    match op {
        UnaryOp::Neg => w.call(|x| -x),
        UnaryOp::Exp => w.call(f32::exp),
        UnaryOp::Log => w.call(f32::ln),
        UnaryOp::Sqrt => w.call(f32::sqrt),
        UnaryOp::Rsqrt => w.call(|x| 1.0 / x.sqrt()),
        UnaryOp::Abs => w.call(f32::abs),
        UnaryOp::Powf(p) => w.call(move |x| pow_like_torch(x, p)),
        UnaryOp::AddScalar(c) => w.call(move |x| x + c),
        UnaryOp::MulScalar(c) => w.call(move |x| x * c),
        UnaryOp::Clamp(lo, hi) => w.call(move |x| {
            if x < lo {
                lo
            } else if x > hi {
                hi
            } else {
                x
            }
        }),
        UnaryOp::Relu => w.call(|x| if x < 0.0 { 0.0 } else { x }),
        // erf from `vector_math` (which vectorises; libm's does not), and
        // the closure always inlined into the wide loop: GELU's derivative
        // below, left out of line, ran one element at a time.
        UnaryOp::Gelu => w.call(
            #[inline(always)]
            |x| 0.5 * x * (1.0 + vector_math::erf(x * INV_SQRT_2)),
        ),
        UnaryOp::Silu => w.call(|x| x * sigmoid(x)),
        UnaryOp::Sigmoid => w.call(sigmoid),
        UnaryOp::Tanh => w.call(f32::tanh),
    }
}

/// Runs `w` with `f'(x)` of `op` (PyTorch's conventions at kinks: relu'(0) = 0,
/// abs'(0) = 0, clamp passes the gradient at the bounds; at NaN, relu passes
/// the gradient while clamp and abs block it).
fn with_derivative<W: WithFn>(op: UnaryOp, w: W) -> W::Out {
    let step = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        UnaryOp::Neg => w.call(|_| -1.0),
        UnaryOp::Exp => w.call(f32::exp),
        UnaryOp::Log => w.call(|x| 1.0 / x),
        UnaryOp::Sqrt => w.call(|x| 0.5 / x.sqrt()),
        UnaryOp::Rsqrt => w.call(|x| -0.5 / (x * x.sqrt())),
        UnaryOp::Abs => w.call(move |x| step(x > 0.0) - step(x < 0.0)),
        UnaryOp::Powf(0.0) => w.call(|_| 0.0),
        UnaryOp::Powf(p) => w.call(move |x| p * pow_like_torch(x, p - 1.0)),
        UnaryOp::AddScalar(_) => w.call(|_| 1.0),
        UnaryOp::MulScalar(c) => w.call(move |_| c),
        UnaryOp::Clamp(lo, hi) => w.call(move |x| step(x >= lo && x <= hi)),
        UnaryOp::Relu => w.call(|x| if x <= 0.0 { 0.0 } else { 1.0 }),
        UnaryOp::Gelu => w.call(
            #[inline(always)]
            |x| {
                let cdf = 0.5 * (1.0 + vector_math::erf(x * INV_SQRT_2));
                cdf + x * INV_SQRT_2PI * vector_math::exp(-0.5 * x * x)
            },
        ),
        UnaryOp::Silu => w.call(|x| {
            let s = sigmoid(x);
            s * (1.0 + x * (1.0 - s))
        }),
        UnaryOp::Sigmoid => w.call(|x| {
            let s = sigmoid(x);
            s * (1.0 - s)
        }),
        UnaryOp::Tanh => w.call(|x| {
            let t = x.tanh();
            1.0 - t * t
        }),
    }
}

/// The loop of [`unary`]: `y = f(x)`, computed in f32 and stored as `X`.
struct Map<'a, X>(&'a [X]);

impl<X: Float> WithFn for Map<'_, X> {
    type Out = Vec<X>;
    fn call<F: Fn(f32) -> f32 + Sync + Send>(self, f: F) -> Vec<X> {
        let x = self.0;
        // SAFETY: every output run is written in full, from the input run at
        // the same offset.
        unsafe {
            par_fill(x.len(), PAR_CHUNK, |i, y| {
                let x = &x[i * PAR_CHUNK..i * PAR_CHUNK + y.len()];
                wide(
                    #[inline(always)]
                    || {
                        for (y, &x) in y.iter_mut().zip(x) {
                            y.write(X::from_f32(f(x.to_f32())));
                        }
                    },
                )
            })
        }
    }
}

/// The loop of [`unary_backward`]: `dx = dy * f'(x)`, computed in f32 and
/// stored as `X`.
struct ChainRule<'a, X> {
    x: &'a [X],
    dy: &'a [X],
}

impl<X: Float> WithFn for ChainRule<'_, X> {
    type Out = Vec<X>;
    fn call<F: Fn(f32) -> f32 + Sync + Send>(self, df: F) -> Vec<X> {
        let (x, dy) = (self.x, self.dy);
        // SAFETY: every output run is written in full, from the input runs at
        // the same offset.
        unsafe {
            par_fill(x.len(), PAR_CHUNK, |i, dx| {
                let run = i * PAR_CHUNK..i * PAR_CHUNK + dx.len();
                wide(
                    #[inline(always)]
                    || {
                        for ((d, &x), &g) in dx.iter_mut().zip(&x[run.clone()]).zip(&dy[run]) {
                            d.write(X::from_f32(g.to_f32() * df(x.to_f32())));
                        }
                    },
                )
            })
        }
    }
}

/// `y = f(x)`, in f32 arithmetic, rounded once to `X`.
pub fn unary<X: Float>(op: UnaryOp, x: &[X]) -> Vec<X> {
    with_apply(op, Map(x))
}

/// `dx = dy * f'(x)`, in f32 arithmetic, rounded once to `X`.
pub fn unary_backward<X: Float>(op: UnaryOp, x: &[X], dy: &[X]) -> Vec<X> {
    with_derivative(op, ChainRule { x, dy })
}

/// `out = a op b` with both operands broadcast to `out`, in f32 arithmetic,
/// rounded once to `X`.
pub fn binary<X: Float>(op: BinaryOp, a: (&[X], &Shape), b: (&[X], &Shape), out: &Shape) -> Vec<X> {
    // One compiled loop per op, as for the unary ops.
    match op {
        BinaryOp::Add => broadcast_with(a, b, out, |a, b| a + b),
        BinaryOp::Sub => broadcast_with(a, b, out, |a, b| a - b),
        BinaryOp::Mul => broadcast_with(a, b, out, |a, b| a * b),
        BinaryOp::Div => broadcast_with(a, b, out, |a, b| a / b),
    }
}

/// `out = f(a, b)` with both operands broadcast to `out`.
fn broadcast_with<X: Float>(
    a: (&[X], &Shape),
    b: (&[X], &Shape),
    out: &Shape,
    f: impl Fn(f32, f32) -> f32 + Sync + Send,
) -> Vec<X> {
    let n = out.numel();
    if n == 0 {
        return Vec::new();
    }
    if a.1 == out && b.1 == out {
        // SAFETY: every output run is written in full, from the input runs at
        // the same offset.
        return unsafe {
            par_fill(n, PAR_CHUNK, |i, y| {
                let run = i * PAR_CHUNK..i * PAR_CHUNK + y.len();
                wide(
                    #[inline(always)]
                    || {
                        for ((y, &a), &b) in y.iter_mut().zip(&a.0[run.clone()]).zip(&b.0[run]) {
                            y.write(X::from_f32(f(a.to_f32(), b.to_f32())));
                        }
                    },
                )
            })
        };
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
    // SAFETY: each task's run is whole rows of `last` elements, and every
    // element of every row is written.
    unsafe {
        par_fill(n, last * rows_per_task, |task, chunk| {
            for (j, row) in chunk.chunks_mut(last).enumerate() {
                let mut rest = task * rows_per_task + j;
                let (mut oa, mut ob) = (0, 0);
                for d in (0..r - 1).rev() {
                    let i = rest % dims[d];
                    rest /= dims[d];
                    oa += i * sa[d];
                    ob += i * sb[d];
                }
                // Rows whose operands run contiguously or hold one value
                // (a bias added to each row, a scale per row) get loops the
                // compiler vectorises; other strides index per element.
                wide(
                    #[inline(always)]
                    || match (la, lb) {
                        (1, 1) => {
                            let (a, b) = (&a.0[oa..oa + last], &b.0[ob..ob + last]);
                            for ((y, &a), &b) in row.iter_mut().zip(a).zip(b) {
                                y.write(X::from_f32(f(a.to_f32(), b.to_f32())));
                            }
                        }
                        (1, 0) => {
                            let (a, b) = (&a.0[oa..oa + last], b.0[ob].to_f32());
                            for (y, &a) in row.iter_mut().zip(a) {
                                y.write(X::from_f32(f(a.to_f32(), b)));
                            }
                        }
                        (0, 1) => {
                            let (a, b) = (a.0[oa].to_f32(), &b.0[ob..ob + last]);
                            for (y, &b) in row.iter_mut().zip(b) {
                                y.write(X::from_f32(f(a, b.to_f32())));
                            }
                        }
                        _ => {
                            for (k, y) in row.iter_mut().enumerate() {
                                let (a, b) = (a.0[oa + k * la].to_f32(), b.0[ob + k * lb].to_f32());
                                y.write(X::from_f32(f(a, b)));
                            }
                        }
                    },
                )
            }
        })
    }
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
    let epilogue = Epilogue {
        y,
        c,
        plane,
        bias,
        residual,
    };
    match act {
        Some(op) => with_apply(op, epilogue),
        None => epilogue.call(|z| z),
    }
}

/// Over `y: [n, c, plane]` (a convolution's f32 accumulators), a new
/// `[n, c, plane]` of `O`: `act(y + bias[c] + residual)` rounded once to `O`,
/// with `residual` of `O` (a half-precision inference convolution's output).
pub(crate) fn conv_epilogue_to<O: Float>(
    y: &[f32],
    c: usize,
    plane: usize,
    bias: Option<&[f32]>,
    residual: Option<&[O]>,
    act: Option<UnaryOp>,
) -> Vec<O> {
    if plane == 0 {
        return Vec::new();
    }
    let epilogue = EpilogueTo {
        y,
        c,
        plane,
        bias,
        residual,
    };
    match act {
        Some(op) => with_apply(op, epilogue),
        None => epilogue.call(|z| z),
    }
}

/// The loop of [`conv_epilogue_to`], with the activation as its function.
struct EpilogueTo<'a, O> {
    y: &'a [f32],
    c: usize,
    plane: usize,
    bias: Option<&'a [f32]>,
    residual: Option<&'a [O]>,
}

impl<O: Float> WithFn for EpilogueTo<'_, O> {
    type Out = Vec<O>;
    fn call<F: Fn(f32) -> f32 + Sync + Send>(self, act: F) -> Vec<O> {
        let EpilogueTo {
            y,
            c,
            plane,
            bias,
            residual,
        } = self;
        // Whole planes per task, about PAR_CHUNK elements: late layers have
        // planes of 49 values, too few to be a task each.
        let rows = PAR_CHUNK.div_ceil(plane);
        // SAFETY: each run is `rows` whole `[plane]` rows of the output (the
        // last run fewer), each written in full from the row of `y` (and of
        // `residual`) at the same offset.
        unsafe {
            par_fill(y.len(), rows * plane, |task, out| {
                let first = task * rows;
                for (j, out) in out.chunks_mut(plane).enumerate() {
                    let row = first + j;
                    let b = bias.map_or(0.0, |b| b[row % c]);
                    let ys = &y[row * plane..][..plane];
                    match residual {
                        Some(r) => {
                            let r = &r[row * plane..][..plane];
                            for ((o, &v), &r) in out.iter_mut().zip(ys).zip(r) {
                                o.write(O::from_f32(act(v + b + r.to_f32())));
                            }
                        }
                        None => {
                            for (o, &v) in out.iter_mut().zip(ys) {
                                o.write(O::from_f32(act(v + b)));
                            }
                        }
                    }
                }
            })
        }
    }
}

/// The loop of [`conv_epilogue`], with the activation as its function.
struct Epilogue<'a> {
    y: &'a mut [f32],
    c: usize,
    plane: usize,
    bias: Option<&'a [f32]>,
    residual: Option<&'a [f32]>,
}

impl WithFn for Epilogue<'_> {
    type Out = ();
    fn call<F: Fn(f32) -> f32 + Sync + Send>(self, act: F) {
        let Epilogue {
            y,
            c,
            plane,
            bias,
            residual,
        } = self;
        y.par_chunks_mut(plane).enumerate().for_each(|(i, out)| {
            let b = bias.map_or(0.0, |b| b[i % c]);
            match residual {
                Some(r) => {
                    let r = &r[i * plane..(i + 1) * plane];
                    for (v, &r) in out.iter_mut().zip(r) {
                        *v = act(*v + b + r);
                    }
                }
                None => {
                    for v in out.iter_mut() {
                        *v = act(*v + b);
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::bf16;

    /// The bf16 epilogue against a scalar loop, on planes that do not divide
    /// the task size (49, 3) and on more rows than one task holds, with and
    /// without bias and residual: every element written, each from its row.
    #[test]
    fn conv_epilogue_to_bf16_matches_a_scalar_loop() {
        for (n, c, plane) in [(3, 5, 49), (2, 7000, 3), (1, 1, 1)] {
            let len = n * c * plane;
            let y: Vec<f32> = (0..len)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 8.0)
                .collect();
            let bias: Vec<f32> = (0..c).map(|i| i as f32 / 4.0 - 1.0).collect();
            let res: Vec<bf16> = (0..len)
                .map(|i| bf16::from_f32((i % 13) as f32 / 3.0 - 2.0))
                .collect();
            for (b, r) in [
                (None, None),
                (Some(&bias[..]), None),
                (Some(&bias[..]), Some(&res[..])),
            ] {
                let got = conv_epilogue_to(&y, c, plane, b, r, Some(UnaryOp::Relu));
                assert_eq!(got.len(), len);
                for (i, g) in got.iter().enumerate() {
                    let z = y[i]
                        + b.map_or(0.0, |b| b[(i / plane) % c])
                        + r.map_or(0.0, |r| r[i].to_f32());
                    let want = bf16::from_f32(if z < 0.0 { 0.0 } else { z });
                    assert_eq!(
                        g.to_bits(),
                        want.to_bits(),
                        "n{n} c{c} plane{plane}: element {i}"
                    );
                }
            }
        }
    }

    /// Every way two operands broadcast (rows running on both, a value per
    /// row on either side, same shapes) against an index computed per
    /// element, for each op.
    #[test]
    fn broadcast_binary_matches_per_element_indexing() {
        let cases: [(&[usize], &[usize], &[usize]); 6] = [
            (&[3, 37], &[37], &[3, 37]),
            (&[3, 37], &[3, 1], &[3, 37]),
            (&[3, 1], &[1, 37], &[3, 37]),
            (&[2, 3, 37], &[2, 3, 37], &[2, 3, 37]),
            (&[2, 1, 37], &[3, 1], &[2, 3, 37]),
            (&[4, 1, 5], &[1, 3, 1], &[4, 3, 5]),
        ];
        for (sa, sb, so) in cases {
            let (sa, sb, so) = (Shape::new(sa), Shape::new(sb), Shape::new(so));
            let a: Vec<f32> = (0..sa.numel()).map(|i| (i * 7 % 11) as f32 - 4.5).collect();
            let b: Vec<f32> = (0..sb.numel())
                .map(|i| (i * 5 % 13) as f32 / 3.0 + 0.5)
                .collect();
            let (ta, tb, to) = (
                sa.broadcast_strides(&so),
                sb.broadcast_strides(&so),
                so.strides(),
            );
            for (op, f) in [
                (BinaryOp::Add, (|x, y| x + y) as fn(f32, f32) -> f32),
                (BinaryOp::Sub, |x, y| x - y),
                (BinaryOp::Mul, |x, y| x * y),
                (BinaryOp::Div, |x, y| x / y),
            ] {
                let got = binary(op, (&a, &sa), (&b, &sb), &so);
                assert_eq!(got.len(), so.numel());
                for (i, g) in got.iter().enumerate() {
                    let (mut ia, mut ib) = (0, 0);
                    for d in 0..so.dims().len() {
                        let id = i / to[d] % so.dims()[d];
                        ia += id * ta[d];
                        ib += id * tb[d];
                    }
                    let want = f(a[ia], b[ib]);
                    assert_eq!(
                        g.to_bits(),
                        want.to_bits(),
                        "{op:?} {sa} with {sb}: element {i}"
                    );
                }
            }
        }
    }

    /// GELU and its derivative (erf and exp from `vector_math`, inside the
    /// vectorised loops) against float64's formulas every 1/64 over [-12, 12]:
    /// within 1e-6 of the larger of 1 and |x|; NaN stays NaN, and the
    /// infinities give PyTorch's values (GELU: +inf and NaN).
    #[test]
    fn gelu_and_its_derivative_match_float64() {
        let x: Vec<f32> = (-768..=768).map(|i| i as f32 / 64.0).collect();
        let y = unary(UnaryOp::Gelu, &x);
        let dy = unary_backward(UnaryOp::Gelu, &x, &vec![1.0; x.len()]);
        for ((&x, &y), &d) in x.iter().zip(&y).zip(&dy) {
            let v = x as f64;
            let cdf = 0.5 * (1.0 + libm::erf(v / std::f64::consts::SQRT_2));
            let pdf = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let tol = 1e-6 * v.abs().max(1.0);
            assert!((y as f64 - v * cdf).abs() <= tol, "gelu({x}) = {y}");
            assert!(
                (d as f64 - (cdf + v * pdf)).abs() <= tol,
                "gelu'({x}) = {d}"
            );
        }
        let ends = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
        let y = unary(UnaryOp::Gelu, &ends);
        assert!(y[0].is_nan() && y[1] == f32::INFINITY && y[2].is_nan());
    }
}
