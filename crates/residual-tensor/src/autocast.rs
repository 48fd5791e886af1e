//! Automatic mixed precision: the autocast policy.
//!
//! Inside [`autocast`] (or while an [`AutocastGuard`] lives), the GEMM ops of
//! this thread, `conv2d`, `matmul` and `linear`, cast their f32 operands to the
//! autocast dtype (a differentiable cast, so gradients come back to the f32
//! master weights in f32) and compute on half-precision operands with f32
//! accumulation; their result keeps the half dtype. Every other op computes in
//! f32: it upcasts a half-precision input (see [`crate::Tensor::cast`]), so
//! softmax, losses, activations and pooling run in f32 whether or not
//! autocast is on; the norms read a half input as it is (no f32 copy), compute
//! in f32 and return f32. This is PyTorch's autocast with its lists reduced to
//! two: the GEMM ops in half precision, everything else in f32.
//!
//! The dtype follows PyTorch: bf16 on the CPU, f16 on a GPU that can do f16
//! arithmetic; [`crate::Backend::autocast_dtype`] says which for a device.

use crate::{DType, Error, Result};
use std::cell::Cell;

thread_local! {
    static AUTOCAST: Cell<Option<DType>> = const { Cell::new(None) };
}

/// The dtype GEMM ops of this thread compute in, or `None` outside autocast.
pub fn autocast_dtype() -> Option<DType> {
    AUTOCAST.with(|a| a.get())
}

/// Runs `f` with autocast to `dtype` on this thread (`DType::F16` or `DType::BF16`).
pub fn autocast<T>(dtype: DType, f: impl FnOnce() -> T) -> Result<T> {
    let _guard = AutocastGuard::new(dtype)?;
    Ok(f())
}

/// Turns autocast on for this thread until dropped; the previous state returns on drop.
pub struct AutocastGuard {
    prev: Option<DType>,
}

impl AutocastGuard {
    /// Autocast to `dtype`, which must be a half-precision type.
    pub fn new(dtype: DType) -> Result<Self> {
        if dtype == DType::F32 {
            return Err(Error::DType {
                op: "autocast",
                got: dtype,
                expected: "f16 or bf16 (f32 is what runs without autocast)".into(),
            });
        }
        let prev = AUTOCAST.with(|a| a.replace(Some(dtype)));
        Ok(AutocastGuard { prev })
    }

    /// A guard that turns autocast off for this thread (f32 inside an autocast region).
    pub fn disabled() -> Self {
        let prev = AUTOCAST.with(|a| a.replace(None));
        AutocastGuard { prev }
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        AUTOCAST.with(|a| a.set(self.prev));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_nest_and_restore() {
        assert_eq!(autocast_dtype(), None);
        {
            let _a = AutocastGuard::new(DType::BF16).unwrap();
            assert_eq!(autocast_dtype(), Some(DType::BF16));
            {
                let _off = AutocastGuard::disabled();
                assert_eq!(autocast_dtype(), None);
            }
            assert_eq!(autocast_dtype(), Some(DType::BF16));
        }
        assert_eq!(autocast_dtype(), None);
        assert!(AutocastGuard::new(DType::F32).is_err());
        assert_eq!(
            autocast(DType::F16, autocast_dtype).unwrap(),
            Some(DType::F16)
        );
    }
}
