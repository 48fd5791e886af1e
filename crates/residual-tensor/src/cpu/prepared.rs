//! Inference weights prepared once: the packed GEMM operands of a
//! convolution's weights, their Winograd transform, or a linear layer's
//! weights packed as the GEMM's B, kept for as long as the weights live, so
//! that a model run many times (an inference model's folded weights) packs
//! each weight once instead of on every call.
//!
//! Keyed by the weight's storage (the `Arc` itself, not its values): an
//! entry holds a `Weak` to it, so it neither keeps the weights alive nor
//! can mistake another storage for them (a live `Weak` keeps the address
//! from being reused). Entries of dropped weights are removed at the next
//! lookup, or all at once by [`clear`]. Only for weights that convolve many
//! inputs unchanged: the backend prepares weights only outside gradient
//! recording, since training makes new weights every step, whose entries
//! would only come and go.

use super::gemm_avx512::{PackedA, PackedB};
use crate::backend::{BackendStorage, Conv2dGeometry, Storage};
use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// At most this many prepared values are kept (1 GiB of f32); beyond it
/// new weights are prepared for each call, as without the cache.
const MAX_VALUES: usize = 1 << 28;

/// What was made from the weights.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Preparation {
    /// [`super::conv::pack_weights`]: one packed operand per group.
    ConvGemm,
    /// [`super::winograd::transform_weights`] for this algorithm: 36 or 16
    /// transformed operands.
    Winograd(super::winograd::Tile),
    /// [`PackedB::from_transposed`]: a linear layer's `[out, in]` weights
    /// as the B of `x @ w^T`.
    LinearB,
}

/// What the cache keeps: a preparation's values.
pub trait Prepared: Any + Send + Sync {
    /// How many f32 values it holds (for the cache's bound).
    fn values(&self) -> usize;
}

impl Prepared for Vec<PackedA> {
    fn values(&self) -> usize {
        self.iter().map(PackedA::len).sum()
    }
}

impl Prepared for PackedB {
    fn values(&self) -> usize {
        self.len()
    }
}

/// The key shape of the convolution `g`'s weights.
pub fn conv_shape(g: &Conv2dGeometry) -> [usize; 5] {
    [g.c_out, g.c_in, g.kh, g.kw, g.p.groups]
}

/// The weights' identity and how they were prepared.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Key {
    storage: usize,
    what: Preparation,
    /// `[c_out, c_in, kh, kw, groups]` of a convolution ([`conv_shape`]),
    /// `[out, in, 1, 1, 1]` of a linear layer.
    shape: [usize; 5],
}

struct Entry {
    key: Key,
    weights: Weak<dyn BackendStorage>,
    prepared: Arc<dyn Any + Send + Sync>,
    values: usize,
}

static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
/// Whether the cache may hold entries: [`prune`] skips the lock when not.
static HOLDS: AtomicBool = AtomicBool::new(false);

/// Takes the entries of dropped weights out of the cache (their values
/// are to be freed outside the lock).
fn take_dead(cache: &mut Vec<Entry>) -> Vec<Entry> {
    let (live, dead): (Vec<Entry>, Vec<Entry>) = std::mem::take(cache)
        .into_iter()
        .partition(|e| e.weights.strong_count() > 0);
    *cache = live;
    HOLDS.store(!cache.is_empty(), Ordering::Relaxed);
    dead
}

/// Frees the entries of dropped weights. Called where weights are not
/// kept (under gradient recording), so that what an evaluation pass in a
/// training loop prepared goes as soon as the optimizer has replaced those
/// weights, not at the next evaluation.
pub fn prune() {
    if !HOLDS.load(Ordering::Relaxed) {
        return;
    }
    let dead = take_dead(&mut CACHE.lock().unwrap_or_else(|e| e.into_inner()));
    drop(dead);
}

/// The weights `w` of shape `shape` prepared as `what`: from the cache,
/// or by `make` (then kept while `w` lives, room permitting). One `what`
/// makes one type `T`.
pub fn get_or_make<T: Prepared>(
    w: &Storage,
    shape: [usize; 5],
    what: Preparation,
    make: impl FnOnce() -> T,
) -> Arc<T> {
    let key = Key {
        storage: Arc::as_ptr(w).cast::<()>() as usize,
        what,
        shape,
    };
    let found = |e: &Entry| {
        if e.key != key {
            return None;
        }
        let p = Arc::clone(&e.prepared).downcast::<T>();
        debug_assert!(p.is_ok(), "prepared: {what:?} kept as another type");
        p.ok()
    };
    let gone: Vec<Entry>;
    {
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        // The entries of dropped weights leave the cache here, and their
        // values are freed below, outside the lock.
        gone = take_dead(&mut cache);
        if let Some(p) = cache.iter().find_map(found) {
            return p;
        }
    }
    drop(gone);
    // Made outside the lock: another thread may make the same; the first
    // kept wins, and both results are the same values.
    let prepared = Arc::new(make());
    let values = prepared.values();
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = cache.iter().find_map(found) {
        return p;
    }
    let held: usize = cache.iter().map(|e| e.values).sum();
    if held + values <= MAX_VALUES {
        cache.push(Entry {
            key,
            weights: Arc::downgrade(w),
            prepared: Arc::clone(&prepared) as Arc<dyn Any + Send + Sync>,
            values,
        });
        HOLDS.store(true, Ordering::Relaxed);
    }
    prepared
}

/// Drops every kept value (they are made again when next needed).
pub fn clear() {
    let all = {
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        HOLDS.store(false, Ordering::Relaxed);
        std::mem::take(&mut *cache)
    };
    drop(all);
}

/// How many entries are kept for the live weights `w` (one per
/// preparation and shape), for tests.
#[cfg(test)]
pub fn kept_for(w: &Storage) -> usize {
    kept_at(Arc::as_ptr(w).cast::<()>() as usize)
}

/// How many entries are kept for weights whose storage lies at `storage`
/// (live or not), for tests.
#[cfg(test)]
pub fn kept_at(storage: usize) -> usize {
    let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.iter().filter(|e| e.key.storage == storage).count()
}
