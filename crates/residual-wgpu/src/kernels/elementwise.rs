//! Fill, casts, unary functions and derivatives, broadcasting binary ops, dropout
//! (`shaders/fill.wgsl`, `cast.wgsl`, `elementwise.wgsl`).

use crate::contract::cast::{self as cs, CastParams};
use crate::contract::elementwise::{self as ew, BinaryParams, DropoutParams, UnaryParams};
use crate::contract::fill::{self, FillParams};
use crate::launch::{share, word, Gpu, Launch};
use residual_tensor::backend::{coalesce, BackendStorage, BinaryOp, Storage, UnaryOp};
use residual_tensor::{DType, Result, Shape};

/// `out: [len] = value`
pub(crate) fn fill(gpu: &Gpu, len: usize, value: f32) -> Result<Storage> {
    let out = gpu.alloc(DType::F32, len)?;
    gpu.launch(Launch {
        entry: fill::FILL,
        constants: &[],
        params: FillParams {
            n: word(len),
            value,
            ..Default::default()
        },
        tables: &[],
        buffers: &[(fill::OUT, out.buffer())],
        groups: gpu.threads(len),
    })?;
    Ok(share(out))
}

/// Converts between f32, f16 and bf16 (16-bit types go through f32).
pub(crate) fn cast(gpu: &Gpu, s: &Storage, to: DType) -> Result<Storage> {
    let from = gpu.gpu(s)?.dtype();
    if from == to {
        return Ok(s.clone());
    }
    if from != DType::F32 && to != DType::F32 {
        let wide = cast(gpu, s, DType::F32)?;
        return cast(gpu, &wide, to);
    }
    let n = s.len();
    let entry = match (from, to) {
        (DType::F32, DType::F16) => cs::F32_TO_F16,
        (DType::F32, DType::BF16) => cs::F32_TO_BF16,
        (DType::F16, _) => cs::F16_TO_F32,
        _ => cs::BF16_TO_F32,
    };
    let out = gpu.alloc(to, n)?;
    gpu.launch(Launch {
        entry,
        constants: &[],
        params: CastParams {
            n: word(n),
            ..Default::default()
        },
        tables: &[],
        buffers: &[(cs::SRC, gpu.gpu(s)?.buffer()), (cs::DST, out.buffer())],
        groups: gpu.threads(n.div_ceil(2)),
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

fn unary_params(n: usize, p0: f32, p1: f32) -> UnaryParams {
    UnaryParams {
        n: word(n),
        p0,
        p1,
        ..Default::default()
    }
}

/// `y: [n] = f(x)`
pub(crate) fn unary(gpu: &Gpu, op: UnaryOp, x: &Storage) -> Result<Storage> {
    let n = x.len();
    let (code, p0, p1) = op_code(op);
    let out = gpu.alloc(DType::F32, n)?;
    gpu.launch(Launch {
        entry: ew::UNARY,
        constants: &[("OP", code as f64)],
        params: unary_params(n, p0, p1),
        tables: &[],
        buffers: &[(ew::X, gpu.f32_buffer(x)?), (ew::Y, out.buffer())],
        groups: gpu.threads(n),
    })?;
    Ok(share(out))
}

/// `dx: [n] = dy * f'(x)`
pub(crate) fn unary_backward(gpu: &Gpu, op: UnaryOp, x: &Storage, dy: &Storage) -> Result<Storage> {
    let n = x.len();
    let (code, p0, p1) = op_code(op);
    let out = gpu.alloc(DType::F32, n)?;
    gpu.launch(Launch {
        entry: ew::UNARY_BACKWARD,
        constants: &[("OP", code as f64)],
        params: unary_params(n, p0, p1),
        tables: &[],
        buffers: &[
            (ew::X, gpu.f32_buffer(x)?),
            (ew::DY, gpu.f32_buffer(dy)?),
            (ew::DX, out.buffer()),
        ],
        groups: gpu.threads(n),
    })?;
    Ok(share(out))
}

/// `y: out = a op b` with NumPy broadcasting.
pub(crate) fn binary(
    gpu: &Gpu,
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
    // shape: [dims[rank], a_strides[rank], b_strides[rank]]
    let mut shape: Vec<u32> = dims.iter().map(|&d| word(d)).collect();
    for s in &strides {
        shape.extend(s.iter().map(|&v| word(v)));
    }
    let code = match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
    };
    let y = gpu.alloc(DType::F32, n)?;
    gpu.launch(Launch {
        entry: ew::BINARY,
        constants: &[("BOP", code as f64)],
        params: BinaryParams {
            n: word(n),
            rank: word(dims.len()),
            ..Default::default()
        },
        tables: &[(ew::SHAPE, &shape)],
        buffers: &[
            (ew::Y, y.buffer()),
            (ew::A, gpu.f32_buffer(a.0)?),
            (ew::B, gpu.f32_buffer(b.0)?),
        ],
        groups: gpu.threads(n),
    })?;
    Ok(share(y))
}

/// `y = x * keep / (1 - p)` with the tensor core's counter-based mask.
pub(crate) fn dropout(gpu: &Gpu, x: &Storage, p: f32, seed: u64) -> Result<Storage> {
    let n = x.len();
    let y = gpu.alloc(DType::F32, n)?;
    gpu.launch(Launch {
        entry: ew::DROPOUT,
        constants: &[],
        params: DropoutParams {
            n: word(n),
            key: residual_tensor::rng::key32(seed),
            p,
            scale: 1.0 / (1.0 - p),
        },
        tables: &[],
        buffers: &[(ew::X, gpu.f32_buffer(x)?), (ew::Y, y.buffer())],
        groups: gpu.threads(n),
    })?;
    Ok(share(y))
}
