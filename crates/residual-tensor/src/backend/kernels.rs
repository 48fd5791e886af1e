//! The [`Backend`] trait: one method per primitive kernel.

use super::attention::AttentionSpec;
use super::params::{
    AdamWHyper, AxisView, BinaryOp, Conv2dGeometry, ConvEpilogue, MatmulSpec, NormGrads, NormStats,
    Pool2dGeometry, ReduceOp, RowAffine, SgdHyper, UnaryOp,
};
use super::storage::{HostData, Storage};
use crate::{DType, Error, Result, Shape};
use std::fmt::Debug;

/// A compute backend. Implemented by the CPU backend in this crate and by
/// other crates (wgpu) for their devices; see the crate docs for the contract.
///
/// Shapes in comments: `x: [n, c, h, w]` and so on; all storage is dense.
pub trait Backend: Send + Sync + Debug {
    /// A short human name, e.g. `"cpu"` or `"wgpu:lavapipe"`.
    fn name(&self) -> String;

    /// The half-precision dtype that autocast uses on this device (PyTorch's
    /// choice: bf16 on the CPU, f16 on a GPU with f16 arithmetic).
    fn autocast_dtype(&self) -> DType {
        DType::BF16
    }

    // ---- memory -------------------------------------------------------
    /// Uploads host data.
    fn upload(&self, data: HostData) -> Result<Storage>;
    /// Reads storage back to the host.
    fn download(&self, s: &Storage) -> Result<HostData>;
    /// A storage of `len` copies of `value` (f32).
    fn full(&self, len: usize, value: f32) -> Result<Storage>;
    /// Converts between dtypes (round to nearest even).
    fn cast(&self, s: &Storage, to: DType) -> Result<Storage>;

    // ---- elementwise --------------------------------------------------
    /// `y = f(x)`, in `x`'s dtype: a half `x` is computed in f32 and the
    /// result rounded once (a backend may do so through an f32 copy).
    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage>;
    /// `dx = dy * f'(x)`. For [`UnaryOp::Relu`], `x` may be the forward's
    /// output instead (autograd passes it: `y <= 0` exactly where `x <= 0`).
    /// `x` and `dy` have one dtype, which `dx` has (half: f32 arithmetic,
    /// rounded once); two dtypes are an error.
    fn unary_backward(&self, op: UnaryOp, x: &Storage, dy: &Storage) -> Result<Storage>;
    /// `out = a op b`, both read broadcast to `out` (a NumPy broadcast of both
    /// shapes). `a` and `b` have one dtype, which `out` has (half: f32
    /// arithmetic, rounded once); two dtypes are an error.
    fn binary(
        &self,
        op: BinaryOp,
        a: (&Storage, &Shape),
        b: (&Storage, &Shape),
        out: &Shape,
    ) -> Result<Storage>;

    // ---- reductions ---------------------------------------------------
    /// Reduces `x: shape` over the sorted `axes`; the result has `shape` with
    /// those axes set to 1.
    fn reduce(&self, op: ReduceOp, x: &Storage, shape: &Shape, axes: &[usize]) -> Result<Storage>;
    /// Index of the maximum along the axis (first on ties); `outer * inner` indices.
    fn argmax(&self, x: &Storage, view: AxisView) -> Result<Vec<u32>>;

    // ---- linear algebra -----------------------------------------------
    // The GEMM kernels (matmul and the three convolutions) take f32 or
    // half-precision operands, both of one dtype, and return that dtype: the
    // products accumulate in f32 and the result is rounded once. Besides
    // them, the elementwise kernels (`unary`, `unary_backward`, `binary`) and
    // the norm kernels take half storage too (see their docs); every other
    // kernel takes f32. [`half_through_f32`] implements the half case for a
    // backend without native half kernels.

    /// Batched matrix product, see [`MatmulSpec`]. Result `[batch, m, n]`.
    fn matmul(&self, a: &Storage, b: &Storage, spec: MatmulSpec) -> Result<Storage>;

    /// A fully connected layer's product `y[m, n] = x[m, k] @ w[n, k]^T`
    /// (`spec`: one product, B read transposed), where `w` is the layer's
    /// weight: a backend may keep a prepared form of it between calls
    /// outside gradient recording (the CPU's packed B). The default is
    /// [`Backend::matmul`].
    fn linear(&self, x: &Storage, w: &Storage, spec: MatmulSpec) -> Result<Storage> {
        self.matmul(x, w, spec)
    }

