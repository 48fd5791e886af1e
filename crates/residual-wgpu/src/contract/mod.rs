//! The typed host/shader contract. Each shader's parameters are a
//! `#[repr(C)]` [`Params`] struct mirrored by a WGSL `struct` of the same
//! name (same members, same order, padded to a multiple of 16 bytes), bound as
//! a `var<uniform>`; every resource has a named [`Binding`] constant; every
//! entry point is an [`Entry`] typed by the struct it reads. Kernels launch
//! through these names only, and `cargo xtask shaders` checks [`all`] against
//! naga's reflection of the WGSL files.

pub mod cast;
pub mod elementwise;
pub mod fill;
pub mod gemm;
pub mod layout;
pub mod norm;
pub mod optim;
pub mod pool;
pub mod reduce;
pub mod softmax;
mod types;

pub use types::{Access, Binding, Entry, Params, ShaderContract, StructLayout};

/// The contract of every shader, in the order of [`crate::shaders::SHADERS`].
pub fn all() -> Vec<ShaderContract> {
    vec![
        cast::contract(),
        elementwise::contract(),
        fill::contract(),
        gemm::contract(),
        layout::contract(),
        norm::contract(),
        optim::contract(),
        pool::contract(),
        reduce::contract(),
        softmax::contract(),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_shader_has_a_contract() {
        let stems: Vec<&str> = super::all().iter().map(|c| c.stem).collect();
        let listed: Vec<&str> = crate::shaders::SHADERS.iter().map(|(s, _)| *s).collect();
        assert_eq!(stems, listed);
    }

    #[test]
    fn every_uniform_struct_is_a_multiple_of_16_bytes() {
        for c in super::all() {
            for s in &c.structs {
                assert_eq!(s.size % 16, 0, "{}::{} is {} bytes", c.stem, s.name, s.size);
            }
        }
    }
}
