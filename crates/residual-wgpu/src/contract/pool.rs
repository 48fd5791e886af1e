//! `shaders/pool.wgsl`: max, average and adaptive average pooling,
//! `x: [planes, h, w] -> y: [planes, oh, ow]`, and their backward kernels.

use super::types::{params, Binding, Entry, Params, ShaderContract};

/// The parameter block.
pub const PARAMS: Binding = Binding::uniform("params", 0);
/// `x: [planes, h, w]`.
pub const X: Binding = Binding::read("x", 1);
/// `y: [planes, oh, ow]`.
pub const Y: Binding = Binding::read_write("y", 2);
/// `dy: [planes, oh, ow]`.
pub const DY: Binding = Binding::read("dy", 3);
/// `dx: [planes, h, w]`.
pub const DX: Binding = Binding::read_write("dx", 4);

params! {
    /// Parameters of both pooling kernels (the kind is the `MODE` constant).
    pub struct PoolParams in "pool" at PARAMS {
        /// Planes (batch times channels).
        pub planes: u32,
        /// Input height.
        pub h: u32,
        /// Input width.
        pub w: u32,
        /// Output height.
        pub oh: u32,
        /// Output width.
        pub ow: u32,
        /// Window height.
        pub kh: u32,
        /// Window width.
        pub kw: u32,
        /// Vertical stride.
        pub sh: u32,
        /// Horizontal stride.
        pub sw: u32,
        /// Vertical padding.
        pub ph: u32,
        /// Horizontal padding.
        pub pw: u32,
        /// Average pooling counts the padding in its divisor (1) or not (0).
        pub count_include_pad: u32,
    }
}

/// `y: [planes, oh, ow]`.
pub const POOL_FORWARD: Entry<PoolParams> = Entry::new("pool_forward");
/// `dx: [planes, h, w]`.
pub const POOL_BACKWARD: Entry<PoolParams> = Entry::new("pool_backward");

/// This shader's side of the contract.
pub fn contract() -> ShaderContract {
    ShaderContract {
        stem: "pool",
        structs: vec![PoolParams::layout()],
        bindings: vec![PARAMS, X, Y, DY, DX],
        entries: vec![POOL_FORWARD.reflect(), POOL_BACKWARD.reflect()],
    }
}
