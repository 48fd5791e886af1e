//! The vocabulary of the host/shader contract: bindings, parameter structs,
//! typed entry points, and the per-shader summary that `cargo xtask shaders`
//! compares with naga's reflection of the WGSL.

use std::marker::PhantomData;

/// How a shader may use a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// `var<uniform>`: a parameter block written by the host for one launch.
    Uniform,
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
}

/// One resource of a shader: `@group(group) @binding(binding) var<access> name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Binding {
    /// The WGSL global's name.
    pub name: &'static str,
    /// Its `@group`.
    pub group: u32,
    /// Its `@binding`.
    pub binding: u32,
    /// How the shader uses it.
    pub access: Access,
}

impl Binding {
    /// A `var<uniform>` in group 0.
    pub const fn uniform(name: &'static str, binding: u32) -> Self {
        Binding {
            name,
            group: 0,
            binding,
            access: Access::Uniform,
        }
    }

    /// A `var<storage, read>` in group 0.
    pub const fn read(name: &'static str, binding: u32) -> Self {
        Binding {
            name,
            group: 0,
            binding,
            access: Access::Read,
        }
    }

    /// A `var<storage, read_write>` in group 0.
    pub const fn read_write(name: &'static str, binding: u32) -> Self {
        Binding {
            name,
            group: 0,
            binding,
            access: Access::ReadWrite,
        }
    }
}

/// A parameter struct as Rust lays it out: what the WGSL struct of the same
/// name must match (size, and every member's name, offset and type, in order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructLayout {
    /// The struct's name, the same in Rust and WGSL.
    pub name: &'static str,
    /// The WGSL global (a `var<uniform>`) holding it.
    pub global: &'static str,
    /// `size_of` the Rust struct; WGSL's span of the struct.
    pub size: usize,
    /// Member names, byte offsets and scalar types (`u32`, `f32`, `i32`), in
    /// declaration order.
    pub fields: Vec<(&'static str, usize, &'static str)>,
}

/// A shader's parameter block: a `#[repr(C)]` plain-old-data struct mirrored
/// by a WGSL `struct` of the same name, bound as a `var<uniform>`.
pub trait Params: bytemuck::Pod {
    /// The shader file (stem) that declares the WGSL struct.
    const SHADER: &'static str;
    /// The uniform binding that holds it.
    const BINDING: Binding;
    /// Its layout, for the contract check.
    fn layout() -> StructLayout;
}

/// An entry point of a shader that reads parameters of type `P`: a kernel
/// cannot launch it with another struct.
pub struct Entry<P> {
    /// The entry point's name in the WGSL file of `P::SHADER`.
    pub name: &'static str,
    params: PhantomData<fn() -> P>,
}

impl<P> Entry<P> {
    /// The entry point `name`.
    pub const fn new(name: &'static str) -> Self {
        Entry {
            name,
            params: PhantomData,
        }
    }
}

impl<P> Clone for Entry<P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P> Copy for Entry<P> {}

impl<P> std::fmt::Debug for Entry<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Entry({})", self.name)
    }
}

impl<P: Params> Entry<P> {
    /// `(entry point, the uniform global it reads its parameters from)`.
    pub fn reflect(self) -> (&'static str, &'static str) {
        (self.name, P::BINDING.name)
    }
}

/// Everything one shader file and its host side agree on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShaderContract {
    /// The file stem in `crates/residual-wgpu/shaders/`.
    pub stem: &'static str,
    /// Its parameter structs.
    pub structs: Vec<StructLayout>,
    /// Every resource binding the file declares.
    pub bindings: Vec<Binding>,
    /// Entry points and the uniform global each reads its parameters from.
    pub entries: Vec<(&'static str, &'static str)>,
}

/// Declares a parameter struct: `#[repr(C)]`, `Pod`, and its [`Params`]
/// impl with the layout read by `offset_of!`.
macro_rules! params {
    (
        $(#[$meta:meta])*
        pub struct $name:ident in $shader:literal at $binding:path {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty ),*
        }

        impl $crate::contract::types::Params for $name {
            const SHADER: &'static str = $shader;
            const BINDING: $crate::contract::types::Binding = $binding;
            fn layout() -> $crate::contract::types::StructLayout {
                $crate::contract::types::StructLayout {
                    name: stringify!($name),
                    global: <Self as $crate::contract::types::Params>::BINDING.name,
                    size: std::mem::size_of::<$name>(),
                    fields: vec![$((
                        stringify!($field),
                        std::mem::offset_of!($name, $field),
                        stringify!($ty),
                    )),*],
                }
            }
        }
    };
}

pub(crate) use params;