    /// Scaled dot-product attention `o = softmax(scale * q k^T) v` (see
    /// [`AttentionSpec`] for the shapes; f32 operands). Returns `o` and what
    /// [`Backend::attention_backward`] of the same backend reads (the
    /// composition: the weights `[batch, tq, tk]`; the CPU's fused kernel:
    /// the rows' log-sum-exp). The default is the composition
    /// ([`Backend::attention_composed`]); a fused override must match it.
    fn attention(
        &self,
        q: &Storage,
        k: &Storage,
        v: &Storage,
        spec: AttentionSpec,
    ) -> Result<(Storage, Storage)> {
        self.attention_composed(q, k, v, spec)
    }
    /// Backward of [`Backend::attention`]: `[dq, dk, dv]` from the inputs,
    /// the output `o`, the forward's `saved` storage and `d_o` (f32).
    #[allow(clippy::too_many_arguments)]
    fn attention_backward(
        &self,
        q: &Storage,
        k: &Storage,
        v: &Storage,
        o: &Storage,
        saved: &Storage,
        d_o: &Storage,
        spec: AttentionSpec,
    ) -> Result<[Storage; 3]> {
        let _ = o;
        self.attention_backward_composed(q, k, v, saved, d_o, spec)
    }
    /// Attention composed of the other kernels (not meant to be overridden):
    /// `s = scale * q @ k^T` (a batched GEMM reading K transposed in place),
    /// `p = softmax(s)` along the keys, `o = p @ v`. Returns `(o, p)`.
    fn attention_composed(
        &self,
        q: &Storage,
        k: &Storage,
        v: &Storage,
        s: AttentionSpec,
    ) -> Result<(Storage, Storage)> {
        let shape = s.weights_shape();
        let scale = self.full(1, s.scale)?;
        let one = Shape::new([1, 1, 1]);
        let scores = self.matmul(q, k, s.gemm(s.tq, s.d, s.tk, false, true))?;
        let scores = self.binary(BinaryOp::Mul, (&scores, &shape), (&scale, &one), &shape)?;
        let p = self.softmax(&scores, s.rows(), false)?;
        let o = self.matmul(&p, v, s.gemm(s.tq, s.tk, s.dv, false, false))?;
        Ok((o, p))
    }
    /// The composed backward from the weights `p` of
    /// [`Backend::attention_composed`]: `dv = p^T @ do`, `dp = do @ v^T`,
    /// `ds = scale * p * (dp - sum(dp * p))` (the softmax backward),
    /// `dq = ds @ k`, `dk = ds^T @ q`. Returns `[dq, dk, dv]`.
    fn attention_backward_composed(
        &self,
        q: &Storage,
        k: &Storage,
        v: &Storage,
        p: &Storage,
        d_o: &Storage,
        s: AttentionSpec,
    ) -> Result<[Storage; 3]> {
        let shape = s.weights_shape();
        let scale = self.full(1, s.scale)?;
        let one = Shape::new([1, 1, 1]);
        let dv = self.matmul(p, d_o, s.gemm(s.tk, s.tq, s.dv, true, false))?;
        let dp = self.matmul(d_o, v, s.gemm(s.tq, s.dv, s.tk, false, true))?;
        let ds = self.softmax_backward(p, &dp, s.rows(), false)?;
        let ds = self.binary(BinaryOp::Mul, (&ds, &shape), (&scale, &one), &shape)?;
        let dq = self.matmul(&ds, k, s.gemm(s.tq, s.tk, s.d, false, false))?;
        let dk = self.matmul(&ds, q, s.gemm(s.tk, s.tq, s.d, true, false))?;
        Ok([dq, dk, dv])
    }

    // ---- layout -------------------------------------------------------
    /// Gathers `out[i] = x[offset + sum(i_d * strides[d])]` for every index of
    /// `out_shape`: permutes, slices and broadcasts in one kernel.
    fn strided_copy(
        &self,
        x: &Storage,
        out_shape: &Shape,
        strides: &[usize],
        offset: usize,
    ) -> Result<Storage>;
    /// Concatenates along an axis; parts are `(storage, length along the axis)`,
    /// all with the same `outer` and `inner` sizes.
    fn concat(&self, parts: &[(&Storage, usize)], outer: usize, inner: usize) -> Result<Storage>;
    /// `out[o, j, i] = x[o, index[j], i]`.
    fn index_select(&self, x: &Storage, view: AxisView, index: &[usize]) -> Result<Storage>;
    /// Backward of `index_select`: `dx[o, index[j], i] += dy[o, j, i]`, `dx` with
    /// `len` rows along the axis and `dy` with `index.len()`.
    fn index_add(&self, dy: &Storage, view: AxisView, index: &[usize]) -> Result<Storage>;

