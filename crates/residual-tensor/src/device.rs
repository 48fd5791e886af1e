//! Devices: a runtime value naming the backend a tensor lives on.

use crate::backend::Backend;
use crate::cpu::CpuBackend;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

static NEXT_DEVICE_ID: AtomicU64 = AtomicU64::new(1);

/// Where a tensor's storage lives and whose kernels run on it. Cheap to clone;
/// two devices are equal when they are the same backend instance.
#[derive(Clone)]
pub struct Device {
    id: u64,
    backend: Arc<dyn Backend>,
}

impl Device {
    /// The CPU (ndarray + rayon). Every call returns the same device.
    pub fn cpu() -> Device {
        static CPU: OnceLock<Device> = OnceLock::new();
        CPU.get_or_init(|| Device {
            id: 0,
            backend: Arc::new(CpuBackend),
        })
        .clone()
    }

    /// A device for another backend (e.g. a wgpu adapter).
    pub fn from_backend(backend: Arc<dyn Backend>) -> Device {
        Device {
            id: NEXT_DEVICE_ID.fetch_add(1, Ordering::Relaxed),
            backend,
        }
    }

    /// The backend whose kernels run on this device.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Whether this is the CPU device.
    pub fn is_cpu(&self) -> bool {
        self.id == 0
    }
}

impl PartialEq for Device {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for Device {}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.backend.name())
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Device({}#{})", self.backend.name(), self.id)
    }
}
