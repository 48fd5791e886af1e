//! The CPU backend's storage ([`CpuStorage`]: a `Vec` per dtype) and the
//! element types its kernels read and write ([`Float`]).

use crate::backend::{BackendStorage, Storage};
use crate::{DType, Error, Result};
use half::{bf16, f16};
use std::any::Any;
use std::sync::Arc;

/// Host storage of the CPU backend.
#[derive(Debug)]
pub enum CpuStorage {
    /// f32 elements.
    F32(Vec<f32>),
    /// f16 elements.
    F16(Vec<f16>),
    /// bf16 elements.
    BF16(Vec<bf16>),
}

impl BackendStorage for CpuStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
        }
    }
    fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F16(v) => v.len(),
            CpuStorage::BF16(v) => v.len(),
        }
    }
}

/// An element type of CPU storage that kernels computing in f32 read and write.
pub(crate) trait Float: Copy + Send + Sync + 'static {
    /// The value as f32 (exact).
    fn to_f32(self) -> f32;
    /// `v` rounded to this type (to nearest even).
    fn from_f32(v: f32) -> Self;
    /// A vector of this type as storage.
    fn into_storage(v: Vec<Self>) -> Storage;
}

impl Float for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
    fn into_storage(v: Vec<Self>) -> Storage {
        Arc::new(CpuStorage::F32(v))
    }
}

/// [`Float`] for a `half` type stored in the CPU storage variant `$variant`.
macro_rules! half_float {
    ($t:ty, $variant:ident) => {
        impl Float for $t {
            #[inline(always)]
            fn to_f32(self) -> f32 {
                <$t>::to_f32(self)
            }
            #[inline(always)]
            fn from_f32(v: f32) -> Self {
                <$t>::from_f32(v)
            }
            fn into_storage(v: Vec<Self>) -> Storage {
                Arc::new(CpuStorage::$variant(v))
            }
        }
    };
}
half_float!(bf16, BF16);
half_float!(f16, F16);

/// The CPU storage behind `s`; an error for another backend's storage.
pub(crate) fn host(s: &Storage) -> Result<&CpuStorage> {
    s.as_any()
        .downcast_ref::<CpuStorage>()
        .ok_or_else(|| Error::Backend {
            backend: "cpu".into(),
            msg: format!("storage {s:?} belongs to another backend"),
        })
}

/// The f32 slice of a CPU storage; an error for another backend's or dtype's storage.
pub(crate) fn f32s(s: &Storage) -> Result<&[f32]> {
    match host(s)? {
        CpuStorage::F32(v) => Ok(v),
        other => Err(Error::DType {
            op: "cpu kernel",
            got: other.dtype(),
            expected: "f32".into(),
        }),
    }
}

/// Wraps a result vector as storage.
pub(crate) fn store(v: Vec<f32>) -> Storage {
    Arc::new(CpuStorage::F32(v))
}
