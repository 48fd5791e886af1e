//! Matrix products and the three convolution kernels as tiled (implicit)
//! GEMMs (`shaders/gemm.wgsl`).

use crate::contract::gemm::{self as abi, GemmParams};
use crate::launch::{share, word, Gpu, Launch};
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
    gpu: &Gpu,
    g: Gemm<'_>,
    a: &wgpu::Buffer,
    b: &wgpu::Buffer,
    c: &wgpu::Buffer,
    bias: Option<&wgpu::Buffer>,
    residual: Option<&wgpu::Buffer>,
) -> Result<()> {
    let groups = [g.n.div_ceil(TILE), g.m.div_ceil(TILE), g.batch];
    let limit = gpu.max_groups() as usize;
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
    let mut params = GemmParams {
        m: word(g.m),
        n: word(g.n),
        k: word(g.k),
        trans_a: g.flags[0] as u32,
        trans_b: g.flags[1] as u32,
        a_shared: g.flags[2] as u32,
        b_shared: g.flags[3] as u32,
        has_bias: g.epilogue[0] as u32,
        has_residual: g.epilogue[1] as u32,
        relu: g.epilogue[2] as u32,
        ..Default::default()
    };
    if let Some(c) = g.conv {
        params = GemmParams {
            batch: word(c.n),
            c_in: word(c.c_in),
            h: word(c.h),
            w: word(c.w),
            c_out: word(c.c_out),
            kh: word(c.kh),
            kw: word(c.kw),
            oh: word(c.oh),
            ow: word(c.ow),
            sh: word(c.p.stride.0),
            sw: word(c.p.stride.1),
            pt: word(c.p.padding[0]),
            pl: word(c.p.padding[2]),
            dh: word(c.p.dilation.0),
            dw: word(c.p.dilation.1),
            cin_g: word(c.c_in / c.p.groups),
            cout_g: word(c.c_out / c.p.groups),
            ..params
        };
    }
    let dummy = gpu.dummy();
    gpu.launch(Launch {
        entry: abi::GEMM,
        constants: &[("MODE", g.mode as f64)],
        params,
        tables: &[],
        buffers: &[
            (abi::A, a),
            (abi::B, b),
            (abi::C, c),
            (abi::BIAS, bias.unwrap_or(dummy)),
            (abi::RESIDUAL, residual.unwrap_or(dummy)),
        ],
        groups: [groups[0] as u32, groups[1] as u32, groups[2] as u32],
    })
}

/// `C[b]: [m, n] = op(A[b]) @ op(B[b])`
pub(crate) fn matmul(gpu: &Gpu, a: &Storage, b: &Storage, s: MatmulSpec) -> Result<Storage> {
    let c = gpu.alloc(DType::F32, s.batch * s.m * s.n)?;
    launch(
        gpu,
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
        gpu.f32_buffer(a)?,
        gpu.f32_buffer(b)?,
        c.buffer(),
        None,
        None,
    )?;
    Ok(share(c))
}

/// `y: [n, c_out, oh, ow] = conv(x, w)` then the epilogue (bias, residual, relu).
pub(crate) fn conv2d(
    gpu: &Gpu,
    x: &Storage,
    w: &Storage,
    g: &Conv2dGeometry,
    epi: &ConvEpilogue<'_>,
) -> Result<Storage> {
    let y = gpu.alloc(DType::F32, g.n * g.c_out * g.oh * g.ow)?;
    let groups = g.p.groups;
    let bias = epi.bias.map(|b| gpu.f32_buffer(b)).transpose()?;
    let residual = epi.residual.map(|r| gpu.f32_buffer(r)).transpose()?;
    launch(
        gpu,
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
        gpu.f32_buffer(w)?,
        gpu.f32_buffer(x)?,
        y.buffer(),
        bias,
        residual,
    )?;
    Ok(share(y))
}

/// `dx: [n, c_in, h, w]` from `dy` and `w`.
pub(crate) fn conv2d_backward_input(
    gpu: &Gpu,
    dy: &Storage,
    w: &Storage,
    g: &Conv2dGeometry,
) -> Result<Storage> {
    let dx = gpu.alloc(DType::F32, g.n * g.c_in * g.h * g.w)?;
    let groups = g.p.groups;
    launch(
        gpu,
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
        gpu.f32_buffer(w)?,
        gpu.f32_buffer(dy)?,
        dx.buffer(),
        None,
        None,
    )?;
    Ok(share(dx))
}

/// `dw: [c_out, c_in/g, kh, kw]` from `x` and `dy`.
pub(crate) fn conv2d_backward_weight(
    gpu: &Gpu,
    x: &Storage,
    dy: &Storage,
    g: &Conv2dGeometry,
) -> Result<Storage> {
    let dw = gpu.alloc(DType::F32, g.c_out * g.c_in / g.p.groups * g.kh * g.kw)?;
    let groups = g.p.groups;
    launch(
        gpu,
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
        gpu.f32_buffer(dy)?,
        gpu.f32_buffer(x)?,
        dw.buffer(),
        None,
        None,
    )?;
    Ok(share(dw))
}
