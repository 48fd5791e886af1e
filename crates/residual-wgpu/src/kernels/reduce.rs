//! Sum / max over axes and argmax (`shaders/reduce.wgsl`).

use super::word;
use crate::backend::{share, WgpuBackend};
use crate::context::Dispatch;
use residual_tensor::backend::{coalesce, AxisView, ReduceOp, Storage};
use residual_tensor::{DType, Result, Shape};

/// Reduces `x: shape` over the sorted `axes`; one workgroup per output element.
pub(crate) fn reduce(
    be: &WgpuBackend,
    op: ReduceOp,
    x: &Storage,
    shape: &Shape,
    axes: &[usize],
) -> Result<Storage> {
    let dims = shape.dims();
    let strides = shape.strides();
    let split = |keep: bool| -> (Vec<usize>, Vec<usize>) {
        let idx: Vec<usize> = (0..dims.len())
            .filter(|d| axes.contains(d) != keep)
            .collect();
        (
            idx.iter().map(|&d| dims[d]).collect(),
            idx.iter().map(|&d| strides[d]).collect(),
        )
    };
    let (kept_dims, kept_strides) = split(true);
    let (red_dims, red_strides) = split(false);
    let (kept_dims, kept_strides) = coalesce(&kept_dims, &[&kept_strides]);
    let (red_dims, red_strides) = coalesce(&red_dims, &[&red_strides]);
    let n_out: usize = kept_dims.iter().product();
    let count: usize = red_dims.iter().product();
    let mut params = vec![
        word(n_out),
        word(kept_dims.len()),
        word(red_dims.len()),
        word(count),
    ];
    params.extend(kept_dims.iter().map(|&v| word(v)));
    params.extend(kept_strides[0].iter().map(|&v| word(v)));
    params.extend(red_dims.iter().map(|&v| word(v)));
    params.extend(red_strides[0].iter().map(|&v| word(v)));
    let y = be.alloc(DType::F32, n_out)?;
    let code = match op {
        ReduceOp::Sum => 0,
        ReduceOp::Max => 1,
    };
    be.launch(Dispatch {
        shader: "reduce",
        entry: "reduce",
        constants: &[("OP", code as f64)],
        params: &params,
        buffers: &[(1, be.f32_buffer(x)?), (2, y.buffer())],
        groups: be.workgroups(n_out),
    })?;
    Ok(share(y))
}

/// First index of the maximum along the axis, read back to the host.
pub(crate) fn argmax(be: &WgpuBackend, x: &Storage, v: AxisView) -> Result<Vec<u32>> {
    let n = v.outer * v.inner;
    if n == 0 {
        return Ok(Vec::new());
    }
    let out = be.alloc(DType::F32, n)?;
    be.launch(Dispatch {
        shader: "reduce",
        entry: "argmax",
        constants: &[],
        params: &[word(v.outer), word(v.len), word(v.inner)],
        buffers: &[(1, be.f32_buffer(x)?), (3, out.buffer())],
        groups: be.threads(n),
    })?;
    let bytes = be.ctx.read(out.buffer(), 4 * n as u64)?;
    Ok(bytemuck::pod_collect_to_vec(&bytes))
}
