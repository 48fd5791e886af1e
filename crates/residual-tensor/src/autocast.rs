//! Automatic mixed precision: the autocast policy.
//!
//! Inside [`autocast`] (or while an [`AutocastGuard`] lives), the GEMM ops of
//! this thread, `conv2d`, `matmul` and `linear`, cast their f32 operands to the
//! autocast dtype (a differentiable cast, so gradients come back to the f32
//! master weights in f32) and compute on half-precision operands with f32
//! accumulation; their result keeps the half dtype. Like PyTorch, the ops
//! that the zoo's models apply between their GEMM ops keep a half input's
//! dtype: the norms (training-mode batch norm, and group and layer norm,
//! read a half input as it is, compute in f32 and round their output once;
//! evaluation-mode batch norm upcasts, and the synchronised batch norm of
//! data-parallel runs returns f32), ReLU and GELU, and the sum of two
//! tensors of one half dtype (the residual add). Their gradients come back
//! in that dtype, so the activations between convolutions are stored at
//! half the bytes and never cast; where one activation feeds two ops (a
//! block's input, to its convolution and its shortcut), its two half
//! gradients are added in the half dtype, as in PyTorch. Every other op
//! computes in f32: it upcasts a half-precision input (see
//! [`crate::Tensor::cast`]), so softmax, losses, the other activations and
//! pooling run in f32 whether or not autocast is on. This is PyTorch's
//! autocast with its lists reduced: the GEMM ops in half precision; the
//! norms, ReLU, GELU and the residual add in their input's dtype;
//! everything else in f32.
//!
//! The dtype follows PyTorch: bf16 on the CPU, f16 on a GPU that can do f16
//! arithmetic; [`crate::Backend::autocast_dtype`] says which for a device.

use crate::{DType, Error, Result, Tensor, TensorId};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

thread_local! {
    static AUTOCAST: Cell<Option<DType>> = const { Cell::new(None) };
    static CAST_CACHE: RefCell<Option<CastCache>> = const { RefCell::new(None) };
}

/// Half-precision copies of tensors made once (a model's weights) that the
/// GEMM ops reuse under [`autocast_cached`] instead of casting the tensors at
/// every call: PyTorch's autocast weight cache, kept across forwards. It
/// holds the identities of the tensors it may copy; a copy is made the first
/// time a GEMM op multiplies one of them (so tensors that never reach a GEMM
/// cost nothing) and kept. Keyed by [`Tensor::id`], which no other tensor
/// ever gets, so a tensor that replaces a listed one (a weight load) is cast
/// anew, never mistaken for it.
#[derive(Clone)]
pub struct CastCache {
    dtype: DType,
    listed: Arc<HashSet<TensorId>>,
    copies: Arc<Mutex<HashMap<TensorId, Tensor>>>,
}

impl CastCache {
    /// A cache of `tensors`' copies in `dtype` (a half-precision type).
    pub fn new<'a>(tensors: impl IntoIterator<Item = &'a Tensor>, dtype: DType) -> Result<Self> {
        check_half(dtype)?;
        Ok(CastCache {
            dtype,
            listed: Arc::new(tensors.into_iter().map(Tensor::id).collect()),
            copies: Arc::default(),
        })
    }

    /// How many copies it has made so far.
    pub fn len(&self) -> usize {
        self.copies.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether it has made none yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The copy of `t` in `dtype`, made now if it is the first request;
    /// `None` for a tensor it does not list or another dtype.
    fn get(&self, t: &Tensor, dtype: DType) -> Result<Option<Tensor>> {
        if self.dtype != dtype || !self.listed.contains(&t.id()) {
            return Ok(None);
        }
        let mut copies = self.copies.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = copies.get(&t.id()) {
            return Ok(Some(c.clone()));
        }
        let copy = crate::no_grad(|| t.detach().cast(dtype))?;
        copies.insert(t.id(), copy.clone());
        Ok(Some(copy))
    }
}

/// `t` cast to `dtype` for a GEMM op: the [`CastCache`] copy when the cache
/// of [`autocast_cached`] holds one and no gradient has to reach `t` (the
/// copy is not linked to `t` in the graph), else a (differentiable) cast.
pub(crate) fn cast_for_gemm(t: &Tensor, dtype: DType) -> Result<Tensor> {
    if t.dtype() != dtype && !(crate::is_grad_enabled() && t.requires_grad()) {
        let cache = CAST_CACHE.with(|c| c.borrow().clone());
        if let Some(copy) = cache.map(|c| c.get(t, dtype)).transpose()?.flatten() {
            return Ok(copy);
        }
    }
    t.cast(dtype)
}

