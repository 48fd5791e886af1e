//! `shaders/elementwise.wgsl`: unary functions and derivatives, broadcasting
//! binary ops, dropout.

use super::types::{params, Binding, Entry, Params, ShaderContract};

/// Parameters of `unary` and `unary_backward`.
pub const UNARY_PARAMS: Binding = Binding::uniform("unary_params", 0);
/// Parameters of `binary`.
pub const BINARY_PARAMS: Binding = Binding::uniform("binary_params", 0);
/// Parameters of `dropout`.
pub const DROPOUT_PARAMS: Binding = Binding::uniform("dropout_params", 0);
/// `x: [n]`.
pub const X: Binding = Binding::read("x", 1);
/// `y: [n]`.
pub const Y: Binding = Binding::read_write("y", 2);
/// `dy: [n]`.
pub const DY: Binding = Binding::read("dy", 3);
/// `dx: [n]`.
pub const DX: Binding = Binding::read_write("dx", 4);
/// The left operand of `binary`.
pub const A: Binding = Binding::read("a", 5);
/// The right operand of `binary`.
pub const B: Binding = Binding::read("b", 6);
/// `binary`'s `[dims[rank], a_strides[rank], b_strides[rank]]` (stride 0: broadcast).
pub const SHAPE: Binding = Binding::read("shape", 7);

params! {
    /// Parameters of `unary` and `unary_backward` (the op is the `OP` constant).
    pub struct UnaryParams in "elementwise" at UNARY_PARAMS {
        /// Number of elements.
        pub n: u32,
        /// The op's first scalar (powf's exponent, the added or multiplied constant, clamp's low end).
        pub p0: f32,
        /// The op's second scalar (clamp's high end).
        pub p1: f32,
        /// Padding to 16 bytes.
        pub _pad0: u32,
    }
}

params! {
    /// Parameters of `binary` (the op is the `BOP` constant).
    pub struct BinaryParams in "elementwise" at BINARY_PARAMS {
        /// Number of output elements.
        pub n: u32,
        /// Rank of the (coalesced) output shape; `shape` holds 3 * rank words.
        pub rank: u32,
        /// Padding to 16 bytes.
        pub _pad0: u32,
        /// Padding to 16 bytes.
        pub _pad1: u32,
    }
}

params! {
    /// Parameters of `dropout`.
    pub struct DropoutParams in "elementwise" at DROPOUT_PARAMS {
        /// Number of elements.
        pub n: u32,
        /// The seed's 32-bit key (`residual_tensor::rng::key32`).
        pub key: u32,
        /// Drop probability.
        pub p: f32,
        /// `1 / (1 - p)`.
        pub scale: f32,
    }
}

/// `y = f(x)`.
pub const UNARY: Entry<UnaryParams> = Entry::new("unary");
/// `dx = dy * f'(x)`.
pub const UNARY_BACKWARD: Entry<UnaryParams> = Entry::new("unary_backward");
/// `y = a op b`, broadcasting.
pub const BINARY: Entry<BinaryParams> = Entry::new("binary");
/// `y = x * keep / (1 - p)`.
pub const DROPOUT: Entry<DropoutParams> = Entry::new("dropout");

/// This shader's side of the contract.
pub fn contract() -> ShaderContract {
    ShaderContract {
        stem: "elementwise",
        structs: vec![
            UnaryParams::layout(),
            BinaryParams::layout(),
            DropoutParams::layout(),
        ],
        bindings: vec![
            UNARY_PARAMS,
            BINARY_PARAMS,
            DROPOUT_PARAMS,
            X,
            Y,
            DY,
            DX,
            A,
            B,
            SHAPE,
        ],
        entries: vec![
            UNARY.reflect(),
            UNARY_BACKWARD.reflect(),
            BINARY.reflect(),
            DROPOUT.reflect(),
        ],
    }
}
