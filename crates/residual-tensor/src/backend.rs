//! The [`Backend`] trait: one method per primitive kernel.
//!
//! A backend owns its storage (host vectors for the CPU, buffers for a GPU). The
//! tensor core checks shapes, dtypes and devices before it calls a kernel, so a
//! kernel may assume valid arguments; every storage it receives is dense
//! row-major, and every float kernel reads and writes `f32`.

use crate::{DType, Error, Result, Shape};
use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

/// A backend's storage of one tensor's elements.
pub trait BackendStorage: Any + Send + Sync + Debug {
    /// For the backend to downcast to its own storage type.
    fn as_any(&self) -> &dyn Any;
    /// Element type stored.
    fn dtype(&self) -> DType;
    /// Number of elements stored.
    fn len(&self) -> usize;
    /// Whether no elements are stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A shared handle to backend storage; tensors never mutate it.
pub type Storage = Arc<dyn BackendStorage>;

/// Host-side data of any dtype, for uploads and read-backs.
#[derive(Debug, Clone, PartialEq)]
pub enum HostData {
    /// f32 elements.
    F32(Vec<f32>),
    /// f16 elements.
    F16(Vec<half::f16>),
    /// bf16 elements.
    BF16(Vec<half::bf16>),
}

impl HostData {
    /// Element type.
    pub fn dtype(&self) -> DType {
        match self {
            HostData::F32(_) => DType::F32,
            HostData::F16(_) => DType::F16,
            HostData::BF16(_) => DType::BF16,
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            HostData::F32(v) => v.len(),
            HostData::F16(v) => v.len(),
            HostData::BF16(v) => v.len(),
        }
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The elements converted to f32.
    pub fn into_f32(self) -> Vec<f32> {
        match self {
            HostData::F32(v) => v,
            HostData::F16(v) => v.into_iter().map(f32::from).collect(),
            HostData::BF16(v) => v.into_iter().map(f32::from).collect(),
        }
    }
}

/// Elementwise unary functions (and their derivatives in `unary_backward`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    /// -x
    Neg,
    /// e^x
    Exp,
    /// ln x
    Log,
    /// sqrt x
    Sqrt,
    /// 1 / sqrt x
    Rsqrt,
    /// |x|
    Abs,
    /// x^p
    Powf(f32),
    /// x + c
    AddScalar(f32),
    /// x * c
    MulScalar(f32),
    /// min(max(x, lo), hi)
    Clamp(f32, f32),
    /// max(x, 0)
    Relu,
    /// x * Phi(x) with the exact erf, PyTorch's default GELU
    Gelu,
    /// x * sigmoid(x)
    Silu,
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// tanh x
    Tanh,
}

/// Elementwise binary functions with NumPy broadcasting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// a + b
    Add,
    /// a - b
    Sub,
    /// a * b
    Mul,
    /// a / b
    Div,
}

/// Reductions over a set of axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum.
    Sum,
    /// Maximum.
    Max,
}

/// A batched matrix product `C[b] = op(A[b]) @ op(B[b])`, `C[b]` of shape `[m, n]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulSpec {
    /// Number of products.
    pub batch: usize,
    /// Rows of the result.
    pub m: usize,
    /// Inner dimension.
    pub k: usize,
    /// Columns of the result.
    pub n: usize,
    /// Whether A is stored as `[k, m]` (transposed) instead of `[m, k]`.
    pub trans_a: bool,
    /// Whether B is stored as `[n, k]` (transposed) instead of `[k, n]`.
    pub trans_b: bool,
    /// Whether A is one matrix shared by the whole batch.
    pub a_shared: bool,
    /// Whether B is one matrix shared by the whole batch.
    pub b_shared: bool,
}

/// Geometry of a 2-D convolution (PyTorch's `conv2d` arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dParams {
    /// Stride (h, w).
    pub stride: (usize, usize),
    /// Zero padding (top, bottom, left, right).
    pub padding: [usize; 4],
    /// Dilation (h, w).
    pub dilation: (usize, usize),
    /// Number of groups; input and output channels must divide by it.
    pub groups: usize,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Conv2dParams {
            stride: (1, 1),
            padding: [0; 4],
            dilation: (1, 1),
            groups: 1,
        }
    }
}

impl Conv2dParams {
    /// Symmetric parameters as PyTorch's `Conv2d(stride=s, padding=p, dilation=d, groups=g)`.
    pub fn new(stride: usize, padding: usize, dilation: usize, groups: usize) -> Self {
        Conv2dParams {
            stride: (stride, stride),
            padding: [padding; 4],
            dilation: (dilation, dilation),
            groups,
        }
    }
}

/// Resolved geometry of one convolution call: all sizes a kernel needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height and width.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// The call's parameters.
    pub p: Conv2dParams,
}

