//! `shaders/softmax.wgsl`: softmax / log-softmax along an axis and the mean
//! cross-entropy with label smoothing.

use super::types::{params, Binding, Entry, Params, ShaderContract};

/// Parameters of `softmax` and `softmax_backward`.
pub const AXIS_PARAMS: Binding = Binding::uniform("axis_params", 0);
/// Parameters of the cross-entropy kernels.
pub const CE_PARAMS: Binding = Binding::uniform("ce_params", 0);
/// The input (logits).
pub const X: Binding = Binding::read("x", 1);
/// The output.
pub const Y: Binding = Binding::read_write("y", 2);
/// The forward's output, read by the backward.
pub const Y_IN: Binding = Binding::read("y_in", 3);
/// The output's gradient.
pub const DY: Binding = Binding::read("dy", 4);
/// The input's gradient.
pub const DX: Binding = Binding::read_write("dx", 5);
/// The loss's gradient (one element).
pub const DLOSS: Binding = Binding::read("dloss", 6);
/// `targets: [n]`, the class of each row.
pub const TARGETS: Binding = Binding::read("targets", 7);

params! {
    /// Parameters of the softmax kernels, `x: [outer, len, inner]` (`LOG`
    /// chooses log-softmax).
    pub struct AxisParams in "softmax" at AXIS_PARAMS {
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

params! {
    /// Parameters of the cross-entropy kernels, `logits: [n, c]`.
    pub struct CrossEntropyParams in "softmax" at CE_PARAMS {
        /// Rows.
        pub n: u32,
        /// Classes.
        pub c: u32,
        /// Label smoothing.
        pub smoothing: f32,
        /// Padding to 16 bytes.
        pub _pad0: u32,
    }
}

/// Softmax forward.
pub const SOFTMAX: Entry<AxisParams> = Entry::new("softmax");
/// Softmax backward.
pub const SOFTMAX_BACKWARD: Entry<AxisParams> = Entry::new("softmax_backward");
/// Mean cross-entropy.
pub const CROSS_ENTROPY: Entry<CrossEntropyParams> = Entry::new("cross_entropy");
/// Its backward.
pub const CROSS_ENTROPY_BACKWARD: Entry<CrossEntropyParams> = Entry::new("cross_entropy_backward");

/// This shader's side of the contract.
pub fn contract() -> ShaderContract {
    ShaderContract {
        stem: "softmax",
        structs: vec![AxisParams::layout(), CrossEntropyParams::layout()],
        bindings: vec![AXIS_PARAMS, CE_PARAMS, X, Y, Y_IN, DY, DX, DLOSS, TARGETS],
        entries: vec![
            SOFTMAX.reflect(),
            SOFTMAX_BACKWARD.reflect(),
            CROSS_ENTROPY.reflect(),
            CROSS_ENTROPY_BACKWARD.reflect(),
        ],
    }
}
