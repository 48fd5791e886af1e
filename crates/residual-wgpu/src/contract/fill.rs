//! `shaders/fill.wgsl`: `out: [n] = value`.

use super::types::{params, Binding, Entry, Params, ShaderContract};

/// The parameter block.
pub const PARAMS: Binding = Binding::uniform("params", 0);
/// `out: [n]`.
pub const OUT: Binding = Binding::read_write("out", 1);

params! {
    /// Parameters of `fill`.
    pub struct FillParams in "fill" at PARAMS {
        /// Elements to write.
        pub n: u32,
        /// The value.
        pub value: f32,
        /// Padding to 16 bytes.
        pub _pad0: u32,
        /// Padding to 16 bytes.
        pub _pad1: u32,
    }
}

/// `out[i] = value`.
pub const FILL: Entry<FillParams> = Entry::new("fill");

/// This shader's side of the contract.
pub fn contract() -> ShaderContract {
    ShaderContract {
        stem: "fill",
        structs: vec![FillParams::layout()],
        bindings: vec![PARAMS, OUT],
        entries: vec![FILL.reflect()],
    }
}
