//! Matrix products and the three convolution kernels as tiled (implicit)
//! GEMMs (`shaders/gemm.wgsl`).

use super::word;
use crate::backend::{share, WgpuBackend};
use crate::context::Dispatch;
use residual_tensor::backend::{Conv2dGeometry, ConvEpilogue, MatmulSpec, Storage, UnaryOp};
use residual_tensor::{DType, Error, Result};

/// Rows and columns of C per workgroup (`TILE` in the shader).
const TILE: usize = 64;

/// What one GEMM launch computes.
struct Gemm<'a> {
    mode: u32,
    m: usize,
    n: usize,
    k: usize,
    batch: usize,
    flags: [bool; 4],
    conv: Option<&'a Conv2dGeometry>,
    epilogue: [bool; 3],
}

fn launch(
    be: &WgpuBackend,
    g: Gemm<'_>,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    c: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    residual: Option<&wgpu::Buffer>,
) -> Result<()> {
    let groups = [g.n.div_ceil(TILE), g.m.div_ceil(TILE), g.batch];
    let limit = be.max_groups() as usize;
    if groups.iter().any(|&v| v > limit) {
        return Err(Error::Backend {
            backend: "wgpu".into(),
            msg: format!(
                "a product of {} x {} x {} (batch {}) needs {groups:?} workgroups; this adapter allows \
                 {limit} per dimension (max_compute_workgroups_per_dimension): split the batch",
                g.m, g.k, g.n, g.batch
            ),
        });
    }
    let mut params = vec![word(g.m), word(g.n), word(g.k)];
    params.extend(g.flags.iter().map(|&f| f as u32));
    match g.conv {
        Some(c) => params.extend(
            [
                c.n,
                c.c_in,
                c.h,
                c.w,
                c.c_out,
                c.kh,
                c.kw,
                c.oh,
                c.ow,
                c.p.stride.0,
                c.p.stride.1,
                c.p.padding[0],
                c.p.padding[2],
                c.p.dilation.0,
                c.p.dilation.1,
                c.c_in / c.p.groups,
                c.c_out / c.p.groups,
            ]
            .map(word),
        ),
        None => params.extend([0u32; 17]),
    }
    params.extend(g.epilogue.iter().map(|&f| f as u32));
    let dummy = be.f32_buffer(&be.dummy)?;
    be.launch(Dispatch {
        shader: "gemm",
        entry: "gemm",
        constants: &[("MODE", g.mode as f64)],
        params: &params,
        buffers: &[
            (1, a),
            (2, b),
            (3, c),
            (4, bias.unwrap_or(dummy)),
            (5, residual.unwrap_or(dummy)),
        ],
        groups: [groups[0] as u32, groups[1] as u32, groups[2] as u32],
    })
}

/// `C[b]: [m, n] = op(A[b]) @ op(B[b])`
pub(crate) fn matmul(be: &WgpuBackend, a: &Storage, b: &Storage, s: MatmulSpec) -> Result<Storage> {
    let c = be.alloc(DType::F32, s.batch * s.m * s.n)?;
    launch(
        be,
        Gemm {
            mode: 0,
            m: s.m,
            n: s.n,
            k: s.k,
            batch: s.batch,
            flags: [s.trans_a, s.trans_b, s.a_shared, s.b_shared],
            conv: None,
            epilogue: [false; 3],
        },
        be.f32_buffer(a)?,
        be.f32_buffer(b)?,
        c.buffer(),
        None,
        None,
    )?;
    Ok(share(c))
}

/// `y: [n, c_out, oh, ow] = conv(x, w)` then the epilogue (bias, residual, relu).
pub(crate) fn conv2d(
    be: &WgpuBackend,
    x: &Storage,
    w: &Storage,
    g: &Conv2dGeometry,
    epi: &ConvEpilogue<'_>,
) -> Result<Storage> {
    let y = be.alloc(DType::F32, g.n * g.c_out * g.oh * g.ow)?;
    let groups = g.p.groups;
    let bias = epi.bias.map(|b| be.f32_buffer(b)).transpose()?;
    let residual = epi.residual.map(|r| be.f32_buffer(r)).transpose()?;
    launch(
        be,
        Gemm {
            mode: 1,
            m: g.c_out / groups,
            n: g.n * g.oh * g.ow,
            k: g.c_in / groups * g.kh * g.kw,
            batch: groups,
            flags: [false; 4],
            conv: Some(g),
            epilogue: [
                bias.is_some(),
                residual.is_some(),
                epi.act == Some(UnaryOp::Relu),
            ],
        },
        be.f32_buffer(w)?,
        be.f32_buffer(x)?,
        y.buffer(),
        bias,
        residual,
    )?;
    Ok(share(y))
}

/// `dx: [n, c_in, h, w]` from `dy` and `w`.
pub(crate) fn conv2d_backward_input(
    be: &WgpuBackend,
    dy: &Storage,
    w: &Storage,
    g: &Conv2dGeometry,
) -> Result<Storage> {
    let dx = be.alloc(DType::F32, g.n * g.c_in * g.h * g.w)?;
    let groups = g.p.groups;
    launch(
        be,
        Gemm {
            mode: 2,
            m: g.c_in / groups,
            n: g.n * g.h * g.w,
            k: g.c_out / groups * g.kh * g.kw,
            batch: groups,
            flags: [false; 4],
            conv: Some(g),
            epilogue: [false; 3],
        },
        be.f32_buffer(w)?,
        be.f32_buffer(dy)?,
        dx.buffer(),
        None,
        None,
    )?;
    Ok(share(dx))
}

/// `dw: [c_out, c_in/g, kh, kw]` from `x` and `dy`.
pub(crate) fn conv2d_backward_weight(
    be: &WgpuBackend,
    x: &Storage,
    dy: &Storage,
    g: &Conv2dGeometry,
) -> Result<Storage> {
    let dw = be.alloc(DType::F32, g.c_out * g.c_in / g.p.groups * g.kh * g.kw)?;
    let groups = g.p.groups;
    launch(
        be,
        Gemm {
            mode: 3,
            m: g.c_out / groups,
            n: g.c_in / groups * g.kh * g.kw,
            k: g.n * g.oh * g.ow,
            batch: groups,
            flags: [false; 4],
            conv: Some(g),
            epilogue: [false; 3],
        },
        be.f32_buffer(dy)?,
        be.f32_buffer(x)?,
        dw.buffer(),
        None,
        None,
    )?;
    Ok(share(dw))
}
