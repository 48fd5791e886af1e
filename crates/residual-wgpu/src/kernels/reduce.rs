//! Sum / max over axes and argmax (`shaders/reduce.wgsl`).

use crate::contract::reduce::{self as abi, ArgmaxParams, ReduceParams};
use crate::launch::{share, word, Gpu, Launch};
use residual_tensor::backend::{coalesce, AxisView, ReduceOp, Storage};
use residual_tensor::{DType, Result, Shape};

/// Reduces `x: shape` over the sorted `axes`; one workgroup per output element.
pub(crate) fn reduce(
    gpu: &Gpu,
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
    // shape: [kept_dims, kept_strides, red_dims, red_strides]
    let shape: Vec<u32> = [&kept_dims, &kept_strides[0], &red_dims, &red_strides[0]]
        .iter()
        .flat_map(|v| v.iter().map(|&d| word(d)))
        .collect();
    let y = gpu.alloc(DType::F32, n_out)?;
    let code = match op {
        ReduceOp::Sum => 0,
        ReduceOp::Max => 1,
    };
    gpu.launch(Launch {
        entry: abi::REDUCE,
        constants: &[("OP", code as f64)],
        params: ReduceParams {
            n_out: word(n_out),
            kept_rank: word(kept_dims.len()),
            red_rank: word(red_dims.len()),
            count: word(count),
        },
        tables: &[(abi::SHAPE, &shape)],
        buffers: &[(abi::X, gpu.f32_buffer(x)?), (abi::Y, y.buffer())],
        groups: gpu.workgroups(n_out),
    })?;
    Ok(share(y))
}

/// First index of the maximum along the axis, read back to the host.
pub(crate) fn argmax(gpu: &Gpu, x: &Storage, v: AxisView) -> Result<Vec<u32>> {
    let n = v.outer * v.inner;
    if n == 0 {
        return Ok(Vec::new());
    }
    let out = gpu.alloc(DType::F32, n)?;
    gpu.launch(Launch {
        entry: abi::ARGMAX,
        constants: &[],
        params: ArgmaxParams {
            outer: word(v.outer),
            len: word(v.len),
            inner: word(v.inner),
            ..Default::default()
        },
        tables: &[],
        buffers: &[(abi::X, gpu.f32_buffer(x)?), (abi::INDICES, out.buffer())],
        groups: gpu.threads(n),
    })?;
    let bytes = gpu.read(out.buffer(), 4 * n as u64)?;
    Ok(bytemuck::pod_collect_to_vec(&bytes))
}