    // ---- convolution --------------------------------------------------
    /// `y: [n, c_out, oh, ow] = conv(x: [n, c_in, h, w], w: [c_out, c_in/g, kh, kw])`.
    fn conv2d(&self, x: &Storage, w: &Storage, g: &Conv2dGeometry) -> Result<Storage>;
    /// `dx: [n, c_in, h, w]` from `dy: [n, c_out, oh, ow]` and `w`.
    fn conv2d_backward_input(
        &self,
        dy: &Storage,
        w: &Storage,
        g: &Conv2dGeometry,
    ) -> Result<Storage>;
    /// `dw: [c_out, c_in/g, kh, kw]` from `x` and `dy`.
    fn conv2d_backward_weight(
        &self,
        x: &Storage,
        dy: &Storage,
        g: &Conv2dGeometry,
    ) -> Result<Storage>;

    /// Inference convolution with a fused epilogue:
    /// `y = act(conv(x, w) + bias[c] + residual)`, each part optional (see
    /// [`ConvEpilogue`]). `x` and `w` are of one dtype, f32 or half
    /// precision; the bias is f32 and the residual of `x`'s dtype; the result
    /// has `x`'s dtype, the epilogue computed in f32 and rounded once (the
    /// half-precision inference path). The default composes the other
    /// kernels (half operands through [`fused_conv_through_f32`]); a backend
    /// overrides it to apply the epilogue in one pass.
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
        let out = Shape::new([g.n, g.c_out, g.oh, g.ow]);
        let mut y = self.conv2d(x, w, g)?;
        if let Some(b) = epi.bias {
            y = self.binary(
                BinaryOp::Add,
                (&y, &out),
                (b, &Shape::new([1, g.c_out, 1, 1])),
                &out,
            )?;
        }
        if let Some(r) = epi.residual {
            y = self.binary(BinaryOp::Add, (&y, &out), (r, &out), &out)?;
        }
        if let Some(a) = epi.act {
            y = self.unary(a, &y)?;
        }
        Ok(y)
    }

    // ---- pooling ------------------------------------------------------
    /// `y: [planes, oh, ow]` = max over each window of `x: [planes, h, w]`.
    fn max_pool2d(&self, x: &Storage, g: &Pool2dGeometry) -> Result<Storage>;
    /// Routes `dy` to the first maximum of each window (as PyTorch).
    fn max_pool2d_backward(&self, x: &Storage, dy: &Storage, g: &Pool2dGeometry)
        -> Result<Storage>;
    /// Average over each window.
    fn avg_pool2d(&self, x: &Storage, g: &Pool2dGeometry) -> Result<Storage>;
    /// Spreads `dy` evenly over each window.
    fn avg_pool2d_backward(&self, dy: &Storage, g: &Pool2dGeometry) -> Result<Storage>;
    /// PyTorch's adaptive average pooling: `[planes, h, w] -> [planes, oh, ow]`,
    /// window `i` spans `floor(i*h/oh) .. ceil((i+1)*h/oh)`.
    fn adaptive_avg_pool2d(&self, x: &Storage, g: &Pool2dGeometry) -> Result<Storage>;
    /// Backward of adaptive average pooling.
    fn adaptive_avg_pool2d_backward(&self, dy: &Storage, g: &Pool2dGeometry) -> Result<Storage>;

    // ---- normalisation ------------------------------------------------
    /// Normalises `x: [outer, groups, inner]` over `(outer, inner)` for each of
    /// `groups` (batch norm: `[n, c, h*w]`), then `y = xhat * gamma[g] + beta[g]`.
    /// Returns `y` and the per-group statistics (biased variance). `x` may be
    /// of any dtype (mixed precision feeds it a half convolution output); the
    /// arithmetic and the statistics are f32, and `y` has `x`'s dtype (rounded
    /// once), as PyTorch's batch norm of a bf16 input.
    fn batch_norm(
        &self,
        x: &Storage,
        view: AxisView,
        gamma: &Storage,
        beta: &Storage,
        eps: f32,
    ) -> Result<(Storage, NormStats)>;
    /// Fused backward of [`Backend::batch_norm`]: `dy` is f32 or of `x`'s
    /// dtype, `dx` has the dtype of `x` (rounded once), `dgamma` and `dbeta`
    /// are f32.
    fn batch_norm_backward(
        &self,
        x: &Storage,
        dy: &Storage,
        view: AxisView,
        gamma: &Storage,
        stats: &NormStats,
    ) -> Result<NormGrads>;
    /// Normalises each of `rows` rows of `x: [rows, cols]`, then applies the affine
    /// transform with `gamma`/`beta` indexed by `(col / per_channel) % channels`.
    /// Layer norm: `per_channel = 1, channels = cols`; group norm over `[n, c, hw]`
    /// with `rows = n * groups`: `per_channel = hw`, `channels = c / groups` offset by group.
    /// `x` may be of any dtype, as for [`Backend::batch_norm`]; the arithmetic
    /// and the statistics are f32, and `y` has `x`'s dtype (rounded once).
    #[allow(clippy::too_many_arguments)]
    fn row_norm(
        &self,
        x: &Storage,
        rows: usize,
        cols: usize,
        affine: RowAffine,
        gamma: &Storage,
        beta: &Storage,
        eps: f32,
    ) -> Result<(Storage, NormStats)>;
    /// Fused backward of [`Backend::row_norm`]: `dy` is f32 or of `x`'s
    /// dtype, `dx` has the dtype of `x` (rounded once), `dgamma` and `dbeta`
    /// are f32.
    #[allow(clippy::too_many_arguments)]
    fn row_norm_backward(
        &self,
        x: &Storage,
        dy: &Storage,
        rows: usize,
        cols: usize,
        affine: RowAffine,
        gamma: &Storage,
        stats: &NormStats,
    ) -> Result<NormGrads>;

    // ---- softmax and losses ------------------------------------------
    /// Softmax (or log-softmax when `log`) along the axis of `view`.
    fn softmax(&self, x: &Storage, view: AxisView, log: bool) -> Result<Storage>;
    /// Backward from the forward's output `y`: softmax `dx = y * (dy - sum(dy*y))`,
    /// log-softmax `dx = dy - exp(y) * sum(dy)`.
    fn softmax_backward(
        &self,
        y: &Storage,
        dy: &Storage,
        view: AxisView,
        log: bool,
    ) -> Result<Storage>;
    /// Mean cross-entropy of `logits: [n, c]` against class `targets` with label
    /// smoothing `eps`: a one-element storage.
    fn cross_entropy(
        &self,
        logits: &Storage,
        n: usize,
        c: usize,
        targets: &[usize],
        smoothing: f32,
    ) -> Result<Storage>;
    /// `dlogits = dloss * (softmax(logits) - ((1-eps) onehot + eps/c)) / n`.
    #[allow(clippy::too_many_arguments)]
    fn cross_entropy_backward(
        &self,
        logits: &Storage,
        n: usize,
        c: usize,
        targets: &[usize],
        smoothing: f32,
        dloss: &Storage,
    ) -> Result<Storage>;

    // ---- optimizer updates ---------------------------------------------
    /// One SGD step as `torch.optim.SGD`: `d = g + wd * p`; with momentum,
    /// `buf = d` on the first step, else `buf = momentum * buf + (1 - dampening) * d`,
    /// and `d = d + momentum * buf` (Nesterov) or `d = buf`; `p = p - lr * d`.
    /// Returns the new parameter and momentum buffer (`None` without momentum).
    fn sgd_step(
        &self,
        p: &Storage,
        g: &Storage,
        buf: Option<&Storage>,
        h: &SgdHyper,
    ) -> Result<(Storage, Option<Storage>)>;
    /// One AdamW step as `torch.optim.AdamW`: `p = p * (1 - lr * wd)`,
    /// `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`,
    /// `p = p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)`.
    /// Returns `(p, m, v)`. The moments come by value: a backend may update
    /// a moment buffer in place when the handle it is given is the only one
    /// (no tensor holds it), and return it, instead of filling a new one.
    fn adamw_step(
        &self,
        p: &Storage,
        g: &Storage,
        m: Storage,
        v: Storage,
        h: &AdamWHyper,
    ) -> Result<(Storage, Storage, Storage)>;

    // ---- randomness ---------------------------------------------------
    /// `y = x * keep / (1 - p)` with `keep = uniform32_at(seed, i) >= p`; the
    /// backward is the same kernel applied to `dy`.
    fn dropout(&self, x: &Storage, p: f32, seed: u64) -> Result<Storage>;
}