/// Runs `f` with autocast to `dtype` on this thread, the GEMM ops taking
/// their operands' half copies from `cache` where it has them.
pub fn autocast_cached<T>(dtype: DType, cache: &CastCache, f: impl FnOnce() -> T) -> Result<T> {
    let _guard = AutocastGuard::new(dtype)?;
    let prev = CAST_CACHE.with(|c| c.replace(Some(cache.clone())));
    let restore = RestoreCache(prev);
    let out = f();
    drop(restore);
    Ok(out)
}

/// Puts the previous cache back on drop (also when `f` panics).
struct RestoreCache(Option<CastCache>);

impl Drop for RestoreCache {
    fn drop(&mut self) {
        let prev = self.0.take();
        CAST_CACHE.with(|c| *c.borrow_mut() = prev);
    }
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

/// An error unless `dtype` is a half-precision type.
fn check_half(dtype: DType) -> Result<()> {
    if dtype == DType::F32 {
        return Err(Error::DType {
            op: "autocast",
            got: dtype,
            expected: "f16 or bf16 (f32 is what runs without autocast)".into(),
        });
    }
    Ok(())
}

/// Turns autocast on for this thread until dropped; the previous state returns on drop.
pub struct AutocastGuard {
    prev: Option<DType>,
}

impl AutocastGuard {
    /// Autocast to `dtype`, which must be a half-precision type.
    pub fn new(dtype: DType) -> Result<Self> {
        check_half(dtype)?;
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
    use crate::Device;

    /// `x @ w` under `autocast_cached` with a cache whose copy of `w` is
    /// `2 w`: the products show whether the copy was taken.
    fn product_with_doubled_copy(x: &Tensor, w: &Tensor, key: &Tensor) -> Vec<f32> {
        let doubled = crate::no_grad(|| w.mul_scalar(2.0).unwrap().cast(DType::BF16).unwrap());
        let cache = CastCache {
            dtype: DType::BF16,
            listed: Arc::new(HashSet::from([key.id()])),
            copies: Arc::new(Mutex::new(HashMap::from([(key.id(), doubled)]))),
        };
        autocast_cached(DType::BF16, &cache, || x.matmul(w).unwrap())
            .unwrap()
            .to_vec()
            .unwrap()
    }

    #[test]
    fn cast_cache_serves_gemm_operands_only_where_no_gradient_is_lost() {
        let dev = Device::cpu();
        let x = Tensor::from_vec(vec![1.0, 2.0], [1, 2], &dev).unwrap();
        let w = Tensor::from_vec(vec![0.5, 0.25], [2, 1], &dev).unwrap();
        // Without gradients the GEMM takes the cached copy: 2 * (0.5 + 0.5).
        assert_eq!(
            crate::no_grad(|| product_with_doubled_copy(&x, &w, &w)),
            [2.0]
        );
        // A tensor the cache does not hold is cast as usual.
        let other = w.detach();
        assert_eq!(
            crate::no_grad(|| product_with_doubled_copy(&x, &other, &w)),
            [1.0]
        );
        // A weight that needs its gradient is cast differentiably, not taken
        // from the cache.
        let wg = w.requires_grad_();
        assert_eq!(product_with_doubled_copy(&x, &wg, &wg), [1.0]);
        // Outside `autocast_cached` the cache is gone.
        assert_eq!(
            crate::no_grad(|| autocast(DType::BF16, || x.matmul(&w).unwrap()))
                .unwrap()
                .to_vec()
                .unwrap(),
            [1.0]
        );
        assert!(CastCache::new([&w], DType::F32).is_err());
        // Copies are made on first use, once.
        let cache = CastCache::new([&w, &x], DType::BF16).unwrap();
        assert!(cache.is_empty());
        let first = cache.get(&w, DType::BF16).unwrap().unwrap();
        assert_eq!(first.dtype(), DType::BF16);
        assert_eq!(cache.len(), 1);
        let again = cache.get(&w, DType::BF16).unwrap().unwrap();
        assert_eq!(again.id(), first.id());
        assert!(cache.get(&w, DType::F16).unwrap().is_none());
        assert!(cache.get(&other, DType::BF16).unwrap().is_none());
    }

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
