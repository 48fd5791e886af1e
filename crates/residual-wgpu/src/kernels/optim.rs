//! Fused SGD and AdamW updates (`shaders/optim.wgsl`).

use super::{bits, word};
use crate::backend::{share, WgpuBackend};
use crate::context::Dispatch;
use residual_tensor::backend::{AdamWHyper, SgdHyper, Storage};
use residual_tensor::{DType, Result};

/// One SGD step: the new parameter and momentum buffer.
pub(crate) fn sgd(
    be: &WgpuBackend,
    p: &Storage,
    g: &Storage,
    buf: Option<&Storage>,
    h: &SgdHyper,
) -> Result<(Storage, Option<Storage>)> {
    let n = p.len();
    let np = be.alloc(DType::F32, n)?;
    let params = [
        word(n),
        bits(h.lr),
        bits(h.momentum),
        bits(h.dampening),
        bits(h.weight_decay),
        h.nesterov as u32,
        buf.is_none() as u32,
    ];
    let (pb, gb) = (be.f32_buffer(p)?, be.f32_buffer(g)?);
    if h.momentum == 0.0 {
        be.launch(Dispatch {
            shader: "optim",
            entry: "sgd",
            constants: &[],
            params: &params,
            buffers: &[(1, pb), (2, gb), (3, np.buffer())],
            groups: be.threads(n),
        })?;
        return Ok((share(np), None));
    }
    let nb = be.alloc(DType::F32, n)?;
    // On the first step the shader does not read the buffer; g stands in.
    let old = match buf {
        Some(b) => be.f32_buffer(b)?,
        None => gb,
    };
    be.launch(Dispatch {
        shader: "optim",
        entry: "sgd_momentum",
        constants: &[],
        params: &params,
        buffers: &[
            (1, pb),
            (2, gb),
            (3, np.buffer()),
            (4, old),
            (5, nb.buffer()),
        ],
        groups: be.threads(n),
    })?;
    Ok((share(np), Some(share(nb))))
}

/// One AdamW step: `(p, m, v)`.
pub(crate) fn adamw(
    be: &WgpuBackend,
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
        be.alloc(DType::F32, n)?,
        be.alloc(DType::F32, n)?,
        be.alloc(DType::F32, n)?,
    );
    be.launch(Dispatch {
        shader: "optim",
        entry: "adamw",
        constants: &[],
        params: &[
            word(n),
            bits(h.lr),
            bits(h.beta1),
            bits(h.beta2),
            bits(h.eps),
            bits(h.weight_decay),
            bits(h.lr / bc1),
            bits(bc2.sqrt()),
        ],
        buffers: &[
            (1, be.f32_buffer(p)?),
            (2, be.f32_buffer(g)?),
            (3, np.buffer()),
            (6, be.f32_buffer(m)?),
            (7, be.f32_buffer(v)?),
            (8, nm.buffer()),
            (9, nv.buffer()),
        ],
        groups: be.threads(n),
    })?;
    Ok((share(np), share(nm), share(nv)))
}
