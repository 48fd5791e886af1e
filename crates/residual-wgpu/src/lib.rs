//! The wgpu backend of residual: every kernel of the tensor core's
//! [`Backend`](residual_tensor::Backend) trait as a WGSL compute shader, on
//! any GPU wgpu reaches (Vulkan, Metal, DX12), or on the CPU through Mesa's
//! lavapipe.
//!
//! ```no_run
//! let dev = residual_wgpu::device()?;
//! let x = residual_tensor::Tensor::randn([2, 3], 0.0, 1.0, 1, &dev)?;
//! println!("{:?}", x.relu()?.to_vec()?);
//! # Ok::<(), residual_tensor::Error>(())
//! ```
//!
//! The adapter is chosen by `WGPU_BACKEND` (e.g. `vulkan`) and
//! `WGPU_ADAPTER_NAME` (a substring of the adapter's name), else wgpu's
//! default. Kernels are recorded into one command encoder and submitted in
//! batches; nothing waits for the device until data is read back.

mod backend;
mod context;
pub mod contract;
mod kernels;
mod launch;
mod pool;
pub mod shaders;
mod storage;

pub use backend::WgpuBackend;
pub use context::Context;
pub use pool::PoolStats;
pub use storage::GpuStorage;

use residual_tensor::{Device, Error, Result};
use std::sync::{Arc, OnceLock};

struct Shared {
    device: Device,
    ctx: Arc<Context>,
}

fn shared() -> std::result::Result<&'static Shared, &'static str> {
    static SHARED: OnceLock<std::result::Result<Shared, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            let ctx = Arc::new(Context::new().map_err(|e| e.to_string())?);
            let device = Device::from_backend(Arc::new(WgpuBackend::new(ctx.clone())));
            Ok(Shared { device, ctx })
        })
        .as_ref()
        .map_err(String::as_str)
}

/// The wgpu device (one per process, created on first use); an error naming
/// what is missing when no adapter exists.
pub fn device() -> Result<Device> {
    shared()
        .map(|s| s.device.clone())
        .map_err(|e| Error::Backend {
            backend: "wgpu".into(),
            msg: e.to_string(),
        })
}

/// The device for tests: `None` when there is no adapter, after reporting the
/// running test skipped (`residual_tensor::test_skip`), unless the `CI`
/// environment variable is set, where a missing adapter is a failure.
pub fn test_device() -> Option<Device> {
    match device() {
        Ok(d) => Some(d),
        Err(e) if residual_tensor::test_skip::in_ci() => {
            panic!("CI requires a wgpu adapter (install mesa-vulkan-drivers): {e}")
        }
        Err(e) => {
            residual_tensor::test_skip::skipped(&format!("no wgpu adapter: {e}"));
            None
        }
    }
}

/// The adapter's name, when a device exists.
pub fn adapter_name() -> Option<String> {
    shared().ok().map(|s| s.ctx.adapter_name().to_string())
}

/// Device memory held by the buffer pool, when a device exists.
pub fn pool_stats() -> Option<PoolStats> {
    shared().ok().map(|s| s.ctx.pool.stats())
}

/// Waits until the device has run every kernel recorded so far (for timing;
/// reading a tensor back waits by itself).
pub fn synchronize() -> Result<()> {
    match shared() {
        Ok(s) => s.ctx.synchronize(),
        Err(_) => Ok(()),
    }
}

/// Frees the pool's unused buffers (their memory goes back to the driver).
pub fn trim_pool() {
    if let Ok(s) = shared() {
        s.ctx.pool.trim();
    }
}
