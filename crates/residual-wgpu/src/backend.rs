//! [`WgpuBackend`]: the tensor core's backend trait, each method one or two
//! kernel launches (the kernels live in [`crate::kernels`]).

use crate::context::Context;
use crate::kernels;
use crate::launch::{share, Gpu};
use crate::storage::byte_len;
use residual_tensor::backend::*;
use residual_tensor::{DType, Result, Shape};
use std::sync::Arc;

/// The wgpu backend of one device: the tensor core's [`Backend`] trait on the
/// launch layer.
#[derive(Debug)]
pub struct WgpuBackend {
    gpu: Gpu,
}

impl WgpuBackend {
    /// A backend on a context.
    pub fn new(ctx: Arc<Context>) -> Self {
        WgpuBackend { gpu: Gpu::new(ctx) }
    }

    /// An f32 kernel result `y` in `dtype` (the input's): itself for f32,
    /// rounded once for a half dtype.
    fn narrowed_to(&self, y: Storage, dtype: DType) -> Result<Storage> {
        match dtype {
            DType::F32 => Ok(y),
            half => self.cast(&y, half),
        }
    }

    /// A norm's backward on an input `x` of any dtype: `kernel` runs on `x`
    /// widened to f32 (the WGSL norm kernels read f32), and `dx` comes back
    /// in `x`'s dtype, rounded once, as [`Backend::batch_norm_backward`] and
    /// [`Backend::row_norm_backward`] promise.
    fn norm_backward_of(
        &self,
        x: &Storage,
        kernel: impl FnOnce(&Storage) -> Result<NormGrads>,
    ) -> Result<NormGrads> {
        let mut g = kernel(&widened(self, x)?)?;
        if x.dtype() != DType::F32 {
            g.dx = self.cast(&g.dx, x.dtype())?;
        }
        Ok(g)
    }
}

impl Backend for WgpuBackend {
    fn name(&self) -> String {
        self.gpu.name()
    }

    fn autocast_dtype(&self) -> DType {
        if self.gpu.ctx().has_f16() {
            DType::F16
        } else {
            DType::BF16
        }
    }

    fn upload(&self, data: HostData) -> Result<Storage> {
        let out = self.gpu.alloc(data.dtype(), data.len())?;
        let mut bytes: Vec<u8> = match &data {
            HostData::F32(v) => bytemuck::cast_slice(v).to_vec(),
            HostData::F16(v) => v.iter().flat_map(|h| h.to_bits().to_le_bytes()).collect(),
            HostData::BF16(v) => v.iter().flat_map(|h| h.to_bits().to_le_bytes()).collect(),
        };
        bytes.resize(byte_len(data.dtype(), data.len()) as usize, 0);
        if !bytes.is_empty() {
            self.gpu.ctx().write(out.buffer(), &bytes);
        }
        Ok(share(out))
    }

