//! Fill, casts, unary functions and derivatives, broadcasting binary ops, dropout
//! (`shaders/fill.wgsl`, `cast.wgsl`, `elementwise.wgsl`).

use super::{bits, word};
use crate::backend::{share, WgpuBackend};
use crate::context::Dispatch;
use residual_tensor::backend::{coalesce, BackendStorage, BinaryOp, Storage, UnaryOp};
use residual_tensor::{DType, Result, Shape};

/// `out: [len] = value`
pub(crate) fn fill(be: &WgpuBackend, len: usize, value: f32) -> Result<Storage> {
    let out = be.alloc(DType::F32, len)?;
    be.launch(Dispatch {
        shader: "fill",
        entry: "fill",
        constants: &[],
        params: &[word(len), bits(value)],
        buffers: &[(1, out.buffer())],
        groups: be.threads(len),
    })?;
    Ok(share(out))
}

/// Converts between f32, f16 and bf16 (16-bit types go through f32).
pub(crate) fn cast(be: &WgpuBackend, s: &Storage, to: DType) -> Result<Storage> {
    let from = be.gpu(s)?.dtype();
    if from == to {
        return Ok(s.clone());
    }
    if from != DType::F32 && to != DType::F32 {
        let wide = cast(be, s, DType::F32)?;
        return cast(be, &wide, to);
    }
    let n = s.len();
    let entry = match (from, to) {
        (DType::F32, DType::F16) => "f32_to_f16",
        (DType::F32, DType::BF16) => "f32_to_bf16",
        (DType::F16, _) => "f16_to_f32",
        _ => "bf16_to_f32",
    };
    let out = be.alloc(to, n)?;
    be.launch(Dispatch {
        shader: "cast",
        entry,
        constants: &[],
        params: &[word(n)],
        buffers: &[(1, be.gpu(s)?.buffer()), (2, out.buffer())],
        groups: be.threads(n.div_ceil(2)),
    })?;
    Ok(share(out))
}

/// The shader's number for a unary op and its two scalar parameters.
fn op_code(op: UnaryOp) -> (u32, f32, f32) {
    match op {
        UnaryOp::Neg => (0, 0.0, 0.0),
        UnaryOp::Exp => (1, 0.0, 0.0),
        UnaryOp::Log => (2, 0.0, 0.0),
        UnaryOp::Sqrt => (3, 0.0, 0.0),
        UnaryOp::Rsqrt => (4, 0.0, 0.0),
        UnaryOp::Abs => (5, 0.0, 0.0),
        UnaryOp::Powf(p) => (6, p, 0.0),
        UnaryOp::AddScalar(c) => (7, c, 0.0),
        UnaryOp::MulScalar(c) => (8, c, 0.0),
        UnaryOp::Clamp(lo, hi) => (9, lo, hi),
        UnaryOp::Relu => (10, 0.0, 0.0),
        UnaryOp::Gelu => (11, 0.0, 0.0),
        UnaryOp::Silu => (12, 0.0, 0.0),
        UnaryOp::Sigmoid => (13, 0.0, 0.0),
        UnaryOp::Tanh => (14, 0.0, 0.0),
    }
}

/// `y: [n] = f(x)`
pub(crate) fn unary(be: &WgpuBackend, op: UnaryOp, x: &Storage) -> Result<Storage> {
    let n = x.len();
    let (code, p0, p1) = op_code(op);
    let out = be.alloc(DType::F32, n)?;
    be.launch(Dispatch {
        shader: "elementwise",
        entry: "unary",
        constants: &[("OP", code as f64)],
        params: &[word(n), bits(p0), bits(p1)],
        buffers: &[(1, be.f32_buffer(x)?), (2, out.buffer())],
        groups: be.threads(n),
    })?;
    Ok(share(out))
}

/// `dx: [n] = dy * f'(x)`
pub(crate) fn unary_backward(
    be: &WgpuBackend,
    op: UnaryOp,
    x: &Storage,
    dy: &Storage,
) -> Result<Storage> {
    let n = x.len();
    let (code, p0, p1) = op_code(op);
    let out = be.alloc(DType::F32, n)?;
    be.launch(Dispatch {
        shader: "elementwise",
        entry: "unary_backward",
        constants: &[("OP", code as f64)],
        params: &[word(n), bits(p0), bits(p1)],
        buffers: &[
            (1, be.f32_buffer(x)?),
            (3, be.f32_buffer(dy)?),
            (4, out.buffer()),
        ],
        groups: be.threads(n),
    })?;
    Ok(share(out))
}

/// `y: out = a op b` with NumPy broadcasting.
pub(crate) fn binary(
    be: &WgpuBackend,
    op: BinaryOp,
    a: (&Storage, &Shape),
    b: (&Storage, &Shape),
    out: &Shape,
) -> Result<Storage> {
    let n = out.numel();
    let (dims, strides) = coalesce(
        out.dims(),
        &[&a.1.broadcast_strides(out), &b.1.broadcast_strides(out)],
    );
    let mut params = vec![word(n), word(dims.len())];
    params.extend(dims.iter().map(|&d| word(d)));
    for s in &strides {
        params.extend(s.iter().map(|&v| word(v)));
    }
    let code = match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
    };
    let y = be.alloc(DType::F32, n)?;
    be.launch(Dispatch {
        shader: "elementwise",
        entry: "binary",
        constants: &[("BOP", code as f64)],
        params: &params,
        buffers: &[
            (2, y.buffer()),
            (5, be.f32_buffer(a.0)?),
            (6, be.f32_buffer(b.0)?),
        ],
        groups: be.threads(n),
    })?;
    Ok(share(y))
}

/// `y = x * keep / (1 - p)` with the tensor core's counter-based mask.
pub(crate) fn dropout(be: &WgpuBackend, x: &Storage, p: f32, seed: u64) -> Result<Storage> {
    let n = x.len();
    let y = be.alloc(DType::F32, n)?;
    be.launch(Dispatch {
        shader: "elementwise",
        entry: "dropout",
        constants: &[],
        params: &[
            word(n),
            residual_tensor::rng::key32(seed),
            bits(p),
            bits(1.0 / (1.0 - p)),
        ],
        buffers: &[(1, be.f32_buffer(x)?), (2, y.buffer())],
        groups: be.threads(n),
    })?;
    Ok(share(y))
}
