//! What the kernels of [`Backend`](crate::Backend) take besides storage: the
//! elementwise and reduction ops, the resolved geometry of matmul,
//! convolution, pooling and axis views, normalisation statistics and
//! gradients, and optimizer hyper-parameters.

use super::storage::Storage;
use crate::Shape;

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

/// What [`Backend::conv2d_fused`](crate::Backend::conv2d_fused) applies after the convolution, in order:
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

/// Hyper-parameters of one [`Backend::sgd_step`](crate::Backend::sgd_step).
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

/// Hyper-parameters of one [`Backend::adamw_step`](crate::Backend::adamw_step).
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

/// How [`Backend::row_norm`](crate::Backend::row_norm) indexes its affine parameters: column `j` of row
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
