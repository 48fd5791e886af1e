//! A pool of device buffers: a dropped tensor's buffer goes back to the pool
//! and the next tensor of the same size class reuses it, so a training loop
//! allocates on its first step and then runs in constant memory.

use residual_tensor::{Error, Result};
use std::collections::HashMap;
use std::sync::Mutex;

/// Usage of every pooled buffer: kernels read and write them, uploads and
/// read-backs copy into and out of them.
const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// Bytes held by the pool, in use and free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Bytes of buffers backing live tensors.
    pub in_use: u64,
    /// Bytes of free buffers kept for reuse.
    pub free: u64,
    /// Buffers created since the device was made (a flat number over training
    /// steps means no step allocates).
    pub created: u64,
}

#[derive(Default)]
struct Inner {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    stats: PoolStats,
}

/// Size-classed free lists of storage buffers.
pub(crate) struct BufferPool {
    device: wgpu::Device,
    max_binding: u64,
    inner: Mutex<Inner>,
}

/// Rounds a request up to its size class: 256-byte steps below 4 KiB, then
/// eight classes per power of two (at most 12.5% waste).
fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(16);
    if bytes <= 4096 {
        return bytes.div_ceil(256) * 256;
    }
    let step = (1u64 << (63 - bytes.leading_zeros())) / 8;
    bytes.div_ceil(step) * step
}

impl BufferPool {
    pub(crate) fn new(device: wgpu::Device, limits: &wgpu::Limits) -> Self {
        BufferPool {
            device,
            max_binding: limits
                .max_storage_buffer_binding_size
                .min(limits.max_buffer_size),
            inner: Mutex::default(),
        }
    }

    /// A buffer of at least `bytes` bytes; an error naming the adapter's limit
    /// when one binding cannot hold that much.
    pub(crate) fn acquire(&self, bytes: u64) -> Result<wgpu::Buffer> {
        if bytes > self.max_binding {
            return Err(Error::Backend {
                backend: "wgpu".into(),
                msg: format!(
                    "a tensor of {bytes} bytes exceeds this adapter's storage binding limit of {} bytes \
                     (max_storage_buffer_binding_size); split the batch",
                    self.max_binding
                ),
            });
        }
        let class = size_class(bytes).min(self.max_binding.max(16));
        let mut inner = self.inner.lock().unwrap();
        inner.stats.in_use += class;
        if let Some(b) = inner.free.get_mut(&class).and_then(Vec::pop) {
            inner.stats.free -= class;
            return Ok(b);
        }
        inner.stats.created += 1;
        drop(inner);
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tensor"),
            size: class,
            usage: USAGE,
            mapped_at_creation: false,
        }))
    }

    /// Returns a buffer to its free list.
    pub(crate) fn release(&self, buffer: wgpu::Buffer) {
        let class = buffer.size();
        let mut inner = self.inner.lock().unwrap();
        inner.stats.in_use -= class;
        inner.stats.free += class;
        inner.free.entry(class).or_default().push(buffer);
    }

    /// Drops every free buffer (the device memory goes back to the driver).
    pub(crate) fn trim(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.free.clear();
        inner.stats.free = 0;
    }

    pub(crate) fn stats(&self) -> PoolStats {
        self.inner.lock().unwrap().stats
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_cover_the_request_with_bounded_waste() {
        for bytes in [
            1u64,
            17,
            255,
            256,
            257,
            4095,
            4096,
            4097,
            10_000,
            1 << 20,
            (1 << 20) + 1,
            123_456_789,
        ] {
            let c = size_class(bytes);
            assert!(c >= bytes, "{bytes} -> {c}");
            assert!(c.is_multiple_of(4));
            if bytes > 4096 {
                assert!(
                    (c - bytes) as f64 <= bytes as f64 / 8.0 + 1.0,
                    "{bytes} -> {c}"
                );
            }
        }
    }
}
