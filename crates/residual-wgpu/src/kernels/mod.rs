//! Host side of each kernel family: checks what the shader cannot, packs the
//! `params` words, allocates the outputs and records the launches.

pub(crate) mod elementwise;
pub(crate) mod gemm;
pub(crate) mod layout;
pub(crate) mod norm;
pub(crate) mod optim;
pub(crate) mod pool;
pub(crate) mod reduce;
pub(crate) mod softmax;

/// A size as a shader word (sizes are bounded by the binding limit, far below 2^32).
pub(crate) fn word(v: usize) -> u32 {
    v as u32
}

/// An f32 parameter as a shader word.
pub(crate) fn bits(v: f32) -> u32 {
    v.to_bits()
}