    fn download(&self, s: &Storage) -> Result<HostData> {
        let g = self.gpu.gpu(s)?;
        let n = g.len();
        let bytes = self.gpu.read(g.buffer(), byte_len(g.dtype(), n))?;
        Ok(match g.dtype() {
            DType::F32 => HostData::F32(bytemuck::pod_collect_to_vec(&bytes)),
            DType::F16 => HostData::F16(
                bytes
                    .chunks_exact(2)
                    .take(n)
                    .map(|b| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])))
                    .collect(),
            ),
            DType::BF16 => HostData::BF16(
                bytes
                    .chunks_exact(2)
                    .take(n)
                    .map(|b| half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])))
                    .collect(),
            ),
        })
    }

    fn full(&self, len: usize, value: f32) -> Result<Storage> {
        kernels::elementwise::fill(&self.gpu, len, value)
    }

    fn cast(&self, s: &Storage, to: DType) -> Result<Storage> {
        kernels::elementwise::cast(&self.gpu, s, to)
    }

    // The elementwise kernels are f32: half operands go through f32 copies
    // and the result is rounded back to their dtype.
    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage> {
        half_through_f32(self, "unary", &[x], |s| {
            kernels::elementwise::unary(&self.gpu, op, s[0])
        })
    }

    fn unary_backward(&self, op: UnaryOp, x: &Storage, dy: &Storage) -> Result<Storage> {
        half_through_f32(self, "unary_backward", &[x, dy], |s| {
            kernels::elementwise::unary_backward(&self.gpu, op, s[0], s[1])
        })
    }

    fn binary(
        &self,
        op: BinaryOp,
        a: (&Storage, &Shape),
        b: (&Storage, &Shape),
        out: &Shape,
    ) -> Result<Storage> {
        half_through_f32(self, "binary", &[a.0, b.0], |s| {
            kernels::elementwise::binary(&self.gpu, op, (s[0], a.1), (s[1], b.1), out)
        })
    }

    fn reduce(&self, op: ReduceOp, x: &Storage, shape: &Shape, axes: &[usize]) -> Result<Storage> {
        kernels::reduce::reduce(&self.gpu, op, x, shape, axes)
    }

    fn argmax(&self, x: &Storage, view: AxisView) -> Result<Vec<u32>> {
        kernels::reduce::argmax(&self.gpu, x, view)
    }

    fn matmul(&self, a: &Storage, b: &Storage, spec: MatmulSpec) -> Result<Storage> {
        half_through_f32(self, "matmul", &[a, b], |s| {
            kernels::gemm::matmul(&self.gpu, s[0], s[1], spec)
        })
    }

    fn strided_copy(
        &self,
        x: &Storage,
        out_shape: &Shape,
        strides: &[usize],
        offset: usize,
    ) -> Result<Storage> {
        kernels::layout::strided_copy(&self.gpu, x, out_shape, strides, offset)
    }

    fn concat(&self, parts: &[(&Storage, usize)], outer: usize, inner: usize) -> Result<Storage> {
        kernels::layout::concat(&self.gpu, parts, outer, inner)
    }

    fn index_select(&self, x: &Storage, view: AxisView, index: &[usize]) -> Result<Storage> {
        kernels::layout::index_select(&self.gpu, x, view, index)
    }

    fn index_add(&self, dy: &Storage, view: AxisView, index: &[usize]) -> Result<Storage> {
        kernels::layout::index_add(&self.gpu, dy, view, index)
    }

    fn conv2d(&self, x: &Storage, w: &Storage, g: &Conv2dGeometry) -> Result<Storage> {
        half_through_f32(self, "conv2d", &[x, w], |s| {
            kernels::gemm::conv2d(&self.gpu, s[0], s[1], g, &ConvEpilogue::default())
        })
    }

    fn conv2d_backward_input(
        &self,
        dy: &Storage,
        w: &Storage,
        g: &Conv2dGeometry,
    ) -> Result<Storage> {
        half_through_f32(self, "conv2d backward (input)", &[dy, w], |s| {
            kernels::gemm::conv2d_backward_input(&self.gpu, s[0], s[1], g)
        })
    }

    fn conv2d_backward_weight(
        &self,
        x: &Storage,
        dy: &Storage,
        g: &Conv2dGeometry,
    ) -> Result<Storage> {
        half_through_f32(self, "conv2d backward (weight)", &[x, dy], |s| {
            kernels::gemm::conv2d_backward_weight(&self.gpu, s[0], s[1], g)
        })
    }

    fn conv2d_fused(
        &self,
        x: &Storage,
        w: &Storage,
        g: &Conv2dGeometry,
        epi: &ConvEpilogue<'_>,
    ) -> Result<Storage> {
        if x.dtype() != DType::F32 {
            return fused_conv_through_f32(self, x, w, g, epi);
        }
        match epi.act {
            None | Some(UnaryOp::Relu) => kernels::gemm::conv2d(&self.gpu, x, w, g, epi),
            Some(act) => {
                let plain = ConvEpilogue { act: None, ..*epi };
                let y = kernels::gemm::conv2d(&self.gpu, x, w, g, &plain)?;
                self.unary(act, &y)
            }
        }
    }

    fn max_pool2d(&self, x: &Storage, g: &Pool2dGeometry) -> Result<Storage> {
        kernels::pool::forward(&self.gpu, kernels::pool::Kind::Max, x, g)
    }

    fn max_pool2d_backward(
        &self,
        x: &Storage,
        dy: &Storage,
        g: &Pool2dGeometry,
    ) -> Result<Storage> {
        kernels::pool::backward(&self.gpu, kernels::pool::Kind::Max, Some(x), dy, g)
    }

    fn avg_pool2d(&self, x: &Storage, g: &Pool2dGeometry) -> Result<Storage> {
        kernels::pool::forward(&self.gpu, kernels::pool::Kind::Avg, x, g)
    }

    fn avg_pool2d_backward(&self, dy: &Storage, g: &Pool2dGeometry) -> Result<Storage> {
        kernels::pool::backward(&self.gpu, kernels::pool::Kind::Avg, None, dy, g)
    }

    fn adaptive_avg_pool2d(&self, x: &Storage, g: &Pool2dGeometry) -> Result<Storage> {
        kernels::pool::forward(&self.gpu, kernels::pool::Kind::Adaptive, x, g)
    }

    fn adaptive_avg_pool2d_backward(&self, dy: &Storage, g: &Pool2dGeometry) -> Result<Storage> {
        kernels::pool::backward(&self.gpu, kernels::pool::Kind::Adaptive, None, dy, g)
    }

    fn batch_norm(
        &self,
        x: &Storage,
        view: AxisView,
        gamma: &Storage,
        beta: &Storage,
        eps: f32,
    ) -> Result<(Storage, NormStats)> {
        let wide = widened(self, x)?;
        let (y, stats) = kernels::norm::batch_norm(&self.gpu, &wide, view, gamma, beta, eps)?;
        Ok((self.narrowed_to(y, x.dtype())?, stats))
    }

    fn batch_norm_backward(
        &self,
        x: &Storage,
        dy: &Storage,
        view: AxisView,
        gamma: &Storage,
        stats: &NormStats,
    ) -> Result<NormGrads> {
        let dy = widened(self, dy)?;
        self.norm_backward_of(x, |wide| {
            kernels::norm::batch_norm_backward(&self.gpu, wide, &dy, view, gamma, stats)
        })
    }

    fn row_norm(
        &self,
        x: &Storage,
        rows: usize,
        cols: usize,
        affine: RowAffine,
        gamma: &Storage,
        beta: &Storage,
        eps: f32,
    ) -> Result<(Storage, NormStats)> {
        let wide = widened(self, x)?;
        let (y, stats) =
            kernels::norm::row_norm(&self.gpu, &wide, rows, cols, affine, gamma, beta, eps)?;
        Ok((self.narrowed_to(y, x.dtype())?, stats))
    }

    fn row_norm_backward(
        &self,
        x: &Storage,
        dy: &Storage,
        rows: usize,
        cols: usize,
        affine: RowAffine,
        gamma: &Storage,
        stats: &NormStats,
    ) -> Result<NormGrads> {
        let dy = widened(self, dy)?;
        self.norm_backward_of(x, |wide| {
            kernels::norm::row_norm_backward(&self.gpu, wide, &dy, rows, cols, affine, gamma, stats)
        })
    }

    fn softmax(&self, x: &Storage, view: AxisView, log: bool) -> Result<Storage> {
        kernels::softmax::softmax(&self.gpu, x, view, log)
    }

    fn softmax_backward(
        &self,
        y: &Storage,
        dy: &Storage,
        view: AxisView,
        log: bool,
    ) -> Result<Storage> {
        kernels::softmax::softmax_backward(&self.gpu, y, dy, view, log)
    }

    fn cross_entropy(
        &self,
        logits: &Storage,
        n: usize,
        c: usize,
        targets: &[usize],
        smoothing: f32,
    ) -> Result<Storage> {
        kernels::softmax::cross_entropy(&self.gpu, logits, n, c, targets, smoothing)
    }

    fn cross_entropy_backward(
        &self,
        logits: &Storage,
        n: usize,
        c: usize,
        targets: &[usize],
        smoothing: f32,
        dloss: &Storage,
    ) -> Result<Storage> {
        kernels::softmax::cross_entropy_backward(&self.gpu, logits, n, c, targets, smoothing, dloss)
    }

    fn sgd_step(
        &self,
        p: &Storage,
        g: &Storage,
        buf: Option<&Storage>,
        h: &SgdHyper,
    ) -> Result<(Storage, Option<Storage>)> {
        kernels::optim::sgd(&self.gpu, p, g, buf, h)
    }

    fn adamw_step(
        &self,
        p: &Storage,
        g: &Storage,
        m: Storage,
        v: Storage,
        h: &AdamWHyper,
    ) -> Result<(Storage, Storage, Storage)> {
        kernels::optim::adamw(&self.gpu, p, g, &m, &v, h)
    }

    fn dropout(&self, x: &Storage, p: f32, seed: u64) -> Result<Storage> {
        kernels::elementwise::dropout(&self.gpu, x, p, seed)
    }
}
