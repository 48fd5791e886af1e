//! Fused SGD and AdamW updates (`shaders/optim.wgsl`).

use crate::contract::optim::{self as abi, AdamWParams, SgdParams};
use crate::launch::{share, word, Gpu, Launch};
use residual_tensor::backend::{AdamWHyper, SgdHyper, Storage};
use residual_tensor::{DType, Result};

/// One SGD step: the new parameter and momentum buffer.
pub(crate) fn sgd(
    gpu: &Gpu,
    p: &Storage,
    g: &Storage,
    buf: Option<&Storage>,
    h: &SgdHyper,
) -> Result<(Storage, Option<Storage>)> {
    let n = p.len();
    let np = gpu.alloc(DType::F32, n)?;
    let params = SgdParams {
        n: word(n),
        lr: h.lr,
        momentum: h.momentum,
        dampening: h.dampening,
        weight_decay: h.weight_decay,
        nesterov: h.nesterov as u32,
        first: buf.is_none() as u32,
        ..Default::default()
    };
    let (pb, gb) = (gpu.f32_buffer(p)?, gpu.f32_buffer(g)?);
    if h.momentum == 0.0 {
        gpu.launch(Launch {
            entry: abi::SGD,
            constants: &[],
            params,
            tables: &[],
            buffers: &[(abi::P, pb), (abi::G, gb), (abi::P_OUT, np.buffer())],
            groups: gpu.threads(n),
        })?;
        return Ok((share(np), None));
    }
    let nb = gpu.alloc(DType::F32, n)?;
    // On the first step the shader does not read the buffer; g stands in.
    let old = match buf {
        Some(b) => gpu.f32_buffer(b)?,
        None => gb,
    };
    gpu.launch(Launch {
        entry: abi::SGD_MOMENTUM,
        constants: &[],
        params,
        tables: &[],
        buffers: &[
            (abi::P, pb),
            (abi::G, gb),
            (abi::P_OUT, np.buffer()),
            (abi::BUF, old),
            (abi::BUF_OUT, nb.buffer()),
        ],
        groups: gpu.threads(n),
    })?;
    Ok((share(np), Some(share(nb))))
}

/// One AdamW step: `(p, m, v)`.
pub(crate) fn adamw(
    gpu: &Gpu,
    p: &Storage,
    g: &Storage,
    m: &Storage,
    v: &Storage,
    h: &AdamWHyper,
) -> Result<(Storage, Storage, Storage)> {
    let n = p.len();
    let bc1 = 1.0 - h.beta1.powi(h.step as i32);
    let bc2 = 1.0 - h.beta2.powi(h.step as i32);
    let (np, nm, nv) = (
        gpu.alloc(DType::F32, n)?,
        gpu.alloc(DType::F32, n)?,
        gpu.alloc(DType::F32, n)?,
    );
    gpu.launch(Launch {
        entry: abi::ADAMW,
        constants: &[],
        params: AdamWParams {
            n: word(n),
            lr: h.lr,
            beta1: h.beta1,
            beta2: h.beta2,
            eps: h.eps,
            weight_decay: h.weight_decay,
            step_size: h.lr / bc1,
            bc2_sqrt: bc2.sqrt(),
        },
        tables: &[],
        buffers: &[
            (abi::P, gpu.f32_buffer(p)?),
            (abi::G, gpu.f32_buffer(g)?),
            (abi::P_OUT, np.buffer()),
            (abi::M, gpu.f32_buffer(m)?),
            (abi::V, gpu.f32_buffer(v)?),
            (abi::M_OUT, nm.buffer()),
            (abi::V_OUT, nv.buffer()),
        ],
        groups: gpu.threads(n),
    })?;
    Ok((share(np), share(nm), share(nv)))
}
