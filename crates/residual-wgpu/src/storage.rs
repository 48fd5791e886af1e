//! Device storage of one tensor: a pooled buffer that goes back to the pool
//! when the last tensor using it is dropped.

use crate::context::Context;
use residual_tensor::backend::BackendStorage;
use residual_tensor::DType;
use std::any::Any;
use std::sync::Arc;

/// A tensor's elements in a device buffer: f32 one per word, f16 and bf16
/// packed two per word (element `2j` in the low half of word `j`).
pub struct GpuStorage {
    buffer: Option<wgpu::Buffer>,
    len: usize,
    dtype: DType,
    ctx: Arc<Context>,
}

/// Bytes that `len` elements of `dtype` occupy on the device (whole words).
pub(crate) fn byte_len(dtype: DType, len: usize) -> u64 {
    match dtype {
        DType::F32 => 4 * len as u64,
        DType::F16 | DType::BF16 => 4 * len.div_ceil(2) as u64,
    }
}

impl GpuStorage {
    pub(crate) fn new(
        ctx: &Arc<Context>,
        dtype: DType,
        len: usize,
    ) -> residual_tensor::Result<Self> {
        let buffer = ctx.pool.acquire(byte_len(dtype, len))?;
        Ok(GpuStorage {
            buffer: Some(buffer),
            len,
            dtype,
            ctx: ctx.clone(),
        })
    }

    /// The device buffer (its size may exceed the data: pool size classes).
    pub fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer present until drop")
    }
}

impl Drop for GpuStorage {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.ctx.pool.release(b);
        }
    }
}

impl std::fmt::Debug for GpuStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GpuStorage({:?} x {} on {})",
            self.dtype,
            self.len,
            self.ctx.adapter_name()
        )
    }
}

impl BackendStorage for GpuStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn len(&self) -> usize {
        self.len
    }
}
