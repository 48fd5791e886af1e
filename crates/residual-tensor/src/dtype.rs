//! Element types.

use std::fmt;

/// The element type of a tensor. `F32` is the compute type of every op but
/// the GEMM ops (conv2d, matmul, linear), which also compute on `F16` and
/// `BF16` operands with f32 accumulation; every other op upcasts a half
/// input to f32. See [`crate::autocast`](mod@crate::autocast).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 16-bit IEEE float.
    F16,
    /// bfloat16.
    BF16,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
        })
    }
}
