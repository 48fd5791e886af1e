//! `shaders/reduce.wgsl`: sum / max over axes, and argmax.

use super::types::{params, Binding, Entry, Params, ShaderContract};

/// Parameters of `reduce`.
pub const REDUCE_PARAMS: Binding = Binding::uniform("reduce_params", 0);
/// Parameters of `argmax`.
pub const ARGMAX_PARAMS: Binding = Binding::uniform("argmax_params", 0);
/// The input.
pub const X: Binding = Binding::read("x", 1);
/// `reduce`'s output.
pub const Y: Binding = Binding::read_write("y", 2);
/// `argmax`'s output.
pub const INDICES: Binding = Binding::read_write("indices", 3);
/// `reduce`'s `[kept_dims, kept_strides, red_dims, red_strides]`.
pub const SHAPE: Binding = Binding::read("shape", 4);

params! {
    /// Parameters of `reduce` (the op is the `OP` constant).
    pub struct ReduceParams in "reduce" at REDUCE_PARAMS {
        /// Number of outputs (one workgroup each).
        pub n_out: u32,
        /// Rank of the kept dimensions.
        pub kept_rank: u32,
        /// Rank of the reduced dimensions.
        pub red_rank: u32,
        /// Number of reduced elements per output.
        pub count: u32,
    }
}

params! {
    /// Parameters of `argmax`, `x: [outer, len, inner]`.
    pub struct ArgmaxParams in "reduce" at ARGMAX_PARAMS {
        /// Product of the dimensions before the axis.
        pub outer: u32,
        /// Length of the axis.
        pub len: u32,
        /// Product of the dimensions after the axis.
        pub inner: u32,
        /// Padding to 16 bytes.
        pub _pad0: u32,
    }
}

/// Sum or max over axes.
pub const REDUCE: Entry<ReduceParams> = Entry::new("reduce");
/// First index of the maximum along an axis.
pub const ARGMAX: Entry<ArgmaxParams> = Entry::new("argmax");

/// This shader's side of the contract.
pub fn contract() -> ShaderContract {
    ShaderContract {
        stem: "reduce",
        structs: vec![ReduceParams::layout(), ArgmaxParams::layout()],
        bindings: vec![REDUCE_PARAMS, ARGMAX_PARAMS, X, Y, INDICES, SHAPE],
        entries: vec![REDUCE.reflect(), ARGMAX.reflect()],
    }
}
