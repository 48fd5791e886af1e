//! Output buffers written in parallel without being zeroed first.
//!
//! Most kernels overwrite every element of their output, so zeroing it first
//! (`vec![0.0; n]`) is a wasted pass over memory: with an allocator that
//! reuses freed buffers, a `memset` of the whole tensor per op.

use rayon::prelude::*;
use std::mem::{ManuallyDrop, MaybeUninit};

/// Elements per rayon task for elementwise work: below this, threading costs more than it saves.
pub(crate) const PAR_CHUNK: usize = 1 << 14;

/// A vector of `n` elements that are not yet written.
pub(crate) fn uninit_vec<T>(n: usize) -> Vec<MaybeUninit<T>> {
    let mut v = Vec::with_capacity(n);
    // SAFETY: `MaybeUninit` elements need no initialisation.
    unsafe { v.set_len(n) };
    v
}

/// The vector `v` read as initialised.
///
/// # Safety
/// Every element of `v` must have been written.
pub(crate) unsafe fn assume_init_vec<T>(v: Vec<MaybeUninit<T>>) -> Vec<T> {
    let mut v = ManuallyDrop::new(v);
    // SAFETY: same allocation, length and capacity; `MaybeUninit<T>` has the
    // layout of `T`, and the caller guarantees every element was written.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<T>(), v.len(), v.capacity()) }
}

/// A vector of `n` elements built in parallel: `fill(i, out)` receives the
/// `i`-th run of `chunk` elements (the last run may be shorter).
///
/// # Safety
/// `fill` must write every element of each `out` it receives; the result
/// reads them as initialised.
pub(crate) unsafe fn par_fill<T: Send>(
    n: usize,
    chunk: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync + Send,
) -> Vec<T> {
    let mut v = uninit_vec(n);
    v.par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, out)| fill(i, out));
    // SAFETY: the caller guarantees `fill` wrote every element.
    unsafe { assume_init_vec(v) }
}
