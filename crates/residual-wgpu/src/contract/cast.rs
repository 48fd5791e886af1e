//! `shaders/cast.wgsl`: f32 <-> f16 / bf16, halves packed two per word.

use super::types::{params, Binding, Entry, Params, ShaderContract};

/// The parameter block.
pub const PARAMS: Binding = Binding::uniform("params", 0);
/// The input words.
pub const SRC: Binding = Binding::read("src", 1);
/// The output words.
pub const DST: Binding = Binding::read_write("dst", 2);

params! {
    /// Parameters of every cast.
    pub struct CastParams in "cast" at PARAMS {
        /// Number of elements.
        pub n: u32,
        /// Padding to 16 bytes.
        pub _pad0: u32,
        /// Padding to 16 bytes.
        pub _pad1: u32,
        /// Padding to 16 bytes.
        pub _pad2: u32,
    }
}

/// f32 -> f16.
pub const F32_TO_F16: Entry<CastParams> = Entry::new("f32_to_f16");
/// f32 -> bf16.
pub const F32_TO_BF16: Entry<CastParams> = Entry::new("f32_to_bf16");
/// f16 -> f32.
pub const F16_TO_F32: Entry<CastParams> = Entry::new("f16_to_f32");
/// bf16 -> f32.
pub const BF16_TO_F32: Entry<CastParams> = Entry::new("bf16_to_f32");

/// This shader's side of the contract.
pub fn contract() -> ShaderContract {
    ShaderContract {
        stem: "cast",
        structs: vec![CastParams::layout()],
        bindings: vec![PARAMS, SRC, DST],
        entries: vec![
            F32_TO_F16.reflect(),
            F32_TO_BF16.reflect(),
            F16_TO_F32.reflect(),
            BF16_TO_F32.reflect(),
        ],
    }
}
