//! Storage: what a backend keeps a tensor's elements in, and host data to
//! upload and read back.

use crate::DType;
use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

/// A backend's storage of one tensor's elements.
pub trait BackendStorage: Any + Send + Sync + Debug {
    /// For the backend to downcast to its own storage type.
    fn as_any(&self) -> &dyn Any;
    /// Element type stored.
    fn dtype(&self) -> DType;
    /// Number of elements stored.
    fn len(&self) -> usize;
    /// Whether no elements are stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A shared handle to backend storage; tensors never mutate it.
pub type Storage = Arc<dyn BackendStorage>;

/// Host-side data of any dtype, for uploads and read-backs.
#[derive(Debug, Clone, PartialEq)]
pub enum HostData {
    /// f32 elements.
    F32(Vec<f32>),
    /// f16 elements.
    F16(Vec<half::f16>),
    /// bf16 elements.
    BF16(Vec<half::bf16>),
}

impl HostData {
    /// Element type.
    pub fn dtype(&self) -> DType {
        match self {
            HostData::F32(_) => DType::F32,
            HostData::F16(_) => DType::F16,
            HostData::BF16(_) => DType::BF16,
        }
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            HostData::F32(v) => v.len(),
            HostData::F16(v) => v.len(),
            HostData::BF16(v) => v.len(),
        }
    }
    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The elements converted to f32.
    pub fn into_f32(self) -> Vec<f32> {
        match self {
            HostData::F32(v) => v,
            HostData::F16(v) => v.into_iter().map(f32::from).collect(),
            HostData::BF16(v) => v.into_iter().map(f32::from).collect(),
        }
    }
}