/// What [`Backend::conv2d_fused`] applies after the convolution, in order:
/// add `bias: [c_out]`, add `residual: [n, c_out, oh, ow]`, apply `act`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConvEpilogue<'a> {
    /// Per-channel bias.
    pub bias: Option<&'a Storage>,
    /// A tensor of the output's shape to add (the residual shortcut).
    pub residual: Option<&'a Storage>,
    /// An elementwise function applied last.
    pub act: Option<UnaryOp>,
}

/// Geometry of 2-D max / average pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pool2dParams {
    /// Window (h, w).
    pub kernel: (usize, usize),
    /// Stride (h, w).
    pub stride: (usize, usize),
    /// Implicit padding (h, w) on both sides; `-inf` for max, zeros for average.
    pub padding: (usize, usize),
    /// Round the output size up instead of down (PyTorch's `ceil_mode`).
    pub ceil_mode: bool,
    /// Average pooling: count padded zeros in the divisor (PyTorch's default `true`).
    pub count_include_pad: bool,
}

impl Pool2dParams {
    /// Square window with PyTorch's defaults otherwise.
    pub fn new(kernel: usize, stride: usize, padding: usize) -> Self {
        Pool2dParams {
            kernel: (kernel, kernel),
            stride: (stride, stride),
            padding: (padding, padding),
            ceil_mode: false,
            count_include_pad: true,
        }
    }
}

/// Resolved geometry of one pooling call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dGeometry {
    /// Batch times channels (pooling is per plane).
    pub planes: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// The call's parameters.
    pub p: Pool2dParams,
}

/// Normalisation statistics saved by a forward kernel for its backward kernel.
#[derive(Debug, Clone)]
pub struct NormStats {
    /// Mean per normalised group.
    pub mean: Storage,
    /// 1 / sqrt(var + eps) per normalised group (biased variance).
    pub rstd: Storage,
}

/// Gradients of a normalisation with an affine transform.
#[derive(Debug, Clone)]
pub struct NormGrads {
    /// Gradient of the input.
    pub dx: Storage,
    /// Gradient of the scale (gamma).
    pub dgamma: Storage,
    /// Gradient of the shift (beta).
    pub dbeta: Storage,
}

/// An axis in the middle of a dense tensor, viewed as `[outer, len, inner]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxisView {
    /// Product of the dimensions before the axis.
    pub outer: usize,
    /// The axis' length.
    pub len: usize,
    /// Product of the dimensions after the axis.
    pub inner: usize,
}

impl AxisView {
    /// The view of `shape` around `axis`.
    pub fn new(shape: &Shape, axis: usize) -> Self {
        let d = shape.dims();
        AxisView {
            outer: d[..axis].iter().product(),
            len: d[axis],
            inner: d[axis + 1..].iter().product(),
        }
    }
}

/// Runs a GEMM kernel written for f32 on operands of one half-precision
/// dtype: upcasts each operand (exact), calls `f32_kernel` and rounds its
/// result to that dtype once, which is what a half GEMM with f32
/// accumulation computes. f32 operands go straight to `f32_kernel`. Operands
/// of different dtypes are an error naming both.
pub fn half_through_f32(
    be: &dyn Backend,
    op: &'static str,
    operands: &[&Storage],
    f32_kernel: impl FnOnce(&[&Storage]) -> Result<Storage>,
) -> Result<Storage> {
    let dtype = operands.first().map_or(DType::F32, |s| s.dtype());
    if let Some(other) = operands.iter().find(|s| s.dtype() != dtype) {
        return Err(Error::DType {
            op,
            got: other.dtype(),
            expected: format!("{dtype}, the dtype of the first operand"),
        });
    }
    if dtype == DType::F32 {
        return f32_kernel(operands);
    }
    let wide: Vec<Storage> = operands
        .iter()
        .map(|s| widened(be, s))
        .collect::<Result<_>>()?;
    let refs: Vec<&Storage> = wide.iter().collect();
    be.cast(&f32_kernel(&refs)?, dtype)
}

