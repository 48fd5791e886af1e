//! The launch layer, below the kernels: a [`Gpu`] holds the context and a
//! dummy buffer, allocates storages, and records typed launches (an
//! [`Entry`] with its [`Params`] struct and named [`Binding`]s). Kernels
//! depend on this layer only; [`crate::WgpuBackend`] wraps a [`Gpu`] and
//! calls the kernels.

use crate::context::{grid, Context, Dispatch, THREADS};
use crate::contract::{Binding, Entry, Params};
use crate::storage::GpuStorage;
use residual_tensor::backend::{BackendStorage, Storage};
use residual_tensor::{DType, Error, Result};
use std::sync::Arc;

/// One kernel launch, typed by its parameter struct `P`.
pub(crate) struct Launch<'a, P: Params> {
    /// The entry point (its shader is `P::SHADER`).
    pub entry: Entry<P>,
    /// Override constants of this variant (`OP`, `MODE`, ...).
    pub constants: &'a [(&'static str, f64)],
    /// The parameter block, bound at `P::BINDING`.
    pub params: P,
    /// Small host tables (shapes, strides, indices) bound as read-only storage.
    pub tables: &'a [(Binding, &'a [u32])],
    /// Device buffers.
    pub buffers: &'a [(Binding, &'a wgpu::Buffer)],
    /// Workgroup counts.
    pub groups: [u32; 3],
}

/// The device as the kernels see it.
#[derive(Debug)]
pub(crate) struct Gpu {
    ctx: Arc<Context>,
    /// Bound where a kernel's optional input is absent.
    dummy: GpuStorage,
}

/// Wraps a storage for the tensor core.
pub(crate) fn share(s: GpuStorage) -> Storage {
    Arc::new(s)
}

/// A size as a shader word (sizes are bounded by the binding limit, far below 2^32).
pub(crate) fn word(v: usize) -> u32 {
    v as u32
}

impl Gpu {
    /// The launch layer of a context.
    pub(crate) fn new(ctx: Arc<Context>) -> Self {
        let dummy = GpuStorage::new(&ctx, DType::F32, 4).expect("a 16-byte buffer");
        Gpu { ctx, dummy }
    }

    /// The context.
    pub(crate) fn ctx(&self) -> &Context {
        &self.ctx
    }

    /// The backend's name, `wgpu:<adapter>`.
    pub(crate) fn name(&self) -> String {
        format!("wgpu:{}", self.ctx.adapter_name())
    }

    /// The device storage behind `s`; an error for another backend's storage.
    pub(crate) fn gpu<'a>(&self, s: &'a Storage) -> Result<&'a GpuStorage> {
        s.as_any()
            .downcast_ref::<GpuStorage>()
            .ok_or_else(|| Error::Backend {
                backend: self.name(),
                msg: format!("storage {s:?} belongs to another backend"),
            })
    }

    /// The buffer of an f32 storage.
    pub(crate) fn f32_buffer<'a>(&self, s: &'a Storage) -> Result<&'a wgpu::Buffer> {
        let g = self.gpu(s)?;
        if g.dtype() != DType::F32 {
            return Err(Error::DType {
                op: "wgpu kernel",
                got: g.dtype(),
                expected: "f32".into(),
            });
        }
        Ok(g.buffer())
    }

    /// A small f32 buffer bound where an optional input is absent.
    pub(crate) fn dummy(&self) -> &wgpu::Buffer {
        self.dummy.buffer()
    }

    /// A new storage of `len` elements (contents undefined until a kernel writes them).
    pub(crate) fn alloc(&self, dtype: DType, len: usize) -> Result<GpuStorage> {
        GpuStorage::new(&self.ctx, dtype, len)
    }

    /// Records a kernel launch.
    pub(crate) fn launch<P: Params>(&self, l: Launch<'_, P>) -> Result<()> {
        let mut host: Vec<(Binding, &[u8])> = vec![(P::BINDING, bytemuck::bytes_of(&l.params))];
        host.extend(
            l.tables
                .iter()
                .map(|(b, words)| (*b, bytemuck::cast_slice(words))),
        );
        let mut all = host
            .iter()
            .map(|h| h.0)
            .chain(l.buffers.iter().map(|b| b.0));
        if let Some(b) = all.find(|b| b.group != 0) {
            return Err(Error::Backend {
                backend: self.name(),
                msg: format!("{}: binding {} is outside group 0", l.entry.name, b.name),
            });
        }
        self.ctx.dispatch(Dispatch {
            shader: P::SHADER,
            entry: l.entry.name,
            constants: l.constants,
            host: &host,
            buffers: l.buffers,
            groups: l.groups,
        })
    }

    /// Runs everything recorded and reads `bytes` bytes of `buffer` back.
    pub(crate) fn read(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        self.ctx.read(buffer, bytes)
    }

    /// Workgroups for one thread per item with 256-thread workgroups.
    pub(crate) fn threads(&self, items: usize) -> [u32; 3] {
        self.workgroups(items.div_ceil(THREADS as usize))
    }

    /// A grid of `count` workgroups (kernels fold the 2-D grid into one index).
    pub(crate) fn workgroups(&self, count: usize) -> [u32; 3] {
        grid(count as u64, self.max_groups())
    }

    /// The per-dimension workgroup limit.
    pub(crate) fn max_groups(&self) -> u32 {
        self.ctx.limits.max_compute_workgroups_per_dimension
    }
}
