//! `shaders/gemm.wgsl`: tiled matrix products and the three convolution
//! kernels as implicit GEMMs, `C[z]: [m, n] = A[z]: [m, k] * B[z]: [k, n]`.

use super::types::{params, Binding, Entry, Params, ShaderContract};

/// The parameter block.
pub const PARAMS: Binding = Binding::uniform("params", 0);
/// `A` (matmul: a; conv: w, w, dy by `MODE`).
pub const A: Binding = Binding::read("a", 1);
/// `B` (matmul: b; conv: x, dy, x by `MODE`).
pub const B: Binding = Binding::read("b", 2);
/// `C` (matmul: c; conv: y, dx, dw by `MODE`).
pub const C: Binding = Binding::read_write("c", 3);
/// `bias: [c_out]` of the conv epilogue (a dummy when absent).
pub const BIAS: Binding = Binding::read("bias", 4);
/// `residual: [n, c_out, oh, ow]` of the conv epilogue (a dummy when absent).
pub const RESIDUAL: Binding = Binding::read("residual", 5);

params! {
    /// Parameters of `gemm`: the product's sizes, matmul flags, the
    /// convolution's geometry (zero for a matmul) and the epilogue flags.
    pub struct GemmParams in "gemm" at PARAMS {
        /// Rows of C.
        pub m: u32,
        /// Columns of C.
        pub n: u32,
        /// The reduced dimension.
        pub k: u32,
        /// Matmul: A is stored transposed (1) or not (0).
        pub trans_a: u32,
        /// Matmul: B is stored transposed.
        pub trans_b: u32,
        /// Matmul: one A for every batch entry.
        pub a_shared: u32,
        /// Matmul: one B for every batch entry.
        pub b_shared: u32,
        /// Conv: images in the batch.
        pub batch: u32,
        /// Conv: input channels.
        pub c_in: u32,
        /// Conv: input height.
        pub h: u32,
        /// Conv: input width.
        pub w: u32,
        /// Conv: output channels.
        pub c_out: u32,
        /// Conv: kernel height.
        pub kh: u32,
        /// Conv: kernel width.
        pub kw: u32,
        /// Conv: output height.
        pub oh: u32,
        /// Conv: output width.
        pub ow: u32,
        /// Conv: vertical stride.
        pub sh: u32,
        /// Conv: horizontal stride.
        pub sw: u32,
        /// Conv: top padding.
        pub pt: u32,
        /// Conv: left padding.
        pub pl: u32,
        /// Conv: vertical dilation.
        pub dh: u32,
        /// Conv: horizontal dilation.
        pub dw: u32,
        /// Conv: input channels per group.
        pub cin_g: u32,
        /// Conv: output channels per group.
        pub cout_g: u32,
        /// Conv forward: add `bias[channel]`.
        pub has_bias: u32,
        /// Conv forward: add `residual`.
        pub has_residual: u32,
        /// Conv forward: apply ReLU last.
        pub relu: u32,
        /// Padding to a multiple of 16 bytes.
        pub _pad0: u32,
    }
}

/// The one entry point (`MODE` chooses the product).
pub const GEMM: Entry<GemmParams> = Entry::new("gemm");

/// This shader's side of the contract.
pub fn contract() -> ShaderContract {
    ShaderContract {
        stem: "gemm",
        structs: vec![GemmParams::layout()],
        bindings: vec![PARAMS, A, B, C, BIAS, RESIDUAL],
        entries: vec![GEMM.reflect()],
    }
}