/// A fused inference convolution ([`Backend::conv2d_fused`]) on half
/// operands through the backend's f32 kernel: `x`, `w` and the residual
/// widened (exactly), the bias f32, the result cast back to `x`'s dtype
/// (rounded once). For backends without a native half kernel.
pub fn fused_conv_through_f32<B: Backend + ?Sized>(
    be: &B,
    x: &Storage,
    w: &Storage,
    g: &Conv2dGeometry,
    epi: &ConvEpilogue<'_>,
) -> Result<Storage> {
    let dtype = x.dtype();
    if w.dtype() != dtype {
        return Err(Error::DType {
            op: "conv2d (fused)",
            got: w.dtype(),
            expected: format!("{dtype}, the input's dtype, for the weight"),
        });
    }
    // Upcasts are exact; an f32 operand is used as it is.
    let widened = |s: &Storage| match s.dtype() {
        DType::F32 => Ok(s.clone()),
        _ => be.cast(s, DType::F32),
    };
    let (x, w) = (widened(x)?, widened(w)?);
    let bias = epi.bias.map(widened).transpose()?;
    let residual = epi.residual.map(widened).transpose()?;
    let wide = ConvEpilogue {
        bias: bias.as_ref(),
        residual: residual.as_ref(),
        act: epi.act,
    };
    be.cast(&be.conv2d_fused(&x, &w, g, &wide)?, dtype)
}