/// `s` as f32: itself when it is f32, else upcast (exact) with the backend's
/// cast. For kernels written for f32 that accept half inputs.
pub fn widened(be: &dyn Backend, s: &Storage) -> Result<Storage> {
    match s.dtype() {
        DType::F32 => Ok(s.clone()),
        _ => be.cast(s, DType::F32),
    }
}

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
    /// `y = f(x)`.
    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage>;
    /// `dx = dy * f'(x)`.
    fn unary_backward(&self, op: UnaryOp, x: &Storage, dy: &Storage) -> Result<Storage>;
    /// `out = a op b`, both read broadcast to `out` (a NumPy broadcast of both shapes).
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
    // products accumulate in f32 and the result is rounded once. Every other
    // kernel takes f32. [`half_through_f32`] implements the half case for a
    // backend without native half GEMMs.

    /// Batched matrix product, see [`MatmulSpec`]. Result `[batch, m, n]`.
    fn matmul(&self, a: &Storage, b: &Storage, spec: MatmulSpec) -> Result<Storage>;

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
    /// [`ConvEpilogue`]). The default composes the other kernels; a backend
    /// overrides it to apply the epilogue in one pass.
    fn conv2d_fused(
        &self,
        x: &Storage,
        w: &Storage,
        g: &Conv2dGeometry,
        epi: &ConvEpilogue<'_>,
    ) -> Result<Storage> {
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
    /// arithmetic, the statistics and `y` are f32.
    fn batch_norm(
        &self,
        x: &Storage,
        view: AxisView,
        gamma: &Storage,
        beta: &Storage,
        eps: f32,
    ) -> Result<(Storage, NormStats)>;
    /// Fused backward of [`Backend::batch_norm`]: `dy` is f32, `dx` has the
    /// dtype of `x` (rounded once), `dgamma` and `dbeta` are f32.
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
    /// Fused backward of [`Backend::row_norm`].
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
    /// Returns `(p, m, v)`.
    fn adamw_step(
        &self,
        p: &Storage,
        g: &Storage,
        m: &Storage,
        v: &Storage,
        h: &AdamWHyper,
    ) -> Result<(Storage, Storage, Storage)>;

    // ---- randomness ---------------------------------------------------
    /// `y = x * keep / (1 - p)` with `keep = uniform32_at(seed, i) >= p`; the
    /// backward is the same kernel applied to `dy`.
    fn dropout(&self, x: &Storage, p: f32, seed: u64) -> Result<Storage>;
}

/// Hyper-parameters of one [`Backend::sgd_step`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdHyper {
    /// Learning rate.
    pub lr: f32,
    /// Momentum factor (0: plain SGD, no buffer).
    pub momentum: f32,
    /// Dampening of the momentum update.
    pub dampening: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    /// Nesterov momentum.
    pub nesterov: bool,
}

/// Hyper-parameters of one [`Backend::adamw_step`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWHyper {
    /// Learning rate.
    pub lr: f32,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// Added to the denominator.
    pub eps: f32,
    /// Decoupled weight decay.
    pub weight_decay: f32,
    /// The step number, starting at 1 (for bias correction).
    pub step: u64,
}

/// How [`Backend::row_norm`] indexes its affine parameters: column `j` of row
/// `r` uses parameter `((r % groups) * channels_per_group + j / per_channel)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowAffine {
    /// Rows per sample that get different parameters (group norm: groups; layer norm: 1).
    pub groups: usize,
    /// Parameters per group (group norm: channels / groups; layer norm: cols).
    pub channels_per_group: usize,
    /// Consecutive columns that share one parameter (group norm: h*w; layer norm: 1).
    pub per_channel: usize,
}

/// Merges adjacent dimensions that every operand walks contiguously (for each
/// operand, `stride[d] == stride[d + 1] * dims[d + 1]`), so that kernels loop
/// over few long rows instead of many short ones (a `[C, Cin, 1, 1]` weight
/// times a `[C, 1, 1, 1]` scale becomes `[C, Cin]`). Returns the merged dims
/// and each operand's merged strides. Shared by the backends: every strided
/// kernel (gather, broadcasting binary ops, reductions) indexes fewer dims.
pub fn coalesce(dims: &[usize], strides: &[&[usize]]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut d: Vec<usize> = Vec::new();
    let mut s: Vec<Vec<usize>> = vec![Vec::new(); strides.len()];
    for i in (0..dims.len()).rev() {
        if dims[i] == 1 && !d.is_empty() {
            continue; // a size-1 dimension never moves any index
        }
        let mergeable =
            !d.is_empty() && strides.iter().zip(&s).all(|(st, ms)| st[i] == ms[0] * d[0]);
        if mergeable {
            d[0] *= dims[i];
        } else {
            d.insert(0, dims[i]);
            for (ms, st) in s.iter_mut().zip(strides) {
                ms.insert(0, st[i]);
            }
        }
    }
    (d, s)
}

#[cfg(test)]
mod tests {
    use super::coalesce;

    #[test]
    fn coalesce_merges_contiguous_runs_and_keeps_broadcasts() {
        // [2, 3, 4] contiguous -> [24]
        let (d, s) = coalesce(&[2, 3, 4], &[&[12, 4, 1]]);
        assert_eq!((d, s), (vec![24], vec![vec![1]]));
        // b broadcast over the last dim: [2, 3, 4] with b strides [3, 1, 0]
        let (d, s) = coalesce(&[2, 3, 4], &[&[12, 4, 1], &[3, 1, 0]]);
        assert_eq!(d, vec![6, 4]);
        assert_eq!(s, vec![vec![4, 1], vec![1, 0]]);
        // size-1 dims vanish
        let (d, _) = coalesce(&[1, 5, 1], &[&[5, 1, 1]]);
        assert_eq!(d, vec![5]);
    }
}
